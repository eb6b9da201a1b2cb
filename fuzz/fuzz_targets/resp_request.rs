//! Fuzzes the RESP request decoder: arbitrary bytes, delivered in arbitrary chunks.
//!
//! Invariants: decoding never panics; how the input is split into reads does not change what
//! is decoded; no decoded request is empty; every decoded request survives
//! `encode_request` → decode unchanged; the error reply for a protocol error parses back as
//! an error in both protocol versions.

#![no_main]

#[path = "chunked.rs"]
mod chunked;

use bytes::BytesMut;
use chunked::{decode_chunked, plan_and_input};
use libfuzzer_sys::fuzz_target;
use sessiond_proto_resp::{
    Decoder, Limits, Protocol, ProtocolError, Reply, decode_reply, encode, encode_request,
};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_bulk_len: 64,
    max_args: 16,
    max_inline_len: 128,
    max_depth: 8,
};

type Decoded = Result<Vec<bytes::Bytes>, ProtocolError>;

/// Decodes `input` fed in chunks whose sizes cycle through `plan` (all at once if empty),
/// up to the first error, which is fatal.
fn decode(input: &[u8], plan: &[u8]) -> Vec<Decoded> {
    let mut decoder = Decoder::new(LIMITS);
    decode_chunked(
        input,
        plan,
        |buf| decoder.decode(buf).map(|req| req.map(|req| req.args)),
        |_| true,
    )
}

fuzz_target!(|data: &[u8]| {
    let (plan, input) = plan_and_input(data);
    let whole = decode(input, &[]);
    let chunked = decode(input, plan);
    assert_eq!(whole, chunked, "chunking changed the decoded requests");

    for result in whole {
        match result {
            Ok(args) => {
                assert!(!args.is_empty(), "empty request");
                let mut wire = BytesMut::new();
                encode_request(&args, &mut wire);
                let mut decoder = Decoder::new(LIMITS);
                let again = decoder.decode(&mut wire).map(|r| r.map(|r| r.args));
                assert_eq!(again, Ok(Some(args)), "round trip");
                assert!(wire.is_empty(), "round trip left bytes behind");
            }
            Err(err) => {
                let _ = err.to_string();
                for protocol in [Protocol::Resp2, Protocol::Resp3] {
                    let mut wire = BytesMut::new();
                    encode(&err.reply(), protocol, &mut wire);
                    let reply = decode_reply(&mut wire, &Limits::default());
                    assert!(
                        matches!(reply, Ok(Some(Reply::Error(_)))),
                        "{err:?}: {reply:?}"
                    );
                    assert!(wire.is_empty());
                }
            }
        }
    }
});
