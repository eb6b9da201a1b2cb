//! Wire-script tests of the RESP glue: real request bytes through the codec's decoder,
//! [`execute`], and the encoder of the connection's protocol, compared byte for byte with
//! the replies Redis 7.0 sends (checked against a real `redis-server` when written).
//!
//! A script is a list of lines: `> COMMAND args…` sends an inline request (quotes work as
//! in `redis-cli`), `< …` is one expected reply line (the `\r\n` is implied), `@ +ms`
//! moves the clock, `# …` is a comment. Each family of commands has its own script.

use std::sync::Arc;

use bytes::BytesMut;
use sessiond_proto_resp::{Decoder, Limits, encode};
use sessiond_store::{Budget, Store};

use super::{Answer, Session, execute};
use crate::DATABASES;
use crate::config::Config;
use crate::exec::Shared;

const NOW: u64 = 1_800_000_000_000;

pub(super) fn shared_with(config: Config) -> Shared {
    let budget = Arc::new(Budget::new(config.max_memory));
    let stores = (0..DATABASES)
        .map(|_| Arc::new(Store::new(budget.clone(), NOW)))
        .collect();
    Shared::new(stores, None, config, Default::default(), None)
}

pub(super) fn shared() -> Shared {
    shared_with(Config::default())
}

/// Runs `script` on a fresh connection of `shared`; panics at the first reply that differs.
pub(super) fn run(shared: &Shared, script: &str) -> Session {
    let mut session = Session::new(shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    let mut now = NOW;
    let mut decoder = Decoder::new(Limits::default());
    let mut pending: Option<(String, BytesMut)> = None;
    let mut expected = String::new();
    let check = |pending: &mut Option<(String, BytesMut)>, expected: &mut String| {
        if let Some((command, actual)) = pending.take() {
            let actual = String::from_utf8_lossy(&actual).into_owned();
            assert_eq!(
                actual.escape_debug().to_string(),
                expected.escape_debug().to_string(),
                "reply to `{command}`"
            );
        }
        expected.clear();
    };
    for line in script.lines().map(str::trim_start) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(command) = line.strip_prefix("> ") {
            check(&mut pending, &mut expected);
            let mut input = BytesMut::from(format!("{command}\r\n").as_bytes());
            let request = decoder
                .decode(&mut input)
                .expect("well-framed")
                .expect("complete");
            let mut out = BytesMut::new();
            match execute(shared, &mut session, &request.args, now).answer {
                Answer::One(reply) => encode(&reply, session.protocol, &mut out),
                Answer::Many(replies) => {
                    for reply in &replies {
                        encode(reply, session.protocol, &mut out);
                    }
                }
            }
            pending = Some((command.to_string(), out));
        } else if let Some(reply) = line.strip_prefix("< ") {
            expected.push_str(reply);
            expected.push_str("\r\n");
        } else if line == "<" {
            expected.push_str("\r\n");
        } else if let Some(ms) = line.strip_prefix("@ +") {
            now += ms.parse::<u64>().expect("milliseconds");
        } else {
            panic!("bad script line {line:?}");
        }
    }
    check(&mut pending, &mut expected);
    session
}

#[test]
fn connection_commands() {
    run(
        &shared(),
        r#"
        > PING
        < +PONG
        > PING hello
        < $5
        < hello
        > ECHO "a b"
        < $3
        < a b
        > SELECT 15
        < +OK
        > SELECT 16
        < -ERR DB index is out of range
        > SELECT x
        < -ERR value is not an integer or out of range
        > AUTH x
        < -ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?
        > AUTH u x
        < -WRONGPASS invalid username-password pair or user is disabled.
        > CLIENT SETNAME app
        < +OK
        > CLIENT GETNAME
        < $3
        < app
        > CLIENT SETINFO LIB-NAME node-redis
        < +OK
        > CLIENT SETINFO LIB-VER 6.3.1
        < +OK
        > CLIENT MAINT_NOTIFICATIONS ON
        < -ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.
        > CLIENT ID
        < :1
        > FOO a b
        < -ERR unknown command 'FOO', with args beginning with: 'a' 'b' 
        > FOO
        < -ERR unknown command 'FOO', with args beginning with: 
        > GET
        < -ERR wrong number of arguments for 'get' command
        > HELLO 4
        < -NOPROTO unsupported protocol version
        > HELLO 3
        < %7
        < $6
        < server
        < $5
        < redis
        < $7
        < version
        < $6
        < 7.0.15
        < $5
        < proto
        < :3
        < $2
        < id
        < :1
        < $4
        < mode
        < $10
        < standalone
        < $4
        < role
        < $6
        < master
        < $7
        < modules
        < *0
        > GET missing
        < _
        > HELLO 2
        < *14
        < $6
        < server
        < $5
        < redis
        < $7
        < version
        < $6
        < 7.0.15
        < $5
        < proto
        < :2
        < $2
        < id
        < :1
        < $4
        < mode
        < $10
        < standalone
        < $4
        < role
        < $6
        < master
        < $7
        < modules
        < *0
        > GET missing
        < $-1
        > TIME
        < *2
        < $10
        < 1800000000
        < $1
        < 0
        > QUIT
        < +OK
        "#,
    );
}

#[test]
fn requirepass_refuses_everything_but_auth_hello_and_quit() {
    let shared = shared_with(Config {
        requirepass: Some("s3cret".into()),
        ..Config::default()
    });
    run(
        &shared,
        r#"
        > GET k
        < -NOAUTH Authentication required.
        > NOSUCHCOMMAND
        < -NOAUTH Authentication required.
        > HELLO 3
        < -NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time
        > AUTH wrong
        < -WRONGPASS invalid username-password pair or user is disabled.
        > AUTH s3cret
        < +OK
        > GET k
        < $-1
        "#,
    );
    let session = run(
        &shared,
        r#"
        > HELLO 2 AUTH default s3cret SETNAME php
        < *14
        < $6
        < server
        < $5
        < redis
        < $7
        < version
        < $6
        < 7.0.15
        < $5
        < proto
        < :2
        < $2
        < id
        < :2
        < $4
        < mode
        < $10
        < standalone
        < $4
        < role
        < $6
        < master
        < $7
        < modules
        < *0
        > CLIENT GETNAME
        < $3
        < php
        "#,
    );
    assert!(session.authenticated);
}

