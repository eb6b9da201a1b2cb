//! PHP's `session.save_handler = redis` (phpredis, Debian `php-redis`) against the server
//! under test, driven through `tests/php/session.php` with the packaged PHP CLI.
//!
//! The key layout is phpredis's: `PHPREDIS_SESSION:<sid>` for data (another prefix with
//! `?prefix=`) and `<key>_LOCK` for the lock. What the PHP processes report is checked, and so
//! is what they left on the server, through the harness's raw RESP client (`RespClient`). The
//! commands the scenarios make phpredis send (captured from it; see docs/redis.md): GET,
//! SETEX, EXPIRE (lazy write), DEL, EXISTS (strict mode), SELECT before every command
//! (`database=`), AUTH (`auth=`), and for locking `SET … NX` (`SET … NX PX <ms>` when
//! `max_execution_time` or `redis.session.lock_expire` gives the lock a lifetime, as under
//! php-fpm; with `lock_expire`, also a GET of the lock before each write), then EVALSHA of
//! the unlock script, which a fresh server answers with NOSCRIPT, then EVAL.

use std::net::SocketAddr;
use std::time::Duration;

use crate::php::{
    PHP_TIMEOUT, Php, assert_login_refused, fill, finish, finish_unchecked, id, new_sid, php_with,
    read_session, set, steps, vars, write_session,
};
use sessiond_test_harness::{PASSWORD, Resp, RespClient, RespServer};

pub(crate) fn data_key(sid: &str) -> String {
    format!("PHPREDIS_SESSION:{sid}")
}

/// phpredis's session handler on `server`, with options appended to the save path
/// (`database=3&prefix=app:` …). Locking is off unless a scenario turns it on.
fn php(server: &RespServer, options: &str) -> Php {
    phpredis(server.addr(), options)
}

/// phpredis's session handler on the RESP listener at `addr`, with `options` as in [`php`].
pub(crate) fn phpredis(addr: SocketAddr, options: &str) -> Php {
    let mut path = format!("tcp://{addr}");
    if !options.is_empty() {
        path = format!("{path}?{options}");
    }
    Php::new(php_with("redis", "php-redis"), "redis", &path)
        .with("redis.session.locking_enabled", "0")
}

/// [`phpredis`] with `redis.session.locking_enabled=1`, retrying every 20 ms for up to 10 s:
/// contention costs milliseconds and the lock is never given up on during a test
/// (phpredis 5.3.7 would then go on read-only with a notice, which fails the test anyway).
pub(crate) fn phpredis_with_locking(addr: SocketAddr) -> Php {
    phpredis(addr, "")
        .with("redis.session.locking_enabled", "1")
        .with("redis.session.lock_wait_time", "20000")
        .with("redis.session.lock_retries", "500")
}

/// Writes in one process, reads in another, byte for byte, including bytes that mean
/// something in RESP framing (`\r\n$-1\r\n`), NUL and non-UTF-8 bytes, and a 300 kB value.
#[test]
fn phpredis_roundtrip() {
    let server = RespServer::start();
    server.header("phpredis roundtrip");
    let php = php(&server, "");
    let sid = new_sid("rt");
    let framing = b"line1\r\n$-1\r\n*2\r\n+OK\r\n".as_slice();
    let binary = b"a\0b\xff\xfe\x80c".as_slice();
    let run = php.run(
        "writer",
        &[
            id(&sid),
            "start".into(),
            set("user", b"alice"),
            set("framing", framing),
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
        ("framing", framing),
        ("binary", binary),
        ("big", &big),
    ]);
    assert!(got == want, "reader saw different data: {got:?}");

    let stored = server
        .client(None)
        .get(&data_key(&sid))
        .unwrap_or_else(|| panic!("{} is missing on the server", data_key(&sid)));
    assert!(
        stored.starts_with(b"user|s:5:\"alice\";"),
        "stored value is not PHP-serialized session data: {:?}",
        String::from_utf8_lossy(&stored[..stored.len().min(64)])
    );
    println!(
        "  session {sid}: {} bytes stored, read back identically",
        stored.len()
    );
}

