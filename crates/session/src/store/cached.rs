//! A near-cache in front of any remote store, kept honest across app nodes by an
//! invalidation bus.
//!
//! Reads are served from process memory when the entry is younger than `max_age` and no node
//! has announced a change to that session since. Every write goes to the remote store first
//! (so compare-and-set still decides), then the node announces the session's digest on the
//! bus; every other node drops its copy when the announcement arrives, typically within a
//! millisecond or two on the same network. A logout on node A is therefore seen by node B's
//! next request once the message has crossed, and at the latest after `max_age`.
//!
//! What it deliberately does not do:
//! - trust itself for decisions that destroy or overwrite: a stale entry can at worst make a
//!   compare-and-set fail (the layer then reloads with [`SessionStore::load_fresh`], which
//!   bypasses the cache), and the layer re-reads the store before expiring a session;
//! - cache misses: an unknown id always asks the store, so strict mode stays exact;
//! - put raw ids on the bus: messages carry a SHA-256 digest of the id.
//!
//! If the bus reports that its subscription dropped ([`BusEvent::Down`]), the cache empties
//! and stays bypassed until the subscription is back ([`BusEvent::Up`]): messages sent while
//! it was away are lost, so nothing cached before or during the gap can be trusted.
//!
//! # Changes made by others: sessiond's lifecycle events
//!
//! The bus only carries what Rust nodes announce. A session destroyed by PHP or Node, expired
//! by the server, or revoked by an admin is announced by sessiond itself, which publishes
//! `{"event": "destroyed", "key": "memc.sess.key.abc", "id": "abc", …}` on
//! [`SERVER_EVENTS_CHANNEL`] for writes from either protocol. A bus that subscribes to it
//! (`RedisBus::connect_with_server_events`) delivers these as [`BusEvent::Server`], and the
//! cache drops its entry on every `updated`, `destroyed`, `expired` and `revoked` event about
//! a session it holds or is loading (`created` is ignored: misses are never cached), and
//! everything on `flushed`.
//!
//! An event is matched by its **key**, not by its family: the wrapped store's
//! [`KeyLayout`] (`<prefix><id><suffix>`) must produce the event's key, and the id between
//! prefix and suffix is the one the cache looks up. So a PHP `session_destroy()` of
//! `memc.sess.key.abc` drops the Rust node's cached `abc` exactly when its store keeps
//! sessions under that same key (a `MemcachedStore` with prefix `memc.sess.key.`), whatever
//! family sessiond filed it under; the event's own `id` is the server family's idea of the
//! id, which differs when the store's prefix is longer than the family's. A store without a
//! layout is matched by the event's `id` alone, which can only drop more than needed. The
//! database number is not compared: the same key in another database costs one extra read.
//! Events are published only for keys of a family sessiond is configured with (its presets
//! cover `memc.sess.key.`, `PHPREDIS_SESSION:`, `sess:` and `sess:{…}`), and unparsable or
//! unknown messages are ignored. Against plain Redis the channel is silent and nothing
//! changes. A node's own writes come back as `updated` events too, so an entry it just wrote
//! is usually dropped and read once more. A flush (`FLUSHALL`, `FLUSHDB`, memcached
//! `flush_all`) is one event per database flushed, `{"event": "flushed", "db": 0, "at": …}`,
//! rather than one per session: the cache drops every entry (and voids loads in flight),
//! counted in [`CacheStats::resets`].
//!
//! [`CachedStore::stats`] counts hits, misses and both kinds of invalidation.

#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::broadcast;

use super::{
    CreateOutcome, KeyLayout, Record, SessionStore, StoreFuture, UpdateOutcome, Version, Versioned,
};
use crate::id::SessionId;

/// The pub/sub channel on which sessiond publishes session lifecycle events.
pub const SERVER_EVENTS_CHANNEL: &str = "sessiond:sessions";

/// What an invalidation bus delivers to the caches subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A message published by some node (possibly this one).
    Message(String),
    /// A session lifecycle event published by sessiond on [`SERVER_EVENTS_CHANNEL`]: the
    /// JSON text as received. Only buses that subscribe to that channel deliver these.
    Server(String),
    /// The subscription is gone; messages may be lost until [`BusEvent::Up`].
    Down,
    /// The subscription is back.
    Up,
}

