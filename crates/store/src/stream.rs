//! The stream type (Redis streams): entries ordered by ID, each a list of field/value
//! pairs, and consumer groups with their pending-entries lists.
//!
//! Every change to a stream is a [`StreamOp`]: the commands *plan* ops from the current
//! stream and `now` (resolving `*` IDs, choosing what a group delivers, deciding a claim),
//! then the store applies them with [`Stream::apply`], the very function replay uses. So an
//! op holds what was decided (the resulting ID, the delivery time and count), never how,
//! and replay cannot come to another answer. Like a list, a stream carries a *version* that
//! every applied op counts up; the journal record of an op names the version it produced
//! and replay applies it only to the version before (a fuzzy snapshot that already holds
//! the op skips it).
//!
//! Memory: each entry is charged [`ELEMENT_OVERHEAD`] plus 16 bytes of ID plus each field
//! and value with 8 bytes of length; a group and a consumer their name plus the overhead;
//! a pending entry twice the overhead plus two IDs (it is indexed by the group and by its
//! consumer). The running total is `bytes`, so charging a change is O(1), as for the other
//! collections.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;

use crate::ELEMENT_OVERHEAD;

/// A stream entry ID: milliseconds, then a sequence number; ordered as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID (`0-0`).
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// A new ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, `None` after [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => Some(StreamId::new(self.ms.checked_add(1)?, 0)),
        }
    }

    /// The previous ID, `None` before [`StreamId::MIN`].
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => Some(StreamId::new(self.ms.checked_sub(1)?, u64::MAX)),
        }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ms.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
    }

    fn read(c: &mut Reader<'_>) -> Option<StreamId> {
        Some(StreamId::new(c.u64()?, c.u64()?))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Bytes charged for one entry with these fields and values.
pub fn entry_cost(fields: &[Bytes]) -> u64 {
    ELEMENT_OVERHEAD + 16 + fields.iter().map(|f| f.len() as u64 + 8).sum::<u64>()
}

/// Bytes charged for a group or consumer called `name`.
pub fn name_cost(name: &[u8]) -> u64 {
    ELEMENT_OVERHEAD + name.len() as u64
}

/// Bytes charged for one pending entry (indexed by the group and by its consumer).
pub const PENDING_COST: u64 = 2 * ELEMENT_OVERHEAD + 32;

/// One entry of a group's pending-entries list: delivered, not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The consumer it was delivered to.
    pub consumer: Bytes,
    /// When it was last delivered (Unix ms).
    pub delivery_time: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumer {
    /// When it last read or claimed (Unix ms; Redis 7.0's `seen-time`).
    pub seen_time: u64,
    /// When it last got an entry (Unix ms), if ever.
    pub active_time: Option<u64>,
    /// The IDs pending for it, ascending.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// The last entry delivered to the group.
    pub last_delivered: StreamId,
    /// How many entries the group has read, when known (Redis's `entries-read`).
    pub entries_read: Option<u64>,
    /// Every pending entry, by ID.
    pub pending: BTreeMap<StreamId, Pending>,
    /// The consumers, by name.
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// A stream. See the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Each entry with the node it was added to (see [`Stream::node_of`]) and its fields.
    entries: BTreeMap<StreamId, (u64, Vec<Bytes>)>,
    /// The node the newest entries go to, and how many were added to it.
    tail_node: u64,
    tail_fill: u64,
    last_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: BTreeMap<Bytes, Group>,
    bytes: u64,
    version: u64,
}

/// One change to a stream, as decided (see the module docs). Encoded for the journal by
/// [`StreamOp::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOp {
    /// An entry was added with this ID (greater than the last), fields and values
    /// alternating, to node `node`.
    Add {
        /// Its ID.
        id: StreamId,
        /// The node it joins (see [`Stream::node_of`]).
        node: u64,
        /// Field, value, field, value, ….
        fields: Vec<Bytes>,
    },
    /// These entries were deleted (`XDEL`; absent ones are ignored).
    Delete {
        /// Their IDs.
        ids: Vec<StreamId>,
    },
    /// The `count` oldest entries were removed (`XTRIM`, `XADD … MAXLEN`).
    Trim {
        /// How many.
        count: u64,
    },
    /// The stream's last ID and counters were set (`XSETID`).
    SetId {
        /// The new last ID.
        last: StreamId,
        /// The new entries-added counter, if given.
        entries_added: Option<u64>,
        /// The new max-deleted ID, if given.
        max_deleted: Option<StreamId>,
    },
    /// A group was created.
    GroupCreate {
        /// Its name.
        name: Bytes,
        /// Its last-delivered ID.
        last: StreamId,
        /// Its entries-read counter.
        entries_read: Option<u64>,
    },
    /// A group's position was set (`XGROUP SETID`, or a delivery).
    GroupSet {
        /// The group.
        name: Bytes,
        /// Its last-delivered ID.
        last: StreamId,
        /// Its entries-read counter.
        entries_read: Option<u64>,
    },
    /// A group was destroyed.
    GroupDestroy {
        /// Its name.
        name: Bytes,
    },
    /// A consumer was seen (created if missing).
    ConsumerSeen {
        /// The group.
        group: Bytes,
        /// The consumer.
        name: Bytes,
        /// When.
        time: u64,
        /// Whether it got entries (its active time moves too).
        active: bool,
    },
    /// A consumer was deleted with its pending entries.
    ConsumerDelete {
        /// The group.
        group: Bytes,
        /// The consumer.
        name: Bytes,
    },
    /// Pending entries now belong to `consumer` (which exists), delivered at `time`, each
    /// with its delivery count.
    PendingSet {
        /// The group.
        group: Bytes,
        /// The owner.
        consumer: Bytes,
        /// The delivery time.
        time: u64,
        /// Each ID and its delivery count.
        entries: Vec<(StreamId, u64)>,
    },
    /// Pending entries were acknowledged (or dropped because their entry is gone).
    PendingRemove {
        /// The group.
        group: Bytes,
        /// Their IDs.
        ids: Vec<StreamId>,
    },
}

