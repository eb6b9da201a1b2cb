//! The per-request session handle: lazy loading, change tracking, timeouts, and the
//! compare-and-set write path with re-application of changes after a lost race.
//!
//! A [`Session`] is created by the layer for every request but does nothing until the handler
//! calls one of its methods; only then is the record loaded. Changes are recorded as
//! operations per key (set, remove, or a closure from [`Session::update`]); at the end of the
//! request the layer writes them with a compare-and-set on the loaded version. If another
//! request wrote in between, the record is reloaded and the operations are re-applied to it:
//! closures run again on the new value (so concurrent increments all count), while a plain set
//! or remove of a key that the other side also changed is a conflict that is reported, not
//! silently resolved. Nothing here writes headers; the layer turns the outcome into a cookie.

#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use rand::Rng as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::config::SessionConfig;
use crate::cookie::IdAction;
use crate::id::SessionId;
use crate::metrics::{Metrics, inc};
use crate::store::{
    CreateOutcome, MovedTo, Record, SessionStore, StoreError, UpdateOutcome, Version, Versioned,
};

/// How many forwarding pointers a load follows (an id cycled twice within one grace window
/// needs two).
const MAX_HOPS: usize = 3;
/// See [`Session::ttl`].
const STORE_TTL_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Attempts at finding an unused id; a collision of 192-bit random ids does not happen, so
/// this only guards against a broken random source looping forever.
const CREATE_ATTEMPTS: usize = 4;

/// Why a session operation failed.
#[derive(Debug)]
pub enum SessionError {
    /// The same keys were changed by this request and, meanwhile, by another one. The session
    /// now shows the other request's values; nothing of this request was written.
    Conflict(Vec<String>),
    /// Compare-and-set kept losing races after the configured number of retries.
    Contention,
    /// The store failed.
    Store(StoreError),
    /// A value could not be (de)serialized as the requested type.
    Serde(serde_json::Error),
    /// The request this session belongs to has finished; changes can no longer be saved.
    Finished,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Conflict(keys) => {
                write!(f, "session keys changed concurrently: {}", keys.join(", "))
            }
            SessionError::Contention => f.write_str("session write kept losing races"),
            SessionError::Store(e) => e.fmt(f),
            SessionError::Serde(e) => write!(f, "session value: {e}"),
            SessionError::Finished => f.write_str("the request of this session has finished"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}

impl From<serde_json::Error> for SessionError {
    fn from(e: serde_json::Error) -> Self {
        SessionError::Serde(e)
    }
}

impl SessionError {
    /// The status the layer answers with when this error ends a request.
    pub fn status(&self) -> StatusCode {
        match self {
            SessionError::Conflict(_) => StatusCode::CONFLICT,
            SessionError::Contention => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        self.status().into_response()
    }
}

/// A read-modify-write step, kept so that it can run again on a reloaded value.
type UpdateFn = dyn Fn(Option<&Value>) -> Result<Option<Value>, serde_json::Error> + Send + Sync;

#[derive(Clone)]
enum Op {
    Set(Value),
    Remove,
    Update(Arc<UpdateFn>),
}

/// What the layer shares with every session it creates.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) config: SessionConfig,
    pub(crate) metrics: Metrics,
    pub(crate) write_locks: WriteLocks,
}

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

#[derive(Default)]
struct State {
    loaded: bool,
    finished: bool,
    /// The id of the record this session reads and writes; `None` until it is created.
    id: Option<SessionId>,
    version: Version,
    /// The record as last read from or written to the store.
    base: Option<Record>,
    /// The current view: `base.data` with `ops` applied.
    data: Map<String, Value>,
    ops: Vec<(String, Op)>,
    cycle: bool,
    /// The client sent a replaced id inside its grace window; it already has (or is about to
    /// receive) the new one, so this response must not send any id.
    forwarded: bool,
    /// An id the client chose, adopted in non-strict mode when the session is created.
    adopt: Option<SessionId>,
    /// The handler deleted the session, so the client must drop its id. Only an explicit
    /// delete does this: telling a client to drop an unknown or expired id could race with a
    /// newer id sent by a concurrent response and log the user out.
    ended: bool,
    /// A new id must be sent.
    send_id: bool,
    /// The store accepted a write or touch, so a persistent cookie's Max-Age restarts.
    refreshed: bool,
}

/// The session of the current request. Cheap to clone; clones share state.
///
/// Extract it in an axum handler (`session: Session`) or take it from the request extensions
/// in any tower service behind [`crate::SessionLayer`].
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The raw id the client sent.
    incoming: Option<String>,
    state: Mutex<State>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Session")
    }
}

