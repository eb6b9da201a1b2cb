//! Attacks on the validator and the revocation list, one test each, with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};
use sessiond_session::{ManualClock, MemoryStore, SessionStore};
use sha2::Sha256;

use super::*;

const T0: u64 = 1_700_000_000_000;

/// A real RSA-2048 public key (generated with openssl for this test; the private half was
/// discarded). A verifier that treats public keys as HMAC secrets would accept tokens MACed
/// with these bytes.
const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxLA6F+OBu9HL2poygGJ7
vzcdKshKvXNPh/Tu7jJQy6yzwgRKhPbJeMzARxlUXGyYiwEh8Bq8NKSHggjIvO3X
UW1eeFaKZL+wirbilKfr7WGr4HICPNeG0gQAPB3JVNEn0XgepB2m4dN6fKWOrkRh
JjgeDUH810wrSl1A7UHiPj/vZLpAcZxw+EyYvN4GUsuz7RSqhDzf5ZVJxv0KNmPp
JrGqP6x/XNLpMYI0a/UNc4vvt8K9R+58Muai8+xBbBGjfFfxlbNunZKU119rsSsL
aCTdI5VFPU/+g+6MXWeagl4IlvMsweSb3z+gwLlMVS+vv5yP7ync21heMX2Hctuy
OQIDAQAB
-----END PUBLIC KEY-----
";

/// A real P-256 public key, same purpose.
const EC_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuoIj83q2GQJnUe78ixafCmW5taw5
QVkNV8w/DGZAu+e3XYZh5All7lENsBIcQar14zBKByxA3jmDJKODA+8u1Q==
-----END PUBLIC KEY-----
";

struct Fixture {
    clock: ManualClock,
    issuer: JwtIssuer,
    validator: JwtValidator,
    ed_public: [u8; 32],
}

fn fixture() -> Fixture {
    let clock = ManualClock::new(T0);
    let key = JwtKey::ed25519("ed-1", [42u8; 32]).unwrap();
    let vk = key.verify_key();
    let ed_public = vk.public_bytes().unwrap();
    let issuer = JwtIssuer::new(key, "https://login.test").with_clock(Arc::new(clock.clone()));
    let validator = JwtValidator::new("https://login.test", "b.test")
        .with_key(vk)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    Fixture {
        clock,
        issuer,
        validator,
        ed_public,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn good_claims() -> Value {
    let now = T0 / 1000;
    json!({"iss": "https://login.test", "sub": "alice", "aud": "b.test",
           "exp": now + 600, "iat": now, "nbf": now, "jti": "j1"})
}

#[test]
fn a_good_token_passes() {
    let f = fixture();
    let t = f
        .issuer
        .issue("alice", "b.test", Some("s1"), Map::new())
        .unwrap();
    let c = f.validator.validate(&t.token).unwrap();
    assert_eq!(c, t.claims);
    assert_eq!(c.sid.as_deref(), Some("s1"));
}

#[test]
fn alg_none_is_refused_in_every_spelling() {
    let f = fixture();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "ed-1"});
        for sig in ["", "AAAA"] {
            let token = format!("{}.{}.{sig}", b64(&header), b64(&good_claims()));
            assert_eq!(
                f.validator.validate(&token),
                Err(JwtError::AlgNone),
                "{alg}"
            );
        }
    }
    // Even a validator that allows everything it can express cannot allow none.
    let all = f
        .validator
        .clone()
        .with_algorithms(&[Algorithm::EdDSA, Algorithm::HS256]);
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&good_claims())
    );
    assert_eq!(all.validate(&token), Err(JwtError::AlgNone));
}

