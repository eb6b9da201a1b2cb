//! The meta command lines: `mg <key> <flags>*`, `ms <key> <datalen> <flags>*` (and its data
//! block), `md`, `ma`, `me <key> [b]`.
//!
//! The checks run in memcached 1.6's order with its error texts, since clients match on
//! them: too few tokens, the key's length, the number of flags, (ms) the data length, then
//! the flags themselves. A flag error found after `ms`'s data length is known swallows the
//! data block; one found before it cannot. memcached parses `mg`/`ms` errors precisely but
//! answers every flag error of `md`/`ma` with "invalid or duplicate flag".
//!
//! Bounds: at most [`MAX_TOKENS`] tokens on a meta line (memcached's limit), so a request
//! holds a fixed handful of small values; an opaque is at most [`MAX_OPAQUE`] bytes; keys
//! obey [`Limits::max_key_len`](crate::Limits::max_key_len) before base64 decoding.

use bytes::{Bytes, BytesMut};

use super::{BAD_FORMAT, MAX_DATA_LEN, PendingStore, TextDecoder, cnum, tokens};
use crate::meta::{MetaFlags, MetaRequest, MetaVerb, base64_decode};
use crate::text::{TextError, TextRequest};
use crate::{ArithMode, Command, StoreMode, valid_key};

/// memcached refuses a meta line of more than 19 tokens (its `MFLAG_MAX_OPT_LENGTH` of 20
/// counts a terminator).
const MAX_TOKENS: usize = 19;
/// The longest opaque token memcached echoes, its `O` included.
const MAX_OPAQUE: usize = 32;

impl TextDecoder {
    /// A meta command `m<verb>`; `line` is the whole line.
    pub(super) fn meta(
        &mut self,
        verb: u8,
        line: &Bytes,
        buf: &mut BytesMut,
    ) -> Result<Option<TextRequest>, TextError> {
        // One more than the most allowed, to tell "too many" from "just enough".
        let mut args: [&[u8]; MAX_TOKENS + 1] = [&[]; MAX_TOKENS + 1];
        let mut n = 0;
        for token in tokens(line) {
            if n == args.len() {
                break;
            }
            args[n] = token;
            n += 1;
        }
        let too_many = n > MAX_TOKENS;
        let args = &args[..n];
        let ok = |verb, key: Bytes, base64, flags| {
            Ok(Some(TextRequest {
                command: Command::Meta(Box::new(MetaRequest {
                    verb,
                    key,
                    base64,
                    value: Bytes::new(),
                    flags,
                })),
                noreply: false,
                with_cas: false,
                more: false,
            }))
        };
        if verb == b'e' {
            return self.meta_debug(line, args);
        }
        if !matches!(verb, b'g' | b's' | b'd' | b'a') {
            return Err(TextError::UnknownCommand);
        }
        if n < 2 {
            return Err(TextError::UnknownCommand);
        }
        if args[1].len() > self.limits.max_key_len {
            return Err(TextError::Client(BAD_FORMAT));
        }
        match verb {
            b'g' => {
                if too_many {
                    return Err(TextError::Client("options flags are too long"));
                }
                let (key, base64, flags) = self.meta_flags(line, args[1], &args[2..])?;
                check_opaque(&flags)?;
                ok(MetaVerb::Get, key, base64, flags)
            }
            b's' => {
                if n == 2 {
                    return Err(TextError::Client(BAD_FORMAT));
                }
                if too_many {
                    return Err(TextError::Client("options flags too long"));
                }
                let len = match cnum::strtol32(args[2]) {
                    Some(len) if len >= 0 && len as u64 <= MAX_DATA_LEN => len as usize,
                    _ => return Err(TextError::Client(BAD_FORMAT)),
                };
                let parsed =
                    self.meta_flags(line, args[1], &args[3..])
                        .and_then(|(key, base64, flags)| {
                            check_opaque(&flags)?;
                            let mode = match flags.mode {
                                0 => StoreMode::Set,
                                _ => set_mode(&flags)?,
                            };
                            Ok((key, base64, flags, mode))
                        });
                let (key, base64, flags, mode) = match parsed {
                    Ok(parsed) => parsed,
                    Err(error) => return self.reject_block(len, buf, error),
                };
                if len > self.limits.max_value_len {
                    // memcached drops the old value of any meta set it refuses as too large.
                    self.swallow = len + 2;
                    self.discard(buf);
                    return Ok(Some(TextRequest {
                        command: Command::TooLarge { key },
                        noreply: false,
                        with_cas: false,
                        more: false,
                    }));
                }
                let pending = PendingStore {
                    mode,
                    key: key.clone(),
                    flags: 0,
                    exptime: 0,
                    cas: 0,
                    noreply: false,
                    len,
                    meta: Some(Box::new(MetaRequest {
                        verb: MetaVerb::Set(mode),
                        key,
                        base64,
                        value: Bytes::new(),
                        flags,
                    })),
                };
                self.finish_store(pending, buf)
            }
            _ => {
                if too_many {
                    return Err(TextError::Client("options flags too long"));
                }
                let (key, base64, flags) = self
                    .meta_flags(line, args[1], &args[2..])
                    .map_err(|_| TextError::Client("invalid or duplicate flag"))?;
                check_opaque(&flags)?;
                if verb == b'd' {
                    return ok(MetaVerb::Delete, key, base64, flags);
                }
                let mode = match flags.mode {
                    0 => ArithMode::Incr,
                    _ => arith_mode(&flags)?,
                };
                ok(MetaVerb::Arith(mode), key, base64, flags)
            }
        }
    }

