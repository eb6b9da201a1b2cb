//! The routes: health, metrics and the JSON admin API under `/api/v1`, shaped after what
//! Ory Kratos and Keycloak users script against, over the same `Sessions` operations as
//! RESP's `SESSION.*` commands.
//!
//! [`ROUTES`] is the one list of routes: [`router`] builds the router from it, and a test
//! checks it against `docs/openapi.json` both ways.
//!
//! A session key is one percent-encoded path segment (`memc.sess.key.abc`,
//! `sess%3Aabc` for `sess:abc`), decoded as UTF-8; `?db=N` (default 0) picks the database.
//! Times are Unix milliseconds. A revocation is acknowledged (204, or the count) only once
//! the journal has it, as a RESP reply to a write is.
//!
//! Bounds: a user's listing is paged (`limit`, at most `LIST_MAX`; `cursor`), and with no
//! password configured the admin routes answer only loopback `Host` names
//! (`super::loopback_host`, against DNS rebinding).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{error, key_hash};
use crate::exec::{JOURNAL_FAILED, Shared};
use crate::sessions::{
    BadCursor, Cursor, LIST_DEFAULT, LIST_MAX, SessionInfo, Sessions, UnknownFamily,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone who can reach the listener.
    Open,
    /// Anyone, unless `--http-open-metrics no`: then an admin.
    Metrics,
    /// A user with the admin role (anyone when no password is configured).
    Admin,
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Live,
    Ready,
    Metrics,
    Count,
    Families,
    UserSessions,
    RevokeUser,
    Session,
    RevokeSession,
}

/// One route: method, path (axum's and OpenAPI's `{param}` syntax), handler, access.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
}

const fn route(
    method: &'static str,
    path: &'static str,
    endpoint: Endpoint,
    access: Access,
) -> Route {
    Route {
        method,
        path,
        endpoint,
        access,
    }
}

/// Every route the listener serves. `/api/v1/sessions/count` is matched before
/// `/api/v1/sessions/{key}`, so a session whose whole key is `count` is not reachable by
/// key (no family's keys look like that).
pub(crate) const ROUTES: &[Route] = &[
    route("GET", "/health/live", Endpoint::Live, Access::Open),
    route("GET", "/health/ready", Endpoint::Ready, Access::Open),
    route("GET", "/metrics", Endpoint::Metrics, Access::Metrics),
    route(
        "GET",
        "/api/v1/sessions/count",
        Endpoint::Count,
        Access::Admin,
    ),
    route("GET", "/api/v1/families", Endpoint::Families, Access::Admin),
    route(
        "GET",
        "/api/v1/users/{user}/sessions",
        Endpoint::UserSessions,
        Access::Admin,
    ),
    route(
        "DELETE",
        "/api/v1/users/{user}/sessions",
        Endpoint::RevokeUser,
        Access::Admin,
    ),
    route(
        "GET",
        "/api/v1/sessions/{key}",
        Endpoint::Session,
        Access::Admin,
    ),
    route(
        "DELETE",
        "/api/v1/sessions/{key}",
        Endpoint::RevokeSession,
        Access::Admin,
    ),
];

type AppState = Arc<Shared>;

/// The router over [`ROUTES`], each behind its access check, with JSON fallbacks.
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let mut router = axum::Router::new();
    for route in ROUTES {
        let filter = match route.method {
            "GET" => MethodFilter::GET,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("no route uses {other}"),
        };
        let handler: MethodRouter<AppState> = match route.endpoint {
            Endpoint::Live => on(filter, live),
            Endpoint::Ready => on(filter, ready),
            Endpoint::Metrics => on(filter, metrics),
            Endpoint::Count => on(filter, count),
            Endpoint::Families => on(filter, families),
            Endpoint::UserSessions => on(filter, user_sessions),
            Endpoint::RevokeUser => on(filter, revoke_user),
            Endpoint::Session => on(filter, session),
            Endpoint::RevokeSession => on(filter, revoke_session),
        };
        let handler = match route.access {
            Access::Admin => handler.layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                loopback_when_open,
            )),
            Access::Open | Access::Metrics => handler,
        };
        let guarded = handler.layer(axum::middleware::from_fn_with_state(
            (shared.clone(), route.access),
            authorize,
        ));
        router = router.route(route.path, guarded);
    }
    // The admin page's HTML routes, outside `ROUTES` (not part of the JSON API).
    router = router.merge(super::admin::routes(shared.clone()));
    router
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        })
        .with_state(shared)
}

// Access.

/// Lets the request through if `access` allows it: 401 without (valid) credentials, 403
/// for a user without the admin role.
pub(super) async fn authorize(
    State((shared, access)): State<(Arc<Shared>, Access)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let needed = match access {
        Access::Open => false,
        Access::Metrics => !shared.config.http_open_metrics,
        Access::Admin => true,
    };
    if needed && shared.users.required() {
        match credentials(&shared, request.headers()) {
            None => {
                let mut response = error(
                    StatusCode::UNAUTHORIZED,
                    "log in as an admin user (HTTP Basic)",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"sessiond\", charset=\"UTF-8\""),
                );
                return response;
            }
            Some(identity) if !identity.is_admin() => {
                return error(
                    StatusCode::FORBIDDEN,
                    format!("user {} does not have the admin role", identity.name),
                );
            }
            Some(_) => {}
        }
    }
    next.run(request).await
}

