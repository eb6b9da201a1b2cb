//! The tower layer for sealed-cookie sessions and the [`SealedSession`] handle handlers get.
//!
//! Per request: the layer opens the cookie (if any) before the handler runs. A cookie that
//! does not open (tampered, sealed with a removed key, malformed) or that has expired gives
//! the handler a new, empty session, and the layer tells the browser to drop the bad cookie.
//! Rejections are logged with a salted hash of the cookie value, never the value itself.
//! After the handler, a changed session is sealed again with a fresh nonce; an unchanged one
//! is sealed again only when its idle deadline needs sliding (at most once per
//! `refresh_interval`) or when it was sealed with a key that is no longer current.
//!
//! Handlers learn about the size limit when they write: [`SealedSession::insert`] refuses a
//! value that would make the cookie too large, and the session is left as it was.
//!
//! There is no fixation to defend against with an id: every write produces a new value
//! nobody else has seen, so a cookie planted before login never carries the login.

#![deny(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response as AxumResponse};
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sessiond_session::{CookieConfig, SameSite};
use tower_layer::Layer;
use tower_service::Service;

use super::{SealError, SealedConfig, Sealer};

/// The attributes part of a `Set-Cookie` line (everything after `name=value`).
pub(super) fn attributes(cookie: &CookieConfig, max_age: Option<Duration>) -> String {
    let mut s = format!("; Path={}", cookie.path);
    if let Some(domain) = &cookie.domain {
        s.push_str("; Domain=");
        s.push_str(domain);
    }
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if cookie.secure {
        s.push_str("; Secure");
    }
    if cookie.http_only {
        s.push_str("; HttpOnly");
    }
    s.push_str(match cookie.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    s
}

struct Shared {
    config: SealedConfig,
    sealer: Sealer,
    name: String,
}

/// Adds sealed-cookie sessions to a tower service. Cheap to clone.
#[derive(Clone)]
pub struct SealedLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SealedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl SealedLayer {
    /// A layer with this configuration. Refuses `SameSite=None` without `Secure`, which
    /// browsers drop, and a `__Host-` cookie with a Domain.
    pub fn new(config: SealedConfig) -> Result<Self, String> {
        if config.cookie.same_site == SameSite::None && !config.cookie.secure {
            return Err("SameSite=None requires Secure".into());
        }
        if config.cookie.host_prefix
            && (config.cookie.domain.is_some()
                || !config.cookie.secure
                || config.cookie.path != "/")
        {
            return Err("a __Host- cookie needs Secure, Path=/ and no Domain".into());
        }
        let sealer = config.sealer();
        let name = config.cookie.full_name();
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                sealer,
                name,
            }),
        })
    }

    /// The sealer, e.g. to open a cookie outside a request.
    pub fn sealer(&self) -> &Sealer {
        &self.shared.sealer
    }
}

impl<S> Layer<S> for SealedLayer {
    type Service = SealedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SealedService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`SealedLayer`].
#[derive(Clone)]
pub struct SealedService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for SealedService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedService")
    }
}

/// What the request brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrived {
    /// No cookie.
    Nothing,
    /// A valid cookie, sealed at `expires_at - idle_timeout` with key `key_id`.
    Valid { expires_at: u64, key_id: u8 },
    /// A cookie that was rejected; the browser should drop it.
    Rejected,
}

struct State {
    data: Map<String, Value>,
    created_at: Option<u64>,
    changed: bool,
    ended: bool,
}

/// The session of one request. Cheap to clone; clones share the data. Every method is
/// synchronous: the data is already in memory and nothing is written until the response.
#[derive(Clone)]
pub struct SealedSession {
    state: Arc<Mutex<State>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SealedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Session data may be personal; keep it out of debug output.
        f.write_str("SealedSession(<data redacted>)")
    }
}