#[test]
fn hs256_signed_with_a_public_key_is_refused() {
    let f = fixture();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "ed-1"});
    let secrets: Vec<Vec<u8>> = vec![
        RSA_PUBLIC_PEM.as_bytes().to_vec(),
        EC_PUBLIC_PEM.as_bytes().to_vec(),
        f.ed_public.to_vec(),
        URL_SAFE_NO_PAD.encode(f.ed_public).into_bytes(),
    ];
    // With the default allow-list (EdDSA only) HS256 is refused outright...
    for s in &secrets {
        let token = hs256(s, &header, &good_claims());
        assert_eq!(
            f.validator.validate(&token),
            Err(JwtError::AlgorithmNotAllowed(Algorithm::HS256))
        );
    }
    // ...and even where HS256 is allowed (an HS key exists too), the Ed25519 key's kid
    // cannot be used with HS256: the key is bound to EdDSA.
    let both = f
        .validator
        .clone()
        .with_algorithms(&[Algorithm::EdDSA, Algorithm::HS256])
        .with_key(VerifyKey::hs256("hs-1", &[9u8; 32]).unwrap())
        .unwrap();
    for s in &secrets {
        let token = hs256(s, &header, &good_claims());
        assert_eq!(
            both.validate(&token),
            Err(JwtError::KeyAlgorithmMismatch {
                token: Algorithm::HS256,
                key: Algorithm::EdDSA
            })
        );
        // Pointing at the real HS key does not help without its secret.
        let hs_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs-1"});
        let token = hs256(s, &hs_header, &good_claims());
        assert_eq!(both.validate(&token), Err(JwtError::BadSignature));
    }
    // And an operator cannot configure a PEM public key as an HS256 secret.
    assert!(matches!(
        VerifyKey::hs256("x", RSA_PUBLIC_PEM.as_bytes()),
        Err(JwtError::BadKey(_))
    ));
    assert!(matches!(
        VerifyKey::hs256("x", EC_PUBLIC_PEM.as_bytes()),
        Err(JwtError::BadKey(_))
    ));
}

#[test]
fn rs256_and_es256_are_not_even_parsed() {
    let f = fixture();
    for alg in ["RS256", "ES256", "PS256", "HS512"] {
        let token = format!(
            "{}.{}.AAAA",
            b64(&json!({"alg": alg, "typ": "at+jwt", "kid": "ed-1"})),
            b64(&good_claims())
        );
        assert_eq!(
            f.validator.validate(&token),
            Err(JwtError::UnsupportedAlgorithm(alg.into()))
        );
    }
}

#[test]
fn expired_tokens_are_refused_after_the_leeway() {
    let f = fixture();
    let t = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    f.clock.advance(f.issuer.ttl());
    assert!(f.validator.validate(&t.token).is_ok(), "inside the leeway");
    f.clock.advance(f.validator.leeway());
    assert_eq!(f.validator.validate(&t.token), Err(JwtError::Expired));
}

#[test]
fn wrong_audience_and_issuer_are_refused() {
    let f = fixture();
    let t = f.issuer.issue("alice", "a.test", None, Map::new()).unwrap();
    assert_eq!(f.validator.validate(&t.token), Err(JwtError::WrongAudience));
    let other = JwtValidator::new("https://evil.test", "a.test")
        .with_key(JwtKey::ed25519("ed-1", [42u8; 32]).unwrap().verify_key())
        .unwrap()
        .with_clock(Arc::new(f.clock.clone()));
    assert_eq!(other.validate(&t.token), Err(JwtError::WrongIssuer));
}

#[test]
fn not_yet_valid_and_future_iat_are_refused() {
    let f = fixture();
    let t = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let early = T0 - 60_000;
    assert_eq!(
        f.validator.validate_at(&t.token, early),
        Err(JwtError::NotYetValid)
    );
    // No nbf, iat in the future.
    let f2 = fixture();
    let key = JwtKey::ed25519("ed-1", [42u8; 32]).unwrap();
    let mut claims: Claims = serde_json::from_value(good_claims()).unwrap();
    claims.nbf = None;
    claims.iat = T0 / 1000 + 3600;
    let token = sign(&key, "at+jwt", &claims).unwrap();
    assert_eq!(f2.validator.validate(&token), Err(JwtError::IssuedInFuture));
}

#[test]
fn explicit_typing_keeps_token_kinds_apart() {
    let f = fixture();
    let logout = f
        .issuer
        .clone()
        .with_typ("logout+jwt")
        .issue("alice", "b.test", None, Map::new())
        .unwrap();
    assert_eq!(
        f.validator.validate(&logout.token),
        Err(JwtError::WrongType)
    );
    let as_logout = f.validator.clone().with_typ("logout+jwt");
    assert!(as_logout.validate(&logout.token).is_ok());
    let t = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    assert_eq!(as_logout.validate(&t.token), Err(JwtError::WrongType));
    assert!(typ_matches("application/AT+JWT", "at+jwt"));
}

