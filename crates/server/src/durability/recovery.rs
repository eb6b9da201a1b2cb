//! Recovery at start: load the snapshot, replay the segments, cut a torn tail, refuse
//! corruption.
//!
//! Files are read in chunks, so a large snapshot never has to fit in memory twice. Records
//! are applied with `Store::restore`, which bypasses conditions, the observer and the memory
//! limit; a collection written in parts is applied once its last part is read
//! (`sessiond_journal::assemble`). A long replay logs its progress (records, MB/s, estimated
//! time left) every second.
//!
//! Each file is read in the format its header names (V1 or V2). New records are appended
//! to the last segment only if it is of the current format and does not end inside a run
//! of parts; otherwise recovery starts the next segment, so that no file mixes formats and
//! no new record follows a run a crash cut short (which replay could then mistake for its
//! continuation).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sessiond_journal::assemble::Assembler;
use sessiond_journal::manifest::Manifest;
use sessiond_journal::scan::{Stop, scan};
use sessiond_journal::{
    SEGMENT_MAGIC, Version, segment_name, segment_version, snapshot_name, snapshot_version,
};
use sessiond_store::Store;

use super::OpenOptions as JournalOptions;
use super::files::{self, MANIFEST_FILE};

const CHUNK: usize = 8 << 20;

/// The segment new records are appended to, positioned at its end.
pub struct OpenSegment {
    /// Its id.
    pub id: u64,
    /// The file, opened for appending.
    pub file: File,
    /// Its length in bytes.
    pub len: u64,
}

/// What recovery found.
pub struct Recovered {
    /// Where appending continues.
    pub segment: OpenSegment,
    /// Bytes in the segments after the snapshot (what a rewrite would reclaim).
    pub segment_bytes: u64,
}

/// Which kind of file is replayed (they have different headers).
#[derive(Clone, Copy)]
enum FileKind {
    Segment,
    Snapshot,
}

/// What the replay of a file found besides how it ended.
#[derive(Clone, Copy)]
struct Replayed {
    /// The file's format; `None` if its header was not readable.
    version: Option<Version>,
    /// The file ends inside a run of collection parts (dropped, as a crash cut it).
    open_run: bool,
}

impl Replayed {
    /// Whether new records may be appended to this (last) segment.
    fn appendable(self) -> bool {
        self.version == Some(Version::V2) && !self.open_run
    }
}

/// How a file's replay ended.
enum End {
    Clean,
    /// Torn tail at this absolute offset.
    Torn(u64),
    /// Damaged record at this absolute offset.
    Corrupt(u64, String),
}

struct ProgressLog {
    started: Instant,
    last: Instant,
    total_bytes: u64,
    done_bytes: u64,
    records: u64,
}

impl ProgressLog {
    fn tick(&mut self, bytes: u64) {
        self.done_bytes += bytes;
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            let rate = self.done_bytes as f64 / secs.max(1e-9);
            let left = self.total_bytes.saturating_sub(self.done_bytes) as f64 / rate.max(1.0);
            tracing::info!(
                records = self.records,
                mb_per_s = format!("{:.1}", rate / 1e6),
                done_mb = self.done_bytes / 1_000_000,
                total_mb = self.total_bytes / 1_000_000,
                eta_s = format!("{left:.1}"),
                "replaying the journal"
            );
        }
    }
}

