use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const T0: u64 = 1_800_000_000_000;

fn store() -> Store {
    Store::new(Arc::new(Budget::new(u64::MAX)), T0)
}

fn set(s: &Store, key: &str, value: &str, deadline: Option<u64>, now: u64) -> WriteOutcome {
    s.store(
        key.as_bytes(),
        value.as_bytes(),
        0,
        deadline,
        Condition::Always,
        now,
    )
    .unwrap()
}

fn value(s: &Store, key: &str, now: u64) -> Option<String> {
    s.get(key.as_bytes(), now)
        .map(|v| String::from_utf8(v.value.to_vec()).unwrap())
}

#[test]
fn a_read_never_sees_an_expired_item_even_before_the_wheel_runs() {
    let s = store();
    set(&s, "k", "v", Some(T0 + 1000), T0);
    assert_eq!(value(&s, "k", T0 + 999).as_deref(), Some("v"));
    assert_eq!(value(&s, "k", T0 + 1000), None);
    assert_eq!(s.stats().expired, 1);
}

#[test]
fn a_born_expired_add_succeeds_and_leaves_nothing_alive() {
    // PHP's strict-mode probe: `add <key> 0 2678400 0` (an absolute time in 1970).
    let s = store();
    let probe = |s: &Store| {
        s.store(b"sid", b"", 0, Some(2_678_400_000), Condition::IfAbsent, T0)
            .unwrap()
    };
    assert!(matches!(probe(&s), WriteOutcome::Stored(_)));
    assert_eq!(s.get(b"sid", T0), None);
    assert!(
        matches!(probe(&s), WriteOutcome::Stored(_)),
        "a second probe must still find nothing"
    );
    // An existing session answers "exists" to the probe.
    set(&s, "sid", "data", None, T0);
    assert_eq!(probe(&s), WriteOutcome::NotStored);
    assert_eq!(value(&s, "sid", T0).as_deref(), Some("data"));
}

#[test]
fn conditions_follow_memcached() {
    let s = store();
    assert_eq!(
        s.store(b"k", b"1", 0, None, Condition::IfPresent, T0)
            .unwrap(),
        WriteOutcome::NotStored
    );
    assert_eq!(
        s.store(b"k", b"1", 0, None, Condition::IfCas(7), T0)
            .unwrap(),
        WriteOutcome::NotFound
    );
    let WriteOutcome::Stored(cas) = s
        .store(b"k", b"1", 5, None, Condition::IfAbsent, T0)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        s.store(b"k", b"2", 0, None, Condition::IfAbsent, T0)
            .unwrap(),
        WriteOutcome::NotStored
    );
    assert_eq!(
        s.store(b"k", b"2", 0, None, Condition::IfCas(cas + 100), T0)
            .unwrap(),
        WriteOutcome::Exists
    );
    let WriteOutcome::Stored(cas2) = s
        .store(b"k", b"2", 9, None, Condition::IfCas(cas), T0)
        .unwrap()
    else {
        panic!()
    };
    assert_ne!(cas, cas2);
    let item = s.get(b"k", T0).unwrap();
    assert_eq!(
        (item.flags, item.cas, &item.value[..]),
        (9, cas2, &b"2"[..])
    );
    assert_eq!(s.delete(b"k", cas, T0), DeleteOutcome::Exists);
    assert_eq!(s.delete(b"k", cas2, T0), DeleteOutcome::Deleted);
    assert_eq!(s.delete(b"k", 0, T0), DeleteOutcome::NotFound);
}

#[test]
fn concat_keeps_flags_and_deadline() {
    let s = store();
    s.store(b"k", b"mid", 3, Some(T0 + 5000), Condition::Always, T0)
        .unwrap();
    s.concat(b"k", b">", Side::Append, 0, T0).unwrap();
    s.concat(b"k", b"<", Side::Prepend, 0, T0).unwrap();
    let item = s.get(b"k", T0).unwrap();
    assert_eq!(
        (&item.value[..], item.flags, item.deadline),
        (&b"<mid>"[..], 3, Some(T0 + 5000))
    );
    assert_eq!(
        s.concat(b"nope", b"x", Side::Append, 0, T0).unwrap(),
        WriteOutcome::NotStored
    );
}

