//! JWT sessions following RFC 8725 (JWT Best Current Practices), with logout that works.
//!
//! - [`JwtIssuer`] signs compact JWS tokens with one [`JwtKey`]; [`JwtValidator`] checks them
//!   against a set of [`VerifyKey`]s found by `kid` (rotation: publish the new key to the
//!   validators first, then switch the issuer, and drop the old key once its tokens expired).
//! - Validation is a fixed sequence that fails closed:
//!   1. size (at most 8 KiB), shape (three base64url parts, canonical, unpadded);
//!   2. header: no duplicate members (RFC 8725 §2.6), no `crit` (we implement no extension),
//!      `alg` in the validator's allow-list (`none` cannot be expressed), a `kid` that names
//!      a known key, **and the key's own algorithm equal to `alg`** (§3.1; no key confusion);
//!      `jwk`, `jku`, `x5u`, `x5c` are never used to find a key (§3.10);
//!   3. the signature (Ed25519, or a constant-time HMAC comparison) and the claims' JSON, by
//!      the `jsonwebtoken` crate with the key the previous step chose;
//!   4. explicit typing: `typ` must be the validator's (§3.11), e.g. `at+jwt` for session
//!      tokens and `logout+jwt` for back-channel logout tokens, so one kind of token is never
//!      accepted as the other (§2.8, §3.12);
//!   5. claims: no duplicates; `iss` equal, `aud` containing ours (§3.8, §3.9); `exp`, `nbf`,
//!      `iat` against the clock with a small leeway; `sub` and `jti` present.
//! - [`Revocations`] makes logout real: a revoked `jti` is remembered in a
//!   [`sessiond_session::SessionStore`] until the token would have expired anyway, and "log
//!   out everywhere" stores a per-user not-before that refuses every token issued earlier.
//!   Records are keyed by a hash of `(iss, jti)` or `(iss, sub)`, never of the token bytes,
//!   which an attacker can re-encode.
//!
//! # What `jsonwebtoken` does and what stays here
//!
//! The compact serialization, signing and signature verification are the `jsonwebtoken`
//! crate's (RustCrypto backend, pure Rust). The policy around them stays here, because the
//! crate cannot express it: it takes its time from the system clock (no injectable clock, so
//! `exp`/`nbf`/`iat` are checked here against [`Clock`] with a millisecond leeway), it parses
//! `alg` into its own enum (so `none` would be an anonymous parse error, not
//! [`JwtError::AlgNone`]), it lets serde keep the last of a repeated JSON member that is not
//! a named field, it accepts `crit` and an `iss` array, and it has no `typ` check, no `kid`
//! lookup and no `iat` check. So a token
//! passes steps 1 and 2 here before the crate sees it, with the one key the `kid` names and
//! only that key's algorithm allowed, and steps 4 and 5 after.
//!
//! Its Ed25519 check is `ed25519-dalek`'s `verify` rather than `verify_strict`: both refuse
//! non-canonical `s` and `R` encodings; `verify_strict` also refuses small-order points,
//! which matters only for a small-order public key, and [`VerifyKey::ed25519`] refuses those.

#![deny(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use rand::RngCore as _;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sessiond_session::{Clock, StoreError, SystemClock};

mod keys;
mod revoke;

pub use keys::{Algorithm, JwtKey, VerifyKey};
pub use revoke::Revocations;

/// The longest token accepted, in bytes, checked before anything is decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The `typ` of session (access) tokens, from RFC 9068.
pub const TYP_SESSION: &str = "at+jwt";

