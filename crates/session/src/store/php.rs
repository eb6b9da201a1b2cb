//! The PHP session store: the sessions a PHP app keeps with php-memcached's session handler
//! (`session.save_handler = memcached`), read and written by a Rust app, on the same
//! memcached-protocol servers (memcached or sessiond), under the same keys, in PHP's own
//! format, behind php-memcached's own lock.
//!
//! # Keys and placement
//!
//! A session is the string `<prefix><id>` (`memcached.sess_prefix`, default
//! `memc.sess.key.`), placed on the ketama ring by the id alone, as libmemcached places a
//! key under a namespace; its lock is `<prefix>lock.<id>`, placed by `lock.<id>` (so usually
//! on another server). With `replicas = 1` (`memcached.sess_number_of_replicas`), every
//! write goes to the owner and the next server in the configured list, reads go to the
//! first of them that answers, and deletes go to both, as libmemcached does. Placement,
//! failover and dead-server marking are [`MemcachedStore`]'s.
//!
//! # The value
//!
//! PHP's `session.serialize_handler` format, `php` or `php_serialize`, through
//! `sessiond-session-format`'s [`PhpSession`]: the Rust app sees the variables JSON can hold;
//! the others (objects, enum cases, references, non-UTF-8 strings) are kept as PHP wrote
//! them and written back byte for byte. The value carries no version, so a session's
//! version is a digest of its bytes: `update` compares the digest of what it reads (under
//! the lock) with the one it loaded, and any write in between (PHP's or Rust's) is a
//! conflict the layer resolves by reloading and re-applying its changes.
//!
//! # The lock
//!
//! php-memcached locks a session from `session_start()` to the end of the request: it
//! `add`s `<prefix>lock.<id>` (value `1`, expiring after `memcached.sess_lock_expire`, or
//! `max_execution_time` when that is 0), retrying `sess_lock_retries` times with a wait that
//! starts at `sess_lock_wait_min` ms and doubles up to `sess_lock_wait_max` ms, and
//! `delete`s it when done. This store takes the same lock, with the same rules, around each
//! read-compare-write (`update`) and around `delete`, so a PHP request and a Rust write never
//! interleave; when the wait gives up, the write fails with a store error (the layer answers 500)
//! instead of writing over PHP. A Rust process that dies holding the lock leaves it to
//! expire after [`PhpSessionConfig::lock_expire`], as a PHP process killed mid-request does.
//! Loads take no lock: a load that races a PHP request may see the state before it, and the
//! write that follows then finds another digest and starts again.
//!
//! # Timestamps and timeouts
//!
//! A PHP session has no creation or activity time, only the key's TTL, which PHP sets to
//! `session.gc_maxlifetime` on every write and refreshes on every request (lazy write's
//! touch). This store does the same: writes and touches use
//! [`PhpSessionConfig::gc_maxlifetime`] (the layer's TTL is ignored), and each load is a
//! `gat` that restarts it on the session's owner. So a session that exists is a session that
//! has not been idle for `gc_maxlifetime`: loaded records report the load's time as
//! `created_at`, `id_issued_at` and `last_active_at`, which makes the layer's idle check
//! pass; use [`PhpSessionConfig::session_config`], which turns off the absolute and renewal
//! timeouts (PHP has neither, and nothing in PHP's value could carry them).
//!
//! A record the layer retires or forwards (`cycle_id`, renewal) is deleted, as
//! `session_regenerate_id(true)` does: a request still carrying the old id gets a fresh
//! session, not the old state. A record with a [`Record::kind`] is refused.

#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sessiond_proto_memcache::text::{TextReply, TextRequest};
use sessiond_proto_memcache::{Command, StoreMode};
use sessiond_session_format::{PhpSession, SerializeHandler};
use sha2::{Digest as _, Sha256};

use super::memcached::{CallError, MemcachedConfig, MemcachedStore, exptime, status};
use super::{
    CreateOutcome, KeyLayout, Record, SessionStore, StoreError, StoreFuture, UpdateOutcome,
    Version, Versioned,
};
use crate::clock::{Clock, SystemClock};
use crate::config::SessionConfig;
use crate::id::{IdFormat, SessionId};

