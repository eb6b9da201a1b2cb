//! `sessiond-load compare`: sessiond side by side with memcached, Redis (with and without AOF)
//! and the do-nothing ceiling, in one command.
//!
//! For every workload, every round runs every server once, in the same order (A B C … A B C
//! …), so slow drifts in machine load hit all servers alike; each run starts the server
//! fresh on a free loopback port with a throwaway data directory, preloads it when the
//! workload reads, and measures after a warm-up. Medians over the rounds go into a markdown
//! table (with the ratio of sessiond to every server) and a PNG chart. Then: RSS after
//! loading N sessions into sessiond, memcached and Redis; and a cross-check of the RESP side
//! of the generator against `redis-benchmark`.
//!
//! Every run records the CPU taken by the server, by the generator and by everything else
//! ("foreign"), because the benchmark machine is shared and its noise must be visible next to
//! the figures it distorts.
//!
//! The journal hook: sessiond has no journal yet. `--journal-modes everysec,always` runs
//! sessiond once per mode, passing `--journal-flag` with `{mode}` substituted (default
//! `--fsync={mode}`, sessiond's journal policy flag), and reports each as its own server. Until the flag exists, leave
//! `--journal-modes` empty and sessiond runs without it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::procstat::{self, CpuUse, CpuWindow};
use crate::proto::Protocol;
use crate::run::{self, Counts, RunConfig, RunResult};
use crate::servers::{self, Programs};
use crate::workload::{KeySpace, Kind, Workload};

/// Settings of a compare.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// Where the programs are.
    pub programs: Programs,
    /// Where results.md, runs.csv and chart.png go.
    pub out_dir: PathBuf,
    /// Parent of the servers' throwaway data directories.
    pub scratch: PathBuf,
    /// Rounds per workload.
    pub rounds: usize,
    /// Measured time per run.
    pub duration: Duration,
    /// Unrecorded warm-up per run.
    pub warmup: Duration,
    /// Connections per run.
    pub conns: usize,
    /// Pipeline depth per connection.
    pub depth: usize,
    /// Key space.
    pub keys: u64,
    /// Value size for the workloads.
    pub value_size: usize,
    /// TTL on sets.
    pub ttl: u32,
    /// Which workloads (names from [`WORKLOADS`]).
    pub workloads: Vec<String>,
    /// Which servers: sessiond, memcached, redis, redis-aof, ceiling.
    pub servers: Vec<String>,
    /// Journal fsync modes to run sessiond with; empty: no journal flag.
    pub journal_modes: Vec<String>,
    /// The sessiond flag that selects a journal mode; `{mode}` is substituted.
    pub journal_flag: String,
    /// Sessions to load for the memory comparison (0 skips it).
    pub memory_sessions: u64,
    /// Value size for the memory comparison.
    pub memory_value_size: usize,
    /// Requests per redis-benchmark test in the cross-check (0 skips it).
    pub redis_benchmark_requests: u64,
    /// Pause before reading RSS in the memory comparison, so allocator background work
    /// settles (1 s in a real run; short in the smoke run).
    pub settle: Duration,
}

/// A workload of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Short name (`--workloads`).
    pub name: &'static str,
    /// What it is, for the table.
    pub title: &'static str,
    /// The ops.
    pub kind: Kind,
    /// Whether the key space is loaded before the run.
    pub preload: bool,
    /// Protocol for sessiond, memcached and the ceiling (Redis always gets RESP).
    pub memcache_protocol: Protocol,
}

