//! sessiond's keyspace: what a session store holds, with no idea how it is reached.
//!
//! A [`Store`] maps keys to items. An item is a value, 32-bit client flags, a 64-bit CAS
//! unique and an optional deadline (Unix milliseconds). This crate knows nothing about
//! memcached, RESP, HTTP or sockets, and it never reads a clock: every operation takes `now`
//! (Unix ms) from its caller, so tests move time by hand and never sleep.
//!
//! # Concurrency
//! The keyspace is split into [`SHARDS`] shards, each a `std::sync::Mutex` around a hash table
//! and a timing wheel. A key's shard is chosen by its hash. Critical sections are short and
//! never await, which is why the lock is a std mutex and not an async one. A string is read
//! without copying: the reader gets a [`Bytes`] that shares the item's reference-counted
//! block (see *Memory*).
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
//! Overwriting a key keeps its `wheel_at` (the new item inherits the live entry).
//!
//! An entry is 16 bytes: the key's 64-bit table hash and the deadline it was filed for, not
//! the key. When it fires it resolves to the item of its shard with that hash and a
//! matching `wheel_at`. A full 64-bit collision between two keys of one shard (about 2^-64
//! per pair) can make a stale entry meet the other key's item; that item is then handled as
//! if its own entry had fired: re-filed if its deadline is ahead, removed only if its
//! deadline has passed. A collision can therefore delay or advance a re-filing, never remove
//! a live item, and reads check deadlines regardless.
//!
//! # Memory
//! [`Budget`] accounts every item's key, value and a fixed per-item overhead
//! ([`ITEM_OVERHEAD`]) against `max_memory`, shared by every store of a server. The policy is
//! *never evict*: a write that does not fit fails with [`StoreError::OutOfMemory`] and the
//! store is unchanged. A live session is never dropped to make room for another.
//! Every charge is a guard (`budget::Charge`) that gives its bytes back when dropped unless
//! the operation commits it, so no early return can leak a charge; an item leaving its
//! table hands its bytes to such a guard too.
//!
//! Layout, chosen so that a session costs less than in memcached (issue #8): an item is one
//! heap block, a 48-byte header (flags, CAS, deadline, `wheel_at`, lengths, reference count,
//! and memcached's last-access time and meta marks) followed by the key and the string's bytes (a collection's block holds its [`Value`]
//! pointer and the key). The shard's `hashbrown::HashTable` holds only a thin pointer to the
//! block, 8 bytes a slot, and compares keys inside the blocks; the hash is recomputed from
//! the key on a resize rather than stored. A read of a string returns `Bytes::from_owner`
//! around a second handle to the block: no copy, one small short-lived allocation per read,
//! and nothing kept per item afterwards. The budget charge is derived from the block (a
//! collection keeps a running byte count), not stored. Measured on 1,000,000 sessions of
//! 1 KiB with 46-byte keys: about 1,170 bytes of RSS per session, against memcached's 1,192
//! (it was 1,415 with a `HashMap<Bytes, Item>`, a separate key allocation and 40-byte wheel
//! entries). That was with a 40-byte header; the meta protocol's 8 bytes (last access and
//! marks) add 8 to 16 bytes a session depending on malloc's 16-byte rounding, not measured
//! again yet.
//!
//! # Types
//! A key holds a [`Value`]: a string (all memcached knows; memcached commands treat any
//! other type as a miss, and a plain `set` overwrites it) or a hash, set, sorted set, list
//! or stream for RESP. A stream's changes are planned [`StreamOp`]s, applied by the one
//! function replay also runs (see the `stream` module). Typed operations answer [`StoreError::WrongType`] when they meet another
//! type. Element changes to a collection are journaled as element records ([`ElementOp`]),
//! each absolute and idempotent (a list's are positional, and made idempotent by the list
//! version they name, see [`List`]); a collection written as a whole (created, renamed) as
//! one [`Mutation::PutCollection`].
//!
//! # Operations
//! One verb per act. Where memcached and Redis disagree about an act, the name says how:
//! an `_if_string` operation sees strings only and treats another type as a miss (memcached
//! knows no other type); the others see every type and answer [`StoreError::WrongType`].
//!
//! | act | any type, or `WrongType` (Redis) | strings only, another type a miss (memcached) |
//! |---|---|---|
//! | read | [`Store::get`] | [`Store::get_if_string`] |
//! | move the deadline | [`Store::retime`] (decided from the current one) | [`Store::touch_if_string`] |
//! | write | [`Store::write`], with a [`Condition`] of either kind | the same |
//! | add to a string's end | [`Store::extend_or_create`] | [`Store::extend_if_string`] (either end, CAS) |
//! | remove | [`Store::remove`]; [`Store::take_string`] returns the string | [`Store::remove_if_string`] (CAS) |
//! | add to a counter | [`Store::add_i64`] (signed, checked) | [`Store::add_u64`] (wraps up, stops at 0 down) |
//!
//! The operations on keys and strings are in `keyspace.rs`, those on hashes, sets and
//! sorted sets in `collections.rs`, those on lists in `lists.rs`, their argument and answer types in `types.rs`, and the
//! journal's contract ([`Mutation`], [`Observer`]) in `mutation.rs`. This file holds the
//! [`Store`] itself and what acts on the whole of it: flush, replay, expiry, counters.

#![deny(missing_docs)]

mod budget;
mod collections;
mod glob;
mod histogram;
mod item;
mod keyspace;
mod lists;
mod mutation;
mod shard;
mod stream;
mod streams;
mod types;
mod value;
pub mod wheel;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use budget::{Budget, DerivedCharge, ITEM_OVERHEAD};
pub use bytes::Bytes;
pub use glob::glob_match;
pub use histogram::{Histogram, HistogramSnapshot};

