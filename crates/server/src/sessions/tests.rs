//! The session layer through the glue of both protocols: the index follows every write,
//! expiry, flush and rename; the `SESSION.*` commands; revocation that stays revoked; the
//! per-user limit; and the property that the index always equals the one recomputed from
//! the store, across a crash and recovery.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use sessiond_proto_memcache::{Command, Outcome, StoreMode};
use sessiond_proto_resp::Reply;

use crate::config::Config;
use crate::exec::Shared;
use crate::exec::resp::{Answer, Session, execute};

const NOW: u64 = 1_800_000_000_000;

fn shared_with(max_per_user: Option<u32>) -> Shared {
    let mut config = Config::default();
    config
        .sessions
        .as_mut()
        .expect("on by default")
        .max_per_user = max_per_user;
    Shared::unjournaled(config, NOW)
}

fn resp(shared: &Shared, session: &mut Session, words: &[&[u8]], now: u64) -> Reply {
    let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
    let executed = execute(shared, session, &args, now);
    shared.settle_sessions(now);
    match executed.answer {
        Answer::One(reply) => reply,
        Answer::Many(_) => panic!("one reply expected"),
    }
}

fn mc_set(shared: &Shared, key: &str, value: &str, exptime: i64, now: u64) -> Outcome {
    let outcome = crate::exec::memcache::execute(
        shared,
        &Command::Store {
            mode: StoreMode::Set,
            key: Bytes::copy_from_slice(key.as_bytes()),
            flags: 0,
            exptime,
            value: Bytes::copy_from_slice(value.as_bytes()),
            cas: 0,
        },
        now,
    );
    shared.settle_sessions(now);
    outcome
}

fn field<'r>(reply: &'r Reply, name: &str) -> &'r Reply {
    let Reply::Map(pairs) = reply else {
        panic!("a map expected, got {reply:?}")
    };
    pairs
        .iter()
        .find(|(k, _)| *k == Reply::Bulk(Bytes::copy_from_slice(name.as_bytes())))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no field {name} in {reply:?}"))
}

fn counts(shared: &Shared, session: &mut Session, family: Option<&str>) -> (i64, i64) {
    let reply = match family {
        None => resp(shared, session, &[b"SESSION.COUNT"], NOW),
        Some(f) => resp(
            shared,
            session,
            &[b"SESSION.COUNT", b"FAMILY", f.as_bytes()],
            NOW,
        ),
    };
    let int = |r: &Reply| match r {
        Reply::Integer(n) => *n,
        other => panic!("integer expected, got {other:?}"),
    };
    (int(field(&reply, "sessions")), int(field(&reply, "users")))
}

fn php_login(user: u32) -> String {
    format!("user_id|i:{user};name|s:8:\"a|b;c:\"d\";")
}