/// lazy_write: an unchanged session is written back with `EXPIRE <key> <gc_maxlifetime>`,
/// not SETEX. Observed without TTL commands (no session client sends TTL, so the server need
/// not have it): the writer stores the session with a 4-second lifetime, a reader with a
/// long lifetime reads it unchanged, and then an untouched control session is written with
/// the 4-second lifetime. Once the control session has expired, the read session must still
/// be there with its value unchanged: only an EXPIRE with the reader's lifetime can have
/// kept it.
#[test]
fn phpredis_lazy_write_sends_expire() {
    let server = RespServer::start();
    server.header("phpredis lazy_write");
    let short = php(&server, "").with("session.gc_maxlifetime", "4");
    let long = php(&server, "").with("session.gc_maxlifetime", "1440");
    let (sid, control) = (new_sid("lw"), new_sid("lwc"));
    let mut rc = server.client(None);

    write_session(&short, "writer", &sid, &[("user", b"alice")]);
    let stored = rc.get(&data_key(&sid)).expect("session stored");

    let got = read_session(&long, "unchanged reader", &sid);
    assert!(
        got == vars(&[("user", b"alice")]),
        "the reader saw {got:?}; if empty, it started after the 4 s lifetime had run out \
         (an overloaded machine), not a server bug"
    );
    // Written after the read: its deadline is later than the first session's original one
    // and later than a 4 s EXPIRE by the reader would have set, so the check below tells
    // "EXPIRE with the reader's lifetime" from "no EXPIRE" and from "EXPIRE with the old one".
    write_session(&short, "control writer", &control, &[("user", b"bob")]);
    rc.wait_gone(&data_key(&control), Duration::from_secs(15));
    let now = rc.get(&data_key(&sid)).unwrap_or_else(|| {
        panic!(
            "the unchanged session expired with its original lifetime: the lazy write's \
             EXPIRE {} 1440 did not take effect\n{}",
            data_key(&sid),
            server.diagnostics()
        )
    });
    assert_eq!(now, stored, "a lazy write must not change the value");
    println!("  control session expired; the read one is alive and unchanged");
}

/// `session_regenerate_id(true)`: the old key is deleted, the new id carries the data.
#[test]
fn phpredis_regenerate() {
    let server = RespServer::start();
    server.header("phpredis regenerate");
    let php = php(&server, "");
    let sid = new_sid("rg");
    write_session(&php, "writer", &sid, &[("user", b"alice")]);
    let run = php.run(
        "regenerator",
        &[
            id(&sid),
            "start".into(),
            "regenerate".into(),
            "close".into(),
        ],
    );
    let f = run.nth("regenerated", 0);
    assert_eq!(f[0], "1", "session_regenerate_id failed:\n{}", run.stdout);
    let new = f[1].to_string();
    assert_ne!(new, sid);
    let mut rc = server.client(None);
    assert!(
        !rc.exists(&data_key(&sid)),
        "old session key survived regenerate"
    );
    let got = read_session(&php, "reader", &new);
    assert!(got == vars(&[("user", b"alice")]), "new id read {got:?}");
    println!("  {sid} -> {new}; old key deleted, data under the new id");
}

/// `session_destroy()`: DEL of the key; a later process starts empty under the same id.
#[test]
fn phpredis_destroy() {
    let server = RespServer::start();
    server.header("phpredis destroy");
    let php = php(&server, "");
    let sid = new_sid("ds");
    write_session(&php, "writer", &sid, &[("user", b"alice")]);
    let run = php.run("destroyer", &[id(&sid), "start".into(), "destroy".into()]);
    assert_eq!(run.nth("destroyed", 0), ["1"], "session_destroy failed");
    assert!(
        !server.client(None).exists(&data_key(&sid)),
        "session key survived session_destroy()"
    );
    assert!(read_session(&php, "reader", &sid).is_empty());
    println!("  {sid} destroyed; key gone");
}

