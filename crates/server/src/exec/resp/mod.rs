//! Redis commands as store operations: the RESP half of the glue.
//!
//! The codec (`sessiond-proto-resp`) hands over argument vectors; [`execute`] looks the
//! command up in one table ([`COMMANDS`]: name, arity, flags, key positions, handler),
//! checks what every command shares (arity, authentication, the pub/sub context, a
//! poisoned journal refusing writes) and calls the handler, which parses its own options
//! and returns a [`Reply`] built in RESP3 terms (the codec downgrades for RESP2). Nothing
//! here touches a socket or reads the clock; the connection loop (`conn_resp`) owns both.
//!
//! One module per command family: [`strings`], [`keys`], [`collections`] (hashes, sets,
//! sorted sets), [`server`] (connection and administration), [`pubsub`] (channels and
//! keyspace notifications) and [`scripting`] (EVAL and Lua).
//!
//! Replies and error texts follow Redis 7.0 byte for byte where clients or people could
//! notice, since clients match on some of them (`ERR no such key`, `NOSCRIPT`,
//! `WRONGTYPE`, `NOAUTH`).

pub mod collections;
pub mod keys;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod strings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, RwLockReadGuard};

use bytes::Bytes;
use sessiond_proto_resp::{Protocol, Reply};
use sessiond_store::{Store, StoreError};

use super::Shared;
use crate::stats::bump;

/// Server-wide RESP state, part of [`Shared`].
pub struct RespShared {
    /// Channels, patterns and keyspace-notification settings.
    pub pubsub: Arc<pubsub::PubSub>,
    /// Loaded scripts and the Lua interpreter.
    pub scripts: scripting::Scripts,
    /// The script gate: ordinary commands (of both protocols, and the expirer) hold it
    /// shared for the length of one command; a script holds it exclusively for its whole
    /// run, which is what makes a script atomic with respect to every other client. See
    /// `scripting` for why this mechanism and what it costs.
    pub gate: RwLock<()>,
    /// Connection ids (`CLIENT ID`), shared by both protocols' connections.
    pub next_client_id: AtomicU64,
    /// The open RESP connections, for `CLIENT LIST` and `INFO clients`.
    pub clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
}

impl RespShared {
    /// The state of a server with no connection and no script yet, publishing on `pubsub`.
    pub fn new(pubsub: Arc<pubsub::PubSub>) -> RespShared {
        RespShared {
            pubsub,
            scripts: scripting::Scripts::new(),
            gate: RwLock::new(()),
            next_client_id: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Holds the script gate shared: no script runs until the guard is dropped.
    pub fn shared_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `CLIENT LIST` shows about a connection; updated by the connection itself.
#[derive(Debug)]
pub struct ClientInfo {
    /// `CLIENT ID`.
    pub id: u64,
    /// The peer address.
    pub addr: String,
    /// The local address.
    pub laddr: String,
    /// When the connection was accepted (Unix ms).
    pub created_ms: u64,
    /// The selected database.
    pub db: AtomicUsize,
    /// `CLIENT SETNAME`, `CLIENT SETINFO LIB-NAME` and `LIB-VER`.
    pub names: Mutex<(Bytes, Bytes, Bytes)>,
    /// The last command's name.
    pub last_command: Mutex<Bytes>,
}

/// One connection's state.
pub struct Session {
    /// `CLIENT ID`.
    pub id: u64,
    /// The selected database (`SELECT`).
    pub db: usize,
    /// The reply protocol (`HELLO`).
    pub protocol: Protocol,
    /// Whether `AUTH` succeeded (or no password is required).
    pub authenticated: bool,
    /// Set by `QUIT`: close after writing the reply.
    pub quit: bool,
    /// Channel and pattern subscriptions; `None` until the first `SUBSCRIBE`.
    pub subscriber: Option<pubsub::Subscriber>,
    /// Shown by `CLIENT LIST`.
    pub info: Arc<ClientInfo>,
    /// Set while a script runs on this connection's behalf (commands that make no sense
    /// inside a script refuse).
    pub in_script: bool,
}

impl Session {
    /// A fresh connection's state: RESP2, database 0, authenticated unless a password is
    /// required.
    pub fn new(shared: &Shared, addr: String, laddr: String, now: u64) -> Session {
        let id = shared.resp.next_client_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created_ms: now,
            db: AtomicUsize::new(0),
            names: Mutex::new(Default::default()),
            last_command: Mutex::new(Bytes::new()),
        });
        Session {
            id,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated: shared.config.requirepass.is_none(),
            quit: false,
            subscriber: None,
            info,
            in_script: false,
        }
    }

    /// Whether the connection is in RESP2's subscribed mode, where only the pub/sub
    /// commands, PING, QUIT and RESET are allowed.
    pub fn subscribed_resp2(&self) -> bool {
        self.protocol == Protocol::Resp2 && self.subscriber.as_ref().is_some_and(|s| s.count() > 0)
    }
}

/// What a command answers: usually one reply; the subscription commands answer one per
/// channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// One reply.
    One(Reply),
    /// Several replies, in order.
    Many(Vec<Reply>),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::One(reply)
    }
}

