//! Stream commands: `XADD`, `XRANGE`, `XREVRANGE`, `XLEN`, `XDEL`, `XTRIM`, `XSETID`,
//! `XGROUP`, `XREADGROUP`, `XREAD`, `XACK`, `XPENDING`, `XCLAIM`, `XAUTOCLAIM`, `XINFO`.
//!
//! Writes are single store operations (`Store::stream_*`), which plan the change under the
//! shard lock and journal what was decided; reads take the stream's `Arc` and build the
//! reply after, measured against the output limit as it grows ([`OutputBudget`]). A group
//! read checks each entry against the limit *before* delivering it (the store asks, under
//! the shard lock), so a reply too large to send never moves a group or fills a pending
//! list; with several keys, the keys read before the one that overflows keep their
//! deliveries (each key is its own store operation, as each is in Redis).
//!
//! Replies and error texts are Redis 7.0's. `XREAD … BLOCK` and `XREADGROUP … BLOCK` with
//! `>` that find nothing leave a wait ([`StreamWait`]) for the blocking registry
//! ([`super::blocking`]), which [`serve_blocked`] answers when a key changes; never inside
//! `MULTI` or a script, where they answer a null as on a time-out.

use std::sync::Arc;

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{
    AddId, ClaimOptions, Delivered, Keep, ReadFrom, Store, StoreError, Stream, StreamId,
    StreamRefusal, Trim, Value,
};

use super::args::{Args, Handled};
use super::blocking::BlockOp;
use super::pubsub::STREAM;
use super::{Ctx, OutputBudget, error, is, parse_int, store_error, syntax_error};
use sessiond_proto_resp::Protocol;

/// The most IDs one `XDEL`, `XACK` or `XCLAIM` names: the request limits bound them already
/// (every ID is an argument); this only keeps one command's plan small.
const MAX_IDS: usize = 1 << 20;

fn invalid_id() -> Reply {
    error("ERR Invalid stream ID specified as stream command argument")
}

fn refusal(r: StreamRefusal, key: &[u8], group: &[u8]) -> Reply {
    let k = String::from_utf8_lossy(key);
    let g = String::from_utf8_lossy(group);
    match r {
        StreamRefusal::IdTooSmall => error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ),
        StreamRefusal::Exhausted => {
            error("ERR The stream has exhausted the last possible ID, unable to add more items")
        }
        StreamRefusal::NoSuchKey => error("ERR no such key"),
        StreamRefusal::NoGroup => {
            error(format!("NOGROUP No such key '{k}' or consumer group '{g}'"))
        }
        StreamRefusal::BusyGroup => error("BUSYGROUP Consumer Group name already exists"),
        StreamRefusal::SetIdTooSmall => {
            error("ERR The ID specified in XSETID is smaller than the target stream top item")
        }
        StreamRefusal::EntriesAddedTooSmall => error(
            "ERR The entries_added specified in XSETID is smaller than the target stream length",
        ),
    }
}

/// Redis's unsigned parser for the parts of an ID: digits only, no sign, fits `u64`.
fn parse_u64(part: &[u8]) -> Option<u64> {
    if part.is_empty() || part.len() > 20 || !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(part).ok()?.parse().ok()
}

/// An ID as Redis reads it: `-`, `+` (unless `strict`), `ms` (the sequence is
/// `missing_seq`) or `ms-seq`.
fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, Reply> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" if !strict => return Ok(StreamId::MIN),
        b"+" if !strict => return Ok(StreamId::MAX),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (parse_u64(&arg[..dash]), parse_u64(&arg[dash + 1..])),
        None => (parse_u64(arg), Some(missing_seq)),
    };
    match (ms, seq) {
        (Some(ms), Some(seq)) => Ok(StreamId::new(ms, seq)),
        _ => Err(invalid_id()),
    }
}

/// An interval bound of `XRANGE`: `(` makes it exclusive. `None` when the exclusive bound
/// leaves nothing (`(+` as start, `(-` as end).
fn parse_bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<Option<StreamId>, Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], missing_seq, true)?;
        let stepped = if start { id.next() } else { id.prev() };
        return match stepped {
            Some(id) => Ok(Some(id)),
            None if start => Err(error("ERR invalid start ID for the interval")),
            None => Err(error("ERR invalid end ID for the interval")),
        };
    }
    parse_id(arg, missing_seq, false).map(Some)
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

fn fields_reply(fields: &[Bytes]) -> Reply {
    Reply::Array(fields.iter().cloned().map(Reply::Bulk).collect())
}

fn entry_reply(id: StreamId, fields: Option<&[Bytes]>) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        fields.map_or(Reply::NullArray, fields_reply),
    ])
}

/// What an entry costs in a reply.
fn charge_entry(budget: &mut OutputBudget, fields: &[Bytes]) -> bool {
    budget.charge(24) && fields.iter().all(|f| budget.charge(f.len()))
}

/// The stream under `key`; `Ok(None)` when missing; WRONGTYPE otherwise.
fn read(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Arc<Stream>>, Reply> {
    match ctx.store().get(key, ctx.now) {
        None => Ok(None),
        Some(entry) => match entry.value {
            Value::Stream(stream) => Ok(Some(stream)),
            _ => Err(store_error(StoreError::WrongType)),
        },
    }
}

/// Whether the stream under `key` has `group` (WRONGTYPE for another type). Only a bool
/// leaves: a caller about to change the stream must not hold its `Arc`, or the store's
/// copy-on-write would copy the whole stream, under the shard lock, to apply the change.
fn has_group(ctx: &Ctx<'_>, key: &[u8], group: &[u8]) -> Result<bool, Reply> {
    Ok(read(ctx, key)?.is_some_and(|s| s.group(group).is_some()))
}

/// A non-negative `COUNT`-like integer.
fn count_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_int(arg).ok_or_else(super::not_integer)
}

/// The `MAXLEN|MINID [=|~] threshold [LIMIT n]` options of `XADD` and `XTRIM`, as read.
#[derive(Default)]
struct TrimArgs {
    keep: Option<Keep>,
    approx: bool,
    limit: Option<u64>,
}