/// A broadcast channel between the app nodes that share a store.
pub trait InvalidationBus: Send + Sync + 'static {
    /// Sends `message` to every subscriber, this node included.
    fn publish<'a>(&'a self, message: &'a str) -> StoreFuture<'a, ()>;
    /// A receiver of everything published from now on.
    fn subscribe(&self) -> broadcast::Receiver<BusEvent>;
    /// Whether the subscription is currently live.
    fn is_up(&self) -> bool;
}

/// An in-process bus, for tests and for several layers in one process sharing one store.
#[derive(Clone)]
pub struct LocalBus {
    tx: broadcast::Sender<BusEvent>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    /// A new bus.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl InvalidationBus for LocalBus {
    fn publish<'a>(&'a self, message: &'a str) -> StoreFuture<'a, ()> {
        // No subscribers is not an error: there is simply nobody to tell.
        let _ = self.tx.send(BusEvent::Message(message.to_owned()));
        Box::pin(async { Ok(()) })
    }
    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
    fn is_up(&self) -> bool {
        true
    }
}

/// Tuning for [`CachedStore`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// How long an entry may be served without asking the store. Bounds staleness when an
    /// invalidation message is lost without the bus noticing. Default 5 s.
    pub max_age: Duration,
    /// At most this many sessions are cached; beyond it, reads go to the store. Default 10 000.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(5),
            max_entries: 10_000,
        }
    }
}

enum Slot {
    Cached {
        value: Versioned,
        at: Instant,
    },
    /// A change was announced after this node's last read. Kept for `max_age` so that a load
    /// which started before the announcement cannot cache what it read.
    Invalidated {
        seq: u64,
        at: Instant,
    },
}

struct State {
    map: HashMap<String, Slot>,
    /// Digests with a load or write in progress on this node, and how many. A server event
    /// about a session that is neither here nor in flight is ignored, so the events of the
    /// whole server's sessions do not fill the map with markers.
    in_flight: HashMap<String, u32>,
    /// Counts invalidations; a load remembers it before going to the store.
    seq: u64,
    /// Bumped when the whole cache is dropped (bus down or up).
    epoch: u64,
    enabled: bool,
}

