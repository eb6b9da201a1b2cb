//! The meta commands (`mg`, `ms`, `md`, `ma`, `me`; `mn` is [`Command::Noop`](crate::Command))
//! as typed values: the request a text line decodes into and the outcome the glue answers
//! with.
//!
//! A meta request is one key plus single-letter flags. Some flags change what the command
//! does (`T` a new TTL, `N` vivify on miss, `C` a CAS check, `I` invalidate, `M` a mode), the
//! others ask for something back (`k` the key, `c` the CAS, `t` the TTL, `O` an opaque
//! token). Replies echo the asked-for flags in the order the request gave them, so the
//! request keeps that order ([`MetaFlags::order`]); the glue fills a [`MetaOutcome`] with
//! everything any flag could ask for and the text encoder picks what was asked.
//!
//! Keys sent base64-encoded (`b`) are decoded here: the store sees the binary key, and the
//! reply encodes it again. [`base64_decode`] and [`base64_encode`] are the standard alphabet
//! with padding, as memcached uses.

use bytes::Bytes;

use crate::{ArithMode, StoreMode};

/// Which meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVerb {
    /// `mg`: read, optionally touch, vivify or win the right to recache.
    Get,
    /// `ms` in a mode (`M`: set, add, replace, append, prepend).
    Set(StoreMode),
    /// `md`: delete, or mark stale with `I`.
    Delete,
    /// `ma` in a mode (`M`: incr or decr).
    Arith(ArithMode),
    /// `me`: a human-readable dump of the item's metadata.
    Debug,
}

/// The flags of one meta request, parsed. Every numeric token is kept as memcached reads it
/// (TTLs as signed 32-bit exptimes, not yet resolved against the clock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaFlags {
    /// The flag letters in request order (each at most once), for the reply to echo.
    pub order: Vec<u8>,
    /// `O`: the opaque token (without the `O`), at most 32 bytes.
    pub opaque: Option<Bytes>,
    /// `q`: hide the nominal reply (`EN` for mg, `HD` for ms/md/ma); errors still show.
    pub quiet: bool,
    /// `v`: return the value (`VA <len>` and a data block).
    pub value: bool,
    /// `u`: do not count this read as an access (no hit mark, no last-access time).
    pub no_bump: bool,
    /// `I`: invalidate (md: mark stale; ms with `C`: store an older CAS as stale).
    pub invalidate: bool,
    /// `C`: the CAS the item must have.
    pub cas: Option<u64>,
    /// `E`: the CAS to give the item if the command changes it (an external version), below
    /// 2^63 (see the decoder).
    pub new_cas: Option<u64>,
    /// `F`: client flags to store (ms; 0 when absent).
    pub client_flags: Option<u32>,
    /// `T`: a new TTL (mg, ma: touch; ms: the TTL; md with `I`: the stale item's TTL).
    pub ttl: Option<i64>,
    /// `N`: vivify on miss with this TTL (mg: an empty item; ma: the `J` value).
    pub vivify: Option<i64>,
    /// `R`: win the recache right if the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `M`: the mode letter (ms: `E`, `A`, `P`, `R`, `S`; ma: `I`, `+`, `D`, `-`), 0 if none.
    pub mode: u8,
    /// `D`: ma's delta (default 1).
    pub delta: Option<u64>,
    /// `J`: ma's initial value on vivify (default 0).
    pub initial: Option<u64>,
}

impl MetaFlags {
    /// Whether the request carried flag `letter`.
    pub fn has(&self, letter: u8) -> bool {
        self.order.contains(&letter)
    }
}

/// One decoded meta request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRequest {
    /// The command.
    pub verb: MetaVerb,
    /// The key as the store sees it (decoded when `b` was given).
    pub key: Bytes,
    /// `b`: the key travelled base64-encoded, and goes back so.
    pub base64: bool,
    /// The data block (`ms` only).
    pub value: Bytes,
    /// The flags.
    pub flags: MetaFlags,
}

/// How a meta command ended, as its reply's two-letter code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// Success: `HD`, or `VA` when the value was asked for (mg, ma).
    Done,
    /// `EN`: mg or me found nothing.
    Miss,
    /// `NS`: ms's condition (add, replace, append, prepend) was not met; ma could not vivify.
    NotStored,
    /// `EX`: the CAS did not match.
    Exists,
    /// `NF`: nothing to act on (md, ma, ms with a CAS).
    NotFound,
}

/// What the glue knows of the item a meta command acted on: everything a return flag may
/// ask for. Times are whole seconds, as memcached reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaItem {
    /// The value (mg's `v`; ma's new number as text).
    pub value: Bytes,
    /// The client flags (`f`).
    pub flags: u32,
    /// The CAS unique (`c`).
    pub cas: u64,
    /// Seconds left to live (`t`); `None` for no expiry, written `-1`.
    pub ttl: Option<u64>,
    /// Seconds since the item was last accessed, before this request (`l`).
    pub last_access: u64,
    /// Whether the item had been read before this request (`h`).
    pub fetched: bool,
    /// The item is stale (`X`).
    pub stale: bool,
    /// Another client already holds the recache right (`Z`).
    pub token_sent: bool,
    /// This client has won the recache right (`W`).
    pub won: bool,
}

/// The outcome of a meta command (other than a refusal, which is an ordinary
/// [`Outcome`](crate::Outcome) such as `TooLarge` or `Revoked`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaOutcome {
    /// The reply code.
    pub status: MetaStatus,
    /// The item, for a success that reports on it.
    pub item: Option<MetaItem>,
}

impl MetaOutcome {
    /// An outcome with no item to report on.
    pub fn bare(status: MetaStatus) -> MetaOutcome {
        MetaOutcome { status, item: None }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes standard base64 with padding; `None` if `text` is not that, or decodes to
/// nothing (memcached refuses an empty key).
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (i, quad) in text.chunks_exact(4).enumerate() {
        let last = i + 1 == quads;
        let pad = match quad {
            [_, _, b'=', b'='] if last => 2,
            [_, _, _, b'='] if last => 1,
            _ => 0,
        };
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    (!out.is_empty()).then_some(out)
}

/// Appends the standard base64 (with padding) of `data` to `out`.
pub fn base64_encode(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for data in [&b"a"[..], b"ab", b"abc", b"abcd", b"\x00\xff\x10 \r\n"] {
            let mut text = Vec::new();
            base64_encode(data, &mut text);
            assert_eq!(base64_decode(&text).as_deref(), Some(data));
        }
        let mut text = Vec::new();
        base64_encode(b"foo", &mut text);
        assert_eq!(text, b"Zm9v");
        for bad in [&b""[..], b"Zm9", b"Zm9v!A==", b"Z===", b"Zg==Zg==", b"===="] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }
}
