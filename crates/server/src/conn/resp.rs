//! The RESP protocol on the connection driver, plus pub/sub delivery.
//!
//! A subscribed connection also waits on its pub/sub queue and writes each message as a
//! push; a subscriber whose queue overflows is disconnected (Redis's pub/sub output limit),
//! at once, even while a write to it is stuck.
//! Protocol errors are fatal, as in Redis: the error is sent and the connection closed.
//! The idle timeout does not apply while subscribed (a listener is idle by design).
//!
//! Limits: a reply whose encoding would exceed `--client-output-limit` is not encoded; the
//! client gets `-ERR reply of N bytes exceeds the output limit of L bytes` instead
//! ([`Reply::encoded_len`] measures it first). While a password is required and the
//! connection has not authenticated, the decoder holds requests to Redis's pre-auth limits
//! (10 arguments of 16 KiB), the connection may buffer [`UNAUTHENTICATED_INPUT_LIMIT`] bytes
//! of input, and `--auth-idle-timeout` closes it when idle; authenticating lifts all three.
//! Every command passes the cross-protocol guard ([`super::guard`]), as in Redis.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sessiond_proto_resp::{Decoder, Limits, Reply, encode};

use super::{Handled, KEEP_BUFFER, Protocol, READ_CHUNK, Step, WRITE_HIGH_WATER, guard};
use crate::exec::Shared;
use crate::exec::resp::blocking::{Ticket, Wait};
use crate::exec::resp::{self, Answer, Executed, Flags, Session, Spec};
use crate::stats::bump;

/// Floor of the per-connection input limit; see [`Resp::input_limit`].
const MIN_INPUT_LIMIT: usize = 16 * 1024 * 1024;
/// Most unprocessed input of a connection that has not authenticated: one maximal
/// pre-auth request (10 arguments of 16 KiB, or a 64 KiB inline line) fits with room to
/// spare.
pub(crate) const UNAUTHENTICATED_INPUT_LIMIT: usize = 256 * 1024;

/// One RESP connection's protocol state.
pub(crate) struct Resp {
    shared: Arc<Shared>,
    session: Session,
    decoder: Decoder,
    /// A script command or `EXEC` waiting for the script gate, exclusively.
    script: Option<(Vec<Bytes>, &'static Spec)>,
    /// What the decoder was last told about authentication (`Decoder::set_authenticated`).
    authenticated: bool,
    /// The blocked request's registration, while it waits.
    blocked: Option<Blocked>,
}

/// A request waiting in a blocking list pop.
struct Blocked {
    ticket: Ticket,
    /// When it gives up; `None`: never.
    deadline: Option<tokio::time::Instant>,
    /// Its reply, once it has one, and whether it was served (a write to acknowledge).
    answer: Option<(Reply, bool)>,
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
        let mut decoder = Decoder::new(limits);
        let authenticated = session.authenticated;
        decoder.set_authenticated(authenticated);
        Resp {
            shared,
            session,
            decoder,
            script: None,
            authenticated,
            blocked: None,
        }
    }
}

impl Drop for Resp {
    fn drop(&mut self) {
        if let Some(blocked) = self.blocked.take() {
            self.shared.resp.pubsub.blocking.cancel(blocked.ticket.id);
        }
        resp::multi::unwatch_all(&self.shared, &mut self.session);
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
        self.handle_one(input, replies, now, false)
    }

    fn answers_busy(&self) -> bool {
        true
    }

    fn handle_busy(&mut self, input: &mut BytesMut, replies: &mut BytesMut, now: u64) -> Handled {
        self.handle_one(input, replies, now, true)
    }

    fn refuse_exclusive(&mut self, replies: &mut BytesMut) -> Handled {
        let Some((_, spec)) = self.script.take() else {
            return Handled::at_once(Step::More);
        };
        let refused = resp::busy_refusal(&self.shared, &mut self.session, spec);
        self.answer(refused, replies)
    }

    fn handle_exclusive(&mut self, replies: &mut BytesMut, now: u64) -> Handled {
        let Some((args, spec)) = self.script.take() else {
            return Handled::at_once(Step::More);
        };
        let executed = resp::run(&self.shared, &mut self.session, spec, &args, now);
        self.shared.resp.pubsub.blocking.serve(&self.shared, now);
        self.answer(executed, replies)
    }

