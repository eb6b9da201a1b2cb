//! Operations on keys and strings: reads, writes, deadlines, removal, counters, `RENAME`,
//! `SCAN` and `KEYS`. Each locks the key's shard once and does its whole check-and-change
//! under that lock, so a condition (a CAS, `NX`, a length limit) cannot go stale between
//! the check and the change. The `_if_string` operations are memcached's view, in which a
//! key holding another type is simply absent; the others are Redis's, which see every type.

use std::hash::BuildHasher;

use bytes::Bytes;

use crate::shard::{Accept, Shard};
use crate::{
    CounterOutcome, DeadlineChange, Direction, Entry, IfTargetExists, Kind, MetaCounter, MetaEntry,
    MetaRead, RemoveOutcome, RenameOutcome, SHARDS, Side, Store, StoreError, Value, Write,
    WriteOutcome, Written,
};

impl Store {
    /// The live item under `key`, whatever its type.
    pub fn get(&self, key: &[u8], now: u64) -> Option<Entry> {
        self.shard(key, now).get(key, &self.ctx(now))
    }

    /// Like [`Store::get`], but not a client's read: the observer hears nothing (an
    /// operator looking at a session does not make it "seen").
    pub fn peek(&self, key: &[u8], now: u64) -> Option<Entry> {
        self.shard(key, now).peek(key, &self.ctx(now))
    }

    /// Whether `key` holds a live item at `now`, changing nothing: unlike [`Store::get`]
    /// and [`Store::peek`], an item whose deadline has passed is left in place for the next
    /// read or the expiry sweep (so the observer hears of no expiry), and a delayed flush
    /// that is due counts as done without being applied. For a look taken while another
    /// holder has the keyspace to itself and must find it as it left it: `WATCH` while a
    /// script runs past `busy-reply-threshold`.
    pub fn is_live(&self, key: &[u8], now: u64) -> bool {
        let flush = self
            .pending_flush
            .load(std::sync::atomic::Ordering::Relaxed);
        if flush != 0 && flush <= now {
            return false;
        }
        self.lock(self.shard_index(key)).is_live(key, now)
    }

    /// The type of the live value under `key`, without copying it; the observer hears
    /// nothing.
    pub fn kind_of(&self, key: &[u8], now: u64) -> Option<Kind> {
        self.shard(key, now).kind_of(key, &self.ctx(now))
    }

    /// The live string under `key`; another type is a miss.
    pub fn get_if_string(&self, key: &[u8], now: u64) -> Option<Entry<Bytes>> {
        self.shard(key, now).get_if_string(key, &self.ctx(now))
    }

    /// Moves the deadline of the live string under `key` to `deadline` (`None`: never
    /// expires) and returns the string as touched; another type is a miss. A deadline at or
    /// before `now` returns the string and then removes it (memcached `touch`, `gat`).
    pub fn touch_if_string(
        &self,
        key: &[u8],
        deadline: Option<u64>,
        now: u64,
    ) -> Option<Entry<Bytes>> {
        self.shard(key, now)
            .touch_if_string(key, deadline, &self.ctx(now))
    }

    /// Reads the live item under `key` and, atomically with the read, lets `decide` move
    /// its deadline: `decide` gets the value and the current deadline and returns its
    /// answer and, if the deadline changes, the new one (`Some(None)`: never expires). A new
    /// deadline at or before `now` removes the item. `None` if the key holds nothing.
    pub fn retime<R>(
        &self,
        key: &[u8],
        now: u64,
        decide: impl FnOnce(&Value, Option<u64>) -> (R, Option<Option<u64>>),
    ) -> Option<R> {
        self.shard(key, now).retime(key, &self.ctx(now), decide)
    }

    /// Writes the string `value` under `key` as `how` says, replacing whatever type the key
    /// held, if `how.condition` holds. A deadline at or before `now` makes the write succeed
    /// without leaving anything alive (memcached's rule for an exptime in the past), removing
    /// any previous item.
    pub fn write(
        &self,
        key: &[u8],
        value: &[u8],
        how: Write,
        now: u64,
    ) -> Result<Written, StoreError> {
        self.shard(key, now).write(key, value, how, &self.ctx(now))
    }

