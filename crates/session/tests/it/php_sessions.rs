//! Sessions shared with PHP (`PhpSessionStore`), against the real thing: php-cli with
//! php-memcached (Debian's `php-cli` and `php-memcached`) and sessiond's memcached listener.
//! PHP runs with the settings a farm uses (binary protocol, consistent hashing, locking) and
//! a Rust app serves the same sessions through the layer: values in both serialize handlers,
//! objects PHP keeps that Rust cannot read, the lock both ways, stale locks, logout from
//! either side, strict mode, placement with a replica and the loss of a server.
//!
//! Nothing here is timed: the lock tests assert on what each side read and wrote (a write
//! that did not wait for the lock loses the other side's update, and the final value shows
//! it). The stale-lock test waits for a one-second lock to expire on the server's own clock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use sessiond_session::{
    IdFormat, PhpSessionConfig, PhpSessionStore, SerializeHandler, Session, SessionId,
    SessionLayer, SessionStore,
};
use sessiond_test_harness::process::{Finished, Spawned, run_with_timeout};
use sessiond_test_harness::{McClient, Resp, RespClient, Sessiond};

use crate::common::servers::{sessiond_memcached, sessiond_memcached_and_resp};
use crate::common::{self, KV, PHP, err};

const COOKIE: &str = "PHPSESSID";
/// Generous bound for one PHP process; only a hang reaches it.
const PHP_TIMEOUT: Duration = Duration::from_secs(60);

/// Servers, and the PHP and Rust settings that agree on them.
struct Farm {
    servers: Vec<Sessiond>,
    save_path: String,
    handler: SerializeHandler,
    replicas: usize,
    /// `memcached.sess_lock_expire` and the store's lock expiry, in seconds.
    lock_expire: u64,
    /// Lock retries on both sides (waits of 5 ms doubling to 50 ms).
    lock_retries: u32,
}

impl Farm {
    fn start(n: usize, replicas: usize, handler: SerializeHandler) -> Farm {
        Self::start_with(n, replicas, handler, sessiond_memcached)
    }

    fn start_with(
        n: usize,
        replicas: usize,
        handler: SerializeHandler,
        server: fn() -> Sessiond,
    ) -> Farm {
        assert!(
            std::path::Path::new(PHP).exists(),
            "{PHP} not found: install Debian's `php-cli` and `php-memcached` packages"
        );
        let servers: Vec<Sessiond> = (0..n).map(|_| server()).collect();
        let save_path = servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.memcache_addr().port()))
            .collect::<Vec<_>>()
            .join(",");
        Farm {
            servers,
            save_path,
            handler,
            replicas,
            lock_expire: 30,
            lock_retries: 400,
        }
    }

    fn php_command(&self, strict: bool, script: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(PHP);
        let ini = [
            ("session.save_handler", "memcached".to_owned()),
            ("session.save_path", self.save_path.clone()),
            (
                "session.serialize_handler",
                self.handler.as_str().to_owned(),
            ),
            ("session.use_cookies", "0".to_owned()),
            (
                "session.use_strict_mode",
                if strict { "1" } else { "0" }.to_owned(),
            ),
            ("session.cache_limiter", String::new()),
            ("session.gc_maxlifetime", "1440".to_owned()),
            ("memcached.sess_binary_protocol", "1".to_owned()),
            ("memcached.sess_consistent_hash", "1".to_owned()),
            ("memcached.sess_consistent_hash_type", "ketama".to_owned()),
            (
                "memcached.sess_number_of_replicas",
                self.replicas.to_string(),
            ),
            ("memcached.sess_remove_failed_servers", "1".to_owned()),
            ("memcached.sess_server_failure_limit", "1".to_owned()),
            ("memcached.sess_locking", "1".to_owned()),
            ("memcached.sess_lock_wait_min", "5".to_owned()),
            ("memcached.sess_lock_wait_max", "50".to_owned()),
            ("memcached.sess_lock_retries", self.lock_retries.to_string()),
            ("memcached.sess_lock_expire", self.lock_expire.to_string()),
        ];
        for (k, v) in ini {
            cmd.arg("-d").arg(format!("{k}={v}"));
        }
        cmd.args(["-r", &format!("{PHP_PRELUDE}\n{script}")])
            .args(args);
        cmd
    }

    /// Runs a PHP script to completion; fails the test if PHP fails.
    fn php(&self, strict: bool, script: &str, args: &[&str]) -> String {
        let out = self.php_raw(strict, script, args);
        assert!(
            out.status.success() && !out.stderr.contains("Warning"),
            "php failed ({}): {}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    fn php_raw(&self, strict: bool, script: &str, args: &[&str]) -> Finished {
        run_with_timeout(
            "php",
            &mut self.php_command(strict, script, args),
            PHP_TIMEOUT,
        )
    }

    fn php_spawn(&self, label: &str, script: &str, args: &[&str]) -> Spawned {
        Spawned::spawn(label, &mut self.php_command(false, script, args))
    }

    fn store_config(&self) -> PhpSessionConfig {
        let mut config = PhpSessionConfig::from_save_path(&self.save_path).unwrap();
        config.serialize_handler = self.handler;
        config.memcached.replicas = self.replicas;
        config.lock_wait_min = Duration::from_millis(5);
        config.lock_wait_max = Duration::from_millis(50);
        config.lock_retries = self.lock_retries;
        config.lock_expire = Duration::from_secs(self.lock_expire);
        config
    }

    fn store(&self) -> Arc<PhpSessionStore> {
        Arc::new(PhpSessionStore::new(self.store_config()).unwrap())
    }

    /// A Rust app over the farm.
    fn app(&self) -> App {
        let store = self.store();
        let layer = SessionLayer::from_arc(store.clone(), store.config().session_config()).unwrap();
        App {
            router: router().layer(layer),
            store,
        }
    }

    /// The raw value of `key` on server `i`, if it holds one.
    fn raw(&self, i: usize, key: &str) -> Option<Vec<u8>> {
        McClient::connect(self.servers[i].memcache_addr())
            .get(key)
            .map(|item| item.value)
    }

    /// The servers holding `key`.
    fn holders(&self, key: &str) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|&i| self.raw(i, key).is_some())
            .collect()
    }

    /// The session's value as its owner holds it.
    fn session_bytes(&self, app: &App, id: &str) -> Vec<u8> {
        self.raw(app.store.server_index(id), &format!("memc.sess.key.{id}"))
            .expect("session stored")
    }
}

