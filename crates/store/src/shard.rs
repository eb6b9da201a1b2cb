//! One shard: a hash table of items plus the timing wheel that indexes their deadlines.
//!
//! Everything here runs under the shard's lock, which [`crate::Store`] takes. The functions
//! implement the semantics of each operation once, for every protocol: the condition checks
//! of `add`/`replace`/`cas`, lazy expiry on access, memory charging before any change, and
//! the `wheel_at` invariant described in the crate documentation.
//!
//! Memcached operations see only string items: a collection is a miss for them (and is
//! overwritten by a plain `set`). The typed operations used by RESP see every item and
//! answer [`StoreError::WrongType`] when a command meets the wrong type.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hashbrown::HashTable;
use hashbrown::hash_table::{Entry as HashEntry, OccupiedEntry};

use crate::budget::{Budget, Charge, ITEM_OVERHEAD};
use crate::item::{Item, Marks};
use crate::value::{End, Kind, Value};
use crate::wheel::{Entry as WheelEntry, Wheel};
use crate::{
    CounterOutcome, DeadlineChange, Direction, ElementOp, Entry, Mutation, Observer, Previous,
    RemoveOutcome, Side, StoreError, Write, WriteOutcome, Written,
};

/// What a typed operation does when the key holds no collection of its type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Start from an empty collection (`HSET`, `SADD`, `ZADD`).
    Create,
    /// Change nothing and answer `None` (the removals, `ZADD XX`).
    Skip,
}

/// Which types [`Shard::take`] accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Any (`DEL`).
    Any,
    /// A string; another type answers [`StoreError::WrongType`] (`GETDEL`).
    OnlyString,
}

/// What an operation needs from the store beyond the shard: the time, the budget and the
/// store-wide counters.
pub(crate) struct Ctx<'a> {
    pub now: u64,
    pub budget: &'a Budget,
    pub next_cas: &'a AtomicU64,
    pub total_items: &'a AtomicU64,
    pub expired: &'a AtomicU64,
    /// Counts stream changes that had to copy the stream first ([`crate::StoreStats`]).
    pub stream_copies: &'a AtomicU64,
    pub observer: Option<&'a dyn Observer>,
    /// The CAS a change gives its item instead of the next from the counter (memcached's
    /// meta `E` flag: a version from outside).
    pub explicit_cas: Option<u64>,
}

impl Ctx<'_> {
    fn new_cas(&self) -> u64 {
        match self.explicit_cas {
            Some(cas) => cas,
            None => self.next_cas.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn is_past(&self, deadline: Option<u64>) -> bool {
        deadline.is_some_and(|d| d <= self.now)
    }

    /// Tells the observer about a change just applied. Called with the shard lock held, so
    /// the observer sees the changes to any one key in the order they were applied.
    fn applied(&self, mutation: Mutation<'_>) {
        if let Some(observer) = self.observer {
            observer.applied(&mutation, self.now);
        }
    }

    fn expired(&self, key: &[u8]) {
        self.expired.fetch_add(1, Ordering::Relaxed);
        if let Some(observer) = self.observer {
            observer.expired(key, self.now);
        }
    }

    fn read(&self, key: &[u8]) {
        if let Some(observer) = self.observer {
            observer.read(key, self.now);
        }
    }

    pub(crate) fn applied_remove(&self, key: &[u8]) {
        self.applied(Mutation::Remove { key });
    }
}

/// A change to one collection element with the bytes it keeps (cheap clones of what the
/// collection stores), reported to the observer once the whole command has been applied.
pub(crate) enum Op {
    HashSet(Bytes, Bytes),
    HashRemove(Bytes),
    SetAdd(Bytes),
    SetRemove(Bytes),
    ZSetAdd(Bytes, f64),
    ZSetRemove(Bytes),
    /// End, element, version after.
    ListPush(End, Bytes, u64),
    /// End, count, version after.
    ListPop(End, u64, u64),
    /// Index, element, version after.
    ListSet(u64, Bytes, u64),
    /// Index, element, version after.
    ListInsert(u64, Bytes, u64),
    /// Count, element, version after.
    ListRem(i64, Bytes, u64),
    /// Start, end, version after.
    ListTrim(u64, u64, u64),
    /// An encoded [`crate::StreamOp`], version after.
    Stream(Vec<u8>, u64),
}

impl Op {
    fn as_element(&self) -> ElementOp<'_> {
        match self {
            Op::HashSet(field, value) => ElementOp::HashSet { field, value },
            Op::HashRemove(field) => ElementOp::HashRemove { field },
            Op::SetAdd(member) => ElementOp::SetAdd { member },
            Op::SetRemove(member) => ElementOp::SetRemove { member },
            Op::ZSetAdd(member, score) => ElementOp::ZSetAdd {
                member,
                score: *score,
            },
            Op::ZSetRemove(member) => ElementOp::ZSetRemove { member },
            Op::ListPush(end, item, version) => ElementOp::ListPush {
                end: *end,
                item,
                version: *version,
            },
            Op::ListPop(end, count, version) => ElementOp::ListPop {
                end: *end,
                count: *count,
                version: *version,
            },
            Op::ListSet(index, item, version) => ElementOp::ListSet {
                index: *index,
                item,
                version: *version,
            },
            Op::ListInsert(index, item, version) => ElementOp::ListInsert {
                index: *index,
                item,
                version: *version,
            },
            Op::ListRem(count, item, version) => ElementOp::ListRem {
                count: *count,
                item,
                version: *version,
            },
            Op::ListTrim(start, end, version) => ElementOp::ListTrim {
                start: *start,
                end: *end,
                version: *version,
            },
            Op::Stream(op, version) => ElementOp::Stream {
                op,
                version: *version,
            },
        }
    }
}