/// The buckets (upper bounds, in milliseconds) of [`Store::expiry_lateness`].
pub const LATENESS_BOUNDS_MS: [u64; 14] = [
    0, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];
pub use lists::{ListSetOutcome, Place, list_index, list_range};
pub use mutation::{ElementOp, Mutation, Observer};
use shard::Shard;
pub use stream::{
    Consumer, Group, OpRefused, PENDING_COST, Pending, Stream, StreamId, StreamOp, entry_cost,
    name_cost,
};
pub use streams::{
    AddId, AutoClaimed, ClaimOptions, Delivered, Keep, ReadFrom, StreamRefusal, Trim, trim_count,
};
pub use types::{
    Condition, CounterOutcome, DeadlineChange, Direction, Entry, IfTargetExists, MetaCounter,
    MetaEntry, MetaRead, Previous, RemoveOutcome, RenameOutcome, Side, StoreError, StoreStats,
    Write, WriteOutcome, Written, ZAddFlags, ZIncr,
};
pub use value::{ELEMENT_OVERHEAD, End, Hash, Kind, List, Score, Set, Value, ZSet};

/// Number of shards per store. A power of two well above the core count, so two threads
/// rarely meet on one lock.
pub const SHARDS: usize = 64;

/// Most wheel entries one shard hands out per [`Store::expire_due`] call, bounding how long
/// the shard's lock is held when very many items expire together.
const EXPIRE_BUDGET_PER_SHARD: usize = 1024;

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
    /// Changes that had to copy a whole stream first because a reader held it.
    stream_copies: AtomicU64,
    /// How late the wheel reclaimed each expired item: `now - deadline`, in milliseconds.
    lateness: Histogram,
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
        // The tables hash with their own seed: the store's hasher picks the shard from the
        // low bits, which every key of a shard therefore shares.
        let table_hasher = foldhash::fast::RandomState::default();
        Store {
            observer,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(now, table_hasher)))
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            budget,
            next_cas: AtomicU64::new(1),
            pending_flush: AtomicU64::new(0),
            total_items: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            reclaimed_by_wheel: AtomicU64::new(0),
            stream_copies: AtomicU64::new(0),
            lateness: Histogram::new(&LATENESS_BOUNDS_MS),
        }
    }

    /// The memory budget this store charges.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    fn shard(&self, key: &[u8], now: u64) -> MutexGuard<'_, Shard> {
        self.apply_pending_flush(now);
        self.lock(self.shard_index(key))
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
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
            stream_copies: &self.stream_copies,
            observer: self.observer.as_deref(),
            explicit_cas: None,
        }
    }

    /// [`Store::ctx`] for a change that gives its item `cas` if given (memcached's `E`).
    fn ctx_with_cas(&self, now: u64, cas: Option<u64>) -> shard::Ctx<'_> {
        shard::Ctx {
            explicit_cas: cas,
            ..self.ctx(now)
        }
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
            observer.applied(&Mutation::Clear, now);
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
            | Mutation::PutCollection { key, .. }
            | Mutation::Element { key, .. }
            | Mutation::Remove { key }
            | Mutation::Revoke { key, .. }
            | Mutation::Marks { key, .. }
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
            self.next_cas
                .fetch_max(cas.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// A copy of every live item of any type in shard `index` (0..[`SHARDS`]), for a
    /// snapshot. Values are shared, not copied.
    pub fn live_entries_in_shard(&self, index: usize, now: u64) -> Vec<(Bytes, Entry)> {
        self.lock(index).live_entries(now)
    }

    /// The revocations in force in shard `index` (0..[`SHARDS`]) and until when, for a
    /// snapshot.
    pub fn revocations_in_shard(&self, index: usize, now: u64) -> Vec<(Bytes, u64)> {
        self.lock(index).revocations(now)
    }

    /// The live strings in shard `index` (0..[`SHARDS`]) that carry journaled meta marks
    /// (stale, recache right handed out), each as the [`Mutation::Marks`] fields: key, CAS,
    /// stale, recache taken. For a snapshot, which writes them after the items.
    pub fn marks_in_shard(&self, index: usize, now: u64) -> Vec<(Bytes, u64, bool, bool)> {
        self.lock(index).marked(now)
    }

    /// Revokes the live item under `key`: removes it and refuses every write that would
    /// create the key again ([`StoreError::Revoked`]) until the item's deadline, or for
    /// `hold` ms if it had none. The observer hears a [`Mutation::Revoke`]. Returns until
    /// when, or `None` if the key held nothing (then nothing is filed).
    pub fn revoke(&self, key: &[u8], hold: u64, now: u64) -> Option<u64> {
        self.shard(key, now).revoke(key, hold, &self.ctx(now))
    }

    /// Removes items whose deadline is at or before `now`, telling the observer of each
    /// ([`Observer::expired`]), and forgets revocations whose time has come. Returns how
    /// many items were removed. Each shard hands out a bounded number of wheel entries per
    /// call; call it again if the return value suggests a backlog.
    pub fn expire_due(&self, now: u64) -> usize {
        self.apply_pending_flush(now);
        let mut due = Vec::new();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            removed += shard.expire_due(
                &self.ctx(now),
                EXPIRE_BUDGET_PER_SHARD,
                &mut due,
                &self.lateness,
            );
        }
        self.reclaimed_by_wheel
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// How late [`Store::expire_due`] reclaimed the items it removed: for each, `now` minus
    /// its deadline, in milliseconds, in the buckets of [`LATENESS_BOUNDS_MS`]. (Items a read
    /// found dead are not in it: their lateness says when they were read, not how well the
    /// sweep keeps up.)
    pub fn expiry_lateness(&self) -> HistogramSnapshot {
        self.lateness.snapshot()
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
            stream_copies: self.stream_copies.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
