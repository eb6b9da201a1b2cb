//! sessiond under test: which server a test targets ([`Target`], from
//! `SESSIOND_IT_TARGET`), where the binary is ([`sessiond_binary`]), and a running
//! [`Sessiond`] on free loopback ports with a throwaway data directory, whose addresses are
//! read from what it prints, never guessed.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::process::{STARTUP_TIMEOUT, tail_of_file, terminate};
use crate::scratch::TempDir;

/// Which server the tests exercise. sessiond unless `SESSIOND_IT_TARGET` names a reference
/// server, which exists so the harness and its scenarios can be validated against the real
/// thing (during development, or to tell a harness bug from a server bug):
/// `memcached` for the memcached-protocol tests, `redis` for the RESP tests. A reference
/// server only replaces sessiond in the tests of its own protocol; the others keep running
/// against sessiond, so the switch never turns a test into a silent no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// sessiond itself (the default).
    Sessiond,
    /// The Debian memcached, for the memcached-protocol tests.
    Memcached,
    /// The Debian redis-server, for the RESP tests.
    Redis,
}

impl Target {
    /// The target `SESSIOND_IT_TARGET` names (`sessiond` when unset).
    pub fn from_env() -> Target {
        match std::env::var("SESSIOND_IT_TARGET").as_deref() {
            Err(_) | Ok("") | Ok("sessiond") => Target::Sessiond,
            Ok("memcached") => Target::Memcached,
            Ok("redis") => Target::Redis,
            Ok(other) => {
                panic!("SESSIOND_IT_TARGET={other:?}: expected `sessiond`, `memcached` or `redis`")
            }
        }
    }
}

/// The sessiond binary to test: `SESSIOND_BIN` if set, else the `sessiond` in the profile
/// directory of the running test executable (`target/<profile>/deps/<test>` →
/// `target/<profile>/sessiond`). Within the sessiond package that is the very file Cargo
/// builds for the test run (`CARGO_BIN_EXE_sessiond`); the other packages cannot depend on a
/// binary, so `scripts/test.sh` builds it first (`cargo build -p sessiond`). A library cannot
/// read `CARGO_BIN_EXE_sessiond` (Cargo sets it only when compiling the sessiond package's
/// own tests), hence the path relative to the test executable.
pub fn sessiond_binary() -> PathBuf {
    let bin = match std::env::var_os("SESSIOND_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("sessiond")))
            .unwrap_or_else(|| PathBuf::from("target/debug/sessiond")),
    };
    assert!(
        bin.is_file(),
        "sessiond binary {} is missing: build it with `cargo build -p sessiond` (same profile \
         as the tests), or point SESSIOND_BIN at one",
        bin.display()
    );
    bin
}

/// A running sessiond, started from the binary Cargo built for this test run.
pub struct Sessiond {
    child: Option<Child>,
    version: String,
    listeners: Vec<(String, SocketAddr)>,
    /// Every stdout line the server printed (startup lines, and later ones drained by a
    /// background thread so the server can never block on a full pipe).
    stdout: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
    _dir: TempDir,
}

impl Sessiond {
    /// Starts `sessiond` with memcache, RESP and HTTP listeners on free loopback ports (unless
    /// `extra_args` names its own `--memcache-listen` / `--resp-listen` / `--http-listen`) and a throwaway
    /// `--data-dir` (unless given), and waits for the `ready` line. Ports are taken from the
    /// `listening …` lines, never guessed.
    pub fn start(extra_args: &[&str]) -> Sessiond {
        let bin = sessiond_binary();
        let dir = TempDir::new("sessiond");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("creating data dir");
        let log = dir.path().join("sessiond.stderr");

        let mut cmd = Command::new(&bin);
        let given = |flag: &str| {
            extra_args
                .iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        if !given("--memcache-listen") {
            cmd.args(["--memcache-listen", "127.0.0.1:0"]);
        }
        // The RESP listener defaults to 6379; tests running side by side must not share it.
        if !given("--resp-listen") {
            cmd.args(["--resp-listen", "127.0.0.1:0"]);
        }
        // So does the HTTP listener's 8080.
        if !given("--http-listen") {
            cmd.args(["--http-listen", "127.0.0.1:0"]);
        }
        if !given("--data-dir") {
            cmd.arg("--data-dir").arg(&data_dir);
        }
        cmd.args(extra_args);
        // Plain log lines in failure messages, without terminal colour codes.
        cmd.env("NO_COLOR", "1");
        let shown = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&log).expect("creating log file")));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {shown}: {e}"));

        // A thread owns stdout for the life of the server: it forwards lines to us until
        // `ready` and keeps draining afterwards.
        let (tx, rx) = mpsc::channel::<String>();
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&stdout_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });

        let mut version = None;
        let mut listeners = Vec::new();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let fail = |child: &mut Child, why: String| -> ! {
            let (status, _) = terminate(child);
            panic!(
                "sessiond did not start ({why}); command: {shown}; exit: {status}; \
                 stdout so far: {:?}; stderr tail:\n{}",
                stdout_lines.lock().unwrap(),
                tail_of_file(&log, 4000)
            );
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => fail(
                    &mut child,
                    format!("no `ready` line within {STARTUP_TIMEOUT:?}"),
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    fail(&mut child, "stdout closed before `ready`".into())
                }
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ready"] => break,
                ["sessiond", v] if version.is_none() => version = Some(v.to_string()),
                ["listening", proto, addr] => match addr.parse::<SocketAddr>() {
                    Ok(a) => listeners.push((proto.to_string(), a)),
                    Err(e) => fail(&mut child, format!("bad address in {line:?}: {e}")),
                },
                // Tolerate anything else the server may print before `ready`; it stays
                // visible in failure messages through `stdout_lines`.
                _ => {}
            }
        }
        let Some(version) = version else {
            fail(
                &mut child,
                "no `sessiond <version>` line before `ready`".into(),
            )
        };
        let server = Sessiond {
            child: Some(child),
            version,
            listeners,
            stdout: stdout_lines,
            log,
            _dir: dir,
        };
        println!(
            "started sessiond {} pid {} listeners {:?} data dir {}",
            server.version,
            server.pid(),
            server.listeners,
            data_dir.display()
        );
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Address of the first listener of `proto` (`memcache`, `resp`, `http`).
    pub fn listener(&self, proto: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(p, _)| p == proto)
            .map(|&(_, a)| a)
    }

    pub fn memcache_addr(&self) -> SocketAddr {
        self.listener("memcache").unwrap_or_else(|| {
            panic!(
                "sessiond printed no `listening memcache` line; stdout: {:?}",
                self.stdout.lock().unwrap()
            )
        })
    }

    /// The tail of the server's stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        tail_of_file(&self.log, 4000)
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("sessiond already stopped");
        child.kill().expect("SIGKILL to sessiond");
        child.wait().expect("reaping sessiond");
    }

    /// Waits up to `timeout` for the server to exit by itself (`SHUTDOWN`), reaping it;
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("sessiond already stopped");
        let status = crate::process::wait_exit(child, timeout)?;
        self.child = None;
        Some(status)
    }

    /// Stops the server with SIGTERM (SIGKILL after a timeout) and returns its exit status
    /// and whether SIGKILL was needed.
    pub fn stop(&mut self) -> (ExitStatus, bool) {
        let mut child = self.child.take().expect("sessiond already stopped");
        terminate(&mut child)
    }
}

impl Drop for Sessiond {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let (status, killed) = terminate(&mut child);
            if killed {
                eprintln!(
                    "sessiond pid {} ignored SIGTERM; killed ({status})",
                    child.id()
                );
            }
        }
    }
}