const OP_ADD: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_TRIM: u8 = 3;
const OP_SET_ID: u8 = 4;
const OP_GROUP_CREATE: u8 = 5;
const OP_GROUP_SET: u8 = 6;
const OP_GROUP_DESTROY: u8 = 7;
const OP_CONSUMER_SEEN: u8 = 8;
const OP_CONSUMER_DELETE: u8 = 9;
const OP_PENDING_SET: u8 = 10;
const OP_PENDING_REMOVE: u8 = 11;

/// A reader over an encoding, every read checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.u32()? as usize;
        self.take(len).map(Bytes::copy_from_slice)
    }
    /// A count of items each at least `min` bytes long, refused if the rest cannot hold
    /// them (so a forged count never sizes an allocation).
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min)? <= self.0.len()).then_some(n)
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }
    fn ids(&mut self) -> Option<Vec<StreamId>> {
        let n = self.count(16)?;
        (0..n).map(|_| StreamId::read(self)).collect()
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The length [`put_opt`] writes.
fn opt_len(value: Option<u64>) -> usize {
    if value.is_some() { 9 } else { 1 }
}

fn put_opt(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn put_ids(out: &mut Vec<u8>, ids: &[StreamId]) {
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        id.put(out);
    }
}

impl StreamOp {
    /// The journal's encoding of the op (a tag byte, then its fields, little-endian, byte
    /// strings and lists with `u32` lengths).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            StreamOp::Add { id, node, fields } => {
                out.push(OP_ADD);
                id.put(out);
                out.extend_from_slice(&node.to_le_bytes());
                out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
                for f in fields {
                    put_bytes(out, f);
                }
            }
            StreamOp::Delete { ids } => {
                out.push(OP_DELETE);
                put_ids(out, ids);
            }
            StreamOp::Trim { count } => {
                out.push(OP_TRIM);
                out.extend_from_slice(&count.to_le_bytes());
            }
            StreamOp::SetId {
                last,
                entries_added,
                max_deleted,
            } => {
                out.push(OP_SET_ID);
                last.put(out);
                put_opt(out, *entries_added);
                match max_deleted {
                    None => out.push(0),
                    Some(id) => {
                        out.push(1);
                        id.put(out);
                    }
                }
            }
            StreamOp::GroupCreate {
                name,
                last,
                entries_read,
            }
            | StreamOp::GroupSet {
                name,
                last,
                entries_read,
            } => {
                out.push(if matches!(self, StreamOp::GroupCreate { .. }) {
                    OP_GROUP_CREATE
                } else {
                    OP_GROUP_SET
                });
                put_bytes(out, name);
                last.put(out);
                put_opt(out, *entries_read);
            }
            StreamOp::GroupDestroy { name } => {
                out.push(OP_GROUP_DESTROY);
                put_bytes(out, name);
            }
            StreamOp::ConsumerSeen {
                group,
                name,
                time,
                active,
            } => {
                out.push(OP_CONSUMER_SEEN);
                put_bytes(out, group);
                put_bytes(out, name);
                out.extend_from_slice(&time.to_le_bytes());
                out.push(u8::from(*active));
            }
            StreamOp::ConsumerDelete { group, name } => {
                out.push(OP_CONSUMER_DELETE);
                put_bytes(out, group);
                put_bytes(out, name);
            }
            StreamOp::PendingSet {
                group,
                consumer,
                time,
                entries,
            } => {
                out.push(OP_PENDING_SET);
                put_bytes(out, group);
                put_bytes(out, consumer);
                out.extend_from_slice(&time.to_le_bytes());
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for (id, count) in entries {
                    id.put(out);
                    out.extend_from_slice(&count.to_le_bytes());
                }
            }
            StreamOp::PendingRemove { group, ids } => {
                out.push(OP_PENDING_REMOVE);
                put_bytes(out, group);
                put_ids(out, ids);
            }
        }
    }

    /// Reads back what [`StreamOp::encode`] wrote; `None` if the bytes are not one op.
    pub fn decode(bytes: &[u8]) -> Option<StreamOp> {
        let mut c = Reader(bytes);
        let op = match c.u8()? {
            OP_ADD => {
                let id = StreamId::read(&mut c)?;
                let node = c.u64()?;
                let n = c.count(4)?;
                let fields = (0..n).map(|_| c.bytes()).collect::<Option<Vec<_>>>()?;
                if fields.is_empty() || !fields.len().is_multiple_of(2) {
                    return None;
                }
                StreamOp::Add { id, node, fields }
            }
            OP_DELETE => StreamOp::Delete { ids: c.ids()? },
            OP_TRIM => StreamOp::Trim { count: c.u64()? },
            OP_SET_ID => StreamOp::SetId {
                last: StreamId::read(&mut c)?,
                entries_added: c.opt_u64()?,
                max_deleted: match c.u8()? {
                    0 => None,
                    1 => Some(StreamId::read(&mut c)?),
                    _ => return None,
                },
            },
            tag @ (OP_GROUP_CREATE | OP_GROUP_SET) => {
                let name = c.bytes()?;
                let last = StreamId::read(&mut c)?;
                let entries_read = c.opt_u64()?;
                if tag == OP_GROUP_CREATE {
                    StreamOp::GroupCreate {
                        name,
                        last,
                        entries_read,
                    }
                } else {
                    StreamOp::GroupSet {
                        name,
                        last,
                        entries_read,
                    }
                }
            }
            OP_GROUP_DESTROY => StreamOp::GroupDestroy { name: c.bytes()? },
            OP_CONSUMER_SEEN => StreamOp::ConsumerSeen {
                group: c.bytes()?,
                name: c.bytes()?,
                time: c.u64()?,
                active: match c.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            },
            OP_CONSUMER_DELETE => StreamOp::ConsumerDelete {
                group: c.bytes()?,
                name: c.bytes()?,
            },
            OP_PENDING_SET => {
                let group = c.bytes()?;
                let consumer = c.bytes()?;
                let time = c.u64()?;
                let n = c.count(24)?;
                let entries = (0..n)
                    .map(|_| Some((StreamId::read(&mut c)?, c.u64()?)))
                    .collect::<Option<Vec<_>>>()?;
                StreamOp::PendingSet {
                    group,
                    consumer,
                    time,
                    entries,
                }
            }
            OP_PENDING_REMOVE => StreamOp::PendingRemove {
                group: c.bytes()?,
                ids: c.ids()?,
            },
            _ => return None,
        };
        c.0.is_empty().then_some(op)
    }

    /// An upper bound of the bytes applying the op can add to a stream's charge, whatever
    /// the stream (a new one: everything named is new). [`Stream::growth_of`] is exact.
    pub fn growth(&self) -> u64 {
        match self {
            StreamOp::Add { fields, .. } => entry_cost(fields),
            StreamOp::GroupCreate { name, .. } => name_cost(name),
            StreamOp::ConsumerSeen { name, .. } => name_cost(name),
            StreamOp::PendingSet { entries, .. } => PENDING_COST * entries.len() as u64,
            _ => 0,
        }
    }
}

