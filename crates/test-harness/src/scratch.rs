//! Throwaway resources: names no other test or run can collide with, directories removed on
//! drop, and loopback ports that were free a moment ago.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh, uniquely named string of `[a-z0-9]`, usable in session ids and directory names.
/// Unique within the process (counter) and across runs (pid and clock), so concurrent tests
/// and leftover data from an earlier run can never collide.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}{}x{n}x{nanos:x}", std::process::id())
}

/// A directory under the system temp dir, removed (with its contents) on drop. Hand-rolled to
/// keep the harness free of dependencies.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp dir>/sessiond-it-<unique(tag)>`.
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("sessiond-it-{}", unique(tag)));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago. The caller must cope with losing the race
/// (another process may bind it before the server does);
/// [`start_on_free_port`](crate::process::start_on_free_port) retries.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}
