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
//! Shared values still count as pending output (they may keep deleted items alive until
//! written): a get whose reply would exceed `--client-output-limit` is answered with
//! memcached's `SERVER_ERROR out of memory writing get response` instead.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sessiond_proto_memcache::{
    Binary, Command, Limits, Outcome, ReplyChunks, Text, WireFormat, binary, text,
};

use super::{Handled, Protocol, READ_CHUNK, Step};
use crate::exec::{Shared, memcache};
use crate::stats::bump;

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
}

impl Memcache {
    /// A new connection's state.
    pub fn new(shared: Arc<Shared>) -> Memcache {
        let limits = Limits {
            max_value_len: shared.config.max_item_size,
            ..Limits::default()
        };
        Memcache {
            shared,
            limits,
            decoder: None,
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
        let limits = self.limits;
        let decoder = self.decoder.get_or_insert_with(|| {
            if first == 0x80 {
                Decoder::Binary(Binary::decoder(limits))
            } else {
                Decoder::Text(Text::decoder(limits))
            }
        });
        match decoder {
            Decoder::Text(decoder) => handle::<Text>(&self.shared, decoder, input, replies, now),
            Decoder::Binary(decoder) => {
                handle::<Binary>(&self.shared, decoder, input, replies, now)
            }
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
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

/// Decodes and executes at most one request of format `F`.
fn handle<F: WireFormat>(
    shared: &Shared,
    decoder: &mut F::Decoder,
    input: &mut BytesMut,
    replies: &mut ReplyChunks,
    now: u64,
) -> Handled {
    match F::decode(decoder, input) {
        Ok(None) => Handled::at_once(Step::NeedInput),
        Ok(Some(request)) => {
            let command = F::command(&request);
            let outcome = within_output_limit(shared, memcache::execute(shared, command, now));
            F::encode_reply_chunks(&request, &outcome, replies);
            Handled {
                step: if *command == Command::Quit {
                    Step::Close
                } else {
                    Step::More
                },
                // A refused write changed nothing, so there is nothing to wait for: its error
                // reply can go out at once (waiting would only find the journal failed and
                // drop the reply).
                durable: memcache::needs_durable_ack(command)
                    && !matches!(outcome, Outcome::ServerError(_)),
            }
        }
        Err(error) => {
            bump(&shared.stats.protocol_errors);
            F::encode_error(&error, replies.buf_mut());
            Handled::at_once(if F::is_fatal(&error) {
                Step::Close
            } else {
                Step::More
            })
        }
    }
}
