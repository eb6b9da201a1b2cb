//! Expiry lateness: how long after its deadline a key's `expired` keyspace event reaches a
//! subscriber (`sessiond-load expiry`, bench/expiry-lateness.sh).
//!
//! ```text
//!   subscriber conn: [HELLO 3] ▸ CONFIG SET notify-keyspace-events Ex ▸ SUBSCRIBE __keyevent@0__:expired
//!   writer conns:    SET exp:<run>:<deadline>:<i> <value> PXAT <deadline>   (pipelined, deadline order)
//!   subscriber:      each `message` ▸ lateness = receive wall time − deadline (from the key) ▸ HDR
//! ```
//!
//! The deadlines are spread evenly over a window that starts `lead` ahead, so the server sees
//! a steady mass expiry (200,000 keys over 2 s is 100 per millisecond) rather than one burst.
//! Each key carries its own deadline in its name, so the receiver needs no shared table, and
//! a run id, so events of keys left over from an earlier run against the same server are told
//! apart and ignored. Both ends read the same wall clock (one machine), which is what the
//! server's deadlines are in; lateness is measured in microseconds from the receive time of
//! the read that delivered the event, so it includes the server's sweep interval, its
//! publication and queueing, the socket and this generator's own scheduling delay.
//!
//! The writes must all land before the first deadline, or a key would be written already
//! late; the run says so (a warning, and the margin in the summary) when `lead` was too short.
//! A subscriber that cannot keep up is disconnected by both servers (their pub/sub output
//! limits); the run then ends early and reports the events that never came as missing.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::resp::{self, RespReply};
use crate::run::read_some;
use crate::tls::{Connector, Stream};
use crate::workload::value_of_size;

/// The channel the subscriber listens on: every `expired` event of database 0.
const CHANNEL: &[u8] = b"__keyevent@0__:expired";
/// Requests a writer connection sends before it reads their replies: large enough that the
/// writes are bound by the server, small enough that a refused write is seen early.
const WRITE_BATCH: u64 = 256;
/// Highest lateness the histogram tracks, in microseconds (larger values are clamped).
const MAX_LATENESS_US: u64 = 600_000_000;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ExpiryConfig {
    /// The server's RESP address.
    pub addr: SocketAddr,
    /// Keys written, each with its own deadline.
    pub sessions: u64,
    /// The deadlines are spread evenly over this window.
    pub window: Duration,
    /// The window starts this long after the run starts (writing must finish before).
    pub lead: Duration,
    /// Value size in bytes.
    pub value_size: usize,
    /// Writer connections.
    pub conns: usize,
    /// Subscribe over RESP3 (`HELLO 3`, events as `>` pushes) instead of RESP2.
    pub resp3: bool,
    /// How long to wait for missing events after the last deadline.
    pub wait: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct ExpiryResult {
    /// Keys written.
    pub sessions: u64,
    /// Lateness of each distinct event, in microseconds.
    pub lateness: Histogram<u64>,
    /// Distinct keys whose event arrived.
    pub received: u64,
    /// Events for keys already reported (a server bug if ever non-zero).
    pub duplicates: u64,
    /// Events received before their key's deadline (counted as lateness 0).
    pub early: u64,
    /// How long writing every key took.
    pub write_time: Duration,
    /// Milliseconds from the last write's reply to the first deadline; negative when writing
    /// was still going on when keys started to expire.
    pub margin_ms: i64,
    /// The server closed the subscriber's connection before every event arrived.
    pub disconnected: bool,
}

impl ExpiryResult {
    /// Keys whose event never arrived.
    pub fn missing(&self) -> u64 {
        self.sessions - self.received
    }

    /// The lateness at quantile `q` (0..=1), in milliseconds.
    pub fn lateness_ms(&self, q: f64) -> f64 {
        self.lateness.value_at_quantile(q) as f64 / 1e3
    }

    /// One human-readable paragraph; bench/expiry-lateness.sh reads its `received` and
    /// `lateness ms:` lines.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "wrote {} keys in {:.2} s; the first deadline came {} ms after the last write\n\
             received {} missing {} (duplicates {}, early {})\n\
             lateness ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.sessions,
            self.write_time.as_secs_f64(),
            self.margin_ms,
            self.received,
            self.missing(),
            self.duplicates,
            self.early,
            self.lateness_ms(0.5),
            self.lateness_ms(0.9),
            self.lateness_ms(0.99),
            self.lateness_ms(0.999),
            self.lateness.max() as f64 / 1e3,
        );
        if self.disconnected {
            out.push_str("\nthe server closed the subscriber's connection (too slow a reader?)");
        }
        out
    }
}

