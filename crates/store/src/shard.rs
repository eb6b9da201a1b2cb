//! One shard: a hash map of items plus the timing wheel that indexes their deadlines.
//!
//! Everything here runs under the shard's lock, which [`crate::Store`] takes. The functions
//! implement the semantics of each operation once, for every protocol: the condition checks
//! of `add`/`replace`/`cas`, lazy expiry on access, memory charging before any change, and
//! the `wheel_at` invariant described in the crate documentation.
//!
//! Memcached operations see only string items: a collection is a miss for them (and is
//! overwritten by a plain `set`). The typed operations used by RESP see every item and
//! answer [`StoreError::WrongType`] when a command meets the wrong type.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hashbrown::HashMap;

use crate::budget::{Budget, ITEM_OVERHEAD};
use crate::value::{Kind, Value};
use crate::wheel::{Entry as WheelEntry, Wheel};
use crate::{
    ArithOutcome, Condition, DeadlineChange, DeleteOutcome, ElementOp, Entry, Exists, ItemView,
    Mutation, Observer, SetOutcome, Side, StoreError, WriteOutcome,
};

/// What an operation needs from the store beyond the shard: the time, the budget and the
/// store-wide counters.
pub(crate) struct Ctx<'a> {
    pub now: u64,
    pub budget: &'a Budget,
    pub next_cas: &'a AtomicU64,
    pub total_items: &'a AtomicU64,
    pub expired: &'a AtomicU64,
    pub observer: Option<&'a dyn Observer>,
}

impl Ctx<'_> {
    fn new_cas(&self) -> u64 {
        self.next_cas.fetch_add(1, Ordering::Relaxed)
    }

    fn is_past(&self, deadline: Option<u64>) -> bool {
        deadline.is_some_and(|d| d <= self.now)
    }

    /// Tells the observer about a change just applied. Called with the shard lock held, so
    /// the observer sees the changes to any one key in the order they were applied.
    fn applied(&self, mutation: Mutation<'_>) {
        if let Some(observer) = self.observer {
            observer.applied(&mutation);
        }
    }

    pub(crate) fn applied_remove(&self, key: &[u8]) {
        self.applied(Mutation::Remove { key });
    }

    fn charge(&self, grow_from: u64, to: u64) -> Result<(), StoreError> {
        if self.budget.recharge(grow_from, to) {
            Ok(())
        } else {
            Err(StoreError::OutOfMemory)
        }
    }
}

/// The budget charge of `key` holding `value`.
fn charge_of(key: &[u8], value: &Value) -> u64 {
    key.len() as u64 + value.cost() + ITEM_OVERHEAD
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
        _ => return false,
    }
    true
}

struct Item {
    value: Value,
    flags: u32,
    cas: u64,
    /// Unix ms; 0 means the item never expires.
    deadline: u64,
    /// When this item's live wheel entry fires; 0 means it has none.
    wheel_at: u64,
    /// What the item is charged to the budget now (key, value and overheads), so removing
    /// it releases exactly that without recomputing a collection's size.
    charged: u64,
}

impl Item {
    fn is_live(&self, now: u64) -> bool {
        self.deadline == 0 || self.deadline > now
    }

    fn deadline(&self) -> Option<u64> {
        (self.deadline != 0).then_some(self.deadline)
    }

    /// The memcached view of a string item; `None` for a collection, which memcached
    /// commands treat as absent.
    fn view(&self) -> Option<ItemView> {
        match &self.value {
            Value::Str(value) => Some(ItemView {
                value: value.clone(),
                flags: self.flags,
                cas: self.cas,
                deadline: self.deadline(),
            }),
            _ => None,
        }
    }

    fn entry(&self) -> Entry {
        Entry {
            value: self.value.clone(),
            flags: self.flags,
            cas: self.cas,
            deadline: self.deadline(),
        }
    }

    fn str_len(&self) -> Option<usize> {
        match &self.value {
            Value::Str(s) => Some(s.len()),
            _ => None,
        }
    }
}

pub(crate) struct Shard {
    map: HashMap<Bytes, Item>,
    wheel: Wheel,
}

/// An item taken out of one shard by `RENAME`, on its way to another key.
pub(crate) struct Moved {
    value: Value,
    flags: u32,
    deadline: Option<u64>,
}

