//! What a key holds: a string, or one of the collections (hash, set, sorted set, list,
//! stream).
//!
//! Collections live behind an [`Arc`], so a read hands out a pointer copy taken under the
//! shard lock and looks inside after releasing it, and a snapshot costs no copying. A write
//! changes the collection in place (`Arc::make_mut`), which copies only while a reader or a
//! snapshot still holds the old version.
//!
//! Every collection keeps a running byte count of its elements, so charging the memory
//! budget for a change is O(1); the charge per element is its bytes plus a fixed overhead
//! ([`ELEMENT_OVERHEAD`]), an estimate in the same spirit as [`crate::ITEM_OVERHEAD`].
//!
//! The whole-collection encoding ([`Value::encode_members`], [`Value::decode`]) is what the
//! journal stores for a collection written as a whole (created, renamed, snapshotted); it is
//! documented with the record format in `sessiond-journal`.
//!
//! A list also carries a *version*, counted up by every change to it, which its journal
//! records name (see [`List`]): a list change is positional (push, pop, trim), not an
//! absolute element value, so replay applies it only to the very version it was made to.

use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};

use crate::stream::Stream;

/// Bytes charged per collection element on top of its own bytes: the table slot, the
/// reference-counted buffer header and, for sorted sets, the second index.
pub const ELEMENT_OVERHEAD: u64 = 64;

/// The type of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A byte string: everything memcached stores, and Redis strings.
    Str,
    /// Field → value.
    Hash,
    /// Unordered unique members.
    Set,
    /// Members ordered by a score.
    ZSet,
    /// An ordered sequence of byte strings (Redis lists).
    List,
    /// Entries by ID with consumer groups (Redis streams).
    Stream,
}

impl Kind {
    /// The one-byte tag the journal uses.
    pub fn tag(self) -> u8 {
        match self {
            Kind::Str => 0,
            Kind::Hash => 1,
            Kind::Set => 2,
            Kind::ZSet => 3,
            Kind::List => 4,
            Kind::Stream => 5,
        }
    }

    /// The kind a journal tag names.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Some(match tag {
            0 => Kind::Str,
            1 => Kind::Hash,
            2 => Kind::Set,
            3 => Kind::ZSet,
            4 => Kind::List,
            5 => Kind::Stream,
            _ => return None,
        })
    }
}

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A byte string.
    Str(Bytes),
    /// A hash.
    Hash(Arc<Hash>),
    /// A set.
    Set(Arc<Set>),
    /// A sorted set.
    ZSet(Arc<ZSet>),
    /// A list.
    List(Arc<List>),
    /// A stream.
    Stream(Arc<Stream>),
}

