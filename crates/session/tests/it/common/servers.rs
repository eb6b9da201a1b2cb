//! The servers only this suite starts, on top of the workspace's test harness
//! (`sessiond-test-harness`, which provides memcached, redis-server and sessiond themselves):
//! sessiond configured as the stores' tests want it, a one-node Redis Cluster, PostgreSQL and
//! MariaDB. Each runs on a free loopback port with a throwaway data directory and is stopped
//! by pid when its handle drops.
//!
//! A missing program fails the test with the Debian package to install; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sessiond_test_harness::process::{SIGINT, SIGKILL, SIGTERM, signal, wait_exit, wait_listening};
use sessiond_test_harness::{RedisServer, Resp, RespClient, Sessiond, free_port, is_root};

fn require(path: &Path, package: &str) {
    assert!(
        path.exists(),
        "{} not found: install Debian's `{package}` package (apt-get install {package}); \
         scripts/test.sh does",
        path.display()
    );
}

/// sessiond with only its memcached listener (on a free port), as the memcached ring's
/// nodes. The RESP listener is turned off: it would default to 6379, which two instances
/// cannot share. No fsync and two threads: the store tests measure no durability.
pub fn sessiond_memcached() -> Sessiond {
    Sessiond::start(&["--fsync", "no", "--threads", "2", "--resp-listen", "off"])
}

/// sessiond with only its RESP listener (on a free port), for the RESP store.
pub fn sessiond_resp() -> Sessiond {
    Sessiond::start(&[
        "--memcache-listen",
        "off",
        "--fsync",
        "no",
        "--threads",
        "2",
    ])
}

/// sessiond with both listeners (on free ports) and its session layer, as a farm of PHP and
/// Rust apps shares it: sessions written over memcached, lifecycle events and admin commands
/// over RESP.
pub fn sessiond_memcached_and_resp() -> Sessiond {
    Sessiond::start(&["--fsync", "no", "--threads", "2"])
}

/// The `redis://` URL of a sessiond's RESP listener.
pub fn sessiond_resp_url(server: &Sessiond) -> String {
    let addr = server
        .listener("resp")
        .expect("sessiond printed no `listening resp <addr>`");
    format!("redis://{addr}/")
}

/// A one-node Redis Cluster owning all 16384 slots. One node is enough to exercise the
/// cluster client (slot discovery, routing) and the server's same-slot rule for scripts and
/// multi-key commands, which a cluster enforces even on a single node.
pub fn redis_cluster() -> RedisServer {
    let server = RedisServer::start(&["--cluster-enabled", "yes"]);
    let mut client = RespClient::connect(server.addr());
    client.ok(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = client.call(&["CLUSTER", "INFO"]);
        if matches!(&info.value, Resp::Bulk(text) if String::from_utf8_lossy(text).contains("cluster_state:ok"))
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "cluster did not become ready: {info}"
        );
        std::thread::sleep(Duration::from_millis(20));
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
            match wait_listening(&mut child, port, "postgres", Duration::from_secs(30)) {
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
            signal(pid, SIGINT); // fast shutdown
        }
        if wait_exit(child, Duration::from_secs(10)).is_none() {
            if let Some(pid) = pid {
                signal(pid, SIGKILL);
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
            match wait_listening(&mut child, port, "mariadbd", Duration::from_secs(60)) {
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
        signal(self.child.id(), SIGTERM);
        if wait_exit(&mut self.child, Duration::from_secs(20)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
