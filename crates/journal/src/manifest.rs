//! The manifest: which snapshot and which segments make up the current state.
//!
//! It is a small text file, replaced atomically (write a temporary file, fsync, rename,
//! fsync the directory), so a crash leaves either the old or the new one:
//!
//! ```text
//! sessiond-manifest 1
//! snapshot 12        (or: snapshot none)
//! first-segment 12
//! ```
//!
//! Recovery loads the snapshot, then replays every segment from `first-segment` on, in id
//! order. Segment ids must be contiguous from there; a gap means a lost file.

/// The parsed manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// The snapshot to load first, if any.
    pub snapshot: Option<u64>,
    /// The first segment to replay after it.
    pub first_segment: u64,
}

const HEADER: &str = "sessiond-manifest 1";

impl Manifest {
    /// The manifest of a fresh data directory.
    pub fn fresh() -> Manifest {
        Manifest {
            snapshot: None,
            first_segment: 1,
        }
    }

    /// The manifest's text.
    pub fn encode(&self) -> String {
        let snapshot = self
            .snapshot
            .map_or("none".to_string(), |id| id.to_string());
        format!(
            "{HEADER}\nsnapshot {snapshot}\nfirst-segment {}\n",
            self.first_segment
        )
    }

    /// Parses a manifest's text.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("the first line is not {HEADER:?}"));
        }
        let mut snapshot = None;
        let mut first_segment = None;
        for line in lines.filter(|l| !l.trim().is_empty()) {
            match line.split_once(' ') {
                Some(("snapshot", "none")) => snapshot = Some(None),
                Some(("snapshot", id)) => {
                    snapshot = Some(Some(
                        id.parse().map_err(|_| format!("bad snapshot id {id:?}"))?,
                    ))
                }
                Some(("first-segment", id)) => {
                    first_segment = Some(id.parse().map_err(|_| format!("bad segment id {id:?}"))?)
                }
                _ => return Err(format!("unknown line {line:?}")),
            }
        }
        Ok(Manifest {
            snapshot: snapshot.ok_or("no snapshot line")?,
            first_segment: first_segment.ok_or("no first-segment line")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        for m in [
            Manifest::fresh(),
            Manifest {
                snapshot: Some(7),
                first_segment: 7,
            },
        ] {
            assert_eq!(Manifest::parse(&m.encode()), Ok(m));
        }
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("sessiond-manifest 1\nsnapshot x\nfirst-segment 1\n").is_err());
        assert!(Manifest::parse("sessiond-manifest 1\nfirst-segment 1\n").is_err());
    }
}
