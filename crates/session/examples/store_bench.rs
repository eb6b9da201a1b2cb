//! Operations per second of one store under the session mix, for `bench/stores.sh`.
//!
//! The mix, per operation (one web request's worth of store work):
//! - 75 % read: `load`;
//! - 15 % write: `load`, then `update` (compare-and-set; a conflict reloads and retries);
//! - 8 % touch: `touch`;
//! - 2 % logout + login: `delete`, then `create` under a new id.
//!
//! Each of `--concurrency` workers owns `--sessions / concurrency` sessions and picks one at
//! random per operation. A benchmark, not a test: it prints one line and asserts nothing.
//!
//! ```sh
//! cargo run --release -p sessiond-session --example store_bench --features memcached,sql,files -- \
//!     --store sql:sqlite:/tmp/s.db --seconds 5 --concurrency 16
//! ```
//! Stores: `memory`, `redis:<url>`, `memcached:<host:port,…>`, `sql:<url>`, `files:<dir>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use sessiond_session::{
    FileConfig, FileStore, MemcachedConfig, MemcachedStore, MemoryStore, Record, RedisStore,
    SessionId, SessionStore, SqlStore, UpdateOutcome,
};

const TTL: Duration = Duration::from_secs(3600);

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

async fn open(spec: &str) -> Arc<dyn SessionStore> {
    if spec == "memory" {
        return Arc::new(MemoryStore::new());
    }
    let (kind, rest) = spec.split_once(':').expect("store spec kind:rest");
    match kind {
        "redis" => Arc::new(
            RedisStore::connect(rest)
                .await
                .expect("redis")
                .with_prefix("bench:"),
        ),
        "memcached" => Arc::new(
            MemcachedStore::new(MemcachedConfig::from_save_path(rest).expect("servers"))
                .expect("memcached"),
        ),
        "sql" => {
            let store = SqlStore::connect_with(rest, 16).await.expect("sql");
            store.migrate().await.expect("migrate");
            Arc::new(store)
        }
        "files" => Arc::new(FileStore::new(FileConfig::new(rest)).expect("files")),
        other => panic!("unknown store kind {other}"),
    }
}

fn record(n: u64) -> Record {
    let mut r = Record::new(0);
    r.data.insert("user".into(), "alice@example.com".into());
    r.data
        .insert("cart".into(), serde_json::json!([1, 2, 3, 4, 5]));
    r.data.insert("n".into(), n.into());
    r
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = arg(&args, "--store", "memory");
    let label = arg(&args, "--label", &spec);
    let seconds: u64 = arg(&args, "--seconds", "5").parse().unwrap();
    let concurrency: usize = arg(&args, "--concurrency", "16").parse().unwrap();
    let sessions: usize = arg(&args, "--sessions", "2000").parse().unwrap();
    let store = open(&spec).await;
    let per_worker = (sessions / concurrency).max(1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let id = SessionId::generate();
                store.create(&id, &record(0), TTL).await.expect("create");
                ids.push(id);
            }
            let (mut ops, mut errors) = (0u64, 0u64);
            let mut latency = Duration::ZERO;
            while Instant::now() < deadline {
                let (i, roll) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..ids.len()), rng.random_range(0..100))
                };
                let started = Instant::now();
                let ok = match roll {
                    0..75 => store.load(&ids[i]).await.is_ok(),
                    75..90 => loop {
                        let Ok(Some(v)) = store.load(&ids[i]).await else {
                            break false;
                        };
                        let n = v.record.data["n"].as_u64().unwrap_or(0);
                        match store.update(&ids[i], &record(n + 1), v.version, TTL).await {
                            Ok(UpdateOutcome::Conflict) => continue,
                            Ok(_) => break true,
                            Err(_) => break false,
                        }
                    },
                    90..98 => store.touch(&ids[i], 1, TTL).await.is_ok(),
                    _ => {
                        let _ = store.delete(&ids[i]).await;
                        ids[i] = SessionId::generate();
                        store.create(&ids[i], &record(0), TTL).await.is_ok()
                    }
                };
                latency += started.elapsed();
                ops += 1;
                errors += u64::from(!ok);
            }
            for id in &ids {
                let _ = store.delete(id).await;
            }
            (ops, errors, latency)
        }));
    }
    let (mut ops, mut errors, mut latency) = (0, 0, Duration::ZERO);
    for w in workers {
        let (o, e, l) = w.await.unwrap();
        ops += o;
        errors += e;
        latency += l;
    }
    let mean_us = latency.as_micros() as f64 / ops.max(1) as f64;
    println!(
        "| {label} | {:.0} | {mean_us:.0} | {errors} |",
        ops as f64 / seconds as f64
    );
}
