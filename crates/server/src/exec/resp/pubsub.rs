//! Pub/sub: channels, patterns, `PUBLISH`, and keyspace notifications.
//!
//! The hub ([`PubSub`]) maps channels and patterns to the subscribed connections' sinks: a
//! queue per connection, bounded in bytes (`--pubsub-output-limit`), that its loop drains
//! into pushes (`>` in RESP3, arrays in RESP2). Publishing never blocks and never waits for a
//! slow subscriber: a message that would take a subscriber's queue past its limit is not
//! queued, the subscriber is marked overflowed and its connection is closed at once, even if
//! it is in the middle of a write the client does not read (`Subscriber::evicted`). That is
//! what Redis's `client-output-buffer-limit pubsub` hard limit does to a client that cannot
//! keep up. A queued message is counted from the moment it is published until its
//! connection takes it to encode; the driver then holds at most its write high-water mark of
//! encoded pushes, so a subscriber costs at most the limit plus that.
//!
//! Keyspace notifications are ordinary publications on `__keyspace@<db>__:<key>` (message:
//! the event) and `__keyevent@<db>__:<event>` (message: the key), for the event classes
//! `notify-keyspace-events` selects (Redis's letters: `K`, `E`, `g`, `$`, `s`, `h`, `z`,
//! `x`, `A`, …). With the setting empty, the default, a notification costs one atomic load.
//! The setting starts as `--notify-keyspace-events` says and `CONFIG SET` changes it. The
//! RESP handlers publish through [`PubSub::notify`], and so does the memcached glue
//! (`exec::memcache`) for its writes, in database 0.
//! `expired` is published when the expirer's wheel sweep removes a key and when a read
//! finds one expired, so it fires within the sweep interval of the deadline.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::glob_match;
use tokio::sync::{Notify, mpsc};

