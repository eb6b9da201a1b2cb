//! Scripting: `EVAL`, `EVALSHA` and `SCRIPT LOAD | EXISTS | FLUSH`, with real Lua 5.1.
//!
//! # Atomicity
//! A script must see and change the keyspace without any other client's command in
//! between. sessiond runs commands on many threads, so this needs a lock; the choice is a
//! server-wide reader-writer lock, the *script gate* (`Shared::gate`): every ordinary
//! command of either protocol (and the expirer's sweep) holds it shared for the length of
//! one command, and a script holds it exclusively for its whole run. The alternatives were
//! worse: holding every shard lock of every database (1024 mutexes) for the script's run
//! would need a second, lock-free call path through the whole store; a per-key lock set
//! cannot work because a script may touch keys it did not declare. The gate is an async
//! lock taken by the connection (`conn`): the ordinary path is one `try_read` per command; a
//! command that finds a script running waits for it without holding up a worker thread, and
//! the script itself runs in `block_in_place`, so the worker's other connections move to
//! another thread meanwhile. Scripts are rare in session workloads (phpredis's unlock is the
//! only one seen in the wild) and short.
//!
//! While a script runs, time stands still for it (`now` is read once), as in Redis.
//!
//! # Limits
//! - **Time.** `--script-time-limit` (5 s by default) bounds a script wherever it is: an
//!   instruction-count hook checks the deadline every [`HOOK_EVERY`] VM instructions, the
//!   pattern functions check it while they match (see [`pattern`]), and `pcall`/`xpcall`
//!   re-raise the abort, so a script cannot catch it. The script ends with a `BUSY …`
//!   error; writes it made before the abort stay (they are already journaled). This hard
//!   cap is sessiond's. On top of it runs Redis's model (`exec::busy`): past
//!   `busy-reply-threshold` other RESP clients are answered `BUSY`, and `SCRIPT KILL` sets
//!   the kill flag the same three places check ([`ScriptRun`]), unless the script has
//!   already called a write command (`UNKILLABLE`); the killed script's caller gets Redis's
//!   `ERR Script killed by user with SCRIPT KILL...` with the script and line. Redis has no
//!   cap: a script that has written runs until it ends or `SHUTDOWN NOSAVE`, which would let
//!   one hostile script stop the server for good.
//! - **Memory.** The Lua state may allocate at most [`LUA_MEMORY`]; past it the script
//!   fails with a memory error and the state is collected.
//! - **Stack.** Lua 5.1's own limits (about 200 nested C calls, 20000 Lua frames) turn
//!   runaway recursion into an ordinary `stack overflow` error, and the pattern matcher's
//!   depth is limited ("pattern too complex") where Lua 5.1's C matcher would overflow the
//!   thread's stack.
//! - **Cache.** At most [`MAX_SCRIPTS`] scripts are remembered; past that, `EVAL` still
//!   runs a new script but does not cache it (so a client generating scripts cannot grow
//!   the server without bound).
//!
//! # Sandbox
//! The libraries are `base`, `table`, `string` and `math`, without anything that loads
//! code (text source only: no bytecode, no `load`/`loadstring`/`string.dump`), reads or
//! changes function environments, or reaches outside; globals and library tables are
//! read-only to scripts, so nothing one script does is seen by the next ([`PRELUDE`] says
//! exactly what). `redis.call`, `redis.pcall`, `redis.sha1hex`, `redis.status_reply`,
//! `redis.error_reply`, `redis.log`, `redis.setresp(2)` and the replication no-ops are
//! provided; `cjson`, `cmsgpack`, `struct` and `bit` are not.

mod pattern;
mod strlib;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Value as LuaValue, VmState};
use sessiond_proto_resp::Reply;

use super::args::{Args, Handled};
use super::{
    Answer, Ctx, Flags, Session, arity_ok, error, is, lookup, memory_refusal, not_integer,
    parse_int, unknown_subcommand, write_refusal,
};
use crate::exec::Shared;

/// How many VM instructions run between two clock checks.
pub const HOOK_EVERY: u32 = 10_000;
/// Most memory the Lua state may use.
pub const LUA_MEMORY: usize = 64 << 20;
/// Most scripts kept in the cache.
pub const MAX_SCRIPTS: usize = 4096;

