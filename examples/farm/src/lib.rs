//! The farm: the deployment sessiond exists for, started on one machine. Three PHP nodes
//! (each its own nginx and its own php-fpm master, running `php/index.php` with
//! `session.save_handler = memcached`), an optional Rust node, and one nginx load balancer in
//! front with two doors, round-robin and sticky (`hash $cookie_PHPSESSID consistent`), plus a
//! third that reaches the Rust node only when there is one. The sessions live in sessiond (one
//! node, or two in php-memcached's ring with a replica), or, for the benchmark's comparisons,
//! in memcached, in Redis through phpredis, or in sessiond's RESP port through phpredis.
//!
//! [`Farm::start`] renders the templates in `conf/` into a throwaway directory, starts every
//! process on free loopback ports, waits for each to listen and stops them all by pid when
//! dropped. It is what the `sessiond-farm` launcher runs and what the scenario test
//! (`tests/farm.rs`) drives; [`client`] is the curl-based HTTP client of both the test and
//! the benchmark's checks. It does not build anything: sessiond comes from the workspace's
//! target directory (as in every test) and the Rust node's binary is passed in.

pub mod client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sessiond_test_harness::process::{STARTUP_TIMEOUT, wait_listening};
use sessiond_test_harness::{
    Memcached, RedisServer, Sessiond, TempDir, free_port, is_root, require_program, tail_of_file,
    terminate,
};

/// Where the PHP nodes keep their sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// sessiond, through php-memcached (binary protocol, consistent hashing).
    Sessiond,
    /// The Debian memcached, through php-memcached with the same settings (benchmark only).
    Memcached,
    /// The Debian redis-server, through phpredis (benchmark only).
    Redis,
    /// sessiond's RESP listener, through phpredis with the Redis farm's settings (benchmark
    /// only: the like-for-like comparison with [`Store::Redis`], only the server differs).
    SessiondResp,
}

impl Store {
    /// `sessiond`, `memcached`, `redis` or `sessiond-resp`.
    pub fn parse(name: &str) -> Option<Store> {
        match name {
            "sessiond" => Some(Store::Sessiond),
            "memcached" => Some(Store::Memcached),
            "redis" => Some(Store::Redis),
            "sessiond-resp" => Some(Store::SessiondResp),
            _ => None,
        }
    }

    /// Whether the PHP nodes keep their sessions through php-memcached, in the key, format
    /// and lock the Rust node shares. Through phpredis they are in another shape
    /// (`PHPREDIS_SESSION:<id>`, phpredis's lock), which the Rust node does not speak.
    pub fn is_php_memcached(self) -> bool {
        matches!(self, Store::Sessiond | Store::Memcached)
    }

