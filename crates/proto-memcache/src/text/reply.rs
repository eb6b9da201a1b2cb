//! Text replies: an [`Outcome`] becomes memcached's exact reply bytes.
//!
//! The reply shape is chosen by the outcome, with the request contributing only what the
//! outcome cannot know: `noreply`, whether `VALUE` lines carry the CAS, that `quit` is never
//! answered, and the two commands whose success is not `OK` (`stats reset` → `RESET`,
//! `mn` → `MN`). It does not check that the outcome fits the command; the glue guarantees that.

use bytes::{BufMut, BytesMut};

use super::{TextRequest, put_decimal};
use crate::chunks::{ReplyChunks, ReplyOut};
use crate::meta::{MetaItem, MetaOutcome, MetaRequest, MetaStatus, MetaVerb, base64_encode};
use crate::{Command, Hit, Outcome, StatsGroup};

/// Appends memcached's reply to `req` given `outcome`; nothing at all for a `noreply` request
/// or for `quit`.
///
/// `noreply` silences failures too (`NOT_STORED`, `SERVER_ERROR …`), as memcached does: the
/// client asked not to read a reply, and an unexpected line would be taken as the answer to
/// its next request.
pub fn encode_reply(req: &TextRequest, outcome: &Outcome, out: &mut BytesMut) {
    encode(req, outcome, out);
}

/// [`encode_reply`] into a [`ReplyChunks`]: the same bytes, with each large value queued by
/// reference rather than copied.
pub fn encode_reply_chunks(req: &TextRequest, outcome: &Outcome, out: &mut ReplyChunks) {
    encode(req, outcome, out);
}

