//! Redis streams against the real binary: redis-cli driving every stream command (the
//! expected output is Redis 7.0.15's, captured from redis-server); consumer groups through
//! deliveries, claims and acknowledgements; blocked `XREAD`/`XREADGROUP` woken by `XADD`
//! from another connection, `EXEC`, a script and `RENAME`, answered with Redis's errors when
//! their key or group goes away, and never blocking inside `MULTI`; hostile requests (IDs
//! at `u64::MAX`, malformed IDs, huge counts, a million-field entry, a consumer explosion,
//! replies past the output limit); streams across a `kill -9`, a journal rewrite and a
//! restart; and the keyspace commands (`COPY`, `RENAME`, `DUMP`/`RESTORE`, `TYPE`, `SCAN …
//! TYPE`). Idle times are set with `XCLAIM … TIME`/`IDLE`, never waited for. Every scenario
//! but the hostile and durability ones also holds against redis-server
//! (`SESSIOND_IT_TARGET=redis`).

use std::time::{Duration, Instant};

use sessiond_test_harness::{Resp, RespClient, RespServer, Sessiond, TempDir, unique};

use crate::redis_cli::{Expect, run_script};

fn bulk(text: &str) -> Resp {
    Resp::Bulk(text.as_bytes().to_vec())
}

fn bulks(items: &[&str]) -> Resp {
    Resp::Array(items.iter().map(|i| bulk(i)).collect())
}

