//! The three apps of the browser test: `login.test` (a [`LoginAuthority`] with a login
//! form and its own sessiond-session cookie) and two sites, `a.test` and `b.test`, which
//! have no login form of their own and get their users through tickets.
//!
//! Everything a browser sees is a top-level page or redirect on the site it belongs to; no
//! page embeds another site. Server-to-server calls (redeem, logout, back-channel logout)
//! go to the apps' real loopback addresses, not through the browser's host mapping.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Json, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use sessiond_session::{
    Clock, MemoryStore, Session, SessionConfig, SessionLayer, SessionStore, SystemClock,
};
use sessiond_tokens::{
    AppSessions, LoginAuthority, RedeemRequest, RedeemResponse, SiteClient, TicketError,
};
use tokio::net::TcpListener;

use crate::client::{post_json, send};
use http::Method;

/// Counters the test asserts on.
#[derive(Default)]
pub struct Counters {
    /// Login forms shown by login.test.
    pub forms_shown: AtomicUsize,
    /// Tickets redeemed successfully.
    pub redeemed: AtomicUsize,
    /// Back-channel logout calls that ended something on a site.
    pub backchannel_logouts: AtomicUsize,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

/// Session settings shared by the apps: plain HTTP in the test, so no `Secure`; `Lax`, which
/// is all a top-level redirect flow needs.
fn session_config(cookie: &str) -> SessionConfig {
    SessionConfig::default()
        .with_cookie_name(cookie)
        .with_secure(false)
        // The SSO index links session ids; keep them stable (see AppSessions' docs).
        .with_renewal_timeout(None)
}

// ---------------------------------------------------------------------------------------
// login.test

#[derive(Clone)]
struct LoginApp {
    authority: LoginAuthority,
    users: Arc<HashMap<String, String>>,
    counters: Arc<Counters>,
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    site: String,
    state: String,
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    site: String,
    state: String,
}

#[derive(Deserialize)]
struct SiteLogout {
    site: String,
    sid: String,
}

/// Serves login.test on `listener`.
pub async fn serve_login(
    listener: TcpListener,
    authority: LoginAuthority,
    counters: Arc<Counters>,
) {
    let app = LoginApp {
        authority,
        users: Arc::new(HashMap::from([("alice".into(), "wonderland".into())])),
        counters,
    };
    let layer = SessionLayer::new(MemoryStore::new(), session_config("login")).unwrap();
    let router = Router::new()
        .route("/authorize", get(authorize))
        .route("/login", post(login))
        .route("/sso/redeem", post(redeem))
        .route("/sso/logout", post(site_logout))
        .layer(layer)
        .with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
}

async fn authorize(
    State(app): State<LoginApp>,
    session: Session,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, Response> {
    if !app.authority.has_site(&q.site) {
        return Err((StatusCode::BAD_REQUEST, "unknown site").into_response());
    }
    // Already logged in here (login.test's cookie is first-party: this is a top-level
    // navigation): no form, straight back with a ticket.
    if let Some(sid) = session.get::<String>("sid").await.map_err(internal)? {
        match app.authority.issue_ticket(&sid, &q.site, &q.state).await {
            Ok(t) => return Ok(Redirect::to(&t.redirect_url).into_response()),
            // Logged out centrally since: forget it and ask again.
            Err(TicketError::LoginEnded) => session.delete().await.map_err(internal)?,
            Err(e) => return Err(internal(e)),
        }
    }
    app.counters.forms_shown.fetch_add(1, Ordering::SeqCst);
    Ok(Html(format!(
        "<!doctype html><title>login.test</title><h1>Log in to continue to {site}</h1>\
         <form method=post action=/login>\
         <input type=hidden name=site value=\"{site}\"><input type=hidden name=state value=\"{state}\">\
         <input id=user name=user autocomplete=off> <input id=password name=password type=password>\
         <button id=submit type=submit>Log in</button></form>",
        site = escape(&q.site),
        state = escape(&q.state),
    ))
    .into_response())
}

async fn login(
    State(app): State<LoginApp>,
    session: Session,
    Form(f): Form<LoginForm>,
) -> Result<Response, Response> {
    if app.users.get(&f.user) != Some(&f.password) {
        return Err((StatusCode::UNAUTHORIZED, "wrong user name or password").into_response());
    }
    session.cycle_id().await.map_err(internal)?;
    let sid = app.authority.begin_login(&f.user).await.map_err(internal)?;
    session.insert("sid", &sid).await.map_err(internal)?;
    let ticket = app
        .authority
        .issue_ticket(&sid, &f.site, &f.state)
        .await
        .map_err(internal)?;
    Ok(Redirect::to(&ticket.redirect_url).into_response())
}

async fn redeem(
    State(app): State<LoginApp>,
    headers: HeaderMap,
    Json(req): Json<RedeemRequest>,
) -> Response {
    let secret = bearer(&headers).unwrap_or_default();
    if app
        .authority
        .authenticate_site(&req.site, secret.as_bytes())
        .is_none()
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unknown_site"})),
        )
            .into_response();
    }
    match app.authority.redeem(&req.site, &req.ticket).await {
        Ok(r) => {
            app.counters.redeemed.fetch_add(1, Ordering::SeqCst);
            Json(r).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e.code()}))).into_response(),
    }
}

