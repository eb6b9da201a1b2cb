//! tower-sessions' Redis store (`tower-sessions-redis-store` 0.16 on fred 10) against
//! sessiond's RESP listener, through the store's own `SessionStore` API, as an axum app
//! would call it: `create` (`SET <id> <msgpack> EXAT <ts> NX`), `save` (`SET … EXAT <ts>
//! XX`), `load` (`GET`) and `delete` (`DEL`), the commands captured from it (docs/redis.md).
//!
//! The servers come from the workspace's test harness (`sessiond-test-harness`, shared with
//! sessiond's own real-client suite): sessiond on free loopback ports with a throwaway data
//! directory, or the Debian redis-server with `SESSIOND_IT_TARGET=redis`. This package cannot
//! depend on sessiond's binary, so the harness runs `target/<profile>/sessiond`, which
//! `scripts/test.sh` builds first; a missing or outdated binary fails the test and says to
//! run `cargo build -p sessiond`.
//!
//! Where the client has a bug, the test pins the reaction real Redis provokes: `save` of a
//! session whose key has expired sends `SET … XX`, Redis answers `$-1`, and the store
//! returns `Backend("Parse Error: Could not convert to bool.")` instead of an Ok. sessiond
//! must produce the same (a `$-1`, checked byte for byte on a raw connection), not an
//! invented `:0`, which fred would turn into a silent success.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sessiond_test_harness::{PASSWORD, Resp, RespServer, Target, escape, sessiond_binary};
use time::OffsetDateTime;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::Error as StoreError;
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::Client;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, ConnectionConfig};

/// What the store returns when the server answers `SET … NX|XX` with `$-1`: fred cannot turn
/// a nil into the bool the store asks for. Observed against Redis 7.0.15.
const NIL_AS_BOOL: &str = "Parse Error: Could not convert to bool.";

/// Fails if the sessiond binary the harness will run is older than one of its sources (this
/// package's tests do not rebuild it). The sources are the ones Cargo recorded for the binary
/// in its dep-info file (`target/<profile>/sessiond.d`), so a change Cargo would rebuild for
/// is caught and nothing else (test-only files, say) is. Skipped for the Redis reference run,
/// when `SESSIOND_BIN` names a binary explicitly, and when there is no dep-info file.
fn check_binary_is_fresh() {
    if Target::from_env() == Target::Redis || std::env::var_os("SESSIOND_BIN").is_some() {
        return;
    }
    let bin = sessiond_binary();
    let Ok(depinfo) = std::fs::read_to_string(bin.with_extension("d")) else {
        return;
    };
    let built = modified(&bin);
    // Make syntax: `<target>: <dep> <dep> …`, spaces inside paths escaped as `\ `.
    let deps = depinfo
        .lines()
        .next()
        .and_then(|l| l.split_once(": "))
        .map_or("", |(_, deps)| deps)
        .replace("\\ ", "\0");
    for dep in deps.split_whitespace() {
        let path = PathBuf::from(dep.replace('\0', " "));
        if std::fs::metadata(&path).is_ok_and(|m| m.modified().is_ok_and(|t| t > built)) {
            panic!(
                "{} is older than its source {}: run `cargo build -p sessiond` (scripts/test.sh \
                 does) before `cargo test -p sessiond-compat-fred`",
                bin.display(),
                path.display()
            );
        }
    }
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("mtime of {}: {e}", path.display()))
}

fn start(password: Option<&str>) -> RespServer {
    check_binary_is_fresh();
    RespServer::start_with(password)
}

/// A connected fred client (RESP2, fred's default), without a reconnect policy: a refused
/// handshake must fail the test rather than be retried forever.
async fn store(server: &RespServer, password: Option<&str>) -> (RedisStore<Client>, Client) {
    let addr = server.addr();
    let url = match password {
        Some(pass) => format!("redis://:{pass}@{addr}"),
        None => format!("redis://{addr}"),
    };
    let config = Config::from_url(&url).expect("fred config from URL");
    let connection = ConnectionConfig {
        connection_timeout: Duration::from_secs(5),
        internal_command_timeout: Duration::from_secs(5),
        ..ConnectionConfig::default()
    };
    let client = Client::new(config, None, Some(connection), None);
    if let Err(e) = client.init().await {
        panic!(
            "fred could not connect to {} at {addr}: {e}\n{}",
            server.name(),
            server.diagnostics()
        );
    }
    (RedisStore::new(client.clone()), client)
}

fn record(user: &str, lifetime: time::Duration) -> Record {
    Record {
        id: Id::default(),
        data: HashMap::from([("user".to_string(), serde_json::json!(user))]),
        expiry_date: OffsetDateTime::now_utc() + lifetime,
    }
}

