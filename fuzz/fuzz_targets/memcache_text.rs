//! Fuzzes the memcached text decoder: arbitrary bytes, delivered in arbitrary chunks. The
//! invariants are those of [`memcache_common::check`].

#![no_main]

#[path = "chunked.rs"]
mod chunked;
#[path = "memcache_common.rs"]
mod memcache_common;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use memcache_common::{Format, LIMITS, check};
use sessiond_proto_memcache::text::{self, TextDecoder, TextError, TextRequest};
use sessiond_proto_memcache::{Command, Hit, Outcome};

struct Text;

impl Format for Text {
    type Decoder = TextDecoder;
    type Request = TextRequest;
    type Error = TextError;

    fn decoder() -> TextDecoder {
        TextDecoder::new(LIMITS)
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
    fn encode_reply(request: &TextRequest, outcome: &Outcome, out: &mut BytesMut) {
        text::encode_reply(request, outcome, out);
    }
    fn encode_error(error: &TextError, out: &mut BytesMut) {
        text::encode_error(error, out);
    }
    fn outcomes(hits: Vec<Option<Hit>>) -> Vec<Outcome> {
        vec![Outcome::Values(hits), Outcome::NotFound, Outcome::Ok]
    }
    fn check_replies(out: &mut BytesMut) {
        // A text reply cannot always be parsed without its request (`stats` lines, `VALUE`
        // blocks), so this checks only that decoding them never panics.
        while let Ok(Some(_)) = text::decode_reply(out) {}
    }
}

fuzz_target!(|data: &[u8]| check::<Text>(data));
