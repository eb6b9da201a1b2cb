//! One journal record: framing, checksum and the encoding of a mutation.
//!
//! ```text
//! len: u32 LE (payload bytes) | crc32: u32 LE (of the payload) | payload
//! payload = kind: u8 | db: u8 | fields
//!   1 Put      key_len: u16 | key | flags: u32 | cas: u64 | deadline: u64 (0 = none) | value_len: u32 | value
//!   2 Remove   key_len: u16 | key
//!   3 Deadline key_len: u16 | key | deadline: u64 (0 = none)
//!   4 Clear
//!   5 PutCollection key_len: u16 | key | type: u8 | deadline: u64 (0 = none) | members_len: u32 | members
//!   6 Element  key_len: u16 | key | op: u8 | op fields
//!       op 1 HashSet   field_len: u32 | field | value_len: u32 | value
//!       op 2 HashRemove field_len: u32 | field
//!       op 3 SetAdd    member_len: u32 | member
//!       op 4 SetRemove member_len: u32 | member
//!       op 5 ZSetAdd   score: f64 bits u64 | member_len: u32 | member
//!       op 6 ZSetRemove member_len: u32 | member
//! ```
//! Integers are little-endian. Deadlines are absolute Unix milliseconds. A collection's type
//! is 1 hash, 2 set, 3 sorted set; its `members` are the store's whole-collection encoding
//! (`u32` length before every byte string; a sorted-set element is its score's `f64` bits,
//! then the member), checked when the record is decoded.
//!
//! Records 1–4 are the memcached era's; 5 and 6 were added for RESP's collections. An
//! older build reading a newer journal stops at the first unknown kind as at corruption,
//! which is the safe reading of "a format this build does not know".

use sessiond_store::{ElementOp, Kind, Mutation, Value};

/// Bytes of the frame header (length and checksum).
pub const HEADER_LEN: usize = 8;
/// The largest payload a record may have. Anything larger is corruption, so a damaged length
/// field can never make the reader allocate gigabytes.
pub const MAX_PAYLOAD: usize = (1 << 30) + 1024;

const PUT: u8 = 1;
const REMOVE: u8 = 2;
const DEADLINE: u8 = 3;
const CLEAR: u8 = 4;
const PUT_COLLECTION: u8 = 5;
const ELEMENT: u8 = 6;

const HASH_SET: u8 = 1;
const HASH_REMOVE: u8 = 2;
const SET_ADD: u8 = 3;
const SET_REMOVE: u8 = 4;
const ZSET_ADD: u8 = 5;
const ZSET_REMOVE: u8 = 6;

/// A decoded record: a mutation of database `db`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    /// The database index (0 for the memcached keyspace).
    pub db: u8,
    /// The change.
    pub mutation: Mutation<'a>,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the record does.
    Incomplete,
    /// The checksum does not match the payload.
    Checksum,
    /// The length field is zero or larger than [`MAX_PAYLOAD`].
    BadLength,
    /// The checksum matches but the payload is not a valid record (unknown kind, or fields
    /// that do not add up to the length).
    Malformed,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::Incomplete => "record cut short",
            DecodeError::Checksum => "checksum mismatch",
            DecodeError::BadLength => "impossible record length",
            DecodeError::Malformed => "malformed record",
        })
    }
}

