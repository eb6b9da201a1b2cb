//! Clients blocked in `BLPOP`, `BRPOP`, `BLMOVE`, `BRPOPLPUSH`, `BLMPOP`, `BZPOPMIN`,
//! `BZPOPMAX`, `BZMPOP`, `XREAD … BLOCK` and `XREADGROUP … BLOCK`, and their wake-up.
//!
//! A stream waiter is woken by any change to a key it waits for (an entry added, a group
//! destroyed, the key deleted or overwritten): an `XREAD` waiter is served when entries
//! after its ID are there and otherwise waits on; an `XREADGROUP` waiter whose key is gone
//! or is no longer a stream, or whose group was destroyed, gets Redis's error.
//!
//! A blocking command that finds nothing to pop leaves a [`Wait`] in its session; the
//! connection registers it here ([`Blocking::block`]) and awaits its [`Ticket`] without
//! holding any lock or the script gate. The stores' observer tells [`Blocking::touched`] of
//! every change that can make a list or sorted set non-empty (one created, written whole by
//! `RENAME`, pushed or added to) on a key somebody waits for, which files the key as *ready*. After each command
//! (a single one, an `EXEC`, a script), the connection that ran it calls [`Blocking::serve`]
//! before replying: for every ready key, the clients blocked on it are served in the order
//! they blocked, each by running its pop (or move) on their behalf, until the list is empty;
//! the popped element travels to the blocked connection over its ticket's channel. So, as in
//! Redis, a push's reply goes out only after the clients it woke have their elements, and a
//! pushed element is never visible to a third client first unless that client's command ran
//! concurrently with the push. A key that a transaction pushes to and empties again before
//! `EXEC` ends serves nobody. A waiter that cannot be served from what the key holds (a
//! sorted-set pop on a list, or the reverse) is passed over, not a stop for those behind it.
//!
//! A push can land between a blocking command's failed pop and its registration, while
//! nobody wants the key yet; so registering files the wait's keys as ready and the
//! connection serves right after, which catches such a push.
//!
//! Time-outs are the waiting connection's: at its deadline it withdraws its registration
//! ([`Blocking::cancel`]); if a server got there first, the element is already on its way.
//! A disconnect withdraws it the same way.
//!
//! Lock order: the registry, then a shard (serving runs store operations), then the signals
//! (the observer, under a shard lock, files ready keys). Nothing takes them the other way.
//!
//! Memory: one registration per blocked connection (at most `--max-connections`), holding
//! its keys once in the registry (each at most [`MAX_BLOCKING_KEYS`], so a blocked client
//! pins at most that many keys plus a fixed overhead each) and once in the signals' wanted
//! set; the ready list holds at most the wanted keys.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{End, Kind, StoreError};
use tokio::sync::oneshot;

use super::pubsub::{GENERIC, LIST, ZSET};
use super::store_error;
use crate::exec::Shared;

/// The most keys one blocking command may wait on. Redis has no such limit; this one keeps
/// what a blocked client pins in the registry bounded (a key is at most the bulk limit, and
/// a registration costs about 100 bytes a key on top).
pub const MAX_BLOCKING_KEYS: usize = 1024;

/// What a blocked client does with the first list that has something for it.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockOp {
    /// `BLPOP`/`BRPOP`: one element; the reply is `[key, element]`.
    Pop(End),
    /// `BLMPOP`: up to `count` elements; the reply is `[key, [elements…]]`.
    MultiPop(End, usize),
    /// `BLMOVE`/`BRPOPLPUSH`: one element moved to `dst`; the reply is the element.
    Move {
        /// The destination key.
        dst: Bytes,
        /// The source end.
        from: End,
        /// The destination end.
        to: End,
    },
    /// `BZPOPMIN`/`BZPOPMAX` (one member; the reply is `[key, member, score]`) and `BZMPOP`
    /// (`multi`: up to `count`; the reply is `[key, [[member, score], …]]`), from the low
    /// end or the high (`max`) of a sorted set.
    ZPop {
        /// From the highest scores.
        max: bool,
        /// How many at most.
        count: usize,
        /// `BZMPOP`'s reply shape.
        multi: bool,
    },
    /// `XREAD … BLOCK` and `XREADGROUP … BLOCK` with `>`: the first of the keys that has
    /// entries for it answers ([`super::streams::serve_blocked`]).
    Streams(super::streams::StreamWait),
}