/// Recovers every store from `options.dir`.
pub fn recover(
    options: &JournalOptions,
    stores: &[Arc<Store>],
    now: u64,
) -> anyhow::Result<Recovered> {
    let dir = &options.dir;
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = if manifest_path.exists() {
        let text = fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        Manifest::parse(&text)
            .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", manifest_path.display()))?
    } else {
        if !files::segment_ids(dir)?.is_empty() {
            bail!(
                "{} holds journal segments but no MANIFEST; refusing to guess which of them are current",
                dir.display()
            );
        }
        let fresh = Manifest::fresh();
        files::write_atomically(dir, MANIFEST_FILE, fresh.encode().as_bytes())?;
        fresh
    };
    let segments: Vec<u64> = files::segment_ids(dir)?
        .into_iter()
        .filter(|&id| id >= manifest.first_segment)
        .collect();
    for (i, &id) in segments.iter().enumerate() {
        if id != manifest.first_segment + i as u64 {
            bail!(
                "journal segment {} is missing from {} (found {} next); refusing to start with a gap in the journal",
                segment_name(manifest.first_segment + i as u64),
                dir.display(),
                segment_name(id)
            );
        }
    }
    let snapshot_path = manifest.snapshot.map(|id| dir.join(snapshot_name(id)));
    let total_bytes = snapshot_path
        .iter()
        .chain(
            segments
                .iter()
                .map(|&id| dir.join(segment_name(id)))
                .collect::<Vec<_>>()
                .iter(),
        )
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let started = Instant::now();
    let mut log = ProgressLog {
        started,
        last: started,
        total_bytes,
        done_bytes: 0,
        records: 0,
    };

    if let Some(path) = &snapshot_path {
        match replay_file(path, FileKind::Snapshot, stores, now, &mut log)?.0 {
            End::Clean => {}
            End::Torn(at) | End::Corrupt(at, _) if options.recover_truncate => {
                tracing::error!(file = %path.display(), offset = at, "snapshot is damaged; --recover-truncate given, keeping what precedes the damage");
            }
            End::Torn(at) => refuse(path, at, "the snapshot ends inside a record")?,
            End::Corrupt(at, why) => refuse(path, at, &why)?,
        }
    }
    let mut segment_bytes = 0;
    // The last segment replayed: its id, the length kept, and whether to append to it.
    let mut last_segment: Option<(u64, u64, bool)> = None;
    for (i, &id) in segments.iter().enumerate() {
        let path = dir.join(segment_name(id));
        let is_last = i + 1 == segments.len();
        let len = fs::metadata(&path)?.len();
        let (end, replayed) = if len < SEGMENT_MAGIC.len() as u64 && is_last {
            // Created, but the crash came before its header was written.
            rewrite_header(&path)?;
            let empty = Replayed {
                version: Some(Version::V2),
                open_run: false,
            };
            (End::Clean, empty)
        } else {
            replay_file(&path, FileKind::Segment, stores, now, &mut log)?
        };
        let kept = match end {
            End::Clean => fs::metadata(&path)?.len(),
            End::Torn(at) if is_last => {
                truncate(&path, at)?;
                tracing::warn!(file = %path.display(), offset = at, dropped_bytes = len - at, "truncated the torn tail of the journal");
                at
            }
            End::Torn(at) | End::Corrupt(at, _) if options.recover_truncate => {
                truncate(&path, at)?;
                for &later in &segments[i + 1..] {
                    fs::remove_file(dir.join(segment_name(later)))?;
                }
                files::sync_dir(dir)?;
                tracing::error!(
                    file = %path.display(),
                    offset = at,
                    dropped_segments = segments.len() - i - 1,
                    "the journal is damaged; --recover-truncate given: dropped everything from this offset on"
                );
                segment_bytes += at;
                last_segment = Some((id, at, replayed.appendable()));
                break;
            }
            End::Torn(at) => {
                refuse(&path, at, "a sealed segment ends inside a record")?;
                unreachable!()
            }
            End::Corrupt(at, why) => {
                refuse(&path, at, &why)?;
                unreachable!()
            }
        };
        segment_bytes += kept;
        last_segment = Some((id, kept, replayed.appendable()));
    }
    let mut reaped = 0;
    for store in stores {
        loop {
            let n = store.expire_due(now);
            reaped += n;
            if n == 0 {
                break;
            }
        }
    }
    let items: usize = stores.iter().map(|s| s.len()).sum();
    tracing::info!(
        records = log.records,
        items,
        expired_while_down = reaped,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "recovered from {}",
        dir.display()
    );
    let segment = match last_segment {
        Some((id, _, false)) => {
            tracing::info!(
                file = %segment_name(id),
                "starting a new segment: the last one is of an older format or ends inside a collection a crash cut short"
            );
            create_segment(dir, id + 1)?
        }
        Some((id, len, true)) => {
            let mut file = OpenOptions::new()
                .append(true)
                .open(dir.join(segment_name(id)))?;
            file.seek(SeekFrom::End(0))?;
            OpenSegment { id, file, len }
        }
        None => create_segment(dir, manifest.first_segment)?,
    };
    Ok(Recovered {
        segment,
        segment_bytes,
    })
}

