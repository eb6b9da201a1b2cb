//! The memcached protocol on the connection driver: text and binary on one listener.
//!
//! The first byte of a connection picks the wire format (0x80 is binary, anything else is
//! text) and the connection keeps it. Both formats go through one generic path
//! ([`WireFormat`]); only the decoder differs.
//!
//! Replies go into a [`ReplyChunks`]: headers and status lines are encoded into a buffer,
//! while a hit's value (at least [`SHARE_MIN`](sessiond_proto_memcache::chunks::SHARE_MIN)
//! bytes) is queued as the store's own shared `Bytes`, and the driver writes the lot with
//! vectored writes. A value is copied once, by the kernel, instead of twice, and a multi-get
//! of large values holds references rather than a reply-sized buffer.
//!
//! Until a connection logs in (when users are configured; see `exec::memcache::execute_as`)
//! its decoder runs under [`PRE_LOGIN`] limits, so a client that has not proved anything can
//! make the server buffer at most a few kilobytes; a binary connection that sends anything
//! but SASL, VERSION or QUIT first is answered "Auth failure." and closed, as memcached does.
//! The first line of a text connection passes the cross-protocol guard ([`super::guard`]).
//!
//! Shared values still count as pending output (they may keep deleted items alive until
//! written): a get whose reply would exceed `--client-output-limit` is answered with
//! memcached's `SERVER_ERROR out of memory writing get response` instead. A long text
//! multi-get arrives as batches of keys (`TextRequest::more`); the limit applies per batch,
//! and a batch refused ends the whole get (`WireFormat::abandon`), so the client reads one
//! error where it expected `END`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sessiond_proto_memcache::{
    Binary, Command, Limits, Outcome, ReplyChunks, Text, WireFormat, binary, text,
};

use super::{Handled, Protocol, READ_CHUNK, Step, guard};
use crate::exec::auth::Identity;
use crate::exec::{Shared, memcache};
use crate::stats::bump;

/// The decoder limits before login: room for an authentication `set` (a 250-byte key and a
/// `user password` token of two maximal passwords) and for a SASL exchange, whose own
/// bounds the binary codec enforces; nothing a session needs.
const PRE_LOGIN: Limits = Limits {
    max_key_len: 250,
    max_value_len: 4096,
    max_line_len: 2048,
    max_keys: 16,
};

/// The decoder of the format the connection's first byte chose.
enum Decoder {
    Text(text::TextDecoder),
    Binary(binary::BinaryDecoder),
}

/// One memcached connection's protocol state.
pub(crate) struct Memcache {
    shared: Arc<Shared>,
    limits: Limits,
    /// `None` until the first byte arrives.
    decoder: Option<Decoder>,
    /// Who the connection is logged in as; `None` until it logs in.
    user: Option<Identity>,
    /// Whether the first line has been through the cross-protocol guard.
    guarded: bool,
}

impl Memcache {
    /// A new connection's state.
    pub fn new(shared: Arc<Shared>) -> Memcache {
        let limits = Limits {
            max_value_len: shared.config.max_item_size,
            ..Limits::default()
        };
        Memcache {
            user: shared.users.initial(),
            shared,
            limits,
            decoder: None,
            guarded: false,
        }
    }
}

impl Protocol for Memcache {
    type Replies = ReplyChunks;

    fn replies(&self) -> ReplyChunks {
        ReplyChunks::with_capacity(READ_CHUNK)
    }

    fn handle(&mut self, input: &mut BytesMut, replies: &mut ReplyChunks, now: u64) -> Handled {
        let Some(&first) = input.first() else {
            return Handled::at_once(Step::NeedInput);
        };
        let logged_in = self.user.is_some();
        let limits = if logged_in { self.limits } else { PRE_LOGIN };
        let decoder = self.decoder.get_or_insert_with(|| {
            if first == 0x80 {
                Decoder::Binary(Binary::decoder(limits))
            } else {
                Decoder::Text(Text::decoder(limits))
            }
        });
        let (shared, user) = (&*self.shared, &mut self.user);
        let handled = match decoder {
            Decoder::Text(decoder) => {
                if !self.guarded {
                    match first_line_is_http(input) {
                        None => {}
                        Some(false) => self.guarded = true,
                        Some(true) => {
                            bump(&shared.stats.protocol_errors);
                            bump(&shared.stats.more.memcache_protocol_errors);
                            guard::log_attack("memcache");
                            return Handled::at_once(Step::Close);
                        }
                    }
                }
                handle::<Text>(shared, decoder, user, true, input, replies, now)
            }
            Decoder::Binary(decoder) => {
                handle::<Binary>(shared, decoder, user, false, input, replies, now)
            }
        };
        if !logged_in && self.user.is_some() {
            // Logged in: the full limits from the next request on. The decoder has just
            // returned a whole request, so it holds no partial state to lose.
            self.decoder = Some(match self.decoder {
                Some(Decoder::Binary(_)) => Decoder::Binary(Binary::decoder(self.limits)),
                _ => Decoder::Text(Text::decoder(self.limits)),
            });
        }
        handled
    }