/// With no password configured, an admin route answers only a loopback `Host` (403
/// otherwise), against DNS rebinding (`super::loopback_host`). Health and metrics stay
/// open: they change nothing and show no session.
async fn loopback_when_open(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !shared.users.required() && !super::loopback_host(request.headers()) {
        return error(
            StatusCode::FORBIDDEN,
            "with no password configured the API answers only for localhost, 127.0.0.1 or [::1]",
        );
    }
    next.run(request).await
}

/// The user the `Authorization` header logs in as: `Basic` with a user's name and password,
/// or `Bearer` with the `default` user's password.
pub(super) fn credentials(
    shared: &Shared,
    headers: &axum::http::HeaderMap,
) -> Option<crate::exec::auth::Identity> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = (&value[..space], value[space + 1..].trim_ascii());
    if scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        shared.users.check(&decoded[..colon], &decoded[colon + 1..])
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        shared.users.check(b"default", rest)
    } else {
        None
    }
}

// Health and metrics.

async fn live() -> Response {
    Json(json!({ "status": "live" })).into_response()
}

/// Ready once the listener runs (recovery finished before it was bound) and while the
/// journal takes writes.
async fn ready(State(shared): State<AppState>) -> Response {
    if shared.writes_refused() {
        let body = json!({ "status": "journal failed", "error": JOURNAL_FAILED });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({ "status": "ready" })).into_response()
}

async fn metrics(State(shared): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&shared),
    )
        .into_response()
}

// The API.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyQuery {
    family: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    family: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbQuery {
    db: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeUserQuery {
    family: Option<String>,
    except: Option<String>,
    db: Option<u8>,
}

type ApiResult = Result<Response, ApiError>;

/// An API error: its status and `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn fail(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn layer(shared: &Shared) -> Result<&Sessions, ApiError> {
    shared.sessions.as_deref().ok_or_else(|| {
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session layer is off (start sessiond with --sessions on)",
        )
    })
}

fn family(sessions: &Sessions, name: Option<&str>) -> Result<Option<u16>, ApiError> {
    sessions
        .family_index(name.map(str::as_bytes))
        .map_err(|UnknownFamily| {
            fail(
                StatusCode::BAD_REQUEST,
                format!(
                    "no session family {:?} (GET /api/v1/families lists them)",
                    name.unwrap_or_default()
                ),
            )
        })
}

fn database(db: Option<u8>) -> Result<u8, ApiError> {
    let db = db.unwrap_or(0);
    if usize::from(db) >= crate::DATABASES {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("db must be 0 to {}", crate::DATABASES - 1),
        ));
    }
    Ok(db)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, e.body_text()))
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(p)| p)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, e.body_text()))
}

/// A session as the API shows it (Keycloak's `lastAccess` is `last_seen`).
fn session_json(info: &SessionInfo) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), String::from_utf8_lossy(&info.id).into());
    out.insert("key".into(), String::from_utf8_lossy(&info.key).into());
    out.insert("db".into(), info.db.into());
    out.insert("family".into(), info.family.clone().into());
    out.insert("user".into(), info.user.clone().into());
    out.insert("created_at".into(), info.created_at.into());
    out.insert("written_at".into(), info.written_at.into());
    out.insert("last_seen".into(), info.seen_at.into());
    out.insert("expires_at".into(), info.expires_at.into());
    out
}

/// Waits for the journal to take what was just revoked; `Err` (503) if it failed first.
async fn durable(shared: &Shared) -> Result<(), ApiError> {
    if shared.acknowledge_writes().await {
        Ok(())
    } else {
        Err(fail(StatusCode::SERVICE_UNAVAILABLE, JOURNAL_FAILED))
    }
}

fn refuse_if_poisoned(shared: &Shared) -> Result<(), ApiError> {
    if shared.writes_refused() {
        return Err(fail(StatusCode::SERVICE_UNAVAILABLE, JOURNAL_FAILED));
    }
    Ok(())
}

/// `GET /api/v1/sessions/count[?family=f]`.
async fn count(
    State(shared): State<AppState>,
    q: Result<Query<FamilyQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let sessions = layer(&shared)?;
    let counts = sessions.counts(family(sessions, q.family.as_deref())?);
    Ok(Json(json!({
        "sessions": counts.sessions,
        "users": counts.users,
        "count": counts.sessions,
    }))
    .into_response())
}

/// `GET /api/v1/families`.
async fn families(State(shared): State<AppState>) -> ApiResult {
    let sessions = layer(&shared)?;
    let out: Vec<Value> = sessions
        .families()
        .iter()
        .enumerate()
        .map(|(i, family)| {
            let counts = sessions.counts(Some(i as u16));
            json!({
                "name": family.name,
                "prefix": String::from_utf8_lossy(&family.prefix),
                "format": family.format.to_string(),
                "user": family.user.as_ref().map(|path| path.to_string()),
                "sessions": counts.sessions,
                "users": counts.users,
            })
        })
        .collect();
    Ok(Json(out).into_response())
}

