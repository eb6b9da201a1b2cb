//! `redis-cli` (Debian `redis-tools`) driving a scripted session against the server under
//! test, once in RESP2 (`-2`) and once in RESP3 (`-3`, which makes redis-cli open the
//! connection with `HELLO 3`), plus a session against a password-protected server.
//!
//! The whole script goes through one redis-cli process on stdin, so it is one connection
//! (`SELECT` sticks). redis-cli prints no delimiter between replies, so every command is
//! followed by `ECHO @@<n>`; the output is cut at those markers and each command's chunk is
//! compared with its expectation, so a mismatch names the command. `--no-raw` keeps
//! redis-cli's typed formatting (`(integer) 1`, `(nil)`, `""`, `(error) …`), which tells
//! apart replies that raw output would print identically (a nil and an empty string).
//! Error replies are matched on their code (`ERR`, `NOAUTH`, …), which is what clients act
//! on; the text after it is free.
//!
//! The commands are the surface the session clients use (docs/redis.md lists them per
//! client): PING, ECHO, GET, SET with EX/PX/EXAT and NX/XX, SETEX, EXPIRE, EXISTS, DEL
//! with several keys, MGET, SELECT, SCAN with MATCH/COUNT, AUTH; and the `LATENCY`
//! subcommands monitoring tools send.

use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{PASSWORD, RespServer, require_program, run_with_timeout};

/// How one command's output must look.
pub(crate) enum Expect {
    /// Exactly these lines.
    Lines(&'static [&'static str]),
    /// One line `(error) <code> …`.
    Error(&'static str),
    /// A SCAN reply: cursor `0` and exactly these keys, in any order.
    Scan(&'static [&'static str]),
    /// Lines that must all appear (a HELLO map, whose `id` and `version` vary).
    Contains(&'static [&'static str]),
}
use Expect::*;

/// The scripted session: (command line as typed into redis-cli, expected output).
const SCRIPT: &[(&str, Expect)] = &[
    ("PING", Lines(&["PONG"])),
    ("PING \"hi there\"", Lines(&["\"hi there\""])),
    // phpredis's liveness check on a reused persistent connection.
    (
        "ECHO phpredis:6b00c93f7b051:3fd62080",
        Lines(&["\"phpredis:6b00c93f7b051:3fd62080\""]),
    ),
    ("SET s:1 v1", Lines(&["OK"])),
    ("GET s:1", Lines(&["\"v1\""])),
    ("GET s:none", Lines(&["(nil)"])),
    // NX/XX refusals are nil, never `:0` (fred and node-redis depend on it).
    ("SET s:1 v2 NX", Lines(&["(nil)"])),
    ("SET s:1 v2 XX", Lines(&["OK"])),
    ("GET s:1", Lines(&["\"v2\""])),
    ("SET s:2 v XX", Lines(&["(nil)"])),
    ("SET s:2 v NX EX 100", Lines(&["OK"])),
    // tower-sessions' create: absolute Unix seconds (2100-01-01) with NX; an empty value.
    ("SET s:3 \"\" EXAT 4102444800 NX", Lines(&["OK"])),
    ("GET s:3", Lines(&["\"\""])),
    ("SET s:4 v PX 100000", Lines(&["OK"])),
    // connect-redis's form of the same.
    ("SET s:9 v EX 100", Lines(&["OK"])),
    ("SETEX s:5 100 \"a b\"", Lines(&["OK"])),
    ("GET s:5", Lines(&["\"a b\""])),
    ("EXPIRE s:5 200", Lines(&["(integer) 1"])),
    ("EXPIRE s:none 10", Lines(&["(integer) 0"])),
    ("EXISTS s:1", Lines(&["(integer) 1"])),
    ("EXISTS s:none", Lines(&["(integer) 0"])),
    ("EXISTS s:1 s:5 s:none", Lines(&["(integer) 2"])),
    (
        "MGET s:1 s:none s:5",
        Lines(&["1) \"v2\"", "2) (nil)", "3) \"a b\""]),
    ),
    ("DEL s:1 s:5 s:none", Lines(&["(integer) 2"])),
    ("GET s:1", Lines(&["(nil)"])),
    // A deadline already in the past: Redis 7 answers OK and the key is gone at once.
    ("SET s:7 v EXAT 1", Lines(&["OK"])),
    ("EXISTS s:7", Lines(&["(integer) 0"])),
    ("SET s:8 v EX 0", Error("ERR")),
    ("SET s:8 v EX notanumber", Error("ERR")),
    ("SET s:8 v NX XX", Error("ERR")),
    ("GET s:8", Lines(&["(nil)"])),
    // Databases are separate keyspaces.
    ("SELECT 3", Lines(&["OK"])),
    ("GET s:2", Lines(&["(nil)"])),
    ("SET s:2 db3", Lines(&["OK"])),
    ("SCAN 0 MATCH s:* COUNT 1000", Scan(&["s:2"])),
    ("SELECT 0", Lines(&["OK"])),
    ("GET s:2", Lines(&["\"v\""])),
    ("SELECT 16", Error("ERR")),
    ("SET other:1 x", Lines(&["OK"])),
    (
        "SCAN 0 MATCH s:* COUNT 1000",
        Scan(&["s:2", "s:3", "s:4", "s:9"]),
    ),
    // What the Prometheus Redis exporter asks at every scrape: a Redis whose latency
    // monitor recorded nothing (the default) answers empty, and so does sessiond.
    ("LATENCY LATEST", Lines(&["(empty array)"])),
    ("LATENCY HISTORY command", Lines(&["(empty array)"])),
    ("LATENCY RESET", Lines(&["(integer) 0"])),
    ("LATENCY NOPE", Error("ERR")),
    ("NOSUCHCOMMAND a", Error("ERR")),
    ("SET onlykey", Error("ERR")),
    ("GET", Error("ERR")),
];

