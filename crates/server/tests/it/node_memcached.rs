//! express-session with connect-memcached (on the `memcached` npm client, text protocol)
//! against sessiond: the script `tests/node/memcached-session.mjs` runs an express app on a
//! free loopback port and drives it over HTTP (login, read, modify, regenerate, logout),
//! checking the stored records (flags 2, JSON) with a raw `get` of its own. The packages are
//! the ones `node_redis` installs (`tests/node/package-lock.json`, `npm ci`).

use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{Sessiond, run_with_timeout, unique};

use crate::node_redis::{node, npm_ci, project};

const NODE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn connect_memcached_session_cycle() {
    let node = node();
    npm_ci();
    let server = Sessiond::start(&[]);
    let prefix = format!("{}:", unique("sess"));
    let mut cmd = Command::new(node);
    cmd.current_dir(project())
        .arg("memcached-session.mjs")
        .env("MEMCACHED", server.memcache_addr().to_string())
        .env("PREFIX", &prefix);
    let out = run_with_timeout("node memcached-session.mjs", &mut cmd, NODE_TIMEOUT);
    assert!(
        out.status.success() && out.stdout.lines().last() == Some("done"),
        "connect-memcached cycle failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr,
        server.log_tail()
    );
}