/// Every PHP script starts with the session whose id is `$argv[1]`.
const PHP_PRELUDE: &str = r#"
function start_or_die() {
    global $argv;
    session_id($argv[1]);
    if (!session_start()) { fwrite(STDERR, "session_start failed\n"); exit(3); }
}
"#;

struct App {
    router: Router,
    store: Arc<PhpSessionStore>,
}

/// The Rust app: read a key as JSON, set a key to JSON (or to a long string), increment,
/// log in and out.
fn router() -> Router {
    Router::new()
        .route(
            "/get",
            get(|s: Session, Query(q): Query<KV>| async move {
                let v: Option<Value> = s.get(&q.k.unwrap_or_default()).await.map_err(err)?;
                Ok::<_, (StatusCode, String)>(v.unwrap_or(Value::Null).to_string())
            }),
        )
        .route(
            "/set",
            post(|s: Session, Query(q): Query<KV>| async move {
                let v: Value = serde_json::from_str(&q.v.unwrap_or_default()).unwrap();
                s.insert(&q.k.unwrap_or_default(), v).await.map_err(err)?;
                Ok::<_, (StatusCode, String)>("set")
            }),
        )
        .route(
            "/fill",
            post(|s: Session, Query(q): Query<KV>| async move {
                let n: usize = q.v.unwrap_or_default().parse().unwrap();
                s.insert(&q.k.unwrap_or_default(), "z".repeat(n))
                    .await
                    .map_err(err)?;
                Ok::<_, (StatusCode, String)>("filled")
            }),
        )
        .route("/incr", post(common::handle_incr))
        .route("/login", post(common::handle_login))
        .route("/logout", post(common::handle_logout))
}

/// Sends one request to `app` with the PHP session cookie `id` (if any).
async fn send(app: &App, method: &str, uri: &str, id: Option<&str>) -> Reply {
    let cookie = id.map(|id| format!("{COOKIE}={id}"));
    let r = common::request(&app.router, method, uri, cookie.as_deref()).await;
    Reply {
        cookie: r.cookie_id(COOKIE),
        status: r.status,
        body: r.body,
    }
}

/// A response as these tests look at it.
struct Reply {
    status: StatusCode,
    body: String,
    /// The id in `Set-Cookie: PHPSESSID=…`, if one was sent (empty for a removal).
    cookie: Option<String>,
}

