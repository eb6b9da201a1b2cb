//! Measuring: every (workload, round, server) run, the memory load and the redis-benchmark
//! cross-check, each on a freshly started server. The result is [`Measurements`], raw
//! figures only; medians are [`super::aggregate`]'s job and text [`super::report`]'s.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use super::{CompareConfig, Spec, Target};
use crate::procstat::{self, CpuUse, CpuWindow};
use crate::proto::Protocol;
use crate::run::{self, Counts, RunConfig, RunResult};
use crate::servers::{self, Programs};
use crate::workload::{KeySpace, Kind, Workload};

/// Everything a comparison measured.
pub(super) struct Measurements {
    /// One record per successful run, in run order.
    pub(super) runs: Vec<Record>,
    /// The runs that failed, as `what: error` (left out of the medians, listed in the report).
    pub(super) failures: Vec<String>,
    /// The memory comparison (empty when skipped).
    pub(super) memory: Vec<Memory>,
    /// The redis-benchmark cross-check (empty when skipped).
    pub(super) cross: Vec<Cross>,
}

/// Runs every workload × round × server, then the memory comparison and the cross-check if
/// they are enabled.
pub(super) fn all(
    config: &CompareConfig,
    rt: &tokio::runtime::Runtime,
    specs: &[Spec],
    targets: &[Target],
) -> anyhow::Result<Measurements> {
    let keys = Arc::new(KeySpace::new(config.keys, true));
    let mut runs = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for spec in specs {
        for round in 1..=config.rounds {
            for target in targets {
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
                runs.push(record);
            }
        }
    }

    let memory = if config.memory_sessions > 0 {
        memory(config, rt, targets)?
    } else {
        Vec::new()
    };
    let cross = if config.redis_benchmark_requests > 0 {
        cross_check(config, rt)?
    } else {
        Vec::new()
    };
    Ok(Measurements {
        runs,
        failures,
        memory,
        cross,
    })
}

/// One measured run.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) workload: &'static str,
    pub(super) server: String,
    pub(super) round: usize,
    pub(super) protocol: Protocol,
    pub(super) ops: f64,
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) p999: f64,
    pub(super) max: f64,
    pub(super) counts: Counts,
    pub(super) cpu: CpuUse,
}

/// One run: `target` started fresh, preloaded if the workload reads, measured, stopped.
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

/// The figures of one run that the report needs.
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

/// RSS of one server before and after the memory load.
pub(super) struct Memory {
    pub(super) server: String,
    pub(super) before: u64,
    pub(super) after: u64,
}

/// RSS of each server (Redis with AOF and the ceiling left out) before and after loading
/// `memory_sessions` sessions.
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
pub(super) struct Cross {
    pub(super) test: &'static str,
    pub(super) tool: &'static str,
    pub(super) ops: f64,
    pub(super) p50: f64,
    pub(super) p99: f64,
}

/// The RESP side of the generator against `redis-benchmark`: SET and GET on a fresh Redis,
/// once with each tool.
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
pub(super) fn parse_redis_benchmark_csv(text: &str) -> Vec<(String, (f64, f64, f64))> {
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
pub(super) fn machine_description(programs: &Programs) -> String {
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
    fn parses_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\
                    \"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"90090.09\",\"0.3\",\"0.1\",\"0.287\",\"0.5\",\
                    \"0.799\",\"2.1\"\n";
        let rows = parse_redis_benchmark_csv(text);
        assert_eq!(rows, vec![("SET".to_string(), (90090.09, 0.287, 0.799))]);
    }
}
