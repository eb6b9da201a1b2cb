//! Shared machinery for the real-client integration tests: starting and stopping servers
//! (sessiond itself and, as a reference, the Debian `memcached`), running external programs
//! with a timeout, and a minimal raw memcached text-protocol client for checking what a real
//! client left behind on the server.
//!
//! Every server listens on a free loopback port, gets a throwaway directory and is stopped by
//! its own pid (SIGTERM, then SIGKILL) when its handle is dropped. A missing external program
//! fails the test with the Debian package to install; nothing is silently skipped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// The two libc calls the harness needs. Declared directly instead of pulling in the `libc`
// crate: std already links libc, and these signatures are fixed by POSIX.
unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn getuid() -> u32;
}
const SIGTERM: i32 = 15;

/// How long a server gets to print `ready` (or, for memcached, to accept a connection).
/// Generous because the machine is shared with compilers; a healthy start takes milliseconds.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server gets to exit after SIGTERM before it is SIGKILLed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Socket read/write timeout of the raw client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Which server the tests exercise. sessiond unless `SESSIOND_IT_TARGET` names a reference
/// server, which exists so the harness and its scenarios can be validated against the real
/// thing (during development, or to tell a harness bug from a server bug):
/// `memcached` for the memcached-protocol tests, `redis` for the RESP tests. A reference
/// server only replaces sessiond in the tests of its own protocol; the others keep running
/// against sessiond, so the switch never turns a test into a silent no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Sessiond,
    Memcached,
    Redis,
}

impl Target {
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

/// Path of `program` on `PATH`, or a test failure naming the Debian package that provides it.
pub fn require_program(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "required program `{program}` is not on PATH: install the Debian package `{package}` \
         (scripts/test.sh installs it: apt-get install {package})"
    );
}

/// A fresh, uniquely named string of `[a-z0-9]`, usable in session ids and directory names.
/// Unique within the process (counter) and across runs (pid and clock), so concurrent tests
/// and leftover data from an earlier run can never collide.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}{}x{n}x{nanos:x}", std::process::id())
}

