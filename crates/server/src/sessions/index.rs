//! The per-user index: which sessions exist, whose they are, and the counts.
//!
//! No clock or protocol of its own: the stores' observer ([`super::Sessions`]) feeds it every
//! change to a session key under that key's shard lock, so it is never behind the store.
//! Nothing here is journaled: after a restart it is rebuilt from the recovered keyspace.
//!
//! Locking, chosen for the hot path (every read of a session marks it seen, every write
//! re-reads its user): the sessions are split over [`SHARDS`] mutexes by key hash, so two
//! worker threads rarely meet, and a read or a write that keeps its user touches only its
//! shard. The users (and the per-family user counts) sit behind one more mutex, taken only
//! when a session is created, removed or changes user. Lock order: a store shard, then a
//! session shard, then the users. Anything that needs sessions of several shards (a user's
//! listing) copies names out of the users first and then visits the shards one at a time.
//!
//! A session is named by its database and key. Per session it keeps the family, the user
//! (if the value names one) and four times: created, last written, last seen (a read or a
//! touch) and the deadline. Per user it keeps the set of that user's sessions and how many
//! of them each family holds, so the counts of sessions and of distinct users, in all and
//! per family, are O(1) and a user's sessions are found without a scan.
//!
//! Memory is estimated, not measured, like the store's budget: [`Index::bytes`] is what the
//! server charges to the budget (`DerivedCharge`).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::{Equivalent, HashMap};

/// Session shards: enough that two threads rarely contend.
pub const SHARDS: usize = 64;

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

/// A place in a user's sessions, in their listing's order (creation time, then name): a
/// page of the listing starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The creation time of the last session listed.
    pub created_at: u64,
    /// Its database.
    pub db: u8,
    /// Its key.
    pub key: Vec<u8>,
}

impl Position {
    /// Whether the session `name`, created at `created_at`, comes after this place.
    fn precedes(&self, created_at: u64, name: &SessionName) -> bool {
        (self.created_at, self.db, &self.key[..]) < (created_at, name.db, &name.key[..])
    }
}

/// A borrowed [`SessionName`], to look a session up without allocating (every read and
/// write of a session key does). Hashes exactly as the owned name does (the derives hash
/// the fields in the same order).
#[derive(Hash, Clone, Copy)]
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
    fn to_owned(self) -> SessionName {
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
    /// The session names a user it did not name before (created with one, logged in, or
    /// logged in as someone else): what a per-user limit checks.
    pub user_linked: bool,
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
    /// The user's sessions, each with its family and creation time (what a per-user limit
    /// needs to pick the oldest without visiting the session shards).
    sessions: HashMap<SessionName, (u16, u64)>,
    /// Sessions per family, for the per-family user counts (a user is usually in one or two).
    families: Vec<(u16, u32)>,
}

#[derive(Debug, Default)]
struct Users {
    map: HashMap<Arc<str>, User>,
    /// Distinct users per family.
    per_family: Vec<u64>,
}

/// The index. See the module documentation.
#[derive(Debug)]
pub struct Index {
    shards: Box<[Mutex<HashMap<SessionName, Meta>>]>,
    hasher: foldhash::fast::RandomState,
    users: Mutex<Users>,
    /// Sessions per family.
    family_sessions: Box<[AtomicU64]>,
    bytes: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data changed in small steps; a panic mid-step would be a bug here, and serving
    // on beats failing every later write.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Index {
    /// An empty index for `families` families.
    pub fn new(families: usize) -> Index {
        Index {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            users: Mutex::new(Users {
                map: HashMap::new(),
                per_family: vec![0; families],
            }),
            family_sessions: (0..families).map(|_| AtomicU64::new(0)).collect(),
            bytes: AtomicU64::new(0),
        }
    }