fn encode(req: &TextRequest, outcome: &Outcome, out: &mut impl ReplyOut) {
    if (req.noreply && !outcome.is_auth()) || req.command == Command::Quit {
        return;
    }
    match outcome {
        Outcome::Values(values) => {
            for hit in values.iter().flatten() {
                put_value_header(req, hit, out.bytes());
                out.value(&hit.value);
                out.bytes().put_slice(b"\r\n");
            }
            if !req.more {
                out.bytes().put_slice(b"END\r\n");
            }
        }
        Outcome::Meta(meta) => match &req.command {
            Command::Meta(request) => encode_meta(request, meta, out),
            _ => out
                .bytes()
                .put_slice(b"SERVER_ERROR meta outcome for another command\r\n"),
        },
        _ => encode_line(req, outcome, out.bytes()),
    }
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n`.
fn put_value_header(req: &TextRequest, hit: &Hit, out: &mut BytesMut) {
    out.put_slice(b"VALUE ");
    out.put_slice(&hit.key);
    out.put_u8(b' ');
    put_decimal(out, u64::from(hit.flags));
    out.put_u8(b' ');
    put_decimal(out, hit.value.len() as u64);
    if req.with_cas {
        out.put_u8(b' ');
        put_decimal(out, hit.cas);
    }
    out.put_slice(b"\r\n");
}

/// Every reply but values: one or more lines, no value to share.
fn encode_line(req: &TextRequest, outcome: &Outcome, out: &mut BytesMut) {
    match outcome {
        // Handled by `encode`; kept total so that a new outcome cannot be forgotten here.
        Outcome::Values(_) | Outcome::Meta(_) => encode(req, outcome, out),
        Outcome::Stored { .. } => out.put_slice(b"STORED\r\n"),
        Outcome::NotStored => out.put_slice(b"NOT_STORED\r\n"),
        Outcome::Exists => out.put_slice(b"EXISTS\r\n"),
        Outcome::NotFound => out.put_slice(b"NOT_FOUND\r\n"),
        Outcome::Deleted => out.put_slice(b"DELETED\r\n"),
        Outcome::Touched { .. } => out.put_slice(b"TOUCHED\r\n"),
        Outcome::Counter { value, .. } => {
            put_decimal(out, *value);
            out.put_slice(b"\r\n");
        }
        Outcome::NonNumeric => {
            out.put_slice(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
        }
        Outcome::Ok => match req.command {
            Command::Stats(StatsGroup::Reset) => out.put_slice(b"RESET\r\n"),
            Command::Noop => out.put_slice(b"MN\r\n"),
            _ => out.put_slice(b"OK\r\n"),
        },
        Outcome::Version(version) => {
            out.put_slice(b"VERSION ");
            put_text(out, version);
            out.put_slice(b"\r\n");
        }
        Outcome::Stats(stats) => {
            for (name, value) in stats {
                out.put_slice(b"STAT ");
                put_text(out, name);
                out.put_u8(b' ');
                put_text(out, value);
                out.put_slice(b"\r\n");
            }
            out.put_slice(b"END\r\n");
        }
        Outcome::OutOfMemory => out.put_slice(b"SERVER_ERROR out of memory storing object\r\n"),
        Outcome::TooLarge => out.put_slice(b"SERVER_ERROR object too large for cache\r\n"),
        Outcome::UnknownCommand => out.put_slice(b"ERROR\r\n"),
        Outcome::Revoked => {
            out.put_slice(b"SERVER_ERROR ");
            out.put_slice(crate::REVOKED.as_bytes());
            out.put_slice(b"\r\n");
        }
        Outcome::ServerError(reason) => {
            out.put_slice(b"SERVER_ERROR ");
            put_text(out, reason);
            out.put_slice(b"\r\n");
        }
        // memcached's authentication replies (proto_text.c, `-Y` mode).
        Outcome::Authenticated => out.put_slice(b"STORED\r\n"),
        Outcome::AuthFailed => out.put_slice(b"CLIENT_ERROR authentication failure\r\n"),
        Outcome::Unauthenticated => out.put_slice(b"CLIENT_ERROR unauthenticated\r\n"),
        Outcome::NotPermitted => {
            let name: &[u8] = match req.command {
                Command::FlushAll { .. } => b"flush_all",
                Command::JournalRewrite => b"journal rewrite",
                Command::Stats(_) => b"stats",
                _ => b"command",
            };
            out.put_slice(b"CLIENT_ERROR ");
            out.put_slice(name);
            out.put_slice(b" not allowed\r\n");
        }
        Outcome::ClientError(reason) => {
            out.put_slice(b"CLIENT_ERROR ");
            put_text(out, reason);
            out.put_slice(b"\r\n");
        }
        // No text command asks for mechanisms; kept total for the same reason as `Values`.
        Outcome::SaslMechanisms(_) => out.put_slice(b"ERROR\r\n"),
    }
}

/// Free text inside a reply line, with line breaks flattened to spaces: a version string or
/// error reason containing `\n` would otherwise end the line early and desynchronise the
/// client.
fn put_text(out: &mut BytesMut, text: &str) {
    for (i, part) in text
        .as_bytes()
        .split(|&b| b == b'\r' || b == b'\n')
        .enumerate()
    {
        if i > 0 {
            out.put_u8(b' ');
        }
        out.put_slice(part);
    }
}

/// A meta reply: the code, then the flags the request asked for, in its order, as memcached
/// 1.6 writes them. `q` hides only the nominal reply (mg's `EN`; a success of the others).
fn encode_meta(req: &MetaRequest, outcome: &MetaOutcome, out: &mut impl ReplyOut) {
    let flags = &req.flags;
    let status = outcome.status;
    let nominal = match req.verb {
        MetaVerb::Get => status == MetaStatus::Miss,
        MetaVerb::Set(_) | MetaVerb::Delete | MetaVerb::Arith(_) => status == MetaStatus::Done,
        MetaVerb::Debug => false,
    };
    if flags.quiet && nominal {
        return;
    }
    let item = outcome.item.as_ref().filter(|_| status == MetaStatus::Done);
    let buf = out.bytes();
    if req.verb == MetaVerb::Debug {
        let Some(item) = item else {
            buf.put_slice(b"EN\r\n");
            return;
        };
        buf.put_slice(b"ME ");
        put_key(req, buf, false);
        buf.put_slice(b" exp=");
        match item.ttl {
            Some(ttl) => put_decimal(buf, ttl),
            None => buf.put_slice(b"-1"),
        }
        buf.put_slice(b" la=");
        put_decimal(buf, item.last_access);
        buf.put_slice(b" cas=");
        put_decimal(buf, item.cas);
        buf.put_slice(if item.fetched {
            b" fetch=yes"
        } else {
            b" fetch=no"
        });
        buf.put_slice(b" cls=1 size=");
        put_decimal(buf, (req.key.len() + item.value.len()) as u64);
        buf.put_slice(b"\r\n");
        return;
    }
    let with_value = flags.value && matches!(req.verb, MetaVerb::Get | MetaVerb::Arith(_));
    match (status, item) {
        (MetaStatus::Done, Some(item)) if with_value => {
            buf.put_slice(b"VA ");
            put_decimal(buf, item.value.len() as u64);
        }
        (MetaStatus::Done, _) => buf.put_slice(b"HD"),
        (MetaStatus::Miss, _) => buf.put_slice(b"EN"),
        (MetaStatus::NotStored, _) => buf.put_slice(b"NS"),
        (MetaStatus::Exists, _) => buf.put_slice(b"EX"),
        (MetaStatus::NotFound, _) => buf.put_slice(b"NF"),
    }
    for &letter in &flags.order {
        match letter {
            b'O' => {
                buf.put_u8(b' ');
                buf.put_slice(flags.opaque.as_deref().unwrap_or_default());
            }
            b'k' => {
                buf.put_slice(b" k");
                put_key(req, buf, true);
            }
            // ms writes its `c` whatever the result (0 when nothing was stored).
            b'c' if matches!(req.verb, MetaVerb::Set(_)) => {
                buf.put_slice(b" c");
                put_decimal(buf, outcome.item.as_ref().map_or(0, |i| i.cas));
            }
            _ => {
                if let Some(item) = item {
                    put_item_flag(req.verb, letter, item, buf);
                }
            }
        }
    }
    if let (MetaVerb::Get, Some(item)) = (req.verb, item) {
        // memcached's order: Z before X before W.
        if item.token_sent {
            buf.put_slice(b" Z");
        }
        if item.stale {
            buf.put_slice(b" X");
        }
        if item.won {
            buf.put_slice(b" W");
        }
    }
    buf.put_slice(b"\r\n");
    if let Some(item) = item.filter(|_| with_value) {
        out.value(&item.value);
        out.bytes().put_slice(b"\r\n");
    }
}

/// A return flag that reports on the item: mg's `c`, `f`, `h`, `l`, `s`, `t`; ma's `c`, `t`.
fn put_item_flag(verb: MetaVerb, letter: u8, item: &MetaItem, buf: &mut BytesMut) {
    let get = verb == MetaVerb::Get;
    let arith = matches!(verb, MetaVerb::Arith(_));
    let number = match letter {
        b'c' if get || arith => item.cas,
        b'f' if get => u64::from(item.flags),
        b'h' if get => u64::from(item.fetched),
        b'l' if get => item.last_access,
        b's' if get => item.value.len() as u64,
        b't' if get || arith => {
            buf.put_slice(b" t");
            match item.ttl {
                Some(ttl) => put_decimal(buf, ttl),
                None => buf.put_slice(b"-1"),
            }
            return;
        }
        _ => return,
    };
    buf.put_u8(b' ');
    buf.put_u8(letter);
    put_decimal(buf, number);
}

/// The request's key as it travelled: base64 again (with a ` b` after it, when `flag_b`)
/// for a `b` request.
fn put_key(req: &MetaRequest, buf: &mut BytesMut, flag_b: bool) {
    if !req.base64 {
        buf.put_slice(&req.key);
        return;
    }
    let mut text = Vec::with_capacity(req.key.len().div_ceil(3) * 4);
    base64_encode(&req.key, &mut text);
    buf.put_slice(&text);
    if flag_b {
        buf.put_slice(b" b");
    }
}
