//! Fuzzes the store's two stream encodings, which the journal and `DUMP` carry: the first
//! input byte picks one (even: a `StreamOp`, what a stream's element record holds; odd: a
//! whole stream, what a snapshot, `RENAME` or `RESTORE` holds), the rest is decoded.
//!
//! Invariants: decoding never panics; a decoded op encodes back to exactly the input (one
//! encoding per op) and applying it to an empty stream never panics; a decoded stream
//! encodes back to the input, `encoded_len` agrees with `encode`, and its charge is what
//! re-decoding gives; the counter arithmetic a restored stream feeds (`XINFO`'s lag and
//! entries-read, an `XADD` and a group read after it) never panics, whatever counters the
//! bytes claim.

#![no_main]

use libfuzzer_sys::fuzz_target;
use bytes::Bytes;
use sessiond_store::{Stream, StreamId, StreamOp};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let Some(op) = StreamOp::decode(bytes) else {
            return;
        };
        let mut again = Vec::new();
        op.encode(&mut again);
        assert_eq!(again, bytes, "an op's encoding is byte for byte");
        let mut stream = Stream::default();
        let _ = stream.apply(&op);
        let _ = stream.apply(&op);
    } else {
        let Some(stream) = Stream::decode(bytes) else {
            return;
        };
        let mut again = Vec::new();
        stream.encode(&mut again);
        assert_eq!(again.len(), stream.encoded_len(), "encoded_len agrees");
        assert_eq!(again, bytes, "a stream's encoding is byte for byte");
        let back = Stream::decode(&again).expect("re-decodes");
        assert_eq!(back.bytes(), stream.bytes());
        for id in [stream.first_id(), stream.last_id(), StreamId::MIN, StreamId::MAX] {
            let _ = stream.entries_up_to(id);
        }
        for group in stream.groups().values() {
            let _ = stream.lag(group);
            let _ = stream.entries_read_after(group.entries_read, stream.last_id());
        }
        let mut grown = stream.clone();
        if let Some(id) = grown.last_id().next() {
            let add = StreamOp::Add {
                id,
                node: grown.node_for_new(100),
                fields: vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")],
            };
            let _ = grown.growth_of(&add);
            grown.apply(&add).expect("an add above the last ID applies");
            let _ = grown.entries_up_to(id);
        }
    }
});
