//! The write path: creating a record, compare-and-set of this request's changes with
//! re-application after a lost race, replacing the id, and what the response must say.
//!
//! Every write is a compare-and-set on the version that was read, so a record deleted by a
//! logout is never brought back and a concurrent writer is never overwritten blindly. A lost
//! race reloads the record and re-applies this request's operations to it; a record that is
//! gone (deleted meanwhile) drops this request's changes, because the delete must win.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::Rng as _;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::cookie::IdAction;
use crate::id::SessionId;
use crate::metrics::inc;
use crate::store::{CreateOutcome, MovedTo, Record, StoreError, UpdateOutcome, Version, Versioned};

use super::load::MAX_HOPS;
use super::state::{Backing, ClientId, Cycle, Loaded, Op, State, Stored};
use super::{Session, SessionError};

/// Attempts at finding an unused id; a collision of 192-bit random ids does not happen, so
/// this only guards against a broken random source looping forever.
const CREATE_ATTEMPTS: usize = 4;

/// Per-session locks that queue this process's writes to one session.
///
/// Compare-and-set alone is correct, but when many requests of one session finish at once
/// they all lose to the first writer, reload and collide again; with dozens in flight some
/// exhaust their retries. Queuing the *write phase* (never the handler) inside one process
/// leaves only writers on other nodes to race with, so retries stay rare. Correctness does
/// not depend on it: CAS still decides.
#[derive(Default)]
pub(crate) struct WriteLocks {
    map: std::sync::Mutex<HashMap<String, Weak<Mutex<()>>>>,
}

impl WriteLocks {
    /// Entries beyond which dead locks are pruned on the next acquire.
    const PRUNE_AT: usize = 1024;

    fn get(&self, id: &SessionId) -> Arc<Mutex<()>> {
        let mut map = self.map.lock().unwrap();
        if let Some(lock) = map.get(id.as_str()).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= Self::PRUNE_AT {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(Mutex::new(()));
        map.insert(id.as_str().to_owned(), Arc::downgrade(&lock));
        lock
    }
}

/// The result of finishing a request's session, for the layer.
pub(crate) struct Finish {
    pub(crate) action: IdAction,
    pub(crate) error: Option<SessionError>,
}

/// How a write to a stored session ended, when the store did not fail.
enum Written {
    /// The store accepted it, so the idle deadline restarted.
    Accepted,
    /// Another request of the same client replaced the id first; the session now uses that
    /// request's record, and nothing was written.
    Joined,
    /// The record was deleted meanwhile (logout, log out everywhere): the delete wins and
    /// this request's changes are dropped.
    Dropped,
}

impl Loaded {
    /// Takes in how a write ended: a write the store accepted restarts the idle deadline;
    /// a session ended meanwhile leaves this request with no session.
    fn settle(&mut self, written: Written) -> SaveOutcome {
        match written {
            Written::Accepted => self.refreshed = true,
            Written::Joined => {}
            Written::Dropped => {
                self.backing = Backing::Absent { adopt: None };
                self.data.clear();
                return SaveOutcome::Ended;
            }
        }
        SaveOutcome::Stored
    }
}

/// What [`Session::save`] did when the store did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Everything pending is stored (or nothing was pending, or nothing is worth storing
    /// yet: a session without data is created with its first value).
    Stored,
    /// The session ended elsewhere while this request worked on it: it was deleted (a
    /// logout, an administrator's revocation, "log out everywhere", expiry), or a login
    /// replaced its id and the old id lost its authority. This request's pending changes
    /// were dropped, because the end must win; the request now has no session, and a value
    /// set after this starts a new one.
    Ended,
}

