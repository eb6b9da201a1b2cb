//! A login carried from one domain to another without third-party cookies.
//!
//! The old trick (an `<iframe>` or `<script>` on a.com that loads b.com and lets b.com set
//! its cookie) needs b.com's cookie in a third-party context: Safari blocks it, Firefox
//! partitions it, Chrome blocks it when the user chooses to. What works in every browser is
//! first-party only: **top-level redirects** and **server-to-server calls**.
//!
//! ```text
//! browser            b.test (app)                 login.test (LoginAuthority)
//!   | GET /              |                                  |
//!   |------------------->| no local session                 |
//!   |<-- 303 login.test/authorize?site=b.test&state=S ------| (state S also in a Lax cookie)
//!   | GET /authorize (login.test's own cookie is first-party here) ---------->|
//!   |                    |        SSO session? no: login form, then begin_login
//!   |                    |        issue_ticket(sid, "b.test") (single use, <= 30 s)
//!   |<-- 303 b.test/sso/callback?ticket=T&state=S -----------------------------|
//!   | GET /sso/callback  |                                  |
//!   |------------------->| S matches the cookie?            |
//!   |                    |-- POST /sso/redeem {site, T} --->| back-channel, site secret
//!   |                    |<-- {sub, sid} -------------------| T burned; b.test recorded
//!   |                    | new session, fresh id, link(sid) |
//!   |<-- 303 / + Set-Cookie (first-party, b.test) ----------|
//!
//! later, logout anywhere:
//!   |-- POST /logout --->| end local session                |
//!   |                    |-- POST /sso/logout {sid} ------->| logout(sid): login marked ended
//!   |                    |      for each site of the login: POST <site>/sso/backchannel-logout
//!   |                    |<----------- logout_token (EdDSA JWT, typ logout+jwt, aud=site, sid)
//!   |                    | AppSessions::end(sid): every local session of that login deleted
//! ```
//!
//! Decisions:
//!
//! - **Tickets** are 192-bit random ids stored in a [`SessionStore`], tagged as tickets
//!   ([`storeid::record`]: never taken for a session, nor a session for a ticket), bound to
//!   one site and one login, valid for at most 30 s ([`MAX_TICKET_TTL`]). Redemption is a compare-and-set
//!   that marks the ticket used, so exactly one redemption wins even across login nodes; a
//!   ticket shown to the wrong site, or too late, is burned too. The used ticket stays as a
//!   tombstone until its store TTL so that a replay is reported as a replay.
//! - **The return address is never taken from the request**: a ticket only ever goes to the
//!   callback URL registered for its site, so the authorize endpoint is not an open redirect
//!   and a ticket cannot be sent to an attacker's page.
//! - **`state`** binds the callback to the browser that started the login (a Lax cookie on
//!   the app), so an attacker cannot log a victim into the attacker's account by sending a
//!   link with the attacker's ticket.
//! - **Redemption is back-channel** and authenticated with a per-site secret: a ticket alone,
//!   even stolen from a URL or a log, cannot be redeemed by anyone but the site's servers.
//! - **The app's session is its own**: a fresh id from its own session layer; the login's id
//!   (`sid`, a separate random value, never a cookie) is only a name for logout.
//! - **Central logout by back-channel calls** (the OpenID Connect Back-Channel Logout shape):
//!   the login domain keeps, per login, the list of sites that redeemed a ticket, and on
//!   logout POSTs a signed logout token to each. Chosen over a shared revocation record
//!   that every app would read on every request, because the apps need not share a store
//!   with the login domain or with each other, a logout takes effect at once, and normal
//!   requests cost nothing extra. The app side ([`AppSessions`]) keeps, per login, its
//!   session ids and an "ended" flag, so a redemption racing with a logout cannot survive it.
//!   An app that is down during the fan-out misses the call: the caller gets the list of
//!   failed sites to retry, and app sessions should have an absolute timeout anyway.

#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sessiond_session::{
    Clock, CreateOutcome, Record, SessionId, SessionStore, StoreError, SystemClock, UpdateOutcome,
};
use subtle::ConstantTimeEq as _;