    fn wait_unblocked(&mut self) -> impl Future<Output = ()> + Send {
        let shared = self.shared.clone();
        let blocked = self.blocked.as_mut();
        async move {
            let Some(blocked) = blocked else { return };
            if blocked.answer.is_some() {
                return;
            }
            let receiver = &mut blocked.ticket.reply;
            let served = match blocked.deadline {
                None => receiver.await.ok(),
                Some(deadline) => tokio::select! {
                    reply = &mut *receiver => reply.ok(),
                    () = tokio::time::sleep_until(deadline) => {
                        if shared.resp.pubsub.blocking.cancel(blocked.ticket.id) {
                            None
                        } else {
                            // Served meanwhile: the reply is on its way.
                            receiver.await.ok()
                        }
                    }
                },
            };
            blocked.answer = Some(match served {
                Some(reply) => (reply, true),
                None => (blocked.ticket.op.timed_out(), false),
            });
        }
    }

    fn handle_unblocked(&mut self, replies: &mut BytesMut, _now: u64) -> Handled {
        let Some(Blocked {
            answer: Some((reply, served)),
            ..
        }) = self.blocked.take()
        else {
            return Handled::at_once(Step::More);
        };
        let executed = Executed {
            answer: Answer::One(reply),
            wait_for_journal: served,
        };
        self.answer(executed, replies)
    }

    fn idle_timeout(&self) -> Option<Duration> {
        let config = &self.shared.config;
        if !self.session.authenticated {
            return super::unauthenticated_idle_timeout(config);
        }
        if self.subscribed() {
            None
        } else {
            config.idle_timeout
        }
    }

    /// The most unprocessed input one connection may buffer: room for a few maximal values,
    /// so one connection cannot pin unbounded memory with a never-ending request; before
    /// authentication, one small request.
    fn input_limit(&self) -> usize {
        if !self.session.authenticated {
            return UNAUTHENTICATED_INPUT_LIMIT;
        }
        (4 * self.shared.config.max_item_size).max(MIN_INPUT_LIMIT)
    }