use super::args::{Args, Handled};
use super::{Answer, Ctx, error};

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, …).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expirations.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evictions (never happen here).
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands (none here).
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (none here).
pub const MODULE: u32 = 1 << 12;
/// `n`: new keys.
pub const NEW: u32 = 1 << 13;
/// `A`: every class except `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a `notify-keyspace-events` value; `None` for an unknown letter.
pub fn parse_flags(text: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in text {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The canonical text of `flags`, in Redis's order (`CONFIG GET` shows `xE` after
/// `CONFIG SET … Ex`).
pub fn flags_text(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// A message for one subscriber.
#[derive(Debug, Clone)]
pub struct Message {
    /// The pattern that matched, for a `pmessage`.
    pub pattern: Option<Bytes>,
    /// The channel it was published on.
    pub channel: Bytes,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The push that delivers it.
    pub fn reply(&self) -> Reply {
        let bulk = |b: &Bytes| Reply::Bulk(b.clone());
        Reply::Push(match &self.pattern {
            None => vec![
                Reply::Bulk(Bytes::from_static(b"message")),
                bulk(&self.channel),
                bulk(&self.payload),
            ],
            Some(pattern) => vec![
                Reply::Bulk(Bytes::from_static(b"pmessage")),
                bulk(pattern),
                bulk(&self.channel),
                bulk(&self.payload),
            ],
        })
    }

    /// What the message counts toward its subscriber's limit while queued: its bytes plus
    /// [`MESSAGE_OVERHEAD`]. (A payload published to many subscribers is shared, so this
    /// overstates the memory; the limit is per subscriber, as in Redis.)
    fn size(&self) -> usize {
        let pattern = self.pattern.as_ref().map_or(0, Bytes::len);
        MESSAGE_OVERHEAD + pattern + self.channel.len() + self.payload.len()
    }
}

/// What a queued message costs beyond its bytes (the `Message`, the queue's slot, the
/// allocations' headers), counted so that a flood of tiny messages is bounded too.
pub const MESSAGE_OVERHEAD: usize = 128;

/// What the hub and the subscriber's connection share about its queue.
#[derive(Debug)]
struct Backlog {
    /// Bytes of queued messages ([`Message::size`]).
    queued: AtomicUsize,
    /// The most `queued` may reach.
    limit: usize,
    /// Set once a message did not fit: the connection must close.
    overflowed: AtomicBool,
    /// Wakes the connection when `overflowed` is set.
    evict: Notify,
}

/// Where the hub delivers one connection's messages.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: mpsc::UnboundedSender<Message>,
    backlog: Arc<Backlog>,
}

impl Sink {
    fn deliver(&self, message: Message) {
        let backlog = &self.backlog;
        if backlog.overflowed.load(Ordering::Relaxed) {
            return;
        }
        let size = message.size();
        let queued = backlog.queued.fetch_add(size, Ordering::Relaxed) + size;
        if queued > backlog.limit || self.tx.send(message).is_err() {
            backlog.queued.fetch_sub(size, Ordering::Relaxed);
            backlog.overflowed.store(true, Ordering::Relaxed);
            // Stores a permit if the connection is not waiting yet, so it cannot miss this.
            backlog.evict.notify_one();
        }
    }
}

/// One connection's subscriptions and the receiving end of its queue.
pub struct Subscriber {
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    sink: Sink,
    /// The connection loop drains this through [`Subscriber::recv`].
    rx: mpsc::UnboundedReceiver<Message>,
}

impl Subscriber {
    /// A subscriber whose queue holds at most `limit` bytes of messages.
    pub fn new(limit: usize) -> Subscriber {
        let (tx, rx) = mpsc::unbounded_channel();
        Subscriber {
            channels: HashSet::new(),
            patterns: HashSet::new(),
            sink: Sink {
                tx,
                backlog: Arc::new(Backlog {
                    queued: AtomicUsize::new(0),
                    limit,
                    overflowed: AtomicBool::new(false),
                    evict: Notify::new(),
                }),
            },
            rx,
        }
    }

    /// Channels and patterns subscribed, apart.
    pub fn counts(&self) -> (usize, usize) {
        (self.channels.len(), self.patterns.len())
    }

    /// Channels plus patterns subscribed.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the queue overflowed: the connection must be closed.
    pub fn overflowed(&self) -> bool {
        self.sink.backlog.overflowed.load(Ordering::Relaxed)
    }

    /// The next queued message, waiting for one.
    pub async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        self.taken(&message);
        Some(message)
    }

    /// The next queued message, if there is one.
    pub fn try_recv(&mut self) -> Option<Message> {
        let message = self.rx.try_recv().ok()?;
        self.taken(&message);
        Some(message)
    }

    fn taken(&self, message: &Message) {
        self.sink
            .backlog
            .queued
            .fetch_sub(message.size(), Ordering::Relaxed);
    }

    /// Completes once the queue has overflowed. Owns what it waits on, so the connection
    /// can wait for it while it writes.
    pub fn evicted(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let backlog = self.sink.backlog.clone();
        async move {
            while !backlog.overflowed.load(Ordering::Relaxed) {
                backlog.evict.notified().await;
            }
        }
    }
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, HashMap<u64, Sink>>,
    patterns: HashMap<Bytes, HashMap<u64, Sink>>,
}

/// The server's channels, patterns and notification settings.
#[derive(Default)]
pub struct PubSub {
    registry: RwLock<Registry>,
    /// Channels plus patterns with a subscriber, kept under the registry's write lock: lets
    /// a publisher with nobody listening (the session layer on every session write) skip
    /// the lock.
    registered: AtomicUsize,
    notify_flags: AtomicU32,
    /// The keys connections `WATCH`, told of changes by the same observer and expirer that
    /// publish keyspace events.
    pub watches: super::multi::Watches,
    /// The clients blocked in list pops, told of pushes by the same observer.
    pub blocking: super::blocking::Blocking,
}

impl PubSub {
    /// The `notify-keyspace-events` flags.
    pub fn flags(&self) -> u32 {
        self.notify_flags.load(Ordering::Relaxed)
    }

    /// Sets the `notify-keyspace-events` flags.
    pub fn set_flags(&self, flags: u32) {
        self.notify_flags.store(flags, Ordering::Relaxed);
    }

    /// Publishes `payload` on `channel`; returns how many subscribers (channel and
    /// pattern) it was delivered to.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        if registry.channels.is_empty() && registry.patterns.is_empty() {
            return 0;
        }
        let channel = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(payload);
        let mut receivers = 0;
        if let Some(sinks) = registry.channels.get(&channel) {
            for sink in sinks.values() {
                sink.deliver(Message {
                    pattern: None,
                    channel: channel.clone(),
                    payload: payload.clone(),
                });
                receivers += 1;
            }
        }
        for (pattern, sinks) in &registry.patterns {
            if glob_match(pattern, &channel) {
                for sink in sinks.values() {
                    sink.deliver(Message {
                        pattern: Some(pattern.clone()),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    });
                    receivers += 1;
                }
            }
        }
        receivers
    }

    /// Whether a publication on `channel` would reach anyone (a subscriber of the channel
    /// or of a matching pattern): lets a publisher skip building a payload nobody reads.
    pub fn listened(&self, channel: &[u8]) -> bool {
        if self.registered.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        registry.channels.contains_key(channel)
            || registry
                .patterns
                .keys()
                .any(|pattern| glob_match(pattern, channel))
    }

    /// Publishes a keyspace notification of `class` for `key` in database `db`, if the
    /// settings select it.
    pub fn notify(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        let flags = self.flags();
        if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
            return;
        }
        if flags & KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(key);
            self.publish(&channel, event.as_bytes());
        }
        if flags & KEYEVENT != 0 {
            let channel = format!("__keyevent@{db}__:{event}");
            self.publish(channel.as_bytes(), key);
        }
    }

    fn subscribe(&self, id: u64, sub: &mut Subscriber, name: &Bytes, pattern: bool) {
        let mine = if pattern {
            &mut sub.patterns
        } else {
            &mut sub.channels
        };
        if !mine.insert(name.clone()) {
            return;
        }
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        let map = if pattern {
            &mut registry.patterns
        } else {
            &mut registry.channels
        };
        map.entry(name.clone())
            .or_default()
            .insert(id, sub.sink.clone());
        let registered = registry.channels.len() + registry.patterns.len();
        self.registered.store(registered, Ordering::Relaxed);
    }

    fn unsubscribe(&self, id: u64, sub: &mut Subscriber, name: &[u8], pattern: bool) -> bool {
        let mine = if pattern {
            &mut sub.patterns
        } else {
            &mut sub.channels
        };
        if !mine.remove(name) {
            return false;
        }
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        let map = if pattern {
            &mut registry.patterns
        } else {
            &mut registry.channels
        };
        if let Some(sinks) = map.get_mut(name) {
            sinks.remove(&id);
            if sinks.is_empty() {
                map.remove(name);
            }
        }
        let registered = registry.channels.len() + registry.patterns.len();
        self.registered.store(registered, Ordering::Relaxed);
        true
    }

    /// Removes every subscription of a closing connection.
    pub fn drop_subscriber(&self, id: u64, sub: &mut Subscriber) {
        for name in std::mem::take(&mut sub.channels) {
            sub.channels.insert(name.clone());
            self.unsubscribe(id, sub, &name, false);
        }
        for name in std::mem::take(&mut sub.patterns) {
            sub.patterns.insert(name.clone());
            self.unsubscribe(id, sub, &name, true);
        }
    }

    /// Active channels (those with a subscriber) matching `pattern`.
    fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        registry
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c)))
            .cloned()
            .collect()
    }

    fn numsub(&self, channel: &[u8]) -> usize {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        registry.channels.get(channel).map_or(0, |s| s.len())
    }

    /// Patterns with at least one subscriber (`PUBSUB NUMPAT`, `INFO`).
    pub fn pattern_count(&self) -> usize {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        registry.patterns.len()
    }

    /// Channels with at least one subscriber (`INFO`).
    pub fn channel_count(&self) -> usize {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        registry.channels.len()
    }
}

