//! List commands: `LPUSH`/`RPUSH` (and `X`), `LPOP`/`RPOP`, `LLEN`, `LRANGE`, `LINDEX`,
//! `LSET`, `LINSERT`, `LREM`, `LTRIM`, `LPOS`, `LMOVE`, `RPOPLPUSH`, `LMPOP`, and the
//! blocking pops `BLPOP`, `BRPOP`, `BLMOVE`, `BRPOPLPUSH`, `BLMPOP`.
//!
//! Writes are single store operations (atomic, journaled per change); reads take the list
//! under the shard lock and build the reply after, measured first against the output limit
//! ([`OutputBudget`]), as a pop with a count is before it pops (so a reply that could not be
//! sent never takes elements off a list).
//!
//! A blocking pop first tries what its non-blocking twin would; if every key is empty and
//! the command is the connection's own (not inside `EXEC` or a script, where Redis never
//! blocks: the session's `may_block`), it leaves a [`Wait`] in the session for the
//! connection to register ([`super::blocking`]) and answers nothing yet. Timeouts are
//! Redis's: float seconds, 0 waits forever, negative or unparsable is an error.

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{End, List, ListSetOutcome, Place, StoreError, Value, list_index, list_range};
use std::sync::Arc;

use super::args::{Args, Handled};
use super::blocking::{BlockOp, MAX_BLOCKING_KEYS, Wait, pop_event, push_event};
use super::pubsub::{GENERIC, LIST};
use super::{Ctx, OutputBudget, error, is, parse_float, parse_int, store_error, syntax_error};

/// The list under `key`; `Ok(None)` when missing; WRONGTYPE otherwise.
fn read(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Arc<List>>, Reply> {
    match ctx.store().get(key, ctx.now) {
        None => Ok(None),
        Some(entry) => match entry.value {
            Value::List(list) => Ok(Some(list)),
            _ => Err(store_error(StoreError::WrongType)),
        },
    }
}

/// Notifies the pop event, plus `del` if the pop removed the key.
fn popped(ctx: &Ctx<'_>, end: End, key: &[u8]) {
    ctx.notify(LIST, pop_event(end), key);
    if ctx.store().peek(key, ctx.now).is_none() {
        ctx.notify(GENERIC, "del", key);
    }
}

/// `LEFT` or `RIGHT`.
fn end_arg(arg: &[u8]) -> Result<End, Reply> {
    if is(arg, "left") {
        Ok(End::Left)
    } else if is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(syntax_error())
    }
}

