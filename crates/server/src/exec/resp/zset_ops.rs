//! The sorted-set commands beyond `ZADD`/`ZREM`/`ZSCORE`/`ZCARD`: the `ZRANGE` family (by
//! rank, score or lex, reversed, limited, stored), counts, ranks, `ZINCRBY`, pops,
//! `ZRANDMEMBER`, the removals by range, and the algebra (`ZUNION`, `ZINTER`, `ZDIFF`, their
//! `…STORE` forms, `ZINTERCARD`).
//!
//! Reads work on the shared snapshot of the set, outside the shard lock. Ranks are
//! positions in the ordered index, found by walking it (O(rank); Redis's skiplist does it
//! in O(log n)). The commands that read then change, or read several keys, run holding the
//! script gate exclusively (their rows say `EXCLUSIVE`), so they are atomic for every client;
//! changes go through the store's per-member operations, except a stored result, which is
//! written whole (`Store::put_value`). Replies are measured against the output limit before
//! they are built.

use std::sync::Arc;

use bytes::Bytes;
use sessiond_proto_resp::{Protocol, Reply};
use sessiond_store::{DeadlineChange, StoreError, Value, ZAddFlags, ZIncr, ZSet};

use super::args::{Args, Handled};
use super::blocking::BlockOp;
use super::pubsub::{GENERIC, ZSET};
use super::set_ops::{card_limit, numkeys};
use super::{
    Ctx, OutputBudget, error, parse_float, parse_int, sampling, store_error, syntax_error,
};

/// The sorted set under `key`, `None` if missing, WRONGTYPE for another type.
fn read_zset(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Arc<ZSet>>, Reply> {
    match ctx.store().get(key, ctx.now).map(|e| e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(store_error(StoreError::WrongType)),
    }
}

/// A score bound: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg {
        [b'(', rest @ ..] => parse_float(rest).map(|s| (s, true)),
        _ => parse_float(arg).map(|s| (s, false)),
    }
}

/// A lex bound: `-`, `+`, `[member` (inclusive), `(member` (exclusive).
#[derive(Debug, Clone)]
enum Lex {
    Min,
    Max,
    At(Bytes, bool),
}

fn lex_bound(arg: &Bytes) -> Result<Lex, Reply> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Ok(Lex::Min),
        Some(b'+') if arg.len() == 1 => Ok(Lex::Max),
        Some(b'[') => Ok(Lex::At(arg.slice(1..), false)),
        Some(b'(') => Ok(Lex::At(arg.slice(1..), true)),
        _ => Err(error("ERR min or max not valid string range item")),
    }
}

fn above_min(member: &[u8], min: &Lex) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::At(m, exclusive) => {
            if *exclusive {
                member > &m[..]
            } else {
                member >= &m[..]
            }
        }
    }
}

fn below_max(member: &[u8], max: &Lex) -> bool {
    match max {
        Lex::Min => false,
        Lex::Max => true,
        Lex::At(m, exclusive) => {
            if *exclusive {
                member < &m[..]
            } else {
                member <= &m[..]
            }
        }
    }
}

/// Which members a range command selects.
enum By {
    Rank(i64, i64),
    Score((f64, bool), (f64, bool)),
    Lex(Lex, Lex),
}

/// A parsed range request.
struct Range {
    by: By,
    rev: bool,
    offset: i64,
    count: i64,
}

/// The members `range` selects from `zset`, in order.
fn select(zset: &ZSet, range: &Range) -> Vec<(f64, Bytes)> {
    if range.offset < 0 {
        return Vec::new();
    }
    let take = usize::try_from(range.count).unwrap_or(usize::MAX);
    let skip = range.offset as usize;
    fn pick<'z>(
        items: impl DoubleEndedIterator<Item = (f64, &'z Bytes)>,
        rev: bool,
        skip: usize,
        take: usize,
    ) -> Vec<(f64, Bytes)> {
        let items: Box<dyn Iterator<Item = (f64, &Bytes)>> = if rev {
            Box::new(items.rev())
        } else {
            Box::new(items)
        };
        items
            .skip(skip)
            .take(take)
            .map(|(s, m)| (s, m.clone()))
            .collect()
    }
    match &range.by {
        By::Rank(start, stop) => {
            let len = zset.len() as i64;
            let start = if *start < 0 {
                (len + start).max(0)
            } else {
                *start
            };
            let stop = if *stop < 0 { len + stop } else { *stop }.min(len - 1);
            if start > stop || start >= len {
                return Vec::new();
            }
            pick(
                zset.iter(),
                range.rev,
                start as usize,
                (stop - start + 1) as usize,
            )
        }
        By::Score(min, max) => pick(zset.range_by_score(*min, *max), range.rev, skip, take),
        By::Lex(min, max) => {
            let items: Vec<(f64, &Bytes)> = zset
                .iter()
                .filter(|(_, m)| above_min(m, min) && below_max(m, max))
                .collect();
            pick(items.into_iter(), range.rev, skip, take)
        }
    }
}

