//! The HTTP admin API (docs/sessions.md, "HTTP API") against the real binary, with curl:
//! a user logs in on three devices through PHP's memcached session handler (SASL as an app
//! user); an operator counts, lists, shows one and revokes them all over HTTP with an admin
//! user's credentials; each device's next PHP request is logged out. Also the refusals:
//! no credentials (401 with a Basic challenge), the app user (403), and open health checks;
//! the listing in pages (`limit`, `Link: rel="next"`); no session id in the (debug) log; and,
//! with no password, only loopback `Host` names (against DNS rebinding).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sessiond_test_harness::{Sessiond, run_with_timeout};

use crate::php::Php;
use crate::php_memcached::{Proto, memcached_php};
use crate::sessions::{Handler, assert_logged_in, assert_logged_out, login, not_sessiond};

/// Only a bound against a hung curl.
const CURL_TIMEOUT: Duration = Duration::from_secs(30);

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?} ({})", self.body, self.headers))
    }
}

/// `curl -X method` on `path` of `addr`, with `user` (`name:password`) if given.
fn curl(addr: SocketAddr, method: &str, path: &str, user: Option<&str>) -> Reply {
    curl_with(addr, method, path, user, &[])
}

/// [`curl`] with extra request headers (`Name: value`).
fn curl_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    user: Option<&str>,
    headers_out: &[&str],
) -> Reply {
    let dir = std::env::temp_dir().join(format!(
        "sessiond-http-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let headers = dir.with_extension("headers");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-o", "-", "-D"])
        .arg(&headers)
        .args(["-w", "\n%{http_code}"]);
    if let Some(user) = user {
        cmd.args(["-u", user]);
    }
    for header in headers_out {
        cmd.args(["-H", header]);
    }
    cmd.arg(format!("http://{addr}{path}"));
    let done = run_with_timeout(&format!("curl {method} {path}"), &mut cmd, CURL_TIMEOUT);
    assert!(done.status.success(), "curl failed: {}", done.stderr);
    let (body, code) = done.stdout.rsplit_once('\n').expect("curl's status line");
    let headers_text = std::fs::read_to_string(&headers).unwrap_or_default();
    let _ = std::fs::remove_file(&headers);
    println!("curl -X {method} {path} -> {code} {body}");
    Reply {
        status: code.trim().parse().expect("an HTTP status"),
        headers: headers_text.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `s` percent-encoded as one path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn an_admin_logs_a_php_user_out_everywhere_over_http() {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&[
        "--user",
        "web:app:webpw",
        "--user",
        "ops:admin:opspw",
        "--log",
        "sessiond=debug",
    ]);
    let addr = server
        .listener("http")
        .unwrap_or_else(|| panic!("no HTTP listener\n{}", server.log_tail()));
    let handler = Handler::Memcached(Proto::Binary);
    let php: Php = memcached_php(&[server.memcache_addr()], Proto::Binary)
        .with("memcached.sess_sasl_username", "web")
        .with("memcached.sess_sasl_password", "webpw");
    let devices = ["phone", "laptop", "tablet"];
    let sids: Vec<String> = devices.iter().map(|d| login(&php, d, 42)).collect();
    let other = login(&php, "desk", 7);

    // Health is open; the API is not.
    assert_eq!(curl(addr, "GET", "/health/live", None).status, 200);
    assert_eq!(curl(addr, "GET", "/health/ready", None).status, 200);
    let anonymous = curl(addr, "GET", "/api/v1/sessions/count", None);
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .headers
            .contains("www-authenticate: basic realm=\"sessiond\""),
        "{}",
        anonymous.headers
    );
    let app = curl(addr, "GET", "/api/v1/sessions/count", Some("web:webpw"));
    assert_eq!(app.status, 403);
    assert!(app.json()["error"].is_string());
    let ops = Some("ops:opspw");

    let count = curl(addr, "GET", "/api/v1/sessions/count", ops);
    assert_eq!(count.status, 200);
    assert!(count.headers.contains("cache-control: no-store"));
    assert_eq!(
        count.json(),
        serde_json::json!({"sessions": 4, "users": 2, "count": 4})
    );

    let listed = curl(addr, "GET", "/api/v1/users/42/sessions", ops).json();
    let ids: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, sids, "the user's sessions, oldest first");
    for s in listed.as_array().unwrap() {
        assert_eq!(s["family"], "php-memcached");
        assert_eq!(s["user"], "42");
        assert!(s["last_seen"].as_u64() >= s["created_at"].as_u64(), "{s}");
        assert!(s["expires_at"].as_u64() > s["written_at"].as_u64(), "{s}");
    }

    // The same listing in pages of two, following `Link: <…>; rel="next"`.
    let first = curl(addr, "GET", "/api/v1/users/42/sessions?limit=2", ops);
    assert_eq!(
        first.json(),
        serde_json::json!(listed.as_array().unwrap()[..2])
    );
    assert!(
        first.headers.contains("x-next-cursor: "),
        "{}",
        first.headers
    );
    let next = first
        .headers
        .lines()
        .find_map(|line| line.strip_prefix("link: <"))
        .and_then(|rest| rest.split_once(">; rel=\"next\""))
        .map(|(target, _)| target.to_string())
        .unwrap_or_else(|| panic!("no Link to the next page:\n{}", first.headers));
    // Header names and values were lower-cased by `Reply`; the cursor is hex and digits.
    assert!(
        next.starts_with("/api/v1/users/42/sessions?limit=2&cursor="),
        "{next}"
    );
    let last = curl(addr, "GET", &next, ops);
    assert_eq!(
        last.json(),
        serde_json::json!(listed.as_array().unwrap()[2..])
    );
    assert!(!last.headers.contains("link:"), "{}", last.headers);
    assert_eq!(
        curl(addr, "GET", "/api/v1/users/42/sessions?limit=1001", ops).status,
        400
    );

    let key = listed[1]["key"].as_str().unwrap().to_string();
    let shown = curl(
        addr,
        "GET",
        &format!("/api/v1/sessions/{}", segment(&key)),
        ops,
    );
    assert_eq!(shown.status, 200);
    let shown = shown.json();
    assert_eq!(shown["key"], key.as_str());
    assert_eq!(shown["data"]["user_id"], 42);
    assert_eq!(shown["data"]["device"], "laptop");

    let revoked = curl(addr, "DELETE", "/api/v1/users/42/sessions", ops);
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.json(), serde_json::json!({"count": 3}));
    assert_eq!(
        curl(addr, "GET", "/api/v1/users/42/sessions", ops).json(),
        serde_json::json!([])
    );
    assert_eq!(
        curl(
            addr,
            "GET",
            &format!("/api/v1/sessions/{}", segment(&key)),
            ops
        )
        .status,
        404
    );

    for (device, sid) in devices.iter().zip(&sids) {
        let reported = assert_logged_out(&php, handler, device, sid);
        println!("{device} is logged out; PHP reported: {reported}");
    }
    assert_logged_in(&php, "desk", &other, 7);
    assert_eq!(
        curl(addr, "GET", "/api/v1/sessions/count", ops).json()["users"],
        1
    );
    // Every request was logged (debug), and no session id appears in the log.
    let log = server.log_tail();
    assert!(log.contains("HTTP request"), "{log}");
    assert!(log.contains("/api/v1/sessions/#"), "{log}");
    for sid in sids.iter().chain([&other]) {
        assert!(!log.contains(sid.as_str()), "{sid} logged raw:\n{log}");
    }
}