/// Configuration of a [`PhpSessionStore`]: the php.ini settings it must agree with.
#[derive(Clone)]
pub struct PhpSessionConfig {
    /// The ring (`session.save_path`, `memcached.sess_consistent_hash_type`,
    /// `memcached.sess_number_of_replicas`, `memcached.sess_prefix`); its prefix defaults
    /// here to `memc.sess.key.`.
    pub memcached: MemcachedConfig,
    /// `session.serialize_handler`: `php` (PHP's default) or `php_serialize`.
    pub serialize_handler: SerializeHandler,
    /// `session.gc_maxlifetime`: the TTL of every write and touch. Default 1440 s (PHP's).
    /// Zero means no expiry, as in php-memcached.
    pub gc_maxlifetime: Duration,
    /// `memcached.sess_locking`. Default on; off only if PHP's is off too.
    pub locking: bool,
    /// `memcached.sess_lock_wait_min`. Default 150 ms.
    pub lock_wait_min: Duration,
    /// `memcached.sess_lock_wait_max`. Default 150 ms.
    pub lock_wait_max: Duration,
    /// `memcached.sess_lock_retries`. Default 5.
    pub lock_retries: u32,
    /// How long a lock this store takes lives if never released (`memcached.sess_lock_expire`,
    /// or PHP's `max_execution_time` when that is 0). Default 30 s, PHP-FPM's
    /// `max_execution_time`. Whole seconds, rounded up; zero is "never" (as PHP's CLI, whose
    /// `max_execution_time` is 0), which leaves a dead holder's lock in place for good.
    pub lock_expire: Duration,
    /// What a loaded record's timestamps say (see the module docs): give it the layer's.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PhpSessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhpSessionConfig")
            .field("memcached", &self.memcached)
            .field("serialize_handler", &self.serialize_handler)
            .field("gc_maxlifetime", &self.gc_maxlifetime)
            .field("locking", &self.locking)
            .field("lock_wait_min", &self.lock_wait_min)
            .field("lock_wait_max", &self.lock_wait_max)
            .field("lock_retries", &self.lock_retries)
            .field("lock_expire", &self.lock_expire)
            .finish_non_exhaustive()
    }
}

impl PhpSessionConfig {
    /// php-memcached's defaults over the servers of a PHP `session.save_path`.
    pub fn from_save_path(save_path: &str) -> Result<Self, StoreError> {
        let mut memcached = MemcachedConfig::from_save_path(save_path)?;
        memcached.prefix = "memc.sess.key.".to_owned();
        Ok(Self {
            memcached,
            serialize_handler: SerializeHandler::Php,
            gc_maxlifetime: Duration::from_secs(1440),
            locking: true,
            lock_wait_min: Duration::from_millis(150),
            lock_wait_max: Duration::from_millis(150),
            lock_retries: 5,
            lock_expire: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        })
    }

    /// A layer configuration that matches PHP's session module: cookie `PHPSESSID` (not
    /// `Secure`, as PHP's default; set it for HTTPS sites), PHP-style ids, strict mode, idle
    /// timeout `gc_maxlifetime`, no absolute or renewal timeout, no grace window, and this
    /// configuration's clock. Adjust the cookie to match `session.cookie_*`.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig::default()
            .with_cookie_name("PHPSESSID")
            .with_secure(false)
            .with_id_format(IdFormat::Php)
            // No expiry in the store: no idle timeout worth the name either (a century).
            .with_idle_timeout(if self.gc_maxlifetime.is_zero() {
                Duration::from_secs(100 * 365 * 24 * 3600)
            } else {
                self.gc_maxlifetime
            })
            .with_absolute_timeout(None)
            .with_renewal_timeout(None)
            .with_grace_period(Duration::ZERO)
            .with_touch_interval(if self.gc_maxlifetime.is_zero() {
                Duration::from_secs(60)
            } else {
                Duration::from_secs(60).min(self.gc_maxlifetime / 2)
            })
            .with_strict(true)
            .with_clock(self.clock.clone())
    }
}

/// php-memcached's lock on one session, held (see [`PhpSessionStore::lock`]). Dropping it
/// releases it in the background (on the current tokio runtime), so a request cancelled
/// while its write waited or wrote (a client that went away) does not leave PHP's requests
/// blocked until the lock expires; only a process that dies leaves it to expiry.
#[must_use = "a lock that is not released blocks the session until it expires"]
pub struct PhpSessionLock {
    ring: Arc<MemcachedStore>,
    /// The lock's key and placement; `None` once released, or when locking is off.
    held: Option<(Bytes, Vec<usize>)>,
}

