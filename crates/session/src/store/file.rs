//! The file store: one file per session under N levels of fan-out directories, as PHP's
//! `session.save_path = "N;/path"` lays them out, with the full versioned contract.
//!
//! # Layout
//!
//! A session `abcd…` with `levels = 2` lives at `<root>/a/b/sess_abcd…`: one directory level
//! per leading character of the id, as PHP's files handler does (ids are URL-safe base64, so
//! each level fans out 64 ways). Unlike PHP, missing directories are created on demand. A
//! file holds one header line, `sessiond-session 1 <version> <expiry ms> <last active ms>`,
//! then the record as JSON. Its mtime is set to the expiry deadline, so that `find <root>
//! -name 'sess_*' ! -newermt now -delete` is a valid cron cleanup too.
//!
//! # How the contract holds
//!
//! - Every write goes to a temp file in the same directory, which is then renamed over the
//!   session's file (or hard-linked to it, for `create`): readers see the old file or the new
//!   one, never a partial one, and need no lock.
//! - `create` hard-links its temp file to the final name; `link` fails if the name exists, so
//!   two creators cannot both win. An existing file that has expired is replaced under a lock.
//! - `update`, `touch` and `delete` take an exclusive `flock` on the current file, then check
//!   that the path still names the file they locked (same device and inode): a writer that
//!   waited while another one renamed a new file into place, or deleted it, notices and starts
//!   over on the new file, or reports the session missing. The version check and the rename
//!   happen under that lock, so `update` is a compare-and-set; a deleted file stays deleted.
//! - [`FileStore::sweep`] walks the tree and deletes expired files, each under the same lock,
//!   re-reading the header first so a session touched meanwhile survives.
//!
//! # On a shared NFS mount
//!
//! What still holds: rename and link are atomic on the server, so readers never see torn
//! files and two creators of one id cannot both succeed (an NFSv3 retransmitted `link` can
//! wrongly report the name as taken; that shows up as `Exists`, never as a lost session).
//! `flock` is emulated with byte-range locks over NFS on Linux, so compare-and-set across
//! nodes is safe on NFSv4, or NFSv3 with a working lock manager (`nolock` turns it into a
//! node-local lock and breaks cross-node compare-and-set). What weakens: another node's write
//! may be invisible to a read for up to the attribute/lookup cache time (`actimeo`;
//! `lookupcache=positive` or `actimeo=0` shorten it), which can make a load stale; a stale
//! load can only make the following update fail with a conflict, since the lock re-reads the
//! file. Expiry decisions use each node's clock, so keep clocks in sync. `fsync` matters more
//! there: without it a server crash can lose the last writes.
//!
//! Blocking file I/O runs on tokio's blocking pool. Unix only (locks, inodes).

#![deny(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;

use super::{
    CreateOutcome, Record, SessionStore, StoreError, StoreFuture, UpdateOutcome, Version, Versioned,
};
use crate::clock::{Clock, SystemClock};
use crate::id::SessionId;

const MAGIC: &str = "sessiond-session 1";
const FILE_PREFIX: &str = "sess_";
const TEMP_PREFIX: &str = ".tmp_";
/// Temp files older than this are leftovers of a crashed writer; the sweep removes them.
const TEMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// Configuration of a [`FileStore`].
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// The directory that holds the tree.
    pub root: PathBuf,
    /// Directory levels (PHP's `N` in `N;/path`). Default 2. At most 8.
    pub levels: usize,
    /// fsync every written file and its directory before reporting success. Default off,
    /// as PHP's files handler: a crash of the machine can lose the last writes.
    pub fsync: bool,
}

