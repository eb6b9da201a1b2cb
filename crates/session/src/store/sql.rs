//! The SQL store: the seeds' `sess(sesskey, expiry, data)` table, plus a version and a
//! last-activity column, on SQLite, PostgreSQL or MySQL/MariaDB through sqlx (no macros, no
//! offline data: every statement is a plain string).
//!
//! ```sql
//! CREATE TABLE sess (
//!   sesskey VARCHAR(64) PRIMARY KEY,  -- the session id (case-sensitive: ascii_bin on MySQL)
//!   expiry  BIGINT NOT NULL,          -- deadline, Unix ms; an index drives the sweep
//!   data    TEXT   NOT NULL,          -- the record as JSON
//!   version BIGINT NOT NULL,          -- 1 on create, +1 on every update
//!   active  BIGINT NOT NULL           -- last activity, Unix ms, so a touch leaves data alone
//! );
//! CREATE INDEX sess_expiry ON sess (expiry);
//! ```
//!
//! [`SqlStore::migrate`] creates it (and a `<table>_migrations` bookkeeping table); each
//! migration is idempotent, so nodes may run it concurrently at start-up.
//!
//! # The contract in SQL
//!
//! Every operation is one statement in autocommit mode, decided by the row itself:
//! - `update` is `UPDATE … SET version = version + 1 … WHERE sesskey = ? AND version = ? AND
//!   expiry > ?`: one row changed means it was still at the expected version. Only when no row
//!   changed does a second `SELECT` tell a conflict from a missing session.
//! - `create` inserts, and may overwrite only an expired row (PostgreSQL and SQLite: `ON
//!   CONFLICT … DO UPDATE … WHERE expiry <= now`; MySQL: delete the expired row, then insert,
//!   a duplicate key meaning "exists").
//! - `touch` and `delete` only match live rows; nothing else inserts, so no late write can
//!   bring a deleted session back.
//!
//! Time comes from the store's [`Clock`] (the app's, not the database's), so deadlines mean
//! the same thing as in the other stores and tests can move time.
//!
//! # The sweep
//!
//! Expired rows are never read (every statement filters on `expiry > now`), and
//! [`SqlStore::sweep`] deletes them in small batches chosen through the expiry index, oldest
//! first: no full-table scan and no `OPTIMIZE TABLE`. One node sweeps at a time:
//! - PostgreSQL: each batch is a short transaction that first takes
//!   `pg_try_advisory_xact_lock` (released by the commit, so a cancelled sweep cannot leave it
//!   held) and deletes with `FOR UPDATE SKIP LOCKED`, so rows that live traffic is writing are
//!   skipped rather than waited for;
//! - MySQL/MariaDB: `GET_LOCK(name, 0)` on a connection taken out of the pool for the sweep
//!   (if the sweep is dropped halfway, the connection closes and the server frees the lock).
//!   Each batch reads the keys through the expiry index without locking, then deletes them by
//!   primary key under READ COMMITTED: row locks are taken in the same order as the
//!   single-row statements of live traffic (primary key, then the expiry index), so the two
//!   cannot deadlock;
//! - SQLite: a lease row in `<table>_sweep`, taken with one conditional `UPDATE` (writes are
//!   serialised by SQLite itself; the lease only keeps several processes from duplicating
//!   the work).

#![deny(missing_docs)]

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};

use super::{
    CreateOutcome, Record, SessionStore, StoreError, StoreFuture, UpdateOutcome, Version, Versioned,
};
use crate::clock::{Clock, SystemClock};
use crate::id::SessionId;

/// Tuning for [`SqlStore::sweep`].
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Rows deleted per batch (one short statement or transaction). Default 500.
    pub batch: usize,
    /// Most batches per call; the rest waits for the next sweep. Default 200.
    pub max_batches: usize,
    /// Pause between batches, to leave room for live traffic. Default 5 ms.
    pub pause: Duration,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            max_batches: 200,
            pause: Duration::from_millis(5),
        }
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Runs the same body against whichever pool this is; the body is compiled once per driver.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
            Pool::MySql($p) => $body,
        }
    };
}

/// The statements, with the table name and the dialect's placeholders filled in.
struct Statements {
    load: String,
    create: String,
    mysql_delete_expired: String,
    update: String,
    version: String,
    touch: String,
    delete: String,
}

struct Inner {
    pool: Pool,
    table: String,
    sql: Statements,
    clock: Arc<dyn Clock>,
    sweep: SweepConfig,
}

