//! The RESP store: session records in Redis 7, Redis Cluster, or sessiond's RESP listener,
//! through the `redis` crate.
//!
//! Layout: one hash per session at `<prefix>{<id>}` with the fields `v` (version), `r` (the
//! record as JSON, readable from any language) and `a` (last activity, kept apart so that a
//! touch does not rewrite the data). The braces make the id the Redis Cluster hash tag: a
//! session's keys always share one slot, so every script below touches a single slot.
//!
//! Compare-and-set, create-if-absent and touch-if-present run as Lua scripts (EVALSHA, falling
//! back to EVAL), so each is one atomic step on the server. The commands used are only these:
//! EVALSHA, EVAL, HGETALL, DEL, PUBLISH, SUBSCRIBE, and inside the scripts EXISTS, HGET, HSET,
//! HINCRBY, PEXPIRE. That is the subset sessiond's RESP listener promises. This module does
//! not pool connections itself: the `redis` crate's multiplexed connection manager (or its
//! cluster connection) already pipelines concurrent requests over one socket and reconnects.

#![deny(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisError, Value};

use tokio::sync::{broadcast, oneshot};

use super::cached::{BusEvent, InvalidationBus, SERVER_EVENTS_CHANNEL};
use super::{
    CreateOutcome, KeyLayout, Record, SessionStore, StoreError, StoreFuture, UpdateOutcome,
    Version, Versioned,
};
use crate::id::SessionId;

/// KEYS[1] = session key; ARGV = record JSON, last activity, TTL in ms.
const CREATE_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1', 'r', ARGV[1], 'a', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// KEYS[1] = session key; ARGV = expected version, record JSON, last activity, TTL in ms.
/// Returns the new version, -1 if the record is gone, -2 on a version mismatch.
/// Timestamps stay strings and are compared with tonumber: converting them back with
/// tostring could print them in exponent form.
const UPDATE_LUA: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return -2 end
local a = redis.call('HGET', KEYS[1], 'a')
if (not a) or tonumber(a) < tonumber(ARGV[3]) then a = ARGV[3] end
local nv = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'r', ARGV[2], 'a', a)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return nv
";

/// KEYS[1] = session key; ARGV = last activity, TTL in ms. Returns 1 if the record exists.
/// The EXISTS guard is what keeps a touch from resurrecting a deleted session.
const TOUCH_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local a = redis.call('HGET', KEYS[1], 'a')
if (not a) or tonumber(a) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'a', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// A Lua script and its SHA-1, so the common path sends only the hash.
struct Lua {
    source: &'static str,
    sha: String,
}

impl Lua {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: redis::Script::new(source).get_hash().to_owned(),
        }
    }
}

/// One connection, to a single server or to a cluster. Both kinds multiplex, so clones are
/// cheap handles onto the same sockets.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    /// Runs a script with one key. Not `redis::Script::invoke_async`: that one falls back to
    /// SCRIPT LOAD, a command outside the subset we rely on; plain EVAL does the same job.
    async fn eval(&self, lua: &Lua, key: &str, args: &[&str]) -> Result<i64, RedisError> {
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha.arg(&lua.sha).arg(1).arg(key).arg(args);
        match self.query(&evalsha).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let mut eval = redis::cmd("EVAL");
                eval.arg(lua.source).arg(1).arg(key).arg(args);
                self.query(&eval).await
            }
            other => other,
        }
    }
}

struct Inner {
    conn: Conn,
    prefix: String,
    create: Lua,
    update: Lua,
    touch: Lua,
}

/// The RESP store. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

/// A request to the store that takes longer than this fails instead of hanging the app's
/// request; the layer turns the failure into a 500.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

fn store_err(e: RedisError) -> StoreError {
    StoreError::new(format!("redis: {e}"))
}