/// Reads one trim option at `args` if the next argument is one (`Ok(false)` otherwise).
fn trim_option(args: &mut Args<'_>, found: &mut TrimArgs) -> Result<bool, Reply> {
    let Some(opt) = args.peek() else {
        return Ok(false);
    };
    let more = args.remaining() > 1;
    if (is(opt, "maxlen") || is(opt, "minid")) && more {
        let maxlen = is(opt, "maxlen");
        args.next();
        if found.keep.is_some() {
            return Err(error(
                "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
            ));
        }
        found.approx = false;
        if args.remaining() >= 2 {
            match args.peek().map(|b| &b[..]) {
                Some(b"~") => {
                    found.approx = true;
                    args.next();
                }
                Some(b"=") => {
                    args.next();
                }
                _ => {}
            }
        }
        let threshold = args.bytes()?;
        found.keep = Some(if maxlen {
            let n = count_arg(threshold)?;
            if n < 0 {
                return Err(error("ERR The MAXLEN argument must be >= 0."));
            }
            Keep::MaxLen(n as u64)
        } else {
            Keep::MinId(parse_id(threshold, 0, true)?)
        });
        return Ok(true);
    }
    if is(opt, "limit") && more {
        args.next();
        let n = count_arg(args.bytes()?)?;
        if n < 0 {
            return Err(error("ERR The LIMIT argument must be >= 0."));
        }
        found.limit = Some(n as u64);
        return Ok(true);
    }
    Ok(false)
}

