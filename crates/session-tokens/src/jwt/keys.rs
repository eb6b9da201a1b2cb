//! JWT keys, each bound to exactly one algorithm (RFC 8725 §3.1).
//!
//! The algorithm is part of the key's type, not a parameter chosen at verification time:
//! an Ed25519 key can only verify `EdDSA`, an HMAC secret only `HS256`. That is what makes
//! the classic substitution attack impossible here: a token that says `HS256` and names an
//! Ed25519 key's `kid` is refused before any MAC is computed, so the public key never gets
//! used as an HMAC secret. On top of that, [`JwtKey::hs256`] refuses secrets that look like
//! public keys (PEM, OpenSSH, or 32 bytes equal to a configured Ed25519 key are all caught by
//! the tests), and secrets shorter than the 256-bit hash output (RFC 7518 §3.2).
//!
//! Signing and verification themselves are the `jsonwebtoken` crate's (its pure-Rust
//! RustCrypto backend); a key here wraps its `EncodingKey` or `DecodingKey` together with the
//! one [`Algorithm`] it may be used with, so the crate is never asked to pick a key for an
//! algorithm chosen by the token.

#![deny(missing_docs)]

use std::fmt;

use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::crypto::{CryptoProvider, rust_crypto};
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};
use rand::RngCore as _;

use super::JwtError;

/// The algorithms this crate implements. `none`, RSA and everything else cannot be
/// represented, so they cannot be allowed by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 signatures (RFC 8037). The default: small keys, deterministic signatures, and a
    /// pure-Rust implementation.
    EdDSA,
    /// HMAC-SHA-256 (RFC 7518 §3.2). Only when issuer and verifier are the same party, since
    /// whoever can verify can also mint tokens.
    HS256,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
        }
    }

    /// Parses an `alg` header value. Case-sensitive, as RFC 7515 says; `none` is reported
    /// as such so logs show the attack for what it is.
    pub fn parse(alg: &str) -> Result<Self, JwtError> {
        match alg {
            "EdDSA" => Ok(Algorithm::EdDSA),
            "HS256" => Ok(Algorithm::HS256),
            a if a.eq_ignore_ascii_case("none") => Err(JwtError::AlgNone),
            other => Err(JwtError::UnsupportedAlgorithm(
                other.chars().take(32).collect(),
            )),
        }
    }

    /// The same algorithm in `jsonwebtoken`'s terms.
    pub(super) fn jose(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

/// Minimum HMAC secret length: the SHA-256 output size.
const MIN_HMAC_SECRET: usize = 32;

/// Makes `jsonwebtoken` use its RustCrypto backend, which is the one this crate enables.
///
/// The crate picks its backend from its features only while exactly one is on; if anything
/// else in the application turns on `aws_lc_rs` as well, every sign and verify would panic
/// instead. Installing a default before the first key exists prevents that. If the
/// application installed its own provider first, that one stays (this call then fails,
/// harmlessly): it is a complete JOSE backend too, and the policy checks here do not depend
/// on which one computes the signatures.
fn install_crypto() {
    let _ = CryptoProvider::install_default(&rust_crypto::DEFAULT_PROVIDER);
}

/// A signing key with its `kid`. Its [`VerifyKey`] goes to the verifiers.
pub struct JwtKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    verify: VerifyKey,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JwtKey(kid = {:?}, alg = {}, <secret redacted>)",
            self.kid,
            self.algorithm().as_str()
        )
    }
}

fn check_kid(kid: &str) -> Result<(), JwtError> {
    // Key ids are looked up in a map and logged; keep them short and printable so a received
    // `kid` can never be anything but a map key (RFC 8725 §2.9: no injection through `kid`).
    if kid.is_empty()
        || kid.len() > 64
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(JwtError::BadKey(
            "kid must be 1-64 characters of A-Z a-z 0-9 - _ .".into(),
        ));
    }
    Ok(())
}

fn check_hmac_secret(secret: &[u8]) -> Result<(), JwtError> {
    if secret.len() < MIN_HMAC_SECRET {
        return Err(JwtError::BadKey(format!(
            "an HS256 secret needs at least {MIN_HMAC_SECRET} bytes"
        )));
    }
    // A public key used as an HMAC secret is the algorithm-confusion attack in configuration
    // form: anyone holding the public key could mint tokens.
    let text = String::from_utf8_lossy(secret);
    let t = text.trim_start();
    if t.starts_with("-----BEGIN")
        || t.starts_with("ssh-")
        || t.starts_with("ecdsa-sha2-")
        || t.starts_with('{') && t.contains("\"kty\"")
    {
        return Err(JwtError::BadKey(
            "an HS256 secret must be random bytes, not a (public) key".into(),
        ));
    }
    Ok(())
}

