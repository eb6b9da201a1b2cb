//! Wire tests for the RESP codec: request decoding tables (each case also checked fed one
//! byte at a time), the exact bytes real clients send, limits and protocol errors, reply
//! encoding in both protocols, the reply decoder, and property tests (round trips, chunking
//! independence, arbitrary input).

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use crate::reply::DoubleText;
use crate::*;

type Decoded = Result<Vec<Bytes>, ProtocolError>;

/// Small enough that every limit is easy to hit.
fn small() -> Limits {
    Limits {
        max_bulk_len: 16,
        max_args: 4,
        max_inline_len: 32,
        max_depth: 3,
    }
}

/// Every result the decoder produces for `input` delivered in chunks of `chunk` bytes, until
/// it needs more input after the last chunk or fails; plus the bytes left undecoded.
fn decode_chunked(input: &[u8], chunk: usize, limits: Limits) -> (Vec<Decoded>, usize) {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(req)) => results.push(Ok(req.args)),
                Ok(None) => break,
                Err(err) => {
                    results.push(Err(err));
                    return (results, buf.len());
                }
            }
        }
    }
    (results, buf.len())
}

/// Decodes all at once, checks that one byte at a time gives the same, and returns the
/// results.
fn decode_with(input: &[u8], limits: Limits) -> Vec<Decoded> {
    let whole = decode_chunked(input, input.len(), limits);
    let bytewise = decode_chunked(input, 1, limits);
    assert_eq!(
        whole.0,
        bytewise.0,
        "chunking changed the result for {:?}",
        input.escape_ascii()
    );
    // After an error the leftovers depend on how much input had arrived.
    if !matches!(whole.0.last(), Some(Err(_))) {
        assert_eq!(whole.1, bytewise.1);
    }
    whole.0
}

fn decode_all(input: &[u8]) -> Vec<Decoded> {
    decode_with(input, Limits::default())
}

fn args(list: &[&str]) -> Decoded {
    Ok(list
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect())
}

