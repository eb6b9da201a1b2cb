//! One conformance suite for every store: the `SessionStore` contract checked scenario by
//! scenario against each backend, the backends being real servers started on free loopback
//! ports with throwaway data directories (see the workspace's test harness and `common/servers.rs`).
//!
//! | backend | what runs |
//! |---|---|
//! | `memory` | `MemoryStore` |
//! | `redis` | `RedisStore` on a redis-server (or `SESSIOND_TEST_RESP_URL`) |
//! | `sessiond_resp` | `RedisStore` on sessiond's RESP listener |
//! | `memcached` | `MemcachedStore`, 3 memcached servers, ketama |
//! | `memcached_replicated` | 3 memcached servers, weighted ketama (1, 2, 3), one replica |
//! | `sessiond_memcached` | `MemcachedStore` over 2 sessiond nodes' memcached listeners |
//! | `sqlite`, `postgres`, `mariadb` | `SqlStore` |
//! | `files` | `FileStore`, 2 directory levels |
//!
//! Stores that decide expiry from a clock they are given (memory, SQL, files) run on a
//! manual clock, so expiry costs no time; the others (Redis, memcached, sessiond) expire by
//! their server's own clock, so the expiry scenario waits for real.
//!
//! Each backend is one test that runs every scenario in turn, each in its own task and its
//! own namespace (key prefix, table or directory), and fails with the list of the scenarios
//! that failed. Scenario output (`cargo test -- --nocapture`) shows one line per scenario.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::memcached_ring;
use crate::common::servers::{self, MariaDb, Postgres};
use serde_json::json;
use sessiond_session::{
    Clock, CreateOutcome, Distribution, FileConfig, FileStore, ManualClock, MemcachedConfig,
    MemcachedStore, MemoryStore, Record, RedisStore, ServerSpec, SessionId, SessionStore, SqlStore,
    SweepConfig, UpdateOutcome,
};
use sessiond_test_harness::{Memcached, RedisServer, Sessiond};

const TTL: Duration = Duration::from_secs(600);

/// Where the sessions go.
enum Kind {
    Memory(MemoryStore),
    Redis {
        url: String,
        _server: Option<RedisServer>,
    },
    Memcached {
        config: MemcachedConfig,
        _servers: Vec<Memcached>,
    },
    SessiondMemcached {
        config: MemcachedConfig,
        _servers: Vec<Sessiond>,
    },
    Sql {
        url: String,
        _pg: Option<Postgres>,
        _maria: Option<MariaDb>,
        _dir: Option<tempfile::TempDir>,
    },
    Files(tempfile::TempDir),
}

struct Env {
    name: &'static str,
    kind: Kind,
    clock: ManualClock,
}

impl Env {
    fn new(name: &'static str, kind: Kind) -> Self {
        Env {
            name,
            kind,
            clock: ManualClock::starting_now(),
        }
    }

    fn memory() -> Self {
        let clock = ManualClock::starting_now();
        let mut env = Env::new(
            "memory",
            Kind::Memory(MemoryStore::with_clock(Arc::new(clock.clone()))),
        );
        env.clock = clock;
        env
    }

