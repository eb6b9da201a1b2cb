//! The binary request decoder: validates a header against its opcode's rules, waits for the
//! body, and turns the packet into a [`BinaryRequest`].
//!
//! Every rule that can be checked from the 24-byte header is checked before the body is
//! buffered, so the decoder only ever waits for bodies within the [`Limits`]; a rejected or
//! unknown request's body is skipped as it streams past rather than buffered. The only state
//! is the count of body bytes still to skip.

use bytes::{Buf, Bytes, BytesMut};

use super::{
    BinaryError, BinaryRequest, HEADER_LEN, MAX_SASL_DATA_LEN, MAX_SASL_MECH_LEN, REQUEST_MAGIC,
    opcode as op, status,
};
use crate::{ArithMode, Command, Limits, StatsGroup, StoreMode, valid_key};

/// Decodes binary requests from the front of a connection's input buffer.
#[derive(Debug, Clone)]
pub struct BinaryDecoder {
    limits: Limits,
    /// Body bytes of a rejected or unknown request still to be discarded.
    swallow: usize,
}

/// The parsed fixed header of a request.
#[derive(Debug, Clone, Copy)]
struct Header {
    opcode: u8,
    key_len: usize,
    extras_len: usize,
    body_len: usize,
    opaque: u32,
    cas: u64,
}

impl Header {
    fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            opcode: b[1],
            key_len: usize::from(u16::from_be_bytes([b[2], b[3]])),
            extras_len: usize::from(b[4]),
            body_len: u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize,
            opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
        }
    }

    fn value_len(&self) -> usize {
        self.body_len - self.key_len - self.extras_len
    }
}

/// What an opcode is, and so which header shape it requires.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Get { touch: bool },
    Store(StoreMode),
    Delete,
    Arith(ArithMode),
    Touch,
    Flush,
    Stat,
    Verbosity,
    Version,
    Noop,
    Quit,
    SaslList,
    SaslAuth { step: bool },
}

/// The kind of `opcode`, whether it is quiet, and whether it returns the key; `None` for
/// opcodes we answer with "unknown command".
fn classify(opcode: u8) -> Option<(Kind, bool, bool)> {
    use Kind::*;
    let get = Get { touch: false };
    let gat = Get { touch: true };
    Some(match opcode {
        op::GET => (get, false, false),
        op::GETQ => (get, true, false),
        op::GETK => (get, false, true),
        op::GETKQ => (get, true, true),
        op::GAT => (gat, false, false),
        op::GATQ => (gat, true, false),
        op::GATK => (gat, false, true),
        op::GATKQ => (gat, true, true),
        op::SET => (Store(StoreMode::Set), false, false),
        op::SETQ => (Store(StoreMode::Set), true, false),
        op::ADD => (Store(StoreMode::Add), false, false),
        op::ADDQ => (Store(StoreMode::Add), true, false),
        op::REPLACE => (Store(StoreMode::Replace), false, false),
        op::REPLACEQ => (Store(StoreMode::Replace), true, false),
        op::APPEND => (Store(StoreMode::Append), false, false),
        op::APPENDQ => (Store(StoreMode::Append), true, false),
        op::PREPEND => (Store(StoreMode::Prepend), false, false),
        op::PREPENDQ => (Store(StoreMode::Prepend), true, false),
        op::DELETE => (Delete, false, false),
        op::DELETEQ => (Delete, true, false),
        op::INCREMENT => (Arith(ArithMode::Incr), false, false),
        op::INCREMENTQ => (Arith(ArithMode::Incr), true, false),
        op::DECREMENT => (Arith(ArithMode::Decr), false, false),
        op::DECREMENTQ => (Arith(ArithMode::Decr), true, false),
        op::TOUCH => (Touch, false, false),
        op::FLUSH => (Flush, false, false),
        op::FLUSHQ => (Flush, true, false),
        op::STAT => (Stat, false, false),
        op::VERBOSITY => (Verbosity, false, false),
        op::VERSION => (Version, false, false),
        op::NOOP => (Noop, false, false),
        op::QUIT => (Quit, false, false),
        op::QUITQ => (Quit, true, false),
        op::SASL_LIST_MECHS => (SaslList, false, false),
        op::SASL_AUTH => (SaslAuth { step: false }, false, false),
        op::SASL_STEP => (SaslAuth { step: true }, false, false),
        _ => return None,
    })
}

