//! Text replies: an [`Outcome`] becomes memcached's exact reply bytes.
//!
//! The reply shape is chosen by the outcome, with the request contributing only what the
//! outcome cannot know: `noreply`, whether `VALUE` lines carry the CAS, that `quit` is never
//! answered, and the two commands whose success is not `OK` (`stats reset` → `RESET`,
//! `mn` → `MN`). It does not check that the outcome fits the command; the glue guarantees that.

use bytes::{BufMut, BytesMut};

use super::{TextRequest, put_decimal};
use crate::chunks::{ReplyChunks, ReplyOut};
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
            out.bytes().put_slice(b"END\r\n");
        }
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
        Outcome::Values(_) => encode(req, outcome, out),
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
