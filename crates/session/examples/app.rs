//! Example app: login, logout, a counter and "log out everywhere", meant to run as two
//! processes on two ports sharing one RESP store (sessiond, or Redis until sessiond's RESP
//! listener lands). See the crate README for the commands.
//!
//! ```text
//! cargo run -p sessiond-session --example app -- --port 3001 --store redis://127.0.0.1:6379/ --dev
//! cargo run -p sessiond-session --example app -- --port 3002 --store redis://127.0.0.1:6379/ --dev
//! ```
//!
//! "Log out everywhere" keeps a per-user index in the store: a hash `example:user:<name>` whose
//! fields are the user's session ids (HSET on login, HGETALL + delete on logout-everywhere).
//! It is app code, not part of the library, and deliberately simple: an index entry of a
//! session that expired on its own is just skipped. Passwords are not checked: it is a demo
//! of sessions, not of authentication.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use sessiond_session::{
    CachedStore, RedisBus, RedisStore, Session, SessionConfig, SessionId, SessionLayer,
    SessionStore,
};

#[derive(Clone)]
struct App {
    port: u16,
    redis: redis::aio::ConnectionManager,
    store: Arc<dyn SessionStore>,
}

struct Args {
    port: u16,
    store: String,
    dev: bool,
    cache: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        port: 3001,
        store: "redis://127.0.0.1:6379/".to_owned(),
        dev: false,
        cache: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => args.port = it.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--store" => args.store = it.next().expect("--store URL"),
            // Plain-HTTP development: without it the cookie is Secure and curl (rightly) will
            // not send it over http://.
            "--dev" => args.dev = true,
            "--cache" => args.cache = true,
            other => panic!("unknown argument {other}; see the crate README"),
        }
    }
    args
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = parse_args();
    let store = RedisStore::connect(&args.store)
        .await
        .expect("connect to the session store")
        .with_prefix("example:sess:");
    let store: Arc<dyn SessionStore> = if args.cache {
        let bus = RedisBus::connect(&args.store, "example:invalidate")
            .await
            .expect("subscribe to invalidations");
        Arc::new(CachedStore::new(store, Arc::new(bus)))
    } else {
        Arc::new(store)
    };
    let config = SessionConfig::default().with_secure(!args.dev);
    let layer = SessionLayer::from_arc(store.clone(), config).expect("valid config");
    let redis = redis::Client::open(args.store.as_str())
        .expect("store URL")
        .get_connection_manager()
        .await
        .expect("connect to the store");
    let app = App {
        port: args.port,
        redis,
        store,
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/count", post(count))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(layer)
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .expect("bind");
    tracing::info!("listening on http://127.0.0.1:{}", args.port);
    axum::serve(listener, router).await.expect("serve");
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

async fn index(State(app): State<App>, session: Session) -> Result<Html<String>, Response> {
    let user: Option<String> = session.get("user").await.map_err(internal)?;
    let n: u64 = session.get("n").await.map_err(internal)?.unwrap_or(0);
    let who = match &user {
        Some(u) => format!("logged in as <b>{}</b>", html_escape(u)),
        None => "not logged in".to_owned(),
    };
    Ok(Html(format!(
        "<!doctype html><title>sessiond example</title>\
         <p>node on port {port}: {who}; counter = {n}</p>\
         <form method=post action=/login><input name=user placeholder=name>\
         <button>log in</button></form>\
         <form method=post action=/count><button>count</button></form>\
         <form method=post action=/logout><button>log out</button></form>\
         <form method=post action=/logout-everywhere><button>log out everywhere</button></form>",
        port = app.port
    )))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
}

fn index_key(user: &str) -> String {
    // The hash tag keeps a user's index in one Redis Cluster slot.
    format!("example:user:{{{user}}}")
}

async fn login(
    State(app): State<App>,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Result<Redirect, Response> {
    let user = form.user.trim().to_owned();
    if user.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "empty user name").into_response());
    }
    // A new id on login: whoever knew the pre-login id (session fixation) gets nothing.
    session.cycle_id().await.map_err(internal)?;
    session.insert("user", &user).await.map_err(internal)?;
    // Save now so the final id is known and can be indexed under the user.
    session.save().await.map_err(|e| e.into_response())?;
    if let Some(id) = session.id().await.map_err(internal)? {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(index_key(&user)).arg(id.as_str()).arg(1);
        let _: i64 = cmd
            .query_async(&mut app.redis.clone())
            .await
            .map_err(internal)?;
    }
    Ok(Redirect::to("/"))
}

async fn logout(session: Session) -> Result<Redirect, Response> {
    session.delete().await.map_err(internal)?;
    Ok(Redirect::to("/"))
}

async fn count(session: Session) -> Result<Redirect, Response> {
    // `update` re-runs on a reloaded value if another request won the race, so concurrent
    // clicks on two nodes all count.
    session
        .update("n", |n: Option<u64>| Some(n.unwrap_or(0) + 1))
        .await
        .map_err(internal)?;
    Ok(Redirect::to("/"))
}

async fn logout_everywhere(State(app): State<App>, session: Session) -> Result<Redirect, Response> {
    let Some(user) = session.get::<String>("user").await.map_err(internal)? else {
        return Ok(Redirect::to("/"));
    };
    let key = index_key(&user);
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(&key);
    let ids: Vec<(String, String)> = cmd
        .query_async(&mut app.redis.clone())
        .await
        .map_err(internal)?;
    for (id, _) in ids {
        if let Some(id) = SessionId::parse(&id) {
            app.store.delete(&id).await.map_err(internal)?;
        }
    }
    let mut cmd = redis::cmd("DEL");
    cmd.arg(&key);
    let _: i64 = cmd
        .query_async(&mut app.redis.clone())
        .await
        .map_err(internal)?;
    // This request's own session is among those deleted; delete through the handle too so
    // the response clears the cookie.
    session.delete().await.map_err(internal)?;
    Ok(Redirect::to("/"))
}
