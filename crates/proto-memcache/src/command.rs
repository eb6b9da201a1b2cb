//! The protocol-neutral request and outcome types that both wire formats share.

use bytes::Bytes;

use crate::meta::{MetaOutcome, MetaRequest};

/// A CAS unique no item ever has (the store's counter starts at 1 and would need centuries of
/// writes to get here). Text `cas` with a unique of 0 carries it: memcached compares 0 like
/// any other unique (so it answers `EXISTS`, or `NOT_FOUND`), while 0 in [`Command::Store`]
/// means "no check", as binary SET's header CAS does.
pub const CAS_NEVER: u64 = u64::MAX;

/// How a storage command treats an existing (or missing) item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no live item.
    Add,
    /// Store only if the key holds a live item.
    Replace,
    /// Append the data to a live item's value (flags and exptime of the request are ignored).
    Append,
    /// Prepend the data to a live item's value (flags and exptime of the request are ignored).
    Prepend,
}

/// Which way an arithmetic command moves a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithMode {
    /// Add, wrapping at 2^64 as memcached does.
    Incr,
    /// Subtract, stopping at 0 as memcached does.
    Decr,
}

/// Which statistics a `stats` request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsGroup {
    /// `stats` with no argument (binary: empty key).
    General,
    /// `stats settings`.
    Settings,
    /// `stats items`.
    Items,
    /// `stats slabs`.
    Slabs,
    /// `stats conns`.
    Conns,
    /// `stats reset`.
    Reset,
    /// Any other group name; the server answers with an error or an empty list.
    Other(Bytes),
}

impl StatsGroup {
    /// The group a single name selects (text `stats <name>`, binary STAT's key); the empty
    /// name is [`StatsGroup::General`].
    pub(crate) fn named(name: Bytes) -> StatsGroup {
        match &name[..] {
            b"" => StatsGroup::General,
            b"settings" => StatsGroup::Settings,
            b"items" => StatsGroup::Items,
            b"slabs" => StatsGroup::Slabs,
            b"conns" => StatsGroup::Conns,
            b"reset" => StatsGroup::Reset,
            _ => StatsGroup::Other(name),
        }
    }

    /// The name that selects this group; the inverse of [`StatsGroup::named`].
    pub(crate) fn name(&self) -> &[u8] {
        match self {
            StatsGroup::General => b"",
            StatsGroup::Settings => b"settings",
            StatsGroup::Items => b"items",
            StatsGroup::Slabs => b"slabs",
            StatsGroup::Conns => b"conns",
            StatsGroup::Reset => b"reset",
            StatsGroup::Other(name) => name,
        }
    }
}