    fn redis() -> Self {
        let (url, server) = match std::env::var("SESSIOND_TEST_RESP_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let server = RedisServer::start(&[]);
                (server.url(), Some(server))
            }
        };
        Env::new(
            "redis",
            Kind::Redis {
                url,
                _server: server,
            },
        )
    }

    fn memcached() -> Self {
        let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
        let config = memcached_ring(servers.iter().map(Memcached::memcache_addr));
        Env::new(
            "memcached",
            Kind::Memcached {
                config,
                _servers: servers,
            },
        )
    }

    fn memcached_replicated() -> Self {
        let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
        let mut config = MemcachedConfig::new(
            servers
                .iter()
                .enumerate()
                .map(|(i, s)| ServerSpec {
                    host: "127.0.0.1".into(),
                    port: s.memcache_addr().port(),
                    weight: i as u32 + 1,
                })
                .collect(),
        );
        config.distribution = Distribution::KetamaWeighted;
        config.replicas = 1;
        Env::new(
            "memcached_replicated",
            Kind::Memcached {
                config,
                _servers: servers,
            },
        )
    }

    fn sessiond_memcached() -> Self {
        let servers: Vec<Sessiond> = (0..2).map(|_| servers::sessiond_memcached()).collect();
        let config = memcached_ring(servers.iter().map(Sessiond::memcache_addr));
        Env::new(
            "sessiond_memcached",
            Kind::SessiondMemcached {
                config,
                _servers: servers,
            },
        )
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("sessions.db").display());
        Env::new(
            "sqlite",
            Kind::Sql {
                url,
                _pg: None,
                _maria: None,
                _dir: Some(dir),
            },
        )
    }

    fn postgres() -> Self {
        let pg = Postgres::start();
        Env::new(
            "postgres",
            Kind::Sql {
                url: pg.url(),
                _pg: Some(pg),
                _maria: None,
                _dir: None,
            },
        )
    }

    async fn mariadb() -> Self {
        let maria = tokio::task::spawn_blocking(MariaDb::start).await.unwrap();
        let admin = sqlx::MySqlPool::connect(&maria.url(""))
            .await
            .expect("connect to mariadb");
        sqlx::query("CREATE DATABASE IF NOT EXISTS sessiond")
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Env::new(
            "mariadb",
            Kind::Sql {
                url: maria.url("sessiond"),
                _pg: None,
                _maria: Some(maria),
                _dir: None,
            },
        )
    }

    fn files() -> Self {
        Env::new("files", Kind::Files(tempfile::tempdir().unwrap()))
    }

    /// Whether expiry follows the manual clock.
    fn manual_time(&self) -> bool {
        matches!(
            self.kind,
            Kind::Memory(_) | Kind::Sql { .. } | Kind::Files(_)
        )
    }

    fn now(&self) -> u64 {
        if self.manual_time() {
            self.clock.now_ms()
        } else {
            sessiond_session::SystemClock.now_ms()
        }
    }

    /// Lets `d` pass for the store.
    async fn pass(&self, d: Duration) {
        if self.manual_time() {
            self.clock.advance(d);
        } else {
            tokio::time::sleep(d).await;
        }
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }

    async fn sql(&self, ns: &str) -> Option<SqlStore> {
        let Kind::Sql { url, .. } = &self.kind else {
            return None;
        };
        let store = SqlStore::connect(url)
            .await
            .expect("connect")
            .with_table(&format!("sess_{ns}"))
            .unwrap()
            .with_clock(self.clock())
            .with_sweep(SweepConfig {
                batch: 200,
                max_batches: 1000,
                pause: Duration::from_millis(1),
            });
        store.migrate().await.expect("migrate");
        Some(store)
    }

    fn file(&self, ns: &str) -> Option<FileStore> {
        let Kind::Files(dir) = &self.kind else {
            return None;
        };
        let config = FileConfig::new(dir.path().join(ns));
        Some(FileStore::with_clock(config, self.clock()).unwrap())
    }

    /// A store as one app node would have it, in namespace `ns`.
    async fn store(&self, ns: &str) -> Arc<dyn SessionStore> {
        let prefix = format!("{ns}:");
        match &self.kind {
            Kind::Memory(store) => Arc::new(store.clone()),
            Kind::Redis { url, .. } => Arc::new(
                RedisStore::connect(url)
                    .await
                    .expect("connect")
                    .with_prefix(prefix),
            ),
            Kind::Memcached { config, .. } | Kind::SessiondMemcached { config, .. } => {
                let mut config = config.clone();
                config.prefix = prefix;
                Arc::new(MemcachedStore::new(config).unwrap())
            }
            Kind::Sql { .. } => Arc::new(self.sql(ns).await.unwrap()),
            Kind::Files(_) => Arc::new(self.file(ns).unwrap()),
        }
    }

    fn record(&self, n: u64) -> Record {
        let mut r = Record::new(self.now());
        r.data.insert("n".into(), json!(n));
        r
    }
}

