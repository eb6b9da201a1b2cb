//! Bounded memory whatever clients send, against the real binary: a reply that would be
//! gigabytes, collection reads past the output limit, a subscriber and a pipelining client
//! that never read, floods before `AUTH`, and thousands of idle unauthenticated
//! connections. Each scenario checks that the server stays up, answers a fresh client, keeps
//! the stored data unchanged, and that its peak resident memory (`VmHWM` in
//! `/proc/<pid>/status`, which catches a spike between two samples) stays under
//! `--max-memory` plus the documented overhead ([`BASE`] plus the scenario's own limit, see
//! docs/security.md, "Limits").
//!
//! Waits are for events (a reply, an EOF, a count in `INFO`), each with a generous deadline
//! that only turns a hang into a failure; nothing asserts how long anything took.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sessiond_test_harness::{McClient, Resp, RespClient, Sessiond};

pub(crate) const MIB: u64 = 1024 * 1024;
/// The server's own footprint (binary, runtime, Lua, tables) plus what the scenarios' traffic
/// may hold at once beyond the stored data and the one limit each scenario names: measured
/// at 10–25 MiB for a debug build; the margin absorbs allocator slack.
pub(crate) const BASE: u64 = 64 * MIB;
/// How long any single wait may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// Peak and current resident set of `pid`, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Asserts the server's peak RSS stayed under `bound` and prints both figures.
pub(crate) fn assert_memory(server: &Sessiond, scenario: &str, bound: u64) {
    let (peak, now) = memory(server.pid());
    println!(
        "{scenario}: peak RSS {:.1} MiB, now {:.1} MiB, bound {} MiB",
        peak as f64 / MIB as f64,
        now as f64 / MIB as f64,
        bound / MIB
    );
    assert!(
        peak < bound,
        "{scenario}: peak RSS {peak} bytes passed the bound of {bound}\n{}",
        server.log_tail()
    );
}

fn resp_addr(server: &Sessiond) -> SocketAddr {
    server.listener("resp").expect("a RESP listener")
}

/// A fresh client gets answers: the server is up and serving.
fn assert_serving(server: &Sessiond, password: Option<&str>) {
    let mut client = RespClient::connect(resp_addr(server));
    if let Some(pass) = password {
        client.ok(&["AUTH", pass]);
    }
    let pong = client.call(&["PING"]);
    assert_eq!(
        pong.value,
        Resp::Simple("PONG".into()),
        "{}",
        server.log_tail()
    );
}

/// A value with some structure, so a truncated or shifted copy does not compare equal.
fn value(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i / 7 + seed as usize) % 26) as u8)
        .collect()
}

/// A raw connection that the test writes to and (mostly) never reads from.
fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Reads until the server closes the connection (EOF or reset), keeping the first bytes;
/// fails if more than `max` bytes arrive first or the deadline passes.
fn read_to_close(stream: &mut TcpStream, max: u64) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0; 256 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return kept,
            Ok(n) => {
                total += n as u64;
                if kept.len() < 4096 {
                    kept.extend_from_slice(&buf[..n.min(4096 - kept.len())]);
                }
                assert!(
                    total <= max,
                    "{total} bytes and the connection is still open"
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return kept,
            Err(e) => panic!("waiting for the server to close the connection: {e}"),
        }
    }
}

/// `connected_clients` from `INFO clients`.
fn connected_clients(client: &mut RespClient) -> u64 {
    let reply = client.call(&["INFO", "clients"]);
    let Resp::Bulk(text) = &reply.value else {
        panic!("INFO clients: {reply}")
    };
    String::from_utf8_lossy(text)
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connected_clients in {reply}"))
}