#[test]
fn counters_wrap_up_and_stop_at_zero_down() {
    let s = store();
    assert_eq!(
        s.arith(b"c", true, 1, None, T0).unwrap(),
        ArithOutcome::NotFound
    );
    set(&s, "c", "18446744073709551615", None, T0);
    assert!(matches!(
        s.arith(b"c", true, 2, None, T0).unwrap(),
        ArithOutcome::Value(1, _)
    ));
    assert!(matches!(
        s.arith(b"c", false, 5, None, T0).unwrap(),
        ArithOutcome::Value(0, _)
    ));
    set(&s, "c", "12  ", None, T0);
    assert!(matches!(
        s.arith(b"c", true, 1, None, T0).unwrap(),
        ArithOutcome::Value(13, _)
    ));
    assert_eq!(value(&s, "c", T0).as_deref(), Some("13"));
    set(&s, "c", "1x", None, T0);
    assert_eq!(
        s.arith(b"c", true, 1, None, T0).unwrap(),
        ArithOutcome::NonNumeric
    );
    assert!(matches!(
        s.arith(b"n", true, 1, Some((40, None)), T0).unwrap(),
        ArithOutcome::Value(40, _)
    ));
}

#[test]
fn the_wheel_reclaims_unread_items_at_their_deadline() {
    let s = store();
    for i in 0..1000u64 {
        set(&s, &format!("k{i}"), "v", Some(T0 + 1 + i * 37), T0);
    }
    let mut expired = Vec::new();
    let n = s.expire_due(T0 + 1 + 500 * 37, &mut |k| expired.push(k.to_vec()));
    assert_eq!(n, 501);
    assert_eq!(s.len(), 499);
    assert!(expired.contains(&b"k500".to_vec()) && !expired.contains(&b"k501".to_vec()));
    assert_eq!(s.expire_due(T0 + 1_000_000, &mut |_| {}), 499);
    assert!(s.is_empty());
    assert_eq!(s.budget().used(), 0);
}

#[test]
fn touching_later_refiles_lazily_and_touching_earlier_refiles_now() {
    let s = store();
    set(&s, "k", "v", Some(T0 + 1000), T0);
    for i in 1..100 {
        s.touch(b"k", Some(T0 + 1000 + i * 1000), T0 + i).unwrap();
    }
    assert_eq!(
        s.stats().wheel_entries,
        1,
        "sliding expiry adds no wheel entries"
    );
    assert_eq!(
        s.expire_due(T0 + 1000, &mut |_| {}),
        0,
        "the early entry re-files"
    );
    assert!(s.get(b"k", T0 + 1000).is_some());
    assert_eq!(s.expire_due(T0 + 100_000, &mut |_| {}), 1);

    set(&s, "j", "v", Some(T0 + 1_000_000), T0);
    s.touch(b"j", Some(T0 + 10), T0).unwrap();
    assert_eq!(s.expire_due(T0 + 10, &mut |_| {}), 1);
    s.store(b"p", b"v", 0, Some(T0 + 10), Condition::Always, T0)
        .unwrap();
    s.touch(b"p", None, T0).unwrap();
    assert_eq!(
        s.expire_due(T0 + 1_000_000, &mut |_| {}),
        0,
        "a persisted item stays"
    );
    assert!(s.get(b"p", T0 + 1_000_000).is_some());
}

