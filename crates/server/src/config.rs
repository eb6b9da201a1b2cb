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

    /// Password RESP clients must give with `AUTH` (or `HELLO … AUTH default <pass>`) before
    /// any other command; unset, no authentication is required. Does not apply to the
    /// memcached listener. [default: none]
    #[arg(long, env = "SESSIOND_REQUIREPASS", value_name = "PASSWORD")]
    pub requirepass: Option<String>,

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

    /// Milliseconds a Lua script may run before it is aborted with `BUSY` (wherever it is,
    /// pattern matching included); other commands wait for a running script at most this
    /// long. [default: 5000]
    #[arg(long, env = "SESSIOND_SCRIPT_TIME_LIMIT", value_name = "MILLISECONDS")]
    pub script_time_limit: Option<u64>,

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

/// The finished configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The memcached listener's address; `None` when disabled.
    pub memcache_listen: Option<SocketAddr>,
    /// The RESP listener's address; `None` when disabled.
    pub resp_listen: Option<SocketAddr>,
    /// The password RESP clients must `AUTH` with, if any.
    pub requirepass: Option<String>,
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
    /// How long a script may run.
    pub script_time_limit: Duration,
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
        let requirepass = self
            .requirepass
            .or(file.requirepass)
            .filter(|p| !p.is_empty());
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
        Ok(Config {
            memcache_listen,
            resp_listen,
            requirepass,
            max_memory,
            max_item_size: max_item_size as usize,
            max_connections,
            idle_timeout: (idle > 0).then(|| Duration::from_secs(idle)),
            auth_idle_timeout: (auth_idle > 0).then(|| Duration::from_secs(auth_idle)),
            write_timeout: (write_timeout > 0).then(|| Duration::from_secs(write_timeout)),
            client_output_limit: usize::try_from(client_output_limit).unwrap_or(usize::MAX),
            pubsub_output_limit: usize::try_from(pubsub_output_limit).unwrap_or(usize::MAX),
            script_time_limit: Duration::from_millis(script_ms),
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
        })
    }
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
}