/// The SQL store. Cheap to clone.
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::new(format!("sql: {e}"))
}

/// Rewrites `?` placeholders as PostgreSQL's `$1, $2, …`. The statements contain no `?`
/// elsewhere.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn ms(ttl: Duration, now: u64) -> i64 {
    now.saturating_add(ttl.as_millis() as u64)
        .min(i64::MAX as u64) as i64
}

impl Statements {
    fn new(pool: &Pool, t: &str) -> Self {
        let greatest = match pool {
            Pool::Sqlite(_) => "MAX",
            _ => "GREATEST",
        };
        let create = match pool {
            Pool::MySql(_) => format!(
                "INSERT INTO {t} (sesskey, expiry, data, version, active) VALUES (?, ?, ?, 1, ?)"
            ),
            _ => format!(
                "INSERT INTO {t} (sesskey, expiry, data, version, active) VALUES (?, ?, ?, 1, ?) \
                 ON CONFLICT (sesskey) DO UPDATE SET expiry = excluded.expiry, \
                 data = excluded.data, version = 1, active = excluded.active \
                 WHERE {t}.expiry <= ?"
            ),
        };
        let s = Self {
            load: format!("SELECT data, version, active FROM {t} WHERE sesskey = ? AND expiry > ?"),
            create,
            mysql_delete_expired: format!("DELETE FROM {t} WHERE sesskey = ? AND expiry <= ?"),
            update: format!(
                "UPDATE {t} SET data = ?, version = version + 1, expiry = ?, \
                 active = {greatest}(active, ?) WHERE sesskey = ? AND version = ? AND expiry > ?"
            ),
            version: format!("SELECT version FROM {t} WHERE sesskey = ? AND expiry > ?"),
            touch: format!(
                "UPDATE {t} SET active = {greatest}(active, ?), expiry = ? \
                 WHERE sesskey = ? AND expiry > ?"
            ),
            delete: format!("DELETE FROM {t} WHERE sesskey = ? AND expiry > ?"),
        };
        match pool {
            Pool::Postgres(_) => Self {
                load: numbered(&s.load),
                create: numbered(&s.create),
                mysql_delete_expired: s.mysql_delete_expired,
                update: numbered(&s.update),
                version: numbered(&s.version),
                touch: numbered(&s.touch),
                delete: numbered(&s.delete),
            },
            _ => s,
        }
    }
}

/// The migrations, in order. Each is idempotent.
fn migrations(pool: &Pool, t: &str) -> Vec<Vec<String>> {
    match pool {
        Pool::MySql(_) => vec![vec![format!(
            // ascii_bin: ids are case-sensitive, and MySQL's default collation is not.
            "CREATE TABLE IF NOT EXISTS {t} (\
               sesskey VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
               expiry BIGINT NOT NULL, \
               data MEDIUMTEXT CHARACTER SET utf8mb4 NOT NULL, \
               version BIGINT NOT NULL, \
               active BIGINT NOT NULL, \
               KEY {t}_expiry (expiry)\
             ) ENGINE=InnoDB"
        )]],
        Pool::Postgres(_) => vec![vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                   sesskey VARCHAR(64) PRIMARY KEY, expiry BIGINT NOT NULL, data TEXT NOT NULL, \
                   version BIGINT NOT NULL, active BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_expiry ON {t} (expiry)"),
        ]],
        Pool::Sqlite(_) => vec![vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                   sesskey TEXT PRIMARY KEY, expiry INTEGER NOT NULL, data TEXT NOT NULL, \
                   version INTEGER NOT NULL, active INTEGER NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_expiry ON {t} (expiry)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {t}_sweep (id INTEGER PRIMARY KEY, until INTEGER NOT NULL)"
            ),
            format!("INSERT OR IGNORE INTO {t}_sweep (id, until) VALUES (1, 0)"),
        ]],
    }
}

