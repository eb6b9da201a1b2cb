use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const T0: u64 = 1_800_000_000_000;

fn store() -> Store {
    Store::new(Arc::new(Budget::new(u64::MAX)), T0)
}

/// A write as memcached's storage commands make it.
fn mc_write(
    s: &Store,
    key: &[u8],
    value: &[u8],
    flags: u32,
    deadline: Option<u64>,
    condition: Condition,
    now: u64,
) -> Result<WriteOutcome, StoreError> {
    let how = Write {
        condition,
        flags,
        deadline: DeadlineChange::Set(deadline),
        previous: Previous::Ignore,
    };
    s.write(key, value, how, now).map(|w| w.outcome)
}

/// A plain Redis `SET` with this deadline.
fn redis_set(deadline: DeadlineChange) -> Write {
    Write {
        condition: Condition::Always,
        flags: 0,
        deadline,
        previous: Previous::Ignore,
    }
}

fn set(s: &Store, key: &str, value: &str, deadline: Option<u64>, now: u64) -> WriteOutcome {
    mc_write(
        s,
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
    s.get_if_string(key.as_bytes(), now)
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
        mc_write(
            s,
            b"sid",
            b"",
            0,
            Some(2_678_400_000),
            Condition::IfNoString,
            T0,
        )
        .unwrap()
    };
    assert!(matches!(probe(&s), WriteOutcome::Stored(_)));
    assert_eq!(s.get_if_string(b"sid", T0), None);
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
        mc_write(&s, b"k", b"1", 0, None, Condition::IfString, T0).unwrap(),
        WriteOutcome::NotStored
    );
    assert_eq!(
        mc_write(&s, b"k", b"1", 0, None, Condition::IfCas(7), T0).unwrap(),
        WriteOutcome::NotFound
    );
    let WriteOutcome::Stored(cas) =
        mc_write(&s, b"k", b"1", 5, None, Condition::IfNoString, T0).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        mc_write(&s, b"k", b"2", 0, None, Condition::IfNoString, T0).unwrap(),
        WriteOutcome::NotStored
    );
    assert_eq!(
        mc_write(&s, b"k", b"2", 0, None, Condition::IfCas(cas + 100), T0).unwrap(),
        WriteOutcome::Exists
    );
    let WriteOutcome::Stored(cas2) =
        mc_write(&s, b"k", b"2", 9, None, Condition::IfCas(cas), T0).unwrap()
    else {
        panic!()
    };
    assert_ne!(cas, cas2);
    let item = s.get_if_string(b"k", T0).unwrap();
    assert_eq!(
        (item.flags, item.cas, &item.value[..]),
        (9, cas2, &b"2"[..])
    );
    assert_eq!(s.remove_if_string(b"k", cas, T0), RemoveOutcome::Exists);
    assert_eq!(s.remove_if_string(b"k", cas2, T0), RemoveOutcome::Removed);
    assert_eq!(s.remove_if_string(b"k", 0, T0), RemoveOutcome::NotFound);
}

#[test]
fn extend_if_string_checks_the_length_limit_first_and_with_the_change() {
    let s = store();
    mc_write(&s, b"k", b"12345", 0, None, Condition::Always, T0).unwrap();
    let extend =
        |key: &[u8], data: &[u8], cas: u64| s.extend_if_string(key, data, Side::Append, cas, 8, T0);
    assert_eq!(extend(b"k", b"6789", 0), Err(StoreError::TooLarge));
    // Before the CAS and miss answers, as memcached's glue always answered.
    assert_eq!(extend(b"k", b"6789", 12345), Err(StoreError::TooLarge));
    assert_eq!(extend(b"nope", b"123456789", 0), Err(StoreError::TooLarge));
    assert_eq!(extend(b"nope", b"12345678", 0), Ok(WriteOutcome::NotStored));
    assert!(matches!(
        extend(b"k", b"678", 0),
        Ok(WriteOutcome::Stored(_))
    ));
    assert_eq!(extend(b"k", b"9", 0), Err(StoreError::TooLarge));
    assert_eq!(value(&s, "k", T0).as_deref(), Some("12345678"));
    assert_eq!(s.budget().out_of_memory(), 0);
}

#[test]
fn concat_keeps_flags_and_deadline() {
    let s = store();
    mc_write(&s, b"k", b"mid", 3, Some(T0 + 5000), Condition::Always, T0).unwrap();
    s.extend_if_string(b"k", b">", Side::Append, 0, usize::MAX, T0)
        .unwrap();
    s.extend_if_string(b"k", b"<", Side::Prepend, 0, usize::MAX, T0)
        .unwrap();
    let item = s.get_if_string(b"k", T0).unwrap();
    assert_eq!(
        (&item.value[..], item.flags, item.deadline),
        (&b"<mid>"[..], 3, Some(T0 + 5000))
    );
    assert_eq!(
        s.extend_if_string(b"nope", b"x", Side::Append, 0, usize::MAX, T0)
            .unwrap(),
        WriteOutcome::NotStored
    );
}

#[test]
fn counters_wrap_up_and_stop_at_zero_down() {
    let s = store();
    assert_eq!(
        s.add_u64(b"c", Direction::Up, 1, None, T0).unwrap(),
        CounterOutcome::NotFound
    );
    set(&s, "c", "18446744073709551615", None, T0);
    assert!(matches!(
        s.add_u64(b"c", Direction::Up, 2, None, T0).unwrap(),
        CounterOutcome::Value(1, _)
    ));
    assert!(matches!(
        s.add_u64(b"c", Direction::Down, 5, None, T0).unwrap(),
        CounterOutcome::Value(0, _)
    ));
    set(&s, "c", "12  ", None, T0);
    assert!(matches!(
        s.add_u64(b"c", Direction::Up, 1, None, T0).unwrap(),
        CounterOutcome::Value(13, _)
    ));
    assert_eq!(value(&s, "c", T0).as_deref(), Some("13"));
    set(&s, "c", "1x", None, T0);
    assert_eq!(
        s.add_u64(b"c", Direction::Up, 1, None, T0).unwrap(),
        CounterOutcome::NonNumeric
    );
    assert!(matches!(
        s.add_u64(b"n", Direction::Up, 1, Some((40, None)), T0)
            .unwrap(),
        CounterOutcome::Value(40, _)
    ));
}

#[test]
fn the_wheel_reclaims_unread_items_at_their_deadline() {
    let seen = Arc::new(Expiries::default());
    let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(seen.clone()));
    for i in 0..1000u64 {
        set(&s, &format!("k{i}"), "v", Some(T0 + 1 + i * 37), T0);
    }
    let n = s.expire_due(T0 + 1 + 500 * 37);
    let expired = seen.0.lock().unwrap().0.clone();
    assert_eq!(n, 501);
    assert_eq!(expired.len(), 501, "each reclaimed key reported once");
    assert_eq!(s.len(), 499);
    assert!(expired.contains(&b"k500".to_vec()) && !expired.contains(&b"k501".to_vec()));
    assert_eq!(s.expire_due(T0 + 1_000_000), 499);
    assert!(s.is_empty());
    assert_eq!(s.budget().used(), 0);
}

