//! Just enough W3C WebDriver to drive headless Chromium through chromedriver: start the
//! driver on a free port, open a browser with the tests' flags, navigate, find elements,
//! type, click, read text, the URL and screenshots. The one client of the workspace's
//! browser tests: this suite's admin page ([`crate::admin_page`]), and, included by path,
//! the farm's journey (`examples/farm/tests/farm.rs`) and the cross-domain login of
//! `crates/session-tokens/tests/browser`. It calls the HTTP API directly on
//! `std::net::TcpStream` (a dozen commands need no WebDriver crate nor an async client), so
//! its calls block: an async test runs its browser steps outside its runtime's threads.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`CHROMIUM` and
//! `CHROMEDRIVER` override the paths); without them the test fails and names them.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The element reference key of the W3C protocol.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A binary from an environment variable or a default path; fails naming the package.
fn binary(env: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        Path::new(&path).exists(),
        "{} not found: install the Debian package `{package}` (apt-get install chromium \
         chromium-driver), or set {env}=/path/to/it",
        path.display()
    );
    path
}

/// One HTTP/1.1 request to chromedriver (`Connection: close`); the status and body.
fn send(authority: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(authority).expect("connect to chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    // chromedriver may keep the connection open: read the head, then what it announces.
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut read = |reply: &mut Vec<u8>| -> bool {
        let n = stream.read(&mut buf).expect("chromedriver's reply");
        reply.extend_from_slice(&buf[..n]);
        n > 0
    };
    let split = loop {
        if let Some(at) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        assert!(
            read(&mut reply),
            "chromedriver closed before its reply's head"
        );
    };
    let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &reply[split + 4..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete || !read(&mut reply) {
            break;
        }
    }
    let mut body = reply[split + 4..].to_vec();
    if let Some(n) = length {
        body.truncate(n);
    } else if chunked {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol]).unwrap_or("0");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

fn call(authority: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = send(authority, method, path, body.as_ref());
    let v: Value = serde_json::from_slice(&reply).unwrap_or_default();
    assert!(
        (200..300).contains(&status),
        "webdriver {method} {path}: {status} {v}"
    );
    v["value"].clone()
}

/// A running chromedriver, killed (by its pid) when dropped.
pub struct Driver {
    child: Child,
    authority: String,
    chromium: PathBuf,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Driver {
    /// Starts chromedriver and waits until it answers.
    pub fn start() -> Driver {
        let chromium = binary("CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = std::env::temp_dir().join(format!(
            "sessiond-it-chromium-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let driver = Driver {
            child,
            authority: format!("127.0.0.1:{port}"),
            chromium,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(&driver.authority).is_ok() {
                let (status, body) = send(&driver.authority, "GET", "/status", None);
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                if status == 200 && v["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// Opens a headless browser window of `width` × `height`.
    pub fn browser(&self, width: u32, height: u32) -> Browser {
        self.browser_with(&[format!("--window-size={width},{height}")], json!({}))
    }

    /// Opens a headless browser with `extra_args` on top of the tests' fixed flags, and the
    /// preferences `prefs`.
    pub fn browser_with(&self, extra_args: &[String], prefs: Value) -> Browser {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--metrics-recording-only",
            "--hide-scrollbars",
            // Plain-HTTP test sites: no automatic upgrade attempts to https.
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", self.profile.display())])
        .chain(extra_args.iter().cloned())
        .collect::<Vec<_>>();
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": self.chromium.display().to_string(),
                        "args": args,
                        "prefs": prefs,
                    }
                }
            }
        });
        let r = call(&self.authority, "POST", "/session", Some(caps));
        let id = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            authority: self.authority.clone(),
            session: format!("/session/{id}"),
        }
    }
}

/// One browser session; closed when dropped (chromedriver does not close its browsers when
/// it is killed).
pub struct Browser {
    authority: String,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| send(&self.authority, "DELETE", &self.session, None));
    }
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            &self.authority,
            method,
            &format!("{}{path}", self.session),
            body,
        )
    }

    /// Navigates top-level to `url` and waits for the load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current top-level URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The visible text of the page (WebDriver's element text of `body`: no script, which
    /// the page's Content-Security-Policy would not stop anyway, as WebDriver's scripts run
    /// outside it; reading the text this way keeps the test independent of that).
    ///
    /// A page that navigates between finding its `body` and reading it (a redirect chain
    /// the pollers below wait through) answers "stale element reference"; that reads as an
    /// empty page, and the poll looks again.
    pub fn text(&self) -> String {
        let Some(body) = self.find("body") else {
            return String::new();
        };
        let path = format!("{}/element/{body}/text", self.session);
        let (status, reply) = send(&self.authority, "GET", &path, None);
        let v: Value = serde_json::from_slice(&reply).unwrap_or_default();
        if status == 404 && v["value"]["error"] == "stale element reference" {
            return String::new();
        }
        assert!(
            (200..300).contains(&status),
            "webdriver GET {path}: {status} {v}"
        );
        v["value"].as_str().unwrap_or_default().to_owned()
    }

    /// The page's source.
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let r = self.cmd(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        let el = r.as_array()?.first()?;
        el.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Types `text` into the element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).unwrap_or_else(|| panic!("no {css}"));
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        let el = self.find(css).unwrap_or_else(|| panic!("no {css}"));
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    /// Waits (polling) until the URL contains `part` and the text contains `needle`;
    /// returns the text. Panics with what the page shows after 15 s.
    pub fn wait_for(&self, part: &str, needle: &str) -> String {
        self.wait_until(&format!("{part:?}"), needle, |url| url.contains(part))
    }

    /// Waits (polling) until the URL starts with `prefix` and the text contains `needle`;
    /// returns the text. Panics with what the page shows after 15 s.
    pub fn wait_at(&self, prefix: &str, needle: &str) -> String {
        self.wait_until(&format!("{prefix:?}…"), needle, |url| {
            url.starts_with(prefix)
        })
    }

    /// Waits (polling) until `at(url)` holds and the text contains `needle`; `place` says
    /// which URL was waited for.
    fn wait_until(&self, place: &str, needle: &str, at: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = self.url();
            let text = self.text();
            if at(&url) && text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {place} showing {needle:?}; at {url:?} showing {text:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A screenshot of the window, as PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("valid base64")
    }
}