/// Sets up the sandbox, given `alive` (raises the script's abort once its time is up or
/// `SCRIPT KILL` killed it). Returns the real globals and the real `redis` table; scripts see neither, only
/// read-only views of them.
///
/// - Gone: everything that loads code or reaches outside (`load`, `loadstring`, `dofile`,
///   `loadfile`, `string.dump`, `module`, `require`), changes or reads function environments
///   (`setfenv`, `getfenv`: `getfenv(0)` would hand out the real globals), `newproxy`,
///   `collectgarbage`/`gcinfo` (a script could stop the collector for every later one),
///   `coroutine` (a resumed coroutine catches errors, the time limit's included) and
///   `print`. The `debug` library is never opened.
/// - Read-only: the global table and every library table are views (`__index` to the real
///   table, `__newindex` an error, `__metatable` locked); `rawset` refuses them, and the
///   string metatable is locked, so `string.len = …`, `rawset(_G, …)` or
///   `getmetatable('').__index = …` cannot change what the next script sees.
/// - Uncatchable time limit and kill: `pcall` and `xpcall` check `alive` after the call, so
///   a script cannot catch its own abort and carry on.
const PRELUDE: &str = r##"
local alive = ...
local G = _G
local error, pairs, ipairs, rawset, select, setmetatable, getmetatable, unpack, pcall, xpcall =
  error, pairs, ipairs, rawset, select, setmetatable, getmetatable, unpack, pcall, xpcall

local redis = {}
redis.status_reply = function(s) return {ok = s} end
redis.error_reply = function(s) return {err = s} end
redis.log = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = function() end
redis.replicate_commands = function() return true end
redis.setresp = function(v)
  if v ~= 2 then error("sessiond scripts speak RESP2 only", 2) end
end
G.redis = redis

for _, name in ipairs({"dofile", "loadfile", "print", "load", "loadstring", "setfenv",
    "getfenv", "newproxy", "collectgarbage", "gcinfo", "module", "require", "coroutine"}) do
  G[name] = nil
end
G.string.dump = nil

local readonly_error = function() error("Attempt to modify a readonly table", 2) end
local protected = setmetatable({}, {__mode = "k"})
local function view(t)
  local proxy = setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = false})
  protected[proxy] = true
  return proxy
end

local function pack(...) return select("#", ...), {...} end
G.pcall = function(...)
  local n, results = pack(pcall(...))
  alive()
  return unpack(results, 1, n)
end
G.xpcall = function(...)
  local n, results = pack(xpcall(...))
  alive()
  return unpack(results, 1, n)
end
G.rawset = function(t, k, v)
  if protected[t] then error("Attempt to modify a readonly table", 2) end
  return rawset(t, k, v)
end

getmetatable("").__metatable = false

local real = {}
for k, v in pairs(G) do real[k] = v end
for k in pairs(real) do rawset(G, k, nil) end
for _, name in ipairs({"string", "table", "math", "redis"}) do
  if real[name] then real[name] = view(real[name]) end
end
real._G = G
protected[G] = true
setmetatable(G, {__index = real, __newindex = readonly_error, __metatable = false})
return real, redis
"##;

/// Why a running script is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Abort {
    /// `--script-time-limit` passed (sessiond's hard cap).
    TimeLimit,
    /// `SCRIPT KILL`.
    Killed,
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Abort::TimeLimit => {
                "BUSY script exceeded the time limit (--script-time-limit) and was aborted"
            }
            // Redis's text, which its caller gets without the script and line.
            Abort::Killed => "ERR Script killed by user with SCRIPT KILL...",
        })
    }
}

impl std::error::Error for Abort {}

/// A script stopped, with the line of the script it was at: Redis names it in a killed
/// script's error (`… script: <sha>, on @user_script:<line>.`).
#[derive(Debug)]
pub(super) struct Stopped {
    abort: Abort,
    line: usize,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.abort.fmt(f)
    }
}

impl std::error::Error for Stopped {}

