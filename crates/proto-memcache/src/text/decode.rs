//! The text request decoder: frames command lines and data blocks and turns them into
//! [`TextRequest`]s.
//!
//! It keeps just enough state to never rescan: how far the current (incomplete) line has been
//! searched for `\n`, a storage command whose line is parsed but whose data block has not fully
//! arrived, and how many bytes of a rejected data block remain to be discarded. It does not
//! reply, execute or buffer input itself: the caller owns the buffer and only ever appends to it
//! between calls.

use bytes::{Buf, Bytes, BytesMut};

use super::{TextError, TextRequest};
use crate::{ArithMode, Command, Limits, StatsGroup, StoreMode, valid_key};

/// memcached's generic complaint about an argument it could not parse.
const BAD_FORMAT: &str = "bad command line format";

/// The largest `<bytes>` memcached accepts on a storage line at all (`INT_MAX - 2`, so that the
/// length plus `\r\n` still fits an `int`). Anything larger cannot even be swallowed reliably
/// and is a plain client error; anything between this and the configured value limit is
/// swallowed and answered with "too large".
const MAX_DATA_LEN: u64 = i32::MAX as u64 - 2;

/// Decodes text requests from the front of a connection's input buffer.
#[derive(Debug, Clone)]
pub struct TextDecoder {
    limits: Limits,
    /// Bytes of a rejected data block (including its `\r\n`) still to be discarded.
    swallow: usize,
    /// Bytes at the front of the buffer already known to contain no `\n`.
    scanned: usize,
    /// A storage command whose line has been consumed, waiting for its data block.
    pending: Option<PendingStore>,
}

/// The parsed line of a storage command, kept while its data block arrives.
#[derive(Debug, Clone)]
struct PendingStore {
    mode: StoreMode,
    key: Bytes,
    flags: u32,
    exptime: i64,
    cas: u64,
    noreply: bool,
    len: usize,
}

