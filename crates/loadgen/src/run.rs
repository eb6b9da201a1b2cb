//! The engine: drives one server with one workload and measures it.
//!
//! One tokio task per connection. **Closed loop** (the default): a connection keeps up to
//! `depth` requests in flight, writes every request it may send in one `write`, then reads
//! and matches replies in order; latency is from the moment the batch was written to the
//! moment its reply was read. **Open loop** (`rate`): each connection sends on a fixed
//! schedule (`rate / conns` per second) whether or not replies have come back, from a writer
//! task, while a reader task matches replies; latency is measured from the *intended* send
//! time, so a stalled server is charged for the requests it delayed (no coordinated
//! omission).
//!
//! All connections are opened before the clock starts. With a duration, the first `warmup`
//! is run but not recorded, then requests *sent* during the measured window are recorded;
//! after the window the connections stop sending and drain. With a request count, the count
//! is split between connections, everything is recorded, and the rate is over the time until
//! the last reply.
//!
//! Latencies go into one HDR histogram per connection (nanoseconds, 3 significant digits),
//! merged at the end.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::proto::{self, OpKind, Outcome, Protocol, ReplyDecoder};
use crate::tls::{Connector, Stream};
use crate::workload::{KeySpace, Kind, OpStream, Workload, session_value};

/// A reply that takes longer than this fails the run: the server is hung or the stream is
/// out of sync, and waiting longer measures nothing.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
/// Highest latency the histogram tracks (larger values are clamped).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// Wire protocol.
    pub protocol: Protocol,
    /// What to send.
    pub workload: Workload,
    /// Connections.
    pub conns: usize,
    /// Requests in flight per connection (closed loop); 1 is request/response.
    pub depth: usize,
    /// How long to measure, after the warm-up. Ignored when `requests` is set.
    pub duration: Duration,
    /// Send exactly this many requests in total instead of running for `duration`.
    pub requests: Option<u64>,
    /// Unrecorded run-in before the measured window (duration mode only).
    pub warmup: Duration,
    /// Open loop: total requests per second, spread evenly over the connections.
    pub rate: Option<f64>,
    /// Seed for key choice (each connection derives its own).
    pub seed: u64,
}

/// Counts of reply outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Reads that found the key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Writes that succeeded.
    pub ok: u64,
    /// Writes refused for a normal reason (add on an existing key, touch of a missing key).
    pub rejected: u64,
    /// Error replies.
    pub errors: u64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Hit => self.hits += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::Ok => self.ok += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Error => self.errors += 1,
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.errors += other.errors;
    }

    /// Every recorded reply.
    pub fn total(&self) -> u64 {
        self.hits + self.misses + self.ok + self.rejected + self.errors
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Reply outcomes in the window.
    pub counts: Counts,
    /// Latencies in nanoseconds.
    pub latency: Histogram<u64>,
}

impl RunResult {
    /// Recorded requests per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.counts.total() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1e6
    }

    /// The largest latency, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1e6
    }

    /// One human-readable paragraph.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "{:.0} ops/s over {:.2} s ({} requests)\nlatency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n\
             replies: {} hits, {} misses, {} ok, {} rejected, {} errors",
            self.ops_per_sec(),
            self.elapsed.as_secs_f64(),
            c.total(),
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            self.max_ms(),
            c.hits,
            c.misses,
            c.ok,
            c.rejected,
            c.errors,
        )
    }
}

/// Per-connection results.
struct ConnResult {
    counts: Counts,
    latency: Histogram<u64>,
    /// When the last recorded reply arrived (request-count mode).
    last: Instant,
}

/// When to record and when to stop, shared by every connection of a run.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Requests sent at or after this are recorded.
    start: Instant,
    /// No request is sent at or after this (duration mode).
    end: Option<Instant>,
    /// Requests this connection sends in total (request-count mode).
    quota: Option<u64>,
}

impl Window {
    fn records(&self, sent: Instant) -> bool {
        sent >= self.start && self.end.is_none_or(|end| sent < end)
    }

