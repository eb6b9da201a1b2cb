//! The RESP command table: one row per command, which drives dispatch.
//!
//! A row gives the name, the arity (negative: at least that many arguments, the name
//! included), the flags, the key positions (first, last, step, as `COMMAND` reports them), the
//! group and the handler, and the summary `COMMAND DOCS` shows. [`super::execute`] enforces
//! what the flags say before a handler runs: authentication ([`Flags::NO_AUTH`]), the RESP2
//! subscribed mode ([`Flags::PUBSUB_OK`]), the refusal of writes on a poisoned journal
//! ([`Flags::WRITE`]) and past the memory limit ([`Flags::DENYOOM`]), the script gate
//! ([`Flags::EXCLUSIVE`]), queueing inside `MULTI` ([`Flags::TX_CONTROL`]) and refusal
//! there ([`Flags::NO_MULTI`]), what runs in the busy state ([`Flags::ALLOW_BUSY`],
//! [`allows_busy`]) and which replies wait for the journal (writes, except
//! [`Flags::TTL_ONLY`]); scripts refuse [`Flags::NOSCRIPT`] commands.
//!
//! Roles: a command flagged [`Flags::ADMIN_ROLE`], or a subcommand [`admin_only`] lists for a
//! [`Flags::ADMIN_SUBCOMMANDS`] command, is refused to an app user with Redis's `-NOPERM`
//! text ([`permission_refusal`]), by `prepare` and by `redis.call` in scripts alike.
//! Everything else is what session clients need, so the app role runs it.

use bytes::Bytes;
use sessiond_proto_resp::Reply;

use super::args::{Args, Handled};
use super::{
    Ctx, collections, dump, element_scan, encoding, error, hash_ops, is, key_ops, keys, lists,
    multi, pubsub, scripting, server, sessions, set_ops, sort, streams, string_ops, strings,
    zset_ops,
};
use crate::exec::auth::Identity;

/// If running `args` (the name first) needs the admin role, the name Redis uses for it in
/// a `NOPERM` error: `flushall`, or `config|set` for a subcommand.
///
/// The subcommands: `CONFIG SET` of anything but `notify-keyspace-events` (which Spring
/// Session's indexed repository sets at start-up, as an application), `CONFIG RESETSTAT`,
/// `SCRIPT FLUSH`/`KILL` (other clients' scripts), `CLIENT LIST`/`KILL` (other clients'
/// addresses). `CONFIG GET` stays open: it never shows a secret.
pub fn admin_only(spec: &Spec, args: &[Bytes]) -> Option<String> {
    if spec.flags.contains(Flags::ADMIN_ROLE) {
        return Some(spec.name.to_string());
    }
    if !spec.flags.contains(Flags::ADMIN_SUBCOMMANDS) {
        return None;
    }
    let sub = args.get(1)?;
    let admin = match spec.name {
        "config" => {
            is(sub, "resetstat")
                || (is(sub, "set")
                    && !args[2..]
                        .chunks(2)
                        .all(|pair| is(&pair[0], "notify-keyspace-events")))
        }
        "script" => is(sub, "flush") || is(sub, "kill"),
        "client" => is(sub, "list") || is(sub, "kill"),
        _ => false,
    };
    admin.then(|| {
        format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )
    })
}

/// Whether `args` (the name first, checked against `spec`) runs in the busy state, without the
/// script gate (`exec::busy`): the [`Flags::ALLOW_BUSY`] commands, and Redis's `allow-busy`
/// subcommands `SCRIPT KILL`, `FUNCTION KILL` and `FUNCTION STATS`.
pub fn allows_busy(spec: &Spec, args: &[Bytes]) -> bool {
    if spec.flags.contains(Flags::ALLOW_BUSY) {
        return true;
    }
    let Some(sub) = args.get(1) else {
        return false;
    };
    match spec.name {
        "script" => is(sub, "kill"),
        "function" => is(sub, "kill") || is(sub, "stats"),
        _ => false,
    }
}

/// Redis's refusal of a command `user` may not run, or `None` if it may.
pub fn permission_refusal(user: &Identity, spec: &Spec, args: &[Bytes]) -> Option<Reply> {
    if user.is_admin() {
        return None;
    }
    let name = admin_only(spec, args)?;
    Some(error(format!(
        "NOPERM User {} has no permissions to run the '{name}' command",
        user.name
    )))
}

/// What a command is and how dispatch treats it, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u16);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Changes the keyspace: refused while the journal is poisoned; its reply waits for the
    /// journal unless [`Flags::TTL_ONLY`].
    pub const WRITE: Flags = Flags(1);
    /// Only reads the keyspace.
    pub const READONLY: Flags = Flags(1 << 1);
    /// A write that changes only deadlines: its journal record rides in the next group and
    /// its reply does not wait (a lost TTL refresh only shortens a session's life).
    pub const TTL_ONLY: Flags = Flags(1 << 2);
    /// Allowed before `AUTH`.
    pub const NO_AUTH: Flags = Flags(1 << 3);
    /// Allowed in RESP2's subscribed mode.
    pub const PUBSUB_OK: Flags = Flags(1 << 4);
    /// Not callable from a script.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// Administration (`COMMAND` shows `admin`).
    pub const ADMIN: Flags = Flags(1 << 6);
    /// May grow memory: refused while the store is past its limit (which only a lowered
    /// `maxmemory` can cause, since writes are charged before they apply).
    pub const DENYOOM: Flags = Flags(1 << 7);
    /// Runs a script: takes the script gate exclusively.
    pub const SCRIPT: Flags = Flags(1 << 8);
    /// O(1) or O(log n) (`COMMAND` shows `fast`).
    pub const FAST: Flags = Flags(1 << 9);
    /// Needs the admin role: refused with `-NOPERM` for an app user.
    pub const ADMIN_ROLE: Flags = Flags(1 << 10);
    /// Some subcommands need the admin role; [`admin_only`] names them.
    pub const ADMIN_SUBCOMMANDS: Flags = Flags(1 << 11);
    /// Runs holding the script gate exclusively (scripts, `EXEC`, the multi-key commands).
    /// Only a script makes others busy meanwhile (`exec::busy`).
    pub const EXCLUSIVE: Flags = Flags(1 << 12);
    /// Runs at once inside `MULTI` instead of being queued (`MULTI`, `EXEC`, `DISCARD`,
    /// `WATCH`, `QUIT`, `RESET`).
    pub const TX_CONTROL: Flags = Flags(1 << 13);
    /// Runs without the script gate in the busy state (Redis's `allow-busy`: `AUTH`, `HELLO`,
    /// `MULTI`, `DISCARD`, `WATCH`, `UNWATCH`, `QUIT`, `RESET`; [`allows_busy`] adds the
    /// subcommands). None of them changes the keyspace or reads a value: they touch the
    /// connection's own state and the thread-safe registries (users, watches), and `WATCH`
    /// only looks whether its keys are alive, under their shard locks, without reaping an
    /// expired one or calling the observer (`Store::is_live`), so the script, whose clock
    /// stands still, finds the keyspace as it left it.
    pub const ALLOW_BUSY: Flags = Flags(1 << 14);
    /// Refused inside `MULTI` (`-ERR Command not allowed inside a transaction`, which aborts
    /// the transaction): Redis's `no-multi`, `SAVE` and `SHUTDOWN`.
    pub const NO_MULTI: Flags = Flags(1 << 15);

    /// The union of two sets.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether every flag of `other` is in this set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A handler: reads its arguments (after the name) and answers, or fails with an error reply.
