//! The request decoder: frames multibulk and inline requests into [`Request`]s.
//!
//! As in Redis, the first byte of each request picks the format: `*` starts a multibulk
//! array of bulk strings, anything else an inline line. Empty requests (`*0`, `*-1`, a blank
//! line) are consumed silently and decoding moves on, which is what Redis does with them.
//!
//! A multibulk request is framed in place: the decoder records where each argument lies in
//! the caller's buffer and splits the whole request off only once it is complete, so a large
//! request still arriving costs O(1) per call (no rescanning), all its bytes stay in the
//! buffer the caller is accounting for, and the arguments are zero-copy slices of one frame.
//! Line searches resume where the previous call stopped for the same reason.
//!
//! What this module deliberately does not do: look at the arguments (the command name
//! included), enforce a total request size (the caller bounds its buffer), or recover from
//! an error: every [`ProtocolError`] ends the connection.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use crate::{
    Limits, ProtocolError, UNAUTHENTICATED_MAX_ARGS, UNAUTHENTICATED_MAX_BULK_LEN, inline,
    parse_int,
};

/// One request: the command name and its arguments, binary-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The arguments as sent, the command name first. Never empty: the decoder skips
    /// requests without arguments, as Redis does.
    pub args: Vec<Bytes>,
}

/// Decodes requests from the front of a connection's input buffer.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    /// Bytes from the start of the line being looked for (a `*`/`$` line or an inline
    /// request) already known not to contain its end.
    scanned: usize,
    /// A multibulk request whose `*<n>` line has been read.
    multibulk: Option<Multibulk>,
    /// Where each framed argument of the current multibulk request lies in the buffer. Kept
    /// across requests so that framing does not allocate once it has warmed up.
    spans: Vec<Range<usize>>,
    /// `false` while the connection has not authenticated: multibulk requests are then held
    /// to [`UNAUTHENTICATED_MAX_ARGS`] and [`UNAUTHENTICATED_MAX_BULK_LEN`] as well.
    authenticated: bool,
}

/// Progress through a multibulk request, as offsets into the unconsumed buffer.
#[derive(Debug, Clone)]
struct Multibulk {
    /// Arguments not yet framed.
    remaining: usize,
    /// Offset of the next `$<n>` line, or of the next argument's data once its length is
    /// known.
    pos: usize,
    /// The length of the argument at `pos`, once its `$<n>` line has been read.
    bulk_len: Option<usize>,
}