/// Counters of a [`CachedStore`] since it was built; see [`CachedStore::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from memory.
    pub hits: u64,
    /// Loads that asked the store (not cached, too old, invalidated, or the cache bypassed).
    pub misses: u64,
    /// Announcements from other nodes on the bus.
    pub peer_invalidations: u64,
    /// Server lifecycle events (`updated`, `destroyed`, `expired`, `revoked`) about a session
    /// this node held or was loading.
    pub server_invalidations: u64,
    /// Times the whole cache was dropped: the bus went down or came back, this node fell
    /// behind the bus, or sessiond announced a flush (`{"event": "flushed"}`).
    pub resets: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    peer_invalidations: AtomicU64,
    server_invalidations: AtomicU64,
    resets: AtomicU64,
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    state: Mutex<State>,
    config: CacheConfig,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (each step is a single map operation),
        // and the guard of an in-flight operation must be able to clean up while unwinding.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn invalidate(&self, digest: &str) {
        Self::invalidate_locked(&mut self.lock(), &self.config, digest);
    }

    fn invalidate_locked(st: &mut State, config: &CacheConfig, digest: &str) {
        // Markers for sessions this node never read would pile up without bound on a busy
        // cluster, so when the map is full, age out old slots; if that is not enough, drop
        // everything and start a new epoch, which also voids every load in flight.
        if st.map.len() >= config.max_entries && !st.map.contains_key(digest) {
            let max_age = config.max_age;
            st.map.retain(|_, slot| match slot {
                Slot::Cached { at, .. } | Slot::Invalidated { at, .. } => at.elapsed() < max_age,
            });
            if st.map.len() >= config.max_entries {
                st.map.clear();
                st.epoch += 1;
                return;
            }
        }
        st.seq += 1;
        let seq = st.seq;
        st.map.insert(
            digest.to_owned(),
            Slot::Invalidated {
                seq,
                at: Instant::now(),
            },
        );
    }

    /// Invalidates `digest` if this node holds it or is loading or writing it; returns
    /// whether it did.
    fn invalidate_if_known(&self, digest: &str) -> bool {
        let mut st = self.lock();
        if !st.map.contains_key(digest) && !st.in_flight.contains_key(digest) {
            return false;
        }
        Self::invalidate_locked(&mut st, &self.config, digest);
        true
    }

    fn reset(&self, enabled: bool) {
        let mut st = self.lock();
        st.map.clear();
        st.epoch += 1;
        st.enabled = enabled;
        inc(&self.counters.resets);
    }

    /// The server flushed a database: drops every entry and starts a new epoch, so no load
    /// in flight caches what it read before the flush. Unlike [`Shared::reset`] the cache
    /// stays on (or off) as it was.
    fn flushed(&self) {
        let mut st = self.lock();
        st.map.clear();
        st.epoch += 1;
        inc(&self.counters.resets);
    }

    /// Caches `value` read (or written) by this node, unless a change was announced since
    /// the caller's snapshot of `(seq, epoch)`.
    fn insert(&self, digest: &str, value: Versioned, since: (u64, u64)) {
        let mut st = self.lock();
        if !st.enabled || st.epoch != since.1 {
            return;
        }
        if let Some(Slot::Invalidated { seq, .. }) = st.map.get(digest)
            && *seq > since.0
        {
            return;
        }
        if st.map.len() >= self.config.max_entries && !st.map.contains_key(digest) {
            let max_age = self.config.max_age;
            st.map.retain(|_, slot| match slot {
                Slot::Cached { at, .. } | Slot::Invalidated { at, .. } => at.elapsed() < max_age,
            });
            if st.map.len() >= self.config.max_entries {
                return;
            }
        }
        st.map.insert(
            digest.to_owned(),
            Slot::Cached {
                value,
                at: Instant::now(),
            },
        );
    }

    /// Registers an operation on `digest` that may cache what it reads or writes, and returns
    /// the `(seq, epoch)` snapshot to pass to [`Shared::insert`]. The registration ends when
    /// the guard drops (the operation finished, failed, or its future was dropped).
    fn begin<'a>(&'a self, digest: &'a str) -> (InFlight<'a>, (u64, u64)) {
        let mut st = self.lock();
        *st.in_flight.entry(digest.to_owned()).or_default() += 1;
        let since = (st.seq, st.epoch);
        (
            InFlight {
                shared: self,
                digest,
            },
            since,
        )
    }

    /// The cached value of `digest`, if it may be served.
    fn cached(&self, st: &State, digest: &str) -> Option<Versioned> {
        match st.map.get(digest) {
            Some(Slot::Cached { value, at })
                if st.enabled && at.elapsed() < self.config.max_age =>
            {
                Some(value.clone())
            }
            _ => None,
        }
    }
}

/// An operation in flight on one digest; see [`Shared::begin`].
struct InFlight<'a> {
    shared: &'a Shared,
    digest: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.in_flight.get_mut(self.digest) {
            *n -= 1;
            if *n == 0 {
                st.in_flight.remove(self.digest);
            }
        }
    }
}

/// A near-cache wrapping `S`. See the module docs.
pub struct CachedStore<S> {
    inner: S,
    bus: Arc<dyn InvalidationBus>,
    shared: Arc<Shared>,
    /// Prefix of this node's messages, so it can skip its own announcements.
    node: String,
}

/// The digest of an id that the cache and the bus use as its name.
fn digest(id: &str) -> String {
    let d = Sha256::digest(id.as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl<S: SessionStore> CachedStore<S> {
    /// Wraps `inner` with default tuning. Must be called inside a Tokio runtime: it spawns
    /// the task that listens to the bus (the task ends when the store is dropped).
    pub fn new(inner: S, bus: Arc<dyn InvalidationBus>) -> Self {
        Self::with_config(inner, bus, CacheConfig::default())
    }

    /// Wraps `inner` with the given tuning.
    pub fn with_config(inner: S, bus: Arc<dyn InvalidationBus>, config: CacheConfig) -> Self {
        let mut node = [0u8; 8];
        rand::rng().fill_bytes(&mut node);
        let node: String = node.iter().map(|b| format!("{b:02x}")).collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                map: HashMap::new(),
                in_flight: HashMap::new(),
                seq: 0,
                epoch: 0,
                enabled: bus.is_up(),
            }),
            config,
            counters: Counters::default(),
        });
        let rx = bus.subscribe();
        tokio::spawn(listen(
            rx,
            Arc::downgrade(&shared),
            node.clone(),
            inner.key_layout(),
        ));
        Self {
            inner,
            bus,
            shared,
            node,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The counters since this cache was built.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            peer_invalidations: c.peer_invalidations.load(Ordering::Relaxed),
            server_invalidations: c.server_invalidations.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
        }
    }

    /// Whether [`SessionStore::load`] of `id` would now be answered from memory. For tests
    /// and diagnostics: the answer may change as soon as it is returned.
    pub fn is_cached(&self, id: &SessionId) -> bool {
        let st = self.shared.lock();
        self.shared.cached(&st, &digest(id.as_str())).is_some()
    }

    async fn announce(&self, digest: &str) {
        let message = format!("{}:{}", self.node, digest);
        if let Err(e) = self.bus.publish(&message).await {
            // The write itself succeeded; other nodes fall back to `max_age`.
            tracing::warn!(error = %e, "session cache invalidation could not be published");
        }
    }
}

