//! The session layer: which keys are sessions, whose they are, and what an operator can do
//! about them (count, list, show, revoke), with lifecycle events for every node's caches.
//!
//! sessiond stores sessions as clients write them, byte for byte; this layer only looks.
//! The stores' observer (`changes`) hands it every applied change, every expiry and every
//! read, under the changed key's shard lock. A key whose prefix names a configured family
//! (`sessiond_session_format`: php-memcached, phpredis, express-session, the middleware, or
//! the operator's own) is decoded just enough to find its user, and the [`index`] is updated
//! in the same step, so it is never behind the store and needs no events to catch up (the
//! way per-user indexes kept beside a store drift). It is charged to the memory budget and
//! not journaled: after a restart [`Sessions::rebuild`] derives it from the recovered
//! keyspace.
//!
//! Revocation is the store's (`Store::revoke`): the key is removed and a write that would
//! create it again is refused until the session's old deadline, so a request of that user
//! still in flight on another app node cannot log them back in. A per-user limit
//! (`--max-sessions-per-user`) picks the oldest session when a write goes over it; the
//! revocation is made by the connection that wrote, before its reply ([`Sessions::settle`]),
//! because the observer may not lock another shard.
//!
//! Events (`created`, `updated`, `destroyed`, `expired`, `revoked`) are JSON messages on the
//! channel [`EVENTS_CHANNEL`], built only when someone listens; a flush is one `flushed`
//! event for its database, not one per session.

pub(crate) mod index;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sessiond_session_format::{Families, Family, Identity};
use sessiond_store::{Budget, DerivedCharge, ElementOp, Kind, Mutation, Store, Value};

use crate::exec::resp::pubsub::PubSub;
use index::{Counts, Index, Meta, Name, Position, SessionName};

/// The pub/sub channel lifecycle events are published on.
pub(crate) const EVENTS_CHANNEL: &str = "sessiond:sessions";

/// What the session layer is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The families, in order (presets first).
    pub families: Vec<Family>,
    /// At most this many sessions per user and family; the oldest goes when a write
    /// exceeds it.
    pub max_per_user: Option<u32>,
    /// How long a revoked session with no deadline stays revoked (ms).
    pub revocation_hold: u64,
}

/// A session as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionInfo {
    /// The database.
    pub db: u8,
    /// The whole key.
    pub key: Vec<u8>,
    /// The session id: the key without the family's prefix and suffix.
    pub id: Vec<u8>,
    /// The family's name.
    pub family: String,
    /// The user, if the session names one.
    pub user: Option<String>,
    /// Created (Unix ms; after a restart, the recovery's time).
    pub created_at: u64,
    /// Last written.
    pub written_at: u64,
    /// Last read, touched or written.
    pub seen_at: u64,
    /// The deadline.
    pub expires_at: Option<u64>,
}

/// How many recent lifecycle events [`Sessions::recent`] keeps.
pub(crate) const RECENT_EVENTS: usize = 50;
/// How many per-minute samples [`Sessions::history`] keeps: the last hour.
pub(crate) const HISTORY_MINUTES: usize = 60;

/// A lifecycle event as the admin page shows it: the key only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecentEvent {
    /// When (Unix ms).
    pub at: u64,
    /// `created`, `destroyed`, `expired` or `revoked` (not `updated`: one per write).
    pub event: &'static str,
    /// The database.
    pub db: u8,
    /// The family's name.
    pub family: String,
    /// The user, if the session named one.
    pub user: Option<String>,
    /// The key's hash (`http::key_hash`), never the key.
    pub key_hash: String,
}

/// The online counts at one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Unix minute (ms / 60 000).
    pub minute: u64,
    /// Sessions.
    pub sessions: u64,
    /// Distinct users.
    pub users: u64,
}

/// How many sessions a listing (`SESSION.LIST`, `GET /api/v1/users/{user}/sessions`) gives
/// when the caller names no limit.
pub(crate) const LIST_DEFAULT: usize = 100;
/// The most sessions one page of a listing gives: with the index's per-session fields, a
/// page stays under about 1 MiB of JSON or RESP (keys are bounded by the request limits).
pub(crate) const LIST_MAX: usize = 1000;

/// A page of a user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// The sessions, oldest first.
    pub sessions: Vec<SessionInfo>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Where a page of a user's sessions starts: after the last one listed, by creation time