impl BlockOp {
    /// The reply to a client whose wait timed out (or was ended by `CLIENT UNBLOCK`): a
    /// null array, for the moves too (Redis 7.0 answers every timed-out list wait so).
    pub fn timed_out(&self) -> Reply {
        Reply::NullArray
    }

    /// The reply of a blocking command that found nothing where it may not block (inside
    /// `EXEC` or a script): a null array for the pops, a null bulk for the moves, as their
    /// non-blocking twins answer.
    pub fn found_nothing(&self) -> Reply {
        match self {
            BlockOp::Pop(_)
            | BlockOp::MultiPop(..)
            | BlockOp::ZPop { .. }
            | BlockOp::Streams(_) => Reply::NullArray,
            BlockOp::Move { .. } => Reply::Null,
        }
    }
}

/// A blocking command that found nothing: what the connection registers.
#[derive(Debug)]
pub struct Wait {
    /// The connection (`CLIENT ID`), for `CLIENT UNBLOCK`.
    pub client: u64,
    /// The database selected when it blocked.
    pub db: usize,
    /// The keys, in the command's order, without repeats.
    pub keys: Vec<Bytes>,
    /// What serving it does.
    pub op: BlockOp,
    /// How long to wait, in milliseconds; `None`: forever.
    pub timeout_ms: Option<u64>,
}

/// A registered wait, held by its connection.
#[derive(Debug)]
pub struct Ticket {
    /// The registration, for [`Blocking::cancel`].
    pub id: u64,
    /// Receives the reply once a server has served the wait.
    pub reply: oneshot::Receiver<Reply>,
    /// Its reply on time-out.
    pub op: BlockOp,
}

