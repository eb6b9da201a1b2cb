//! Key commands beyond the session set: `COPY`, `MOVE`, `TOUCH`, `RANDOMKEY`,
//! `MEMORY USAGE`, and `WAIT` (no replicas exist, so it answers at once).
//!
//! `COPY` and `MOVE` read one key and write another, possibly in another database; they run
//! holding the script gate exclusively (their rows say `EXCLUSIVE`), so no client sees the
//! halfway state. The copy is written whole (`Store::put_value`, one journal record) and
//! charged to the budget in full, although a copied collection shares its elements with the
//! source until either changes.

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::DeadlineChange;

use super::args::{Args, Handled};
use super::pubsub::GENERIC;
use super::{Ctx, error, parse_int, sampling, store_error, syntax_error};
use crate::DATABASES;

fn database(arg: &[u8]) -> Result<usize, Reply> {
    let index = parse_int(arg).ok_or_else(super::not_integer)?;
    if !(0..DATABASES as i64).contains(&index) {
        return Err(error("ERR DB index is out of range"));
    }
    Ok(index as usize)
}

/// `COPY source destination [DB index] [REPLACE]`: 1 if copied.
pub fn copy(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (src, dst) = (args.bytes()?, args.bytes()?);
    let mut db = ctx.session.db;
    let mut replace = false;
    while !args.is_empty() {
        if args.keyword("replace") {
            replace = true;
        } else if args.remaining() >= 2 && args.keyword("db") {
            db = database(args.bytes()?)?;
        } else {
            return Err(syntax_error());
        }
    }
    if src == dst && db == ctx.session.db {
        return Err(error("ERR source and destination objects are the same"));
    }
    let Some(entry) = ctx.store().get(src, ctx.now) else {
        return Ok(Reply::Integer(0).into());
    };
    let target = &ctx.shared.databases[db];
    let copied = target
        .put_value(
            dst,
            entry.value,
            !replace,
            DeadlineChange::Set(entry.deadline),
            ctx.now,
        )
        .map_err(store_error)?;
    if copied {
        ctx.shared.resp.pubsub.notify(db, GENERIC, "copy_to", dst);
    }
    Ok(Reply::Integer(i64::from(copied)).into())
}

/// `MOVE key db`: moves the key to another database if it is absent there; 1 if moved.
pub fn move_(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let db = database(args.bytes()?)?;
    if db == ctx.session.db {
        return Err(error("ERR source and destination objects are the same"));
    }
    let Some(entry) = ctx.store().get(key, ctx.now) else {
        return Ok(Reply::Integer(0).into());
    };
    let target = &ctx.shared.databases[db];
    let moved = target
        .put_value(
            key,
            entry.value,
            true,
            DeadlineChange::Set(entry.deadline),
            ctx.now,
        )
        .map_err(store_error)?;
    if moved {
        ctx.store().remove(key, ctx.now);
        ctx.notify(GENERIC, "move_from", key);
        ctx.shared.resp.pubsub.notify(db, GENERIC, "move_to", key);
    }
    Ok(Reply::Integer(i64::from(moved)).into())
}

/// `TOUCH key [key …]`: how many exist. A read (the session layer's "last seen"); there is
/// no access clock to update.
pub fn touch(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let found = args
        .filter(|key| ctx.store().get(key, ctx.now).is_some())
        .count();
    Ok(Reply::Integer(found as i64).into())
}

/// `RANDOMKEY`: a key from a `SCAN` step at a random cursor (wrapping to the start once),
/// so it costs a step, not a pass over the keyspace; null when the database is empty.
pub fn randomkey(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    let store = ctx.store();
    let mut cursor = sampling::next_u64();
    let mut wrapped = false;
    loop {
        let (next, keys) = store.scan(cursor, 1, ctx.now, &mut |_, _| true);
        if let Some(key) = keys.into_iter().next() {
            return Ok(Reply::Bulk(key).into());
        }
        if next == 0 {
            if wrapped || cursor == 0 {
                return Ok(Reply::Null.into());
            }
            wrapped = true;
        }
        cursor = next;
    }
}

/// `MEMORY USAGE key [SAMPLES n]`: the bytes the store charges for the key; `MEMORY HELP`.
pub fn memory(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.word()?;
    match sub.as_str() {
        "usage" => {
            let key = args.bytes()?;
            if args.remaining() == 2 && args.keyword("samples") {
                args.int()?;
            } else if !args.is_empty() {
                return Err(syntax_error());
            }
            Ok(ctx
                .store()
                .peek(key, ctx.now)
                .map_or(Reply::Null, |entry| {
                    let charged =
                        key.len() as u64 + entry.value.cost() + sessiond_store::ITEM_OVERHEAD;
                    Reply::Integer(charged as i64)
                })
                .into())
        }
        "help" => Ok(Reply::Array(
            [
                "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Bulk(Bytes::from_static(l.as_bytes())))
            .collect(),
        )
        .into()),
        _ => Err(super::unknown_subcommand("memory", sub.as_bytes())),
    }
}

/// `WAIT numreplicas timeout`: sessiond has no replicas, so 0 at once (Redis answers the
/// same on a primary without replicas once the timeout passes; with `numreplicas` 0 it
/// answers at once too). A negative timeout is refused as Redis refuses it.
pub fn wait(_: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    args.int()?;
    if args.int()? < 0 {
        return Err(error("ERR timeout is negative"));
    }
    Ok(Reply::Integer(0).into())
}