use crate::jwt::{JwtError, JwtIssuer, JwtKey};
use crate::storeid;

mod site;

pub use site::{AppSessions, SiteClient};

/// The longest a ticket may live: long enough for a redirect and a back-channel call on a
/// slow network, short enough that a ticket leaked through a log or a `Referer` is useless.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(30);

/// The `typ` of back-channel logout tokens.
pub const TYP_LOGOUT: &str = "logout+jwt";

/// The `events` member that marks a logout token (OpenID Connect Back-Channel Logout).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a used ticket's tombstone outlives the ticket, so a replay is recognised.
const TOMBSTONE: Duration = Duration::from_secs(60);

/// Compare-and-set rounds before giving up on a contended record.
const MAX_RETRIES: usize = 16;

/// A site (an app on its own domain) that may receive tickets.
#[derive(Clone)]
pub struct SiteRegistration {
    /// The site's name, e.g. `b.test`; tickets are bound to it.
    pub site: String,
    /// Where tickets are sent (the browser is redirected there), e.g.
    /// `https://b.test/sso/callback`.
    pub callback_url: String,
    /// Where the login domain POSTs logout tokens, server to server.
    pub backchannel_logout_url: String,
    /// The secret the site's servers present when redeeming a ticket.
    pub secret: Vec<u8>,
}

impl fmt::Debug for SiteRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteRegistration")
            .field("site", &self.site)
            .field("callback_url", &self.callback_url)
            .field("backchannel_logout_url", &self.backchannel_logout_url)
            .finish_non_exhaustive()
    }
}

/// A ticket just issued.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The ticket itself.
    pub value: String,
    /// Where to send the browser: the site's callback with `ticket` and `state`.
    pub redirect_url: String,
}

/// Why a ticket was not issued or redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketError {
    /// No such site is registered, or its secret is wrong.
    UnknownSite,
    /// The ticket was never issued (or is long gone).
    Unknown,
    /// The ticket was already redeemed (or burned by a failed redemption).
    Replayed,
    /// The ticket was issued for another site; it is burned now.
    WrongSite,
    /// The ticket is older than its TTL; it is burned now.
    Expired,
    /// The login ended (logout) before the ticket was redeemed.
    LoginEnded,
    /// The store failed.
    Store(String),
}

impl TicketError {
    /// A short code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            TicketError::UnknownSite => "unknown_site",
            TicketError::Unknown => "unknown_ticket",
            TicketError::Replayed => "replayed",
            TicketError::WrongSite => "wrong_site",
            TicketError::Expired => "expired",
            TicketError::LoginEnded => "login_ended",
            TicketError::Store(_) => "store_error",
        }
    }
}

impl fmt::Display for TicketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TicketError::Store(e) => write!(f, "ticket store error: {e}"),
            other => write!(f, "ticket refused: {}", other.code()),
        }
    }
}

impl std::error::Error for TicketError {}

impl From<StoreError> for TicketError {
    fn from(e: StoreError) -> Self {
        TicketError::Store(e.to_string())
    }
}

/// The body of a redemption call (JSON), from the site's server to the login domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemRequest {
    /// The redeeming site.
    pub site: String,
    /// The ticket from the callback URL.
    pub ticket: String,
}

/// The answer to a successful redemption (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemResponse {
    /// The user.
    pub sub: String,
    /// The login's id, for logout; not a credential.
    pub sid: String,
}

/// One back-channel logout call to make: POST `logout_token=<token>`
/// (`application/x-www-form-urlencoded`) to `url`.
#[derive(Debug, Clone)]
pub struct BackchannelLogout {
    /// The site.
    pub site: String,
    /// Its back-channel logout URL.
    pub url: String,
    /// The signed logout token.
    pub token: String,
}

