//! One shard: a hash map of items plus the timing wheel that indexes their deadlines.
//!
//! Everything here runs under the shard's lock, which [`crate::Store`] takes. The functions
//! implement the semantics of each operation once, for every protocol: the condition checks
//! of `add`/`replace`/`cas`, lazy expiry on access, memory charging before any change, and
//! the `wheel_at` invariant described in the crate documentation.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hashbrown::HashMap;

use crate::budget::{Budget, item_cost};
use crate::wheel::{Entry, Wheel};
use crate::{
    ArithOutcome, Condition, DeleteOutcome, ItemView, Mutation, Observer, Side, StoreError,
    WriteOutcome,
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
}

struct Item {
    value: Bytes,
    flags: u32,
    cas: u64,
    /// Unix ms; 0 means the item never expires.
    deadline: u64,
    /// When this item's live wheel entry fires; 0 means it has none.
    wheel_at: u64,
}

impl Item {
    fn is_live(&self, now: u64) -> bool {
        self.deadline == 0 || self.deadline > now
    }

    fn view(&self) -> ItemView {
        ItemView {
            value: self.value.clone(),
            flags: self.flags,
            cas: self.cas,
            deadline: (self.deadline != 0).then_some(self.deadline),
        }
    }
}

pub(crate) struct Shard {
    map: HashMap<Bytes, Item>,
    wheel: Wheel,
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