    /// Whether the store is sessiond (on either of its ports).
    pub fn is_sessiond(self) -> bool {
        matches!(self, Store::Sessiond | Store::SessiondResp)
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct FarmConfig {
    pub store: Store,
    /// How many sessiond nodes (1, or 2 for php-memcached's ring with one replica).
    pub sessiond_nodes: usize,
    /// The Rust node's binary (`sessiond-farm-node`); `None` runs the PHP nodes only.
    pub rust_node: Option<PathBuf>,
    /// Extra arguments for every sessiond node.
    pub sessiond_args: Vec<String>,
    /// PHP's `session.use_strict_mode` (on by default). php-memcached checks an id with an
    /// `exist` on the session's primary server only, so with two sessiond nodes and one of
    /// them down, strict mode logs out that node's users (docs/farm.md, "Two sessiond").
    pub strict_mode: bool,
}

impl Default for FarmConfig {
    fn default() -> FarmConfig {
        FarmConfig {
            store: Store::Sessiond,
            sessiond_nodes: 1,
            rust_node: None,
            sessiond_args: Vec::new(),
            strict_mode: true,
        }
    }
}

/// The PHP nodes' names, in upstream order.
pub const PHP_NODES: [&str; 3] = ["php1", "php2", "php3"];
/// The Rust node's name.
pub const RUST_NODE: &str = "rust";

/// One sessiond of the farm: its data directory outlives the process, so a restart (after a
/// `kill -9`) recovers from the journal on the same ports.
struct SessiondNode {
    server: Option<Sessiond>,
    data_dir: PathBuf,
    memcache: SocketAddr,
    resp: SocketAddr,
    http: SocketAddr,
}

/// A PHP node: nginx on `http_port` passing to php-fpm on `fpm_port`.
struct PhpNode {
    name: &'static str,
    http_port: u16,
    fpm_port: u16,
    fpm: Option<Child>,
    nginx: Option<Child>,
}

/// The running farm. Dropping it stops every process by pid.
pub struct Farm {
    dir: TempDir,
    config: FarmConfig,
    sessionds: Vec<SessiondNode>,
    _memcached: Option<Memcached>,
    _redis: Option<RedisServer>,
    php: Vec<PhpNode>,
    rust_port: u16,
    rust: Option<Child>,
    lb: Option<Child>,
    round_robin_port: u16,
    sticky_port: u16,
    /// The door to the Rust node alone (0 without a Rust node).
    rust_only_port: u16,
    store_addrs: Vec<SocketAddr>,
}

/// The templates and the app, read from the source tree: the launcher and the test both run
/// from the workspace.
fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `{{NAME}}` → value, for every pair; a placeholder left over is a bug in the farm.
fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(example_dir().join("conf").join(template))
        .unwrap_or_else(|e| panic!("reading conf/{template}: {e}"));
    for (name, value) in vars {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(
        !text.contains("{{"),
        "conf/{template}: a placeholder was not filled"
    );
    text
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Debian installs php-fpm as `php-fpm<version>` in /usr/sbin, which is not always on PATH.
fn php_fpm_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/sbin"));
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n == "php-fpm" || n.starts_with("php-fpm8"))
            })
            .collect();
        found.sort();
        if let Some(bin) = found.pop() {
            return bin;
        }
    }
    panic!(
        "php-fpm is not installed: install the Debian package `php-fpm` \
         (scripts/test.sh installs it)"
    );
}

fn nginx_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.is_file() {
        return sbin;
    }
    require_program("nginx", "nginx")
}

/// The `user` line nginx needs as root (its workers would otherwise run as `nobody`, who
/// cannot write the farm's directory); nothing for anyone else.
fn nginx_user_line() -> String {
    if is_root() {
        "user root root;".into()
    } else {
        String::new()
    }
}

/// Spawns `cmd` with output to `log` and waits until it listens on `port`.
fn spawn_listening(what: &str, mut cmd: Command, log: &Path, port: u16) -> Child {
    let file = std::fs::File::create(log).expect("creating a log file");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("dup log")))
        .stderr(Stdio::from(file));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what} ({cmd:?}): {e}"));
    if let Err(why) = wait_listening(&mut child, port, what, STARTUP_TIMEOUT) {
        terminate(&mut child);
        panic!("{why}; its output:\n{}", tail_of_file(log, 3000));
    }
    child
}