/// The login domain's side: logins, tickets, and logout fan-out. Cheap to clone.
#[derive(Clone)]
pub struct LoginAuthority {
    store: Arc<dyn SessionStore>,
    sites: Arc<HashMap<String, SiteRegistration>>,
    logout_issuer: JwtIssuer,
    clock: Arc<dyn Clock>,
    ticket_ttl: Duration,
    login_ttl: Duration,
}

impl fmt::Debug for LoginAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginAuthority")
            .field("sites", &self.sites.values().collect::<Vec<_>>())
            .field("ticket_ttl", &self.ticket_ttl)
            .field("login_ttl", &self.login_ttl)
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

impl LoginAuthority {
    /// An authority named `iss` (its URL) keeping logins and tickets in `store`, signing
    /// logout tokens with `logout_key`. Logins last 8 hours, tickets 30 s.
    pub fn new(store: Arc<dyn SessionStore>, logout_key: JwtKey, iss: &str) -> Self {
        Self {
            store,
            sites: Arc::new(HashMap::new()),
            logout_issuer: JwtIssuer::new(logout_key, iss)
                .with_typ(TYP_LOGOUT)
                .with_ttl(Duration::from_secs(120)),
            clock: Arc::new(SystemClock),
            ticket_ttl: MAX_TICKET_TTL,
            login_ttl: Duration::from_secs(8 * 3600),
        }
    }

    /// Registers a site.
    pub fn with_site(mut self, site: SiteRegistration) -> Self {
        Arc::make_mut(&mut self.sites).insert(site.site.clone(), site);
        self
    }

    /// Sets the clock (of tickets, logins and logout tokens).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.logout_issuer = self.logout_issuer.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Sets the ticket lifetime; refuses more than [`MAX_TICKET_TTL`].
    pub fn with_ticket_ttl(mut self, ttl: Duration) -> Result<Self, String> {
        if ttl > MAX_TICKET_TTL || ttl.is_zero() {
            return Err(format!(
                "ticket lifetime must be more than 0 and at most {} s",
                MAX_TICKET_TTL.as_secs()
            ));
        }
        self.ticket_ttl = ttl;
        Ok(self)
    }

    /// Sets how long a login (the SSO session) lasts.
    pub fn with_login_ttl(mut self, ttl: Duration) -> Self {
        self.login_ttl = ttl;
        self
    }

    /// Whether `site` is registered.
    pub fn has_site(&self, site: &str) -> bool {
        self.sites.contains_key(site)
    }

    /// The registered site, if `secret` is its secret (compared in constant time).
    pub fn authenticate_site(&self, site: &str, secret: &[u8]) -> Option<&SiteRegistration> {
        let reg = self.sites.get(site)?;
        bool::from(reg.secret.as_slice().ct_eq(secret)).then_some(reg)
    }

    fn is_ended(record: &Record) -> bool {
        record.data.get("ended").and_then(Value::as_bool) == Some(true)
    }

    fn login_id(sid: &str) -> SessionId {
        storeid::derive("sso-login", &[sid])
    }

    /// Records a login of `sub` (after the user proved who they are) and returns its `sid`,
    /// to keep in the login domain's own session.
    pub async fn begin_login(&self, sub: &str) -> Result<String, StoreError> {
        let now = self.clock.now_ms();
        loop {
            let sid = random_token();
            let mut record = storeid::record("sso-login", now);
            record.data = object(json!({"sub": sub, "sites": []}));
            match self
                .store
                .create(&Self::login_id(&sid), &record, self.login_ttl)
                .await?
            {
                CreateOutcome::Created => return Ok(sid),
                // 128 random bits never collide in practice; try again if they did.
                CreateOutcome::Exists => continue,
            }
        }
    }