impl FileConfig {
    /// Two levels under `root`, no fsync.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            levels: 2,
            fsync: false,
        }
    }

    /// Parses PHP's `N;/path` (or a bare `/path`, zero levels). PHP's optional mode field
    /// (`N;MODE;/path`) is accepted and ignored: files are created with the process umask.
    pub fn from_save_path(save_path: &str) -> Result<Self, StoreError> {
        let parts: Vec<&str> = save_path.split(';').collect();
        let (levels, path) = match parts.as_slice() {
            [path] => (0, *path),
            [n, path] | [n, _, path] => (
                n.trim()
                    .parse()
                    .map_err(|_| StoreError::new("bad level count in save path"))?,
                *path,
            ),
            _ => return Err(StoreError::new("bad save path")),
        };
        let mut config = Self::new(path);
        config.levels = levels;
        Ok(config)
    }
}

struct Inner {
    config: FileConfig,
    clock: Arc<dyn Clock>,
}

/// The file store. Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

/// A parsed session file.
struct Contents {
    version: Version,
    expiry: u64,
    record: Record,
}

fn io_err(what: &str, e: io::Error) -> StoreError {
    StoreError::new(format!("session file {what}: {e}"))
}

fn parse(bytes: &[u8]) -> Result<Contents, StoreError> {
    let bad = || StoreError::new("malformed session file");
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| bad())?;
    let fields = header.strip_prefix(MAGIC).ok_or_else(bad)?;
    let mut fields = fields.split_ascii_whitespace().map(str::parse::<u64>);
    let mut next = || fields.next().and_then(Result::ok).ok_or_else(bad);
    let (version, expiry, active) = (next()?, next()?, next()?);
    let mut record: Record = serde_json::from_slice(&bytes[nl + 1..]).map_err(|_| bad())?;
    record.last_active_at = record.last_active_at.max(active);
    Ok(Contents {
        version,
        expiry,
        record,
    })
}

fn render(contents: &Contents) -> Result<Vec<u8>, StoreError> {
    let mut out = format!(
        "{MAGIC} {} {} {}\n",
        contents.version, contents.expiry, contents.record.last_active_at
    )
    .into_bytes();
    serde_json::to_writer(&mut out, &contents.record)
        .map_err(|e| StoreError::new(format!("encoding record: {e}")))?;
    Ok(out)
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Opens and exclusively locks the file at `path`, making sure it is still the one the path
/// names once the lock is held. `None` if there is no such file.
fn lock_current(path: &Path) -> Result<Option<File>, StoreError> {
    loop {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", e)),
        };
        file.lock().map_err(|e| io_err("lock", e))?;
        let locked = file.metadata().map_err(|e| io_err("stat", e))?;
        match fs::metadata(path) {
            Ok(now) if same_file(&locked, &now) => return Ok(Some(file)),
            // Replaced while we waited: lock the new one.
            Ok(_) => continue,
            // Deleted while we waited.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("stat", e)),
        }
    }
}

fn read_all(mut file: &File) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_err("read", e))?;
    Ok(bytes)
}

impl FileStore {
    /// A store under `config.root` on the system clock. Creates the root if needed.
    pub fn new(config: FileConfig) -> Result<Self, StoreError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// As [`FileStore::new`], with expiry decided by `clock`.
    pub fn with_clock(config: FileConfig, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        if config.levels > 8 {
            return Err(StoreError::new("at most 8 directory levels"));
        }
        fs::create_dir_all(&config.root).map_err(|e| io_err("create root", e))?;
        Ok(Self {
            inner: Arc::new(Inner { config, clock }),
        })
    }

    /// The file that holds `id`.
    pub fn path(&self, id: &SessionId) -> PathBuf {
        let mut path = self.inner.config.root.clone();
        for c in id.as_str().chars().take(self.inner.config.levels) {
            path.push(c.to_string());
        }
        path.push(format!("{FILE_PREFIX}{}", id.as_str()));
        path
    }

