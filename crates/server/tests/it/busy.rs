//! Redis's busy-script model against the real binary: a script past `busy-reply-threshold`
//! (`lua-time-limit`) makes every other RESP command answer `BUSY` at once, Redis's
//! `allow-busy` commands still run, `SCRIPT KILL` ends a script that has not written and
//! refuses one that has (`UNKILLABLE`), a transaction hit by `BUSY` is aborted with
//! `EXECABORT`, the hard cap (`--script-time-limit`) still ends any script, memcached clients
//! wait instead of failing, and a client flooding the server with commands and kills during
//! the busy state is answered without growing it. The allow-busy commands leave the keyspace
//! as the script sees it (`WATCH` reaps no key that expired since the script started), and
//! only scripts bring the busy state: a long transaction or multi-key command is waited for.
//!
//! Every wait is on an event: each script first publishes on a channel a subscriber listens
//! to, so the test knows the script holds the keyspace before it sends anything else, and a
//! command sent then is answered `BUSY` no later than the threshold (20 ms here). No
//! assertion is about time; the only real time spent is the hard cap of one test (1 s).

use std::io::{Read, Write};
use std::time::Duration;

use sessiond_test_harness::{McClient, Reply, Resp, RespClient, Sessiond};

use crate::limits::{BASE, MIB, assert_memory};

/// How long a client waits for a reply before the test fails instead of hanging.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// The channel the scripts announce themselves on.
const STARTED: &str = "busy-script-started";
/// Redis's text while a script runs past the threshold.
const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// What the caller of a killed script gets: Redis's text, then the script and its line.
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL... script: ";

/// Asserts `reply` is a killed script's error, at line 1 (every script here is one line).
fn assert_killed(reply: &Reply) {
    let text = error_text(reply);
    assert!(
        text.starts_with(KILLED) && text.ends_with(", on @user_script:1."),
        "expected the killed script's error, got {reply}"
    );
}

fn resp(server: &Sessiond) -> RespClient {
    let mut client = RespClient::connect(server.listener("resp").expect("RESP listener"));
    client.set_read_timeout(REPLY_TIMEOUT);
    client
}

fn error_text(reply: &Reply) -> &str {
    match &reply.value {
        Resp::Error(text) => text,
        _ => panic!("expected an error reply, got {reply}"),
    }
}

fn assert_busy(reply: &Reply, what: &str) {
    assert!(
        error_text(reply) == BUSY_SCRIPT,
        "{what}: expected BUSY, got {reply}"
    );
}

/// Sends `EVAL body numkeys keys…` on a new connection and returns it once the script runs
/// (it published on [`STARTED`], which it does first, before anything else).
fn start_script(server: &Sessiond, body: &str, keys: &[&str]) -> RespClient {
    let mut listener = resp(server);
    let confirmation = listener.call(&["SUBSCRIBE", STARTED]);
    assert!(
        matches!(&confirmation.value, Resp::Array(items) if items.len() == 3),
        "{confirmation}"
    );
    let script = format!("redis.call('publish', '{STARTED}', 'go') {body}");
    let numkeys = keys.len().to_string();
    let mut args: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), numkeys.as_bytes()];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let mut caller = resp(server);
    caller.send(&args);
    let message = listener.read();
    assert!(
        matches!(&message.value, Resp::Array(items) if items.first() == Some(&Resp::Bulk(b"message".to_vec()))),
        "{message}"
    );
    caller
}

