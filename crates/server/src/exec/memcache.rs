//! memcached commands as store operations.
//!
//! Both wire formats arrive here as the same [`Command`], so the semantics of every command
//! (memcached's exptime rule, CAS checks, counters, the never-evict memory policy) are
//! written once. The codec of the request's format encodes the returned [`Outcome`].
//!
//! [`execute_as`] puts authentication in front, as memcached does when it has users (its
//! `-S` SASL and `-Y` auth-file modes): a binary connection logs in with SASL PLAIN, a text
//! connection with a `set` whose data is `user password` (any key, flags and exptime); until
//! then every command but those answers memcached's authentication error. With no users
//! configured, SASL is an unknown command, as on a memcached without SASL, so a client
//! configured with credentials fails loudly instead of believing it is protected. Logged in,
//! `flush_all` and `journal rewrite` need the admin role.

use std::sync::atomic::Ordering;

use sessiond_proto_memcache::meta::{MetaOutcome, MetaStatus, MetaVerb};
use sessiond_proto_memcache::{ArithMode, Command, Exptime, Hit, Outcome, StatsGroup, StoreMode};
use sessiond_store::{
    Condition, CounterOutcome, DeadlineChange, Direction, Previous, RemoveOutcome, Side,
    StoreError, Write, WriteOutcome,
};

use super::auth::{Identity, SASL_MECHANISMS};
use super::resp::pubsub::{GENERIC, STRING};
use super::{RewriteRefusal, Shared};
use crate::stats::bump;

/// The version string sent to memcached clients. Clients parse `major.minor.patch` to decide
/// which commands a server supports, so it reads as a current memcached release, with
/// sessiond's own version after a dash (which those parsers stop at).
pub const MEMCACHE_VERSION: &str = concat!("1.6.21-sessiond-", env!("CARGO_PKG_VERSION"));

/// Resolves a memcached exptime to a store deadline. An already-expired time becomes `now`,
/// which the store treats as "born expired".
fn deadline(exptime: i64, now: u64) -> Option<u64> {
    match Exptime::resolve(exptime, now) {
        Exptime::Never => None,
        Exptime::AtMillis(at) => Some(at),
        Exptime::Expired => Some(now),
    }
}

/// Whether `command` changes the keyspace.
pub fn is_mutation(command: &Command) -> bool {
    match command {
        Command::Meta(meta) => match meta.verb {
            MetaVerb::Get => meta.flags.ttl.is_some() || meta.flags.vivify.is_some(),
            MetaVerb::Debug => false,
            MetaVerb::Set(_) | MetaVerb::Delete | MetaVerb::Arith(_) => true,
        },
        _ => matches!(
            command,
            Command::Store { .. }
                | Command::Delete { .. }
                | Command::Arith { .. }
                | Command::Touch { .. }
                | Command::FlushAll { .. }
                | Command::TooLarge { .. }
                | Command::Get { touch: Some(_), .. }
        ),
    }
}

/// Whether the reply `outcome` to `command` must wait until its journal record is
/// acknowledged under the fsync policy. TTL refreshes (touch, gat, `mg … T`) do not wait:
/// they ride in the next group. A vivifying `mg … N` writes an item, so it waits like a set,
/// and so does an `mg` that answers `W` (the recache right it hands out is journaled, so
/// that after a restart no second client is told it won).
pub fn needs_durable_ack(command: &Command, outcome: &Outcome) -> bool {
    match command {
        Command::Meta(meta) => match meta.verb {
            MetaVerb::Get => {
                let won =
                    matches!(outcome, Outcome::Meta(m) if m.item.as_ref().is_some_and(|i| i.won));
                meta.flags.vivify.is_some() || won
            }
            MetaVerb::Debug => false,
            MetaVerb::Set(_) | MetaVerb::Delete | MetaVerb::Arith(_) => true,
        },
        _ => matches!(
            command,
            Command::Store { .. }
                | Command::Delete { .. }
                | Command::Arith { .. }
                | Command::FlushAll { .. }
                | Command::TooLarge { .. }
        ),
    }
}