/// Unix time in microseconds, from the wall clock the servers' deadlines are in.
fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The key of session `i` of run `run`, due at `deadline` (Unix ms).
fn key_of(run: u64, deadline: u64, i: u64) -> Bytes {
    format!("exp:{run:x}:{deadline}:{i}").into()
}

/// Reads `key_of`'s key back: (deadline, i), if the key belongs to run `run`.
fn parse_key(run: u64, key: &[u8]) -> Option<(u64, u64)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut fields = key.rsplitn(3, ':');
    let i = fields.next()?.parse().ok()?;
    let deadline = fields.next()?.parse().ok()?;
    let prefix = fields.next()?;
    (prefix.strip_prefix("exp:")? == format!("{run:x}")).then_some((deadline, i))
}

/// The deadline of session `i` of `n`: the window `[start, start + window)` split evenly.
fn deadline_of(start: u64, window_ms: u64, i: u64, n: u64) -> u64 {
    start + i * window_ms / n
}

/// Sends one command and waits for its reply, failing on an error reply.
async fn command(stream: &mut Stream, rbuf: &mut BytesMut, args: &[&[u8]]) -> anyhow::Result<()> {
    let mut out = BytesMut::new();
    resp::encode_command(args, &mut out);
    stream.write_all(&out).await.context("writing a command")?;
    let name = String::from_utf8_lossy(args[0]).into_owned();
    loop {
        // The error's text is the line before it is consumed.
        let line = rbuf[..].split(|&b| b == b'\r').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line).into_owned();
        match resp::decode_reply(rbuf)? {
            Some(RespReply::Error) => bail!("the server refused {name}: {text}"),
            Some(_) => return Ok(()),
            None => read_some(stream, rbuf).await?,
        }
    }
}

