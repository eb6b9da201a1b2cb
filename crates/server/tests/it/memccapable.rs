//! libmemcached's protocol conformance suite, `memccapable` (Debian names it with a `memc`
//! prefix; package libmemcached-tools), run against the server under test.
//!
//! The full run (27 ascii + 27 binary tests) is the gate; the `-a` and `-b` runs repeat the
//! halves separately so a failure report says at a glance which protocol broke. memccapable
//! FLUSHes the server, so every run gets a server of its own. `[FAIL]` lines and the
//! "N of M tests failed" summary go to stderr, so both streams end up in a failure message.

use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{require_program, run_with_timeout};

use crate::support::TestServer;

/// Generous bound for a run that takes about 5 s when it passes; each failing test waits for
/// the 5 s io timeout, so a badly broken server needs the headroom to report every failure.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs memccapable with `extra` flags against a fresh server, asserts it passed and returns
/// the summary line.
fn memccapable(extra: &[&str]) -> String {
    let bin = require_program("memccapable", "libmemcached-tools");
    let server = TestServer::start();
    let addr = server.memcache_addr();
    let mut cmd = Command::new(bin);
    cmd.args([
        "-h",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
        "-t",
        "5",
    ])
    .args(extra);
    println!("running {cmd:?} against {} at {addr}", server.name());
    let out = run_with_timeout("memccapable", &mut cmd, RUN_TIMEOUT);
    let passed = out.stdout.matches("[pass]").count();
    let failed = failed_tests(&out.stdout);
    let summary = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .rfind(|l| l.contains("tests passed") || l.contains("tests failed"))
        .unwrap_or("(no summary line)")
        .to_string();
    println!("memccapable {extra:?}: {passed} passed, failed {failed:?}, summary: {summary:?}");
    if out.status.success() && out.stdout.contains("All tests passed") {
        return summary;
    }
    // Rerun each failing test alone with -v, which prints the assertion that failed
    // (source line and the expected reply), so the report says what the server got wrong.
    let mut details = String::new();
    for name in &failed {
        let mut cmd = Command::new(require_program("memccapable", "libmemcached-tools"));
        cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-t", "5", "-v", "-T", name]);
        let rerun = run_with_timeout("memccapable -v", &mut cmd, RUN_TIMEOUT);
        details.push_str(&format!(
            "--- memccapable -v -T {name:?}:\n{}{}\n",
            rerun.stdout, rerun.stderr
        ));
    }
    panic!(
        "memccapable {extra:?} against {} failed ({}): failing tests {failed:?}\n{details}\
         full stdout:\n{}\nfull stderr:\n{}\n{}",
        server.name(),
        out.status,
        out.stdout,
        out.stderr,
        server.diagnostics()
    );
}

/// Names of the tests that did not pass. memccapable prints each test name padded with
/// spaces to stdout, then `[pass]` to stdout or `[FAIL]` to stderr; so on stdout a failed
/// name runs straight into the next name. Splitting on `[pass]` and then on runs of two or
/// more spaces (names contain single spaces only) leaves, per chunk, failed names followed by
/// one passed name; after the last `[pass]`, only failed names.
fn failed_tests(stdout: &str) -> Vec<String> {
    let chunks: Vec<&str> = stdout.split("[pass]").collect();
    let mut failed = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let names: Vec<&str> = chunk
            .split("  ")
            .map(str::trim)
            .filter(|n| n.starts_with("ascii ") || n.starts_with("binary "))
            .collect();
        let keep = if i + 1 == chunks.len() {
            names.len()
        } else {
            names.len().saturating_sub(1)
        };
        failed.extend(names[..keep].iter().map(|n| n.to_string()));
    }
    failed
}

#[test]
fn all_tests() {
    memccapable(&[]);
}

#[test]
fn ascii_only() {
    memccapable(&["-a"]);
}

#[test]
fn binary_only() {
    memccapable(&["-b"]);
}

#[test]
fn failed_test_names_are_recovered_from_stdout() {
    // Shape of a real run against a server that failed `ascii stat` (its [FAIL] went to
    // stderr) and `binary stat` (the last test).
    let stdout = "ascii prepend noreply                   [pass]\n\
                  ascii stat                              binary noop                             [pass]\n\
                  binary prependq                         [pass]\n\
                  binary stat                             \n";
    assert_eq!(failed_tests(stdout), ["ascii stat", "binary stat"]);
    assert!(
        failed_tests("ascii version                           [pass]\nAll tests passed\n")
            .is_empty()
    );
}