impl Value {
    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::Str,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
            Value::List(_) => Kind::List,
            Value::Stream(_) => Kind::Stream,
        }
    }

    /// An empty collection of `kind` (an empty string for [`Kind::Str`]).
    pub fn empty(kind: Kind) -> Value {
        match kind {
            Kind::Str => Value::Str(Bytes::new()),
            Kind::Hash => Value::Hash(Arc::default()),
            Kind::Set => Value::Set(Arc::default()),
            Kind::ZSet => Value::ZSet(Arc::default()),
            Kind::List => Value::List(Arc::default()),
            Kind::Stream => Value::Stream(Arc::default()),
        }
    }

    /// Bytes charged for the value (the key and the per-item overhead not included).
    pub fn cost(&self) -> u64 {
        match self {
            Value::Str(s) => s.len() as u64,
            Value::Hash(h) => h.bytes,
            Value::Set(s) => s.bytes,
            Value::ZSet(z) => z.bytes,
            Value::List(l) => l.bytes,
            Value::Stream(s) => s.bytes(),
        }
    }

    /// Whether this is a collection with no element. Redis never keeps one: removing the
    /// last element removes the key, and the store treats an empty collection as absent.
    /// A stream is the exception (Redis keeps an empty stream, its groups and last ID), so
    /// it is never an empty collection here.
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(h) => h.map.is_empty(),
            Value::Set(s) => s.members.is_empty(),
            Value::ZSet(z) => z.scores.is_empty(),
            Value::List(l) => l.items.is_empty(),
            Value::Stream(_) => false,
        }
    }

    /// How many bytes [`Value::encode_members`] appends, counted without encoding (so a
    /// caller can refuse an oversized encoding before building it).
    pub fn encoded_members_len(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Hash(h) => h.map.iter().map(|(f, v)| 8 + f.len() + v.len()).sum(),
            Value::Set(s) => s.members.iter().map(|m| 4 + m.len()).sum(),
            Value::ZSet(z) => z.order.iter().map(|(_, m)| 12 + m.len()).sum(),
            Value::List(l) => 12 + l.items.iter().map(|i| 4 + i.len()).sum::<usize>(),
            Value::Stream(s) => s.encoded_len(),
        }
    }

    /// Appends the elements of a collection in the journal's whole-collection encoding
    /// (`u32 LE` lengths before every byte string; a sorted-set element is `f64 LE` bits,
    /// then the member; a list is its version as an 8-byte string, `u64 LE`, then its
    /// elements in order; a stream is [`Stream::encode`]'s sequence of length-prefixed
    /// elements). A string appends its bytes.
    pub fn encode_members(&self, out: &mut Vec<u8>) {
        fn put(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        match self {
            Value::Str(s) => out.extend_from_slice(s),
            Value::Hash(h) => {
                for (field, value) in &h.map {
                    put(out, field);
                    put(out, value);
                }
            }
            Value::Set(s) => {
                for member in &s.members {
                    put(out, member);
                }
            }
            Value::ZSet(z) => {
                for (score, member) in &z.order {
                    out.extend_from_slice(&score.0.to_bits().to_le_bytes());
                    put(out, member);
                }
            }
            Value::List(l) => {
                put(out, &l.version.to_le_bytes());
                for item in &l.items {
                    put(out, item);
                }
            }
            Value::Stream(s) => s.encode(out),
        }
    }

    /// The value of `field` in a hash's [`Value::encode_members`] encoding, found without
    /// building the hash (the session layer reads one field of a session stored as a hash).
    pub fn hash_field_in<'m>(mut members: &'m [u8], field: &[u8]) -> Option<&'m [u8]> {
        while !members.is_empty() {
            let name = length_prefixed(&mut members)?;
            let value = length_prefixed(&mut members)?;
            if name == field {
                return Some(value);
            }
        }
        None
    }

    /// Reads back what [`Value::encode_members`] wrote; `None` if the bytes do not add up.
    pub fn decode(kind: Kind, mut bytes: &[u8]) -> Option<Value> {
        fn string(bytes: &mut &[u8]) -> Option<Bytes> {
            length_prefixed(bytes).map(Bytes::copy_from_slice)
        }
        let mut value = Value::empty(kind);
        match &mut value {
            Value::Str(s) => *s = Bytes::copy_from_slice(bytes),
            Value::Hash(h) => {
                let h = Arc::make_mut(h);
                while !bytes.is_empty() {
                    let field = string(&mut bytes)?;
                    h.insert(field, string(&mut bytes)?);
                }
            }
            Value::Set(s) => {
                let s = Arc::make_mut(s);
                while !bytes.is_empty() {
                    s.insert(string(&mut bytes)?);
                }
            }
            Value::ZSet(z) => {
                let z = Arc::make_mut(z);
                while !bytes.is_empty() {
                    let bits = u64::from_le_bytes(take(&mut bytes, 8)?.try_into().ok()?);
                    let score = f64::from_bits(bits);
                    if score.is_nan() {
                        return None;
                    }
                    z.insert(string(&mut bytes)?, score);
                }
            }
            Value::List(l) => {
                let l = Arc::make_mut(l);
                if !bytes.is_empty() {
                    let version = length_prefixed(&mut bytes)?;
                    l.version = u64::from_le_bytes(version.try_into().ok()?);
                }
                while !bytes.is_empty() {
                    let item = string(&mut bytes)?;
                    l.bytes += element_cost(item.len());
                    l.items.push_back(item);
                }
            }
            Value::Stream(s) => *s = Arc::new(Stream::decode(bytes)?),
        }
        Some(value)
    }
}

/// The next `n` bytes of `bytes`, consumed.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