fn encoded(reply: &Reply, protocol: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(reply, protocol, &mut out);
    out.to_vec()
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn simple(s: &str) -> Reply {
    Reply::Simple(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn decodes_requests() {
    let cases: Vec<(&[u8], Vec<Decoded>)> = vec![
        (b"*1\r\n$4\r\nPING\r\n", vec![args(&["PING"])]),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", vec![args(&["GET", "k"])]),
        // Binary-safe: CR, LF, NUL and `$` inside a bulk are data.
        (
            b"*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\0$\r\n",
            vec![args(&["ECHO", "a\r\n\0$"])],
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
            vec![args(&["SET", "k", ""])],
        ),
        // Pipelined, multibulk and inline mixed.
        (
            b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
            vec![args(&["PING"]), args(&["PING"]), args(&["ECHO", "hi"])],
        ),
        // Empty requests are skipped, as Redis does.
        (
            b"*0\r\n*-1\r\n*-7\r\n\r\n   \r\n\n*1\r\n$4\r\nPING\r\n",
            vec![args(&["PING"])],
        ),
        // Inline: bare `\n` ends a line too; runs of blanks separate.
        (b"GET k\n", vec![args(&["GET", "k"])]),
        (b"  SET \t k   v  \r\n", vec![args(&["SET", "k", "v"])]),
        // Inline quoting.
        (b"SET k \"a b\"\r\n", vec![args(&["SET", "k", "a b"])]),
        (
            b"SET k \"\\x41\\x7a\\n\\r\\t\\a\\b\\\"\\\\\\q\"\r\n",
            vec![args(&["SET", "k", "Az\n\r\t\x07\x08\"\\q"])],
        ),
        (
            b"SET k 'it\\'s \"x\" \\n'\r\n",
            vec![args(&["SET", "k", "it's \"x\" \\n"])],
        ),
        (b"SET k \"\" ''\r\n", vec![args(&["SET", "k", "", ""])]),
        // A quote may start mid-argument; `\x` needs two hex digits to be an escape.
        (
            b"SET k\"a b\" \"\\xZZ\"\r\n",
            vec![args(&["SET", "ka b", "xZZ"])],
        ),
        // `\v` and `\f` separate arguments but do not end an unquoted one.
        (b"\x0bGET\x0ck\x0c\r\n", vec![args(&["GET\x0ck\x0c"])]),
        // NUL is an ordinary byte (Redis would wait for more input).
        (b"GET k\0 \"\0\"\r\n", vec![args(&["GET", "k\0", "\0"])]),
        // Incomplete: nothing yet.
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r", vec![]),
        (b"GET k", vec![]),
    ];
    for (input, expected) in cases {
        assert_eq!(decode_all(input), expected, "{:?}", input.escape_ascii());
    }
}

/// The exact bytes captured from the session clients (clients.md §2–§4), each checked
/// against the decoder and against [`encode_request`].
#[test]
fn decodes_captured_client_requests() {
    let script = "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";
    assert_eq!(script.len(), 95);
    let lock = "PHPREDIS_SESSION:sidR2lockabcdefghijklmnop_LOCK";
    let key = "PHPREDIS_SESSION:sidR2lockabcdefghijklmnop";
    let data = "TEST|i:1177556731;user|s:5:\"alice\";arr|a:4:{s:1:\"a\";i:1;s:1:\"b\";b:1;s:1:\"f\";d:1.5;s:1:\"n\";N;}";
    let sha = "b70c2384248f88e6b75b9f89241a180f856ad852";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("*4\r\n$3\r\nSET\r\n$47\r\n{lock}\r\n$8\r\nvm|18678\r\n$2\r\nNX\r\n"),
            vec!["SET", lock, "vm|18678", "NX"],
        ),
        (
            format!(
                "*6\r\n$3\r\nSET\r\n$47\r\n{lock}\r\n$8\r\nvm|19234\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n30000\r\n"
            ),
            vec!["SET", lock, "vm|19234", "NX", "PX", "30000"],
        ),
        (
            format!("*2\r\n$3\r\nGET\r\n$42\r\n{key}\r\n"),
            vec!["GET", key],
        ),
        (
            format!(
                "*4\r\n$5\r\nSETEX\r\n$42\r\n{key}\r\n$4\r\n1440\r\n${}\r\n{data}\r\n",
                data.len()
            ),
            vec!["SETEX", key, "1440", data],
        ),
        (
            format!("*4\r\n$5\r\nSETEX\r\n$42\r\n{key}\r\n$4\r\n1440\r\n$0\r\n\r\n"),
            vec!["SETEX", key, "1440", ""],
        ),
        (
            format!(
                "*5\r\n$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n$1\r\n1\r\n$47\r\n{lock}\r\n$8\r\nvm|18678\r\n"
            ),
            vec!["EVALSHA", sha, "1", lock, "vm|18678"],
        ),
        (
            format!(
                "*5\r\n$4\r\nEVAL\r\n$95\r\n{script}\r\n$1\r\n1\r\n$47\r\n{lock}\r\n$8\r\nvm|18678\r\n"
            ),
            vec!["EVAL", script, "1", lock, "vm|18678"],
        ),
        // fred's connect sequence and session writes.
        ("*1\r\n$4\r\nPING\r\n".into(), vec!["PING"]),
        (
            "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n".into(),
            vec!["CLIENT", "ID"],
        ),
    ];
    for (wire, expected) in &cases {
        assert_eq!(
            decode_all(wire.as_bytes()),
            vec![args(expected)],
            "{wire:?}"
        );
        let mut out = BytesMut::new();
        encode_request(expected, &mut out);
        assert_eq!(out, wire.as_bytes());
    }

    // fred's session write; the value is MessagePack, so not UTF-8.
    let wire: &[u8] = b"*6\r\n$3\r\nSET\r\n$22\r\ntCTtttfKJvWFUO815yuF_Q\r\n$3\r\n\x93\xc4\x10\r\n\
        $4\r\nEXAT\r\n$10\r\n1795217205\r\n$2\r\nNX\r\n";
    let expected: [&[u8]; 6] = [
        b"SET",
        b"tCTtttfKJvWFUO815yuF_Q",
        b"\x93\xc4\x10",
        b"EXAT",
        b"1795217205",
        b"NX",
    ];
    assert_eq!(
        decode_all(wire),
        vec![Ok(expected
            .iter()
            .map(|a| Bytes::copy_from_slice(a))
            .collect())]
    );
    let mut out = BytesMut::new();
    encode_request(expected, &mut out);
    assert_eq!(out, wire);

    // node-redis 6 sends its whole handshake in one write.
    let handshake: &[u8] = b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n\
        *4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$7\r\nLIB-VER\r\n$5\r\n6.3.1\r\n\
        *4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$8\r\nLIB-NAME\r\n$10\r\nnode-redis\r\n\
        *5\r\n$6\r\nCLIENT\r\n$19\r\nMAINT_NOTIFICATIONS\r\n$2\r\nON\r\n$20\r\nmoving-endpoint-type\r\n$11\r\nexternal-ip\r\n";
    let expected = [
        vec!["HELLO", "3"],
        vec!["CLIENT", "SETINFO", "LIB-VER", "6.3.1"],
        vec!["CLIENT", "SETINFO", "LIB-NAME", "node-redis"],
        vec![
            "CLIENT",
            "MAINT_NOTIFICATIONS",
            "ON",
            "moving-endpoint-type",
            "external-ip",
        ],
    ];
    assert_eq!(
        decode_all(handshake),
        expected.iter().map(|a| args(a)).collect::<Vec<_>>()
    );
    let mut out = BytesMut::new();
    for request in &expected {
        encode_request(request, &mut out);
    }
    assert_eq!(out, handshake);
}

#[test]
fn arguments_share_the_input_buffer() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\nSET k v\r\n"[..]);
    let range = buf.as_ptr_range();
    let mut decoder = Decoder::new(Limits::default());
    for _ in 0..2 {
        let request = decoder.decode(&mut buf).unwrap().unwrap();
        for arg in &request.args {
            assert!(range.contains(&arg.as_ptr()), "{arg:?} was copied");
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn protocol_errors() {
    use ProtocolError::*;
    let cases: Vec<(&[u8], Vec<Decoded>)> = vec![
        (b"*x\r\n", vec![Err(InvalidMultibulkLength)]),
        (b"*\r\n", vec![Err(InvalidMultibulkLength)]),
        (b"*01\r\n", vec![Err(InvalidMultibulkLength)]),
        (b"*+1\r\n", vec![Err(InvalidMultibulkLength)]),
        (b"*-0\r\n", vec![Err(InvalidMultibulkLength)]),
        (b"* 1\r\n", vec![Err(InvalidMultibulkLength)]),
        (
            b"*99999999999999999999\r\n",
            vec![Err(InvalidMultibulkLength)],
        ),
        (b"*1\rx", vec![Err(InvalidMultibulkLength)]),
        (b"*1\r\n$-1\r\n", vec![Err(InvalidBulkLength)]),
        (b"*1\r\n$x\r\n", vec![Err(InvalidBulkLength)]),
        (b"*1\r\n$\r\n", vec![Err(InvalidBulkLength)]),
        (b"*1\r\n$4\rxPING\r\n", vec![Err(InvalidBulkLength)]),
        (b"*1\r\nPING\r\n", vec![Err(ExpectedBulk(b'P'))]),
        (b"*1\r\n\r\n", vec![Err(ExpectedBulk(b'\r'))]),
        (b"*1\r\n:1\r\n", vec![Err(ExpectedBulk(b':'))]),
        (b"*1\r\n$4\r\nPINGxx", vec![Err(BulkNotTerminated)]),
        (b"*1\r\n$3\r\nPING\r\n", vec![Err(BulkNotTerminated)]),
        // Requests before the error are still delivered.
        (
            b"PING\r\nSET k \"v\r\n",
            vec![args(&["PING"]), Err(UnbalancedQuotes)],
        ),
        (b"SET k 'v\r\n", vec![Err(UnbalancedQuotes)]),
        (b"SET k \"a\"b\r\n", vec![Err(UnbalancedQuotes)]),
        (b"SET k 'a'b\r\n", vec![Err(UnbalancedQuotes)]),
        (b"SET k \"a\\\"\r\n", vec![Err(UnbalancedQuotes)]),
    ];
    for (input, expected) in cases {
        assert_eq!(decode_all(input), expected, "{:?}", input.escape_ascii());
    }
}

#[test]
fn limits() {
    use ProtocolError::*;
    let limits = small();
    let bulk = |n: usize| format!("*2\r\n$3\r\nGET\r\n${n}\r\n{}\r\n", "k".repeat(n));
    assert_eq!(
        decode_with(bulk(16).as_bytes(), limits),
        vec![Ok(vec![b"GET"[..].into(), "k".repeat(16).into()])]
    );
    assert_eq!(
        decode_with(bulk(17).as_bytes(), limits),
        vec![Err(InvalidBulkLength)]
    );
    assert_eq!(decode_with(b"*4\r\n", limits), vec![]);
    assert_eq!(
        decode_with(b"*5\r\n", limits),
        vec![Err(InvalidMultibulkLength)]
    );

    // A line including its `\n` fits in 32 bytes; 33 bytes without one is too big.
    let line = format!("ECHO {}\n", "x".repeat(26));
    assert_eq!(line.len(), 32);
    let long_args = Limits {
        max_bulk_len: 64,
        ..limits
    };
    assert_eq!(
        decode_with(line.as_bytes(), long_args),
        vec![args(&["ECHO", &"x".repeat(26)])]
    );
    assert_eq!(decode_with(&[b'x'; 32], limits), vec![]);
    assert_eq!(decode_with(&[b'x'; 33], limits), vec![Err(TooBigInline)]);
    assert_eq!(
        decode_with(format!("ECHO {}\n", "x".repeat(27)).as_bytes(), limits),
        vec![Err(TooBigInline)]
    );

    // Inline arguments obey the multibulk limits too.
    assert_eq!(
        decode_with(b"a b c d\n", limits),
        vec![args(&["a", "b", "c", "d"])]
    );
    assert_eq!(decode_with(b"a b c d e\n", limits), vec![Err(TooBigInline)]);
    let arg = format!("ECHO {}\n", "x".repeat(16));
    assert_eq!(
        decode_with(arg.as_bytes(), limits),
        vec![args(&["ECHO", &"x".repeat(16)])]
    );
    let arg = format!("ECHO \"{}\"\n", "x".repeat(17));
    assert_eq!(decode_with(arg.as_bytes(), limits), vec![Err(TooBigInline)]);

    // Length lines are searched for their end no further than an inline line.
    let mut long = b"*".to_vec();
    long.extend_from_slice(&[b'1'; 32]);
    assert_eq!(decode_with(&long, limits), vec![Err(TooBigMultibulkCount)]);
    let mut long = b"*1\r\n$".to_vec();
    long.extend_from_slice(&[b'1'; 32]);
    assert_eq!(decode_with(&long, limits), vec![Err(TooBigBulkCount)]);

    // The defaults.
    let default = Limits::default();
    assert_eq!(default.max_bulk_len, 64 << 20);
    assert_eq!(default.max_args, 1 << 20);
    assert_eq!(decode_all(b"*1048576\r\n"), vec![]);
    assert_eq!(
        decode_all(b"*1048577\r\n"),
        vec![Err(InvalidMultibulkLength)]
    );
    assert_eq!(decode_all(b"*1\r\n$67108864\r\n"), vec![]);
    assert_eq!(
        decode_all(b"*1\r\n$67108865\r\n"),
        vec![Err(InvalidBulkLength)]
    );
}

/// Before authentication a multibulk request is held to Redis's pre-auth limits (10
/// arguments, 16 KiB each), with Redis's texts; after `set_authenticated(true)` the
/// ordinary limits apply again, from the next request on.
#[test]
fn unauthenticated_limits() {
    let unauthenticated = |input: &[u8]| {
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_authenticated(false);
        let mut buf = BytesMut::from(input);
        let mut results = Vec::new();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => results.push(Ok(request.args.len())),
                Ok(None) => return results,
                Err(error) => {
                    results.push(Err(error));
                    return results;
                }
            }
        }
    };
    let mut ten = BytesMut::new();
    encode_request(&[&b"AUTH"[..]; 10], &mut ten);
    assert_eq!(unauthenticated(&ten), vec![Ok(10)]);
    assert_eq!(
        unauthenticated(b"*11\r\n"),
        vec![Err(ProtocolError::UnauthenticatedMultibulkLength)]
    );
    // A malformed count is still the ordinary error, as in Redis.
    assert_eq!(
        unauthenticated(b"*x\r\n"),
        vec![Err(ProtocolError::InvalidMultibulkLength)]
    );
    let mut largest = BytesMut::new();
    encode_request(&[&b"AUTH"[..], &[b'p'; 16 * 1024]], &mut largest);
    assert_eq!(unauthenticated(&largest), vec![Ok(2)]);
    // Refused from the length line alone: none of the data needs to arrive.
    assert_eq!(
        unauthenticated(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"),
        vec![Err(ProtocolError::UnauthenticatedBulkLength)]
    );
    assert_eq!(
        ProtocolError::UnauthenticatedBulkLength.to_string(),
        "Protocol error: unauthenticated bulk length"
    );
    assert_eq!(
        ProtocolError::UnauthenticatedMultibulkLength.reply(),
        Reply::Error(Bytes::from_static(
            b"ERR Protocol error: unauthenticated multibulk length"
        ))
    );

    // Authenticating lifts the limits for the following requests.
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_authenticated(false);
    let mut buf = BytesMut::new();
    encode_request([&b"AUTH"[..], b"secret"], &mut buf);
    assert_eq!(decoder.decode(&mut buf).unwrap().unwrap().args.len(), 2);
    decoder.set_authenticated(true);
    encode_request(&[&b"k"[..]; 11], &mut buf);
    encode_request([&b"SET"[..], b"k", &[b'v'; 100_000]], &mut buf);
    assert_eq!(decoder.decode(&mut buf).unwrap().unwrap().args.len(), 11);
    assert_eq!(
        decoder.decode(&mut buf).unwrap().unwrap().args[2].len(),
        100_000
    );
}

/// A large value and a long inline line, fed one byte per call: a decoder that rescanned
/// its buffer on every call would take hours here instead of a fraction of a second.
#[test]
fn byte_at_a_time_is_linear() {
    let value = vec![b'v'; 1 << 20];
    let mut input = BytesMut::new();
    encode_request([&b"SET"[..], b"k", &value], &mut input);
    input.put_slice(b"ECHO ");
    input.put_slice(&[b'x'; 60_000]);
    input.put_slice(b"\r\n");
    let many = vec![&b"k"[..]; 50_000];
    encode_request(&many, &mut input);

    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in input.iter() {
        buf.put_u8(b);
        if let Some(request) = decoder.decode(&mut buf).unwrap() {
            got.push(request.args);
        }
    }
    assert_eq!(got.len(), 3);
    assert_eq!(got[0][2], value);
    assert_eq!(got[1][1].len(), 60_000);
    assert_eq!(got[2].len(), 50_000);
    assert!(buf.is_empty());
}

#[test]
fn protocol_error_replies_match_redis() {
    use ProtocolError::*;
    let cases: Vec<(ProtocolError, &[u8])> = vec![
        (
            InvalidMultibulkLength,
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            InvalidBulkLength,
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            ExpectedBulk(b'x'),
            b"-ERR Protocol error: expected '$', got 'x'\r\n",
        ),
        (
            ExpectedBulk(b'\r'),
            b"-ERR Protocol error: expected '$', got ' '\r\n",
        ),
        (
            ExpectedBulk(0xff),
            b"-ERR Protocol error: expected '$', got '\xff'\r\n",
        ),
        (
            TooBigMultibulkCount,
            b"-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            TooBigBulkCount,
            b"-ERR Protocol error: too big bulk count string\r\n",
        ),
        (
            TooBigInline,
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            UnbalancedQuotes,
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            BulkNotTerminated,
            b"-ERR Protocol error: bulk data not terminated by CRLF\r\n",
        ),
    ];
    for (err, wire) in cases {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            assert_eq!(encoded(&err.reply(), protocol), wire, "{err:?}");
        }
    }
    assert_eq!(
        ExpectedBulk(b'\n').to_string(),
        "Protocol error: expected '$', got '\\n'"
    );
    assert_eq!(
        TooBigInline.to_string(),
        "Protocol error: too big inline request"
    );
}

#[test]
fn encodes_replies_in_both_protocols() {
    // (reply, RESP2 bytes, RESP3 bytes)
    let hello = Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk("7.0.15")),
        (bulk("proto"), Reply::Integer(3)),
        (bulk("id"), Reply::Integer(193)),
        (bulk("mode"), bulk("standalone")),
        (bulk("role"), bulk("master")),
        (bulk("modules"), Reply::Array(vec![])),
    ]);
    let hello_body = "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n\
        $2\r\nid\r\n:193\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    let cases: Vec<(Reply, String, String)> = vec![
        (Reply::ok(), "+OK\r\n".into(), "+OK\r\n".into()),
        (simple("a\r\nb"), "+a  b\r\n".into(), "+a  b\r\n".into()),
        (
            Reply::Error(Bytes::from_static(
                b"NOSCRIPT No matching script. Please use EVAL.",
            )),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n".into(),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n".into(),
        ),
        (
            Reply::Error(Bytes::from_static(b"ERR x\ny")),
            "-ERR x y\r\n".into(),
            "-ERR x y\r\n".into(),
        ),
        (Reply::Integer(1), ":1\r\n".into(), ":1\r\n".into()),
        (
            Reply::Integer(i64::MIN),
            ":-9223372036854775808\r\n".into(),
            ":-9223372036854775808\r\n".into(),
        ),
        (bulk(""), "$0\r\n\r\n".into(), "$0\r\n\r\n".into()),
        (
            bulk("a\r\nb"),
            "$4\r\na\r\nb\r\n".into(),
            "$4\r\na\r\nb\r\n".into(),
        ),
        // A GET miss: node-redis in RESP3 relies on `_`.
        (Reply::Null, "$-1\r\n".into(), "_\r\n".into()),
        (Reply::NullArray, "*-1\r\n".into(), "_\r\n".into()),
        (Reply::Array(vec![]), "*0\r\n".into(), "*0\r\n".into()),
        (
            // connect-redis's SCAN reply.
            Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("myapp:a")])]),
            "*2\r\n$1\r\n0\r\n*1\r\n$7\r\nmyapp:a\r\n".into(),
            "*2\r\n$1\r\n0\r\n*1\r\n$7\r\nmyapp:a\r\n".into(),
        ),
        (
            Reply::Array(vec![bulk("v"), Reply::Null]),
            "*2\r\n$1\r\nv\r\n$-1\r\n".into(),
            "*2\r\n$1\r\nv\r\n_\r\n".into(),
        ),
        (
            hello,
            format!("*14\r\n{hello_body}"),
            format!("%7\r\n{hello_body}"),
        ),
        (
            Reply::Set(vec![bulk("a")]),
            "*1\r\n$1\r\na\r\n".into(),
            "~1\r\n$1\r\na\r\n".into(),
        ),
        (
            Reply::Push(vec![bulk("message"), bulk("ch"), bulk("k")]),
            "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nk\r\n".into(),
            ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nk\r\n".into(),
        ),
        (
            Reply::Double(1.5),
            "$3\r\n1.5\r\n".into(),
            ",1.5\r\n".into(),
        ),
        (
            Reply::Double(f64::NEG_INFINITY),
            "$4\r\n-inf\r\n".into(),
            ",-inf\r\n".into(),
        ),
        (
            Reply::Double(f64::NAN),
            "$3\r\nnan\r\n".into(),
            ",nan\r\n".into(),
        ),
        (Reply::Boolean(true), ":1\r\n".into(), "#t\r\n".into()),
        (Reply::Boolean(false), ":0\r\n".into(), "#f\r\n".into()),
        (
            Reply::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"Some string"),
            },
            "$11\r\nSome string\r\n".into(),
            "=15\r\ntxt:Some string\r\n".into(),
        ),
        (
            Reply::BigNumber(Bytes::from_static(
                b"3492890328409238509324850943850943825024385",
            )),
            "$43\r\n3492890328409238509324850943850943825024385\r\n".into(),
            "(3492890328409238509324850943850943825024385\r\n".into(),
        ),
    ];
    for (reply, resp2, resp3) in cases {
        assert_eq!(
            encoded(&reply, Protocol::Resp2).escape_ascii().to_string(),
            resp2.as_bytes().escape_ascii().to_string(),
            "{reply:?}"
        );
        assert_eq!(
            encoded(&reply, Protocol::Resp3).escape_ascii().to_string(),
            resp3.as_bytes().escape_ascii().to_string(),
            "{reply:?}"
        );
        assert_eq!(reply.encoded_len(Protocol::Resp2), resp2.len(), "{reply:?}");
        assert_eq!(reply.encoded_len(Protocol::Resp3), resp3.len(), "{reply:?}");
    }
}

