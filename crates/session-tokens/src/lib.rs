//! Three ways to carry a login that complement sessiond-session's server-side sessions:
//!
//! - [`sealed`]: **sealed-cookie sessions**. The whole session lives in the cookie, encrypted
//!   and authenticated with XChaCha20-Poly1305; no server state. Several keys (newest seals,
//!   all open), a key id byte in the cookie, the expiry sealed inside, a clear error past the
//!   browser's ~4 KB cookie limit, and a tampered cookie becomes a new empty session (logged
//!   under a salted hash, never raw).
//! - [`jwt`]: **JWT sessions** signed with Ed25519 (`EdDSA`) or `HS256`, following RFC 8725:
//!   every key is bound to exactly one algorithm, the accepted algorithms are an explicit list
//!   (`none` cannot even be named), `exp`, `nbf`, `iat`, `aud`, `iss` and `typ` are checked,
//!   keys have ids and rotate. Logout is real: a revoked `jti`, and a per-user not-before
//!   ("log out everywhere"), are kept in any [`sessiond_session::SessionStore`].
//! - [`sso`]: **a login carried across domains** the way that still works when browsers block
//!   third-party cookies: a top-level redirect to a login domain, a one-time ticket (single
//!   use, at most 30 s, bound to one site) redeemed server to server, a fresh first-party
//!   session on the app's own domain, and a central logout that reaches every app through
//!   signed back-channel logout tokens.
//!
//! Everything that depends on time takes it from a [`sessiond_session::Clock`] or an explicit
//! `now` (Unix milliseconds), so tests move time by hand instead of sleeping. Nothing here
//! opens a socket: HTTP calls between servers (ticket redemption, back-channel logout) are the
//! application's, with request and response bodies defined in [`sso`].
//!
//! # Modules
//!
//! [`sealed`] (the codec and its tower layer), [`jwt`] (keys, signing, validation,
//! revocation), [`sso`] (login authority and site side), and [`storeid`] (how this crate
//! names its records in a session store).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod jwt;
pub mod sealed;
pub mod sso;
pub mod storeid;

pub use jwt::{
    Algorithm, Claims, JwtError, JwtIssuer, JwtKey, JwtValidator, Revocations, SignedToken,
    VerifyKey,
};
pub use sealed::{
    SealError, SealKey, SealKeys, SealedConfig, SealedLayer, SealedSession, Sealer, Unsealed,
};
pub use sso::{
    AppSessions, LoginAuthority, RedeemRequest, RedeemResponse, SiteClient, SiteRegistration,
    Ticket, TicketError,
};