    /// The live item under `key`, removing it first if its deadline has passed.
    fn live(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<&mut Item> {
        let expired = match self.map.get(key) {
            None => return None,
            Some(item) => !item.is_live(ctx.now),
        };
        if expired {
            self.remove(key, ctx);
            ctx.expired.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.map.get_mut(key)
    }

    fn remove(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<Item> {
        let item = self.map.remove(key)?;
        ctx.budget.release(item_cost(key.len(), item.value.len()));
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
            wheel.insert(Entry {
                key: key.clone(),
                at,
            });
        }
    }

    pub fn get(&mut self, key: &[u8], ctx: &Ctx<'_>) -> Option<ItemView> {
        self.live(key, ctx).map(|item| item.view())
    }

    pub fn touch(&mut self, key: &[u8], deadline: Option<u64>, ctx: &Ctx<'_>) -> Option<ItemView> {
        self.live(key, ctx)?;
        if ctx.is_past(deadline) {
            let removed = self.remove(key, ctx).map(|item| item.view());
            ctx.applied(Mutation::Remove { key });
            return removed;
        }
        let (key, item) = self.map.get_key_value_mut(key)?;
        Self::schedule(&mut self.wheel, key, item, deadline);
        ctx.applied(Mutation::Deadline { key, deadline });
        Some(item.view())
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
        let existing = self.live(key, ctx).map(|item| (item.cas, item.value.len()));
        match (condition, existing) {
            (Condition::Always, _) => {}
            (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => {
                return Ok(WriteOutcome::NotStored);
            }
            (Condition::IfAbsent, None) | (Condition::IfPresent, Some(_)) => {}
            (Condition::IfCas(_), None) => return Ok(WriteOutcome::NotFound),
            (Condition::IfCas(want), Some((cas, _))) if cas != want => {
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
        let old_cost = existing.map_or(0, |(_, len)| item_cost(key.len(), len));
        if !ctx
            .budget
            .recharge(old_cost, item_cost(key.len(), value.len()))
        {
            return Err(StoreError::OutOfMemory);
        }
        // Copy into an exact-size allocation: the caller's bytes may be a view into a large
        // network buffer that the store must not keep alive.
        let owned = Bytes::copy_from_slice(value);
        ctx.total_items.fetch_add(1, Ordering::Relaxed);
        self.put(key, owned, flags, cas, deadline);
        ctx.applied(Mutation::Put {
            key,
            value,
            flags,
            cas,
            deadline,
        });
        Ok(WriteOutcome::Stored(cas))
    }

    /// Inserts or overwrites an item whose budget has already been charged.
    fn put(&mut self, key: &[u8], value: Bytes, flags: u32, cas: u64, deadline: Option<u64>) {
        if let Some((key, item)) = self.map.get_key_value_mut(key) {
            item.value = value;
            item.flags = flags;
            item.cas = cas;
            Self::schedule(&mut self.wheel, key, item, deadline);
        } else {
            let key = Bytes::copy_from_slice(key);
            let mut item = Item {
                value,
                flags,
                cas,
                deadline: 0,
                wheel_at: 0,
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
        let Some(item) = self.live(key, ctx) else {
            return Ok(if cas != 0 {
                WriteOutcome::NotFound
            } else {
                WriteOutcome::NotStored
            });
        };
        if cas != 0 && item.cas != cas {
            return Ok(WriteOutcome::Exists);
        }
        let old_len = item.value.len();
        if !ctx.budget.recharge(
            item_cost(key.len(), old_len),
            item_cost(key.len(), old_len + data.len()),
        ) {
            return Err(StoreError::OutOfMemory);
        }
        let mut joined = Vec::with_capacity(old_len + data.len());
        match side {
            Side::Append => {
                joined.extend_from_slice(&item.value);
                joined.extend_from_slice(data);
            }
            Side::Prepend => {
                joined.extend_from_slice(data);
                joined.extend_from_slice(&item.value);
            }
        }
        item.value = Bytes::from(joined);
        item.cas = ctx.new_cas();
        let (flags, cas, deadline) = (
            item.flags,
            item.cas,
            (item.deadline != 0).then_some(item.deadline),
        );
        ctx.applied(Mutation::Put {
            key,
            value: &item.value,
            flags,
            cas,
            deadline,
        });
        Ok(WriteOutcome::Stored(cas))
    }

    pub fn delete(&mut self, key: &[u8], cas: u64, ctx: &Ctx<'_>) -> DeleteOutcome {
        match self.live(key, ctx) {
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
        let Some(item) = self.live(key, ctx) else {
            let Some((value, deadline)) = initial else {
                return Ok(ArithOutcome::NotFound);
            };
            let text = value.to_string();
            return match self.store(key, text.as_bytes(), 0, deadline, Condition::IfAbsent, ctx)? {
                WriteOutcome::Stored(cas) => Ok(ArithOutcome::Value(value, cas)),
                _ => Ok(ArithOutcome::NotFound),
            };
        };
        let Some(current) = parse_counter(&item.value) else {
            return Ok(ArithOutcome::NonNumeric);
        };
        let next = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let text = next.to_string();
        let old_len = item.value.len();
        if !ctx.budget.recharge(
            item_cost(key.len(), old_len),
            item_cost(key.len(), text.len()),
        ) {
            return Err(StoreError::OutOfMemory);
        }
        item.value = Bytes::from(text.into_bytes());
        item.cas = ctx.new_cas();
        let (flags, cas, deadline) = (
            item.flags,
            item.cas,
            (item.deadline != 0).then_some(item.deadline),
        );
        ctx.applied(Mutation::Put {
            key,
            value: &item.value,
            flags,
            cas,
            deadline,
        });
        Ok(ArithOutcome::Value(next, cas))
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
                let old = self
                    .map
                    .get(key)
                    .map_or(0, |item| item_cost(key.len(), item.value.len()));
                ctx.budget
                    .force_recharge(old, item_cost(key.len(), value.len()));
                self.put(key, Bytes::copy_from_slice(value), flags, cas, deadline);
                Some(cas)
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

    /// Every live item, for a snapshot.
    pub fn live_items(&self, now: u64) -> Vec<(Bytes, ItemView)> {
        self.map
            .iter()
            .filter(|(_, item)| item.is_live(now))
            .map(|(key, item)| (key.clone(), item.view()))
            .collect()
    }

    pub fn clear(&mut self, budget: &Budget, now: u64) {
        let charged: u64 = self
            .map
            .iter()
            .map(|(k, item)| item_cost(k.len(), item.value.len()))
            .sum();
        budget.release(charged);
        // Fresh containers rather than `clear()`, so a flushed shard gives its memory back.
        self.map = HashMap::new();
        self.wheel = Wheel::new(now);
    }

    pub fn expire_due(
        &mut self,
        ctx: &Ctx<'_>,
        budget: usize,
        due: &mut Vec<Entry>,
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
                self.wheel.insert(Entry {
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