/// The error that stops the script for `abort`, raised wherever it was noticed (the
/// instruction hook, the `pcall` guard, the pattern matcher, `redis.call`): Lua cannot catch
/// it for good, since every one of those places raises it again.
pub(super) fn stopped(lua: &Lua, abort: Abort) -> mlua::Error {
    mlua::Error::external(Stopped {
        abort,
        line: script_line(lua),
    })
}

/// The line the user's script is at: its innermost frame on the stack (the prelude's
/// wrappers and Rust functions are skipped), 0 if there is none.
fn script_line(lua: &Lua) -> usize {
    (0..64)
        .map_while(|level| {
            lua.inspect_stack(level, |frame| {
                let user = frame.source().source.as_deref() == Some("@user_script");
                (user, frame.current_line())
            })
        })
        .find_map(|(user, line)| if user { line } else { None })
        .unwrap_or(0)
}

/// What `SCRIPT KILL` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// The running script will stop at its next check.
    Killed,
    /// No script runs.
    NotRunning,
    /// The running script has called a write command: killing it would leave half its
    /// changes.
    Unkillable,
}

/// A script is running.
const RUNNING: u8 = 1;
/// It has called a write command.
const WROTE: u8 = 2;
/// `SCRIPT KILL` asked it to stop.
const KILLED: u8 = 4;

/// The running script's deadline and kill state, shared by the instruction hook, the pattern
/// matcher, the `pcall` guard, `redis.call` and `SCRIPT KILL` (which runs on another
/// connection, without the script gate, while the script holds it; see `exec::busy`).
///
/// "Wrote" and "killed" are bits of one atomic word changed by compare-and-swap, so a kill
/// and a script's first write are ordered: either the kill lands first and the write is
/// refused (the script stops having written nothing), or the write lands first and the kill
/// is refused (`UNKILLABLE`). A script is never killed half-way through its writes.
pub struct ScriptRun {
    base: Instant,
    /// The hard deadline, in nanoseconds after `base`; `u64::MAX` while no script runs.
    at: AtomicU64,
    /// [`RUNNING`], [`WROTE`], [`KILLED`].
    state: AtomicU8,
}

impl ScriptRun {
    fn new() -> ScriptRun {
        ScriptRun {
            base: Instant::now(),
            at: AtomicU64::new(u64::MAX),
            state: AtomicU8::new(0),
        }
    }

    fn start(&self, limit: Duration) {
        let at = self.base.elapsed().saturating_add(limit).as_nanos();
        self.at
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.state.store(RUNNING, Ordering::Release);
    }

    fn stop(&self) {
        self.state.store(0, Ordering::Release);
        self.at.store(u64::MAX, Ordering::Relaxed);
    }

    /// `Err` once the running script must stop: killed, or its time is up.
    pub(super) fn check(&self) -> Result<(), Abort> {
        if self.state.load(Ordering::Acquire) & KILLED != 0 {
            return Err(Abort::Killed);
        }
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now >= self.at.load(Ordering::Relaxed) {
            Err(Abort::TimeLimit)
        } else {
            Ok(())
        }
    }

    /// Called before the script runs a write command: records the write, or refuses it if
    /// the script was killed first.
    fn note_write(&self) -> Result<(), Abort> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & KILLED != 0 {
                return Err(Abort::Killed);
            }
            if state & WROTE != 0 {
                return Ok(());
            }
            match self.state.compare_exchange_weak(
                state,
                state | WROTE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => state = now,
            }
        }
    }

    /// `SCRIPT KILL`: asks the running script to stop, unless it has written.
    pub fn kill(&self) -> Kill {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & RUNNING == 0 {
                return Kill::NotRunning;
            }
            if state & WROTE != 0 {
                return Kill::Unkillable;
            }
            match self.state.compare_exchange_weak(
                state,
                state | KILLED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Kill::Killed,
                Err(now) => state = now,
            }
        }
    }

    /// Whether a script is running now.
    pub fn running(&self) -> bool {
        self.state.load(Ordering::Acquire) & RUNNING != 0
    }
}

struct Engine {
    lua: Lua,
    /// The real globals (see [`PRELUDE`]).
    globals: mlua::Table,
    /// The real `redis` table, where each run installs `call` and `pcall`.
    redis: mlua::Table,
    /// The running script's deadline and kill state (the same as [`Scripts::run`]).
    run: Arc<ScriptRun>,
    /// Compiled scripts by SHA1.
    compiled: HashMap<String, mlua::Function>,
}

