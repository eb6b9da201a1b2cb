//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, as in Redis 7.0.
//!
//! After `MULTI`, [`super::prepare`] queues every command but the transaction's own
//! (`EXEC`, `DISCARD`, `MULTI`, `WATCH`, `QUIT`, `RESET`: [`super::Flags::TX_CONTROL`]) and
//! answers `+QUEUED`; a command refused by its checks (unknown, arity, `NOAUTH`, `NOPERM`, …)
//! is answered with its error and flags the transaction, so `EXEC` answers `-EXECABORT`.
//! `EXEC` takes the script gate exclusively, like a script, and runs every queued command
//! through [`super::run`]: atomic with respect to every client of both protocols. It does
//! not make the server busy (`exec::busy`): others wait for it, as Redis's clients wait for
//! any command, unless a script it runs makes them busy.
//!
//! `WATCH`: the stores' observer (`changes`) calls [`Watches::touched`] for every applied
//! change, lazy or active expiry and flush; a watched key's change sets the watching
//! connection's dirty flag, and `EXEC` then answers a null array. With nothing watched
//! anywhere, the observer pays one atomic load. A key alive at `WATCH` whose deadline has
//! passed at `EXEC` counts as changed too, as in Redis 7.0. Both looks change nothing
//! (`Store::is_live`: no reaping, no observer), which matters for `WATCH`: it is allowed in
//! the busy state and then runs beside a script (see `exec::busy`).
//!
//! Bounds: a transaction queues at most [`MAX_QUEUED`] commands and [`max_queued_bytes`]
//! bytes (arguments plus a fixed overhead per argument and per command); past either the
//! queue is dropped, the client gets an error and `EXEC` answers `-EXECABORT`. A connection
//! watches at most [`MAX_WATCHED`] keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sessiond_proto_resp::Reply;

use super::args::{Args, Handled};
use super::{Answer, Ctx, Executed, Session, Spec, error, memory_refusal, simple, write_refusal};
use crate::exec::Shared;

/// Most commands one transaction may queue.
pub const MAX_QUEUED: usize = 100_000;
/// Most keys one connection may watch.
pub const MAX_WATCHED: usize = 10_000;
/// What a queued command costs beyond its arguments' bytes, and each argument.
const COMMAND_OVERHEAD: usize = 64;
const ARG_OVERHEAD: usize = 32;

/// Most bytes one transaction may queue: the connection's input limit (four maximal
/// values, at least 16 MiB).
pub fn max_queued_bytes(shared: &Shared) -> usize {
    (4 * shared.config.max_item_size).max(16 * 1024 * 1024)
}