pub type Handler = fn(&mut Ctx<'_>, &mut Args<'_>) -> Handled;

/// One command: what `COMMAND` reports about it and the handler that runs it.
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (name included); `-n` at least n.
    pub arity: i32,
    /// How dispatch treats the command.
    pub flags: Flags,
    /// First key argument (0: none), last (-1: the last argument), step.
    pub keys: KeySpec,
    /// Redis's command group, for `COMMAND DOCS`.
    pub group: &'static str,
    /// A one-line summary, for `COMMAND DOCS`.
    pub summary: &'static str,
    /// Runs the command.
    pub handler: Handler,
}

/// Key positions: first, last (negative counts from the end) and step.
pub type KeySpec = (i32, i32, i32);
const NO_KEYS: KeySpec = (0, 0, 0);
const ONE: KeySpec = (1, 1, 1);
const ALL: KeySpec = (1, -1, 1);

macro_rules! command {
    ($name:literal, $arity:expr, [$($flag:ident),*], $keys:expr, $group:literal, $handler:path, $summary:literal) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: Flags::NONE$(.with(Flags::$flag))*,
            keys: $keys,
            group: $group,
            summary: $summary,
            handler: $handler,
        }
    };
}

/// Every command sessiond implements.
#[rustfmt::skip]
/// The position of `spec` in [`COMMANDS`] (the index of its counters in `stats::More`),
/// from its address: every `Spec` a lookup returns is a row of the table. A `Spec` from
/// elsewhere gives an index past the end, which the counters ignore.
pub fn row(spec: &'static Spec) -> usize {
    let offset = (spec as *const Spec as usize).wrapping_sub(COMMANDS.as_ptr() as usize);
    let row = offset / std::mem::size_of::<Spec>().max(1);
    match COMMANDS.get(row) {
        Some(found) if std::ptr::eq(found, spec) => row,
        _ => usize::MAX,
    }
}