impl Engine {
    fn new(run: Arc<ScriptRun>) -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(LUA_MEMORY)?;
        let string: mlua::Table = lua.globals().get("string")?;
        strlib::install(&lua, &string, &run)?;
        let watch = run.clone();
        let alive =
            lua.create_function(move |lua, ()| watch.check().map_err(|a| stopped(lua, a)))?;
        let (globals, redis): (mlua::Table, mlua::Table) = lua
            .load(PRELUDE)
            .set_name("=prelude")
            .set_mode(ChunkMode::Text)
            .call(alive)?;
        redis.raw_set(
            "sha1hex",
            lua.create_function(|_, s: mlua::LuaString| Ok(sha1_hex(&s.as_bytes())))?,
        )?;
        Ok(Engine {
            lua,
            globals,
            redis,
            run,
            compiled: HashMap::new(),
        })
    }
}

/// Loaded scripts and the interpreter.
pub struct Scripts {
    bodies: Mutex<HashMap<String, Bytes>>,
    engine: Mutex<Option<Engine>>,
    /// The running script's state, reachable without the engine's lock (which the running
    /// script holds): `SCRIPT KILL`, the busy replies.
    pub run: Arc<ScriptRun>,
}

impl Scripts {
    /// No scripts; the interpreter starts with the first script.
    pub fn new() -> Scripts {
        Scripts {
            bodies: Mutex::new(HashMap::new()),
            engine: Mutex::new(None),
            run: Arc::new(ScriptRun::new()),
        }
    }

    fn remember(&self, sha: &str, body: &Bytes) {
        let mut bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if bodies.len() < MAX_SCRIPTS || bodies.contains_key(sha) {
            bodies.insert(sha.to_string(), body.clone());
        }
    }

    fn body(&self, sha: &str) -> Option<Bytes> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sha)
            .cloned()
    }

    /// For `INFO memory`: the cached scripts, their bytes, and the Lua state's memory (0
    /// while the interpreter is busy or not started).
    pub fn memory(&self) -> (usize, usize, usize) {
        let (count, bytes) = {
            let bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
            (bodies.len(), bodies.values().map(Bytes::len).sum())
        };
        let lua = match self.engine.try_lock() {
            Ok(engine) => engine.as_ref().map_or(0, |e| e.lua.used_memory()),
            Err(_) => 0,
        };
        (count, bytes, lua)
    }

    fn flush(&self) {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // A fresh interpreter, as Redis does on SCRIPT FLUSH.
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts::new()
    }
}

/// Lower-case hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// `EVAL script numkeys [key …] [arg …]`.
pub fn eval(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let body = args.bytes()?.clone();
    let sha = sha1_hex(&body);
    ctx.shared.resp.scripts.remember(&sha, &body);
    Ok(run(ctx, &sha, &body, args.rest()).into())
}

/// `EVALSHA sha1 numkeys [key …] [arg …]`.
pub fn evalsha(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sha = String::from_utf8_lossy(args.bytes()?).to_ascii_lowercase();
    let body = ctx
        .shared
        .resp
        .scripts
        .body(&sha)
        .ok_or_else(|| error("NOSCRIPT No matching script. Please use EVAL."))?;
    Ok(run(ctx, &sha, &body, args.rest()).into())
}

