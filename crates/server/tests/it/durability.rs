//! The journal, end to end, against the real binary: acknowledged writes survive SIGKILL
//! under each fsync policy (the crash harness), a torn or corrupt journal is handled as
//! promised, deadlines keep their absolute time across a restart, a second server on the
//! same data directory is refused, a rewrite replaces the segments by a snapshot (started by
//! the journal's growth or by an admin command), and a full disk poisons the journal while
//! reads keep working.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use sessiond_proto_memcache::binary::{self, BinaryRequest, opcode, status};
use sessiond_proto_memcache::{Command as McCommand, StoreMode};

use sessiond_test_harness::{McClient, Sessiond, TempDir, run_with_timeout};

/// A small deterministic generator, seeded from the clock and printed, so a failing run can
/// be replayed by setting `SESSIOND_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("SESSIOND_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("crash harness seed {seed} (set SESSIOND_CRASH_SEED to replay)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A blocking memcached client that reports I/O errors instead of panicking, because the
/// server it talks to is killed mid-conversation.
enum Client {
    Text(BufReader<TcpStream>),
    Binary(TcpStream, BytesMut, u32),
}

/// What the server answered to a write.
#[derive(Debug, PartialEq, Eq)]
enum Ack {
    /// Stored, or deleted (a delete of a missing key also leaves the key absent).
    Done,
    /// A server error (a full disk, for instance).
    Refused(String),
}

