//! The session layer (docs/sessions.md) with the real clients: PHP's memcached and redis
//! session handlers (serialize handlers `php` and `php_serialize`) and express-session with
//! passport-style data log users in on several "devices" (session ids); the SESSION.*
//! commands count, list, show and revoke them, and what each device's next request sees is
//! checked with the client itself. Also: a revocation while a request of that user is in
//! flight (the request's write-back is refused, and what PHP reports is printed), the
//! per-user limit, the lifecycle events a subscriber receives, the index after `kill -9` and
//! a restart, and the admin role revocation needs. The middleware's own sessions (`sess:{id}`
//! hashes) are checked in the middleware's suite (`crates/session/tests/it/session_index.rs`),
//! which already builds it.
//!
//! The session layer is sessiond's own: with `SESSIOND_IT_TARGET` naming a reference server
//! these tests say so and do not run.
//!
//! PHP runs with `session.use_strict_mode=0` (PHP's default) unless a step says otherwise,
//! so a revoked device's next request keeps its session id: it reads an empty session
//! (logged out) and PHP's write-back of that empty session is refused too, which the tests
//! check along with PHP's words for it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value as Json, json};
use sessiond_test_harness::{Resp, RespClient, Sessiond, Spawned, Target, TempDir};

use crate::node_redis::{node, npm_ci, project};
use crate::php::{
    PHP_TIMEOUT, Php, PhpRun, finish_unchecked, id, int, new_sid, read_session, set, steps,
};
use crate::php_memcached::{self, Proto, memcached_php};
use crate::php_redis::{self, phpredis, phpredis_with_locking};

/// How long a subscriber waits for an event, or the Node script for a reply: only a bound
/// against hanging, far above what a healthy run takes.
const WAIT: Duration = Duration::from_secs(20);

/// `true`, with the reason printed, when `SESSIOND_IT_TARGET` names a reference server.
pub(crate) fn not_sessiond() -> bool {
    let other = Target::from_env() != Target::Sessiond;
    if other {
        println!(
            "NOT RUN: SESSIOND_IT_TARGET={}; the session layer (SESSION.*, revocation, \
             lifecycle events) is sessiond's own",
            std::env::var("SESSIOND_IT_TARGET").unwrap_or_default()
        );
    }
    other
}

/// One `#[test]` per case of a scenario function, in a module named after the scenario:
/// `devices::phpredis_php` runs `devices(Handler::Redis, "php")`.
macro_rules! cases {
    ($scenario:ident { $($case:ident: ($($arg:expr),*)),* $(,)? }) => {
        mod $scenario {
            use super::{Handler, Proto};
            $( #[test] fn $case() { super::$scenario($($arg),*) } )*
        }
    };
}

fn resp_addr(server: &Sessiond) -> SocketAddr {
    server
        .listener("resp")
        .unwrap_or_else(|| panic!("no RESP listener\n{}", server.log_tail()))
}

/// A PHP session save handler, with the key layout and session family it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    /// `session.save_handler = memcached`, in one of php-memcached's wire formats.
    Memcached(Proto),
    /// `session.save_handler = redis` (phpredis).
    Redis,
}

