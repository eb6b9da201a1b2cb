//! A minimal client-side RESP codec: commands out as arrays of bulk strings, replies in as a
//! coarse [`RespReply`].
//!
//! It exists so the load generator can drive Redis and sessiond's RESP listener with the same
//! workloads as the memcached protocols. The full codec is `sessiond-proto-resp`; this one
//! deliberately keeps nothing but what the generator needs to classify a reply (hit, miss,
//! success, error), and skips aggregate contents without building them, so the generator's
//! own cost stays small next to the server's. The one exception is [`decode_strings`], which
//! hands out the strings of a flat array or RESP3 push: a pub/sub message's channel and payload
//! (the expiry benchmark reads keys out of `expired` events). RESP3's aggregate types (`>`
//! push, `%` map, `~` set) are understood as far as skipping them, so a `HELLO 3` reply and
//! RESP3 pushes decode too.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Appends `args` as one RESP command (an array of bulk strings).
pub fn encode_command(args: &[&[u8]], out: &mut BytesMut) {
    out.put_u8(b'*');
    put_decimal(out, args.len() as u64);
    out.put_slice(b"\r\n");
    for arg in args {
        out.put_u8(b'$');
        put_decimal(out, arg.len() as u64);
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

pub use sessiond_decimal::put_decimal;

/// What a reply was, as far as the generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespReply {
    /// `+…` simple string (`+OK`, `+PONG`).
    Simple,
    /// `-…` error.
    Error,
    /// `:n` integer.
    Integer(i64),
    /// `$n` bulk string with its length.
    Bulk(usize),
    /// `$-1` or `*-1` (or RESP3 `_`): nil.
    Nil,
    /// `*n` array (or RESP3 `~n` set) with `n` elements (their contents skipped).
    Array(usize),
    /// RESP3 `>n` push (a pub/sub message) with `n` elements.
    Push(usize),
    /// RESP3 `%n` map with `n` key-value pairs.
    Map(usize),
}

/// A reply that is not RESP; the stream cannot be trusted after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespError(pub &'static str);

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed RESP reply: {}", self.0)
    }
}

impl std::error::Error for RespError {}

/// Decodes one complete reply from the front of `buf`, consuming it; `Ok(None)` until it has
/// fully arrived.
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<RespReply>, RespError> {
    match scan(buf, 0, 0)? {
        None => Ok(None),
        Some((reply, len)) => {
            buf.advance(len);
            Ok(Some(reply))
        }
    }
}

/// Decodes one complete reply like [`decode_reply`] and, when it is a flat array or push,
/// appends the contents of its string elements (bulk and simple strings) to `strings`; other
/// elements (integers, nested aggregates) are skipped. The strings share the read buffer's
/// memory (no copy).
pub fn decode_strings(
    buf: &mut BytesMut,
    strings: &mut Vec<Bytes>,
) -> Result<Option<RespReply>, RespError> {
    let Some((reply, len)) = scan(buf, 0, 0)? else {
        return Ok(None);
    };
    let frame = buf.split_to(len).freeze();
    if let RespReply::Array(n) | RespReply::Push(n) = reply {
        // `scan` has checked the whole frame, so every element below is complete.
        let mut at = frame
            .iter()
            .position(|&b| b == b'\n')
            .map_or(len, |nl| nl + 1);
        for _ in 0..n {
            let Some((element, end)) = scan(&frame, at, 1)? else {
                return Err(RespError("aggregate shorter than its header"));
            };
            match (frame[at], element) {
                (b'$', RespReply::Bulk(size)) => strings.push(frame.slice(end - 2 - size..end - 2)),
                (b'+', _) => strings.push(frame.slice(at + 1..end - 2)),
                _ => {}
            }
            at = end;
        }
    }
    Ok(Some(reply))
}

/// Nesting depth beyond which a reply is refused rather than recursed into.
const MAX_DEPTH: usize = 16;

