//! Hash, set and sorted-set commands: what Spring Session's repositories send.
//!
//! Reads take a shared pointer to the collection under the shard lock and build the reply
//! after releasing it, having first measured it: a reply that would pass the output limit is
//! refused before any of it is built ([`OutputBudget::check`]); writes are single store operations, each atomic and journaled per
//! element. A collection that loses its last element disappears, as in Redis.

use sessiond_proto_resp::Reply;
use sessiond_store::{StoreError, Value, ZAddFlags};

use super::args::{Args, Handled};
use super::pubsub::{GENERIC, HASH, SET, ZSET};
use super::{Ctx, OutputBudget, error, store_error, syntax_error};

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

/// Notifies `event` after a change, plus `del` if the change removed the key.
fn after_change(ctx: &Ctx<'_>, class: u32, event: &str, key: &[u8]) {
    ctx.notify(class, event, key);
    if ctx.store().get(key, ctx.now).is_none() {
        ctx.notify(GENERIC, "del", key);
    }
}

/// The remaining arguments as byte slices (fields or members).
fn slices<'a>(args: &mut Args<'a>) -> Vec<&'a [u8]> {
    args.map(|arg| &arg[..]).collect()
}

/// `HSET`/`HMSET key field value [field value …]`: the number of new fields.
fn hash_set(ctx: &mut Ctx<'_>, args: &mut Args<'_>, name: &str) -> Result<usize, Reply> {
    let key = args.bytes()?;
    let rest = args.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(super::wrong_args(name));
    }
    let pairs: Vec<(&[u8], &[u8])> = rest.chunks(2).map(|p| (&p[0][..], &p[1][..])).collect();
    let added = ctx
        .store()
        .hash_set(key, &pairs, ctx.now)
        .map_err(store_error)?;
    ctx.notify(HASH, "hset", key);
    Ok(added)
}

/// `HSET key field value [field value …]`: the number of new fields.
pub fn hset(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    Ok(Reply::Integer(hash_set(ctx, args, "hset")? as i64).into())
}

/// `HMSET key field value [field value …]`: `+OK`.
pub fn hmset(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    hash_set(ctx, args, "hmset")?;
    Ok(Reply::ok().into())
}

/// `HGET key field`.
pub fn hget(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    let field = args.bytes()?;
    Ok(hash
        .and_then(|h| h.get(field).cloned())
        .map_or(Reply::Null, Reply::Bulk)
        .into())
}

/// `HMGET key field [field …]`.
pub fn hmget(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    let values = args
        .map(|f| {
            hash.as_ref()
                .and_then(|h| h.get(f).cloned())
                .map_or(Reply::Null, Reply::Bulk)
        })
        .collect();
    Ok(Reply::Array(values).into())
}

/// `HGETALL key`: a map in RESP3, alternating fields and values in RESP2.
pub fn hgetall(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    let elements = hash.iter().flat_map(|h| h.iter());
    OutputBudget::check(ctx.shared, elements.flat_map(|(f, v)| [f.len(), v.len()]))?;
    Ok(Reply::Map(
        hash.iter()
            .flat_map(|h| h.iter())
            .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
            .collect(),
    )
    .into())
}

/// `HDEL key field [field …]`.
pub fn hdel(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let fields = slices(args);
    let removed = ctx
        .store()
        .hash_remove(key, &fields, ctx.now)
        .map_err(store_error)?;
    if removed > 0 {
        after_change(ctx, HASH, "hdel", key);
    }
    Ok(Reply::Integer(removed as i64).into())
}

/// `HEXISTS key field`.
pub fn hexists(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    let field = args.bytes()?;
    Ok(Reply::Integer(i64::from(hash.is_some_and(|h| h.get(field).is_some()))).into())
}

/// `HLEN key`.
pub fn hlen(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    Ok(Reply::Integer(hash.map_or(0, |h| h.len() as i64)).into())
}

/// `HKEYS key`.
pub fn hkeys(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    OutputBudget::check(
        ctx.shared,
        hash.iter().flat_map(|h| h.iter()).map(|(f, _)| f.len()),
    )?;
    Ok(Reply::Array(
        hash.iter()
            .flat_map(|h| h.iter())
            .map(|(f, _)| Reply::Bulk(f.clone()))
            .collect(),
    )
    .into())
}

