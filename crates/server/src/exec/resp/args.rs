//! A cursor over a command's arguments, so handlers read them in order and let `?` turn a
//! missing or malformed argument into Redis's error reply.
//!
//! A handler receives [`Args`] positioned after the command name. Each reader consumes one
//! argument: [`Args::bytes`] (any), [`Args::int`] and [`Args::float`] (with Redis's parsing
//! and error texts), [`Args::keyword`] (consumes a matching option word), [`Args::word`] (a
//! subcommand, lower-cased, to `match` on) and [`Args::time_unit`] (the expiry options `EX`,
//! `PX`, `EXAT`, `PXAT`); [`deadline`] turns an expiry argument into an absolute deadline.
//! A missing argument is `-ERR syntax error`: arity is checked before a handler runs, so only
//! an option without its value can be missing.

use bytes::Bytes;
use sessiond_proto_resp::Reply;

use super::{error, is, not_integer, parse_float, parse_int, syntax_error};

/// What a handler returns: its answer, or an error reply (`?` on any reader).
pub type Handled = Result<super::Answer, Reply>;

/// The arguments of one command, read front to back.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    all: &'a [Bytes],
    at: usize,
}

impl<'a> Args<'a> {
    /// The arguments of `all` (the command name first), positioned after the name.
    pub fn new(all: &'a [Bytes]) -> Args<'a> {
        Args {
            all,
            at: 1.min(all.len()),
        }
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.all.len() - self.at
    }

    /// Whether every argument has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument, without consuming it.
    pub fn peek(&self) -> Option<&'a Bytes> {
        self.all.get(self.at)
    }

    /// The next argument; `-ERR syntax error` if there is none.
    pub fn bytes(&mut self) -> Result<&'a Bytes, Reply> {
        self.next().ok_or_else(syntax_error)
    }

    /// The next argument as a Redis integer (`string2ll`).
    pub fn int(&mut self) -> Result<i64, Reply> {
        parse_int(self.bytes()?).ok_or_else(not_integer)
    }

    /// The next argument as a Redis float (`inf` allowed, NaN refused).
    pub fn float(&mut self) -> Result<f64, Reply> {
        parse_float(self.bytes()?).ok_or_else(|| error("ERR value is not a valid float"))
    }

    /// Consumes the next argument if it is the keyword `word` (lower-case), ignoring case.
    pub fn keyword(&mut self, word: &str) -> bool {
        let matched = self.peek().is_some_and(|arg| is(arg, word));
        if matched {
            self.at += 1;
        }
        matched
    }

    /// The next argument lower-cased, for a `match` over subcommands or options; `-ERR syntax
    /// error` if there is none. (Arguments that are not UTF-8 match no keyword.)
    pub fn word(&mut self) -> Result<String, Reply> {
        Ok(String::from_utf8_lossy(self.bytes()?).to_ascii_lowercase())
    }

    /// Consumes an expiry option (`EX`, `PX`, `EXAT`, `PXAT`) if the next argument is one.
    pub fn time_unit(&mut self) -> Option<TimeArg> {
        let unit = TimeArg::from_keyword(self.peek()?)?;
        self.at += 1;
        Some(unit)
    }

    /// Every argument not read yet, consumed.
    pub fn rest(&mut self) -> &'a [Bytes] {
        let rest = &self.all[self.at..];
        self.at = self.all.len();
        rest
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a Bytes;

    fn next(&mut self) -> Option<&'a Bytes> {
        let arg = self.all.get(self.at)?;
        self.at += 1;
        Some(arg)
    }
}

/// The unit of an expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Relative seconds (`EX`, `EXPIRE`).
    Seconds,
    /// Relative milliseconds (`PX`, `PEXPIRE`).
    Millis,
    /// Absolute Unix seconds (`EXAT`, `EXPIREAT`).
    UnixSeconds,
    /// Absolute Unix milliseconds (`PXAT`, `PEXPIREAT`).
    UnixMillis,
}

impl TimeArg {
    /// The unit an option keyword names, if it is one.
    fn from_keyword(arg: &[u8]) -> Option<TimeArg> {
        [
            ("ex", TimeArg::Seconds),
            ("px", TimeArg::Millis),
            ("exat", TimeArg::UnixSeconds),
            ("pxat", TimeArg::UnixMillis),
        ]
        .into_iter()
        .find_map(|(word, unit)| is(arg, word).then_some(unit))
    }
}

/// Resolves an expiry argument to an absolute deadline (Unix ms). `strict` (the `SET`
/// family and `GETEX`) refuses a value that is not positive, as Redis does there; `EXPIRE`
/// and friends accept any value (a past deadline deletes the key). Overflow is refused
/// with the command's `invalid expire time` error either way.
pub fn deadline(
    arg: &[u8],
    unit: TimeArg,
    now: u64,
    command: &str,
    strict: bool,
) -> Result<u64, Reply> {
    let n = parse_int(arg).ok_or_else(not_integer)?;
    let invalid = || error(format!("ERR invalid expire time in '{command}' command"));
    if strict && n <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        TimeArg::Seconds | TimeArg::UnixSeconds => n.checked_mul(1000).ok_or_else(invalid)?,
        TimeArg::Millis | TimeArg::UnixMillis => n,
    };
    let at = match unit {
        TimeArg::Seconds | TimeArg::Millis => (now as i64).checked_add(ms).ok_or_else(invalid)?,
        TimeArg::UnixSeconds | TimeArg::UnixMillis => ms,
    };
    // A deadline at or before the epoch is simply "already passed".
    Ok(at.max(1) as u64)
}