#[test]
fn touching_later_refiles_lazily_and_touching_earlier_refiles_now() {
    let s = store();
    set(&s, "k", "v", Some(T0 + 1000), T0);
    for i in 1..100 {
        s.touch_if_string(b"k", Some(T0 + 1000 + i * 1000), T0 + i)
            .unwrap();
    }
    assert_eq!(
        s.stats().wheel_entries,
        1,
        "sliding expiry adds no wheel entries"
    );
    assert_eq!(s.expire_due(T0 + 1000), 0, "the early entry re-files");
    assert!(s.get_if_string(b"k", T0 + 1000).is_some());
    assert_eq!(s.expire_due(T0 + 100_000), 1);

    set(&s, "j", "v", Some(T0 + 1_000_000), T0);
    s.touch_if_string(b"j", Some(T0 + 10), T0).unwrap();
    assert_eq!(s.expire_due(T0 + 10), 1);
    mc_write(&s, b"p", b"v", 0, Some(T0 + 10), Condition::Always, T0).unwrap();
    s.touch_if_string(b"p", None, T0).unwrap();
    assert_eq!(s.expire_due(T0 + 1_000_000), 0, "a persisted item stays");
    assert!(s.get_if_string(b"p", T0 + 1_000_000).is_some());
}

#[test]
fn a_full_store_refuses_writes_and_evicts_nothing() {
    let budget = Arc::new(Budget::new(3 * (ITEM_OVERHEAD + 2 + 100)));
    let s = Store::new(budget.clone(), T0);
    let big = vec![b'x'; 100];
    for k in ["k1", "k2", "k3"] {
        mc_write(&s, k.as_bytes(), &big, 0, None, Condition::Always, T0).unwrap();
    }
    assert_eq!(
        mc_write(&s, b"k4", &big, 0, None, Condition::Always, T0),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(
        s.extend_if_string(b"k1", b"more", Side::Append, 0, usize::MAX, T0),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(s.len(), 3);
    assert_eq!(s.stats().out_of_memory, 2);
    // Overwriting with a value of the same size fits; deleting makes room.
    mc_write(&s, b"k1", &big, 0, None, Condition::Always, T0).unwrap();
    s.remove_if_string(b"k2", 0, T0);
    mc_write(&s, b"k4", &big, 0, None, Condition::Always, T0).unwrap();
    assert_eq!(budget.used(), budget.limit());
}

#[test]
fn a_delayed_flush_removes_what_exists_when_it_falls_due() {
    let s = store();
    set(&s, "a", "1", None, T0);
    s.flush_all(T0 + 10_000, T0);
    set(&s, "b", "2", None, T0 + 5000);
    assert!(s.get_if_string(b"a", T0 + 9999).is_some());
    assert!(s.get_if_string(b"b", T0 + 10_000).is_none());
    assert!(s.get_if_string(b"a", T0 + 10_000).is_none());
    set(&s, "c", "3", None, T0 + 10_001);
    assert!(s.get_if_string(b"c", T0 + 20_000).is_some());
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
                    mc_write(&s, &[k], &[v], 0, d, Condition::Always, now).unwrap();
                    model.insert(k, (v, d));
                }
                Op::Add(k, v, t) => {
                    let d = t.map(|t| now + t as u64);
                    let out = mc_write(&s, &[k], &[v], 0, d, Condition::IfNoString, now).unwrap();
                    if live(&model, k, now).is_some() {
                        prop_assert_eq!(out, WriteOutcome::NotStored);
                    } else {
                        prop_assert!(matches!(out, WriteOutcome::Stored(_)));
                        model.insert(k, (v, d));
                    }
                }
                Op::Touch(k, t) => {
                    let d = t.map(|t| now + t as u64);
                    let found = s.touch_if_string(&[k], d, now).is_some();
                    prop_assert_eq!(found, live(&model, k, now).is_some());
                    if found {
                        model.get_mut(&k).unwrap().1 = d;
                    }
                }
                Op::Delete(k) => {
                    let out = s.remove_if_string(&[k], 0, now);
                    prop_assert_eq!(out == RemoveOutcome::Removed, live(&model, k, now).is_some());
                    model.remove(&k);
                }
                Op::Advance(ms) => now += ms as u64,
                Op::Expire => {
                    s.expire_due(now);
                }
            }
            for k in 0..8u8 {
                let got = s.get_if_string(&[k], now).map(|v| (v.value[0], v.deadline));
                prop_assert_eq!(got, live(&model, k, now));
            }
        }
        // Far in the future, the wheel alone must have reclaimed everything that expires.
        now += 10_000_000;
        s.expire_due(now);
        let persistent = model.values().filter(|(_, d)| d.is_none()).count();
        prop_assert_eq!(s.len(), persistent);
        for k in 0..8u8 { s.remove_if_string(&[k], 0, now); }
        prop_assert_eq!(s.budget().used(), 0);
    }
}

/// An observer that keeps the keys reported expired and counts the mutations.
#[derive(Default)]
struct Expiries(std::sync::Mutex<(Vec<Vec<u8>>, usize)>);

impl Observer for Expiries {
    fn applied(&self, _: &Mutation<'_>, _: u64) {
        self.0.lock().unwrap().1 += 1;
    }
    fn expired(&self, key: &[u8], _: u64) {
        self.0.lock().unwrap().0.push(key.to_vec());
    }
}

/// A mutation, owned, as the recording observer keeps it.
#[derive(Debug, Clone)]
enum Owned {
    Put(Vec<u8>, Vec<u8>, u32, u64, Option<u64>),
    Remove(Vec<u8>),
    Deadline(Vec<u8>, Option<u64>),
    Clear,
    Revoke(Vec<u8>, u64),
    /// Key, CAS, stale, recache taken.
    Marks(Vec<u8>, u64, bool, bool),
    PutCollection(Vec<u8>, Kind, Vec<u8>, Option<u64>),
    /// Key, op tag (0..6), element, hash value, score.
    Element(Vec<u8>, u8, Vec<u8>, Vec<u8>, f64),
    /// Key, list op tag (0..6), end is left, two numbers, element, version.
    List(Vec<u8>, u8, bool, u64, u64, Vec<u8>, u64),
    /// Key, encoded stream op, version.
    Stream(Vec<u8>, Vec<u8>, u64),
}

/// An observer that keeps every mutation, owned.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Owned>>);

