//! `sessiond-farm`: starts the whole farm on free loopback ports and prints where it is;
//! Ctrl-C (or SIGTERM) stops every process by pid and removes the throwaway directory.
//!
//! ```text
//! sessiond-farm [--store sessiond|memcached|redis|sessiond-resp] [--sessiond-nodes 1|2] [--no-rust]
//! ```
//!
//! Prints `round-robin <url>`, `sticky <url>`, `rust-only <url>` (with a Rust node), one
//! `node <name> <url>` line per node, the sessiond addresses and `ready`, in that order, so
//! scripts (bench/farm.sh) can read them. `--store sessiond-resp` is the PHP nodes on
//! phpredis against sessiond's RESP port (the benchmark's like-for-like with Redis).

use std::path::PathBuf;

use sessiond_farm::{Farm, FarmConfig, Store};

fn usage() -> ! {
    eprintln!(
        "usage: sessiond-farm [--store sessiond|memcached|redis|sessiond-resp] \
         [--sessiond-nodes 1|2] [--no-rust]"
    );
    std::process::exit(2);
}

fn main() {
    // The harness finds sessiond beside a test executable (target/<profile>/deps/…); this
    // binary sits one level up, beside sessiond itself.
    if std::env::var_os("SESSIOND_BIN").is_none()
        && let Some(bin) = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("sessiond")))
            .filter(|p| p.is_file())
    {
        // SAFETY: nothing else runs yet: no thread reads or writes the environment.
        unsafe { std::env::set_var("SESSIOND_BIN", bin) };
    }
    let mut config = FarmConfig::default();
    // The Rust node is the sibling binary Cargo builds in the same directory.
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("sessiond-farm-node")))
        .filter(|p| p.is_file());
    let mut rust: Option<PathBuf> = sibling;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--store" => {
                config.store = args
                    .next()
                    .and_then(|s| Store::parse(&s))
                    .unwrap_or_else(|| usage())
            }
            "--sessiond-nodes" => {
                config.sessiond_nodes = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=2).contains(n))
                    .unwrap_or_else(|| usage())
            }
            "--no-rust" => rust = None,
            _ => usage(),
        }
    }
    // The Rust node speaks php-memcached's format and protocol; phpredis keeps sessions in
    // another shape, so a phpredis farm (Redis, or sessiond's RESP port) runs the PHP nodes
    // only.
    if !config.store.is_php_memcached() {
        rust = None;
    }
    if config.store == Store::SessiondResp && config.sessiond_nodes != 1 {
        eprintln!(
            "sessiond-farm: phpredis has no replicas: --store sessiond-resp runs one sessiond"
        );
        std::process::exit(2);
    }
    config.rust_node = rust;
    let farm = Farm::start(config.clone());
    println!("round-robin {}/", farm.round_robin_url());
    println!("sticky {}/", farm.sticky_url());
    if let Some(url) = farm.rust_only_url() {
        println!("rust-only {url}/");
    }
    for name in farm.node_names() {
        println!("node {name} {}/", farm.node_url(name));
    }
    if config.store.is_sessiond() {
        for i in 0..config.sessiond_nodes {
            println!(
                "sessiond{} memcache {} resp {} admin http://{}/admin",
                i + 1,
                farm.sessiond_memcache(i),
                farm.sessiond_resp(i),
                farm.sessiond_http(i)
            );
        }
    }
    println!("directory {}", farm.dir().display());
    println!("ready");
    println!(
        "Open {}/ and log in; Ctrl-C stops the farm.",
        farm.round_robin_url()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the signals");
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    drop(farm);
}
