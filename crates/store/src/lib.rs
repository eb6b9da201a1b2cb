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
//!
//! Layout, chosen so that a session costs less than in memcached (issue #8): an item is one
//! heap block, a 40-byte header (flags, CAS, deadline, `wheel_at`, lengths, reference count)
//! followed by the key and the string's bytes (a collection's block holds its [`Value`]
//! pointer and the key). The shard's `hashbrown::HashTable` holds only a thin pointer to the
//! block, 8 bytes a slot, and compares keys inside the blocks; the hash is recomputed from
//! the key on a resize rather than stored. A read of a string returns `Bytes::from_owner`
//! around a second handle to the block: no copy, one small short-lived allocation per read,
//! and nothing kept per item afterwards. The budget charge is derived from the block (a
//! collection keeps a running byte count), not stored. Measured on 1,000,000 sessions of
//! 1 KiB with 46-byte keys: about 1,170 bytes of RSS per session, against memcached's 1,192
//! (it was 1,415 with a `HashMap<Bytes, Item>`, a separate key allocation and 40-byte wheel
//! entries).
//!
//! # Types
//! A key holds a [`Value`]: a string (all memcached knows; memcached commands treat any
//! other type as a miss, and a plain `set` overwrites it) or a hash, set or sorted set for
//! RESP. Typed operations answer [`StoreError::WrongType`] when they meet another type.
//! Element changes to a collection are journaled as element records ([`ElementOp`]), each
//! absolute and idempotent; a collection written as a whole (created, renamed) as one
//! [`Mutation::PutCollection`].

#![deny(missing_docs)]

mod budget;
mod glob;
mod item;
mod shard;
mod value;
pub mod wheel;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use budget::{Budget, ITEM_OVERHEAD};
pub use bytes::Bytes;
pub use glob::glob_match;
pub use shard::parse_i64;
use shard::{Op, Shard};
pub use value::{ELEMENT_OVERHEAD, Hash, Kind, Score, Set, Value, ZSet};

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

/// A copy of an item of any type, returned by typed reads. Cheap: a string is a shared
/// buffer and a collection a shared pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// The client flags (0 for anything RESP wrote).
    pub flags: u32,
    /// The CAS unique.
    pub cas: u64,
    /// The deadline in Unix ms, if the item expires.
    pub deadline: Option<u64>,
}

/// One element change to an existing collection. Absolute (a score or field value is the
/// new one, never a delta) and idempotent, so replaying it again is harmless.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ElementOp<'a> {
    /// A hash field now has this value.
    HashSet {
        /// The field.
        field: &'a [u8],
        /// Its value.
        value: &'a [u8],
    },
    /// A hash field was removed.
    HashRemove {
        /// The field.
        field: &'a [u8],
    },
    /// A set member was added.
    SetAdd {
        /// The member.
        member: &'a [u8],
    },
    /// A set member was removed.
    SetRemove {
        /// The member.
        member: &'a [u8],
    },
    /// A sorted-set member now has this score.
    ZSetAdd {
        /// The member.
        member: &'a [u8],
        /// Its score (never NaN).
        score: f64,
    },
    /// A sorted-set member was removed.
    ZSetRemove {
        /// The member.
        member: &'a [u8],
    },
}

/// A change the store has applied, as an [`Observer`] sees it. Every variant is idempotent
/// and carries absolute values (a whole value, an absolute deadline), so replaying a log of
/// them, even one that overlaps a snapshot, converges to the same state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mutation<'a> {
    /// The key now holds this string (a write, append, counter change or replayed snapshot).
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
    /// The key now holds this whole collection, with no flags (created, renamed or
    /// snapshotted).
    PutCollection {
        /// The key.
        key: &'a [u8],
        /// The collection's type (never [`Kind::Str`]).
        kind: Kind,
        /// The elements, as [`Value::encode_members`] writes them.
        members: &'a [u8],
        /// The deadline in Unix ms, if any.
        deadline: Option<u64>,
    },
    /// One element of the collection under the key changed. Replay applies it only to a
    /// collection of the matching type that exists; otherwise a later record supersedes it.
    Element {
        /// The key.
        key: &'a [u8],
        /// The change.
        op: ElementOp<'a>,
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

    /// Called when a read finds `key`'s deadline passed and removes the item. Not a
    /// mutation to journal (the deadline is recorded already); it exists so the server can
    /// publish the expiry. [`Store::expire_due`] reports its removals to its own callback
    /// instead.
    fn expired(&self, key: &[u8]) {
        let _ = key;
    }
}

