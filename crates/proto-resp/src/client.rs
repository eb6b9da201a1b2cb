//! The client side, for the tests and the load generator: requests to bytes, and reply
//! bytes (RESP2 or RESP3) back to a [`Reply`].
//!
//! The reply decoder is stateless: each call looks for one complete reply at the front of
//! the buffer. It works in two passes over the same parser, first checking that the reply
//! is complete and well-formed without building anything, then splitting exactly its bytes
//! off and building the [`Reply`] with zero-copy slices. The first pass skips bulk payloads
//! by their length, so a retry after more bytes arrive costs time proportional to the
//! number of values, not of bytes.
//!
//! It reads every RESP3 type except streamed strings and aggregates (`$?`, `*?`), which
//! Redis never sends. Attributes (`|`) are read and dropped: they are metadata the server
//! adds in front of a reply, and nothing here uses them. Blob errors (`!`) become
//! [`Reply::Error`]. It does not know which request a reply answers, and it does not know
//! the protocol version, because the types say everything: `$-1` and `_` are both
//! [`Reply::Null`].

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::{Limits, ProtocolError, Reply, parse_int, put_header};

/// Appends a request as the multibulk array every real client sends:
/// `*<n>\r\n` and `$<len>\r\n<arg>\r\n` per argument.
pub fn encode_request<I>(args: I, out: &mut BytesMut)
where
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: AsRef<[u8]>,
{
    let args = args.into_iter();
    put_header(out, b'*', args.len());
    for arg in args {
        let arg = arg.as_ref();
        put_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one complete reply from the front of `buf`, consuming exactly its bytes;
/// `Ok(None)` until all of it has arrived.
///
/// Bulk lengths and aggregate sizes are bounded by [`Limits::max_bulk_len`] and
/// [`Limits::max_args`], lines by [`Limits::max_inline_len`], and nesting by
/// [`Limits::max_depth`]. An error means the stream cannot be trusted any more.
pub fn decode_reply(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Reply>, ProtocolError> {
    let mut check = Parser {
        buf,
        frame: None,
        pos: 0,
        limits,
    };
    if check.value(0)?.is_none() {
        return Ok(None);
    }
    let frame = buf.split_to(check.pos).freeze();
    let mut build = Parser {
        buf: &frame,
        frame: Some(&frame),
        pos: 0,
        limits,
    };
    // The first pass accepted these exact bytes, so this cannot be incomplete.
    match build.value(0)? {
        Some(reply) => Ok(Some(reply)),
        None => invalid("reply changed while decoding"),
    }
}

/// A cursor over reply bytes. Without `frame` it only validates and measures (aggregates
/// come back empty and strings as placeholders); with `frame`, the same bytes as a
/// [`Bytes`], it builds the reply from slices of it.
struct Parser<'a> {
    buf: &'a [u8],
    frame: Option<&'a Bytes>,
    pos: usize,
    limits: &'a Limits,
}

/// Shorthand for the error every malformed reply produces.
fn invalid<T>(reason: &'static str) -> Result<T, ProtocolError> {
    Err(ProtocolError::InvalidReply(reason))
}

impl Parser<'_> {
    /// The value at `pos`, with `depth` aggregates around it; `None` if it is incomplete.
    fn value(&mut self, depth: usize) -> Result<Option<Reply>, ProtocolError> {
        // Attributes precede the value they describe. Skipping them in a loop rather than
        // by recursion keeps a long chain of them from growing the stack.
        let (kind, line) = loop {
            let Some((kind, line)) = self.line()? else {
                return Ok(None);
            };
            if kind != b'|' {
                break (kind, line);
            }
            let pairs = self.count(line.clone())?;
            if self.items(pairs.saturating_mul(2), depth)?.is_none() {
                return Ok(None);
            }
        };
        let buf = self.buf;
        let text = &buf[line.clone()];
        let reply = match kind {
            b'+' => Reply::Simple(self.bytes(line)),
            b'-' => Reply::Error(self.bytes(line)),
            b':' => match parse_int(text) {
                Some(n) => Reply::Integer(n),
                None => return invalid("invalid integer"),
            },
            b'_' if text.is_empty() => Reply::Null,
            b'_' => return invalid("invalid null"),
            b'#' => match text {
                b"t" => Reply::Boolean(true),
                b"f" => Reply::Boolean(false),
                _ => return invalid("invalid boolean"),
            },
            b',' => match std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()) {
                Some(d) => Reply::Double(d),
                None => return invalid("invalid double"),
            },
            b'(' => {
                let digits = text.strip_prefix(b"-").unwrap_or(text);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return invalid("invalid big number");
                }
                Reply::BigNumber(self.bytes(line))
            }
            b'$' if text == b"-1" => Reply::Null,
            b'$' | b'!' | b'=' => {
                let Some(data) = self.blob(text)? else {
                    return Ok(None);
                };
                match kind {
                    b'$' => Reply::Bulk(self.bytes(data)),
                    b'!' => Reply::Error(self.bytes(data)),
                    _ => {
                        if data.len() < 4 || buf[data.start + 3] != b':' {
                            return invalid("invalid verbatim string");
                        }
                        let mut format = [0; 3];
                        format.copy_from_slice(&buf[data.start..data.start + 3]);
                        Reply::Verbatim {
                            format,
                            text: self.bytes(data.start + 4..data.end),
                        }
                    }
                }
            }
            b'*' if text == b"-1" => Reply::NullArray,
            b'*' | b'~' | b'>' => {
                let n = self.count(line)?;
                let Some(items) = self.items(n, depth)? else {
                    return Ok(None);
                };
                match kind {
                    b'*' => Reply::Array(items),
                    b'~' => Reply::Set(items),
                    _ => Reply::Push(items),
                }
            }
            b'%' => {
                let n = self.count(line)?;
                let Some(items) = self.items(n.saturating_mul(2), depth)? else {
                    return Ok(None);
                };
                let mut items = items.into_iter();
                let mut pairs = Vec::with_capacity(items.len() / 2);
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    pairs.push((key, value));
                }
                Reply::Map(pairs)
            }
            _ => return invalid("unknown reply type"),
        };
        Ok(Some(reply))
    }

    /// The type byte and content span of the `\r\n`-terminated line at `pos`, moving past
    /// it; `None` if the line has not fully arrived.
    fn line(&mut self) -> Result<Option<(u8, Range<usize>)>, ProtocolError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(self.limits.max_inline_len)];
        let Some(cr) = window.iter().position(|&b| b == b'\r') else {
            if rest.len() > self.limits.max_inline_len {
                return invalid("line too long");
            }
            return Ok(None);
        };
        match rest.get(cr + 1) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => return invalid("line not terminated by CRLF"),
        }
        let Some(&kind) = rest.first().filter(|_| cr > 0) else {
            return invalid("empty line");
        };
        let line = self.pos + 1..self.pos + cr;
        self.pos += cr + 2;
        Ok(Some((kind, line)))
    }

    /// The span of the length-prefixed payload whose length line was `text`, moving past it
    /// and its `\r\n`; `None` if it has not fully arrived.
    fn blob(&mut self, text: &[u8]) -> Result<Option<Range<usize>>, ProtocolError> {
        let Some(len) = parse_int(text)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= self.limits.max_bulk_len)
        else {
            return invalid("invalid bulk length");
        };
        let end = self.pos.saturating_add(len);
        match self.buf.get(end..end.saturating_add(2)) {
            None => Ok(None),
            Some(b"\r\n") => {
                let data = self.pos..end;
                self.pos = end + 2;
                Ok(Some(data))
            }
            Some(_) => invalid("bulk data not terminated by CRLF"),
        }
    }

    /// The element count on an aggregate's length line.
    fn count(&self, line: Range<usize>) -> Result<usize, ProtocolError> {
        match parse_int(&self.buf[line]).and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= self.limits.max_args => Ok(n),
            _ => invalid("invalid aggregate length"),
        }
    }

    /// `n` values nested one level below `depth`; `None` if they have not all arrived.
    fn items(&mut self, n: usize, depth: usize) -> Result<Option<Vec<Reply>>, ProtocolError> {
        if depth >= self.limits.max_depth {
            return invalid("reply nested too deeply");
        }
        // Only the building pass keeps the values, and it runs over a checked frame whose
        // length bounds `n`, so the allocation cannot be inflated by a lying count.
        let mut items = Vec::with_capacity(if self.frame.is_some() { n } else { 0 });
        for _ in 0..n {
            let Some(item) = self.value(depth + 1)? else {
                return Ok(None);
            };
            if self.frame.is_some() {
                items.push(item);
            }
        }
        Ok(Some(items))
    }

    /// The bytes of `span` as a slice of the frame; empty while only checking.
    fn bytes(&self, span: Range<usize>) -> Bytes {
        self.frame
            .map(|frame| frame.slice(span))
            .unwrap_or_default()
    }
}