    /// The user of the login `sid`, if it has not ended.
    pub async fn login_user(&self, sid: &str) -> Result<Option<String>, StoreError> {
        let Some(v) = self.store.load(&Self::login_id(sid)).await? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        if Self::is_ended(&v.record)
            || now.saturating_sub(v.record.created_at) >= self.login_ttl.as_millis() as u64
        {
            return Ok(None);
        }
        Ok(v.record
            .data
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// Issues a ticket for the login `sid` to `site`, and the URL to send the browser to.
    /// `state` is the site's value from the authorize request, returned unchanged.
    pub async fn issue_ticket(
        &self,
        sid: &str,
        site: &str,
        state: &str,
    ) -> Result<Ticket, TicketError> {
        let reg = self.sites.get(site).ok_or(TicketError::UnknownSite)?;
        let sub = self.login_user(sid).await?.ok_or(TicketError::LoginEnded)?;
        let now = self.clock.now_ms();
        let ticket = SessionId::generate();
        let mut record = storeid::record("sso-ticket", now);
        record.data = object(json!({
            "site": site,
            "sid": sid,
            "sub": sub,
            "expires_at": now + self.ticket_ttl.as_millis() as u64,
            "used": false,
        }));
        // The store keeps it past the deadline only as a tombstone; the deadline is ours.
        let ttl = self.ticket_ttl + TOMBSTONE;
        if self.store.create(&ticket, &record, ttl).await? == CreateOutcome::Exists {
            return Err(TicketError::Store("ticket id collision".into()));
        }
        let sep = if reg.callback_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let redirect_url = format!(
            "{}{sep}ticket={}&state={}",
            reg.callback_url,
            ticket.as_str(),
            pct(state)
        );
        Ok(Ticket {
            value: ticket.as_str().to_owned(),
            redirect_url,
        })
    }

    /// Redeems `ticket` for `site`, which the caller has authenticated
    /// ([`LoginAuthority::authenticate_site`]). Any attempt uses the ticket up.
    pub async fn redeem(&self, site: &str, ticket: &str) -> Result<RedeemResponse, TicketError> {
        let id = SessionId::parse(ticket).ok_or(TicketError::Unknown)?;
        let now = self.clock.now_ms();
        let data = loop {
            let Some(v) = self.store.load(&id).await? else {
                return Err(TicketError::Unknown);
            };
            if !storeid::is_kind(&v.record, "sso-ticket") {
                // Some other record of the store: a session id is not a ticket. The tag is in
                // the record, outside the data, so a session cannot fake it whatever an app
                // stores in it.
                return Err(TicketError::Unknown);
            }
            let d = &v.record.data;
            if d.get("used").and_then(Value::as_bool) != Some(false) {
                return Err(TicketError::Replayed);
            }
            let mut used = v.record.clone();
            used.data.insert("used".into(), Value::Bool(true));
            // Keep the tombstone as long as the original record would have lived.
            let left = d
                .get("expires_at")
                .and_then(Value::as_u64)
                .unwrap_or(now)
                .saturating_sub(now);
            let ttl = Duration::from_millis(left) + TOMBSTONE;
            match self.store.update(&id, &used, v.version, ttl).await? {
                UpdateOutcome::Updated(_) => break v.record.data,
                // Another redemption got there first, or the record just expired.
                UpdateOutcome::Conflict => continue,
                UpdateOutcome::Missing => return Err(TicketError::Unknown),
            }
        };
        // Ours alone from here: the checks below burn the ticket whatever they decide.
        if data.get("site").and_then(Value::as_str) != Some(site) {
            tracing::warn!(site, "sso ticket presented by another site; burned");
            return Err(TicketError::WrongSite);
        }
        let expires_at = data.get("expires_at").and_then(Value::as_u64).unwrap_or(0);
        if now >= expires_at {
            return Err(TicketError::Expired);
        }
        let sid = data
            .get("sid")
            .and_then(Value::as_str)
            .ok_or(TicketError::Unknown)?
            .to_owned();
        let sub = self.add_site(&sid, site).await?;
        Ok(RedeemResponse { sub, sid })
    }

    /// Adds `site` to the login's list; fails if the login has ended.
    async fn add_site(&self, sid: &str, site: &str) -> Result<String, TicketError> {
        let id = Self::login_id(sid);
        for _ in 0..MAX_RETRIES {
            let Some(v) = self.store.load(&id).await? else {
                return Err(TicketError::LoginEnded);
            };
            if Self::is_ended(&v.record) {
                return Err(TicketError::LoginEnded);
            }
            let sub = v
                .record
                .data
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let mut sites: Vec<String> = v
                .record
                .data
                .get("sites")
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .unwrap_or_default();
            if sites.iter().any(|s| s == site) {
                return Ok(sub);
            }
            sites.push(site.to_owned());
            let mut record = v.record.clone();
            record.data.insert("sites".into(), json!(sites));
            let left = (v.record.created_at + self.login_ttl.as_millis() as u64)
                .saturating_sub(self.clock.now_ms());
            let ttl = Duration::from_millis(left.max(1));
            match self.store.update(&id, &record, v.version, ttl).await? {
                UpdateOutcome::Updated(_) => return Ok(sub),
                UpdateOutcome::Conflict => continue,
                UpdateOutcome::Missing => return Err(TicketError::LoginEnded),
            }
        }
        Err(TicketError::Store("login record contended".into()))
    }

    /// A logout requested by a site's server (the user pressed "log out" on that site):
    /// as [`LoginAuthority::logout`], but only for a login that site takes part in, so a
    /// site cannot end logins it never saw. `site` must have been authenticated.
    pub async fn logout_from_site(
        &self,
        site: &str,
        sid: &str,
    ) -> Result<Vec<BackchannelLogout>, TicketError> {
        let Some(v) = self.store.load_fresh(&Self::login_id(sid)).await? else {
            return Ok(Vec::new());
        };
        if Self::is_ended(&v.record) {
            return Ok(Vec::new());
        }
        let takes_part = v
            .record
            .data
            .get("sites")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(site)));
        if !takes_part {
            return Err(TicketError::UnknownSite);
        }
        self.logout(sid).await
    }