fn n_of(r: &Record) -> u64 {
    r.data.get("n").and_then(|v| v.as_u64()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// The scenarios.

/// create fails on an existing id and leaves it alone; load returns data and version 1.
async fn create_and_load(env: Arc<Env>) {
    let s = env.store("create").await;
    let id = SessionId::generate();
    assert!(s.load(&id).await.unwrap().is_none());
    let first = env.record(1);
    assert_eq!(
        s.create(&id, &first, TTL).await.unwrap(),
        CreateOutcome::Created
    );
    let loaded = s.load(&id).await.unwrap().expect("created record loads");
    assert_eq!(loaded.version, 1);
    assert_eq!(loaded.record, first);
    assert_eq!(
        s.create(&id, &env.record(2), TTL).await.unwrap(),
        CreateOutcome::Exists
    );
    let loaded = s.load(&id).await.unwrap().unwrap();
    assert_eq!(
        (loaded.version, n_of(&loaded.record)),
        (1, 1),
        "create must not overwrite"
    );
    // Another id is independent.
    let other = SessionId::generate();
    assert!(s.load(&other).await.unwrap().is_none());
}

/// The record's tags survive the store, on create and on update: `kind` (the layer refuses a
/// record of another kind as a session, so a store that dropped it would let a cookie carrying
/// a revocation's id load, and delete, the revocation) and `retired_at` (an id `cycle_id`
/// replaced must stay retired, not turn back into a live session).
async fn tags_round_trip(env: Arc<Env>) {
    let s = env.store("tags").await;
    let id = SessionId::generate();
    let tagged = env.record(1).with_kind("sessiond-tokens/jwt-jti");
    s.create(&id, &tagged, TTL).await.unwrap();
    let loaded = s.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.record, tagged);
    assert!(!loaded.record.is_session());
    let mut retired = env.record(2);
    retired.retired_at = Some(env.now());
    assert_eq!(
        s.update(&id, &retired, 1, TTL).await.unwrap(),
        UpdateOutcome::Updated(2)
    );
    let loaded = s.load_fresh(&id).await.unwrap().unwrap();
    assert_eq!(loaded.record, retired);
    assert!(loaded.record.is_session());
}

/// update is a compare-and-set on the version.
async fn update_conflict(env: Arc<Env>) {
    let s = env.store("update").await;
    let id = SessionId::generate();
    s.create(&id, &env.record(1), TTL).await.unwrap();
    assert_eq!(
        s.update(&id, &env.record(2), 1, TTL).await.unwrap(),
        UpdateOutcome::Updated(2)
    );
    assert_eq!(
        s.update(&id, &env.record(3), 1, TTL).await.unwrap(),
        UpdateOutcome::Conflict,
        "a write from a stale version must be refused"
    );
    let loaded = s.load(&id).await.unwrap().unwrap();
    assert_eq!((loaded.version, n_of(&loaded.record)), (2, 2));
    assert_eq!(
        s.update(&id, &env.record(3), 2, TTL).await.unwrap(),
        UpdateOutcome::Updated(3)
    );
    assert_eq!(
        s.update(&SessionId::generate(), &env.record(1), 1, TTL)
            .await
            .unwrap(),
        UpdateOutcome::Missing
    );
}

/// touch moves last activity forward only, keeps version and data, and creates nothing.
async fn touch(env: Arc<Env>) {
    let s = env.store("touch").await;
    let id = SessionId::generate();
    let first = env.record(1);
    let t0 = first.last_active_at;
    s.create(&id, &first, TTL).await.unwrap();
    assert!(s.touch(&id, t0 + 5_000, TTL).await.unwrap());
    let loaded = s.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.version, 1, "touch keeps the version");
    assert_eq!(loaded.record.last_active_at, t0 + 5_000);
    assert_eq!(n_of(&loaded.record), 1);
    assert!(s.touch(&id, t0 + 1_000, TTL).await.unwrap());
    let loaded = s.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.record.last_active_at, t0 + 5_000, "never backwards");
    // An update prepared before the touch does not undo it.
    let mut stale = env.record(2);
    stale.last_active_at = t0;
    assert_eq!(
        s.update(&id, &stale, 1, TTL).await.unwrap(),
        UpdateOutcome::Updated(2)
    );
    let loaded = s.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.record.last_active_at, t0 + 5_000);
    let missing = SessionId::generate();
    assert!(!s.touch(&missing, t0, TTL).await.unwrap());
    assert!(
        s.load(&missing).await.unwrap().is_none(),
        "touch must not create"
    );
}

