//! Time as the session layer sees it: milliseconds since the Unix epoch, read through a
//! [`Clock`] so that tests can move time by hand instead of sleeping.
//!
//! Every timeout decision (idle, absolute, renewal, the grace window of a cycled id) is taken
//! by comparing timestamps stored in the session record with [`Clock::now_ms`]. The store's own
//! expiry (a Redis TTL, the memory store's deadline) only collects garbage; it is never the
//! authority. This module does not schedule anything and has no timers.

#![deny(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// Wall-clock rather than monotonic time because the timestamps are written into the shared
/// store and compared by other processes on other machines.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 is a broken machine; treating it as the epoch makes every
        // session look expired, which fails closed.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test can hand one
/// clone to the layer and the store and keep another to advance.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// A clock standing at the current system time, so that values written to a real store
    /// look plausible.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now_ms())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(1_000);
        let b = a.clone();
        a.advance(Duration::from_secs(2));
        assert_eq!(b.now_ms(), 3_000);
    }
}