/// The issue's four workloads.
pub const WORKLOADS: [Spec; 4] = [
    Spec {
        name: "session-mix",
        title: "session mix: 90% GET / 10% SET (TTL), text",
        kind: Kind::Mix {
            get_pct: 90,
            touch_pct: 0,
        },
        preload: true,
        memcache_protocol: Protocol::Text,
    },
    Spec {
        name: "login-storm",
        title: "login storm: 100% SET of new keys, text",
        kind: Kind::Login,
        preload: false,
        memcache_protocol: Protocol::Text,
    },
    Spec {
        name: "touch-heavy",
        title: "touch-heavy: 50% GET / 50% touch (EXPIRE), text",
        kind: Kind::Mix {
            get_pct: 50,
            touch_pct: 50,
        },
        preload: true,
        memcache_protocol: Protocol::Text,
    },
    Spec {
        name: "php-cycle",
        title: "PHP session cycle: ADD lock, GETK, SET, DELETE lock, binary (Redis: SET NX PX, GET, SETEX, DEL)",
        kind: Kind::Php,
        preload: true,
        memcache_protocol: Protocol::Binary,
    },
];

/// The server names `--servers` accepts, in run order.
pub const SERVERS: [&str; 5] = ["sessiond", "memcached", "redis", "redis-aof", "ceiling"];

/// One server of the comparison: a label and how to start it.
#[derive(Debug, Clone)]
struct Target {
    label: String,
    kind: servers::Kind,
    is_sessiond: bool,
}

