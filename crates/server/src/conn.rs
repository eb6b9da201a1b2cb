//! The memcached connection loop: read, decode, execute, encode, write.
//!
//! The first byte of a connection picks the wire format (0x80 is binary, anything else is
//! text) and the connection keeps it. Every complete request already in the read buffer is
//! executed before anything is written, so a pipelining client gets its replies in one write;
//! the write buffer is flushed early once it passes [`WRITE_HIGH_WATER`], which bounds a
//! connection's memory. Commands return outcomes and never touch the socket.
//!
//! Replies go into a [`ReplyChunks`]: headers and status lines are encoded into a buffer,
//! while a hit's value (at least [`SHARE_MIN`](sessiond_proto_memcache::chunks::SHARE_MIN)
//! bytes) is queued as the store's own shared `Bytes`, and the lot is written with vectored
//! writes. A value is copied once, by the kernel, instead of twice, and a multi-get of large
//! values holds references rather than a reply-sized buffer.
//!
//! The clock is read once per batch of requests decoded from one read (and again after any
//! wait inside a batch), not once per request: a batch takes microseconds, and deadlines are
//! in milliseconds.
//!
//! Shutdown: when the server stops, a connection finishes the requests it has already read,
//! writes their replies and closes.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use sessiond_proto_memcache::{Command, Limits, Outcome, ReplyChunks, binary, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::exec::{Shared, memcache};
use crate::stats::bump;

/// Replies are written once this many bytes are pending, even mid-batch. Shared values count:
/// they keep their items' memory alive until written.
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
    let mut wbuf = ReplyChunks::with_capacity(READ_CHUNK);
    let mut decoder: Option<Decoder> = None;
    // Shutdown without a cost per request. Creating a `changed()` future around every read,
    // and polling it before the read, took the watch's notify lock twice per request. Now one
    // `changed()` future lives for the whole connection; it is polled only when a read has to
    // wait (polling a registered waiter still takes that lock), and a busy connection, whose
    // reads never wait, notices shutdown through `probe`, a clone whose `has_changed` is one
    // atomic load per read. The clone starts from the same seen version, so a shutdown that
    // happened before this connection started is noticed at once, as before.
    let probe = shutdown.clone();
    let stop = shutdown.changed();
    tokio::pin!(stop);
    loop {
        // `Err`: the sender is gone, which only happens when the server is going away.
        if probe.has_changed().unwrap_or(true) {
            return;
        }
        let read = tokio::select! {
            // The read first: when bytes are waiting, `stop` is not polled at all.
            biased;
            read = read_with_idle_timeout(&mut stream, &mut rbuf, idle) => read,
            _ = &mut stop => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // One clock read for the batch this read delivered; see the module docs.
        let mut now = now_ms();
        let decoder = decoder.get_or_insert_with(|| {
            if rbuf[0] == 0x80 {
                Decoder::Binary(binary::BinaryDecoder::new(limits))
            } else {
                Decoder::Text(text::TextDecoder::new(limits))
            }
        });
        let mut unacknowledged = false;
        let next = loop {
            let step = process(
                decoder,
                &mut rbuf,
                &mut wbuf,
                &shared,
                now,
                &mut unacknowledged,
            );
            if wbuf.len() >= WRITE_HIGH_WATER || !matches!(step, Step::More) {
                if unacknowledged {
                    unacknowledged = false;
                    if !shared.acknowledge_writes().await {
                        // The journal failed before these writes were persisted: close without
                        // replying, so the client never sees them acknowledged.
                        return;
                    }
                }
                if write_replies(&mut stream, &mut wbuf).await.is_err() {
                    return;
                }
                // Time passed while waiting for the journal or the socket.
                if matches!(step, Step::More) {
                    now = now_ms();
                }
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

/// Most slices handed to one vectored write. Each hit takes two (the encoded bytes before its
/// value, and the value), so this is 16 large hits per system call, which is plenty.
const WRITE_SLICES: usize = 32;

/// Writes everything in `wbuf`, resuming after partial writes. A reply without shared values
/// is one contiguous slice and takes a plain `write`; otherwise the encoded bytes and the
/// values go out together in vectored writes. (tokio's `write_all_buf` would do the same, but
/// builds a 64-slice array on every poll and cost measurably more per reply than this.)
async fn write_replies(stream: &mut TcpStream, wbuf: &mut ReplyChunks) -> std::io::Result<()> {
    while wbuf.has_remaining() {
        let written = if wbuf.chunk().len() == wbuf.remaining() {
            stream.write(wbuf.chunk()).await?
        } else {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let count = wbuf.chunks_vectored(&mut slices);
            stream.write_vectored(&slices[..count]).await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        wbuf.advance(written);
    }
    Ok(())
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

/// Decodes and executes at most one request from `rbuf` as of `now`, appending its reply to
/// `wbuf`, and sets `unacknowledged` when the reply must wait for the journal.
fn process(
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    wbuf: &mut ReplyChunks,
    shared: &Shared,
    now: u64,
    unacknowledged: &mut bool,
) -> Step {
    match decoder {
        Decoder::Text(decoder) => match decoder.decode(rbuf) {
            Ok(None) => Step::NeedInput,
            Ok(Some(request)) => {
                let outcome = run(shared, &request.command, now, unacknowledged);
                text::encode_reply_chunks(&request, &outcome, wbuf);
                if request.command == Command::Quit {
                    Step::Close
                } else {
                    Step::More
                }
            }
            Err(error) => {
                bump(&shared.stats.protocol_errors);
                text::encode_error(&error, wbuf.buf_mut());
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
                binary::encode_reply_chunks(&request, &outcome, wbuf);
                if request.command == Command::Quit {
                    Step::Close
                } else {
                    Step::More
                }
            }
            Err(error) => {
                bump(&shared.stats.protocol_errors);
                binary::encode_error(&error, wbuf.buf_mut());
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
