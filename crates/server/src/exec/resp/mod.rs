//! Redis commands as store operations: the RESP half of the glue.
//!
//! The codec (`sessiond-proto-resp`) hands over argument vectors; [`prepare`] looks the
//! command up, once, in one table ([`COMMANDS`], in [`commands`]: name, arity, flags, key
//! positions, handler) and checks what every command shares (arity, authentication and
//! roles, the pub/sub context, a poisoned journal refusing writes, the memory limit); [`run`]
//! calls the handler, which reads its arguments through [`args::Args`] and returns a
//! [`Reply`] built in RESP3 terms (the codec downgrades for RESP2), or an error reply. Nothing
//! here touches a socket or reads the clock; the connection (`conn::resp`) owns both, and
//! takes the script gate between the two steps.
//!
//! One module per command family: [`strings`], [`keys`], [`collections`] (hashes, sets,
//! sorted sets), [`lists`] (with the blocked clients' registry in [`blocking`]), [`sort`], [`dump`] (`DUMP`/`RESTORE`), [`server`] (connection and administration), [`pubsub`] (channels and
//! keyspace notifications), [`scripting`] (EVAL and Lua) and [`multi`] (transactions).
//!
//! Replies and error texts follow Redis 7.0 byte for byte where clients or people could
//! notice, since clients match on some of them (`ERR no such key`, `NOSCRIPT`,
//! `WRONGTYPE`, `NOAUTH`).

pub mod args;
pub mod blocking;
pub mod collections;
pub mod commands;
pub mod dump;
pub mod element_scan;
pub mod encoding;
pub mod hash_ops;
pub mod key_ops;
pub mod keys;
pub mod latency;
pub mod lists;
pub mod multi;
pub mod pubsub;
pub mod sampling;
pub mod scripting;
pub mod server;
pub mod sessions;
pub mod set_ops;
pub mod sort;
pub mod streams;
pub mod string_ops;
pub mod strings;
pub mod zset_ops;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use sessiond_proto_resp::{Protocol, Reply};
use sessiond_store::{Store, StoreError};

use super::Shared;
use super::auth::Identity;
use crate::stats::bump;
use args::Args;
pub use commands::{COMMANDS, Flags, Spec};

/// Server-wide RESP state, part of [`Shared`].
pub struct RespShared {
    /// Channels, patterns and keyspace-notification settings.
    pub pubsub: Arc<pubsub::PubSub>,
    /// Loaded scripts and the Lua interpreter.
    pub scripts: scripting::Scripts,
    /// Connection ids (`CLIENT ID`), shared by both protocols' connections.
    pub next_client_id: AtomicU64,
    /// The open RESP connections, for `CLIENT LIST` and `INFO clients`.
    pub clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
    /// Redis's encoding parameters, accepted with no effect (`CONFIG SET`, `OBJECT`).
    pub encoding: encoding::EncodingSettings,
}

impl RespShared {
    /// The state of a server with no connection and no script yet, publishing on `pubsub`.
    pub fn new(pubsub: Arc<pubsub::PubSub>) -> RespShared {
        RespShared {
            pubsub,
            scripts: scripting::Scripts::new(),
            next_client_id: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
            encoding: encoding::EncodingSettings::default(),
        }
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
    /// The logged-in user's name.
    pub user: Mutex<Arc<str>>,
    /// Channels subscribed (`CLIENT LIST`'s `sub`), kept by [`Session::share_state`].
    pub channels: AtomicUsize,
    /// Patterns subscribed (`psub`), likewise.
    pub patterns: AtomicUsize,
    /// The protocol version (`resp`: 2 or 3), likewise.
    pub resp: std::sync::atomic::AtomicU8,
    /// Set by `CLIENT KILL`: the connection closes as soon as it notices.
    pub killed: std::sync::atomic::AtomicBool,
    /// Wakes the connection when `killed` is set.
    pub kill: tokio::sync::Notify,
}

impl ClientInfo {
    /// Whether the connection has a subscription (Redis's client type `pubsub`, in RESP2
    /// or RESP3: `CLIENT LIST TYPE pubsub`, `CLIENT KILL TYPE pubsub`).
    pub fn is_pubsub(&self) -> bool {
        self.channels.load(Ordering::Relaxed) + self.patterns.load(Ordering::Relaxed) > 0
    }

    /// Marks the connection killed and wakes it (`CLIENT KILL`).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_waiters();
    }

    /// Whether `CLIENT KILL` named this connection.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Completes once the connection is killed. Owns what it waits on.
    pub fn killed(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let info = self.clone();
        async move {
            loop {
                let notified = info.kill.notified();
                tokio::pin!(notified);
                // Registered before the flag is checked, so a kill in between is not missed.
                notified.as_mut().enable();
                if info.is_killed() {
                    return;
                }
                notified.await;
            }
        }
    }
}

