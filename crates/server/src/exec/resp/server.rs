//! Connection and server commands: `PING`, `ECHO`, `SELECT`, `AUTH`, `HELLO`, `CLIENT`,
//! `QUIT`, `RESET`, `INFO`, `COMMAND`, `CONFIG`, `DBSIZE`, `FLUSHDB`, `FLUSHALL`, `TIME`,
//! `BGREWRITEAOF`, `LASTSAVE` and `FUNCTION`.
//!
//! sessiond presents itself as Redis 7.0.15 (`HELLO`, `INFO server`), the release whose
//! replies it reproduces, so clients that gate features on the version enable the ones
//! sessiond has; `sessiond_version` in `INFO` tells the truth.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sessiond_proto_resp::{Protocol, Reply};
use sessiond_store::glob_match;

use super::args::{Args, Handled};
use super::pubsub::{flags_text, parse_flags};
use super::{
    COMMANDS, Ctx, Flags, Spec, bulk, error, is, lookup, parse_int, simple, unknown_subcommand,
};
use crate::DATABASES;
use crate::exec::RewriteRefusal;
use crate::exec::auth::Identity;
use crate::stats::bump;

/// The Redis version sessiond reports.
pub const REDIS_VERSION: &str = "7.0.15";

/// `PING [message]`.
pub fn ping(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    if args.remaining() > 1 {
        return Err(super::wrong_args("ping"));
    }
    let message = args.next();
    if ctx.session.subscribed_resp2() {
        // In RESP2's subscribed mode PING answers in the shape of a message.
        let payload = message.cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![bulk(&b"pong"[..]), Reply::Bulk(payload)]).into());
    }
    Ok(match message {
        None => simple("PONG"),
        Some(message) => Reply::Bulk(message.clone()),
    }
    .into())
}

/// `ECHO message`.
pub fn echo(_: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    Ok(Reply::Bulk(args.bytes()?.clone()).into())
}

/// `SELECT index`.
pub fn select(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let index = args.int()?;
    if !(0..DATABASES as i64).contains(&index) {
        return Err(error("ERR DB index is out of range"));
    }
    ctx.session.db = index as usize;
    ctx.session.info.db.store(index as usize, Ordering::Relaxed);
    Ok(Reply::ok().into())
}

/// Logs the connection in as `user` (`None`: `default`) if `pass` is its password.
///
/// With authentication off, Redis's answers for a `default` user without a password: any
/// password logs `default` in, and `AUTH <password>` alone is a configuration mistake the
/// client should hear about.
fn check_password(ctx: &mut Ctx<'_>, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let wrongpass = || error("WRONGPASS invalid username-password pair or user is disabled.");
    let users = &ctx.shared.users;
    if !users.required() {
        return match user {
            None => Err(error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            )),
            Some(user) if user == b"default" => Ok(()),
            Some(_) => Err(wrongpass()),
        };
    }
    let stats = &ctx.shared.stats;
    bump(&stats.auth_cmds);
    // A failed attempt leaves an earlier login in place, as in Redis.
    let identity = users
        .check(user.unwrap_or(b"default"), pass)
        .ok_or_else(|| {
            bump(&stats.auth_errors);
            wrongpass()
        })?;
    if let Ok(mut name) = ctx.session.info.user.lock() {
        *name = identity.name.clone();
    }
    ctx.session.user = identity;
    ctx.session.authenticated = true;
    Ok(())
}

