//! memcached's binary protocol: 24-byte headers (request magic 0x80, response magic 0x81),
//! then extras, key and value, all lengths in the header.
//!
//! The server side is [`BinaryDecoder`] (bytes → [`BinaryRequest`]), [`encode_reply`]
//! (outcome → response packets) and [`encode_error`]. The client side, for the load generator
//! and the tests, is [`encode_request`] and [`decode_response`].
//!
//! Framing never depends on the opcode: every packet says how long it is, so a request that
//! breaks a rule (wrong extras length for its opcode, key too long, value too large) is
//! answered with an error status and its body skipped, and the connection carries on. Only a
//! header that contradicts itself (bad magic, key and extras longer than the body) is fatal.
//! Unlike memcached, which closes the connection after an "invalid arguments" reply, we keep
//! it open: the stream is provably still in sync.
//!
//! Keys must pass [`valid_key`](crate::valid_key) in binary too (except STAT's group name), so
//! that every stored key is also reachable and printable over the text protocol.
//!
//! SASL's three opcodes are framed like any other (mechanism in the key, client data in the
//! value, both bounded: [`MAX_SASL_MECH_LEN`], [`MAX_SASL_DATA_LEN`]) and decoded into
//! [`Command::SaslListMechs`] and [`Command::SaslAuth`]; whether a login succeeds, and what
//! an unauthenticated connection may do, is the server's business.
//!
//! What this module deliberately does not do: the vbucket and datatype fields (ignored), or
//! execute anything.

mod client;
mod decode;
mod reply;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::Command;

pub use client::{ResponseError, decode_response, encode_request};
pub use decode::BinaryDecoder;
pub use reply::{encode_reply, encode_reply_chunks};

/// Longest SASL mechanism name (memcached's `MAX_SASL_MECH_LEN`); a longer one is invalid.
pub const MAX_SASL_MECH_LEN: usize = 32;
/// Most SASL client data in one SASL_AUTH or SASL_STEP. PLAIN needs a user name and a
/// password; 4 KiB is far beyond any real one, and keeps what an unauthenticated client can
/// make the server buffer small. A longer payload is answered "Too large." and skipped
/// unread.
pub const MAX_SASL_DATA_LEN: usize = 4096;

/// The first byte of every request packet.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The first byte of every response packet.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// The length of a packet header.
pub const HEADER_LEN: usize = 24;

/// Opcodes this crate knows. Any other byte decodes as [`Command::Unknown`].
pub mod opcode {
    /// Get a value.
    pub const GET: u8 = 0x00;
    /// Store unconditionally.
    pub const SET: u8 = 0x01;
    /// Store if absent.
    pub const ADD: u8 = 0x02;
    /// Store if present.
    pub const REPLACE: u8 = 0x03;
    /// Delete.
    pub const DELETE: u8 = 0x04;
    /// Increment a counter.
    pub const INCREMENT: u8 = 0x05;
    /// Decrement a counter.
    pub const DECREMENT: u8 = 0x06;
    /// Close the connection after replying.
    pub const QUIT: u8 = 0x07;
    /// Invalidate every item.
    pub const FLUSH: u8 = 0x08;
    /// Quiet GET: no reply on a miss.
    pub const GETQ: u8 = 0x09;
    /// No operation; a client's marker that ends a run of quiet requests.
    pub const NOOP: u8 = 0x0a;
    /// The server's version.
    pub const VERSION: u8 = 0x0b;
    /// GET that also returns the key (and echoes it on a miss).
    pub const GETK: u8 = 0x0c;
    /// Quiet GETK.
    pub const GETKQ: u8 = 0x0d;
    /// Append to a value.
    pub const APPEND: u8 = 0x0e;
    /// Prepend to a value.
    pub const PREPEND: u8 = 0x0f;
    /// Statistics.
    pub const STAT: u8 = 0x10;
    /// Quiet SET: no reply on success.
    pub const SETQ: u8 = 0x11;
    /// Quiet ADD.
    pub const ADDQ: u8 = 0x12;
    /// Quiet REPLACE.
    pub const REPLACEQ: u8 = 0x13;
    /// Quiet DELETE.
    pub const DELETEQ: u8 = 0x14;
    /// Quiet INCREMENT.
    pub const INCREMENTQ: u8 = 0x15;
    /// Quiet DECREMENT.
    pub const DECREMENTQ: u8 = 0x16;
    /// Close the connection without replying.
    pub const QUITQ: u8 = 0x17;
    /// Quiet FLUSH.
    pub const FLUSHQ: u8 = 0x18;
    /// Quiet APPEND.
    pub const APPENDQ: u8 = 0x19;
    /// Quiet PREPEND.
    pub const PREPENDQ: u8 = 0x1a;
    /// Set the log level (accepted and ignored).
    pub const VERBOSITY: u8 = 0x1b;
    /// Change an item's exptime.
    pub const TOUCH: u8 = 0x1c;
    /// Get and touch.
    pub const GAT: u8 = 0x1d;
    /// Quiet GAT.
    pub const GATQ: u8 = 0x1e;
    /// SASL: list mechanisms.
    pub const SASL_LIST_MECHS: u8 = 0x20;
    /// SASL: authenticate.
    pub const SASL_AUTH: u8 = 0x21;
    /// SASL: continue authenticating.
    pub const SASL_STEP: u8 = 0x22;
    /// GAT that also returns the key.
    pub const GATK: u8 = 0x23;
    /// Quiet GATK.
    pub const GATKQ: u8 = 0x24;
}