    /// Ends the login `sid`: no more tickets or redemptions for it, and the back-channel
    /// logout calls to make, one per site that redeemed a ticket. Idempotent: a second call
    /// (or a concurrent one that lost) returns no calls.
    pub async fn logout(&self, sid: &str) -> Result<Vec<BackchannelLogout>, TicketError> {
        let id = Self::login_id(sid);
        // Mark the login ended with a compare-and-set on the version we read, so the list of
        // sites we fan out to is exactly the last one: a redemption that adds a site races
        // this update, and whichever loses sees the other's write (it reloads and finds the
        // login ended, or we reload and find its site). Only the caller whose update wins
        // does the fan-out. The ended record stays until the login's TTL, as a marker.
        let record = 'cas: {
            for _ in 0..MAX_RETRIES {
                let Some(v) = self.store.load_fresh(&id).await? else {
                    return Ok(Vec::new());
                };
                if Self::is_ended(&v.record) {
                    return Ok(Vec::new());
                }
                let mut ended = v.record.clone();
                ended.data.insert("ended".into(), Value::Bool(true));
                let left = (v.record.created_at + self.login_ttl.as_millis() as u64)
                    .saturating_sub(self.clock.now_ms());
                let ttl = Duration::from_millis(left.max(1));
                match self.store.update(&id, &ended, v.version, ttl).await? {
                    UpdateOutcome::Updated(_) => break 'cas v.record,
                    UpdateOutcome::Conflict => continue,
                    UpdateOutcome::Missing => return Ok(Vec::new()),
                }
            }
            return Err(TicketError::Store("login record contended".into()));
        };
        let sub = record
            .data
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let sites: Vec<String> = record
            .data
            .get("sites")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        let mut calls = Vec::new();
        for site in sites {
            let Some(reg) = self.sites.get(&site) else {
                continue;
            };
            let events = object(json!({ "events": { LOGOUT_EVENT: {} } }));
            let token = self
                .logout_issuer
                .issue(&sub, &site, Some(sid), events)
                .map_err(|e: JwtError| TicketError::Store(e.to_string()))?;
            calls.push(BackchannelLogout {
                site,
                url: reg.backchannel_logout_url.clone(),
                token: token.token,
            });
        }
        Ok(calls)
    }
}

#[cfg(test)]
mod tests;