/// A blocking command's timeout in milliseconds (`None`: forever), as Redis reads it.
pub fn timeout_arg(arg: &[u8]) -> Result<Option<u64>, Reply> {
    let seconds =
        parse_float(arg).ok_or_else(|| error("ERR timeout is not a float or out of range"))?;
    let ms = (seconds * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err(error("ERR timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(error("ERR timeout is negative"));
    }
    // A wait past a century is a wait forever as far as anyone can tell, and keeps the
    // deadline arithmetic far from overflow.
    const CENTURY_MS: f64 = 100.0 * 365.0 * 86_400_000.0;
    Ok((ms > 0.0 && ms < CENTURY_MS).then_some(ms as u64))
}

/// Pops up to `count` elements from `end` of the list under `key` if they make a reply
/// within the output limit; otherwise pops nothing and refuses. The check runs under the
/// shard lock with the pop, so a concurrent push cannot make the popped elements a reply
/// the connection then refuses.
fn pop_within(
    ctx: &Ctx<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Bytes>>, Reply> {
    pop_within_limit(ctx.shared, ctx.store(), key, end, count, ctx.now)
}

/// [`pop_within`] for callers without a `Ctx` (serving a blocked client).
pub fn pop_within_limit(
    shared: &crate::exec::Shared,
    store: &sessiond_store::Store,
    key: &[u8],
    end: End,
    count: usize,
    now: u64,
) -> Result<Option<Vec<Bytes>>, Reply> {
    let mut budget = OutputBudget::new(shared);
    match store.list_pop_within(key, end, count, |len| budget.charge(len), now) {
        Err(StoreError::TooLarge) => Err(budget.refusal()),
        other => other.map_err(store_error),
    }
}

fn push(ctx: &mut Ctx<'_>, args: &mut Args<'_>, end: End, create: bool) -> Handled {
    let key = args.bytes()?;
    let items: Vec<&[u8]> = args.map(|a| &a[..]).collect();
    let len = ctx
        .store()
        .list_push(key, &items, end, create, ctx.now)
        .map_err(store_error)?;
    if len > 0 {
        ctx.notify(LIST, push_event(end), key);
    }
    Ok(Reply::Integer(len as i64).into())
}

/// `LPUSH key element [element …]`: the new length.
pub fn lpush(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    push(ctx, args, End::Left, true)
}

/// `RPUSH key element [element …]`: the new length.
pub fn rpush(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    push(ctx, args, End::Right, true)
}

/// `LPUSHX key element [element …]`: the new length, 0 if the key is missing.
pub fn lpushx(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    push(ctx, args, End::Left, false)
}

/// `RPUSHX key element [element …]`: the new length, 0 if the key is missing.
pub fn rpushx(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    push(ctx, args, End::Right, false)
}

fn pop(ctx: &mut Ctx<'_>, args: &mut Args<'_>, end: End, name: &str) -> Handled {
    let key = args.bytes()?;
    let count = match args.next() {
        None => None,
        Some(arg) => Some(
            parse_int(arg)
                .filter(|n| *n >= 0)
                .ok_or_else(|| error("ERR value is out of range, must be positive"))?
                as usize,
        ),
    };
    if !args.is_empty() {
        return Err(super::wrong_args(name));
    }
    let items = match count {
        Some(count) => pop_within(ctx, key, end, count)?,
        None => ctx
            .store()
            .list_pop(key, end, 1, ctx.now)
            .map_err(store_error)?,
    };
    let Some(items) = items else {
        return Ok(match count {
            None => Reply::Null,
            Some(_) => Reply::NullArray,
        }
        .into());
    };
    if !items.is_empty() {
        popped(ctx, end, key);
    }
    Ok(match count {
        None => items.into_iter().next().map_or(Reply::Null, Reply::Bulk),
        Some(_) => Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
    }
    .into())
}

/// `LPOP key [count]`.
pub fn lpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    pop(ctx, args, End::Left, "lpop")
}

/// `RPOP key [count]`.
pub fn rpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    pop(ctx, args, End::Right, "rpop")
}

/// `LLEN key`.
pub fn llen(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let list = read(ctx, args.bytes()?)?;
    Ok(Reply::Integer(list.map_or(0, |l| l.len() as i64)).into())
}

/// `LRANGE key start stop`.
pub fn lrange(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let (start, stop) = (args.int()?, args.int()?);
    let Some(list) = read(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    let (from, to) = list_range(start, stop, list.len());
    OutputBudget::check(ctx.shared, list.range(from, to).map(Bytes::len))?;
    Ok(Reply::Array(list.range(from, to).cloned().map(Reply::Bulk).collect()).into())
}

/// `LINDEX key index`.
pub fn lindex(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let index = args.int()?;
    let list = read(ctx, key)?;
    Ok(list
        .and_then(|l| list_index(index, l.len()).and_then(|i| l.get(i).cloned()))
        .map_or(Reply::Null, Reply::Bulk)
        .into())
}

/// `LSET key index element`.
pub fn lset(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let index = args.int()?;
    let item = args.bytes()?;
    match ctx
        .store()
        .list_set(key, index, item, ctx.now)
        .map_err(store_error)?
    {
        ListSetOutcome::Set => {
            ctx.notify(LIST, "lset", key);
            Ok(Reply::ok().into())
        }
        ListSetOutcome::NoSuchKey => Err(error("ERR no such key")),
        ListSetOutcome::OutOfRange => Err(error("ERR index out of range")),
    }
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0
/// without the key.
pub fn linsert(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let place = match args.bytes()? {
        w if is(w, "before") => Place::Before,
        w if is(w, "after") => Place::After,
        _ => return Err(syntax_error()),
    };
    let (pivot, item) = (args.bytes()?, args.bytes()?);
    let len = ctx
        .store()
        .list_insert(key, place, pivot, item, ctx.now)
        .map_err(store_error)?;
    if len > 0 {
        ctx.notify(LIST, "linsert", key);
    }
    Ok(Reply::Integer(len).into())
}

/// `LREM key count element`: how many were removed.
pub fn lrem(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let count = args.int()?;
    let item = args.bytes()?;
    let removed = ctx
        .store()
        .list_remove(key, count, item, ctx.now)
        .map_err(store_error)?;
    if removed > 0 {
        ctx.notify(LIST, "lrem", key);
        if ctx.store().peek(key, ctx.now).is_none() {
            ctx.notify(GENERIC, "del", key);
        }
    }
    Ok(Reply::Integer(removed as i64).into())
}

/// `LTRIM key start stop`.
pub fn ltrim(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let (start, stop) = (args.int()?, args.int()?);
    let existed = read(ctx, key)?.is_some();
    ctx.store()
        .list_trim(key, start, stop, ctx.now)
        .map_err(store_error)?;
    if existed {
        ctx.notify(LIST, "ltrim", key);
        if ctx.store().peek(key, ctx.now).is_none() {
            ctx.notify(GENERIC, "del", key);
        }
    }
    Ok(Reply::ok().into())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
pub fn lpos(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let item = args.bytes()?;
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    while !args.is_empty() {
        match args.word()?.as_str() {
            "rank" => {
                rank = args.int()?;
                if rank == 0 {
                    return Err(error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                    ));
                }
                if rank == i64::MIN {
                    return Err(error(
                        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                    ));
                }
            }
            "count" => {
                let n = args.int()?;
                if n < 0 {
                    return Err(error("ERR COUNT can't be negative"));
                }
                count = Some(n);
            }
            "maxlen" => {
                maxlen = args.int()?;
                if maxlen < 0 {
                    return Err(error("ERR MAXLEN can't be negative"));
                }
            }
            _ => return Err(syntax_error()),
        }
    }
    let Some(list) = read(ctx, key)? else {
        return Ok(match count {
            None => Reply::Null,
            Some(_) => Reply::Array(Vec::new()),
        }
        .into());
    };
    let len = list.len();
    let scan = if maxlen == 0 {
        len
    } else {
        len.min(maxlen as usize)
    };
    let want = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    let indexes: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..scan)
    } else {
        Box::new((len - scan..len).rev())
    };
    for i in indexes {
        if found.len() >= want {
            break;
        }
        if list.get(i).is_some_and(|e| e[..] == item[..]) {
            if skip > 0 {
                skip -= 1;
            } else {
                found.push(i as i64);
            }
        }
    }
    Ok(match count {
        None => found.first().map_or(Reply::Null, |&i| Reply::Integer(i)),
        Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
    }
    .into())
}

/// Moves one element and notifies as Redis does; `Ok(None)` when the source is missing.
fn move_one(
    ctx: &Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, Reply> {
    let moved = ctx
        .store()
        .list_move(src, dst, from, to, ctx.now)
        .map_err(store_error)?;
    if moved.is_some() {
        // Redis's order: the push to the destination, then the pop (and a `del`) of the
        // source.
        ctx.notify(LIST, push_event(to), dst);
        popped(ctx, from, src);
    }
    Ok(moved)
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`.
pub fn lmove(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (src, dst) = (args.bytes()?, args.bytes()?);
    let (from, to) = (end_arg(args.bytes()?)?, end_arg(args.bytes()?)?);
    let moved = move_one(ctx, src, dst, from, to)?;
    Ok(moved.map_or(Reply::Null, Reply::Bulk).into())
}

/// `RPOPLPUSH source destination`.
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (src, dst) = (args.bytes()?, args.bytes()?);
    let moved = move_one(ctx, src, dst, End::Right, End::Left)?;
    Ok(moved.map_or(Reply::Null, Reply::Bulk).into())
}

/// The keys and options of `LMPOP`/`BLMPOP` after the timeout: `numkeys key … LEFT|RIGHT
/// [COUNT count]`.
fn mpop_args<'a>(args: &mut Args<'a>) -> Result<(Vec<&'a Bytes>, End, usize), Reply> {
    let numkeys = parse_int(args.bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| error("ERR numkeys should be greater than 0"))?;
    if numkeys as u64 >= args.remaining() as u64 {
        return Err(syntax_error());
    }
    let keys: Vec<&Bytes> = (0..numkeys).filter_map(|_| args.next()).collect();
    let end = end_arg(args.bytes()?)?;
    let mut count = None;
    while let Some(option) = args.next() {
        if is(option, "count") && count.is_none() && !args.is_empty() {
            let n = parse_int(args.bytes()?)
                .filter(|n| *n > 0)
                .ok_or_else(|| error("ERR count should be greater than 0"))?;
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
        } else {
            return Err(syntax_error());
        }
    }
    Ok((keys, end, count.unwrap_or(1)))
}

/// Pops up to `count` from the first non-empty list of `keys`: `[key, [elements…]]`.
fn mpop_now(
    ctx: &Ctx<'_>,
    keys: &[&Bytes],
    end: End,
    count: usize,
) -> Result<Option<Reply>, Reply> {
    for key in keys {
        let items = pop_within(ctx, key, end, count)?;
        if let Some(items) = items.filter(|i| !i.is_empty()) {
            popped(ctx, end, key);
            return Ok(Some(Reply::Array(vec![
                Reply::Bulk((*key).clone()),
                Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
            ])));
        }
    }
    Ok(None)
}

/// `LMPOP numkeys key [key …] LEFT|RIGHT [COUNT count]`.
pub fn lmpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (keys, end, count) = mpop_args(args)?;
    Ok(mpop_now(ctx, &keys, end, count)?
        .unwrap_or(Reply::NullArray)
        .into())
}

/// Leaves a wait in the session if the command may block here; otherwise the reply of a
/// blocking command that found nothing (Redis's answer inside `MULTI` and scripts).
pub fn block(ctx: &mut Ctx<'_>, keys: &[&Bytes], op: BlockOp, timeout_ms: Option<u64>) -> Handled {
    if !ctx.session.may_block || ctx.session.in_script {
        return Ok(op.found_nothing().into());
    }
    let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
    for key in keys {
        if !unique.contains(key) {
            unique.push((*key).clone());
        }
    }
    ctx.session.blocked = Some(Wait {
        client: ctx.session.id,
        db: ctx.session.db,
        keys: unique,
        op: op.clone(),
        timeout_ms,
    });
    // Not sent: the connection sees the wait and answers when it ends.
    Ok(op.timed_out().into())
}

pub fn too_many_keys(n: usize) -> Result<(), Reply> {
    if n > MAX_BLOCKING_KEYS {
        return Err(error(format!(
            "ERR a blocking command may wait on at most {MAX_BLOCKING_KEYS} keys"
        )));
    }
    Ok(())
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &mut Args<'_>, end: End) -> Handled {
    let all = args.rest();
    let (timeout, keys) = all.split_last().ok_or_else(syntax_error)?;
    let timeout_ms = timeout_arg(timeout)?;
    too_many_keys(keys.len())?;
    for key in keys {
        let items = ctx
            .store()
            .list_pop(key, end, 1, ctx.now)
            .map_err(store_error)?;
        if let Some(item) = items.and_then(|i| i.into_iter().next()) {
            popped(ctx, end, key);
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(item)]).into());
        }
    }
    let keys: Vec<&Bytes> = keys.iter().collect();
    block(ctx, &keys, BlockOp::Pop(end), timeout_ms)
}