/// Everything a handler needs.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Shared,
    /// The connection.
    pub session: &'a mut Session,
    /// Unix ms, read once by the connection loop (a script keeps its start time, as
    /// Redis's scripts see time stand still).
    pub now: u64,
}

impl Ctx<'_> {
    /// The selected database.
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.databases[self.session.db]
    }

    /// Publishes a keyspace notification for `key` in the selected database.
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.shared
            .resp
            .pubsub
            .notify(self.session.db, class, event, key);
    }
}

/// A handler: parses its arguments (the command name is `args[0]`) and answers.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Answer;

/// The command changes data (refused while the journal is poisoned; its reply waits for
/// the journal under the fsync policy).
pub const WRITE: u16 = 1;
/// Only reads data.
pub const READONLY: u16 = 1 << 1;
/// A write that only changes a deadline: its journal record rides in the next group and
/// the reply does not wait for it.
pub const TTL_ONLY: u16 = 1 << 2;
/// Allowed before `AUTH` succeeds.
pub const NO_AUTH: u16 = 1 << 3;
/// Allowed in RESP2's subscribed mode.
pub const PUBSUB_OK: u16 = 1 << 4;
/// Not callable from a script.
pub const NOSCRIPT: u16 = 1 << 5;
/// Administrative (`CONFIG`, `FLUSHALL`, …); only informs `COMMAND`.
pub const ADMIN: u16 = 1 << 6;
/// May use memory (refused with `OOM` when the budget is exhausted); informs `COMMAND`.
pub const DENYOOM: u16 = 1 << 7;
/// Runs a script: takes the script gate exclusively.
pub const SCRIPT: u16 = 1 << 8;
/// Answers quickly whatever the data (`COMMAND`'s `fast` flag).
pub const FAST: u16 = 1 << 9;

/// One command: what `COMMAND` reports about it and the handler that runs it.
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (name included); `-n` at least n.
    pub arity: i32,
    /// The flags above.
    pub flags: u16,
    /// First key argument (0: none), last (-1: the last argument), step.
    pub keys: (i32, i32, i32),
    /// Redis's command group, for `COMMAND DOCS`.
    pub group: &'static str,
    /// A one-line summary, for `COMMAND DOCS`.
    pub summary: &'static str,
    /// Runs the command.
    pub handler: Handler,
}

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:literal, $summary:literal, $handler:path) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            group: $group,
            summary: $summary,
            handler: $handler,
        }
    };
}

const NONE: (i32, i32, i32) = (0, 0, 0);
const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);

