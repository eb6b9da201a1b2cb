//! Generic key commands: `DEL`/`UNLINK`, `EXISTS`, the `EXPIRE` family, `TTL`/`PTTL`,
//! `PERSIST`, `TYPE`, `RENAME`/`RENAMENX`, `SCAN` and `KEYS`.
//!
//! These work on every type. Deadline changes are atomic read-decide-write steps in the
//! store (`Store::retime`), so `EXPIRE … GT` compares against the deadline it replaces.

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{IfTargetExists, Kind, RenameOutcome, StoreError, Value, glob_match};

use super::args::{Args, Handled, TimeArg, deadline};
use super::pubsub::GENERIC;
use super::{Ctx, OutputBudget, error, store_error, syntax_error};

/// The name `TYPE` and `SCAN … TYPE` use for a kind.
pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "string",
        Kind::Hash => "hash",
        Kind::Set => "set",
        Kind::ZSet => "zset",
        Kind::List => "list",
        Kind::Stream => "stream",
    }
}

/// `DEL key [key …]` and `UNLINK` (the same here: freeing is never deferred because values
/// are reference-counted and small).
pub fn del(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let mut removed = 0;
    for key in args {
        if ctx.store().remove(key, ctx.now).is_some() {
            removed += 1;
            ctx.notify(GENERIC, "del", key);
        }
    }
    Ok(Reply::Integer(removed).into())
}

/// `EXISTS key [key …]`: counts repeats, as Redis does.
pub fn exists(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let found = args
        .filter(|key| ctx.store().get(key, ctx.now).is_some())
        .count();
    Ok(Reply::Integer(found as i64).into())
}

