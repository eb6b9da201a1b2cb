//! The connection layer: one driver for every listener, generic over the stream and the
//! protocol.
//!
//! [`serve`] owns what every connection shares: reading into a bounded buffer, the idle and
//! write timeouts, noticing shutdown, reading the clock once per batch, and "wait for the
//! journal, then write the replies". A protocol ([`Protocol`]: [`memcache`], [`resp`])
//! supplies only decode, execute and encode of one request at a time, plus, for RESP, the
//! pushes a subscriber receives between requests. The stream is anything that reads and
//! writes bytes, so a TLS stream plugs in as a plain TCP stream does.
//!
//! Every complete request already in the read buffer is executed before anything is
//! written, so a pipelining client gets its replies in one write; replies are flushed early
//! once [`WRITE_HIGH_WATER`] bytes are pending (encoded bytes and shared values alike), and
//! nothing more is read or executed until they are written. So a connection's pending output
//! is at most [`WRITE_HIGH_WATER`] plus one reply, and a protocol refuses any reply larger
//! than `--client-output-limit`: a client that pipelines requests and never reads costs that
//! much and no more, and the write timeout (`--write-timeout`) closes it. The read buffer is
//! bounded by [`Protocol::input_limit`], and given back once a large request is done.
//! Replies to writes are held until the journal acknowledges them under the fsync policy; if
//! the journal fails first, the connection is closed without those replies, so the client
//! never sees an unpersisted write acknowledged.
//!
//! The clock is read once per batch of requests decoded from one read (and again after any
//! wait inside a batch), not once per request: a batch takes microseconds, and deadlines are
//! in milliseconds.
//!
//! Shutdown: when the server stops, a connection finishes the requests it has already read,
//! writes their replies and closes.

mod guard;
pub(crate) mod memcache;
pub(crate) mod resp;

use std::future::Future;
use std::io::IoSlice;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::exec::Shared;

