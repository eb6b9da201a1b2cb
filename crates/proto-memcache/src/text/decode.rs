//! The text request decoder: frames command lines and data blocks and turns them into
//! [`TextRequest`]s.
//!
//! It keeps just enough state to never rescan: how far the current (incomplete) line has been
//! searched for `\n`, a storage command whose line is parsed but whose data block has not fully
//! arrived, and how many bytes of a rejected data block remain to be discarded. It does not
//! reply, execute or buffer input itself: the caller owns the buffer and only ever appends to it
//! between calls.

use bytes::{Buf, Bytes, BytesMut};

use super::{TextError, TextRequest, cnum};
use crate::meta::MetaRequest;
use crate::{ArithMode, CAS_NEVER, Command, Limits, StatsGroup, StoreMode, valid_key};

mod meta;

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
    /// A get whose keys are still being served, a bounded batch at a time.
    stream: Option<GetStream>,
    /// The rest of the current line is to be dropped (a streamed get failed midway).
    discard_line: bool,
}

/// A multi-get served in batches: the keys of a line, however long, are decoded at most
/// [`Limits::max_keys`] at a time from at most [`Limits::max_line_len`] bytes of input, so
/// the decoder's memory stays bounded while the line's length is not (memcached serves such
/// lines whole; see [`TextRequest::more`]).
#[derive(Debug, Clone)]
struct GetStream {
    touch: Option<i64>,
    with_cas: bool,
    /// The part of the line read but not yet decoded (whole keys only).
    rest: Bytes,
    /// `rest` runs to the end of the line.
    rest_is_final: bool,
    /// A batch has been emitted, so a key-less end still needs its `END`.
    sent_any: bool,
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
    /// A meta set (`ms`), completed into [`Command::Meta`] with its data block.
    meta: Option<Box<MetaRequest>>,
}

