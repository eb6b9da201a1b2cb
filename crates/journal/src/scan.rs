//! Reading a run of records back, and telling a torn tail from corruption.
//!
//! [`scan`] is fed a file's bytes chunk by chunk (so a multi-gigabyte snapshot never has to
//! be in memory at once) and hands every valid record to a callback. It stops at:
//! - the clean end of the file;
//! - a **torn tail**: the file ends inside a record, or its very last record fails its
//!   checksum, or only zero bytes follow (space that was allocated but never written). These
//!   are what a crash during an append leaves; the caller truncates the file there;
//! - **corruption**: a record that fails its checksum (or has an impossible length) with
//!   more data after it. A crash cannot produce that, so the caller refuses to start unless
//!   told to drop everything from that offset on.

use crate::Version;
use crate::record::{self, DecodeError, Record};

/// Where a scan of one chunk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The chunk ended inside a record: feed more bytes, starting at the first unconsumed one.
    NeedMore,
    /// The file ended after a whole record.
    Clean,
    /// The file ends with a torn record starting at this offset (relative to the chunk).
    Torn {
        /// Offset of the torn record's first byte, relative to the chunk.
        at: usize,
    },
    /// A damaged record, followed by more bytes, starts at this offset (relative to the chunk).
    Corrupt {
        /// Offset of the damaged record's first byte, relative to the chunk.
        at: usize,
        /// What was wrong with it.
        error: DecodeError,
    },
}

/// Scans `chunk` of a file in format `version`, calling `on_record` for each whole, valid
/// record in order. `at_eof` says whether the chunk reaches the end of the file. Returns how
/// many bytes were consumed (whole records) and why it stopped.
pub fn scan(
    version: Version,
    chunk: &[u8],
    at_eof: bool,
    mut on_record: impl FnMut(Record<'_>),
) -> (usize, Stop) {
    let mut pos = 0;
    loop {
        let rest = &chunk[pos..];
        if rest.is_empty() {
            return (pos, if at_eof { Stop::Clean } else { Stop::NeedMore });
        }
        match record::decode(version, rest) {
            Ok((record, len)) => {
                on_record(record);
                pos += len;
            }
            Err(DecodeError::Incomplete) => {
                return (
                    pos,
                    if at_eof {
                        Stop::Torn { at: pos }
                    } else {
                        Stop::NeedMore
                    },
                );
            }
            Err(error) => {
                let tail_is_torn = at_eof
                    && (rest.iter().all(|&b| b == 0)
                        || record::frame_len(rest).ok().flatten() == Some(rest.len()));
                return if tail_is_torn {
                    (pos, Stop::Torn { at: pos })
                } else if !at_eof && error != DecodeError::BadLength && frame_len_reaches_end(rest)
                {
                    // The bad record may be the file's last one: decide once the end is known.
                    (pos, Stop::NeedMore)
                } else {
                    (pos, Stop::Corrupt { at: pos, error })
                };
            }
        }
    }
}

/// Whether the record at the start of `rest` ends exactly where `rest` does, so that whether
/// it is the file's last record cannot be known yet.
fn frame_len_reaches_end(rest: &[u8]) -> bool {
    record::frame_len(rest).ok().flatten() == Some(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::Mutation;

    fn records(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for i in 0..n {
            let key = format!("key{i}");
            let value = vec![i as u8; i * 7];
            let mutation = match i % 3 {
                0 => Mutation::Put {
                    key: key.as_bytes(),
                    value: &value,
                    flags: i as u32,
                    cas: i as u64,
                    deadline: Some(1 + i as u64),
                },
                1 => Mutation::Deadline {
                    key: key.as_bytes(),
                    deadline: None,
                },
                _ => Mutation::Remove {
                    key: key.as_bytes(),
                },
            };
            record::encode(&Record::new(0, mutation), &mut out).unwrap();
            ends.push(out.len());
        }
        (out, ends)
    }

    fn count(chunk: &[u8], at_eof: bool) -> (usize, Stop, usize) {
        let mut n = 0;
        let (consumed, stop) = scan(Version::V2, chunk, at_eof, |_| n += 1);
        (consumed, stop, n)
    }

    #[test]
    fn a_cut_at_every_offset_of_the_last_records_gives_a_valid_prefix() {
        let (bytes, ends) = records(12);
        let first_of_tail = ends[8];
        for cut in first_of_tail..=bytes.len() {
            let (consumed, stop, n) = count(&bytes[..cut], true);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(n, whole, "cut at {cut}");
            assert_eq!(consumed, if whole == 0 { 0 } else { ends[whole - 1] });
            if cut == consumed {
                assert_eq!(stop, Stop::Clean);
            } else {
                assert_eq!(stop, Stop::Torn { at: consumed }, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_damaged_last_record_is_torn_but_a_damaged_middle_record_is_corruption() {
        let (mut bytes, ends) = records(6);
        let last = ends[4];
        bytes[last + 10] ^= 0xff;
        assert_eq!(count(&bytes, true), (last, Stop::Torn { at: last }, 5));

        let (mut bytes, ends) = records(6);
        bytes[ends[1] + 9] ^= 0xff;
        let (consumed, stop, n) = count(&bytes, true);
        assert_eq!((consumed, n), (ends[1], 2));
        assert!(
            matches!(stop, Stop::Corrupt { at, error: DecodeError::Checksum } if at == ends[1])
        );
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let (mut bytes, ends) = records(3);
        bytes.extend_from_slice(&[0; 4096]);
        assert_eq!(
            count(&bytes, true),
            (ends[2], Stop::Torn { at: ends[2] }, 3)
        );
    }

    #[test]
    fn chunked_scanning_sees_the_same_records() {
        let (bytes, ends) = records(50);
        for chunk_size in [1, 7, 64, 1000] {
            let mut seen = 0;
            let mut start = 0;
            let mut buf: Vec<u8> = Vec::new();
            let mut offset = 0;
            loop {
                let end = (offset + chunk_size).min(bytes.len());
                buf.extend_from_slice(&bytes[offset..end]);
                offset = end;
                let at_eof = offset == bytes.len();
                let (consumed, stop) = scan(Version::V2, &buf, at_eof, |_| seen += 1);
                start += consumed;
                buf.drain(..consumed);
                match stop {
                    Stop::NeedMore => continue,
                    Stop::Clean => break,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!((seen, start), (50, *ends.last().unwrap()));
        }
    }
}