/// `[id, [field, value, …]]`.
fn entry(id: &str, fields: &[&str]) -> Resp {
    Resp::Array(vec![bulk(id), bulks(fields)])
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

/// Sends a blocking command on a fresh connection and waits (bounded) until the server
/// has it blocked; the reply is read later from the returned client.
fn block(server: &RespServer, watcher: &mut RespClient, args: &[&str]) -> RespClient {
    let before = blocked_clients(watcher);
    let mut client = server.client(None);
    client.send(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(watcher) != before + 1 {
        assert!(Instant::now() < deadline, "{args:?} never blocked");
        std::thread::sleep(Duration::from_millis(5));
    }
    client
}

fn is_error(reply: &Resp, prefix: &str) -> bool {
    matches!(reply, Resp::Error(e) if e.starts_with(prefix))
}

const SCRIPT: &[(&str, Expect)] = &[
    ("XADD s 1-1 a 1", Expect::Lines(&["\"1-1\""])),
    ("XADD s 1-* b 2", Expect::Lines(&["\"1-2\""])),
    ("XADD s 5 c 3 d 4", Expect::Lines(&["\"5-0\""])),
    (
        "XADD s 5 x y",
        Expect::Error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ),
    ),
    (
        "XADD s 0-0 x y",
        Expect::Error("ERR The ID specified in XADD must be greater than 0-0"),
    ),
    ("XADD s NOMKSTREAM 7-0 e 5", Expect::Lines(&["\"7-0\""])),
    ("XADD nos NOMKSTREAM * e 5", Expect::Lines(&["(nil)"])),
    (
        "XADD s 7-x e 5",
        Expect::Error("ERR Invalid stream ID specified as stream command argument"),
    ),
    ("XADD s MAXLEN 4 8-0 f 6", Expect::Lines(&["\"8-0\""])),
    ("XLEN s", Expect::Lines(&["(integer) 4"])),
    (
        "XRANGE s - +",
        Expect::Lines(&[
            "1) 1) \"1-2\"",
            "   2) 1) \"b\"",
            "      2) \"2\"",
            "2) 1) \"5-0\"",
            "   2) 1) \"c\"",
            "      2) \"3\"",
            "      3) \"d\"",
            "      4) \"4\"",
            "3) 1) \"7-0\"",
            "   2) 1) \"e\"",
            "      2) \"5\"",
            "4) 1) \"8-0\"",
            "   2) 1) \"f\"",
            "      2) \"6\"",
        ]),
    ),
    (
        "XRANGE s (5-0 + COUNT 1",
        Expect::Lines(&["1) 1) \"7-0\"", "   2) 1) \"e\"", "      2) \"5\""]),
    ),
    (
        "XREVRANGE s + - COUNT 2",
        Expect::Lines(&[
            "1) 1) \"8-0\"",
            "   2) 1) \"f\"",
            "      2) \"6\"",
            "2) 1) \"7-0\"",
            "   2) 1) \"e\"",
            "      2) \"5\"",
        ]),
    ),
    (
        "XRANGE s (18446744073709551615-18446744073709551615 +",
        Expect::Error("ERR invalid start ID for the interval"),
    ),
    ("XDEL s 7-0 99-0", Expect::Lines(&["(integer) 1"])),
    ("XTRIM s MAXLEN 2", Expect::Lines(&["(integer) 1"])),
    (
        "XTRIM s LIMIT 5",
        Expect::Error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ),
    ),
    (
        "XTRIM s MAXLEN 1 LIMIT 1",
        Expect::Error("ERR syntax error, LIMIT cannot be used without the special ~ option"),
    ),
    (
        "XSETID s 1-0",
        Expect::Error("ERR The ID specified in XSETID is smaller than the target stream top item"),
    ),
    (
        "XSETID s 100-0 ENTRIESADDED 50 MAXDELETEDID 90-0",
        Expect::Lines(&["OK"]),
    ),
    (
        "XINFO STREAM s",
        Expect::Lines(&[
            " 1) \"length\"",
            " 2) (integer) 2",
            " 3) \"radix-tree-keys\"",
            " 4) (integer) 1",
            " 5) \"radix-tree-nodes\"",
            " 6) (integer) 2",
            " 7) \"last-generated-id\"",
            " 8) \"100-0\"",
            " 9) \"max-deleted-entry-id\"",
            "10) \"90-0\"",
            "11) \"entries-added\"",
            "12) (integer) 50",
            "13) \"recorded-first-entry-id\"",
            "14) \"5-0\"",
            "15) \"groups\"",
            "16) (integer) 0",
            "17) \"first-entry\"",
            "18) 1) \"5-0\"",
            "    2) 1) \"c\"",
            "       2) \"3\"",
            "       3) \"d\"",
            "       4) \"4\"",
            "19) \"last-entry\"",
            "20) 1) \"8-0\"",
            "    2) 1) \"f\"",
            "       2) \"6\"",
        ]),
    ),
    ("XGROUP CREATE s g 0", Expect::Lines(&["OK"])),
    (
        "XGROUP CREATE s g 0",
        Expect::Error("BUSYGROUP Consumer Group name already exists"),
    ),
    (
        "XGROUP CREATE nos g $",
        Expect::Error(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        ),
    ),
    ("XGROUP CREATE nos g $ MKSTREAM", Expect::Lines(&["OK"])),
    (
        "XGROUP CREATECONSUMER s g alice",
        Expect::Lines(&["(integer) 1"]),
    ),
    (
        "XGROUP CREATECONSUMER s g alice",
        Expect::Lines(&["(integer) 0"]),
    ),
    ("XADD s 200-0 h 8", Expect::Lines(&["\"200-0\""])),
    ("XADD s 201-0 i 9", Expect::Lines(&["\"201-0\""])),
    (
        "XREADGROUP GROUP g bob COUNT 1 STREAMS s >",
        Expect::Lines(&[
            "1) 1) \"s\"",
            "   2) 1) 1) \"5-0\"",
            "         2) 1) \"c\"",
            "            2) \"3\"",
            "            3) \"d\"",
            "            4) \"4\"",
        ]),
    ),
    (
        "XREADGROUP GROUP g bob STREAMS s 0",
        Expect::Lines(&[
            "1) 1) \"s\"",
            "   2) 1) 1) \"5-0\"",
            "         2) 1) \"c\"",
            "            2) \"3\"",
            "            3) \"d\"",
            "            4) \"4\"",
        ]),
    ),
    (
        "XREADGROUP GROUP g bob STREAMS s $",
        Expect::Error(
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
        ),
    ),
    (
        "XREADGROUP GROUP nog bob STREAMS s >",
        Expect::Error(
            "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option",
        ),
    ),
    (
        "XPENDING s g",
        Expect::Lines(&[
            "1) (integer) 1",
            "2) \"5-0\"",
            "3) \"5-0\"",
            "4) 1) 1) \"bob\"",
            "      2) \"1\"",
        ]),
    ),
    ("XACK s g 8-0 999-0", Expect::Lines(&["(integer) 0"])),
    // The key's type and group are looked up before the IDs are read.
    (
        "XACK s g 1-x",
        Expect::Error("ERR Invalid stream ID specified as stream command argument"),
    ),
    ("XACK s nog 1-x", Expect::Lines(&["(integer) 0"])),
    ("XACK nokey g 1-x", Expect::Lines(&["(integer) 0"])),
    // The XREAD family reads its IDs strictly: `-` and `+` are no IDs there.
    (
        "XREADGROUP GROUP g bob STREAMS s -",
        Expect::Error("ERR Invalid stream ID specified as stream command argument"),
    ),
    (
        "XREADGROUP GROUP g bob STREAMS s +",
        Expect::Error("ERR Invalid stream ID specified as stream command argument"),
    ),
    (
        "XINFO GROUPS s",
        Expect::Lines(&[
            "1)  1) \"name\"",
            "    2) \"g\"",
            "    3) \"consumers\"",
            "    4) (integer) 2",
            "    5) \"pending\"",
            "    6) (integer) 1",
            "    7) \"last-delivered-id\"",
            "    8) \"5-0\"",
            "    9) \"entries-read\"",
            "   10) (nil)",
            "   11) \"lag\"",
            "   12) (nil)",
        ]),
    ),
    ("XGROUP SETID s g 0 ENTRIESREAD 0", Expect::Lines(&["OK"])),
    (
        "XGROUP SETID s nog 0",
        Expect::Error("NOGROUP No such consumer group 'nog' for key name 's'"),
    ),
    (
        "XCLAIM s g alice 0 8-0 JUSTID",
        Expect::Lines(&["(empty array)"]),
    ),
    (
        "XPENDING s g - + 10 alice",
        Expect::Lines(&["(empty array)"]),
    ),
    (
        "XAUTOCLAIM s g carol 0 0 COUNT 10 JUSTID",
        Expect::Lines(&["1) \"0-0\"", "2) 1) \"5-0\"", "3) (empty array)"]),
    ),
    (
        "XGROUP DELCONSUMER s g carol",
        Expect::Lines(&["(integer) 1"]),
    ),
    ("XGROUP DESTROY s g", Expect::Lines(&["(integer) 1"])),
    ("XGROUP DESTROY s g", Expect::Lines(&["(integer) 0"])),
    (
        "XINFO CONSUMERS s nog",
        Expect::Error("NOGROUP No such consumer group 'nog' for key name 's'"),
    ),
    (
        "XREAD COUNT 1 STREAMS s 0",
        Expect::Lines(&[
            "1) 1) \"s\"",
            "   2) 1) 1) \"5-0\"",
            "         2) 1) \"c\"",
            "            2) \"3\"",
            "            3) \"d\"",
            "            4) \"4\"",
        ]),
    ),
    ("XREAD STREAMS s $", Expect::Lines(&["(nil)"])),
    (
        "XREAD STREAMS s +",
        Expect::Error("ERR Invalid stream ID specified as stream command argument"),
    ),
    (
        "XREAD BLOCK 0 STREAMS s -",
        Expect::Error("ERR Invalid stream ID specified as stream command argument"),
    ),
    (
        "XREAD STREAMS s",
        Expect::Error("ERR wrong number of arguments for 'xread' command"),
    ),
    ("SET str v", Expect::Lines(&["OK"])),
    (
        "XACK str g 1-x",
        Expect::Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ),
    (
        "XADD str 1 a 1",
        Expect::Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ),
    (
        "XRANGE str - +",
        Expect::Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ),
    (
        "XINFO STREAM str",
        Expect::Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ),
    ("TYPE s", Expect::Lines(&["stream"])),
    ("OBJECT ENCODING s", Expect::Lines(&["\"stream\""])),
    (
        "XINFO STREAM nos",
        Expect::Lines(&[
            " 1) \"length\"",
            " 2) (integer) 0",
            " 3) \"radix-tree-keys\"",
            " 4) (integer) 0",
            " 5) \"radix-tree-nodes\"",
            " 6) (integer) 1",
            " 7) \"last-generated-id\"",
            " 8) \"0-0\"",
            " 9) \"max-deleted-entry-id\"",
            "10) \"0-0\"",
            "11) \"entries-added\"",
            "12) (integer) 0",
            "13) \"recorded-first-entry-id\"",
            "14) \"0-0\"",
            "15) \"groups\"",
            "16) (integer) 1",
            "17) \"first-entry\"",
            "18) (nil)",
            "19) \"last-entry\"",
            "20) (nil)",
        ]),
    ),
    (
        "XADD s 18446744073709551615-18446744073709551615 z 1",
        Expect::Lines(&["\"18446744073709551615-18446744073709551615\""]),
    ),
    (
        "XADD s * z 2",
        Expect::Error(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ),
    ),
    (
        "XADD s 18446744073709551615-* z 2",
        Expect::Error(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ),
    ),
    (
        "XGROUP HELP",
        Expect::Lines(&[
            " 1) XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            " 2) CREATE <key> <groupname> <id|$> [option]",
            " 3)     Create a new consumer group. Options are:",
            " 4)     * MKSTREAM",
            " 5)       Create the empty stream if it does not exist.",
            " 6)     * ENTRIESREAD entries_read",
            " 7)       Set the group's entries_read counter (internal use).",
            " 8) CREATECONSUMER <key> <groupname> <consumer>",
            " 9)     Create a new consumer in the specified group.",
            "10) DELCONSUMER <key> <groupname> <consumer>",
            "11)     Remove the specified consumer.",
            "12) DESTROY <key> <groupname>",
            "13)     Remove the specified group.",
            "14) SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "15)     Set the current group ID and entries_read counter.",
            "16) HELP",
            "17)     Prints this help.",
        ]),
    ),
    (
        "XINFO HELP x",
        Expect::Error("ERR wrong number of arguments for 'xinfo|help' command"),
    ),
];