/// A transaction being queued (between `MULTI` and `EXEC`/`DISCARD`).
#[derive(Default)]
pub struct Transaction {
    queued: Vec<(&'static Spec, Vec<Bytes>)>,
    bytes: usize,
    /// A command was refused while queueing: `EXEC` aborts.
    failed: bool,
}

/// One connection's watched keys.
#[derive(Default)]
pub struct Watching {
    /// (database, key, whether the key was alive when watched).
    keys: Vec<(usize, Bytes, bool)>,
    /// Set by the observer when a watched key changes.
    dirty: Arc<AtomicBool>,
}

/// A connection watching a key: its id and its dirty flag.
type Watcher = (u64, Arc<AtomicBool>);

/// The server-wide registry of watched keys: database → key → the watching connections.
#[derive(Default)]
pub struct Watches {
    /// How many (connection, key) registrations exist: zero means nothing to look up.
    count: AtomicUsize,
    keys: Mutex<HashMap<usize, HashMap<Bytes, Vec<Watcher>>>>,
    /// Databases whose flush the glue is running itself ([`Watches::flushing`]): their
    /// `cleared` dirties nothing more. A bit per database.
    quiet: AtomicUsize,
}

impl Watches {
    /// `key` of database `db` changed (or expired): its watchers' transactions fail.
    /// Called under the key's shard lock; one atomic load when nothing is watched.
    pub fn touched(&self, db: usize, key: &[u8]) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watchers) = keys.get(&db).and_then(|db| db.get(key)) {
            for (_, dirty) in watchers {
                dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Every key of database `db` went (a flush): every watcher of the database fails,
    /// unless the flush is one [`Watches::flushing`] announced.
    pub fn cleared(&self, db: usize) {
        if self.count.load(Ordering::Acquire) == 0
            || self.quiet.load(Ordering::Acquire) & (1 << db) != 0
        {
            return;
        }
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = keys.get(&db) {
            for (_, dirty) in db.values().flatten() {
                dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Runs `flush`, a flush of database `db` that the caller runs holding the script gate
    /// exclusively (`FLUSHDB`, `FLUSHALL`), touching only the watched keys that `exists`
    /// finds before it, as Redis does: a transaction watching a key that did not exist is
    /// not failed by the flush. (Other flushes, such as memcached's delayed `flush_all`,
    /// keep failing every watcher of the database.)
    pub fn flushing(&self, db: usize, exists: impl Fn(&[u8]) -> bool, flush: impl FnOnce()) {
        if self.count.load(Ordering::Acquire) == 0 {
            return flush();
        }
        // The registry's lock is not held while `exists` reads the store: the lock order is
        // a shard, then the registry (the observer's `touched`).
        let watched: Vec<Bytes> = {
            let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.get(&db)
                .map(|keys| keys.keys().cloned().collect())
                .unwrap_or_default()
        };
        for key in watched.iter().filter(|key| exists(key)) {
            self.touched(db, key);
        }
        self.quiet.fetch_or(1 << db, Ordering::AcqRel);
        flush();
        self.quiet.fetch_and(!(1 << db), Ordering::AcqRel);
    }

    /// How many (connection, key) watches exist.
    #[cfg(test)]
    pub fn watched(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn add(&self, id: u64, db: usize, key: Bytes, dirty: &Arc<AtomicBool>) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.entry(db)
            .or_default()
            .entry(key)
            .or_default()
            .push((id, dirty.clone()));
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn remove(&self, id: u64, watched: &[(usize, Bytes, bool)]) {
        if watched.is_empty() {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for (db, key, _) in watched {
            let Some(in_db) = keys.get_mut(db) else {
                continue;
            };
            if let Some(watchers) = in_db.get_mut(key) {
                let before = watchers.len();
                watchers.retain(|(who, _)| *who != id);
                self.count
                    .fetch_sub(before - watchers.len(), Ordering::AcqRel);
                if watchers.is_empty() {
                    in_db.remove(key);
                }
            }
            if in_db.is_empty() {
                keys.remove(db);
            }
        }
    }
}

/// Forgets every key `session` watches (`UNWATCH`, `EXEC`, `DISCARD`, `RESET`, close).
pub fn unwatch_all(shared: &Shared, session: &mut Session) {
    let watching = std::mem::take(&mut session.watching);
    shared
        .resp
        .pubsub
        .watches
        .remove(session.id, &watching.keys);
}

/// Queues `args` (checked by `prepare`) in `session`'s transaction: `+QUEUED`, or an error
/// past the transaction's bounds.
pub fn queue(
    shared: &Shared,
    session: &mut Session,
    spec: &'static Spec,
    args: &[Bytes],
) -> Executed {
    let Some(tx) = session.tx.as_mut() else {
        return Executed::at_once(error("ERR internal error: no transaction"));
    };
    let cost = args.iter().map(|a| a.len() + ARG_OVERHEAD).sum::<usize>() + COMMAND_OVERHEAD;
    let limit = max_queued_bytes(shared);
    if tx.failed {
        // Aborted already: keep nothing.
        return Executed::at_once(simple("QUEUED"));
    }
    if tx.queued.len() >= MAX_QUEUED || tx.bytes.saturating_add(cost) > limit {
        *tx = Transaction {
            failed: true,
            ..Transaction::default()
        };
        return Executed::at_once(error(format!(
            "ERR transaction too large: at most {MAX_QUEUED} commands and {limit} bytes may be queued"
        )));
    }
    tx.bytes += cost;
    tx.queued.push((spec, args.to_vec()));
    Executed::at_once(simple("QUEUED"))
}

/// A command refused while queueing: the transaction will abort.
pub fn flag(session: &mut Session) {
    if let Some(tx) = session.tx.as_mut() {
        *tx = Transaction {
            failed: true,
            ..Transaction::default()
        };
    }
}

/// `MULTI`.
pub fn multi(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    if ctx.session.tx.is_some() {
        return Err(error("ERR MULTI calls can not be nested"));
    }
    ctx.session.tx = Some(Transaction::default());
    Ok(Reply::ok().into())
}

/// `DISCARD`.
pub fn discard(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    if ctx.session.tx.take().is_none() {
        return Err(error("ERR DISCARD without MULTI"));
    }
    unwatch_all(ctx.shared, ctx.session);
    Ok(Reply::ok().into())
}

/// `WATCH key [key …]`.
pub fn watch(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    if ctx.session.tx.is_some() {
        return Err(error("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.session.db;
    for key in args {
        let watching = &ctx.session.watching;
        if watching.keys.iter().any(|(d, k, _)| *d == db && k == key) {
            continue;
        }
        if watching.keys.len() >= MAX_WATCHED {
            return Err(error(format!(
                "ERR too many watched keys (at most {MAX_WATCHED} per connection)"
            )));
        }
        let dirty = watching.dirty.clone();
        ctx.shared
            .resp
            .pubsub
            .watches
            .add(ctx.session.id, db, key.clone(), &dirty);
        // Looked at after registering, so a change in between is seen either way. A look
        // that changes nothing (`Store::is_live`): in the busy state `WATCH` runs without the
        // script gate, beside a script whose clock stands still at its start; reaping a key
        // that expired since, as a read does, would take it from under the script and
        // publish an expiry the script's own reads contradict.
        let alive = ctx.store().is_live(key, ctx.now);
        ctx.session.watching.keys.push((db, key.clone(), alive));
    }
    Ok(Reply::ok().into())
}

/// `UNWATCH`.
pub fn unwatch(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    unwatch_all(ctx.shared, ctx.session);
    Ok(Reply::ok().into())
}

/// `EXEC`: runs the queued commands (the connection holds the script gate exclusively).
pub fn exec(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    let Some(tx) = ctx.session.tx.take() else {
        return Err(error("ERR EXEC without MULTI"));
    };
    // A watched key alive when watched and expired since counts as changed. (Looked at
    // without reaping: checking the watches is not a client's read of the key.)
    for (db, key, alive) in &ctx.session.watching.keys {
        if *alive && !ctx.shared.databases[*db].is_live(key, ctx.now) {
            ctx.session.watching.dirty.store(true, Ordering::Release);
        }
    }
    let dirty = ctx.session.watching.dirty.load(Ordering::Acquire);
    unwatch_all(ctx.shared, ctx.session);
    if tx.failed {
        return Err(error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    if dirty {
        return Ok(Reply::NullArray.into());
    }
    let writes = tx
        .queued
        .iter()
        .any(|(spec, _)| spec.flags.contains(super::Flags::WRITE));
    let grows = tx
        .queued
        .iter()
        .any(|(spec, _)| spec.flags.contains(super::Flags::DENYOOM));
    let refusal = if writes {
        write_refusal(ctx.shared)
    } else {
        None
    }
    .or_else(|| {
        if grows {
            memory_refusal(ctx.shared)
        } else {
            None
        }
    });
    if let Some(Reply::Error(text)) = refusal {
        return Err(error(format!(
            "EXECABORT Transaction discarded because of: {}",
            String::from_utf8_lossy(&text)
        )));
    }
    let mut replies = Vec::with_capacity(tx.queued.len());
    for (spec, args) in &tx.queued {
        let executed = super::run(ctx.shared, ctx.session, spec, args, ctx.now);
        ctx.durable |= executed.wait_for_journal;
        match executed.answer {
            Answer::One(reply) => replies.push(reply),
            Answer::Many(many) => replies.extend(many),
        }
    }
    Ok(Reply::Array(replies).into())
}