/// `SET`'s condition on the key's existence (any type counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exists {
    /// Always write.
    Any,
    /// Only if the key holds nothing (`NX`).
    IfAbsent,
    /// Only if the key holds something (`XX`).
    IfPresent,
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineChange {
    /// Keep the current one (`KEEPTTL`).
    Keep,
    /// Set this one (`None`: never expires).
    Set(Option<u64>),
}

/// The result of [`Store::set`].
#[derive(Debug, Clone, PartialEq)]
pub struct SetOutcome {
    /// Whether the condition held and the value was written.
    pub written: bool,
    /// The previous value, when asked for.
    pub old: Option<Value>,
}

/// The result of [`Store::rename`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameOutcome {
    /// Moved.
    Renamed,
    /// `nx` was set and the destination holds something; nothing changed.
    TargetExists,
    /// The source holds nothing.
    NoSuchKey,
}

/// Which members [`Store::zset_add`] may add or update (Redis's `ZADD` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZAddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Count changed members, not only added ones.
    pub ch: bool,
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

/// An operation that the store refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The write does not fit under the memory limit; nothing was evicted or changed.
    OutOfMemory,
    /// The key holds a value of another type.
    WrongType,
    /// The value (a string or hash field) is not a decimal integer.
    NotInteger,
    /// The arithmetic would overflow a signed 64-bit integer.
    Overflow,
    /// The resulting string would be longer than allowed.
    TooLarge,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreError::OutOfMemory => "out of memory storing object",
            StoreError::WrongType => "the key holds a value of another type",
            StoreError::NotInteger => "value is not an integer",
            StoreError::Overflow => "increment or decrement would overflow",
            StoreError::TooLarge => "string exceeds maximum allowed size",
        })
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
            | Mutation::PutCollection { key, .. }
            | Mutation::Element { key, .. }
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

    /// A copy of every live string item in shard `index` (0..[`SHARDS`]). Values are
    /// shared, not copied, and the shard's lock is held only while the list is built.
    pub fn live_items_in_shard(&self, index: usize, now: u64) -> Vec<(Bytes, ItemView)> {
        self.lock(index).live_items(now)
    }

    /// A copy of every live item of any type in shard `index` (0..[`SHARDS`]), for a
    /// snapshot. Values are shared, not copied.
    pub fn live_entries_in_shard(&self, index: usize, now: u64) -> Vec<(Bytes, Entry)> {
        self.lock(index).live_entries(now)
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
        if result.as_ref().err() == Some(&StoreError::OutOfMemory) {
            self.budget.record_out_of_memory();
        }
        result
    }

    // ----- Typed operations (any value type; RESP uses these). -----

    /// The live item under `key`, whatever its type.
    pub fn entry(&self, key: &[u8], now: u64) -> Option<Entry> {
        self.shard(key, now).entry(key, &self.ctx(now))
    }

    /// Writes the string `value` under `key` if `exists` allows, replacing any type; the
    /// deadline is set or kept as `deadline` says. With `want_old`, the previous value is
    /// returned, and a previous value that is not a string refuses the write with
    /// [`StoreError::WrongType`] (Redis's `SET … GET`).
    pub fn set(
        &self,
        key: &[u8],
        value: &[u8],
        exists: Exists,
        deadline: DeadlineChange,
        want_old: bool,
        now: u64,
    ) -> Result<SetOutcome, StoreError> {
        let result =
            self.shard(key, now)
                .set(key, value, exists, deadline, want_old, &self.ctx(now));
        self.count_oom(result)
    }

    /// Removes the live item under `key` of any type and returns its value.
    pub fn remove(&self, key: &[u8], now: u64) -> Option<Value> {
        self.shard(key, now)
            .take(key, false, &self.ctx(now))
            .ok()
            .flatten()
    }

    /// Removes and returns the string under `key`; another type is left alone and answers
    /// [`StoreError::WrongType`].
    pub fn take_string(&self, key: &[u8], now: u64) -> Result<Option<Bytes>, StoreError> {
        let value = self.shard(key, now).take(key, true, &self.ctx(now))?;
        Ok(value.and_then(|v| match v {
            Value::Str(bytes) => Some(bytes),
            _ => None,
        }))
    }

    /// Reads the live item under `key` and, atomically with the read, lets `decide` move
    /// its deadline: `decide` gets the value and the current deadline and returns its
    /// answer and, if the deadline changes, the new one (`Some(None)`: never expires). A new
    /// deadline at or before `now` removes the item. `None` if the key holds nothing.
    pub fn retime<R>(
        &self,
        key: &[u8],
        now: u64,
        decide: impl FnOnce(&Value, Option<u64>) -> (R, Option<Option<u64>>),
    ) -> Option<R> {
        self.shard(key, now).retime(key, &self.ctx(now), decide)
    }

    /// Appends `data` to the string under `key`, creating it if missing; returns the new
    /// length. Longer than `max_len` refuses with [`StoreError::TooLarge`].
    pub fn append(
        &self,
        key: &[u8],
        data: &[u8],
        max_len: usize,
        now: u64,
    ) -> Result<usize, StoreError> {
        let result = self
            .shard(key, now)
            .append(key, data, max_len, &self.ctx(now));
        self.count_oom(result)
    }

    /// Adds `delta` to the signed decimal string under `key` (missing counts as 0), keeping
    /// its deadline; returns the new value.
    pub fn incr_by(&self, key: &[u8], delta: i64, now: u64) -> Result<i64, StoreError> {
        let result = self.shard(key, now).incr_by(key, delta, &self.ctx(now));
        self.count_oom(result)
    }

    /// Sets hash fields, creating the hash if missing; returns how many fields are new.
    pub fn hash_set(
        &self,
        key: &[u8],
        pairs: &[(&[u8], &[u8])],
        now: u64,
    ) -> Result<usize, StoreError> {
        let reserve = pairs
            .iter()
            .map(|(f, v)| (f.len() + v.len()) as u64 + ELEMENT_OVERHEAD)
            .sum();
        let result = self.shard(key, now).elements(
            key,
            Kind::Hash,
            true,
            reserve,
            &self.ctx(now),
            |value, ops| {
                let Value::Hash(hash) = value else { return 0 };
                let hash = Arc::make_mut(hash);
                let mut added = 0;
                for (field, val) in pairs {
                    let (field, val) = (Bytes::copy_from_slice(field), Bytes::copy_from_slice(val));
                    added += usize::from(hash.insert(field.clone(), val.clone()));
                    ops.push(Op::HashSet(field, val));
                }
                added
            },
        );
        self.count_oom(result).map(|n| n.unwrap_or(0))
    }

    /// Removes hash fields; returns how many existed.
    pub fn hash_remove(&self, key: &[u8], fields: &[&[u8]], now: u64) -> Result<usize, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::Hash,
            false,
            0,
            &self.ctx(now),
            |value, ops| {
                let Value::Hash(hash) = value else { return 0 };
                if !fields.iter().any(|f| hash.get(f).is_some()) {
                    return 0;
                }
                let hash = Arc::make_mut(hash);
                let mut removed = 0;
                for field in fields {
                    if let Some(field) = hash.remove(field) {
                        removed += 1;
                        ops.push(Op::HashRemove(field));
                    }
                }
                removed
            },
        );
        result.map(|n| n.unwrap_or(0))
    }

    /// Adds `delta` to the signed decimal in a hash field (missing counts as 0); returns the
    /// new value.
    pub fn hash_incr(
        &self,
        key: &[u8],
        field: &[u8],
        delta: i64,
        now: u64,
    ) -> Result<i64, StoreError> {
        let reserve = (field.len() + 20) as u64 + ELEMENT_OVERHEAD;
        let result = self.shard(key, now).elements(
            key,
            Kind::Hash,
            true,
            reserve,
            &self.ctx(now),
            |value, ops| {
                let Value::Hash(hash) = value else {
                    return Err(StoreError::WrongType);
                };
                let current = match hash.get(field) {
                    None => 0,
                    Some(v) => parse_i64(v).ok_or(StoreError::NotInteger)?,
                };
                let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
                let (field, val) = (
                    Bytes::copy_from_slice(field),
                    Bytes::from(next.to_string().into_bytes()),
                );
                Arc::make_mut(hash).insert(field.clone(), val.clone());
                ops.push(Op::HashSet(field, val));
                Ok(next)
            },
        );
        self.count_oom(result)?.unwrap_or(Ok(delta))
    }

    /// Adds members to a set, creating it if missing; returns how many are new.
    pub fn set_add(&self, key: &[u8], members: &[&[u8]], now: u64) -> Result<usize, StoreError> {
        let reserve = members
            .iter()
            .map(|m| m.len() as u64 + ELEMENT_OVERHEAD)
            .sum();
        let result = self.shard(key, now).elements(
            key,
            Kind::Set,
            true,
            reserve,
            &self.ctx(now),
            |value, ops| {
                let Value::Set(set) = value else { return 0 };
                if members.iter().all(|m| set.contains(m)) {
                    return 0;
                }
                let set = Arc::make_mut(set);
                let mut added = 0;
                for member in members {
                    let member = Bytes::copy_from_slice(member);
                    if set.insert(member.clone()) {
                        added += 1;
                        ops.push(Op::SetAdd(member));
                    }
                }
                added
            },
        );
        self.count_oom(result).map(|n| n.unwrap_or(0))
    }

    /// Removes members from a set; returns how many existed.
    pub fn set_remove(&self, key: &[u8], members: &[&[u8]], now: u64) -> Result<usize, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::Set,
            false,
            0,
            &self.ctx(now),
            |value, ops| {
                let Value::Set(set) = value else { return 0 };
                if !members.iter().any(|m| set.contains(m)) {
                    return 0;
                }
                let set = Arc::make_mut(set);
                let mut removed = 0;
                for member in members {
                    if let Some(member) = set.remove(member) {
                        removed += 1;
                        ops.push(Op::SetRemove(member));
                    }
                }
                removed
            },
        );
        result.map(|n| n.unwrap_or(0))
    }

    /// Adds or updates sorted-set members as `flags` allow (scores must not be NaN),
    /// creating the set if missing; returns how many were added (or changed, with `ch`).
    pub fn zset_add(
        &self,
        key: &[u8],
        members: &[(f64, &[u8])],
        flags: ZAddFlags,
        now: u64,
    ) -> Result<usize, StoreError> {
        let reserve = members
            .iter()
            .map(|(_, m)| 2 * (m.len() as u64 + ELEMENT_OVERHEAD))
            .sum();
        let result = self.shard(key, now).elements(
            key,
            Kind::ZSet,
            !flags.xx,
            reserve,
            &self.ctx(now),
            |value, ops| {
                let Value::ZSet(zset) = value else { return 0 };
                let mut counted = 0;
                for &(score, member) in members {
                    let update = match zset.score(member) {
                        None => !flags.xx,
                        Some(old) => {
                            let refused = flags.nx
                                || old == score
                                || (flags.gt && score <= old)
                                || (flags.lt && score >= old);
                            !refused
                        }
                    };
                    if !update {
                        continue;
                    }
                    let member = Bytes::copy_from_slice(member);
                    let added = Arc::make_mut(zset).insert(member.clone(), score);
                    counted += usize::from(added || flags.ch);
                    ops.push(Op::ZSetAdd(member, score));
                }
                counted
            },
        );
        self.count_oom(result).map(|n| n.unwrap_or(0))
    }

    /// Removes sorted-set members; returns how many existed.
    pub fn zset_remove(
        &self,
        key: &[u8],
        members: &[&[u8]],
        now: u64,
    ) -> Result<usize, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::ZSet,
            false,
            0,
            &self.ctx(now),
            |value, ops| {
                let Value::ZSet(zset) = value else { return 0 };
                if !members.iter().any(|m| zset.score(m).is_some()) {
                    return 0;
                }
                let zset = Arc::make_mut(zset);
                let mut removed = 0;
                for member in members {
                    if let Some(member) = zset.remove(member) {
                        removed += 1;
                        ops.push(Op::ZSetRemove(member));
                    }
                }
                removed
            },
        );
        result.map(|n| n.unwrap_or(0))
    }

    /// Moves the item under `src` to `dst` (replacing what `dst` holds, unless `nx`), with
    /// its value, flags and deadline. Atomic: both shards are locked, in index order so that
    /// two renames in opposite directions cannot deadlock, and the observer hears of the new
    /// key before the removal of the old one (a journal torn between the two keeps both
    /// rather than neither).
    pub fn rename(&self, src: &[u8], dst: &[u8], nx: bool, now: u64) -> RenameOutcome {
        self.apply_pending_flush(now);
        let ctx = self.ctx(now);
        let (a, b) = (self.shard_index(src), self.shard_index(dst));
        if src == dst {
            let present = self.lock(a).contains(src, &ctx);
            return match (present, nx) {
                (false, _) => RenameOutcome::NoSuchKey,
                (true, true) => RenameOutcome::TargetExists,
                (true, false) => RenameOutcome::Renamed,
            };
        }
        let mut first = self.lock(a.min(b));
        let mut second = (a != b).then(|| self.lock(a.max(b)));
        let (src_shard, dst_shard): (&mut Shard, &mut Shard) = match &mut second {
            None => {
                // One shard: move within it.
                let shard = &mut *first;
                if !shard.contains(src, &ctx) {
                    return RenameOutcome::NoSuchKey;
                }
                if nx && shard.contains(dst, &ctx) {
                    return RenameOutcome::TargetExists;
                }
                if let Some(moved) = shard.take_for_move(src, &ctx) {
                    shard.land(dst, moved, &ctx);
                    ctx.applied_remove(src);
                }
                return RenameOutcome::Renamed;
            }
            Some(second) if a < b => (&mut *first, &mut **second),
            Some(second) => (&mut **second, &mut *first),
        };
        if !src_shard.contains(src, &ctx) {
            return RenameOutcome::NoSuchKey;
        }
        if nx && dst_shard.contains(dst, &ctx) {
            return RenameOutcome::TargetExists;
        }
        if let Some(moved) = src_shard.take_for_move(src, &ctx) {
            dst_shard.land(dst, moved, &ctx);
            ctx.applied_remove(src);
        }
        RenameOutcome::Renamed
    }

    /// One `SCAN` step from `cursor` (0 starts), visiting about `count` keys; returns the
    /// next cursor (0 when done) and the visited keys that `keep` accepts.
    ///
    /// The cursor is the shard index (top 6 bits) and a position within the shard: the key's
    /// hash without the 6 bits that chose the shard. Positions do not move when a shard's
    /// table grows, so a key present for the whole scan is returned at least once, as Redis
    /// promises; a step holds one shard lock at a time and keeps at most `count` keys (plus
    /// hash ties) in hand. Positions come from this process's hasher: a cursor does not
    /// survive a restart.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now: u64,
        keep: &mut dyn FnMut(&[u8], &Value) -> bool,
    ) -> (u64, Vec<Bytes>) {
        const POS_BITS: u32 = 64 - SHARDS.trailing_zeros();
        self.apply_pending_flush(now);
        let count = count.max(1);
        let pos = |key: &[u8]| self.hasher.hash_one(key) >> SHARDS.trailing_zeros();
        let mut shard = (cursor >> POS_BITS) as usize;
        let mut from = cursor & ((1 << POS_BITS) - 1);
        let mut out = Vec::new();
        let mut visited = 0;
        while shard < SHARDS && visited < count {
            let budget = count - visited;
            let mut taken = 0;
            let mut counted = |key: &[u8], value: &Value| {
                taken += 1;
                keep(key, value)
            };
            let last = self
                .lock(shard)
                .scan(now, from, budget, &pos, &mut counted, &mut out);
            visited += taken;
            match last {
                Some(last) if last + 1 < (1 << POS_BITS) && visited >= count => {
                    return (((shard as u64) << POS_BITS) | (last + 1), out);
                }
                _ => {
                    shard += 1;
                    from = 0;
                }
            }
        }
        if shard >= SHARDS {
            (0, out)
        } else {
            ((shard as u64) << POS_BITS, out)
        }
    }

    /// Every live key that `keep` accepts (`KEYS`). One shard lock at a time.
    pub fn keys(&self, now: u64, keep: &mut dyn FnMut(&[u8], &Value) -> bool) -> Vec<Bytes> {
        self.apply_pending_flush(now);
        let mut out = Vec::new();
        for index in 0..SHARDS {
            self.lock(index).keys(now, keep, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