/// and name. A place, not a count, so sessions created or removed between two pages make
/// none of the others skipped or listed twice. Its text is
/// `<created_at>-<db>-<key in hex>`, opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor(Position);

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-", self.0.created_at, self.0.db)?;
        for byte in &self.0.key {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(text: &str) -> Result<Cursor, BadCursor> {
        let mut parts = text.splitn(3, '-');
        let (Some(at), Some(db), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(BadCursor);
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(at)
            || !digits(db)
            || hex.len() % 2 != 0
            || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(BadCursor);
        }
        let key = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).map_err(|_| BadCursor)?;
                u8::from_str_radix(pair, 16).map_err(|_| BadCursor)
            })
            .collect::<Result<Vec<u8>, BadCursor>>()?;
        Ok(Cursor(Position {
            created_at: at.parse().map_err(|_| BadCursor)?,
            db: db.parse().map_err(|_| BadCursor)?,
            key,
        }))
    }
}

/// A cursor that is not one a listing gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadCursor;

/// A family name that is not configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownFamily;

/// Counters the operator sees (`INFO sessions`, metrics).
#[derive(Debug, Default)]
pub(crate) struct SessionStats {
    /// Session values that did not decode (kept and served as written; no user).
    pub undecodable: AtomicU64,
    /// Sessions revoked, by an operator or a per-user limit.
    pub revoked: AtomicU64,
    /// Of those, revoked by the per-user limit.
    pub revoked_by_limit: AtomicU64,
}

/// The session layer of one server. See the module documentation.
pub(crate) struct Sessions {
    families: Families,
    index: Index,
    /// The index's size as charged to the budget; followed by [`Sessions::sync_charge`].
    charge: Mutex<DerivedCharge>,
    /// What `charge` holds, readable without its lock.
    charged: AtomicU64,
    pubsub: Arc<PubSub>,
    max_per_user: Option<u32>,
    revocation_hold: u64,
    /// Sessions the per-user limit picked, revoked by the next [`Sessions::settle`].
    pending: Mutex<Vec<SessionName>>,
    has_pending: AtomicBool,
    /// The last [`RECENT_EVENTS`] lifecycle events, oldest first (the admin page).
    recent: Mutex<VecDeque<RecentEvent>>,
    /// One sample per minute over the last hour, oldest first (the admin page's chart).
    history: Mutex<VecDeque<Sample>>,
    /// The minute of the last sample, so the expirer's tick costs one load in between.
    sampled_minute: AtomicU64,
    pub stats: SessionStats,
}

impl Sessions {
    /// The layer for `settings`, charging `budget` and publishing on `pubsub`.
    pub fn new(settings: Settings, budget: Arc<Budget>, pubsub: Arc<PubSub>) -> Sessions {
        let families = Families::new(settings.families).expect("validated by the configuration");
        Sessions {
            index: Index::new(families.len()),
            charge: Mutex::new(DerivedCharge::new(budget)),
            charged: AtomicU64::new(0),
            families,
            pubsub,
            max_per_user: settings.max_per_user,
            revocation_hold: settings.revocation_hold,
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
            history: Mutex::new(VecDeque::with_capacity(HISTORY_MINUTES)),
            sampled_minute: AtomicU64::new(0),
            stats: SessionStats::default(),
        }
    }

    /// Moves the budget's charge to the index's size, when it changed (a session or user
    /// came or went): one atomic load and compare otherwise.
    fn sync_charge(&self) {
        if self.index.bytes() == self.charged.load(Ordering::Relaxed) {
            return;
        }
        let mut charge = self.charge.lock().unwrap_or_else(|e| e.into_inner());
        // Read again under the lock, so the last of two racing callers sets the latest size.
        let bytes = self.index.bytes();
        charge.set(bytes);
        self.charged.store(bytes, Ordering::Relaxed);
    }

    /// The configured families.
    pub fn families(&self) -> &Families {
        &self.families
    }

    /// The position of the family called `name`; `None` names every family.
    pub fn family_index(&self, name: Option<&[u8]>) -> Result<Option<u16>, UnknownFamily> {
        let Some(name) = name else { return Ok(None) };
        self.families
            .iter()
            .position(|f| f.name.as_bytes().eq_ignore_ascii_case(name))
            .map(|i| Some(i as u16))
            .ok_or(UnknownFamily)
    }

    // The observer's side: called under the changed key's shard lock.