/// `session.use_strict_mode=1`: phpredis validates a client-supplied id with EXISTS and
/// compares the raw reply to exactly `:1`. An unknown id is replaced, and the probe leaves
/// nothing behind; an id the server issued is accepted with its data.
#[test]
fn phpredis_strict_mode() {
    let server = RespServer::start();
    server.header("phpredis strict mode");
    let php = php(&server, "").with("session.use_strict_mode", "1");
    let unknown = new_sid("evil");
    let run = php.run(
        "probe",
        &[
            id(&unknown),
            "start".into(),
            set("who", b"probe"),
            "close".into(),
        ],
    );
    let issued = run.started(0);
    assert_ne!(
        issued,
        unknown,
        "strict mode accepted the never-issued id {unknown}\n{}",
        server.diagnostics()
    );
    let mut rc = server.client(None);
    assert!(!rc.exists(&data_key(&unknown)), "the probed id exists now");
    let run = php.run("known id", &[id(&issued), "start".into(), "close".into()]);
    assert_eq!(run.started(0), issued, "strict mode refused an issued id");
    assert!(
        run.vars(0) == vars(&[("who", b"probe")]),
        "issued id lost its data"
    );
    println!("  {unknown} refused, PHP issued {issued}, which is accepted later");
}

/// `database=3&prefix=…` in the save path: phpredis sends `SELECT 3` before every command.
/// The session lands in database 3 under the prefix and nowhere else, and reads, lazy
/// writes and destroy all go to database 3.
#[test]
fn phpredis_database_and_prefix() {
    let server = RespServer::start();
    server.header("phpredis database=3");
    let php = php(&server, "database=3&prefix=myapp:sess:");
    let sid = new_sid("db");
    let key = format!("myapp:sess:{sid}");
    write_session(&php, "writer", &sid, &[("user", b"alice")]);
    let mut rc = server.client(None);
    assert!(!rc.exists(&key), "{key} was written to database 0");
    assert!(!rc.exists(&data_key(&sid)), "the default prefix was used");
    rc.ok(&["SELECT", "3"]);
    let stored = rc
        .get(&key)
        .unwrap_or_else(|| panic!("{key} is not in database 3\n{}", server.diagnostics()));
    assert!(stored.starts_with(b"user|s:5:\"alice\";"));
    assert!(read_session(&php, "reader", &sid) == vars(&[("user", b"alice")]));
    let run = php.run("destroyer", &[id(&sid), "start".into(), "destroy".into()]);
    assert_eq!(run.nth("destroyed", 0), ["1"]);
    assert!(!rc.exists(&key), "{key} survived destroy in database 3");
    println!("  {key} written, read and destroyed in database 3 only");
}

/// `auth=` in the save path against a server with a password: AUTH once after connect, then
/// the session works. A wrong password makes PHP fail the read and store nothing.
#[test]
fn phpredis_auth() {
    let server = RespServer::start_with(Some(PASSWORD));
    server.header("phpredis auth=");
    let mut rc = RespClient::connect(server.addr());
    let reply = rc.call(&["GET", "x"]);
    assert!(
        matches!(&reply.value, Resp::Error(e) if e.starts_with("NOAUTH")),
        "a command before AUTH on a server with a password: expected -NOAUTH, got {reply}"
    );
    let sid = new_sid("au");
    let good = php(&server, &format!("auth={PASSWORD}"));
    write_session(&good, "writer", &sid, &[("user", b"alice")]);
    assert!(read_session(&good, "reader", &sid) == vars(&[("user", b"alice")]));

    let bad_sid = new_sid("aub");
    let bad = php(&server, "auth=wrong-password");
    assert_login_refused(&bad, "wrong password", &bad_sid);
    let mut rc = server.client(Some(PASSWORD));
    assert!(rc.exists(&data_key(&sid)));
    assert!(
        !rc.exists(&data_key(&bad_sid)),
        "a client with a wrong password wrote a session"
    );
    println!("  right password: session works; wrong password: read refused, nothing stored");
}