#[test]
fn a_full_store_refuses_writes_and_evicts_nothing() {
    let budget = Arc::new(Budget::new(3 * (ITEM_OVERHEAD + 2 + 100)));
    let s = Store::new(budget.clone(), T0);
    let big = vec![b'x'; 100];
    for k in ["k1", "k2", "k3"] {
        s.store(k.as_bytes(), &big, 0, None, Condition::Always, T0)
            .unwrap();
    }
    assert_eq!(
        s.store(b"k4", &big, 0, None, Condition::Always, T0),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(
        s.concat(b"k1", b"more", Side::Append, 0, T0),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(s.len(), 3);
    assert_eq!(s.stats().out_of_memory, 2);
    // Overwriting with a value of the same size fits; deleting makes room.
    s.store(b"k1", &big, 0, None, Condition::Always, T0)
        .unwrap();
    s.delete(b"k2", 0, T0);
    s.store(b"k4", &big, 0, None, Condition::Always, T0)
        .unwrap();
    assert_eq!(budget.used(), budget.limit());
}

#[test]
fn a_delayed_flush_removes_what_exists_when_it_falls_due() {
    let s = store();
    set(&s, "a", "1", None, T0);
    s.flush_all(T0 + 10_000, T0);
    set(&s, "b", "2", None, T0 + 5000);
    assert!(s.get(b"a", T0 + 9999).is_some());
    assert!(s.get(b"b", T0 + 10_000).is_none());
    assert!(s.get(b"a", T0 + 10_000).is_none());
    set(&s, "c", "3", None, T0 + 10_001);
    assert!(s.get(b"c", T0 + 20_000).is_some());
    s.flush_all(0, T0 + 20_000);
    assert!(s.is_empty());
    assert_eq!(s.budget().used(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8, Option<u16>),
    Add(u8, u8, Option<u16>),
    Touch(u8, Option<u16>),
    Delete(u8),
    Advance(u16),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    let ttl = proptest::option::of(0u16..3000);
    prop_oneof![
        (0u8..8, any::<u8>(), ttl.clone()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        (0u8..8, any::<u8>(), ttl.clone()).prop_map(|(k, v, t)| Op::Add(k, v, t)),
        (0u8..8, ttl).prop_map(|(k, t)| Op::Touch(k, t)),
        (0u8..8).prop_map(Op::Delete),
        (0u16..2000).prop_map(Op::Advance),
        Just(Op::Expire),
    ]
}

proptest! {
    /// The store behaves like a plain map with deadlines, whatever the interleaving of
    /// writes, touches, deletes, time and wheel sweeps; and the budget returns to zero.
    #[test]
    fn matches_a_simple_model(ops in proptest::collection::vec(op(), 1..200)) {
        let s = store();
        let mut model: HashMap<u8, (u8, Option<u64>)> = HashMap::new();
        let mut now = T0;
        let live = |m: &HashMap<u8, (u8, Option<u64>)>, k: u8, now: u64| {
            m.get(&k).filter(|(_, d)| d.is_none_or(|d| d > now)).copied()
        };
        for op in ops {
            match op {
                Op::Set(k, v, t) => {
                    let d = t.map(|t| now + t as u64);
                    s.store(&[k], &[v], 0, d, Condition::Always, now).unwrap();
                    model.insert(k, (v, d));
                }
                Op::Add(k, v, t) => {
                    let d = t.map(|t| now + t as u64);
                    let out = s.store(&[k], &[v], 0, d, Condition::IfAbsent, now).unwrap();
                    if live(&model, k, now).is_some() {
                        prop_assert_eq!(out, WriteOutcome::NotStored);
                    } else {
                        prop_assert!(matches!(out, WriteOutcome::Stored(_)));
                        model.insert(k, (v, d));
                    }
                }
                Op::Touch(k, t) => {
                    let d = t.map(|t| now + t as u64);
                    let found = s.touch(&[k], d, now).is_some();
                    prop_assert_eq!(found, live(&model, k, now).is_some());
                    if found {
                        model.get_mut(&k).unwrap().1 = d;
                    }
                }
                Op::Delete(k) => {
                    let out = s.delete(&[k], 0, now);
                    prop_assert_eq!(out == DeleteOutcome::Deleted, live(&model, k, now).is_some());
                    model.remove(&k);
                }
                Op::Advance(ms) => now += ms as u64,
                Op::Expire => {
                    s.expire_due(now, &mut |_| {});
                }
            }
            for k in 0..8u8 {
                let got = s.get(&[k], now).map(|v| (v.value[0], v.deadline));
                prop_assert_eq!(got, live(&model, k, now));
            }
        }
        // Far in the future, the wheel alone must have reclaimed everything that expires.
        now += 10_000_000;
        s.expire_due(now, &mut |_| {});
        let persistent = model.values().filter(|(_, d)| d.is_none()).count();
        prop_assert_eq!(s.len(), persistent);
        for k in 0..8u8 { s.delete(&[k], 0, now); }
        prop_assert_eq!(s.budget().used(), 0);
    }
}

/// A mutation, owned, as the recording observer keeps it.
#[derive(Debug, Clone)]
enum Owned {
    Put(Vec<u8>, Vec<u8>, u32, u64, Option<u64>),
    Remove(Vec<u8>),
    Deadline(Vec<u8>, Option<u64>),
    Clear,
}

/// An observer that keeps every mutation, owned.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Owned>>);

impl Observer for Recorder {
    fn applied(&self, m: &Mutation<'_>) {
        let owned = match *m {
            Mutation::Put {
                key,
                value,
                flags,
                cas,
                deadline,
            } => Owned::Put(key.to_vec(), value.to_vec(), flags, cas, deadline),
            Mutation::Remove { key } => Owned::Remove(key.to_vec()),
            Mutation::Deadline { key, deadline } => Owned::Deadline(key.to_vec(), deadline),
            Mutation::Clear => Owned::Clear,
        };
        self.0.lock().unwrap().push(owned);
    }
}

fn replay(recorder: &Recorder, now: u64) -> Store {
    let fresh = store();
    for owned in recorder.0.lock().unwrap().iter() {
        let m = match owned {
            Owned::Put(key, value, flags, cas, deadline) => Mutation::Put {
                key,
                value,
                flags: *flags,
                cas: *cas,
                deadline: *deadline,
            },
            Owned::Remove(key) => Mutation::Remove { key },
            Owned::Deadline(key, deadline) => Mutation::Deadline {
                key,
                deadline: *deadline,
            },
            Owned::Clear => Mutation::Clear,
        };
        fresh.restore(&m, now);
    }
    fresh
}

fn contents(s: &Store, now: u64) -> Vec<(Bytes, ItemView)> {
    let mut all: Vec<_> = (0..SHARDS)
        .flat_map(|i| s.live_items_in_shard(i, now))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

proptest! {
    /// Replaying what the observer saw, in order, rebuilds exactly the live items (values,
    /// flags, CAS and deadlines): the property the journal relies on.
    #[test]
    fn replaying_observed_mutations_rebuilds_the_store(
        ops in proptest::collection::vec((0u8..6, 0u8..6, any::<u8>(), proptest::option::of(0u16..3000), 0u16..500), 1..150)
    ) {
        let recorder = Arc::new(Recorder::default());
        let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(recorder.clone()));
        let mut now = T0;
        for (op, k, v, ttl, step) in ops {
            let key = [b'k', k];
            let d = ttl.map(|t| now + t as u64);
            match op {
                0 => { let _ = s.store(&key, &[v], v as u32, d, Condition::Always, now); }
                1 => { let _ = s.concat(&key, &[v], Side::Append, 0, now); }
                2 => { s.touch(&key, d, now); }
                3 => { s.delete(&key, 0, now); }
                4 => { let _ = s.arith(&key, true, 1, Some((5, d)), now); }
                _ => if v < 10 { s.flush_all(0, now) } else { s.get_and_touch(&key, d, now); },
            }
            now += step as u64;
            if v % 7 == 0 {
                s.expire_due(now, &mut |_| {});
            }
        }
        prop_assert_eq!(contents(&replay(&recorder, now), now), contents(&s, now));
    }
}
