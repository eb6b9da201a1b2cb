//! sessiond's benchmark kit: a load generator for memcached text, memcached binary and RESP,
//! a do-nothing ceiling server, and a side-by-side comparison against memcached and Redis.
//!
//! ```text
//!   workload::OpStream ──Op──▶ proto::encode ──bytes──▶ server
//!        (per connection)        ◀──replies── proto::ReplyDecoder ◀──┘
//!   run::run: one task per connection, closed loop with pipelining or open loop at a rate,
//!             latencies into HDR histograms
//!   compare:  servers::start ▸ preload ▸ run ▸ stop, rounds × servers, then table + chart
//!   expiry:   keys with deadlines spread over a window ▸ `expired` events ▸ lateness (HDR)
//! ```
//!
//! The binary is `sessiond-load` (`run`, `ceiling`, `compare`, `expiry`); see
//! docs/benchmarks.md. The benchmark is not a test: the only automated check is
//! `compare --smoke`, a few-second run that proves the kit works and asserts nothing about
//! speed.
//!
//! What this crate deliberately does not do: encode memcached itself (it uses
//! `sessiond-proto-memcache`'s client side), or assert performance targets.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ceiling;
pub mod chart;
pub mod compare;
pub mod expiry;
pub mod procstat;
pub mod proto;
pub mod resp;
pub mod run;
pub mod servers;
pub mod tls;
pub mod workload;
