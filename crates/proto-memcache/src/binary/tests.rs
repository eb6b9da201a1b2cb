//! Wire tests for the binary codec: the packets php-memcached sends (byte for byte), decoding
//! and reply tables for every opcode, error statuses and body skipping, and property tests.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::opcode as op;
use super::*;
use crate::{ArithMode, Command, Hit, Limits, Outcome, StatsGroup, StoreMode};

type Decoded = Result<BinaryRequest, BinaryError>;

fn limits() -> Limits {
    Limits {
        max_key_len: 250,
        max_value_len: 64,
        max_line_len: 4096,
        max_keys: 8,
    }
}

/// Every result for `input` delivered in chunks of `chunk` bytes (until more input is needed
/// after the last chunk, or a fatal error), and how many bytes were left undecoded.
fn decode_chunked(input: &[u8], chunk: usize) -> (Vec<Decoded>, usize) {
    let mut decoder = BinaryDecoder::new(limits());
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(req)) => results.push(Ok(req)),
                Ok(None) => break,
                Err(err @ BinaryError::Fatal(_)) => {
                    results.push(Err(err));
                    return (results, buf.len());
                }
                Err(err) => results.push(Err(err)),
            }
        }
    }
    (results, buf.len())
}

/// Decodes all at once, checks that one byte at a time gives the same, returns the results.
fn decode_all(input: &[u8]) -> Vec<Decoded> {
    let whole = decode_chunked(input, input.len());
    let bytewise = decode_chunked(input, 1);
    assert_eq!(
        whole.0, bytewise.0,
        "chunking changed the result for {input:02x?}"
    );
    // After a fatal error the leftovers depend on where the decoder gave up.
    if !matches!(whole.0.last(), Some(Err(BinaryError::Fatal(_)))) {
        assert_eq!(whole.1, bytewise.1);
    }
    whole.0
}

