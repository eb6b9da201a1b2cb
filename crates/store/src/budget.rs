//! The memory budget: a byte count charged by every store of a server against one limit.
//!
//! Charging happens before a write is applied and fails as a whole, so a full server refuses
//! the write and changes nothing; it never evicts. A charge is a [`Charge`] guard, released
//! unless the operation commits it, so no path through an operation can leak one. The count is an estimate of heap use
//! (key + value + [`ITEM_OVERHEAD`]), not an allocator reading, which keeps it cheap and
//! deterministic.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// Bytes charged per item on top of its key and value, for 64-bit builds with glibc malloc:
/// the item block's 48-byte header plus the allocator's 8-byte chunk header and average
/// 8-byte rounding (64), the table slot (an 8-byte pointer and a control byte, at a load
/// factor between 7/16 and 7/8: about 14), and the 16-byte wheel entry with its vector's
/// spare capacity (about 24). Measured total for 1 KiB sessions: see `docs/benchmarks.md`.
pub const ITEM_OVERHEAD: u64 = 104;

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

    /// Charges the growth from a charge of `old` bytes to one of `new` bytes, if it fits
    /// under the limit; a shrink always fits. Refused, it counts a write refused for memory
    /// and charges nothing. The returned [`Charge`] holds the growth until it is committed;
    /// the shrink is given back only at the commit, when the smaller item has replaced the
    /// larger one.
    pub(crate) fn charge(&self, old: u64, new: u64) -> Result<Charge<'_>, StoreError> {
        let grown = new.saturating_sub(old);
        let limit = self.limit();
        let fits = grown == 0
            || self
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    let after = used.checked_add(grown)?;
                    (after <= limit).then_some(after)
                })
                .is_ok();
        if !fits {
            self.record_out_of_memory();
            return Err(StoreError::OutOfMemory);
        }
        Ok(Charge {
            budget: self,
            grown,
            freed: old.saturating_sub(new),
        })
    }

    /// Like [`Budget::charge`], but never refused: for what was already acknowledged (a
    /// journal replay).
    pub(crate) fn force_charge(&self, old: u64, new: u64) -> Charge<'_> {
        let grown = new.saturating_sub(old);
        self.used.fetch_add(grown, Ordering::Relaxed);
        Charge {
            budget: self,
            grown,
            freed: old.saturating_sub(new),
        }
    }

    /// A guard for `bytes` already charged, for items leaving their table: dropped, it
    /// gives them back (a removal, an expiry, a flush); committed, it keeps them for the key
    /// the item moves to (`RENAME`).
    pub(crate) fn held(&self, bytes: u64) -> Charge<'_> {
        Charge {
            budget: self,
            grown: bytes,
            freed: 0,
        }
    }

    /// Private, so that every release in the crate is a [`Charge`] being dropped or
    /// committed.
    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn adjust(&self, add: u64, sub: u64) {
        if add >= sub {
            self.used.fetch_add(add - sub, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(sub - add, Ordering::Relaxed);
        }
    }
}

/// Bytes the server keeps beside the items on their behalf (the session index), charged to
/// the same budget so that everything a client's writes make the server hold counts against
/// one limit. It follows what it describes: [`DerivedCharge::set`] moves the charge to the
/// current size, never refused (the writes that made the index grow were admitted already;
/// once the budget is full they are refused, so the index stops growing too), and dropping
/// the guard gives everything back.
#[derive(Debug)]
pub struct DerivedCharge {
    budget: std::sync::Arc<Budget>,
    held: u64,
}

impl DerivedCharge {
    /// A charge of nothing yet against `budget`.
    pub fn new(budget: std::sync::Arc<Budget>) -> DerivedCharge {
        DerivedCharge { budget, held: 0 }
    }

    /// Charges exactly `bytes` from now on.
    pub fn set(&mut self, bytes: u64) {
        self.budget.adjust(bytes, self.held);
        self.held = bytes;
    }

    /// Bytes charged now.
    pub fn held(&self) -> u64 {
        self.held
    }
}

impl Drop for DerivedCharge {
    fn drop(&mut self) {
        self.budget.release(self.held);
    }
}

/// Bytes charged to a [`Budget`] and not settled yet: for a change not applied yet, or for
/// an item taken out of its table. The guard that makes "charge before you change, and give
/// it back if you do not" impossible to get wrong: dropped, it releases what it holds, so
/// every early return of an operation (a failed condition, a wrong type, an empty result)
/// undoes its charge without a line of code, and a removed item's bytes go back when its
/// guard goes out of scope; once the change is in the table, [`Charge::commit`] or
/// [`Charge::commit_resized`] keeps them.
#[must_use = "a charge that is dropped is released; commit it once the change is applied"]
pub(crate) struct Charge<'a> {
    budget: &'a Budget,
    /// Bytes added to the budget's count for this change so far.
    grown: u64,
    /// Bytes the change frees once applied (a smaller item replacing a larger one).
    freed: u64,
}

impl Charge<'_> {
    /// The change is applied as charged: keeps the growth, gives back what it freed.
    pub(crate) fn commit(mut self) {
        self.budget.release(self.freed);
        self.grown = 0;
    }

    /// The change is applied and moved the key's charge from `from` to `to` bytes, which
    /// was known only afterwards (a collection's growth was reserved as a bound): keeps
    /// exactly that difference instead of what was charged. Never refused: the reservation
    /// already passed the limit.
    pub(crate) fn commit_resized(mut self, from: u64, to: u64) {
        self.budget.adjust(to, from + self.grown);
        self.grown = 0;
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if self.grown != 0 {
            self.budget.release(self.grown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_released_unless_committed() {
        let budget = Budget::new(100);
        drop(budget.charge(0, 60).unwrap());
        assert_eq!(budget.used(), 0, "dropped: released");
        budget.charge(0, 60).unwrap().commit();
        assert_eq!(budget.used(), 60, "committed: kept");
        assert_eq!(budget.charge(0, 41).err(), Some(StoreError::OutOfMemory));
        assert_eq!((budget.used(), budget.out_of_memory()), (60, 1));
        // Replacing 60 bytes by 100 only needs the growth to fit.
        budget.charge(60, 100).unwrap().commit();
        assert_eq!(budget.used(), 100);
        // A shrink is given back at the commit, not before, and not if dropped.
        let shrink = budget.charge(100, 30).unwrap();
        assert_eq!(budget.used(), 100);
        shrink.commit();
        assert_eq!(budget.used(), 30);
        drop(budget.charge(30, 10).unwrap());
        assert_eq!(budget.used(), 30);
    }

    #[test]
    fn a_reservation_settles_to_the_real_size_and_a_held_charge_releases_on_drop() {
        let budget = Budget::new(1000);
        budget.charge(0, 100).unwrap().commit();
        // An existing 100-byte collection reserves 50 for growth and grows by 20 only.
        budget.charge(0, 50).unwrap().commit_resized(100, 120);
        assert_eq!(budget.used(), 120);
        // Or shrinks by 40.
        budget.charge(0, 50).unwrap().commit_resized(120, 80);
        assert_eq!(budget.used(), 80);
        // An item leaving its table: dropped, its bytes go back; carried, they stay.
        budget.held(30).commit_resized(0, 35);
        assert_eq!(budget.used(), 85);
        drop(budget.held(85));
        assert_eq!(budget.used(), 0);
    }
}