/// Every command sessiond answers.
pub static COMMANDS: &[Spec] = &[
    // Connection and server.
    spec!(
        "ping",
        -1,
        FAST | PUBSUB_OK,
        NONE,
        "connection",
        "Returns the server's liveliness response.",
        server::ping
    ),
    spec!(
        "echo",
        2,
        FAST,
        NONE,
        "connection",
        "Returns the given string.",
        server::echo
    ),
    spec!(
        "select",
        2,
        FAST,
        NONE,
        "connection",
        "Changes the selected database.",
        server::select
    ),
    spec!(
        "auth",
        -2,
        FAST | NO_AUTH | NOSCRIPT,
        NONE,
        "connection",
        "Authenticates the connection.",
        server::auth
    ),
    spec!(
        "hello",
        -1,
        FAST | NO_AUTH | NOSCRIPT,
        NONE,
        "connection",
        "Handshakes with the Redis server.",
        server::hello
    ),
    spec!(
        "client",
        -2,
        NOSCRIPT,
        NONE,
        "connection",
        "A container for client connection commands.",
        server::client
    ),
    spec!(
        "quit",
        -1,
        FAST | NO_AUTH | PUBSUB_OK | NOSCRIPT,
        NONE,
        "connection",
        "Closes the connection.",
        server::quit
    ),
    spec!(
        "reset",
        1,
        FAST | NO_AUTH | PUBSUB_OK | NOSCRIPT,
        NONE,
        "connection",
        "Resets the connection.",
        server::reset
    ),
    spec!(
        "info",
        -1,
        0,
        NONE,
        "server",
        "Returns information and statistics about the server.",
        server::info
    ),
    spec!(
        "command",
        -1,
        0,
        NONE,
        "server",
        "Returns detailed information about all commands.",
        server::command
    ),
    spec!(
        "config",
        -2,
        ADMIN | NOSCRIPT,
        NONE,
        "server",
        "A container for server configuration commands.",
        server::config
    ),
    spec!(
        "dbsize",
        1,
        READONLY | FAST,
        NONE,
        "server",
        "Returns the number of keys in the database.",
        server::dbsize
    ),
    spec!(
        "flushdb",
        -1,
        WRITE,
        NONE,
        "server",
        "Removes all keys from the current database.",
        server::flushdb
    ),
    spec!(
        "flushall",
        -1,
        WRITE,
        NONE,
        "server",
        "Removes all keys from all databases.",
        server::flushall
    ),
    spec!(
        "time",
        1,
        FAST,
        NONE,
        "server",
        "Returns the server time.",
        server::time
    ),
    spec!(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
        NONE,
        "server",
        "Asynchronously rewrites the append-only file to disk.",
        server::bgrewriteaof
    ),
    spec!(
        "lastsave",
        1,
        FAST,
        NONE,
        "server",
        "Returns the Unix timestamp of the last successful save to disk.",
        server::lastsave
    ),
    spec!(
        "function",
        -2,
        NOSCRIPT,
        NONE,
        "scripting",
        "A container for function commands.",
        server::function
    ),
    // Strings.
    spec!(
        "get",
        2,
        READONLY | FAST,
        ONE,
        "string",
        "Returns the string value of a key.",
        strings::get
    ),
    spec!(
        "set",
        -3,
        WRITE | DENYOOM,
        ONE,
        "string",
        "Sets the string value of a key, ignoring its type.",
        strings::set
    ),
    spec!(
        "setex",
        4,
        WRITE | DENYOOM,
        ONE,
        "string",
        "Sets the string value and expiration time of a key.",
        strings::setex
    ),
    spec!(
        "psetex",
        4,
        WRITE | DENYOOM,
        ONE,
        "string",
        "Sets the string value and expiration time in milliseconds of a key.",
        strings::psetex
    ),
    spec!(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        ONE,
        "string",
        "Set the string value of a key only when the key doesn't exist.",
        strings::setnx
    ),
    spec!(
        "getex",
        -2,
        WRITE | FAST | TTL_ONLY,
        ONE,
        "string",
        "Returns the string value of a key after setting its expiration time.",
        strings::getex
    ),
    spec!(
        "getdel",
        2,
        WRITE | FAST,
        ONE,
        "string",
        "Returns the string value of a key after deleting the key.",
        strings::getdel
    ),
    spec!(
        "mget",
        -2,
        READONLY | FAST,
        ALL,
        "string",
        "Atomically returns the string values of one or more keys.",
        strings::mget
    ),
    spec!(
        "mset",
        -3,
        WRITE | DENYOOM,
        (1, -1, 2),
        "string",
        "Atomically creates or modifies the string values of one or more keys.",
        strings::mset
    ),
    spec!(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        ONE,
        "string",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        strings::append
    ),
    spec!(
        "strlen",
        2,
        READONLY | FAST,
        ONE,
        "string",
        "Returns the length of a string value.",
        strings::strlen
    ),
    spec!(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        ONE,
        "string",
        "Increments the integer value of a key by one.",
        strings::incr
    ),
    spec!(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        ONE,
        "string",
        "Decrements the integer value of a key by one.",
        strings::decr
    ),
    spec!(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        ONE,
        "string",
        "Increments the integer value of a key by a number.",
        strings::incrby
    ),
    spec!(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        ONE,
        "string",
        "Decrements a number from the integer value of a key.",
        strings::decrby
    ),
    // Keys.
    spec!(
        "del",
        -2,
        WRITE,
        ALL,
        "generic",
        "Deletes one or more keys.",
        keys::del
    ),
    spec!(
        "unlink",
        -2,
        WRITE | FAST,
        ALL,
        "generic",
        "Asynchronously deletes one or more keys.",
        keys::del
    ),
    spec!(
        "exists",
        -2,
        READONLY | FAST,
        ALL,
        "generic",
        "Determines whether one or more keys exist.",
        keys::exists
    ),
    spec!(
        "expire",
        -3,
        WRITE | FAST | TTL_ONLY,
        ONE,
        "generic",
        "Sets the expiration time of a key in seconds.",
        keys::expire
    ),
    spec!(
        "pexpire",
        -3,
        WRITE | FAST | TTL_ONLY,
        ONE,
        "generic",
        "Sets the expiration time of a key in milliseconds.",
        keys::pexpire
    ),
    spec!(
        "expireat",
        -3,
        WRITE | FAST | TTL_ONLY,
        ONE,
        "generic",
        "Sets the expiration time of a key to a Unix timestamp.",
        keys::expireat
    ),
    spec!(
        "pexpireat",
        -3,
        WRITE | FAST | TTL_ONLY,
        ONE,
        "generic",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        keys::pexpireat
    ),
    spec!(
        "ttl",
        2,
        READONLY | FAST,
        ONE,
        "generic",
        "Returns the expiration time in seconds of a key.",
        keys::ttl
    ),
    spec!(
        "pttl",
        2,
        READONLY | FAST,
        ONE,
        "generic",
        "Returns the expiration time in milliseconds of a key.",
        keys::pttl
    ),
    spec!(
        "expiretime",
        2,
        READONLY | FAST,
        ONE,
        "generic",
        "Returns the expiration time of a key as a Unix timestamp.",
        keys::expiretime
    ),
    spec!(
        "pexpiretime",
        2,
        READONLY | FAST,
        ONE,
        "generic",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        keys::pexpiretime
    ),
    spec!(
        "persist",
        2,
        WRITE | FAST | TTL_ONLY,
        ONE,
        "generic",
        "Removes the expiration time of a key.",
        keys::persist
    ),
    spec!(
        "type",
        2,
        READONLY | FAST,
        ONE,
        "generic",
        "Determines the type of value stored at a key.",
        keys::type_
    ),
    spec!(
        "rename",
        3,
        WRITE,
        (1, 2, 1),
        "generic",
        "Renames a key and overwrites the destination.",
        keys::rename
    ),
    spec!(
        "renamenx",
        3,
        WRITE | FAST,
        (1, 2, 1),
        "generic",
        "Renames a key only when the target key name doesn't exist.",
        keys::renamenx
    ),
    spec!(
        "scan",
        -2,
        READONLY,
        NONE,
        "generic",
        "Iterates over the key names in the database.",
        keys::scan
    ),
    spec!(
        "keys",
        2,
        READONLY,
        NONE,
        "generic",
        "Returns all key names that match a pattern.",
        keys::keys
    ),
    // Hashes.
    spec!(
        "hset",
        -4,
        WRITE | DENYOOM | FAST,
        ONE,
        "hash",
        "Creates or modifies the value of a field in a hash.",
        collections::hset
    ),
    spec!(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST,
        ONE,
        "hash",
        "Sets the values of multiple fields.",
        collections::hmset
    ),
    spec!(
        "hget",
        3,
        READONLY | FAST,
        ONE,
        "hash",
        "Returns the value of a field in a hash.",
        collections::hget
    ),
    spec!(
        "hmget",
        -3,
        READONLY | FAST,
        ONE,
        "hash",
        "Returns the values of all fields in a hash.",
        collections::hmget
    ),
    spec!(
        "hgetall",
        2,
        READONLY,
        ONE,
        "hash",
        "Returns all fields and values in a hash.",
        collections::hgetall
    ),
    spec!(
        "hdel",
        -3,
        WRITE | FAST,
        ONE,
        "hash",
        "Deletes one or more fields and their values from a hash.",
        collections::hdel
    ),
    spec!(
        "hexists",
        3,
        READONLY | FAST,
        ONE,
        "hash",
        "Determines whether a field exists in a hash.",
        collections::hexists
    ),
    spec!(
        "hlen",
        2,
        READONLY | FAST,
        ONE,
        "hash",
        "Returns the number of fields in a hash.",
        collections::hlen
    ),
    spec!(
        "hkeys",
        2,
        READONLY,
        ONE,
        "hash",
        "Returns all fields in a hash.",
        collections::hkeys
    ),
    spec!(
        "hvals",
        2,
        READONLY,
        ONE,
        "hash",
        "Returns all values in a hash.",
        collections::hvals
    ),
    spec!(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        ONE,
        "hash",
        "Increments the integer value of a field in a hash by a number.",
        collections::hincrby
    ),
    // Sets.
    spec!(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST,
        ONE,
        "set",
        "Adds one or more members to a set.",
        collections::sadd
    ),
    spec!(
        "srem",
        -3,
        WRITE | FAST,
        ONE,
        "set",
        "Removes one or more members from a set.",
        collections::srem
    ),
    spec!(
        "smembers",
        2,
        READONLY,
        ONE,
        "set",
        "Returns all members of a set.",
        collections::smembers
    ),
    spec!(
        "sismember",
        3,
        READONLY | FAST,
        ONE,
        "set",
        "Determines whether a member belongs to a set.",
        collections::sismember
    ),
    spec!(
        "scard",
        2,
        READONLY | FAST,
        ONE,
        "set",
        "Returns the number of members in a set.",
        collections::scard
    ),
    // Sorted sets.
    spec!(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        ONE,
        "sorted-set",
        "Adds one or more members to a sorted set, or updates their scores.",
        collections::zadd
    ),
    spec!(
        "zrem",
        -3,
        WRITE | FAST,
        ONE,
        "sorted-set",
        "Removes one or more members from a sorted set.",
        collections::zrem
    ),
    spec!(
        "zcard",
        2,
        READONLY | FAST,
        ONE,
        "sorted-set",
        "Returns the number of members in a sorted set.",
        collections::zcard
    ),
    spec!(
        "zscore",
        3,
        READONLY | FAST,
        ONE,
        "sorted-set",
        "Returns the score of a member in a sorted set.",
        collections::zscore
    ),
    spec!(
        "zrangebyscore",
        -4,
        READONLY,
        ONE,
        "sorted-set",
        "Returns members in a sorted set within a range of scores.",
        collections::zrangebyscore
    ),
    spec!(
        "zrevrangebyscore",
        -4,
        READONLY,
        ONE,
        "sorted-set",
        "Returns members in a sorted set within a range of scores in reverse order.",
        collections::zrevrangebyscore
    ),
    // Pub/sub.
    spec!(
        "subscribe",
        -2,
        PUBSUB_OK | NOSCRIPT,
        NONE,
        "pubsub",
        "Listens for messages published to channels.",
        pubsub::subscribe
    ),
    spec!(
        "unsubscribe",
        -1,
        PUBSUB_OK | NOSCRIPT,
        NONE,
        "pubsub",
        "Stops listening to messages posted to channels.",
        pubsub::unsubscribe
    ),
    spec!(
        "psubscribe",
        -2,
        PUBSUB_OK | NOSCRIPT,
        NONE,
        "pubsub",
        "Listens for messages published to channels that match one or more patterns.",
        pubsub::psubscribe
    ),
    spec!(
        "punsubscribe",
        -1,
        PUBSUB_OK | NOSCRIPT,
        NONE,
        "pubsub",
        "Stops listening to messages published to channels that match one or more patterns.",
        pubsub::punsubscribe
    ),
    spec!(
        "publish",
        3,
        FAST,
        NONE,
        "pubsub",
        "Posts a message to a channel.",
        pubsub::publish
    ),
    spec!(
        "pubsub",
        -2,
        0,
        NONE,
        "pubsub",
        "A container for Pub/Sub commands.",
        pubsub::pubsub
    ),
    // Scripting.
    spec!(
        "eval",
        -3,
        SCRIPT | NOSCRIPT | WRITE,
        (0, 0, 0),
        "scripting",
        "Executes a server-side Lua script.",
        scripting::eval
    ),
    spec!(
        "evalsha",
        -3,
        SCRIPT | NOSCRIPT | WRITE,
        (0, 0, 0),
        "scripting",
        "Executes a server-side Lua script by SHA1 digest.",
        scripting::evalsha
    ),
    spec!(
        "script",
        -2,
        NOSCRIPT,
        NONE,
        "scripting",
        "A container for Lua scripts management commands.",
        scripting::script
    ),
];

