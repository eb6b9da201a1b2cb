//! Durability: the journal that makes acknowledged writes survive a crash or restart.
//!
//! Every change a store applies reaches [`Journal::append`] (through the server's store
//! observer, `crate::changes`) while the store still holds the changed key's shard lock, so
//! records of one key are appended in the order the changes were applied. The journal knows
//! nothing of the stores beyond that: a rewrite is handed them when it starts. Records go into an in-memory queue; a writer thread
//! appends the queue to the current segment file, and fsyncs according to the policy:
//!
//! - [`FsyncPolicy::Always`]: group commit. The writer writes whatever is queued, fdatasyncs,
//!   and only then marks it durable; a mutation's reply is not sent before its record is
//!   durable. Records that arrive during an fsync, from every connection, share the next one.
//! - [`FsyncPolicy::EverySec`] (default): a reply waits until its record has been written to
//!   the OS (so a `kill -9` of sessiond loses nothing acknowledged); a separate thread
//!   fdatasyncs once a second, so a power loss can lose about the last second.
//! - [`FsyncPolicy::No`]: like everysec, but the OS decides when data reaches the disk.
//!
//! A TTL refresh (touch, GAT) is a small record that never waits: it rides in the next group.
//!
//! Under `everysec` and `no`, a connection that must wait for its records usually writes the
//! queue itself: it yields once, so that the other connections of its worker thread add
//! their records, then writes everything queued with one `write` and publishes the progress,
//! as Redis's event loop writes its AOF buffer before replying. Measured against waking the
//! writer thread for every wait (alternated runs, 50 connections): the PHP session cycle
//! +18%, the login storm +12%, the session mix +9% with its p99 under 1 ms, and context
//! switches down by 5x. Without the yield, each connection wrote its own record and
//! throughput did not improve. The cost is that a `write` to the page cache runs on a worker
//! thread; a disk too slow to absorb it would hold up these replies either way. A segment
//! switch (which fsyncs) and everything under `always` stay on the writer thread.
//!
//! The writer thread is woken only when a connection waits for a record it could not write
//! itself, a rotation or shutdown is asked for, or the queue passes [`QUEUE_WAKE_BYTES`];
//! records that nobody waits for are otherwise picked up within [`LAZY_WRITE`]. Waking it for
//! every record cost a futex call and a context switch per mutation, which on a touch-heavy
//! load was a tenth of the server's CPU.
//!
//! A failed write or fsync **poisons** the journal: the error is logged, `stats` shows it,
//! replies waiting on it are never sent (the connection is closed, so the client does not
//! see an acknowledgement), and every later mutation is refused with a server error. Reads
//! keep working. sessiond never silently carries on after losing the ability to persist.
//!
//! Recovery ([`recovery`]) and the background rewrite ([`rewrite`]) live in submodules; the
//! record format is the pure `sessiond-journal` crate.

mod files;
pub mod recovery;
pub mod rewrite;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sessiond_journal::record::{self, Record};
use sessiond_store::{Budget, Mutation, Observer, Store};
use tokio::sync::watch;

/// When the journal's data reaches the disk; see the module documentation for the promise
/// each policy makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A mutation is acknowledged only once its record is on disk (group commit).
    Always,
    /// Written to the OS before the reply; fsynced once a second.
    EverySec,
    /// Written to the OS before the reply; never fsynced explicitly.
    No,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            other => Err(format!(
                "--fsync must be always, everysec or no, not {other:?}"
            )),
        }
    }
}

impl FsyncPolicy {
    /// The policy's name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }
}

/// How far the journal has got, published by the writer threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every record up to this sequence number has been written to the OS.
    pub written: u64,
    /// Every record up to this sequence number is on disk.
    pub durable: u64,
    /// The journal is poisoned; nothing more will be written.
    pub failed: bool,
}

/// How long a record that nobody waits for (a TTL refresh) may stay queued before the writer
/// picks it up; it usually goes sooner, with the next record somebody waits for.
pub const LAZY_WRITE: Duration = Duration::from_millis(5);

/// Queued bytes that wake the writer even though nobody waits for them, bounding the queue.
pub const QUEUE_WAKE_BYTES: usize = 1 << 20;

/// Records waiting for the writer.
struct Queue {
    bytes: Vec<u8>,
    /// Sequence number of the last record queued.
    last: u64,
    /// Sequence number of the last record handed to the writer.
    taken: u64,
    /// The highest sequence number a connection waits for.
    wanted: u64,
    /// The writer is waiting on the condition variable (so a notify is needed to wake it).
    writer_idle: bool,
    /// A rotation request: the offset in `bytes` where the new segment starts, and where to
    /// report the new segment's id.
    rotate: Option<(usize, std::sync::mpsc::Sender<u64>)>,
    shutdown: bool,
}

