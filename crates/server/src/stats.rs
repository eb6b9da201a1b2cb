//! Server-wide counters, one set for both protocols, reported by memcached `stats` and RESP
//! `INFO`, and zeroed together by memcached `stats reset` and RESP `CONFIG RESETSTAT`.
//!
//! Counters are relaxed atomics bumped by the glue layer: they are statistics, not
//! synchronisation, and a reader may see them a moment apart from each other. Those that
//! memcached's `stats` names are listed by [`Stats::snapshot`]; the rest appear only in
//! `INFO`, under Redis's names. [`More`] holds what only `/metrics` reads (`crate::metrics`):
//! per-listener connection counts, per-command counts; those are never reset, so Prometheus
//! sees monotonic counters.

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
            /// The counters only `/metrics` reads; never reset.
            pub more: More,
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

/// The listeners, in the order of [`LISTENERS`]: what [`listener_index`] returns.
pub const LISTENER_COUNT: usize = 6;

/// Each listener's `listener` and `protocol` labels, by [`listener_index`].
pub const LISTENERS: [(&str, &str); LISTENER_COUNT] = [
    ("memcache", "memcache"),
    ("resp", "resp"),
    ("http", "http"),
    ("memcache_tls", "memcache"),
    ("resp_tls", "resp"),
    ("http_tls", "http"),
];

/// The position in [`LISTENERS`] of the listener speaking `protocol`, over TLS or not.
pub fn listener_index(protocol: crate::conn::Listener, tls: bool) -> usize {
    let base = match protocol {
        crate::conn::Listener::Memcache => 0,
        crate::conn::Listener::Resp => 1,
        crate::conn::Listener::Http => 2,
    };
    base + if tls { 3 } else { 0 }
}

/// One listener's connection counters (bumped once per connection, never per request).
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections open now (a TLS one from the start of its handshake).
    pub current: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused because the listener's `--max-connections` was reached.
    pub rejected: AtomicU64,
    /// `accept` calls that failed (typically out of file descriptors).
    pub accept_errors: AtomicU64,
    /// TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_errors: AtomicU64,
}

/// The memcached commands counted by [`More::memcache_commands`], by
/// `exec::memcache::command_index`.
pub const MEMCACHE_COMMANDS: [&str; 27] = [
    "get",
    "gat",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "delete",
    "incr",
    "decr",
    "touch",
    "flush_all",
    "version",
    "verbosity",
    "stats",
    "noop",
    "journal_rewrite",
    "quit",
    "sasl_list_mechs",
    "sasl_auth",
    "unknown",
    "mg",
    "ms",
    "md",
    "ma",
    "me",
];

/// One counter per row of the RESP command table (`exec::resp::commands::COMMANDS`),
/// indexed by the row's position.
#[derive(Debug)]
pub struct PerCommand(Box<[AtomicU64]>);

impl Default for PerCommand {
    fn default() -> Self {
        let rows = crate::exec::resp::commands::COMMANDS.len();
        PerCommand((0..rows).map(|_| AtomicU64::new(0)).collect())
    }
}

impl PerCommand {
    /// Adds one to row `index`'s counter (nothing for an index outside the table).
    pub fn bump(&self, index: usize) {
        if let Some(counter) = self.0.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Row `index`'s count.
    pub fn get(&self, index: usize) -> u64 {
        self.0.get(index).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// The counters only `/metrics` reads. Each is bumped where the event happens, with one
/// relaxed atomic add; none is reset by `stats reset` or `CONFIG RESETSTAT`.
#[derive(Debug, Default)]
pub struct More {
    /// Per listener, by [`listener_index`].
    pub listeners: [ListenerStats; LISTENER_COUNT],
    /// memcached commands run (after login), by [`MEMCACHE_COMMANDS`] position.
    pub memcache_commands: [AtomicU64; MEMCACHE_COMMANDS.len()],
    /// RESP commands run (`exec::resp::run`: direct, or queued and run by `EXEC`), by row.
    pub resp_commands: PerCommand,
    /// Of those, the ones whose reply was an error, by row.
    pub resp_failed: PerCommand,
    /// RESP requests answered with a protocol error (the connection is closed).
    pub resp_protocol_errors: AtomicU64,
    /// memcached requests answered with a protocol error.
    pub memcache_protocol_errors: AtomicU64,
    /// Scripts aborted by `--script-time-limit`.
    pub script_kills: AtomicU64,
    /// Scripts ended by `SCRIPT KILL`.
    pub scripts_killed_by_user: AtomicU64,
    /// RESP commands answered `-BUSY …` (or `EXEC` answered `-EXECABORT … BUSY …`) because
    /// a script ran past `busy-reply-threshold`.
    pub busy_replies: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