fn with_users() -> Shared {
    use crate::config::{Role, User};
    let user = |name: &str, role, password: &str| User {
        name: name.into(),
        role,
        password: password.into(),
    };
    shared_with(Config {
        requirepass: Some("shared-pw".into()),
        users: vec![
            user("web", Role::App, "web-pw"),
            user("ops", Role::Admin, "ops-pw"),
        ],
        ..Config::default()
    })
}

/// An app user runs what session clients send and gets Redis's `NOPERM` for administration,
/// from a script too; `default` is an app user once a named admin exists; the admin runs
/// everything; `CONFIG GET` never shows a password.
#[test]
fn roles_and_users() {
    let shared = with_users();
    run(
        &shared,
        r#"
        > AUTH web wrong
        < -WRONGPASS invalid username-password pair or user is disabled.
        > AUTH nobody web-pw
        < -WRONGPASS invalid username-password pair or user is disabled.
        > AUTH ops-pw
        < -WRONGPASS invalid username-password pair or user is disabled.
        > GET k
        < -NOAUTH Authentication required.
        > AUTH web web-pw
        < +OK
        > SET k v EX 60
        < +OK
        > EVAL "return redis.call('get', KEYS[1])" 1 k
        < $1
        < v
        > CONFIG SET notify-keyspace-events Egx
        < +OK
        > CONFIG GET requirepass
        < *2
        < $11
        < requirepass
        < $0
        <
        > FLUSHALL
        < -NOPERM User web has no permissions to run the 'flushall' command
        > flushdb
        < -NOPERM User web has no permissions to run the 'flushdb' command
        > BGREWRITEAOF
        < -NOPERM User web has no permissions to run the 'bgrewriteaof' command
        > CONFIG SET maxmemory 1
        < -NOPERM User web has no permissions to run the 'config|set' command
        > CONFIG SET notify-keyspace-events E maxmemory 1
        < -NOPERM User web has no permissions to run the 'config|set' command
        > CONFIG RESETSTAT
        < -NOPERM User web has no permissions to run the 'config|resetstat' command
        > SCRIPT FLUSH
        < -NOPERM User web has no permissions to run the 'script|flush' command
        > CLIENT LIST
        < -NOPERM User web has no permissions to run the 'client|list' command
        > EVAL "return redis.call('flushall')" 0
        < -NOPERM User web has no permissions to run the 'flushall' command script: d530a22111e074618d24a380340dd3d8bc48af4a, on @user_script:1.
        > GET k
        < $1
        < v
        # A failed login keeps the earlier one.
        > AUTH ops wrong
        < -WRONGPASS invalid username-password pair or user is disabled.
        > FLUSHALL
        < -NOPERM User web has no permissions to run the 'flushall' command
        > AUTH default shared-pw
        < +OK
        > FLUSHALL
        < -NOPERM User default has no permissions to run the 'flushall' command
        > AUTH ops ops-pw
        < +OK
        > CONFIG SET maxmemory 0
        < +OK
        > SCRIPT FLUSH
        < +OK
        > FLUSHALL
        < +OK
        > GET k
        < $-1
        > RESET
        < +RESET
        > GET k
        < -NOAUTH Authentication required.
        "#,
    );
    let stats = &shared.stats;
    let (cmds, errors) = (
        stats.auth_cmds.load(std::sync::atomic::Ordering::Relaxed),
        stats.auth_errors.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!((cmds, errors), (7, 4));
}

/// `requirepass` alone is Redis's: the one password may run everything.
#[test]
fn requirepass_alone_is_admin() {
    let shared = shared_with(Config {
        requirepass: Some("pw".into()),
        ..Config::default()
    });
    run(
        &shared,
        r#"
        > AUTH pw
        < +OK
        > FLUSHALL
        < +OK
        > CONFIG GET requirepass
        < *2
        < $11
        < requirepass
        < $0
        <
        "#,
    );
}

/// A flood of wrong passwords leaves nothing behind: no memory charged, the connection still
/// refused, then a right one works.
#[test]
fn auth_flood_keeps_nothing() {
    let shared = with_users();
    let mut session = Session::new(&shared, "a".into(), "b".into(), NOW);
    let used = shared.store.budget().used();
    for i in 0..10_000u32 {
        let args = [
            bytes::Bytes::from_static(b"AUTH"),
            bytes::Bytes::from_static(b"web"),
            bytes::Bytes::from(format!("guess-{i}")),
        ];
        let executed = execute(&shared, &mut session, &args, NOW);
        assert!(matches!(
            executed.answer,
            Answer::One(sessiond_proto_resp::Reply::Error(_))
        ));
    }
    assert!(!session.authenticated);
    assert_eq!(shared.store.budget().used(), used);
    let args = [
        bytes::Bytes::from_static(b"AUTH"),
        bytes::Bytes::from_static(b"web"),
        bytes::Bytes::from_static(b"web-pw"),
    ];
    execute(&shared, &mut session, &args, NOW);
    assert!(session.authenticated);
}

#[test]
fn strings() {
    run(
        &shared(),
        r#"
        > SET k v
        < +OK
        > GET k
        < $1
        < v
        > SET k w NX
        < $-1
        > SET k w XX GET
        < $1
        < v
        > SET k v NX XX
        < -ERR syntax error
        > SET k v EX 0
        < -ERR invalid expire time in 'set' command
        > SET k v EX abc
        < -ERR value is not an integer or out of range
        > SET k v PX 1500
        < +OK
        > PTTL k
        < :1500
        > TTL k
        < :2
        > SET k v2 KEEPTTL
        < +OK
        > PTTL k
        < :1500
        @ +1500
        > GET k
        < $-1
        # fred's create and save: absolute seconds.
        > SET sess v EXAT 1800000100 NX
        < +OK
        > SET sess w EXAT 1800000200 XX
        < +OK
        > TTL sess
        < :199
        > SET gone v EXAT 1800000200 XX
        < $-1
        # phpredis.
        > SETEX p 1440 ""
        < +OK
        > GET p
        < $0
        <
        > SETEX p 0 v
        < -ERR invalid expire time in 'setex' command
        > PSETEX p 100 v
        < +OK
        > SETNX p x
        < :0
        > GETEX p EX 100
        < $1
        < v
        > TTL p
        < :100
        > GETEX p PERSIST
        < $1
        < v
        > TTL p
        < :-1
        > GETDEL p
        < $1
        < v
        > GETDEL p
        < $-1
        > MSET a 1 b 2
        < +OK
        > MGET a b nope
        < *3
        < $1
        < 1
        < $1
        < 2
        < $-1
        > APPEND a 23
        < :3
        > STRLEN a
        < :3
        > INCR a
        < :124
        > DECRBY a 200
        < :-76
        > INCRBY a x
        < -ERR value is not an integer or out of range
        > SET big 9223372036854775807
        < +OK
        > INCR big
        < -ERR increment or decrement would overflow
        > APPEND new x
        < :1
        > INCR new
        < -ERR value is not an integer or out of range
        "#,
    );
}

#[test]
fn keys() {
    run(
        &shared(),
        r#"
        > SET a 1
        < +OK
        > SET b 2
        < +OK
        > EXISTS a b c a
        < :3
        > EXPIRE a 10
        < :1
        > EXPIRE a 20 NX
        < :0
        > EXPIRE a 5 GT
        < :0
        > EXPIRE a 5 LT
        < :1
        > EXPIRE a 10 NX XX
        < -ERR NX and XX, GT or LT options at the same time are not compatible
        > EXPIRE a 10 GT LT
        < -ERR GT and LT options at the same time are not compatible
        > EXPIRE a 10 FOO
        < -ERR Unsupported option FOO
        > EXPIRE nope 10
        < :0
        > PEXPIRE b 100 XX
        < :0
        > PEXPIREAT b 1800000001000
        < :1
        > PTTL b
        < :1000
        > EXPIRETIME b
        < :1800000001
        > PERSIST b
        < :1
        > PERSIST b
        < :0
        > TTL b
        < :-1
        > TTL nope
        < :-2
        > EXPIREAT b 1
        < :1
        > EXISTS b
        < :0
        > TYPE a
        < +string
        > TYPE nope
        < +none
        > RENAME a c
        < +OK
        > TTL c
        < :5
        > RENAME a c
        < -ERR no such key
        > SET d 4
        < +OK
        > RENAMENX c d
        < :0
        > RENAMENX c e
        < :1
        > DEL d e nope
        < :2
        > UNLINK nope
        < :0
        > DBSIZE
        < :0
        > SCAN x
        < -ERR invalid cursor
        > SCAN 0 COUNT 0
        < -ERR syntax error
        > FLUSHDB
        < +OK
        "#,
    );
}

#[test]
fn scan_and_keys_with_match_and_type() {
    let shared = shared();
    let store = &shared.databases[0];
    for i in 0..300 {
        let key = format!("myapp:{i}");
        store
            .write(
                key.as_bytes(),
                b"{}",
                sessiond_store::Write {
                    condition: sessiond_store::Condition::Always,
                    flags: 0,
                    deadline: sessiond_store::DeadlineChange::Set(None),
                    previous: sessiond_store::Previous::Ignore,
                },
                NOW,
            )
            .unwrap();
    }
    store.hash_set(b"myapp:h", &[(b"f", b"v")], NOW).unwrap();
    store.set_add(b"other", &[b"m"], NOW).unwrap();
    // connect-redis's loop: SCAN cursor MATCH myapp:* COUNT 100 until the cursor is 0.
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = b"0".to_vec();
    loop {
        let args: Vec<bytes::Bytes> = ["SCAN", "", "MATCH", "myapp:*", "COUNT", "100"]
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 1 {
                    bytes::Bytes::from(cursor.clone())
                } else {
                    bytes::Bytes::from(a.to_string())
                }
            })
            .collect();
        let Answer::One(sessiond_proto_resp::Reply::Array(parts)) =
            execute(&shared, &mut session, &args, NOW).answer
        else {
            panic!("SCAN answers an array")
        };
        let (sessiond_proto_resp::Reply::Bulk(next), sessiond_proto_resp::Reply::Array(keys)) =
            (&parts[0], &parts[1])
        else {
            panic!()
        };
        for key in keys {
            let sessiond_proto_resp::Reply::Bulk(key) = key else {
                panic!()
            };
            assert!(key.starts_with(b"myapp:"));
            seen.insert(key.clone());
        }
        if &next[..] == b"0" {
            break;
        }
        cursor = next.to_vec();
    }
    assert_eq!(seen.len(), 301);
    run(
        &shared,
        r#"
        > SCAN 0 COUNT 100000 TYPE hash
        < *2
        < $1
        < 0
        < *1
        < $7
        < myapp:h
        > KEYS oth*
        < *1
        < $5
        < other
        "#,
    );
}