/// With no password (protected mode: loopback listeners only), the API answers only
/// requests addressed to a loopback name, so a page that rebinds its own DNS name to
/// 127.0.0.1 cannot read sessions through a visitor's browser; health stays open.
#[test]
fn an_open_api_answers_only_loopback_host_names() {
    if not_sessiond() {
        return;
    }
    let server = Sessiond::start(&[]);
    let addr = server
        .listener("http")
        .unwrap_or_else(|| panic!("no HTTP listener\n{}", server.log_tail()));
    assert_eq!(
        curl(addr, "GET", "/api/v1/sessions/count", None).status,
        200
    );
    let local = curl_with(
        addr,
        "GET",
        "/api/v1/sessions/count",
        None,
        &[&format!("Host: localhost:{}", addr.port())],
    );
    assert_eq!(local.status, 200);
    for host in ["rebound.example", "rebound.example:8080"] {
        let refused = curl_with(
            addr,
            "GET",
            "/api/v1/sessions/count",
            None,
            &[&format!("Host: {host}")],
        );
        assert_eq!(refused.status, 403, "{host}");
        assert!(
            refused.json()["error"]
                .as_str()
                .unwrap()
                .contains("localhost")
        );
        let health = curl_with(
            addr,
            "GET",
            "/health/ready",
            None,
            &[&format!("Host: {host}")],
        );
        assert_eq!(health.status, 200, "{host}");
    }
}
