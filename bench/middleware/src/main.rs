//! Benchmark server for bench/middleware.sh: `GET /` increments a counter in the session
//! (one read and one write of one value) behind the chosen middleware and store.
//!
//! Usage: `sessiond-middleware-bench <impl> [redis-url]` where impl is one of
//! `sessiond-memory`, `sessiond-redis`, `tower-memory`, `tower-redis`; or
//! `sessiond-middleware-bench free-port`. The server binds 127.0.0.1:0 and prints its port on
//! the first line of stdout. Cookies are not Secure because wrk speaks plain HTTP.

use std::io::Write as _;

use axum::Router;
use axum::routing::get;

async fn sessiond_handler(session: sessiond_session::Session) -> String {
    // `update` is the idiomatic read-modify-write: it survives concurrent requests of one
    // session (the bench spreads load over many sessions, so conflicts are rare).
    let n = session
        .update("n", |n: Option<u64>| Some(n.unwrap_or(0) + 1))
        .await
        .expect("session update");
    n.unwrap_or(0).to_string()
}

async fn tower_handler(session: tower_sessions::Session) -> String {
    let n: u64 = session.get("n").await.expect("get").unwrap_or(0);
    session.insert("n", n + 1).await.expect("insert");
    (n + 1).to_string()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().expect("implementation name");
    if which == "free-port" {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        println!("{}", l.local_addr().unwrap().port());
        return;
    }
    let redis_url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let sessiond_config = sessiond_session::SessionConfig::default().with_secure(false);
    let app: Router = match which.as_str() {
        "sessiond-memory" => {
            let store = sessiond_session::MemoryStore::new();
            let layer = sessiond_session::SessionLayer::new(store, sessiond_config).unwrap();
            Router::new().route("/", get(sessiond_handler)).layer(layer)
        }
        "sessiond-redis" => {
            let store = sessiond_session::RedisStore::connect(&redis_url)
                .await
                .expect("connect");
            let layer = sessiond_session::SessionLayer::new(store, sessiond_config).unwrap();
            Router::new().route("/", get(sessiond_handler)).layer(layer)
        }
        "tower-memory" => {
            let store = tower_sessions::MemoryStore::default();
            let layer = tower_sessions::SessionManagerLayer::new(store).with_secure(false);
            Router::new().route("/", get(tower_handler)).layer(layer)
        }
        "tower-redis" => {
            use tower_sessions_redis_store::fred::prelude::*;
            let config = Config::from_url(&redis_url).expect("redis url");
            let pool = Pool::new(config, None, None, None, 4).expect("pool");
            let _task = pool.connect();
            pool.wait_for_connect().await.expect("connect");
            let store = tower_sessions_redis_store::RedisStore::new(pool);
            let layer = tower_sessions::SessionManagerLayer::new(store).with_secure(false);
            Router::new().route("/", get(tower_handler)).layer(layer)
        }
        other => panic!("unknown implementation {other}"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    axum::serve(listener, app).await.unwrap();
}
