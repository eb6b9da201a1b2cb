//! What only this suite needs on top of the workspace's test harness
//! (`sessiond-test-harness`, which starts the servers and holds the raw clients): the
//! memcached-protocol server selected by `SESSIOND_IT_TARGET` ([`TestServer`]), the meta TTL
//! probe, counters that memcached and sessiond spell differently, and hex for the PHP
//! scripts' output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use sessiond_test_harness::{McClient, Memcached, Sessiond, Target};

/// The server a memcached-protocol test runs against: sessiond, or memcached when
/// `SESSIOND_IT_TARGET=memcached`.
pub enum TestServer {
    Sessiond(Sessiond),
    Memcached(Memcached),
}

impl TestServer {
    /// Starts the server selected by [`Target::from_env`].
    pub fn start() -> TestServer {
        match Target::from_env() {
            Target::Sessiond | Target::Redis => TestServer::Sessiond(Sessiond::start(&[])),
            Target::Memcached => TestServer::Memcached(Memcached::start()),
        }
    }

    pub fn memcache_addr(&self) -> SocketAddr {
        match self {
            TestServer::Sessiond(s) => s.memcache_addr(),
            TestServer::Memcached(m) => m.memcache_addr(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            TestServer::Sessiond(_) => "sessiond",
            TestServer::Memcached(_) => "memcached",
        }
    }

    /// Server-side diagnostics for a failure message (sessiond's stderr tail).
    pub fn diagnostics(&self) -> String {
        match self {
            TestServer::Sessiond(s) => format!("sessiond stderr tail:\n{}", s.log_tail()),
            TestServer::Memcached(_) => String::new(),
        }
    }
}

/// The remaining TTL of `key` in seconds via the meta command `mg <key> t` (`Ok(Some(-1))` =
/// never expires, `Ok(None)` = miss). Meta commands are optional for sessiond, so anything
/// else (`ERROR`, a closed connection) comes back as `Err(what happened)` for the caller to
/// report. Uses a connection of its own, so a server that hangs up on an unknown command
/// cannot disturb the caller's other connections.
pub fn meta_ttl(addr: SocketAddr, key: &str) -> Result<Option<i64>, String> {
    let mut client = McClient::try_connect(addr).map_err(|e| format!("connect: {e}"))?;
    client.send(format!("mg {key} t\r\n").as_bytes());
    let reply = match client.read_raw_line() {
        Ok(reply) if reply.is_empty() => return Err("connection closed".into()),
        Ok(reply) => reply,
        Err(e) => return Err(format!("read: {e}")),
    };
    let reply = String::from_utf8_lossy(&reply).trim_end().to_string();
    if reply == "EN" {
        return Ok(None);
    }
    reply
        .strip_prefix("HD ")
        .and_then(|flags| flags.split(' ').find_map(|f| f.strip_prefix('t')))
        .and_then(|t| t.parse().ok())
        .map(Some)
        .ok_or(reply)
}

/// Looks up a counter that memcached and sessiond may spell differently (e.g. memcached's
/// `cmd_touch`); fails with the full stats map if none of `names` is present.
pub fn counter(stats: &BTreeMap<String, String>, names: &[&str]) -> u64 {
    for name in names {
        if let Some(v) = stats.get(*name) {
            return v
                .parse()
                .unwrap_or_else(|e| panic!("stat {name}={v:?} is not a counter: {e}"));
        }
    }
    panic!("none of the stats {names:?} is reported; stats were: {stats:?}");
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Inverse of [`hex`]; panics on malformed input (it only ever decodes our PHP script's
/// output).
pub fn unhex(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 2, 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}