    /// Adds `data` to one end of the live string under `key`, keeping its flags and
    /// deadline (memcached `append`, `prepend`); `cas` (0 = none) must match. A missing key
    /// or another type gives `NotStored` (`NotFound` with a CAS). A result longer than
    /// `max_len` refuses with [`StoreError::TooLarge`], checked under the same lock as the
    /// change.
    pub fn extend_if_string(
        &self,
        key: &[u8],
        data: &[u8],
        side: Side,
        cas: u64,
        max_len: usize,
        now: u64,
    ) -> Result<WriteOutcome, StoreError> {
        self.shard(key, now)
            .extend_if_string(key, data, side, cas, max_len, &self.ctx(now))
    }

    /// Appends `data` to the string under `key`, creating it if missing (Redis `APPEND`);
    /// returns the new length. Longer than `max_len` refuses with [`StoreError::TooLarge`].
    pub fn extend_or_create(
        &self,
        key: &[u8],
        data: &[u8],
        max_len: usize,
        now: u64,
    ) -> Result<usize, StoreError> {
        self.shard(key, now)
            .extend_or_create(key, data, max_len, &self.ctx(now))
    }

    /// memcached's `mg`: the live string under `key` with its meta marks, touched, vivified
    /// or handing out the recache right as `read` says, all under one lock. `Ok(None)` is
    /// a miss; a vivify can fail as a write does (memory, revocation).
    pub fn meta_get(
        &self,
        key: &[u8],
        read: MetaRead,
        now: u64,
    ) -> Result<Option<MetaEntry>, StoreError> {
        self.shard(key, now)
            .meta_get(key, read, &self.ctx_with_cas(now, read.new_cas))
    }

    /// memcached's `md … I`: marks the live string under `key` stale with a new CAS (and a
    /// new deadline if given) instead of removing it; `cas` must match if given.
    pub fn meta_invalidate(
        &self,
        key: &[u8],
        cas: Option<u64>,
        deadline: Option<Option<u64>>,
        new_cas: Option<u64>,
        now: u64,
    ) -> RemoveOutcome {
        self.shard(key, now)
            .meta_invalidate(key, cas, deadline, &self.ctx_with_cas(now, new_cas))
    }

    /// memcached's `ms … C<cas> I`: a CAS write that also accepts an older `cas`, storing
    /// the value as stale (keeping the old deadline). Returns whether it was stored stale.
    #[allow(clippy::too_many_arguments)]
    pub fn write_if_cas_or_stale(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        deadline: Option<u64>,
        cas: u64,
        new_cas: Option<u64>,
        now: u64,
    ) -> Result<(WriteOutcome, bool), StoreError> {
        let ctx = self.ctx_with_cas(now, new_cas);
        self.shard(key, now)
            .write_if_cas_or_stale(key, value, flags, deadline, cas, &ctx)
    }

    /// [`Store::write`] giving the item `new_cas` instead of the counter's next (memcached's
    /// meta `E`).
    pub fn write_with_cas(
        &self,
        key: &[u8],
        value: &[u8],
        how: Write,
        new_cas: Option<u64>,
        now: u64,
    ) -> Result<Written, StoreError> {
        self.shard(key, now)
            .write(key, value, how, &self.ctx_with_cas(now, new_cas))
    }

    /// [`Store::extend_if_string`] giving the item `new_cas` (memcached's meta `E`).
    #[allow(clippy::too_many_arguments)]
    pub fn extend_with_cas(
        &self,
        key: &[u8],
        data: &[u8],
        side: Side,
        cas: u64,
        max_len: usize,
        new_cas: Option<u64>,
        now: u64,
    ) -> Result<WriteOutcome, StoreError> {
        let ctx = self.ctx_with_cas(now, new_cas);
        self.shard(key, now)
            .extend_if_string(key, data, side, cas, max_len, &ctx)
    }