/// What `CLIENT REPLY` has asked of the connection's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// Every reply is sent.
    #[default]
    On,
    /// No reply is sent (`CLIENT REPLY OFF`, itself unanswered).
    Off,
    /// The next `n` replies are dropped (`CLIENT REPLY SKIP`: its own and the next
    /// command's), then `On` again.
    Skip(u8),
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
    /// Who the connection is logged in as (before login: `default` with the app role).
    pub user: Identity,
    /// Set by `QUIT`: close after writing the reply.
    pub quit: bool,
    /// Channel and pattern subscriptions; `None` until the first `SUBSCRIBE`.
    pub subscriber: Option<pubsub::Subscriber>,
    /// Shown by `CLIENT LIST`.
    pub info: Arc<ClientInfo>,
    /// Set while a script runs on this connection's behalf (commands that make no sense
    /// inside a script refuse).
    pub in_script: bool,
    /// The transaction being queued, between `MULTI` and `EXEC`/`DISCARD`.
    pub tx: Option<multi::Transaction>,
    /// The keys `WATCH`ed for the next `EXEC`.
    pub watching: multi::Watching,
    /// `CLIENT REPLY`: whether replies are sent.
    pub replies: ReplyMode,
    /// Set by the connection around a command it runs itself (not inside `EXEC` or a
    /// script): only then may a blocking pop block.
    pub may_block: bool,
    /// Left by a blocking pop that found nothing and may block: the connection registers it
    /// and answers when it ends.
    pub blocked: Option<blocking::Wait>,
}

impl Session {
    /// A fresh connection's state: RESP2, database 0, authenticated unless a password is
    /// required.
    pub fn new(shared: &Shared, addr: String, laddr: String, now: u64) -> Session {
        let id = shared.resp.next_client_id.fetch_add(1, Ordering::Relaxed);
        let initial = shared.users.initial();
        let authenticated = initial.is_some();
        let user = initial.unwrap_or_else(Identity::before_login);
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created_ms: now,
            db: AtomicUsize::new(0),
            names: Mutex::new(Default::default()),
            last_command: Mutex::new(Bytes::new()),
            user: Mutex::new(user.name.clone()),
            channels: AtomicUsize::new(0),
            patterns: AtomicUsize::new(0),
            resp: std::sync::atomic::AtomicU8::new(2),
            killed: std::sync::atomic::AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
        });
        Session {
            id,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            user,
            quit: false,
            subscriber: None,
            info,
            in_script: false,
            tx: None,
            watching: multi::Watching::default(),
            replies: ReplyMode::On,
            may_block: false,
            blocked: None,
        }
    }

    /// Whether the reply being sent now is to be dropped (`CLIENT REPLY`), counting a
    /// skipped one.
    pub fn drop_reply(&mut self) -> bool {
        match self.replies {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::Skip(n) => {
                self.replies = if n <= 1 {
                    ReplyMode::On
                } else {
                    ReplyMode::Skip(n - 1)
                };
                true
            }
        }
    }

    /// Publishes the subscription counts and protocol version to [`ClientInfo`], where other
    /// connections' `CLIENT LIST` and `CLIENT KILL TYPE` see them. Called by every command
    /// that changes them (`SUBSCRIBE` and the like, `HELLO`, `RESET`).
    pub fn share_state(&self) {
        let (channels, patterns) = self
            .subscriber
            .as_ref()
            .map_or((0, 0), pubsub::Subscriber::counts);
        self.info.channels.store(channels, Ordering::Relaxed);
        self.info.patterns.store(patterns, Ordering::Relaxed);
        let resp = if self.protocol == Protocol::Resp3 {
            3
        } else {
            2
        };
        self.info.resp.store(resp, Ordering::Relaxed);
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
    /// Set by a handler that ran writes for which the reply must wait for the journal
    /// although its own row is no write (`EXEC`).
    pub durable: bool,
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
    pub fn at_once(reply: Reply) -> Executed {
        Executed {
            answer: Answer::One(reply),
            wait_for_journal: false,
        }
    }
}

/// Runs one command at `now` for the connection `session`: [`prepare`], then [`run`], as the
/// tests and the fuzz targets drive the glue. (The connection calls the two itself, taking
/// the script gate in between: shared, or exclusively for a command whose row says
/// [`Flags::EXCLUSIVE`].)
#[cfg(any(test, feature = "fuzzing"))]
pub fn execute(shared: &Shared, session: &mut Session, args: &[Bytes], now: u64) -> Executed {
    match prepare(shared, session, args) {
        Ok(spec) => run(shared, session, spec, args, now),
        Err(refused) => refused,
    }
}