#[test]
fn formats_doubles_like_redis() {
    // What Redis 7.0.15 answers to ZSCORE for each value (measured with redis-cli).
    let cases: Vec<(f64, &str)> = vec![
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-3.0, "-3"),
        (1.5, "1.5"),
        (-1.5, "-1.5"),
        (0.1, "0.10000000000000001"),
        (1.0 / 3.0, "0.33333333333333331"),
        (0.000123, "0.00012300000000000001"),
        (1e-5, "1.0000000000000001e-05"),
        (1e-7, "9.9999999999999995e-08"),
        (123456.789, "123456.789"),
        (1e16, "10000000000000000"),
        (1e17, "1e+17"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (4611686018427387904.0, "4.6116860184273879e+18"),
        (9223372036854775808.0, "9.2233720368547758e+18"),
        (1.5e19, "1.5e+19"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "4.9406564584124654e-324"),
        (f64::INFINITY, "inf"),
    ];
    for (d, text) in cases {
        assert_eq!(
            std::str::from_utf8(DoubleText::new(d).as_bytes()).unwrap(),
            text,
            "{d:e}"
        );
    }
}

/// Decodes `wire` with `limits`, checking first that every proper prefix is incomplete and
/// leaves the buffer untouched, and that the whole reply is consumed.
fn decode_reply_checked(wire: &[u8], limits: &Limits) -> Result<Reply, ProtocolError> {
    for end in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..end]);
        match decode_reply(&mut buf, limits) {
            Ok(None) => assert_eq!(buf, wire[..end], "prefix consumed"),
            // A prefix may already be detectably broken.
            Err(err) => return Err(err),
            Ok(Some(reply)) => panic!(
                "prefix {:?} decoded as {reply:?}",
                wire[..end].escape_ascii()
            ),
        }
    }
    let mut buf = BytesMut::from(wire);
    let reply = decode_reply(&mut buf, limits)?.expect("complete reply");
    assert!(buf.is_empty(), "left {:?}", buf);
    Ok(reply)
}