impl TextDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> TextDecoder {
        TextDecoder {
            limits,
            swallow: 0,
            scanned: 0,
            pending: None,
        }
    }

    /// Decodes one request from the front of `buf`, consuming exactly its bytes.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete request yet; call again after appending
    /// more input (the decoder remembers its progress, so the caller must not remove or alter
    /// bytes it has not consumed). Keys and values are split off `buf` without copying.
    ///
    /// On an error other than [`TextError::Fatal`] the offending input has been consumed (or is
    /// being swallowed) and decoding can continue with the next call.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<TextRequest>, TextError> {
        if !self.discard(buf) {
            return Ok(None);
        }
        if let Some(pending) = self.pending.take() {
            return self.finish_store(pending, buf);
        }
        let Some(line) = self.take_line(buf)? else {
            return Ok(None);
        };
        self.parse_line(&line, buf)
    }

    /// Drops swallowed bytes from `buf`; true once nothing is left to swallow.
    fn discard(&mut self, buf: &mut BytesMut) -> bool {
        let n = self.swallow.min(buf.len());
        buf.advance(n);
        self.swallow -= n;
        self.swallow == 0
    }

    /// Rejects a storage command whose data block (`len` bytes plus `\r\n`) must be skipped.
    fn reject_block(
        &mut self,
        len: usize,
        buf: &mut BytesMut,
        err: TextError,
    ) -> Result<Option<TextRequest>, TextError> {
        self.swallow = len + 2;
        self.discard(buf);
        Err(err)
    }

    /// Splits the next line off `buf`, without its line ending.
    fn take_line(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, TextError> {
        let max = self.limits.max_line_len;
        // Never search past `max`: a line that long is an error however it ends, and bounding
        // the window bounds the work per call. `min` also keeps a buffer the caller shrank
        // against the contract from turning into a panic.
        let window = buf.len().min(max);
        let start = self.scanned.min(window);
        match buf[start..window].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = start + i + 1;
                self.scanned = 0;
                let mut line = buf.split_to(end);
                line.truncate(end - 1);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 2);
                }
                Ok(Some(line.freeze()))
            }
            None if buf.len() >= max => Err(TextError::Fatal("line too long")),
            None => {
                self.scanned = window;
                Ok(None)
            }
        }
    }

    fn parse_line(
        &mut self,
        line: &Bytes,
        buf: &mut BytesMut,
    ) -> Result<Option<TextRequest>, TextError> {
        let mut tokens = tokens(line);
        let Some(name) = tokens.next() else {
            return Err(TextError::UnknownCommand);
        };
        let command = match name {
            b"get" => return self.get(line, tokens, None, false),
            b"gets" => return self.get(line, tokens, None, true),
            b"gat" | b"gats" => {
                let Some(exptime) = tokens.next() else {
                    return Err(TextError::UnknownCommand);
                };
                let exptime = parse_i64(exptime);
                let Some(exptime) = exptime else {
                    // memcached checks the key count before the exptime.
                    return match tokens.next() {
                        None => Err(TextError::UnknownCommand),
                        Some(_) => Err(TextError::Client("invalid exptime argument")),
                    };
                };
                return self.get(line, tokens, Some(exptime), name == b"gats");
            }
            b"set" => return self.storage(line, tokens, StoreMode::Set, false, buf),
            b"add" => return self.storage(line, tokens, StoreMode::Add, false, buf),
            b"replace" => return self.storage(line, tokens, StoreMode::Replace, false, buf),
            b"append" => return self.storage(line, tokens, StoreMode::Append, false, buf),
            b"prepend" => return self.storage(line, tokens, StoreMode::Prepend, false, buf),
            b"cas" => return self.storage(line, tokens, StoreMode::Set, true, buf),
            b"delete" => return self.delete(line, tokens),
            b"incr" => return self.arith(line, tokens, ArithMode::Incr),
            b"decr" => return self.arith(line, tokens, ArithMode::Decr),
            b"touch" => return self.touch(line, tokens),
            b"flush_all" => return flush_all(tokens),
            b"verbosity" => return verbosity(tokens),
            b"stats" => Command::Stats(stats_group(line, tokens)),
            // memcached ignores anything after these.
            b"version" => Command::Version,
            b"quit" => Command::Quit,
            b"mn" => Command::Noop,
            b"journal" => match collect::<1>(tokens) {
                Some((args, 1)) if args[0] == b"rewrite" => Command::JournalRewrite,
                _ => return Err(TextError::Client("usage: journal rewrite")),
            },
            _ => return Err(TextError::UnknownCommand),
        };
        Ok(Some(TextRequest {
            command,
            noreply: false,
            with_cas: false,
        }))
    }

    fn get<'a>(
        &self,
        line: &Bytes,
        tokens: impl Iterator<Item = &'a [u8]>,
        touch: Option<i64>,
        with_cas: bool,
    ) -> Result<Option<TextRequest>, TextError> {
        let mut keys = Vec::new();
        for key in tokens {
            // Checked before pushing, so the vector never outgrows the limit.
            if keys.len() == self.limits.max_keys {
                return Err(TextError::Client("too many keys"));
            }
            if !valid_key(key, &self.limits) {
                return Err(TextError::Client(BAD_FORMAT));
            }
            keys.push(line.slice_ref(key));
        }
        if keys.is_empty() {
            return Err(TextError::UnknownCommand);
        }
        let command = Command::Get { keys, touch };
        Ok(Some(TextRequest {
            command,
            noreply: false,
            with_cas,
        }))
    }

    /// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]`.
    fn storage<'a>(
        &mut self,
        line: &Bytes,
        tokens: impl Iterator<Item = &'a [u8]>,
        mode: StoreMode,
        with_cas: bool,
        buf: &mut BytesMut,
    ) -> Result<Option<TextRequest>, TextError> {
        let most = if with_cas { 6 } else { 5 };
        let Some((args, n)) = collect::<6>(tokens) else {
            return Err(TextError::UnknownCommand);
        };
        if n < most - 1 || n > most {
            return Err(TextError::UnknownCommand);
        }
        // As in memcached, an extra last argument other than `noreply` is ignored.
        let noreply = n == most && args[most - 1] == b"noreply";
        // The length comes first: without it the data block cannot be found, so the error
        // cannot swallow it and the block will be read as (garbage) commands, as in memcached.
        let len = match parse_u64(args[3]) {
            Some(len) if len <= MAX_DATA_LEN => len as usize,
            _ => return Err(TextError::Client(BAD_FORMAT)),
        };
        let flags = parse_u32(args[1]);
        let exptime = parse_i64(args[2]);
        let cas = if with_cas {
            parse_u64(args[4])
        } else {
            Some(0)
        };
        let (Some(flags), Some(exptime), Some(cas)) = (flags, exptime, cas) else {
            return self.reject_block(len, buf, TextError::Client(BAD_FORMAT));
        };
        if !valid_key(args[0], &self.limits) {
            return self.reject_block(len, buf, TextError::Client(BAD_FORMAT));
        }
        if len > self.limits.max_value_len {
            return self.reject_block(len, buf, TextError::TooLarge);
        }
        let key = line.slice_ref(args[0]);
        let pending = PendingStore {
            mode,
            key,
            flags,
            exptime,
            cas,
            noreply,
            len,
        };
        self.finish_store(pending, buf)
    }

    /// Completes a storage command once its data block and `\r\n` are in `buf`.
    fn finish_store(
        &mut self,
        pending: PendingStore,
        buf: &mut BytesMut,
    ) -> Result<Option<TextRequest>, TextError> {
        if buf.len() < pending.len + 2 {
            self.pending = Some(pending);
            return Ok(None);
        }
        let value = buf.split_to(pending.len).freeze();
        let terminated = buf.starts_with(b"\r\n");
        buf.advance(2);
        if !terminated {
            return Err(TextError::Client("bad data chunk"));
        }
        let PendingStore {
            mode,
            key,
            flags,
            exptime,
            cas,
            noreply,
            ..
        } = pending;
        let command = Command::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas,
        };
        Ok(Some(TextRequest {
            command,
            noreply,
            with_cas: false,
        }))
    }

    /// `delete <key> [0] [noreply]`; the `0` is a relic of a removed hold time.
    fn delete<'a>(
        &self,
        line: &Bytes,
        tokens: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<TextRequest>, TextError> {
        let Some((args, n)) = collect::<3>(tokens) else {
            return Err(TextError::UnknownCommand);
        };
        let noreply = match (n, args) {
            (0, _) => return Err(TextError::UnknownCommand),
            (1, _) => false,
            (2, [_, b"0", _]) => false,
            (2, [_, b"noreply", _]) | (3, [_, b"0", b"noreply"]) => true,
            _ => {
                return Err(TextError::Client(
                    "bad command line format.  Usage: delete <key> [noreply]",
                ));
            }
        };
        if !valid_key(args[0], &self.limits) {
            return Err(TextError::Client(BAD_FORMAT));
        }
        let command = Command::Delete {
            key: line.slice_ref(args[0]),
            cas: 0,
        };
        Ok(Some(TextRequest {
            command,
            noreply,
            with_cas: false,
        }))
    }

    /// `incr|decr <key> <delta> [noreply]`.
    fn arith<'a>(
        &self,
        line: &Bytes,
        tokens: impl Iterator<Item = &'a [u8]>,
        mode: ArithMode,
    ) -> Result<Option<TextRequest>, TextError> {
        let (args, noreply) = key_and_arg(tokens)?;
        if !valid_key(args[0], &self.limits) {
            return Err(TextError::Client(BAD_FORMAT));
        }
        let Some(delta) = parse_u64(args[1]) else {
            return Err(TextError::Client("invalid numeric delta argument"));
        };
        let key = line.slice_ref(args[0]);
        let command = Command::Arith {
            mode,
            key,
            delta,
            initial: None,
        };
        Ok(Some(TextRequest {
            command,
            noreply,
            with_cas: false,
        }))
    }

    /// `touch <key> <exptime> [noreply]`.
    fn touch<'a>(
        &self,
        line: &Bytes,
        tokens: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<TextRequest>, TextError> {
        let (args, noreply) = key_and_arg(tokens)?;
        if !valid_key(args[0], &self.limits) {
            return Err(TextError::Client(BAD_FORMAT));
        }
        let Some(exptime) = parse_i64(args[1]) else {
            return Err(TextError::Client("invalid exptime argument"));
        };
        let command = Command::Touch {
            key: line.slice_ref(args[0]),
            exptime,
        };
        Ok(Some(TextRequest {
            command,
            noreply,
            with_cas: false,
        }))
    }
}

