//! The memcached store: session records on several memcached-protocol servers (memcached or
//! sessiond), placed on a libmemcached-compatible ketama ring, with replicas, per-server
//! timeouts and dead-server marking.
//!
//! # Placement
//!
//! A session is stored under `<prefix><id>` but placed by its id alone, as php-memcached
//! places `memc.sess.key.<id>` by `<id>` (its prefix is a libmemcached namespace, which is not
//! hashed). With the same server list and [`Distribution`], a Rust app and a PHP app therefore
//! agree on the server of every session; `tests/it/conformance.rs` checks it against php-cli.
//! With `replicas = n`, the copies live on the `n` servers that follow the owner in the
//! configured list, as libmemcached places `MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS` copies.
//!
//! # The contract on memcached
//!
//! The value is JSON `{"v": <version>, "r": <record>}`. The version lives in the value, not
//! in memcached's CAS unique, so a touch (which must not change the version) and a sessiond
//! restart (which renumbers CAS uniques) cannot confuse it. CAS uniques are still what makes
//! a write atomic: `update` and `touch` read with `gets`, check the version, and write with
//! `cas`; if anything wrote in between, the `cas` fails with `EXISTS` and the step is re-read
//! (a touch that slipped in does not turn an update into a conflict). `create` is `add`,
//! `delete` is `delete`; `cas` on a deleted key answers `NOT_FOUND`, so nothing but `create`
//! makes a record exist.
//!
//! # Replicas and failover
//!
//! The first server of a session's list that is not marked dead is its *authority*: it alone
//! decides create/update/touch outcomes and answers loads; a miss there is a miss (replicas
//! are not consulted on a miss, so a stale copy cannot bring a session back). After the
//! authority has applied a write, each replica gets it through `gets` + `cas`, and only if the
//! replica holds an older version (or the same version with older activity): a replica never
//! goes backwards and is never created by an update, so a concurrent delete cannot be undone
//! on it. A replica that misses a write is not repaired later.
//!
//! A server that fails `failure_limit` requests in a row (timeout, refused connection, broken
//! stream) is marked dead for `retry_interval`; meanwhile the next server of each list takes
//! over, and afterwards the server gets one request to prove itself. Protocol errors such as
//! `SERVER_ERROR out of memory` are store errors but do not mark the server dead.
//!
//! What this does not promise (memcached has no consensus): a server that comes back from
//! dead with its old data becomes the authority again, so writes made on the replica during
//! its absence are not seen until they are rewritten, and a session deleted while one of its
//! servers was unreachable can reappear if that server later becomes the authority. With
//! `replicas = 0` (the default) neither can happen: a dead owner makes its sessions fail
//! with an error until it returns, which is what an app that must not lose a logout wants.
//! sessiond servers keep their data across restarts; memcached servers do not.

#![deny(missing_docs)]

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sessiond_proto_memcache::text::{self, TextReply, TextRequest};
use sessiond_proto_memcache::{Command, StoreMode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub use super::ketama::Distribution;
use super::ketama::{Continuum, Node};
use super::{
    CreateOutcome, KeyLayout, Record, SessionStore, StoreError, StoreFuture, UpdateOutcome,
    Version, Versioned,
};
use crate::id::SessionId;

/// One server of the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Host name or address, written as the PHP side writes it (it is part of the hash).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Relative weight; used by [`Distribution::KetamaWeighted`] only, as in libmemcached.
    pub weight: u32,
}

impl ServerSpec {
    /// A server with weight 1.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            weight: 1,
        }
    }
}