/// `AUTH [username] password`.
pub fn auth(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    match args.rest() {
        [pass] => check_password(ctx, None, pass)?,
        [user, pass] => check_password(ctx, Some(user), pass)?,
        _ => return Err(super::syntax_error()),
    }
    Ok(Reply::ok().into())
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
pub fn hello(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let mut protocol = ctx.session.protocol;
    if let Some(version) = args.next() {
        protocol = match parse_int(version) {
            None => {
                return Err(error(
                    "ERR Protocol version is not an integer or out of range",
                ));
            }
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Err(error("NOPROTO unsupported protocol version")),
        };
    }
    let mut name = None;
    while let Some(option) = args.peek() {
        if args.remaining() >= 3 && args.keyword("auth") {
            let (user, pass) = (args.bytes()?, args.bytes()?);
            check_password(ctx, Some(user), pass)?;
        } else if args.remaining() >= 2 && args.keyword("setname") {
            let given = args.bytes()?;
            valid_name(given)?;
            name = Some(given.clone());
        } else {
            return Err(error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if !ctx.session.authenticated {
        return Err(error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name
        && let Ok(mut names) = ctx.session.info.names.lock()
    {
        names.0 = name;
    }
    ctx.session.protocol = protocol;
    ctx.session.share_state();
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Ok(Reply::Map(vec![
        (text("server"), text("redis")),
        (text("version"), text(REDIS_VERSION)),
        (
            text("proto"),
            Reply::Integer(if protocol == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (text("id"), Reply::Integer(ctx.session.id as i64)),
        (text("mode"), text("standalone")),
        (text("role"), text("master")),
        (text("modules"), Reply::Array(Vec::new())),
    ])
    .into())
}

fn valid_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// One `CLIENT LIST` line (a subset of Redis's fields, same format). `flags` is `P` for a
/// connection with subscriptions (Redis's pub/sub client), `N` otherwise.
fn client_line(info: &super::ClientInfo, now: u64) -> String {
    let (name, lib_name, lib_ver) = info.names.lock().map(|n| n.clone()).unwrap_or_default();
    let cmd = info
        .last_command
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let user = info.user.lock().map(|u| u.clone()).unwrap_or_default();
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={} idle=0 flags={} db={} sub={} psub={} ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}\n",
        info.id,
        info.addr,
        info.laddr,
        String::from_utf8_lossy(&name),
        now.saturating_sub(info.created_ms) / 1000,
        if info.is_pubsub() { "P" } else { "N" },
        info.db.load(Ordering::Relaxed),
        info.channels.load(Ordering::Relaxed),
        info.patterns.load(Ordering::Relaxed),
        String::from_utf8_lossy(&cmd),
        user,
        info.resp.load(Ordering::Relaxed),
        String::from_utf8_lossy(&lib_name),
        String::from_utf8_lossy(&lib_ver),
    )
}

/// A `TYPE` filter's value (`CLIENT KILL`, `CLIENT LIST`): whether a connection of this
/// type has subscriptions (`pubsub`) or not (`normal`); `None` for `master`, `replica` and
/// `slave`, which no connection here is.
fn client_type(value: &[u8]) -> Result<Option<bool>, Reply> {
    match String::from_utf8_lossy(value).to_ascii_lowercase().as_str() {
        "normal" => Ok(Some(false)),
        "pubsub" => Ok(Some(true)),
        "master" | "replica" | "slave" => Ok(None),
        other => Err(error(format!("ERR Unknown client type '{other}'"))),
    }
}

/// Whether `info` is of the type `wanted` (from [`client_type`]).
fn is_of_type(info: &super::ClientInfo, wanted: Option<bool>) -> bool {
    wanted == Some(info.is_pubsub())
}

/// `CLIENT KILL addr:port`, or `CLIENT KILL <filter> <value> …` with Redis's filters: `ID`,
/// `ADDR`, `LADDR`, `USER`, `SKIPME yes|no` (default yes) and `TYPE normal|pubsub|master|
/// replica|slave` (`pubsub`: the connections with a subscription, in RESP2 or RESP3;
/// `normal`: the others; no connection is a master or replica). A killed connection closes
/// at once, even while it waits to write; killing oneself closes after the reply.
/// One `CLIENT KILL` filter: whether a connection matches it.
type ClientTest = Box<dyn Fn(&super::ClientInfo) -> bool>;

fn client_kill(shared: &crate::exec::Shared, me: u64, filters: &[Bytes]) -> Handled {
    let clients: Vec<std::sync::Arc<super::ClientInfo>> = shared
        .resp
        .clients
        .lock()
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    if let [addr] = filters {
        // The old form: one address, `+OK` or an error.
        let Some(info) = clients.iter().find(|c| c.addr.as_bytes() == &addr[..]) else {
            return Err(error("ERR No such client"));
        };
        info.kill();
        return Ok(Reply::ok().into());
    }
    if !filters.len().is_multiple_of(2) {
        return Err(super::syntax_error());
    }
    let mut skip_me = true;
    let mut tests: Vec<ClientTest> = Vec::new();
    for pair in filters.chunks(2) {
        let (name, value) = (&pair[0], pair[1].clone());
        match String::from_utf8_lossy(name).to_ascii_lowercase().as_str() {
            "id" => {
                let id = super::parse_int(&value)
                    .filter(|&id| id > 0)
                    .ok_or_else(|| error("ERR client-id should be greater than 0"))?;
                tests.push(Box::new(move |c| c.id == id as u64));
            }
            "addr" => tests.push(Box::new(move |c| c.addr.as_bytes() == &value[..])),
            "laddr" => tests.push(Box::new(move |c| c.laddr.as_bytes() == &value[..])),
            "user" => tests.push(Box::new(move |c| {
                c.user.lock().is_ok_and(|u| u.as_bytes() == &value[..])
            })),
            "skipme" => {
                skip_me = if is(&value, "yes") {
                    true
                } else if is(&value, "no") {
                    false
                } else {
                    return Err(super::syntax_error());
                };
            }
            "type" => {
                let wanted = client_type(&value)?;
                tests.push(Box::new(move |c| is_of_type(c, wanted)));
            }
            _ => return Err(super::syntax_error()),
        }
    }
    let mut killed = 0;
    for info in &clients {
        if (skip_me && info.id == me) || !tests.iter().all(|t| t(info)) {
            continue;
        }
        info.kill();
        killed += 1;
    }
    Ok(Reply::Integer(killed).into())
}

/// `CLIENT LIST [TYPE normal|pubsub|master|replica|slave] [ID id …]`: a line per
/// connection, in id order, of those the filters name.
fn client_list(shared: &crate::exec::Shared, filters: &[Bytes], now: u64) -> Result<Reply, Reply> {
    let mut clients: Vec<std::sync::Arc<super::ClientInfo>> = shared
        .resp
        .clients
        .lock()
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    clients.sort_by_key(|c| c.id);
    match filters {
        [] => {}
        [name, value] if is(name, "type") => {
            let wanted = client_type(value)?;
            clients.retain(|c| is_of_type(c, wanted));
        }
        [name, ids @ ..] if is(name, "id") && !ids.is_empty() => {
            let mut wanted = Vec::with_capacity(ids.len());
            for id in ids {
                let id = super::parse_int(id)
                    .filter(|&id| id > 0)
                    .ok_or_else(|| error("ERR Invalid client ID"))?;
                wanted.push(id as u64);
            }
            let wanted: std::collections::HashSet<u64> = wanted.into_iter().collect();
            clients.retain(|c| wanted.contains(&c.id));
        }
        _ => return Err(super::syntax_error()),
    }
    let mut text = String::new();
    for info in clients {
        text.push_str(&client_line(&info, now));
    }
    Ok(Reply::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    })
}

/// `CLIENT ID | SETNAME | GETNAME | SETINFO | LIST | INFO | NO-EVICT | NO-TOUCH | UNBLOCK`.
pub fn client(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    let rest = args.rest();
    let session = &mut *ctx.session;
    let reply = match (
        String::from_utf8_lossy(sub).to_ascii_lowercase().as_str(),
        rest,
    ) {
        ("id", []) => Reply::Integer(session.id as i64),
        ("setname", [name]) => {
            valid_name(name)?;
            if let Ok(mut names) = session.info.names.lock() {
                names.0 = name.clone();
            }
            Reply::ok()
        }
        ("getname", []) => {
            let name = session
                .info
                .names
                .lock()
                .map(|n| n.0.clone())
                .unwrap_or_default();
            if name.is_empty() {
                Reply::Null
            } else {
                Reply::Bulk(name)
            }
        }
        ("setinfo", [option, value]) => {
            valid_name(value)?;
            let Ok(mut names) = session.info.names.lock() else {
                return Ok(Reply::ok().into());
            };
            if is(option, "lib-name") {
                names.1 = value.clone();
            } else if is(option, "lib-ver") {
                names.2 = value.clone();
            } else {
                return Err(error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(option)
                )));
            }
            Reply::ok()
        }
        ("reply", [mode]) => {
            // OFF and SKIP are not answered themselves: the connection drops this reply.
            session.replies = match String::from_utf8_lossy(mode).to_ascii_lowercase().as_str() {
                "on" => super::ReplyMode::On,
                "off" => super::ReplyMode::Off,
                "skip" => super::ReplyMode::Skip(2),
                _ => return Err(super::syntax_error()),
            };
            Reply::ok()
        }
        ("kill", filters) if !filters.is_empty() => {
            return client_kill(ctx.shared, session.id, filters);
        }
        // Nothing is ever evicted, and no LRU clock exists to leave untouched.
        ("no-evict" | "no-touch", [_]) => Reply::ok(),
        ("unblock", [id, how @ ..]) if how.len() <= 1 => {
            super::lists::client_unblock(ctx.shared, id, how.first())?
        }
        ("info", []) => Reply::Verbatim {
            format: *b"txt",
            text: Bytes::from(client_line(&session.info, ctx.now)),
        },
        ("list", filters) => client_list(ctx.shared, filters, ctx.now)?,
        _ => return Err(unknown_subcommand("client", sub)),
    };
    Ok(reply.into())
}

/// `QUIT`: `+OK`, then the connection closes.
pub fn quit(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    ctx.session.quit = true;
    Ok(Reply::ok().into())
}

/// `RESET`: back to a fresh connection's state.
pub fn reset(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    ctx.session.tx = None;
    super::multi::unwatch_all(ctx.shared, ctx.session);
    let session = &mut *ctx.session;
    if let Some(mut sub) = session.subscriber.take() {
        ctx.shared.resp.pubsub.drop_subscriber(session.id, &mut sub);
    }
    session.db = 0;
    session.info.db.store(0, Ordering::Relaxed);
    session.protocol = Protocol::Resp2;
    session.share_state();
    session.replies = super::ReplyMode::On;
    let initial = ctx.shared.users.initial();
    session.authenticated = initial.is_some();
    session.user = initial.unwrap_or_else(Identity::before_login);
    if let Ok(mut name) = session.info.user.lock() {
        *name = session.user.name.clone();
    }
    if let Ok(mut names) = session.info.names.lock() {
        names.0 = Bytes::new();
    }
    Ok(simple("RESET").into())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

/// The text of `INFO` for `sections` (empty: the default set).
pub fn info_text(ctx: &Ctx<'_>, sections: &[Bytes]) -> String {
    let wants = |name: &str| {
        sections.is_empty()
            || sections
                .iter()
                .any(|s| is(s, name) || is(s, "all") || is(s, "everything") || is(s, "default"))
    };
    let shared = ctx.shared;
    let resp = &shared.resp;
    let mut out = String::new();
    let uptime = shared.started.elapsed().as_secs();
    if wants("server") {
        let port = shared.config.resp_listen.map_or(0, |a| a.port());
        let _ = write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nsessiond_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{:040x}\r\ntcp_port:{port}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:100\r\nconfigured_hz:100\r\nlru_clock:{}\r\nexecutable:sessiond\r\nconfig_file:\r\nio_threads_active:0\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            usize::BITS,
            std::process::id(),
            u128::from(std::process::id()) << 64 | u128::from(ctx.now),
            ctx.now * 1000,
            uptime / 86400,
            (ctx.now / 1000) & ((1 << 24) - 1),
        );
    }
    if wants("clients") {
        let connected = resp.clients.lock().map(|c| c.len()).unwrap_or(0);
        let blocked = resp.pubsub.blocking.blocked_clients();
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{connected}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{blocked}\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\npubsub_clients:0\r\nmemcache_connections:{}\r\n\r\n",
            shared.config.max_connections,
            shared
                .stats
                .curr_connections
                .load(Ordering::Relaxed)
                .saturating_sub(connected as u64),
        );
    }
    let budget = shared.store.budget();
    if wants("memory") {
        // The store's budget is what sessiond measures; the peak and the RSS are not
        // tracked and show the same figure.
        let used = budget.used();
        let limit = budget.limit();
        let shown_limit = if limit == u64::MAX { 0 } else { limit };
        let (scripts, script_bytes, lua) = shared.resp.scripts.memory();
        let _ = write!(
            out,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{used}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{used}\r\nused_memory_peak_human:{}\r\nused_memory_dataset:{used}\r\nused_memory_lua:{lua}\r\nused_memory_vm_eval:{lua}\r\nused_memory_scripts_eval:{script_bytes}\r\nused_memory_scripts:{script_bytes}\r\nnumber_of_cached_scripts:{scripts}\r\ntotal_system_memory:0\r\nmaxmemory:{shown_limit}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:1.00\r\nmem_allocator:libc\r\nlazyfree_pending_objects:0\r\nsessiond_out_of_memory_refusals:{}\r\n\r\n",
            human(used),
            human(used),
            human(used),
            human(shown_limit),
            budget.out_of_memory(),
        );
    }
    if wants("persistence") {
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_size:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\naof_rewrite_scheduled:0\r\n",
            ctx.now / 1000
        );
        match &shared.journal {
            None => {
                let _ = write!(out, "aof_enabled:0\r\n");
            }
            Some(journal) => {
                let js = &journal.stats;
                let progress = journal.progress();
                let poisoned = journal.is_poisoned();
                let _ = write!(
                    out,
                    "aof_enabled:1\r\naof_rewrite_in_progress:{}\r\naof_rewrites:{}\r\naof_last_write_status:{}\r\naof_last_bgrewrite_status:ok\r\naof_fsync_policy:{}\r\njournal_poisoned:{}\r\njournal_records:{}\r\njournal_written_seq:{}\r\njournal_durable_seq:{}\r\njournal_fsyncs:{}\r\njournal_segment_bytes:{}\r\n",
                    u8::from(js.rewrite_running.load(Ordering::Relaxed)),
                    js.rewrites.load(Ordering::Relaxed),
                    if poisoned { "err" } else { "ok" },
                    journal.policy().name(),
                    u8::from(poisoned),
                    js.records.load(Ordering::Relaxed),
                    progress.written,
                    progress.durable,
                    js.fsyncs.load(Ordering::Relaxed),
                    js.segment_bytes.load(Ordering::Relaxed),
                );
                if let Some(reason) = journal.poison_reason() {
                    let _ = write!(
                        out,
                        "journal_error:{}\r\n",
                        reason.replace(['\r', '\n'], " ")
                    );
                }
            }
        }
        out.push_str("\r\n");
    }
    if wants("stats") {
        let store = shared.store.stats();
        let failed: u64 = (0..super::COMMANDS.len())
            .map(|row| shared.stats.more.resp_failed.get(row))
            .sum();
        let expired: u64 = shared.databases.iter().map(|s| s.stats().expired).sum();
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:0\r\ntotal_net_output_bytes:0\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{expired}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nevicted_keys:0\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\ntracking_total_keys:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_items_written_db0:{}\r\n\r\n",
            shared.stats.total_connections.load(Ordering::Relaxed),
            shared.stats.commands_processed.load(Ordering::Relaxed),
            shared.stats.rejected_connections.load(Ordering::Relaxed),
            shared.stats.keyspace_hits.load(Ordering::Relaxed),
            shared.stats.keyspace_misses.load(Ordering::Relaxed),
            resp.pubsub.channel_count(),
            resp.pubsub.pattern_count(),
            failed,
            store.total_items,
        );
    }
    if wants("replication") {
        // A primary without replicas, always.
        let _ = write!(
            out,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{:040x}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n\r\n",
            u128::from(std::process::id()) << 64 | u128::from(ctx.now),
        );
    }
    if wants("cpu") {
        let (sys, user, sys_children, user_children) = crate::clock::cpu_seconds();
        let _ = write!(
            out,
            "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{sys_children:.6}\r\nused_cpu_user_children:{user_children:.6}\r\n\r\n",
        );
    }
    let all = sections.iter().any(|s| is(s, "all") || is(s, "everything"));
    if all || sections.iter().any(|s| is(s, "commandstats")) {
        out.push_str("# Commandstats\r\n");
        for (row, spec) in super::COMMANDS.iter().enumerate() {
            let calls = shared.stats.more.resp_commands.get(row);
            if calls > 0 {
                let _ = write!(
                    out,
                    "cmdstat_{}:calls={calls},usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls={}\r\n",
                    spec.name.replace('.', "_"),
                    shared.stats.more.resp_failed.get(row),
                );
            }
        }
        out.push_str("\r\n");
    }
    if wants("sessions")
        && let Some(sessions) = &shared.sessions
    {
        let counts = sessions.counts(None);
        let stats = &sessions.stats;
        let _ = write!(
            out,
            "# Sessions\r\nsessions:{}\r\nsession_users:{}\r\nsession_index_bytes:{}\r\nsessions_undecodable:{}\r\nsessions_revoked:{}\r\nsessions_revoked_by_limit:{}\r\n",
            counts.sessions,
            counts.users,
            sessions.bytes(),
            stats.undecodable.load(Ordering::Relaxed),
            stats.revoked.load(Ordering::Relaxed),
            stats.revoked_by_limit.load(Ordering::Relaxed),
        );
        for (i, family) in sessions.families().iter().enumerate() {
            let counts = sessions.counts(Some(i as u16));
            let _ = write!(
                out,
                "family_{}:sessions={},users={}\r\n",
                family.name, counts.sessions, counts.users
            );
        }
        out.push_str("\r\n");
    }
    if wants("keyspace") {
        out.push_str("# Keyspace\r\n");
        for (db, store) in shared.databases.iter().enumerate() {
            let keys = store.len();
            if keys > 0 {
                // Items carrying a deadline are not counted separately; `expires` is a
                // lower bound of 0, and avg_ttl is not tracked.
                let _ = write!(out, "db{db}:keys={keys},expires=0,avg_ttl=0\r\n");
            }
        }
        out.push_str("\r\n");
    }
    // Redis ends the text without the last blank line.
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// `INFO [section …]`.
pub fn info(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    Ok(Reply::Verbatim {
        format: *b"txt",
        text: Bytes::from(info_text(ctx, args.rest())),
    }
    .into())
}

fn flag_names(spec: &Spec) -> Vec<Reply> {
    let mut flags = Vec::new();
    let mut push = |name: &'static str| flags.push(simple(name));
    if spec.flags.contains(Flags::WRITE) {
        push("write");
    }
    if spec.flags.contains(Flags::READONLY) {
        push("readonly");
    }
    if spec.flags.contains(Flags::DENYOOM) {
        push("denyoom");
    }
    if spec.flags.contains(Flags::ADMIN) {
        push("admin");
    }
    if spec.flags.contains(Flags::PUBSUB_OK) && spec.group == "pubsub" {
        push("pubsub");
    }
    if spec.flags.contains(Flags::NOSCRIPT) {
        push("noscript");
    }
    if spec.flags.contains(Flags::NO_AUTH) {
        push("no_auth");
    }
    if spec.flags.contains(Flags::FAST) {
        push("fast");
    }
    if spec.flags.contains(Flags::NO_MULTI) {
        push("no_multi");
    }
    if spec.flags.contains(Flags::ALLOW_BUSY) {
        push("allow_busy");
    }
    flags
}

fn command_info(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    Reply::Array(vec![
        bulk(spec.name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(flag_names(spec)),
        Reply::Integer(i64::from(first)),
        Reply::Integer(i64::from(last)),
        Reply::Integer(i64::from(step)),
        // The ACL category; Redis's is singular for the transactions group.
        Reply::Set(vec![simple_owned(match spec.group {
            "transactions" => "@transaction".to_string(),
            group => format!("@{group}"),
        })]),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn simple_owned(text: String) -> Reply {
    Reply::Simple(Bytes::from(text))
}

fn command_docs(spec: &Spec) -> Reply {
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Reply::Map(vec![
        (text("summary"), text(spec.summary)),
        (text("since"), text("1.0.0")),
        (text("group"), text(spec.group)),
    ])
}

/// `COMMAND [COUNT | INFO name … | DOCS [name …] | LIST]`.
pub fn command(_: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let Some(sub) = args.next() else {
        return Ok(Reply::Array(COMMANDS.iter().map(command_info).collect()).into());
    };
    let names = args.rest();
    let reply = match (
        String::from_utf8_lossy(sub).to_ascii_lowercase().as_str(),
        names,
    ) {
        ("count", []) => Reply::Integer(COMMANDS.len() as i64),
        ("list", _) => Reply::Array(COMMANDS.iter().map(|s| bulk(s.name)).collect()),
        ("info", []) => Reply::Array(COMMANDS.iter().map(command_info).collect()),
        ("info", names) => Reply::Array(
            names
                .iter()
                .map(|name| lookup(name).map_or(Reply::NullArray, command_info))
                .collect(),
        ),
        ("docs", names) => {
            let specs: Vec<&Spec> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.iter().filter_map(|name| lookup(name)).collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|spec| (bulk(spec.name), command_docs(spec)))
                    .collect(),
            )
        }
        _ => return Err(unknown_subcommand("command", sub)),
    };
    Ok(reply.into())
}

/// The settings `CONFIG GET` knows, with their current values.
fn config_values(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let shared = ctx.shared;
    let limit = shared.store.budget().limit();
    vec![
        (
            "notify-keyspace-events",
            flags_text(shared.resp.pubsub.flags()),
        ),
        (
            "maxmemory",
            if limit == u64::MAX { 0 } else { limit }.to_string(),
        ),
        ("maxmemory-policy", "noeviction".into()),
        (
            "appendonly",
            if shared.journal.is_some() {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
        ("appendfsync", shared.config.fsync.name().into()),
        ("save", String::new()),
        ("databases", DATABASES.to_string()),
        (
            "port",
            shared
                .config
                .resp_listen
                .map_or(0, |a| a.port())
                .to_string(),
        ),
        (
            "bind",
            shared
                .config
                .resp_listen
                .map_or(String::new(), |a| a.ip().to_string()),
        ),
        // Never a secret, to anyone: CONFIG GET is open to the app role, and a password
        // in a reply ends up in logs and monitoring.
        ("requirepass", String::new()),
        ("maxclients", shared.config.max_connections.to_string()),
        (
            "timeout",
            shared
                .config
                .idle_timeout
                .map_or(0, |d| d.as_secs())
                .to_string(),
        ),
        (
            "proto-max-bulk-len",
            sessiond_proto_resp::Limits::default()
                .max_bulk_len
                .to_string(),
        ),
        (
            "busy-reply-threshold",
            shared.busy.threshold_ms().to_string(),
        ),
        ("lua-time-limit", shared.busy.threshold_ms().to_string()),
        ("dir", shared.config.data_dir.display().to_string()),
    ]
    .into_iter()
    .chain(super::lists::config_values())
    .chain(shared.resp.encoding.values())
    .collect()
}

/// Parses a memory size as Redis's `memtoull` does: digits with an optional `k`, `kb`,
/// `m`, `mb`, `g` or `gb` (case-insensitive; `k` is 1000, `kb` 1024).
pub fn parse_memory(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(multiplier)
}

/// `CONFIG GET pattern … | SET name value … | RESETSTAT`. `notify-keyspace-events`,
/// `maxmemory` and `busy-reply-threshold` (`lua-time-limit`) can be set, and Redis's
/// encoding parameters are accepted with no effect; the rest reflect the command line and are
/// read-only.
pub fn config(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.word()?;
    let rest = args.rest();
    match sub.as_str() {
        "get" if !rest.is_empty() => Ok(config_get(ctx, rest).into()),
        "set" if rest.len() >= 2 && rest.len().is_multiple_of(2) => config_set(ctx, rest),
        "resetstat" if rest.is_empty() => {
            ctx.shared.stats.reset();
            Ok(Reply::ok().into())
        }
        "get" | "set" => Err(super::wrong_args(&format!("config|{sub}"))),
        _ => Err(unknown_subcommand("config", sub.as_bytes())),
    }
}

/// `CONFIG GET pattern …`.
fn config_get(ctx: &Ctx<'_>, patterns: &[Bytes]) -> Reply {
    let mut out = Vec::new();
    for (name, value) in config_values(ctx) {
        if patterns
            .iter()
            .any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
        {
            out.push((bulk(name), Reply::Bulk(Bytes::from(value))));
        }
    }
    Reply::Map(out)
}

/// `CONFIG SET name value …`: validates everything first, then applies all or nothing.
fn config_set(ctx: &Ctx<'_>, pairs: &[Bytes]) -> Handled {
    let known: Vec<&str> = config_values(ctx).iter().map(|(n, _)| *n).collect();
    let mut flags = None;
    let mut maxmemory = None;
    let mut busy_threshold = None;
    let mut encodings = Vec::new();
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let failed = |why: &str| {
            error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ))
        };
        match name.as_str() {
            "notify-keyspace-events" => {
                let parsed = parse_flags(&pair[1]).ok_or_else(|| {
                    failed("Invalid event class character. Use 'Ag$lshzxeKEtmd'.")
                })?;
                flags = Some(parsed);
            }
            "maxmemory" => {
                let parsed = parse_memory(&pair[1])
                    .ok_or_else(|| failed("argument must be a memory value"))?;
                maxmemory = Some(parsed);
            }
            // Redis's old and new names of one setting (`exec::busy`).
            "busy-reply-threshold" | "lua-time-limit" => {
                let parsed = super::parse_int(&pair[1])
                    .and_then(|ms| u64::try_from(ms).ok())
                    .ok_or_else(|| failed("argument couldn't be parsed into an integer"))?;
                busy_threshold = Some(parsed);
            }
            // Snapshots do not exist here (the journal is the persistence); Redis's test
            // harness turns them off with `save ""`, which is accepted and changes nothing.
            "save" => {}
            other if let Some(parsed) = ctx.shared.resp.encoding.parse(other, &pair[1]) => {
                encodings.push(parsed.map_err(failed)?);
            }
            // Accepted and without effect; see `lists::config_without_effect`.
            other if super::lists::config_without_effect(other, &pair[1]) => {}
            other if known.contains(&other) => return Err(failed("can't set immutable config")),
            other => {
                return Err(error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{other}'"
                )));
            }
        }
    }
    for parsed in encodings {
        ctx.shared.resp.encoding.apply(parsed);
    }
    if let Some(flags) = flags {
        ctx.shared.resp.pubsub.set_flags(flags);
    }
    if let Some(ms) = busy_threshold {
        ctx.shared.busy.set_threshold_ms(ms);
    }
    if let Some(limit) = maxmemory {
        // Redis's 0 means no limit. Lowering the limit below what is stored refuses new
        // growth; nothing is evicted.
        let limit = if limit == 0 { u64::MAX } else { limit };
        ctx.shared.store.budget().set_limit(limit);
    }
    Ok(Reply::ok().into())
}