    fn shard(&self, name: Name<'_>) -> MutexGuard<'_, HashMap<SessionName, Meta>> {
        lock(&self.shards[self.hasher.hash_one(name.key) as usize % SHARDS])
    }

    /// The estimated bytes held (see the module documentation).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records a write of the session `name` of `family` naming `user`, with its deadline.
    pub fn put(
        &self,
        name: Name<'_>,
        family: u16,
        user: Option<&str>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Put {
        let mut shard = self.shard(name);
        if let Some((owned, meta)) = shard.get_key_value_mut(&name) {
            meta.written_at = now;
            meta.seen_at = now;
            meta.expires_at = expires_at;
            if meta.user.as_deref() == user {
                return Put {
                    created: false,
                    previous_user: None,
                    user_linked: false,
                };
            }
            let previous = meta.user.take();
            let mut users = lock(&self.users);
            if let Some(previous) = &previous {
                self.unlink(&mut users, previous, owned, meta.family);
            }
            meta.user =
                user.map(|user| self.link(&mut users, user, owned, meta.family, meta.created_at));
            return Put {
                created: false,
                previous_user: previous,
                user_linked: user.is_some(),
            };
        }
        let owned = name.to_owned();
        let user_linked = user.is_some();
        let user = user.map(|user| self.link(&mut lock(&self.users), user, &owned, family, now));
        self.bytes
            .fetch_add(owned.key.len() as u64 + SESSION_OVERHEAD, Ordering::Relaxed);
        self.family_sessions[family as usize].fetch_add(1, Ordering::Relaxed);
        shard.insert(
            owned,
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
            user_linked,
        }
    }

    /// Records a change of deadline (a touch), which also counts as seen.
    pub fn retime(&self, name: Name<'_>, expires_at: Option<u64>, now: u64) {
        if let Some(meta) = self.shard(name).get_mut(&name) {
            meta.expires_at = expires_at;
            meta.seen_at = now;
        }
    }

    /// Records a write that changed the session's data but not its user (a hash field
    /// other than the one with the data).
    pub fn written(&self, name: Name<'_>, now: u64) {
        if let Some(meta) = self.shard(name).get_mut(&name) {
            meta.written_at = now;
            meta.seen_at = now;
        }
    }

    /// Records a read.
    pub fn seen(&self, name: Name<'_>, now: u64) {
        if let Some(meta) = self.shard(name).get_mut(&name) {
            meta.seen_at = now;
        }
    }

    /// Forgets the session `name` (deleted, expired, revoked, renamed away); returns what
    /// was known of it.
    pub fn remove(&self, name: Name<'_>) -> Option<Meta> {
        let mut shard = self.shard(name);
        let (owned, meta) = shard.remove_entry(&name)?;
        self.forget(&owned, &meta);
        Some(meta)
    }

    fn forget(&self, name: &SessionName, meta: &Meta) {
        self.bytes
            .fetch_sub(name.key.len() as u64 + SESSION_OVERHEAD, Ordering::Relaxed);
        self.family_sessions[meta.family as usize].fetch_sub(1, Ordering::Relaxed);
        if let Some(user) = &meta.user {
            self.unlink(&mut lock(&self.users), user, name, meta.family);
        }
    }

    /// Forgets every session of database `db` (a flush).
    pub fn clear(&self, db: u8) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let gone: Vec<SessionName> = shard.keys().filter(|n| n.db == db).cloned().collect();
            for name in gone {
                if let Some(meta) = shard.remove(&name) {
                    self.forget(&name, &meta);
                }
            }
        }
    }

    /// What is known of the session `name`.
    pub fn get(&self, name: Name<'_>) -> Option<Meta> {
        self.shard(name).get(&name).cloned()
    }

    /// The counts in all families, or in one.
    pub fn counts(&self, family: Option<u16>) -> Counts {
        let users = lock(&self.users);
        match family {
            Some(family) => Counts {
                sessions: self.family_sessions[family as usize].load(Ordering::Relaxed),
                users: users.per_family[family as usize],
            },
            None => Counts {
                sessions: self
                    .family_sessions
                    .iter()
                    .map(|n| n.load(Ordering::Relaxed))
                    .sum(),
                users: users.map.len() as u64,
            },
        }
    }

    /// The sessions of `user` (one family's, or all), oldest first (by creation, then
    /// name): at most `limit` of those after `after`, and whether more follow. Sessions
    /// without a user are nobody's. Costs O(the user's sessions) time and a copy of their
    /// names (`Arc` clones), but builds the metadata of the page only.
    pub fn user_sessions(
        &self,
        user: &str,
        family: Option<u16>,
        after: Option<&Position>,
        limit: usize,
    ) -> (Vec<(SessionName, Meta)>, bool) {
        let mut names: Vec<(u64, SessionName)> = match lock(&self.users).map.get(user) {
            None => return (Vec::new(), false),
            Some(entry) => entry
                .sessions
                .iter()
                .filter(|(_, (f, _))| family.is_none_or(|want| want == *f))
                .filter(|(name, (_, at))| after.is_none_or(|after| after.precedes(*at, name)))
                .map(|(name, (_, at))| (*at, name.clone()))
                .collect(),
        };
        let more = names.len() > limit;
        if more {
            // The first `limit` in order, without sorting the rest.
            names.select_nth_unstable(limit);
            names.truncate(limit);
        }
        names.sort_unstable();
        let found = names
            .into_iter()
            .filter_map(|(_, name)| {
                let meta = self.get(name.as_name())?;
                Some((name, meta))
            })
            .collect();
        (found, more)
    }

    /// How many sessions `user` has in `family`.
    pub fn user_count(&self, user: &str, family: u16) -> u32 {
        lock(&self.users).map.get(user).map_or(0, |entry| {
            entry
                .families
                .iter()
                .find(|(f, _)| *f == family)
                .map_or(0, |(_, n)| *n)
        })
    }