impl Farm {
    /// Starts the store, the PHP nodes, the Rust node if configured, and the load balancer.
    pub fn start(config: FarmConfig) -> Farm {
        let dir = TempDir::new("farm");
        for sub in ["holds", "lb-tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("creating farm dirs");
        }
        let mut farm = Farm {
            dir,
            config: config.clone(),
            sessionds: Vec::new(),
            _memcached: None,
            _redis: None,
            php: Vec::new(),
            rust_port: 0,
            rust: None,
            lb: None,
            round_robin_port: 0,
            sticky_port: 0,
            rust_only_port: 0,
            store_addrs: Vec::new(),
        };
        assert!(
            config.rust_node.is_none() || config.store.is_php_memcached(),
            "the Rust node shares php-memcached's sessions only: no Rust node with phpredis"
        );
        match config.store {
            Store::Sessiond | Store::SessiondResp => {
                assert!(
                    (1..=2).contains(&config.sessiond_nodes),
                    "1 or 2 sessiond nodes"
                );
                // phpredis's session handler has no replicas: one node, as for Redis.
                assert!(
                    config.store == Store::Sessiond || config.sessiond_nodes == 1,
                    "phpredis on sessiond: 1 sessiond node"
                );
                for i in 0..config.sessiond_nodes {
                    let data_dir = farm.dir.path().join(format!("sessiond{}", i + 1));
                    std::fs::create_dir_all(&data_dir).expect("creating a data dir");
                    let args = farm.sessiond_args(&data_dir, None);
                    let server = start_sessiond(&args);
                    let node = SessiondNode {
                        memcache: server.memcache_addr(),
                        resp: server.listener("resp").expect("a RESP listener"),
                        http: server.listener("http").expect("an HTTP listener"),
                        server: Some(server),
                        data_dir,
                    };
                    farm.store_addrs
                        .push(if config.store == Store::SessiondResp {
                            node.resp
                        } else {
                            node.memcache
                        });
                    farm.sessionds.push(node);
                }
            }
            Store::Memcached => {
                let server = Memcached::start();
                farm.store_addrs.push(server.memcache_addr());
                farm._memcached = Some(server);
            }
            Store::Redis => {
                let server = RedisServer::start(&[]);
                farm.store_addrs.push(server.addr());
                farm._redis = Some(server);
            }
        }
        for name in PHP_NODES {
            let node = PhpNode {
                name,
                http_port: free_port(),
                fpm_port: free_port(),
                fpm: None,
                nginx: None,
            };
            farm.php.push(node);
        }
        for i in 0..farm.php.len() {
            farm.start_php_index(i);
        }
        if config.rust_node.is_some() {
            farm.rust_port = free_port();
            farm.start_rust();
        }
        farm.start_lb();
        farm
    }

    /// sessiond's arguments: the farm's data directory, and on a restart the same addresses
    /// as before (the PHP nodes' `save_path` names them).
    fn sessiond_args(&self, data_dir: &Path, same_as: Option<&SessiondNode>) -> Vec<String> {
        let mut args = vec!["--data-dir".to_string(), data_dir.display().to_string()];
        if let Some(node) = same_as {
            args.extend([
                "--memcache-listen".into(),
                node.memcache.to_string(),
                "--resp-listen".into(),
                node.resp.to_string(),
                "--http-listen".into(),
                node.http.to_string(),
            ]);
        }
        args.extend(self.config.sessiond_args.iter().cloned());
        args
    }

    /// The store lines of php.ini (sessiond and memcached share php-memcached's; Redis and
    /// sessiond's RESP port share phpredis's).
    fn store_ini(&self) -> String {
        match self.config.store {
            Store::Sessiond | Store::Memcached => {
                let servers: Vec<String> = self.store_addrs.iter().map(|a| a.to_string()).collect();
                let replicas = usize::from(self.store_addrs.len() > 1);
                format!(
                    "; Sessions in sessiond, through php-memcached.
session.save_handler = memcached
session.save_path = \"{servers}\"
; Locking: one request of a session at a time, on every node.
memcached.sess_locking = 1
memcached.sess_lock_wait_min = 10
memcached.sess_lock_wait_max = 100
memcached.sess_lock_retries = 300
; A lock outlives a crash of the request (or of the store: sessiond journals it): it expires
; after this many seconds instead of max_execution_time.
memcached.sess_lock_expire = 10
memcached.sess_prefix = memc.sess.key.
; The binary protocol and libmemcached's ketama ring: the placement the Rust node copies.
memcached.sess_binary_protocol = 1
memcached.sess_consistent_hash = 1
memcached.sess_consistent_hash_type = ketama
; With two sessiond nodes every session is also written to the next node on the ring.
memcached.sess_number_of_replicas = {replicas}
; A node that refuses a connection is taken out of the ring for this request.
memcached.sess_remove_failed_servers = 1
memcached.sess_server_failure_limit = 1
memcached.sess_connect_timeout = 1000
",
                    servers = servers.join(",")
                )
            }
            Store::Redis | Store::SessiondResp => format!(
                "; Sessions in {server}, through phpredis (benchmark comparison).
session.save_handler = redis
session.save_path = \"tcp://{addr}\"
; Locking as php-memcached's: SET <key>_LOCK <host|pid> NX PX <max_execution_time>, retried
; every 10 ms for up to 30 s, released by a compare-and-delete script (EVALSHA, then EVAL).
redis.session.locking_enabled = 1
redis.session.lock_wait_time = 10000
redis.session.lock_retries = 3000
",
                server = if self.config.store == Store::Redis {
                    "Redis"
                } else {
                    "sessiond's RESP port"
                },
                addr = self.store_addrs[0]
            ),
        }
    }