/// `GET /api/v1/users/{user}/sessions[?family=f&limit=n&cursor=c]`: oldest first, at most
/// `limit` ([`LIST_DEFAULT`], at most [`LIST_MAX`]). When more follow, the reply carries
/// the next page's cursor in `X-Next-Cursor` and its address in `Link: <…>; rel="next"`
/// (RFC 8288, as Ory Kratos pages sessions); the body stays a bare array.
async fn user_sessions(
    State(shared): State<AppState>,
    user: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let user = path(user)?;
    let q = query(q)?;
    let sessions = layer(&shared)?;
    let family_index = family(sessions, q.family.as_deref())?;
    let limit = match q.limit {
        None => LIST_DEFAULT,
        Some(n @ 1..=LIST_MAX) => n,
        Some(_) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                format!("limit must be 1 to {LIST_MAX}"),
            ));
        }
    };
    let after = match q.cursor.as_deref().map(str::parse::<Cursor>) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(BadCursor)) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "cursor is not one a listing gave (X-Next-Cursor)",
            ));
        }
    };
    let page = sessions.list(&user, family_index, after.as_ref(), limit);
    let out: Vec<Value> = page
        .sessions
        .iter()
        .map(|info| Value::Object(session_json(info)))
        .collect();
    let mut response = Json(out).into_response();
    if let Some(next) = page.next {
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut link = format!(
            "</api/v1/users/{}/sessions?limit={limit}&cursor={next}",
            encode(&user)
        );
        if let Some(family) = &q.family {
            link.push_str("&family=");
            link.push_str(&encode(family));
        }
        link.push_str(">; rel=\"next\"");
        let headers = response.headers_mut();
        // Both are ASCII: digits, hex, '-' and percent-encoding.
        for (name, value) in [("x-next-cursor", next.to_string()), ("link", link)] {
            if let Ok(value) = header::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// `DELETE /api/v1/users/{user}/sessions[?family=f&except=key&db=n]`: `{"count": n}`.
async fn revoke_user(
    State(shared): State<AppState>,
    user: Result<Path<String>, PathRejection>,
    q: Result<Query<RevokeUserQuery>, QueryRejection>,
) -> ApiResult {
    let user = path(user)?;
    let q = query(q)?;
    let sessions = layer(&shared)?;
    let family = family(sessions, q.family.as_deref())?;
    let db = database(q.db)?;
    refuse_if_poisoned(&shared)?;
    let revoked = {
        let _gate = shared.gate.read().await;
        sessions.revoke_user(
            &shared.databases,
            &user,
            family,
            q.except.as_deref().map(|key| (db, key.as_bytes())),
            crate::clock::now_ms(),
        )
    };
    if revoked > 0 {
        durable(&shared).await?;
        tracing::info!(
            revoked,
            except = q.except.as_deref().map(|k| key_hash(k.as_bytes())),
            "user's sessions revoked over HTTP"
        );
    }
    Ok(Json(json!({ "count": revoked })).into_response())
}

/// `GET /api/v1/sessions/{key}[?db=n]`: the session with its decoded `data`, or `error`
/// when it does not decode.
async fn session(
    State(shared): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    q: Result<Query<DbQuery>, QueryRejection>,
) -> ApiResult {
    let key = path(key)?;
    let db = database(query(q)?.db)?;
    let sessions = layer(&shared)?;
    let shown = {
        let _gate = shared.gate.read().await;
        sessions.show(
            &shared.databases,
            db,
            key.as_bytes(),
            crate::clock::now_ms(),
        )
    };
    let Some((info, decoded)) = shown else {
        return Err(fail(StatusCode::NOT_FOUND, "no such session"));
    };
    let mut out = session_json(&info);
    match decoded {
        Ok(data) => out.insert("data".into(), data),
        Err(why) => out.insert("error".into(), why.into()),
    };
    Ok(Json(Value::Object(out)).into_response())
}

/// `DELETE /api/v1/sessions/{key}[?db=n]`: 204, or 404 if there is no such session.
async fn revoke_session(
    State(shared): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    q: Result<Query<DbQuery>, QueryRejection>,
) -> ApiResult {
    let key = path(key)?;
    let db = database(query(q)?.db)?;
    let sessions = layer(&shared)?;
    refuse_if_poisoned(&shared)?;
    // Only indexed sessions: this is not a general DEL.
    if sessions.get(db, key.as_bytes()).is_none() {
        return Err(fail(StatusCode::NOT_FOUND, "no such session"));
    }
    let revoked = {
        let _gate = shared.gate.read().await;
        sessions.revoke(
            &shared.databases,
            db,
            key.as_bytes(),
            crate::clock::now_ms(),
        )
    };
    if !revoked {
        return Err(fail(StatusCode::NOT_FOUND, "no such session"));
    }
    durable(&shared).await?;
    tracing::info!(
        key = key_hash(key.as_bytes()),
        db,
        "session revoked over HTTP"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
