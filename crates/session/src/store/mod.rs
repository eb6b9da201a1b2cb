//! The store contract: versioned session records with create, load, compare-and-set update,
//! touch and delete, and the stores that implement it.
//!
//! The contract exists to make two bugs impossible, whatever the store:
//! - **lost updates**: [`SessionStore::update`] succeeds only if the record is still at the
//!   version the caller loaded; otherwise the caller must reload and re-apply its changes;
//! - **resurrection**: nothing but [`SessionStore::create`] makes a record exist, and `create`
//!   fails if the id is taken. An update or touch of a deleted session reports
//!   [`UpdateOutcome::Missing`] instead of writing it back.
//!
//! There is deliberately no "save" that upserts. The store knows nothing of cookies, timeouts
//! or merging; the TTL it is given only bounds how long garbage lives (see [`crate::clock`]).

#![deny(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::SessionId;

pub mod cached;
#[cfg(all(feature = "files", unix))]
pub mod file;
#[cfg(feature = "memcached")]
pub mod ketama;
#[cfg(feature = "memcached")]
pub mod memcached;
pub mod memory;
#[cfg(feature = "php")]
pub mod php;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sql")]
pub mod sql;

/// The boxed future every store method returns; boxing keeps [`SessionStore`] usable as a
/// trait object, so a layer, a near-cache and an app can share one `Arc<dyn SessionStore>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A record version. A new record has version 1 and every successful update adds one.
pub type Version = u64;

/// What a store keeps per session. Timestamps are milliseconds since the Unix epoch as read
/// from the layer's [`crate::Clock`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The application's key-value data.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// When the session was created; the absolute timeout counts from here, and cycling the
    /// id keeps it.
    pub created_at: u64,
    /// When the current id was issued; the renewal timeout counts from here.
    pub id_issued_at: u64,
    /// The last request that used the session; the idle timeout counts from here. Stores may
    /// keep it apart from the rest so that [`SessionStore::touch`] need not rewrite the data.
    pub last_active_at: u64,
    /// Set on the record of an id that was cycled: the id that replaced it. Such a record is a
    /// forwarding pointer that lives for the grace window only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<MovedTo>,
    /// Set on the record of an id that [`crate::Session::cycle_id`] replaced (a change of
    /// privilege, such as a login): when it was replaced. Such a record keeps the session's
    /// state from before that request, names no successor, and is served read-only for the
    /// grace window, so the replaced id never reaches the new session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<u64>,
    /// What the record is, when it is not a session. The layer writes `None`; other users of
    /// a shared store (sessiond-tokens' revocations, tickets and indexes) name their kind
    /// here, and the layer never loads a record with a kind as a session, whatever id a
    /// client sends. A tag in the record rather than a key prefix, because every store keeps
    /// the record whole (the conformance suite checks it round-trips) while key spaces differ
    /// per store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The forwarding pointer left behind by a cycled id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovedTo {
    /// The id that replaced this one.
    pub id: String,
    /// When it was replaced; the grace window counts from here.
    pub at: u64,
}

impl Record {
    /// An empty record for a session created at `now`.
    pub fn new(now: u64) -> Self {
        Self {
            data: Map::new(),
            created_at: now,
            id_issued_at: now,
            last_active_at: now,
            moved_to: None,
            retired_at: None,
            kind: None,
        }
    }

    /// This record tagged as a `kind` of record that is not a session (see [`Record::kind`]).
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Whether this is a session record (no [`Record::kind`]).
    pub fn is_session(&self) -> bool {
        self.kind.is_none()
    }
}

/// A loaded record and the version to pass to [`SessionStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The record.
    pub record: Record,
    /// Its version.
    pub version: Version,
}

/// The result of [`SessionStore::create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The record now exists at version 1.
    Created,
    /// The id was already taken; nothing was written.
    Exists,
}

/// The result of [`SessionStore::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; the record is now at this version.
    Updated(Version),
    /// The record is at another version; nothing was written.
    Conflict,
    /// The record does not exist (deleted or expired); nothing was written.
    Missing,
}

/// A store failure: the store could not be reached or answered something unexpected.
/// Conflicts and missing records are outcomes, not errors.
#[derive(Debug)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error with a message for logs. Must not contain session ids.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store error: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// How a store names a session's key on the server: `<prefix><id><suffix>`. The near-cache
/// ([`cached::CachedStore`]) uses it to recognise its sessions in the lifecycle events that
/// sessiond publishes (`sessiond:sessions`), which name sessions by their whole key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// What every key starts with: `sess:{` for `RedisStore` with its
    /// default prefix, the configured prefix for `MemcachedStore` (`memc.sess.key.` to share
    /// PHP's sessions).
    pub prefix: String,
    /// What every key ends with: `}` for the RESP store, nothing for memcached.
    pub suffix: String,
}

impl KeyLayout {
    /// The id that `key` names under this layout, or `None` if `key` is not laid out this
    /// way (another prefix or suffix, or nothing in between).
    pub fn id_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        let id = key
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())?;
        (!id.is_empty()).then_some(id)
    }
}

/// A session store. See the module docs for the guarantees every implementation must give.
///
/// `ttl` arguments tell the store when it may forget the record; it is computed by the layer
/// from the session's timeouts and is never shorter than what the layer enforces itself.
pub trait SessionStore: Send + Sync + 'static {
    /// Creates the record at version 1, or reports [`CreateOutcome::Exists`] without writing.
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome>;

    /// Loads the record and its version, or `None` if there is none.
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>>;

    /// As [`SessionStore::load`], but bypassing any cache. The layer calls this before a
    /// destructive decision (expiring a session) and after a conflict. Stores without a cache
    /// keep the default.
    fn load_fresh<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        self.load(id)
    }

    /// Replaces the record if it is at version `expected`.
    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome>;

    /// Sets `last_active_at` (never moving it backwards) and the TTL of an existing record,
    /// without changing its version or data. Returns `false` if the record does not exist.
    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Deletes the record. Returns whether it existed.
    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool>;

    /// The version [`SessionStore::create`] gives `record`. Version 1 (the default) for
    /// stores that count versions; a store whose version is derived from the stored bytes
    /// (the PHP session store: PHP writes no version) computes it from the record.
    fn created_version(&self, record: &Record) -> Version {
        let _ = record;
        1
    }

    /// How this store names its keys on a server that publishes session lifecycle events
    /// (sessiond), so that a near-cache can tell which events are about its sessions. `None`
    /// (the default) for stores whose records are not keys on such a server; a near-cache
    /// over one then matches events by their `id` alone.
    fn key_layout(&self) -> Option<KeyLayout> {
        None
    }
}

impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        (**self).create(id, record, ttl)
    }
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        (**self).load(id)
    }
    fn load_fresh<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        (**self).load_fresh(id)
    }
    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome> {
        (**self).update(id, record, expected, ttl)
    }
    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        (**self).touch(id, last_active_at, ttl)
    }
    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        (**self).delete(id)
    }
    fn key_layout(&self) -> Option<KeyLayout> {
        (**self).key_layout()
    }
    fn created_version(&self, record: &Record) -> Version {
        (**self).created_version(record)
    }
}