/// A request packet assembled by hand, independently of [`encode_request`].
fn packet(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let mut p = vec![0x80, opcode];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.push(extras.len() as u8);
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    p.extend_from_slice(&opaque.to_be_bytes());
    p.extend_from_slice(&cas.to_be_bytes());
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn request(opcode: u8, opaque: u32, command: Command) -> BinaryRequest {
    let quiet = matches!(
        opcode,
        op::GETQ
            | op::GETKQ
            | op::GATQ
            | op::GATKQ
            | op::SETQ
            | op::ADDQ
            | op::REPLACEQ
            | op::APPENDQ
            | op::PREPENDQ
            | op::DELETEQ
            | op::INCREMENTQ
            | op::DECREMENTQ
            | op::QUITQ
            | op::FLUSHQ
    );
    let return_key = matches!(opcode, op::GETK | op::GETKQ | op::GATK | op::GATKQ);
    BinaryRequest {
        opcode,
        opaque,
        command,
        quiet,
        return_key,
    }
}

fn get(key: &str, touch: Option<i64>) -> Command {
    Command::Get {
        keys: vec![b(key)],
        touch,
    }
}

fn status_err(opcode: u8, opaque: u32, status: u16) -> Decoded {
    Err(BinaryError::Status {
        opcode,
        opaque,
        status,
    })
}

const LOCK_KEY: &str = "memc.sess.key.lock.sidM1binabcdefghijklmnop";
const SESSION_KEY: &str = "memc.sess.key.sidM1binabcdefghijklmnop";

#[test]
fn php_lock_add_matches_the_capture() {
    let mut wire = vec![
        0x80, 0x02, 0x00, 0x2b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x34, 0x00, 0x01, 0x00,
        0x00,
    ];
    wire.extend_from_slice(&[0; 8]); // cas
    wire.extend_from_slice(&[0; 8]); // flags, exptime
    wire.extend_from_slice(LOCK_KEY.as_bytes());
    wire.push(b'1');
    let add = Command::Store {
        mode: StoreMode::Add,
        key: b(LOCK_KEY),
        flags: 0,
        exptime: 0,
        value: b("1"),
        cas: 0,
    };
    let expected = request(op::ADD, 0x0001_0000, add);
    assert_eq!(decode_all(&wire), vec![Ok(expected.clone())]);

    let mut encoded = BytesMut::new();
    encode_request(&expected, &mut encoded);
    assert_eq!(&encoded[..], &wire[..]);

    let mut reply = BytesMut::new();
    encode_reply(&expected, &Outcome::Stored { cas: 1 }, &mut reply);
    let mut header = vec![
        0x81, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00,
    ];
    header.extend_from_slice(&1u64.to_be_bytes());
    assert_eq!(&reply[..], &header[..]);

    let mut exists = BytesMut::new();
    encode_reply(&expected, &Outcome::NotStored, &mut exists);
    assert_eq!(
        &exists[6..8],
        &[0x00, 0x02],
        "a failed ADD is 'exists', which PHP retries on"
    );
}

#[test]
fn php_getk_miss_echoes_the_key() {
    let wire = packet(op::GETK, &[], SESSION_KEY.as_bytes(), &[], 0x0002_0000, 0);
    let req = request(op::GETK, 0x0002_0000, get(SESSION_KEY, None));
    assert_eq!(decode_all(&wire), vec![Ok(req.clone())]);

    let mut reply = BytesMut::new();
    encode_reply(&req, &Outcome::Values(vec![None]), &mut reply);
    let mut expected = vec![
        0x81, 0x0c, 0x00, 0x26, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x26,
    ];
    expected.extend_from_slice(&0x0002_0000u32.to_be_bytes());
    expected.extend_from_slice(&[0; 8]);
    expected.extend_from_slice(SESSION_KEY.as_bytes());
    assert_eq!(&reply[..], &expected[..]);

    // The same for a miss reported as NotFound.
    let mut again = BytesMut::new();
    encode_reply(&req, &Outcome::NotFound, &mut again);
    assert_eq!(again, reply);
}

#[test]
fn decodes_every_opcode() {
    let k = b"key".as_slice();
    let exp = 1440u32.to_be_bytes();
    let mut sv = [0u8; 8];
    sv[..4].copy_from_slice(&7u32.to_be_bytes());
    sv[4..].copy_from_slice(&1440u32.to_be_bytes());
    let arith = |delta: u64, initial: u64, exptime: u32| {
        let mut e = Vec::new();
        e.extend_from_slice(&delta.to_be_bytes());
        e.extend_from_slice(&initial.to_be_bytes());
        e.extend_from_slice(&exptime.to_be_bytes());
        e
    };
    let store = |mode, flags, exptime, cas| Command::Store {
        mode,
        key: b("key"),
        flags,
        exptime,
        value: b("val"),
        cas,
    };
    let cases: Vec<(Vec<u8>, Decoded)> = vec![
        (
            packet(op::GET, &[], k, &[], 1, 0),
            Ok(request(op::GET, 1, get("key", None))),
        ),
        (
            packet(op::GETQ, &[], k, &[], 2, 0),
            Ok(request(op::GETQ, 2, get("key", None))),
        ),
        (
            packet(op::GETK, &[], k, &[], 3, 0),
            Ok(request(op::GETK, 3, get("key", None))),
        ),
        (
            packet(op::GETKQ, &[], k, &[], 4, 0),
            Ok(request(op::GETKQ, 4, get("key", None))),
        ),
        (
            packet(op::GAT, &exp, k, &[], 5, 0),
            Ok(request(op::GAT, 5, get("key", Some(1440)))),
        ),
        (
            packet(op::GATQ, &exp, k, &[], 5, 0),
            Ok(request(op::GATQ, 5, get("key", Some(1440)))),
        ),
        (
            packet(op::GATK, &exp, k, &[], 5, 0),
            Ok(request(op::GATK, 5, get("key", Some(1440)))),
        ),
        (
            packet(op::GATKQ, &exp, k, &[], 5, 0),
            Ok(request(op::GATKQ, 5, get("key", Some(1440)))),
        ),
        (
            packet(op::SET, &sv, k, b"val", 6, 0),
            Ok(request(op::SET, 6, store(StoreMode::Set, 7, 1440, 0))),
        ),
        (
            packet(op::SETQ, &sv, k, b"val", 6, 99),
            Ok(request(op::SETQ, 6, store(StoreMode::Set, 7, 1440, 99))),
        ),
        (
            packet(op::ADD, &sv, k, b"val", 6, 0),
            Ok(request(op::ADD, 6, store(StoreMode::Add, 7, 1440, 0))),
        ),
        (
            packet(op::ADDQ, &sv, k, b"val", 6, 0),
            Ok(request(op::ADDQ, 6, store(StoreMode::Add, 7, 1440, 0))),
        ),
        (
            packet(op::REPLACE, &sv, k, b"val", 6, 5),
            Ok(request(
                op::REPLACE,
                6,
                store(StoreMode::Replace, 7, 1440, 5),
            )),
        ),
        (
            packet(op::REPLACEQ, &sv, k, b"val", 6, 0),
            Ok(request(
                op::REPLACEQ,
                6,
                store(StoreMode::Replace, 7, 1440, 0),
            )),
        ),
        (
            packet(op::APPEND, &[], k, b"val", 6, 0),
            Ok(request(op::APPEND, 6, store(StoreMode::Append, 0, 0, 0))),
        ),
        (
            packet(op::APPENDQ, &[], k, b"val", 6, 3),
            Ok(request(op::APPENDQ, 6, store(StoreMode::Append, 0, 0, 3))),
        ),
        (
            packet(op::PREPEND, &[], k, b"val", 6, 0),
            Ok(request(op::PREPEND, 6, store(StoreMode::Prepend, 0, 0, 0))),
        ),
        (
            packet(op::PREPENDQ, &[], k, b"val", 6, 0),
            Ok(request(op::PREPENDQ, 6, store(StoreMode::Prepend, 0, 0, 0))),
        ),
        (
            packet(op::DELETE, &[], k, &[], 7, 42),
            Ok(request(
                op::DELETE,
                7,
                Command::Delete {
                    key: b("key"),
                    cas: 42,
                },
            )),
        ),
        (
            packet(op::DELETEQ, &[], k, &[], 7, 0),
            Ok(request(
                op::DELETEQ,
                7,
                Command::Delete {
                    key: b("key"),
                    cas: 0,
                },
            )),
        ),
        (
            packet(op::INCREMENT, &arith(5, 10, 60), k, &[], 8, 0),
            Ok(request(
                op::INCREMENT,
                8,
                Command::Arith {
                    mode: ArithMode::Incr,
                    key: b("key"),
                    delta: 5,
                    initial: Some((10, 60)),
                },
            )),
        ),
        (
            packet(op::INCREMENTQ, &arith(5, 10, u32::MAX), k, &[], 8, 0),
            Ok(request(
                op::INCREMENTQ,
                8,
                Command::Arith {
                    mode: ArithMode::Incr,
                    key: b("key"),
                    delta: 5,
                    initial: None,
                },
            )),
        ),
        (
            packet(op::DECREMENT, &arith(1, 0, 0), k, &[], 8, 0),
            Ok(request(
                op::DECREMENT,
                8,
                Command::Arith {
                    mode: ArithMode::Decr,
                    key: b("key"),
                    delta: 1,
                    initial: Some((0, 0)),
                },
            )),
        ),
        (
            packet(op::DECREMENTQ, &arith(1, 0, u32::MAX), k, &[], 8, 0),
            Ok(request(
                op::DECREMENTQ,
                8,
                Command::Arith {
                    mode: ArithMode::Decr,
                    key: b("key"),
                    delta: 1,
                    initial: None,
                },
            )),
        ),
        (
            packet(op::TOUCH, &exp, k, &[], 9, 0),
            Ok(request(
                op::TOUCH,
                9,
                Command::Touch {
                    key: b("key"),
                    exptime: 1440,
                },
            )),
        ),
        (
            packet(op::FLUSH, &[], &[], &[], 10, 0),
            Ok(request(op::FLUSH, 10, Command::FlushAll { delay: 0 })),
        ),
        (
            packet(op::FLUSHQ, &exp, &[], &[], 10, 0),
            Ok(request(op::FLUSHQ, 10, Command::FlushAll { delay: 1440 })),
        ),
        (
            packet(op::NOOP, &[], &[], &[], 11, 0),
            Ok(request(op::NOOP, 11, Command::Noop)),
        ),
        (
            packet(op::VERSION, &[], &[], &[], 12, 0),
            Ok(request(op::VERSION, 12, Command::Version)),
        ),
        (
            packet(op::QUIT, &[], &[], &[], 13, 0),
            Ok(request(op::QUIT, 13, Command::Quit)),
        ),
        (
            packet(op::QUITQ, &[], &[], &[], 13, 0),
            Ok(request(op::QUITQ, 13, Command::Quit)),
        ),
        (
            packet(op::VERBOSITY, &[0, 0, 0, 1], &[], &[], 14, 0),
            Ok(request(op::VERBOSITY, 14, Command::Verbosity)),
        ),
        (
            packet(op::STAT, &[], &[], &[], 15, 0),
            Ok(request(op::STAT, 15, Command::Stats(StatsGroup::General))),
        ),
        (
            packet(op::STAT, &[], b"settings", &[], 15, 0),
            Ok(request(op::STAT, 15, Command::Stats(StatsGroup::Settings))),
        ),
        (
            packet(op::STAT, &[], b"detail dump", &[], 15, 0),
            Ok(request(
                op::STAT,
                15,
                Command::Stats(StatsGroup::Other(b("detail dump"))),
            )),
        ),
        // SASL: the mechanism is the key, the client data the value (binary-safe).
        (
            packet(op::SASL_LIST_MECHS, &[], &[], &[], 16, 0),
            Ok(request(op::SASL_LIST_MECHS, 16, Command::SaslListMechs)),
        ),
        (
            packet(op::SASL_AUTH, &[], b"PLAIN", b"\0user\0pass", 16, 0),
            Ok(request(
                op::SASL_AUTH,
                16,
                Command::SaslAuth {
                    mechanism: b("PLAIN"),
                    data: Bytes::from_static(b"\0user\0pass"),
                    step: false,
                },
            )),
        ),
        (
            packet(op::SASL_STEP, &[], b"PLAIN", b"", 16, 0),
            Ok(request(
                op::SASL_STEP,
                16,
                Command::SaslAuth {
                    mechanism: b("PLAIN"),
                    data: Bytes::new(),
                    step: true,
                },
            )),
        ),
        // Hostile SASL shapes: no mechanism, extras, an overlong mechanism, a body on LIST.
        (
            packet(op::SASL_AUTH, &[], &[], b"\0u\0p", 16, 0),
            status_err(op::SASL_AUTH, 16, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::SASL_AUTH, &[1, 2, 3, 4], b"PLAIN", b"x", 16, 0),
            status_err(op::SASL_AUTH, 16, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::SASL_AUTH, &[], &[b'M'; 33], b"x", 16, 0),
            status_err(op::SASL_AUTH, 16, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::SASL_LIST_MECHS, &[], &[], b"junk", 16, 0),
            status_err(op::SASL_LIST_MECHS, 16, status::INVALID_ARGUMENTS),
        ),
        (
            packet(
                op::SASL_AUTH,
                &[],
                b"PLAIN",
                &[0u8; MAX_SASL_DATA_LEN + 1],
                16,
                0,
            ),
            status_err(op::SASL_AUTH, 16, status::TOO_LARGE),
        ),
        // Unknown opcodes: Unknown, body skipped whatever its shape.
        (
            packet(0xff, &[1, 2], b"k", b"v", 17, 0),
            Ok(request(0xff, 17, Command::Unknown)),
        ),
    ];
    for (wire, expected) in cases {
        assert_eq!(decode_all(&wire), vec![expected.clone()], "{expected:?}");
        // Packets follow one another with no separator; check each leaves the next intact.
        let mut two = wire.clone();
        two.extend_from_slice(&packet(op::NOOP, &[], &[], &[], 99, 0));
        assert_eq!(
            decode_all(&two),
            vec![expected, Ok(request(op::NOOP, 99, Command::Noop))]
        );
    }
}

#[test]
fn rejects_bad_shapes_and_skips_their_bodies() {
    let k = b"key".as_slice();
    let big = vec![b'v'; 65];
    let long_key = vec![b'k'; 251];
    let cases: Vec<(Vec<u8>, Decoded)> = vec![
        (
            packet(op::GET, &[0; 4], k, &[], 1, 0),
            status_err(op::GET, 1, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::GET, &[], &[], &[], 1, 0),
            status_err(op::GET, 1, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::GET, &[], k, b"x", 1, 0),
            status_err(op::GET, 1, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::GET, &[], &long_key, &[], 1, 0),
            status_err(op::GET, 1, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::GET, &[], b"a b", &[], 1, 0),
            status_err(op::GET, 1, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::GET, &[], b"a\nb", &[], 1, 0),
            status_err(op::GET, 1, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::SET, &[0; 4], k, b"v", 2, 0),
            status_err(op::SET, 2, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::SET, &[0; 8], &[], b"v", 2, 0),
            status_err(op::SET, 2, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::SET, &[0; 8], k, &big, 2, 0),
            // A SET refused as too large comes out as a command: the glue drops the old value.
            Ok(request(
                op::SET,
                2,
                Command::TooLarge {
                    key: Bytes::from_static(b"key"),
                },
            )),
        ),
        (
            packet(op::APPENDQ, &[], k, &big, 2, 0),
            status_err(op::APPENDQ, 2, status::TOO_LARGE),
        ),
        (
            packet(op::APPEND, &[0; 8], k, b"v", 2, 0),
            status_err(op::APPEND, 2, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::DELETE, &[0; 4], k, &[], 3, 0),
            status_err(op::DELETE, 3, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::INCREMENT, &[0; 8], k, &[], 4, 0),
            status_err(op::INCREMENT, 4, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::TOUCH, &[], k, &[], 5, 0),
            status_err(op::TOUCH, 5, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::GAT, &[0; 4], &[], &[], 5, 0),
            status_err(op::GAT, 5, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::FLUSH, &[0; 8], &[], &[], 6, 0),
            status_err(op::FLUSH, 6, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::FLUSH, &[], k, &[], 6, 0),
            status_err(op::FLUSH, 6, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::NOOP, &[], &[], b"x", 7, 0),
            status_err(op::NOOP, 7, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::QUIT, &[], k, &[], 7, 0),
            status_err(op::QUIT, 7, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::VERBOSITY, &[], &[], &[], 8, 0),
            status_err(op::VERBOSITY, 8, status::INVALID_ARGUMENTS),
        ),
        (
            packet(op::STAT, &[0; 4], &[], &[], 9, 0),
            status_err(op::STAT, 9, status::INVALID_ARGUMENTS),
        ),
    ];
    for (wire, expected) in cases {
        let mut two = wire.clone();
        two.extend_from_slice(&packet(op::NOOP, &[], &[], &[], 99, 0));
        assert_eq!(
            decode_all(&two),
            vec![expected, Ok(request(op::NOOP, 99, Command::Noop))]
        );
    }
}

#[test]
fn broken_headers_are_fatal() {
    let mut bad_magic = packet(op::NOOP, &[], &[], &[], 1, 0);
    bad_magic[0] = 0x81;
    assert_eq!(
        decode_all(&bad_magic),
        vec![Err(BinaryError::Fatal("bad magic byte"))]
    );
    assert_eq!(
        decode_all(b"get a\r\n".repeat(4).as_slice()),
        vec![Err(BinaryError::Fatal("bad magic byte"))]
    );
    let mut short_body = packet(op::GET, &[], b"key", &[], 1, 0);
    short_body[11] = 2; // body length 2 < key length 3
    assert_eq!(
        decode_all(&short_body),
        vec![Err(BinaryError::Fatal(
            "key and extras longer than the body"
        ))]
    );
    let mut out = BytesMut::new();
    encode_error(&BinaryError::Fatal("bad magic byte"), &mut out);
    assert!(out.is_empty());
}

#[test]
fn too_large_body_is_skipped_across_calls() {
    let mut decoder = BinaryDecoder::new(limits());
    let wire = packet(op::SETQ, &[0; 8], b"big", &[b'v'; 1000], 5, 0);
    // The refusal waits for the key (24 + 8 + 3 bytes), not for the value.
    let mut buf = BytesMut::from(&wire[..30]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&wire[30..40]);
    let refused = request(
        op::SETQ,
        5,
        Command::TooLarge {
            key: Bytes::from_static(b"big"),
        },
    );
    assert_eq!(decoder.decode(&mut buf), Ok(Some(refused)));
    assert!(buf.is_empty());
    buf.extend_from_slice(&wire[40..500]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert!(buf.is_empty());
    buf.extend_from_slice(&wire[500..]);
    buf.extend_from_slice(&packet(op::GETK, &[], b"k", &[], 6, 0)[..10]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 10);
    buf.extend_from_slice(&packet(op::GETK, &[], b"k", &[], 6, 0)[10..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(request(op::GETK, 6, get("k", None))))
    );
    assert!(buf.is_empty());
}

fn replies(req: &BinaryRequest, outcome: &Outcome) -> Vec<BinaryResponse> {
    let mut out = BytesMut::new();
    encode_reply(req, outcome, &mut out);
    let mut responses = Vec::new();
    while let Some(response) = decode_response(&mut out).unwrap() {
        responses.push(response);
    }
    assert!(out.is_empty(), "trailing bytes after the responses");
    responses
}

fn resp(
    req: &BinaryRequest,
    status: u16,
    cas: u64,
    extras: &[u8],
    key: &str,
    value: &[u8],
) -> BinaryResponse {
    BinaryResponse {
        opcode: req.opcode,
        status,
        opaque: req.opaque,
        cas,
        extras: Bytes::copy_from_slice(extras),
        key: b(key),
        value: Bytes::copy_from_slice(value),
    }
}

#[test]
fn encodes_replies() {
    let hit = Outcome::Values(vec![Some(Hit {
        key: b("k"),
        flags: 7,
        cas: 3,
        value: b("val"),
    })]);
    let miss = Outcome::Values(vec![None]);
    let flags = 7u32.to_be_bytes();
    let g = |opcode| request(opcode, 0x0102_0304, get("k", None));
    let set = |opcode, mode| {
        let command = Command::Store {
            mode,
            key: b("k"),
            flags: 0,
            exptime: 0,
            value: b("v"),
            cas: 0,
        };
        request(opcode, 9, command)
    };
    let arith = |opcode| {
        request(
            opcode,
            9,
            Command::Arith {
                mode: ArithMode::Incr,
                key: b("k"),
                delta: 1,
                initial: None,
            },
        )
    };
    let simple = |opcode, command| request(opcode, 9, command);
    let cases: Vec<(BinaryRequest, Outcome, Vec<BinaryResponse>)> = vec![
        (
            g(op::GET),
            hit.clone(),
            vec![resp(&g(op::GET), 0, 3, &flags, "", b"val")],
        ),
        (
            g(op::GETQ),
            hit.clone(),
            vec![resp(&g(op::GETQ), 0, 3, &flags, "", b"val")],
        ),
        (
            g(op::GETK),
            hit.clone(),
            vec![resp(&g(op::GETK), 0, 3, &flags, "k", b"val")],
        ),
        (
            g(op::GETKQ),
            hit.clone(),
            vec![resp(&g(op::GETKQ), 0, 3, &flags, "k", b"val")],
        ),
        (
            g(op::GAT),
            hit.clone(),
            vec![resp(&g(op::GAT), 0, 3, &flags, "", b"val")],
        ),
        (
            g(op::GATK),
            hit.clone(),
            vec![resp(&g(op::GATK), 0, 3, &flags, "k", b"val")],
        ),
        (
            g(op::GET),
            miss.clone(),
            vec![resp(&g(op::GET), 1, 0, &[], "", b"Not found")],
        ),
        (
            g(op::GAT),
            miss.clone(),
            vec![resp(&g(op::GAT), 1, 0, &[], "", b"Not found")],
        ),
        (
            g(op::GETK),
            miss.clone(),
            vec![resp(&g(op::GETK), 1, 0, &[], "k", b"")],
        ),
        (
            g(op::GATK),
            miss.clone(),
            vec![resp(&g(op::GATK), 1, 0, &[], "k", b"")],
        ),
        (g(op::GETQ), miss.clone(), vec![]),
        (g(op::GETKQ), miss.clone(), vec![]),
        (g(op::GATQ), miss.clone(), vec![]),
        (g(op::GATKQ), miss.clone(), vec![]),
        (
            g(op::GETQ),
            Outcome::OutOfMemory,
            vec![resp(&g(op::GETQ), 0x82, 0, &[], "", b"Out of memory")],
        ),
        (
            set(op::SET, StoreMode::Set),
            Outcome::Stored { cas: 5 },
            vec![resp(&set(op::SET, StoreMode::Set), 0, 5, &[], "", b"")],
        ),
        (
            set(op::SETQ, StoreMode::Set),
            Outcome::Stored { cas: 5 },
            vec![],
        ),
        (
            set(op::SETQ, StoreMode::Set),
            Outcome::Revoked,
            vec![resp(
                &set(op::SETQ, StoreMode::Set),
                0x84,
                0,
                &[],
                "",
                crate::REVOKED.as_bytes(),
            )],
        ),
        (
            set(op::SETQ, StoreMode::Set),
            Outcome::Exists,
            vec![resp(
                &set(op::SETQ, StoreMode::Set),
                2,
                0,
                &[],
                "",
                b"Data exists for key.",
            )],
        ),
        (
            set(op::SET, StoreMode::Set),
            Outcome::NotFound,
            vec![resp(
                &set(op::SET, StoreMode::Set),
                1,
                0,
                &[],
                "",
                b"Not found",
            )],
        ),
        (
            set(op::ADDQ, StoreMode::Add),
            Outcome::NotStored,
            vec![resp(
                &set(op::ADDQ, StoreMode::Add),
                2,
                0,
                &[],
                "",
                b"Data exists for key.",
            )],
        ),
        (
            set(op::REPLACE, StoreMode::Replace),
            Outcome::NotStored,
            vec![resp(
                &set(op::REPLACE, StoreMode::Replace),
                1,
                0,
                &[],
                "",
                b"Not found",
            )],
        ),
        (
            set(op::APPEND, StoreMode::Append),
            Outcome::NotStored,
            vec![resp(
                &set(op::APPEND, StoreMode::Append),
                5,
                0,
                &[],
                "",
                b"Not stored.",
            )],
        ),
        (
            set(op::SET, StoreMode::Set),
            Outcome::TooLarge,
            vec![resp(
                &set(op::SET, StoreMode::Set),
                3,
                0,
                &[],
                "",
                b"Too large.",
            )],
        ),
        (
            set(op::SETQ, StoreMode::Set),
            Outcome::ServerError("journal failed".into()),
            vec![resp(
                &set(op::SETQ, StoreMode::Set),
                0x84,
                0,
                &[],
                "",
                b"journal failed",
            )],
        ),
        (
            simple(
                op::DELETE,
                Command::Delete {
                    key: b("k"),
                    cas: 0,
                },
            ),
            Outcome::Deleted,
            vec![resp(&simple(op::DELETE, Command::Noop), 0, 0, &[], "", b"")],
        ),
        (
            simple(
                op::DELETEQ,
                Command::Delete {
                    key: b("k"),
                    cas: 0,
                },
            ),
            Outcome::Deleted,
            vec![],
        ),
        (
            simple(
                op::DELETEQ,
                Command::Delete {
                    key: b("k"),
                    cas: 0,
                },
            ),
            Outcome::NotFound,
            vec![resp(
                &simple(op::DELETEQ, Command::Noop),
                1,
                0,
                &[],
                "",
                b"Not found",
            )],
        ),
        (
            arith(op::INCREMENT),
            Outcome::Counter {
                value: 0x0102,
                cas: 4,
            },
            vec![resp(
                &arith(op::INCREMENT),
                0,
                4,
                &[],
                "",
                &0x0102u64.to_be_bytes(),
            )],
        ),
        (
            arith(op::INCREMENTQ),
            Outcome::Counter { value: 1, cas: 4 },
            vec![],
        ),
        (
            arith(op::DECREMENT),
            Outcome::NonNumeric,
            vec![resp(
                &arith(op::DECREMENT),
                6,
                0,
                &[],
                "",
                b"Non-numeric server-side value for incr or decr",
            )],
        ),
        (
            simple(
                op::TOUCH,
                Command::Touch {
                    key: b("k"),
                    exptime: 1440,
                },
            ),
            Outcome::Touched { flags: 7, cas: 2 },
            vec![resp(
                &simple(op::TOUCH, Command::Noop),
                0,
                2,
                &flags,
                "",
                b"",
            )],
        ),
        (
            simple(
                op::TOUCH,
                Command::Touch {
                    key: b("k"),
                    exptime: 1440,
                },
            ),
            Outcome::NotFound,
            vec![resp(
                &simple(op::TOUCH, Command::Noop),
                1,
                0,
                &[],
                "",
                b"Not found",
            )],
        ),
        (
            simple(op::FLUSH, Command::FlushAll { delay: 0 }),
            Outcome::Ok,
            vec![resp(&simple(op::FLUSH, Command::Noop), 0, 0, &[], "", b"")],
        ),
        (
            simple(op::FLUSHQ, Command::FlushAll { delay: 0 }),
            Outcome::Ok,
            vec![],
        ),
        (
            simple(op::NOOP, Command::Noop),
            Outcome::Ok,
            vec![resp(&simple(op::NOOP, Command::Noop), 0, 0, &[], "", b"")],
        ),
        (
            simple(op::QUIT, Command::Quit),
            Outcome::Ok,
            vec![resp(&simple(op::QUIT, Command::Noop), 0, 0, &[], "", b"")],
        ),
        (simple(op::QUITQ, Command::Quit), Outcome::Ok, vec![]),
        (
            simple(op::VERSION, Command::Version),
            Outcome::Version("1.6.21".into()),
            vec![resp(
                &simple(op::VERSION, Command::Noop),
                0,
                0,
                &[],
                "",
                b"1.6.21",
            )],
        ),
        (
            simple(op::STAT, Command::Stats(StatsGroup::General)),
            Outcome::Stats(vec![
                ("pid".into(), "12".into()),
                ("uptime".into(), "3".into()),
            ]),
            vec![
                resp(&simple(op::STAT, Command::Noop), 0, 0, &[], "pid", b"12"),
                resp(&simple(op::STAT, Command::Noop), 0, 0, &[], "uptime", b"3"),
                resp(&simple(op::STAT, Command::Noop), 0, 0, &[], "", b""),
            ],
        ),
        (
            simple(op::STAT, Command::Stats(StatsGroup::Reset)),
            Outcome::Ok,
            vec![resp(&simple(op::STAT, Command::Noop), 0, 0, &[], "", b"")],
        ),
        (
            simple(0x42, Command::Unknown),
            Outcome::UnknownCommand,
            vec![resp(
                &simple(0x42, Command::Noop),
                0x81,
                0,
                &[],
                "",
                b"Unknown command",
            )],
        ),
        (
            simple(op::SASL_LIST_MECHS, Command::SaslListMechs),
            Outcome::SaslMechanisms("PLAIN".into()),
            vec![resp(
                &simple(op::SASL_LIST_MECHS, Command::Noop),
                0,
                0,
                &[],
                "",
                b"PLAIN",
            )],
        ),
        (
            simple(op::SASL_AUTH, Command::SaslListMechs),
            Outcome::Authenticated,
            vec![resp(
                &simple(op::SASL_AUTH, Command::Noop),
                0,
                0,
                &[],
                "",
                b"Authenticated",
            )],
        ),
        (
            simple(op::SASL_AUTH, Command::SaslListMechs),
            Outcome::AuthFailed,
            vec![resp(
                &simple(op::SASL_AUTH, Command::Noop),
                0x20,
                0,
                &[],
                "",
                b"Auth failure.",
            )],
        ),
        (
            simple(op::GETK, Command::Noop),
            Outcome::Unauthenticated,
            vec![resp(
                &simple(op::GETK, Command::Noop),
                0x20,
                0,
                &[],
                "",
                b"Auth failure.",
            )],
        ),
        (
            simple(op::FLUSHQ, Command::FlushAll { delay: 0 }),
            Outcome::NotPermitted,
            vec![resp(
                &simple(op::FLUSHQ, Command::Noop),
                0x20,
                0,
                &[],
                "",
                b"Auth failure.",
            )],
        ),
    ];
    for (req, outcome, expected) in cases {
        assert_eq!(replies(&req, &outcome), expected, "{req:?} {outcome:?}");
    }
}

#[test]
fn encodes_status_errors() {
    let err = BinaryError::Status {
        opcode: op::SET,
        opaque: 77,
        status: status::TOO_LARGE,
    };
    let mut out = BytesMut::new();
    encode_error(&err, &mut out);
    let response = decode_response(&mut out).unwrap().unwrap();
    let expected = BinaryResponse {
        opcode: op::SET,
        status: status::TOO_LARGE,
        opaque: 77,
        cas: 0,
        extras: Bytes::new(),
        key: Bytes::new(),
        value: b("Too large."),
    };
    assert_eq!(response, expected);
}

#[test]
fn response_decoder_waits_and_rejects() {
    let mut out = BytesMut::new();
    encode_error(
        &BinaryError::Status {
            opcode: 0,
            opaque: 0,
            status: 1,
        },
        &mut out,
    );
    let full = out.clone();
    let mut partial = BytesMut::from(&full[..full.len() - 1]);
    assert_eq!(decode_response(&mut partial), Ok(None));
    let mut request_magic = full.clone();
    request_magic[0] = 0x80;
    assert_eq!(
        decode_response(&mut request_magic),
        Err(ResponseError("bad magic byte"))
    );
}

// ---- properties ----

fn key() -> impl Strategy<Value = Bytes> {
    let byte = any::<u8>().prop_filter("key byte", |b| *b > b' ' && *b != 0x7f);
    prop_oneof![
        4 => proptest::collection::vec(byte.clone(), 1..20),
        1 => proptest::collection::vec(byte, 1..=250),
    ]
    .prop_map(Bytes::from)
}

fn value() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=64).prop_map(Bytes::from)
}