/// Looks the command up, once, and checks what every command shares: authentication, the
/// role, the RESP2 subscribed mode, arity, a poisoned journal and the memory limit. `Err` is the
/// refusal to send (nothing was changed). Inside `MULTI`, a command that passes is queued
/// (`Err` with `+QUEUED`) unless it is one of the transaction's own
/// ([`Flags::TX_CONTROL`]), and a refusal flags the transaction ([`multi`]).
pub fn prepare(
    shared: &Shared,
    session: &mut Session,
    args: &[Bytes],
) -> Result<&'static Spec, Executed> {
    prepare_as(shared, session, args, false)
}

/// [`prepare`] in the busy state ([`super::busy`]), for a connection that found the script
/// gate held past `busy-reply-threshold`: after the same checks, a command that Redis does not
/// flag `allow-busy` ([`commands::allows_busy`]) is refused with `BUSY` instead of being
/// run or queued, and a transaction it was sent in is flagged, so its `EXEC` aborts (as
/// Redis's `rejectCommand` does); `EXEC` itself answers `-EXECABORT Transaction discarded
/// because of: BUSY …` and ends the transaction. `Ok` only for an allow-busy command, which
/// the caller runs without the gate.
pub fn prepare_busy(
    shared: &Shared,
    session: &mut Session,
    args: &[Bytes],
) -> Result<&'static Spec, Executed> {
    prepare_as(shared, session, args, true)
}

fn prepare_as(
    shared: &Shared,
    session: &mut Session,
    args: &[Bytes],
    busy: bool,
) -> Result<&'static Spec, Executed> {
    let checked = match check(shared, session, args) {
        Ok(spec) if busy && !commands::allows_busy(spec, args) => {
            Err(busy_refusal(shared, session, spec))
        }
        checked => checked,
    };
    if session.tx.is_none() {
        return checked;
    }
    match checked {
        Err(refused) => {
            multi::flag(session);
            Err(refused)
        }
        Ok(spec) if spec.flags.contains(Flags::TX_CONTROL) => Ok(spec),
        Ok(spec) => Err(multi::queue(shared, session, spec, args)),
    }
}

/// The refusal of `spec` (which passed its checks) in the busy state: `BUSY …`, or for
/// `EXEC` Redis's `EXECABORT` with the `BUSY` text, which also discards the transaction and
/// its watches.
pub fn busy_refusal(shared: &Shared, session: &mut Session, spec: &'static Spec) -> Executed {
    bump(&shared.stats.more.busy_replies);
    let busy = scripting::busy_reply();
    if spec.name != "exec" {
        return Executed::at_once(busy);
    }
    session.tx = None;
    multi::unwatch_all(shared, session);
    let text = match &busy {
        Reply::Error(text) => String::from_utf8_lossy(text).into_owned(),
        _ => String::new(),
    };
    Executed::at_once(error(format!(
        "EXECABORT Transaction discarded because of: {text}"
    )))
}

/// [`prepare`]'s checks, outside of any transaction.
fn check(
    shared: &Shared,
    session: &mut Session,
    args: &[Bytes],
) -> Result<&'static Spec, Executed> {
    let Some(name) = args.first() else {
        return Err(Executed::at_once(error("ERR empty command")));
    };
    bump(&shared.stats.commands_processed);
    let Some(spec) = lookup(name) else {
        if !session.authenticated {
            return Err(Executed::at_once(noauth()));
        }
        return Err(Executed::at_once(unknown_command(args)));
    };
    if !session.authenticated && !spec.flags.contains(Flags::NO_AUTH) {
        return Err(Executed::at_once(noauth()));
    }
    if let Some(refusal) = commands::permission_refusal(&session.user, spec, args) {
        return Err(Executed::at_once(refusal));
    }
    if session.subscribed_resp2() && !spec.flags.contains(Flags::PUBSUB_OK) {
        return Err(Executed::at_once(error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ))));
    }
    if !arity_ok(spec, args.len()) {
        return Err(Executed::at_once(wrong_args(spec.name)));
    }
    if session.tx.is_some() && spec.flags.contains(Flags::NO_MULTI) {
        return Err(Executed::at_once(error(
            "ERR Command not allowed inside a transaction",
        )));
    }
    if spec.flags.contains(Flags::WRITE)
        && !spec.flags.contains(Flags::SCRIPT)
        && let Some(refusal) = write_refusal(shared)
    {
        // Refused before anything changed: nothing to wait for.
        return Err(Executed::at_once(refusal));
    }
    if spec.flags.contains(Flags::DENYOOM)
        && let Some(refusal) = memory_refusal(shared)
    {
        return Err(Executed::at_once(refusal));
    }
    Ok(spec)
}

