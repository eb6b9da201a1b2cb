//! The sessiond server: the only crate that opens sockets, spawns tasks and reads the clock.
//!
//! ```text
//!   TcpListener ──accept──▶ conn::serve with conn::memcache (one task per connection)
//!                              │ bytes ─▶ proto-memcache decoder ─▶ Command
//!                              │ exec::memcache::execute(Command, now) ─▶ store ops ─▶ Outcome
//!                              │ Outcome ─▶ proto-memcache encoder ─▶ bytes
//!   TcpListener ──accept──▶ conn::serve with conn::resp (one task per connection)
//!                              │ bytes ─▶ proto-resp decoder ─▶ argument vector
//!                              │ exec::resp::execute(args, session, now) ─▶ store ops ─▶ Reply
//!                              │ Reply ─▶ proto-resp encoder (RESP2 or RESP3) ─▶ bytes
//!                              └ pub/sub queue ─▶ pushes
//!   TLS TcpListener ──accept──▶ tls::Tls::handshake (bounded) ─▶ the same conn::serve
//!   HTTP TcpListener ──accept──▶ (TLS handshake) ─▶ http::serve: hyper HTTP/1.1 ─▶ axum router
//!                              └ /api/v1 ─▶ sessions::Sessions (the SESSION.* operations)
//!   expirer task ── every 10 ms: every database's expire_due(now) ─▶ `expired` notifications
//! ```
//!
//! [`Server::bind`] binds every listener first, so callers (and tests) learn the real
//! addresses before any traffic, then [`Server::run`] serves until the shutdown future
//! completes. Shutdown stops accepting, lets each connection finish the requests it has
//! read, and waits (bounded) for connections to close.
//!
//! What this crate deliberately does not do: protocol parsing (the `proto-*` crates) or
//! storage semantics (the `store` crate). `exec` is the single place where they meet.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod changes;
mod clock;
mod config;
mod conn;
mod durability;
mod exec;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http;
mod metrics;
mod sessions;
mod stats;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sessiond_store::Budget;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use config::{ClientAuth, Config, Options, TlsConfig};
use conn::Listener;
use exec::Shared;
use stats::bump;
pub use tls::Tls;

/// How often the expirer sweeps the timing wheels. Keyspace notifications promise an
/// `expired` event within 100 ms of the deadline; 10 ms leaves a wide margin at negligible cost.
const EXPIRE_TICK: Duration = Duration::from_millis(10);
/// Number of databases (RESP `SELECT 0..15`); database 0 is the memcached keyspace.
pub const DATABASES: usize = 16;
/// How long shutdown waits for open connections to finish before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, not yet running, server.
pub struct Server {
    shared: Arc<Shared>,
    memcache: Option<TcpListener>,
    resp: Option<TcpListener>,
    memcache_tls: Option<TcpListener>,
    resp_tls: Option<TcpListener>,
    http: Option<TcpListener>,
    http_tls: Option<TcpListener>,
    tls: Option<Arc<Tls>>,
}