fn exptime() -> impl Strategy<Value = i64> {
    any::<u32>().prop_map(i64::from)
}

/// Requests the binary protocol can express, built the way the decoder builds them.
fn binary_request() -> impl Strategy<Value = BinaryRequest> {
    let opaque = any::<u32>();
    let gets = prop_oneof![
        Just(op::GET),
        Just(op::GETQ),
        Just(op::GETK),
        Just(op::GETKQ),
        Just(op::GAT),
        Just(op::GATQ),
        Just(op::GATK),
        Just(op::GATKQ),
    ];
    let stores = prop_oneof![
        Just((op::SET, StoreMode::Set)),
        Just((op::SETQ, StoreMode::Set)),
        Just((op::ADD, StoreMode::Add)),
        Just((op::ADDQ, StoreMode::Add)),
        Just((op::REPLACE, StoreMode::Replace)),
        Just((op::REPLACEQ, StoreMode::Replace)),
        Just((op::APPEND, StoreMode::Append)),
        Just((op::APPENDQ, StoreMode::Append)),
        Just((op::PREPEND, StoreMode::Prepend)),
        Just((op::PREPENDQ, StoreMode::Prepend)),
    ];
    let ariths = prop_oneof![
        Just((op::INCREMENT, ArithMode::Incr)),
        Just((op::INCREMENTQ, ArithMode::Incr)),
        Just((op::DECREMENT, ArithMode::Decr)),
        Just((op::DECREMENTQ, ArithMode::Decr)),
    ];
    let stat_name = proptest::collection::vec(any::<u8>(), 0..=250)
        .prop_map(|name| Command::Stats(StatsGroup::named(Bytes::from(name))));
    let initial = proptest::option::of((any::<u64>(), (0..u32::MAX).prop_map(i64::from)));
    let command = prop_oneof![
        (gets, key(), exptime()).prop_map(|(opcode, key, e)| {
            let touch = matches!(opcode, op::GAT | op::GATQ | op::GATK | op::GATKQ).then_some(e);
            (
                opcode,
                Command::Get {
                    keys: vec![key],
                    touch,
                },
            )
        }),
        (
            stores,
            key(),
            any::<u32>(),
            exptime(),
            value(),
            any::<u64>()
        )
            .prop_map(|((opcode, mode), key, flags, exptime, value, cas)| {
                let plain = matches!(mode, StoreMode::Append | StoreMode::Prepend);
                let (flags, exptime) = if plain { (0, 0) } else { (flags, exptime) };
                (
                    opcode,
                    Command::Store {
                        mode,
                        key,
                        flags,
                        exptime,
                        value,
                        cas,
                    },
                )
            }),
        (
            prop_oneof![Just(op::DELETE), Just(op::DELETEQ)],
            key(),
            any::<u64>()
        )
            .prop_map(|(opcode, key, cas)| (opcode, Command::Delete { key, cas })),
        (ariths, key(), any::<u64>(), initial).prop_map(|((opcode, mode), key, delta, initial)| {
            (
                opcode,
                Command::Arith {
                    mode,
                    key,
                    delta,
                    initial,
                },
            )
        }),
        (key(), exptime()).prop_map(|(key, exptime)| (op::TOUCH, Command::Touch { key, exptime })),
        (prop_oneof![Just(op::FLUSH), Just(op::FLUSHQ)], exptime())
            .prop_map(|(opcode, delay)| (opcode, Command::FlushAll { delay })),
        Just((op::VERBOSITY, Command::Verbosity)),
        Just((op::VERSION, Command::Version)),
        Just((op::NOOP, Command::Noop)),
        prop_oneof![Just(op::QUIT), Just(op::QUITQ)].prop_map(|opcode| (opcode, Command::Quit)),
        stat_name.prop_map(|command| (op::STAT, command)),
        Just((op::SASL_LIST_MECHS, Command::SaslListMechs)),
        (
            any::<bool>(),
            "[A-Z0-9_-]{1,32}",
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(step, mechanism, data)| {
                (
                    if step { op::SASL_STEP } else { op::SASL_AUTH },
                    Command::SaslAuth {
                        mechanism: Bytes::from(mechanism),
                        data: Bytes::from(data),
                        step,
                    },
                )
            }),
        prop_oneof![Just(0x42u8), Just(0xff)].prop_map(|opcode| (opcode, Command::Unknown)),
    ];
    (command, opaque).prop_map(|((opcode, command), opaque)| request(opcode, opaque, command))
}

