//! Settings: command-line options, `SESSIOND_*` environment variables and a TOML file.
//!
//! Precedence, highest first: a command-line flag, its `SESSIOND_*` environment variable, the
//! key of the same name in `--config FILE`, the built-in default. Every option has a TOML key
//! spelled like the flag with underscores (`--max-memory` → `max_memory`). Parsing and
//! validation happen here once; the rest of the server reads a finished [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;

use crate::durability::FsyncPolicy;
pub use crate::sessions::Settings as SessionSettings;
use sessiond_session_format::{Families, Family};

/// Command-line options. Each is optional here so that a TOML file can fill the gaps;
/// defaults are applied in [`Options::resolve`] and shown in `--help`.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(
    name = "sessiond",
    version,
    about = "A durable session store that speaks the memcached and Redis protocols.",
    long_about = "sessiond is a session store for web applications behind a load balancer. \
                  It speaks the memcached text and binary protocols on one port, so PHP's \
                  `session.save_handler = memcached` and other stock clients use it unchanged; \
                  it also speaks RESP2/RESP3 for Redis clients (phpredis, node-redis, fred, \
                  Spring Session), sharing database 0 with the memcached keyspace. \
                  Unlike memcached it never evicts a live session: when memory runs out, \
                  writes are refused with `SERVER_ERROR out of memory storing object`."
)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// TOML file with any of these options as keys (`max_memory = "1g"`).
    #[arg(long, env = "SESSIOND_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address of the memcached-protocol listener (text and binary on one port), or `off`.
    /// Port 0 picks a free port; the bound address is printed at start. [default: 127.0.0.1:11211]
    #[arg(long, env = "SESSIOND_MEMCACHE_LISTEN", value_name = "ADDR|off")]
    pub memcache_listen: Option<String>,

    /// Address of the Redis-protocol (RESP2/RESP3) listener, or `off`. RESP database 0 is
    /// the memcached keyspace. Port 0 picks a free port; the bound address is printed at
    /// start. [default: 127.0.0.1:6379]
    #[arg(long, env = "SESSIOND_RESP_LISTEN", value_name = "ADDR|off")]
    pub resp_listen: Option<String>,

    /// Address of a TLS listener for the memcached protocol, or `off`. Needs `--tls-cert`
    /// and `--tls-key`. Port 0 picks a free port; the bound address is printed at start.
    /// [default: off]
    #[arg(long, env = "SESSIOND_MEMCACHE_TLS_LISTEN", value_name = "ADDR|off")]
    pub memcache_tls_listen: Option<String>,

    /// Address of a TLS listener for RESP, or `off`. Needs `--tls-cert` and `--tls-key`. For a
    /// TLS-only server, also set `--memcache-listen off --resp-listen off`. [default: off]
    #[arg(long, env = "SESSIOND_RESP_TLS_LISTEN", value_name = "ADDR|off")]
    pub resp_tls_listen: Option<String>,

    /// Address of the HTTP listener (the JSON admin API under `/api/v1`, `/metrics`,
    /// `/health/live`, `/health/ready`), or `off`. Port 0 picks a free port; the bound
    /// address is printed at start. [default: 127.0.0.1:8080]
    #[arg(long, env = "SESSIOND_HTTP_LISTEN", value_name = "ADDR|off")]
    pub http_listen: Option<String>,

    /// Address of an HTTPS listener (the same routes over TLS), or `off`. Needs `--tls-cert`
    /// and `--tls-key`. [default: off]
    #[arg(long, env = "SESSIOND_HTTP_TLS_LISTEN", value_name = "ADDR|off")]
    pub http_tls_listen: Option<String>,

    /// `yes` serves `/metrics` to anyone who can reach the HTTP listener (as the health
    /// checks are); `no` asks for an admin's credentials there too. [default: yes]
    #[arg(long, env = "SESSIOND_HTTP_OPEN_METRICS", value_name = "yes|no")]
    pub http_open_metrics: Option<String>,

    /// PEM file with the server's certificate chain (leaf first) for the TLS listeners.
    /// Re-read, with the key and CA, on SIGHUP. [default: none]
    #[arg(long, env = "SESSIOND_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1). [default: none]
    #[arg(long, env = "SESSIOND_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// PEM file of CA certificates that client certificates are verified against; given,
    /// TLS clients must present one (see `--tls-client-auth`). [default: none, no client
    /// certificates]
    #[arg(long, env = "SESSIOND_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// With `--tls-ca`: `required` refuses a TLS client without a valid certificate;
    /// `optional` also accepts one that presents none (one that presents an invalid one is
    /// still refused). [default: required]
    #[arg(
        long,
        env = "SESSIOND_TLS_CLIENT_AUTH",
        value_name = "required|optional"
    )]
    pub tls_client_auth: Option<String>,

    /// Seconds a TLS client gets to complete its handshake before the connection (and its
    /// connection slot) is dropped. [default: 10]
    #[arg(long, env = "SESSIOND_TLS_HANDSHAKE_TIMEOUT", value_name = "SECONDS")]
    pub tls_handshake_timeout: Option<u64>,

    /// Password of the `default` user, which every client of either listener must log in
    /// with (RESP `AUTH <pass>`; memcached SASL PLAIN or the text-protocol auth `set`)
    /// before any other command. The `default` user has the admin role unless a `--user`
    /// with the admin role exists, in which case it has the app role. Unset, and with no
    /// `--user`, no authentication is required. Argv is visible in `ps`: prefer
    /// `--requirepass-file`, the environment or the config file. [default: none]
    #[arg(long, env = "SESSIOND_REQUIREPASS", value_name = "PASSWORD")]
    pub requirepass: Option<String>,

    /// Reads the `default` user's password from the first line of FILE instead.
    #[arg(long, env = "SESSIOND_REQUIREPASS_FILE", value_name = "FILE")]
    pub requirepass_file: Option<PathBuf>,

    /// A named user, `NAME:ROLE:PASSWORD`, ROLE `app` (the data and connection commands
    /// session clients use) or `admin` (also FLUSHALL, FLUSHDB, flush_all, CONFIG SET,
    /// SCRIPT FLUSH, BGREWRITEAOF, journal rewrite, CLIENT LIST); repeat for several. RESP
    /// clients log in with `AUTH NAME PASSWORD`, memcached clients with SASL PLAIN or the
    /// text auth `set`. In TOML: `[[users]]` tables with `name`, `role` and `password` or
    /// `password_file`.
    #[arg(long = "user", value_name = "NAME:ROLE:PASSWORD")]
    #[serde(skip)]
    pub user: Vec<String>,

    /// Like `--user`, with the password read from the first line of FILE.
    #[arg(long = "user-file", value_name = "NAME:ROLE:FILE")]
    #[serde(skip)]
    pub user_file: Vec<String>,

    /// Users from the TOML file (`[[users]]`); see `--user`.
    #[arg(skip)]
    #[serde(default)]
    pub users: Vec<UserEntry>,

    /// `yes` refuses to start when a listener binds a non-loopback address and no password
    /// is set (as Redis's protected mode refuses such clients); `no` allows it, for a
    /// network that something else protects. [default: yes]
    #[arg(long, env = "SESSIOND_PROTECTED_MODE", value_name = "yes|no")]
    pub protected_mode: Option<String>,

    /// The session layer: `on` keeps a per-user index of the keys the session families name,
    /// with the SESSION.* commands and lifecycle events; `off` stores sessions as opaque
    /// values, like memcached and Redis. [default: on]
    #[arg(long, env = "SESSIOND_SESSIONS", value_name = "on|off")]
    pub sessions: Option<String>,

    /// Which preset session families are on: `all`, `none`, or a comma-separated list of
    /// `php-memcached`, `phpredis`, `express`, `sessiond`. [default: all]
    #[arg(
        long,
        env = "SESSIOND_SESSION_PRESETS",
        value_name = "all|none|NAME,..."
    )]
    pub session_presets: Option<String>,

    /// A session family of your own, added after the presets (repeatable), e.g.
    /// `name=shop,prefix=shop_sess:,format=php_serialize,user=/auth/id`. Formats: `php`,
    /// `php_binary`, `php_serialize`, `json`, `record`; `user` is a JSON-pointer path (a
    /// segment ending in `*` matches a key prefix). In TOML: `[[session_families]]` tables.
    #[arg(long = "session-family", value_name = "SPEC")]
    #[serde(skip)]
    pub session_family: Vec<String>,

    /// Session families from the TOML file.
    #[arg(skip)]
    #[serde(default)]
    pub session_families: Vec<Family>,

    /// At most this many sessions per user in one family; a write that goes over revokes
    /// the user's oldest session before it is acknowledged. 0 means no limit. [default: 0]
    #[arg(long, env = "SESSIOND_MAX_SESSIONS_PER_USER", value_name = "N")]
    pub max_sessions_per_user: Option<u32>,

    /// How long a revoked session that had no deadline stays revoked (a revoked session with
    /// a deadline stays revoked until that deadline). [default: 86400]
    #[arg(long, env = "SESSIOND_REVOCATION_HOLD", value_name = "SECONDS")]
    pub revocation_hold: Option<u64>,

    /// Memory limit for stored data (key + value + per-item overhead), e.g. `512m`, `4g` or a
    /// byte count. sessiond never evicts: past the limit, writes fail with
    /// `SERVER_ERROR out of memory storing object`. [default: 1g]
    #[arg(long, env = "SESSIOND_MAX_MEMORY", value_name = "SIZE")]
    pub max_memory: Option<String>,

    /// Largest value accepted, e.g. `1m`. [default: 1m]
    #[arg(long, env = "SESSIOND_MAX_ITEM_SIZE", value_name = "SIZE")]
    pub max_item_size: Option<String>,

    /// Most simultaneous client connections per listener (the memcached and the RESP
    /// listener each have this many); one more is told `SERVER_ERROR too many open
    /// connections` (RESP: `-ERR max number of clients reached`) and closed. [default: 1024]
    #[arg(long, env = "SESSIOND_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Seconds a connection may stay idle before it is closed; 0 never closes idle
    /// connections (memcached's default). [default: 0]
    #[arg(long, env = "SESSIOND_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,

    /// Seconds a RESP connection that has not authenticated (with `--requirepass` set) may
    /// stay idle before it is closed; 0 never. [default: 10]
    #[arg(long, env = "SESSIOND_AUTH_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub auth_idle_timeout: Option<u64>,

    /// Seconds a write to a client may make no progress before the connection is closed (a
    /// client that never reads cannot hold its connection forever); 0 never. [default: 30]
    #[arg(long, env = "SESSIOND_WRITE_TIMEOUT", value_name = "SECONDS")]
    pub write_timeout: Option<u64>,

    /// Largest reply, and most output waiting for a client that does not read, per
    /// connection (Redis's `client-output-buffer-limit normal`): a larger reply is refused
    /// with `-ERR reply of N bytes exceeds the output limit` (RESP) or `SERVER_ERROR out of
    /// memory writing get response` (memcached). Never below the largest value plus 4 KiB.
    /// [default: 32m]
    #[arg(long, env = "SESSIOND_CLIENT_OUTPUT_LIMIT", value_name = "SIZE")]
    pub client_output_limit: Option<String>,

    /// Most pub/sub messages, in bytes, waiting for one subscriber; past it the subscriber
    /// is disconnected (Redis's `client-output-buffer-limit pubsub` hard limit). Never below
    /// the largest value plus 4 KiB. [default: 32m]
    #[arg(long, env = "SESSIOND_PUBSUB_OUTPUT_LIMIT", value_name = "SIZE")]
    pub pubsub_output_limit: Option<String>,

    /// Keyspace notifications at start, in Redis's `notify-keyspace-events` letters (`K`
    /// keyspace channel, `E` keyevent channel, and the classes `g`, `$`, `s`, `h`, `z`, `x`,
    /// `A`, …; e.g. `KEA`), as `CONFIG SET notify-keyspace-events` would set them. Writes of
    /// both protocols raise them, memcached's in database 0. `CONFIG SET` still changes them
    /// while running. [default: empty, off]
    #[arg(long, env = "SESSIOND_NOTIFY_KEYSPACE_EVENTS", value_name = "FLAGS")]
    pub notify_keyspace_events: Option<String>,

    /// Milliseconds a Lua script may run before it is aborted with `BUSY` (wherever it is,
    /// pattern matching included, and whether it has written or not): sessiond's hard cap,
    /// which Redis does not have, so that no script can hold the server for ever. At least 1.
    /// [default: 5000]
    #[arg(long, env = "SESSIOND_SCRIPT_TIME_LIMIT", value_name = "MILLISECONDS")]
    pub script_time_limit: Option<u64>,

    /// Redis's `busy-reply-threshold` (old name `lua-time-limit`), in milliseconds: once a
    /// script has run this long, other RESP clients are answered `-BUSY …` at once instead
    /// of waiting, and `SCRIPT KILL`
    /// can end a script that has not written. Only a threshold below `--script-time-limit`
    /// has an effect; 0 turns the busy state off. `CONFIG SET` changes it while running.
    /// [default: 5000]
    #[arg(
        long,
        alias = "lua-time-limit",
        env = "SESSIOND_BUSY_REPLY_THRESHOLD",
        value_name = "MILLISECONDS"
    )]
    pub busy_reply_threshold: Option<u64>,

    /// Worker threads. [default: the number of CPUs]
    #[arg(long, env = "SESSIOND_THREADS", value_name = "N")]
    pub threads: Option<usize>,

    /// Directory for durable data (used by the journal). [default: ./sessiond-data]
    #[arg(long, env = "SESSIOND_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// When journal writes reach the disk: `always` (a write is acknowledged only once it is
    /// on disk; group commit), `everysec` (written to the OS before the reply, fsynced every
    /// second: a power loss can lose about one second, a crash of sessiond loses nothing) or
    /// `no` (the OS decides). [default: everysec]
    #[arg(long, env = "SESSIOND_FSYNC", value_name = "always|everysec|no")]
    pub fsync: Option<String>,

    /// A journal segment is closed and a new one started past this size. [default: 64m]
    #[arg(long, env = "SESSIOND_JOURNAL_SEGMENT_SIZE", value_name = "SIZE")]
    pub journal_segment_size: Option<String>,

    /// The journal is rewritten (a snapshot of the live data replaces the segments) once the
    /// segments written since the last rewrite exceed this size and twice the live data.
    /// [default: 64m]
    #[arg(long, env = "SESSIOND_JOURNAL_REWRITE_MIN_SIZE", value_name = "SIZE")]
    pub journal_rewrite_min_size: Option<String>,

    /// At start, if the journal is corrupt (not merely torn at its end), keep everything
    /// before the damage and drop the rest, instead of refusing to start.
    #[arg(long, env = "SESSIOND_RECOVER_TRUNCATE")]
    #[serde(default)]
    pub recover_truncate: bool,

    /// Log filter in `tracing` syntax, e.g. `info` or `sessiond=debug`. [default: info]
    #[arg(long, env = "SESSIOND_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Log format. [default: text]
    #[arg(long, env = "SESSIOND_LOG_FORMAT", value_name = "text|json")]
    pub log_format: Option<String>,
}

