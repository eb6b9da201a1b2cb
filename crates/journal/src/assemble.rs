//! Replaying collections that were written in parts.
//!
//! [`crate::record::encode`] writes a collection larger than
//! [`crate::record::PART_BYTES`] as a run of records: parts that say more follows
//! ([`Record::continues`]), then an ordinary whole-collection record holding the last
//! elements. The parts of one collection are appended in one call, under the queue lock, so
//! they are contiguous in the file; only a crash can cut such a run short.
//!
//! An [`Assembler`] sits between the scan of one file and the store: it passes every
//! ordinary record through, holds parts back, and applies the collection only when its last
//! record arrives. A run that does not finish — the file ends, or any other record comes
//! next — is dropped whole, so replay never restores half a collection: the key keeps what
//! it held before, as for any record a crash cut off. Such a run is only ever the last thing
//! in a file (recovery starts a new segment rather than append after one), and dropping it
//! loses nothing acknowledged: its change was acknowledged only once all of it was written.

use sessiond_store::{Kind, Mutation};

use crate::record::Record;

/// The parts of one collection seen so far.
#[derive(Debug)]
struct Pending {
    db: u8,
    key: Vec<u8>,
    kind: Kind,
    deadline: Option<u64>,
    members: Vec<u8>,
}

impl Pending {
    fn continued_by(&self, db: u8, key: &[u8], kind: Kind, deadline: Option<u64>) -> bool {
        self.db == db && self.key == key && self.kind == kind && self.deadline == deadline
    }
}

/// Puts collections written in parts back together during the replay of one file; see the
/// module documentation. Use a new one (or call [`Assembler::finish`]) for each file.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: Option<Pending>,
    dropped: u64,
}