impl std::fmt::Debug for PhpSessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhpSessionLock")
            .field("held", &self.held.is_some())
            .finish()
    }
}

impl PhpSessionLock {
    /// Releases the lock in a task of its own, awaited here: the deletes run to the end even
    /// when the caller's future is dropped mid-way (`held` is already taken by then, so
    /// `Drop` would find nothing to release).
    async fn release(mut self) {
        if let Some(held) = self.held.take() {
            let ring = self.ring.clone();
            // A join error is the task's panic or the runtime shutting down: nothing to do.
            let _ = tokio::spawn(async move { release(&ring, held).await }).await;
        }
    }
}

impl Drop for PhpSessionLock {
    fn drop(&mut self) {
        if let Some(held) = self.held.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let ring = self.ring.clone();
            runtime.spawn(async move { release(&ring, held).await });
        }
    }
}

/// Deletes a lock everywhere it was written, as PHP does.
async fn release(ring: &MemcachedStore, (key, list): (Bytes, Vec<usize>)) {
    let req = request(Command::Delete { key, cas: 0 });
    for &i in &list {
        if let Err(CallError::Unreachable(e) | CallError::Server(e)) =
            ring.server(i).call(&req, ring.config()).await
        {
            tracing::warn!(error = %e, "php session lock not released; it expires");
        }
    }
}

/// The PHP session store. Share it in an `Arc` (the layer does).
pub struct PhpSessionStore {
    ring: Arc<MemcachedStore>,
    config: PhpSessionConfig,
}

/// memcached's longest key.
const MAX_KEY_LEN: usize = 250;

/// A session's version: the first 8 bytes of the SHA-256 of its value (never 0).
fn digest(value: &[u8]) -> Version {
    let d = Sha256::digest(value);
    u64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8])).max(1)
}

fn request(command: Command) -> TextRequest {
    TextRequest {
        command,
        noreply: false,
        with_cas: false,
        more: false,
    }
}