impl Observer for Recorder {
    fn applied(&self, m: &Mutation<'_>, _now: u64) {
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
            Mutation::Revoke { key, until } => Owned::Revoke(key.to_vec(), until),
            Mutation::Marks {
                key,
                cas,
                stale,
                recache_taken,
            } => Owned::Marks(key.to_vec(), cas, stale, recache_taken),
            Mutation::PutCollection {
                key,
                kind,
                members,
                deadline,
            } => Owned::PutCollection(key.to_vec(), kind, members.to_vec(), deadline),
            Mutation::Element {
                key,
                op: ElementOp::Stream { op, version },
            } => Owned::Stream(key.to_vec(), op.to_vec(), version),
            Mutation::Element { key, op } if is_list(&op) => {
                let left = |end: End| end == End::Left;
                let (tag, l, a, b, item, version) = match op {
                    ElementOp::ListPush { end, item, version } => {
                        (0, left(end), 0, 0, item, version)
                    }
                    ElementOp::ListPop {
                        end,
                        count,
                        version,
                    } => (1, left(end), count, 0, &[][..], version),
                    ElementOp::ListSet {
                        index,
                        item,
                        version,
                    } => (2, false, index, 0, item, version),
                    ElementOp::ListInsert {
                        index,
                        item,
                        version,
                    } => (3, false, index, 0, item, version),
                    ElementOp::ListRem {
                        count,
                        item,
                        version,
                    } => (4, false, count as u64, 0, item, version),
                    ElementOp::ListTrim {
                        start,
                        end,
                        version,
                    } => (5, false, start, end, &[][..], version),
                    _ => unreachable!(),
                };
                Owned::List(key.to_vec(), tag, l, a, b, item.to_vec(), version)
            }
            Mutation::Element { key, op } => {
                let (tag, element, value, score) = match op {
                    ElementOp::HashSet { field, value } => (0, field, value, 0.0),
                    ElementOp::HashRemove { field } => (1, field, &[][..], 0.0),
                    ElementOp::SetAdd { member } => (2, member, &[][..], 0.0),
                    ElementOp::SetRemove { member } => (3, member, &[][..], 0.0),
                    ElementOp::ZSetAdd { member, score } => (4, member, &[][..], score),
                    ElementOp::ZSetRemove { member } => (5, member, &[][..], 0.0),
                    _ => unreachable!(),
                };
                Owned::Element(key.to_vec(), tag, element.to_vec(), value.to_vec(), score)
            }
        };
        self.0.lock().unwrap().push(owned);
    }
}

fn is_list(op: &ElementOp<'_>) -> bool {
    matches!(
        op,
        ElementOp::ListPush { .. }
            | ElementOp::ListPop { .. }
            | ElementOp::ListSet { .. }
            | ElementOp::ListInsert { .. }
            | ElementOp::ListRem { .. }
            | ElementOp::ListTrim { .. }
    )
}

fn replay(recorder: &Recorder, now: u64) -> Store {
    let fresh = store();
    replay_into(&fresh, &recorder.0.lock().unwrap(), now);
    fresh
}

fn replay_into(fresh: &Store, log: &[Owned], now: u64) {
    for owned in log {
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
            Owned::Revoke(key, until) => Mutation::Revoke { key, until: *until },
            Owned::Marks(key, cas, stale, recache_taken) => Mutation::Marks {
                key,
                cas: *cas,
                stale: *stale,
                recache_taken: *recache_taken,
            },
            Owned::PutCollection(key, kind, members, deadline) => Mutation::PutCollection {
                key,
                kind: *kind,
                members,
                deadline: *deadline,
            },
            Owned::Element(key, tag, element, value, score) => Mutation::Element {
                key,
                op: match tag {
                    0 => ElementOp::HashSet {
                        field: element,
                        value,
                    },
                    1 => ElementOp::HashRemove { field: element },
                    2 => ElementOp::SetAdd { member: element },
                    3 => ElementOp::SetRemove { member: element },
                    4 => ElementOp::ZSetAdd {
                        member: element,
                        score: *score,
                    },
                    _ => ElementOp::ZSetRemove { member: element },
                },
            },
            Owned::Stream(key, op, version) => Mutation::Element {
                key,
                op: ElementOp::Stream {
                    op,
                    version: *version,
                },
            },
            Owned::List(key, tag, left, a, b, item, version) => {
                let end = if *left { End::Left } else { End::Right };
                let version = *version;
                Mutation::Element {
                    key,
                    op: match tag {
                        0 => ElementOp::ListPush { end, item, version },
                        1 => ElementOp::ListPop {
                            end,
                            count: *a,
                            version,
                        },
                        2 => ElementOp::ListSet {
                            index: *a,
                            item,
                            version,
                        },
                        3 => ElementOp::ListInsert {
                            index: *a,
                            item,
                            version,
                        },
                        4 => ElementOp::ListRem {
                            count: *a as i64,
                            item,
                            version,
                        },
                        _ => ElementOp::ListTrim {
                            start: *a,
                            end: *b,
                            version,
                        },
                    },
                }
            }
        };
        fresh.restore(&m, now);
    }
}

/// Every live item: key, value, flags, deadline, and the CAS of strings (a collection's CAS
/// is not journaled: nothing compares it).
type Contents = Vec<(Bytes, Value, u32, Option<u64>, u64)>;

