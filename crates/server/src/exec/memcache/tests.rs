use std::sync::Arc;

use bytes::Bytes;
use sessiond_proto_memcache::{ArithMode, Command, Outcome, StatsGroup, StoreMode};
use sessiond_store::{Budget, Store};

use super::{execute, execute_as};
use crate::config::Config;
use crate::exec::Shared;

const NOW: u64 = 1_800_000_000_000;

fn shared(max_memory: u64) -> Shared {
    let config = Config {
        max_memory,
        ..Config::default()
    };
    let store = Arc::new(Store::new(Arc::new(Budget::new(max_memory)), NOW));
    Shared::new(vec![store], None, config, Default::default(), None)
}

fn set(mode: StoreMode, key: &str, value: &str, exptime: i64, cas: u64) -> Command {
    Command::Store {
        mode,
        key: b(key),
        flags: 0,
        exptime,
        value: b(value),
        cas,
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn get(key: &str) -> Command {
    Command::Get {
        keys: vec![b(key)],
        touch: None,
    }
}

fn hit_value(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Values(v) => v[0]
            .as_ref()
            .map(|h| String::from_utf8(h.value.to_vec()).unwrap()),
        other => panic!("not a get outcome: {other:?}"),
    }
}

#[test]
fn php_strict_mode_probe_leaves_nothing_alive() {
    let s = shared(1 << 30);
    let probe = set(StoreMode::Add, "memc.sess.key.unknown", "", 2_678_400, 0);
    assert!(matches!(execute(&s, &probe, NOW), Outcome::Stored { .. }));
    assert_eq!(
        hit_value(&execute(&s, &get("memc.sess.key.unknown"), NOW)),
        None
    );
    assert!(
        matches!(execute(&s, &probe, NOW + 1), Outcome::Stored { .. }),
        "probed again: still unknown"
    );
    execute(
        &s,
        &set(StoreMode::Set, "memc.sess.key.known", "x", 1440, 0),
        NOW,
    );
    let known = set(StoreMode::Add, "memc.sess.key.known", "", 2_678_400, 0);
    assert_eq!(execute(&s, &known, NOW), Outcome::NotStored);
}

#[test]
fn exptime_rules_apply_to_every_write_path() {
    let s = shared(1 << 30);
    execute(&s, &set(StoreMode::Set, "rel", "v", 10, 0), NOW);
    execute(
        &s,
        &set(StoreMode::Set, "abs", "v", (NOW / 1000 + 20) as i64, 0),
        NOW,
    );
    execute(&s, &set(StoreMode::Set, "neg", "v", -1, 0), NOW);
    assert_eq!(hit_value(&execute(&s, &get("neg"), NOW)), None);
    assert!(hit_value(&execute(&s, &get("rel"), NOW + 9_999)).is_some());
    assert_eq!(hit_value(&execute(&s, &get("rel"), NOW + 10_000)), None);
    assert!(hit_value(&execute(&s, &get("abs"), NOW + 19_999)).is_some());
    assert_eq!(hit_value(&execute(&s, &get("abs"), NOW + 20_000)), None);
    // touch and gat move the deadline; a negative exptime expires at once.
    execute(&s, &set(StoreMode::Set, "t", "v", 10, 0), NOW);
    assert!(matches!(
        execute(
            &s,
            &Command::Touch {
                key: b("t"),
                exptime: 100
            },
            NOW
        ),
        Outcome::Touched { .. }
    ));
    assert!(hit_value(&execute(&s, &get("t"), NOW + 50_000)).is_some());
    let gat = Command::Get {
        keys: vec![b("t")],
        touch: Some(-1),
    };
    assert!(hit_value(&execute(&s, &gat, NOW + 50_000)).is_some());
    assert_eq!(hit_value(&execute(&s, &get("t"), NOW + 50_000)), None);
    assert_eq!(
        execute(
            &s,
            &Command::Touch {
                key: b("t"),
                exptime: 5
            },
            NOW
        ),
        Outcome::NotFound
    );
}

#[test]
fn full_store_answers_out_of_memory_and_counts_it() {
    let s = shared(1000);
    let big = "x".repeat(600);
    assert!(matches!(
        execute(&s, &set(StoreMode::Set, "a", &big, 0, 0), NOW),
        Outcome::Stored { .. }
    ));
    assert_eq!(
        execute(&s, &set(StoreMode::Set, "b", &big, 0, 0), NOW),
        Outcome::OutOfMemory
    );
    assert!(
        hit_value(&execute(&s, &get("a"), NOW)).is_some(),
        "nothing was evicted"
    );
    let Outcome::Stats(stats) = execute(&s, &Command::Stats(StatsGroup::General), NOW) else {
        panic!()
    };
    assert!(stats.contains(&("out_of_memory".into(), "1".into())));
    assert!(stats.contains(&("evictions".into(), "0".into())));
}

#[test]
fn cas_append_and_counters() {
    let s = shared(1 << 30);
    let Outcome::Stored { cas } = execute(&s, &set(StoreMode::Set, "k", "1", 0, 0), NOW) else {
        panic!()
    };
    assert_eq!(
        execute(&s, &set(StoreMode::Set, "k", "2", 0, cas + 1), NOW),
        Outcome::Exists
    );
    assert_eq!(
        execute(&s, &set(StoreMode::Set, "nope", "2", 0, 5), NOW),
        Outcome::NotFound
    );
    assert!(matches!(
        execute(&s, &set(StoreMode::Set, "k", "2", 0, cas), NOW),
        Outcome::Stored { .. }
    ));
    assert!(matches!(
        execute(&s, &set(StoreMode::Append, "k", "0", 0, 0), NOW),
        Outcome::Stored { .. }
    ));
    let incr = Command::Arith {
        mode: ArithMode::Incr,
        key: b("k"),
        delta: 5,
        initial: None,
    };
    assert!(matches!(
        execute(&s, &incr, NOW),
        Outcome::Counter { value: 25, .. }
    ));
    let decr = Command::Arith {
        mode: ArithMode::Decr,
        key: b("k"),
        delta: 100,
        initial: None,
    };
    assert!(matches!(
        execute(&s, &decr, NOW),
        Outcome::Counter { value: 0, .. }
    ));
    let missing = Command::Arith {
        mode: ArithMode::Incr,
        key: b("m"),
        delta: 1,
        initial: Some((7, 0)),
    };
    assert!(matches!(
        execute(&s, &missing, NOW),
        Outcome::Counter { value: 7, .. }
    ));
    assert_eq!(
        execute(&s, &set(StoreMode::Replace, "none", "v", 0, 0), NOW),
        Outcome::NotStored
    );
    assert_eq!(
        execute(&s, &set(StoreMode::Prepend, "none", "v", 0, 0), NOW),
        Outcome::NotStored
    );
}

#[test]
fn append_past_the_item_size_limit_is_too_large() {
    let s = shared(1 << 30);
    let max = s.config.max_item_size;
    execute(&s, &set(StoreMode::Set, "k", &"x".repeat(max), 0, 0), NOW);
    assert_eq!(
        execute(&s, &set(StoreMode::Append, "k", "y", 0, 0), NOW),
        Outcome::TooLarge
    );
}

#[test]
fn delayed_flush_all() {
    let s = shared(1 << 30);
    execute(&s, &set(StoreMode::Set, "k", "v", 0, 0), NOW);
    assert_eq!(
        execute(&s, &Command::FlushAll { delay: 2 }, NOW),
        Outcome::Ok
    );
    assert!(hit_value(&execute(&s, &get("k"), NOW + 1_999)).is_some());
    assert_eq!(hit_value(&execute(&s, &get("k"), NOW + 2_000)), None);
}

fn with_users() -> Shared {
    use crate::config::{Role, User};
    let config = Config {
        requirepass: Some("shared-pw".into()),
        users: vec![User {
            name: "ops".into(),
            role: Role::Admin,
            password: "ops-pw".into(),
        }],
        ..Config::default()
    };
    let store = Arc::new(Store::new(Arc::new(Budget::new(1 << 20)), NOW));
    Shared::new(vec![store], None, config, Default::default(), None)
}

fn sasl(data: &[u8]) -> Command {
    Command::SaslAuth {
        mechanism: b("PLAIN"),
        data: Bytes::copy_from_slice(data),
        step: false,
    }
}

/// Binary: SASL PLAIN logs in; before that only SASL, VERSION and QUIT run; the app role
/// may not flush; garbage, other mechanisms and SASL_STEP fail.
#[test]
fn binary_login_and_roles() {
    let shared = with_users();
    let mut user = None;
    let run = |user: &mut _, command: &Command| execute_as(&shared, user, false, command, NOW);
    assert_eq!(
        run(&mut user, &Command::SaslListMechs),
        Outcome::SaslMechanisms("PLAIN".into())
    );
    assert_eq!(run(&mut user, &get("k")), Outcome::Unauthenticated);
    assert!(matches!(
        run(&mut user, &Command::Version),
        Outcome::Version(_)
    ));
    // A binary `set` is not a login.
    assert_eq!(
        run(
            &mut user,
            &set(StoreMode::Set, "k", "default shared-pw", 0, 0)
        ),
        Outcome::Unauthenticated
    );
    for bad in [
        &b"\0default\0wrong"[..],
        b"\0ops\0shared-pw",
        b"ops\0default\0shared-pw",
        b"default shared-pw",
        b"",
        &[0xff; 4096],
    ] {
        assert_eq!(run(&mut user, &sasl(bad)), Outcome::AuthFailed, "{bad:?}");
    }
    let other = Command::SaslAuth {
        mechanism: b("CRAM-MD5"),
        data: b("\0default\0shared-pw"),
        step: false,
    };
    assert_eq!(run(&mut user, &other), Outcome::AuthFailed);
    let step = Command::SaslAuth {
        mechanism: b("PLAIN"),
        data: b("\0default\0shared-pw"),
        step: true,
    };
    assert_eq!(run(&mut user, &step), Outcome::AuthFailed);
    assert!(user.is_none());
    assert_eq!(
        run(&mut user, &sasl(b"\0default\0shared-pw")),
        Outcome::Authenticated
    );
    assert!(matches!(
        run(&mut user, &set(StoreMode::Set, "k", "v", 0, 0)),
        Outcome::Stored { .. }
    ));
    assert_eq!(
        run(&mut user, &Command::FlushAll { delay: 0 }),
        Outcome::NotPermitted
    );
    assert_eq!(
        run(&mut user, &Command::JournalRewrite),
        Outcome::NotPermitted
    );
    assert_eq!(
        run(&mut user, &sasl(b"\0ops\0ops-pw")),
        Outcome::Authenticated
    );
    assert_eq!(run(&mut user, &Command::FlushAll { delay: 0 }), Outcome::Ok);
    assert_eq!(
        shared
            .stats
            .auth_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        8
    );
}

/// Text: memcached's `-Y` login, a `set` of `user password` (key, flags and exptime
/// ignored); everything else before it is `CLIENT_ERROR unauthenticated`.
#[test]
fn text_login() {
    let shared = with_users();
    let mut user = None;
    let run = |user: &mut _, command: &Command| execute_as(&shared, user, true, command, NOW);
    assert_eq!(run(&mut user, &get("k")), Outcome::Unauthenticated);
    assert_eq!(run(&mut user, &Command::Version), Outcome::Unauthenticated);
    assert_eq!(
        run(
            &mut user,
            &set(StoreMode::Add, "k", "default shared-pw", 0, 0)
        ),
        Outcome::Unauthenticated
    );
    assert_eq!(
        run(&mut user, &set(StoreMode::Set, "k", "nospace", 0, 0)),
        Outcome::ClientError("bad authentication token format")
    );
    assert_eq!(
        run(&mut user, &set(StoreMode::Set, "k", "default wrong", 0, 0)),
        Outcome::AuthFailed
    );
    // Any key logs in; the key is not written.
    assert_eq!(
        run(
            &mut user,
            &set(StoreMode::Set, "anykey", "default shared-pw", 0, 0)
        ),
        Outcome::Authenticated
    );
    // The login wrote nothing.
    assert_eq!(run(&mut user, &get("anykey")), Outcome::Values(vec![None]));
    assert!(matches!(
        run(&mut user, &set(StoreMode::Set, "k", "v", 0, 0)),
        Outcome::Stored { .. }
    ));
    assert_eq!(
        run(&mut user, &Command::FlushAll { delay: 0 }),
        Outcome::NotPermitted
    );
}

/// Without users, SASL is an unknown command (a client configured with credentials fails
/// loudly) and a text `set` is a `set`.
#[test]
fn without_users_sasl_is_unknown() {
    let shared = shared(1 << 20);
    let mut user = shared.users.initial();
    assert!(user.is_some());
    assert_eq!(
        execute_as(&shared, &mut user, false, &Command::SaslListMechs, NOW),
        Outcome::UnknownCommand
    );
    assert_eq!(
        execute_as(&shared, &mut user, false, &sasl(b"\0default\0x"), NOW),
        Outcome::UnknownCommand
    );
    assert!(matches!(
        execute_as(
            &shared,
            &mut user,
            true,
            &set(StoreMode::Set, "k", "a b", 0, 0),
            NOW
        ),
        Outcome::Stored { .. }
    ));
    assert_eq!(
        execute_as(
            &shared,
            &mut user,
            true,
            &Command::FlushAll { delay: 0 },
            NOW
        ),
        Outcome::Ok
    );
}

/// Every memcached write raises the events of its RESP equivalent in database 0, through the
/// same hub and `CONFIG SET` setting as RESP's; refused writes, reads and `flush_all` none.
#[test]
fn writes_raise_keyspace_events() {
    use crate::exec::resp::{self, Session};

    let config = Config {
        notify_keyspace_events: crate::exec::resp::pubsub::parse_flags(b"KEA").unwrap(),
        ..Config::default()
    };
    let store = Arc::new(Store::new(Arc::new(Budget::new(1 << 20)), NOW));
    let s = Shared::new(vec![store], None, config, Default::default(), None);
    let mut sub = Session::new(&s, String::new(), String::new(), NOW);
    let args = [b("PSUBSCRIBE"), b("__key*@0__:*")];
    resp::execute(&s, &mut sub, &args, NOW);
    // Each event as (key, event), checking the keyevent message matches the keyspace one.
    let events = |sub: &mut Session| {
        let queue = sub.subscriber.as_mut().unwrap();
        let mut got = Vec::new();
        while let Some(space) = queue.try_recv() {
            let event = queue
                .try_recv()
                .expect("a keyevent message after each keyspace one");
            let key = space.channel.strip_prefix(b"__keyspace@0__:").unwrap();
            let name = String::from_utf8(space.payload.to_vec()).unwrap();
            assert_eq!(
                &event.channel[..],
                format!("__keyevent@0__:{name}").as_bytes()
            );
            assert_eq!(&event.payload[..], key);
            got.push((String::from_utf8(key.to_vec()).unwrap(), name));
        }
        got
    };
    let touch = |key: &str, exptime| Command::Touch {
        key: b(key),
        exptime,
    };
    let arith = |mode, key: &str| Command::Arith {
        mode,
        key: b(key),
        delta: 2,
        initial: None,
    };
    let gat = |exptime, keys: &[&str]| Command::Get {
        keys: keys.iter().map(|k| b(k)).collect(),
        touch: Some(exptime),
    };
    let delete = |key: &str| Command::Delete {
        key: b(key),
        cas: 0,
    };
    for (command, want) in [
        (set(StoreMode::Set, "a", "1", 0, 0), vec![("a", "set")]),
        (
            set(StoreMode::Set, "b", "1", 60, 0),
            vec![("b", "set"), ("b", "expire")],
        ),
        (set(StoreMode::Add, "a", "1", 0, 0), vec![]),
        (set(StoreMode::Replace, "nope", "1", 0, 0), vec![]),
        (set(StoreMode::Replace, "a", "2", 0, 0), vec![("a", "set")]),
        (
            set(StoreMode::Append, "a", "3", 0, 0),
            vec![("a", "append")],
        ),
        (
            set(StoreMode::Prepend, "a", "1", 0, 0),
            vec![("a", "prepend")],
        ),
        (set(StoreMode::Append, "nope", "1", 0, 0), vec![]),
        (arith(ArithMode::Incr, "a"), vec![("a", "incrby")]),
        (arith(ArithMode::Decr, "a"), vec![("a", "decrby")]),
        (arith(ArithMode::Incr, "nope"), vec![]),
        (touch("a", 100), vec![("a", "expire")]),
        (touch("a", 0), vec![("a", "persist")]),
        (touch("nope", 100), vec![]),
        (
            gat(100, &["a", "nope", "b"]),
            vec![("a", "expire"), ("b", "expire")],
        ),
        (get("a"), vec![]),
        (touch("b", -1), vec![("b", "del")]),
        (set(StoreMode::Set, "c", "1", -1, 0), vec![("c", "del")]),
        (set(StoreMode::Set, "c", "1", 0, 0), vec![("c", "set")]),
        (gat(-1, &["c"]), vec![("c", "del")]),
        (delete("a"), vec![("a", "del")]),
        (delete("a"), vec![]),
        (set(StoreMode::Set, "d", "1", 0, 0), vec![("d", "set")]),
        (Command::FlushAll { delay: 0 }, vec![]),
    ] {
        let outcome = execute(&s, &command, NOW);
        let want: Vec<_> = want
            .into_iter()
            .map(|(k, e)| (k.to_string(), e.to_string()))
            .collect();
        assert_eq!(events(&mut sub), want, "{command:?} answered {outcome:?}");
    }
    // A CAS write is a `set` when it matches, nothing when it does not.
    execute(&s, &set(StoreMode::Set, "e", "1", 0, 0), NOW);
    events(&mut sub);
    let Outcome::Values(hits) = execute(&s, &get("e"), NOW) else {
        unreachable!()
    };
    let cas = hits[0].as_ref().unwrap().cas;
    execute(&s, &set(StoreMode::Set, "e", "2", 0, cas + 1), NOW);
    assert_eq!(events(&mut sub), []);
    execute(&s, &set(StoreMode::Set, "e", "2", 0, cas), NOW);
    assert_eq!(events(&mut sub), [("e".to_string(), "set".to_string())]);
    // `CONFIG SET notify-keyspace-events ""` turns them off for memcached writes too.
    let args = [b("CONFIG"), b("SET"), b("notify-keyspace-events"), b("")];
    let mut admin = Session::new(&s, String::new(), String::new(), NOW);
    resp::execute(&s, &mut admin, &args, NOW);
    execute(&s, &set(StoreMode::Set, "f", "1", 0, 0), NOW);
    assert_eq!(events(&mut sub), []);
}

/// Decodes `input` as text requests, runs each at `now` and returns the encoded replies.
fn text(s: &Shared, input: &str, now: u64) -> String {
    use sessiond_proto_memcache::text::{TextDecoder, encode_error, encode_reply};
    let mut decoder = TextDecoder::new(sessiond_proto_memcache::Limits::default());
    let mut buf = bytes::BytesMut::from(input.as_bytes());
    let mut out = bytes::BytesMut::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(req)) => encode_reply(&req, &execute(s, &req.command, now), &mut out),
            Ok(None) => break,
            Err(error) => encode_error(&error, &mut out),
        }
    }
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn meta_writes_to_a_revoked_session_are_refused_as_set_is() {
    let s = shared(1 << 30);
    assert_eq!(text(&s, "ms sess 1 T100\r\nx\r\n", NOW), "HD\r\n");
    assert!(s.store.revoke(b"sess", 60_000, NOW).is_some());
    let refused = format!("SERVER_ERROR {}\r\n", sessiond_proto_memcache::REVOKED);
    assert_eq!(text(&s, "set sess 0 0 1\r\ny\r\n", NOW), refused);
    for line in [
        "ms sess 1\r\ny\r\n",
        "ms sess 1 q\r\ny\r\n",
        "mg sess N30 v\r\n",
        "ma sess N0 J1\r\n",
    ] {
        assert_eq!(text(&s, line, NOW), refused, "{line:?}");
    }
    assert_eq!(text(&s, "mg sess v\r\n", NOW), "EN\r\n");
}

