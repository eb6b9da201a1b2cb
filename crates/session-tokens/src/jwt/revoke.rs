//! Server-side revocation for JWT sessions, kept in any [`SessionStore`].
//!
//! Two records, both named through [`crate::storeid`] so the store never sees a `jti` or a
//! user name:
//!
//! - **logout** (`jwt-jti`, `(iss, jti)`): created with a TTL equal to the token's remaining
//!   life plus the validator's leeway, so the deny-list only ever holds tokens that would
//!   otherwise still be accepted, and empties itself;
//! - **log out everywhere** (`jwt-user`, `(iss, sub)`): a not-before time in the record's
//!   data (`nbf_ms`). Every token of that user with `iat` at or before it is refused. Its TTL
//!   is the longest token lifetime plus leeway, after which every such token has expired by
//!   itself. Because `iat` has one-second resolution, a token issued in the same second
//!   *after* the logout is refused too: failing closed costs the user one more login.
//!
//! Both are tagged ([`storeid::record`]), so the session layer sharing the store never takes
//! one for a session: a logout request carrying a revocation's id as its cookie cannot
//! delete it. The check itself does not require the tag, so an untagged record written
//! before the tag existed still revokes (failing closed).
//!
//! A check costs two store reads. A store that cannot be reached makes the check fail
//! ([`JwtError::Store`]): a token that might be revoked is not accepted.

#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sessiond_session::{CreateOutcome, SessionStore, UpdateOutcome};

use super::{Claims, JwtError, JwtValidator};
use crate::storeid;

/// How many compare-and-set rounds "log out everywhere" tries before giving up.
const MAX_RETRIES: usize = 16;

/// Logout and "log out everywhere" for JWT sessions.
#[derive(Clone)]
pub struct Revocations {
    store: Arc<dyn SessionStore>,
    validator: JwtValidator,
    max_token_life: Duration,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("validator", &self.validator)
            .field("max_token_life", &self.max_token_life)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// Revocations in `store`, for tokens checked by `validator` (its clock and leeway are
    /// used) that live at most `max_token_life`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        validator: JwtValidator,
        max_token_life: Duration,
    ) -> Self {
        Self {
            store,
            validator,
            max_token_life,
        }
    }

    /// The validator.
    pub fn validator(&self) -> &JwtValidator {
        &self.validator
    }

    fn now(&self) -> u64 {
        self.validator.clock().now_ms()
    }

    /// Validates `token` and checks that it was not revoked: what a request handler calls.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, JwtError> {
        let claims = self.validator.validate_at(token, self.now())?;
        self.check(&claims).await?;
        Ok(claims)
    }

    /// Refuses claims whose `jti` was revoked or whose user logged out everywhere since.
    pub async fn check(&self, claims: &Claims) -> Result<(), JwtError> {
        let jti = storeid::derive("jwt-jti", &[&claims.iss, &claims.jti]);
        if self.store.load(&jti).await?.is_some() {
            return Err(JwtError::Revoked);
        }
        let user = storeid::derive("jwt-user", &[&claims.iss, &claims.sub]);
        if let Some(v) = self.store.load(&user).await?
            && let Some(nbf_ms) = v.record.data.get("nbf_ms").and_then(Value::as_u64)
            && claims.iat.saturating_mul(1000) <= nbf_ms
        {
            return Err(JwtError::RevokedForUser);
        }
        Ok(())
    }

    /// Logs out the token with these (already validated) claims.
    pub async fn revoke(&self, claims: &Claims) -> Result<(), JwtError> {
        let now = self.now();
        let valid_until = claims
            .exp
            .saturating_mul(1000)
            .saturating_add(self.validator.leeway().as_millis() as u64);
        if valid_until <= now {
            // Already refused by every validator; nothing to remember.
            return Ok(());
        }
        let id = storeid::derive("jwt-jti", &[&claims.iss, &claims.jti]);
        let record = storeid::record("jwt-jti", now);
        let ttl = Duration::from_millis(valid_until - now);
        // Exists means someone revoked it first: same outcome.
        let _: CreateOutcome = self.store.create(&id, &record, ttl).await?;
        Ok(())
    }

    /// Logs `sub` out everywhere: every token of that user issued at or before now.
    pub async fn revoke_all(&self, iss: &str, sub: &str) -> Result<(), JwtError> {
        let now = self.now();
        let id = storeid::derive("jwt-user", &[iss, sub]);
        let ttl = self.max_token_life + self.validator.leeway();
        for _ in 0..MAX_RETRIES {
            match self.store.load(&id).await? {
                None => {
                    let mut record = storeid::record("jwt-user", now);
                    record.data = data(now);
                    if self.store.create(&id, &record, ttl).await? == CreateOutcome::Created {
                        return Ok(());
                    }
                }
                Some(v) => {
                    let old = v.record.data.get("nbf_ms").and_then(Value::as_u64);
                    let mut record = v.record.clone();
                    // Never move the not-before backwards (a slow node's older clock).
                    record.data = data(old.unwrap_or(0).max(now));
                    match self.store.update(&id, &record, v.version, ttl).await? {
                        UpdateOutcome::Updated(_) => return Ok(()),
                        UpdateOutcome::Conflict | UpdateOutcome::Missing => {}
                    }
                }
            }
        }
        Err(JwtError::Store(
            "too much contention on the user record".into(),
        ))
    }
}

fn data(nbf_ms: u64) -> Map<String, Value> {
    json!({ "nbf_ms": nbf_ms })
        .as_object()
        .cloned()
        .expect("an object")
}
