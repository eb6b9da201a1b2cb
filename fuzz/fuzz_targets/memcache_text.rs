//! Fuzzes the memcached text decoder: arbitrary bytes, delivered in arbitrary chunks. The
//! invariants are those of [`memcache_common::check`].

#![no_main]

#[path = "chunked.rs"]
mod chunked;
#[path = "memcache_common.rs"]
mod memcache_common;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use memcache_common::{Format, check};
use sessiond_proto_memcache::{Hit, Outcome, Text, text};

impl Format for Text {
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