    /// A change the store of database `db` applied.
    pub fn applied(&self, db: u8, mutation: &Mutation<'_>, now: u64) {
        match *mutation {
            Mutation::Put {
                key,
                value,
                deadline,
                ..
            } => {
                if let Some((family, found)) = self.families.classify(key) {
                    match self.user_of(found, value) {
                        Some(user) => {
                            self.put(db, key, family as u16, user.as_deref(), deadline, now)
                        }
                        None => self.forget(db, key, "destroyed", now),
                    }
                }
            }
            Mutation::PutCollection {
                key,
                kind,
                members,
                deadline,
            } => {
                if let Some((family, found)) = self.families.classify(key) {
                    let user = match (&found.hash_field, kind) {
                        (Some(field), Kind::Hash) => match Value::hash_field_in(members, field) {
                            Some(data) => self.user_of(found, data),
                            None => Some(None),
                        },
                        _ => Some(None),
                    };
                    match user {
                        Some(user) => {
                            self.put(db, key, family as u16, user.as_deref(), deadline, now)
                        }
                        None => self.forget(db, key, "destroyed", now),
                    }
                }
            }
            Mutation::Element { key, op } => {
                if let Some((family, found)) = self.families.classify(key) {
                    match op {
                        ElementOp::HashSet { field, value }
                            if found.hash_field.as_deref() == Some(field) =>
                        {
                            let expires =
                                self.index.get(Name { db, key }).and_then(|m| m.expires_at);
                            match self.user_of(found, value) {
                                Some(user) => {
                                    self.put(db, key, family as u16, user.as_deref(), expires, now)
                                }
                                None => self.forget(db, key, "destroyed", now),
                            }
                        }
                        _ => self.index.written(Name { db, key }, now),
                    }
                }
            }
            Mutation::Remove { key } => self.forget(db, key, "destroyed", now),
            Mutation::Revoke { key, .. } => self.forget(db, key, "revoked", now),
            // memcached's meta marks change neither the value nor the deadline.
            Mutation::Marks { .. } => {}
            Mutation::Deadline { key, deadline } => {
                if self.families.classify(key).is_some() {
                    self.index.retime(Name { db, key }, deadline, now);
                }
            }
            Mutation::Clear => {
                self.index.clear(db);
                self.sync_charge();
                self.publish_flushed(db, now);
            }
        }
    }

    /// A key of database `db` removed because its deadline passed.
    pub fn expired(&self, db: u8, key: &[u8], now: u64) {
        self.forget(db, key, "expired", now);
    }

    /// A key of database `db` found live by a read.
    pub fn read(&self, db: u8, key: &[u8], now: u64) {
        if self.families.classify(key).is_some() {
            self.index.seen(Name { db, key }, now);
        }
    }

    /// The user `value` names in `family` (`Some(None)`: a session without one), or `None`
    /// when the value is not a session at all (a sessiond record with a `kind`: a token, a
    /// revocation). A value that does not decode is counted and is a session without a
    /// user.
    fn user_of(&self, family: &Family, value: &[u8]) -> Option<Option<String>> {
        match family.identify(value) {
            Ok(Identity::Session { user }) => Some(user),
            Ok(Identity::NotSession { .. }) => None,
            Err(_) => {
                self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                Some(None)
            }
        }
    }

    fn put(
        &self,
        db: u8,
        key: &[u8],
        family: u16,
        user: Option<&str>,
        expires_at: Option<u64>,
        now: u64,
    ) {
        let name = Name { db, key };
        let put = self.index.put(name, family, user, expires_at, now);
        if let (Some(max), Some(user)) = (self.max_per_user, user)
            && put.user_linked
            && self.index.user_count(user, family) > max
            && let Some(oldest) = self.index.oldest(user, family, name)
        {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(oldest);
            self.has_pending.store(true, Ordering::Release);
        }
        self.sync_charge();
        let event = if put.created { "created" } else { "updated" };
        self.publish(event, db, key, family, user, now);
    }

    fn forget(&self, db: u8, key: &[u8], event: &'static str, now: u64) {
        let Some((family, _)) = self.families.classify(key) else {
            return;
        };
        let removed = self.index.remove(Name { db, key });
        self.sync_charge();
        if let Some(meta) = removed {
            self.publish(event, db, key, family as u16, meta.user.as_deref(), now);
        }
    }

