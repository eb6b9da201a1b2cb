//! Rendering: the markdown report (`results.md`), the CSV of every run (`runs.csv`) and the
//! chart (`chart.png`), from the measurements and the aggregated table. Nothing here
//! measures; the markdown and CSV are pure functions of their inputs.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::aggregate::{Cell, Table};
use super::measure::{Measurements, Record};
use super::{CompareConfig, Spec, Target};
use crate::procstat;

/// Draws the chart of median throughput and p99 per workload and server into `path`.
pub(super) fn chart(path: &Path, specs: &[Spec], table: &Table) -> anyhow::Result<()> {
    let names: Vec<String> = specs.iter().map(|s| s.name.to_string()).collect();
    let ops = table.figure(|c: &Cell| c.ops);
    let p99 = table.figure(|c: &Cell| c.p99);
    crate::chart::draw(path, &names, &table.labels, &ops, &p99)
}

/// What the markdown report is made from.
pub(super) struct Report<'a> {
    /// The settings, quoted in the report.
    pub(super) config: &'a CompareConfig,
    /// The machine and program versions.
    pub(super) machine: &'a str,
    /// Wall time of the measurements.
    pub(super) wall: Duration,
    /// The workloads, one section each.
    pub(super) specs: &'a [Spec],
    /// The servers, one table row each.
    pub(super) targets: &'a [Target],
    /// The medians.
    pub(super) table: &'a Table,
    /// The raw measurements (failures, memory, cross-check).
    pub(super) measured: &'a Measurements,
    /// Whether the chart was drawn (the report links it, or says why not).
    pub(super) chart: &'a anyhow::Result<()>,
}

/// The whole `results.md`.
pub(super) fn markdown(report: &Report<'_>) -> Result<String, std::fmt::Error> {
    let Report {
        config,
        machine,
        wall,
        specs,
        targets,
        table,
        measured,
        chart,
    } = report;
    let mut md = String::new();
    writeln!(md, "# sessiond benchmark results\n")?;
    writeln!(md, "{machine}")?;
    writeln!(
        md,
        "Settings: {} rounds, {:.1} s measured after {:.1} s warm-up per run; {} connections, pipeline depth {}, \
         {} keys, {} B values, TTL {} s on sets. Servers restarted fresh for every run; read workloads preloaded. \
         Total wall time {:.0} s.\n",
        config.rounds,
        config.duration.as_secs_f64(),
        config.warmup.as_secs_f64(),
        config.conns,
        config.depth,
        config.keys,
        config.value_size,
        config.ttl,
        wall.as_secs_f64(),
    )?;
    writeln!(
        md,
        "Columns: medians over the rounds; latency in ms; `foreign` is CPU used by other processes on the machine \
         during the run, in % of one core (capacity is {}00%); `srv`/`gen` are the server's and the generator's \
         CPU; `sessiond ÷` is sessiond's median ops/s divided by this row's.\n",
        procstat::cpus()
    )?;
    for (spec, row) in specs.iter().zip(&table.rows) {
        writeln!(md, "## {} — {}\n", spec.name, spec.title)?;
        write!(
            md,
            "| server | proto | ops/s | range | p50 | p99 | p99.9 | max | srv % | gen % | foreign % |"
        )?;
        for &i in &table.sessiond_columns {
            write!(md, " {} ÷ |", table.labels[i])?;
        }
        writeln!(md, " misses / rejected / errors |")?;
        write!(md, "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for _ in &table.sessiond_columns {
            write!(md, "---:|")?;
        }
        writeln!(md, "---|")?;
        for (target, c) in targets.iter().zip(row) {
            let Some(c) = c else { continue };
            write!(
                md,
                "| {} | {} | **{:.0}** | {:.0}–{:.0} | {:.3} | **{:.3}** | {:.3} | {:.2} | {:.0} | {:.0} | {:.0} |",
                target.label,
                target.protocol(spec).name(),
                c.ops,
                c.ops_min,
                c.ops_max,
                c.p50,
                c.p99,
                c.p999,
                c.max,
                c.server_cpu,
                c.generator_cpu,
                c.foreign
            )?;
            for &i in &table.sessiond_columns {
                match &row[i] {
                    Some(sc) => write!(md, " {:.2} |", sc.ops / c.ops)?,
                    None => write!(md, " – |")?,
                }
            }
            writeln!(
                md,
                " {} / {} / {} ({} runs) |",
                c.misses, c.rejected, c.errors, c.runs
            )?;
        }
        writeln!(md)?;
    }

    if !measured.failures.is_empty() {
        writeln!(md, "## Failed runs (left out of the medians above)\n")?;
        for failure in &measured.failures {
            writeln!(md, "```\n{}\n```", failure.trim())?;
        }
        writeln!(md)?;
    }

    if !measured.memory.is_empty() {
        writeln!(
            md,
            "## Memory: RSS after loading {} sessions of {} B (TTL {} s)\n",
            config.memory_sessions, config.memory_value_size, config.ttl
        )?;
        writeln!(
            md,
            "| server | RSS empty | RSS loaded | growth per session | RSS per session |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|")?;
        for m in &measured.memory {
            writeln!(
                md,
                "| {} | {:.1} MiB | {:.1} MiB | **{:.0} B** | {:.0} B |",
                m.server,
                m.before as f64 / 1048576.0,
                m.after as f64 / 1048576.0,
                m.after.saturating_sub(m.before) as f64 / config.memory_sessions as f64,
                m.after as f64 / config.memory_sessions as f64
            )?;
        }
        writeln!(md)?;
    }

    if !measured.cross.is_empty() {
        writeln!(
            md,
            "## Cross-check of the RESP side: sessiond-load vs redis-benchmark, Redis without persistence\n\n\
             Both with {} connections, depth 1, {} random keys, {} B values, no TTL. redis-benchmark is \
             single-threaded and runs a fixed request count; sessiond-load runs for the configured duration.\n",
            config.conns, config.keys, config.value_size
        )?;
        writeln!(md, "| test | tool | ops/s | p50 ms | p99 ms |")?;
        writeln!(md, "|---|---|---:|---:|---:|")?;
        for c in &measured.cross {
            writeln!(
                md,
                "| {} | {} | {:.0} | {:.3} | {:.3} |",
                c.test, c.tool, c.ops, c.p50, c.p99
            )?;
        }
        writeln!(md)?;
    }

    match chart {
        Ok(()) => writeln!(
            md,
            "![throughput and p99 per workload and server](chart.png)\n"
        )?,
        Err(e) => writeln!(md, "(No chart: {e:#}.)\n")?,
    }
    Ok(md)
}

/// Every run, one CSV row each (`runs.csv`).
pub(super) fn csv(records: &[Record]) -> String {
    let mut out = String::from(
        "workload,server,round,protocol,ops_per_sec,p50_ms,p99_ms,p999_ms,max_ms,hits,misses,ok,rejected,errors,\
         server_cpu_pct,generator_cpu_pct,foreign_cpu_pct\n",
    );
    for r in records {
        let _ = writeln!(
            out,
            "{},{},{},{},{:.0},{:.4},{:.4},{:.4},{:.4},{},{},{},{},{},{:.1},{:.1},{:.1}",
            r.workload,
            r.server,
            r.round,
            r.protocol.name(),
            r.ops,
            r.p50,
            r.p99,
            r.p999,
            r.max,
            r.counts.hits,
            r.counts.misses,
            r.counts.ok,
            r.counts.rejected,
            r.counts.errors,
            r.cpu.server,
            r.cpu.generator,
            r.cpu.foreign
        );
    }
    out
}