impl SealedSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value at `key`, if present and of type `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let state = self.lock();
        state
            .data
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Stores `value` at `key`. Fails with [`SealError::TooLarge`] (leaving the session as it
    /// was) if the sealed cookie would not fit.
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SealError> {
        let value = serde_json::to_value(value).map_err(|e| SealError::Data(e.to_string()))?;
        let mut state = self.lock();
        if state.data.get(key) == Some(&value) && !state.ended {
            return Ok(());
        }
        let mut next = state.data.clone();
        next.insert(key.to_owned(), value);
        self.shared.sealer.check_size(&next)?;
        state.data = next;
        state.changed = true;
        state.ended = false;
        Ok(())
    }

    /// Removes `key`, returning its old value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut state = self.lock();
        let old = state.data.remove(key);
        state.changed |= old.is_some();
        old
    }

    /// Ends the session: the data is dropped and the browser is told to delete the cookie.
    /// The old cookie value stays cryptographically valid until its sealed expiry (there is
    /// no server state to revoke); keep timeouts short, or use server-side sessions, if that
    /// matters.
    pub fn end(&self) {
        let mut state = self.lock();
        state.data.clear();
        state.created_at = None;
        state.changed = true;
        state.ended = true;
    }

    /// Whether the session holds no data.
    pub fn is_empty(&self) -> bool {
        self.lock().data.is_empty()
    }
}

/// The handler's extractor failed because [`SealedLayer`] is not installed.
#[derive(Debug, Clone, Copy)]
pub struct MissingSealedLayer;

impl IntoResponse for MissingSealedLayer {
    fn into_response(self) -> AxumResponse {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "sealed session layer is not installed",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SealedSession {
    type Rejection = MissingSealedLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SealedSession>()
            .cloned()
            .ok_or(MissingSealedLayer)
    }
}

/// Every value of the cookie `name` in the request (a host-only and a Domain cookie of the
/// same name can both arrive).
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim())
        })
}

impl Shared {
    /// Opens the request's cookie. The first value that opens wins; rejections are logged.
    fn arrive(&self, headers: &HeaderMap, now: u64) -> (State, Arrived) {
        let mut arrived = Arrived::Nothing;
        for raw in cookie_values(headers, &self.name) {
            match self.sealer.open(raw, now) {
                Ok(open) => {
                    let state = State {
                        data: open.data,
                        created_at: Some(open.created_at),
                        changed: false,
                        ended: false,
                    };
                    let arrived = Arrived::Valid {
                        expires_at: open.expires_at,
                        key_id: open.key_id,
                    };
                    return (state, arrived);
                }
                Err(err) => {
                    arrived = Arrived::Rejected;
                    let cookie = self.config.log_hasher.hash_str(raw);
                    match err {
                        // A forged or edited cookie: worth an operator's attention.
                        SealError::Tampered | SealError::Malformed => tracing::warn!(
                            %cookie, reason = %err,
                            "sealed cookie rejected; starting an empty session"
                        ),
                        // Expected after a key is retired; not an attack by itself.
                        SealError::UnknownKey(_) => tracing::info!(
                            %cookie, reason = %err,
                            "sealed cookie rejected; starting an empty session"
                        ),
                        _ => tracing::debug!(%cookie, reason = %err, "sealed cookie expired"),
                    }
                }
            }
        }
        let state = State {
            data: Map::new(),
            created_at: None,
            changed: false,
            ended: false,
        };
        (state, arrived)
    }

    /// The `Set-Cookie` value the response needs, if any.
    fn depart(
        &self,
        state: &State,
        arrived: Arrived,
        now: u64,
    ) -> Result<Option<String>, SealError> {
        let cfg = &self.config;
        let had_cookie = arrived != Arrived::Nothing;
        if state.ended || (state.changed && state.data.is_empty()) {
            return Ok(had_cookie.then(|| self.removal()));
        }
        let due = match arrived {
            Arrived::Valid { expires_at, key_id } => {
                let sealed_at = expires_at.saturating_sub(cfg.idle_timeout.as_millis() as u64);
                now.saturating_sub(sealed_at) >= cfg.refresh_interval.as_millis() as u64
                    || !self.sealer.is_current(key_id)
            }
            _ => false,
        };
        if !(state.changed || due) {
            return Ok((arrived == Arrived::Rejected).then(|| self.removal()));
        }
        if state.data.is_empty() {
            return Ok(None);
        }
        let created_at = state.created_at.unwrap_or(now);
        let mut expires_at = now.saturating_add(cfg.idle_timeout.as_millis() as u64);
        if let Some(abs) = cfg.absolute_timeout {
            expires_at = expires_at.min(created_at.saturating_add(abs.as_millis() as u64));
        }
        let value = self.sealer.seal(&state.data, created_at, expires_at)?;
        Ok(Some(format!(
            "{}={}{}",
            self.name,
            value,
            attributes(&cfg.cookie, cfg.cookie.max_age)
        )))
    }

    fn removal(&self) -> String {
        format!(
            "{}={}; Max-Age=0",
            self.name,
            attributes(&self.config.cookie, None)
        )
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SealedService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = self.shared.clone();
        let now = shared.config.clock.now_ms();
        let (state, arrived) = shared.arrive(req.headers(), now);
        let session = SealedSession {
            state: Arc::new(Mutex::new(state)),
            shared: shared.clone(),
        };
        req.extensions_mut().insert(session.clone());
        // Call the clone that was driven to readiness; keep a fresh one for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            let now = shared.config.clock.now_ms();
            let outcome = {
                let state = session.lock();
                shared.depart(&state, arrived, now)
            };
            match outcome {
                Ok(Some(cookie)) => {
                    let Ok(value) = HeaderValue::from_str(&cookie) else {
                        // Only a misconfigured Domain or Path can get here.
                        tracing::error!("sealed cookie attributes are not a valid header value");
                        return Ok(failure());
                    };
                    res.headers_mut().append(SET_COOKIE, value);
                    res.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    Ok(res)
                }
                Ok(None) => Ok(res),
                Err(err) => {
                    // insert() already refuses oversized data, so this is a data change made
                    // in another way (not possible through the handle today) or a bug;
                    // answering success for data that was not kept would be silent loss.
                    tracing::error!(error = %err, "sealed session not saved; response replaced");
                    Ok(failure())
                }
            }
        })
    }
}

fn failure<B: Default>() -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}
