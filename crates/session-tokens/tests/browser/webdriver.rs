//! Just enough W3C WebDriver to drive headless Chromium through chromedriver: start the
//! driver on a free port, open a session with our flags, navigate, find elements, type,
//! click, read text and the URL. Written against the HTTP API directly because the test needs
//! a dozen commands and no extra dependency tree.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use crate::client::{Reply, send};

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

/// A running chromedriver, killed (by its pid) when dropped.
pub struct Driver {
    child: Child,
    base: String,
    chromium: PathBuf,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        // Unique per process and call; not security relevant.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "sessiond-tokens-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    /// Starts chromedriver and waits until it answers.
    pub async fn start() -> Self {
        let chromium = binary("CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver");
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let driver = Self {
            child,
            base,
            chromium,
            _profile: TempDir::new("profile"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = send(Method::GET, &format!("{}/status", driver.base), &[], vec![]).await
                && r.status.is_success()
            {
                let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if v["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// Opens a browser with `extra_args` and `prefs` on top of the test's fixed flags.
    pub async fn browser(&self, extra_args: &[String], prefs: Value) -> Browser {
        let mut args: Vec<String> = [
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
            // Plain-HTTP test sites: no automatic upgrade attempts to https.
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", self._profile.0.display()));
        args.extend(extra_args.iter().cloned());
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
        let r = self.call(Method::POST, "/session", Some(caps)).await;
        let id = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            base: self.base.clone(),
            session: format!("/session/{id}"),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        call(&self.base, method, path, body).await
    }
}

async fn call(base: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let body = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let Reply { status, body, .. } = send(method, &format!("{base}{path}"), headers, body)
        .await
        .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    assert!(status.is_success(), "webdriver {path}: {status} {v}");
    v["value"].clone()
}

/// One browser session.
pub struct Browser {
    base: String,
    session: String,
}

impl Browser {
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        call(&self.base, method, &format!("{}{path}", self.session), body).await
    }

    /// Navigates top-level to `url` and waits for the load.
    pub async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The current top-level URL.
    pub async fn url(&self) -> String {
        self.cmd(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs a script and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.script("return document.body ? document.body.innerText : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let r = call(
            &self.base,
            Method::POST,
            &format!("{}/elements", self.session),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await;
        let el = r.as_array()?.first()?;
        el.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| panic!("unexpected element reference: {el}"))
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await.unwrap_or_else(|| panic!("no {css}"));
        self.cmd(
            Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await.unwrap_or_else(|| panic!("no {css}"));
        self.cmd(
            Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Waits (polling) until the page's URL starts with `prefix` and its text contains
    /// `needle`; returns the text. Panics with what the page shows after 15 s.
    pub async fn wait_for(&self, prefix: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = self.url().await;
            let text = self.text().await;
            if url.starts_with(prefix) && text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {prefix:?} showing {needle:?}; at {url:?} showing {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Closes the browser.
    pub async fn quit(mut self) {
        call(&self.base, Method::DELETE, &self.session, None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    /// A test that panics never reaches `quit`; chromedriver does not close its browsers
    /// when it is killed, so end the session here, synchronously, or Chromium outlives the
    /// test. Best effort: errors are ignored.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        if self.session.is_empty() {
            return;
        }
        let Some(authority) = self.base.strip_prefix("http://") else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
            self.session
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        // chromedriver answers once the browser is gone; the headers are enough.
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    }
}