#[test]
fn redis_cli_runs_every_stream_command() {
    let server = RespServer::start();
    server.header("redis-cli streams");
    run_script(&server, &["-2"], SCRIPT);
}

#[test]
fn consumer_groups_deliver_claim_and_acknowledge() {
    let server = RespServer::start();
    server.header("stream consumer groups");
    let mut c = server.client(None);
    let key = unique("jobs");
    for i in 1..=5 {
        let id = format!("{i}-0");
        assert_eq!(c.call(&["XADD", &key, &id, "job", &id]).value, bulk(&id));
    }
    c.ok(&["XGROUP", "CREATE", &key, "workers", "0"]);
    // Two consumers share the new entries; NOACK delivers without a pending entry.
    let got = c
        .call(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            &key,
            ">",
        ])
        .value;
    assert_eq!(
        got,
        Resp::Array(vec![Resp::Array(vec![
            bulk(&key),
            Resp::Array(vec![
                entry("1-0", &["job", "1-0"]),
                entry("2-0", &["job", "2-0"])
            ]),
        ])])
    );
    c.call(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "bob",
        "COUNT",
        "1",
        "STREAMS",
        &key,
        ">",
    ]);
    c.call(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "bob",
        "NOACK",
        "COUNT",
        "1",
        "STREAMS",
        &key,
        ">",
    ]);
    let summary = c.call(&["XPENDING", &key, "workers"]).value;
    assert_eq!(
        summary,
        Resp::Array(vec![
            Resp::Int(3),
            bulk("1-0"),
            bulk("3-0"),
            Resp::Array(vec![bulks(&["alice", "2"]), bulks(&["bob", "1"])]),
        ])
    );
    // A history read starts after its ID, as every XREAD-family ID does.
    let after_first = c
        .call(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "STREAMS",
            &key,
            "1-0",
        ])
        .value;
    assert_eq!(
        after_first,
        Resp::Array(vec![Resp::Array(vec![
            bulk(&key),
            Resp::Array(vec![entry("2-0", &["job", "2-0"])]),
        ])])
    );
    // Alice's history read hands her entries again and counts the delivery.
    c.call(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "alice",
        "STREAMS",
        &key,
        "0",
    ]);
    let pending = c
        .call(&["XPENDING", &key, "workers", "-", "+", "10", "alice"])
        .value;
    let Resp::Array(rows) = pending else {
        panic!("{pending:?}")
    };
    assert_eq!(rows.len(), 2);
    // 1-0 delivered twice, 2-0 three times (the read after 1-0 counted too).
    let counts: Vec<Resp> = rows
        .iter()
        .map(|r| match r {
            Resp::Array(f) => f[3].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(counts, [Resp::Int(2), Resp::Int(3)]);
    // Claims: an entry made idle for a day (TIME in the past) moves to carol; one delivered
    // just now is not idle long enough.
    let day_ago = {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        (now - 86_400_000).to_string()
    };
    c.call(&[
        "XCLAIM", &key, "workers", "bob", "0", "1-0", "TIME", &day_ago, "JUSTID",
    ]);
    let claimed = c
        .call(&["XCLAIM", &key, "workers", "carol", "3600000", "1-0", "2-0"])
        .value;
    assert_eq!(claimed, Resp::Array(vec![entry("1-0", &["job", "1-0"])]));
    // XAUTOCLAIM sweeps the rest to dave, and reports a deleted entry's pending ID.
    assert_eq!(c.call(&["XDEL", &key, "2-0"]).value, Resp::Int(1));
    let auto = c
        .call(&[
            "XAUTOCLAIM",
            &key,
            "workers",
            "dave",
            "0",
            "0",
            "COUNT",
            "10",
        ])
        .value;
    assert_eq!(
        auto,
        Resp::Array(vec![
            bulk("0-0"),
            Resp::Array(vec![
                entry("1-0", &["job", "1-0"]),
                entry("3-0", &["job", "3-0"])
            ]),
            bulks(&["2-0"]),
        ])
    );
    assert_eq!(
        c.call(&["XACK", &key, "workers", "1-0", "3-0", "9-0"])
            .value,
        Resp::Int(2)
    );
    let groups = c.call(&["XINFO", "GROUPS", &key]).value;
    let Resp::Array(groups) = groups else {
        panic!("{groups:?}")
    };
    let fields = groups[0].fields().expect("a group map");
    assert_eq!(fields["pending"], Resp::Int(0));
    assert_eq!(fields["last-delivered-id"], bulk("4-0"));
    assert_eq!(fields["consumers"], Resp::Int(4));
    // DELCONSUMER answers how many were pending; DESTROY removes the group.
    assert_eq!(
        c.call(&["XGROUP", "DELCONSUMER", &key, "workers", "alice"])
            .value,
        Resp::Int(0)
    );
    assert_eq!(
        c.call(&["XGROUP", "DESTROY", &key, "workers"]).value,
        Resp::Int(1)
    );
    assert!(is_error(
        &c.call(&["XREADGROUP", "GROUP", "workers", "x", "STREAMS", &key, ">"])
            .value,
        "NOGROUP"
    ));
}

#[test]
fn blocked_stream_reads_are_woken_by_any_source_and_answer_redis_errors() {
    let server = RespServer::start();
    server.header("blocking XREAD/XREADGROUP");
    let mut writer = server.client(None);
    let key = unique("events");
    writer.call(&["XADD", &key, "1-0", "a", "1"]);

    // XREAD $ waits for the next entry, added by another connection.
    let mut reader = block(
        &server,
        &mut writer,
        &["XREAD", "BLOCK", "0", "STREAMS", &key, "$"],
    );
    writer.call(&["XADD", &key, "2-0", "b", "2"]);
    assert_eq!(
        reader.read().value,
        Resp::Array(vec![Resp::Array(vec![
            bulk(&key),
            Resp::Array(vec![entry("2-0", &["b", "2"])]),
        ])])
    );

    // Woken by EXEC and by a script.
    let mut reader = block(
        &server,
        &mut writer,
        &["XREAD", "BLOCK", "0", "STREAMS", &key, "2-0"],
    );
    writer.ok(&["MULTI"]);
    writer.call(&["XADD", &key, "3-0", "c", "3"]);
    writer.call(&["EXEC"]);
    assert_eq!(
        reader.read().value,
        Resp::Array(vec![Resp::Array(vec![
            bulk(&key),
            Resp::Array(vec![entry("3-0", &["c", "3"])]),
        ])])
    );
    let mut reader = block(
        &server,
        &mut writer,
        &["XREAD", "BLOCK", "0", "STREAMS", &key, "$"],
    );
    writer.call(&[
        "EVAL",
        "return redis.call('XADD', KEYS[1], '4-0', 'd', '4')",
        "1",
        &key,
    ]);
    assert!(matches!(reader.read().value, Resp::Array(v) if v.len() == 1));

    // RENAME onto the key wakes a group reader with the data.
    let other = unique("other");
    writer.call(&["XADD", &other, "9-0", "z", "9"]);
    writer.ok(&["XGROUP", "CREATE", &other, "g", "0"]);
    writer.ok(&["XGROUP", "CREATE", &key, "g", "$"]);
    let mut reader = block(
        &server,
        &mut writer,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            &key,
            ">",
        ],
    );
    writer.ok(&["RENAME", &other, &key]);
    assert_eq!(
        reader.read().value,
        Resp::Array(vec![Resp::Array(vec![
            bulk(&key),
            Resp::Array(vec![entry("9-0", &["z", "9"])]),
        ])])
    );

    // The group destroyed, or the key deleted, under a blocked group reader.
    let mut reader = block(
        &server,
        &mut writer,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            &key,
            ">",
        ],
    );
    writer.call(&["XGROUP", "DESTROY", &key, "g"]);
    assert!(is_error(&reader.read().value, "NOGROUP"));
    writer.ok(&["XGROUP", "CREATE", &key, "g", "$"]);
    let mut reader = block(
        &server,
        &mut writer,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            &key,
            ">",
        ],
    );
    writer.call(&["DEL", &key]);
    assert!(is_error(&reader.read().value, "UNBLOCKED"));

    // A deleted key does not end an XREAD wait; the next entry does.
    writer.call(&["XADD", &key, "1-0", "a", "1"]);
    let mut reader = block(
        &server,
        &mut writer,
        &["XREAD", "BLOCK", "0", "STREAMS", &key, "$"],
    );
    writer.call(&["DEL", &key]);
    writer.call(&["XADD", &key, "5-0", "e", "5"]);
    assert_eq!(
        reader.read().value,
        Resp::Array(vec![Resp::Array(vec![
            bulk(&key),
            Resp::Array(vec![entry("5-0", &["e", "5"])]),
        ])])
    );

    // A time-out answers a null array; inside MULTI nothing blocks.
    let mut reader = server.client(None);
    assert_eq!(
        reader
            .call(&["XREAD", "BLOCK", "20", "STREAMS", &key, "$"])
            .value,
        Resp::NullArray
    );
    reader.ok(&["MULTI"]);
    reader.call(&["XREAD", "BLOCK", "0", "STREAMS", &key, "$"]);
    assert_eq!(
        reader.call(&["EXEC"]).value,
        Resp::Array(vec![Resp::NullArray])
    );
    assert_eq!(blocked_clients(&mut writer), 0);

    // A flush ends a blocked group read as a deletion does.
    writer.call(&["XADD", &key, "6-0", "f", "6"]);
    writer.ok(&["XGROUP", "CREATE", &key, "g", "$"]);
    let mut reader = block(
        &server,
        &mut writer,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            &key,
            ">",
        ],
    );
    writer.ok(&["FLUSHALL"]);
    assert!(is_error(&reader.read().value, "UNBLOCKED"));
}