/// `SCRIPT LOAD script | EXISTS sha1 … | FLUSH [ASYNC|SYNC] | KILL`.
pub fn script(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    let rest = args.rest();
    let scripts = &ctx.shared.resp.scripts;
    let reply = match (
        String::from_utf8_lossy(sub).to_ascii_lowercase().as_str(),
        rest,
    ) {
        ("load", [body]) => {
            let sha = sha1_hex(body);
            // Compile now, so a syntax error is reported at load time, as in Redis. (The
            // caller holds the script gate shared, so no script is using the interpreter.)
            let mut engine = scripts.engine.lock().unwrap_or_else(|e| e.into_inner());
            compiled(&mut engine, &scripts.run, &sha, body)?;
            drop(engine);
            scripts.remember(&sha, body);
            Reply::Bulk(Bytes::from(sha))
        }
        ("exists", shas) if !shas.is_empty() => Reply::Array(
            shas.iter()
                .map(|sha| {
                    let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                    Reply::Integer(i64::from(scripts.body(&sha).is_some()))
                })
                .collect(),
        ),
        ("flush", []) => {
            scripts.flush();
            Reply::ok()
        }
        ("flush", [mode]) if is(mode, "async") || is(mode, "sync") => {
            scripts.flush();
            Reply::ok()
        }
        // Reached while a script runs only in the busy state, where `SCRIPT KILL` runs without
        // the script gate (`exec::busy`); otherwise the caller holds the gate and no script
        // runs.
        ("kill", []) => match scripts.run.kill() {
            Kill::Killed => Reply::ok(),
            Kill::NotRunning => return Err(not_busy()),
            Kill::Unkillable => {
                return Err(error(
                    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
                ));
            }
        },
        _ => return Err(unknown_subcommand("script", sub)),
    };
    Ok(reply.into())
}

/// The compiled function of `sha`, compiling `body` (and starting the interpreter) if
/// needed.
fn compiled(
    engine: &mut Option<Engine>,
    run: &Arc<ScriptRun>,
    sha: &str,
    body: &[u8],
) -> Result<mlua::Function, Reply> {
    if engine.is_none() {
        *engine = Some(
            Engine::new(run.clone())
                .map_err(|e| error(format!("ERR could not start the Lua interpreter: {e}")))?,
        );
    }
    let Some(engine) = engine.as_mut() else {
        return Err(error("ERR could not start the Lua interpreter"));
    };
    if let Some(f) = engine.compiled.get(sha) {
        return Ok(f.clone());
    }
    // Text only: a precompiled chunk (what `string.dump` made) can crash the interpreter.
    let function = engine
        .lua
        .load(body)
        .set_name("@user_script")
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|e| {
            let text = match &e {
                mlua::Error::SyntaxError { message, .. } => message.clone(),
                other => other.to_string(),
            };
            error(format!(
                "ERR Error compiling script (new function): {}",
                first_line(&text)
            ))
        })?;
    if engine.compiled.len() < MAX_SCRIPTS {
        engine.compiled.insert(sha.to_string(), function.clone());
    }
    Ok(function)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Runs a script with `rest` = `numkeys key… arg…`.
fn run(ctx: &mut Ctx<'_>, sha: &str, body: &[u8], rest: &[Bytes]) -> Reply {
    let Some(numkeys) = parse_int(&rest[0]) else {
        return not_integer();
    };
    if numkeys < 0 {
        return error("ERR Number of keys can't be negative");
    }
    let numkeys = numkeys as usize;
    if numkeys > rest.len() - 1 {
        return error("ERR Number of keys can't be greater than number of args");
    }
    let (keys, argv) = rest[1..].split_at(numkeys);
    let scripts = &ctx.shared.resp.scripts;
    let mut engine = scripts.engine.lock().unwrap_or_else(|e| e.into_inner());
    let function = match compiled(&mut engine, &scripts.run, sha, body) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let Some(engine) = engine.as_ref() else {
        return error("ERR could not start the Lua interpreter");
    };
    ctx.session.in_script = true;
    let result = call_script(
        engine,
        function,
        ctx.shared,
        ctx.session,
        ctx.now,
        keys,
        argv,
    );
    ctx.session.in_script = false;
    match result {
        Ok(reply) => reply,
        Err(e) => {
            match find_cause::<Stopped>(&e).map(|s| s.abort) {
                Some(Abort::TimeLimit) => crate::stats::bump(&ctx.shared.stats.more.script_kills),
                Some(Abort::Killed) => {
                    crate::stats::bump(&ctx.shared.stats.more.scripts_killed_by_user);
                }
                None => {}
            }
            script_error(&e, sha)
        }
    }
}