/// Why a token was refused (or could not be made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, not JSON, too long, or with duplicate members.
    Malformed(&'static str),
    /// `alg` is `none`.
    AlgNone,
    /// An `alg` this crate does not implement.
    UnsupportedAlgorithm(String),
    /// An implemented `alg` that this validator does not allow.
    AlgorithmNotAllowed(Algorithm),
    /// No `kid`, or one that names no key.
    UnknownKey,
    /// The key named by `kid` is bound to another algorithm than the token's `alg`.
    KeyAlgorithmMismatch {
        /// The token's `alg`.
        token: Algorithm,
        /// The key's algorithm.
        key: Algorithm,
    },
    /// The header lists critical extensions.
    CriticalExtension,
    /// The signature does not verify.
    BadSignature,
    /// `typ` is missing or not the expected one.
    WrongType,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// `aud` does not contain this audience.
    WrongAudience,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (minus leeway).
    NotYetValid,
    /// `iat` is in the future (beyond leeway).
    IssuedInFuture,
    /// The token's `jti` was revoked (logout).
    Revoked,
    /// The user logged out everywhere after this token was issued.
    RevokedForUser,
    /// A claim the caller tried to set is one the issuer sets itself.
    ReservedClaim(String),
    /// A key was refused when it was configured.
    BadKey(String),
    /// The revocation store failed; the token is refused, since it cannot be checked.
    Store(String),
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed(why) => write!(f, "malformed token: {why}"),
            JwtError::AlgNone => f.write_str("unsigned token (alg none) refused"),
            JwtError::UnsupportedAlgorithm(a) => write!(f, "unsupported algorithm {a:?}"),
            JwtError::AlgorithmNotAllowed(a) => write!(f, "algorithm {} not allowed", a.as_str()),
            JwtError::UnknownKey => f.write_str("unknown or missing key id"),
            JwtError::KeyAlgorithmMismatch { token, key } => write!(
                f,
                "token says {} but its key is a {} key",
                token.as_str(),
                key.as_str()
            ),
            JwtError::CriticalExtension => f.write_str("critical header extension not supported"),
            JwtError::BadSignature => f.write_str("bad signature"),
            JwtError::WrongType => f.write_str("wrong token type"),
            JwtError::WrongIssuer => f.write_str("wrong issuer"),
            JwtError::WrongAudience => f.write_str("wrong audience"),
            JwtError::Expired => f.write_str("token expired"),
            JwtError::NotYetValid => f.write_str("token not yet valid"),
            JwtError::IssuedInFuture => f.write_str("token issued in the future"),
            JwtError::Revoked => f.write_str("token revoked"),
            JwtError::RevokedForUser => f.write_str("all tokens of this user revoked"),
            JwtError::ReservedClaim(c) => write!(f, "claim {c:?} is set by the issuer"),
            JwtError::BadKey(why) => write!(f, "key refused: {why}"),
            JwtError::Store(e) => write!(f, "revocation store unavailable: {e}"),
        }
    }
}

impl std::error::Error for JwtError {}

impl From<StoreError> for JwtError {
    fn from(e: StoreError) -> Self {
        JwtError::Store(e.to_string())
    }
}

/// `aud`: one audience or several (RFC 7519 §4.1.3). Serialized as a string when single.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(a) => Audience(vec![a]),
            OneOrMany::Many(a) => Audience(a),
        })
    }
}

/// The claims this crate issues and checks. Times are NumericDate (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry.
    pub exp: u64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at.
    pub iat: u64,
    /// Token id: what a logout revokes.
    pub jti: String,
    /// Session id at the issuer (a login), when the token belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Any other claims.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

const RESERVED: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"];

