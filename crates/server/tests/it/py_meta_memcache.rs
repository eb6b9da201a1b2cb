//! meta-memcache, the Python client of memcached's meta protocol (PyPI), against sessiond:
//! get, set, delete, CAS, touch, multi-get, binary keys, counters, and
//! stale-while-revalidate through the client's own `StalePolicy` (invalidation marks stale;
//! one reader wins the recache, the others read the stale value; a CAS write that lost a
//! race is kept as stale) and `LeasePolicy` (one client gets the lease on a miss). The
//! checks are `tests/python/meta_memcache_check.py`, which passes against memcached 1.6
//! too.
//!
//! The client is installed reproducibly: Debian's `python3 -m venv` (packages `python3`,
//! `python3-venv`) in Cargo's test scratch directory, then `pip install --require-hashes
//! --no-deps -r tests/python/requirements.txt` (every version pinned with its hash), once
//! per version of that file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use sessiond_test_harness::{Sessiond, run_with_timeout};

const PIP_TIMEOUT: Duration = Duration::from_secs(600);
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Debian's interpreter: the wheels are pinned for its CPython 3.11.
fn python() -> PathBuf {
    let python = PathBuf::from("/usr/bin/python3");
    assert!(
        python.exists(),
        "/usr/bin/python3 is missing: install the Debian packages python3 and python3-venv"
    );
    python
}

/// A venv with the pinned packages, made once per content of `requirements.txt`.
fn venv() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let requirements = python_dir().join("requirements.txt");
    let text = std::fs::read(&requirements).expect("tests/python/requirements.txt");
    // FNV-1a of the pins names the venv, so a changed pin gets a fresh one.
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("meta-memcache-{hash:016x}"));
    let bin = dir.join("bin/python");
    if dir.join("installed").exists() {
        return bin;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let made = run_with_timeout(
        "python3 -m venv",
        Command::new(python()).arg("-m").arg("venv").arg(&dir),
        PIP_TIMEOUT,
    );
    assert!(
        made.status.success(),
        "python3 -m venv failed (is the Debian package python3-venv installed?):\n{}",
        made.stderr
    );
    let installed = run_with_timeout(
        "pip install meta-memcache",
        Command::new(&bin)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                "-r",
            ])
            .arg(&requirements),
        PIP_TIMEOUT,
    );
    assert!(
        installed.status.success(),
        "pip install -r tests/python/requirements.txt failed:\n{}\n{}",
        installed.stdout,
        installed.stderr
    );
    std::fs::write(dir.join("installed"), b"").expect("marking the venv installed");
    bin
}

#[test]
fn meta_memcache_client_gets_sets_and_revalidates() {
    let python = venv();
    let server = Sessiond::start(&[]);
    let port = server.memcache_addr().port().to_string();
    let run = run_with_timeout(
        "meta_memcache_check.py",
        Command::new(&python)
            .arg(python_dir().join("meta_memcache_check.py"))
            .arg(&port),
        CHECK_TIMEOUT,
    );
    assert!(
        run.status.success() && run.stdout.contains("meta-memcache: all checks passed"),
        "meta-memcache checks failed:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        server.log_tail()
    );
}