impl Queue {
    /// Wakes the writer if it is waiting; a running writer checks the queue before it waits
    /// again, so it needs no signal (and sending one would cost a futex call).
    fn wake_writer(&mut self, wake: &Condvar) {
        if self.writer_idle {
            self.writer_idle = false;
            wake.notify_one();
        }
    }

    /// Whether the writer has something it must write now.
    fn must_write(&self) -> bool {
        self.shutdown
            || self.rotate.is_some()
            || self.wanted > self.taken
            || self.bytes.len() >= QUEUE_WAKE_BYTES
    }
}

/// The buckets (upper bounds, in microseconds) of [`FsyncTimes`].
pub const FSYNC_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

/// How long each fsync (`fdatasync`) of the journal took, in microseconds: a fixed-bucket
/// histogram the writer and syncer threads record into (two relaxed atomic adds per fsync).
#[derive(Debug)]
pub struct FsyncTimes(pub sessiond_store::Histogram);

impl Default for FsyncTimes {
    fn default() -> Self {
        FsyncTimes(sessiond_store::Histogram::new(&FSYNC_BOUNDS_US))
    }
}

/// Counters about the journal, for `stats`.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Bytes in the segments written since the last rewrite (what a rewrite would reclaim).
    pub segment_bytes: AtomicU64,
    /// Completed rewrites.
    pub rewrites: AtomicU64,
    /// Whether a rewrite is running.
    pub rewrite_running: AtomicBool,
    /// fsyncs performed.
    pub fsyncs: AtomicU64,
    /// How long they took.
    pub fsync_times: FsyncTimes,
    /// Records appended since start.
    pub records: AtomicU64,
}

/// The journal. Shared by the stores' observers (to append), the connections (to wait for
/// acknowledgement) and the writer threads.
pub struct Journal {
    dir: PathBuf,
    policy: FsyncPolicy,
    queue: Mutex<Queue>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
    poisoned: AtomicBool,
    poison_reason: Mutex<Option<String>>,
    /// Kept for the life of the server: the lock that keeps a second sessiond out.
    _lock: File,
    /// The memory budget of every store: how much data is live, which decides when a
    /// rewrite is due.
    budget: Arc<Budget>,
    /// The writer found a rewrite due; the server starts it with the stores
    /// ([`Journal::take_rewrite_due`]).
    rewrite_due: AtomicBool,
    /// Counters.
    pub stats: JournalStats,
    /// The segment being written and what writing needs; set when the writer starts.
    writer: std::sync::OnceLock<Mutex<writer::WriterState>>,
    /// The writer and syncer threads, joined at shutdown.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Journal {
    /// Whether writes must be refused.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Why the journal is poisoned, if it is.
    pub fn poison_reason(&self) -> Option<String> {
        self.poison_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The fsync policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until every record queued so far may be acknowledged under the policy (see
    /// [`Journal::acknowledged`]), waking the writer for them.
    pub async fn acknowledge_queued(&self) -> bool {
        let seq = self.queue.lock().unwrap_or_else(|e| e.into_inner()).last;
        if self.policy != FsyncPolicy::Always && self.progress.borrow().written < seq {
            // Let the other connections of this worker run first, so their records join
            // the queue, then write the whole batch from here: one `write` for many
            // replies and no trip through the writer thread (see the module docs).
            tokio::task::yield_now().await;
            if self.progress.borrow().written < seq {
                writer::write_queued_inline(self);
            }
        }
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if seq > q.taken {
                q.wanted = q.wanted.max(seq);
                q.wake_writer(&self.wake);
            }
        }
        self.acknowledged(seq).await
    }

    /// The writer's current progress.
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until record `seq` may be acknowledged under the policy: on disk for `always`,
    /// written to the OS otherwise. Returns `false` if the journal failed first, in which
    /// case the caller must not acknowledge.
    pub async fn acknowledged(&self, seq: u64) -> bool {
        let always = self.policy == FsyncPolicy::Always;
        let mut rx = self.progress.subscribe();
        let reached = rx
            .wait_for(|p| {
                p.failed
                    || if always {
                        p.durable >= seq
                    } else {
                        p.written >= seq
                    }
            })
            .await;
        matches!(reached, Ok(p) if !p.failed)
    }

    /// Marks the journal failed: logged once, shown in stats, and every waiter released.
    fn poison(&self, reason: String) {
        if !self.poisoned.swap(true, Ordering::SeqCst) {
            tracing::error!(%reason, dir = %self.dir.display(), "journal failed: refusing writes from now on");
            *self.poison_reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        }
        self.progress.send_modify(|p| p.failed = true);
    }

    /// Queues the record of `mutation`, applied to database `db`. Called under the changed
    /// key's shard lock, so the records of one key are queued in the order of their changes.
    ///
    /// A change the record format cannot carry (one record over the size limit; the server's
    /// limits on keys and values make that unreachable) poisons the journal instead of
    /// writing a record that could not be read back: the change is applied in memory but
    /// never acknowledged, and every later write is refused, as after a failed write.
    pub fn append(&self, db: u8, mutation: &Mutation<'_>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = record::encode(&Record::new(db, *mutation), &mut q.bytes) {
            drop(q);
            self.poison(format!("a change could not be journaled: {error}"));
            return;
        }
        q.last += 1;
        if q.bytes.len() >= QUEUE_WAKE_BYTES {
            q.wake_writer(&self.wake);
        }
    }

