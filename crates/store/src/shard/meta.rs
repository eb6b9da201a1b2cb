//! memcached's meta commands that need more than a plain read or write: `mg` with its
//! touch, vivify-on-miss and recache right; `md … I` (mark stale); `ms … I C` (store an
//! older CAS as stale); `ma` with a CAS, a TTL and vivify. Each is one check-and-change under
//! the shard's lock.
//!
//! The per-item marks (fetched, stale, recache right handed out) and the last-access time
//! live in the item's header. The marks a client's command sets and is answered about
//! (stale, recache right handed out) reach the observer as a [`Mutation::Marks`] with the
//! item's CAS, so the journal keeps them: an acknowledged invalidation survives a restart.
//! The fetched mark and the last-access time are not journaled (every read would be a
//! write): after a restart an item reads as never fetched (see `docs/memcached.md`).
//! Everything else a meta command changes (a value, a deadline) reaches the observer as
//! usual.

use bytes::Bytes;

use super::{Ctx, Shard, accessed, parse_counter};
use crate::item::{Item, Marks};
use crate::{Direction, MetaCounter, MetaEntry, MetaRead, Mutation, StoreError, WriteOutcome};

/// What a meta command reports of `item`, with `won` from the command.
fn report(item: &Item, won: bool) -> Option<MetaEntry> {
    let marks = item.marks();
    Some(MetaEntry {
        entry: item.string_entry()?,
        last_access: u64::from(item.last_access()),
        fetched: marks.has(Marks::FETCHED),
        stale: marks.has(Marks::STALE),
        token_sent: marks.has(Marks::TOKEN_SENT),
        won,
    })
}

/// The journaled part of `marks` on the string under `key`, whose CAS is `cas`.
fn marks_of(key: &[u8], cas: u64, marks: Marks) -> Mutation<'_> {
    Mutation::Marks {
        key,
        cas,
        stale: marks.has(Marks::STALE),
        recache_taken: marks.has(Marks::TOKEN_SENT),
    }
}

impl Shard {
    /// The journaled marks of every live string in this shard that has any, as the
    /// [`Mutation::Marks`] fields (key, CAS, stale, recache taken), for a snapshot.
    pub fn marked(&self, now: u64) -> Vec<(Bytes, u64, bool, bool)> {
        self.table
            .iter()
            .filter(|item| item.is_live(now) && item.str_value().is_some())
            .filter_map(|item| {
                let marks = item.marks();
                let (stale, taken) = (marks.has(Marks::STALE), marks.has(Marks::TOKEN_SENT));
                (stale || taken)
                    .then(|| (Bytes::copy_from_slice(item.key()), item.cas(), stale, taken))
            })
            .collect()
    }

    /// Replays a [`Mutation::Marks`]: the live string under `key` gets `cas` and exactly
    /// the journaled marks given (the fetched mark is left as it is).
    pub(super) fn restore_marks(&mut self, key: &[u8], cas: u64, stale: bool, taken: bool) {
        let Some(item) = self.find_mut(key) else {
            return;
        };
        if item.str_value().is_none() {
            return;
        }
        let mut bits = item.marks().0 & Marks::FETCHED;
        if stale {
            bits |= Marks::STALE;
        }
        if taken {
            bits |= Marks::TOKEN_SENT;
        }
        item.set_marks(Marks(bits));
        item.set_cas(cas);
    }

    /// `mg`: reads the string under `key`, doing what `read` asks under the same lock.
    /// `Ok(None)` is a miss (nothing vivified).
    pub fn meta_get(
        &mut self,
        key: &[u8],
        read: MetaRead,
        ctx: &Ctx<'_>,
    ) -> Result<Option<MetaEntry>, StoreError> {
        let mut created = false;
        if self.live_str(key, ctx).is_none() {
            let Some(deadline) = read.vivify else {
                return Ok(None);
            };
            if ctx.is_past(deadline) {
                // Born expired: nothing stays, but this client was the one to ask.
                let entry = MetaEntry {
                    entry: crate::Entry {
                        value: Bytes::new(),
                        flags: 0,
                        cas: 0,
                        deadline,
                    },
                    last_access: ctx.now / 1000,
                    fetched: false,
                    stale: false,
                    token_sent: false,
                    won: true,
                };
                return Ok(Some(entry));
            }
            // Another type under the key is replaced, as a memcached write replaces it.
            let old_charged = self.live(key, ctx).map_or(0, |item| item.charge());
            let cas = ctx.new_cas();
            self.write_str(key, &[], 0, cas, deadline, old_charged, ctx)?;
            created = true;
        } else {
            ctx.read(key);
        }
        if let Some(deadline) = read.touch {
            if ctx.is_past(deadline) {
                // The item is answered as it was, then gone (memcached's `touch` rule).
                let item = self.remove(key, ctx);
                ctx.applied(Mutation::Remove { key });
                return Ok(item.and_then(|item| report(&item, false)));
            }
            self.reschedule(key, deadline);
            ctx.applied(Mutation::Deadline { key, deadline });
        }
        let Some(item) = self.live_str(key, ctx) else {
            return Ok(None);
        };
        let marks = item.marks();
        let token_sent = marks.has(Marks::TOKEN_SENT);
        let mut won = created;
        if let Some(before) = read.recache_before
            && !token_sent
            && !created
            && item.deadline().is_some_and(|d| d < before)
        {
            won = true;
        }
        if marks.has(Marks::STALE) && !token_sent {
            won = true;
        }
        won &= !read.peek;
        let reported = report(item, won);
        if won {
            let now_marks = Marks(marks.0 | Marks::TOKEN_SENT);
            item.set_marks(now_marks);
            ctx.applied(marks_of(key, item.cas(), now_marks));
        }
        if read.bump {
            accessed(item, ctx.now);
        }
        Ok(reported)
    }