/// `spans` capacity worth keeping between requests; a rare huge request should not pin
/// its bookkeeping for the connection's lifetime.
const KEEP_SPANS: usize = 1024;

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            scanned: 0,
            multibulk: None,
            spans: Vec::new(),
            authenticated: true,
        }
    }

    /// Says whether the connection has authenticated; a new decoder assumes it has.
    ///
    /// Until it has, a multibulk request may have at most [`UNAUTHENTICATED_MAX_ARGS`]
    /// arguments of at most [`UNAUTHENTICATED_MAX_BULK_LEN`] bytes each (on top of the
    /// [`Limits`]), as in Redis since CVE-2021-32675: a client that does not know the
    /// password cannot make the server buffer more than a few hundred KiB for it. Longer
    /// lengths fail with Redis's texts (`Protocol error: unauthenticated multibulk length`,
    /// `… bulk length`). Inline requests are already bounded by
    /// [`Limits::max_inline_len`]. Call this between requests (after the one that
    /// authenticated); the limits apply from the next length line on.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    /// Decodes one request from the front of `buf`, consuming exactly its bytes (plus any
    /// empty requests before it).
    ///
    /// Returns `Ok(None)` when `buf` holds no complete request yet; call again after
    /// appending more input. The decoder remembers its progress, so between calls the caller
    /// may append to `buf` but must not remove or alter bytes it has not consumed. The
    /// arguments are split off `buf` without copying, except inline arguments with quotes.
    ///
    /// An error is fatal (see [`ProtocolError`]); do not call again afterwards.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        loop {
            if self.multibulk.is_some() {
                return self.bulks(buf);
            }
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {
                    let errors = (
                        ProtocolError::TooBigMultibulkCount,
                        ProtocolError::InvalidMultibulkLength,
                    );
                    let Some(cr) = self.find_cr(buf, 0, errors)? else {
                        return Ok(None);
                    };
                    let count = parse_int(&buf[1..cr])
                        .filter(|&n| n <= self.limits.max_args as i64)
                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                    if !self.authenticated && count > UNAUTHENTICATED_MAX_ARGS as i64 {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength);
                    }
                    match usize::try_from(count) {
                        Ok(remaining) if remaining > 0 => {
                            self.multibulk = Some(Multibulk {
                                remaining,
                                pos: cr + 2,
                                bulk_len: None,
                            });
                            // Like Redis, trust the count only so far before any argument
                            // has arrived.
                            self.spans.reserve(remaining.min(KEEP_SPANS));
                        }
                        // `*0` and `*-1`: nothing to run.
                        _ => buf.advance(cr + 2),
                    }
                }
                Some(_) => {
                    if let Some(args) = self.inline(buf)? {
                        if !args.is_empty() {
                            return Ok(Some(Request { args }));
                        }
                        // A blank line: nothing to run.
                    } else {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Frames the arguments of the current multibulk request.
    fn bulks(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        let max_bulk_len = self.limits.max_bulk_len;
        loop {
            let Some(mut mb) = self.multibulk.take() else {
                return Ok(None);
            };
            if mb.remaining == 0 {
                let frame = buf.split_to(mb.pos.min(buf.len())).freeze();
                let args = self.spans.drain(..).map(|span| frame.slice(span)).collect();
                if self.spans.capacity() > KEEP_SPANS {
                    self.spans = Vec::new();
                }
                return Ok(Some(Request { args }));
            }
            let len = match mb.bulk_len {
                Some(len) => len,
                None => {
                    let errors = (
                        ProtocolError::TooBigBulkCount,
                        ProtocolError::InvalidBulkLength,
                    );
                    let Some(cr) = self.find_cr(buf, mb.pos, errors)? else {
                        self.multibulk = Some(mb);
                        return Ok(None);
                    };
                    // Checked once the whole line is in, as Redis does, so the error does not
                    // depend on how the bytes were split into reads.
                    if buf[mb.pos] != b'$' {
                        return Err(ProtocolError::ExpectedBulk(buf[mb.pos]));
                    }
                    let len = parse_int(&buf[mb.pos + 1..cr])
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n <= max_bulk_len)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    if !self.authenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    mb.pos = cr + 2;
                    len
                }
            };
            let end = mb.pos.saturating_add(len);
            let Some(terminator) = buf.get(end..end.saturating_add(2)) else {
                self.multibulk = Some(Multibulk {
                    bulk_len: Some(len),
                    ..mb
                });
                return Ok(None);
            };
            if terminator != b"\r\n" {
                return Err(ProtocolError::BulkNotTerminated);
            }
            self.spans.push(mb.pos..end);
            self.multibulk = Some(Multibulk {
                remaining: mb.remaining - 1,
                pos: end + 2,
                bulk_len: None,
            });
        }
    }

    /// Finds the `\r` of the `\r\n`-terminated length line starting at `start`, searching at
    /// most [`Limits::max_inline_len`] bytes; `None` until the whole line has arrived.
    /// `errors` are what to report for a line that does not end in time, and for one that
    /// ends in a `\r` without `\n`.
    fn find_cr(
        &mut self,
        buf: &[u8],
        start: usize,
        (too_big, malformed): (ProtocolError, ProtocolError),
    ) -> Result<Option<usize>, ProtocolError> {
        let rest = buf.get(start..).unwrap_or_default();
        let window = rest.len().min(self.limits.max_inline_len);
        let from = self.scanned.min(window);
        match rest[from..window].iter().position(|&b| b == b'\r') {
            Some(i) => {
                let cr = from + i;
                match rest.get(cr + 1) {
                    None => {
                        // Resume at the `\r` itself, to look at what follows it next time.
                        self.scanned = cr;
                        Ok(None)
                    }
                    Some(b'\n') => {
                        self.scanned = 0;
                        Ok(Some(start + cr))
                    }
                    // Redis skips the byte after `\r` unchecked; a lone `\r` means the line is
                    // not the length it claims to be.
                    Some(_) => Err(malformed),
                }
            }
            None if rest.len() > self.limits.max_inline_len => Err(too_big),
            None => {
                self.scanned = window;
                Ok(None)
            }
        }
    }

    /// Splits the next inline line off `buf` and into arguments; `None` until it has arrived.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let max = self.limits.max_inline_len;
        let window = buf.len().min(max);
        let from = self.scanned.min(window);
        let Some(i) = buf[from..window].iter().position(|&b| b == b'\n') else {
            if buf.len() > max {
                return Err(ProtocolError::TooBigInline);
            }
            self.scanned = window;
            return Ok(None);
        };
        self.scanned = 0;
        let newline = from + i;
        let mut line = buf.split_to(newline + 1).freeze();
        let content = if newline > 0 && line[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        line.truncate(content);
        let args = inline::split(&line)?;
        // Redis has no such check, because its inline limit is far below its bulk limit.
        // Ours are configurable, and the server may rely on every argument being within
        // them however it arrived.
        if args.len() > self.limits.max_args
            || args.iter().any(|arg| arg.len() > self.limits.max_bulk_len)
        {
            return Err(ProtocolError::TooBigInline);
        }
        Ok(Some(args))
    }
}
