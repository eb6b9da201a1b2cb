//! sessiond's keyspace: what a session store holds, with no idea how it is reached.
//!
//! A [`Store`] maps keys to items. An item is a value, 32-bit client flags, a 64-bit CAS
//! unique and an optional deadline (Unix milliseconds). This crate knows nothing about
//! memcached, RESP, HTTP or sockets, and it never reads a clock: every operation takes `now`
//! (Unix ms) from its caller, so tests move time by hand and never sleep.
//!
//! # Concurrency
//! The keyspace is split into [`SHARDS`] shards, each a `std::sync::Mutex` around a hash map
//! and a timing wheel. A key's shard is chosen by its hash. Critical sections are short and
//! never await, which is why the lock is a std mutex and not an async one. Values are
//! reference-counted [`Bytes`], so a read clones a pointer under the lock and copies nothing.
//!
//! # Expiry
//! The item's deadline is the truth. Every read checks it, so an expired item is never
//! visible even if nothing has removed it yet. A hierarchical timing wheel per shard
//! ([`wheel`]) removes expired items proactively at O(1) cost per write or touch;
//! [`Store::expire_due`] is driven by the server's clock task.
//!
//! Invariant (`wheel_at`): an item with a deadline has exactly one *live* wheel entry, filed
//! at `item.wheel_at <= item.deadline`. When a write or touch moves the deadline later, the
//! entry is left alone: it fires early and is re-filed at the new deadline (lazy re-filing,
//! so a touch-heavy workload adds nothing to the wheel). When the deadline moves earlier, a
//! new entry is filed and `wheel_at` updated; the old entry is then stale. An entry whose
//! deadline differs from its item's `wheel_at` (or whose item is gone) is stale and ignored.
//!
//! # Memory
//! [`Budget`] accounts every item's key, value and a fixed per-item overhead against
//! `max_memory`, shared by every store of a server. The policy is *never evict*: a write
//! that does not fit fails with [`StoreError::OutOfMemory`] and the store is unchanged.
//! A live session is never dropped to make room for another.

#![deny(missing_docs)]

mod budget;
mod shard;
pub mod wheel;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use budget::{Budget, ITEM_OVERHEAD};
pub use bytes::Bytes;
use shard::Shard;

/// Number of shards per store. A power of two well above the core count, so two threads
/// rarely meet on one lock.
pub const SHARDS: usize = 64;

/// Most wheel entries one shard hands out per [`Store::expire_due`] call, bounding how long
/// the shard's lock is held when very many items expire together.
const EXPIRE_BUDGET_PER_SHARD: usize = 1024;

/// A read-only copy of an item's fields, returned by reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemView {
    /// The value.
    pub value: Bytes,
    /// The client flags.
    pub flags: u32,
    /// The CAS unique.
    pub cas: u64,
    /// The deadline in Unix ms, if the item expires.
    pub deadline: Option<u64>,
}

/// A change the store has applied, as an [`Observer`] sees it. Every variant is idempotent
/// and carries absolute values (a whole value, an absolute deadline), so replaying a log of
/// them, even one that overlaps a snapshot, converges to the same state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation<'a> {
    /// The key now holds this item (a write, append, counter change or replayed snapshot).
    Put {
        /// The key.
        key: &'a [u8],
        /// The whole new value.
        value: &'a [u8],
        /// The client flags.
        flags: u32,
        /// The CAS unique.
        cas: u64,
        /// The deadline in Unix ms, if any.
        deadline: Option<u64>,
    },
    /// The key's item was removed (delete, or a write or touch with a past deadline).
    /// Removal because a deadline passed is not reported: the deadline itself is recorded.
    Remove {
        /// The key.
        key: &'a [u8],
    },
    /// The key's deadline changed (touch); `None` means it no longer expires.
    Deadline {
        /// The key.
        key: &'a [u8],
        /// The new deadline in Unix ms.
        deadline: Option<u64>,
    },
    /// Every item was removed (`flush_all`).
    Clear,
}

/// Receives every change a store applies, while the store still holds the lock of the
/// changed key's shard: for any one key, calls arrive in the order the changes were applied.
/// The journal implements this. It must be quick and must not call back into the store.
pub trait Observer: Send + Sync {
    /// Called after `mutation` was applied in memory.
    fn applied(&self, mutation: &Mutation<'_>);
}

/// The condition under which [`Store::store`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always (memcached `set`).
    Always,
    /// Only if the key holds no live item (`add`).
    IfAbsent,
    /// Only if the key holds a live item (`replace`).
    IfPresent,
    /// Only if the key holds a live item with this CAS unique (`cas`).
    IfCas(u64),
}

/// Which end of a value [`Store::concat`] adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// After the existing value.
    Append,
    /// Before the existing value.
    Prepend,
}

