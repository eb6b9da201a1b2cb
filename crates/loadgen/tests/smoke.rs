//! The benchmark kit's only automated check: `sessiond-load compare --smoke` runs every
//! workload against every server (sessiond, memcached, Redis with and without AOF, the
//! ceiling) for a fraction of a second, plus the memory load and the redis-benchmark
//! cross-check, and must produce a complete table and a PNG chart with no error replies.
//! Nothing here asserts speed: on a shared 2-core CI machine timings are noise.
//!
//! Needs the sessiond binary next to `sessiond-load` (`cargo test --workspace` builds it,
//! because sessiond's own integration tests need it) and the Debian packages memcached,
//! redis-server, redis-tools and fonts-dejavu-core (scripts/test.sh installs them).

use std::path::PathBuf;
use std::process::Command;

fn scratch(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "sessiond-load-{tag}-{}-{nanos:x}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn compare_smoke_produces_a_complete_report() {
    let loadgen = PathBuf::from(env!("CARGO_BIN_EXE_sessiond-load"));
    let sessiond = loadgen.with_file_name("sessiond");
    assert!(
        sessiond.is_file(),
        "no sessiond binary at {}: build it first (cargo build -p sessiond; cargo test --workspace does)",
        sessiond.display()
    );
    let out = scratch("smoke");
    let status = Command::new(&loadgen)
        .args(["compare", "--smoke", "--sessiond-bin"])
        .arg(&sessiond)
        .arg("--out-dir")
        .arg(&out)
        .arg("--scratch")
        .arg(out.join("scratch"))
        // The report is checked from the files; progress lines (stderr) stay visible.
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running sessiond-load compare --smoke");
    assert!(status.success(), "compare --smoke failed: {status}");

    let results = std::fs::read_to_string(out.join("results.md")).unwrap();
    for section in [
        "## session-mix",
        "## login-storm",
        "## touch-heavy",
        "## php-cycle",
        "## Memory",
        "## Cross-check",
    ] {
        assert!(
            results.contains(section),
            "results.md lacks {section:?}:\n{results}"
        );
    }
    for server in [
        "| sessiond |",
        "| memcached -t 2 |",
        "| redis |",
        "| redis AOF everysec |",
        "| ceiling |",
    ] {
        assert!(
            results.contains(server),
            "results.md lacks {server:?}:\n{results}"
        );
    }
    let chart = std::fs::read(out.join("chart.png")).unwrap();
    assert!(
        chart.starts_with(b"\x89PNG\r\n\x1a\n"),
        "chart.png is not a PNG"
    );

    // Every run did work and got no error replies (4 workloads x 5 servers, 1 round).
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut lines = runs.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 20, "{runs}");
    for row in &rows {
        let ops: f64 = row[col("ops_per_sec")].parse().unwrap();
        assert!(ops > 0.0, "a run did nothing: {row:?}");
        assert_eq!(row[col("errors")], "0", "error replies: {row:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Kills the child when dropped, so a failing assertion does not leave a server running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn open_loop_run_against_the_ceiling() {
    use std::io::{BufRead, BufReader};
    let loadgen = env!("CARGO_BIN_EXE_sessiond-load");
    let mut ceiling = KillOnDrop(
        Command::new(loadgen)
            .args(["ceiling", "--listen", "127.0.0.1:0", "--value-size", "100"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(ceiling.0.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening ").map(str::to_string))
        .expect("the ceiling prints its address");
    for protocol in ["text", "binary", "resp"] {
        let output = Command::new(loadgen)
            .args([
                "run",
                "--server",
                &addr,
                "--protocol",
                protocol,
                "--workload",
                "php-cycle",
            ])
            .args([
                "--rate",
                "2000",
                "--duration",
                "300ms",
                "--warmup",
                "0s",
                "--conns",
                "4",
                "--keys",
                "100",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("ops/s") && stdout.contains(" 0 errors"),
            "{protocol}: {stdout}"
        );
    }
    drop(ceiling);
}