/// Runs the command `spec` (from [`prepare`]) with `args` at `now`.
pub fn run(
    shared: &Shared,
    session: &mut Session,
    spec: &'static Spec,
    args: &[Bytes],
    now: u64,
) -> Executed {
    if let Ok(mut last) = session.info.last_command.lock() {
        *last = Bytes::from_static(spec.name.as_bytes());
    }
    let script = spec.flags.contains(Flags::SCRIPT);
    let mut ctx = Ctx {
        shared,
        session,
        now,
        durable: false,
    };
    let answer = (spec.handler)(&mut ctx, &mut Args::new(args)).unwrap_or_else(Answer::One);
    let ran_writes = ctx.durable;
    let row = commands::row(spec);
    shared.stats.more.resp_commands.bump(row);
    if matches!(answer, Answer::One(Reply::Error(_))) {
        shared.stats.more.resp_failed.bump(row);
    }
    // Every write waits, except the TTL-only ones, which ride in the next group. A script
    // checks the journal per `redis.call`; one that failed because the journal is poisoned
    // goes out at once (waiting would only find the journal failed and drop the reply), as a
    // refused write changed nothing it could acknowledge.
    let refused_script =
        script && matches!(answer, Answer::One(Reply::Error(_))) && shared.writes_refused();
    Executed {
        answer,
        wait_for_journal: ran_writes
            || (spec.flags.contains(Flags::WRITE)
                && !spec.flags.contains(Flags::TTL_ONLY)
                && !refused_script),
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

/// The refusal of a command that may grow memory while the store is past its limit, as
/// Redis refuses `denyoom` commands past `maxmemory`. Writes are charged before they apply,
/// so only a limit lowered below what is stored (`CONFIG SET maxmemory`) gets here; the
/// store itself still refuses any single write that does not fit.
pub fn memory_refusal(shared: &Shared) -> Option<Reply> {
    let budget = shared.store.budget();
    (budget.used() > budget.limit()).then(|| store_error(StoreError::OutOfMemory))
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

/// The refusal of a reply larger than `--client-output-limit` (`limit` bytes): `len` is its
/// encoded size when it was measured, `None` when its handler stopped collecting once it
/// knew the reply would not fit.
pub fn too_large(len: Option<usize>, limit: usize) -> Reply {
    error(match len {
        Some(len) => format!("ERR reply of {len} bytes exceeds the output limit of {limit} bytes"),
        None => format!("ERR reply exceeds the output limit of {limit} bytes"),
    })
}

/// What a reply still being collected may yet cost, so that a handler gathering many elements
/// (`KEYS`, `SCAN`, `HGETALL`, `SMEMBERS`, …) stops as soon as the reply could not be sent
/// anyway, instead of building it. Each element is charged its encoded size plus
/// [`OutputBudget::NODE`] for the `Reply` (and key copy) that holds it in memory, so both
/// the reply's bytes and the tree built for them stay within `--client-output-limit`.
#[derive(Debug, Clone, Copy)]
pub struct OutputBudget {
    left: usize,
    limit: usize,
}

impl OutputBudget {
    /// What one element costs in memory beyond its encoded bytes: a `Reply` node and a
    /// `Bytes` handle with its allocation's header.
    pub const NODE: usize = 64;
    /// What a score counts as: the longest text of a double.
    pub const SCORE: usize = 24;

    /// The budget of one reply on this connection.
    pub fn new(shared: &Shared) -> OutputBudget {
        let limit = shared.config.client_output_limit;
        OutputBudget { left: limit, limit }
    }

    /// Charges an element whose payload is `len` bytes (a bulk string; a number or score
    /// counts as a short one); `false` once the reply no longer fits.
    pub fn charge(&mut self, len: usize) -> bool {
        let cost = Reply::bulk_encoded_len(len).saturating_add(Self::NODE);
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }

    /// Charges every element of `lens` (payload sizes): `Err` with the refusal if they do not
    /// all fit. For a collection read, measured before anything is built.
    pub fn check(shared: &Shared, lens: impl IntoIterator<Item = usize>) -> Result<(), Reply> {
        let mut budget = OutputBudget::new(shared);
        for len in lens {
            if !budget.charge(len) {
                return Err(budget.refusal());
            }
        }
        Ok(())
    }

    /// The refusal to send once [`OutputBudget::charge`] said no.
    pub fn refusal(&self) -> Reply {
        too_large(None, self.limit)
    }
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
        // `ERR`, not a code of its own: phpredis turns any other code into an exception,
        // which ends a PHP request with a fatal error instead of a failed session write.
        StoreError::Revoked => {
            b"ERR this session was revoked and stays revoked until it would have expired"
        }
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
mod core_tests;
#[cfg(test)]
mod tests;
