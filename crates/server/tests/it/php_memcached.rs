//! PHP's stock `session.save_handler = memcached` (php-memcached on libmemcached) against the
//! server under test, driven through `tests/php/session.php` with the packaged PHP CLI.
//!
//! Every scenario runs twice, once per wire format (`memcached.sess_binary_protocol` On, the
//! php-memcached default, and Off for the text protocol), as the `binary::*` and `text::*`
//! tests. Locking is on with short lock waits, so contention costs milliseconds. What the PHP
//! processes report (session id, variables read, timestamps) is checked, and so is what they
//! left on the server, through the raw text-protocol client in `support`. The key layout is
//! php-memcached's: `memc.sess.key.<sid>` for data and `memc.sess.key.lock.<sid>` for locks.

use std::net::SocketAddr;

use crate::php::{
    PHP_TIMEOUT, Php, fill, finish, id, new_sid, php_with, read_session, set, vars, write_session,
};
use crate::support::{TestServer, counter, meta_ttl};
use sessiond_test_harness::{McClient, Sessiond, Target, TempDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Binary,
    Text,
}

pub(crate) fn data_key(sid: &str) -> String {
    format!("memc.sess.key.{sid}")
}

pub(crate) fn lock_key(sid: &str) -> String {
    format!("memc.sess.key.lock.{sid}")
}

/// PHP with `session.save_handler = memcached` on `servers`, in the given wire format.
/// Locking is on with a short back-off (20 ms doubling to 100 ms, 100 retries: about 10 s in
/// total), which keeps contention cheap without ever giving up during a test.
pub(crate) fn memcached_php(servers: &[SocketAddr], proto: Proto) -> Php {
    let save_path = servers
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    Php::new(
        php_with("memcached", "php-memcached"),
        "memcached",
        &save_path,
    )
    .with("memcached.sess_prefix", "memc.sess.key.")
    .with("memcached.sess_persistent", "0")
    .with("memcached.sess_locking", "1")
    .with("memcached.sess_lock_wait_min", "20")
    .with("memcached.sess_lock_wait_max", "100")
    .with("memcached.sess_lock_retries", "100")
    .with("memcached.sess_consistent_hash", "1")
    .with(
        "memcached.sess_binary_protocol",
        if proto == Proto::Binary { "1" } else { "0" },
    )
}

/// Fails with `what`, the server's diagnostics and the session keys it holds.
fn assert_absent(mc: &mut McClient, server: &TestServer, key: &str, what: &str) {
    if let Some(item) = mc.get(key) {
        panic!(
            "{what}: key {key} is still alive on {} (flags {}, {} bytes: {:?})\n{}",
            server.name(),
            item.flags,
            item.value.len(),
            String::from_utf8_lossy(&item.value),
            server.diagnostics()
        );
    }
}

fn header(scenario: &str, proto: Proto, server: &TestServer) {
    println!(
        "scenario {scenario}, protocol {proto:?}, server {} at {}",
        server.name(),
        server.memcache_addr()
    );
}

/// (a) A session written by one PHP process is read back, byte for byte, by another. The
/// values include text-protocol framing bytes (`\r\nEND\r\n`), NUL and non-UTF-8 bytes, and a
/// 300 kB value, so framing and binary safety are exercised along with the happy path.
fn roundtrip(proto: Proto) {
    let server = TestServer::start();
    header("roundtrip", proto, &server);
    let php = memcached_php(&[server.memcache_addr()], proto);
    let sid = new_sid("rt");
    let crlf = b"line1\r\nEND\r\nVALUE x 0 1\r\nz\r\n".as_slice();
    let binary = b"a\0b\xff\xfe\x80c".as_slice();

    let run = php.run(
        "writer",
        &[
            id(&sid),
            "start".into(),
            set("user", b"alice"),
            set("crlf", crlf),
            set("binary", binary),
            "fill:big=300000".into(),
            "close".into(),
        ],
    );
    assert_eq!(run.started(0), sid);
    assert!(run.vars(0).is_empty(), "a new session must start empty");

    let got = read_session(&php, "reader", &sid);
    let big = fill(300_000);
    let want = vars(&[
        ("user", b"alice"),
        ("crlf", crlf),
        ("binary", binary),
        ("big", &big),
    ]);
    assert!(got == want, "reader saw different data: {got:?}");

    let mut mc = McClient::connect(server.memcache_addr());
    let item = mc
        .get(&data_key(&sid))
        .unwrap_or_else(|| panic!("{} is missing on the server", data_key(&sid)));
    assert_eq!(item.flags, 0, "php-memcached stores flags 0");
    assert!(
        item.value.starts_with(b"user|s:5:\"alice\";"),
        "stored value is not PHP-serialized session data: {:?}",
        String::from_utf8_lossy(&item.value[..item.value.len().min(64)])
    );
    assert_absent(
        &mut mc,
        &server,
        &lock_key(&sid),
        "lock released after close",
    );
    println!(
        "  session {sid}: {} bytes stored, read back identically; lock key gone",
        item.value.len()
    );
}