/// `BLPOP key [key …] timeout`.
pub fn blpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    blocking_pop(ctx, args, End::Left)
}

/// `BRPOP key [key …] timeout`.
pub fn brpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    blocking_pop(ctx, args, End::Right)
}

fn blocking_move(
    ctx: &mut Ctx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from: End,
    to: End,
    timeout: &[u8],
) -> Handled {
    let timeout_ms = timeout_arg(timeout)?;
    if let Some(item) = move_one(ctx, src, dst, from, to)? {
        return Ok(Reply::Bulk(item).into());
    }
    let op = BlockOp::Move {
        dst: dst.clone(),
        from,
        to,
    };
    block(ctx, &[src], op, timeout_ms)
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`.
pub fn blmove(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (src, dst) = (args.bytes()?, args.bytes()?);
    let (from, to) = (end_arg(args.bytes()?)?, end_arg(args.bytes()?)?);
    let timeout = args.bytes()?;
    blocking_move(ctx, src, dst, from, to, timeout)
}

/// `BRPOPLPUSH source destination timeout`.
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (src, dst) = (args.bytes()?, args.bytes()?);
    let timeout = args.bytes()?;
    blocking_move(ctx, src, dst, End::Right, End::Left, timeout)
}

/// `BLMPOP timeout numkeys key [key …] LEFT|RIGHT [COUNT count]`.
pub fn blmpop(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let timeout_ms = timeout_arg(args.bytes()?)?;
    let (keys, end, count) = mpop_args(args)?;
    too_many_keys(keys.len())?;
    if let Some(reply) = mpop_now(ctx, &keys, end, count)? {
        return Ok(reply.into());
    }
    block(ctx, &keys, BlockOp::MultiPop(end, count), timeout_ms)
}

/// What `CONFIG GET` shows for the list parameters [`config_without_effect`] accepts:
/// Redis 7.0's defaults, whatever was set.
pub fn config_values() -> [(&'static str, String); 3] {
    [
        ("list-max-ziplist-size", "-2".into()),
        ("list-max-listpack-size", "-2".into()),
        ("list-compress-depth", "0".into()),
    ]
}

/// Whether `CONFIG SET name value` is one that Redis clients and Redis's own tests send for
/// lists and that is accepted here with no effect: the list encoding parameters
/// (`list-max-ziplist-size`, `list-max-listpack-size`, `list-compress-depth`; a list here
/// has one representation, so there is nothing to tune), and `save ""` (there are no RDB
/// snapshots to turn off; the journal is the persistence).
pub fn config_without_effect(name: &str, value: &[u8]) -> bool {
    match name {
        "list-max-ziplist-size" | "list-max-listpack-size" | "list-compress-depth" => {
            parse_int(value).is_some()
        }
        "save" => value.is_empty(),
        _ => false,
    }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: ends client `id`'s blocking pop as if it timed out,
/// or with Redis's `-UNBLOCKED` error; 1 if it was blocked, 0 otherwise.
pub fn client_unblock(
    shared: &crate::exec::Shared,
    id: &[u8],
    how: Option<&Bytes>,
) -> Result<Reply, Reply> {
    let id = parse_int(id).ok_or_else(super::not_integer)?;
    let error_reply = match how {
        None => false,
        Some(w) if is(w, "timeout") => false,
        Some(w) if is(w, "error") => true,
        Some(_) => {
            return Err(error(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    };
    let unblocked =
        u64::try_from(id).is_ok_and(|id| shared.resp.pubsub.blocking.unblock(id, error_reply));
    Ok(Reply::Integer(i64::from(unblocked)))
}