    fn start_php_index(&mut self, i: usize) {
        let dir = self.dir.path().to_path_buf();
        let name = self.php[i].name;
        let (http_port, fpm_port) = (self.php[i].http_port, self.php[i].fpm_port);
        std::fs::create_dir_all(dir.join(format!("{name}-tmp"))).expect("creating node tmp");
        let vars = [
            ("DIR", dir.display().to_string()),
            ("NODE", name.to_string()),
            ("HTTP_PORT", http_port.to_string()),
            ("FPM_PORT", fpm_port.to_string()),
            ("APP_DIR", example_dir().join("php").display().to_string()),
            ("USER_LINE", nginx_user_line()),
            (
                "USER_LINES",
                if is_root() {
                    "user = root\ngroup = root".into()
                } else {
                    String::new()
                },
            ),
            ("STORE_LINES", self.store_ini()),
            ("STRICT_MODE", u8::from(self.config.strict_mode).to_string()),
        ];
        let ini = dir.join(format!("{name}-php.ini"));
        write(&ini, &render("php.ini", &vars));
        let fpm_conf = dir.join(format!("{name}-fpm.conf"));
        write(&fpm_conf, &render("php-fpm.conf", &vars));
        let nginx_conf = dir.join(format!("{name}-nginx.conf"));
        write(&nginx_conf, &render("node.conf", &vars));

        let mut fpm = Command::new(php_fpm_binary());
        fpm.arg("--nodaemonize")
            .arg("--fpm-config")
            .arg(&fpm_conf)
            .arg("-c")
            .arg(&ini);
        if is_root() {
            fpm.arg("--allow-to-run-as-root");
        }
        let fpm = spawn_listening(
            &format!("{name} php-fpm"),
            fpm,
            &dir.join(format!("{name}-fpm.out")),
            fpm_port,
        );
        self.php[i].fpm = Some(fpm);
        let nginx = spawn_listening(
            &format!("{name} nginx"),
            nginx_command(&dir, &nginx_conf, name),
            &dir.join(format!("{name}-nginx.out")),
            http_port,
        );
        self.php[i].nginx = Some(nginx);
    }

