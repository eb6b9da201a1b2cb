//! Sealed-cookie sessions: the session data itself travels in the cookie, encrypted and
//! authenticated, and the server keeps nothing.
//!
//! # The cookie
//!
//! ```text
//! value     = base64url-nopad( key_id (1 byte) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes) )
//! plaintext = format (1 byte, = 1) ‖ created_at (u64 BE, ms) ‖ expires_at (u64 BE, ms) ‖ JSON object
//! AAD       = "sessiond-tokens/sealed/v1" ‖ 0 ‖ key_id ‖ cookie name
//! ```
//!
//! - **XChaCha20-Poly1305** (RustCrypto `chacha20poly1305`, pure Rust). Its 192-bit nonce
//!   can be drawn at random for every cookie without a counter and without a realistic risk
//!   of reuse, which matters because many app nodes seal with the same key and share no
//!   state. AES-256-GCM's 96-bit nonce would need care past a few billion cookies per key.
//! - **Key rotation**: [`SealKeys`] holds several keys; the current one seals, every one
//!   opens. The key id byte is in clear so opening picks the key at once instead of trying
//!   all of them; it is also in the AAD, so it cannot be changed without detection. Removing
//!   a key ends every session sealed with it ([`SealError::UnknownKey`]).
//! - **Expiry inside**: `created_at` and `expires_at` are sealed, so a client cannot extend
//!   its session by keeping an old cookie or editing `Max-Age`; the cookie's own `Max-Age`
//!   (if any) is only a hint to the browser.
//! - **The cookie name is in the AAD**: a value sealed for one cookie does not open as
//!   another cookie that uses the same keys.
//! - **Size**: browsers guarantee about 4096 bytes per cookie, counting the name, the value
//!   and the attributes (RFC 6265 §6.1; larger cookies are dropped silently, which would log
//!   the user out with no error anywhere). [`Sealer::seal`] refuses anything that would
//!   exceed the configured budget with [`SealError::TooLarge`], saying how big it would be.
//!   The data is not compressed before encryption (RFC 8725 §3.6: length leaks content).
//!
//! What a sealed cookie cannot do: be revoked before its expiry (there is no server state to
//! delete; use the server-side sessions of sessiond-session, or [`crate::jwt`] with its
//! revocation list, where that matters), or hold more than about 3 KB of JSON.

#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use serde_json::{Map, Value};
use sessiond_session::{Clock, CookieConfig, LogHasher, SystemClock};

mod layer;

pub use layer::{MissingSealedLayer, SealedLayer, SealedService, SealedSession};

/// Bytes of the key id.
const KEY_ID_LEN: usize = 1;
/// Bytes of the XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag.
const TAG_LEN: usize = 16;
/// Bytes of the plaintext header: format, created_at, expires_at.
const HEADER_LEN: usize = 1 + 8 + 8;
/// The plaintext format this version writes and reads.
const FORMAT: u8 = 1;
/// The fixed part of the AAD.
const AAD_PREFIX: &[u8] = b"sessiond-tokens/sealed/v1\0";

/// What RFC 6265 §6.1 lets us count on per cookie: name, value and attributes together.
pub const COOKIE_LIMIT: usize = 4096;

/// A sealing key: 256 bits and the id byte that names it in the cookie.
#[derive(Clone)]
pub struct SealKey {
    id: u8,
    cipher: XChaCha20Poly1305,
}

impl SealKey {
    /// A key from 32 secret bytes (from a secrets manager, not a password: use a KDF first if
    /// all you have is a passphrase).
    pub fn new(id: u8, secret: [u8; 32]) -> Self {
        Self {
            id,
            cipher: XChaCha20Poly1305::new(&secret.into()),
        }
    }

    /// A fresh random key, for tests and single-process apps (cookies die with the process).
    pub fn generate(id: u8) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self::new(id, secret)
    }

    /// The id byte.
    pub fn id(&self) -> u8 {
        self.id
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealKey(id = {}, <secret redacted>)", self.id)
    }
}

