//! Fuzzes the memcached glue: arbitrary bytes decoded as text (or binary, after 0x80) and
//! every request run on a server with small limits (`sessiond::fuzzing::Glue`).
//!
//! The first byte of the input moves the clock (seconds), so expiry paths are reached.
//! Invariants: nothing panics; the store never holds more than its budget.

#![no_main]

use std::sync::{LazyLock, Mutex};

use libfuzzer_sys::fuzz_target;
use sessiond::fuzzing::Glue;

/// One server for the whole run, emptied before each input (see `Glue::reset`).
static GLUE: LazyLock<Mutex<Glue>> = LazyLock::new(|| Mutex::new(Glue::new()));

fuzz_target!(|data: &[u8]| {
    let Some((&clock, input)) = data.split_first() else {
        return;
    };
    let mut glue = GLUE.lock().unwrap_or_else(|e| e.into_inner());
    glue.reset();
    let now = 1_800_000_000_000 + u64::from(clock) * 1000;
    let _replies = glue.memcache(input, now);
    let _again = glue.memcache(input, now + 60_000);
    let (used, limit) = glue.memory();
    assert!(used <= limit, "{used} bytes stored against a limit of {limit}");
});