impl Handler {
    fn family(self) -> &'static str {
        match self {
            Handler::Memcached(_) => "php-memcached",
            Handler::Redis => "phpredis",
        }
    }

    fn key(self, sid: &str) -> String {
        match self {
            Handler::Memcached(_) => php_memcached::data_key(sid),
            Handler::Redis => php_redis::data_key(sid),
        }
    }

    fn lock_key(self, sid: &str) -> String {
        match self {
            Handler::Memcached(_) => php_memcached::lock_key(sid),
            Handler::Redis => format!("{}_LOCK", php_redis::data_key(sid)),
        }
    }

    /// PHP on `server` with session locking on, as in production.
    fn php(self, server: &Sessiond) -> Php {
        match self {
            Handler::Memcached(proto) => memcached_php(&[server.memcache_addr()], proto),
            Handler::Redis => phpredis_with_locking(resp_addr(server)),
        }
    }

    /// Asserts that `run`, a request whose session was revoked, failed to write its session
    /// back, the way this handler reports it, and returns what PHP reported.
    fn assert_write_refused(self, run: &PhpRun) -> String {
        let context = format!(
            "{}: expected the write-back to be refused; exit {}\nstdout:\n{}\nstderr:\n{}",
            run.label, run.status, run.stdout, run.stderr
        );
        match self {
            Handler::Memcached(proto) => {
                // php-memcached reports the server's refusal, then PHP that the save
                // failed; the request itself ends normally.
                let reason = match proto {
                    // libmemcached shows a text-protocol SERVER_ERROR's words; a binary
                    // error status it has no name for (sessiond sends 0x84 with the words
                    // in the body) is "UNKNOWN READ FAILURE".
                    Proto::Text => {
                        "SERVER ERROR, this session was revoked and stays revoked until it \
                         would have expired"
                    }
                    Proto::Binary => "UNKNOWN READ FAILURE",
                };
                assert!(
                    run.status.success() && run.lines.last().map(String::as_str) == Some("done"),
                    "{context}"
                );
                assert!(
                    run.warnings.iter().any(|w| {
                        w.contains("session_write_close(): error saving session to memcached: ")
                            && w.contains(reason)
                    }),
                    "no php-memcached warning with {reason:?}; {context}"
                );
                assert!(
                    run.warnings.iter().any(|w| w.contains(
                        "session_write_close(): Failed to write session data (memcached)"
                    )),
                    "no PHP warning that the write failed; {context}"
                );
                run.warnings.join("\n")
            }
            Handler::Redis => {
                // phpredis (5.3.7) throws a RedisException for an error reply whose code
                // is not `ERR` (or one it handles), which would end the request with a
                // fatal error; sessiond's refusal is an `-ERR …`, so PHP only warns that
                // the save failed and the request ends normally.
                assert!(
                    run.status.success() && run.lines.last().map(String::as_str) == Some("done"),
                    "{context}"
                );
                assert!(
                    run.warnings.iter().any(|w| w
                        .contains("session_write_close(): Failed to write session data (redis)")),
                    "no PHP warning that the write failed; {context}"
                );
                run.warnings.join("\n")
            }
        }
    }
}

/// Logs `user` in on a new device: a new session id whose session holds
/// `$_SESSION['user_id'] = user` (an integer, as applications store it) and the device's
/// name. Returns the session id.
pub(crate) fn login(php: &Php, device: &str, user: i64) -> String {
    let sid = new_sid(device);
    let run = php.run(
        &format!("{device} logs in as {user}"),
        &[
            id(&sid),
            "start".into(),
            int("user_id", user),
            set("device", device.as_bytes()),
            "close".into(),
        ],
    );
    assert_eq!(run.started(0), sid, "PHP changed the session id");
    sid
}

/// The user the `n`-th session PHP read names, as `$_SESSION['user_id']`.
fn user_in(run: &PhpRun, n: usize) -> Option<String> {
    run.vars(n)
        .get("user_id")
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// `$_SESSION['user_id'] = n` as the PHP script prints it (serialized).
fn php_int(n: i64) -> Option<String> {
    Some(format!("i:{n};"))
}

/// Asserts the device with session `sid` is still logged in as `user` (its next request
/// reads the session and ends without a warning).
pub(crate) fn assert_logged_in(php: &Php, device: &str, sid: &str, user: i64) {
    let got = read_session(php, &format!("{device}'s next request"), sid);
    let seen = got
        .get("user_id")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(seen, php_int(user), "{device} is not logged in as {user}");
}

/// The next request of a device whose session was revoked: it reads an empty session
/// (logged out) and PHP's write-back of that empty session is refused. Returns what PHP
/// reported.
pub(crate) fn assert_logged_out(php: &Php, handler: Handler, device: &str, sid: &str) -> String {
    let run = php.run_unchecked(
        &format!("{device}'s next request"),
        &[id(sid), "start".into(), "close".into()],
    );
    assert_eq!(run.started(0), sid);
    assert!(
        run.vars(0).is_empty(),
        "{device} still reads its session after the revocation: {:?}",
        run.vars(0)
    );
    handler.assert_write_refused(&run)
}

/// One session as `SESSION.LIST` (or `SESSION.SHOW`) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    key: String,
    id: String,
    db: i64,
    family: String,
    user: Option<String>,
    created_at: i64,
    written_at: i64,
    seen_at: i64,
    expires_at: Option<i64>,
    /// `SESSION.SHOW`'s decoded data.
    data: Option<Json>,
}

