//! One keyspace for both protocols: memcached clients and database 0 of the RESP listener
//! see the same keys. A PHP session written through php-memcached is read with `redis-cli
//! GET` byte for byte, and a key set with redis-cli is a memcached hit (flags 0).
//!
//! This is sessiond's own property (no reference server speaks both protocols), so it always
//! runs against sessiond, whatever `SESSIOND_IT_TARGET` says.

use std::process::Command;
use std::time::Duration;

use crate::php::{Php, php_with, write_session};
use sessiond_test_harness::{McClient, Sessiond, require_program, run_with_timeout, unique};

/// `redis-cli --raw` with `args` against `addr`; returns stdout without the trailing newline
/// redis-cli adds.
fn redis_cli(addr: std::net::SocketAddr, args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new(require_program("redis-cli", "redis-tools"));
    cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["--raw", "-n", "0"])
        .args(args);
    let out = run_with_timeout("redis-cli", &mut cmd, Duration::from_secs(30));
    assert!(out.status.success(), "redis-cli {args:?}: {}", out.stderr);
    let mut bytes = out.stdout.into_bytes();
    assert_eq!(
        bytes.pop(),
        Some(b'\n'),
        "redis-cli output not newline-terminated"
    );
    bytes
}

#[test]
fn php_memcached_session_is_visible_to_redis_cli() {
    let server = Sessiond::start(&["--resp-listen", "127.0.0.1:0"]);
    let resp = server.listener("resp").unwrap_or_else(|| {
        panic!(
            "sessiond printed no `listening resp` line\n{}",
            server.log_tail()
        )
    });
    let mc = server.memcache_addr();
    println!("scenario one keyspace: sessiond memcache {mc}, RESP {resp}");

    let php = Php::new(
        php_with("memcached", "php-memcached"),
        "memcached",
        &mc.to_string(),
    )
    .with("memcached.sess_prefix", "memc.sess.key.")
    .with("memcached.sess_locking", "1")
    .with("memcached.sess_binary_protocol", "1");
    let sid = unique("ks");
    let key = format!("memc.sess.key.{sid}");
    write_session(&php, "php-memcached writer", &sid, &[("user", b"alice")]);
    let via_memcached = McClient::connect(mc)
        .get(&key)
        .unwrap_or_else(|| panic!("{key} missing over memcached"))
        .value;
    let via_redis = redis_cli(resp, &["GET", &key]);
    assert!(
        via_redis == via_memcached,
        "redis-cli GET {key} in db 0 returned {:?}; memcached has {:?}\n{}",
        String::from_utf8_lossy(&via_redis),
        String::from_utf8_lossy(&via_memcached),
        server.log_tail()
    );
    assert_eq!(
        redis_cli(resp, &["EXISTS", &format!("memc.sess.key.lock.{sid}")]),
        b"0",
        "the PHP lock key is still there"
    );
    println!(
        "  {key}: {:?} over both protocols",
        String::from_utf8_lossy(&via_redis)
    );

    // The other direction: a RESP write is a memcached hit with flags 0.
    let rkey = unique("fromresp");
    assert_eq!(redis_cli(resp, &["SET", &rkey, "hello"]), b"OK");
    let item = McClient::connect(mc)
        .get(&rkey)
        .unwrap_or_else(|| panic!("{rkey} set over RESP is a memcached miss"));
    assert_eq!((item.flags, item.value.as_slice()), (0, &b"hello"[..]));
    println!("  {rkey} set by redis-cli: memcached hit, flags 0");
}
