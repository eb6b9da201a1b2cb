//! Operations on lists (RESP only: memcached never sees them).
//!
//! Like the other collections' ([`crate::collections`]), each is a closure over the list run
//! by the shard's `elements`, which checks the type, charges the budget before anything
//! changes, removes a list left empty and reports the changes. A list change is journaled
//! as the positional operation it was (push, pop, set, insert, remove by value, trim) with
//! the list's version after it, which makes replay exact (see [`crate::List`]). Indexes
//! follow Redis: negative counts from the tail, and a range is clamped, never an error.
//!
//! `LMOVE` between two keys locks both shards in index order, like `RENAME`, and reports
//! the push to the destination before the pop from the source (a crash between the two
//! records duplicates the element rather than losing it, as `RENAME` prefers).

use std::sync::Arc;

use bytes::Bytes;

use crate::shard::{Missing, Op, Shard};
use crate::{ELEMENT_OVERHEAD, End, Kind, Store, StoreError, Value};

/// What [`Store::list_set`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSetOutcome {
    /// The element was replaced.
    Set,
    /// The key holds no list.
    NoSuchKey,
    /// The index is outside the list.
    OutOfRange,
}

/// Where [`Store::list_insert`] puts the new element, relative to the pivot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before the pivot (nearer the head).
    Before,
    /// After the pivot.
    After,
}

/// `index` (negative counts from the tail) as a position in a list of `len`, if inside.
pub fn list_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let index = if index < 0 { index + len } else { index };
    (0..len).contains(&index).then_some(index as usize)
}

/// Redis's `start`/`stop` (inclusive, negative from the tail, clamped) as a half-open range
/// of a list of `len`; empty when nothing is selected.
pub fn list_range(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return (0, 0);
    }
    (start as usize, (stop.min(len - 1) + 1) as usize)
}

fn cost(item: &[u8]) -> u64 {
    item.len() as u64 + ELEMENT_OVERHEAD
}

impl Store {
    /// Pushes `items` one by one at `end` (so `LPUSH k a b` leaves `b a`), creating the
    /// list if `create` (`LPUSH`; `LPUSHX` does not); returns the new length, 0 when the key
    /// was missing and not created.
    pub fn list_push(
        &self,
        key: &[u8],
        items: &[&[u8]],
        end: End,
        create: bool,
        now: u64,
    ) -> Result<usize, StoreError> {
        let reserve = items.iter().map(|i| cost(i)).sum();
        let missing = if create {
            Missing::Create
        } else {
            Missing::Skip
        };
        let result = self.shard(key, now).elements(
            key,
            Kind::List,
            missing,
            reserve,
            &self.ctx(now),
            |value, ops| {
                let Value::List(list) = value else { return 0 };
                let list = Arc::make_mut(list);
                for item in items {
                    let item = Bytes::copy_from_slice(item);
                    let version = list.push(end, item.clone());
                    ops.push(Op::ListPush(end, item, version));
                }
                list.len()
            },
        );
        result.map(|n| n.unwrap_or(0))
    }

    /// Removes up to `count` elements from `end`, in the order they come off; `None` when
    /// the key is missing (a list is never empty).
    pub fn list_pop(
        &self,
        key: &[u8],
        end: End,
        count: usize,
        now: u64,
    ) -> Result<Option<Vec<Bytes>>, StoreError> {
        self.shard(key, now).elements(
            key,
            Kind::List,
            Missing::Skip,
            0,
            &self.ctx(now),
            |value, ops| pop(value, ops, end, count),
        )
    }

    /// [`Store::list_pop`] for a reply that must fit a limit: `fits` is asked, under the
    /// shard lock and before anything is popped, about the length of every element that
    /// would come off, in order; one `false` pops nothing and is [`StoreError::TooLarge`].
    /// (Checked apart from the pop, pushes in between could make the popped — and
    /// journaled — elements a reply the connection then refuses.)
    pub fn list_pop_within(
        &self,
        key: &[u8],
        end: End,
        count: usize,
        mut fits: impl FnMut(usize) -> bool,
        now: u64,
    ) -> Result<Option<Vec<Bytes>>, StoreError> {
        self.shard(key, now)
            .elements(
                key,
                Kind::List,
                Missing::Skip,
                0,
                &self.ctx(now),
                |value, ops| {
                    if let Value::List(list) = value {
                        let n = count.min(list.len());
                        let all_fit = match end {
                            End::Left => list.iter().take(n).all(|i| fits(i.len())),
                            End::Right => list.iter().rev().take(n).all(|i| fits(i.len())),
                        };
                        if !all_fit {
                            return Err(StoreError::TooLarge);
                        }
                    }
                    Ok(pop(value, ops, end, count))
                },
            )?
            .transpose()
    }

