//! How this crate names its records in a [`sessiond_session::SessionStore`].
//!
//! The store contract addresses records by [`SessionId`], which must be 24 bytes written as
//! 32 URL-safe base64 characters. Revocation records, tickets' owners and per-login site
//! lists are found by a *name* instead (an issuer and a `jti`, a login id), so the name is
//! hashed into an id: the first 24 bytes of SHA-256 over a domain-separated encoding of its
//! parts. Two consequences, both intended:
//!
//! - the store, its logs and its key-space events never see a `jti`, user name or login id
//!   in clear;
//! - different kinds of record can never collide, because the kind is hashed in, and every
//!   part is length-prefixed, so `("ab", "c")` and `("a", "bc")` name different records.
//!
//! A random session id (192 bits from a CSPRNG) colliding with a derived one is as likely
//! as guessing a session id, so the records can share a store with ordinary sessions.
//!
//! Sharing a store also means a client can send one of these ids as its session cookie: a
//! ticket's id is in a URL, and a revocation's id is derived from claims the token holder
//! knows. So every record this crate writes is made by [`record`], which tags it with a
//! [`Record::kind`] (`sessiond-tokens/<kind>`); sessiond-session's layer never loads a
//! tagged record as a session, so it can neither read, write, touch nor delete one (a
//! logout cannot delete a revocation). Updates keep the tag, since they start from the
//! loaded record.

#![deny(missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessiond_session::{Record, SessionId};
use sha2::{Digest as _, Sha256};

/// A version tag hashed into every derived id, so a future change of scheme cannot read old
/// records by accident.
const DOMAIN: &[u8] = b"sessiond-tokens/v1";

/// What this crate's record kinds start with in [`Record::kind`].
pub const KIND_PREFIX: &str = "sessiond-tokens/";

/// A new record of `kind` (`jwt-jti`, `sso-ticket`, …) created at `now`, tagged so that it is
/// never taken for a session.
pub fn record(kind: &str, now: u64) -> Record {
    Record::new(now).with_kind(format!("{KIND_PREFIX}{kind}"))
}

/// Whether `record` was made by [`record`] with this `kind`.
pub fn is_kind(record: &Record, kind: &str) -> bool {
    record
        .kind
        .as_deref()
        .and_then(|k| k.strip_prefix(KIND_PREFIX))
        == Some(kind)
}

/// The store id of the record of `kind` named by `parts`.
pub fn derive(kind: &str, parts: &[&str]) -> SessionId {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    for part in std::iter::once(kind).chain(parts.iter().copied()) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let id = URL_SAFE_NO_PAD.encode(&digest[..24]);
    // 24 bytes always encode to 32 canonical characters, which is exactly what parse wants.
    SessionId::parse(&id).expect("a 24-byte digest is a valid session id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed_and_kinds_separate() {
        assert_eq!(derive("k", &["a", "b"]), derive("k", &["a", "b"]));
        assert_ne!(derive("k", &["ab", "c"]), derive("k", &["a", "bc"]));
        assert_ne!(derive("k", &["a"]), derive("j", &["a"]));
    }

    #[test]
    fn records_are_tagged_and_never_sessions() {
        let r = record("sso-ticket", 5);
        assert!(!r.is_session());
        assert!(is_kind(&r, "sso-ticket"));
        assert!(!is_kind(&r, "jwt-jti"));
        assert!(!is_kind(&Record::new(5), "sso-ticket"));
        assert_eq!(r.created_at, 5);
    }
}