/// One `[[users]]` table of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The user name clients log in with.
    pub name: String,
    /// `app` or `admin`.
    pub role: String,
    /// The password (or use `password_file`).
    pub password: Option<String>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
}

/// What an authenticated user may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The commands session clients need: data, expiry, pub/sub, scripts, connection.
    App,
    /// Everything, administration included.
    Admin,
}

/// A configured user. The password is kept only until the server hashes it; `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// What it may run.
    pub role: Role,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Longest password accepted. Far beyond any real one; it keeps every login within the small
/// limits unauthenticated connections decode under (a 4 KiB SASL payload, a 16 KiB RESP
/// argument).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The finished configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The memcached listener's address; `None` when disabled.
    pub memcache_listen: Option<SocketAddr>,
    /// The RESP listener's address; `None` when disabled.
    pub resp_listen: Option<SocketAddr>,
    /// The memcached TLS listener's address; `None` when disabled.
    pub memcache_tls_listen: Option<SocketAddr>,
    /// The RESP TLS listener's address; `None` when disabled.
    pub resp_tls_listen: Option<SocketAddr>,
    /// The HTTP listener's address; `None` when disabled.
    pub http_listen: Option<SocketAddr>,
    /// The HTTPS listener's address; `None` when disabled.
    pub http_tls_listen: Option<SocketAddr>,
    /// Whether `/metrics` is served without credentials.
    pub http_open_metrics: bool,
    /// Certificate, key and client verification for the TLS listeners, when configured.
    pub tls: Option<TlsConfig>,
    /// The `default` user's password, if any.
    pub requirepass: Option<String>,
    /// The named users (`--user`, `[[users]]`).
    pub users: Vec<User>,
    /// Refuse to listen beyond loopback without a password.
    pub protected_mode: bool,
    /// Memory limit in bytes.
    pub max_memory: u64,
    /// Largest value in bytes.
    pub max_item_size: usize,
    /// Most simultaneous connections, per listener.
    pub max_connections: usize,
    /// Idle timeout; `None` never closes idle connections.
    pub idle_timeout: Option<Duration>,
    /// Idle timeout of a RESP connection that has not authenticated; `None`: never.
    pub auth_idle_timeout: Option<Duration>,
    /// How long a write may make no progress; `None`: forever.
    pub write_timeout: Option<Duration>,
    /// Largest reply and most pending output of one connection, in bytes.
    pub client_output_limit: usize,
    /// Most bytes of pub/sub messages queued for one subscriber.
    pub pubsub_output_limit: usize,
    /// The keyspace notifications the server starts with (`pubsub`'s flag bits).
    pub notify_keyspace_events: u32,
    /// How long a script may run (the hard cap).
    pub script_time_limit: Duration,
    /// Redis's `busy-reply-threshold` at start, in milliseconds (0: no busy state).
    pub busy_reply_threshold_ms: u64,
    /// Worker threads.
    pub threads: usize,
    /// Durable data directory.
    pub data_dir: PathBuf,
    /// The journal's fsync policy.
    pub fsync: FsyncPolicy,
    /// Drop a corrupt journal's tail instead of refusing to start.
    pub recover_truncate: bool,
    /// Segment size limit in bytes.
    pub journal_segment_size: u64,
    /// Minimum journal growth before a rewrite, in bytes.
    pub journal_rewrite_min_size: u64,
    /// Log filter.
    pub log: String,
    /// Whether logs are JSON lines.
    pub log_json: bool,
    /// The session layer's settings; `None` when it is off.
    pub sessions: Option<SessionSettings>,
}