impl Session {
    /// Writes what is pending: creates a new session, applies changes with compare-and-set,
    /// and replaces the id if asked.
    pub(super) async fn persist(&self, st: &mut Loaded) -> Result<SaveOutcome, SessionError> {
        let now = self.now();
        let stored = match &mut st.backing {
            Backing::Absent { adopt } => {
                if st.data.is_empty() {
                    // Nothing worth storing; a new session comes into being with its first
                    // value.
                    return Ok(SaveOutcome::Stored);
                }
                let stored = self.create(adopt, &st.data, now).await?;
                st.backing = Backing::Stored(stored);
                st.refreshed = true;
                return Ok(SaveOutcome::Stored);
            }
            Backing::Stored(stored) if stored.retired => {
                if stored.cycle == Cycle::Privilege {
                    // A login through an id another login has just retired (a double-submitted
                    // form): this request's state becomes a session of its own under a fresh
                    // id, sent to this client only. Neither the retired record nor the session
                    // that replaced it changes.
                    let fresh = self.create(&mut None, &st.data, now).await?;
                    st.backing = Backing::Stored(fresh);
                    st.refreshed = true;
                    return Ok(SaveOutcome::Stored);
                }
                if !stored.ops.is_empty() {
                    // The retired state is read-only: writing it would let the old id act
                    // again, and writing the new session would be exactly the fixation this
                    // prevents. The changes are dropped, like those racing a logout.
                    stored.ops.clear();
                    inc(&self.metrics().writes_after_delete);
                    tracing::info!(
                        id_hash = %self.hash(&stored.id),
                        "write through a retired session id dropped"
                    );
                    return Ok(SaveOutcome::Ended);
                }
                return Ok(SaveOutcome::Stored);
            }
            Backing::Stored(stored) => stored,
        };
        if stored.ops.is_empty() && stored.cycle == Cycle::No {
            return Ok(SaveOutcome::Stored);
        }
        let lock = self.inner.shared.write_locks.get(&stored.id);
        let _queued = lock.lock().await;
        if stored.cycle == Cycle::Privilege {
            // Not `write_ops` first: this request's changes (the login) must never be written
            // under the old id, not even for the moment before it is retired.
            let written = self.cycle_privileged(stored, &mut st.data, now).await?;
            return Ok(st.settle(written));
        }
        if !stored.ops.is_empty() {
            let written = self.write_ops(stored, &mut st.data, now).await?;
            if let Written::Dropped = written {
                return Ok(st.settle(written));
            }
            st.settle(written);
        }
        if let Backing::Stored(stored) = &mut st.backing
            && stored.cycle == Cycle::Renew
        {
            let written = self.cycle(stored, &mut st.data, now).await?;
            return Ok(st.settle(written));
        }
        Ok(SaveOutcome::Stored)
    }

    /// Creates the record under a new id (or the adopted one) with `data`.
    async fn create(
        &self,
        adopt: &mut Option<SessionId>,
        data: &Map<String, Value>,
        now: u64,
    ) -> Result<Stored, SessionError> {
        let mut record = Record::new(now);
        record.data = data.clone();
        let ttl = self.ttl(&record, now);
        for _ in 0..CREATE_ATTEMPTS {
            let id = adopt
                .take()
                .unwrap_or_else(|| self.config().id_format.generate());
            if self.store().create(&id, &record, ttl).await? == CreateOutcome::Created {
                inc(&self.metrics().created);
                tracing::debug!(id_hash = %self.hash(&id), "session created");
                return Ok(Stored {
                    version: self.store().created_version(&record),
                    id,
                    base: record,
                    ops: Vec::new(),
                    cycle: Cycle::No,
                    retired: false,
                    client: ClientId::Issued,
                });
            }
        }
        Err(StoreError::new("no free session id found").into())
    }

    /// Sleeps before retrying a lost race: exponential backoff with full jitter (a random
    /// wait up to 0.5 ms, 1 ms, 2 ms, ... capped at 32 ms), so that writers piling onto one
    /// session spread out instead of colliding again in lockstep.
    async fn backoff(attempt: u32) {
        let max_us = 500u64 << attempt.min(6);
        let us = rand::rng().random_range(0..=max_us);
        tokio::time::sleep(Duration::from_micros(us)).await;
    }

    /// Writes `data` over `stored` with compare-and-set, rebasing onto the latest record
    /// after each lost race.
    async fn write_ops(
        &self,
        stored: &mut Stored,
        data: &mut Map<String, Value>,
        now: u64,
    ) -> Result<Written, SessionError> {
        for attempt in 0..=self.config().max_retries {
            let mut record = stored.base.clone();
            record.data = data.clone();
            record.last_active_at = now;
            let ttl = self.ttl(&record, now);
            match self
                .store()
                .update(&stored.id, &record, stored.version, ttl)
                .await?
            {
                UpdateOutcome::Updated(version) => {
                    stored.version = version;
                    stored.base = record;
                    stored.ops.clear();
                    return Ok(Written::Accepted);
                }
                UpdateOutcome::Missing => return Ok(self.dropped(&stored.id)),
                UpdateOutcome::Conflict => {
                    inc(&self.metrics().cas_retries);
                    let Some((id, latest)) = self.reload_following(&stored.id).await? else {
                        return Ok(self.dropped(&stored.id));
                    };
                    if id != stored.id {
                        // Another request replaced the id meanwhile; write to the new record.
                        // Its response carries the new id to this same client, unless this
                        // response is the one that must deliver an id it issued.
                        stored.id = id;
                        if stored.client != ClientId::Issued {
                            stored.client = ClientId::Forwarded;
                        }
                        stored.cycle = Cycle::No;
                    }
                    self.rebase(stored, data, latest)?;
                    // The first loss is usually to a writer queued ahead of us in this process
                    // (see `WriteLocks`), which is done by now: retry at once. Repeated losses
                    // mean other nodes are racing too; then spread out.
                    if attempt > 0 {
                        Self::backoff(attempt - 1).await;
                    }
                }
            }
        }
        inc(&self.metrics().contention_failures);
        Err(SessionError::Contention)
    }