#[test]
fn hostile_stream_requests_are_refused_and_the_server_keeps_serving() {
    let server = Sessiond::start(&[
        "--resp-listen",
        "127.0.0.1:0",
        "--client-output-limit",
        "1m",
        "--max-memory",
        "64m",
    ]);
    let addr = server.listener("resp").expect("resp listener");
    let mut c = RespClient::connect(addr);

    // The last possible ID: `*` and `ms-*` refuse instead of wrapping.
    let max = "18446744073709551615-18446744073709551615";
    assert_eq!(c.call(&["XADD", "top", max, "f", "v"]).value, bulk(max));
    for id in ["*", "18446744073709551615-*"] {
        assert!(is_error(
            &c.call(&["XADD", "top", id, "f", "v"]).value,
            "ERR The stream has exhausted the last possible ID"
        ));
    }
    assert!(is_error(
        &c.call(&["XRANGE", "top", &format!("({max}"), "+"]).value,
        "ERR invalid start ID"
    ));
    assert_eq!(c.call(&["XLEN", "top"]).value, Resp::Int(1));
    // Malformed IDs, every command.
    for (args, want) in [
        (
            &["XADD", "s", "1-2-3", "f", "v"][..],
            "ERR Invalid stream ID",
        ),
        (
            &["XADD", "s", "18446744073709551616", "f", "v"],
            "ERR Invalid stream ID",
        ),
        (&["XADD", "s", "-1", "f", "v"], "ERR Invalid stream ID"),
        (&["XADD", "s", "1", "f"], "ERR wrong number of arguments"),
        (&["XRANGE", "s", "x", "+"], "ERR Invalid stream ID"),
        (&["XDEL", "s", "+"], "ERR Invalid stream ID"),
        (
            &["XSETID", "top", "1-0"],
            "ERR The ID specified in XSETID is smaller",
        ),
        (
            &["XTRIM", "s", "MAXLEN", "-1"],
            "ERR The MAXLEN argument must be >= 0.",
        ),
        (
            &["XREAD", "COUNT", "x", "STREAMS", "s", "0"],
            "ERR value is not an integer",
        ),
        (
            &["XREAD", "BLOCK", "-5", "STREAMS", "s", "0"],
            "ERR timeout is negative",
        ),
        (
            &["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"],
            "ERR COUNT must be > 0",
        ),
        (
            &["XINFO", "STREAM", "top", "FULL", "COUNT", "x"],
            "ERR value is not an integer",
        ),
        (
            &["XGROUP", "CREATE", "top", "g", "0", "ENTRIESREAD", "-7"],
            "ERR value for ENTRIESREAD",
        ),
    ] {
        let got = c.call(args).value;
        assert!(is_error(&got, want), "{args:?}: {got:?}");
    }
    // A blocking read on 100,000 keys: refused before anything is registered.
    let keys: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
    let mut args: Vec<&[u8]> = vec![b"XREAD", b"BLOCK", b"0", b"STREAMS"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    args.extend(keys.iter().map(|_| &b"$"[..]));
    let refused = c.call_bytes(&args).value;
    assert!(
        is_error(
            &refused,
            "ERR a blocking command may wait on at most 1024 keys"
        ),
        "{refused:?}"
    );
    assert_eq!(blocked_clients(&mut c), 0);
    // Huge counts are fine: they only bound what exists.
    let huge = "9223372036854775807";
    assert_eq!(
        c.call(&["XRANGE", "top", "-", "+", "COUNT", huge]).value,
        Resp::Array(vec![entry(max, &["f", "v"])])
    );
    c.ok(&["XGROUP", "CREATE", "top", "g", "0"]);
    for args in [
        &["XACK", "top", "g", "1-x"][..],
        &["XREAD", "BLOCK", "0", "STREAMS", "top", "+"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "top",
            "+",
        ],
    ] {
        let got = c.call(args).value;
        assert!(is_error(&got, "ERR Invalid stream ID"), "{args:?}: {got:?}");
    }
    c.call(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "COUNT",
        huge,
        "STREAMS",
        "top",
        ">",
    ]);
    c.call(&["XPENDING", "top", "g", "-", "+", huge]);
    // One entry with a million fields: stored (charged), and its reply refused past the
    // output limit instead of built.
    let mut args: Vec<Vec<u8>> = vec![b"XADD".to_vec(), b"wide".to_vec(), b"1-0".to_vec()];
    for i in 0..500_000u32 {
        args.push(format!("f{i}").into_bytes());
        args.push(b"v".to_vec());
    }
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    assert_eq!(c.call_bytes(&refs).value, bulk("1-0"));
    assert!(is_error(
        &c.call(&["XRANGE", "wide", "-", "+"]).value,
        "ERR"
    ));
    c.ok(&["XGROUP", "CREATE", "wide", "g", "0"]);
    // A group read too large to send delivers nothing.
    assert!(is_error(
        &c.call(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "wide", ">"])
            .value,
        "ERR"
    ));
    assert_eq!(
        c.call(&["XPENDING", "wide", "g"]).value,
        Resp::Array(vec![
            Resp::Int(0),
            Resp::NullBulk,
            Resp::NullBulk,
            Resp::NullArray
        ])
    );
    // A consumer explosion is charged: it ends in OOM, the server keeps serving.
    let name = "c".repeat(60_000);
    let mut refused = None;
    for i in 0..10_000 {
        let consumer = format!("{name}{i}");
        match c
            .call(&["XGROUP", "CREATECONSUMER", "top", "g", &consumer])
            .value
        {
            Resp::Int(1) => {}
            other => {
                refused = Some(other);
                break;
            }
        }
    }
    let refused = refused.expect("64 MiB never filled up with consumers");
    assert!(is_error(&refused, "OOM"), "{refused:?}");
    assert_eq!(c.call(&["PING"]).value, Resp::Simple("PONG".into()));
    assert_eq!(c.call(&["XLEN", "top"]).value, Resp::Int(1));
}

