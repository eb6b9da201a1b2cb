//! Wire scripts for the rest of the Redis core (strings, keys, hashes, sets, sorted sets,
//! scans, `OBJECT`, `CONFIG SET` of the encoding parameters, `CLIENT REPLY`/`KILL`, `INFO`):
//! each reply was recorded from redis-server 7.0.15 given the same commands, and the hostile
//! inputs (huge offsets, huge negative counts, oversized `LCS`, forged `RESTORE` payloads)
//! check that a clear error comes back and nothing is built past the limits.

use bytes::Bytes;
use sessiond_proto_resp::Reply;

use super::tests::{run, shared, shared_with};
use super::{Answer, Session, execute};
use crate::config::Config;

const NOW: u64 = 1_800_000_000_000;

#[test]
fn string_commands_answer_as_redis_does() {
    run(
        &shared(),
        r#"
        > SET s hello
        < +OK
        > GETSET s world
        < $5
        < hello
        > GETSET missing v
        < $-1
        > GETRANGE s 0 -1
        < $5
        < world
        > GETRANGE s -3 -1
        < $3
        < rld
        > GETRANGE s 0 4294967297
        < $5
        < world
        > GETRANGE s 5 1
        < $0
        <
        > GETRANGE nokey 0 -1
        < $0
        <
        > SUBSTR s 1 2
        < $2
        < or
        > SETRANGE s 6 there
        < :11
        > SETRANGE fresh 3 ab
        < :5
        > SETRANGE s -1 x
        < -ERR offset is out of range
        > SETRANGE s 9223372036854775807 A
        < -ERR string exceeds maximum allowed size (proto-max-bulk-len)
        > SETRANGE s 2147483647 A
        < -ERR string exceeds maximum allowed size (proto-max-bulk-len)
        > SETRANGE empty 5 ""
        < :0
        > EXISTS empty
        < :0
        > SETBIT b 7 1
        < :0
        > GETBIT b 7
        < :1
        > GETBIT b 100
        < :0
        > SETBIT b 7 0
        < :1
        > SETBIT b 0 2
        < -ERR bit is not an integer or out of range
        > SETBIT b -1 1
        < -ERR bit offset is not an integer or out of range
        > SETBIT b 4294967296 1
        < -ERR bit offset is not an integer or out of range
        > SET f 10.5
        < +OK
        > INCRBYFLOAT f 0.1
        < $4
        < 10.6
        > INCRBYFLOAT f -10.6
        < $1
        < 0
        > SET f 1
        < +OK
        > INCRBYFLOAT f -1.1
        < $4
        < -0.1
        > INCRBYFLOAT f abc
        < -ERR value is not a valid float
        > SET f " 1"
        < +OK
        > INCRBYFLOAT f 1
        < -ERR value is not a valid float
        > SET f 0
        < +OK
        > INCRBYFLOAT f +inf
        < -ERR increment would produce NaN or Infinity
        > HSET h a 1
        < :1
        > INCRBYFLOAT h 1
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > SETRANGE h 0 x
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > GETRANGE h 0 1
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > MSETNX m1 a m2 b
        < :1
        > MSETNX m2 c m3 d
        < :0
        > MGET m1 m2 m3
        < *3
        < $1
        < a
        < $1
        < b
        < $-1
        > MSETNX m1
        < -ERR wrong number of arguments for 'msetnx' command
        > SET v1 ohmytext
        < +OK
        > SET v2 mynewtext
        < +OK
        > LCS v1 v2
        < $6
        < mytext
        > LCS v1 v2 LEN
        < :6
        > LCS v1 v2 IDX MINMATCHLEN 4 WITHMATCHLEN
        < *4
        < $7
        < matches
        < *1
        < *3
        < *2
        < :4
        < :7
        < *2
        < :5
        < :8
        < :4
        < $3
        < len
        < :6
        > LCS v1 v2 LEN IDX
        < -ERR If you want both the length and indexes, please just use IDX.
        > LCS v1 h
        < -ERR The specified keys must contain string values
        "#,
    );
}