impl Server {
    /// Reads the TLS files (if any), recovers the stores from the data directory, then binds
    /// every configured listener.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        // Before recovery: a bad certificate is a configuration mistake to report at once.
        let tls = match &config.tls {
            None => None,
            Some(settings) => Some(Arc::new(Tls::load(settings.clone())?)),
        };
        if tls.is_some()
            && config.memcache_tls_listen.is_none()
            && config.resp_tls_listen.is_none()
            && config.http_tls_listen.is_none()
        {
            tracing::warn!(
                "--tls-cert is set but no TLS listener is (--memcache-tls-listen, \
                 --resp-tls-listen, --http-tls-listen)"
            );
        }
        let budget = Arc::new(Budget::new(config.max_memory));
        let options = durability::OpenOptions {
            dir: config.data_dir.clone(),
            policy: config.fsync,
            recover_truncate: config.recover_truncate,
            databases: DATABASES,
            segment_limit: config.journal_segment_size,
            rewrite_min_size: config.journal_rewrite_min_size,
        };
        // The hub the stores' observer publishes lazy expiries on, and the connections use.
        let pubsub = Arc::new(exec::resp::pubsub::PubSub::default());
        let observed_pubsub = pubsub.clone();
        let sessions = config.sessions.clone().map(|settings| {
            Arc::new(sessions::Sessions::new(
                settings,
                budget.clone(),
                pubsub.clone(),
            ))
        });
        let observed_sessions = sessions.clone();
        // Recovery reads files and may take a while; keep it off the async workers.
        let opened = tokio::task::spawn_blocking(move || {
            let now = clock::now_ms();
            let opened = durability::open(&options, budget, now, &|db, journal| {
                changes::ChangeObserver::shared(
                    db,
                    journal,
                    Some(observed_pubsub.clone()),
                    observed_sessions.clone(),
                )
            })?;
            // Replay tells no observer: the session index is derived from what it restored.
            if let Some(sessions) = &observed_sessions {
                sessions.rebuild(&opened.stores, now);
            }
            anyhow::Ok(opened)
        })
        .await
        .context("recovery panicked")??;
        let memcache = bind(config.memcache_listen, "memcache").await?;
        let resp = bind(config.resp_listen, "RESP").await?;
        let memcache_tls = bind(config.memcache_tls_listen, "memcache TLS").await?;
        let resp_tls = bind(config.resp_tls_listen, "RESP TLS").await?;
        let http = bind(config.http_listen, "HTTP").await?;
        let http_tls = bind(config.http_tls_listen, "HTTP TLS").await?;
        let journal = opened.journal;
        let shared = Arc::new(Shared::new(
            opened.stores,
            Some(journal.clone()),
            config,
            pubsub,
            sessions,
        ));
        Ok(Server {
            shared,
            memcache,
            resp,
            memcache_tls,
            resp_tls,
            http,
            http_tls,
            tls,
        })
    }

    /// The memcached listener's bound address, if it is enabled.
    pub fn memcache_addr(&self) -> Option<SocketAddr> {
        self.memcache.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The RESP listener's bound address, if it is enabled.
    pub fn resp_addr(&self) -> Option<SocketAddr> {
        self.resp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The memcached TLS listener's bound address, if it is enabled.
    pub fn memcache_tls_addr(&self) -> Option<SocketAddr> {
        self.memcache_tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The RESP TLS listener's bound address, if it is enabled.
    pub fn resp_tls_addr(&self) -> Option<SocketAddr> {
        self.resp_tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The HTTP listener's bound address, if it is enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The HTTPS listener's bound address, if it is enabled.
    pub fn http_tls_addr(&self) -> Option<SocketAddr> {
        self.http_tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The TLS material, to reload it (on SIGHUP) while the server runs; `None` without TLS.
    pub fn tls(&self) -> Option<Arc<Tls>> {
        self.tls.clone()
    }

    /// Serves until `shutdown` completes, then stops gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(expirer(self.shared.clone(), stop_rx.clone()));
        let connections = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let listeners = [
            (self.memcache, Listener::Memcache, None),
            (self.resp, Listener::Resp, None),
            (self.memcache_tls, Listener::Memcache, self.tls.clone()),
            (self.resp_tls, Listener::Resp, self.tls.clone()),
            (self.http, Listener::Http, None),
            (self.http_tls, Listener::Http, self.tls.clone()),
        ];
        for (listener, protocol, tls) in listeners {
            if let Some(listener) = listener {
                // A connection budget per listener: a thousand idle (or unauthenticated)
                // RESP connections must not lock memcached clients out, nor the reverse.
                let limit = Arc::new(Semaphore::new(self.shared.config.max_connections));
                tasks.spawn(accept_loop(
                    listener,
                    protocol,
                    tls,
                    self.shared.clone(),
                    limit,
                    connections.clone(),
                    stop_rx.clone(),
                ));
            }
        }
        tokio::select! {
            () = shutdown => {}
            () = self.shared.shutdown.notified() => {}
        }
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        let mut open = std::mem::take(&mut *connections.lock().unwrap_or_else(|e| e.into_inner()));
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while open.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
        if let Some(journal) = self.shared.journal.clone() {
            // Flush and fsync what is queued, whatever the policy, before exiting.
            tokio::task::spawn_blocking(move || journal.shutdown())
                .await
                .context("journal shutdown panicked")?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds the listener `name` to `addr`, if it is enabled.
async fn bind(addr: Option<SocketAddr>, name: &str) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .with_context(|| format!("binding the {name} listener to {addr}")),
    }
}

async fn accept_loop(
    listener: TcpListener,
    protocol: Listener,
    tls: Option<Arc<Tls>>,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    connections: Arc<std::sync::Mutex<JoinSet<()>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(5);
    let counts = stats::listener_index(protocol, tls.is_some());
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                bump(&shared.stats.more.listeners[counts].accept_errors);
                // Typically EMFILE: wait for connections to close instead of spinning.
                tracing::warn!(%error, "accept failed; backing off for {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            bump(&shared.stats.rejected_connections);
            bump(&shared.stats.more.listeners[counts].rejected);
            // A TLS client cannot read a refusal in clear text; it is just closed.
            if tls.is_none() {
                tokio::spawn(refuse(stream, protocol));
            }
            continue;
        };
        bump(&shared.stats.total_connections);
        bump(&shared.stats.curr_connections);
        bump(&shared.stats.more.listeners[counts].accepted);
        bump(&shared.stats.more.listeners[counts].current);
        let shared = shared.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        let mut set = connections.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished connections so the set does not grow with every one ever served.
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            conn::serve_tcp(stream, protocol, tls, shared.clone(), stop).await;
            shared
                .stats
                .curr_connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            shared.stats.more.listeners[counts]
                .current
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn refuse(mut stream: TcpStream, listener: Listener) {
    use tokio::io::AsyncWriteExt;
    let _ = stream.write_all(listener.refusal()).await;
    let _ = stream.shutdown().await;
}

async fn expirer(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EXPIRE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        // Keep sweeping while a backlog remains, yielding between rounds so a mass expiry
        // never starves connections. Each database's sweep holds the script gate shared, so
        // keys do not vanish under a running script; each removal is published as an
        // `expired` keyspace event (one atomic load when notifications are off).
        for store in shared.databases.iter() {
            loop {
                let removed = {
                    let _gate = shared.gate.read().await;
                    // The stores' observer (`changes`) publishes each expiry.
                    store.expire_due(clock::now_ms())
                };
                if removed == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        // The admin page's chart: the online counts once a minute (one load in between).
        if let Some(sessions) = &shared.sessions {
            sessions.sample(clock::now_ms(), false);
        }
        // The journal's writer notices when the journal has outgrown the live data; the
        // rewrite it asks for needs the stores, which the server holds.
        if let Some(journal) = &shared.journal
            && journal.take_rewrite_due()
        {
            let _ = shared.start_journal_rewrite();
        }
    }
}