/// delete removes the record; late writes and touches do not bring it back.
async fn delete(env: Arc<Env>) {
    let s = env.store("delete").await;
    let other_node = env.store("delete").await;
    let id = SessionId::generate();
    s.create(&id, &env.record(1), TTL).await.unwrap();
    let before = other_node.load(&id).await.unwrap().unwrap();
    assert!(s.delete(&id).await.unwrap());
    assert!(s.load(&id).await.unwrap().is_none());
    assert!(!s.delete(&id).await.unwrap(), "second delete finds nothing");
    // The other node still holds what it loaded before the logout.
    assert_eq!(
        other_node
            .update(&id, &before.record, before.version, TTL)
            .await
            .unwrap(),
        UpdateOutcome::Missing
    );
    assert!(!other_node.touch(&id, env.now(), TTL).await.unwrap());
    assert!(s.load(&id).await.unwrap().is_none(), "no resurrection");
    assert!(
        other_node.load(&id).await.unwrap().is_none(),
        "no resurrection"
    );
    // Only create makes it exist again.
    assert_eq!(
        s.create(&id, &env.record(9), TTL).await.unwrap(),
        CreateOutcome::Created
    );
}

/// Records expire at their TTL; touch extends it; an expired id behaves as missing.
async fn expiry(env: Arc<Env>) {
    let s = env.store("expiry").await;
    let short = Duration::from_secs(1);
    let (a, b) = (SessionId::generate(), SessionId::generate());
    s.create(&a, &env.record(1), short).await.unwrap();
    s.create(&b, &env.record(1), short).await.unwrap();
    assert!(s.touch(&b, env.now(), TTL).await.unwrap());
    // memcached counts whole seconds on a clock that ticks once a second, so a 1 s item can
    // live almost 2 s.
    env.pass(Duration::from_millis(2_600)).await;
    assert!(
        s.load(&a).await.unwrap().is_none(),
        "expired record still loads"
    );
    assert_eq!(
        s.update(&a, &env.record(2), 1, TTL).await.unwrap(),
        UpdateOutcome::Missing
    );
    assert!(!s.touch(&a, env.now(), TTL).await.unwrap());
    assert!(s.load(&a).await.unwrap().is_none());
    assert!(
        s.load(&b).await.unwrap().is_some(),
        "touch extended the TTL"
    );
    assert_eq!(
        s.create(&a, &env.record(3), TTL).await.unwrap(),
        CreateOutcome::Created,
        "an expired id is free"
    );
    assert_eq!(s.load(&a).await.unwrap().unwrap().version, 1);
}