#[test]
fn changed_claims_and_signatures_fail() {
    let f = fixture();
    let t = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let parts: Vec<&str> = t.token.split('.').collect();
    let mut claims = serde_json::to_value(&t.claims).unwrap();
    claims["sub"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_eq!(f.validator.validate(&forged), Err(JwtError::BadSignature));
    // Padding or a second encoding of the same signature is refused before verification.
    let padded = format!("{}=", t.token);
    assert!(matches!(
        f.validator.validate(&padded),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(
        f.validator.validate("a.b"),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(
        f.validator.validate(&"a".repeat(MAX_TOKEN_BYTES + 1)),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn duplicate_members_and_crit_are_refused() {
    let f = fixture();
    let key = JwtKey::ed25519("ed-1", [42u8; 32]).unwrap();
    // Hand-made JSON with "sub" twice, correctly signed.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"}"#);
    let now = T0 / 1000;
    let payload = format!(
        r#"{{"iss":"https://login.test","sub":"alice","sub":"admin","aud":"b.test","exp":{},"iat":{now},"jti":"j"}}"#,
        now + 60
    );
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let token = format!("{input}.{}", key.sign(input.as_bytes()));
    assert!(matches!(
        f.validator.validate(&token),
        Err(JwtError::Malformed(_))
    ));
    // An application claim twice ("role", which lands in `extra`, where serde alone would keep
    // the last one), and a header member twice.
    let payload = format!(
        r#"{{"iss":"https://login.test","sub":"alice","aud":"b.test","exp":{},"iat":{now},"jti":"j","role":"user","role":"admin"}}"#,
        now + 60
    );
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let token = format!("{input}.{}", key.sign(input.as_bytes()));
    assert_eq!(
        f.validator.validate(&token),
        Err(JwtError::Malformed(
            "not a JSON object, or duplicate members"
        ))
    );
    let twice =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"nobody","kid":"ed-1"}"#);
    let input = format!("{twice}.{}", b64(&good_claims()));
    let token = format!("{input}.{}", key.sign(input.as_bytes()));
    assert_eq!(
        f.validator.validate(&token),
        Err(JwtError::Malformed(
            "not a JSON object, or duplicate members"
        ))
    );

    let header = URL_SAFE_NO_PAD
        .encode(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1","crit":["exp"],"exp":1}"#);
    let input = format!("{header}.{}", b64(&good_claims()));
    let token = format!("{input}.{}", key.sign(input.as_bytes()));
    assert_eq!(
        f.validator.validate(&token),
        Err(JwtError::CriticalExtension)
    );
}

#[test]
fn unknown_or_missing_kid_is_refused_and_jwk_header_is_ignored() {
    let f = fixture();
    let attacker = JwtKey::ed25519("ed-1", [7u8; 32]).unwrap();
    let mut claims: Claims = serde_json::from_value(good_claims()).unwrap();
    claims.jti = "x".into();
    // The attacker embeds its own key in the header; it must not be used.
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1",
        "jwk": {"kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(attacker.verify_key().public_bytes().unwrap())}});
    let input = format!(
        "{}.{}",
        b64(&header),
        b64(&serde_json::to_value(&claims).unwrap())
    );
    let token = format!("{input}.{}", attacker.sign(input.as_bytes()));
    assert_eq!(f.validator.validate(&token), Err(JwtError::BadSignature));

    let other = JwtKey::ed25519("ed-2", [7u8; 32]).unwrap();
    let token = sign(&other, "at+jwt", &claims).unwrap();
    assert_eq!(f.validator.validate(&token), Err(JwtError::UnknownKey));
    let header = json!({"alg": "EdDSA", "typ": "at+jwt"});
    let input = format!("{}.{}", b64(&header), b64(&good_claims()));
    let token = format!("{input}.{}", other.sign(input.as_bytes()));
    assert_eq!(f.validator.validate(&token), Err(JwtError::UnknownKey));
}

#[test]
fn key_rotation() {
    let f = fixture();
    let old_token = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let new_key = JwtKey::ed25519("ed-2", [43u8; 32]).unwrap();
    // Validators learn the new key first; then the issuer switches.
    let v = f.validator.clone().with_key(new_key.verify_key()).unwrap();
    let mut issuer = f.issuer.clone();
    issuer.rotate(new_key);
    let new_token = issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    assert!(v.validate(&old_token.token).is_ok());
    assert!(v.validate(&new_token.token).is_ok());
    assert_eq!(
        f.validator.validate(&new_token.token),
        Err(JwtError::UnknownKey)
    );
    // Once the old tokens have expired, the old key goes.
    let v = v.without_key("ed-1");
    assert_eq!(v.validate(&old_token.token), Err(JwtError::UnknownKey));
    assert!(v.validate(&new_token.token).is_ok());
}

#[test]
fn hs256_works_when_allowed() {
    let clock = ManualClock::new(T0);
    let key = JwtKey::hs256("hs-1", &[5u8; 32]).unwrap();
    let v = JwtValidator::new("me", "me")
        .with_algorithms(&[Algorithm::HS256])
        .with_key(key.verify_key())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let issuer = JwtIssuer::new(key, "me").with_clock(Arc::new(clock));
    let t = issuer.issue("bob", "me", None, Map::new()).unwrap();
    assert!(v.validate(&t.token).is_ok());
    let wrong = JwtValidator::new("me", "me")
        .with_algorithms(&[Algorithm::HS256])
        .with_key(VerifyKey::hs256("hs-1", &[6u8; 32]).unwrap())
        .unwrap();
    assert_eq!(wrong.validate_at(&t.token, T0), Err(JwtError::BadSignature));
}

#[test]
fn reserved_claims_cannot_be_smuggled_through_extra() {
    let f = fixture();
    let mut extra = Map::new();
    extra.insert("aud".into(), json!("a.test"));
    assert_eq!(
        f.issuer.issue("alice", "b.test", None, extra).unwrap_err(),
        JwtError::ReservedClaim("aud".into())
    );
}

fn revocations(f: &Fixture) -> (Revocations, MemoryStore) {
    let store = MemoryStore::with_clock(Arc::new(f.clock.clone()));
    let r = Revocations::new(Arc::new(store.clone()), f.validator.clone(), f.issuer.ttl());
    (r, store)
}

#[tokio::test]
async fn logout_revokes_the_jti_until_the_token_would_expire() {
    let f = fixture();
    let (r, store) = revocations(&f);
    let t = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let other = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let claims = r.authenticate(&t.token).await.unwrap();
    r.revoke(&claims).await.unwrap();
    assert_eq!(r.authenticate(&t.token).await, Err(JwtError::Revoked));
    // Revoking twice is fine; other tokens of the user are unaffected.
    r.revoke(&claims).await.unwrap();
    assert!(r.authenticate(&other.token).await.is_ok());
    // The deny-list entry lives exactly as long as the token could be accepted.
    assert_eq!(store.len(), 1);
    f.clock.advance(f.issuer.ttl() + f.validator.leeway());
    assert_eq!(r.authenticate(&t.token).await, Err(JwtError::Expired));
    let id = crate::storeid::derive("jwt-jti", &[&claims.iss, &claims.jti]);
    assert!(store.load(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn logout_everywhere_refuses_every_earlier_token_of_the_user() {
    let f = fixture();
    let (r, _store) = revocations(&f);
    let a = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    f.clock.advance(Duration::from_secs(10));
    let b = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    let bob = f.issuer.issue("bob", "b.test", None, Map::new()).unwrap();
    r.revoke_all("https://login.test", "alice").await.unwrap();
    assert_eq!(
        r.authenticate(&a.token).await,
        Err(JwtError::RevokedForUser)
    );
    assert_eq!(
        r.authenticate(&b.token).await,
        Err(JwtError::RevokedForUser)
    );
    assert!(r.authenticate(&bob.token).await.is_ok());
    // A login a second later works again.
    f.clock.advance(Duration::from_secs(1));
    let c = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    assert!(r.authenticate(&c.token).await.is_ok());
    // A second "everywhere" moves the not-before forward.
    f.clock.advance(Duration::from_secs(5));
    r.revoke_all("https://login.test", "alice").await.unwrap();
    assert_eq!(
        r.authenticate(&c.token).await,
        Err(JwtError::RevokedForUser)
    );
}

#[tokio::test]
async fn revocation_records_hide_the_jti_and_user() {
    let f = fixture();
    let (r, store) = revocations(&f);
    let t = f.issuer.issue("alice", "b.test", None, Map::new()).unwrap();
    r.revoke(&t.claims).await.unwrap();
    r.revoke_all("https://login.test", "alice").await.unwrap();
    let user = crate::storeid::derive("jwt-user", &["https://login.test", "alice"]);
    let rec = store.load(&user).await.unwrap().unwrap();
    let dump = serde_json::to_string(&rec.record).unwrap();
    assert!(!dump.contains("alice") && !dump.contains(&t.claims.jti));
}

#[test]
fn token_from_headers_prefers_the_authorization_header() {
    let mut h = http::HeaderMap::new();
    h.insert("cookie", "x=1; tok=from-cookie".parse().unwrap());
    assert_eq!(token_from_headers(&h, Some("tok")), Some("from-cookie"));
    assert_eq!(token_from_headers(&h, None), None);
    h.insert("authorization", "Bearer from-header".parse().unwrap());
    assert_eq!(token_from_headers(&h, Some("tok")), Some("from-header"));
    h.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(token_from_headers(&h, Some("tok")), None);
}
