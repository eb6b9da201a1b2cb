//! Keyspace notifications set at start (`--notify-keyspace-events`) and raised by
//! memcached-protocol writes: a RESP subscriber sees a memcached text or binary write to
//! database 0 as the events Redis raises for the RESP command that makes the same change
//! (`set`, `expire`, `append`, `incrby`, `del`, …), before and after a restart, and sees
//! php-memcached's session write and `session_destroy()`. An unknown event letter refuses to
//! start.
//!
//! This is sessiond's own property (no reference server speaks both protocols), so it always
//! runs against sessiond, whatever `SESSIOND_IT_TARGET` says. No timing is asserted: each
//! event is read as it comes, with a generous read timeout only so that a missing one fails
//! instead of hanging. That no other event came is proven by a marker written last: events
//! reach a subscriber in the order they were published, so anything unexpected would arrive
//! before the marker's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use sessiond_proto_memcache::Command as McCommand;
use sessiond_proto_memcache::binary::{self, BinaryRequest, opcode, status};
use sessiond_proto_memcache::{ArithMode, StoreMode};
use sessiond_test_harness::{
    IO_TIMEOUT, McClient, Resp, RespClient, Sessiond, TempDir, run_with_timeout, sessiond_binary,
    unique,
};

use crate::php::{Php, id, php_with, write_session};
use crate::php_memcached::data_key;

/// How long a subscriber waits for an event before the test fails; generous, so a loaded
/// machine never fails it, and only there so that a missing event cannot hang the test.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The flags the servers start with: every class, on both channels.
const FLAGS: &str = "KEA";

/// A RESP connection subscribed to keyspace notifications, reading them one by one.
struct Events {
    client: RespClient,
    /// Keyevent messages about keys starting with this are skipped (a key whose keyspace
    /// channel is not subscribed, such as php-memcached's lock key).
    ignored: Option<String>,
}

impl Events {
    /// Subscribes to the keyspace channels of the keys starting with `prefix` and to every
    /// keyevent channel of database 0.
    fn subscribe(resp: SocketAddr, prefix: &str) -> Events {
        let mut client = RespClient::connect(resp);
        let keyspace = format!("__keyspace@0__:{prefix}*");
        client.send(&[b"PSUBSCRIBE", keyspace.as_bytes(), b"__keyevent@0__:*"]);
        for (n, pattern) in [keyspace.as_str(), "__keyevent@0__:*"].iter().enumerate() {
            let reply = client.read();
            let want = Resp::Array(vec![
                Resp::Bulk(b"psubscribe".to_vec()),
                Resp::Bulk(pattern.as_bytes().to_vec()),
                Resp::Int(n as i64 + 1),
            ]);
            assert_eq!(reply.value, want, "PSUBSCRIBE confirmation: got {reply}");
        }
        client.set_read_timeout(EVENT_TIMEOUT);
        Events {
            client,
            ignored: None,
        }
    }

    /// The next message, (channel, payload), but for ignored ones.
    fn next(&mut self, expected: &str) -> (String, String) {
        loop {
            let (channel, payload) = self.next_any(expected);
            let ignored = self.ignored.as_deref().is_some_and(|prefix| {
                channel.starts_with("__keyevent@0__:") && payload.starts_with(prefix)
            });
            if !ignored {
                return (channel, payload);
            }
        }
    }

    fn next_any(&mut self, expected: &str) -> (String, String) {
        let reply = self.client.try_read().unwrap_or_else(|e| {
            panic!("no message within {EVENT_TIMEOUT:?} ({e}); expected {expected}")
        });
        match &reply.value {
            Resp::Array(items) => match &items[..] {
                [
                    Resp::Bulk(kind),
                    Resp::Bulk(_pattern),
                    Resp::Bulk(channel),
                    Resp::Bulk(payload),
                ] if kind == b"pmessage" => {
                    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    (text(channel), text(payload))
                }
                _ => panic!("expected a pmessage, got {reply}; expected {expected}"),
            },
            _ => panic!("expected a pmessage array, got {reply}; expected {expected}"),
        }
    }

