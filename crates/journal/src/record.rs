//! One journal record: framing, checksum and the encoding of a mutation.
//!
//! ```text
//! len: u32 LE (payload bytes) | crc32: u32 LE (of the payload) | payload
//! payload = kind: u8 | db: u8 | fields
//!   1 Put      key | flags: u32 | cas: u64 | deadline: u64 (0 = none) | value_len: u32 | value
//!   2 Remove   key
//!   3 Deadline key | deadline: u64 (0 = none)
//!   4 Clear
//!   5 PutCollection key | type: u8 | deadline: u64 (0 = none) | members_len: u32 | members
//!   6 Element  key | op: u8 | op fields
//!       op 1 HashSet   field_len: u32 | field | value_len: u32 | value
//!       op 2 HashRemove field_len: u32 | field
//!       op 3 SetAdd    member_len: u32 | member
//!       op 4 SetRemove member_len: u32 | member
//!       op 5 ZSetAdd   score: f64 bits u64 | member_len: u32 | member
//!       op 6 ZSetRemove member_len: u32 | member
//!       (ops 7–12, lists, V2 only; `version` is the list's version after the change,
//!        `end` 0 head / 1 tail)
//!       op 7 ListPush   end: u8 | version: u64 | item_len: u32 | item
//!       op 8 ListPop    end: u8 | version: u64 | count: u64
//!       op 9 ListSet    version: u64 | index: u64 | item_len: u32 | item
//!       op 10 ListInsert version: u64 | index: u64 | item_len: u32 | item
//!       op 11 ListRem   version: u64 | count: i64 | item_len: u32 | item
//!       op 12 ListTrim  version: u64 | start: u64 | end: u64
//!       op 13 Stream    version: u64 | op_len: u32 | op (V2 only; the store's
//!                       `StreamOp` encoding, checked when the record is decoded)
//!   7 CollectionPart (V2 only) the fields of 5: a part of a collection, more parts follow
//!   8 Revoke (V2 only) key | until: u64: the key was revoked, re-creating it is refused until then
//!   9 Marks (V2 only) key | cas: u64 | marks: u8 (bit 0 stale, bit 1 recache right taken;
//!       other bits must be 0): the string's CAS and memcached meta marks now
//! key = key_len: u16 (V1) or u32 (V2) | key bytes
//! ```
//! Integers are little-endian. Deadlines are absolute Unix milliseconds. A collection's type
//! is 1 hash, 2 set, 3 sorted set, 4 list, 5 stream (4 and 5 V2 only); its `members` are
//! the store's whole-collection encoding (`u32` length before every byte string; a
//! sorted-set element is its score's `f64` bits, then the member; a list's first string is
//! its 8-byte version; a stream is a sequence of strings, each one element: header, entry or
//! group, see `sessiond_store::Stream::encode`), checked when the record is decoded.
//!
//! Records 1–4 are the memcached era's; 5 and 6 were added for RESP's collections. An
//! older build reading a newer journal stops at the first unknown kind as at corruption,
//! which is the safe reading of "a format this build does not know".
//!
//! **Format V2** (the file's magic says which, see [`crate::Version`]) exists because V1's
//! `u16` key length could not carry the keys RESP accepts (up to the bulk limit,
//! `max(--max-item-size, 64 KiB)`): V1 builds cut them to 65,535 bytes, so after a restart
//! the value came back under another key. V2 widens the key length to `u32` and nothing
//! else, so a V1 payload and a V2 payload differ only there.
//!
//! **Large collections.** A collection's size is bounded only by `--max-memory`, but a
//! record's by [`MAX_PAYLOAD`] (a length beyond it is treated as damage). So [`encode`]
//! writes a collection whose members exceed [`PART_BYTES`] as kind-7 parts of about that
//! size, each holding whole elements, the last one as an ordinary kind 5, all in one call so
//! that they are contiguous in the queue and therefore in one segment. Replay
//! ([`crate::assemble`]) applies the collection only when its last part arrives, so a crash
//! that cuts a group leaves the key as it was before, never half a collection. Every other
//! record's size is bounded by the server's limits (key, field and value each ≤ 1 GiB, the
//! ceiling of `--max-item-size`), which [`MAX_PAYLOAD`] covers; should one still be larger,
//! [`encode`] refuses it with [`EncodeError::TooLarge`] instead of writing a record that
//! could not be read back, and the server poisons the journal (the write is never
//! acknowledged).

use sessiond_store::{ElementOp, End, Kind, Mutation, StreamOp};

use crate::Version;

/// Bytes of the frame header (length and checksum).
pub const HEADER_LEN: usize = 8;
/// The largest payload a record may have; a length field beyond it is damage, never a
/// record. It covers the largest record the server can produce: an `Element` hash-field
/// record whose key, field and value are each at the 1 GiB ceiling of `--max-item-size`
/// (3 GiB + 15 bytes), or a collection part of [`PART_BYTES`] plus one such element and
/// key. It stays below `u32::MAX`, the frame's own length limit.
pub const MAX_PAYLOAD: usize = (3 << 30) + (64 << 20);
/// A collection whose members encode to more than this many bytes is written in parts of
/// about this size (whole elements each; one part may exceed it by its last element). Small
/// enough that no part nears [`MAX_PAYLOAD`] and that a replay buffers little per record;
/// large enough that the per-part overhead (the key, repeated) is negligible.
pub const PART_BYTES: usize = 8 << 20;