/// Configuration of a [`MemcachedStore`].
#[derive(Debug, Clone)]
pub struct MemcachedConfig {
    /// The servers, in the order PHP lists them.
    pub servers: Vec<ServerSpec>,
    /// The ring construction; must match the PHP side's `memcached.sess_consistent_hash_type`.
    pub distribution: Distribution,
    /// Extra copies of each session (php-memcached's `sess_number_of_replicas`). Default 0.
    pub replicas: usize,
    /// Longest a request to one server may take, connecting included. Default 500 ms.
    pub timeout: Duration,
    /// How long a server marked dead is skipped. Default 2 s (libmemcached's retry timeout).
    pub retry_interval: Duration,
    /// Consecutive failures that mark a server dead. Default 2.
    pub failure_limit: u32,
    /// Prepended to every key. Default `sess:`; ids are placed without it.
    pub prefix: String,
    /// Idle connections kept per server. Default 16.
    pub max_idle: usize,
}

impl MemcachedConfig {
    /// Defaults for `servers`.
    pub fn new(servers: Vec<ServerSpec>) -> Self {
        Self {
            servers,
            distribution: Distribution::Ketama,
            replicas: 0,
            timeout: Duration::from_millis(500),
            retry_interval: Duration::from_secs(2),
            failure_limit: 2,
            prefix: "sess:".to_owned(),
            max_idle: 16,
        }
    }

    /// Parses a PHP `session.save_path`: php-memcached's `host:port[:weight]` list
    /// (`127.0.0.1:11211:2,10.0.0.2:11211`) or the old memcache extension's
    /// `tcp://host:port?weight=2` form, separated by commas or spaces.
    pub fn from_save_path(save_path: &str) -> Result<Self, StoreError> {
        let bad = |s: &str| StoreError::new(format!("bad memcached server `{s}`"));
        let mut servers = Vec::new();
        for item in save_path
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (addr, query) = match item.strip_prefix("tcp://") {
                Some(rest) => rest.split_once('?').unwrap_or((rest, "")),
                None => (item, ""),
            };
            let mut parts = addr.split(':');
            let host = parts
                .next()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| bad(item))?;
            let port = match parts.next() {
                Some(p) => p.parse().map_err(|_| bad(item))?,
                None => 11211,
            };
            let mut weight = match parts.next() {
                Some(w) => w.parse().map_err(|_| bad(item))?,
                None => 1,
            };
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                if let Some(w) = pair.strip_prefix("weight=") {
                    weight = w.parse().map_err(|_| bad(item))?;
                }
            }
            servers.push(ServerSpec {
                host: host.to_owned(),
                port,
                weight: weight.max(1),
            });
        }
        if servers.is_empty() {
            return Err(StoreError::new("no memcached servers"));
        }
        Ok(Self::new(servers))
    }
}

/// A server's connections and health.
pub(super) struct Server {
    pub(super) addr: String,
    idle: Mutex<Vec<Conn>>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    failures: u32,
    dead_until: Option<Instant>,
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// Why one server could not answer.
pub(super) enum CallError {
    /// Marked dead, or the request failed on the network: try the next server.
    Unreachable(String),
    /// The server answered with an error (`SERVER_ERROR …`): the store fails.
    Server(String),
}

/// The memcached store. Share it in an `Arc` (the layer does); connections are pooled inside.
pub struct MemcachedStore {
    servers: Vec<Server>,
    ring: Continuum,
    config: MemcachedConfig,
}

/// What the value holds; the version travels with the record.
#[derive(Serialize)]
struct StoredRef<'a> {
    v: Version,
    r: &'a Record,
}

#[derive(Deserialize)]
struct Stored {
    v: Version,
    r: Record,
}

/// A value read with `gets`.
struct Found {
    stored: Stored,
    cas: u64,
}

/// memcached's exptime for `ttl`: whole seconds rounded up (0 would mean "never"), and an
/// absolute Unix time past 30 days, where memcached stops reading it as relative.
pub(super) fn exptime(ttl: Duration) -> i64 {
    const THIRTY_DAYS: u64 = 30 * 24 * 3600;
    let secs = ttl.as_millis().div_ceil(1000).max(1) as u64;
    if secs <= THIRTY_DAYS {
        secs as i64
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        (now + secs) as i64
    }
}

