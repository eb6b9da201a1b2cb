//! Reading the session id from a request and writing it into a response: the `Cookie` and
//! `Set-Cookie` headers, or the configured id header.
//!
//! Hand-written rather than built on a cookie crate because only one cookie is involved, its
//! value is always base64url (no quoting or escaping), and the attributes are validated once in
//! [`crate::SessionConfig::validate`]. This module does not decide *when* to set or remove the
//! cookie; the layer does.

#![deny(missing_docs)]

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::config::{CookieConfig, SessionConfig, Transport};
use crate::id::SessionId;

/// What the response must tell the client about its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdAction {
    /// Nothing.
    None,
    /// Send this id (new, or a persistent cookie whose Max-Age is refreshed).
    Set(SessionId),
    /// Tell the client to forget its id.
    Remove,
}

/// The raw id the client sent, if any. Several cookies of the same name can arrive (a
/// host-only one and a Domain one); the first that parses as an id wins, because browsers
/// list the most specific path first.
pub(crate) fn read_id(headers: &HeaderMap, config: &SessionConfig) -> Option<String> {
    match &config.transport {
        Transport::Header(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
        Transport::Cookie => {
            let name = config.cookie.full_name();
            let mut first = None;
            for header in headers.get_all(COOKIE) {
                let Ok(header) = header.to_str() else {
                    continue;
                };
                for pair in header.split(';') {
                    let Some((k, v)) = pair.trim().split_once('=') else {
                        continue;
                    };
                    if k.trim() != name {
                        continue;
                    }
                    let v = v.trim();
                    if config.id_format.parse(v).is_some() {
                        return Some(v.to_owned());
                    }
                    first.get_or_insert_with(|| v.to_owned());
                }
            }
            // Nothing parsed: return the first candidate anyway so strict mode can count it.
            first
        }
    }
}

/// The `Set-Cookie` value for `value` (an id, or empty for a removal cookie).
fn set_cookie(c: &CookieConfig, value: &str, remove: bool) -> String {
    let mut s = format!("{}={}", c.full_name(), value);
    if remove {
        // Expires as well as Max-Age: some old clients honour only one of them.
        s.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    } else if let Some(max_age) = c.max_age {
        s.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    }
    if let Some(d) = &c.domain {
        s.push_str(&format!("; Domain={d}"));
    }
    s.push_str(&format!("; Path={}", c.path));
    if c.secure {
        s.push_str("; Secure");
    }
    if c.http_only {
        s.push_str("; HttpOnly");
    }
    s.push_str(&format!("; SameSite={}", c.same_site.as_str()));
    s
}

/// Writes `action` into the response headers.
pub(crate) fn write_id(headers: &mut HeaderMap, config: &SessionConfig, action: &IdAction) {
    let (value, remove) = match action {
        IdAction::None => return,
        IdAction::Set(id) => (id.as_str(), false),
        IdAction::Remove => ("", true),
    };
    let header = match &config.transport {
        Transport::Cookie => (SET_COOKIE, set_cookie(&config.cookie, value, remove)),
        Transport::Header(name) => (name.clone(), value.to_owned()),
    };
    // Both values are built from validated configuration and base64url ids, so they are
    // always valid header values.
    if let Ok(v) = HeaderValue::from_str(&header.1) {
        headers.append(header.0, v);
    }
    // A response that hands out a session id must never be stored by a shared cache, or the
    // next visitor would receive this one's session.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_cookie_has_every_attribute() {
        let c = SessionConfig::default()
            .with_domain(".example.com")
            .with_max_age(Some(Duration::from_secs(3600)));
        assert_eq!(
            set_cookie(&c.cookie, "abc", false),
            "id=abc; Max-Age=3600; Domain=.example.com; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        let c = SessionConfig::default()
            .with_host_prefix(true)
            .with_same_site(crate::SameSite::Strict);
        assert_eq!(
            set_cookie(&c.cookie, "", true),
            "__Host-id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn read_id_picks_the_valid_cookie() {
        let id = SessionId::generate();
        let config = SessionConfig::default();
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("other=1; id=garbage"));
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("x=y;id={}", id.as_str())).unwrap(),
        );
        assert_eq!(read_id(&h, &config).as_deref(), Some(id.as_str()));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("ids=1; xid=2"));
        assert_eq!(read_id(&h, &config), None);
    }
}