/// The next `u32 LE`-length-prefixed byte string of `bytes`, consumed.
fn length_prefixed<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?) as usize;
    take(bytes, len)
}

fn element_cost(bytes: usize) -> u64 {
    bytes as u64 + ELEMENT_OVERHEAD
}

/// A hash: field → value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hash {
    map: HashMap<Bytes, Bytes>,
    bytes: u64,
}

impl Hash {
    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.map.get(field)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the hash has no field.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every field and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.map.iter()
    }

    /// Sets `field`; returns whether it is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        let added = element_cost(field.len() + value.len());
        match self.map.insert(field.clone(), value) {
            Some(old) => {
                self.bytes = self.bytes + added - element_cost(field.len() + old.len());
                false
            }
            None => {
                self.bytes += added;
                true
            }
        }
    }

    /// Removes `field`; returns the removed field if it was there.
    pub(crate) fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        let (field, value) = self.map.remove_entry(field)?;
        self.bytes -= element_cost(field.len() + value.len());
        Some(field)
    }
}

/// A set of members.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Set {
    members: HashSet<Bytes>,
    bytes: u64,
}

impl Set {
    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.members.iter()
    }

    /// Adds `member`; returns whether it is new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        let cost = element_cost(member.len());
        let added = self.members.insert(member);
        if added {
            self.bytes += cost;
        }
        added
    }

    /// Removes `member`; returns it if it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<Bytes> {
        let member = self.members.take(member)?;
        self.bytes -= element_cost(member.len());
        Some(member)
    }
}

/// A score with a total order, so it can key an ordered index. NaN never gets in (callers
/// reject it, as Redis does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: members ordered by (score, member), as Redis orders them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet {
    scores: HashMap<Bytes, f64>,
    order: BTreeSet<(Score, Bytes)>,
    bytes: u64,
}

impl ZSet {
    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether the sorted set has no member.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Every (score, member) in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (f64, &Bytes)> {
        self.order.iter().map(|(s, m)| (s.0, m))
    }

    /// Members whose score lies between `min` and `max` (each inclusive unless its flag
    /// says exclusive), ascending; reverse the iterator for descending order. Lazy, so a
    /// `LIMIT` costs only what it returns (plus the skipped offset).
    pub fn range_by_score(
        &self,
        min: (f64, bool),
        max: (f64, bool),
    ) -> impl DoubleEndedIterator<Item = (f64, &Bytes)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        // Within one score, members sort after the empty member, so `(s, "")` is the first
        // possible element with score `s`.
        let first = |s: f64| (Score(s), Bytes::new());
        let lower = match min {
            (s, false) => Included(first(s)),
            (s, true) if s == f64::INFINITY => Excluded(first(f64::INFINITY)),
            (s, true) => Included(first(s.next_up())),
        };
        let upper = match max {
            (s, false) if s == f64::INFINITY => Unbounded,
            (s, false) => Excluded(first(s.next_up())),
            (s, true) => Excluded(first(s)),
        };
        let empty = match (&lower, &upper) {
            (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a >= b,
            _ => false,
        } || min.0 == f64::INFINITY && min.1;
        let range = if empty {
            None
        } else {
            Some(self.order.range((lower, upper)))
        };
        range.into_iter().flatten().map(|(s, m)| (s.0, m))
    }

    /// Sets `member`'s score; returns whether it is new.
    pub fn insert(&mut self, member: Bytes, score: f64) -> bool {
        match self.scores.insert(member.clone(), score) {
            Some(old) => {
                self.order.remove(&(Score(old), member.clone()));
                self.order.insert((Score(score), member));
                false
            }
            None => {
                self.bytes += 2 * element_cost(member.len());
                self.order.insert((Score(score), member));
                true
            }
        }
    }

    /// Removes `member`; returns it if it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<Bytes> {
        let (member, score) = self.scores.remove_entry(member)?;
        self.order.remove(&(Score(score), member.clone()));
        self.bytes -= 2 * element_cost(member.len());
        Some(member)
    }
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head (index 0): `LPUSH`, `LPOP`.
    Left,
    /// The tail: `RPUSH`, `RPOP`.
    Right,
}

