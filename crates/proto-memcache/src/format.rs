//! What the text and binary wire formats share, as one trait: a server handles either through
//! the same generic path, and the fuzz targets check both with one body.
//!
//! A format is a marker type ([`Text`], [`Binary`]) naming its decoder, its request and its
//! error; the functions are the format's own (`text::encode_reply`, …), so nothing here adds
//! behaviour, only a common shape.

use std::fmt::{Debug, Display};

use bytes::BytesMut;

use crate::binary::{self, BinaryDecoder, BinaryError, BinaryRequest};
use crate::text::{self, TextDecoder, TextError, TextRequest};
use crate::{Command, Limits, Outcome, ReplyChunks};

/// One memcached wire format, seen from the server.
pub trait WireFormat {
    /// The stateful decoder of a connection.
    type Decoder;
    /// A decoded request: the [`Command`] plus what its reply needs (opaque, `noreply`, …).
    type Request: Clone + Debug + PartialEq;
    /// A rejected request.
    type Error: Clone + Debug + Display + PartialEq;

    /// A decoder enforcing `limits`.
    fn decoder(limits: Limits) -> Self::Decoder;
    /// Decodes one request from the front of `buf`, or `None` if it is incomplete.
    fn decode(
        decoder: &mut Self::Decoder,
        buf: &mut BytesMut,
    ) -> Result<Option<Self::Request>, Self::Error>;
    /// Whether the stream cannot go on after `error`: answer it, then close.
    fn is_fatal(error: &Self::Error) -> bool;
    /// What the request asks for.
    fn command(request: &Self::Request) -> &Command;
    /// Encodes `request` as a client would send it.
    fn encode_request(request: &Self::Request, out: &mut BytesMut);
    /// Whether [`WireFormat::encode_request`] writes `request` whole, so decoding it gives
    /// it back: not a batch of a streamed multi-get (its line is the decoder's, not one
    /// request's), nor a refused set (its data block is gone).
    fn is_whole(request: &Self::Request) -> bool {
        !matches!(Self::command(request), Command::TooLarge { .. })
    }
    /// Whether more requests of the same client request follow `request` (a batch of a
    /// streamed multi-get).
    fn continues(request: &Self::Request) -> bool {
        let _ = request;
        false
    }
    /// Drops the rest of a request that [`WireFormat::continues`]: its batch failed, and one
    /// error ends it (the rest of its line is discarded).
    fn abandon(decoder: &mut Self::Decoder) {
        let _ = decoder;
    }
    /// Appends the reply to `request` for `outcome`.
    fn encode_reply(request: &Self::Request, outcome: &Outcome, out: &mut BytesMut);
    /// Like [`WireFormat::encode_reply`], sharing large values instead of copying them.
    fn encode_reply_chunks(request: &Self::Request, outcome: &Outcome, out: &mut ReplyChunks);
    /// Appends the reply to a rejected request.
    fn encode_error(error: &Self::Error, out: &mut BytesMut);
}

/// The line-based ASCII protocol.
#[derive(Debug, Clone, Copy)]
pub struct Text;

/// The 24-byte-header binary protocol (magic 0x80).
#[derive(Debug, Clone, Copy)]
pub struct Binary;

impl WireFormat for Text {
    type Decoder = TextDecoder;
    type Request = TextRequest;
    type Error = TextError;

    fn decoder(limits: Limits) -> TextDecoder {
        TextDecoder::new(limits)
    }
    fn decode(d: &mut TextDecoder, buf: &mut BytesMut) -> Result<Option<TextRequest>, TextError> {
        d.decode(buf)
    }
    fn is_fatal(error: &TextError) -> bool {
        matches!(error, TextError::Fatal(_))
    }
    fn command(request: &TextRequest) -> &Command {
        &request.command
    }
    fn encode_request(request: &TextRequest, out: &mut BytesMut) {
        text::encode_request(request, out);
    }
    fn continues(request: &TextRequest) -> bool {
        request.more
    }
    fn abandon(d: &mut TextDecoder) {
        d.abandon_get();
    }
    fn is_whole(request: &TextRequest) -> bool {
        match &request.command {
            Command::TooLarge { .. } => false,
            Command::Get { keys, .. } => !request.more && !keys.is_empty(),
            _ => true,
        }
    }
    fn encode_reply(request: &TextRequest, outcome: &Outcome, out: &mut BytesMut) {
        text::encode_reply(request, outcome, out);
    }
    fn encode_reply_chunks(request: &TextRequest, outcome: &Outcome, out: &mut ReplyChunks) {
        text::encode_reply_chunks(request, outcome, out);
    }
    fn encode_error(error: &TextError, out: &mut BytesMut) {
        text::encode_error(error, out);
    }
}

impl WireFormat for Binary {
    type Decoder = BinaryDecoder;
    type Request = BinaryRequest;
    type Error = BinaryError;

    fn decoder(limits: Limits) -> BinaryDecoder {
        BinaryDecoder::new(limits)
    }
    fn decode(
        d: &mut BinaryDecoder,
        buf: &mut BytesMut,
    ) -> Result<Option<BinaryRequest>, BinaryError> {
        d.decode(buf)
    }
    fn is_fatal(error: &BinaryError) -> bool {
        matches!(error, BinaryError::Fatal(_))
    }
    fn command(request: &BinaryRequest) -> &Command {
        &request.command
    }
    fn encode_request(request: &BinaryRequest, out: &mut BytesMut) {
        binary::encode_request(request, out);
    }
    fn encode_reply(request: &BinaryRequest, outcome: &Outcome, out: &mut BytesMut) {
        binary::encode_reply(request, outcome, out);
    }
    fn encode_reply_chunks(request: &BinaryRequest, outcome: &Outcome, out: &mut ReplyChunks) {
        binary::encode_reply_chunks(request, outcome, out);
    }
    fn encode_error(error: &BinaryError, out: &mut BytesMut) {
        binary::encode_error(error, out);
    }
}
