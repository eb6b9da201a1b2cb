//! Fuzzes the RESP reply decoder and the reply encoder behind it: arbitrary bytes, delivered
//! in arbitrary chunks.
//!
//! Invariants: decoding never panics (nesting is bounded, so neither does the stack
//! overflow); how the input is split into reads does not change what is decoded; a decoded
//! reply, encoded again in RESP3, decodes to a reply that encodes to the same bytes (the
//! encoding is a fixed point after one trip, which also covers NaN and normalised number
//! texts); and its RESP2 downgrade always decodes.

#![no_main]

#[path = "chunked.rs"]
mod chunked;

use bytes::BytesMut;
use chunked::{decode_chunked, plan_and_input};
use libfuzzer_sys::fuzz_target;
use sessiond_proto_resp::{Limits, Protocol, ProtocolError, Reply, decode_reply, encode};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_bulk_len: 64,
    max_args: 16,
    max_inline_len: 128,
    max_depth: 8,
};

/// Decodes `input` fed in chunks whose sizes cycle through `plan` (all at once if empty),
/// up to the first error.
fn decode(input: &[u8], plan: &[u8]) -> Vec<Result<Reply, ProtocolError>> {
    decode_chunked(input, plan, |buf| decode_reply(buf, &LIMITS), |_| true)
}

fn encoded(reply: &Reply, protocol: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    encode(reply, protocol, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let (plan, input) = plan_and_input(data);
    let whole = decode(input, &[]);
    let chunked = decode(input, plan);
    // `Reply` holds doubles, and NaN is not equal to itself: compare encodings.
    let as_wire =
        |results: &[Result<Reply, ProtocolError>]| -> Vec<Result<BytesMut, ProtocolError>> {
            results
                .iter()
                .map(|r| {
                    r.as_ref()
                        .map(|r| encoded(r, Protocol::Resp3))
                        .map_err(|e| *e)
                })
                .collect()
        };
    assert_eq!(
        as_wire(&whole),
        as_wire(&chunked),
        "chunking changed the decoded replies"
    );

    // A RESP2 map is an array twice as long, and a RESP3 big number (a line, bounded by
    // `max_inline_len`) becomes a RESP2 bulk string (bounded by `max_bulk_len`, smaller
    // here), so re-decode with room for both. Without the second, a 74-digit big number
    // failed the RESP2 check: a limit of this target, not of the codec.
    let roomy = Limits {
        max_args: LIMITS.max_args * 2,
        max_bulk_len: LIMITS.max_bulk_len.max(LIMITS.max_inline_len),
        ..LIMITS
    };
    for reply in whole.iter().flatten() {
        let first = encoded(reply, Protocol::Resp3);
        let mut wire = first.clone();
        let again = decode_reply(&mut wire, &roomy);
        let Ok(Some(again)) = again else {
            panic!("re-decoding {reply:?}: {again:?}")
        };
        assert!(wire.is_empty(), "re-decoding left bytes behind");
        assert_eq!(encoded(&again, Protocol::Resp3), first, "not a fixed point");

        let mut wire = encoded(reply, Protocol::Resp2);
        let resp2 = decode_reply(&mut wire, &roomy);
        assert!(
            matches!(resp2, Ok(Some(_))),
            "RESP2 of {reply:?}: {resp2:?}"
        );
        assert!(wire.is_empty());
    }
});