/// `DBSIZE`: keys in the selected database (including expired ones not yet reclaimed, as
/// in Redis).
pub fn dbsize(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    Ok(Reply::Integer(ctx.store().len() as i64).into())
}

/// Reads the optional `ASYNC|SYNC` of the flush commands (both flush at once here).
fn flush_mode(args: &mut Args<'_>) -> Result<(), Reply> {
    match args.rest() {
        [] => Ok(()),
        [mode] if is(mode, "async") || is(mode, "sync") => Ok(()),
        _ => Err(super::syntax_error()),
    }
}

/// `FLUSHDB [ASYNC|SYNC]`.
pub fn flushdb(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    flush_mode(args)?;
    flush_database(ctx, ctx.session.db);
    Ok(Reply::ok().into())
}

/// Flushes database `db`, failing only the transactions that watch one of its keys that
/// existed (the command holds the script gate exclusively, so nothing changes in between).
fn flush_database(ctx: &Ctx<'_>, db: usize) {
    let store = &ctx.shared.databases[db];
    let now = ctx.now;
    ctx.shared.resp.pubsub.watches.flushing(
        db,
        |key| store.peek(key, now).is_some(),
        || store.flush_all(now, now),
    );
}

/// `FLUSHALL [ASYNC|SYNC]`.
pub fn flushall(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    flush_mode(args)?;
    for db in 0..ctx.shared.databases.len() {
        flush_database(ctx, db);
    }
    Ok(Reply::ok().into())
}

