//! The sealed-cookie layer in an axum app: a tampered cookie, a cookie sealed with a removed
//! key and an expired cookie each give a new empty session (and the browser is told to drop
//! the bad cookie); rejections are logged without the cookie value; oversized data is a
//! clear error to the handler; the idle timeout slides and the absolute timeout does not.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use sessiond_session::{CookieConfig, LogHasher, ManualClock};
use sessiond_tokens::{SealError, SealKey, SealKeys, SealedConfig, SealedLayer, SealedSession};
use tower::ServiceExt as _;

const T0: u64 = 1_700_000_000_000;

async fn whoami(s: SealedSession) -> String {
    s.get::<String>("user").unwrap_or_else(|| "nobody".into())
}

async fn login(s: SealedSession) -> String {
    s.insert("user", "alice").unwrap();
    "ok".into()
}

async fn big(s: SealedSession) -> (StatusCode, String) {
    match s.insert("blob", "x".repeat(5000)) {
        Err(e @ SealError::TooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        other => (StatusCode::OK, format!("{other:?}")),
    }
}

async fn logout(s: SealedSession) -> &'static str {
    s.end();
    "bye"
}

fn app(keys: SealKeys, clock: &ManualClock, hasher: LogHasher) -> Router {
    let config = SealedConfig::new(keys)
        .with_cookie(CookieConfig {
            name: "s".into(),
            ..CookieConfig::default()
        })
        .with_idle_timeout(Duration::from_secs(600))
        .with_absolute_timeout(Some(Duration::from_secs(3600)))
        .with_clock(Arc::new(clock.clone()))
        .with_log_hasher(hasher);
    Router::new()
        .route("/", get(whoami))
        .route("/login", post(login))
        .route("/big", post(big))
        .route("/logout", post(logout))
        .layer(SealedLayer::new(config).unwrap())
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Reply {
    /// The new cookie value, if the response set one (not a removal).
    fn cookie(&self) -> Option<String> {
        let sc = self.set_cookie.as_deref()?;
        if sc.contains("Max-Age=0") {
            return None;
        }
        let value = sc.split(';').next()?.strip_prefix("s=")?;
        Some(value.to_owned())
    }

    fn removes_cookie(&self) -> bool {
        self.set_cookie
            .as_deref()
            .is_some_and(|c| c.starts_with("s=;") && c.contains("Max-Age=0"))
    }
}

async fn send(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("s={c}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn login_round_trip_sets_a_hardened_cookie() {
    let clock = ManualClock::new(T0);
    let app = app(
        SealKeys::new(SealKey::generate(1)),
        &clock,
        LogHasher::random(),
    );
    let r = send(&app, "POST", "/login", None).await;
    let sc = r.set_cookie.clone().unwrap();
    assert!(sc.contains("HttpOnly") && sc.contains("Secure") && sc.contains("SameSite=Lax"));
    let cookie = r.cookie().unwrap();
    assert!(!cookie.contains("alice"), "the data is encrypted");
    let r = send(&app, "GET", "/", Some(&cookie)).await;
    assert_eq!(r.body, "alice");
    assert!(r.set_cookie.is_none(), "nothing changed, nothing to send");
    let r = send(&app, "POST", "/logout", Some(&cookie)).await;
    assert!(r.removes_cookie());
}

#[tokio::test(flavor = "current_thread")]
async fn a_tampered_cookie_gives_an_empty_session_and_is_logged_without_its_value() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::new(T0);
    let hasher = LogHasher::with_salt(b"nodes-share-this".to_vec());
    let app = app(SealKeys::new(SealKey::generate(1)), &clock, hasher.clone());
    let cookie = send(&app, "POST", "/login", None).await.cookie().unwrap();
    // Flip one character in the middle of the ciphertext.
    let mut bytes = cookie.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();

    let r = send(&app, "GET", "/", Some(&forged)).await;
    assert_eq!(r.body, "nobody");
    assert!(r.removes_cookie(), "the bad cookie is cleared");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sealed cookie rejected"), "{logs}");
    assert!(logs.contains("failed authentication"), "{logs}");
    assert!(logs.contains(&hasher.hash_str(&forged)), "{logs}");
    assert!(!logs.contains(&forged), "raw cookie in the logs: {logs}");
    assert!(
        !logs.contains(&cookie[..40]),
        "raw cookie in the logs: {logs}"
    );
}

#[tokio::test]
async fn a_cookie_sealed_with_a_removed_key_gives_an_empty_session() {
    let clock = ManualClock::new(T0);
    let old = SealKey::new(1, [1u8; 32]);
    let new = SealKey::new(2, [2u8; 32]);
    let before = app(SealKeys::new(old.clone()), &clock, LogHasher::random());
    let cookie = send(&before, "POST", "/login", None)
        .await
        .cookie()
        .unwrap();

    // During rotation: still valid, and re-sealed with the new key on the next request.
    let during = app(
        SealKeys::new(new.clone()).with_previous(old).unwrap(),
        &clock,
        LogHasher::random(),
    );
    let r = send(&during, "GET", "/", Some(&cookie)).await;
    assert_eq!(r.body, "alice");
    let resealed = r.cookie().expect("moved to the current key");

    // After the old key is removed: the old cookie is worthless, the re-sealed one works.
    let after = app(SealKeys::new(new), &clock, LogHasher::random());
    let r = send(&after, "GET", "/", Some(&cookie)).await;
    assert_eq!(r.body, "nobody");
    assert!(r.removes_cookie());
    assert_eq!(
        send(&after, "GET", "/", Some(&resealed)).await.body,
        "alice"
    );
}

#[tokio::test]
async fn an_expired_cookie_gives_an_empty_session() {
    let clock = ManualClock::new(T0);
    let app = app(
        SealKeys::new(SealKey::generate(1)),
        &clock,
        LogHasher::random(),
    );
    let cookie = send(&app, "POST", "/login", None).await.cookie().unwrap();
    clock.advance(Duration::from_secs(600));
    let r = send(&app, "GET", "/", Some(&cookie)).await;
    assert_eq!(r.body, "nobody");
    assert!(r.removes_cookie());
}

#[tokio::test]
async fn idle_timeout_slides_but_absolute_timeout_holds() {
    let clock = ManualClock::new(T0);
    let app = app(
        SealKeys::new(SealKey::generate(1)),
        &clock,
        LogHasher::random(),
    );
    let mut cookie = send(&app, "POST", "/login", None).await.cookie().unwrap();
    // Active every 5 minutes: the 10-minute idle timeout never strikes...
    for _ in 0..11 {
        clock.advance(Duration::from_secs(300));
        let r = send(&app, "GET", "/", Some(&cookie)).await;
        assert_eq!(r.body, "alice");
        cookie = r.cookie().expect("refreshed");
    }
    // ...but after an hour in all, the absolute timeout does.
    clock.advance(Duration::from_secs(300));
    assert_eq!(send(&app, "GET", "/", Some(&cookie)).await.body, "nobody");
}

#[tokio::test]
async fn oversized_data_is_a_clear_error_and_nothing_is_stored() {
    let clock = ManualClock::new(T0);
    let app = app(
        SealKeys::new(SealKey::generate(1)),
        &clock,
        LogHasher::random(),
    );
    let r = send(&app, "POST", "/big", None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("4096-byte cookie limit"), "{}", r.body);
    assert!(r.set_cookie.is_none());
}

#[test]
fn none_without_secure_is_refused() {
    let config = SealedConfig::new(SealKeys::new(SealKey::generate(1))).with_cookie(CookieConfig {
        secure: false,
        same_site: sessiond_session::SameSite::None,
        ..CookieConfig::default()
    });
    assert!(SealedLayer::new(config).is_err());
}
