//! Running `tests/php/session.php` (the scriptable PHP session client) with any session save
//! handler: an ini map rendered as `-d` flags, processes run to completion or spawned for
//! concurrency, and their output parsed. Used by the php-memcached and phpredis tests and by
//! the one-keyspace test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use sessiond_test_harness::{Spawned, require_program, unique};

use crate::support::{hex, unhex};

/// A session id no server has seen: `[a-z0-9]` only, which PHP accepts from `session_id()`.
pub fn new_sid(tag: &str) -> String {
    unique(tag)
}

/// The bytes `fill:<key>=<n>` produces in the PHP script.
pub fn fill(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + 7) % 256) as u8).collect()
}

/// Upper bound for one PHP process. A healthy one takes tens of milliseconds; the bound only
/// turns a hang (say, a lock that is never released) into a failure with output.
pub const PHP_TIMEOUT: Duration = Duration::from_secs(30);

/// The PHP CLI with extension `module` loaded (`redis` from php-redis, `memcached` from
/// php-memcached), or a failure naming the Debian package.
pub fn php_with(module: &str, package: &str) -> PathBuf {
    let php = require_program("php", "php-cli");
    let out = Command::new(&php)
        .arg("-m")
        .output()
        .unwrap_or_else(|e| panic!("running php -m: {e}"));
    let modules = String::from_utf8_lossy(&out.stdout);
    assert!(
        modules.lines().any(|m| m.trim() == module),
        "PHP has no {module} extension: install the Debian package `{package}` \
         (scripts/test.sh installs it); php -m said:\n{modules}"
    );
    php
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/php/session.php")
}

/// One PHP configuration: the binary plus ini overrides, rendered as `-d` flags on top of the
/// packaged php.ini (which loads the extensions and their dependencies in the right order).
#[derive(Clone)]
pub struct Php {
    binary: PathBuf,
    ini: BTreeMap<&'static str, String>,
}

impl Php {
    /// The CLI defaults every scenario shares: no cookies or cache headers (so nothing but
    /// the save handler is involved), lazy writes, no GC, the `php` serializer, every notice
    /// reported.
    pub fn new(binary: PathBuf, save_handler: &str, save_path: &str) -> Php {
        let mut php = Php {
            binary,
            ini: BTreeMap::new(),
        };
        for (k, v) in [
            ("session.save_handler", save_handler),
            ("session.save_path", save_path),
            ("session.use_cookies", "0"),
            ("session.use_only_cookies", "0"),
            ("session.cache_limiter", ""),
            ("session.use_strict_mode", "0"),
            ("session.lazy_write", "1"),
            ("session.gc_probability", "0"),
            ("session.gc_maxlifetime", "1440"),
            ("session.serialize_handler", "php"),
            ("display_errors", "stderr"),
            ("error_reporting", "-1"),
            ("max_execution_time", "0"),
        ] {
            php.ini.insert(k, v.to_string());
        }
        php
    }

    pub fn with(mut self, key: &'static str, value: &str) -> Php {
        self.ini.insert(key, value.to_string());
        self
    }

    fn command(&self, steps: &[String]) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (k, v) in &self.ini {
            // php.ini syntax: a value with `=`, `&` or `?` (a phpredis save path with
            // options) must be quoted, or PHP reports a syntax error and ignores it.
            if v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:/,-".contains(c))
            {
                cmd.arg("-d").arg(format!("{k}={v}"));
            } else {
                cmd.arg("-d").arg(format!("{k}=\"{v}\""));
            }
        }
        cmd.arg(script()).args(steps);
        cmd
    }

    pub fn spawn(&self, label: &str, steps: &[String]) -> Spawned {
        println!("  {label}: php session.php {}", abbreviate(steps));
        Spawned::spawn(label, &mut self.command(steps))
    }

    /// Runs the script to completion and checks it exited 0, raised no PHP notice or warning
    /// and ran every step.
    pub fn run(&self, label: &str, steps: &[String]) -> PhpRun {
        finish(self.spawn(label, steps))
    }

    /// Runs the script to completion without judging the outcome (for expected failures).
    pub fn run_unchecked(&self, label: &str, steps: &[String]) -> PhpRun {
        finish_unchecked(self.spawn(label, steps))
    }
}

/// Steps for the log: long `set:` payloads shortened, long step lists cut after 12 steps.
fn abbreviate(steps: &[String]) -> String {
    let mut shown: Vec<String> = steps
        .iter()
        .take(12)
        .map(|s| {
            if s.len() > 48 {
                format!("{}…", &s[..40])
            } else {
                s.clone()
            }
        })
        .collect();
    if steps.len() > 12 {
        shown.push(format!("… ({} steps in all)", steps.len()));
    }
    shown.join(" ")
}