/// The reply of a range: members, with scores paired (RESP3) or alternating (RESP2).
fn range_reply(ctx: &Ctx<'_>, items: Vec<(f64, Bytes)>, withscores: bool) -> Handled {
    let lens = items
        .iter()
        .flat_map(|(_, m)| [m.len(), if withscores { OutputBudget::SCORE } else { 0 }]);
    OutputBudget::check(ctx.shared, lens)?;
    let resp3 = ctx.session.protocol == Protocol::Resp3;
    let mut out = Vec::with_capacity(items.len() * if withscores { 2 } else { 1 });
    for (score, member) in items {
        match (withscores, resp3) {
            (false, _) => out.push(Reply::Bulk(member)),
            (true, true) => out.push(Reply::Array(vec![
                Reply::Bulk(member),
                Reply::Double(score),
            ])),
            (true, false) => {
                out.push(Reply::Bulk(member));
                out.push(Reply::Double(score));
            }
        }
    }
    Ok(Reply::Array(out).into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

/// [`Kind::Rank`] as a handler's const parameter.
pub const BY_RANK: u8 = 0;
/// [`Kind::Score`] as a handler's const parameter.
pub const BY_SCORE: u8 = 1;
/// [`Kind::Lex`] as a handler's const parameter.
pub const BY_LEX: u8 = 2;

impl Kind {
    /// The kind a `BY_…` constant names.
    const fn of(by: u8) -> Kind {
        match by {
            BY_RANK => Kind::Rank,
            BY_SCORE => Kind::Score,
            _ => Kind::Lex,
        }
    }
}

/// Parses `min max` of kind `kind` (`rev`: given as `max min`), then the options a range
/// command of that shape allows. Returns the range and WITHSCORES.
fn parse_range(
    args: &mut Args<'_>,
    mut kind: Kind,
    mut rev: bool,
    generic: bool,
    store: bool,
) -> Result<(Range, bool), Reply> {
    let (first, second) = (args.bytes()?, args.bytes()?);
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    while !args.is_empty() {
        if !store && args.keyword("withscores") {
            withscores = true;
        } else if args.remaining() >= 3 && args.keyword("limit") {
            limit = Some((args.int()?, args.int()?));
        } else if generic && args.keyword("byscore") {
            kind = Kind::Score;
        } else if generic && args.keyword("bylex") {
            kind = Kind::Lex;
        } else if generic && args.keyword("rev") {
            rev = true;
        } else {
            return Err(syntax_error());
        }
    }
    if limit.is_some() && kind == Kind::Rank {
        return Err(error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (lo, hi) = if rev && kind != Kind::Rank {
        (second, first)
    } else {
        (first, second)
    };
    let by = match kind {
        Kind::Rank => By::Rank(
            parse_int(first).ok_or_else(super::not_integer)?,
            parse_int(second).ok_or_else(super::not_integer)?,
        ),
        Kind::Score => match (score_bound(lo), score_bound(hi)) {
            (Some(min), Some(max)) => By::Score(min, max),
            _ => return Err(error("ERR min or max is not a float")),
        },
        Kind::Lex => By::Lex(lex_bound(lo)?, lex_bound(hi)?),
    };
    let (offset, count) = limit.unwrap_or((0, -1));
    Ok((
        Range {
            by,
            rev,
            offset,
            count,
        },
        withscores,
    ))
}

fn range_command(
    ctx: &mut Ctx<'_>,
    args: &mut Args<'_>,
    kind: Kind,
    rev: bool,
    generic: bool,
) -> Handled {
    let key = args.bytes()?;
    let (range, withscores) = parse_range(args, kind, rev, generic, false)?;
    let items = read_zset(ctx, key)?.map_or_else(Vec::new, |z| select(&z, &range));
    range_reply(ctx, items, withscores)
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`.
pub fn zrange(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    range_command(ctx, args, Kind::Rank, false, true)
}

/// The fixed-shape range commands, by [`Kind`] `BY` (a `BY_…` constant), reversed if
/// `REV` (bounds given as `max min`):
/// - `ZREVRANGE key start stop [WITHSCORES]` (`BY_RANK`, reversed);
/// - `ZRANGEBYSCORE`/`ZREVRANGEBYSCORE key min|max max|min [WITHSCORES] [LIMIT offset
///   count]` (`BY_SCORE`);
/// - `ZRANGEBYLEX`/`ZREVRANGEBYLEX key min|max max|min [LIMIT offset count]` (`BY_LEX`).
pub fn range_by<const BY: u8, const REV: bool>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    range_command(ctx, args, Kind::of(BY), REV, false)
}

/// Writes `items` as the sorted set under `dst` (an empty result removes it); the count.
fn store_result(ctx: &Ctx<'_>, dst: &[u8], items: Vec<(f64, Bytes)>, event: &str) -> Handled {
    let count = items.len();
    let mut zset = ZSet::default();
    for (score, member) in items {
        zset.insert(member, score);
    }
    let existed = ctx.store().get(dst, ctx.now).is_some();
    ctx.store()
        .put_value(
            dst,
            Value::ZSet(Arc::new(zset)),
            false,
            DeadlineChange::Set(None),
            ctx.now,
        )
        .map_err(store_error)?;
    if count > 0 {
        ctx.notify(ZSET, event, dst);
    } else if existed {
        ctx.notify(GENERIC, "del", dst);
    }
    Ok(Reply::Integer(count as i64).into())
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`.
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (dst, src) = (args.bytes()?, args.bytes()?);
    let (range, _) = parse_range(args, Kind::Rank, false, true, true)?;
    let items = read_zset(ctx, src)?.map_or_else(Vec::new, |z| select(&z, &range));
    store_result(ctx, dst, items, "zrangestore")
}

/// `ZCOUNT key min max`.
pub fn zcount(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let (min, max) = match (score_bound(args.bytes()?), score_bound(args.bytes()?)) {
        (Some(min), Some(max)) => (min, max),
        _ => return Err(error("ERR min or max is not a float")),
    };
    let zset = read_zset(ctx, key)?;
    Ok(Reply::Integer(zset.map_or(0, |z| z.range_by_score(min, max).count() as i64)).into())
}

/// `ZLEXCOUNT key min max`.
pub fn zlexcount(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let (min, max) = (lex_bound(args.bytes()?)?, lex_bound(args.bytes()?)?);
    let zset = read_zset(ctx, key)?;
    let count = zset.map_or(0, |z| {
        z.iter()
            .filter(|(_, m)| above_min(m, &min) && below_max(m, &max))
            .count()
    });
    Ok(Reply::Integer(count as i64).into())
}

/// `ZRANK key member`, or `ZREVRANK` if `REV` (the rank counted from the highest score).
pub fn rank<const REV: bool>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let zset = read_zset(ctx, args.bytes()?)?;
    let member = args.bytes()?;
    let Some(zset) = zset else {
        return Ok(Reply::Null.into());
    };
    let Some(score) = zset.score(member) else {
        return Ok(Reply::Null.into());
    };
    let position = zset
        .iter()
        .position(|(s, m)| s == score && m == member)
        .unwrap_or(0);
    let rank = if REV {
        zset.len() - 1 - position
    } else {
        position
    };
    Ok(Reply::Integer(rank as i64).into())
}

/// `ZMSCORE key member [member …]`.
pub fn zmscore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let zset = read_zset(ctx, args.bytes()?)?;
    Ok(Reply::Array(
        args.map(|m| {
            zset.as_ref()
                .and_then(|z| z.score(m))
                .map_or(Reply::Null, Reply::Double)
        })
        .collect(),
    )
    .into())
}

/// `ZINCRBY` and `ZADD … INCR`: the new score, or null when `flags` refused the change.
pub fn incr(ctx: &Ctx<'_>, key: &[u8], member: &[u8], delta: f64, flags: ZAddFlags) -> Handled {
    match ctx
        .store()
        .zset_incr(key, member, delta, flags, ctx.now)
        .map_err(store_error)?
    {
        None => Ok(Reply::Null.into()),
        Some(ZIncr::NotANumber) => Err(error("ERR resulting score is not a number (NaN)")),
        Some(ZIncr::Score(score)) => {
            ctx.notify(ZSET, "zincr", key);
            Ok(Reply::Double(score).into())
        }
    }
}

/// `ZINCRBY key increment member`.
pub fn zincrby(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let delta = args.float()?;
    let member = args.bytes()?;
    incr(ctx, key, member, delta, ZAddFlags::default())
}

/// Removes `members` from `key`, notifying `event`; the count.
fn remove_members(
    ctx: &Ctx<'_>,
    key: &[u8],
    members: &[Bytes],
    event: &str,
) -> Result<usize, Reply> {
    if members.is_empty() {
        return Ok(0);
    }
    let slices: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
    let removed = ctx
        .store()
        .zset_remove(key, &slices, ctx.now)
        .map_err(store_error)?;
    ctx.notify(ZSET, event, key);
    if ctx.store().get(key, ctx.now).is_none() {
        ctx.notify(GENERIC, "del", key);
    }
    Ok(removed)
}

/// `ZREMRANGEBYRANK key start stop`, `ZREMRANGEBYSCORE key min max` or `ZREMRANGEBYLEX key
/// min max`, by [`Kind`] `BY` (a `BY_…` constant), which also names the event.
pub fn remove_range<const BY: u8>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let event = ["zremrangebyrank", "zremrangebyscore", "zremrangebylex"][BY as usize];
    let key = args.bytes()?;
    let (range, _) = parse_range(args, Kind::of(BY), false, false, true)?;
    let Some(zset) = read_zset(ctx, key)? else {
        return Ok(Reply::Integer(0).into());
    };
    let members: Vec<Bytes> = select(&zset, &range).into_iter().map(|(_, m)| m).collect();
    Ok(Reply::Integer(remove_members(ctx, key, &members, event)? as i64).into())
}

/// Pops up to `count` members from the low (`max` false) or high end of `key`, in one store
/// operation, and notifies the pop.
pub fn pop(ctx: &Ctx<'_>, key: &[u8], count: usize, max: bool) -> Result<Vec<(f64, Bytes)>, Reply> {
    let popped = ctx
        .store()
        .zset_pop(key, count, max, ctx.now)
        .map_err(store_error)?
        .unwrap_or_default();
    if !popped.is_empty() {
        ctx.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
        if ctx.store().get(key, ctx.now).is_none() {
            ctx.notify(GENERIC, "del", key);
        }
    }
    Ok(popped)
}

/// `ZPOPMIN key [count]`, or `ZPOPMAX` if `MAX`.
pub fn pop_command<const MAX: bool>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let count = match args.next() {
        None => None,
        Some(arg) => match parse_int(arg) {
            Some(n) if n >= 0 => Some(n as usize),
            Some(_) => return Err(error("ERR value is out of range, must be positive")),
            None => return Err(super::not_integer()),
        },
    };
    if !args.is_empty() {
        return Err(syntax_error());
    }
    let popped = pop(ctx, key, count.unwrap_or(1), MAX)?;
    // Without a count the pair is flat in every protocol; with one, RESP3 pairs them.
    if count.is_none() {
        let mut out = Vec::new();
        for (score, member) in popped {
            out.push(Reply::Bulk(member));
            out.push(Reply::Double(score));
        }
        return Ok(Reply::Array(out).into());
    }
    range_reply(ctx, popped, true)
}

/// `ZMPOP numkeys key [key …] MIN|MAX [COUNT count]`: pops from the first non-empty set;
/// `[key, [[member, score], …]]`, or null.
pub fn zmpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let keys = numkeys(args)?;
    mpop(ctx, keys, args)
}

/// `ZMPOP`'s options after the keys: `MIN|MAX [COUNT count]`.
fn mpop_options(args: &mut Args<'_>) -> Result<(bool, usize), Reply> {
    let max = if args.keyword("min") {
        false
    } else if args.keyword("max") {
        true
    } else {
        return Err(syntax_error());
    };
    let mut count = 1usize;
    let mut counted = false;
    while !args.is_empty() {
        if !counted && args.remaining() >= 2 && args.keyword("count") {
            count = match parse_int(args.bytes()?) {
                Some(n) if n > 0 => n as usize,
                _ => return Err(error("ERR count should be greater than 0")),
            };
            counted = true;
        } else {
            return Err(syntax_error());
        }
    }
    Ok((max, count))
}

/// `ZMPOP`'s work after the keys.
fn mpop(ctx: &Ctx<'_>, keys: &[Bytes], args: &mut Args<'_>) -> Handled {
    let (max, count) = mpop_options(args)?;
    for key in keys {
        let popped = pop(ctx, key, count, max)?;
        if !popped.is_empty() {
            return Ok(popped_reply(key, popped, true).into());
        }
    }
    Ok(Reply::NullArray.into())
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`: a negative count allows repeats; the reply is
/// measured before it is built.
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let count = match args.next() {
        None => None,
        Some(arg) => Some(parse_int(arg).ok_or_else(super::not_integer)?),
    };
    let withscores = match args.next() {
        None => false,
        Some(arg) if super::is(arg, "withscores") && args.is_empty() && count.is_some() => true,
        Some(_) => return Err(syntax_error()),
    };
    let zset = read_zset(ctx, key)?.filter(|z| !z.is_empty());
    let Some(count) = count else {
        return Ok(zset
            .map_or(Reply::Null, |z| {
                Reply::Bulk(
                    z.iter()
                        .nth(sampling::below(z.len()))
                        .map(|(_, m)| m.clone())
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
    // Redis refuses a count whose pairs would overflow its reply length.
    if withscores && count < -(i64::MAX / 2) {
        return Err(error("ERR value is out of range"));
    }
    let Some(zset) = zset else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    let items: Vec<(f64, &Bytes)> = zset.iter().collect();
    let picks = if count >= 0 {
        sampling::distinct(items.len(), count as usize)
    } else {
        let wanted = count.unsigned_abs() as usize;
        let shortest = items.iter().map(|(_, m)| m.len()).min().unwrap_or(0);
        let mut budget = OutputBudget::new(ctx.shared);
        for _ in 0..wanted {
            if !budget.charge(shortest) {
                return Err(budget.refusal());
            }
        }
        sampling::with_repeats(items.len(), wanted)
    };
    let picked = picks
        .into_iter()
        .map(|i| (items[i].0, items[i].1.clone()))
        .collect();
    range_reply(ctx, picked, withscores)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algebra {
    Union,
    Inter,
    Diff,
}

/// [`Algebra::Union`] as a handler's const parameter.
pub const OP_UNION: u8 = 0;
/// [`Algebra::Inter`] as a handler's const parameter.
pub const OP_INTER: u8 = 1;
/// [`Algebra::Diff`] as a handler's const parameter.
pub const OP_DIFF: u8 = 2;

impl Algebra {
    /// The operation an `OP_…` constant names.
    const fn of(op: u8) -> Algebra {
        match op {
            OP_UNION => Algebra::Union,
            OP_INTER => Algebra::Inter,
            _ => Algebra::Diff,
        }
    }

    /// The command's name (errors, events), of its `…STORE` form if `store`.
    fn name(self, store: bool) -> &'static str {
        match (self, store) {
            (Algebra::Union, false) => "zunion",
            (Algebra::Inter, false) => "zinter",
            (Algebra::Diff, false) => "zdiff",
            (Algebra::Union, true) => "zunionstore",
            (Algebra::Inter, true) => "zinterstore",
            (Algebra::Diff, true) => "zdiffstore",
        }
    }
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Members with their scores.
type Scored = Vec<(f64, Bytes)>;

/// The sorted set (or set, whose members score 1) under each key; a missing key is empty.
fn sources(ctx: &Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<Scored>>, Reply> {
    keys.iter()
        .map(|key| match ctx.store().get(key, ctx.now).map(|e| e.value) {
            None => Ok(None),
            Some(Value::ZSet(z)) => Ok(Some(z.iter().map(|(s, m)| (s, m.clone())).collect())),
            Some(Value::Set(s)) => Ok(Some(s.iter().map(|m| (1.0, m.clone())).collect())),
            Some(_) => Err(store_error(StoreError::WrongType)),
        })
        .collect()
}

fn combine(agg: Aggregate, a: f64, b: f64) -> f64 {
    let r = match agg {
        Aggregate::Sum => a + b,
        Aggregate::Min => a.min(b),
        Aggregate::Max => a.max(b),
    };
    // Redis turns `inf + -inf` into 0.
    if r.is_nan() { 0.0 } else { r }
}

/// Parses `numkeys key … [WEIGHTS w …] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` and computes.
fn algebra(
    ctx: &Ctx<'_>,
    args: &mut Args<'_>,
    op: Algebra,
    name: &str,
    store: bool,
) -> Result<(Vec<(f64, Bytes)>, bool), Reply> {
    let n = parse_int(args.bytes()?).ok_or_else(super::not_integer)?;
    if n < 1 {
        return Err(error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if n as usize > args.remaining() {
        return Err(syntax_error());
    }
    let keys: Vec<Bytes> = (0..n).filter_map(|_| args.next().cloned()).collect();
    let mut weights = vec![1.0; keys.len()];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    while !args.is_empty() {
        if op != Algebra::Diff && args.remaining() > keys.len() && args.keyword("weights") {
            for w in weights.iter_mut() {
                *w = parse_float(args.bytes()?)
                    .ok_or_else(|| error("ERR weight value is not a float"))?;
            }
        } else if op != Algebra::Diff && args.remaining() >= 2 && args.keyword("aggregate") {
            agg = match args.word()?.as_str() {
                "sum" => Aggregate::Sum,
                "min" => Aggregate::Min,
                "max" => Aggregate::Max,
                _ => return Err(syntax_error()),
            };
        } else if !store && args.keyword("withscores") {
            withscores = true;
        } else {
            return Err(syntax_error());
        }
    }
    let sets = sources(ctx, &keys)?;
    let weigh = |s: f64, w: f64| {
        let r = s * w;
        if r.is_nan() { 0.0 } else { r }
    };
    let mut result: hashbrown::HashMap<Bytes, f64> = hashbrown::HashMap::new();
    match op {
        Algebra::Union => {
            for (set, &w) in sets.iter().zip(&weights) {
                for (s, m) in set.iter().flatten() {
                    let s = weigh(*s, w);
                    result
                        .entry(m.clone())
                        .and_modify(|old| *old = combine(agg, *old, s))
                        .or_insert(s);
                }
            }
        }
        Algebra::Inter => {
            if sets.iter().all(Option::is_some) {
                let lookups: Vec<hashbrown::HashMap<&Bytes, f64>> = sets
                    .iter()
                    .flatten()
                    .map(|set| set.iter().map(|(s, m)| (m, *s)).collect())
                    .collect();
                if let Some(first) = sets[0].as_ref() {
                    'members: for (s, m) in first {
                        let mut score = weigh(*s, weights[0]);
                        for (i, lookup) in lookups.iter().enumerate().skip(1) {
                            let Some(other) = lookup.get(m) else {
                                continue 'members;
                            };
                            score = combine(agg, score, weigh(*other, weights[i]));
                        }
                        result.insert(m.clone(), score);
                    }
                }
            }
        }
        Algebra::Diff => {
            if let Some(first) = sets[0].as_ref() {
                let others: Vec<hashbrown::HashSet<&Bytes>> = sets[1..]
                    .iter()
                    .flatten()
                    .map(|set| set.iter().map(|(_, m)| m).collect())
                    .collect();
                for (s, m) in first {
                    if !others.iter().any(|o| o.contains(m)) {
                        result.insert(m.clone(), *s);
                    }
                }
            }
        }
    }
    let mut items: Vec<(f64, Bytes)> = result.into_iter().map(|(m, s)| (s, m)).collect();
    items.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok((items, withscores))
}

/// `ZUNION`/`ZINTER numkeys key … [WEIGHTS …] [AGGREGATE …] [WITHSCORES]` or `ZDIFF
/// numkeys key … [WITHSCORES]`, by [`Algebra`] `OP` (an `OP_…` constant).
pub fn algebra_command<const OP: u8>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let op = Algebra::of(OP);
    let (items, withscores) = algebra(ctx, args, op, op.name(false), false)?;
    range_reply(ctx, items, withscores)
}

/// `ZUNIONSTORE`/`ZINTERSTORE destination numkeys key … [WEIGHTS …] [AGGREGATE …]` or
/// `ZDIFFSTORE destination numkeys key …`, by [`Algebra`] `OP` (an `OP_…` constant).
pub fn algebra_store<const OP: u8>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let op = Algebra::of(OP);
    let dst = args.bytes()?;
    let (items, _) = algebra(ctx, args, op, op.name(true), true)?;
    store_result(ctx, dst, items, op.name(true))
}

/// `ZINTERCARD numkeys key … [LIMIT limit]`.
pub fn zintercard(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let n = parse_int(args.bytes()?).ok_or_else(super::not_integer)?;
    if n < 1 {
        return Err(error(
            "ERR at least 1 input key is needed for 'zintercard' command",
        ));
    }
    if n as usize > args.remaining() {
        return Err(syntax_error());
    }
    let all = args.clone().rest();
    let keys = &all[..n as usize];
    for _ in 0..n {
        args.next();
    }
    let limit = card_limit(args)?;
    let sets = sources(ctx, keys)?;
    if sets.iter().any(Option::is_none) {
        return Ok(Reply::Integer(0).into());
    }
    let lookups: Vec<hashbrown::HashSet<&Bytes>> = sets
        .iter()
        .flatten()
        .map(|set| set.iter().map(|(_, m)| m).collect())
        .collect();
    let count = sets[0]
        .iter()
        .flatten()
        .filter(|(_, m)| lookups[1..].iter().all(|l| l.contains(m)))
        .take(limit)
        .count();
    Ok(Reply::Integer(count as i64).into())
}

/// The reply of a blocking pop that got `popped` from `key`: `[key, member, score]`
/// (`BZPOPMIN`/`BZPOPMAX`), or `[key, [[member, score], …]]` (`BZMPOP`).
pub fn popped_reply(key: &Bytes, popped: Vec<(f64, Bytes)>, multi: bool) -> Reply {
    if multi {
        let pairs = popped
            .into_iter()
            .map(|(s, m)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect();
        return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)]);
    }
    let mut out = vec![Reply::Bulk(key.clone())];
    for (score, member) in popped {
        out.push(Reply::Bulk(member));
        out.push(Reply::Double(score));
    }
    Reply::Array(out)
}

