//! Writing the queue ([`WriterState`], borrowed by the writer thread or by a connection that
//! writes inline), the writer thread (appends queued records, rotates segments, fsyncs under
//! `always`) and, under `everysec`, the syncer thread (fdatasync once a second, and early
//! after every [`SYNC_EARLY_BYTES`]).
//!
//! The syncer never blocks the writer: it takes a clone of the current file handle and the
//! sequence number written so far, then fsyncs without holding any lock. That number is
//! then durable, because everything before it is either in that file or in an older
//! segment, which the writer fsynced before switching away from it.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::recovery::{OpenSegment, create_segment};
use super::{FsyncPolicy, Journal, LAZY_WRITE};

/// Under `everysec`, the writer wakes the syncer before its second is up once this much has
/// been written since. Sealing a full segment fsyncs it on the writer thread, holding up every
/// reply waiting for the journal; syncing along the way keeps what is left to flush then
/// small. Measured in a login storm (2 KiB sets at ~80k/s): with only the once-a-second sync,
/// every segment switch stalled replies for ~30 ms (p99.9 30 ms against 5-7 ms without switches).
const SYNC_EARLY_BYTES: usize = 8 << 20;

/// The file the syncer should fsync and how far it had been written.
struct SyncTarget {
    file: Arc<File>,
    written: u64,
    stop: bool,
}

/// What writing the queue needs: the writer thread's state, which a connection borrows when
/// it writes the queue itself (see [`write_queued_inline`]).
pub struct WriterState {
    segment: OpenSegment,
    target: Arc<Mutex<SyncTarget>>,
    syncer: Option<std::thread::Thread>,
    segment_limit: u64,
    rewrite_min: u64,
    /// Bytes written since the syncer was last woken early.
    unsynced: usize,
    /// The previous batch's buffer, handed back to the queue so it is not reallocated.
    spare: Vec<u8>,
}

pub fn start(
    journal: Arc<Journal>,
    segment: OpenSegment,
    segment_limit: u64,
    rewrite_min: u64,
) -> anyhow::Result<()> {
    let target = Arc::new(Mutex::new(SyncTarget {
        file: Arc::new(segment.file.try_clone()?),
        written: 0,
        stop: false,
    }));
    let mut handles = Vec::new();
    let mut syncer = None;
    if journal.policy == FsyncPolicy::EverySec {
        let (journal, target) = (journal.clone(), target.clone());
        let handle = std::thread::Builder::new()
            .name("sessiond-fsync".into())
            .spawn(move || syncer_loop(&journal, &target))?;
        syncer = Some(handle.thread().clone());
        handles.push(handle);
    }
    let state = WriterState {
        segment,
        target,
        syncer,
        segment_limit,
        rewrite_min,
        unsynced: 0,
        spare: Vec::new(),
    };
    if journal.writer.set(Mutex::new(state)).is_err() {
        anyhow::bail!("the journal writer was started twice");
    }
    let writer_journal = journal.clone();
    handles.push(
        std::thread::Builder::new()
            .name("sessiond-journal".into())
            .spawn(move || writer(&writer_journal))?,
    );
    *journal.threads.lock().unwrap_or_else(|e| e.into_inner()) = handles;
    Ok(())
}

/// The writer thread: waits until the queue must be written (`Queue::must_write`) or a
/// record nobody waits for has waited [`LAZY_WRITE`], then writes it.
fn writer(journal: &Journal) {
    let state = journal.writer.get().expect("set before the thread starts");
    loop {
        {
            let mut q = journal.queue.lock().unwrap_or_else(|e| e.into_inner());
            while !q.must_write() {
                q.writer_idle = true;
                if q.bytes.is_empty() {
                    q = journal.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                } else {
                    let (guard, waited) = journal
                        .wake
                        .wait_timeout(q, LAZY_WRITE)
                        .unwrap_or_else(|e| e.into_inner());
                    q = guard;
                    if waited.timed_out() {
                        q.writer_idle = false;
                        break;
                    }
                }
                // Also after a spurious wake-up: the writer is running until it waits again.
                q.writer_idle = false;
            }
        }
        // A connection may have written the queue meanwhile; then there is nothing to do.
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if write_queued(journal, &mut state, true) {
            return;
        }
    }
}

/// Writes the queue from the calling connection when no one else is writing and nothing
/// slow is due (a segment switch fsyncs, so it is left to the writer thread).
pub fn write_queued_inline(journal: &Journal) {
    if let Some(state) = journal.writer.get()
        && let Ok(mut state) = state.try_lock()
    {
        write_queued(journal, &mut state, false);
    }
}