#[test]
fn hashes_sets_and_sorted_sets() {
    run(
        &shared(),
        r#"
        # Spring Session's RedisSessionRepository.
        > HMSET spring:session:sessions:1 creationTime 1 maxInactiveInterval 1800 sessionAttr:user alice
        < +OK
        > HSET spring:session:sessions:1 lastAccessedTime 2 maxInactiveInterval 900
        < :1
        > HGET spring:session:sessions:1 maxInactiveInterval
        < $3
        < 900
        > HMGET spring:session:sessions:1 creationTime nope
        < *2
        < $1
        < 1
        < $-1
        > HLEN spring:session:sessions:1
        < :4
        > HEXISTS spring:session:sessions:1 creationTime
        < :1
        > HDEL spring:session:sessions:1 creationTime nope
        < :1
        > HINCRBY spring:session:sessions:1 lastAccessedTime 5
        < :7
        > HINCRBY spring:session:sessions:1 sessionAttr:user 1
        < -ERR hash value is not an integer
        > HSET spring:session:sessions:1 odd
        < -ERR wrong number of arguments for 'hset' command
        > PEXPIREAT spring:session:sessions:1 1800000060000
        < :1
        > RENAME spring:session:sessions:1 spring:session:sessions:2
        < +OK
        > PTTL spring:session:sessions:2
        < :60000
        > GET spring:session:sessions:2
        < -WRONGTYPE Operation against a key holding the wrong kind of value
        > HGETALL nope
        < *0
        # Sets (the indexed repository's expirations and principal index).
        > SADD spring:session:expirations:1 expires:a expires:b expires:a
        < :2
        > SISMEMBER spring:session:expirations:1 expires:a
        < :1
        > SCARD spring:session:expirations:1
        < :2
        > SREM spring:session:expirations:1 expires:a expires:b
        < :2
        > EXISTS spring:session:expirations:1
        < :0
        > SMEMBERS nope
        < *0
        # Sorted sets.
        > ZADD z 1 a 2 b 3 c
        < :3
        > ZADD z XX CH 5 a 1 nope
        < :1
        > ZADD z NX XX 1 a
        < -ERR XX and NX options at the same time are not compatible
        > ZADD z nan a
        < -ERR value is not a valid float
        > ZADD z 1
        < -ERR wrong number of arguments for 'zadd' command
        > ZADD z 1 a 2
        < -ERR syntax error
        > ZCARD z
        < :3
        > ZSCORE z a
        < $1
        < 5
        > ZREVRANGEBYSCORE z 10 0 LIMIT 0 2
        < *2
        < $1
        < a
        < $1
        < c
        > ZRANGEBYSCORE z (2 +inf WITHSCORES
        < *4
        < $1
        < c
        < $1
        < 3
        < $1
        < a
        < $1
        < 5
        > ZRANGEBYSCORE z x 1
        < -ERR min or max is not a float
        > ZREM z a b c
        < :3
        > TYPE z
        < +none
        "#,
    );
}

#[test]
fn resp3_shapes() {
    run(
        &shared(),
        r#"
        > HELLO 3
        < %7
        < $6
        < server
        < $5
        < redis
        < $7
        < version
        < $6
        < 7.0.15
        < $5
        < proto
        < :3
        < $2
        < id
        < :1
        < $4
        < mode
        < $10
        < standalone
        < $4
        < role
        < $6
        < master
        < $7
        < modules
        < *0
        > HSET h f v
        < :1
        > HGETALL h
        < %1
        < $1
        < f
        < $1
        < v
        > SADD s m
        < :1
        > SMEMBERS s
        < ~1
        < $1
        < m
        > ZADD z 1.5 a
        < :1
        > ZSCORE z a
        < ,1.5
        > ZRANGEBYSCORE z -inf +inf WITHSCORES
        < *1
        < *2
        < $1
        < a
        < ,1.5
        > CONFIG GET maxmemory-policy
        < %1
        < $16
        < maxmemory-policy
        < $10
        < noeviction
        > SUBSCRIBE ch
        < >3
        < $9
        < subscribe
        < $2
        < ch
        < :1
        # RESP3 allows ordinary commands while subscribed.
        > GET nope
        < _
        "#,
    );
}

#[test]
fn pubsub_and_keyspace_notifications() {
    let shared = shared();
    let mut subscriber = run(
        &shared,
        r#"
        > SUBSCRIBE __keyevent@0__:del __keyevent@0__:expired
        < *3
        < $9
        < subscribe
        < $18
        < __keyevent@0__:del
        < :1
        < *3
        < $9
        < subscribe
        < $22
        < __keyevent@0__:expired
        < :2
        > PSUBSCRIBE spring:session:event:0:created:*
        < *3
        < $10
        < psubscribe
        < $32
        < spring:session:event:0:created:*
        < :3
        > GET k
        < -ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context
        > PING
        < *2
        < $4
        < pong
        < $0
        <
        "#,
    );
    // Spring's startup: read, add E g x, write back.
    run(
        &shared,
        r#"
        > CONFIG GET notify-keyspace-events
        < *2
        < $22
        < notify-keyspace-events
        < $0
        <
        > CONFIG SET notify-keyspace-events Egx
        < +OK
        > CONFIG GET notify-keyspace-events
        < *2
        < $22
        < notify-keyspace-events
        < $3
        < gxE
        > CONFIG SET notify-keyspace-events Q
        < -ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmd'.
        > CONFIG SET port 1
        < -ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config
        > CONFIG SET nosuch 1
        < -ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'
        > SET spring:session:sessions:expires:1 ""
        < +OK
        > DEL spring:session:sessions:expires:1
        < :1
        > PUBLISH spring:session:event:0:created:1 payload
        < :1
        > PUBLISH nobody x
        < :0
        "#,
    );
    let sub = subscriber.subscriber.as_mut().unwrap();
    let del = sub.try_recv().expect("a del event");
    assert_eq!(&del.channel[..], b"__keyevent@0__:del");
    assert_eq!(&del.payload[..], b"spring:session:sessions:expires:1");
    let created = sub.try_recv().expect("the published message");
    assert_eq!(
        created.pattern.as_deref(),
        Some(&b"spring:session:event:0:created:*"[..])
    );
    assert!(sub.try_recv().is_none());
    let mut out = BytesMut::new();
    encode(
        &created.reply(),
        sessiond_proto_resp::Protocol::Resp2,
        &mut out,
    );
    assert_eq!(
        &out[..],
        b"*4\r\n$8\r\npmessage\r\n$32\r\nspring:session:event:0:created:*\r\n$32\r\nspring:session:event:0:created:1\r\n$7\r\npayload\r\n"
    );
    // Expired keys removed by the wheel are published by the server's expirer; here the
    // same call it makes.
    shared
        .resp
        .pubsub
        .notify(0, super::pubsub::EXPIRED, "expired", b"k");
    assert_eq!(&sub.try_recv().unwrap().payload[..], b"k");
}

#[test]
fn scripting() {
    run(
        &shared(),
        r#"
        # phpredis's unlock: EVALSHA first, NOSCRIPT, then EVAL.
        > SET lock vm|1
        < +OK
        > EVALSHA b70c2384248f88e6b75b9f89241a180f856ad852 1 lock vm|1
        < -NOSCRIPT No matching script. Please use EVAL.
        > EVAL 'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end' 1 lock vm|1
        < :1
        > EVALSHA B70C2384248F88E6B75B9F89241A180F856AD852 1 lock vm|1
        < :0
        > SCRIPT EXISTS b70c2384248f88e6b75b9f89241a180f856ad852 00
        < *2
        < :1
        < :0
        > SCRIPT LOAD "return 1"
        < $40
        < e0e1f9fabfc9d4800c877a703b823ac0578ff8db
        > EVAL "return {1, 'two', {3}, true, false, nil, 5}" 0
        < *5
        < :1
        < $3
        < two
        < *1
        < :3
        < :1
        < $-1
        > EVAL "return {ok='fine'}" 0
        < +fine
        > EVAL 'return redis.call("nope")' 0
        < -ERR Unknown Redis command called from script script: 8a08f4b52efaa2014867874031e0f420f142f6b5, on @user_script:1.
        > EVAL 'return redis.pcall("nope")' 0
        < -ERR Unknown Redis command called from script
        > EVAL 'return redis.call("get")' 0
        < -ERR Wrong number of args calling Redis command from script script: ad9cf9305028be601cfd2abed4ce895eb41a4a6f, on @user_script:1.
        > EVAL 'error("boom")' 0
        < -ERR user_script:1: boom script: 872b3fcb081448525c6141cdfa3df8374d30d162, on @user_script:1.
        > EVAL "x = 1" 0
        < -ERR user_script:1: Attempt to modify a readonly table script: 34bce5f775de97f557a34088509c8bfe1ea17e52, on @user_script:1.
        > EVAL "syntax error here" 0
        < -ERR Error compiling script (new function): user_script:1: '=' expected near 'error'
        > EVAL 'return redis.call("subscribe","x")' 0
        < -ERR This Redis command is not allowed from script script: e7d45421cfe07574789e1c13ccf1015b1d648fe6, on @user_script:1.
        > EVAL "return 1" -1
        < -ERR Number of keys can't be negative
        > EVAL "return 1" 2 a
        < -ERR Number of keys can't be greater than number of args
        > EVAL "redis.call('hset', KEYS[1], 'f', ARGV[1]); return redis.call('hgetall', KEYS[1])" 1 h 3.5
        < *2
        < $1
        < f
        < $3
        < 3.5
        > EVAL "return redis.call('incrby', 'n', 2.0)" 0
        < :2
        > EVAL "local function f(n) return f(n+1)+1 end return f(1)" 0
        < -ERR user_script:1: stack overflow script: d2f9f93b96f501830d28382031d5a8cf56e23d5a, on @user_script:1.
        > EVAL 'return string.rep("x", 200000000)' 0
        < -ERR not enough memory (script memory limit reached) script: 430b0bf71f02612dd1996f9485715501a6fa21f1, on @user_script:0.
        > EVAL "return redis.sha1hex('')" 0
        < $40
        < da39a3ee5e6b4b0d3255bfef95601890afd80709
        > EVAL "return dofile" 0
        < $-1
        > SCRIPT FLUSH
        < +OK
        > EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0
        < -NOSCRIPT No matching script. Please use EVAL.
        "#,
    );
}

/// Scripts that each leave 20 MB of garbage, 12 times over (240 MB against the 64 MiB limit),
/// all run: the garbage is collected between runs, never counted against the next script.
#[test]
fn script_garbage_does_not_use_up_the_memory_limit() {
    let shared = shared();
    let round = r#"
        > EVAL "local s = string.rep('x', 20000000) return #s" 0
        < :20000000
        "#;
    run(&shared, &round.repeat(12));
}

#[test]
fn memcached_and_resp_share_database_zero() {
    use sessiond_proto_memcache::{Command, Outcome};
    let shared = shared();
    let set = Command::Store {
        mode: sessiond_proto_memcache::StoreMode::Set,
        key: bytes::Bytes::from_static(b"memc.sess.key.abc"),
        flags: 0,
        exptime: 1440,
        value: bytes::Bytes::from_static(b"TEST|i:1;"),
        cas: 0,
    };
    assert!(matches!(
        crate::exec::memcache::execute(&shared, &set, NOW),
        Outcome::Stored { .. }
    ));
    run(
        &shared,
        r#"
        > GET memc.sess.key.abc
        < $9
        < TEST|i:1;
        > TTL memc.sess.key.abc
        < :1440
        > SELECT 1
        < +OK
        > GET memc.sess.key.abc
        < $-1
        > SELECT 0
        < +OK
        > HSET h f v
        < :1
        "#,
    );
    let get = Command::Get {
        keys: vec![bytes::Bytes::from_static(b"h")],
        touch: None,
    };
    assert_eq!(
        crate::exec::memcache::execute(&shared, &get, NOW),
        Outcome::Values(vec![None]),
        "a hash is a miss for memcached"
    );
}

#[test]
fn info_and_command() {
    let shared = shared();
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);
    let info = |session: &mut Session, section: &str| {
        let args = vec![
            bytes::Bytes::from_static(b"INFO"),
            bytes::Bytes::from(section.to_string()),
        ];
        match execute(&shared, session, &args, NOW).answer {
            Answer::One(sessiond_proto_resp::Reply::Verbatim { text, .. }) => {
                String::from_utf8(text.to_vec()).unwrap()
            }
            other => panic!("{other:?}"),
        }
    };
    let server = info(&mut session, "server");
    assert!(
        server.starts_with("# Server\r\nredis_version:7.0.15\r\n"),
        "{server}"
    );
    let all = info(&mut session, "everything");
    for section in [
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Keyspace",
    ] {
        assert!(all.contains(section), "{section} in {all}");
    }
    assert!(all.contains("maxmemory_policy:noeviction"));
    let count = super::COMMANDS.len();
    let script = format!(
        "> COMMAND COUNT\n< :{count}\n> COMMAND INFO get\n< *1\n< *10\n< $3\n< get\n< :2\n< *2\n< +readonly\n< +fast\n< :1\n< :1\n< :1\n< *1\n< +@string\n< *0\n< *0\n< *0\n"
    );
    run(&shared, &script);
    // Every handler is reachable by its name.
    for spec in super::COMMANDS {
        assert!(std::ptr::eq(
            super::lookup(spec.name.to_uppercase().as_bytes()).unwrap(),
            spec
        ));
    }
}

