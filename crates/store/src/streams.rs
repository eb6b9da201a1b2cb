//! Operations on streams (RESP only): each plans [`StreamOp`]s from the stream and the time
//! it is given, under the shard lock, and the shard applies and journals them
//! (`Shard::stream`). Reads (`XRANGE`, `XINFO`, `XPENDING`, …) take the stream's `Arc`
//! through [`Store::get`] and need nothing here.
//!
//! A refusal that Redis words as its own error (an ID not above the top, no such group) is
//! a [`StreamRefusal`] inside `Ok`, with nothing changed; the glue words it.

use bytes::Bytes;

use crate::{Store, StoreError, Stream, StreamId, StreamOp};

/// Why a stream command changed nothing, in Redis's terms (the glue has the texts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRefusal {
    /// `XADD`'s ID is not above the stream's last.
    IdTooSmall,
    /// The stream's last ID is the largest possible: `*` has nowhere to go.
    Exhausted,
    /// The key does not exist.
    NoSuchKey,
    /// No such group.
    NoGroup,
    /// The group exists already.
    BusyGroup,
    /// `XSETID`'s ID is below the last entry.
    SetIdTooSmall,
    /// `XSETID`'s entries-added is below the length.
    EntriesAddedTooSmall,
}

/// The ID `XADD` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddId {
    /// `*`: the time, or one past the last ID.
    Auto,
    /// `ms-*`: the next sequence at these milliseconds.
    AtMs(u64),
    /// An explicit ID.
    Exact(StreamId),
}

/// How to trim (`MAXLEN`/`MINID`, exact or `~`, with `LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    /// What to keep.
    pub keep: Keep,
    /// `~`: remove only whole nodes (see [`Stream::node_for_new`]), at most `limit`
    /// entries.
    pub approx: bool,
    /// The most entries an approximate trim removes (0: no limit). Redis's default is
    /// 100 nodes' worth; the caller, who knows the node size, fills it in.
    pub limit: u64,
}

/// What a trim keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// At most this many newest entries.
    MaxLen(u64),
    /// The entries at or above this ID.
    MinId(StreamId),
}

/// Where a group read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// `>`: entries never delivered to the group.
    New,
    /// An ID: the consumer's own pending entries after it (its history; exclusive, as
    /// every ID of the `XREAD` family).
    History(StreamId),
}

/// One entry a group read or claim hands out: its fields, or `None` when it was deleted.
pub type Delivered = (StreamId, Option<Vec<Bytes>>);

/// `XCLAIM`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClaimOptions {
    /// The delivery time to set (`IDLE`/`TIME`), default now.
    pub delivery_time: Option<u64>,
    /// The delivery count to set (`RETRYCOUNT`).
    pub retry_count: Option<u64>,
    /// Create pending entries for IDs that are not pending (if the entry exists).
    pub force: bool,
    /// Return only IDs and leave the delivery count alone.
    pub just_id: bool,
    /// Move the group's last-delivered ID up to this one (`LASTID`).
    pub last_id: Option<StreamId>,
}

/// What `XAUTOCLAIM` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoClaimed {
    /// Where the next call starts (`0-0`: the scan is complete).
    pub next: StreamId,
    /// The claimed entries.
    pub claimed: Vec<Delivered>,
    /// Pending IDs whose entry was gone, removed from the pending list.
    pub deleted: Vec<StreamId>,
}