    /// Publishes a lifecycle event, if anyone listens, and keeps it (but not `updated`, one
    /// per write) among the recent ones with the key hashed.
    fn publish(
        &self,
        event: &'static str,
        db: u8,
        key: &[u8],
        family: u16,
        user: Option<&str>,
        now: u64,
    ) {
        if event != "updated" {
            let kept = RecentEvent {
                at: now,
                event,
                db,
                family: self.families.get(family as usize).name.clone(),
                user: user.map(str::to_owned),
                key_hash: crate::http::key_hash(key),
            };
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(kept);
        }
        if !self.pubsub.listened(EVENTS_CHANNEL.as_bytes()) {
            return;
        }
        let message = serde_json::json!({
            "event": event,
            "family": self.families.get(family as usize).name,
            "db": db,
            "key": String::from_utf8_lossy(key),
            "id": String::from_utf8_lossy(self.families.id(family as usize, key)),
            "user": user,
            "at": now,
        });
        self.pubsub
            .publish(EVENTS_CHANNEL.as_bytes(), message.to_string().as_bytes());
    }

    /// Publishes `{"event": "flushed", "db", "at"}`, if anyone listens: one event for a
    /// whole database, not one per session (a flush of millions of sessions would otherwise
    /// flood every subscriber), and published even if the index held no session of that
    /// database, since a near-cache (`crates/session`'s `CachedStore`) may hold sessions the
    /// server files under no family; it drops everything on it.
    fn publish_flushed(&self, db: u8, now: u64) {
        if !self.pubsub.listened(EVENTS_CHANNEL.as_bytes()) {
            return;
        }
        let message = serde_json::json!({ "event": "flushed", "db": db, "at": now });
        self.pubsub
            .publish(EVENTS_CHANNEL.as_bytes(), message.to_string().as_bytes());
    }

    // Recovery.

    /// Derives the index from the keyspace of `databases` (after recovery, which replays
    /// without an observer). Every session's times are `now`.
    pub fn rebuild(&self, databases: &[Arc<Store>], now: u64) {
        for (db, store) in databases.iter().enumerate() {
            for shard in 0..sessiond_store::SHARDS {
                for (key, entry) in store.live_entries_in_shard(shard, now) {
                    let Some((family, found)) = self.families.classify(&key) else {
                        continue;
                    };
                    let user = match session_data(found, &entry.value) {
                        Some(data) => self.user_of(found, &data),
                        None => Some(None),
                    };
                    let Some(user) = user else { continue };
                    let name = Name {
                        db: db as u8,
                        key: &key,
                    };
                    self.index
                        .put(name, family as u16, user.as_deref(), entry.deadline, now);
                }
            }
        }
        self.sync_charge();
    }

    // Operations (SESSION.* commands, and the HTTP API).

    /// Sessions and distinct users, in all families or in one.
    pub fn counts(&self, family: Option<u16>) -> Counts {
        self.index.counts(family)
    }

