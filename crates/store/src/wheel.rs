//! A hierarchical timing wheel: the index that finds items whose deadline has passed.
//!
//! Geometry: [`LEVELS`] levels of 64 slots. One tick is one millisecond. A slot at level `L`
//! spans `64^L` ticks, so level 0 covers the next 64 ms at 1 ms resolution and level 5 covers
//! about 2.2 years at 18.6-minute resolution. A deadline further out than the whole wheel is
//! filed in the last slot it can reach and simply cascades again when that slot comes due.
//!
//! Insertion is O(1): the level is the highest 6-bit digit in which the deadline differs from
//! the wheel's current time, and the slot is that digit. [`Wheel::drain_due`] walks only
//! occupied slots (a 64-bit occupancy mask per level), so an idle wheel costs nothing. When a
//! slot above level 0 comes due, its entries whose deadline is still ahead are re-filed at a
//! lower level (cascading); at most `LEVELS` re-filings happen per entry.
//!
//! The wheel is only an index, never the truth: an entry names a key (by its hash) and the
//! deadline it was filed for, and the store decides, when the entry comes due, whether the item still exists
//! with that schedule (see the store's `wheel_at` invariant). The wheel itself never reads a
//! clock; `now` is always passed in.

/// Number of levels.
pub const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// Ticks (ms) the whole wheel spans from its current time.
const MAX_SPAN: u64 = 1 << (SLOT_BITS as usize * LEVELS);

/// One filed deadline: 16 bytes, so a wheel costs little next to the items it indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The 64-bit hash of the key of the item this entry was filed for, as the shard's table
    /// hashes it. The store resolves it to the item with that hash whose `wheel_at` is `at`
    /// (see the store's `wheel_at` invariant and what a hash collision can and cannot do).
    pub hash: u64,
    /// The deadline (Unix ms) it was filed for.
    pub at: u64,
}

struct Level {
    occupied: u64,
    slots: [Vec<Entry>; SLOTS],
}

impl Level {
    fn new() -> Level {
        Level {
            occupied: 0,
            slots: std::array::from_fn(|_| Vec::new()),
        }
    }
}

/// The wheel. See the module documentation for its geometry.
pub struct Wheel {
    levels: Box<[Level; LEVELS]>,
    /// Every deadline at or before `elapsed` has been handed out by `drain_due`.
    elapsed: u64,
    /// Entries already due when they were inserted; handed out by the next `drain_due`.
    overdue: Vec<Entry>,
    len: usize,
}

impl Wheel {
    /// An empty wheel whose current time is `now` (Unix ms).
    pub fn new(now: u64) -> Wheel {
        Wheel {
            levels: Box::new(std::array::from_fn(|_| Level::new())),
            elapsed: now,
            overdue: Vec::new(),
            len: 0,
        }
    }

    /// Number of filed entries, stale ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is filed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Files `entry`. O(1).
    pub fn insert(&mut self, entry: Entry) {
        self.len += 1;
        if entry.at <= self.elapsed {
            self.overdue.push(entry);
            return;
        }
        // A deadline beyond the top level's current rotation is filed at the rotation's last
        // tick; it cascades from there and is re-filed under its true deadline. Clamping to
        // the rotation (not to `elapsed + MAX_SPAN`) keeps every top-level slot ahead of the
        // current one, which `next_slot`'s scan from the current slot relies on. At the very
        // last tick of a rotation the first tick of the next one is used instead.
        let when = entry
            .at
            .min((self.elapsed | (MAX_SPAN - 1)).max(self.elapsed + 1));
        let level = level_for(self.elapsed, when);
        let slot = slot_for(when, level);
        let lvl = &mut self.levels[level];
        lvl.occupied |= 1 << slot;
        lvl.slots[slot].push(entry);
    }

    /// Moves every entry whose deadline is at or before `now` into `out`, advancing the wheel's
    /// current time to `now`. Stops early, with the wheel still consistent, once `out` holds at
    /// least `budget` entries, so a caller holding a lock can bound its critical section; the
    /// next call continues where this one stopped.
    pub fn drain_due(&mut self, now: u64, budget: usize, out: &mut Vec<Entry>) {
        self.len -= self.overdue.len();
        out.append(&mut self.overdue);
        while out.len() < budget {
            let Some((level, slot, deadline)) = self.next_slot() else {
                break;
            };
            if deadline > now {
                break;
            }
            let lvl = &mut self.levels[level];
            lvl.occupied &= !(1 << slot);
            let entries = std::mem::take(&mut lvl.slots[slot]);
            self.elapsed = deadline;
            for entry in entries {
                self.len -= 1;
                if entry.at <= now {
                    out.push(entry);
                } else {
                    self.insert(entry);
                }
            }
        }
        if out.len() < budget && now > self.elapsed {
            self.elapsed = now;
        }
    }

    /// The earliest occupied slot: its level, index and the tick at which it comes due.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let mut best: Option<(usize, usize, u64)> = None;
        for (level, lvl) in self.levels.iter().enumerate() {
            if lvl.occupied == 0 {
                continue;
            }
            let slot_span = 1u64 << (SLOT_BITS * level as u32);
            let level_span = slot_span << SLOT_BITS;
            let current = ((self.elapsed / slot_span) % SLOTS as u64) as u32;
            let offset = lvl.occupied.rotate_right(current).trailing_zeros();
            let slot = ((current + offset) % SLOTS as u32) as usize;
            let level_start = self.elapsed & !(level_span - 1);
            let mut deadline = level_start + slot as u64 * slot_span;
            if deadline <= self.elapsed {
                // A slot behind the current one belongs to the next rotation. Only the top
                // level can hold one (an entry filed at a rotation's very last tick, see
                // `insert`); lower-level slots are drained the moment the wheel reaches them.
                deadline += level_span;
            }
            // A slot is due when the wheel reaches its start; the entries in it are then
            // handed out or cascaded by their own deadlines.
            if best.is_none_or(|(_, _, b)| deadline < b) {
                best = Some((level, slot, deadline));
            }
        }
        best
    }
}

/// The level at which `when` is filed relative to `elapsed`: the highest 6-bit digit in which
/// they differ. Requires `when > elapsed` and `when - elapsed < MAX_SPAN`.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    (significant / SLOT_BITS as usize).min(LEVELS - 1)
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (SLOT_BITS as usize * level)) % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests;
