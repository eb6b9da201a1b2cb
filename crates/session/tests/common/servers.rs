//! Real servers for the store tests, each started on a free loopback port with a throwaway
//! data directory and stopped by pid when its handle drops: memcached, sessiond (the binary
//! built by `scripts/test.sh`), PostgreSQL and MariaDB.
//!
//! A missing program fails the test with the Debian package to install; nothing is skipped.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now. Another process can take it before the server binds
/// it; the starters below retry with a new port when a server exits early.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

fn require(path: &Path, package: &str) {
    assert!(
        path.exists(),
        "{} not found: install Debian's `{package}` package (apt-get install {package}); \
         scripts/test.sh does",
        path.display()
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Sends `signal` to `pid` (std can only SIGKILL its own children).
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_port(child: &mut Child, port: u16, what: &str, timeout: Duration) -> Result<(), String> {
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

/// One memcached-protocol command over a fresh connection; returns what arrives until the
/// reply looks complete (a line, or a `VALUE` block up to `END`).
pub fn memcached_command(port: u16, line: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if (text.starts_with("VALUE") && text.ends_with("END\r\n"))
            || (!text.starts_with("VALUE") && text.ends_with("\r\n"))
        {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A memcached server.
pub struct Memcached {
    child: Child,
    pub port: u16,
}

impl Memcached {
    pub fn start() -> Self {
        let binary = PathBuf::from("/usr/bin/memcached");
        require(&binary, "memcached");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&binary);
            cmd.args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-m",
                "64",
                "-t",
                "2",
            ]);
            if is_root() {
                cmd.args(["-u", "root"]);
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn memcached");
            match wait_port(&mut child, port, "memcached", Duration::from_secs(10)) {
                Ok(()) => return Memcached { child, port },
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        panic!("could not start memcached: {last}");
    }

    /// Stops the server now (to test failover).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// sessiond with its memcached listener on a free port and a temp data directory.
pub struct Sessiond {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// `target/<profile>/sessiond`, built by `scripts/test.sh` before `cargo test`.
pub fn sessiond_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SESSIOND_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug").join("sessiond")
}

/// Whether this sessiond build has a RESP listener (it listens on 6379 by default, which two
/// test instances cannot share, so the memcached-only instances turn it off).
pub fn sessiond_has_resp(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--resp-listen"))
        .unwrap_or(false)
}

impl Sessiond {
    pub fn start() -> Self {
        let binary = sessiond_binary();
        assert!(
            binary.exists(),
            "{} not found: build the server first (`cargo build -p sessiond`; scripts/test.sh \
             does it before `cargo test`), or set SESSIOND_BIN",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--memcache-listen",
            "127.0.0.1:0",
            "--fsync",
            "no",
            "--threads",
            "2",
        ]);
        if sessiond_has_resp(&binary) {
            cmd.args(["--resp-listen", "off"]);
        }
        let mut child = cmd
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sessiond");
        let stdout = child.stdout.take().unwrap();
        let mut port = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening memcache ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            }
            if line == "ready" {
                break;
            }
        }
        let Some(port) = port else {
            let _ = child.kill();
            panic!("sessiond did not print its memcache address");
        };
        Sessiond {
            child,
            port,
            _dir: dir,
        }
    }
}

/// sessiond with its RESP listener, for the RESP store. Needs a sessiond that has
/// `--resp-listen` and prints `listening resp <addr>`.
pub struct SessiondResp {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl SessiondResp {
    pub fn start() -> Self {
        let binary = sessiond_binary();
        assert!(
            binary.exists(),
            "{} not found: build the server first (`cargo build -p sessiond`; scripts/test.sh \
             does it before `cargo test`), or set SESSIOND_BIN",
            binary.display()
        );
        assert!(
            sessiond_has_resp(&binary),
            "{} has no --resp-listen: rebuild it from a tree with the RESP listener",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(&binary)
            .args(["--memcache-listen", "off", "--resp-listen", "127.0.0.1:0"])
            .args(["--fsync", "no", "--threads", "2"])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sessiond");
        let stdout = child.stdout.take().unwrap();
        let mut port = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening resp ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            }
            if line == "ready" {
                break;
            }
        }
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sessiond did not print a RESP address (`listening resp <addr>`)");
        };
        SessiondResp {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for SessiondResp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sessiond {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster in a temp directory, run as the `postgres` user when we are root
/// (the server refuses to run as root).
pub struct Postgres {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn postgres_bin(name: &str) -> PathBuf {
    // Debian keeps the server binaries out of PATH, under the major version.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .last()
        .map(|v| v.join("bin").join(name))
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin").join(name))
}

/// Runs `program` as `user` via `runuser` when we are root, else as ourselves.
fn command_as(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", user, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub fn start() -> Self {
        let initdb = postgres_bin("initdb");
        let postgres = postgres_bin("postgres");
        require(&initdb, "postgresql");
        require(&postgres, "postgresql");
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        if is_root() {
            // The temp dir itself must be reachable by the postgres user.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(tmp.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown the PostgreSQL data dir to postgres"
            );
        }
        let out = command_as("postgres", &initdb)
            .args(["-D"])
            .arg(&dir)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = command_as("postgres", &postgres)
                .arg("-D")
                .arg(&dir)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn postgres");
            match wait_port(&mut child, port, "postgres", Duration::from_secs(30)) {
                Ok(()) => {
                    return Postgres {
                        child,
                        port,
                        dir,
                        _tmp: tmp,
                    };
                }
                Err(e) => {
                    last = e;
                    Self::stop_child(&mut child, &dir);
                }
            }
        }
        panic!("could not start postgres: {last}");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn stop_child(child: &mut Child, dir: &Path) {
        // The child may be `runuser`; the postmaster's own pid is in postmaster.pid.
        let pid = std::fs::read_to_string(dir.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        if let Some(pid) = pid {
            signal(pid, "INT"); // fast shutdown
        }
        if !wait_exit(child, Duration::from_secs(10)) {
            if let Some(pid) = pid {
                signal(pid, "KILL");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        Self::stop_child(&mut self.child, &self.dir);
    }
}

/// A MariaDB server in a temp directory, without grant tables (any user, no password).
pub struct MariaDb {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl MariaDb {
    pub fn start() -> Self {
        let install = PathBuf::from("/usr/bin/mariadb-install-db");
        let server = PathBuf::from("/usr/sbin/mariadbd");
        require(&install, "mariadb-server");
        require(&server, "mariadb-server");
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let user = if is_root() {
            "root".to_owned()
        } else {
            whoami()
        };
        let out = Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--skip-test-db", "--auth-root-authentication-method=normal"])
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&server)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.path().join("sock").display()))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg(format!("--user={user}"))
                .args([&format!("--port={port}"), "--bind-address=127.0.0.1"])
                .args([
                    "--skip-grant-tables",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                ])
                .args([
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-flush-log-at-trx-commit=2",
                ])
                .args(["--innodb-doublewrite=0", "--max-connections=200"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn mariadbd");
            match wait_port(&mut child, port, "mariadbd", Duration::from_secs(60)) {
                Ok(()) => {
                    return MariaDb {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                Err(e) => {
                    last = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("could not start mariadbd: {last}");
    }

    /// The server's URL without a database (to create one).
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }
}

fn whoami() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        signal(self.child.id(), "TERM");
        if !wait_exit(&mut self.child, Duration::from_secs(20)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
