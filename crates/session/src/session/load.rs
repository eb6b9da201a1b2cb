//! Loading a session on its first use: from the id the client sent to a [`Loaded`] state.
//!
//! The outcome is either a stored session or none at all. An id that is malformed, unknown,
//! expired, or forwards past its grace window gives no session (a fresh one is created with
//! the first value), and is counted and logged under a salted hash, never raw. A replaced id
//! within its grace window follows the forwarding pointer to the record that replaced it.

use crate::id::SessionId;
use crate::metrics::inc;
use crate::store::{MovedTo, Record, Versioned};

use super::state::{Backing, ClientId, Loaded, Stored};
use super::{Session, SessionError};

/// How many forwarding pointers a load follows (an id cycled twice within one grace window
/// needs two).
pub(super) const MAX_HOPS: usize = 3;

impl Session {
    /// Loads the session the client's id names. See the crate docs for the rules.
    pub(super) async fn load(&self) -> Result<Loaded, SessionError> {
        let now = self.now();
        let absent = Loaded::new(Backing::Absent { adopt: None });
        let Some(raw) = self.inner.incoming.clone() else {
            return Ok(absent);
        };
        let Some(sent) = SessionId::parse(&raw) else {
            inc(&self.metrics().malformed_ids);
            tracing::warn!(
                id_hash = %self.config().log_hasher.hash_str(&raw),
                "malformed session id; issuing a fresh session"
            );
            return Ok(absent);
        };
        let mut current = sent.clone();
        let mut fresh_read = false;
        let mut hops = 0;
        loop {
            let loaded = if fresh_read {
                self.store().load_fresh(&current).await?
            } else {
                self.store().load(&current).await?
            };
            let Some(Versioned { record, version }) = loaded else {
                // After a hop, the session the old id pointed to has ended meanwhile: not
                // suspicious, just over.
                return Ok(if hops == 0 {
                    self.unknown(&sent)
                } else {
                    absent
                });
            };
            if let Some(MovedTo { id, at }) = &record.moved_to {
                let grace = self.config().grace_period.as_millis() as u64;
                match SessionId::parse(id) {
                    Some(next) if now < at.saturating_add(grace) && hops < MAX_HOPS => {
                        if hops == 0 {
                            inc(&self.metrics().grace_hits);
                        }
                        current = next;
                        hops += 1;
                        continue;
                    }
                    _ => return Ok(self.unknown(&sent)),
                }
            }
            if let Some(reason) = self.expired(&record, now) {
                if !fresh_read {
                    // A cache may hold an old last_active_at; only the store itself may end a
                    // session.
                    fresh_read = true;
                    continue;
                }
                // Remove it now so that no other node or store TTL lets it live on.
                self.store().delete(&current).await?;
                inc(&self.metrics().expired);
                tracing::info!(id_hash = %self.hash(&current), reason, "session expired");
                return Ok(absent);
            }
            // A forwarded request sees a record whose id was just issued, so renewal is never
            // due there; no special case needed.
            let renew_due = self
                .config()
                .renewal_timeout
                .is_some_and(|r| now >= record.id_issued_at.saturating_add(r.as_millis() as u64));
            let data = record.data.clone();
            let mut loaded = Loaded::new(Backing::Stored(Stored {
                id: current,
                version,
                base: record,
                ops: Vec::new(),
                cycle: renew_due,
                client: if hops > 0 {
                    ClientId::Forwarded
                } else {
                    ClientId::Sent
                },
            }));
            loaded.data = data;
            return Ok(loaded);
        }
    }

    /// No session for an id the store does not know (forged, guessed, or expired and
    /// collected). In non-strict mode the id is kept to be adopted by the new session.
    fn unknown(&self, sent: &SessionId) -> Loaded {
        inc(&self.metrics().unknown_ids);
        tracing::warn!(
            id_hash = %self.hash(sent),
            "unknown session id (forged, guessed, or expired); issuing a fresh session"
        );
        let adopt = (!self.config().strict).then(|| sent.clone());
        Loaded::new(Backing::Absent { adopt })
    }

    /// Why `record` has ended at `now`, if it has.
    fn expired(&self, record: &Record, now: u64) -> Option<&'static str> {
        let c = self.config();
        if let Some(abs) = c.absolute_timeout
            && now >= record.created_at.saturating_add(abs.as_millis() as u64)
        {
            return Some("absolute");
        }
        if now
            >= record
                .last_active_at
                .saturating_add(c.idle_timeout.as_millis() as u64)
        {
            return Some("idle");
        }
        None
    }
}