fn refuse(path: &Path, at: u64, why: &str) -> anyhow::Result<()> {
    bail!(
        "{} is damaged at offset {at}: {why}. sessiond refuses to start rather than silently lose \
         what follows. To keep everything before that offset and drop the rest, start with --recover-truncate",
        path.display()
    )
}

/// Replays one file into the stores.
fn replay_file(
    path: &Path,
    kind: FileKind,
    stores: &[Arc<Store>],
    now: u64,
    log: &mut ProgressLog,
) -> anyhow::Result<(End, Replayed)> {
    let mut assembler = Assembler::new();
    let (end, version) = replay_records(path, kind, stores, now, log, &mut assembler)?;
    let open_run = assembler.finish();
    if assembler.dropped() > 0 {
        // Only a crash in the middle of writing a large collection leaves this; the key
        // keeps what it held before (the change was not acknowledged).
        tracing::warn!(
            file = %path.display(),
            runs = assembler.dropped(),
            "dropped a collection whose record a crash cut short"
        );
    }
    Ok((end, Replayed { version, open_run }))
}

fn replay_records(
    path: &Path,
    kind: FileKind,
    stores: &[Arc<Store>],
    now: u64,
    log: &mut ProgressLog,
    assembler: &mut Assembler,
) -> anyhow::Result<(End, Option<Version>)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut header = [0u8; 8];
    let version = match file.read_exact(&mut header) {
        Ok(()) => match kind {
            FileKind::Segment => segment_version(&header),
            FileKind::Snapshot => snapshot_version(&header),
        },
        Err(_) => None,
    };
    let Some(version) = version else {
        return Ok((
            End::Corrupt(
                0,
                "the file does not start with a header of a sessiond format this build reads"
                    .into(),
            ),
            None,
        ));
    };
    let end = |end| Ok((end, Some(version)));
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut base = header.len() as u64; // Absolute offset of buf[0].
    let mut read_to = base;
    let mut bad_db = None;
    loop {
        // Top the buffer up to at least one chunk beyond what is pending.
        let want = buf.len() + CHUNK;
        let start = buf.len();
        buf.resize(want, 0);
        let n = read_fully(&mut file, &mut buf[start..])?;
        buf.truncate(start + n);
        read_to += n as u64;
        let at_eof = read_to >= len || n == 0;
        let (consumed, stop) = scan(version, &buf, at_eof, |record| {
            assembler.push(record, |db, mutation| match stores.get(db as usize) {
                Some(store) => store.restore(mutation, now),
                None => bad_db = Some(db),
            });
            log.records += 1;
        });
        if let Some(db) = bad_db {
            return end(End::Corrupt(
                base,
                format!("a record names database {db}, which does not exist"),
            ));
        }
        log.tick(consumed as u64);
        match stop {
            Stop::NeedMore if !at_eof => {
                buf.drain(..consumed);
                base += consumed as u64;
            }
            Stop::NeedMore | Stop::Clean => return end(End::Clean),
            Stop::Torn { at } => return end(End::Torn(base + at as u64)),
            Stop::Corrupt { at, error } => {
                return end(End::Corrupt(base + at as u64, error.to_string()));
            }
        }
    }
}

fn read_fully(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn truncate(path: &Path, at: u64) -> std::io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(at)?;
    file.sync_all()
}

fn rewrite_header(path: &Path) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(SEGMENT_MAGIC)?;
    file.sync_all()
}

/// Creates segment `id` with its header, durably (file and directory entry).
pub fn create_segment(dir: &Path, id: u64) -> anyhow::Result<OpenSegment> {
    let path: PathBuf = dir.join(segment_name(id));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(SEGMENT_MAGIC)?;
    file.sync_all()?;
    files::sync_dir(dir)?;
    Ok(OpenSegment {
        id,
        file,
        len: SEGMENT_MAGIC.len() as u64,
    })
}