impl Assembler {
    /// An assembler with nothing pending.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Takes the file's next record and calls `apply` with the database and mutation of every
    /// change that is now complete: the record itself, or a whole collection when `record` is
    /// its last part, or nothing when it is a part that more parts follow.
    pub fn push(&mut self, record: Record<'_>, mut apply: impl FnMut(u8, &Mutation<'_>)) {
        let db = record.db;
        let Mutation::PutCollection {
            key,
            kind,
            members,
            deadline,
        } = record.mutation
        else {
            self.interrupt();
            apply(db, &record.mutation);
            return;
        };
        let pending = match self.pending.take() {
            Some(p) if p.continued_by(db, key, kind, deadline) => Some(p),
            Some(_) => {
                self.dropped += 1;
                None
            }
            None => None,
        };
        match (pending, record.continues) {
            (pending, true) => {
                let mut pending = pending.unwrap_or_else(|| Pending {
                    db,
                    key: key.to_vec(),
                    kind,
                    deadline,
                    members: Vec::new(),
                });
                pending.members.extend_from_slice(members);
                self.pending = Some(pending);
            }
            (Some(mut pending), false) => {
                // Each part is whole elements, so the concatenation is a valid encoding.
                pending.members.extend_from_slice(members);
                apply(
                    db,
                    &Mutation::PutCollection {
                        key,
                        kind,
                        members: &pending.members,
                        deadline,
                    },
                );
            }
            (None, false) => apply(db, &record.mutation),
        }
    }

    /// The end of the file: a run of parts still open here was cut short and is dropped.
    /// Returns whether one was.
    pub fn finish(&mut self) -> bool {
        let open = self.pending.take().is_some();
        if open {
            self.dropped += 1;
        }
        open
    }

    /// Runs of parts dropped so far, because another record or the end of the file came
    /// before their last part.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn interrupt(&mut self) {
        if self.pending.take().is_some() {
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;
    use crate::record::{self, PART_BYTES};
    use crate::scan::{Stop, scan};

    /// An owned copy of what the assembler applied.
    #[derive(Debug, PartialEq)]
    enum Applied {
        Collection(u8, Vec<u8>, Vec<u8>),
        Other(u8, String),
    }

    fn set(n: usize, member: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(&(member as u32).to_le_bytes());
            let start = out.len();
            out.resize(start + member, 0);
            out[start..start + 8].copy_from_slice(&(i as u64).to_le_bytes());
        }
        out
    }

    fn replay(bytes: &[u8]) -> (Vec<Applied>, Stop, bool, u64) {
        let mut assembler = Assembler::new();
        let mut applied = Vec::new();
        let (_, stop) = scan(Version::V2, bytes, true, |record| {
            assembler.push(record, |db, m| {
                applied.push(match *m {
                    Mutation::PutCollection { key, members, .. } => {
                        Applied::Collection(db, key.to_vec(), members.to_vec())
                    }
                    other => Applied::Other(db, format!("{other:?}")),
                })
            })
        });
        let open = assembler.finish();
        (applied, stop, open, assembler.dropped())
    }

    fn put_collection<'a>(key: &'a [u8], members: &'a [u8]) -> Record<'a> {
        Record::new(
            2,
            Mutation::PutCollection {
                key,
                kind: Kind::Set,
                members,
                deadline: None,
            },
        )
    }

    #[test]
    fn parts_are_applied_once_whole_and_a_cut_run_is_dropped_whole() {
        let big = set(3 * PART_BYTES / 1000, 996);
        let mut bytes = Vec::new();
        record::encode(&put_collection(b"before", b""), &mut bytes).unwrap();
        let run_start = bytes.len();
        record::encode(&put_collection(b"big", &big), &mut bytes).unwrap();
        let run_end = bytes.len();
        record::encode(
            &Record::new(2, Mutation::Remove { key: b"after" }),
            &mut bytes,
        )
        .unwrap();

        let (applied, stop, open, dropped) = replay(&bytes);
        assert_eq!((stop, open, dropped), (Stop::Clean, false, 0));
        assert_eq!(applied.len(), 3);
        assert_eq!(
            applied[1],
            Applied::Collection(2, b"big".to_vec(), big.clone())
        );

        // Cut anywhere inside the run (record boundaries included): the collection is never
        // applied, what precedes it is.
        let mut boundaries = Vec::new();
        let mut at = run_start;
        while at < run_end {
            let (_, len) = record::decode(Version::V2, &bytes[at..]).unwrap();
            at += len;
            boundaries.push(at);
        }
        assert!(boundaries.len() >= 3, "the run is several records");
        for cut in boundaries[..boundaries.len() - 1]
            .iter()
            .copied()
            .chain([run_start + 1, run_end - 1])
        {
            let (applied, _, open, _) = replay(&bytes[..cut]);
            assert_eq!(applied.len(), 1, "cut at {cut}");
            assert!(matches!(&applied[0], Applied::Collection(_, k, _) if k == b"before"));
            // Once a part is whole, the run is open at the end (the scan stops at the torn
            // record or the file's end); a cut inside the first part leaves nothing open.
            assert_eq!(open, cut >= boundaries[0], "cut at {cut}");
        }
    }

    #[test]
    fn a_run_interrupted_by_another_record_is_dropped() {
        let big = set(2 * PART_BYTES / 1000, 996);
        let mut run = Vec::new();
        record::encode(&put_collection(b"big", &big), &mut run).unwrap();
        let (_, first) = record::decode(Version::V2, &run).unwrap();
        // The first part of a run, then an unrelated record, then a whole small collection
        // under the same key: only the last two are applied.
        let mut bytes = run[..first].to_vec();
        record::encode(&Record::new(2, Mutation::Clear), &mut bytes).unwrap();
        record::encode(&put_collection(b"big", &big[..1000]), &mut bytes).unwrap();
        let (applied, stop, open, dropped) = replay(&bytes);
        assert_eq!((stop, open, dropped), (Stop::Clean, false, 1));
        assert_eq!(
            applied,
            vec![
                Applied::Other(2, "Clear".into()),
                Applied::Collection(2, b"big".to_vec(), big[..1000].to_vec())
            ]
        );
        // A part of another key interrupts too.
        let mut bytes = run[..first].to_vec();
        record::encode(&put_collection(b"other", &big), &mut bytes).unwrap();
        let (applied, _, open, dropped) = replay(&bytes);
        assert_eq!((open, dropped), (false, 1));
        assert_eq!(
            applied,
            vec![Applied::Collection(2, b"other".to_vec(), big.clone())]
        );
    }
}