/// Applies one element change to `value` if it is a collection of the matching type;
/// returns whether it was (replay ignores a change that meets another type).
fn apply_element(value: &mut Value, op: &ElementOp<'_>) -> bool {
    use std::sync::Arc;
    let copy = Bytes::copy_from_slice;
    match (value, *op) {
        (Value::Hash(h), ElementOp::HashSet { field, value }) => {
            Arc::make_mut(h).insert(copy(field), copy(value));
        }
        (Value::Hash(h), ElementOp::HashRemove { field }) => {
            Arc::make_mut(h).remove(field);
        }
        (Value::Set(s), ElementOp::SetAdd { member }) => {
            Arc::make_mut(s).insert(copy(member));
        }
        (Value::Set(s), ElementOp::SetRemove { member }) => {
            Arc::make_mut(s).remove(member);
        }
        (Value::ZSet(z), ElementOp::ZSetAdd { member, score }) => {
            Arc::make_mut(z).insert(copy(member), score);
        }
        (Value::ZSet(z), ElementOp::ZSetRemove { member }) => {
            Arc::make_mut(z).remove(member);
        }
        (Value::List(l), op) => return apply_list(l, &op),
        (Value::Stream(stream), ElementOp::Stream { op, version }) => {
            // Only to the version it was made to (see `crate::stream`).
            if stream.version().wrapping_add(1) != version {
                return false;
            }
            let Some(op) = crate::StreamOp::decode(op) else {
                return false;
            };
            return Arc::make_mut(stream).apply(&op).is_ok();
        }
        _ => return false,
    }
    true
}

/// Applies one list change to `list` if it was made to the list's current version (see
/// [`crate::List`]); a change the list already reflects, or one that does not fit it, is
/// skipped.
fn apply_list(list: &mut std::sync::Arc<crate::List>, op: &ElementOp<'_>) -> bool {
    use std::sync::Arc;
    let version = match *op {
        ElementOp::ListPush { version, .. }
        | ElementOp::ListPop { version, .. }
        | ElementOp::ListSet { version, .. }
        | ElementOp::ListInsert { version, .. }
        | ElementOp::ListRem { version, .. }
        | ElementOp::ListTrim { version, .. } => version,
        _ => return false,
    };
    // Wrapping, as `List::bump` counts.
    if list.version().wrapping_add(1) != version {
        return false;
    }
    let len = list.len() as u64;
    let copy = Bytes::copy_from_slice;
    match *op {
        ElementOp::ListPush { end, item, .. } => {
            Arc::make_mut(list).push(end, copy(item));
        }
        ElementOp::ListPop { end, count, .. } => {
            Arc::make_mut(list).pop(end, usize::try_from(count).unwrap_or(usize::MAX));
        }
        ElementOp::ListSet { index, item, .. } if index < len => {
            Arc::make_mut(list).set(index as usize, copy(item));
        }
        ElementOp::ListInsert { index, item, .. } if index <= len => {
            Arc::make_mut(list).insert(index as usize, copy(item));
        }
        ElementOp::ListRem { count, item, .. } => {
            Arc::make_mut(list).remove_matching(count, item);
        }
        ElementOp::ListTrim { start, end, .. } => {
            let clamp = |i: u64| i.min(len) as usize;
            Arc::make_mut(list).trim(clamp(start), clamp(end));
        }
        _ => return false,
    }
    true
}

mod meta;

pub(crate) struct Shard {
    /// The items, each a thin pointer to its one-allocation block (key and value inside), so
    /// a slot is 8 bytes. Lookups hash the key with `hasher` and compare keys inside the
    /// items; a resize rehashes the keys rather than storing each hash (8 more bytes a
    /// slot, about 17 bytes an item at hashbrown's load factors).
    table: HashTable<Item>,
    wheel: Wheel,
    /// The table's hasher. It must differ from the one that picks the shard: every key in
    /// this shard shares the low bits of that one, which would crowd a few buckets.
    hasher: foldhash::fast::RandomState,
    /// Revoked keys and until when (Unix ms) a write may not create them again. Empty on
    /// almost every shard, so a write pays one `is_empty` check; entries past their time go
    /// at the first look or at the sweep after `revoked_next`.
    revoked: hashbrown::HashMap<Box<[u8]>, u64>,
    /// The earliest `until` in `revoked` (`u64::MAX` when empty): when the sweep has work.
    revoked_next: u64,
}

/// Bytes charged per revoked key on top of the key: the map's slot, the boxed key's
/// allocation header and rounding, the deadline.
pub(crate) const REVOKED_OVERHEAD: u64 = 64;

/// A client read `item` at `now`: memcached's "fetched" mark and last-access time.
fn accessed(item: &mut Item, now: u64) {
    let marks = item.marks();
    item.set_marks(Marks(marks.0 | Marks::FETCHED));
    item.set_last_access(now);
}

/// What [`Shard::write`] needs to know of the item it may replace.
struct Current {
    is_str: bool,
    cas: u64,
    deadline: Option<u64>,
    charged: u64,
    /// The old value, when the caller asked for it.
    value: Option<Value>,
}

/// An item taken out of one shard by `RENAME`, on its way to another key. It keeps its
/// charge while it travels (nothing else can take those bytes meanwhile), and gives it back
/// if it is dropped without landing.
pub(crate) struct Moved<'a> {
    item: Item,
    charge: Charge<'a>,
}

/// Takes an item out of its table, with its charge as a guard: dropped (the usual case, a
/// removal) it gives the bytes back, carried (`RENAME`) it keeps them for the item's next
/// key. Every item leaves a table through here, except a flush's, which goes whole.
fn unlink<'b>(found: OccupiedEntry<'_, Item>, budget: &'b Budget) -> (Item, Charge<'b>) {
    let (item, _) = found.remove();
    // The item's wheel entry, if any, is now stale and is dropped when it fires.
    let charge = budget.held(item.charge());
    (item, charge)
}

/// Files `item`'s deadline, adding a wheel entry only when the new deadline is earlier than
/// the one already filed (see the crate's `wheel_at` invariant). `hash` is the item's key
/// hash in its shard's table, which is how the entry names the item.
fn schedule(wheel: &mut Wheel, hash: u64, item: &mut Item, deadline: Option<u64>) {
    item.set_deadline_raw(deadline.unwrap_or(0));
    if let Some(at) = deadline
        && (item.wheel_at() == 0 || item.wheel_at() > at)
    {
        item.set_wheel_at(at);
        wheel.insert(WheelEntry { hash, at });
    }
}

impl Shard {
    pub fn new(now: u64, hasher: foldhash::fast::RandomState) -> Shard {
        Shard {
            table: HashTable::new(),
            wheel: Wheel::new(now),
            hasher,
            revoked: hashbrown::HashMap::new(),
            revoked_next: u64::MAX,
        }
    }

    /// Whether `key` is revoked at `ctx.now`; a revocation found past its time is dropped.
    pub fn is_revoked(&mut self, key: &[u8], ctx: &Ctx<'_>) -> bool {
        if self.revoked.is_empty() {
            return false;
        }
        match self.revoked.get(key) {
            None => false,
            Some(&until) if until > ctx.now => true,
            Some(_) => {
                self.revoked.remove(key);
                drop(ctx.budget.held(key.len() as u64 + REVOKED_OVERHEAD));
                false
            }
        }
    }