#[test]
fn the_index_follows_both_protocols_and_the_commands_read_it() {
    let shared = shared_with(None);
    let mut s = Session::new(&shared, String::new(), String::new(), NOW);
    // Three devices of user 42 in two families, one of user 7, an anonymous session, a
    // php-memcached lock key (not a session) and a plain cache key.
    assert_eq!(
        mc_set(&shared, "memc.sess.key.a1", &php_login(42), 600, NOW),
        Outcome::Stored { cas: 1 }
    );
    mc_set(&shared, "memc.sess.key.a2", &php_login(42), 600, NOW + 1);
    mc_set(&shared, "memc.sess.key.lock.a2", "1", 30, NOW);
    mc_set(&shared, "memc.sess.key.anon", "", 600, NOW);
    mc_set(&shared, "cache:x", "user_id|i:42;", 0, NOW);
    resp(
        &shared,
        &mut s,
        &[b"SET", b"PHPREDIS_SESSION:b1", php_login(42).as_bytes()],
        NOW + 2,
    );
    resp(
        &shared,
        &mut s,
        &[
            b"SET",
            b"sess:c1",
            br#"{"cookie":{"originalMaxAge":1},"passport":{"user":"7"}}"#,
            b"EX",
            b"60",
        ],
        NOW,
    );
    assert_eq!(counts(&shared, &mut s, None), (5, 2));
    assert_eq!(counts(&shared, &mut s, Some("php-memcached")), (3, 1));
    assert_eq!(counts(&shared, &mut s, Some("express")), (1, 1));
    let Reply::Array(list) = resp(&shared, &mut s, &[b"SESSION.LIST", b"42"], NOW) else {
        panic!("an array")
    };
    assert_eq!(list.len(), 3);
    assert_eq!(
        *field(&list[0], "family"),
        Reply::Bulk(Bytes::from_static(b"php-memcached"))
    );
    assert_eq!(
        *field(&list[0], "id"),
        Reply::Bulk(Bytes::from_static(b"a1"))
    );
    assert_eq!(
        *field(&list[0], "expires_at"),
        Reply::Integer((NOW + 600_000) as i64)
    );
    // A read is "seen", an admin's SHOW is not.
    let got = crate::exec::memcache::execute(
        &shared,
        &Command::Get {
            keys: vec![Bytes::from_static(b"memc.sess.key.a1")],
            touch: None,
        },
        NOW + 5,
    );
    assert!(matches!(got, Outcome::Values(..)), "{got:?}");
    let shown = resp(
        &shared,
        &mut s,
        &[b"SESSION.SHOW", b"memc.sess.key.a1"],
        NOW + 9,
    );
    assert_eq!(*field(&shown, "seen_at"), Reply::Integer((NOW + 5) as i64));
    let Reply::Bulk(data) = field(&shown, "data") else {
        panic!("data")
    };
    let data: serde_json::Value = serde_json::from_slice(data).unwrap();
    assert_eq!(data["user_id"], 42);
    assert_eq!(data["name"], "a|b;c:\"d");
    assert_eq!(
        resp(&shared, &mut s, &[b"SESSION.SHOW", b"cache:x"], NOW),
        Reply::Null
    );
    // Logging out (a delete), an expiry and a rename are followed.
    resp(&shared, &mut s, &[b"DEL", b"PHPREDIS_SESSION:b1"], NOW);
    assert_eq!(counts(&shared, &mut s, None), (4, 2));
    shared.databases[0].expire_due(NOW + 60_000);
    assert_eq!(
        counts(&shared, &mut s, None),
        (3, 1),
        "the express session expired"
    );
    resp(
        &shared,
        &mut s,
        &[b"RENAME", b"memc.sess.key.a2", b"PHPREDIS_SESSION:a2"],
        NOW + 60_000,
    );
    assert_eq!(counts(&shared, &mut s, Some("phpredis")), (1, 1));
    resp(&shared, &mut s, &[b"FLUSHALL"], NOW + 60_000);
    assert_eq!(counts(&shared, &mut s, None), (0, 0));
    assert_eq!(shared.sessions.as_ref().unwrap().bytes(), 0);
}

#[test]
fn a_revoked_session_stays_revoked_on_both_protocols_until_its_old_deadline() {
    let shared = shared_with(None);
    let mut admin = Session::new(&shared, String::new(), String::new(), NOW);
    mc_set(&shared, "memc.sess.key.d1", &php_login(42), 600, NOW);
    mc_set(&shared, "memc.sess.key.d2", &php_login(42), 600, NOW);
    resp(
        &shared,
        &mut admin,
        &[
            b"SET",
            b"PHPREDIS_SESSION:d3",
            php_login(42).as_bytes(),
            b"EX",
            b"300",
        ],
        NOW,
    );
    let revoked = resp(
        &shared,
        &mut admin,
        &[b"SESSION.REVOKEUSER", b"42", b"EXCEPT", b"memc.sess.key.d2"],
        NOW,
    );
    assert_eq!(revoked, Reply::Integer(2));
    assert_eq!(counts(&shared, &mut admin, None), (1, 1), "the kept device");
    // The slow request that was in flight writes its session back: refused, on both
    // protocols, and the user stays logged out there.
    let late = mc_set(&shared, "memc.sess.key.d1", &php_login(42), 600, NOW + 10);
    assert!(matches!(&late, Outcome::Revoked), "{late:?}");
    let late = resp(
        &shared,
        &mut admin,
        &[b"SET", b"PHPREDIS_SESSION:d3", b"x"],
        NOW + 10,
    );
    assert!(
        matches!(&late, Reply::Error(e) if e.starts_with(b"ERR this session was revoked")),
        "{late:?}"
    );
    assert_eq!(counts(&shared, &mut admin, None), (1, 1));
    // After the old deadline the id may be used again.
    let fresh = resp(
        &shared,
        &mut admin,
        &[b"SET", b"PHPREDIS_SESSION:d3", b"x"],
        NOW + 300_000,
    );
    assert_eq!(fresh, Reply::ok());
    // One session, then nothing left to revoke.
    assert_eq!(
        resp(
            &shared,
            &mut admin,
            &[b"SESSION.REVOKE", b"memc.sess.key.d2"],
            NOW
        ),
        Reply::Integer(1)
    );
    assert_eq!(
        resp(
            &shared,
            &mut admin,
            &[b"SESSION.REVOKE", b"memc.sess.key.d2"],
            NOW
        ),
        Reply::Integer(0)
    );
    let stats = &shared.sessions.as_ref().unwrap().stats;
    assert_eq!(stats.revoked.load(std::sync::atomic::Ordering::Relaxed), 3);
}