/// A token and the claims in it.
#[derive(Debug, Clone)]
pub struct SignedToken {
    /// The compact serialization, to send.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// Signs tokens with one key. Cheap to clone.
#[derive(Clone)]
pub struct JwtIssuer {
    key: Arc<JwtKey>,
    iss: String,
    typ: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("key", &self.key)
            .field("iss", &self.iss)
            .field("typ", &self.typ)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtIssuer {
    /// An issuer named `iss` signing session tokens (`typ` `at+jwt`) that live 15 minutes.
    /// Short by design: a revocation costs a store record for the token's remaining life.
    pub fn new(key: JwtKey, iss: &str) -> Self {
        Self {
            key: Arc::new(key),
            iss: iss.to_owned(),
            typ: TYP_SESSION.to_owned(),
            ttl: Duration::from_secs(15 * 60),
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the `typ` header (explicit typing, RFC 8725 §3.11).
    pub fn with_typ(mut self, typ: &str) -> Self {
        self.typ = typ.to_owned();
        self
    }

    /// Sets the lifetime.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Switches to a new signing key (rotation). Validators must know it first.
    pub fn rotate(&mut self, key: JwtKey) {
        self.key = Arc::new(key);
    }

    /// The lifetime of the tokens this issuer makes.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for `sub`, addressed to `aud`, optionally tied to the login `sid`, with
    /// `extra` claims (which may not use the names the issuer sets).
    pub fn issue(
        &self,
        sub: &str,
        aud: &str,
        sid: Option<&str>,
        extra: Map<String, Value>,
    ) -> Result<SignedToken, JwtError> {
        if let Some(k) = extra.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(JwtError::ReservedClaim(k.clone()));
        }
        let now_s = self.clock.now_ms() / 1000;
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            iss: self.iss.clone(),
            sub: sub.to_owned(),
            aud: Audience(vec![aud.to_owned()]),
            exp: now_s + self.ttl.as_secs(),
            nbf: Some(now_s),
            iat: now_s,
            jti: URL_SAFE_NO_PAD.encode(jti),
            sid: sid.map(str::to_owned),
            extra,
        };
        let token = sign(&self.key, &self.typ, &claims)?;
        Ok(SignedToken { token, claims })
    }
}

fn sign(key: &JwtKey, typ: &str, claims: &Claims) -> Result<String, JwtError> {
    let mut header = jsonwebtoken::Header::new(key.algorithm().jose());
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).map_err(|e| match e.kind() {
        ErrorKind::Json(_) => JwtError::Malformed("claims"),
        _ => JwtError::BadKey(e.to_string()),
    })
}

/// Checks tokens for one audience from one issuer. Cheap to clone.
#[derive(Clone)]
pub struct JwtValidator {
    keys: HashMap<String, VerifyKey>,
    allowed: HashSet<Algorithm>,
    iss: String,
    aud: String,
    typ: String,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("keys", &self.keys.values().collect::<Vec<_>>())
            .field("allowed", &self.allowed)
            .field("iss", &self.iss)
            .field("aud", &self.aud)
            .field("typ", &self.typ)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// A validator accepting tokens from `iss` for `aud`, of type `at+jwt`, signed with
    /// `EdDSA` only, with a 30 s leeway on times. Add keys with [`JwtValidator::with_key`].
    pub fn new(iss: &str, aud: &str) -> Self {
        Self {
            keys: HashMap::new(),
            allowed: HashSet::from([Algorithm::EdDSA]),
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            typ: TYP_SESSION.to_owned(),
            leeway: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }

    /// Adds a verification key. Refuses a `kid` that is already taken.
    pub fn with_key(mut self, key: VerifyKey) -> Result<Self, JwtError> {
        if self.keys.contains_key(key.kid()) {
            return Err(JwtError::BadKey(format!("kid {:?} used twice", key.kid())));
        }
        self.keys.insert(key.kid().to_owned(), key);
        Ok(self)
    }

    /// Removes a key (the end of a rotation).
    pub fn without_key(mut self, kid: &str) -> Self {
        self.keys.remove(kid);
        self
    }

    /// Replaces the algorithm allow-list.
    pub fn with_algorithms(mut self, algs: &[Algorithm]) -> Self {
        self.allowed = algs.iter().copied().collect();
        self
    }

    /// Sets the expected `typ`.
    pub fn with_typ(mut self, typ: &str) -> Self {
        self.typ = typ.to_owned();
        self
    }

    /// Sets the clock-skew leeway for `exp`, `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Validates `token` now. Does not consult revocations; see [`Revocations::check`].
    pub fn validate(&self, token: &str) -> Result<Claims, JwtError> {
        self.validate_at(token, self.clock.now_ms())
    }

    /// Validates `token` as of `now` (Unix ms).
    pub fn validate_at(&self, token: &str, now: u64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three parts"));
        };
        let header = decode_part(h64)?;
        no_duplicate_members(&header)?;
        let header: HeaderIn =
            serde_json::from_slice(&header).map_err(|_| JwtError::Malformed("header"))?;

        let alg = Algorithm::parse(&header.alg)?;
        if !self.allowed.contains(&alg) {
            return Err(JwtError::AlgorithmNotAllowed(alg));
        }
        if header.crit.is_some() {
            return Err(JwtError::CriticalExtension);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(JwtError::UnknownKey)?;
        if key.algorithm() != alg {
            return Err(JwtError::KeyAlgorithmMismatch {
                token: alg,
                key: key.algorithm(),
            });
        }
        // The signature, and the claims parsed, by the JOSE crate with the key chosen above
        // and its algorithm only. It parses the header again, more strictly typed (a `jwk`
        // that is not a JWK is refused here), but only its `alg` is used; `typ` and `kid` were
        // read above, from the header checked for duplicates.
        let claims =
            jsonwebtoken::decode::<Claims>(token, key.decoding_key(), key.signature_only())
                .map_err(|e| match e.kind() {
                    ErrorKind::InvalidSignature => JwtError::BadSignature,
                    ErrorKind::Base64(_) => JwtError::Malformed("not base64url"),
                    ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                        JwtError::Malformed("header or claims")
                    }
                    _ => JwtError::Malformed("refused by the JWS decoder"),
                })?
                .claims;

        // Authentic from here on; now check it is meant for us, and now.
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| typ_matches(t, &self.typ))
        {
            return Err(JwtError::WrongType);
        }
        // serde refused a repeated named claim already, but `extra` keeps the last of any
        // other; refuse every duplicate (see above).
        no_duplicate_members(&decode_part(p64)?)?;
        if claims.iss != self.iss {
            return Err(JwtError::WrongIssuer);
        }
        if !claims.aud.0.contains(&self.aud) {
            return Err(JwtError::WrongAudience);
        }
        let leeway = self.leeway.as_millis() as u64;
        if now >= (claims.exp.saturating_mul(1000)).saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.nbf
            && now.saturating_add(leeway) < nbf.saturating_mul(1000)
        {
            return Err(JwtError::NotYetValid);
        }
        if claims.iat.saturating_mul(1000) > now.saturating_add(leeway) {
            return Err(JwtError::IssuedInFuture);
        }
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return Err(JwtError::Malformed("empty sub or jti"));
        }
        Ok(claims)
    }
}