impl Listed {
    fn parse(reply: &Resp) -> Listed {
        let fields = reply
            .fields()
            .unwrap_or_else(|| panic!("not a session map: {reply:?}"));
        let text = |name: &str| fields.get(name).and_then(Resp::text);
        let int = |name: &str| match fields.get(name) {
            Some(Resp::Int(n)) => Some(*n),
            Some(v) if v.is_null() => None,
            other => panic!("{name} is {other:?} in {fields:?}"),
        };
        let string = |name: &str| text(name).unwrap_or_else(|| panic!("no {name} in {fields:?}"));
        let number = |name: &str| int(name).unwrap_or_else(|| panic!("no {name} in {fields:?}"));
        Listed {
            key: string("key"),
            id: string("id"),
            db: number("db"),
            family: string("family"),
            user: text("user"),
            created_at: number("created_at"),
            written_at: number("written_at"),
            seen_at: number("seen_at"),
            expires_at: int("expires_at"),
            data: text("data").map(|d| serde_json::from_str(&d).expect("data is JSON")),
        }
    }

    /// What survives a restart: everything but the times the index keeps in memory.
    fn durable(&self) -> (String, String, i64, String, Option<String>, Option<i64>) {
        (
            self.key.clone(),
            self.id.clone(),
            self.db,
            self.family.clone(),
            self.user.clone(),
            self.expires_at,
        )
    }
}

/// An operator's connection on the RESP listener (every connection is `default` with the
/// admin role when no password is configured; see `exec/auth.rs`).
struct Admin(RespClient);

impl Admin {
    fn connect(server: &Sessiond) -> Admin {
        Admin(RespClient::connect(resp_addr(server)))
    }

    fn call(&mut self, args: &[&str]) -> Resp {
        let reply = self.0.call(args);
        if let Resp::Error(e) = &reply.value {
            panic!("{args:?}: {e}");
        }
        reply.value
    }

    fn int(&mut self, args: &[&str]) -> i64 {
        match self.call(args) {
            Resp::Int(n) => n,
            other => panic!("{args:?}: expected an integer, got {other:?}"),
        }
    }

    /// `SESSION.COUNT [FAMILY f]`: (sessions, users).
    fn count(&mut self, family: Option<&str>) -> (i64, i64) {
        let mut args = vec!["SESSION.COUNT"];
        args.extend(family.map(|f| ["FAMILY", f]).iter().flatten());
        let reply = self.call(&args);
        let fields = reply.fields().expect("SESSION.COUNT answers a map");
        let get = |name: &str| match fields.get(name) {
            Some(Resp::Int(n)) => *n,
            other => panic!("SESSION.COUNT: {name} is {other:?}"),
        };
        (get("sessions"), get("users"))
    }

    /// `SESSION.LIST user [FAMILY f]`.
    fn list(&mut self, user: &str, family: Option<&str>) -> Vec<Listed> {
        let mut args = vec!["SESSION.LIST", user];
        args.extend(family.map(|f| ["FAMILY", f]).iter().flatten());
        match self.call(&args) {
            Resp::Array(items) => items.iter().map(Listed::parse).collect(),
            other => panic!("SESSION.LIST: {other:?}"),
        }
    }

    /// The ids `SESSION.LIST` gives, in its order (oldest first).
    fn ids(&mut self, user: &str, family: Option<&str>) -> Vec<String> {
        self.list(user, family).into_iter().map(|s| s.id).collect()
    }

    /// `SESSION.SHOW key`.
    fn show(&mut self, key: &str) -> Option<Listed> {
        let reply = self.call(&["SESSION.SHOW", key]);
        (!reply.is_null()).then(|| Listed::parse(&reply))
    }

    fn exists(&mut self, key: &str) -> bool {
        self.0.exists(key)
    }
}

