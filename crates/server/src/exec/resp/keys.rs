//! Generic key commands: `DEL`/`UNLINK`, `EXISTS`, the `EXPIRE` family, `TTL`/`PTTL`,
//! `PERSIST`, `TYPE`, `RENAME`/`RENAMENX`, `SCAN` and `KEYS`.
//!
//! These work on every type. Deadline changes are atomic read-decide-write steps in the
//! store (`Store::retime`), so `EXPIRE … GT` compares against the deadline it replaces.

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{IfTargetExists, Kind, RenameOutcome, Value, glob_match};

use super::pubsub::GENERIC;
use super::strings::{TimeArg, deadline};
use super::{Answer, Ctx, error, is, syntax_error};

/// The name `TYPE` and `SCAN … TYPE` use for a kind.
pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "string",
        Kind::Hash => "hash",
        Kind::Set => "set",
        Kind::ZSet => "zset",
    }
}

/// `DEL key [key …]` and `UNLINK` (the same here: freeing is never deferred because values
/// are reference-counted and small).
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let mut removed = 0;
    for key in &args[1..] {
        if ctx.store().remove(key, ctx.now).is_some() {
            removed += 1;
            ctx.notify(GENERIC, "del", key);
        }
    }
    Reply::Integer(removed).into()
}

/// `EXISTS key [key …]`: counts repeats, as Redis does.
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let found = args[1..]
        .iter()
        .filter(|key| ctx.store().get(key, ctx.now).is_some())
        .count();
    Reply::Integer(found as i64).into()
}

fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit: TimeArg, name: &str) -> Answer {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for arg in &args[3..] {
        if is(arg, "nx") {
            nx = true;
        } else if is(arg, "xx") {
            xx = true;
        } else if is(arg, "gt") {
            gt = true;
        } else if is(arg, "lt") {
            lt = true;
        } else {
            return error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(arg)
            ))
            .into();
        }
    }
    if nx && (xx || gt || lt) {
        return error("ERR NX and XX, GT or LT options at the same time are not compatible").into();
    }
    if gt && lt {
        return error("ERR GT and LT options at the same time are not compatible").into();
    }
    let at = match deadline(&args[2], unit, ctx.now, name, false) {
        Ok(at) => at,
        Err(reply) => return reply.into(),
    };
    let key = &args[1];
    let applied = ctx.store().retime(key, ctx.now, |_, current| {
        // No deadline counts as an infinite one for GT and LT, as in Redis.
        let allowed = match current {
            None => !xx && !gt,
            Some(current) => !(nx || (gt && at <= current) || (lt && at >= current)),
        };
        (allowed, allowed.then_some(Some(at)))
    });
    match applied {
        Some(true) => {
            let event = if at <= ctx.now { "del" } else { "expire" };
            ctx.notify(GENERIC, event, key);
            Reply::Integer(1).into()
        }
        _ => Reply::Integer(0).into(),
    }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    expire_generic(ctx, args, TimeArg::Seconds, "expire")
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    expire_generic(ctx, args, TimeArg::Millis, "pexpire")
}

/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`.
pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    expire_generic(ctx, args, TimeArg::UnixSeconds, "expireat")
}

/// `PEXPIREAT key unix-ms [NX|XX|GT|LT]`.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    expire_generic(ctx, args, TimeArg::UnixMillis, "pexpireat")
}

/// The key's deadline: `Err(-2)` if missing, `Ok(None)` if it never expires.
fn deadline_of(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<u64>, i64> {
    ctx.store().get(key, ctx.now).map(|e| e.deadline).ok_or(-2)
}

/// `TTL key`: seconds left, rounded to the nearest as Redis does; -1 never, -2 missing.
pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    Reply::Integer(match deadline_of(ctx, &args[1]) {
        Err(code) => code,
        Ok(None) => -1,
        Ok(Some(at)) => ((at.saturating_sub(ctx.now) + 500) / 1000) as i64,
    })
    .into()
}

/// `PTTL key`.
pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    Reply::Integer(match deadline_of(ctx, &args[1]) {
        Err(code) => code,
        Ok(None) => -1,
        Ok(Some(at)) => at.saturating_sub(ctx.now) as i64,
    })
    .into()
}

/// `EXPIRETIME key`.
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    Reply::Integer(match deadline_of(ctx, &args[1]) {
        Err(code) => code,
        Ok(None) => -1,
        Ok(Some(at)) => (at / 1000) as i64,
    })
    .into()
}

/// `PEXPIRETIME key`.
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    Reply::Integer(match deadline_of(ctx, &args[1]) {
        Err(code) => code,
        Ok(None) => -1,
        Ok(Some(at)) => at as i64,
    })
    .into()
}

/// `PERSIST key`.
pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let key = &args[1];
    let changed = ctx.store().retime(key, ctx.now, |_, current| {
        let had = current.is_some();
        (had, had.then_some(None))
    });
    if changed == Some(true) {
        ctx.notify(GENERIC, "persist", key);
        Reply::Integer(1).into()
    } else {
        Reply::Integer(0).into()
    }
}

/// `TYPE key`.
pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let name = ctx
        .store()
        .get(&args[1], ctx.now)
        .map_or("none", |e| type_name(e.value.kind()));
    Reply::Simple(Bytes::from_static(name.as_bytes())).into()
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Answer {
    let (src, dst) = (&args[1], &args[2]);
    let if_target_exists = if nx {
        IfTargetExists::Keep
    } else {
        IfTargetExists::Replace
    };
    match ctx.store().rename(src, dst, if_target_exists, ctx.now) {
        // Spring Session matches this text to ignore a rename of an expired session.
        RenameOutcome::NoSuchKey => error("ERR no such key").into(),
        RenameOutcome::TargetExists => Reply::Integer(0).into(),
        RenameOutcome::Renamed => {
            if src != dst {
                ctx.notify(GENERIC, "rename_from", src);
                ctx.notify(GENERIC, "rename_to", dst);
            }
            if nx {
                Reply::Integer(1).into()
            } else {
                Reply::ok().into()
            }
        }
    }
}

/// `RENAME key newkey`.
pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    rename_generic(ctx, args, false)
}

/// `RENAMENX key newkey`.
pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    rename_generic(ctx, args, true)
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`. See `Store::scan` for the
/// cursor; the guarantees are Redis's (a key present throughout is returned at least once,
/// `COUNT` is a hint about work, not about the number of keys returned).
pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let Some(cursor) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return error("ERR invalid cursor").into();
    };
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    let mut kind: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return syntax_error().into();
        };
        if is(&args[i], "match") {
            pattern = Some(value);
        } else if is(&args[i], "count") {
            match super::parse_int(value) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return syntax_error().into(),
                None => return super::not_integer().into(),
            }
        } else if is(&args[i], "type") {
            kind = Some(value);
        } else {
            return syntax_error().into();
        }
        i += 2;
    }
    let mut keep = |key: &[u8], value: &Value| {
        pattern.is_none_or(|p| glob_match(p, key))
            && kind.is_none_or(|t| t.eq_ignore_ascii_case(type_name(value.kind()).as_bytes()))
    };
    let (next, keys) = ctx.store().scan(cursor, count, ctx.now, &mut keep);
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ])
    .into()
}

/// `KEYS pattern`. Like Redis, one reply with every match: on a large keyspace prefer
/// `SCAN`. It holds one shard lock at a time, so other clients keep being served.
pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Answer {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let mut keep = |key: &[u8], _: &Value| all || glob_match(pattern, key);
    let keys = ctx.store().keys(ctx.now, &mut keep);
    Reply::Array(keys.into_iter().map(Reply::Bulk).collect()).into()
}