/// Whether a TLS client must present a certificate (only with a CA to verify it against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a valid certificate is refused (Redis's `tls-auth-clients yes`).
    Required,
    /// A client may present no certificate; one that presents an invalid one is refused.
    Optional,
}

/// The TLS settings: paths, not loaded material, so that SIGHUP can read the files again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key: PathBuf,
    /// PEM CA certificates client certificates are verified against, and whether one is
    /// required; `None`: clients are not asked for a certificate.
    pub client_ca: Option<(PathBuf, ClientAuth)>,
    /// How long a client gets to complete the handshake.
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Options::default()
            .resolve_with(Options::default())
            .expect("defaults are valid")
    }
}

impl Options {
    /// Reads `--config` if given and merges it under the command line and environment.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            None => Options::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
        };
        self.resolve_with(file)
    }

    fn resolve_with(self, file: Options) -> anyhow::Result<Config> {
        let listen = self
            .memcache_listen
            .or(file.memcache_listen)
            .unwrap_or_else(|| "127.0.0.1:11211".into());
        let memcache_listen = if listen.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(
                listen
                    .parse()
                    .with_context(|| format!("--memcache-listen: bad address {listen:?}"))?,
            )
        };
        let resp = self
            .resp_listen
            .or(file.resp_listen)
            .unwrap_or_else(|| "127.0.0.1:6379".into());
        let resp_listen = if resp.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(
                resp.parse()
                    .with_context(|| format!("--resp-listen: bad address {resp:?}"))?,
            )
        };
        let memcache_tls_listen = listen_addr(
            "--memcache-tls-listen",
            self.memcache_tls_listen.or(file.memcache_tls_listen),
        )?;
        let resp_tls_listen = listen_addr(
            "--resp-tls-listen",
            self.resp_tls_listen.or(file.resp_tls_listen),
        )?;
        let http = self
            .http_listen
            .or(file.http_listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let http_listen = listen_addr("--http-listen", Some(http))?;
        let http_tls_listen = listen_addr(
            "--http-tls-listen",
            self.http_tls_listen.or(file.http_tls_listen),
        )?;
        let http_open_metrics = match self
            .http_open_metrics
            .or(file.http_open_metrics)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("yes") => true,
            Some("no") => false,
            Some(other) => bail!("--http-open-metrics must be yes or no, not {other:?}"),
        };
        let tls = tls_config(
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
            self.tls_ca.or(file.tls_ca),
            self.tls_client_auth.or(file.tls_client_auth),
            self.tls_handshake_timeout.or(file.tls_handshake_timeout),
        )?;
        if tls.is_none()
            && (memcache_tls_listen.is_some()
                || resp_tls_listen.is_some()
                || http_tls_listen.is_some())
        {
            bail!("a TLS listener needs --tls-cert and --tls-key");
        }
        let requirepass = match (
            self.requirepass.or(file.requirepass),
            self.requirepass_file.or(file.requirepass_file),
        ) {
            (Some(_), Some(_)) => bail!("give --requirepass or --requirepass-file, not both"),
            (Some(pass), None) => Some(pass).filter(|p| !p.is_empty()),
            (None, Some(path)) => Some(read_password(&path).context("--requirepass-file")?),
            (None, None) => None,
        };
        if requirepass
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PASSWORD_LEN)
        {
            bail!("--requirepass: longer than {MAX_PASSWORD_LEN} bytes");
        }
        let users = resolve_users(&self.user, &self.user_file, &file.users)?;
        let protected_mode = match self
            .protected_mode
            .or(file.protected_mode)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("yes") => true,
            Some("no") => false,
            Some(other) => bail!("--protected-mode must be yes or no, not {other:?}"),
        };
        if protected_mode && requirepass.is_none() && users.is_empty() {
            refuse_exposed(&[
                ("--memcache-listen", memcache_listen),
                ("--resp-listen", resp_listen),
                ("--memcache-tls-listen", memcache_tls_listen),
                ("--resp-tls-listen", resp_tls_listen),
                ("--http-listen", http_listen),
                ("--http-tls-listen", http_tls_listen),
            ])?;
        }
        let max_memory = parse_size(
            &self
                .max_memory
                .or(file.max_memory)
                .unwrap_or_else(|| "1g".into()),
        )
        .context("--max-memory")?;
        let max_item_size = parse_size(
            &self
                .max_item_size
                .or(file.max_item_size)
                .unwrap_or_else(|| "1m".into()),
        )
        .context("--max-item-size")?;
        if max_item_size == 0 || max_item_size > 1 << 30 {
            bail!("--max-item-size must be between 1 byte and 1g");
        }
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(1024);
        if max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        let idle = self.idle_timeout.or(file.idle_timeout).unwrap_or(0);
        let auth_idle = self
            .auth_idle_timeout
            .or(file.auth_idle_timeout)
            .unwrap_or(10);
        let write_timeout = self.write_timeout.or(file.write_timeout).unwrap_or(30);
        // A limit below one value would refuse reading back what was stored (or deliver no
        // message at all): the floor is the largest argument the RESP decoder accepts, plus
        // room for the reply's framing.
        let output_floor = max_item_size.max(64 * 1024) + 4096;
        let client_output_limit = parse_size(
            &self
                .client_output_limit
                .or(file.client_output_limit)
                .unwrap_or_else(|| "32m".into()),
        )
        .context("--client-output-limit")?
        .max(output_floor);
        let pubsub_output_limit = parse_size(
            &self
                .pubsub_output_limit
                .or(file.pubsub_output_limit)
                .unwrap_or_else(|| "32m".into()),
        )
        .context("--pubsub-output-limit")?
        .max(output_floor);
        let notify_keyspace_events = notify_flags(
            &self
                .notify_keyspace_events
                .or(file.notify_keyspace_events)
                .unwrap_or_default(),
        )?;
        let script_ms = self
            .script_time_limit
            .or(file.script_time_limit)
            .unwrap_or(5000);
        if script_ms == 0 {
            bail!("--script-time-limit must be at least 1 millisecond");
        }
        let threads = self
            .threads
            .or(file.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => bail!("--log-format must be text or json, not {other:?}"),
        };
        let sessions = session_settings(
            self.sessions.or(file.sessions),
            self.session_presets.or(file.session_presets),
            self.session_family,
            file.session_families,
            self.max_sessions_per_user.or(file.max_sessions_per_user),
            self.revocation_hold.or(file.revocation_hold),
        )?;
        Ok(Config {
            memcache_listen,
            resp_listen,
            memcache_tls_listen,
            resp_tls_listen,
            http_listen,
            http_tls_listen,
            http_open_metrics,
            tls,
            requirepass,
            users,
            protected_mode,
            max_memory,
            max_item_size: max_item_size as usize,
            max_connections,
            idle_timeout: (idle > 0).then(|| Duration::from_secs(idle)),
            auth_idle_timeout: (auth_idle > 0).then(|| Duration::from_secs(auth_idle)),
            write_timeout: (write_timeout > 0).then(|| Duration::from_secs(write_timeout)),
            client_output_limit: usize::try_from(client_output_limit).unwrap_or(usize::MAX),
            pubsub_output_limit: usize::try_from(pubsub_output_limit).unwrap_or(usize::MAX),
            notify_keyspace_events,
            script_time_limit: Duration::from_millis(script_ms),
            busy_reply_threshold_ms: self
                .busy_reply_threshold
                .or(file.busy_reply_threshold)
                .unwrap_or(5000),
            threads,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./sessiond-data")),
            fsync: self
                .fsync
                .or(file.fsync)
                .unwrap_or_else(|| "everysec".into())
                .parse()
                .map_err(|e: String| anyhow::anyhow!(e))?,
            recover_truncate: self.recover_truncate || file.recover_truncate,
            journal_segment_size: parse_size(
                &self
                    .journal_segment_size
                    .or(file.journal_segment_size)
                    .unwrap_or_else(|| "64m".into()),
            )
            .context("--journal-segment-size")?
            .max(4096),
            journal_rewrite_min_size: parse_size(
                &self
                    .journal_rewrite_min_size
                    .or(file.journal_rewrite_min_size)
                    .unwrap_or_else(|| "64m".into()),
            )
            .context("--journal-rewrite-min-size")?,
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_json,
            sessions,
        })
    }
}