    fn start_rust(&mut self) {
        let bin = self.config.rust_node.clone().expect("a Rust node binary");
        let servers: Vec<String> = self.store_addrs.iter().map(|a| a.to_string()).collect();
        let mut cmd = Command::new(&bin);
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.rust_port)])
            .args(["--memcached", &servers.join(",")])
            .args(["--replicas", &usize::from(servers.len() > 1).to_string()])
            .args(["--name", RUST_NODE])
            .env("FARM_HOLD_DIR", self.dir.path().join("holds"));
        let child = spawn_listening(
            "the Rust node",
            cmd,
            &self.dir.path().join("rust.out"),
            self.rust_port,
        );
        self.rust = Some(child);
    }

    fn start_lb(&mut self) {
        let dir = self.dir.path().to_path_buf();
        self.round_robin_port = free_port();
        self.sticky_port = free_port();
        let (rust_line, rust_door_line) = if self.config.rust_node.is_some() {
            self.rust_only_port = free_port();
            (
                format!(
                    "server 127.0.0.1:{} max_fails=1 fail_timeout=5s;",
                    self.rust_port
                ),
                format!("include {}/lb-rust.conf;", dir.display()),
            )
        } else {
            (
                "# (no Rust node in this farm)".into(),
                "# (no Rust node in this farm, so no door to it)".into(),
            )
        };
        let mut vars = vec![
            ("DIR", dir.display().to_string()),
            ("USER_LINE", nginx_user_line()),
            ("RUST_SERVER_LINE", rust_line),
            ("RUST_DOOR_LINE", rust_door_line),
            ("ROUND_ROBIN_PORT", self.round_robin_port.to_string()),
            ("STICKY_PORT", self.sticky_port.to_string()),
            ("RUST_PORT", self.rust_port.to_string()),
            ("RUST_ONLY_PORT", self.rust_only_port.to_string()),
        ];
        for (key, node) in ["PHP1_PORT", "PHP2_PORT", "PHP3_PORT"]
            .into_iter()
            .zip(&self.php)
        {
            vars.push((key, node.http_port.to_string()));
        }
        write(&dir.join("lb-proxy.conf"), &render("lb-proxy.conf", &vars));
        if self.config.rust_node.is_some() {
            write(&dir.join("lb-rust.conf"), &render("lb-rust.conf", &vars));
        }
        let conf = dir.join("lb.conf");
        write(&conf, &render("lb.conf", &vars));
        let mut lb = spawn_listening(
            "the load balancer (nginx)",
            nginx_command(&dir, &conf, "lb"),
            &dir.join("lb.out"),
            self.round_robin_port,
        );
        for port in [self.sticky_port, self.rust_only_port] {
            if port == 0 {
                continue;
            }
            if let Err(why) = wait_listening(&mut lb, port, "nginx", STARTUP_TIMEOUT) {
                panic!("{why}");
            }
        }
        self.lb = Some(lb);
    }

    /// The round-robin door.
    pub fn round_robin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.round_robin_port)
    }

    /// The sticky door.
    pub fn sticky_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sticky_port)
    }

    /// The door to the Rust node alone, through the load balancer (the benchmark's Rust
    /// column); `None` without a Rust node.
    pub fn rust_only_url(&self) -> Option<String> {
        (self.rust_only_port != 0).then(|| format!("http://127.0.0.1:{}", self.rust_only_port))
    }

    /// A node's own address, bypassing the load balancer (`php1`…`php3`, `rust`).
    pub fn node_url(&self, name: &str) -> String {
        if name == RUST_NODE {
            assert!(self.rust_port != 0, "this farm has no Rust node");
            return format!("http://127.0.0.1:{}", self.rust_port);
        }
        let node = self.php_node(name);
        format!("http://127.0.0.1:{}", node.http_port)
    }

    /// The names of the nodes the load balancer spreads over.
    pub fn node_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.php.iter().map(|n| n.name).collect();
        if self.config.rust_node.is_some() {
            names.push(RUST_NODE);
        }
        names
    }

    /// The name of the node listening on `addr` (nginx's `$upstream_addr`).
    pub fn node_at(&self, addr: &str) -> Option<&'static str> {
        let port: u16 = addr.rsplit(':').next()?.parse().ok()?;
        if port == self.rust_port && self.rust_port != 0 {
            return Some(RUST_NODE);
        }
        self.php
            .iter()
            .find(|n| n.http_port == port)
            .map(|n| n.name)
    }

    fn php_node(&self, name: &str) -> &PhpNode {
        self.php
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no PHP node {name}"))
    }

    /// Stops a node (its nginx and php-fpm, or the Rust node) by pid, as if the machine
    /// went away; the load balancer then finds its port closed.
    pub fn stop_node(&mut self, name: &str) {
        if name == RUST_NODE {
            if let Some(mut child) = self.rust.take() {
                terminate(&mut child);
            }
            return;
        }
        let node = self
            .php
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no PHP node {name}"));
        for child in [node.nginx.take(), node.fpm.take()].into_iter().flatten() {
            let mut child = child;
            terminate(&mut child);
        }
    }

    /// Starts a stopped node again on its old ports.
    pub fn start_node(&mut self, name: &str) {
        if name == RUST_NODE {
            self.start_rust();
            return;
        }
        let i = self
            .php
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no PHP node {name}"));
        self.start_php_index(i);
    }

    /// SIGKILLs sessiond node `i` (0-based), as a crash would.
    pub fn kill_sessiond(&mut self, i: usize) {
        let mut server = self.sessionds[i]
            .server
            .take()
            .expect("that sessiond is not running");
        server.kill();
    }

    /// Starts sessiond node `i` again on its old addresses, from its data directory.
    pub fn restart_sessiond(&mut self, i: usize) {
        assert!(
            self.sessionds[i].server.is_none(),
            "that sessiond is running"
        );
        let data_dir = self.sessionds[i].data_dir.clone();
        let args = self.sessiond_args(&data_dir, Some(&self.sessionds[i]));
        self.sessionds[i].server = Some(start_sessiond(&args));
    }

    /// sessiond node `i`'s memcached-protocol address.
    pub fn sessiond_memcache(&self, i: usize) -> SocketAddr {
        self.sessionds[i].memcache
    }

    /// sessiond node `i`'s RESP address.
    pub fn sessiond_resp(&self, i: usize) -> SocketAddr {
        self.sessionds[i].resp
    }

    /// sessiond node `i`'s HTTP (admin API) address.
    pub fn sessiond_http(&self, i: usize) -> SocketAddr {
        self.sessionds[i].http
    }

    /// The directory the PHP app's `?hold=` test hook watches.
    pub fn hold_dir(&self) -> PathBuf {
        self.dir.path().join("holds")
    }

    /// The farm's directory (configs and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PHP nodes' error logs and the load balancer's, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<String> = PHP_NODES
            .iter()
            .flat_map(|n| [format!("{n}-php.log"), format!("{n}-fpm.log")])
            .collect();
        names.extend(["lb-error.log".into(), "rust.out".into()]);
        for name in names {
            let text = tail_of_file(&self.dir.path().join(&name), 1500);
            if !text.trim().is_empty() {
                out.push_str(&format!("--- {name}\n{text}\n"));
            }
        }
        out
    }
}

/// nginx with its prefix in the farm's directory and its startup errors in a file of its
/// own (`-e`), so it never touches /var/log/nginx or the system's configuration.
fn nginx_command(dir: &Path, conf: &Path, name: &str) -> Command {
    let mut cmd = Command::new(nginx_binary());
    cmd.arg("-e")
        .arg(dir.join(format!("{name}-startup.log")))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf);
    cmd
}

fn start_sessiond(args: &[String]) -> Sessiond {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Sessiond::start(&args)
}

impl Drop for Farm {
    fn drop(&mut self) {
        // The front first, so nothing new arrives; then the nodes; the stores last.
        if let Some(mut child) = self.lb.take() {
            terminate(&mut child);
        }
        if let Some(mut child) = self.rust.take() {
            terminate(&mut child);
        }
        for node in &mut self.php {
            for child in [node.nginx.take(), node.fpm.take()].into_iter().flatten() {
                let mut child = child;
                terminate(&mut child);
            }
        }
        self.sessionds.clear();
    }
}

/// How long one scenario step may wait for the farm (a lock, a node's restart); only turns
/// a hang into a failure.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