/// Three devices log in as user 42 and one as user 7; the counts, lists and decoded data
/// match; `SESSION.REVOKE` logs one device out, `SESSION.REVOKEUSER 42 EXCEPT` all but one,
/// `SESSION.REVOKEUSER 42 FAMILY` the last, and user 7 stays logged in throughout. A
/// revoked device's next request reads an empty session; with `use_strict_mode=1` PHP
/// instead gives it a new id, quietly.
fn devices(handler: Handler, serializer: &str) {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&[]);
    println!("scenario devices, {handler:?}, serialize_handler {serializer}");
    let mut admin = Admin::connect(&server);
    let family = handler.family();
    let php = handler
        .php(&server)
        .with("session.serialize_handler", serializer);
    let phone = login(&php, "phone", 42);
    let laptop = login(&php, "laptop", 42);
    let tablet = login(&php, "tablet", 42);
    let desk = login(&php, "desk", 7);

    let hint = if serializer == "php_serialize" {
        " (php_serialize values decode only once the PHP formats are told apart by their first \
         bytes, as docs/sessions.md says)"
    } else {
        ""
    };
    assert_eq!(admin.count(None), (4, 2), "SESSION.COUNT{hint}");
    assert_eq!(admin.count(Some(family)), (4, 2), "SESSION.COUNT FAMILY");
    let other = if family == "phpredis" {
        "php-memcached"
    } else {
        "phpredis"
    };
    assert_eq!(
        admin.count(Some(other)),
        (0, 0),
        "SESSION.COUNT FAMILY {other}"
    );

    let listed = admin.list("42", None);
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [&phone, &laptop, &tablet],
        "SESSION.LIST 42, oldest first"
    );
    for s in &listed {
        assert_eq!(s.key, handler.key(&s.id));
        assert_eq!(
            (s.db, s.family.as_str(), s.user.as_deref()),
            (0, family, Some("42"))
        );
        assert!(
            s.created_at <= s.written_at && s.written_at <= s.seen_at,
            "{s:?}"
        );
        // Written with session.gc_maxlifetime = 1440 s.
        let lifetime = s.expires_at.expect("a deadline") - s.written_at;
        assert!(
            (1_439_000..=1_441_000).contains(&lifetime),
            "{s:?}: expires {lifetime} ms after it was written"
        );
    }
    assert_eq!(
        admin.list("42", Some(family)),
        listed,
        "SESSION.LIST FAMILY"
    );
    assert!(admin.list("42", Some(other)).is_empty());
    assert_eq!(admin.ids("7", None), [desk.as_str()]);
    assert!(admin.list("8", None).is_empty());

    let shown = admin
        .show(&handler.key(&phone))
        .expect("SESSION.SHOW of a session");
    assert_eq!(
        shown.data,
        Some(json!({"user_id": 42, "device": "phone"})),
        "SESSION.SHOW's decoded data"
    );
    assert_eq!(shown.user.as_deref(), Some("42"));
    assert!(
        admin.show(&handler.lock_key(&phone)).is_none(),
        "a lock key is no session"
    );
    println!(
        "  4 sessions, 2 users; 42 on {ids:?}; phone shows {:?}",
        shown.data
    );

    // Log the phone out.
    assert_eq!(admin.int(&["SESSION.REVOKE", &handler.key(&phone)]), 1);
    assert!(!admin.exists(&handler.key(&phone)));
    let said = assert_logged_out(&php, handler, "phone", &phone);
    println!("  phone revoked; its next request reads an empty session; PHP said:\n{said}");
    assert!(
        !admin.exists(&handler.key(&phone)),
        "the phone logged in again"
    );
    assert_eq!(admin.count(None), (3, 2));
    // With strict mode, PHP checks the id first and issues a new one, without a warning.
    let strict = php.clone().with("session.use_strict_mode", "1");
    let run = strict.run(
        "phone's next request with use_strict_mode=1",
        &steps(&[&id(&phone), "start", "destroy"]),
    );
    assert_ne!(run.started(0), phone, "strict mode kept the revoked id");
    assert!(run.vars(0).is_empty());
    assert_logged_in(&php, "laptop", &laptop, 42);

    // Log out 42's other devices, from the tablet.
    let revoked = admin.int(&["SESSION.REVOKEUSER", "42", "EXCEPT", &handler.key(&tablet)]);
    assert_eq!(revoked, 1, "only the laptop was left to revoke");
    assert_logged_out(&php, handler, "laptop", &laptop);
    assert_logged_in(&php, "tablet", &tablet, 42);
    assert_eq!(admin.ids("42", None), [tablet.as_str()]);
    assert_eq!(admin.count(None), (2, 2));

    // Log 42 out everywhere.
    assert_eq!(
        admin.int(&["SESSION.REVOKEUSER", "42", "FAMILY", family]),
        1
    );
    assert_logged_out(&php, handler, "tablet", &tablet);
    assert!(admin.list("42", None).is_empty());
    assert_logged_in(&php, "desk", &desk, 7);
    assert_eq!(admin.count(None), (1, 1));
    println!("  laptop, then tablet revoked and logged out; user 7's desk still logged in");
}