#[test]
fn meta_recache_and_vivify_follow_the_clock() {
    let s = shared(1 << 30);
    // A vivified stub lives for its N TTL; once gone, the next miss vivifies again and wins.
    assert_eq!(text(&s, "mg v N2 v t\r\n", NOW), "VA 0 t2 W\r\n\r\n");
    assert_eq!(text(&s, "mg v N2 v\r\n", NOW + 1_000), "VA 0 Z\r\n\r\n");
    assert_eq!(
        text(&s, "mg v N2 v\r\n", NOW + 2_000),
        "VA 0 t2 W\r\n\r\n".replace(" t2", "")
    );
    // R wins once the remaining TTL drops under its token, once.
    assert_eq!(text(&s, "ms r 1 T100\r\nx\r\n", NOW), "HD\r\n");
    assert_eq!(text(&s, "mg r R30 t\r\n", NOW), "HD t100\r\n");
    assert_eq!(text(&s, "mg r R30 t\r\n", NOW + 71_000), "HD t29 W\r\n");
    assert_eq!(text(&s, "mg r R30 t\r\n", NOW + 72_000), "HD t28 Z\r\n");
    // A rewrite clears the marks.
    assert_eq!(text(&s, "ms r 1 T100\r\ny\r\n", NOW + 73_000), "HD\r\n");
    assert_eq!(text(&s, "mg r R30 v\r\n", NOW + 73_000), "VA 1\r\ny\r\n");
    // Last access and hit-before, as they were before the request.
    assert_eq!(text(&s, "mg r h l\r\n", NOW + 80_000), "HD h1 l7\r\n");
    assert_eq!(text(&s, "mg r h l u\r\n", NOW + 85_000), "HD h1 l5\r\n");
    assert_eq!(text(&s, "mg r l\r\n", NOW + 86_000), "HD l6\r\n");
}