    /// Asserts the next event is `event` on `key`: its keyspace message, then its keyevent
    /// message (the order one publication makes them in).
    fn expect(&mut self, key: &str, event: &str, after: &str) {
        let what = format!("`{event}` on {key} after {after}");
        assert_eq!(
            self.next(&what),
            (format!("__keyspace@0__:{key}"), event.to_string()),
            "keyspace message of {what}"
        );
        assert_eq!(
            self.next(&what),
            (format!("__keyevent@0__:{event}"), key.to_string()),
            "keyevent message of {what}"
        );
    }
}

/// A raw memcached binary connection.
struct Bin {
    stream: TcpStream,
    buf: BytesMut,
    opaque: u32,
}

impl Bin {
    fn connect(addr: SocketAddr) -> Bin {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connecting");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Bin {
            stream,
            buf: BytesMut::new(),
            opaque: 0,
        }
    }

    /// Sends `command` under `opcode`; a quiet opcode gets no reply when it succeeds.
    fn send(&mut self, opcode: u8, command: McCommand, quiet: bool) {
        self.opaque += 1;
        let request = BinaryRequest {
            opcode,
            opaque: self.opaque,
            command,
            quiet,
            return_key: false,
        };
        let mut out = BytesMut::new();
        binary::encode_request(&request, &mut out);
        self.stream.write_all(&out).expect("writing");
    }

    /// Sends `command` and returns the status of its reply. A quiet command is followed by a
    /// NOOP, whose reply proves the quiet one ran (and succeeded: a failure would answer
    /// before the NOOP's).
    fn call(&mut self, opcode: u8, command: McCommand, quiet: bool) -> u16 {
        self.send(opcode, command, quiet);
        if quiet {
            self.send(opcode::NOOP, McCommand::Noop, false);
        }
        loop {
            if let Some(response) = binary::decode_response(&mut self.buf).expect("well-formed") {
                assert_eq!(response.opaque, self.opaque, "a reply to a quiet command");
                return response.status;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed the binary connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading a binary response: {e}"),
            }
        }
    }

    fn set(&mut self, key: &str, exptime: i64, quiet: bool) -> u16 {
        let command = McCommand::Store {
            mode: StoreMode::Set,
            key: key.as_bytes().to_vec().into(),
            flags: 0,
            exptime,
            value: b"v".to_vec().into(),
            cas: 0,
        };
        let op = if quiet { opcode::SETQ } else { opcode::SET };
        self.call(op, command, quiet)
    }
}

/// `CONFIG GET notify-keyspace-events` over RESP2.
fn notify_setting(resp: SocketAddr) -> String {
    let reply = RespClient::connect(resp).call(&["CONFIG", "GET", "notify-keyspace-events"]);
    match &reply.value {
        Resp::Array(items) => match &items[..] {
            [Resp::Bulk(name), Resp::Bulk(value)] if name == b"notify-keyspace-events" => {
                String::from_utf8_lossy(value).into_owned()
            }
            _ => panic!("CONFIG GET notify-keyspace-events: {reply}"),
        },
        _ => panic!("CONFIG GET notify-keyspace-events: {reply}"),
    }
}

/// Writes `marker` over RESP and expects its `set` as the next event: nothing else was
/// published since the last event checked.
fn expect_nothing_more(resp: SocketAddr, events: &mut Events, marker: &str, after: &str) {
    RespClient::connect(resp).ok(&["SET", marker, "end"]);
    events.expect(marker, "set", &format!("{after} (and nothing else)"));
}

/// Sends a text command and its data block, and returns the one-line reply.
fn store(mc: &mut McClient, line: &str, data: &str) -> String {
    mc.command_line(&format!("{line} {}\r\n{data}", data.len()))
}