// `session.serialize_handler` `php` (PHP's default) and `php_serialize`.
cases!(devices {
    php_memcached_php: (Handler::Memcached(Proto::Binary), "php"),
    php_memcached_php_serialize: (Handler::Memcached(Proto::Binary), "php_serialize"),
    phpredis_php: (Handler::Redis, "php"),
});

/// The key scenario: a request of user 42 is in flight (its session read, locked,
/// not yet written back) when an operator revokes all of 42's sessions. The request then
/// writes the session back (it changed the data) and ends, and its write is refused; a
/// second one, on another device, ends without a change (a lazy write: a touch, which finds
/// nothing to touch). The locks are released, and both devices stay logged out. What PHP reports is printed: it is the
/// text docs/sessions.md quotes.
fn in_flight(handler: Handler) {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&[]);
    println!("scenario in-flight write, {handler:?}");
    let mut admin = Admin::connect(&server);
    let php = handler.php(&server);
    let phone = login(&php, "phone", 42);
    let laptop = login(&php, "laptop", 42);

    let mut writer = php.spawn(
        "slow request on the phone",
        &[
            id(&phone),
            "start".into(),
            "say:opened".into(),
            "wait".into(),
            set("cart", b"book"),
            "close".into(),
        ],
    );
    writer.expect_line("opened", PHP_TIMEOUT);
    let mut reader = php.spawn(
        "slow read-only request on the laptop",
        &steps(&[&id(&laptop), "start", "say:opened", "wait", "close"]),
    );
    reader.expect_line("opened", PHP_TIMEOUT);
    for sid in [&phone, &laptop] {
        assert!(
            admin.exists(&handler.lock_key(sid)),
            "the request holds session {sid} but no lock key exists"
        );
    }

    assert_eq!(admin.int(&["SESSION.REVOKEUSER", "42"]), 2);
    assert_eq!(admin.count(None), (0, 0));
    writer.send("go\n");
    reader.send("go\n");
    let writer = finish_unchecked(writer);
    let reader = finish_unchecked(reader);
    assert_eq!(
        user_in(&writer, 0),
        php_int(42),
        "the slow request began logged in"
    );
    assert_eq!(user_in(&reader, 0), php_int(42));
    let wrote = handler.assert_write_refused(&writer);
    // An unchanged session is written back as a touch (php-memcached's TOUCH, phpredis's
    // EXPIRE), which finds no key: nothing is refused, nothing reported, nothing created.
    assert!(
        reader.status.success() && reader.warnings.is_empty(),
        "the read-only request: {reader:?}"
    );
    println!("  PHP reported, for the changed session:\n{wrote}");
    println!("  and nothing for the unchanged one");

    for (device, sid) in [("phone", &phone), ("laptop", &laptop)] {
        assert!(
            !admin.exists(&handler.key(sid)),
            "the in-flight request on the {device} logged it in again"
        );
        assert!(
            !admin.exists(&handler.lock_key(sid)),
            "the {device}'s lock was not released"
        );
        assert_logged_out(&php, handler, device, sid);
    }
    assert_eq!(admin.count(None), (0, 0));
    println!("  both devices stay logged out; locks released");
}

cases!(in_flight {
    php_memcached_binary: (Handler::Memcached(Proto::Binary)),
    php_memcached_text: (Handler::Memcached(Proto::Text)),
    phpredis: (Handler::Redis),
});