/// One decoded request, independent of the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `get`/`gets`/`gat`/`gats` in text (several keys); GET/GETK/GETQ/GETKQ/GAT/GATQ/GATK/GATKQ
    /// in binary (one key). `touch` carries the new exptime for the gat family.
    Get {
        /// Keys in request order.
        keys: Vec<Bytes>,
        /// Also touch each hit to this exptime (`gat`, `gats`, binary GAT*).
        touch: Option<i64>,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`, or `cas` when `cas` is non-zero.
    /// Binary SET/ADD/REPLACE with a non-zero header CAS are compare-and-swap too.
    Store {
        /// What to do with an existing item.
        mode: StoreMode,
        /// The key.
        key: Bytes,
        /// Opaque client flags, stored and returned unchanged.
        flags: u32,
        /// Exptime as sent (memcached rules not yet applied).
        exptime: i64,
        /// The data block.
        value: Bytes,
        /// The CAS unique the item must still have; 0 means "no check".
        cas: u64,
    },
    /// `delete <key>` / DELETE. Binary DELETE may carry a CAS (0 = none).
    Delete {
        /// The key.
        key: Bytes,
        /// The CAS the item must still have; 0 means "no check".
        cas: u64,
    },
    /// `incr`/`decr` / INCREMENT/DECREMENT.
    Arith {
        /// Incr or decr.
        mode: ArithMode,
        /// The key.
        key: Bytes,
        /// The amount.
        delta: u64,
        /// Binary only: create the counter with this value and exptime when it is missing.
        /// `None` (text, or binary exptime 0xffffffff) means answer NOT_FOUND instead.
        initial: Option<(u64, i64)>,
    },
    /// `touch <key> <exptime>` / TOUCH.
    Touch {
        /// The key.
        key: Bytes,
        /// The new exptime as sent.
        exptime: i64,
    },
    /// `flush_all [delay]` / FLUSH.
    FlushAll {
        /// Seconds from now (or an absolute time, by the 30-day rule); 0 means now.
        delay: i64,
    },
    /// `version` / VERSION.
    Version,
    /// `verbosity <n>` (accepted and ignored).
    Verbosity,
    /// `stats [group]` / STAT.
    Stats(StatsGroup),
    /// Binary NOOP; also ends a run of quiet gets.
    Noop,
    /// `journal rewrite` (text only; sessiond's admin command, not memcached's): start a
    /// background rewrite of the journal, as Redis's `BGREWRITEAOF` does.
    JournalRewrite,
    /// `quit` / QUIT / QUITQ: the connection closes after the reply (if any).
    Quit,
    /// Binary SASL_LIST_MECHS: which SASL mechanisms the server offers.
    SaslListMechs,
    /// Binary SASL_AUTH (`step: false`) or SASL_STEP (`step: true`): a mechanism name (the
    /// key) and its client data (the value; for PLAIN, `authzid NUL user NUL password`).
    /// Whether it succeeds is the glue's decision; the codec only frames it. (memcached's
    /// text-protocol authentication is an ordinary `set`, decoded as [`Command::Store`]: only
    /// the glue knows that the connection has not authenticated yet.)
    SaslAuth {
        /// The mechanism, as sent (`PLAIN`).
        mechanism: Bytes,
        /// The mechanism's client data.
        data: Bytes,
        /// SASL_STEP: a continuation of an exchange rather than its start.
        step: bool,
    },
    /// A meta command (`mg`, `ms`, `md`, `ma`, `me`), text only.
    Meta(Box<MetaRequest>),
    /// A `set` (or meta set) whose data block is larger than the item size limit: the block
    /// was swallowed, and the glue removes whatever the key held before answering
    /// [`Outcome::TooLarge`], as memcached does so that a client never reads the old value
    /// after a failed write.
    TooLarge {
        /// The key.
        key: Bytes,
    },
    /// Any opcode the server does not implement: answered with status 0x0081 (unknown
    /// command).
    Unknown,
}

/// One item found by a get-family command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The key, as the client sent it.
    pub key: Bytes,
    /// The client flags.
    pub flags: u32,
    /// The CAS unique.
    pub cas: u64,
    /// The value.
    pub value: Bytes,
}

/// What executing a [`Command`] produced, for the codec of the request's format to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Get family: one entry per requested key, `None` for a miss, in request order.
    Values(Vec<Option<Hit>>),
    /// The item was stored; carries the new CAS.
    Stored {
        /// The item's new CAS unique.
        cas: u64,
    },
    /// `add` on a live key, or `replace`/`append`/`prepend` on a missing one.
    NotStored,
    /// A CAS mismatch.
    Exists,
    /// The key holds no live item.
    NotFound,
    /// The item was deleted.
    Deleted,
    /// The item was touched; carries its flags and CAS (binary TOUCH returns the flags).
    Touched {
        /// The item's flags.
        flags: u32,
        /// The item's CAS unique.
        cas: u64,
    },
    /// The counter's new value and CAS.
    Counter {
        /// The new value.
        value: u64,
        /// The item's new CAS unique.
        cas: u64,
    },
    /// `incr`/`decr` on a value that is not a decimal number.
    NonNumeric,
    /// A plain success (`flush_all`, `verbosity`, `noop`, `quit`): text `OK`, binary status 0.
    Ok,
    /// The server's version string.
    Version(String),
    /// Statistics, in order.
    Stats(Vec<(String, String)>),
    /// The write did not fit under the memory limit and nothing was evicted.
    OutOfMemory,
    /// The value exceeds the item size limit.
    TooLarge,
    /// The write would re-create a session an administrator revoked, which stays revoked
    /// until it would have expired: text `SERVER_ERROR <why>`, binary status 0x0084 with
    /// the reason as its text. (libmemcached shows no binary reason text whatever the
    /// status, and names 0x0005 on a set "SUCCESS", so no status says it better.)
    Revoked,
    /// The command is not supported (binary status 0x0081, text `ERROR`).
    UnknownCommand,
    /// The server cannot perform the write (for example, its journal failed); the reason is
    /// sent to the client (`SERVER_ERROR <reason>`, binary status 0x0084).
    ServerError(String),
    /// The SASL mechanisms on offer, space-separated (binary SASL_LIST_MECHS' value).
    SaslMechanisms(String),
    /// Authentication succeeded: binary status 0 with the value `Authenticated`, text
    /// `STORED` (memcached's answer to the authentication `set`).
    Authenticated,
    /// Authentication failed: binary status 0x0020 (`Auth failure.`), text
    /// `CLIENT_ERROR authentication failure`.
    AuthFailed,
    /// The connection has not authenticated and the command is not one that may come first:
    /// binary status 0x0020, text `CLIENT_ERROR unauthenticated`, memcached's answers.
    Unauthenticated,
    /// The authenticated user's role may not run this command (an administrative one):
    /// binary status 0x0020, as memcached answers a flush it has disabled; text
    /// `CLIENT_ERROR <command> not allowed`, memcached's words for a disabled `flush_all`.
    NotPermitted,
    /// A meta command's outcome.
    Meta(MetaOutcome),
    /// A request that only the glue can tell is malformed (an authentication token without
    /// a space): text `CLIENT_ERROR <reason>`, binary status 0x0004 with the reason.
    ClientError(&'static str),
}

impl Outcome {
    /// Whether this answers an authentication attempt or its absence. These replies are sent
    /// even for a `noreply` request, as memcached's authentication path ignores `noreply`:
    /// a client that is not logged in must learn so.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Outcome::Authenticated
                | Outcome::AuthFailed
                | Outcome::Unauthenticated
                | Outcome::ClientError(_)
        )
    }
}