#[test]
fn streams_survive_kill_a_rewrite_and_a_restart() {
    let dir = TempDir::new("streams-durable");
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
    let mut c = RespClient::connect(server.listener("resp").unwrap());
    let ops: &[&[&str]] = &[
        &["XADD", "s", "*", "a", "1"],
        &["XADD", "s", "*", "b", "2"],
        &["XADD", "s", "*", "c", "3"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
        &["XCLAIM", "s", "g", "bob", "0", "0-1", "FORCE"],
        &["XADD", "s", "MAXLEN", "3", "*", "d", "4"],
        &["XACK", "s", "g", "0-1"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "carol"],
        &["XSETID", "s", "99999999999999-0", "ENTRIESADDED", "10"],
    ];
    for op in ops {
        c.call(op);
    }
    c.call(&["XADD", "gone", "1-0", "x", "y"]);
    c.call(&["DEL", "gone"]);
    let started = c.call(&["BGREWRITEAOF"]).value;
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
    // More changes after the snapshot, which overlap it on replay.
    c.call(&["XADD", "s", "*", "e", "5"]);
    c.call(&["XREADGROUP", "GROUP", "g", "carol", "STREAMS", "s", ">"]);
    c.call(&["XDEL", "s", "0-1"]);
    c.call(&["XGROUP", "CREATE", "s", "g2", "$"]);
    let expect = c
        .call(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"])
        .value;
    assert!(
        matches!(&expect, Resp::Array(v) if v.len() == 18),
        "{expect:?}"
    );
    server.kill();
    let server = Sessiond::start(&args);
    let mut c = RespClient::connect(server.listener("resp").unwrap());
    assert_eq!(
        c.call(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"])
            .value,
        expect
    );
    assert_eq!(c.call(&["EXISTS", "gone"]).value, Resp::Int(0));
    println!("stream after kill -9, rewrite and restart: {expect:?}");
}

#[test]
fn streams_move_copy_dump_and_raise_keyspace_events() {
    let server = RespServer::start();
    server.header("streams in the keyspace");
    let mut c = server.client(None);
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut subscriber = server.client(None);
    subscriber.call(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    let key = unique("ks");
    c.call(&["XADD", &key, "1-0", "a", "1"]);
    c.ok(&["XGROUP", "CREATE", &key, "g", "0"]);
    c.call(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", &key, ">"]);
    c.call(&["XTRIM", &key, "MAXLEN", "5"]);
    c.call(&["XADD", &key, "MAXLEN", "1", "2-0", "b", "2"]);
    c.call(&["XDEL", &key, "2-0"]);
    c.ok(&["XSETID", &key, "5-0"]);
    let mut events = Vec::new();
    while events.len() < 7 {
        let message = subscriber.read().value;
        if let Resp::Array(parts) = message
            && let Some(Resp::Bulk(channel)) = parts.get(2)
        {
            let channel = String::from_utf8_lossy(channel).into_owned();
            events.push(channel.rsplit(':').next().unwrap_or_default().to_string());
        }
    }
    assert_eq!(
        events,
        [
            "xadd",
            "xgroup-create",
            "xgroup-createconsumer",
            "xadd",
            "xtrim",
            "xdel",
            "xsetid"
        ],
        "keyspace events in order"
    );
    assert_eq!(c.call(&["TYPE", &key]).value, Resp::Simple("stream".into()));
    assert_eq!(c.call(&["OBJECT", "ENCODING", &key]).value, bulk("stream"));
    let scanned = c
        .call(&["SCAN", "0", "TYPE", "stream", "COUNT", "1000"])
        .value;
    let Resp::Array(parts) = &scanned else {
        panic!("SCAN: {scanned:?}")
    };
    assert_eq!(parts[1], bulks(&[&key]), "SCAN … TYPE stream");
    // COPY is deep: groups travel, and changing the copy leaves the original.
    let copy = unique("copy");
    assert_eq!(c.call(&["COPY", &key, &copy]).value, Resp::Int(1));
    let info = |c: &mut RespClient, k: &str| c.call(&["XINFO", "STREAM", k, "FULL"]).value;
    assert_eq!(info(&mut c, &key), info(&mut c, &copy));
    c.call(&["XGROUP", "DESTROY", &copy, "g"]);
    let Resp::Array(groups) = c.call(&["XINFO", "GROUPS", &key]).value else {
        panic!("XINFO GROUPS")
    };
    assert_eq!(
        groups.len(),
        1,
        "the copy's group destroyed, the original's kept"
    );
    // RENAME and DUMP/RESTORE keep everything (a group never read from and a consumer
    // that never got anything included).
    c.ok(&["XGROUP", "CREATE", &key, "fresh", "$"]);
    c.call(&["XGROUP", "CREATECONSUMER", &key, "fresh", "idle"]);
    let renamed = unique("renamed");
    let before = info(&mut c, &key);
    c.ok(&["RENAME", &key, &renamed]);
    assert_eq!(info(&mut c, &renamed), before);
    let Resp::Bulk(payload) = c.call(&["DUMP", &renamed]).value else {
        panic!("DUMP")
    };
    let restored = unique("restored");
    let reply = c
        .call_bytes(&[b"RESTORE", restored.as_bytes(), b"0", &payload])
        .value;
    assert_eq!(reply, Resp::Simple("OK".into()));
    assert_eq!(info(&mut c, &restored), before);
    // WRONGTYPE the other way round.
    assert!(is_error(
        &c.call(&["LPUSH", &restored, "x"]).value,
        "WRONGTYPE"
    ));
    assert!(is_error(&c.call(&["GET", &restored]).value, "WRONGTYPE"));
}

/// `sessiond_stream_copies_total` from the server's `/metrics`: how many stream changes
/// had to copy the whole stream first because something still held it.
fn stream_copies(server: &Sessiond) -> u64 {
    use std::io::{Read, Write};
    let addr = server.listener("http").expect("http listener");
    let mut http = std::net::TcpStream::connect(addr).expect("connecting to /metrics");
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    http.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("sending GET /metrics");
    let mut response = String::new();
    http.read_to_string(&mut response)
        .expect("reading /metrics");
    response
        .lines()
        .find_map(|l| l.strip_prefix("sessiond_stream_copies_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sessiond_stream_copies_total in\n{response}"))
}

/// [`block`] against a server known by its RESP address.
fn block_at(addr: std::net::SocketAddr, watcher: &mut RespClient, args: &[&str]) -> RespClient {
    let before = blocked_clients(watcher);
    let mut client = RespClient::connect(addr);
    client.send(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(watcher) != before + 1 {
        assert!(Instant::now() < deadline, "{args:?} never blocked");
        std::thread::sleep(Duration::from_millis(5));
    }
    client
}

/// `XPENDING key group - + 100` as (ID, owner, delivery count): the idle time left out.
fn pending_owners(c: &mut RespClient, key: &str, group: &str) -> Vec<(Resp, Resp, Resp)> {
    match c.call(&["XPENDING", key, group, "-", "+", "100"]).value {
        Resp::Array(rows) => rows
            .into_iter()
            .map(|row| match row {
                Resp::Array(f) if f.len() == 4 => (f[0].clone(), f[1].clone(), f[3].clone()),
                other => panic!("XPENDING row {other:?}"),
            })
            .collect(),
        other => panic!("XPENDING answered {other:?}"),
    }
}

#[test]
fn stream_changes_copy_nothing_and_claims_too_large_to_send_change_nothing() {
    let server = Sessiond::start(&["--client-output-limit", "1m"]);
    let addr = server.listener("resp").expect("resp listener");
    let mut c = RespClient::connect(addr);
    for id in ["1-0", "2-0", "3-0"] {
        assert_eq!(c.call(&["XADD", "s", id, "f", "v"]).value, bulk(id));
    }
    c.ok(&["XGROUP", "CREATE", "s", "g", "0"]);
    c.call(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    // Every command that checks the stream and then changes it, the change applied in place:
    // a command holding the stream across its own change would copy it whole each time.
    let before = stream_copies(&server);
    let autoclaimed = c.call(&["XAUTOCLAIM", "s", "g", "b", "0", "0-0", "COUNT", "1"]);
    assert_eq!(
        autoclaimed.value,
        Resp::Array(vec![
            bulk("2-0"),
            Resp::Array(vec![entry("1-0", &["f", "v"])]),
            Resp::Array(vec![]),
        ])
    );
    assert_eq!(
        c.call(&["XCLAIM", "s", "g", "c", "0", "2-0"]).value,
        Resp::Array(vec![entry("2-0", &["f", "v"])])
    );
    c.ok(&["XGROUP", "SETID", "s", "g", "0"]);
    c.ok(&["XGROUP", "CREATE", "s", "g2", "$"]);
    assert_eq!(c.call(&["XACK", "s", "g", "3-0"]).value, Resp::Int(1));
    let mut reader = block_at(
        addr,
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g2",
            "d",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(c.call(&["XADD", "s", "4-0", "f", "v"]).value, bulk("4-0"));
    assert_eq!(
        reader.read().value,
        Resp::Array(vec![Resp::Array(vec![
            bulk("s"),
            Resp::Array(vec![entry("4-0", &["f", "v"])]),
        ])])
    );
    assert_eq!(
        stream_copies(&server),
        before,
        "a stream change copied the stream"
    );

    // Claims whose reply would pass the output limit are refused before they claim.
    let big = "x".repeat(700_000);
    for id in ["1-0", "2-0"] {
        assert_eq!(c.call(&["XADD", "w", id, "f", &big]).value, bulk(id));
    }
    c.ok(&["XGROUP", "CREATE", "w", "g", "0"]);
    for _ in 0..2 {
        let read = c.call(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "1",
            "STREAMS",
            "w",
            ">",
        ]);
        assert!(!is_error(&read.value, ""), "{:?}", read.value);
    }
    let owned = pending_owners(&mut c, "w", "g");
    assert_eq!(owned.len(), 2);
    for args in [
        &["XAUTOCLAIM", "w", "g", "b", "0", "0-0"][..],
        &["XCLAIM", "w", "g", "b", "0", "1-0", "2-0"],
    ] {
        let refused = c.call(args).value;
        assert!(is_error(&refused, "ERR"), "{args:?}: {refused:?}");
        assert_eq!(pending_owners(&mut c, "w", "g"), owned, "{args:?} claimed");
    }
    // The IDs alone fit, and are claimed.
    assert_eq!(
        c.call(&["XCLAIM", "w", "g", "b", "0", "1-0", "2-0", "JUSTID"])
            .value,
        bulks(&["1-0", "2-0"])
    );
    assert_eq!(c.call(&["PING"]).value, Resp::Simple("PONG".into()));
}

#[test]
fn at_a_full_budget_existing_consumers_still_read_and_claim_and_a_blocked_reader_hears_oom() {
    let server = Sessiond::start(&["--max-memory", "16m"]);
    let addr = server.listener("resp").expect("resp listener");
    let mut c = RespClient::connect(addr);
    // Names that cost far more than the room a full budget leaves.
    let me = "m".repeat(300);
    let newcomer = "n".repeat(300);
    for id in ["1-0", "2-0"] {
        assert_eq!(c.call(&["XADD", "s", id, "f", "v"]).value, bulk(id));
    }
    c.ok(&["XGROUP", "CREATE", "s", "g", "0"]);
    c.call(&["XREADGROUP", "GROUP", "g", &me, "STREAMS", "s", ">"]);
    assert_eq!(c.call(&["XADD", "s", "3-0", "f", "v"]).value, bulk("3-0"));
    assert_eq!(c.call(&["XADD", "t", "1-0", "f", "v"]).value, bulk("1-0"));
    c.ok(&["XGROUP", "CREATE", "t", "g", "$"]);
    // A reader blocked on `t` (its consumer is created as it blocks, as in Redis).
    let mut reader = block_at(
        addr,
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "r",
            "BLOCK",
            "0",
            "STREAMS",
            "t",
            ">",
        ],
    );
    reader.set_read_timeout(Duration::from_secs(20));
    // Fill the budget with ever smaller entries until not even a one-byte one fits.
    let mut last = None;
    for size in [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1] {
        let value = "x".repeat(size);
        loop {
            match c.call(&["XADD", "pad", "*", "f", &value]).value {
                Resp::Bulk(id) => last = Some((String::from_utf8(id).unwrap(), size)),
                other => {
                    assert!(is_error(&other, "OOM"), "{other:?}");
                    break;
                }
            }
        }
    }
    let (last_id, last_size) = last.expect("something fitted");
    let full = c
        .call(&["XGROUP", "CREATECONSUMER", "s", "g", &newcomer])
        .value;
    assert!(is_error(&full, "OOM"), "{full:?}");

    // An existing consumer adds nothing: its reads and claims go through.
    let nothing = c.call(&[
        "XREADGROUP",
        "GROUP",
        "g",
        &me,
        "COUNT",
        "1",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ]);
    assert_eq!(
        nothing.value,
        Resp::Array(vec![Resp::Array(vec![
            bulk("s"),
            Resp::Array(vec![entry("3-0", &["f", "v"])]),
        ])])
    );
    let empty = c
        .call(&["XREADGROUP", "GROUP", "g", &me, "STREAMS", "s", ">"])
        .value;
    assert!(empty.is_null(), "{empty:?}");
    let history = c
        .call(&["XREADGROUP", "GROUP", "g", &me, "STREAMS", "s", "0"])
        .value;
    assert_eq!(
        history,
        Resp::Array(vec![Resp::Array(vec![
            bulk("s"),
            Resp::Array(vec![entry("1-0", &["f", "v"]), entry("2-0", &["f", "v"])]),
        ])])
    );
    assert_eq!(
        c.call(&["XCLAIM", "s", "g", &me, "0", "1-0", "JUSTID"])
            .value,
        bulks(&["1-0"])
    );
    let autoclaimed = c
        .call(&["XAUTOCLAIM", "s", "g", &me, "0", "0-0", "COUNT", "1"])
        .value;
    assert!(!is_error(&autoclaimed, ""), "{autoclaimed:?}");

    // The blocked reader is woken by an entry that fits (it takes the room of one removed
    // from `pad`), and its delivery (a new pending entry), which does not, is answered.
    assert_eq!(c.call(&["XDEL", "pad", &last_id]).value, Resp::Int(1));
    let added = c
        .call(&["XADD", "t", "2-0", "f", &"x".repeat(last_size)])
        .value;
    assert_eq!(added, bulk("2-0"));
    let answer = reader
        .try_read()
        .expect("the blocked reader was left waiting")
        .value;
    assert!(is_error(&answer, "OOM"), "{answer:?}");
    assert_eq!(c.call(&["PING"]).value, Resp::Simple("PONG".into()));
}

/// A `DUMP` payload with the one little-endian `find` in it replaced by `put`, and its
/// checksum (FNV-1a of all but the last 8 bytes) made right again.
fn patched(payload: &[u8], find: u64, put: u64) -> Vec<u8> {
    let find = find.to_le_bytes();
    let at: Vec<usize> = payload
        .windows(8)
        .enumerate()
        .filter(|(_, w)| *w == find)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the marker occurs once");
    let mut out = payload.to_vec();
    out[at[0]..at[0] + 8].copy_from_slice(&put.to_le_bytes());
    let body = out.len() - 8;
    let sum = out[..body].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    out[body..].copy_from_slice(&sum.to_le_bytes());
    out
}

#[test]
fn restore_refuses_stream_counters_that_contradict_the_entries_and_survives_extreme_ones() {
    let server = Sessiond::start(&[]);
    let addr = server.listener("resp").expect("resp listener");
    let mut c = RespClient::connect(addr);
    let (added, read) = (987_654_321u64, 123_456_789u64);
    for id in ["1-0", "2-0"] {
        assert_eq!(c.call(&["XADD", "s", id, "f", "v"]).value, bulk(id));
    }
    c.ok(&["XSETID", "s", "2-0", "ENTRIESADDED", &added.to_string()]);
    c.ok(&[
        "XGROUP",
        "CREATE",
        "s",
        "g",
        "0",
        "ENTRIESREAD",
        &read.to_string(),
    ]);
    let Resp::Bulk(payload) = c.call(&["DUMP", "s"]).value else {
        panic!("DUMP answered no payload");
    };
    // Fewer entries added than the stream holds.
    let fewer = patched(&payload, added, 1);
    let refused = c
        .call_bytes(&[&b"RESTORE"[..], b"fewer", b"0", &fewer[..]])
        .value;
    assert!(
        is_error(&refused, "ERR DUMP payload version or checksum are wrong"),
        "{refused:?}"
    );
    // Counters at the very top are what commands can set: accepted, and reading, adding
    // and reporting on them saturates instead of overflowing.
    let top = patched(&patched(&payload, added, u64::MAX), read, u64::MAX);
    assert_eq!(
        c.call_bytes(&[&b"RESTORE"[..], b"top", b"0", &top[..]])
            .value,
        Resp::Simple("OK".into())
    );
    let delivered = c
        .call(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "top", ">"])
        .value;
    assert!(!is_error(&delivered, ""), "{delivered:?}");
    assert_eq!(c.call(&["XADD", "top", "3-0", "f", "v"]).value, bulk("3-0"));
    for info in [&["XINFO", "STREAM", "top"][..], &["XINFO", "GROUPS", "top"]] {
        let answer = c.call(info).value;
        assert!(!is_error(&answer, ""), "{info:?}: {answer:?}");
    }
    assert_eq!(c.call(&["PING"]).value, Resp::Simple("PONG".into()));
}