/// `HVALS key`.
pub fn hvals(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read(ctx, args.bytes()?, hash_of)?;
    OutputBudget::check(
        ctx.shared,
        hash.iter().flat_map(|h| h.iter()).map(|(_, v)| v.len()),
    )?;
    Ok(Reply::Array(
        hash.iter()
            .flat_map(|h| h.iter())
            .map(|(_, v)| Reply::Bulk(v.clone()))
            .collect(),
    )
    .into())
}

/// `HINCRBY key field delta`.
pub fn hincrby(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let field = args.bytes()?;
    let delta = args.int()?;
    match ctx.store().hash_add_i64(key, field, delta, ctx.now) {
        Ok(value) => {
            ctx.notify(HASH, "hincrby", key);
            Ok(Reply::Integer(value).into())
        }
        Err(StoreError::NotInteger) => Err(error("ERR hash value is not an integer")),
        Err(e) => Err(store_error(e)),
    }
}

/// `SADD key member [member …]`.
pub fn sadd(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let members = slices(args);
    let added = ctx
        .store()
        .set_add(key, &members, ctx.now)
        .map_err(store_error)?;
    if added > 0 {
        ctx.notify(SET, "sadd", key);
    }
    Ok(Reply::Integer(added as i64).into())
}

/// `SREM key member [member …]`.
pub fn srem(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let members = slices(args);
    let removed = ctx
        .store()
        .set_remove(key, &members, ctx.now)
        .map_err(store_error)?;
    if removed > 0 {
        after_change(ctx, SET, "srem", key);
    }
    Ok(Reply::Integer(removed as i64).into())
}

/// `SMEMBERS key`: a set in RESP3, an array in RESP2.
pub fn smembers(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let set = read(ctx, args.bytes()?, set_of)?;
    OutputBudget::check(
        ctx.shared,
        set.iter().flat_map(|s| s.iter()).map(|m| m.len()),
    )?;
    Ok(Reply::Set(
        set.iter()
            .flat_map(|s| s.iter())
            .map(|m| Reply::Bulk(m.clone()))
            .collect(),
    )
    .into())
}

/// `SISMEMBER key member`.
pub fn sismember(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let set = read(ctx, args.bytes()?, set_of)?;
    let member = args.bytes()?;
    Ok(Reply::Integer(i64::from(set.is_some_and(|s| s.contains(member)))).into())
}

/// `SCARD key`.
pub fn scard(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let set = read(ctx, args.bytes()?, set_of)?;
    Ok(Reply::Integer(set.map_or(0, |s| s.len() as i64)).into())
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …]`.
pub fn zadd(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let mut flags = ZAddFlags::default();
    let mut incr = false;
    loop {
        let flag = if args.keyword("incr") {
            &mut incr
        } else if args.keyword("nx") {
            &mut flags.nx
        } else if args.keyword("xx") {
            &mut flags.xx
        } else if args.keyword("gt") {
            &mut flags.gt
        } else if args.keyword("lt") {
            &mut flags.lt
        } else if args.keyword("ch") {
            &mut flags.ch
        } else {
            break;
        };
        *flag = true;
    }
    if args.is_empty() || !args.remaining().is_multiple_of(2) {
        return Err(syntax_error());
    }
    if flags.nx && flags.xx {
        return Err(error(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && args.remaining() != 2 {
        return Err(error(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut members = Vec::with_capacity(args.remaining() / 2);
    while !args.is_empty() {
        let score = args.float()?;
        members.push((score, &args.bytes()?[..]));
    }
    if incr {
        let (delta, member) = members[0];
        return super::zset_ops::incr(ctx, key, member, delta, flags);
    }
    let counted = ctx
        .store()
        .zset_add(key, &members, flags, ctx.now)
        .map_err(store_error)?;
    ctx.notify(ZSET, "zadd", key);
    Ok(Reply::Integer(counted as i64).into())
}

/// `ZREM key member [member …]`.
pub fn zrem(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let members = slices(args);
    let removed = ctx
        .store()
        .zset_remove(key, &members, ctx.now)
        .map_err(store_error)?;
    if removed > 0 {
        after_change(ctx, ZSET, "zrem", key);
    }
    Ok(Reply::Integer(removed as i64).into())
}

/// `ZCARD key`.
pub fn zcard(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let zset = read(ctx, args.bytes()?, zset_of)?;
    Ok(Reply::Integer(zset.map_or(0, |z| z.len() as i64)).into())
}

/// `ZSCORE key member`.
pub fn zscore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let zset = read(ctx, args.bytes()?, zset_of)?;
    let member = args.bytes()?;
    Ok(zset
        .and_then(|z| z.score(member))
        .map_or(Reply::Null, Reply::Double)
        .into())
}
