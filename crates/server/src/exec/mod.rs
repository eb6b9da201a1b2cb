//! The glue: the one place where protocol requests meet store operations.
//!
//! Each protocol's module maps a decoded request to store calls and returns a
//! protocol-neutral outcome for the codec to encode. Nothing here touches a socket or reads
//! the clock: `now` (Unix ms) comes from the connection loop, so the mapping is tested
//! directly, request in and outcome out.
//!
//! Both protocols share the keyspace: RESP database 0 is the memcached store. Every command
//! of either protocol runs holding the script gate shared (see `resp::scripting`), so a Lua
//! script is atomic with respect to memcached clients too.

pub mod auth;
pub mod busy;
pub mod memcache;
pub mod resp;

/// Why a write is refused while the journal is poisoned.
pub const JOURNAL_FAILED: &str =
    "journal write failed; writes are refused until sessiond is restarted";

impl Shared {
    /// Whether writes must be refused because the journal failed.
    pub fn writes_refused(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| j.is_poisoned())
    }

    /// Waits until every journal record queued so far may be acknowledged (the replies to
    /// the writes before it may go out); `false` if the journal failed first.
    pub async fn acknowledge_writes(&self) -> bool {
        match &self.journal {
            None => true,
            Some(journal) => journal.acknowledge_queued().await,
        }
    }

    /// Starts a background rewrite of the journal: the admin path shared by RESP's
    /// `BGREWRITEAOF` and memcached-text `journal rewrite`.
    pub fn start_journal_rewrite(&self) -> Result<(), RewriteRefusal> {
        let journal = self.journal.as_ref().ok_or(RewriteRefusal::NoJournal)?;
        if journal.is_poisoned() {
            return Err(RewriteRefusal::JournalFailed);
        }
        if journal.request_rewrite(&self.databases) {
            Ok(())
        } else {
            Err(RewriteRefusal::AlreadyRunning)
        }
    }
}

/// Why an asked-for journal rewrite did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteRefusal {
    /// The server runs without a journal (an embedded server started without one).
    NoJournal,
    /// The journal is poisoned; writes are refused until a restart.
    JournalFailed,
    /// A rewrite is already running.
    AlreadyRunning,
}

use std::sync::Arc;
use std::time::Instant;

use sessiond_store::Store;

use crate::config::Config;
use crate::durability::Journal;
use crate::sessions::Sessions;
use crate::stats::Stats;

/// What every connection shares: the keyspace, the counters and the settings.
pub struct Shared {
    /// Database 0, the keyspace the memcached protocol uses.
    pub store: Arc<Store>,
    /// Every database, by index (RESP `SELECT`); `databases[0]` is `store`.
    pub databases: Vec<Arc<Store>>,
    /// The journal; `None` only in tests of the glue.
    pub journal: Option<Arc<Journal>>,
    /// Server-wide counters.
    pub stats: Stats,
    /// The configuration the server started with.
    pub config: Config,
    /// The users clients log in as (from the configuration).
    pub users: auth::Users,
    /// When the server started (monotonic), for `uptime`.
    pub started: Instant,
    /// The script gate. Every ordinary command of either protocol (and each expirer sweep)
    /// runs holding it shared; a script holds it exclusively for its whole run, which is
    /// what makes a script atomic with respect to every other client (see
    /// `resp::scripting`). An async lock: a command that finds a script running waits for
    /// it without holding up a worker thread, and the connection takes the lock with
    /// `try_read` on the ordinary path (one atomic operation when no script runs).
    pub gate: tokio::sync::RwLock<()>,
    /// Who holds the gate exclusively, since when, and `busy-reply-threshold`: when RESP
    /// commands stop waiting for the gate and are answered `BUSY` (see [`busy`]).
    pub busy: busy::Busy,
    /// RESP's server-wide state: pub/sub, scripts, client registry.
    pub resp: resp::RespShared,
    /// The session layer (the index, revocation, events); `None` when it is off.
    pub sessions: Option<Arc<Sessions>>,
    /// `SHUTDOWN`'s request to stop, which `Server::run` waits for beside its signal.
    pub shutdown: tokio::sync::Notify,
}

impl Shared {
    /// The shared state of a server over `databases` (database 0 is memcached's), publishing
    /// on `pubsub`, whose keyspace notifications start as `--notify-keyspace-events` says.
    pub fn new(
        databases: Vec<Arc<Store>>,
        journal: Option<Arc<Journal>>,
        config: Config,
        pubsub: Arc<resp::pubsub::PubSub>,
        sessions: Option<Arc<Sessions>>,
    ) -> Shared {
        pubsub.set_flags(config.notify_keyspace_events);
        let busy = busy::Busy::new(config.busy_reply_threshold_ms, config.script_time_limit);
        Shared {
            store: databases[0].clone(),
            databases,
            journal,
            stats: Stats::default(),
            users: auth::Users::from_config(&config),
            config,
            started: Instant::now(),
            resp: resp::RespShared::new(pubsub),
            gate: tokio::sync::RwLock::new(()),
            busy,
            shutdown: tokio::sync::Notify::new(),
            sessions,
        }
    }

    /// A server with no journal whose stores report to pub/sub, the `WATCH` registry and
    /// the session layer (if `config` turns it on), as the real server's do: for the glue's
    /// tests and the fuzz targets.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn unjournaled(config: Config, now: u64) -> Shared {
        use sessiond_store::Budget;
        let budget = Arc::new(Budget::new(config.max_memory));
        let pubsub = Arc::new(resp::pubsub::PubSub::default());
        let sessions = config
            .sessions
            .clone()
            .map(|settings| Arc::new(Sessions::new(settings, budget.clone(), pubsub.clone())));
        let stores = (0..crate::DATABASES)
            .map(|db| {
                let observer = crate::changes::ChangeObserver::unjournaled(
                    db as u8,
                    pubsub.clone(),
                    sessions.clone(),
                );
                Arc::new(Store::with_observer(budget.clone(), now, Some(observer)))
            })
            .collect();
        Shared::new(stores, None, config, pubsub, sessions)
    }

    /// Asks the server to stop gracefully (`SHUTDOWN`); kept until `Server::run` looks.
    pub fn request_shutdown(&self) {
        self.shutdown.notify_one();
    }

    /// Revokes what a per-user session limit picked during the request just run (one atomic
    /// load when nothing is pending); see `sessions::Sessions::settle`.
    pub fn settle_sessions(&self, now: u64) {
        if let Some(sessions) = &self.sessions {
            sessions.settle(&self.databases, now);
        }
    }
}