fn confirmation(kind: &'static str, name: Option<&Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::Bulk(Bytes::from_static(kind.as_bytes())),
        name.map_or(Reply::Null, |n| Reply::Bulk(n.clone())),
        Reply::Integer(count as i64),
    ])
}

fn subscribe_generic(ctx: &mut Ctx<'_>, args: &mut Args<'_>, pattern: bool) -> Handled {
    if ctx.session.in_script {
        return Err(error("ERR This Redis command is not allowed from script"));
    }
    let id = ctx.session.id;
    let limit = ctx.shared.config.pubsub_output_limit;
    let sub = ctx
        .session
        .subscriber
        .get_or_insert_with(|| Subscriber::new(limit));
    let hub = &ctx.shared.resp.pubsub;
    let kind = if pattern { "psubscribe" } else { "subscribe" };
    let mut replies = Vec::with_capacity(args.remaining());
    for name in args {
        hub.subscribe(id, sub, name, pattern);
        replies.push(confirmation(kind, Some(name), sub.count()));
    }
    ctx.session.share_state();
    Ok(Answer::Many(replies))
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, args: &mut Args<'_>, pattern: bool) -> Handled {
    let id = ctx.session.id;
    let kind = if pattern {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let hub = &ctx.shared.resp.pubsub;
    let Some(sub) = ctx.session.subscriber.as_mut() else {
        return Ok(confirmation(kind, None, 0).into());
    };
    let names: Vec<Bytes> = if !args.is_empty() {
        args.rest().to_vec()
    } else if pattern {
        sub.patterns.iter().cloned().collect()
    } else {
        sub.channels.iter().cloned().collect()
    };
    if names.is_empty() {
        return Ok(confirmation(kind, None, sub.count()).into());
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in &names {
        hub.unsubscribe(id, sub, name, pattern);
        replies.push(confirmation(kind, Some(name), sub.count()));
    }
    ctx.session.share_state();
    Ok(Answer::Many(replies))
}

/// `SUBSCRIBE channel [channel …]`.
pub fn subscribe(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    subscribe_generic(ctx, args, false)
}

/// `PSUBSCRIBE pattern [pattern …]`.
pub fn psubscribe(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    subscribe_generic(ctx, args, true)
}

/// `UNSUBSCRIBE [channel …]`.
pub fn unsubscribe(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    unsubscribe_generic(ctx, args, false)
}

/// `PUNSUBSCRIBE [pattern …]`.
pub fn punsubscribe(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    unsubscribe_generic(ctx, args, true)
}

/// `PUBLISH channel message`.
pub fn publish(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let channel = args.bytes()?;
    let message = args.bytes()?;
    let n = ctx.shared.resp.pubsub.publish(channel, message);
    Ok(Reply::Integer(n as i64).into())
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel …] | NUMPAT`.
pub fn pubsub(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hub = &ctx.shared.resp.pubsub;
    let sub = args.bytes()?;
    let reply = match String::from_utf8_lossy(sub).to_ascii_lowercase().as_str() {
        "channels" if args.remaining() <= 1 => {
            let names = hub.channels(args.next().map(|p| &p[..]));
            Reply::Array(names.into_iter().map(Reply::Bulk).collect())
        }
        // A map in RESP3, alternating channels and counts in RESP2.
        "numsub" => Reply::Map(
            args.map(|c| (Reply::Bulk(c.clone()), Reply::Integer(hub.numsub(c) as i64)))
                .collect(),
        ),
        "numpat" if args.is_empty() => Reply::Integer(hub.pattern_count() as i64),
        _ => return Err(super::unknown_subcommand("pubsub", sub)),
    };
    Ok(reply.into())
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn ready(future: impl Future<Output = ()>) -> bool {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        future.as_mut().poll(&mut cx) == Poll::Ready(())
    }

    /// The queue is bounded in bytes, messages count from publication until taken, and an
    /// overflow is terminal and wakes the connection.
    #[test]
    fn a_subscriber_queue_is_bounded_in_bytes() {
        let hub = PubSub::default();
        let size = MESSAGE_OVERHEAD + 2 + 1000;
        let mut sub = Subscriber::new(3 * size);
        hub.subscribe(1, &mut sub, &Bytes::from_static(b"ch"), false);
        let payload = [b'p'; 1000];
        for _ in 0..3 {
            assert_eq!(hub.publish(b"ch", &payload), 1);
        }
        assert!(!sub.overflowed());
        assert!(!ready(sub.evicted()));
        // Taking a message makes room for one more.
        assert!(sub.try_recv().is_some());
        hub.publish(b"ch", &payload);
        assert!(!sub.overflowed());
        // One byte more than the limit: not queued, and the connection must go.
        hub.publish(b"ch", b"x");
        assert!(sub.overflowed());
        assert!(ready(sub.evicted()));
        // Nothing more is queued once overflowed, even what would fit.
        for _ in 0..3 {
            assert!(sub.try_recv().is_some());
        }
        hub.publish(b"ch", b"x");
        assert!(sub.try_recv().is_none());
    }
}