/// The fields of a sessiond lifecycle event that the cache reads; the others (`family`,
/// `db`, `user`, `at`) are ignored. `flushed` carries no key or id.
#[derive(Deserialize)]
struct ServerEvent<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
}

/// What a server event means for the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerChange {
    /// The session with this digest changed in a way that voids a cached copy.
    Session(String),
    /// A database was flushed (`FLUSHALL`, `FLUSHDB`, memcached `flush_all`): every copy is
    /// void, whatever its key (the database is not compared, as for the other events).
    Flushed,
}

/// What a server event says changed, or `None` if it voids nothing this cache could hold
/// (unparsable, `created`, unknown kind, or a key of another layout).
fn server_change(json: &str, layout: Option<&KeyLayout>) -> Option<ServerChange> {
    let event: ServerEvent<'_> = serde_json::from_str(json).ok()?;
    match &*event.event {
        "flushed" => return Some(ServerChange::Flushed),
        "updated" | "destroyed" | "expired" | "revoked" => {}
        _ => return None,
    }
    // A session event names both; one without either is not sessiond's.
    let (key, id) = (event.key?, event.id?);
    let id = match layout {
        Some(layout) => layout.id_of(&key)?,
        None => Some(&*id).filter(|id| !id.is_empty())?,
    };
    Some(ServerChange::Session(digest(id)))
}

/// The digest of the session a server event names, or `None` (see [`server_change`]; a
/// flush names no one session).
#[cfg(test)]
fn server_event_target(json: &str, layout: Option<&KeyLayout>) -> Option<String> {
    match server_change(json, layout)? {
        ServerChange::Session(digest) => Some(digest),
        ServerChange::Flushed => None,
    }
}

async fn listen(
    mut rx: broadcast::Receiver<BusEvent>,
    shared: Weak<Shared>,
    node: String,
    layout: Option<KeyLayout>,
) {
    loop {
        let event = rx.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match event {
            Ok(BusEvent::Message(m)) => {
                if let Some((from, digest)) = m.split_once(':')
                    && from != node
                {
                    shared.invalidate(digest);
                    inc(&shared.counters.peer_invalidations);
                }
            }
            Ok(BusEvent::Server(json)) => match server_change(&json, layout.as_ref()) {
                Some(ServerChange::Session(digest)) if shared.invalidate_if_known(&digest) => {
                    inc(&shared.counters.server_invalidations);
                }
                Some(ServerChange::Flushed) => shared.flushed(),
                Some(ServerChange::Session(_)) | None => {}
            },
            Ok(BusEvent::Down) => shared.reset(false),
            Ok(BusEvent::Up) => shared.reset(true),
            // This listener fell behind and missed messages: drop everything it might have
            // been told about.
            Err(broadcast::error::RecvError::Lagged(_)) => shared.reset(true),
            Err(broadcast::error::RecvError::Closed) => {
                shared.reset(false);
                return;
            }
        }
    }
}