/// The session layer's settings from its options: `None` when it is off.
fn session_settings(
    enabled: Option<String>,
    presets: Option<String>,
    specs: Vec<String>,
    tables: Vec<Family>,
    max_per_user: Option<u32>,
    hold_seconds: Option<u64>,
) -> anyhow::Result<Option<SessionSettings>> {
    match enabled.as_deref().unwrap_or("on") {
        "on" => {}
        "off" => return Ok(None),
        other => bail!("--sessions must be on or off, not {other:?}"),
    }
    let known = Families::presets();
    let presets = presets.unwrap_or_else(|| "all".into());
    let mut families: Vec<Family> = match presets.as_str() {
        "all" => known.iter().cloned().collect(),
        "none" => Vec::new(),
        list => {
            let mut chosen = Vec::new();
            for name in list.split(',').map(str::trim) {
                let Some(family) = known.iter().find(|f| f.name == name) else {
                    let names: Vec<&str> = known.iter().map(|f| f.name.as_str()).collect();
                    bail!(
                        "--session-presets: no preset family {name:?} (there are {})",
                        names.join(", ")
                    );
                };
                chosen.push(family.clone());
            }
            chosen
        }
    };
    for spec in &specs {
        families.push(
            Family::parse_spec(spec)
                .map_err(|e| anyhow::anyhow!("--session-family {spec:?}: {e}"))?,
        );
    }
    families.extend(tables);
    if families.len() > u16::MAX as usize {
        bail!("at most {} session families", u16::MAX);
    }
    // Checks the set as a whole: names unique, prefixes not ambiguous.
    Families::new(families.clone()).map_err(|e| anyhow::anyhow!("session families: {e}"))?;
    let max_per_user = match max_per_user.unwrap_or(0) {
        0 => None,
        n => Some(n),
    };
    Ok(Some(SessionSettings {
        families,
        max_per_user,
        revocation_hold: hold_seconds.unwrap_or(86_400).saturating_mul(1000),
    }))
}