#[test]
fn key_commands_answer_as_redis_does() {
    run(
        &shared(),
        r#"
        > SET a 1 EX 100
        < +OK
        > COPY a b
        < :1
        > TTL b
        < :100
        > COPY a b
        < :0
        > COPY a b REPLACE
        < :1
        > COPY a a
        < -ERR source and destination objects are the same
        > COPY a c DB 16
        < -ERR DB index is out of range
        > COPY a c DB x
        < -ERR value is not an integer or out of range
        > COPY nokey c
        < :0
        > COPY a c DB 1
        < :1
        > SELECT 1
        < +OK
        > GET c
        < $1
        < 1
        > SELECT 0
        < +OK
        > SADD s x
        < :1
        > COPY s s2
        < :1
        > SMEMBERS s2
        < *1
        < $1
        < x
        > MOVE s 1
        < :1
        > MOVE s 1
        < :0
        > EXISTS s
        < :0
        > MOVE a 0
        < -ERR source and destination objects are the same
        > TOUCH a b nokey
        < :2
        > FLUSHDB
        < +OK
        > SET a 1
        < +OK
        > OBJECT ENCODING a
        < $3
        < int
        > SET big aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        < +OK
        > OBJECT ENCODING big
        < $3
        < raw
        > SET e abc
        < +OK
        > OBJECT ENCODING e
        < $6
        < embstr
        > SADD is 1 2 3
        < :3
        > OBJECT ENCODING is
        < $6
        < intset
        > SADD ss a
        < :1
        > OBJECT ENCODING ss
        < $9
        < hashtable
        > HSET hh f v
        < :1
        > OBJECT ENCODING hh
        < $8
        < listpack
        > ZADD zz 1 m
        < :1
        > OBJECT ENCODING zz
        < $8
        < listpack
        > CONFIG SET zset-max-ziplist-entries 0
        < +OK
        > CONFIG GET zset-max-listpack-entries
        < *2
        < $25
        < zset-max-listpack-entries
        < $1
        < 0
        > CONFIG SET zset-max-listpack-entries 128
        < +OK
        > CONFIG SET hash-max-ziplist-value abc
        < -ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-value') - argument must be a memory value
        > OBJECT ENCODING nokey
        < $-1
        > OBJECT REFCOUNT a
        < :2147483647
        > OBJECT FOO a
        < -ERR unknown subcommand 'FOO'. Try OBJECT HELP.
        > OBJECT ENCODING
        < -ERR wrong number of arguments for 'object|encoding' command
        > WAIT 0 0
        < :0
        > WAIT 1 -1
        < -ERR timeout is negative
        > RESTORE r 0 garbage
        < -ERR DUMP payload version or checksum are wrong
        > SET d payload
        < +OK
        > EXISTS d
        < :1
        > FLUSHALL
        < +OK
        > RANDOMKEY
        < $-1
        > SET only 1
        < +OK
        > RANDOMKEY
        < $4
        < only
        "#,
    );
}

