//! Fuzzes the journal's record payload decoder, past the checksum: the first input byte picks
//! the file format (even: V1, odd: V2), the rest is a payload as `record::decode` hands it to
//! `decode_payload` once the CRC matched. A damaged disk, or a record written by a buggy
//! build, reaches exactly this parser with a valid checksum.
//!
//! Invariants: decoding never panics; a decoded record encodes back, in the same format, to
//! exactly the input bytes (the format has one encoding per record, so the round trip is
//! byte for byte), and framed it decodes to an equal record; the same record written in the
//! current format (V2, what a recovered V1 journal's records become) reads back equal; a
//! collection's members always rebuild a collection in the store (a list's only with its
//! leading version, which a list's last part lacks; a stream's is the store's to check).
//! List, stream, revocation and meta-marks records are V2 only, so the V1 branch never
//! yields one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_journal::Version;
use sessiond_journal::record::{decode, decode_payload, encode, encode_frame, encode_payload};
use sessiond_store::{Kind, Mutation, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 {
        Version::V1
    } else {
        Version::V2
    };
    let Ok(record) = decode_payload(version, payload) else {
        return;
    };

    let mut again = Vec::new();
    encode_payload(version, &record, &mut again).expect("a decoded record can be written");
    assert_eq!(again, payload, "the payload round trip is byte for byte");

    let mut framed = Vec::new();
    encode_frame(version, &record, &mut framed).expect("a decoded record can be framed");
    let (decoded, len) = decode(version, &framed).expect("a framed record decodes");
    assert_eq!((decoded, len), (record, framed.len()));

    // What the writer does with it today (V2; a large collection would become parts, which
    // inputs this small never are).
    let mut current = Vec::new();
    encode(&record, &mut current).expect("the current format carries every V1 record");
    let (decoded, len) = decode(Version::V2, &current).expect("the V2 record decodes");
    assert_eq!((decoded, len), (record, current.len()));

    if let Mutation::PutCollection { kind, members, .. } = record.mutation {
        // A list's first string is its 8-byte version, which the record decoder cannot
        // require: the last part of a list written in parts is an ordinary record without
        // one. Replay skips a whole list that lacks it.
        let list_without_version = kind == Kind::List
            && members.get(..4).is_some_and(|len| len != 8u32.to_le_bytes());
        // A stream's elements are checked for framing only: their content (header first,
        // entries in order, pending entries of known consumers) is the store's to check,
        // and a later part of a stream written in parts has no header. Replay skips a
        // stream that does not rebuild (the `stream_codec` target fuzzes that decoder).
        assert!(
            Value::decode(kind, members).is_some() || list_without_version || kind == Kind::Stream,
            "the store rebuilds every collection the decoder accepts"
        );
    }
});
