//! Dalli, Rails' memcached client, from Debian (`ruby-dalli` 3.0, which speaks the binary
//! protocol; the meta protocol arrived in Dalli 3.2) against sessiond: get, set, add, cas,
//! get_multi (also of 300 keys), counters, touch, delete and a compressed large value. The
//! checks are `tests/ruby/dalli_check.rb`, which passes against memcached 1.6 too.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{Sessiond, require_program, run_with_timeout};

const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn dalli_binary_protocol_round_trips() {
    let ruby = require_program("ruby", "ruby-dalli");
    let loaded = run_with_timeout(
        "ruby -e require dalli",
        Command::new(&ruby).args(["-e", "require 'dalli'"]),
        TIMEOUT,
    );
    assert!(
        loaded.status.success(),
        "Dalli is not installed (Debian package ruby-dalli):\n{}",
        loaded.stderr
    );
    let server = Sessiond::start(&[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ruby/dalli_check.rb");
    let run = run_with_timeout(
        "dalli_check.rb",
        Command::new(&ruby)
            .arg(&script)
            .arg(server.memcache_addr().port().to_string()),
        TIMEOUT,
    );
    assert!(
        run.status.success() && run.stdout.contains("dalli: all checks passed"),
        "Dalli checks failed:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        server.log_tail()
    );
}