impl Shard {
    pub fn new(now: u64) -> Shard {
        Shard {
            map: HashMap::new(),
            wheel: Wheel::new(now),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn wheel_len(&self) -> usize {
        self.wheel.len()
    }

    /// The live item under `key`, removing it first if its deadline has passed (and
    /// telling the observer, which publishes the expiry but journals nothing: the deadline
    /// itself is already recorded). An empty collection, which only a journal replay can
    /// leave behind, is absent and dropped silently.
    fn live(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<&mut Item> {
        let (expired, empty) = match self.map.get(key) {
            None => return None,
            Some(item) => (!item.is_live(ctx.now), item.value.is_empty_collection()),
        };
        if expired {
            self.remove(key, ctx);
            ctx.expired.fetch_add(1, Ordering::Relaxed);
            if let Some(observer) = ctx.observer {
                observer.expired(key);
            }
            return None;
        }
        if empty {
            self.remove(key, ctx);
            return None;
        }
        self.map.get_mut(key)
    }

    /// The live string item under `key`: what memcached commands see.
    fn live_str(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<&mut Item> {
        self.live(key, ctx).filter(|item| item.str_len().is_some())
    }

    fn remove(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Item> {
        let item = self.map.remove(key)?;
        ctx.budget.release(item.charged);
        // The item's wheel entry, if any, is now stale and is dropped when it fires.
        Some(item)
    }

    /// Sets `item`'s deadline, filing a wheel entry only when the new deadline is earlier
    /// than the one already filed (see the crate's `wheel_at` invariant).
    fn schedule(wheel: &mut Wheel, key: &Bytes, item: &mut Item, deadline: Option<u64>) {
        item.deadline = deadline.unwrap_or(0);
        if let Some(at) = deadline
            && (item.wheel_at == 0 || item.wheel_at > at)
        {
            item.wheel_at = at;
            wheel.insert(WheelEntry {
                key: key.clone(),
                at,
            });
        }
    }

    pub fn get(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<ItemView> {
        self.live_str(key, ctx).and_then(|item| item.view())
    }

    pub fn entry(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Entry> {
        self.live(key, ctx).map(|item| item.entry())
    }

    pub fn touch(&mut self, key: &[u8], deadline: Option<u64>, ctx: &Ctx<'_>) -> Option<ItemView> {
        self.live_str(key, ctx)?;
        if ctx.is_past(deadline) {
            let removed = self.remove(key, ctx).and_then(|item| item.view());
            ctx.applied(Mutation::Remove { key });
            return removed;
        }
        let (key, item) = self.map.get_key_value_mut(key)?;
        Self::schedule(&mut self.wheel, key, item, deadline);
        ctx.applied(Mutation::Deadline { key, deadline });
        item.view()
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
        let (answer, change) = decide(&item.value, item.deadline());
        let Some(deadline) = change else {
            return Some(answer);
        };
        if ctx.is_past(deadline) {
            self.remove(key, ctx);
            ctx.applied(Mutation::Remove { key });
            return Some(answer);
        }
        let (key, item) = self.map.get_key_value_mut(key)?;
        Self::schedule(&mut self.wheel, key, item, deadline);
        ctx.applied(Mutation::Deadline { key, deadline });
        Some(answer)
    }

    pub fn store(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        deadline: Option<u64>,
        condition: Condition,
        ctx: &Ctx<'_>,
    ) -> Result<WriteOutcome, StoreError> {
        let old_charged = self.live(key, ctx).map_or(0, |item| item.charged);
        let existing = self.live_str(key, ctx).map(|item| item.cas);
        match (condition, existing) {
            (Condition::Always, _) => {}
            (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => {
                return Ok(WriteOutcome::NotStored);
            }
            (Condition::IfAbsent, None) | (Condition::IfPresent, Some(_)) => {}
            (Condition::IfCas(_), None) => return Ok(WriteOutcome::NotFound),
            (Condition::IfCas(want), Some(cas)) if cas != want => {
                return Ok(WriteOutcome::Exists);
            }
            (Condition::IfCas(_), Some(_)) => {}
        }
        let cas = ctx.new_cas();
        if ctx.is_past(deadline) {
            // Born expired: the write succeeds and leaves nothing alive.
            if self.remove(key, ctx).is_some() {
                ctx.applied(Mutation::Remove { key });
            }
            return Ok(WriteOutcome::Stored(cas));
        }
        self.write_str(key, value, flags, cas, deadline, old_charged, ctx)?;
        Ok(WriteOutcome::Stored(cas))
    }

    /// Replaces whatever `key` holds (charged `old_charged`) by a string, charging the
    /// budget first, and reports the write.
    #[allow(clippy::too_many_arguments)]
    fn write_str(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        cas: u64,
        deadline: Option<u64>,
        old_charged: u64,
        ctx: &Ctx<'_>,
    ) -> Result<(), StoreError> {
        // Copy into an exact-size allocation: the caller's bytes may be a view into a large
        // network buffer that the store must not keep alive.
        let owned = Value::Str(Bytes::copy_from_slice(value));
        let charged = charge_of(key, &owned);
        ctx.charge(old_charged, charged)?;
        ctx.total_items.fetch_add(1, Ordering::Relaxed);
        self.put(key, owned, flags, cas, deadline, charged);
        ctx.applied(Mutation::Put {
            key,
            value,
            flags,
            cas,
            deadline,
        });
        Ok(())
    }

    /// The RESP `SET`: conditions on the key's existence (any type), a deadline that may be
    /// kept, and optionally the old string value.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        exists: Exists,
        deadline: DeadlineChange,
        want_old: bool,
        ctx: &Ctx<'_>,
    ) -> Result<SetOutcome, StoreError> {
        let current = self
            .live(key, ctx)
            .map(|item| (item.value.clone(), item.deadline(), item.charged));
        if want_old && matches!(&current, Some((v, _, _)) if v.kind() != Kind::Str) {
            return Err(StoreError::WrongType);
        }
        let old = if want_old {
            current.as_ref().map(|(v, _, _)| v.clone())
        } else {
            None
        };
        let allowed = match exists {
            Exists::Any => true,
            Exists::IfAbsent => current.is_none(),
            Exists::IfPresent => current.is_some(),
        };
        if !allowed {
            return Ok(SetOutcome {
                written: false,
                old,
            });
        }
        let deadline = match deadline {
            DeadlineChange::Set(d) => d,
            DeadlineChange::Keep => current.as_ref().and_then(|(_, d, _)| *d),
        };
        let cas = ctx.new_cas();
        if ctx.is_past(deadline) {
            if self.remove(key, ctx).is_some() {
                ctx.applied(Mutation::Remove { key });
            }
            return Ok(SetOutcome { written: true, old });
        }
        let old_charged = current.as_ref().map_or(0, |(_, _, c)| *c);
        self.write_str(key, value, 0, cas, deadline, old_charged, ctx)?;
        Ok(SetOutcome { written: true, old })
    }

    /// Removes and returns the live item under `key`; with `only_str`, a collection is left
    /// alone and answers [`StoreError::WrongType`] (`GETDEL`).
    pub fn take(
        &mut self,
        key: &[u8],
        only_str: bool,
        ctx: &Ctx<'_>,
    ) -> Result<Option<Value>, StoreError> {
        match self.live(key, ctx) {
            None => return Ok(None),
            Some(item) if only_str && item.str_len().is_none() => {
                return Err(StoreError::WrongType);
            }
            Some(_) => {}
        }
        let item = self.remove(key, ctx);
        ctx.applied(Mutation::Remove { key });
        Ok(item.map(|item| item.value))
    }

    /// Appends to the string under `key`, creating it if missing (`APPEND`); returns the new
    /// length.
    pub fn append(
        &mut self,
        key: &[u8],
        data: &[u8],
        max_len: usize,
        ctx: &Ctx<'_>,
    ) -> Result<usize, StoreError> {
        let (joined, flags, deadline, old_charged) = match self.live(key, ctx) {
            None => (data.to_vec(), 0, None, 0),
            Some(item) => {
                let Value::Str(old) = &item.value else {
                    return Err(StoreError::WrongType);
                };
                if old.len() + data.len() > max_len {
                    return Err(StoreError::TooLarge);
                }
                let mut joined = Vec::with_capacity(old.len() + data.len());
                joined.extend_from_slice(old);
                joined.extend_from_slice(data);
                (joined, item.flags, item.deadline(), item.charged)
            }
        };
        if joined.len() > max_len {
            return Err(StoreError::TooLarge);
        }
        let cas = ctx.new_cas();
        self.write_str(key, &joined, flags, cas, deadline, old_charged, ctx)?;
        Ok(joined.len())
    }

    /// Adds `delta` to the signed decimal under `key`, creating it from 0 (`INCRBY`),
    /// keeping its deadline.
    pub fn incr_by(&mut self, key: &[u8], delta: i64, ctx: &Ctx<'_>) -> Result<i64, StoreError> {
        let (current, flags, deadline, old_charged) = match self.live(key, ctx) {
            None => (0, 0, None, 0),
            Some(item) => {
                let Value::Str(old) = &item.value else {
                    return Err(StoreError::WrongType);
                };
                let current = parse_i64(old).ok_or(StoreError::NotInteger)?;
                (current, item.flags, item.deadline(), item.charged)
            }
        };
        let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let cas = ctx.new_cas();
        self.write_str(
            key,
            next.to_string().as_bytes(),
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
    /// collection when `create` is set, and otherwise gives `Ok(None)` without calling
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
        create: bool,
        reserve: u64,
        ctx: &Ctx<'_>,
        apply: impl FnOnce(&mut Value, &mut Vec<Op>) -> R,
    ) -> Result<Option<R>, StoreError> {
        let exists = match self.live(key, ctx) {
            Some(item) if item.value.kind() != kind => return Err(StoreError::WrongType),
            Some(_) => true,
            None if !create => return Ok(None),
            None => false,
        };
        let reserve = if exists {
            reserve
        } else {
            reserve + key.len() as u64 + ITEM_OVERHEAD
        };
        ctx.charge(0, reserve)?;
        let mut ops = Vec::new();
        if !exists {
            let mut value = Value::empty(kind);
            let answer = apply(&mut value, &mut ops);
            if ops.is_empty() || value.is_empty_collection() {
                ctx.budget.release(reserve);
                return Ok(Some(answer));
            }
            let charged = charge_of(key, &value);
            ctx.budget.force_recharge(reserve, charged);
            let cas = ctx.new_cas();
            let mut members = Vec::new();
            value.encode_members(&mut members);
            self.put(key, value, 0, cas, None, charged);
            ctx.applied(Mutation::PutCollection {
                key,
                kind,
                members: &members,
                deadline: None,
            });
            return Ok(Some(answer));
        }
        let Some(item) = self.map.get_mut(key) else {
            ctx.budget.release(reserve);
            return Ok(None);
        };
        let answer = apply(&mut item.value, &mut ops);
        let charged = charge_of(key, &item.value);
        ctx.budget.force_recharge(item.charged + reserve, charged);
        item.charged = charged;
        if ops.is_empty() {
            return Ok(Some(answer));
        }
        item.cas = ctx.new_cas();
        if item.value.is_empty_collection() {
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

    /// Inserts or overwrites an item whose budget has already been charged.
    fn put(
        &mut self,
        key: &[u8],
        value: Value,
        flags: u32,
        cas: u64,
        deadline: Option<u64>,
        charged: u64,
    ) {
        if let Some((key, item)) = self.map.get_key_value_mut(key) {
            item.value = value;
            item.flags = flags;
            item.cas = cas;
            item.charged = charged;
            Self::schedule(&mut self.wheel, key, item, deadline);
        } else {
            let key = Bytes::copy_from_slice(key);
            let mut item = Item {
                value,
                flags,
                cas,
                deadline: 0,
                wheel_at: 0,
                charged,
            };
            Self::schedule(&mut self.wheel, &key, &mut item, deadline);
            self.map.insert(key, item);
        }
    }

    pub fn concat(
        &mut self,
        key: &[u8],
        data: &[u8],
        side: Side,
        cas: u64,
        ctx: &Ctx<'_>,
    ) -> Result<WriteOutcome, StoreError> {
        let Some(item) = self.live_str(key, ctx) else {
            return Ok(if cas != 0 {
                WriteOutcome::NotFound
            } else {
                WriteOutcome::NotStored
            });
        };
        if cas != 0 && item.cas != cas {
            return Ok(WriteOutcome::Exists);
        }
        let Value::Str(old) = &item.value else {
            return Ok(WriteOutcome::NotStored);
        };
        let charged = item.charged + data.len() as u64;
        ctx.charge(item.charged, charged)?;
        let mut joined = Vec::with_capacity(old.len() + data.len());
        match side {
            Side::Append => {
                joined.extend_from_slice(old);
                joined.extend_from_slice(data);
            }
            Side::Prepend => {
                joined.extend_from_slice(data);
                joined.extend_from_slice(old);
            }
        }
        let joined = Bytes::from(joined);
        item.value = Value::Str(joined.clone());
        item.charged = charged;
        item.cas = ctx.new_cas();
        let (flags, cas, deadline) = (item.flags, item.cas, item.deadline());
        ctx.applied(Mutation::Put {
            key,
            value: &joined,
            flags,
            cas,
            deadline,
        });
        Ok(WriteOutcome::Stored(cas))
    }

    pub fn delete(&mut self, key: &[u8], cas: u64, ctx: &Ctx<'_>) -> DeleteOutcome {
        match self.live_str(key, ctx) {
            None => DeleteOutcome::NotFound,
            Some(item) if cas != 0 && item.cas != cas => DeleteOutcome::Exists,
            Some(_) => {
                self.remove(key, ctx);
                ctx.applied(Mutation::Remove { key });
                DeleteOutcome::Deleted
            }
        }
    }

    pub fn arith(
        &mut self,
        key: &[u8],
        incr: bool,
        delta: u64,
        initial: Option<(u64, Option<u64>)>,
        ctx: &Ctx<'_>,
    ) -> Result<ArithOutcome, StoreError> {
        let Some(item) = self.live_str(key, ctx) else {
            let Some((value, deadline)) = initial else {
                return Ok(ArithOutcome::NotFound);
            };
            let text = value.to_string();
            return match self.store(key, text.as_bytes(), 0, deadline, Condition::IfAbsent, ctx)? {
                WriteOutcome::Stored(cas) => Ok(ArithOutcome::Value(value, cas)),
                _ => Ok(ArithOutcome::NotFound),
            };
        };
        let Value::Str(old) = &item.value else {
            return Ok(ArithOutcome::NotFound);
        };
        let Some(current) = parse_counter(old) else {
            return Ok(ArithOutcome::NonNumeric);
        };
        let next = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let text = Bytes::from(next.to_string().into_bytes());
        let charged = item.charged - old.len() as u64 + text.len() as u64;
        ctx.charge(item.charged, charged)?;
        item.value = Value::Str(text.clone());
        item.charged = charged;
        item.cas = ctx.new_cas();
        let (flags, cas, deadline) = (item.flags, item.cas, item.deadline());
        ctx.applied(Mutation::Put {
            key,
            value: &text,
            flags,
            cas,
            deadline,
        });
        Ok(ArithOutcome::Value(next, cas))
    }

    /// Takes the live item under `key` out for `RENAME`, releasing its charge. Reports
    /// nothing: the caller reports the move once the item has landed.
    pub fn take_for_move(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Moved> {
        self.live(key, ctx)?;
        let item = self.remove(key, ctx)?;
        Some(Moved {
            deadline: item.deadline(),
            value: item.value,
            flags: item.flags,
        })
    }

    /// Whether `key` holds a live item.
    pub fn contains(&mut self, key: &[u8], ctx: &Ctx<'_>) -> bool {
        self.live(key, ctx).is_some()
    }

    /// Lands a moved item under `key`, replacing what is there. Never refused for memory:
    /// the item was already charged under its old key, and only the key length changes.
    pub fn land(&mut self, key: &[u8], moved: Moved, ctx: &Ctx<'_>) {
        if self.remove(key, ctx).is_some() {
            // Replaced silently: the `Put` reported below overwrites it on replay.
        }
        let charged = charge_of(key, &moved.value);
        ctx.budget.force_recharge(0, charged);
        let cas = ctx.new_cas();
        let Moved {
            value,
            flags,
            deadline,
        } = moved;
        match &value {
            Value::Str(bytes) => ctx.applied(Mutation::Put {
                key,
                value: bytes,
                flags,
                cas,
                deadline,
            }),
            other => {
                let mut members = Vec::new();
                other.encode_members(&mut members);
                ctx.applied(Mutation::PutCollection {
                    key,
                    kind: other.kind(),
                    members: &members,
                    deadline,
                });
            }
        }
        self.put(key, value, flags, cas, deadline, charged);
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
                let value = Value::Str(Bytes::copy_from_slice(value));
                self.restore_value(key, value, flags, cas, deadline, ctx);
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
                    self.restore_value(key, value, 0, 0, deadline, ctx);
                }
                None
            }
            Mutation::Element { key, op } => {
                // A change to a key that replay does not have (or has with another type) is
                // one that a later record in the same log supersedes: the live store only
                // reports element changes to collections that exist, and a removal or a
                // rewrite of the key after it is journaled too.
                if let Some(item) = self.map.get_mut(key)
                    && apply_element(&mut item.value, &op)
                {
                    let charged = charge_of(key, &item.value);
                    ctx.budget.force_recharge(item.charged, charged);
                    item.charged = charged;
                }
                None
            }
            Mutation::Remove { key } => {
                self.remove(key, ctx);
                None
            }
            Mutation::Deadline { key, deadline } => {
                if let Some((key, item)) = self.map.get_key_value_mut(key) {
                    Self::schedule(&mut self.wheel, key, item, deadline);
                }
                None
            }
            Mutation::Clear => {
                self.clear(ctx.budget, ctx.now);
                None
            }
        }
    }

    fn restore_value(
        &mut self,
        key: &[u8],
        value: Value,
        flags: u32,
        cas: u64,
        deadline: Option<u64>,
        ctx: &Ctx<'_>,
    ) {
        let old = self.map.get(key).map_or(0, |item| item.charged);
        let charged = charge_of(key, &value);
        ctx.budget.force_recharge(old, charged);
        self.put(key, value, flags, cas, deadline, charged);
    }

    /// Every live item, for a snapshot (empty collections left out: they are absent).
    pub fn live_entries(&self, now: u64) -> Vec<(Bytes, Entry)> {
        self.map
            .iter()
            .filter(|(_, item)| item.is_live(now) && !item.value.is_empty_collection())
            .map(|(key, item)| (key.clone(), item.entry()))
            .collect()
    }

    /// Every live string item, for memcached-era callers.
    pub fn live_items(&self, now: u64) -> Vec<(Bytes, ItemView)> {
        self.map
            .iter()
            .filter(|(_, item)| item.is_live(now))
            .filter_map(|(key, item)| Some((key.clone(), item.view()?)))
            .collect()
    }

    /// Appends to `out` the live keys accepted by `keep`.
    pub fn keys(
        &self,
        now: u64,
        keep: &mut dyn FnMut(&[u8], &Value) -> bool,
        out: &mut Vec<Bytes>,
    ) {
        for (key, item) in &self.map {
            if item.is_live(now) && !item.value.is_empty_collection() && keep(key, &item.value) {
                out.push(key.clone());
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
        let mut heap: BinaryHeap<(u64, &Bytes)> = BinaryHeap::with_capacity(count.min(1024));
        for (key, item) in &self.map {
            if !item.is_live(now) || item.value.is_empty_collection() {
                continue;
            }
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
        let mut taken: Vec<(u64, &Bytes)> = heap.into_vec();
        if taken.len() >= count {
            // Keys tied at the boundary position (a 58-bit hash collision) come along, so
            // that continuing after `last` skips none of them.
            for (key, item) in &self.map {
                if item.is_live(now) && pos(key) == last && !taken.iter().any(|(_, k)| *k == key) {
                    taken.push((last, key));
                }
            }
        }
        for (_, key) in taken {
            if let Some(item) = self.map.get(key)
                && keep(key, &item.value)
            {
                out.push(key.clone());
            }
        }
        Some(last)
    }

    pub fn clear(&mut self, budget: &Budget, now: u64) {
        let charged: u64 = self.map.values().map(|item| item.charged).sum();
        budget.release(charged);
        // Fresh containers rather than `clear()`, so a flushed shard gives its memory back.
        self.map = HashMap::new();
        self.wheel = Wheel::new(now);
    }

    pub fn expire_due(
        &mut self,
        ctx: &Ctx<'_>,
        budget: usize,
        due: &mut Vec<WheelEntry>,
        on_expired: &mut dyn FnMut(&[u8]),
    ) -> usize {
        due.clear();
        self.wheel.drain_due(ctx.now, budget, due);
        let mut removed = 0;
        for entry in due.drain(..) {
            let Some(item) = self.map.get_mut(&entry.key[..]) else {
                continue; // Deleted since it was filed: stale.
            };
            if item.wheel_at != entry.at {
                continue; // Re-filed earlier since: stale.
            }
            if item.deadline == 0 {
                item.wheel_at = 0; // Persisted since it was filed.
            } else if item.deadline > ctx.now {
                // Touched later since it was filed: re-file at the real deadline.
                item.wheel_at = item.deadline;
                self.wheel.insert(WheelEntry {
                    key: entry.key,
                    at: item.deadline,
                });
            } else {
                self.remove(&entry.key, ctx);
                ctx.expired.fetch_add(1, Ordering::Relaxed);
                on_expired(&entry.key);
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

/// A signed counter as Redis reads one (`string2ll`): an optional `-`, digits without a
/// leading zero (except `0` itself), within i64, at most 20 bytes; no spaces, no `+`.
pub fn parse_i64(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let magnitude = digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}