    fn idle_timeout(&self) -> Option<Duration> {
        if self.user.is_none() {
            return super::unauthenticated_idle_timeout(&self.shared.config);
        }
        self.shared.config.idle_timeout
    }

    fn input_limit(&self) -> usize {
        // The decoders bound what they buffer themselves (a line, or one value).
        usize::MAX
    }

    fn push(&mut self, _: &mut ReplyChunks) -> impl Future<Output = bool> + Send {
        std::future::pending()
    }
}

/// Whether a text connection's first line is HTTP (see [`super::guard`]); `None` while the
/// line is incomplete. Only a line starting with an upper-case letter, which no memcached
/// command does, is looked at; an incomplete one is left to the decoder, which bounds it.
fn first_line_is_http(input: &[u8]) -> Option<bool> {
    if !input.first()?.is_ascii_uppercase() {
        return Some(false);
    }
    let end = input.iter().position(|&b| b == b'\n')?;
    let line = input[..end].strip_suffix(b"\r").unwrap_or(&input[..end]);
    Some(guard::is_http_line(line))
}

/// What a hit adds to a get reply beyond its key and value: the `VALUE` line's other fields
/// and the line ends, or the binary header and extras.
const HIT_FRAMING: usize = 64;

/// `outcome`, unless it is a get reply larger than the output limit: then memcached's error
/// for a get response it cannot build.
fn within_output_limit(shared: &Shared, outcome: Outcome) -> Outcome {
    if let Outcome::Values(hits) = &outcome {
        let size = hits.iter().flatten().fold(0usize, |size, hit| {
            size.saturating_add(hit.key.len() + hit.value.len() + HIT_FRAMING)
        });
        if size > shared.config.client_output_limit {
            tracing::debug!(size, "get reply larger than the output limit; refused");
            return Outcome::ServerError("out of memory writing get response".into());
        }
    }
    outcome
}

/// Decodes and executes at most one request of format `F` for a connection logged in as
/// `user`; `text` says which format `F` is.
fn handle<F: WireFormat>(
    shared: &Shared,
    decoder: &mut F::Decoder,
    user: &mut Option<Identity>,
    text: bool,
    input: &mut BytesMut,
    replies: &mut ReplyChunks,
    now: u64,
) -> Handled {
    match F::decode(decoder, input) {
        Ok(None) => Handled::at_once(Step::NeedInput),
        Ok(Some(request)) => {
            let command = F::command(&request);
            let outcome = within_output_limit(
                shared,
                memcache::execute_as(shared, user, text, command, now),
            );
            if F::continues(&request) && !matches!(outcome, Outcome::Values(_)) {
                // A batch of a long multi-get failed: its error ends the whole get.
                F::abandon(decoder);
            }
            F::encode_reply_chunks(&request, &outcome, replies);
            // memcached closes a binary connection that sends a command before logging in.
            let refused = !text && outcome == Outcome::Unauthenticated;
            Handled {
                step: if *command == Command::Quit || refused {
                    Step::Close
                } else {
                    Step::More
                },
                // A refused write changed nothing, so there is nothing to wait for: its error
                // reply can go out at once (waiting would only find the journal failed and
                // drop the reply).
                durable: memcache::needs_durable_ack(command, &outcome)
                    && !matches!(outcome, Outcome::ServerError(_)),
            }
        }
        Err(error) => {
            bump(&shared.stats.protocol_errors);
            bump(&shared.stats.more.memcache_protocol_errors);
            F::encode_error(&error, replies.buf_mut());
            Handled::at_once(if F::is_fatal(&error) {
                Step::Close
            } else {
                Step::More
            })
        }
    }
}
