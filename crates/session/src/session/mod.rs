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
//!
//! The handle and its methods live here; `state` holds the phases a session goes through,
//! `load` the first read, `write` saving and the end of the request, `error` the errors, and
//! `extract` the axum extractor.

#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::config::SessionConfig;
use crate::id::SessionId;
use crate::metrics::Metrics;
use crate::store::{Record, SessionStore};

mod error;
mod extract;
mod load;
mod state;
mod write;

pub use error::SessionError;
pub use extract::MissingSessionLayer;
pub use write::SaveOutcome;
use write::WriteLocks;

use state::{Backing, Cycle, Loaded, Op, State, UpdateFn};

/// See [`Session::ttl`].
const STORE_TTL_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What the layer shares with every session it creates.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) config: SessionConfig,
    pub(crate) metrics: Metrics,
    pub(crate) write_locks: WriteLocks,
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

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, incoming: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                incoming,
                state: Mutex::new(State::Unloaded),
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

    /// The loaded session, loading it on first use. The lock is held for the whole method
    /// that asked, so clones of the handle see each other's changes in a single order.
    async fn loaded<'s>(&self, state: &'s mut State) -> Result<&'s mut Loaded, SessionError> {
        loop {
            match state {
                State::Loaded(loaded) => return Ok(&mut **loaded),
                State::Finished => return Err(SessionError::Finished),
                State::Unloaded => *state = State::Loaded(Box::new(self.load().await?)),
            }
        }
    }

    /// Reads a value.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        match st.data.get(key) {
            None => Ok(None),
            Some(v) => Ok(Some(T::deserialize(v)?)),
        }
    }

    /// Sets a value. Setting the value a key already has is not a change.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value)?;
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        if st.data.get(key) != Some(&value) {
            st.data.insert(key.to_owned(), value.clone());
            st.record_op(key, Op::Set(value));
        }
        Ok(())
    }

    /// Removes a value, returning it.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        let Some(old) = st.data.remove(key) else {
            return Ok(None);
        };
        st.record_op(key, Op::Remove);
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
        let op: Arc<UpdateFn> = Arc::new(move |old: Option<&serde_json::Value>| {
            let old = old.map(|v| T::deserialize(v)).transpose()?;
            f(old).map(serde_json::to_value).transpose()
        });
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        let new = op(st.data.get(key))?;
        let out = new.as_ref().map(|v| T::deserialize(v)).transpose()?;
        if st.data.get(key) != new.as_ref() {
            match &new {
                Some(v) => st.data.insert(key.to_owned(), v.clone()),
                None => st.data.remove(key),
            };
            st.record_op(key, Op::Update(op));
        }
        Ok(out)
    }

    /// Removes every value (the session itself stays; see [`Session::delete`] for logout).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        let keys: Vec<String> = st.data.keys().cloned().collect();
        for key in keys {
            st.data.remove(&key);
            st.record_op(&key, Op::Remove);
        }
        Ok(())
    }

    /// Ends the session now (logout): the record is deleted from the store before this call
    /// returns, and the response tells the client to drop its id. A request still in flight
    /// with the same session cannot bring it back: its write finds no record and is dropped.
    /// Values set after this call start a new session with a new id. Through an id that
    /// `cycle_id` retired, only that retired record is deleted, never the session that
    /// replaced it.
    pub async fn delete(&self) -> Result<(), SessionError> {
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        if let Backing::Stored(stored) = &st.backing {
            self.store().delete(&stored.id).await?;
            tracing::info!(id_hash = %self.hash(&stored.id), "session deleted");
            // A stored session never holds an id to adopt: that is only kept for an unknown
            // id, and creating the record used it up.
            st.backing = Backing::Absent { adopt: None };
        }
        st.ended = true;
        st.data.clear();
        Ok(())
    }

    /// Gives the session a new id and keeps its data; call it on login and on any change of
    /// privilege (session-fixation defence). Takes effect when the session is saved.
    ///
    /// The old id loses its authority at once: this request's changes are written under the
    /// new id only, and the old id's record is retired with the state it had before this
    /// request (the pre-login state). For the configured grace window, requests that raced
    /// the change and still carry the old id see that state, read-only, and get no cookie;
    /// nothing they do reaches the new session, so whoever holds the old id (a fixation
    /// attacker) never sees the logged-in session. After the window the old id is unknown.
    /// A login through such a retired id (a double-submitted form) gets a session of its own
    /// under a fresh id.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        // Without a record there is no id to replace: the record created by the first save
        // gets a fresh id anyway.
        if let Backing::Stored(stored) = &mut st.backing {
            stored.cycle = Cycle::Privilege;
        }
        Ok(())
    }

    /// The id of the stored session, if it has been created. Treat it as a secret.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        let mut state = self.inner.state.lock().await;
        let st = self.loaded(&mut state).await?;
        Ok(match &st.backing {
            Backing::Stored(stored) => Some(stored.id.clone()),
            Backing::Absent { .. } => None,
        })
    }

    /// Writes pending changes (and a pending id change) now instead of after the handler, so
    /// the handler can react to the outcome. The layer saves anything left at the end anyway.
    ///
    /// [`SaveOutcome::Ended`] says the session ended elsewhere meanwhile (a logout, a
    /// revocation, a login that replaced its id) and the changes were dropped: a handler
    /// that must not report success for them (a form that was "saved") can tell the user
    /// so. A conflict of plain sets with a concurrent writer is an error
    /// ([`SessionError::Conflict`]), as is a store failure.
    pub async fn save(&self) -> Result<SaveOutcome, SessionError> {
        match &mut *self.inner.state.lock().await {
            State::Unloaded => Ok(SaveOutcome::Stored),
            State::Loaded(st) => self.persist(st).await,
            State::Finished => Err(SessionError::Finished),
        }
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
}
