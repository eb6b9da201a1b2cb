//! Workloads: which ops each connection sends, over which keys.
//!
//! Keys look like PHP's (`memc.sess.key.` + a 32-character session id), so key length and
//! therefore per-item overhead match the real session traffic the server is built for. The
//! whole key space is generated once into one buffer and handed out as [`Bytes`] slices, so
//! choosing a key costs a reference-count increment and never allocates.
//!
//! Keys are chosen uniformly at random (like memtier's `R:R`), each connection with its own
//! seeded generator, so runs are repeatable and connections do not move in lockstep.

use std::sync::Arc;

use bytes::Bytes;

use crate::proto::Op;

/// The namespace prefix php-memcached applies to every key (clients.md §1).
pub const KEY_PREFIX: &str = "memc.sess.key.";
/// Length of a session id in the generated keys (PHP's default `session.sid_length` is 32).
const SID_LEN: usize = 32;
/// The lock ADD's TTL in the PHP cycle: PHP-FPM's `max_execution_time` default (30 s).
const LOCK_TTL: u32 = 30;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Random reads, touches and sets over the key space; the rest of 100% are sets.
    Mix {
        /// Percentage of GETs.
        get_pct: u32,
        /// Percentage of touches (TOUCH / EXPIRE).
        touch_pct: u32,
    },
    /// Only sets, each of a key never used before (a login storm creating sessions).
    Login,
    /// PHP's session cycle per request (clients.md §1): ADD the lock, GETK the session, SET
    /// it, DELETE the lock; one op after the other on the connection.
    Php,
    /// Set every key of the key space once (preloading); the run ends when all are stored.
    Load,
}

/// A workload: the kind plus the data shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// What to send.
    pub kind: Kind,
    /// Size of the key space (number of distinct session keys).
    pub keys: u64,
    /// Bytes per stored value.
    pub value_size: usize,
    /// TTL in seconds on sets (0: none).
    pub ttl: u32,
}

/// The generated session keys and their PHP lock keys.
#[derive(Debug, Clone)]
pub struct KeySpace {
    keys: Bytes,
    locks: Bytes,
    key_len: usize,
    lock_len: usize,
    count: u64,
}