fn encode(record: &Record, version: Version) -> Result<Bytes, StoreError> {
    serde_json::to_vec(&StoredRef {
        v: version,
        r: record,
    })
    .map(Bytes::from)
    .map_err(|e| StoreError::new(format!("encoding record: {e}")))
}

fn store_cmd(mode: StoreMode, key: &Bytes, value: Bytes, ttl: Duration, cas: u64) -> TextRequest {
    TextRequest {
        command: Command::Store {
            mode,
            key: key.clone(),
            flags: 0,
            exptime: exptime(ttl),
            value,
            cas,
        },
        noreply: false,
        with_cas: false,
        more: false,
    }
}

pub(super) fn status(reply: &TextReply) -> &[u8] {
    match reply {
        TextReply::Status(s) => s,
        _ => b"",
    }
}

impl Server {
    fn is_dead(&self, now: Instant) -> bool {
        self.health
            .lock()
            .unwrap()
            .dead_until
            .is_some_and(|t| t > now)
    }

    fn record(&self, ok: bool, config: &MemcachedConfig) {
        let mut h = self.health.lock().unwrap();
        if ok {
            *h = Health::default();
        } else {
            h.failures += 1;
            if h.failures >= config.failure_limit {
                if h.dead_until.is_none_or(|t| t <= Instant::now()) {
                    tracing::warn!(server = %self.addr, "memcached server marked dead");
                }
                h.dead_until = Some(Instant::now() + config.retry_interval);
            }
        }
    }