/// Appends the encoding of `record` to `out`.
pub fn encode(record: &Record<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    match record.mutation {
        Mutation::Put {
            key,
            value,
            flags,
            cas,
            deadline,
        } => {
            out.extend_from_slice(&[PUT, record.db]);
            put_key(out, key);
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&deadline.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        Mutation::Remove { key } => {
            out.extend_from_slice(&[REMOVE, record.db]);
            put_key(out, key);
        }
        Mutation::Deadline { key, deadline } => {
            out.extend_from_slice(&[DEADLINE, record.db]);
            put_key(out, key);
            out.extend_from_slice(&deadline.unwrap_or(0).to_le_bytes());
        }
        Mutation::Clear => out.extend_from_slice(&[CLEAR, record.db]),
        Mutation::PutCollection {
            key,
            kind,
            members,
            deadline,
        } => {
            out.extend_from_slice(&[PUT_COLLECTION, record.db]);
            put_key(out, key);
            out.push(kind.tag());
            out.extend_from_slice(&deadline.unwrap_or(0).to_le_bytes());
            put_bytes(out, members);
        }
        Mutation::Element { key, op } => {
            out.extend_from_slice(&[ELEMENT, record.db]);
            put_key(out, key);
            match op {
                ElementOp::HashSet { field, value } => {
                    out.push(HASH_SET);
                    put_bytes(out, field);
                    put_bytes(out, value);
                }
                ElementOp::HashRemove { field } => {
                    out.push(HASH_REMOVE);
                    put_bytes(out, field);
                }
                ElementOp::SetAdd { member } => {
                    out.push(SET_ADD);
                    put_bytes(out, member);
                }
                ElementOp::SetRemove { member } => {
                    out.push(SET_REMOVE);
                    put_bytes(out, member);
                }
                ElementOp::ZSetAdd { member, score } => {
                    out.push(ZSET_ADD);
                    out.extend_from_slice(&score.to_bits().to_le_bytes());
                    put_bytes(out, member);
                }
                ElementOp::ZSetRemove { member } => {
                    out.push(ZSET_REMOVE);
                    put_bytes(out, member);
                }
            }
        }
    }
    let payload_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_key(out: &mut Vec<u8>, key: &[u8]) {
    // Keys are at most 250 bytes (memcached) or bounded by the RESP bulk limit; a u16 length
    // covers both, and longer keys are cut here rather than corrupting the frame.
    let key = &key[..key.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The total length (header included) of the record starting at `buf[0]`, once its header
/// is available: `Ok(None)` if fewer than [`HEADER_LEN`] bytes are present.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Err(DecodeError::BadLength);
    }
    Ok(Some(HEADER_LEN + len))
}

/// Decodes the record at the start of `buf`, returning it and its total length.
pub fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let total = frame_len(buf)?.ok_or(DecodeError::Incomplete)?;
    let frame = buf.get(..total).ok_or(DecodeError::Incomplete)?;
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let payload = &frame[HEADER_LEN..];
    if crc32fast::hash(payload) != crc {
        return Err(DecodeError::Checksum);
    }
    let record = parse_payload(payload).ok_or(DecodeError::Malformed)?;
    Ok((record, total))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn key(&mut self) -> Option<&'a [u8]> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

fn parse_payload(payload: &[u8]) -> Option<Record<'_>> {
    let mut c = Cursor(payload);
    let head = c.take(2)?;
    let (kind, db) = (head[0], head[1]);
    let deadline = |d: u64| (d != 0).then_some(d);
    let mutation = match kind {
        PUT => {
            let key = c.key()?;
            let flags = c.u32()?;
            let cas = c.u64()?;
            let at = c.u64()?;
            let len = c.u32()? as usize;
            let value = c.take(len)?;
            Mutation::Put {
                key,
                value,
                flags,
                cas,
                deadline: deadline(at),
            }
        }
        REMOVE => Mutation::Remove { key: c.key()? },
        DEADLINE => {
            let key = c.key()?;
            Mutation::Deadline {
                key,
                deadline: deadline(c.u64()?),
            }
        }
        CLEAR => Mutation::Clear,
        PUT_COLLECTION => {
            let key = c.key()?;
            let kind = Kind::from_tag(c.take(1)?[0]).filter(|k| *k != Kind::Str)?;
            let at = c.u64()?;
            let members = c.bytes()?;
            // Checked here, so replay never meets a collection it cannot rebuild.
            Value::decode(kind, members)?;
            Mutation::PutCollection {
                key,
                kind,
                members,
                deadline: deadline(at),
            }
        }
        ELEMENT => {
            let key = c.key()?;
            let op = match c.take(1)?[0] {
                HASH_SET => ElementOp::HashSet {
                    field: c.bytes()?,
                    value: c.bytes()?,
                },
                HASH_REMOVE => ElementOp::HashRemove { field: c.bytes()? },
                SET_ADD => ElementOp::SetAdd { member: c.bytes()? },
                SET_REMOVE => ElementOp::SetRemove { member: c.bytes()? },
                ZSET_ADD => {
                    let score = f64::from_bits(c.u64()?);
                    if score.is_nan() {
                        return None;
                    }
                    ElementOp::ZSetAdd {
                        score,
                        member: c.bytes()?,
                    }
                }
                ZSET_REMOVE => ElementOp::ZSetRemove { member: c.bytes()? },
                _ => return None,
            };
            Mutation::Element { key, op }
        }
        _ => return None,
    };
    // Trailing bytes inside a checksummed frame mean a format this build does not know.
    c.0.is_empty().then_some(Record { db, mutation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mutation() -> impl Strategy<Value = (u8, u8, Vec<u8>, Vec<u8>, u32, u64, Option<u64>)> {
        (
            0u8..13,
            0u8..16,
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<u32>(),
            any::<u64>(),
            proptest::option::of(1u64..u64::MAX),
        )
    }

    /// A valid whole-collection encoding of `kind` made from arbitrary bytes: `value` is
    /// cut into elements of up to 7 bytes.
    fn members(kind: Kind, value: &[u8], cas: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, chunk) in value.chunks(7).enumerate() {
            if kind == Kind::ZSet {
                out.extend_from_slice(&((cas ^ i as u64) as f64 / 3.0).to_bits().to_le_bytes());
            }
            out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            out.extend_from_slice(chunk);
            if kind == Kind::Hash {
                out.extend_from_slice(&1u32.to_le_bytes());
                out.push(i as u8);
            }
        }
        out
    }

    fn build<'a>(
        kind: u8,
        key: &'a [u8],
        value: &'a [u8],
        members: &'a [u8],
        flags: u32,
        cas: u64,
        deadline: Option<u64>,
    ) -> Mutation<'a> {
        let half = value.len() / 2;
        let score = cas as f64 / 7.0;
        match kind {
            0 => Mutation::Put {
                key,
                value,
                flags,
                cas,
                deadline,
            },
            1 => Mutation::Remove { key },
            2 => Mutation::Deadline { key, deadline },
            3 => Mutation::Clear,
            4..=6 => Mutation::PutCollection {
                key,
                kind: collection_kind(kind),
                members,
                deadline,
            },
            7 => Mutation::Element {
                key,
                op: ElementOp::HashSet {
                    field: &value[..half],
                    value: &value[half..],
                },
            },
            8 => Mutation::Element {
                key,
                op: ElementOp::HashRemove { field: value },
            },
            9 => Mutation::Element {
                key,
                op: ElementOp::SetAdd { member: value },
            },
            10 => Mutation::Element {
                key,
                op: ElementOp::SetRemove { member: value },
            },
            11 => Mutation::Element {
                key,
                op: ElementOp::ZSetAdd {
                    member: value,
                    score,
                },
            },
            _ => Mutation::Element {
                key,
                op: ElementOp::ZSetRemove { member: value },
            },
        }
    }

    fn collection_kind(kind: u8) -> Kind {
        match kind {
            4 => Kind::Hash,
            5 => Kind::Set,
            _ => Kind::ZSet,
        }
    }

    proptest! {
        #[test]
        fn round_trips((kind, db, key, value, flags, cas, deadline) in mutation()) {
            let members = members(collection_kind(kind), &value, cas);
            let record = Record { db, mutation: build(kind, &key, &value, &members, flags, cas, deadline) };
            let mut out = vec![0xAA];
            encode(&record, &mut out);
            let (decoded, len) = decode(&out[1..]).unwrap();
            prop_assert_eq!(decoded, record);
            prop_assert_eq!(len, out.len() - 1);
            // Every strict prefix is incomplete, never a different record.
            for cut in 0..len {
                prop_assert!(matches!(decode(&out[1..1 + cut]), Err(DecodeError::Incomplete) | Err(DecodeError::BadLength)));
            }
        }

        #[test]
        fn any_flipped_bit_is_detected((kind, db, key, value, flags, cas, deadline) in mutation(), bit in any::<usize>()) {
            let members = members(collection_kind(kind), &value, cas);
            let record = Record { db, mutation: build(kind, &key, &value, &members, flags, cas, deadline) };
            let mut out = Vec::new();
            encode(&record, &mut out);
            let bit = bit % (out.len() * 8);
            out[bit / 8] ^= 1 << (bit % 8);
            // A flip in the length may make the frame look longer (incomplete) or impossible;
            // anywhere else the checksum catches it. It never decodes to a record.
            prop_assert!(decode(&out).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn collections_survive_the_round_trip(kind in 4u8..7, value in proptest::collection::vec(any::<u8>(), 0..300), cas in any::<u64>()) {
            // The members a record carries rebuild the same collection.
            let kind = collection_kind(kind);
            let members = members(kind, &value, cas);
            let decoded = Value::decode(kind, &members).unwrap();
            let mut again = Vec::new();
            decoded.encode_members(&mut again);
            prop_assert_eq!(Value::decode(kind, &again).unwrap(), decoded);
        }
    }
}
