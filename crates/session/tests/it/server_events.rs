//! The near-cache and sessiond's session lifecycle events (`sessiond:sessions`): a session a
//! Rust node has cached leaves its cache as soon as PHP destroys it, an admin revokes it or
//! its server-side TTL passes, and everything on a flush, with no announcement from any Rust
//! node. Each test caches with a `max_age` of an hour, so nothing but the event can drop the
//! entry; waits poll with a generous bound and assert nothing about how long the event took.
//!
//! The last test runs the same bus against a plain Redis, where the events channel is
//! silent and the nodes' own announcements must keep working.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond_session::{
    CacheConfig, CachedStore, CreateOutcome, MemcachedStore, Record, RedisBus, RedisStore,
    SessionId, SessionStore,
};
use sessiond_test_harness::{McClient, RedisServer, Resp, RespClient, Sessiond};

use crate::common::servers::{sessiond_memcached_and_resp, sessiond_resp_url};
use crate::common::{memcached_ring, php_memcached};

const TTL: Duration = Duration::from_secs(600);

/// A near-cache over `store` whose bus also listens to the events of the server at `url`.
async fn cache_over<S: SessionStore>(store: S, url: &str) -> CachedStore<S> {
    let bus = RedisBus::connect_with_server_events(url, "near-cache-test:invalidate")
        .await
        .expect("subscribe");
    let config = CacheConfig {
        max_age: Duration::from_secs(3600),
        ..CacheConfig::default()
    };
    CachedStore::with_config(store, Arc::new(bus), config)
}

/// An id PHP accepts as it is: PHP's session ids may not contain `_` (its alphabet is
/// `a-zA-Z0-9,-`), which URL-safe base64 can produce; PHP would replace such an id.
fn php_compatible_id() -> SessionId {
    loop {
        let id = SessionId::generate();
        if !id.as_str().contains('_') {
            return id;
        }
    }
}

/// Creates session `id` through the cache, loads it, and checks the load came from memory.
async fn create_cached<S: SessionStore>(cache: &CachedStore<S>, id: &SessionId) {
    let mut record = Record::new(1);
    record.data.insert("user_id".into(), "42".into());
    assert_eq!(
        cache.create(id, &record, TTL).await.unwrap(),
        CreateOutcome::Created
    );
    let before = cache.stats();
    let loaded = cache.load(id).await.unwrap().expect("just created");
    assert_eq!(loaded.record.data["user_id"], "42");
    let after = cache.stats();
    assert_eq!(
        (after.hits, after.misses),
        (before.hits + 1, before.misses),
        "the load must be served from the near-cache"
    );
    assert!(cache.is_cached(id));
}

/// Polls until the cache no longer holds `id`; panics after a generous bound.
async fn until_dropped<S: SessionStore>(cache: &CachedStore<S>, id: &SessionId, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cache.is_cached(id) {
        assert!(
            Instant::now() < deadline,
            "{what}: the near-cache still holds the session ({:?})",
            cache.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// After the drop, the next load asks the store, which has no session any more.
async fn assert_gone_from_store<S: SessionStore>(cache: &CachedStore<S>, id: &SessionId) {
    let stats = cache.stats();
    assert!(stats.server_invalidations >= 1, "{stats:?}");
    assert_eq!(
        stats.peer_invalidations, 0,
        "no Rust node announced anything"
    );
    assert!(cache.load(id).await.unwrap().is_none());
    assert_eq!(
        cache.stats().misses,
        stats.misses + 1,
        "answered by the store"
    );
}

/// A Rust app keeps its sessions where PHP's memcached handler does (`MemcachedStore` with
/// prefix `memc.sess.key.`) and caches one; PHP (php-cli, php-memcached) destroys it. The
/// value is the middleware's JSON, which PHP cannot decode as its own, so PHP may destroy
/// it while starting the session or on `session_destroy()`: either way it deletes the key,
/// sessiond publishes `destroyed` for the php-memcached family, and the Rust cache, which
/// matches the key through its store's layout, drops the entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_destroy_drops_the_cached_session() {
    let server = sessiond_memcached_and_resp();
    let mut config = memcached_ring([server.memcache_addr()]);
    config.prefix = "memc.sess.key.".into();
    let cache = cache_over(
        MemcachedStore::new(config).unwrap(),
        &sessiond_resp_url(&server),
    )
    .await;
    let id = php_compatible_id();
    create_cached(&cache, &id).await;

    let script = r#"
        session_id($argv[1]);
        $started = session_start();
        echo $started ? "started\n" : "not started\n";
        if (session_status() === PHP_SESSION_ACTIVE) {
            echo session_destroy() ? "destroyed\n" : "destroy failed\n";
        }
        echo "id ", session_id(), "\n";
    "#;
    let save_path = format!("127.0.0.1:{}", server.memcache_addr().port());
    let php_id = id.as_str().to_owned();
    let out =
        tokio::task::spawn_blocking(move || php_memcached(&save_path, &[], script, &[&php_id]))
            .await
            .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("php: {stdout}{stderr}");
    assert!(out.status.success(), "php failed: {stdout}{stderr}");
    assert!(
        !stdout.contains("destroy failed"),
        "php could not destroy: {stdout}{stderr}"
    );
    let key = format!("memc.sess.key.{}", id.as_str());
    assert!(
        McClient::connect(server.memcache_addr())
            .get(&key)
            .is_none(),
        "PHP left {key} in place: {stdout}{stderr}"
    );

    until_dropped(&cache, &id, "PHP's session_destroy").await;
    assert_gone_from_store(&cache, &id).await;
}

/// An admin's `SESSION.REVOKE <key>` over RESP drops a session a Rust node cached; here the
/// store is the RESP one (`sess:{<id>}`, sessiond's own family).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_revoke_drops_the_cached_session() {
    let server = sessiond_memcached_and_resp();
    let url = sessiond_resp_url(&server);
    let store = RedisStore::connect(&url).await.unwrap();
    let cache = cache_over(store, &url).await;
    let id = SessionId::generate();
    create_cached(&cache, &id).await;

    let key = cache.inner().key(&id);
    let reply = admin(&server).call(&["SESSION.REVOKE", &key]);
    assert_eq!(reply.value, Resp::Int(1), "SESSION.REVOKE {key}: {reply}");

    until_dropped(&cache, &id, "SESSION.REVOKE").await;
    assert_gone_from_store(&cache, &id).await;
}

/// A cached session whose server-side TTL passes is dropped on the `expired` event. The
/// session is created with a long TTL and cached first; then its TTL is set to 1 s on the
/// server (as another app touching it with a short lifetime would), so the cache holds it
/// before the clock starts and nothing depends on how fast the test runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_drops_the_cached_session() {
    let server = sessiond_memcached_and_resp();
    let url = sessiond_resp_url(&server);
    let store = RedisStore::connect(&url).await.unwrap();
    let cache = cache_over(store, &url).await;
    let id = SessionId::generate();
    create_cached(&cache, &id).await;

    let key = cache.inner().key(&id);
    let reply = admin(&server).call(&["PEXPIRE", &key, "1000"]);
    assert_eq!(reply.value, Resp::Int(1), "PEXPIRE {key}: {reply}");
    assert!(cache.is_cached(&id), "a new TTL alone is no reason to drop");

    until_dropped(&cache, &id, "expiry").await;
    assert_gone_from_store(&cache, &id).await;
}