#[test]
fn hash_and_set_commands_answer_as_redis_does() {
    run(
        &shared(),
        r#"
        > HSETNX h f v
        < :1
        > HSETNX h f w
        < :0
        > HGET h f
        < $1
        < v
        > HSTRLEN h f
        < :1
        > HSTRLEN h nofield
        < :0
        > HSTRLEN nokey f
        < :0
        > HINCRBYFLOAT h n 1.5
        < $3
        < 1.5
        > HINCRBYFLOAT h n 0.1
        < $3
        < 1.6
        > HINCRBYFLOAT h f 1
        < -ERR hash value is not a float
        > HINCRBYFLOAT h n +inf
        < -ERR value is NaN or Infinity
        > HINCRBYFLOAT h n abc
        < -ERR value is not a valid float
        > HRANDFIELD nokey
        < $-1
        > HRANDFIELD nokey 5
        < *0
        > HRANDFIELD h 0
        < *0
        > HRANDFIELD h 1 WITHVALUES foo
        < -ERR syntax error
        > HRANDFIELD h -9223372036854775808 WITHVALUES
        < -ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807
        > HRANDFIELD h x
        < -ERR value is not an integer or out of range
        > HDEL h n
        < :1
        > HRANDFIELD h -3 WITHVALUES
        < *6
        < $1
        < f
        < $1
        < v
        < $1
        < f
        < $1
        < v
        < $1
        < f
        < $1
        < v
        > HRANDFIELD h 5
        < *1
        < $1
        < f
        > SADD s a
        < :1
        > SMISMEMBER s a b
        < *2
        < :1
        < :0
        > SMISMEMBER nokey a
        < *1
        < :0
        > SET str x
        < +OK
        > SMISMEMBER str a
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > SPOP nokey
        < $-1
        > SPOP nokey 3
        < *0
        > SPOP s -1
        < -ERR value is out of range, must be positive
        > SPOP s 0
        < *0
        > SPOP s 5
        < *1
        < $1
        < a
        > EXISTS s
        < :0
        > SADD s a
        < :1
        > SPOP s
        < $1
        < a
        > SADD s1 a b c
        < :3
        > SADD s2 b c d
        < :3
        > SINTER s1 s2 nokey
        < *0
        > SINTERSTORE dst s1 s2
        < :2
        > SCARD dst
        < :2
        > SDIFFSTORE dst s1 s1
        < :0
        > EXISTS dst
        < :0
        > SUNIONSTORE dst s1 str
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > SINTERCARD 2 s1 s2
        < :2
        > SINTERCARD 2 s1 s2 LIMIT 1
        < :1
        > SINTERCARD 0 s1
        < -ERR numkeys should be greater than 0
        > SINTERCARD 3 s1 s2
        < -ERR Number of keys can't be greater than number of args
        > SINTERCARD 2 s1 s2 LIMIT -1
        < -ERR LIMIT can't be negative
        > SINTERCARD 2 s1 s2 LIMIT
        < -ERR syntax error
        > SADD one x
        < :1
        > SMOVE one two x
        < :1
        > SMOVE one two x
        < :0
        > SMEMBERS two
        < *1
        < $1
        < x
        > SMOVE two str x
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > SRANDMEMBER two -3
        < *3
        < $1
        < x
        < $1
        < x
        < $1
        < x
        > SRANDMEMBER nokey 2
        < *0
        > SRANDMEMBER nokey
        < $-1
        > SSCAN two 0
        < *2
        < $1
        < 0
        < *1
        < $1
        < x
        > SSCAN two 0 COUNT 0
        < -ERR syntax error
        > SSCAN two abc
        < -ERR invalid cursor
        > HSCAN h 0 MATCH f*
        < *2
        < $1
        < 0
        < *2
        < $1
        < f
        < $1
        < v
        > ZADD z 1 m
        < :1
        > ZSCAN z 0
        < *2
        < $1
        < 0
        < *2
        < $1
        < m
        < $1
        < 1
        > SSCAN str 0
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        "#,
    );
}

