//! Splitting an inline request line into arguments, with Redis's quoting rules.
//!
//! Redis splits inline lines with `sdssplitargs`, so `SET k "a b"` and `SET k 'it\'s'` work
//! from telnet. The rules reproduced here:
//!
//! - Arguments are separated by runs of whitespace (space, tab, `\r`, `\n`, `\v`, `\f`).
//! - `"…"` understands `\xHH` and the escapes `\n \r \t \b \a`; any other `\c` is `c`.
//! - `'…'` understands only `\'`.
//! - A quote may follow unquoted text (`a"b c"` is `ab c`), but a closing quote must be
//!   followed by whitespace or the end of the line; otherwise, like an unterminated quote,
//!   the line is rejected as unbalanced.
//!
//! One deliberate difference: a NUL byte is an ordinary byte here. Redis searches for the
//! line end with `strchr`, which stops at a NUL, so a NUL in an inline line leaves Redis
//! waiting for more input until the line-length limit closes the connection. No client can
//! depend on that.
//!
//! Unquoted arguments are slices of the line, so the common case does not copy. This module
//! does not find lines or enforce their length; the decoder does that before calling here.

use bytes::Bytes;

use crate::ProtocolError;

/// The arguments of `line` (without its line ending). An empty or all-blank line has none.
pub(crate) fn split(line: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    let s = &line[..];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while s.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if i == s.len() {
            return Ok(args);
        }
        let start = i;
        while s.get(i).is_some_and(|&b| !ends_bare(b)) {
            i += 1;
        }
        match s.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let mut arg = s[start..i].to_vec();
                i = quoted(s, i + 1, quote, &mut arg)?;
                args.push(Bytes::from(arg));
            }
            _ => args.push(line.slice(start..i)),
        }
    }
}

/// Appends the quoted text starting at `i` (just after the opening `quote`) to `arg`, and
/// returns the index after the closing quote.
fn quoted(s: &[u8], mut i: usize, quote: u8, arg: &mut Vec<u8>) -> Result<usize, ProtocolError> {
    loop {
        let Some(&b) = s.get(i) else {
            return Err(ProtocolError::UnbalancedQuotes);
        };
        if b == quote {
            return match s.get(i + 1) {
                Some(&next) if !is_space(next) => Err(ProtocolError::UnbalancedQuotes),
                _ => Ok(i + 1),
            };
        }
        if b != b'\\' {
            arg.push(b);
            i += 1;
            continue;
        }
        match (quote, s.get(i + 1..)) {
            (b'"', Some([b'x', hi, lo, ..]))
                if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() =>
            {
                arg.push(hex(*hi) << 4 | hex(*lo));
                i += 4;
            }
            (b'"', Some([c, ..])) => {
                arg.push(match c {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => *other,
                });
                i += 2;
            }
            (b'\'', Some([b'\'', ..])) => {
                arg.push(b'\'');
                i += 2;
            }
            // A lone backslash: literal. (At the end of the line it is followed by nothing,
            // so the quote is unterminated and the next turn reports it.)
            _ => {
                arg.push(b'\\');
                i += 1;
            }
        }
    }
}

/// C's `isspace`, which separates arguments and may follow a closing quote.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The bytes that end an unquoted stretch. Narrower than [`is_space`]: `sdssplitargs` lets
/// `\v` and `\f` into an unquoted argument, though it skips them between arguments.
fn ends_bare(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'')
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        // Only called on hex digits.
        _ => 0,
    }
}
