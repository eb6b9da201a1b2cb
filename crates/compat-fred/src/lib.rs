//! Intentionally empty: this package only exists for its integration test
//! (`tests/tower_sessions.rs`), which runs tower-sessions' Redis store, a real fred client,
//! against sessiond (or, with `SESSIOND_IT_TARGET=redis`, the Debian redis-server).

#![forbid(unsafe_code)]
