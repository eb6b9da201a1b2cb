//! The client side of the binary protocol, for the load generator and the tests: requests to
//! packets, and response packets back to [`BinaryResponse`]s.
//!
//! It trusts the caller: the opcode is written as given and the extras follow the
//! [`Command`], so a mismatched pair produces a packet the server will reject. It does not
//! track opaques or pair responses with requests.

use bytes::{Buf, BytesMut};

use super::{BinaryRequest, BinaryResponse, HEADER_LEN, Packet, REQUEST_MAGIC, RESPONSE_MAGIC};
use crate::exptime::RELATIVE_EXPTIME_LIMIT;
use crate::{Command, StoreMode};

/// Appends the packet for `req`.
///
/// Binary exptimes are unsigned 32-bit: a negative exptime ("expire at once") is sent as the
/// first absolute time (`2592001`, in January 1970), which is equally already past, and one
/// beyond `u32::MAX` is clamped. A [`Command::Get`] sends its first key only (binary gets are
/// single-key; pipeline several for a multi-get).
pub fn encode_request(req: &BinaryRequest, out: &mut BytesMut) {
    let packet = Packet {
        magic: REQUEST_MAGIC,
        ..Packet::response(req.opcode, req.opaque)
    };
    let mut extras = [0u8; 20];
    let (extras_len, key, value, cas): (usize, &[u8], &[u8], u64) = match &req.command {
        Command::Get { keys, touch } => {
            let key = keys.first().map(|k| &k[..]).unwrap_or_default();
            match touch {
                Some(exptime) => {
                    extras[..4].copy_from_slice(&wire_exptime(*exptime).to_be_bytes());
                    (4, key, &[], 0)
                }
                None => (0, key, &[], 0),
            }
        }
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas,
        } => match mode {
            StoreMode::Append | StoreMode::Prepend => (0, key, value, *cas),
            _ => {
                extras[..4].copy_from_slice(&flags.to_be_bytes());
                extras[4..8].copy_from_slice(&wire_exptime(*exptime).to_be_bytes());
                (8, key, value, *cas)
            }
        },
        Command::Delete { key, cas } => (0, key, &[], *cas),
        Command::Arith {
            key,
            delta,
            initial,
            ..
        } => {
            let (initial, exptime) = match initial {
                Some((initial, exptime)) => (*initial, wire_exptime(*exptime)),
                None => (0, u32::MAX),
            };
            extras[..8].copy_from_slice(&delta.to_be_bytes());
            extras[8..16].copy_from_slice(&initial.to_be_bytes());
            extras[16..20].copy_from_slice(&exptime.to_be_bytes());
            (20, key, &[], 0)
        }
        Command::Touch { key, exptime } => {
            extras[..4].copy_from_slice(&wire_exptime(*exptime).to_be_bytes());
            (4, key, &[], 0)
        }
        Command::FlushAll { delay: 0 } => (0, &[], &[], 0),
        Command::FlushAll { delay } => {
            extras[..4].copy_from_slice(&wire_exptime(*delay).to_be_bytes());
            (4, &[], &[], 0)
        }
        Command::Verbosity => (4, &[], &[], 0),
        Command::Stats(group) => (0, group.name(), &[], 0),
        Command::SaslAuth {
            mechanism, data, ..
        } => (0, mechanism, data, 0),
        // `journal rewrite` has no binary opcode; like the others here it carries no body.
        Command::Version
        | Command::Noop
        | Command::Quit
        | Command::JournalRewrite
        | Command::SaslListMechs
        | Command::Unknown
        | Command::Meta(_)
        | Command::TooLarge { .. } => (0, &[], &[], 0),
    };
    Packet { cas, ..packet }.write(out, &extras[..extras_len], key, value);
}

/// An exptime as the binary protocol's unsigned 32 bits; see [`encode_request`].
fn wire_exptime(exptime: i64) -> u32 {
    if exptime < 0 {
        RELATIVE_EXPTIME_LIMIT as u32 + 1
    } else {
        u32::try_from(exptime).unwrap_or(u32::MAX)
    }
}

/// A response that is not a well-formed binary packet; the stream cannot be trusted after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseError(pub &'static str);

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed memcached binary response: {}", self.0)
    }
}

impl std::error::Error for ResponseError {}

/// Decodes one response packet from the front of `buf`, consuming its bytes; `Ok(None)` until
/// the whole packet has arrived.
pub fn decode_response(buf: &mut BytesMut) -> Result<Option<BinaryResponse>, ResponseError> {
    let Some(raw) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    if raw[0] != RESPONSE_MAGIC {
        return Err(ResponseError("bad magic byte"));
    }
    let opcode = raw[1];
    let key_len = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
    let extras_len = usize::from(raw[4]);
    let status = u16::from_be_bytes([raw[6], raw[7]]);
    let body_len = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]) as usize;
    let opaque = u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]);
    let cas = u64::from_be_bytes([
        raw[16], raw[17], raw[18], raw[19], raw[20], raw[21], raw[22], raw[23],
    ]);
    if key_len + extras_len > body_len {
        return Err(ResponseError("key and extras longer than the body"));
    }
    if buf.len() < HEADER_LEN + body_len {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(body_len).freeze();
    Ok(Some(BinaryResponse {
        opcode,
        status,
        opaque,
        cas,
        extras: body.slice(..extras_len),
        key: body.slice(extras_len..extras_len + key_len),
        value: body.slice(extras_len + key_len..),
    }))
}