impl Target {
    fn protocol(&self, spec: &Spec) -> Protocol {
        match self.kind {
            servers::Kind::Redis | servers::Kind::RedisAof => Protocol::Resp,
            _ => spec.memcache_protocol,
        }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Record {
    workload: &'static str,
    server: String,
    round: usize,
    protocol: Protocol,
    ops: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    counts: Counts,
    cpu: CpuUse,
}

/// Medians of one (workload, server) cell.
#[derive(Debug, Clone)]
struct Cell {
    ops: f64,
    ops_min: f64,
    ops_max: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    foreign: f64,
    server_cpu: f64,
    generator_cpu: f64,
    errors: u64,
    misses: u64,
    rejected: u64,
    runs: usize,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn cell(records: &[&Record]) -> Cell {
    let get = |f: fn(&Record) -> f64| records.iter().map(|r| f(r)).collect::<Vec<_>>();
    let ops = get(|r| r.ops);
    Cell {
        ops: median(ops.clone()),
        ops_min: ops.iter().copied().fold(f64::INFINITY, f64::min),
        ops_max: ops.iter().copied().fold(0.0, f64::max),
        p50: median(get(|r| r.p50)),
        p99: median(get(|r| r.p99)),
        p999: median(get(|r| r.p999)),
        max: median(get(|r| r.max)),
        foreign: median(get(|r| r.cpu.foreign)),
        server_cpu: median(get(|r| r.cpu.server)),
        generator_cpu: median(get(|r| r.cpu.generator)),
        errors: records.iter().map(|r| r.counts.errors).sum(),
        misses: records.iter().map(|r| r.counts.misses).sum(),
        rejected: records.iter().map(|r| r.counts.rejected).sum(),
        runs: records.len(),
    }
}

/// Runs the whole comparison and writes results.md, runs.csv and chart.png into `out_dir`.
pub fn compare(config: &CompareConfig, rt: &tokio::runtime::Runtime) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&config.out_dir)
        .with_context(|| format!("creating {}", config.out_dir.display()))?;
    std::fs::create_dir_all(&config.scratch)
        .with_context(|| format!("creating {}", config.scratch.display()))?;
    let specs: Vec<Spec> = config
        .workloads
        .iter()
        .map(|name| {
            WORKLOADS
                .iter()
                .find(|s| s.name == name)
                .copied()
                .with_context(|| {
                    format!(
                        "unknown workload {name:?}; known: {:?}",
                        WORKLOADS.map(|s| s.name)
                    )
                })
        })
        .collect::<anyhow::Result<_>>()?;
    let targets = targets(config)?;
    let machine = machine_description(&config.programs);
    let started = Instant::now();
    let per_run = config.duration + config.warmup + Duration::from_secs(2);
    eprintln!(
        "compare: {} workloads x {} servers x {} rounds, about {:.0} s of runs plus memory and cross-check",
        specs.len(),
        targets.len(),
        config.rounds,
        (per_run * (specs.len() * targets.len() * config.rounds) as u32).as_secs_f64()
    );
    let keys = Arc::new(KeySpace::new(config.keys, true));

    let mut records = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for spec in &specs {
        for round in 1..=config.rounds {
            for target in &targets {
                // A failed run is reported and the comparison goes on: one crash should not
                // throw away a quarter of an hour of measurements.
                let record = match measure(config, rt, spec, target, round, keys.clone()) {
                    Ok(record) => record,
                    Err(e) => {
                        let what =
                            format!("{} against {} (round {round})", spec.name, target.label);
                        eprintln!("  FAILED {what}: {e:#}");
                        failures.push(format!("{what}: {e:#}"));
                        continue;
                    }
                };
                eprintln!(
                    "  {:<12} {:<22} round {round}: {:>9.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  \
                     (server {:.0}% gen {:.0}% foreign {:.0}% CPU)",
                    spec.name,
                    target.label,
                    record.ops,
                    record.p50,
                    record.p99,
                    record.cpu.server,
                    record.cpu.generator,
                    record.cpu.foreign
                );
                records.push(record);
            }
        }
    }

    let memory = if config.memory_sessions > 0 {
        memory(config, rt, &targets)?
    } else {
        Vec::new()
    };
    let cross = if config.redis_benchmark_requests > 0 {
        cross_check(config, rt)?
    } else {
        Vec::new()
    };

    let labels: Vec<String> = targets.iter().map(|t| t.label.clone()).collect();
    let sessiond_labels: Vec<String> = targets
        .iter()
        .filter(|t| t.is_sessiond)
        .map(|t| t.label.clone())
        .collect();
    let cells: Vec<Vec<Option<Cell>>> = specs
        .iter()
        .map(|spec| {
            labels
                .iter()
                .map(|label| {
                    let rs: Vec<&Record> = records
                        .iter()
                        .filter(|r| r.workload == spec.name && &r.server == label)
                        .collect();
                    (!rs.is_empty()).then(|| cell(&rs))
                })
                .collect()
        })
        .collect();

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
        started.elapsed().as_secs_f64(),
    )?;
    writeln!(
        md,
        "Columns: medians over the rounds; latency in ms; `foreign` is CPU used by other processes on the machine \
         during the run, in % of one core (capacity is {}00%); `srv`/`gen` are the server's and the generator's \
         CPU; `sessiond ÷` is sessiond's median ops/s divided by this row's.\n",
        procstat::cpus()
    )?;
    for (spec, row) in specs.iter().zip(&cells) {
        writeln!(md, "## {} — {}\n", spec.name, spec.title)?;
        write!(
            md,
            "| server | proto | ops/s | range | p50 | p99 | p99.9 | max | srv % | gen % | foreign % |"
        )?;
        for s in &sessiond_labels {
            write!(md, " {s} ÷ |")?;
        }
        writeln!(md, " misses / rejected / errors |")?;
        write!(md, "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for _ in &sessiond_labels {
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
            for s in &sessiond_labels {
                let i = labels
                    .iter()
                    .position(|l| l == s)
                    .expect("a sessiond label");
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

    if !failures.is_empty() {
        writeln!(md, "## Failed runs (left out of the medians above)\n")?;
        for failure in &failures {
            writeln!(md, "```\n{}\n```", failure.trim())?;
        }
        writeln!(md)?;
    }

    if !memory.is_empty() {
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
        for m in &memory {
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

    if !cross.is_empty() {
        writeln!(
            md,
            "## Cross-check of the RESP side: sessiond-load vs redis-benchmark, Redis without persistence\n\n\
             Both with {} connections, depth 1, {} random keys, {} B values, no TTL. redis-benchmark is \
             single-threaded and runs a fixed request count; sessiond-load runs for the configured duration.\n",
            config.conns, config.keys, config.value_size
        )?;
        writeln!(md, "| test | tool | ops/s | p50 ms | p99 ms |")?;
        writeln!(md, "|---|---|---:|---:|---:|")?;
        for c in &cross {
            writeln!(
                md,
                "| {} | {} | {:.0} | {:.3} | {:.3} |",
                c.test, c.tool, c.ops, c.p50, c.p99
            )?;
        }
        writeln!(md)?;
    }

    let chart_path = config.out_dir.join("chart.png");
    let ops: Vec<Vec<Option<f64>>> = cells
        .iter()
        .map(|row| row.iter().map(|c| c.as_ref().map(|c| c.ops)).collect())
        .collect();
    let p99: Vec<Vec<Option<f64>>> = cells
        .iter()
        .map(|row| row.iter().map(|c| c.as_ref().map(|c| c.p99)).collect())
        .collect();
    let names: Vec<String> = specs.iter().map(|s| s.name.to_string()).collect();
    match crate::chart::draw(&chart_path, &names, &labels, &ops, &p99) {
        Ok(()) => writeln!(
            md,
            "![throughput and p99 per workload and server](chart.png)\n"
        )?,
        Err(e) => {
            eprintln!("compare: no chart: {e:#}");
            writeln!(md, "(No chart: {e:#}.)\n")?;
        }
    }

    let md_path = config.out_dir.join("results.md");
    std::fs::write(&md_path, &md)?;
    std::fs::write(config.out_dir.join("runs.csv"), csv(&records))?;
    eprintln!(
        "compare: done in {:.0} s; wrote {}",
        started.elapsed().as_secs_f64(),
        md_path.display()
    );
    Ok(md_path)
}

fn targets(config: &CompareConfig) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for name in &config.servers {
        match name.as_str() {
            "sessiond" if config.journal_modes.is_empty() => targets.push(Target {
                label: "sessiond".into(),
                kind: servers::Kind::Sessiond { args: Vec::new() },
                is_sessiond: true,
            }),
            "sessiond" => {
                for mode in &config.journal_modes {
                    let flag = config.journal_flag.replace("{mode}", mode);
                    targets.push(Target {
                        label: format!("sessiond journal={mode}"),
                        kind: servers::Kind::Sessiond {
                            args: flag.split_whitespace().map(String::from).collect(),
                        },
                        is_sessiond: true,
                    });
                }
            }
            "memcached" => targets.push(Target {
                label: "memcached -t 2".into(),
                kind: servers::Kind::Memcached,
                is_sessiond: false,
            }),
            "redis" => targets.push(Target {
                label: "redis".into(),
                kind: servers::Kind::Redis,
                is_sessiond: false,
            }),
            "redis-aof" => targets.push(Target {
                label: "redis AOF everysec".into(),
                kind: servers::Kind::RedisAof,
                is_sessiond: false,
            }),
            "ceiling" => targets.push(Target {
                label: "ceiling".into(),
                kind: servers::Kind::Ceiling,
                is_sessiond: false,
            }),
            other => bail!("unknown server {other:?}; known: {SERVERS:?}"),
        }
    }
    if targets.is_empty() {
        bail!("no servers selected");
    }
    Ok(targets)
}

fn measure(
    config: &CompareConfig,
    rt: &tokio::runtime::Runtime,
    spec: &Spec,
    target: &Target,
    round: usize,
    keys: Arc<KeySpace>,
) -> anyhow::Result<Record> {
    let server = servers::start(
        &target.kind,
        &config.programs,
        &config.scratch,
        config.value_size,
    )?;
    let protocol = target.protocol(spec);
    let workload = Workload {
        kind: spec.kind,
        keys: config.keys,
        value_size: config.value_size,
        ttl: config.ttl,
    };
    if spec.preload {
        rt.block_on(run::preload(
            server.addr,
            protocol,
            keys.clone(),
            config.value_size,
            config.ttl,
            10,
        ))
        .context("preloading")?;
    }
    let run_config = RunConfig {
        addr: server.addr,
        protocol,
        workload,
        conns: config.conns,
        depth: config.depth,
        duration: config.duration,
        requests: None,
        warmup: config.warmup,
        rate: None,
        seed: round as u64,
    };
    let mut server = server;
    let window = CpuWindow::start(Some(server.pid()))?;
    let result = match rt.block_on(run::run(&run_config, keys)) {
        Ok(result) => result,
        Err(e) => return Err(e.context(server.post_mortem())),
    };
    let cpu = window.finish()?;
    server.stop()?;
    Ok(record(
        spec.name,
        &target.label,
        round,
        protocol,
        &result,
        cpu,
    ))
}

fn record(
    workload: &'static str,
    server: &str,
    round: usize,
    protocol: Protocol,
    r: &RunResult,
    cpu: CpuUse,
) -> Record {
    Record {
        workload,
        server: server.to_string(),
        round,
        protocol,
        ops: r.ops_per_sec(),
        p50: r.latency_ms(0.5),
        p99: r.latency_ms(0.99),
        p999: r.latency_ms(0.999),
        max: r.max_ms(),
        counts: r.counts,
        cpu,
    }
}

fn csv(records: &[Record]) -> String {
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

/// RSS of one server before and after the memory load.
struct Memory {
    server: String,
    before: u64,
    after: u64,
}

fn memory(
    config: &CompareConfig,
    rt: &tokio::runtime::Runtime,
    targets: &[Target],
) -> anyhow::Result<Vec<Memory>> {
    let mut out = Vec::new();
    let keys = Arc::new(KeySpace::new(config.memory_sessions, false));
    // Redis with AOF holds the same data as Redis, and the ceiling holds none.
    for target in targets
        .iter()
        .filter(|t| !matches!(t.kind, servers::Kind::RedisAof | servers::Kind::Ceiling))
    {
        let server = servers::start(
            &target.kind,
            &config.programs,
            &config.scratch,
            config.memory_value_size,
        )?;
        let protocol = if matches!(target.kind, servers::Kind::Redis) {
            Protocol::Resp
        } else {
            Protocol::Text
        };
        std::thread::sleep(config.settle / 3);
        let before = procstat::rss_bytes(server.pid()).context("reading the server's RSS")?;
        let started = Instant::now();
        rt.block_on(run::preload(
            server.addr,
            protocol,
            keys.clone(),
            config.memory_value_size,
            config.ttl,
            20,
        ))
        .with_context(|| format!("loading sessions into {}", target.label))?;
        // Let background work (allocator purges, lazy frees) settle before reading RSS.
        std::thread::sleep(config.settle);
        let after = procstat::rss_bytes(server.pid()).context("reading the server's RSS")?;
        eprintln!(
            "  memory {:<22} {} sessions in {:.1} s: RSS {:.1} -> {:.1} MiB",
            target.label,
            config.memory_sessions,
            started.elapsed().as_secs_f64(),
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        );
        server.stop()?;
        out.push(Memory {
            server: target.label.clone(),
            before,
            after,
        });
    }
    Ok(out)
}

/// One row of the redis-benchmark cross-check.
struct Cross {
    test: &'static str,
    tool: &'static str,
    ops: f64,
    p50: f64,
    p99: f64,
}

fn cross_check(config: &CompareConfig, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Cross>> {
    let redis_benchmark = servers::find_program("redis-benchmark", "redis-tools")?;
    let mut out = Vec::new();
    // redis-benchmark: SET then GET over the same random keys.
    let server = servers::start(
        &servers::Kind::Redis,
        &config.programs,
        &config.scratch,
        config.value_size,
    )?;
    let output = Command::new(&redis_benchmark)
        .args(["-h", "127.0.0.1", "-p", &server.addr.port().to_string()])
        .args([
            "-c",
            &config.conns.to_string(),
            "-n",
            &config.redis_benchmark_requests.to_string(),
        ])
        .args([
            "-r",
            &config.keys.to_string(),
            "-d",
            &config.value_size.to_string(),
            "-t",
            "set,get",
            "--csv",
        ])
        .output()
        .context("running redis-benchmark")?;
    server.stop()?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for (test, row) in parse_redis_benchmark_csv(&String::from_utf8_lossy(&output.stdout)) {
        let test = match test.as_str() {
            "SET" => "SET 100%",
            "GET" => "GET 100%",
            _ => continue,
        };
        out.push(Cross {
            test,
            tool: "redis-benchmark",
            ops: row.0,
            p50: row.1,
            p99: row.2,
        });
    }
    // sessiond-load: the same shapes against a fresh Redis.
    let keys = Arc::new(KeySpace::new(config.keys, false));
    for (test, get_pct) in [("SET 100%", 0), ("GET 100%", 100)] {
        let server = servers::start(
            &servers::Kind::Redis,
            &config.programs,
            &config.scratch,
            config.value_size,
        )?;
        if get_pct > 0 {
            rt.block_on(run::preload(
                server.addr,
                Protocol::Resp,
                keys.clone(),
                config.value_size,
                0,
                10,
            ))?;
        }
        let run_config = RunConfig {
            addr: server.addr,
            protocol: Protocol::Resp,
            workload: Workload {
                kind: Kind::Mix {
                    get_pct,
                    touch_pct: 0,
                },
                keys: config.keys,
                value_size: config.value_size,
                ttl: 0,
            },
            conns: config.conns,
            depth: 1,
            duration: config.duration,
            requests: None,
            warmup: config.warmup,
            rate: None,
            seed: 1,
        };
        let result = rt.block_on(run::run(&run_config, keys.clone()))?;
        server.stop()?;
        out.push(Cross {
            test,
            tool: "sessiond-load",
            ops: result.ops_per_sec(),
            p50: result.latency_ms(0.5),
            p99: result.latency_ms(0.99),
        });
    }
    out.sort_by_key(|c| (c.test, c.tool));
    Ok(out)
}

/// Parses `redis-benchmark --csv`: `"test","rps","avg_latency_ms","min_latency_ms",
/// "p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"` rows into
/// (test, (rps, p50, p99)).
fn parse_redis_benchmark_csv(text: &str) -> Vec<(String, (f64, f64, f64))> {
    let mut rows = Vec::new();
    let mut header: Vec<String> = Vec::new();
    for line in text.lines() {
        let fields: Vec<String> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"').to_string())
            .collect();
        if fields.first().map(String::as_str) == Some("test") {
            header = fields;
            continue;
        }
        let col = |name: &str| -> Option<f64> {
            let i = header.iter().position(|h| h == name)?;
            fields.get(i)?.parse().ok()
        };
        if let (Some(rps), Some(p50), Some(p99)) =
            (col("rps"), col("p50_latency_ms"), col("p99_latency_ms"))
        {
            rows.push((fields[0].clone(), (rps, p50, p99)));
        }
    }
    rows
}

/// The machine and program versions, for the report.
fn machine_description(programs: &Programs) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1048576.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let version = |program: &Path, arg: &str| -> String {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "Machine: {} × {model}, {mem_gib:.0} GiB RAM, kernel {}; load average at start {}.\n\
         Servers: {}; {}; {}. The generator shares the machine's cores with the server.\n",
        procstat::cpus(),
        kernel.trim(),
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        version(&programs.sessiond, "--version"),
        version(&programs.memcached, "-V"),
        version(&programs.redis_server, "--version"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn parses_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\
                    \"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"90090.09\",\"0.3\",\"0.1\",\"0.287\",\"0.5\",\
                    \"0.799\",\"2.1\"\n";
        let rows = parse_redis_benchmark_csv(text);
        assert_eq!(rows, vec![("SET".to_string(), (90090.09, 0.287, 0.799))]);
    }
}
