//! memcached's text protocol: command lines such as `get a b`, `set k 0 0 5 noreply` followed
//! by a data block, and the one-line or `VALUE … END` replies.
//!
//! The server side is [`TextDecoder`] (bytes → [`TextRequest`]), [`encode_reply`] (outcome →
//! bytes) and [`encode_error`] (decode error → bytes). The client side, used by the load
//! generator and the tests, is [`encode_request`] and [`decode_reply`].
//!
//! The decoder follows memcached's observable behaviour, quirks included: lines may end in a
//! bare `\n`, tokens are separated by runs of spaces, `delete <key> 0` is accepted, a trailing
//! `noreply` is honoured on every command that memcached honours it on, and the data block of a
//! storage command rejected after its length was read is swallowed so the stream stays in
//! sync. The meta commands (`mg`, `ms`, `md`, `ma`, `me`) decode into [`Command::Meta`]
//! (`mn` into [`Command::Noop`]) and their replies are encoded here too. Numbers are read as
//! memcached's own parsers read them (`cnum`). A multi-get is decoded in bounded batches,
//! however long its line ([`TextRequest::more`]).
//!
//! What this module deliberately does not do: execute anything, read a clock, or keep
//! per-connection state beyond what framing needs (the bytes still to swallow, a storage
//! command waiting for its data block, and how far the current line has been scanned).

mod client;
mod cnum;
mod decode;
mod reply;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::Command;

pub use client::{ReplyError, TextReply, TextValue, decode_reply, encode_request};
pub use decode::TextDecoder;
pub use reply::{encode_reply, encode_reply_chunks};

/// One decoded text request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRequest {
    /// What the client asked for.
    pub command: Command,
    /// The client sent `noreply`: [`encode_reply`] writes nothing for this request.
    pub noreply: bool,
    /// `gets`/`gats`: `VALUE` lines carry the CAS unique.
    pub with_cas: bool,
    /// A batch of a multi-get's keys with more batches to come: its reply has no `END`.
    /// A get line is decoded [`Limits::max_keys`](crate::Limits::max_keys) keys at a time,
    /// and a line longer than [`Limits::max_line_len`](crate::Limits::max_line_len) a window
    /// at a time, so any number of keys is served with bounded memory; the last batch
    /// (`more: false`) ends the reply.
    pub more: bool,
}

/// A request the decoder rejected. Every variant except [`TextError::Fatal`] leaves the stream
/// in sync: the offending line (and, where memcached does so, its data block) has been
/// consumed, so the connection answers with [`encode_error`] and decodes the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    /// Not a command, or a command with the wrong number of arguments: `ERROR`.
    UnknownCommand,
    /// A malformed argument: `CLIENT_ERROR <reason>`.
    Client(&'static str),
    /// The data block is longer than [`Limits::max_value_len`](crate::Limits::max_value_len):
    /// `SERVER_ERROR object too large for cache`. The block is swallowed.
    TooLarge,
    /// The stream cannot be resynchronised (a line longer than
    /// [`Limits::max_line_len`](crate::Limits::max_line_len)): send `CLIENT_ERROR <reason>`,
    /// then close the connection. Do not call the decoder again.
    Fatal(&'static str),
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::UnknownCommand => f.write_str("unknown command"),
            TextError::Client(reason) => write!(f, "client error: {reason}"),
            TextError::TooLarge => f.write_str("object too large for cache"),
            TextError::Fatal(reason) => write!(f, "fatal client error: {reason}"),
        }
    }
}

impl std::error::Error for TextError {}

/// Writes the reply memcached sends for `err`.
///
/// Errors are written even when the rejected line ended in `noreply`: the decoder cannot
/// always tell (the line may be unparseable), and a client is better served by an error it did
/// not expect than by silence about a write that never happened.
pub fn encode_error(err: &TextError, out: &mut BytesMut) {
    match err {
        TextError::UnknownCommand => out.put_slice(b"ERROR\r\n"),
        TextError::Client(reason) | TextError::Fatal(reason) => {
            out.put_slice(b"CLIENT_ERROR ");
            out.put_slice(reason.as_bytes());
            out.put_slice(b"\r\n");
        }
        TextError::TooLarge => out.put_slice(b"SERVER_ERROR object too large for cache\r\n"),
    }
}

pub(crate) use sessiond_decimal::{put_decimal, put_signed};
