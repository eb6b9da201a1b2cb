//! The glue: the one place where protocol requests meet store operations.
//!
//! Each protocol's module maps a decoded request to store calls and returns a
//! protocol-neutral outcome for the codec to encode. Nothing here touches a socket or reads
//! the clock: `now` (Unix ms) comes from the connection loop, so the mapping is tested
//! directly, request in and outcome out.

pub mod memcache;

use std::sync::Arc;
use std::time::Instant;

use sessiond_store::Store;

use crate::config::Config;
use crate::stats::Stats;

/// What every connection shares: the keyspace, the counters and the settings.
pub struct Shared {
    /// Database 0, the keyspace the memcached protocol uses.
    pub store: Arc<Store>,
    /// Server-wide counters.
    pub stats: Stats,
    /// The configuration the server started with.
    pub config: Config,
    /// When the server started (monotonic), for `uptime`.
    pub started: Instant,
}
