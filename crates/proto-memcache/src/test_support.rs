//! Strategies and helpers shared by the text and binary codecs' property tests.

use bytes::{Buf, Bytes};
use proptest::prelude::*;

use crate::chunks::SHARE_MIN;
use crate::{Hit, Outcome, ReplyChunks};

/// Values on both sides of [`SHARE_MIN`], so replies mix copied and shared values.
fn reply_value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=64).prop_map(Bytes::from),
        (SHARE_MIN - 2..SHARE_MIN + 2, any::<u8>()).prop_map(|(n, b)| Bytes::from(vec![b; n])),
        (0usize..4096, any::<u8>()).prop_map(|(n, b)| Bytes::from(vec![b; n])),
    ]
}

fn hit() -> impl Strategy<Value = Hit> {
    ("[a-z0-9.]{1,40}", any::<u32>(), any::<u64>(), reply_value()).prop_map(
        |(key, flags, cas, value)| Hit {
            key: Bytes::from(key),
            flags,
            cas,
            value,
        },
    )
}

/// Every kind of outcome, hits with values of every size.
pub(crate) fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::option::of(hit()), 0..5).prop_map(Outcome::Values),
        1 => any::<u64>().prop_map(|cas| Outcome::Stored { cas }),
        1 => Just(Outcome::NotStored),
        1 => Just(Outcome::Exists),
        1 => Just(Outcome::NotFound),
        1 => Just(Outcome::Deleted),
        1 => (any::<u32>(), any::<u64>()).prop_map(|(flags, cas)| Outcome::Touched { flags, cas }),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(value, cas)| Outcome::Counter { value, cas }),
        1 => Just(Outcome::NonNumeric),
        1 => Just(Outcome::Ok),
        1 => "[ -~\r\n]{0,20}".prop_map(Outcome::Version),
        1 => proptest::collection::vec(("[a-z_]{1,10}", "[0-9]{1,10}"), 0..4).prop_map(Outcome::Stats),
        1 => Just(Outcome::OutOfMemory),
        1 => Just(Outcome::TooLarge),
        1 => Just(Outcome::UnknownCommand),
        1 => Just(Outcome::Revoked),
        1 => "[ -~\r\n]{0,20}".prop_map(Outcome::ServerError),
    ]
}

/// What `chunks` would put on the wire, consuming it through its `Buf` interface with
/// writes of at most `write` bytes (as partial writes would).
pub(crate) fn drain(mut chunks: ReplyChunks, write: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    while chunks.has_remaining() {
        let n = chunks.chunk().len().min(write.max(1));
        wire.extend_from_slice(&chunks.chunk()[..n]);
        chunks.advance(n);
    }
    wire
}
