//! The one harness for the workspace's integration tests that run real servers: sessiond
//! (the binary built from this workspace), the Debian `memcached` and `redis-server` as
//! references, and the external clients the tests drive. It is used, as a dev-dependency
//! only, by the server's real-client suite (`crates/server/tests/it`), the session
//! middleware's suite (`crates/session/tests/it`) and the fred compatibility test
//! (`crates/compat-fred`); what only one suite needs (PostgreSQL and MariaDB, the
//! memcached-protocol `TestServer`, PHP helpers) stays in that suite.
//!
//! Every server listens on a free loopback port, gets a throwaway directory and is stopped by
//! its own pid (SIGTERM, then SIGKILL) when its handle is dropped. A missing external program
//! fails the test with the Debian package to install; nothing is silently skipped.
//!
//! - [`process`]: finding programs, stopping children by pid, running a program with a
//!   timeout ([`Spawned`], [`run_with_timeout`]), waiting for a port.
//! - [`scratch`]: unique names and throwaway directories; free loopback ports.
//! - [`sessiond`]: which server a test targets ([`Target`]) and a running [`Sessiond`].
//! - [`memcached`]: a running [`Memcached`] and the raw text-protocol [`McClient`].
//! - [`redis`]: a running [`RedisServer`], the sessiond-or-Redis [`RespServer`] and the raw
//!   RESP2/RESP3 [`RespClient`].
//!
//! No dependencies beyond std, deliberately: whatever this crate pulls in would be compiled
//! for the server crate's tests.

pub mod memcached;
pub mod process;
pub mod redis;
pub mod scratch;
pub mod sessiond;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connect, read and write timeout of the raw clients ([`McClient`], [`RespClient`]): long
/// enough for a loaded machine, short enough that a silent server fails the test promptly.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback connection as the raw clients want it: [`IO_TIMEOUT`] everywhere, and
/// `TCP_NODELAY`, since they send one small request and wait for its reply.
fn connect_with_timeouts(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

pub use memcached::{Item, McClient, Memcached};
pub use process::{
    Finished, Spawned, is_root, require_program, run_with_timeout, tail_of_file, terminate,
};
pub use redis::{PASSWORD, RedisServer, Reply, Resp, RespClient, RespServer, escape};
pub use scratch::{TempDir, free_port, unique};
pub use sessiond::{Sessiond, Target, sessiond_binary};
