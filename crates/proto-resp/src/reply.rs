//! [`Reply`], the value a command answers with, and [`encode`], which writes it in either
//! protocol version.
//!
//! Command code builds one `Reply` regardless of the connection's protocol, using the RESP3
//! type that says what it means (a map for `HGETALL`, a null for a `GET` miss), and
//! [`encode`] downgrades for RESP2 connections exactly as Redis does: maps become flat
//! arrays, sets and pushes arrays, doubles, verbatim strings and big numbers bulk strings,
//! booleans `:1`/`:0`, and the two nulls `$-1` and `*-1`. That keeps the per-protocol
//! differences in one function instead of every command.
//!
//! What this module deliberately does not do: RESP3 attributes and streamed strings or
//! aggregates (Redis never sends them to ordinary commands), or blob errors (`!`; Redis
//! sends every error as a `-` line).

use std::fmt::{self, Write as _};

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Protocol, put_header, put_signed};

/// One reply value, in RESP3 terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`: a status line. `\r` and `\n` would end it early, so [`encode`] writes them as
    /// spaces.
    Simple(Bytes),
    /// `-ERR …`: the whole text after the `-`, error code included (`ERR unknown command`,
    /// `NOSCRIPT No matching script. Please use EVAL.`). `\r` and `\n` are written as spaces,
    /// as Redis does.
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello`: a binary-safe string.
    Bulk(Bytes),
    /// A missing value, such as a `GET` miss: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing aggregate, such as a timed-out `BLPOP`: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `*<n>`.
    Array(Vec<Reply>),
    /// `%<n>` in RESP3; a flat array of `2n` elements, keys and values alternating, in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// `~<n>` in RESP3; an array in RESP2.
    Set(Vec<Reply>),
    /// `,1.5` in RESP3; a bulk string with the same text in RESP2.
    Double(f64),
    /// `#t`/`#f` in RESP3; `:1`/`:0` in RESP2.
    Boolean(bool),
    /// `=<n>\r\ntxt:…` in RESP3, where `format` is the three-letter type (`txt`, `mkd`);
    /// a bulk string of `text` alone in RESP2.
    Verbatim {
        /// The format tag, three bytes.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
    /// `(<digits>` in RESP3; a bulk string in RESP2. The digits (with an optional leading
    /// `-`) are the caller's to get right; `\r` and `\n` are written as spaces.
    BigNumber(Bytes),
    /// `><n>`: out-of-band data such as a pub/sub message in RESP3; an array in RESP2.
    Push(Vec<Reply>),
}

impl Reply {
    /// `+OK`, the most common reply of all.
    pub fn ok() -> Reply {
        Reply::Simple(Bytes::from_static(b"OK"))
    }

    /// How many bytes [`encode`] writes for this reply in `protocol`, without encoding it, so
    /// that a server can refuse a reply larger than its output limit instead of building it.
    /// One pass over the reply's elements; saturates at `usize::MAX`.
    pub fn encoded_len(&self, protocol: Protocol) -> usize {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            // Line breaks become spaces, so the text keeps its length.
            Reply::Simple(text) | Reply::Error(text) => line_len(text.len()),
            Reply::Integer(n) => line_len(signed_digits(*n)),
            Reply::Bulk(data) => Reply::bulk_encoded_len(data.len()),
            // `_\r\n`, `$-1\r\n`, `*-1\r\n`.
            Reply::Null | Reply::NullArray if resp3 => 3,
            Reply::Null | Reply::NullArray => 5,
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
                items.iter().fold(header_len(items.len()), |sum, item| {
                    sum.saturating_add(item.encoded_len(protocol))
                })
            }
            Reply::Map(pairs) => {
                let header = if resp3 {
                    header_len(pairs.len())
                } else {
                    header_len(pairs.len().saturating_mul(2))
                };
                pairs.iter().fold(header, |sum, (key, value)| {
                    sum.saturating_add(key.encoded_len(protocol))
                        .saturating_add(value.encoded_len(protocol))
                })
            }
            Reply::Double(d) => {
                let text = DoubleText::new(*d).as_bytes().len();
                if resp3 {
                    line_len(text)
                } else {
                    Reply::bulk_encoded_len(text)
                }
            }
            // `#t\r\n` or `:1\r\n`.
            Reply::Boolean(_) => 4,
            Reply::Verbatim { text, .. } if resp3 => {
                Reply::bulk_encoded_len(text.len().saturating_add(4))
            }
            Reply::Verbatim { text, .. } => Reply::bulk_encoded_len(text.len()),
            Reply::BigNumber(digits) if resp3 => line_len(digits.len()),
            Reply::BigNumber(digits) => Reply::bulk_encoded_len(digits.len()),
        }
    }

    /// The encoded size of a bulk string of `len` bytes (`$<len>\r\n…\r\n`), the same in
    /// both protocols: what a caller counts to bound a reply it is still collecting.
    pub fn bulk_encoded_len(len: usize) -> usize {
        header_len(len).saturating_add(len).saturating_add(2)
    }
}

/// A type byte, `len` bytes of text and `\r\n`.
fn line_len(len: usize) -> usize {
    len.saturating_add(3)
}

/// A type byte, the decimal `len` and `\r\n`.
fn header_len(len: usize) -> usize {
    3 + decimal_digits(len as u64)
}

fn decimal_digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

fn signed_digits(n: i64) -> usize {
    usize::from(n < 0) + decimal_digits(n.unsigned_abs())
}

