//! Redis lists and blocking pops against the real binary: redis-cli driving every list
//! command; blocked clients served first come, first served by a push from another
//! connection, from `EXEC`, from a Lua script and by `RENAME` onto the key; time-outs, the
//! non-blocking behaviour inside `MULTI`, disconnects and `CLIENT UNBLOCK`; hostile
//! requests (a wait on 100,000 keys, replies past the output limit); and lists across a
//! `kill -9`, a journal rewrite and a restart.
//!
//! Time-outs use short real time-outs whose end is event-driven (the reply arrives when the
//! server gives up); nothing asserts on elapsed time. Every scenario but the hostile and
//! durability ones also holds against redis-server (`SESSIOND_IT_TARGET=redis`).

use std::time::{Duration, Instant};

use sessiond_test_harness::{Resp, RespClient, RespServer, Sessiond, TempDir, unique};

use crate::redis_cli::{Expect, run_script};

fn bulk(text: &str) -> Resp {
    Resp::Bulk(text.as_bytes().to_vec())
}

fn bulks(items: &[&str]) -> Resp {
    Resp::Array(items.iter().map(|i| bulk(i)).collect())
}

/// `INFO clients`' `blocked_clients`.
fn blocked_clients(client: &mut RespClient) -> u64 {
    let info = client.call(&["INFO", "clients"]).value;
    let text = match info {
        Resp::Bulk(b) | Resp::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO clients answered {other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no blocked_clients in INFO clients:\n{text}"))
}

/// Waits (bounded) until `n` clients are blocked, as Redis's own tests do before pushing.
fn wait_blocked(client: &mut RespClient, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(client) != n {
        assert!(
            Instant::now() < deadline,
            "blocked_clients never reached {n} (now {})",
            blocked_clients(client)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends a blocking command on a fresh connection and waits until the server has it
/// blocked; the reply is read later from the returned client.
fn block(server: &RespServer, watcher: &mut RespClient, args: &[&str]) -> RespClient {
    let before = blocked_clients(watcher);
    let mut client = server.client(None);
    client.send(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    wait_blocked(watcher, before + 1);
    client
}

const SCRIPT: &[(&str, Expect)] = &[
    ("RPUSH l a b c", Expect::Lines(&["(integer) 3"])),
    ("LPUSH l z y", Expect::Lines(&["(integer) 5"])),
    (
        "LRANGE l 0 -1",
        Expect::Lines(&["1) \"y\"", "2) \"z\"", "3) \"a\"", "4) \"b\"", "5) \"c\""]),
    ),
    ("LRANGE l -2 100", Expect::Lines(&["1) \"b\"", "2) \"c\""])),
    ("LRANGE l 5 10", Expect::Lines(&["(empty array)"])),
    ("LLEN l", Expect::Lines(&["(integer) 5"])),
    ("LINDEX l -1", Expect::Lines(&["\"c\""])),
    ("LINDEX l 9", Expect::Lines(&["(nil)"])),
    ("LSET l 1 Z", Expect::Lines(&["OK"])),
    ("LSET l 9 x", Expect::Error("ERR index out of range")),
    ("LSET nolist 0 x", Expect::Error("ERR no such key")),
    ("LINSERT l BEFORE a A", Expect::Lines(&["(integer) 6"])),
    ("LINSERT l AFTER nope x", Expect::Lines(&["(integer) -1"])),
    ("LINSERT nolist AFTER a x", Expect::Lines(&["(integer) 0"])),
    ("LINSERT l SIDEWAYS a x", Expect::Error("ERR syntax error")),
    ("RPUSH l a a", Expect::Lines(&["(integer) 8"])),
    ("LPOS l a", Expect::Lines(&["(integer) 3"])),
    ("LPOS l a RANK -1", Expect::Lines(&["(integer) 7"])),
    (
        "LPOS l a COUNT 0",
        Expect::Lines(&["1) (integer) 3", "2) (integer) 6", "3) (integer) 7"]),
    ),
    ("LPOS l a RANK 0", Expect::Error("ERR RANK can't be zero")),
    ("LREM l -2 a", Expect::Lines(&["(integer) 2"])),
    ("LREM l 0 a", Expect::Lines(&["(integer) 1"])),
    (
        "LRANGE l 0 -1",
        Expect::Lines(&["1) \"y\"", "2) \"Z\"", "3) \"A\"", "4) \"b\"", "5) \"c\""]),
    ),
    ("LTRIM l 1 -2", Expect::Lines(&["OK"])),
    (
        "LRANGE l 0 -1",
        Expect::Lines(&["1) \"Z\"", "2) \"A\"", "3) \"b\""]),
    ),
    ("LPOP l", Expect::Lines(&["\"Z\""])),
    ("RPOP l 5", Expect::Lines(&["1) \"b\"", "2) \"A\""])),
    ("EXISTS l", Expect::Lines(&["(integer) 0"])),
    ("LPOP l", Expect::Lines(&["(nil)"])),
    ("LPOP l 2", Expect::Lines(&["(nil)"])),
    ("LPOP l -1", Expect::Error("ERR value is out of range")),
    ("LPUSHX l a", Expect::Lines(&["(integer) 0"])),
    ("RPUSH src 1 2 3", Expect::Lines(&["(integer) 3"])),
    ("LMOVE src dst RIGHT LEFT", Expect::Lines(&["\"3\""])),
    ("RPOPLPUSH src dst", Expect::Lines(&["\"2\""])),
    ("LMOVE src src LEFT RIGHT", Expect::Lines(&["\"1\""])),
    ("LRANGE dst 0 -1", Expect::Lines(&["1) \"2\"", "2) \"3\""])),
    (
        "LMPOP 2 nolist dst LEFT COUNT 5",
        Expect::Lines(&["1) \"dst\"", "2) 1) \"2\"", "   2) \"3\""]),
    ),
    ("LMPOP 1 dst LEFT", Expect::Lines(&["(nil)"])),
    ("LMPOP 0 dst LEFT", Expect::Error("ERR numkeys")),
    (
        "BLPOP nolist src 0",
        Expect::Lines(&["1) \"src\"", "2) \"1\""]),
    ),
    ("SET str x", Expect::Lines(&["OK"])),
    ("LPUSH str a", Expect::Error("WRONGTYPE")),
    ("LRANGE str 0 -1", Expect::Error("WRONGTYPE")),
    ("BLPOP nolist str 0", Expect::Error("WRONGTYPE")),
    ("RPUSH typed a", Expect::Lines(&["(integer) 1"])),
    ("TYPE typed", Expect::Lines(&["list"])),
    ("SCAN 0 TYPE list COUNT 1000", Expect::Scan(&["typed"])),
    ("GET typed", Expect::Error("WRONGTYPE")),
    ("HSET typed f v", Expect::Error("WRONGTYPE")),
    ("EXPIRE typed 100", Expect::Lines(&["(integer) 1"])),
    ("RENAME typed moved", Expect::Lines(&["OK"])),
    ("LRANGE moved 0 -1", Expect::Lines(&["1) \"a\""])),
    ("BLPOP nolist -1", Expect::Error("ERR timeout is negative")),
    (
        "BLPOP nolist abc",
        Expect::Error("ERR timeout is not a float or out of range"),
    ),
    ("DEL moved", Expect::Lines(&["(integer) 1"])),
    ("RPUSH n 3 1 2 10", Expect::Lines(&["(integer) 4"])),
    (
        "SORT n",
        Expect::Lines(&["1) \"1\"", "2) \"2\"", "3) \"3\"", "4) \"10\""]),
    ),
    (
        "SORT n ALPHA DESC LIMIT 0 2",
        Expect::Lines(&["1) \"3\"", "2) \"2\""]),
    ),
    ("SET w_1 30", Expect::Lines(&["OK"])),
    ("HSET h_2 f 5", Expect::Lines(&["(integer) 1"])),
    (
        "SORT n BY nosort GET # GET w_* GET h_*->f LIMIT 1 1",
        Expect::Lines(&["1) \"1\"", "2) \"30\"", "3) (nil)"]),
    ),
    (
        "SORT n BY w_* DESC GET h_*->f LIMIT 0 2",
        Expect::Lines(&["1) (nil)", "2) (nil)"]),
    ),
    ("SORT n ALPHA STORE sorted", Expect::Lines(&["(integer) 4"])),
    ("LINDEX sorted 0", Expect::Lines(&["\"1\""])),
    ("LPUSH words b a", Expect::Lines(&["(integer) 2"])),
    (
        "SORT words",
        Expect::Error("ERR One or more scores can't be converted into double"),
    ),
    ("SORT_RO n STORE x", Expect::Error("ERR syntax error")),
    ("SORT str", Expect::Error("WRONGTYPE")),
    // DUMP and RESTORE round-trip a list (the payload is opaque; only its use is shown).
    (
        "EVAL \"local d = redis.call('DUMP', KEYS[1]); redis.call('RESTORE', KEYS[2], 0, d); return redis.call('LRANGE', KEYS[2], 0, -1)\" 2 n restored",
        Expect::Lines(&["1) \"3\"", "2) \"1\"", "3) \"2\"", "4) \"10\""]),
    ),
    ("RESTORE n 0 garbage", Expect::Error("BUSYKEY")),
    (
        "RESTORE fresh 0 garbage",
        Expect::Error("ERR DUMP payload version or checksum are wrong"),
    ),
];

#[test]
fn redis_cli_runs_every_list_command() {
    let server = RespServer::start();
    server.header("redis-cli lists");
    run_script(&server, &["-2"], SCRIPT);
}

#[test]
fn blocked_pops_are_served_in_order_by_pushes_from_any_source() {
    let server = RespServer::start();
    server.header("blocking pops woken by pushes");
    let mut pusher = server.client(None);

    // Two clients on one key: a push of two elements serves them in the order they
    // blocked, before the push's reply, so the key is gone when the pusher looks.
    let key = unique("queue");
    let mut first = block(&server, &mut pusher, &["BLPOP", &key, "0"]);
    let mut second = block(&server, &mut pusher, &["BLPOP", "other", &key, "0"]);
    assert_eq!(pusher.call(&["RPUSH", &key, "x", "y"]).value, Resp::Int(2));
    assert_eq!(pusher.call(&["EXISTS", &key]).value, Resp::Int(0));
    assert_eq!(first.read().value, bulks(&[&key, "x"]));
    assert_eq!(second.read().value, bulks(&[&key, "y"]));

    // EXEC: a transaction's push wakes the client once the transaction is done; one that
    // pushes and deletes again serves nobody.
    let mut waiting = block(&server, &mut pusher, &["BRPOP", &key, "0"]);
    pusher.ok(&["MULTI"]);
    pusher.call(&["LPUSH", &key, "gone"]);
    pusher.call(&["DEL", &key]);
    pusher.call(&["EXEC"]);
    assert_eq!(blocked_clients(&mut pusher), 1, "DEL in the same EXEC");
    pusher.ok(&["MULTI"]);
    pusher.call(&["LPUSH", &key, "tx"]);
    pusher.call(&["EXEC"]);
    assert_eq!(waiting.read().value, bulks(&[&key, "tx"]));

    // A Lua script's push.
    let mut waiting = block(&server, &mut pusher, &["BLPOP", &key, "0"]);
    let pushed = pusher.call(&[
        "EVAL",
        "return redis.call('RPUSH', KEYS[1], 'lua')",
        "1",
        &key,
    ]);
    assert_eq!(pushed.value, Resp::Int(1));
    assert_eq!(waiting.read().value, bulks(&[&key, "lua"]));

    // RENAME of a list onto the key.
    let staging = unique("staging");
    let mut waiting = block(&server, &mut pusher, &["BLPOP", &key, "0"]);
    pusher.call(&["RPUSH", &staging, "renamed"]);
    pusher.ok(&["RENAME", &staging, &key]);
    assert_eq!(waiting.read().value, bulks(&[&key, "renamed"]));

    // BLMOVE, whose push wakes a client blocked on the destination in turn.
    let dst = unique("dst");
    let mut on_dst = block(&server, &mut pusher, &["BLPOP", &dst, "0"]);
    let mut mover = block(
        &server,
        &mut pusher,
        &["BLMOVE", &key, &dst, "RIGHT", "LEFT", "0"],
    );
    pusher.call(&["RPUSH", &key, "moved"]);
    assert_eq!(mover.read().value, bulk("moved"));
    assert_eq!(on_dst.read().value, bulks(&[&dst, "moved"]));

    // BLMPOP takes up to its count from the first list with elements.
    let mut multi = block(
        &server,
        &mut pusher,
        &["BLMPOP", "0", "2", "none", &key, "LEFT", "COUNT", "2"],
    );
    pusher.call(&["RPUSH", &key, "1", "2", "3"]);
    assert_eq!(
        multi.read().value,
        Resp::Array(vec![bulk(&key), bulks(&["1", "2"])])
    );
    assert_eq!(
        pusher.call(&["LRANGE", &key, "0", "-1"]).value,
        bulks(&["3"])
    );
    assert_eq!(blocked_clients(&mut pusher), 0);
}

#[test]
fn blocking_pops_time_out_do_not_block_in_multi_and_end_on_disconnect_or_unblock() {
    let server = RespServer::start();
    server.header("blocking pops: time-outs, MULTI, disconnect, CLIENT UNBLOCK");
    let mut client = server.client(None);
    let key = unique("empty");

    // Short real time-outs: the reply comes when the server gives up.
    assert_eq!(client.call(&["BLPOP", &key, "0.05"]).value, Resp::NullArray);
    assert_eq!(
        client
            .call(&["BLMOVE", &key, "d", "LEFT", "LEFT", "0.05"])
            .value,
        // Redis 7.0 answers a timed-out move with a null array too.
        Resp::NullArray
    );
    assert_eq!(
        client.call(&["BLMPOP", "0.05", "1", &key, "RIGHT"]).value,
        Resp::NullArray
    );

    // Inside MULTI a blocking pop never blocks.
    client.ok(&["MULTI"]);
    client.call(&["BLPOP", &key, "0"]);
    client.call(&["BRPOPLPUSH", &key, "d", "0"]);
    assert_eq!(
        client.call(&["EXEC"]).value,
        Resp::Array(vec![Resp::NullArray, Resp::NullBulk])
    );

    // A client that leaves while blocked takes nothing.
    let mut watcher = server.client(None);
    let gone = block(&server, &mut watcher, &["BLPOP", &key, "0"]);
    drop(gone);
    wait_blocked(&mut watcher, 0);
    watcher.call(&["RPUSH", &key, "kept"]);
    assert_eq!(watcher.call(&["LLEN", &key]).value, Resp::Int(1));
    watcher.call(&["DEL", &key]);

    // CLIENT UNBLOCK: as a time-out, then with the error.
    let mut blocked = server.client(None);
    let Resp::Int(id) = blocked.call(&["CLIENT", "ID"]).value else {
        panic!("CLIENT ID")
    };
    let id = id.to_string();
    blocked.send(&[b"BLPOP", key.as_bytes(), b"0"]);
    wait_blocked(&mut watcher, 1);
    assert_eq!(
        watcher.call(&["CLIENT", "UNBLOCK", &id]).value,
        Resp::Int(1)
    );
    assert_eq!(blocked.read().value, Resp::NullArray);
    blocked.send(&[b"BLPOP", key.as_bytes(), b"0"]);
    wait_blocked(&mut watcher, 1);
    assert_eq!(
        watcher.call(&["CLIENT", "UNBLOCK", &id, "ERROR"]).value,
        Resp::Int(1)
    );
    assert_eq!(
        blocked.read().value,
        Resp::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    );
    assert_eq!(
        watcher.call(&["CLIENT", "UNBLOCK", &id]).value,
        Resp::Int(0)
    );
}

#[test]
fn hostile_list_requests_are_refused_and_the_server_keeps_serving() {
    let server = Sessiond::start(&[
        "--resp-listen",
        "127.0.0.1:0",
        "--client-output-limit",
        "1m",
        "--max-memory",
        "64m",
    ]);
    let addr = server.listener("resp").expect("resp listener");
    let mut client = RespClient::connect(addr);

    // A wait on 100,000 keys: refused before anything is registered.
    let keys: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
    let mut args: Vec<&[u8]> = vec![b"BLPOP"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    args.push(b"0");
    let refused = client.call_bytes(&args).value;
    assert!(
        matches!(&refused, Resp::Error(e) if e.contains("at most 1024 keys")),
        "{refused:?}"
    );
    assert_eq!(blocked_clients(&mut client), 0);

    // A reply past the output limit is refused, and a pop that could not be sent pops
    // nothing.
    let item = "x".repeat(100_000);
    for _ in 0..20 {
        client.call(&["RPUSH", "big", &item]);
    }
    let over = client.call(&["LRANGE", "big", "0", "-1"]).value;
    assert!(
        matches!(&over, Resp::Error(e) if e.contains("output limit")),
        "{over:?}"
    );
    let over = client.call(&["LPOP", "big", "20"]).value;
    assert!(
        matches!(&over, Resp::Error(e) if e.contains("output limit")),
        "{over:?}"
    );
    assert_eq!(client.call(&["LLEN", "big"]).value, Resp::Int(20));

    // Pushing past the memory budget: OOM, nothing half-done.
    let chunk = "y".repeat(1 << 20);
    let mut refused = None;
    for n in 0..100 {
        match client.call(&["RPUSH", "huge", &chunk, &chunk]).value {
            Resp::Int(_) => {}
            Resp::Error(e) => {
                refused = Some((n, e));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let (pushes, error) = refused.expect("64 MiB never filled up");
    assert!(error.starts_with("OOM"), "{error}");
    assert_eq!(
        client.call(&["LLEN", "huge"]).value,
        Resp::Int(2 * pushes as i64)
    );

    // Malformed arguments.
    for (args, want) in [
        (&["LINSERT", "big", "X", "a", "b"][..], "ERR syntax error"),
        (
            &["LPOS", "big", "x", "MAXLEN", "-1"],
            "ERR MAXLEN can't be negative",
        ),
        (&["LPOS", "big", "x", "COUNT"], "ERR syntax error"),
        (&["LMPOP", "99", "a", "LEFT"], "ERR syntax error"),
        (&["BLMPOP", "0", "1", "a", "UP"], "ERR syntax error"),
        (&["LRANGE", "big", "a", "1"], "ERR value is not an integer"),
        (&["BLPOP", "a", "inf"], "ERR timeout is out of range"),
    ] {
        let got = client.call(args).value;
        assert!(
            matches!(&got, Resp::Error(e) if e.starts_with(want)),
            "{args:?}: {got:?}"
        );
    }
    assert_eq!(client.call(&["PING"]).value, Resp::Simple("PONG".into()));
}

#[test]
fn lists_survive_kill_a_rewrite_and_a_restart() {
    let dir = TempDir::new("lists-durable");
    let data = dir.path().to_str().unwrap().to_string();
    let args = [
        "--resp-listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--fsync",
        "always",
    ];
    let mut server = Sessiond::start(&args);
    let mut client = RespClient::connect(server.listener("resp").unwrap());
    // Every kind of list change, before and after a rewrite (whose fuzzy snapshot overlaps
    // the records that follow it).
    let ops: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b", "c", "d", "e"],
        &["LPUSH", "l", "z"],
        &["LPOP", "l"],
        &["RPOP", "l", "2"],
        &["LSET", "l", "0", "A"],
        &["LINSERT", "l", "AFTER", "b", "b2"],
        &["RPUSH", "l", "b", "b"],
        &["LREM", "l", "-2", "b"],
        &["RPUSH", "m", "1", "2", "3"],
        &["LMOVE", "m", "l", "LEFT", "RIGHT"],
        &["LTRIM", "m", "0", "0"],
        &["RPUSH", "gone", "x"],
        &["LPOP", "gone"],
    ];
    for op in ops {
        client.call(op);
    }
    let started = client.call(&["BGREWRITEAOF"]).value;
    assert!(
        matches!(started, Resp::Simple(_)),
        "BGREWRITEAOF: {started:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_dir(dir.path())
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".snap"))
    {
        assert!(Instant::now() < deadline, "no snapshot after BGREWRITEAOF");
        std::thread::sleep(Duration::from_millis(20));
    }
    for op in ops.iter().take(8) {
        client.call(op);
    }
    let expect_l = client.call(&["LRANGE", "l", "0", "-1"]).value;
    let expect_m = client.call(&["LRANGE", "m", "0", "-1"]).value;
    assert_eq!(
        expect_m,
        bulks(&["2"]),
        "the scenario itself went differently than planned"
    );
    server.kill();
    let server = Sessiond::start(&args);
    let mut client = RespClient::connect(server.listener("resp").unwrap());
    assert_eq!(client.call(&["LRANGE", "l", "0", "-1"]).value, expect_l);
    assert_eq!(client.call(&["LRANGE", "m", "0", "-1"]).value, expect_m);
    assert_eq!(client.call(&["EXISTS", "gone"]).value, Resp::Int(0));
    println!("lists after kill -9, rewrite and restart: l = {expect_l:?}");
}

#[test]
fn list_changes_raise_keyspace_events() {
    let server = RespServer::start();
    server.header("list keyspace events");
    let mut client = server.client(None);
    client.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut subscriber = server.client(None);
    subscriber.call(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    let key = unique("events");
    let other = unique("events-dst");
    for command in [
        &["RPUSH", &key, "a", "b", "c"][..],
        &["LSET", &key, "0", "A"],
        &["LINSERT", &key, "BEFORE", "b", "x"],
        &["LREM", &key, "1", "x"],
        &["LTRIM", &key, "0", "1"],
        &["LMOVE", &key, &other, "LEFT", "RIGHT"],
        &["LPOP", &key],
        &["BLPOP", &other, "0"],
    ] {
        client.call(command);
    }
    let mut events = Vec::new();
    while events.len() < 11 {
        let Resp::Array(message) = subscriber.read().value else {
            continue;
        };
        if let [_, _, Resp::Bulk(channel), Resp::Bulk(k)] = &message[..] {
            let event = String::from_utf8_lossy(channel).replace("__keyevent@0__:", "");
            events.push((event, String::from_utf8_lossy(k).into_owned()));
        }
    }
    let want: Vec<(String, String)> = [
        ("rpush", &key),
        ("lset", &key),
        ("linsert", &key),
        ("lrem", &key),
        ("ltrim", &key),
        ("rpush", &other),
        ("lpop", &key),
        ("lpop", &key),
        ("del", &key),
        ("lpop", &other),
        ("del", &other),
    ]
    .iter()
    .map(|(e, k)| (e.to_string(), k.to_string()))
    .collect();
    assert_eq!(events, want);
}