    /// Runs blocking file work on the blocking pool.
    fn blocking<'a, T: Send + 'static>(
        &self,
        f: impl FnOnce(&FileStore, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let store = self.clone();
        Box::pin(async move {
            let now = store.inner.clock.now_ms();
            tokio::task::spawn_blocking(move || f(&store, now))
                .await
                .map_err(|e| StoreError::new(format!("file store task: {e}")))?
        })
    }

    /// Writes `contents` to a new temp file next to `path` and returns the temp path.
    fn write_temp(&self, path: &Path, contents: &Contents) -> Result<PathBuf, StoreError> {
        let dir = path.parent().expect("session paths have a parent");
        let temp = dir.join(format!("{TEMP_PREFIX}{:016x}", rand::rng().next_u64()));
        let bytes = render(contents)?;
        let write = |temp: &Path| -> io::Result<()> {
            let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
            file.write_all(&bytes)?;
            // The mtime is the deadline: the sweep (and a cron `find`) need not open the file.
            file.set_modified(UNIX_EPOCH + Duration::from_millis(contents.expiry))?;
            if self.inner.config.fsync {
                file.sync_all()?;
            }
            Ok(())
        };
        match write(&temp) {
            Ok(()) => Ok(temp),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| io_err("create directory", e))?;
                write(&temp).map_err(|e| io_err("write", e))?;
                Ok(temp)
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(io_err("write", e))
            }
        }
    }

    fn sync_dir(&self, path: &Path) -> Result<(), StoreError> {
        if self.inner.config.fsync
            && let Some(dir) = path.parent()
        {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("fsync directory", e))?;
        }
        Ok(())
    }

    /// Replaces the locked file at `path` with `contents`.
    fn replace(&self, path: &Path, contents: &Contents) -> Result<(), StoreError> {
        let temp = self.write_temp(path, contents)?;
        if let Err(e) = fs::rename(&temp, path) {
            let _ = fs::remove_file(&temp);
            return Err(io_err("rename", e));
        }
        self.sync_dir(path)
    }

    fn create_blocking(
        &self,
        id: &SessionId,
        record: &Record,
        ttl: Duration,
        now: u64,
    ) -> Result<CreateOutcome, StoreError> {
        let path = self.path(id);
        let contents = Contents {
            version: 1,
            expiry: now.saturating_add(ttl.as_millis() as u64),
            record: record.clone(),
        };
        let temp = self.write_temp(&path, &contents)?;
        let outcome = match fs::hard_link(&temp, &path) {
            Ok(()) => {
                self.sync_dir(&path)?;
                CreateOutcome::Created
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Taken, unless what is there has expired and not been swept yet.
                match lock_current(&path)? {
                    Some(file) => {
                        let old = parse(&read_all(&file)?)?;
                        if old.expiry <= now {
                            fs::rename(&temp, &path).map_err(|e| io_err("rename", e))?;
                            self.sync_dir(&path)?;
                            return Ok(CreateOutcome::Created);
                        }
                        CreateOutcome::Exists
                    }
                    // Deleted in between; the caller may retry, but "exists" is the honest
                    // answer for the instant we looked.
                    None => CreateOutcome::Exists,
                }
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(io_err("link", e));
            }
        };
        let _ = fs::remove_file(&temp);
        Ok(outcome)
    }

    /// Deletes expired session files (and temp files left by a crash), each under its lock,
    /// and returns how many sessions were removed. Call it periodically (e.g. every few
    /// minutes from one task); it only reads directory entries and inode times of live files.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.blocking(|store, now| store.sweep_blocking(now)).await
    }

    fn sweep_blocking(&self, now: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut dirs = vec![(self.inner.config.root.clone(), 0)];
        while let Some((dir, depth)) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read directory", e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err("read directory", e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    if depth < self.inner.config.levels {
                        dirs.push((entry.path(), depth + 1));
                    }
                    continue;
                }
                let mtime_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as u64);
                if name.starts_with(TEMP_PREFIX) {
                    // A temp file's mtime is its future deadline, so judge its age by the
                    // inode's change time instead.
                    let changed = Duration::from_secs(meta.ctime().max(0) as u64);
                    let age = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .saturating_sub(changed);
                    if age > TEMP_MAX_AGE {
                        let _ = fs::remove_file(entry.path());
                    }
                    continue;
                }
                if !name.starts_with(FILE_PREFIX) || mtime_ms > now {
                    continue;
                }
                let path = entry.path();
                if let Some(file) = lock_current(&path)? {
                    // Re-read under the lock: a touch since the directory scan renews it.
                    if let Ok(contents) = parse(&read_all(&file)?)
                        && contents.expiry > now
                    {
                        continue;
                    }
                    match fs::remove_file(&path) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err("remove", e)),
                    }
                }
            }
        }
        Ok(removed)
    }
}