/// Appends `reply` as `protocol` encodes it.
pub fn encode(reply: &Reply, protocol: Protocol, out: &mut BytesMut) {
    let resp3 = protocol == Protocol::Resp3;
    match reply {
        Reply::Simple(text) => put_line(out, b'+', text),
        Reply::Error(text) => put_line(out, b'-', text),
        Reply::Integer(n) => {
            out.put_u8(b':');
            put_signed(out, *n);
            out.put_slice(b"\r\n");
        }
        Reply::Bulk(data) => put_bulk(out, b'$', data),
        Reply::Null if resp3 => out.put_slice(b"_\r\n"),
        Reply::Null => out.put_slice(b"$-1\r\n"),
        Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NullArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => put_aggregate(out, b'*', items, protocol),
        Reply::Set(items) => put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, protocol),
        Reply::Push(items) => put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, protocol),
        Reply::Map(pairs) => {
            if resp3 {
                put_header(out, b'%', pairs.len());
            } else {
                put_header(out, b'*', pairs.len().saturating_mul(2));
            }
            for (key, value) in pairs {
                encode(key, protocol, out);
                encode(value, protocol, out);
            }
        }
        Reply::Double(d) => {
            let text = DoubleText::new(*d);
            if resp3 {
                put_line(out, b',', text.as_bytes());
            } else {
                put_bulk(out, b'$', text.as_bytes());
            }
        }
        Reply::Boolean(b) => out.put_slice(match (resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Reply::Verbatim { format, text } if resp3 => {
            put_header(out, b'=', text.len() + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim { text, .. } => put_bulk(out, b'$', text),
        Reply::BigNumber(digits) if resp3 => put_line(out, b'(', digits),
        Reply::BigNumber(digits) => put_bulk(out, b'$', digits),
    }
}

fn put_aggregate(out: &mut BytesMut, kind: u8, items: &[Reply], protocol: Protocol) {
    put_header(out, kind, items.len());
    for item in items {
        encode(item, protocol, out);
    }
}

fn put_bulk(out: &mut BytesMut, kind: u8, data: &[u8]) {
    put_header(out, kind, data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// A type byte, `text` with line breaks turned into spaces, and `\r\n`. Redis does the same
/// to error texts; for status lines it is the only way to keep the stream in sync.
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    let start = out.len();
    out.put_slice(text);
    for b in &mut out[start..] {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    out.put_slice(b"\r\n");
}

/// A double as Redis 7.0 writes it into a string (`"%.17g"`): for replies that carry a
/// score as a bulk string in every protocol, as `ZSCAN` does.
pub fn double_text(d: f64) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(DoubleText::new(d).as_bytes())
}

/// A double formatted as Redis 7.0 formats it in replies and `ZSCAN` (`"%.17g"`), on the
/// stack.
///
/// The rules: `nan`, `inf`, `-inf`; `0` and `-0`; otherwise 17 significant digits (so
/// `0.1` is `0.10000000000000001`, as Redis 7.0 answers; 7.2 moved to the shortest
/// digits), written plainly when the decimal exponent is from -4 to 16 and in scientific
/// notation otherwise (`1e+17`, `9.9999999999999995e-08`), trailing zeros removed.
pub(crate) struct DoubleText {
    buf: [u8; 32],
    len: usize,
}

impl DoubleText {
    pub(crate) fn new(d: f64) -> DoubleText {
        let mut text = DoubleText {
            buf: [0; 32],
            len: 0,
        };
        // Every branch writes at most 25 bytes, so the writes cannot fail.
        let _ = text.format(d);
        text
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn format(&mut self, d: f64) -> fmt::Result {
        if d.is_nan() {
            return self.write_str("nan");
        }
        if d.is_infinite() {
            return self.write_str(if d < 0.0 { "-inf" } else { "inf" });
        }
        if d == 0.0 {
            return self.write_str(if d.is_sign_negative() { "-0" } else { "0" });
        }
        if d < 0.0 {
            self.write_str("-")?;
        }
        // `{:.16e}` rounds to 17 significant digits, as `%.17g` does, and gives the decimal
        // exponent that picks the notation.
        let mut sci = DoubleText {
            buf: [0; 32],
            len: 0,
        };
        write!(sci, "{:.16e}", d.abs())?;
        let sci = sci.as_bytes();
        let e_at = sci.iter().position(|&b| b == b'e').ok_or(fmt::Error)?;
        let exp: i32 = std::str::from_utf8(&sci[e_at + 1..])
            .ok()
            .and_then(|e| e.parse().ok())
            .ok_or(fmt::Error)?;
        let mut digits = [0u8; 20];
        let mut n = 0;
        for &b in sci[..e_at].iter().filter(|b| b.is_ascii_digit()) {
            *digits.get_mut(n).ok_or(fmt::Error)? = b;
            n += 1;
        }
        // Trailing zeros go, as `%g` drops them.
        while n > 1 && digits[n - 1] == b'0' {
            n -= 1;
        }
        let digits = &digits[..n];
        if (-4..17).contains(&exp) {
            if exp < 0 {
                self.write_str("0.")?;
                for _ in 0..(-exp - 1) {
                    self.write_str("0")?;
                }
                return self.put(digits);
            }
            let int_len = exp as usize + 1;
            if n <= int_len {
                self.put(digits)?;
                for _ in n..int_len {
                    self.write_str("0")?;
                }
                return Ok(());
            }
            let (int, frac) = digits.split_at(int_len);
            self.put(int)?;
            self.write_str(".")?;
            return self.put(frac);
        }
        self.put(&digits[..1])?;
        if n > 1 {
            self.write_str(".")?;
            self.put(&digits[1..])?;
        }
        write!(
            self,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    }

    fn put(&mut self, ascii: &[u8]) -> fmt::Result {
        let end = self.len + ascii.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(ascii);
        self.len = end;
        Ok(())
    }
}

impl fmt::Write for DoubleText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes())
    }
}
