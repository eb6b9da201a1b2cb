//! Session ids: 192 random bits from a CSPRNG, written as 32 URL-safe base64 characters, and
//! the salted hash under which an id may appear in logs.
//!
//! An id carries no meaning: no user, no timestamp, no node. Parsing is strict (exact length,
//! exact alphabet, canonical encoding) so that anything a client sends is either a well-formed
//! id or rejected before it reaches the store. [`SessionId`] deliberately has no `Display`
//! impl and a redacted `Debug`, so `tracing::info!(?id)` cannot leak a live id; the raw
//! string is only reachable through [`SessionId::as_str`].

#![deny(missing_docs)]

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Random bytes per id. OWASP asks for at least 64 bits of entropy and 128 for home-grown
/// schemes; 192 bits encode to base64 without padding and leave a wide margin.
const ID_BYTES: usize = 24;
/// Length of the encoded id.
const ID_CHARS: usize = 32;

/// An opaque session id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh id from the thread-local CSPRNG (ChaCha12, seeded and periodically reseeded
    /// from the operating system).
    pub fn generate() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses an id sent by a client. Returns `None` for anything this library could not have
    /// issued.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != ID_CHARS {
            return None;
        }
        // Decoding also rejects non-canonical trailing bits, so every id has exactly one
        // spelling and two spellings can never name the same record.
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        (bytes.len() == ID_BYTES).then(|| Self(s.to_owned()))
    }

    /// The id as sent in the cookie or header. Treat it as a secret: never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which ids the layer issues and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdFormat {
    /// This crate's own ids: 32 URL-safe base64 characters, 192 bits (the default).
    #[default]
    Native,
    /// Ids a PHP app shares (see `PhpSessionStore`): accepted as PHP accepts them
    /// (`[a-zA-Z0-9,-]`, here 22 to 200 characters: 22 is PHP 8.4's shortest
    /// `session.sid_length`, and past 200 the memcached key with its prefix and lock prefix
    /// would not fit in 250 bytes); issued as 32 alphanumeric characters (about 190 bits),
    /// which PHP accepts whatever its `session.sid_bits_per_character`.
    Php,
}

/// PHP's session id alphabet without `,` and `-`: `,` is not a cookie octet (RFC 6265).
const PHP_ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Length of an issued PHP-style id.
const PHP_ID_CHARS: usize = 32;
/// Bounds of an accepted PHP-style id.
const PHP_ID_MIN: usize = 22;
const PHP_ID_MAX: usize = 200;

impl IdFormat {
    /// A fresh id of this format from the thread-local CSPRNG.
    pub fn generate(self) -> SessionId {
        match self {
            IdFormat::Native => SessionId::generate(),
            IdFormat::Php => {
                let mut rng = rand::rng();
                let mut id = String::with_capacity(PHP_ID_CHARS);
                while id.len() < PHP_ID_CHARS {
                    // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
                    let b = (rng.next_u32() & 0xff) as u8;
                    if b < 248 {
                        id.push(PHP_ALPHABET[usize::from(b % 62)] as char);
                    }
                }
                SessionId(id)
            }
        }
    }

    /// Parses an id a client sent; `None` for anything this format does not accept.
    pub fn parse(self, s: &str) -> Option<SessionId> {
        match self {
            IdFormat::Native => SessionId::parse(s),
            IdFormat::Php => ((PHP_ID_MIN..=PHP_ID_MAX).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'-'))
            .then(|| SessionId(s.to_owned())),
        }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// Hashes ids for logs with a salt, so that log lines about the same session can be correlated
/// while a leaked log cannot be turned back into live ids (a bare hash could be matched
/// against ids captured elsewhere).
#[derive(Clone)]
pub struct LogHasher {
    salt: Vec<u8>,
}

impl LogHasher {
    /// A hasher with a random salt: hashes correlate within this process only.
    pub fn random() -> Self {
        let mut salt = vec![0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self { salt }
    }

    /// A hasher with a fixed salt, so that several app nodes log the same hash for the same
    /// session. The salt should be a secret shared by those nodes.
    pub fn with_salt(salt: impl Into<Vec<u8>>) -> Self {
        Self { salt: salt.into() }
    }

    /// The first 64 bits of SHA-256(salt ‖ id), in hex. 64 bits is plenty to tell sessions
    /// apart in logs and short enough to read.
    pub fn hash(&self, id: &SessionId) -> String {
        self.hash_str(id.as_str())
    }

    /// As [`LogHasher::hash`], for a raw string a client sent that did not parse as an id.
    pub fn hash_str(&self, raw: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.salt);
        h.update(raw.as_bytes());
        let digest = h.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for LogHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogHasher(<salt redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_are_url_safe() {
        for _ in 0..100 {
            let id = SessionId::generate();
            assert_eq!(id.as_str().len(), ID_CHARS);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(SessionId::parse(id.as_str()), Some(id));
        }
    }

    #[test]
    fn ids_differ() {
        assert_ne!(SessionId::generate(), SessionId::generate());
    }

    #[test]
    fn parse_rejects_foreign_ids() {
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse("abc").is_none());
        assert!(SessionId::parse(&"a".repeat(31)).is_none());
        assert!(SessionId::parse(&"a".repeat(33)).is_none());
        // Right length, wrong alphabet.
        assert!(SessionId::parse(&format!("{}+", "a".repeat(31))).is_none());
        assert!(SessionId::parse(&format!("{};", "a".repeat(31))).is_none());
    }

    #[test]
    fn debug_does_not_leak() {
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(id.as_str()));
    }

    #[test]
    fn log_hash_is_salted_and_stable() {
        let id = SessionId::generate();
        let a = LogHasher::with_salt(b"one".to_vec());
        let b = LogHasher::with_salt(b"two".to_vec());
        assert_eq!(a.hash(&id), a.hash(&id));
        assert_ne!(a.hash(&id), b.hash(&id));
        assert_eq!(a.hash(&id).len(), 16);
        assert!(!a.hash(&id).contains(id.as_str()));
    }

    #[test]
    fn php_ids() {
        for _ in 0..100 {
            let id = IdFormat::Php.generate();
            assert_eq!(id.as_str().len(), 32);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(IdFormat::Php.parse(id.as_str()), Some(id));
        }
        // What PHP issues: 32 hex digits (4 bits per character), 26 of `[0-9a-v]`, `,` and `-`.
        for ok in [
            "0123456789abcdef0123456789abcdef",
            "abcdefghijklmnopqrstuv",
            "a,b-c0123456789012345678",
        ] {
            assert!(IdFormat::Php.parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "short",
            &"a".repeat(201),
            "0123456789abcdef0123456789abcde;",
            "0123456789abcdef0123456789abcde ",
        ] {
            assert!(IdFormat::Php.parse(bad).is_none(), "{bad}");
        }
    }
}
