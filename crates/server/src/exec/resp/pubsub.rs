//! Pub/sub: channels, patterns, `PUBLISH`, and keyspace notifications.
//!
//! The hub ([`PubSub`]) maps channels and patterns to the subscribed connections' sinks: a
//! bounded queue per connection that its loop drains into pushes (`>` in RESP3, arrays in
//! RESP2). Publishing never blocks and never waits for a slow subscriber: when a
//! subscriber's queue is full it is marked overflowed and its connection is closed, which
//! is what Redis's `client-output-buffer-limit pubsub` does to a client that cannot keep up.
//!
//! Keyspace notifications are ordinary publications on `__keyspace@<db>__:<key>` (message:
//! the event) and `__keyevent@<db>__:<event>` (message: the key), for the event classes
//! `notify-keyspace-events` selects (Redis's letters: `K`, `E`, `g`, `$`, `s`, `h`, `z`,
//! `x`, `A`, …). With the setting empty, the default, a notification costs one atomic load.
//! `expired` is published when the expirer's wheel sweep removes a key and when a read
//! finds one expired, so it fires within the sweep interval of the deadline.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::glob_match;
use tokio::sync::mpsc;

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
/// `l`: list commands (none here; accepted for compatibility).
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
}

/// Messages a subscriber may have queued before it counts as too slow and is
/// disconnected. With session-sized messages this is a few MiB, in the range of Redis's
/// default pub/sub output limit (32 MiB hard).
pub const QUEUE: usize = 16 * 1024;

/// Where the hub delivers one connection's messages.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: mpsc::Sender<Message>,
    overflowed: Arc<AtomicBool>,
}

impl Sink {
    fn deliver(&self, message: Message) {
        if self.tx.try_send(message).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }
}

/// One connection's subscriptions and the receiving end of its queue.
pub struct Subscriber {
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    sink: Sink,
    /// The connection loop drains this.
    pub rx: mpsc::Receiver<Message>,
}

impl Subscriber {
    fn new() -> Subscriber {
        let (tx, rx) = mpsc::channel(QUEUE);
        Subscriber {
            channels: HashSet::new(),
            patterns: HashSet::new(),
            sink: Sink {
                tx,
                overflowed: Arc::new(AtomicBool::new(false)),
            },
            rx,
        }
    }

    /// Channels plus patterns subscribed.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the queue overflowed: the connection must be closed.
    pub fn overflowed(&self) -> bool {
        self.sink.overflowed.load(Ordering::Relaxed)
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
    notify_flags: AtomicU32,
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
    let sub = ctx.session.subscriber.get_or_insert_with(Subscriber::new);
    let hub = &ctx.shared.resp.pubsub;
    let kind = if pattern { "psubscribe" } else { "subscribe" };
    let mut replies = Vec::with_capacity(args.remaining());
    for name in args {
        hub.subscribe(id, sub, name, pattern);
        replies.push(confirmation(kind, Some(name), sub.count()));
    }
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
