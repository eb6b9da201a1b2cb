use super::*;
use proptest::prelude::*;

fn entry(at: u64) -> Entry {
    Entry { hash: at, at }
}

fn drain(wheel: &mut Wheel, now: u64) -> Vec<u64> {
    let mut out = Vec::new();
    wheel.drain_due(now, usize::MAX, &mut out);
    out.into_iter().map(|e| e.at).collect()
}

#[test]
fn hands_out_entries_exactly_at_their_deadline() {
    let start = 1_700_000_000_123;
    let mut wheel = Wheel::new(start);
    for d in [
        1,
        2,
        63,
        64,
        65,
        4095,
        4096,
        4097,
        262_143,
        262_144,
        1 << 30,
        (1 << 36) + 5,
    ] {
        wheel.insert(entry(start + d));
    }
    let mut seen = Vec::new();
    for d in [
        1,
        2,
        63,
        64,
        65,
        4095,
        4096,
        4097,
        262_143,
        262_144,
        1 << 30,
        (1 << 36) + 5,
    ] {
        assert!(drain(&mut wheel, start + d - 1).is_empty(), "early at {d}");
        let due = drain(&mut wheel, start + d);
        assert_eq!(due, vec![start + d], "at {d}");
        seen.push(d);
    }
    assert!(wheel.is_empty());
}

#[test]
fn overdue_entries_come_out_on_the_next_drain() {
    let mut wheel = Wheel::new(1000);
    wheel.insert(entry(999));
    wheel.insert(entry(1000));
    assert_eq!(drain(&mut wheel, 1000), vec![999, 1000]);
}

#[test]
fn budget_bounds_a_drain_and_the_next_call_continues() {
    let mut wheel = Wheel::new(0);
    for at in 1..=100 {
        wheel.insert(entry(at));
    }
    let mut out = Vec::new();
    wheel.drain_due(1000, 10, &mut out);
    assert_eq!(out.len(), 10);
    let mut rest = Vec::new();
    wheel.drain_due(1000, usize::MAX, &mut rest);
    assert_eq!(out.len() + rest.len(), 100);
    assert!(wheel.is_empty());
}

proptest! {
    /// Whatever the schedule and however time advances, every entry comes out once, never
    /// before its deadline, and no later than the first drain at or after it.
    #[test]
    fn every_entry_comes_out_once_and_on_time(
        start in 0u64..(1 << 40),
        offsets in proptest::collection::vec(0u64..(1 << 38), 1..60),
        steps in proptest::collection::vec(1u64..(1 << 37), 1..40),
    ) {
        let mut wheel = Wheel::new(start);
        for &o in &offsets {
            wheel.insert(entry(start + o));
        }
        let mut now = start;
        let mut got = Vec::new();
        for step in steps.iter().copied().chain(std::iter::once(1 << 39)) {
            now += step;
            for at in drain(&mut wheel, now) {
                prop_assert!(at <= now);
                got.push(at);
            }
            // Nothing due may remain.
            let mut pending_due = offsets.iter().map(|o| start + o).filter(|&at| at <= now).count();
            pending_due -= got.iter().filter(|&&at| at <= now).count();
            prop_assert_eq!(pending_due, 0);
        }
        let mut want: Vec<u64> = offsets.iter().map(|o| start + o).collect();
        want.sort_unstable();
        got.sort_unstable();
        prop_assert_eq!(got, want);
        prop_assert!(wheel.is_empty());
    }
}
