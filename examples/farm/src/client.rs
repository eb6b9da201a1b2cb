//! A user of the farm, as curl: one cookie jar (the `PHPSESSID` cookie, kept by hand so a
//! test can read, copy or drop it), JSON answers from the app, and which node served each
//! request (the app's `X-Farm-Node` header, checked against the load balancer's
//! `X-Farm-Upstream`). curl is the real HTTP client a user would script the farm with.

use std::process::Command;
use std::time::Duration;

use sessiond_test_harness::{TempDir, require_program, run_with_timeout};

/// The session cookie every node shares.
pub const COOKIE: &str = "PHPSESSID";

/// One answer of the app.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// `X-Farm-Node`: the node that ran the request.
    pub node: String,
    /// The JSON body (`{"user", "count", "node", "error"}`), or `Null` if it was not JSON.
    pub json: serde_json::Value,
    /// The raw body, for failure messages.
    pub body: String,
}

impl Answer {
    /// The logged-in user the node saw, if any.
    pub fn user(&self) -> Option<&str> {
        self.json.get("user").and_then(|u| u.as_str())
    }

    /// The session's counter the node saw or wrote.
    pub fn count(&self) -> Option<i64> {
        self.json.get("count").and_then(|c| c.as_i64())
    }
}

/// One browser-like user: a base URL (a door of the load balancer, or one node) and a cookie.
#[derive(Debug, Clone)]
pub struct Client {
    pub cookie: Option<String>,
}

/// Upper bound of one request: generous (a lock wait on a loaded machine), only a hang guard.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

impl Client {
    pub fn new() -> Client {
        Client { cookie: None }
    }

    /// `GET base/path`.
    pub fn get(&mut self, base: &str, path: &str) -> Answer {
        self.request("GET", base, path, None)
    }

    /// `POST base/path` with a form body.
    pub fn post(&mut self, base: &str, path: &str, form: &str) -> Answer {
        self.request("POST", base, path, Some(form))
    }

    /// `POST /login` as `user`; panics unless the node logged the user in.
    pub fn login(&mut self, base: &str, user: &str) -> Answer {
        let answer = self.post(base, "/login", &format!("user={user}"));
        assert_eq!(
            (answer.status, answer.user()),
            (200, Some(user)),
            "login as {user} failed: {answer:?}"
        );
        assert!(self.cookie.is_some(), "login set no cookie: {answer:?}");
        answer
    }

    /// Sends one request with curl and keeps what `Set-Cookie` says.
    pub fn request(&mut self, method: &str, base: &str, path: &str, form: Option<&str>) -> Answer {
        let curl = require_program("curl", "curl");
        let mut cmd = Command::new(curl);
        cmd.args(["--silent", "--show-error", "--include", "--max-time", "30"])
            .args(["--request", method])
            .args(["--header", "Accept: application/json"]);
        if let Some(cookie) = &self.cookie {
            cmd.args(["--header", &format!("Cookie: {COOKIE}={cookie}")]);
        }
        // A large body goes through a file: one argument may not exceed 128 KiB.
        let body_dir = form.filter(|f| f.len() > 64 * 1024).map(|form| {
            let dir = TempDir::new("curl-body");
            let path = dir.path().join("body");
            std::fs::write(&path, form).expect("writing a request body");
            cmd.args(["--data-binary", &format!("@{}", path.display())]);
            dir
        });
        if let Some(form) = form.filter(|_| body_dir.is_none()) {
            cmd.args(["--data", form]);
        }
        cmd.arg(format!("{base}{path}"));
        let done = run_with_timeout("curl", &mut cmd, REQUEST_TIMEOUT);
        drop(body_dir);
        assert!(
            done.status.success(),
            "curl {method} {base}{path} failed: {}",
            done.stderr
        );
        // Interim `100 Continue` heads (curl sends `Expect: 100-continue` with a large body)
        // come before the real one.
        let mut rest = done.stdout.as_str();
        while rest.starts_with("HTTP/1.1 1") {
            rest = rest.split_once("\r\n\r\n").map_or("", |(_, after)| after);
        }
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {:?}", done.stdout));
        let mut node = String::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("x-farm-node") {
                node = value.to_string();
            } else if name.eq_ignore_ascii_case("set-cookie") {
                self.take_cookie(value);
            }
        }
        Answer {
            status,
            node,
            json: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
            body: body.to_string(),
        }
    }

    /// `PHPSESSID=<id>; …` sets the cookie; an empty value or a date in the past clears it.
    fn take_cookie(&mut self, header: &str) {
        let Some(first) = header.split(';').next() else {
            return;
        };
        let Some((name, value)) = first.split_once('=') else {
            return;
        };
        if name.trim() != COOKIE {
            return;
        }
        let value = value.trim();
        let expired = header.to_ascii_lowercase().contains("max-age=0")
            || header.contains("1970")
            || value.is_empty()
            || value == "deleted";
        self.cookie = (!expired).then(|| value.to_string());
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}