/// Longest command name, so lookups can lower-case into a stack buffer.
const MAX_NAME: usize = 24;

static BY_NAME: LazyLock<HashMap<&'static str, &'static Spec>> =
    LazyLock::new(|| COMMANDS.iter().map(|spec| (spec.name, spec)).collect());

/// The command named `name`, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut lower = [0u8; MAX_NAME];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    BY_NAME.get(std::str::from_utf8(lower).ok()?).copied()
}

/// What running one request produced.
#[derive(Debug)]
pub struct Executed {
    /// The reply or replies.
    pub answer: Answer,
    /// The reply may go out only once the journal has acknowledged the request's changes.
    pub wait_for_journal: bool,
}

impl Executed {
    /// An answer that needs no acknowledgement (nothing was written).
    fn at_once(reply: Reply) -> Executed {
        Executed {
            answer: Answer::One(reply),
            wait_for_journal: false,
        }
    }
}

/// Runs one command at `now` for the connection `session`, holding the script gate for it:
/// shared for an ordinary command, exclusively for a script, which is what makes a script
/// atomic with respect to every other client (see [`scripting`]).
pub fn execute(shared: &Shared, session: &mut Session, args: &[Bytes], now: u64) -> Executed {
    let Some(name) = args.first() else {
        return Executed::at_once(error("ERR empty command"));
    };
    bump(&shared.stats.commands_processed);
    let Some(spec) = lookup(name) else {
        if !session.authenticated {
            return Executed::at_once(noauth());
        }
        return Executed::at_once(unknown_command(args));
    };
    if !session.authenticated && spec.flags & NO_AUTH == 0 {
        return Executed::at_once(noauth());
    }
    if session.subscribed_resp2() && spec.flags & PUBSUB_OK == 0 {
        return Executed::at_once(error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    if !arity_ok(spec, args.len()) {
        return Executed::at_once(wrong_args(spec.name));
    }
    if spec.flags & WRITE != 0
        && spec.flags & SCRIPT == 0
        && let Some(refusal) = write_refusal(shared)
    {
        // Refused before anything changed: nothing to wait for.
        return Executed::at_once(refusal);
    }
    if let Ok(mut last) = session.info.last_command.lock() {
        *last = Bytes::from_static(spec.name.as_bytes());
    }
    let script = spec.flags & SCRIPT != 0;
    let mut ctx = Ctx {
        shared,
        session,
        now,
    };
    let answer = if script {
        let _exclusive = shared.resp.gate.write().unwrap_or_else(|e| e.into_inner());
        (spec.handler)(&mut ctx, args)
    } else {
        let _shared = shared.resp.shared_gate();
        (spec.handler)(&mut ctx, args)
    };
    // Every write waits, except the TTL-only ones, which ride in the next group. A script
    // checks the journal per `redis.call`; one that failed because the journal is poisoned
    // goes out at once (waiting would only find the journal failed and drop the reply), as a
    // refused write changed nothing it could acknowledge.
    let refused_script =
        script && matches!(answer, Answer::One(Reply::Error(_))) && shared.writes_refused();
    Executed {
        answer,
        wait_for_journal: spec.flags & WRITE != 0 && spec.flags & TTL_ONLY == 0 && !refused_script,
    }
}

/// Whether `argc` arguments (name included) fit the command's arity.
pub fn arity_ok(spec: &Spec, argc: usize) -> bool {
    let argc = argc as i32;
    if spec.arity >= 0 {
        argc == spec.arity
    } else {
        argc >= -spec.arity
    }
}

/// The refusal of a write while the journal is poisoned: Redis's answer when its AOF
/// cannot be written, with the journal's error.
pub fn write_refusal(shared: &Shared) -> Option<Reply> {
    let journal = shared.journal.as_ref()?;
    if !journal.is_poisoned() {
        return None;
    }
    let reason = journal
        .poison_reason()
        .unwrap_or_else(|| super::JOURNAL_FAILED.to_string());
    Some(error(format!(
        "MISCONF Errors writing to the AOF file: {reason}"
    )))
}

// ----- Reply helpers shared by the command modules. -----

/// An error reply; the text starts with its code (`ERR`, `WRONGTYPE`, …).
pub fn error(text: impl Into<String>) -> Reply {
    Reply::Error(Bytes::from(text.into()))
}

/// `-ERR syntax error`.
pub fn syntax_error() -> Reply {
    Reply::Error(Bytes::from_static(b"ERR syntax error"))
}

/// `-ERR value is not an integer or out of range`.
pub fn not_integer() -> Reply {
    Reply::Error(Bytes::from_static(
        b"ERR value is not an integer or out of range",
    ))
}

/// `-NOAUTH Authentication required.`
pub fn noauth() -> Reply {
    Reply::Error(Bytes::from_static(b"NOAUTH Authentication required."))
}

/// `-ERR wrong number of arguments for '<name>' command`.
pub fn wrong_args(name: &str) -> Reply {
    error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// `-ERR unknown subcommand '<sub>'. Try <COMMAND> HELP.`
pub fn unknown_subcommand(command: &str, sub: &[u8]) -> Reply {
    error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        truncated(sub, 128),
        command.to_ascii_uppercase()
    ))
}

/// Redis 7.0's text for a command it does not know, arguments included:
/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' `.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let mut shown = String::new();
    for arg in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push('\'');
        shown.push_str(&truncated(arg, room));
        shown.push_str("' ");
    }
    error(format!(
        "ERR unknown command '{}', with args beginning with: {shown}",
        truncated(&args[0], 128)
    ))
}

