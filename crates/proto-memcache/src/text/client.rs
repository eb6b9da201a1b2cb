//! The client side of the text protocol, for the load generator and the tests: requests to
//! bytes, and reply bytes back to a [`TextReply`].
//!
//! The reply decoder is stateless and recognises reply *shapes* (a `VALUE … END` block, a
//! `STAT … END` block, a number, any other single line) without knowing which request it
//! answers, so it is not a validating client. It does not enforce limits beyond waiting for the
//! bytes a `VALUE` line announces; a client talks to a server it trusts.

use bytes::{BufMut, Bytes, BytesMut};

use super::decode::{parse_u32, parse_u64};
use super::{TextRequest, put_decimal, put_signed};
use crate::meta::{MetaRequest, MetaVerb, base64_encode};
use crate::{ArithMode, Command, StoreMode};

/// The text form of a meta request: its flags in their order, each with its value.
fn encode_meta(req: &MetaRequest, out: &mut BytesMut) {
    out.put_slice(match req.verb {
        MetaVerb::Get => b"mg ",
        MetaVerb::Set(_) => b"ms ",
        MetaVerb::Delete => b"md ",
        MetaVerb::Arith(_) => b"ma ",
        MetaVerb::Debug => b"me ",
    });
    if req.base64 {
        let mut text = Vec::new();
        base64_encode(&req.key, &mut text);
        out.put_slice(&text);
    } else {
        out.put_slice(&req.key);
    }
    if req.verb == MetaVerb::Debug {
        if req.base64 {
            out.put_slice(b" b");
        }
        out.put_slice(b"\r\n");
        return;
    }
    if matches!(req.verb, MetaVerb::Set(_)) {
        out.put_u8(b' ');
        put_decimal(out, req.value.len() as u64);
    }
    let f = &req.flags;
    for &letter in &f.order {
        out.put_u8(b' ');
        if letter == b'O' {
            out.put_slice(f.opaque.as_deref().unwrap_or(b"O"));
            continue;
        }
        out.put_u8(letter);
        let signed = |v: Option<i64>| v.unwrap_or_default();
        match letter {
            b'N' => put_signed(out, signed(f.vivify)),
            b'T' => put_signed(out, signed(f.ttl)),
            b'R' => put_signed(out, signed(f.recache)),
            b'C' => put_decimal(out, f.cas.unwrap_or_default()),
            b'E' => put_decimal(out, f.new_cas.unwrap_or_default()),
            b'F' => put_decimal(out, u64::from(f.client_flags.unwrap_or_default())),
            b'J' => put_decimal(out, f.initial.unwrap_or_default()),
            b'D' => put_decimal(out, f.delta.unwrap_or_default()),
            b'M' => out.put_u8(f.mode),
            _ => {}
        }
    }
    out.put_slice(b"\r\n");
    if matches!(req.verb, MetaVerb::Set(_)) {
        out.put_slice(&req.value);
        out.put_slice(b"\r\n");
    }
}

