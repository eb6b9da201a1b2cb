//! What the middleware tests share: a test app with routes for every scenario, two "nodes"
//! (layers) over one backend, and a tiny cookie-carrying client that drives the routers in
//! process; the servers are in [`servers`] and the workspace's test harness.
//!
//! The backend is chosen per test: the in-memory store, a redis-server, a sessiond or a
//! one-node Redis Cluster started for the test, or any RESP server given by
//! `SESSIOND_TEST_RESP_URL`. It does not start HTTP listeners: routers are called as tower
//! services, which is what the layer sees in production too.

#![allow(dead_code)]

pub mod servers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::{get, post};
use sessiond_session::{
    CachedStore, InvalidationBus, LocalBus, ManualClock, MemcachedConfig, MemoryStore, RedisBus,
    RedisStore, ServerSpec, Session, SessionConfig, SessionError, SessionLayer, SessionStore,
};
use sessiond_test_harness::RedisServer;
use tokio::sync::Notify;
use tower::ServiceExt as _;

/// Where sessions live in a test.
pub enum Kind {
    Memory {
        store: MemoryStore,
        bus: LocalBus,
    },
    Resp {
        url: String,
        cluster: bool,
        /// The server process this backend owns (a redis-server or a sessiond), kept alive
        /// for as long as the backend.
        _server: Option<Arc<dyn std::any::Any + Send + Sync>>,
    },
}

pub struct Backend {
    pub kind: Kind,
    pub clock: ManualClock,
    /// Unique per test, so tests can share one external RESP server.
    pub prefix: String,
}

fn unique() -> String {
    sessiond_session::SessionId::generate().as_str()[..10].to_owned()
}

impl Backend {
    pub fn memory() -> Self {
        let clock = ManualClock::starting_now();
        Backend {
            kind: Kind::Memory {
                store: MemoryStore::with_clock(Arc::new(clock.clone())),
                bus: LocalBus::new(),
            },
            clock,
            prefix: format!("t{}:", unique()),
        }
    }

    /// A real redis-server started for this test, or the RESP server named by
    /// `SESSIOND_TEST_RESP_URL`.
    pub fn resp() -> Self {
        let (url, server) = match std::env::var("SESSIOND_TEST_RESP_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let server = RedisServer::start(&[]);
                let url = server.url();
                (
                    url,
                    Some(Arc::new(server) as Arc<dyn std::any::Any + Send + Sync>),
                )
            }
        };
        Backend::on_resp(url, false, server)
    }

    /// A real sessiond (the binary built from this workspace) with its RESP listener, started
    /// for this test: the same scenarios the Redis backend runs, against our own server.
    pub fn sessiond() -> Self {
        let server = servers::sessiond_resp();
        let url = servers::sessiond_resp_url(&server);
        Backend::on_resp(url, false, Some(Arc::new(server)))
    }

    /// A one-node Redis Cluster started for this test, reached through the cluster client.
    pub fn resp_cluster() -> Self {
        let server = servers::redis_cluster();
        Backend::on_resp(server.url(), true, Some(Arc::new(server)))
    }

    /// A RESP backend at `url` (through the cluster client if `cluster`), keeping `server`
    /// alive with it.
    fn on_resp(
        url: String,
        cluster: bool,
        server: Option<Arc<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        Backend {
            kind: Kind::Resp {
                url,
                cluster,
                _server: server,
            },
            clock: ManualClock::starting_now(),
            prefix: format!("t{}:", unique()),
        }
    }

    /// A store as one app node would have it: its own connections, optionally its own
    /// near-cache on the shared bus.
    pub async fn store(&self, cached: bool) -> Arc<dyn SessionStore> {
        match &self.kind {
            Kind::Memory { store, bus } => {
                if cached {
                    let bus: Arc<dyn InvalidationBus> = Arc::new(bus.clone());
                    Arc::new(CachedStore::new(store.clone(), bus))
                } else {
                    Arc::new(store.clone())
                }
            }
            Kind::Resp { url, cluster, .. } => {
                let store = if *cluster {
                    RedisStore::connect_cluster(&[url.as_str()]).await
                } else {
                    RedisStore::connect(url).await
                };
                let store = store
                    .expect("connect to RESP server")
                    .with_prefix(self.prefix.clone());
                if cached {
                    let channel = format!("{}invalidate", self.prefix);
                    let bus = RedisBus::connect(url, &channel).await.expect("subscribe");
                    Arc::new(CachedStore::new(store, Arc::new(bus)))
                } else {
                    Arc::new(store)
                }
            }
        }
    }

    /// The default test configuration: the manual clock, plain HTTP (the test client does not
    /// care about Secure), and every timeout on.
    pub fn config(&self) -> SessionConfig {
        SessionConfig::default()
            .with_clock(Arc::new(self.clock.clone()))
            .with_secure(false)
    }

    pub async fn node(&self, config: SessionConfig, cached: bool, gates: &Gates) -> Node {
        let store = self.store(cached).await;
        let layer = SessionLayer::from_arc(store, config).expect("valid config");
        Node {
            router: app_router(gates.clone()).layer(layer.clone()),
            layer,
        }
    }
}

