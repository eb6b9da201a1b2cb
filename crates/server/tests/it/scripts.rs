//! Hostile Lua scripts against the real binary: the attacks that crashed, froze or poisoned
//! the server (a recursive pattern that overflowed a worker's stack, a backtracking pattern
//! that ran for minutes inside one C call while every other command of both protocols waited
//! on a blocked lock, a script redefining the library the next one uses). After each, the
//! server must be up, answer other clients of both protocols, and keep the stored sessions.
//!
//! The script time limit is lowered to half a second so that the aborts come quickly; no
//! assertion is about time: clients read with a generous timeout only so that a regression
//! fails instead of hanging.

use std::time::Duration;

use sessiond_test_harness::{McClient, Reply, Resp, RespClient, Sessiond};

use crate::limits::{BASE, MIB, assert_memory};

/// How long a client waits for a reply before the test fails (a healthy reply comes once the
/// script has been aborted, half a second in).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

fn resp(server: &Sessiond) -> RespClient {
    let mut client = RespClient::connect(server.listener("resp").expect("RESP listener"));
    client.set_read_timeout(REPLY_TIMEOUT);
    client
}

fn error_text(reply: &Reply) -> &str {
    match &reply.value {
        Resp::Error(text) => text,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn hostile_scripts_leave_the_server_serving_both_protocols() {
    let server = Sessiond::start(&["--script-time-limit", "500", "--max-memory", "16m"]);
    let mut setup = resp(&server);
    setup.ok(&["SET", "memc.sess.key.alice", "user_id|i:42;"]);

    // The recursive pattern: refused as too complex instead of overflowing a stack.
    let mut attacker = resp(&server);
    let deep = attacker.call(&[
        "EVAL",
        "return string.find(string.rep('a',100000),string.rep('a?',100000))",
        "0",
    ]);
    assert!(
        error_text(&deep).contains("pattern too complex"),
        "{deep:?}"
    );

    // The backtracking pattern: sent, and while it runs, the other protocol and another RESP
    // client send their commands. They are answered (once the script is aborted), and the
    // script ends with BUSY.
    attacker.send(&[
        b"EVAL",
        b"return string.find(string.rep('a',2000), string.rep('(.-)',12)..'b')",
        b"0",
    ]);
    let mut memcache = McClient::connect(server.memcache_addr());
    assert!(
        memcache.command_line("version").starts_with("VERSION "),
        "memcached version while a script runs"
    );
    let mut other = resp(&server);
    assert_eq!(other.call(&["PING"]).value, Resp::Simple("PONG".into()));
    let busy = attacker.read();
    assert!(error_text(&busy).starts_with("BUSY"), "{busy:?}");

    // A script that catches its own abort is stopped anyway.
    let caught = attacker.call(&[
        "EVAL",
        "while true do pcall(function() while true do end end) end",
        "0",
    ]);
    assert!(error_text(&caught).starts_with("BUSY"), "{caught:?}");

    // Poisoning: one client's attempt to redefine the library fails, and another client's
    // script (phpredis's lock release uses string comparison and redis.call) is unaffected.
    let poison = attacker.call(&["EVAL", "string.len = function() return 1337 end", "0"]);
    assert!(error_text(&poison).contains("readonly"), "{poison:?}");
    let hijack = attacker.call(&["EVAL", "rawset(_G, 'redis', {})", "0"]);
    assert!(error_text(&hijack).contains("readonly"), "{hijack:?}");
    assert_eq!(
        other
            .call(&["EVAL", "return string.len(ARGV[1])", "0", "ab"])
            .value,
        Resp::Int(2)
    );
    other.ok(&["SET", "lock", "token"]);
    assert_eq!(
        other.call(&[
            "EVAL",
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
            "1",
            "lock",
            "token",
        ])
        .value,
        Resp::Int(1)
    );

    // Memory bombs end at the script's own limit (64 MiB), caught or not.
    for bomb in [
        "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end",
        "local s = 'x' while true do s = s .. s end",
        "local t = {} while true do pcall(function() t[#t + 1] = string.rep('y', 4096) .. #t end) end",
    ] {
        let reply = attacker.call(&["EVAL", bomb, "0"]);
        let text = error_text(&reply);
        assert!(
            text.contains("memory") || text.starts_with("BUSY"),
            "{bomb}: {reply:?}"
        );
    }

    // Bytecode never runs.
    let dump = attacker.call(&["EVAL", "return string.dump(function() end)", "0"]);
    assert!(error_text(&dump).contains("dump"), "{dump:?}");

    // The session stored before the attacks is intact, through both protocols.
    assert_eq!(
        setup.get("memc.sess.key.alice").as_deref(),
        Some(&b"user_id|i:42;"[..])
    );
    let item = memcache
        .get("memc.sess.key.alice")
        .expect("session still stored");
    assert_eq!(item.value, b"user_id|i:42;");
    // The stored data (16 MiB at most), the Lua state's limit and the server's own footprint.
    assert_memory(&server, "hostile scripts", 16 * MIB + 64 * MIB + BASE);
}