    fn may_send(&self, now: Instant, sent: u64) -> bool {
        self.end.is_none_or(|end| now < end) && self.quota.is_none_or(|q| sent < q)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// Runs `config` against its server. `keys` must cover `config.workload.keys` (and carry lock
/// keys for the PHP workload).
pub async fn run(config: &RunConfig, keys: Arc<KeySpace>) -> anyhow::Result<RunResult> {
    run_with(config, keys, &Connector::Plain).await
}

/// [`run`] with connections opened by `connector` (TLS with `Connector::Tls`; closed loop
/// only).
pub async fn run_with(
    config: &RunConfig,
    keys: Arc<KeySpace>,
    connector: &Connector,
) -> anyhow::Result<RunResult> {
    if config.rate.is_some() && !matches!(connector, Connector::Plain) {
        bail!("TLS runs are closed-loop only (no --rate)");
    }
    if config.conns == 0 || config.depth == 0 {
        bail!("connections and pipeline depth must be at least 1");
    }
    if let Some(rate) = config.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        bail!("--rate must be a positive number of requests per second");
    }
    let mut streams = Vec::with_capacity(config.conns);
    for _ in 0..config.conns {
        streams.push(connector.connect(config.addr).await?);
    }
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let begin = Instant::now();
    let counted = config.requests.is_some() || config.workload.kind == Kind::Load;
    let (start, end) = if counted {
        (begin, None)
    } else {
        (
            begin + config.warmup,
            Some(begin + config.warmup + config.duration),
        )
    };
    let conns = config.conns as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let i = i as u64;
        let quota = config
            .requests
            .map(|n| n / conns + u64::from(i < n % conns));
        let window = Window { start, end, quota };
        // Each connection writes the sessions of its own user, in PHP's format.
        let ops = OpStream::new(
            config.workload,
            keys.clone(),
            session_value(config.workload.value_size, i),
            i,
            conns,
            config.seed,
            salt,
        );
        let protocol = config.protocol;
        match config.rate {
            None => tasks.spawn(closed_loop(stream, protocol, ops, config.depth, window)),
            Some(rate) => {
                let Stream::Plain(stream) = stream else {
                    unreachable!("checked above: TLS runs are closed-loop")
                };
                let interval = Duration::from_secs_f64(conns as f64 / rate);
                // Stagger the connections' schedules across one interval.
                let first = begin + interval.mul_f64(i as f64 / conns as f64);
                tasks.spawn(open_loop(stream, protocol, ops, interval, first, window))
            }
        };
    }
    let mut counts = Counts::default();
    let mut latency = histogram();
    let mut last = start;
    while let Some(joined) = tasks.join_next().await {
        let conn = joined.context("connection task panicked")??;
        counts.merge(&conn.counts);
        latency.add(&conn.latency).context("merging histograms")?;
        last = last.max(conn.last);
    }
    let elapsed = match end {
        Some(end) => end - start,
        None => last - start,
    };
    Ok(RunResult {
        elapsed,
        counts,
        latency,
    })
}

/// Request/response with up to `depth` requests outstanding.
async fn closed_loop(
    mut stream: Stream,
    protocol: Protocol,
    mut ops: OpStream,
    depth: usize,
    window: Window,
) -> anyhow::Result<ConnResult> {
    let decoder = ReplyDecoder::new(protocol);
    let mut latency = histogram();
    let mut counts = Counts::default();
    let mut inflight: VecDeque<(Instant, OpKind)> = VecDeque::with_capacity(depth);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut sent = 0u64;
    let mut opaque = 0u32;
    let mut done = false;
    let mut last = window.start;
    loop {
        let now = Instant::now();
        while !done && inflight.len() < depth && window.may_send(now, sent) {
            let Some(op) = ops.next_op() else {
                done = true;
                break;
            };
            opaque = opaque.wrapping_add(1);
            proto::encode(protocol, &op, opaque, &mut wbuf);
            inflight.push_back((now, op.kind()));
            sent += 1;
        }
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await.context("writing requests")?;
            // A no-op on TCP; on TLS it sends what the record layer still holds.
            stream.flush().await.context("writing requests")?;
            wbuf.clear();
        }
        let Some(&(_, kind)) = inflight.front() else {
            break;
        };
        read_some(&mut stream, &mut rbuf).await?;
        let now = Instant::now();
        let mut kind = kind;
        while let Some(outcome) = decoder.decode(&mut rbuf, kind)? {
            let (sent_at, _) = inflight
                .pop_front()
                .expect("a reply answers a request in flight");
            if window.records(sent_at) {
                latency.saturating_record((now - sent_at).as_nanos() as u64);
                counts.add(outcome);
                last = now;
            }
            match inflight.front() {
                Some(&(_, next)) => kind = next,
                None => break,
            }
        }
    }
    Ok(ConnResult {
        counts,
        latency,
        last,
    })
}