/// The space-separated tokens of a line; runs of spaces separate like one, as in memcached.
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// Up to `N` tokens, and how many there were; `None` if there are more than `N`.
fn collect<'a, const N: usize>(
    tokens: impl Iterator<Item = &'a [u8]>,
) -> Option<([&'a [u8]; N], usize)> {
    let mut args: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    for token in tokens {
        *args.get_mut(n)? = token;
        n += 1;
    }
    Some((args, n))
}

/// The `<key> <arg> [noreply]` shape shared by `incr`, `decr` and `touch`. As with storage
/// commands, a third argument other than `noreply` is ignored.
fn key_and_arg<'a>(
    tokens: impl Iterator<Item = &'a [u8]>,
) -> Result<([&'a [u8]; 3], bool), TextError> {
    match collect::<3>(tokens) {
        Some((args, 2)) => Ok((args, false)),
        Some((args, 3)) => Ok((args, args[2] == b"noreply")),
        _ => Err(TextError::UnknownCommand),
    }
}

/// `flush_all [delay] [noreply]`.
fn flush_all<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Result<Option<TextRequest>, TextError> {
    let Some((args, n)) = collect::<2>(tokens) else {
        return Err(TextError::UnknownCommand);
    };
    let noreply = n > 0 && args[n - 1] == b"noreply";
    let delay_args = if noreply { n - 1 } else { n };
    let delay = match delay_args {
        0 => 0,
        1 => parse_i64(args[0]).ok_or(TextError::Client(BAD_FORMAT))?,
        // `flush_all 1 2`: the second argument is neither `noreply` nor anything else.
        _ => return Err(TextError::Client(BAD_FORMAT)),
    };
    Ok(Some(TextRequest {
        command: Command::FlushAll { delay },
        noreply,
        with_cas: false,
    }))
}

/// `verbosity <level> [noreply]`. memcached 1.6 accepts exactly one or two arguments and reads
/// the level leniently (`verbosity noreply` is a silent level 0), so the level is not checked:
/// the server ignores it anyway.
fn verbosity<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Result<Option<TextRequest>, TextError> {
    match collect::<2>(tokens) {
        Some((args, n @ 1..=2)) => {
            let noreply = args[n - 1] == b"noreply";
            Ok(Some(TextRequest {
                command: Command::Verbosity,
                noreply,
                with_cas: false,
            }))
        }
        _ => Err(TextError::UnknownCommand),
    }
}

/// `stats [group …]`. Several arguments (`stats cachedump 1 10`) become one
/// [`StatsGroup::Other`] holding the argument text as sent. `stats noreply` is the group
/// "noreply": memcached does not honour `noreply` on `stats` and answers it with `ERROR`.
fn stats_group<'a>(line: &Bytes, mut tokens: impl Iterator<Item = &'a [u8]>) -> StatsGroup {
    let Some(first) = tokens.next() else {
        return StatsGroup::General;
    };
    let Some(last) = tokens.last() else {
        return StatsGroup::named(line.slice_ref(first));
    };
    // Both tokens are subslices of `line`, so their offsets delimit the argument text.
    let start = first.as_ptr() as usize - line.as_ptr() as usize;
    let end = last.as_ptr() as usize - line.as_ptr() as usize + last.len();
    StatsGroup::Other(line.slice(start..end))
}

/// An unsigned decimal with no sign, as memcached's `safe_strtoull` accepts for lengths, CAS
/// uniques and deltas.
pub(crate) fn parse_u64(token: &[u8]) -> Option<u64> {
    if token.is_empty() {
        return None;
    }
    token.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

pub(crate) fn parse_u32(token: &[u8]) -> Option<u32> {
    u32::try_from(parse_u64(token)?).ok()
}

/// A signed decimal (exptimes and flush delays may be negative).
pub(crate) fn parse_i64(token: &[u8]) -> Option<i64> {
    match token.strip_prefix(b"-") {
        Some(digits) => 0i64.checked_sub_unsigned(parse_u64(digits)?),
        None => i64::try_from(parse_u64(token)?).ok(),
    }
}