/// Whether the header's lengths fit `kind`, following memcached's per-opcode checks, made
/// exact where memcached tolerates a body it then ignores.
fn shape_ok(kind: Kind, h: &Header) -> bool {
    let (extras, key, body) = (h.extras_len, h.key_len, h.body_len);
    match kind {
        Kind::Get { touch: false } | Kind::Delete => extras == 0 && key > 0 && body == key,
        Kind::Get { touch: true } | Kind::Touch => extras == 4 && key > 0 && body == key + 4,
        Kind::Store(StoreMode::Append | StoreMode::Prepend) => extras == 0 && key > 0,
        Kind::Store(_) => extras == 8 && key > 0,
        Kind::Arith(_) => extras == 20 && key > 0 && body == key + 20,
        Kind::Flush => key == 0 && (extras == 0 || extras == 4) && body == extras,
        Kind::Stat => extras == 0 && body == key,
        Kind::Verbosity => extras == 4 && key == 0 && body == 4,
        Kind::Version | Kind::Noop | Kind::Quit | Kind::SaslList => body == 0,
        // memcached: no extras and a mechanism name of at most MAX_SASL_MECH_LEN bytes.
        Kind::SaslAuth { .. } => extras == 0 && key > 0 && key <= MAX_SASL_MECH_LEN,
    }
}