/// Replies are written once this many bytes are pending, even mid-batch. Shared values count:
/// they keep their items' memory alive until written.
pub(crate) const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Initial read buffer size; it grows only as far as one request needs (bounded by the
/// codec's limits and [`Protocol::input_limit`]).
pub(crate) const READ_CHUNK: usize = 16 * 1024;
/// A buffer that grew past this for one large request or reply is replaced by a fresh small
/// one once it is empty, so a connection does not keep the largest request it ever sent.
pub(crate) const KEEP_BUFFER: usize = 1024 * 1024;

/// What handling one request decided.
pub(crate) enum Step {
    /// One request was handled; there may be more in the buffer.
    More,
    /// The buffer holds no complete request.
    NeedInput,
    /// Close after writing what is pending.
    Close,
    /// The request needs the script gate exclusively (it runs a script); the protocol kept
    /// it for [`Protocol::handle_exclusive`].
    Exclusive,
    /// The request blocks (a list pop with nothing to pop): the driver writes what is
    /// pending, waits for [`Protocol::wait_unblocked`] without holding the script gate,
    /// reading (and keeping) input meanwhile only to notice a client that leaves, then calls
    /// [`Protocol::handle_unblocked`].
    Blocked,
}

/// One request handled: what comes next, and whether its reply must wait for the journal.
pub(crate) struct Handled {
    pub step: Step,
    /// The request changed the store and its reply may go out only once the journal has
    /// acknowledged the change.
    pub durable: bool,
}

impl Handled {
    /// A request whose reply need not wait.
    pub fn at_once(step: Step) -> Handled {
        Handled {
            step,
            durable: false,
        }
    }
}

/// A wire protocol as the driver sees it.
pub(crate) trait Protocol {
    /// The pending replies: encoded bytes, possibly with shared values to write vectored.
    type Replies: Buf;

    /// An empty reply buffer.
    fn replies(&self) -> Self::Replies;

    /// Decodes, executes and encodes at most one request from `input` as of `now`, appending
    /// its reply to `replies`. The caller holds the script gate shared.
    fn handle(&mut self, input: &mut BytesMut, replies: &mut Self::Replies, now: u64) -> Handled;

    /// Runs the request that [`Protocol::handle`] kept with [`Step::Exclusive`]. The caller
    /// holds the script gate exclusively.
    fn handle_exclusive(&mut self, _replies: &mut Self::Replies, _now: u64) -> Handled {
        Handled::at_once(Step::More)
    }

    /// Whether the protocol answers requests itself in the busy state (`exec::busy`: the
    /// gate held exclusively past `busy-reply-threshold`) instead of waiting for the gate.
    /// RESP does (`BUSY`, and Redis's `allow-busy` commands); memcached waits, bounded by the
    /// hard cap.
    fn answers_busy(&self) -> bool {
        false
    }

    /// In the busy state, without the gate: decodes at most one request and answers it as
    /// [`Protocol::handle`] would, except that what needs the gate is refused. Called only if
    /// [`Protocol::answers_busy`].
    fn handle_busy(
        &mut self,
        _input: &mut BytesMut,
        _replies: &mut Self::Replies,
        _now: u64,
    ) -> Handled {
        Handled::at_once(Step::Close)
    }

    /// Refuses the request kept with [`Step::Exclusive`] because the busy state came while
    /// it waited for the gate. Called only if [`Protocol::answers_busy`].
    fn refuse_exclusive(&mut self, _replies: &mut Self::Replies) -> Handled {
        Handled::at_once(Step::More)
    }

    /// Completes when the request that answered [`Step::Blocked`] may go on (served, or
    /// timed out). Cancel-safe: dropped and called again, it goes on waiting where it was.
    fn wait_unblocked(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Answers the request that blocked, once [`Protocol::wait_unblocked`] completed.
    fn handle_unblocked(&mut self, _replies: &mut Self::Replies, _now: u64) -> Handled {
        Handled::at_once(Step::More)
    }

    /// How long the connection may sit without input before it is closed, now.
    fn idle_timeout(&self) -> Option<Duration>;

    /// The most unprocessed input the connection may buffer; past it the connection closes.
    fn input_limit(&self) -> usize;

    /// Waits for the next out-of-band message (a pub/sub push), encodes it and whatever else
    /// is queued behind it into `replies`, and returns `true`; `false` closes the connection.
    /// A protocol without pushes never completes.
    fn push(&mut self, replies: &mut Self::Replies) -> impl Future<Output = bool> + Send;

    /// Whether the connection must close after the batch just written (a subscriber that
    /// fell too far behind).
    fn close_after_batch(&self) -> bool {
        false
    }

    /// Completes when the connection must close at once, even in the middle of a write that
    /// makes no progress: a subscriber whose queued messages passed their limit. The pending
    /// output is dropped with the connection. Never completes by default.
    fn evicted(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// Time limits of a connection's socket.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timeouts {
    /// A write that makes no progress for this long closes the connection (a client that
    /// never reads cannot hold its task forever). `None`: no limit.
    pub write: Option<Duration>,
}

/// What the driver's wait ended with.
enum Event {
    Read(std::io::Result<usize>),
    Pushed(bool),
    Stop,
}

/// Serves one connection with `protocol` until the client leaves, the protocol closes, a
/// timeout, or shutdown.
pub(crate) async fn serve<S, P>(
    mut stream: S,
    mut protocol: P,
    shared: &Shared,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    P: Protocol,
{
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut replies = protocol.replies();
    // Shutdown without a cost per request. Creating a `changed()` future around every read,
    // and polling it before the read, took the watch's notify lock twice per request. One
    // `changed()` future lives for the whole connection; it is polled only when a read has to
    // wait (polling a registered waiter still takes that lock), and a busy connection, whose
    // reads never wait, notices shutdown through `probe`, a clone whose `has_changed` is one
    // atomic load per read. The clone starts from the same seen version, so a shutdown that
    // happened before this connection started is noticed at once.
    let probe = shutdown.clone();
    let stop = shutdown.changed();
    tokio::pin!(stop);
    loop {
        // `Err`: the sender is gone, which only happens when the server is going away.
        if probe.has_changed().unwrap_or(true) {
            return;
        }
        let idle = protocol.idle_timeout();
        let event = tokio::select! {
            // The read first: when bytes are waiting, nothing else is polled.
            biased;
            read = read_within(&mut stream, &mut input, idle) => Event::Read(read),
            pushed = protocol.push(&mut replies) => Event::Pushed(pushed),
            _ = &mut stop => Event::Stop,
        };
        match event {
            Event::Stop | Event::Pushed(false) | Event::Read(Ok(0) | Err(_)) => return,
            Event::Pushed(true) => {
                if flush(&mut stream, &mut replies, timeouts.write, &protocol)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Event::Read(Ok(_)) => {}
        }
        // One clock read for the batch this read delivered; see the module docs.
        let mut now = now_ms();
        let mut durable = false;
        let close = loop {
            // The script gate, shared, for one request; see `Shared::gate`.
            let handled = match shared.gate.try_read() {
                Ok(_gate) => {
                    let handled = protocol.handle(&mut input, &mut replies, now);
                    if handled.durable {
                        shared.settle_sessions(now);
                    }
                    handled
                }
                Err(_) => {
                    // A script (or `EXEC`, or a multi-key command) runs or waits to: wait for
                    // it without holding the thread, until the busy state (which only a
                    // script brings) if the protocol answers it (`exec::busy`).
                    let gate =
                        wait_for_gate(shared, shared.gate.read(), protocol.answers_busy()).await;
                    now = now_ms();
                    match gate {
                        Some(_gate) => {
                            let handled = protocol.handle(&mut input, &mut replies, now);
                            if handled.durable {
                                shared.settle_sessions(now);
                            }
                            handled
                        }
                        None => protocol.handle_busy(&mut input, &mut replies, now),
                    }
                }
            };
            let handled = match handled.step {
                Step::Exclusive => {
                    let gate =
                        wait_for_gate(shared, shared.gate.write(), protocol.answers_busy()).await;
                    match gate {
                        Some(_gate) => {
                            // A script may run for up to its time limit: off the async worker.
                            // (A script registers itself for the busy state while it runs; a
                            // transaction or a multi-key command does not: waiters wait for
                            // those, bounded as they are by what they were sent.)
                            let now = now_ms();
                            let handled =
                                run_blocking(|| protocol.handle_exclusive(&mut replies, now));
                            if handled.durable {
                                shared.settle_sessions(now);
                            }
                            handled
                        }
                        None => protocol.refuse_exclusive(&mut replies),
                    }
                }
                Step::Blocked => {
                    // Whatever the batch answered before the blocking request goes out first.
                    if std::mem::take(&mut durable) && !shared.acknowledge_writes().await {
                        return;
                    }
                    if flush(&mut stream, &mut replies, timeouts.write, &protocol)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    loop {
                        let read = tokio::select! {
                            biased;
                            () = protocol.wait_unblocked() => break,
                            read = read_within(&mut stream, &mut input, None) => read,
                            _ = &mut stop => return,
                        };
                        // A blocked client's input waits (as in Redis), within its limit; a
                        // client that leaves ends the wait (dropping the protocol withdraws it).
                        match read {
                            Ok(0) | Err(_) => return,
                            Ok(_) if input.len() > protocol.input_limit() => return,
                            Ok(_) => {}
                        }
                    }
                    now = now_ms();
                    protocol.handle_unblocked(&mut replies, now)
                }
                _ => handled,
            };
            durable |= handled.durable;
            let more = matches!(handled.step, Step::More | Step::Blocked);
            if replies.remaining() >= WRITE_HIGH_WATER || !more {
                if std::mem::take(&mut durable) && !shared.acknowledge_writes().await {
                    // The journal failed before these writes were persisted: close without
                    // replying, so the client never sees them acknowledged.
                    return;
                }
                if flush(&mut stream, &mut replies, timeouts.write, &protocol)
                    .await
                    .is_err()
                {
                    return;
                }
                // Time passed while waiting for the journal or the socket.
                if more {
                    now = now_ms();
                }
            }
            match handled.step {
                Step::More | Step::Exclusive | Step::Blocked => continue,
                Step::NeedInput => break protocol.close_after_batch(),
                Step::Close => break true,
            }
        };
        if close {
            let _ = stream.shutdown().await;
            return;
        }
        if input.len() > protocol.input_limit() {
            tracing::warn!(
                limit = protocol.input_limit(),
                "request larger than the input limit; closing the connection"
            );
            return;
        }
        if input.is_empty() && input.capacity() > KEEP_BUFFER {
            // Nothing half-decoded refers to an empty buffer, so a fresh one is the same.
            input = BytesMut::with_capacity(READ_CHUNK);
        } else if input.capacity() - input.len() < 1024 {
            input.reserve(READ_CHUNK);
        }
    }
}

/// The idle timeout of a connection that has not logged in (while a password is required):
/// the shorter of `--auth-idle-timeout` and `--idle-timeout`, since a client that does not
/// know the password has no business sitting on a connection slot.
pub(crate) fn unauthenticated_idle_timeout(config: &crate::config::Config) -> Option<Duration> {
    match (config.auth_idle_timeout, config.idle_timeout) {
        (Some(auth), Some(idle)) => Some(auth.min(idle)),
        (auth, idle) => auth.or(idle),
    }
}

/// Waits for `lock` (the script gate, shared or exclusive). When `answers_busy`, gives up
/// (`None`) once a script holding the gate has run past `busy-reply-threshold`: at once if it
/// already has, else at that moment, following each new script and a changed threshold
/// through the busy state's watch (`exec::busy`), so nothing polls. A holder that is not
/// running a script (`EXEC`, a multi-key command) is waited for, however long it takes.
async fn wait_for_gate<G>(
    shared: &Shared,
    lock: impl Future<Output = G>,
    answers_busy: bool,
) -> Option<G> {
    if !answers_busy {
        return Some(lock.await);
    }
    // The spammer's path: already busy, answered without queueing on the lock at all.
    if shared
        .busy
        .current_busy_at()
        .is_some_and(|at| at <= std::time::Instant::now())
    {
        return None;
    }
    tokio::pin!(lock);
    let mut holder = shared.busy.watch();
    loop {
        let busy_at = (*holder.borrow_and_update()).and_then(|since| shared.busy.busy_at(since));
        // Far enough never to fire; the branch is disabled anyway without a time.
        let sleep_until = busy_at
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            biased;
            guard = &mut lock => return Some(guard),
            changed = holder.changed() => {
                if changed.is_err() {
                    // The server is going away: just wait for the gate.
                    return Some(lock.await);
                }
            }
            () = tokio::time::sleep_until(sleep_until), if busy_at.is_some() => return None,
        }
    }
}

/// Runs `work`, which may block for a while (a script), telling the runtime first so that
/// the worker's other connections move to another thread meanwhile.
fn run_blocking<R>(work: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Reads more input; a read that waits longer than `idle` ends the connection as if the
/// client had closed it.
async fn read_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    input: &mut BytesMut,
    idle: Option<Duration>,
) -> std::io::Result<usize> {
    match idle {
        None => stream.read_buf(input).await,
        Some(limit) => match tokio::time::timeout(limit, stream.read_buf(input)).await {
            Ok(read) => read,
            Err(_) => Ok(0),
        },
    }
}

/// Writes every pending reply within the write timeout, unless the protocol must close the
/// connection first ([`Protocol::evicted`]).
async fn flush<S: AsyncWrite + Unpin, P: Protocol>(
    stream: &mut S,
    replies: &mut P::Replies,
    limit: Option<Duration>,
    protocol: &P,
) -> std::io::Result<()> {
    tokio::select! {
        biased;
        written = write_within(stream, replies, limit) => written,
        () = protocol.evicted() => Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
}

/// Most slices handed to one vectored write. Each memcached hit takes two (the encoded bytes
/// before its value, and the value), so this is 16 large hits per system call, which is
/// plenty.
const WRITE_SLICES: usize = 32;

/// Writes everything in `replies`, resuming after partial writes, failing if one write makes
/// no progress for `limit`. A timeout per write rather than for the whole of it: a slow but
/// reading client may take long for a large reply; one that never reads stops making
/// progress. Contiguous replies take a plain `write`; otherwise the encoded bytes and the
/// shared values go out together in vectored writes. (tokio's `write_all_buf` would do the
/// same, but builds a 64-slice array on every poll and cost measurably more per reply than
/// this.)
async fn write_within<S: AsyncWrite + Unpin, B: Buf>(
    stream: &mut S,
    replies: &mut B,
    limit: Option<Duration>,
) -> std::io::Result<()> {
    while replies.has_remaining() {
        let write = async {
            if replies.chunk().len() == replies.remaining() {
                stream.write(replies.chunk()).await
            } else {
                let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                let count = replies.chunks_vectored(&mut slices);
                stream.write_vectored(&slices[..count]).await
            }
        };
        let mut write = std::pin::pin!(write);
        // The timer is armed only for a write that has to wait: a ready socket (the common
        // case) costs no clock read and no timer entry.
        let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        let written = match (first, limit) {
            (Poll::Ready(written), _) => written?,
            (Poll::Pending, None) => write.await?,
            (Poll::Pending, Some(limit)) => tokio::time::timeout(limit, write)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))?,
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        replies.advance(written);
    }
    // A TLS stream may accept the last bytes into its record buffer without getting all of
    // the ciphertext onto the socket (the socket was full); only a flush pushes the rest
    // out, and without it the client would wait for the end of a reply until its next
    // request. On a TCP stream this is a no-op.
    stream.flush().await
}

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    Memcache,
    Resp,
    /// The HTTP API, served by `crate::http` (hyper), not by [`serve`].
    Http,
}

impl Listener {
    /// What a connection refused for lack of a slot is told, in the protocol's own words.
    pub fn refusal(self) -> &'static [u8] {
        match self {
            Listener::Memcache => b"SERVER_ERROR too many open connections\r\n",
            // Redis's words when `maxclients` is reached.
            Listener::Resp => b"-ERR max number of clients reached\r\n",
            Listener::Http => crate::http::REFUSAL,
        }
    }
}

/// Serves one accepted TCP connection of `listener`, after a TLS handshake when the
/// listener is a TLS one (`tls`). Both kinds go to the same [`serve`]; the peer and local
/// addresses (RESP's `CLIENT LIST`) are taken from the TCP stream before it is wrapped.
pub(crate) async fn serve_tcp(
    stream: tokio::net::TcpStream,
    listener: Listener,
    tls: Option<std::sync::Arc<crate::tls::Tls>>,
    shared: std::sync::Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let address = |addr: std::io::Result<std::net::SocketAddr>| {
        addr.map(|a| a.to_string()).unwrap_or_default()
    };
    let addresses = (address(stream.peer_addr()), address(stream.local_addr()));
    match tls {
        None => serve_stream(stream, listener, addresses, shared, shutdown).await,
        Some(tls) => {
            // The handshake runs inside the connection's task and holds its connection slot,
            // which is why it is bounded by a timeout (see `Tls::handshake`). Shutdown
            // abandons it: a connection that has sent no request has nothing to finish.
            let mut stop = shutdown.clone();
            let handshaken = tokio::select! {
                stream = tls.handshake(
                    stream,
                    &shared.stats,
                    &shared.stats.more.listeners[crate::stats::listener_index(listener, true)],
                ) => stream,
                _ = stop.changed() => None,
            };
            if let Some(stream) = handshaken {
                serve_stream(stream, listener, addresses, shared, shutdown).await;
            }
        }
    }
}

/// Builds `listener`'s protocol state and serves `stream` with it.
async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    listener: Listener,
    (peer, local): (String, String),
    shared: std::sync::Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let timeouts = Timeouts {
        write: shared.config.write_timeout,
    };
    match listener {
        Listener::Memcache => {
            let protocol = memcache::Memcache::new(shared.clone());
            serve(stream, protocol, &shared, timeouts, shutdown).await;
        }
        Listener::Resp => {
            let session = crate::exec::resp::Session::new(&shared, peer, local, now_ms());
            let protocol = resp::Resp::new(shared.clone(), session);
            serve(stream, protocol, &shared, timeouts, shutdown).await;
        }
        Listener::Http => crate::http::serve(stream, peer, shared, shutdown).await,
    }
}