    async fn exchange(conn: &mut Conn, wire: &[u8]) -> std::io::Result<TextReply> {
        conn.stream.write_all(wire).await?;
        loop {
            match text::decode_reply(&mut conn.buf) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
            if conn.stream.read_buf(&mut conn.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Sends one request and reads its reply, on a pooled connection.
    pub(super) async fn call(
        &self,
        req: &TextRequest,
        config: &MemcachedConfig,
    ) -> Result<TextReply, CallError> {
        if self.is_dead(Instant::now()) {
            return Err(CallError::Unreachable(format!(
                "{} is marked dead",
                self.addr
            )));
        }
        let mut wire = BytesMut::new();
        text::encode_request(req, &mut wire);
        let pooled = self.idle.lock().unwrap().pop();
        let connect = || async {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(Conn {
                stream,
                buf: BytesMut::with_capacity(4096),
            })
        };
        let attempt = async {
            if let Some(mut conn) = pooled {
                match Self::exchange(&mut conn, &wire).await {
                    Ok(reply) => return Ok((conn, reply)),
                    // A pooled connection the server closed while it sat idle (a restart,
                    // an idle timeout) fails before any reply byte arrives; that says nothing
                    // about the server, so try once more on a fresh connection. A connection
                    // that broke mid-reply is a real failure.
                    Err(_) if conn.buf.is_empty() => {}
                    Err(e) => return Err(e),
                }
            }
            let mut conn = connect().await?;
            let reply = Self::exchange(&mut conn, &wire).await?;
            Ok::<_, std::io::Error>((conn, reply))
        };
        match tokio::time::timeout(config.timeout, attempt).await {
            Ok(Ok((conn, reply))) => {
                self.record(true, config);
                // A connection goes back only after a complete reply, so the next request
                // never reads a stale answer.
                let mut idle = self.idle.lock().unwrap();
                if idle.len() < config.max_idle {
                    idle.push(conn);
                }
                drop(idle);
                let line = status(&reply);
                if line.starts_with(b"SERVER_ERROR")
                    || line.starts_with(b"CLIENT_ERROR")
                    || line == b"ERROR"
                {
                    return Err(CallError::Server(format!(
                        "{}: {}",
                        self.addr,
                        String::from_utf8_lossy(line)
                    )));
                }
                Ok(reply)
            }
            Ok(Err(e)) => {
                self.record(false, config);
                Err(CallError::Unreachable(format!("{}: {e}", self.addr)))
            }
            Err(_) => {
                self.record(false, config);
                Err(CallError::Unreachable(format!("{}: timed out", self.addr)))
            }
        }
    }
}

impl MemcachedStore {
    /// A store over `config.servers`. Connects lazily: no server has to be up yet.
    pub fn new(config: MemcachedConfig) -> Result<Self, StoreError> {
        if config.servers.is_empty() {
            return Err(StoreError::new("no memcached servers"));
        }
        let nodes: Vec<Node> = config
            .servers
            .iter()
            .map(|s| Node {
                host: s.host.clone(),
                port: s.port,
                weight: s.weight,
            })
            .collect();
        let servers = config
            .servers
            .iter()
            .map(|s| Server {
                addr: format!("{}:{}", s.host, s.port),
                idle: Mutex::new(Vec::new()),
                health: Mutex::new(Health::default()),
            })
            .collect();
        Ok(Self {
            servers,
            ring: Continuum::new(&nodes, config.distribution),
            config,
        })
    }

    /// The index (in configuration order) of the server that owns `id`, as libmemcached
    /// computes it.
    pub fn server_index(&self, id: &str) -> usize {
        self.ring.server_for(id.as_bytes()).unwrap_or(0)
    }

    /// The servers holding `id`: the owner, then its replicas.
    fn placement(&self, id: &SessionId) -> Vec<usize> {
        self.placement_of(id.as_str())
    }

    /// The servers holding a key placed by `hash_key`: the owner, then its replicas.
    pub(super) fn placement_of(&self, hash_key: &str) -> Vec<usize> {
        let n = self.servers.len();
        let first = self.server_index(hash_key);
        (0..=self.config.replicas.min(n - 1))
            .map(|i| (first + i) % n)
            .collect()
    }

    /// Server `index` of the configured list.
    pub(super) fn server(&self, index: usize) -> &Server {
        &self.servers[index]
    }

    /// The configuration.
    pub(super) fn config(&self) -> &MemcachedConfig {
        &self.config
    }

    fn key(&self, id: &SessionId) -> Bytes {
        Bytes::from(format!("{}{}", self.config.prefix, id.as_str()))
    }

    /// Sends `add` (a memcached `add`) to the first server of `list` that answers: its
    /// position in `list`, and whether it stored (`false`: the key was there).
    pub(super) async fn add_on_authority(
        &self,
        list: &[usize],
        add: &TextRequest,
    ) -> Result<(usize, bool), StoreError> {
        self.on_authority(list, |server| async move {
            let reply = server.call(add, &self.config).await?;
            match status(&reply) {
                b"STORED" => Ok(true),
                b"NOT_STORED" | b"EXISTS" => Ok(false),
                other => Err(CallError::Server(format!(
                    "{}: unexpected reply to add: {}",
                    server.addr,
                    String::from_utf8_lossy(other)
                ))),
            }
        })
        .await
    }

    /// Runs `op` on the first server of `list` that answers; returns its position in the list
    /// and the result. Fails if none does.
    pub(super) async fn on_authority<'a, T, F, Fut>(
        &'a self,
        list: &[usize],
        op: F,
    ) -> Result<(usize, T), StoreError>
    where
        F: Fn(&'a Server) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let mut last = String::from("no server");
        for (pos, &i) in list.iter().enumerate() {
            match op(&self.servers[i]).await {
                Ok(v) => return Ok((pos, v)),
                Err(CallError::Server(e)) => return Err(StoreError::new(format!("memcached {e}"))),
                Err(CallError::Unreachable(e)) => last = e,
            }
        }
        Err(StoreError::new(format!(
            "memcached: no server reachable ({last})"
        )))
    }

    async fn gets(&self, server: &Server, key: &Bytes) -> Result<Option<Found>, CallError> {
        let req = TextRequest {
            command: Command::Get {
                keys: vec![key.clone()],
                touch: None,
            },
            noreply: false,
            with_cas: true,
            more: false,
        };
        match server.call(&req, &self.config).await? {
            TextReply::Values(values) => match values.into_iter().next() {
                None => Ok(None),
                Some(v) => {
                    let stored: Stored = serde_json::from_slice(&v.value).map_err(|_| {
                        CallError::Server(format!("{}: malformed session value", server.addr))
                    })?;
                    Ok(Some(Found {
                        stored,
                        cas: v.cas.unwrap_or(0),
                    }))
                }
            },
            other => Err(CallError::Server(format!(
                "{}: unexpected reply to gets: {other:?}",
                server.addr
            ))),
        }
    }

    /// Writes `copy` to a replica unless it already holds that version or newer (same
    /// version: that activity or newer). Best effort: failures are logged, not returned.
    async fn replicate(&self, server: &Server, key: &Bytes, copy: &Written, ttl: Duration) {
        for _ in 0..4 {
            let found = match self.gets(server, key).await {
                Ok(Some(found)) => found,
                Ok(None) => return,
                Err(CallError::Unreachable(e) | CallError::Server(e)) => {
                    tracing::debug!(error = %e, "replica write skipped");
                    return;
                }
            };
            if (found.stored.v, found.stored.r.last_active_at) >= (copy.version, copy.active) {
                return;
            }
            let req = store_cmd(StoreMode::Set, key, copy.value.clone(), ttl, found.cas);
            match server.call(&req, &self.config).await {
                Ok(reply) if status(&reply) == b"EXISTS" => continue,
                _ => return,
            }
        }
    }

    /// Replicates `copy` to the servers after position `from` of `list`.
    async fn replicate_all(
        &self,
        list: &[usize],
        from: usize,
        key: &Bytes,
        copy: &Written,
        ttl: Duration,
    ) {
        for &i in &list[from + 1..] {
            self.replicate(&self.servers[i], key, copy, ttl).await;
        }
    }

    /// The read-check-cas loop shared by update and touch. `apply` turns the current stored
    /// value into the new (record, version), or an outcome that ends the loop unwritten.
    async fn cas_loop<F>(
        &self,
        id: &SessionId,
        ttl: Duration,
        apply: F,
    ) -> Result<CasResult, StoreError>
    where
        F: Fn(Stored) -> Result<(Record, Version), UpdateOutcome>,
    {
        let key = self.key(id);
        let list = self.placement(id);
        // Each round is bounded; contention on one session is short-lived, and a round only
        // repeats when another writer changed the value in between.
        for _ in 0..64 {
            let (key, apply) = (&key, &apply);
            let (pos, step) = self
                .on_authority(&list, move |server| async move {
                    let Some(found) = self.gets(server, key).await? else {
                        return Ok(Step::Done(UpdateOutcome::Missing));
                    };
                    let (record, version) = match apply(found.stored) {
                        Ok(new) => new,
                        Err(outcome) => return Ok(Step::Done(outcome)),
                    };
                    let value =
                        encode(&record, version).map_err(|e| CallError::Server(e.to_string()))?;
                    let req = store_cmd(StoreMode::Set, key, value.clone(), ttl, found.cas);
                    let reply = server.call(&req, &self.config).await?;
                    Ok(match status(&reply) {
                        b"STORED" => Step::Written(Written {
                            value,
                            version,
                            active: record.last_active_at,
                        }),
                        b"EXISTS" => Step::Retry,
                        b"NOT_FOUND" => Step::Done(UpdateOutcome::Missing),
                        other => {
                            return Err(CallError::Server(format!(
                                "{}: unexpected reply to cas: {}",
                                server.addr,
                                String::from_utf8_lossy(other)
                            )));
                        }
                    })
                })
                .await?;
            match step {
                Step::Retry => continue,
                Step::Done(outcome) => return Ok(CasResult::Unwritten(outcome)),
                Step::Written(copy) => {
                    self.replicate_all(&list, pos, key, &copy, ttl).await;
                    return Ok(CasResult::Written(copy.version));
                }
            }
        }
        Err(StoreError::new(
            "memcached: too much contention on one session",
        ))
    }
}

/// One round of the read-check-cas loop.
enum Step {
    /// Another writer came first; read again.
    Retry,
    /// Decided without writing.
    Done(UpdateOutcome),
    /// Written on the authority.
    Written(Written),
}

/// A value as written on the authority, for its replicas.
struct Written {
    value: Bytes,
    version: Version,
    active: u64,
}

enum CasResult {
    Written(Version),
    Unwritten(UpdateOutcome),
}

impl SessionStore for MemcachedStore {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        Box::pin(async move {
            let key = self.key(id);
            let list = self.placement(id);
            let value = encode(record, 1)?;
            let add = store_cmd(StoreMode::Add, &key, value.clone(), ttl, 0);
            let (pos, created) = self.add_on_authority(&list, &add).await?;
            if !created {
                return Ok(CreateOutcome::Exists);
            }
            for &i in &list[pos + 1..] {
                // `set`, not `add`: a copy already there can only be a leftover of this id from
                // before the authority lost it, and the authority has just said the id is free.
                let req = store_cmd(StoreMode::Set, &key, value.clone(), ttl, 0);
                if let Err(CallError::Unreachable(e) | CallError::Server(e)) =
                    self.servers[i].call(&req, &self.config).await
                {
                    tracing::debug!(error = %e, "replica create skipped");
                }
            }
            Ok(CreateOutcome::Created)
        })
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let key = self.key(id);
            let list = self.placement(id);
            let key = &key;
            let (_, found) = self
                .on_authority(&list, move |server| self.gets(server, key))
                .await?;
            Ok(found.map(|f| Versioned {
                record: f.stored.r,
                version: f.stored.v,
            }))
        })
    }

    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome> {
        Box::pin(async move {
            let result = self
                .cas_loop(id, ttl, |current| {
                    if current.v != expected {
                        return Err(UpdateOutcome::Conflict);
                    }
                    // A touch that landed after the caller loaded must not be undone.
                    let mut new = record.clone();
                    new.last_active_at = new.last_active_at.max(current.r.last_active_at);
                    Ok((new, current.v + 1))
                })
                .await?;
            Ok(match result {
                CasResult::Written(v) => UpdateOutcome::Updated(v),
                CasResult::Unwritten(outcome) => outcome,
            })
        })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let result = self
                .cas_loop(id, ttl, |current| {
                    let mut record = current.r;
                    record.last_active_at = record.last_active_at.max(last_active_at);
                    Ok((record, current.v))
                })
                .await?;
            Ok(matches!(result, CasResult::Written(_)))
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.key(id);
            let list = self.placement(id);
            let req = TextRequest {
                command: Command::Delete {
                    key: key.clone(),
                    cas: 0,
                },
                noreply: false,
                with_cas: false,
                more: false,
            };
            let (pos, existed) = self
                .on_authority(&list, |server| {
                    let req = &req;
                    async move {
                        let reply = server.call(req, &self.config).await?;
                        Ok(status(&reply) == b"DELETED")
                    }
                })
                .await?;
            // Every copy goes, not only the authority's: a replica left behind is what could
            // bring the session back after a failover.
            for &i in &list[pos + 1..] {
                if let Err(CallError::Unreachable(e) | CallError::Server(e)) =
                    self.servers[i].call(&req, &self.config).await
                {
                    tracing::warn!(error = %e, "session copy on a replica not deleted");
                }
            }
            Ok(existed)
        })
    }

    fn key_layout(&self) -> Option<KeyLayout> {
        Some(KeyLayout {
            prefix: self.config.prefix.clone(),
            suffix: String::new(),
        })
    }
}
