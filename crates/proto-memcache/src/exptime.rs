//! memcached's exptime rule, applied once, with `now` passed in.

/// Seconds above which memcached reads an exptime as an absolute Unix time (30 days).
pub const RELATIVE_EXPTIME_LIMIT: i64 = 60 * 60 * 24 * 30;

/// An exptime resolved against `now`, per memcached's `protocol.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exptime {
    /// 0: the item never expires.
    Never,
    /// The item expires at this Unix time, in milliseconds.
    AtMillis(u64),
    /// The exptime is negative, or an absolute time that has already passed: the item is
    /// born expired. `add` of such an item still reports success when the key was free, but
    /// leaves nothing alive (PHP's strict-mode probe `add <key> 0 2678400 0` depends on it).
    Expired,
}

impl Exptime {
    /// Resolves `exptime` (seconds as sent) against `now_ms` (Unix time in milliseconds):
    /// 0 never expires; 1 to 2592000 is seconds from now; above that it is an absolute Unix
    /// time; a negative value, or an absolute time at or before now, is already expired.
    pub fn resolve(exptime: i64, now_ms: u64) -> Exptime {
        if exptime == 0 {
            Exptime::Never
        } else if exptime < 0 {
            Exptime::Expired
        } else if exptime <= RELATIVE_EXPTIME_LIMIT {
            Exptime::AtMillis(now_ms.saturating_add(exptime as u64 * 1000))
        } else {
            let at = (exptime as u64).saturating_mul(1000);
            if at <= now_ms {
                Exptime::Expired
            } else {
                Exptime::AtMillis(at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn follows_protocol_txt() {
        assert_eq!(Exptime::resolve(0, NOW), Exptime::Never);
        assert_eq!(Exptime::resolve(-1, NOW), Exptime::Expired);
        assert_eq!(Exptime::resolve(1, NOW), Exptime::AtMillis(NOW + 1000));
        assert_eq!(
            Exptime::resolve(RELATIVE_EXPTIME_LIMIT, NOW),
            Exptime::AtMillis(NOW + RELATIVE_EXPTIME_LIMIT as u64 * 1000)
        );
        // PHP's strict-mode probe: an absolute time in February 1970.
        assert_eq!(Exptime::resolve(2_678_400, NOW), Exptime::Expired);
        assert_eq!(
            Exptime::resolve(1_900_000_000, NOW),
            Exptime::AtMillis(1_900_000_000_000)
        );
        assert_eq!(Exptime::resolve(1_800_000_000, NOW), Exptime::Expired);
    }
}