    /// Replaces the element at `index` (negative from the tail).
    pub fn list_set(
        &self,
        key: &[u8],
        index: i64,
        item: &[u8],
        now: u64,
    ) -> Result<ListSetOutcome, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::List,
            Missing::Skip,
            cost(item),
            &self.ctx(now),
            |value, ops| {
                let Value::List(list) = value else {
                    return ListSetOutcome::NoSuchKey;
                };
                let Some(at) = list_index(index, list.len()) else {
                    return ListSetOutcome::OutOfRange;
                };
                let item = Bytes::copy_from_slice(item);
                let version = Arc::make_mut(list).set(at, item.clone());
                ops.push(Op::ListSet(at as u64, item, version));
                ListSetOutcome::Set
            },
        );
        result.map(|n| n.unwrap_or(ListSetOutcome::NoSuchKey))
    }

    /// Inserts `item` before or after the first element equal to `pivot`; returns the new
    /// length, `-1` when the pivot is not there, `0` when the key is missing (as `LINSERT`
    /// answers).
    pub fn list_insert(
        &self,
        key: &[u8],
        place: Place,
        pivot: &[u8],
        item: &[u8],
        now: u64,
    ) -> Result<i64, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::List,
            Missing::Skip,
            cost(item),
            &self.ctx(now),
            |value, ops| {
                let Value::List(list) = value else { return 0 };
                let Some(found) = list.iter().position(|e| e[..] == *pivot) else {
                    return -1;
                };
                let at = match place {
                    Place::Before => found,
                    Place::After => found + 1,
                };
                let item = Bytes::copy_from_slice(item);
                let list = Arc::make_mut(list);
                let version = list.insert(at, item.clone());
                ops.push(Op::ListInsert(at as u64, item, version));
                list.len() as i64
            },
        );
        result.map(|n| n.unwrap_or(0))
    }

    /// Removes elements equal to `item`: the first `count` from the head when positive, the
    /// last `-count` when negative, all when 0; returns how many.
    pub fn list_remove(
        &self,
        key: &[u8],
        count: i64,
        item: &[u8],
        now: u64,
    ) -> Result<usize, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::List,
            Missing::Skip,
            0,
            &self.ctx(now),
            |value, ops| {
                let Value::List(list) = value else { return 0 };
                if !list.iter().any(|e| e[..] == *item) {
                    return 0;
                }
                let list = Arc::make_mut(list);
                let removed = list.remove_matching(count, item);
                ops.push(Op::ListRem(
                    count,
                    Bytes::copy_from_slice(item),
                    list.version(),
                ));
                removed
            },
        );
        result.map(|n| n.unwrap_or(0))
    }

    /// Keeps only the elements from `start` to `stop` (inclusive, negative from the tail,
    /// clamped; an empty selection removes the key).
    pub fn list_trim(&self, key: &[u8], start: i64, stop: i64, now: u64) -> Result<(), StoreError> {
        self.shard(key, now).elements(
            key,
            Kind::List,
            Missing::Skip,
            0,
            &self.ctx(now),
            |value, ops| {
                let Value::List(list) = value else { return };
                let (from, to) = list_range(start, stop, list.len());
                if from == 0 && to == list.len() {
                    return;
                }
                let version = Arc::make_mut(list).trim(from, to);
                ops.push(Op::ListTrim(from as u64, to as u64, version));
            },
        )?;
        Ok(())
    }

    /// Replaces whatever `key` holds by a new list of `items` (`SORT … STORE`); no items
    /// removes the key. Returns the new length. The list is built first and put whole,
    /// charged (old value out, new in) in one step under the shard lock, so a refusal for
    /// memory leaves the old value in place.
    pub fn list_replace(&self, key: &[u8], items: &[Bytes], now: u64) -> Result<usize, StoreError> {
        let mut shard = self.shard(key, now);
        let ctx = self.ctx(now);
        if items.is_empty() {
            shard.take(key, crate::shard::Accept::Any, &ctx)?;
            return Ok(0);
        }
        let mut list = crate::List::default();
        for item in items {
            list.push(End::Right, item.clone());
        }
        let len = list.len();
        shard.put_whole(key, Value::List(Arc::new(list)), None, true, &ctx)?;
        Ok(len)
    }

    /// Puts the whole collection `value` under `key` with `deadline` (`RESTORE` of a hash,
    /// set, sorted set or list; a string goes through [`Store::write`]): `Ok(false)` when
    /// the key exists and `replace` is not set. Charged to the budget before it applies.
    pub fn put_collection(
        &self,
        key: &[u8],
        value: Value,
        deadline: Option<u64>,
        replace: bool,
        now: u64,
    ) -> Result<bool, StoreError> {
        if value.kind() == Kind::Str || value.is_empty_collection() {
            return Err(StoreError::WrongType);
        }
        self.shard(key, now)
            .put_whole(key, value, deadline, replace, &self.ctx(now))
    }

    /// Moves the element at `from` of the list under `src` to `to` of the list under `dst`
    /// (created if missing): `LMOVE`. `Ok(None)` when `src` is missing; WRONGTYPE when
    /// either key holds another type (the source is checked first, as Redis does).
    pub fn list_move(
        &self,
        src: &[u8],
        dst: &[u8],
        from: End,
        to: End,
        now: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        self.apply_pending_flush(now);
        let ctx = self.ctx(now);
        let (a, b) = (self.shard_index(src), self.shard_index(dst));
        if src == dst {
            let result = self.lock(a).elements(
                src,
                Kind::List,
                Missing::Skip,
                ELEMENT_OVERHEAD,
                &ctx,
                |value, ops| {
                    let Value::List(list) = value else {
                        return None;
                    };
                    let list = Arc::make_mut(list);
                    let item = list.pop(from, 1).pop()?;
                    ops.push(Op::ListPop(from, 1, list.version()));
                    let version = list.push(to, item.clone());
                    ops.push(Op::ListPush(to, item.clone(), version));
                    Some(item)
                },
            );
            return result.map(Option::flatten);
        }
        let mut first = self.lock(a.min(b));
        let mut second = (a != b).then(|| self.lock(a.max(b)));
        let (src_shard, dst_shard): (&mut Shard, Option<&mut Shard>) = match &mut second {
            None => (&mut *first, None),
            Some(second) if a < b => (&mut *first, Some(&mut **second)),
            Some(second) => (&mut **second, Some(&mut *first)),
        };
        move_between(src_shard, dst_shard, src, dst, from, to, &ctx)
    }
}