/// (b) lazy_write: a request that leaves the session unchanged sends TOUCH, not SET. Checked
/// through the server's counters (memcached's `cmd_touch`/`touch_hits`), through the value
/// (unchanged) and, where the server speaks meta commands, through the TTL: the reader uses a
/// longer `gc_maxlifetime` than the writer, so the remaining TTL shows the touch took effect
/// without any sleeping.
fn lazy_write(proto: Proto) {
    let server = TestServer::start();
    header("lazy_write", proto, &server);
    let addr = server.memcache_addr();
    let sid = new_sid("lw");
    let writer = memcached_php(&[addr], proto).with("session.gc_maxlifetime", "1000");
    let reader = memcached_php(&[addr], proto).with("session.gc_maxlifetime", "2000");
    let mut mc = McClient::connect(addr);

    write_session(&writer, "writer", &sid, &[("user", b"alice"), ("n", b"1")]);
    let stored = mc.gets(&data_key(&sid)).expect("session stored");
    let ttl_before = meta_ttl(addr, &data_key(&sid));
    let before = mc.stats();

    let got = read_session(&reader, "unchanged reader", &sid);
    assert!(
        got == vars(&[("user", b"alice"), ("n", b"1")]),
        "reader saw {got:?}"
    );
    let after = mc.stats();
    let touches = counter(&after, &["cmd_touch", "touch_cmds"])
        - counter(&before, &["cmd_touch", "touch_cmds"]);
    let hits = counter(&after, &["touch_hits"]) - counter(&before, &["touch_hits"]);
    assert_eq!(
        touches, 1,
        "an unchanged session must be written back with exactly one touch"
    );
    assert_eq!(hits, 1, "the touch must hit the existing session key");
    let now = mc.gets(&data_key(&sid)).expect("session still stored");
    assert_eq!(
        now.value, stored.value,
        "lazy write must not change the value"
    );
    println!(
        "  unchanged read: cmd_touch +{touches}, touch_hits +{hits}, value unchanged, cas {:?} -> {:?}",
        stored.cas, now.cas
    );
    match (ttl_before, meta_ttl(addr, &data_key(&sid))) {
        (Ok(Some(t0)), Ok(Some(t1))) => {
            // Written with 1000 s; the touch must have reset it to 2000 s.
            assert!(t0 <= 1000, "TTL after the SET was {t0}, expected <= 1000");
            assert!(
                (1001..=2000).contains(&t1),
                "TTL after the touch was {t1}, expected the reader's gc_maxlifetime 2000"
            );
            println!("  TTL via `mg t`: {t0} s after SET, {t1} s after touch");
        }
        (a, b) => println!("  TTL not checked: `mg <key> t` answered {a:?} / {b:?}"),
    }

    // Control: a request that does change the data must SET, not touch.
    let before = mc.stats();
    let run = reader.run(
        "changing writer",
        &[id(&sid), "start".into(), set("n", b"2"), "close".into()],
    );
    assert_eq!(run.started(0), sid);
    let after = mc.stats();
    let touches = counter(&after, &["cmd_touch", "touch_cmds"])
        - counter(&before, &["cmd_touch", "touch_cmds"]);
    assert_eq!(touches, 0, "a changed session must be SET, not touched");
    let got = read_session(&reader, "second reader", &sid);
    assert!(
        got == vars(&[("user", b"alice"), ("n", b"2")]),
        "saw {got:?}"
    );
    println!("  changed write: no touch, new value read back");
}