/// Appends the text form of `req`.
///
/// Some [`Command`] fields have no text form and are dropped: `Store.cas` unless the mode is
/// [`StoreMode::Set`] (text `cas` is a conditional set only), `Delete.cas`, `Arith.initial`.
/// [`Command::Noop`] is written as the meta no-op `mn`; [`Command::Unknown`] and the
/// binary-only SASL commands write nothing.
pub fn encode_request(req: &TextRequest, out: &mut BytesMut) {
    match &req.command {
        Command::Get { keys, touch } => {
            let name: &[u8] = match (touch.is_some(), req.with_cas) {
                (false, false) => b"get",
                (false, true) => b"gets",
                (true, false) => b"gat",
                (true, true) => b"gats",
            };
            out.put_slice(name);
            if let Some(exptime) = touch {
                out.put_u8(b' ');
                put_signed(out, *exptime);
            }
            for key in keys {
                out.put_u8(b' ');
                out.put_slice(key);
            }
        }
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas,
        } => {
            let with_cas = *mode == StoreMode::Set && *cas != 0;
            out.put_slice(match mode {
                StoreMode::Set if with_cas => b"cas ",
                StoreMode::Set => b"set ",
                StoreMode::Add => b"add ",
                StoreMode::Replace => b"replace ",
                StoreMode::Append => b"append ",
                StoreMode::Prepend => b"prepend ",
            });
            out.put_slice(key);
            out.put_u8(b' ');
            put_decimal(out, u64::from(*flags));
            out.put_u8(b' ');
            put_signed(out, *exptime);
            out.put_u8(b' ');
            put_decimal(out, value.len() as u64);
            if with_cas {
                out.put_u8(b' ');
                put_decimal(out, *cas);
            }
            put_noreply(req, out);
            out.put_slice(b"\r\n");
            out.put_slice(value);
            // The data block's own terminator; the line's is written below.
            out.put_slice(b"\r\n");
            return;
        }
        Command::Delete { key, .. } => {
            out.put_slice(b"delete ");
            out.put_slice(key);
        }
        Command::Arith {
            mode, key, delta, ..
        } => {
            out.put_slice(match mode {
                ArithMode::Incr => b"incr ",
                ArithMode::Decr => b"decr ",
            });
            out.put_slice(key);
            out.put_u8(b' ');
            put_decimal(out, *delta);
        }
        Command::Touch { key, exptime } => {
            out.put_slice(b"touch ");
            out.put_slice(key);
            out.put_u8(b' ');
            put_signed(out, *exptime);
        }
        Command::FlushAll { delay } => {
            out.put_slice(b"flush_all");
            if *delay != 0 {
                out.put_u8(b' ');
                put_signed(out, *delay);
            }
        }
        Command::Version => out.put_slice(b"version"),
        Command::Verbosity => out.put_slice(b"verbosity 0"),
        Command::Stats(group) => {
            out.put_slice(b"stats");
            if !group.name().is_empty() {
                out.put_u8(b' ');
                out.put_slice(group.name());
            }
        }
        Command::Noop => out.put_slice(b"mn"),
        Command::JournalRewrite => out.put_slice(b"journal rewrite"),
        Command::Quit => out.put_slice(b"quit"),
        Command::Meta(meta) => return encode_meta(meta, out),
        // SASL is binary only; text authentication is a `set`. A refused set's length is
        // not kept, so it cannot be written again.
        Command::SaslListMechs
        | Command::SaslAuth { .. }
        | Command::Unknown
        | Command::TooLarge { .. } => return,
    }
    put_noreply(req, out);
    out.put_slice(b"\r\n");
}

fn put_noreply(req: &TextRequest, out: &mut BytesMut) {
    if req.noreply {
        out.put_slice(b" noreply");
    }
}

/// One decoded text reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextReply {
    /// The answer to a get-family command: the hits in order, up to and including `END`.
    /// A bare `END` (every key missed) is an empty list.
    Values(Vec<TextValue>),
    /// A `STAT <name> <value>` block up to `END`. (An empty stats list is a bare `END` and so
    /// decodes as an empty [`TextReply::Values`].)
    Stats(Vec<(Bytes, Bytes)>),
    /// A line of digits only: the new value after `incr`/`decr`.
    Number(u64),
    /// Any other single line, without its `\r\n`: `STORED`, `NOT_FOUND`, `OK`,
    /// `VERSION 1.6.0`, `ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`, …
    Status(Bytes),
}

/// One `VALUE` item of a [`TextReply::Values`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextValue {
    /// The key.
    pub key: Bytes,
    /// The client flags.
    pub flags: u32,
    /// The CAS unique, present in replies to `gets`/`gats`.
    pub cas: Option<u64>,
    /// The data block.
    pub value: Bytes,
}

/// A reply that is not well-formed memcached text; the stream cannot be trusted after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyError(pub &'static str);

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed memcached reply: {}", self.0)
    }
}

impl std::error::Error for ReplyError {}

/// Decodes one complete reply from the front of `buf`, consuming its bytes; `Ok(None)` until
/// the whole reply (for a `VALUE` block, through `END`) has arrived.
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<TextReply>, ReplyError> {
    let Some((shape, len)) = scan(buf)? else {
        return Ok(None);
    };
    let bytes = buf.split_to(len).freeze();
    Ok(Some(match shape {
        Shape::Values(items) => TextReply::Values(
            items
                .into_iter()
                .map(|item| TextValue {
                    key: bytes.slice(item.key),
                    flags: item.flags,
                    cas: item.cas,
                    value: bytes.slice(item.value),
                })
                .collect(),
        ),
        Shape::Stats(stats) => TextReply::Stats(
            stats
                .into_iter()
                .map(|(name, value)| (bytes.slice(name), bytes.slice(value)))
                .collect(),
        ),
        Shape::Number(n) => TextReply::Number(n),
        Shape::Status(line) => TextReply::Status(bytes.slice(line)),
    }))
}