fn truncated(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// The reply to a store refusal.
pub fn store_error(error: StoreError) -> Reply {
    Reply::Error(Bytes::from_static(match error {
        StoreError::OutOfMemory => b"OOM command not allowed when used memory > 'maxmemory'.",
        StoreError::WrongType => {
            b"WRONGTYPE Operation against a key holding the wrong kind of value"
        }
        StoreError::NotInteger => b"ERR value is not an integer or out of range",
        StoreError::Overflow => b"ERR increment or decrement would overflow",
        StoreError::TooLarge => b"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
    }))
}

/// A bulk string reply.
pub fn bulk(bytes: impl Into<Bytes>) -> Reply {
    Reply::Bulk(bytes.into())
}

/// A status reply.
pub fn simple(text: &'static str) -> Reply {
    Reply::Simple(Bytes::from_static(text.as_bytes()))
}

/// Parses a signed decimal as Redis does (`string2ll`).
pub fn parse_int(arg: &[u8]) -> Option<i64> {
    sessiond_decimal::parse_i64(arg)
}

/// Parses a score or other float as Redis does (`strtod` on the whole argument, with
/// `inf`/`-inf`/`+inf`; NaN refused).
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(char::is_whitespace) {
        return None;
    }
    let value = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        other => other.parse::<f64>().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// Whether `arg` equals the keyword `word` (lower-case), case-insensitively.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests;
