//! Child processes: finding a program (or failing with the Debian package that provides
//! it), signalling and stopping a child by its own pid, waiting for a server's port, starting
//! a server that cannot report the port it chose, and running an external program with
//! captured output and a timeout ([`Spawned`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::scratch::free_port;

/// The signals the harness sends.
pub use rustix::process::Signal;
/// Interrupt: PostgreSQL's fast shutdown.
pub const SIGINT: Signal = Signal::INT;
/// Kill, when a server ignored the polite signals.
pub const SIGKILL: Signal = Signal::KILL;
/// Terminate: a graceful stop.
pub const SIGTERM: Signal = Signal::TERM;

/// How long a server gets to be ready (print `ready`, or accept a connection). Generous
/// because the machine is shared with compilers; a healthy start takes milliseconds.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server gets to exit after SIGTERM before it is SIGKILLed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `sig` to `pid`. For processes that are not our direct children (a PostgreSQL
/// postmaster started through `runuser`) or that need another signal than std's SIGKILL.
/// Callers pass the pid of a process they started and have not reaped, so it cannot have
/// been reused; a process already gone is not an error.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether the tests run as root (memcached, PostgreSQL and MariaDB then need a user).
pub fn is_root() -> bool {
    rustix::process::getuid().is_root()
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

/// The last `max` bytes of a file, for failure messages (server logs can be long).
pub fn tail_of_file(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Waits up to `timeout` for `child` to exit; its status, or `None` if it is still running.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGTERM to `child` by pid, waits up to [`SHUTDOWN_TIMEOUT`], then SIGKILLs it.
/// Returns the exit status and whether SIGKILL was needed.
pub fn terminate(child: &mut Child) -> (ExitStatus, bool) {
    if let Ok(Some(status)) = child.try_wait() {
        return (status, false);
    }
    // try_wait above returned None: the child is not reaped, so its pid is still ours.
    signal(child.id(), SIGTERM);
    if let Some(status) = wait_exit(child, SHUTDOWN_TIMEOUT) {
        return (status, false);
    }
    let _ = child.kill();
    (child.wait().expect("waiting for killed child"), true)
}

/// Waits until something accepts connections on `127.0.0.1:port`, failing early if `child`
/// exits. For servers whose only readiness signal is a listening socket.
pub fn wait_listening(
    child: &mut Child,
    port: u16,
    what: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited: {status}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!("{what} did not listen on {port} in {timeout:?}"))
}

/// Starts a server that cannot report a port it chose itself (memcached, redis-server): picks
/// a free loopback port, spawns `command(port)` with its output going to `log`, and polls
/// `ready(addr)` until it returns what the server answered. Another process may take the
/// port between the probe and the server's bind, so a server that exits at startup is
/// retried on a new port, five times; one that stays up but never answers within
/// [`STARTUP_TIMEOUT`] fails the test with its log.
pub fn start_on_free_port(
    name: &str,
    log: &Path,
    mut command: impl FnMut(u16) -> Command,
    mut ready: impl FnMut(SocketAddr) -> Option<String>,
) -> (Child, SocketAddr) {
    for _attempt in 0..5 {
        let port = free_port();
        let mut cmd = command(port);
        let log_file = File::create(log).unwrap_or_else(|e| panic!("creating {name} log: {e}"));
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
                    "{name} on port {port} exited at startup ({status}): {}; retrying",
                    tail_of_file(log, 1000)
                );
                break;
            }
            // A well-formed answer shows the listener is a server of the right kind; it must
            // also be our child still alive (a stranger could own the port after all).
            let answer = ready(addr).filter(|_| matches!(child.try_wait(), Ok(None)));
            if let Some(answer) = answer {
                println!("started {name} pid {} on {addr} ({answer})", child.id());
                return (child, addr);
            }
            if Instant::now() > deadline {
                terminate(&mut child);
                panic!(
                    "{name} on {addr} not ready within {STARTUP_TIMEOUT:?}: {}",
                    tail_of_file(log, 1000)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    panic!("{name} failed to start on 5 different free ports");
}

/// A child process with captured output: stdout arrives line by line (so a test can react to
/// what a process printed while it still runs), stderr is collected whole. Killed (by pid) on
/// drop if still running.
pub struct Spawned {
    /// Names the process in failure messages.
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// When it was spawned.
    pub started: Instant,
}

/// What a finished process produced.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it printed on stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it printed on stderr (lossy UTF-8).
    pub stderr: String,
    /// From spawning to exit.
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

    /// Everything printed so far, for failure messages.
    fn printed(&self) -> String {
        format!(
            "stdout: {}; stderr: {}",
            String::from_utf8_lossy(&self.stdout.lock().unwrap()),
            String::from_utf8_lossy(&self.stderr.lock().unwrap()),
        )
    }

    /// Waits until the process prints a line equal to `wanted`; panics (with everything it
    /// printed) if it exits or `timeout` passes first.
    pub fn expect_line(&mut self, wanted: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.next_line(left, wanted) == wanted {
                return;
            }
        }
    }

    /// The next line the process prints; panics (with everything it printed, and
    /// `expected` to say what the test waited for) if it exits or `timeout` passes first.
    pub fn next_line(&mut self, timeout: Duration, expected: &str) -> String {
        self.lines.recv_timeout(timeout).unwrap_or_else(|e| {
            panic!(
                "{}: no line {expected:?} ({e:?}); {}",
                self.label,
                self.printed()
            )
        })
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
                    "{}: still running after {timeout:?}, killed; {}",
                    self.label,
                    self.printed()
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