impl Client {
    fn connect(addr: SocketAddr, binary: bool) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(if binary {
            Client::Binary(stream, BytesMut::new(), 0)
        } else {
            Client::Text(BufReader::new(stream))
        })
    }

    fn set(&mut self, key: &str, value: &[u8]) -> std::io::Result<Ack> {
        match self {
            Client::Text(reader) => {
                let mut request = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
                request.extend_from_slice(value);
                request.extend_from_slice(b"\r\n");
                reader.get_mut().write_all(&request)?;
                match text_line(reader)?.as_str() {
                    "STORED" => Ok(Ack::Done),
                    other => Ok(Ack::Refused(other.to_string())),
                }
            }
            Client::Binary(..) => self.binary(McCommand::Store {
                mode: StoreMode::Set,
                key: key.as_bytes().to_vec().into(),
                flags: 0,
                exptime: 0,
                value: value.to_vec().into(),
                cas: 0,
            }),
        }
    }

    fn delete(&mut self, key: &str) -> std::io::Result<Ack> {
        match self {
            Client::Text(reader) => {
                reader
                    .get_mut()
                    .write_all(format!("delete {key}\r\n").as_bytes())?;
                match text_line(reader)?.as_str() {
                    "DELETED" | "NOT_FOUND" => Ok(Ack::Done),
                    other => Ok(Ack::Refused(other.to_string())),
                }
            }
            Client::Binary(..) => self.binary(McCommand::Delete {
                key: key.as_bytes().to_vec().into(),
                cas: 0,
            }),
        }
    }

    fn binary(&mut self, command: McCommand) -> std::io::Result<Ack> {
        let Client::Binary(stream, buf, opaque) = self else {
            unreachable!()
        };
        *opaque += 1;
        let op = if matches!(command, McCommand::Delete { .. }) {
            opcode::DELETE
        } else {
            opcode::SET
        };
        let request = BinaryRequest {
            opcode: op,
            opaque: *opaque,
            command,
            quiet: false,
            return_key: false,
        };
        let mut out = BytesMut::new();
        binary::encode_request(&request, &mut out);
        stream.write_all(&out)?;
        loop {
            if let Some(response) = binary::decode_response(buf)
                .map_err(|e| std::io::Error::other(format!("bad binary response: {e:?}")))?
            {
                assert_eq!(response.opaque, *opaque, "binary response out of order");
                return Ok(match response.status {
                    status::OK | status::NOT_FOUND => Ack::Done,
                    other => Ack::Refused(format!("status {other:#06x}")),
                });
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn text_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_string())
}

/// One write a harness connection sent.
#[derive(Debug, Clone)]
struct Op {
    /// The key's state once the write is applied: a value, or absent.
    state: Option<Vec<u8>>,
    /// When the acknowledgement arrived, if it did.
    acked_at: Option<Instant>,
    /// When the server that received it was killed.
    killed_at: Option<Instant>,
}

/// Per key, every write ever sent, in order. Each key belongs to one connection, so the
/// order is the order the server applied them.
type History = HashMap<String, Vec<Op>>;

/// Writes, overwrites and deletes its own keys until the server goes away or `stop` is set.
fn writer(
    addr: SocketAddr,
    id: usize,
    round: usize,
    binary: bool,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> History {
    let mut rng = Rng(seed | 1);
    let mut history = History::new();
    let Ok(mut client) = Client::connect(addr, binary) else {
        return history;
    };
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let key = format!("w{id}-k{}", rng.below(40));
        let delete = rng.below(5) == 0;
        let state = (!delete).then(|| {
            let mut value = format!("{id}/{round}/{seq}/").into_bytes();
            value.resize(value.len() + rng.below(3000) as usize, b'x');
            value
        });
        let ops = history.entry(key.clone()).or_default();
        ops.push(Op {
            state: state.clone(),
            acked_at: None,
            killed_at: None,
        });
        let result = match &state {
            Some(value) => client.set(&key, value),
            None => client.delete(&key),
        };
        match result {
            Ok(Ack::Done) => ops.last_mut().unwrap().acked_at = Some(Instant::now()),
            Ok(Ack::Refused(why)) => panic!("writer {id}: the server refused a write: {why}"),
            Err(_) => break, // The server was killed; this write stays unacknowledged.
        }
    }
    history
}

/// Checks every key against its history: the state after the last write that the policy
/// guarantees (acknowledged, and for everysec acknowledged more than `margin` before the
/// kill), or after any later write. Returns (guaranteed writes checked, losses).
fn verify(addr: SocketAddr, history: &History, margin: Duration) -> (usize, usize) {
    let mut mc = McClient::connect(addr);
    let (mut checked, mut losses) = (0, 0);
    for (key, ops) in history {
        let guaranteed = ops
            .iter()
            .rposition(|op| match (op.acked_at, op.killed_at) {
                (Some(acked), Some(killed)) => acked + margin <= killed,
                _ => false,
            });
        let got = mc.get(key).map(|item| item.value);
        let from = guaranteed.unwrap_or(0);
        let allowed =
            ops[from..].iter().any(|op| op.state == got) || (guaranteed.is_none() && got.is_none());
        if guaranteed.is_some() {
            checked += 1;
        }
        if !allowed {
            losses += 1;
            let want = &ops[from];
            eprintln!(
                "LOSS: {key}: got {:?}, but the write acknowledged at {:?} left {:?}",
                got.as_ref()
                    .map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned()),
                want.acked_at,
                want.state
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned()),
            );
        }
    }
    (checked, losses)
}

/// Runs `rounds` rounds of: start on the same data directory, verify, write from four
/// connections (two text, two binary) for a random while, SIGKILL.
fn crash_harness(policy: &str, rounds: usize, run_ms: (u64, u64), margin: Duration) {
    let dir = TempDir::new(&format!("crash-{policy}"));
    let data = dir.path().to_str().unwrap().to_string();
    let mut rng = Rng::seeded();
    let mut history = History::new();
    let (mut kills, mut checked, mut losses, mut acked) = (0, 0, 0, 0);
    for round in 0..=rounds {
        let mut server = Sessiond::start(&["--data-dir", &data, "--fsync", policy]);
        let addr = server.memcache_addr();
        if round > 0 {
            let (c, l) = verify(addr, &history, margin);
            checked += c;
            losses += l;
            println!("  after kill {round}: {c} keys with a guaranteed write checked, {l} lost");
        }
        if round == rounds {
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|id| {
                let (stop, seed) = (stop.clone(), rng.next());
                std::thread::spawn(move || writer(addr, id, round, id % 2 == 1, stop, seed))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(
            run_ms.0 + rng.below(run_ms.1 - run_ms.0),
        ));
        let killed_at = Instant::now();
        server.kill();
        kills += 1;
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            for (key, mut ops) in writer.join().expect("writer thread") {
                for op in &mut ops {
                    op.killed_at = Some(killed_at);
                    acked += usize::from(op.acked_at.is_some());
                }
                history.entry(key).or_default().extend(ops);
            }
        }
    }
    println!(
        "crash harness, --fsync {policy}: {kills} kills, {acked} acknowledged writes, \
         {checked} guaranteed key states checked, {losses} losses"
    );
    assert_eq!(
        losses, 0,
        "acknowledged writes were lost under --fsync {policy}"
    );
    assert!(
        checked > 0,
        "the harness checked nothing; the rounds are too short"
    );
}

