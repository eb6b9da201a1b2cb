//! The stock Redis exporter (Debian's `prometheus-redis-exporter`) against the RESP port:
//! operators who already scrape Redis with it keep their dashboards. The exporter reads
//! `INFO` (and asks for `CONFIG GET`, `SLOWLOG`, `LATENCY`, …, where a failure only drops
//! that metric); the test writes keys, scrapes the exporter's `/metrics` and checks that it
//! reports the server up, the keys of database 0 and at least one connected client (the
//! exporter's own connection and the test's). With `SESSIOND_IT_TARGET=redis` the same test
//! runs against redis-server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use sessiond_test_harness::process::start_on_free_port;
use sessiond_test_harness::{RespServer, TempDir, require_program, terminate};

/// `GET /metrics` over a raw connection; `None` if nothing answers (yet).
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
}

/// The value of the sample whose name and labels are exactly `series` (`name{labels}`).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn the_stock_redis_exporter_sees_the_server_up_with_its_keys_and_clients() {
    let exporter = require_program("prometheus-redis-exporter", "prometheus-redis-exporter");
    let server = RespServer::start();
    server.header("redis_exporter");
    let mut client = server.client(None);
    const KEYS: usize = 5;
    for i in 0..KEYS {
        client.ok(&["SET", &format!("exporter:{i}"), "v"]);
    }
    let dir = TempDir::new("redis-exporter");
    let log = dir.path().join("exporter.log");
    let redis = server.addr();
    let (mut child, addr) = start_on_free_port(
        "prometheus-redis-exporter",
        &log,
        |port| {
            let mut cmd = Command::new(&exporter);
            cmd.arg(format!("--redis.addr=redis://{redis}"))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            cmd
        },
        |addr| scrape(addr).map(|_| "serving /metrics".to_string()),
    );
    // The exporter connects to the server on each scrape; wait for one that saw it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let body = scrape(addr).unwrap_or_default();
        if sample(&body, "redis_up") == Some(1.0) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    terminate(&mut child);
    let context = || {
        format!(
            "exporter output:\n{}\n{}",
            sessiond_test_harness::tail_of_file(&log, 2000),
            server.diagnostics()
        )
    };
    assert_eq!(
        sample(&body, "redis_up"),
        Some(1.0),
        "redis_up is not 1 against {}; scrape:\n{body}\n{}",
        server.name(),
        context()
    );
    assert_eq!(
        sample(&body, "redis_db_keys{db=\"db0\"}"),
        Some(KEYS as f64),
        "redis_db_keys for db0; scrape:\n{body}\n{}",
        context()
    );
    // The exporter logs a failed `LATENCY LATEST` (or `HISTOGRAM`) at every scrape; sessiond
    // answers it as a Redis that recorded no latency event.
    let exporter_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !exporter_log.to_ascii_lowercase().contains("latency"),
        "the exporter complained about LATENCY:\n{}",
        context()
    );
    let clients = sample(&body, "redis_connected_clients").unwrap_or(0.0);
    assert!(
        clients >= 1.0,
        "redis_connected_clients {clients}; scrape:\n{body}\n{}",
        context()
    );
}