    /// Starts a background rewrite of `stores` (every database, by index) unless one is
    /// running. Returns whether one was started.
    pub fn request_rewrite(self: &Arc<Self>, stores: &[Arc<Store>]) -> bool {
        rewrite::start(self.clone(), stores.to_vec())
    }

    /// Whether the writer found that the journal has outgrown the live data, so a rewrite is
    /// due (the server then starts one with [`Journal::request_rewrite`]). Reading clears it.
    pub fn take_rewrite_due(&self) -> bool {
        self.rewrite_due.swap(false, Ordering::Relaxed)
    }

    /// Flushes and fsyncs everything queued, then stops the writer threads. Called once, at
    /// shutdown, after every connection has finished.
    pub fn shutdown(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.shutdown = true;
        drop(q);
        self.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
        rewrite::wait_idle(self);
    }
}

/// What [`open`] returns: the journal and the stores it recovered.
pub struct Opened {
    /// The running journal.
    pub journal: Arc<Journal>,
    /// One store per database, filled from disk.
    pub stores: Vec<Arc<Store>>,
}

/// Options for [`open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The data directory.
    pub dir: PathBuf,
    /// The fsync policy.
    pub policy: FsyncPolicy,
    /// Drop everything from a corrupt record on, instead of refusing to start.
    pub recover_truncate: bool,
    /// Number of databases.
    pub databases: usize,
    /// Size above which the current segment is closed and a new one started.
    pub segment_limit: u64,
    /// A rewrite starts when the segments since the last one exceed this size and twice the
    /// live data.
    pub rewrite_min_size: u64,
}

/// Makes the observer of database `db`'s store; it must hand every change to
/// [`Journal::append`].
pub type MakeObserver<'a> = &'a dyn Fn(u8, &Arc<Journal>) -> Arc<dyn Observer>;

/// Locks the data directory, recovers every database from it and starts the writer. Each
/// store gets the observer `observer` makes for it.
pub fn open(
    options: &OpenOptions,
    budget: Arc<Budget>,
    now: u64,
    observer: MakeObserver<'_>,
) -> anyhow::Result<Opened> {
    let (opened, recovered) = recover(options, budget, now, observer)?;
    writer::start(
        opened.journal.clone(),
        recovered.segment,
        options.segment_limit,
        options.rewrite_min_size,
    )?;
    Ok(opened)
}

/// Everything [`open`] does except starting the writer.
fn recover(
    options: &OpenOptions,
    budget: Arc<Budget>,
    now: u64,
    observer: MakeObserver<'_>,
) -> anyhow::Result<(Opened, recovery::Recovered)> {
    let lock = files::lock_dir(&options.dir)?;
    let (progress, _) = watch::channel(Progress::default());
    let journal = Arc::new(Journal {
        dir: options.dir.clone(),
        policy: options.policy,
        queue: Mutex::new(Queue {
            bytes: Vec::new(),
            last: 0,
            taken: 0,
            wanted: 0,
            writer_idle: false,
            rotate: None,
            shutdown: false,
        }),
        wake: Condvar::new(),
        progress,
        poisoned: AtomicBool::new(false),
        poison_reason: Mutex::new(None),
        _lock: lock,
        budget: budget.clone(),
        rewrite_due: AtomicBool::new(false),
        stats: JournalStats::default(),
        writer: std::sync::OnceLock::new(),
        threads: Mutex::new(Vec::new()),
    });
    let stores: Vec<Arc<Store>> = (0..options.databases)
        .map(|db| {
            Arc::new(Store::with_observer(
                budget.clone(),
                now,
                Some(observer(db as u8, &journal)),
            ))
        })
        .collect();
    let recovered = recovery::recover(options, &stores, now)?;
    journal
        .stats
        .segment_bytes
        .store(recovered.segment_bytes, Ordering::Relaxed);
    Ok((Opened { journal, stores }, recovered))
}

#[cfg(test)]
mod tests;
