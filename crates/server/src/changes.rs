//! Where every change the stores apply goes: the one observer of every store.
//!
//! A store reports each applied change (under the changed key's shard lock), each key that
//! expired (found so by a read, or reclaimed by the expirer's sweep) and each read to its
//! observer. The server's observer hands the change to the journal, which makes it durable;
//! the change, the expiry and the read to the session layer (`sessions`), whose per-user
//! index is thereby updated in the same step as the store; and an expiry to pub/sub, which
//! publishes the `expired` keyspace event (expiry is not journaled: the deadline already
//! is). Changes and expiries also reach the `WATCH` registry (`pubsub.watches`), which fails
//! the transactions of connections watching the key (one atomic load when nothing is
//! watched), and a list created or pushed to reaches the blocked clients' registry
//! (`pubsub.blocking`), which files the key as ready (one atomic load when nobody waits). None of the journal, the session layer and pub/sub holds the stores, so
//! nothing here forms a cycle of references: the stores hold their observer, and the
//! observer holds the others.

use std::sync::Arc;

use sessiond_store::{ElementOp, Kind, Mutation, Observer};

use crate::durability::Journal;
use crate::exec::resp::pubsub::{self, PubSub};
use crate::sessions::Sessions;

/// The observer of database `db`'s store.
pub(crate) struct ChangeObserver {
    db: u8,
    /// `None` in the glue's tests, which journal nothing.
    journal: Option<Arc<Journal>>,
    /// `None` where nobody can subscribe (the journal's own tests).
    pubsub: Option<Arc<PubSub>>,
    /// The session layer; `None` when it is off.
    sessions: Option<Arc<Sessions>>,
}

impl ChangeObserver {
    /// The observer of database `db`, journaling into `journal` and publishing expiries on
    /// `pubsub`.
    pub fn shared(
        db: u8,
        journal: &Arc<Journal>,
        pubsub: Option<Arc<PubSub>>,
        sessions: Option<Arc<Sessions>>,
    ) -> Arc<dyn Observer> {
        Arc::new(ChangeObserver {
            db,
            journal: Some(journal.clone()),
            pubsub,
            sessions,
        })
    }

    /// The observer of database `db` with no journal, telling `pubsub` (the glue's tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn unjournaled(
        db: u8,
        pubsub: Arc<PubSub>,
        sessions: Option<Arc<Sessions>>,
    ) -> Arc<dyn Observer> {
        Arc::new(ChangeObserver {
            db,
            journal: None,
            pubsub: Some(pubsub),
            sessions,
        })
    }
}

impl Observer for ChangeObserver {
    fn applied(&self, mutation: &Mutation<'_>, now: u64) {
        if let Some(journal) = &self.journal {
            journal.append(self.db, mutation);
        }
        if let Some(sessions) = &self.sessions {
            sessions.applied(self.db, mutation, now);
        }
        if let Some(pubsub) = &self.pubsub {
            let watches = &pubsub.watches;
            match mutation {
                Mutation::Put { key, .. }
                | Mutation::PutCollection { key, .. }
                | Mutation::Element { key, .. }
                | Mutation::Remove { key }
                | Mutation::Revoke { key, .. }
                | Mutation::Deadline { key, .. } => watches.touched(self.db as usize, key),
                Mutation::Clear => watches.cleared(self.db as usize),
                // memcached's meta marks and CAS are invisible to RESP: a watched key's
                // value and deadline are unchanged.
                Mutation::Marks { .. } => {}
            }
            // A list or sorted set created (or renamed onto the key), pushed or added to may
            // wake a blocked pop.
            match mutation {
                Mutation::PutCollection {
                    key,
                    kind: Kind::List,
                    ..
                }
                | Mutation::PutCollection {
                    key,
                    kind: Kind::ZSet,
                    ..
                }
                | Mutation::Element {
                    key,
                    op: ElementOp::ListPush { .. } | ElementOp::ZSetAdd { .. },
                } => pubsub.blocking.touched(self.db as usize, key),
                // A stream waiter also wants to hear of its key's removal, overwrite or
                // group change (an `XREADGROUP` waiter then gets an error).
                Mutation::PutCollection { key, .. }
                | Mutation::Put { key, .. }
                | Mutation::Remove { key }
                | Mutation::Element {
                    key,
                    op: ElementOp::Stream { .. },
                } => pubsub.blocking.touched(self.db as usize, key),
                Mutation::Clear => pubsub.blocking.cleared(self.db as usize),
                _ => {}
            }
        }
    }

    fn expired(&self, key: &[u8], now: u64) {
        if let Some(sessions) = &self.sessions {
            sessions.expired(self.db, key, now);
        }
        if let Some(pubsub) = &self.pubsub {
            pubsub.watches.touched(self.db as usize, key);
            pubsub.notify(self.db as usize, pubsub::EXPIRED, "expired", key);
        }
    }

    fn read(&self, key: &[u8], now: u64) {
        if let Some(sessions) = &self.sessions {
            sessions.read(self.db, key, now);
        }
    }
}
