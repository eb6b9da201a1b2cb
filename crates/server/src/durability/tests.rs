//! Unit tests of recovery and poisoning over real files, with time passed in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sessiond_journal::scan::{Stop, scan};
use sessiond_journal::{SEGMENT_MAGIC, segment_name};
use sessiond_store::{Budget, Condition, DeadlineChange, Observer, Previous, Write, WriteOutcome};

use super::recovery::OpenSegment;
use super::{FsyncPolicy, Journal, OpenOptions, Opened, open, recover, writer};

const NOW: u64 = 1_800_000_000_000;

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sessiond-unit-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(dir: &Path, policy: FsyncPolicy) -> OpenOptions {
    OpenOptions {
        dir: dir.to_path_buf(),
        policy,
        recover_truncate: false,
        databases: 2,
        segment_limit: 1 << 30,
        rewrite_min_size: u64::MAX,
    }
}

/// Each store journals its changes; nothing publishes.
fn journal_only(db: u8, journal: &Arc<Journal>) -> Arc<dyn Observer> {
    crate::changes::ChangeObserver::shared(db, journal, None)
}

/// Opens (recovers, then starts the writer of) the journal in `dir`.
fn open_at(dir: &Path, policy: FsyncPolicy) -> anyhow::Result<Opened> {
    open(&options(dir, policy), budget(), NOW, &journal_only)
}

/// Recovers the journal in `dir` as of `now`, without starting the writer.
fn recover_at(
    dir: &Path,
    policy: FsyncPolicy,
    now: u64,
) -> anyhow::Result<(Opened, super::recovery::Recovered)> {
    recover(&options(dir, policy), budget(), now, &journal_only)
}

fn budget() -> Arc<Budget> {
    Arc::new(Budget::new(u64::MAX))
}

/// A write as memcached's `set` makes it.
fn mc_write(
    s: &sessiond_store::Store,
    key: &[u8],
    value: &[u8],
    flags: u32,
    deadline: Option<u64>,
    condition: Condition,
    now: u64,
) -> Result<WriteOutcome, sessiond_store::StoreError> {
    let how = Write {
        condition,
        flags,
        deadline: DeadlineChange::Set(deadline),
        previous: Previous::Ignore,
    };
    s.write(key, value, how, now).map(|w| w.outcome)
}

fn close(opened: Opened) {
    opened.journal.shutdown();
}

fn value(opened: &Opened, key: &str, now: u64) -> Option<String> {
    opened.stores[0]
        .get_if_string(key.as_bytes(), now)
        .map(|v| String::from_utf8(v.value.to_vec()).unwrap())
}

#[test]
fn recovery_after_a_cut_at_every_offset_of_the_last_records_gives_a_valid_prefix() {
    let dir = TempDir::new("cut");
    // The state of the seven keys after each journaled change, in order.
    let mut states: Vec<Vec<Option<String>>> = Vec::new();
    let mut model: Vec<Option<String>> = vec![None; 7];
    let opened = open_at(&dir.0, FsyncPolicy::Always).unwrap();
    for i in 0..30 {
        let k = i % 7;
        let key = format!("k{k}");
        if i % 4 == 3 && model[k].is_some() {
            opened.stores[0].remove_if_string(key.as_bytes(), 0, NOW);
            model[k] = None;
        } else {
            let v = format!("value-{i}-{}", "x".repeat(i % 5));
            mc_write(
                &opened.stores[0],
                key.as_bytes(),
                v.as_bytes(),
                0,
                None,
                Condition::Always,
                NOW,
            )
            .unwrap();
            model[k] = Some(v);
        }
        states.push(model.clone());
    }
    close(opened);

    let segment = dir.0.join(segment_name(1));
    let bytes = std::fs::read(&segment).unwrap();
    let mut ends = vec![];
    let mut offset = SEGMENT_MAGIC.len();
    let (_, stop) = scan(&bytes[offset..], true, |_| {});
    assert_eq!(stop, Stop::Clean);
    scan(&bytes[SEGMENT_MAGIC.len()..], true, |record| {
        let mut encoded = Vec::new();
        sessiond_journal::record::encode(&record, &mut encoded);
        offset += encoded.len();
        ends.push(offset);
    });
    assert_eq!(ends.len(), states.len(), "one record per change");

    let first = ends[ends.len() - 4];
    for cut in first..=bytes.len() {
        let copy = TempDir::new("cut-copy");
        std::fs::copy(dir.0.join("MANIFEST"), copy.0.join("MANIFEST")).unwrap();
        std::fs::write(copy.0.join(segment_name(1)), &bytes[..cut]).unwrap();
        let (opened, recovered) = recover_at(&copy.0, FsyncPolicy::Always, NOW).unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        let want = &states[whole - 1];
        for (k, want) in want.iter().enumerate() {
            assert_eq!(
                &value(&opened, &format!("k{k}"), NOW),
                want,
                "cut at {cut}: key k{k}"
            );
        }
        assert_eq!(
            recovered.segment.len,
            ends[whole - 1] as u64,
            "cut at {cut}: the torn tail must be cut off"
        );
        assert_eq!(
            std::fs::metadata(copy.0.join(segment_name(1)))
                .unwrap()
                .len(),
            ends[whole - 1] as u64
        );
        close(opened);
    }
}

