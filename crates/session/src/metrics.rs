//! Counters of the events an operator should watch: unknown and malformed ids (possible
//! guessing), expiries, compare-and-set retries and failures, writes dropped because the
//! session had ended.
//!
//! Plain atomics read through [`SessionLayer::metrics`](crate::SessionLayer::metrics); this
//! module exports nothing to a metrics system by itself.

#![deny(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Debug, Default)]
        pub(crate) struct Metrics { $(pub(crate) $name: AtomicU64,)* }

        /// A snapshot of the layer's counters since it was built.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct MetricsSnapshot { $($(#[$doc])* pub $name: u64,)* }

        impl Metrics {
            pub(crate) fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Well-formed ids the store did not know (forged, guessed, or already expired by the
    /// store), and replaced ids used after their grace window.
    unknown_ids,
    /// Ids that could not have been issued by this library.
    malformed_ids,
    /// Ids that named a record that is not a session (a JWT revocation, an SSO ticket, …;
    /// see [`crate::Record::kind`]): sent as a session id, most likely on purpose.
    foreign_ids,
    /// Sessions ended by the idle or absolute timeout.
    expired,
    /// Sessions created.
    created,
    /// Ids replaced, on request or by the renewal timeout.
    cycled,
    /// Requests that arrived with a replaced id inside its grace window (forwarded after a
    /// renewal, or served the pre-login state after `cycle_id`).
    grace_hits,
    /// Compare-and-set races lost and retried.
    cas_retries,
    /// Writes refused because the same key changed on both sides.
    conflicts,
    /// Writes that gave up after the retry bound.
    contention_failures,
    /// Writes dropped because the session was deleted meanwhile (a logout wins), or because
    /// they came through an id that `cycle_id` had replaced (its state is read-only).
    writes_after_delete,
    /// Idle deadlines refreshed without a data write.
    touches,
    /// Store failures.
    store_errors,
}

pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