/// Response status codes.
pub mod status {
    /// Success.
    pub const OK: u16 = 0x0000;
    /// The key holds no item.
    pub const NOT_FOUND: u16 = 0x0001;
    /// The key exists (ADD) or its CAS differs.
    pub const EXISTS: u16 = 0x0002;
    /// The value is larger than the item size limit.
    pub const TOO_LARGE: u16 = 0x0003;
    /// The request's extras, key or body do not fit its opcode.
    pub const INVALID_ARGUMENTS: u16 = 0x0004;
    /// APPEND/PREPEND to a missing item.
    pub const NOT_STORED: u16 = 0x0005;
    /// INCREMENT/DECREMENT of a value that is not a decimal number.
    pub const NON_NUMERIC: u16 = 0x0006;
    /// Authentication failed, is required first, or the user may not run the command.
    pub const AUTH_ERROR: u16 = 0x0020;
    /// The opcode is not supported.
    pub const UNKNOWN_COMMAND: u16 = 0x0081;
    /// The write did not fit in memory.
    pub const OUT_OF_MEMORY: u16 = 0x0082;
    /// The server failed internally (for example, its journal).
    pub const INTERNAL_ERROR: u16 = 0x0084;
}

/// One decoded binary request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryRequest {
    /// The opcode as sent; the reply echoes it.
    pub opcode: u8,
    /// The client's opaque value; the reply echoes it.
    pub opaque: u32,
    /// What the client asked for.
    pub command: Command,
    /// A quiet opcode: no reply on success (on a miss, for the get family).
    pub quiet: bool,
    /// GETK/GETKQ/GATK/GATKQ: a hit carries the key, and GETK/GATK echo it on a miss.
    pub return_key: bool,
}

/// A request the decoder rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryError {
    /// The header contradicts itself, so packet boundaries are lost: close the connection
    /// ([`encode_error`] writes nothing for it). Do not call the decoder again.
    Fatal(&'static str),
    /// Reply with this status (and its standard message); the body has been consumed or is
    /// being skipped, and decoding can continue.
    Status {
        /// The request's opcode, to echo.
        opcode: u8,
        /// The request's opaque, to echo.
        opaque: u32,
        /// One of [`status`]'s codes.
        status: u16,
    },
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::Fatal(reason) => write!(f, "fatal binary protocol error: {reason}"),
            BinaryError::Status { opcode, status, .. } => {
                write!(
                    f,
                    "binary opcode {opcode:#04x} rejected: {}",
                    status_message(*status)
                )
            }
        }
    }
}

impl std::error::Error for BinaryError {}