impl RedisStore {
    /// Connects to one server (Redis, Valkey or sessiond), e.g. `redis://127.0.0.1:6379/`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_err)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(store_err)?;
        Ok(Self::from_conn(Conn::Single(conn)))
    }

    /// Connects to a Redis Cluster through any of its nodes.
    pub async fn connect_cluster(urls: &[&str]) -> Result<Self, StoreError> {
        let client = redis::cluster::ClusterClient::builder(urls.iter().copied())
            .response_timeout(RESPONSE_TIMEOUT)
            .build()
            .map_err(store_err)?;
        let conn = client.get_async_connection().await.map_err(store_err)?;
        Ok(Self::from_conn(Conn::Cluster(conn)))
    }

    fn from_conn(conn: Conn) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn,
                prefix: "sess:".to_owned(),
                create: Lua::new(CREATE_LUA),
                update: Lua::new(UPDATE_LUA),
                touch: Lua::new(TOUCH_LUA),
            }),
        }
    }

    /// Uses `prefix` before every key instead of `sess:`, to keep several apps apart on one
    /// server.
    pub fn with_prefix(self, prefix: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn: self.inner.conn.clone(),
                prefix: prefix.into(),
                create: Lua::new(CREATE_LUA),
                update: Lua::new(UPDATE_LUA),
                touch: Lua::new(TOUCH_LUA),
            }),
        }
    }

    /// The key of a session's hash.
    pub fn key(&self, id: &SessionId) -> String {
        format!("{}{{{}}}", self.inner.prefix, id.as_str())
    }
}

/// A TTL for PEXPIRE: zero would delete the key on the spot, so round up to 1 ms.
fn ttl_ms(ttl: Duration) -> String {
    ttl.as_millis().max(1).to_string()
}

fn encode(record: &Record) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::new(format!("encoding record: {e}")))
}

fn decode(fields: Vec<(String, Vec<u8>)>) -> Result<Option<Versioned>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let (mut v, mut r, mut a) = (None, None, None);
    for (name, value) in fields {
        match name.as_str() {
            "v" => v = Some(value),
            "r" => r = Some(value),
            "a" => a = Some(value),
            // Unknown fields are tolerated so that a later version can add some.
            _ => {}
        }
    }
    let bad = |what: &str| StoreError::new(format!("malformed session hash: {what}"));
    let version: Version = std::str::from_utf8(&v.ok_or_else(|| bad("no version"))?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("version"))?;
    let mut record: Record =
        serde_json::from_slice(&r.ok_or_else(|| bad("no record"))?).map_err(|_| bad("record"))?;
    if let Some(a) = a.and_then(|a| String::from_utf8(a).ok()?.parse::<u64>().ok()) {
        record.last_active_at = record.last_active_at.max(a);
    }
    Ok(Some(Versioned { record, version }))
}

impl SessionStore for RedisStore {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        Box::pin(async move {
            let json = encode(record)?;
            let a = record.last_active_at.to_string();
            let ttl = ttl_ms(ttl);
            let n = self
                .inner
                .conn
                .eval(&self.inner.create, &self.key(id), &[&json, &a, &ttl])
                .await
                .map_err(store_err)?;
            Ok(if n == 1 {
                CreateOutcome::Created
            } else {
                CreateOutcome::Exists
            })
        })
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.key(id));
            let value: Value = self.inner.conn.query(&cmd).await.map_err(store_err)?;
            // HGETALL is a flat array under RESP2 and a map under RESP3; the crate converts
            // either into pairs.
            let fields: Vec<(String, Vec<u8>)> = FromRedisValue::from_redis_value(value)
                .map_err(|e| StoreError::new(format!("HGETALL reply: {e}")))?;
            decode(fields)
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
            let json = encode(record)?;
            let expected = expected.to_string();
            let a = record.last_active_at.to_string();
            let ttl = ttl_ms(ttl);
            let n = self
                .inner
                .conn
                .eval(
                    &self.inner.update,
                    &self.key(id),
                    &[&expected, &json, &a, &ttl],
                )
                .await
                .map_err(store_err)?;
            Ok(match n {
                -1 => UpdateOutcome::Missing,
                -2 => UpdateOutcome::Conflict,
                n if n > 0 => UpdateOutcome::Updated(n as Version),
                n => return Err(StoreError::new(format!("update script returned {n}"))),
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
            let a = last_active_at.to_string();
            let ttl = ttl_ms(ttl);
            let n = self
                .inner
                .conn
                .eval(&self.inner.touch, &self.key(id), &[&a, &ttl])
                .await
                .map_err(store_err)?;
            Ok(n == 1)
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.key(id));
            let n: i64 = self.inner.conn.query(&cmd).await.map_err(store_err)?;
            Ok(n > 0)
        })
    }

    fn key_layout(&self) -> Option<KeyLayout> {
        Some(KeyLayout {
            prefix: format!("{}{{", self.inner.prefix),
            suffix: "}".to_owned(),
        })
    }
}