#[test]
fn decodes_replies() {
    let limits = Limits::default();
    let cases: Vec<(&[u8], Reply)> = vec![
        (b"+OK\r\n", Reply::ok()),
        (b"+\r\n", simple("")),
        (
            b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n",
            Reply::Error("ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.".into()),
        ),
        (b":-42\r\n", Reply::Integer(-42)),
        (b"$-1\r\n", Reply::Null),
        (b"_\r\n", Reply::Null),
        (b"*-1\r\n", Reply::NullArray),
        (b"$5\r\na\r\nb\0\r\n", bulk("a\r\nb\0")),
        (
            b"!21\r\nSYNTAX invalid syntax\r\n",
            Reply::Error("SYNTAX invalid syntax".into()),
        ),
        (b",1.5\r\n", Reply::Double(1.5)),
        (b",-inf\r\n", Reply::Double(f64::NEG_INFINITY)),
        (b",1e+19\r\n", Reply::Double(1e19)),
        (b"#t\r\n", Reply::Boolean(true)),
        (
            b"(-12345678901234567890\r\n",
            Reply::BigNumber("-12345678901234567890".into()),
        ),
        (
            b"=8\r\nmkd:# hi\r\n",
            Reply::Verbatim {
                format: *b"mkd",
                text: "# hi".into(),
            },
        ),
        (
            b"*2\r\n$1\r\n0\r\n*0\r\n",
            Reply::Array(vec![bulk("0"), Reply::Array(vec![])]),
        ),
        (b"~1\r\n:1\r\n", Reply::Set(vec![Reply::Integer(1)])),
        (
            b">2\r\n+a\r\n_\r\n",
            Reply::Push(vec![simple("a"), Reply::Null]),
        ),
        (
            b"%1\r\n+k\r\n*1\r\n:1\r\n",
            Reply::Map(vec![(simple("k"), Reply::Array(vec![Reply::Integer(1)]))]),
        ),
        // Attributes are dropped, at the top and inside aggregates.
        (b"|1\r\n+ttl\r\n:3\r\n:5\r\n", Reply::Integer(5)),
        (
            b"*2\r\n|1\r\n+a\r\n*1\r\n:1\r\n:1\r\n:2\r\n",
            Reply::Array(vec![Reply::Integer(1), Reply::Integer(2)]),
        ),
    ];
    for (wire, expected) in cases {
        assert_eq!(
            decode_reply_checked(wire, &limits),
            Ok(expected),
            "{:?}",
            wire.escape_ascii()
        );
    }
    // The HELLO 3 reply, as encoded, decodes back.
    let mut out = BytesMut::new();
    let hello = Reply::Map(vec![
        (bulk("proto"), Reply::Integer(3)),
        (bulk("modules"), Reply::Array(vec![])),
    ]);
    encode(&hello, Protocol::Resp3, &mut out);
    assert_eq!(decode_reply_checked(&out, &limits), Ok(hello));
}