proptest! {
    #[test]
    fn requests_round_trip(reqs in proptest::collection::vec(binary_request(), 1..8), chunk in 1usize..40) {
        let mut wire = BytesMut::new();
        for req in &reqs {
            encode_request(req, &mut wire);
        }
        let (decoded, left) = decode_chunked(&wire, chunk);
        let expected: Vec<Decoded> = reqs.into_iter().map(Ok).collect();
        prop_assert_eq!(decoded, expected);
        prop_assert_eq!(left, 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let whole = decode_chunked(&input, input.len());
        prop_assert_eq!(&whole.0, &decode_chunked(&input, chunk).0);
        let mut buf = BytesMut::from(&input[..]);
        let _ = decode_response(&mut buf);
    }

    /// Headers with the request magic and small lengths reach far more of the decoder than
    /// uniformly random bytes do.
    #[test]
    fn plausible_packets_never_panic(
        packets in proptest::collection::vec(
            (any::<u8>(), 0u8..30, 0usize..40, 0usize..40, any::<u32>()),
            1..6,
        ),
        chunk in 1usize..32,
    ) {
        let mut input = Vec::new();
        for (opcode, extras, key, value, opaque) in packets {
            input.extend_from_slice(&packet(opcode, &vec![0xff; usize::from(extras)], &vec![b'k'; key], &vec![0; value], opaque, 1));
        }
        let whole = decode_chunked(&input, input.len());
        prop_assert_eq!(&whole.0, &decode_chunked(&input, chunk).0);
        for result in whole.0.into_iter().flatten() {
            let mut again = BytesMut::new();
            encode_request(&result, &mut again);
            let (redecoded, _) = decode_chunked(&again, again.len());
            prop_assert_eq!(redecoded, vec![Ok(result)]);
        }
    }

    /// The chunked encoder puts exactly the plain encoder's bytes on the wire, whatever the
    /// request, the outcome and however the writes split it.
    #[test]
    fn chunked_replies_match_plain_replies(
        req in binary_request(),
        outcome in crate::test_support::outcome(),
        write in 1usize..5000,
    ) {
        let mut plain = BytesMut::new();
        encode_reply(&req, &outcome, &mut plain);
        let mut chunks = crate::ReplyChunks::new();
        encode_reply_chunks(&req, &outcome, &mut chunks);
        prop_assert_eq!(chunks.len(), plain.len());
        prop_assert_eq!(crate::test_support::drain(chunks, write), plain.to_vec());
    }
}