/// Polls until only `client` itself is connected.
fn wait_until_alone(client: &mut RespClient) {
    let deadline = Instant::now() + DEADLINE;
    while connected_clients(client) > 1 {
        assert!(Instant::now() < deadline, "other connections stay open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The measurement: with 1 MB stored, `MGET` naming that key 4,000 times grew the
/// process to 2.6 GB. Now the 4 GB reply is measured, refused, and never built.
#[test]
fn mget_of_a_large_key_4000_times_is_refused() {
    let server = Sessiond::start(&["--max-memory", "16m"]);
    let mut client = RespClient::connect(resp_addr(&server));
    let big = value(1_000_000, 1);
    client.call_bytes(&[b"SET", b"big", &big]);
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(std::iter::repeat_n(&b"big"[..], 4000));
    let reply = client.call_bytes(&args);
    // `*4000`, then 4,000 × `$1000000\r\n…\r\n`.
    let len: u64 = 7 + 4000 * (1_000_000 + 12);
    assert_eq!(
        reply.value,
        Resp::Error(format!(
            "ERR reply of {len} bytes exceeds the output limit of {} bytes",
            32 * MIB
        ))
    );
    // The connection carries on, and what fits is still answered.
    let reply = client.call_bytes(&[b"MGET", b"big", b"big"]);
    assert_eq!(
        reply.value,
        Resp::Array(vec![Resp::Bulk(big.clone()), Resp::Bulk(big.clone())])
    );
    assert_serving(&server, None);
    assert_eq!(
        RespClient::connect(resp_addr(&server)).get("big"),
        Some(big)
    );
    assert_memory(&server, "MGET 4000 × 1 MB", 16 * MIB + 32 * MIB + BASE);
}

/// memcached's multi-get shares the stored values instead of copying them, but they still
/// count as pending output: a get of a 1 MB item 100 times is refused with memcached's own
/// error, and a get that fits is served.
#[test]
fn memcached_multi_get_past_the_output_limit_is_refused() {
    let server = Sessiond::start(&["--max-memory", "16m"]);
    let big = value(1_000_000, 2);
    let mut conn = raw(server.memcache_addr());
    conn.write_all(format!("set big 5 0 {}\r\n", big.len()).as_bytes())
        .unwrap();
    conn.write_all(&big).unwrap();
    conn.write_all(b"\r\n").unwrap();
    let mut stored = [0; 8];
    conn.read_exact(&mut stored).unwrap();
    assert_eq!(&stored, b"STORED\r\n");
    let mut mc = McClient::connect(server.memcache_addr());
    let keys = vec!["big"; 100].join(" ");
    assert_eq!(
        mc.command_line(&format!("get {keys}")),
        "SERVER_ERROR out of memory writing get response"
    );
    let item = mc.get("big").expect("big is stored");
    assert_eq!((item.flags, item.value), (5, big));
    assert_memory(
        &server,
        "memcached get 100 × 1 MB",
        16 * MIB + 32 * MIB + BASE,
    );
}

/// `HGETALL`, `HKEYS`, `HVALS`, `SMEMBERS`, `ZRANGEBYSCORE` and `KEYS` over collections
/// larger than the output limit (4 MiB here, to keep the data small: 6,000 elements of 1 KB
/// each) are refused before they are built; `SCAN` with a huge `COUNT` pages within the limit and still returns every key.
#[test]
fn huge_collection_reads_are_refused_or_paged() {
    let server = Sessiond::start(&["--max-memory", "48m", "--client-output-limit", "4m"]);
    let mut client = RespClient::connect(resp_addr(&server));
    let element = value(1000, 3);
    let (members, keys) = (6000, 20_000);
    for chunk in 0..members / 500 {
        let names: Vec<Vec<u8>> = (chunk * 500..(chunk + 1) * 500)
            .map(|i| format!("m{i:05}").into_bytes())
            .collect();
        let mut hset: Vec<&[u8]> = vec![b"HSET", b"hash"];
        let mut sadd: Vec<&[u8]> = vec![b"SADD", b"set"];
        let mut zadd: Vec<&[u8]> = vec![b"ZADD", b"zset"];
        let members: Vec<Vec<u8>> = names
            .iter()
            .map(|n| [n.as_slice(), b":", &element].concat())
            .collect();
        for member in &members {
            hset.extend([member.as_slice(), &element]);
            sadd.push(member);
            zadd.extend([&b"1"[..], member]);
        }
        for command in [hset, sadd, zadd] {
            let reply = client.call_bytes(&command);
            assert_eq!(reply.value, Resp::Int(500), "{}", server.log_tail());
        }
    }
    // Keys of 200 bytes: 20,000 of them make a KEYS reply of about 4.2 MB (and, with what
    // each element costs in memory while collected, more than the 4 MiB limit).
    let key = |i: usize| format!("{i:05}:{}", "k".repeat(194));
    for chunk in 0..keys / 1000 {
        let names: Vec<String> = (chunk * 1000..(chunk + 1) * 1000).map(key).collect();
        let mut mset: Vec<&[u8]> = vec![b"MSET"];
        for name in &names {
            mset.extend([name.as_bytes(), b"v"]);
        }
        assert_eq!(client.call_bytes(&mset).value, Resp::Simple("OK".into()));
    }
    let refused = Resp::Error(format!(
        "ERR reply exceeds the output limit of {} bytes",
        4 * MIB
    ));
    for command in [
        &["HGETALL", "hash"][..],
        &["HKEYS", "hash"],
        &["HVALS", "hash"],
        &["SMEMBERS", "set"],
        &["ZRANGEBYSCORE", "zset", "-inf", "+inf", "WITHSCORES"],
        &["KEYS", "*"],
    ] {
        assert_eq!(client.call(command).value, refused, "{command:?}");
    }
    // What fits is still served.
    match client
        .call(&["ZRANGEBYSCORE", "zset", "-inf", "+inf", "LIMIT", "0", "100"])
        .value
    {
        Resp::Array(items) => assert_eq!(items.len(), 100),
        other => panic!("ZRANGEBYSCORE … LIMIT 0 100: {other:?}"),
    }
    assert_eq!(
        client.call(&["HLEN", "hash"]).value,
        Resp::Int(members as i64)
    );
    assert_eq!(
        client
            .call_bytes(&[b"HGET", b"hash", &[&b"m00042:"[..], &element].concat()])
            .value,
        Resp::Bulk(element.clone())
    );

    // SCAN with a COUNT past the whole keyspace: several pages, each within the limit, and
    // every key at least once.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut pages = 0;
    loop {
        let reply = client.call(&["SCAN", &cursor, "COUNT", "100000000"]);
        assert!(
            reply.raw.len() as u64 <= 4 * MIB,
            "a page of {}",
            reply.raw.len()
        );
        let Resp::Array(parts) = reply.value else {
            panic!("SCAN: {reply}")
        };
        let (Resp::Bulk(next), Resp::Array(found)) = (&parts[0], &parts[1]) else {
            panic!("SCAN: {parts:?}")
        };
        for name in found {
            let Resp::Bulk(name) = name else {
                panic!("SCAN key {name:?}")
            };
            seen.insert(name.clone());
        }
        pages += 1;
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
        assert!(pages < 10_000, "SCAN does not end");
    }
    assert!(pages > 1, "one page held a reply larger than the limit");
    // The keyspace: the 20,000 keys plus the three collections.
    assert_eq!(seen.len(), keys + 3);
    assert!(seen.contains(key(12_345).as_bytes()));

    assert_serving(&server, None);
    assert_memory(&server, "collection reads", 48 * MIB + 4 * MIB + BASE);
}

/// The measurement: a subscriber that never reads pinned 1.5 GB after 1,500
/// publications of 1 MiB. Now its queue is bounded in bytes (`--pubsub-output-limit`, 32
/// MiB by default) and it is disconnected once it passes, although the server is blocked
/// writing to it.
#[test]
fn a_subscriber_that_never_reads_is_disconnected() {
    let server = Sessiond::start(&["--max-memory", "16m"]);
    let mut subscriber = raw(resp_addr(&server));
    subscriber
        .write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
        .unwrap();
    let confirmation = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
    let mut got = vec![0; confirmation.len()];
    subscriber.read_exact(&mut got).unwrap();
    assert_eq!(got, confirmation);
    // From here on the subscriber reads nothing.
    let mut publisher = RespClient::connect(resp_addr(&server));
    publisher.ok(&["SET", "kept", "as it was"]);
    let payload = value(1024 * 1024, 4);
    let mut delivered = 0;
    for _ in 0..1500 {
        match publisher.call_bytes(&[b"PUBLISH", b"news", &payload]).value {
            Resp::Int(1) => delivered += 1,
            Resp::Int(0) => {}
            other => panic!("PUBLISH: {other:?}"),
        }
    }
    println!("{delivered} publications queued for the subscriber before it was dropped");
    // Queued: at most the limit (32), plus what the socket buffers took.
    assert!(delivered < 1500, "the subscriber was never disconnected");
    // The subscriber sees what the kernel had buffered, then the end of the connection.
    read_to_close(&mut subscriber, 256 * MIB);
    assert_serving(&server, None);
    assert_eq!(publisher.get("kept").as_deref(), Some(&b"as it was"[..]));
    assert_memory(
        &server,
        "never-reading subscriber",
        16 * MIB + 32 * MIB + BASE,
    );
}

/// A client pipelines thousands of `GET`s of a 1 MB value and never reads: the server stops
/// executing once a few replies are pending, and the write timeout (1 s here, 30 s by
/// default) closes the connection.
#[test]
fn a_pipelining_client_that_never_reads_is_closed() {
    let server = Sessiond::start(&["--max-memory", "16m", "--write-timeout", "1"]);
    let mut client = RespClient::connect(resp_addr(&server));
    let big = value(1_000_000, 5);
    client.call_bytes(&[b"SET", b"big", &big]);
    let mut pipeline = Vec::new();
    for _ in 0..5000 {
        pipeline.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    let mut greedy = raw(resp_addr(&server));
    greedy.write_all(&pipeline).unwrap();
    // The server must have taken the connection on before "alone" means it closed it.
    let deadline = Instant::now() + DEADLINE;
    while connected_clients(&mut client) < 2 {
        assert!(
            Instant::now() < deadline,
            "the pipelining connection never registered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // 5,000 replies would be 5 GB; the server holds at most one and the high-water mark.
    wait_until_alone(&mut client);
    read_to_close(&mut greedy, 256 * MIB);
    assert_serving(&server, None);
    assert_eq!(client.get("big"), Some(big));
    assert_memory(&server, "pipelined GETs never read", 16 * MIB + BASE);
}

/// Before `AUTH`, requests are held to Redis's pre-auth limits: a huge bulk or argument count
/// is refused from its length line and the connection closed, a long inline line likewise;
/// after `AUTH` the ordinary limits apply.
#[test]
fn pre_auth_floods_are_refused_and_closed() {
    let password = "limits-secret";
    let server = Sessiond::start(&["--max-memory", "16m", "--requirepass", password]);
    let addr = resp_addr(&server);
    let cases: [(&[u8], &str); 3] = [
        (
            b"*2\r\n$4\r\nAUTH\r\n$100000\r\n",
            "-ERR Protocol error: unauthenticated bulk length\r\n",
        ),
        (
            b"*1000000\r\n",
            "-ERR Protocol error: unauthenticated multibulk length\r\n",
        ),
        (
            &[b'x'; 1 << 20],
            "-ERR Protocol error: too big inline request\r\n",
        ),
    ];
    // Many at once, each a flood of its kind (the data after the length line is sent too, as
    // a hostile client would).
    let mut floods = Vec::new();
    for round in 0..50 {
        let (request, _) = cases[round % cases.len()];
        let mut conn = raw(addr);
        // The server may close before everything is written; that is the point.
        let _ = conn.write_all(request);
        let _ = conn.write_all(&[b'y'; 256 * 1024]);
        floods.push((round, conn));
    }
    for (round, mut conn) in floods {
        let answer = read_to_close(&mut conn, MIB);
        let expected = cases[round % cases.len()].1;
        // A reset may overtake the error reply; when it arrives, it is the right one.
        assert!(
            answer.is_empty() || answer == expected.as_bytes(),
            "round {round}: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Within the limits, unauthenticated requests get NOAUTH, as before.
    let mut client = RespClient::connect(addr);
    let reply = client.call_bytes(&[b"SET", b"k", &[b'v'; 16 * 1024]]);
    assert_eq!(
        reply.value,
        Resp::Error("NOAUTH Authentication required.".into())
    );
    // Authenticated, a 1 MB value and eleven arguments are fine.
    client.ok(&["AUTH", password]);
    let big = value(1_000_000, 6);
    client.call_bytes(&[b"SET", b"big", &big]);
    let mut many: Vec<&[u8]> = vec![b"MGET"];
    many.extend(std::iter::repeat_n(&b"missing"[..], 11));
    assert!(matches!(client.call_bytes(&many).value, Resp::Array(a) if a.len() == 11));
    assert_serving(&server, Some(password));
    assert_eq!(client.get("big"), Some(big));
    assert_memory(&server, "pre-auth floods", 16 * MIB + BASE);
}

/// Two thousand connections that never authenticate: the RESP listener's budget
/// (`--max-connections`, 1024) refuses the excess while the memcached listener, which has its
/// own budget, keeps answering; the unauthenticated idle timeout (5 s here, 10 s by default)
/// closes the rest.
#[test]
fn thousands_of_idle_unauthenticated_connections() {
    let password = "limits-secret";
    let server = Sessiond::start(&[
        "--max-memory",
        "16m",
        "--requirepass",
        password,
        "--auth-idle-timeout",
        "5",
    ]);
    let addr = resp_addr(&server);
    let mut mc = McClient::connect(server.memcache_addr());
    // memcached's text login (the `default` user), then a write.
    let token = format!("default {password}");
    assert_eq!(
        mc.command_line(&format!("set login 0 0 {}\r\n{token}", token.len())),
        "STORED"
    );
    assert_eq!(mc.command_line("set kept 0 0 4\r\nsafe"), "STORED");
    // One authenticated connection watches; it takes one of the 1024 slots.
    let mut observer = RespClient::connect(addr);
    observer.ok(&["AUTH", password]);
    // Connected in batches, each waited for until the server has registered it, so the
    // listen queue (1024) never overflows: a dropped SYN would be retried a second later
    // and make the connections' ages, and so their timeouts, spread out.
    let mut idle: Vec<TcpStream> = Vec::new();
    while idle.len() < 1023 {
        let batch = (1023 - idle.len()).min(100);
        idle.extend((0..batch).map(|_| raw(addr)));
        let deadline = Instant::now() + DEADLINE;
        while connected_clients(&mut observer) < 1 + idle.len() as u64 {
            assert!(Instant::now() < deadline, "connections not registered");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The listener is full: every further connection is refused in Redis's words.
    for _ in 0..977 {
        let mut extra = raw(addr);
        let answer = read_to_close(&mut extra, 1024);
        assert_eq!(
            String::from_utf8_lossy(&answer),
            "-ERR max number of clients reached\r\n"
        );
    }
    // The memcached port is not starved by the RESP port's connections.
    let item = mc.get("kept").expect("kept is stored");
    assert_eq!(item.value, b"safe");
    assert_memory(
        &server,
        "2000 idle unauthenticated connections",
        16 * MIB + BASE,
    );
    // Each idle connection is closed by the server, without a word.
    for conn in &mut idle {
        assert_eq!(read_to_close(conn, 1024), b"");
    }
    assert_eq!(connected_clients(&mut observer), 1);
    assert_serving(&server, Some(password));
    assert_eq!(mc.get("kept").expect("kept").value, b"safe");
}

/// A memcached `get` line of 16 MiB (eight million keys, one of them a hit) is served as it
/// streams in, and a `get` whose one key is 1 MiB long is refused with memcached's error;
/// neither line is ever held whole (the decoder keeps one 64 KiB window), and the
/// connection goes on serving. A meta line with a 2 GB data length is refused at once.
#[test]
fn memcached_get_lines_of_any_length_are_streamed() {
    let server = Sessiond::start(&["--max-memory", "16m"]);
    let mut conn = raw(server.memcache_addr());
    conn.write_all(b"set hit 0 0 1\r\nx\r\n").unwrap();
    let mut stored = [0; 8];
    conn.read_exact(&mut stored).unwrap();
    assert_eq!(&stored, b"STORED\r\n");
    let misses = "m ".repeat(1 << 20);
    conn.write_all(b"get ").unwrap();
    for _ in 0..8 {
        conn.write_all(misses.as_bytes()).unwrap();
    }
    conn.write_all(b"hit\r\nget ").unwrap();
    conn.write_all(&vec![b'k'; 1 << 20]).unwrap();
    conn.write_all(b"\r\nms big 2000000000 T0\r\nversion\r\n")
        .unwrap();
    let expected = "VALUE hit 0 1\r\nx\r\nEND\r\n\
                    CLIENT_ERROR bad command line format\r\n\
                    SERVER_ERROR object too large for cache\r\n";
    let mut reply = vec![0; expected.len()];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(String::from_utf8_lossy(&reply), expected);
    // The rest of the 2 GB block would be swallowed; a fresh client is served meanwhile.
    let mut mc = McClient::connect(server.memcache_addr());
    assert_eq!(mc.get("hit").map(|i| i.value), Some(b"x".to_vec()));
    assert_memory(&server, "16 MiB get line", 16 * MIB + BASE);
}