#[test]
fn crash_harness_fsync_always_loses_no_acknowledged_write() {
    crash_harness("always", 4, (300, 1500), Duration::ZERO);
}

#[test]
fn crash_harness_fsync_everysec_loses_nothing_older_than_two_seconds() {
    // A kill -9 of the process loses nothing that reached the OS, and everysec acknowledges
    // only after the write(2); the 2 s margin is the issue's promise for power loss, which a
    // process kill cannot test, so this also holds with margin zero.
    crash_harness("everysec", 3, (2500, 4000), Duration::from_secs(2));
}

/// Runs the binary expecting it to exit (it must not start), returning its stderr.
fn expect_refusal(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    cmd.args(["--memcache-listen", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1");
    let finished = run_with_timeout(
        "sessiond (expected to refuse)",
        &mut cmd,
        Duration::from_secs(20),
    );
    assert!(
        !finished.status.success(),
        "sessiond started although it should have refused: {args:?}"
    );
    finished.stderr
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_corrupt_journal_stops_startup_and_recover_truncate_keeps_the_prefix() {
    let dir = TempDir::new("corrupt");
    let data = dir.path().to_str().unwrap().to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    for i in 0..200 {
        assert_eq!(
            mc.command_line(&format!("set key{i:03} 0 0 100\r\n{}", "v".repeat(100))),
            "STORED"
        );
    }
    server.stop();
    let segment = segments(dir.path()).pop().expect("a journal segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();

    let stderr = expect_refusal(&["--data-dir", &data]);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains(name) && stderr.contains("offset") && stderr.contains("--recover-truncate"),
        "the refusal must name the file, the offset and the way out; got:\n{stderr}"
    );
    println!(
        "refused as expected: {}",
        stderr.lines().find(|l| l.contains(name)).unwrap_or("")
    );

    let server = Sessiond::start(&["--data-dir", &data, "--recover-truncate"]);
    let mut mc = McClient::connect(server.memcache_addr());
    let present: Vec<bool> = (0..200)
        .map(|i| mc.get(&format!("key{i:03}")).is_some())
        .collect();
    let kept = present.iter().take_while(|&&p| p).count();
    assert!(
        kept > 0 && kept < 200,
        "expected a strict prefix to survive, kept {kept}"
    );
    assert!(
        present[kept..].iter().all(|&p| !p),
        "what survives must be a prefix"
    );
    println!("--recover-truncate kept the first {kept} of 200 writes");
}

#[test]
fn a_torn_tail_is_truncated_with_a_log_line() {
    let dir = TempDir::new("torn");
    let data = dir.path().to_str().unwrap().to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    for i in 0..10 {
        assert_eq!(
            mc.command_line(&format!("set key{i} 0 0 5\r\nvalue")),
            "STORED"
        );
    }
    server.stop();
    let segment = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    // Cut the last record in half, as a crash in the middle of an append would.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    assert!((0..9).all(|i| mc.get(&format!("key{i}")).is_some()));
    assert!(
        mc.get("key9").is_none(),
        "the torn record must not be half-applied"
    );
    let log = server.log_tail();
    assert!(
        log.contains("truncated the torn tail"),
        "no log line about the torn tail:\n{log}"
    );
    assert!(
        log.contains("dropped_bytes"),
        "the log line must say how many bytes:\n{log}"
    );
}

#[test]
fn deadlines_keep_their_absolute_time_across_a_restart() {
    let dir = TempDir::new("deadline");
    let data = dir.path().to_str().unwrap().to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    let written = Instant::now();
    assert_eq!(mc.command_line("set short 0 2 1\r\nx"), "STORED");
    assert_eq!(mc.command_line("set long 0 100 1\r\ny"), "STORED");
    server.stop();
    let server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    if written.elapsed() < Duration::from_millis(1800) {
        assert!(
            mc.get("short").is_some(),
            "the key must survive the restart while its TTL runs"
        );
    }
    // The deadline is absolute: it passes 2 s after the write, not 2 s after the restart.
    let due = written + Duration::from_millis(2100);
    std::thread::sleep(due.saturating_duration_since(Instant::now()));
    assert!(mc.get("short").is_none(), "the restart extended the TTL");
    assert!(mc.get("long").is_some());
    println!("a 2 s TTL written before a restart expired 2 s after the write");
}

#[test]
fn a_second_sessiond_on_the_same_data_dir_is_refused() {
    let dir = TempDir::new("lock");
    let data = dir.path().to_str().unwrap().to_string();
    let _first = Sessiond::start(&["--data-dir", &data]);
    let stderr = expect_refusal(&["--data-dir", &data]);
    assert!(
        stderr.contains("another sessiond"),
        "unexpected refusal:\n{stderr}"
    );
}

#[test]
fn a_rewrite_replaces_the_segments_by_a_snapshot_and_recovers_from_it() {
    let dir = TempDir::new("rewrite");
    let data = dir.path().to_str().unwrap().to_string();
    let args = [
        "--data-dir",
        &data,
        "--journal-segment-size",
        "32k",
        "--journal-rewrite-min-size",
        "256k",
    ];
    let mut server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    for round in 0..300 {
        for k in 0..10 {
            let value = format!("{round:04}{}", "r".repeat(500));
            assert_eq!(
                mc.command_line(&format!("set key{k} 0 0 {}\r\n{value}", value.len())),
                "STORED"
            );
        }
    }
    mc.command_line("delete key9");
    let deadline = Instant::now() + Duration::from_secs(10);
    while mc.stats()["journal_rewrites"] == "0" {
        assert!(
            Instant::now() < deadline,
            "no rewrite after 1.5 MB of journal for 5 KB of live data"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with(".snap")),
        "no snapshot among {files:?}"
    );
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        on_disk < 1_000_000,
        "the rewrite left {on_disk} bytes on disk: {files:?}"
    );
    // Writes after the rewrite land in the new segment.
    assert_eq!(mc.command_line("set after 0 0 1\r\na"), "STORED");
    server.kill();
    let server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    for k in 0..9 {
        let item = mc
            .get(&format!("key{k}"))
            .expect("key lost across rewrite and restart");
        assert!(
            item.value.starts_with(b"0299"),
            "key{k} came back with an old value"
        );
    }
    assert!(mc.get("key9").is_none(), "a deleted key came back");
    assert!(mc.get("after").is_some());
    println!(
        "rewrite: {} bytes on disk for 9 live keys; recovered after SIGKILL",
        on_disk
    );
}

/// Waits until `stats` counts `wanted` completed rewrites.
fn wait_for_rewrites(mc: &mut McClient, wanted: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done: u64 = mc.stats()["journal_rewrites"].parse().unwrap();
        if done >= wanted {
            return;
        }
        assert!(Instant::now() < deadline, "rewrite {wanted} never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_admin_commands_start_a_rewrite_on_demand() {
    let dir = TempDir::new("admin-rewrite");
    let data = dir.path().to_str().unwrap().to_string();
    // A threshold far above what the test writes, so only the commands start rewrites.
    let args = ["--data-dir", &data, "--journal-rewrite-min-size", "1g"];
    let mut server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    let set = |mc: &mut McClient, key: &str, value: &str| {
        let line = format!("set {key} 0 0 {}\r\n{value}", value.len());
        assert_eq!(mc.command_line(&line), "STORED");
    };
    for round in 0..50 {
        for k in 0..5 {
            set(&mut mc, &format!("key{k}"), &format!("v{round}"));
        }
    }
    assert_eq!(mc.stats()["journal_rewrites"], "0");

    assert_eq!(mc.command_line("journal rewrite"), "OK");
    wait_for_rewrites(&mut mc, 1);
    assert_eq!(
        mc.command_line("journal compact"),
        "CLIENT_ERROR usage: journal rewrite"
    );
    set(&mut mc, "key0", "after-first");

    let resp_addr = server.listener("resp").expect("a RESP listener");
    let mut resp = BufReader::new(TcpStream::connect(resp_addr).unwrap());
    resp.get_mut().write_all(b"BGREWRITEAOF\r\n").unwrap();
    let mut reply = String::new();
    resp.read_line(&mut reply).unwrap();
    assert_eq!(reply, "+Background append only file rewriting started\r\n");
    wait_for_rewrites(&mut mc, 2);
    set(&mut mc, "key1", "after-second");

    server.kill();
    let server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    let value = |mc: &mut McClient, key: &str| mc.get(key).map(|item| item.value);
    assert_eq!(value(&mut mc, "key0").as_deref(), Some(&b"after-first"[..]));
    assert_eq!(
        value(&mut mc, "key1").as_deref(),
        Some(&b"after-second"[..])
    );
    assert_eq!(value(&mut mc, "key4").as_deref(), Some(&b"v49"[..]));
}

/// Mounts a small tmpfs as the data directory, fills it, and checks the journal poisons:
/// writes are refused with a server error, reads keep working, and `stats` says why.
#[test]
fn a_full_disk_poisons_the_journal_and_reads_keep_working() {
    let dir = TempDir::new("full");
    let mount = dir.path().join("tmpfs");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!(
            "NOT RUN: `mount -t tmpfs` is not permitted here (it needs root). The poisoning path \
             itself is covered by the unit test durability::tests::a_failed_write_poisons_the_journal."
        );
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let data = mount.to_str().unwrap().to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    let addr = server.memcache_addr();
    let value = vec![b'f'; 100_000];
    let mut client = Client::connect(addr, false).unwrap();
    assert_eq!(client.set("first", b"kept").unwrap(), Ack::Done);
    let mut refused = None;
    for i in 0..100 {
        match client.set(&format!("fill{i}"), &value) {
            Ok(Ack::Done) => {}
            Ok(Ack::Refused(why)) => {
                refused = Some(why);
                break;
            }
            // The write whose journal record hit the full disk is never acknowledged.
            Err(e) => {
                println!("write {i}: {e}");
                client = Client::connect(addr, false).unwrap()
            }
        }
    }
    let refused = refused.expect("a 1 MB disk never filled up");
    assert!(
        refused.starts_with("SERVER_ERROR"),
        "unexpected refusal {refused:?}"
    );
    let mut mc = McClient::connect(addr);
    assert_eq!(
        mc.get("first").map(|i| i.value),
        Some(b"kept".to_vec()),
        "reads must keep working"
    );
    let stats = mc.stats();
    assert_eq!(stats["journal_poisoned"], "1");
    assert!(
        stats
            .get("journal_error")
            .is_some_and(|e| e.contains("No space")),
        "stats: {stats:?}"
    );
    println!(
        "full disk: writes refused with {refused:?}; reads work; journal_error = {}",
        stats["journal_error"]
    );
    server.stop();
}

/// A key of `len` bytes that starts with `tag` and spells its length, so keys of different
/// lengths never collide and one cut short would come back as another key.
fn long_key(tag: char, len: usize) -> Vec<u8> {
    let mut key = format!("{tag}:{len}:").into_bytes();
    key.extend((0..len.saturating_sub(key.len())).map(|i| b'a' + (i % 26) as u8));
    key.truncate(len);
    key
}

/// Everything `keys` hold, read over RESP in an order-independent form: a string's value,
/// a hash's sorted pairs, a set's sorted members, a sorted set's members with scores.
fn dump(
    resp: &mut sessiond_test_harness::RespClient,
    keys: &[(Vec<u8>, &str)],
) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    use sessiond_test_harness::Resp;
    let items = |reply: sessiond_test_harness::Reply| match reply.value {
        Resp::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Resp::Bulk(bytes) => bytes,
                other => panic!("unexpected element {other:?}"),
            })
            .collect::<Vec<_>>(),
        other => panic!("unexpected reply {other:?}"),
    };
    keys.iter()
        .map(|(key, kind)| {
            let mut value = match *kind {
                "string" => match resp.call_bytes(&[b"GET", key]).value {
                    Resp::Bulk(bytes) => vec![bytes],
                    other => panic!("GET: {other:?}"),
                },
                "hash" => {
                    let flat = items(resp.call_bytes(&[b"HGETALL", key]));
                    flat.chunks(2).map(|pair| pair.concat()).collect()
                }
                "set" => items(resp.call_bytes(&[b"SMEMBERS", key])),
                "zset" => items(resp.call_bytes(&[
                    b"ZRANGEBYSCORE",
                    key,
                    b"-inf",
                    b"+inf",
                    b"WITHSCORES",
                ])),
                other => panic!("{other}"),
            };
            if *kind != "zset" {
                value.sort();
            }
            assert!(!value.is_empty(), "{kind} {} is missing", key.len());
            (key.clone(), value)
        })
        .collect()
}

