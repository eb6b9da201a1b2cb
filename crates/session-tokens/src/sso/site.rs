//! The app's side of the cross-domain login: building the redirect to the login domain,
//! checking `state`, the redemption request, verifying back-channel logout tokens, and
//! [`AppSessions`], which remembers which local sessions belong to which login so a logout
//! token can end them all.

#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde_json::{Value, json};
use sessiond_session::{CreateOutcome, Record, SessionId, SessionStore, StoreError, UpdateOutcome};
use subtle::ConstantTimeEq as _;

use super::{LOGOUT_EVENT, MAX_RETRIES, RedeemRequest, TYP_LOGOUT, pct};
use crate::jwt::{JwtError, JwtValidator, VerifyKey};
use crate::storeid;

/// An app's client of the login domain. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SiteClient {
    site: String,
    authorize_url: String,
    logout_validator: JwtValidator,
}

impl SiteClient {
    /// The client for `site`, sending browsers to `authorize_url` (the login domain's
    /// authorize endpoint, as the browser sees it) and accepting logout tokens from `iss`
    /// signed with `logout_key`.
    pub fn new(
        site: &str,
        authorize_url: &str,
        iss: &str,
        logout_key: VerifyKey,
    ) -> Result<Self, JwtError> {
        let alg = logout_key.algorithm();
        let logout_validator = JwtValidator::new(iss, site)
            .with_typ(TYP_LOGOUT)
            .with_algorithms(&[alg])
            .with_key(logout_key)?;
        Ok(Self {
            site: site.to_owned(),
            authorize_url: authorize_url.to_owned(),
            logout_validator,
        })
    }

    /// Replaces the logout-token validator's clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn sessiond_session::Clock>) -> Self {
        self.logout_validator = self.logout_validator.with_clock(clock);
        self
    }

    /// The site name.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// A fresh `state` value: keep it in a short-lived `SameSite=Lax` cookie and pass it to
    /// [`SiteClient::authorize_url`].
    pub fn new_state() -> String {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Whether the `state` on the callback is the one this browser was given (constant time).
    pub fn state_matches(expected: &str, got: &str) -> bool {
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(got.as_bytes()))
    }

    /// Where to redirect a browser that has no session (a top-level 303, never an iframe).
    pub fn authorize_url(&self, state: &str) -> String {
        let sep = if self.authorize_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}site={}&state={}",
            self.authorize_url,
            pct(&self.site),
            pct(state)
        )
    }

    /// The body of the back-channel redemption call for `ticket`.
    pub fn redeem_request(&self, ticket: &str) -> RedeemRequest {
        RedeemRequest {
            site: self.site.clone(),
            ticket: ticket.to_owned(),
        }
    }

    /// Verifies a back-channel logout token and returns the login's `sid`. Checks the
    /// signature, `typ` `logout+jwt`, `iss`, `aud` (this site), times, the logout event, and
    /// that there is no `nonce` (which would make it an ID token). Replaying a logout token
    /// only repeats a logout, so `jti`s are not tracked.
    pub fn verify_logout_token(&self, token: &str) -> Result<String, JwtError> {
        let claims = self.logout_validator.validate(token)?;
        let is_logout = claims
            .extra
            .get("events")
            .and_then(|e| e.get(LOGOUT_EVENT))
            .is_some_and(Value::is_object);
        if !is_logout || claims.extra.contains_key("nonce") {
            return Err(JwtError::WrongType);
        }
        claims
            .sid
            .ok_or(JwtError::Malformed("logout token without sid"))
    }
}

/// Per login (`sid`), the app's sessions that belong to it, in the app's own store.
///
/// One record per login, named through [`crate::storeid`]: the list of local session ids and
/// an `ended` flag, changed only by compare-and-set. [`AppSessions::end`] sets the flag and
/// deletes every listed session; [`AppSessions::link`] refuses to add a session to an ended
/// login, so a redemption that finishes after the logout token arrived cannot leave a live
/// session behind (the caller must then delete the session it just made).
///
/// If the app changes a session's id (sessiond-session's `cycle_id` or renewal timeout), it
/// must `link` the new id, or check [`AppSessions::is_ended`] on requests.
#[derive(Clone)]
pub struct AppSessions {
    store: Arc<dyn SessionStore>,
    ttl: Duration,
}

