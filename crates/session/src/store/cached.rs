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

#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::broadcast;

use super::{CreateOutcome, Record, SessionStore, StoreFuture, UpdateOutcome, Version, Versioned};
use crate::id::SessionId;

/// What an invalidation bus delivers to the caches subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A message published by some node (possibly this one).
    Message(String),
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
    /// Counts invalidations; a load remembers it before going to the store.
    seq: u64,
    /// Bumped when the whole cache is dropped (bus down or up).
    epoch: u64,
    enabled: bool,
}

struct Shared {
    state: Mutex<State>,
    config: CacheConfig,
}

impl Shared {
    fn invalidate(&self, digest: &str) {
        let mut st = self.state.lock().unwrap();
        // Markers for sessions this node never read would pile up without bound on a busy
        // cluster, so when the map is full, age out old slots; if that is not enough, drop
        // everything and start a new epoch, which also voids every load in flight.
        if st.map.len() >= self.config.max_entries && !st.map.contains_key(digest) {
            let max_age = self.config.max_age;
            st.map.retain(|_, slot| match slot {
                Slot::Cached { at, .. } | Slot::Invalidated { at, .. } => at.elapsed() < max_age,
            });
            if st.map.len() >= self.config.max_entries {
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

    fn reset(&self, enabled: bool) {
        let mut st = self.state.lock().unwrap();
        st.map.clear();
        st.epoch += 1;
        st.enabled = enabled;
    }

    /// Caches `value` read (or written) by this node, unless a change was announced since
    /// the caller's snapshot of `(seq, epoch)`.
    fn insert(&self, digest: &str, value: Versioned, since: (u64, u64)) {
        let mut st = self.state.lock().unwrap();
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

    fn snapshot(&self) -> (u64, u64) {
        let st = self.state.lock().unwrap();
        (st.seq, st.epoch)
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
fn digest(id: &SessionId) -> String {
    let d = Sha256::digest(id.as_str().as_bytes());
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
                seq: 0,
                epoch: 0,
                enabled: bus.is_up(),
            }),
            config,
        });
        let rx = bus.subscribe();
        tokio::spawn(listen(rx, Arc::downgrade(&shared), node.clone()));
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

    async fn announce(&self, digest: &str) {
        let message = format!("{}:{}", self.node, digest);
        if let Err(e) = self.bus.publish(&message).await {
            // The write itself succeeded; other nodes fall back to `max_age`.
            tracing::warn!(error = %e, "session cache invalidation could not be published");
        }
    }
}

async fn listen(mut rx: broadcast::Receiver<BusEvent>, shared: Weak<Shared>, node: String) {
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
                }
            }
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
            let since = self.shared.snapshot();
            let out = self.inner.create(id, record, ttl).await?;
            if out == CreateOutcome::Created {
                let value = Versioned {
                    record: record.clone(),
                    version: 1,
                };
                self.shared.insert(&digest(id), value, since);
            }
            Ok(out)
        })
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let d = digest(id);
            let since = {
                let st = self.shared.state.lock().unwrap();
                if st.enabled
                    && let Some(Slot::Cached { value, at }) = st.map.get(&d)
                    && at.elapsed() < self.shared.config.max_age
                {
                    return Ok(Some(value.clone()));
                }
                (st.seq, st.epoch)
            };
            let loaded = self.inner.load(id).await?;
            if let Some(v) = &loaded {
                self.shared.insert(&d, v.clone(), since);
            }
            Ok(loaded)
        })
    }

    fn load_fresh<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let d = digest(id);
            let since = self.shared.snapshot();
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
            let d = digest(id);
            let out = self.inner.update(id, record, expected, ttl).await?;
            // Whatever happened, the cached copy is no longer the latest: invalidate first,
            // then cache what we wrote, from a snapshot taken after the invalidation.
            self.shared.invalidate(&d);
            if let UpdateOutcome::Updated(version) = out {
                let since = self.shared.snapshot();
                let value = Versioned {
                    record: record.clone(),
                    version,
                };
                self.shared.insert(&d, value, since);
                self.announce(&d).await;
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
            let d = digest(id);
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
            let d = digest(id);
            let out = self.inner.delete(id).await?;
            self.shared.invalidate(&d);
            // Announce even if this node found nothing: another node may still cache it.
            self.announce(&d).await;
            Ok(out)
        })
    }
}
