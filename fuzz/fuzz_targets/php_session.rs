//! Fuzzes the lossless PHP session codec the middleware's `PhpSessionStore` runs on every
//! value it reads from a shared memcached: `PhpSession::decode`, `with_data` and `encode`,
//! for both handlers (`php`, `php_serialize`).
//!
//! Input: the first byte picks the handler (low bit); the rest is the stored value.
//!
//! Invariants: nothing panics; a session that decodes re-encodes unchanged (every entry
//! written back from its own bytes), also after `with_data` of its own JSON view; the
//! encoded bytes decode to the same JSON view and the same opaque entries; and after one
//! round through JSON the session is a fixpoint (what Rust writes, Rust reads back as it
//! wrote it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_session_format::{PhpSession, SerializeHandler};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let handler = if selector & 1 == 0 {
        SerializeHandler::Php
    } else {
        SerializeHandler::PhpSerialize
    };
    let Ok(session) = PhpSession::decode(handler, value) else {
        return;
    };
    let Ok(bytes) = session.encode(handler) else {
        // Only the size limit can refuse an unchanged session (a `php_serialize` header
        // that grew); nothing else about it changed.
        return;
    };
    let again = PhpSession::decode(handler, &bytes).expect("what was read and written reads");
    assert_eq!(again.data(), session.data());
    assert_eq!(again.opaque_names(), session.opaque_names());
    let same = session.with_data(&session.data()).expect("its own view");
    assert_eq!(same.encode(handler).expect("unchanged"), bytes);

    // Through JSON: rebuilt from the view alone, then read back.
    let Ok(rebuilt) = PhpSession::default().with_data(&session.data()) else {
        return;
    };
    let Ok(written) = rebuilt.encode(handler) else {
        return;
    };
    let read = PhpSession::decode(handler, &written).expect("what Rust writes reads");
    let Ok(rewritten) = PhpSession::default().with_data(&read.data()) else {
        return;
    };
    let rewritten = rewritten.encode(handler).expect("it was written once");
    let reread = PhpSession::decode(handler, &rewritten).expect("and again");
    assert_eq!(reread.data(), read.data(), "one round through JSON is a fixpoint");
});
