//! An in-process store: a mutex-guarded map with the full versioned contract.
//!
//! For tests and single-process apps. It is not shared between processes and does not survive
//! a restart; that is what the RESP store is for. Expired records are dropped when touched and
//! by a sweep that runs every few thousand operations, so memory stays bounded by the live
//! sessions without a background task.

#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CreateOutcome, Record, SessionStore, StoreFuture, UpdateOutcome, Version, Versioned};
use crate::clock::{Clock, SystemClock};
use crate::id::SessionId;

/// Operations between two sweeps of expired records.
const SWEEP_EVERY: u64 = 4096;

struct Entry {
    record: Record,
    version: Version,
    expires_at: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    ops: u64,
}

/// The in-memory store. Cheap to clone; clones share the map.
#[derive(Clone)]
pub struct MemoryStore {
    // A std mutex: no await happens while it is held and every critical section is a map
    // operation, so an async mutex would only add cost.
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store whose expiry follows `clock` (give it the layer's clock in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::default(),
            clock,
        }
    }

    /// Number of records held, expired or not. For tests.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }

    /// Whether the store holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on the map with expired entries of `id` removed first.
    fn with_live<T>(
        &self,
        id: &SessionId,
        f: impl FnOnce(&mut HashMap<String, Entry>, u64) -> T,
    ) -> T {
        let now = self.clock.now_ms();
        let mut inner = self.inner.lock().unwrap();
        inner.ops += 1;
        if inner.ops.is_multiple_of(SWEEP_EVERY) {
            inner.map.retain(|_, e| e.expires_at > now);
        }
        if inner
            .map
            .get(id.as_str())
            .is_some_and(|e| e.expires_at <= now)
        {
            inner.map.remove(id.as_str());
        }
        f(&mut inner.map, now)
    }
}

fn deadline(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(ttl.as_millis() as u64)
}

impl SessionStore for MemoryStore {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        let out = self.with_live(id, |map, now| {
            if map.contains_key(id.as_str()) {
                return CreateOutcome::Exists;
            }
            map.insert(
                id.as_str().to_owned(),
                Entry {
                    record: record.clone(),
                    version: 1,
                    expires_at: deadline(now, ttl),
                },
            );
            CreateOutcome::Created
        });
        Box::pin(async move { Ok(out) })
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        let out = self.with_live(id, |map, _| {
            map.get(id.as_str()).map(|e| Versioned {
                record: e.record.clone(),
                version: e.version,
            })
        });
        Box::pin(async move { Ok(out) })
    }

    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome> {
        let out = self.with_live(id, |map, now| match map.get_mut(id.as_str()) {
            None => UpdateOutcome::Missing,
            Some(e) if e.version != expected => UpdateOutcome::Conflict,
            Some(e) => {
                // Same rule as the Redis script: a touch that landed after the caller loaded
                // must not be undone by this write.
                let last_active_at = record.last_active_at.max(e.record.last_active_at);
                e.record = record.clone();
                e.record.last_active_at = last_active_at;
                e.version += 1;
                e.expires_at = deadline(now, ttl);
                UpdateOutcome::Updated(e.version)
            }
        });
        Box::pin(async move { Ok(out) })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let out = self.with_live(id, |map, now| match map.get_mut(id.as_str()) {
            None => false,
            Some(e) => {
                e.record.last_active_at = e.record.last_active_at.max(last_active_at);
                e.expires_at = deadline(now, ttl);
                true
            }
        });
        Box::pin(async move { Ok(out) })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        let out = self.with_live(id, |map, _| map.remove(id.as_str()).is_some());
        Box::pin(async move { Ok(out) })
    }
}