/// `/set?k=…&v=<json>`, which must succeed.
async fn rust_set(app: &App, id: &str, k: &str, v: &Value) {
    let v = urlencode(&v.to_string());
    let r = send(app, "POST", &format!("/set?k={k}&v={v}"), Some(id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn rust_get(app: &App, id: &str, k: &str) -> Value {
    let r = send(app, "GET", &format!("/get?k={k}"), Some(id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn php_id() -> String {
    IdFormat::Php.generate().as_str().to_owned()
}

/// What PHP writes for the values test, and what Rust must read.
const PHP_WRITES: &str = r#"
start_or_die();
$_SESSION['int'] = 42;
$_SESSION['neg'] = -7;
$_SESSION['float'] = 0.1;
$_SESSION['big'] = 1.0E+25;
$_SESSION['whole'] = 3.0;
$_SESSION['yes'] = true;
$_SESSION['no'] = false;
$_SESSION['nothing'] = null;
$_SESSION['text'] = "a|b;c\"d é ü 日本";
$_SESSION['list'] = [1, 'two', [3.5]];
$_SESSION['map'] = ['k' => 'v', 7 => ['deep' => ['x' => 1]]];
$_SESSION['empty'] = [];
session_write_close();
"#;

fn php_written() -> Value {
    json!({
        "int": 42, "neg": -7, "float": 0.1, "big": 1.0e25, "whole": 3.0, "yes": true,
        "no": false, "nothing": null, "text": "a|b;c\"d é ü 日本",
        "list": [1, "two", [3.5]], "map": {"k": "v", "7": {"deep": {"x": 1}}}, "empty": [],
    })
}

/// Prints `$_SESSION` as JSON, floats marked and written with all their digits
/// (`json_encode` would print `3.0` as `3`).
const PHP_DUMPS: &str = r#"
start_or_die();
function mark($v) {
    if (is_float($v)) return ['float' => sprintf('%.17g', $v)];
    if (is_array($v)) return array_map('mark', $v);
    return $v;
}
echo json_encode(mark($_SESSION), JSON_UNESCAPED_UNICODE), "\n";
session_write_close();
"#;

/// The JSON `PHP_DUMPS` prints for `v`: floats marked.
fn marked(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => json!({ "float": v }),
        Value::Array(items) => Value::Array(items.iter().map(marked).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), marked(v))).collect())
        }
        other => other.clone(),
    }
}

fn php_dump(farm: &Farm, id: &str) -> Value {
    let out = farm.php(false, PHP_DUMPS, &[id]);
    let dump: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    parse_floats(&dump)
}

/// `{"float": "<digits>"}` as PHP printed it, with the digits read as an `f64` (exactly:
/// Rust's parser rounds correctly).
fn parse_floats(v: &Value) -> Value {
    match v {
        Value::Object(map) if map.len() == 1 && map.get("float").is_some_and(Value::is_string) => {
            let x: f64 = map["float"].as_str().unwrap().parse().unwrap();
            json!({ "float": x })
        }
        Value::Array(items) => Value::Array(items.iter().map(parse_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), parse_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn values_both_ways(handler: SerializeHandler) {
    let farm = Farm::start(1, 0, handler);
    let app = farm.app();
    let id = php_id();
    farm.php(false, PHP_WRITES, &[&id]);
    let written = php_written();
    for (k, v) in written.as_object().unwrap() {
        let got = rust_get(&app, &id, k).await;
        assert_eq!(&got, v, "{handler:?}: Rust read {k}");
        if v.is_f64() {
            assert!(got.is_f64(), "{handler:?}: {k} is still a float");
        }
    }
    // Rust writes; PHP reads every type back as it was sent, the untouched ones unchanged.
    let rust = json!({
        "r_text": "x|y;z\"w ü 日本 ;|\"", "r_int": -9007199254740993i64, "r_float": 2.5,
        "r_whole": 4.0, "r_bool": false, "r_null": null,
        "r_list": [1, [2, {"a": null}]], "r_map": {"b": 1, "10": "ten", "-3": [true]},
        "int": 43,
    });
    for (k, v) in rust.as_object().unwrap() {
        rust_set(&app, &id, k, v).await;
    }
    let mut expected = written.as_object().unwrap().clone();
    expected.extend(rust.as_object().unwrap().clone());
    let dump = php_dump(&farm, &id);
    assert_eq!(
        dump,
        marked(&Value::Object(expected.clone())),
        "{handler:?}: PHP read"
    );
    // Rust reads back what it wrote.
    for (k, v) in rust.as_object().unwrap() {
        assert_eq!(&rust_get(&app, &id, k).await, v, "{handler:?}: {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_both_ways_php_handler() {
    values_both_ways(SerializeHandler::Php).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_both_ways_php_serialize_handler() {
    values_both_ways(SerializeHandler::PhpSerialize).await;
}

/// PHP keeps objects (with private and protected properties), an enum case and a reference;
/// Rust sees none of them, updates the session around them, and PHP gets them back intact.
async fn objects_survive(handler: SerializeHandler) {
    let farm = Farm::start(1, 0, handler);
    let app = farm.app();
    let id = php_id();
    let classes = r#"
        class Cart { private $items = []; protected $owner; public $total = 0.0;
            function __construct($o) { $this->owner = $o; }
            function add($i, $p) { $this->items[] = $i; $this->total += $p; } }
        enum Suit: string { case Hearts = 'H'; case Spades = 'S'; }
    "#;
    let write = format!(
        r#"{classes}
        start_or_die();
        $_SESSION['n'] = 1;
        $c = new Cart('alice'); $c->add('pen', 1.5); $c->add('ink', 2.25);
        $_SESSION['cart'] = $c;
        $_SESSION['suit'] = Suit::Spades;
        $_SESSION['same_cart'] = $c;
        $_SESSION['after'] = 'x';
        session_write_close();
        "#
    );
    farm.php(false, &write, &[&id]);
    let before = farm.session_bytes(&app, &id);
    assert_eq!(rust_get(&app, &id, "cart").await, Value::Null);
    assert_eq!(rust_get(&app, &id, "n").await, json!(1));
    // A change after the last reference is written; the opaque values keep their bytes.
    rust_set(&app, &id, "after", &json!("y")).await;
    rust_set(&app, &id, "added", &json!([1, 2])).await;
    let after = farm.session_bytes(&app, &id);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let cart_start = text(&before).find("O:4:\"Cart\"").expect("the cart object");
    let cart_end = text(&before).find("Suit").expect("the enum");
    let objects = &before[cart_start..cart_end];
    assert!(
        after.windows(objects.len()).any(|w| w == objects),
        "{handler:?}: the cart's bytes changed: {} → {}",
        text(&before),
        text(&after)
    );
    let check = format!(
        r#"{classes}
        start_or_die();
        $c = $_SESSION['cart'];
        $ok = $c instanceof Cart && $c->total === 3.75 && $_SESSION['suit'] === Suit::Spades
            && $_SESSION['same_cart'] === $c && $_SESSION['after'] === 'y'
            && $_SESSION['added'] === [1, 2] && $_SESSION['n'] === 1;
        $r = new ReflectionProperty('Cart', 'items');
        $ok = $ok && $r->getValue($c) === ['pen', 'ink'];
        echo $ok ? "intact\n" : "broken: " . var_export($_SESSION, true) . "\n";
        session_write_close();
        "#
    );
    assert_eq!(
        farm.php(false, &check, &[&id]).trim(),
        "intact",
        "{handler:?}"
    );
    // A change before the reference (`same_cart` points at `cart` by number) is refused,
    // not written with a broken reference: the layer answers with an error.
    let r = send(&app, "POST", "/set?k=n&v=%5B1%2C2%5D", Some(&id)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert_eq!(
        farm.php(false, &check, &[&id]).trim(),
        "intact",
        "{handler:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_survive_rust_updates_php_handler() {
    objects_survive(SerializeHandler::Php).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_survive_rust_updates_php_serialize_handler() {
    objects_survive(SerializeHandler::PhpSerialize).await;
}

/// PHP increments `n` `times` times, one request each; prints how many succeeded.
const PHP_INCREMENTS: &str = r#"
session_id($argv[1]);
$ok = 0;
for ($i = 0; $i < (int)$argv[2]; $i++) {
    if (!@session_start()) { continue; }
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    if (session_write_close()) { $ok++; }
}
echo $ok, "\n";
"#;

/// Three PHP processes and three Rust tasks increment one counter at the same time; every
/// increment that reported success is in the final count, seen alike by both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_lose_nothing() {
    let farm = Farm::start(2, 1, SerializeHandler::Php);
    let app = Arc::new(farm.app());
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['n'] = 0;", &[&id]);
    const PER_WORKER: usize = 15;
    let php: Vec<Spawned> = (0..3)
        .map(|i| {
            farm.php_spawn(
                &format!("php incrementer {i}"),
                PHP_INCREMENTS,
                &[&id, &PER_WORKER.to_string()],
            )
        })
        .collect();
    let rust: Vec<_> = (0..3)
        .map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                for _ in 0..PER_WORKER {
                    let r = send(&app, "POST", "/incr", Some(&id)).await;
                    if r.status == StatusCode::OK {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut rust_ok = 0;
    for task in rust {
        rust_ok += task.await.unwrap();
    }
    let php_ok: usize = tokio::task::spawn_blocking(move || {
        php.into_iter()
            .map(|p| {
                let out = p.wait(PHP_TIMEOUT);
                assert!(out.status.success(), "{}", out.stderr);
                out.stdout.trim().parse::<usize>().unwrap()
            })
            .sum()
    })
    .await
    .unwrap();
    assert!(php_ok > 0 && rust_ok > 0, "php {php_ok}, rust {rust_ok}");
    let total = (php_ok + rust_ok) as i64;
    assert_eq!(rust_get(&app, &id, "n").await, json!(total));
    let dump = php_dump(&farm, &id);
    assert_eq!(dump["n"], json!(total), "php {php_ok} + rust {rust_ok}");
}

/// PHP holds the lock (between `session_start()` and a line on its stdin): a Rust write
/// made meanwhile waits, so PHP's write at the end of its request does not undo it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_waits_for_a_php_lock() {
    let farm = Farm::start(1, 0, SerializeHandler::Php);
    let app = Arc::new(farm.app());
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['n'] = 1;", &[&id]);
    let mut holder = farm.php_spawn(
        "php lock holder",
        r#"start_or_die(); echo "locked\n"; fgets(STDIN);
           $_SESSION['php'] = $_SESSION['n'] + 10; session_write_close(); echo "done\n";"#,
        &[&id],
    );
    holder.expect_line("locked", PHP_TIMEOUT);
    let writer = {
        let (app, id) = (app.clone(), id.clone());
        tokio::spawn(async move { send(&app, "POST", "/incr", Some(&id)).await })
    };
    // Give the Rust write every chance to go wrong, then let PHP finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.send("go\n");
    let out = tokio::task::spawn_blocking(move || holder.wait(PHP_TIMEOUT))
        .await
        .unwrap();
    assert!(out.stdout.contains("done"), "{}", out.stderr);
    let r = writer.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // PHP read n = 1 under its lock; Rust's increment came after PHP's write.
    assert_eq!(rust_get(&app, &id, "php").await, json!(11));
    assert_eq!(rust_get(&app, &id, "n").await, json!(2));
}

/// Rust holds the lock (`PhpSessionStore::lock`) and writes under it; a PHP request that
/// starts meanwhile waits in `session_start()` and reads what Rust wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_waits_for_a_rust_lock() {
    let farm = Farm::start(2, 1, SerializeHandler::Php);
    let app = farm.app();
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['n'] = 1;", &[&id]);
    let sid = IdFormat::Php.parse(&id).unwrap();
    let lock = app.store.lock(&sid).await.unwrap();
    // The lock is where PHP looks for it: placed by `lock.<id>`, on its owner and replica.
    let lock_key = format!("memc.sess.key.lock.{id}");
    let owner = app.store.server_index(&format!("lock.{id}"));
    assert_eq!(farm.holders(&lock_key), {
        let mut v = vec![owner, (owner + 1) % 2];
        v.sort();
        v
    });
    let php = farm.php_spawn(
        "php incrementer",
        r#"start_or_die(); echo "started\n"; $_SESSION['n']++; session_write_close();"#,
        &[&id],
    );
    // While Rust holds the lock, Rust writes n = 100 (a write of its own, as a job holding
    // the lock would make). Were PHP not waiting, it would have read 1 and write 2 over it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..2 {
        McClient::connect(farm.servers[i].memcache_addr())
            .command_line(&format!("set memc.sess.key.{id} 0 0 8\r\nn|i:100;"));
    }
    app.store.unlock(lock).await;
    let out = tokio::task::spawn_blocking(move || php.wait(PHP_TIMEOUT))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(rust_get(&app, &id, "n").await, json!(101));
    assert!(farm.holders(&lock_key).is_empty(), "PHP released the lock");
    // A lock dropped without `unlock` (a cancelled request) is released in the background.
    let lock = app.store.lock(&sid).await.unwrap();
    assert!(!farm.holders(&lock_key).is_empty());
    drop(lock);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !farm.holders(&lock_key).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped lock stayed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An `unlock` whose future is dropped after its first poll (the caller cancelled while the
/// first delete was in flight) still deletes the lock on every server holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_unlock_still_releases_the_lock() {
    let farm = Farm::start(2, 1, SerializeHandler::Php);
    let app = farm.app();
    let id = php_id();
    let sid = IdFormat::Php.parse(&id).unwrap();
    let lock_key = format!("memc.sess.key.lock.{id}");
    let lock = app.store.lock(&sid).await.unwrap();
    assert_eq!(
        farm.holders(&lock_key),
        vec![0, 1],
        "the lock and its replica"
    );
    let mut unlock = Box::pin(app.store.unlock(lock));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(unlock.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the release waits on the network");
    drop(unlock);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !farm.holders(&lock_key).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock stayed on {:?} after a cancelled unlock",
            farm.holders(&lock_key)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A PHP process killed while holding the lock leaves it behind; with a one-second lock
/// expiry, Rust's write waits for it to expire and then succeeds, and so does PHP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_expires() {
    let mut farm = Farm::start(1, 0, SerializeHandler::Php);
    farm.lock_expire = 1;
    let app = farm.app();
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['n'] = 1;", &[&id]);
    let mut holder = farm.php_spawn(
        "php killed holding the lock",
        r#"start_or_die(); echo "locked\n"; sleep(600);"#,
        &[&id],
    );
    holder.expect_line("locked", PHP_TIMEOUT);
    drop(holder); // SIGKILL, by pid
    assert!(
        farm.raw(0, &format!("memc.sess.key.lock.{id}")).is_some(),
        "the dead holder's lock is still there"
    );
    let r = send(&app, "POST", "/incr", Some(&id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, "2");
    let out = farm.php(false, PHP_INCREMENTS, &[&id, "1"]);
    assert_eq!(out.trim(), "1");
    assert_eq!(rust_get(&app, &id, "n").await, json!(3));
    // A Rust holder that never releases (a process killed mid-write): PHP waits for the
    // lock to expire, then goes on.
    let sid = IdFormat::Php.parse(&id).unwrap();
    std::mem::forget(app.store.lock(&sid).await.unwrap());
    let out = farm.php(false, PHP_INCREMENTS, &[&id, "1"]);
    assert_eq!(out.trim(), "1");
    assert_eq!(rust_get(&app, &id, "n").await, json!(4));
}

/// When the wait for PHP's lock gives up, the Rust write fails with an error (503) and
/// writes nothing: no silent overwrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_that_gives_up_is_an_error() {
    let farm = Farm::start(1, 0, SerializeHandler::Php);
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['n'] = 1;", &[&id]);
    let mut impatient = farm.store_config();
    impatient.lock_retries = 2;
    let store = Arc::new(PhpSessionStore::new(impatient).unwrap());
    let app = App {
        router: router()
            .layer(SessionLayer::from_arc(store.clone(), store.config().session_config()).unwrap()),
        store,
    };
    let mut holder = farm.php_spawn(
        "php lock holder",
        r#"start_or_die(); echo "locked\n"; fgets(STDIN); session_write_close();"#,
        &[&id],
    );
    holder.expect_line("locked", PHP_TIMEOUT);
    let r = send(&app, "POST", "/incr", Some(&id)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    holder.send("go\n");
    let out = tokio::task::spawn_blocking(move || holder.wait(PHP_TIMEOUT))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(rust_get(&app, &id, "n").await, json!(1));
}

/// A logout on either side logs the other out: Rust's delete removes the key PHP reads, and
/// PHP's `session_destroy()` removes the key Rust reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_from_either_side() {
    let farm = Farm::start(2, 1, SerializeHandler::Php);
    let app = farm.app();
    let whoami =
        r#"start_or_die(); echo $_SESSION['user'] ?? 'anonymous', "\n"; session_write_close();"#;
    // Rust logs in (a new id, as `cycle_id` issues); PHP sees the user; Rust logs out.
    let r = send(&app, "POST", "/login?user=alice", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.cookie.expect("a session cookie");
    assert_eq!(farm.php(true, whoami, &[&id]).trim(), "alice");
    let r = send(&app, "POST", "/logout", Some(&id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.cookie.as_deref(), Some(""), "the cookie is removed");
    assert!(farm.holders(&format!("memc.sess.key.{id}")).is_empty());
    assert_eq!(farm.php(true, whoami, &[&id]).trim(), "anonymous");
    // PHP logs in and out; Rust sees the user, then nobody.
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['user'] = 'bob';", &[&id]);
    assert_eq!(rust_get(&app, &id, "user").await, json!("bob"));
    farm.php(false, "start_or_die(); session_destroy();", &[&id]);
    let r = send(&app, "GET", "/get?k=user", Some(&id)).await;
    assert_eq!(r.body, "null");
    assert!(farm.holders(&format!("memc.sess.key.{id}")).is_empty());
}

/// Strict mode on both sides: PHP keeps an id Rust issued (it exists), and Rust, like PHP,
/// refuses an id nobody issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_ids() {
    let farm = Farm::start(1, 0, SerializeHandler::Php);
    let app = farm.app();
    let r = send(&app, "POST", "/set?k=from&v=%22rust%22", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.cookie.expect("an id was issued");
    assert!(IdFormat::Php.parse(&id).is_some());
    let keeps = r#"start_or_die(); echo session_id() === $argv[1] ? "kept" : "replaced", " ",
        $_SESSION['from'] ?? '-', "\n"; session_write_close();"#;
    assert_eq!(farm.php(true, keeps, &[&id]).trim(), "kept rust");
    // An id of PHP's alphabet that no one issued: PHP replaces it, Rust too.
    let forged = php_id();
    assert_eq!(farm.php(true, keeps, &[&forged]).trim(), "replaced -");
    let r = send(&app, "POST", "/set?k=from&v=%22rust%22", Some(&forged)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh = r.cookie.expect("a fresh id");
    assert_ne!(fresh, forged);
    assert!(farm.holders(&format!("memc.sess.key.{forged}")).is_empty());
    // And an id PHP issued itself, of its default form (32 hex digits), is Rust's too.
    let out = farm.php(
        true,
        r#"session_start(); $_SESSION['from'] = 'php'; echo session_id(), "\n"; session_write_close();"#,
        &["unused"],
    );
    let php_issued = out.trim();
    assert_eq!(rust_get(&app, php_issued, "from").await, json!("php"));
}

/// Three servers, one replica: every session, whoever wrote it, is on the server the ring
/// names and the next one in the list, as libmemcached puts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_agrees_with_php() {
    let farm = Farm::start(3, 1, SerializeHandler::Php);
    let app = farm.app();
    let mut ids: Vec<String> = (0..20).map(|_| php_id()).collect();
    let script = r#"
        foreach (array_slice($argv, 1) as $id) {
            session_id($id);
            if (!session_start()) { exit(3); }
            $_SESSION['by'] = 'php';
            session_write_close();
        }
    "#;
    let args: Vec<&str> = ids.iter().map(String::as_str).collect();
    farm.php(false, script, &args);
    for _ in 0..20 {
        let r = send(&app, "POST", "/set?k=by&v=%22rust%22", None).await;
        ids.push(r.cookie.unwrap());
    }
    let mut owners = [0usize; 3];
    for id in &ids {
        let owner = app.store.server_index(id);
        owners[owner] += 1;
        let mut expected = vec![owner, (owner + 1) % 3];
        expected.sort();
        assert_eq!(
            farm.holders(&format!("memc.sess.key.{id}")),
            expected,
            "{id}"
        );
    }
    assert!(owners.iter().all(|&n| n > 0), "{owners:?}");
}

/// Two servers, one replica: after either dies, every session (written by PHP or by Rust)
/// is still there for both, and both can still write it.
async fn survives_losing(victim: usize) {
    let mut farm = Farm::start(2, 1, SerializeHandler::Php);
    let app = farm.app();
    let mut ids: Vec<String> = (0..6).map(|_| php_id()).collect();
    for id in &ids {
        farm.php(false, "start_or_die(); $_SESSION['user'] = 'php';", &[id]);
    }
    for _ in 0..6 {
        let r = send(&app, "POST", "/set?k=user&v=%22rust%22", None).await;
        ids.push(r.cookie.unwrap());
    }
    farm.servers[victim].kill();
    for id in &ids {
        let user = rust_get(&app, id, "user").await;
        assert!(
            user == json!("php") || user == json!("rust"),
            "{id}: {user}"
        );
        // PHP warns about the dead server (libmemcached ejects it), then carries on.
        let out = farm.php_raw(
            false,
            r#"start_or_die(); echo $_SESSION['user'] ?? 'anonymous', "\n"; $_SESSION['n'] = 1; session_write_close();"#,
            &[id],
        );
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(
            json!(out.stdout.trim()),
            user,
            "PHP reads {id} after losing server {victim}: {}",
            out.stderr
        );
        let r = send(&app, "POST", "/incr", Some(id)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, "2", "Rust increments PHP's write of {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_losing_the_first_server() {
    survives_losing(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_losing_the_second_server() {
    survives_losing(1).await;
}

/// Values in the store that are not PHP sessions (truncated, too deep, too large) make a
/// request fail with an error, never a panic, and the app keeps serving other sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_errors() {
    // Items of up to 4 MiB, so a value past the decoder's 1 MiB reaches it.
    let farm = Farm::start_with(1, 0, SerializeHandler::Php, || {
        Sessiond::start(&[
            "--fsync",
            "no",
            "--threads",
            "2",
            "--resp-listen",
            "off",
            "--max-item-size",
            "4m",
        ])
    });
    let app = farm.app();
    let deep = format!("x|{}i:1;{}", "a:1:{i:0;".repeat(100), "}".repeat(100));
    let huge = format!("x|s:{}:\"{}\";", 2 << 20, "y".repeat(2 << 20));
    let many = format!("x|a:1000000:{{{}}}", "i:0;i:0;".repeat(10));
    for (what, value) in [
        ("truncated", "x|s:100:\"short\";".to_owned()),
        ("not serialized", "x|garbage".to_owned()),
        ("deep", deep),
        ("huge", huge),
        ("too many elements", many),
    ] {
        let id = php_id();
        let mut mc = McClient::connect(farm.servers[0].memcache_addr());
        let reply = mc.command_line(&format!(
            "set memc.sess.key.{id} 0 0 {}\r\n{value}",
            value.len()
        ));
        assert_eq!(reply, "STORED", "{what}");
        let r = send(&app, "GET", "/get?k=x", Some(&id)).await;
        assert_eq!(
            r.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{what}: {}",
            r.body
        );
        // The value is left alone, and the next session is served.
        assert!(
            farm.raw(0, &format!("memc.sess.key.{id}")).is_some(),
            "{what}"
        );
        let r = send(&app, "POST", "/set?k=ok&v=1", None).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
    }
    // The longest id accepted (200 characters; its keys still fit memcached's 250 bytes) that
    // nobody issued is no session, and a fresh one is issued.
    let long = "a".repeat(200);
    let r = send(&app, "POST", "/set?k=ok&v=1", Some(&long)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(r.cookie.as_deref(), Some(long.as_str()));
    // Values Rust cannot write as PHP would read them are refused, not stored: a name with
    // `|` under the `php` handler, and a session past 1 MiB.
    let r = send(&app, "POST", "/set?k=a%7Cb&v=1", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    let id = {
        let r = send(&app, "POST", "/set?k=ok&v=1", None).await;
        r.cookie.unwrap()
    };
    let r = send(
        &app,
        "POST",
        &format!("/fill?k=big&v={}", 1 << 20),
        Some(&id),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert_eq!(farm.session_bytes(&app, &id), b"ok|i:1;");
}

/// A login on the Rust side (`cycle_id`) of a session PHP started: the data moves to a new
/// id that PHP keeps in strict mode, and the old id is gone for both, as after
/// `session_regenerate_id(true)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_login_replaces_a_php_session_id() {
    let farm = Farm::start(2, 1, SerializeHandler::Php);
    let app = farm.app();
    let old = php_id();
    farm.php(
        false,
        "start_or_die(); $_SESSION['cart'] = ['pen'];",
        &[&old],
    );
    let r = send(&app, "POST", "/login?user=carol", Some(&old)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = r.cookie.expect("a new id");
    assert_ne!(new, old);
    let script = r#"start_or_die(); echo session_id() === $argv[1] ? "kept" : "replaced", " ",
        json_encode($_SESSION), "\n"; session_write_close();"#;
    assert_eq!(
        farm.php(true, script, &[&new]).trim(),
        r#"kept {"cart":["pen"],"user":"carol"}"#
    );
    assert_eq!(farm.php(true, script, &[&old]).trim(), "replaced []");
    assert!(farm.holders(&format!("memc.sess.key.{old}")).is_empty());
}

/// Floats Rust writes are spelled as PHP's `serialize()` spells them (so a PHP round trip
/// changes no byte), for a spread of magnitudes and random bit patterns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floats_are_spelled_as_php_spells_them() {
    let farm = Farm::start(1, 0, SerializeHandler::Php);
    let mut floats = vec![
        0.1, 1.5, 3.0, -0.0, 1e25, 1.5e-7, 1e-5, 0.0001, 1e15, 1e16, 1e17,
    ];
    floats.extend([
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        123456.789,
        -2.5e-300,
        1.0 / 3.0,
    ]);
    // A fixed xorshift sequence of bit patterns, so a failure reproduces.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while floats.len() < 400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        if f.is_finite() {
            floats.push(f);
        }
    }
    // Passed to PHP as the exact bits, so no decimal parsing stands between the two sides.
    // (As a signed integer: PHP's integers are.)
    let bits: Vec<String> = floats
        .iter()
        .map(|f| (f.to_bits() as i64).to_string())
        .collect();
    let args: Vec<&str> = std::iter::once("unused")
        .chain(bits.iter().map(String::as_str))
        .collect();
    let out = farm.php(
        false,
        r#"foreach (array_slice($argv, 2) as $b) {
               echo serialize(unpack('d', pack('Q', (int)$b))[1]), "
";
           }"#,
        &args,
    );
    let php: Vec<&str> = out.lines().collect();
    assert_eq!(php.len(), floats.len());
    for (f, php) in floats.iter().zip(php) {
        let mut data = serde_json::Map::new();
        data.insert("x".into(), json!(f));
        let rust = sessiond_session::PhpSession::default()
            .with_data(&data)
            .unwrap()
            .encode(SerializeHandler::Php)
            .unwrap();
        assert_eq!(
            String::from_utf8(rust).unwrap(),
            format!("x|{php}"),
            "{f:e} (bits {})",
            f.to_bits()
        );
    }
}

/// Writes set the key's TTL to `gc_maxlifetime`, and a load restarts it, as PHP's writes
/// and per-request touches do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_loads_set_the_ttl_to_gc_maxlifetime() {
    // The RESP listener too, to read the key's TTL (`TTL`).
    let farm = Farm::start_with(1, 0, SerializeHandler::Php, sessiond_memcached_and_resp);
    let mut config = farm.store_config();
    config.gc_maxlifetime = Duration::from_secs(600);
    let store = Arc::new(PhpSessionStore::new(config).unwrap());
    let app = App {
        router: router()
            .layer(SessionLayer::from_arc(store.clone(), store.config().session_config()).unwrap()),
        store,
    };
    let ttl = |id: &str| {
        let mut resp = RespClient::connect(farm.servers[0].listener("resp").unwrap());
        match resp.call(&["TTL", &format!("memc.sess.key.{id}")]).value {
            Resp::Int(t) => t,
            other => panic!("TTL replied {other:?}"),
        }
    };
    // PHP writes with its 1440 s; a Rust load restarts the TTL at the store's 600 s.
    let id = php_id();
    farm.php(false, "start_or_die(); $_SESSION['n'] = 1;", &[&id]);
    assert!((1400..=1440).contains(&ttl(&id)), "{}", ttl(&id));
    assert_eq!(rust_get(&app, &id, "n").await, json!(1));
    assert!((560..=600).contains(&ttl(&id)), "{}", ttl(&id));
    // A Rust write sets it too.
    farm.php(false, "start_or_die(); $_SESSION['n'] = 1;", &[&id]);
    rust_set(&app, &id, "m", &json!(2)).await;
    assert!((560..=600).contains(&ttl(&id)), "{}", ttl(&id));
}

/// The store's contract without the layer: `create` refuses a taken id, `update` is a
/// compare-and-set on the digest of the value, whoever wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_over_php_values() {
    let farm = Farm::start(1, 0, SerializeHandler::Php);
    let store = farm.store();
    let id: SessionId = IdFormat::Php.generate();
    let mut record = sessiond_session::Record::new(1);
    record.data.insert("a".into(), json!(1));
    assert_eq!(
        store
            .create(&id, &record, Duration::from_secs(60))
            .await
            .unwrap(),
        sessiond_session::CreateOutcome::Created
    );
    assert_eq!(
        store
            .create(&id, &record, Duration::from_secs(60))
            .await
            .unwrap(),
        sessiond_session::CreateOutcome::Exists
    );
    let loaded = store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.version, store.created_version(&record));
    assert_eq!(
        farm.raw(0, &format!("memc.sess.key.{}", id.as_str()))
            .unwrap(),
        b"a|i:1;"
    );
    // PHP writes in between: the version Rust loaded is stale.
    farm.php(false, "start_or_die(); $_SESSION['b'] = 2;", &[id.as_str()]);
    record.data.insert("a".into(), json!(5));
    assert_eq!(
        store
            .update(&id, &record, loaded.version, Duration::from_secs(60))
            .await
            .unwrap(),
        sessiond_session::UpdateOutcome::Conflict
    );
    let fresh = store.load(&id).await.unwrap().unwrap();
    let mut merged = fresh.record.clone();
    merged.data.insert("a".into(), json!(5));
    assert!(matches!(
        store
            .update(&id, &merged, fresh.version, Duration::from_secs(60))
            .await
            .unwrap(),
        sessiond_session::UpdateOutcome::Updated(_)
    ));
    assert_eq!(
        farm.raw(0, &format!("memc.sess.key.{}", id.as_str()))
            .unwrap(),
        b"a|i:5;b|i:2;"
    );
    assert!(store.delete(&id).await.unwrap());
    assert!(store.load(&id).await.unwrap().is_none());
}