/// `redis.session.locking_enabled=1` with two concurrent processes on one session. The first
/// holds the lock (`SET <key>_LOCK <host|pid> NX`) until the second has announced it is about
/// to call `session_start()`; the second must block until the first releases, then see its
/// complete write. Release is phpredis's compare-and-delete script: EVALSHA first, which a
/// server that has not seen the script answers with NOSCRIPT (checked on the raw client
/// first), then EVAL. A failed release would leave the lock key behind and make phpredis
/// warn, and any warning fails the test.
#[test]
fn phpredis_locking() {
    const SHA: &str = "b70c2384248f88e6b75b9f89241a180f856ad852";
    let server = RespServer::start();
    server.header("phpredis locking");
    let mut rc = server.client(None);
    let reply = rc.call(&["EVALSHA", SHA, "1", "PHPREDIS_SESSION:none_LOCK", "x"]);
    assert!(
        matches!(&reply.value, Resp::Error(e) if e.starts_with("NOSCRIPT")),
        "EVALSHA of phpredis's unlock script on a fresh server: expected -NOSCRIPT (Redis: \
         `-NOSCRIPT No matching script. Please use EVAL.`), got {reply}"
    );

    let php = phpredis_with_locking(server.addr());
    let sid = new_sid("lk");
    let lock = format!("{}_LOCK", data_key(&sid));
    write_session(&php, "seeder", &sid, &[("seed", b"0")]);
    assert!(!rc.exists(&lock), "the seeder left its lock behind");

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
    let holder = rc
        .get(&lock)
        .unwrap_or_else(|| panic!("the first process holds the session but {lock} is absent"));
    assert!(
        holder.contains(&b'|'),
        "lock value is not phpredis's <host>|<pid>: {:?}",
        String::from_utf8_lossy(&holder)
    );

    let mut second = php.spawn(
        "second",
        &steps(&[
            &id(&sid),
            "say:starting",
            "time:before",
            "start",
            "time:acquired",
            "close",
        ]),
    );
    second.expect_line("starting", PHP_TIMEOUT);
    // From here the first process holds the lock for another 300 ms.
    first.send("go\n");
    let first = finish(first);
    let second = finish(second);
    assert_eq!(first.started(0), sid);
    assert_eq!(second.started(0), sid);
    let (release, before, acquired) = (
        first.time("release"),
        second.time("before"),
        second.time("acquired"),
    );
    assert!(
        acquired >= release,
        "the second process got the session at {acquired:.6} before the first released it \
         at {release:.6}: the lock did not block it"
    );
    let got = second.vars(0);
    assert!(
        got == vars(&[("seed", b"0"), ("a", b"1"), ("b", b"2")]),
        "the second process did not see the first one's complete write: {got:?}"
    );
    assert!(
        !rc.exists(&lock),
        "{lock} survived both processes: the EVALSHA/EVAL unlock failed\n{}",
        server.diagnostics()
    );
    println!(
        "  lock held as {:?}; second blocked {:.0} ms, acquired {:.1} ms after the first \
         began releasing, saw seed+a+b; lock key gone",
        String::from_utf8_lossy(&holder),
        (acquired - before) * 1000.0,
        (acquired - release) * 1000.0
    );
}