fn contents(s: &Store, now: u64) -> Contents {
    let mut all: Vec<_> = (0..SHARDS)
        .flat_map(|i| s.live_entries_in_shard(i, now))
        .map(|(k, e)| {
            let cas = if e.value.kind() == Kind::Str {
                e.cas
            } else {
                0
            };
            (k, e.value, e.flags, e.deadline, cas)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Applies one of the typed (RESP-era) operations, chosen by `op`, to `s`.
fn typed_op(s: &Store, op: u8, key: &[u8], other: &[u8], v: u8, d: Option<u64>, now: u64) {
    let member = [b'm', v % 4];
    let value = [v];
    let _ = match op {
        0 => s.hash_set(key, &[(&member, &value)], now).map(drop),
        1 => s.hash_remove(key, &[&member], now).map(drop),
        2 => s.hash_add_i64(key, &member, 3, now).map(drop),
        3 => s.set_add(key, &[&member, b"x"], now).map(drop),
        4 => s.set_remove(key, &[&member], now).map(drop),
        5 => s
            .zset_add(
                key,
                &[(f64::from(v) / 2.0, &member)],
                ZAddFlags::default(),
                now,
            )
            .map(drop),
        6 => s.zset_remove(key, &[&member], now).map(drop),
        7 => {
            let if_target_exists = if v.is_multiple_of(2) {
                IfTargetExists::Keep
            } else {
                IfTargetExists::Replace
            };
            s.rename(key, other, if_target_exists, now);
            Ok(())
        }
        8 => {
            s.retime(key, now, |_, _| ((), Some(d)));
            Ok(())
        }
        9 => s
            .write(key, &value, redis_set(DeadlineChange::Set(d)), now)
            .map(drop),
        10 => s.extend_or_create(key, &value, 1 << 20, now).map(drop),
        11 => s.add_i64(key, -2, now).map(drop),
        // Lists: few distinct elements, so removals and pivots find matches.
        12 => s
            .list_push(key, &[&member, &value], End::Left, true, now)
            .map(drop),
        13 => s
            .list_push(key, &[&member], End::Right, !v.is_multiple_of(3), now)
            .map(drop),
        14 => s
            .list_pop(
                key,
                if v.is_multiple_of(2) {
                    End::Left
                } else {
                    End::Right
                },
                usize::from(v % 3) + 1,
                now,
            )
            .map(drop),
        15 => s.list_set(key, i64::from(v % 5) - 2, &value, now).map(drop),
        16 => s
            .list_insert(
                key,
                if v.is_multiple_of(2) {
                    Place::Before
                } else {
                    Place::After
                },
                &member,
                &value,
                now,
            )
            .map(drop),
        17 => s
            .list_remove(key, i64::from(v % 5) - 2, &member, now)
            .map(drop),
        18 => s.list_trim(key, i64::from(v % 4) - 1, i64::from(v % 7) - 3, now),
        19 => s
            .list_move(
                key,
                other,
                if v.is_multiple_of(2) {
                    End::Left
                } else {
                    End::Right
                },
                if v.is_multiple_of(3) {
                    End::Left
                } else {
                    End::Right
                },
                now,
            )
            .map(drop),
        // Whole values (`COPY`, the `…STORE` commands) and the sorted-set counter and pops.
        20 => match s.get(key, now) {
            Some(entry) => s
                .put_value(
                    other,
                    entry.value,
                    v.is_multiple_of(2),
                    DeadlineChange::Set(d),
                    now,
                )
                .map(drop),
            None => Ok(()),
        },
        21 => s
            .zset_incr(
                key,
                &member,
                f64::from(v % 5) - 2.0,
                ZAddFlags::default(),
                now,
            )
            .map(drop),
        22 => s
            .zset_pop(key, usize::from(v % 3) + 1, v.is_multiple_of(2), now)
            .map(drop),
        _ => {
            s.remove(key, now);
            Ok(())
        }
    };
}

proptest! {
    /// Replaying what the observer saw, in order, rebuilds exactly the live items (values,
    /// flags, CAS and deadlines): the property the journal relies on.
    #[test]
    fn replaying_observed_mutations_rebuilds_the_store(
        ops in proptest::collection::vec((0u8..30, 0u8..6, any::<u8>(), proptest::option::of(0u16..3000), 0u16..500), 1..150)
    ) {
        let recorder = Arc::new(Recorder::default());
        let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(recorder.clone()));
        let mut now = T0;
        for (op, k, v, ttl, step) in ops {
            let key = [b'k', k];
            let d = ttl.map(|t| now + t as u64);
            match op {
                0 => { let _ = mc_write(&s, &key, &[v], v as u32, d, Condition::Always, now); }
                1 => { let _ = s.extend_if_string(&key, &[v], Side::Append, 0, usize::MAX, now); }
                2 => { s.touch_if_string(&key, d, now); }
                3 => { s.remove_if_string(&key, 0, now); }
                4 => { let _ = s.add_u64(&key, Direction::Up, 1, Some((5, d)), now); }
                5 => if v < 10 { s.flush_all(0, now) } else { s.touch_if_string(&key, d, now); },
                typed => typed_op(&s, typed - 6, &key, &[b'k', v % 6], v, d, now),
            }
            now += step as u64;
            if v % 7 == 0 {
                s.expire_due(now);
            }
        }
        prop_assert_eq!(contents(&replay(&recorder, now), now), contents(&s, now));
    }
}

proptest! {
    /// The rewrite's fuzzy snapshot: a copy of the live items taken at some point, followed
    /// by a replay of every record from any earlier point on, converges to the live store.
    /// (Records are absolute and element changes idempotent, so re-applying what the copy
    /// already reflects is harmless.)
    #[test]
    fn a_snapshot_plus_an_overlapping_log_rebuilds_the_store(
        ops in proptest::collection::vec((0u8..21, 0u8..4, any::<u8>(), proptest::option::of(0u16..3000), 0u16..500), 1..120),
        snap_at in any::<prop::sample::Index>(),
        log_from in any::<prop::sample::Index>(),
    ) {
        let recorder = Arc::new(Recorder::default());
        let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(recorder.clone()));
        let mut now = T0;
        let snap_at = snap_at.index(ops.len());
        let mut snapshot = None;
        let mut log_start = 0;
        for (i, (op, k, v, ttl, step)) in ops.iter().copied().enumerate() {
            if i == log_from.index(snap_at + 1) {
                log_start = recorder.0.lock().unwrap().len();
            }
            if i == snap_at {
                snapshot = Some((now, (0..SHARDS).flat_map(|i| s.live_entries_in_shard(i, now)).collect::<Vec<_>>()));
            }
            let key = [b'k', k];
            typed_op(&s, op, &key, &[b'k', v % 4], v, ttl.map(|t| now + t as u64), now);
            now += step as u64;
            if v % 7 == 0 {
                s.expire_due(now);
            }
        }
        let (snap_now, items) = snapshot.unwrap();
        let fresh = store();
        for (key, entry) in &items {
            let mut members = Vec::new();
            entry.value.encode_members(&mut members);
            let m = match &entry.value {
                Value::Str(v) => Mutation::Put { key, value: v, flags: entry.flags, cas: entry.cas, deadline: entry.deadline },
                other => Mutation::PutCollection { key, kind: other.kind(), members: &members, deadline: entry.deadline },
            };
            fresh.restore(&m, snap_now);
        }
        replay_into(&fresh, &recorder.0.lock().unwrap()[log_start..], now);
        prop_assert_eq!(contents(&fresh, now), contents(&s, now));
    }
}

#[test]
fn collections_are_typed_and_memcached_sees_only_strings() {
    let s = store();
    assert_eq!(s.hash_set(b"h", &[(b"f", b"1"), (b"g", b"2")], T0), Ok(2));
    assert_eq!(s.hash_set(b"h", &[(b"f", b"3")], T0), Ok(0));
    assert_eq!(s.set_add(b"h", &[b"m"], T0), Err(StoreError::WrongType));
    assert_eq!(s.add_i64(b"h", 1, T0), Err(StoreError::WrongType));
    // memcached: a miss for get/touch/delete, overwritten by set.
    assert!(s.get_if_string(b"h", T0).is_none());
    assert!(s.touch_if_string(b"h", None, T0).is_none());
    assert_eq!(s.remove_if_string(b"h", 0, T0), RemoveOutcome::NotFound);
    assert_eq!(s.hash_add_i64(b"h", b"f", 4, T0), Ok(7));
    assert_eq!(s.hash_add_i64(b"h", b"new", -4, T0), Ok(-4));
    set(&s, "h", "plain", None, T0);
    assert_eq!(value(&s, "h", T0).as_deref(), Some("plain"));
    // Removing the last element removes the key.
    assert_eq!(s.set_add(b"s", &[b"a", b"b", b"a"], T0), Ok(2));
    assert_eq!(s.set_remove(b"s", &[b"a", b"b", b"c"], T0), Ok(2));
    assert!(s.get(b"s", T0).is_none());
    s.remove(b"h", T0);
    assert_eq!(s.budget().used(), 0, "every charge is released");
}

#[test]
fn sorted_set_ranges_and_flags() {
    let s = store();
    let add = |m: &[(f64, &[u8])], flags| s.zset_add(b"z", m, flags, T0).unwrap();
    assert_eq!(
        add(
            &[(1.0, b"a"), (2.0, b"b"), (2.0, b"c"), (3.0, b"d")],
            ZAddFlags::default()
        ),
        4
    );
    assert_eq!(
        add(
            &[(5.0, b"a")],
            ZAddFlags {
                nx: true,
                ..Default::default()
            }
        ),
        0
    );
    assert_eq!(
        add(
            &[(0.5, b"a")],
            ZAddFlags {
                gt: true,
                ch: true,
                ..Default::default()
            }
        ),
        0
    );
    assert_eq!(
        add(
            &[(1.5, b"a")],
            ZAddFlags {
                gt: true,
                ch: true,
                ..Default::default()
            }
        ),
        1
    );
    let Some(Entry {
        value: Value::ZSet(z),
        ..
    }) = s.get(b"z", T0)
    else {
        panic!()
    };
    let names = |it: &mut dyn Iterator<Item = (f64, &Bytes)>| {
        it.map(|(_, m)| m.to_vec()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&mut z.range_by_score((1.5, false), (2.0, false))),
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        names(&mut z.range_by_score((1.5, true), (3.0, true))),
        [b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        names(
            &mut z
                .range_by_score((f64::NEG_INFINITY, false), (f64::INFINITY, false))
                .rev()
        )
        .len(),
        4
    );
    assert_eq!(
        names(&mut z.range_by_score((3.0, false), (1.0, false))).len(),
        0
    );
    assert_eq!(
        names(&mut z.range_by_score((2.0, true), (2.0, false))).len(),
        0
    );
}

#[test]
fn rename_moves_value_and_deadline_across_shards() {
    let s = store();
    for i in 0..64u8 {
        let src = [b's', i];
        let dst = [b'd', i];
        s.write(
            &src,
            &[i],
            redis_set(DeadlineChange::Set(Some(T0 + 5000))),
            T0,
        )
        .unwrap();
        assert_eq!(
            s.rename(&src, &dst, IfTargetExists::Replace, T0),
            RenameOutcome::Renamed
        );
        assert!(s.get(&src, T0).is_none());
        let e = s.get(&dst, T0).unwrap();
        assert_eq!(
            (e.value, e.deadline),
            (Value::Str(Bytes::copy_from_slice(&[i])), Some(T0 + 5000))
        );
    }
    assert_eq!(
        s.rename(b"nope", b"x", IfTargetExists::Replace, T0),
        RenameOutcome::NoSuchKey
    );
    set(&s, "a", "1", None, T0);
    set(&s, "b", "2", None, T0);
    assert_eq!(
        s.rename(b"a", b"b", IfTargetExists::Keep, T0),
        RenameOutcome::TargetExists
    );
    assert_eq!(
        s.rename(b"a", b"a", IfTargetExists::Replace, T0),
        RenameOutcome::Renamed
    );
    // The wheel follows the item to its new shard.
    assert_eq!(s.expire_due(T0 + 5000), 64);
}

#[test]
fn scan_returns_every_key_exactly_once_with_small_counts() {
    let s = store();
    for i in 0..1000u32 {
        set(&s, &format!("key:{i}"), "v", None, T0);
    }
    for count in [1, 7, 100, 5000] {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (next, keys) = s.scan(cursor, count, T0, &mut |_, _| true);
            for k in keys {
                assert!(seen.insert(k), "a stable keyspace yields no duplicates");
            }
            calls += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 1000, "count {count}");
        assert!(calls < 1000 / count + SHARDS + 2);
    }
    let mut pattern = |k: &[u8], _: &Value| glob_match(b"key:1?", k);
    assert_eq!(s.keys(T0, &mut pattern).len(), 10);
}

#[test]
fn lazily_expired_keys_are_reported_to_the_observer_but_not_as_mutations() {
    let seen = Arc::new(Expiries::default());
    let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(seen.clone()));
    s.write(
        b"k",
        b"v",
        redis_set(DeadlineChange::Set(Some(T0 + 10))),
        T0,
    )
    .unwrap();
    assert!(s.get(b"k", T0 + 10).is_none());
    let (keys, mutations) = seen.0.lock().unwrap().clone();
    assert_eq!(keys, [b"k".to_vec()]);
    assert_eq!(mutations, 1, "only the SET was a mutation");
}

