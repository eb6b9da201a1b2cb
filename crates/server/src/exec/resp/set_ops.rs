//! Set commands beyond membership: `SMISMEMBER`, `SPOP` and `SRANDMEMBER` with counts,
//! `SMOVE`, the algebra (`SINTER`, `SUNION`, `SDIFF`, their `…STORE` forms, `SINTERCARD`).
//!
//! The commands that read and then change, or read several keys, run holding the script
//! gate exclusively (their rows say `EXCLUSIVE`), so they are atomic for every client.
//! Changes go through the store's per-member operations (journaled per element), except a
//! `…STORE` result, which is written whole (`Store::put_value`) and replaces whatever the
//! destination held, as in Redis. Results are built from the sources, which are already in
//! memory and charged; a stored result is charged again by the store, and a reply is
//! measured against the output limit before it is built.

use std::sync::Arc;

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{DeadlineChange, Set, StoreError, Value};

use super::args::{Args, Handled};
use super::pubsub::{GENERIC, SET};
use super::{Ctx, OutputBudget, error, parse_int, sampling, store_error};

/// The set under `key`, `None` if missing, WRONGTYPE for another type.
pub fn read_set(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Arc<Set>>, Reply> {
    match ctx.store().get(key, ctx.now).map(|e| e.value) {
        None => Ok(None),
        Some(Value::Set(set)) => Ok(Some(set)),
        Some(_) => Err(store_error(StoreError::WrongType)),
    }
}

fn members_reply(ctx: &Ctx<'_>, members: Vec<Bytes>, as_set: bool) -> Handled {
    OutputBudget::check(ctx.shared, members.iter().map(|m| m.len()))?;
    let items = members.into_iter().map(Reply::Bulk).collect();
    Ok(if as_set {
        Reply::Set(items)
    } else {
        Reply::Array(items)
    }
    .into())
}

/// Notifies `event` on `key`, and `del` if the change emptied it.
fn changed(ctx: &Ctx<'_>, event: &str, key: &[u8]) {
    ctx.notify(SET, event, key);
    if ctx.store().get(key, ctx.now).is_none() {
        ctx.notify(GENERIC, "del", key);
    }
}

/// `SMISMEMBER key member [member …]`.
pub fn smismember(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let set = read_set(ctx, args.bytes()?)?;
    Ok(Reply::Array(
        args.map(|m| Reply::Integer(i64::from(set.as_ref().is_some_and(|s| s.contains(m)))))
            .collect(),
    )
    .into())
}

/// A count argument that must not be negative (`SPOP`).
fn positive_count(arg: &[u8]) -> Result<usize, Reply> {
    match parse_int(arg) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(error("ERR value is out of range, must be positive")),
    }
}

/// `SPOP key [count]`.
pub fn spop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let count = args.next().map(|a| positive_count(a)).transpose()?;
    if !args.is_empty() {
        return Err(super::syntax_error());
    }
    let set = read_set(ctx, key)?;
    let Some(set) = set else {
        return Ok(if count.is_some() {
            Reply::Set(Vec::new())
        } else {
            Reply::Null
        }
        .into());
    };
    let members: Vec<&Bytes> = set.iter().collect();
    let picked: Vec<Bytes> = sampling::distinct(members.len(), count.unwrap_or(1))
        .into_iter()
        .map(|i| members[i].clone())
        .collect();
    if picked.is_empty() {
        return Ok(Reply::Set(Vec::new()).into());
    }
    let slices: Vec<&[u8]> = picked.iter().map(|m| &m[..]).collect();
    ctx.store()
        .set_remove(key, &slices, ctx.now)
        .map_err(store_error)?;
    changed(ctx, "spop", key);
    match count {
        None => Ok(Reply::Bulk(picked[0].clone()).into()),
        Some(_) => members_reply(ctx, picked, true),
    }
}

