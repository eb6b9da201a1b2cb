//! The on-disk format of sessiond's durability: journal records, file headers and the
//! manifest, as pure functions over bytes.
//!
//! A journal is a sequence of segment files (`journal-<id>.log`); a rewrite writes a
//! snapshot file (`snapshot-<id>.snap`) holding one `Put` record per live item; the
//! `MANIFEST` names the snapshot and the first segment to replay after it. Every file starts
//! with an 8-byte magic ([`SEGMENT_MAGIC`], [`SNAPSHOT_MAGIC`]) followed by records.
//!
//! A record ([`record`]) is `len: u32 LE | crc32(payload): u32 LE | payload`, where the
//! payload is a database index and a [`sessiond_store::Mutation`]. Mutations are idempotent
//! and carry absolute deadlines, so replaying never extends a TTL and a snapshot may overlap
//! the segments that follow it. A collection too large for one record is written as several
//! consecutive ones that replay applies only together ([`assemble`]).
//!
//! The magic's last byte is the file's format [`Version`]: a file is written in one version
//! from its first record to its last, this build writes [`Version::V2`] and reads both, and a
//! build that does not know a file's version refuses it at its header.
//!
//! Scanning ([`scan`]) tells a clean end, a torn tail (an incomplete last record, or a last
//! record whose checksum fails and which ends exactly at the end of the file) and corruption
//! (a bad record followed by more bytes) apart, with byte offsets, so the server can
//! truncate the first and refuse to start on the second.
//!
//! What this crate deliberately does not do: open files, fsync, spawn threads or read the
//! clock. The server's `durability` module does all of that.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod assemble;
pub mod manifest;
pub mod record;
pub mod scan;

/// The first 8 bytes of a segment file this build writes.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SSDJRNL2";
/// The first 8 bytes of a snapshot file this build writes.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"SSDSNAP2";
/// The first 8 bytes of a segment file of format [`Version::V1`] (read, never written).
pub const SEGMENT_MAGIC_V1: &[u8; 8] = b"SSDJRNL1";
/// The first 8 bytes of a snapshot file of format [`Version::V1`] (read, never written).
pub const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"SSDSNAP1";

/// A file's record format, named by the last byte of its magic.
///
/// - `V1`: keys carry a `u16` length, so a key longer than 65,535 bytes cannot be written
///   (the builds that wrote V1 cut such keys short, which is why V2 exists).
/// - `V2`: keys carry a `u32` length, and a collection may be written in parts
///   (record kind 7, see [`record`]).
///
/// The version is per file rather than per record so that a V1 file keeps meaning what it
/// meant; recovery never appends V2 records to a V1 segment (it starts a new segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The first format: `u16` key lengths.
    V1,
    /// `u32` key lengths and collections in parts.
    V2,
}

/// The version of a segment file whose first 8 bytes are `header`, if it is one.
pub fn segment_version(header: &[u8]) -> Option<Version> {
    match header {
        h if h == SEGMENT_MAGIC => Some(Version::V2),
        h if h == SEGMENT_MAGIC_V1 => Some(Version::V1),
        _ => None,
    }
}

/// The version of a snapshot file whose first 8 bytes are `header`, if it is one.
pub fn snapshot_version(header: &[u8]) -> Option<Version> {
    match header {
        h if h == SNAPSHOT_MAGIC => Some(Version::V2),
        h if h == SNAPSHOT_MAGIC_V1 => Some(Version::V1),
        _ => None,
    }
}

/// The file name of segment `id`.
pub fn segment_name(id: u64) -> String {
    format!("journal-{id:010}.log")
}

/// The file name of snapshot `id`.
pub fn snapshot_name(id: u64) -> String {
    format!("snapshot-{id:010}.snap")
}

/// Parses a segment file name back to its id.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("journal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Parses a snapshot file name back to its id.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    name.strip_prefix("snapshot-")?
        .strip_suffix(".snap")?
        .parse()
        .ok()
}