    /// `me <key> [b]`: memcached checks less here (any flag but a second-token `b` is
    /// ignored).
    fn meta_debug(&self, line: &Bytes, args: &[&[u8]]) -> Result<Option<TextRequest>, TextError> {
        if args.len() < 2 || args[1].len() > self.limits.max_key_len {
            return Err(TextError::Client(BAD_FORMAT));
        }
        let base64 = args.get(2) == Some(&&b"b"[..]);
        let key = self
            .meta_key(line, args[1], base64)
            .map_err(|_| TextError::Client(BAD_FORMAT))?;
        Ok(Some(TextRequest {
            command: Command::Meta(Box::new(MetaRequest {
                verb: MetaVerb::Debug,
                key,
                base64,
                value: Bytes::new(),
                flags: MetaFlags::default(),
            })),
            noreply: false,
            with_cas: false,
            more: false,
        }))
    }

    /// The key as the store sees it.
    fn meta_key(&self, line: &Bytes, token: &[u8], base64: bool) -> Result<Bytes, TextError> {
        if base64 {
            return base64_decode(token)
                .map(Bytes::from)
                .ok_or(TextError::Client("error decoding key"));
        }
        if !valid_key(token, &self.limits) {
            return Err(TextError::Client(BAD_FORMAT));
        }
        Ok(line.slice_ref(token))
    }

    /// Parses the flag tokens as memcached's preparse does: a repeated or unknown flag stops
    /// at once; a bad value is remembered and parsing goes on (the last such error wins).
    fn meta_flags(
        &self,
        line: &Bytes,
        key_token: &[u8],
        tokens: &[&[u8]],
    ) -> Result<(Bytes, bool, MetaFlags), TextError> {
        let mut flags = MetaFlags::default();
        let mut error = None;
        let mut base64 = false;
        let bad_token = TextError::Client("bad token in command line format");
        for token in tokens {
            let letter = token[0];
            if letter >= 127 || flags.order.contains(&letter) {
                return Err(TextError::Client("duplicate flag"));
            }
            flags.order.push(letter);
            let arg = &token[1..];
            match letter {
                b'b' => base64 = true,
                b'N' | b'T' | b'R' => match cnum::strtol32(arg) {
                    Some(ttl) => {
                        let ttl = Some(i64::from(ttl));
                        match letter {
                            b'N' => flags.vivify = ttl,
                            b'T' => flags.ttl = ttl,
                            _ => flags.recache = ttl,
                        }
                    }
                    None => error = Some(bad_token),
                },
                b'O' => flags.opaque = Some(line.slice_ref(token)),
                b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' | b'l' => {}
                b'v' => flags.value = true,
                b'u' => flags.no_bump = true,
                b'q' => flags.quiet = true,
                b'I' => flags.invalidate = true,
                b'F' => match cnum::strtoul32(arg) {
                    Some(f) => flags.client_flags = Some(f),
                    None => error = Some(TextError::Client(BAD_FORMAT)),
                },
                b'C' => match cnum::strtoull(arg) {
                    Some(cas) => flags.cas = Some(cas),
                    None => error = Some(bad_token),
                },
                // memcached takes any 64-bit value; below 2^63 here, so that a client's
                // version number can never push the store's own CAS counter (which a
                // restart sets above every stored CAS) to the point of wrapping.
                b'E' => match cnum::strtoull(arg) {
                    Some(cas) if cas < 1 << 63 => flags.new_cas = Some(cas),
                    _ => error = Some(bad_token),
                },
                b'M' => match token {
                    [_, mode] => flags.mode = *mode,
                    _ => error = Some(TextError::Client("incorrect length for M token")),
                },
                b'J' => match cnum::strtoull(arg) {
                    Some(v) => flags.initial = Some(v),
                    None => error = Some(TextError::Client("invalid numeric initial value")),
                },
                b'D' => match cnum::strtoull(arg) {
                    Some(v) => flags.delta = Some(v),
                    None => error = Some(TextError::Client("invalid numeric delta value")),
                },
                _ => return Err(TextError::Client("invalid flag")),
            }
        }
        // memcached decodes the key during the same pass; its error is one more remembered.
        let key = match self.meta_key(line, key_token, base64) {
            Ok(key) => key,
            Err(e) => return Err(error.unwrap_or(e)),
        };
        match error {
            Some(error) => Err(error),
            None => Ok((key, base64, flags)),
        }
    }
}

/// memcached checks the opaque's length after the flags, with its own error.
fn check_opaque(flags: &MetaFlags) -> Result<(), TextError> {
    match &flags.opaque {
        Some(opaque) if opaque.len() > MAX_OPAQUE => {
            Err(TextError::Client("opaque token too long"))
        }
        _ => Ok(()),
    }
}

/// `ms`'s `M` mode: `E` add, `A` append, `P` prepend, `R` replace, `S` set.
fn set_mode(flags: &MetaFlags) -> Result<StoreMode, TextError> {
    match flags.mode {
        b'E' => Ok(StoreMode::Add),
        b'A' => Ok(StoreMode::Append),
        b'P' => Ok(StoreMode::Prepend),
        b'R' => Ok(StoreMode::Replace),
        b'S' => Ok(StoreMode::Set),
        _ => Err(TextError::Client("invalid mode for ms M token")),
    }
}

/// `ma`'s `M` mode: `I`/`+` incr, `D`/`-` decr.
fn arith_mode(flags: &MetaFlags) -> Result<ArithMode, TextError> {
    match flags.mode {
        b'I' | b'+' => Ok(ArithMode::Incr),
        b'D' | b'-' => Ok(ArithMode::Decr),
        _ => Err(TextError::Client("invalid mode for ma M token")),
    }
}