    fn push(&mut self, replies: &mut BytesMut) -> impl Future<Output = bool> + Send {
        let protocol = self.session.protocol;
        let subscriber = self.session.subscriber.as_mut();
        let killed = self.session.info.killed();
        async move {
            // A connection that has not subscribed has nothing to wait for but `CLIENT KILL`.
            let Some(sub) = subscriber else {
                killed.await;
                return false;
            };
            let message = tokio::select! {
                message = sub.recv() => message,
                () = killed => None,
            };
            let Some(message) = message else {
                return false;
            };
            if sub.overflowed() {
                // Too slow: what is still queued will never be delivered.
                return false;
            }
            shrink(replies);
            encode(&message.reply(), protocol, replies);
            // Deliver whatever else is already queued in the same write.
            while replies.len() < WRITE_HIGH_WATER
                && let Some(more) = sub.try_recv()
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

    fn evicted(&self) -> impl Future<Output = ()> + Send {
        let evicted = self.session.subscriber.as_ref().map(|s| s.evicted());
        let killed = self.session.info.killed();
        async move {
            match evicted {
                Some(evicted) => tokio::select! {
                    () = evicted => {}
                    () = killed => {}
                },
                None => killed.await,
            }
        }
    }
}

impl Resp {
    /// Decodes, executes and encodes at most one request; `busy`: in the busy state, without
    /// the script gate, where only Redis's `allow-busy` commands run
    /// ([`resp::prepare_busy`]) and nothing that needs the gate is reached.
    fn handle_one(
        &mut self,
        input: &mut BytesMut,
        replies: &mut BytesMut,
        now: u64,
        busy: bool,
    ) -> Handled {
        let session = &mut self.session;
        match self.decoder.decode(input) {
            Ok(None) => Handled::at_once(Step::NeedInput),
            Ok(Some(request)) => {
                if guard::is_http_command(&request.args) {
                    bump(&self.shared.stats.protocol_errors);
                    bump(&self.shared.stats.more.resp_protocol_errors);
                    guard::log_attack("resp");
                    return Handled::at_once(Step::Close);
                }
                let prepared = if busy {
                    resp::prepare_busy(&self.shared, session, &request.args)
                } else {
                    resp::prepare(&self.shared, session, &request.args)
                };
                let executed = match prepared {
                    Err(refused) => refused,
                    Ok(spec) if spec.flags.contains(Flags::EXCLUSIVE) => {
                        self.script = Some((request.args, spec));
                        return Handled::at_once(Step::Exclusive);
                    }
                    Ok(spec) => {
                        session.may_block = true;
                        let executed = resp::run(&self.shared, session, spec, &request.args, now);
                        session.may_block = false;
                        if let Some(wait) = session.blocked.take() {
                            self.block(wait, now);
                            return Handled::at_once(Step::Blocked);
                        }
                        executed
                    }
                };
                // Clients blocked on the lists this command pushed to get their elements
                // before its reply goes out. (Not in the busy state: no allow-busy command
                // pushes, and serving pops, which needs the gate.)
                if !busy {
                    self.shared.resp.pubsub.blocking.serve(&self.shared, now);
                }
                self.answer(executed, replies)
            }
            Err(error) => {
                bump(&self.shared.stats.protocol_errors);
                bump(&self.shared.stats.more.resp_protocol_errors);
                tracing::debug!(%error, "RESP protocol error; closing the connection");
                encode(&error.reply(), session.protocol, replies);
                Handled::at_once(Step::Close)
            }
        }
    }

    /// Registers a blocking request's wait.
    fn block(&mut self, wait: Wait, now: u64) {
        let deadline = wait
            .timeout_ms
            .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
        let blocking = &self.shared.resp.pubsub.blocking;
        let ticket = blocking.block(wait);
        // `block` filed the wait's keys as ready: whatever a push left there after the
        // command's own pop found nothing is served now, this wait included.
        blocking.serve(&self.shared, now);
        self.blocked = Some(Blocked {
            ticket,
            deadline,
            answer: None,
        });
    }

    /// Encodes what a request produced; the connection closes after `QUIT`.
    fn answer(&mut self, executed: Executed, replies: &mut BytesMut) -> Handled {
        let protocol = self.session.protocol;
        if self.authenticated != self.session.authenticated {
            // AUTH or HELLO … AUTH succeeded (or RESET undid it): the request limits follow.
            self.authenticated = self.session.authenticated;
            self.decoder.set_authenticated(self.authenticated);
        }
        shrink(replies);
        if self.session.drop_reply() {
            // `CLIENT REPLY OFF`/`SKIP`: executed, not answered.
            return Handled {
                step: if self.session.quit || self.session.info.is_killed() {
                    Step::Close
                } else {
                    Step::More
                },
                durable: executed.wait_for_journal,
            };
        }
        match &executed.answer {
            Answer::One(reply) => {
                // Measured before encoding, so an oversized reply is never built as bytes.
                // (A handler that collects many elements stops early by itself; see
                // `exec::resp::OutputBudget`.)
                let limit = self.shared.config.client_output_limit;
                let len = reply.encoded_len(protocol);
                if len > limit {
                    tracing::debug!(len, limit, "reply larger than the output limit; refused");
                    encode(&resp::too_large(Some(len), limit), protocol, replies);
                } else {
                    encode(reply, protocol, replies);
                }
            }
            // Subscription confirmations: one small reply per argument, so bounded by the
            // request's size.
            Answer::Many(many) => {
                for reply in many {
                    encode(reply, protocol, replies);
                }
            }
        }
        Handled {
            step: if self.session.quit || self.session.info.is_killed() {
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

/// Replaces an empty reply buffer that grew past [`KEEP_BUFFER`] for one large reply by a
/// fresh small one, so the connection does not keep that memory.
fn shrink(replies: &mut BytesMut) {
    if replies.is_empty() && replies.capacity() > KEEP_BUFFER {
        *replies = BytesMut::with_capacity(READ_CHUNK);
    }
}
