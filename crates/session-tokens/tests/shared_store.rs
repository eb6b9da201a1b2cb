//! This crate's records in a store shared with sessiond-session's layer: JWT revocations, SSO
//! tickets and logins, and an app's per-login index of sessions are never sessions, whatever
//! id a client sends as its session cookie. Each of them is sent as the cookie to an app with
//! the session layer over the same store (reads, writes and a logout, which deletes the
//! session the cookie names), and must come out intact and working.
//!
//! Every test runs twice: on the in-memory store and on a real redis-server started for the
//! test (the records' tag must survive a real store's encoding).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use serde_json::Map;
use sessiond_session::{
    Clock, ManualClock, MemoryStore, RedisStore, Session, SessionConfig, SessionId, SessionLayer,
    SessionStore,
};
use sessiond_test_harness::RedisServer;
use sessiond_tokens::jwt::JwtError;
use sessiond_tokens::{
    AppSessions, JwtIssuer, JwtKey, JwtValidator, LoginAuthority, Revocations, SiteRegistration,
    TicketError, storeid,
};
use tower::ServiceExt as _;

const T0: u64 = 1_700_000_000_000;
const ISS: &str = "https://login.test";

/// A store shared by the session layer and this crate, on one manual clock.
struct Env {
    store: Arc<dyn SessionStore>,
    clock: ManualClock,
    app: Router,
    /// The redis-server behind `store`, if any, stopped when the test ends.
    _server: Option<RedisServer>,
}

impl Env {
    fn memory() -> Self {
        let clock = ManualClock::new(T0);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        Self::on(store, clock, None)
    }

    async fn redis() -> Self {
        let server = RedisServer::start(&[]);
        let store = RedisStore::connect(&server.url())
            .await
            .expect("connect to redis-server");
        Self::on(Arc::new(store), ManualClock::new(T0), Some(server))
    }

    fn on(store: Arc<dyn SessionStore>, clock: ManualClock, server: Option<RedisServer>) -> Self {
        let config = SessionConfig::default()
            .with_clock(Arc::new(clock.clone()))
            .with_secure(false);
        let layer = SessionLayer::from_arc(store.clone(), config).unwrap();
        let app = Router::new()
            .route(
                "/whoami",
                get(|s: Session| async move {
                    let user: Option<String> = s.get("user").await.unwrap();
                    user.unwrap_or_else(|| "anonymous".into())
                }),
            )
            .route(
                "/login",
                post(|s: Session| async move {
                    s.cycle_id().await.unwrap();
                    s.insert("user", "mallory").await.unwrap();
                    "ok"
                }),
            )
            .route(
                "/logout",
                post(|s: Session| async move {
                    s.delete().await.unwrap();
                    "bye"
                }),
            )
            .layer(layer);
        Env {
            store,
            clock,
            app,
            _server: server,
        }
    }

    /// Sends a request with `id` as the session cookie; returns the status, the body and the
    /// id of a `Set-Cookie` (empty for a removal).
    async fn send(
        &self,
        method: &str,
        uri: &str,
        id: &str,
    ) -> (StatusCode, String, Option<String>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, format!("id={id}"))
            .body(Body::empty())
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .and_then(|c| {
                let first = c.split(';').next()?.to_owned();
                Some(first.strip_prefix("id=")?.to_owned())
            });
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), cookie)
    }

    /// Everything a client can do to the session its cookie names, with `id` as the cookie:
    /// read it, log in (write, with an id change), log out (delete). None of it may be taken
    /// for the record at `id`.
    async fn attack(&self, id: &SessionId) {
        let before = self
            .store
            .load(id)
            .await
            .unwrap()
            .expect("the record exists");
        let (_, body, cookie) = self.send("GET", "/whoami", id.as_str()).await;
        assert_eq!(body, "anonymous", "the record was read as a session");
        assert_eq!(cookie, None);
        let (status, _, cookie) = self.send("POST", "/login", id.as_str()).await;
        assert_eq!(status, StatusCode::OK);
        let issued = cookie.expect("a login without a session starts a new one");
        assert_ne!(issued, id.as_str(), "the record's id was adopted");
        let (status, _, _) = self.send("POST", "/logout", id.as_str()).await;
        assert_eq!(status, StatusCode::OK);
        let after = self
            .store
            .load(id)
            .await
            .unwrap()
            .expect("the logout deleted the record");
        assert_eq!(
            after, before,
            "the record was changed through the session layer"
        );
    }
}