#[test]
fn is_live_looks_without_reaping_or_telling_the_observer() {
    let seen = Arc::new(Expiries::default());
    let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(seen.clone()));
    s.write(
        b"k",
        b"v",
        redis_set(DeadlineChange::Set(Some(T0 + 10))),
        T0,
    )
    .unwrap();
    assert!(s.is_live(b"k", T0 + 9));
    assert!(!s.is_live(b"k", T0 + 10), "past its deadline");
    assert!(!s.is_live(b"missing", T0));
    // Nothing was removed or reported: the item is still there for an earlier clock (a
    // script's frozen `now`), and no expiry was counted or observed.
    assert_eq!(s.len(), 1);
    assert_eq!(s.stats().expired, 0);
    assert!(seen.0.lock().unwrap().0.is_empty(), "no expiry observed");
    assert!(
        s.get(b"k", T0 + 5).is_some(),
        "still alive at the earlier time"
    );
    // A delayed flush that is due counts as done, and is left for a real operation.
    s.flush_all(T0 + 20, T0);
    assert!(s.is_live(b"k", T0 + 5));
    assert!(!s.is_live(b"k", T0 + 20));
    assert_eq!(s.len(), 1, "the flush was not applied by the look");
    assert_eq!(seen.0.lock().unwrap().1, 1, "only the SET was a mutation");
}

#[test]
fn a_revoked_key_refuses_re_creation_until_its_old_deadline_and_replays_so() {
    let recorder = Arc::new(Recorder::default());
    let budget = Arc::new(Budget::new(u64::MAX));
    let s = Store::with_observer(budget.clone(), T0, Some(recorder.clone()));
    set(&s, "sess", "alice", Some(T0 + 1000), T0);
    assert_eq!(s.revoke(b"sess", 60_000, T0 + 1), Some(T0 + 1000));
    assert!(s.get(b"sess", T0 + 2).is_none(), "revoked: gone");
    assert_eq!(
        s.revoke(b"nothing", 60_000, T0 + 1),
        None,
        "nothing to revoke"
    );
    // Every way of creating the key again is refused, and changes nothing.
    let write = s.write(
        b"sess",
        b"again",
        redis_set(DeadlineChange::Set(None)),
        T0 + 5,
    );
    assert_eq!(write.err(), Some(StoreError::Revoked));
    assert_eq!(
        s.extend_or_create(b"sess", b"x", 100, T0 + 5),
        Err(StoreError::Revoked)
    );
    assert_eq!(s.add_i64(b"sess", 1, T0 + 5), Err(StoreError::Revoked));
    assert_eq!(
        s.hash_set(b"sess", &[(b"f", b"v")], T0 + 5),
        Err(StoreError::Revoked)
    );
    assert_eq!(
        s.set_add(b"sess", &[b"m"], T0 + 5),
        Err(StoreError::Revoked)
    );
    set(&s, "other", "v", None, T0 + 5);
    assert_eq!(
        s.rename(b"other", b"sess", IfTargetExists::Replace, T0 + 5),
        RenameOutcome::TargetRevoked
    );
    assert!(s.get(b"sess", T0 + 5).is_none());
    // A snapshot carries the revocation; a replay of the log restores it.
    let in_force: Vec<_> = (0..SHARDS)
        .flat_map(|i| s.revocations_in_shard(i, T0 + 5))
        .collect();
    assert_eq!(in_force, [(Bytes::from_static(b"sess"), T0 + 1000)]);
    let replayed = replay(&recorder, T0 + 5);
    assert_eq!(
        replayed
            .write(
                b"sess",
                b"again",
                redis_set(DeadlineChange::Set(None)),
                T0 + 5
            )
            .err(),
        Some(StoreError::Revoked)
    );
    // At the old deadline the key may be created again, and the sweep gives the
    // revocation's bytes back.
    s.remove(b"other", T0 + 5);
    s.expire_due(T0 + 1000);
    assert_eq!(budget.used(), 0, "the revocation's charge is released");
    assert!(matches!(
        set(&s, "sess", "bob", None, T0 + 1000),
        WriteOutcome::Stored(_)
    ));
}

