//! Operations on hashes, sets and sorted sets (RESP only: memcached never sees them).
//!
//! Each one is a closure over the collection run by the shard's `elements`,
//! which holds the shard lock, checks the type, charges the budget for the most the change
//! can grow before anything changes, and reports the element changes to the observer. The
//! closures only edit the collection and list what they did; a closure that changes nothing
//! leaves the collection, its CAS and the journal untouched.

use std::sync::Arc;

use bytes::Bytes;

use crate::shard::parse_i64;
use crate::shard::{Missing, Op};
use crate::{ELEMENT_OVERHEAD, Kind, Store, StoreError, Value, ZAddFlags, ZIncr};

impl Store {
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
            Missing::Create,
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
        result.map(|n| n.unwrap_or(0))
    }

    /// Removes hash fields; returns how many existed.
    pub fn hash_remove(&self, key: &[u8], fields: &[&[u8]], now: u64) -> Result<usize, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::Hash,
            Missing::Skip,
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
    pub fn hash_add_i64(
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
            Missing::Create,
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
        result?.unwrap_or(Ok(delta))
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
            Missing::Create,
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
        result.map(|n| n.unwrap_or(0))
    }

    /// Removes members from a set; returns how many existed.
    pub fn set_remove(&self, key: &[u8], members: &[&[u8]], now: u64) -> Result<usize, StoreError> {
        let result = self.shard(key, now).elements(
            key,
            Kind::Set,
            Missing::Skip,
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
            // `XX` only updates: a missing set stays missing.
            if flags.xx {
                Missing::Skip
            } else {
                Missing::Create
            },
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
        result.map(|n| n.unwrap_or(0))
    }

    /// Adds `delta` to `member`'s score (from 0 if absent), creating the set if missing, as
    /// `flags` allow (`ZINCRBY`, `ZADD … INCR`): `nx` only adds, `xx` only updates, `gt`/`lt`
    /// only move the score that way. `Ok(None)` when the flags refused the change.
    pub fn zset_incr(
        &self,
        key: &[u8],
        member: &[u8],
        delta: f64,
        flags: ZAddFlags,
        now: u64,
    ) -> Result<Option<ZIncr>, StoreError> {
        let reserve = 2 * (member.len() as u64 + ELEMENT_OVERHEAD);
        let result = self.shard(key, now).elements(
            key,
            Kind::ZSet,
            if flags.xx {
                Missing::Skip
            } else {
                Missing::Create
            },
            reserve,
            &self.ctx(now),
            |value, ops| {
                let Value::ZSet(zset) = value else {
                    return None;
                };
                let old = zset.score(member);
                let score = old.unwrap_or(0.0) + delta;
                if score.is_nan() {
                    return Some(ZIncr::NotANumber);
                }
                let refused = match old {
                    None => flags.xx,
                    Some(old) => {
                        flags.nx || (flags.gt && score <= old) || (flags.lt && score >= old)
                    }
                };
                if refused {
                    return None;
                }
                if old != Some(score) {
                    let member = Bytes::copy_from_slice(member);
                    Arc::make_mut(zset).insert(member.clone(), score);
                    ops.push(Op::ZSetAdd(member, score));
                }
                Some(ZIncr::Score(score))
            },
        );
        result.map(Option::flatten)
    }

    /// Removes and returns up to `count` members with the lowest scores (the highest with
    /// `highest`), in pop order (`ZPOPMIN`/`ZPOPMAX`, and the blocking pops served for a
    /// waiting client). `Ok(None)` if the key holds nothing.
    pub fn zset_pop(
        &self,
        key: &[u8],
        count: usize,
        highest: bool,
        now: u64,
    ) -> Result<Option<Vec<(f64, Bytes)>>, StoreError> {
        self.shard(key, now).elements(
            key,
            Kind::ZSet,
            Missing::Skip,
            0,
            &self.ctx(now),
            |value, ops| {
                let Value::ZSet(zset) = value else {
                    return Vec::new();
                };
                let picked: Vec<(f64, Bytes)> = if highest {
                    zset.iter()
                        .rev()
                        .take(count)
                        .map(|(s, m)| (s, m.clone()))
                        .collect()
                } else {
                    zset.iter()
                        .take(count)
                        .map(|(s, m)| (s, m.clone()))
                        .collect()
                };
                if picked.is_empty() {
                    return picked;
                }
                let zset = Arc::make_mut(zset);
                for (_, member) in &picked {
                    if let Some(member) = zset.remove(member) {
                        ops.push(Op::ZSetRemove(member));
                    }
                }
                picked
            },
        )
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
            Missing::Skip,
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
}