/// (c) `session_regenerate_id(true)`: the new id carries the data, the old one is deleted.
fn regenerate(proto: Proto) {
    let server = TestServer::start();
    header("regenerate", proto, &server);
    let php = memcached_php(&[server.memcache_addr()], proto);
    let old = new_sid("rg");
    write_session(&php, "writer", &old, &[("user", b"alice")]);

    let run = php.run(
        "regenerator",
        &[
            id(&old),
            "start".into(),
            "regenerate".into(),
            set("step", b"2"),
            "close".into(),
        ],
    );
    assert_eq!(run.started(0), old);
    let f = run.nth("regenerated", 0);
    assert_eq!(
        f[0], "1",
        "session_regenerate_id(true) failed:\n{}",
        run.stdout
    );
    let new = f[1].to_string();
    assert_ne!(new, old, "regenerate kept the old id");

    let got = read_session(&php, "new-id reader", &new);
    assert!(
        got == vars(&[("user", b"alice"), ("step", b"2")]),
        "new id holds {got:?}"
    );
    let mut mc = McClient::connect(server.memcache_addr());
    assert_absent(&mut mc, &server, &data_key(&old), "old id after regenerate");
    assert_absent(
        &mut mc,
        &server,
        &lock_key(&old),
        "old lock after regenerate",
    );
    assert_absent(&mut mc, &server, &lock_key(&new), "new lock after close");
    // Reading the old id now starts a fresh, empty session. (PHP then writes that empty
    // session back, so the key reappears with 0 bytes: client behaviour, not checked.)
    let got = read_session(&php, "old-id reader", &old);
    assert!(got.is_empty(), "old id still holds {got:?}");
    println!("  {old} -> {new}: data moved, old key and both locks gone");
}

/// (d) `session_destroy()` removes the data (and the lock).
fn destroy(proto: Proto) {
    let server = TestServer::start();
    header("destroy", proto, &server);
    let php = memcached_php(&[server.memcache_addr()], proto);
    let sid = new_sid("ds");
    write_session(&php, "writer", &sid, &[("user", b"alice")]);
    let mut mc = McClient::connect(server.memcache_addr());
    assert!(mc.get(&data_key(&sid)).is_some(), "session not stored");

    let run = php.run("destroyer", &[id(&sid), "start".into(), "destroy".into()]);
    assert_eq!(run.started(0), sid);
    assert_eq!(run.nth("destroyed", 0), ["1"], "session_destroy() failed");
    assert_absent(
        &mut mc,
        &server,
        &data_key(&sid),
        "data after session_destroy()",
    );
    assert_absent(
        &mut mc,
        &server,
        &lock_key(&sid),
        "lock after session_destroy()",
    );
    let got = read_session(&php, "reader", &sid);
    assert!(got.is_empty(), "destroyed session still reads as {got:?}");
    println!("  {sid}: destroyed, key and lock gone, re-read is empty");
}