/// Writers racing a logout: once the delete has returned and the writers are done, the
/// session is gone for good.
async fn no_resurrection(env: Arc<Env>) {
    let a = env.store("race").await;
    let b = env.store("race").await;
    for _ in 0..5 {
        let id = SessionId::generate();
        a.create(&id, &env.record(0), TTL).await.unwrap();
        let writes = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (store, id, env, writes) = (
                if w % 2 == 0 { a.clone() } else { b.clone() },
                id.clone(),
                env.clone(),
                writes.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(current) = store.load(&id).await.unwrap() else {
                        break;
                    };
                    let outcome = if w % 4 == 3 {
                        if store.touch(&id, env.now(), TTL).await.unwrap() {
                            UpdateOutcome::Updated(current.version)
                        } else {
                            UpdateOutcome::Missing
                        }
                    } else {
                        let mut r = current.record.clone();
                        r.data.insert("n".into(), json!(n_of(&r) + 1));
                        store.update(&id, &r, current.version, TTL).await.unwrap()
                    };
                    writes.fetch_add(1, Ordering::SeqCst);
                    if outcome == UpdateOutcome::Missing {
                        break;
                    }
                    // In-process stores never wait, so give the deleting task a turn.
                    tokio::task::yield_now().await;
                }
            }));
        }
        while writes.load(Ordering::SeqCst) < 20 {
            tokio::task::yield_now().await;
        }
        assert!(b.delete(&id).await.unwrap());
        for t in tasks {
            t.await.unwrap();
        }
        assert!(a.load(&id).await.unwrap().is_none(), "session came back");
        assert!(b.load(&id).await.unwrap().is_none(), "session came back");
    }
}