/// The lock as php-fpm takes it. The CLI runs with `max_execution_time = 0`, so the tests
/// above see `SET <lock> <host|pid> NX` with no expiry; under php-fpm (`max_execution_time`
/// 30, the farm's and its benchmark's setting) phpredis sends `SET <lock> <host|pid> NX PX
/// 30000`, so a worker that dies holding the lock blocks its session for 30 s, not forever.
/// Checked here: the held lock carries that deadline, a lock left by a crashed worker is
/// waited for and then taken once its `PX` has run out, and neither run leaves a lock behind.
#[test]
fn phpredis_lock_with_expiry_as_php_fpm() {
    let server = RespServer::start();
    server.header("phpredis lock with PX (php-fpm's max_execution_time)");
    let php = phpredis_with_locking(server.addr()).with("max_execution_time", "30");
    let mut rc = server.client(None);
    let sid = new_sid("px");
    let lock = format!("{}_LOCK", data_key(&sid));
    write_session(&php, "seeder", &sid, &[("seed", b"0")]);

    let mut holder = php.spawn(
        "holder",
        &[
            id(&sid),
            "start".into(),
            set("a", b"1"),
            "say:locked".into(),
            "wait".into(),
            "close".into(),
        ],
    );
    holder.expect_line("locked", PHP_TIMEOUT);
    let reply = rc.call(&["PTTL", &lock]);
    let Resp::Int(pttl) = reply.value else {
        panic!("PTTL {lock}: expected an integer, got {reply}");
    };
    assert!(
        (1..=30_000).contains(&pttl),
        "the held lock's PTTL is {pttl}: phpredis sent PX 30000 (max_execution_time 30 s), \
         so it must be in 1..=30000 ms\n{}",
        server.diagnostics()
    );
    holder.send("go\n");
    finish(holder);
    assert!(!rc.exists(&lock), "{lock} survived the holder's release");

    // A worker that crashed holding the lock: its key stays until its PX runs out (a short
    // one here), and the next request waits for that instead of reading past the lock.
    rc.ok(&["SET", &lock, "crashed-host|1", "NX", "PX", "300"]);
    let run = php.run(
        "after a crash",
        &[id(&sid), "start".into(), set("c", b"3"), "close".into()],
    );
    assert_eq!(run.started(0), sid);
    assert!(
        run.vars(0) == vars(&[("seed", b"0"), ("a", b"1")]),
        "the request after the crashed worker's lock expired read {:?}",
        run.vars(0)
    );
    assert!(
        !rc.exists(&lock),
        "{lock} is left behind after the request that took the expired lock"
    );
    let got = read_session(&php, "reader", &sid);
    assert!(
        got == vars(&[("seed", b"0"), ("a", b"1"), ("c", b"3")]),
        "the write made under the taken-over lock is missing: {got:?}"
    );
    println!("  held lock PTTL {pttl} ms; a crashed worker's 300 ms lock was waited out and taken");
}

/// `redis.session.lock_expire` set: before writing, phpredis reads the lock (`GET`) and
/// writes only if it still holds its own secret. A process whose lock expired and was taken
/// by another worker must refuse to write (PHP warns "Failed to refresh session lock") and
/// must not release the other worker's lock.
#[test]
fn phpredis_lost_lock_refuses_the_write() {
    let server = RespServer::start();
    server.header("phpredis lost lock (lock_expire set)");
    let php = phpredis_with_locking(server.addr()).with("redis.session.lock_expire", "30");
    let mut rc = server.client(None);
    let sid = new_sid("lost");
    let lock = format!("{}_LOCK", data_key(&sid));
    write_session(&php, "seeder", &sid, &[("seed", b"0")]);

    let mut late = php.spawn(
        "late writer",
        &[
            id(&sid),
            "start".into(),
            set("late", b"1"),
            "say:locked".into(),
            "wait".into(),
            "close".into(),
        ],
    );
    late.expect_line("locked", PHP_TIMEOUT);
    // As if the late writer's lock had expired and another worker had taken it.
    rc.ok(&["SET", &lock, "other-host|2", "PX", "30000"]);
    late.send("go\n");
    let run = finish_unchecked(late);
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("Failed to refresh session lock")),
        "the late writer did not notice it lost the lock; warnings {:?}\n{}\n{}",
        run.warnings,
        run.stdout,
        server.diagnostics()
    );
    assert_eq!(
        rc.get(&lock).as_deref(),
        Some(b"other-host|2".as_slice()),
        "the late writer removed or replaced the other worker's lock"
    );
    let reply = rc.call(&["DEL", &lock]);
    assert!(matches!(reply.value, Resp::Int(1)), "DEL {lock}: {reply}");
    let got = read_session(&php, "reader", &sid);
    assert!(
        got == vars(&[("seed", b"0")]),
        "a process that had lost its lock wrote the session: {got:?}"
    );
    println!(
        "  the late writer warned {:?} and wrote nothing",
        run.warnings
    );
}
