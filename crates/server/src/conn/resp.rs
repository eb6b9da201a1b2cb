//! The RESP protocol on the connection driver, plus pub/sub delivery.
//!
//! A subscribed connection also waits on its pub/sub queue and writes each message as a
//! push; a subscriber whose queue overflows is disconnected (Redis's pub/sub output limit).
//! Protocol errors are fatal, as in Redis: the error is sent and the connection closed.
//! The idle timeout does not apply while subscribed (a listener is idle by design).
//!
//! Until a connection logs in, its decoder runs under [`PRE_LOGIN`] limits (Redis's limits
//! for unauthenticated clients: at most 10 arguments of at most 16 KiB), so a client that
//! has proved nothing cannot make the server buffer a large request. Every command passes
//! the cross-protocol guard ([`super::guard`]), as in Redis.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sessiond_proto_resp::{Decoder, Limits, encode};

use super::{Handled, Protocol, READ_CHUNK, Step, WRITE_HIGH_WATER, guard};
use crate::exec::Shared;
use crate::exec::resp::{self, Answer, Executed, Flags, Session, Spec};
use crate::stats::bump;

/// Floor of the per-connection input limit; see [`Resp::input_limit`].
const MIN_INPUT_LIMIT: usize = 16 * 1024 * 1024;

/// The decoder limits before login (Redis 7's for unauthenticated clients): enough for
/// `HELLO 3 AUTH user pass SETNAME name` with the longest passwords.
const PRE_LOGIN: Limits = Limits {
    max_bulk_len: 16 * 1024,
    max_args: 10,
    max_inline_len: 64 * 1024,
    max_depth: 128,
};

/// One RESP connection's protocol state.
pub(crate) struct Resp {
    shared: Arc<Shared>,
    session: Session,
    decoder: Decoder,
    /// A script command waiting for the script gate, exclusively.
    script: Option<(Vec<Bytes>, &'static Spec)>,
    /// The limits once logged in.
    limits: Limits,
    /// Whether `decoder` runs under [`PRE_LOGIN`].
    pre_login: bool,
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
        let pre_login = !session.authenticated;
        Resp {
            shared,
            session,
            decoder: Decoder::new(if pre_login { PRE_LOGIN } else { limits }),
            script: None,
            limits,
            pre_login,
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
                if guard::is_http_command(&request.args) {
                    bump(&self.shared.stats.protocol_errors);
                    guard::log_attack("resp");
                    return Handled::at_once(Step::Close);
                }
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
        if self.pre_login == self.session.authenticated {
            // Logged in (or out, by RESET): the decoder has just returned a whole request,
            // so it holds no partial state to lose by being replaced.
            self.pre_login = !self.session.authenticated;
            let limits = if self.pre_login {
                PRE_LOGIN
            } else {
                self.limits
            };
            self.decoder = Decoder::new(limits);
        }
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