/// The `EXPIRE` family: `key time [NX|XX|GT|LT]…`.
fn expire_generic(ctx: &mut Ctx<'_>, args: &mut Args<'_>, unit: TimeArg, name: &str) -> Handled {
    let key = args.bytes()?;
    let time = args.bytes()?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in args {
        match String::from_utf8_lossy(option)
            .to_ascii_lowercase()
            .as_str()
        {
            "nx" => nx = true,
            "xx" => xx = true,
            "gt" => gt = true,
            "lt" => lt = true,
            _ => {
                return Err(error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let at = deadline(time, unit, ctx.now, name, false)?;
    let applied = ctx.store().retime(key, ctx.now, |_, current| {
        // No deadline counts as an infinite one for GT and LT, as in Redis.
        let allowed = match current {
            None => !xx && !gt,
            Some(current) => !(nx || (gt && at <= current) || (lt && at >= current)),
        };
        (allowed, allowed.then_some(Some(at)))
    });
    if applied != Some(true) {
        return Ok(Reply::Integer(0).into());
    }
    let event = if at <= ctx.now { "del" } else { "expire" };
    ctx.notify(GENERIC, event, key);
    Ok(Reply::Integer(1).into())
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub fn expire(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    expire_generic(ctx, args, TimeArg::Seconds, "expire")
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub fn pexpire(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    expire_generic(ctx, args, TimeArg::Millis, "pexpire")
}

/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`.
pub fn expireat(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    expire_generic(ctx, args, TimeArg::UnixSeconds, "expireat")
}

/// `PEXPIREAT key unix-ms [NX|XX|GT|LT]`.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    expire_generic(ctx, args, TimeArg::UnixMillis, "pexpireat")
}

/// The reply of the TTL family for the key `args` names: `show` turns a deadline into the
/// command's unit; -1 if the key never expires, -2 if it is missing.
fn deadline_reply(ctx: &Ctx<'_>, args: &mut Args<'_>, show: fn(u64, u64) -> i64) -> Handled {
    let found = ctx.store().get(args.bytes()?, ctx.now).map(|e| e.deadline);
    Ok(Reply::Integer(match found {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => show(at, ctx.now),
    })
    .into())
}

/// `TTL key`: seconds left, rounded to the nearest as Redis does; -1 never, -2 missing.
pub fn ttl(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    deadline_reply(ctx, args, |at, now| {
        ((at.saturating_sub(now) + 500) / 1000) as i64
    })
}

/// `PTTL key`.
pub fn pttl(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    deadline_reply(ctx, args, |at, now| at.saturating_sub(now) as i64)
}

/// `EXPIRETIME key`.
pub fn expiretime(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    deadline_reply(ctx, args, |at, _| (at / 1000) as i64)
}

/// `PEXPIRETIME key`.
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    deadline_reply(ctx, args, |at, _| at as i64)
}

/// `PERSIST key`.
pub fn persist(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let changed = ctx.store().retime(key, ctx.now, |_, current| {
        let had = current.is_some();
        (had, had.then_some(None))
    });
    if changed != Some(true) {
        return Ok(Reply::Integer(0).into());
    }
    ctx.notify(GENERIC, "persist", key);
    Ok(Reply::Integer(1).into())
}

/// `TYPE key`.
pub fn type_(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let name = ctx
        .store()
        .get(args.bytes()?, ctx.now)
        .map_or("none", |e| type_name(e.value.kind()));
    Ok(Reply::Simple(Bytes::from_static(name.as_bytes())).into())
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &mut Args<'_>, target: IfTargetExists) -> Handled {
    let src = args.bytes()?;
    let dst = args.bytes()?;
    match ctx.store().rename(src, dst, target, ctx.now) {
        // Spring Session matches this text to ignore a rename of an expired session.
        RenameOutcome::NoSuchKey => Err(error("ERR no such key")),
        RenameOutcome::TargetExists => Ok(Reply::Integer(0).into()),
        RenameOutcome::TargetRevoked => Err(store_error(StoreError::Revoked)),
        RenameOutcome::Renamed => {
            if src != dst {
                ctx.notify(GENERIC, "rename_from", src);
                ctx.notify(GENERIC, "rename_to", dst);
            }
            Ok(match target {
                IfTargetExists::Keep => Reply::Integer(1),
                IfTargetExists::Replace => Reply::ok(),
            }
            .into())
        }
    }
}

/// `RENAME key newkey`.
pub fn rename(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    rename_generic(ctx, args, IfTargetExists::Replace)
}

/// `RENAMENX key newkey`.
pub fn renamenx(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    rename_generic(ctx, args, IfTargetExists::Keep)
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`. See `Store::scan` for the
/// cursor; the guarantees are Redis's (a key present throughout is returned at least once,
/// `COUNT` is a hint about work, not about the number of keys returned).
pub fn scan(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let cursor = std::str::from_utf8(args.bytes()?)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| error("ERR invalid cursor"))?;
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    let mut kind: Option<&[u8]> = None;
    while !args.is_empty() {
        let option = args.word()?;
        if args.is_empty() {
            return Err(syntax_error());
        }
        match option.as_str() {
            "match" => pattern = Some(args.bytes()?),
            "count" => match args.int()? {
                n if n >= 1 => count = n as usize,
                _ => return Err(syntax_error()),
            },
            "type" => kind = Some(args.bytes()?),
            _ => return Err(syntax_error()),
        }
    }
    let matches = |key: &[u8], value: &Value| {
        pattern.is_none_or(|p| glob_match(p, key))
            && kind.is_none_or(|t| t.eq_ignore_ascii_case(type_name(value.kind()).as_bytes()))
    };
    loop {
        // The reply is collected within the output limit. If a page would pass it (a huge
        // `COUNT`), the same cursor is scanned again for fewer entries: about as many as fitted
        // (`kept`), and at most half as many as before, so this ends. Redis's guarantees hold
        // because nothing is returned from the attempt that did not fit.
        let mut budget = OutputBudget::new(ctx.shared);
        budget.charge(20); // The cursor.
        let (mut fits, mut kept) = (true, 0);
        let mut keep = |key: &[u8], value: &Value| {
            if !matches(key, value) {
                return false;
            }
            fits = fits && budget.charge(key.len());
            kept += usize::from(fits);
            fits
        };
        let (next, keys) = ctx.store().scan(cursor, count, ctx.now, &mut keep);
        if fits {
            return Ok(Reply::Array(vec![
                Reply::Bulk(Bytes::from(next.to_string())),
                Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
            ])
            .into());
        }
        if count == 1 {
            // One key always fits (the limit is at least the longest argument); only keys
            // tied at one hash position could get here.
            return Err(budget.refusal());
        }
        count = (count / 2).min(kept).max(1);
    }
}

/// `KEYS pattern`. Like Redis, one reply with every match: on a large keyspace prefer
/// `SCAN`. It holds one shard lock at a time, so other clients keep being served. Keys stop
/// being collected once the reply would pass the output limit, and the command is refused.
pub fn keys(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let pattern = args.bytes()?;
    let all = pattern.as_ref() == b"*";
    let mut budget = OutputBudget::new(ctx.shared);
    let mut fits = true;
    let mut keep = |key: &[u8], _: &Value| {
        if !fits || !(all || glob_match(pattern, key)) {
            return false;
        }
        fits = budget.charge(key.len());
        fits
    };
    let keys = ctx.store().keys(ctx.now, &mut keep);
    if !fits {
        return Err(budget.refusal());
    }
    Ok(Reply::Array(keys.into_iter().map(Reply::Bulk).collect()).into())
}