/// Protected mode: fails with what to do if any of `listeners` is beyond loopback. Called
/// only when no password is set.
fn refuse_exposed(listeners: &[(&str, Option<SocketAddr>)]) -> anyhow::Result<()> {
    for (option, addr) in listeners {
        if let Some(addr) = addr
            && !addr.ip().is_loopback()
        {
            bail!(
                "protected mode: {option} {addr} is not a loopback address and no password is \
                 set, so anyone who can reach it could read, change and delete every session. \
                 Set a password (--requirepass-file FILE, --requirepass, or --user \
                 NAME:ROLE:PASSWORD; clients then log in with AUTH on RESP, SASL or the \
                 auth `set` on memcached and HTTP Basic on the HTTP API), or listen on \
                 127.0.0.1 only, or, if a firewall already keeps strangers out, start with \
                 --protected-mode no"
            );
        }
    }
    Ok(())
}

/// Parses `--notify-keyspace-events` with the parser `CONFIG SET notify-keyspace-events`
/// uses, so both accept the same letters; an unknown one refuses to start, naming it.
fn notify_flags(text: &str) -> anyhow::Result<u32> {
    crate::exec::resp::pubsub::parse_flags(text.as_bytes()).with_context(|| {
        let bad = text
            .chars()
            .find(|c| {
                let mut buf = [0; 4];
                crate::exec::resp::pubsub::parse_flags(c.encode_utf8(&mut buf).as_bytes()).is_none()
            })
            .unwrap_or_default();
        format!(
            "--notify-keyspace-events {text:?}: invalid event class character {bad:?}; use \
             letters of 'Ag$lshzxeKEtmd' (for example KEA, or Ex for expiry events only)"
        )
    })
}

