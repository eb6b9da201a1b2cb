//! What a key holds: a string, or one of the small collections sessions use (hash, set,
//! sorted set).
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

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};

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
}

impl Kind {
    /// The one-byte tag the journal uses.
    pub fn tag(self) -> u8 {
        match self {
            Kind::Str => 0,
            Kind::Hash => 1,
            Kind::Set => 2,
            Kind::ZSet => 3,
        }
    }

    /// The kind a journal tag names.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Some(match tag {
            0 => Kind::Str,
            1 => Kind::Hash,
            2 => Kind::Set,
            3 => Kind::ZSet,
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
}

impl Value {
    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::Str,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    /// An empty collection of `kind` (an empty string for [`Kind::Str`]).
    pub fn empty(kind: Kind) -> Value {
        match kind {
            Kind::Str => Value::Str(Bytes::new()),
            Kind::Hash => Value::Hash(Arc::default()),
            Kind::Set => Value::Set(Arc::default()),
            Kind::ZSet => Value::ZSet(Arc::default()),
        }
    }

    /// Bytes charged for the value (the key and the per-item overhead not included).
    pub fn cost(&self) -> u64 {
        match self {
            Value::Str(s) => s.len() as u64,
            Value::Hash(h) => h.bytes,
            Value::Set(s) => s.bytes,
            Value::ZSet(z) => z.bytes,
        }
    }

    /// Whether this is a collection with no element. Redis never keeps one: removing the
    /// last element removes the key, and the store treats an empty collection as absent.
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(h) => h.map.is_empty(),
            Value::Set(s) => s.members.is_empty(),
            Value::ZSet(z) => z.scores.is_empty(),
        }
    }

    /// Appends the elements of a collection in the journal's whole-collection encoding
    /// (`u32 LE` lengths before every byte string; a sorted-set element is `f64 LE` bits,
    /// then the member). A string appends its bytes.
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