impl std::fmt::Debug for AppSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AppSessions {
    /// Links kept in `store` (usually the app's session store) for `ttl`, which should be at
    /// least the app's absolute session timeout.
    pub fn new(store: Arc<dyn SessionStore>, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    fn index(sid: &str) -> SessionId {
        storeid::derive("sso-app-sessions", &[sid])
    }

    fn ids(record: &Record) -> Vec<String> {
        record
            .data
            .get("ids")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    fn ended(record: &Record) -> bool {
        record.data.get("ended").and_then(Value::as_bool) == Some(true)
    }

    /// Records that `session` belongs to the login `sid`. Returns `false`, linking nothing,
    /// if that login has already ended.
    pub async fn link(&self, sid: &str, session: &SessionId, now: u64) -> Result<bool, StoreError> {
        let id = Self::index(sid);
        for _ in 0..MAX_RETRIES {
            match self.store.load(&id).await? {
                None => {
                    let mut record = storeid::record("sso-app-sessions", now);
                    record.data = json!({"ids": [session.as_str()], "ended": false})
                        .as_object()
                        .cloned()
                        .expect("an object");
                    if self.store.create(&id, &record, self.ttl).await? == CreateOutcome::Created {
                        return Ok(true);
                    }
                }
                Some(v) if Self::ended(&v.record) => return Ok(false),
                Some(v) => {
                    let mut ids = Self::ids(&v.record);
                    if !ids.iter().any(|i| i == session.as_str()) {
                        ids.push(session.as_str().to_owned());
                    }
                    let mut record = v.record.clone();
                    record.data.insert("ids".into(), json!(ids));
                    match self.store.update(&id, &record, v.version, self.ttl).await? {
                        UpdateOutcome::Updated(_) => return Ok(true),
                        UpdateOutcome::Conflict | UpdateOutcome::Missing => {}
                    }
                }
            }
        }
        Err(StoreError::new("sso index contended"))
    }

    /// Ends the login `sid` here: deletes every linked session and refuses later links.
    /// Returns how many sessions were deleted. Idempotent.
    pub async fn end(&self, sid: &str, now: u64) -> Result<usize, StoreError> {
        let id = Self::index(sid);
        let ids = 'cas: {
            for _ in 0..MAX_RETRIES {
                match self.store.load_fresh(&id).await? {
                    None => {
                        // Nothing linked yet: leave a marker so a late link is refused.
                        let mut record = storeid::record("sso-app-sessions", now);
                        record.data = json!({"ids": [], "ended": true})
                            .as_object()
                            .cloned()
                            .expect("an object");
                        if self.store.create(&id, &record, self.ttl).await?
                            == CreateOutcome::Created
                        {
                            break 'cas Vec::new();
                        }
                    }
                    Some(v) => {
                        let ids = Self::ids(&v.record);
                        if Self::ended(&v.record) && ids.is_empty() {
                            break 'cas Vec::new();
                        }
                        let mut record = v.record.clone();
                        record.data.insert("ended".into(), Value::Bool(true));
                        record.data.insert("ids".into(), json!([]));
                        match self.store.update(&id, &record, v.version, self.ttl).await? {
                            UpdateOutcome::Updated(_) => break 'cas ids,
                            UpdateOutcome::Conflict | UpdateOutcome::Missing => {}
                        }
                    }
                }
            }
            return Err(StoreError::new("sso index contended"));
        };
        let mut deleted = 0;
        for raw in ids {
            if let Some(session) = SessionId::parse(&raw)
                && self.store.delete(&session).await?
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Whether the login `sid` has ended here.
    pub async fn is_ended(&self, sid: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .load(&Self::index(sid))
            .await?
            .is_some_and(|v| Self::ended(&v.record)))
    }
}