/// Reads a password from the first line of `path` (its line ending dropped), so that it
/// need not appear on the command line, where `ps` shows it.
fn read_password(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("the password file {} is empty", path.display());
    }
    Ok(line.to_string())
}

/// Parses `--user NAME:ROLE:PASSWORD`, `--user-file NAME:ROLE:FILE` and `[[users]]` into
/// users, checking names, roles and passwords and that no name is given twice.
fn resolve_users(
    specs: &[String],
    file_specs: &[String],
    entries: &[UserEntry],
) -> anyhow::Result<Vec<User>> {
    let mut users: Vec<User> = Vec::new();
    let split = |spec: &str, option: &str| -> anyhow::Result<(String, String, String)> {
        let mut parts = spec.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(role), Some(rest)) => {
                Ok((name.to_string(), role.to_string(), rest.to_string()))
            }
            _ => bail!("{option}: expected NAME:ROLE:…, got {:?}", redact(spec)),
        }
    };
    let mut all = Vec::new();
    for spec in specs {
        all.push(split(spec, "--user")?);
    }
    for spec in file_specs {
        let (name, role, path) = split(spec, "--user-file")?;
        let password = read_password(path.as_ref()).with_context(|| format!("user {name:?}"))?;
        all.push((name, role, password));
    }
    for entry in entries {
        let password = match (&entry.password, &entry.password_file) {
            (Some(pass), None) => pass.clone(),
            (None, Some(path)) => {
                read_password(path).with_context(|| format!("user {:?}", entry.name))?
            }
            _ => bail!(
                "[[users]] {:?}: give exactly one of password and password_file",
                entry.name
            ),
        };
        all.push((entry.name.clone(), entry.role.clone(), password));
    }
    for (name, role, password) in all {
        // RESP `AUTH` and memcached's text auth token separate the name by spaces; `:`
        // separates the parts of `--user`.
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == b':' || b == 0x7f) {
            bail!(
                "user name {name:?}: must be non-empty, without spaces, control characters or ':'"
            );
        }
        if name == "default" {
            bail!("user \"default\" is configured with --requirepass, not --user");
        }
        let role = match role.to_ascii_lowercase().as_str() {
            "app" => Role::App,
            "admin" => Role::Admin,
            other => bail!("user {name:?}: role must be app or admin, not {other:?}"),
        };
        if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
            bail!("user {name:?}: the password must be 1 to {MAX_PASSWORD_LEN} bytes");
        }
        if users.iter().any(|u| u.name == name) {
            bail!("user {name:?} is configured twice");
        }
        users.push(User {
            name,
            role,
            password,
        });
    }
    Ok(users)
}

/// A `--user` value fit for an error message: the password part replaced.
fn redact(spec: &str) -> String {
    match spec.splitn(3, ':').collect::<Vec<_>>()[..] {
        [name, role, _] => format!("{name}:{role}:…"),
        // Without three parts there is no telling which part is the password: show none.
        _ => "…".into(),
    }
}

/// A listener's address from its option: `None` when not given or `off`.
fn listen_addr(flag: &str, value: Option<String>) -> anyhow::Result<Option<SocketAddr>> {
    match value {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("off") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .with_context(|| format!("{flag}: bad address {v:?}")),
    }
}