async fn site_logout(
    State(app): State<LoginApp>,
    headers: HeaderMap,
    Json(req): Json<SiteLogout>,
) -> Response {
    let secret = bearer(&headers).unwrap_or_default();
    if app
        .authority
        .authenticate_site(&req.site, secret.as_bytes())
        .is_none()
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let calls = match app.authority.logout_from_site(&req.site, &req.sid).await {
        Ok(calls) => calls,
        Err(e) => return (StatusCode::FORBIDDEN, e.to_string()).into_response(),
    };
    // Fan out to every site of the login, server to server. Failures are reported so the
    // caller (or a retry queue) can try again.
    let mut failed = Vec::new();
    for call in calls {
        let body = format!("logout_token={}", call.token).into_bytes();
        let ok = send(
            Method::POST,
            &call.url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
        .is_ok_and(|r| r.status.is_success());
        if !ok {
            failed.push(call.site);
        }
    }
    Json(json!({ "failed": failed })).into_response()
}

// ---------------------------------------------------------------------------------------
// a.test and b.test

#[derive(Clone)]
struct SiteApp {
    name: String,
    client: SiteClient,
    sessions: AppSessions,
    login_backchannel: String,
    secret: String,
    counters: Arc<Counters>,
}

#[derive(Deserialize)]
struct CallbackQuery {
    ticket: String,
    state: String,
}

#[derive(Deserialize)]
struct LogoutToken {
    logout_token: String,
}

/// Serves a site on `listener`; `login_backchannel` is login.test's real address.
pub async fn serve_site(
    listener: TcpListener,
    client: SiteClient,
    login_backchannel: String,
    secret: String,
    counters: Arc<Counters>,
) {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let layer = SessionLayer::from_arc(store.clone(), session_config("id")).unwrap();
    let app = SiteApp {
        name: client.site().to_owned(),
        client,
        sessions: AppSessions::new(store, Duration::from_secs(13 * 3600)),
        login_backchannel,
        secret,
        counters,
    };
    let router = Router::new()
        .route("/", get(home))
        .route("/sso/callback", get(callback))
        .route("/logout", post(logout))
        .route("/sso/backchannel-logout", post(backchannel_logout))
        .layer(layer)
        .with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
}

async fn home(State(app): State<SiteApp>, session: Session) -> Result<Response, Response> {
    if let Some(user) = session.get::<String>("user").await.map_err(internal)? {
        return Ok(Html(format!(
            "<!doctype html><title>{site}</title>\
             <p id=status>{site}: logged in as {user}</p>\
             <form method=post action=/logout><button id=logout type=submit>Log out</button></form>",
            site = escape(&app.name),
            user = escape(&user),
        ))
        .into_response());
    }
    // No session: a top-level redirect to the login domain, with a state bound to this
    // browser by a Lax cookie (sent back on the top-level return navigation).
    let state = SiteClient::new_state();
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut()
        .insert(LOCATION, app.client.authorize_url(&state).parse().unwrap());
    res.headers_mut().insert(
        SET_COOKIE,
        format!("sso_state={state}; Path=/sso/callback; Max-Age=300; HttpOnly; SameSite=Lax")
            .parse()
            .unwrap(),
    );
    Ok(res)
}

async fn callback(
    State(app): State<SiteApp>,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, Response> {
    let expected = cookie(&headers, "sso_state").unwrap_or_default();
    if !SiteClient::state_matches(expected, &q.state) {
        return Err((StatusCode::BAD_REQUEST, "state does not match").into_response());
    }
    // The back-channel: this server asks login.test, the browser is not involved.
    let reply = post_json(
        &format!("{}/sso/redeem", app.login_backchannel),
        Some(&app.secret),
        &json!(app.client.redeem_request(&q.ticket)),
    )
    .await
    .map_err(internal)?;
    if !reply.status.is_success() {
        let why = String::from_utf8_lossy(&reply.body).into_owned();
        return Err((StatusCode::UNAUTHORIZED, format!("ticket refused: {why}")).into_response());
    }
    let granted: RedeemResponse = serde_json::from_slice(&reply.body).map_err(internal)?;
    // A first-party session of our own, under a fresh id.
    session.cycle_id().await.map_err(internal)?;
    session
        .insert("user", &granted.sub)
        .await
        .map_err(internal)?;
    session
        .insert("sid", &granted.sid)
        .await
        .map_err(internal)?;
    session.save().await.map_err(|e| e.into_response())?;
    let id = session
        .id()
        .await
        .map_err(internal)?
        .ok_or_else(|| internal("no session id after save"))?;
    let now = SystemClock.now_ms();
    if !app
        .sessions
        .link(&granted.sid, &id, now)
        .await
        .map_err(internal)?
    {
        // The login ended while we were redeeming: do not keep a session for it.
        session.delete().await.map_err(internal)?;
        return Err((StatusCode::UNAUTHORIZED, "login ended").into_response());
    }
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().insert(
        SET_COOKIE,
        "sso_state=; Path=/sso/callback; Max-Age=0; HttpOnly; SameSite=Lax"
            .parse()
            .unwrap(),
    );
    Ok(res)
}

async fn logout(State(app): State<SiteApp>, session: Session) -> Result<Response, Response> {
    let sid = session.get::<String>("sid").await.map_err(internal)?;
    session.delete().await.map_err(internal)?;
    if let Some(sid) = sid {
        // Central logout: login.test ends the login and calls every site back.
        let reply = post_json(
            &format!("{}/sso/logout", app.login_backchannel),
            Some(&app.secret),
            &json!({ "site": app.name, "sid": sid }),
        )
        .await
        .map_err(internal)?;
        if !reply.status.is_success() {
            return Err(internal(format!("central logout failed: {}", reply.status)));
        }
    }
    Ok(Html(format!(
        "<!doctype html><p id=status>{}: logged out</p><a href=/>home</a>",
        escape(&app.name)
    ))
    .into_response())
}

async fn backchannel_logout(State(app): State<SiteApp>, Form(f): Form<LogoutToken>) -> Response {
    let sid = match app.client.verify_logout_token(&f.logout_token) {
        Ok(sid) => sid,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match app.sessions.end(&sid, SystemClock.now_ms()).await {
        Ok(_) => {
            app.counters
                .backchannel_logouts
                .fetch_add(1, Ordering::SeqCst);
            StatusCode::OK.into_response()
        }
        Err(e) => internal(e),
    }
}
