//! TLS on sessiond's listeners (`--memcache-tls-listen`, `--resp-tls-listen`), driven by real
//! TLS clients: `redis-cli --tls` (Debian `redis-tools`), `openssl s_client` (a long-lived
//! raw connection), phpredis with a `tls://` save path, node-redis with `rediss://`, and
//! php-memcached, which has no TLS of its own, through a client-side `stunnel` sidecar
//! (the setup docs/security.md recommends).
//!
//! Certificates are made per test with rcgen: a throwaway CA and a server certificate for
//! `127.0.0.1` and `localhost`, written to a temporary directory. Every client verifies the
//! server against that CA (none runs with verification off), so a passing test also shows
//! which certificate the server presented: the certificate reload test tells the old
//! certificate from the new one by which CA a fresh client must trust.
//!
//! Waits are bounded only to turn a hang into a failure; no assertion is about time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::node_redis::cycle_at;
use crate::php::{Php, id, php_with, read_session, set, vars, write_session};
use crate::php_memcached::{Proto, data_key as memcached_key, memcached_php};
use sessiond_test_harness::process::{Signal, signal};
use sessiond_test_harness::{
    Finished, McClient, RespClient, RespServer, Sessiond, Spawned, TempDir, free_port,
    require_program, run_with_timeout, sessiond_binary, tail_of_file, terminate, unique,
};

use crate::support::counter;

