//! express-session with connect-redis on node-redis against the server under test: the
//! script `tests/node/session-cycle.mjs` runs an express app on a free loopback port and
//! drives it over HTTP (login, read with touch, modify, regenerate, destroy, then the store's
//! `all`/`length`/`ids`/`clear`, which use SCAN … MATCH … COUNT and MGET).
//!
//! node-redis (>= 5) opens every connection with `HELLO 3` and refuses to connect if that
//! fails, so the default run is RESP3; `RESP=2` is the `createClient({RESP: 2})` variant,
//! and the password run puts the password in the URL (node-redis then authenticates inside
//! the `HELLO` command). The Node packages are pinned by `tests/node/package-lock.json` and
//! installed with `npm ci` into `tests/node/node_modules` (gitignored) the first time.
//! Node itself is not a Debian package here: the test machines' image ships Node >= 20.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use sessiond_test_harness::{
    PASSWORD, RespServer, Spawned, require_program, run_with_timeout, unique,
};

/// The whole cycle takes a few seconds (it waits for a 3-second session to expire).
const NODE_TIMEOUT: Duration = Duration::from_secs(60);
/// A first `npm ci` downloads about 90 packages.
const NPM_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `node`, checked to be version 20 or newer (connect-redis 9 and node-redis 6 need it).
pub(crate) fn node() -> PathBuf {
    let node = require_program("node", "nodejs (Node.js >= 20; the CI image ships it)");
    let out = Command::new(&node)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("running node --version: {e}"));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "node {version} is too old: connect-redis 9 and node-redis 6 need Node >= 20"
    );
    node
}

/// Installs the locked packages with `npm ci` unless `node_modules` already matches the
/// lockfile (npm keeps a copy of what it installed in `node_modules/.package-lock.json`).
/// Serialised: the tests of this module run in parallel threads of one process.
pub(crate) fn npm_ci() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = project();
    let installed = std::fs::read(dir.join("node_modules/.package-lock.json")).ok();
    let locked =
        std::fs::read(dir.join("package-lock.json")).expect("tests/node/package-lock.json");
    if installed.is_some_and(|i| same_packages(&i, &locked)) {
        return;
    }
    let npm = require_program("npm", "npm (ships with Node.js >= 20 on the CI image)");
    // A registry fetch can stall without failing (seen on this network): npm gives up on a
    // request after 60 s instead of its default 5 minutes and retries it, and a failed or
    // timed-out install is run once more before the test fails.
    let mut out = None;
    for attempt in 1..=2 {
        let mut cmd = Command::new(&npm);
        cmd.current_dir(&dir).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--fetch-timeout=60000",
            "--fetch-retries=4",
        ]);
        match Spawned::spawn("npm ci", &mut cmd).wait_at_most(NPM_TIMEOUT) {
            Ok(run) if run.status.success() => {
                out = Some(run);
                break;
            }
            Ok(run) => println!(
                "  npm ci attempt {attempt} failed ({}):\n{}\n{}",
                run.status, run.stdout, run.stderr
            ),
            Err(overdue) => println!("  npm ci attempt {attempt}: {overdue}"),
        }
    }
    let out =
        out.unwrap_or_else(|| panic!("npm ci in {} failed twice (output above)", dir.display()));
    println!("  npm ci: installed in {:?}", out.elapsed);
}

/// Whether npm's record of the installed tree lists the same `node_modules/…` entries with
/// the same versions as the lockfile. A cheap textual check: every `"version"` line of the
/// lockfile's packages must appear in the installed record, in the same order.
fn same_packages(installed: &[u8], locked: &[u8]) -> bool {
    let versions = |text: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(text)
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("\"node_modules/") || l.starts_with("\"version\""))
            .map(str::to_string)
            .collect()
    };
    versions(installed) == versions(locked)
}

/// Runs the cycle against `server`, then checks with the raw client what it left behind.
fn cycle(server: &RespServer, resp: u8, password: Option<&str>) {
    let addr = server.addr();
    let url = match password {
        Some(pass) => format!("redis://:{pass}@{addr}"),
        None => format!("redis://{addr}"),
    };
    cycle_at(server, resp, password, &url, None);
}

/// The cycle with node-redis connecting to `url` (`rediss://…` with `tls_ca`, the CA file it
/// verifies the server with); the raw client checks the result on `server`'s plain listener.
pub(crate) fn cycle_at(
    server: &RespServer,
    resp: u8,
    password: Option<&str>,
    url: &str,
    tls_ca: Option<&Path>,
) {
    let node = node();
    npm_ci();
    let prefix = format!("{}:", unique("sess"));
    let mut cmd = Command::new(node);
    cmd.current_dir(project())
        .arg("session-cycle.mjs")
        .env("REDIS_URL", url)
        .env("RESP", resp.to_string())
        .env("PREFIX", &prefix);
    if let Some(ca) = tls_ca {
        cmd.env("TLS_CA", ca);
    }
    let label = format!("node session-cycle.mjs (RESP{resp}, {url})");
    let out = run_with_timeout(&label, &mut cmd, NODE_TIMEOUT);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        out.status.success() && lines.last() == Some(&"done"),
        "{label} against {} failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
        server.name(),
        out.status,
        out.stdout,
        out.stderr,
        server.diagnostics()
    );
    for line in &lines {
        println!("    {line}");
    }
    let field = |tag: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("{label}: no `{tag}` line"))
            .to_string()
    };
    let (kept, foreign) = (field("kept "), field("foreign "));
    assert!(
        kept.starts_with(&prefix),
        "kept key {kept} lacks the prefix"
    );

    // The stored value is express-session's JSON, readable by any other client.
    let mut rc = server.client(password);
    let value = rc
        .get(&kept)
        .unwrap_or_else(|| panic!("the session {kept} the script left is gone"));
    let text = String::from_utf8_lossy(&value);
    assert!(
        text.starts_with("{\"cookie\":") && text.contains("\"user\":\"keeper\""),
        "{kept} holds {text:?}, not express-session's JSON"
    );
    assert_eq!(rc.get(&foreign).as_deref(), Some(&b"not a session"[..]));
    println!("  {label}: ok in {:?}; {kept} = {text}", out.elapsed);
}

#[test]
fn node_connect_redis_resp3() {
    let server = RespServer::start();
    server.header("express-session + connect-redis, node-redis RESP3");
    cycle(&server, 3, None);
}

#[test]
fn node_connect_redis_resp2() {
    let server = RespServer::start();
    server.header("express-session + connect-redis, node-redis RESP2");
    cycle(&server, 2, None);
}

#[test]
fn node_connect_redis_password() {
    let server = RespServer::start_with(Some(PASSWORD));
    server.header("express-session + connect-redis, node-redis RESP3 with a password");
    cycle(&server, 3, Some(PASSWORD));
}