#[test]
fn a_flush_forgets_revocations() {
    let s = store();
    set(&s, "sess", "alice", None, T0);
    assert_eq!(s.revoke(b"sess", 60_000, T0), Some(T0 + 60_000));
    s.flush_all(T0, T0);
    assert_eq!(s.budget().used(), 0);
    assert!(matches!(
        set(&s, "sess", "bob", None, T0 + 1),
        WriteOutcome::Stored(_)
    ));
}

#[test]
fn one_hash_field_is_read_from_the_encoding_without_building_the_hash() {
    let s = store();
    s.hash_set(b"h", &[(b"v", b"1"), (b"r", b"{}"), (b"a", b"9")], T0)
        .unwrap();
    let mut members = Vec::new();
    s.get(b"h", T0).unwrap().value.encode_members(&mut members);
    assert_eq!(Value::hash_field_in(&members, b"r"), Some(&b"{}"[..]));
    assert_eq!(Value::hash_field_in(&members, b"x"), None);
    assert_eq!(
        Value::hash_field_in(&members[..members.len() - 1], b"zz"),
        None,
        "cut short"
    );
}

#[test]
fn list_operations_follow_redis() {
    let s = store();
    assert_eq!(s.list_push(b"l", &[b"a", b"b"], End::Left, true, T0), Ok(2));
    assert_eq!(s.list_push(b"l", &[b"c"], End::Right, true, T0), Ok(3));
    assert_eq!(s.list_push(b"none", &[b"c"], End::Right, false, T0), Ok(0));
    let items = |s: &Store| match s.get(b"l", T0).map(|e| e.value) {
        Some(Value::List(l)) => l
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    assert_eq!(items(&s), ["b", "a", "c"]);
    assert_eq!(s.list_set(b"l", -1, b"C", T0), Ok(ListSetOutcome::Set));
    assert_eq!(
        s.list_set(b"l", 3, b"x", T0),
        Ok(ListSetOutcome::OutOfRange)
    );
    assert_eq!(s.list_insert(b"l", Place::After, b"b", b"b2", T0), Ok(4));
    assert_eq!(s.list_insert(b"l", Place::Before, b"zz", b"x", T0), Ok(-1));
    assert_eq!(items(&s), ["b", "b2", "a", "C"]);
    assert_eq!(
        s.list_push(b"l", &[b"a", b"a"], End::Right, true, T0),
        Ok(6)
    );
    assert_eq!(s.list_remove(b"l", -2, b"a", T0), Ok(2));
    assert_eq!(items(&s), ["b", "b2", "a", "C"]);
    assert_eq!(s.list_trim(b"l", 1, -2, T0), Ok(()));
    assert_eq!(items(&s), ["b2", "a"]);
    assert_eq!(
        s.list_move(b"l", b"m", End::Left, End::Right, T0),
        Ok(Some(Bytes::from_static(b"b2")))
    );
    assert_eq!(
        s.list_pop(b"l", End::Right, 5, T0),
        Ok(Some(vec![Bytes::from_static(b"a")]))
    );
    assert!(s.get(b"l", T0).is_none(), "an emptied list is removed");
    assert_eq!(s.list_pop(b"l", End::Left, 1, T0), Ok(None));
    s.write(b"str", b"x", redis_set(DeadlineChange::Keep), T0)
        .unwrap();
    assert_eq!(
        s.list_push(b"str", &[b"a"], End::Left, true, T0),
        Err(StoreError::WrongType)
    );
    assert_eq!(
        s.list_move(b"m", b"str", End::Left, End::Left, T0),
        Err(StoreError::WrongType)
    );
    assert_eq!(
        s.list_move(b"none", b"str", End::Left, End::Left, T0),
        Ok(None)
    );
    // Per-element charging: the budget follows the list's bytes both ways.
    let used = s.budget().used();
    s.list_push(b"m", &[&[0u8; 1000][..]], End::Right, true, T0)
        .unwrap();
    assert_eq!(s.budget().used(), used + 1000 + ELEMENT_OVERHEAD);
    s.list_pop(b"m", End::Right, 1, T0).unwrap();
    assert_eq!(s.budget().used(), used);
}

#[test]
fn a_list_change_replays_only_onto_the_version_it_was_made_to() {
    let recorder = Arc::new(Recorder::default());
    let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(recorder.clone()));
    s.list_push(b"l", &[b"a"], End::Right, true, T0).unwrap();
    s.list_push(b"l", &[b"b"], End::Right, true, T0).unwrap();
    // A snapshot taken now already holds `b`; replaying the push of `b` again must not
    // duplicate it, and the pop after it must apply.
    let mut members = Vec::new();
    s.get(b"l", T0).unwrap().value.encode_members(&mut members);
    s.list_pop(b"l", End::Left, 1, T0).unwrap();
    let fresh = store();
    fresh.restore(
        &Mutation::PutCollection {
            key: b"l",
            kind: Kind::List,
            members: &members,
            deadline: None,
        },
        T0,
    );
    replay_into(&fresh, &recorder.0.lock().unwrap()[1..], T0);
    assert_eq!(contents(&fresh, T0), contents(&s, T0));
}

#[test]
fn meta_operations_keep_the_budget_exact() {
    let s = store();
    let used = || s.budget().used();
    // A vivified stub replacing a hash (memcached's view: a miss) releases the hash's bytes.
    s.hash_set(b"k", &[(b"field", b"value")], T0).unwrap();
    let read = MetaRead {
        vivify: Some(Some(T0 + 30_000)),
        bump: true,
        ..MetaRead::default()
    };
    let entry = s.meta_get(b"k", read, T0).unwrap().expect("vivified");
    assert!(entry.won && entry.entry.value.is_empty());
    assert_eq!(used(), 1 + ITEM_OVERHEAD);
    // A stale write keeps the old deadline and is charged its own size.
    mc_write(
        &s,
        b"k",
        b"abc",
        0,
        Some(T0 + 50_000),
        Condition::Always,
        T0,
    )
    .unwrap();
    let cas = s.get_if_string(b"k", T0).unwrap().cas;
    assert_eq!(
        s.meta_invalidate(b"k", None, None, None, T0),
        RemoveOutcome::Removed
    );
    let (outcome, stale) = s
        .write_if_cas_or_stale(b"k", b"older", 7, None, cas, None, T0)
        .unwrap();
    assert!(matches!(outcome, WriteOutcome::Stored(_)) && stale);
    assert_eq!(used(), 1 + 5 + ITEM_OVERHEAD);
    let entry = s.meta_get(b"k", MetaRead::default(), T0).unwrap().unwrap();
    assert_eq!(entry.entry.deadline, Some(T0 + 50_000));
    assert!(
        entry.stale && entry.won,
        "a stale item hands out the recache right once"
    );
    let entry = s.meta_get(b"k", MetaRead::default(), T0).unwrap().unwrap();
    assert!(entry.stale && entry.token_sent && !entry.won);
    // A counter vivified then moved, and removed by a past TTL: nothing left charged.
    let counted = s
        .meta_counter(b"n", Direction::Up, 1, 0, Some((9, None)), None, None, T0)
        .unwrap();
    assert!(matches!(counted, MetaCounter::Value(9, _, None)));
    let counted = s
        .meta_counter(b"n", Direction::Up, 1, 0, None, Some(Some(T0)), None, T0)
        .unwrap();
    assert!(matches!(counted, MetaCounter::Value(10, _, Some(_))));
    assert!(s.get_if_string(b"n", T0).is_none());
    assert_eq!(used(), 1 + 5 + ITEM_OVERHEAD);
}