#[test]
fn a_refused_write_of_any_kind_leaves_no_old_value() {
    let s = shared(1 << 30);
    assert_eq!(text(&s, "ms k 3\r\nold\r\n", NOW), "HD\r\n");
    let big = "v".repeat(2 << 20);
    assert_eq!(
        text(
            &s,
            &format!("ms k {}\r\n{big}\r\nmg k v\r\n", big.len()),
            NOW
        ),
        "SERVER_ERROR object too large for cache\r\nEN\r\n"
    );
    assert_eq!(text(&s, "set k 0 0 3\r\nold\r\n", NOW), "STORED\r\n");
    assert_eq!(
        text(
            &s,
            &format!("set k 0 0 {} noreply\r\n{big}\r\nget k\r\n", big.len()),
            NOW
        ),
        "END\r\n"
    );
    // Out of memory: memcached's words, and the server keeps serving.
    let tiny = shared(1024);
    let value = "v".repeat(2000);
    assert_eq!(
        text(
            &tiny,
            &format!("ms k {}\r\n{value}\r\nmn\r\n", value.len()),
            NOW
        ),
        "SERVER_ERROR out of memory storing object\r\nMN\r\n"
    );
}

#[test]
fn meta_e_gives_the_item_an_external_cas() {
    let s = shared(1 << 30);
    assert_eq!(text(&s, "ms e 1 E1000 c\r\nx\r\n", NOW), "HD c1000\r\n");
    assert_eq!(text(&s, "mg e c\r\n", NOW), "HD c1000\r\n");
    assert_eq!(text(&s, "ms e 1 C1000 E2000\r\ny\r\n", NOW), "HD\r\n");
    assert_eq!(
        text(&s, "md e I E3000\r\nmg e c\r\n", NOW),
        "HD\r\nHD c3000 X W\r\n"
    );
    assert_eq!(
        text(&s, "ma n N0 J5 E4000 c v\r\n", NOW),
        "VA 1 c4000\r\n5\r\n"
    );
    assert_eq!(text(&s, "ma n E4001 c\r\n", NOW), "HD c4001\r\n");
    assert_eq!(text(&s, "mg viv N30 E5000 c\r\n", NOW), "HD c5000 W\r\n");
    // A version at or past 2^63 is refused rather than let near the store's counter.
    assert_eq!(
        text(&s, "mg e E9223372036854775808\r\n", NOW),
        "CLIENT_ERROR bad token in command line format\r\n"
    );
}