#[test]
fn deadlines_are_absolute_across_recovery() {
    let dir = TempDir::new("deadline");
    let opened = open_at(&dir.0, FsyncPolicy::EverySec).unwrap();
    let s = &opened.stores[0];
    mc_write(
        s,
        b"short",
        b"1",
        0,
        Some(NOW + 3000),
        Condition::Always,
        NOW,
    )
    .unwrap();
    mc_write(
        s,
        b"touched",
        b"2",
        0,
        Some(NOW + 1000),
        Condition::Always,
        NOW,
    )
    .unwrap();
    s.touch_if_string(b"touched", Some(NOW + 9000), NOW + 500)
        .unwrap();
    mc_write(
        s,
        b"persisted",
        b"3",
        0,
        Some(NOW + 1000),
        Condition::Always,
        NOW,
    )
    .unwrap();
    s.touch_if_string(b"persisted", None, NOW + 500).unwrap();
    mc_write(
        &opened.stores[1],
        b"other-db",
        b"4",
        7,
        None,
        Condition::Always,
        NOW,
    )
    .unwrap();
    close(opened);

    let (opened, _) = recover_at(&dir.0, FsyncPolicy::EverySec, NOW + 2999).unwrap();
    assert_eq!(
        opened.stores[0]
            .get_if_string(b"short", NOW + 2999)
            .unwrap()
            .deadline,
        Some(NOW + 3000)
    );
    assert_eq!(
        opened.stores[0]
            .get_if_string(b"touched", NOW + 2999)
            .unwrap()
            .deadline,
        Some(NOW + 9000)
    );
    assert_eq!(
        opened.stores[0]
            .get_if_string(b"persisted", NOW + 2999)
            .unwrap()
            .deadline,
        None
    );
    assert_eq!(
        opened.stores[1]
            .get_if_string(b"other-db", NOW)
            .unwrap()
            .flags,
        7
    );
    close(opened);
    let (opened, _) = recover_at(&dir.0, FsyncPolicy::EverySec, NOW + 3000).unwrap();
    assert_eq!(
        opened.stores[0].get_if_string(b"short", NOW + 3000),
        None,
        "a restart must not extend a TTL"
    );
    assert_eq!(
        opened.stores[0].len(),
        2,
        "recovery reaps what expired while the server was down"
    );
    close(opened);
}