/// Checks the trim options once read, with Redis's errors, and fills in the default limit
/// of `~` (100 nodes' worth, at most 1,000,000, as Redis's).
fn finish_trim(found: TrimArgs, xadd: bool, node_entries: u64) -> Result<Option<Trim>, Reply> {
    if found.limit.is_some_and(|l| l > 0) && found.keep.is_none() {
        return Err(error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    let Some(keep) = found.keep else {
        if !xadd {
            return Err(error(
                "ERR syntax error, XTRIM must be called with a trimming strategy",
            ));
        }
        return Ok(None);
    };
    let limit = match found.limit {
        Some(_) if !found.approx => {
            return Err(error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        Some(limit) => limit,
        None if found.approx => node_entries.saturating_mul(100).clamp(1, 1_000_000),
        None => 0,
    };
    Ok(Some(Trim {
        keep,
        approx: found.approx,
        limit,
    }))
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value
/// [field value …]`.
pub fn xadd(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let mut found = TrimArgs::default();
    let mut no_create = false;
    let id = loop {
        let Some(opt) = args.peek() else {
            return Err(super::wrong_args("xadd"));
        };
        if &opt[..] == b"*" {
            args.next();
            break AddId::Auto;
        }
        if trim_option(args, &mut found)? {
            continue;
        }
        if is(opt, "nomkstream") {
            args.next();
            no_create = true;
            continue;
        }
        args.next();
        if opt.len() > 2 && opt.ends_with(b"-*") && opt.len() <= 127 {
            let ms = parse_u64(&opt[..opt.len() - 2]).ok_or_else(invalid_id)?;
            break AddId::AtMs(ms);
        }
        break AddId::Exact(parse_id(opt, 0, true)?);
    };
    let node_entries = ctx.shared.resp.encoding.stream_node_entries();
    let trim = finish_trim(found, true, node_entries)?;
    let fields = args.rest();
    if fields.is_empty() || !fields.len().is_multiple_of(2) {
        return Err(super::wrong_args("xadd"));
    }
    if id == AddId::Exact(StreamId::MIN) {
        return Err(error(
            "ERR The ID specified in XADD must be greater than 0-0",
        ));
    }
    let added = ctx
        .store()
        .stream_add(key, id, fields, no_create, trim, node_entries, ctx.now)
        .map_err(store_error)?
        .map_err(|r| refusal(r, key, b""))?;
    let Some((id, trimmed)) = added else {
        return Ok(Reply::Null.into());
    };
    ctx.notify(STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(STREAM, "xtrim", key);
    }
    Ok(id_reply(id).into())
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`.
pub fn xtrim(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let mut found = TrimArgs::default();
    while !args.is_empty() {
        if !trim_option(args, &mut found)? {
            return Err(syntax_error());
        }
    }
    let node_entries = ctx.shared.resp.encoding.stream_node_entries();
    let Some(trim) = finish_trim(found, false, node_entries)? else {
        return Err(syntax_error());
    };
    let removed = ctx
        .store()
        .stream_trim(key, trim, ctx.now)
        .map_err(store_error)?;
    if removed > 0 {
        ctx.notify(STREAM, "xtrim", key);
    }
    Ok(Reply::Integer(removed as i64).into())
}

fn range(ctx: &mut Ctx<'_>, args: &mut Args<'_>, rev: bool) -> Handled {
    let key = args.bytes()?;
    let (first, second) = (args.bytes()?, args.bytes()?);
    let (start_arg, end_arg) = if rev {
        (second, first)
    } else {
        (first, second)
    };
    let start = parse_bound(start_arg, 0, true)?;
    let end = parse_bound(end_arg, u64::MAX, false)?;
    let mut count = None;
    while let Some(opt) = args.next() {
        if is(opt, "count") && !args.is_empty() {
            let n = count_arg(args.bytes()?)?;
            count = Some(n.max(0) as usize);
        } else {
            return Err(syntax_error());
        }
    }
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    if count == Some(0) {
        return Ok(Reply::Array(Vec::new()).into());
    }
    let Some(stream) = read(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    let count = count.unwrap_or(usize::MAX);
    let mut budget = OutputBudget::new(ctx.shared);
    let mut out = Vec::new();
    let mut add = |(id, fields): (StreamId, &[Bytes])| -> Result<(), Reply> {
        if !charge_entry(&mut budget, fields) {
            return Err(budget.refusal());
        }
        out.push(entry_reply(id, Some(fields)));
        Ok(())
    };
    if rev {
        for e in stream.range(start, end).rev().take(count) {
            add(e)?;
        }
    } else {
        for e in stream.range(start, end).take(count) {
            add(e)?;
        }
    }
    Ok(Reply::Array(out).into())
}

/// `XRANGE key start end [COUNT n]`.
pub fn xrange(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    range(ctx, args, false)
}

/// `XREVRANGE key end start [COUNT n]`.
pub fn xrevrange(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    range(ctx, args, true)
}

/// `XLEN key`.
pub fn xlen(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let len = read(ctx, key)?.map_or(0, |s| s.len());
    Ok(Reply::Integer(len as i64).into())
}

fn ids(args: &mut Args<'_>) -> Result<Vec<StreamId>, Reply> {
    let rest = args.rest();
    if rest.len() > MAX_IDS {
        return Err(error("ERR too many IDs"));
    }
    rest.iter().map(|a| parse_id(a, 0, true)).collect()
}

/// `XDEL key id [id …]`.
pub fn xdel(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let ids = ids(args)?;
    let n = ctx
        .store()
        .stream_delete(key, &ids, ctx.now)
        .map_err(store_error)?;
    if n > 0 {
        ctx.notify(STREAM, "xdel", key);
    }
    Ok(Reply::Integer(n as i64).into())
}

/// `XSETID key id [ENTRIESADDED n] [MAXDELETEDID id]`.
pub fn xsetid(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let id = parse_id(args.bytes()?, 0, true)?;
    let (mut added, mut max_deleted) = (None, None);
    while let Some(opt) = args.next() {
        if is(opt, "entriesadded") && !args.is_empty() {
            let n = count_arg(args.bytes()?)?;
            if n < 0 {
                return Err(error("ERR entries_added must be positive"));
            }
            added = Some(n as u64);
        } else if is(opt, "maxdeletedid") && !args.is_empty() {
            let m = parse_id(args.bytes()?, 0, true)?;
            if id < m {
                return Err(error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(m);
        } else {
            return Err(syntax_error());
        }
    }
    ctx.store()
        .stream_set_id(key, id, added, max_deleted, ctx.now)
        .map_err(store_error)?
        .map_err(|r| refusal(r, key, b""))?;
    ctx.notify(STREAM, "xsetid", key);
    Ok(Reply::ok().into())
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn help(lines: &[&'static str]) -> Handled {
    Ok(Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::from_static(l.as_bytes())))
            .collect(),
    )
    .into())
}

fn subcommand_syntax(command: &str, sub: &[u8]) -> Reply {
    error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        command
    ))
}

/// `XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP …`.
pub fn xgroup(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    let name = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let argc = args.remaining() + 2;
    if name == "help" {
        if argc != 2 {
            return Err(super::wrong_args("xgroup|help"));
        }
        return help(XGROUP_HELP);
    }
    let ok_arity = match name.as_str() {
        "create" => (5..=8).contains(&argc),
        "setid" => argc == 5 || argc == 7,
        "destroy" => argc == 4,
        "createconsumer" | "delconsumer" => argc == 5,
        _ => false,
    };
    if !ok_arity {
        return Err(subcommand_syntax("XGROUP", sub));
    }
    let key = args.bytes()?;
    let group = args.bytes()?;
    let no_group = || {
        error(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        ))
    };
    let missing_key = || {
        error(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may \
             want to use the MKSTREAM option to create an empty stream automatically.",
        )
    };
    let words = |r: StreamRefusal| match r {
        StreamRefusal::NoSuchKey => missing_key(),
        StreamRefusal::NoGroup => no_group(),
        other => refusal(other, key, group),
    };
    let store = ctx.store().clone();
    match name.as_str() {
        "create" | "setid" => {
            let id_arg = args.bytes()?;
            let (mut mkstream, mut entries_read) = (false, None);
            while let Some(opt) = args.next() {
                if name == "create" && is(opt, "mkstream") {
                    mkstream = true;
                } else if is(opt, "entriesread") && !args.is_empty() {
                    let n = count_arg(args.bytes()?)?;
                    if n < -1 {
                        return Err(error("ERR value for ENTRIESREAD must be positive or -1"));
                    }
                    entries_read = (n >= 0).then_some(n as u64);
                } else {
                    return Err(subcommand_syntax("XGROUP", sub));
                }
            }
            // Redis looks the key up (and checks its type) before it reads the ID. Only
            // bools are kept: holding the stream's `Arc` across the change below would make
            // the store copy the whole stream to apply it.
            let (exists, grouped) = match read(ctx, key)? {
                Some(stream) => (true, stream.group(group).is_some()),
                None => (false, false),
            };
            if !exists && !mkstream {
                return Err(missing_key());
            }
            if name == "setid" && exists && !grouped {
                return Err(no_group());
            }
            let id = if &id_arg[..] == b"$" {
                None
            } else if name == "create" {
                Some(parse_id(id_arg, 0, true)?)
            } else {
                Some(parse_id(id_arg, 0, false)?)
            };
            if name == "create" {
                store
                    .stream_group_create(key, group, id, mkstream, entries_read, ctx.now)
                    .map_err(store_error)?
                    .map_err(words)?;
                ctx.notify(STREAM, "xgroup-create", key);
            } else {
                store
                    .stream_group_set_id(key, group, id, entries_read, ctx.now)
                    .map_err(store_error)?
                    .map_err(words)?;
                ctx.notify(STREAM, "xgroup-setid", key);
            }
            Ok(Reply::ok().into())
        }
        "destroy" => {
            let destroyed = store
                .stream_group_destroy(key, group, ctx.now)
                .map_err(store_error)?
                .map_err(words)?;
            if destroyed {
                ctx.notify(STREAM, "xgroup-destroy", key);
            }
            Ok(Reply::Integer(i64::from(destroyed)).into())
        }
        "createconsumer" => {
            let consumer = args.bytes()?;
            let created = store
                .stream_consumer_create(key, group, consumer, ctx.now)
                .map_err(store_error)?
                .map_err(words)?;
            if created {
                ctx.notify(STREAM, "xgroup-createconsumer", key);
            }
            Ok(Reply::Integer(i64::from(created)).into())
        }
        _ => {
            let consumer = args.bytes()?;
            let pending = store
                .stream_consumer_delete(key, group, consumer, ctx.now)
                .map_err(store_error)?
                .map_err(words)?;
            ctx.notify(STREAM, "xgroup-delconsumer", key);
            Ok(Reply::Integer(pending as i64).into())
        }
    }
}

/// Whether `consumer` of `group` exists in the stream under `key` (so a command that
/// creates it can raise Redis's `xgroup-createconsumer` event).
fn has_consumer(ctx: &Ctx<'_>, key: &[u8], group: &[u8], consumer: &[u8]) -> bool {
    matches!(
        ctx.store().peek(key, ctx.now).map(|e| e.value),
        Some(Value::Stream(s)) if s.group(group).is_some_and(|g| g.consumers.contains_key(consumer))
    )
}

/// What a blocked `XREAD`/`XREADGROUP` waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamWait {
    /// Per key, the ID after which entries count (`XREAD`; unused for a group read).
    pub after: Vec<(Bytes, StreamId)>,
    /// `COUNT` (0: no limit).
    pub count: usize,
    /// `XREADGROUP`'s group, consumer and `NOACK`.
    pub group: Option<(Bytes, Bytes, bool)>,
    /// Whether the client speaks RESP3 (the reply is a map).
    pub resp3: bool,
}

/// Answers the blocked `wait` from `key` in database `db` if it can be: entries for it
/// (`XREAD`: after its ID; `XREADGROUP`: new to the group, delivered as the command would),
/// Redis's error for a group read whose key or group is gone, or `None` to wait on.
pub fn serve_blocked(
    shared: &crate::exec::Shared,
    db: usize,
    wait: &StreamWait,
    key: &Bytes,
    now: u64,
) -> Option<Reply> {
    let store = &shared.databases[db];
    let stream = match store.peek(key, now).map(|e| e.value) {
        Some(Value::Stream(stream)) => Some(stream),
        _ => None,
    };
    let mut budget = OutputBudget::new(shared);
    let entries: Vec<Reply> = match &wait.group {
        None => {
            let stream = stream?;
            let after = wait.after.iter().find(|(k, _)| k == key)?.1;
            let start = after.next()?;
            let count = if wait.count == 0 {
                usize::MAX
            } else {
                wait.count
            };
            let mut entries = Vec::new();
            for (id, fields) in stream.range(start, StreamId::MAX).take(count) {
                if !charge_entry(&mut budget, fields) {
                    return Some(budget.refusal());
                }
                entries.push(entry_reply(id, Some(fields)));
            }
            entries
        }
        Some((group, consumer, noack)) => {
            let Some(stream) = stream else {
                return Some(error("UNBLOCKED the stream key no longer exists"));
            };
            let Some(g) = stream.group(group) else {
                return Some(error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                ));
            };
            // Nothing new: wait on without touching the group (a read would record the
            // consumer as seen, and journal it, at every wake-up).
            let start = g.last_delivered.next()?;
            stream.range(start, StreamId::MAX).next()?;
            let known = g.consumers.contains_key(&consumer[..]);
            // Let go of the stream before the read changes it: a clone held here would make
            // the store copy the whole stream to apply the delivery.
            drop(stream);
            let mut over = false;
            let delivered = store.stream_read_group(
                key,
                group,
                consumer,
                ReadFrom::New,
                wait.count,
                *noack,
                |fields| {
                    let fits = charge_entry(&mut budget, fields);
                    over |= !fits;
                    fits
                },
                now,
            );
            // A failed read (out of memory, the key changed type meanwhile) answers the
            // client: staying blocked would leave it waiting silently on entries it was due.
            // (The key or group can only be gone here if another connection changed it
            // between the look above and the read: the same answers as above.)
            let delivered = match delivered {
                Err(StoreError::TooLarge) if over => return Some(budget.refusal()),
                Err(StoreError::WrongType) => {
                    return Some(error("UNBLOCKED the stream key no longer exists"));
                }
                Err(e) => return Some(store_error(e)),
                Ok(Err(_)) => {
                    return Some(error(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    ));
                }
                Ok(Ok(delivered)) => delivered,
            };
            if !known {
                shared
                    .resp
                    .pubsub
                    .notify(db, STREAM, "xgroup-createconsumer", key);
            }
            delivered
                .iter()
                .map(|(id, fields)| entry_reply(*id, fields.as_deref()))
                .collect()
        }
    };
    if entries.is_empty() {
        return None;
    }
    let found = vec![(key.clone(), entries)];
    Some(read_reply_for(wait.resp3, found))
}

/// The parsed `XREAD`/`XREADGROUP` options.
struct ReadArgs<'a> {
    block: Option<Option<u64>>,
    count: usize,
    noack: bool,
    group: Option<(&'a Bytes, &'a Bytes)>,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
}

fn read_args<'a>(args: &mut Args<'a>, xreadgroup: bool) -> Result<ReadArgs<'a>, Reply> {
    let mut parsed = ReadArgs {
        block: None,
        count: 0,
        noack: false,
        group: None,
        keys: &[],
        ids: &[],
    };
    while let Some(opt) = args.next() {
        let more = !args.is_empty();
        if is(opt, "block") && more {
            let ms = parse_int(args.bytes()?)
                .ok_or_else(|| error("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(error("ERR timeout is negative"));
            }
            parsed.block = Some((ms > 0).then_some(ms as u64));
        } else if is(opt, "count") && more {
            let n = count_arg(args.bytes()?)?;
            parsed.count = n.max(0) as usize;
        } else if is(opt, "streams") && more {
            let rest = args.rest();
            if !rest.len().is_multiple_of(2) {
                return Err(error(
                    "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' \
                     must be specified.",
                )
                .pipe_if(xreadgroup, || {
                    error(
                        "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an \
                         ID or '>' must be specified.",
                    )
                }));
            }
            let half = rest.len() / 2;
            parsed.keys = &rest[..half];
            parsed.ids = &rest[half..];
        } else if is(opt, "group") && args.remaining() >= 2 {
            if !xreadgroup {
                return Err(error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ));
            }
            let group = args.bytes()?;
            parsed.group = Some((group, args.bytes()?));
        } else if is(opt, "noack") {
            if !xreadgroup {
                return Err(error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ));
            }
            parsed.noack = true;
        } else {
            return Err(syntax_error());
        }
    }
    if parsed.keys.is_empty() {
        return Err(syntax_error());
    }
    if xreadgroup && parsed.group.is_none() {
        return Err(error("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(parsed)
}

trait PipeIf {
    fn pipe_if(self, cond: bool, other: impl FnOnce() -> Self) -> Self;
}

impl PipeIf for Reply {
    fn pipe_if(self, cond: bool, other: impl FnOnce() -> Self) -> Self {
        if cond { other() } else { self }
    }
}

/// The reply of `XREAD`/`XREADGROUP`: per stream with entries, its key and entries (a map
/// in RESP3); a null when nothing was read.
fn read_reply(ctx: &Ctx<'_>, found: Vec<(Bytes, Vec<Reply>)>) -> Reply {
    read_reply_for(ctx.session.protocol == Protocol::Resp3, found)
}

fn read_reply_for(resp3: bool, found: Vec<(Bytes, Vec<Reply>)>) -> Reply {
    if found.is_empty() {
        return Reply::NullArray;
    }
    if resp3 {
        Reply::Map(
            found
                .into_iter()
                .map(|(k, e)| (Reply::Bulk(k), Reply::Array(e)))
                .collect(),
        )
    } else {
        Reply::Array(
            found
                .into_iter()
                .map(|(k, e)| Reply::Array(vec![Reply::Bulk(k), Reply::Array(e)]))
                .collect(),
        )
    }
}

/// `XREAD [COUNT n] [BLOCK ms] STREAMS key [key …] id [id …]`.
pub fn xread(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let parsed = read_args(args, false)?;
    // Every ID is parsed (and every key's type checked) before anything is read.
    let mut starts = Vec::with_capacity(parsed.keys.len());
    for (key, id) in parsed.keys.iter().zip(parsed.ids) {
        let stream = read(ctx, key)?;
        let after = if &id[..] == b"$" {
            stream.as_ref().map_or(StreamId::MIN, |s| s.last_id())
        } else if &id[..] == b">" {
            return Err(error(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP \
                 <group> <consumer> option.",
            ));
        } else {
            // Redis 7.0 reads these IDs strictly: `-` and `+` are invalid.
            parse_id(id, 0, true)?
        };
        starts.push((key, stream, after));
    }
    let after: Vec<(Bytes, StreamId)> = starts.iter().map(|(k, _, a)| ((*k).clone(), *a)).collect();
    let mut budget = OutputBudget::new(ctx.shared);
    let mut found = Vec::new();
    for (key, stream, after) in starts {
        let (Some(stream), Some(start)) = (stream, after.next()) else {
            continue;
        };
        let count = if parsed.count == 0 {
            usize::MAX
        } else {
            parsed.count
        };
        let mut entries = Vec::new();
        for (id, fields) in stream.range(start, StreamId::MAX).take(count) {
            if !charge_entry(&mut budget, fields) {
                return Err(budget.refusal());
            }
            entries.push(entry_reply(id, Some(fields)));
        }
        if !entries.is_empty() {
            found.push((key.clone(), entries));
        }
    }
    if found.is_empty()
        && let Some(timeout_ms) = parsed.block
    {
        let wait = StreamWait {
            after,
            count: parsed.count,
            group: None,
            resp3: ctx.session.protocol == Protocol::Resp3,
        };
        return block(ctx, parsed.keys, wait, timeout_ms);
    }
    Ok(read_reply(ctx, found).into())
}

/// Leaves the stream wait in the session (or answers a null where the command may not
/// block).
fn block(ctx: &mut Ctx<'_>, keys: &[Bytes], wait: StreamWait, timeout_ms: Option<u64>) -> Handled {
    super::lists::too_many_keys(keys.len())?;
    let keys: Vec<&Bytes> = keys.iter().collect();
    super::lists::block(ctx, &keys, BlockOp::Streams(wait), timeout_ms)
}

/// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key [key …] id
/// [id …]`.
pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let parsed = read_args(args, true)?;
    let Some((group, consumer)) = parsed.group else {
        return Err(error("ERR Missing GROUP option for XREADGROUP"));
    };
    let mut starts = Vec::with_capacity(parsed.keys.len());
    for (key, id) in parsed.keys.iter().zip(parsed.ids) {
        let stream = read(ctx, key)?;
        if stream.as_ref().and_then(|s| s.group(group)).is_none() {
            return Err(error(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(group)
            )));
        }
        let from = if &id[..] == b">" {
            ReadFrom::New
        } else if &id[..] == b"$" {
            return Err(error(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                 history of this consumer by specifying a proper ID, or use the > ID to get \
                 new messages. The $ ID would just return an empty result set.",
            ));
        } else {
            // Redis 7.0 reads these IDs strictly: `-` and `+` are invalid.
            ReadFrom::History(parse_id(id, 0, true)?)
        };
        starts.push((key, from));
    }
    let all_new = starts.iter().all(|(_, from)| *from == ReadFrom::New);
    let mut budget = OutputBudget::new(ctx.shared);
    let mut found = Vec::new();
    let mut over = false;
    for (key, from) in starts {
        let known = has_consumer(ctx, key, group, consumer);
        let delivered = ctx
            .store()
            .stream_read_group(
                key,
                group,
                consumer,
                from,
                parsed.count,
                parsed.noack,
                |fields| {
                    let fits = charge_entry(&mut budget, fields);
                    over |= !fits;
                    fits
                },
                ctx.now,
            )
            .map_err(|e| match e {
                StoreError::TooLarge if over => budget.refusal(),
                other => store_error(other),
            })?
            .map_err(|r| refusal(r, key, group))?;
        if !known && has_consumer(ctx, key, group, consumer) {
            ctx.notify(STREAM, "xgroup-createconsumer", key);
        }
        let history = matches!(from, ReadFrom::History(_));
        if !delivered.is_empty() || history {
            let entries = delivered
                .iter()
                .map(|(id, fields)| entry_reply(*id, fields.as_deref()))
                .collect();
            found.push((key.clone(), entries));
        }
    }
    // Only a read of new entries (`>` everywhere) blocks, as in Redis.
    if found.is_empty()
        && all_new
        && let Some(timeout_ms) = parsed.block
    {
        let wait = StreamWait {
            after: Vec::new(),
            count: parsed.count,
            group: Some((group.clone(), consumer.clone(), parsed.noack)),
            resp3: ctx.session.protocol == Protocol::Resp3,
        };
        return block(ctx, parsed.keys, wait, timeout_ms);
    }
    Ok(read_reply(ctx, found).into())
}

/// `XACK key group id [id …]`.
pub fn xack(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let group = args.bytes()?;
    // Redis checks the type and answers 0 for a missing key or group before it reads the
    // IDs (so a bad ID there is no error).
    if !has_group(ctx, key, group)? {
        return Ok(Reply::Integer(0).into());
    }
    let ids = ids(args)?;
    let n = ctx
        .store()
        .stream_ack(key, group, &ids, ctx.now)
        .map_err(store_error)?;
    Ok(Reply::Integer(n as i64).into())
}

/// `XPENDING key group [[IDLE min-idle] start end count [consumer]]`.
pub fn xpending(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let group = args.bytes()?;
    let rest = args.rest();
    let extended = !rest.is_empty();
    let (mut min_idle, mut at) = (0u64, 0);
    if extended {
        if rest.len() < 3 {
            return Err(syntax_error());
        }
        if is(&rest[0], "idle") {
            if rest.len() < 5 {
                return Err(syntax_error());
            }
            let n = count_arg(&rest[1])?;
            min_idle = n.max(0) as u64;
            at = 2;
        }
        if rest.len() - at > 4 {
            return Err(syntax_error());
        }
    }
    let bounds = if extended {
        let start = parse_bound(&rest[at], 0, true)?;
        let end = parse_bound(&rest[at + 1], u64::MAX, false)?;
        let count = count_arg(&rest[at + 2])?.max(0) as usize;
        Some((start, end, count, rest.get(at + 3)))
    } else {
        None
    };
    let stream = read(ctx, key)?;
    let Some(g) = stream.as_ref().and_then(|s| s.group(group)) else {
        return Err(refusal(StreamRefusal::NoGroup, key, group));
    };
    let Some((start, end, count, consumer)) = bounds else {
        if g.pending.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Integer(0),
                Reply::Null,
                Reply::Null,
                Reply::NullArray,
            ])
            .into());
        }
        let first = *g.pending.keys().next().unwrap_or(&StreamId::MIN);
        let last = *g.pending.keys().next_back().unwrap_or(&StreamId::MIN);
        let mut per: Vec<(Bytes, usize)> = Vec::new();
        for (name, c) in &g.consumers {
            if !c.pending.is_empty() {
                per.push((name.clone(), c.pending.len()));
            }
        }
        OutputBudget::check(ctx.shared, per.iter().map(|(n, _)| n.len()))?;
        return Ok(Reply::Array(vec![
            Reply::Integer(g.pending.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(
                per.into_iter()
                    .map(|(n, c)| {
                        Reply::Array(vec![
                            Reply::Bulk(n),
                            Reply::Bulk(Bytes::from(c.to_string())),
                        ])
                    })
                    .collect(),
            ),
        ])
        .into());
    };
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    if start > end || count == 0 {
        return Ok(Reply::Array(Vec::new()).into());
    }
    let mut budget = OutputBudget::new(ctx.shared);
    let mut out = Vec::new();
    // Walked lazily: a pending list of millions costs only the entries the reply takes
    // (plus those skipped for being too recent).
    let candidates: Box<dyn Iterator<Item = StreamId> + '_> = match consumer {
        Some(name) => match g.consumers.get(&name[..]) {
            Some(c) => Box::new(c.pending.range(start..=end).copied()),
            None => return Ok(Reply::Array(Vec::new()).into()),
        },
        None => Box::new(g.pending.range(start..=end).map(|(id, _)| *id)),
    };
    for id in candidates {
        if out.len() >= count {
            break;
        }
        let Some(p) = g.pending.get(&id) else {
            continue;
        };
        let idle = ctx.now.saturating_sub(p.delivery_time);
        if idle < min_idle {
            continue;
        }
        if !budget.charge(24) || !budget.charge(p.consumer.len()) || !budget.charge(40) {
            return Err(budget.refusal());
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(p.consumer.clone()),
            Reply::Integer(idle as i64),
            Reply::Integer(p.delivery_count as i64),
        ]));
    }
    Ok(Reply::Array(out).into())
}

