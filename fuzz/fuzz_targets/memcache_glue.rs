//! Fuzzes the memcached glue: arbitrary bytes decoded as text (or binary, after 0x80) and
//! every request run on a server with small limits (`sessiond::fuzzing::Glue`).
//!
//! The first byte of the input moves the clock (seconds), so expiry paths are reached.
//! Invariants: nothing panics; the store never holds more than its budget.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond::fuzzing::Glue;

fuzz_target!(|data: &[u8]| {
    let Some((&clock, input)) = data.split_first() else {
        return;
    };
    let mut glue = Glue::new();
    let now = 1_800_000_000_000 + u64::from(clock) * 1000;
    let _replies = glue.memcache(input, now);
    let _again = glue.memcache(input, now + 60_000);
    let (used, limit) = glue.memory();
    assert!(used <= limit, "{used} bytes stored against a limit of {limit}");
});