/// The result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; carries the item's new CAS unique.
    Stored(u64),
    /// The condition failed: the key was present for `IfAbsent`, absent for `IfPresent`.
    NotStored,
    /// The key is present but its CAS differs from the one required.
    Exists,
    /// A CAS-conditioned write found no live item.
    NotFound,
}

/// The result of [`Store::delete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The item was removed.
    Deleted,
    /// No live item.
    NotFound,
    /// The item's CAS differs from the one required.
    Exists,
}

/// The result of [`Store::arith`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The counter's new value and the item's new CAS.
    Value(u64, u64),
    /// No live item, and no initial value was given.
    NotFound,
    /// The value is not a decimal number of at most 20 digits.
    NonNumeric,
}

/// A write that the store refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The write does not fit under the memory limit; nothing was evicted or changed.
    OutOfMemory,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::OutOfMemory => f.write_str("out of memory storing object"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Counters describing a store, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live and not-yet-reclaimed items.
    pub items: u64,
    /// Items ever written.
    pub total_items: u64,
    /// Items removed because their deadline passed (by a read or by the wheel).
    pub expired: u64,
    /// Of those, items removed by the wheel without anyone reading them.
    pub reclaimed_by_wheel: u64,
    /// Writes refused because of the memory limit.
    pub out_of_memory: u64,
    /// Entries in the timing wheels, stale ones included.
    pub wheel_entries: u64,
}

/// The keyspace. See the crate documentation.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    budget: Arc<Budget>,
    next_cas: AtomicU64,
    /// Unix ms at which a delayed `flush_all` takes effect; 0 when none is pending.
    pending_flush: AtomicU64,
    total_items: AtomicU64,
    expired: AtomicU64,
    reclaimed_by_wheel: AtomicU64,
    observer: Option<Arc<dyn Observer>>,
}

impl Store {
    /// An empty store charging its memory to `budget`, with its wheels starting at `now`.
    pub fn new(budget: Arc<Budget>, now: u64) -> Store {
        Store::with_observer(budget, now, None)
    }