/// Why a stream refused an op: it does not fit the stream (replay skips it; a planned op
/// never meets this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRefused;

impl Stream {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the stream has no entry (it still exists: streams are kept empty).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes charged for the stream's contents.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The number of ops applied since the stream was created; see the module docs.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Starts the count of ops over (a stream from `RESTORE`'s payload).
    pub fn reset_version(&mut self) {
        self.version = 0;
    }

    /// The last ID ever added (or set by `XSETID`).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The ID of the first entry, `0-0` when empty (as Redis reports it).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// The largest ID ever deleted by `XDEL`.
    pub fn max_deleted(&self) -> StreamId {
        self.max_deleted
    }

    /// How many entries were ever added.
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// The entry with `id`.
    pub fn entry(&self, id: StreamId) -> Option<&[Bytes]> {
        self.entries.get(&id).map(|(_, f)| f.as_slice())
    }

    /// The first entry.
    pub fn first_entry(&self) -> Option<(StreamId, &[Bytes])> {
        self.entries
            .iter()
            .next()
            .map(|(id, (_, f))| (*id, f.as_slice()))
    }

    /// The last entry.
    pub fn last_entry(&self) -> Option<(StreamId, &[Bytes])> {
        self.entries
            .iter()
            .next_back()
            .map(|(id, (_, f))| (*id, f.as_slice()))
    }

    /// The node a new entry joins when nodes hold at most `node_entries` (Redis's
    /// `stream-node-max-entries`): Redis keeps a stream as a radix tree of nodes of up to
    /// that many entries, and an approximate trim (`~`) removes only whole nodes, so which
    /// entries share a node decides what `~` removes. The tail node while it has live
    /// entries and room (deleted entries keep their room taken, as in Redis), else a new one.
    pub fn node_for_new(&self, node_entries: u64) -> u64 {
        let tail_live = self
            .entries
            .values()
            .next_back()
            .is_some_and(|(node, _)| *node == self.tail_node);
        if tail_live && self.tail_fill < node_entries.max(1) {
            self.tail_node
        } else {
            self.tail_node.wrapping_add(1)
        }
    }

    /// Every entry's ID and node, oldest first.
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, u64)> + '_ {
        self.entries.iter().map(|(id, (node, _))| (*id, *node))
    }

    /// The entries from `start` to `end`, both inclusive, ascending (reverse the iterator
    /// for descending); empty if `start > end`.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl DoubleEndedIterator<Item = (StreamId, &[Bytes])> {
        let range = (start <= end).then(|| self.entries.range(start..=end));
        range
            .into_iter()
            .flatten()
            .map(|(id, (_, f))| (*id, f.as_slice()))
    }

    /// The consumer groups, by name.
    pub fn groups(&self) -> &BTreeMap<Bytes, Group> {
        &self.groups
    }

    /// The group called `name`.
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Whether some entry was deleted (by `XDEL`) inside `start..=end` (Redis's tombstone
    /// test, which decides whether a group's `entries-read` can be counted on).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// How many entries were added up to and including `id`, when that can be known
    /// (Redis's `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_up_to(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            // Checked: a stream restored from a crafted payload may claim fewer entries
            // added than it holds (`decode` refuses that; this stays safe regardless).
            let before = self.entries_added.checked_sub(self.entries.len() as u64)?;
            match id.cmp(&first) {
                std::cmp::Ordering::Less => return Some(before),
                std::cmp::Ordering::Equal => return before.checked_add(1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// A group's lag (entries not yet delivered to it), when it can be known.
    pub fn lag(&self, group: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let read = match group.entries_read {
            Some(read) if !self.range_has_tombstones(group.last_delivered, StreamId::MAX) => {
                Some(read)
            }
            _ => self.entries_up_to(group.last_delivered),
        }?;
        Some(self.entries_added.saturating_sub(read))
    }

    /// The group's `entries-read` after it is delivered entry `id` (Redis's rule: counted
    /// on when nothing was deleted after it, estimated otherwise).
    pub fn entries_read_after(&self, entries_read: Option<u64>, id: StreamId) -> Option<u64> {
        match entries_read {
            // Saturating: `ENTRIESREAD` or a restored payload may set the count anywhere.
            Some(read) if !self.range_has_tombstones(id, StreamId::MAX) => {
                Some(read.saturating_add(1))
            }
            _ if self.entries_added != 0 => self.entries_up_to(id),
            other => other,
        }
    }

    /// The bytes applying `op` to this stream adds to its charge: what [`StreamOp::growth`]
    /// counts less what is there already (an existing group or consumer, an entry already
    /// pending), so a change that adds nothing is charged nothing and goes through at a full
    /// budget (an existing consumer's empty read, a re-read, a claim). Summed over a plan's
    /// ops against the stream before the first, it stays an upper bound: no plan removes
    /// something a later op of it adds back.
    pub fn growth_of(&self, op: &StreamOp) -> u64 {
        match op {
            StreamOp::GroupCreate { name, .. } if self.groups.contains_key(name) => 0,
            StreamOp::ConsumerSeen { group, name, .. }
                if self
                    .groups
                    .get(group)
                    .is_some_and(|g| g.consumers.contains_key(name)) =>
            {
                0
            }
            StreamOp::PendingSet { group, entries, .. } => match self.groups.get(group) {
                Some(g) => {
                    let new = entries
                        .iter()
                        .filter(|(id, _)| !g.pending.contains_key(id))
                        .count();
                    PENDING_COST * new as u64
                }
                None => op.growth(),
            },
            _ => op.growth(),
        }
    }

    /// Applies `op` and counts the version up; an op that does not fit the stream changes
    /// nothing. The same function serves commands and replay.
    pub fn apply(&mut self, op: &StreamOp) -> Result<(), OpRefused> {
        self.apply_inner(op)?;
        self.version = self.version.wrapping_add(1);
        Ok(())
    }

    fn apply_inner(&mut self, op: &StreamOp) -> Result<(), OpRefused> {
        match op {
            StreamOp::Add { id, node, fields } => {
                if *id <= self.last_id {
                    return Err(OpRefused);
                }
                if fields.is_empty() || !fields.len().is_multiple_of(2) {
                    return Err(OpRefused);
                }
                self.bytes += entry_cost(fields);
                // Saturating: `XSETID … ENTRIESADDED` and a restored payload set these
                // counters freely, up to `u64::MAX`.
                if *node == self.tail_node {
                    self.tail_fill = self.tail_fill.saturating_add(1);
                } else {
                    self.tail_node = *node;
                    self.tail_fill = 1;
                }
                self.entries.insert(*id, (*node, fields.clone()));
                self.last_id = *id;
                self.entries_added = self.entries_added.saturating_add(1);
            }
            StreamOp::Delete { ids } => {
                for id in ids {
                    if let Some((_, fields)) = self.entries.remove(id) {
                        self.bytes -= entry_cost(&fields);
                        self.max_deleted = self.max_deleted.max(*id);
                    }
                }
            }
            StreamOp::Trim { count } => {
                for _ in 0..*count {
                    let Some((_, (_, fields))) = self.entries.pop_first() else {
                        break;
                    };
                    self.bytes -= entry_cost(&fields);
                }
            }
            StreamOp::SetId {
                last,
                entries_added,
                max_deleted,
            } => {
                self.last_id = *last;
                if let Some(added) = entries_added {
                    self.entries_added = *added;
                }
                if let Some(id) = max_deleted {
                    self.max_deleted = *id;
                }
            }
            StreamOp::GroupCreate {
                name,
                last,
                entries_read,
            } => {
                if self.groups.contains_key(name) {
                    return Err(OpRefused);
                }
                self.bytes += name_cost(name);
                self.groups.insert(
                    name.clone(),
                    Group {
                        last_delivered: *last,
                        entries_read: *entries_read,
                        ..Group::default()
                    },
                );
            }
            StreamOp::GroupSet {
                name,
                last,
                entries_read,
            } => {
                let group = self.groups.get_mut(name).ok_or(OpRefused)?;
                group.last_delivered = *last;
                group.entries_read = *entries_read;
            }
            StreamOp::GroupDestroy { name } => {
                let group = self.groups.remove(name).ok_or(OpRefused)?;
                self.bytes -= group_cost(name, &group);
            }
            StreamOp::ConsumerSeen {
                group,
                name,
                time,
                active,
            } => {
                let g = self.groups.get_mut(group).ok_or(OpRefused)?;
                let consumer = match g.consumers.get_mut(name) {
                    Some(c) => c,
                    None => {
                        self.bytes += name_cost(name);
                        g.consumers.entry(name.clone()).or_default()
                    }
                };
                consumer.seen_time = *time;
                if *active {
                    consumer.active_time = Some(*time);
                }
            }
            StreamOp::ConsumerDelete { group, name } => {
                let g = self.groups.get_mut(group).ok_or(OpRefused)?;
                let consumer = g.consumers.remove(name).ok_or(OpRefused)?;
                for id in &consumer.pending {
                    g.pending.remove(id);
                }
                self.bytes -= name_cost(name) + PENDING_COST * consumer.pending.len() as u64;
            }
            StreamOp::PendingSet {
                group,
                consumer,
                time,
                entries,
            } => {
                let g = self.groups.get_mut(group).ok_or(OpRefused)?;
                if !g.consumers.contains_key(consumer) {
                    return Err(OpRefused);
                }
                for (id, count) in entries {
                    let old = g.pending.insert(
                        *id,
                        Pending {
                            consumer: consumer.clone(),
                            delivery_time: *time,
                            delivery_count: *count,
                        },
                    );
                    match old {
                        Some(old) => {
                            if let Some(c) = g.consumers.get_mut(&old.consumer) {
                                c.pending.remove(id);
                            }
                        }
                        None => self.bytes += PENDING_COST,
                    }
                    if let Some(c) = g.consumers.get_mut(consumer) {
                        c.pending.insert(*id);
                    }
                }
            }
            StreamOp::PendingRemove { group, ids } => {
                let g = self.groups.get_mut(group).ok_or(OpRefused)?;
                for id in ids {
                    if let Some(old) = g.pending.remove(id) {
                        self.bytes -= PENDING_COST;
                        if let Some(c) = g.consumers.get_mut(&old.consumer) {
                            c.pending.remove(id);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends the whole-stream encoding: a sequence of `u32 LE`-length-prefixed strings,
    /// each one element (so the journal can split a big stream between whole elements): a
    /// header (`H`: version, last ID, max-deleted ID, entries added), then each entry
    /// (`E`: ID, then its strings), then each group (`G`: name, position, entries-read,
    /// then its consumers and its pending entries).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut element = Vec::new();
        element.push(b'H');
        element.extend_from_slice(&self.version.to_le_bytes());
        self.last_id.put(&mut element);
        self.max_deleted.put(&mut element);
        element.extend_from_slice(&self.entries_added.to_le_bytes());
        element.extend_from_slice(&self.tail_node.to_le_bytes());
        element.extend_from_slice(&self.tail_fill.to_le_bytes());
        put_bytes(out, &element);
        for (id, (node, fields)) in &self.entries {
            element.clear();
            element.push(b'E');
            id.put(&mut element);
            element.extend_from_slice(&node.to_le_bytes());
            element.extend_from_slice(&(fields.len() as u32).to_le_bytes());
            for f in fields {
                put_bytes(&mut element, f);
            }
            put_bytes(out, &element);
        }
        for (name, group) in &self.groups {
            element.clear();
            element.push(b'G');
            put_bytes(&mut element, name);
            group.last_delivered.put(&mut element);
            put_opt(&mut element, group.entries_read);
            element.extend_from_slice(&(group.consumers.len() as u32).to_le_bytes());
            for (cname, consumer) in &group.consumers {
                put_bytes(&mut element, cname);
                element.extend_from_slice(&consumer.seen_time.to_le_bytes());
                put_opt(&mut element, consumer.active_time);
            }
            element.extend_from_slice(&(group.pending.len() as u32).to_le_bytes());
            for (id, p) in &group.pending {
                id.put(&mut element);
                put_bytes(&mut element, &p.consumer);
                element.extend_from_slice(&p.delivery_time.to_le_bytes());
                element.extend_from_slice(&p.delivery_count.to_le_bytes());
            }
            put_bytes(out, &element);
        }
    }

    /// The length [`Stream::encode`] appends, counted without encoding.
    pub fn encoded_len(&self) -> usize {
        let entries: usize = self
            .entries
            .values()
            .map(|(_, f)| 4 + 1 + 16 + 8 + 4 + f.iter().map(|s| 4 + s.len()).sum::<usize>())
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                4 + 1
                    + 4
                    + name.len()
                    + 16
                    + opt_len(g.entries_read)
                    + 4
                    + g.consumers
                        .iter()
                        .map(|(c, consumer)| 4 + c.len() + 8 + opt_len(consumer.active_time))
                        .sum::<usize>()
                    + 4
                    + g.pending
                        .values()
                        .map(|p| 16 + 4 + p.consumer.len() + 16)
                        .sum::<usize>()
            })
            .sum();
        4 + 1 + 8 + 16 + 16 + 8 + 16 + entries + groups
    }

    /// Reads back what [`Stream::encode`] wrote (elements concatenated); `None` if the bytes
    /// do not make a consistent stream (IDs out of order, a pending entry whose consumer is
    /// missing, …).
    pub fn decode(bytes: &[u8]) -> Option<Stream> {
        let mut outer = Reader(bytes);
        let mut stream = Stream::default();
        let mut header = false;
        while !outer.0.is_empty() {
            let len = outer.u32()? as usize;
            let mut c = Reader(outer.take(len)?);
            match c.u8()? {
                b'H' if !header => {
                    header = true;
                    stream.version = c.u64()?;
                    stream.last_id = StreamId::read(&mut c)?;
                    stream.max_deleted = StreamId::read(&mut c)?;
                    stream.entries_added = c.u64()?;
                    stream.tail_node = c.u64()?;
                    stream.tail_fill = c.u64()?;
                }
                b'E' if header && stream.groups.is_empty() => {
                    let id = StreamId::read(&mut c)?;
                    let node = c.u64()?;
                    let n = c.count(4)?;
                    let fields = (0..n).map(|_| c.bytes()).collect::<Option<Vec<_>>>()?;
                    if fields.is_empty() || !fields.len().is_multiple_of(2) || id > stream.last_id {
                        return None;
                    }
                    if stream
                        .entries
                        .keys()
                        .next_back()
                        .is_some_and(|last| *last >= id)
                    {
                        return None;
                    }
                    stream.bytes += entry_cost(&fields);
                    stream.entries.insert(id, (node, fields));
                }
                b'G' if header => {
                    let name = c.bytes()?;
                    let mut group = Group {
                        last_delivered: StreamId::read(&mut c)?,
                        entries_read: c.opt_u64()?,
                        ..Group::default()
                    };
                    let consumers = c.count(13)?;
                    for _ in 0..consumers {
                        let cname = c.bytes()?;
                        let consumer = Consumer {
                            seen_time: c.u64()?,
                            active_time: c.opt_u64()?,
                            pending: BTreeSet::new(),
                        };
                        stream.bytes += name_cost(&cname);
                        if group.consumers.insert(cname, consumer).is_some() {
                            return None;
                        }
                    }
                    let pending = c.count(36)?;
                    for _ in 0..pending {
                        let id = StreamId::read(&mut c)?;
                        let consumer = c.bytes()?;
                        let p = Pending {
                            delivery_time: c.u64()?,
                            delivery_count: c.u64()?,
                            consumer,
                        };
                        group.consumers.get_mut(&p.consumer)?.pending.insert(id);
                        stream.bytes += PENDING_COST;
                        if group.pending.insert(id, p).is_some() {
                            return None;
                        }
                    }
                    stream.bytes += name_cost(&name);
                    if stream.groups.insert(name, group).is_some() {
                        return None;
                    }
                }
                _ => return None,
            }
            if !c.0.is_empty() {
                return None;
            }
        }
        // The counters must agree with the entries: a stream never added fewer than it
        // holds (`XSETID` refuses that too). The other counters may be anything a command
        // can set (`ENTRIESADDED`, `ENTRIESREAD` up to `u64::MAX`): the arithmetic on them
        // saturates or is checked instead.
        if stream.entries_added < stream.entries.len() as u64 {
            return None;
        }
        header.then_some(stream)
    }
}

/// Bytes charged for a group with everything in it.
fn group_cost(name: &[u8], group: &Group) -> u64 {
    name_cost(name)
        + group.consumers.keys().map(|c| name_cost(c)).sum::<u64>()
        + PENDING_COST * group.pending.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn sample() -> Stream {
        let mut s = Stream::default();
        for i in 1..=5 {
            s.apply(&StreamOp::Add {
                id: StreamId::new(i, 0),
                node: 0,
                fields: vec![b("f"), b("v")],
            })
            .unwrap();
        }
        s.apply(&StreamOp::GroupCreate {
            name: b("g"),
            last: StreamId::MIN,
            entries_read: None,
        })
        .unwrap();
        s.apply(&StreamOp::ConsumerSeen {
            group: b("g"),
            name: b("alice"),
            time: 7,
            active: true,
        })
        .unwrap();
        s.apply(&StreamOp::PendingSet {
            group: b("g"),
            consumer: b("alice"),
            time: 7,
            entries: vec![(StreamId::new(1, 0), 1), (StreamId::new(2, 0), 3)],
        })
        .unwrap();
        s.apply(&StreamOp::Delete {
            ids: vec![StreamId::new(3, 0)],
        })
        .unwrap();
        s
    }

    #[test]
    fn a_group_with_one_short_pending_entry_round_trips() {
        // The smallest pending entry (a one-byte consumer, 37 bytes) at the very end of
        // the encoding: the count check must not ask for more than an entry's minimum.
        let mut s = Stream::default();
        s.apply(&StreamOp::GroupCreate {
            name: b("g"),
            last: StreamId::MIN,
            entries_read: None,
        })
        .unwrap();
        s.apply(&StreamOp::ConsumerSeen {
            group: b("g"),
            name: b("c"),
            time: 1,
            active: false,
        })
        .unwrap();
        s.apply(&StreamOp::PendingSet {
            group: b("g"),
            consumer: b("c"),
            time: 1,
            entries: vec![(StreamId::new(1, 0), 1)],
        })
        .unwrap();
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(Stream::decode(&out), Some(s));
    }

    #[test]
    fn ids_step_and_stop_at_the_ends() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
    }

    #[test]
    fn whole_encoding_round_trips_with_its_charge() {
        let s = sample();
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out.len(), s.encoded_len());
        let back = Stream::decode(&out).expect("decodes");
        assert_eq!(back, s);
        assert_eq!(back.bytes(), s.bytes());
        // Any truncation is refused, never a panic.
        for cut in 0..out.len() {
            let _ = Stream::decode(&out[..cut]);
        }
    }

    #[test]
    fn ops_round_trip_and_charges_return_to_zero() {
        let mut s = sample();
        let ops = [
            StreamOp::PendingRemove {
                group: b("g"),
                ids: vec![StreamId::new(1, 0)],
            },
            StreamOp::ConsumerDelete {
                group: b("g"),
                name: b("alice"),
            },
            StreamOp::GroupDestroy { name: b("g") },
            StreamOp::Trim { count: 10 },
            StreamOp::SetId {
                last: StreamId::new(9, 9),
                entries_added: Some(42),
                max_deleted: Some(StreamId::new(8, 0)),
            },
        ];
        for op in &ops {
            let mut enc = Vec::new();
            op.encode(&mut enc);
            assert_eq!(StreamOp::decode(&enc).as_ref(), Some(op));
            for cut in 0..enc.len() {
                assert_eq!(StreamOp::decode(&enc[..cut]), None);
            }
            s.apply(op).unwrap();
        }
        assert_eq!(s.bytes(), 0);
        assert_eq!(s.last_id(), StreamId::new(9, 9));
        assert_eq!(s.entries_added(), 42);
    }

    #[test]
    fn an_add_not_above_the_top_is_refused() {
        let mut s = sample();
        let version = s.version();
        let op = StreamOp::Add {
            id: StreamId::new(5, 0),
            node: 0,
            fields: vec![b("f"), b("v")],
        };
        assert_eq!(s.apply(&op), Err(OpRefused));
        assert_eq!(s.version(), version);
    }

    #[test]
    fn lag_follows_redis_rules() {
        let mut s = Stream::default();
        for i in 1..=3 {
            s.apply(&StreamOp::Add {
                id: StreamId::new(i, 0),
                node: 0,
                fields: vec![b("f"), b("v")],
            })
            .unwrap();
        }
        let g = Group::default();
        // Never read, nothing deleted: the first entry's position is known.
        assert_eq!(s.lag(&g), Some(3));
        s.apply(&StreamOp::Delete {
            ids: vec![StreamId::new(2, 0)],
        })
        .unwrap();
        // A tombstone after the group's position: unknown.
        assert_eq!(s.lag(&g), None);
    }
}
