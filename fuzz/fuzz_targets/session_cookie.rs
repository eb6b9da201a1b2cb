//! Fuzzes how the session middleware turns a request's headers into a session id: the
//! `Cookie` header parser (`sessiond_session::fuzzing::read_id`, exactly what the layer runs)
//! and the id format's parser (`IdFormat::Native`, which is `SessionId::parse`, or
//! `IdFormat::Php`), which decides whether the raw value is an id at all.
//!
//! Input: the first byte picks the configuration (bit 0: cookie or id header; bit 1: the
//! `__Host-` prefix; bit 2: PHP's ids and cookie name), the rest is split on `\n` into header values (several `Cookie` headers,
//! or several id headers), each used only if `http` accepts it as a header value.
//!
//! Invariants: nothing panics; whatever is read is a trimmed piece of one header value
//! (never empty for the id header); a native id that parses is 32 URL-safe base64 characters
//! spelled canonically (re-encoding its 24 bytes gives the same string, so two spellings can
//! never name one record); a PHP id that parses is 22 to 200 characters of PHP's alphabet
//! `[a-zA-Z0-9,-]` (nothing a memcached key or a log line could trip on); if any cookie of the configured name holds a value that parses,
//! what is read parses too (a valid id is never hidden behind a junk duplicate).

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{COOKIE, HeaderName};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sessiond_session::fuzzing::read_id;
use sessiond_session::{IdFormat, SessionConfig};

const ID_HEADER: &str = "x-session-id";

fn check_id(format: IdFormat, raw: &str) {
    if format == IdFormat::Php {
        if let Some(id) = format.parse(raw) {
            assert_eq!(id.as_str(), raw);
            assert!((22..=200).contains(&raw.len()));
            assert!(
                raw.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b',')
            );
        }
        return;
    }
    if let Some(id) = format.parse(raw) {
        assert_eq!(id.as_str(), raw);
        assert_eq!(raw.len(), 32);
        assert!(
            raw.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let bytes = URL_SAFE_NO_PAD.decode(raw).expect("a parsed id decodes");
        assert_eq!(bytes.len(), 24);
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&bytes),
            raw,
            "non-canonical id accepted"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let header = pick & 1 == 1;
    let format = if pick & 4 == 4 {
        IdFormat::Php
    } else {
        IdFormat::Native
    };
    let mut config = SessionConfig::default()
        .with_host_prefix(pick & 2 == 2)
        .with_id_format(format);
    if format == IdFormat::Php {
        config = config.with_cookie_name("PHPSESSID");
    }
    if header {
        config = config.with_header(HeaderName::from_static(ID_HEADER));
    }
    let name = if header {
        ID_HEADER.to_owned()
    } else {
        config.cookie.full_name()
    };

    let mut headers = HeaderMap::new();
    let mut values = Vec::new();
    for part in rest.split(|&b| b == b'\n').take(16) {
        let Ok(value) = HeaderValue::from_bytes(part) else {
            continue;
        };
        if let Ok(s) = value.to_str() {
            values.push(s.to_owned());
        }
        if header {
            headers.append(HeaderName::from_static(ID_HEADER), value);
        } else {
            headers.append(COOKIE, value);
        }
    }
    // The id parser on its own, on the whole input too.
    if let Ok(s) = std::str::from_utf8(rest) {
        check_id(format, s);
    }

    let read = read_id(&headers, &config);
    let Some(raw) = read else {
        if !header {
            // Nothing read means no pair of that name in any readable Cookie header.
            for v in &values {
                for pair in v.split(';') {
                    if let Some((k, _)) = pair.trim().split_once('=') {
                        assert_ne!(k.trim(), name, "a cookie of the configured name was missed");
                    }
                }
            }
        }
        return;
    };
    check_id(format, &raw);
    assert_eq!(raw.trim(), raw, "the value read is not trimmed");
    assert!(
        values.iter().any(|v| v.contains(raw.as_str())),
        "the value read is in no header"
    );
    if header {
        assert!(!raw.is_empty());
        // The id header: the first one readable as text, trimmed.
        let first = headers
            .get(ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        assert_eq!(first, Some(raw.as_str()));
    } else if format.parse(&raw).is_none() {
        // A cookie of that name with a valid id would have been read instead.
        for v in &values {
            for pair in v.split(';') {
                if let Some((k, val)) = pair.trim().split_once('=')
                    && k.trim() == name
                {
                    assert!(
                        format.parse(val.trim()).is_none(),
                        "a valid id was hidden behind another cookie of the same name"
                    );
                }
            }
        }
    }
});