#[test]
fn long_keys_and_large_collections_come_back_identical_after_restarts_and_a_rewrite() {
    use sessiond_test_harness::{Resp, RespClient};
    // The default --max-item-size, so also the RESP bulk limit: the longest key and value
    // a client can send. Said explicitly so a change of the default does not shrink the test.
    const MAX_ITEM: usize = 1 << 20;
    let dir = TempDir::new("large");
    let data = dir.path().to_str().unwrap().to_string();
    let args = ["--data-dir", &data, "--max-item-size", "1m"];
    let mut server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    let mut resp = RespClient::connect(server.listener("resp").expect("a RESP listener"));
    let mut keys: Vec<(Vec<u8>, &str)> = Vec::new();

    // memcached's longest key.
    let mc_key = String::from_utf8(long_key('m', 250)).unwrap();
    assert_eq!(
        mc.command_line(&format!("set {mc_key} 0 0 2\r\nmc")),
        "STORED"
    );
    keys.push((mc_key.into_bytes(), "string"));
    // Keys at and past the old u16 limit, and at the bulk limit; a value at the item size
    // limit under a key at the bulk limit.
    for (tag, len, value) in [
        ('k', 65_535, b"a".to_vec()),
        ('k', 65_536, b"b".to_vec()),
        ('k', MAX_ITEM, b"c".to_vec()),
        ('v', MAX_ITEM, vec![b'x'; MAX_ITEM]),
    ] {
        let key = long_key(tag, len);
        assert_eq!(
            resp.call_bytes(&[b"SET", &key, &value]).value,
            Resp::Simple("OK".into())
        );
        keys.push((key, "string"));
    }
    // Collections grown element by element past the size at which one is journaled in
    // parts (8 MiB): a hash of 1 MiB values, a set and a sorted set of 500-byte members.
    for i in 0..10u8 {
        let field = format!("field{i}");
        let reply = resp.call_bytes(&[b"HSET", b"hash", field.as_bytes(), &vec![i; MAX_ITEM]]);
        assert_eq!(reply.value, Resp::Int(1));
    }
    for batch in 0..10 {
        let members: Vec<Vec<u8>> = (0..2000)
            .map(|i| format!("{batch}-{i:05}-{}", "m".repeat(500)).into_bytes())
            .collect();
        let mut sadd: Vec<&[u8]> = vec![b"SADD", b"set"];
        sadd.extend(members.iter().map(|m| m.as_slice()));
        assert_eq!(resp.call_bytes(&sadd).value, Resp::Int(2000));
        let scores: Vec<String> = (0..2000).map(|i| format!("{}.25", i - 1000)).collect();
        let mut zadd: Vec<&[u8]> = vec![b"ZADD", b"zset"];
        for (score, member) in scores.iter().zip(&members) {
            zadd.push(score.as_bytes());
            zadd.push(member);
        }
        assert_eq!(resp.call_bytes(&zadd).value, Resp::Int(2000));
    }
    // RENAME writes a collection whole: the hash under a key the old format could not hold,
    // the set under a short one.
    let renamed = long_key('h', 70_000);
    assert_eq!(
        resp.call_bytes(&[b"RENAME", b"hash", &renamed]).value,
        Resp::Simple("OK".into())
    );
    assert_eq!(
        resp.call(&["RENAME", "set", "set2"]).value,
        Resp::Simple("OK".into())
    );
    keys.push((renamed, "hash"));
    keys.push((b"set2".to_vec(), "set"));
    keys.push((b"zset".to_vec(), "zset"));
    let before = dump(&mut resp, &keys);
    let count = |resp: &mut RespClient| resp.call(&["DBSIZE"]).value;
    let dbsize = count(&mut resp);

    // Acknowledged writes survive a SIGKILL under the default everysec.
    server.kill();
    let server = Sessiond::start(&args);
    let mut resp = RespClient::connect(server.listener("resp").unwrap());
    assert!(
        dump(&mut resp, &keys) == before,
        "data changed across a restart"
    );
    assert_eq!(count(&mut resp), dbsize);

    // A rewrite writes all of it into a snapshot; the restart after it reads only that.
    let mut mc = McClient::connect(server.memcache_addr());
    assert_eq!(mc.command_line("journal rewrite"), "OK");
    wait_for_rewrites(&mut mc, 1);
    drop(server);
    let server = Sessiond::start(&args);
    let mut resp = RespClient::connect(server.listener("resp").unwrap());
    assert!(
        dump(&mut resp, &keys) == before,
        "data changed across a rewrite"
    );
    assert_eq!(count(&mut resp), dbsize);
    let log = server.log_tail();
    assert!(!log.contains("WARN"), "recovery warned:\n{log}");
}

