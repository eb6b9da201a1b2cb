//! The HTTP application through `oneshot` requests (access, every endpoint's shapes, errors,
//! limits, headers), the route table against `docs/openapi.json`, and the connection limits
//! of a real hyper connection.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use serde_json::Value;
use sessiond_proto_memcache::{Command, StoreMode};
use tower::ServiceExt as _;

use super::api::ROUTES;
use crate::config::{Config, Role, User};
use crate::exec::Shared;

fn shared(requirepass: Option<&str>, users: &[(&str, Role, &str)]) -> Arc<Shared> {
    let config = Config {
        requirepass: requirepass.map(String::from),
        users: users
            .iter()
            .map(|(name, role, password)| User {
                name: name.to_string(),
                role: *role,
                password: password.to_string(),
            })
            .collect(),
        ..Config::default()
    };
    Arc::new(Shared::unjournaled(config, crate::clock::now_ms()))
}

fn mc_set(shared: &Shared, key: &str, value: &str) {
    let now = crate::clock::now_ms();
    crate::exec::memcache::execute(
        shared,
        &Command::Store {
            mode: StoreMode::Set,
            key: Bytes::copy_from_slice(key.as_bytes()),
            flags: 0,
            exptime: 600,
            value: Bytes::copy_from_slice(value.as_bytes()),
            cas: 0,
        },
        now,
    );
    shared.settle_sessions(now);
}