/// Whether `command` needs the admin role.
pub fn is_admin_only(command: &Command) -> bool {
    matches!(command, Command::FlushAll { .. } | Command::JournalRewrite)
}

/// Executes one command at `now` for a connection logged in as `user` (`None`: not yet),
/// which a successful login changes. `text` says which wire format the connection speaks:
/// only text logs in with a `set`. See the module docs.
pub fn execute_as(
    shared: &Shared,
    user: &mut Option<Identity>,
    text: bool,
    command: &Command,
    now: u64,
) -> Outcome {
    let users = &shared.users;
    match command {
        Command::SaslListMechs | Command::SaslAuth { .. } if !users.required() => {
            return Outcome::UnknownCommand;
        }
        Command::SaslListMechs => return Outcome::SaslMechanisms(SASL_MECHANISMS.into()),
        Command::SaslAuth {
            mechanism,
            data,
            step,
        } => {
            // PLAIN completes in one step, so a SASL_STEP never continues anything.
            let who = (!step && &mechanism[..] == b"PLAIN")
                .then(|| users.check_sasl_plain(data))
                .flatten();
            return login(shared, user, who);
        }
        _ => {}
    }
    let Some(identity) = user else {
        return match command {
            Command::Store {
                mode: StoreMode::Set,
                value,
                ..
            } if text => match users.check_text_token(value) {
                Ok(who) => login(shared, user, who),
                Err(reason) => Outcome::ClientError(reason),
            },
            // Too large for the pre-login limits: refused as such, and nothing removed (a
            // client that has not logged in changes nothing).
            Command::TooLarge { .. } => Outcome::TooLarge,
            // memcached lets VERSION through before SASL; QUIT only closes.
            Command::Version | Command::Quit if !text => execute(shared, command, now),
            Command::Quit => execute(shared, command, now),
            _ => Outcome::Unauthenticated,
        };
    };
    if is_admin_only(command) && !identity.is_admin() {
        return Outcome::NotPermitted;
    }
    match execute(shared, command, now) {
        // Binary STAT answers a bad `detail` subcommand "not found", as memcached does.
        Outcome::ClientError(_) if !text && matches!(command, Command::Stats(_)) => {
            Outcome::NotFound
        }
        outcome => outcome,
    }
}

/// Records a login attempt's result: `who` logs the connection in, `None` failed (and an
/// earlier login stays, as in memcached).
fn login(shared: &Shared, user: &mut Option<Identity>, who: Option<Identity>) -> Outcome {
    bump(&shared.stats.auth_cmds);
    match who {
        Some(who) => {
            *user = Some(who);
            Outcome::Authenticated
        }
        None => {
            bump(&shared.stats.auth_errors);
            Outcome::AuthFailed
        }
    }
}

/// Executes one command at `now` (Unix ms), and publishes the keyspace notifications of
/// the change it made.
pub fn execute(shared: &Shared, command: &Command, now: u64) -> Outcome {
    bump(&shared.stats.more.memcache_commands[command_index(command)]);
    let outcome = apply(shared, command, now);
    // With notifications off (the default) a write pays one atomic load, a read nothing.
    if is_mutation(command) && shared.resp.pubsub.flags() != 0 {
        notify(shared, command, &outcome, now);
    }
    outcome
}

/// The position of `command`'s kind in [`crate::stats::MEMCACHE_COMMANDS`].
pub fn command_index(command: &Command) -> usize {
    match command {
        Command::Get { touch: None, .. } => 0,
        Command::Get { touch: Some(_), .. } => 1,
        Command::Store { cas, .. } if *cas != 0 => 7,
        Command::Store { mode, .. } => match mode {
            StoreMode::Set => 2,
            StoreMode::Add => 3,
            StoreMode::Replace => 4,
            StoreMode::Append => 5,
            StoreMode::Prepend => 6,
        },
        Command::Delete { .. } => 8,
        Command::Arith { mode, .. } => match mode {
            ArithMode::Incr => 9,
            ArithMode::Decr => 10,
        },
        Command::Touch { .. } => 11,
        Command::FlushAll { .. } => 12,
        Command::Version => 13,
        Command::Verbosity => 14,
        Command::Stats(_) => 15,
        Command::Noop => 16,
        Command::JournalRewrite => 17,
        Command::Quit => 18,
        Command::SaslListMechs => 19,
        Command::SaslAuth { .. } => 20,
        Command::Unknown => 21,
        Command::TooLarge { .. } => 2,
        Command::Meta(meta) => match meta.verb {
            MetaVerb::Get => 22,
            MetaVerb::Set(_) => 23,
            MetaVerb::Delete => 24,
            MetaVerb::Arith(_) => 25,
            MetaVerb::Debug => 26,
        },
    }
}

