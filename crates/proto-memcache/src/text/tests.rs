//! Wire tests for the text codec: decoding tables (each case also checked fed one byte at a
//! time), reply encoding tables, swallow/resync, the client side, and property tests.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::{ArithMode, Command, Hit, Limits, Outcome, StatsGroup, StoreMode};

type Decoded = Result<TextRequest, TextError>;

fn limits() -> Limits {
    Limits {
        max_key_len: 250,
        max_value_len: 64,
        max_line_len: 4096,
        max_keys: 8,
    }
}

/// Every result the decoder produces for `input` delivered in chunks of `chunk` bytes, until
/// it needs more input after the last chunk or fails fatally; plus the bytes left undecoded.
fn decode_chunked(input: &[u8], chunk: usize) -> (Vec<Decoded>, usize) {
    let mut decoder = TextDecoder::new(limits());
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(req)) => results.push(Ok(req)),
                Ok(None) => break,
                Err(err @ TextError::Fatal(_)) => {
                    results.push(Err(err));
                    return (results, buf.len());
                }
                Err(err) => results.push(Err(err)),
            }
        }
    }
    (results, buf.len())
}

/// Decodes all at once, checks that one byte at a time gives the same, and returns the results.
fn decode_all(input: &[u8]) -> Vec<Decoded> {
    let whole = decode_chunked(input, input.len());
    let bytewise = decode_chunked(input, 1);
    assert_eq!(
        whole.0,
        bytewise.0,
        "chunking changed the result for {:?}",
        Bytes::copy_from_slice(input)
    );
    // After a fatal error the leftovers depend on where the decoder gave up.
    if !matches!(whole.0.last(), Some(Err(TextError::Fatal(_)))) {
        assert_eq!(whole.1, bytewise.1);
    }
    whole.0
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn req(command: Command) -> Decoded {
    Ok(TextRequest {
        command,
        noreply: false,
        with_cas: false,
        more: false,
    })
}

fn quiet(command: Command) -> Decoded {
    Ok(TextRequest {
        command,
        noreply: true,
        with_cas: false,
        more: false,
    })
}

fn get(keys: &[&str]) -> Command {
    Command::Get {
        keys: keys.iter().map(|k| b(k)).collect(),
        touch: None,
    }
}

fn store(mode: StoreMode, key: &str, flags: u32, exptime: i64, value: &str, cas: u64) -> Command {
    Command::Store {
        mode,
        key: b(key),
        flags,
        exptime,
        value: b(value),
        cas,
    }
}

const BAD: TextError = TextError::Client("bad command line format");

#[test]
fn decodes_every_command() {
    use StoreMode::*;
    let long_key = "k".repeat(250);
    let too_long_key = "k".repeat(251);
    let cases: Vec<(String, Vec<Decoded>)> = vec![
        ("get a\r\n".into(), vec![req(get(&["a"]))]),
        ("get a b  c\r\n".into(), vec![req(get(&["a", "b", "c"]))]),
        ("get a\n".into(), vec![req(get(&["a"]))]),
        (
            "gets a b\r\n".into(),
            vec![Ok(TextRequest {
                command: get(&["a", "b"]),
                noreply: false,
                with_cas: true,
                more: false,
            })],
        ),
        (
            "gat 10 a b\r\n".into(),
            vec![req(Command::Get {
                keys: vec![b("a"), b("b")],
                touch: Some(10),
            })],
        ),
        (
            "gats -1 a\r\n".into(),
            vec![Ok(TextRequest {
                command: Command::Get {
                    keys: vec![b("a")],
                    touch: Some(-1),
                },
                noreply: false,
                with_cas: true,
                more: false,
            })],
        ),
        (format!("get {long_key}\r\n"), vec![req(get(&[&long_key]))]),
        (format!("get {too_long_key}\r\n"), vec![Err(BAD)]),
        ("get a\x01b\r\n".into(), vec![Err(BAD)]),
        (
            // More keys than a batch holds: served in two batches, the first without `END`.
            "get 1 2 3 4 5 6 7 8 9\r\n".into(),
            vec![
                Ok(TextRequest {
                    command: get(&["1", "2", "3", "4", "5", "6", "7", "8"]),
                    noreply: false,
                    with_cas: false,
                    more: true,
                }),
                req(get(&["9"])),
            ],
        ),
        ("get\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        ("gets \r\n".into(), vec![Err(TextError::UnknownCommand)]),
        // memcached: a `gat` naming no key is an empty reply; a bad exptime is refused first.
        (
            "gat 10\r\n".into(),
            vec![req(Command::Get {
                keys: vec![],
                touch: Some(10),
            })],
        ),
        (
            "gat abc\r\n".into(),
            vec![Err(TextError::Client("invalid exptime argument"))],
        ),
        (
            "gat x a\r\n".into(),
            vec![Err(TextError::Client("invalid exptime argument"))],
        ),
        (
            "set k 5 60 3\r\nabc\r\n".into(),
            vec![req(store(Set, "k", 5, 60, "abc", 0))],
        ),
        (
            "set k 0 0 3 noreply\r\nabc\r\n".into(),
            vec![quiet(store(Set, "k", 0, 0, "abc", 0))],
        ),
        (
            "set k 0 0 3 junk\r\nabc\r\n".into(),
            vec![req(store(Set, "k", 0, 0, "abc", 0))],
        ),
        (
            "set k 0 -1 0\r\n\r\n".into(),
            vec![req(store(Set, "k", 0, -1, "", 0))],
        ),
        (
            "set k 4294967295 0 4\r\na\r\nb\r\n".into(),
            vec![req(store(Set, "k", u32::MAX, 0, "a\r\nb", 0))],
        ),
        (
            "add k 0 0 1\r\n1\r\n".into(),
            vec![req(store(Add, "k", 0, 0, "1", 0))],
        ),
        // PHP's strict-mode probe.
        (
            "add memc.sess.key.unknownsidP0 0 2678400 0\r\n\r\n".into(),
            vec![req(store(
                Add,
                "memc.sess.key.unknownsidP0",
                0,
                2678400,
                "",
                0,
            ))],
        ),
        (
            "replace k 0 0 1 noreply\r\nx\r\n".into(),
            vec![quiet(store(Replace, "k", 0, 0, "x", 0))],
        ),
        (
            "append k 0 0 1\r\nx\r\n".into(),
            vec![req(store(Append, "k", 0, 0, "x", 0))],
        ),
        (
            "prepend k 0 0 1\r\nx\r\n".into(),
            vec![req(store(Prepend, "k", 0, 0, "x", 0))],
        ),
        (
            "cas k 1 2 1 99\r\nx\r\n".into(),
            vec![req(store(Set, "k", 1, 2, "x", 99))],
        ),
        (
            "cas k 1 2 1 99 noreply\r\nx\r\n".into(),
            vec![quiet(store(Set, "k", 1, 2, "x", 99))],
        ),
        ("set k 0 0\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        (
            "set k 0 0 1 noreply extra\r\n".into(),
            vec![Err(TextError::UnknownCommand)],
        ),
        (
            "cas k 0 0 1\r\n".into(),
            vec![Err(TextError::UnknownCommand)],
        ),
        // A negative or absurd length: no block can be swallowed, the next line is a command.
        (
            "set k 0 0 -1\r\nget a\r\n".into(),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        ("set k 0 0 2147483648\r\n".into(), vec![Err(BAD)]),
        ("set k 0 0 x\r\n".into(), vec![Err(BAD)]),
        // Bad flags, exptime, cas or key with a good length: the block is swallowed.
        (
            "set k x 0 1\r\nz\r\nget a\r\n".into(),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        (
            "set k -1 0 1\r\nz\r\nget a\r\n".into(),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        (
            "set k -1 0 1\r\nz\r\nget a\r\n".into(),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        (
            "set k 0 1x 1\r\nz\r\nget a\r\n".into(),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        (
            "cas k 0 0 1 -5\r\nz\r\nget a\r\n".into(),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        (
            format!("set {too_long_key} 0 0 1\r\nz\r\nget a\r\n"),
            vec![Err(BAD), req(get(&["a"]))],
        ),
        // Too large (limit 64 here): swallowed, then in sync again.
        (
            format!("set k 0 0 65\r\n{}\r\nget a\r\n", "v".repeat(65)),
            vec![req(Command::TooLarge { key: b("k") }), req(get(&["a"]))],
        ),
        (
            // Only a plain `set` removes the old value; the others just refuse.
            format!("add k 0 0 65\r\n{}\r\nget a\r\n", "v".repeat(65)),
            vec![Err(TextError::TooLarge), req(get(&["a"]))],
        ),
        (
            format!("set k 0 0 64\r\n{}\r\n", "v".repeat(64)),
            vec![req(store(Set, "k", 0, 0, &"v".repeat(64), 0))],
        ),
        (
            "set k 0 0 1\r\nxy\r\nget a\r\n".into(),
            vec![
                Err(TextError::Client("bad data chunk")),
                Err(TextError::UnknownCommand),
                req(get(&["a"])),
            ],
        ),
        (
            "delete k\r\n".into(),
            vec![req(Command::Delete {
                key: b("k"),
                cas: 0,
            })],
        ),
        (
            "delete k 0\r\n".into(),
            vec![req(Command::Delete {
                key: b("k"),
                cas: 0,
            })],
        ),
        (
            "delete k noreply\r\n".into(),
            vec![quiet(Command::Delete {
                key: b("k"),
                cas: 0,
            })],
        ),
        (
            "delete k 0 noreply\r\n".into(),
            vec![quiet(Command::Delete {
                key: b("k"),
                cas: 0,
            })],
        ),
        ("delete\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        (
            "delete a b c d e\r\n".into(),
            vec![Err(TextError::UnknownCommand)],
        ),
        (
            "delete a b\r\n".into(),
            vec![Err(TextError::Client(
                "bad command line format.  Usage: delete <key> [noreply]",
            ))],
        ),
        (
            "delete a noreply 0\r\n".into(),
            vec![Err(TextError::Client(
                "bad command line format.  Usage: delete <key> [noreply]",
            ))],
        ),
        (format!("delete {too_long_key}\r\n"), vec![Err(BAD)]),
        (
            "incr n 5\r\n".into(),
            vec![req(Command::Arith {
                mode: ArithMode::Incr,
                key: b("n"),
                delta: 5,
                initial: None,
            })],
        ),
        (
            "decr n 18446744073709551615 noreply\r\n".into(),
            vec![quiet(Command::Arith {
                mode: ArithMode::Decr,
                key: b("n"),
                delta: u64::MAX,
                initial: None,
            })],
        ),
        (
            "incr n -1\r\n".into(),
            vec![Err(TextError::Client("invalid numeric delta argument"))],
        ),
        (
            "incr n 18446744073709551616\r\n".into(),
            vec![Err(TextError::Client("invalid numeric delta argument"))],
        ),
        ("incr n\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        (
            "touch k 1440\r\n".into(),
            vec![req(Command::Touch {
                key: b("k"),
                exptime: 1440,
            })],
        ),
        (
            "touch k 1440 noreply\r\n".into(),
            vec![quiet(Command::Touch {
                key: b("k"),
                exptime: 1440,
            })],
        ),
        (
            "touch k soon\r\n".into(),
            vec![Err(TextError::Client("invalid exptime argument"))],
        ),
        ("touch k\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        (
            "flush_all\r\n".into(),
            vec![req(Command::FlushAll { delay: 0 })],
        ),
        (
            "flush_all 10\r\n".into(),
            vec![req(Command::FlushAll { delay: 10 })],
        ),
        (
            "flush_all noreply\r\n".into(),
            vec![quiet(Command::FlushAll { delay: 0 })],
        ),
        (
            "flush_all 10 noreply\r\n".into(),
            vec![quiet(Command::FlushAll { delay: 10 })],
        ),
        // memcached's words for a bad delay; a second argument is ignored.
        (
            "flush_all soon\r\n".into(),
            vec![Err(TextError::Client("invalid exptime argument"))],
        ),
        (
            "flush_all 1 2\r\n".into(),
            vec![req(Command::FlushAll { delay: 1 })],
        ),
        (
            "flush_all 1 2 3\r\n".into(),
            vec![Err(TextError::UnknownCommand)],
        ),
        ("version\r\n".into(), vec![req(Command::Version)]),
        // memccapable's verbosity forms.
        (
            "verbosity foo bar my\r\n".into(),
            vec![Err(TextError::UnknownCommand)],
        ),
        (
            "verbosity noreply\r\n".into(),
            vec![quiet(Command::Verbosity)],
        ),
        (
            "verbosity 0 noreply\r\n".into(),
            vec![quiet(Command::Verbosity)],
        ),
        ("verbosity 1\r\n".into(), vec![req(Command::Verbosity)]),
        ("verbosity\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        (
            "stats\r\n".into(),
            vec![req(Command::Stats(StatsGroup::General))],
        ),
        (
            "stats settings\r\n".into(),
            vec![req(Command::Stats(StatsGroup::Settings))],
        ),
        (
            "stats items\r\n".into(),
            vec![req(Command::Stats(StatsGroup::Items))],
        ),
        (
            "stats slabs\r\n".into(),
            vec![req(Command::Stats(StatsGroup::Slabs))],
        ),
        (
            "stats conns\r\n".into(),
            vec![req(Command::Stats(StatsGroup::Conns))],
        ),
        (
            "stats reset\r\n".into(),
            vec![req(Command::Stats(StatsGroup::Reset))],
        ),
        (
            "stats noreply\r\n".into(),
            vec![req(Command::Stats(StatsGroup::Other(b("noreply"))))],
        ),
        (
            "stats cachedump  1 10 \r\n".into(),
            vec![req(Command::Stats(StatsGroup::Other(b("cachedump  1 10"))))],
        ),
        ("quit\r\n".into(), vec![req(Command::Quit)]),
        ("mn\r\n".into(), vec![req(Command::Noop)]),
        (
            "journal rewrite\r\n".into(),
            vec![req(Command::JournalRewrite)],
        ),
        (
            "journal\r\njournal rewrite now\r\njournal flush\r\n".into(),
            vec![Err(TextError::Client("usage: journal rewrite")); 3],
        ),
        ("mx k v\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        ("mg\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        ("me\r\n".into(), vec![Err(BAD)]),
        (
            "mg k v v\r\n".into(),
            vec![Err(TextError::Client("duplicate flag"))],
        ),
        (
            "mg k !\r\n".into(),
            vec![Err(TextError::Client("invalid flag"))],
        ),
        (
            "mg k Tx\r\n".into(),
            vec![Err(TextError::Client("bad token in command line format"))],
        ),
        (
            "md k Tx\r\n".into(),
            vec![Err(TextError::Client("invalid or duplicate flag"))],
        ),
        (
            "ma k MX\r\n".into(),
            vec![Err(TextError::Client("invalid mode for ma M token"))],
        ),
        (
            "mg !!!! b\r\n".into(),
            vec![Err(TextError::Client("error decoding key"))],
        ),
        (
            format!("mg k O{}\r\n", "o".repeat(32)),
            vec![Err(TextError::Client("opaque token too long"))],
        ),
        (
            format!("mg k{}\r\n", " v".repeat(18)),
            vec![Err(TextError::Client("options flags are too long"))],
        ),
        // A flag error after ms's length swallows the block; a bad length cannot.
        (
            "ms k 2 MX\r\nab\r\nmn\r\n".into(),
            vec![
                Err(TextError::Client("invalid mode for ms M token")),
                req(Command::Noop),
            ],
        ),
        (
            "ms k x\r\nmn\r\n".into(),
            vec![Err(BAD), req(Command::Noop)],
        ),
        (
            format!("ms k 65 T0\r\n{}\r\nmn\r\n", "v".repeat(65)),
            vec![req(Command::TooLarge { key: b("k") }), req(Command::Noop)],
        ),
        ("GET a\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        ("\r\n".into(), vec![Err(TextError::UnknownCommand)]),
        ("   \r\n".into(), vec![Err(TextError::UnknownCommand)]),
        // Pipelined.
        (
            "set a 0 0 1 noreply\r\n1\r\nget a\r\nversion\r\n".into(),
            vec![
                quiet(store(Set, "a", 0, 0, "1", 0)),
                req(get(&["a"])),
                req(Command::Version),
            ],
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(decode_all(input.as_bytes()), expected, "input {input:?}");
    }
}

#[test]
fn decodes_meta_commands() {
    use crate::meta::{MetaFlags, MetaRequest, MetaVerb};
    let meta = |verb, key: &str, base64, value: &str, flags| {
        req(Command::Meta(Box::new(MetaRequest {
            verb,
            key: b(key),
            base64,
            value: b(value),
            flags,
        })))
    };
    let cases = [
        (
            "mg foo v k c t f s h l Oab q u T30 N-1 R5\r\n",
            meta(
                MetaVerb::Get,
                "foo",
                false,
                "",
                MetaFlags {
                    order: b"vkctfshlOquTNR".to_vec(),
                    opaque: Some(b("Oab")),
                    quiet: true,
                    value: true,
                    no_bump: true,
                    ttl: Some(30),
                    vivify: Some(-1),
                    recache: Some(5),
                    ..MetaFlags::default()
                },
            ),
        ),
        (
            "ms Zm9v 3 b F7 T+9 C12 I MA c k\r\nabc\r\n",
            meta(
                MetaVerb::Set(StoreMode::Append),
                "foo",
                true,
                "abc",
                MetaFlags {
                    order: b"bFTCIMck".to_vec(),
                    client_flags: Some(7),
                    ttl: Some(9),
                    cas: Some(12),
                    invalidate: true,
                    mode: b'A',
                    ..MetaFlags::default()
                },
            ),
        ),
        (
            "ma n MD D5 J10 N0 v\r\n",
            meta(
                MetaVerb::Arith(ArithMode::Decr),
                "n",
                false,
                "",
                MetaFlags {
                    order: b"MDJNv".to_vec(),
                    mode: b'D',
                    delta: Some(5),
                    initial: Some(10),
                    vivify: Some(0),
                    value: true,
                    ..MetaFlags::default()
                },
            ),
        ),
        (
            "md k I T0 q\r\n",
            meta(
                MetaVerb::Delete,
                "k",
                false,
                "",
                MetaFlags {
                    order: b"ITq".to_vec(),
                    invalidate: true,
                    ttl: Some(0),
                    quiet: true,
                    ..MetaFlags::default()
                },
            ),
        ),
        (
            "me Zm9v b\r\n",
            meta(MetaVerb::Debug, "foo", true, "", MetaFlags::default()),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            decode_all(input.as_bytes()),
            vec![expected],
            "input {input:?}"
        );
    }
}

#[test]
fn encodes_meta_replies() {
    use crate::meta::{MetaItem, MetaOutcome, MetaStatus};
    let reply = |line: &str, outcome: MetaOutcome| {
        let mut buf = BytesMut::from(line.as_bytes());
        let request = TextDecoder::new(limits())
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        let mut out = BytesMut::new();
        encode_reply(&request, &Outcome::Meta(outcome), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    };
    let item = MetaItem {
        value: b("hello"),
        flags: 3,
        cas: 99,
        ttl: Some(20),
        last_access: 4,
        fetched: true,
        stale: true,
        token_sent: false,
        won: true,
    };
    let done = |item: &MetaItem| MetaOutcome {
        status: MetaStatus::Done,
        item: Some(item.clone()),
    };
    assert_eq!(
        reply("mg k s v t c f Oxy k h l\r\n", done(&item)),
        "VA 5 s5 t20 c99 f3 Oxy kk h1 l4 X W\r\nhello\r\n"
    );
    assert_eq!(reply("mg k\r\n", done(&item)), "HD X W\r\n");
    assert_eq!(
        reply("mg Zm9v b k\r\n", MetaOutcome::bare(MetaStatus::Miss)),
        "EN kZm9v b\r\n"
    );
    assert_eq!(reply("mg k q\r\n", MetaOutcome::bare(MetaStatus::Miss)), "");
    assert_eq!(reply("ms k 1 c q\r\nv\r\n", done(&item)), "");
    assert_eq!(
        reply(
            "ms k 1 c O1\r\nv\r\n",
            MetaOutcome::bare(MetaStatus::NotStored)
        ),
        "NS c0 O1\r\n"
    );
    assert_eq!(
        reply("md k q O1\r\n", MetaOutcome::bare(MetaStatus::NotFound)),
        "NF O1\r\n"
    );
    assert_eq!(
        reply(
            "ma k v t c\r\n",
            done(&MetaItem {
                value: b("12"),
                ttl: None,
                ..item.clone()
            })
        ),
        "VA 2 t-1 c99\r\n12\r\n"
    );
    assert_eq!(
        reply("me k\r\n", done(&item)),
        "ME k exp=20 la=4 cas=99 fetch=yes cls=1 size=6\r\n"
    );
    assert_eq!(
        reply("me k\r\n", MetaOutcome::bare(MetaStatus::Miss)),
        "EN\r\n"
    );
}

#[test]
fn streams_a_get_longer_than_a_line() {
    // 600 keys of 4 bytes: 3000 bytes of keys, under the 4096-byte line limit; then a line of
    // 20,000 keys, far over it. Batches hold at most 8 keys and every key comes out once, in
    // order; only the last batch ends the reply.
    for count in [600usize, 20_000] {
        let keys: Vec<String> = (0..count).map(|i| format!("{i:04x}")).collect();
        let input = format!("gets {}\r\nmn\r\n", keys.join(" "));
        let results = decode_all(input.as_bytes());
        let (last, batches) = results.split_last().unwrap();
        assert_eq!(last, &req(Command::Noop));
        let mut seen = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            let Ok(TextRequest {
                command: Command::Get { keys, touch: None },
                with_cas: true,
                more,
                ..
            }) = batch
            else {
                panic!("not a batch: {batch:?}");
            };
            assert!(keys.len() <= limits().max_keys);
            assert_eq!(*more, i + 1 < batches.len());
            seen.extend(keys.iter().map(|k| String::from_utf8(k.to_vec()).unwrap()));
        }
        assert_eq!(seen, keys);
    }
}

#[test]
fn incomplete_input_waits() {
    // A storage line is consumed as soon as it is complete; only its block is then awaited.
    let cases = [
        ("", 0),
        ("get a", 5),
        ("get a\r", 6),
        ("set k 0 0 3\r\n", 0),
        ("set k 0 0 3\r\nab", 2),
        ("set k 0 0 3\r\nabc\r", 4),
    ];
    for (input, left) in cases {
        assert_eq!(
            decode_chunked(input.as_bytes(), 1),
            (vec![], left),
            "{input:?}"
        );
        assert_eq!(
            decode_chunked(input.as_bytes(), 100),
            (vec![], left),
            "{input:?}"
        );
    }
}

#[test]
fn overlong_line_is_fatal_once_it_passes_the_limit() {
    let limit = limits().max_line_len;
    // Exactly at the limit, including the line ending: fine.
    let fits = format!("set {} 0 0 1\r\n", "k".repeat(limit - 12));
    assert_eq!(fits.len(), limit);
    assert_eq!(decode_all(fits.as_bytes()), vec![Err(BAD)]); // key is too long, line is not
    // One byte more, with or without its ending: fatal.
    let over = format!("set {} 0 0 1\r\n", "k".repeat(limit - 11));
    assert_eq!(
        decode_all(over.as_bytes()),
        vec![Err(TextError::Fatal("line too long"))]
    );
    // A get that long is streamed instead; a key longer than the window is still refused,
    // and the rest of its line dropped.
    let over = format!("get {}\r\nversion\r\n", "k".repeat(limit));
    assert_eq!(
        decode_all(over.as_bytes()),
        vec![Err(BAD), req(Command::Version)]
    );
    let unended = "x".repeat(limit);
    assert_eq!(
        decode_all(unended.as_bytes()),
        vec![Err(TextError::Fatal("line too long"))]
    );
    assert_eq!(decode_all(&unended.as_bytes()[..limit - 1]), vec![]);
}

#[test]
fn too_large_value_is_swallowed_across_calls() {
    let mut decoder = TextDecoder::new(limits());
    let value = "v".repeat(100);
    let mut buf = BytesMut::from(&b"set big 0 0 100 noreply\r\nvvvvv"[..]);
    // A set refused as too large removes the old value: the glue gets to act on it.
    let refused = TextRequest {
        command: Command::TooLarge {
            key: Bytes::from_static(b"big"),
        },
        noreply: true,
        with_cas: false,
        more: false,
    };
    assert_eq!(decoder.decode(&mut buf), Ok(Some(refused)));
    assert!(
        buf.is_empty(),
        "the available part of the block is dropped at once"
    );
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&value.as_bytes()[5..60]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert!(buf.is_empty());
    buf.extend_from_slice(&value.as_bytes()[60..]);
    buf.extend_from_slice(b"\r");
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\nget a\r\n");
    assert_eq!(decoder.decode(&mut buf), req(get(&["a"])).map(Some));
    assert!(buf.is_empty());
}

#[test]
fn values_are_split_off_without_copying() {
    let mut decoder = TextDecoder::new(limits());
    let mut buf = BytesMut::from(&b"set k 0 0 3\r\nabc\r\n"[..]);
    let start = buf.as_ptr() as usize;
    let Ok(Some(TextRequest {
        command: Command::Store { key, value, .. },
        ..
    })) = decoder.decode(&mut buf)
    else {
        panic!("expected a store");
    };
    assert_eq!(key.as_ptr() as usize, start + 4);
    assert_eq!(value.as_ptr() as usize, start + 13);
}

fn reply(req: &TextRequest, outcome: Outcome) -> String {
    let mut out = BytesMut::new();
    encode_reply(req, &outcome, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn hit(key: &str, flags: u32, cas: u64, value: &str) -> Option<Hit> {
    Some(Hit {
        key: b(key),
        flags,
        cas,
        value: b(value),
    })
}

#[test]
fn encodes_replies() {
    let plain = |command| TextRequest {
        command,
        noreply: false,
        with_cas: false,
        more: false,
    };
    let get_ab = plain(get(&["a", "b", "c"]));
    let gets_ab = TextRequest {
        with_cas: true,
        more: false,
        ..get_ab.clone()
    };
    let set = plain(store(StoreMode::Set, "k", 0, 0, "v", 0));
    let set_noreply = TextRequest {
        noreply: true,
        ..set.clone()
    };
    let incr = plain(Command::Arith {
        mode: ArithMode::Incr,
        key: b("n"),
        delta: 1,
        initial: None,
    });
    let cases: Vec<(TextRequest, Outcome, &str)> = vec![
        // memcached's authentication replies, sent even for `noreply` (its auth path ignores
        // it: an unauthenticated client must hear so).
        (set.clone(), Outcome::Authenticated, "STORED\r\n"),
        (set_noreply.clone(), Outcome::Authenticated, "STORED\r\n"),
        (
            set_noreply.clone(),
            Outcome::AuthFailed,
            "CLIENT_ERROR authentication failure\r\n",
        ),
        (
            get_ab.clone(),
            Outcome::Unauthenticated,
            "CLIENT_ERROR unauthenticated\r\n",
        ),
        (
            set.clone(),
            Outcome::ClientError("bad authentication token format"),
            "CLIENT_ERROR bad authentication token format\r\n",
        ),
        (
            plain(Command::FlushAll { delay: 0 }),
            Outcome::NotPermitted,
            "CLIENT_ERROR flush_all not allowed\r\n",
        ),
        (
            plain(Command::JournalRewrite),
            Outcome::NotPermitted,
            "CLIENT_ERROR journal rewrite not allowed\r\n",
        ),
        (
            get_ab.clone(),
            Outcome::Values(vec![hit("a", 5, 7, "xy"), None, hit("c", 0, 8, "")]),
            "VALUE a 5 2\r\nxy\r\nVALUE c 0 0\r\n\r\nEND\r\n",
        ),
        (
            gets_ab.clone(),
            Outcome::Values(vec![hit("a", 5, 7, "xy"), None, None]),
            "VALUE a 5 2 7\r\nxy\r\nEND\r\n",
        ),
        (
            get_ab.clone(),
            Outcome::Values(vec![None, None, None]),
            "END\r\n",
        ),
        (set.clone(), Outcome::Stored { cas: 1 }, "STORED\r\n"),
        (set.clone(), Outcome::NotStored, "NOT_STORED\r\n"),
        (set.clone(), Outcome::Exists, "EXISTS\r\n"),
        (set.clone(), Outcome::NotFound, "NOT_FOUND\r\n"),
        (
            set.clone(),
            Outcome::OutOfMemory,
            "SERVER_ERROR out of memory storing object\r\n",
        ),
        (
            set.clone(),
            Outcome::TooLarge,
            "SERVER_ERROR object too large for cache\r\n",
        ),
        (
            set.clone(),
            Outcome::Revoked,
            "SERVER_ERROR this session was revoked and stays revoked until it would have expired\r\n",
        ),
        (
            set.clone(),
            Outcome::ServerError("journal\r\nfailed".into()),
            "SERVER_ERROR journal  failed\r\n",
        ),
        (set_noreply.clone(), Outcome::Stored { cas: 1 }, ""),
        (set_noreply.clone(), Outcome::OutOfMemory, ""),
        (
            plain(Command::Delete {
                key: b("k"),
                cas: 0,
            }),
            Outcome::Deleted,
            "DELETED\r\n",
        ),
        (
            plain(Command::Touch {
                key: b("k"),
                exptime: 1,
            }),
            Outcome::Touched { flags: 0, cas: 1 },
            "TOUCHED\r\n",
        ),
        (
            incr.clone(),
            Outcome::Counter {
                value: 18446744073709551615,
                cas: 2,
            },
            "18446744073709551615\r\n",
        ),
        (incr.clone(), Outcome::Counter { value: 0, cas: 2 }, "0\r\n"),
        (
            incr.clone(),
            Outcome::NonNumeric,
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (plain(Command::FlushAll { delay: 0 }), Outcome::Ok, "OK\r\n"),
        (plain(Command::Verbosity), Outcome::Ok, "OK\r\n"),
        (
            plain(Command::Version),
            Outcome::Version("1.6.21-sessiond".into()),
            "VERSION 1.6.21-sessiond\r\n",
        ),
        (
            plain(Command::Stats(StatsGroup::General)),
            Outcome::Stats(vec![
                ("pid".into(), "1".into()),
                ("version".into(), "1.0 x".into()),
            ]),
            "STAT pid 1\r\nSTAT version 1.0 x\r\nEND\r\n",
        ),
        (
            plain(Command::Stats(StatsGroup::Reset)),
            Outcome::Ok,
            "RESET\r\n",
        ),
        (
            plain(Command::Stats(StatsGroup::Other(b("noreply")))),
            Outcome::UnknownCommand,
            "ERROR\r\n",
        ),
        (plain(Command::Noop), Outcome::Ok, "MN\r\n"),
        (plain(Command::Quit), Outcome::Ok, ""),
    ];
    for (req, outcome, expected) in cases {
        assert_eq!(
            reply(&req, outcome.clone()),
            expected,
            "{req:?} {outcome:?}"
        );
    }
}

#[test]
fn encodes_errors() {
    let cases = [
        (TextError::UnknownCommand, "ERROR\r\n"),
        (BAD, "CLIENT_ERROR bad command line format\r\n"),
        (
            TextError::TooLarge,
            "SERVER_ERROR object too large for cache\r\n",
        ),
        (
            TextError::Fatal("line too long"),
            "CLIENT_ERROR line too long\r\n",
        ),
    ];
    for (err, expected) in cases {
        let mut out = BytesMut::new();
        encode_error(&err, &mut out);
        assert_eq!(&out[..], expected.as_bytes());
    }
}

#[test]
fn encodes_requests() {
    let r = |command, noreply, with_cas| TextRequest {
        command,
        noreply,
        with_cas,
        more: false,
    };
    let cases = [
        (r(get(&["a", "b"]), false, true), "gets a b\r\n"),
        (
            r(
                Command::Get {
                    keys: vec![b("a")],
                    touch: Some(-5),
                },
                false,
                false,
            ),
            "gat -5 a\r\n",
        ),
        (
            r(store(StoreMode::Set, "k", 1, 2, "v", 3), true, false),
            "cas k 1 2 1 3 noreply\r\nv\r\n",
        ),
        (
            r(store(StoreMode::Add, "k", 0, 0, "", 3), false, false),
            "add k 0 0 0\r\n\r\n",
        ),
        (
            r(
                Command::Delete {
                    key: b("k"),
                    cas: 9,
                },
                true,
                false,
            ),
            "delete k noreply\r\n",
        ),
        (
            r(Command::FlushAll { delay: 0 }, true, false),
            "flush_all noreply\r\n",
        ),
        (
            r(Command::Stats(StatsGroup::Slabs), false, false),
            "stats slabs\r\n",
        ),
        (
            r(Command::Verbosity, true, false),
            "verbosity 0 noreply\r\n",
        ),
        (r(Command::Unknown, false, false), ""),
    ];
    for (req, expected) in cases {
        let mut out = BytesMut::new();
        encode_request(&req, &mut out);
        assert_eq!(&out[..], expected.as_bytes(), "{req:?}");
    }
}

#[test]
fn decodes_replies() {
    type Case = (&'static str, Result<Option<TextReply>, ReplyError>, usize);
    let cases: Vec<Case> = vec![
        ("STORED\r\n", Ok(Some(TextReply::Status(b("STORED")))), 0),
        ("STORED\r", Ok(None), 7),
        ("42\r\nEND\r\n", Ok(Some(TextReply::Number(42))), 5),
        ("END\r\n", Ok(Some(TextReply::Values(vec![]))), 0),
        (
            "VALUE a 1 2 9\r\nxy\r\nVALUE b 0 0\r\n\r\nEND\r\n",
            Ok(Some(TextReply::Values(vec![
                TextValue {
                    key: b("a"),
                    flags: 1,
                    cas: Some(9),
                    value: b("xy"),
                },
                TextValue {
                    key: b("b"),
                    flags: 0,
                    cas: None,
                    value: b(""),
                },
            ]))),
            0,
        ),
        ("VALUE a 1 2\r\nxy\r\nEN", Ok(None), 19),
        ("VALUE a 1 4\r\nxy", Ok(None), 15),
        (
            "VALUE a 1 2\r\nxyz\r\n",
            Err(ReplyError("data block not terminated by \\r\\n")),
            18,
        ),
        (
            "VALUE a x 2\r\nxy\r\nEND\r\n",
            Err(ReplyError("malformed VALUE line")),
            22,
        ),
        (
            "STAT pid 1\r\nSTAT version 1.0 x\r\nEND\r\n",
            Ok(Some(TextReply::Stats(vec![
                (b("pid"), b("1")),
                (b("version"), b("1.0 x")),
            ]))),
            0,
        ),
        (
            "STAT pid 1\r\nSTORED\r\n",
            Err(ReplyError("expected STAT or END")),
            20,
        ),
    ];
    for (input, expected, left) in cases {
        let mut buf = BytesMut::from(input.as_bytes());
        assert_eq!(decode_reply(&mut buf), expected, "{input:?}");
        assert_eq!(buf.len(), left, "{input:?}");
    }
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

fn stats_group() -> impl Strategy<Value = StatsGroup> {
    prop_oneof![
        Just(StatsGroup::General),
        Just(StatsGroup::Settings),
        Just(StatsGroup::Items),
        Just(StatsGroup::Slabs),
        Just(StatsGroup::Conns),
        Just(StatsGroup::Reset),
        "[a-z]{1,8}( [a-z0-9]{1,4}){0,2}"
            .prop_filter("not a named group", |s| {
                !matches!(&s[..], "settings" | "items" | "slabs" | "conns" | "reset")
            })
            .prop_map(|s| StatsGroup::Other(Bytes::from(s))),
    ]
}

/// Requests the text protocol can express, built the way the decoder builds them.
fn text_request() -> impl Strategy<Value = TextRequest> {
    let store_mode = prop_oneof![
        Just(StoreMode::Set),
        Just(StoreMode::Add),
        Just(StoreMode::Replace),
        Just(StoreMode::Append),
        Just(StoreMode::Prepend),
    ];
    let arith_mode = prop_oneof![Just(ArithMode::Incr), Just(ArithMode::Decr)];
    let r = |command, noreply, with_cas| TextRequest {
        command,
        noreply,
        with_cas,
        more: false,
    };
    prop_oneof![
        (
            proptest::collection::vec(key(), 1..=8),
            proptest::option::of(any::<i32>().prop_map(i64::from)),
            any::<bool>()
        )
            .prop_map(move |(keys, touch, with_cas)| r(
                Command::Get { keys, touch },
                false,
                with_cas
            )),
        (
            store_mode,
            key(),
            any::<u32>(),
            any::<i32>().prop_map(i64::from),
            value(),
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(move |(mode, key, flags, exptime, value, cas, noreply)| {
                let cas = if mode == StoreMode::Set { cas } else { 0 };
                r(
                    Command::Store {
                        mode,
                        key,
                        flags,
                        exptime,
                        value,
                        cas,
                    },
                    noreply,
                    false,
                )
            }),
        (key(), any::<bool>()).prop_map(move |(key, noreply)| r(
            Command::Delete { key, cas: 0 },
            noreply,
            false
        )),
        (arith_mode, key(), any::<u64>(), any::<bool>()).prop_map(
            move |(mode, key, delta, noreply)| {
                r(
                    Command::Arith {
                        mode,
                        key,
                        delta,
                        initial: None,
                    },
                    noreply,
                    false,
                )
            }
        ),
        (key(), any::<i32>().prop_map(i64::from), any::<bool>()).prop_map(
            move |(key, exptime, noreply)| r(Command::Touch { key, exptime }, noreply, false)
        ),
        (any::<i32>().prop_map(i64::from), any::<bool>()).prop_map(move |(delay, noreply)| r(
            Command::FlushAll { delay },
            noreply,
            false
        )),
        Just(r(Command::Version, false, false)),
        any::<bool>().prop_map(move |noreply| r(Command::Verbosity, noreply, false)),
        stats_group().prop_map(move |g| r(Command::Stats(g), false, false)),
        Just(r(Command::Noop, false, false)),
        Just(r(Command::Quit, false, false)),
        Just(r(Command::JournalRewrite, false, false)),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(reqs in proptest::collection::vec(text_request(), 1..8), chunk in 1usize..40) {
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
        let chunked = decode_chunked(&input, chunk);
        prop_assert_eq!(whole.0, chunked.0);
        let mut buf = BytesMut::from(&input[..]);
        let _ = decode_reply(&mut buf);
    }

    #[test]
    fn plausible_garbage_never_panics(
        lines in proptest::collection::vec(
            "(get|gets|gat|set|cas|add|delete|incr|touch|flush_all|verbosity|stats|mn)( [a-z0-9-]{0,3}){0,7}\r?\n[a-z\r\n]{0,4}",
            1..6,
        ),
        chunk in 1usize..16,
    ) {
        let input = lines.concat();
        let whole = decode_chunked(input.as_bytes(), input.len());
        prop_assert_eq!(whole.0, decode_chunked(input.as_bytes(), chunk).0);
    }

    #[test]
    fn value_replies_round_trip(
        hits in proptest::collection::vec(proptest::option::of((key(), any::<u32>(), any::<u64>(), value())), 1..6),
        with_cas in any::<bool>(),
    ) {
        let hits: Vec<Option<Hit>> = hits
            .into_iter()
            .map(|h| h.map(|(key, flags, cas, value)| Hit { key, flags, cas, value }))
            .collect();
        let keys = hits.iter().flatten().map(|h| h.key.clone()).collect();
        let req = TextRequest { command: Command::Get { keys, touch: None }, noreply: false, with_cas, more: false };
        let mut wire = BytesMut::new();
        encode_reply(&req, &Outcome::Values(hits.clone()), &mut wire);
        let expected: Vec<TextValue> = hits
            .into_iter()
            .flatten()
            .map(|h| TextValue { key: h.key, flags: h.flags, cas: with_cas.then_some(h.cas), value: h.value })
            .collect();
        prop_assert_eq!(decode_reply(&mut wire), Ok(Some(TextReply::Values(expected))));
        prop_assert!(wire.is_empty());
    }

    /// The chunked encoder puts exactly the plain encoder's bytes on the wire, whatever the
    /// request, the outcome and however the writes split it.
    #[test]
    fn chunked_replies_match_plain_replies(
        req in text_request(),
        outcome in crate::test_support::outcome(),
        write in 1usize..5000,
    ) {
        let mut plain = BytesMut::new();
        encode_reply(&req, &outcome, &mut plain);
        let mut chunks = crate::ReplyChunks::new();
        // Something already queued ahead, as in a pipelined batch.
        chunks.buf_mut().extend_from_slice(b"STORED\r\n");
        encode_reply_chunks(&req, &outcome, &mut chunks);
        prop_assert_eq!(chunks.len(), plain.len() + 8);
        let wire = crate::test_support::drain(chunks, write);
        prop_assert_eq!(&wire[..8], b"STORED\r\n");
        prop_assert_eq!(&wire[8..], &plain[..]);
    }
}