/// The key ring: the current key seals, every key opens.
///
/// Rotation: add the new key as current and keep the old one as previous for at least the
/// session lifetime (cookies sealed with it stay valid), then remove it (they end).
#[derive(Clone, Debug)]
pub struct SealKeys {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl SealKeys {
    /// A ring with one key, which seals and opens.
    pub fn new(current: SealKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a key that only opens. Refuses an id that is already in the ring, because the id
    /// byte alone picks the key when opening.
    pub fn with_previous(mut self, key: SealKey) -> Result<Self, SealError> {
        if self.get(key.id).is_some() {
            return Err(SealError::DuplicateKeyId(key.id));
        }
        self.previous.push(key);
        Ok(self)
    }

    /// The key with this id.
    fn get(&self, id: u8) -> Option<&SealKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The sealed cookie would be `size` bytes (name, value and attributes), past `limit`.
    /// Nothing was stored: keep less in the session, or use server-side sessions.
    TooLarge {
        /// The size the cookie would have.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Not base64url, too short, or an unknown plaintext format.
    Malformed,
    /// Sealed with a key that is not (or no longer) in the ring.
    UnknownKey(u8),
    /// Authentication failed: the value was changed, or sealed for another cookie name.
    Tampered,
    /// Authentic, but past its sealed expiry.
    Expired {
        /// When it expired (Unix ms).
        at: u64,
    },
    /// Two keys in one ring share an id.
    DuplicateKeyId(u8),
    /// The data could not be turned into JSON.
    Data(String),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::TooLarge { size, limit } => write!(
                f,
                "sealed session cookie would be {size} bytes, over the {limit}-byte cookie limit; \
                 store less in the session or use a server-side session store"
            ),
            SealError::Malformed => f.write_str("sealed cookie is malformed"),
            SealError::UnknownKey(id) => write!(f, "sealed cookie uses unknown key id {id}"),
            SealError::Tampered => f.write_str("sealed cookie failed authentication"),
            SealError::Expired { at } => write!(f, "sealed cookie expired at {at} ms"),
            SealError::DuplicateKeyId(id) => write!(f, "key id {id} is used twice in the ring"),
            SealError::Data(e) => write!(f, "session data is not serializable: {e}"),
        }
    }
}

impl std::error::Error for SealError {}

/// An opened cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsealed {
    /// The session data.
    pub data: Map<String, Value>,
    /// When the session started (Unix ms); the absolute timeout counts from here.
    pub created_at: u64,
    /// When this cookie stops being valid (Unix ms).
    pub expires_at: u64,
    /// The key it was sealed with; not the current key means it should be sealed again.
    pub key_id: u8,
}

/// The codec: seals and opens cookie values for one cookie name. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sealer {
    keys: Arc<SealKeys>,
    name: String,
    /// Bytes the cookie's name, `=` and attributes take; the value gets the rest of `limit`.
    overhead: usize,
    limit: usize,
}

impl Sealer {
    /// A sealer for the cookie `name` whose attributes take `attribute_bytes` bytes on the
    /// `Set-Cookie` line, with the whole cookie limited to `limit` bytes.
    pub fn new(keys: SealKeys, name: &str, attribute_bytes: usize, limit: usize) -> Self {
        Self {
            keys: Arc::new(keys),
            name: name.to_owned(),
            overhead: name.len() + 1 + attribute_bytes,
            limit,
        }
    }

    /// How many bytes the cookie would take for `json_len` bytes of JSON data.
    pub fn cookie_size(&self, json_len: usize) -> usize {
        let raw = KEY_ID_LEN + NONCE_LEN + HEADER_LEN + json_len + TAG_LEN;
        // Unpadded base64: 4 characters per 3 bytes, rounded up.
        self.overhead + (raw * 4).div_ceil(3)
    }

    /// Checks that `data` fits, without sealing it.
    pub fn check_size(&self, data: &Map<String, Value>) -> Result<(), SealError> {
        let json = serde_json::to_vec(data).map_err(|e| SealError::Data(e.to_string()))?;
        self.fits(json.len())
    }

    fn fits(&self, json_len: usize) -> Result<(), SealError> {
        let size = self.cookie_size(json_len);
        if size > self.limit {
            return Err(SealError::TooLarge {
                size,
                limit: self.limit,
            });
        }
        Ok(())
    }