/// create, load, save, load, delete, load; the raw value is the store's MessagePack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_save_load_delete() {
    let server = start(None);
    server.header("tower-sessions-redis-store lifecycle");
    let (store, client) = store(&server, None).await;
    let mut rc = server.client(None);

    let mut rec = record("alice", time::Duration::hours(1));
    store.create(&mut rec).await.expect("create");
    let key = rec.id.to_string();
    let raw = rc
        .get(&key)
        .unwrap_or_else(|| panic!("created session {key} is not stored"));
    assert_eq!(
        raw.first(),
        Some(&0x93),
        "not the store's MessagePack [id, data, expiry]: {}",
        escape(&raw)
    );
    let loaded = store.load(&rec.id).await.expect("load").expect("loaded");
    assert_eq!(loaded, rec, "load returned something else than was stored");
    println!("  created and loaded {key} ({} bytes)", raw.len());

    rec.data.insert("n".into(), serde_json::json!(2));
    rec.expiry_date += time::Duration::hours(1);
    store.save(&rec).await.expect("save of a live session");
    let loaded = store.load(&rec.id).await.expect("load").expect("loaded");
    assert_eq!(loaded, rec, "after save, load returned something else");
    println!("  saved (SET … XX) and loaded again");

    // A second create with the same id is refused by NX. The store means to retry with a
    // new id, but fred fails on the nil first; the error is what Redis provokes.
    let mut clash = rec.clone();
    clash
        .data
        .insert("user".into(), serde_json::json!("mallory"));
    let err = store.create(&mut clash).await;
    assert!(
        matches!(&err, Err(StoreError::Backend(m)) if m == NIL_AS_BOOL),
        "create of an existing id: expected Err(Backend({NIL_AS_BOOL:?})) as with Redis, got \
         {err:?}"
    );
    let loaded = store.load(&rec.id).await.expect("load").expect("loaded");
    assert_eq!(loaded, rec, "a refused create overwrote the session");

    store.delete(&rec.id).await.expect("delete");
    assert!(store.load(&rec.id).await.expect("load").is_none());
    assert!(!rc.exists(&key), "{key} survived delete");
    println!("  NX clash refused, session unchanged; deleted");
    client.quit().await.expect("quit");
}

/// Saving a session whose key has expired: `SET … XX` must be answered with a nil, exactly
/// as Redis does: `$-1` in RESP2, `_` in RESP3, and through fred the store's parse error.
/// Saving a live session with a deadline in the past deletes it (Redis 7 answers `+OK` and
/// the key is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_an_expired_session_gets_nil() {
    let server = start(None);
    server.header("tower-sessions-redis-store expired save");
    let (store, client) = store(&server, None).await;

    // EXAT has whole seconds, so a 2-second lifetime ends 1 to 2 seconds from now.
    let mut rec = record("bob", time::Duration::seconds(2));
    store.create(&mut rec).await.expect("create");
    let key = rec.id.to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.load(&rec.id).await.expect("load").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "{key} still loads 10 s after its 2 s lifetime\n{}",
            server.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("  {key} expired");

    rec.expiry_date = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let err = store.save(&rec).await;
    assert!(
        matches!(&err, Err(StoreError::Backend(m)) if m == NIL_AS_BOOL),
        "save of an expired session: Redis answers $-1 and the store returns \
         Err(Backend({NIL_AS_BOOL:?})); got {err:?}\n{}",
        server.diagnostics()
    );
    assert!(
        store.load(&rec.id).await.expect("load").is_none(),
        "save with XX brought an expired session back"
    );

    // The same command on raw connections, to show the exact bytes.
    let exat = (OffsetDateTime::now_utc() + time::Duration::hours(1))
        .unix_timestamp()
        .to_string();
    let mut rc = server.client(None);
    let reply = rc.call(&["SET", &key, "x", "EXAT", &exat, "XX"]);
    assert_eq!(
        reply.raw, b"$-1\r\n",
        "RESP2 SET … EXAT … XX of a missing key: Redis sends `$-1\\r\\n`, got `{reply}`"
    );
    let hello = rc.call(&["HELLO", "3"]);
    assert!(
        matches!(hello.value, Resp::Map(_)),
        "HELLO 3 answered {hello}"
    );
    let reply = rc.call(&["SET", &key, "x", "EXAT", &exat, "XX"]);
    assert_eq!(
        reply.raw, b"_\r\n",
        "RESP3 SET … EXAT … XX of a missing key: Redis sends `_\\r\\n`, got `{reply}`"
    );
    println!("  save after expiry: nil ($-1 / _), store error {NIL_AS_BOOL:?} as with Redis");

    // A live session saved with a deadline already past is deleted.
    let mut live = record("carol", time::Duration::hours(1));
    store.create(&mut live).await.expect("create");
    live.expiry_date = OffsetDateTime::now_utc() - time::Duration::seconds(10);
    store
        .save(&live)
        .await
        .expect("save with a past deadline (Redis answers +OK)");
    assert!(
        store.load(&live.id).await.expect("load").is_none(),
        "a session saved with a past EXAT is still there"
    );
    println!("  save with a past deadline: +OK, session gone");
    client.quit().await.expect("quit");
}

/// fred against a password-protected server (fred authenticates right after connecting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_password() {
    let server = start(Some(PASSWORD));
    server.header("tower-sessions-redis-store with requirepass");
    let (store, client) = store(&server, Some(PASSWORD)).await;
    let mut rec = record("dave", time::Duration::hours(1));
    store.create(&mut rec).await.expect("create");
    let loaded = store.load(&rec.id).await.expect("load").expect("loaded");
    assert_eq!(loaded, rec);
    println!("  authenticated, created and loaded {}", rec.id);
    client.quit().await.expect("quit");
}