impl SqlStore {
    /// Connects to `url`: `sqlite:/path/to/file.db` (created if missing), `postgres://…` or
    /// `mysql://…` (MariaDB too). Does not create the table: call [`SqlStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, 10).await
    }

    /// As [`SqlStore::connect`], with at most `max_connections` pooled connections.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(db_err)?
                .create_if_missing(true)
                // WAL lets readers proceed while one connection writes; writers wait for each
                // other up to the busy timeout instead of failing with "database is locked".
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .connect_with(options)
                    .await
                    .map_err(db_err)?,
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await
                    .map_err(db_err)?,
            )
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            Pool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&url)
                    .await
                    .map_err(db_err)?,
            )
        } else {
            return Err(StoreError::new(
                "sql: the URL must start with sqlite:, postgres:// or mysql://",
            ));
        };
        Ok(Self::from_pool(pool, "sess", Arc::new(SystemClock)))
    }

    fn from_pool(pool: Pool, table: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                sql: Statements::new(&pool, table),
                pool,
                table: table.to_owned(),
                clock,
                sweep: SweepConfig::default(),
            }),
        }
    }

    /// Uses table `name` instead of `sess` (letters, digits and `_` only).
    pub fn with_table(self, name: &str) -> Result<Self, StoreError> {
        let ok = !name.is_empty()
            && name.len() <= 48
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(StoreError::new("sql: bad table name"));
        }
        Ok(Self::from_pool(
            self.inner.pool.clone(),
            name,
            self.inner.clock.clone(),
        ))
    }

    /// Decides expiry with `clock` (give it the layer's clock in tests).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let mut store = Self::from_pool(self.inner.pool.clone(), &self.inner.table, clock);
        Arc::get_mut(&mut store.inner).expect("fresh").sweep = self.inner.sweep.clone();
        store
    }

    /// Tunes [`SqlStore::sweep`].
    pub fn with_sweep(self, sweep: SweepConfig) -> Self {
        let mut store = Self::from_pool(
            self.inner.pool.clone(),
            &self.inner.table,
            self.inner.clock.clone(),
        );
        Arc::get_mut(&mut store.inner).expect("fresh").sweep = sweep;
        store
    }

    /// Creates the table, its expiry index and the bookkeeping tables, applying the
    /// migrations this database has not seen yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let book = format!("{t}_migrations");
        let create_book = format!("CREATE TABLE IF NOT EXISTS {book} (version BIGINT PRIMARY KEY)");
        on_pool!(&self.inner.pool, p => {
            sqlx::query(&create_book).execute(p).await.map_err(db_err)?;
            let done: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(version) FROM {book}"))
                .fetch_one(p)
                .await
                .map_err(db_err)?;
            let done = done.unwrap_or(0);
            for (i, steps) in migrations(&self.inner.pool, t).into_iter().enumerate() {
                let version = i as i64 + 1;
                if version <= done {
                    continue;
                }
                for step in steps {
                    sqlx::query(&step).execute(p).await.map_err(db_err)?;
                }
                let record = match self.inner.pool {
                    Pool::Postgres(_) => format!("INSERT INTO {book} (version) VALUES ($1)"),
                    _ => format!("INSERT INTO {book} (version) VALUES (?)"),
                };
                match sqlx::query(&record).bind(version).execute(p).await {
                    Ok(_) => {}
                    // Another node recorded it first; the steps are idempotent.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                    Err(e) => return Err(db_err(e)),
                }
            }
            Ok(())
        })
    }

    /// Number of rows in the table, expired ones included. For tests and monitoring; this
    /// one is a full count.
    pub async fn row_count(&self) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", self.inner.table);
        let n: i64 = on_pool!(&self.inner.pool, p => sqlx::query_scalar(&sql)
            .fetch_one(p)
            .await
            .map_err(db_err)?);
        Ok(n as u64)
    }

    /// Deletes expired rows in batches through the expiry index and returns how many went.
    /// Returns 0 at once if another node is sweeping. Run it from one task every minute or
    /// so on each node; the lock makes the extra calls cheap.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let now = self.inner.clock.now_ms() as i64;
        let cfg = &self.inner.sweep;
        let t = &self.inner.table;
        let mut total = 0;
        match &self.inner.pool {
            Pool::Postgres(p) => {
                let lock_key = {
                    let d = Sha256::digest(format!("sessiond-session sweep {t}").as_bytes());
                    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
                };
                let delete = format!(
                    "DELETE FROM {t} WHERE sesskey IN (SELECT sesskey FROM {t} WHERE expiry <= $1 \
                     ORDER BY expiry LIMIT $2 FOR UPDATE SKIP LOCKED) AND expiry <= $1"
                );
                for _ in 0..cfg.max_batches {
                    let mut tx = p.begin().await.map_err(db_err)?;
                    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                        .bind(lock_key)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if !locked {
                        break;
                    }
                    let n = sqlx::query(&delete)
                        .bind(now)
                        .bind(cfg.batch as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                    tx.commit().await.map_err(db_err)?;
                    total += n;
                    if n < cfg.batch as u64 {
                        break;
                    }
                    tokio::time::sleep(cfg.pause).await;
                }
            }
            Pool::MySql(p) => {
                // Out of the pool: if this future is dropped, the connection closes and the
                // server releases the named lock with it.
                let mut conn = p.acquire().await.map_err(db_err)?.detach();
                let name = format!("sessiond-session:{t}:sweep");
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
                    .bind(&name)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(db_err)?;
                if got == Some(1) {
                    sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .execute(&mut conn)
                        .await
                        .map_err(db_err)?;
                    let select = format!(
                        "SELECT sesskey FROM {t} WHERE expiry <= ? ORDER BY expiry LIMIT ?"
                    );
                    for _ in 0..cfg.max_batches {
                        // An ascii_bin column arrives as bytes.
                        let keys: Vec<Vec<u8>> = sqlx::query_scalar(&select)
                            .bind(now)
                            .bind(cfg.batch as i64)
                            .fetch_all(&mut conn)
                            .await
                            .map_err(db_err)?;
                        if keys.is_empty() {
                            break;
                        }
                        let marks = vec!["?"; keys.len()].join(", ");
                        let delete =
                            format!("DELETE FROM {t} WHERE sesskey IN ({marks}) AND expiry <= ?");
                        let mut q = sqlx::query(&delete);
                        for k in &keys {
                            q = q.bind(k);
                        }
                        total += q
                            .bind(now)
                            .execute(&mut conn)
                            .await
                            .map_err(db_err)?
                            .rows_affected();
                        if keys.len() < cfg.batch {
                            break;
                        }
                        tokio::time::sleep(cfg.pause).await;
                    }
                    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
                        .bind(&name)
                        .execute(&mut conn)
                        .await;
                }
                let _ = conn.close().await;
            }
            Pool::Sqlite(p) => {
                let lease_until = now.saturating_add(60_000);
                let took = sqlx::query(&format!(
                    "UPDATE {t}_sweep SET until = ? WHERE id = 1 AND until <= ?"
                ))
                .bind(lease_until)
                .bind(now)
                .execute(p)
                .await
                .map_err(db_err)?
                .rows_affected();
                if took == 1 {
                    let delete = format!(
                        "DELETE FROM {t} WHERE sesskey IN (SELECT sesskey FROM {t} \
                         WHERE expiry <= ? ORDER BY expiry LIMIT ?) AND expiry <= ?"
                    );
                    for _ in 0..cfg.max_batches {
                        let n = sqlx::query(&delete)
                            .bind(now)
                            .bind(cfg.batch as i64)
                            .bind(now)
                            .execute(p)
                            .await
                            .map_err(db_err)?
                            .rows_affected();
                        total += n;
                        if n < cfg.batch as u64 {
                            break;
                        }
                        tokio::time::sleep(cfg.pause).await;
                    }
                    let _ = sqlx::query(&format!(
                        "UPDATE {t}_sweep SET until = 0 WHERE id = 1 AND until = ?"
                    ))
                    .bind(lease_until)
                    .execute(p)
                    .await;
                }
            }
        }
        Ok(total)
    }

    /// The query plan the database picks for one sweep batch (`EXPLAIN`), one line per row,
    /// for tests that check the sweep is driven by the expiry index.
    pub async fn explain_sweep(&self) -> Result<Vec<String>, StoreError> {
        let t = &self.inner.table;
        let now = self.inner.clock.now_ms() as i64;
        match &self.inner.pool {
            Pool::Postgres(p) => {
                let sql = format!(
                    "EXPLAIN SELECT sesskey FROM {t} WHERE expiry <= $1 ORDER BY expiry LIMIT 500"
                );
                let rows = sqlx::query(&sql)
                    .bind(now)
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| r.try_get::<String, _>(0).map_err(db_err))
                    .collect()
            }
            Pool::MySql(p) => {
                let sql = format!(
                    "EXPLAIN SELECT sesskey FROM {t} WHERE expiry <= ? ORDER BY expiry LIMIT 500"
                );
                let rows = sqlx::query(&sql)
                    .bind(now)
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?;
                // key (the index used) and type (`range`/`index`, never `ALL`).
                Ok(rows
                    .iter()
                    .map(|r| {
                        let get = |c: &str| {
                            r.try_get::<Option<String>, _>(c)
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                        };
                        format!("type={} key={}", get("type"), get("key"))
                    })
                    .collect())
            }
            Pool::Sqlite(p) => {
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT sesskey FROM {t} WHERE expiry <= ? ORDER BY expiry LIMIT 500"
                );
                let rows = sqlx::query(&sql)
                    .bind(now)
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| r.try_get::<String, _>("detail").map_err(db_err))
                    .collect()
            }
        }
    }
}

