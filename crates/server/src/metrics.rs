//! Prometheus metrics: [`render`] builds the OpenMetrics text that the HTTP listener serves
//! at `/metrics`.
//!
//! **Collect on scrape.** The server already counts everything in relaxed atomics (`stats`,
//! the journal's, the stores', the session layer's); a scrape reads them into a fresh
//! `prometheus-client` [`Registry`] and encodes it. Nothing on a request's path knows that
//! Prometheus exists: keeping prometheus-client's own `Counter`s up to date instead would mean
//! a second atomic add beside each existing one, plus label lookups (`Family`'s lock) for the
//! per-command counts. A scrape costs one walk of every shard (items per database) and of
//! the command table, which is cheap at Prometheus's intervals. (prometheus-client's
//! `Collector` API would do the same reading from inside the registry; building the registry
//! per scrape needs no `'static` handle on `Shared` and keeps it one plain function.)
//!
//! Names follow the stock exporters (`memcached_exporter`, `redis_exporter`) with the
//! `sessiond_` prefix; `docs/metrics.md` lists them. Counters come from counters that
//! `stats reset` / `CONFIG RESETSTAT` zero (hits, misses, memcached's per-command outcomes)
//! reset with them, which Prometheus's `rate` treats as a counter reset; the rest are
//! never reset.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use sessiond_store::HistogramSnapshot;

use crate::exec::Shared;
use crate::exec::resp::commands::COMMANDS;
use crate::stats::{LISTENERS, MEMCACHE_COMMANDS};