    fn aad(&self, key_id: u8) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 1 + self.name.len());
        aad.extend_from_slice(AAD_PREFIX);
        aad.push(key_id);
        aad.extend_from_slice(self.name.as_bytes());
        aad
    }

    /// Seals `data` with the current key.
    pub fn seal(
        &self,
        data: &Map<String, Value>,
        created_at: u64,
        expires_at: u64,
    ) -> Result<String, SealError> {
        let json = serde_json::to_vec(data).map_err(|e| SealError::Data(e.to_string()))?;
        self.fits(json.len())?;
        let mut plain = Vec::with_capacity(HEADER_LEN + json.len());
        plain.push(FORMAT);
        plain.extend_from_slice(&created_at.to_be_bytes());
        plain.extend_from_slice(&expires_at.to_be_bytes());
        plain.extend_from_slice(&json);

        let key = &self.keys.current;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = self.aad(key.id);
        let sealed = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            // Encryption only fails for messages past 256 GiB.
            .map_err(|_| SealError::Malformed)?;
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.push(key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a cookie value sent by a client, as of `now` (Unix ms).
    pub fn open(&self, value: &str, now: u64) -> Result<Unsealed, SealError> {
        // Refuse oversized input before decoding it: nothing we sealed is larger.
        if value.len() > self.limit {
            return Err(SealError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN + HEADER_LEN {
            return Err(SealError::Malformed);
        }
        let key_id = raw[0];
        let key = self.keys.get(key_id).ok_or(SealError::UnknownKey(key_id))?;
        let nonce = XNonce::from_slice(&raw[KEY_ID_LEN..KEY_ID_LEN + NONCE_LEN]);
        let aad = self.aad(key_id);
        let plain = key
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &raw[KEY_ID_LEN + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered)?;
        // Authentic from here on: anything odd is our own old or future format.
        if plain.len() < HEADER_LEN || plain[0] != FORMAT {
            return Err(SealError::Malformed);
        }
        let created_at = u64::from_be_bytes(plain[1..9].try_into().expect("8 bytes"));
        let expires_at = u64::from_be_bytes(plain[9..17].try_into().expect("8 bytes"));
        if now >= expires_at {
            return Err(SealError::Expired { at: expires_at });
        }
        let data: Map<String, Value> =
            serde_json::from_slice(&plain[HEADER_LEN..]).map_err(|_| SealError::Malformed)?;
        Ok(Unsealed {
            data,
            created_at,
            expires_at,
            key_id,
        })
    }

    /// Whether `key_id` is the key that seals now.
    pub fn is_current(&self, key_id: u8) -> bool {
        self.keys.current.id == key_id
    }
}

/// Configuration of [`SealedLayer`].
#[derive(Clone)]
pub struct SealedConfig {
    /// Cookie attributes (sessiond-session's type; same defaults: `id`, `Secure`,
    /// `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Max-Age`).
    pub cookie: CookieConfig,
    /// The keys.
    pub keys: SealKeys,
    /// Idle timeout: a cookie is valid this long after it was last sealed. Default 30 min.
    pub idle_timeout: Duration,
    /// Absolute timeout from the session's start, whatever the activity. Default 12 h.
    pub absolute_timeout: Option<Duration>,
    /// An unchanged session is sealed again (sliding its idle deadline) at most this often.
    /// Default 60 s.
    pub refresh_interval: Duration,
    /// The whole cookie's size limit. Default [`COOKIE_LIMIT`].
    pub cookie_limit: usize,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Salted hash for logging rejected cookies.
    pub log_hasher: LogHasher,
}

impl fmt::Debug for SealedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedConfig")
            .field("cookie", &self.cookie)
            .field("keys", &self.keys)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("refresh_interval", &self.refresh_interval)
            .field("cookie_limit", &self.cookie_limit)
            .finish_non_exhaustive()
    }
}

impl SealedConfig {
    /// Defaults around these keys.
    pub fn new(keys: SealKeys) -> Self {
        Self {
            cookie: CookieConfig::default(),
            keys,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Some(Duration::from_secs(12 * 3600)),
            refresh_interval: Duration::from_secs(60),
            cookie_limit: COOKIE_LIMIT,
            clock: Arc::new(SystemClock),
            log_hasher: LogHasher::random(),
        }
    }

    /// Sets the cookie attributes.
    pub fn with_cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = cookie;
        self
    }

    /// Sets the idle timeout.
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }

    /// Sets (or with `None` disables) the absolute timeout.
    pub fn with_absolute_timeout(mut self, t: Option<Duration>) -> Self {
        self.absolute_timeout = t;
        self
    }

    /// Sets the cookie size limit.
    pub fn with_cookie_limit(mut self, limit: usize) -> Self {
        self.cookie_limit = limit;
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the log hasher.
    pub fn with_log_hasher(mut self, hasher: LogHasher) -> Self {
        self.log_hasher = hasher;
        self
    }

    /// The sealer for this configuration's cookie name, attributes and limit.
    pub fn sealer(&self) -> Sealer {
        let attributes = layer::attributes(&self.cookie, self.cookie.max_age);
        Sealer::new(
            self.keys.clone(),
            &self.cookie.full_name(),
            attributes.len(),
            self.cookie_limit,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000_000;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn sealer(keys: SealKeys) -> Sealer {
        Sealer::new(keys, "id", 40, COOKIE_LIMIT)
    }

    #[test]
    fn round_trip_and_fresh_nonce_every_time() {
        let s = sealer(SealKeys::new(SealKey::generate(1)));
        let d = data(json!({"user": "alice", "n": 3}));
        let a = s.seal(&d, NOW, NOW + 1000).unwrap();
        let b = s.seal(&d, NOW, NOW + 1000).unwrap();
        assert_ne!(a, b, "a nonce must never repeat");
        let open = s.open(&a, NOW + 999).unwrap();
        assert_eq!(open.data, d);
        assert_eq!(
            (open.created_at, open.expires_at, open.key_id),
            (NOW, NOW + 1000, 1)
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let s = sealer(SealKeys::new(SealKey::generate(1)));
        let sealed = s
            .seal(&data(json!({"admin": false})), NOW, NOW + 1000)
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 1..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let err = s.open(&URL_SAFE_NO_PAD.encode(&bad), NOW).unwrap_err();
            assert_eq!(err, SealError::Tampered, "byte {i}");
        }
        // The key id byte: another id is unknown, and is in the AAD anyway.
        let mut bad = raw.clone();
        bad[0] = 9;
        assert_eq!(
            s.open(&URL_SAFE_NO_PAD.encode(&bad), NOW),
            Err(SealError::UnknownKey(9))
        );
        assert_eq!(s.open("not base64!", NOW), Err(SealError::Malformed));
        assert_eq!(s.open("AAAA", NOW), Err(SealError::Malformed));
    }

    #[test]
    fn key_id_byte_is_authenticated() {
        // Two keys with the same secret under different ids: moving a cookie to the other id
        // must still fail, because the id is in the AAD.
        let secret = [7u8; 32];
        let keys = SealKeys::new(SealKey::new(1, secret))
            .with_previous(SealKey::new(2, secret))
            .unwrap();
        let s = sealer(keys);
        let sealed = s.seal(&Map::new(), NOW, NOW + 1000).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        raw[0] = 2;
        assert_eq!(
            s.open(&URL_SAFE_NO_PAD.encode(&raw), NOW),
            Err(SealError::Tampered)
        );
    }

    #[test]
    fn cookie_name_is_bound() {
        let keys = SealKeys::new(SealKey::new(1, [3u8; 32]));
        let a = Sealer::new(keys.clone(), "cart", 0, COOKIE_LIMIT);
        let b = Sealer::new(keys, "id", 0, COOKIE_LIMIT);
        let sealed = a
            .seal(&data(json!({"admin": true})), NOW, NOW + 1000)
            .unwrap();
        assert_eq!(b.open(&sealed, NOW), Err(SealError::Tampered));
    }

    #[test]
    fn rotation_new_key_seals_old_key_opens_removed_key_fails() {
        let old = SealKey::generate(1);
        let new = SealKey::generate(2);
        let before = sealer(SealKeys::new(old.clone()));
        let old_cookie = before
            .seal(&data(json!({"u": 1})), NOW, NOW + 1000)
            .unwrap();

        let during = sealer(SealKeys::new(new.clone()).with_previous(old).unwrap());
        let opened = during.open(&old_cookie, NOW).unwrap();
        assert_eq!(opened.key_id, 1);
        assert!(!during.is_current(opened.key_id));
        let new_cookie = during.seal(&opened.data, NOW, NOW + 1000).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&new_cookie).unwrap()[0], 2);

        let after = sealer(SealKeys::new(new));
        assert_eq!(after.open(&old_cookie, NOW), Err(SealError::UnknownKey(1)));
        assert!(after.open(&new_cookie, NOW).is_ok());
    }

    #[test]
    fn duplicate_key_ids_are_refused() {
        let err = SealKeys::new(SealKey::generate(1))
            .with_previous(SealKey::generate(1))
            .unwrap_err();
        assert_eq!(err, SealError::DuplicateKeyId(1));
    }

    #[test]
    fn expiry_is_sealed_inside() {
        let s = sealer(SealKeys::new(SealKey::generate(1)));
        let sealed = s.seal(&Map::new(), NOW, NOW + 1000).unwrap();
        assert!(s.open(&sealed, NOW + 999).is_ok());
        assert_eq!(
            s.open(&sealed, NOW + 1000),
            Err(SealError::Expired { at: NOW + 1000 })
        );
    }

    #[test]
    fn too_large_is_a_clear_error_and_the_limit_is_exact() {
        let s = sealer(SealKeys::new(SealKey::generate(1)));
        let big = data(json!({"blob": "x".repeat(4000)}));
        let err = s.seal(&big, NOW, NOW + 1000).unwrap_err();
        let SealError::TooLarge { size, limit } = err.clone() else {
            panic!("{err:?}");
        };
        assert!(size > limit && limit == COOKIE_LIMIT);
        assert!(err.to_string().contains("4096-byte cookie limit"), "{err}");

        // The computed size is the real size, so the largest value that fits does fit.
        let mut n = 0;
        while s.check_size(&data(json!({"b": "x".repeat(n + 1)}))).is_ok() {
            n += 1;
        }
        let fits = data(json!({"b": "x".repeat(n)}));
        let sealed = s.seal(&fits, NOW, NOW + 1000).unwrap();
        let total = "id".len() + 1 + 40 + sealed.len();
        assert!(total <= COOKIE_LIMIT && total > COOKIE_LIMIT - 4, "{total}");
    }
}