/// What meta commands write is journaled like any write: values, flags, TTLs set by `ms`,
/// `mg … T`, `md … I T` and `ma`, a vivified stub and removals survive a restart, and so
/// do the stale and recache marks (docs/memcached.md).
#[test]
fn meta_writes_survive_a_restart() {
    let dir = TempDir::new("metarestart");
    let data = dir.path().to_str().unwrap().to_string();
    let mut server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    for (line, reply) in [
        ("ms m1 5 F9 T1000\r\nhello", "HD"),
        ("ms m2 3\r\nabc", "HD"),
        ("ms m2 3 MA\r\ndef", "HD"),
        ("ms m3 1\r\nx", "HD"),
        ("md m3", "HD"),
        ("mg m2 T2000", "HD"),
        ("ma n1 N0 J41", "HD"),
        ("ma n1", "HD"),
        ("mg stub N3000", "HD W"),
        ("ms s 3 T1000\r\nold", "HD"),
        ("md s I T500", "HD"),
    ] {
        assert_eq!(mc.command_line(line), reply, "{line}");
    }
    server.stop();
    let server = Sessiond::start(&["--data-dir", &data]);
    let mut mc = McClient::connect(server.memcache_addr());
    let mut ask = |line: &str| {
        let head = mc.command_line(line);
        match head.strip_prefix("VA ") {
            Some(_) => {
                let value = mc.read_raw_line().expect("a value line");
                format!("{head} {}", String::from_utf8_lossy(&value).trim_end())
            }
            None => head,
        }
    };
    let ttl_in = |reply: String, low: u64, high: u64| {
        let t: u64 = reply
            .split(' ')
            .find_map(|w| w.strip_prefix('t'))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no TTL in {reply:?}"));
        assert!(
            (low..=high).contains(&t),
            "TTL {t} not in {low}..={high}: {reply}"
        );
    };
    assert_eq!(ask("mg m1 v f"), "VA 5 f9 hello");
    ttl_in(ask("mg m1 t"), 990, 1000);
    assert_eq!(ask("mg m2 v"), "VA 6 abcdef");
    ttl_in(ask("mg m2 t"), 1990, 2000);
    assert_eq!(ask("mg m3 v"), "EN");
    assert_eq!(ask("mg n1 v"), "VA 2 42");
    // The vivifying client was told it won; after the restart others still see `Z`.
    let stub = ask("mg stub t");
    assert!(stub.ends_with(" Z"), "{stub}");
    ttl_in(stub, 2990, 3000);
    // Invalidated: the first reader after the restart wins the recache right.
    assert_eq!(ask("mg s v"), "VA 3 X W old");
    ttl_in(ask("mg s t"), 490, 500);
}

