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
//! Journal modes: sessiond always journals (to its throwaway data directory), with its default
//! `--fsync everysec` unless told otherwise. `--journal-modes everysec,always` runs sessiond
//! once per mode, passing `--journal-flag` with `{mode}` substituted (default
//! `--fsync={mode}`), and reports each as its own server; with `--journal-modes` empty,
//! sessiond runs once, on its default.
//!
//! The work is split in three steps with plain data between them: [`measure`] runs the
//! servers and returns raw figures ([`measure::Measurements`]), [`aggregate`] reduces them to
//! medians per workload and server ([`aggregate::Table`]), and [`report`] renders the table,
//! the CSV and the chart. Only `measure` starts processes; the markdown is a pure function of
//! what the other two produce.

mod aggregate;
mod measure;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::proto::Protocol;
use crate::servers::{self, Programs};
use crate::workload::Kind;

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
    /// Journal fsync modes to run sessiond with, one server each; empty: sessiond once, with
    /// its default (`everysec`).
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

/// The four workloads.
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

/// Runs the whole comparison and writes results.md, runs.csv and chart.png into `out_dir`.
pub fn compare(config: &CompareConfig, rt: &tokio::runtime::Runtime) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&config.out_dir)
        .with_context(|| format!("creating {}", config.out_dir.display()))?;
    std::fs::create_dir_all(&config.scratch)
        .with_context(|| format!("creating {}", config.scratch.display()))?;
    let specs = specs(config)?;
    let targets = targets(config)?;
    let machine = measure::machine_description(&config.programs);
    let started = Instant::now();
    let per_run = config.duration + config.warmup + Duration::from_secs(2);
    eprintln!(
        "compare: {} workloads x {} servers x {} rounds, about {:.0} s of runs plus memory and cross-check",
        specs.len(),
        targets.len(),
        config.rounds,
        (per_run * (specs.len() * targets.len() * config.rounds) as u32).as_secs_f64()
    );

    let measured = measure::all(config, rt, &specs, &targets)?;
    let wall = started.elapsed();
    let table = aggregate::Table::new(&specs, &targets, &measured.runs);

    let chart = report::chart(&config.out_dir.join("chart.png"), &specs, &table);
    if let Err(e) = &chart {
        eprintln!("compare: no chart: {e:#}");
    }
    let md = report::markdown(&report::Report {
        config,
        machine: &machine,
        wall,
        specs: &specs,
        targets: &targets,
        table: &table,
        measured: &measured,
        chart: &chart,
    })?;
    let md_path = config.out_dir.join("results.md");
    std::fs::write(&md_path, &md)?;
    std::fs::write(config.out_dir.join("runs.csv"), report::csv(&measured.runs))?;
    eprintln!(
        "compare: done in {:.0} s; wrote {}",
        started.elapsed().as_secs_f64(),
        md_path.display()
    );
    Ok(md_path)
}

/// The workloads `--workloads` names, in its order.
fn specs(config: &CompareConfig) -> anyhow::Result<Vec<Spec>> {
    config
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
        .collect()
}

/// The servers `--servers` names, sessiond once per journal mode.
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