pub static COMMANDS: &[Spec] = &[
    // Connection and server.
    command!(
        "ping",
        -1,
        [FAST, PUBSUB_OK],
        NO_KEYS,
        "connection",
        server::ping,
        "Returns the server's liveliness response."
    ),
    command!(
        "echo",
        2,
        [FAST],
        NO_KEYS,
        "connection",
        server::echo,
        "Returns the given string."
    ),
    command!(
        "select",
        2,
        [FAST],
        NO_KEYS,
        "connection",
        server::select,
        "Changes the selected database."
    ),
    command!(
        "auth",
        -2,
        [FAST, NO_AUTH, NOSCRIPT, ALLOW_BUSY],
        NO_KEYS,
        "connection",
        server::auth,
        "Authenticates the connection."
    ),
    command!(
        "hello",
        -1,
        [FAST, NO_AUTH, NOSCRIPT, ALLOW_BUSY],
        NO_KEYS,
        "connection",
        server::hello,
        "Handshakes with the Redis server."
    ),
    command!(
        "client",
        -2,
        [NOSCRIPT, ADMIN_SUBCOMMANDS],
        NO_KEYS,
        "connection",
        server::client,
        "A container for client connection commands."
    ),
    command!(
        "quit",
        -1,
        [FAST, NO_AUTH, PUBSUB_OK, NOSCRIPT, TX_CONTROL, ALLOW_BUSY],
        NO_KEYS,
        "connection",
        server::quit,
        "Closes the connection."
    ),
    command!(
        "reset",
        1,
        [FAST, NO_AUTH, PUBSUB_OK, NOSCRIPT, TX_CONTROL, ALLOW_BUSY],
        NO_KEYS,
        "connection",
        server::reset,
        "Resets the connection."
    ),
    command!(
        "info",
        -1,
        [],
        NO_KEYS,
        "server",
        server::info,
        "Returns information and statistics about the server."
    ),
    command!(
        "command",
        -1,
        [],
        NO_KEYS,
        "server",
        server::command,
        "Returns detailed information about all commands."
    ),
    command!(
        "config",
        -2,
        [ADMIN, NOSCRIPT, ADMIN_SUBCOMMANDS],
        NO_KEYS,
        "server",
        server::config,
        "A container for server configuration commands."
    ),
    command!(
        "dbsize",
        1,
        [READONLY, FAST],
        NO_KEYS,
        "server",
        server::dbsize,
        "Returns the number of keys in the database."
    ),
    command!(
        "flushdb",
        -1,
        [WRITE, ADMIN_ROLE, EXCLUSIVE],
        NO_KEYS,
        "server",
        server::flushdb,
        "Removes all keys from the current database."
    ),
    command!(
        "flushall",
        -1,
        [WRITE, ADMIN_ROLE, EXCLUSIVE],
        NO_KEYS,
        "server",
        server::flushall,
        "Removes all keys from all databases."
    ),
    command!(
        "time",
        1,
        [FAST],
        NO_KEYS,
        "server",
        server::time,
        "Returns the server time."
    ),
    command!(
        "save",
        1,
        [ADMIN, NOSCRIPT, ADMIN_ROLE, NO_MULTI],
        NO_KEYS,
        "server",
        server::save,
        "Waits until everything written so far is persisted (the journal is the save here)."
    ),
    command!(
        "shutdown",
        -1,
        [ADMIN, NOSCRIPT, ADMIN_ROLE, NO_MULTI, ALLOW_BUSY],
        NO_KEYS,
        "server",
        server::shutdown,
        "Stops the server gracefully, as SIGTERM does."
    ),
    command!(
        "bgrewriteaof",
        1,
        [ADMIN, NOSCRIPT, ADMIN_ROLE],
        NO_KEYS,
        "server",
        server::bgrewriteaof,
        "Asynchronously rewrites the append-only file to disk."
    ),
    command!(
        "lastsave",
        1,
        [FAST],
        NO_KEYS,
        "server",
        server::lastsave,
        "Returns the Unix timestamp of the last successful save to disk."
    ),
    command!(
        "function",
        -2,
        [NOSCRIPT],
        NO_KEYS,
        "scripting",
        server::function,
        "A container for function commands."
    ),
    command!(
        "latency",
        -2,
        [ADMIN, NOSCRIPT],
        NO_KEYS,
        "server",
        super::latency::latency,
        "A container for latency diagnostics commands (none recorded: empty answers)."
    ),
    // Strings.
    command!(
        "get",
        2,
        [READONLY, FAST],
        ONE,
        "string",
        strings::get,
        "Returns the string value of a key."
    ),
    command!(
        "set",
        -3,
        [WRITE, DENYOOM],
        ONE,
        "string",
        strings::set,
        "Sets the string value of a key, ignoring its type."
    ),
    command!(
        "setex",
        4,
        [WRITE, DENYOOM],
        ONE,
        "string",
        strings::setex,
        "Sets the string value and expiration time of a key."
    ),
    command!(
        "psetex",
        4,
        [WRITE, DENYOOM],
        ONE,
        "string",
        strings::psetex,
        "Sets the string value and expiration time in milliseconds of a key."
    ),
    command!(
        "setnx",
        3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        strings::setnx,
        "Set the string value of a key only when the key doesn't exist."
    ),
    command!(
        "getex",
        -2,
        [WRITE, FAST, TTL_ONLY],
        ONE,
        "string",
        strings::getex,
        "Returns the string value of a key after setting its expiration time."
    ),
    command!(
        "getdel",
        2,
        [WRITE, FAST],
        ONE,
        "string",
        strings::getdel,
        "Returns the string value of a key after deleting the key."
    ),
    command!(
        "mget",
        -2,
        [READONLY, FAST],
        ALL,
        "string",
        strings::mget,
        "Atomically returns the string values of one or more keys."
    ),
    command!(
        "mset",
        -3,
        [WRITE, DENYOOM],
        (1, -1, 2),
        "string",
        strings::mset,
        "Atomically creates or modifies the string values of one or more keys."
    ),
    command!(
        "append",
        3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        strings::append,
        "Appends a string to the value of a key. Creates the key if it doesn't exist."
    ),
    command!(
        "strlen",
        2,
        [READONLY, FAST],
        ONE,
        "string",
        strings::strlen,
        "Returns the length of a string value."
    ),
    command!(
        "incr",
        2,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        strings::incr,
        "Increments the integer value of a key by one."
    ),
    command!(
        "decr",
        2,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        strings::decr,
        "Decrements the integer value of a key by one."
    ),
    command!(
        "incrby",
        3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        strings::incrby,
        "Increments the integer value of a key by a number."
    ),
    command!(
        "decrby",
        3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        strings::decrby,
        "Decrements a number from the integer value of a key."
    ),
    // Keys.
    command!(
        "del",
        -2,
        [WRITE],
        ALL,
        "generic",
        keys::del,
        "Deletes one or more keys."
    ),
    command!(
        "unlink",
        -2,
        [WRITE, FAST],
        ALL,
        "generic",
        keys::del,
        "Asynchronously deletes one or more keys."
    ),
    command!(
        "exists",
        -2,
        [READONLY, FAST],
        ALL,
        "generic",
        keys::exists,
        "Determines whether one or more keys exist."
    ),
    command!(
        "expire",
        -3,
        [WRITE, FAST, TTL_ONLY],
        ONE,
        "generic",
        keys::expire,
        "Sets the expiration time of a key in seconds."
    ),
    command!(
        "pexpire",
        -3,
        [WRITE, FAST, TTL_ONLY],
        ONE,
        "generic",
        keys::pexpire,
        "Sets the expiration time of a key in milliseconds."
    ),
    command!(
        "expireat",
        -3,
        [WRITE, FAST, TTL_ONLY],
        ONE,
        "generic",
        keys::expireat,
        "Sets the expiration time of a key to a Unix timestamp."
    ),
    command!(
        "pexpireat",
        -3,
        [WRITE, FAST, TTL_ONLY],
        ONE,
        "generic",
        keys::pexpireat,
        "Sets the expiration time of a key to a Unix milliseconds timestamp."
    ),
    command!(
        "ttl",
        2,
        [READONLY, FAST],
        ONE,
        "generic",
        keys::ttl,
        "Returns the expiration time in seconds of a key."
    ),
    command!(
        "pttl",
        2,
        [READONLY, FAST],
        ONE,
        "generic",
        keys::pttl,
        "Returns the expiration time in milliseconds of a key."
    ),
    command!(
        "expiretime",
        2,
        [READONLY, FAST],
        ONE,
        "generic",
        keys::expiretime,
        "Returns the expiration time of a key as a Unix timestamp."
    ),
    command!(
        "pexpiretime",
        2,
        [READONLY, FAST],
        ONE,
        "generic",
        keys::pexpiretime,
        "Returns the expiration time of a key as a Unix milliseconds timestamp."
    ),
    command!(
        "persist",
        2,
        [WRITE, FAST, TTL_ONLY],
        ONE,
        "generic",
        keys::persist,
        "Removes the expiration time of a key."
    ),
    command!(
        "type",
        2,
        [READONLY, FAST],
        ONE,
        "generic",
        keys::type_,
        "Determines the type of value stored at a key."
    ),
    command!(
        "rename",
        3,
        [WRITE],
        (1, 2, 1),
        "generic",
        keys::rename,
        "Renames a key and overwrites the destination."
    ),
    command!(
        "renamenx",
        3,
        [WRITE, FAST],
        (1, 2, 1),
        "generic",
        keys::renamenx,
        "Renames a key only when the target key name doesn't exist."
    ),
    command!(
        "scan",
        -2,
        [READONLY],
        NO_KEYS,
        "generic",
        keys::scan,
        "Iterates over the key names in the database."
    ),
    command!(
        "keys",
        2,
        [READONLY],
        NO_KEYS,
        "generic",
        keys::keys,
        "Returns all key names that match a pattern."
    ),
    // Hashes.
    command!(
        "hset",
        -4,
        [WRITE, DENYOOM, FAST],
        ONE,
        "hash",
        collections::hset,
        "Creates or modifies the value of a field in a hash."
    ),
    command!(
        "hmset",
        -4,
        [WRITE, DENYOOM, FAST],
        ONE,
        "hash",
        collections::hmset,
        "Sets the values of multiple fields."
    ),
    command!(
        "hget",
        3,
        [READONLY, FAST],
        ONE,
        "hash",
        collections::hget,
        "Returns the value of a field in a hash."
    ),
    command!(
        "hmget",
        -3,
        [READONLY, FAST],
        ONE,
        "hash",
        collections::hmget,
        "Returns the values of all fields in a hash."
    ),
    command!(
        "hgetall",
        2,
        [READONLY],
        ONE,
        "hash",
        collections::hgetall,
        "Returns all fields and values in a hash."
    ),
    command!(
        "hdel",
        -3,
        [WRITE, FAST],
        ONE,
        "hash",
        collections::hdel,
        "Deletes one or more fields and their values from a hash."
    ),
    command!(
        "hexists",
        3,
        [READONLY, FAST],
        ONE,
        "hash",
        collections::hexists,
        "Determines whether a field exists in a hash."
    ),
    command!(
        "hlen",
        2,
        [READONLY, FAST],
        ONE,
        "hash",
        collections::hlen,
        "Returns the number of fields in a hash."
    ),
    command!(
        "hkeys",
        2,
        [READONLY],
        ONE,
        "hash",
        collections::hkeys,
        "Returns all fields in a hash."
    ),
    command!(
        "hvals",
        2,
        [READONLY],
        ONE,
        "hash",
        collections::hvals,
        "Returns all values in a hash."
    ),
    command!(
        "hincrby",
        4,
        [WRITE, DENYOOM, FAST],
        ONE,
        "hash",
        collections::hincrby,
        "Increments the integer value of a field in a hash by a number."
    ),
    // Sets.
    command!(
        "sadd",
        -3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "set",
        collections::sadd,
        "Adds one or more members to a set."
    ),
    command!(
        "srem",
        -3,
        [WRITE, FAST],
        ONE,
        "set",
        collections::srem,
        "Removes one or more members from a set."
    ),
    command!(
        "smembers",
        2,
        [READONLY],
        ONE,
        "set",
        collections::smembers,
        "Returns all members of a set."
    ),
    command!(
        "sismember",
        3,
        [READONLY, FAST],
        ONE,
        "set",
        collections::sismember,
        "Determines whether a member belongs to a set."
    ),
    command!(
        "scard",
        2,
        [READONLY, FAST],
        ONE,
        "set",
        collections::scard,
        "Returns the number of members in a set."
    ),
    // Sorted sets.
    command!(
        "zadd",
        -4,
        [WRITE, DENYOOM, FAST],
        ONE,
        "sorted-set",
        collections::zadd,
        "Adds one or more members to a sorted set, or updates their scores."
    ),
    command!(
        "zrem",
        -3,
        [WRITE, FAST],
        ONE,
        "sorted-set",
        collections::zrem,
        "Removes one or more members from a sorted set."
    ),
    // Lists (`lists`).
    command!(
        "dump",
        2,
        [READONLY],
        ONE,
        "generic",
        dump::dump,
        "Returns a serialized representation of the value stored at a key."
    ),
    command!(
        "restore",
        -4,
        [WRITE, DENYOOM],
        ONE,
        "generic",
        dump::restore,
        "Creates a key from the serialized representation of a value."
    ),
    command!(
        "sort",
        -2,
        [WRITE, DENYOOM],
        ONE,
        "generic",
        sort::sort,
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result."
    ),
    command!(
        "sort_ro",
        -2,
        [READONLY],
        ONE,
        "generic",
        sort::sort_ro,
        "Returns the sorted elements of a list, a set, or a sorted set."
    ),
    // Streams.
    command!(
        "xadd",
        -5,
        [WRITE, DENYOOM, FAST],
        ONE,
        "stream",
        streams::xadd,
        "Appends a new message to a stream. Creates the key if it doesn't exist."
    ),
    command!(
        "xrange",
        -4,
        [READONLY],
        ONE,
        "stream",
        streams::xrange,
        "Returns the messages from a stream within a range of IDs."
    ),
    command!(
        "xrevrange",
        -4,
        [READONLY],
        ONE,
        "stream",
        streams::xrevrange,
        "Returns the messages from a stream within a range of IDs in reverse order."
    ),
    command!(
        "xlen",
        2,
        [READONLY, FAST],
        ONE,
        "stream",
        streams::xlen,
        "Return the number of messages in a stream."
    ),
    command!(
        "xdel",
        -3,
        [WRITE, FAST],
        ONE,
        "stream",
        streams::xdel,
        "Returns the number of messages after removing them from a stream."
    ),
    command!(
        "xtrim",
        -4,
        [WRITE],
        ONE,
        "stream",
        streams::xtrim,
        "Deletes messages from the beginning of a stream."
    ),
    command!(
        "xsetid",
        -3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "stream",
        streams::xsetid,
        "An internal command for replicating stream values."
    ),
    command!(
        "xgroup",
        -2,
        [WRITE, DENYOOM],
        (2, 2, 1),
        "stream",
        streams::xgroup,
        "Creates, destroys or changes consumer groups and their consumers."
    ),
    command!(
        "xreadgroup",
        -7,
        [WRITE],
        NO_KEYS,
        "stream",
        streams::xreadgroup,
        "Returns new or historical messages from a stream for a consumer in a group."
    ),
    command!(
        "xread",
        -4,
        [READONLY],
        NO_KEYS,
        "stream",
        streams::xread,
        "Returns messages from multiple streams with IDs greater than the ones requested."
    ),
    command!(
        "xack",
        -4,
        [WRITE, FAST],
        ONE,
        "stream",
        streams::xack,
        "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream."
    ),
    command!(
        "xpending",
        -3,
        [READONLY],
        ONE,
        "stream",
        streams::xpending,
        "Returns the information and entries from a stream consumer group's pending entries list."
    ),
    command!(
        "xclaim",
        -6,
        [WRITE, FAST],
        ONE,
        "stream",
        streams::xclaim,
        "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member."
    ),
    command!(
        "xautoclaim",
        -6,
        [WRITE, FAST],
        ONE,
        "stream",
        streams::xautoclaim,
        "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member."
    ),
    command!(
        "xinfo",
        -2,
        [READONLY],
        (2, 2, 1),
        "stream",
        streams::xinfo,
        "Returns information about a stream, its consumer groups or the consumers of a group."
    ),
    command!(
        "lpush",
        -3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "list",
        lists::lpush,
        "Prepends one or more elements to a list. Creates the key if it doesn't exist."
    ),
    command!(
        "rpush",
        -3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "list",
        lists::rpush,
        "Appends one or more elements to a list. Creates the key if it doesn't exist."
    ),
    command!(
        "lpushx",
        -3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "list",
        lists::lpushx,
        "Prepends one or more elements to a list only when the list exists."
    ),
    command!(
        "rpushx",
        -3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "list",
        lists::rpushx,
        "Appends an element to a list only when the list exists."
    ),
    command!(
        "lpop",
        -2,
        [WRITE, FAST],
        ONE,
        "list",
        lists::lpop,
        "Returns the first elements in a list after removing it. Deletes the list if the last element was popped."
    ),
    command!(
        "rpop",
        -2,
        [WRITE, FAST],
        ONE,
        "list",
        lists::rpop,
        "Returns and removes the last elements of a list. Deletes the list if the last element was popped."
    ),
    command!(
        "llen",
        2,
        [READONLY, FAST],
        ONE,
        "list",
        lists::llen,
        "Returns the length of a list."
    ),
    command!(
        "lrange",
        4,
        [READONLY],
        ONE,
        "list",
        lists::lrange,
        "Returns a range of elements from a list."
    ),
    command!(
        "lindex",
        3,
        [READONLY],
        ONE,
        "list",
        lists::lindex,
        "Returns an element from a list by its index."
    ),
    command!(
        "lset",
        4,
        [WRITE, DENYOOM],
        ONE,
        "list",
        lists::lset,
        "Sets the value of an element in a list by its index."
    ),
    command!(
        "linsert",
        5,
        [WRITE, DENYOOM],
        ONE,
        "list",
        lists::linsert,
        "Inserts an element before or after another element in a list."
    ),
    command!(
        "lrem",
        4,
        [WRITE],
        ONE,
        "list",
        lists::lrem,
        "Removes elements from a list. Deletes the list if the last element was removed."
    ),
    command!(
        "ltrim",
        4,
        [WRITE],
        ONE,
        "list",
        lists::ltrim,
        "Removes elements from both ends a list. Deletes the list if all elements were trimmed."
    ),
    command!(
        "lpos",
        -3,
        [READONLY],
        ONE,
        "list",
        lists::lpos,
        "Returns the index of matching elements in a list."
    ),
    command!(
        "lmove",
        5,
        [WRITE, DENYOOM],
        (1, 2, 1),
        "list",
        lists::lmove,
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved."
    ),
    command!(
        "rpoplpush",
        3,
        [WRITE, DENYOOM],
        (1, 2, 1),
        "list",
        lists::rpoplpush,
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped."
    ),
    command!(
        "lmpop",
        -4,
        [WRITE],
        NO_KEYS,
        "list",
        lists::lmpop,
        "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped."
    ),
    command!(
        "blpop",
        -3,
        [WRITE],
        (1, -2, 1),
        "list",
        lists::blpop,
        "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."
    ),
    command!(
        "brpop",
        -3,
        [WRITE],
        (1, -2, 1),
        "list",
        lists::brpop,
        "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."
    ),
    command!(
        "blmove",
        6,
        [WRITE, DENYOOM],
        (1, 2, 1),
        "list",
        lists::blmove,
        "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved."
    ),
    command!(
        "brpoplpush",
        4,
        [WRITE, DENYOOM],
        (1, 2, 1),
        "list",
        lists::brpoplpush,
        "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped."
    ),
    command!(
        "blmpop",
        -5,
        [WRITE],
        NO_KEYS,
        "list",
        lists::blmpop,
        "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped."
    ),
    command!(
        "zcard",
        2,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        collections::zcard,
        "Returns the number of members in a sorted set."
    ),
    command!(
        "zscore",
        3,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        collections::zscore,
        "Returns the score of a member in a sorted set."
    ),
    command!(
        "zrangebyscore",
        -4,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::range_by::<{ zset_ops::BY_SCORE }, false>,
        "Returns members in a sorted set within a range of scores."
    ),
    command!(
        "zrevrangebyscore",
        -4,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::range_by::<{ zset_ops::BY_SCORE }, true>,
        "Returns members in a sorted set within a range of scores in reverse order."
    ),
    // The rest of the Redis core (strings, keys, hashes, sets, sorted sets): modules
    // string_ops, key_ops, encoding, hash_ops, set_ops, zset_ops, element_scan.
    command!(
        "getset",
        3,
        [WRITE, DENYOOM, FAST],
        ONE,
        "string",
        string_ops::getset,
        "Returns the previous string value of a key after setting it to a new value."
    ),
    command!(
        "getrange",
        4,
        [READONLY],
        ONE,
        "string",
        string_ops::getrange,
        "Returns a substring of the string stored at a key."
    ),
    command!(
        "substr",
        4,
        [READONLY],
        ONE,
        "string",
        string_ops::getrange,
        "Returns a substring from a string value."
    ),
    command!(
        "setrange",
        4,
        [WRITE, DENYOOM, EXCLUSIVE],
        ONE,
        "string",
        string_ops::setrange,
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."
    ),
    command!(
        "getbit",
        3,
        [READONLY, FAST],
        ONE,
        "bitmap",
        string_ops::getbit,
        "Returns a bit value by offset."
    ),
    command!(
        "setbit",
        4,
        [WRITE, DENYOOM, EXCLUSIVE],
        ONE,
        "bitmap",
        string_ops::setbit,
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist."
    ),
    command!(
        "incrbyfloat",
        3,
        [WRITE, DENYOOM, FAST, EXCLUSIVE],
        ONE,
        "string",
        string_ops::incrbyfloat,
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."
    ),
    command!(
        "msetnx",
        -3,
        [WRITE, DENYOOM, EXCLUSIVE],
        (1, -1, 2),
        "string",
        string_ops::msetnx,
        "Atomically modifies the string values of one or more keys only when all keys don't exist."
    ),
    command!(
        "lcs",
        -3,
        [READONLY, EXCLUSIVE],
        (1, 2, 1),
        "string",
        string_ops::lcs,
        "Finds the longest common substring."
    ),
    command!(
        "copy",
        -3,
        [WRITE, DENYOOM, EXCLUSIVE],
        (1, 2, 1),
        "generic",
        key_ops::copy,
        "Copies the value of a key to a new key."
    ),
    command!(
        "move",
        3,
        [WRITE, FAST, EXCLUSIVE],
        ONE,
        "generic",
        key_ops::move_,
        "Moves a key to another database."
    ),
    command!(
        "touch",
        -2,
        [READONLY, FAST],
        ALL,
        "generic",
        key_ops::touch,
        "Returns the number of existing keys out of those specified after updating the time they were last accessed."
    ),
    command!(
        "randomkey",
        1,
        [READONLY],
        NO_KEYS,
        "generic",
        key_ops::randomkey,
        "Returns a random key name from the database."
    ),
    command!(
        "memory",
        -2,
        [READONLY],
        NO_KEYS,
        "server",
        key_ops::memory,
        "Estimates the memory usage of a key."
    ),
    command!(
        "wait",
        3,
        [],
        NO_KEYS,
        "generic",
        key_ops::wait,
        "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed."
    ),
    command!(
        "object",
        -2,
        [READONLY],
        (2, 2, 1),
        "generic",
        encoding::object,
        "Returns information about a key's internal representation."
    ),
    command!(
        "hsetnx",
        4,
        [WRITE, DENYOOM, FAST, EXCLUSIVE],
        ONE,
        "hash",
        hash_ops::hsetnx,
        "Sets the value of a field in a hash only when the field doesn't exist."
    ),
    command!(
        "hstrlen",
        3,
        [READONLY, FAST],
        ONE,
        "hash",
        hash_ops::hstrlen,
        "Returns the length of the value of a field."
    ),
    command!(
        "hincrbyfloat",
        4,
        [WRITE, DENYOOM, FAST, EXCLUSIVE],
        ONE,
        "hash",
        hash_ops::hincrbyfloat,
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."
    ),
    command!(
        "hrandfield",
        -2,
        [READONLY],
        ONE,
        "hash",
        hash_ops::hrandfield,
        "Returns one or more random fields from a hash."
    ),
    command!(
        "hscan",
        -3,
        [READONLY],
        ONE,
        "hash",
        element_scan::hscan,
        "Iterates over fields and values of a hash."
    ),
    command!(
        "smismember",
        -3,
        [READONLY, FAST],
        ONE,
        "set",
        set_ops::smismember,
        "Determines whether multiple members belong to a set."
    ),
    command!(
        "spop",
        -2,
        [WRITE, FAST, EXCLUSIVE],
        ONE,
        "set",
        set_ops::spop,
        "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped."
    ),
    command!(
        "srandmember",
        -2,
        [READONLY],
        ONE,
        "set",
        set_ops::srandmember,
        "Get one or multiple random members from a set."
    ),
    command!(
        "smove",
        4,
        [WRITE, FAST, EXCLUSIVE],
        (1, 2, 1),
        "set",
        set_ops::smove,
        "Moves a member from one set to another."
    ),
    command!(
        "sinter",
        -2,
        [READONLY, EXCLUSIVE],
        ALL,
        "set",
        set_ops::sinter,
        "Returns the intersect of multiple sets."
    ),
    command!(
        "sunion",
        -2,
        [READONLY, EXCLUSIVE],
        ALL,
        "set",
        set_ops::sunion,
        "Returns the union of multiple sets."
    ),
    command!(
        "sdiff",
        -2,
        [READONLY, EXCLUSIVE],
        ALL,
        "set",
        set_ops::sdiff,
        "Returns the difference of multiple sets."
    ),
    command!(
        "sinterstore",
        -3,
        [WRITE, DENYOOM, EXCLUSIVE],
        ALL,
        "set",
        set_ops::sinterstore,
        "Stores the intersect of multiple sets in a key."
    ),
    command!(
        "sunionstore",
        -3,
        [WRITE, DENYOOM, EXCLUSIVE],
        ALL,
        "set",
        set_ops::sunionstore,
        "Stores the union of multiple sets in a key."
    ),
    command!(
        "sdiffstore",
        -3,
        [WRITE, DENYOOM, EXCLUSIVE],
        ALL,
        "set",
        set_ops::sdiffstore,
        "Stores the difference of multiple sets in a key."
    ),
    command!(
        "sintercard",
        -3,
        [READONLY, EXCLUSIVE],
        NO_KEYS,
        "set",
        set_ops::sintercard,
        "Returns the number of members of the intersect of multiple sets."
    ),
    command!(
        "sscan",
        -3,
        [READONLY],
        ONE,
        "set",
        element_scan::sscan,
        "Iterates over members of a set."
    ),
    command!(
        "zrange",
        -4,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::zrange,
        "Returns members in a sorted set within a range of indexes."
    ),
    command!(
        "zrevrange",
        -4,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::range_by::<{ zset_ops::BY_RANK }, true>,
        "Returns members in a sorted set within a range of indexes in reverse order."
    ),
    command!(
        "zrangebylex",
        -4,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::range_by::<{ zset_ops::BY_LEX }, false>,
        "Returns members in a sorted set within a lexicographical range."
    ),
    command!(
        "zrevrangebylex",
        -4,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::range_by::<{ zset_ops::BY_LEX }, true>,
        "Returns members in a sorted set within a lexicographical range in reverse order."
    ),
    command!(
        "zrangestore",
        -5,
        [WRITE, DENYOOM, EXCLUSIVE],
        (1, 2, 1),
        "sorted-set",
        zset_ops::zrangestore,
        "Stores a range of members from sorted set in a key."
    ),
    command!(
        "zcount",
        4,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        zset_ops::zcount,
        "Returns the count of members in a sorted set that have scores within a range."
    ),
    command!(
        "zlexcount",
        4,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        zset_ops::zlexcount,
        "Returns the number of members in a sorted set within a lexicographical range."
    ),
    command!(
        "zrank",
        3,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        zset_ops::rank::<false>,
        "Returns the index of a member in a sorted set ordered by ascending scores."
    ),
    command!(
        "zrevrank",
        3,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        zset_ops::rank::<true>,
        "Returns the index of a member in a sorted set ordered by descending scores."
    ),
    command!(
        "zmscore",
        -3,
        [READONLY, FAST],
        ONE,
        "sorted-set",
        zset_ops::zmscore,
        "Returns the score of one or more members in a sorted set."
    ),
    command!(
        "zincrby",
        4,
        [WRITE, DENYOOM, FAST],
        ONE,
        "sorted-set",
        zset_ops::zincrby,
        "Increments the score of a member in a sorted set."
    ),
    command!(
        "zremrangebyrank",
        4,
        [WRITE, EXCLUSIVE],
        ONE,
        "sorted-set",
        zset_ops::remove_range::<{ zset_ops::BY_RANK }>,
        "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed."
    ),
    command!(
        "zremrangebyscore",
        4,
        [WRITE, EXCLUSIVE],
        ONE,
        "sorted-set",
        zset_ops::remove_range::<{ zset_ops::BY_SCORE }>,
        "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed."
    ),
    command!(
        "zremrangebylex",
        4,
        [WRITE, EXCLUSIVE],
        ONE,
        "sorted-set",
        zset_ops::remove_range::<{ zset_ops::BY_LEX }>,
        "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed."
    ),
    command!(
        "zpopmin",
        -2,
        [WRITE, FAST],
        ONE,
        "sorted-set",
        zset_ops::pop_command::<false>,
        "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."
    ),
    command!(
        "zpopmax",
        -2,
        [WRITE, FAST],
        ONE,
        "sorted-set",
        zset_ops::pop_command::<true>,
        "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."
    ),
    command!(
        "zmpop",
        -4,
        [WRITE],
        NO_KEYS,
        "sorted-set",
        zset_ops::zmpop,
        "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped."
    ),
    command!(
        "zrandmember",
        -2,
        [READONLY],
        ONE,
        "sorted-set",
        zset_ops::zrandmember,
        "Returns one or more random members from a sorted set."
    ),
    command!(
        "zunion",
        -3,
        [READONLY, EXCLUSIVE],
        NO_KEYS,
        "sorted-set",
        zset_ops::algebra_command::<{ zset_ops::OP_UNION }>,
        "Returns the union of multiple sorted sets."
    ),
    command!(
        "zinter",
        -3,
        [READONLY, EXCLUSIVE],
        NO_KEYS,
        "sorted-set",
        zset_ops::algebra_command::<{ zset_ops::OP_INTER }>,
        "Returns the intersect of multiple sorted sets."
    ),
    command!(
        "zdiff",
        -3,
        [READONLY, EXCLUSIVE],
        NO_KEYS,
        "sorted-set",
        zset_ops::algebra_command::<{ zset_ops::OP_DIFF }>,
        "Returns the difference between multiple sorted sets."
    ),
    command!(
        "zunionstore",
        -4,
        [WRITE, DENYOOM, EXCLUSIVE],
        ONE,
        "sorted-set",
        zset_ops::algebra_store::<{ zset_ops::OP_UNION }>,
        "Stores the union of multiple sorted sets in a key."
    ),
    command!(
        "zinterstore",
        -4,
        [WRITE, DENYOOM, EXCLUSIVE],
        ONE,
        "sorted-set",
        zset_ops::algebra_store::<{ zset_ops::OP_INTER }>,
        "Stores the intersect of multiple sorted sets in a key."
    ),
    command!(
        "zdiffstore",
        -4,
        [WRITE, DENYOOM, EXCLUSIVE],
        ONE,
        "sorted-set",
        zset_ops::algebra_store::<{ zset_ops::OP_DIFF }>,
        "Stores the difference of multiple sorted sets in a key."
    ),
    command!(
        "zintercard",
        -3,
        [READONLY, EXCLUSIVE],
        NO_KEYS,
        "sorted-set",
        zset_ops::zintercard,
        "Returns the number of members of the intersect of multiple sorted sets."
    ),
    command!(
        "bzpopmin",
        -3,
        [WRITE, FAST],
        (1, -2, 1),
        "sorted-set",
        zset_ops::bzpop::<false>,
        "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."
    ),
    command!(
        "bzpopmax",
        -3,
        [WRITE, FAST],
        (1, -2, 1),
        "sorted-set",
        zset_ops::bzpop::<true>,
        "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped."
    ),
    command!(
        "bzmpop",
        -5,
        [WRITE],
        NO_KEYS,
        "sorted-set",
        zset_ops::bzmpop,
        "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."
    ),
    command!(
        "zscan",
        -3,
        [READONLY],
        ONE,
        "sorted-set",
        element_scan::zscan,
        "Iterates over members and scores of a sorted set."
    ),
    // Pub/sub.
    command!(
        "subscribe",
        -2,
        [PUBSUB_OK, NOSCRIPT],
        NO_KEYS,
        "pubsub",
        pubsub::subscribe,
        "Listens for messages published to channels."
    ),
    command!(
        "unsubscribe",
        -1,
        [PUBSUB_OK, NOSCRIPT],
        NO_KEYS,
        "pubsub",
        pubsub::unsubscribe,
        "Stops listening to messages posted to channels."
    ),
    command!(
        "psubscribe",
        -2,
        [PUBSUB_OK, NOSCRIPT],
        NO_KEYS,
        "pubsub",
        pubsub::psubscribe,
        "Listens for messages published to channels that match one or more patterns."
    ),
    command!(
        "punsubscribe",
        -1,
        [PUBSUB_OK, NOSCRIPT],
        NO_KEYS,
        "pubsub",
        pubsub::punsubscribe,
        "Stops listening to messages published to channels that match one or more patterns."
    ),
    command!(
        "publish",
        3,
        [FAST],
        NO_KEYS,
        "pubsub",
        pubsub::publish,
        "Posts a message to a channel."
    ),
    command!(
        "pubsub",
        -2,
        [],
        NO_KEYS,
        "pubsub",
        pubsub::pubsub,
        "A container for Pub/Sub commands."
    ),
    // Transactions.
    command!(
        "multi",
        1,
        [FAST, NOSCRIPT, TX_CONTROL, ALLOW_BUSY],
        NO_KEYS,
        "transactions",
        multi::multi,
        "Starts a transaction."
    ),
    command!(
        "exec",
        1,
        [NOSCRIPT, TX_CONTROL, EXCLUSIVE],
        NO_KEYS,
        "transactions",
        multi::exec,
        "Executes all commands in a transaction."
    ),
    command!(
        "discard",
        1,
        [FAST, NOSCRIPT, TX_CONTROL, ALLOW_BUSY],
        NO_KEYS,
        "transactions",
        multi::discard,
        "Discards a transaction."
    ),
    command!(
        "watch",
        -2,
        [FAST, NOSCRIPT, TX_CONTROL, ALLOW_BUSY],
        ALL,
        "transactions",
        multi::watch,
        "Monitors changes to keys to determine the execution of a transaction."
    ),
    command!(
        "unwatch",
        1,
        [FAST, NOSCRIPT, ALLOW_BUSY],
        NO_KEYS,
        "transactions",
        multi::unwatch,
        "Forgets about watched keys of a transaction."
    ),
    // Scripting.
    command!(
        "eval",
        -3,
        [SCRIPT, NOSCRIPT, WRITE, EXCLUSIVE],
        NO_KEYS,
        "scripting",
        scripting::eval,
        "Executes a server-side Lua script."
    ),
    command!(
        "evalsha",
        -3,
        [SCRIPT, NOSCRIPT, WRITE, EXCLUSIVE],
        NO_KEYS,
        "scripting",
        scripting::evalsha,
        "Executes a server-side Lua script by SHA1 digest."
    ),
    command!(
        "script",
        -2,
        [NOSCRIPT, ADMIN_SUBCOMMANDS],
        NO_KEYS,
        "scripting",
        scripting::script,
        "A container for Lua scripts management commands."
    ),
    // The session layer (sessiond's own).
    command!(
        "session.count",
        -1,
        [READONLY, FAST],
        NO_KEYS,
        "sessiond",
        sessions::count,
        "Counts sessions and distinct users, in all families or one."
    ),
    command!(
        "session.list",
        -2,
        [READONLY],
        NO_KEYS,
        "sessiond",
        sessions::list,
        "Lists a user's sessions with their metadata."
    ),
    command!(
        "session.show",
        2,
        [READONLY],
        ONE,
        "sessiond",
        sessions::show,
        "Shows a session's metadata and its data decoded as JSON."
    ),
    command!(
        "session.families",
        1,
        [READONLY],
        NO_KEYS,
        "sessiond",
        sessions::families,
        "Lists the session families: prefix, format, user path, counts."
    ),
    command!(
        "session.revoke",
        -2,
        [WRITE, ADMIN_ROLE],
        ALL,
        "sessiond",
        sessions::revoke,
        "Revokes sessions: removed, and not written again until their old deadline."
    ),
    command!(
        "session.revokeuser",
        -2,
        [WRITE, ADMIN_ROLE],
        NO_KEYS,
        "sessiond",
        sessions::revoke_user,
        "Revokes a user's sessions, or all but one."
    ),
];