#[test]
fn sorted_set_commands_answer_as_redis_does() {
    run(
        &shared(),
        r#"
        > ZADD z 1 a 2 b 3 c 4 d
        < :4
        > ZRANGE z 0 -1 WITHSCORES
        < *8
        < $1
        < a
        < $1
        < 1
        < $1
        < b
        < $1
        < 2
        < $1
        < c
        < $1
        < 3
        < $1
        < d
        < $1
        < 4
        > ZRANGE z 1 2 REV
        < *2
        < $1
        < c
        < $1
        < b
        > ZRANGE z (1 3 BYSCORE LIMIT 0 1
        < *1
        < $1
        < b
        > ZRANGE z 3 (1 BYSCORE REV WITHSCORES
        < *4
        < $1
        < c
        < $1
        < 3
        < $1
        < b
        < $1
        < 2
        > ZRANGE z 0 -1 LIMIT 0 1
        < -ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX
        > ZRANGE z - + BYLEX WITHSCORES
        < -ERR syntax error, WITHSCORES not supported in combination with BYLEX
        > ZRANGE z [b (d BYLEX
        < *2
        < $1
        < b
        < $1
        < c
        > ZRANGE z + - BYLEX REV LIMIT 1 1
        < *1
        < $1
        < c
        > ZRANGE z a b BYLEX
        < -ERR min or max not valid string range item
        > ZRANGE z x 1 BYSCORE
        < -ERR min or max is not a float
        > ZRANGE z 0 x
        < -ERR value is not an integer or out of range
        > ZREVRANGE z 0 1 WITHSCORES
        < *4
        < $1
        < d
        < $1
        < 4
        < $1
        < c
        < $1
        < 3
        > ZRANGEBYLEX z - [b
        < *2
        < $1
        < a
        < $1
        < b
        > ZREVRANGEBYLEX z + (b
        < *2
        < $1
        < d
        < $1
        < c
        > ZLEXCOUNT z [b +
        < :3
        > ZCOUNT z (1 +inf
        < :3
        > ZCOUNT z x 1
        < -ERR min or max is not a float
        > ZRANK z c
        < :2
        > ZREVRANK z c
        < :1
        > ZRANK z nomember
        < $-1
        > ZMSCORE z a nomember
        < *2
        < $1
        < 1
        < $-1
        > ZINCRBY z 1.5 a
        < $3
        < 2.5
        > ZINCRBY z x a
        < -ERR value is not a valid float
        > ZADD z INCR 1 a
        < $3
        < 3.5
        > ZADD z INCR 1 a 2 b
        < -ERR INCR option supports a single increment-element pair
        > ZADD z NX INCR 1 a
        < $-1
        > ZADD z XX INCR 1 new
        < $-1
        > ZADD inf 0 +inf
        < :1
        > ZINCRBY inf -inf +inf
        < $4
        < -inf
        > ZRANGESTORE dst z 0 1
        < :2
        > ZRANGE dst 0 -1
        < *2
        < $1
        < b
        < $1
        < c
        > ZRANGESTORE dst z 10 20
        < :0
        > EXISTS dst
        < :0
        > ZRANGESTORE dst z 0 1 WITHSCORES
        < -ERR syntax error
        > ZPOPMIN z
        < *2
        < $1
        < b
        < $1
        < 2
        > ZPOPMAX z 2
        < *4
        < $1
        < d
        < $1
        < 4
        < $1
        < a
        < $3
        < 3.5
        > ZPOPMIN z -1
        < -ERR value is out of range, must be positive
        > ZPOPMIN nokey
        < *0
        > ZMPOP 1 z MIN COUNT 10
        < *2
        < $1
        < z
        < *1
        < *2
        < $1
        < c
        < $1
        < 3
        > ZMPOP 1 z MIN
        < *-1
        > ZMPOP 0 z MIN
        < -ERR numkeys should be greater than 0
        > ZMPOP 1 z MIN COUNT 0
        < -ERR count should be greater than 0
        > ZMPOP 1 z FOO
        < -ERR syntax error
        > ZADD z1 1 a 2 b
        < :2
        > ZADD z2 10 b 20 c
        < :2
        > ZUNION 2 z1 z2 WITHSCORES
        < *6
        < $1
        < a
        < $1
        < 1
        < $1
        < b
        < $2
        < 12
        < $1
        < c
        < $2
        < 20
        > ZINTER 2 z1 z2 WEIGHTS 1 2 AGGREGATE MAX WITHSCORES
        < *2
        < $1
        < b
        < $2
        < 20
        > ZDIFF 2 z1 z2
        < *1
        < $1
        < a
        > ZUNIONSTORE out 2 z1 z2 WEIGHTS 1 x
        < -ERR weight value is not a float
        > ZUNIONSTORE out 2 z1 z2 AGGREGATE MIN
        < :3
        > ZRANGE out 0 -1 WITHSCORES
        < *6
        < $1
        < a
        < $1
        < 1
        < $1
        < b
        < $1
        < 2
        < $1
        < c
        < $2
        < 20
        > ZINTERCARD 2 z1 z2
        < :1
        > ZINTERCARD 0 z1
        < -ERR at least 1 input key is needed for 'zintercard' command
        > ZUNION 0 z1
        < -ERR at least 1 input key is needed for 'zunion' command
        > ZUNION 3 z1
        < -ERR syntax error
        > ZREMRANGEBYSCORE out 2 2
        < :1
        > ZREMRANGEBYRANK out 0 0
        < :1
        > ZREMRANGEBYLEX out - +
        < :1
        > EXISTS out
        < :0
        > ZRANDMEMBER z1 0
        < *0
        > ZRANDMEMBER nokey 1
        < *0
        > ZRANDMEMBER nokey
        < $-1
        > BZPOPMIN z1 0
        < *3
        < $2
        < z1
        < $1
        < a
        < $1
        < 1
        > BZPOPMAX z1 -1
        < -ERR timeout is negative
        > BZMPOP 0 1 z1 MAX
        < *2
        < $2
        < z1
        < *1
        < *2
        < $1
        < b
        < $1
        < 2
        > BZPOPMIN z1 x
        < -ERR timeout is not a float or out of range
        "#,
    );
}

/// Offsets and counts a client can make huge are refused before anything is allocated or
/// built: `SETRANGE`/`SETBIT` past `--max-item-size`, a negative `SRANDMEMBER`,
/// `HRANDFIELD` or `ZRANDMEMBER` count whose reply would pass the output limit, and an
/// `LCS` whose table would pass its cap; the connection keeps working after each.
#[test]
fn hostile_sizes_are_refused() {
    let shared = shared_with(Config {
        max_item_size: 1024,
        client_output_limit: 64 * 1024,
        ..Config::default()
    });
    let limit = format!(
        "< -ERR reply exceeds the output limit of {} bytes",
        64 * 1024
    );
    let long = "x".repeat(5000);
    run(
        &shared,
        &format!(
            r#"
        > SETRANGE k 1024 x
        < -ERR string exceeds maximum allowed size (proto-max-bulk-len)
        > SETRANGE k 1023 x
        < :1024
        > SETRANGE k 4294967295 x
        < -ERR string exceeds maximum allowed size (proto-max-bulk-len)
        > SETBIT b 8192 1
        < -ERR string exceeds maximum allowed size (proto-max-bulk-len)
        > SETBIT b 8191 1
        < :0
        > SADD s a
        < :1
        > SRANDMEMBER s -9223372036854775807
        {limit}
        > HSET h f v
        < :1
        > HRANDFIELD h -100000000 WITHVALUES
        {limit}
        > ZADD z 1 m
        < :1
        > ZRANDMEMBER z -100000000 WITHSCORES
        {limit}
        > ZRANDMEMBER z -9223372036854775807 WITHSCORES
        < -ERR value is out of range
        > SPOP s 9223372036854775807
        < *1
        < $1
        < a
        > SET l1 {long}
        < +OK
        > SET l2 {long}
        < +OK
        > LCS l1 l2 LEN
        < -ERR LCS of strings this long needs a table of 25010001 cells, more than the 4194304 allowed
        > STRLEN k
        < :1024
"#
        ),
    );
}

/// `DUMP` of a value whose payload would pass the output limit is refused before the
/// payload is built; smaller values still dump, and the connection keeps working.
#[test]
fn dump_past_the_output_limit_is_refused() {
    let shared = shared_with(Config {
        client_output_limit: 64 * 1024,
        ..Config::default()
    });
    let mut session = Session::new(&shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    let field = vec![b'v'; 1000];
    for i in 0..100 {
        let name = format!("f{i}");
        call(
            &shared,
            &mut session,
            &[b"HSET", b"big", name.as_bytes(), field.as_slice()],
        );
    }
    call(&shared, &mut session, &[b"HSET", b"small", b"f", b"v"]);
    match call(&shared, &mut session, &[b"DUMP", b"big"]) {
        Reply::Error(e) => assert_eq!(
            &e[..],
            format!("ERR reply exceeds the output limit of {} bytes", 64 * 1024).as_bytes()
        ),
        other => panic!("DUMP of a 100 KB hash answered {other:?}"),
    }
    assert!(matches!(
        call(&shared, &mut session, &[b"DUMP", b"small"]),
        Reply::Bulk(_)
    ));
}

/// `MSETNX` whose later write is refused (out of memory) leaves none of its keys written.
#[test]
fn msetnx_refused_part_way_writes_nothing() {
    let shared = shared_with(Config {
        max_memory: 64 * 1024,
        ..Config::default()
    });
    let mut session = Session::new(&shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    let huge = vec![b'x'; 100 * 1024];
    let reply = call(
        &shared,
        &mut session,
        &[b"MSETNX", b"k1", b"small", b"k2", huge.as_slice()],
    );
    assert!(
        matches!(&reply, Reply::Error(e) if e.starts_with(b"OOM")),
        "{reply:?}"
    );
    assert!(matches!(
        call(&shared, &mut session, &[b"EXISTS", b"k1", b"k2"]),
        Reply::Integer(0)
    ));
    assert!(matches!(
        call(
            &shared,
            &mut session,
            &[b"MSETNX", b"k1", b"a", b"k2", b"b"]
        ),
        Reply::Integer(1)
    ));
}

/// Runs one command on `session` and returns its reply.
fn call(shared: &crate::exec::Shared, session: &mut Session, args: &[&[u8]]) -> Reply {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    match execute(shared, session, &args, NOW).answer {
        Answer::One(reply) => reply,
        Answer::Many(_) => panic!("one reply expected"),
    }
}

/// `DUMP` and `RESTORE` round-trip every type with its deadline; a payload that was
/// tampered with, cut short, or made by something else is refused with Redis's error and
/// changes nothing, and `RESTORE` onto an existing key needs `REPLACE`.
#[test]
fn dump_and_restore_round_trip_and_refuse_forged_payloads() {
    let shared = shared();
    let mut session = Session::new(&shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    let s = &mut session;
    call(&shared, s, &[b"HSET", b"h", b"f", b"v", b"g", b"w"]);
    call(&shared, s, &[b"ZADD", b"z", b"1.5", b"m"]);
    call(&shared, s, &[b"SET", b"str", b"value", b"PX", b"5000"]);
    for key in [&b"h"[..], b"z", b"str"] {
        let Reply::Bulk(payload) = call(&shared, s, &[b"DUMP", key]) else {
            panic!("DUMP of an existing key is a bulk string");
        };
        let copy = [key, b"-copy"].concat();
        assert_eq!(
            call(&shared, s, &[b"RESTORE", &copy, b"0", &payload]),
            Reply::ok()
        );
        assert_eq!(
            call(&shared, s, &[b"RESTORE", &copy, b"0", &payload]),
            Reply::Error(Bytes::from_static(
                b"BUSYKEY Target key name already exists."
            ))
        );
        assert_eq!(
            call(
                &shared,
                s,
                &[b"RESTORE", &copy, b"1000", &payload, b"REPLACE"]
            ),
            Reply::ok()
        );
        assert_eq!(call(&shared, s, &[b"PTTL", &copy]), Reply::Integer(1000));
        let wrong = Reply::Error(Bytes::from_static(
            b"ERR DUMP payload version or checksum are wrong",
        ));
        let mut flipped = payload.to_vec();
        flipped[1] ^= 1;
        let cut = &payload[..payload.len() - 1];
        for forged in [&flipped[..], cut, b"", b"\x0b\x00redis payload"] {
            assert_eq!(
                call(&shared, s, &[b"RESTORE", b"forged", b"0", forged]),
                wrong
            );
        }
        assert_eq!(call(&shared, s, &[b"EXISTS", b"forged"]), Reply::Integer(0));
    }
    assert_eq!(
        call(&shared, s, &[b"HGET", b"h-copy", b"g"]),
        Reply::Bulk(Bytes::from_static(b"w"))
    );
    assert_eq!(
        call(&shared, s, &[b"RESTORE", b"x", b"-1", b"p"]),
        Reply::Error(Bytes::from_static(b"ERR Invalid TTL value, must be >= 0"))
    );
    assert_eq!(call(&shared, s, &[b"DUMP", b"missing"]), Reply::Null);
}

/// `CLIENT REPLY OFF` and `SKIP` silence replies in the connection, not in the glue: the
/// glue still answers; the session says which replies to drop.
#[test]
fn client_reply_modes_say_which_replies_to_drop() {
    let shared = shared();
    let mut session = Session::new(&shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    let s = &mut session;
    assert_eq!(
        call(&shared, s, &[b"CLIENT", b"REPLY", b"SKIP"]),
        Reply::ok()
    );
    assert!(s.drop_reply(), "SKIP's own reply is dropped");
    call(&shared, s, &[b"SET", b"a", b"1"]);
    assert!(s.drop_reply(), "and the next command's");
    call(&shared, s, &[b"GET", b"a"]);
    assert!(!s.drop_reply(), "then replies come back");
    call(&shared, s, &[b"CLIENT", b"REPLY", b"OFF"]);
    for _ in 0..3 {
        assert!(s.drop_reply());
    }
    call(&shared, s, &[b"CLIENT", b"REPLY", b"ON"]);
    assert!(!s.drop_reply());
    assert_eq!(
        call(&shared, s, &[b"CLIENT", b"REPLY", b"MAYBE"]),
        Reply::Error(Bytes::from_static(b"ERR syntax error"))
    );
}

/// Two connections from 127.0.0.1 ports 1 (`me`) and 2, registered as `CLIENT LIST` and
/// `CLIENT KILL` see them.
fn two_clients(shared: &crate::exec::Shared) -> (Session, Session) {
    let me = Session::new(shared, "127.0.0.1:1".into(), "127.0.0.1:9".into(), NOW);
    let other = Session::new(shared, "127.0.0.1:2".into(), "127.0.0.1:9".into(), NOW);
    let mut clients = shared.resp.clients.lock().unwrap();
    for session in [&me, &other] {
        clients.insert(session.id, session.info.clone());
    }
    drop(clients);
    (me, other)
}

/// `CLIENT KILL`'s filters: a connection is marked killed (the connection driver closes it
/// on the mark); `SKIPME` spares the caller by default; bad filters get Redis's errors.
#[test]
fn client_kill_filters() {
    let shared = shared();
    let (mut me, other) = two_clients(&shared);
    let id = other.id.to_string();
    let err = |text: &'static str| Reply::Error(Bytes::from_static(text.as_bytes()));
    assert_eq!(
        call(&shared, &mut me, &[b"CLIENT", b"KILL", b"ID", b"0"]),
        err("ERR client-id should be greater than 0")
    );
    assert_eq!(
        call(&shared, &mut me, &[b"CLIENT", b"KILL", b"TYPE", b"nope"]),
        err("ERR Unknown client type 'nope'")
    );
    assert_eq!(
        call(
            &shared,
            &mut me,
            &[b"CLIENT", b"KILL", b"ID", b"1", b"SKIPME"]
        ),
        err("ERR syntax error")
    );
    assert_eq!(
        call(&shared, &mut me, &[b"CLIENT", b"KILL", b"127.0.0.1:7"]),
        err("ERR No such client")
    );
    assert_eq!(
        call(
            &shared,
            &mut me,
            &[b"CLIENT", b"KILL", b"LADDR", b"127.0.0.1:9"]
        ),
        Reply::Integer(1),
        "SKIPME yes by default"
    );
    assert!(other.info.is_killed() && !me.info.is_killed());
    assert_eq!(
        call(
            &shared,
            &mut me,
            &[b"CLIENT", b"KILL", b"ID", id.as_bytes(), b"SKIPME", b"no"]
        ),
        Reply::Integer(1)
    );
    assert_eq!(
        call(
            &shared,
            &mut me,
            &[
                b"CLIENT",
                b"KILL",
                b"ADDR",
                b"127.0.0.1:1",
                b"SKIPME",
                b"no"
            ]
        ),
        Reply::Integer(1)
    );
    assert!(me.info.is_killed());
}

/// `CLIENT LIST`'s filters: `TYPE pubsub` is the connections with a subscription (flag `P`,
/// their `sub`/`psub` counts shown to every connection), `ID` takes several ids, and bad
/// filters get Redis's errors.
#[test]
fn client_list_filters() {
    let shared = shared();
    let (mut me, mut other) = two_clients(&shared);
    call(&shared, &mut other, &[b"HELLO", b"3"]);
    let psubscribe: Vec<Bytes> = ["PSUBSCRIBE", "a*", "b*"].map(Bytes::from).to_vec();
    execute(&shared, &mut other, &psubscribe, NOW);
    let list = |me: &mut Session, args: &[&[u8]]| match call(&shared, me, args) {
        Reply::Verbatim { text, .. } => String::from_utf8(text.to_vec()).unwrap(),
        other => panic!("CLIENT LIST answered {other:?}"),
    };
    let pubsub = list(&mut me, &[b"CLIENT", b"LIST", b"TYPE", b"PubSub"]);
    assert!(
        pubsub.starts_with(&format!("id={} ", other.id)) && pubsub.lines().count() == 1,
        "{pubsub}"
    );
    assert!(
        pubsub.contains(" flags=P ")
            && pubsub.contains(" sub=0 psub=2 ")
            && pubsub.contains(" resp=3 "),
        "{pubsub}"
    );
    let normal = list(&mut me, &[b"CLIENT", b"LIST", b"TYPE", b"normal"]);
    assert!(normal.starts_with(&format!("id={} ", me.id)) && normal.contains(" flags=N "));
    assert_eq!(list(&mut me, &[b"CLIENT", b"LIST", b"TYPE", b"master"]), "");
    let ids = format!("{}", other.id);
    let both = list(
        &mut me,
        &[b"CLIENT", b"LIST", b"ID", b"99999", ids.as_bytes()],
    );
    assert_eq!(both, pubsub);
    let err = |text: &'static str| Reply::Error(Bytes::from_static(text.as_bytes()));
    for (args, error) in [
        (
            &[&b"CLIENT"[..], b"LIST", b"TYPE", b"nope"][..],
            "ERR Unknown client type 'nope'",
        ),
        (&[b"CLIENT", b"LIST", b"ID", b"x"], "ERR Invalid client ID"),
        (&[b"CLIENT", b"LIST", b"ID"], "ERR syntax error"),
        (
            &[b"CLIENT", b"LIST", b"TYPE", b"normal", b"ID", b"1"],
            "ERR syntax error",
        ),
    ] {
        assert_eq!(call(&shared, &mut me, args), err(error), "{args:?}");
    }
    // PUNSUBSCRIBE from everything: a normal connection again.
    execute(&shared, &mut other, &[Bytes::from("PUNSUBSCRIBE")], NOW);
    assert_eq!(list(&mut me, &[b"CLIENT", b"LIST", b"TYPE", b"pubsub"]), "");
    assert_eq!(
        call(&shared, &mut me, &[b"CLIENT", b"KILL", b"TYPE", b"pubsub"]),
        Reply::Integer(0)
    );
}

/// `INFO` has Redis's sections, with the fields exporters read.
#[test]
fn info_has_redis_sections() {
    let shared = shared();
    let mut session = Session::new(&shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    call(&shared, &mut session, &[b"SET", b"a", b"1"]);
    let text = match call(&shared, &mut session, &[b"INFO", b"everything"]) {
        Reply::Verbatim { text, .. } => String::from_utf8(text.to_vec()).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    for field in [
        "# Server",
        "redis_version:7.0.15",
        "uptime_in_seconds:",
        "# Clients",
        "connected_clients:",
        "blocked_clients:0",
        "# Memory",
        "used_memory:",
        "maxmemory_policy:noeviction",
        "# Persistence",
        "rdb_last_bgsave_status:ok",
        "# Stats",
        "total_commands_processed:",
        "instantaneous_ops_per_sec:",
        "total_net_input_bytes:",
        "# Replication",
        "role:master",
        "connected_slaves:0",
        "master_repl_offset:0",
        "# CPU",
        "used_cpu_sys:",
        "used_cpu_user:",
        "# Commandstats",
        "cmdstat_set:calls=1,",
        "# Keyspace",
        "db0:keys=1",
    ] {
        assert!(text.contains(field), "INFO lacks {field:?}:\n{text}");
    }
    let default = match call(&shared, &mut session, &[b"INFO"]) {
        Reply::Verbatim { text, .. } => String::from_utf8(text.to_vec()).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    assert!(default.contains("# CPU") && !default.contains("# Commandstats"));
}

/// `FLUSHALL`/`FLUSHDB` fail only the transactions watching a key that existed, as in
/// Redis (recorded from redis-server 7.0.15).
#[test]
fn a_flush_fails_only_transactions_watching_a_key_that_existed() {
    run(
        &shared(),
        r#"
        > WATCH x
        < +OK
        > FLUSHALL
        < +OK
        > MULTI
        < +OK
        > PING
        < +QUEUED
        > EXEC
        < *1
        < +PONG
        > SET y 1
        < +OK
        > WATCH y
        < +OK
        > FLUSHDB
        < +OK
        > MULTI
        < +OK
        > PING
        < +QUEUED
        > EXEC
        < *-1
        "#,
    );
}
