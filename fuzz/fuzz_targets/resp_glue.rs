//! Fuzzes the RESP glue: made-up argument vectors for real command names, run one after
//! another on one connection of a server with small limits (`sessiond::fuzzing::Glue`).
//!
//! Input: lines; each line's first byte picks a command, the rest are its arguments split on
//! spaces, a line starting with `@` moves the clock by its byte values in seconds, and one
//! starting with `!` runs the rest of the line as in the busy state (a script holding the
//! keyspace past `busy-reply-threshold`: only the allow-busy commands run).
//! Invariants: nothing panics; every reply parses as RESP; the store never holds more than
//! its budget.

#![no_main]

use std::sync::{LazyLock, Mutex};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sessiond::fuzzing::Glue;
use sessiond_proto_resp::{Limits, decode_reply};

static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(Glue::command_names);

/// One server for the whole run, emptied before each input (see `Glue::reset`).
static GLUE: LazyLock<Mutex<Glue>> = LazyLock::new(|| Mutex::new(Glue::new()));

fuzz_target!(|data: &[u8]| {
    let mut glue = GLUE.lock().unwrap_or_else(|e| e.into_inner());
    glue.reset();
    let mut now = 1_800_000_000_000u64;
    for line in data.split(|&b| b == b'\n').take(64) {
        let Some((&pick, rest)) = line.split_first() else {
            continue;
        };
        if pick == b'@' {
            now += rest.iter().map(|&b| u64::from(b) * 1000).sum::<u64>();
            continue;
        }
        let (busy, pick, rest) = match (pick, rest.split_first()) {
            (b'!', Some((&pick, rest))) => (true, pick, rest),
            (b'!', None) => continue,
            _ => (false, pick, rest),
        };
        let mut args = vec![Bytes::from_static(NAMES[usize::from(pick) % NAMES.len()].as_bytes())];
        args.extend(
            rest.split(|&b| b == b' ')
                .filter(|a| !a.is_empty())
                .map(Bytes::copy_from_slice),
        );
        let mut out: BytesMut = if busy {
            glue.resp_busy(&args, now)
        } else {
            glue.resp(&args, now)
        };
        let limits = Limits {
            max_bulk_len: 64 << 20,
            max_args: 1 << 20,
            max_inline_len: 1 << 16,
            max_depth: 128,
        };
        while !out.is_empty() {
            match decode_reply(&mut out, &limits) {
                Ok(Some(_)) => {}
                other => panic!("unparseable reply to {args:?}: {other:?}"),
            }
        }
        let (used, limit) = glue.memory();
        assert!(used <= limit, "{used} bytes stored against a limit of {limit}");
    }
});
