//! The per-user index: which sessions exist, whose they are, and the counts.
//!
//! A plain data structure with no locking, clock or protocol of its own: the stores'
//! observer ([`super::Sessions`]) feeds it every change to a session key, under that key's
//! shard lock and its own mutex, so it is never behind the store. Nothing here is journaled:
//! after a restart it is rebuilt from the recovered keyspace.
//!
//! A session is named by its database and key. Per session it keeps the family, the user
//! (if the value names one) and four times: created, last written, last seen (a read or a
//! touch) and the deadline. Per user it keeps the set of that user's sessions and how many
//! of them each family holds, so the counts of sessions and of distinct users, in all and
//! per family, are O(1) and a user's sessions are found without a scan.
//!
//! Memory is estimated, not measured, like the store's budget: [`Index::bytes`] is what the
//! server charges to the budget (`DerivedCharge`).

use std::sync::Arc;

use hashbrown::{Equivalent, HashMap, HashSet};

/// Bytes charged per session on top of its key: the entry in `sessions` (the key's `Arc`
/// header, the metadata, the table slot at hashbrown's load factor) and its slot in the
/// user's set.
pub const SESSION_OVERHEAD: u64 = 176;
/// Bytes charged per user on top of the id: the map entry, the `Arc<str>`, the set's and
/// the family counts' first allocations.
pub const USER_OVERHEAD: u64 = 160;

/// A session's name: its database and key (the key one allocation shared by both maps).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName {
    /// The database.
    pub db: u8,
    /// The key.
    pub key: Arc<[u8]>,
}

/// A borrowed [`SessionName`], to look a session up without allocating (every read and
/// write of a session key does). Hashes exactly as the owned name does (the derives hash
/// the fields in the same order).
#[derive(Hash)]
pub struct Name<'a> {
    /// The database.
    pub db: u8,
    /// The key.
    pub key: &'a [u8],
}

impl Equivalent<SessionName> for Name<'_> {
    fn equivalent(&self, name: &SessionName) -> bool {
        self.db == name.db && self.key == &name.key[..]
    }
}

impl SessionName {
    /// This name, borrowed.
    pub fn as_name(&self) -> Name<'_> {
        Name {
            db: self.db,
            key: &self.key,
        }
    }
}

impl Name<'_> {
    fn to_owned(&self) -> SessionName {
        SessionName {
            db: self.db,
            key: self.key.into(),
        }
    }
}

/// What the index keeps about one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The family's position in the configured families.
    pub family: u16,
    /// The user the value names, if any.
    pub user: Option<Arc<str>>,
    /// When the key was created (Unix ms); after a restart, when it was recovered.
    pub created_at: u64,
    /// The last write.
    pub written_at: u64,
    /// The last read, touch or write.
    pub seen_at: u64,
    /// The deadline, if any.
    pub expires_at: Option<u64>,
}

/// What [`Index::put`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    /// The key was not a session before.
    pub created: bool,
    /// The user the session named before, if it changed.
    pub previous_user: Option<Arc<str>>,
}

/// Counts of sessions and of distinct users with at least one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sessions, with or without a user.
    pub sessions: u64,
    /// Distinct users.
    pub users: u64,
}

#[derive(Debug, Default)]
struct User {
    sessions: HashSet<SessionName>,
    /// Sessions per family, for the per-family user counts (a user is usually in one or two).
    families: Vec<(u16, u32)>,
}

/// The index. See the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    sessions: HashMap<SessionName, Meta>,
    users: HashMap<Arc<str>, User>,
    /// Per family: sessions and distinct users.
    families: Vec<Counts>,
    bytes: u64,
}

impl Index {
    /// An empty index for `families` families.
    pub fn new(families: usize) -> Index {
        Index {
            families: vec![Counts::default(); families],
            ..Index::default()
        }
    }