/// Reads `mg <key> c v` on `mc`: the reply line's flags after the CAS, the CAS, the value.
fn meta_read(mc: &mut McClient, key: &str) -> (String, u64, String) {
    let head = mc.command_line(&format!("mg {key} c v"));
    let mut words = head.split(' ');
    assert_eq!(words.next(), Some("VA"), "{key}: {head}");
    words.next();
    let cas = words
        .next()
        .and_then(|w| w.strip_prefix('c'))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no CAS in {head:?}"));
    let marks = words.collect::<Vec<_>>().join(" ");
    let value = mc.read_raw_line().expect("a value line");
    (
        marks,
        cas,
        String::from_utf8_lossy(&value).trim_end().to_string(),
    )
}

/// An acknowledged invalidation (`md … I`), stale write (`ms … C<older> I`) and recache
/// right (`mg` answered `W`) survive `kill -9`, from the journal's segments and then from a
/// snapshot, with the CAS the client was shown: a restart never serves an invalidated value
/// as fresh, nor hands a recache right out twice.
#[test]
fn meta_marks_survive_kill_9_and_a_rewrite() {
    let dir = TempDir::new("metamarks");
    let data = dir.path().to_str().unwrap().to_string();
    let args = ["--data-dir", &data, "--journal-rewrite-min-size", "1g"];
    let mut server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    for (line, reply) in [
        ("ms inv 5\r\nfresh", "HD"),
        ("md inv I", "HD"),
        ("ms won 3\r\nabc", "HD"),
        ("md won I", "HD"),
        ("ms plain 2\r\nok", "HD"),
    ] {
        assert_eq!(mc.command_line(line), reply, "{line}");
    }
    let (marks, won_cas, _) = meta_read(&mut mc, "won");
    assert_eq!(marks, "X W");
    let (_, older, _) = meta_read(&mut mc, "plain");
    assert_eq!(mc.command_line("ms plain 2\r\nnw"), "HD");
    // An older CAS with `I`: stored, but stale.
    let stale_write = format!("ms plain 3 C{older} I\r\nold");
    assert_eq!(mc.command_line(&stale_write), "HD");

    server.kill();
    server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    let (marks, cas, value) = meta_read(&mut mc, "won");
    assert_eq!(
        (marks.as_str(), cas, value.as_str()),
        ("Z X", won_cas, "abc"),
        "the recache right of `won` was lost in the restart"
    );
    // Stale, and nobody holds the recache right: the first reader wins it.
    let (marks, _, value) = meta_read(&mut mc, "inv");
    assert_eq!(
        (marks.as_str(), value.as_str()),
        ("X W", "fresh"),
        "an acknowledged invalidation was lost"
    );
    let (marks, _, value) = meta_read(&mut mc, "plain");
    assert_eq!(
        (marks.as_str(), value.as_str()),
        ("X W", "old"),
        "the stale write came back fresh"
    );

    // Now every right is out; a snapshot replaces the segments that recorded it.
    assert_eq!(mc.command_line("journal rewrite"), "OK");
    wait_for_rewrites(&mut mc, 1);
    server.kill();
    let server = Sessiond::start(&args);
    let mut mc = McClient::connect(server.memcache_addr());
    for (key, value) in [("won", "abc"), ("inv", "fresh"), ("plain", "old")] {
        let (marks, _, got) = meta_read(&mut mc, key);
        assert_eq!(
            (marks.as_str(), got.as_str()),
            ("Z X", value),
            "{key}: the snapshot lost its marks"
        );
    }
    let (_, cas, _) = meta_read(&mut mc, "won");
    assert_eq!(cas, won_cas, "the snapshot lost the CAS `md … I` gave");
}
