//! [`ProtocolError`]: input that cannot be framed as RESP.
//!
//! There is only one kind of error, because RESP has only one kind: a request stream that
//! breaks the framing (or a limit) cannot be resynchronised, so Redis answers
//! `-ERR Protocol error: …` and closes the connection, and so does sessiond. Errors about a
//! well-framed request (unknown command, wrong arguments) are not this module's business;
//! the glue answers them with an ordinary [`Reply::Error`] and the connection carries on.
//!
//! The texts of the request-side variants are Redis's, byte for byte, since clients and
//! people debugging with `redis-cli` see them.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::Reply;

/// Input that broke RESP framing or a [`Limits`](crate::Limits) bound. Always fatal: send
/// [`ProtocolError::reply`], then close the connection; do not call the decoder again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*<n>` where `n` is not an integer or exceeds
    /// [`Limits::max_args`](crate::Limits::max_args).
    InvalidMultibulkLength,
    /// `$<n>` where `n` is not an integer, is negative, or exceeds
    /// [`Limits::max_bulk_len`](crate::Limits::max_bulk_len).
    InvalidBulkLength,
    /// A multibulk element that does not start with `$`; carries the byte found instead.
    ExpectedBulk(u8),
    /// The `*<n>` line did not end within
    /// [`Limits::max_inline_len`](crate::Limits::max_inline_len) bytes.
    TooBigMultibulkCount,
    /// A `$<n>` line did not end within
    /// [`Limits::max_inline_len`](crate::Limits::max_inline_len) bytes.
    TooBigBulkCount,
    /// Bulk data not followed by `\r\n`. Redis skips those two bytes unchecked; checking
    /// them turns a client's length bug into an error instead of silent garbage.
    BulkNotTerminated,
    /// An inline request line did not end within
    /// [`Limits::max_inline_len`](crate::Limits::max_inline_len) bytes, or it has more
    /// arguments, or a longer one, than a multibulk request may.
    TooBigInline,
    /// `*<n>` with `n` above [`UNAUTHENTICATED_MAX_ARGS`](crate::UNAUTHENTICATED_MAX_ARGS)
    /// before the connection authenticated.
    UnauthenticatedMultibulkLength,
    /// `$<n>` with `n` above
    /// [`UNAUTHENTICATED_MAX_BULK_LEN`](crate::UNAUTHENTICATED_MAX_BULK_LEN) before the
    /// connection authenticated.
    UnauthenticatedBulkLength,
    /// An inline request with an unterminated quote, or a closing quote followed by
    /// something other than a space.
    UnbalancedQuotes,
    /// A malformed or over-limit reply; only [`decode_reply`](crate::decode_reply) returns
    /// this. The text says what was wrong.
    InvalidReply(&'static str),
}

impl ProtocolError {
    /// The error reply Redis sends before closing the connection:
    /// `-ERR Protocol error: …`. The offending byte of [`ProtocolError::ExpectedBulk`] is
    /// sent raw, as Redis does, except that `\r` and `\n` become spaces when encoded.
    pub fn reply(&self) -> Reply {
        let mut text = BytesMut::with_capacity(64);
        text.put_slice(b"ERR Protocol error: ");
        match self {
            ProtocolError::ExpectedBulk(got) => {
                text.put_slice(b"expected '$', got '");
                text.put_u8(*got);
                text.put_u8(b'\'');
            }
            other => text.put_slice(other.reason().as_bytes()),
        }
        Reply::Error(text.freeze())
    }

    /// The text after `Protocol error: `, for every variant except `ExpectedBulk`.
    fn reason(&self) -> &'static str {
        match self {
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolError::InvalidBulkLength => "invalid bulk length",
            ProtocolError::ExpectedBulk(_) => "expected '$'",
            ProtocolError::TooBigMultibulkCount => "too big mbulk count string",
            ProtocolError::TooBigBulkCount => "too big bulk count string",
            ProtocolError::BulkNotTerminated => "bulk data not terminated by CRLF",
            ProtocolError::TooBigInline => "too big inline request",
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request",
            ProtocolError::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            ProtocolError::UnauthenticatedBulkLength => "unauthenticated bulk length",
            ProtocolError::InvalidReply(reason) => reason,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Escaped here, unlike in `reply`: this text goes to logs.
            ProtocolError::ExpectedBulk(got) => {
                write!(
                    f,
                    "Protocol error: expected '$', got '{}'",
                    got.escape_ascii()
                )
            }
            other => write!(f, "Protocol error: {}", other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}
