//! The HTTP listener: health checks, `/metrics`, the JSON admin API (`api`) and the admin
//! page for browsers (`admin`, under `/admin`) on axum's router, served by hyper's HTTP/1.1
//! server connection.
//!
//! The listener is one more entry of `Server::run`'s accept loop, so it has what the others
//! have: its own connection limit (`--max-connections`; one connection too many is answered
//! `503` and closed), TLS through `Tls::handshake` (`--http-tls-listen`), and graceful
//! shutdown (a request in flight is answered, then the connection closes). What a public
//! HTTP server needs on top, against a hostile client:
//!
//! - the request head (line and headers) must arrive within [`HEADER_READ_TIMEOUT`], which
//!   hyper also applies while a kept-alive connection waits for its next request, so a
//!   slowloris client or an idle connection holds its slot that long at most;
//! - a head over [`MAX_HEADER_SIZE`] (or over 100 headers) is refused with `431`;
//! - a body over [`BODY_LIMIT`] is refused with `413` (no route takes a body; the limit is
//!   only how much is read before the answer), and a body must arrive within
//!   [`BODY_TIMEOUT`] (`408`);
//! - a response write that makes no progress for `--write-timeout` closes the connection.
//!
//! Access (`api::Access`): health is open; `/metrics` is open unless
//! `--http-open-metrics no`; the API needs a user with the admin role (HTTP Basic, or
//! `Authorization: Bearer <password>` for the `default` user), unless no password is
//! configured, in which case sessiond listens on loopback only (protected mode) and, like
//! its other listeners, asks nobody to log in. Passwords are checked by `exec::auth`, in
//! constant time. Every response says `Cache-Control: no-store`.
//!
//! Logs: one `debug` line per request (method, path, status) with a session key in the path
//! replaced by its hash ([`key_hash`]); revocations at `info`, keys hashed likewise. Session
//! keys are never logged raw.

pub(crate) mod admin;
pub(crate) mod api;
#[cfg(test)]
mod tests;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tracing::Instrument;

use crate::exec::Shared;

/// How long a client has to send a request's line and headers, and how long a kept-alive
/// connection may wait for its next request.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers).
pub(crate) const MAX_HEADER_SIZE: usize = 16 * 1024;
/// Largest request body read.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// How long a client has to send a request's body.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read buffer: a head and some body.
const MAX_BUF: usize = 64 * 1024;

/// What a connection over `--max-connections` is told before it is closed.
pub(crate) const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
cache-control: no-store\r\n\
connection: close\r\n\
content-length: 38\r\n\
\r\n\
{\"error\":\"too many open connections\"}\n";

/// A JSON error response: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Whether the request names a loopback host in `Host` (`localhost`, `127.0.0.1`, `[::1]`,
/// with any port). With no password configured (protected mode: loopback listeners only,
/// nobody logs in), the admin page and the `/api/v1` routes answer only such requests, so a
/// web page cannot reach them through DNS rebinding (its own name made to resolve to
/// 127.0.0.1, which makes it same-origin with the listener in the browser's eyes).
pub(super) fn loopback_host(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The application: every route of [`api::ROUTES`] behind its access check, the fallbacks,
/// and the framing every response gets (body limit, `no-store`, the request log).
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    api::router(shared).layer(axum::middleware::from_fn(frame))
}

/// The framing of every request: reads the body within its limits, stamps `no-store` on the
/// response and logs the request with session keys hashed.
async fn frame(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = loggable_path(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut response = if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        body_too_large()
    } else {
        let (parts, body) = request.into_parts();
        match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await {
            Ok(Ok(bytes)) => {
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
            // Over the limit (chunked), or the client broke off.
            Ok(Err(_)) => body_too_large(),
            Err(_) => error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {BODY_TIMEOUT:?}"),
            ),
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    tracing::debug!(%method, path, status = response.status().as_u16(), "HTTP request");
    response
}

fn body_too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is over {BODY_LIMIT} bytes"),
    )
}

/// A short hash of a session key for logs: the first 8 bytes of its SHA-1, in hex
/// (`printf %s KEY | sha1sum | cut -c1-16` finds it).
pub(crate) fn key_hash(key: &[u8]) -> String {
    let digest = sha1_smol::Sha1::from(key).digest().bytes();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `path` with the session key of `/api/v1/sessions/{key}` replaced by `#<hash>`.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/api/v1/sessions/") {
        Some(key) if key != "count" => {
            let key = percent_encoding::percent_decode_str(key).collect::<Vec<u8>>();
            format!("/api/v1/sessions/#{}", key_hash(&key))
        }
        _ => path.to_string(),
    }
}

/// Serves one HTTP connection (after its TLS handshake, if any) until the client closes it,
/// a limit closes it, or the server shuts down (the request in flight is answered first).
pub(crate) async fn serve<S>(
    stream: S,
    peer: String,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write_timeout = shared.config.write_timeout;
    let service = TowerToHyperService::new(app(shared));
    let io = TokioIo::new(WriteDeadline::new(stream, write_timeout));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_SIZE)
        .max_buf_size(MAX_BUF);
    let connection = builder.serve_connection(io, service);
    let span = tracing::debug_span!("http", %peer);
    async move {
        tokio::pin!(connection);
        if !*shutdown.borrow_and_update() {
            tokio::select! {
                done = connection.as_mut() => {
                    if let Err(error) = done {
                        tracing::debug!(%error, "HTTP connection ended");
                    }
                    return;
                }
                _ = shutdown.changed() => {}
            }
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
    .instrument(span)
    .await;
}

/// A stream whose writes fail once one has made no progress for the write timeout, so a
/// client that never reads its response cannot hold a connection slot forever.
struct WriteDeadline<S> {
    inner: S,
    limit: Option<Duration>,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Option<Duration>) -> Self {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After a write that returned `Pending`: fails once the stall has lasted the limit.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Ready(done) => {
                self.stalled = None;
                Poll::Ready(done)
            }
            Poll::Pending => {
                let Some(limit) = self.limit else {
                    return Poll::Pending;
                };
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client did not read its response",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