/// Reads a text retrieval reply up to `END` and returns the keys of its hits.
fn retrieval(mc: &mut McClient, line: &str) -> Vec<String> {
    mc.send(format!("{line}\r\n").as_bytes());
    let mut keys = Vec::new();
    loop {
        let reply = mc.read_raw_line().expect("reading a retrieval reply");
        let reply = String::from_utf8_lossy(&reply).trim_end().to_string();
        match reply.split(' ').collect::<Vec<_>>()[..] {
            ["END"] => return keys,
            ["VALUE", key, ..] => {
                keys.push(key.to_string());
                mc.read_raw_line().expect("reading a value");
            }
            _ => panic!("{line}: unexpected reply line {reply:?}"),
        }
    }
}

fn start(data: &str) -> (Sessiond, SocketAddr, SocketAddr) {
    let server = Sessiond::start(&["--data-dir", data, "--notify-keyspace-events", FLAGS]);
    let resp = server.listener("resp").unwrap_or_else(|| {
        panic!(
            "sessiond printed no `listening resp` line\n{}",
            server.log_tail()
        )
    });
    let mc = server.memcache_addr();
    (server, mc, resp)
}

#[test]
fn memcached_writes_raise_keyspace_events_across_a_restart() {
    let dir = TempDir::new("mcevents");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let data = data.to_str().unwrap().to_string();
    let (mut server, mc_addr, resp) = start(&data);
    println!("scenario memcached keyspace events: sessiond memcache {mc_addr}, RESP {resp}");
    // Redis's canonical spelling of KEA.
    assert_eq!(notify_setting(resp), "AKE", "the flag given at start");

    let tag = unique("mcev");
    let k = |name: &str| format!("{tag}:{name}");
    let mut events = Events::subscribe(resp, &tag);
    let mut mc = McClient::connect(mc_addr);

    // Text protocol.
    assert_eq!(
        store(&mut mc, &format!("set {} 0 0", k("a")), "1"),
        "STORED"
    );
    events.expect(&k("a"), "set", "text set");
    assert_eq!(
        store(&mut mc, &format!("set {} 0 100", k("b")), "x"),
        "STORED"
    );
    events.expect(&k("b"), "set", "text set with an exptime");
    events.expect(&k("b"), "expire", "text set with an exptime");
    // A refused write raises nothing (checked by the next event being the append's).
    assert_eq!(
        store(&mut mc, &format!("add {} 0 0", k("a")), "2"),
        "NOT_STORED"
    );
    assert_eq!(
        store(&mut mc, &format!("append {} 0 0", k("a")), "0"),
        "STORED"
    );
    events.expect(&k("a"), "append", "text append (after a refused add)");
    assert_eq!(mc.command_line(&format!("incr {} 5", k("a"))), "15");
    events.expect(&k("a"), "incrby", "text incr");
    assert_eq!(mc.command_line(&format!("decr {} 3", k("a"))), "12");
    events.expect(&k("a"), "decrby", "text decr");
    assert_eq!(mc.command_line(&format!("touch {} 100", k("a"))), "TOUCHED");
    events.expect(&k("a"), "expire", "text touch");
    assert_eq!(
        retrieval(
            &mut mc,
            &format!("gat 200 {} {} {}", k("a"), k("none"), k("b"))
        ),
        [k("a"), k("b")]
    );
    events.expect(&k("a"), "expire", "text gat");
    events.expect(&k("b"), "expire", "text gat");
    assert_eq!(mc.command_line(&format!("delete {}", k("b"))), "DELETED");
    events.expect(&k("b"), "del", "text delete");
    assert_eq!(mc.command_line(&format!("delete {}", k("b"))), "NOT_FOUND");
    assert_eq!(mc.command_line(&format!("touch {} -1", k("a"))), "TOUCHED");
    events.expect(
        &k("a"),
        "del",
        "text touch into the past (after a delete miss)",
    );
    assert_eq!(mc.command_line("flush_all"), "OK");
    expect_nothing_more(resp, &mut events, &k("marker1"), "flush_all");

    // Binary protocol, plain and quiet.
    let mut bin = Bin::connect(mc_addr);
    assert_eq!(bin.set(&k("c"), 0, false), status::OK);
    events.expect(&k("c"), "set", "binary SET");
    assert_eq!(bin.set(&k("d"), 100, true), status::OK);
    events.expect(&k("d"), "set", "binary SETQ with an exptime");
    events.expect(&k("d"), "expire", "binary SETQ with an exptime");
    let incr = McCommand::Arith {
        mode: ArithMode::Incr,
        key: k("n").into_bytes().into(),
        delta: 1,
        initial: Some((7, 0)),
    };
    assert_eq!(bin.call(opcode::INCREMENT, incr, false), status::OK);
    events.expect(&k("n"), "incrby", "binary INCREMENT creating the counter");
    let touch = McCommand::Touch {
        key: k("c").into_bytes().into(),
        exptime: 100,
    };
    assert_eq!(bin.call(opcode::TOUCH, touch, false), status::OK);
    events.expect(&k("c"), "expire", "binary TOUCH");
    let delete = |key: String| McCommand::Delete {
        key: key.into_bytes().into(),
        cas: 0,
    };
    assert_eq!(bin.call(opcode::DELETEQ, delete(k("d")), true), status::OK);
    events.expect(&k("d"), "del", "binary DELETEQ");
    // A key that must outlive the restart.
    assert_eq!(bin.set(&k("kept"), 0, false), status::OK);
    events.expect(&k("kept"), "set", "binary SET");
    expect_nothing_more(resp, &mut events, &k("marker2"), "the binary writes");
    drop((events, mc, bin));

    // A crash and a restart with the same flag: notifications are on without CONFIG SET.
    server.kill();
    let (_server, mc_addr, resp) = start(&data);
    println!("  restarted: memcache {mc_addr}, RESP {resp}");
    assert_eq!(notify_setting(resp), "AKE", "the flag given at restart");
    let mut events = Events::subscribe(resp, &tag);
    let mut mc = McClient::connect(mc_addr);
    assert_eq!(mc.command_line(&format!("delete {}", k("kept"))), "DELETED");
    events.expect(&k("kept"), "del", "text delete after the restart");
    let mut bin = Bin::connect(mc_addr);
    assert_eq!(bin.set(&k("e"), 0, false), status::OK);
    events.expect(&k("e"), "set", "binary SET after the restart");
    expect_nothing_more(
        resp,
        &mut events,
        &k("marker3"),
        "the writes after the restart",
    );
    println!("  text, binary and quiet writes raised their events, before and after a restart");
}