impl TextDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> TextDecoder {
        TextDecoder {
            limits,
            swallow: 0,
            scanned: 0,
            pending: None,
            stream: None,
            discard_line: false,
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
        if self.discard_line && !self.drop_line(buf) {
            return Ok(None);
        }
        if self.stream.is_some() {
            return self.continue_get(buf);
        }
        let line = match self.take_line(buf) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(error) => {
                // A line too long to hold is served only if it is a multi-get, key batch by
                // key batch, as memcached serves (by buffering) nothing else that long.
                if self.start_long_get(buf) {
                    return self.continue_get(buf);
                }
                return Err(error);
            }
        };
        self.parse_line(&line, buf)
    }

    /// Drops input up to and including the next `\n`; true once it is gone.
    fn drop_line(&mut self, buf: &mut BytesMut) -> bool {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                buf.advance(i + 1);
                self.discard_line = false;
                self.scanned = 0;
                true
            }
            None => {
                buf.clear();
                false
            }
        }
    }

    /// If `buf` (a full window without a line end) starts with a get-family command and its
    /// arguments before the keys, consumes those and starts streaming its keys.
    fn start_long_get(&mut self, buf: &mut BytesMut) -> bool {
        let window = &buf[..buf.len().min(self.limits.max_line_len)];
        let mut at = 0;
        let mut token = || {
            while window.get(at) == Some(&b' ') {
                at += 1;
            }
            let start = at;
            while window.get(at).is_some_and(|&b| b != b' ') {
                at += 1;
            }
            // Only a token followed by a space is known to be whole.
            (window.get(at) == Some(&b' ')).then(|| &window[start..at])
        };
        let (touch, with_cas) = match token() {
            Some(b"get") => (None, false),
            Some(b"gets") => (None, true),
            Some(name @ (b"gat" | b"gats")) => {
                let with_cas = name == b"gats";
                match token().and_then(cnum::strtol32) {
                    Some(exptime) => (Some(i64::from(exptime)), with_cas),
                    None => return false,
                }
            }
            _ => return false,
        };
        buf.advance(at);
        self.scanned = 0;
        self.stream = Some(GetStream {
            touch,
            with_cas,
            rest: Bytes::new(),
            rest_is_final: false,
            sent_any: false,
        });
        true
    }

    /// Drops the rest of a streamed get whose last batch failed (the server could not build
    /// its reply): one error answers the whole request, and the rest of its line goes.
    pub fn abandon_get(&mut self) {
        if let Some(stream) = self.stream.take()
            && !stream.rest_is_final
        {
            self.discard_line = true;
        }
    }

    /// Ends a streamed get on a bad key, dropping the rest of its line: memcached refuses the
    /// whole request. Every key of a piece is checked when the piece is read, so a line that
    /// fits one window is refused before any of its keys is served.
    fn refuse_get(&mut self) -> Result<Option<TextRequest>, TextError> {
        if let Some(stream) = self.stream.take()
            && !stream.rest_is_final
        {
            self.discard_line = true;
        }
        Err(TextError::Client(BAD_FORMAT))
    }

    /// Emits the next batch of a streamed get's keys, reading the next piece of its line
    /// from `buf` when the last is used up.
    fn continue_get(&mut self, buf: &mut BytesMut) -> Result<Option<TextRequest>, TextError> {
        let max_line = self.limits.max_line_len;
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        while stream.rest.iter().all(|&b| b == b' ') && !stream.rest_is_final {
            let window = buf.len().min(max_line);
            let start = self.scanned.min(window);
            if let Some(i) = buf[start..window].iter().position(|&b| b == b'\n') {
                let end = start + i + 1;
                let mut piece = buf.split_to(end);
                piece.truncate(end - 1);
                if piece.last() == Some(&b'\r') {
                    piece.truncate(end - 2);
                }
                stream.rest = piece.freeze();
                stream.rest_is_final = true;
            } else if buf.len() >= max_line {
                // Cut after the last space: the keys before it are whole.
                let Some(cut) = buf[..window].iter().rposition(|&b| b == b' ') else {
                    self.stream = None;
                    self.discard_line = true;
                    self.scanned = 0;
                    return Err(TextError::Client(BAD_FORMAT));
                };
                stream.rest = buf.split_to(cut + 1).freeze();
            } else {
                self.scanned = window;
                return Ok(None);
            }
            self.scanned = 0;
            if !tokens(&stream.rest).all(|key| valid_key(key, &self.limits)) {
                return self.refuse_get();
            }
        }
        let mut keys = Vec::new();
        let mut used = 0;
        let rest = stream.rest.clone();
        for (key, end) in tokens_with_ends(&rest) {
            keys.push(rest.slice_ref(key));
            used = end;
            if keys.len() == self.limits.max_keys {
                break;
            }
        }
        stream.rest = rest.slice(used..);
        let more = !(stream.rest_is_final && stream.rest.iter().all(|&b| b == b' '));
        if keys.is_empty() && !stream.sent_any {
            // `get` with nothing after it, however many spaces.
            self.stream = None;
            return Err(TextError::UnknownCommand);
        }
        let (touch, with_cas) = (stream.touch, stream.with_cas);
        stream.sent_any = true;
        if !more {
            self.stream = None;
        }
        Ok(Some(TextRequest {
            command: Command::Get { keys, touch },
            noreply: false,
            with_cas,
            more,
        }))
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
        // Where the token after `name` ends: a get's keys start there.
        let end_of = |token: &[u8]| token.as_ptr() as usize - line.as_ptr() as usize + token.len();
        let command = match name {
            b"get" | b"gets" => {
                return self.get(line, end_of(name), None, name == b"gets");
            }
            b"gat" | b"gats" => {
                let Some(exptime) = tokens.next() else {
                    return Err(TextError::UnknownCommand);
                };
                let keys = end_of(exptime);
                let Some(exptime) = cnum::strtol32(exptime) else {
                    return Err(TextError::Client("invalid exptime argument"));
                };
                if tokens.next().is_none() {
                    // memcached answers a `gat <exptime>` naming no key with an empty reply.
                    return Ok(Some(TextRequest {
                        command: Command::Get {
                            keys: Vec::new(),
                            touch: Some(i64::from(exptime)),
                        },
                        noreply: false,
                        with_cas: name == b"gats",
                        more: false,
                    }));
                }
                return self.get(line, keys, Some(i64::from(exptime)), name == b"gats");
            }
            [b'm', verb] if *verb != b'n' => return self.meta(*verb, line, buf),
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
            more: false,
        }))
    }

    /// A get-family line whose keys start at `keys` in `line`: served through the same
    /// batching as a line too long to hold, so any number of keys is served.
    fn get(
        &mut self,
        line: &Bytes,
        keys: usize,
        touch: Option<i64>,
        with_cas: bool,
    ) -> Result<Option<TextRequest>, TextError> {
        let rest = line.slice(keys..);
        if !tokens(&rest).all(|key| valid_key(key, &self.limits)) {
            return Err(TextError::Client(BAD_FORMAT));
        }
        self.stream = Some(GetStream {
            touch,
            with_cas,
            rest,
            rest_is_final: true,
            sent_any: false,
        });
        self.continue_get(&mut BytesMut::new())
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
        let len = match cnum::strtol32(args[3]) {
            Some(len) if len >= 0 && len as u64 <= MAX_DATA_LEN => len as usize,
            _ => return Err(TextError::Client(BAD_FORMAT)),
        };
        let flags = cnum::strtoul32(args[1]);
        let exptime = cnum::strtol32(args[2]).map(i64::from);
        let cas = if with_cas {
            // 0 is compared like any other unique, and matches nothing.
            cnum::strtoull(args[4]).map(|cas| if cas == 0 { CAS_NEVER } else { cas })
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
            if mode == StoreMode::Set && !with_cas {
                // memcached drops the old value of a `set` it refuses as too large.
                self.swallow = len + 2;
                self.discard(buf);
                return Ok(Some(TextRequest {
                    command: Command::TooLarge {
                        key: line.slice_ref(args[0]),
                    },
                    noreply,
                    with_cas: false,
                    more: false,
                }));
            }
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
            meta: None,
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
            meta,
            ..
        } = pending;
        if let Some(mut meta) = meta {
            meta.value = value;
            return Ok(Some(TextRequest {
                command: Command::Meta(meta),
                noreply: false,
                with_cas: false,
                more: false,
            }));
        }
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
            more: false,
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
            more: false,
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
        let Some(delta) = cnum::strtoull(args[1]) else {
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
            more: false,
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
        let Some(exptime) = cnum::strtol32(args[1]).map(i64::from) else {
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
            more: false,
        }))
    }
}

