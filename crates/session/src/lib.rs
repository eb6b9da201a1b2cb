//! Sessions for axum and other tower apps that never lose an update and never bring back a
//! logout, over an in-memory store, Redis (7, Cluster) or sessiond's RESP listener, several
//! memcached-protocol servers (feature `memcached`), a PHP app's own sessions on memcached
//! (feature `php`), an SQL table (feature `sql`) or files (feature `files`).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sessiond_session::{MemoryStore, Session, SessionConfig, SessionLayer};
//!
//! async fn counter(session: Session) -> String {
//!     let n = session.update("n", |n: Option<u64>| Some(n.unwrap_or(0) + 1)).await.unwrap();
//!     format!("{}", n.unwrap())
//! }
//!
//! # async fn run() {
//! let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default()).unwrap();
//! let app: Router = Router::new().route("/", get(counter)).layer(layer);
//! # }
//! ```
//!
//! # How a request goes
//!
//! 1. [`SessionLayer`] reads the id from the cookie (or the configured header) and hands the
//!    handler a [`Session`]. Nothing touches the store yet.
//! 2. The first method the handler calls loads the record. An id the store does not know gets
//!    no session (strict mode): a fresh id is issued when something is first stored, the event
//!    is counted and logged under a salted hash of the id. A record past its idle or absolute
//!    timeout is deleted and treated the same way, and so is an id that names a record of
//!    another kind ([`Record::kind`]: a revocation or a ticket of `sessiond-tokens` in the same
//!    store), which is never read, written or deleted as a session. Inside its grace window,
//!    an id replaced by the renewal timeout resolves to the session that replaced it, and an
//!    id replaced by [`Session::cycle_id`] shows only its own state from before that call,
//!    read-only.
//! 3. After the handler, changes are written with compare-and-set on the version that was
//!    loaded. A lost race reloads the record and re-applies this request's changes (closures
//!    given to [`Session::update`] run again; a plain set of a key the other side also changed
//!    is reported as a conflict), up to [`SessionConfig::max_retries`] times. An unchanged
//!    session only has its idle deadline refreshed (a touch), and only when
//!    [`SessionConfig::touch_interval`] has passed. If the renewal timeout is due, the data
//!    moves to a new id and the old one becomes a forwarding pointer for
//!    [`SessionConfig::grace_period`]. If the handler called [`Session::cycle_id`] (a login),
//!    the data and this request's changes go to a new id only, and the old record is retired
//!    with its state from before the request: the old id never reaches the new session.
//! 4. The response gets `Set-Cookie` (and `Cache-Control: no-store`) only when the client must
//!    learn a new id, drop its id after a logout, or have a persistent cookie's Max-Age
//!    restarted.
//!
//! # Invariants
//!
//! - No store operation creates a record except [`SessionStore::create`], which fails if the id
//!   exists: a deleted session cannot come back through a late write or touch.
//! - Every timeout is decided from timestamps in the record and the layer's [`Clock`]; the
//!   cookie carries nothing but the id, and store TTLs only collect garbage.
//! - Ids appear in logs only as salted hashes, and on the near-cache bus only as digests.
//! - Only records without a [`Record::kind`] are sessions; an id replaced by
//!   [`Session::cycle_id`] never resolves to its replacement.
//!
//! # Modules
//!
//! [`store`] holds the store contract and the stores ([`MemoryStore`], `RedisStore`,
//! `MemcachedStore`, `PhpSessionStore` (sessions shared with a PHP app), `SqlStore`,
//! `FileStore`, [`CachedStore`]); [`session`] the handle and the write path; [`layer`] the tower glue;
//! [`config`], [`cookie`](crate::config::CookieConfig), [`id`], [`clock`] the rest. This crate
//! does not depend on the sessiond server and opens no sockets except through a store.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
mod cookie;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod layer;
mod metrics;
pub mod session;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, CookieConfig, SameSite, SessionConfig, Transport};
pub use id::{IdFormat, LogHasher, SessionId};
pub use layer::{SessionLayer, SessionService};
pub use metrics::MetricsSnapshot;
pub use session::{MissingSessionLayer, SaveOutcome, Session, SessionError};
#[cfg(feature = "php")]
pub use sessiond_session_format::{PhpSession, SerializeHandler};
pub use store::cached::{
    BusEvent, CacheConfig, CacheStats, CachedStore, InvalidationBus, LocalBus,
    SERVER_EVENTS_CHANNEL,
};
#[cfg(all(feature = "files", unix))]
pub use store::file::{FileConfig, FileStore};
#[cfg(feature = "memcached")]
pub use store::memcached::{Distribution, MemcachedConfig, MemcachedStore, ServerSpec};
pub use store::memory::MemoryStore;
#[cfg(feature = "php")]
pub use store::php::{PhpSessionConfig, PhpSessionLock, PhpSessionStore};
#[cfg(feature = "redis")]
pub use store::redis::{RedisBus, RedisStore};
#[cfg(feature = "sql")]
pub use store::sql::{SqlStore, SweepConfig};
pub use store::{
    CreateOutcome, KeyLayout, MovedTo, Record, SessionStore, StoreError, StoreFuture,
    UpdateOutcome, Version, Versioned,
};
