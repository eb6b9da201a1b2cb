//! The `sessiond` binary: reads the configuration, sets up logging, binds, prints the bound
//! addresses and serves until SIGINT or SIGTERM. SIGHUP reloads the TLS certificate, key and
//! client CA.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use sessiond::{Options, Server};

fn main() -> anyhow::Result<()> {
    let config = Options::parse().resolve()?;
    init_logging(&config.log, config.log_json)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        // Signal handlers are installed before `ready` is printed, so a SIGTERM sent the
        // moment a supervisor sees `ready` already means "stop gracefully", never "die".
        let shutdown = shutdown_signal()?;
        let server = Server::bind(config).await?;
        reload_on_sighup(server.tls())?;
        // Tests and scripts read these lines to learn the ports (port 0 picks a free one).
        let mut out = std::io::stdout().lock();
        writeln!(out, "sessiond {}", env!("CARGO_PKG_VERSION"))?;
        if let Some(addr) = server.memcache_addr() {
            writeln!(out, "listening memcache {addr}")?;
            tracing::info!(%addr, "memcache listener bound");
        }
        if let Some(addr) = server.resp_addr() {
            writeln!(out, "listening resp {addr}")?;
            tracing::info!(%addr, "RESP listener bound");
        }
        if let Some(addr) = server.memcache_tls_addr() {
            writeln!(out, "listening memcache-tls {addr}")?;
            tracing::info!(%addr, "memcache TLS listener bound");
        }
        if let Some(addr) = server.resp_tls_addr() {
            writeln!(out, "listening resp-tls {addr}")?;
            tracing::info!(%addr, "RESP TLS listener bound");
        }
        if let Some(addr) = server.http_addr() {
            writeln!(out, "listening http {addr}")?;
            tracing::info!(%addr, "HTTP listener bound");
        }
        if let Some(addr) = server.http_tls_addr() {
            writeln!(out, "listening http-tls {addr}")?;
            tracing::info!(%addr, "HTTP TLS listener bound");
        }
        writeln!(out, "ready")?;
        out.flush()?;
        drop(out);
        server.run(shutdown).await
    })
}

fn init_logging(filter: &str, json: bool) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("--log filter")?;
    // Colours only on a terminal: a log file or journald would otherwise get escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

/// Installs the SIGHUP handler (before `ready`, like the others, so an early SIGHUP never
/// kills the process) and spawns the task that reloads the TLS files on each SIGHUP. Without
/// TLS a SIGHUP is logged and otherwise ignored. A failed reload is logged as an error and
/// the certificate in use stays; connections are never touched either way.
fn reload_on_sighup(tls: Option<std::sync::Arc<sessiond::Tls>>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(tls) = tls.clone() else {
                tracing::info!("SIGHUP received; no TLS configured, nothing to reload");
                continue;
            };
            // Reading files: off the async workers.
            match tokio::task::spawn_blocking(move || tls.reload()).await {
                Ok(Ok(())) => tracing::info!("SIGHUP received; TLS certificate reloaded"),
                Ok(Err(error)) => tracing::error!(
                    "SIGHUP received; TLS reload failed, keeping the current certificate: {error:#}"
                ),
                Err(error) => tracing::error!(%error, "TLS reload panicked"),
            }
        }
    });
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future that completes when
/// either signal arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