/// Upper bound for one client run; a healthy one takes milliseconds.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A throwaway certificate authority, its certificate written to `<name>-ca.pem`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("sessiond test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signing the CA");
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, issuer.pem()).expect("writing the CA certificate");
        Ca { issuer, pem }
    }

    /// A certificate for `127.0.0.1` and `localhost` signed by this CA, for a server or a
    /// client: its certificate and key files, `<name>.pem` and `<name>.key`.
    fn issue(&self, dir: &Path, name: &str, usage: ExtendedKeyUsagePurpose) -> Pair {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signing the certificate");
        let pair = Pair {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).expect("writing the certificate");
        std::fs::write(&pair.key, key.serialize_pem()).expect("writing the key");
        pair
    }

    fn server(&self, dir: &Path, name: &str) -> Pair {
        self.issue(dir, name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self, dir: &Path, name: &str) -> Pair {
        self.issue(dir, name, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A certificate file and its key file.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate it signed, in a directory of their own.
struct Pki {
    dir: TempDir,
    ca: Ca,
    server: Pair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = TempDir::new("tls");
        let ca = Ca::new(dir.path(), name);
        let server = ca.server(dir.path(), &format!("{name}-server"));
        Pki { dir, ca, server }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// sessiond with both TLS listeners on free ports (plus the plain ones, for inspection)
/// serving `cert`/`key`, with `extra` options.
fn start_tls(server: &Pair, extra: &[&str]) -> Sessiond {
    let mut args = vec![
        "--memcache-tls-listen",
        "127.0.0.1:0",
        "--resp-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        path_str(&server.cert),
        "--tls-key",
        path_str(&server.key),
    ];
    args.extend_from_slice(extra);
    let server = Sessiond::start(&args);
    for listener in ["memcache-tls", "resp-tls", "memcache", "resp"] {
        assert!(
            server.listener(listener).is_some(),
            "sessiond printed no `listening {listener}` line; log:\n{}",
            server.log_tail()
        );
    }
    server
}

fn tls_addr(server: &Sessiond, proto: &str) -> SocketAddr {
    server
        .listener(&format!("{proto}-tls"))
        .expect("TLS listener")
}

/// `redis-cli --tls` against `addr`, verifying the server with `ca`, optionally presenting a
/// client certificate, running one command.
fn redis_cli(addr: SocketAddr, ca: &Path, client: Option<&Pair>, command: &[&str]) -> Finished {
    let bin = require_program("redis-cli", "redis-tools");
    let mut cmd = Command::new(bin);
    cmd.args(["--tls", "--cacert", path_str(ca)]).args([
        "-h",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
    ]);
    if let Some(pair) = client {
        cmd.args(["--cert", path_str(&pair.cert), "--key", path_str(&pair.key)]);
    }
    cmd.args(command);
    run_with_timeout("redis-cli --tls", &mut cmd, CLIENT_TIMEOUT)
}

/// Asserts that `redis-cli --tls … PING` gets `PONG`.
fn assert_pong(addr: SocketAddr, ca: &Path, client: Option<&Pair>, why: &str, server: &Sessiond) {
    let out = redis_cli(addr, ca, client, &["PING"]);
    assert!(
        out.status.success() && out.stdout.trim() == "PONG",
        "{why}: redis-cli --tls PING did not get PONG ({}):\nstdout: {}\nstderr: {}\n\
         sessiond log:\n{}",
        out.status,
        out.stdout,
        out.stderr,
        server.log_tail()
    );
}

/// Asserts that `redis-cli --tls … PING` does not get `PONG`, and returns what it printed.
fn assert_refused(addr: SocketAddr, ca: &Path, client: Option<&Pair>, why: &str) -> String {
    let out = redis_cli(addr, ca, client, &["PING"]);
    assert!(
        !out.stdout.contains("PONG"),
        "{why}: redis-cli --tls PING got an answer:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    format!("{} {}", out.stdout.trim(), out.stderr.trim())
}

/// A long-lived `openssl s_client` connection verifying the server with `ca`; `-crlf` turns
/// each line sent into a CRLF-terminated protocol line, `-quiet` prints only server data.
fn s_client(addr: SocketAddr, ca: &Path) -> Spawned {
    let bin = require_program("openssl", "openssl");
    let mut cmd = Command::new(bin);
    cmd.args(["s_client", "-connect", &addr.to_string()])
        .args(["-CAfile", path_str(ca), "-verify_return_error"])
        .args(["-verify_ip", "127.0.0.1", "-quiet", "-crlf"]);
    Spawned::spawn("openssl s_client", &mut cmd)
}

/// Waits until sessiond's log holds `count` lines containing `text` (a SIGHUP's outcome).
fn wait_for_log(server: &Sessiond, text: &str, count: usize) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while server.log_tail().matches(text).count() < count {
        assert!(
            Instant::now() < deadline,
            "sessiond never logged {text:?} ({count} times); log:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sighup(server: &Sessiond) {
    signal(server.pid(), Signal::HUP);
}

fn tls_handshake_errors(server: &Sessiond) -> u64 {
    let stats = McClient::connect(server.memcache_addr()).stats();
    counter(&stats, &["ssl_handshake_errors"])
}

/// Waits until `ssl_handshake_errors` reaches at least `count`, for failures a client
/// detected first: it may exit before the server has read its alert. (At least: redis-cli
/// tries a refused connection twice.)
fn wait_for_handshake_errors(server: &Sessiond, count: u64) -> u64 {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        let seen = tls_handshake_errors(server);
        if seen >= count {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "ssl_handshake_errors stayed at {seen}, expected {count}:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// redis-cli over TLS reads and writes the same keyspace as the plain listeners, and a
/// memcached-protocol client over TLS (s_client speaking the text protocol) too. A client
/// that trusts another CA is refused: the server really presents the configured chain.
#[test]
fn tls_redis_cli_and_memcache_share_the_keyspace() {
    let pki = Pki::new("a");
    let server = start_tls(&pki.server, &[]);
    let resp_tls = tls_addr(&server, "resp");
    let key = unique("tls");

    let out = redis_cli(resp_tls, &pki.ca.pem, None, &["SET", &key, "over-tls"]);
    assert_eq!(out.stdout.trim(), "OK", "SET over TLS: {out:?}");
    let out = redis_cli(resp_tls, &pki.ca.pem, None, &["GET", &key]);
    assert_eq!(out.stdout.trim(), "over-tls", "GET over TLS: {out:?}");
    let mut plain = RespClient::connect(server.listener("resp").expect("plain RESP"));
    assert_eq!(plain.get(&key).as_deref(), Some(&b"over-tls"[..]));

    // The memcached protocol on its TLS port: database 0 is shared with RESP.
    let mut mc = s_client(tls_addr(&server, "memcache"), &pki.ca.pem);
    mc.send(&format!("get {key}\n"));
    mc.expect_line(&format!("VALUE {key} 0 8"), CLIENT_TIMEOUT);
    mc.expect_line("over-tls", CLIENT_TIMEOUT);
    mc.expect_line("END", CLIENT_TIMEOUT);
    mc.send(&format!("set {key}m 7 0 2\nhi\n"));
    mc.expect_line("STORED", CLIENT_TIMEOUT);
    let item = McClient::connect(server.memcache_addr())
        .get(&format!("{key}m"))
        .expect("the item stored over TLS");
    assert_eq!((item.flags, item.value.as_slice()), (7, &b"hi"[..]));

    let other = Ca::new(pki.path(), "other");
    let said = assert_refused(resp_tls, &other.pem, None, "a client trusting another CA");
    let errors = wait_for_handshake_errors(&server, 1);
    println!("  a client trusting another CA was refused ({errors} handshake errors): {said}");
}

/// A client that connects to a TLS port and never handshakes is dropped after
/// `--tls-handshake-timeout`, and one that speaks plain RESP to it is dropped at once; both
/// are counted in `ssl_handshake_errors`, and the server keeps serving TLS clients.
#[test]
fn tls_handshake_failures_are_bounded_and_counted() {
    let pki = Pki::new("hs");
    let server = start_tls(&pki.server, &["--tls-handshake-timeout", "1"]);
    let resp_tls = tls_addr(&server, "resp");
    assert_eq!(tls_handshake_errors(&server), 0);

    // The read timeout only turns a server that never drops the client into a failure.
    let closed_by_server = |mut stream: TcpStream, what: &str| {
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("read timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{what}: the server did not close the connection: {e}"),
            }
        }
        assert!(
            !got.windows(5).any(|w| w == b"+PONG"),
            "{what}: answered in clear text"
        );
    };

    let mut plain_talker = TcpStream::connect(resp_tls).expect("connect");
    plain_talker.write_all(b"PING\r\n").expect("write");
    closed_by_server(plain_talker, "a plain-text client on the TLS port");
    assert_eq!(tls_handshake_errors(&server), 1, "{}", server.log_tail());

    let silent = TcpStream::connect(resp_tls).expect("connect");
    closed_by_server(silent, "a client that never sends a ClientHello");
    assert_eq!(tls_handshake_errors(&server), 2, "{}", server.log_tail());

    assert_pong(
        resp_tls,
        &pki.ca.pem,
        None,
        "after failed handshakes",
        &server,
    );
    println!("  silent and plain-text clients dropped and counted; TLS still served");
}

/// SIGHUP swaps the certificate without dropping connections: a connection opened with
/// certificate A keeps working after the files are replaced with certificate B (another CA)
/// and SIGHUP is sent; a new client must then trust B's CA, and one trusting only A's is
/// refused. A reload from bad files (a key that does not match) changes nothing.
#[test]
fn tls_sighup_reloads_the_certificate_and_keeps_connections() {
    let a = Pki::new("a");
    let b = Ca::new(a.path(), "b");
    let b_server = b.server(a.path(), "b-server");
    // The files sessiond is configured with: copies, replaced in place later.
    let live = Pair {
        cert: a.path().join("live.pem"),
        key: a.path().join("live.key"),
    };
    std::fs::copy(&a.server.cert, &live.cert).expect("copy");
    std::fs::copy(&a.server.key, &live.key).expect("copy");
    let server = start_tls(&live, &[]);
    let resp_tls = tls_addr(&server, "resp");

    let mut old = s_client(resp_tls, &a.ca.pem);
    old.send("PING\n");
    old.expect_line("+PONG", CLIENT_TIMEOUT);
    assert_pong(resp_tls, &a.ca.pem, None, "before the reload", &server);
    assert_refused(resp_tls, &b.pem, None, "B's CA before the reload");

    // Replace each file atomically (write aside, rename), as a certificate manager does.
    let replace = |from: &Path, to: &Path| {
        let aside = to.with_extension("new");
        std::fs::copy(from, &aside).expect("copy");
        std::fs::rename(&aside, to).expect("rename");
    };
    replace(&b_server.cert, &live.cert);
    replace(&b_server.key, &live.key);
    sighup(&server);
    wait_for_log(&server, "TLS certificate reloaded", 1);

    assert_pong(
        resp_tls,
        &b.pem,
        None,
        "a new client after the reload",
        &server,
    );
    let said = assert_refused(resp_tls, &a.ca.pem, None, "A's CA after the reload");
    println!("  after SIGHUP a client trusting only A is refused: {said}");
    old.send("SET reload:k survived\n");
    old.expect_line("+OK", CLIENT_TIMEOUT);
    old.send("GET reload:k\n");
    old.expect_line("$8", CLIENT_TIMEOUT);
    old.expect_line("survived", CLIENT_TIMEOUT);

    // A bad reload: A's key with B's certificate. Logged, and B stays in use.
    replace(&a.server.key, &live.key);
    sighup(&server);
    wait_for_log(&server, "TLS reload failed", 1);
    assert!(
        server.log_tail().contains("does not match"),
        "the failed reload does not say why:\n{}",
        server.log_tail()
    );
    assert_pong(resp_tls, &b.pem, None, "after a failed reload", &server);
    old.send("PING\n");
    old.expect_line("+PONG", CLIENT_TIMEOUT);
    println!("  connection opened under A still works; failed reload kept B");
}

/// `--tls-ca` verifies client certificates: `required` (the default with a CA) refuses a
/// client without one, `optional` accepts it; both refuse a certificate from another CA.
#[test]
fn tls_client_certificates_required_and_optional() {
    let pki = Pki::new("srv");
    let clients = Ca::new(pki.path(), "clients");
    let good = clients.client(pki.path(), "app");
    let stranger = Ca::new(pki.path(), "stranger").client(pki.path(), "stranger-app");
    let ca = path_str(&clients.pem);

    let required = start_tls(&pki.server, &["--tls-ca", ca]);
    let addr = tls_addr(&required, "resp");
    assert_pong(
        addr,
        &pki.ca.pem,
        Some(&good),
        "required, valid certificate",
        &required,
    );
    let said = assert_refused(addr, &pki.ca.pem, None, "required, no certificate");
    println!("  required: no client certificate refused: {said}");
    assert_refused(addr, &pki.ca.pem, Some(&stranger), "required, unknown CA");
    drop(required);

    let optional = start_tls(
        &pki.server,
        &["--tls-ca", ca, "--tls-client-auth", "optional"],
    );
    let addr = tls_addr(&optional, "resp");
    assert_pong(
        addr,
        &pki.ca.pem,
        None,
        "optional, no certificate",
        &optional,
    );
    assert_pong(
        addr,
        &pki.ca.pem,
        Some(&good),
        "optional, valid certificate",
        &optional,
    );
    let said = assert_refused(addr, &pki.ca.pem, Some(&stranger), "optional, unknown CA");
    println!("  optional: no certificate accepted, unknown CA refused: {said}");
}

/// sessiond refuses to start, naming the problem, on a missing key file, a file with no
/// certificate in it, and a key that does not belong to the certificate.
#[test]
fn tls_refuses_to_start_on_bad_files() {
    let pki = Pki::new("bad");
    let other = pki.ca.server(pki.path(), "other");
    let not_pem = pki.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").expect("write");
    let missing = pki.path().join("missing.key");
    let cases = [
        (&pki.server.cert, &missing, "No such file"),
        (&not_pem, &pki.server.key, "no certificate"),
        (&pki.server.cert, &other.key, "does not match"),
    ];
    for (cert, key, expected) in cases {
        let data = TempDir::new("tls-data");
        let mut cmd = Command::new(sessiond_binary());
        cmd.args(["--memcache-listen", "off", "--resp-listen", "off"])
            .args(["--resp-tls-listen", "127.0.0.1:0"])
            .args(["--tls-cert", path_str(cert), "--tls-key", path_str(key)])
            .arg("--data-dir")
            .arg(data.path());
        let out = run_with_timeout("sessiond with bad TLS files", &mut cmd, CLIENT_TIMEOUT);
        assert!(
            !out.status.success() && !out.stdout.contains("ready"),
            "sessiond started with {cert:?} / {key:?}: {out:?}"
        );
        assert!(
            out.stderr.contains(expected),
            "sessiond's refusal does not say {expected:?}: {}",
            out.stderr
        );
        // The first line is the message (a RUST_BACKTRACE in the environment adds more).
        println!(
            "  refused: {}",
            out.stderr.lines().next().unwrap_or_default()
        );
    }
}

/// phpredis 5.3.7 (Debian) with `session.save_path = "tls://127.0.0.1:<port>"`. It ignores
/// `stream[cafile]` in the save path, so the CA is given as PHP's default,
/// `openssl.cafile`; PHP then verifies the chain and the peer name (an IP SAN). Without the
/// CA the same client fails, which shows the verification is real.
#[test]
fn tls_phpredis_sessions() {
    let pki = Pki::new("php");
    let server = start_tls(&pki.server, &[]);
    let path = format!("tls://{}", tls_addr(&server, "resp"));
    let php = Php::new(php_with("redis", "php-redis"), "redis", &path)
        .with("redis.session.locking_enabled", "0")
        .with("openssl.cafile", path_str(&pki.ca.pem));
    let sid = unique("tlsphp");
    write_session(&php, "writer over TLS", &sid, &[("user", b"alice")]);
    let got = read_session(&php, "reader over TLS", &sid);
    assert!(got == vars(&[("user", b"alice")]), "read back {got:?}");
    let mut plain = RespClient::connect(server.listener("resp").expect("plain RESP"));
    let stored = plain
        .get(&format!("PHPREDIS_SESSION:{sid}"))
        .expect("the session is on the server");
    assert!(stored.starts_with(b"user|s:5:\"alice\";"));

    let unverified = Php::new(php_with("redis", "php-redis"), "redis", &path)
        .with("redis.session.locking_enabled", "0");
    let other = unique("tlsphpx");
    let run = unverified.run_unchecked(
        "without the CA",
        &[id(&other), "start".into(), set("x", b"1"), "close".into()],
    );
    assert!(
        !run.warnings.is_empty() || !run.stderr.is_empty(),
        "PHP connected without trusting the CA:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!plain.exists(&format!("PHPREDIS_SESSION:{other}")));
    println!(
        "  session over tls:// written and read; without the CA: {:?}",
        run.warnings
    );
}

/// express-session + connect-redis on node-redis with `rediss://` and the CA in
/// `socket.ca`: the whole session cycle of `node_redis`, over TLS.
#[test]
fn tls_node_redis_sessions() {
    let pki = Pki::new("node");
    let server = RespServer::Sessiond(start_tls(&pki.server, &[]));
    let RespServer::Sessiond(sessiond) = &server else {
        unreachable!()
    };
    let url = format!("rediss://{}", tls_addr(sessiond, "resp"));
    cycle_at(&server, 3, None, &url, Some(&pki.ca.pem));
}

/// php-memcached (libmemcached has no TLS) through a client-side stunnel: stunnel listens on
/// a loopback port on the "app host", verifies sessiond's certificate against the CA, and
/// forwards to the memcache TLS port. Sessions work in both wire formats and land in
/// sessiond.
#[test]
fn tls_php_memcached_through_stunnel() {
    let pki = Pki::new("stunnel");
    let server = start_tls(&pki.server, &[]);
    let sidecar = Stunnel::start(&pki, tls_addr(&server, "memcache"));
    for proto in [Proto::Binary, Proto::Text] {
        let php = memcached_php(&[sidecar.addr], proto);
        let sid = unique("tlsmc");
        write_session(
            &php,
            &format!("{proto:?} writer via stunnel"),
            &sid,
            &[("user", b"bob")],
        );
        let got = read_session(&php, &format!("{proto:?} reader via stunnel"), &sid);
        assert!(got == vars(&[("user", b"bob")]), "read back {got:?}");
        let item = McClient::connect(server.memcache_addr())
            .get(&memcached_key(&sid))
            .unwrap_or_else(|| panic!("session {sid} is not on sessiond\n{}", server.log_tail()));
        assert!(item.value.starts_with(b"user|s:3:\"bob\";"));
        println!("  {proto:?}: session via stunnel stored on sessiond");
    }
    assert_eq!(tls_handshake_errors(&server), 0, "{}", server.log_tail());
}

/// A client-side stunnel (Debian `stunnel4`) in the foreground, stopped by pid on drop.
struct Stunnel {
    child: Child,
    addr: SocketAddr,
}

impl Stunnel {
    /// Starts stunnel accepting plain connections on a free loopback port and forwarding
    /// them over TLS to `target`, verifying its certificate chain and IP against `pki`'s CA.
    /// Ready once its log says it accepts connections (a probe connection would make it
    /// open a TLS session to sessiond); retried on another port if that one was taken.
    fn start(pki: &Pki, target: SocketAddr) -> Stunnel {
        let bin = require_program("stunnel4", "stunnel4");
        for attempt in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let conf = pki.path().join(format!("stunnel-{attempt}.conf"));
            let log = pki.path().join(format!("stunnel-{attempt}.log"));
            let text = format!(
                "foreground = yes\npid =\ndebug = info\noutput = {}\n\n\
                 [sessiond-memcache]\nclient = yes\naccept = {addr}\nconnect = {target}\n\
                 CAfile = {}\nverifyChain = yes\ncheckIP = 127.0.0.1\n",
                path_str(&log),
                path_str(&pki.ca.pem)
            );
            std::fs::write(&conf, text).expect("writing stunnel.conf");
            let mut child = Command::new(&bin)
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawning stunnel4: {e}"));
            let deadline = Instant::now() + CLIENT_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    println!(
                        "  stunnel on {addr} exited ({status}); retrying:\n{}",
                        tail_of_file(&log, 2000)
                    );
                    break;
                }
                if tail_of_file(&log, 100_000).contains("Accepting new connections") {
                    println!("  stunnel pid {} on {addr} -> {target}", child.id());
                    return Stunnel { child, addr };
                }
                if Instant::now() > deadline {
                    terminate(&mut child);
                    panic!("stunnel did not start:\n{}", tail_of_file(&log, 2000));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("stunnel failed to start on 5 free ports");
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Large replies pipelined over TLS arrive whole: 64 `GET`s of a 512 KiB value (32 MiB of
/// replies, more than loopback's socket buffers hold) sent at once through `openssl
/// s_client`. The case behind it: a TLS stream can take a reply's last bytes into its record
/// buffer while the socket is full, and only a flush sends them, so the server flushes after
/// every batch. Whether the last write of a batch meets a full socket is up to the
/// scheduler, so this test exercises the path rather than reproducing a missing flush
/// every time (it passed without the flush on this machine).
#[test]
fn tls_large_pipelined_replies_arrive_whole() {
    const SIZE: usize = 512 * 1024;
    const GETS: usize = 64;
    let pki = Pki::new("big");
    let server = start_tls(&pki.server, &[]);
    let value: String = (0..SIZE).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let mut plain = RespClient::connect(server.listener("resp").expect("plain RESP"));
    plain.ok(&["SET", "big", &value]);

    let mut client = s_client(tls_addr(&server, "resp"), &pki.ca.pem);
    client.send(&"GET big\n".repeat(GETS));
    for n in 0..GETS {
        client.expect_line(&format!("${SIZE}"), CLIENT_TIMEOUT);
        client.expect_line(&value, CLIENT_TIMEOUT);
        if n == GETS - 1 {
            println!("  {GETS} pipelined {SIZE}-byte replies received whole over TLS");
        }
    }
}