    /// The estimated bytes held (see the module documentation).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records a write of the session `name` of `family` naming `user`, with its deadline.
    pub fn put(
        &mut self,
        name: Name<'_>,
        family: u16,
        user: Option<&str>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Put {
        if let Some(meta) = self.sessions.get_mut(&name) {
            meta.written_at = now;
            meta.seen_at = now;
            meta.expires_at = expires_at;
            if meta.user.as_deref() == user {
                return Put {
                    created: false,
                    previous_user: None,
                };
            }
            let previous = meta.user.take();
            let (name, family) = self
                .sessions
                .get_key_value(&name)
                .map(|(name, meta)| (name.clone(), meta.family))
                .expect("just found");
            if let Some(previous) = &previous {
                self.unlink_user(previous, &name, family);
            }
            let user = user.map(|user| self.link_user(user, &name, family));
            self.sessions.get_mut(&name).expect("just found").user = user;
            return Put {
                created: false,
                previous_user: previous,
            };
        }
        let name = name.to_owned();
        let user = user.map(|user| self.link_user(user, &name, family));
        self.bytes += name.key.len() as u64 + SESSION_OVERHEAD;
        self.families[family as usize].sessions += 1;
        self.sessions.insert(
            name,
            Meta {
                family,
                user,
                created_at: now,
                written_at: now,
                seen_at: now,
                expires_at,
            },
        );
        Put {
            created: true,
            previous_user: None,
        }
    }

    /// Records a change of deadline (a touch), which also counts as seen.
    pub fn retime(&mut self, name: Name<'_>, expires_at: Option<u64>, now: u64) {
        if let Some(meta) = self.sessions.get_mut(&name) {
            meta.expires_at = expires_at;
            meta.seen_at = now;
        }
    }

    /// Records a write that changed the session's data but not its user (a hash field
    /// other than the one with the data).
    pub fn written(&mut self, name: Name<'_>, now: u64) {
        if let Some(meta) = self.sessions.get_mut(&name) {
            meta.written_at = now;
            meta.seen_at = now;
        }
    }

    /// Records a read.
    pub fn seen(&mut self, name: Name<'_>, now: u64) {
        if let Some(meta) = self.sessions.get_mut(&name) {
            meta.seen_at = now;
        }
    }

    /// Forgets the session `name` (deleted, expired, revoked, renamed away); returns what
    /// was known of it.
    pub fn remove(&mut self, name: Name<'_>) -> Option<Meta> {
        let (name, meta) = self.sessions.remove_entry(&name)?;
        self.bytes -= name.key.len() as u64 + SESSION_OVERHEAD;
        self.families[meta.family as usize].sessions -= 1;
        if let Some(user) = &meta.user {
            self.unlink_user(user, &name, meta.family);
        }
        Some(meta)
    }

    /// Forgets every session of database `db` (a flush).
    pub fn clear(&mut self, db: u8) {
        let names: Vec<SessionName> = self
            .sessions
            .keys()
            .filter(|name| name.db == db)
            .cloned()
            .collect();
        for name in names {
            self.remove(Name { db, key: &name.key });
        }
    }

    /// What is known of the session `name`.
    pub fn get(&self, name: Name<'_>) -> Option<&Meta> {
        self.sessions.get(&name)
    }

    /// The counts in all families, or in one.
    pub fn counts(&self, family: Option<u16>) -> Counts {
        match family {
            Some(family) => self.families[family as usize],
            None => Counts {
                sessions: self.sessions.len() as u64,
                users: self.users.len() as u64,
            },
        }
    }

    /// Sessions without a user never count as a user's; `family` narrows to one family.
    pub fn user_sessions(&self, user: &str, family: Option<u16>) -> Vec<(SessionName, Meta)> {
        let Some(entry) = self.users.get(user) else {
            return Vec::new();
        };
        let mut found: Vec<(SessionName, Meta)> = entry
            .sessions
            .iter()
            .filter_map(|name| {
                let meta = self.sessions.get(name)?;
                family
                    .is_none_or(|f| f == meta.family)
                    .then(|| (name.clone(), meta.clone()))
            })
            .collect();
        found.sort_by(|a, b| (a.1.created_at, &a.0).cmp(&(b.1.created_at, &b.0)));
        found
    }

    /// How many sessions `user` has in `family`.
    pub fn user_count(&self, user: &str, family: u16) -> u32 {
        self.users.get(user).map_or(0, |entry| {
            entry
                .families
                .iter()
                .find(|(f, _)| *f == family)
                .map_or(0, |(_, n)| *n)
        })
    }

    /// The oldest session of `user` in `family` other than `except`: the one a per-user
    /// limit revokes. Oldest by creation, then by the earliest deadline (after a restart
    /// every creation time is the recovery's), then by name, so the choice is stable.
    pub fn oldest(&self, user: &str, family: u16, except: Name<'_>) -> Option<SessionName> {
        let entry = self.users.get(user)?;
        entry
            .sessions
            .iter()
            .filter(|name| !except.equivalent(*name))
            .filter_map(|name| self.sessions.get(name).map(|meta| (name, meta)))
            .filter(|(_, meta)| meta.family == family)
            .min_by(|(a, am), (b, bm)| {
                (am.created_at, am.expires_at.unwrap_or(u64::MAX), a).cmp(&(
                    bm.created_at,
                    bm.expires_at.unwrap_or(u64::MAX),
                    b,
                ))
            })
            .map(|(name, _)| name.clone())
    }

    /// Every session, for a comparison with the store in tests.
    #[cfg(test)]
    pub fn all(&self) -> Vec<(SessionName, Meta)> {
        let mut all: Vec<_> = self
            .sessions
            .iter()
            .map(|(name, meta)| (name.clone(), meta.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn link_user(&mut self, user: &str, name: &SessionName, family: u16) -> Arc<str> {
        let (id, entry) = match self.users.get_key_value(user) {
            Some((id, _)) => {
                let id = id.clone();
                let entry = self.users.get_mut(user).expect("just found");
                (id, entry)
            }
            None => {
                let id: Arc<str> = user.into();
                self.bytes += id.len() as u64 + USER_OVERHEAD;
                let entry = self.users.entry(id.clone()).or_default();
                (id, entry)
            }
        };
        entry.sessions.insert(name.clone());
        match entry.families.iter_mut().find(|(f, _)| *f == family) {
            Some((_, n)) => *n += 1,
            None => {
                entry.families.push((family, 1));
                self.families[family as usize].users += 1;
            }
        }
        id
    }

    fn unlink_user(&mut self, user: &str, name: &SessionName, family: u16) {
        let Some(entry) = self.users.get_mut(user) else {
            return;
        };
        entry.sessions.remove(name);
        if let Some(i) = entry.families.iter().position(|(f, _)| *f == family) {
            entry.families[i].1 -= 1;
            if entry.families[i].1 == 0 {
                entry.families.swap_remove(i);
                self.families[family as usize].users -= 1;
            }
        }
        if entry.sessions.is_empty() {
            self.users.remove(user);
            self.bytes -= user.len() as u64 + USER_OVERHEAD;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(db: u8, key: &[u8]) -> SessionName {
        SessionName {
            db,
            key: key.into(),
        }
    }

    #[test]
    fn counts_follow_logins_logouts_and_a_change_of_user() {
        let mut index = Index::new(2);
        let a = name(0, b"memc.sess.key.a");
        let b = name(0, b"memc.sess.key.b");
        let c = name(0, b"sess:c");
        assert!(
            index.put(a.as_name(), 0, None, Some(100), 1).created,
            "anonymous"
        );
        assert_eq!(
            index.counts(None),
            Counts {
                sessions: 1,
                users: 0
            }
        );
        let put = index.put(a.as_name(), 0, Some("42"), Some(100), 2);
        assert_eq!((put.created, put.previous_user), (false, None));
        index.put(b.as_name(), 0, Some("42"), None, 3);
        index.put(c.as_name(), 1, Some("42"), None, 4);
        assert_eq!(
            index.counts(None),
            Counts {
                sessions: 3,
                users: 1
            }
        );
        assert_eq!(
            index.counts(Some(0)),
            Counts {
                sessions: 2,
                users: 1
            }
        );
        assert_eq!(
            index.counts(Some(1)),
            Counts {
                sessions: 1,
                users: 1
            }
        );
        assert_eq!(index.user_count("42", 0), 2);
        let listed: Vec<_> = index
            .user_sessions("42", None)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(listed, [a.clone(), b.clone(), c.clone()], "oldest first");
        assert_eq!(index.oldest("42", 0, b.as_name()), Some(a.clone()));
        // Logging in as someone else on session b moves it.
        let put = index.put(b.as_name(), 0, Some("7"), None, 5);
        assert_eq!(put.previous_user.as_deref(), Some("42"));
        assert_eq!(
            index.counts(None),
            Counts {
                sessions: 3,
                users: 2
            }
        );
        assert_eq!(
            index.counts(Some(0)),
            Counts {
                sessions: 2,
                users: 2
            }
        );
        index.remove(a.as_name());
        index.remove(c.as_name());
        index.remove(b.as_name());
        assert_eq!(index.counts(None), Counts::default());
        assert_eq!(index.counts(Some(0)), Counts::default());
        assert_eq!(index.bytes(), 0, "every byte given back");
    }

    #[test]
    fn times_are_kept_per_session_and_a_flush_is_per_database() {
        let mut index = Index::new(1);
        let a = name(0, b"k");
        let b = name(1, b"k");
        index.put(a.as_name(), 0, Some("u"), Some(50), 10);
        index.put(b.as_name(), 0, Some("u"), Some(50), 11);
        index.seen(a.as_name(), 20);
        index.retime(a.as_name(), Some(90), 30);
        index.written(a.as_name(), 40);
        let meta = index.get(a.as_name()).unwrap();
        assert_eq!(
            (
                meta.created_at,
                meta.written_at,
                meta.seen_at,
                meta.expires_at
            ),
            (10, 40, 40, Some(90))
        );
        index.clear(0);
        assert!(index.get(a.as_name()).is_none() && index.get(b.as_name()).is_some());
        assert_eq!(
            index.counts(None),
            Counts {
                sessions: 1,
                users: 1
            }
        );
    }
}
