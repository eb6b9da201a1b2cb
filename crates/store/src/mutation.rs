//! The store's contract with its journal: every change it applies, as an [`Observer`] hears
//! of it. A [`Mutation`] is absolute and idempotent, so a log of them replays to the same
//! state even where it overlaps a snapshot; the journal crate encodes these types on disk,
//! which is why they change only together with its format.

use crate::{End, Kind};

/// One element change to an existing collection. Absolute (a score or field value is the
/// new one, never a delta) and idempotent, so replaying it again is harmless. A list change
/// is positional instead, and made idempotent by its `version`: the list's version once the
/// change is applied, which replay requires to be one more than the list's (see
/// [`List`](crate::List)).
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
    /// An element was added at one end of a list.
    ListPush {
        /// The end.
        end: End,
        /// The element.
        item: &'a [u8],
        /// The list's version after the change.
        version: u64,
    },
    /// Up to `count` elements were removed from one end of a list.
    ListPop {
        /// The end.
        end: End,
        /// How many (fewer if the list was shorter).
        count: u64,
        /// The list's version after the change.
        version: u64,
    },
    /// The list element at `index` was replaced.
    ListSet {
        /// Its index from the head.
        index: u64,
        /// The new element.
        item: &'a [u8],
        /// The list's version after the change.
        version: u64,
    },
    /// An element was inserted so that it is now at `index`.
    ListInsert {
        /// Its index from the head.
        index: u64,
        /// The element.
        item: &'a [u8],
        /// The list's version after the change.
        version: u64,
    },
    /// Elements equal to `item` were removed as `LREM` does: the first `count` from the
    /// head when positive, the last `-count` when negative, all when 0. (Deterministic given
    /// the list, which the version pins, so one record covers any number of removals.)
    ListRem {
        /// How many, and from which end.
        count: i64,
        /// The element removed.
        item: &'a [u8],
        /// The list's version after the change.
        version: u64,
    },
    /// Only the list elements from `start` to `end` (exclusive) were kept.
    ListTrim {
        /// The first kept index.
        start: u64,
        /// One past the last kept index.
        end: u64,
        /// The list's version after the change.
        version: u64,
    },
    /// A stream changed by one [`StreamOp`](crate::StreamOp), carried in its encoding
    /// ([`StreamOp::encode`](crate::StreamOp::encode)); positional like a list change, and
    /// idempotent by the same rule: `version` is the stream's version after it.
    Stream {
        /// The encoded op.
        op: &'a [u8],
        /// The stream's version after the change.
        version: u64,
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
        /// The elements, as [`Value::encode_members`](crate::Value::encode_members) writes them.
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
    /// The key's item (which existed) was revoked: removed, and every write that would
    /// create the key again is refused with [`StoreError::Revoked`](crate::StoreError::Revoked)
    /// until `until` (Unix ms), so that a request still in flight when an administrator
    /// logged a session out cannot bring it back.
    Revoke {
        /// The key.
        key: &'a [u8],
        /// When writes to the key are allowed again (the revoked item's own deadline).
        until: u64,
    },
    /// The string under the key now has this CAS and these memcached meta marks: an
    /// invalidation (`md … I`), a stale write (`ms … I` with an older CAS) or a recache right
    /// handed out (`mg` answered `W`). Replay applies it only to a string that exists;
    /// otherwise a later record supersedes it. The fetched mark and last-access time are
    /// not recorded: no client's acknowledged command set them.
    Marks {
        /// The key.
        key: &'a [u8],
        /// The item's CAS unique after the change.
        cas: u64,
        /// Served as stale (`X`) until rewritten.
        stale: bool,
        /// A client has been told it won the recache right (`W`); others see `Z`.
        recache_taken: bool,
    },
    /// Every item was removed (`flush_all`), and every revocation forgotten.
    Clear,
}

/// Receives every change a store applies, while the store still holds the lock of the
/// changed key's shard: for any one key, calls arrive in the order the changes were applied.
/// The server's observer journals the change and keeps what is derived from the keyspace
/// (the session index, pub/sub). It must be quick and must not call back into the store.
/// `now` is the time the operation was given.
pub trait Observer: Send + Sync {
    /// Called after `mutation` was applied in memory.
    fn applied(&self, mutation: &Mutation<'_>, now: u64);

    /// Called when an item is removed because its deadline passed: found so by a read, or
    /// reclaimed by [`Store::expire_due`](crate::Store::expire_due). Not a mutation to
    /// journal (the deadline is recorded already); it exists so the server can publish the
    /// expiry and forget what it derived from the item.
    fn expired(&self, key: &[u8], now: u64) {
        let _ = (key, now);
    }

    /// Called when a read or touch finds `key` live (`get`, `gets`, `gat`, `GET`,
    /// `HGETALL`, …): the session index's "last seen". Reads change nothing, so nothing is
    /// journaled.
    fn read(&self, key: &[u8], now: u64) {
        let _ = (key, now);
    }
}