/// The near-cache invalidation bus over RESP pub/sub (PUBLISH and SUBSCRIBE on one channel).
///
/// Plain pub/sub is fire-and-forget, so the bus watches its subscription: when the
/// connection drops it reports [`BusEvent::Down`] (caches stop serving), reconnects with
/// backoff, and reports [`BusEvent::Up`] once subscribed again. On Redis Cluster, classic
/// PUBLISH reaches subscribers on every node, so any node's URL will do.
///
/// Built with [`RedisBus::connect_with_server_events`], the same subscription also listens
/// to sessiond's session lifecycle events ([`SERVER_EVENTS_CHANNEL`]) and delivers them as
/// [`BusEvent::Server`], so that near-caches also drop sessions that PHP, Node, expiry or an
/// admin changed. On a server that publishes no such events (Redis) that channel is silent.
pub struct RedisBus {
    publisher: ConnectionManager,
    channel: String,
    tx: broadcast::Sender<BusEvent>,
    up: Arc<AtomicBool>,
    // Dropping the bus drops this sender, which ends the subscriber task.
    _shutdown: oneshot::Sender<()>,
}

impl RedisBus {
    /// Connects to `url` and subscribes to `channel`. Returns once the subscription is live.
    pub async fn connect(url: &str, channel: &str) -> Result<Self, StoreError> {
        Self::connect_to(url, channel, false).await
    }

    /// As [`RedisBus::connect`], and also subscribes to sessiond's lifecycle events
    /// ([`SERVER_EVENTS_CHANNEL`]) on the same connection. `url` must then reach the sessiond
    /// that holds the sessions (any node of a replicated pair publishes its own changes).
    /// `channel` must not be that channel.
    pub async fn connect_with_server_events(url: &str, channel: &str) -> Result<Self, StoreError> {
        if channel == SERVER_EVENTS_CHANNEL {
            return Err(StoreError::new(format!(
                "the invalidation channel cannot be {SERVER_EVENTS_CHANNEL}, where sessiond \
                 publishes its events"
            )));
        }
        Self::connect_to(url, channel, true).await
    }

    async fn connect_to(url: &str, channel: &str, server_events: bool) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_err)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT));
        let publisher = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(store_err)?;
        let mut channels = vec![channel.to_owned()];
        if server_events {
            channels.push(SERVER_EVENTS_CHANNEL.to_owned());
        }
        let pubsub = subscribe(&client, &channels).await.map_err(store_err)?;
        let (tx, _) = broadcast::channel(4096);
        let up = Arc::new(AtomicBool::new(true));
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        tokio::spawn(run_subscriber(
            client,
            channels,
            pubsub,
            tx.clone(),
            up.clone(),
            shutdown_rx,
        ));
        Ok(Self {
            publisher,
            channel: channel.to_owned(),
            tx,
            up,
            _shutdown: shutdown_tx,
        })
    }
}

async fn subscribe(
    client: &redis::Client,
    channels: &[String],
) -> Result<redis::aio::PubSub, RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channels).await?;
    Ok(pubsub)
}

/// Keeps the subscription to `channels` (the bus's own first, then possibly sessiond's
/// events) and forwards what arrives.
async fn run_subscriber(
    client: redis::Client,
    channels: Vec<String>,
    first: redis::aio::PubSub,
    tx: broadcast::Sender<BusEvent>,
    up: Arc<AtomicBool>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(conn) = pubsub.take() {
            backoff = Duration::from_millis(50);
            let mut messages = conn.into_on_message();
            loop {
                tokio::select! {
                    _ = &mut shutdown => return,
                    msg = messages.next() => match msg {
                        Some(msg) => {
                            if let Ok(payload) = msg.get_payload::<String>() {
                                let event = if msg.get_channel_name() == SERVER_EVENTS_CHANNEL {
                                    BusEvent::Server(payload)
                                } else {
                                    BusEvent::Message(payload)
                                };
                                let _ = tx.send(event);
                            }
                        }
                        None => break,
                    },
                }
            }
            up.store(false, Ordering::SeqCst);
            let _ = tx.send(BusEvent::Down);
            tracing::warn!("session invalidation subscription lost; near-caches bypassed");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
        if let Ok(conn) = subscribe(&client, &channels).await {
            pubsub = Some(conn);
            up.store(true, Ordering::SeqCst);
            let _ = tx.send(BusEvent::Up);
            tracing::info!("session invalidation subscription restored");
        }
    }
}

impl InvalidationBus for RedisBus {
    fn publish<'a>(&'a self, message: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(&self.channel).arg(message);
            let _: i64 = cmd
                .query_async(&mut self.publisher.clone())
                .await
                .map_err(store_err)?;
            Ok(())
        })
    }
    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }
}
