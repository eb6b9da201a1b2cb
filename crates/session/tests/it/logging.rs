//! Ids never reach the logs raw: unknown, malformed, expired and cycled ids are logged as
//! salted hashes. Captures the tracing output of a single-threaded test.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::{Backend, Gates, login, send};
use sessiond_session::{LogHasher, SessionId};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ids_are_logged_only_as_salted_hashes() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let b = Backend::memory();
    let hasher = LogHasher::with_salt(b"shared-by-all-nodes".to_vec());
    let node = b
        .node(
            b.config().with_log_hasher(hasher.clone()),
            false,
            &Gates::default(),
        )
        .await;
    let forged = SessionId::generate();
    send(&node, "GET", "/whoami", Some(forged.as_str())).await;
    let pre = send(&node, "POST", "/set?k=a&v=1", None)
        .await
        .cookie_id("id")
        .unwrap();
    let post = send(&node, "POST", "/login?user=alice", Some(&pre))
        .await
        .cookie_id("id")
        .unwrap();
    send(&node, "POST", "/logout", Some(&post)).await;
    let _ = login(&node, "bob").await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("unknown session id"), "{logs}");
    assert!(logs.contains(&hasher.hash(&forged)), "{logs}");
    assert!(logs.contains("session id replaced"), "{logs}");
    for raw in [forged.as_str(), &pre, &post] {
        assert!(!logs.contains(raw), "raw id in logs:\n{logs}");
    }
}