    /// Like [`Store::new`], reporting every applied change to `observer`.
    pub fn with_observer(
        budget: Arc<Budget>,
        now: u64,
        observer: Option<Arc<dyn Observer>>,
    ) -> Store {
        Store {
            observer,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new(now))).collect(),
            hasher: foldhash::fast::RandomState::default(),
            budget,
            next_cas: AtomicU64::new(1),
            pending_flush: AtomicU64::new(0),
            total_items: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            reclaimed_by_wheel: AtomicU64::new(0),
        }
    }

    /// The memory budget this store charges.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    fn shard(&self, key: &[u8], now: u64) -> MutexGuard<'_, Shard> {
        self.apply_pending_flush(now);
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard lock would be a bug in this crate; the shard's data
        // is still structurally valid, so keep serving rather than poisoning every request.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ctx(&self, now: u64) -> shard::Ctx<'_> {
        shard::Ctx {
            now,
            budget: &self.budget,
            next_cas: &self.next_cas,
            total_items: &self.total_items,
            expired: &self.expired,
            observer: self.observer.as_deref(),
        }
    }

    /// The live item under `key`.
    pub fn get(&self, key: &[u8], now: u64) -> Option<ItemView> {
        self.shard(key, now).get(key, &self.ctx(now))
    }

    /// The live item under `key`, after moving its deadline to `deadline` (`None`: never
    /// expires). A deadline at or before `now` returns the item and then removes it.
    pub fn get_and_touch(&self, key: &[u8], deadline: Option<u64>, now: u64) -> Option<ItemView> {
        self.shard(key, now).touch(key, deadline, &self.ctx(now))
    }

    /// Moves the deadline of the live item under `key`; returns the item as touched, or
    /// `None` if there is none. A deadline at or before `now` removes the item.
    pub fn touch(&self, key: &[u8], deadline: Option<u64>, now: u64) -> Option<ItemView> {
        self.get_and_touch(key, deadline, now)
    }

    /// Writes `value` with `flags` and `deadline` under `key` if `condition` holds.
    /// A deadline at or before `now` makes the write succeed without leaving anything alive
    /// (memcached's rule for an exptime in the past), removing any previous item.
    pub fn store(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        deadline: Option<u64>,
        condition: Condition,
        now: u64,
    ) -> Result<WriteOutcome, StoreError> {
        let result =
            self.shard(key, now)
                .store(key, value, flags, deadline, condition, &self.ctx(now));
        self.count_oom(result)
    }

    /// Appends or prepends `data` to the live item under `key`, keeping its flags and
    /// deadline; `cas` (0 = none) must match. A missing item gives `NotStored`.
    pub fn concat(
        &self,
        key: &[u8],
        data: &[u8],
        side: Side,
        cas: u64,
        now: u64,
    ) -> Result<WriteOutcome, StoreError> {
        let result = self
            .shard(key, now)
            .concat(key, data, side, cas, &self.ctx(now));
        self.count_oom(result)
    }

    /// Removes the live item under `key`; `cas` (0 = none) must match.
    pub fn delete(&self, key: &[u8], cas: u64, now: u64) -> DeleteOutcome {
        self.shard(key, now).delete(key, cas, &self.ctx(now))
    }

    /// Adds `delta` to (`incr`), or subtracts it from (`!incr`), the decimal counter under
    /// `key`. Incrementing wraps at 2^64 and decrementing stops at 0, as memcached does.
    /// A missing item is created from `initial` (value, deadline) when given.
    pub fn arith(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        initial: Option<(u64, Option<u64>)>,
        now: u64,
    ) -> Result<ArithOutcome, StoreError> {
        let result = self
            .shard(key, now)
            .arith(key, incr, delta, initial, &self.ctx(now));
        self.count_oom(result)
    }

    /// Removes every item at `at` (Unix ms): now if `at <= now`, otherwise when the first
    /// operation or [`Store::expire_due`] at or after `at` runs. Items written before `at`
    /// are removed with the rest, as memcached's `flush_all <delay>` does.
    pub fn flush_all(&self, at: u64, now: u64) {
        if at <= now {
            self.pending_flush.store(0, Ordering::Relaxed);
            self.clear_all(now);
        } else {
            self.pending_flush.store(at, Ordering::Relaxed);
        }
    }

    fn apply_pending_flush(&self, now: u64) {
        let at = self.pending_flush.load(Ordering::Relaxed);
        if at != 0
            && at <= now
            && self
                .pending_flush
                .compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.clear_all(now);
        }
    }

    fn clear_all(&self, now: u64) {
        // Every shard is locked before any is cleared and the observer hears of it under
        // all the locks, so no write can be ordered on the wrong side of the clear.
        let mut guards: Vec<_> = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        for shard in guards.iter_mut() {
            shard.clear(&self.budget, now);
        }
        if let Some(observer) = &self.observer {
            observer.applied(&Mutation::Clear);
        }
    }

    /// Applies a change read back from a journal or snapshot: unconditionally, without
    /// telling the observer and without the memory limit (what was acknowledged before a
    /// restart comes back even if the limit was lowered since). Items whose deadline has
    /// passed by `now` are dropped.
    pub fn restore(&self, mutation: &Mutation<'_>, now: u64) {
        let restored_cas = match mutation {
            Mutation::Clear => {
                for shard in self.shards.iter() {
                    shard
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear(&self.budget, now);
                }
                None
            }
            Mutation::Put { key, .. }
            | Mutation::Remove { key }
            | Mutation::Deadline { key, .. } => {
                let ctx = shard::Ctx {
                    observer: None,
                    ..self.ctx(now)
                };
                self.shard(key, now).restore(mutation, &ctx)
            }
        };
        // CAS uniques stay unique across a restart: new ones start above every restored one.
        if let Some(cas) = restored_cas {
            self.next_cas.fetch_max(cas + 1, Ordering::Relaxed);
        }
    }

    /// A copy of every live item in shard `index` (0..[`SHARDS`]), for a snapshot. Values are
    /// shared, not copied, and the shard's lock is held only while the list is built.
    pub fn live_items_in_shard(&self, index: usize, now: u64) -> Vec<(Bytes, ItemView)> {
        self.shards[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live_items(now)
    }

    /// Removes items whose deadline is at or before `now`, calling `on_expired` with each
    /// removed key (for expiry notifications). Returns how many were removed. Each shard
    /// hands out a bounded number of wheel entries per call; call it again if the return
    /// value suggests a backlog.
    pub fn expire_due(&self, now: u64, on_expired: &mut dyn FnMut(&[u8])) -> usize {
        self.apply_pending_flush(now);
        let mut due = Vec::new();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            removed += shard.expire_due(
                &self.ctx(now),
                EXPIRE_BUDGET_PER_SHARD,
                &mut due,
                on_expired,
            );
        }
        self.reclaimed_by_wheel
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Number of items held, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether the store holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the store's counters.
    pub fn stats(&self) -> StoreStats {
        let mut items = 0;
        let mut wheel_entries = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            items += shard.len() as u64;
            wheel_entries += shard.wheel_len() as u64;
        }
        StoreStats {
            items,
            total_items: self.total_items.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            reclaimed_by_wheel: self.reclaimed_by_wheel.load(Ordering::Relaxed),
            out_of_memory: self.budget.out_of_memory(),
            wheel_entries,
        }
    }

    fn count_oom<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.budget.record_out_of_memory();
        }
        result
    }
}

#[cfg(test)]
mod tests;