    /// The oldest session of `user` in `family` other than `except`: the one a per-user
    /// limit revokes. Oldest by creation (after a restart every creation time is the
    /// recovery's), then by name, so the choice is stable.
    pub fn oldest(&self, user: &str, family: u16, except: Name<'_>) -> Option<SessionName> {
        let users = lock(&self.users);
        users
            .map
            .get(user)?
            .sessions
            .iter()
            .filter(|(name, (f, _))| *f == family && !except.equivalent(*name))
            .min_by(|(a, (_, at)), (b, (_, bt))| (at, a).cmp(&(bt, b)))
            .map(|(name, _)| name.clone())
    }

    /// Every session, for a comparison with the store in tests.
    #[cfg(test)]
    pub fn all(&self) -> Vec<(SessionName, Meta)> {
        let mut all: Vec<_> = self
            .shards
            .iter()
            .flat_map(|shard| {
                lock(shard)
                    .iter()
                    .map(|(name, meta)| (name.clone(), meta.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn link(
        &self,
        users: &mut Users,
        user: &str,
        name: &SessionName,
        family: u16,
        created_at: u64,
    ) -> Arc<str> {
        let id = match users.map.get_key_value(user) {
            Some((id, _)) => id.clone(),
            None => {
                let id: Arc<str> = user.into();
                self.bytes
                    .fetch_add(id.len() as u64 + USER_OVERHEAD, Ordering::Relaxed);
                users.map.insert(id.clone(), User::default());
                id
            }
        };
        let entry = users.map.get_mut(user).expect("just made");
        entry.sessions.insert(name.clone(), (family, created_at));
        match entry.families.iter_mut().find(|(f, _)| *f == family) {
            Some((_, n)) => *n += 1,
            None => {
                entry.families.push((family, 1));
                users.per_family[family as usize] += 1;
            }
        }
        id
    }

    fn unlink(&self, users: &mut Users, user: &str, name: &SessionName, family: u16) {
        let Some(entry) = users.map.get_mut(user) else {
            return;
        };
        entry.sessions.remove(name);
        if let Some(i) = entry.families.iter().position(|(f, _)| *f == family) {
            entry.families[i].1 -= 1;
            if entry.families[i].1 == 0 {
                entry.families.swap_remove(i);
                users.per_family[family as usize] -= 1;
            }
        }
        if entry.sessions.is_empty() {
            users.map.remove(user);
            self.bytes
                .fetch_sub(user.len() as u64 + USER_OVERHEAD, Ordering::Relaxed);
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
        let index = Index::new(2);
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
            .user_sessions("42", None, None, usize::MAX)
            .0
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
        let index = Index::new(1);
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

    #[test]
    fn a_users_sessions_page_by_position_without_skips_or_repeats() {
        let index = Index::new(2);
        // Ties in creation time are ordered by database, then key.
        let times = [5, 3, 5, 1, 5, 3, 9];
        let names: Vec<SessionName> = (0..times.len())
            .map(|i| name((i % 2) as u8, format!("k{}", 6 - i).as_bytes()))
            .collect();
        for (i, (name, &at)) in names.iter().zip(&times).enumerate() {
            index.put(name.as_name(), (i % 2) as u16, Some("u"), None, at);
        }
        index.put(name(0, b"other").as_name(), 0, Some("v"), None, 2);
        let (all, more) = index.user_sessions("u", None, None, usize::MAX);
        assert!(!more);
        let mut expected: Vec<(u64, SessionName)> =
            times.iter().copied().zip(names.iter().cloned()).collect();
        expected.sort();
        let order: Vec<_> = all.iter().map(|(n, m)| (m.created_at, n.clone())).collect();
        assert_eq!(order, expected, "by creation, then database, then key");
        for limit in 1..=8 {
            let mut paged = Vec::new();
            let mut after: Option<Position> = None;
            loop {
                let (page, more) = index.user_sessions("u", None, after.as_ref(), limit);
                assert!(page.len() <= limit);
                let Some((last, meta)) = page.last() else {
                    assert!(!more);
                    break;
                };
                after = Some(Position {
                    created_at: meta.created_at,
                    db: last.db,
                    key: last.key.to_vec(),
                });
                paged.extend(page.into_iter().map(|(n, m)| (m.created_at, n)));
                if !more {
                    break;
                }
            }
            assert_eq!(paged, expected, "pages of {limit}");
        }
        let (odd, _) = index.user_sessions("u", Some(1), None, usize::MAX);
        assert!(odd.iter().all(|(_, m)| m.family == 1) && odd.len() == 3);
        let (none, more) = index.user_sessions("u", None, None, 0);
        assert!(
            none.is_empty() && more,
            "a limit of 0 still says more follow"
        );
    }
}
