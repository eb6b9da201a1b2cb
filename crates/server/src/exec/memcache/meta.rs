//! The meta commands (`mg`, `ms`, `md`, `ma`, `me`) as store operations.
//!
//! Each command is one store operation under one shard lock (`Store::meta_get`,
//! `write_if_cas_or_stale`, `meta_invalidate`, `meta_counter`, or the plain write and
//! removal the classic commands use), so a flag's check and its change cannot be separated
//! by another client. The outcome carries everything a return flag may ask for; the codec
//! writes what the request asked for. A write the store refuses answers as `set` does
//! (`SERVER_ERROR out of memory storing object`, or the revoked session's text).

use bytes::Bytes;
use sessiond_proto_memcache::meta::{
    MetaFlags, MetaItem, MetaOutcome, MetaRequest, MetaStatus, MetaVerb,
};
use sessiond_proto_memcache::{ArithMode, CAS_NEVER, Outcome, StoreMode};
use sessiond_store::{
    Condition, DeadlineChange, Direction, MetaCounter, MetaEntry, MetaRead, Previous,
    RemoveOutcome, Side, StoreError, Write, WriteOutcome,
};

use super::{deadline, refusal};
use crate::exec::Shared;
use crate::stats::bump;

/// Seconds left until `deadline` (rounded up, as memcached's whole-second clock reports a
/// TTL just set in full); `None` for no expiry.
fn ttl_left(deadline: Option<u64>, now: u64) -> Option<u64> {
    deadline.map(|d| d.saturating_sub(now).div_ceil(1000))
}

/// What a meta reply reports of an entry.
fn item(entry: MetaEntry, now: u64) -> MetaItem {
    MetaItem {
        ttl: ttl_left(entry.entry.deadline, now),
        last_access: (now / 1000).saturating_sub(entry.last_access),
        fetched: entry.fetched,
        stale: entry.stale,
        token_sent: entry.token_sent,
        won: entry.won,
        value: entry.entry.value,
        flags: entry.entry.flags,
        cas: entry.entry.cas,
    }
}

fn done(item: MetaItem) -> Outcome {
    Outcome::Meta(MetaOutcome {
        status: MetaStatus::Done,
        item: Some(item),
    })
}

fn bare(status: MetaStatus) -> Outcome {
    Outcome::Meta(MetaOutcome::bare(status))
}

/// memcached compares a `C0` like any other CAS where a CAS write is meant.
fn compared(cas: u64) -> u64 {
    if cas == 0 { CAS_NEVER } else { cas }
}

/// Runs one meta command at `now`.
pub(super) fn execute(shared: &Shared, req: &MetaRequest, now: u64) -> Outcome {
    let f = &req.flags;
    match req.verb {
        MetaVerb::Get => get(shared, req, now),
        MetaVerb::Debug => {
            let read = MetaRead {
                bump: false,
                peek: true,
                ..MetaRead::default()
            };
            match shared.store.meta_get(&req.key, read, now) {
                Ok(Some(entry)) => done(item(entry, now)),
                _ => bare(MetaStatus::Miss),
            }
        }
        MetaVerb::Set(mode) => set(shared, req, mode, now),
        MetaVerb::Delete => {
            let outcome = if f.invalidate {
                let retime = f.ttl.map(|t| deadline(t, now));
                shared
                    .store
                    .meta_invalidate(&req.key, f.cas, retime, f.new_cas, now)
            } else {
                let cas = f.cas.map_or(0, compared);
                shared.store.remove_if_string(&req.key, cas, now)
            };
            match outcome {
                RemoveOutcome::Removed => {
                    bump(&shared.stats.delete_hits);
                    bare(MetaStatus::Done)
                }
                RemoveOutcome::NotFound => {
                    bump(&shared.stats.delete_misses);
                    bare(MetaStatus::NotFound)
                }
                RemoveOutcome::Exists => {
                    bump(&shared.stats.delete_misses);
                    bare(MetaStatus::Exists)
                }
            }
        }
        MetaVerb::Arith(mode) => arith(shared, req, mode, now),
    }
}

fn get(shared: &Shared, req: &MetaRequest, now: u64) -> Outcome {
    let f: &MetaFlags = &req.flags;
    let stats = &shared.stats;
    let read = MetaRead {
        touch: f.ttl.map(|t| deadline(t, now)),
        vivify: f.vivify.map(|t| deadline(t, now)),
        // `R0` (no deadline) never wins.
        recache_before: f.recache.and_then(|r| deadline(r, now)),
        bump: !f.no_bump,
        new_cas: f.new_cas,
        peek: false,
    };
    bump(&stats.cmd_get);
    if f.ttl.is_some() {
        bump(&stats.cmd_touch);
    }
    match shared.store.meta_get(&req.key, read, now) {
        Ok(Some(entry)) => {
            bump(if f.ttl.is_some() {
                &stats.touch_hits
            } else {
                &stats.get_hits
            });
            done(item(entry, now))
        }
        Ok(None) => {
            bump(if f.ttl.is_some() {
                &stats.touch_misses
            } else {
                &stats.get_misses
            });
            bare(MetaStatus::Miss)
        }
        Err(error) => refusal(error),
    }
}