/// The result of finishing a request's session, for the layer.
pub(crate) struct Finish {
    pub(crate) action: IdAction,
    pub(crate) error: Option<SessionError>,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, incoming: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                incoming,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn config(&self) -> &SessionConfig {
        &self.inner.shared.config
    }

    fn store(&self) -> &dyn SessionStore {
        &*self.inner.shared.store
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.shared.metrics
    }

    fn now(&self) -> u64 {
        self.config().clock.now_ms()
    }

    fn hash(&self, id: &SessionId) -> String {
        self.config().log_hasher.hash(id)
    }

    /// Reads a value.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        match st.data.get(key) {
            None => Ok(None),
            Some(v) => Ok(Some(T::deserialize(v)?)),
        }
    }

    /// Sets a value. Setting the value a key already has is not a change.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value)?;
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        if st.data.get(key) != Some(&value) {
            st.data.insert(key.to_owned(), value.clone());
            st.ops.push((key.to_owned(), Op::Set(value)));
        }
        Ok(())
    }

    /// Removes a value, returning it.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        let Some(old) = st.data.remove(key) else {
            return Ok(None);
        };
        st.ops.push((key.to_owned(), Op::Remove));
        Ok(Some(T::deserialize(old)?))
    }

    /// Read-modify-write of one key: `f` gets the current value and returns the new one
    /// (`None` removes the key). If another request changes the session before this one is
    /// saved, `f` runs again on that request's value, so no update is lost (use it for
    /// counters, lists, anything derived from the old value). `f` may therefore run more than
    /// once and should have no side effects. Returns the new value as this request sees it.
    pub async fn update<T, F>(&self, key: &str, f: F) -> Result<Option<T>, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> Option<T> + Send + Sync + 'static,
    {
        let op: Arc<UpdateFn> = Arc::new(move |old: Option<&Value>| {
            let old = old.map(|v| T::deserialize(v)).transpose()?;
            f(old).map(serde_json::to_value).transpose()
        });
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        let new = op(st.data.get(key))?;
        let out = new.as_ref().map(|v| T::deserialize(v)).transpose()?;
        if st.data.get(key) != new.as_ref() {
            match &new {
                Some(v) => st.data.insert(key.to_owned(), v.clone()),
                None => st.data.remove(key),
            };
            st.ops.push((key.to_owned(), Op::Update(op)));
        }
        Ok(out)
    }

    /// Removes every value (the session itself stays; see [`Session::delete`] for logout).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        let keys: Vec<String> = st.data.keys().cloned().collect();
        for key in keys {
            st.data.remove(&key);
            st.ops.push((key, Op::Remove));
        }
        Ok(())
    }

    /// Ends the session now (logout): the record is deleted from the store before this call
    /// returns, and the response tells the client to drop its id. A request still in flight
    /// with the same session cannot bring it back: its write finds no record and is dropped.
    /// Values set after this call start a new session with a new id.
    pub async fn delete(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        if let Some(id) = st.id.take() {
            self.store().delete(&id).await?;
            tracing::info!(id_hash = %self.hash(&id), "session deleted");
        }
        let now = self.now();
        st.ended = true;
        st.base = Some(Record::new(now));
        st.data.clear();
        st.ops.clear();
        st.cycle = false;
        st.version = 0;
        st.send_id = false;
        Ok(())
    }

    /// Gives the session a new id and keeps its data; call it on login and on any change of
    /// privilege (session-fixation defence). The old id keeps resolving to the session for the
    /// configured grace window. Takes effect when the session is saved.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        st.cycle = true;
        Ok(())
    }

    /// The id of the stored session, if it has been created. Treat it as a secret.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        let mut st = self.state().await?;
        self.load(&mut st).await?;
        Ok(st.id.clone())
    }

    /// Writes pending changes (and a pending id change) now instead of after the handler, so
    /// the handler can react to a conflict. The layer saves anything left at the end anyway.
    pub async fn save(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        self.persist(&mut st).await
    }

    async fn state(&self) -> Result<tokio::sync::MutexGuard<'_, State>, SessionError> {
        let st = self.inner.state.lock().await;
        if st.finished {
            return Err(SessionError::Finished);
        }
        Ok(st)
    }

    /// The store TTL for a record: until whichever timeout comes first, plus a margin. The
    /// margin lets the layer, not the store, be the one that finds the session over (so it
    /// is logged and counted as an expiry rather than an unknown id) and absorbs clock skew
    /// between app nodes and the store.
    fn ttl(&self, record: &Record, now: u64) -> Duration {
        let idle = self.config().idle_timeout;
        let mut ttl = idle;
        if let Some(abs) = self.config().absolute_timeout {
            let end = record.created_at.saturating_add(abs.as_millis() as u64);
            ttl = ttl.min(Duration::from_millis(end.saturating_sub(now)));
        }
        ttl + STORE_TTL_MARGIN
    }

    /// Why `record` has ended at `now`, if it has.
    fn expired(&self, record: &Record, now: u64) -> Option<&'static str> {
        let c = self.config();
        if let Some(abs) = c.absolute_timeout
            && now >= record.created_at.saturating_add(abs.as_millis() as u64)
        {
            return Some("absolute");
        }
        if now
            >= record
                .last_active_at
                .saturating_add(c.idle_timeout.as_millis() as u64)
        {
            return Some("idle");
        }
        None
    }

    fn start_fresh(&self, st: &mut State, now: u64) {
        st.id = None;
        st.version = 0;
        st.base = Some(Record::new(now));
        st.data.clear();
    }

    /// Loads the session on first use. See the crate docs for the rules.
    async fn load(&self, st: &mut State) -> Result<(), SessionError> {
        if st.loaded {
            return Ok(());
        }
        let now = self.now();
        self.start_fresh(st, now);
        let Some(raw) = self.inner.incoming.clone() else {
            st.loaded = true;
            return Ok(());
        };
        let Some(sent) = SessionId::parse(&raw) else {
            inc(&self.metrics().malformed_ids);
            tracing::warn!(
                id_hash = %self.config().log_hasher.hash_str(&raw),
                "malformed session id; issuing a fresh session"
            );
            st.loaded = true;
            return Ok(());
        };
        let mut current = sent.clone();
        let mut fresh_read = false;
        let mut hops = 0;
        loop {
            let loaded = if fresh_read {
                self.store().load_fresh(&current).await?
            } else {
                self.store().load(&current).await?
            };
            let Some(Versioned { record, version }) = loaded else {
                // After a hop, the session the old id pointed to has ended meanwhile: not
                // suspicious, just over.
                if hops == 0 {
                    self.unknown(st, &sent);
                }
                break;
            };
            if let Some(MovedTo { id, at }) = &record.moved_to {
                let grace = self.config().grace_period.as_millis() as u64;
                match SessionId::parse(id) {
                    Some(next) if now < at.saturating_add(grace) && hops < MAX_HOPS => {
                        if hops == 0 {
                            inc(&self.metrics().grace_hits);
                        }
                        st.forwarded = true;
                        current = next;
                        hops += 1;
                        continue;
                    }
                    _ => {
                        self.unknown(st, &sent);
                        break;
                    }
                }
            }
            if let Some(reason) = self.expired(&record, now) {
                if !fresh_read {
                    // A cache may hold an old last_active_at; only the store itself may end a
                    // session.
                    fresh_read = true;
                    continue;
                }
                // Remove it now so that no other node or store TTL lets it live on.
                self.store().delete(&current).await?;
                inc(&self.metrics().expired);
                tracing::info!(id_hash = %self.hash(&current), reason, "session expired");
                break;
            }
            let renew_due = self
                .config()
                .renewal_timeout
                .is_some_and(|r| now >= record.id_issued_at.saturating_add(r.as_millis() as u64));
            // A forwarded request sees a record whose id was just issued, so renewal is never
            // due there; no special case needed.
            st.cycle = renew_due;
            st.data = record.data.clone();
            st.base = Some(record);
            st.version = version;
            st.id = Some(current);
            break;
        }
        st.loaded = true;
        Ok(())
    }

    fn unknown(&self, st: &mut State, sent: &SessionId) {
        inc(&self.metrics().unknown_ids);
        tracing::warn!(
            id_hash = %self.hash(sent),
            "unknown session id (forged, guessed, or expired); issuing a fresh session"
        );
        if !self.config().strict {
            st.adopt = Some(sent.clone());
        }
    }

    /// Writes what is pending: creates a new session, applies changes with compare-and-set,
    /// and replaces the id if asked.
    async fn persist(&self, st: &mut State) -> Result<(), SessionError> {
        if !st.loaded {
            return Ok(());
        }
        let now = self.now();
        if st.id.is_none() {
            if st.data.is_empty() {
                // Nothing worth storing; a new session comes into being with its first value.
                st.ops.clear();
                st.cycle = false;
                return Ok(());
            }
            return self.create(st, now).await;
        }
        if st.ops.is_empty() && !st.cycle {
            return Ok(());
        }
        let lock = self
            .inner
            .shared
            .write_locks
            .get(st.id.as_ref().expect("checked above"));
        let _queued = lock.lock().await;
        if !st.ops.is_empty() {
            self.write_ops(st, now).await?;
        }
        if st.cycle && st.id.is_some() {
            self.cycle(st, now).await?;
        }
        Ok(())
    }

    async fn create(&self, st: &mut State, now: u64) -> Result<(), SessionError> {
        let mut record = Record::new(now);
        record.data = st.data.clone();
        let ttl = self.ttl(&record, now);
        for _ in 0..CREATE_ATTEMPTS {
            let id = st.adopt.take().unwrap_or_else(SessionId::generate);
            if self.store().create(&id, &record, ttl).await? == CreateOutcome::Created {
                inc(&self.metrics().created);
                tracing::debug!(id_hash = %self.hash(&id), "session created");
                st.id = Some(id);
                st.version = 1;
                st.base = Some(record);
                st.ops.clear();
                st.cycle = false;
                st.send_id = true;
                st.refreshed = true;
                return Ok(());
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

    async fn write_ops(&self, st: &mut State, now: u64) -> Result<(), SessionError> {
        for attempt in 0..=self.config().max_retries {
            let id = st.id.clone().expect("write_ops needs a stored session");
            let mut record = st.base.clone().expect("loaded");
            record.data = st.data.clone();
            record.last_active_at = now;
            let ttl = self.ttl(&record, now);
            match self.store().update(&id, &record, st.version, ttl).await? {
                UpdateOutcome::Updated(version) => {
                    st.version = version;
                    st.base = Some(record);
                    st.ops.clear();
                    st.refreshed = true;
                    return Ok(());
                }
                UpdateOutcome::Missing => {
                    self.dropped_after_delete(st, &id);
                    return Ok(());
                }
                UpdateOutcome::Conflict => {
                    inc(&self.metrics().cas_retries);
                    let Some((id, latest)) = self.reload_following(&id).await? else {
                        self.dropped_after_delete(st, &id);
                        return Ok(());
                    };
                    if Some(&id) != st.id.as_ref() {
                        // Another request replaced the id meanwhile; write to the new record.
                        // Its response carries the new id to this same client.
                        st.id = Some(id);
                        st.forwarded = true;
                        st.cycle = false;
                    }
                    self.rebase(st, latest)?;
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

    /// The session was deleted (logout, log out everywhere) while this request worked on it.
    /// The delete wins: the changes are dropped rather than written back.
    fn dropped_after_delete(&self, st: &mut State, id: &SessionId) {
        inc(&self.metrics().writes_after_delete);
        tracing::info!(
            id_hash = %self.hash(id),
            "session ended while the request was in flight; its changes were dropped"
        );
        st.id = None;
        st.ops.clear();
        st.cycle = false;
        st.data.clear();
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
            match latest
                .record
                .moved_to
                .as_ref()
                .map(|m| SessionId::parse(&m.id))
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
    fn rebase(&self, st: &mut State, latest: Versioned) -> Result<(), SessionError> {
        let base = st.base.take().expect("loaded");
        let theirs = &latest.record.data;
        let mut data = theirs.clone();
        let mut conflicts = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (key, first) in &st.ops {
            if seen.contains(&key.as_str()) {
                continue;
            }
            seen.push(key);
            let ops = st.ops.iter().filter(|(k, _)| k == key).map(|(_, op)| op);
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
                    let mine = st.data.get(key);
                    if theirs.get(key) != base.data.get(key) && theirs.get(key) != mine {
                        conflicts.push(key.clone());
                    }
                    mine.cloned()
                }
            };
            match value {
                Some(v) => data.insert(key.clone(), v),
                None => data.remove(key),
            };
        }
        st.version = latest.version;
        if !conflicts.is_empty() {
            // Show the handler the other side's state and forget ours.
            st.data = latest.record.data.clone();
            st.base = Some(latest.record);
            st.ops.clear();
            st.cycle = false;
            inc(&self.metrics().conflicts);
            return Err(SessionError::Conflict(conflicts));
        }
        st.base = Some(latest.record);
        st.data = data;
        Ok(())
    }

    /// Replaces the id: a new record with the data, then the old record becomes a forwarding
    /// pointer that lives for the grace window. The pointer is written with compare-and-set, so
    /// a write that reached the old record after we read it is copied over, not lost.
    async fn cycle(&self, st: &mut State, now: u64) -> Result<(), SessionError> {
        let old = st.id.clone().expect("cycle needs a stored session");
        let base = st.base.clone().expect("loaded");
        let mut record = base.clone();
        record.data = st.data.clone();
        record.id_issued_at = now;
        record.last_active_at = now;
        record.moved_to = None;
        let ttl = self.ttl(&record, now);

        let mut new = None;
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate();
            if self.store().create(&id, &record, ttl).await? == CreateOutcome::Created {
                new = Some(id);
                break;
            }
        }
        let new = new.ok_or_else(|| StoreError::new("no free session id found"))?;
        let mut new_version: Version = 1;
        let grace = self.config().grace_period;

        for attempt in 0..=self.config().max_retries {
            let pointer = Record {
                data: Map::new(),
                created_at: base.created_at,
                id_issued_at: base.id_issued_at,
                last_active_at: now,
                moved_to: Some(MovedTo {
                    id: new.as_str().to_owned(),
                    at: now,
                }),
            };
            // A zero grace window still needs a moment for the pointer to exist; the layer's
            // own check (`at + grace`) already refuses it.
            let pointer_ttl = grace.max(Duration::from_millis(1));
            match self
                .store()
                .update(&old, &pointer, st.version, pointer_ttl)
                .await?
            {
                UpdateOutcome::Updated(_) => {
                    inc(&self.metrics().cycled);
                    tracing::info!(
                        old_hash = %self.hash(&old),
                        new_hash = %self.hash(&new),
                        "session id replaced"
                    );
                    st.id = Some(new);
                    st.version = new_version;
                    st.data = record.data.clone();
                    st.base = Some(record);
                    st.cycle = false;
                    st.forwarded = false;
                    st.send_id = true;
                    st.refreshed = true;
                    return Ok(());
                }
                UpdateOutcome::Missing => {
                    // Deleted meanwhile: the logout wins, and the copy must not outlive it.
                    self.store().delete(&new).await?;
                    self.dropped_after_delete(st, &old);
                    return Ok(());
                }
                UpdateOutcome::Conflict => {
                    inc(&self.metrics().cas_retries);
                    let Some(latest) = self.store().load_fresh(&old).await? else {
                        self.store().delete(&new).await?;
                        self.dropped_after_delete(st, &old);
                        return Ok(());
                    };
                    if let Some(moved) = &latest.record.moved_to {
                        // A concurrent request of the same client replaced the id first
                        // (typically two requests both due for renewal). Use its id.
                        self.store().delete(&new).await?;
                        let Some((id, current)) = self.reload_following(&old).await? else {
                            self.dropped_after_delete(st, &old);
                            return Ok(());
                        };
                        debug_assert!(SessionId::parse(&moved.id).is_some());
                        st.id = Some(id.clone());
                        st.version = current.version;
                        st.data = current.record.data.clone();
                        st.base = Some(current.record);
                        st.cycle = false;
                        st.forwarded = false;
                        st.send_id = true;
                        return Ok(());
                    }
                    // Someone wrote to the old record after we read it: carry that over to
                    // the new record (which nobody else knows yet, so this cannot race).
                    record.data = latest.record.data.clone();
                    st.version = latest.version;
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
        let mut st = self.inner.state.lock().await;
        st.finished = true;
        if !st.loaded {
            return Finish {
                action: IdAction::None,
                error: None,
            };
        }
        let mut error = None;
        if let Err(e) = self.persist(&mut st).await {
            if let SessionError::Store(err) = &e {
                inc(&self.metrics().store_errors);
                tracing::error!(error = %err, "session could not be saved");
            }
            error = Some(e);
        }
        if error.is_none()
            && let Some(id) = st.id.clone()
            && !st.refreshed
        {
            let now = self.now();
            let base = st.base.as_ref().expect("loaded");
            let interval = self.config().touch_interval.as_millis() as u64;
            if now >= base.last_active_at.saturating_add(interval) {
                let mut touched = base.clone();
                touched.last_active_at = now;
                let ttl = self.ttl(&touched, now);
                match self.store().touch(&id, now, ttl).await {
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
        let action = match (&st.id, error.is_some()) {
            (_, true) => IdAction::None,
            (Some(id), false) if st.send_id => IdAction::Set(id.clone()),
            (Some(id), false)
                if st.refreshed && !st.forwarded && self.config().cookie.max_age.is_some() =>
            {
                IdAction::Set(id.clone())
            }
            (None, false) if st.ended => IdAction::Remove,
            _ => IdAction::None,
        };
        Finish { action, error }
    }
}

/// Returned when a handler asks for a [`Session`] but no [`crate::SessionLayer`] is installed.
#[derive(Debug)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "session layer is not installed",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}
