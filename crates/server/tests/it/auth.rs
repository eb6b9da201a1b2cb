//! Authentication on every listener and safe administration, against the real binary.
//!
//! - Users and roles: a server with `--requirepass` (the `default` user), an app user and an
//!   admin user (`--user NAME:ROLE:PASSWORD`, `--user-file`). PHP's memcached session handler
//!   logs in with SASL PLAIN (`memcached.sess_sasl_username`/`_password`), phpredis with
//!   `auth[]=user&auth[]=pass` in the save path, `redis-cli` with `--user` and
//!   `REDISCLI_AUTH`; each also with a wrong password, which must store nothing. An app user
//!   gets Redis's `NOPERM` for administration, memcached's `CLIENT_ERROR … not allowed` or
//!   status 0x20.
//! - memcached's text-protocol login (memcached 1.6's `-Y` mode: a `set` whose data is
//!   `user password`) and binary SASL, byte for byte with raw clients, with hostile input:
//!   commands before login, wrong and malformed tokens, garbage and oversized SASL payloads.
//! - Floods of wrong passwords on both protocols leave the server's memory where it was.
//! - Protected mode: a non-loopback listener without a password refuses to start and says
//!   what to do; `--protected-mode no` starts.
//! - The cross-protocol guard: an HTTP POST whose body is a command does not run it, on
//!   either listener (checked against a control request without the HTTP line, which does).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use sessiond_proto_memcache::binary::{
    self, BinaryRequest, BinaryResponse, MAX_SASL_DATA_LEN, opcode, status,
};
use sessiond_proto_memcache::{Command as McCommand, StoreMode};

use sessiond_test_harness::{
    Reply, Resp, RespClient, Sessiond, TempDir, require_program, run_with_timeout, sessiond_binary,
    unique,
};

use crate::php::{Php, assert_login_refused, php_with, read_session, vars, write_session};

