//! The server's only clock reads.
//!
//! Everything below the server takes `now` as an argument; this module is where it comes
//! from. Wall-clock Unix milliseconds are used because memcached exptimes and Redis EXPIREAT
//! are absolute Unix times and deadlines are stored (and, later, journaled) as such.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
