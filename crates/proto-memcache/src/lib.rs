//! The memcached protocol, text and binary, as a pure codec.
//!
//! Bytes go in and typed requests ([`text::TextRequest`], [`binary::BinaryRequest`]) come
//! out; a protocol-neutral [`Outcome`] goes in and reply bytes come out. Nothing here does
//! I/O, reads a clock, logs or keeps global state: the server's connection loop owns the
//! socket, and the server's glue layer (`exec`) turns a [`Command`] into store operations and
//! an [`Outcome`].
//!
//! Both wire formats decode into the same [`Command`] enum, so the semantics of `set`, `add`,
//! `cas`, `incr` and friends live in exactly one place (the glue). What differs per format is
//! only framing and reply shape, which each format's module owns:
//!
//! - [`text`]: the line-based ASCII protocol (`get`, `set k 0 0 5\r\n…`, `noreply`, …).
//! - [`binary`]: the 24-byte-header binary protocol (magic 0x80), including quiet opcodes,
//!   opaque echo and GETK's key echo.
//!
//! [`WireFormat`] gives both formats one shape ([`Text`], [`Binary`]), so a server or a fuzz
//! target handles either through one generic path.
//!
//! Each format's `encode_reply` appends a reply to a `BytesMut`; `encode_reply_chunks` emits
//! the same bytes into a [`ReplyChunks`], which shares large values instead of copying them,
//! for a caller that writes with vectored I/O ([`chunks`]).
//!
//! Exptime values are carried exactly as the client sent them (`i64` seconds, memcached's
//! 30-day rule not yet applied); [`Exptime`] converts them to an absolute deadline given
//! `now`, which the caller passes in.
//!
//! Limits ([`Limits`]) are enforced inside the decoders: key length and content, value size,
//! line length and keys per request. A request that breaks a limit becomes a client error
//! that keeps the stream in sync (the data block of a rejected storage command is swallowed),
//! or a fatal error when the stream cannot be resynchronised.
//!
//! What this crate deliberately does not do: talk to the store, decide whether a request
//! succeeds, or know about connections.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod binary;
pub mod chunks;
mod command;
mod exptime;
pub mod format;
pub mod meta;
#[cfg(test)]
mod test_support;
pub mod text;

pub use chunks::ReplyChunks;

/// What a refused write to a revoked session says ([`Outcome::Revoked`]); RESP says the same.
pub const REVOKED: &str = "this session was revoked and stays revoked until it would have expired";
pub use command::{ArithMode, CAS_NEVER, Command, Hit, Outcome, StatsGroup, StoreMode};
pub use exptime::Exptime;
pub use format::{Binary, Text, WireFormat};

/// Limits enforced by the decoders. memcached's defaults, except where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key in bytes (memcached: 250).
    pub max_key_len: usize,
    /// Largest value in bytes (`--max-item-size`, memcached: 1 MiB).
    pub max_value_len: usize,
    /// Longest text command line, including the `\r\n`, except a `get`/`gets`/`gat`/`gats`
    /// line, which is read a window of this many bytes at a time (memcached serves multi-gets
    /// of any length).
    pub max_line_len: usize,
    /// Most keys in one batch of a text multi-get; a longer get is served in several
    /// ([`text::TextRequest::more`]).
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: 250,
            max_value_len: 1024 * 1024,
            max_line_len: 64 * 1024,
            max_keys: 1024,
        }
    }
}

/// Whether `key` is a legal memcached key under `limits`: 1 to `max_key_len` bytes, and no
/// control characters or spaces (the text protocol could not carry them, and memcached
/// applies the same rule to binary keys in its text-compatible paths).
pub fn valid_key(key: &[u8], limits: &Limits) -> bool {
    !key.is_empty() && key.len() <= limits.max_key_len && key.iter().all(|&b| b > b' ' && b != 0x7f)
}