fn redis_cli() -> std::path::PathBuf {
    require_program("redis-cli", "redis-tools")
}

/// Runs `script` through one redis-cli process with `flags` and checks every command's
/// output.
pub(crate) fn run_script(server: &RespServer, flags: &[&str], script: &[(&str, Expect)]) {
    let mut input = String::new();
    for (n, (command, _)) in script.iter().enumerate() {
        input.push_str(&format!("{command}\nECHO @@{n}\n"));
    }
    let addr = server.addr();
    let mut cmd = Command::new(redis_cli());
    cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("--no-raw")
        .args(flags);
    let label = format!("redis-cli {}", flags.join(" "));
    let mut child = sessiond_test_harness::Spawned::spawn(&label, &mut cmd);
    child.send(&input);
    let out = child.wait(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{label} exited with {}; stderr: {}\nstdout:\n{}",
        out.status,
        out.stderr,
        out.stdout
    );

    let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
    for line in out.stdout.lines() {
        let marker = format!("\"@@{}\"", chunks.len() - 1);
        if line == marker {
            chunks.push(Vec::new());
        } else {
            chunks.last_mut().expect("a chunk").push(line);
        }
    }
    let mut failures = Vec::new();
    for (n, (command, expect)) in script.iter().enumerate() {
        let Some(got) = chunks.get(n) else {
            failures.push(format!(
                "{command}: no output (the output ends before marker @@{n})"
            ));
            break;
        };
        if let Err(why) = check(expect, got) {
            failures.push(format!("{command}: {why}; got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{label} against {}: {} of {} commands answered wrongly:\n  {}\nfull output:\n{}\n{}",
        server.name(),
        failures.len(),
        script.len(),
        failures.join("\n  "),
        out.stdout,
        server.diagnostics()
    );
    println!("  {label}: {} commands answered as expected", script.len());
}

fn check(expect: &Expect, got: &[&str]) -> Result<(), String> {
    match expect {
        Lines(want) => (got == *want)
            .then_some(())
            .ok_or_else(|| format!("expected {want:?}")),
        Error(code) => match got {
            [line] if line.starts_with(&format!("(error) {code}")) => Ok(()),
            _ => Err(format!("expected one `(error) {code} …` line")),
        },
        Contains(want) => {
            let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
            missing
                .is_empty()
                .then_some(())
                .ok_or_else(|| format!("missing lines {missing:?}"))
        }
        Scan(keys) => {
            // `1) "0"` then `2) 1) "k"` / `   2) "k"` …, or `2) (empty array)`.
            if got.first() != Some(&"1) \"0\"") {
                return Err("expected cursor 0 (the whole keyspace fits one COUNT 1000)".into());
            }
            let mut found: Vec<&str> = got[1..]
                .iter()
                .filter_map(|l| l.split_once(") \"").map(|(_, k)| k.trim_end_matches('"')))
                .collect();
            found.sort_unstable();
            let mut want = keys.to_vec();
            want.sort_unstable();
            (found == want)
                .then_some(())
                .ok_or_else(|| format!("expected keys {want:?}, found {found:?}"))
        }
    }
}

#[test]
fn redis_cli_resp2_session() {
    let server = RespServer::start();
    server.header("redis-cli -2");
    run_script(&server, &["-2"], SCRIPT);
}

/// The same script over RESP3. redis-cli `-3` sends `HELLO 3` when it connects and fails to
/// start the session without it; the HELLO reply is a map with `proto` 3.
#[test]
fn redis_cli_resp3_session() {
    let server = RespServer::start();
    server.header("redis-cli -3");
    run_script(&server, &["-3"], SCRIPT);
    run_script(
        &server,
        &["-3"],
        &[
            (
                "HELLO 3",
                Contains(&["1# \"server\" => \"redis\"", "3# \"proto\" => (integer) 3"]),
            ),
            ("GET s:none", Lines(&["(nil)"])),
            ("MGET s:2 s:none", Lines(&["1) \"v\"", "2) (nil)"])),
        ],
    );
}

/// Runs one command given as arguments (one connection, one command) and checks its output.
fn run_one(server: &RespServer, flags: &[&str], args: &[&str], expect: Expect) {
    let addr = server.addr();
    let mut cmd = Command::new(redis_cli());
    cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("--no-raw")
        .args(flags)
        .args(args);
    let label = format!("redis-cli {} {}", flags.join(" "), args.join(" "));
    let out = run_with_timeout(&label, &mut cmd, Duration::from_secs(30));
    let got: Vec<&str> = out.stdout.lines().collect();
    if let Err(why) = check(&expect, &got) {
        panic!(
            "{label} against {}: {why}; got {got:?} (exit {}, stderr {:?})\n{}",
            server.name(),
            out.status,
            out.stderr,
            server.diagnostics()
        );
    }
    println!("  {label}: {got:?}");
}

/// A server with a password: commands before AUTH are refused with NOAUTH, a wrong password
/// with an error, then `AUTH <pass>` and `AUTH default <pass>` (the ACL form node-redis and
/// Lettuce use) succeed. redis-cli's own `-a` works in both protocol versions (with `-3` the
/// password goes with the `HELLO 3` handshake). The unauthenticated commands run one per
/// connection: on such a connection even the `ECHO` markers would be refused.
#[test]
fn redis_cli_auth() {
    let server = RespServer::start_with(Some(PASSWORD));
    server.header("redis-cli with requirepass");
    run_one(&server, &["-2"], &["GET", "k"], Error("NOAUTH"));
    run_one(&server, &["-2"], &["SET", "k", "v"], Error("NOAUTH"));
    run_one(&server, &["-2"], &["AUTH", "wrong-password"], Error(""));
    let auth = format!("AUTH {PASSWORD}");
    let auth_default = format!("AUTH default {PASSWORD}");
    let script: Vec<(&str, Expect)> = vec![
        (&auth, Lines(&["OK"])),
        ("SET k v", Lines(&["OK"])),
        (&auth_default, Lines(&["OK"])),
        ("GET k", Lines(&["\"v\""])),
    ];
    run_script(&server, &["-2"], &script);
    for protocol in ["-2", "-3"] {
        run_script(
            &server,
            &[protocol, "-a", PASSWORD, "--no-auth-warning"],
            &[("GET k", Lines(&["\"v\""]))],
        );
    }
}