impl SessionStore for FileStore {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        let (id, record) = (id.clone(), record.clone());
        self.blocking(move |store, now| store.create_blocking(&id, &record, ttl, now))
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        let id = id.clone();
        self.blocking(move |store, now| {
            // No lock: files are only ever replaced whole, by rename.
            let bytes = match fs::read(store.path(&id)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err("read", e)),
            };
            let contents = parse(&bytes)?;
            Ok((contents.expiry > now).then_some(Versioned {
                record: contents.record,
                version: contents.version,
            }))
        })
    }

    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome> {
        let (id, record) = (id.clone(), record.clone());
        self.blocking(move |store, now| {
            let path = store.path(&id);
            let Some(file) = lock_current(&path)? else {
                return Ok(UpdateOutcome::Missing);
            };
            let current = parse(&read_all(&file)?)?;
            if current.expiry <= now {
                return Ok(UpdateOutcome::Missing);
            }
            if current.version != expected {
                return Ok(UpdateOutcome::Conflict);
            }
            let mut record = record;
            record.last_active_at = record.last_active_at.max(current.record.last_active_at);
            let version = current.version + 1;
            store.replace(
                &path,
                &Contents {
                    version,
                    expiry: now.saturating_add(ttl.as_millis() as u64),
                    record,
                },
            )?;
            // The lock on the old inode is released when `file` drops, after the rename.
            drop(file);
            Ok(UpdateOutcome::Updated(version))
        })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let id = id.clone();
        self.blocking(move |store, now| {
            let path = store.path(&id);
            let Some(file) = lock_current(&path)? else {
                return Ok(false);
            };
            let mut current = parse(&read_all(&file)?)?;
            if current.expiry <= now {
                return Ok(false);
            }
            current.record.last_active_at = current.record.last_active_at.max(last_active_at);
            current.expiry = now.saturating_add(ttl.as_millis() as u64);
            store.replace(&path, &current)?;
            drop(file);
            Ok(true)
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        let id = id.clone();
        self.blocking(move |store, now| {
            let path = store.path(&id);
            let Some(file) = lock_current(&path)? else {
                return Ok(false);
            };
            let live = parse(&read_all(&file)?).is_ok_and(|c| c.expiry > now);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_err("remove", e)),
            }
            store.sync_dir(&path)?;
            drop(file);
            Ok(live)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_path_forms() {
        let c = FileConfig::from_save_path("2;/var/lib/php/sessions").unwrap();
        assert_eq!(
            (c.levels, c.root.as_path()),
            (2, Path::new("/var/lib/php/sessions"))
        );
        let c = FileConfig::from_save_path("3;600;/tmp/s").unwrap();
        assert_eq!((c.levels, c.root.as_path()), (3, Path::new("/tmp/s")));
        let c = FileConfig::from_save_path("/tmp/s").unwrap();
        assert_eq!(c.levels, 0);
        assert!(FileConfig::from_save_path("x;/tmp").is_err());
    }

    #[test]
    fn fan_out_follows_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = FileConfig::new(dir.path());
        config.levels = 3;
        let store = FileStore::new(config).unwrap();
        let id = SessionId::generate();
        let s = id.as_str();
        let expected = dir
            .path()
            .join(&s[0..1])
            .join(&s[1..2])
            .join(&s[2..3])
            .join(format!("sess_{s}"));
        assert_eq!(store.path(&id), expected);
    }
}
