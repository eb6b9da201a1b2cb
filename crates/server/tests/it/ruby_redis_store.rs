//! Rails' Redis session store (Debian `ruby-redis-rack`, whose `Rack::Session::Redis`
//! ActionDispatch's store subclasses, on `ruby-redis-store` and `ruby-redis`) against the
//! server under test, driven by `tests/ruby/session_store.rb`: a new session, a read, a
//! write and a destroy carried by the session cookie as a browser would, then the store's
//! `setnx` with an expiry, which redis-store sends as `MULTI { SETNX; EXPIRE }` (the way the
//! session store claims a fresh id). What the Ruby side reports is checked, and what it left
//! on the server through the harness's raw RESP client. With `SESSIOND_IT_TARGET=redis` the
//! same test runs against redis-server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{Resp, RespServer, require_program, run_with_timeout};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ruby/session_store.rb")
}

#[test]
fn rails_redis_session_store_new_read_write_destroy() {
    let ruby = require_program("ruby", "ruby-redis-rack");
    let server = RespServer::start();
    server.header("ruby-redis-store");
    let run = run_with_timeout(
        "ruby session_store.rb",
        Command::new(ruby)
            .arg(script())
            .arg(server.addr().to_string()),
        Duration::from_secs(60),
    );
    assert!(
        run.status.success(),
        "the Ruby session store failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr,
        server.diagnostics()
    );
    let seen: BTreeMap<&str, &str> = run
        .stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let get = |name: &str| {
        *seen
            .get(name)
            .unwrap_or_else(|| panic!("the script did not report {name}:\n{}", run.stdout))
    };
    // The session carries its data from request to request under one id.
    assert_eq!(get("login.body"), "alice|1");
    assert_eq!(get("read.body"), "alice|1");
    assert_eq!(get("write.body"), "alice|2");
    assert_eq!(get("reread.body"), "alice|2");
    for step in ["read", "write", "reread"] {
        assert_eq!(get(&format!("{step}.sid")), get("login.sid"));
    }
    // Destroyed: the data is gone and the browser gets a new, empty session.
    assert_eq!(get("logout.body"), "|");
    assert_eq!(get("after.body"), "|");
    assert_ne!(get("logout.sid"), get("login.sid"));

    let mut client = server.client(None);
    assert!(
        !client.exists(get("login.key")),
        "the destroyed session's key is still there"
    );
    let ttl = client.call(&["TTL", get("after.key")]).value;
    assert!(
        matches!(ttl, Resp::Int(t) if t > 0 && t <= 600),
        "the new session was stored with expire_after 600, TTL {ttl:?}"
    );

    // MULTI { SETNX; EXPIRE }: the first claim wins and gets its expiry, the second loses.
    assert_eq!(get("setnx.first"), "[true, true]");
    assert_eq!(get("setnx.second"), "[false, true]");
    assert_eq!(get("setnx.value"), "\"one\"");
    assert_eq!(get("setnx.ttl"), "120");
    // redis-store keeps Ruby values Marshal-encoded (format 4.8).
    let stored = client
        .get(get("setnx.key"))
        .expect("the claimed key is stored");
    assert!(
        stored.starts_with(&[4, 8]) && stored.windows(3).any(|w| w == b"one"),
        "stored {stored:?}"
    );
}
