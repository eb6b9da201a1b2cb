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

#![deny(missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessiond_session::SessionId;
use sha2::{Digest as _, Sha256};

/// A version tag hashed into every derived id, so a future change of scheme cannot read old
/// records by accident.
const DOMAIN: &[u8] = b"sessiond-tokens/v1";

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
}
