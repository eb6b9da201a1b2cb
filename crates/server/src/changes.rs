//! Where every change the stores apply goes: the one observer of every store.
//!
//! A store reports each applied change (under the changed key's shard lock) and each key a
//! read found expired to its observer. The server's observer hands the change to the journal,
//! which makes it durable, and a lazy expiry to pub/sub, which publishes the `expired`
//! keyspace event (expiry is not journaled: the deadline already is). Both changes and
//! expiries also reach the `WATCH` registry (`pubsub.watches`), which fails the transactions
//! of connections watching the key (one atomic load when nothing is watched). Neither the journal nor
//! pub/sub knows the other, and neither holds the stores, so nothing here forms a cycle of
//! references: the stores hold their observer, and the observer holds the journal and the hub.

use std::sync::Arc;

use sessiond_store::{Mutation, Observer};

use crate::durability::Journal;
use crate::exec::resp::pubsub::{self, PubSub};

/// The observer of database `db`'s store.
pub(crate) struct ChangeObserver {
    db: u8,
    /// `None` in the glue's tests, which journal nothing.
    journal: Option<Arc<Journal>>,
    /// `None` where nobody can subscribe (the journal's own tests).
    pubsub: Option<Arc<PubSub>>,
}

impl ChangeObserver {
    /// The observer of database `db`, journaling into `journal` and publishing expiries on
    /// `pubsub`.
    pub fn shared(
        db: u8,
        journal: &Arc<Journal>,
        pubsub: Option<Arc<PubSub>>,
    ) -> Arc<dyn Observer> {
        Arc::new(ChangeObserver {
            db,
            journal: Some(journal.clone()),
            pubsub,
        })
    }

    /// The observer of database `db` with no journal, telling `pubsub` (the glue's tests).
    #[cfg(test)]
    pub fn unjournaled(db: u8, pubsub: Arc<PubSub>) -> Arc<dyn Observer> {
        Arc::new(ChangeObserver {
            db,
            journal: None,
            pubsub: Some(pubsub),
        })
    }
}

impl Observer for ChangeObserver {
    fn applied(&self, mutation: &Mutation<'_>, _now: u64) {
        if let Some(journal) = &self.journal {
            journal.append(self.db, mutation);
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
            }
        }
    }

    fn expired(&self, key: &[u8], _now: u64) {
        if let Some(pubsub) = &self.pubsub {
            pubsub.watches.touched(self.db as usize, key);
            pubsub.notify(self.db as usize, pubsub::EXPIRED, "expired", key);
        }
    }
}