impl<S: SessionStore> SessionStore for CachedStore<S> {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        Box::pin(async move {
            let d = digest(id.as_str());
            let (_in_flight, since) = self.shared.begin(&d);
            let out = self.inner.create(id, record, ttl).await?;
            if out == CreateOutcome::Created {
                let value = Versioned {
                    record: record.clone(),
                    version: self.inner.created_version(record),
                };
                self.shared.insert(&d, value, since);
            }
            Ok(out)
        })
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let d = digest(id.as_str());
            {
                let st = self.shared.lock();
                if let Some(value) = self.shared.cached(&st, &d) {
                    inc(&self.shared.counters.hits);
                    return Ok(Some(value));
                }
            }
            inc(&self.shared.counters.misses);
            let (_in_flight, since) = self.shared.begin(&d);
            let loaded = self.inner.load(id).await?;
            if let Some(v) = &loaded {
                self.shared.insert(&d, v.clone(), since);
            }
            Ok(loaded)
        })
    }

    fn load_fresh<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let d = digest(id.as_str());
            let (_in_flight, since) = self.shared.begin(&d);
            let loaded = self.inner.load_fresh(id).await?;
            match &loaded {
                Some(v) => self.shared.insert(&d, v.clone(), since),
                None => self.shared.invalidate(&d),
            }
            Ok(loaded)
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
            let d = digest(id.as_str());
            let (_in_flight, since) = self.shared.begin(&d);
            let out = self.inner.update(id, record, expected, ttl).await?;
            if let UpdateOutcome::Updated(version) = out {
                // Replaces the older cached copy, unless a change was announced while the
                // write was in flight (another node's, or a destroy by PHP seen by sessiond):
                // then the slot stays invalidated and the next load asks the store.
                let value = Versioned {
                    record: record.clone(),
                    version,
                };
                self.shared.insert(&d, value, since);
                self.announce(&d).await;
            } else {
                // A conflict or a missing record: the cached copy is not the latest.
                self.shared.invalidate(&d);
            }
            Ok(out)
        })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let d = digest(id.as_str());
            let out = self.inner.touch(id, last_active_at, ttl).await?;
            // Other nodes must not judge the idle timeout from an older last_active_at.
            self.shared.invalidate(&d);
            if out {
                self.announce(&d).await;
            }
            Ok(out)
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let d = digest(id.as_str());
            let out = self.inner.delete(id).await?;
            self.shared.invalidate(&d);
            // Announce even if this node found nothing: another node may still cache it.
            self.announce(&d).await;
            Ok(out)
        })
    }

    fn created_version(&self, record: &Record) -> Version {
        self.inner.created_version(record)
    }

    fn key_layout(&self) -> Option<KeyLayout> {
        self.inner.key_layout()
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn memc() -> KeyLayout {
        KeyLayout {
            prefix: "memc.sess.key.".into(),
            suffix: String::new(),
        }
    }

    fn resp() -> KeyLayout {
        KeyLayout {
            prefix: "sess:{".into(),
            suffix: "}".into(),
        }
    }

    fn event(kind: &str, key: &str, id: &str) -> String {
        serde_json::json!({
            "event": kind, "family": "php-memcached", "db": 0, "key": key, "id": id,
            "user": null, "at": 1_764_756_000_000u64,
        })
        .to_string()
    }

    #[test]
    fn events_that_void_a_copy_name_its_digest() {
        for kind in ["updated", "destroyed", "expired", "revoked"] {
            let e = event(kind, "memc.sess.key.abc", "abc");
            assert_eq!(server_event_target(&e, Some(&memc())), Some(digest("abc")));
            assert_eq!(server_event_target(&e, None), Some(digest("abc")));
        }
        let e = event("revoked", "sess:{abc}", "abc");
        assert_eq!(server_event_target(&e, Some(&resp())), Some(digest("abc")));
        // The id is read from the key through the store's layout: a store prefix longer than
        // the server family's (`sess:app1:` filed under express's `sess:`) still matches.
        let longer = KeyLayout {
            prefix: "sess:app1:".into(),
            suffix: String::new(),
        };
        let e = event("destroyed", "sess:app1:abc", "app1:abc");
        assert_eq!(server_event_target(&e, Some(&longer)), Some(digest("abc")));
        // JSON escapes in the key are decoded before matching.
        let e = r#"{"event":"destroyed","key":"memc.sess.key.a\u0062c","id":"abc"}"#;
        assert_eq!(server_event_target(e, Some(&memc())), Some(digest("abc")));
    }

    #[test]
    fn other_events_and_other_keys_are_ignored() {
        let layout = Some(memc());
        let layout = layout.as_ref();
        // Creation (misses are never cached), unknown kinds, and case variants.
        for kind in ["created", "renamed", "", "DESTROYED", "destroyed "] {
            assert_eq!(
                server_event_target(&event(kind, "memc.sess.key.abc", "abc"), layout),
                None,
                "{kind:?}"
            );
        }
        // Keys of other families, or not laid out as this store lays them out.
        for key in [
            "PHPREDIS_SESSION:abc",
            "sess:abc",
            "sess:{abc}",
            "memc.sess.key.",
            "xmemc.sess.key.abc",
            "",
        ] {
            assert_eq!(
                server_event_target(&event("destroyed", key, "abc"), layout),
                None,
                "{key:?}"
            );
        }
        for key in ["sess:abc", "sess:{abc", "sess:abc}", "sess:{}", "sess:{"] {
            assert_eq!(
                server_event_target(&event("destroyed", key, "abc"), Some(&resp())),
                None,
                "{key:?}"
            );
        }
        // Without a layout, the id decides; an empty one names nothing.
        assert_eq!(
            server_event_target(&event("destroyed", "memc.sess.key.", ""), None),
            None
        );
    }

    #[test]
    fn malformed_events_are_ignored() {
        let long = format!(
            r#"{{"event":"destroyed","key":"memc.sess.key.{}","id":"x"}}"#,
            "a".repeat(1 << 20)
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_field = format!(
            r#"{{"event":"destroyed","key":"memc.sess.key.abc","id":"abc","x":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let bad = [
            "",
            "null",
            "42",
            "\"destroyed\"",
            "[]",
            "{}",
            "{",
            r#"{"event":"destroyed","key":"memc.sess.key.abc""#,
            r#"{"event":"destroyed","key":"memc.sess.key.abc"}"#,
            r#"{"event":"destroyed","id":"abc"}"#,
            r#"{"event":"destroyed","key":7,"id":"abc"}"#,
            r#"{"event":"destroyed","key":null,"id":"abc"}"#,
            r#"{"event":["destroyed"],"key":"memc.sess.key.abc","id":"abc"}"#,
            r#"{"event":"destroyed","key":"memc.sess.key.abc","id":"abc","event":"created"}"#,
            r#"{"event":"destroyed","key":"memc.sess.key.\ud800","id":"abc"}"#,
            "abc:0123456789abcdef",
            deep.as_str(),
        ];
        for json in bad {
            for layout in [None, Some(memc()), Some(resp())] {
                assert_eq!(
                    server_event_target(json, layout.as_ref()),
                    None,
                    "{}",
                    &json[..json.len().min(80)]
                );
            }
        }
        // Long, or with a deeply nested extra field, but well-formed: matched like any other
        // (serde_json skips unknown values without recursing on the stack).
        assert!(server_event_target(&long, Some(&memc())).is_some());
        assert_eq!(
            server_event_target(&deep_field, Some(&memc())),
            Some(digest("abc"))
        );
    }

    #[test]
    fn random_input_never_panics() {
        let valid = event("destroyed", "memc.sess.key.abc", "abc");
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            // Random bytes, and valid events with bytes flipped, cut or spliced.
            let mut bytes: Vec<u8> = if rng.random_bool(0.5) {
                (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
            } else {
                valid.as_bytes().to_vec()
            };
            for _ in 0..rng.random_range(0..4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[at] = rng.random(),
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b"{}[]\",:\\"[rng.random_range(0..8)]),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            for layout in [None, Some(memc()), Some(resp())] {
                let _ = server_event_target(&text, layout.as_ref());
            }
        }
    }

    /// Waits (bounded) until `done` holds; the listener runs as another task.
    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..5_000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the listener did not get there");
    }

    #[tokio::test]
    async fn the_listener_drops_only_what_events_name() {
        let bus = LocalBus::new();
        let config = CacheConfig {
            max_age: Duration::from_secs(3600),
            max_entries: 100,
        };
        let store = CachedStore::with_config(MemoryStore::new(), Arc::new(bus.clone()), config);
        let ttl = Duration::from_secs(600);
        let (kept, dropped) = (SessionId::generate(), SessionId::generate());
        for id in [&kept, &dropped] {
            store.create(id, &Record::new(1), ttl).await.unwrap();
            assert!(store.load(id).await.unwrap().is_some());
            assert!(store.is_cached(id));
        }
        assert_eq!(store.stats().hits, 2);
        let map_len = || store.shared.lock().map.len();
        let send = |json: String| {
            bus.tx.send(BusEvent::Server(json)).unwrap();
        };
        // Garbage, creations, and changes to sessions this node never read.
        for json in ["", "{", "null", r#"{"event":"destroyed"}"#, "\u{0}"] {
            send(json.to_owned());
        }
        send(event("created", "memc.sess.key.x", kept.as_str()));
        send(event("frobbed", "memc.sess.key.x", kept.as_str()));
        for _ in 0..50 {
            let other = SessionId::generate();
            send(event("destroyed", "memc.sess.key.x", other.as_str()));
        }
        // Then one that names a held session: once it has been handled, so has all the rest.
        send(event("revoked", "memc.sess.key.x", dropped.as_str()));
        until(|| !store.is_cached(&dropped)).await;
        assert!(store.is_cached(&kept));
        assert_eq!(store.stats().server_invalidations, 1);
        // No markers for the 50 sessions this node never held.
        assert_eq!(map_len(), 2);
        // The store was not told anything: the next load reads it again.
        let misses = store.stats().misses;
        assert!(store.load(&dropped).await.unwrap().is_some());
        assert_eq!(store.stats().misses, misses + 1);
        // A bus message from another node still works as before.
        bus.publish(&format!("othernode:{}", digest(kept.as_str())))
            .await
            .unwrap();
        until(|| !store.is_cached(&kept)).await;
        assert_eq!(store.stats().peer_invalidations, 1);
    }

    #[test]
    fn a_flush_voids_everything() {
        let flushed = r#"{"event":"flushed","db":3,"at":1764756000000}"#;
        for layout in [None, Some(memc()), Some(resp())] {
            assert_eq!(
                server_change(flushed, layout.as_ref()),
                Some(ServerChange::Flushed)
            );
            assert_eq!(server_event_target(flushed, layout.as_ref()), None);
        }
        for json in [
            r#"{"event":"Flushed","db":0}"#,
            r#"{"event":"flushed ","db":0}"#,
            r#"{"event":["flushed"]}"#,
            r#"{"event":"flushed""#,
        ] {
            assert_eq!(server_change(json, Some(&memc())), None, "{json}");
        }
    }

    #[tokio::test]
    async fn the_listener_drops_everything_on_a_flush() {
        let bus = LocalBus::new();
        let config = CacheConfig {
            max_age: Duration::from_secs(3600),
            max_entries: 100,
        };
        let store = CachedStore::with_config(MemoryStore::new(), Arc::new(bus.clone()), config);
        let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
        for id in &ids {
            store
                .create(id, &Record::new(1), Duration::from_secs(600))
                .await
                .unwrap();
            assert!(store.load(id).await.unwrap().is_some());
            assert!(store.is_cached(id));
        }
        // A load in flight when the flush is announced must not cache what it read.
        let (in_flight, since) = store.shared.begin("somedigest");
        bus.tx
            .send(BusEvent::Server(
                r#"{"event":"flushed","db":0,"at":1}"#.to_owned(),
            ))
            .unwrap();
        until(|| ids.iter().all(|id| !store.is_cached(id))).await;
        assert_eq!(store.stats().resets, 1);
        assert_eq!(store.shared.lock().map.len(), 0);
        let value = Versioned {
            record: Record::new(1),
            version: 1,
        };
        store.shared.insert("somedigest", value, since);
        assert!(
            store.shared.lock().map.is_empty(),
            "the old load's read is void"
        );
        drop(in_flight);
        // The cache stays on: the next read is cached again.
        assert!(store.load(&ids[0]).await.unwrap().is_some());
        assert!(store.is_cached(&ids[0]));
    }

    /// A load that read the store before a server event arrived must not cache what it read,
    /// although the cache held nothing for that session when the event came.
    #[tokio::test]
    async fn an_event_during_a_load_voids_it() {
        let bus = LocalBus::new();
        let store = CachedStore::new(MemoryStore::new(), Arc::new(bus.clone()));
        let id = SessionId::generate();
        store
            .inner()
            .create(&id, &Record::new(1), Duration::from_secs(600))
            .await
            .unwrap();
        let d = digest(id.as_str());
        let (guard, since) = store.shared.begin(&d);
        bus.tx
            .send(BusEvent::Server(event("destroyed", "k", id.as_str())))
            .unwrap();
        until(|| store.stats().server_invalidations == 1).await;
        let value = store.inner().load(&id).await.unwrap().unwrap();
        store.shared.insert(&d, value, since);
        drop(guard);
        assert!(!store.is_cached(&id));
        assert!(store.shared.lock().in_flight.is_empty());
    }
}
