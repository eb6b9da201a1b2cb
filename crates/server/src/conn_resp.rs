//! The RESP connection loop: read, decode, execute, encode, write, plus pub/sub delivery.
//!
//! Like the memcached loop (`conn`), every complete request already read is executed
//! before anything is written, so a pipelining client gets its replies in one write, and
//! replies are flushed early past [`WRITE_HIGH_WATER`]. Replies to writes are held until the
//! journal acknowledges them under the fsync policy (TTL-only writes excepted); if the
//! journal fails first, the connection is closed without those replies.
//!
//! Each command runs holding the script gate: shared for ordinary commands, exclusive for
//! `EVAL`/`EVALSHA` (see `exec::resp::scripting`). The gate is a std lock held only inside
//! synchronous execution, never across an await.
//!
//! A subscribed connection also waits on its pub/sub queue and writes each message as a
//! push; a subscriber whose queue overflows is disconnected (Redis's pub/sub output limit).
//! Protocol errors are fatal, as in Redis: the error is sent and the connection closed.
//! The idle timeout does not apply while subscribed (a listener is idle by design).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sessiond_proto_resp::{Decoder, Limits, Reply, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::exec::Shared;
use crate::exec::resp::pubsub::{Message, Subscriber};
use crate::exec::resp::{self, Answer, Session};
use crate::stats::bump;

/// Replies are written once this many bytes are pending, even mid-batch.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Initial read buffer size.
const READ_CHUNK: usize = 16 * 1024;
/// Floor of the per-connection input limit; see [`input_limit`].
const MIN_INPUT_LIMIT: usize = 16 * 1024 * 1024;

/// The most unprocessed input one connection may buffer: room for a few maximal values,
/// so one connection cannot pin unbounded memory with a never-ending request.
fn input_limit(shared: &Shared) -> usize {
    (4 * shared.config.max_item_size).max(MIN_INPUT_LIMIT)
}

/// Serves one RESP connection until the client leaves, `QUIT`, a protocol error, the idle
/// timeout, a pub/sub overflow, or shutdown.
pub async fn serve(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let local = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut session = Session::new(&shared, peer, local, now_ms());
    if let Ok(mut clients) = shared.resp.clients.lock() {
        clients.insert(session.id, session.info.clone());
    }
    serve_session(&mut stream, &shared, &mut session, &mut shutdown).await;
    if let Some(mut sub) = session.subscriber.take() {
        shared.resp.pubsub.drop_subscriber(session.id, &mut sub);
    }
    if let Ok(mut clients) = shared.resp.clients.lock() {
        clients.remove(&session.id);
    }
}

/// Waits for the next pub/sub message; never completes for a connection that has not
/// subscribed.
async fn next_message(subscriber: &mut Option<Subscriber>) -> Option<Message> {
    match subscriber {
        Some(sub) => sub.rx.recv().await,
        None => std::future::pending().await,
    }
}

enum Event {
    Read(std::io::Result<usize>),
    Message(Option<Message>),
    Stop,
}