fn encode(record: &Record) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::new(format!("encoding record: {e}")))
}

impl SessionStore for SqlStore {
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, CreateOutcome> {
        Box::pin(async move {
            let now = self.inner.clock.now_ms();
            let data = encode(record)?;
            let expiry = ms(ttl, now);
            let active = record.last_active_at as i64;
            let s = &self.inner.sql;
            let created = match &self.inner.pool {
                Pool::MySql(p) => {
                    sqlx::query(&s.mysql_delete_expired)
                        .bind(id.as_str())
                        .bind(now as i64)
                        .execute(p)
                        .await
                        .map_err(db_err)?;
                    match sqlx::query(&s.create)
                        .bind(id.as_str())
                        .bind(expiry)
                        .bind(&data)
                        .bind(active)
                        .execute(p)
                        .await
                    {
                        Ok(_) => true,
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                        Err(e) => return Err(db_err(e)),
                    }
                }
                pool => on_pool!(pool, p => sqlx::query(&s.create)
                    .bind(id.as_str())
                    .bind(expiry)
                    .bind(&data)
                    .bind(active)
                    .bind(now as i64)
                    .execute(p)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
                    == 1),
            };
            Ok(if created {
                CreateOutcome::Created
            } else {
                CreateOutcome::Exists
            })
        })
    }

    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let now = self.inner.clock.now_ms() as i64;
            let s = &self.inner.sql;
            let row: Option<(String, i64, i64)> = on_pool!(&self.inner.pool, p => {
                match sqlx::query(&s.load)
                    .bind(id.as_str())
                    .bind(now)
                    .fetch_optional(p)
                    .await
                    .map_err(db_err)?
                {
                    None => None,
                    Some(r) => Some((
                        r.try_get::<String, _>(0).map_err(db_err)?,
                        r.try_get::<i64, _>(1).map_err(db_err)?,
                        r.try_get::<i64, _>(2).map_err(db_err)?,
                    )),
                }
            });
            let Some((data, version, active)) = row else {
                return Ok(None);
            };
            let mut record: Record = serde_json::from_str(&data)
                .map_err(|_| StoreError::new("sql: malformed session data"))?;
            record.last_active_at = record.last_active_at.max(active as u64);
            Ok(Some(Versioned {
                record,
                version: version as Version,
            }))
        })
    }

    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        expected: Version,
        ttl: Duration,
    ) -> StoreFuture<'a, UpdateOutcome> {
        Box::pin(async move {
            let now = self.inner.clock.now_ms();
            let data = encode(record)?;
            let s = &self.inner.sql;
            let changed = on_pool!(&self.inner.pool, p => sqlx::query(&s.update)
                .bind(&data)
                .bind(ms(ttl, now))
                .bind(record.last_active_at as i64)
                .bind(id.as_str())
                .bind(expected as i64)
                .bind(now as i64)
                .execute(p)
                .await
                .map_err(db_err)?
                .rows_affected());
            if changed == 1 {
                return Ok(UpdateOutcome::Updated(expected + 1));
            }
            let current: Option<i64> = on_pool!(&self.inner.pool, p => sqlx::query_scalar(&s.version)
                .bind(id.as_str())
                .bind(now as i64)
                .fetch_optional(p)
                .await
                .map_err(db_err)?);
            Ok(match current {
                None => UpdateOutcome::Missing,
                Some(_) => UpdateOutcome::Conflict,
            })
        })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        last_active_at: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = self.inner.clock.now_ms();
            let s = &self.inner.sql;
            let n = on_pool!(&self.inner.pool, p => sqlx::query(&s.touch)
                .bind(last_active_at as i64)
                .bind(ms(ttl, now))
                .bind(id.as_str())
                .bind(now as i64)
                .execute(p)
                .await
                .map_err(db_err)?
                .rows_affected());
            Ok(n > 0)
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = self.inner.clock.now_ms() as i64;
            let s = &self.inner.sql;
            // Only a live row counts; an expired one is the sweep's to remove.
            let n = on_pool!(&self.inner.pool, p => sqlx::query(&s.delete)
                .bind(id.as_str())
                .bind(now)
                .execute(p)
                .await
                .map_err(db_err)?
                .rows_affected());
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("UPDATE t SET a = ? WHERE b = ? AND c > ?"),
            "UPDATE t SET a = $1 WHERE b = $2 AND c > $3"
        );
    }
}