#[test]
fn every_command_survives_hostile_arguments() {
    // Arity-valid calls with junk arguments never panic and always answer.
    let shared = shared();
    let junk = [
        "",
        "-1",
        "9223372036854775808",
        "nan",
        "(",
        "[",
        "*",
        "\u{0}",
    ];
    for spec in super::COMMANDS {
        if spec.flags.contains(super::Flags::SCRIPT) || spec.name == "quit" {
            continue;
        }
        let argc = spec.arity.unsigned_abs() as usize;
        for extra in 0..3 {
            for j in junk {
                let mut session = Session::new(&shared, String::new(), String::new(), NOW);
                let mut args = vec![bytes::Bytes::from_static(spec.name.as_bytes())];
                args.extend((1..argc + extra).map(|_| bytes::Bytes::from(j.to_string())));
                let _ = execute(&shared, &mut session, &args, NOW);
            }
        }
    }
}

/// A limit lowered below what is stored refuses every command that may grow memory
/// (`denyoom`), as Redis does past `maxmemory`, while deletes and reads go on.
#[test]
fn denyoom_commands_are_refused_past_a_lowered_limit() {
    run(
        &shared(),
        r#"
        > SET a 0123456789
        < +OK
        > CONFIG SET maxmemory 1
        < +OK
        > SET b x
        < -OOM command not allowed when used memory > 'maxmemory'.
        > APPEND a x
        < -OOM command not allowed when used memory > 'maxmemory'.
        > EVAL "return redis.call('SET', 'c', 'x')" 0
        < -OOM command not allowed when used memory > 'maxmemory'. script: 3b2289c78cb8e4238b874502339cec6eedebab0f, on @user_script:1.
        > GET a
        < $10
        < 0123456789
        > DEL a
        < :1
        > CONFIG SET maxmemory 0
        < +OK
        > SET b x
        < +OK
        "#,
    );
}