const PUT: u8 = 1;
const REMOVE: u8 = 2;
const DEADLINE: u8 = 3;
const CLEAR: u8 = 4;
const PUT_COLLECTION: u8 = 5;
const ELEMENT: u8 = 6;
const COLLECTION_PART: u8 = 7;
const REVOKE: u8 = 8;
const MARKS: u8 = 9;

const MARK_STALE: u8 = 1;
const MARK_RECACHE_TAKEN: u8 = 2;

const HASH_SET: u8 = 1;
const HASH_REMOVE: u8 = 2;
const SET_ADD: u8 = 3;
const SET_REMOVE: u8 = 4;
const ZSET_ADD: u8 = 5;
const ZSET_REMOVE: u8 = 6;
const LIST_PUSH: u8 = 7;
const LIST_POP: u8 = 8;
const LIST_SET: u8 = 9;
const LIST_INSERT: u8 = 10;
const LIST_REM: u8 = 11;
const LIST_TRIM: u8 = 12;
const STREAM_OP: u8 = 13;

fn end_tag(end: End) -> u8 {
    match end {
        End::Left => 0,
        End::Right => 1,
    }
}

/// A decoded record: a mutation of database `db`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    /// The database index (0 for the memcached keyspace).
    pub db: u8,
    /// The change.
    pub mutation: Mutation<'a>,
    /// Only for a [`Mutation::PutCollection`]: this record holds some of the collection's
    /// members and more parts follow (record kind 7). Such a record is not a change of its
    /// own; [`crate::assemble::Assembler`] puts the parts together.
    pub continues: bool,
}

impl<'a> Record<'a> {
    /// The record of a whole change (not a part).
    pub fn new(db: u8, mutation: Mutation<'a>) -> Record<'a> {
        Record {
            db,
            mutation,
            continues: false,
        }
    }
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

/// Why a record cannot be written. Nothing is written when encoding fails, so the journal
/// never holds a record it could not read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload would exceed [`MAX_PAYLOAD`].
    TooLarge,
    /// The key is longer than the version's key length field can say (V1: 65,535 bytes).
    KeyTooLong,
    /// The decoder would refuse the record: a collection of type string, members that are
    /// not a valid encoding, a NaN score, or a part in a V1 file.
    Invalid,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EncodeError::TooLarge => "record larger than the journal's record size limit",
            EncodeError::KeyTooLong => "key too long for the journal format",
            EncodeError::Invalid => "record the journal could not read back",
        })
    }
}

impl std::error::Error for EncodeError {}