/// (e) `session.use_strict_mode=1`: an id the server never issued is refused and PHP makes a
/// new one, on every probe. php-memcached validates with `ADD <key> "" exptime=2678400`, an
/// absolute time in 1970, so a server that ignores memcached's 30-day rule would keep the
/// probed key alive and accept the attacker's id on the second probe.
fn strict_mode(proto: Proto) {
    let server = TestServer::start();
    header("strict_mode", proto, &server);
    let php = memcached_php(&[server.memcache_addr()], proto).with("session.use_strict_mode", "1");
    let mut mc = McClient::connect(server.memcache_addr());
    let unknown = new_sid("evil");
    assert_absent(
        &mut mc,
        &server,
        &data_key(&unknown),
        "unknown id before the probes",
    );

    let mut issued = Vec::new();
    for probe in 1..=3 {
        let run = php.run(
            &format!("probe {probe}"),
            &[
                id(&unknown),
                "start".into(),
                set("who", format!("probe{probe}").as_bytes()),
                "close".into(),
            ],
        );
        let got = run.started(0);
        assert_ne!(
            got,
            unknown,
            "probe {probe}: strict mode accepted the never-issued id {unknown}\n{}",
            server.diagnostics()
        );
        assert!(
            run.vars(0).is_empty(),
            "probe {probe}: new session not empty"
        );
        assert!(!issued.contains(&got), "probe {probe}: PHP reused id {got}");
        assert_absent(
            &mut mc,
            &server,
            &data_key(&unknown),
            &format!("probed id after probe {probe} (the 30-day exptime rule)"),
        );
        assert_absent(
            &mut mc,
            &server,
            &lock_key(&unknown),
            "lock of the probed id",
        );
        println!("  probe {probe}: {unknown} refused, PHP issued {got}");
        issued.push(got);
    }

    // Control: an id the server did issue is accepted and keeps its data.
    let run = php.run(
        "known id",
        &[id(&issued[0]), "start".into(), "close".into()],
    );
    assert_eq!(
        run.started(0),
        issued[0],
        "strict mode refused an issued id"
    );
    assert!(
        run.vars(0) == vars(&[("who", b"probe1")]),
        "issued id lost its data"
    );
    println!("  issued id {} accepted with its data", issued[0]);
}

/// (f) Two PHP processes on one session: the second blocks on the lock while the first holds
/// it, then sees the first one's complete write. The handshake is explicit (the first process
/// holds the lock until the second has announced it is about to call `session_start()`), so
/// the order does not depend on scheduling; "blocked" is asserted as an ordering of
/// timestamps (the second acquired only after the first began to release), not a duration.
fn lock_contention(proto: Proto) {
    let server = TestServer::start();
    header("lock_contention", proto, &server);
    let php = memcached_php(&[server.memcache_addr()], proto);
    let sid = new_sid("lk");
    write_session(&php, "seeder", &sid, &[("seed", b"0")]);

    let mut first = php.spawn(
        "first",
        &[
            id(&sid),
            "start".into(),
            set("a", b"1"),
            "say:locked".into(),
            "wait".into(),
            "sleep:300".into(),
            set("b", b"2"),
            "time:release".into(),
            "close".into(),
        ],
    );
    first.expect_line("locked", PHP_TIMEOUT);
    let mut mc = McClient::connect(server.memcache_addr());
    assert!(
        mc.get(&lock_key(&sid)).is_some(),
        "the first process holds the session but no lock key exists"
    );

    let mut second = php.spawn(
        "second",
        &[
            id(&sid),
            "say:starting".into(),
            "time:before".into(),
            "start".into(),
            "time:acquired".into(),
            "close".into(),
        ],
    );
    second.expect_line("starting", PHP_TIMEOUT);
    // From here the first process holds the lock for another 300 ms.
    first.send("go\n");

    let first = finish(first);
    let second = finish(second);
    assert_eq!(first.started(0), sid);
    assert_eq!(second.started(0), sid);
    let release = first.time("release");
    let before = second.time("before");
    let acquired = second.time("acquired");
    assert!(
        acquired >= release,
        "the second process got the session at {acquired:.6} before the first released it at \
         {release:.6}: the lock did not block it"
    );
    let got = second.vars(0);
    assert!(
        got == vars(&[("seed", b"0"), ("a", b"1"), ("b", b"2")]),
        "the second process did not see the first one's complete write: {got:?}"
    );
    assert_absent(&mut mc, &server, &lock_key(&sid), "lock after both closed");
    println!(
        "  second process blocked {:.0} ms in session_start(), acquired {:.1} ms after the \
         first began releasing, and saw seed+a+b",
        (acquired - before) * 1000.0,
        (acquired - release) * 1000.0
    );
}