/// How many of the oldest entries `trim` removes from a stream whose entries (ID and
/// node, oldest first) are `entries`, `len` of them: Redis's `streamTrim`. Exact trimming
/// removes every entry past the threshold; `~` removes whole nodes while the one after
/// still leaves enough (`MAXLEN`) or all its entries are below the ID (`MINID`), and stops
/// before passing the limit.
pub fn trim_count(entries: impl Iterator<Item = (StreamId, u64)>, len: u64, trim: &Trim) -> u64 {
    let mut entries = entries.peekable();
    if !trim.approx {
        return match trim.keep {
            Keep::MaxLen(max) => len.saturating_sub(max),
            Keep::MinId(min) => entries.take_while(|(id, _)| *id < min).count() as u64,
        };
    }
    let (mut length, mut deleted) = (len, 0u64);
    while let Some((first, node)) = entries.next() {
        let (mut count, mut last) = (1u64, first);
        while let Some((id, _)) = entries.next_if(|(_, n)| *n == node) {
            count += 1;
            last = id;
        }
        if let Keep::MaxLen(max) = trim.keep
            && length <= max
        {
            break;
        }
        if trim.limit != 0 && deleted + count > trim.limit {
            break;
        }
        let remove = match trim.keep {
            Keep::MaxLen(max) => length - count >= max,
            Keep::MinId(min) => last < min,
        };
        if !remove {
            break;
        }
        length -= count;
        deleted += count;
    }
    deleted
}

/// The ID `XADD` would give `wanted` on `stream` (`None` when missing) at `now`.
fn next_id(stream: Option<&Stream>, wanted: AddId, now: u64) -> Result<StreamId, StreamRefusal> {
    let last = stream.map_or(StreamId::MIN, Stream::last_id);
    if last == StreamId::MAX {
        return Err(StreamRefusal::Exhausted);
    }
    match wanted {
        AddId::Auto if now > last.ms => Ok(StreamId::new(now, 0)),
        AddId::Auto => last.next().ok_or(StreamRefusal::Exhausted),
        AddId::AtMs(ms) if ms > last.ms => Ok(StreamId::new(ms, 0)),
        AddId::AtMs(ms) if ms == last.ms => match last.seq.checked_add(1) {
            Some(seq) => Ok(StreamId::new(ms, seq)),
            None => Err(StreamRefusal::IdTooSmall),
        },
        AddId::AtMs(_) => Err(StreamRefusal::IdTooSmall),
        AddId::Exact(id) if id > last => Ok(id),
        AddId::Exact(_) => Err(StreamRefusal::IdTooSmall),
    }
}

type Planned<R> = Result<(Vec<StreamOp>, R), StoreError>;

fn nothing<R>(answer: R) -> Planned<R> {
    Ok((Vec::new(), answer))
}

impl Store {
    fn stream_plan<R>(
        &self,
        key: &[u8],
        now: u64,
        plan: impl FnOnce(Option<&Stream>) -> Planned<R>,
    ) -> Result<R, StoreError> {
        self.shard(key, now).stream(key, &self.ctx(now), plan)
    }