#[test]
fn the_per_user_limit_revokes_the_oldest_session_with_the_write_that_exceeds_it() {
    let shared = shared_with(Some(2));
    let mut s = Session::new(&shared, String::new(), String::new(), NOW);
    for (i, device) in ["e1", "e2", "e3"].iter().enumerate() {
        mc_set(
            &shared,
            &format!("memc.sess.key.{device}"),
            &php_login(9),
            600,
            NOW + i as u64,
        );
    }
    assert_eq!(counts(&shared, &mut s, None), (2, 1));
    assert!(
        shared.databases[0]
            .get(b"memc.sess.key.e1", NOW + 5)
            .is_none(),
        "the oldest went"
    );
    let again = mc_set(&shared, "memc.sess.key.e1", &php_login(9), 600, NOW + 6);
    assert!(matches!(again, Outcome::Revoked), "and stays revoked");
    // Another family has its own count; an anonymous session counts for nobody.
    resp(
        &shared,
        &mut s,
        &[b"SET", b"PHPREDIS_SESSION:e4", php_login(9).as_bytes()],
        NOW + 7,
    );
    mc_set(&shared, "memc.sess.key.e5", "", 600, NOW + 8);
    assert_eq!(counts(&shared, &mut s, None), (4, 1));
}

#[test]
fn session_commands_check_their_arguments_and_roles() {
    let shared = shared_with(None);
    let mut s = Session::new(&shared, String::new(), String::new(), NOW);
    let err = |r: Reply| match r {
        Reply::Error(e) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("an error expected, got {other:?}"),
    };
    assert!(
        err(resp(
            &shared,
            &mut s,
            &[b"SESSION.COUNT", b"FAMILY", b"nope"],
            NOW
        ))
        .contains("no session family")
    );
    assert!(err(resp(&shared, &mut s, &[b"SESSION.COUNT", b"extra"], NOW)).contains("syntax"));
    assert!(err(resp(&shared, &mut s, &[b"SESSION.LIST", b"\xff"], NOW)).contains("UTF-8"));
    assert!(
        err(resp(
            &shared,
            &mut s,
            &[b"SESSION.REVOKEUSER", b"1", b"BOGUS"],
            NOW
        ))
        .contains("syntax")
    );
    assert_eq!(
        resp(&shared, &mut s, &[b"SESSION.LIST", b"nobody"], NOW),
        Reply::Array(vec![])
    );
    let Reply::Array(families) = resp(&shared, &mut s, &[b"SESSION.FAMILIES"], NOW) else {
        panic!("an array")
    };
    assert_eq!(families.len(), 4, "the presets");
    // The layer off: the commands say so.
    let off = Shared::unjournaled(
        Config {
            sessions: None,
            ..Config::default()
        },
        NOW,
    );
    let mut s = Session::new(&off, String::new(), String::new(), NOW);
    assert!(err(resp(&off, &mut s, &[b"SESSION.COUNT"], NOW)).contains("off"));
}