/// Many writers on two nodes increment one counter with load + compare-and-set, retrying on
/// conflicts: every increment counts.
async fn parallel_updates(env: Arc<Env>) {
    let a = env.store("parallel").await;
    let b = env.store("parallel").await;
    let id = SessionId::generate();
    a.create(&id, &env.record(0), TTL).await.unwrap();
    const TASKS: usize = 8;
    const EACH: usize = 25;
    let conflicts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        let (id, conflicts) = (id.clone(), conflicts.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                loop {
                    let current = store.load(&id).await.unwrap().expect("session exists");
                    let mut r = current.record.clone();
                    r.data.insert("n".into(), json!(n_of(&r) + 1));
                    match store.update(&id, &r, current.version, TTL).await.unwrap() {
                        UpdateOutcome::Updated(_) => break,
                        UpdateOutcome::Conflict => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                        }
                        UpdateOutcome::Missing => panic!("session vanished"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let loaded = a.load(&id).await.unwrap().unwrap();
    println!(
        "    {}: {} increments, {} conflicts retried",
        env.name,
        TASKS * EACH,
        conflicts.load(Ordering::Relaxed)
    );
    assert_eq!(
        n_of(&loaded.record),
        (TASKS * EACH) as u64,
        "an increment was lost"
    );
    assert_eq!(loaded.version, (TASKS * EACH) as u64 + 1);
}

/// Stores with their own sweep (SQL, files) remove expired records in batches, leave live
/// ones, and run alongside live traffic. The others expire inside their server.
async fn sweep(env: Arc<Env>) {
    let live: Vec<SessionId> = (0..10).map(|_| SessionId::generate()).collect();
    if let Some(store) = env.sql("sweep").await {
        const EXPIRED: usize = 1_000;
        for _ in 0..EXPIRED {
            store
                .create(
                    &SessionId::generate(),
                    &env.record(0),
                    Duration::from_secs(1),
                )
                .await
                .unwrap();
        }
        for id in &live {
            store.create(id, &env.record(0), TTL).await.unwrap();
        }
        env.pass(Duration::from_secs(2)).await;
        let plan = store.explain_sweep().await.unwrap().join(" | ");
        println!("    {}: sweep plan: {plan}", env.name);
        assert!(
            plan.contains("sess_sweep_expiry"),
            "the sweep must go through the expiry index: {plan}"
        );
        // Live traffic on other sessions while two nodes sweep at once.
        let traffic = {
            let (store, live) = (store.clone(), live.clone());
            tokio::spawn(async move {
                for round in 0..20u64 {
                    for id in &live {
                        let current = store.load(id).await.unwrap().unwrap();
                        let mut r = current.record.clone();
                        r.data.insert("n".into(), json!(round));
                        store.update(id, &r, current.version, TTL).await.unwrap();
                    }
                }
            })
        };
        let other = env.sql("sweep").await.unwrap();
        let (x, y) = tokio::join!(store.sweep(), other.sweep());
        traffic.await.unwrap();
        let (x, y) = (x.unwrap(), y.unwrap());
        // The node that lost the lock may still pick up what the other left.
        let rest = store.sweep().await.unwrap();
        assert_eq!(x + y + rest, EXPIRED as u64, "swept {x} + {y} + {rest}");
        assert_eq!(store.row_count().await.unwrap(), live.len() as u64);
        for id in &live {
            assert!(store.load(id).await.unwrap().is_some());
        }
    } else if let Some(store) = env.file("sweep") {
        const EXPIRED: usize = 300;
        for _ in 0..EXPIRED {
            store
                .create(
                    &SessionId::generate(),
                    &env.record(0),
                    Duration::from_secs(1),
                )
                .await
                .unwrap();
        }
        for id in &live {
            store.create(id, &env.record(0), TTL).await.unwrap();
        }
        env.pass(Duration::from_secs(2)).await;
        let other = store.clone();
        let (x, y) = tokio::join!(store.sweep(), other.sweep());
        assert_eq!(x.unwrap() + y.unwrap(), EXPIRED);
        for id in &live {
            assert!(store.load(id).await.unwrap().is_some());
        }
        let files = count_files(
            store
                .path(&live[0])
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf(),
        );
        assert_eq!(files, live.len(), "only live session files remain");
    } else {
        println!(
            "    {}: expires inside the server (no sweep to run)",
            env.name
        );
    }
}

fn count_files(root: PathBuf) -> usize {
    let mut n = 0;
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

// ---------------------------------------------------------------------------------------
// The runner.

type Scenario = fn(Arc<Env>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! scenario_list {
    ($($name:ident),* $(,)?) => {
        const SCENARIOS: &[(&str, Scenario)] = &[
            $((stringify!($name), |env| Box::pin($name(env)))),*
        ];
    };
}

scenario_list!(
    create_and_load,
    tags_round_trip,
    update_conflict,
    touch,
    delete,
    expiry,
    no_resurrection,
    parallel_updates,
    sweep,
);

async fn run_all(env: Env) {
    let env = Arc::new(env);
    let mut failed = Vec::new();
    for (name, scenario) in SCENARIOS {
        let started = Instant::now();
        let result = tokio::spawn(scenario(env.clone())).await;
        let status = if result.is_ok() { "ok" } else { "FAILED" };
        println!(
            "conformance {:<22} {:<18} {status} ({} ms)",
            env.name,
            name,
            started.elapsed().as_millis()
        );
        if result.is_err() {
            failed.push(*name);
        }
    }
    assert!(
        failed.is_empty(),
        "{}: failed scenarios: {failed:?}",
        env.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    run_all(Env::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis() {
    run_all(Env::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached() {
    run_all(Env::memcached()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached_replicated() {
    run_all(Env::memcached_replicated()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessiond_memcached() {
    run_all(Env::sessiond_memcached()).await;
}

/// `RedisStore` against sessiond's own RESP listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessiond_resp() {
    let server = servers::sessiond_resp();
    let mut env = Env::new(
        "sessiond_resp",
        Kind::Redis {
            url: servers::sessiond_resp_url(&server),
            _server: None,
        },
    );
    env.name = "sessiond_resp";
    run_all(env).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    run_all(Env::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    let env = tokio::task::spawn_blocking(Env::postgres).await.unwrap();
    run_all(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb() {
    run_all(Env::mariadb().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files() {
    run_all(Env::files()).await;
}