type Span = std::ops::Range<usize>;

struct ItemSpans {
    key: Span,
    flags: u32,
    cas: Option<u64>,
    value: Span,
}

/// A reply located in the buffer, as offsets, so the bytes can be split off once and shared.
enum Shape {
    Values(Vec<ItemSpans>),
    Stats(Vec<(Span, Span)>),
    Number(u64),
    Status(Span),
}

/// The line starting at `at`: its content span and the offset after its line ending.
fn line_at(buf: &[u8], at: usize) -> Option<(Span, usize)> {
    let rest = buf.get(at..)?;
    let i = rest.iter().position(|&b| b == b'\n')?;
    let end = if i > 0 && rest[i - 1] == b'\r' {
        i - 1
    } else {
        i
    };
    Some((at..at + end, at + i + 1))
}

/// Finds a complete reply at the front of `buf` and its total length.
fn scan(buf: &[u8]) -> Result<Option<(Shape, usize)>, ReplyError> {
    let Some((first, mut at)) = line_at(buf, 0) else {
        return Ok(None);
    };
    let line = &buf[first.clone()];
    if line.starts_with(b"VALUE ") || line == b"END" {
        let mut items = Vec::new();
        let mut current = first;
        loop {
            let line = &buf[current.clone()];
            if line == b"END" {
                return Ok(Some((Shape::Values(items), at)));
            }
            let (item, after) = value_item(buf, current.start, line, at)?;
            let Some(after) = after else {
                return Ok(None);
            };
            items.push(item);
            let Some((next, next_at)) = line_at(buf, after) else {
                return Ok(None);
            };
            current = next;
            at = next_at;
        }
    }
    if line.starts_with(b"STAT ") {
        let mut stats = Vec::new();
        let mut current = first;
        loop {
            let line = &buf[current.clone()];
            if line == b"END" {
                return Ok(Some((Shape::Stats(stats), at)));
            }
            let Some(rest) = line.strip_prefix(b"STAT ") else {
                return Err(ReplyError("expected STAT or END"));
            };
            let start = current.start + 5;
            let split = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let value_start = (start + split + 1).min(current.end);
            stats.push((start..start + split, value_start..current.end));
            let Some((next, next_at)) = line_at(buf, at) else {
                return Ok(None);
            };
            current = next;
            at = next_at;
        }
    }
    if let Some(n) = parse_u64(line) {
        return Ok(Some((Shape::Number(n), at)));
    }
    Ok(Some((Shape::Status(first), at)))
}

/// Parses `VALUE <key> <flags> <bytes> [<cas>]` at `line_start`, whose data block starts at
/// `data`; returns the item and the offset after the block, or `None` for the offset if the
/// block has not fully arrived.
fn value_item(
    buf: &[u8],
    line_start: usize,
    line: &[u8],
    data: usize,
) -> Result<(ItemSpans, Option<usize>), ReplyError> {
    let malformed = ReplyError("malformed VALUE line");
    let mut fields = line.split(|&b| b == b' ');
    if fields.next() != Some(b"VALUE") {
        return Err(ReplyError("expected VALUE or END"));
    }
    let key = fields.next().filter(|k| !k.is_empty()).ok_or(malformed)?;
    let flags = fields.next().and_then(parse_u32).ok_or(malformed)?;
    let len = fields.next().and_then(parse_u64).ok_or(malformed)?;
    let cas = match fields.next() {
        None => None,
        Some(cas) => Some(parse_u64(cas).ok_or(malformed)?),
    };
    if fields.next().is_some() {
        return Err(malformed);
    }
    let key_start = line_start + 6;
    let key = key_start..key_start + key.len();
    let len = usize::try_from(len).map_err(|_| malformed)?;
    let data_end = data.checked_add(len).ok_or(malformed)?;
    let item = ItemSpans {
        key,
        flags,
        cas,
        value: data..data_end,
    };
    match buf.get(data_end..data_end.saturating_add(2)) {
        Some(b"\r\n") => Ok((item, Some(data_end + 2))),
        Some(_) => Err(ReplyError("data block not terminated by \\r\\n")),
        None if buf.len() > data_end => {
            // One byte of the terminator is here; it must be `\r`.
            if buf[data_end] == b'\r' {
                Ok((item, None))
            } else {
                Err(ReplyError("bad data chunk"))
            }
        }
        None => Ok((item, None)),
    }
}