/// Takes everything queued and writes it to the current segment, switching segments when a
/// rotation is asked for or the segment is full, fsyncs under `always` (and at shutdown), and
/// publishes the progress. Unless `slow_allowed`, it leaves the queue to the writer thread
/// when a segment switch or shutdown is due. Returns whether it shut the journal down
/// (everything written and fsynced; the writer must stop).
fn write_queued(journal: &Journal, state: &mut WriterState, slow_allowed: bool) -> bool {
    let (bytes, last, rotate, shutdown) = {
        let mut q = journal.queue.lock().unwrap_or_else(|e| e.into_inner());
        let slow = q.rotate.is_some()
            || q.shutdown
            || state.segment.len + q.bytes.len() as u64 >= state.segment_limit;
        if slow && !slow_allowed {
            return false;
        }
        if q.bytes.is_empty() && q.rotate.is_none() && !q.shutdown {
            return false;
        }
        q.taken = q.last;
        let bytes = std::mem::replace(&mut q.bytes, std::mem::take(&mut state.spare));
        (bytes, q.last, q.rotate.take(), q.shutdown)
    };
    if !journal.is_poisoned() {
        if let Err(error) = append(journal, state, &bytes, rotate) {
            journal.poison(format!(
                "writing the journal in {}: {error}",
                journal.dir.display()
            ));
        } else {
            journal.stats.records.store(last, Ordering::Relaxed);
            state
                .target
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .written = last;
            state.unsynced += bytes.len();
            if state.unsynced >= SYNC_EARLY_BYTES
                && let Some(syncer) = &state.syncer
            {
                syncer.unpark();
                state.unsynced = 0;
            }
            let sync = journal.policy == FsyncPolicy::Always || shutdown;
            let synced = if sync {
                sync_data(journal, &state.segment.file)
            } else {
                Ok(())
            };
            match synced {
                Ok(()) => journal.progress.send_modify(|p| {
                    p.written = last;
                    if sync {
                        p.durable = last;
                    }
                }),
                Err(error) => journal.poison(format!(
                    "fsync of the journal in {}: {error}",
                    journal.dir.display()
                )),
            }
            maybe_rewrite(journal, state.rewrite_min);
        }
    }
    let mut bytes = bytes;
    bytes.clear();
    state.spare = bytes;
    if !shutdown {
        return false;
    }
    state.target.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
    if let Some(syncer) = &state.syncer {
        syncer.unpark();
    }
    // A rewrite that asks for a rotation from now on must not wait forever.
    journal
        .queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .rotate = None;
    true
}

/// Writes `bytes` to the current segment, switching segments at the rotation point (a
/// rewrite's request) or when the segment has grown past its limit.
fn append(
    journal: &Journal,
    state: &mut WriterState,
    bytes: &[u8],
    rotate: Option<(usize, std::sync::mpsc::Sender<u64>)>,
) -> anyhow::Result<()> {
    let split = rotate.as_ref().map_or(bytes.len(), |(at, _)| *at);
    write(journal, &mut state.segment, &bytes[..split])?;
    if let Some((_, reply)) = rotate {
        switch(journal, state)?;
        let _ = reply.send(state.segment.id);
        write(journal, &mut state.segment, &bytes[split..])?;
    } else if state.segment.len >= state.segment_limit {
        switch(journal, state)?;
    }
    Ok(())
}

fn write(journal: &Journal, segment: &mut OpenSegment, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    segment.file.write_all(bytes)?;
    segment.len += bytes.len() as u64;
    journal
        .stats
        .segment_bytes
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Seals the current segment (fsynced, so it is whole on disk) and starts the next one.
fn switch(journal: &Journal, state: &mut WriterState) -> anyhow::Result<()> {
    sync_data(journal, &state.segment.file)?;
    state.segment = create_segment(&journal.dir, state.segment.id + 1)?;
    state.target.lock().unwrap_or_else(|e| e.into_inner()).file =
        Arc::new(state.segment.file.try_clone()?);
    Ok(())
}

fn sync_data(journal: &Journal, file: &File) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    file.sync_data()?;
    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    journal.stats.fsync_times.0.record(took);
    journal.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn syncer_loop(journal: &Journal, target: &Mutex<SyncTarget>) {
    let mut synced = 0;
    loop {
        // Woken early by the writer after SYNC_EARLY_BYTES, and at shutdown.
        std::thread::park_timeout(Duration::from_secs(1));
        let (file, written, stop) = {
            let t = target.lock().unwrap_or_else(|e| e.into_inner());
            (t.file.clone(), t.written, t.stop)
        };
        if stop || journal.is_poisoned() {
            return;
        }
        if written == synced {
            continue;
        }
        match sync_data(journal, &file) {
            Ok(()) => {
                synced = written;
                journal
                    .progress
                    .send_modify(|p| p.durable = p.durable.max(written));
            }
            Err(error) => journal.poison(format!(
                "fsync of the journal in {}: {error}",
                journal.dir.display()
            )),
        }
    }
}

/// Starts a rewrite when the segments written since the last one are both larger than the
/// minimum and more than twice the live data: the journal then costs more to replay than a
/// fresh snapshot would.
fn maybe_rewrite(journal: &Journal, rewrite_min: u64) {
    let written = journal.stats.segment_bytes.load(Ordering::Relaxed);
    if written < rewrite_min || journal.stats.rewrite_running.load(Ordering::Relaxed) {
        return;
    }
    let live = journal.budget.used();
    if written > live.saturating_mul(2) {
        journal.rewrite_due.store(true, Ordering::Relaxed);
    }
}
