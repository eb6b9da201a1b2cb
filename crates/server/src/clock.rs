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

/// CPU time this process has used, in seconds: (system, user, children's system, children's
/// user), as `INFO cpu` shows it. Read from `/proc/self/stat` (Linux; elsewhere all zero),
/// whose times are in clock ticks of 1/100 s on every Linux platform sessiond runs on.
pub fn cpu_seconds() -> (f64, f64, f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0, 0.0, 0.0);
    };
    // The command name in parentheses may hold spaces; the fields after it are plain.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse::<f64>().unwrap_or(0.0) / 100.0)
        .collect();
    // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let at = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0);
    (at(15), at(14), at(17), at(16))
}