#[test]
fn a_failed_write_poisons_the_journal() {
    let dir = TempDir::new("poison");
    let (opened, recovered) = recover_at(&dir.0, FsyncPolicy::Always, NOW).unwrap();
    drop(recovered);
    // Fault injection without a hook in the server: /dev/full fails every write with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .append(true)
        .open("/dev/full")
        .unwrap();
    writer::start(
        opened.journal.clone(),
        OpenSegment {
            id: 1,
            file: full,
            len: 0,
        },
        1 << 30,
        u64::MAX,
    )
    .unwrap();
    mc_write(
        &opened.stores[0],
        b"k",
        b"v",
        0,
        None,
        Condition::Always,
        NOW,
    )
    .unwrap();
    let journal = opened.journal.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let acknowledged = runtime.block_on(journal.acknowledge_queued());
    assert!(
        !acknowledged,
        "a write that failed must never be acknowledged"
    );
    assert!(journal.is_poisoned());
    let reason = journal.poison_reason().unwrap();
    assert!(reason.contains("No space left"), "{reason}");
    // Reads keep working.
    assert!(opened.stores[0].get_if_string(b"k", NOW).is_some());
    close(opened);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = TempDir::new("lock");
    let opened = open_at(&dir.0, FsyncPolicy::No).unwrap();
    let Err(second) = open_at(&dir.0, FsyncPolicy::No) else {
        panic!("opened twice")
    };
    assert!(second.to_string().contains("another sessiond"), "{second}");
    close(opened);
    let reopened = open_at(&dir.0, FsyncPolicy::No).unwrap();
    close(reopened);
}

/// Every live item of database 0, sorted: key, value, deadline.
fn entries(opened: &Opened, now: u64) -> Vec<(bytes::Bytes, sessiond_store::Value, Option<u64>)> {
    let mut all: Vec<_> = (0..sessiond_store::SHARDS)
        .flat_map(|i| opened.stores[0].live_entries_in_shard(i, now))
        .map(|(k, e)| (k, e.value, e.deadline))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn collections_survive_a_restart_and_a_rewrite() {
    use sessiond_store::{IfTargetExists, ZAddFlags};
    let dir = TempDir::new("collections");
    let opened = open_at(&dir.0, FsyncPolicy::EverySec).unwrap();
    let s = opened.stores[0].clone();
    let write = |s: &sessiond_store::Store, round: u8| {
        let key = |name: &str| format!("{name}{}", round % 3).into_bytes();
        s.hash_set(
            &key("h"),
            &[(b"creationTime", &[round]), (b"user", b"alice")],
            NOW,
        )
        .unwrap();
        s.hash_remove(&key("h"), &[b"user"], NOW).unwrap();
        s.hash_add_i64(&key("h"), b"n", 2, NOW).unwrap();
        s.set_add(&key("s"), &[b"expires:a", &[round]], NOW)
            .unwrap();
        s.set_remove(&key("s"), &[b"expires:a"], NOW).unwrap();
        s.zset_add(
            &key("z"),
            &[(f64::from(round), b"m"), (1.5, b"n")],
            ZAddFlags::default(),
            NOW,
        )
        .unwrap();
        s.zset_remove(&key("z"), &[b"n"], NOW).unwrap();
        s.retime(&key("h"), NOW, |_, _| {
            ((), Some(Some(NOW + 60_000 + u64::from(round))))
        });
        let how = Write {
            condition: Condition::Always,
            flags: 0,
            deadline: DeadlineChange::Set(None),
            previous: Previous::Ignore,
        };
        s.write(b"str", &[round], how, NOW).unwrap();
        s.rename(&key("h"), &key("moved"), IfTargetExists::Replace, NOW);
    };
    for round in 0..10 {
        write(&s, round);
    }
    // A rewrite in the middle: the snapshot holds collections whole, and the segment after
    // it overlaps with the snapshot's contents.
    assert!(opened.journal.request_rewrite(&opened.stores));
    for round in 10..20 {
        write(&s, round);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while opened
        .journal
        .stats
        .rewrites
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "rewrite did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for round in 20..25 {
        write(&s, round);
    }
    let before = entries(&opened, NOW);
    assert!(before.len() >= 10, "{before:?}");
    let used = opened.stores[0].budget().used();
    drop(s);
    close(opened);
    let (opened, _) = recover_at(&dir.0, FsyncPolicy::EverySec, NOW).unwrap();
    assert_eq!(entries(&opened, NOW), before);
    assert_eq!(
        opened.stores[0].budget().used(),
        used,
        "collections are charged the same"
    );
    close(opened);
}
