//! Fuzzes the memcached text decoder: arbitrary bytes, delivered in arbitrary chunks.
//!
//! Invariants: decoding never panics; how the input is split into reads does not change what
//! is decoded; every decoded request survives `encode_request` → decode unchanged; encoding a
//! reply for it never panics.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sessiond_proto_memcache::text::{
    TextDecoder, TextError, TextRequest, decode_reply, encode_error, encode_reply, encode_request,
};
use sessiond_proto_memcache::{Command, Hit, Limits, Outcome};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_key_len: 250,
    max_value_len: 1024,
    max_line_len: 2048,
    max_keys: 16,
};

type Decoded = Result<TextRequest, TextError>;

/// Decodes `input` fed in chunks whose sizes cycle through `plan` (all at once if empty).
fn decode(input: &[u8], plan: &[u8]) -> Vec<Decoded> {
    let mut decoder = TextDecoder::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    let mut at = 0;
    let mut step = 0;
    while at < input.len() {
        let size = match plan.get(step % plan.len().max(1)) {
            Some(n) => usize::from(*n % 64) + 1,
            None => input.len(),
        };
        step += 1;
        let end = (at + size).min(input.len());
        buf.extend_from_slice(&input[at..end]);
        at = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(req)) => results.push(Ok(req)),
                Ok(None) => break,
                Err(err @ TextError::Fatal(_)) => {
                    results.push(Err(err));
                    return results;
                }
                Err(err) => results.push(Err(err)),
            }
        }
    }
    results
}

fuzz_target!(|data: &[u8]| {
    let split = data.len().min(4);
    let (plan, input) = data.split_at(split);
    let whole = decode(input, &[]);
    let chunked = decode(input, plan);
    assert_eq!(whole, chunked, "chunking changed the decoded requests");

    let mut out = BytesMut::new();
    for result in whole {
        let req = match result {
            Ok(req) => req,
            Err(err) => {
                encode_error(&err, &mut out);
                continue;
            }
        };
        let mut wire = BytesMut::new();
        encode_request(&req, &mut wire);
        let mut decoder = TextDecoder::new(LIMITS);
        assert_eq!(
            decoder.decode(&mut wire),
            Ok(Some(req.clone())),
            "round trip"
        );
        assert!(wire.is_empty(), "round trip left bytes behind");

        let hits = match &req.command {
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
        for outcome in [Outcome::Values(hits), Outcome::NotFound, Outcome::Ok] {
            encode_reply(&req, &outcome, &mut out);
        }
    }
    // The replies we produced must parse as replies.
    while let Ok(Some(_)) = decode_reply(&mut out) {}
});