/// What `redis.call` raises: the error reply's text and the script line that called.
#[derive(Debug)]
struct CallError {
    text: String,
    line: usize,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CallError {}

/// `-NOTBUSY No scripts in execution right now.`
fn not_busy() -> Reply {
    error("NOTBUSY No scripts in execution right now.")
}

/// Redis's `BUSY` text while a script runs past `busy-reply-threshold`.
const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// The reply to a command refused in the busy state (see `exec::busy`), which only a script
/// brings: Redis's text.
pub fn busy_reply() -> Reply {
    error(BUSY_SCRIPT)
}

/// `FUNCTION KILL`: there are no functions here, so nothing to kill; a running script is
/// `SCRIPT KILL`'s, as Redis answers.
pub fn function_kill(shared: &Shared) -> Reply {
    if shared.resp.scripts.run.running() {
        error(BUSY_SCRIPT)
    } else {
        not_busy()
    }
}

/// `FUNCTION STATS`: no function runs and no library is loaded; during a script, Redis's
/// refusal.
pub fn function_stats(shared: &Shared) -> Reply {
    if shared.resp.scripts.run.running() {
        return error(BUSY_SCRIPT);
    }
    let count = |name: &'static str| (super::bulk(name), Reply::Integer(0));
    Reply::Map(vec![
        (super::bulk("running_script"), Reply::Null),
        (
            super::bulk("engines"),
            Reply::Map(vec![(
                super::bulk("LUA"),
                Reply::Map(vec![count("libraries_count"), count("functions_count")]),
            )]),
        ),
    ])
}

fn find_cause<T: std::error::Error + 'static>(e: &mlua::Error) -> Option<&T> {
    match e {
        mlua::Error::CallbackError { cause, .. } => find_cause(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<T>(),
        mlua::Error::WithContext { cause, .. } => find_cause(cause),
        _ => None,
    }
}

/// The error reply for a script that failed, in Redis 7's words.
fn script_error(e: &mlua::Error, sha: &str) -> Reply {
    if let Some(stopped) = find_cause::<Stopped>(e) {
        return match stopped.abort {
            // sessiond's own error: no script or line, as before the busy model.
            Abort::TimeLimit => error(stopped.abort.to_string()),
            Abort::Killed => error(format!(
                "{} script: {sha}, on @user_script:{}.",
                stopped.abort, stopped.line
            )),
        };
    }
    if let Some(call) = find_cause::<CallError>(e) {
        return error(format!(
            "{} script: {sha}, on @user_script:{}.",
            call.text, call.line
        ));
    }
    let text = match e {
        mlua::Error::MemoryError(_) => "not enough memory (script memory limit reached)".into(),
        mlua::Error::RuntimeError(text) => first_line(text).to_string(),
        other => first_line(&other.to_string()).to_string(),
    };
    // `user_script:<line>: …` carries the line.
    let line = text
        .strip_prefix("user_script:")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    error(format!("ERR {text} script: {sha}, on @user_script:{line}."))
}

fn call_script(
    engine: &Engine,
    function: mlua::Function,
    shared: &Shared,
    session: &mut Session,
    now: u64,
    keys: &[Bytes],
    argv: &[Bytes],
) -> mlua::Result<Reply> {
    let lua = &engine.lua;
    let strings = |items: &[Bytes]| -> mlua::Result<mlua::Table> {
        let table = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            table.raw_set(i + 1, lua.create_string(item)?)?;
        }
        Ok(table)
    };
    engine.globals.raw_set("KEYS", strings(keys)?)?;
    engine.globals.raw_set("ARGV", strings(argv)?)?;
    engine.run.start(shared.config.script_time_limit);
    // The busy state follows the script itself, not the request holding the gate: a script
    // run by `EXEC` makes others busy while it runs, and `EXEC`'s other commands (or a
    // multi-key command) never do, since Redis only answers `BUSY` during scripts.
    let busy = shared.busy.enter(Instant::now());
    let run = engine.run.clone();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |lua, _| match run.check() {
            Ok(()) => Ok(VmState::Continue),
            Err(abort) => Err(stopped(lua, abort)),
        },
    )?;
    let session = RefCell::new(session);
    let result = lua.scope(|scope| {
        let redis = &engine.redis;
        let call = |raise: bool| {
            let session = &session;
            scope.create_function(move |lua, args: mlua::MultiValue| {
                let reply = command_from_script(lua, shared, &mut session.borrow_mut(), now, args)
                    .map_err(|abort| stopped(lua, abort))?;
                match reply {
                    Reply::Error(text) if raise => {
                        let line = lua
                            .inspect_stack(1, |d| d.current_line())
                            .flatten()
                            .unwrap_or(0);
                        Err(mlua::Error::external(CallError {
                            text: String::from_utf8_lossy(&text).into_owned(),
                            line,
                        }))
                    }
                    other => to_lua(lua, &other),
                }
            })
        };
        redis.raw_set("call", call(true)?)?;
        redis.raw_set("pcall", call(false)?)?;
        let value: LuaValue = function.call(())?;
        from_lua(&value)
    });
    lua.remove_hook();
    engine.run.stop();
    drop(busy);
    // Leave nothing of this run reachable; Lua's incremental collector reclaims it as the
    // next runs allocate. A full collection after every script (what this did before) was a
    // fifth of the server's CPU on the session store's scripts: it marks and sweeps the whole
    // heap, compiled scripts included, to free a few tables. Lua 5.1 has no emergency
    // collection when an allocation hits the memory limit, so, as a backstop, past half the
    // limit the garbage is collected at once, keeping the limit for live data.
    let _ = engine.globals.raw_set("KEYS", LuaValue::Nil);
    let _ = engine.globals.raw_set("ARGV", LuaValue::Nil);
    if lua.used_memory() > LUA_MEMORY / 2 {
        let _ = lua.gc_collect();
    }
    result
}

