//! `sessiond-farm-node`: the farm's Rust node. The same app as `php/index.php` (log in, who
//! am I and which node answered, a counter, log out), in axum with sessiond-session's
//! `PhpSessionStore`: it reads and writes the PHP nodes' sessions themselves, under the same
//! cookie (`PHPSESSID`) and key (`memc.sess.key.<id>`), in PHP's serialize format, behind
//! php-memcached's lock and on the same ketama ring, so a PHP request and a Rust request on
//! one session never lose each other's updates.
//!
//! ```text
//! sessiond-farm-node --listen 127.0.0.1:8004 --memcached 127.0.0.1:11211[,host:port…]
//!                    [--replicas 0|1] [--name rust]
//! ```
//!
//! The store settings below mirror the farm's php.ini line for line (conf/php.ini and
//! `Farm::store_ini`); a Rust node that disagreed with PHP on the ring, the prefix or the
//! lock would see other sessions, or write over PHP's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use sessiond_session::{
    PhpSessionConfig, PhpSessionStore, SameSite, SaveOutcome, Session, SessionLayer,
};

struct Args {
    listen: String,
    memcached: String,
    replicas: usize,
    name: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        listen: "127.0.0.1:8004".into(),
        memcached: "127.0.0.1:11211".into(),
        replicas: 0,
        name: "rust".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--listen" => args.listen = value(),
            "--memcached" => args.memcached = value(),
            "--replicas" => args.replicas = value().parse().unwrap_or_else(|_| usage("--replicas")),
            "--name" => args.name = value(),
            other => usage(other),
        }
    }
    args
}

fn usage(what: &str) -> ! {
    eprintln!(
        "sessiond-farm-node: bad argument {what}; usage: --listen ADDR --memcached \
         HOST:PORT[,HOST:PORT] [--replicas N] [--name NAME]"
    );
    std::process::exit(2);
}

#[derive(Clone)]
struct Node {
    name: Arc<str>,
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut config = PhpSessionConfig::from_save_path(&args.memcached).unwrap_or_else(|e| {
        eprintln!("sessiond-farm-node: --memcached {}: {e}", args.memcached);
        std::process::exit(2)
    });
    // php.ini: memcached.sess_number_of_replicas, sess_lock_wait_min/max, sess_lock_retries,
    // sess_lock_expire, session.gc_maxlifetime, sess_server_failure_limit.
    config.memcached.replicas = args.replicas;
    config.memcached.failure_limit = 1;
    // php-memcached's session handler connects anew on every request, so PHP uses a
    // returning server at once; so does this node, instead of skipping a server it saw fail
    // for libmemcached's 2 s (which, with the other server lost meanwhile, would leave it
    // none). A refused connection on a LAN costs a round trip.
    config.memcached.retry_interval = Duration::ZERO;
    config.lock_wait_min = Duration::from_millis(10);
    config.lock_wait_max = Duration::from_millis(100);
    config.lock_retries = 300;
    config.lock_expire = Duration::from_secs(10);
    config.gc_maxlifetime = Duration::from_secs(1440);
    // php.ini: session.cookie_httponly = 1, session.cookie_samesite = Lax (PHPSESSID, not
    // Secure on this plain-HTTP farm, strict mode: session_config's defaults).
    let session_config = config
        .session_config()
        .with_http_only(true)
        .with_same_site(SameSite::Lax);
    let store = PhpSessionStore::new(config).unwrap_or_else(|e| {
        eprintln!("sessiond-farm-node: {e}");
        std::process::exit(2)
    });
    let layer = SessionLayer::new(store, session_config).unwrap_or_else(|e| {
        eprintln!("sessiond-farm-node: session configuration: {e}");
        std::process::exit(2)
    });
    let node = Node {
        name: args.name.into(),
    };
    let router = Router::new()
        .route("/", get(whoami))
        .route("/whoami", get(whoami))
        .route("/login", post(login))
        .route("/count", post(count))
        .route("/logout", post(logout))
        .fallback(not_found)
        .layer(layer)
        .with_state(node);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("sessiond-farm-node: binding {}: {e}", args.listen);
            std::process::exit(1)
        });
    println!("listening http://{}", args.listen);
    axum::serve(listener, router).await.expect("serving");
}