    /// `md … I`: marks the string under `key` stale, with a new CAS and, if given, a new
    /// deadline; the recache right is free again. `cas` must match if given.
    pub fn meta_invalidate(
        &mut self,
        key: &[u8],
        cas: Option<u64>,
        deadline: Option<Option<u64>>,
        ctx: &Ctx<'_>,
    ) -> crate::RemoveOutcome {
        let Some(item) = self.live_str(key, ctx) else {
            return crate::RemoveOutcome::NotFound;
        };
        if cas.is_some_and(|cas| cas != item.cas()) {
            return crate::RemoveOutcome::Exists;
        }
        let marks = Marks((item.marks().0 | Marks::STALE) & !Marks::TOKEN_SENT);
        let cas = ctx.new_cas();
        item.set_marks(marks);
        item.set_cas(cas);
        // Journaled before any deadline change, in the order applied.
        ctx.applied(marks_of(key, cas, marks));
        if let Some(deadline) = deadline {
            if ctx.is_past(deadline) {
                self.remove(key, ctx);
                ctx.applied(Mutation::Remove { key });
            } else {
                self.reschedule(key, deadline);
                ctx.applied(Mutation::Deadline { key, deadline });
            }
        }
        crate::RemoveOutcome::Removed
    }

    /// `ms … C<cas> I`: stores `value` if the string's CAS is `cas`; if `cas` is older
    /// (smaller), stores it anyway but stale, keeping the old deadline and recache right.
    /// Returns the outcome and whether the stored item is stale.
    #[allow(clippy::too_many_arguments)]
    pub fn write_if_cas_or_stale(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        deadline: Option<u64>,
        cas: u64,
        ctx: &Ctx<'_>,
    ) -> Result<(WriteOutcome, bool), StoreError> {
        let Some(item) = self.live_str(key, ctx) else {
            return Ok((WriteOutcome::NotFound, false));
        };
        let (current, old_deadline, marks, charged) =
            (item.cas(), item.deadline(), item.marks(), item.charge());
        let stale = cas < current;
        if cas != current && !stale {
            return Ok((WriteOutcome::Exists, false));
        }
        let deadline = if stale { old_deadline } else { deadline };
        let new_cas = ctx.new_cas();
        if ctx.is_past(deadline) {
            self.remove(key, ctx);
            ctx.applied(Mutation::Remove { key });
            return Ok((WriteOutcome::Stored(new_cas), stale));
        }
        self.write_str(key, &[value], flags, new_cas, deadline, charged, ctx)?;
        if stale && let Some(item) = self.find_mut(key) {
            let kept = marks.0 & Marks::TOKEN_SENT;
            let marks = Marks(Marks::STALE | kept);
            item.set_marks(marks);
            // The write reported its `Put` (which starts with no marks); these follow it.
            ctx.applied(marks_of(key, new_cas, marks));
        }
        Ok((WriteOutcome::Stored(new_cas), stale))
    }

    /// `ma`: moves the counter under `key` (`cas`, 0 for none, must match), then sets its
    /// deadline to `retime` if given; a miss creates it from `vivify` (value, deadline).
    #[allow(clippy::too_many_arguments)]
    pub fn meta_counter(
        &mut self,
        key: &[u8],
        direction: Direction,
        delta: u64,
        cas: u64,
        vivify: Option<(u64, Option<u64>)>,
        retime: Option<Option<u64>>,
        ctx: &Ctx<'_>,
    ) -> Result<MetaCounter, StoreError> {
        let Some(item) = self.live_str(key, ctx) else {
            let Some((value, deadline)) = vivify else {
                return Ok(MetaCounter::NotFound);
            };
            let deadline = retime.unwrap_or(deadline);
            let text = value.to_string();
            let new_cas = ctx.new_cas();
            if ctx.is_past(deadline) {
                return Ok(MetaCounter::Value(value, new_cas, deadline));
            }
            let old_charged = self.live(key, ctx).map_or(0, |item| item.charge());
            self.write_str(
                key,
                &[text.as_bytes()],
                0,
                new_cas,
                deadline,
                old_charged,
                ctx,
            )?;
            return Ok(MetaCounter::Value(value, new_cas, deadline));
        };
        if cas != 0 && item.cas() != cas {
            return Ok(MetaCounter::Exists);
        }
        let Some(current) = item.str_value().and_then(parse_counter) else {
            return Ok(MetaCounter::NonNumeric);
        };
        let next = match direction {
            Direction::Up => current.wrapping_add(delta),
            Direction::Down => current.saturating_sub(delta),
        };
        let (flags, charged) = (item.flags(), item.charge());
        let deadline = retime.unwrap_or(item.deadline());
        let text = next.to_string();
        let new_cas = ctx.new_cas();
        if ctx.is_past(deadline) {
            self.remove(key, ctx);
            ctx.applied(Mutation::Remove { key });
            return Ok(MetaCounter::Value(next, new_cas, deadline));
        }
        self.write_str(
            key,
            &[text.as_bytes()],
            flags,
            new_cas,
            deadline,
            charged,
            ctx,
        )?;
        Ok(MetaCounter::Value(next, new_cas, deadline))
    }
}