    /// memcached's `ma`: [`Store::add_u64`] with a CAS check (0: none), a new deadline on
    /// success (`retime`) and the resulting deadline in the answer.
    #[allow(clippy::too_many_arguments)]
    pub fn meta_counter(
        &self,
        key: &[u8],
        direction: Direction,
        delta: u64,
        cas: u64,
        vivify: Option<(u64, Option<u64>)>,
        retime: Option<Option<u64>>,
        new_cas: Option<u64>,
        now: u64,
    ) -> Result<MetaCounter, StoreError> {
        self.shard(key, now).meta_counter(
            key,
            direction,
            delta,
            cas,
            vivify,
            retime,
            &self.ctx_with_cas(now, new_cas),
        )
    }

    /// Replaces whatever `key` holds by the whole `value` (any type, no flags); with
    /// `only_if_absent`, only if the key holds nothing. An empty collection removes the key.
    /// Returns whether it wrote. `COPY` and the commands that store a computed collection.
    pub fn put_value(
        &self,
        key: &[u8],
        value: Value,
        only_if_absent: bool,
        deadline: DeadlineChange,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.shard(key, now)
            .put_value(key, value, only_if_absent, deadline, &self.ctx(now))
    }

    /// Removes the live item under `key` of any type and returns its value.
    pub fn remove(&self, key: &[u8], now: u64) -> Option<Value> {
        self.shard(key, now)
            .take(key, Accept::Any, &self.ctx(now))
            .ok()
            .flatten()
    }

    /// Removes the live string under `key`; `cas` (0 = none) must match. Another type is a
    /// miss (memcached `delete`).
    pub fn remove_if_string(&self, key: &[u8], cas: u64, now: u64) -> RemoveOutcome {
        self.shard(key, now)
            .remove_if_string(key, cas, &self.ctx(now))
    }

    /// Removes and returns the string under `key`; another type is left alone and answers
    /// [`StoreError::WrongType`] (Redis `GETDEL`).
    pub fn take_string(&self, key: &[u8], now: u64) -> Result<Option<Bytes>, StoreError> {
        let value = self
            .shard(key, now)
            .take(key, Accept::OnlyString, &self.ctx(now))?;
        Ok(value.and_then(|v| match v {
            Value::Str(bytes) => Some(bytes),
            _ => None,
        }))
    }

    /// Moves the unsigned decimal counter under `key` by `delta` in `direction` (up wraps
    /// at 2^64, down stops at 0, as memcached does). A missing string is created from
    /// `initial` (value, deadline) when given; another type is a miss.
    pub fn add_u64(
        &self,
        key: &[u8],
        direction: Direction,
        delta: u64,
        initial: Option<(u64, Option<u64>)>,
        now: u64,
    ) -> Result<CounterOutcome, StoreError> {
        self.shard(key, now)
            .add_u64(key, direction, delta, initial, &self.ctx(now))
    }

    /// Adds `delta` to the signed decimal string under `key` (missing counts as 0), keeping
    /// its deadline; returns the new value. Overflow refuses (Redis `INCRBY`).
    pub fn add_i64(&self, key: &[u8], delta: i64, now: u64) -> Result<i64, StoreError> {
        self.shard(key, now).add_i64(key, delta, &self.ctx(now))
    }

