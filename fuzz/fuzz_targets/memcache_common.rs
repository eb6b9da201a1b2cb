//! What the memcached text and binary fuzz targets share: chunked decoding, the round trip of
//! every decoded request, and encoding replies for it. Each target supplies its wire format as
//! a [`Format`].

use bytes::{Bytes, BytesMut};
use sessiond_proto_memcache::{Command, Hit, Limits, Outcome, WireFormat};

use crate::chunked::{decode_chunked, plan_and_input};

/// Small limits, so that the fuzzer reaches them.
pub const LIMITS: Limits = Limits {
    max_key_len: 250,
    max_value_len: 1024,
    max_line_len: 2048,
    max_keys: 16,
};

/// What a fuzz target adds to a memcached wire format: the outcomes to encode for each
/// request, and how to check the encoded replies.
pub trait Format: WireFormat {
    /// The outcomes to encode for each request.
    fn outcomes(hits: Vec<Option<Hit>>) -> Vec<Outcome>;
    /// Checks that `out`, everything encoded, parses as replies.
    fn check_replies(out: &mut BytesMut);
}

/// Decodes `input` fed in chunks whose sizes cycle through `plan` (all at once if empty).
fn decode<F: WireFormat>(input: &[u8], plan: &[u8]) -> Vec<Result<F::Request, F::Error>> {
    let mut decoder = F::decoder(LIMITS);
    decode_chunked(input, plan, |buf| F::decode(&mut decoder, buf), F::is_fatal)
}

/// The body of a target: the first (up to) 4 bytes plan the chunking, the rest is the input.
///
/// Invariants: decoding never panics; how the input is split into reads does not change what
/// is decoded; every decoded request survives `encode_request` → decode unchanged; the
/// replies encoded for it parse back as replies.
pub fn check<F: Format>(data: &[u8]) {
    let (plan, input) = plan_and_input(data);
    let whole = decode::<F>(input, &[]);
    let chunked = decode::<F>(input, plan);
    assert_eq!(whole, chunked, "chunking changed the decoded requests");

    let mut out = BytesMut::new();
    for result in whole {
        let req = match result {
            Ok(req) => req,
            Err(err) => {
                F::encode_error(&err, &mut out);
                continue;
            }
        };
        // A streamed get's batch and a refused set are not whole requests to write back.
        if F::is_whole(&req) {
            let mut wire = BytesMut::new();
            F::encode_request(&req, &mut wire);
            let mut decoder = F::decoder(LIMITS);
            assert_eq!(
                F::decode(&mut decoder, &mut wire),
                Ok(Some(req.clone())),
                "round trip"
            );
            assert!(wire.is_empty(), "round trip left bytes behind");
        }

        let hits = match F::command(&req) {
            Command::Get { keys, .. } => keys
                .iter()
                .map(|key| {
                    Some(Hit {
                        key: key.clone(),
                        flags: 1,
                        cas: 2,
                        value: Bytes::new(),
                    })
                })
                .collect(),
            _ => vec![],
        };
        for outcome in F::outcomes(hits) {
            F::encode_reply(&req, &outcome, &mut out);
        }
    }
    F::check_replies(&mut out);
}