/// A list: byte strings in order, in a ring buffer (O(1) at both ends, O(1) by index).
///
/// `version` counts every change the list has undergone since it was created (a list
/// created whole, by a snapshot or a rename, keeps the version it had). Each journal record
/// of a list change carries the version the change produced, and replay applies it only to
/// a list at the version before: a record that a fuzzy snapshot already reflects is skipped,
/// instead of pushing the same element twice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    items: VecDeque<Bytes>,
    bytes: u64,
    version: u64,
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list has no element.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.items.get(index)
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.items.iter()
    }

    /// The elements from `start` to `end` (exclusive), head first.
    pub fn range(
        &self,
        start: usize,
        end: usize,
    ) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.items.range(start..end)
    }

    /// The number of changes the list has undergone; see the type's docs.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Starts the count of changes over, for a list that comes from outside (`RESTORE`'s
    /// payload): the version is the journal's, never a client's.
    pub fn reset_version(&mut self) {
        self.version = 0;
    }

    /// Counts one change; returns the new version. Wraps at `u64::MAX`, as replay expects
    /// (`shard::apply_list`), so neither can panic nor disagree.
    fn bump(&mut self) -> u64 {
        self.version = self.version.wrapping_add(1);
        self.version
    }

    /// Adds `item` at `end`; returns the new version.
    pub(crate) fn push(&mut self, end: End, item: Bytes) -> u64 {
        self.bytes += element_cost(item.len());
        match end {
            End::Left => self.items.push_front(item),
            End::Right => self.items.push_back(item),
        }
        self.bump()
    }

    /// Removes up to `count` elements from `end`, in the order they come off; the new
    /// version is [`List::version`].
    pub(crate) fn pop(&mut self, end: End, count: usize) -> Vec<Bytes> {
        let n = count.min(self.items.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let item = match end {
                End::Left => self.items.pop_front(),
                End::Right => self.items.pop_back(),
            };
            if let Some(item) = item {
                self.bytes -= element_cost(item.len());
                out.push(item);
            }
        }
        self.bump();
        out
    }

    /// Replaces the element at `index` (which must exist); returns the new version.
    pub(crate) fn set(&mut self, index: usize, item: Bytes) -> u64 {
        if let Some(slot) = self.items.get_mut(index) {
            self.bytes = self.bytes + element_cost(item.len()) - element_cost(slot.len());
            *slot = item;
        }
        self.bump()
    }

    /// Inserts `item` so that it is at `index` (at most the length); returns the new
    /// version.
    pub(crate) fn insert(&mut self, index: usize, item: Bytes) -> u64 {
        if index <= self.items.len() {
            self.bytes += element_cost(item.len());
            self.items.insert(index, item);
        }
        self.bump()
    }

    /// Removes elements equal to `item`: the first `count` from the head when positive,
    /// the last `-count` when negative, every one when 0 (`LREM`); returns how many. One
    /// pass whatever the number removed.
    pub(crate) fn remove_matching(&mut self, count: i64, item: &[u8]) -> usize {
        let matches = self.items.iter().filter(|e| e[..] == *item).count();
        let wanted = match count {
            0 => matches,
            n => matches.min(usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX)),
        };
        // Matches to keep before removing: from the tail, the first ones stay.
        let mut skip = if count < 0 { matches - wanted } else { 0 };
        let mut left = wanted;
        let mut freed = 0;
        self.items.retain(|e| {
            if left == 0 || e[..] != *item {
                return true;
            }
            if skip > 0 {
                skip -= 1;
                return true;
            }
            left -= 1;
            freed += element_cost(e.len());
            false
        });
        self.bytes -= freed;
        self.bump();
        wanted
    }

    /// Keeps only the elements from `start` to `end` (exclusive; an empty range empties the
    /// list); returns the new version.
    pub(crate) fn trim(&mut self, start: usize, end: usize) -> u64 {
        let end = end.min(self.items.len());
        let start = start.min(end);
        for item in self.items.drain(end..) {
            self.bytes -= element_cost(item.len());
        }
        for item in self.items.drain(..start) {
            self.bytes -= element_cost(item.len());
        }
        self.bump()
    }
}