/// Checks that the TLS options make sense together. The files themselves are read when the
/// server binds (and again on SIGHUP), so an unreadable or mismatched file is reported there.
fn tls_config(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    client_auth: Option<String>,
    handshake_timeout: Option<u64>,
) -> anyhow::Result<Option<TlsConfig>> {
    let client_auth = match client_auth.as_deref() {
        None => None,
        Some("required") => Some(ClientAuth::Required),
        Some("optional") => Some(ClientAuth::Optional),
        Some(other) => bail!("--tls-client-auth must be required or optional, not {other:?}"),
    };
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            if ca.is_some() || client_auth.is_some() {
                bail!("--tls-ca and --tls-client-auth need --tls-cert and --tls-key");
            }
            return Ok(None);
        }
        (Some(_), None) => bail!("--tls-cert needs --tls-key"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert"),
    };
    let client_ca = match (ca, client_auth) {
        (Some(ca), auth) => Some((ca, auth.unwrap_or(ClientAuth::Required))),
        (None, None) => None,
        (None, Some(_)) => bail!("--tls-client-auth needs --tls-ca to verify certificates with"),
    };
    let seconds = handshake_timeout.unwrap_or(10);
    if seconds == 0 {
        bail!("--tls-handshake-timeout must be at least 1 second");
    }
    Ok(Some(TlsConfig {
        cert,
        key,
        client_ca,
        handshake_timeout: Duration::from_secs(seconds),
    }))
}