    /// A page of the sessions of `user` (in one family, or all), oldest first: at most
    /// `limit` of those after `after`, and where the next page starts if more follow.
    pub fn list(
        &self,
        user: &str,
        family: Option<u16>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Page {
        let (found, more) = self
            .index
            .user_sessions(user, family, after.map(|c| &c.0), limit);
        let next = match found.last() {
            Some((name, meta)) if more => Some(Cursor(Position {
                created_at: meta.created_at,
                db: name.db,
                key: name.key.to_vec(),
            })),
            _ => None,
        };
        Page {
            sessions: found
                .into_iter()
                .map(|(name, meta)| self.info(name.as_name(), &meta))
                .collect(),
            next,
        }
    }

    /// What the index knows of the session under `key` in database `db`.
    pub fn get(&self, db: u8, key: &[u8]) -> Option<SessionInfo> {
        let meta = self.index.get(Name { db, key })?;
        Some(self.info(Name { db, key }, &meta))
    }

    /// The session's data decoded for an operator: its family's format as JSON, or why it
    /// does not decode. `None` if the key is not a live session.
    pub fn show(
        &self,
        databases: &[Arc<Store>],
        db: u8,
        key: &[u8],
        now: u64,
    ) -> Option<(SessionInfo, Result<serde_json::Value, String>)> {
        let info = self.get(db, key)?;
        let (_, found) = self.families.classify(key)?;
        let entry = databases.get(db as usize)?.peek(key, now)?;
        let data = session_data(found, &entry.value);
        let decoded = match data {
            Some(bytes) => found.decode(&bytes).map_err(|e| e.to_string()),
            None => Err("the session holds no data field".to_string()),
        };
        Some((info, decoded))
    }

    /// Revokes the session under `key` in database `db`: removed, and its re-creation
    /// refused until its old deadline. Returns whether there was one.
    pub fn revoke(&self, databases: &[Arc<Store>], db: u8, key: &[u8], now: u64) -> bool {
        let Some(store) = databases.get(db as usize) else {
            return false;
        };
        let revoked = store.revoke(key, self.revocation_hold, now).is_some();
        if revoked {
            self.stats.revoked.fetch_add(1, Ordering::Relaxed);
        }
        revoked
    }

    /// Revokes every session of `user` (in one family, or all), except the one under
    /// `except` ("log out my other devices"). Returns how many were revoked.
    pub fn revoke_user(
        &self,
        databases: &[Arc<Store>],
        user: &str,
        family: Option<u16>,
        except: Option<(u8, &[u8])>,
        now: u64,
    ) -> u64 {
        let (targets, _) = self.index.user_sessions(user, family, None, usize::MAX);
        let mut revoked = 0;
        for (name, _) in targets {
            if except == Some((name.db, &name.key[..])) {
                continue;
            }
            if self.revoke(databases, name.db, &name.key, now) {
                revoked += 1;
            }
        }
        revoked
    }

    /// Revokes what the per-user limit picked since the last call. The connection that
    /// wrote calls this before it replies, so the write and the revocation it caused are
    /// acknowledged together. One atomic load when nothing is pending.
    pub fn settle(&self, databases: &[Arc<Store>], now: u64) {
        if !self.has_pending.swap(false, Ordering::Acquire) {
            return;
        }
        let picked = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for name in picked {
            if self.revoke(databases, name.db, &name.key, now) {
                self.stats.revoked_by_limit.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The recent lifecycle events, newest first.
    pub fn recent(&self) -> Vec<RecentEvent> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().cloned().collect()
    }

    /// Records the online counts for the minute of `now`, once per minute (the expirer's
    /// tick calls this: one atomic load until the minute changes), or again when `force`
    /// (the admin page, so its chart ends at the current counts).
    pub fn sample(&self, now: u64, force: bool) {
        let minute = now / 60_000;
        if !force && self.sampled_minute.load(Ordering::Relaxed) == minute {
            return;
        }
        self.sampled_minute.store(minute, Ordering::Relaxed);
        let counts = self.counts(None);
        let sample = Sample {
            minute,
            sessions: counts.sessions,
            users: counts.users,
        };
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        match history.back_mut() {
            Some(last) if last.minute == minute => *last = sample,
            _ => history.push_back(sample),
        }
        while history
            .front()
            .is_some_and(|s| s.minute + (HISTORY_MINUTES as u64) <= minute)
        {
            history.pop_front();
        }
    }

    /// The samples of the last hour, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.iter().copied().collect()
    }

    fn info(&self, name: Name<'_>, meta: &Meta) -> SessionInfo {
        let key = name.key;
        SessionInfo {
            db: name.db,
            key: key.to_vec(),
            id: self.families.id(meta.family as usize, key).to_vec(),
            family: self.families.get(meta.family as usize).name.clone(),
            user: meta.user.as_deref().map(str::to_owned),
            created_at: meta.created_at,
            written_at: meta.written_at,
            seen_at: meta.seen_at,
            expires_at: meta.expires_at,
        }
    }

    /// Every indexed session, for comparisons with the store in tests.
    #[cfg(test)]
    pub fn snapshot(&self) -> Vec<(SessionName, Meta)> {
        self.index.all()
    }

    /// The index's estimated size, charged to the budget.
    pub fn bytes(&self) -> u64 {
        self.charged.load(Ordering::Relaxed)
    }
}

/// The bytes holding a session's data in a stored value: a string whole, or the family's
/// field of a hash; `None` for anything else.
fn session_data(family: &Family, value: &Value) -> Option<sessiond_store::Bytes> {
    match (value, &family.hash_field) {
        (Value::Str(value), _) => Some(value.clone()),
        (Value::Hash(hash), Some(field)) => hash.get(field).cloned(),
        _ => None,
    }
}