/// `TIME`: seconds and microseconds, as bulk strings.
pub fn time(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from((ctx.now / 1000).to_string())),
        Reply::Bulk(Bytes::from(((ctx.now % 1000) * 1000).to_string())),
    ])
    .into())
}

/// `BGREWRITEAOF`: starts a journal rewrite.
pub fn bgrewriteaof(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    match ctx.shared.start_journal_rewrite() {
        Ok(()) => Ok(simple("Background append only file rewriting started").into()),
        Err(RewriteRefusal::NoJournal) => Err(error("ERR no journal is configured")),
        Err(RewriteRefusal::JournalFailed) => {
            Err(super::write_refusal(ctx.shared).unwrap_or_else(|| error("ERR journal failed")))
        }
        Err(RewriteRefusal::AlreadyRunning) => Err(error(
            "ERR Background append only file rewriting already in progress",
        )),
    }
}

/// `SAVE`: the journal is sessiond's persistence, written as changes happen, so there is no
/// snapshot to take; the reply waits for the journal like a write's, so `+OK` means that
/// everything written before it is persisted as the fsync policy promises.
pub fn save(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    ctx.durable = ctx.shared.journal.is_some();
    Ok(Reply::ok().into())
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: asks the server to stop as SIGTERM does
/// (no new connections, requests in flight finished, the journal flushed and fsynced), and
/// closes the connection without a reply, as Redis does. `NOSAVE` and `SAVE` change nothing
/// (the journal is always flushed), nor do `NOW` and `FORCE`; `ABORT` finds no shutdown to
/// abort. In the busy state only `NOSAVE` is allowed, as in Redis; a running script still
/// ends by `--script-time-limit` (or the shutdown's grace period) first, so its writes so
/// far are kept.
pub fn shutdown(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (mut nosave, mut save, mut abort, mut other) = (false, false, false, false);
    for arg in args.rest() {
        if is(arg, "nosave") {
            nosave = true;
        } else if is(arg, "save") {
            save = true;
        } else if is(arg, "now") || is(arg, "force") {
            other = true;
        } else if is(arg, "abort") {
            abort = true;
        } else {
            return Err(super::syntax_error());
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Err(super::syntax_error());
    }
    if abort {
        return Err(error("ERR No shutdown in progress."));
    }
    if !nosave && ctx.shared.busy.script_running() {
        return Err(super::scripting::busy_reply());
    }
    tracing::warn!(
        client = ctx.session.id,
        "SHUTDOWN requested by a client; stopping"
    );
    ctx.shared.request_shutdown();
    ctx.session.quit = true;
    Ok(super::Answer::Many(Vec::new()))
}

/// `LASTSAVE`: when the server started (nothing is saved as an RDB; the journal is
/// continuous).
pub fn lastsave(ctx: &mut Ctx<'_>, _: &mut Args<'_>) -> Handled {
    let started = ctx.now / 1000 - ctx.shared.started.elapsed().as_secs();
    Ok(Reply::Integer(started as i64).into())
}

/// `FUNCTION FLUSH [ASYNC|SYNC] | LIST | KILL | STATS`: there are no functions (Redis 7
/// libraries are not supported), so flushing succeeds, the list is empty, none runs to be
/// killed, and the statistics count none (`KILL` and `STATS` answer as Redis does while a
/// script runs: they are allowed in the busy state).
pub fn function(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    if is(sub, "flush") {
        flush_mode(args).map_err(|_| unknown_subcommand("function", sub))?;
        Ok(Reply::ok().into())
    } else if is(sub, "list") {
        Ok(Reply::Array(Vec::new()).into())
    } else if is(sub, "kill") && args.rest().is_empty() {
        Err(super::scripting::function_kill(ctx.shared))
    } else if is(sub, "stats") && args.rest().is_empty() {
        Ok(super::scripting::function_stats(ctx.shared).into())
    } else {
        Err(unknown_subcommand("function", sub))
    }
}