#[test]
fn list_replace_charges_the_old_value_out_and_the_new_in_at_once() {
    let budget = Arc::new(Budget::new(u64::MAX));
    let s = Store::new(budget.clone(), T0);
    let items: Vec<Bytes> = ["a", "b", "c"].iter().map(|i| Bytes::from(*i)).collect();
    assert_eq!(
        s.list_push(b"d", &[b"a", b"b", b"c"], End::Right, true, T0),
        Ok(3)
    );
    // A full store: replacing the list by one of the same size must still fit (it used to
    // be checked as if the old list stayed, then removed and charged again).
    budget.set_limit(budget.used());
    assert_eq!(s.list_replace(b"d", &items, T0), Ok(3));
    assert_eq!(budget.used(), budget.limit());
    // One that does not fit is refused, and the old value stays.
    let longer: Vec<Bytes> = ["a", "b", "c", "d"]
        .iter()
        .map(|i| Bytes::from(*i))
        .collect();
    assert_eq!(
        s.list_replace(b"d", &longer, T0),
        Err(StoreError::OutOfMemory)
    );
    let Some(Value::List(list)) = s.peek(b"d", T0).map(|e| e.value) else {
        panic!("d still holds its list");
    };
    assert_eq!(list.len(), 3);
}

#[test]
fn list_pop_within_pops_nothing_when_a_reply_would_not_fit() {
    let s = store();
    assert_eq!(
        s.list_push(b"l", &[b"a", b"bbbb", b"c"], End::Right, true, T0),
        Ok(3)
    );
    let mut asked = Vec::new();
    let refused = s.list_pop_within(
        b"l",
        End::Left,
        3,
        |len| {
            asked.push(len);
            len < 4
        },
        T0,
    );
    assert_eq!(refused, Err(StoreError::TooLarge));
    assert_eq!(asked, vec![1, 4]);
    assert!(matches!(s.peek(b"l", T0).map(|e| e.value), Some(Value::List(l)) if l.len() == 3));
    let popped = s.list_pop_within(b"l", End::Right, 2, |len| len < 8, T0);
    assert_eq!(
        popped,
        Ok(Some(vec![Bytes::from("c"), Bytes::from("bbbb")]))
    );
    assert_eq!(
        s.list_pop_within(b"missing", End::Left, 2, |_| false, T0),
        Ok(None)
    );
}

#[test]
fn replay_follows_a_list_version_across_its_wrap() {
    let s = store();
    // A list at the top version (as an old journal may hold one), then the push after it.
    let mut members = Vec::new();
    for part in [&u64::MAX.to_le_bytes()[..], b"a"] {
        members.extend_from_slice(&(part.len() as u32).to_le_bytes());
        members.extend_from_slice(part);
    }
    s.restore(
        &Mutation::PutCollection {
            key: b"l",
            kind: Kind::List,
            members: &members,
            deadline: None,
        },
        T0,
    );
    s.restore(
        &Mutation::Element {
            key: b"l",
            op: ElementOp::ListPush {
                end: End::Right,
                item: b"b",
                version: 0,
            },
        },
        T0,
    );
    let Some(Value::List(list)) = s.peek(b"l", T0).map(|e| e.value) else {
        panic!("l holds a list");
    };
    assert_eq!((list.len(), list.version()), (2, 0));
}

/// The meta marks a client is answered about (stale, recache right out) reach the observer
/// with the item's CAS, so a replayed log gives them back; a peek (`me`) hands nothing out
/// and records nothing; a snapshot lists them.
#[test]
fn meta_marks_are_observed_and_replay() {
    let recorder = Arc::new(Recorder::default());
    let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(recorder.clone()));
    let marks_recorded = || {
        let log = recorder.0.lock().unwrap();
        log.iter().filter(|m| matches!(m, Owned::Marks(..))).count()
    };
    let peek = MetaRead {
        peek: true,
        ..MetaRead::default()
    };
    let look = |s: &Store| {
        let e = s.meta_get(b"k", peek, T0).unwrap().expect("present");
        (e.stale, e.token_sent, e.won, e.entry.cas)
    };
    mc_write(&s, b"k", b"v", 0, None, Condition::Always, T0).unwrap();
    assert_eq!(
        s.meta_invalidate(b"k", None, None, None, T0),
        RemoveOutcome::Removed
    );
    let (stale, taken, won, cas) = look(&s);
    assert!(stale && !taken && !won, "a peek took the recache right");
    assert_eq!(marks_recorded(), 1);
    assert_eq!(look(&replay(&recorder, T0)), (true, false, false, cas));
    assert_eq!(
        s.marks_in_shard(s.shard_index(b"k"), T0),
        vec![(Bytes::from_static(b"k"), cas, true, false)]
    );

    let won = s.meta_get(b"k", MetaRead::default(), T0).unwrap().unwrap();
    assert!(won.won);
    assert_eq!(marks_recorded(), 2);
    assert_eq!(look(&replay(&recorder, T0)), (true, true, false, cas));

    // A fresh write clears the marks (its `Put` replays with none); a stale write sets them.
    let Ok(WriteOutcome::Stored(fresh_cas)) =
        mc_write(&s, b"k", b"w", 0, None, Condition::Always, T0)
    else {
        panic!("not stored");
    };
    assert_eq!(
        look(&replay(&recorder, T0)),
        (false, false, false, fresh_cas)
    );
    let (outcome, stale) = s
        .write_if_cas_or_stale(b"k", b"old", 0, None, fresh_cas - 1, None, T0)
        .unwrap();
    let WriteOutcome::Stored(stale_cas) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(stale);
    assert_eq!(
        look(&replay(&recorder, T0)),
        (true, false, false, stale_cas)
    );
    assert_eq!(look(&s), look(&replay(&recorder, T0)));
}

