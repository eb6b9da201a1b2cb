//! Redis: a running Debian [`RedisServer`], the server a RESP test runs against
//! ([`RespServer`]: sessiond's RESP listener, or redis-server as the reference when
//! `SESSIOND_IT_TARGET=redis`), and [`RespClient`], a deliberately small, independent
//! RESP2/RESP3 client used to set up and inspect a server behind the back of the client
//! under test.
//!
//! The raw client keeps the exact reply bytes next to the decoded value, so a failure can
//! show what the server sent byte for byte (`$-1` and `_` are both "nil" to most clients, but
//! not to every client). It is hand-written rather than built on `sessiond-proto-resp` so that
//! a bug in sessiond's own codec cannot hide in the tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::connect_with_timeouts;
use crate::process::{require_program, start_on_free_port, tail_of_file, terminate};
use crate::scratch::TempDir;
use crate::sessiond::{Sessiond, Target};

/// The password the `requirepass` scenarios configure on both servers.
pub const PASSWORD: &str = "it-secret";

/// A running Debian `redis-server` (or the one `REDIS_SERVER` names), stopped by pid
/// (SIGTERM, then SIGKILL) on drop.
pub struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port with persistence off, a throwaway
    /// `--dir` and `extra_args`, and waits until it answers `PING`. Like memcached,
    /// redis-server cannot report a port it chose itself, so [`start_on_free_port`] picks one
    /// and retries with another if redis-server exits (port taken).
    pub fn start(extra_args: &[&str]) -> RedisServer {
        let bin = match std::env::var_os("REDIS_SERVER") {
            Some(path) => PathBuf::from(path),
            None => require_program("redis-server", "redis-server"),
        };
        let dir = TempDir::new("redis");
        let log = dir.path().join("redis.log");
        let command = |port: u16| {
            let mut cmd = Command::new(&bin);
            cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .args(["--daemonize", "no"])
                .args(extra_args);
            cmd
        };
        // Any well-formed reply to PING (PONG, or NOAUTH with a password) shows it is a
        // redis-server accepting commands.
        let ready = |addr| {
            let mut client = RespClient::try_connect(addr).ok()?;
            client.send(&[b"PING"]);
            let reply = client.try_read().ok()?;
            matches!(reply.value, Resp::Simple(_) | Resp::Error(_)).then(|| reply.to_string())
        };
        let (child, addr) = start_on_free_port("redis-server", &log, command, ready);
        RedisServer {
            child: Some(child),
            addr,
            log,
            _dir: dir,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>/`, for clients configured by URL.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// The tail of its log file, for failure messages.
    pub fn log_tail(&self) -> String {
        tail_of_file(&self.log, 2000)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// The server a RESP test runs against: sessiond (RESP listener on a free port, plus its
/// memcache listener), or redis-server when `SESSIOND_IT_TARGET=redis`.
pub enum RespServer {
    Sessiond(Sessiond),
    Redis(RedisServer),
}

impl RespServer {
    /// Starts the server selected by [`Target::from_env`] without a password.
    pub fn start() -> RespServer {
        RespServer::start_with(None)
    }

    /// Starts the selected server; with `Some(password)` every connection must `AUTH`
    /// (sessiond `--requirepass`, Redis `requirepass`).
    pub fn start_with(requirepass: Option<&str>) -> RespServer {
        match Target::from_env() {
            Target::Redis => {
                // `--hz 100` makes Redis's active expiry cycle run every 10 ms instead of
                // every 100 ms, so the reference meets the keyspace event bound (expired
                // events within 100 ms of the deadline) with a margin instead of by luck.
                let mut args = vec!["--hz", "100"];
                if let Some(pass) = requirepass {
                    args.extend(["--requirepass", pass]);
                }
                RespServer::Redis(RedisServer::start(&args))
            }
            Target::Sessiond | Target::Memcached => {
                let mut args = vec!["--resp-listen", "127.0.0.1:0"];
                if let Some(pass) = requirepass {
                    args.extend(["--requirepass", pass]);
                }
                let server = RespServer::Sessiond(Sessiond::start(&args));
                // Fail here, with the server's own output, if it has no RESP listener.
                server.addr();
                server
            }
        }
    }

    /// The RESP listener's address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            RespServer::Redis(r) => r.addr,
            RespServer::Sessiond(s) => s.listener("resp").unwrap_or_else(|| {
                panic!(
                    "sessiond was started with --resp-listen 127.0.0.1:0 but printed no \
                     `listening resp <addr>` line before `ready`\n{}",
                    s.log_tail()
                )
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RespServer::Sessiond(_) => "sessiond",
            RespServer::Redis(_) => "redis-server",
        }
    }

    /// Server-side diagnostics for a failure message (the tail of the server's log).
    pub fn diagnostics(&self) -> String {
        match self {
            RespServer::Sessiond(s) => format!("sessiond stderr tail:\n{}", s.log_tail()),
            RespServer::Redis(r) => format!("redis-server log tail:\n{}", r.log_tail()),
        }
    }

    /// A raw client on the RESP listener (RESP2, database 0), authenticated with `password`
    /// if one is given.
    pub fn client(&self, password: Option<&str>) -> RespClient {
        let mut client = RespClient::connect(self.addr());
        if let Some(pass) = password {
            client.ok(&["AUTH", pass]);
        }
        client
    }

    /// Prints which server a scenario runs against.
    pub fn header(&self, scenario: &str) {
        println!(
            "scenario {scenario}, server {} RESP at {}",
            self.name(),
            self.addr()
        );
    }
}

/// A decoded RESP2 or RESP3 reply. The three nulls are kept apart (`$-1`, `*-1`, `_`) because
/// a client may treat them differently.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// RESP2 `$-1`.
    NullBulk,
    /// RESP2 `*-1`.
    NullArray,
    /// RESP3 `_`.
    Null,
    Array(Vec<Resp>),
    /// RESP3 `%`.
    Map(Vec<(Resp, Resp)>),
    /// RESP3 `~`.
    Set(Vec<Resp>),
    /// RESP3 `>` (pub/sub messages and other out-of-band data).
    Push(Vec<Resp>),
    /// RESP3 `#`.
    Bool(bool),
    /// RESP3 `,` (kept as text).
    Double(String),
    /// RESP3 `(` (kept as text).
    BigNumber(String),
    /// RESP3 `=`: format and content.
    Verbatim(String, Vec<u8>),
}

impl Resp {
    /// Any of the three nulls.
    pub fn is_null(&self) -> bool {
        matches!(self, Resp::NullBulk | Resp::NullArray | Resp::Null)
    }

    /// A map reply by field name: a RESP3 map, or the flat `[name, value, …]` array RESP2
    /// turns it into. `None` for anything else (or a name that is not a string).
    pub fn fields(&self) -> Option<BTreeMap<String, Resp>> {
        let pairs: Vec<(&Resp, &Resp)> = match self {
            Resp::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
            Resp::Array(items) if items.len() % 2 == 0 => {
                items.chunks(2).map(|pair| (&pair[0], &pair[1])).collect()
            }
            _ => return None,
        };
        pairs
            .into_iter()
            .map(|(name, value)| match name {
                Resp::Bulk(b) => Some((String::from_utf8_lossy(b).into_owned(), value.clone())),
                Resp::Simple(s) => Some((s.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    /// A bulk or simple string as text; `None` for anything else.
    pub fn text(&self) -> Option<String> {
        match self {
            Resp::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Resp::Simple(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// One reply: the decoded value and the exact bytes it came in.
#[derive(Debug, Clone)]
pub struct Reply {
    pub value: Resp,
    pub raw: Vec<u8>,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", escape(&self.raw))
    }
}

/// `bytes` with `\r`, `\n` and non-printable bytes escaped, for failure messages.
pub fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A blocking RESP client: sends commands as RESP2 multibulk arrays and decodes RESP2 and
/// RESP3 replies. Any protocol surprise or I/O error panics with the offending bytes.
pub struct RespClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl RespClient {
    pub fn connect(addr: SocketAddr) -> RespClient {
        RespClient::try_connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<RespClient> {
        let stream = connect_with_timeouts(addr)?;
        Ok(RespClient {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Sets the read timeout for the following reads (subscribers wait for events).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Writes one command as a multibulk array.
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg);
            frame.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&frame)
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.addr));
    }

    /// Reads one reply, panicking on I/O errors (including the read timeout).
    pub fn read(&mut self) -> Reply {
        let addr = self.addr;
        self.try_read()
            .unwrap_or_else(|e| panic!("reading a reply from {addr}: {e}"))
    }

    /// Reads one reply; I/O errors (a timeout, a closed connection) come back as `Err`.
    pub fn try_read(&mut self) -> std::io::Result<Reply> {
        let mut raw = Vec::new();
        let value = self.value(&mut raw)?;
        Ok(Reply { value, raw })
    }

    /// Sends `args` and reads the reply.
    pub fn call(&mut self, args: &[&str]) -> Reply {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call_bytes(&bytes)
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read()
    }

    /// Sends `args` and asserts the reply is `+OK`.
    pub fn ok(&mut self, args: &[&str]) {
        let reply = self.call(args);
        assert!(
            reply.value == Resp::Simple("OK".into()),
            "{args:?}: expected +OK, got {reply}"
        );
    }

    /// `GET key`: `Some(value)` or `None` for any null; panics on anything else.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let reply = self.call(&["GET", key]);
        match reply.value {
            Resp::Bulk(v) => Some(v),
            v if v.is_null() => None,
            _ => panic!("GET {key}: unexpected reply {reply}"),
        }
    }

    /// `EXISTS key` as a bool; panics unless the reply is `:0` or `:1`.
    pub fn exists(&mut self, key: &str) -> bool {
        let reply = self.call(&["EXISTS", key]);
        match reply.value {
            Resp::Int(0) => false,
            Resp::Int(1) => true,
            _ => panic!("EXISTS {key}: unexpected reply {reply}"),
        }
    }

    /// Polls `EXISTS key` every 20 ms until it is 0; panics after `timeout`. Only EXISTS is
    /// used, which (unlike GET) does not count as the client reading the value.
    pub fn wait_gone(&mut self, key: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.exists(key) {
            assert!(
                Instant::now() < deadline,
                "{key} still exists {timeout:?} after it should have expired"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn line(&mut self, raw: &mut Vec<u8>) -> std::io::Result<String> {
        let start = raw.len();
        let n = self.reader.read_until(b'\n', raw)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("connection closed; bytes so far: {}", escape(raw)),
            ));
        }
        let line = &raw[start..];
        if !line.ends_with(b"\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line not terminated by \\r\\n: {}", escape(raw)),
            ));
        }
        Ok(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned())
    }

    fn value(&mut self, raw: &mut Vec<u8>) -> std::io::Result<Resp> {
        let line = self.line(raw)?;
        let bad = |raw: &[u8]| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("malformed RESP: {}", escape(raw)),
            )
        };
        let (kind, rest) = line.split_at(line.len().min(1));
        let int = |raw: &[u8]| rest.parse::<i64>().map_err(|_| bad(raw));
        Ok(match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(int(raw)?),
            "_" if rest.is_empty() => Resp::Null,
            "#" => match rest {
                "t" => Resp::Bool(true),
                "f" => Resp::Bool(false),
                _ => return Err(bad(raw)),
            },
            "," => Resp::Double(rest.to_string()),
            "(" => Resp::BigNumber(rest.to_string()),
            "$" | "=" | "!" => {
                let len = int(raw)?;
                if len == -1 && kind == "$" {
                    return Ok(Resp::NullBulk);
                }
                let len = usize::try_from(len).map_err(|_| bad(raw))?;
                let start = raw.len();
                raw.resize(start + len + 2, 0);
                std::io::Read::read_exact(&mut self.reader, &mut raw[start..])?;
                if &raw[start + len..] != b"\r\n" {
                    return Err(bad(raw));
                }
                let data = raw[start..start + len].to_vec();
                match kind {
                    "$" => Resp::Bulk(data),
                    "!" => Resp::Error(String::from_utf8_lossy(&data).into_owned()),
                    _ if data.len() >= 4 && data[3] == b':' => Resp::Verbatim(
                        String::from_utf8_lossy(&data[..3]).into_owned(),
                        data[4..].to_vec(),
                    ),
                    _ => return Err(bad(raw)),
                }
            }
            "*" | "~" | ">" => {
                let len = int(raw)?;
                if len == -1 && kind == "*" {
                    return Ok(Resp::NullArray);
                }
                let len = usize::try_from(len).map_err(|_| bad(raw))?;
                let mut items = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    items.push(self.value(raw)?);
                }
                match kind {
                    "*" => Resp::Array(items),
                    "~" => Resp::Set(items),
                    _ => Resp::Push(items),
                }
            }
            "%" => {
                let len = usize::try_from(int(raw)?).map_err(|_| bad(raw))?;
                let mut pairs = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    let k = self.value(raw)?;
                    let v = self.value(raw)?;
                    pairs.push((k, v));
                }
                Resp::Map(pairs)
            }
            _ => return Err(bad(raw)),
        })
    }
}