/// A ketama ring (the default distribution) of the memcached-protocol servers at `addrs`,
/// all of weight 1.
pub fn memcached_ring(addrs: impl IntoIterator<Item = SocketAddr>) -> MemcachedConfig {
    MemcachedConfig::new(
        addrs
            .into_iter()
            .map(|a| ServerSpec::new("127.0.0.1", a.port()))
            .collect(),
    )
}

/// Debian's php-cli, with the php-memcached extension for PHP's memcached session handler.
pub const PHP: &str = "/usr/bin/php";

/// Runs `script` (PHP code for `php -r`, reading `$argv[1..]` from `args`) with PHP's
/// memcached session handler on `save_path`, without cookies, cache headers or strict mode,
/// and with the extra ini settings `ini`. Panics if PHP is not installed; the caller judges
/// the outcome.
pub fn php_memcached(
    save_path: &str,
    ini: &[(&str, &str)],
    script: &str,
    args: &[&str],
) -> std::process::Output {
    assert!(
        std::path::Path::new(PHP).exists(),
        "{PHP} not found: install Debian's `php-cli` and `php-memcached` packages"
    );
    let mut cmd = std::process::Command::new(PHP);
    let base = [
        ("session.save_handler", "memcached"),
        ("session.save_path", save_path),
        ("session.use_cookies", "0"),
        ("session.use_strict_mode", "0"),
        ("session.cache_limiter", ""),
    ];
    for (k, v) in base.iter().chain(ini) {
        cmd.arg("-d").arg(format!("{k}={v}"));
    }
    cmd.args(["-r", script])
        .args(args)
        .output()
        .expect("run php")
}

/// Lets a test hold a request between loading its session and writing it.
#[derive(Clone, Default)]
pub struct Gates {
    pub loaded: Arc<Notify>,
    pub release: Arc<Notify>,
}

pub struct Node {
    pub router: Router,
    pub layer: SessionLayer,
}

/// A route's query: a key, a value, a user.
#[derive(serde::Deserialize)]
pub struct KV {
    pub k: Option<String>,
    pub v: Option<String>,
    pub user: Option<String>,
}

/// A handler's error: the session error's status and text.
pub fn err(e: SessionError) -> (StatusCode, String) {
    (e.status(), e.to_string())
}

/// What a handler returns.
pub type Handled<T> = Result<T, (StatusCode, String)>;

/// `POST /login?user=…`: a new id for the session, then the user in it.
pub async fn handle_login(s: Session, Query(q): Query<KV>) -> Handled<&'static str> {
    s.cycle_id().await.map_err(err)?;
    s.insert("user", q.user.unwrap_or_default())
        .await
        .map_err(err)?;
    Ok("ok")
}

/// `POST /logout`: the session ends.
pub async fn handle_logout(s: Session) -> Handled<&'static str> {
    s.delete().await.map_err(err)?;
    Ok("bye")
}

/// `POST /incr`: counts `n` up by one and answers the new count.
pub async fn handle_incr(s: Session) -> Handled<String> {
    let n = s
        .update("n", |n: Option<u64>| Some(n.unwrap_or(0) + 1))
        .await
        .map_err(err)?;
    Ok(n.unwrap_or(0).to_string())
}

