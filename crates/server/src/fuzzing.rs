//! Entry points for the fuzz targets (`fuzz/`), behind the `fuzzing` feature: the glue of
//! both protocols driven without sockets, on a server with small limits and no journal.
//!
//! Everything else in this crate is private; these functions are the narrow door the fuzzers
//! use, so they exercise exactly the paths a connection does (decode, the checks of
//! `execute`, the handler, encode) with whatever bytes or argument vectors they make up.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sessiond_proto_memcache::{Binary, Limits, ReplyChunks, Text, WireFormat};

use crate::config::Config;
use crate::exec::resp::{self, Answer, Session, pubsub};
use crate::exec::{Shared, memcache};

/// A server's glue with one RESP connection.
pub struct Glue {
    shared: Shared,
    session: Session,
}

impl Default for Glue {
    fn default() -> Self {
        Glue::new()
    }
}

impl Glue {
    /// Sixteen empty databases under a 16 MiB budget, 4 KiB values, and a 20 ms script
    /// time limit, so that a fuzzed script cannot slow the fuzzer down. Every keyspace
    /// notification is on (`KEA`), so both protocols' writes run their notification paths.
    pub fn new() -> Glue {
        let config = Config {
            max_memory: 16 << 20,
            max_item_size: 4096,
            script_time_limit: Duration::from_millis(20),
            notify_keyspace_events: pubsub::KEYSPACE | pubsub::KEYEVENT | pubsub::ALL,
            ..Config::default()
        };
        // The stores report to pub/sub and the session layer, as the real server's do, so
        // the fuzzer reaches the session index through every command.
        let shared = Shared::unjournaled(config, 0);
        let session = Session::new(&shared, String::new(), String::new(), 0);
        Glue { shared, session }
    }

    /// Empties every database and starts a fresh connection, cheaply enough to do before
    /// every input (building the sixteen stores anew costs milliseconds).
    pub fn reset(&mut self) {
        // Only the databases the last input wrote to: a flush builds every shard's timing
        // wheel anew, which is most of the cost of an input otherwise.
        for store in self.shared.databases.iter().filter(|s| !s.is_empty()) {
            store.flush_all(0, 0);
        }
        // `CONFIG SET maxmemory` in an earlier input must not carry over.
        self.shared
            .store
            .budget()
            .set_limit(self.shared.config.max_memory);
        // Nor `CONFIG SET notify-keyspace-events`.
        self.shared
            .resp
            .pubsub
            .set_flags(self.shared.config.notify_keyspace_events);
        // Nor `CONFIG SET busy-reply-threshold`.
        self.shared
            .busy
            .set_threshold_ms(self.shared.config.busy_reply_threshold_ms);
        self.shared.stats.reset();
        self.session = Session::new(&self.shared, String::new(), String::new(), 0);
    }

    /// Runs one RESP command at `now` and returns its encoded reply (RESP2 or RESP3, as the
    /// connection negotiated).
    pub fn resp(&mut self, args: &[Bytes], now: u64) -> BytesMut {
        let executed = resp::execute(&self.shared, &mut self.session, args, now);
        self.encode(executed)
    }

    /// Runs one RESP command as a connection does in the busy state (the script gate held
    /// past `busy-reply-threshold`): only the allow-busy commands run, the rest are refused
    /// with `BUSY` (`resp::prepare_busy`).
    pub fn resp_busy(&mut self, args: &[Bytes], now: u64) -> BytesMut {
        let executed = match resp::prepare_busy(&self.shared, &mut self.session, args) {
            Ok(spec) => resp::run(&self.shared, &mut self.session, spec, args, now),
            Err(refused) => refused,
        };
        self.encode(executed)
    }

    fn encode(&self, executed: resp::Executed) -> BytesMut {
        let mut out = BytesMut::new();
        let replies = match executed.answer {
            Answer::One(reply) => vec![reply],
            Answer::Many(replies) => replies,
        };
        for reply in &replies {
            sessiond_proto_resp::encode(reply, self.session.protocol, &mut out);
        }
        out
    }

    /// Decodes every memcached request in `input` (text, or binary if it starts with 0x80),
    /// runs each at `now` and returns the encoded replies.
    pub fn memcache(&mut self, input: &[u8], now: u64) -> ReplyChunks {
        let limits = Limits {
            max_value_len: self.shared.config.max_item_size,
            max_line_len: 2048,
            max_keys: 16,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(input);
        let mut out = ReplyChunks::with_capacity(1024);
        if input.first() == Some(&0x80) {
            self.memcache_format::<Binary>(limits, &mut buf, &mut out, now);
        } else {
            self.memcache_format::<Text>(limits, &mut buf, &mut out, now);
        }
        out
    }

    fn memcache_format<F: WireFormat>(
        &mut self,
        limits: Limits,
        buf: &mut BytesMut,
        out: &mut ReplyChunks,
        now: u64,
    ) {
        let mut decoder = F::decoder(limits);
        loop {
            match F::decode(&mut decoder, buf) {
                Ok(None) => return,
                Ok(Some(request)) => {
                    let outcome = memcache::execute(&self.shared, F::command(&request), now);
                    F::encode_reply_chunks(&request, &outcome, out);
                }
                Err(error) => {
                    F::encode_error(&error, out.buf_mut());
                    if F::is_fatal(&error) {
                        return;
                    }
                }
            }
        }
    }

    /// The name of every RESP command, so a target can pick real ones.
    pub fn command_names() -> Vec<&'static str> {
        resp::COMMANDS.iter().map(|spec| spec.name).collect()
    }

    /// Bytes the store's budget counts as used, and its limit.
    pub fn memory(&self) -> (u64, u64) {
        let budget = self.shared.store.budget();
        (budget.used(), budget.limit())
    }
}
