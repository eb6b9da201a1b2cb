//! The memory budget: a byte count charged by every store of a server against one limit.
//!
//! Charging happens before a write is applied and fails as a whole, so a full server refuses
//! the write and changes nothing; it never evicts. The count is an estimate of heap use
//! (key + value + [`ITEM_OVERHEAD`]), not an allocator reading, which keeps it cheap and
//! deterministic.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes charged per item on top of its key and value, for 64-bit builds with glibc malloc:
/// the item block's 40-byte header plus the allocator's 8-byte chunk header and average
/// 8-byte rounding (56), the table slot (an 8-byte pointer and a control byte, at a load
/// factor between 7/16 and 7/8: about 14), and the 16-byte wheel entry with its vector's
/// spare capacity (about 24). Measured total for 1 KiB sessions: see `docs/benchmarks.md`.
pub const ITEM_OVERHEAD: u64 = 96;

/// A shared memory budget.
#[derive(Debug)]
pub struct Budget {
    used: AtomicU64,
    limit: AtomicU64,
    out_of_memory: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Budget {
        Budget {
            used: AtomicU64::new(0),
            limit: AtomicU64::new(limit),
            out_of_memory: AtomicU64::new(0),
        }
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Changes the limit. Lowering it below the current use refuses new growth until items
    /// are deleted or expire; nothing is evicted.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Writes refused for lack of memory so far.
    pub fn out_of_memory(&self) -> u64 {
        self.out_of_memory.load(Ordering::Relaxed)
    }

    pub(crate) fn record_out_of_memory(&self) {
        self.out_of_memory.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces a charge of `old` bytes by `new` bytes. Growth fails, leaving the count
    /// unchanged, if it would pass the limit; shrinking always succeeds.
    pub(crate) fn recharge(&self, old: u64, new: u64) -> bool {
        if new <= old {
            self.used.fetch_sub(old - new, Ordering::Relaxed);
            return true;
        }
        let grow = new - old;
        let limit = self.limit();
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                let after = used.checked_add(grow)?;
                (after <= limit).then_some(after)
            })
            .is_ok()
    }

    /// Like `recharge`, but never fails: for replaying what was already acknowledged.
    pub(crate) fn force_recharge(&self, old: u64, new: u64) {
        if new >= old {
            self.used.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    pub(crate) fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}