/// Publishes, in database 0, the keyspace events Redis raises for the RESP command that
/// makes the same change as `command`, if `outcome` says the change was made (a refused
/// `add`, a `delete` miss raise nothing):
///
/// - `set`/`add`/`replace`/`cas`: `set` (`$`), then `expire` (`g`) with an exptime (as
///   `SET … EX`); with an exptime in the past, which leaves nothing alive, `del` (`g`).
/// - `append`: `append` (`$`); `prepend`, which Redis lacks: `prepend` (`$`).
/// - `incr`/`decr`: `incrby`/`decrby` (`$`).
/// - `delete`: `del` (`g`).
/// - `touch` and each hit of `gat`/`gats`: `expire` (`g`), `persist` (`g`) for exptime 0,
///   `del` (`g`) for an exptime in the past (as `EXPIRE`, `PERSIST` and `GETEX`).
/// - `flush_all`: none, as Redis's `FLUSHALL` raises none per key.
fn notify(shared: &Shared, command: &Command, outcome: &Outcome, now: u64) {
    let hub = &shared.resp.pubsub;
    let publish = |class, event, key: &[u8]| hub.notify(0, class, event, key);
    // A new deadline: `expire`, `persist`, or `del` when it is already past.
    let retimed = |exptime: i64, key: &[u8]| match deadline(exptime, now) {
        Some(at) if at <= now => publish(GENERIC, "del", key),
        Some(_) => publish(GENERIC, "expire", key),
        None => publish(GENERIC, "persist", key),
    };
    match (command, outcome) {
        (
            Command::Store {
                mode, key, exptime, ..
            },
            Outcome::Stored { .. },
        ) => match mode {
            StoreMode::Append => publish(STRING, "append", key),
            StoreMode::Prepend => publish(STRING, "prepend", key),
            StoreMode::Set | StoreMode::Add | StoreMode::Replace => match deadline(*exptime, now) {
                Some(at) if at <= now => publish(GENERIC, "del", key),
                at => {
                    publish(STRING, "set", key);
                    if at.is_some() {
                        publish(GENERIC, "expire", key);
                    }
                }
            },
        },
        (Command::Delete { key, .. }, Outcome::Deleted) => publish(GENERIC, "del", key),
        (Command::Meta(meta), Outcome::Meta(MetaOutcome { status, .. }))
            if *status == MetaStatus::Done =>
        {
            let key = &meta.key[..];
            let f = &meta.flags;
            match meta.verb {
                MetaVerb::Set(StoreMode::Append) => publish(STRING, "append", key),
                MetaVerb::Set(StoreMode::Prepend) => publish(STRING, "prepend", key),
                MetaVerb::Set(_) => match deadline(f.ttl.unwrap_or(0), now) {
                    Some(at) if at <= now => publish(GENERIC, "del", key),
                    at => {
                        publish(STRING, "set", key);
                        if at.is_some() {
                            publish(GENERIC, "expire", key);
                        }
                    }
                },
                MetaVerb::Delete if f.invalidate => {
                    if let Some(ttl) = f.ttl {
                        retimed(ttl, key);
                    }
                }
                MetaVerb::Delete => publish(GENERIC, "del", key),
                MetaVerb::Arith(ArithMode::Incr) => publish(STRING, "incrby", key),
                MetaVerb::Arith(ArithMode::Decr) => publish(STRING, "decrby", key),
                MetaVerb::Get => {
                    if let Some(ttl) = f.ttl {
                        retimed(ttl, key);
                    }
                }
                MetaVerb::Debug => {}
            }
        }
        (Command::Arith { mode, key, .. }, Outcome::Counter { .. }) => {
            let event = match mode {
                ArithMode::Incr => "incrby",
                ArithMode::Decr => "decrby",
            };
            publish(STRING, event, key);
        }
        (Command::Touch { key, exptime }, Outcome::Touched { .. }) => retimed(*exptime, key),
        (
            Command::Get {
                touch: Some(exptime),
                ..
            },
            Outcome::Values(hits),
        ) => {
            for hit in hits.iter().flatten() {
                retimed(*exptime, &hit.key);
            }
        }
        _ => {}
    }
}