struct Waiter {
    client: u64,
    db: usize,
    keys: Vec<Bytes>,
    op: BlockOp,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Registry {
    /// Per (database, key): the waiting registrations, first blocked first.
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
}

#[derive(Default)]
struct Signals {
    /// The keys somebody waits for, with how many registrations wait for each.
    wanted: HashMap<(usize, Bytes), usize>,
    /// Wanted keys changed since the last [`Blocking::serve`], in the order they were.
    ready: Vec<(usize, Bytes)>,
    ready_set: HashSet<(usize, Bytes)>,
}

/// The blocked clients of a server; see the module documentation.
#[derive(Default)]
pub struct Blocking {
    registry: Mutex<Registry>,
    signals: Mutex<Signals>,
    /// Number of wanted keys: when 0, [`Blocking::touched`] is one atomic load.
    wanted: AtomicUsize,
    /// Number of ready keys: when 0, [`Blocking::serve`] is one atomic load.
    ready: AtomicUsize,
    /// Blocked clients (`INFO`'s `blocked_clients`).
    blocked: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Blocking {
    /// How many clients are blocked now.
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Registers `wait`; its connection then awaits the ticket.
    pub fn block(&self, wait: Wait) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let mut registry = lock(&self.registry);
        registry.next_id += 1;
        let id = registry.next_id;
        let mut signals = lock(&self.signals);
        for key in &wait.keys {
            let slot = (wait.db, key.clone());
            registry
                .queues
                .entry(slot.clone())
                .or_default()
                .push_back(id);
            let count = signals.wanted.entry(slot).or_insert(0);
            if *count == 0 {
                self.wanted.fetch_add(1, Ordering::Relaxed);
            }
            *count += 1;
        }
        // A push between the command's failed pop and this registration found nobody
        // wanting the key and filed nothing: file every key now, so the connection's
        // `serve` right after this call pops what such a push left (an empty key costs
        // one failed attempt).
        for key in &wait.keys {
            let slot = (wait.db, key.clone());
            if signals.ready_set.insert(slot.clone()) {
                signals.ready.push(slot);
                self.ready.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(signals);
        registry.waiters.insert(
            id,
            Waiter {
                client: wait.client,
                db: wait.db,
                keys: wait.keys,
                op: wait.op.clone(),
                reply: tx,
            },
        );
        self.blocked.fetch_add(1, Ordering::Relaxed);
        Ticket {
            id,
            reply: rx,
            op: wait.op,
        }
    }

    /// Withdraws registration `id` (a time-out or a disconnect); `false` when a server
    /// already took it, in which case its reply has been sent.
    pub fn cancel(&self, id: u64) -> bool {
        let mut registry = lock(&self.registry);
        self.unregister(&mut registry, id).is_some()
    }

    /// `CLIENT UNBLOCK`: ends the wait of connection `client`, with its time-out reply or
    /// (`error`) Redis's `-UNBLOCKED` error; `false` if it was not blocked.
    pub fn unblock(&self, client: u64, error: bool) -> bool {
        let mut registry = lock(&self.registry);
        let Some(id) = registry
            .waiters
            .iter()
            .find(|(_, w)| w.client == client)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        let Some(waiter) = self.unregister(&mut registry, id) else {
            return false;
        };
        let reply = if error {
            super::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            waiter.op.timed_out()
        };
        let _ = waiter.reply.send(reply);
        true
    }

    fn unregister(&self, registry: &mut Registry, id: u64) -> Option<Waiter> {
        let waiter = registry.waiters.remove(&id)?;
        let mut signals = lock(&self.signals);
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = registry.queues.get_mut(&slot) {
                queue.retain(|&other| other != id);
                if queue.is_empty() {
                    registry.queues.remove(&slot);
                }
            }
            if let Some(count) = signals.wanted.get_mut(&slot) {
                *count -= 1;
                if *count == 0 {
                    signals.wanted.remove(&slot);
                    self.wanted.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        Some(waiter)
    }

    /// The observer's call for a change that can make the list under `key` in database
    /// `db` non-empty: files the key as ready if somebody waits for it. Runs under the
    /// key's shard lock, so it only takes the signals' lock.
    pub fn touched(&self, db: usize, key: &[u8]) {
        if self.wanted.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut signals = lock(&self.signals);
        let slot = (db, Bytes::copy_from_slice(key));
        if signals.wanted.contains_key(&slot) && signals.ready_set.insert(slot.clone()) {
            signals.ready.push(slot);
            self.ready.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The observer's call for a flush of database `db`: files every key somebody waits
    /// for there as ready, so a blocked group read learns that its stream is gone.
    pub fn cleared(&self, db: usize) {
        if self.wanted.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut signals = lock(&self.signals);
        let slots: Vec<(usize, Bytes)> = signals
            .wanted
            .keys()
            .filter(|(d, _)| *d == db)
            .cloned()
            .collect();
        for slot in slots {
            if signals.ready_set.insert(slot.clone()) {
                signals.ready.push(slot);
                self.ready.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Serves the clients blocked on every ready key, first blocked first, as long as each
    /// key's list has elements (a move that pushes to a key somebody waits for makes that key
    /// ready in turn). Called by a connection after each command, before its reply.
    pub fn serve(&self, shared: &Shared, now: u64) {
        if self.ready.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut registry = lock(&self.registry);
        loop {
            let ready = {
                let mut signals = lock(&self.signals);
                signals.ready_set.clear();
                self.ready.store(0, Ordering::Relaxed);
                std::mem::take(&mut signals.ready)
            };
            if ready.is_empty() {
                return;
            }
            for slot in ready {
                // First blocked first; a waiter that cannot be served (a sorted-set pop on a
                // list, or the reverse) is passed over, not a stop for those behind it.
                let queued: Vec<u64> = registry
                    .queues
                    .get(&slot)
                    .map(|q| q.iter().copied().collect())
                    .unwrap_or_default();
                // Stream waiters are answered even by a key that is gone (`XREADGROUP`'s
                // error), so a missing key stops the round only when none waits.
                let streams_wait = queued.iter().any(|id| {
                    registry
                        .waiters
                        .get(id)
                        .is_some_and(|w| matches!(w.op, BlockOp::Streams(_)))
                });
                for id in queued {
                    let Some(waiter) = registry.waiters.get(&id) else {
                        continue;
                    };
                    if waiter.reply.is_closed() {
                        // Its connection is going away and will cancel; serve the next.
                        self.unregister(&mut registry, id);
                        continue;
                    }
                    let Some(reply) = attempt(shared, waiter, &slot.1, now) else {
                        if !streams_wait && shared.databases[slot.0].kind_of(&slot.1, now).is_none()
                        {
                            // Nothing left under the key: nobody else can be served.
                            break;
                        }
                        continue;
                    };
                    if let Some(waiter) = self.unregister(&mut registry, id) {
                        let _ = waiter.reply.send(reply);
                    }
                }
            }
        }
    }
}

/// Runs `waiter`'s pop (or move) on `key`, if its list has an element: the reply to send
/// it, or `None` to leave it waiting (the key is empty, or not a list).
fn attempt(shared: &Shared, waiter: &Waiter, key: &Bytes, now: u64) -> Option<Reply> {
    let db = waiter.db;
    let store = &shared.databases[db];
    let pubsub = &shared.resp.pubsub;
    let popped = |end: End| {
        pubsub.notify(db, LIST, pop_event(end), key);
        if store.peek(key, now).is_none() {
            pubsub.notify(db, GENERIC, "del", key);
        }
    };
    match &waiter.op {
        BlockOp::Pop(end) | BlockOp::MultiPop(end, _) => {
            let count = match waiter.op {
                BlockOp::MultiPop(_, count) => count,
                _ => 1,
            };
            let items = if count > 1 {
                // As for LPOP with a count: a reply that could not be sent pops nothing, and
                // the client gets the refusal instead of waiting on (checked under the shard
                // lock with the pop).
                match super::lists::pop_within_limit(shared, store, key, *end, count, now) {
                    Ok(items) => items?,
                    Err(refusal) if store.kind_of(key, now) == Some(Kind::List) => {
                        return Some(refusal);
                    }
                    // Another type: keep waiting.
                    Err(_) => return None,
                }
            } else {
                store.list_pop(key, *end, count, now).ok()??
            };
            popped(*end);
            let key = Reply::Bulk(key.clone());
            Some(match waiter.op {
                BlockOp::MultiPop(..) => Reply::Array(vec![
                    key,
                    Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
                ]),
                _ => Reply::Array(
                    std::iter::once(key)
                        .chain(items.into_iter().map(Reply::Bulk))
                        .collect(),
                ),
            })
        }
        BlockOp::ZPop { max, count, multi } => {
            let popped = store.zset_pop(key, *count, *max, now).ok()??;
            if popped.is_empty() {
                return None;
            }
            pubsub.notify(db, ZSET, if *max { "zpopmax" } else { "zpopmin" }, key);
            if store.peek(key, now).is_none() {
                pubsub.notify(db, GENERIC, "del", key);
            }
            Some(super::zset_ops::popped_reply(key, popped, *multi))
        }
        BlockOp::Streams(wait) => super::streams::serve_blocked(shared, db, wait, key, now),
        BlockOp::Move { dst, from, to } => match store.list_move(key, dst, *from, *to, now) {
            Ok(Some(item)) => {
                pubsub.notify(db, LIST, push_event(*to), dst);
                popped(*from);
                Some(Reply::Bulk(item))
            }
            Ok(None) => None,
            // The source became another type: keep waiting, as Redis does; the destination
            // is another type: the client gets the error and stops waiting.
            Err(StoreError::WrongType) => {
                let source_is_list = store
                    .peek(key, now)
                    .is_some_and(|e| e.value.kind() == Kind::List);
                source_is_list.then(|| store_error(StoreError::WrongType))
            }
            Err(other) => Some(store_error(other)),
        },
    }
}

/// The keyspace event of a pop from `end`.
pub fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// The keyspace event of a push to `end`.
pub fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sessiond_proto_resp::Reply;
    use sessiond_store::End;

    use super::{BlockOp, MAX_BLOCKING_KEYS, Ticket, Wait};
    use crate::config::Config;
    use crate::exec::Shared;
    use crate::exec::resp::{Session, execute};

    const NOW: u64 = 1_800_000_000_000;

    fn command(shared: &Shared, session: &mut Session, line: &str) -> Reply {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let executed = execute(shared, session, &args, NOW);
        shared.resp.pubsub.blocking.serve(shared, NOW);
        match executed.answer {
            super::super::Answer::One(reply) => reply,
            other => panic!("{other:?}"),
        }
    }

    fn wait(client: u64, keys: &[&str], op: BlockOp) -> Wait {
        Wait {
            client,
            db: 0,
            keys: keys
                .iter()
                .map(|k| Bytes::copy_from_slice(k.as_bytes()))
                .collect(),
            op,
            timeout_ms: None,
        }
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn received(ticket: &mut Ticket) -> Option<Reply> {
        ticket.reply.try_recv().ok()
    }

    #[test]
    fn a_push_serves_the_waiting_clients_first_blocked_first_before_it_returns() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let blocking = &shared.resp.pubsub.blocking;
        let mut session = Session::new(&shared, "a".into(), "b".into(), NOW);
        let mut first = blocking.block(wait(1, &["q"], BlockOp::Pop(End::Left)));
        let mut second = blocking.block(wait(2, &["other", "q"], BlockOp::Pop(End::Left)));
        assert_eq!(blocking.blocked_clients(), 2);
        // A push elsewhere wakes nobody.
        command(&shared, &mut session, "RPUSH unrelated x");
        assert_eq!((received(&mut first), received(&mut second)), (None, None));
        assert_eq!(
            command(&shared, &mut session, "RPUSH q x y z"),
            Reply::Integer(3)
        );
        assert_eq!(
            received(&mut first),
            Some(Reply::Array(vec![bulk("q"), bulk("x")]))
        );
        assert_eq!(
            received(&mut second),
            Some(Reply::Array(vec![bulk("q"), bulk("y")]))
        );
        assert_eq!(command(&shared, &mut session, "LLEN q"), Reply::Integer(1));
        assert_eq!(blocking.blocked_clients(), 0);
        assert_eq!(
            blocking.wanted.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn a_move_to_a_wrong_type_ends_the_wait_with_the_error_and_keeps_the_element() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let blocking = &shared.resp.pubsub.blocking;
        let mut session = Session::new(&shared, "a".into(), "b".into(), NOW);
        command(&shared, &mut session, "SET dst string");
        let op = BlockOp::Move {
            dst: Bytes::from_static(b"dst"),
            from: End::Right,
            to: End::Left,
        };
        let mut mover = blocking.block(wait(1, &["src"], op));
        command(&shared, &mut session, "RPUSH src a");
        assert!(
            matches!(received(&mut mover), Some(Reply::Error(e)) if e.starts_with(b"WRONGTYPE"))
        );
        assert_eq!(
            command(&shared, &mut session, "LLEN src"),
            Reply::Integer(1)
        );
        // A source that becomes another type keeps the client waiting.
        let mut popper = blocking.block(wait(2, &["s2"], BlockOp::Pop(End::Left)));
        command(&shared, &mut session, "SET s2 x");
        assert_eq!(received(&mut popper), None);
        assert_eq!(blocking.blocked_clients(), 1);
    }

    #[test]
    fn a_push_between_the_failed_pop_and_the_registration_is_not_lost() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let blocking = &shared.resp.pubsub.blocking;
        let mut pusher = Session::new(&shared, "a".into(), "b".into(), NOW);
        let mut popper = Session::new(&shared, "c".into(), "d".into(), NOW);
        // The pop finds nothing and leaves its wait in the session, as on a connection.
        popper.may_block = true;
        let args: Vec<Bytes> = ["BLPOP", "q", "0"]
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        execute(&shared, &mut popper, &args, NOW);
        let wait = popper.blocked.take().expect("BLPOP on an empty key blocks");
        // Another connection pushes before the wait is registered: nobody wants `q` yet.
        command(&shared, &mut pusher, "RPUSH q x");
        // The connection registers and serves, as `conn::resp` does.
        let mut ticket = blocking.block(wait);
        blocking.serve(&shared, NOW);
        assert_eq!(
            received(&mut ticket),
            Some(Reply::Array(vec![bulk("q"), bulk("x")]))
        );
        assert_eq!(command(&shared, &mut pusher, "LLEN q"), Reply::Integer(0));
        assert_eq!(blocking.blocked_clients(), 0);
    }

    #[test]
    fn a_waiter_for_another_type_does_not_stop_those_behind_it() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let blocking = &shared.resp.pubsub.blocking;
        let mut session = Session::new(&shared, "a".into(), "b".into(), NOW);
        let zpop = BlockOp::ZPop {
            max: false,
            count: 1,
            multi: false,
        };
        let mut zset_waiter = blocking.block(wait(1, &["k"], zpop));
        let mut list_waiter = blocking.block(wait(2, &["k"], BlockOp::Pop(End::Left)));
        command(&shared, &mut session, "RPUSH k x");
        assert_eq!(
            received(&mut list_waiter),
            Some(Reply::Array(vec![bulk("k"), bulk("x")]))
        );
        assert_eq!(received(&mut zset_waiter), None);
        assert_eq!(blocking.blocked_clients(), 1);
        // And the other way round: the sorted-set waiter is served by a ZADD.
        command(&shared, &mut session, "ZADD k 1 m");
        assert!(received(&mut zset_waiter).is_some());
        assert_eq!(blocking.blocked_clients(), 0);
    }

    #[test]
    fn cancel_and_unblock_withdraw_a_wait_once() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let blocking = &shared.resp.pubsub.blocking;
        let ticket = blocking.block(wait(7, &["k"], BlockOp::Pop(End::Left)));
        assert!(blocking.cancel(ticket.id));
        assert!(!blocking.cancel(ticket.id));
        let mut ticket = blocking.block(wait(7, &["k"], BlockOp::MultiPop(End::Left, 2)));
        assert!(blocking.unblock(7, true));
        assert!(!blocking.unblock(7, true));
        assert_eq!(
            received(&mut ticket),
            Some(Reply::Error(Bytes::from_static(
                b"UNBLOCKED client unblocked via CLIENT UNBLOCK"
            )))
        );
        assert_eq!(blocking.blocked_clients(), 0);
    }

    #[test]
    fn inside_exec_and_scripts_blocking_pops_answer_at_once() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let mut session = Session::new(&shared, "a".into(), "b".into(), NOW);
        // `execute` runs commands as `EXEC` and scripts do: never blocking.
        assert_eq!(
            command(&shared, &mut session, "BLPOP k 0"),
            Reply::NullArray
        );
        assert_eq!(
            command(&shared, &mut session, "BRPOPLPUSH k d 0"),
            Reply::Null
        );
        assert!(session.blocked.is_none());
        let keys = vec!["k"; MAX_BLOCKING_KEYS + 1].join(" ");
        assert!(matches!(
            command(&shared, &mut session, &format!("BLPOP {keys} 0")),
            Reply::Error(e) if e.starts_with(b"ERR a blocking command may wait on at most")
        ));
    }
}