/// (g) A save path naming two servers with consistent hashing: sessions spread over both and
/// each is found again by a later process.
fn two_servers(proto: Proto) {
    const SESSIONS: usize = 40;
    let servers = [TestServer::start(), TestServer::start()];
    header("two_servers", proto, &servers[0]);
    let addrs = [servers[0].memcache_addr(), servers[1].memcache_addr()];
    println!("  second server {} at {}", servers[1].name(), addrs[1]);
    let php = memcached_php(&addrs, proto);
    let sids: Vec<String> = (0..SESSIONS).map(|_| new_sid("ts")).collect();

    // One process writes all sessions (start/close per id), another reads them all back.
    let mut write = Vec::new();
    for (i, sid) in sids.iter().enumerate() {
        write.extend([
            id(sid),
            "start".into(),
            set("i", i.to_string().as_bytes()),
            "close".into(),
        ]);
    }
    php.run("writer", &write);
    let mut read = Vec::new();
    for sid in &sids {
        read.extend([id(sid), "start".into(), "close".into()]);
    }
    let run = php.run("reader", &read);
    for (i, sid) in sids.iter().enumerate() {
        assert_eq!(&run.started(i), sid);
        assert!(
            run.vars(i) == vars(&[("i", i.to_string().as_bytes())]),
            "session {sid} read back as {:?}",
            run.vars(i)
        );
    }

    let mut clients = addrs.map(McClient::connect);
    let mut per_server = [0usize; 2];
    for sid in &sids {
        let holders: Vec<usize> = (0..2)
            .filter(|&s| clients[s].get(&data_key(sid)).is_some())
            .collect();
        assert_eq!(
            holders.len(),
            1,
            "session {sid} is on servers {holders:?}; expected exactly one"
        );
        per_server[holders[0]] += 1;
    }
    let items = [0, 1].map(|s| counter(&clients[s].stats(), &["curr_items"]));
    println!(
        "  {SESSIONS} sessions read back; keys per server {per_server:?}; curr_items {items:?}"
    );
    assert!(
        per_server.iter().all(|&n| n > 0),
        "consistent hashing put every session on one server: {per_server:?}"
    );
    assert_eq!(
        items.iter().sum::<u64>(),
        SESSIONS as u64,
        "curr_items over both servers should count exactly the sessions (locks released)"
    );
}

/// Sessions survive a restart of sessiond (the journal): written through php-memcached,
/// the server stopped, a new server started on the same data directory (and a new port),
/// and a fresh PHP process reads every session back. The first restart is graceful
/// (SIGTERM), the second a crash (SIGKILL); with the default `--fsync everysec`, a crash of
/// sessiond itself loses nothing that was acknowledged.
fn survives_restart(proto: Proto) {
    if Target::from_env() == Target::Memcached {
        println!("NOT RUN against memcached: memcached loses every session on restart by design");
        return;
    }
    let dir = TempDir::new("php-restart");
    let data = dir.path().to_str().expect("utf-8 temp path").to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    println!("scenario survives_restart, protocol {proto:?}, data dir {data}");
    let sids: Vec<String> = (0..5).map(|i| new_sid(&format!("rs{i}"))).collect();
    let php = memcached_php(&[server.memcache_addr()], proto);
    for (i, sid) in sids.iter().enumerate() {
        write_session(
            &php,
            "writer",
            sid,
            &[("user", format!("user{i}").as_bytes()), ("n", b"1")],
        );
    }
    for how in ["SIGTERM", "SIGKILL"] {
        if how == "SIGTERM" {
            server.stop();
        } else {
            server.kill();
        }
        server = Sessiond::start(&["--data-dir", &data]);
        let php = memcached_php(&[server.memcache_addr()], proto);
        for (i, sid) in sids.iter().enumerate() {
            let got = read_session(&php, "reader after restart", sid);
            let want = vars(&[("user", format!("user{i}").as_bytes()), ("n", b"1")]);
            assert!(got == want, "session {sid} after a {how} restart: {got:?}");
        }
        println!("  {} sessions read back after a {how} restart", sids.len());
    }
}

/// Generates one `#[test]` per scenario and wire format: `binary::<scenario>` and
/// `text::<scenario>`.
macro_rules! both_protocols {
    ($($scenario:ident),* $(,)?) => {
        mod binary {
            $( #[test] fn $scenario() { super::$scenario(super::Proto::Binary) } )*
        }
        mod text {
            $( #[test] fn $scenario() { super::$scenario(super::Proto::Text) } )*
        }
    };
}

both_protocols!(
    roundtrip,
    lazy_write,
    regenerate,
    destroy,
    strict_mode,
    lock_contention,
    two_servers,
    survives_restart,
);