impl BinaryDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> BinaryDecoder {
        BinaryDecoder { limits, swallow: 0 }
    }

    /// Decodes one request from the front of `buf`, consuming exactly its bytes.
    ///
    /// Returns `Ok(None)` until a whole packet has arrived. An unknown opcode is returned as
    /// [`Command::Unknown`] as soon as its header is in; its body is skipped on this and later
    /// calls. After [`BinaryError::Status`] decoding continues; after [`BinaryError::Fatal`]
    /// it must not.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BinaryRequest>, BinaryError> {
        if !self.discard(buf) {
            return Ok(None);
        }
        let Some(raw) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        if raw[0] != REQUEST_MAGIC {
            return Err(BinaryError::Fatal("bad magic byte"));
        }
        let h = Header::parse(raw);
        if h.key_len + h.extras_len > h.body_len {
            return Err(BinaryError::Fatal("key and extras longer than the body"));
        }
        let Some((kind, quiet, return_key)) = classify(h.opcode) else {
            self.skip_packet(&h, buf);
            let command = Command::Unknown;
            let (opcode, opaque) = (h.opcode, h.opaque);
            return Ok(Some(BinaryRequest {
                opcode,
                opaque,
                command,
                quiet: false,
                return_key: false,
            }));
        };
        if !shape_ok(kind, &h) || h.key_len > self.limits.max_key_len {
            return Err(self.reject(&h, buf, status::INVALID_ARGUMENTS));
        }
        if matches!(kind, Kind::Store(StoreMode::Set)) && h.value_len() > self.limits.max_value_len
        {
            // memcached drops the old value of a SET it refuses as too large, so the glue
            // needs the key: wait for it (not for the value), then skip the rest.
            let key_end = HEADER_LEN + h.extras_len + h.key_len;
            if buf.len() < key_end {
                return Ok(None);
            }
            let key = Bytes::copy_from_slice(&buf[HEADER_LEN + h.extras_len..key_end]);
            if !valid_key(&key, &self.limits) {
                return Err(self.reject(&h, buf, status::INVALID_ARGUMENTS));
            }
            self.skip_packet(&h, buf);
            return Ok(Some(BinaryRequest {
                opcode: h.opcode,
                opaque: h.opaque,
                command: Command::TooLarge { key },
                quiet,
                return_key: false,
            }));
        }
        if matches!(kind, Kind::Store(_)) && h.value_len() > self.limits.max_value_len {
            return Err(self.reject(&h, buf, status::TOO_LARGE));
        }
        if matches!(kind, Kind::SaslAuth { .. }) && h.value_len() > MAX_SASL_DATA_LEN {
            return Err(self.reject(&h, buf, status::TOO_LARGE));
        }
        if buf.len() < HEADER_LEN + h.body_len {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let body = buf.split_to(h.body_len).freeze();
        let extras = &body[..h.extras_len];
        let key = body.slice(h.extras_len..h.extras_len + h.key_len);
        let value = body.slice(h.extras_len + h.key_len..);
        if !matches!(kind, Kind::Stat) && h.key_len > 0 && !valid_key(&key, &self.limits) {
            return Err(status_error(&h, status::INVALID_ARGUMENTS));
        }
        let command = match kind {
            Kind::Get { touch } => {
                let touch = touch.then(|| i64::from(be_u32(extras, 0)));
                Command::Get {
                    keys: vec![key],
                    touch,
                }
            }
            Kind::Store(mode) => {
                // APPEND/PREPEND carry no extras; their flags and exptime are unused.
                let (flags, exptime) = if extras.is_empty() {
                    (0, 0)
                } else {
                    (be_u32(extras, 0), i64::from(be_u32(extras, 4)))
                };
                Command::Store {
                    mode,
                    key,
                    flags,
                    exptime,
                    value,
                    cas: h.cas,
                }
            }
            Kind::Delete => Command::Delete { key, cas: h.cas },
            Kind::Arith(mode) => {
                let delta = be_u64(extras, 0);
                let initial = be_u64(extras, 8);
                // memcached's convention: an exptime of all ones means "do not create".
                let initial = match be_u32(extras, 16) {
                    u32::MAX => None,
                    exptime => Some((initial, i64::from(exptime))),
                };
                Command::Arith {
                    mode,
                    key,
                    delta,
                    initial,
                }
            }
            Kind::Touch => Command::Touch {
                key,
                exptime: i64::from(be_u32(extras, 0)),
            },
            Kind::Flush => Command::FlushAll {
                delay: if extras.is_empty() {
                    0
                } else {
                    i64::from(be_u32(extras, 0))
                },
            },
            Kind::Stat => Command::Stats(StatsGroup::named(key)),
            Kind::Verbosity => Command::Verbosity,
            Kind::Version => Command::Version,
            Kind::Noop => Command::Noop,
            Kind::Quit => Command::Quit,
            Kind::SaslList => Command::SaslListMechs,
            Kind::SaslAuth { step } => Command::SaslAuth {
                mechanism: key,
                data: value,
                step,
            },
        };
        Ok(Some(BinaryRequest {
            opcode: h.opcode,
            opaque: h.opaque,
            command,
            quiet,
            return_key,
        }))
    }

    /// Drops skipped body bytes from `buf`; true once nothing is left to skip.
    fn discard(&mut self, buf: &mut BytesMut) -> bool {
        let n = self.swallow.min(buf.len());
        buf.advance(n);
        self.swallow -= n;
        self.swallow == 0
    }

    /// Consumes the header and arranges for the body to be skipped.
    fn skip_packet(&mut self, h: &Header, buf: &mut BytesMut) {
        buf.advance(HEADER_LEN);
        self.swallow = h.body_len;
        self.discard(buf);
    }

    fn reject(&mut self, h: &Header, buf: &mut BytesMut, status: u16) -> BinaryError {
        self.skip_packet(h, buf);
        status_error(h, status)
    }
}

fn status_error(h: &Header, status: u16) -> BinaryError {
    BinaryError::Status {
        opcode: h.opcode,
        opaque: h.opaque,
        status,
    }
}

/// A big-endian u32 at `at`; callers have checked the extras length, and a short slice reads
/// as zeros rather than panicking.
fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = b.get(at..at + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

/// A big-endian u64 at `at`; see [`be_u32`].
fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(src) = b.get(at..at + 8) {
        word.copy_from_slice(src);
    }
    u64::from_be_bytes(word)
}