#[test]
fn others_get_busy_allow_busy_commands_run_and_script_kill_ends_a_read_only_script() {
    let server = Sessiond::start(&["--script-time-limit", "60000"]);
    let mut admin = resp(&server);
    // Redis's suite sets the old name; both names are one setting.
    admin.ok(&["CONFIG", "SET", "lua-time-limit", "20"]);
    let threshold = admin.call(&["CONFIG", "GET", "busy-reply-threshold"]);
    assert_eq!(
        threshold
            .value
            .fields()
            .and_then(|f| f.get("busy-reply-threshold").cloned()),
        Some(Resp::Bulk(b"20".to_vec())),
        "{threshold}"
    );
    let bad = admin.call(&["CONFIG", "SET", "busy-reply-threshold", "-1"]);
    assert!(
        error_text(&bad).starts_with("ERR CONFIG SET failed"),
        "{bad}"
    );
    admin.ok(&["SET", "memc.sess.key.alice", "user_id|i:42;"]);
    assert_eq!(
        error_text(&admin.call(&["SCRIPT", "KILL"])),
        "NOTBUSY No scripts in execution right now."
    );

    let mut caller = start_script(&server, "local i = 0 while true do i = i + 1 end", &[]);

    // A memcached client (a PHP session handler) sends a read now: it waits, and is served
    // once the script ends (see below).
    let mut memcache = McClient::connect(server.memcache_addr());
    memcache.send(b"get memc.sess.key.alice\r\n");

    let mut other = resp(&server);
    assert_busy(&other.call(&["PING"]), "PING");
    assert_busy(&other.call(&["GET", "memc.sess.key.alice"]), "GET");
    assert_busy(&other.call(&["EVAL", "return 1", "0"]), "EVAL");
    assert_busy(&other.call(&["COPY", "a", "b"]), "a multi-key command");
    assert_busy(&other.call(&["FUNCTION", "STATS"]), "FUNCTION STATS");
    assert_busy(&other.call(&["FUNCTION", "KILL"]), "FUNCTION KILL");
    // Unknown commands and wrong arities are refused as such, as in Redis (those checks
    // come first).
    assert!(error_text(&other.call(&["NOSUCH"])).starts_with("ERR unknown command"));

    // Redis's allow-busy commands run.
    let hello = other.call(&["HELLO", "3"]);
    assert!(
        hello
            .value
            .fields()
            .is_some_and(|f| f.get("proto") == Some(&Resp::Int(3))),
        "{hello}"
    );
    assert_eq!(
        other
            .call(&["HELLO", "2"])
            .value
            .fields()
            .map(|f| f.get("proto").cloned()),
        Some(Some(Resp::Int(2)))
    );
    let auth = other.call(&["AUTH", "nobody-needs-one"]);
    assert!(!error_text(&auth).starts_with("BUSY"), "{auth}");
    other.ok(&["WATCH", "memc.sess.key.alice"]);
    other.ok(&["UNWATCH"]);
    other.ok(&["MULTI"]);
    other.ok(&["DISCARD"]);
    let mut leaving = resp(&server);
    assert_eq!(leaving.call(&["RESET"]).value, Resp::Simple("RESET".into()));
    leaving.ok(&["QUIT"]);

    // The kill: the script's caller gets Redis's error, everyone is served again.
    admin.ok(&["SCRIPT", "KILL"]);
    assert_killed(&caller.read());
    assert_eq!(other.call(&["PING"]).value, Resp::Simple("PONG".into()));
    let header = memcache.read_raw_line().expect("the memcached reply");
    assert_eq!(
        String::from_utf8_lossy(&header),
        "VALUE memc.sess.key.alice 0 13\r\n",
        "the memcached client waited through the busy state and was served"
    );
    assert_eq!(
        error_text(&admin.call(&["SCRIPT", "KILL"])),
        "NOTBUSY No scripts in execution right now.",
        "nothing runs any more"
    );

    // Killed even when the script catches errors, as Redis's suite checks.
    let mut caller = start_script(
        &server,
        "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
        &[],
    );
    assert_busy(&other.call(&["PING"]), "PING");
    admin.ok(&["SCRIPT", "KILL"]);
    assert_killed(&caller.read());
    // The killed scripts wrote nothing; the stored session is intact.
    assert_eq!(admin.call(&["DBSIZE"]).value, Resp::Int(1));
    assert_eq!(
        admin.get("memc.sess.key.alice").as_deref(),
        Some(&b"user_id|i:42;"[..])
    );
    // The caller's connection goes on.
    assert_eq!(caller.call(&["PING"]).value, Resp::Simple("PONG".into()));
    // INFO memory counts the scripts run (the refused EVAL was never cached).
    let info = admin.call(&["INFO", "memory"]);
    let info = info.value.text().unwrap_or_default();
    assert!(
        info.contains("\r\nnumber_of_cached_scripts:2\r\n"),
        "{info}"
    );
}