/// Where a request carries its token: `Authorization: Bearer <token>` first (APIs called
/// from other origins, which then need no cookie and no `credentials: "include"`), else the
/// cookie `cookie_name` if given (browser apps on the issuer's own site; the cookie should be
/// `HttpOnly`, `Secure`, `SameSite=Lax` or `Strict`, and state-changing requests then need
/// CSRF protection). Never both at once: a request with a malformed `Authorization` header
/// gets no token rather than falling back to the cookie.
pub fn token_from_headers<'h>(
    headers: &'h http::HeaderMap,
    cookie_name: Option<&str>,
) -> Option<&'h str> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?;
        let (scheme, token) = auth.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .then(|| token.trim());
    }
    let name = cookie_name?;
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `typ` comparison per RFC 7515 §4.1.9: case-insensitive, `application/` optional.
fn typ_matches(got: &str, want: &str) -> bool {
    let strip = |s: &str| {
        let lower = s.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    strip(got) == strip(want)
}

fn decode_part(part: &str) -> Result<Vec<u8>, JwtError> {
    // The engine refuses padding and non-canonical trailing bits: one token, one encoding.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("not base64url"))
}

/// Refuses a JSON object whose top level names a member twice. Parsers disagree on which
/// copy wins (RFC 8725 §2.6), so an attacker could show one value to a WAF and another to
/// us; with no duplicates there is nothing to disagree on.
fn no_duplicate_members(json: &[u8]) -> Result<(), JwtError> {
    struct Check;
    impl<'de> Visitor<'de> for Check {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    return Err(de::Error::custom("duplicate member"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    de.deserialize_map(Check)
        .and_then(|()| de.end())
        .map_err(|_| JwtError::Malformed("not a JSON object, or duplicate members"))
}

#[cfg(test)]
mod tests;