/// A directory under the system temp dir, removed (with its contents) on drop. Hand-rolled to
/// keep the test binary free of dev-dependencies.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("sessiond-it-{}", unique(tag)));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago. The caller must cope with losing the race
/// (another process may bind it before the server does); [`Memcached::start`] retries.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The last `max` bytes of a file, for failure messages (server logs can be long).
pub fn tail_of_file(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Sends SIGTERM to `child` by pid, waits up to [`SHUTDOWN_TIMEOUT`], then SIGKILLs it.
/// Returns the exit status and whether SIGKILL was needed.
pub fn terminate(child: &mut Child) -> (ExitStatus, bool) {
    if let Ok(Some(status)) = child.try_wait() {
        return (status, false);
    }
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, which
    // has not been reaped yet (try_wait above returned None), so it cannot have been reused.
    unsafe {
        kill(pid, SIGTERM);
    }
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return (status, false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    (child.wait().expect("waiting for killed child"), true)
}

/// The sessiond binary to test. Within the sessiond package Cargo builds it for the test run
/// and names it in `CARGO_BIN_EXE_sessiond`. Other packages that include this file (the
/// fred compatibility test in `crates/compat-fred`) cannot depend on a binary, so they take
/// `SESSIOND_BIN` or else the `sessiond` next to their own test executable's profile
/// directory (`target/<profile>/deps/<test>` → `target/<profile>/sessiond`), which
/// `scripts/test.sh` builds first.
pub fn sessiond_binary() -> PathBuf {
    let bin = match (
        std::env::var_os("SESSIOND_BIN"),
        option_env!("CARGO_BIN_EXE_sessiond"),
    ) {
        (Some(path), _) => PathBuf::from(path),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => std::env::current_exe()
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
    /// Starts `sessiond` with memcache and RESP listeners on free loopback ports (unless
    /// `extra_args` names its own `--memcache-listen` / `--resp-listen`) and a throwaway
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

/// A running Debian `memcached`, the reference implementation the scenarios are validated
/// against.
pub struct Memcached {
    child: Option<Child>,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Memcached {
    /// Starts `memcached -l 127.0.0.1 -p <free port> -U 0 -t 2` and waits until it accepts a
    /// connection. memcached cannot report a port it chose itself, so the harness picks one
    /// and retries with another if memcached exits (port taken in the meantime).
    pub fn start() -> Memcached {
        let bin = require_program("memcached", "memcached");
        let dir = TempDir::new("memcached");
        let log = dir.path().join("memcached.log");
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            // memcached refuses to run as root without -u.
            // SAFETY: getuid(2) cannot fail and has no preconditions.
            if unsafe { getuid() } == 0 {
                cmd.args(["-u", "root"]);
            }
            cmd.args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-t",
                "2",
            ]);
            let log_file = File::create(&log).expect("creating memcached log");
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(log_file.try_clone().expect("dup log")))
                .stderr(Stdio::from(log_file));
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!(
                        "memcached on port {port} exited at startup ({status}): {}; retrying",
                        tail_of_file(&log, 1000)
                    );
                    break;
                }
                // Connecting is the only readiness signal memcached offers. Confirm with a
                // `version` round trip that the listener really is our memcached and check
                // it is still alive (a stranger could own the port after all).
                if let Ok(mut client) = McClient::try_connect(addr) {
                    let answer = client.command_line("version");
                    if answer.starts_with("VERSION ") && matches!(child.try_wait(), Ok(None)) {
                        println!("started memcached pid {} on {addr} ({answer})", child.id());
                        return Memcached {
                            child: Some(child),
                            addr,
                            _dir: dir,
                        };
                    }
                }
                if Instant::now() > deadline {
                    terminate(&mut child);
                    panic!(
                        "memcached on {addr} not accepting connections within {STARTUP_TIMEOUT:?}: {}",
                        tail_of_file(&log, 1000)
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        panic!("memcached failed to start on 5 different free ports");
    }

    pub fn memcache_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// The server a memcached-protocol test runs against: sessiond, or memcached when
/// `SESSIOND_IT_TARGET=memcached`.
pub enum TestServer {
    Sessiond(Sessiond),
    Memcached(Memcached),
}

impl TestServer {
    /// Starts the server selected by [`Target::from_env`].
    pub fn start() -> TestServer {
        match Target::from_env() {
            Target::Sessiond | Target::Redis => TestServer::Sessiond(Sessiond::start(&[])),
            Target::Memcached => TestServer::Memcached(Memcached::start()),
        }
    }

    pub fn memcache_addr(&self) -> SocketAddr {
        match self {
            TestServer::Sessiond(s) => s.memcache_addr(),
            TestServer::Memcached(m) => m.memcache_addr(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            TestServer::Sessiond(_) => "sessiond",
            TestServer::Memcached(_) => "memcached",
        }
    }

    /// Server-side diagnostics for a failure message (sessiond's stderr tail).
    pub fn diagnostics(&self) -> String {
        match self {
            TestServer::Sessiond(s) => format!("sessiond stderr tail:\n{}", s.log_tail()),
            TestServer::Memcached(_) => String::new(),
        }
    }
}

/// A child process with captured output: stdout arrives line by line (so a test can react to
/// what a process printed while it still runs), stderr is collected whole. Killed (by pid) on
/// drop if still running.
pub struct Spawned {
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    pub started: Instant,
}

/// What a finished process produced.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Spawned {
    /// Spawns `cmd` with piped stdin, stdout and stderr.
    pub fn spawn(label: &str, cmd: &mut Command) -> Spawned {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: spawning {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut out_pipe = BufReader::new(child.stdout.take().expect("piped stdout"));
        let out_sink = Arc::clone(&stdout);
        let out_reader = std::thread::spawn(move || {
            let mut line = Vec::new();
            loop {
                line.clear();
                match out_pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        out_sink.lock().unwrap().extend_from_slice(&line);
                        let text = String::from_utf8_lossy(&line);
                        let _ = tx.send(text.trim_end_matches(['\r', '\n']).to_string());
                    }
                }
            }
        });
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let err_sink = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                err_sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Spawned {
            label: label.to_string(),
            child,
            stdin,
            lines,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            started,
        }
    }

    /// Waits until the process prints a line equal to `wanted`; panics (with everything it
    /// printed) if it exits or `timeout` passes first.
    pub fn expect_line(&mut self, wanted: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == wanted => return,
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: no line {wanted:?} ({e:?}); stdout: {}; stderr: {}",
                    self.label,
                    String::from_utf8_lossy(&self.stdout.lock().unwrap()),
                    String::from_utf8_lossy(&self.stderr.lock().unwrap()),
                ),
            }
        }
    }

    /// Writes `text` to the process's stdin.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: writing stdin: {e}", self.label));
    }

    /// Waits for the process to exit, killing it (by pid) and failing the test if it takes
    /// longer than `timeout`.
    pub fn wait(self, timeout: Duration) -> Finished {
        self.wait_at_most(timeout)
            .unwrap_or_else(|overdue| panic!("{overdue}"))
    }

    /// Waits for the process to exit; if it takes longer than `timeout`, kills it (by pid)
    /// and returns what it printed, as an error.
    pub fn wait_at_most(mut self, timeout: Duration) -> Result<Finished, String> {
        // Closing stdin lets a process that reads it to the end finish.
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "{}: still running after {timeout:?}, killed; stdout: {}; stderr: {}",
                    self.label,
                    String::from_utf8_lossy(&self.stdout.lock().unwrap()),
                    String::from_utf8_lossy(&self.stderr.lock().unwrap()),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = self.started.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(Finished {
            status,
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned(),
            elapsed,
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion with captured output, failing the test if it runs longer than
/// `timeout` (the process is then killed by pid).
pub fn run_with_timeout(label: &str, cmd: &mut Command, timeout: Duration) -> Finished {
    Spawned::spawn(label, cmd).wait(timeout)
}

/// One item as returned by a text-protocol `get`/`gets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub flags: u32,
    pub value: Vec<u8>,
    pub cas: Option<u64>,
}

/// A deliberately small memcached text-protocol client over a blocking `TcpStream`, used to
/// inspect the server independently of the client under test. Any protocol surprise panics
/// with the offending bytes.
pub struct McClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl McClient {
    pub fn connect(addr: SocketAddr) -> McClient {
        McClient::try_connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<McClient> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(McClient {
            addr,
            reader: BufReader::new(stream),
        })
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.addr));
    }

    /// Reads one `\r\n`-terminated line, without the terminator.
    fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .unwrap_or_else(|e| panic!("reading from {}: {e}", self.addr));
        assert!(
            line.ends_with(b"\r\n"),
            "{}: reply line not terminated by \\r\\n: {:?}",
            self.addr,
            String::from_utf8_lossy(&line)
        );
        line.truncate(line.len() - 2);
        String::from_utf8(line).unwrap_or_else(|e| panic!("non-UTF-8 reply line: {e}"))
    }

    /// Sends one command line and returns the one-line reply.
    pub fn command_line(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_line()
    }

    fn retrieve(&mut self, verb: &str, key: &str) -> Option<Item> {
        self.send(format!("{verb} {key}\r\n").as_bytes());
        let header = self.read_line();
        if header == "END" {
            return None;
        }
        let words: Vec<&str> = header.split(' ').collect();
        let (flags, len, cas) = match words.as_slice() {
            ["VALUE", k, flags, len] if *k == key => (*flags, *len, None),
            ["VALUE", k, flags, len, cas] if *k == key => (*flags, *len, Some(*cas)),
            _ => panic!("{verb} {key}: unexpected reply {header:?}"),
        };
        let len: usize = len.parse().expect("VALUE length");
        let mut value = vec![0; len + 2];
        self.reader
            .read_exact(&mut value)
            .unwrap_or_else(|e| panic!("{verb} {key}: reading {len}-byte value: {e}"));
        assert_eq!(
            &value[len..],
            b"\r\n",
            "{verb} {key}: data block not terminated"
        );
        value.truncate(len);
        let end = self.read_line();
        assert_eq!(end, "END", "{verb} {key}: expected END after the value");
        Some(Item {
            flags: flags.parse().expect("VALUE flags"),
            value,
            cas: cas.map(|c| c.parse().expect("VALUE cas")),
        })
    }

    pub fn get(&mut self, key: &str) -> Option<Item> {
        self.retrieve("get", key)
    }

    pub fn gets(&mut self, key: &str) -> Option<Item> {
        self.retrieve("gets", key)
    }

    /// The general-purpose `stats` group as a name → value map.
    pub fn stats(&mut self) -> BTreeMap<String, String> {
        self.send(b"stats\r\n");
        let mut stats = BTreeMap::new();
        loop {
            let line = self.read_line();
            if line == "END" {
                return stats;
            }
            let mut words = line.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("STAT"), Some(name), Some(value)) => {
                    stats.insert(name.to_string(), value.to_string());
                }
                _ => panic!("stats: unexpected line {line:?}"),
            }
        }
    }
}