/// Runs one `redis.call` from a script: the command checks of [`super::execute`] with
/// the script's own error texts, then the handler directly (the caller already holds the
/// script gate exclusively).
fn command_from_script(
    lua: &Lua,
    shared: &Shared,
    session: &mut Session,
    now: u64,
    args: mlua::MultiValue,
) -> Result<Reply, Abort> {
    let mut argv = Vec::with_capacity(args.len());
    for arg in args {
        match arg {
            LuaValue::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            LuaValue::Integer(n) => argv.push(Bytes::from(n.to_string())),
            LuaValue::Number(n) => argv.push(Bytes::from(number_text(n))),
            _ => {
                return Ok(error(
                    "ERR Lua redis lib command arguments must be strings or integers",
                ));
            }
        }
    }
    let _ = lua;
    if argv.is_empty() {
        return Ok(error(
            "ERR Please specify at least one argument for this redis lib call",
        ));
    }
    let Some(spec) = lookup(&argv[0]) else {
        return Ok(error("ERR Unknown Redis command called from script"));
    };
    if spec.flags.contains(Flags::NOSCRIPT) {
        return Ok(error("ERR This Redis command is not allowed from script"));
    }
    // A script runs with its caller's role: EVAL must not be a way around it.
    if let Some(refusal) = super::commands::permission_refusal(&session.user, spec, &argv) {
        return Ok(refusal);
    }
    if !arity_ok(spec, argv.len()) {
        return Ok(error(
            "ERR Wrong number of args calling Redis command from script",
        ));
    }
    if spec.flags.contains(Flags::WRITE)
        && let Some(refusal) = write_refusal(shared)
    {
        return Ok(refusal);
    }
    if spec.flags.contains(Flags::DENYOOM)
        && let Some(refusal) = memory_refusal(shared)
    {
        return Ok(refusal);
    }
    // Redis's rule: a script that has called a write command can no longer be killed. A
    // script killed before this write stops here, having written nothing.
    if spec.flags.contains(Flags::WRITE) {
        shared.resp.scripts.run.note_write()?;
    }
    let mut ctx = Ctx {
        shared,
        session,
        now,
        durable: false,
    };
    Ok(match (spec.handler)(&mut ctx, &mut Args::new(&argv)) {
        Ok(Answer::One(reply)) | Err(reply) => reply,
        Ok(Answer::Many(mut replies)) => replies.pop().unwrap_or(Reply::Null),
    })
}