/// The space-separated tokens of a line; runs of spaces separate like one, as in memcached.
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// The tokens of `line` with the offset just past each.
fn tokens_with_ends(line: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    let base = line.as_ptr() as usize;
    tokens(line).map(move |t| (t, t.as_ptr() as usize - base + t.len()))
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

/// `flush_all [delay] [noreply]`, read as memcached reads it: a last `noreply` silences
/// the reply, and unless the line is just `flush_all [noreply]` its first argument is the
/// delay (anything after it is ignored).
fn flush_all<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Result<Option<TextRequest>, TextError> {
    let mut args = tokens;
    let mut first = None;
    let mut last = None;
    let mut n = 0usize;
    for token in args.by_ref() {
        if n == 0 {
            first = Some(token);
        }
        last = Some(token);
        n += 1;
    }
    if n > 2 {
        return Err(TextError::UnknownCommand);
    }
    let noreply = last == Some(&b"noreply"[..]);
    let delay = if n == usize::from(noreply) {
        0
    } else {
        let first = first.unwrap_or_default();
        i64::from(cnum::strtol32(first).ok_or(TextError::Client("invalid exptime argument"))?)
    };
    Ok(Some(TextRequest {
        command: Command::FlushAll { delay },
        noreply,
        with_cas: false,
        more: false,
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
                more: false,
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