/// Runs `command` against the store at `now`: the whole of [`execute`] but the
/// notifications.
fn apply(shared: &Shared, command: &Command, now: u64) -> Outcome {
    // The connection holds the script gate shared: no Lua script runs meanwhile.
    if is_mutation(command) && shared.writes_refused() {
        return Outcome::ServerError(super::JOURNAL_FAILED.to_string());
    }
    let store = &shared.store;
    let stats = &shared.stats;
    match command {
        Command::Get { keys, touch } => {
            let mut hits = Vec::with_capacity(keys.len());
            for key in keys {
                stats.cmd_get.fetch_add(1, Ordering::Relaxed);
                let item = match touch {
                    None => store.get_if_string(key, now),
                    Some(exptime) => {
                        bump(&stats.cmd_touch);
                        store.touch_if_string(key, deadline(*exptime, now), now)
                    }
                };
                let counters = match (&item, touch) {
                    (Some(_), None) => [&stats.get_hits, &stats.get_hits],
                    (None, None) => [&stats.get_misses, &stats.get_misses],
                    (Some(_), Some(_)) => [&stats.get_hits, &stats.touch_hits],
                    (None, Some(_)) => [&stats.get_misses, &stats.touch_misses],
                };
                bump(counters[0]);
                if touch.is_some() {
                    bump(counters[1]);
                }
                hits.push(item.map(|item| Hit {
                    key: key.clone(),
                    flags: item.flags,
                    cas: item.cas,
                    value: item.value,
                }));
            }
            Outcome::Values(hits)
        }
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas,
        } => {
            bump(&stats.cmd_set);
            let result = match mode {
                StoreMode::Append | StoreMode::Prepend => {
                    let side = if *mode == StoreMode::Append {
                        Side::Append
                    } else {
                        Side::Prepend
                    };
                    let max = shared.config.max_item_size;
                    store.extend_if_string(key, value, side, *cas, max, now)
                }
                StoreMode::Set | StoreMode::Add | StoreMode::Replace => {
                    let condition = match (mode, cas) {
                        (StoreMode::Add, _) => Condition::IfNoString,
                        (_, 0) if *mode == StoreMode::Set => Condition::Always,
                        (_, 0) => Condition::IfString,
                        (_, cas) => Condition::IfCas(*cas),
                    };
                    let how = Write {
                        condition,
                        flags: *flags,
                        deadline: DeadlineChange::Set(deadline(*exptime, now)),
                        previous: Previous::Ignore,
                    };
                    store.write(key, value, how, now).map(|w| w.outcome)
                }
            };
            if result == Err(StoreError::TooLarge) {
                // Counted in no CAS statistic, as when this was checked before the append.
                return Outcome::TooLarge;
            }
            if *cas != 0 {
                bump(match result {
                    Ok(WriteOutcome::Stored(_)) => &stats.cas_hits,
                    Ok(WriteOutcome::Exists) => &stats.cas_badval,
                    _ => &stats.cas_misses,
                });
            }
            match result {
                Ok(WriteOutcome::Stored(cas)) => Outcome::Stored { cas },
                Ok(WriteOutcome::NotStored) => Outcome::NotStored,
                Ok(WriteOutcome::Exists) => Outcome::Exists,
                Ok(WriteOutcome::NotFound) => Outcome::NotFound,
                Err(error) => refusal(error),
            }
        }
        Command::Delete { key, cas } => match store.remove_if_string(key, *cas, now) {
            RemoveOutcome::Removed => {
                bump(&stats.delete_hits);
                Outcome::Deleted
            }
            RemoveOutcome::NotFound => {
                bump(&stats.delete_misses);
                Outcome::NotFound
            }
            RemoveOutcome::Exists => Outcome::Exists,
        },
        Command::Arith {
            mode,
            key,
            delta,
            initial,
        } => {
            let initial = initial.map(|(value, exptime)| (value, deadline(exptime, now)));
            let (direction, hits, misses) = match mode {
                ArithMode::Incr => (Direction::Up, &stats.incr_hits, &stats.incr_misses),
                ArithMode::Decr => (Direction::Down, &stats.decr_hits, &stats.decr_misses),
            };
            match store.add_u64(key, direction, *delta, initial, now) {
                Ok(CounterOutcome::Value(value, cas)) => {
                    bump(hits);
                    Outcome::Counter { value, cas }
                }
                Ok(CounterOutcome::NotFound) => {
                    bump(misses);
                    Outcome::NotFound
                }
                Ok(CounterOutcome::NonNumeric) => Outcome::NonNumeric,
                Err(error) => refusal(error),
            }
        }
        Command::Touch { key, exptime } => {
            bump(&stats.cmd_touch);
            match store.touch_if_string(key, deadline(*exptime, now), now) {
                Some(item) => {
                    bump(&stats.touch_hits);
                    Outcome::Touched {
                        flags: item.flags,
                        cas: item.cas,
                    }
                }
                None => {
                    bump(&stats.touch_misses);
                    Outcome::NotFound
                }
            }
        }
        Command::FlushAll { delay } => {
            bump(&stats.cmd_flush);
            let at = if *delay == 0 {
                now
            } else {
                deadline(*delay, now).unwrap_or(now)
            };
            store.flush_all(at, now);
            Outcome::Ok
        }
        Command::Version => Outcome::Version(MEMCACHE_VERSION.to_string()),
        Command::Verbosity | Command::Noop | Command::Quit => Outcome::Ok,
        Command::JournalRewrite => match shared.start_journal_rewrite() {
            Ok(()) => Outcome::Ok,
            Err(RewriteRefusal::NoJournal) => {
                Outcome::ServerError("no journal is configured".to_string())
            }
            Err(RewriteRefusal::JournalFailed) => {
                Outcome::ServerError(super::JOURNAL_FAILED.to_string())
            }
            Err(RewriteRefusal::AlreadyRunning) => {
                Outcome::ServerError("a journal rewrite is already running".to_string())
            }
        },
        // Prefix statistics are not kept: `detail on|off` is accepted and changes nothing,
        // `detail dump` is the empty dump.
        Command::Stats(StatsGroup::Other(name)) if name.starts_with(b"detail") => match &name[..] {
            b"detail on" | b"detail off" => Outcome::Ok,
            b"detail dump" => Outcome::Stats(Vec::new()),
            _ => Outcome::ClientError("usage: stats detail on|off|dump"),
        },
        // memcached answers an unknown group (`stats noreply`, `stats bogus`) with `ERROR`,
        // and memccapable's "ascii stat" test checks exactly that.
        Command::Stats(StatsGroup::Other(_)) => Outcome::UnknownCommand,
        Command::Stats(StatsGroup::Reset) => {
            shared.stats.reset();
            Outcome::Ok
        }
        Command::Stats(group) => Outcome::Stats(stats_group(shared, group, now)),
        Command::TooLarge { key } => {
            // memcached removes what the key held, so that no client reads the old value
            // after a write it was told failed.
            bump(&stats.cmd_set);
            store.remove_if_string(key, 0, now);
            Outcome::TooLarge
        }
        Command::Meta(meta) => meta::execute(shared, meta, now),
        // Only reached when authentication is off (`execute_as` answers SASL otherwise).
        Command::SaslListMechs | Command::SaslAuth { .. } | Command::Unknown => {
            Outcome::UnknownCommand
        }
    }
}

