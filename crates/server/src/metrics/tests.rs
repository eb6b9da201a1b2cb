//! `render` after a few operations of both protocols: the names, types and labels, that the
//! counters moved, and that the text is valid OpenMetrics (every sample under a HELP and a
//! TYPE of its family, `# EOF` last).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sessiond_proto_memcache::{Command, StoreMode};

use super::render;
use crate::config::Config;
use crate::exec::Shared;
use crate::exec::resp::{Session, execute};

const NOW: u64 = 1_800_000_000_000;

fn resp(shared: &Shared, session: &mut Session, words: &[&str]) {
    let args: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    execute(shared, session, &args, NOW);
    shared.settle_sessions(NOW);
}

fn mc(shared: &Shared, command: Command, now: u64) {
    crate::exec::memcache::execute(shared, &command, now);
    shared.settle_sessions(now);
}

fn mc_set(key: &str, value: &str, exptime: i64) -> Command {
    Command::Store {
        mode: StoreMode::Set,
        key: Bytes::copy_from_slice(key.as_bytes()),
        flags: 0,
        exptime,
        value: Bytes::copy_from_slice(value.as_bytes()),
        cas: 0,
    }
}

fn mc_get(key: &str) -> Command {
    Command::Get {
        keys: vec![Bytes::copy_from_slice(key.as_bytes())],
        touch: None,
    }
}

