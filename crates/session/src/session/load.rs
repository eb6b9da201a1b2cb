//! Loading a session on its first use: from the id the client sent to a [`Loaded`] state.
//!
//! The outcome is either a stored session or none at all. An id that is malformed, unknown,
//! expired, names a record that is not a session (a `kind`, see [`Record::kind`]), or was
//! replaced longer ago than the grace window gives no session (a fresh one is created with the
//! first value), and is counted and logged under a salted hash, never raw. Inside the grace
//! window, an id replaced by renewal follows the forwarding pointer to the record that
//! replaced it, and an id retired by `cycle_id` shows its own pre-login state, read-only.

use crate::id::SessionId;
use crate::metrics::inc;
use crate::store::{MovedTo, Record, Versioned};

use super::state::{Backing, ClientId, Cycle, Loaded, Stored};
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
        let Some(sent) = self.config().id_format.parse(&raw) else {
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
            if !record.is_session() {
                // A revocation, a ticket or an index kept in the same store: never a session,
                // so its id may be neither read, written, touched nor deleted through the
                // layer (a logout must not delete a revocation).
                return Ok(self.foreign(&sent));
            }
            let grace = self.config().grace_period.as_millis() as u64;
            if let Some(MovedTo { id, at }) = &record.moved_to {
                match self.config().id_format.parse(id) {
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
            let retired = match record.retired_at {
                None => false,
                Some(at) if now < at.saturating_add(grace) => {
                    if hops == 0 {
                        inc(&self.metrics().grace_hits);
                    }
                    true
                }
                Some(_) => return Ok(self.unknown(&sent)),
            };
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
            // due there; a retired record is never renewed (it is not written at all).
            let renew_due = !retired
                && self.config().renewal_timeout.is_some_and(|r| {
                    now >= record.id_issued_at.saturating_add(r.as_millis() as u64)
                });
            let data = record.data.clone();
            let mut loaded = Loaded::new(Backing::Stored(Stored {
                id: current,
                version,
                base: record,
                ops: Vec::new(),
                cycle: if renew_due { Cycle::Renew } else { Cycle::No },
                retired,
                client: if hops > 0 || retired {
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

    /// No session for an id that names a record of another kind. Counted apart from unknown
    /// ids, since a well-formed id of a record that exists was most likely sent on purpose,
    /// and never adopted, even in non-strict mode.
    fn foreign(&self, sent: &SessionId) -> Loaded {
        inc(&self.metrics().foreign_ids);
        tracing::warn!(
            id_hash = %self.hash(sent),
            "session id names a record that is not a session; issuing a fresh session"
        );
        Loaded::new(Backing::Absent { adopt: None })
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