/// A Lua number as Redis passes it to a command (`%.17g`; integral values as integers).
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A command's reply as a script sees it (Redis's RESP2 conversion).
fn to_lua(lua: &Lua, reply: &Reply) -> mlua::Result<LuaValue> {
    Ok(match reply {
        Reply::Integer(n) => LuaValue::Integer(*n as _),
        Reply::Bulk(b) => LuaValue::String(lua.create_string(b)?),
        Reply::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s)?)?;
            LuaValue::Table(t)
        }
        Reply::Error(s) => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(s)?)?;
            LuaValue::Table(t)
        }
        Reply::Null | Reply::NullArray => LuaValue::Boolean(false),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(t)
        }
        Reply::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, k)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, v)?)?;
            }
            LuaValue::Table(t)
        }
        Reply::Double(d) => {
            let mut out = bytes::BytesMut::new();
            sessiond_proto_resp::encode(
                &Reply::Double(*d),
                sessiond_proto_resp::Protocol::Resp2,
                &mut out,
            );
            // `$<len>\r\n<text>\r\n`: keep the text.
            let text = out[..]
                .split(|&b| b == b'\n')
                .nth(1)
                .map(|t| t.strip_suffix(b"\r").unwrap_or(t).to_vec())
                .unwrap_or_default();
            LuaValue::String(lua.create_string(text)?)
        }
        Reply::Boolean(b) => LuaValue::Integer(i64::from(*b) as _),
        Reply::Verbatim { text, .. } => LuaValue::String(lua.create_string(text)?),
        Reply::BigNumber(digits) => LuaValue::String(lua.create_string(digits)?),
    })
}

/// A script's return value as a reply (Redis's rules: numbers truncate to integers,
/// `false`/`nil` are null, `true` is 1, `{ok=…}`/`{err=…}` are status and error replies,
/// other tables are arrays up to the first nil).
fn from_lua(value: &LuaValue) -> mlua::Result<Reply> {
    from_lua_depth(value, 0)
}

fn from_lua_depth(value: &LuaValue, depth: usize) -> mlua::Result<Reply> {
    // Reply nesting is bounded like the codec's, so a self-referencing table cannot recurse
    // forever.
    if depth > 64 {
        return Ok(Reply::Null);
    }
    Ok(match value {
        LuaValue::Nil | LuaValue::Boolean(false) => Reply::Null,
        LuaValue::Boolean(true) => Reply::Integer(1),
        LuaValue::Integer(n) => Reply::Integer(*n),
        LuaValue::Number(n) => Reply::Integer(*n as i64),
        LuaValue::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        LuaValue::Table(t) => {
            if let Ok(LuaValue::String(e)) = t.raw_get::<LuaValue>("err") {
                return Ok(Reply::Error(Bytes::copy_from_slice(&e.as_bytes())));
            }
            if let Ok(LuaValue::String(s)) = t.raw_get::<LuaValue>("ok") {
                return Ok(Reply::Simple(Bytes::copy_from_slice(&s.as_bytes())));
            }
            let mut items = Vec::new();
            for i in 1.. {
                let item: LuaValue = t.raw_get(i)?;
                if item.is_nil() {
                    break;
                }
                items.push(from_lua_depth(&item, depth + 1)?);
            }
            Reply::Array(items)
        }
        _ => Reply::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kill and a script's first write are ordered: whichever lands first wins, so a script
    /// is never killed half-way through its writes.
    #[test]
    fn kill_and_first_write_are_ordered() {
        let run = ScriptRun::new();
        assert_eq!(run.kill(), Kill::NotRunning);
        assert!(!run.running());

        run.start(Duration::from_secs(60));
        assert!(run.running());
        assert_eq!(run.check(), Ok(()));
        assert_eq!(run.kill(), Kill::Killed);
        assert_eq!(run.check(), Err(Abort::Killed));
        assert_eq!(
            run.note_write(),
            Err(Abort::Killed),
            "killed first: no write"
        );
        run.stop();
        assert_eq!(run.kill(), Kill::NotRunning);

        run.start(Duration::from_secs(60));
        assert_eq!(run.check(), Ok(()), "a new run starts unkilled");
        assert_eq!(run.note_write(), Ok(()));
        assert_eq!(run.kill(), Kill::Unkillable, "wrote first: no kill");
        assert_eq!(run.check(), Ok(()));
        run.stop();

        run.start(Duration::ZERO);
        assert_eq!(run.check(), Err(Abort::TimeLimit));
        run.stop();
    }
}