async fn serve_session(
    stream: &mut TcpStream,
    shared: &Shared,
    session: &mut Session,
    shutdown: &mut watch::Receiver<bool>,
) {
    let limits = Limits {
        max_bulk_len: shared.config.max_item_size.max(64 * 1024),
        ..Limits::default()
    };
    let limit = input_limit(shared);
    let mut decoder = Decoder::new(limits);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let subscribed = session.subscriber.as_ref().is_some_and(|s| s.count() > 0);
        let idle = if subscribed {
            None
        } else {
            shared.config.idle_timeout
        };
        let event = tokio::select! {
            biased;
            _ = shutdown.changed() => Event::Stop,
            message = next_message(&mut session.subscriber) => Event::Message(message),
            read = read_with_idle_timeout(stream, &mut rbuf, idle) => Event::Read(read),
        };
        match event {
            Event::Stop => return,
            Event::Message(None) => return,
            Event::Message(Some(message)) => {
                encode(&message.reply(), session.protocol, &mut wbuf);
                // Deliver whatever else is already queued in the same write.
                if let Some(sub) = session.subscriber.as_mut() {
                    while wbuf.len() < WRITE_HIGH_WATER
                        && let Ok(more) = sub.rx.try_recv()
                    {
                        encode(&more.reply(), session.protocol, &mut wbuf);
                    }
                }
                if stream.write_all(&wbuf).await.is_err() {
                    return;
                }
                wbuf.clear();
                continue;
            }
            Event::Read(Ok(0) | Err(_)) => return,
            Event::Read(Ok(_)) => {}
        }
        let mut unacknowledged = false;
        let mut close = false;
        loop {
            match decoder.decode(&mut rbuf) {
                Ok(None) => break,
                Ok(Some(request)) => {
                    let answer = run(shared, session, &request.args, &mut unacknowledged);
                    match answer {
                        Answer::One(reply) => encode(&reply, session.protocol, &mut wbuf),
                        Answer::Many(replies) => {
                            for reply in &replies {
                                encode(reply, session.protocol, &mut wbuf);
                            }
                        }
                    }
                    if session.quit {
                        close = true;
                        break;
                    }
                }
                Err(error) => {
                    bump(&shared.stats.protocol_errors);
                    tracing::debug!(%error, "RESP protocol error; closing the connection");
                    encode(&error.reply(), session.protocol, &mut wbuf);
                    close = true;
                    break;
                }
            }
            if wbuf.len() >= WRITE_HIGH_WATER
                && !flush(stream, shared, &mut wbuf, &mut unacknowledged).await
            {
                return;
            }
        }
        if !wbuf.is_empty() && !flush(stream, shared, &mut wbuf, &mut unacknowledged).await {
            return;
        }
        if session.subscriber.as_ref().is_some_and(|s| s.overflowed()) {
            tracing::warn!(
                client = session.id,
                "pub/sub subscriber too slow; closing its connection"
            );
            close = true;
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
        if rbuf.len() > limit {
            tracing::warn!(
                client = session.id,
                limit,
                "RESP request larger than the input limit; closing the connection"
            );
            return;
        }
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(READ_CHUNK);
        }
    }
}

/// Runs one request under the script gate and notes whether its reply must wait for the
/// journal.
fn run(shared: &Shared, session: &mut Session, args: &[bytes::Bytes], unack: &mut bool) -> Answer {
    // One clock read per request keeps deadlines exact; it is a vDSO call.
    let now = now_ms();
    let answer = if resp::is_script(args) {
        let _exclusive = shared.resp.gate.write().unwrap_or_else(|e| e.into_inner());
        resp::execute(shared, session, args, now)
    } else {
        let _shared = shared.resp.shared_gate();
        resp::execute(shared, session, args, now)
    };
    // A write refused because the journal failed changed nothing: its error goes out at
    // once (waiting would only find the journal failed and drop the reply).
    let refused =
        matches!(&answer, Answer::One(Reply::Error(text)) if text.starts_with(b"MISCONF"));
    *unack |= !refused && resp::needs_durable_ack(args);
    answer
}

/// Waits for the journal if needed, then writes `wbuf`; `false` if the connection must
/// close (write failed, or the journal failed before acknowledging).
async fn flush(
    stream: &mut TcpStream,
    shared: &Shared,
    wbuf: &mut BytesMut,
    unacknowledged: &mut bool,
) -> bool {
    if *unacknowledged {
        *unacknowledged = false;
        if !shared.acknowledge_writes().await {
            return false;
        }
    }
    let ok = stream.write_all(wbuf).await.is_ok();
    wbuf.clear();
    ok
}

async fn read_with_idle_timeout(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    idle: Option<Duration>,
) -> std::io::Result<usize> {
    match idle {
        None => stream.read_buf(buf).await,
        Some(limit) => match tokio::time::timeout(limit, stream.read_buf(buf)).await {
            Ok(read) => read,
            Err(_) => Ok(0),
        },
    }
}
