//! Hash, set and sorted-set commands: what Spring Session's repositories send.
//!
//! Reads take a shared pointer to the collection under the shard lock and build the reply
//! after releasing it; writes are single store operations, each atomic and journaled per
//! element. A collection that loses its last element disappears, as in Redis.

use bytes::Bytes;
use sessiond_proto_resp::{Protocol, Reply};
use sessiond_store::{StoreError, Value, ZAddFlags};

use super::pubsub::{GENERIC, HASH, SET, ZSET};
use super::{
    Answer, Ctx, error, is, not_integer, parse_float, parse_int, store_error, syntax_error,
};

/// The value under `key` if it has the type `want` selects; `Ok(None)` when missing;
/// WRONGTYPE otherwise.
fn read<T>(
    ctx: &Ctx<'_>,
    key: &[u8],
    want: impl FnOnce(Value) -> Option<T>,
) -> Result<Option<T>, Reply> {
    match ctx.store().get(key, ctx.now) {
        None => Ok(None),
        Some(entry) => want(entry.value)
            .map(Some)
            .ok_or_else(|| store_error(StoreError::WrongType)),
    }
}

fn hash_of(value: Value) -> Option<std::sync::Arc<sessiond_store::Hash>> {
    match value {
        Value::Hash(h) => Some(h),
        _ => None,
    }
}

fn set_of(value: Value) -> Option<std::sync::Arc<sessiond_store::Set>> {
    match value {
        Value::Set(s) => Some(s),
        _ => None,
    }
}

fn zset_of(value: Value) -> Option<std::sync::Arc<sessiond_store::ZSet>> {
    match value {
        Value::ZSet(z) => Some(z),
        _ => None,
    }
}

macro_rules! try_reply {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return Answer::One(reply),
        }
    };
}

/// Notifies `event` after a change, plus `del` if the change removed the key.
fn after_change(ctx: &Ctx<'_>, class: u32, event: &str, key: &[u8]) {
    ctx.notify(class, event, key);
    if ctx.store().get(key, ctx.now).is_none() {
        ctx.notify(GENERIC, "del", key);
    }
}

fn hash_set(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str) -> Result<usize, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(super::wrong_args(name));
    }
    let pairs: Vec<(&[u8], &[u8])> = args[2..]
        .chunks(2)
        .map(|p| (&p[0][..], &p[1][..]))
        .collect();
    let added = ctx
        .store()
        .hash_set(&args[1], &pairs, ctx.now)
        .map_err(store_error)?;
    ctx.notify(HASH, "hset", &args[1]);
    Ok(added)
}

/// `HSET key field value [field value …]`: the number of new fields.
pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    Reply::Integer(try_reply!(hash_set(ctx, args, "hset")) as i64).into()
}

/// `HMSET key field value [field value …]`: `+OK`.
pub fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    try_reply!(hash_set(ctx, args, "hmset"));
    Reply::ok().into()
}

/// `HGET key field`.
pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    hash.and_then(|h| h.get(&args[2]).cloned())
        .map_or(Reply::Null, Reply::Bulk)
        .into()
}

/// `HMGET key field [field …]`.
pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    Reply::Array(
        args[2..]
            .iter()
            .map(|f| {
                hash.as_ref()
                    .and_then(|h| h.get(f).cloned())
                    .map_or(Reply::Null, Reply::Bulk)
            })
            .collect(),
    )
    .into()
}

/// `HGETALL key`: a map in RESP3, alternating fields and values in RESP2.
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    Reply::Map(
        hash.iter()
            .flat_map(|h| h.iter())
            .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
            .collect(),
    )
    .into()
}

/// `HDEL key field [field …]`.
pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let fields: Vec<&[u8]> = args[2..].iter().map(|f| &f[..]).collect();
    let removed = try_reply!(
        ctx.store()
            .hash_remove(&args[1], &fields, ctx.now)
            .map_err(store_error)
    );
    if removed > 0 {
        after_change(ctx, HASH, "hdel", &args[1]);
    }
    Reply::Integer(removed as i64).into()
}

/// `HEXISTS key field`.
pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    Reply::Integer(i64::from(hash.is_some_and(|h| h.get(&args[2]).is_some()))).into()
}

/// `HLEN key`.
pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    Reply::Integer(hash.map_or(0, |h| h.len() as i64)).into()
}

/// `HKEYS key`.
pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    Reply::Array(
        hash.iter()
            .flat_map(|h| h.iter())
            .map(|(f, _)| Reply::Bulk(f.clone()))
            .collect(),
    )
    .into()
}

/// `HVALS key`.
pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let hash = try_reply!(read(ctx, &args[1], hash_of));
    Reply::Array(
        hash.iter()
            .flat_map(|h| h.iter())
            .map(|(_, v)| Reply::Bulk(v.clone()))
            .collect(),
    )
    .into()
}

/// `HINCRBY key field delta`.
pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let Some(delta) = parse_int(&args[3]) else {
        return not_integer().into();
    };
    match ctx.store().hash_add_i64(&args[1], &args[2], delta, ctx.now) {
        Ok(value) => {
            ctx.notify(HASH, "hincrby", &args[1]);
            Reply::Integer(value).into()
        }
        Err(StoreError::NotInteger) => error("ERR hash value is not an integer").into(),
        Err(e) => store_error(e).into(),
    }
}

