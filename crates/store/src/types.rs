//! The vocabulary of the store's operations: what a read returns ([`Entry`]), what a write
//! requires ([`Condition`], [`Write`]) and what each operation answers (the outcomes and
//! [`StoreError`]). Where memcached and Redis mean different things by the same act, the
//! difference is a variant here, named for what it does, not for the protocol that asks.

use bytes::Bytes;

use crate::Value;

/// A copy of an item, returned by reads. Cheap: a string is a shared buffer and a
/// collection a shared pointer. `Entry<Bytes>` is what the string-only reads return
/// (memcached's view); `Entry` (of a [`Value`]) what the reads of any type return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<V = Value> {
    /// The value.
    pub value: V,
    /// The client flags (0 for anything RESP wrote).
    pub flags: u32,
    /// The CAS unique.
    pub cas: u64,
    /// The deadline in Unix ms, if the item expires.
    pub deadline: Option<u64>,
}

/// What the key must hold for [`Store::write`](crate::Store::write) to go ahead.
///
/// memcached knows only strings, so for its conditions a key holding another type counts
/// as empty (and is overwritten by `add`); Redis's conditions count any type. Both sets are
/// here, each variant saying which it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always write (memcached `set`, Redis `SET`).
    Always,
    /// Only if the key holds nothing of any type (Redis `NX`).
    IfAbsent,
    /// Only if the key holds something of any type (Redis `XX`).
    IfPresent,
    /// Only if the key holds no string; another type is overwritten (memcached `add`).
    IfNoString,
    /// Only if the key holds a string (memcached `replace`).
    IfString,
    /// Only if the key holds a string with this CAS unique (memcached `cas`).
    IfCas(u64),
}

impl Condition {
    /// The answer that refuses the write, given what the key holds (whether it is a string,
    /// and its CAS), or `None` if the write goes ahead.
    pub(crate) fn refuses(self, current: Option<(bool, u64)>) -> Option<WriteOutcome> {
        let string_cas = current.and_then(|(is_str, cas)| is_str.then_some(cas));
        match self {
            Condition::Always => None,
            Condition::IfAbsent => current.map(|_| WriteOutcome::NotStored),
            Condition::IfPresent => current.is_none().then_some(WriteOutcome::NotStored),
            Condition::IfNoString => string_cas.map(|_| WriteOutcome::NotStored),
            Condition::IfString => string_cas.is_none().then_some(WriteOutcome::NotStored),
            Condition::IfCas(want) => match string_cas {
                None => Some(WriteOutcome::NotFound),
                Some(cas) if cas != want => Some(WriteOutcome::Exists),
                Some(_) => None,
            },
        }
    }
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineChange {
    /// Keep the current one (`KEEPTTL`).
    Keep,
    /// Set this one (`None`: never expires).
    Set(Option<u64>),
}

/// Whether [`Store::write`](crate::Store::write) returns the value it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// No (every write but one).
    Ignore,
    /// Yes (Redis `SET … GET`); a previous value that is not a string then refuses the
    /// write with [`StoreError::WrongType`].
    Return,
}

/// How [`Store::write`](crate::Store::write) writes: the options of memcached's storage
/// commands and Redis's `SET` family in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    /// What the key must hold.
    pub condition: Condition,
    /// The client flags (memcached's; Redis writes 0).
    pub flags: u32,
    /// The new deadline, or keep the current one.
    pub deadline: DeadlineChange,
    /// Whether to return the value replaced.
    pub previous: Previous,
}

/// The answer of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; carries the item's new CAS unique.
    Stored(u64),
    /// The condition on the key's presence failed.
    NotStored,
    /// The key holds a string whose CAS differs from the one required.
    Exists,
    /// A CAS-conditioned write found no string.
    NotFound,
}

/// The result of [`Store::write`](crate::Store::write).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Whether the condition held and the value was written.
    pub outcome: WriteOutcome,
    /// The value replaced (or left in place by a refused write), with
    /// [`Previous::Return`].
    pub previous: Option<Value>,
}

impl Written {
    /// Whether the value was written.
    pub fn is_stored(&self) -> bool {
        matches!(self.outcome, WriteOutcome::Stored(_))
    }
}

/// Which end of a string [`Store::extend_if_string`](crate::Store::extend_if_string) adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// After the existing value.
    Append,
    /// Before the existing value.
    Prepend,
}

