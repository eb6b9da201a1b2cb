//! The RESP protocol on the connection driver, plus pub/sub delivery.
//!
//! A subscribed connection also waits on its pub/sub queue and writes each message as a
//! push; a subscriber whose queue overflows is disconnected (Redis's pub/sub output limit).
//! Protocol errors are fatal, as in Redis: the error is sent and the connection closed.
//! The idle timeout does not apply while subscribed (a listener is idle by design).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sessiond_proto_resp::{Decoder, Limits, encode};

use super::{Handled, Protocol, READ_CHUNK, Step, WRITE_HIGH_WATER};
use crate::exec::Shared;
use crate::exec::resp::{self, Answer, Executed, Flags, Session, Spec};
use crate::stats::bump;

/// Floor of the per-connection input limit; see [`Resp::input_limit`].
const MIN_INPUT_LIMIT: usize = 16 * 1024 * 1024;

/// One RESP connection's protocol state.
pub(crate) struct Resp {
    shared: Arc<Shared>,
    session: Session,
    decoder: Decoder,
    /// A script command waiting for the script gate, exclusively.
    script: Option<(Vec<Bytes>, &'static Spec)>,
}

impl Resp {
    /// A new connection's state, registered for `CLIENT LIST` until dropped.
    pub fn new(shared: Arc<Shared>, session: Session) -> Resp {
        let limits = Limits {
            max_bulk_len: shared.config.max_item_size.max(64 * 1024),
            ..Limits::default()
        };
        if let Ok(mut clients) = shared.resp.clients.lock() {
            clients.insert(session.id, session.info.clone());
        }
        Resp {
            shared,
            session,
            decoder: Decoder::new(limits),
            script: None,
        }
    }
}

impl Drop for Resp {
    fn drop(&mut self) {
        if let Some(mut sub) = self.session.subscriber.take() {
            self.shared
                .resp
                .pubsub
                .drop_subscriber(self.session.id, &mut sub);
        }
        if let Ok(mut clients) = self.shared.resp.clients.lock() {
            clients.remove(&self.session.id);
        }
    }
}

impl Protocol for Resp {
    type Replies = BytesMut;

    fn replies(&self) -> BytesMut {
        BytesMut::with_capacity(READ_CHUNK)
    }

    fn handle(&mut self, input: &mut BytesMut, replies: &mut BytesMut, now: u64) -> Handled {
        let session = &mut self.session;
        match self.decoder.decode(input) {
            Ok(None) => Handled::at_once(Step::NeedInput),
            Ok(Some(request)) => {
                let executed = match resp::prepare(&self.shared, session, &request.args) {
                    Err(refused) => refused,
                    Ok(spec) if spec.flags.contains(Flags::SCRIPT) => {
                        self.script = Some((request.args, spec));
                        return Handled::at_once(Step::Exclusive);
                    }
                    Ok(spec) => resp::run(&self.shared, session, spec, &request.args, now),
                };
                self.answer(executed, replies)
            }
            Err(error) => {
                bump(&self.shared.stats.protocol_errors);
                tracing::debug!(%error, "RESP protocol error; closing the connection");
                encode(&error.reply(), session.protocol, replies);
                Handled::at_once(Step::Close)
            }
        }
    }

    fn handle_exclusive(&mut self, replies: &mut BytesMut, now: u64) -> Handled {
        let Some((args, spec)) = self.script.take() else {
            return Handled::at_once(Step::More);
        };
        let executed = resp::run(&self.shared, &mut self.session, spec, &args, now);
        self.answer(executed, replies)
    }

    fn idle_timeout(&self) -> Option<Duration> {
        if self.subscribed() {
            None
        } else {
            self.shared.config.idle_timeout
        }
    }

    /// The most unprocessed input one connection may buffer: room for a few maximal values,
    /// so one connection cannot pin unbounded memory with a never-ending request.
    fn input_limit(&self) -> usize {
        (4 * self.shared.config.max_item_size).max(MIN_INPUT_LIMIT)
    }

    fn push(&mut self, replies: &mut BytesMut) -> impl Future<Output = bool> + Send {
        let protocol = self.session.protocol;
        let subscriber = self.session.subscriber.as_mut();
        async move {
            // A connection that has not subscribed has nothing to wait for.
            let Some(sub) = subscriber else {
                return std::future::pending().await;
            };
            let Some(message) = sub.rx.recv().await else {
                return false;
            };
            encode(&message.reply(), protocol, replies);
            // Deliver whatever else is already queued in the same write.
            while replies.len() < WRITE_HIGH_WATER
                && let Ok(more) = sub.rx.try_recv()
            {
                encode(&more.reply(), protocol, replies);
            }
            true
        }
    }

    fn close_after_batch(&self) -> bool {
        let overflowed = self
            .session
            .subscriber
            .as_ref()
            .is_some_and(|s| s.overflowed());
        if overflowed {
            tracing::warn!(
                client = self.session.id,
                "pub/sub subscriber too slow; closing its connection"
            );
        }
        overflowed
    }
}

impl Resp {
    /// Encodes what a request produced; the connection closes after `QUIT`.
    fn answer(&mut self, executed: Executed, replies: &mut BytesMut) -> Handled {
        let protocol = self.session.protocol;
        match &executed.answer {
            Answer::One(reply) => encode(reply, protocol, replies),
            Answer::Many(many) => {
                for reply in many {
                    encode(reply, protocol, replies);
                }
            }
        }
        Handled {
            step: if self.session.quit {
                Step::Close
            } else {
                Step::More
            },
            durable: executed.wait_for_journal,
        }
    }

    fn subscribed(&self) -> bool {
        self.session
            .subscriber
            .as_ref()
            .is_some_and(|s| s.count() > 0)
    }
}