/// Appends `record` to `out` as the current format ([`Version::V2`]) writes it: one frame,
/// or, for a collection whose members exceed [`PART_BYTES`], a run of part frames. On error
/// `out` is left as it was.
pub fn encode(record: &Record<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = match record.mutation {
        Mutation::PutCollection {
            key,
            kind,
            members,
            deadline,
        } if members.len() > PART_BYTES => encode_parts(
            record.db,
            key,
            kind,
            members,
            deadline,
            record.continues,
            out,
        ),
        _ => encode_frame(Version::V2, record, out),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Writes a large collection as parts of whole elements, about [`PART_BYTES`] each.
fn encode_parts(
    db: u8,
    key: &[u8],
    kind: Kind,
    members: &[u8],
    deadline: Option<u64>,
    continues: bool,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut start = 0;
    while start < members.len() {
        let mut end = start;
        // At least one element per part, then whole elements while the part stays within
        // PART_BYTES.
        loop {
            let len = element_len(kind, &members[end..]).ok_or(EncodeError::Invalid)?;
            if end > start && end - start + len > PART_BYTES {
                break;
            }
            end += len;
            if end == members.len() {
                break;
            }
        }
        let last = end == members.len();
        let part = Record {
            db,
            mutation: Mutation::PutCollection {
                key,
                kind,
                members: &members[start..end],
                deadline,
            },
            continues: !last || continues,
        };
        encode_frame(Version::V2, &part, out)?;
        start = end;
    }
    Ok(())
}

/// Appends exactly one frame holding `record` in format `version`. On error `out` is left as
/// it was.
pub fn encode_frame(
    version: Version,
    record: &Record<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(error) = encode_payload(version, record, out) {
        out.truncate(start);
        return Err(error);
    }
    // encode_payload keeps the payload within MAX_PAYLOAD, which fits a u32.
    let payload_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The payload length of `record` in format `version`, after the checks that decide whether
/// it can be written at all (so nothing is copied before a refusal).
pub fn payload_len(version: Version, record: &Record<'_>) -> Result<usize, EncodeError> {
    let key_field = |key: &[u8]| match version {
        Version::V1 if key.len() > u16::MAX as usize => Err(EncodeError::KeyTooLong),
        Version::V1 => Ok(2 + key.len()),
        Version::V2 => Ok(4 + key.len()),
    };
    if record.continues
        && (version == Version::V1 || !matches!(record.mutation, Mutation::PutCollection { .. }))
    {
        return Err(EncodeError::Invalid);
    }
    let list_era = match record.mutation {
        Mutation::Revoke { .. } | Mutation::Marks { .. } => true,
        Mutation::PutCollection { kind, .. } => matches!(kind, Kind::List | Kind::Stream),
        Mutation::Element { op, .. } => is_list_op(&op) || matches!(op, ElementOp::Stream { .. }),
        _ => false,
    };
    if version == Version::V1 && list_era {
        return Err(EncodeError::Invalid);
    }
    // Saturating: the result is only compared with MAX_PAYLOAD.
    let len = 2 + match record.mutation {
        Mutation::Put { key, value, .. } => key_field(key)? + 4 + 8 + 8 + 4 + value.len(),
        Mutation::Remove { key } => key_field(key)?,
        Mutation::Deadline { key, .. } | Mutation::Revoke { key, .. } => key_field(key)? + 8,
        Mutation::Marks { key, .. } => key_field(key)? + 8 + 1,
        Mutation::Clear => 0,
        Mutation::PutCollection {
            key, kind, members, ..
        } => {
            if kind == Kind::Str || !members_valid(kind, members) {
                return Err(EncodeError::Invalid);
            }
            key_field(key)? + 1 + 8 + 4 + members.len()
        }
        Mutation::Element { key, op } => {
            key_field(key)?
                + 1
                + match op {
                    ElementOp::HashSet { field, value } => 4 + field.len() + 4 + value.len(),
                    ElementOp::HashRemove { field } => 4 + field.len(),
                    ElementOp::SetAdd { member }
                    | ElementOp::SetRemove { member }
                    | ElementOp::ZSetRemove { member } => 4 + member.len(),
                    ElementOp::ZSetAdd { member, score } => {
                        if score.is_nan() {
                            return Err(EncodeError::Invalid);
                        }
                        8 + 4 + member.len()
                    }
                    ElementOp::ListPush { item, .. } => 1 + 8 + 4 + item.len(),
                    ElementOp::ListPop { .. } => 1 + 8 + 8,
                    ElementOp::ListSet { item, .. }
                    | ElementOp::ListInsert { item, .. }
                    | ElementOp::ListRem { item, .. } => 8 + 8 + 4 + item.len(),
                    ElementOp::ListTrim { .. } => 8 + 8 + 8,
                    ElementOp::Stream { op, .. } => {
                        if StreamOp::decode(op).is_none() {
                            return Err(EncodeError::Invalid);
                        }
                        8 + 4 + op.len()
                    }
                }
        }
    };
    if len > MAX_PAYLOAD {
        return Err(EncodeError::TooLarge);
    }
    Ok(len)
}

/// Appends the payload of `record` in format `version` (no frame, no splitting): what
/// [`decode_payload`] reads back to an equal record. On error `out` is left as it was.
pub fn encode_payload(
    version: Version,
    record: &Record<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let len = payload_len(version, record)?;
    out.reserve(len);
    let put_key = |out: &mut Vec<u8>, key: &[u8]| {
        // payload_len checked that the key fits the version's length field.
        match version {
            Version::V1 => out.extend_from_slice(&(key.len() as u16).to_le_bytes()),
            Version::V2 => out.extend_from_slice(&(key.len() as u32).to_le_bytes()),
        }
        out.extend_from_slice(key);
    };
    let db = record.db;
    match record.mutation {
        Mutation::Put {
            key,
            value,
            flags,
            cas,
            deadline,
        } => {
            out.extend_from_slice(&[PUT, db]);
            put_key(out, key);
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&deadline.unwrap_or(0).to_le_bytes());
            put_bytes(out, value);
        }
        Mutation::Remove { key } => {
            out.extend_from_slice(&[REMOVE, db]);
            put_key(out, key);
        }
        Mutation::Deadline { key, deadline } => {
            out.extend_from_slice(&[DEADLINE, db]);
            put_key(out, key);
            out.extend_from_slice(&deadline.unwrap_or(0).to_le_bytes());
        }
        Mutation::Revoke { key, until } => {
            out.extend_from_slice(&[REVOKE, db]);
            put_key(out, key);
            out.extend_from_slice(&until.to_le_bytes());
        }
        Mutation::Marks {
            key,
            cas,
            stale,
            recache_taken,
        } => {
            out.extend_from_slice(&[MARKS, db]);
            put_key(out, key);
            out.extend_from_slice(&cas.to_le_bytes());
            let mut marks = 0;
            if stale {
                marks |= MARK_STALE;
            }
            if recache_taken {
                marks |= MARK_RECACHE_TAKEN;
            }
            out.push(marks);
        }
        Mutation::Clear => out.extend_from_slice(&[CLEAR, db]),
        Mutation::PutCollection {
            key,
            kind,
            members,
            deadline,
        } => {
            let tag = if record.continues {
                COLLECTION_PART
            } else {
                PUT_COLLECTION
            };
            out.extend_from_slice(&[tag, db]);
            put_key(out, key);
            out.push(kind.tag());
            out.extend_from_slice(&deadline.unwrap_or(0).to_le_bytes());
            put_bytes(out, members);
        }
        Mutation::Element { key, op } => {
            out.extend_from_slice(&[ELEMENT, db]);
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
                ElementOp::ListPush { end, item, version } => {
                    out.extend_from_slice(&[LIST_PUSH, end_tag(end)]);
                    out.extend_from_slice(&version.to_le_bytes());
                    put_bytes(out, item);
                }
                ElementOp::ListPop {
                    end,
                    count,
                    version,
                } => {
                    out.extend_from_slice(&[LIST_POP, end_tag(end)]);
                    out.extend_from_slice(&version.to_le_bytes());
                    out.extend_from_slice(&count.to_le_bytes());
                }
                ElementOp::ListSet {
                    index,
                    item,
                    version,
                } => {
                    out.push(LIST_SET);
                    out.extend_from_slice(&version.to_le_bytes());
                    out.extend_from_slice(&index.to_le_bytes());
                    put_bytes(out, item);
                }
                ElementOp::ListInsert {
                    index,
                    item,
                    version,
                } => {
                    out.push(LIST_INSERT);
                    out.extend_from_slice(&version.to_le_bytes());
                    out.extend_from_slice(&index.to_le_bytes());
                    put_bytes(out, item);
                }
                ElementOp::ListRem {
                    count,
                    item,
                    version,
                } => {
                    out.push(LIST_REM);
                    out.extend_from_slice(&version.to_le_bytes());
                    out.extend_from_slice(&count.to_le_bytes());
                    put_bytes(out, item);
                }
                ElementOp::ListTrim {
                    start,
                    end,
                    version,
                } => {
                    out.push(LIST_TRIM);
                    out.extend_from_slice(&version.to_le_bytes());
                    out.extend_from_slice(&start.to_le_bytes());
                    out.extend_from_slice(&end.to_le_bytes());
                }
                ElementOp::Stream { op, version } => {
                    out.push(STREAM_OP);
                    out.extend_from_slice(&version.to_le_bytes());
                    put_bytes(out, op);
                }
            }
        }
    }
    Ok(())
}

/// Whether `op` changes a list (a V2-only record).
fn is_list_op(op: &ElementOp<'_>) -> bool {
    matches!(
        op,
        ElementOp::ListPush { .. }
            | ElementOp::ListPop { .. }
            | ElementOp::ListSet { .. }
            | ElementOp::ListInsert { .. }
            | ElementOp::ListRem { .. }
            | ElementOp::ListTrim { .. }
    )
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every byte string is shorter than MAX_PAYLOAD (checked by payload_len), so its length
    // fits a u32.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The length of the first element of a collection's members, `None` if they do not start
/// with a valid element. Accepts exactly what `Value::decode` accepts, element by element
/// (a string for each length, a score that is not NaN), without building anything.
fn element_len(kind: Kind, members: &[u8]) -> Option<usize> {
    let mut c = Cursor(members);
    match kind {
        Kind::Str => return None,
        Kind::Hash => {
            c.bytes()?;
            c.bytes()?;
        }
        Kind::Set | Kind::List | Kind::Stream => {
            c.bytes()?;
        }
        Kind::ZSet => {
            if f64::from_bits(c.u64()?).is_nan() {
                return None;
            }
            c.bytes()?;
        }
    }
    Some(members.len() - c.0.len())
}

/// Whether `members` is a valid whole-collection encoding of `kind` (a collection type).
/// (A list's leading version is checked by the store when it decodes the whole list: a
/// later part of a list written in parts has none.)
pub fn members_valid(kind: Kind, mut members: &[u8]) -> bool {
    if kind == Kind::Str {
        return false;
    }
    while !members.is_empty() {
        match element_len(kind, members) {
            Some(len) => members = &members[len..],
            None => return false,
        }
    }
    true
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

/// Decodes the record (of a file in format `version`) at the start of `buf`, returning it
/// and its total length.
pub fn decode(version: Version, buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let total = frame_len(buf)?.ok_or(DecodeError::Incomplete)?;
    let frame = buf.get(..total).ok_or(DecodeError::Incomplete)?;
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let payload = &frame[HEADER_LEN..];
    if crc32fast::hash(payload) != crc {
        return Err(DecodeError::Checksum);
    }
    let record = decode_payload(version, payload)?;
    Ok((record, total))
}

/// Decodes a record's payload (what follows the frame header, checksum already verified)
/// in format `version`. Every record it returns, [`encode_payload`] in the same version
/// writes back to the same bytes.
pub fn decode_payload(version: Version, payload: &[u8]) -> Result<Record<'_>, DecodeError> {
    parse_payload(version, payload).ok_or(DecodeError::Malformed)
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
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn key(&mut self, version: Version) -> Option<&'a [u8]> {
        let len = match version {
            Version::V1 => self.u16()? as usize,
            Version::V2 => self.u32()? as usize,
        };
        self.take(len)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// Reads the fields of list op `tag` (one of `LIST_PUSH..=LIST_TRIM`).
fn list_op<'a>(tag: u8, c: &mut Cursor<'a>) -> Option<ElementOp<'a>> {
    let end = |c: &mut Cursor<'a>| match c.take(1)?[0] {
        0 => Some(End::Left),
        1 => Some(End::Right),
        _ => None,
    };
    Some(match tag {
        LIST_PUSH => {
            let end = end(c)?;
            let version = c.u64()?;
            ElementOp::ListPush {
                end,
                version,
                item: c.bytes()?,
            }
        }
        LIST_POP => {
            let end = end(c)?;
            let version = c.u64()?;
            ElementOp::ListPop {
                end,
                version,
                count: c.u64()?,
            }
        }
        LIST_SET | LIST_INSERT => {
            let version = c.u64()?;
            let index = c.u64()?;
            let item = c.bytes()?;
            if tag == LIST_SET {
                ElementOp::ListSet {
                    index,
                    item,
                    version,
                }
            } else {
                ElementOp::ListInsert {
                    index,
                    item,
                    version,
                }
            }
        }
        LIST_REM => {
            let version = c.u64()?;
            let count = c.u64()? as i64;
            ElementOp::ListRem {
                count,
                version,
                item: c.bytes()?,
            }
        }
        LIST_TRIM => {
            let version = c.u64()?;
            let start = c.u64()?;
            ElementOp::ListTrim {
                start,
                version,
                end: c.u64()?,
            }
        }
        _ => return None,
    })
}