/// Loads the session, waits at the gates (so a test can act between the load and the
/// write), then counts `n` up by one; the new count.
async fn slow_incr(s: &Session, g: &Gates) -> Handled<u64> {
    let _: Option<String> = s.get("user").await.map_err(err)?;
    g.loaded.notify_one();
    g.release.notified().await;
    let n = s
        .update("n", |n: Option<u64>| Some(n.unwrap_or(0) + 1))
        .await
        .map_err(err)?;
    Ok(n.unwrap_or(0))
}

/// The app under test.
pub fn app_router(gates: Gates) -> Router {
    Router::new()
        .route("/nothing", get(|| async { "no session used" }))
        .route("/login", post(handle_login))
        .route("/logout", post(handle_logout))
        .route(
            "/whoami",
            get(|s: Session| async move {
                let user: Option<String> = s.get("user").await.map_err(err)?;
                Ok::<_, (StatusCode, String)>(user.unwrap_or_else(|| "anonymous".into()))
            }),
        )
        .route("/incr", post(handle_incr))
        .route(
            "/set",
            post(|s: Session, Query(q): Query<KV>| async move {
                s.insert(&q.k.unwrap_or_default(), q.v.unwrap_or_default())
                    .await
                    .map_err(err)?;
                Ok::<_, (StatusCode, String)>("set")
            }),
        )
        .route(
            "/get",
            get(|s: Session, Query(q): Query<KV>| async move {
                let v: Option<String> = s.get(&q.k.unwrap_or_default()).await.map_err(err)?;
                Ok::<_, (StatusCode, String)>(v.unwrap_or_default())
            }),
        )
        .route(
            "/slow_incr",
            post(|s: Session, State(g): State<Gates>| async move {
                let n = slow_incr(&s, &g).await?;
                Ok::<_, (StatusCode, String)>(n.to_string())
            }),
        )
        .route(
            "/slow_incr_saved",
            post(|s: Session, State(g): State<Gates>| async move {
                slow_incr(&s, &g).await?;
                // What `save` says, as the body: `Stored` or `Ended`.
                let outcome = s.save().await.map_err(err)?;
                Ok::<_, (StatusCode, String)>(format!("{outcome:?}"))
            }),
        )
        .route(
            "/slow_set",
            post(
                |s: Session, State(g): State<Gates>, Query(q): Query<KV>| async move {
                    let _: Option<String> = s.get("user").await.map_err(err)?;
                    g.loaded.notify_one();
                    g.release.notified().await;
                    s.insert(&q.k.unwrap_or_default(), q.v.unwrap_or_default())
                        .await
                        .map_err(err)?;
                    Ok::<_, (StatusCode, String)>("set")
                },
            ),
        )
        .with_state(gates)
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: String,
    pub headers: HeaderMap,
}

impl Resp {
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The id in the response's session cookie (`Some("")` for a removal cookie).
    pub fn cookie_id(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }
}

/// Sends one request to `node` with the session cookie `id` (if any).
pub async fn send(node: &Node, method: &str, uri: &str, id: Option<&str>) -> Resp {
    send_to(&node.router, method, uri, id).await
}

/// Sends one request to `router` with the session cookie `id` (if any), among another
/// cookie, as a browser sends them.
pub async fn send_to(router: &Router, method: &str, uri: &str, id: Option<&str>) -> Resp {
    let cookies = id.map(|id| format!("theme=dark; id={id}"));
    request(router, method, uri, cookies.as_deref()).await
}

/// Sends one request to `router` with the `Cookie` header `cookies` (if any).
pub async fn request(router: &Router, method: &str, uri: &str, cookies: Option<&str>) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(cookies) = cookies {
        req = req.header(header::COOKIE, cookies);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Resp {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
        headers,
    }
}

/// Logs `user` in on `node` and returns the session id.
pub async fn login(node: &Node, user: &str) -> String {
    let r = send(node, "POST", &format!("/login?user={user}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.cookie_id("id").expect("login sets the cookie")
}