/// express-session on connect-redis (`sess:<id>` JSON), logged in the way passport does
/// (`req.session.passport = {user}`), on two devices: counted and listed under `express`,
/// shown decoded; one revoked, whose next request is anonymous (a new session id), while
/// the other stays logged in.
#[test]
fn express_passport_devices() {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&[]);
    let mut admin = Admin::connect(&server);
    let node = node();
    npm_ci();
    let mut cmd = Command::new(node);
    cmd.current_dir(project())
        .arg("devices.mjs")
        .env("REDIS_URL", format!("redis://{}", resp_addr(&server)))
        .env("RESP", "3");
    let mut app = Spawned::spawn("node devices.mjs", &mut cmd);
    let mut ask = |command: &str| -> Vec<String> {
        app.send(&format!("{command}\n"));
        let line = app.next_line(WAIT, command);
        println!("  {command} -> {line}");
        line.split(' ').map(str::to_string).collect()
    };

    let phone = ask("login phone 42")[2].clone();
    let laptop = ask("login laptop 42")[2].clone();
    assert_eq!(admin.count(Some("express")), (2, 1));
    assert_eq!(admin.count(None), (2, 1));
    let listed = admin.list("42", Some("express"));
    let keys: Vec<&str> = listed.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [format!("sess:{phone}"), format!("sess:{laptop}")],
        "SESSION.LIST 42 FAMILY express"
    );
    assert!(listed.iter().all(|s| s.family == "express"));
    let shown = admin
        .show(&format!("sess:{phone}"))
        .expect("SESSION.SHOW of a session");
    let data = shown.data.expect("decoded data");
    assert_eq!(data["passport"], json!({"user": "42"}), "{data}");
    assert!(data["cookie"].is_object(), "{data}");

    assert_eq!(admin.int(&["SESSION.REVOKE", &format!("sess:{phone}")]), 1);
    let me = ask("me phone");
    assert_eq!(me[2], "null", "the revoked phone is still logged in");
    assert_ne!(me[3], phone, "express-session kept the revoked id");
    assert_eq!(ask("me laptop")[2..], ["42", laptop.as_str()]);
    assert_eq!(admin.ids("42", None), [laptop.as_str()]);
    assert_eq!(admin.count(None), (1, 1));
    assert_eq!(ask("quit"), ["done"]);
    let out = app.wait(WAIT);
    assert!(out.status.success(), "{out:?}");
}

/// `--max-sessions-per-user 2`: user 9 logs in on three devices in order; the third login
/// revokes the first device's session, the other two stay logged in.
#[test]
fn per_user_limit_logs_out_the_oldest_device() {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&["--max-sessions-per-user", "2"]);
    let mut admin = Admin::connect(&server);
    let handler = Handler::Memcached(Proto::Binary);
    let php = handler.php(&server);
    let other = login(&php, "other", 10);
    let phone = login(&php, "phone", 9);
    let laptop = login(&php, "laptop", 9);
    assert_eq!(admin.count(None), (3, 2));
    let tablet = login(&php, "tablet", 9);
    assert_eq!(
        admin.count(None),
        (3, 2),
        "the third login did not revoke one"
    );
    assert_eq!(admin.ids("9", None), [laptop.as_str(), tablet.as_str()]);
    assert_eq!(admin.ids("10", None), [other.as_str()]);
    assert!(!admin.exists(&handler.key(&phone)));
    let said = assert_logged_out(&php, handler, "phone", &phone);
    println!("  phone logged out by the limit; PHP said:\n{said}");
    assert_logged_in(&php, "laptop", &laptop, 9);
    assert_logged_in(&php, "tablet", &tablet, 9);
    assert_eq!(admin.count(None), (3, 2));
    let info = match admin.call(&["INFO", "sessions"]) {
        Resp::Bulk(b) | Resp::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO sessions: {other:?}"),
    };
    assert!(
        info.contains("sessions_revoked_by_limit:1\r\n"),
        "INFO sessions:\n{info}"
    );
}

/// A subscriber of `sessiond:sessions`.
struct Events(RespClient);

impl Events {
    fn subscribe(server: &Sessiond) -> Events {
        let mut client = RespClient::connect(resp_addr(server));
        let reply = client.call(&["SUBSCRIBE", "sessiond:sessions"]);
        assert!(
            matches!(&reply.value, Resp::Array(items) if items.first() == Some(&Resp::Bulk(b"subscribe".to_vec()))),
            "SUBSCRIBE: {reply}"
        );
        client.set_read_timeout(WAIT);
        Events(client)
    }