/// The parsed output of one script run.
#[derive(Debug)]
pub struct PhpRun {
    pub label: String,
    pub lines: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    /// The PHP notices and warnings the script reported, decoded.
    pub warnings: Vec<String>,
    /// How the process exited (a fatal error exits 255).
    pub status: ExitStatus,
}

/// Waits for a spawned script and checks it like [`Php::run`].
pub fn finish(child: Spawned) -> PhpRun {
    let run = finish_unchecked(child);
    assert!(
        run.status.success()
            && run.warnings.is_empty()
            && run.lines.last().map(String::as_str) == Some("done"),
        "{}: PHP failed (exit {}), warnings {:?}\nstdout:\n{}\nstderr:\n{}",
        run.label,
        run.status,
        run.warnings,
        run.stdout,
        run.stderr
    );
    run
}

/// Waits for a spawned script without judging the outcome (for expected failures).
pub fn finish_unchecked(child: Spawned) -> PhpRun {
    let label = child.label.clone();
    let out = child.wait(PHP_TIMEOUT);
    println!("  {label}: exited {} in {:?}", out.status, out.elapsed);
    PhpRun::parse(&label, &out.stdout, &out.stderr, out.status)
}

impl PhpRun {
    fn parse(label: &str, stdout: &str, stderr: &str, status: ExitStatus) -> PhpRun {
        let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
        let warnings = lines
            .iter()
            .filter_map(|l| l.strip_prefix("warning "))
            .map(|h| String::from_utf8_lossy(&unhex(h)).into_owned())
            .collect();
        PhpRun {
            label: label.to_string(),
            lines,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            warnings,
            status,
        }
    }

    /// Fields of the `n`-th line starting with `tag ` (0-based).
    pub fn nth(&self, tag: &str, n: usize) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')))
            .nth(n)
            .unwrap_or_else(|| panic!("{}: no `{tag}` line #{n} in:\n{}", self.label, self.stdout))
            .split(' ')
            .collect()
    }

    /// The session id the `n`-th `session_start()` of this process ended up with, asserting
    /// the start succeeded.
    pub fn started(&self, n: usize) -> String {
        let f = self.nth("started", n);
        assert_eq!(
            f[0], "1",
            "{}: session_start() returned false:\n{}",
            self.label, self.stdout
        );
        f[1].to_string()
    }

    /// The variables read by the `n`-th `session_start()` of this process.
    pub fn vars(&self, n: usize) -> BTreeMap<String, Vec<u8>> {
        let mut starts = 0;
        let mut vars = BTreeMap::new();
        let mut inside = false;
        for line in &self.lines {
            if line.starts_with("started ") {
                inside = starts == n;
                starts += 1;
            } else if line == "vars-end" {
                if inside {
                    return vars;
                }
            } else if let Some(rest) = line.strip_prefix("var ").filter(|_| inside) {
                let (k, v) = rest.split_once(' ').expect("var line");
                vars.insert(k.to_string(), unhex(v));
            }
        }
        panic!("{}: no session_start #{n} in:\n{}", self.label, self.stdout);
    }

    pub fn time(&self, label: &str) -> f64 {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("time {label} ")))
            .unwrap_or_else(|| panic!("{}: no time {label}", self.label))
            .parse()
            .expect("time value")
    }
}

pub fn id(sid: &str) -> String {
    format!("id={sid}")
}

pub fn set(key: &str, value: &[u8]) -> String {
    format!("set:{key}={}", hex(value))
}

/// `$_SESSION[key] = (int) n`.
pub fn int(key: &str, n: i64) -> String {
    format!("int:{key}={n}")
}

pub fn steps(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn vars(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

/// Writes `vars` into session `sid` from one PHP process.
pub fn write_session(php: &Php, label: &str, sid: &str, vars: &[(&str, &[u8])]) {
    let mut s = vec![id(sid), "start".into()];
    s.extend(vars.iter().map(|(k, v)| set(k, v)));
    s.push("close".into());
    let run = php.run(label, &s);
    assert_eq!(run.started(0), sid, "{label}: PHP changed the session id");
}

/// Tries to write session `sid` with `php`, whose credentials the server must refuse, and
/// asserts PHP failed to read the session (what a refused login looks like from PHP).
pub fn assert_login_refused(php: &Php, label: &str, sid: &str) {
    let run = php.run_unchecked(
        label,
        &[id(sid), "start".into(), set("x", b"1"), "close".into()],
    );
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("Failed to read session data")),
        "{label}: PHP did not fail to read the session; warnings {:?}\n{}\n{}",
        run.warnings,
        run.stdout,
        run.stderr
    );
}

/// Reads session `sid` in a fresh PHP process without changing it.
pub fn read_session(php: &Php, label: &str, sid: &str) -> BTreeMap<String, Vec<u8>> {
    let run = php.run(label, &[id(sid), "start".into(), "close".into()]);
    assert_eq!(run.started(0), sid, "{label}: PHP changed the session id");
    run.vars(0)
}
