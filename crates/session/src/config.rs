//! Configuration of the session layer: how the id travels (cookie attributes or a header),
//! the three timeouts, the grace window of a cycled id, strict mode, retry bounds, the clock
//! and the log salt.
//!
//! Defaults follow the OWASP session cheat sheet: a generic cookie name (`id`), `Secure`,
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, a browser-session cookie (no `Max-Age`), strict mode,
//! and idle, absolute and renewal timeouts all switched on. [`SessionConfig::validate`] refuses
//! combinations that browsers would reject or that would weaken the cookie silently (a
//! `__Host-` cookie with a Domain, `SameSite=None` without `Secure`). This module holds data
//! only; it does not read headers or write cookies.

#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use crate::clock::{Clock, SystemClock};
use crate::id::{IdFormat, LogHasher};

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent with top-level cross-site navigations (the default).
    Lax,
    /// Sent with every request; requires `Secure`.
    None,
}

impl SameSite {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// How the session id travels between client and server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A cookie, configured by [`CookieConfig`] (the default, for browsers).
    Cookie,
    /// A request header carrying the id, for APIs and mobile apps. A new id is returned in the
    /// same response header; an ended session is signalled by the header with an empty value.
    Header(HeaderName),
}

/// Cookie attributes.
#[derive(Debug, Clone)]
pub struct CookieConfig {
    /// The cookie name, without any `__Host-` prefix. Default `id`: a generic name does not
    /// reveal the framework.
    pub name: String,
    /// The `Domain` attribute, e.g. `.example.com` to share the session with subdomains.
    /// Default none (host-only).
    pub domain: Option<String>,
    /// The `Path` attribute. Default `/`.
    pub path: String,
    /// The `Secure` attribute. Default on.
    pub secure: bool,
    /// The `HttpOnly` attribute. Default on.
    pub http_only: bool,
    /// The `SameSite` attribute. Default `Lax`.
    pub same_site: SameSite,
    /// Prefix the name with `__Host-`, which makes the browser insist on `Secure`, `Path=/`
    /// and no `Domain`. Default off (it rules out sharing across subdomains).
    pub host_prefix: bool,
    /// `Max-Age` of the cookie; `None` (the default) makes a browser-session cookie. The
    /// server-side timeouts apply either way.
    pub max_age: Option<Duration>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            domain: None,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            host_prefix: false,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The name as sent on the wire, prefix included.
    pub fn full_name(&self) -> String {
        if self.host_prefix {
            format!("__Host-{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// Everything the layer needs to know. Build with `SessionConfig::default()` and the `with_*`
/// methods.
#[derive(Clone)]
pub struct SessionConfig {
    /// Cookie attributes (used when [`SessionConfig::transport`] is [`Transport::Cookie`]).
    pub cookie: CookieConfig,
    /// Cookie or header.
    pub transport: Transport,
    /// A session unused for this long ends. Default 30 minutes.
    pub idle_timeout: Duration,
    /// A session ends this long after it was created, however active. Default 12 hours;
    /// `None` disables it.
    pub absolute_timeout: Option<Duration>,
    /// The id is replaced (data kept) once it is this old. Default 1 hour; `None` disables it.
    pub renewal_timeout: Option<Duration>,
    /// After the id is replaced, the old id still answers for this long, so requests already
    /// in flight are not logged out: after a renewal it resolves to the session; after
    /// [`crate::Session::cycle_id`] (a login) it shows only its own state from before the
    /// login, read-only, never the logged-in session. Default 5 seconds; zero ends the old id
    /// at once.
    pub grace_period: Duration,
    /// A request that reads an unchanged session refreshes its idle deadline only if the last
    /// refresh is older than this, so read-heavy traffic does not write on every request.
    /// Default 60 seconds; must be shorter than the idle timeout.
    pub touch_interval: Duration,
    /// Strict mode (default on): an id the store does not know is never adopted; the client
    /// gets a fresh one. Turning it off lets a client choose its session id, which enables
    /// session fixation; it exists only for migrations that must keep ids issued elsewhere.
    pub strict: bool,
    /// How many times a write is retried after losing a compare-and-set race. Default 16.
    pub max_retries: u32,
    /// Where time comes from. Default the system clock.
    pub clock: Arc<dyn Clock>,
    /// How ids are hashed for logs. Default a random salt per process.
    pub log_hasher: LogHasher,
    /// Which ids are issued and accepted. Default [`IdFormat::Native`]; [`IdFormat::Php`]
    /// to share sessions with PHP.
    pub id_format: IdFormat,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("cookie", &self.cookie)
            .field("transport", &self.transport)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("renewal_timeout", &self.renewal_timeout)
            .field("grace_period", &self.grace_period)
            .field("touch_interval", &self.touch_interval)
            .field("strict", &self.strict)
            .field("max_retries", &self.max_retries)
            .field("id_format", &self.id_format)
            .finish_non_exhaustive()
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie: CookieConfig::default(),
            transport: Transport::Cookie,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Some(Duration::from_secs(12 * 60 * 60)),
            renewal_timeout: Some(Duration::from_secs(60 * 60)),
            grace_period: Duration::from_secs(5),
            touch_interval: Duration::from_secs(60),
            strict: true,
            max_retries: 16,
            clock: Arc::new(SystemClock),
            log_hasher: LogHasher::random(),
            id_format: IdFormat::Native,
        }
    }
}

/// A configuration the layer refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Whether `s` may appear in a cookie attribute value: visible ASCII without `;` or `,`.
fn attr_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

/// RFC 6265 cookie-name (an RFC 7230 token).
fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl SessionConfig {
    /// Sets the cookie name (without `__Host-`).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self
    }
    /// Sets the cookie's Domain, e.g. `.example.com`.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }
    /// Sets the cookie's Path.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }
    /// Sets the cookie's Secure attribute. Turn it off only for plain-HTTP development.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.cookie.secure = secure;
        self
    }
    /// Sets the cookie's HttpOnly attribute.
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }
    /// Sets the cookie's SameSite attribute.
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = same_site;
        self
    }
    /// Turns the `__Host-` name prefix on or off.
    pub fn with_host_prefix(mut self, on: bool) -> Self {
        self.cookie.host_prefix = on;
        self
    }
    /// Sets the cookie's Max-Age; `None` makes a browser-session cookie.
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.cookie.max_age = max_age;
        self
    }
    /// Carries the id in this request/response header instead of a cookie.
    pub fn with_header(mut self, header: HeaderName) -> Self {
        self.transport = Transport::Header(header);
        self
    }
    /// Sets the idle timeout.
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }
    /// Sets (or disables) the absolute timeout.
    pub fn with_absolute_timeout(mut self, t: Option<Duration>) -> Self {
        self.absolute_timeout = t;
        self
    }
    /// Sets (or disables) the renewal timeout.
    pub fn with_renewal_timeout(mut self, t: Option<Duration>) -> Self {
        self.renewal_timeout = t;
        self
    }
    /// Sets the grace window of a replaced id.
    pub fn with_grace_period(mut self, t: Duration) -> Self {
        self.grace_period = t;
        self
    }
    /// Sets the touch interval.
    pub fn with_touch_interval(mut self, t: Duration) -> Self {
        self.touch_interval = t;
        self
    }
    /// Turns strict mode on or off.
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
    /// Sets the bound on compare-and-set retries.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Sets the clock (tests pass a [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Sets which ids are issued and accepted ([`IdFormat::Php`] to share PHP's sessions).
    pub fn with_id_format(mut self, format: IdFormat) -> Self {
        self.id_format = format;
        self
    }
    /// Sets the log hasher (give all app nodes the same salt to correlate their logs).
    pub fn with_log_hasher(mut self, hasher: LogHasher) -> Self {
        self.log_hasher = hasher;
        self
    }

    /// Checks the configuration; [`crate::SessionLayer::new`] calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.to_owned()));
        let c = &self.cookie;
        if !token_ok(&c.name) {
            return err("cookie name must be a non-empty HTTP token");
        }
        if !attr_ok(&c.path) || !c.path.starts_with('/') {
            return err("cookie path must start with '/' and contain no ';', ',' or spaces");
        }
        if let Some(d) = &c.domain
            && !attr_ok(d)
        {
            return err("cookie domain must contain no ';', ',' or spaces");
        }
        if c.host_prefix && (!c.secure || c.path != "/" || c.domain.is_some()) {
            return err("a __Host- cookie needs Secure, Path=/ and no Domain");
        }
        if c.same_site == SameSite::None && !c.secure {
            return err("SameSite=None needs Secure");
        }
        if self.idle_timeout.is_zero() {
            return err("idle timeout must be positive");
        }
        if self.touch_interval >= self.idle_timeout {
            return err("touch interval must be shorter than the idle timeout");
        }
        if matches!(self.absolute_timeout, Some(t) if t.is_zero())
            || matches!(self.renewal_timeout, Some(t) if t.is_zero())
        {
            return err("timeouts must be positive (use None to disable)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_secure() {
        let c = SessionConfig::default();
        c.validate().unwrap();
        assert_eq!(c.cookie.name, "id");
        assert!(c.cookie.secure && c.cookie.http_only);
        assert_eq!(c.cookie.same_site, SameSite::Lax);
        assert!(c.cookie.max_age.is_none());
        assert!(c.strict);
    }

    #[test]
    fn refuses_weak_or_impossible_cookies() {
        let host = SessionConfig::default().with_host_prefix(true);
        host.clone().validate().unwrap();
        assert!(host.clone().with_domain(".example.com").validate().is_err());
        assert!(host.clone().with_secure(false).validate().is_err());
        assert!(host.with_path("/app").validate().is_err());
        assert!(
            SessionConfig::default()
                .with_same_site(SameSite::None)
                .with_secure(false)
                .validate()
                .is_err()
        );
        assert!(
            SessionConfig::default()
                .with_cookie_name("a b")
                .validate()
                .is_err()
        );
        assert!(
            SessionConfig::default()
                .with_domain("x;y")
                .validate()
                .is_err()
        );
        assert!(
            SessionConfig::default()
                .with_touch_interval(Duration::from_secs(3600))
                .validate()
                .is_err()
        );
    }
}
