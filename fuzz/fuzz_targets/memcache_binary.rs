//! Fuzzes the memcached binary decoder: arbitrary bytes, delivered in arbitrary chunks. The
//! invariants are those of [`memcache_common::check`]; every response must parse.

#![no_main]

#[path = "chunked.rs"]
mod chunked;
#[path = "memcache_common.rs"]
mod memcache_common;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use memcache_common::{Format, check};
use sessiond_proto_memcache::{Binary, Hit, Outcome, binary};

impl Format for Binary {
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