    /// The next message's payload.
    fn next(&mut self, expected: &str) -> String {
        let reply = self
            .0
            .try_read()
            .unwrap_or_else(|e| panic!("no message within {WAIT:?} ({e}); expected {expected}"));
        match &reply.value {
            Resp::Array(items) => match &items[..] {
                [Resp::Bulk(kind), Resp::Bulk(channel), Resp::Bulk(payload)]
                    if kind == b"message" && channel == b"sessiond:sessions" =>
                {
                    String::from_utf8_lossy(payload).into_owned()
                }
                _ => panic!("expected a message, got {reply}; expected {expected}"),
            },
            _ => panic!("expected a message, got {reply}; expected {expected}"),
        }
    }

    /// Asserts the next event is `event` of `handler`'s session `sid` of `user`.
    fn expect(&mut self, event: &str, handler: Handler, sid: &str, user: i64) {
        let what = format!("{event} of {sid}");
        let payload = self.next(&what);
        let mut got: Json = serde_json::from_str(&payload)
            .unwrap_or_else(|e| panic!("{what}: {payload:?} is not JSON: {e}"));
        let at = got
            .as_object_mut()
            .and_then(|o| o.remove("at"))
            .unwrap_or_else(|| panic!("{what}: no `at` in {payload}"));
        assert!(at.as_u64().is_some_and(|at| at > 0), "{what}: at {at}");
        assert_eq!(
            got,
            json!({
                "event": event,
                "family": handler.family(),
                "db": 0,
                "key": handler.key(sid),
                "id": sid,
                "user": user.to_string(),
            }),
            "{what}"
        );
        println!("  event {payload}");
    }
}

/// A subscriber sees a PHP login (`created`), a change (`updated`), an operator's
/// revocation (`revoked`), `session_destroy()` (`destroyed`) and a session whose lifetime
/// ran out (`expired`, waited for, never slept for), with the family, id and user right, and
/// nothing else (not the lock keys, not the unchanged reads).
fn events(handler: Handler) {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&[]);
    println!("scenario lifecycle events, {handler:?}");
    let mut admin = Admin::connect(&server);
    let php = handler.php(&server);
    let mut events = Events::subscribe(&server);

    let phone = login(&php, "phone", 42);
    events.expect("created", handler, &phone, 42);
    read_session(&php, "an unchanged read", &phone);
    php.run(
        "a change",
        &[
            id(&phone),
            "start".into(),
            set("cart", b"book"),
            "close".into(),
        ],
    );
    events.expect("updated", handler, &phone, 42);
    assert_eq!(admin.int(&["SESSION.REVOKE", &handler.key(&phone)]), 1);
    events.expect("revoked", handler, &phone, 42);

    let laptop = login(&php, "laptop", 42);
    events.expect("created", handler, &laptop, 42);
    let run = php.run("logout", &steps(&[&id(&laptop), "start", "destroy"]));
    assert_eq!(run.nth("destroyed", 0), ["1"], "session_destroy() failed");
    events.expect("destroyed", handler, &laptop, 42);

    let short = php.clone().with("session.gc_maxlifetime", "1");
    let kiosk = login(&short, "kiosk", 7);
    events.expect("created", handler, &kiosk, 7);
    events.expect("expired", handler, &kiosk, 7);

    // A flush is one `flushed` event per database (FLUSHALL: all 16), not one per session.
    login(&php, "tablet", 42);
    let _ = events.next("created of tablet");
    admin.call(&["FLUSHALL"]);
    for db in 0..16 {
        let payload = events.next("flushed");
        let mut got: Json = serde_json::from_str(&payload).expect("JSON");
        let at = got.as_object_mut().and_then(|o| o.remove("at"));
        assert!(
            at.is_some_and(|at| at.as_u64().is_some_and(|at| at > 0)),
            "{payload}"
        );
        assert_eq!(got, json!({ "event": "flushed", "db": db }), "{payload}");
    }

    // Nothing else was published: the marker, published last, is next.
    admin.call(&["PUBLISH", "sessiond:sessions", "end"]);
    assert_eq!(events.next("the marker"), "end", "an unexpected event");
}

cases!(events {
    php_memcached: (Handler::Memcached(Proto::Binary)),
    phpredis: (Handler::Redis),
});

