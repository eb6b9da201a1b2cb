//! The Redis serialization protocol (RESP2 and RESP3) as a pure codec.
//!
//! Bytes go in and [`Request`]s (argument vectors) come out; a [`Reply`] goes in and reply
//! bytes come out. Nothing here does I/O, reads a clock, logs or keeps global state: the
//! server's connection loop owns the socket and the protocol version the client negotiated
//! with `HELLO`, and the server's glue layer decides what each command means.
//!
//! Unlike memcached, RESP has no command grammar at the framing level: every request is a
//! list of binary-safe arguments, either a multibulk array (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`,
//! what every real client sends) or an inline line (`GET k`, what people type into telnet).
//! So the codec stops at [`Request::args`]; parsing `SET k v EX 10 NX` belongs to the
//! glue, next to the command's semantics.
//!
//! - Server side: [`Decoder`] (bytes → [`Request`]) and [`encode`] ([`Reply`] → bytes, in
//!   the connection's [`Protocol`], downgrading RESP3-only types for RESP2 clients the way
//!   Redis does).
//! - Client side, for the tests and the load generator: [`encode_request`] and
//!   [`decode_reply`], which reads every RESP2 and RESP3 reply type.
//!
//! Limits ([`Limits`]) are enforced inside the decoders: bulk length, argument count, inline
//! and length-line size, and reply nesting depth; a connection that has not authenticated gets
//! Redis's much smaller pre-authentication limits ([`Decoder::set_authenticated`]). Every request-side [`ProtocolError`] is
//! fatal, as in Redis: the server sends [`ProtocolError::reply`] and closes the connection.
//!
//! What this crate deliberately does not do: know any command, track per-connection state
//! beyond framing (selected database, protocol version, authentication), or talk to the store.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod decode;
mod error;
mod inline;
mod reply;
#[cfg(test)]
mod tests;

use bytes::{BufMut, BytesMut};

pub use client::{decode_reply, encode_request};
pub use decode::{Decoder, Request};
pub use error::ProtocolError;
pub use reply::{Reply, double_text, encode};

/// Limits enforced by the decoders. Redis's defaults, except where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest argument of a request (bulk or inline) and longest bulk string of a reply.
    /// Redis's `proto-max-bulk-len` defaults
    /// to 512 MiB; a session store has no use for values that large, and 64 MiB keeps one
    /// connection from pinning half a gigabyte before the command is even looked at.
    pub max_bulk_len: usize,
    /// Most arguments in one request, and most elements in one reply aggregate (pairs, for
    /// a map). Redis 6 used 1024 × 1024; Redis 7 raised it to `INT_MAX`, which
    /// no session client comes near.
    pub max_args: usize,
    /// Longest inline request line, including its line ending. Also bounds the `*<n>` and
    /// `$<n>` length lines of a multibulk request and every line of a reply, which are
    /// searched for their end only this far (Redis's `PROTO_INLINE_MAX_SIZE`, 64 KiB).
    pub max_inline_len: usize,
    /// Deepest nesting of aggregates (arrays, maps, sets, pushes) in a reply. Requests are
    /// flat, so only [`decode_reply`] uses it; it bounds the decoder's recursion.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 64 * 1024 * 1024,
            max_args: 1024 * 1024,
            max_inline_len: 64 * 1024,
            max_depth: 128,
        }
    }
}

/// Most arguments of a multibulk request from a connection that has not authenticated
/// (Redis's limit since CVE-2021-32675); see [`Decoder::set_authenticated`].
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// Longest argument of a multibulk request from a connection that has not authenticated
/// (Redis's limit since CVE-2021-32675); see [`Decoder::set_authenticated`].
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

/// The reply protocol a connection speaks. Every connection starts in RESP2; `HELLO 3`
/// switches it to RESP3 and `HELLO 2` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Protocol {
    /// RESP2: the types of Redis before 6, which every client understands.
    #[default]
    Resp2,
    /// RESP3: adds null, map, set, double, boolean, verbatim string, big number and push.
    Resp3,
}

// Redis's integer rules and decimal writing are shared with the store and the other codec.
pub(crate) use sessiond_decimal::{parse_i64 as parse_int, put_decimal, put_signed};

/// A type byte followed by a length and `\r\n`: `*3\r\n`, `$5\r\n`, `%2\r\n`, ….
pub(crate) fn put_header(out: &mut BytesMut, kind: u8, len: usize) {
    out.put_u8(kind);
    put_decimal(out, len as u64);
    out.put_slice(b"\r\n");
}
