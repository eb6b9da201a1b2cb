//! Numbers as memcached reads them: its `safe_strto*` helpers over C's `strtoull` and
//! `strtol`, quirks included, so that a number memcached accepts is accepted here and one it
//! refuses is refused with the same error.
//!
//! C's parsers skip leading white space, take an optional sign, need at least one digit and
//! stop at the first non-digit; memcached then accepts the number only if that stop is the
//! end of the token or white space. `strtoull` negates a `-` number modulo 2^64, which
//! memcached refuses only when the result looks negative as a signed number (so `-0` is 0).
//! The 32-bit helpers parse at 64 bits and truncate (`safe_strtol` stores a `long` into an
//! `int32_t`), so `4294967297` reads as 1 where a 32-bit value is wanted.

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Sign and magnitude, if `token` is white space, a sign, digits and then nothing or white
/// space; `None` also for a magnitude past `u64::MAX` (C's `ERANGE`).
fn split(token: &[u8]) -> Option<(bool, u64)> {
    let start = token.iter().position(|&b| !is_c_space(b))?;
    let mut rest = &token[start..];
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    if rest.get(digits).is_some_and(|&b| !is_c_space(b)) {
        return None;
    }
    let magnitude = rest[..digits].iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    Some((negative, magnitude))
}

/// `safe_strtoull`: an unsigned 64-bit number.
pub(crate) fn strtoull(token: &[u8]) -> Option<u64> {
    let (negative, magnitude) = split(token)?;
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    // memcached refuses a `-` only when the result reads as negative.
    if negative && (value as i64) < 0 {
        return None;
    }
    Some(value)
}

/// `safe_strtoul`: as [`strtoull`], truncated to 32 bits.
pub(crate) fn strtoul32(token: &[u8]) -> Option<u32> {
    strtoull(token).map(|v| v as u32)
}

/// `safe_strtol`: a signed 64-bit number (out of range refuses), truncated to 32 bits.
pub(crate) fn strtol32(token: &[u8]) -> Option<i32> {
    let (negative, magnitude) = split(token)?;
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_as_memcached_does() {
        assert_eq!(strtoull(b"42"), Some(42));
        assert_eq!(strtoull(b"+42"), Some(42));
        assert_eq!(strtoull(b"-0"), Some(0));
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"1x"), None);
        assert_eq!(strtoull(b"x"), None);
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoull(b"-"), None);
        assert_eq!(strtoull(b"7\t"), Some(7));
        assert_eq!(strtoul32(b"4294967297"), Some(1));
        assert_eq!(strtol32(b"-5"), Some(-5));
        assert_eq!(strtol32(b"4294967297"), Some(1));
        assert_eq!(strtol32(b"9223372036854775808"), None);
        assert_eq!(strtol32(b"-9223372036854775808"), Some(0));
        assert_eq!(strtol32(b"12abc"), None);
    }
}