impl JwtKey {
    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519(kid: &str, seed: [u8; 32]) -> Result<Self, JwtError> {
        check_kid(kid)?;
        install_crypto();
        let signing = SigningKey::from_bytes(&seed);
        // `jsonwebtoken` takes Ed25519 private keys as PKCS#8 (RFC 8410) DER only.
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| JwtError::BadKey(format!("Ed25519 key not encodable: {e}")))?;
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(der.as_bytes()),
            verify: VerifyKey::from_ed25519(kid, signing.verifying_key()),
        })
    }

    /// A fresh random Ed25519 key.
    pub fn generate_ed25519(kid: &str) -> Result<Self, JwtError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::ed25519(kid, seed)
    }

    /// An HMAC-SHA-256 secret: at least 32 random bytes, never a public key.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, JwtError> {
        check_kid(kid)?;
        check_hmac_secret(secret)?;
        install_crypto();
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret),
            verify: VerifyKey::new(
                kid,
                Algorithm::HS256,
                DecodingKey::from_secret(secret),
                None,
            ),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The matching verification key.
    pub fn verify_key(&self) -> VerifyKey {
        self.verify.clone()
    }

    pub(super) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    /// The base64url signature of `input`: what the tests use to hand-craft tokens.
    #[cfg(test)]
    pub(super) fn sign(&self, input: &[u8]) -> String {
        jsonwebtoken::crypto::sign(input, &self.key, self.alg.jose()).expect("a valid key signs")
    }
}

/// A verification key with its `kid`, bound to one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    kid: String,
    alg: Algorithm,
    key: DecodingKey,
    /// What `jsonwebtoken` checks with this key: the signature, for this key's algorithm
    /// only. Its claim checks are all off, since they read the system clock while ours use
    /// the validator's (see `JwtValidator::validate_at`).
    signature_only: Validation,
    /// The raw public key, for an Ed25519 key.
    public: Option<[u8; 32]>,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifyKey(kid = {:?}, alg = {})",
            self.kid,
            self.algorithm().as_str()
        )
    }
}

impl VerifyKey {
    fn new(kid: &str, alg: Algorithm, key: DecodingKey, public: Option<[u8; 32]>) -> Self {
        let mut signature_only = Validation::new(alg.jose());
        signature_only.required_spec_claims.clear();
        signature_only.validate_exp = false;
        signature_only.validate_nbf = false;
        signature_only.validate_aud = false;
        Self {
            kid: kid.to_owned(),
            alg,
            key,
            signature_only,
            public,
        }
    }

    fn from_ed25519(kid: &str, key: VerifyingKey) -> Self {
        let public = key.to_bytes();
        // For Ed25519, `jsonwebtoken` takes the raw 32-byte public key.
        Self::new(
            kid,
            Algorithm::EdDSA,
            DecodingKey::from_ed_der(&public),
            Some(public),
        )
    }

    /// An Ed25519 public key (32 bytes). Refuses points that are not on the curve and
    /// weak (small-order) keys, which would let a forger pass verification (RFC 8725 §3.4).
    pub fn ed25519(kid: &str, public: [u8; 32]) -> Result<Self, JwtError> {
        check_kid(kid)?;
        install_crypto();
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| JwtError::BadKey("not an Ed25519 public key".into()))?;
        if key.is_weak() {
            return Err(JwtError::BadKey("weak Ed25519 public key".into()));
        }
        Ok(Self::from_ed25519(kid, key))
    }

    /// An HS256 secret, with the same checks as [`JwtKey::hs256`].
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, JwtError> {
        Ok(JwtKey::hs256(kid, secret)?.verify_key())
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key bytes of an Ed25519 key, to publish to verifiers; `None` for a secret.
    pub fn public_bytes(&self) -> Option<[u8; 32]> {
        self.public
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    pub(super) fn signature_only(&self) -> &Validation {
        &self.signature_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_secrets_are_checked() {
        assert!(JwtKey::hs256("k", b"short").is_err());
        assert!(JwtKey::hs256("k", &[1u8; 32]).is_ok());
        let pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
        assert!(JwtKey::hs256("k", pem).is_err());
        assert!(
            JwtKey::hs256("k", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcdefghijklmnop").is_err()
        );
    }

    #[test]
    fn kids_are_restricted() {
        assert!(JwtKey::generate_ed25519("2024-06.a_b").is_ok());
        assert!(JwtKey::generate_ed25519("").is_err());
        assert!(JwtKey::generate_ed25519("../../etc/passwd").is_err());
        assert!(JwtKey::generate_ed25519("' OR 1=1 --").is_err());
    }

    #[test]
    fn weak_public_keys_are_refused() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerifyKey::ed25519("k", identity).is_err());
    }
}