/// `SRANDMEMBER key [count]`: a negative count allows repeats. The reply is measured before
/// it is built, so a huge negative count is refused, not built.
pub fn srandmember(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let count = args
        .next()
        .map(|a| parse_int(a).ok_or_else(super::not_integer))
        .transpose()?;
    if !args.is_empty() {
        return Err(super::syntax_error());
    }
    let set = read_set(ctx, key)?.filter(|s| !s.is_empty());
    let Some(count) = count else {
        return Ok(set
            .map_or(Reply::Null, |s| {
                Reply::Bulk(
                    s.iter()
                        .nth(sampling::below(s.len()))
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .into());
    };
    if count == i64::MIN {
        return Err(error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let Some(set) = set else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    let members: Vec<&Bytes> = set.iter().collect();
    let picks = if count >= 0 {
        sampling::distinct(members.len(), count as usize)
    } else {
        let wanted = count.unsigned_abs() as usize;
        let shortest = members.iter().map(|m| m.len()).min().unwrap_or(0);
        let mut budget = OutputBudget::new(ctx.shared);
        for _ in 0..wanted {
            if !budget.charge(shortest) {
                return Err(budget.refusal());
            }
        }
        sampling::with_repeats(members.len(), wanted)
    };
    let picked = picks.into_iter().map(|i| members[i].clone()).collect();
    members_reply(ctx, picked, false)
}

/// `SMOVE source destination member`.
pub fn smove(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (src, dst, member) = (args.bytes()?, args.bytes()?, args.bytes()?);
    let source = read_set(ctx, src)?;
    read_set(ctx, dst)?;
    if !source.is_some_and(|s| s.contains(member)) {
        return Ok(Reply::Integer(0).into());
    }
    if src == dst {
        return Ok(Reply::Integer(1).into());
    }
    // The destination is checked first for memory: adding may fail, removing cannot.
    ctx.store()
        .set_add(dst, &[&member[..]], ctx.now)
        .map_err(store_error)?;
    ctx.store()
        .set_remove(src, &[&member[..]], ctx.now)
        .map_err(store_error)?;
    changed(ctx, "srem", src);
    ctx.notify(SET, "sadd", dst);
    Ok(Reply::Integer(1).into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

/// The result of `op` over the sets under `keys` (a missing key is an empty set).
fn compute(ctx: &Ctx<'_>, keys: &[Bytes], op: Algebra, limit: usize) -> Result<Vec<Bytes>, Reply> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        sets.push(read_set(ctx, key)?);
    }
    Ok(match op {
        Algebra::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(Vec::new());
            }
            let mut sets: Vec<Arc<Set>> = sets.into_iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            let (first, rest) = sets.split_first().ok_or_else(super::syntax_error)?;
            first
                .iter()
                .filter(|m| rest.iter().all(|s| s.contains(m)))
                .take(limit)
                .cloned()
                .collect()
        }
        Algebra::Union => {
            let mut all = Set::default();
            for set in sets.iter().flatten() {
                for member in set.iter() {
                    all.insert(member.clone());
                }
            }
            all.iter().cloned().collect()
        }
        Algebra::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Ok(Vec::new());
            };
            first
                .iter()
                .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m)))
                .cloned()
                .collect()
        }
    })
}

fn algebra(ctx: &mut Ctx<'_>, args: &mut Args<'_>, op: Algebra) -> Handled {
    let keys = args.rest();
    let members = compute(ctx, keys, op, usize::MAX)?;
    members_reply(ctx, members, true)
}

fn algebra_store(ctx: &mut Ctx<'_>, args: &mut Args<'_>, op: Algebra, event: &str) -> Handled {
    let dst = args.bytes()?;
    let members = compute(ctx, args.rest(), op, usize::MAX)?;
    let count = members.len();
    let mut set = Set::default();
    for member in members {
        set.insert(member);
    }
    let existed = ctx.store().get(dst, ctx.now).is_some();
    ctx.store()
        .put_value(
            dst,
            Value::Set(Arc::new(set)),
            false,
            DeadlineChange::Set(None),
            ctx.now,
        )
        .map_err(store_error)?;
    if count > 0 {
        ctx.notify(SET, event, dst);
    } else if existed {
        ctx.notify(GENERIC, "del", dst);
    }
    Ok(Reply::Integer(count as i64).into())
}

/// `SINTER key [key …]`.
pub fn sinter(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    algebra(ctx, args, Algebra::Inter)
}

/// `SUNION key [key …]`.
pub fn sunion(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    algebra(ctx, args, Algebra::Union)
}

/// `SDIFF key [key …]`.
pub fn sdiff(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    algebra(ctx, args, Algebra::Diff)
}

/// `SINTERSTORE destination key [key …]`.
pub fn sinterstore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    algebra_store(ctx, args, Algebra::Inter, "sinterstore")
}

/// `SUNIONSTORE destination key [key …]`.
pub fn sunionstore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    algebra_store(ctx, args, Algebra::Union, "sunionstore")
}

/// `SDIFFSTORE destination key [key …]`.
pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    algebra_store(ctx, args, Algebra::Diff, "sdiffstore")
}

/// Reads `numkeys key [key …]` for the commands that take a key count; the keys.
pub fn numkeys<'a>(args: &mut Args<'a>) -> Result<&'a [Bytes], Reply> {
    let n = parse_int(args.bytes()?)
        .filter(|&n| n > 0)
        .ok_or_else(|| error("ERR numkeys should be greater than 0"))?;
    if n as usize > args.remaining() {
        return Err(error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let rest = args.clone().rest();
    let keys = &rest[..n as usize];
    for _ in 0..n {
        args.next();
    }
    Ok(keys)
}

/// Reads an optional `LIMIT n` (0: no limit) after the keys of `SINTERCARD`/`ZINTERCARD`.
pub fn card_limit(args: &mut Args<'_>) -> Result<usize, Reply> {
    let mut limit = 0usize;
    while !args.is_empty() {
        if args.remaining() >= 2 && args.keyword("limit") {
            limit = match parse_int(args.bytes()?) {
                Some(n) if n >= 0 => n as usize,
                _ => return Err(error("ERR LIMIT can't be negative")),
            };
        } else {
            return Err(super::syntax_error());
        }
    }
    Ok(if limit == 0 { usize::MAX } else { limit })
}

/// `SINTERCARD numkeys key [key …] [LIMIT limit]`.
pub fn sintercard(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let keys = numkeys(args)?;
    let limit = card_limit(args)?;
    let members = compute(ctx, keys, Algebra::Inter, limit)?;
    Ok(Reply::Integer(members.len() as i64).into())
}
