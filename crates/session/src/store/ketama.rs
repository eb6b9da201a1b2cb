//! The ketama continuum that libmemcached builds, so that this crate and a PHP app using
//! php-memcached put a session on the same server.
//!
//! Two constructions exist, matching php-memcached's `memcached.sess_consistent_hash_type`:
//!
//! - [`Distribution::Ketama`] (`ketama`, php-memcached's default, libmemcached's
//!   `MEMCACHED_BEHAVIOR_KETAMA`): 100 points per server, weights ignored; every point is
//!   the libmemcached default hash (Jenkins one-at-a-time) of `"<host>:<port>-<i>"`, or
//!   `"<host>-<i>"` when the port is 11211; keys are hashed with the same one-at-a-time hash.
//!   (That behaviour switches the distribution only; it does not switch the key hash to MD5.)
//! - [`Distribution::KetamaWeighted`] (`ketama_weighted`, `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`,
//!   the original libketama scheme): 160 points per server scaled by its share of the total
//!   weight, computed in single-precision floats exactly as libmemcached does, four points per
//!   MD5 digest of the same point names (each point is one little-endian 32-bit quarter of
//!   the digest); keys are hashed with the first four bytes of their MD5, little-endian.
//!
//! In both, the points are sorted by value then by server index, and a key belongs to the
//! first point at or after its hash, wrapping to the first point. With one server every key
//! goes to it. Servers are indexed in the order they are configured, as libmemcached does
//! unless told to sort hosts, and the host string must be written the same way on both sides
//! (`127.0.0.1` and `localhost` hash differently).
//!
//! This module is pure: no I/O, no clock.

use md5::{Digest as _, Md5};

/// How keys are spread over servers. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// php-memcached's session default (`sess_consistent_hash_type = ketama`).
    #[default]
    Ketama,
    /// libketama's weighted MD5 scheme (`sess_consistent_hash_type = ketama_weighted`).
    KetamaWeighted,
}

/// Points per server without weights (libmemcached's `MEMCACHED_POINTS_PER_SERVER`).
const POINTS_PER_SERVER: u32 = 100;
/// Points per server in weighted mode (`MEMCACHED_POINTS_PER_SERVER_KETAMA`).
const POINTS_PER_SERVER_WEIGHTED: u32 = 160;
/// The port libmemcached leaves out of point names.
const DEFAULT_PORT: u16 = 11211;

/// One server as the continuum sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The host exactly as configured.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The weight (1 if not given); only [`Distribution::KetamaWeighted`] uses it.
    pub weight: u32,
}

/// The sorted ring of points.
#[derive(Debug, Clone)]
pub struct Continuum {
    distribution: Distribution,
    /// (point, server index), sorted.
    points: Vec<(u32, u32)>,
    servers: usize,
}

/// libmemcached's default hash. It reads the key through a `const char *`, so bytes above
/// 0x7f are sign-extended on the platforms where `char` is signed (x86, the ones PHP runs
/// on); session ids are ASCII, so this only matters for exotic keys.
pub fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &b in key {
        value = value.wrapping_add(b as i8 as i32 as u32);
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

/// Quarter `alignment` (0..4) of the MD5 digest of `key`, little-endian.
fn md5_quarter(digest: &[u8; 16], alignment: usize) -> u32 {
    let q = &digest[alignment * 4..alignment * 4 + 4];
    u32::from_le_bytes([q[0], q[1], q[2], q[3]])
}

fn md5(key: &[u8]) -> [u8; 16] {
    Md5::digest(key).into()
}

fn point_name(node: &Node, i: u32) -> String {
    if node.port == DEFAULT_PORT {
        format!("{}-{}", node.host, i)
    } else {
        format!("{}:{}-{}", node.host, node.port, i)
    }
}

impl Continuum {
    /// Builds the ring for `nodes` in configuration order.
    pub fn new(nodes: &[Node], distribution: Distribution) -> Self {
        let mut points = Vec::new();
        match distribution {
            Distribution::Ketama => {
                for (index, node) in nodes.iter().enumerate() {
                    for i in 0..POINTS_PER_SERVER {
                        let name = point_name(node, i);
                        points.push((one_at_a_time(name.as_bytes()), index as u32));
                    }
                }
            }
            Distribution::KetamaWeighted => {
                let total: u64 = nodes.iter().map(|n| u64::from(n.weight)).sum();
                let live = nodes.len() as f32;
                for (index, node) in nodes.iter().enumerate() {
                    // Single precision on purpose: libmemcached computes the share in `float`,
                    // and a double would round some weight ratios to a different point count.
                    let pct = node.weight as f32 / total as f32;
                    let per_server = ((pct * POINTS_PER_SERVER_WEIGHTED as f32 / 4.0 * live
                        + 0.000_000_000_1_f32)
                        .floor() as u32)
                        * 4;
                    for i in 0..per_server / 4 {
                        let digest = md5(point_name(node, i).as_bytes());
                        for alignment in 0..4 {
                            points.push((md5_quarter(&digest, alignment), index as u32));
                        }
                    }
                }
            }
        }
        points.sort_unstable();
        Self {
            distribution,
            points,
            servers: nodes.len(),
        }
    }

    /// The hash a key is placed by.
    pub fn hash(&self, key: &[u8]) -> u32 {
        match self.distribution {
            Distribution::Ketama => one_at_a_time(key),
            Distribution::KetamaWeighted => md5_quarter(&md5(key), 0),
        }
    }

    /// The index of the server that owns `key`, or `None` without servers.
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        match self.servers {
            0 => None,
            1 => Some(0),
            _ => {
                let hash = self.hash(key);
                let at = self.points.partition_point(|&(p, _)| p < hash);
                let (_, index) = self.points.get(at).unwrap_or(&self.points[0]);
                Some(*index as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<Node> {
        (0..n)
            .map(|i| Node {
                host: "127.0.0.1".into(),
                port: 11211 + i as u16,
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn one_at_a_time_known_values() {
        // Jenkins' one-at-a-time of "a" and of the empty string.
        assert_eq!(one_at_a_time(b""), 0);
        assert_eq!(one_at_a_time(b"a"), 0xca2e9442);
    }

    #[test]
    fn point_counts() {
        let c = Continuum::new(&nodes(3), Distribution::Ketama);
        assert_eq!(c.points.len(), 300);
        let c = Continuum::new(&nodes(3), Distribution::KetamaWeighted);
        assert_eq!(c.points.len(), 480);
        let mut weighted = nodes(2);
        weighted[0].weight = 3;
        let c = Continuum::new(&weighted, Distribution::KetamaWeighted);
        // 3/4 and 1/4 of 2 × 160 points.
        assert_eq!(c.points.iter().filter(|p| p.1 == 0).count(), 240);
        assert_eq!(c.points.iter().filter(|p| p.1 == 1).count(), 80);
    }

    #[test]
    fn keys_spread_and_stay_put_when_a_server_is_added() {
        let three = Continuum::new(&nodes(3), Distribution::Ketama);
        let four = Continuum::new(&nodes(4), Distribution::Ketama);
        let mut counts = [0usize; 3];
        let mut moved = 0;
        for i in 0..3000 {
            let key = format!("key{i}");
            let a = three.server_for(key.as_bytes()).unwrap();
            counts[a] += 1;
            if four.server_for(key.as_bytes()).unwrap() != a {
                moved += 1;
            }
        }
        assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
        // Consistent hashing: about a quarter of the keys move to the new server.
        assert!(moved < 1200, "{moved} of 3000 keys moved");
    }
}
