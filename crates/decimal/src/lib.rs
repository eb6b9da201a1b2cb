//! Decimal integers on the wire, written once for every crate that needs them.
//!
//! [`parse_i64`] reads an integer exactly as Redis's `string2ll` does, which the RESP codec
//! (lengths), the glue (arguments) and the store (`INCR` on a stored string) must agree on;
//! [`put_decimal`] and [`put_signed`] write one without going through `fmt`, which every reply
//! header and every request the load generator sends needs.
//!
//! memcached's text protocol reads its numbers differently (leading zeros and a `+`-less
//! unsigned range), so its parser stays in its codec.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use bytes::{BufMut, BytesMut};

/// A decimal integer the way Redis's `string2ll` reads one: an optional `-`, then either a
/// lone `0` or digits not starting with `0`, fitting an `i64`. No `+`, no spaces, no `-0`.
/// Being exactly this strict matters because lengths such as `$01` are protocol errors in
/// Redis, and a client relying on that should see the same here.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    // 20 bytes hold every i64 ("-9223372036854775808"); longer input cannot fit, and
    // refusing it first bounds the work.
    if s.len() > 20 {
        return None;
    }
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let magnitude = digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Appends the decimal digits of `n`, without allocating.
pub fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// Like [`put_decimal`] for a signed value.
pub fn put_signed(out: &mut BytesMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    put_decimal(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn redis_strictness() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn writes_what_parses_back(n: i64) {
            let mut out = BytesMut::new();
            put_signed(&mut out, n);
            let text = n.to_string();
            prop_assert_eq!(&out[..], text.as_bytes());
            prop_assert_eq!(parse_i64(&out), Some(n));
        }

        #[test]
        fn agrees_with_std_on_canonical_text(s in "-?[0-9]{1,21}") {
            let canonical = s.parse::<i64>().ok().filter(|n| n.to_string() == s);
            prop_assert_eq!(parse_i64(s.as_bytes()), canonical);
        }
    }
}
