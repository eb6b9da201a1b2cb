//! memcached: a running Debian [`Memcached`], the reference the memcached-protocol scenarios
//! are validated against and the servers of the session middleware's ketama ring, and
//! [`McClient`], a minimal raw text-protocol client for checking what a client under test
//! left behind on a server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};

use crate::connect_with_timeouts;
use crate::process::{is_root, require_program, start_on_free_port, terminate};
use crate::scratch::TempDir;

/// A running Debian `memcached`, stopped by pid (SIGTERM, then SIGKILL) on drop.
pub struct Memcached {
    child: Option<Child>,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Memcached {
    /// Starts `memcached -l 127.0.0.1 -p <free port> -U 0 -t 2` (and its default 64 MB of
    /// memory) and waits until it answers `version`. memcached cannot report a port it chose
    /// itself, so [`start_on_free_port`] picks one and retries with another if memcached exits
    /// (port taken in the meantime).
    pub fn start() -> Memcached {
        let bin = require_program("memcached", "memcached");
        let dir = TempDir::new("memcached");
        let log = dir.path().join("memcached.log");
        let command = |port: u16| {
            let mut cmd = Command::new(&bin);
            // memcached refuses to run as root without -u.
            if is_root() {
                cmd.args(["-u", "root"]);
            }
            cmd.args(["-l", "127.0.0.1", "-p", &port.to_string()])
                .args(["-U", "0", "-t", "2"]);
            cmd
        };
        // Connecting is the only readiness signal memcached offers; a `version` round trip
        // confirms the listener really is a memcached.
        let ready = |addr| {
            let answer = McClient::try_connect(addr).ok()?.command_line("version");
            answer.starts_with("VERSION ").then_some(answer)
        };
        let (child, addr) = start_on_free_port("memcached", &log, command, ready);
        Memcached {
            child: Some(child),
            addr,
            _dir: dir,
        }
    }

    /// Where it listens.
    pub fn memcache_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills it with SIGKILL now, as a crash would (to test failover), and reaps it. Does
    /// nothing if it is already stopped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// One item as returned by a text-protocol `get`/`gets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The client flags.
    pub flags: u32,
    /// The data block.
    pub value: Vec<u8>,
    /// The CAS unique (`gets` only).
    pub cas: Option<u64>,
}

/// A deliberately small memcached text-protocol client over a blocking `TcpStream`, used to
/// inspect the server independently of the client under test. Any protocol surprise panics
/// with the offending bytes.
pub struct McClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl McClient {
    /// Connects, or fails the test.
    pub fn connect(addr: SocketAddr) -> McClient {
        McClient::try_connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
    }

    /// Connects, with the raw clients' [`IO_TIMEOUT`](crate::IO_TIMEOUT) on connecting, reading and writing.
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<McClient> {
        let stream = connect_with_timeouts(addr)?;
        Ok(McClient {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Writes raw bytes (a command the typed methods do not cover).
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.addr));
    }

    /// Reads raw bytes up to and including the next `\n`; empty if the server closed the
    /// connection. For replies the caller checks itself (a meta command sessiond may not
    /// know).
    pub fn read_raw_line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        Ok(line)
    }

    /// Reads one `\r\n`-terminated line, without the terminator.
    fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .unwrap_or_else(|e| panic!("reading from {}: {e}", self.addr));
        assert!(
            line.ends_with(b"\r\n"),
            "{}: reply line not terminated by \\r\\n: {:?}",
            self.addr,
            String::from_utf8_lossy(&line)
        );
        line.truncate(line.len() - 2);
        String::from_utf8(line).unwrap_or_else(|e| panic!("non-UTF-8 reply line: {e}"))
    }

    /// Sends one command line and returns the one-line reply.
    pub fn command_line(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_line()
    }

    fn retrieve(&mut self, verb: &str, key: &str) -> Option<Item> {
        self.send(format!("{verb} {key}\r\n").as_bytes());
        let header = self.read_line();
        if header == "END" {
            return None;
        }
        let words: Vec<&str> = header.split(' ').collect();
        let (flags, len, cas) = match words.as_slice() {
            ["VALUE", k, flags, len] if *k == key => (*flags, *len, None),
            ["VALUE", k, flags, len, cas] if *k == key => (*flags, *len, Some(*cas)),
            _ => panic!("{verb} {key}: unexpected reply {header:?}"),
        };
        let len: usize = len.parse().expect("VALUE length");
        let mut value = vec![0; len + 2];
        self.reader
            .read_exact(&mut value)
            .unwrap_or_else(|e| panic!("{verb} {key}: reading {len}-byte value: {e}"));
        assert_eq!(
            &value[len..],
            b"\r\n",
            "{verb} {key}: data block not terminated"
        );
        value.truncate(len);
        let end = self.read_line();
        assert_eq!(end, "END", "{verb} {key}: expected END after the value");
        Some(Item {
            flags: flags.parse().expect("VALUE flags"),
            value,
            cas: cas.map(|c| c.parse().expect("VALUE cas")),
        })
    }

    /// `get key`: the item, or `None` on a miss.
    pub fn get(&mut self, key: &str) -> Option<Item> {
        self.retrieve("get", key)
    }

    /// `gets key`: the item with its CAS, or `None` on a miss.
    pub fn gets(&mut self, key: &str) -> Option<Item> {
        self.retrieve("gets", key)
    }

    /// The general-purpose `stats` group as a name → value map.
    pub fn stats(&mut self) -> BTreeMap<String, String> {
        self.send(b"stats\r\n");
        let mut stats = BTreeMap::new();
        loop {
            let line = self.read_line();
            if line == "END" {
                return stats;
            }
            let mut words = line.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("STAT"), Some(name), Some(value)) => {
                    stats.insert(name.to_string(), value.to_string());
                }
                _ => panic!("stats: unexpected line {line:?}"),
            }
        }
    }
}
