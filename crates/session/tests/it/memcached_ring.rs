//! The memcached ring against the real thing: PHP (php-cli with php-memcached, as Debian
//! ships them) stores sessions over three memcached servers with consistent hashing, and the
//! Rust ring must name the server that holds each one; then failover with a replica.

use std::time::{Duration, Instant};

use sessiond_session::{
    CreateOutcome, Distribution, MemcachedConfig, MemcachedStore, Record, ServerSpec, SessionId,
    SessionStore, UpdateOutcome,
};
use sessiond_test_harness::{McClient, Memcached};

use crate::common::{memcached_ring, php_memcached};

/// Has PHP store `n` sessions through its memcached session handler and returns their ids.
fn php_sessions(save_path: &str, hash_type: &str, n: usize) -> Vec<String> {
    let script = r#"
        $ids = [];
        for ($i = 0; $i < (int)$argv[1]; $i++) {
            session_id(bin2hex(random_bytes(16)));
            if (!session_start()) { fwrite(STDERR, "session_start failed\n"); exit(1); }
            $_SESSION['i'] = $i;
            $ids[] = session_id();
            if (!session_write_close()) { fwrite(STDERR, "write failed\n"); exit(1); }
        }
        echo implode("\n", $ids), "\n";
    "#;
    let out = php_memcached(
        save_path,
        &[
            ("memcached.sess_consistent_hash", "1"),
            ("memcached.sess_consistent_hash_type", hash_type),
            ("memcached.sess_locking", "0"),
        ],
        script,
        &[&n.to_string()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("memcached"),
        "php failed (is php-memcached installed? Debian package `php-memcached`): {stderr}"
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), n, "php printed {ids:?}");
    ids
}

/// PHP writes, Rust predicts, raw `get`s on every server check.
fn agree(hash_type: &str, distribution: Distribution, weights: [u32; 3]) {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let save_path = servers
        .iter()
        .zip(weights)
        .map(|(s, w)| format!("127.0.0.1:{}:{w}", s.memcache_addr().port()))
        .collect::<Vec<_>>()
        .join(",");
    let ids = php_sessions(&save_path, hash_type, 200);
    let mut config = MemcachedConfig::from_save_path(&save_path).unwrap();
    config.distribution = distribution;
    let ring = MemcachedStore::new(config).unwrap();
    let mut per_server = [0usize; 3];
    for id in &ids {
        let holders: Vec<usize> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                McClient::connect(s.memcache_addr())
                    .get(&format!("memc.sess.key.{id}"))
                    .is_some()
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(holders.len(), 1, "session {id} held by {holders:?}");
        assert_eq!(
            ring.server_index(id),
            holders[0],
            "{hash_type}: Rust places {id} on server {} but PHP put it on {}",
            ring.server_index(id),
            holders[0]
        );
        per_server[holders[0]] += 1;
    }
    println!("{hash_type} (weights {weights:?}): sessions per server {per_server:?}, all agree");
    assert!(per_server.iter().all(|&n| n > 0), "{per_server:?}");
}

#[test]
fn php_and_rust_agree_ketama() {
    // php-memcached's default type; libmemcached ignores weights in this mode.
    agree("ketama", Distribution::Ketama, [1, 2, 3]);
}

#[test]
fn php_and_rust_agree_ketama_weighted() {
    agree("ketama_weighted", Distribution::KetamaWeighted, [1, 2, 3]);
}

#[test]
fn save_path_forms() {
    let c = MemcachedConfig::from_save_path("tcp://10.0.0.1:11211?weight=2, tcp://10.0.0.2:11212")
        .unwrap();
    assert_eq!(
        c.servers,
        vec![
            ServerSpec {
                host: "10.0.0.1".into(),
                port: 11211,
                weight: 2
            },
            ServerSpec::new("10.0.0.2", 11212),
        ]
    );
    let c = MemcachedConfig::from_save_path("a:1:3,b").unwrap();
    assert_eq!((c.servers[0].weight, c.servers[1].port), (3, 11211));
    assert!(MemcachedConfig::from_save_path("").is_err());
}

/// With one replica, the sessions of a stopped server are served by the next one, the dead
/// server is skipped without waiting for its timeout again, and updates keep working.
/// Without replicas, the same sessions fail loudly instead of starting over empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_replica() {
    let mut servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let mut config = memcached_ring(servers.iter().map(Memcached::memcache_addr));
    config.replicas = 1;
    config.timeout = Duration::from_millis(300);
    config.failure_limit = 1;
    config.retry_interval = Duration::from_secs(60);
    let no_replica = {
        let mut c = config.clone();
        c.replicas = 0;
        MemcachedStore::new(c).unwrap()
    };
    let store = MemcachedStore::new(config).unwrap();
    let ttl = Duration::from_secs(600);
    let ids: Vec<SessionId> = (0..30).map(|_| SessionId::generate()).collect();
    for id in &ids {
        let r = Record::new(1);
        assert_eq!(
            store.create(id, &r, ttl).await.unwrap(),
            CreateOutcome::Created
        );
    }
    let on_first: Vec<&SessionId> = ids
        .iter()
        .filter(|id| store.server_index(id.as_str()) == 0)
        .collect();
    assert!(!on_first.is_empty());
    servers[0].kill();
    for id in &ids {
        let v = store
            .load(id)
            .await
            .unwrap()
            .expect("served by the replica");
        assert_eq!(
            store.update(id, &v.record, v.version, ttl).await.unwrap(),
            UpdateOutcome::Updated(2)
        );
    }
    let started = Instant::now();
    for id in &ids {
        assert_eq!(store.load(id).await.unwrap().unwrap().version, 2);
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "a dead server must be skipped, not waited for: {:?}",
        started.elapsed()
    );
    assert!(
        no_replica.load(on_first[0]).await.is_err(),
        "without a replica, a dead owner is an error, not an empty session"
    );
    println!(
        "failover: {} of {} sessions were on the stopped server; all served by replicas",
        on_first.len(),
        ids.len()
    );
}