fn claimed_reply(claimed: Vec<Delivered>, just_id: bool) -> Vec<Reply> {
    claimed
        .into_iter()
        .filter(|(_, fields)| just_id || fields.is_some())
        .map(|(id, fields)| {
            if just_id {
                id_reply(id)
            } else {
                entry_reply(id, fields.as_deref())
            }
        })
        .collect()
}

/// `XCLAIM key group consumer min-idle-time id [id …] [IDLE ms] [TIME unix-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]`.
pub fn xclaim(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let group = args.bytes()?;
    let consumer = args.bytes()?;
    let min_idle = parse_int(args.bytes()?)
        .ok_or_else(|| error("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0) as u64;
    if !has_group(ctx, key, group)? {
        return Err(refusal(StreamRefusal::NoGroup, key, group));
    }
    let mut ids = Vec::new();
    while let Some(arg) = args.peek() {
        match parse_id(arg, 0, true) {
            Ok(id) => {
                ids.push(id);
                args.next();
            }
            Err(_) => break,
        }
        if ids.len() > MAX_IDS {
            return Err(error("ERR too many IDs"));
        }
    }
    let mut options = ClaimOptions::default();
    while let Some(opt) = args.next() {
        let more = !args.is_empty();
        if is(opt, "force") {
            options.force = true;
        } else if is(opt, "justid") {
            options.just_id = true;
        } else if is(opt, "idle") && more {
            let n = count_arg(args.bytes()?)?;
            options.delivery_time = Some(ctx.now.saturating_sub(n.max(0) as u64));
        } else if is(opt, "time") && more {
            let n = count_arg(args.bytes()?)?;
            options.delivery_time = Some(n.max(0) as u64);
        } else if is(opt, "retrycount") && more {
            let n = count_arg(args.bytes()?)?;
            options.retry_count = Some(n.max(0) as u64);
        } else if is(opt, "lastid") && more {
            options.last_id = Some(parse_id(args.bytes()?, 0, true)?);
        } else {
            return Err(error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if options.delivery_time.is_some_and(|t| t > ctx.now) {
        options.delivery_time = Some(ctx.now);
    }
    let claimed = claim_within_output_limit(ctx, key, group, consumer, |store, fits, now| {
        store.stream_claim(key, group, consumer, min_idle, &ids, options, fits, now)
    })?;
    Ok(Reply::Array(claimed_reply(claimed, options.just_id)).into())
}

/// Runs a claim (`XCLAIM`, `XAUTOCLAIM`) under the client output limit: `claim` hands the
/// store the check each claimed entry must pass before anything changes, so a reply too
/// large to send claims nothing and answers the limit's error; a consumer the claim created
/// raises `xgroup-createconsumer`.
fn claim_within_output_limit<T>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    claim: impl FnOnce(
        &Store,
        &mut dyn FnMut(&[Bytes]) -> bool,
        u64,
    ) -> Result<Result<T, StreamRefusal>, StoreError>,
) -> Result<T, Reply> {
    let known = has_consumer(ctx, key, group, consumer);
    let mut budget = OutputBudget::new(ctx.shared);
    let mut over = false;
    let mut fits = |fields: &[Bytes]| {
        let fits = charge_entry(&mut budget, fields);
        over |= !fits;
        fits
    };
    let outcome = claim(ctx.store(), &mut fits, ctx.now);
    let claimed = outcome
        .map_err(|e| match e {
            StoreError::TooLarge if over => budget.refusal(),
            other => store_error(other),
        })?
        .map_err(|r| refusal(r, key, group))?;
    if !known && has_consumer(ctx, key, group, consumer) {
        ctx.notify(STREAM, "xgroup-createconsumer", key);
    }
    Ok(claimed)
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`.
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let group = args.bytes()?;
    let consumer = args.bytes()?;
    let min_idle = parse_int(args.bytes()?)
        .ok_or_else(|| error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0) as u64;
    let start = parse_bound(args.bytes()?, 0, true)?
        .ok_or_else(|| error("ERR invalid start ID for the interval"))?;
    let (mut count, mut just_id) = (100usize, false);
    while let Some(opt) = args.next() {
        if is(opt, "count") && !args.is_empty() {
            let n = count_arg(args.bytes()?)?;
            // Redis's bound: the scan looks at up to ten times COUNT entries.
            if !(1..=(i64::MAX / 10)).contains(&n) {
                return Err(error("ERR COUNT must be > 0"));
            }
            count = n as usize;
        } else if is(opt, "justid") {
            just_id = true;
        } else {
            return Err(syntax_error());
        }
    }
    if !has_group(ctx, key, group)? {
        return Err(refusal(StreamRefusal::NoGroup, key, group));
    }
    let done = claim_within_output_limit(ctx, key, group, consumer, |store, fits, now| {
        store.stream_autoclaim(
            key, group, consumer, min_idle, start, count, just_id, fits, now,
        )
    })?;
    Ok(Reply::Array(vec![
        id_reply(done.next),
        Reply::Array(claimed_reply(done.claimed, just_id)),
        Reply::Array(done.deleted.into_iter().map(id_reply).collect()),
    ])
    .into())
}

fn pair(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::Bulk(Bytes::from_static(name.as_bytes())), value)
}

fn opt_int(value: Option<u64>) -> Reply {
    value.map_or(Reply::Null, |n| Reply::Integer(n as i64))
}

/// `XINFO STREAM key [FULL [COUNT n]]`, `XINFO GROUPS key`, `XINFO CONSUMERS key group`,
/// `XINFO HELP`.
pub fn xinfo(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    let argc = args.remaining() + 2;
    if is(sub, "help") {
        if argc != 2 {
            return Err(super::wrong_args("xinfo|help"));
        }
        return help(XINFO_HELP);
    }
    if argc < 3 {
        return Err(subcommand_syntax("XINFO", sub));
    }
    let key = args.bytes()?;
    let Some(stream) = read(ctx, key)? else {
        return Err(error("ERR no such key"));
    };
    let mut budget = OutputBudget::new(ctx.shared);
    if is(sub, "consumers") && argc == 4 {
        let group = args.bytes()?;
        let Some(g) = stream.group(group) else {
            return Err(error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(group),
                String::from_utf8_lossy(key)
            )));
        };
        let mut out = Vec::new();
        for (name, c) in &g.consumers {
            if !budget.charge(name.len() + 64) {
                return Err(budget.refusal());
            }
            out.push(Reply::Map(vec![
                pair("name", Reply::Bulk(name.clone())),
                pair("pending", Reply::Integer(c.pending.len() as i64)),
                pair(
                    "idle",
                    Reply::Integer(ctx.now.saturating_sub(c.seen_time) as i64),
                ),
            ]));
        }
        return Ok(Reply::Array(out).into());
    }
    if is(sub, "groups") && argc == 3 {
        let mut out = Vec::new();
        for (name, g) in stream.groups() {
            if !budget.charge(name.len() + 128) {
                return Err(budget.refusal());
            }
            out.push(Reply::Map(vec![
                pair("name", Reply::Bulk(name.clone())),
                pair("consumers", Reply::Integer(g.consumers.len() as i64)),
                pair("pending", Reply::Integer(g.pending.len() as i64)),
                pair("last-delivered-id", id_reply(g.last_delivered)),
                pair("entries-read", opt_int(g.entries_read)),
                pair("lag", opt_int(stream.lag(g))),
            ]));
        }
        return Ok(Reply::Array(out).into());
    }
    if !is(sub, "stream") {
        return Err(subcommand_syntax("XINFO", sub));
    }
    let opts = args.rest();
    let (full, count) = match opts.len() {
        0 => (false, 0),
        1 if is(&opts[0], "full") => (true, 10),
        3 if is(&opts[0], "full") && is(&opts[1], "count") => {
            let n = count_arg(&opts[2])?;
            (true, if n < 0 { 10 } else { n as usize })
        }
        _ => return Err(subcommand_syntax("XINFO", sub)),
    };
    let limit = if count == 0 { usize::MAX } else { count };
    // Redis's radix tree holds about 100 entries a node; reported as that estimate.
    let nodes = stream.len().div_ceil(100) as i64;
    let mut map = vec![
        pair("length", Reply::Integer(stream.len() as i64)),
        pair("radix-tree-keys", Reply::Integer(nodes)),
        pair("radix-tree-nodes", Reply::Integer(nodes + 1)),
        pair("last-generated-id", id_reply(stream.last_id())),
        pair("max-deleted-entry-id", id_reply(stream.max_deleted())),
        pair(
            "entries-added",
            Reply::Integer(stream.entries_added() as i64),
        ),
        pair("recorded-first-entry-id", id_reply(stream.first_id())),
    ];
    if !full {
        map.push(pair("groups", Reply::Integer(stream.groups().len() as i64)));
        let edge = |e: Option<(StreamId, &[Bytes])>| {
            e.map_or(Reply::Null, |(id, f)| entry_reply(id, Some(f)))
        };
        OutputBudget::check(
            ctx.shared,
            [stream.first_entry(), stream.last_entry()]
                .into_iter()
                .flatten()
                .flat_map(|(_, f)| f.iter().map(Bytes::len)),
        )?;
        map.push(pair("first-entry", edge(stream.first_entry())));
        map.push(pair("last-entry", edge(stream.last_entry())));
        return Ok(Reply::Map(map).into());
    }
    let mut entries = Vec::new();
    for (id, fields) in stream.range(StreamId::MIN, StreamId::MAX).take(limit) {
        if !charge_entry(&mut budget, fields) {
            return Err(budget.refusal());
        }
        entries.push(entry_reply(id, Some(fields)));
    }
    map.push(pair("entries", Reply::Array(entries)));
    let mut groups = Vec::new();
    for (name, g) in stream.groups() {
        if !budget.charge(name.len() + 128) {
            return Err(budget.refusal());
        }
        let mut pending = Vec::new();
        for (id, p) in g.pending.iter().take(limit) {
            if !budget.charge(p.consumer.len() + 64) {
                return Err(budget.refusal());
            }
            pending.push(Reply::Array(vec![
                id_reply(*id),
                Reply::Bulk(p.consumer.clone()),
                Reply::Integer(p.delivery_time as i64),
                Reply::Integer(p.delivery_count as i64),
            ]));
        }
        let mut consumers = Vec::new();
        for (cname, c) in &g.consumers {
            if !budget.charge(cname.len() + 64) {
                return Err(budget.refusal());
            }
            let mut cpel = Vec::new();
            for id in c.pending.iter().take(limit) {
                let Some(p) = g.pending.get(id) else { continue };
                if !budget.charge(64) {
                    return Err(budget.refusal());
                }
                cpel.push(Reply::Array(vec![
                    id_reply(*id),
                    Reply::Integer(p.delivery_time as i64),
                    Reply::Integer(p.delivery_count as i64),
                ]));
            }
            consumers.push(Reply::Map(vec![
                pair("name", Reply::Bulk(cname.clone())),
                pair("seen-time", Reply::Integer(c.seen_time as i64)),
                pair("pel-count", Reply::Integer(c.pending.len() as i64)),
                pair("pending", Reply::Array(cpel)),
            ]));
        }
        groups.push(Reply::Map(vec![
            pair("name", Reply::Bulk(name.clone())),
            pair("last-delivered-id", id_reply(g.last_delivered)),
            pair("entries-read", opt_int(g.entries_read)),
            pair("lag", opt_int(stream.lag(g))),
            pair("pel-count", Reply::Integer(g.pending.len() as i64)),
            pair("pending", Reply::Array(pending)),
            pair("consumers", Reply::Array(consumers)),
        ]));
    }
    map.push(pair("groups", Reply::Array(groups)));
    Ok(Reply::Map(map).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_reads_them() {
        assert_eq!(parse_id(b"1-2", 0, true).ok(), Some(StreamId::new(1, 2)));
        assert_eq!(parse_id(b"5", 7, true).ok(), Some(StreamId::new(5, 7)));
        assert_eq!(parse_id(b"-", 0, false).ok(), Some(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0, false).ok(), Some(StreamId::MAX));
        for bad in [
            &b"-"[..],
            b"+",
            b"",
            b"1-",
            b"-1",
            b"a-1",
            b"1-2-3",
            b"18446744073709551616",
        ] {
            assert!(parse_id(bad, 0, true).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615", 0, true).ok(),
            Some(StreamId::MAX)
        );
        // `(` makes a bound exclusive; `(+` is no ID at all.
        assert!(parse_bound(b"(+", 0, true).is_err());
        assert!(parse_bound(b"(18446744073709551615-18446744073709551615", 0, true).is_err());
        assert_eq!(
            parse_bound(b"(1-1", 0, true).ok().flatten(),
            Some(StreamId::new(1, 2))
        );
    }
}
