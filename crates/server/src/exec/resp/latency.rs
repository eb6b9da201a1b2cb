//! `LATENCY`: Redis's latency monitor, answered as a Redis whose monitor has recorded no
//! event (`latency-monitor-threshold 0`, Redis's default).
//!
//! sessiond keeps no latency samples: its latencies are measured from outside (the load
//! generator, `docs/benchmarks.md`) and its counters are in `INFO` and `/metrics`. The
//! command exists so that tools which ask for it (the Prometheus Redis exporter asks for
//! `LATENCY LATEST` and, from Redis 7, `LATENCY HISTOGRAM` at every scrape) get an empty
//! answer instead of an unknown-command error in their logs:
//!
//! - `LATEST`: no events, an empty array; `HISTORY event`: no samples, an empty array;
//! - `RESET [event …]`: nothing to reset, `0`;
//! - `HISTOGRAM [command …]`: no histograms, an empty map;
//! - `GRAPH event`: Redis's error for an event without samples;
//! - `DOCTOR`: a short text saying the above; `HELP`: the subcommands.
//!
//! Arguments are bounded by the request decoder; nothing here allocates per argument
//! beyond an error message quoting at most 128 bytes of one.

use bytes::Bytes;
use sessiond_proto_resp::Reply;

use super::args::{Args, Handled};
use super::{Ctx, error, is, truncated, unknown_subcommand};

/// `LATENCY HELP`, one line each.
const HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    A report on the latency events of this server (sessiond records none).",
    "GRAPH <event>",
    "    An ASCII graph of an event's samples (sessiond records none: an error).",
    "HISTORY <event>",
    "    The samples of an event, as [time, latency] pairs (always empty here).",
    "LATEST",
    "    The latest sample of every event (always empty here).",
    "RESET [<event> ...]",
    "    Forgets the samples of the events, or of all; answers how many (always 0 here).",
    "HISTOGRAM [<command> ...]",
    "    Per-command latency histograms (none here: an empty map).",
    "HELP",
    "    Prints this help.",
];

/// The `DOCTOR` report.
const DOCTOR: &str = "sessiond does not run Redis's latency monitor, so no latency event \
                      was recorded and there is nothing to diagnose here. Its request \
                      counters are in INFO and on the HTTP listener's /metrics.\n";

