//! The busy state: Redis's model of a long script, on top of the script gate.
//!
//! A script, a transaction's `EXEC` and the `EXCLUSIVE` multi-key commands hold the script
//! gate (`Shared::gate`) exclusively; every other command of either protocol needs it shared.
//! Redis, single-threaded, answers everyone else `-BUSY …` once a script has run past
//! `busy-reply-threshold` (old name `lua-time-limit`) and until it ends or `SCRIPT KILL`
//! ends it. sessiond does the same for RESP: a running script records when it started
//! ([`Busy::enter`], by the script runner, so a script that `EXEC` runs counts as well); a
//! RESP command that finds the gate taken waits for it only until that time plus the
//! threshold ([`Busy::busy_at`]), and is then answered `BUSY`, unless it is one Redis flags
//! `allow-busy` (`SCRIPT KILL`, `AUTH`, `MULTI`, …), which runs without the gate and so
//! must leave the keyspace exactly as the script sees it (no write, no reaping of an
//! expired key, no observer call: `WATCH` looks with `Store::is_live`). Waiters learn of a
//! new script, or a changed threshold, through a watch channel, so nothing polls.
//!
//! Only scripts bring the busy state, as in Redis: `EXEC` and the multi-key commands are
//! waited for however long they hold the gate (they are bounded by what they were sent: a
//! transaction runs its queued commands, none of which loops), because Redis never answers
//! `BUSY` for them and clients such as phpredis or connect-redis would fail the request.
//!
//! Two choices differ from Redis and are sessiond's:
//! - The hard cap (`--script-time-limit`) still ends a script wherever it is, written or not,
//!   so no script holds the server for ever (Redis would wait for `SHUTDOWN NOSAVE`). The busy
//!   state exists only while the threshold is below the cap: with the defaults (both 5 s) a
//!   runaway script is aborted at 5 s and the commands that waited for it are then served, as
//!   before; lowering `lua-time-limit`, as Redis's own test suite does, brings Redis's model.
//! - memcached clients are never answered `BUSY`: the memcached protocol has no such error,
//!   and its clients are PHP session handlers, which would fail the page; they wait for the
//!   gate, which the hard cap bounds.
//!
//! Nothing here reads the clock: the script's start comes from its runner.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// When the running script started, and the busy threshold.
pub struct Busy {
    /// When the running script started; `None` while none runs (the gate may still be held
    /// exclusively, by `EXEC` or a multi-key command).
    script: watch::Sender<Option<Instant>>,
    /// `busy-reply-threshold` in milliseconds; 0 turns the busy state off.
    threshold_ms: AtomicU64,
    /// `--script-time-limit`: a threshold at or past it has no effect.
    cap: Duration,
}

impl Busy {
    /// No script running; `threshold_ms` as configured, under the hard cap `cap`.
    pub fn new(threshold_ms: u64, cap: Duration) -> Busy {
        Busy {
            script: watch::Sender::new(None),
            threshold_ms: AtomicU64::new(threshold_ms),
            cap,
        }
    }

    /// `busy-reply-threshold` in milliseconds.
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// Sets `busy-reply-threshold` (`CONFIG SET`); the commands waiting now recompute when
    /// they give up.
    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
        self.script.send_modify(|_| {});
    }

    /// Records that a script, run holding the gate exclusively, started at `since`; the busy
    /// state ends when the returned guard is dropped (as the script ends, before the gate is
    /// released).
    pub fn enter(&self, since: Instant) -> Holding<'_> {
        self.script.send_replace(Some(since));
        Holding(self)
    }

    /// The running script's start (`None`: no script runs), and a way to wait for it to
    /// change.
    pub fn watch(&self) -> watch::Receiver<Option<Instant>> {
        self.script.subscribe()
    }

    /// When a script that started at `since` makes the server busy; `None`: never (the
    /// threshold is 0, or not below the hard cap).
    pub fn busy_at(&self, since: Instant) -> Option<Instant> {
        let threshold = Duration::from_millis(self.threshold_ms());
        if threshold.is_zero() || threshold >= self.cap {
            return None;
        }
        since.checked_add(threshold)
    }

    /// Whether a script runs now. (A command that runs without the gate, in the busy state,
    /// sees `true`; one that holds it shared sees `false`.)
    pub fn script_running(&self) -> bool {
        self.script.borrow().is_some()
    }

    /// When the running script makes the server busy, if one runs.
    pub fn current_busy_at(&self) -> Option<Instant> {
        (*self.script.borrow()).and_then(|since| self.busy_at(since))
    }
}

/// The running script's registration; dropping it ends the busy state.
pub struct Holding<'a>(&'a Busy);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.script.send_replace(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_only_below_the_cap_and_while_held() {
        let busy = Busy::new(10, Duration::from_millis(5000));
        let since = Instant::now();
        assert_eq!(busy.current_busy_at(), None);
        let holding = busy.enter(since);
        assert_eq!(
            busy.current_busy_at(),
            Some(since + Duration::from_millis(10))
        );
        busy.set_threshold_ms(0);
        assert_eq!(busy.current_busy_at(), None);
        busy.set_threshold_ms(5000);
        assert_eq!(busy.current_busy_at(), None, "not below the cap");
        busy.set_threshold_ms(4999);
        assert!(busy.current_busy_at().is_some());
        drop(holding);
        assert_eq!(busy.current_busy_at(), None);
    }

    #[test]
    fn waiters_hear_of_a_new_script_and_a_new_threshold() {
        let busy = Busy::new(10, Duration::from_millis(5000));
        let mut watch = busy.watch();
        assert!(!watch.has_changed().unwrap());
        let holding = busy.enter(Instant::now());
        assert!(watch.has_changed().unwrap());
        assert!(watch.borrow_and_update().is_some());
        busy.set_threshold_ms(20);
        assert!(watch.has_changed().unwrap());
        drop(holding);
        assert!(watch.borrow_and_update().is_none());
    }
}