/// Finds one complete reply starting at `at`; returns it and the offset after it.
fn scan(buf: &[u8], at: usize, depth: usize) -> Result<Option<(RespReply, usize)>, RespError> {
    let Some(rest) = buf.get(at..) else {
        return Ok(None);
    };
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if nl == 0 || rest[nl - 1] != b'\r' {
        return Err(RespError("line not terminated by \\r\\n"));
    }
    let line = &rest[1..nl - 1];
    let after = at + nl + 1;
    let reply = match rest[0] {
        b'+' => RespReply::Simple,
        b'-' => RespReply::Error,
        b'_' => RespReply::Nil,
        b':' => RespReply::Integer(parse_int(line)?),
        b'$' => {
            let len = parse_int(line)?;
            if len < 0 {
                return Ok(Some((RespReply::Nil, after)));
            }
            let end = after + len as usize;
            match buf.get(end..end + 2) {
                None => return Ok(None),
                Some(b"\r\n") => return Ok(Some((RespReply::Bulk(len as usize), end + 2))),
                Some(_) => return Err(RespError("bulk string not terminated by \\r\\n")),
            }
        }
        kind @ (b'*' | b'~' | b'>' | b'%') => {
            let n = parse_int(line)?;
            if n < 0 {
                return Ok(Some((RespReply::Nil, after)));
            }
            if depth >= MAX_DEPTH {
                return Err(RespError("nested too deeply"));
            }
            let n = n as usize;
            let elements = if kind == b'%' { 2 * n } else { n };
            let mut next = after;
            for _ in 0..elements {
                match scan(buf, next, depth + 1)? {
                    None => return Ok(None),
                    Some((_, end)) => next = end,
                }
            }
            let reply = match kind {
                b'>' => RespReply::Push(n),
                b'%' => RespReply::Map(n),
                _ => RespReply::Array(n),
            };
            return Ok(Some((reply, next)));
        }
        _ => return Err(RespError("unknown reply type byte")),
    };
    Ok(Some((reply, after)))
}

fn parse_int(digits: &[u8]) -> Result<i64, RespError> {
    sessiond_decimal::parse_i64(digits).ok_or(RespError("bad integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = BytesMut::new();
        encode_command(&[b"SETEX", b"k", b"1800", b"vv"], &mut out);
        assert_eq!(
            &out[..],
            b"*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$4\r\n1800\r\n$2\r\nvv\r\n"
        );
    }

    #[test]
    fn decodes_each_shape_and_waits_for_partial_input() {
        let wire: &[u8] =
            b"+OK\r\n-ERR x\r\n:1\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\na\r\n:5\r\n*-1\r\n";
        let expected = [
            RespReply::Simple,
            RespReply::Error,
            RespReply::Integer(1),
            RespReply::Bulk(3),
            RespReply::Nil,
            RespReply::Array(2),
            RespReply::Nil,
        ];
        // Fed whole, every reply decodes in order.
        let mut buf = BytesMut::from(wire);
        for want in expected {
            assert_eq!(decode_reply(&mut buf).unwrap(), Some(want));
        }
        assert!(buf.is_empty());
        // Fed a byte at a time, the same replies come out, each only once complete.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in wire {
            buf.put_u8(b);
            while let Some(reply) = decode_reply(&mut buf).unwrap() {
                got.push(reply);
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn hands_out_the_strings_of_pub_sub_messages_in_resp2_and_resp3() {
        let wire: &[u8] = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nkey\r\n\
            >3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nkey2\r\n\
            %1\r\n+server\r\n$5\r\nredis\r\n\
            *3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n+OK\r\n*2\r\n$1\r\na";
        let mut buf = BytesMut::from(wire);
        let mut strings = Vec::new();
        let mut next = |buf: &mut BytesMut| {
            strings.clear();
            let reply = decode_strings(buf, &mut strings).unwrap();
            (reply, strings.clone())
        };
        let (reply, got) = next(&mut buf);
        assert_eq!(reply, Some(RespReply::Array(3)));
        assert_eq!(got, [&b"message"[..], b"ch", b"key"]);
        let (reply, got) = next(&mut buf);
        assert_eq!(reply, Some(RespReply::Push(3)));
        assert_eq!(got, [&b"message"[..], b"ch", b"key2"]);
        // A map is skipped whole; its strings are not handed out.
        assert_eq!(next(&mut buf), (Some(RespReply::Map(1)), vec![]));
        // Integers are skipped; simple strings count.
        let (reply, got) = next(&mut buf);
        assert_eq!(reply, Some(RespReply::Array(3)));
        assert_eq!(got, [&b"subscribe"[..], b"ch"]);
        assert_eq!(next(&mut buf), (Some(RespReply::Simple), vec![]));
        // An incomplete array waits and leaves the buffer alone.
        assert_eq!(next(&mut buf), (None, vec![]));
        assert_eq!(&buf[..], b"*2\r\n$1\r\na");
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_reply(&mut BytesMut::from(&b"?\r\n"[..])).is_err());
        assert!(decode_reply(&mut BytesMut::from(&b"$3\r\nabcd\r\n"[..])).is_err());
    }
}