// The property: the index equals the one recomputed from the store, whatever the clients
// did, and again after a crash and recovery.

#[derive(Debug, Clone)]
enum Op {
    McSet {
        key: usize,
        user: Option<u8>,
        ttl: u8,
    },
    McDelete {
        key: usize,
    },
    McTouch {
        key: usize,
        ttl: u8,
    },
    RespSet {
        key: usize,
        user: Option<u8>,
    },
    RespDel {
        key: usize,
    },
    RespExpire {
        key: usize,
        ttl: u8,
    },
    Rename {
        from: usize,
        to: usize,
    },
    Revoke {
        key: usize,
    },
    RevokeUser {
        user: u8,
    },
    Flush,
    Tick {
        seconds: u8,
    },
    Crash,
}

const KEYS: &[&str] = &[
    "memc.sess.key.k0",
    "memc.sess.key.k1",
    "memc.sess.key.lock.k1",
    "PHPREDIS_SESSION:k2",
    "PHPREDIS_SESSION:k3",
    "sess:k4",
    "plain",
];

fn value_for(key: &str, user: Option<u8>) -> String {
    match (key.starts_with("sess:"), user) {
        (true, Some(u)) => format!(r#"{{"cookie":{{}},"passport":{{"user":"{u}"}}}}"#),
        (true, None) => r#"{"cookie":{}}"#.to_string(),
        (false, Some(u)) => php_login(u.into()),
        (false, None) => "cart|a:0:{}".to_string(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let user = proptest::option::of(0u8..3);
    prop_oneof![
        4 => (key.clone(), user.clone(), 0u8..30).prop_map(|(key, user, ttl)| Op::McSet { key, user, ttl }),
        1 => key.clone().prop_map(|key| Op::McDelete { key }),
        1 => (key.clone(), 0u8..30).prop_map(|(key, ttl)| Op::McTouch { key, ttl }),
        3 => (key.clone(), user).prop_map(|(key, user)| Op::RespSet { key, user }),
        1 => key.clone().prop_map(|key| Op::RespDel { key }),
        1 => (key.clone(), 0u8..30).prop_map(|(key, ttl)| Op::RespExpire { key, ttl }),
        1 => (key.clone(), key.clone()).prop_map(|(from, to)| Op::Rename { from, to }),
        1 => key.prop_map(|key| Op::Revoke { key }),
        1 => (0u8..3).prop_map(|user| Op::RevokeUser { user }),
        1 => Just(Op::Flush),
        2 => (0u8..20).prop_map(|seconds| Op::Tick { seconds }),
        1 => Just(Op::Crash),
    ]
}

/// (name, family, user, deadline) of every session, as the index has it.
type Row = (Vec<u8>, u16, Option<String>, Option<u64>);

fn indexed(shared: &Shared) -> Vec<Row> {
    shared
        .sessions
        .as_ref()
        .unwrap()
        .snapshot()
        .into_iter()
        .map(|(name, meta)| {
            let mut bytes = vec![name.db];
            bytes.extend_from_slice(&name.key);
            (
                bytes,
                meta.family,
                meta.user.map(|u| u.to_string()),
                meta.expires_at,
            )
        })
        .collect()
}

/// The same, recomputed from the store's live contents with the family decoders.
fn recomputed(shared: &Shared, now: u64) -> Vec<Row> {
    let sessions = shared.sessions.as_ref().unwrap();
    let mut rows = Vec::new();
    for (db, store) in shared.databases.iter().enumerate() {
        for shard in 0..sessiond_store::SHARDS {
            for (key, entry) in store.live_entries_in_shard(shard, now) {
                let Some((family, found)) = sessions.families().classify(&key) else {
                    continue;
                };
                let user = match &entry.value {
                    sessiond_store::Value::Str(v) => match found.identify(v) {
                        Ok(sessiond_session_format::Identity::Session { user }) => user,
                        Ok(sessiond_session_format::Identity::NotSession { .. }) => continue,
                        Err(_) => None,
                    },
                    _ => None,
                };
                let mut name = vec![db as u8];
                name.extend_from_slice(&key);
                rows.push((name, family as u16, user, entry.deadline));
            }
        }
    }
    rows.sort();
    rows
}

mod durable {
    //! The crash half of the property: a server on a real journal in a temporary directory.
    use super::*;
    use crate::durability::{self, FsyncPolicy, OpenOptions};
    use crate::sessions::Sessions;

    pub struct Durable {
        pub dir: std::path::PathBuf,
        pub shared: Option<Shared>,
    }

    impl Durable {
        pub fn new() -> Durable {
            let dir = std::env::temp_dir().join(format!(
                "sessiond-sessions-prop-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut durable = Durable { dir, shared: None };
            durable.open(NOW);
            durable
        }

        /// Opens (recovers) the directory as the server does at start.
        pub fn open(&mut self, now: u64) {
            self.shared = None;
            let config = Config::default();
            let budget = Arc::new(sessiond_store::Budget::new(config.max_memory));
            let pubsub = Arc::new(crate::exec::resp::pubsub::PubSub::default());
            let sessions = Arc::new(Sessions::new(
                config.sessions.clone().unwrap(),
                budget.clone(),
                pubsub.clone(),
            ));
            let options = OpenOptions {
                dir: self.dir.clone(),
                policy: FsyncPolicy::No,
                recover_truncate: false,
                databases: crate::DATABASES,
                segment_limit: 64 << 20,
                rewrite_min_size: 64 << 20,
            };
            let opened = durability::open(&options, budget, now, &|db, journal| {
                crate::changes::ChangeObserver::shared(
                    db,
                    journal,
                    Some(pubsub.clone()),
                    Some(sessions.clone()),
                )
            })
            .unwrap();
            sessions.rebuild(&opened.stores, now);
            self.shared = Some(Shared::new(
                opened.stores,
                Some(opened.journal),
                config,
                pubsub,
                Some(sessions),
            ));
        }

        /// A crash: whatever reached the journal's files is what the next start sees.
        pub fn crash_and_recover(&mut self, now: u64) {
            // Every write here counts as acknowledged, so what a crash keeps is everything
            // queued: written out, then the process's memory is gone.
            if let Some(shared) = self.shared.take()
                && let Some(journal) = &shared.journal
            {
                journal.shutdown();
            }
            self.open(now);
        }
    }

    impl Drop for Durable {
        fn drop(&mut self) {
            if let Some(shared) = self.shared.take()
                && let Some(journal) = &shared.journal
            {
                journal.shutdown();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_index_always_equals_the_one_recomputed_from_the_store(ops in proptest::collection::vec(op(), 1..40)) {
        let mut server = durable::Durable::new();
        let mut now = NOW;
        for op in ops {
            let shared = server.shared.as_ref().unwrap();
            let mut s = Session::new(shared, String::new(), String::new(), now);
            let key = |i: usize| KEYS[i].as_bytes();
            match op {
                Op::McSet { key: k, user, ttl } => {
                    mc_set(shared, KEYS[k], &value_for(KEYS[k], user), ttl as i64, now);
                }
                Op::McDelete { key: k } => {
                    crate::exec::memcache::execute(shared, &Command::Delete { key: Bytes::copy_from_slice(key(k)), cas: 0 }, now);
                }
                Op::McTouch { key: k, ttl } => {
                    crate::exec::memcache::execute(shared, &Command::Touch { key: Bytes::copy_from_slice(key(k)), exptime: ttl as i64 }, now);
                }
                Op::RespSet { key: k, user } => {
                    resp(shared, &mut s, &[b"SET", key(k), value_for(KEYS[k], user).as_bytes()], now);
                }
                Op::RespDel { key: k } => {
                    resp(shared, &mut s, &[b"DEL", key(k)], now);
                }
                Op::RespExpire { key: k, ttl } => {
                    resp(shared, &mut s, &[b"EXPIRE", key(k), ttl.to_string().as_bytes()], now);
                }
                Op::Rename { from, to } => {
                    resp(shared, &mut s, &[b"RENAME", key(from), key(to)], now);
                }
                Op::Revoke { key: k } => {
                    resp(shared, &mut s, &[b"SESSION.REVOKE", key(k)], now);
                }
                Op::RevokeUser { user } => {
                    resp(shared, &mut s, &[b"SESSION.REVOKEUSER", user.to_string().as_bytes()], now);
                }
                Op::Flush => {
                    resp(shared, &mut s, &[b"FLUSHALL"], now);
                }
                Op::Tick { seconds } => {
                    now += seconds as u64 * 1000;
                    // Half the time the sweep reclaims, half the time only reads find out.
                    if seconds % 2 == 0 {
                        for store in &shared.databases {
                            store.expire_due(now);
                        }
                    }
                }
                Op::Crash => server.crash_and_recover(now),
            }
            let shared = server.shared.as_ref().unwrap();
            // Reads find expired keys too: reclaim what is due before comparing, as any
            // read of them would.
            for store in &shared.databases {
                store.expire_due(now);
            }
            prop_assert_eq!(indexed(shared), recomputed(shared, now));
        }
        let used = server.shared.as_ref().unwrap().sessions.as_ref().unwrap().bytes();
        prop_assert!(used > 0 || indexed(server.shared.as_ref().unwrap()).is_empty());
    }
}

#[test]
fn hostile_sessions_cost_bounded_work_and_replies() {
    let mut config = Config {
        client_output_limit: 4096,
        ..Config::default()
    };
    config.sessions.as_mut().unwrap().max_per_user = None;
    let shared = Shared::unjournaled(config, NOW);
    let mut s = Session::new(&shared, String::new(), String::new(), NOW);
    // One user with more sessions than one reply may carry: the listing is refused, not
    // built past the output limit, and counting still works.
    for i in 0..200 {
        mc_set(
            &shared,
            &format!("memc.sess.key.h{i}"),
            &php_login(5),
            600,
            NOW,
        );
    }
    let listed = resp(&shared, &mut s, &[b"SESSION.LIST", b"5"], NOW);
    assert!(
        matches!(&listed, Reply::Error(e) if e.starts_with(b"ERR reply")),
        "{listed:?}"
    );
    assert_eq!(counts(&shared, &mut s, None), (200, 1));
    // Values made to hurt the decoder: deep nesting, a huge announced length, a user id
    // longer than any real one. Each is kept and served as written, and has no user.
    let deep = format!(
        "user_id|{}i:1;{}",
        "a:1:{i:0;".repeat(10_000),
        "}".repeat(10_000)
    );
    let huge = "user_id|s:999999999999:\"x\";".to_string();
    let long_user = format!("user_id|s:1000:\"{}\";", "u".repeat(1000));
    for (key, value) in [("x1", &deep), ("x2", &huge), ("x3", &long_user)] {
        let key = format!("memc.sess.key.{key}");
        assert!(matches!(
            mc_set(&shared, &key, value, 600, NOW),
            Outcome::Stored { .. }
        ));
        let stored = shared.databases[0].get(key.as_bytes(), NOW).unwrap();
        assert_eq!(
            stored.value,
            sessiond_store::Value::Str(Bytes::copy_from_slice(value.as_bytes()))
        );
        let shown = resp(&shared, &mut s, &[b"SESSION.SHOW", key.as_bytes()], NOW);
        assert_eq!(*field(&shown, "user"), Reply::Null, "{key}");
    }
    let undecodable = shared
        .sessions
        .as_ref()
        .unwrap()
        .stats
        .undecodable
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(undecodable, 3);
    assert_eq!(counts(&shared, &mut s, None), (203, 1));
}

#[test]
fn logging_in_on_an_anonymous_session_counts_against_the_per_user_limit() {
    let shared = shared_with(Some(1));
    let mut s = Session::new(&shared, String::new(), String::new(), NOW);
    mc_set(&shared, "memc.sess.key.f1", &php_login(3), 600, NOW);
    // PHP's usual path: a session starts empty, and a later write logs it in.
    mc_set(&shared, "memc.sess.key.f2", "", 600, NOW + 1);
    assert_eq!(counts(&shared, &mut s, None), (2, 1));
    mc_set(&shared, "memc.sess.key.f2", &php_login(3), 600, NOW + 2);
    assert_eq!(counts(&shared, &mut s, None), (1, 1));
    assert!(
        shared.databases[0]
            .get(b"memc.sess.key.f1", NOW + 3)
            .is_none()
    );
}

/// `SESSION.LIST … CURSOR c COUNT n` pages a user's sessions oldest first, as `SCAN` does;
/// the unpaged form refuses a user with more than one page's maximum; bad cursors and
/// counts are errors.
#[test]
fn session_list_pages_and_refuses_an_unbounded_reply() {
    use crate::sessions::LIST_MAX;
    let shared = shared_with(None);
    let mut s = Session::new(&shared, String::new(), String::new(), NOW);
    let err = |r: Reply| match r {
        Reply::Error(e) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("an error expected, got {other:?}"),
    };
    let total = LIST_MAX + 5;
    for i in 0..total {
        // Creation times with ties, so the order also rests on the key.
        let key = format!("memc.sess.key.{i:05}");
        mc_set(&shared, &key, &php_login(42), 600, NOW + (i / 3) as u64);
    }
    let refused = err(resp(&shared, &mut s, &[b"SESSION.LIST", b"42"], NOW));
    assert!(
        refused.contains("more than 1000") && refused.contains("CURSOR"),
        "{refused}"
    );
    let page = |s: &mut Session, cursor: &[u8], count: &[u8]| -> (Vec<u8>, Vec<Vec<u8>>) {
        let reply = resp(
            &shared,
            s,
            &[b"SESSION.LIST", b"42", b"CURSOR", cursor, b"COUNT", count],
            NOW,
        );
        let Reply::Array(parts) = reply else {
            panic!("[cursor, sessions] expected, got {reply:?}")
        };
        let [Reply::Bulk(next), Reply::Array(items)] = &parts[..] else {
            panic!("[cursor, sessions] expected, got {parts:?}")
        };
        let ids = items
            .iter()
            .map(|item| match field(item, "id") {
                Reply::Bulk(id) => id.to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        (next.to_vec(), ids)
    };
    let mut cursor = b"0".to_vec();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let (next, got) = page(&mut s, &cursor, b"300");
        assert!(got.len() <= 300);
        ids.extend(got);
        pages += 1;
        if next == b"0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(pages, total.div_ceil(300));
    let expected: Vec<Vec<u8>> = (0..total).map(|i| format!("{i:05}").into_bytes()).collect();
    assert_eq!(ids, expected, "every session once, oldest first");
    // CURSOR alone pages by the default count; FAMILY still filters.
    let (_, first) = page(&mut s, b"0", b"1000");
    assert_eq!(first.len(), 1000);
    let Reply::Array(parts) = resp(
        &shared,
        &mut s,
        &[
            b"SESSION.LIST",
            b"42",
            b"FAMILY",
            b"express",
            b"CURSOR",
            b"0",
        ],
        NOW,
    ) else {
        panic!("an array")
    };
    assert_eq!(
        parts,
        [Reply::Bulk(Bytes::from_static(b"0")), Reply::Array(vec![])]
    );
    for (cursor, count, why) in [
        (&b"0"[..], &b"0"[..], "COUNT must be 1 to 1000"),
        (b"0", b"1001", "COUNT must be 1 to 1000"),
        (b"0", b"-1", "COUNT must be 1 to 1000"),
        (b"0", b"x", "not an integer"),
        (b"nope", b"1", "invalid cursor"),
        (b"1-0-abc", b"1", "invalid cursor"),
        (b"1-0-zz", b"1", "invalid cursor"),
        (b"99999999999999999999999-0-00", b"1", "invalid cursor"),
        (b"\xff", b"1", "invalid cursor"),
    ] {
        let refused = err(resp(
            &shared,
            &mut s,
            &[b"SESSION.LIST", b"42", b"CURSOR", cursor, b"COUNT", count],
            NOW,
        ));
        assert!(refused.contains(why), "{refused} for {cursor:?} {count:?}");
    }
    assert!(
        err(resp(
            &shared,
            &mut s,
            &[b"SESSION.LIST", b"42", b"COUNT"],
            NOW
        ))
        .contains("syntax")
    );
}