fn stats_group(shared: &Shared, group: &StatsGroup, now: u64) -> Vec<(String, String)> {
    let store = shared.store.stats();
    let budget = shared.store.budget();
    let config = &shared.config;
    let pairs: Vec<(&str, String)> = match group {
        StatsGroup::General => {
            let mut pairs = vec![
                ("pid", std::process::id().to_string()),
                ("uptime", shared.started.elapsed().as_secs().to_string()),
                ("time", (now / 1000).to_string()),
                ("version", MEMCACHE_VERSION.to_string()),
                ("sessiond_version", env!("CARGO_PKG_VERSION").to_string()),
                ("pointer_size", (usize::BITS).to_string()),
                ("threads", config.threads.to_string()),
                ("max_connections", config.max_connections.to_string()),
            ];
            pairs.extend(
                shared
                    .stats
                    .snapshot()
                    .into_iter()
                    .map(|(k, v)| (k, v.to_string())),
            );
            pairs.extend([
                ("curr_items", store.items.to_string()),
                ("total_items", store.total_items.to_string()),
                ("bytes", budget.used().to_string()),
                ("limit_maxbytes", budget.limit().to_string()),
                ("expired", store.expired.to_string()),
                ("expired_by_wheel", store.reclaimed_by_wheel.to_string()),
                ("evictions", "0".to_string()),
                ("out_of_memory", store.out_of_memory.to_string()),
            ]);
            if let Some(journal) = &shared.journal {
                let progress = journal.progress();
                let js = &journal.stats;
                pairs.extend([
                    ("journal_fsync", journal.policy().name().to_string()),
                    (
                        "journal_records",
                        js.records.load(Ordering::Relaxed).to_string(),
                    ),
                    ("journal_written", progress.written.to_string()),
                    ("journal_durable", progress.durable.to_string()),
                    (
                        "journal_fsyncs",
                        js.fsyncs.load(Ordering::Relaxed).to_string(),
                    ),
                    (
                        "journal_segment_bytes",
                        js.segment_bytes.load(Ordering::Relaxed).to_string(),
                    ),
                    (
                        "journal_rewrites",
                        js.rewrites.load(Ordering::Relaxed).to_string(),
                    ),
                    (
                        "journal_rewrite_running",
                        u8::from(js.rewrite_running.load(Ordering::Relaxed)).to_string(),
                    ),
                    (
                        "journal_poisoned",
                        u8::from(journal.is_poisoned()).to_string(),
                    ),
                ]);
                if let Some(reason) = journal.poison_reason() {
                    pairs.push(("journal_error", reason.replace(['\r', '\n'], " ")));
                }
            }
            pairs
        }
        StatsGroup::Settings => vec![
            ("maxbytes", budget.limit().to_string()),
            ("maxconns", config.max_connections.to_string()),
            (
                "tcpport",
                config.memcache_listen.map_or(0, |a| a.port()).to_string(),
            ),
            (
                "interface",
                config
                    .memcache_listen
                    .map_or("off".into(), |a| a.ip().to_string()),
            ),
            ("num_threads", config.threads.to_string()),
            ("item_size_max", config.max_item_size.to_string()),
            (
                "idle_timeout",
                config.idle_timeout.map_or(0, |d| d.as_secs()).to_string(),
            ),
            ("evictions", "off".to_string()),
            (
                "eviction_policy",
                "never: a full store refuses writes".to_string(),
            ),
            ("binding_protocol", "auto-negotiate".to_string()),
        ],
        StatsGroup::Items => vec![
            ("items:1:number", store.items.to_string()),
            ("items:1:evicted", "0".to_string()),
            ("items:1:expired", store.expired.to_string()),
            ("items:1:outofmemory", store.out_of_memory.to_string()),
        ],
        StatsGroup::Slabs | StatsGroup::Conns | StatsGroup::Reset | StatsGroup::Other(_) => {
            Vec::new()
        }
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The reply to a write the store refused. memcached's own writes fail only for memory or
/// because a revoked session may not be written again; the typed errors are RESP's.
fn refusal(error: StoreError) -> Outcome {
    match error {
        StoreError::Revoked => Outcome::Revoked,
        _ => Outcome::OutOfMemory,
    }
}

mod meta;
#[cfg(test)]
mod tests;