/// Runs the measurement against `config.addr`.
pub async fn run(config: &ExpiryConfig) -> anyhow::Result<ExpiryResult> {
    let n = config.sessions;
    if n == 0 || config.conns == 0 {
        bail!("sessions and connections must be at least 1");
    }
    let mut sub = Connector::Plain.connect(config.addr).await?;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    if config.resp3 {
        command(&mut sub, &mut rbuf, &[b"HELLO", b"3"]).await?;
    }
    command(
        &mut sub,
        &mut rbuf,
        &[b"CONFIG", b"SET", b"notify-keyspace-events", b"Ex"],
    )
    .await?;
    // The subscription is confirmed before the first key is written, so no event is lost.
    command(&mut sub, &mut rbuf, &[b"SUBSCRIBE", CHANNEL]).await?;

    let run_id = unix_micros();
    let start = unix_micros() / 1000 + config.lead.as_millis() as u64;
    let window_ms = config.window.as_millis() as u64;
    let last_deadline = deadline_of(start, window_ms, n - 1, n);
    let give_up = Instant::now()
        + Duration::from_millis(last_deadline.saturating_sub(unix_micros() / 1000))
        + config.wait;
    let receiver = tokio::spawn(receive(sub, rbuf, run_id, n, give_up));

    let began = Instant::now();
    let value = value_of_size(config.value_size);
    let mut writers = tokio::task::JoinSet::new();
    for c in 0..config.conns as u64 {
        let value = value.clone();
        let (addr, conns) = (config.addr, config.conns as u64);
        // Connection `c` writes sessions c, c + conns, …: every connection goes through the
        // deadlines in order, so the earliest keys are written first.
        let ids = (c..n).step_by(conns as usize);
        writers.spawn(async move {
            let mut stream = Connector::Plain.connect(addr).await?;
            write_keys(
                &mut stream,
                ids,
                |i| {
                    let deadline = deadline_of(start, window_ms, i, n);
                    (key_of(run_id, deadline, i), deadline)
                },
                &value,
            )
            .await
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.context("writer task panicked")??;
    }
    let write_time = began.elapsed();
    let margin_ms = start as i64 - (unix_micros() / 1000) as i64;
    if margin_ms <= 0 {
        eprintln!(
            "warning: writing took {:.2} s and ended {} ms after the first deadline; \
             raise --lead-ms so that every key is written before it is due",
            write_time.as_secs_f64(),
            -margin_ms
        );
    }
    let received = receiver.await.context("receiver task panicked")??;
    Ok(ExpiryResult {
        sessions: n,
        lateness: received.lateness,
        received: received.distinct,
        duplicates: received.duplicates,
        early: received.early,
        write_time,
        margin_ms,
        disconnected: received.disconnected,
    })
}

/// `SET key value PXAT deadline` for every session of `ids`, `WRITE_BATCH` in flight.
async fn write_keys(
    stream: &mut Stream,
    mut ids: impl Iterator<Item = u64>,
    key: impl Fn(u64) -> (Bytes, u64),
    value: &Bytes,
) -> anyhow::Result<()> {
    let mut wbuf = BytesMut::with_capacity(WRITE_BATCH as usize * (value.len() + 64));
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut number = BytesMut::new();
    loop {
        let mut batch = 0;
        for i in ids.by_ref().take(WRITE_BATCH as usize) {
            let (key, deadline) = key(i);
            number.clear();
            resp::put_decimal(&mut number, deadline);
            resp::encode_command(&[b"SET", &key, value, b"PXAT", &number], &mut wbuf);
            batch += 1;
        }
        if batch == 0 {
            return Ok(());
        }
        stream.write_all(&wbuf).await.context("writing keys")?;
        wbuf.clear();
        while batch > 0 {
            match resp::decode_reply(&mut rbuf)? {
                Some(RespReply::Error) => bail!("the server refused a SET … PXAT"),
                Some(_) => batch -= 1,
                None => read_some(stream, &mut rbuf).await?,
            }
        }
    }
}

/// What the subscriber saw.
struct Received {
    lateness: Histogram<u64>,
    distinct: u64,
    duplicates: u64,
    early: u64,
    disconnected: bool,
}

/// Reads `expired` events of run `run_id` until all `n` arrived, the server closes the
/// connection, or `give_up`.
async fn receive(
    mut sub: Stream,
    mut rbuf: BytesMut,
    run_id: u64,
    n: u64,
    give_up: Instant,
) -> anyhow::Result<Received> {
    let mut received = Received {
        lateness: Histogram::new_with_bounds(1, MAX_LATENESS_US, 3).expect("valid bounds"),
        distinct: 0,
        duplicates: 0,
        early: 0,
        disconnected: false,
    };
    let mut seen = vec![false; n as usize];
    let mut strings = Vec::with_capacity(3);
    // Whatever followed the subscription's confirmation in its read is decoded first.
    let mut now_us = unix_micros();
    loop {
        while let Some(reply) = resp::decode_strings(&mut rbuf, &mut strings)? {
            let event = matches!(reply, RespReply::Array(3) | RespReply::Push(3))
                && strings.len() == 3
                && strings[0] == b"message"[..];
            // Events of other runs (or other keys) are not this run's business.
            let ours = event.then(|| parse_key(run_id, &strings[2])).flatten();
            strings.clear();
            let Some((deadline, i)) = ours else { continue };
            let Some(seen) = seen.get_mut(i as usize) else {
                continue;
            };
            if std::mem::replace(seen, true) {
                received.duplicates += 1;
                continue;
            }
            received.distinct += 1;
            let lateness = now_us as i64 - (deadline * 1000) as i64;
            if lateness < 0 {
                received.early += 1;
            }
            received.lateness.saturating_record(lateness.max(0) as u64);
        }
        if received.distinct == n {
            return Ok(received);
        }
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        match tokio::time::timeout_at(give_up, sub.read_buf(&mut rbuf)).await {
            Err(_) => return Ok(received),
            Ok(Ok(0)) => {
                received.disconnected = true;
                return Ok(received);
            }
            Ok(read) => {
                read.context("reading events")?;
            }
        }
        // One clock read per read: everything it delivered arrived together.
        now_us = unix_micros();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_deadline_and_run() {
        let key = key_of(0xabc, 1_700_000_000_123, 42);
        assert_eq!(&key[..], b"exp:abc:1700000000123:42");
        assert_eq!(parse_key(0xabc, &key), Some((1_700_000_000_123, 42)));
        assert_eq!(parse_key(0xabd, &key), None);
        assert_eq!(parse_key(0xabc, b"other:1:2"), None);
        assert_eq!(parse_key(0xabc, b"exp:abc:x:2"), None);
    }

    #[test]
    fn deadlines_cover_the_window_evenly() {
        let n = 200_000;
        assert_eq!(deadline_of(1000, 2000, 0, n), 1000);
        assert_eq!(deadline_of(1000, 2000, n / 2, n), 2000);
        assert_eq!(deadline_of(1000, 2000, n - 1, n), 2999);
    }
}
