//! File-system steps that durability depends on: the directory lock, directory fsyncs,
//! atomic replacement, and listing segments and snapshots.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, bail};
use sessiond_journal::{parse_segment_name, parse_snapshot_name};

/// The name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "LOCK";
/// The name of the manifest inside the data directory.
pub const MANIFEST_FILE: &str = "MANIFEST";

/// Creates `dir` if needed and takes an exclusive lock on its `LOCK` file, so a second
/// sessiond on the same directory is refused instead of interleaving its writes.
pub fn lock_dir(dir: &Path) -> anyhow::Result<File> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => bail!(
            "another sessiond is already using the data directory {} (it holds the lock on {}); \
             give each server its own --data-dir",
            dir.display(),
            path.display()
        ),
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    // The pid is informational only; the lock itself is what keeps others out.
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// fsyncs a directory, making the creation, rename or removal of its entries durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `bytes` atomically: a crash leaves the old or the new content.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Ids of the segment files in `dir`, ascending.
pub fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    ids(dir, parse_segment_name)
}

/// Ids of the snapshot files in `dir`, ascending.
pub fn snapshot_ids(dir: &Path) -> io::Result<Vec<u64>> {
    ids(dir, parse_snapshot_name)
}

fn ids(dir: &Path, parse: fn(&str) -> Option<u64>) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().to_str().and_then(parse))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}