/// Appends the error response for `err` (nothing for [`BinaryError::Fatal`]: there is no
/// trustworthy opcode or opaque to echo, and memcached simply closes too).
pub fn encode_error(err: &BinaryError, out: &mut BytesMut) {
    if let BinaryError::Status {
        opcode,
        opaque,
        status,
    } = *err
    {
        let message = status_message(status).as_bytes();
        let packet = Packet {
            status,
            ..Packet::response(opcode, opaque)
        };
        packet.write(out, &[], &[], message);
    }
}

/// The body memcached sends with an error status.
pub(crate) fn status_message(status: u16) -> &'static str {
    match status {
        status::OK => "",
        status::NOT_FOUND => "Not found",
        status::EXISTS => "Data exists for key.",
        status::TOO_LARGE => "Too large.",
        status::INVALID_ARGUMENTS => "Invalid arguments",
        status::NOT_STORED => "Not stored.",
        status::NON_NUMERIC => "Non-numeric server-side value for incr or decr",
        status::UNKNOWN_COMMAND => "Unknown command",
        status::OUT_OF_MEMORY => "Out of memory",
        status::AUTH_ERROR => "Auth failure.",
        _ => "Internal error",
    }
}

/// One decoded binary response (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryResponse {
    /// The opcode of the request it answers.
    pub opcode: u8,
    /// The status; see [`status`].
    pub status: u16,
    /// The request's opaque.
    pub opaque: u32,
    /// The item's CAS, or 0.
    pub cas: u64,
    /// Extras (GET hits: 4 bytes of flags).
    pub extras: Bytes,
    /// Key (GETK hits and misses, STAT names).
    pub key: Bytes,
    /// Value, or an error message for an error status.
    pub value: Bytes,
}

/// The header fields both directions share; the lengths are filled in by [`Packet::write`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet {
    pub(crate) magic: u8,
    pub(crate) opcode: u8,
    /// The status in a response, the vbucket (always 0) in a request.
    pub(crate) status: u16,
    pub(crate) opaque: u32,
    pub(crate) cas: u64,
}

impl Packet {
    /// A successful response header echoing `opcode` and `opaque`, with no CAS.
    pub(crate) fn response(opcode: u8, opaque: u32) -> Packet {
        Packet {
            magic: RESPONSE_MAGIC,
            opcode,
            status: status::OK,
            opaque,
            cas: 0,
        }
    }

    /// Writes the header and body. The decoder's limits and the server's own stat names keep
    /// every part far below its length field; the parts are cut to fit anyway, so that a
    /// header can never disagree with the bytes that follow it.
    pub(crate) fn write(&self, out: &mut BytesMut, extras: &[u8], key: &[u8], value: &[u8]) {
        out.reserve(HEADER_LEN + extras.len() + key.len() + value.len());
        let value_len = self.write_head(out, extras, key, value.len());
        out.put_slice(&value[..value_len]);
    }

    /// Writes the header, extras and key of a packet whose value of `value_len` bytes the
    /// caller appends; returns how many of those bytes fit the body (all, unless the lengths
    /// overflow the header's fields, which clips them as [`Packet::write`] does).
    pub(crate) fn write_head(
        &self,
        out: &mut BytesMut,
        extras: &[u8],
        key: &[u8],
        value_len: usize,
    ) -> usize {
        let extras = &extras[..extras.len().min(u8::MAX as usize)];
        let key = &key[..key.len().min(u16::MAX as usize)];
        let room = u32::MAX as usize - extras.len() - key.len();
        let value_len = value_len.min(room);
        let body = extras.len() + key.len() + value_len;
        out.reserve(HEADER_LEN + extras.len() + key.len());
        out.put_u8(self.magic);
        out.put_u8(self.opcode);
        out.put_u16(key.len() as u16);
        out.put_u8(extras.len() as u8);
        out.put_u8(0);
        out.put_u16(self.status);
        out.put_u32(body as u32);
        out.put_u32(self.opaque);
        out.put_u64(self.cas);
        out.put_slice(extras);
        out.put_slice(key);
        value_len
    }
}
