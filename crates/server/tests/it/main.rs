//! Real-client integration tests for sessiond: one test binary (`cargo test -p sessiond
//! --test it`) whose modules start sessiond on free loopback ports and drive it with the
//! clients it must serve unchanged.
//!
//! - [`memccapable`]: libmemcached's protocol conformance suite.
//! - [`php_memcached`]: PHP's `session.save_handler = memcached`, binary and text protocol.
//! - [`lifecycle`]: the stdout/SIGTERM contract the harness itself relies on.
//! - [`durability`]: the journal: a SIGKILL crash harness, torn and corrupt journals,
//!   deadlines and PHP sessions across restarts, and a full disk.
//!
//! The external programs come from Debian packages that `scripts/test.sh` installs; a
//! missing one fails the test with the package name. `SESSIOND_IT_TARGET=memcached` points
//! the client tests at the Debian memcached instead, to check the scenarios themselves
//! against the reference server.

mod durability;
mod lifecycle;
mod memccapable;
mod php_memcached;
mod support;