#[test]
fn rejects_malformed_replies() {
    let limits = small();
    let bad: Vec<&[u8]> = vec![
        b"\r\n",
        b"?\r\n",
        b"+OK\rx",
        b":\r\n",
        b":1.5\r\n",
        b"_x\r\n",
        b"#x\r\n",
        b",\r\n",
        b",one\r\n",
        b"(\r\n",
        b"(12a\r\n",
        b"$-2\r\n",
        b"!-1\r\n",
        b"$1\r\nab\r\n",
        b"$17\r\n",
        b"=3\r\ntxt\r\n",
        b"=4\r\ntxt-\r\n",
        b"*5\r\n",
        b"%5\r\n",
        b"*-2\r\n",
        b"%-1\r\n",
        b"$?\r\n",
        b"*?\r\n",
        // Nested four deep with max_depth 3.
        b"*1\r\n*1\r\n*1\r\n*1\r\n",
        b"|1\r\n*1\r\n*1\r\n*1\r\n:1\r\n:1\r\n:1\r\n",
    ];
    for wire in bad {
        assert!(
            matches!(
                decode_reply_checked(wire, &limits),
                Err(ProtocolError::InvalidReply(_))
            ),
            "{:?}",
            wire.escape_ascii()
        );
    }
    assert_eq!(
        decode_reply_checked(b"*1\r\n*1\r\n*1\r\n:1\r\n", &limits),
        Ok(Reply::Array(vec![Reply::Array(vec![Reply::Array(vec![
            Reply::Integer(1)
        ])])]))
    );
    let mut long = b"+".to_vec();
    long.extend_from_slice(&[b'x'; 32]);
    assert!(decode_reply(&mut BytesMut::from(&long[..]), &limits).is_err());
}