#[test]
fn stream_changes_replay_exactly_even_over_an_overlapping_snapshot() {
    use crate::{AddId, ClaimOptions, Keep, ReadFrom, StreamId, Trim};
    let recorder = Arc::new(Recorder::default());
    let s = Store::with_observer(Arc::new(Budget::new(u64::MAX)), T0, Some(recorder.clone()));
    let f = |a: &str, b: &str| {
        vec![
            Bytes::copy_from_slice(a.as_bytes()),
            Bytes::copy_from_slice(b.as_bytes()),
        ]
    };
    // `*` IDs are resolved from the time given, and replay must not resolve them again.
    for i in 0..5u64 {
        s.stream_add(
            b"s",
            AddId::Auto,
            &f("n", &i.to_string()),
            false,
            None,
            2,
            T0 + i / 2,
        )
        .unwrap()
        .unwrap();
    }
    s.stream_group_create(b"s", b"g", Some(StreamId::MIN), false, None, T0)
        .unwrap()
        .unwrap();
    let all = |_: &[Bytes]| true;
    s.stream_read_group(b"s", b"g", b"alice", ReadFrom::New, 2, false, all, T0 + 10)
        .unwrap()
        .unwrap();
    // The snapshot: taken here, while more records follow.
    let mut members = Vec::new();
    s.get(b"s", T0).unwrap().value.encode_members(&mut members);
    let taken_at = recorder.0.lock().unwrap().len();
    s.stream_read_group(b"s", b"g", b"bob", ReadFrom::New, 0, false, all, T0 + 20)
        .unwrap()
        .unwrap();
    s.stream_read_group(
        b"s",
        b"g",
        b"alice",
        ReadFrom::History(StreamId::MIN),
        0,
        false,
        all,
        T0 + 30,
    )
    .unwrap()
    .unwrap();
    let first = s.get(b"s", T0).unwrap();
    let Value::Stream(stream) = &first.value else {
        panic!()
    };
    let ids: Vec<StreamId> = stream
        .range(StreamId::MIN, StreamId::MAX)
        .map(|(id, _)| id)
        .collect();
    s.stream_claim(
        b"s",
        b"g",
        b"carol",
        0,
        &ids[..2],
        ClaimOptions::default(),
        |_| true,
        T0 + 40,
    )
    .unwrap()
    .unwrap();
    s.stream_delete(b"s", &ids[2..3], T0).unwrap();
    s.stream_autoclaim(
        b"s",
        b"g",
        b"dave",
        0,
        StreamId::MIN,
        10,
        false,
        |_| true,
        T0 + 50,
    )
    .unwrap()
    .unwrap();
    s.stream_ack(b"s", b"g", &ids[..1], T0).unwrap();
    let trim = Trim {
        keep: Keep::MaxLen(3),
        approx: true,
        limit: 0,
    };
    s.stream_add(
        b"s",
        AddId::AtMs(T0 + 99),
        &f("x", "y"),
        false,
        Some(trim),
        2,
        T0 + 60,
    )
    .unwrap()
    .unwrap();
    s.stream_group_create(b"s", b"h", None, false, Some(3), T0)
        .unwrap()
        .unwrap();
    s.stream_consumer_create(b"s", b"h", b"eve", T0 + 70)
        .unwrap()
        .unwrap();
    s.stream_consumer_delete(b"s", b"g", b"bob", T0)
        .unwrap()
        .unwrap();
    s.stream_set_id(b"s", StreamId::new(T0 + 1000, 0), Some(100), None, T0)
        .unwrap()
        .unwrap();
    s.stream_group_destroy(b"s", b"h", T0).unwrap().unwrap();

    // Replayed from the start, and from the snapshot plus every record from well before it
    // (the overlap a fuzzy snapshot has): the same stream, charged the same.
    let whole = replay(&recorder, T0);
    assert_eq!(contents(&whole, T0), contents(&s, T0));
    assert_eq!(whole.budget().used(), s.budget().used());
    let fresh = store();
    fresh.restore(
        &Mutation::PutCollection {
            key: b"s",
            kind: Kind::Stream,
            members: &members,
            deadline: None,
        },
        T0,
    );
    replay_into(&fresh, &recorder.0.lock().unwrap()[taken_at - 3..], T0);
    assert_eq!(contents(&fresh, T0), contents(&s, T0));
    assert_eq!(fresh.budget().used(), s.budget().used());
}

#[test]
fn streams_are_charged_per_element_and_refused_whole_past_the_budget() {
    use crate::{AddId, StreamId};
    let s = Store::new(Arc::new(Budget::new(4096)), T0);
    let fields = vec![Bytes::from_static(b"f"), Bytes::from(vec![b'v'; 100])];
    let before = s.budget().used();
    s.stream_add(
        b"s",
        AddId::Exact(StreamId::new(1, 0)),
        &fields,
        false,
        None,
        100,
        T0,
    )
    .unwrap()
    .unwrap();
    let one = s.budget().used() - before;
    s.stream_add(
        b"s",
        AddId::Exact(StreamId::new(2, 0)),
        &fields,
        false,
        None,
        100,
        T0,
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.budget().used() - before - one, crate::entry_cost(&fields));
    // Consumers are charged too: creating them runs out, all or nothing.
    s.stream_group_create(b"s", b"g", None, false, None, T0)
        .unwrap()
        .unwrap();
    let mut refused = false;
    for i in 0..1000 {
        let name = format!("consumer-{i:0>100}");
        match s.stream_consumer_create(b"s", b"g", name.as_bytes(), T0) {
            Ok(_) => {}
            Err(StoreError::OutOfMemory) => {
                refused = true;
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(refused, "4 KiB never filled up");
    assert!(s.budget().used() <= 4096);
    // Deleting gives the bytes back.
    let used = s.budget().used();
    s.stream_delete(b"s", &[StreamId::new(1, 0)], T0).unwrap();
    assert_eq!(used - s.budget().used(), crate::entry_cost(&fields));
}

#[test]
fn a_stream_change_copies_the_stream_only_while_a_reader_holds_it() {
    use crate::AddId;
    let s = store();
    let fields = [Bytes::from_static(b"f"), Bytes::from_static(b"v")];
    let add = |now| {
        s.stream_add(b"s", AddId::Auto, &fields, false, None, 100, now)
            .unwrap()
            .unwrap()
    };
    add(T0);
    add(T0 + 1);
    assert_eq!(s.stats().stream_copies, 0);
    let held = s.get(b"s", T0).unwrap();
    add(T0 + 2);
    assert_eq!(s.stats().stream_copies, 1, "the held stream was copied");
    drop(held);
    add(T0 + 3);
    assert_eq!(s.stats().stream_copies, 1);
}

#[test]
fn a_stream_change_is_charged_only_what_it_adds() {
    use crate::{ClaimOptions, ReadFrom, StreamId};
    let budget = Arc::new(Budget::new(u64::MAX));
    let s = Store::new(budget.clone(), T0);
    let fields = [Bytes::from_static(b"f"), Bytes::from_static(b"v")];
    for ms in 1..=3 {
        s.stream_add(
            b"s",
            crate::AddId::Exact(StreamId::new(ms, 0)),
            &fields,
            false,
            None,
            100,
            T0,
        )
        .unwrap()
        .unwrap();
    }
    s.stream_group_create(b"s", b"g", Some(StreamId::MIN), false, None, T0)
        .unwrap()
        .unwrap();
    let all = |_: &[Bytes]| true;
    s.stream_read_group(b"s", b"g", b"me", ReadFrom::New, 2, false, all, T0)
        .unwrap()
        .unwrap();
    // Full: not one more byte fits.
    budget.set_limit(budget.used());
    let read = |from, no_ack| {
        s.stream_read_group(b"s", b"g", b"me", from, 0, no_ack, all, T0 + 1)
            .map(|r| r.unwrap().len())
    };
    assert_eq!(read(ReadFrom::History(StreamId::MIN), false), Ok(2));
    assert_eq!(read(ReadFrom::New, true), Ok(1), "NOACK adds nothing");
    assert_eq!(read(ReadFrom::New, false), Ok(0));
    let claimed = s
        .stream_claim(
            b"s",
            b"g",
            b"me",
            0,
            &[StreamId::new(1, 0)],
            ClaimOptions::default(),
            all,
            T0 + 2,
        )
        .unwrap()
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // What is new still does not fit.
    assert_eq!(
        s.stream_read_group(b"s", b"g", b"newcomer", ReadFrom::New, 0, false, all, T0),
        Err(StoreError::OutOfMemory)
    );
}
