//! The middleware's integration tests, one test binary (`cargo test -p sessiond-session
//! --test it`) with a module per subject, like the server's. One binary instead of five
//! links the large dev-dependency tree (axum, sqlx, redis) once instead of five times.
//!
//! - [`conformance`]: the `SessionStore` contract against every store, on real servers.
//! - [`scenarios`]: the multi-node scenarios against memory, Redis, sessiond and a
//!   Redis Cluster.
//! - [`cookies`]: cookie and header transport.
//! - [`logging`]: ids reach the logs only as salted hashes.
//! - [`memcached_ring`]: the ketama ring against PHP's memcached session handler, failover.
//! - [`php_sessions`]: sessions shared with PHP through php-memcached's handler
//!   (`PhpSessionStore`): values both ways, objects kept, the lock both ways, logout,
//!   strict mode, placement and failover with a replica.
//! - [`session_index`]: sessiond's session layer lists and revokes the middleware's
//!   sessions (`SESSION.LIST`, `SESSION.REVOKE`).
//! - [`server_events`]: the near-cache dropping sessions that PHP, an admin or expiry ended,
//!   on sessiond's lifecycle events.
//!
//! [`common`] holds the test app, the backends and the servers only this suite starts; the
//! others (sessiond, memcached, redis-server) and the raw clients come from the workspace's
//! test harness (`crates/test-harness`). Every store feature is on for this binary: the crate
//! is its own dev-dependency with all of them (Cargo.toml), so no test needs
//! `required-features`.

mod common;
mod conformance;
mod cookies;
mod logging;
mod memcached_ring;
mod php_sessions;
mod scenarios;
mod server_events;
mod session_index;