#[test]
fn a_script_that_wrote_is_unkillable_and_the_hard_cap_still_ends_it() {
    let server = Sessiond::start(&[
        "--script-time-limit",
        "1000",
        "--busy-reply-threshold",
        "20",
    ]);
    let mut caller = start_script(
        &server,
        "redis.call('set', KEYS[1], 'written') while true do end",
        &["k"],
    );
    let mut other = resp(&server);
    assert_busy(&other.call(&["PING"]), "PING");
    let unkillable = other.call(&["SCRIPT", "KILL"]);
    assert!(
        error_text(&unkillable).starts_with(
            "UNKILLABLE Sorry the script already executed write commands against the dataset."
        ),
        "{unkillable}"
    );
    assert_busy(&other.call(&["PING"]), "PING after the refused kill");
    // sessiond's hard cap ends it anyway, keeping its write (already journaled).
    assert_eq!(
        error_text(&caller.read()),
        "BUSY script exceeded the time limit (--script-time-limit) and was aborted"
    );
    assert_eq!(other.get("k").as_deref(), Some(&b"written"[..]));
    assert_eq!(other.call(&["PING"]).value, Resp::Simple("PONG".into()));
}

#[test]
fn a_transaction_hit_by_busy_is_aborted_as_redis_does() {
    let server = Sessiond::start(&[
        "--script-time-limit",
        "60000",
        "--busy-reply-threshold",
        "20",
    ]);
    let mut admin = resp(&server);
    admin.ok(&["SET", "xx", "1"]);

    // Queued before the script; EXEC during the busy state aborts with BUSY's text and
    // leaves the transaction.
    let mut tx = resp(&server);
    tx.ok(&["MULTI"]);
    assert_eq!(
        tx.call(&["INCR", "xx"]).value,
        Resp::Simple("QUEUED".into())
    );
    let mut caller = start_script(&server, "while true do end", &[]);
    assert_busy(&tx.call(&["INCR", "xx"]), "INCR inside MULTI");
    let aborted = tx.call(&["EXEC"]);
    assert!(
        error_text(&aborted).starts_with(&format!(
            "EXECABORT Transaction discarded because of: {BUSY_SCRIPT}"
        )),
        "{aborted}"
    );
    // No longer in MULTI: a new one opens (MULTI is allow-busy; nested, it would fail).
    tx.ok(&["MULTI"]);
    tx.ok(&["DISCARD"]);

    // MULTI during the busy state is allowed; a command refused with BUSY flags the
    // transaction, so its EXEC after the kill aborts.
    let mut tx2 = resp(&server);
    tx2.ok(&["MULTI"]);
    assert_busy(&tx2.call(&["INCR", "xx"]), "INCR inside MULTI");
    admin.ok(&["SCRIPT", "KILL"]);
    assert_killed(&caller.read());
    assert_eq!(
        tx2.call(&["INCR", "xx"]).value,
        Resp::Simple("QUEUED".into())
    );
    assert_eq!(
        error_text(&tx2.call(&["EXEC"])),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(
        tx2.call(&["PING", "asdf"]).value,
        Resp::Bulk(b"asdf".to_vec())
    );
    assert_eq!(
        tx.call(&["PING", "asdf"]).value,
        Resp::Bulk(b"asdf".to_vec())
    );
    // Neither transaction ran any of its commands.
    assert_eq!(admin.get("xx").as_deref(), Some(&b"1"[..]));

    // A script inside EXEC: the transaction holds the keyspace, the script makes it busy,
    // SCRIPT KILL ends the script, and EXEC's array carries the killed script's error
    // between the commands that ran.
    let mut listener = resp(&server);
    listener.call(&["SUBSCRIBE", STARTED]);
    let mut tx3 = resp(&server);
    tx3.ok(&["MULTI"]);
    assert_eq!(
        tx3.call(&["INCR", "xx"]).value,
        Resp::Simple("QUEUED".into())
    );
    let script = format!("redis.call('publish', '{STARTED}', 'go') while true do end");
    assert_eq!(
        tx3.call(&["EVAL", &script, "0"]).value,
        Resp::Simple("QUEUED".into())
    );
    assert_eq!(
        tx3.call(&["INCR", "xx"]).value,
        Resp::Simple("QUEUED".into())
    );
    tx3.send(&[b"EXEC"]);
    listener.read();
    assert_busy(
        &admin.call(&["GET", "xx"]),
        "GET while EXEC runs the script",
    );
    admin.ok(&["SCRIPT", "KILL"]);
    let exec = tx3.read();
    match &exec.value {
        Resp::Array(items) => {
            assert_eq!(items.len(), 3, "{exec}");
            assert_eq!(items[0], Resp::Int(2));
            assert!(
                matches!(&items[1], Resp::Error(text) if text.starts_with(KILLED)),
                "{exec}"
            );
            assert_eq!(items[2], Resp::Int(3));
        }
        _ => panic!("EXEC: {exec}"),
    }
}

#[test]
fn a_flood_of_commands_and_kills_during_the_busy_state_is_answered_within_bounds() {
    let server = Sessiond::start(&[
        "--script-time-limit",
        "60000",
        "--busy-reply-threshold",
        "20",
        "--max-memory",
        "16m",
    ]);
    let mut admin = resp(&server);
    admin.ok(&["SET", "k", "v"]);
    let mut caller = start_script(&server, "while true do end", &[]);

    // 20,000 pipelined commands (in rounds, so neither side's socket buffer fills), each
    // answered BUSY at once, none waiting on the script.
    let mut flood = resp(&server);
    let big = vec![b'x'; 4096];
    for _ in 0..40 {
        for i in 0..500 {
            match i % 4 {
                0 => flood.send(&[b"GET", b"k"]),
                1 => flood.send(&[b"SET", b"k", &big]),
                2 => flood.send(&[b"EVAL", b"return 1", b"0"]),
                _ => flood.send(&[b"MULTI"]),
            }
        }
        for i in 0..500 {
            let reply = flood.read();
            if i % 4 == 3 {
                // MULTI is allow-busy: the first opens a transaction, the others are nested.
                assert!(
                    reply.value == Resp::Simple("OK".into())
                        || error_text(&reply) == "ERR MULTI calls can not be nested",
                    "{reply}"
                );
            } else {
                assert_busy(&reply, "a flooded command");
            }
        }
    }
    // EXEC itself during the busy state: Redis's EXECABORT with BUSY's text.
    let aborted = flood.call(&["EXEC"]);
    assert!(
        error_text(&aborted).starts_with(&format!(
            "EXECABORT Transaction discarded because of: {BUSY_SCRIPT}"
        )),
        "{aborted}"
    );

    // A malformed request during the busy state: Redis's protocol error, that connection
    // closed, the server still busy for the rest.
    let mut raw = std::net::TcpStream::connect(server.listener("resp").expect("RESP listener"))
        .expect("connect");
    raw.set_read_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
    raw.write_all(b"*1\r\n$abc\r\n").expect("write");
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).expect("read until closed");
    assert!(
        answer.starts_with(b"-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_busy(
        &flood.call(&["GET", "k"]),
        "GET after the malformed request",
    );

    // Kills in a flood: the first ends the script, the rest find it stopping or gone.
    let mut killer = resp(&server);
    for _ in 0..1000 {
        killer.send(&[b"SCRIPT", b"KILL"]);
    }
    let mut killed = 0;
    for _ in 0..1000 {
        let reply = killer.read();
        match &reply.value {
            Resp::Simple(ok) if ok == "OK" => killed += 1,
            Resp::Error(text) if text == "NOTBUSY No scripts in execution right now." => {}
            _ => panic!("SCRIPT KILL: {reply}"),
        }
    }
    assert!(killed >= 1, "one kill at least landed");
    assert_killed(&caller.read());
    assert_eq!(
        admin.get("k").as_deref(),
        Some(&b"v"[..]),
        "no flooded SET ran"
    );
    assert_eq!(admin.call(&["PING"]).value, Resp::Simple("PONG".into()));
    assert_memory(&server, "busy flood", 16 * MIB + 64 * MIB + BASE);
}

#[test]
fn save_and_shutdown_are_refused_in_multi_and_shutdown_nosave_stops_a_busy_server() {
    let mut server = Sessiond::start(&[
        "--script-time-limit",
        "1000",
        "--busy-reply-threshold",
        "20",
    ]);
    let mut admin = resp(&server);
    // Redis's `no-multi` commands: refused inside MULTI, which aborts the transaction.
    admin.ok(&["MULTI"]);
    assert_eq!(
        admin.call(&["SET", "foo", "bar"]).value,
        Resp::Simple("QUEUED".into())
    );
    for command in ["SAVE", "SHUTDOWN"] {
        assert_eq!(
            error_text(&admin.call(&[command])),
            "ERR Command not allowed inside a transaction"
        );
    }
    assert_eq!(
        error_text(&admin.call(&["EXEC"])),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(admin.get("foo"), None);
    admin.ok(&["SAVE"]);
    assert_eq!(
        error_text(&admin.call(&["SHUTDOWN", "ABORT"])),
        "ERR No shutdown in progress."
    );
    assert_eq!(
        error_text(&admin.call(&["SHUTDOWN", "NOSAVE", "SAVE"])),
        "ERR syntax error"
    );

    // In the busy state SHUTDOWN needs NOSAVE, as in Redis; with it, the server stops: the
    // connection closes without a reply, the script still ends by the hard cap (its caller
    // is answered), and the process exits cleanly.
    let mut caller = start_script(
        &server,
        "redis.call('set', KEYS[1], 'written') while true do end",
        &["k"],
    );
    assert_busy(&admin.call(&["SHUTDOWN"]), "SHUTDOWN without NOSAVE");
    admin.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(admin.try_read().is_err(), "closed without a reply");
    assert_eq!(
        error_text(&caller.read()),
        "BUSY script exceeded the time limit (--script-time-limit) and was aborted"
    );
    let status = server
        .wait_exit(REPLY_TIMEOUT)
        .expect("sessiond exits after SHUTDOWN");
    assert!(status.success(), "{status}");
}

/// A published message as a subscriber receives it: (channel, payload).
fn message(reply: &Reply) -> (String, String) {
    match &reply.value {
        Resp::Array(items) if items.len() == 3 && items[0] == Resp::Bulk(b"message".to_vec()) => {
            match (&items[1], &items[2]) {
                (Resp::Bulk(channel), Resp::Bulk(payload)) => (
                    String::from_utf8_lossy(channel).into_owned(),
                    String::from_utf8_lossy(payload).into_owned(),
                ),
                _ => panic!("a message: {reply}"),
            }
        }
        _ => panic!("expected a message, got {reply}"),
    }
}

#[test]
fn allow_busy_commands_leave_the_keyspace_as_the_script_sees_it() {
    // WATCH runs without the gate beside the script, whose clock stands still at its start.
    // A key that expired since must not be reaped by WATCH (nor by any other allow-busy
    // command): that would take it from under the script, whose next read would miss it.
    const HOLD: &str = "busy-hold";
    let server = Sessiond::start(&[
        "--script-time-limit",
        "60000",
        "--busy-reply-threshold",
        "20",
    ]);
    let mut admin = resp(&server);
    // The script runs while this connection subscribes to HOLD; RESET (allow-busy) ends it.
    let mut hold = resp(&server);
    let confirmation = hold.call(&["SUBSCRIBE", HOLD]);
    assert!(
        matches!(&confirmation.value, Resp::Array(items) if items.len() == 3),
        "{confirmation}"
    );
    admin.ok(&["SET", "k", "v", "PX", "800"]);
    // The server read its clock before answering, so the deadline is no later than this.
    let deadline = std::time::SystemTime::now() + Duration::from_millis(801);
    let mut caller = start_script(
        &server,
        &format!(
            "local first = redis.call('get', KEYS[1]) \
             while redis.call('pubsub', 'numsub', '{HOLD}')[2] > 0 do end \
             return {{first or 'nil', redis.call('get', KEYS[1]) or 'nil'}}"
        ),
        &["k"],
    );
    // Past the deadline for everyone but the script.
    if let Ok(left) = deadline.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(left);
    }
    let mut other = resp(&server);
    assert_busy(&other.call(&["GET", "k"]), "GET");
    other.ok(&["WATCH", "k"]);
    other.ok(&["UNWATCH"]);
    other.ok(&["WATCH", "k"]);
    other.ok(&["MULTI"]);
    other.ok(&["DISCARD"]);
    other.ok(&["WATCH", "k"]);
    let auth = other.call(&["AUTH", "nobody-needs-one"]);
    assert!(!error_text(&auth).starts_with("BUSY"), "{auth}");
    assert!(other.call(&["HELLO", "2"]).value.fields().is_some());
    assert_busy(&other.call(&["FUNCTION", "STATS"]), "FUNCTION STATS");
    assert_busy(&other.call(&["FUNCTION", "KILL"]), "FUNCTION KILL");
    assert_busy(&other.call(&["SHUTDOWN"]), "SHUTDOWN without NOSAVE");
    assert_eq!(other.call(&["RESET"]).value, Resp::Simple("RESET".into()));
    // Let the script go on: it reads the key again, at its own time, and still finds it.
    assert_eq!(hold.call(&["RESET"]).value, Resp::Simple("RESET".into()));
    let reads = caller.read();
    assert_eq!(
        reads.value,
        Resp::Array(vec![Resp::Bulk(b"v".to_vec()), Resp::Bulk(b"v".to_vec())]),
        "the script's two reads (the first must find the key: the script starts well within \
         800 ms of the SET)"
    );
    // For everyone else the key has expired.
    assert_eq!(admin.get("k"), None);
}

#[test]
fn a_long_transaction_or_multi_key_command_is_waited_for_never_answered_busy() {
    // Redis answers BUSY only during scripts; phpredis or connect-redis would fail a request
    // answered BUSY because another client's EXEC or SUNIONSTORE took long. A threshold of
    // 1 ms, so that any transaction passes it.
    let server = Sessiond::start(&[
        "--script-time-limit",
        "60000",
        "--busy-reply-threshold",
        "1",
    ]);
    let mut admin = resp(&server);
    const MEMBERS: usize = 20_000;
    for batch in 0..MEMBERS / 1000 {
        let members: Vec<String> = (0..1000)
            .map(|i| format!("member-{}", batch * 1000 + i))
            .collect();
        let mut args = vec!["SADD", "big"];
        args.extend(members.iter().map(String::as_str));
        assert_eq!(admin.call(&args).value, Resp::Int(1000));
    }
    let mut listener = resp(&server);
    listener.call(&["SUBSCRIBE", STARTED]);
    let mut tx = resp(&server);
    tx.ok(&["MULTI"]);
    let queued = |reply: Reply| assert_eq!(reply.value, Resp::Simple("QUEUED".into()));
    queued(tx.call(&["PUBLISH", STARTED, "go"]));
    const UNIONS: usize = 20;
    for _ in 0..UNIONS {
        queued(tx.call(&["SUNIONSTORE", "copy", "big", "big"]));
    }
    tx.send(&[b"EXEC"]);
    // The transaction runs (it published first); others send a plain command and a
    // multi-key one meanwhile, and both wait for it.
    message(&listener.read());
    let mut plain = resp(&server);
    plain.send(&[b"PING"]);
    let mut multi_key = resp(&server);
    multi_key.send(&[b"SUNIONSTORE", b"copy2", b"big", b"big"]);
    assert_eq!(plain.read().value, Resp::Simple("PONG".into()));
    let members = Resp::Int(MEMBERS as i64);
    assert_eq!(multi_key.read().value, members);
    let exec = tx.read();
    match &exec.value {
        Resp::Array(items) => {
            assert_eq!(items.len(), 1 + UNIONS, "{exec}");
            assert_eq!(items[0], Resp::Int(1), "the subscriber heard it");
            assert!(items[1..].iter().all(|i| *i == members), "{exec}");
        }
        _ => panic!("EXEC: {exec}"),
    }
    // A script past the same threshold still makes others busy.
    let mut caller = start_script(&server, "while true do end", &[]);
    assert_busy(&plain.call(&["PING"]), "PING during a script");
    admin.ok(&["SCRIPT", "KILL"]);
    assert_killed(&caller.read());
}