impl PhpSessionStore {
    /// A store over `config`. Connects lazily.
    pub fn new(config: PhpSessionConfig) -> Result<Self, StoreError> {
        if config.lock_wait_min > config.lock_wait_max {
            return Err(StoreError::new(
                "lock_wait_min is longer than lock_wait_max",
            ));
        }
        Ok(Self {
            ring: Arc::new(MemcachedStore::new(config.memcached.clone())?),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PhpSessionConfig {
        &self.config
    }

    /// The index (in configuration order) of the server that owns `id`'s session, as
    /// libmemcached computes it; its replicas follow it in the list.
    pub fn server_index(&self, id: &str) -> usize {
        self.ring.server_index(id)
    }

    fn key(&self, id: &SessionId) -> Bytes {
        Bytes::from(format!("{}{}", self.config.memcached.prefix, id.as_str()))
    }

    fn lock_key(&self, id: &SessionId) -> Bytes {
        Bytes::from(format!(
            "{}lock.{}",
            self.config.memcached.prefix,
            id.as_str()
        ))
    }

    /// Whether `id`'s keys fit memcached's 250 bytes (the lock key is the longer). An id
    /// whose keys do not fit has no session, as PHP cannot lock or store it either.
    fn fits(&self, id: &SessionId) -> bool {
        self.config.memcached.prefix.len() + "lock.".len() + id.as_str().len() <= MAX_KEY_LEN
    }

    /// The exptime of a session write or touch: `gc_maxlifetime`, or none when it is 0, as
    /// in php-memcached.
    fn session_exptime(&self) -> i64 {
        if self.config.gc_maxlifetime.is_zero() {
            0
        } else {
            exptime(self.config.gc_maxlifetime)
        }
    }

    fn encode(&self, session: &PhpSession) -> Result<Bytes, StoreError> {
        session
            .encode(self.config.serialize_handler)
            .map(Bytes::from)
            .map_err(|e| StoreError::new(format!("php session: {e}")))
    }

    fn decode(&self, value: &[u8]) -> Result<PhpSession, StoreError> {
        PhpSession::decode(self.config.serialize_handler, value)
            .map_err(|e| StoreError::new(format!("php session: {e}")))
    }

    fn record(&self, session: &PhpSession) -> Record {
        let now = self.config.clock.now_ms();
        let mut record = Record::new(now);
        record.data = session.data();
        record
    }

    /// Refuses what a PHP session cannot be.
    fn check(record: &Record) -> Result<(), StoreError> {
        if !record.is_session() {
            return Err(StoreError::new(
                "php session store: records of another kind are not supported",
            ));
        }
        Ok(())
    }

    /// The value at `key` on its authority, with its CAS unique: `gets` (or `gats` with
    /// `touch`, which restarts its TTL).
    async fn read(
        &self,
        key: &Bytes,
        list: &[usize],
        touch: Option<i64>,
    ) -> Result<Option<(Bytes, u64)>, StoreError> {
        let req = TextRequest {
            command: Command::Get {
                keys: vec![key.clone()],
                touch,
            },
            noreply: false,
            with_cas: true,
            more: false,
        };
        let req = &req;
        let (_, found) = self
            .ring
            .on_authority(list, |server| async move {
                match server.call(req, self.ring.config()).await? {
                    TextReply::Values(values) => Ok(values
                        .into_iter()
                        .next()
                        .map(|v| (v.value, v.cas.unwrap_or(0)))),
                    other => Err(CallError::Server(format!(
                        "{}: unexpected reply to gets: {other:?}",
                        server.addr
                    ))),
                }
            })
            .await?;
        Ok(found)
    }

    /// Sends `req` to every server of `list` after position `from`, as libmemcached sends
    /// its quiet copies: failures are logged, not returned.
    async fn to_replicas(&self, list: &[usize], from: usize, req: &TextRequest) {
        for &i in &list[from + 1..] {
            if let Err(CallError::Unreachable(e) | CallError::Server(e)) =
                self.ring.server(i).call(req, self.ring.config()).await
            {
                tracing::debug!(error = %e, "php session copy on a replica not written");
            }
        }
    }

    /// Takes php-memcached's lock on `id`, waiting as PHP waits, and fails when the wait
    /// gives up. For a job that must hold a session across several steps as a PHP request
    /// does; release it with [`PhpSessionStore::unlock`] (dropping it releases it in the
    /// background; a process that dies leaves it to expire after
    /// [`PhpSessionConfig::lock_expire`]). This store's `update` and `delete` take the lock
    /// themselves: calling them while holding it waits for it, and gives up.
    pub async fn lock(&self, id: &SessionId) -> Result<PhpSessionLock, StoreError> {
        if !self.fits(id) {
            return Err(StoreError::new(
                "php session id too long for a memcached key",
            ));
        }
        self.take_lock(id).await
    }

    /// Releases a lock [`PhpSessionStore::lock`] took.
    pub async fn unlock(&self, lock: PhpSessionLock) {
        lock.release().await
    }

    /// Takes the lock unless locking is off (then the lock holds nothing).
    async fn take_lock(&self, id: &SessionId) -> Result<PhpSessionLock, StoreError> {
        if !self.config.locking {
            return Ok(PhpSessionLock {
                ring: self.ring.clone(),
                held: None,
            });
        }
        let key = self.lock_key(id);
        let list = self.ring.placement_of(&format!("lock.{}", id.as_str()));
        let add = request(Command::Store {
            mode: StoreMode::Add,
            key: key.clone(),
            flags: 0,
            // 0 is "never", as php-memcached's lock with no expiry and no max_execution_time.
            exptime: if self.config.lock_expire.is_zero() {
                0
            } else {
                exptime(self.config.lock_expire)
            },
            value: Bytes::from_static(b"1"),
            cas: 0,
        });
        let mut wait = self.config.lock_wait_min;
        let mut retries = self.config.lock_retries;
        loop {
            let (pos, taken) = self.ring.add_on_authority(&list, &add).await?;
            if taken {
                // Held from here: a cancellation while the copies are written releases it.
                let lock = PhpSessionLock {
                    ring: self.ring.clone(),
                    held: Some((key.clone(), list.clone())),
                };
                self.to_replicas(&list, pos, &add).await;
                return Ok(lock);
            }
            if retries == 0 {
                return Err(StoreError::new(
                    "php session is locked by another request (lock wait gave up)",
                ));
            }
            retries -= 1;
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.config.lock_wait_max);
        }
    }

    /// Deletes every copy of the session; returns whether the authority had it.
    async fn delete_copies(&self, id: &SessionId) -> Result<bool, StoreError> {
        let list = self.ring.placement_of(id.as_str());
        let req = request(Command::Delete {
            key: self.key(id),
            cas: 0,
        });
        let req = &req;
        let (pos, existed) = self
            .ring
            .on_authority(&list, |server| async move {
                let reply = server.call(req, self.ring.config()).await?;
                Ok(status(&reply) == b"DELETED")
            })
            .await?;
        self.to_replicas(&list, pos, req).await;
        Ok(existed)
    }

    /// The locked part of `update`.
    async fn update_locked(
        &self,
        id: &SessionId,
        record: &Record,
        expected: Version,
    ) -> Result<UpdateOutcome, StoreError> {
        let key = self.key(id);
        let list = self.ring.placement_of(id.as_str());
        let Some((current, cas)) = self.read(&key, &list, None).await? else {
            return Ok(UpdateOutcome::Missing);
        };
        if digest(&current) != expected {
            return Ok(UpdateOutcome::Conflict);
        }
        if record.retired_at.is_some() || record.moved_to.is_some() {
            // PHP cannot keep a pointer or a retired state: the old id ends now, as with
            // `session_regenerate_id(true)`.
            self.delete_copies(id).await?;
            return Ok(UpdateOutcome::Updated(expected));
        }
        let session = self
            .decode(&current)?
            .with_data(&record.data)
            .map_err(|e| StoreError::new(format!("php session: {e}")))?;
        let value = self.encode(&session)?;
        let version = digest(&value);
        let cas_req = request(Command::Store {
            mode: StoreMode::Set,
            key: key.clone(),
            flags: 0,
            exptime: self.session_exptime(),
            value: value.clone(),
            cas,
        });
        let cas_req = &cas_req;
        let (pos, outcome) = self
            .ring
            .on_authority(&list, |server| async move {
                let reply = server.call(cas_req, self.ring.config()).await?;
                Ok(match status(&reply) {
                    b"STORED" => Some(UpdateOutcome::Updated(version)),
                    // Someone wrote without the lock (a PHP app with sess_locking off).
                    b"EXISTS" => Some(UpdateOutcome::Conflict),
                    b"NOT_FOUND" => Some(UpdateOutcome::Missing),
                    _ => None,
                })
            })
            .await?;
        let outcome =
            outcome.ok_or_else(|| StoreError::new("memcached: unexpected reply to cas"))?;
        if let UpdateOutcome::Updated(_) = outcome {
            let set = request(Command::Store {
                mode: StoreMode::Set,
                key,
                flags: 0,
                exptime: self.session_exptime(),
                value,
                cas: 0,
            });
            self.to_replicas(&list, pos, &set).await;
        }
        Ok(outcome)
    }
}

impl SessionStore for PhpSessionStore {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        _ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        Box::pin(async move {
            Self::check(record)?;
            if !self.fits(id) {
                return Err(StoreError::new(
                    "php session id too long for a memcached key",
                ));
            }
            let session = PhpSession::default()
                .with_data(&record.data)
                .map_err(|e| StoreError::new(format!("php session: {e}")))?;
            let value = self.encode(&session)?;
            let list = self.ring.placement_of(id.as_str());
            let add = request(Command::Store {
                mode: StoreMode::Add,
                key: self.key(id),
                flags: 0,
                exptime: self.session_exptime(),
                value: value.clone(),
                cas: 0,
            });
            let (pos, created) = self.ring.add_on_authority(&list, &add).await?;
            if !created {
                return Ok(CreateOutcome::Exists);
            }
            let set = request(Command::Store {
                mode: StoreMode::Set,
                key: self.key(id),
                flags: 0,
                exptime: self.session_exptime(),
                value,
                cas: 0,
            });
            self.to_replicas(&list, pos, &set).await;
            Ok(CreateOutcome::Created)
        })
    }

    fn created_version(&self, record: &Record) -> Version {
        PhpSession::default()
            .with_data(&record.data)
            .ok()
            .and_then(|s| s.encode(self.config.serialize_handler).ok())
            .map(|v| digest(&v))
            .unwrap_or(0)
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            if !self.fits(id) {
                return Ok(None);
            }
            let key = self.key(id);
            let list = self.ring.placement_of(id.as_str());
            let touch = Some(self.session_exptime());
            let Some((value, _)) = self.read(&key, &list, touch).await? else {
                return Ok(None);
            };
            let session = self.decode(&value)?;
            Ok(Some(Versioned {
                record: self.record(&session),
                version: digest(&value),
            }))
        })
    }

    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        _ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome> {
        Box::pin(async move {
            Self::check(record)?;
            if !self.fits(id) {
                return Ok(UpdateOutcome::Missing);
            }
            let lock = self.take_lock(id).await?;
            let result = self.update_locked(id, record, expected).await;
            lock.release().await;
            result
        })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        _last_active_at: u64,
        _ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if !self.fits(id) {
                return Ok(false);
            }
            let list = self.ring.placement_of(id.as_str());
            let req = request(Command::Touch {
                key: self.key(id),
                exptime: self.session_exptime(),
            });
            let req = &req;
            let (pos, found) = self
                .ring
                .on_authority(&list, |server| async move {
                    let reply = server.call(req, self.ring.config()).await?;
                    Ok(status(&reply) == b"TOUCHED")
                })
                .await?;
            if found {
                self.to_replicas(&list, pos, req).await;
            }
            Ok(found)
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // Under the lock, as `session_destroy()` runs inside PHP's: a PHP request in
            // progress writes its session back at its end, which would undo a delete made
            // in the middle of it.
            if !self.fits(id) {
                return Ok(false);
            }
            let lock = self.take_lock(id).await?;
            let result = self.delete_copies(id).await;
            lock.release().await;
            result
        })
    }

    fn key_layout(&self) -> Option<KeyLayout> {
        Some(KeyLayout {
            prefix: self.config.memcached.prefix.clone(),
            suffix: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_accepts_the_php_preset() {
        let mut config = PhpSessionConfig::from_save_path("127.0.0.1:11211").unwrap();
        for secs in [1440, 1, 0, 100 * 24 * 3600] {
            config.gc_maxlifetime = Duration::from_secs(secs);
            let session = config.session_config();
            session.validate().unwrap();
            assert_eq!(session.cookie.name, "PHPSESSID");
            assert_eq!(session.id_format, IdFormat::Php);
        }
    }

    #[test]
    fn exptimes() {
        let mut config = PhpSessionConfig::from_save_path("127.0.0.1:11211").unwrap();
        config.gc_maxlifetime = Duration::ZERO;
        let store = PhpSessionStore::new(config.clone()).unwrap();
        assert_eq!(store.session_exptime(), 0, "no expiry, as php-memcached");
        config.gc_maxlifetime = Duration::from_millis(1500);
        let store = PhpSessionStore::new(config.clone()).unwrap();
        assert_eq!(store.session_exptime(), 2, "whole seconds, rounded up");
        config.lock_wait_min = Duration::from_secs(1);
        config.lock_wait_max = Duration::from_millis(1);
        assert!(PhpSessionStore::new(config).is_err());
    }

    #[test]
    fn keys_and_what_fits() {
        let store =
            PhpSessionStore::new(PhpSessionConfig::from_save_path("127.0.0.1:11211").unwrap())
                .unwrap();
        let id = IdFormat::Php
            .parse("0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!(
            &store.key(&id)[..],
            b"memc.sess.key.0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            &store.lock_key(&id)[..],
            b"memc.sess.key.lock.0123456789abcdef0123456789abcdef"
        );
        assert!(store.fits(&id));
        // 14 + 5 + 200 > 250 is false: the longest id PHP-style parsing accepts fits.
        let long = IdFormat::Php.parse(&"a".repeat(200)).unwrap();
        assert!(store.fits(&long));
        let mut config = PhpSessionConfig::from_save_path("127.0.0.1:11211").unwrap();
        config.memcached.prefix = "p".repeat(60);
        let store = PhpSessionStore::new(config).unwrap();
        assert!(!store.fits(&long));
    }
}
