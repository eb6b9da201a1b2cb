//! Starting and stopping the servers under comparison.
//!
//! Each server is a child process on a free loopback port with its own throwaway data
//! directory, and is stopped by its own pid (SIGTERM, then SIGKILL after a grace period)
//! when its [`Running`] handle is dropped, so an aborted compare leaves nothing behind.
//! sessiond and the ceiling print their bound address (`listening … <addr>`), so they bind
//! port 0 themselves; memcached and Redis get a port found by binding `127.0.0.1:0` first,
//! and a start that loses that race is retried on another port.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Which server to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// sessiond, with extra arguments (the journal hook puts its flag here).
    Sessiond {
        /// Extra command-line arguments.
        args: Vec<String>,
    },
    /// Debian memcached, `-t 2`.
    Memcached,
    /// Debian redis-server without persistence.
    Redis,
    /// Debian redis-server with AOF, `appendfsync everysec`.
    RedisAof,
    /// The do-nothing ceiling (`sessiond-load ceiling`).
    Ceiling,
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The sessiond binary.
    pub sessiond: PathBuf,
    /// The `sessiond-load` binary (for the ceiling).
    pub loadgen: PathBuf,
    /// memcached.
    pub memcached: PathBuf,
    /// redis-server.
    pub redis_server: PathBuf,
}

/// A program on `PATH`, or an error naming the Debian package that provides it.
pub fn find_program(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` is not on PATH: install the Debian package `{package}`"))
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory (removed on drop).
    dir: PathBuf,
}

impl Running {
    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server has exited, and how, plus the end of its log: for error messages
    /// when a run fails.
    pub fn post_mortem(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(Some(status)) => format!("the server exited ({status})"),
            Ok(None) => "the server is still running".to_string(),
            Err(e) => format!("server state unknown ({e})"),
        };
        let log = std::fs::read(self.dir.join("server.log")).unwrap_or_default();
        let tail = String::from_utf8_lossy(&log[log.len().saturating_sub(2000)..]).into_owned();
        format!("{state}; its log ends with:\n{tail}")
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited within the grace period.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            // A pid we spawned and have not yet reaped, so it cannot have been reused.
            let pid = rustix::process::Pid::from_child(&self.child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while self.child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts `kind`. `scratch` is the parent of the throwaway data directories; `value_size` is
/// the ceiling's canned value size.
pub fn start(
    kind: &Kind,
    programs: &Programs,
    scratch: &Path,
    value_size: usize,
) -> anyhow::Result<Running> {
    let mut last_error = None;
    for attempt in 0..3 {
        let dir = scratch.join(format!("srv-{}-{attempt}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        match start_once(kind, programs, &dir, value_size) {
            Ok((child, addr)) => return Ok(Running { child, addr, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                last_error = Some(e);
            }
        }
    }
    Err(last_error.expect("at least one attempt"))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn start_once(
    kind: &Kind,
    programs: &Programs,
    dir: &Path,
    value_size: usize,
) -> anyhow::Result<(Child, SocketAddr)> {
    let log = std::fs::File::create(dir.join("server.log"))?;
    match kind {
        Kind::Sessiond { args } => {
            let mut cmd = Command::new(&programs.sessiond);
            cmd.args([
                "--memcache-listen",
                "127.0.0.1:0",
                "--log",
                "warn",
                "--max-memory",
                "16g",
                "--data-dir",
            ])
            .arg(dir)
            .args(args)
            // The other listeners on free ports or off, never their fixed defaults (6379,
            // 8080), which another server may hold. Through the environment rather than
            // flags, so that a build from before a listener existed still starts (A/B runs
            // against older binaries): an unknown variable is ignored, an unknown flag not.
            .env("SESSIOND_RESP_LISTEN", "127.0.0.1:0")
            .env("SESSIOND_HTTP_LISTEN", "off");
            spawn_and_read_addr(cmd, log, "listening memcache ")
        }
        Kind::Ceiling => {
            let mut cmd = Command::new(&programs.loadgen);
            cmd.args([
                "ceiling",
                "--listen",
                "127.0.0.1:0",
                "--value-size",
                &value_size.to_string(),
            ]);
            spawn_and_read_addr(cmd, log, "listening ")
        }
        Kind::Memcached => {
            let port = free_port()?;
            let mut cmd = Command::new(&programs.memcached);
            // -U 0: no UDP. -m: room for a 10-second login storm without evicting.
            // -c: more connections than any run opens.
            cmd.args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-t",
                "2",
                "-m",
                "16384",
                "-c",
                "4096",
            ]);
            if is_root() {
                cmd.args(["-u", "root"]);
            }
            spawn_and_connect(cmd, log, port)
        }
        Kind::Redis | Kind::RedisAof => {
            let port = free_port()?;
            let mut cmd = Command::new(&programs.redis_server);
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(dir);
            if *kind == Kind::RedisAof {
                cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"]);
            } else {
                cmd.args(["--appendonly", "no"]);
            }
            spawn_and_connect(cmd, log, port)
        }
    }
}

fn is_root() -> bool {
    // Owner of /proc/self is the effective uid; avoids a libc call.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Spawns `cmd` and waits for the stdout line starting with `prefix`, which ends in the
/// bound address, and then for `ready` (sessiond prints it once it accepts connections).
fn spawn_and_read_addr(
    mut cmd: Command,
    log: std::fs::File,
    prefix: &str,
) -> anyhow::Result<(Child, SocketAddr)> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut addr = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    addr = Some(
                        rest.trim()
                            .rsplit(' ')
                            .next()
                            .unwrap_or_default()
                            .parse::<SocketAddr>()?,
                    );
                } else if line.trim() == "ready" {
                    if let Some(addr) = addr {
                        return Ok((child, addr));
                    }
                    let _ = child.kill();
                    bail!("{program} said ready without printing `{prefix}<addr>`");
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{program} did not print `ready` within {STARTUP_TIMEOUT:?}");
            }
        }
    }
}

/// Spawns `cmd` and waits until `port` accepts a connection (or the process exits).
fn spawn_and_connect(
    mut cmd: Command,
    log: std::fs::File,
    port: u16,
) -> anyhow::Result<(Child, SocketAddr)> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{program} exited at start ({status}); the port may have been taken");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok((child, addr));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{program} did not accept connections within {STARTUP_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