const SHARED_PW: &str = "shared-pw";
const WEB_PW: &str = "web-pw";
const OPS_PW: &str = "ops-pw";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A server with the three users: `default` (`--requirepass`, app role because an admin
/// exists), `web` (app) and `ops` (admin, password from a file). The file lives in `dir`.
fn start_with_users(dir: &TempDir) -> Sessiond {
    let ops_file = dir.path().join("ops.pw");
    std::fs::write(&ops_file, format!("{OPS_PW}\n")).expect("writing the password file");
    let web = format!("web:app:{WEB_PW}");
    let ops = format!("ops:admin:{}", ops_file.display());
    Sessiond::start(&[
        "--requirepass",
        SHARED_PW,
        "--user",
        &web,
        "--user-file",
        &ops,
    ])
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// A raw memcached text connection: send bytes, read reply lines.
struct Text {
    reader: BufReader<TcpStream>,
}

impl Text {
    fn connect(addr: SocketAddr) -> Text {
        Text {
            reader: BufReader::new(connect(addr)),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("writing");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reading a line");
        assert!(line.ends_with("\r\n"), "unterminated reply {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Sends `bytes` and returns the one reply line.
    fn ask(&mut self, bytes: &[u8]) -> String {
        self.send(bytes);
        self.line()
    }

    /// memcached's text login: a `set` of any key whose data is `user password`.
    fn login(&mut self, user: &str, password: &str) -> String {
        let token = format!("{user} {password}");
        self.ask(format!("set auth 0 0 {}\r\n{token}\r\n", token.len()).as_bytes())
    }

    /// Whether the server closes the connection without a reply.
    fn closed(&mut self) -> bool {
        closed_without_reply(self.reader.get_mut())
    }
}

/// A raw memcached binary connection.
struct Bin {
    stream: TcpStream,
    buf: BytesMut,
    opaque: u32,
}

impl Bin {
    fn connect(addr: SocketAddr) -> Bin {
        Bin {
            stream: connect(addr),
            buf: BytesMut::new(),
            opaque: 0,
        }
    }

    fn send(&mut self, opcode: u8, command: McCommand) {
        self.opaque += 1;
        let request = BinaryRequest {
            opcode,
            opaque: self.opaque,
            command,
            quiet: false,
            return_key: false,
        };
        let mut out = BytesMut::new();
        binary::encode_request(&request, &mut out);
        self.stream.write_all(&out).expect("writing");
    }

    /// The next response; `None` if the server closed the connection first.
    fn read(&mut self) -> Option<BinaryResponse> {
        loop {
            if let Some(response) = binary::decode_response(&mut self.buf).expect("well-formed") {
                return Some(response);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading a binary response: {e}"),
            }
        }
    }

    fn call(&mut self, opcode: u8, command: McCommand) -> BinaryResponse {
        self.send(opcode, command);
        self.read()
            .expect("a response before the connection closed")
    }

    fn sasl(&mut self, mechanism: &str, data: &[u8]) -> BinaryResponse {
        self.call(
            opcode::SASL_AUTH,
            McCommand::SaslAuth {
                mechanism: mechanism.as_bytes().to_vec().into(),
                data: data.to_vec().into(),
                step: false,
            },
        )
    }
}

/// Whether the server closes `stream` without sending anything: EOF, or a reset (the
/// kernel's answer when the server closed with some of our bytes unread).
fn closed_without_reply(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn store(key: &str, value: &[u8]) -> McCommand {
    McCommand::Store {
        mode: StoreMode::Set,
        key: key.as_bytes().to_vec().into(),
        flags: 0,
        exptime: 0,
        value: value.to_vec().into(),
        cas: 0,
    }
}

fn get(key: &str) -> McCommand {
    McCommand::Get {
        keys: vec![key.as_bytes().to_vec().into()],
        touch: None,
    }
}

fn error_text(reply: &Reply) -> String {
    match &reply.value {
        Resp::Error(e) => e.clone(),
        _ => panic!("expected an error reply, got {reply}"),
    }
}

/// The server's resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// PHP's memcached session handler with SASL credentials (binary protocol, as SASL needs).
fn memcached_php(addr: SocketAddr, user: &str, password: &str) -> Php {
    Php::new(
        php_with("memcached", "php-memcached"),
        "memcached",
        &addr.to_string(),
    )
    .with("memcached.sess_prefix", "memc.sess.key.")
    .with("memcached.sess_persistent", "0")
    .with("memcached.sess_binary_protocol", "1")
    .with("memcached.sess_locking", "1")
    .with("memcached.sess_lock_wait_min", "20")
    .with("memcached.sess_lock_wait_max", "20")
    .with("memcached.sess_lock_retries", "2")
    .with("memcached.sess_sasl_username", user)
    .with("memcached.sess_sasl_password", password)
}

/// php-memcached logs in with SASL PLAIN as `default` and as the app user, and its sessions
/// work; with a wrong password (or none) PHP fails to lock and read, and stores nothing.
#[test]
fn php_memcached_sasl() {
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let addr = server.memcache_addr();
    for (user, password) in [("default", SHARED_PW), ("web", WEB_PW)] {
        let php = memcached_php(addr, user, password);
        let sid = unique("sasl");
        write_session(&php, "writer", &sid, &[("user", b"alice")]);
        assert!(read_session(&php, "reader", &sid) == vars(&[("user", b"alice")]));
        println!("  SASL PLAIN as {user}: session written and read");
    }
    let bad_sid = unique("saslbad");
    for php in [
        memcached_php(addr, "web", "wrong"),
        memcached_php(addr, "nobody", WEB_PW),
        // No credentials at all.
        memcached_php(addr, "", ""),
    ] {
        assert_login_refused(&php, "wrong credentials", &bad_sid);
    }
    let mut text = Text::connect(addr);
    assert_eq!(text.login("ops", OPS_PW), "STORED");
    assert_eq!(
        text.ask(format!("get memc.sess.key.{bad_sid}\r\n").as_bytes()),
        "END",
        "a client with wrong credentials stored a session"
    );
    println!("  wrong or missing credentials: PHP fails to read, nothing stored");
}

/// memcached 1.6's text login, exactly: before it everything is `CLIENT_ERROR
/// unauthenticated`; the login `set` answers `STORED` (even with `noreply`) and stores
/// nothing; an app user may not `flush_all` or `journal rewrite`; the admin may.
#[test]
fn memcached_text_login() {
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let addr = server.memcache_addr();
    let mut c = Text::connect(addr);
    assert_eq!(c.ask(b"get k\r\n"), "CLIENT_ERROR unauthenticated");
    assert_eq!(c.ask(b"version\r\n"), "CLIENT_ERROR unauthenticated");
    assert_eq!(
        c.ask(b"add k 0 0 13\r\nweb web-pw xx\r\n"),
        "CLIENT_ERROR unauthenticated"
    );
    assert_eq!(c.ask(b"flush_all\r\n"), "CLIENT_ERROR unauthenticated");
    assert_eq!(
        c.login("web", "wrong"),
        "CLIENT_ERROR authentication failure"
    );
    assert_eq!(
        c.login("nobody", WEB_PW),
        "CLIENT_ERROR authentication failure"
    );
    assert_eq!(
        c.ask(b"set k 0 0 6\r\nwebpw!\r\n"),
        "CLIENT_ERROR bad authentication token format"
    );
    // A value too large even to be a token is swallowed, and the stream stays in sync.
    let mut big = b"set k 0 0 100000\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 100_000));
    big.extend_from_slice(b"\r\n");
    assert_eq!(c.ask(&big), "SERVER_ERROR object too large for cache");
    assert_eq!(
        c.ask(b"set anykey 0 0 10 noreply\r\nweb web-pw\r\n"),
        "STORED"
    );
    assert_eq!(
        c.ask(b"get anykey\r\n"),
        "END",
        "the login stored its token"
    );
    assert_eq!(c.ask(b"set k 0 0 1\r\nv\r\n"), "STORED");
    assert_eq!(
        c.ask(b"flush_all\r\n"),
        "CLIENT_ERROR flush_all not allowed"
    );
    assert_eq!(
        c.ask(b"journal rewrite\r\n"),
        "CLIENT_ERROR journal rewrite not allowed"
    );
    assert_eq!(c.ask(b"get k\r\n"), "VALUE k 0 1");
    assert_eq!(c.line(), "v");
    assert_eq!(c.line(), "END");

    let mut admin = Text::connect(addr);
    assert_eq!(admin.login("ops", OPS_PW), "STORED");
    assert_eq!(admin.ask(b"flush_all\r\n"), "OK");
    assert_eq!(admin.ask(b"get k\r\n"), "END");
    // The shared password is the app's once an admin exists.
    let mut shared = Text::connect(addr);
    assert_eq!(shared.login("default", SHARED_PW), "STORED");
    assert_eq!(
        shared.ask(b"flush_all\r\n"),
        "CLIENT_ERROR flush_all not allowed"
    );
    println!("  text login, roles and refusals as memcached words them");
}

/// Binary SASL with raw packets, hostile input included: a command before login is answered
/// 0x20 and the connection closed (as memcached does); garbage, other mechanisms and
/// oversized payloads fail without closing; then PLAIN logs in, and the app role may not
/// FLUSH.
#[test]
fn memcached_binary_sasl() {
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let addr = server.memcache_addr();

    let mut early = Bin::connect(addr);
    let refused = early.call(opcode::GETK, get("k"));
    assert_eq!(
        (refused.status, &refused.value[..]),
        (status::AUTH_ERROR, &b"Auth failure."[..])
    );
    assert!(early.read().is_none(), "the connection stayed open");

    let mut c = Bin::connect(addr);
    let mechs = c.call(opcode::SASL_LIST_MECHS, McCommand::SaslListMechs);
    assert_eq!((mechs.status, &mechs.value[..]), (0, &b"PLAIN"[..]));
    let version = c.call(opcode::VERSION, McCommand::Version);
    assert_eq!(version.status, 0, "VERSION is allowed before login");
    for (mechanism, data) in [
        ("PLAIN", &b"\0web\0wrong"[..]),
        ("PLAIN", b"\0nobody\0web-pw"),
        ("PLAIN", b"ops\0web\0web-pw"),
        ("PLAIN", b"web web-pw"),
        ("PLAIN", b""),
        ("PLAIN", &[0xff; 300]),
        ("CRAM-MD5", b"\0web\0web-pw"),
    ] {
        let reply = c.sasl(mechanism, data);
        assert_eq!(
            (reply.status, &reply.value[..]),
            (status::AUTH_ERROR, &b"Auth failure."[..]),
            "{mechanism} {data:?}"
        );
    }
    let huge = c.sasl("PLAIN", &vec![b'a'; MAX_SASL_DATA_LEN + 1]);
    assert_eq!(huge.status, status::TOO_LARGE);
    let long_mech = c.sasl(&"M".repeat(40), b"\0web\0web-pw");
    assert_eq!(long_mech.status, status::INVALID_ARGUMENTS);
    // A SET with a 64 KiB value before login: refused by the pre-login limits, body skipped.
    let big = c.call(opcode::SET, store("k", &vec![b'v'; 65536]));
    assert_eq!(big.status, status::TOO_LARGE);
    let ok = c.sasl("PLAIN", b"\0web\0web-pw");
    assert_eq!((ok.status, &ok.value[..]), (0, &b"Authenticated"[..]));
    // Logged in: the full limits apply.
    assert_eq!(
        c.call(opcode::SET, store("k", &vec![b'v'; 65536])).status,
        0
    );
    let hit = c.call(opcode::GET, get("k"));
    assert_eq!((hit.status, hit.value.len()), (0, 65536));
    let flush = c.call(opcode::FLUSH, McCommand::FlushAll { delay: 0 });
    assert_eq!(flush.status, status::AUTH_ERROR, "the app user flushed");
    let admin = c.sasl("PLAIN", b"\0ops\0ops-pw");
    assert_eq!(admin.status, 0);
    let flush = c.call(opcode::FLUSH, McCommand::FlushAll { delay: 0 });
    assert_eq!(flush.status, 0);
    assert_eq!(c.call(opcode::GET, get("k")).status, status::NOT_FOUND);
    println!("  binary SASL: refusals, hostile payloads, PLAIN login, roles");
}

/// redis-cli as the app user (`--user`, password from `REDISCLI_AUTH`, not argv) runs
/// session commands and gets Redis's NOPERM text for administration; as the admin it may;
/// `CONFIG GET requirepass` shows nothing to anyone.
#[test]
fn redis_cli_users_and_roles() {
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let addr = server.listener("resp").expect("resp listener");
    let cli = require_program("redis-cli", "redis-tools");
    let run = |user: &str, password: &str, args: &[&str]| -> String {
        let mut cmd = Command::new(&cli);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "--user",
            user,
        ])
        .env("REDISCLI_AUTH", password)
        .args(args);
        let out = run_with_timeout("redis-cli", &mut cmd, IO_TIMEOUT);
        let text = format!("{}{}", out.stdout, out.stderr);
        let text = text.trim();
        text.strip_prefix("(error) ").unwrap_or(text).to_string()
    };
    assert_eq!(run("web", WEB_PW, &["SET", "k", "v"]), "OK");
    assert_eq!(run("web", WEB_PW, &["GET", "k"]), "v");
    assert!(
        run("web", "wrong", &["GET", "k"]).contains("WRONGPASS"),
        "a wrong password was accepted"
    );
    assert_eq!(
        run("web", WEB_PW, &["FLUSHALL"]),
        "NOPERM User web has no permissions to run the 'flushall' command"
    );
    assert_eq!(
        run("web", WEB_PW, &["CONFIG", "SET", "maxmemory", "1"]),
        "NOPERM User web has no permissions to run the 'config|set' command"
    );
    assert_eq!(
        run("web", WEB_PW, &["CONFIG", "GET", "requirepass"]),
        "requirepass"
    );
    assert_eq!(
        run("ops", OPS_PW, &["CONFIG", "GET", "requirepass"]),
        "requirepass"
    );
    assert_eq!(run("ops", OPS_PW, &["FLUSHALL"]), "OK");
    assert_eq!(run("web", WEB_PW, &["EXISTS", "k"]), "0");
    println!("  redis-cli: app and admin roles, NOPERM texts, no secret in CONFIG GET");
}

/// phpredis with `auth[]=user&auth[]=pass` in the save path (Redis 6 `AUTH user pass`):
/// the app user's sessions work; a wrong password fails the read and stores nothing.
#[test]
fn phpredis_auth_user_and_password() {
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let addr = server.listener("resp").expect("resp listener");
    let php = |query: &str| {
        Php::new(
            php_with("redis", "php-redis"),
            "redis",
            &format!("tcp://{addr}?{query}"),
        )
        .with("redis.session.locking_enabled", "0")
    };
    let sid = unique("acl");
    let good = php(&format!("auth[]=web&auth[]={WEB_PW}"));
    write_session(&good, "writer", &sid, &[("user", b"alice")]);
    assert!(read_session(&good, "reader", &sid) == vars(&[("user", b"alice")]));
    let bad_sid = unique("aclbad");
    let bad = php("auth[]=web&auth[]=wrong");
    assert_login_refused(&bad, "wrong password", &bad_sid);
    let mut rc = RespClient::connect(addr);
    rc.ok(&["AUTH", "ops", OPS_PW]);
    assert!(rc.exists(&format!("PHPREDIS_SESSION:{sid}")));
    assert!(!rc.exists(&format!("PHPREDIS_SESSION:{bad_sid}")));
    println!("  phpredis auth[]=web&auth[]=…: works; a wrong password stores nothing");
}

/// Commands before login on RESP: NOAUTH; an unauthenticated request larger than Redis's
/// pre-login limits (16 KiB argument, 10 arguments) closes the connection before it is
/// buffered.
#[test]
fn resp_before_login() {
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let addr = server.listener("resp").expect("resp listener");
    let mut c = RespClient::connect(addr);
    assert!(error_text(&c.call(&["GET", "k"])).starts_with("NOAUTH"));
    assert!(error_text(&c.call(&["FLUSHALL"])).starts_with("NOAUTH"));

    let mut big = RespClient::connect(addr);
    let long = vec![b'x'; 20_000];
    big.send(&[&b"AUTH"[..], b"web", &long]);
    let reply = big.read();
    assert!(
        error_text(&reply).starts_with("ERR Protocol error"),
        "got {reply}"
    );
    assert!(big.try_read().is_err(), "the connection stayed open");

    let mut many = RespClient::connect(addr);
    let args: Vec<&[u8]> = std::iter::repeat_n(&b"x"[..], 11).collect();
    many.send(&args);
    assert!(error_text(&many.read()).starts_with("ERR Protocol error"));

    // Logged in, the same argument is fine.
    let mut ok = RespClient::connect(addr);
    ok.ok(&["AUTH", "web", WEB_PW]);
    ok.ok(&["SET", "k", &"x".repeat(20_000)]);
    println!("  NOAUTH before login; oversized pre-login requests closed");
}

/// Floods of wrong passwords, pipelined, on RESP, memcached binary SASL and memcached text:
/// every one refused, and the server's resident memory stays where it was (within 32 MiB
/// over 60 000 attempts: any per-attempt leak of even half a kilobyte would exceed it).
#[test]
fn auth_floods_stay_bounded() {
    const ATTEMPTS: usize = 20_000;
    let dir = TempDir::new("auth");
    let server = start_with_users(&dir);
    let before = rss_kib(server.pid());

    let resp_addr = server.listener("resp").expect("resp listener");
    let mut resp = connect(resp_addr);
    let reader = resp.try_clone().unwrap();
    let counter = std::thread::spawn(move || {
        let mut lines = BufReader::new(reader);
        let mut refused = 0;
        let mut line = String::new();
        while refused < ATTEMPTS {
            line.clear();
            assert!(lines.read_line(&mut line).expect("reading") > 0);
            assert!(line.starts_with("-WRONGPASS"), "{line:?}");
            refused += 1;
        }
        refused
    });
    let mut batch = Vec::new();
    for i in 0..ATTEMPTS {
        let pass = format!("guess{i}");
        batch.extend_from_slice(
            format!(
                "*3\r\n$4\r\nAUTH\r\n$3\r\nweb\r\n${}\r\n{pass}\r\n",
                pass.len()
            )
            .as_bytes(),
        );
    }
    resp.write_all(&batch).unwrap();
    assert_eq!(counter.join().unwrap(), ATTEMPTS);

    let mut bin = Bin::connect(server.memcache_addr());
    for i in 0..ATTEMPTS {
        bin.send(
            opcode::SASL_AUTH,
            McCommand::SaslAuth {
                mechanism: "PLAIN".as_bytes().to_vec().into(),
                data: format!("\0web\0guess{i}").into_bytes().into(),
                step: false,
            },
        );
        if i % 1000 == 999 {
            for _ in 0..1000 {
                assert_eq!(bin.read().expect("response").status, status::AUTH_ERROR);
            }
        }
    }

    let mut text = Text::connect(server.memcache_addr());
    for i in 0..ATTEMPTS {
        let token = format!("web guess{i}");
        text.send(format!("set a 0 0 {}\r\n{token}\r\n", token.len()).as_bytes());
        if i % 1000 == 999 {
            for _ in 0..1000 {
                assert_eq!(text.line(), "CLIENT_ERROR authentication failure");
            }
        }
    }
    let after = rss_kib(server.pid());
    println!(
        "  {} refused logins; RSS {before} KiB -> {after} KiB",
        3 * ATTEMPTS
    );
    assert!(
        after < before + 32 * 1024,
        "the server grew from {before} KiB to {after} KiB over a login flood"
    );
    // The right password still works, and the server counted the failures.
    assert_eq!(text.login("ops", OPS_PW), "STORED");
    text.send(b"stats\r\n");
    let mut errors = None;
    loop {
        let line = text.line();
        if line == "END" {
            break;
        }
        if let Some(n) = line.strip_prefix("STAT auth_errors ") {
            errors = n.parse::<usize>().ok();
        }
    }
    assert!(errors >= Some(3 * ATTEMPTS), "auth_errors {errors:?}");
}

/// Protected mode: no password and a non-loopback listener: sessiond exits with a message
/// that names the listener and the ways out. `--protected-mode no`, or a password, starts.
#[test]
fn protected_mode() {
    let dir = TempDir::new("protected");
    let data = dir.path().join("data");
    let mut cmd = Command::new(sessiond_binary());
    cmd.args([
        "--memcache-listen",
        "127.0.0.1:0",
        "--resp-listen",
        "0.0.0.0:0",
    ])
    .arg("--data-dir")
    .arg(&data);
    let out = run_with_timeout("sessiond in protected mode", &mut cmd, IO_TIMEOUT);
    assert!(!out.status.success(), "sessiond started: {}", out.stdout);
    assert!(!out.stdout.contains("ready"), "{}", out.stdout);
    for words in [
        "protected mode",
        "--resp-listen 0.0.0.0:0",
        "--requirepass",
        "--protected-mode no",
    ] {
        assert!(
            out.stderr.contains(words),
            "the refusal does not say {words:?}: {}",
            out.stderr
        );
    }
    println!("  refused: {}", out.stderr.trim());

    let open = Sessiond::start(&["--resp-listen", "0.0.0.0:0", "--protected-mode", "no"]);
    let port = open.listener("resp").expect("resp listener").port();
    let mut c = RespClient::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(c.call(&["PING"]).value, Resp::Simple("PONG".into()));

    let protected = Sessiond::start(&["--resp-listen", "0.0.0.0:0", "--requirepass", "pw"]);
    let port = protected.listener("resp").expect("resp listener").port();
    let mut c = RespClient::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert!(error_text(&c.call(&["PING"])).starts_with("NOAUTH"));
    println!("  --protected-mode no, or a password: starts on 0.0.0.0");
}

/// An HTTP POST whose body is a command, as a web page can make a browser send, to either
/// listener of a server without a password: the connection is closed at the request line
/// and the command never runs. Controls: the same command without the HTTP wrapping does
/// run, so the check is not vacuous.
#[test]
fn cross_protocol_post_runs_nothing() {
    let server = Sessiond::start(&[]);
    let resp_addr = server.listener("resp").expect("resp listener");
    let mc_addr = server.memcache_addr();

    let body = "SET xproto pwned\r\n";
    let post = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        resp_addr.port(),
        body.len()
    );
    let mut s = connect(resp_addr);
    s.write_all(post.as_bytes()).unwrap();
    assert!(closed_without_reply(&mut s), "the POST got a reply");
    let mut rc = RespClient::connect(resp_addr);
    assert!(rc.get("xproto").is_none(), "the POST body ran on RESP");
    // Only `Host:` (a header after a harmless first line): also closed.
    let mut s = connect(resp_addr);
    s.write_all(b"Host: example.com\r\nSET xproto pwned\r\n")
        .unwrap();
    assert!(closed_without_reply(&mut s), "the Host: line got a reply");
    assert!(rc.get("xproto").is_none(), "the Host: request ran on RESP");
    // Control: the body alone, inline, does set the key.
    let mut s = connect(resp_addr);
    s.write_all(body.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    assert_eq!(rc.get("xproto").as_deref(), Some(&b"pwned"[..]));
    assert_eq!(rc.call(&["DEL", "xproto"]).value, Resp::Int(1));

    let body = "set xproto 0 0 5\r\npwned\r\n";
    for request_line in ["POST / HTTP/1.1", "GET /?x HTTP/1.0", "PUT /x HTTP/1.1"] {
        let mut c = Text::connect(mc_addr);
        c.send(
            format!(
                "{request_line}\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert!(c.closed(), "{request_line}: the connection stayed open");
        let mut check = Text::connect(mc_addr);
        assert_eq!(
            check.ask(b"get xproto\r\n"),
            "END",
            "{request_line}: the body ran on memcached"
        );
    }
    let mut control = Text::connect(mc_addr);
    assert_eq!(control.ask(body.as_bytes()), "STORED");
    assert!(
        server
            .log_tail()
            .contains("Possible SECURITY ATTACK detected"),
        "no warning logged:\n{}",
        server.log_tail()
    );
    println!("  HTTP POST/GET/PUT with a command body: connection closed, nothing ran");
}

/// A connection of either protocol that never logs in is closed after
/// `--auth-idle-timeout` (one second here), so strangers cannot sit on connection slots.
#[test]
fn idle_connections_that_never_log_in_are_closed() {
    let server = Sessiond::start(&["--requirepass", "idle-secret", "--auth-idle-timeout", "1"]);
    let mut memcache = connect(server.memcache_addr());
    let mut resp = connect(server.listener("resp").expect("RESP listener"));
    assert!(
        closed_without_reply(&mut memcache),
        "memcached connection kept open"
    );
    assert!(closed_without_reply(&mut resp), "RESP connection kept open");
    // The server goes on serving those who log in.
    let mut client = RespClient::connect(server.listener("resp").expect("RESP listener"));
    client.ok(&["AUTH", "idle-secret"]);
    assert_eq!(client.call(&["PING"]).value, Resp::Simple("PONG".into()));
}