impl KeySpace {
    /// Generates `count` session keys (and their lock keys when `with_locks`).
    pub fn new(count: u64, with_locks: bool) -> KeySpace {
        let key_len = KEY_PREFIX.len() + SID_LEN;
        let lock_len = key_len + "lock.".len();
        let mut keys = Vec::with_capacity(key_len * count as usize);
        let mut locks = Vec::with_capacity(if with_locks {
            lock_len * count as usize
        } else {
            0
        });
        for i in 0..count {
            let sid = sid(i);
            keys.extend_from_slice(KEY_PREFIX.as_bytes());
            keys.extend_from_slice(&sid);
            if with_locks {
                locks.extend_from_slice(KEY_PREFIX.as_bytes());
                locks.extend_from_slice(b"lock.");
                locks.extend_from_slice(&sid);
            }
        }
        KeySpace {
            keys: keys.into(),
            locks: locks.into(),
            key_len,
            lock_len,
            count,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`-th session key.
    pub fn key(&self, i: u64) -> Bytes {
        let at = i as usize * self.key_len;
        self.keys.slice(at..at + self.key_len)
    }

    /// The lock key of the `i`-th session (`memc.sess.key.lock.<sid>`); needs `with_locks`.
    pub fn lock(&self, i: u64) -> Bytes {
        let at = i as usize * self.lock_len;
        self.locks.slice(at..at + self.lock_len)
    }
}

/// A 32-character lowercase session id for key number `i`: scrambled so that neighbouring
/// numbers do not share prefixes (as random ids would not), yet unique (the scramble is a
/// bijection on u64 and fills 16 hex digits; the rest is the number itself).
fn sid(i: u64) -> [u8; SID_LEN] {
    let mut out = [0u8; SID_LEN];
    let text = format!("{:016x}{:016x}", splitmix(i), i);
    out.copy_from_slice(text.as_bytes());
    out
}

/// splitmix64's finaliser: a cheap bijective scramble.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small, fast PRNG (xorshift64*), good enough to pick keys and op types.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; any seed (0 included) is fine.
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift (no modulo bias worth caring about here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// One connection's stream of ops.
#[derive(Debug)]
pub struct OpStream {
    workload: Workload,
    keys: Arc<KeySpace>,
    value: Bytes,
    lock_value: Bytes,
    rng: Rng,
    /// Login: this connection's tag, which keeps its new keys apart from others'.
    tag: String,
    /// Login: keys created so far. Load: the next key number.
    counter: u64,
    /// Load: the distance between this connection's keys (the number of connections).
    stride: u64,
    /// Php: the step of the cycle (0..4) and the session it is on.
    step: u8,
    sid: u64,
}

impl OpStream {
    /// Connection `conn` of `conns`. `salt` keeps login keys of separate runs against one
    /// server apart.
    pub fn new(
        workload: Workload,
        keys: Arc<KeySpace>,
        value: Bytes,
        conn: u64,
        conns: u64,
        seed: u64,
        salt: u32,
    ) -> Self {
        OpStream {
            workload,
            keys,
            value,
            lock_value: Bytes::from_static(b"1"),
            rng: Rng::new(seed ^ conn.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            tag: format!("{KEY_PREFIX}{salt:08x}{conn:08x}"),
            counter: conn,
            stride: conns.max(1),
            step: 0,
            sid: 0,
        }
    }

    fn random_key(&mut self) -> Bytes {
        let i = self.rng.below(self.keys.len().max(1));
        self.keys.key(i)
    }

    /// The next op, or `None` when a [`Kind::Load`] connection has stored all its keys.
    pub fn next_op(&mut self) -> Option<Op> {
        let ttl = self.workload.ttl;
        Some(match self.workload.kind {
            Kind::Mix { get_pct, touch_pct } => {
                let roll = self.rng.below(100) as u32;
                let key = self.random_key();
                if roll < get_pct {
                    Op::Get(key)
                } else if roll < get_pct + touch_pct {
                    Op::Touch { key, ttl }
                } else {
                    Op::Set {
                        key,
                        value: self.value.clone(),
                        ttl,
                    }
                }
            }
            Kind::Login => {
                self.counter += 1;
                let key = format!("{}{:016x}", self.tag, self.counter);
                Op::Set {
                    key: Bytes::from(key),
                    value: self.value.clone(),
                    ttl,
                }
            }
            Kind::Load => {
                if self.counter >= self.keys.len() {
                    return None;
                }
                let key = self.keys.key(self.counter);
                self.counter += self.stride;
                Op::Set {
                    key,
                    value: self.value.clone(),
                    ttl,
                }
            }
            Kind::Php => {
                let step = self.step;
                self.step = (step + 1) % 4;
                if step == 0 {
                    self.sid = self.rng.below(self.keys.len().max(1));
                }
                match step {
                    0 => Op::Add {
                        key: self.keys.lock(self.sid),
                        value: self.lock_value.clone(),
                        ttl: LOCK_TTL,
                    },
                    1 => Op::GetK(self.keys.key(self.sid)),
                    2 => Op::Set {
                        key: self.keys.key(self.sid),
                        value: self.value.clone(),
                        ttl,
                    },
                    _ => Op::Delete(self.keys.lock(self.sid)),
                }
            }
        })
    }
}

/// A session value of exactly `size` bytes as PHP's default serialize handler writes one
/// for a logged-in user: `user_id|i:<user>;data|s:<n>:"…";`, so that a server that reads
/// sessions (sessiond's session layer) does the work a real PHP session costs it. Shorter
/// sizes than the framing needs get letters only (no user).
pub fn session_value(size: usize, user: u64) -> Bytes {
    let head = format!("user_id|i:{user};data|s:");
    // The string's length field depends on the length it announces: find the n that fits.
    for digits in 1..=20 {
        let framing = head.len() + digits + ":\"\";".len();
        let Some(n) = size.checked_sub(framing) else {
            break;
        };
        if n.to_string().len() == digits {
            let mut value = format!("{head}{n}:\"").into_bytes();
            value.extend((0..n).map(|i| b'a' + (i % 26) as u8));
            value.extend_from_slice(b"\";");
            debug_assert_eq!(value.len(), size);
            return value.into();
        }
    }
    value_of_size(size)
}

/// A value of `size` bytes: printable, not all one byte (so nothing can shortcut it).
pub fn value_of_size(size: usize) -> Bytes {
    (0..size)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(kind: Kind, keys: u64, conn: u64, conns: u64) -> OpStream {
        let workload = Workload {
            kind,
            keys,
            value_size: 4,
            ttl: 1800,
        };
        let space = Arc::new(KeySpace::new(keys, kind == Kind::Php));
        OpStream::new(workload, space, value_of_size(4), conn, conns, 1, 2)
    }

    #[test]
    fn session_values_have_the_size_asked_and_php_framing() {
        for size in [0, 10, 40, 41, 100, 1024, 100_000] {
            let value = session_value(size, 7);
            assert_eq!(value.len(), size);
            if size >= 40 {
                assert!(value.starts_with(b"user_id|i:7;data|s:") && value.ends_with(b"\";"));
            }
        }
    }

    #[test]
    fn keys_look_like_php_session_keys_and_are_distinct() {
        let space = KeySpace::new(1000, true);
        let key = space.key(7);
        assert_eq!(key.len(), KEY_PREFIX.len() + SID_LEN);
        assert!(key.starts_with(KEY_PREFIX.as_bytes()));
        assert_eq!(
            &space.lock(7)[..],
            [&b"memc.sess.key.lock."[..], &key[KEY_PREFIX.len()..]].concat()
        );
        let all: std::collections::HashSet<Bytes> = (0..1000).map(|i| space.key(i)).collect();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn mix_respects_the_ratio() {
        let mut s = stream(
            Kind::Mix {
                get_pct: 90,
                touch_pct: 0,
            },
            100,
            0,
            1,
        );
        let gets = (0..10_000)
            .filter(|_| matches!(s.next_op(), Some(Op::Get(_))))
            .count();
        assert!((8_800..9_200).contains(&gets), "{gets}");
    }

    #[test]
    fn load_covers_every_key_once_across_connections() {
        let mut seen = std::collections::HashSet::new();
        for conn in 0..3 {
            let mut s = stream(Kind::Load, 10, conn, 3);
            while let Some(Op::Set { key, .. }) = s.next_op() {
                assert!(seen.insert(key));
            }
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn php_cycle_is_add_getk_set_delete_on_one_session() {
        let mut s = stream(Kind::Php, 50, 0, 1);
        let ops: Vec<Op> = (0..4).map(|_| s.next_op().unwrap()).collect();
        let (
            Op::Add { key: lock, .. },
            Op::GetK(key),
            Op::Set { key: set_key, .. },
            Op::Delete(unlock),
        ) = (&ops[0], &ops[1], &ops[2], &ops[3])
        else {
            panic!("unexpected cycle {ops:?}");
        };
        assert_eq!(key, set_key);
        assert_eq!(lock, unlock);
        assert!(lock.ends_with(&key[KEY_PREFIX.len()..]));
    }

    #[test]
    fn login_keys_are_new() {
        let mut a = stream(Kind::Login, 1, 0, 2);
        let mut b = stream(Kind::Login, 1, 1, 2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            for s in [&mut a, &mut b] {
                let Some(Op::Set { key, .. }) = s.next_op() else {
                    panic!()
                };
                assert!(seen.insert(key));
            }
        }
    }
}
