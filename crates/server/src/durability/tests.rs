//! Unit tests of recovery and poisoning over real files, with time passed in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sessiond_journal::scan::{Stop, scan};
use sessiond_journal::{SEGMENT_MAGIC, Version, segment_name};
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
    crate::changes::ChangeObserver::shared(db, journal, None, None)
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
    let (_, stop) = scan(Version::V2, &bytes[offset..], true, |_| {});
    assert_eq!(stop, Stop::Clean);
    scan(Version::V2, &bytes[SEGMENT_MAGIC.len()..], true, |record| {
        let mut encoded = Vec::new();
        sessiond_journal::record::encode(&record, &mut encoded).unwrap();
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

/// A key of `len` bytes that starts with `tag` and spells its length, so keys of different
/// lengths never collide and one cut short would come back as another key.
fn long_key(tag: u8, len: usize) -> Vec<u8> {
    let mut key = format!("{}:{len}:", tag as char).into_bytes();
    key.extend((0..len.saturating_sub(key.len())).map(|i| b'a' + (i % 26) as u8));
    key.truncate(len);
    key
}

/// The records of segment `id` in `dir`: whether each continues a run of parts.
fn record_parts(dir: &Path, file: &str) -> Vec<bool> {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let mut parts = Vec::new();
    let (_, stop) = scan(Version::V2, &bytes[SEGMENT_MAGIC.len()..], true, |record| {
        parts.push(record.continues)
    });
    assert_eq!(stop, Stop::Clean);
    parts
}

fn wait_for_rewrite(opened: &Opened, wanted: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while opened
        .journal
        .stats
        .rewrites
        .load(std::sync::atomic::Ordering::Relaxed)
        < wanted
    {
        assert!(
            std::time::Instant::now() < deadline,
            "rewrite did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn set_string(s: &sessiond_store::Store, key: &[u8], value: &[u8]) {
    mc_write(
        s,
        key,
        value,
        3,
        Some(NOW + 3_600_000),
        Condition::Always,
        NOW,
    )
    .unwrap();
}

#[test]
fn long_keys_and_large_collections_survive_restarts_renames_and_rewrites() {
    use sessiond_journal::record::PART_BYTES;
    use sessiond_store::{IfTargetExists, RenameOutcome, ZAddFlags};
    // The default --max-item-size, hence the default RESP bulk limit: the longest key and
    // value a client can send with the default configuration.
    const MAX_ITEM: usize = 1 << 20;
    let dir = TempDir::new("large");
    let opened = open(
        &options(&dir.0, FsyncPolicy::EverySec),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    let s = opened.stores[0].clone();
    // Keys at memcached's limit, at and just past V1's u16 limit (65,536 is also the
    // smallest RESP bulk limit any configuration has), and at the default bulk limit.
    for len in [250, 65_535, 65_536, MAX_ITEM] {
        set_string(
            &s,
            &long_key(b'k', len),
            format!("value of {len}").as_bytes(),
        );
    }
    // A value at the item size limit under a key at the bulk limit.
    set_string(&s, &long_key(b'v', MAX_ITEM), &vec![b'x'; MAX_ITEM]);
    // A hash grown field by field (one element record each) well past one part.
    for i in 0..10u8 {
        let field = format!("field{i}");
        s.hash_set(b"hash", &[(field.as_bytes(), &vec![i; MAX_ITEM])], NOW)
            .unwrap();
    }
    // A set created by one SADD larger than a part: its creation record is written in parts.
    let members: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("member-{i:06}-{}", "m".repeat(500)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = members.iter().map(|m| m.as_slice()).collect();
    assert_eq!(s.set_add(b"set", &refs, NOW).unwrap(), members.len());
    // A sorted set grown by ZADDs past a part.
    for batch in 0..10 {
        let scored: Vec<(f64, &[u8])> = members[batch * 2000..(batch + 1) * 2000]
            .iter()
            .enumerate()
            .map(|(i, m)| (i as f64 - 0.5, m.as_slice()))
            .collect();
        s.zset_add(b"zset", &scored, ZAddFlags::default(), NOW)
            .unwrap();
    }
    // RENAME of the large hash to a key V1 could not write: the whole collection, in parts.
    let renamed = long_key(b'h', 70_000);
    assert_eq!(
        s.rename(b"hash", &renamed, IfTargetExists::Replace, NOW),
        RenameOutcome::Renamed
    );
    let before = entries(&opened, NOW);
    assert_eq!(before.len(), 8);
    let encoded = |key: &[u8]| {
        let (_, value, _) = before.iter().find(|(k, ..)| k == key).unwrap();
        let mut members = Vec::new();
        value.encode_members(&mut members);
        members.len()
    };
    for key in [&renamed[..], b"set", b"zset"] {
        assert!(encoded(key) > PART_BYTES, "a collection larger than a part");
    }
    let used = s.budget().used();
    drop(s);
    close(opened);
    let parts = record_parts(&dir.0, &segment_name(1));
    // About 10 MB each: a part of up to PART_BYTES, then the last one.
    assert_eq!(
        parts.iter().filter(|&&p| p).count(),
        2,
        "the set's creation and the hash's rename, each a run of two records: {parts:?}"
    );

    // A restart replays the segment.
    let opened = open(
        &options(&dir.0, FsyncPolicy::EverySec),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    assert!(
        entries(&opened, NOW) == before,
        "data changed across a restart"
    );
    assert_eq!(opened.stores[0].budget().used(), used);
    // A rewrite writes the same data as a snapshot, large collections in parts.
    assert!(opened.journal.request_rewrite(&opened.stores));
    wait_for_rewrite(&opened, 1);
    close(opened);
    let snapshot = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|f| f.ends_with(".snap"))
        .expect("a snapshot");
    let snapshot_parts = record_parts(&dir.0, &snapshot);
    // Five strings, then three collections of two records each.
    assert_eq!(snapshot_parts.len(), 5 + 3 * 2, "{snapshot_parts:?}");
    assert_eq!(snapshot_parts.iter().filter(|&&p| p).count(), 3);
    let (opened, _) = recover(
        &options(&dir.0, FsyncPolicy::EverySec),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    assert!(
        entries(&opened, NOW) == before,
        "data changed across a rewrite"
    );
    assert_eq!(opened.stores[0].budget().used(), used);
    close(opened);
}

#[test]
fn a_run_of_parts_cut_by_a_crash_leaves_the_key_as_it_was() {
    use sessiond_store::{IfTargetExists, RenameOutcome};
    let dir = TempDir::new("cut-run");
    let opened = open(
        &options(&dir.0, FsyncPolicy::Always),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    let s = opened.stores[0].clone();
    s.set_add(b"target", &[b"old"], NOW).unwrap();
    let members: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("{i:06}{}", "m".repeat(500)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = members.iter().map(|m| m.as_slice()).collect();
    s.set_add(b"source", &refs, NOW).unwrap();
    let source = entries(&opened, NOW);
    assert_eq!(
        s.rename(b"source", b"target", IfTargetExists::Replace, NOW),
        RenameOutcome::Renamed
    );
    drop(s);
    close(opened);

    // Cut the segment right after the first part of the rename's run (a record boundary, as
    // a crash between two writes of the queue would leave it).
    let path = dir.0.join(segment_name(1));
    let bytes = std::fs::read(&path).unwrap();
    let mut ends = Vec::new();
    let mut offset = SEGMENT_MAGIC.len();
    scan(Version::V2, &bytes[offset..], true, |record| {
        let mut encoded = Vec::new();
        sessiond_journal::record::encode_frame(Version::V2, &record, &mut encoded).unwrap();
        offset += encoded.len();
        ends.push((offset, record.continues));
    });
    // [target] [source: part, last] [target: part, last] [remove source]
    let flags: Vec<bool> = ends.iter().map(|&(_, continues)| continues).collect();
    assert_eq!(flags, [false, true, false, true, false, false], "{ends:?}");
    let cut = ends[3].0;
    std::fs::write(&path, &bytes[..cut]).unwrap();

    let opened = open(
        &options(&dir.0, FsyncPolicy::Always),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    assert!(
        entries(&opened, NOW) == source,
        "the cut rename must be undone whole: old target, whole source"
    );
    // New records go to a new segment, so they can never be taken for the run's rest.
    set_string(&opened.stores[0], b"after", b"1");
    close(opened);
    assert_eq!(std::fs::read(&path).unwrap().len(), cut);
    assert_eq!(
        &std::fs::read(dir.0.join(segment_name(2))).unwrap()[..8],
        SEGMENT_MAGIC
    );
    let (opened, _) = recover(
        &options(&dir.0, FsyncPolicy::Always),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    assert_eq!(value(&opened, "after", NOW).as_deref(), Some("1"));
    let mut want = source.clone();
    want.extend(
        entries(&opened, NOW)
            .into_iter()
            .filter(|(k, ..)| k == "after"),
    );
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(entries(&opened, NOW) == want);
    close(opened);
}

#[test]
fn a_v1_journal_is_replayed_and_continued_in_a_new_segment() {
    use sessiond_journal::SEGMENT_MAGIC_V1;
    use sessiond_journal::manifest::Manifest;
    use sessiond_journal::record::{Record, encode_frame};
    use sessiond_store::{Kind, Mutation};
    let dir = TempDir::new("v1");
    std::fs::write(dir.0.join("MANIFEST"), Manifest::fresh().encode()).unwrap();
    // A segment as the previous build wrote it: u16 key lengths.
    let mut v1 = SEGMENT_MAGIC_V1.to_vec();
    let members = [&3u32.to_le_bytes()[..], b"one"].concat();
    for mutation in [
        Mutation::Put {
            key: b"old",
            value: b"from v1",
            flags: 5,
            cas: 41,
            deadline: None,
        },
        Mutation::PutCollection {
            key: b"set",
            kind: Kind::Set,
            members: &members,
            deadline: None,
        },
    ] {
        encode_frame(Version::V1, &Record::new(0, mutation), &mut v1).unwrap();
    }
    std::fs::write(dir.0.join(segment_name(1)), &v1).unwrap();

    let opened = open(
        &options(&dir.0, FsyncPolicy::Always),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    assert_eq!(value(&opened, "old", NOW).as_deref(), Some("from v1"));
    assert_eq!(
        opened.stores[0].get_if_string(b"old", NOW).unwrap().flags,
        5
    );
    set_string(&opened.stores[0], &long_key(b'n', 70_000), b"new");
    let before = entries(&opened, NOW);
    assert_eq!(before.len(), 3);
    close(opened);
    assert_eq!(
        std::fs::read(dir.0.join(segment_name(1))).unwrap(),
        v1,
        "the V1 segment is left as it was"
    );
    assert_eq!(
        &std::fs::read(dir.0.join(segment_name(2))).unwrap()[..8],
        SEGMENT_MAGIC
    );
    let (opened, _) = recover(
        &options(&dir.0, FsyncPolicy::Always),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    assert!(entries(&opened, NOW) == before);
    close(opened);
}

#[test]
fn a_change_the_format_cannot_carry_poisons_the_journal_instead_of_being_written() {
    use sessiond_journal::record::MAX_PAYLOAD;
    use sessiond_store::Mutation;
    let dir = TempDir::new("too-large");
    let opened = open(
        &options(&dir.0, FsyncPolicy::Always),
        budget(),
        NOW,
        &journal_only,
    )
    .unwrap();
    // Unreachable through the server's limits (key, field and value ≤ 1 GiB each), so the
    // journal is called directly. A zeroed allocation is mapped lazily and never touched:
    // the refusal comes before any copy.
    let value = vec![0u8; MAX_PAYLOAD];
    opened.journal.append(
        0,
        &Mutation::Put {
            key: b"huge",
            value: &value,
            flags: 0,
            cas: 1,
            deadline: None,
        },
    );
    drop(value);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!runtime.block_on(opened.journal.acknowledge_queued()));
    assert!(opened.journal.is_poisoned());
    let reason = opened.journal.poison_reason().unwrap();
    assert!(reason.contains("record size limit"), "{reason}");
    close(opened);
    assert_eq!(
        std::fs::read(dir.0.join(segment_name(1))).unwrap(),
        SEGMENT_MAGIC,
        "nothing was written"
    );
}