/// One parsed sample: its metric family, labels and value.
#[derive(Debug)]
struct Sample {
    family: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses OpenMetrics text as a scraper would, checking its structure on the way: every
/// family has HELP and TYPE before its samples, a sample's name is its family's name with a
/// suffix the type allows, labels are well formed, `# EOF` ends the text. Returns the types
/// by family and the samples by name.
fn parse(text: &str) -> (HashMap<String, String>, Vec<(String, Sample)>) {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end: {text}");
    let mut types = HashMap::new();
    let mut helps = HashMap::new();
    let mut samples = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("HELP text");
            assert!(
                helps.insert(name.to_string(), ()).is_none(),
                "two HELPs for {name}"
            );
            current = Some(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE kind");
            assert_eq!(
                current.as_deref(),
                Some(name),
                "TYPE without its HELP: {line}"
            );
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "type {kind}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# UNIT ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let family = current.clone().expect("a sample before any HELP");
        let kind = types.get(&family).expect("a sample before its TYPE");
        let (name_labels, value) = line.rsplit_once(' ').expect("sample value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match name_labels.split_once('{') {
            None => (name_labels.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "label name {k}"
                    );
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        let suffix = name.strip_prefix(&family).unwrap_or_else(|| {
            panic!("sample {name} outside its family {family}");
        });
        let allowed: &[&str] = match kind.as_str() {
            "counter" => &["_total"],
            "gauge" => &[""],
            _ => &["_bucket", "_sum", "_count"],
        };
        assert!(allowed.contains(&suffix), "{name} in a {kind} family");
        samples.push((
            name,
            Sample {
                family,
                labels,
                value,
            },
        ));
    }
    (types, samples)
}

fn value(samples: &[(String, Sample)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, s)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, s)| s.value)
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[test]
fn render_reports_both_protocols_memory_expiry_and_sessions_as_valid_openmetrics() {
    let config = Config {
        max_memory: 64 << 20,
        ..Config::default()
    };
    let shared = Shared::unjournaled(config, NOW);
    let mut session = Session::new(&shared, String::new(), String::new(), NOW);

    // memcached: two sessions of one PHP user, a hit and a miss, one item that expires.
    mc(&shared, mc_set("memc.sess.key.a", "user_id|i:7;", 0), NOW);
    mc(&shared, mc_set("memc.sess.key.b", "user_id|i:7;", 0), NOW);
    mc(&shared, mc_set("short", "x", 1), NOW);
    mc(&shared, mc_get("memc.sess.key.a"), NOW);
    mc(&shared, mc_get("nothing"), NOW);
    // RESP: a write, a hit, a miss, a failing command.
    resp(&shared, &mut session, &["SET", "k", "v"]);
    resp(&shared, &mut session, &["GET", "k"]);
    resp(&shared, &mut session, &["GET", "missing"]);
    resp(&shared, &mut session, &["INCR", "k"]);
    // The sweep reclaims `short` 30 ms late.
    let swept = shared.databases[0].expire_due(NOW + 1030);
    assert_eq!(swept, 1);

    let text = render(&shared);
    let (types, samples) = parse(&text);

    for (family, kind) in [
        ("sessiond_current_connections", "gauge"),
        ("sessiond_connections", "counter"),
        ("sessiond_rejected_connections", "counter"),
        ("sessiond_listener_errors", "counter"),
        ("sessiond_tls_handshakes", "counter"),
        ("sessiond_protocol_errors", "counter"),
        ("sessiond_commands", "counter"),
        ("sessiond_commands_failed", "counter"),
        ("sessiond_memcache_commands", "counter"),
        ("sessiond_keyspace_hits", "counter"),
        ("sessiond_keyspace_misses", "counter"),
        ("sessiond_memory_used_bytes", "gauge"),
        ("sessiond_memory_limit_bytes", "gauge"),
        ("sessiond_out_of_memory_refusals", "counter"),
        ("sessiond_items", "gauge"),
        ("sessiond_items_written", "counter"),
        ("sessiond_stream_copies", "counter"),
        ("sessiond_expired_keys", "counter"),
        ("sessiond_expiry_lateness_seconds", "histogram"),
        ("sessiond_sessions", "gauge"),
        ("sessiond_session_users", "gauge"),
        ("sessiond_session_revocations", "counter"),
        ("sessiond_sessions_undecodable", "counter"),
        ("sessiond_script_kills", "counter"),
        ("sessiond_scripts_killed_by_user", "counter"),
        ("sessiond_busy_replies", "counter"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family} in\n{text}"
        );
    }
    // No journal in this server: no journal families.
    assert!(!types.contains_key("sessiond_journal_poisoned"));

    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(
        v(
            "sessiond_commands_total",
            &[("protocol", "memcache"), ("command", "set")]
        ),
        3.0
    );
    assert_eq!(
        v(
            "sessiond_commands_total",
            &[("protocol", "memcache"), ("command", "get")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "sessiond_commands_total",
            &[("protocol", "resp"), ("command", "get")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "sessiond_commands_failed_total",
            &[("protocol", "resp"), ("command", "incr")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "sessiond_memcache_commands_total",
            &[("command", "get"), ("status", "hit")]
        ),
        1.0
    );
    assert_eq!(
        v("sessiond_keyspace_hits_total", &[("protocol", "resp")]),
        1.0
    );
    assert_eq!(
        v("sessiond_keyspace_misses_total", &[("protocol", "resp")]),
        1.0
    );
    assert_eq!(
        v(
            "sessiond_keyspace_misses_total",
            &[("protocol", "memcache")]
        ),
        1.0
    );
    assert_eq!(v("sessiond_items", &[("db", "db0")]), 3.0);
    assert!(v("sessiond_memory_used_bytes", &[]) > 0.0);
    assert_eq!(v("sessiond_memory_limit_bytes", &[]), (64 << 20) as f64);
    assert_eq!(v("sessiond_expired_keys_total", &[]), 1.0);
    // Lateness: 30 ms falls in the 50 ms bucket, not the 20 ms one.
    assert_eq!(
        v("sessiond_expiry_lateness_seconds_bucket", &[("le", "0.02")]),
        0.0
    );
    assert_eq!(
        v("sessiond_expiry_lateness_seconds_bucket", &[("le", "0.05")]),
        1.0
    );
    assert_eq!(
        v("sessiond_expiry_lateness_seconds_bucket", &[("le", "+Inf")]),
        1.0
    );
    assert_eq!(v("sessiond_expiry_lateness_seconds_count", &[]), 1.0);
    assert!((v("sessiond_expiry_lateness_seconds_sum", &[]) - 0.03).abs() < 1e-9);
    assert_eq!(v("sessiond_sessions", &[("family", "php-memcached")]), 2.0);
    assert_eq!(
        v("sessiond_session_users", &[("family", "php-memcached")]),
        1.0
    );
    // Per-listener samples carry both labels.
    let connections: Vec<_> = samples
        .iter()
        .filter(|(n, _)| n == "sessiond_connections_total")
        .collect();
    assert_eq!(connections.len(), crate::stats::LISTENER_COUNT);
    for (_, s) in connections {
        assert_eq!(s.family, "sessiond_connections");
        assert!(s.labels.contains_key("listener") && s.labels.contains_key("protocol"));
    }
}

#[test]
fn histograms_are_cumulative_and_end_at_inf() {
    let shared = Shared::unjournaled(Config::default(), NOW);
    let text = render(&shared);
    let (_, samples) = parse(&text);
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(n, _)| n == "sessiond_expiry_lateness_seconds_bucket")
        .map(|(_, s)| s.value)
        .collect();
    assert_eq!(buckets.len(), sessiond_store::LATENESS_BOUNDS_MS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        samples
            .iter()
            .rfind(|(n, _)| n == "sessiond_expiry_lateness_seconds_bucket")
            .map(|(_, s)| s.labels["le"].clone()),
        Some("+Inf".to_string())
    );
}
