//! Redis transactions (`MULTI`/`EXEC`/`WATCH`) against the real binary: `WATCH` fails the
//! transaction whoever changes the key (another RESP client, an expiry, a memcached client
//! writing database 0, `FLUSHALL`), `EXEC` is atomic with respect to other clients, and
//! `redis-cli` and phpredis run transactions as they would against Redis.
//!
//! The memcached scenario is sessiond's own (one keyspace for both protocols); the others
//! hold against redis-server too.

use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{
    McClient, Resp, RespClient, Sessiond, require_program, run_with_timeout, unique,
};

fn start() -> (Sessiond, std::net::SocketAddr) {
    let server = Sessiond::start(&["--resp-listen", "127.0.0.1:0"]);
    let resp = server
        .listener("resp")
        .unwrap_or_else(|| panic!("no `listening resp` line\n{}", server.log_tail()));
    (server, resp)
}

fn simple(text: &str) -> Resp {
    Resp::Simple(text.into())
}

/// `MULTI`, `SET key value`, `EXEC` on `client`; returns EXEC's reply.
fn set_in_transaction(client: &mut RespClient, key: &str, value: &str) -> Resp {
    client.ok(&["MULTI"]);
    assert_eq!(client.call(&["SET", key, value]).value, simple("QUEUED"));
    client.call(&["EXEC"]).value
}

#[test]
fn watch_is_invalidated_by_another_client_expiry_memcached_and_flushall() {
    let (server, resp) = start();
    let mut watcher = RespClient::connect(resp);
    let mut other = RespClient::connect(resp);

    // Another RESP client's write.
    let key = unique("tx");
    watcher.ok(&["SET", &key, "0"]);
    watcher.ok(&["WATCH", &key]);
    other.ok(&["SET", &key, "theirs"]);
    assert_eq!(
        set_in_transaction(&mut watcher, &key, "mine"),
        Resp::NullArray
    );
    assert_eq!(watcher.get(&key).as_deref(), Some(&b"theirs"[..]));
    // Unchanged: the transaction runs.
    watcher.ok(&["WATCH", &key]);
    assert_eq!(
        set_in_transaction(&mut watcher, &key, "mine"),
        Resp::Array(vec![simple("OK")])
    );

    // An expiry nobody read.
    watcher.ok(&["SET", &key, "short", "PX", "100"]);
    watcher.ok(&["WATCH", &key]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        set_in_transaction(&mut watcher, &key, "mine"),
        Resp::NullArray
    );

    // A memcached client writing the same key of database 0.
    watcher.ok(&["SET", &key, "0"]);
    watcher.ok(&["WATCH", &key]);
    let mut mc = McClient::connect(server.memcache_addr());
    mc.send(format!("set {key} 0 0 2\r\nmc\r\n").as_bytes());
    assert_eq!(mc.read_raw_line().expect("memcached reply"), b"STORED\r\n");
    assert_eq!(
        set_in_transaction(&mut watcher, &key, "mine"),
        Resp::NullArray
    );
    assert_eq!(watcher.get(&key).as_deref(), Some(&b"mc"[..]));

    // FLUSHALL from another client.
    watcher.ok(&["WATCH", &key]);
    other.ok(&["FLUSHALL"]);
    assert_eq!(
        set_in_transaction(&mut watcher, &key, "mine"),
        Resp::NullArray
    );
    assert_eq!(watcher.get(&key), None);
}

#[test]
fn exec_is_atomic_with_respect_to_other_clients() {
    let (_server, resp) = start();
    let key = unique("counter");
    let mut setup = RespClient::connect(resp);
    setup.ok(&["SET", &key, "0"]);
    let incrementer = {
        let key = key.clone();
        std::thread::spawn(move || {
            let mut client = RespClient::connect(resp);
            for _ in 0..3000 {
                assert!(matches!(client.call(&["INCR", &key]).value, Resp::Int(_)));
            }
        })
    };
    let mut client = RespClient::connect(resp);
    for round in 0..300 {
        client.ok(&["MULTI"]);
        for command in [&["GET", &key][..], &["INCR", &key], &["GET", &key]] {
            assert_eq!(client.call(command).value, simple("QUEUED"));
        }
        let reply = client.call(&["EXEC"]);
        let Resp::Array(items) = &reply.value else {
            panic!("EXEC: {reply}");
        };
        let number = |r: &Resp| -> i64 {
            match r {
                Resp::Bulk(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
                Resp::Int(n) => *n,
                other => panic!("round {round}: {other:?}"),
            }
        };
        let (before, incremented, after) =
            (number(&items[0]), number(&items[1]), number(&items[2]));
        assert_eq!(
            (incremented, after),
            (before + 1, before + 1),
            "round {round}: another client's INCR ran inside EXEC: {reply}"
        );
    }
    incrementer.join().expect("incrementer");
    assert_eq!(setup.get(&key).as_deref(), Some(&b"3300"[..]));
}

#[test]
fn redis_cli_runs_a_transaction() {
    let (_server, resp) = start();
    let key = unique("cli");
    let script =
        format!("MULTI\nSET {key} 1\nINCR {key}\nGET {key}\nEXEC\nMULTI\nNOSUCH\nEXEC\nEXEC\n");
    let mut cmd = Command::new(require_program("redis-cli", "redis-tools"));
    cmd.args(["-h", &resp.ip().to_string(), "-p", &resp.port().to_string()])
        .env("REDIS_SCRIPT", &script)
        .arg("--no-raw");
    // redis-cli reads commands from stdin when it is not a terminal.
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!(
        "printf '%s' \"$REDIS_SCRIPT\" | {}",
        shell_words(&cmd)
    ));
    shell.env("REDIS_SCRIPT", &script);
    let out = run_with_timeout("redis-cli", &mut shell, Duration::from_secs(30));
    assert!(out.status.success(), "redis-cli: {}", out.stderr);
    let expected = "OK\nQUEUED\nQUEUED\nQUEUED\n1) OK\n2) (integer) 2\n3) \"2\"\nOK\n(error) ERR unknown command 'NOSUCH', with args beginning with: \n(error) EXECABORT Transaction discarded because of previous errors.\n(error) ERR EXEC without MULTI\n";
    assert_eq!(out.stdout, expected, "redis-cli output");
}

fn shell_words(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// phpredis's `multi()` (a MULTI/EXEC transaction) and `watch()`, as PHP applications use them.
#[test]
fn phpredis_multi_exec_and_watch() {
    let (_server, resp) = start();
    let php = crate::php::php_with("redis", "php-redis");
    let key = unique("php");
    let code = format!(
        r#"
$r = new Redis();
$r->connect('{ip}', {port});
$k = '{key}';
$res = $r->multi()->set($k, 'v1')->incr($k . ':n')->get($k)->exec();
echo json_encode($res), "\n";
$r->watch($k);
$other = new Redis();
$other->connect('{ip}', {port});
$other->set($k, 'theirs');
$res = $r->multi()->set($k, 'mine')->exec();
echo json_encode($res), "\n";
echo $r->get($k), "\n";
$res = $r->multi(Redis::PIPELINE)->set($k, 'piped')->get($k)->exec();
echo json_encode($res), "\n";
"#,
        ip = resp.ip(),
        port = resp.port(),
    );
    let mut cmd = Command::new(php);
    cmd.arg("-r").arg(code);
    let out = run_with_timeout("php", &mut cmd, Duration::from_secs(30));
    assert!(out.status.success(), "php: {}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout, "[true,1,\"v1\"]\nfalse\ntheirs\n[true,\"piped\"]\n",
        "phpredis output"
    );
}