/// The remaining TTL of `key` in seconds via the meta command `mg <key> t` (`Ok(Some(-1))` =
/// never expires, `Ok(None)` = miss). Meta commands are optional for sessiond, so anything
/// else (`ERROR`, a closed connection) comes back as `Err(what happened)` for the caller to
/// report. Uses a connection of its own, so a server that hangs up on an unknown command
/// cannot disturb the caller's other connections.
pub fn meta_ttl(addr: SocketAddr, key: &str) -> Result<Option<i64>, String> {
    let mut client = McClient::try_connect(addr).map_err(|e| format!("connect: {e}"))?;
    client.send(format!("mg {key} t\r\n").as_bytes());
    let mut reply = Vec::new();
    match client.reader.read_until(b'\n', &mut reply) {
        Ok(0) => return Err("connection closed".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    let reply = String::from_utf8_lossy(&reply).trim_end().to_string();
    if reply == "EN" {
        return Ok(None);
    }
    reply
        .strip_prefix("HD ")
        .and_then(|flags| flags.split(' ').find_map(|f| f.strip_prefix('t')))
        .and_then(|t| t.parse().ok())
        .map(Some)
        .ok_or(reply)
}

/// Looks up a counter that memcached and sessiond may spell differently (e.g. memcached's
/// `cmd_touch`); fails with the full stats map if none of `names` is present.
pub fn counter(stats: &BTreeMap<String, String>, names: &[&str]) -> u64 {
    for name in names {
        if let Some(v) = stats.get(*name) {
            return v
                .parse()
                .unwrap_or_else(|e| panic!("stat {name}={v:?} is not a counter: {e}"));
        }
    }
    panic!("none of the stats {names:?} is reported; stats were: {stats:?}");
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Inverse of [`hex`]; panics on malformed input (it only ever decodes our PHP script's
/// output).
pub fn unhex(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 2, 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}