/// The body of [`Store::list_move`] for two keys, with their shards locked (`dst_shard`
/// `None`: the same shard).
fn move_between(
    src_shard: &mut Shard,
    dst_shard: Option<&mut Shard>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    ctx: &crate::shard::Ctx<'_>,
) -> Result<Option<Bytes>, StoreError> {
    let Some(item) = src_shard.list_end(src, from, ctx)? else {
        return Ok(None);
    };
    {
        let dst_shard: &mut Shard = match dst_shard {
            Some(shard) => shard,
            None => &mut *src_shard,
        };
        if dst_shard.kind_of(dst, ctx).is_some_and(|k| k != Kind::List) {
            return Err(StoreError::WrongType);
        }
        // The push first: it is the step that can be refused (memory, a revoked key), and
        // then nothing has changed.
        dst_shard.elements(
            dst,
            Kind::List,
            Missing::Create,
            cost(&item),
            ctx,
            |value, ops| {
                let Value::List(list) = value else { return };
                let version = Arc::make_mut(list).push(to, item.clone());
                ops.push(Op::ListPush(to, item.clone(), version));
            },
        )?;
    }
    src_shard.elements(src, Kind::List, Missing::Skip, 0, ctx, |value, ops| {
        pop(value, ops, from, 1)
    })?;
    Ok(Some(item))
}

/// Pops up to `count` elements from `end` of the list in `value`.
fn pop(value: &mut Value, ops: &mut Vec<Op>, end: End, count: usize) -> Vec<Bytes> {
    let Value::List(list) = value else {
        return Vec::new();
    };
    if list.is_empty() || count == 0 {
        return Vec::new();
    }
    let list = Arc::make_mut(list);
    let items = list.pop(end, count);
    ops.push(Op::ListPop(end, items.len() as u64, list.version()));
    items
}