/// `SADD key member [member …]`.
pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let members: Vec<&[u8]> = args[2..].iter().map(|m| &m[..]).collect();
    let added = try_reply!(
        ctx.store()
            .set_add(&args[1], &members, ctx.now)
            .map_err(store_error)
    );
    if added > 0 {
        ctx.notify(SET, "sadd", &args[1]);
    }
    Reply::Integer(added as i64).into()
}

/// `SREM key member [member …]`.
pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let members: Vec<&[u8]> = args[2..].iter().map(|m| &m[..]).collect();
    let removed = try_reply!(
        ctx.store()
            .set_remove(&args[1], &members, ctx.now)
            .map_err(store_error)
    );
    if removed > 0 {
        after_change(ctx, SET, "srem", &args[1]);
    }
    Reply::Integer(removed as i64).into()
}

/// `SMEMBERS key`: a set in RESP3, an array in RESP2.
pub fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let set = try_reply!(read(ctx, &args[1], set_of));
    Reply::Set(
        set.iter()
            .flat_map(|s| s.iter())
            .map(|m| Reply::Bulk(m.clone()))
            .collect(),
    )
    .into()
}

/// `SISMEMBER key member`.
pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let set = try_reply!(read(ctx, &args[1], set_of));
    Reply::Integer(i64::from(set.is_some_and(|s| s.contains(&args[2])))).into()
}

/// `SCARD key`.
pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let set = try_reply!(read(ctx, &args[1], set_of));
    Reply::Integer(set.map_or(0, |s| s.len() as i64)).into()
}

/// `ZADD key [NX|XX] [GT|LT] [CH] score member [score member …]`. (`INCR` is not
/// supported: no session client uses it.)
pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let mut flags = ZAddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if is(arg, "nx") {
            flags.nx = true;
        } else if is(arg, "xx") {
            flags.xx = true;
        } else if is(arg, "gt") {
            flags.gt = true;
        } else if is(arg, "lt") {
            flags.lt = true;
        } else if is(arg, "ch") {
            flags.ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return syntax_error().into();
    }
    if flags.nx && flags.xx {
        return error("ERR XX and NX options at the same time are not compatible").into();
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return error("ERR GT, LT, and/or NX options at the same time are not compatible").into();
    }
    let mut members = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        let Some(score) = parse_float(&pair[0]) else {
            return error("ERR value is not a valid float").into();
        };
        members.push((score, &pair[1][..]));
    }
    let counted = try_reply!(
        ctx.store()
            .zset_add(&args[1], &members, flags, ctx.now)
            .map_err(store_error)
    );
    ctx.notify(ZSET, "zadd", &args[1]);
    Reply::Integer(counted as i64).into()
}

/// `ZREM key member [member …]`.
pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let members: Vec<&[u8]> = args[2..].iter().map(|m| &m[..]).collect();
    let removed = try_reply!(
        ctx.store()
            .zset_remove(&args[1], &members, ctx.now)
            .map_err(store_error)
    );
    if removed > 0 {
        after_change(ctx, ZSET, "zrem", &args[1]);
    }
    Reply::Integer(removed as i64).into()
}

/// `ZCARD key`.
pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let zset = try_reply!(read(ctx, &args[1], zset_of));
    Reply::Integer(zset.map_or(0, |z| z.len() as i64)).into()
}

/// `ZSCORE key member`.
pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let zset = try_reply!(read(ctx, &args[1], zset_of));
    zset.and_then(|z| z.score(&args[2]))
        .map_or(Reply::Null, Reply::Double)
        .into()
}

/// A score bound: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg {
        [b'(', rest @ ..] => parse_float(rest).map(|s| (s, true)),
        _ => parse_float(arg).map(|s| (s, false)),
    }
}

fn range_by_score(ctx: &mut Ctx<'_>, args: &[Bytes], reverse: bool) -> Answer {
    let (min_arg, max_arg) = if reverse {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (Some(min), Some(max)) = (score_bound(min_arg), score_bound(max_arg)) else {
        return error("ERR min or max is not a float").into();
    };
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut i = 4;
    while i < args.len() {
        if is(&args[i], "withscores") {
            withscores = true;
            i += 1;
        } else if is(&args[i], "limit") && i + 2 < args.len() {
            let (Some(offset), Some(count)) = (parse_int(&args[i + 1]), parse_int(&args[i + 2]))
            else {
                return not_integer().into();
            };
            limit = Some((offset, count));
            i += 3;
        } else {
            return syntax_error().into();
        }
    }
    let zset = try_reply!(read(ctx, &args[1], zset_of));
    let (offset, count) = limit.unwrap_or((0, -1));
    if offset < 0 || zset.is_none() {
        return Reply::Array(Vec::new()).into();
    }
    let zset = zset.unwrap_or_default();
    let range = zset.range_by_score(min, max);
    let items: Box<dyn Iterator<Item = (f64, &Bytes)>> = if reverse {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    let take = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let selected = items.skip(offset as usize).take(take);
    let resp3 = ctx.session.protocol == Protocol::Resp3;
    let mut out = Vec::new();
    for (score, member) in selected {
        let member = Reply::Bulk(member.clone());
        match (withscores, resp3) {
            (false, _) => out.push(member),
            // RESP3 pairs each member with its score; RESP2 alternates them.
            (true, true) => out.push(Reply::Array(vec![member, Reply::Double(score)])),
            (true, false) => {
                out.push(member);
                out.push(Reply::Double(score));
            }
        }
    }
    Reply::Array(out).into()
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`.
pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    range_by_score(ctx, args, false)
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`.
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    range_by_score(ctx, args, true)
}