/// What a page shows: the user and the counter, or an error.
#[derive(Default)]
struct Shown {
    user: Option<String>,
    count: Option<i64>,
    error: Option<String>,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// The PHP app's answer, from Rust: JSON for scripts, HTML (same element ids) for people,
/// `303 /` after a browser's form post; the node's name in `X-Farm-Node` either way.
fn answer(node: &Node, headers: &HeaderMap, status: StatusCode, shown: Shown) -> Response {
    let mut response = if wants_json(headers) {
        let mut body = serde_json::json!({
            "user": shown.user,
            "count": shown.count,
            "node": &*node.name,
        });
        if let Some(error) = &shown.error {
            body["error"] = error.as_str().into();
        }
        (status, Json(body)).into_response()
    } else if status == StatusCode::SEE_OTHER {
        Redirect::to("/").into_response()
    } else {
        (status, Html(page(node, &shown))).into_response()
    };
    if let Ok(name) = HeaderValue::from_str(&node.name) {
        response.headers_mut().insert("x-farm-node", name);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(node: &Node, shown: &Shown) -> String {
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=utf-8><title>farm: {name}</title></head>\
         <body>\n<p>Served by <b id=\"node\">{name}</b> (Rust)</p>\n",
        name = escape(&node.name)
    );
    match &shown.user {
        Some(user) => html.push_str(&format!(
            "<p>Logged in as <b id=\"user\">{}</b>; count <b id=\"count\">{}</b></p>\n\
             <form method=post action=/count><button id=count-button>Count</button></form>\n\
             <form method=post action=/logout><button id=logout>Log out</button></form>\n",
            escape(user),
            shown.count.unwrap_or(0)
        )),
        None => html.push_str(
            "<p id=anonymous>Not logged in.</p>\n<form method=post action=/login>\
             <input id=name name=user placeholder=\"alice\"><button id=login>Log in</button></form>\n",
        ),
    }
    if let Some(error) = &shown.error {
        html.push_str(&format!("<p id=error>{}</p>\n", escape(error)));
    }
    html.push_str(
        "<p><a id=reload href=/>Reload (another node may answer)</a></p>\n</body></html>\n",
    );
    html
}

/// A store that cannot be reached is a 503, never a logout.
fn unavailable(node: &Node, headers: &HeaderMap, e: impl std::fmt::Display) -> Response {
    let shown = Shown {
        error: Some(format!("the session store is unavailable: {e}")),
        ..Shown::default()
    };
    answer(node, headers, StatusCode::SERVICE_UNAVAILABLE, shown)
}

/// The user and counter PHP keeps in `$_SESSION['user_id']` and `$_SESSION['count']`.
async fn who(session: &Session) -> Result<(Option<String>, Option<i64>), String> {
    let user = session
        .get::<String>("user_id")
        .await
        .map_err(|e| e.to_string())?;
    let count = session
        .get::<i64>("count")
        .await
        .map_err(|e| e.to_string())?;
    Ok((user, count))
}

async fn whoami(State(node): State<Node>, headers: HeaderMap, session: Session) -> Response {
    match who(&session).await {
        Ok((user, count)) => answer(
            &node,
            &headers,
            StatusCode::OK,
            Shown {
                user,
                count,
                error: None,
            },
        ),
        Err(e) => unavailable(&node, &headers, e),
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
}

fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

async fn login(
    State(node): State<Node>,
    headers: HeaderMap,
    session: Session,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    // A body axum cannot read as the form is a 400 (413 past the 2 MiB body limit), in the
    // app's own shape, as PHP answers it.
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            let status = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            let shown = Shown {
                error: Some(rejection.body_text()),
                ..Shown::default()
            };
            return answer(&node, &headers, status, shown);
        }
    };
    if !valid_user(&form.user) {
        let shown = Shown {
            error: Some("user: 1 to 64 of a-z 0-9 _ . -".into()),
            ..Shown::default()
        };
        return answer(&node, &headers, StatusCode::BAD_REQUEST, shown);
    }
    // As the PHP app: a new id at login (the old one is deleted), then a fresh session.
    let result = async {
        session.cycle_id().await?;
        session.clear().await?;
        session.insert("user_id", &form.user).await?;
        session.insert("count", 0).await?;
        session.insert("login_node", &*node.name).await?;
        session.save().await
    }
    .await;
    if let Err(e) = result {
        return unavailable(&node, &headers, e);
    }
    let status = if wants_json(&headers) {
        StatusCode::OK
    } else {
        StatusCode::SEE_OTHER
    };
    answer(
        &node,
        &headers,
        status,
        Shown {
            user: Some(form.user),
            count: Some(0),
            error: None,
        },
    )
}

/// The PHP app's test hook, in Rust: with `FARM_HOLD_DIR` set (the farm sets it), `?hold=NAME`
/// creates `NAME.started` once the session is read and waits (at most 20 s) for the file
/// `NAME` before writing, so a test can hold a request in flight across a revocation.
async fn hold(query: &HashMap<String, String>) {
    let (Some(name), Some(dir)) = (query.get("hold"), std::env::var_os("FARM_HOLD_DIR")) else {
        return;
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return;
    }
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::write(dir.join(format!("{name}.started")), b"");
    for _ in 0..2000 {
        if dir.join(name).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn count(
    State(node): State<Node>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    session: Session,
) -> Response {
    let user = match who(&session).await {
        Ok((Some(user), _)) => user,
        Ok((None, _)) => {
            let shown = Shown {
                error: Some("not logged in".into()),
                ..Shown::default()
            };
            return answer(&node, &headers, StatusCode::UNAUTHORIZED, shown);
        }
        Err(e) => return unavailable(&node, &headers, e),
    };
    hold(&query).await;
    // `update` re-runs on the stored value if a PHP or Rust request wrote in between, and
    // `save` writes under php-memcached's lock: the increment is acknowledged only once it
    // is stored, and the count shown is the stored one. A session that ended meanwhile
    // (logged out elsewhere, revoked) is not written back: `save` drops the changes and says
    // so, which is answered 401, not acknowledged.
    let result = async {
        session
            .update("count", |n: Option<i64>| Some(n.unwrap_or(0) + 1))
            .await?;
        if session.save().await? == SaveOutcome::Ended {
            return Ok(None);
        }
        session.get::<i64>("count").await
    }
    .await;
    match result {
        Ok(None) => {
            let shown = Shown {
                error: Some("the session ended while this request ran; nothing was saved".into()),
                ..Shown::default()
            };
            answer(&node, &headers, StatusCode::UNAUTHORIZED, shown)
        }
        Ok(Some(count)) => {
            let status = if wants_json(&headers) {
                StatusCode::OK
            } else {
                StatusCode::SEE_OTHER
            };
            answer(
                &node,
                &headers,
                status,
                Shown {
                    user: Some(user),
                    count: Some(count),
                    error: None,
                },
            )
        }
        Err(e) => unavailable(&node, &headers, e),
    }
}

async fn logout(State(node): State<Node>, headers: HeaderMap, session: Session) -> Response {
    if let Err(e) = session.delete().await {
        return unavailable(&node, &headers, e);
    }
    let status = if wants_json(&headers) {
        StatusCode::OK
    } else {
        StatusCode::SEE_OTHER
    };
    answer(&node, &headers, status, Shown::default())
}

async fn not_found(State(node): State<Node>, headers: HeaderMap) -> Response {
    let shown = Shown {
        error: Some("no such page".into()),
        ..Shown::default()
    };
    answer(&node, &headers, StatusCode::NOT_FOUND, shown)
}