/// `LATENCY subcommand [args …]`.
pub fn latency(_: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    let rest = args.rest();
    let wrong_arity = || {
        error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try LATENCY HELP.",
            truncated(sub, 128)
        ))
    };
    let reply = if is(sub, "latest") {
        if !rest.is_empty() {
            return Err(wrong_arity());
        }
        Reply::Array(Vec::new())
    } else if is(sub, "history") {
        if rest.len() != 1 {
            return Err(wrong_arity());
        }
        Reply::Array(Vec::new())
    } else if is(sub, "reset") {
        Reply::Integer(0)
    } else if is(sub, "histogram") {
        Reply::Map(Vec::new())
    } else if is(sub, "graph") {
        let [event] = rest else {
            return Err(wrong_arity());
        };
        return Err(error(format!(
            "ERR No samples available for event '{}'",
            truncated(event, 128)
        )));
    } else if is(sub, "doctor") {
        if !rest.is_empty() {
            return Err(wrong_arity());
        }
        Reply::Verbatim {
            format: *b"txt",
            text: Bytes::from_static(DOCTOR.as_bytes()),
        }
    } else if is(sub, "help") {
        if !rest.is_empty() {
            return Err(wrong_arity());
        }
        Reply::Array(
            HELP.iter()
                .map(|line| Reply::Simple(Bytes::from_static(line.as_bytes())))
                .collect(),
        )
    } else {
        return Err(unknown_subcommand("latency", sub));
    };
    Ok(reply.into())
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use sessiond_proto_resp::{Protocol, encode};

    use crate::config::Config;
    use crate::exec::Shared;
    use crate::exec::resp::{Answer, Session, execute};

    const NOW: u64 = 1_800_000_000_000;

    /// The encoded reply to `words` on a connection speaking `protocol`.
    fn wire(shared: &Shared, protocol: Protocol, words: &[&[u8]]) -> String {
        let mut session = Session::new(shared, String::new(), String::new(), NOW);
        session.protocol = protocol;
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
        let Answer::One(reply) = execute(shared, &mut session, &args, NOW).answer else {
            panic!("one reply expected")
        };
        let mut out = BytesMut::new();
        encode(&reply, protocol, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn latency_answers_as_a_redis_that_recorded_nothing() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let r2 = |words: &[&[u8]]| wire(&shared, Protocol::Resp2, words);
        let r3 = |words: &[&[u8]]| wire(&shared, Protocol::Resp3, words);
        assert_eq!(r2(&[b"LATENCY", b"LATEST"]), "*0\r\n");
        assert_eq!(r2(&[b"latency", b"history", b"command"]), "*0\r\n");
        assert_eq!(r2(&[b"LATENCY", b"RESET"]), ":0\r\n");
        assert_eq!(r2(&[b"LATENCY", b"RESET", b"command", b"fork"]), ":0\r\n");
        assert_eq!(r2(&[b"LATENCY", b"HISTOGRAM"]), "*0\r\n");
        assert_eq!(r3(&[b"LATENCY", b"HISTOGRAM", b"get", b"set"]), "%0\r\n");
        assert_eq!(
            r2(&[b"LATENCY", b"GRAPH", b"command"]),
            "-ERR No samples available for event 'command'\r\n"
        );
        let doctor = r2(&[b"LATENCY", b"DOCTOR"]);
        assert!(doctor.starts_with('$') && doctor.contains("no latency event"));
        let doctor = r3(&[b"LATENCY", b"DOCTOR"]);
        assert!(
            doctor.starts_with('=') && doctor.contains("\r\ntxt:sessiond"),
            "{doctor}"
        );
        let help = r2(&[b"LATENCY", b"HELP"]);
        assert!(help.starts_with(&format!("*{}\r\n+LATENCY", super::HELP.len())));
        for sub in ["DOCTOR", "LATEST", "HISTORY", "RESET", "HISTOGRAM", "GRAPH"] {
            assert!(help.contains(&format!("\r\n+{sub}")), "{sub} in {help}");
        }
    }

    #[test]
    fn latency_refuses_bad_arguments_with_errors() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let r2 = |words: &[&[u8]]| wire(&shared, Protocol::Resp2, words);
        assert_eq!(
            r2(&[b"LATENCY"]),
            "-ERR wrong number of arguments for 'latency' command\r\n"
        );
        for words in [
            &[&b"LATENCY"[..], b"LATEST", b"x"][..],
            &[b"LATENCY", b"HISTORY"],
            &[b"LATENCY", b"HISTORY", b"a", b"b"],
            &[b"LATENCY", b"GRAPH"],
            &[b"LATENCY", b"DOCTOR", b"x"],
            &[b"LATENCY", b"HELP", b"x"],
        ] {
            let reply = r2(words);
            assert!(
                reply.starts_with("-ERR unknown subcommand or wrong number of arguments for '"),
                "{words:?}: {reply}"
            );
        }
        assert_eq!(
            r2(&[b"LATENCY", b"NOPE"]),
            "-ERR unknown subcommand 'NOPE'. Try LATENCY HELP.\r\n"
        );
        // A long or binary argument is quoted cut to 128 bytes.
        let long = vec![b'\xff'; 100_000];
        let reply = r2(&[b"LATENCY", b"GRAPH", &long]);
        assert!(reply.starts_with("-ERR No samples") && reply.len() < 1_000);
        let reply = r2(&[b"LATENCY", &long]);
        assert!(reply.starts_with("-ERR unknown subcommand") && reply.len() < 1_000);
        let reply = r2(&[b"LATENCY", b"GRAPH", b"a\r\n+OK"]);
        assert_eq!(reply.matches("\r\n").count(), 1, "{reply:?}");
        // Still serving.
        assert_eq!(r2(&[b"PING"]), "+PONG\r\n");
    }
}
