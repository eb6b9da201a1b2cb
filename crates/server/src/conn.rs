//! The memcached connection loop: read, decode, execute, encode, write.
//!
//! The first byte of a connection picks the wire format (0x80 is binary, anything else is
//! text) and the connection keeps it. Every complete request already in the read buffer is
//! executed before anything is written, so a pipelining client gets its replies in one write;
//! the write buffer is flushed early once it passes [`WRITE_HIGH_WATER`], which bounds a
//! connection's memory. Commands return outcomes and never touch the socket.
//!
//! Shutdown: when the server stops, a connection finishes the requests it has already read,
//! writes their replies and closes.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sessiond_proto_memcache::{Command, Limits, Outcome, binary, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::exec::{Shared, memcache};
use crate::stats::bump;

/// Replies are written once this many bytes are pending, even mid-batch.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Initial read buffer size; it grows only as far as one request needs (bounded by the
/// codec's limits).
const READ_CHUNK: usize = 16 * 1024;

enum Decoder {
    Text(text::TextDecoder),
    Binary(binary::BinaryDecoder),
}

/// What processing the buffered requests decided about the connection.
enum Next {
    Continue,
    Close,
}

/// Serves one memcached connection until the client leaves, a fatal protocol error, the idle
/// timeout, or shutdown.
pub async fn serve(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let limits = Limits {
        max_value_len: shared.config.max_item_size,
        ..Limits::default()
    };
    let idle = shared.config.idle_timeout;
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut decoder: Option<Decoder> = None;
    loop {
        let read = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            read = read_with_idle_timeout(&mut stream, &mut rbuf, idle) => read,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let decoder = decoder.get_or_insert_with(|| {
            if rbuf[0] == 0x80 {
                Decoder::Binary(binary::BinaryDecoder::new(limits))
            } else {
                Decoder::Text(text::TextDecoder::new(limits))
            }
        });
        let mut unacknowledged = false;
        let next = loop {
            let step = process(decoder, &mut rbuf, &mut wbuf, &shared, &mut unacknowledged);
            if wbuf.len() >= WRITE_HIGH_WATER || !matches!(step, Step::More) {
                if unacknowledged {
                    unacknowledged = false;
                    if !acknowledged(&shared).await {
                        // The journal failed before these writes were persisted: close without
                        // replying, so the client never sees them acknowledged.
                        return;
                    }
                }
                if stream.write_all(&wbuf).await.is_err() {
                    return;
                }
                wbuf.clear();
            }
            match step {
                Step::More => continue,
                Step::NeedInput => break Next::Continue,
                Step::Close => break Next::Close,
            }
        };
        if let Next::Close = next {
            let _ = stream.shutdown().await;
            return;
        }
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(READ_CHUNK);
        }
    }
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

enum Step {
    /// One request was handled; there may be more in the buffer.
    More,
    /// The buffer holds no complete request.
    NeedInput,
    /// Close after writing what is pending.
    Close,
}

/// Waits until every journal record queued so far may be acknowledged; `false` if the
/// journal failed.
async fn acknowledged(shared: &Shared) -> bool {
    match &shared.journal {
        None => true,
        Some(journal) => journal.acknowledged(journal.last_queued()).await,
    }
}

/// Decodes and executes at most one request from `rbuf`, appending its reply to `wbuf`, and
/// sets `unacknowledged` when the reply must wait for the journal.
fn process(
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
    shared: &Shared,
    unacknowledged: &mut bool,
) -> Step {
    // One clock read per request keeps deadlines exact; it is a vDSO call.
    let now = now_ms();
    match decoder {
        Decoder::Text(decoder) => match decoder.decode(rbuf) {
            Ok(None) => Step::NeedInput,
            Ok(Some(request)) => {
                let outcome = run(shared, &request.command, now, unacknowledged);
                text::encode_reply(&request, &outcome, wbuf);
                if request.command == Command::Quit {
                    Step::Close
                } else {
                    Step::More
                }
            }
            Err(error) => {
                bump(&shared.stats.protocol_errors);
                text::encode_error(&error, wbuf);
                if matches!(error, text::TextError::Fatal(_)) {
                    Step::Close
                } else {
                    Step::More
                }
            }
        },
        Decoder::Binary(decoder) => match decoder.decode(rbuf) {
            Ok(None) => Step::NeedInput,
            Ok(Some(request)) => {
                let outcome = run(shared, &request.command, now, unacknowledged);
                binary::encode_reply(&request, &outcome, wbuf);
                if request.command == Command::Quit {
                    Step::Close
                } else {
                    Step::More
                }
            }
            Err(error) => {
                bump(&shared.stats.protocol_errors);
                binary::encode_error(&error, wbuf);
                if matches!(error, binary::BinaryError::Fatal(_)) {
                    Step::Close
                } else {
                    Step::More
                }
            }
        },
    }
}

fn run(shared: &Shared, command: &Command, now: u64, unacknowledged: &mut bool) -> Outcome {
    let outcome = memcache::execute(shared, command, now);
    // A refused write changed nothing, so there is nothing to wait for: its error reply can
    // go out at once (waiting would only find the journal failed and drop the reply).
    *unacknowledged |=
        memcache::needs_durable_ack(command) && !matches!(outcome, Outcome::ServerError(_));
    outcome
}