/// php-memcached's session handler: the write at the end of a request is a `set` with the
/// session lifetime (`set`, `expire` on `memc.sess.key.<id>`), and `session_destroy()` a
/// `delete` (`del`).
#[test]
fn php_memcached_session_write_and_destroy_are_published() {
    let server = Sessiond::start(&["--notify-keyspace-events", FLAGS]);
    let resp = server.listener("resp").expect("a RESP listener");
    let mc = server.memcache_addr();
    println!("scenario php-memcached keyspace events: sessiond memcache {mc}, RESP {resp}");
    let php = Php::new(
        php_with("memcached", "php-memcached"),
        "memcached",
        &mc.to_string(),
    )
    .with("memcached.sess_prefix", "memc.sess.key.")
    .with("memcached.sess_locking", "1")
    .with("memcached.sess_binary_protocol", "1");
    let sid = unique("pe");
    let key = data_key(&sid);
    // The data key's channel (not the lock key's), and the keyevent channels but for the
    // lock key's events.
    let mut events = Events::subscribe(resp, &key);
    events.ignored = Some(format!("memc.sess.key.lock.{sid}"));

    write_session(&php, "php-memcached writer", &sid, &[("user", b"alice")]);
    events.expect(&key, "set", "the session write");
    events.expect(&key, "expire", "the session write");
    let run = php.run(
        "php-memcached destroyer",
        &[id(&sid), "start".into(), "destroy".into()],
    );
    assert_eq!(run.nth("destroyed", 0), ["1"], "session_destroy() failed");
    events.expect(&key, "del", "session_destroy()");
    // Nothing else on the session key: the marker, published last, is next.
    let channel = format!("__keyspace@0__:{key}");
    RespClient::connect(resp).call(&["PUBLISH", &channel, "end"]);
    assert_eq!(
        events.next("the marker"),
        (channel, "end".to_string()),
        "an unexpected event on {key}"
    );
    println!("  {key}: set, expire on write; del on session_destroy()");
}

