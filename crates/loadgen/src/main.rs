//! `sessiond-load`: the load generator (`run`), the do-nothing ceiling server (`ceiling`), the
//! side-by-side benchmark (`compare`) and the lateness of `expired` events (`expiry`). See
//! docs/benchmarks.md.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sessiond_loadgen::ceiling;
use sessiond_loadgen::compare::{self, CompareConfig};
use sessiond_loadgen::expiry::{self, ExpiryConfig};
use sessiond_loadgen::proto::Protocol;
use sessiond_loadgen::run::{self, RunConfig};
use sessiond_loadgen::servers::{Programs, find_program};
use sessiond_loadgen::tls::Connector;
use sessiond_loadgen::workload::{KeySpace, Kind, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "sessiond-load",
    version,
    about = "Load generator and benchmark kit for sessiond."
)]
struct Cli {
    /// Generator worker threads (the ceiling server always uses 2).
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Drive one server with one workload and print throughput and latency.
    Run(RunArgs),
    /// Serve canned replies on a port (the do-nothing ceiling).
    Ceiling(CeilingArgs),
    /// Start sessiond, memcached, Redis and the ceiling, load them alike, and write a table
    /// and chart of the medians.
    Compare(CompareArgs),
    /// Write keys whose deadlines are spread over a window and measure how late each one's
    /// `expired` keyspace event reaches a subscriber.
    Expiry(ExpiryArgs),
}

/// The shape of the load, shared by `run` and `compare`.
#[derive(Debug, clap::Args)]
struct Shape {
    /// Connections.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Key space.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 2048)]
    value_size: usize,
    /// TTL in seconds on sets (0: none).
    #[arg(long, default_value_t = 1800)]
    ttl: u32,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:11211")]
    server: SocketAddr,
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "text")]
    protocol: Protocol,
    /// session-mix (90/10 get/set), login-storm (sets of new keys), touch-heavy (50/50
    /// get/touch), php-cycle (ADD lock, GETK, SET, DELETE lock), mix (--get-pct/--touch-pct),
    /// or load (set every key once).
    #[arg(long, default_value = "session-mix")]
    workload: String,
    /// For `mix`: percentage of GETs.
    #[arg(long, default_value_t = 90)]
    get_pct: u32,
    /// For `mix`: percentage of touches (the rest are SETs).
    #[arg(long, default_value_t = 0)]
    touch_pct: u32,
    #[command(flatten)]
    shape: Shape,
    /// Measured duration (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Send this many requests in total instead of running for --duration (no warm-up).
    #[arg(long)]
    requests: Option<u64>,
    /// Unrecorded warm-up before the measured window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: total requests per second across all connections (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Store every key once before the run so reads hit.
    #[arg(long)]
    preload: bool,
    /// Seed for key choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Connect with TLS, verifying the server against the CA certificates in this PEM file
    /// (closed loop only).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca: the name the server's certificate must be valid for [default: the
    /// --server IP address].
    #[arg(long, value_name = "NAME")]
    tls_name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CeilingArgs {
    /// Address to listen on; port 0 picks a free one (printed as `listening <addr>`).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Size of the value in every read's canned hit.
    #[arg(long, default_value_t = 2048)]
    value_size: usize,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// The sessiond binary [default: `sessiond` next to this program].
    #[arg(long)]
    sessiond_bin: Option<PathBuf>,
    /// Output directory for results.md, runs.csv and chart.png [default: target/bench/<time>].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Parent of the servers' throwaway data directories [default: the system temp dir].
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Rounds (each runs every server once per workload).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured time per run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up per run.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    #[command(flatten)]
    shape: Shape,
    /// Workloads, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "session-mix,login-storm,touch-heavy,php-cycle"
    )]
    workloads: Vec<String>,
    /// Servers, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sessiond,memcached,redis,redis-aof,ceiling"
    )]
    servers: Vec<String>,
    /// Journal fsync modes to run sessiond with (e.g. everysec,always), one server each;
    /// empty runs sessiond once, on its default (everysec).
    #[arg(long, value_delimiter = ',')]
    journal_modes: Vec<String>,
    /// The sessiond flag selecting a journal mode; `{mode}` is replaced.
    #[arg(long, default_value = "--fsync={mode}")]
    journal_flag: String,
    /// Sessions loaded for the memory comparison (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    memory_sessions: u64,
    /// Value size for the memory comparison.
    #[arg(long, default_value_t = 1024)]
    memory_value_size: usize,
    /// Requests per redis-benchmark test in the RESP cross-check (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    redis_benchmark_requests: u64,
    /// A few-second run that checks the kit works (1 round, 200 ms runs, small key space).
    #[arg(long)]
    smoke: bool,
}