/// The reply to one command line (as `redis-cli` would send it), as text.
fn reply_text(shared: &Shared, session: &mut Session, line: &str) -> String {
    let mut input = BytesMut::from(format!("{line}\r\n").as_bytes());
    let request = Decoder::new(Limits::default())
        .decode(&mut input)
        .expect("well-framed")
        .expect("complete");
    let mut out = BytesMut::new();
    match execute(shared, session, &request.args, NOW).answer {
        Answer::One(reply) => encode(&reply, session.protocol, &mut out),
        Answer::Many(replies) => {
            for reply in &replies {
                encode(reply, session.protocol, &mut out);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every way a script was found to crash, freeze or poison the server (and the classes
/// around them): each ends in an error reply, within the time limit, and changes nothing
/// the next script sees.
#[test]
fn hostile_scripts_cannot_hurt_the_server_or_each_other() {
    let limit = std::time::Duration::from_millis(200);
    let shared = shared_with(Config {
        script_time_limit: limit,
        ..Config::default()
    });
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);
    let mut ask = |line: &str| reply_text(&shared, &mut session, line);
    let busy = "-BUSY script exceeded the time limit (--script-time-limit) and was aborted\r\n";

    // A pattern that recursed past the worker's stack (the process aborted).
    let deep =
        ask(r#"EVAL "return string.find(string.rep('a',100000),string.rep('a?',100000))" 0"#);
    assert!(deep.contains("pattern too complex"), "{deep}");
    // Backtracking patterns that ran for minutes inside one C call.
    for script in [
        r#"EVAL "return string.find(string.rep('a',2000), string.rep('(.-)',12)..'b')" 0"#,
        r#"EVAL "return string.match(string.rep('a',2000), string.rep('a-',20)..'b')" 0"#,
        r#"EVAL "return string.gsub(string.rep('a',2000), string.rep('.-',15)..'b', 'x')" 0"#,
        r#"EVAL "for w in string.gmatch(string.rep('a',2000), string.rep('a*',15)..'b') do end" 0"#,
        r#"EVAL "return (string.rep('a',2000)):find(string.rep('(.-)',12)..'b')" 0"#,
    ] {
        assert_eq!(ask(script), busy, "{script}");
    }
    // Loops, including ones that try to catch their own abort.
    for script in [
        r#"EVAL "while true do end" 0"#,
        r#"EVAL "while true do pcall(function() while true do end end) end" 0"#,
        r#"EVAL "while true do xpcall(function() while true do end end, function(e) return e end) end" 0"#,
        r#"EVAL "while true do pcall(string.find, string.rep('a',2000), string.rep('(.-)',12)..'b') end" 0"#,
    ] {
        assert_eq!(ask(script), busy, "{script}");
    }
    // Bytecode and the functions that load or dump it, or reach the real environments.
    for name in [
        "load",
        "loadstring",
        "dofile",
        "loadfile",
        "setfenv",
        "getfenv",
        "newproxy",
        "debug",
        "collectgarbage",
        "coroutine",
        "module",
        "require",
        "print",
        "gcinfo",
    ] {
        assert_eq!(
            ask(&format!("EVAL \"return type({name})\" 0")),
            "$3\r\nnil\r\n",
            "{name}"
        );
    }
    assert_eq!(ask("EVAL \"return type(string.dump)\" 0"), "$3\r\nnil\r\n");
    let binary = ask("EVAL \"\x1bLuaQ\0\x01\x04\x08\x04\x08\0\" 0");
    assert!(
        binary.starts_with("-ERR Error compiling script"),
        "{binary}"
    );

    // Poisoning: every attempt fails, and the next script sees the real thing.
    for attack in [
        "string.len = function() return 1337 end",
        "rawset(string, 'len', function() return 1337 end)",
        "rawset(_G, 'redis', {})",
        "rawset(_G, 'string', {len = function() return 1337 end})",
        "redis.call = function() return 1337 end",
        "getmetatable('').__index = {len = function() return 1337 end}",
        "setmetatable(_G, {})",
        "setmetatable(string, {})",
        "table.insert = nil",
        "_G.tostring = nil",
        "math.floor = nil",
    ] {
        let reply = ask(&format!("EVAL \"{attack}\" 0"));
        assert!(reply.starts_with("-ERR"), "{attack}: {reply}");
    }
    assert_eq!(ask("EVAL \"return string.len('ab')\" 0"), ":2\r\n");
    assert_eq!(ask("EVAL \"return ('ab'):len()\" 0"), ":2\r\n");
    assert_eq!(ask("EVAL \"return math.floor(2.5)\" 0"), ":2\r\n");
    assert_eq!(ask("EVAL \"return tostring(12)\" 0"), "$2\r\n12\r\n");
    assert_eq!(
        ask("EVAL \"return redis.call('set', 'k', 'v')\" 0"),
        "+OK\r\n"
    );
    // What sessions rely on still works: patterns, gsub with each kind of replacement.
    assert_eq!(
        ask(r#"EVAL "return {string.find('user:42', '(%a+):(%d+)')}" 0"#),
        "*4\r\n:1\r\n:7\r\n$4\r\nuser\r\n$2\r\n42\r\n"
    );
    assert_eq!(
        ask(r#"EVAL "return (string.gsub('a-b-c', '-', '+'))" 0"#),
        "$5\r\na+b+c\r\n"
    );
    assert_eq!(
        ask(r#"EVAL "return (string.gsub('x=1 y=2', '(%w+)=(%w+)', '%2=%1'))" 0"#),
        "$7\r\n1=x 2=y\r\n"
    );
    assert_eq!(
        ask(r#"EVAL "return (string.gsub('a b', '%w', {a='1'}))" 0"#),
        "$3\r\n1 b\r\n"
    );
    assert_eq!(
        ask(r#"EVAL "return (string.gsub('a b', '%w', function(c) return c:upper() end))" 0"#),
        "$3\r\nA B\r\n"
    );
    assert_eq!(
        ask(
            r#"EVAL "local t = {} for k, v in string.gmatch('a=1,b=2', '(%w+)=(%w+)') do t[#t+1] = k..v end return t" 0"#
        ),
        "*2\r\n$2\r\na1\r\n$2\r\nb2\r\n"
    );
    assert_eq!(ask("PING"), "+PONG\r\n");
}

/// A reply that would pass `--client-output-limit` is refused before it is built: collection
/// reads measure first, `KEYS` stops collecting, and `SCAN` with a huge `COUNT` returns a
/// smaller page (its cursor still covers every key) instead of an error.
#[test]
fn replies_past_the_output_limit_are_refused() {
    let limit = 4096;
    let shared = shared_with(Config {
        client_output_limit: limit,
        ..Config::default()
    });
    let mut session = Session::new(&shared, "127.0.0.1:1".into(), "127.0.0.1:2".into(), NOW);
    let refused = format!("-ERR reply exceeds the output limit of {limit} bytes\r\n");
    let value = "v".repeat(100);
    for i in 0..100 {
        for line in [
            format!("SET key:{i:03} {value}"),
            format!("HSET hash field:{i:03} {value}"),
            format!("SADD set member:{i:03}:{value}"),
            format!("ZADD zset {i} member:{i:03}:{value}"),
        ] {
            assert!(!reply_text(&shared, &mut session, &line).starts_with('-'));
        }
    }
    for line in [
        "HGETALL hash",
        "HKEYS hash",
        "HVALS hash",
        "SMEMBERS set",
        "ZRANGEBYSCORE zset -inf +inf",
        "ZREVRANGEBYSCORE zset +inf -inf WITHSCORES",
        "KEYS *",
        "KEYS key:*",
    ] {
        assert_eq!(reply_text(&shared, &mut session, line), refused, "{line}");
    }
    // What fits is answered as before.
    let some = reply_text(&shared, &mut session, "ZRANGEBYSCORE zset 0 1");
    assert!(some.starts_with("*2\r\n"), "{some}");
    let some = reply_text(&shared, &mut session, "KEYS key:00*");
    assert!(some.starts_with("*10\r\n"), "{some}");

    // SCAN with a COUNT far past what fits: pages within the limit, and every key once.
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = 0;
    loop {
        let text = reply_text(
            &shared,
            &mut session,
            &format!("SCAN {cursor} MATCH key:* COUNT 1000000"),
        );
        assert!(text.len() <= limit, "a page of {} bytes", text.len());
        let lines: Vec<&str> = text.split("\r\n").collect();
        cursor = lines[2].to_string();
        seen.extend(
            lines
                .iter()
                .filter(|l| l.starts_with("key:"))
                .map(|l| l.to_string()),
        );
        pages += 1;
        if cursor == "0" {
            break;
        }
        assert!(pages < 1000, "SCAN does not end");
    }
    assert_eq!(seen.len(), 100);
    assert!(
        pages > 1,
        "100 keys cannot fit in one page of {limit} bytes"
    );
}

/// A server whose stores report to the `WATCH` registry, as the real server's do.
fn shared_watched() -> Shared {
    Shared::unjournaled(Config::default(), NOW)
}

#[test]
fn transactions() {
    let shared = shared_watched();
    run(
        &shared,
        "
        > MULTI
        < +OK
        > SET a 1
        < +QUEUED
        > INCR a
        < +QUEUED
        > GET a
        < +QUEUED
        > EXEC
        < *3
        < +OK
        < :2
        < $1
        < 2
        # Runtime errors are replies in the array; the rest still runs.
        > SET s hello
        < +OK
        > MULTI
        < +OK
        > INCR s
        < +QUEUED
        > SET t 1
        < +QUEUED
        > EXEC
        < *2
        < -ERR value is not an integer or out of range
        < +OK
        # Errors while queueing abort the transaction.
        > MULTI
        < +OK
        > SET x
        < -ERR wrong number of arguments for 'set' command
        > NOSUCH
        < -ERR unknown command 'NOSUCH', with args beginning with: 
        > SET y 1
        < +QUEUED
        > EXEC
        < -EXECABORT Transaction discarded because of previous errors.
        > GET y
        < $-1
        > EXEC
        < -ERR EXEC without MULTI
        > DISCARD
        < -ERR DISCARD without MULTI
        # Nested MULTI and WATCH inside MULTI are refused without aborting.
        > MULTI
        < +OK
        > MULTI
        < -ERR MULTI calls can not be nested
        > WATCH a
        < -ERR WATCH inside MULTI is not allowed
        > PING
        < +QUEUED
        > EXEC
        < *1
        < +PONG
        > MULTI
        < +OK
        > SET d 1
        < +QUEUED
        > DISCARD
        < +OK
        > GET d
        < $-1
        > MULTI
        < +OK
        > EXEC
        < *0
        # SELECT inside the transaction applies to what follows.
        > MULTI
        < +OK
        > SELECT 1
        < +QUEUED
        > SET a one
        < +QUEUED
        > EXEC
        < *2
        < +OK
        < +OK
        > GET a
        < $3
        < one
        > SELECT 0
        < +OK
        ",
    );
}

#[test]
fn watch_unwatch_and_invalidation() {
    let shared = shared_watched();
    run(
        &shared,
        "
        > SET a 1
        < +OK
        > WATCH a b
        < +OK
        > MULTI
        < +OK
        > GET a
        < +QUEUED
        > EXEC
        < *1
        < $1
        < 1
        # A change by the same connection counts.
        > WATCH a
        < +OK
        > SET a 2
        < +OK
        > MULTI
        < +OK
        > SET a 3
        < +QUEUED
        > EXEC
        < *-1
        > GET a
        < $1
        < 2
        # EXEC forgot the watch.
        > MULTI
        < +OK
        > GET a
        < +QUEUED
        > EXEC
        < *1
        < $1
        < 2
        # UNWATCH and DISCARD forget too.
        > WATCH a
        < +OK
        > SET a 4
        < +OK
        > UNWATCH
        < +OK
        > MULTI
        < +OK
        > EXEC
        < *0
        > WATCH a
        < +OK
        > SET a 5
        < +OK
        > MULTI
        < +OK
        > DISCARD
        < +OK
        > MULTI
        < +OK
        > EXEC
        < *0
        # A watched key that is missing and then created.
        > WATCH nope
        < +OK
        > SET nope 1
        < +OK
        > MULTI
        < +OK
        > EXEC
        < *-1
        # Expiry between WATCH and EXEC, unread by anyone.
        > SET e 1 PX 100
        < +OK
        > WATCH e
        < +OK
        @ +200
        > MULTI
        < +OK
        > EXEC
        < *-1
        # A flush.
        > SET f 1
        < +OK
        > WATCH f
        < +OK
        > FLUSHALL
        < +OK
        > MULTI
        < +OK
        > EXEC
        < *-1
        # A delete of another key does not count.
        > SET g 1
        < +OK
        > WATCH g
        < +OK
        > DEL other
        < :0
        > MULTI
        < +OK
        > EXEC
        < *0
        ",
    );
    assert_eq!(
        shared.resp.pubsub.watches.watched(),
        0,
        "every watch is forgotten after EXEC"
    );
    // RESP3's null for a failed EXEC.
    let mut session = run(
        &shared,
        "> SET g 1\n< +OK\n> WATCH g\n< +OK\n> DEL g\n< :1\n> MULTI\n< +OK",
    );
    session.protocol = sessiond_proto_resp::Protocol::Resp3;
    let exec = vec![bytes::Bytes::from_static(b"EXEC")];
    let mut out = BytesMut::new();
    match execute(&shared, &mut session, &exec, NOW).answer {
        Answer::One(reply) => encode(&reply, session.protocol, &mut out),
        Answer::Many(_) => panic!("one reply"),
    }
    assert_eq!(&out[..], b"_\r\n");
}

#[test]
fn transaction_bounds() {
    let shared = shared_watched();
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);
    let args = |line: &str| -> Vec<bytes::Bytes> {
        line.split(' ')
            .map(|a| bytes::Bytes::from(a.to_string()))
            .collect()
    };
    let reply = |line: &str, session: &mut Session| match execute(
        &shared,
        session,
        &args(line),
        NOW,
    )
    .answer
    {
        Answer::One(r) => r,
        Answer::Many(_) => panic!("one reply"),
    };
    assert_eq!(reply("MULTI", &mut session), super::simple("OK"));
    let big = "x".repeat(1024 * 1024);
    let mut refused = None;
    for _ in 0..64 {
        let r = reply(&format!("SET k {big}"), &mut session);
        if r != super::simple("QUEUED") {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the queue is bounded");
    assert!(
        matches!(&refused, sessiond_proto_resp::Reply::Error(e) if e.starts_with(b"ERR transaction too large"))
    );
    assert_eq!(
        reply("EXEC", &mut session),
        super::error("EXECABORT Transaction discarded because of previous errors.")
    );
    let keys: Vec<String> = (0..super::multi::MAX_WATCHED + 1)
        .map(|i| format!("k{i}"))
        .collect();
    let refused = reply(&format!("WATCH {}", keys.join(" ")), &mut session);
    assert!(
        matches!(&refused, sessiond_proto_resp::Reply::Error(e) if e.starts_with(b"ERR too many watched keys"))
    );
    assert_eq!(reply("UNWATCH", &mut session), super::simple("OK"));
    assert_eq!(shared.resp.pubsub.watches.watched(), 0);
}

/// The busy state's glue (`prepare_busy`, what a connection runs without the script gate
/// once the gate has been held past `busy-reply-threshold`): Redis's `allow-busy` commands
/// run, every other command is refused with `BUSY` and flags a transaction it was sent in,
/// and `EXEC` aborts with `BUSY`'s text, ending the transaction.
#[test]
fn busy_state_refuses_all_but_the_allow_busy_commands() {
    use super::{Executed, prepare_busy, run as run_spec};
    let shared = shared();
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);
    let busy = |session: &mut Session, line: &str| -> String {
        let args: Vec<bytes::Bytes> = line
            .split(' ')
            .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let executed: Executed = match prepare_busy(&shared, session, &args) {
            Ok(spec) => run_spec(&shared, session, spec, &args, NOW),
            Err(refused) => refused,
        };
        let mut out = BytesMut::new();
        if let Answer::One(reply) = executed.answer {
            encode(&reply, session.protocol, &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    // Only a script brings the busy state, so the refusal is Redis's script text (none runs
    // in this unit test; the kill commands below answer as much).
    let refused = "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
    assert_eq!(busy(&mut session, "GET k"), refused);
    assert_eq!(busy(&mut session, "EVAL return 0"), refused);
    assert_eq!(busy(&mut session, "SCRIPT FLUSH"), refused);
    assert_eq!(
        busy(&mut session, "SCRIPT KILL"),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    assert_eq!(
        busy(&mut session, "FUNCTION KILL"),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    assert!(busy(&mut session, "FUNCTION STATS").starts_with("*4\r\n$14\r\nrunning_script\r\n"));
    assert_eq!(busy(&mut session, "WATCH k"), "+OK\r\n");
    assert_eq!(busy(&mut session, "MULTI"), "+OK\r\n");
    assert_eq!(busy(&mut session, "UNWATCH"), "+QUEUED\r\n");
    assert_eq!(busy(&mut session, "INCR k"), refused);
    assert_eq!(busy(&mut session, "DISCARD"), "+OK\r\n");
    assert_eq!(busy(&mut session, "MULTI"), "+OK\r\n");
    assert_eq!(
        busy(&mut session, "EXEC"),
        "-EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert!(session.tx.is_none(), "EXEC ended the transaction");
    assert_eq!(
        busy(&mut session, "DISCARD"),
        "-ERR DISCARD without MULTI\r\n"
    );
    assert_eq!(busy(&mut session, "PING"), refused);
    assert!(busy(&mut session, "NOSUCH").starts_with("-ERR unknown command 'NOSUCH'"));
    assert_eq!(busy(&mut session, "RESET"), "+RESET\r\n");
    assert_eq!(busy(&mut session, "QUIT"), "+OK\r\n");
    assert_eq!(
        shared
            .stats
            .more
            .busy_replies
            .load(std::sync::atomic::Ordering::Relaxed),
        6
    );
}

/// `WATCH` in the busy state runs without the gate, beside a script whose clock stands still
/// at its start: it must not reap a key that has expired since (the script would miss it),
/// nor report the expiry.
#[test]
fn watch_in_the_busy_state_reaps_nothing() {
    use super::{prepare_busy, run as run_spec};
    let shared = shared_watched();
    run(&shared, "> SET k v PX 100\n< +OK");
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);
    let args = [
        bytes::Bytes::from_static(b"WATCH"),
        bytes::Bytes::from_static(b"k"),
    ];
    let Ok(spec) = prepare_busy(&shared, &mut session, &args) else {
        panic!("WATCH is allow-busy");
    };
    let _ = run_spec(&shared, &mut session, spec, &args, NOW + 200);
    let store = &shared.databases[0];
    assert_eq!(store.len(), 1, "the expired key is still there");
    assert_eq!(store.stats().expired, 0, "and no expiry was counted");
    assert!(
        store.get(b"k", NOW + 50).is_some(),
        "the script, at its own time, still finds it"
    );
}