fn set(shared: &Shared, req: &MetaRequest, mode: StoreMode, now: u64) -> Outcome {
    let f = &req.flags;
    let store = &shared.store;
    let stats = &shared.stats;
    bump(&stats.cmd_set);
    let flags = f.client_flags.unwrap_or(0);
    let at = deadline(f.ttl.unwrap_or(0), now);
    let result = match mode {
        StoreMode::Append | StoreMode::Prepend => {
            let side = if mode == StoreMode::Append {
                Side::Append
            } else {
                Side::Prepend
            };
            let max = shared.config.max_item_size;
            // memcached's append needs the item whatever the CAS: a miss is "not stored".
            let cas = f.cas.unwrap_or(0);
            store
                .extend_with_cas(&req.key, &req.value, side, cas, max, f.new_cas, now)
                .map(|outcome| match outcome {
                    WriteOutcome::NotFound => WriteOutcome::NotStored,
                    other => other,
                })
        }
        StoreMode::Set | StoreMode::Replace if f.cas.is_some() && f.invalidate => {
            let cas = f.cas.map_or(CAS_NEVER, compared);
            store
                .write_if_cas_or_stale(&req.key, &req.value, flags, at, cas, f.new_cas, now)
                .map(|(outcome, _stale)| outcome)
        }
        StoreMode::Set | StoreMode::Add | StoreMode::Replace => {
            let condition = match (mode, f.cas) {
                (StoreMode::Add, _) => Condition::IfNoString,
                (_, Some(cas)) => Condition::IfCas(compared(cas)),
                (StoreMode::Set, None) => Condition::Always,
                _ => Condition::IfString,
            };
            let how = Write {
                condition,
                flags,
                deadline: DeadlineChange::Set(at),
                previous: Previous::Ignore,
            };
            store
                .write_with_cas(&req.key, &req.value, how, f.new_cas, now)
                .map(|w| w.outcome)
        }
    };
    if f.cas.is_some() && !matches!(mode, StoreMode::Add) {
        bump(match result {
            Ok(WriteOutcome::Stored(_)) => &stats.cas_hits,
            Ok(WriteOutcome::Exists) => &stats.cas_badval,
            _ => &stats.cas_misses,
        });
    }
    match result {
        Ok(WriteOutcome::Stored(cas)) => done(MetaItem {
            cas,
            ..MetaItem::default()
        }),
        Ok(WriteOutcome::NotStored) => bare(MetaStatus::NotStored),
        Ok(WriteOutcome::Exists) => bare(MetaStatus::Exists),
        Ok(WriteOutcome::NotFound) => bare(MetaStatus::NotFound),
        Err(StoreError::TooLarge) => Outcome::TooLarge,
        Err(error) => refusal(error),
    }
}

fn arith(shared: &Shared, req: &MetaRequest, mode: ArithMode, now: u64) -> Outcome {
    let f = &req.flags;
    let stats = &shared.stats;
    let (direction, hits, misses) = match mode {
        ArithMode::Incr => (Direction::Up, &stats.incr_hits, &stats.incr_misses),
        ArithMode::Decr => (Direction::Down, &stats.decr_hits, &stats.decr_misses),
    };
    let vivify = f.vivify.map(|t| (f.initial.unwrap_or(0), deadline(t, now)));
    let retime = f.ttl.map(|t| deadline(t, now));
    let result = shared.store.meta_counter(
        &req.key,
        direction,
        f.delta.unwrap_or(1),
        f.cas.unwrap_or(0),
        vivify,
        retime,
        f.new_cas,
        now,
    );
    match result {
        Ok(MetaCounter::Value(value, cas, at)) => {
            bump(hits);
            done(MetaItem {
                value: Bytes::from(value.to_string()),
                cas,
                ttl: ttl_left(at, now),
                ..MetaItem::default()
            })
        }
        Ok(MetaCounter::NotFound) => {
            bump(misses);
            bare(MetaStatus::NotFound)
        }
        Ok(MetaCounter::Exists) => bare(MetaStatus::Exists),
        Ok(MetaCounter::NonNumeric) => Outcome::NonNumeric,
        Err(error) => refusal(error),
    }
}