    /// Refuses a write that would create `key` while it is revoked.
    fn check_not_revoked(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Result<(), StoreError> {
        if self.is_revoked(key, ctx) {
            Err(StoreError::Revoked)
        } else {
            Ok(())
        }
    }

    /// Files `key` as revoked until `until` (replacing an earlier revocation of it). Never
    /// refused for memory: a revocation removes an item far larger than its own record.
    fn file_revocation(&mut self, key: &[u8], until: u64, budget: &Budget) {
        if self.revoked.insert(key.into(), until).is_none() {
            budget
                .force_charge(0, key.len() as u64 + REVOKED_OVERHEAD)
                .commit();
        }
        self.revoked_next = self.revoked_next.min(until);
    }

    /// Revokes the live item under `key`: removes it and refuses its re-creation until its
    /// deadline, or until `now + hold` if it had none. Returns that time, or `None` (and
    /// changes nothing) if the key holds nothing.
    pub fn revoke(&mut self, key: &[u8], hold: u64, ctx: &Ctx<'_>) -> Option<u64> {
        let deadline = self.live(key, ctx)?.deadline();
        let until = deadline.unwrap_or(ctx.now.saturating_add(hold));
        self.remove(key, ctx);
        self.file_revocation(key, until, ctx.budget);
        ctx.applied(Mutation::Revoke { key, until });
        Some(until)
    }

    /// The revocations still in force, for a snapshot.
    pub fn revocations(&self, now: u64) -> Vec<(Bytes, u64)> {
        self.revoked
            .iter()
            .filter(|&(_, &until)| until > now)
            .map(|(key, &until)| (Bytes::copy_from_slice(key), until))
            .collect()
    }

    /// Drops the revocations whose time has come, once the earliest of them is due.
    fn sweep_revocations(&mut self, budget: &Budget, now: u64) {
        if self.revoked_next > now {
            return;
        }
        let mut freed = 0;
        let mut next = u64::MAX;
        self.revoked.retain(|key, &mut until| {
            if until <= now {
                freed += key.len() as u64 + REVOKED_OVERHEAD;
                false
            } else {
                next = next.min(until);
                true
            }
        });
        self.revoked_next = next;
        drop(budget.held(freed));
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn wheel_len(&self) -> usize {
        self.wheel.len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &[u8]) -> Option<&Item> {
        self.table.find(self.hash(key), |item| item.key() == key)
    }

    fn find_mut(&mut self, key: &[u8]) -> Option<&mut Item> {
        let hash = self.hash(key);
        self.table.find_mut(hash, |item| item.key() == key)
    }

    /// The live item under `key`, removing it first if its deadline has passed (and
    /// telling the observer, which publishes the expiry but journals nothing: the deadline
    /// itself is already recorded). An empty collection, which only a journal replay can
    /// leave behind, is absent and dropped silently.
    fn live(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<&mut Item> {
        let hash = self.hash(key);
        let Ok(found) = self.table.find_entry(hash, |item| item.key() == key) else {
            return None;
        };
        let (expired, empty) = {
            let item = found.get();
            (!item.is_live(ctx.now), item.is_empty_collection())
        };
        if expired || empty {
            drop(unlink(found, ctx.budget));
            if expired {
                ctx.expired(key);
            }
            return None;
        }
        Some(found.into_mut())
    }

    /// The live string item under `key`: what memcached commands see.
    fn live_str(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<&mut Item> {
        self.live(key, ctx).filter(|item| item.is_str())
    }

    fn remove(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Item> {
        let hash = self.hash(key);
        let found = self.table.find_entry(hash, |item| item.key() == key).ok()?;
        let (item, _released) = unlink(found, ctx.budget);
        Some(item)
    }

    /// Moves the deadline of the item under `key` (which exists), filing a wheel entry if
    /// needed.
    fn reschedule(&mut self, key: &[u8], deadline: Option<u64>) -> Option<&mut Item> {
        let hash = self.hash(key);
        let item = self.table.find_mut(hash, |item| item.key() == key)?;
        schedule(&mut self.wheel, hash, item, deadline);
        Some(item)
    }

    pub fn get_if_string(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Entry<Bytes>> {
        let entry = self.live_str(key, ctx).and_then(|item| {
            accessed(item, ctx.now);
            item.string_entry()
        });
        if entry.is_some() {
            ctx.read(key);
        }
        entry
    }

    /// Whether `key` holds a live item at `now`, without removing an expired one.
    pub fn is_live(&self, key: &[u8], now: u64) -> bool {
        self.find(key)
            .is_some_and(|item| item.is_live(now) && !item.is_empty_collection())
    }

    pub fn peek(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Entry> {
        self.live(key, ctx).map(|item| item.entry())
    }

    pub fn get(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Entry> {
        let entry = self.live(key, ctx).map(|item| item.entry());
        if entry.is_some() {
            ctx.read(key);
        }
        entry
    }

    pub fn touch_if_string(
        &mut self,
        key: &[u8],
        deadline: Option<u64>,
        ctx: &Ctx<'_>,
    ) -> Option<Entry<Bytes>> {
        self.live_str(key, ctx)?;
        if ctx.is_past(deadline) {
            let removed = self.remove(key, ctx).and_then(|item| item.string_entry());
            ctx.applied(Mutation::Remove { key });
            return removed;
        }
        let item = self.reschedule(key, deadline)?;
        accessed(item, ctx.now);
        ctx.applied(Mutation::Deadline { key, deadline });
        item.string_entry()
    }

    /// Moves the deadline of the live item under `key`, of any type, as `decide` says:
    /// `decide` sees the value and the current deadline and returns its answer and, if the
    /// deadline is to change, the new one. A new deadline at or before now removes the item.
    pub fn retime<R>(
        &mut self,
        key: &[u8],
        ctx: &Ctx<'_>,
        decide: impl FnOnce(&Value, Option<u64>) -> (R, Option<Option<u64>>),
    ) -> Option<R> {
        let item = self.live(key, ctx)?;
        let (answer, change) = decide(&item.value(), item.deadline());
        let Some(deadline) = change else {
            return Some(answer);
        };
        if ctx.is_past(deadline) {
            self.remove(key, ctx);
            ctx.applied(Mutation::Remove { key });
            return Some(answer);
        }
        self.reschedule(key, deadline)?;
        ctx.applied(Mutation::Deadline { key, deadline });
        Some(answer)
    }

    /// Writes a string under `key` if `how.condition` holds (see [`crate::Condition`] for
    /// which types count as present under each one). With [`Previous::Return`] the previous
    /// value comes back, and a previous value that is not a string refuses the whole write
    /// with [`StoreError::WrongType`] before the condition is looked at (Redis's `SET … GET`).
    pub fn write(
        &mut self,
        key: &[u8],
        value: &[u8],
        how: Write,
        ctx: &Ctx<'_>,
    ) -> Result<Written, StoreError> {
        let return_previous = how.previous == Previous::Return;
        let current = self.live(key, ctx).map(|item| Current {
            is_str: item.is_str(),
            cas: item.cas(),
            deadline: item.deadline(),
            charged: item.charge(),
            value: return_previous.then(|| item.value()),
        });
        if return_previous && current.as_ref().is_some_and(|c| !c.is_str) {
            return Err(StoreError::WrongType);
        }
        let (old_charged, kept_deadline) = current
            .as_ref()
            .map_or((0, None), |c| (c.charged, c.deadline));
        let refused = how
            .condition
            .refuses(current.as_ref().map(|c| (c.is_str, c.cas)));
        let previous = current.and_then(|c| c.value);
        if let Some(outcome) = refused {
            return Ok(Written { outcome, previous });
        }
        let deadline = match how.deadline {
            DeadlineChange::Set(deadline) => deadline,
            DeadlineChange::Keep => kept_deadline,
        };
        let cas = ctx.new_cas();
        let outcome = WriteOutcome::Stored(cas);
        if ctx.is_past(deadline) {
            // Born expired: the write succeeds and leaves nothing alive (memcached's rule
            // for an exptime in the past, Redis's for a past `EXAT`).
            if self.remove(key, ctx).is_some() {
                ctx.applied(Mutation::Remove { key });
            }
            return Ok(Written { outcome, previous });
        }
        self.write_str(key, &[value], how.flags, cas, deadline, old_charged, ctx)?;
        Ok(Written { outcome, previous })
    }

    /// Replaces whatever `key` holds (charged `old_charged`) by a string made of `parts`,
    /// charging the budget first, and reports the write.
    #[allow(clippy::too_many_arguments)]
    fn write_str(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        flags: u32,
        cas: u64,
        deadline: Option<u64>,
        old_charged: u64,
        ctx: &Ctx<'_>,
    ) -> Result<(), StoreError> {
        self.check_not_revoked(key, ctx)?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let charge = ctx
            .budget
            .charge(old_charged, (key.len() + len) as u64 + ITEM_OVERHEAD)?;
        ctx.total_items.fetch_add(1, Ordering::Relaxed);
        // One exact-size block holding the key and a copy of the value: the caller's bytes
        // may be a view into a large network buffer that the store must not keep alive.
        let item = self.put(
            key,
            Item::new_str(key, parts, flags, cas),
            deadline,
            ctx.now,
        );
        charge.commit();
        ctx.applied(Mutation::Put {
            key,
            value: item.str_value().unwrap_or_default(),
            flags,
            cas,
            deadline,
        });
        Ok(())
    }

    /// Replaces whatever `key` holds by the whole `value` (a string or a collection, with no
    /// flags), if `only_if_absent` is false or the key holds nothing: `COPY` and the commands
    /// that store a computed collection (`SINTERSTORE`, `ZRANGESTORE`, …). An empty
    /// collection removes the key, as Redis stores nothing for an empty result. Returns
    /// whether it wrote (or removed). Reported as one whole value (`Put`/`PutCollection`).
    pub fn put_value(
        &mut self,
        key: &[u8],
        value: Value,
        only_if_absent: bool,
        deadline: DeadlineChange,
        ctx: &Ctx<'_>,
    ) -> Result<bool, StoreError> {
        let current = self
            .live(key, ctx)
            .map(|item| (item.charge(), item.deadline()));
        if only_if_absent && current.is_some() {
            return Ok(false);
        }
        let (old_charged, kept) = current.unwrap_or((0, None));
        let deadline = match deadline {
            DeadlineChange::Set(deadline) => deadline,
            DeadlineChange::Keep => kept,
        };
        if value.is_empty_collection() || ctx.is_past(deadline) {
            if self.remove(key, ctx).is_some() {
                ctx.applied(Mutation::Remove { key });
            }
            return Ok(true);
        }
        let cas = ctx.new_cas();
        if let Value::Str(bytes) = &value {
            self.write_str(key, &[bytes], 0, cas, deadline, old_charged, ctx)?;
            return Ok(true);
        }
        self.check_not_revoked(key, ctx)?;
        let charge = ctx
            .budget
            .charge(old_charged, key.len() as u64 + value.cost() + ITEM_OVERHEAD)?;
        ctx.total_items.fetch_add(1, Ordering::Relaxed);
        let mut members = Vec::new();
        value.encode_members(&mut members);
        let kind = value.kind();
        self.put(key, Item::new_coll(key, value, cas), deadline, ctx.now);
        charge.commit();
        ctx.applied(Mutation::PutCollection {
            key,
            kind,
            members: &members,
            deadline,
        });
        Ok(true)
    }

    /// Removes and returns the live item under `key` if it is of a type `accept` takes;
    /// another type is left alone and answers [`StoreError::WrongType`].
    pub fn take(
        &mut self,
        key: &[u8],
        accept: Accept,
        ctx: &Ctx<'_>,
    ) -> Result<Option<Value>, StoreError> {
        match self.live(key, ctx) {
            None => return Ok(None),
            Some(item) if accept == Accept::OnlyString && !item.is_str() => {
                return Err(StoreError::WrongType);
            }
            Some(_) => {}
        }
        let item = self.remove(key, ctx);
        ctx.applied(Mutation::Remove { key });
        Ok(item.map(Item::into_value))
    }

    /// Appends to the string under `key`, creating it if missing (`APPEND`); returns the new
    /// length.
    pub fn extend_or_create(
        &mut self,
        key: &[u8],
        data: &[u8],
        max_len: usize,
        ctx: &Ctx<'_>,
    ) -> Result<usize, StoreError> {
        let (old, flags, deadline, old_charged) = match self.live(key, ctx) {
            None => (Bytes::new(), 0, None, 0),
            Some(item) => {
                let Some(old) = item.value_bytes() else {
                    return Err(StoreError::WrongType);
                };
                (old, item.flags(), item.deadline(), item.charge())
            }
        };
        let len = old.len() + data.len();
        if len > max_len {
            return Err(StoreError::TooLarge);
        }
        let cas = ctx.new_cas();
        self.write_str(key, &[&old, data], flags, cas, deadline, old_charged, ctx)?;
        Ok(len)
    }

    /// Adds `delta` to the signed decimal under `key`, creating it from 0 (`INCRBY`),
    /// keeping its deadline.
    pub fn add_i64(&mut self, key: &[u8], delta: i64, ctx: &Ctx<'_>) -> Result<i64, StoreError> {
        let (current, flags, deadline, old_charged) = match self.live(key, ctx) {
            None => (0, 0, None, 0),
            Some(item) => {
                let Some(old) = item.str_value() else {
                    return Err(StoreError::WrongType);
                };
                let current = parse_i64(old).ok_or(StoreError::NotInteger)?;
                (current, item.flags(), item.deadline(), item.charge())
            }
        };
        let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let cas = ctx.new_cas();
        self.write_str(
            key,
            &[next.to_string().as_bytes()],
            flags,
            cas,
            deadline,
            old_charged,
            ctx,
        )?;
        Ok(next)
    }

    /// Changes the collection of `kind` under `key` with `apply`, which edits the value in
    /// place and lists the element changes it made. A missing key starts as an empty
    /// collection with [`Missing::Create`], and otherwise gives `Ok(None)` without calling
    /// `apply`. `reserve` must bound the growth `apply` can cause: it is charged to the
    /// budget before anything changes (the write fails whole if it does not fit) and settled
    /// to the real growth afterwards.
    ///
    /// Journaling: a collection created here is reported whole; a change to an existing one
    /// as its element changes (absolute and idempotent, so replay converges); a collection
    /// left empty is removed, as Redis does, and reported as a removal.
    pub(crate) fn elements<R>(
        &mut self,
        key: &[u8],
        kind: Kind,
        missing: Missing,
        reserve: u64,
        ctx: &Ctx<'_>,
        apply: impl FnOnce(&mut Value, &mut Vec<Op>) -> R,
    ) -> Result<Option<R>, StoreError> {
        let exists = match self.live(key, ctx) {
            Some(item) if item.coll().map(Value::kind) != Some(kind) => {
                return Err(StoreError::WrongType);
            }
            Some(_) => true,
            None if missing == Missing::Skip => return Ok(None),
            None => {
                self.check_not_revoked(key, ctx)?;
                false
            }
        };
        let reserve = if exists {
            reserve
        } else {
            reserve + key.len() as u64 + ITEM_OVERHEAD
        };
        // Dropped on every early return below, which gives the reservation back.
        let charge = ctx.budget.charge(0, reserve)?;
        let mut ops = Vec::new();
        if !exists {
            let mut value = Value::empty(kind);
            let answer = apply(&mut value, &mut ops);
            if ops.is_empty() || value.is_empty_collection() {
                return Ok(Some(answer));
            }
            let charged = key.len() as u64 + value.cost() + ITEM_OVERHEAD;
            let cas = ctx.new_cas();
            let mut members = Vec::new();
            value.encode_members(&mut members);
            self.put(key, Item::new_coll(key, value, cas), None, ctx.now);
            charge.commit_resized(0, charged);
            ctx.applied(Mutation::PutCollection {
                key,
                kind,
                members: &members,
                deadline: None,
            });
            return Ok(Some(answer));
        }
        let Some(item) = self.find_mut(key) else {
            return Ok(None);
        };
        let old_charged = item.charge();
        let Some(value) = item.coll_mut() else {
            return Ok(None);
        };
        let answer = apply(value, &mut ops);
        charge.commit_resized(old_charged, item.charge());
        if ops.is_empty() {
            return Ok(Some(answer));
        }
        item.set_cas(ctx.new_cas());
        if item.is_empty_collection() {
            self.remove(key, ctx);
            ctx.applied(Mutation::Remove { key });
            return Ok(Some(answer));
        }
        for op in &ops {
            ctx.applied(Mutation::Element {
                key,
                op: op.as_element(),
            });
        }
        Ok(Some(answer))
    }

    /// Changes the stream under `key` by the ops `plan` decides from it (`None`: no stream
    /// there; ops then create one). The ops' growth is charged before anything changes;
    /// each op is applied with [`crate::Stream::apply`] (what replay runs) and journaled
    /// with the version it produced; a stream created here is journaled whole. A stream is
    /// never removed for being empty. WRONGTYPE for another type; `plan`'s error is
    /// returned with nothing changed.
    pub(crate) fn stream<R>(
        &mut self,
        key: &[u8],
        ctx: &Ctx<'_>,
        plan: impl FnOnce(Option<&crate::Stream>) -> Result<(Vec<crate::StreamOp>, R), StoreError>,
    ) -> Result<R, StoreError> {
        use std::sync::Arc;
        let exists = match self.live(key, ctx) {
            Some(item) => match item.coll() {
                Some(Value::Stream(_)) => true,
                _ => return Err(StoreError::WrongType),
            },
            None => false,
        };
        if !exists {
            let (ops, answer) = plan(None)?;
            if ops.is_empty() {
                return Ok(answer);
            }
            self.check_not_revoked(key, ctx)?;
            let growth: u64 = ops.iter().map(crate::StreamOp::growth).sum();
            let charge = ctx
                .budget
                .charge(0, growth + key.len() as u64 + ITEM_OVERHEAD)?;
            let mut stream = crate::Stream::default();
            for op in &ops {
                let _ = stream.apply(op);
            }
            let value = Value::Stream(Arc::new(stream));
            let charged = key.len() as u64 + value.cost() + ITEM_OVERHEAD;
            let mut members = Vec::new();
            value.encode_members(&mut members);
            self.put(
                key,
                Item::new_coll(key, value, ctx.new_cas()),
                None,
                ctx.now,
            );
            charge.commit_resized(0, charged);
            ctx.applied(Mutation::PutCollection {
                key,
                kind: Kind::Stream,
                members: &members,
                deadline: None,
            });
            return Ok(answer);
        }
        let Some(item) = self.find_mut(key) else {
            return Err(StoreError::WrongType);
        };
        let Some(Value::Stream(stream)) = item.coll() else {
            return Err(StoreError::WrongType);
        };
        let (ops, answer) = plan(Some(stream))?;
        if ops.is_empty() {
            return Ok(answer);
        }
        // The exact growth against the stream as it is: what it has already costs nothing,
        // so a change adding nothing (an existing consumer's read, a claim) passes a full
        // budget.
        let growth: u64 = ops.iter().map(|op| stream.growth_of(op)).sum();
        // Dropped on the early return below, which gives the reservation back.
        let charge = ctx.budget.charge(0, growth)?;
        let old_charged = item.charge();
        let Some(Value::Stream(stream)) = item.coll_mut() else {
            return Err(StoreError::WrongType);
        };
        // Copy-on-write: a reader building a reply may still hold the stream, and then the
        // change applies to a copy. Counted, because a command that held its own clone here
        // would copy the whole stream (uncharged, under the lock) on every call.
        if Arc::get_mut(stream).is_none() {
            ctx.stream_copies.fetch_add(1, Ordering::Relaxed);
        }
        let stream = Arc::make_mut(stream);
        let mut applied = Vec::with_capacity(ops.len());
        for op in &ops {
            if stream.apply(op).is_ok() {
                let mut encoded = Vec::new();
                op.encode(&mut encoded);
                applied.push(Op::Stream(encoded, stream.version()));
            }
        }
        charge.commit_resized(old_charged, item.charge());
        if applied.is_empty() {
            return Ok(answer);
        }
        item.set_cas(ctx.new_cas());
        for op in &applied {
            ctx.applied(Mutation::Element {
                key,
                op: op.as_element(),
            });
        }
        Ok(answer)
    }

    /// Inserts `item` (made for `key`, already charged to the budget) with `deadline`,
    /// replacing any item under `key`. A replaced item's wheel entry stays valid for the new
    /// one (it names the key's hash and the `wheel_at` carried over), as the crate's
    /// `wheel_at` invariant requires.
    fn put(&mut self, key: &[u8], mut item: Item, deadline: Option<u64>, now: u64) -> &mut Item {
        item.set_last_access(now);
        let hash = self.hash(key);
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |old| old.key() == key,
            |other| hasher.hash_one(other.key()),
        ) {
            HashEntry::Occupied(slot) => {
                let slot = slot.into_mut();
                item.set_wheel_at(slot.wheel_at());
                *slot = item;
                schedule(&mut self.wheel, hash, slot, deadline);
                slot
            }
            HashEntry::Vacant(slot) => {
                schedule(&mut self.wheel, hash, &mut item, deadline);
                slot.insert(item).into_mut()
            }
        }
    }

    /// Adds `data` to one end of the live string under `key` (memcached's `append` and
    /// `prepend`), keeping its flags and deadline; `cas` (0 = none) must match. A missing key
    /// or another type is a miss. The length limit is checked first, against the string's
    /// current length, and under the same lock as the change, so no concurrent write can
    /// slip between the check and the append.
    pub fn extend_if_string(
        &mut self,
        key: &[u8],
        data: &[u8],
        side: Side,
        cas: u64,
        max_len: usize,
        ctx: &Ctx<'_>,
    ) -> Result<WriteOutcome, StoreError> {
        let item = self.live_str(key, ctx);
        // The limit comes before the miss and CAS answers: memcached's glue checked it
        // first when it was a separate read, and the replies stay as they were.
        let current_len = item
            .as_ref()
            .and_then(|i| i.str_value())
            .map_or(0, <[u8]>::len);
        if current_len + data.len() > max_len {
            return Err(StoreError::TooLarge);
        }
        let Some(item) = item else {
            return Ok(if cas != 0 {
                WriteOutcome::NotFound
            } else {
                WriteOutcome::NotStored
            });
        };
        if cas != 0 && item.cas() != cas {
            return Ok(WriteOutcome::Exists);
        }
        let Some(old) = item.value_bytes() else {
            return Ok(WriteOutcome::NotStored);
        };
        let (old_charged, flags, deadline) = (item.charge(), item.flags(), item.deadline());
        let charge = ctx
            .budget
            .charge(old_charged, old_charged + data.len() as u64)?;
        let cas = ctx.new_cas();
        let parts: [&[u8]; 2] = match side {
            Side::Append => [&old, data],
            Side::Prepend => [data, &old],
        };
        let item = self.put(
            key,
            Item::new_str(key, &parts, flags, cas),
            deadline,
            ctx.now,
        );
        charge.commit();
        ctx.applied(Mutation::Put {
            key,
            value: item.str_value().unwrap_or_default(),
            flags,
            cas,
            deadline,
        });
        Ok(WriteOutcome::Stored(cas))
    }

    pub fn remove_if_string(&mut self, key: &[u8], cas: u64, ctx: &Ctx<'_>) -> RemoveOutcome {
        match self.live_str(key, ctx) {
            None => RemoveOutcome::NotFound,
            Some(item) if cas != 0 && item.cas() != cas => RemoveOutcome::Exists,
            Some(_) => {
                self.remove(key, ctx);
                ctx.applied(Mutation::Remove { key });
                RemoveOutcome::Removed
            }
        }
    }

    pub fn add_u64(
        &mut self,
        key: &[u8],
        direction: Direction,
        delta: u64,
        initial: Option<(u64, Option<u64>)>,
        ctx: &Ctx<'_>,
    ) -> Result<CounterOutcome, StoreError> {
        let Some(item) = self.live_str(key, ctx) else {
            let Some((value, deadline)) = initial else {
                return Ok(CounterOutcome::NotFound);
            };
            let text = value.to_string();
            let how = Write {
                condition: crate::Condition::IfNoString,
                flags: 0,
                deadline: DeadlineChange::Set(deadline),
                previous: Previous::Ignore,
            };
            return match self.write(key, text.as_bytes(), how, ctx)?.outcome {
                WriteOutcome::Stored(cas) => Ok(CounterOutcome::Value(value, cas)),
                _ => Ok(CounterOutcome::NotFound),
            };
        };
        let Some(old) = item.str_value() else {
            return Ok(CounterOutcome::NotFound);
        };
        let Some(current) = parse_counter(old) else {
            return Ok(CounterOutcome::NonNumeric);
        };
        let next = match direction {
            Direction::Up => current.wrapping_add(delta),
            Direction::Down => current.saturating_sub(delta),
        };
        let text = next.to_string();
        let old_charged = item.charge();
        let charged = old_charged - old.len() as u64 + text.len() as u64;
        let charge = ctx.budget.charge(old_charged, charged)?;
        let (flags, deadline) = (item.flags(), item.deadline());
        let cas = ctx.new_cas();
        let item = Item::new_str(key, &[text.as_bytes()], flags, cas);
        self.put(key, item, deadline, ctx.now);
        charge.commit();
        ctx.applied(Mutation::Put {
            key,
            value: text.as_bytes(),
            flags,
            cas,
            deadline,
        });
        Ok(CounterOutcome::Value(next, cas))
    }

    /// Takes the live item under `key` out for `RENAME`, its charge travelling with it.
    /// Reports nothing: the caller reports the move once the item has landed.
    pub fn take_for_move<'a>(&mut self, key: &[u8], ctx: &Ctx<'a>) -> Option<Moved<'a>> {
        self.live(key, ctx)?;
        let hash = self.hash(key);
        let found = self.table.find_entry(hash, |item| item.key() == key).ok()?;
        let (item, charge) = unlink(found, ctx.budget);
        Some(Moved { item, charge })
    }

    /// The type of the live item under `key`.
    pub fn kind_of(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Kind> {
        self.live(key, ctx)
            .map(|item| item.coll().map_or(Kind::Str, Value::kind))
    }

    /// The element at `end` of the live list under `key` (`LMOVE` looks before it moves);
    /// `Ok(None)` when the key is missing, WRONGTYPE for another type.
    pub fn list_end(
        &mut self,
        key: &[u8],
        end: End,
        ctx: &Ctx<'_>,
    ) -> Result<Option<Bytes>, StoreError> {
        let Some(item) = self.live(key, ctx) else {
            return Ok(None);
        };
        let Some(Value::List(list)) = item.coll() else {
            return Err(StoreError::WrongType);
        };
        Ok(match end {
            End::Left => list.iter().next().cloned(),
            End::Right => list.iter().next_back().cloned(),
        })
    }

    /// Puts a whole collection under `key` with `deadline` (`RESTORE`): refused with `false`
    /// if the key holds something and `replace` is not set; charged before it applies;
    /// reported whole.
    pub fn put_whole(
        &mut self,
        key: &[u8],
        value: Value,
        deadline: Option<u64>,
        replace: bool,
        ctx: &Ctx<'_>,
    ) -> Result<bool, StoreError> {
        let old = match self.live(key, ctx) {
            Some(_) if !replace => return Ok(false),
            Some(item) => item.charge(),
            None => 0,
        };
        self.check_not_revoked(key, ctx)?;
        let kind = value.kind();
        let mut members = Vec::new();
        value.encode_members(&mut members);
        let item = Item::new_coll(key, value, ctx.new_cas());
        let charge = ctx.budget.charge(old, item.charge())?;
        self.put(key, item, deadline, ctx.now);
        charge.commit();
        ctx.applied(Mutation::PutCollection {
            key,
            kind,
            members: &members,
            deadline,
        });
        Ok(true)
    }

    /// Whether `key` holds a live item.
    pub fn contains(&mut self, key: &[u8], ctx: &Ctx<'_>) -> bool {
        self.live(key, ctx).is_some()
    }

    /// Lands a moved item under `key`, replacing what is there. Never refused for memory:
    /// the item was already charged under its old key, and only the key length changes.
    pub fn land(&mut self, key: &[u8], moved: Moved<'_>, ctx: &Ctx<'_>) {
        if self.remove(key, ctx).is_some() {
            // Replaced silently: the `Put` reported below overwrites it on replay.
        }
        let Moved { item: old, charge } = moved;
        let cas = ctx.new_cas();
        let deadline = old.deadline();
        // A new block: the key lives inside it. A string's value is copied once; a
        // collection moves as a shared pointer.
        let item = match (old.str_value(), old.coll()) {
            (Some(bytes), _) => Item::new_str(key, &[bytes], old.flags(), cas),
            (None, Some(coll)) => Item::new_coll(key, coll.clone(), cas),
            (None, None) => return,
        };
        // The moved charge becomes the new block's: same value, another key length.
        charge.commit_resized(0, item.charge());
        match (item.str_value(), item.coll()) {
            (Some(bytes), _) => ctx.applied(Mutation::Put {
                key,
                value: bytes,
                flags: item.flags(),
                cas,
                deadline,
            }),
            (None, Some(coll)) => {
                let mut members = Vec::new();
                coll.encode_members(&mut members);
                ctx.applied(Mutation::PutCollection {
                    key,
                    kind: coll.kind(),
                    members: &members,
                    deadline,
                });
            }
            (None, None) => {}
        }
        drop(old);
        self.put(key, item, deadline, ctx.now);
    }

    /// Applies a recorded change (journal replay) without conditions, observer or memory
    /// limit: what was acknowledged before a restart must come back even if the limit has
    /// since been lowered. Returns the CAS it restored, if any.
    pub fn restore(&mut self, mutation: &Mutation<'_>, ctx: &Ctx<'_>) -> Option<u64> {
        match *mutation {
            Mutation::Put {
                key,
                value,
                flags,
                cas,
                deadline,
            } => {
                // A deadline that has passed by now is still applied: a later record may
                // extend it (a touch), and only the end of the replay decides what expired.
                self.restore_item(key, Item::new_str(key, &[value], flags, cas), deadline, ctx);
                Some(cas)
            }
            Mutation::PutCollection {
                key,
                kind,
                members,
                deadline,
            } => {
                // The journal checked the encoding when it decoded the record.
                if let Some(value) = Value::decode(kind, members) {
                    let item = match value {
                        Value::Str(bytes) => Item::new_str(key, &[&bytes], 0, 0),
                        coll => Item::new_coll(key, coll, 0),
                    };
                    self.restore_item(key, item, deadline, ctx);
                }
                None
            }
            Mutation::Element { key, op } => {
                // A change to a key that replay does not have (or has with another type) is
                // one that a later record in the same log supersedes: the live store only
                // reports element changes to collections that exist, and a removal or a
                // rewrite of the key after it is journaled too.
                if let Some(item) = self.find_mut(key) {
                    let old = item.charge();
                    if let Some(value) = item.coll_mut()
                        && apply_element(value, &op)
                    {
                        // Replay is never refused: the size is known only after the change.
                        ctx.budget.force_charge(old, item.charge()).commit();
                    }
                }
                None
            }
            Mutation::Remove { key } => {
                self.remove(key, ctx);
                None
            }
            Mutation::Deadline { key, deadline } => {
                self.reschedule(key, deadline);
                None
            }
            Mutation::Revoke { key, until } => {
                self.remove(key, ctx);
                self.file_revocation(key, until, ctx.budget);
                None
            }
            Mutation::Marks {
                key,
                cas,
                stale,
                recache_taken,
            } => {
                self.restore_marks(key, cas, stale, recache_taken);
                Some(cas)
            }
            Mutation::Clear => {
                self.clear(ctx.budget, ctx.now);
                None
            }
        }
    }

    fn restore_item(&mut self, key: &[u8], item: Item, deadline: Option<u64>, ctx: &Ctx<'_>) {
        let old = self.find(key).map_or(0, Item::charge);
        let charge = ctx.budget.force_charge(old, item.charge());
        self.put(key, item, deadline, ctx.now);
        charge.commit();
    }

    /// Every live item, for a snapshot (empty collections left out: they are absent). Keys
    /// are copied out of the blocks; string values are shared.
    pub fn live_entries(&self, now: u64) -> Vec<(Bytes, Entry)> {
        self.table
            .iter()
            .filter(|item| item.is_live(now) && !item.is_empty_collection())
            .map(|item| (Bytes::copy_from_slice(item.key()), item.entry()))
            .collect()
    }

    /// Appends to `out` the live keys accepted by `keep`.
    pub fn keys(
        &self,
        now: u64,
        keep: &mut dyn FnMut(&[u8], &Value) -> bool,
        out: &mut Vec<Bytes>,
    ) {
        for item in &self.table {
            if item.is_live(now) && !item.is_empty_collection() && keep(item.key(), &item.value()) {
                out.push(Bytes::copy_from_slice(item.key()));
            }
        }
    }

    /// One step of `SCAN` within this shard: the live keys whose position (given by `pos`)
    /// is at least `from`, at most `count` of the lowest positions, plus any key sharing the
    /// highest position taken (so the next step can start strictly after it). Appends the
    /// keys accepted by `keep` to `out` and returns the highest position taken, or `None`
    /// when nothing at or after `from` is left.
    pub fn scan(
        &self,
        now: u64,
        from: u64,
        count: usize,
        pos: &dyn Fn(&[u8]) -> u64,
        keep: &mut dyn FnMut(&[u8], &Value) -> bool,
        out: &mut Vec<Bytes>,
    ) -> Option<u64> {
        use std::collections::BinaryHeap;
        // A max-heap of the `count` lowest positions seen: memory is bounded by `count` (and
        // by the shard), not by the keyspace.
        let mut heap: BinaryHeap<(u64, &[u8])> = BinaryHeap::with_capacity(count.min(1024));
        for item in &self.table {
            if !item.is_live(now) || item.is_empty_collection() {
                continue;
            }
            let key = item.key();
            let p = pos(key);
            if p < from {
                continue;
            }
            if heap.len() < count {
                heap.push((p, key));
            } else if heap.peek().is_some_and(|&(top, _)| p < top) {
                heap.pop();
                heap.push((p, key));
            }
        }
        let last = heap.peek()?.0;
        let mut taken: Vec<(u64, &[u8])> = heap.into_vec();
        if taken.len() >= count {
            // Keys tied at the boundary position (a 58-bit hash collision) come along, so
            // that continuing after `last` skips none of them.
            for item in &self.table {
                let key = item.key();
                if item.is_live(now) && pos(key) == last && !taken.iter().any(|(_, k)| *k == key) {
                    taken.push((last, key));
                }
            }
        }
        for (_, key) in taken {
            if let Some(item) = self.find(key)
                && keep(key, &item.value())
            {
                out.push(Bytes::copy_from_slice(key));
            }
        }
        Some(last)
    }

    pub fn clear(&mut self, budget: &Budget, now: u64) {
        let charged: u64 = self.table.iter().map(Item::charge).sum::<u64>()
            + self
                .revoked
                .keys()
                .map(|key| key.len() as u64 + REVOKED_OVERHEAD)
                .sum::<u64>();
        // The whole table leaves at once: its charge is given back when this guard drops.
        let _released = budget.held(charged);
        // Fresh containers rather than `clear()`, so a flushed shard gives its memory back.
        self.table = HashTable::new();
        self.wheel = Wheel::new(now);
        self.revoked = hashbrown::HashMap::new();
        self.revoked_next = u64::MAX;
    }

    /// Hands the due wheel entries (at most about `budget`) to their items: an item whose
    /// `wheel_at` matches and whose deadline has passed is removed; one touched later since
    /// is re-filed; anything else makes the entry stale.
    ///
    /// An entry names its item by the key's 64-bit table hash, not by the key, to keep it at
    /// 16 bytes. It resolves to the item with that hash whose `wheel_at` equals the entry's
    /// deadline. Two keys of one shard sharing a full 64-bit hash (about one chance in 2^64
    /// per pair) could let a stale entry resolve to the other key's item; that item is then
    /// handled as if its own entry had fired: removed only if its own deadline has passed
    /// (reads check deadlines anyway), otherwise re-filed. So a collision can only make an
    /// entry fire early (a re-filing) or leave reclamation to the item's own entry, never
    /// remove a live item.
    pub fn expire_due(
        &mut self,
        ctx: &Ctx<'_>,
        budget: usize,
        due: &mut Vec<WheelEntry>,
        lateness: &crate::Histogram,
    ) -> usize {
        self.sweep_revocations(ctx.budget, ctx.now);
        due.clear();
        self.wheel.drain_due(ctx.now, budget, due);
        let mut removed = 0;
        let hasher = &self.hasher;
        for entry in due.drain(..) {
            let Ok(found) = self.table.find_entry(entry.hash, |item| {
                item.wheel_at() == entry.at && hasher.hash_one(item.key()) == entry.hash
            }) else {
                continue; // Deleted, or re-filed earlier, since it was filed: stale.
            };
            let deadline = found.get().deadline_raw();
            if deadline == 0 {
                found.into_mut().set_wheel_at(0); // Persisted since it was filed.
            } else if deadline > ctx.now {
                // Touched later since it was filed: re-file at the real deadline.
                found.into_mut().set_wheel_at(deadline);
                self.wheel.insert(WheelEntry {
                    hash: entry.hash,
                    at: deadline,
                });
            } else {
                let (item, _released) = unlink(found, ctx.budget);
                lateness.record(ctx.now - deadline);
                ctx.expired(item.key());
                removed += 1;
            }
        }
        removed
    }
}

/// A counter value as memcached reads one: decimal digits, at most 20 of them and within
/// u64, optionally padded with trailing spaces (memcached pads values it shrinks in place).
fn parse_counter(value: &[u8]) -> Option<u64> {
    let end = value.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    let digits = &value[..end];
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

// A signed counter is read as Redis reads one (`string2ll`), with the codecs' parser.
pub(crate) use sessiond_decimal::parse_i64;
