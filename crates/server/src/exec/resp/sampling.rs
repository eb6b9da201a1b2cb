//! Random choices for the commands that pick elements (`SPOP`, `SRANDMEMBER`,
//! `HRANDFIELD`, `ZRANDMEMBER`, `RANDOMKEY`): a small per-thread generator, and picking
//! indexes with or without repeats.
//!
//! The picks need to be fair, not secret, so a SplitMix64 stream per worker thread is
//! enough; each thread's seed comes from the standard library's per-process random hash
//! keys, so no clock is read and no dependency is added.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
}

/// The next random number of this thread's stream.
pub fn next_u64() -> u64 {
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A random index below `n` (`n` > 0).
pub fn below(n: usize) -> usize {
    ((u128::from(next_u64()) * n as u128) >> 64) as usize
}

/// `count` distinct indexes below `n` (all of them, shuffled, if `count >= n`), by a partial
/// Fisher-Yates shuffle: O(n) memory for the index table, which the callers bound by the
/// collection's own size.
pub fn distinct(n: usize, count: usize) -> Vec<usize> {
    let count = count.min(n);
    let mut indexes: Vec<usize> = (0..n).collect();
    for i in 0..count {
        let j = i + below(n - i);
        indexes.swap(i, j);
    }
    indexes.truncate(count);
    indexes
}

/// `count` indexes below `n`, repeats allowed (a negative count in Redis's random-pick
/// commands).
pub fn with_repeats(n: usize, count: usize) -> Vec<usize> {
    (0..count).map(|_| below(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::{below, distinct, with_repeats};

    #[test]
    fn picks_stay_in_range_and_distinct_ones_do_not_repeat() {
        for _ in 0..100 {
            assert!(below(7) < 7);
        }
        let mut picked = distinct(10, 4);
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 4);
        assert!(picked.iter().all(|&i| i < 10));
        assert_eq!(distinct(3, 10).len(), 3);
        assert_eq!(with_repeats(2, 50).len(), 50);
    }
}
