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

use super::pubsub::{GENERIC, STRING};
use super::{Answer, Ctx, error, is, not_integer, parse_int, store_error, syntax_error};

/// The unit of an expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Relative seconds (`EX`, `EXPIRE`).
    Seconds,
    /// Relative milliseconds (`PX`, `PEXPIRE`).
    Millis,
    /// Absolute Unix seconds (`EXAT`, `EXPIREAT`).
    UnixSeconds,
    /// Absolute Unix milliseconds (`PXAT`, `PEXPIREAT`).
    UnixMillis,
}

/// Resolves an expiry argument to an absolute deadline (Unix ms). `strict` (the `SET`
/// family and `GETEX`) refuses a value that is not positive, as Redis does there; `EXPIRE`
/// and friends accept any value (a past deadline deletes the key). Overflow is refused
/// with the command's `invalid expire time` error either way.
pub fn deadline(
    arg: &[u8],
    unit: TimeArg,
    now: u64,
    command: &str,
    strict: bool,
) -> Result<u64, Reply> {
    let n = parse_int(arg).ok_or_else(not_integer)?;
    let invalid = || error(format!("ERR invalid expire time in '{command}' command"));
    if strict && n <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        TimeArg::Seconds | TimeArg::UnixSeconds => n.checked_mul(1000).ok_or_else(invalid)?,
        TimeArg::Millis | TimeArg::UnixMillis => n,
    };
    let at = match unit {
        TimeArg::Seconds | TimeArg::Millis => (now as i64).checked_add(ms).ok_or_else(invalid)?,
        TimeArg::UnixSeconds | TimeArg::UnixMillis => ms,
    };
    // A deadline at or before the epoch is simply "already passed".
    Ok(at.max(1) as u64)
}

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

