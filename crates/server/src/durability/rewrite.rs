//! The background rewrite: a fresh snapshot of the live keyspace replaces the segments.
//!
//! Without fork, the snapshot is *fuzzy*: the writer is first told to start a new segment
//! `S`, so every change applied from then on is recorded in `S` or later; then each shard of
//! each store is copied (under its own lock, briefly) and written out as `Put` records;
//! then a new manifest naming snapshot `S` and first segment `S` atomically replaces the old
//! one, and older segments and snapshots are deleted. Collections are written whole
//! (`PutCollection`, in parts when large), strings as `Put`. Replaying the snapshot and then
//! segment `S` converges to the current state because every record is idempotent and
//! absolute: a change that the snapshot already reflects is simply applied again.
//!
//! Expired items are left out. The server keeps serving throughout.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use sessiond_journal::manifest::Manifest;
use sessiond_journal::record::{self, Record};
use sessiond_journal::{SNAPSHOT_MAGIC, segment_name, snapshot_name};
use sessiond_store::{Mutation, SHARDS, Store, Value};

use super::Journal;
use super::files::{self, MANIFEST_FILE};
use crate::clock::now_ms;

/// Starts a rewrite of `stores` (every database, by index) on its own thread unless one is
/// running or the journal is poisoned.
pub fn start(journal: Arc<Journal>, stores: Vec<Arc<Store>>) -> bool {
    if journal.is_poisoned() || journal.stats.rewrite_running.swap(true, Ordering::SeqCst) {
        return false;
    }
    let on_error = journal.clone();
    let spawned = std::thread::Builder::new()
        .name("sessiond-rewrite".into())
        .spawn(move || {
            let started = Instant::now();
            match run(&journal, &stores) {
                Ok((id, items, bytes)) => {
                    journal.stats.rewrites.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        snapshot = %snapshot_name(id),
                        items,
                        bytes,
                        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                        "journal rewritten"
                    );
                }
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "journal rewrite failed; the old files stay in use"
                ),
            }
            journal.stats.rewrite_running.store(false, Ordering::SeqCst);
        });
    if spawned.is_err() {
        on_error
            .stats
            .rewrite_running
            .store(false, Ordering::SeqCst);
        return false;
    }
    true
}

/// Waits (bounded) for a running rewrite to finish, at shutdown.
pub fn wait_idle(journal: &Journal) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal.stats.rewrite_running.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Returns the new snapshot's id, its item count and its size in bytes.
fn run(journal: &Journal, stores: &[Arc<Store>]) -> anyhow::Result<(u64, u64, u64)> {
    let dir = journal.dir();
    // 1. Start segment S: every change from now on is in S or later.
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let mut q = journal.queue.lock().unwrap_or_else(|e| e.into_inner());
        let at = q.bytes.len();
        q.rotate = Some((at, tx));
    }
    journal.wake.notify_one();
    let id = rx
        .recv_timeout(Duration::from_secs(30))
        .context("the journal writer did not start a new segment")?;

    // 2. Write the snapshot of everything live now.
    let now = now_ms();
    let tmp = dir.join(format!("{}.tmp", snapshot_name(id)));
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    out.write_all(SNAPSHOT_MAGIC)?;
    let mut items = 0u64;
    let mut bytes = SNAPSHOT_MAGIC.len() as u64;
    let mut buf = Vec::new();
    for (db, store) in stores.iter().enumerate() {
        for shard in 0..SHARDS {
            for (key, item) in store.live_entries_in_shard(shard, now) {
                buf.clear();
                let mut members = Vec::new();
                let mutation = match &item.value {
                    Value::Str(value) => Mutation::Put {
                        key: &key,
                        value,
                        flags: item.flags,
                        cas: item.cas,
                        deadline: item.deadline,
                    },
                    collection => {
                        collection.encode_members(&mut members);
                        Mutation::PutCollection {
                            key: &key,
                            kind: collection.kind(),
                            members: &members,
                            deadline: item.deadline,
                        }
                    }
                };
                // A large collection becomes several records (see `record::encode`); an
                // item the format cannot carry fails the rewrite, and the old files stay.
                record::encode(&Record::new(db as u8, mutation), &mut buf)
                    .with_context(|| format!("writing database {db} to the snapshot"))?;
                out.write_all(&buf)?;
                bytes += buf.len() as u64;
                items += 1;
            }
            // memcached's meta marks (stale, recache right out) follow their items: a
            // `Marks` record replays onto the string just restored.
            for (key, cas, stale, recache_taken) in store.marks_in_shard(shard, now) {
                buf.clear();
                let mutation = Mutation::Marks {
                    key: &key,
                    cas,
                    stale,
                    recache_taken,
                };
                record::encode(&Record::new(db as u8, mutation), &mut buf)
                    .with_context(|| format!("writing database {db} to the snapshot"))?;
                out.write_all(&buf)?;
                bytes += buf.len() as u64;
            }
            // Revocations outlive their items: the snapshot keeps them until their time.
            for (key, until) in store.revocations_in_shard(shard, now) {
                buf.clear();
                let mutation = Mutation::Revoke { key: &key, until };
                record::encode(&Record::new(db as u8, mutation), &mut buf)
                    .with_context(|| format!("writing database {db} to the snapshot"))?;
                out.write_all(&buf)?;
                bytes += buf.len() as u64;
            }
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(snapshot_name(id)))?;
    files::sync_dir(dir)?;

    // 3. Switch: the manifest now names snapshot S and segments from S on.
    let manifest = Manifest {
        snapshot: Some(id),
        first_segment: id,
    };
    files::write_atomically(dir, MANIFEST_FILE, manifest.encode().as_bytes())?;

    // 4. Drop what the snapshot replaces.
    for old in files::segment_ids(dir)?.into_iter().filter(|&s| s < id) {
        fs::remove_file(dir.join(segment_name(old)))?;
    }
    for old in files::snapshot_ids(dir)?.into_iter().filter(|&s| s != id) {
        fs::remove_file(dir.join(snapshot_name(old)))?;
    }
    files::sync_dir(dir)?;
    let remaining: u64 = files::segment_ids(dir)?
        .into_iter()
        .filter_map(|s| fs::metadata(dir.join(segment_name(s))).ok())
        .map(|m| m.len())
        .sum();
    journal
        .stats
        .segment_bytes
        .store(remaining, Ordering::Relaxed);
    Ok((id, items, bytes))
}