// ---- Property tests ----

fn arg() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..24)
}

fn pipeline() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    proptest::collection::vec(proptest::collection::vec(arg(), 1..6), 1..6)
}

/// `arg` in double quotes, escaped the way `redis-cli` prints strings.
fn quote(arg: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

fn line_text() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no line breaks", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    )
    .prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Any reply; NaN is left out only because it is not equal to itself.
fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        line_text().prop_map(Reply::Simple),
        line_text().prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Integer),
        blob().prop_map(Reply::Bulk),
        Just(Reply::Null),
        Just(Reply::NullArray),
        any::<f64>()
            .prop_filter("NaN", |d| !d.is_nan())
            .prop_map(Reply::Double),
        any::<bool>().prop_map(Reply::Boolean),
        (any::<[u8; 3]>(), blob()).prop_map(|(format, text)| Reply::Verbatim { format, text }),
        "-?[1-9][0-9]{0,40}".prop_map(|n| Reply::BigNumber(n.into())),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Reply::Array),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Reply::Map),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Reply::Set),
            proptest::collection::vec(inner, 0..5).prop_map(Reply::Push),
        ]
    })
}

/// What a RESP3 client reads back: both nulls are `_`.
fn as_resp3(reply: &Reply) -> Reply {
    let all = |items: &[Reply]| items.iter().map(as_resp3).collect();
    match reply {
        Reply::NullArray => Reply::Null,
        Reply::Array(items) => Reply::Array(all(items)),
        Reply::Set(items) => Reply::Set(all(items)),
        Reply::Push(items) => Reply::Push(all(items)),
        Reply::Map(pairs) => Reply::Map(
            pairs
                .iter()
                .map(|(k, v)| (as_resp3(k), as_resp3(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a RESP2 client reads back: Redis's downgrade of every RESP3 type.
fn as_resp2(reply: &Reply) -> Reply {
    let all = |items: &[Reply]| items.iter().map(as_resp2).collect();
    match reply {
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => Reply::Array(all(items)),
        Reply::Map(pairs) => Reply::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [as_resp2(k), as_resp2(v)])
                .collect(),
        ),
        Reply::Double(d) => Reply::Bulk(Bytes::copy_from_slice(DoubleText::new(*d).as_bytes())),
        Reply::Boolean(b) => Reply::Integer(i64::from(*b)),
        Reply::Verbatim { text, .. } => Reply::Bulk(text.clone()),
        Reply::BigNumber(digits) => Reply::Bulk(digits.clone()),
        other => other.clone(),
    }
}

/// Every reply in `input` delivered in chunks of `chunk` bytes, up to the first error.
fn decode_replies_chunked(
    input: &[u8],
    chunk: usize,
    limits: &Limits,
) -> Vec<Result<Reply, ProtocolError>> {
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decode_reply(&mut buf, limits) {
                Ok(Some(reply)) => results.push(Ok(reply)),
                Ok(None) => break,
                Err(err) => {
                    results.push(Err(err));
                    return results;
                }
            }
        }
    }
    results
}

proptest! {
    #[test]
    fn requests_round_trip(requests in pipeline(), chunk in 1usize..64) {
        let mut wire = BytesMut::new();
        for request in &requests {
            encode_request(request, &mut wire);
        }
        let (decoded, left) = decode_chunked(&wire, chunk, Limits::default());
        let expected: Vec<Decoded> =
            requests.iter().map(|r| Ok(r.iter().map(|a| Bytes::copy_from_slice(a)).collect())).collect();
        prop_assert_eq!(decoded, expected);
        prop_assert_eq!(left, 0);
    }

    #[test]
    fn quoted_inline_requests_round_trip(request in proptest::collection::vec(arg(), 1..6)) {
        let mut line = request.iter().map(|a| quote(a)).collect::<Vec<_>>().join(&b' ');
        line.extend_from_slice(b"\r\n");
        let expected: Decoded = Ok(request.iter().map(|a| Bytes::copy_from_slice(a)).collect());
        prop_assert_eq!(decode_all(&line), vec![expected]);
    }

    #[test]
    fn replies_round_trip_in_resp3(replies in proptest::collection::vec(reply(), 1..4), chunk in 1usize..64) {
        let mut wire = BytesMut::new();
        for reply in &replies {
            encode(reply, Protocol::Resp3, &mut wire);
        }
        let expected: Vec<_> = replies.iter().map(|r| Ok(as_resp3(r))).collect();
        prop_assert_eq!(decode_replies_chunked(&wire, wire.len(), &Limits::default()), expected.clone());
        prop_assert_eq!(decode_replies_chunked(&wire, chunk, &Limits::default()), expected);
    }

    #[test]
    fn replies_downgrade_in_resp2(reply in reply()) {
        let mut wire = BytesMut::new();
        encode(&reply, Protocol::Resp2, &mut wire);
        let decoded = decode_reply(&mut wire, &Limits::default());
        prop_assert_eq!(decoded, Ok(Some(as_resp2(&reply))));
        prop_assert!(wire.is_empty());
    }

    /// `encoded_len` is what a server checks against its output limit instead of encoding,
    /// so it must be exact.
    #[test]
    fn encoded_len_is_exact(reply in reply()) {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let mut wire = BytesMut::new();
            encode(&reply, protocol, &mut wire);
            prop_assert_eq!(reply.encoded_len(protocol), wire.len(), "{:?}", protocol);
        }
    }

    #[test]
    fn doubles_read_back_exactly(d in any::<f64>()) {
        let text = DoubleText::new(d);
        let back: f64 = std::str::from_utf8(text.as_bytes()).unwrap().parse().unwrap();
        prop_assert!(back == d || (d.is_nan() && back.is_nan()), "{} read back as {}", d, back);
        prop_assert_eq!(back.is_sign_negative(), d.is_sign_negative() && !d.is_nan());
    }

    /// Arbitrary input never panics, and how it is split into reads never matters.
    #[test]
    fn arbitrary_requests(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_with(&input, small());
        decode_with(&input, Limits::default());
    }

    /// Input that looks like RESP (built from its tokens) reaches deeper states than noise.
    #[test]
    fn resp_like_requests(tokens in proptest::collection::vec(
        prop_oneof![
            Just(&b"*"[..]), Just(&b"$"[..]), Just(&b"\r\n"[..]), Just(&b"\n"[..]), Just(&b"1"[..]),
            Just(&b"3"[..]), Just(&b"-1"[..]), Just(&b"0"[..]), Just(&b"abc"[..]), Just(&b" "[..]),
            Just(&b"\""[..]), Just(&b"'"[..]), Just(&b"\\"[..]), Just(&b"\0"[..]),
        ],
        0..64,
    )) {
        let input = tokens.concat();
        decode_with(&input, small());
    }

    #[test]
    fn arbitrary_replies(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let whole = decode_replies_chunked(&input, input.len(), &small());
        let bytewise = decode_replies_chunked(&input, 1, &small());
        prop_assert_eq!(whole, bytewise);
    }
}
