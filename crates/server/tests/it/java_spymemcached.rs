//! spymemcached, the Java client Tomcat's memcached-session-manager uses, from Debian
//! (`libspymemcached-java`), against sessiond over the text and the binary protocol: set,
//! get, gets and cas (a match and a stale unique), add, a multi-get, incr, touch, delete.
//! `tests/java/SpyCheck.java` is compiled with Debian's JDK (`default-jdk-headless`) into
//! Cargo's test scratch directory for each run; it passes against memcached 1.6 too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{Sessiond, require_program, run_with_timeout};

const TIMEOUT: Duration = Duration::from_secs(180);
const JAR: &str = "/usr/share/java/spymemcached.jar";

#[test]
fn spymemcached_text_and_binary_round_trip() {
    let javac = require_program("javac", "default-jdk-headless");
    let java = require_program("java", "default-jdk-headless");
    assert!(
        Path::new(JAR).exists(),
        "{JAR} is missing: install the Debian package libspymemcached-java"
    );
    let classes =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("spymemcached-{}", std::process::id()));
    std::fs::create_dir_all(&classes).expect("creating the class directory");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java/SpyCheck.java");
    let built = run_with_timeout(
        "javac SpyCheck.java",
        Command::new(&javac)
            .arg("-d")
            .arg(&classes)
            .args(["-cp", JAR])
            .arg(&source),
        TIMEOUT,
    );
    assert!(built.status.success(), "javac failed:\n{}", built.stderr);
    let server = Sessiond::start(&[]);
    let classpath = format!("{}:{JAR}", classes.display());
    let run = run_with_timeout(
        "java SpyCheck",
        Command::new(&java)
            .args(["-cp", &classpath, "SpyCheck"])
            .arg(server.memcache_addr().port().to_string()),
        TIMEOUT,
    );
    let _ = std::fs::remove_dir_all(&classes);
    assert!(
        run.status.success() && run.stdout.contains("spymemcached: all checks passed"),
        "spymemcached checks failed:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        server.log_tail()
    );
}