fn php_login(user: u32) -> String {
    format!("user_id|i:{user};name|s:3:\"ann\";")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(
    shared: &Arc<Shared>,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: Body,
) -> Answer {
    // As curl to a loopback listener sends it (an open API answers only loopback hosts).
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:8080");
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    answer(shared, request.body(body).unwrap()).await
}

/// Runs `request` through the application and collects the response, which, whatever it
/// is, must say not to cache it.
async fn answer(shared: &Arc<Shared>, request: Request<Body>) -> Answer {
    let what = format!("{} {}", request.method(), request.uri());
    let response = super::app(shared.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    assert_eq!(
        headers.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "{what}"
    );
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(shared: &Arc<Shared>, uri: &str, auth: Option<&str>) -> Answer {
    call(shared, "GET", uri, auth, Body::empty()).await
}

/// `DELETE uri` with no credentials.
async fn delete(shared: &Arc<Shared>, uri: &str) -> Answer {
    call(shared, "DELETE", uri, None, Body::empty()).await
}

#[test]
fn every_route_is_in_the_openapi_description_and_back() {
    let doc: Value =
        serde_json::from_str(include_str!("../../../../docs/openapi.json")).expect("valid JSON");
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            described.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(routed, described);
}

#[test]
fn the_refusal_is_well_formed() {
    let text = std::str::from_utf8(super::REFUSAL).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("content-length: {}", body.len())));
    serde_json::from_str::<Value>(body).unwrap();
}

#[tokio::test]
async fn access_none_wrong_app_admin_and_bearer() {
    let s = shared(
        Some("apppw"),
        &[("web", Role::App, "webpw"), ("ops", Role::Admin, "opspw")],
    );
    let uri = "/api/v1/sessions/count";
    let none = get(&s, uri, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.headers.get(header::WWW_AUTHENTICATE).unwrap(),
        "Basic realm=\"sessiond\", charset=\"UTF-8\""
    );
    assert!(none.json()["error"].is_string());
    for wrong in [
        basic("ops", "nope"),
        basic("nobody", "opspw"),
        "Basic !!!".into(),
        "Basic".into(),
        "Digest x".into(),
        "Bearer opspw".into(),
    ] {
        assert_eq!(
            get(&s, uri, Some(&wrong)).await.status,
            StatusCode::UNAUTHORIZED,
            "{wrong}"
        );
    }
    // With a named admin, the shared password is the application's.
    for (auth, status) in [
        (basic("web", "webpw"), StatusCode::FORBIDDEN),
        (basic("default", "apppw"), StatusCode::FORBIDDEN),
        ("Bearer apppw".to_string(), StatusCode::FORBIDDEN),
        (basic("ops", "opspw"), StatusCode::OK),
    ] {
        assert_eq!(get(&s, uri, Some(&auth)).await.status, status, "{auth}");
    }
    // Health and (by default) metrics are open; live and ready say so.
    assert_eq!(get(&s, "/health/live", None).await.status, StatusCode::OK);
    let ready = get(&s, "/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
    let metrics = get(&s, "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );

    // `--requirepass` alone: `default` is the admin, by Basic or Bearer.
    let alone = shared(Some("pw"), &[]);
    for auth in [
        "Bearer pw".to_string(),
        "bearer  pw".into(),
        basic("default", "pw"),
    ] {
        assert_eq!(
            get(&alone, uri, Some(&auth)).await.status,
            StatusCode::OK,
            "{auth}"
        );
    }

    // No password at all: loopback only (protected mode), and open like the other listeners.
    let open = shared(None, &[]);
    assert_eq!(get(&open, uri, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_behind_auth_when_asked() {
    let mut config = Config {
        requirepass: Some("pw".into()),
        ..Config::default()
    };
    config.http_open_metrics = false;
    let s = Arc::new(Shared::unjournaled(config, crate::clock::now_ms()));
    assert_eq!(
        get(&s, "/metrics", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&s, "/metrics", Some("Bearer pw")).await.status,
        StatusCode::OK
    );
    assert_eq!(get(&s, "/health/live", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_api_counts_lists_shows_and_revokes() {
    let s = shared(None, &[]);
    mc_set(&s, "memc.sess.key.a1", &php_login(42));
    mc_set(&s, "memc.sess.key.a2", &php_login(42));
    mc_set(&s, "memc.sess.key.a3", &php_login(42));
    mc_set(&s, "memc.sess.key.b1", &php_login(7));
    mc_set(&s, "memc.sess.key.lock.a1", "1");
    mc_set(&s, "PHPREDIS_SESSION:r{1}", &php_login(7));

    let count = get(&s, "/api/v1/sessions/count", None).await;
    assert_eq!(count.status, StatusCode::OK);
    assert_eq!(
        count.json(),
        serde_json::json!({"sessions": 5, "users": 2, "count": 5})
    );
    let one_family = get(&s, "/api/v1/sessions/count?family=phpredis", None).await;
    assert_eq!(one_family.json()["sessions"], 1);
    let unknown = get(&s, "/api/v1/sessions/count?family=nope", None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.json()["error"].as_str().unwrap().contains("nope"));
    let typo = get(&s, "/api/v1/sessions/count?familly=php-memcached", None).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);

    let families = get(&s, "/api/v1/families", None).await.json();
    let names: Vec<&str> = families
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"php-memcached") && names.contains(&"phpredis"));

    let listed = get(&s, "/api/v1/users/42/sessions", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed = listed.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    let first = &listed[0];
    for field in [
        "id",
        "key",
        "db",
        "family",
        "user",
        "created_at",
        "written_at",
        "last_seen",
        "expires_at",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    assert_eq!(first["family"], "php-memcached");
    assert_eq!(first["user"], "42");
    assert_eq!(first["db"], 0);
    assert!(first["expires_at"].as_u64().unwrap() > first["created_at"].as_u64().unwrap());
    let keys: BTreeSet<&str> = listed.iter().map(|v| v["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["memc.sess.key.a1", "memc.sess.key.a2", "memc.sess.key.a3"])
    );
    assert_eq!(
        get(&s, "/api/v1/users/nobody/sessions", None).await.json(),
        serde_json::json!([])
    );

    // One session, its key percent-encoded (`:`, `{`, `}`), with its data decoded.
    let shown = get(&s, "/api/v1/sessions/PHPREDIS_SESSION%3Ar%7B1%7D", None).await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.json());
    let shown = shown.json();
    assert_eq!(shown["key"], "PHPREDIS_SESSION:r{1}");
    assert_eq!(shown["id"], "r{1}");
    assert_eq!(shown["data"]["user_id"], 7);
    assert_eq!(shown["data"]["name"], "ann");
    let missing = get(&s, "/api/v1/sessions/memc.sess.key.zz", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"], "no such session");
    // Another database, a database that does not exist, a lock key (not a session).
    assert_eq!(
        get(&s, "/api/v1/sessions/memc.sess.key.a1?db=1", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, "/api/v1/sessions/memc.sess.key.a1?db=16", None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&s, "/api/v1/sessions/memc.sess.key.lock.a1", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Bad percent-encoding (not UTF-8 once decoded).
    let bad = get(&s, "/api/v1/sessions/%FF%FE", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].is_string());

    // Revoke one: 204, then 404; the store refuses to bring it back.
    let revoked = delete(&s, "/api/v1/sessions/memc.sess.key.a1").await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert!(revoked.body.is_empty());
    let again = delete(&s, "/api/v1/sessions/memc.sess.key.a1").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // A key that is not a session is not deleted by the API.
    assert_eq!(
        delete(&s, "/api/v1/sessions/memc.sess.key.lock.a1")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        s.store
            .peek(b"memc.sess.key.lock.a1", crate::clock::now_ms())
            .is_some()
    );

    // Revoke all of a user's sessions but one.
    let all_but = delete(&s, "/api/v1/users/42/sessions?except=memc.sess.key.a3").await;
    assert_eq!(all_but.status, StatusCode::OK);
    assert_eq!(all_but.json(), serde_json::json!({"count": 1}));
    let left = get(&s, "/api/v1/users/42/sessions", None).await.json();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["key"], "memc.sess.key.a3");
    let rest = delete(&s, "/api/v1/users/42/sessions").await;
    assert_eq!(rest.json(), serde_json::json!({"count": 1}));
    assert_eq!(
        get(&s, "/api/v1/sessions/count", None).await.json()["users"],
        1
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_oversized_bodies() {
    let s = shared(None, &[]);
    let nowhere = get(&s, "/api/v2/nothing", None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert!(nowhere.json()["error"].is_string());
    let wrong_method = call(&s, "POST", "/api/v1/sessions/count", None, Body::empty()).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);

    // Declared too large: refused before reading.
    let request = Request::builder()
        .method("DELETE")
        .uri("/api/v1/sessions/memc.sess.key.x")
        .header(header::CONTENT_LENGTH, (super::BODY_LIMIT + 1).to_string())
        .body(Body::from(vec![b'x'; super::BODY_LIMIT + 1]))
        .unwrap();
    let response = super::app(s.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    // Undeclared (no content-length, as a chunked body): refused once the limit is read.
    let undeclared = Body::from(vec![b'x'; super::BODY_LIMIT + 1]);
    let big = call(&s, "DELETE", "/api/v1/users/42/sessions", None, undeclared).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A small body is read and ignored.
    let small = call(&s, "GET", "/health/live", None, Body::from("hello")).await;
    assert_eq!(small.status, StatusCode::OK);
}

/// Sends `request` over a real connection served by `super::serve` and returns everything
/// the server wrote until it closed the connection.
async fn exchange(request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = shared(None, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        super::serve(stream, peer.to_string(), s, stop_rx).await;
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    server.await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_real_connection_refuses_huge_heads_and_serves_keep_alive() {
    let huge = format!(
        "GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(super::MAX_HEADER_SIZE + 1)
    );
    let answer = exchange(huge.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

    let mut many = String::from("GET /health/live HTTP/1.1\r\nhost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("x-h{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(many.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

    let body = format!(
        "DELETE /api/v1/sessions/k HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        super::BODY_LIMIT + 1
    );
    let answer = exchange(body.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("cache-control: no-store"), "{answer}");

    // Two requests on one connection, the second closing it.
    let two = "GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n\
               GET /health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let answer = exchange(two.as_bytes().to_vec()).await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert!(answer.contains("\"ready\""), "{answer}");
}

// The admin page.

/// A request with `headers`, as `call` makes it.
async fn call_with(
    shared: &Arc<Shared>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(shared, request.body(Body::from(body.to_string())).unwrap()).await
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A form post to the admin page from its own origin, as ops.
async fn post_form(s: &Arc<Shared>, uri: &str, origin: Option<&str>, body: &str) -> Answer {
    let auth = basic("ops", "opspw");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("host", "admin.example:8080"),
        ("content-type", FORM),
    ];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    call_with(s, "POST", uri, &headers, body).await
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn admin_shared() -> Arc<Shared> {
    shared(
        Some("apppw"),
        &[("web", Role::App, "webpw"), ("ops", Role::Admin, "opspw")],
    )
}

fn assert_page_headers(answer: &Answer) {
    let h = &answer.headers;
    assert_eq!(
        h.get(header::CONTENT_SECURITY_POLICY).unwrap(),
        super::admin::CSP
    );
    assert!(super::admin::CSP.contains("default-src 'none'"));
    assert!(super::admin::CSP.contains("frame-ancestors 'none'"));
    assert!(super::admin::CSP.contains("form-action 'self'"));
    assert_eq!(h.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
    assert_eq!(h.get(header::REFERRER_POLICY).unwrap(), "same-origin");
    assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
}

#[tokio::test]
async fn the_admin_page_needs_an_admin() {
    let s = admin_shared();
    for uri in ["/admin", "/admin/users?user=42", "/admin/style.css"] {
        let none = get(&s, uri, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(none.headers.contains_key(header::WWW_AUTHENTICATE));
        assert_page_headers(&none);
        let app = get(&s, uri, Some(&basic("web", "webpw"))).await;
        assert_eq!(app.status, StatusCode::FORBIDDEN, "{uri}");
        let ops = get(&s, uri, Some(&basic("ops", "opspw"))).await;
        assert_eq!(ops.status, StatusCode::OK, "{uri}");
        assert_page_headers(&ops);
    }
    let anonymous_post = call_with(
        &s,
        "POST",
        "/admin/revoke/confirm",
        &[
            ("content-type", FORM),
            ("host", "h"),
            ("origin", "http://h"),
        ],
        "user=42",
    )
    .await;
    assert_eq!(anonymous_post.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_admin_pages_render_and_escape() {
    let s = admin_shared();
    mc_set(&s, "memc.sess.key.a1", &php_login(42));
    mc_set(&s, "memc.sess.key.a2", &php_login(42));
    mc_set(&s, "memc.sess.key.x1", "user_id|s:8:\"<script>\";");
    let ops = basic("ops", "opspw");

    let overview = get(&s, "/admin", Some(&ops)).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert_eq!(
        overview.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/html; charset=utf-8"
    );
    let html = overview.text();
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("id=\"sessions-online\">3<"), "{html}");
    assert!(html.contains("php-memcached"));
    assert!(html.contains("Memory used"));
    // The last events, keys hashed, never in clear.
    assert!(html.contains("created"), "{html}");
    assert!(html.contains(&super::key_hash(b"memc.sess.key.a1")));
    assert!(!html.contains("memc.sess.key"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        !html.contains("<style"),
        "inline styles would need a CSP exception"
    );

    let user = get(&s, "/admin/users?user=%3Cscript%3E", Some(&ops)).await;
    assert_eq!(user.status, StatusCode::OK);
    let html = user.text();
    assert!(html.contains("Sessions of user &lt;script&gt;"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let user = get(&s, "/admin/users?user=42", Some(&ops)).await.text();
    assert!(
        user.contains("<span id=\"count\">2</span> sessions<"),
        "{user}"
    );
    assert!(user.contains(&super::key_hash(b"memc.sess.key.a1")));
    assert!(!user.contains("memc.sess.key"), "{user}");
    let empty = get(&s, "/admin/users?user=", Some(&ops)).await;
    assert_eq!(empty.status, StatusCode::OK);
    let css = get(&s, "/admin/style.css", Some(&ops)).await;
    assert_eq!(
        css.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/css; charset=utf-8"
    );
}

#[tokio::test]
async fn admin_posts_need_the_token_and_the_same_origin() {
    let s = admin_shared();
    for n in 1..=3 {
        mc_set(&s, &format!("memc.sess.key.a{n}"), &php_login(42));
    }
    let origin = Some("http://admin.example:8080");
    let now = crate::clock::now_ms();
    let revoke = super::admin::token("ops", "revoke", "42", now);
    let confirm = super::admin::token("ops", "confirm", "42", now);
    // Tokens issued before the limit, or later than now (the issue time is the caller's to
    // pass, so the age is tested without waiting).
    let hour = super::admin::TOKEN_MAX_AGE_MS;
    let stale = super::admin::token("ops", "confirm", "42", now - hour - 60_000);
    let future = super::admin::token("ops", "confirm", "42", now + 10 * 60_000);
    // A young time put on an old token's HMAC.
    let (_, stale_tag) = stale.split_once('.').unwrap();
    let forged = format!("{now}.{stale_tag}");
    let count = |s: &Arc<Shared>| {
        s.sessions
            .as_ref()
            .unwrap()
            .list("42", None, None, usize::MAX)
            .sessions
            .len()
    };

    // Missing, wrong, another action's, another user's and another admin's tokens.
    for (uri, token) in [
        ("/admin/revoke", String::new()),
        ("/admin/revoke", "00".repeat(32)),
        ("/admin/revoke", "not hex".to_string()),
        ("/admin/revoke", confirm.clone()),
        ("/admin/revoke/confirm", revoke.clone()),
        (
            "/admin/revoke/confirm",
            super::admin::token("ops", "confirm", "7", now),
        ),
        (
            "/admin/revoke/confirm",
            super::admin::token("root", "confirm", "42", now),
        ),
        ("/admin/revoke/confirm", stale),
        ("/admin/revoke/confirm", future),
        ("/admin/revoke/confirm", forged),
        ("/admin/revoke/confirm", format!(".{}", "00".repeat(32))),
        (
            "/admin/revoke/confirm",
            format!("99999999999999999999999.{}", "00".repeat(32)),
        ),
    ] {
        let body = form_encode(&[("user", "42"), ("token", &token)]);
        let refused = post_form(&s, uri, origin, &body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{uri} {token}");
        assert_page_headers(&refused);
        assert!(refused.text().contains("token"));
    }
    let no_token = post_form(&s, "/admin/revoke/confirm", origin, "user=42").await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    // The right token from another origin, from nowhere, or `null`.
    let good = form_encode(&[("user", "42"), ("token", &confirm)]);
    for origin in [
        Some("http://evil.example"),
        Some("http://admin.example:8081"),
        Some("null"),
        None,
    ] {
        let refused = post_form(&s, "/admin/revoke/confirm", origin, &good).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(refused.text().contains("Cross-origin"));
    }
    let auth = basic("ops", "opspw");
    let cross_site = call_with(
        &s,
        "POST",
        "/admin/revoke/confirm",
        &[
            ("authorization", &auth),
            ("host", "admin.example:8080"),
            ("origin", "http://admin.example:8080"),
            ("sec-fetch-site", "cross-site"),
            ("content-type", FORM),
        ],
        &good,
    )
    .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    // A Referer of this origin does without Origin.
    let referred = call_with(
        &s,
        "POST",
        "/admin/revoke",
        &[
            ("authorization", &auth),
            ("host", "admin.example:8080"),
            ("referer", "http://admin.example:8080/admin/users?user=42"),
            ("content-type", FORM),
        ],
        &form_encode(&[("user", "42"), ("token", &revoke)]),
    )
    .await;
    assert_eq!(referred.status, StatusCode::OK);
    assert_eq!(
        count(&s),
        3,
        "nothing revoked by a refused or unconfirmed post"
    );

    // One session: the confirmation names it, the confirmed post revokes it.
    let hash = super::key_hash(b"memc.sess.key.a2");
    let one = form_encode(&[("user", "42"), ("session", &hash), ("token", &revoke)]);
    let asked = post_form(&s, "/admin/revoke", origin, &one).await;
    assert_eq!(asked.status, StatusCode::OK);
    let html = asked.text();
    assert!(html.contains(&format!(
        "Revoke session #{hash} (php-memcached) of user 42?"
    )));
    // The confirmation carries its own token, issued when the page was built.
    let marker = "name=\"token\" value=\"";
    let start = html.find(marker).expect("a token field") + marker.len();
    let issued = &html[start..start + html[start..].find('"').unwrap()];
    let (at, _) = issued.split_once('.').expect("<issued_at>.<hmac>");
    assert!(at.parse::<u64>().unwrap() >= now, "{issued}");
    let one = form_encode(&[("user", "42"), ("session", &hash), ("token", issued)]);
    let done = post_form(&s, "/admin/revoke/confirm", origin, &one).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.text().contains("Revoked 1 session of user 42."));
    assert_eq!(count(&s), 2);

    // All of them.
    let all = form_encode(&[("user", "42"), ("token", &revoke)]);
    let asked = post_form(&s, "/admin/revoke", origin, &all).await;
    assert!(asked.text().contains("Revoke 2 sessions of user 42?"));
    // A token just under an hour old still works.
    let aged = super::admin::token("ops", "confirm", "42", now - hour + 60_000);
    let aged = form_encode(&[("user", "42"), ("token", &aged)]);
    let done = post_form(&s, "/admin/revoke/confirm", origin, &aged).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.text().contains("Revoked 2 sessions of user 42."));
    assert_eq!(count(&s), 0);
    let overview = get(&s, "/admin", Some(&auth)).await.text();
    assert!(overview.contains("revoked"), "{overview}");
}

#[test]
fn admin_times_and_escaping() {
    assert_eq!(super::admin::time(0), "1970-01-01 00:00:00");
    assert_eq!(super::admin::time(1_798_761_599_000), "2026-12-31 23:59:59");
    assert_eq!(super::admin::time(951_782_400_000), "2000-02-29 00:00:00");
    assert_eq!(
        super::admin::escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}

/// `Host` names that are not loopback, among them one that starts like a loopback address
/// (DNS rebinding).
const FOREIGN_HOSTS: [&str; 3] = [
    "evil.example",
    "evil.example:8080",
    "127.0.0.1.evil.example",
];

/// `GET uri` as the admin `ops`, with credentials configured, through a DNS name (a
/// proxy's), not a loopback address.
async fn get_as_ops_via_a_name(uri: &str) -> Answer {
    let auth = basic("ops", "opspw");
    let headers = [
        ("host", "sessiond.internal"),
        ("authorization", auth.as_str()),
    ];
    call_with(&admin_shared(), "GET", uri, &headers, "").await
}

#[tokio::test]
async fn the_open_admin_page_answers_only_for_loopback_hosts() {
    // No password: protected mode, nobody logs in; DNS rebinding must not reach the page.
    let s = shared(None, &[]);
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "LOCALHOST",
    ] {
        let page = call_with(&s, "GET", "/admin", &[("host", host)], "").await;
        assert_eq!(page.status, StatusCode::OK, "{host}");
    }
    for host in FOREIGN_HOSTS {
        let page = call_with(&s, "GET", "/admin", &[("host", host)], "").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{host}");
        assert_page_headers(&page);
    }
    let no_host = call_with(&s, "GET", "/admin", &[], "").await;
    assert_eq!(no_host.status, StatusCode::FORBIDDEN);
    // With credentials configured, any host name (a proxy's, a DNS name) is fine.
    assert_eq!(get_as_ops_via_a_name("/admin").await.status, StatusCode::OK);
}

/// `GET /api/v1/users/{user}/sessions` gives at most `limit` (100 by default, 1000 at most)
/// and, while more follow, the next page in `X-Next-Cursor` and `Link: <…>; rel="next"`;
/// following the links lists every session once, oldest first.
#[tokio::test]
async fn user_sessions_are_listed_in_bounded_pages() {
    let s = shared(None, &[]);
    // A user id that needs percent-encoding in the path (php_login only writes numbers, so
    // this one is written by hand).
    let total = 250;
    for n in 0..total {
        mc_set(
            &s,
            &format!("memc.sess.key.p{n:03}"),
            "user_id|s:5:\"a b/c\";",
        );
    }
    let base = "/api/v1/users/a%20b%2Fc/sessions";
    let first = get(&s, base, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json().as_array().unwrap().len(), 100, "the default");
    assert!(first.headers.get("x-next-cursor").is_some());

    let mut uri = format!("{base}?limit=70&family=php-memcached");
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut pages = 0;
    loop {
        let page = get(&s, &uri, None).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let items = page.json();
        let items = items.as_array().unwrap();
        assert!(items.len() <= 70);
        seen.extend(items.iter().map(|v| {
            (
                v["created_at"].as_u64().unwrap(),
                v["key"].as_str().unwrap().to_string(),
            )
        }));
        pages += 1;
        let Some(link) = page.headers.get(header::LINK) else {
            assert!(page.headers.get("x-next-cursor").is_none());
            break;
        };
        let link = link.to_str().unwrap();
        let cursor = page.headers["x-next-cursor"].to_str().unwrap();
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        assert!(link.contains(&format!("cursor={cursor}")), "{link}");
        assert!(link.contains("family=php%2Dmemcached"), "{link}");
        uri = link[1..link.find('>').unwrap()].to_string();
        assert!(uri.starts_with(base), "{uri}");
    }
    assert_eq!(pages, 4);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");
    let keys: BTreeSet<&str> = seen.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys.len(), total, "every session once");

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=-1",
        "cursor=nope",
        "cursor=1-0-0g",
        "cursor=1-300-00",
        "page=2",
    ] {
        let refused = get(&s, &format!("{base}?{bad}"), None).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.json()["error"].is_string(), "{bad}");
    }
    let all = get(&s, &format!("{base}?limit=1000"), None).await;
    assert_eq!(all.json().as_array().unwrap().len(), total);
    assert!(all.headers.get(header::LINK).is_none());
}

/// With no password (protected mode), the `/api/v1` routes answer only loopback `Host`
/// names, as the admin page does, against DNS rebinding; health and metrics stay open; with
/// a password any host name is fine.
#[tokio::test]
async fn the_open_api_answers_only_for_loopback_hosts() {
    let s = shared(None, &[]);
    mc_set(&s, "memc.sess.key.a1", &php_login(42));
    let api = [
        ("GET", "/api/v1/sessions/count"),
        ("GET", "/api/v1/families"),
        ("GET", "/api/v1/users/42/sessions"),
        ("GET", "/api/v1/sessions/memc.sess.key.a1"),
        ("DELETE", "/api/v1/users/42/sessions"),
        ("DELETE", "/api/v1/sessions/memc.sess.key.a1"),
    ];
    for host in FOREIGN_HOSTS {
        for (method, uri) in api {
            let refused = call_with(&s, method, uri, &[("host", host)], "").await;
            assert_eq!(
                refused.status,
                StatusCode::FORBIDDEN,
                "{method} {uri} {host}"
            );
            assert!(
                refused.json()["error"]
                    .as_str()
                    .unwrap()
                    .contains("localhost"),
                "{method} {uri}"
            );
        }
        for uri in ["/health/live", "/health/ready", "/metrics"] {
            let open = call_with(&s, "GET", uri, &[("host", host)], "").await;
            assert_eq!(open.status, StatusCode::OK, "{uri} {host}");
        }
    }
    let no_host = call_with(&s, "GET", "/api/v1/sessions/count", &[], "").await;
    assert_eq!(no_host.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.sessions.as_ref().unwrap().counts(None).sessions,
        1,
        "nothing was revoked"
    );
    for host in ["127.0.0.1:8080", "localhost", "[::1]:1"] {
        let count = call_with(&s, "GET", "/api/v1/sessions/count", &[("host", host)], "").await;
        assert_eq!(count.status, StatusCode::OK, "{host}");
    }
    let count = get_as_ops_via_a_name("/api/v1/sessions/count").await;
    assert_eq!(count.status, StatusCode::OK);
}

/// The admin page's user search shows at most one listing page (the oldest 1000) and says
/// so; its "Revoke all" still covers every session.
#[tokio::test]
async fn the_admin_page_lists_at_most_one_page_of_a_users_sessions() {
    let s = admin_shared();
    let ops = basic("ops", "opspw");
    let total = crate::sessions::LIST_MAX + 2;
    for n in 0..total {
        mc_set(&s, &format!("memc.sess.key.m{n:04}"), &php_login(42));
    }
    let page = get(&s, "/admin/users?user=42", Some(&ops)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert_eq!(
        html.matches("<tr class=\"session\">").count(),
        crate::sessions::LIST_MAX
    );
    assert!(html.contains("id=\"truncated\""), "the page says it is cut");
    assert!(html.contains("Revoke all sessions"));
    // A user with fewer sessions gets no such note.
    mc_set(&s, "memc.sess.key.other", &php_login(7));
    let small = get(&s, "/admin/users?user=7", Some(&ops)).await.text();
    assert!(!small.contains("id=\"truncated\"") && small.contains("Revoke all 1 sessions"));
}
