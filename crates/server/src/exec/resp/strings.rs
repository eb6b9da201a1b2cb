//! String commands: `GET`, `SET` and its relatives, `MGET`/`MSET`, `APPEND`, `STRLEN` and
//! the counters.
//!
//! A RESP string is the same item memcached stores (flags 0 when RESP wrote it), so an
//! operator can read a PHP memcached session with `redis-cli GET`. Expiry arguments are
//! turned into absolute deadlines here, with Redis's validation (`ERR invalid expire time
//! in 'set' command` for a non-positive or overflowing time).

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{Condition, DeadlineChange, Previous, StoreError, Value, Write};

use super::args::{Args, Handled, TimeArg, deadline};
use super::pubsub::{GENERIC, STRING};
use super::{Ctx, error, store_error, syntax_error};

/// The string under `key`, a WRONGTYPE error for another type, or `None`.
pub fn read_string(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let found = ctx.store().get(key, ctx.now);
    let counter = if found.is_some() {
        &ctx.shared.stats.keyspace_hits
    } else {
        &ctx.shared.stats.keyspace_misses
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match found.map(|e| e.value) {
        None => Ok(None),
        Some(Value::Str(bytes)) => Ok(Some(bytes)),
        Some(_) => Err(store_error(StoreError::WrongType)),
    }
}

fn null_or_bulk(value: Option<Bytes>) -> Reply {
    value.map_or(Reply::Null, Reply::Bulk)
}

/// A plain string write: no condition, no flags, no previous value.
fn plain(deadline: DeadlineChange) -> Write {
    Write {
        condition: Condition::Always,
        flags: 0,
        deadline,
        previous: Previous::Ignore,
    }
}

/// `GET key`.
pub fn get(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    Ok(null_or_bulk(read_string(ctx, args.bytes()?)?).into())
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms|KEEPTTL]`.
pub fn set(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let value = args.bytes()?;
    let mut condition = Condition::Always;
    let mut expiry: Option<(TimeArg, &Bytes)> = None;
    let mut keepttl = false;
    let mut want_old = false;
    // Every option is checked before the expiry is resolved, so a syntax error wins over an
    // invalid time, as in Redis.
    while !args.is_empty() {
        if let Some(unit) = args.time_unit() {
            let time = args.bytes()?;
            if expiry.is_some() || keepttl {
                return Err(syntax_error());
            }
            expiry = Some((unit, time));
        } else if condition != Condition::IfPresent && args.keyword("nx") {
            condition = Condition::IfAbsent;
        } else if condition != Condition::IfAbsent && args.keyword("xx") {
            condition = Condition::IfPresent;
        } else if expiry.is_none() && args.keyword("keepttl") {
            keepttl = true;
        } else if args.keyword("get") {
            want_old = true;
        } else {
            return Err(syntax_error());
        }
    }
    let change = match expiry {
        Some((unit, time)) => {
            DeadlineChange::Set(Some(deadline(time, unit, ctx.now, "set", true)?))
        }
        None if keepttl => DeadlineChange::Keep,
        None => DeadlineChange::Set(None),
    };
    let write = Write {
        condition,
        previous: if want_old {
            Previous::Return
        } else {
            Previous::Ignore
        },
        ..plain(change)
    };
    let outcome = ctx
        .store()
        .write(key, value, write, ctx.now)
        .map_err(store_error)?;
    if outcome.is_stored() {
        ctx.notify(STRING, "set", key);
        if expiry.is_some() {
            ctx.notify(GENERIC, "expire", key);
        }
    }
    Ok(if want_old {
        null_or_bulk(outcome.previous.and_then(|v| match v {
            Value::Str(b) => Some(b),
            _ => None,
        }))
    } else if outcome.is_stored() {
        Reply::ok()
    } else {
        Reply::Null
    }
    .into())
}

/// `SETEX` and `PSETEX`: `key time value`.
fn set_with_ttl(ctx: &mut Ctx<'_>, args: &mut Args<'_>, unit: TimeArg, name: &str) -> Handled {
    let key = args.bytes()?;
    let at = deadline(args.bytes()?, unit, ctx.now, name, true)?;
    let value = args.bytes()?;
    ctx.store()
        .write(key, value, plain(DeadlineChange::Set(Some(at))), ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, "set", key);
    ctx.notify(GENERIC, "expire", key);
    Ok(Reply::ok().into())
}

/// `SETEX key seconds value`.
pub fn setex(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    set_with_ttl(ctx, args, TimeArg::Seconds, "setex")
}

/// `PSETEX key milliseconds value`.
pub fn psetex(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    set_with_ttl(ctx, args, TimeArg::Millis, "psetex")
}

/// `SETNX key value`.
pub fn setnx(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let value = args.bytes()?;
    let write = Write {
        condition: Condition::IfAbsent,
        ..plain(DeadlineChange::Set(None))
    };
    let outcome = ctx
        .store()
        .write(key, value, write, ctx.now)
        .map_err(store_error)?;
    if outcome.is_stored() {
        ctx.notify(STRING, "set", key);
    }
    Ok(Reply::Integer(i64::from(outcome.is_stored())).into())
}

/// `GETEX key [EX s|PX ms|EXAT ts|PXAT ms|PERSIST]`.
pub fn getex(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    // None: leave the deadline; Some(None): persist; Some(Some(at)): expire at.
    let mut change: Option<Option<u64>> = None;
    while !args.is_empty() {
        if change.is_some() {
            return Err(syntax_error());
        }
        if let Some(unit) = args.time_unit() {
            change = Some(Some(deadline(args.bytes()?, unit, ctx.now, "getex", true)?));
        } else if args.keyword("persist") {
            change = Some(None);
        } else {
            return Err(syntax_error());
        }
    }
    let found = ctx.store().retime(key, ctx.now, |value, current| {
        let Value::Str(bytes) = value else {
            return (Err(()), None);
        };
        // PERSIST on a key without a deadline changes nothing (and journals nothing).
        let change = match change {
            Some(None) if current.is_none() => None,
            other => other,
        };
        (Ok((bytes.clone(), change)), change)
    });
    match found {
        None => Ok(Reply::Null.into()),
        Some(Err(())) => Err(store_error(StoreError::WrongType)),
        Some(Ok((bytes, applied))) => {
            match applied {
                Some(Some(_)) => ctx.notify(GENERIC, "expire", key),
                Some(None) => ctx.notify(GENERIC, "persist", key),
                None => {}
            }
            Ok(Reply::Bulk(bytes).into())
        }
    }
}

/// `GETDEL key`.
pub fn getdel(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let value = ctx.store().take_string(key, ctx.now).map_err(store_error)?;
    if value.is_some() {
        ctx.notify(GENERIC, "del", key);
    }
    Ok(null_or_bulk(value).into())
}

/// `MGET key [key …]`: a missing key or one of another type is a null, as in Redis.
pub fn mget(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let replies = args
        .map(|key| match ctx.store().get(key, ctx.now).map(|e| e.value) {
            Some(Value::Str(bytes)) => Reply::Bulk(bytes),
            _ => Reply::Null,
        })
        .collect();
    Ok(Reply::Array(replies).into())
}

/// `MSET key value [key value …]`. Each key is written on its own (a concurrent reader may
/// see some of them first); Redis's all-at-once visibility would need every shard locked.
pub fn mset(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let pairs = args.rest();
    if !pairs.len().is_multiple_of(2) {
        return Err(super::wrong_args("mset"));
    }
    for pair in pairs.chunks(2) {
        ctx.store()
            .write(
                &pair[0],
                &pair[1],
                plain(DeadlineChange::Set(None)),
                ctx.now,
            )
            .map_err(store_error)?;
        ctx.notify(STRING, "set", &pair[0]);
    }
    Ok(Reply::ok().into())
}

/// `APPEND key value`.
pub fn append(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let value = args.bytes()?;
    let max = ctx.shared.config.max_item_size;
    let len = ctx
        .store()
        .extend_or_create(key, value, max, ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, "append", key);
    Ok(Reply::Integer(len as i64).into())
}

/// `STRLEN key`.
pub fn strlen(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let value = read_string(ctx, args.bytes()?)?;
    Ok(Reply::Integer(value.map_or(0, |v| v.len() as i64)).into())
}

fn add(ctx: &mut Ctx<'_>, key: &[u8], delta: i64, event: &str) -> Handled {
    let value = ctx
        .store()
        .add_i64(key, delta, ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, event, key);
    Ok(Reply::Integer(value).into())
}

/// `INCR key`.
pub fn incr(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    add(ctx, args.bytes()?, 1, "incrby")
}

/// `DECR key`.
pub fn decr(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    add(ctx, args.bytes()?, -1, "decrby")
}

/// `INCRBY key delta`.
pub fn incrby(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    add(ctx, key, args.int()?, "incrby")
}

/// `DECRBY key delta`.
pub fn decrby(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let delta = args
        .int()?
        .checked_neg()
        .ok_or_else(|| error("ERR decrement would overflow"))?;
    add(ctx, key, delta, "decrby")
}