    /// Moves the item under `src` to `dst` (what `dst` holds is replaced or kept, as
    /// `if_target_exists` says), with
    /// its value, flags and deadline. Atomic: both shards are locked, in index order so that
    /// two renames in opposite directions cannot deadlock, and the observer hears of the new
    /// key before the removal of the old one (a journal torn between the two keeps both
    /// rather than neither).
    pub fn rename(
        &self,
        src: &[u8],
        dst: &[u8],
        if_target_exists: IfTargetExists,
        now: u64,
    ) -> RenameOutcome {
        let nx = if_target_exists == IfTargetExists::Keep;
        self.apply_pending_flush(now);
        let ctx = self.ctx(now);
        let (a, b) = (self.shard_index(src), self.shard_index(dst));
        if src == dst {
            let present = self.lock(a).contains(src, &ctx);
            return match (present, nx) {
                (false, _) => RenameOutcome::NoSuchKey,
                (true, true) => RenameOutcome::TargetExists,
                (true, false) => RenameOutcome::Renamed,
            };
        }
        let mut first = self.lock(a.min(b));
        let mut second = (a != b).then(|| self.lock(a.max(b)));
        let (src_shard, dst_shard): (&mut Shard, &mut Shard) = match &mut second {
            None => {
                // One shard: move within it.
                let shard = &mut *first;
                if !shard.contains(src, &ctx) {
                    return RenameOutcome::NoSuchKey;
                }
                if nx && shard.contains(dst, &ctx) {
                    return RenameOutcome::TargetExists;
                }
                if shard.is_revoked(dst, &ctx) {
                    return RenameOutcome::TargetRevoked;
                }
                if let Some(moved) = shard.take_for_move(src, &ctx) {
                    shard.land(dst, moved, &ctx);
                    ctx.applied_remove(src);
                }
                return RenameOutcome::Renamed;
            }
            Some(second) if a < b => (&mut *first, &mut **second),
            Some(second) => (&mut **second, &mut *first),
        };
        if !src_shard.contains(src, &ctx) {
            return RenameOutcome::NoSuchKey;
        }
        if nx && dst_shard.contains(dst, &ctx) {
            return RenameOutcome::TargetExists;
        }
        if dst_shard.is_revoked(dst, &ctx) {
            return RenameOutcome::TargetRevoked;
        }
        if let Some(moved) = src_shard.take_for_move(src, &ctx) {
            dst_shard.land(dst, moved, &ctx);
            ctx.applied_remove(src);
        }
        RenameOutcome::Renamed
    }

    /// One `SCAN` step from `cursor` (0 starts), visiting about `count` keys; returns the
    /// next cursor (0 when done) and the visited keys that `keep` accepts.
    ///
    /// The cursor is the shard index (top 6 bits) and a position within the shard: the key's
    /// hash without the 6 bits that chose the shard. Positions do not move when a shard's
    /// table grows, so a key present for the whole scan is returned at least once, as Redis
    /// promises; a step holds one shard lock at a time and keeps at most `count` keys (plus
    /// hash ties) in hand. Positions come from this process's hasher: a cursor does not
    /// survive a restart.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now: u64,
        keep: &mut dyn FnMut(&[u8], &Value) -> bool,
    ) -> (u64, Vec<Bytes>) {
        const POS_BITS: u32 = 64 - SHARDS.trailing_zeros();
        self.apply_pending_flush(now);
        let count = count.max(1);
        let pos = |key: &[u8]| self.hasher.hash_one(key) >> SHARDS.trailing_zeros();
        let mut shard = (cursor >> POS_BITS) as usize;
        let mut from = cursor & ((1 << POS_BITS) - 1);
        let mut out = Vec::new();
        let mut visited = 0;
        while shard < SHARDS && visited < count {
            let budget = count - visited;
            let mut taken = 0;
            let mut counted = |key: &[u8], value: &Value| {
                taken += 1;
                keep(key, value)
            };
            let last = self
                .lock(shard)
                .scan(now, from, budget, &pos, &mut counted, &mut out);
            visited += taken;
            match last {
                Some(last) if last + 1 < (1 << POS_BITS) && visited >= count => {
                    return (((shard as u64) << POS_BITS) | (last + 1), out);
                }
                _ => {
                    shard += 1;
                    from = 0;
                }
            }
        }
        if shard >= SHARDS {
            (0, out)
        } else {
            ((shard as u64) << POS_BITS, out)
        }
    }

    /// Every live key that `keep` accepts (`KEYS`). One shard lock at a time.
    pub fn keys(&self, now: u64, keep: &mut dyn FnMut(&[u8], &Value) -> bool) -> Vec<Bytes> {
        self.apply_pending_flush(now);
        let mut out = Vec::new();
        for index in 0..SHARDS {
            self.lock(index).keys(now, keep, &mut out);
        }
        out
    }
}