fn parse_payload(version: Version, payload: &[u8]) -> Option<Record<'_>> {
    let mut c = Cursor(payload);
    let head = c.take(2)?;
    let (kind, db) = (head[0], head[1]);
    let deadline = |d: u64| (d != 0).then_some(d);
    let mut continues = false;
    let mutation = match kind {
        PUT => {
            let key = c.key(version)?;
            let flags = c.u32()?;
            let cas = c.u64()?;
            let at = c.u64()?;
            let value = c.bytes()?;
            Mutation::Put {
                key,
                value,
                flags,
                cas,
                deadline: deadline(at),
            }
        }
        REMOVE => Mutation::Remove {
            key: c.key(version)?,
        },
        DEADLINE => {
            let key = c.key(version)?;
            Mutation::Deadline {
                key,
                deadline: deadline(c.u64()?),
            }
        }
        CLEAR => Mutation::Clear,
        REVOKE if version == Version::V2 => {
            let key = c.key(version)?;
            Mutation::Revoke {
                key,
                until: c.u64()?,
            }
        }
        MARKS if version == Version::V2 => {
            let key = c.key(version)?;
            let cas = c.u64()?;
            let marks = c.take(1)?[0];
            if marks & !(MARK_STALE | MARK_RECACHE_TAKEN) != 0 {
                return None;
            }
            Mutation::Marks {
                key,
                cas,
                stale: marks & MARK_STALE != 0,
                recache_taken: marks & MARK_RECACHE_TAKEN != 0,
            }
        }
        PUT_COLLECTION | COLLECTION_PART => {
            if kind == COLLECTION_PART {
                if version == Version::V1 {
                    return None;
                }
                continues = true;
            }
            let key = c.key(version)?;
            let kind = Kind::from_tag(c.take(1)?[0]).filter(|k| {
                *k != Kind::Str
                    && (!matches!(k, Kind::List | Kind::Stream) || version == Version::V2)
            })?;
            let at = c.u64()?;
            let members = c.bytes()?;
            // Checked here, so replay never meets a collection it cannot rebuild (a part
            // holds whole elements, so each part is checked on its own).
            if !members_valid(kind, members) {
                return None;
            }
            Mutation::PutCollection {
                key,
                kind,
                members,
                deadline: deadline(at),
            }
        }
        ELEMENT => {
            let key = c.key(version)?;
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
                list if version == Version::V2 && (LIST_PUSH..=LIST_TRIM).contains(&list) => {
                    list_op(list, &mut c)?
                }
                STREAM_OP if version == Version::V2 => {
                    let version = c.u64()?;
                    let op = c.bytes()?;
                    // Checked here, so replay never meets an op it cannot read.
                    StreamOp::decode(op)?;
                    ElementOp::Stream { op, version }
                }
                _ => return None,
            };
            Mutation::Element { key, op }
        }
        _ => return None,
    };
    // Trailing bytes inside a checksummed frame mean a format this build does not know.
    c.0.is_empty().then_some(Record {
        db,
        mutation,
        continues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sessiond_store::Value;

    fn mutation() -> impl Strategy<Value = (u8, u8, Vec<u8>, Vec<u8>, u32, u64, Option<u64>)> {
        (
            0u8..16,
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
            12 => Mutation::Element {
                key,
                op: ElementOp::ZSetRemove { member: value },
            },
            13 => Mutation::Revoke { key, until: cas },
            _ => Mutation::Marks {
                key,
                cas,
                stale: flags & 1 != 0,
                recache_taken: flags & 2 != 0,
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
            let record = Record::new(db, build(kind, &key, &value, &members, flags, cas, deadline));
            for version in [Version::V1, Version::V2] {
                let mut out = vec![0xAA];
                if version == Version::V2 {
                    encode(&record, &mut out).unwrap();
                } else if matches!(record.mutation, Mutation::Revoke { .. } | Mutation::Marks { .. }) {
                    // V1 files are never appended to, and V1 had no revocations or marks.
                    prop_assert_eq!(encode_frame(version, &record, &mut out), Err(EncodeError::Invalid));
                    continue;
                } else {
                    encode_frame(version, &record, &mut out).unwrap();
                }
                let (decoded, len) = decode(version, &out[1..]).unwrap();
                prop_assert_eq!(decoded, record);
                prop_assert_eq!(len, out.len() - 1);
                prop_assert_eq!(len, HEADER_LEN + payload_len(version, &record).unwrap());
                // Every strict prefix is incomplete, never a different record.
                for cut in 0..len {
                    prop_assert!(matches!(decode(version, &out[1..1 + cut]), Err(DecodeError::Incomplete) | Err(DecodeError::BadLength)));
                }
            }
        }

        #[test]
        fn any_flipped_bit_is_detected((kind, db, key, value, flags, cas, deadline) in mutation(), bit in any::<usize>()) {
            let members = members(collection_kind(kind), &value, cas);
            let record = Record::new(db, build(kind, &key, &value, &members, flags, cas, deadline));
            let mut out = Vec::new();
            encode(&record, &mut out).unwrap();
            let bit = bit % (out.len() * 8);
            out[bit / 8] ^= 1 << (bit % 8);
            // A flip in the length may make the frame look longer (incomplete) or impossible;
            // anywhere else the checksum catches it. It never decodes to a record.
            prop_assert!(decode(Version::V2, &out).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(Version::V1, &bytes);
            let _ = decode(Version::V2, &bytes);
        }

        #[test]
        fn a_decoded_payload_encodes_back_to_its_bytes(
            version in prop_oneof![Just(Version::V1), Just(Version::V2)],
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            // The fuzz target `journal_payload` checks the same on libFuzzer's inputs.
            if let Ok(record) = decode_payload(version, &bytes) {
                let mut again = Vec::new();
                encode_payload(version, &record, &mut again).unwrap();
                prop_assert_eq!(again, bytes);
            }
        }

        #[test]
        fn members_valid_accepts_what_the_store_decodes(
            kind in 4u8..7,
            value in proptest::collection::vec(any::<u8>(), 0..100),
            cas in any::<u64>(),
            flip in any::<usize>(),
            cut in any::<usize>(),
        ) {
            // Valid encodings, then damaged ones (a flipped bit, a cut): the journal's cheap
            // check and the store's decoder must agree on each.
            let kind = collection_kind(kind);
            let mut bytes = members(kind, &value, cas);
            prop_assert!(members_valid(kind, &bytes));
            if !bytes.is_empty() {
                let bit = flip % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
                prop_assert_eq!(members_valid(kind, &bytes), Value::decode(kind, &bytes).is_some());
                bytes.truncate(cut % bytes.len());
                prop_assert_eq!(members_valid(kind, &bytes), Value::decode(kind, &bytes).is_some());
            }
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

    /// A set whose members encode to exactly `total` bytes, in elements of `element` bytes
    /// of encoding each (the last one takes the remainder).
    fn set_members(total: usize, element: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(total);
        let mut i = 0u32;
        while out.len() < total {
            let len = (total - out.len()).min(element) - 4;
            out.extend_from_slice(&(len as u32).to_le_bytes());
            let start = out.len();
            out.resize(start + len, 0);
            let tag = i.to_le_bytes();
            let n = tag.len().min(len);
            out[start..start + n].copy_from_slice(&tag[..n]);
            i += 1;
        }
        out
    }

    fn frames(version: Version, bytes: &[u8]) -> Vec<Record<'_>> {
        let mut records = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (record, len) = decode(version, rest).unwrap();
            records.push(record);
            rest = &rest[len..];
        }
        records
    }

    #[test]
    fn a_marks_record_is_exact_and_v2_only() {
        let record = Record::new(
            3,
            Mutation::Marks {
                key: b"k",
                cas: 0x0102_0304_0506_0708,
                stale: true,
                recache_taken: false,
            },
        );
        let mut payload = Vec::new();
        encode_payload(Version::V2, &record, &mut payload).unwrap();
        assert_eq!(
            payload,
            [
                &[MARKS, 3, 1, 0, 0, 0, b'k'][..],
                &[8, 7, 6, 5, 4, 3, 2, 1, MARK_STALE]
            ]
            .concat()
        );
        assert_eq!(decode_payload(Version::V2, &payload), Ok(record));
        // Mark bits this build does not know, a missing mark byte, one too many, or a V1
        // file are a format this build does not know: refused, never guessed.
        let last = payload.len() - 1;
        for bad in [
            [&payload[..last], &[4][..]].concat(),
            payload[..last].to_vec(),
            [&payload[..], &[0][..]].concat(),
        ] {
            assert_eq!(
                decode_payload(Version::V2, &bad),
                Err(DecodeError::Malformed)
            );
        }
        assert_eq!(
            decode_payload(Version::V1, &payload),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            encode_payload(Version::V1, &record, &mut Vec::new()),
            Err(EncodeError::Invalid)
        );
    }

    #[test]
    fn a_large_list_is_written_in_parts_that_assemble_to_the_same_list() {
        // Three parts' worth of elements; the version leads the first part only.
        let element = vec![7u8; 1 << 20];
        let mut members = Vec::new();
        members.extend_from_slice(&8u32.to_le_bytes());
        members.extend_from_slice(&42u64.to_le_bytes());
        for _ in 0..20 {
            members.extend_from_slice(&(element.len() as u32).to_le_bytes());
            members.extend_from_slice(&element);
        }
        let whole = Value::decode(Kind::List, &members).expect("a list encoding");
        let record = Record::new(
            0,
            Mutation::PutCollection {
                key: b"l",
                kind: Kind::List,
                members: &members,
                deadline: None,
            },
        );
        let mut out = Vec::new();
        encode(&record, &mut out).unwrap();
        let records = frames(Version::V2, &out);
        assert!(records.len() >= 3, "{} parts", records.len());
        let mut assembled = None;
        let mut assembler = crate::assemble::Assembler::new();
        for part in records {
            assembler.push(part, |_, m| {
                if let Mutation::PutCollection { kind, members, .. } = m {
                    assembled = Value::decode(*kind, members);
                }
            });
        }
        let Some(Value::List(list)) = assembled else {
            panic!("the parts did not assemble to a list");
        };
        assert_eq!((list.version(), list.len()), (42, 20));
        assert_eq!(Some(Value::List(list)), Some(whole));
    }

    #[test]
    fn a_large_stream_is_written_in_parts_that_assemble_to_the_same_stream() {
        use sessiond_store::{Bytes, Stream, StreamId, StreamOp};
        // Twenty entries of 1 MiB and a group: several parts, the header in the first only.
        let mut stream = Stream::default();
        for i in 1..=20 {
            let op = StreamOp::Add {
                id: StreamId::new(i, 0),
                node: i / 3,
                fields: vec![
                    Bytes::from_static(b"f"),
                    Bytes::from(vec![i as u8; 1 << 20]),
                ],
            };
            stream.apply(&op).unwrap();
        }
        stream
            .apply(&StreamOp::GroupCreate {
                name: Bytes::from_static(b"g"),
                last: StreamId::new(3, 0),
                entries_read: Some(3),
            })
            .unwrap();
        let whole = Value::Stream(std::sync::Arc::new(stream));
        let mut members = Vec::new();
        whole.encode_members(&mut members);
        let record = Record::new(
            0,
            Mutation::PutCollection {
                key: b"s",
                kind: Kind::Stream,
                members: &members,
                deadline: None,
            },
        );
        let mut out = Vec::new();
        encode(&record, &mut out).unwrap();
        let records = frames(Version::V2, &out);
        assert!(records.len() >= 3, "{} parts", records.len());
        let mut assembled = None;
        let mut assembler = crate::assemble::Assembler::new();
        for part in records {
            assembler.push(part, |_, m| {
                if let Mutation::PutCollection { kind, members, .. } = m {
                    assembled = Value::decode(*kind, members);
                }
            });
        }
        assert_eq!(assembled, Some(whole));
    }

    #[test]
    fn stream_records_round_trip_in_v2_are_refused_in_v1_and_checked_on_decode() {
        use sessiond_store::{Bytes, Stream, StreamId, StreamOp};
        let mut stream = Stream::default();
        let add = StreamOp::Add {
            id: StreamId::new(1, 2),
            node: 0,
            fields: vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")],
        };
        stream.apply(&add).unwrap();
        let mut op = Vec::new();
        add.encode(&mut op);
        let mut whole = Vec::new();
        Value::Stream(std::sync::Arc::new(stream)).encode_members(&mut whole);
        for mutation in [
            Mutation::Element {
                key: b"k",
                op: ElementOp::Stream {
                    op: &op,
                    version: 7,
                },
            },
            Mutation::PutCollection {
                key: b"k",
                kind: Kind::Stream,
                members: &whole,
                deadline: Some(9),
            },
        ] {
            let record = Record::new(1, mutation);
            let mut out = Vec::new();
            encode(&record, &mut out).unwrap();
            let (decoded, used) = decode(Version::V2, &out).unwrap();
            assert_eq!((decoded, used), (record, out.len()));
            let mut v1 = Vec::new();
            assert_eq!(
                encode_frame(Version::V1, &record, &mut v1),
                Err(EncodeError::Invalid)
            );
            // Truncated anywhere: refused, never a panic.
            let payload = out[HEADER_LEN..].to_vec();
            for cut in 0..payload.len() {
                assert!(decode_payload(Version::V2, &payload[..cut]).is_err());
            }
        }
        // An op the store cannot read is refused on write and on read.
        let bad = [99u8, 1, 2];
        let record = Record::new(
            0,
            Mutation::Element {
                key: b"k",
                op: ElementOp::Stream {
                    op: &bad,
                    version: 1,
                },
            },
        );
        assert_eq!(encode(&record, &mut Vec::new()), Err(EncodeError::Invalid));
        let mut forged = Vec::new();
        let good = Record::new(
            0,
            Mutation::Element {
                key: b"k",
                op: ElementOp::Stream {
                    op: &op,
                    version: 1,
                },
            },
        );
        encode(&good, &mut forged).unwrap();
        let mut payload = forged[HEADER_LEN..].to_vec();
        let tag_at = 2 + 4 + 1 + 1 + 8 + 4;
        payload[tag_at] = 99;
        assert_eq!(
            decode_payload(Version::V2, &payload),
            Err(DecodeError::Malformed)
        );
    }

    #[test]
    fn list_records_round_trip_in_v2_and_are_refused_in_v1() {
        let item = &b"element"[..];
        let mut whole = Vec::new();
        // An empty list encodes its version only; the store never journals one, but the
        // encoding must still be valid.
        Value::empty(Kind::List).encode_members(&mut whole);
        let ops = [
            ElementOp::ListPush {
                end: End::Left,
                item,
                version: 1,
            },
            ElementOp::ListPush {
                end: End::Right,
                item: b"",
                version: u64::MAX,
            },
            ElementOp::ListPop {
                end: End::Right,
                count: 3,
                version: 2,
            },
            ElementOp::ListSet {
                index: 7,
                item,
                version: 3,
            },
            ElementOp::ListInsert {
                index: 0,
                item,
                version: 4,
            },
            ElementOp::ListRem {
                count: -2,
                item,
                version: 5,
            },
            ElementOp::ListTrim {
                start: 1,
                end: 9,
                version: 6,
            },
        ];
        let mut mutations: Vec<Mutation<'_>> = ops
            .iter()
            .map(|op| Mutation::Element { key: b"k", op: *op })
            .collect();
        mutations.push(Mutation::PutCollection {
            key: b"k",
            kind: Kind::List,
            members: &whole,
            deadline: Some(9),
        });
        for mutation in mutations {
            let record = Record::new(2, mutation);
            let mut out = Vec::new();
            encode(&record, &mut out).unwrap();
            let (decoded, used) = decode(Version::V2, &out).unwrap();
            assert_eq!((decoded, used), (record, out.len()));
            let mut v1 = Vec::new();
            assert_eq!(
                encode_frame(Version::V1, &record, &mut v1),
                Err(EncodeError::Invalid),
                "{mutation:?} written as V1"
            );
        }
        // Unknown ends and truncated fields are refused, never a panic.
        let mut out = Vec::new();
        encode(
            &Record::new(
                0,
                Mutation::Element {
                    key: b"k",
                    op: ops[0],
                },
            ),
            &mut out,
        )
        .unwrap();
        let payload = out[HEADER_LEN..].to_vec();
        let mut bad_end = payload.clone();
        bad_end[2 + 4 + 1 + 1] = 9;
        assert_eq!(
            decode_payload(Version::V2, &bad_end),
            Err(DecodeError::Malformed)
        );
        for cut in 0..payload.len() {
            assert!(decode_payload(Version::V2, &payload[..cut]).is_err());
        }
    }

    #[test]
    fn keys_longer_than_a_u16_survive_in_v2_and_are_refused_in_v1() {
        // 65,536 is the smallest RESP bulk limit (max(--max-item-size, 64 KiB)), so it is a
        // key length any configuration accepts; V1 cut it to 65,535 bytes.
        for len in [u16::MAX as usize, u16::MAX as usize + 1, 1 << 20] {
            let key: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let record = Record::new(
                3,
                Mutation::Put {
                    key: &key,
                    value: b"v",
                    flags: 1,
                    cas: 2,
                    deadline: Some(9),
                },
            );
            let mut out = Vec::new();
            encode(&record, &mut out).unwrap();
            assert_eq!(frames(Version::V2, &out), vec![record]);
            let mut v1 = vec![1, 2];
            let result = encode_frame(Version::V1, &record, &mut v1);
            if len <= u16::MAX as usize {
                assert_eq!(result, Ok(()));
                assert_eq!(frames(Version::V1, &v1[2..]), vec![record]);
            } else {
                assert_eq!(result, Err(EncodeError::KeyTooLong));
                assert_eq!(v1, vec![1, 2], "nothing written on refusal");
            }
        }
    }

    #[test]
    fn a_collection_up_to_part_bytes_is_one_record_and_a_larger_one_is_parts() {
        let key = b"big".as_slice();
        for (total, element, parts) in [
            (PART_BYTES, 1 << 16, 1),
            (PART_BYTES + 1 + 4, 1 << 16, 2),
            (3 * PART_BYTES, 1000, 4),
            // One element larger than a part: a part of its own.
            (PART_BYTES + (1 << 20), PART_BYTES + (1 << 20), 1),
        ] {
            let members = set_members(total, element);
            assert_eq!(members.len(), total);
            let record = Record::new(
                1,
                Mutation::PutCollection {
                    key,
                    kind: Kind::Set,
                    members: &members,
                    deadline: Some(5),
                },
            );
            let mut out = Vec::new();
            encode(&record, &mut out).unwrap();
            let records = frames(Version::V2, &out);
            assert_eq!(
                records.len(),
                parts,
                "{total} bytes of {element}-byte elements"
            );
            let mut joined = Vec::new();
            for (i, part) in records.iter().enumerate() {
                assert_eq!(part.continues, i + 1 < records.len());
                let Mutation::PutCollection {
                    key: k,
                    kind,
                    members,
                    deadline,
                } = part.mutation
                else {
                    panic!("{part:?}");
                };
                assert_eq!((k, kind, deadline, part.db), (key, Kind::Set, Some(5), 1));
                assert!(
                    members.len() <= PART_BYTES.max(element),
                    "a part holds at most PART_BYTES or one element"
                );
                joined.extend_from_slice(members);
            }
            assert_eq!(joined, members);
        }
    }

    #[test]
    fn a_record_over_the_payload_limit_is_refused_and_nothing_is_written() {
        // vec![0; n] is a zeroed allocation the kernel maps lazily; the refusal comes before
        // anything is copied, so this never touches gigabytes.
        let value = vec![0u8; MAX_PAYLOAD];
        let record = Record::new(
            0,
            Mutation::Put {
                key: b"k",
                value: &value,
                flags: 0,
                cas: 1,
                deadline: None,
            },
        );
        let mut out = vec![7];
        assert_eq!(encode(&record, &mut out), Err(EncodeError::TooLarge));
        assert_eq!(out, vec![7]);
        // The largest payload that fits is written and read back.
        let fits = MAX_PAYLOAD - (2 + 4 + 1 + 4 + 8 + 8 + 4);
        let record = Record::new(
            0,
            Mutation::Put {
                key: b"k",
                value: &value[..fits],
                flags: 0,
                cas: 1,
                deadline: None,
            },
        );
        assert_eq!(payload_len(Version::V2, &record), Ok(MAX_PAYLOAD));
    }

    #[test]
    fn records_the_decoder_would_refuse_are_not_written() {
        let mut out = Vec::new();
        let nan = Record::new(
            0,
            Mutation::Element {
                key: b"z",
                op: ElementOp::ZSetAdd {
                    member: b"m",
                    score: f64::NAN,
                },
            },
        );
        assert_eq!(encode(&nan, &mut out), Err(EncodeError::Invalid));
        let string = Record::new(
            0,
            Mutation::PutCollection {
                key: b"s",
                kind: Kind::Str,
                members: b"",
                deadline: None,
            },
        );
        assert_eq!(encode(&string, &mut out), Err(EncodeError::Invalid));
        let bad = Record::new(
            0,
            Mutation::PutCollection {
                key: b"s",
                kind: Kind::Set,
                members: &[9, 0, 0, 0, 1],
                deadline: None,
            },
        );
        assert_eq!(encode(&bad, &mut out), Err(EncodeError::Invalid));
        let part = Record {
            continues: true,
            ..Record::new(
                0,
                Mutation::PutCollection {
                    key: b"s",
                    kind: Kind::Set,
                    members: b"",
                    deadline: None,
                },
            )
        };
        assert_eq!(
            encode_frame(Version::V1, &part, &mut out),
            Err(EncodeError::Invalid)
        );
        let not_collection = Record {
            continues: true,
            ..Record::new(0, Mutation::Remove { key: b"s" })
        };
        assert_eq!(encode(&not_collection, &mut out), Err(EncodeError::Invalid));
        assert!(out.is_empty());
    }
}