    /// `XADD`: adds an entry of `fields` (field, value, … ; at least one pair) with the ID
    /// `id` resolves to at `now`, creating the stream unless `no_create`, then trims. Nodes
    /// hold `node_entries` entries (see [`Stream::node_for_new`]). The new ID and how many
    /// entries the trim removed, `None` when the key is missing and `no_create`.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_add(
        &self,
        key: &[u8],
        id: AddId,
        fields: &[Bytes],
        no_create: bool,
        trim: Option<Trim>,
        node_entries: u64,
        now: u64,
    ) -> Result<Result<Option<(StreamId, u64)>, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            if stream.is_none() && no_create {
                return nothing(Ok(None));
            }
            let id = match next_id(stream, id, now) {
                Ok(id) => id,
                Err(refusal) => return nothing(Err(refusal)),
            };
            let node = stream.map_or(0, |s| s.node_for_new(node_entries));
            let mut ops = vec![StreamOp::Add {
                id,
                node,
                fields: fields.to_vec(),
            }];
            let mut trimmed = 0;
            if let Some(trim) = trim {
                // Counted on the stream after the add: one more entry, the newest.
                let len = stream.map_or(0, |s| s.len() as u64) + 1;
                let entries = stream
                    .into_iter()
                    .flat_map(Stream::nodes)
                    .chain([(id, node)]);
                trimmed = trim_count(entries, len, &trim);
                if trimmed > 0 {
                    ops.push(StreamOp::Trim { count: trimmed });
                }
            }
            Ok((ops, Ok(Some((id, trimmed)))))
        })
    }

    /// `XTRIM`: how many entries were removed.
    pub fn stream_trim(&self, key: &[u8], trim: Trim, now: u64) -> Result<u64, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(stream) = stream else {
                return nothing(0);
            };
            let count = trim_count(stream.nodes(), stream.len() as u64, &trim);
            let ops = if count > 0 {
                vec![StreamOp::Trim { count }]
            } else {
                Vec::new()
            };
            Ok((ops, count))
        })
    }

    /// `XDEL`: how many of `ids` were entries.
    pub fn stream_delete(&self, key: &[u8], ids: &[StreamId], now: u64) -> Result<u64, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(stream) = stream else {
                return nothing(0);
            };
            let mut found: Vec<StreamId> = ids
                .iter()
                .copied()
                .filter(|id| stream.entry(*id).is_some())
                .collect();
            found.sort_unstable();
            found.dedup();
            let n = found.len() as u64;
            let ops = if n > 0 {
                vec![StreamOp::Delete { ids: found }]
            } else {
                Vec::new()
            };
            Ok((ops, n))
        })
    }

    /// `XSETID`.
    pub fn stream_set_id(
        &self,
        key: &[u8],
        last: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
        now: u64,
    ) -> Result<Result<(), StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(stream) = stream else {
                return nothing(Err(StreamRefusal::NoSuchKey));
            };
            if let Some((top, _)) = stream.last_entry() {
                if last < top {
                    return nothing(Err(StreamRefusal::SetIdTooSmall));
                }
                if entries_added.is_some_and(|n| n < stream.len() as u64) {
                    return nothing(Err(StreamRefusal::EntriesAddedTooSmall));
                }
            }
            let op = StreamOp::SetId {
                last,
                entries_added,
                max_deleted: max_deleted.filter(|id| !id.is_zero()),
            };
            Ok((vec![op], Ok(())))
        })
    }

    /// `XGROUP CREATE`: `last` `None` is `$`; `create` is `MKSTREAM`.
    pub fn stream_group_create(
        &self,
        key: &[u8],
        name: &[u8],
        last: Option<StreamId>,
        create: bool,
        entries_read: Option<u64>,
        now: u64,
    ) -> Result<Result<(), StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            if stream.is_none() && !create {
                return nothing(Err(StreamRefusal::NoSuchKey));
            }
            if stream.is_some_and(|s| s.group(name).is_some()) {
                return nothing(Err(StreamRefusal::BusyGroup));
            }
            let last = last.unwrap_or_else(|| stream.map_or(StreamId::MIN, Stream::last_id));
            let op = StreamOp::GroupCreate {
                name: Bytes::copy_from_slice(name),
                last,
                entries_read,
            };
            Ok((vec![op], Ok(())))
        })
    }

    /// `XGROUP SETID`: `last` `None` is `$`.
    pub fn stream_group_set_id(
        &self,
        key: &[u8],
        name: &[u8],
        last: Option<StreamId>,
        entries_read: Option<u64>,
        now: u64,
    ) -> Result<Result<(), StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(stream) = stream else {
                return nothing(Err(StreamRefusal::NoSuchKey));
            };
            if stream.group(name).is_none() {
                return nothing(Err(StreamRefusal::NoGroup));
            }
            let op = StreamOp::GroupSet {
                name: Bytes::copy_from_slice(name),
                last: last.unwrap_or(stream.last_id()),
                entries_read,
            };
            Ok((vec![op], Ok(())))
        })
    }

    /// `XGROUP DESTROY`: whether the group existed.
    pub fn stream_group_destroy(
        &self,
        key: &[u8],
        name: &[u8],
        now: u64,
    ) -> Result<Result<bool, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(stream) = stream else {
                return nothing(Err(StreamRefusal::NoSuchKey));
            };
            if stream.group(name).is_none() {
                return nothing(Ok(false));
            }
            let op = StreamOp::GroupDestroy {
                name: Bytes::copy_from_slice(name),
            };
            Ok((vec![op], Ok(true)))
        })
    }

    /// `XGROUP CREATECONSUMER`: whether it was created.
    pub fn stream_consumer_create(
        &self,
        key: &[u8],
        group: &[u8],
        name: &[u8],
        now: u64,
    ) -> Result<Result<bool, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let g = match stream.map(|s| s.group(group)) {
                None => return nothing(Err(StreamRefusal::NoSuchKey)),
                Some(None) => return nothing(Err(StreamRefusal::NoGroup)),
                Some(Some(g)) => g,
            };
            if g.consumers.contains_key(name) {
                return nothing(Ok(false));
            }
            let op = StreamOp::ConsumerSeen {
                group: Bytes::copy_from_slice(group),
                name: Bytes::copy_from_slice(name),
                time: now,
                active: false,
            };
            Ok((vec![op], Ok(true)))
        })
    }

    /// `XGROUP DELCONSUMER`: how many entries were pending for it.
    pub fn stream_consumer_delete(
        &self,
        key: &[u8],
        group: &[u8],
        name: &[u8],
        now: u64,
    ) -> Result<Result<u64, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let g = match stream.map(|s| s.group(group)) {
                None => return nothing(Err(StreamRefusal::NoSuchKey)),
                Some(None) => return nothing(Err(StreamRefusal::NoGroup)),
                Some(Some(g)) => g,
            };
            let Some(consumer) = g.consumers.get(name) else {
                return nothing(Ok(0));
            };
            let pending = consumer.pending.len() as u64;
            let op = StreamOp::ConsumerDelete {
                group: Bytes::copy_from_slice(group),
                name: Bytes::copy_from_slice(name),
            };
            Ok((vec![op], Ok(pending)))
        })
    }

    /// `XREADGROUP` on one stream: up to `count` entries (0: no limit) for `consumer`
    /// (created if missing). `New` delivers entries after the group's position and moves
    /// it (adding them to the pending list unless `no_ack`); `History` hands back the
    /// consumer's pending entries after the ID, counting the delivery again. `fits` is
    /// asked about each entry's reply size, under the shard lock and before anything
    /// changes: one `false` delivers nothing and is [`StoreError::TooLarge`], so a reply
    /// that could not be sent never moves the group or fills its pending list.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_read_group(
        &self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        from: ReadFrom,
        count: usize,
        no_ack: bool,
        mut fits: impl FnMut(&[Bytes]) -> bool,
        now: u64,
    ) -> Result<Result<Vec<Delivered>, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(stream) = stream else {
                return nothing(Err(StreamRefusal::NoGroup));
            };
            let Some(g) = stream.group(group) else {
                return nothing(Err(StreamRefusal::NoGroup));
            };
            let count = if count == 0 { usize::MAX } else { count };
            let group_name = Bytes::copy_from_slice(group);
            let consumer_name = Bytes::copy_from_slice(consumer);
            let mut out = Vec::new();
            let mut pending = Vec::new();
            match from {
                ReadFrom::New => {
                    let mut read = g.entries_read;
                    let mut last = g.last_delivered;
                    if let Some(start) = g.last_delivered.next() {
                        for (id, fields) in stream.range(start, StreamId::MAX).take(count) {
                            if !fits(fields) {
                                return Err(StoreError::TooLarge);
                            }
                            read = stream.entries_read_after(read, id);
                            last = id;
                            out.push((id, Some(fields.to_vec())));
                            if !no_ack {
                                pending.push((id, 1));
                            }
                        }
                    }
                    let mut ops = vec![StreamOp::ConsumerSeen {
                        group: group_name.clone(),
                        name: consumer_name.clone(),
                        time: now,
                        active: !out.is_empty(),
                    }];
                    if !out.is_empty() {
                        ops.push(StreamOp::GroupSet {
                            name: group_name.clone(),
                            last,
                            entries_read: read,
                        });
                    }
                    if !pending.is_empty() {
                        ops.push(StreamOp::PendingSet {
                            group: group_name,
                            consumer: consumer_name,
                            time: now,
                            entries: pending,
                        });
                    }
                    Ok((ops, Ok(out)))
                }
                ReadFrom::History(start) => {
                    let mut ops = vec![StreamOp::ConsumerSeen {
                        group: group_name.clone(),
                        name: consumer_name.clone(),
                        time: now,
                        active: false,
                    }];
                    // After the ID, as every XREAD-family ID means.
                    let after = start.next();
                    if let (Some(c), Some(after)) = (g.consumers.get(consumer), after) {
                        for id in c.pending.range(after..).take(count) {
                            match stream.entry(*id) {
                                Some(fields) => {
                                    if !fits(fields) {
                                        return Err(StoreError::TooLarge);
                                    }
                                    let n = g.pending.get(id).map_or(0, |p| p.delivery_count);
                                    pending.push((*id, n.saturating_add(1)));
                                    out.push((*id, Some(fields.to_vec())));
                                }
                                None => out.push((*id, None)),
                            }
                        }
                    }
                    if !pending.is_empty() {
                        ops.push(StreamOp::PendingSet {
                            group: group_name,
                            consumer: consumer_name,
                            time: now,
                            entries: pending,
                        });
                    }
                    Ok((ops, Ok(out)))
                }
            }
        })
    }

    /// `XACK`: how many of `ids` were pending.
    pub fn stream_ack(
        &self,
        key: &[u8],
        group: &[u8],
        ids: &[StreamId],
        now: u64,
    ) -> Result<u64, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some(g) = stream.and_then(|s| s.group(group)) else {
                return nothing(0);
            };
            let mut found: Vec<StreamId> = ids
                .iter()
                .copied()
                .filter(|id| g.pending.contains_key(id))
                .collect();
            found.sort_unstable();
            found.dedup();
            let n = found.len() as u64;
            let ops = if n > 0 {
                vec![StreamOp::PendingRemove {
                    group: Bytes::copy_from_slice(group),
                    ids: found,
                }]
            } else {
                Vec::new()
            };
            Ok((ops, n))
        })
    }

    /// `XCLAIM`: the pending entries among `ids` idle at least `min_idle` ms move to
    /// `consumer` (created); entries deleted meanwhile leave the pending list. `fits` is
    /// asked about each claimed entry's reply size (its fields; none with `JUSTID`) before
    /// anything changes, as in [`Store::stream_read_group`]: one `false` claims nothing and
    /// is [`StoreError::TooLarge`]. With `JUSTID` the fields are not copied.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_claim(
        &self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        min_idle: u64,
        ids: &[StreamId],
        options: ClaimOptions,
        mut fits: impl FnMut(&[Bytes]) -> bool,
        now: u64,
    ) -> Result<Result<Vec<Delivered>, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some((stream, g)) = stream.and_then(|s| Some((s, s.group(group)?))) else {
                return nothing(Err(StreamRefusal::NoGroup));
            };
            let group_name = Bytes::copy_from_slice(group);
            let consumer_name = Bytes::copy_from_slice(consumer);
            let time = options.delivery_time.unwrap_or(now);
            let mut ops = Vec::new();
            if let Some(last) = options.last_id.filter(|id| *id > g.last_delivered) {
                ops.push(StreamOp::GroupSet {
                    name: group_name.clone(),
                    last,
                    entries_read: g.entries_read,
                });
            }
            let (mut claimed, mut gone, mut out) = (Vec::new(), Vec::new(), Vec::new());
            let mut seen = std::collections::BTreeSet::new();
            for id in ids {
                if !seen.insert(*id) {
                    continue;
                }
                let entry = stream.entry(*id);
                let current = g.pending.get(id);
                let count = match (current, entry) {
                    (Some(_), None) => {
                        gone.push(*id);
                        continue;
                    }
                    // A forced pending entry starts as delivered once, as Redis's does.
                    (None, Some(_)) if options.force => 1,
                    (None, _) => continue,
                    (Some(p), Some(_)) => {
                        if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                            continue;
                        }
                        p.delivery_count
                    }
                };
                let count = match (options.retry_count, options.just_id) {
                    (Some(n), _) => n,
                    (None, true) => count,
                    (None, false) => count.saturating_add(1),
                };
                let fields = if options.just_id { None } else { entry };
                if !fits(fields.unwrap_or(&[])) {
                    return Err(StoreError::TooLarge);
                }
                claimed.push((*id, count));
                out.push((*id, fields.map(<[Bytes]>::to_vec)));
            }
            if !gone.is_empty() {
                ops.push(StreamOp::PendingRemove {
                    group: group_name.clone(),
                    ids: gone,
                });
            }
            // The consumer is created (and seen) only when it gets something, as in Redis.
            if !claimed.is_empty() {
                ops.push(StreamOp::ConsumerSeen {
                    group: group_name.clone(),
                    name: consumer_name.clone(),
                    time: now,
                    active: true,
                });
                ops.push(StreamOp::PendingSet {
                    group: group_name,
                    consumer: consumer_name,
                    time,
                    entries: claimed,
                });
            }
            Ok((ops, Ok(out)))
        })
    }

    /// `XAUTOCLAIM`: scans the pending list from `start`, looking at up to `count`
    /// entries (Redis looks at ten times that many at most), claiming those idle at least
    /// `min_idle` ms. `fits` is asked about each reply element before anything changes (a
    /// claimed entry's fields, none with `JUSTID`; an empty slice for a deleted entry's
    /// ID): one `false` claims nothing and is [`StoreError::TooLarge`]. With `JUSTID` the
    /// fields are not copied.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_autoclaim(
        &self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        min_idle: u64,
        start: StreamId,
        count: usize,
        just_id: bool,
        mut fits: impl FnMut(&[Bytes]) -> bool,
        now: u64,
    ) -> Result<Result<AutoClaimed, StreamRefusal>, StoreError> {
        self.stream_plan(key, now, |stream| {
            let Some((stream, g)) = stream.and_then(|s| Some((s, s.group(group)?))) else {
                return nothing(Err(StreamRefusal::NoGroup));
            };
            let group_name = Bytes::copy_from_slice(group);
            let consumer_name = Bytes::copy_from_slice(consumer);
            let mut attempts = count.saturating_mul(10);
            let mut left = count;
            let (mut claimed, mut deleted, mut out) = (Vec::new(), Vec::new(), Vec::new());
            let mut next = StreamId::MIN;
            let mut iter = g.pending.range(start..);
            loop {
                if attempts == 0 || left == 0 {
                    // Where the next call resumes: the next pending ID, if any.
                    next = iter.next().map_or(StreamId::MIN, |(id, _)| *id);
                    break;
                }
                let Some((id, p)) = iter.next() else {
                    break;
                };
                attempts -= 1;
                let Some(fields) = stream.entry(*id) else {
                    // A deleted entry counts against COUNT, as in Redis.
                    if !fits(&[]) {
                        return Err(StoreError::TooLarge);
                    }
                    deleted.push(*id);
                    left -= 1;
                    continue;
                };
                if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                    continue;
                }
                let n = if just_id {
                    p.delivery_count
                } else {
                    p.delivery_count.saturating_add(1)
                };
                let fields = (!just_id).then_some(fields);
                if !fits(fields.unwrap_or(&[])) {
                    return Err(StoreError::TooLarge);
                }
                claimed.push((*id, n));
                out.push((*id, fields.map(<[Bytes]>::to_vec)));
                left -= 1;
            }
            let mut ops = Vec::new();
            if !claimed.is_empty() {
                ops.push(StreamOp::ConsumerSeen {
                    group: group_name.clone(),
                    name: consumer_name.clone(),
                    time: now,
                    active: true,
                });
            }
            if !deleted.is_empty() {
                ops.push(StreamOp::PendingRemove {
                    group: group_name.clone(),
                    ids: deleted.clone(),
                });
            }
            if !claimed.is_empty() {
                ops.push(StreamOp::PendingSet {
                    group: group_name,
                    consumer: consumer_name,
                    time: now,
                    entries: claimed,
                });
            }
            Ok((
                ops,
                Ok(AutoClaimed {
                    next,
                    claimed: out,
                    deleted,
                }),
            ))
        })
    }
}
