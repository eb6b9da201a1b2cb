//! Fuzzes the sealed-cookie codec of sessiond-tokens (`Sealer::open`, and `Sealer::seal` for
//! the round trip).
//!
//! Input: the first byte picks the mode. Even: the rest is a hostile cookie value, opened
//! as it is (when it is text) and base64url-encoded (so the fuzzer reaches the key id, the
//! nonce and the tag instead of stopping at the base64 check), once as it is and once with
//! its first byte set to the current key's id. Odd: the rest becomes session data (a JSON
//! object if it parses as one, else a string), with times taken from its first bytes, and is
//! sealed and opened.
//!
//! Invariants: nothing panics; a value not sealed with one of the ring's keys never opens
//! (only `Malformed`, `UnknownKey` or `Tampered`, never `Ok` or `Expired`); a sealed value
//! opens to exactly what was sealed, with the current key's id; it does not open under
//! another cookie name, with another secret under the same key id, or without its key in
//! the ring; and it does not open with any one character changed.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use sessiond_tokens::{SealError, SealKey, SealKeys, Sealer};

const NAME: &str = "s";
const CURRENT: u8 = 2;

fn sealer(name: &str, current_secret: u8, with_previous: bool) -> Sealer {
    let mut keys = SealKeys::new(SealKey::new(CURRENT, [current_secret; 32]));
    if with_previous {
        keys = keys
            .with_previous(SealKey::new(1, [0x11; 32]))
            .expect("distinct key ids");
    }
    Sealer::new(keys, name, 40, 4096)
}

/// A value nobody sealed with a key of `s` must be refused, and refused as not authentic.
fn refuse(s: &Sealer, value: &str, now: u64) {
    match s.open(value, now) {
        Err(SealError::Malformed | SealError::UnknownKey(_) | SealError::Tampered) => {}
        other => panic!("a forged value was not refused as forged: {other:?}"),
    }
}

/// Whether `v` holds a number that is not an integer: serde_json parses such numbers
/// correctly only to within one unit in the last place unless its `float_roundtrip` feature
/// is on, so a map holding one is compared by shape only.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = bytes.get(at + i).copied().unwrap_or(0);
    }
    u64::from_be_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let s = sealer(NAME, 0x22, true);
    let now = u64_at(rest, 0) >> 1;

    if mode & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            refuse(&s, text, now);
        }
        refuse(&s, &URL_SAFE_NO_PAD.encode(rest), now);
        let mut keyed = rest.to_vec();
        if let Some(first) = keyed.first_mut() {
            *first = CURRENT;
        }
        refuse(&s, &URL_SAFE_NO_PAD.encode(&keyed), now);
        return;
    }

    // Round trip.
    let created_at = u64_at(rest, 0) >> 1;
    let life = u64::from(u16::from_be_bytes([
        rest.get(8).copied().unwrap_or(0),
        rest.get(9).copied().unwrap_or(0),
    ])) + 1;
    let expires_at = created_at + life;
    let body = rest.get(10..).unwrap_or_default();
    let data: Map<String, Value> = serde_json::from_slice(body).unwrap_or_else(|_| {
        let mut m = Map::new();
        m.insert(
            "v".into(),
            Value::String(String::from_utf8_lossy(body).into_owned()),
        );
        m
    });
    let sealed = match s.seal(&data, created_at, expires_at) {
        Ok(v) => v,
        Err(SealError::TooLarge { size, limit }) => {
            assert!(size > limit);
            assert_eq!(
                s.check_size(&data),
                Err(SealError::TooLarge { size, limit })
            );
            return;
        }
        Err(e) => panic!("sealing failed: {e}"),
    };
    assert!(
        sealed.len() + NAME.len() + 1 + 40 <= 4096,
        "a sealed cookie is over the limit"
    );
    let opened = s.open(&sealed, created_at).expect("a sealed value opens");
    assert_eq!(
        (opened.created_at, opened.expires_at, opened.key_id),
        (created_at, expires_at, CURRENT)
    );
    if has_float(&Value::Object(data.clone())) {
        assert_eq!(opened.data.len(), data.len());
    } else {
        assert_eq!(opened.data, data);
    }
    assert_eq!(
        s.open(&sealed, expires_at),
        Err(SealError::Expired { at: expires_at })
    );

    // Not without the key: another cookie name, another secret under the same id, a ring
    // without the key.
    refuse(&sealer("t", 0x22, true), &sealed, created_at);
    refuse(&sealer(NAME, 0x23, true), &sealed, created_at);
    let other_ring = Sealer::new(SealKeys::new(SealKey::new(7, [0x22; 32])), NAME, 40, 4096);
    assert_eq!(
        other_ring.open(&sealed, created_at),
        Err(SealError::UnknownKey(CURRENT))
    );

    // Any one character changed.
    let at = usize::from(rest.get(10).copied().unwrap_or(0)) * 7 % sealed.len();
    let mut changed = sealed.clone().into_bytes();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pick = alphabet[usize::from(rest.get(11).copied().unwrap_or(0)) % alphabet.len()];
    changed[at] = if pick == changed[at] { b'.' } else { pick };
    let changed = String::from_utf8(changed).expect("ASCII");
    refuse(&s, &changed, created_at);
});