/// Reads more of a reply into `rbuf`, failing if nothing comes within [`REPLY_TIMEOUT`] or the
/// server closes the connection.
pub(crate) async fn read_some(
    stream: &mut (impl AsyncReadExt + Unpin),
    rbuf: &mut BytesMut,
) -> anyhow::Result<()> {
    if rbuf.capacity() - rbuf.len() < 16 * 1024 {
        rbuf.reserve(64 * 1024);
    }
    match tokio::time::timeout(REPLY_TIMEOUT, stream.read_buf(rbuf)).await {
        Err(_) => bail!("no reply within {REPLY_TIMEOUT:?}"),
        Ok(Err(e)) => Err(e).context("reading replies"),
        Ok(Ok(0)) => bail!("the server closed the connection"),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Sends on a fixed schedule from a writer task; this task reads and matches replies.
async fn open_loop(
    stream: TcpStream,
    protocol: Protocol,
    mut ops: OpStream,
    interval: Duration,
    first: Instant,
    window: Window,
) -> anyhow::Result<ConnResult> {
    let (mut reader, mut writer) = stream.into_split();
    // Intended send times, pushed before the request is written so the reader always finds
    // the entry for a reply.
    let inflight: Arc<Mutex<VecDeque<(Instant, OpKind)>>> = Arc::default();
    let (done_tx, mut done_rx) = watch::channel(false);
    let queue = inflight.clone();
    let writer_task = tokio::spawn(async move {
        let mut next = first;
        let mut sent = 0u64;
        let mut opaque = 0u32;
        let mut wbuf = BytesMut::with_capacity(64 * 1024);
        let result = async {
            loop {
                tokio::time::sleep_until(next).await;
                let now = Instant::now();
                // Catch up on every slot that is due: the timer is coarser than the interval.
                while next <= now && window.may_send(next, sent) {
                    let Some(op) = ops.next_op() else { break };
                    opaque = opaque.wrapping_add(1);
                    proto::encode(protocol, &op, opaque, &mut wbuf);
                    queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back((next, op.kind()));
                    sent += 1;
                    next += interval;
                }
                if wbuf.is_empty() {
                    return anyhow::Ok(());
                }
                writer.write_all(&wbuf).await.context("writing requests")?;
                wbuf.clear();
            }
        }
        .await;
        let _ = done_tx.send(true);
        // Hand the write half back instead of dropping it here: dropping an `OwnedWriteHalf`
        // shuts the socket's write side down (a FIN), and a server that closes when its
        // client does (the ceiling, memcached) would then close while the reader may still
        // be about to look at the socket, so a clean end would race an "unexpected" EOF.
        // Kept until the reader is done, the connection stays open for the whole run and
        // an EOF always means the server gave up.
        result.map(|()| writer)
    });
    let decoder = ReplyDecoder::new(protocol);
    let mut latency = histogram();
    let mut counts = Counts::default();
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut last = window.start;
    loop {
        let now = Instant::now();
        loop {
            let front = inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .front()
                .copied();
            let Some((intended, kind)) = front else { break };
            let Some(outcome) = decoder.decode(&mut rbuf, kind)? else {
                break;
            };
            inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            if window.records(intended) {
                latency.saturating_record((now - intended).as_nanos() as u64);
                counts.add(outcome);
                last = now;
            }
        }
        let outstanding = !inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if outstanding {
            read_some(&mut reader, &mut rbuf).await?;
        } else if *done_rx.borrow_and_update() {
            break;
        } else {
            // Idle between scheduled sends (a low rate): wait without the reply timeout for
            // bytes, for the writer to finish, or for the next slot.
            if rbuf.capacity() - rbuf.len() < 16 * 1024 {
                rbuf.reserve(64 * 1024);
            }
            tokio::select! {
                read = reader.read_buf(&mut rbuf) => {
                    if read.context("reading replies")? == 0 {
                        bail!("the server closed the connection");
                    }
                }
                _ = done_rx.changed() => {}
                _ = tokio::time::sleep(interval.max(Duration::from_millis(1))) => {}
            }
        }
    }
    // Dropped (closing the connection) only now that every reply has been matched.
    let _writer = writer_task.await.context("writer task panicked")??;
    Ok(ConnResult {
        counts,
        latency,
        last,
    })
}

/// Stores every key of `keys` once with `value_size`-byte values and `ttl` (preloading, so
/// that reads hit). Uses `conns` connections with 16 requests in flight each.
pub async fn preload(
    addr: SocketAddr,
    protocol: Protocol,
    keys: Arc<KeySpace>,
    value_size: usize,
    ttl: u32,
    conns: usize,
) -> anyhow::Result<RunResult> {
    preload_with(
        addr,
        protocol,
        keys,
        value_size,
        ttl,
        conns,
        &Connector::Plain,
    )
    .await
}

/// [`preload`] with connections opened by `connector`.
pub async fn preload_with(
    addr: SocketAddr,
    protocol: Protocol,
    keys: Arc<KeySpace>,
    value_size: usize,
    ttl: u32,
    conns: usize,
    connector: &Connector,
) -> anyhow::Result<RunResult> {
    let workload = Workload {
        kind: Kind::Load,
        keys: keys.len(),
        value_size,
        ttl,
    };
    let config = RunConfig {
        addr,
        protocol,
        workload,
        conns,
        depth: 16,
        duration: Duration::ZERO,
        requests: None,
        warmup: Duration::ZERO,
        rate: None,
        seed: 0,
    };
    let result = run_with(&config, keys, connector).await?;
    if result.counts.ok != result.counts.total() {
        bail!("preload: not every set succeeded: {:?}", result.counts);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Kind;

    /// Regression test for a flake of the smoke test: the open loop's writer used to drop its
    /// write half when its schedule ended, which half-closes the socket; the ceiling (like
    /// memcached) closes when its client does, and a reader idling in its `select!` could see
    /// that EOF before the writer's "done" and fail with "the server closed the connection".
    /// Many connections that idle between sends make every one of them end in that state.
    /// The old code failed this test in most runs, not all (the race is `select!`'s random
    /// branch order); with the write half kept open until the reader is done, no server
    /// closes mid-run and it passes whatever the scheduling.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_ends_cleanly_against_a_server_that_closes_when_the_client_does() {
        let (listener, addr) = crate::ceiling::bind(([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        // Its own thread and runtime, like the separate process of the smoke test, so it
        // answers an EOF while the client's tasks are still being scheduled.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(crate::ceiling::serve(listener, 16))
        });
        let workload = Workload {
            kind: Kind::Php,
            keys: 10,
            value_size: 16,
            ttl: 60,
        };
        let keys = Arc::new(KeySpace::new(workload.keys, true));
        // Whether an ending raced used to depend on scheduling (about half of the idle
        // endings); three rounds of every protocol made the old code fail nearly always.
        let rounds = [Protocol::Text, Protocol::Binary, Protocol::Resp].repeat(3);
        for protocol in rounds {
            let config = RunConfig {
                addr,
                protocol,
                workload,
                conns: 64,
                depth: 1,
                duration: Duration::from_millis(30),
                requests: None,
                warmup: Duration::ZERO,
                // 5 ms between one connection's sends: the readers idle between them.
                rate: Some(12800.0),
                seed: 1,
            };
            let result = run(&config, keys.clone())
                .await
                .unwrap_or_else(|e| panic!("{protocol:?}: {e:#}"));
            assert_eq!(result.counts.errors, 0, "{protocol:?}");
            assert!(result.counts.total() > 0, "{protocol:?}");
        }
    }
}
