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
//! the segments that follow it.
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

pub mod manifest;
pub mod record;
pub mod scan;

/// The first 8 bytes of a segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SSDJRNL1";
/// The first 8 bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"SSDSNAP1";

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