/// Which way [`Store::add_u64`](crate::Store::add_u64) moves a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Adds, wrapping at 2^64 (memcached `incr`).
    Up,
    /// Subtracts, stopping at 0 (memcached `decr`).
    Down,
}

/// The result of [`Store::remove_if_string`](crate::Store::remove_if_string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The item was removed.
    Removed,
    /// No live string.
    NotFound,
    /// The string's CAS differs from the one required.
    Exists,
}

/// The result of [`Store::add_u64`](crate::Store::add_u64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOutcome {
    /// The counter's new value and the item's new CAS.
    Value(u64, u64),
    /// No live string, and no initial value was given.
    NotFound,
    /// The value is not a decimal number of at most 20 digits.
    NonNumeric,
}

/// What [`Store::rename`](crate::Store::rename) does when the destination holds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfTargetExists {
    /// Replace it (`RENAME`).
    Replace,
    /// Leave both keys alone (`RENAMENX`).
    Keep,
}

/// The result of [`Store::rename`](crate::Store::rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameOutcome {
    /// Moved.
    Renamed,
    /// The destination holds something and [`IfTargetExists::Keep`] was asked; nothing
    /// changed.
    TargetExists,
    /// The source holds nothing.
    NoSuchKey,
    /// The destination is revoked ([`StoreError::Revoked`]); nothing changed.
    TargetRevoked,
}

/// Which members [`Store::zset_add`](crate::Store::zset_add) may add or update (Redis's
/// `ZADD` flags, checked for conflicts by the caller).
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

/// What [`Store::zset_incr`](crate::Store::zset_incr) did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZIncr {
    /// The member's score is now this.
    Score(f64),
    /// The sum would be NaN (`inf` plus `-inf`); nothing changed.
    NotANumber,
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
    /// The key was revoked ([`Store::revoke`](crate::Store::revoke)) and may not be
    /// created again before the revoked item's deadline.
    Revoked,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreError::OutOfMemory => "out of memory storing object",
            StoreError::WrongType => "the key holds a value of another type",
            StoreError::NotInteger => "value is not an integer",
            StoreError::Overflow => "increment or decrement would overflow",
            StoreError::TooLarge => "string exceeds maximum allowed size",
            StoreError::Revoked => {
                "this session was revoked and stays revoked until it would have expired"
            }
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
    /// Stream changes that first copied the whole stream because a reader still held it
    /// (copy-on-write). Readers hold a stream only while they build a reply, so this
    /// stays near zero; a steady rise means a command keeps the stream across its change.
    pub stream_copies: u64,
}

/// What a memcached meta get (`mg`) may do besides reading, all under the key's lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaRead {
    /// `T`: move the deadline (`Some(None)`: never expires).
    pub touch: Option<Option<u64>>,
    /// `N`: on a miss, create an empty string with this deadline and hand this client the
    /// recache right.
    pub vivify: Option<Option<u64>>,
    /// `R`: hand out the recache right if the item expires before this (Unix ms).
    pub recache_before: Option<u64>,
    /// Count the read as an access (not `u`).
    pub bump: bool,
    /// `E`: the CAS a vivified item gets instead of the counter's next.
    pub new_cas: Option<u64>,
    /// `me`: only report; never hand out the recache right (which would be journaled and
    /// leave every later `mg` seeing `Z`).
    pub peek: bool,
}

/// A string as a meta command reports it: the entry plus the per-item marks, as they were
/// before the command (memcached reports "hit before" and "last access" that way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    /// The string.
    pub entry: Entry<Bytes>,
    /// When it was last accessed before this command, in Unix seconds.
    pub last_access: u64,
    /// Whether it had been read before.
    pub fetched: bool,
    /// Whether it is stale (invalidated, not yet rewritten).
    pub stale: bool,
    /// Whether another client was already handed the recache right.
    pub token_sent: bool,
    /// Whether this command handed this client the recache right.
    pub won: bool,
}

/// The outcome of a memcached meta arithmetic (`ma`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCounter {
    /// The new value, the item's CAS and deadline.
    Value(u64, u64, Option<u64>),
    /// No string under the key, and no vivify asked for.
    NotFound,
    /// The CAS did not match.
    Exists,
    /// The value is not a decimal counter.
    NonNumeric,
}