fn jwt(env: &Env) -> (JwtIssuer, Revocations) {
    let clock: Arc<dyn Clock> = Arc::new(env.clock.clone());
    let key = JwtKey::ed25519("ed-1", [7u8; 32]).unwrap();
    let validator = JwtValidator::new(ISS, "b.test")
        .with_key(key.verify_key())
        .unwrap()
        .with_clock(clock.clone());
    let issuer = JwtIssuer::new(key, ISS).with_clock(clock);
    let revocations = Revocations::new(env.store.clone(), validator, issuer.ttl());
    (issuer, revocations)
}

fn authority(env: &Env) -> LoginAuthority {
    let key = JwtKey::ed25519("login-1", [9u8; 32]).unwrap();
    LoginAuthority::new(env.store.clone(), key, ISS)
        .with_clock(Arc::new(env.clock.clone()))
        .with_site(SiteRegistration {
            site: "b.test".into(),
            callback_url: "http://b.test/sso/callback".into(),
            backchannel_logout_url: "http://b.test/sso/backchannel-logout".into(),
            secret: b"secret-of-b.test".to_vec(),
        })
}

/// A logout carrying a revoked token's revocation id as its session cookie cannot delete the
/// revocation: the token stays refused. The same for "log out everywhere".
async fn logout_cannot_delete_a_revocation(env: Env) {
    let (issuer, revocations) = jwt(&env);
    let token = issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let claims = revocations.authenticate(&token.token).await.unwrap();
    revocations.revoke(&claims).await.unwrap();
    // The id is derived from claims the token's holder can read.
    let jti = storeid::derive("jwt-jti", &[&claims.iss, &claims.jti]);
    env.attack(&jti).await;
    assert_eq!(
        revocations.authenticate(&token.token).await,
        Err(JwtError::Revoked)
    );

    env.clock.advance(Duration::from_secs(2));
    let other = issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    revocations.revoke_all(ISS, "alice").await.unwrap();
    let user = storeid::derive("jwt-user", &[ISS, "alice"]);
    env.attack(&user).await;
    assert_eq!(
        revocations.authenticate(&other.token).await,
        Err(JwtError::RevokedForUser)
    );
}

/// An SSO ticket sent as the session cookie is not a session, and still redeems, once. The
/// login record behind it is not a session either.
async fn a_ticket_is_not_a_session(env: Env) {
    let authority = authority(&env);
    let sid = authority.begin_login("alice").await.unwrap();
    let ticket = authority.issue_ticket(&sid, "b.test", "st").await.unwrap();
    let ticket_id = SessionId::parse(&ticket.value).expect("tickets look like session ids");
    env.attack(&ticket_id).await;
    let redeemed = authority.redeem("b.test", &ticket.value).await.unwrap();
    assert_eq!(
        (redeemed.sub.as_str(), redeemed.sid.as_str()),
        ("alice", sid.as_str())
    );
    assert_eq!(
        authority.redeem("b.test", &ticket.value).await,
        Err(TicketError::Replayed)
    );

    env.attack(&storeid::derive("sso-login", &[&sid])).await;
    assert_eq!(
        authority.login_user(&sid).await.unwrap().as_deref(),
        Some("alice")
    );
}

/// An app's per-login index sent as the session cookie is not a session: a logout through it
/// leaves the index, so the central logout still finds and ends the linked session.
async fn an_app_index_is_not_a_session(env: Env) {
    let apps = AppSessions::new(env.store.clone(), Duration::from_secs(3600));
    let (_, _, cookie) = env.send("POST", "/login", "none").await;
    let session = SessionId::parse(&cookie.expect("a session")).unwrap();
    assert!(
        apps.link("sid-1", &session, env.clock.now_ms())
            .await
            .unwrap()
    );
    env.attack(&storeid::derive("sso-app-sessions", &["sid-1"]))
        .await;
    assert_eq!(apps.end("sid-1", env.clock.now_ms()).await.unwrap(), 1);
    let (_, body, _) = env.send("GET", "/whoami", session.as_str()).await;
    assert_eq!(body, "anonymous", "the linked session was ended");
    assert!(apps.is_ended("sid-1").await.unwrap());
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Env::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Env::redis().await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    logout_cannot_delete_a_revocation,
    a_ticket_is_not_a_session,
    an_app_index_is_not_a_session,
);