/// An unknown letter in `--notify-keyspace-events` (or its environment variable) refuses to
/// start, naming the option and the letter.
#[test]
fn unknown_notify_keyspace_events_letters_refuse_to_start() {
    let dir = TempDir::new("badnotify");
    for (args, env) in [
        (vec!["--notify-keyspace-events", "KEQ"], None),
        (vec![], Some("KEQ")),
    ] {
        let mut cmd = Command::new(sessiond_binary());
        cmd.args([
            "--memcache-listen",
            "127.0.0.1:0",
            "--resp-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(&args);
        if let Some(value) = env {
            cmd.env("SESSIOND_NOTIFY_KEYSPACE_EVENTS", value);
        }
        let out = run_with_timeout("sessiond with bad notify flags", &mut cmd, IO_TIMEOUT);
        assert!(!out.status.success(), "sessiond started: {}", out.stdout);
        assert!(!out.stdout.contains("ready"), "{}", out.stdout);
        for words in ["--notify-keyspace-events", "'Q'"] {
            assert!(
                out.stderr.contains(words),
                "the refusal does not say {words:?}: {}",
                out.stderr
            );
        }
        println!("  refused: {}", out.stderr.trim());
    }
}

/// Meta writes raise the events of the classic commands they stand for; refused ones and
/// reads raise none.
#[test]
fn meta_writes_raise_keyspace_events() {
    let dir = TempDir::new("mcmeta");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (_server, mc_addr, resp) = start(data.to_str().unwrap());
    let tag = unique("meta");
    let k = |name: &str| format!("{tag}:{name}");
    let mut events = Events::subscribe(resp, &tag);
    let mut mc = McClient::connect(mc_addr);
    let ask = |mc: &mut McClient, line: String| mc.command_line(&line);

    assert_eq!(ask(&mut mc, format!("ms {} 1 T100\r\nx", k("a"))), "HD");
    events.expect(&k("a"), "set", "ms with a TTL");
    events.expect(&k("a"), "expire", "ms with a TTL");
    assert_eq!(ask(&mut mc, format!("ms {} 1 ME\r\ny", k("a"))), "NS");
    assert_eq!(ask(&mut mc, format!("mg {} v", k("a"))), "VA 1");
    assert_eq!(mc.read_raw_line().unwrap(), b"x\r\n");
    assert_eq!(ask(&mut mc, format!("ms {} 1 MA\r\nz", k("a"))), "HD");
    events.expect(
        &k("a"),
        "append",
        "ms append (after a refused add and a read)",
    );
    assert_eq!(ask(&mut mc, format!("mg {} T200", k("a"))), "HD");
    events.expect(&k("a"), "expire", "mg with T");
    assert_eq!(ask(&mut mc, format!("ma {} N0 J5", k("n"))), "HD");
    events.expect(&k("n"), "incrby", "ma vivifying");
    assert_eq!(ask(&mut mc, format!("ma {} MD", k("n"))), "HD");
    events.expect(&k("n"), "decrby", "ma decr");
    assert_eq!(ask(&mut mc, format!("md {} I T30", k("a"))), "HD");
    events.expect(&k("a"), "expire", "md I with T");
    assert_eq!(ask(&mut mc, format!("md {}", k("a"))), "HD");
    events.expect(&k("a"), "del", "md");
    assert_eq!(ask(&mut mc, format!("md {}", k("a"))), "NF");
    expect_nothing_more(resp, &mut events, &k("marker"), "a missed md");
}
