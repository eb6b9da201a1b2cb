//! The process contract the other integration tests rely on: sessiond announces its version,
//! listeners and readiness on stdout, serves on the announced port, and exits cleanly on
//! SIGTERM. These tests are about sessiond itself, so they always start sessiond, whatever
//! `SESSIOND_IT_TARGET` says.

use crate::support::{McClient, Sessiond, Target};

#[test]
fn announces_listeners_and_stops_on_sigterm() {
    if Target::from_env() == Target::Memcached {
        // The only case where a test does not run: the developer explicitly pointed the
        // suite at memcached, which has no such contract. Said loudly, never silently.
        println!("NOT RUN: SESSIOND_IT_TARGET=memcached; this test checks sessiond's own contract");
        return;
    }
    let mut server = Sessiond::start(&[]);
    let addr = server.memcache_addr();
    assert!(
        addr.ip().is_loopback(),
        "listening on {addr}, asked for 127.0.0.1"
    );
    assert_ne!(
        addr.port(),
        0,
        "the announced port must be the bound one, not 0"
    );
    let version = McClient::connect(addr).command_line("version");
    assert!(
        version.starts_with("VERSION "),
        "`version` answered {version:?}"
    );
    let (status, killed) = server.stop();
    assert!(
        !killed,
        "sessiond ignored SIGTERM for 5 s and had to be killed"
    );
    assert!(
        status.success(),
        "sessiond exited with {status} after SIGTERM\n{}",
        server.log_tail()
    );
    println!(
        "sessiond {} on {addr}: {version}; SIGTERM -> {status}",
        server.version()
    );
}

/// `ready` promises that a SIGTERM from then on is a graceful stop, so the handler must be
/// installed before `ready` is printed. Signalled at once, a server that installs it later
/// dies of the default disposition (exit by signal 15) in a good share of runs; five rounds
/// make that visible.
#[test]
fn sigterm_right_after_ready_is_graceful() {
    if Target::from_env() == Target::Memcached {
        println!("NOT RUN: SESSIOND_IT_TARGET=memcached; this test checks sessiond's own contract");
        return;
    }
    for round in 1..=5 {
        let mut server = Sessiond::start(&[]);
        let (status, killed) = server.stop();
        assert!(
            !killed,
            "round {round}: sessiond ignored SIGTERM and had to be killed"
        );
        assert!(
            status.success(),
            "round {round}: SIGTERM sent right after `ready` ended sessiond with {status} \
             instead of a graceful exit 0 (is the handler installed only after `ready`?)\n{}",
            server.log_tail()
        );
    }
    println!("5 rounds: SIGTERM immediately after `ready` -> exit 0 each time");
}

#[test]
fn memcache_listener_can_be_disabled() {
    if Target::from_env() == Target::Memcached {
        println!("NOT RUN: SESSIOND_IT_TARGET=memcached; this test checks sessiond's own contract");
        return;
    }
    let server = Sessiond::start(&["--memcache-listen", "off"]);
    assert_eq!(
        server.listener("memcache"),
        None,
        "`--memcache-listen off` still listens"
    );
    println!("sessiond with --memcache-listen off announced no memcache listener");
}