/// `GET key`.
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    match read_string(ctx, &args[1]) {
        Ok(value) => null_or_bulk(value).into(),
        Err(reply) => reply.into(),
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms|KEEPTTL]`.
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let mut exists = Condition::Always;
    let mut change = DeadlineChange::Set(None);
    let mut expiry: Option<(TimeArg, &Bytes)> = None;
    let mut keepttl = false;
    let mut want_old = false;
    let mut i = 3;
    while i < args.len() {
        let arg = &args[i];
        let next = args.get(i + 1);
        let unit = if is(arg, "ex") {
            Some(TimeArg::Seconds)
        } else if is(arg, "px") {
            Some(TimeArg::Millis)
        } else if is(arg, "exat") {
            Some(TimeArg::UnixSeconds)
        } else if is(arg, "pxat") {
            Some(TimeArg::UnixMillis)
        } else {
            None
        };
        if let Some(unit) = unit {
            let Some(value) = next else {
                return syntax_error().into();
            };
            if expiry.is_some() || keepttl {
                return syntax_error().into();
            }
            expiry = Some((unit, value));
            i += 2;
            continue;
        }
        if is(arg, "nx") && exists != Condition::IfPresent {
            exists = Condition::IfAbsent;
        } else if is(arg, "xx") && exists != Condition::IfAbsent {
            exists = Condition::IfPresent;
        } else if is(arg, "keepttl") && expiry.is_none() {
            keepttl = true;
        } else if is(arg, "get") {
            want_old = true;
        } else {
            return syntax_error().into();
        }
        i += 1;
    }
    if let Some((unit, value)) = expiry {
        match deadline(value, unit, ctx.now, "set", true) {
            Ok(at) => change = DeadlineChange::Set(Some(at)),
            Err(reply) => return reply.into(),
        }
    } else if keepttl {
        change = DeadlineChange::Keep;
    }
    let key = &args[1];
    match ctx.store().write(
        key,
        &args[2],
        Write {
            condition: exists,
            flags: 0,
            deadline: change,
            previous: if want_old {
                Previous::Return
            } else {
                Previous::Ignore
            },
        },
        ctx.now,
    ) {
        Err(e) => store_error(e).into(),
        Ok(outcome) => {
            if outcome.is_stored() {
                ctx.notify(STRING, "set", key);
                if expiry.is_some() {
                    ctx.notify(GENERIC, "expire", key);
                }
            }
            if want_old {
                null_or_bulk(outcome.previous.and_then(|v| match v {
                    Value::Str(b) => Some(b),
                    _ => None,
                }))
                .into()
            } else if outcome.is_stored() {
                Reply::ok().into()
            } else {
                Reply::Null.into()
            }
        }
    }
}

fn set_with_ttl(ctx: &mut Ctx<'_>, args: &[Bytes], unit: TimeArg, name: &str) -> Answer {
    let at = match deadline(&args[2], unit, ctx.now, name, true) {
        Ok(at) => at,
        Err(reply) => return reply.into(),
    };
    let key = &args[1];
    match ctx.store().write(
        key,
        &args[3],
        Write {
            condition: Condition::Always,
            flags: 0,
            deadline: DeadlineChange::Set(Some(at)),
            previous: Previous::Ignore,
        },
        ctx.now,
    ) {
        Err(e) => store_error(e).into(),
        Ok(_) => {
            ctx.notify(STRING, "set", key);
            ctx.notify(GENERIC, "expire", key);
            Reply::ok().into()
        }
    }
}

/// `SETEX key seconds value`.
pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    set_with_ttl(ctx, args, TimeArg::Seconds, "setex")
}

/// `PSETEX key milliseconds value`.
pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    set_with_ttl(ctx, args, TimeArg::Millis, "psetex")
}

/// `SETNX key value`.
pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let key = &args[1];
    match ctx.store().write(
        key,
        &args[2],
        Write {
            condition: Condition::IfAbsent,
            flags: 0,
            deadline: DeadlineChange::Set(None),
            previous: Previous::Ignore,
        },
        ctx.now,
    ) {
        Err(e) => store_error(e).into(),
        Ok(outcome) => {
            if outcome.is_stored() {
                ctx.notify(STRING, "set", key);
            }
            Reply::Integer(i64::from(outcome.is_stored())).into()
        }
    }
}

/// `GETEX key [EX s|PX ms|EXAT ts|PXAT ms|PERSIST]`.
pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    // None: leave the deadline; Some(None): persist; Some(Some(at)): expire at.
    let mut change: Option<Option<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        let unit = if is(arg, "ex") {
            Some(TimeArg::Seconds)
        } else if is(arg, "px") {
            Some(TimeArg::Millis)
        } else if is(arg, "exat") {
            Some(TimeArg::UnixSeconds)
        } else if is(arg, "pxat") {
            Some(TimeArg::UnixMillis)
        } else {
            None
        };
        match unit {
            Some(unit) if change.is_none() => {
                let Some(value) = args.get(i + 1) else {
                    return syntax_error().into();
                };
                match deadline(value, unit, ctx.now, "getex", true) {
                    Ok(at) => change = Some(Some(at)),
                    Err(reply) => return reply.into(),
                }
                i += 2;
            }
            None if is(arg, "persist") && change.is_none() => {
                change = Some(None);
                i += 1;
            }
            _ => return syntax_error().into(),
        }
    }
    let key = &args[1];
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
        None => Reply::Null.into(),
        Some(Err(())) => store_error(StoreError::WrongType).into(),
        Some(Ok((bytes, applied))) => {
            match applied {
                Some(Some(_)) => ctx.notify(GENERIC, "expire", key),
                Some(None) => ctx.notify(GENERIC, "persist", key),
                None => {}
            }
            Reply::Bulk(bytes).into()
        }
    }
}

/// `GETDEL key`.
pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let key = &args[1];
    match ctx.store().take_string(key, ctx.now) {
        Err(e) => store_error(e).into(),
        Ok(value) => {
            if value.is_some() {
                ctx.notify(GENERIC, "del", key);
            }
            null_or_bulk(value).into()
        }
    }
}

/// `MGET key [key …]`: a missing key or one of another type is a null, as in Redis.
pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let replies = args[1..]
        .iter()
        .map(|key| match ctx.store().get(key, ctx.now).map(|e| e.value) {
            Some(Value::Str(bytes)) => Reply::Bulk(bytes),
            _ => Reply::Null,
        })
        .collect();
    Reply::Array(replies).into()
}

/// `MSET key value [key value …]`. Each key is written on its own (a concurrent reader may
/// see some of them first); Redis's all-at-once visibility would need every shard locked.
pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    if args.len().is_multiple_of(2) {
        return super::wrong_args("mset").into();
    }
    for pair in args[1..].chunks(2) {
        if let Err(e) = ctx.store().write(
            &pair[0],
            &pair[1],
            Write {
                condition: Condition::Always,
                flags: 0,
                deadline: DeadlineChange::Set(None),
                previous: Previous::Ignore,
            },
            ctx.now,
        ) {
            return store_error(e).into();
        }
        ctx.notify(STRING, "set", &pair[0]);
    }
    Reply::ok().into()
}

/// `APPEND key value`.
pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let key = &args[1];
    let max = ctx.shared.config.max_item_size;
    match ctx.store().extend_or_create(key, &args[2], max, ctx.now) {
        Err(e) => store_error(e).into(),
        Ok(len) => {
            ctx.notify(STRING, "append", key);
            Reply::Integer(len as i64).into()
        }
    }
}

/// `STRLEN key`.
pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    match read_string(ctx, &args[1]) {
        Ok(value) => Reply::Integer(value.map_or(0, |v| v.len() as i64)).into(),
        Err(reply) => reply.into(),
    }
}

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64, event: &str) -> Answer {
    match ctx.store().add_i64(key, delta, ctx.now) {
        Err(e) => store_error(e).into(),
        Ok(value) => {
            ctx.notify(STRING, event, key);
            Reply::Integer(value).into()
        }
    }
}

/// `INCR key`.
pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    incr_by(ctx, &args[1], 1, "incrby")
}

/// `DECR key`.
pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    incr_by(ctx, &args[1], -1, "decrby")
}

/// `INCRBY key delta`.
pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    match parse_int(&args[2]) {
        Some(delta) => incr_by(ctx, &args[1], delta, "incrby"),
        None => not_integer().into(),
    }
}

/// `DECRBY key delta`.
pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    match parse_int(&args[2]).map(i64::checked_neg) {
        Some(Some(delta)) => incr_by(ctx, &args[1], delta, "decrby"),
        Some(None) => error("ERR decrement would overflow").into(),
        None => not_integer().into(),
    }
}
