//! Fuzzes the memcached binary decoder: arbitrary bytes, delivered in arbitrary chunks. The
//! invariants are those of [`memcache_common::check`]; every response must parse.

#![no_main]

#[path = "chunked.rs"]
mod chunked;
#[path = "memcache_common.rs"]
mod memcache_common;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use memcache_common::{Format, LIMITS, check};
use sessiond_proto_memcache::binary::{self, BinaryDecoder, BinaryError, BinaryRequest};
use sessiond_proto_memcache::{Command, Hit, Outcome};

struct Binary;

impl Format for Binary {
    type Decoder = BinaryDecoder;
    type Request = BinaryRequest;
    type Error = BinaryError;

    fn decoder() -> BinaryDecoder {
        BinaryDecoder::new(LIMITS)
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
    fn encode_error(error: &BinaryError, out: &mut BytesMut) {
        binary::encode_error(error, out);
    }
    fn outcomes(hits: Vec<Option<Hit>>) -> Vec<Outcome> {
        vec![
            Outcome::Values(hits),
            Outcome::NotFound,
            Outcome::NotStored,
            Outcome::Ok,
        ]
    }
    fn check_replies(out: &mut BytesMut) {
        while !out.is_empty() {
            assert!(
                matches!(binary::decode_response(out), Ok(Some(_))),
                "our responses must parse"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| check::<Binary>(data));