/// `BZPOPMIN key [key …] timeout`, or `BZPOPMAX` if `MAX`: `[key, member, score]` from the
/// first non-empty set, or the wait (the lists' blocking registry; a zset created or added
/// to wakes it), or null inside `MULTI` and scripts.
pub fn bzpop<const MAX: bool>(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let all = args.rest();
    let (timeout, keys) = all.split_last().ok_or_else(syntax_error)?;
    let timeout_ms = super::lists::timeout_arg(timeout)?;
    super::lists::too_many_keys(keys.len())?;
    for key in keys {
        let popped = pop(ctx, key, 1, MAX)?;
        if !popped.is_empty() {
            return Ok(popped_reply(key, popped, false).into());
        }
    }
    let keys: Vec<&Bytes> = keys.iter().collect();
    super::lists::block(
        ctx,
        &keys,
        BlockOp::ZPop {
            max: MAX,
            count: 1,
            multi: false,
        },
        timeout_ms,
    )
}

/// `BZMPOP timeout numkeys key [key …] MIN|MAX [COUNT count]`: as `ZMPOP`, or the wait.
pub fn bzmpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let timeout_ms = super::lists::timeout_arg(args.bytes()?)?;
    let keys = numkeys(args)?;
    super::lists::too_many_keys(keys.len())?;
    let (max, count) = mpop_options(args)?;
    for key in keys {
        let popped = pop(ctx, key, count, max)?;
        if !popped.is_empty() {
            return Ok(popped_reply(key, popped, true).into());
        }
    }
    let keys: Vec<&Bytes> = keys.iter().collect();
    super::lists::block(
        ctx,
        &keys,
        BlockOp::ZPop {
            max,
            count,
            multi: true,
        },
        timeout_ms,
    )
}