    /// The session `id` was deleted (logout, log out everywhere) while this request worked on
    /// it; counts and logs that its changes are dropped rather than written back.
    fn dropped(&self, id: &SessionId) -> Written {
        inc(&self.metrics().writes_after_delete);
        tracing::info!(
            id_hash = %self.hash(id),
            "session ended while the request was in flight; its changes were dropped"
        );
        Written::Dropped
    }

    /// Loads the latest record of `id`, following a forwarding pointer left by a concurrent
    /// cycle. Returns the id actually holding the data.
    async fn reload_following(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionId, Versioned)>, SessionError> {
        let mut id = id.clone();
        for _ in 0..=MAX_HOPS {
            let Some(latest) = self.store().load_fresh(&id).await? else {
                return Ok(None);
            };
            if latest.record.retired_at.is_some() || !latest.record.is_session() {
                // `cycle_id` retired the id meanwhile (a login): as good as deleted for a
                // write that raced it, which must not reach the new session.
                return Ok(None);
            }
            match latest
                .record
                .moved_to
                .as_ref()
                .map(|m| self.config().id_format.parse(&m.id))
            {
                None => return Ok(Some((id, latest))),
                Some(Some(next)) => id = next,
                Some(None) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Re-applies this request's operations on top of `latest`. Closures run again on the new
    /// values; a set or remove of a key that `latest` also changed is a conflict.
    fn rebase(
        &self,
        stored: &mut Stored,
        data: &mut Map<String, Value>,
        latest: Versioned,
    ) -> Result<(), SessionError> {
        let theirs = &latest.record.data;
        let mut merged = theirs.clone();
        let mut conflicts = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (key, first) in &stored.ops {
            if seen.contains(&key.as_str()) {
                continue;
            }
            seen.push(key);
            let ops = stored
                .ops
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, op)| op);
            let value = match first {
                Op::Update(_) => {
                    let mut value = theirs.get(key).cloned();
                    for op in ops {
                        value = match op {
                            Op::Set(v) => Some(v.clone()),
                            Op::Remove => None,
                            Op::Update(f) => f(value.as_ref())?,
                        };
                    }
                    value
                }
                Op::Set(_) | Op::Remove => {
                    let mine = data.get(key);
                    if theirs.get(key) != stored.base.data.get(key) && theirs.get(key) != mine {
                        conflicts.push(key.clone());
                    }
                    mine.cloned()
                }
            };
            match value {
                Some(v) => merged.insert(key.clone(), v),
                None => merged.remove(key),
            };
        }
        stored.version = latest.version;
        if !conflicts.is_empty() {
            // Show the handler the other side's state and forget ours.
            *data = latest.record.data.clone();
            stored.base = latest.record;
            stored.ops.clear();
            stored.cycle = Cycle::No;
            inc(&self.metrics().conflicts);
            return Err(SessionError::Conflict(conflicts));
        }
        stored.base = latest.record;
        *data = merged;
        Ok(())
    }

    /// The record that replaces `stored` under a new id, holding `data`, and that id: created
    /// before the old record is changed, so the session exists under one id or the other at
    /// every moment.
    async fn create_replacement(
        &self,
        stored: &Stored,
        data: &Map<String, Value>,
        now: u64,
    ) -> Result<(SessionId, Record, Duration), SessionError> {
        let mut record = stored.base.clone();
        record.data = data.clone();
        record.id_issued_at = now;
        record.last_active_at = now;
        record.moved_to = None;
        record.retired_at = None;
        let ttl = self.ttl(&record, now);
        for _ in 0..CREATE_ATTEMPTS {
            let id = self.config().id_format.generate();
            if self.store().create(&id, &record, ttl).await? == CreateOutcome::Created {
                return Ok((id, record, ttl));
            }
        }
        Err(StoreError::new("no free session id found").into())
    }

    /// How long a replaced id's record lives in the store. A zero grace window still needs a
    /// moment for the record to exist; the layer's own check (`at + grace`) already refuses it.
    fn replaced_ttl(&self) -> Duration {
        self.config().grace_period.max(Duration::from_millis(1))
    }

    /// Replaces the id on a change of privilege ([`Session::cycle_id`], a login): this
    /// request's changes go into a new record only, and the old record is retired, with
    /// compare-and-set, to the state it had before this request. The retired record names no
    /// successor, so the old id never reaches the new session, at any moment: not before the
    /// retirement (the new record exists but nothing points to it), not during the grace
    /// window (the old id shows only its pre-login state, read-only), not after.
    ///
    /// A write that reached the old record after this request read it (a concurrent request
    /// of the same, still anonymous, client) is rebased into the new record like any lost
    /// race, and is part of the retired state too. If another request replaced the old id
    /// first (a double-submitted login), this request keeps the record it made: a session of
    /// its own, whose id only this response carries.
    async fn cycle_privileged(
        &self,
        stored: &mut Stored,
        data: &mut Map<String, Value>,
        now: u64,
    ) -> Result<Written, SessionError> {
        let old = stored.id.clone();
        let (new, mut record, ttl) = self.create_replacement(stored, data, now).await?;
        let mut new_version: Version = self.store().created_version(&record);
        for attempt in 0..=self.config().max_retries {
            let mut retired = stored.base.clone();
            retired.moved_to = None;
            retired.retired_at = Some(now);
            let outcome = self
                .store()
                .update(&old, &retired, stored.version, self.replaced_ttl())
                .await?;
            let replaced_first = match outcome {
                UpdateOutcome::Updated(_) => false,
                UpdateOutcome::Missing => {
                    // Deleted meanwhile: the logout wins, and the copy must not outlive it.
                    self.store().delete(&new).await?;
                    return Ok(self.dropped(&old));
                }
                UpdateOutcome::Conflict => {
                    inc(&self.metrics().cas_retries);
                    let Some(latest) = self.store().load_fresh(&old).await? else {
                        self.store().delete(&new).await?;
                        return Ok(self.dropped(&old));
                    };
                    let replaced = latest.record.moved_to.is_some()
                        || latest.record.retired_at.is_some()
                        || !latest.record.is_session();
                    if !replaced {
                        if let Err(e) = self.rebase(stored, data, latest) {
                            self.store().delete(&new).await?;
                            return Err(e);
                        }
                        // The new record is known to nobody else yet, so this cannot race.
                        record.data = data.clone();
                        match self.store().update(&new, &record, new_version, ttl).await? {
                            UpdateOutcome::Updated(v) => new_version = v,
                            _ => return Err(StoreError::new("replacement record changed").into()),
                        }
                        if attempt > 0 {
                            Self::backoff(attempt - 1).await;
                        }
                        continue;
                    }
                    true
                }
            };
            inc(&self.metrics().cycled);
            tracing::info!(
                old_hash = %self.hash(&old),
                new_hash = %self.hash(&new),
                replaced_first,
                "session id replaced on a change of privilege"
            );
            *data = record.data.clone();
            stored.id = new;
            stored.version = new_version;
            stored.base = record;
            stored.ops.clear();
            stored.cycle = Cycle::No;
            stored.client = ClientId::Issued;
            return Ok(Written::Accepted);
        }
        self.store().delete(&new).await?;
        inc(&self.metrics().contention_failures);
        Err(SessionError::Contention)
    }

    /// Replaces the id when the renewal timeout is due (same session, same privilege): a new
    /// record with the data, then the old record becomes a forwarding pointer that lives for
    /// the grace window. The pointer is written with compare-and-set, so a write that reached
    /// the old record after we read it is copied over, not lost.
    async fn cycle(
        &self,
        stored: &mut Stored,
        data: &mut Map<String, Value>,
        now: u64,
    ) -> Result<Written, SessionError> {
        let old = stored.id.clone();
        let (created_at, id_issued_at) = (stored.base.created_at, stored.base.id_issued_at);
        let (new, mut record, ttl) = self.create_replacement(stored, data, now).await?;
        let mut new_version: Version = self.store().created_version(&record);

        for attempt in 0..=self.config().max_retries {
            let pointer = Record {
                data: Map::new(),
                created_at,
                id_issued_at,
                last_active_at: now,
                moved_to: Some(MovedTo {
                    id: new.as_str().to_owned(),
                    at: now,
                }),
                retired_at: None,
                kind: None,
            };
            match self
                .store()
                .update(&old, &pointer, stored.version, self.replaced_ttl())
                .await?
            {
                UpdateOutcome::Updated(_) => {
                    inc(&self.metrics().cycled);
                    tracing::info!(
                        old_hash = %self.hash(&old),
                        new_hash = %self.hash(&new),
                        "session id replaced"
                    );
                    *data = record.data.clone();
                    stored.id = new;
                    stored.version = new_version;
                    stored.base = record;
                    stored.cycle = Cycle::No;
                    stored.client = ClientId::Issued;
                    return Ok(Written::Accepted);
                }
                UpdateOutcome::Missing => {
                    // Deleted meanwhile: the logout wins, and the copy must not outlive it.
                    self.store().delete(&new).await?;
                    return Ok(self.dropped(&old));
                }
                UpdateOutcome::Conflict => {
                    inc(&self.metrics().cas_retries);
                    let Some(latest) = self.store().load_fresh(&old).await? else {
                        self.store().delete(&new).await?;
                        return Ok(self.dropped(&old));
                    };
                    if latest.record.retired_at.is_some() {
                        // A login retired the old id meanwhile; this renewal's state is the
                        // pre-login one, which must not go on as a live session.
                        self.store().delete(&new).await?;
                        return Ok(self.dropped(&old));
                    }
                    if let Some(moved) = &latest.record.moved_to {
                        // A concurrent request of the same client replaced the id first
                        // (typically two requests both due for renewal). Use its id.
                        self.store().delete(&new).await?;
                        let Some((id, current)) = self.reload_following(&old).await? else {
                            return Ok(self.dropped(&old));
                        };
                        debug_assert!(self.config().id_format.parse(&moved.id).is_some());
                        *data = current.record.data.clone();
                        stored.id = id;
                        stored.version = current.version;
                        stored.base = current.record;
                        stored.cycle = Cycle::No;
                        // The other response sends this id too; sending it here as well keeps
                        // the client right whichever response arrives last.
                        stored.client = ClientId::Issued;
                        return Ok(Written::Joined);
                    }
                    // Someone wrote to the old record after we read it: carry that over to
                    // the new record (which nobody else knows yet, so this cannot race).
                    record.data = latest.record.data.clone();
                    stored.version = latest.version;
                    match self.store().update(&new, &record, new_version, ttl).await? {
                        UpdateOutcome::Updated(v) => new_version = v,
                        _ => return Err(StoreError::new("replacement record changed").into()),
                    }
                    Self::backoff(attempt).await;
                }
            }
        }
        self.store().delete(&new).await?;
        inc(&self.metrics().contention_failures);
        Err(SessionError::Contention)
    }

    /// Called by the layer after the handler: saves what is pending, refreshes the idle
    /// deadline if due, and says what the response must carry.
    pub(crate) async fn finish(&self) -> Finish {
        let mut state = self.inner.state.lock().await;
        // Finished from here on, even if saving fails: later calls from a clone of the handle
        // (a spawned task, say) could no longer reach the response.
        let State::Loaded(mut st) = std::mem::replace(&mut *state, State::Finished) else {
            return Finish {
                action: IdAction::None,
                error: None,
            };
        };
        let mut error = None;
        if let Err(e) = self.persist(&mut st).await {
            if let SessionError::Store(err) = &e {
                inc(&self.metrics().store_errors);
                tracing::error!(error = %err, "session could not be saved");
            }
            error = Some(e);
        }
        if error.is_none()
            && !st.refreshed
            && let Backing::Stored(stored) = &st.backing
            && !stored.retired
        {
            let now = self.now();
            let interval = self.config().touch_interval.as_millis() as u64;
            if now >= stored.base.last_active_at.saturating_add(interval) {
                let mut touched = stored.base.clone();
                touched.last_active_at = now;
                let ttl = self.ttl(&touched, now);
                match self.store().touch(&stored.id, now, ttl).await {
                    Ok(true) => {
                        inc(&self.metrics().touches);
                        st.refreshed = true;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        // The request itself succeeded; a missed refresh only brings the idle
                        // deadline a little closer.
                        inc(&self.metrics().store_errors);
                        tracing::warn!(error = %e, "session idle deadline not refreshed");
                    }
                }
            }
        }
        let action = if error.is_some() {
            IdAction::None
        } else {
            match &st.backing {
                Backing::Stored(stored) => match stored.client {
                    ClientId::Issued => IdAction::Set(stored.id.clone()),
                    // Restart a persistent cookie's Max-Age; a forwarded client gets its id
                    // from the response that replaced it, so it is left alone.
                    ClientId::Sent if st.refreshed && self.config().cookie.max_age.is_some() => {
                        IdAction::Set(stored.id.clone())
                    }
                    ClientId::Sent | ClientId::Forwarded => IdAction::None,
                },
                Backing::Absent { .. } if st.ended => IdAction::Remove,
                Backing::Absent { .. } => IdAction::None,
            }
        };
        Finish { action, error }
    }
}