/// Parses a size such as `1048576`, `512k`, `64m` or `4g` (binary units, case-insensitive).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => bail!("unknown size unit in {text:?}; use k, m, g or t"),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .with_context(|| format!("bad size {text:?}"))?;
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert!(parse_size("4x").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999t").is_err());
    }

    #[test]
    fn output_limits_hold_at_least_one_value() {
        let options = Options {
            client_output_limit: Some("1k".into()),
            pubsub_output_limit: Some("0".into()),
            max_item_size: Some("2m".into()),
            write_timeout: Some(0),
            ..Options::default()
        };
        let config = options.resolve_with(Options::default()).unwrap();
        assert_eq!(config.client_output_limit, (2 << 20) + 4096);
        assert_eq!(config.pubsub_output_limit, (2 << 20) + 4096);
        assert_eq!(config.write_timeout, None);
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let file: Options =
            toml::from_str("max_memory = \"2g\"\nmax_connections = 7\nmemcache_listen = \"off\"")
                .unwrap();
        let cli = Options {
            max_connections: Some(9),
            ..Options::default()
        };
        let config = cli.resolve_with(file).unwrap();
        assert_eq!(config.max_memory, 2 << 30);
        assert_eq!(config.max_connections, 9);
        assert_eq!(config.memcache_listen, None);
        assert_eq!(config.max_item_size, 1 << 20);
        assert_eq!(config.write_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.auth_idle_timeout, Some(Duration::from_secs(10)));
        assert_eq!(config.client_output_limit, 32 << 20);
        assert_eq!(config.pubsub_output_limit, 32 << 20);
        assert!(toml::from_str::<Options>("no_such_key = 1").is_err());
    }

    fn resolve(cli: Options, toml_text: &str) -> anyhow::Result<Config> {
        cli.resolve_with(toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn users_from_argv_files_and_toml() {
        let dir = std::env::temp_dir().join(format!("sessiond-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let cli = Options {
            user: vec!["web:app:pa:ss".into()],
            user_file: vec![format!("ops:ADMIN:{}", file.display())],
            requirepass_file: Some(file.clone()),
            ..Options::default()
        };
        let config = resolve(
            cli,
            "[[users]]\nname = \"cron\"\nrole = \"app\"\npassword = \"c\"\n",
        )
        .unwrap();
        assert_eq!(config.requirepass.as_deref(), Some("from-file"));
        let users: Vec<_> = config
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.role, u.password.as_str()))
            .collect();
        assert_eq!(
            users,
            [
                ("web", Role::App, "pa:ss"),
                ("ops", Role::Admin, "from-file"),
                ("cron", Role::App, "c"),
            ]
        );
        // Debug never shows a password.
        assert!(!format!("{:?}", config.users).contains("pa:ss"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_users_are_refused_without_echoing_the_password() {
        for spec in [
            "web:app",
            "web:root:secret",
            ":app:secret",
            "we b:app:secret",
            "default:app:secret",
            "web:app:",
        ] {
            let cli = Options {
                user: vec![spec.into()],
                ..Options::default()
            };
            let error = format!("{:#}", resolve(cli, "").unwrap_err());
            assert!(!error.contains("secret"), "{spec}: {error}");
        }
        let twice = Options {
            user: vec!["a:app:x".into(), "a:admin:y".into()],
            ..Options::default()
        };
        assert!(resolve(twice, "").is_err());
        let both = Options {
            requirepass: Some("x".into()),
            requirepass_file: Some("/nonexistent".into()),
            ..Options::default()
        };
        assert!(resolve(both, "").is_err());
        let long = Options {
            requirepass: Some("x".repeat(MAX_PASSWORD_LEN + 1)),
            ..Options::default()
        };
        assert!(resolve(long, "").is_err());
        assert!(
            resolve(
                Options::default(),
                "[[users]]\nname = \"a\"\nrole = \"app\"\n"
            )
            .is_err()
        );
    }

    #[test]
    fn protected_mode() {
        let exposed = || Options {
            resp_listen: Some("0.0.0.0:6379".into()),
            ..Options::default()
        };
        let error = format!("{:#}", resolve(exposed(), "").unwrap_err());
        assert!(error.contains("protected mode"), "{error}");
        assert!(error.contains("--resp-listen 0.0.0.0:6379"), "{error}");
        assert!(error.contains("--protected-mode no"), "{error}");
        let opted_out = Options {
            protected_mode: Some("no".into()),
            ..exposed()
        };
        assert!(!resolve(opted_out, "").unwrap().protected_mode);
        let with_password = Options {
            requirepass: Some("pw".into()),
            ..exposed()
        };
        assert!(resolve(with_password, "").is_ok());
        let with_user = Options {
            user: vec!["web:app:pw".into()],
            ..exposed()
        };
        assert!(resolve(with_user, "").is_ok());
        assert!(resolve(exposed(), "protected_mode = \"no\"").is_ok());
        let loopback6 = Options {
            memcache_listen: Some("[::1]:0".into()),
            ..Options::default()
        };
        assert!(resolve(loopback6, "").is_ok());
        let bad = Options {
            protected_mode: Some("maybe".into()),
            ..Options::default()
        };
        assert!(resolve(bad, "").is_err());
    }

    #[test]
    fn http_listener_options() {
        let config = Config::default();
        assert_eq!(config.http_listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(config.http_tls_listen, None);
        assert!(config.http_open_metrics);
        let config = resolve(
            Options::default(),
            "http_listen = \"off\"\nhttp_open_metrics = \"no\"",
        )
        .unwrap();
        assert_eq!(config.http_listen, None);
        assert!(!config.http_open_metrics);
        let exposed = Options {
            http_listen: Some("0.0.0.0:8080".into()),
            ..Options::default()
        };
        let error = format!("{:#}", resolve(exposed, "").unwrap_err());
        assert!(error.contains("--http-listen 0.0.0.0:8080"), "{error}");
        let with_password = Options {
            http_listen: Some("0.0.0.0:0".into()),
            requirepass: Some("pw".into()),
            ..Options::default()
        };
        assert!(resolve(with_password, "").is_ok());
        let https_without_cert = Options {
            http_tls_listen: Some("127.0.0.1:0".into()),
            ..Options::default()
        };
        assert!(resolve(https_without_cert, "").is_err());
        let bad = Options {
            http_open_metrics: Some("maybe".into()),
            ..Options::default()
        };
        assert!(resolve(bad, "").is_err());
    }

    /// `--busy-reply-threshold`, its old name `--lua-time-limit` and the file's key.
    #[test]
    fn busy_reply_threshold_under_both_names() {
        assert_eq!(Config::default().busy_reply_threshold_ms, 5000);
        let cli = Options::try_parse_from(["sessiond", "--lua-time-limit", "10"]).unwrap();
        assert_eq!(resolve(cli, "").unwrap().busy_reply_threshold_ms, 10);
        let cli = Options::try_parse_from(["sessiond", "--busy-reply-threshold", "0"]).unwrap();
        assert_eq!(resolve(cli, "").unwrap().busy_reply_threshold_ms, 0);
        let config = resolve(Options::default(), "busy_reply_threshold = 250").unwrap();
        assert_eq!(config.busy_reply_threshold_ms, 250);
        assert!(Options::try_parse_from(["sessiond", "--busy-reply-threshold", "-1"]).is_err());
    }

    /// `--notify-keyspace-events` takes `CONFIG SET notify-keyspace-events`'s letters, from
    /// the command line or the file, and refuses an unknown one naming it.
    #[test]
    fn notify_keyspace_events() {
        use crate::exec::resp::pubsub::{ALL, EXPIRED, KEYEVENT, KEYSPACE, flags_text};
        assert_eq!(Config::default().notify_keyspace_events, 0);
        let cli = Options::try_parse_from(["sessiond", "--notify-keyspace-events", "KEA"]).unwrap();
        let config = resolve(cli, "notify_keyspace_events = \"Ex\"").unwrap();
        assert_eq!(config.notify_keyspace_events, KEYSPACE | KEYEVENT | ALL);
        assert_eq!(flags_text(config.notify_keyspace_events), "AKE");
        let config = resolve(Options::default(), "notify_keyspace_events = \"Ex\"").unwrap();
        assert_eq!(config.notify_keyspace_events, KEYEVENT | EXPIRED);
        let off = Options {
            notify_keyspace_events: Some(String::new()),
            ..Options::default()
        };
        assert_eq!(resolve(off, "").unwrap().notify_keyspace_events, 0);
        for (bad, letter) in [("KEQ", "'Q'"), ("Eé", "'é'"), ("K E", "' '")] {
            let cli = Options {
                notify_keyspace_events: Some(bad.into()),
                ..Options::default()
            };
            let error = format!("{:#}", resolve(cli, "").unwrap_err());
            assert!(
                error.contains("--notify-keyspace-events") && error.contains(letter),
                "{bad}: {error}"
            );
        }
        assert!(resolve(Options::default(), "notify_keyspace_events = \"x!\"").is_err());
    }

    #[test]
    fn tls_options_are_checked_together() {
        let config = Config::default();
        assert_eq!(config.memcache_tls_listen, None);
        assert_eq!(config.resp_tls_listen, None);
        assert_eq!(config.tls, None);

        let file: Options = toml::from_str(
            "resp_tls_listen = \"127.0.0.1:0\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n\
             tls_ca = \"ca.pem\"",
        )
        .unwrap();
        let config = Options::default().resolve_with(file).unwrap();
        assert_eq!(config.resp_tls_listen, Some("127.0.0.1:0".parse().unwrap()));
        let tls = config.tls.unwrap();
        assert_eq!(
            tls.client_ca,
            Some((PathBuf::from("ca.pem"), ClientAuth::Required)),
            "a CA without --tls-client-auth means certificates are required"
        );
        assert_eq!(tls.handshake_timeout, Duration::from_secs(10));

        let refused = |options: Options| {
            options
                .resolve_with(Options::default())
                .unwrap_err()
                .to_string()
        };
        let listener_only = Options {
            memcache_tls_listen: Some("127.0.0.1:0".into()),
            ..Options::default()
        };
        assert!(refused(listener_only).contains("--tls-cert"));
        let cert_only = Options {
            tls_cert: Some("c.pem".into()),
            ..Options::default()
        };
        assert!(refused(cert_only).contains("--tls-key"));
        let auth_without_ca = Options {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls_client_auth: Some("optional".into()),
            ..Options::default()
        };
        assert!(refused(auth_without_ca).contains("--tls-ca"));
        let bad_auth = Options {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls_ca: Some("ca.pem".into()),
            tls_client_auth: Some("sometimes".into()),
            ..Options::default()
        };
        assert!(refused(bad_auth).contains("required or optional"));
    }
}