/// Sessions of both PHP handlers (users 42 and 7, and an anonymous cart), one of them
/// revoked; sessiond is killed with SIGKILL and restarted on the same data directory. The
/// counts and lists are the same (but for the times the index keeps in memory), the
/// sessions still work, and the revoked one is still refused: the revocation is journaled.
#[test]
fn index_and_revocation_survive_kill_9() {
    if not_sessiond() {
        return;
    }
    let dir = TempDir::new("sessions-kill");
    let data = dir.path().to_str().expect("utf-8 temp path").to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    let (mc, rd) = (Handler::Memcached(Proto::Binary), Handler::Redis);
    let logins = [
        (mc, "phone", 42),
        (rd, "laptop", 42),
        (mc, "desk", 7),
        (rd, "tablet", 7),
    ];
    let mut devices = Vec::new();
    for (handler, device, user) in logins {
        devices.push((
            handler,
            device,
            user,
            login(&handler.php(&server), device, user),
        ));
    }
    let cart = new_sid("cart");
    mc.php(&server).run(
        "an anonymous cart",
        &[
            id(&cart),
            "start".into(),
            set("cart", b"book"),
            "close".into(),
        ],
    );
    let revoked = login(&mc.php(&server), "stolen", 42);
    let mut admin = Admin::connect(&server);
    assert_eq!(admin.int(&["SESSION.REVOKE", &mc.key(&revoked)]), 1);

    let snapshot = |admin: &mut Admin| {
        let counts = [None, Some("php-memcached"), Some("phpredis")].map(|f| admin.count(f));
        let lists = ["42", "7"].map(|user| {
            let mut sessions: Vec<_> = admin.list(user, None).iter().map(Listed::durable).collect();
            // After a restart every session has the same creation time, so the order
            // among them is not kept.
            sessions.sort();
            sessions
        });
        (counts, lists)
    };
    let before = snapshot(&mut admin);
    assert_eq!(before.0[0], (5, 2), "4 logins and the anonymous cart");
    assert_eq!(before.1[0].len(), 2);

    server.kill();
    println!("  sessiond killed with SIGKILL; restarting on {data}");
    server = Sessiond::start(&["--data-dir", &data]);
    let mut admin = Admin::connect(&server);
    assert_eq!(snapshot(&mut admin), before, "the index after the restart");
    for (handler, device, user, sid) in &devices {
        assert_logged_in(&handler.php(&server), device, sid, *user);
    }
    let said = assert_logged_out(&mc.php(&server), mc, "stolen", &revoked);
    println!("  revoked session refused after the restart; PHP said:\n{said}");
    let reply = admin.0.call(&["SET", &mc.key(&revoked), "user_id|i:42;"]);
    assert!(
        matches!(&reply.value, Resp::Error(e) if e.starts_with("ERR this session was revoked")),
        "SET of the revoked key after the restart: {reply}"
    );
    assert!(!admin.exists(&mc.key(&revoked)));
}

/// Revocation is administration: an application user (`--user web:app:…`) may count and
/// list but not revoke (`NOPERM`); an admin user may.
#[test]
fn revocation_needs_the_admin_role() {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&["--user", "web:app:web-pw", "--user", "ops:admin:ops-pw"]);
    let addr = resp_addr(&server);
    let php = phpredis(addr, "auth[]=web&auth[]=web-pw");
    let phone = login(&php, "phone", 42);
    let key = php_redis::data_key(&phone);
    let mut web = RespClient::connect(addr);
    web.ok(&["AUTH", "web", "web-pw"]);
    let count = web.call(&["SESSION.COUNT"]);
    assert!(
        count.value.fields().is_some(),
        "SESSION.COUNT as web: {count}"
    );
    for args in [
        vec!["SESSION.REVOKE", key.as_str()],
        vec!["SESSION.REVOKEUSER", "42"],
    ] {
        let reply = web.call(&args);
        assert!(
            matches!(&reply.value, Resp::Error(e) if e.starts_with("NOPERM")),
            "{args:?} as the app user: {reply}"
        );
    }
    assert!(web.exists(&key), "the app user revoked a session");
    let mut ops = RespClient::connect(addr);
    ops.ok(&["AUTH", "ops", "ops-pw"]);
    let reply = ops.call(&["SESSION.REVOKEUSER", "42"]);
    assert_eq!(
        reply.value,
        Resp::Int(1),
        "SESSION.REVOKEUSER as ops: {reply}"
    );
    assert!(!web.exists(&key));
}
