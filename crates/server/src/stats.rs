//! Server-wide counters, one set for both protocols, reported by memcached `stats` and RESP
//! `INFO`, and zeroed together by memcached `stats reset` and RESP `CONFIG RESETSTAT`.
//!
//! Counters are relaxed atomics bumped by the glue layer: they are statistics, not
//! synchronisation, and a reader may see them a moment apart from each other. Those that
//! memcached's `stats` names are listed by [`Stats::snapshot`]; the rest appear only in
//! `INFO`, under Redis's names.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    (
        memcache { $($(#[$doc:meta])* $name:ident),* $(,)? }
        info_only { $($(#[$idoc:meta])* $iname:ident),* $(,)? }
    ) => {
        /// Command and connection counters.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: AtomicU64,)*
            $($(#[$idoc])* pub $iname: AtomicU64,)*
        }

        impl Stats {
            /// Every counter memcached's `stats` shows, with its name there, in declaration
            /// order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }

            /// Zeroes every counter except the gauge of open connections (`stats reset`,
            /// `CONFIG RESETSTAT`).
            pub fn reset(&self) {
                let open = self.curr_connections.load(Ordering::Relaxed);
                $(self.$name.store(0, Ordering::Relaxed);)*
                $(self.$iname.store(0, Ordering::Relaxed);)*
                self.curr_connections.store(open, Ordering::Relaxed);
            }
        }
    };
}

counters! {
    memcache {
    /// Connections currently open.
    curr_connections,
    /// Connections accepted since start.
    total_connections,
    /// Connections refused because `--max-connections` was reached.
    rejected_connections,
    /// Keys requested by get-family commands.
    cmd_get,
    /// Storage commands.
    cmd_set,
    /// `flush_all` commands.
    cmd_flush,
    /// Touch and get-and-touch commands.
    cmd_touch,
    /// Keys found by get-family commands.
    get_hits,
    /// Keys not found by get-family commands.
    get_misses,
    /// Deletes that removed an item.
    delete_hits,
    /// Deletes that found nothing.
    delete_misses,
    /// Increments that found their counter.
    incr_hits,
    /// Increments that found nothing.
    incr_misses,
    /// Decrements that found their counter.
    decr_hits,
    /// Decrements that found nothing.
    decr_misses,
    /// CAS writes that succeeded.
    cas_hits,
    /// CAS writes that found no item.
    cas_misses,
    /// CAS writes whose CAS value was stale.
    cas_badval,
    /// Touches that found their item.
    touch_hits,
    /// Touches that found nothing.
    touch_misses,
    /// Requests answered with a protocol error.
    protocol_errors,
    /// Login attempts, both protocols (memcached's name).
    auth_cmds,
    /// Failed login attempts, both protocols.
    auth_errors,
    /// TLS handshakes that failed or timed out (memcached's name for it).
    ssl_handshake_errors,
    }
    info_only {
    /// RESP commands executed since start (`total_commands_processed`).
    commands_processed,
    /// Keys found by RESP reads (`keyspace_hits`).
    keyspace_hits,
    /// Keys not found by RESP reads (`keyspace_misses`).
    keyspace_misses,
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