/// A metric's label pairs.
type Labels = Vec<(&'static str, String)>;

/// One sample's value.
#[derive(Debug)]
enum Value {
    Counter(u64),
    Gauge(i64),
    /// Non-cumulative bucket counts with their upper bounds (the last is +Inf), the sum.
    Histogram(Vec<(f64, u64)>, f64),
}

/// A metric read at scrape time: its samples, one per label set.
#[derive(Debug)]
struct Snapshot {
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

fn encode_value(value: &Value, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
    match value {
        Value::Counter(v) => encoder.encode_counter::<NoLabelSet, _, u64>(v, None),
        Value::Gauge(v) => encoder.encode_gauge(v),
        Value::Histogram(buckets, sum) => {
            let count = buckets.iter().map(|(_, c)| c).sum();
            encoder.encode_histogram::<NoLabelSet>(*sum, count, buckets, None)
        }
    }
}

impl EncodeMetric for Snapshot {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        // A metric without labels has exactly one sample.
        if let [(labels, value)] = self.samples.as_slice()
            && labels.is_empty()
        {
            return encode_value(value, encoder);
        }
        for (labels, value) in &self.samples {
            encode_value(value, encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

/// The registry being filled, with shorthands for the three kinds.
struct Builder(Registry);

impl Builder {
    fn add(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        kind: MetricType,
        samples: Vec<(Labels, Value)>,
    ) {
        if samples.is_empty() {
            return;
        }
        let metric = Snapshot { kind, samples };
        match unit {
            None => self.0.register(name, help, metric),
            Some(unit) => self.0.register_with_unit(name, help, unit, metric),
        }
    }

    fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) {
        let samples = samples
            .into_iter()
            .map(|(l, v)| (l, Value::Counter(v)))
            .collect();
        self.add(name, help, None, MetricType::Counter, samples);
    }

    fn counter1(&mut self, name: &str, help: &str, value: u64) {
        self.counter(name, help, vec![(Vec::new(), value)]);
    }

    fn gauge(&mut self, name: &str, help: &str, unit: Option<Unit>, samples: Vec<(Labels, i64)>) {
        let samples = samples
            .into_iter()
            .map(|(l, v)| (l, Value::Gauge(v)))
            .collect();
        self.add(name, help, unit, MetricType::Gauge, samples);
    }

    fn gauge1(&mut self, name: &str, help: &str, unit: Option<Unit>, value: i64) {
        self.gauge(name, help, unit, vec![(Vec::new(), value)]);
    }

    /// A histogram in seconds from one recorded in `per_second`ths of a second.
    fn histogram(&mut self, name: &str, help: &str, snapshot: &HistogramSnapshot, per_second: f64) {
        let mut buckets: Vec<(f64, u64)> = snapshot
            .bounds
            .iter()
            .map(|&b| b as f64 / per_second)
            .chain(std::iter::once(f64::INFINITY))
            .zip(snapshot.counts.iter().copied())
            .collect();
        buckets.truncate(snapshot.bounds.len() + 1);
        let value = Value::Histogram(buckets, snapshot.sum as f64 / per_second);
        self.add(
            name,
            help,
            Some(Unit::Seconds),
            MetricType::Histogram,
            vec![(Vec::new(), value)],
        );
    }
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn gauge_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|&(k, v)| (k, v.to_string())).collect()
}

/// The metrics as OpenMetrics text (ending with `# EOF`), read from the server's counters.
pub(crate) fn render(shared: &Shared) -> String {
    let mut b = Builder(Registry::with_prefix("sessiond"));
    let stats = &shared.stats;
    let more = &stats.more;

    // Connections, per listener.
    let per_listener = |get: fn(&crate::stats::ListenerStats) -> u64| -> Vec<(Labels, u64)> {
        LISTENERS
            .iter()
            .zip(more.listeners.iter())
            .map(|(&(listener, protocol), s)| {
                (
                    labels([("listener", listener), ("protocol", protocol)]),
                    get(s),
                )
            })
            .collect()
    };
    let current = per_listener(|s| load(&s.current))
        .into_iter()
        .map(|(l, v)| (l, gauge_of(v)))
        .collect();
    b.gauge(
        "current_connections",
        "Connections open now, per listener",
        None,
        current,
    );
    b.counter(
        "connections",
        "Connections accepted, per listener",
        per_listener(|s| load(&s.accepted)),
    );
    b.counter(
        "rejected_connections",
        "Connections refused because the listener's --max-connections was reached",
        per_listener(|s| load(&s.rejected)),
    );
    b.gauge1(
        "max_connections",
        "The connection limit of each listener (--max-connections)",
        None,
        gauge_of(shared.config.max_connections as u64),
    );
    let mut errors = Vec::new();
    for (&(listener, protocol), s) in LISTENERS.iter().zip(more.listeners.iter()) {
        for (kind, value) in [
            ("accept", load(&s.accept_errors)),
            ("rejected", load(&s.rejected)),
            ("tls_handshake", load(&s.tls_handshake_errors)),
        ] {
            errors.push((
                labels([
                    ("listener", listener),
                    ("protocol", protocol),
                    ("kind", kind),
                ]),
                value,
            ));
        }
    }
    b.counter(
        "listener_errors",
        "Connections a listener failed: accept errors, refusals at the limit, failed TLS handshakes",
        errors,
    );
    let mut handshakes = Vec::new();
    for (&(listener, protocol), s) in LISTENERS.iter().zip(more.listeners.iter()) {
        if !listener.ends_with("_tls") {
            continue;
        }
        for (result, value) in [
            ("ok", load(&s.tls_handshakes)),
            ("failed", load(&s.tls_handshake_errors)),
        ] {
            handshakes.push((
                labels([
                    ("listener", listener),
                    ("protocol", protocol),
                    ("result", result),
                ]),
                value,
            ));
        }
    }
    b.counter(
        "tls_handshakes",
        "TLS handshakes, completed (ok) or failed or timed out (failed), per TLS listener",
        handshakes,
    );
    b.counter(
        "protocol_errors",
        "Requests answered with a protocol error (or refused as HTTP), per protocol",
        vec![
            (
                labels([("protocol", "memcache")]),
                load(&more.memcache_protocol_errors),
            ),
            (
                labels([("protocol", "resp")]),
                load(&more.resp_protocol_errors),
            ),
        ],
    );
    b.counter(
        "auth_attempts",
        "Login attempts, both protocols",
        vec![(Vec::new(), load(&stats.auth_cmds))],
    );
    b.counter1(
        "auth_failures",
        "Failed login attempts, both protocols",
        load(&stats.auth_errors),
    );

    // Commands.
    let mut commands = Vec::new();
    for (i, name) in MEMCACHE_COMMANDS.iter().enumerate() {
        let n = load(&more.memcache_commands[i]);
        if n > 0 {
            commands.push((labels([("protocol", "memcache"), ("command", name)]), n));
        }
    }
    let mut failed = Vec::new();
    for (i, spec) in COMMANDS.iter().enumerate() {
        let n = more.resp_commands.get(i);
        if n > 0 {
            commands.push((labels([("protocol", "resp"), ("command", spec.name)]), n));
        }
        let f = more.resp_failed.get(i);
        if f > 0 {
            failed.push((labels([("protocol", "resp"), ("command", spec.name)]), f));
        }
    }
    b.counter(
        "commands",
        "Commands run, per protocol and command (memcached: after login; RESP: those that passed the checks, EXEC's included)",
        commands,
    );
    b.counter(
        "commands_failed",
        "RESP commands whose reply was an error, per command",
        failed,
    );
    b.counter1(
        "commands_processed",
        "RESP requests received, refused ones included (INFO's total_commands_processed)",
        load(&stats.commands_processed),
    );
    let outcomes: [(&str, &str, &std::sync::atomic::AtomicU64); 16] = [
        ("get", "hit", &stats.get_hits),
        ("get", "miss", &stats.get_misses),
        ("delete", "hit", &stats.delete_hits),
        ("delete", "miss", &stats.delete_misses),
        ("incr", "hit", &stats.incr_hits),
        ("incr", "miss", &stats.incr_misses),
        ("decr", "hit", &stats.decr_hits),
        ("decr", "miss", &stats.decr_misses),
        ("cas", "hit", &stats.cas_hits),
        ("cas", "miss", &stats.cas_misses),
        ("cas", "badval", &stats.cas_badval),
        ("touch", "hit", &stats.touch_hits),
        ("touch", "miss", &stats.touch_misses),
        ("set", "hit", &stats.cmd_set),
        ("flush", "hit", &stats.cmd_flush),
        ("auth", "hit", &stats.auth_cmds),
    ];
    b.counter(
        "memcache_commands",
        "memcached commands by outcome (memcached_exporter's memcached_commands_total); get counts keys",
        outcomes
            .iter()
            .map(|&(command, status, c)| {
                (
                    labels([("command", command), ("status", status)]),
                    load(c),
                )
            })
            .collect(),
    );
    b.counter(
        "keyspace_hits",
        "Keys found by reads, per protocol (memcached: get-family keys)",
        vec![
            (labels([("protocol", "memcache")]), load(&stats.get_hits)),
            (labels([("protocol", "resp")]), load(&stats.keyspace_hits)),
        ],
    );
    b.counter(
        "keyspace_misses",
        "Keys not found by reads, per protocol (memcached: get-family keys)",
        vec![
            (labels([("protocol", "memcache")]), load(&stats.get_misses)),
            (labels([("protocol", "resp")]), load(&stats.keyspace_misses)),
        ],
    );

    // Memory and items.
    let budget = shared.store.budget();
    let limit = budget.limit();
    b.gauge1(
        "memory_used",
        "Bytes charged to the memory budget (items, collections, revocations, the session index)",
        Some(Unit::Bytes),
        gauge_of(budget.used()),
    );
    b.gauge1(
        "memory_limit",
        "The memory budget (--max-memory); 0 when unlimited",
        Some(Unit::Bytes),
        if limit == u64::MAX {
            0
        } else {
            gauge_of(limit)
        },
    );
    b.counter1(
        "out_of_memory_refusals",
        "Writes refused because they did not fit the memory budget (nothing is evicted)",
        budget.out_of_memory(),
    );
    let mut items = Vec::new();
    let mut written = Vec::new();
    let mut expired = 0;
    let mut reclaimed = 0;
    let mut stream_copies = 0;
    let mut lateness: Option<HistogramSnapshot> = None;
    for (db, store) in shared.databases.iter().enumerate() {
        let s = store.stats();
        let db = format!("db{db}");
        expired += s.expired;
        reclaimed += s.reclaimed_by_wheel;
        stream_copies += s.stream_copies;
        if s.items > 0 || db == "db0" {
            items.push((vec![("db", db.clone())], gauge_of(s.items)));
        }
        if s.total_items > 0 || db == "db0" {
            written.push((vec![("db", db)], s.total_items));
        }
        let late = store.expiry_lateness();
        match &mut lateness {
            None => lateness = Some(late),
            Some(sum) => {
                for (total, n) in sum.counts.iter_mut().zip(late.counts) {
                    *total += n;
                }
                sum.sum += late.sum;
            }
        }
    }
    b.gauge(
        "items",
        "Items held per database, including expired ones not yet reclaimed (database 0 is memcached's)",
        None,
        items,
    );
    b.counter(
        "items_written",
        "Items ever written, per database (memcached_exporter's memcached_items_total)",
        written,
    );
    b.counter1(
        "stream_copies",
        "Stream changes that first copied the whole stream because a reader still held it",
        stream_copies,
    );

    // Expiry.
    b.counter1(
        "expired_keys",
        "Items removed because their deadline passed (found by a read or reclaimed by the sweep)",
        expired,
    );
    b.counter1(
        "expired_keys_reclaimed",
        "Of those, items the sweep reclaimed without anyone reading them",
        reclaimed,
    );
    if let Some(lateness) = &lateness {
        b.histogram(
            "expiry_lateness",
            "How long after its deadline the sweep reclaimed each item",
            lateness,
            1000.0,
        );
    }

    // Journal.
    if let Some(journal) = &shared.journal {
        let js = &journal.stats;
        b.gauge1(
            "journal_segment",
            "Bytes in the journal's segments written since the last rewrite",
            Some(Unit::Bytes),
            gauge_of(load(&js.segment_bytes)),
        );
        b.counter1(
            "journal_records",
            "Records appended to the journal",
            load(&js.records),
        );
        b.counter1("journal_fsyncs", "fsyncs of the journal.", load(&js.fsyncs));
        b.histogram(
            "journal_fsync_duration",
            "How long each fsync of the journal took",
            &js.fsync_times.0.snapshot(),
            1_000_000.0,
        );
        b.counter1(
            "journal_rewrites",
            "Completed journal rewrites",
            load(&js.rewrites),
        );
        b.gauge1(
            "journal_rewrite_in_progress",
            "1 while a journal rewrite runs",
            None,
            i64::from(js.rewrite_running.load(Ordering::Relaxed)),
        );
        b.gauge1(
            "journal_poisoned",
            "1 once a journal write or fsync failed: writes are refused until a restart",
            None,
            i64::from(journal.is_poisoned()),
        );
    }

    // Sessions.
    if let Some(sessions) = &shared.sessions {
        let mut online = Vec::new();
        let mut users = Vec::new();
        for (i, family) in sessions.families().iter().enumerate() {
            let counts = sessions.counts(Some(i as u16));
            let family = vec![("family", family.name.to_string())];
            online.push((family.clone(), gauge_of(counts.sessions)));
            users.push((family, gauge_of(counts.users)));
        }
        b.gauge("sessions", "Sessions held, per family", None, online);
        b.gauge(
            "session_users",
            "Users with at least one session, per family",
            None,
            users,
        );
        b.gauge1(
            "session_index",
            "Bytes the session index is charged to the memory budget",
            Some(Unit::Bytes),
            gauge_of(sessions.bytes()),
        );
        let st = &sessions.stats;
        b.counter1(
            "session_revocations",
            "Sessions revoked, by an operator or the per-user limit",
            load(&st.revoked),
        );
        b.counter1(
            "session_revocations_by_limit",
            "Of those, sessions revoked by the per-user limit (--session-max-per-user)",
            load(&st.revoked_by_limit),
        );
        b.counter1(
            "sessions_undecodable",
            "Session writes whose value could not be decoded to find the user",
            load(&st.undecodable),
        );
    }

    // Scripts.
    b.counter1(
        "script_kills",
        "Scripts aborted by --script-time-limit",
        load(&more.script_kills),
    );
    b.counter1(
        "scripts_killed_by_user",
        "Scripts ended by SCRIPT KILL",
        load(&more.scripts_killed_by_user),
    );
    b.counter1(
        "busy_replies",
        "RESP commands answered BUSY because a script ran past busy-reply-threshold",
        load(&more.busy_replies),
    );

    let mut out = String::new();
    // Writing to a String cannot fail; the encoder fails only on a broken writer.
    let _ = prometheus_client::encoding::text::encode(&mut out, &b.0);
    out
}

#[cfg(test)]
mod tests;