/// A flush drops everything a Rust node cached: sessiond publishes one `flushed` event per
/// database (`FLUSHALL` over RESP, `flush_all` over memcached) instead of one per session,
/// and the cache empties on it (a reset, not a per-session invalidation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_drops_every_cached_session() {
    let server = sessiond_memcached_and_resp();
    let url = sessiond_resp_url(&server);
    let cache = cache_over(RedisStore::connect(&url).await.unwrap(), &url).await;
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    for id in &ids {
        create_cached(&cache, id).await;
    }
    let reply = admin(&server).call(&["FLUSHALL"]);
    assert_eq!(reply.value, Resp::Simple("OK".into()), "FLUSHALL: {reply}");
    for id in &ids {
        until_dropped(&cache, id, "FLUSHALL").await;
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.server_invalidations, stats.peer_invalidations),
        (0, 0),
        "{stats:?}"
    );
    assert!(stats.resets >= 1, "one per database flushed: {stats:?}");
    for id in &ids {
        assert!(
            cache.load(id).await.unwrap().is_none(),
            "gone from the store"
        );
    }

    // memcached's flush_all, with the php-memcached layout.
    let mut config = memcached_ring([server.memcache_addr()]);
    config.prefix = "memc.sess.key.".into();
    let mc_cache = cache_over(MemcachedStore::new(config).unwrap(), &url).await;
    let id = php_compatible_id();
    create_cached(&mc_cache, &id).await;
    let ok = McClient::connect(server.memcache_addr()).command_line("flush_all");
    assert_eq!(ok, "OK");
    until_dropped(&mc_cache, &id, "flush_all").await;
    assert_eq!(mc_cache.stats().server_invalidations, 0);
    assert!(
        mc_cache.load(&id).await.unwrap().is_none(),
        "gone from the store"
    );
}

/// On plain Redis nothing publishes server events: the bus subscribes to the channel all
/// the same, and the nodes' own announcements work as without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_redis_keeps_node_announcements() {
    let redis = RedisServer::start(&[]);
    let url = redis.url();
    let a = cache_over(RedisStore::connect(&url).await.unwrap(), &url).await;
    let b = cache_over(RedisStore::connect(&url).await.unwrap(), &url).await;
    let id = SessionId::generate();
    create_cached(&a, &id).await;
    assert!(b.load(&id).await.unwrap().is_some());
    assert!(b.is_cached(&id));

    assert!(b.delete(&id).await.unwrap());
    until_dropped(&a, &id, "a peer's delete").await;
    let stats = a.stats();
    assert_eq!(
        (
            stats.peer_invalidations,
            stats.server_invalidations,
            stats.resets
        ),
        (1, 0, 0),
        "{stats:?}"
    );
    assert!(a.load(&id).await.unwrap().is_none());
}

fn admin(server: &Sessiond) -> RespClient {
    RespClient::connect(server.listener("resp").expect("resp listener"))
}