#[derive(Debug, clap::Args)]
struct ExpiryArgs {
    /// The server's RESP address.
    #[arg(long)]
    resp: SocketAddr,
    /// Keys to write, each expiring once.
    #[arg(long, default_value_t = 200_000)]
    sessions: u64,
    /// The deadlines are spread evenly over this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    window_ms: u64,
    /// The first deadline is this many milliseconds after the start; writing every key must
    /// finish before it (a warning says when it did not).
    #[arg(long, default_value_t = 3000)]
    lead_ms: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Writer connections.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Subscribe over RESP3 (events as pushes) instead of RESP2.
    #[arg(long)]
    resp3: bool,
    /// How long to wait for missing events after the last deadline, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    wait_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Ceiling(args) => ceiling_main(args),
        Cmd::Run(args) => {
            let rt = runtime(cli.threads)?;
            run_main(args, &rt)
        }
        Cmd::Compare(args) => {
            let rt = runtime(cli.threads)?;
            compare_main(args, &rt)
        }
        Cmd::Expiry(args) => {
            let rt = runtime(cli.threads)?;
            expiry_main(args, &rt)
        }
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {text:?}; use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn workload_kind(args: &RunArgs) -> anyhow::Result<Kind> {
    Ok(match args.workload.as_str() {
        "session-mix" => Kind::Mix {
            get_pct: 90,
            touch_pct: 0,
        },
        "touch-heavy" => Kind::Mix {
            get_pct: 50,
            touch_pct: 50,
        },
        "login-storm" => Kind::Login,
        "php-cycle" => Kind::Php,
        "load" => Kind::Load,
        "mix" => {
            if args.get_pct + args.touch_pct > 100 {
                bail!("--get-pct plus --touch-pct is more than 100");
            }
            Kind::Mix {
                get_pct: args.get_pct,
                touch_pct: args.touch_pct,
            }
        }
        other => bail!("unknown workload {other:?}"),
    })
}

fn run_main(args: RunArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let kind = workload_kind(&args)?;
    let keys = Arc::new(KeySpace::new(args.shape.keys, kind == Kind::Php));
    let connector = match &args.tls_ca {
        None => Connector::Plain,
        Some(ca) => {
            let name = args
                .tls_name
                .clone()
                .unwrap_or_else(|| args.server.ip().to_string());
            Connector::tls(ca, &name)?
        }
    };
    if args.preload {
        let loaded = rt.block_on(run::preload_with(
            args.server,
            args.protocol,
            keys.clone(),
            args.shape.value_size,
            args.shape.ttl,
            10,
            &connector,
        ))?;
        eprintln!(
            "preloaded {} keys in {:.2} s",
            args.shape.keys,
            loaded.elapsed.as_secs_f64()
        );
    }
    let config = RunConfig {
        addr: args.server,
        protocol: args.protocol,
        workload: Workload {
            kind,
            keys: args.shape.keys,
            value_size: args.shape.value_size,
            ttl: args.shape.ttl,
        },
        conns: args.shape.conns,
        depth: args.shape.depth,
        duration: args.duration,
        requests: args.requests,
        warmup: args.warmup,
        rate: args.rate,
        seed: args.seed,
    };
    let result = rt.block_on(run::run_with(&config, keys, &connector))?;
    println!("{}", result.summary());
    Ok(())
}

fn ceiling_main(args: CeilingArgs) -> anyhow::Result<()> {
    let rt = runtime(2)?;
    rt.block_on(async {
        let (listener, addr) = ceiling::bind(args.listen).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "sessiond-load ceiling {}", env!("CARGO_PKG_VERSION"))?;
        writeln!(out, "listening {addr}")?;
        writeln!(out, "ready")?;
        out.flush()?;
        drop(out);
        ceiling::serve(listener, args.value_size).await
    })
}

fn expiry_main(args: ExpiryArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let config = ExpiryConfig {
        addr: args.resp,
        sessions: args.sessions,
        window: Duration::from_millis(args.window_ms),
        lead: Duration::from_millis(args.lead_ms),
        value_size: args.value_size,
        conns: args.conns,
        resp3: args.resp3,
        wait: Duration::from_millis(args.wait_ms),
    };
    println!(
        "{} keys of {} B, deadlines over {} ms starting {} ms ahead, events over RESP{}",
        args.sessions,
        args.value_size,
        args.window_ms,
        args.lead_ms,
        if args.resp3 { 3 } else { 2 }
    );
    let result = rt.block_on(expiry::run(&config))?;
    println!("{}", result.summary());
    Ok(())
}

fn compare_main(args: CompareArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let me = std::env::current_exe().context("locating sessiond-load")?;
    let sessiond = match args.sessiond_bin {
        Some(path) => path,
        None => me.with_file_name("sessiond"),
    };
    if !sessiond.is_file() {
        bail!(
            "no sessiond binary at {}: build it (cargo build --release -p sessiond) or pass --sessiond-bin",
            sessiond.display()
        );
    }
    let programs = Programs {
        sessiond,
        loadgen: me.clone(),
        memcached: find_program("memcached", "memcached")?,
        redis_server: find_program("redis-server", "redis-server")?,
    };
    let out_dir = args.out_dir.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("target/bench").join(secs.to_string())
    });
    let mut config = CompareConfig {
        programs,
        scratch: args
            .scratch
            .unwrap_or_else(|| std::env::temp_dir().join("sessiond-bench")),
        out_dir,
        rounds: args.rounds.max(1),
        duration: args.duration,
        warmup: args.warmup,
        conns: args.shape.conns,
        depth: args.shape.depth,
        keys: args.shape.keys,
        value_size: args.shape.value_size,
        ttl: args.shape.ttl,
        workloads: args.workloads,
        servers: args.servers,
        journal_modes: args
            .journal_modes
            .into_iter()
            .filter(|m| !m.is_empty())
            .collect(),
        journal_flag: args.journal_flag,
        memory_sessions: args.memory_sessions,
        memory_value_size: args.memory_value_size,
        redis_benchmark_requests: args.redis_benchmark_requests,
        settle: Duration::from_secs(1),
    };
    if args.smoke {
        config.rounds = 1;
        config.duration = Duration::from_millis(200);
        config.warmup = Duration::from_millis(50);
        config.settle = Duration::from_millis(100);
        config.conns = config.conns.min(8);
        config.keys = config.keys.min(1000);
        config.memory_sessions = config.memory_sessions.min(5_000);
        config.redis_benchmark_requests = config.redis_benchmark_requests.min(2000);
    }
    let results = compare::compare(&config, rt)?;
    print!("{}", std::fs::read_to_string(&results)?);
    Ok(())
}
