//! Keyspace notifications for expiry, as Spring Session's indexed repository consumes them
//! (docs/redis.md): with `notify-keyspace-events` set to `Ex`, a subscriber of
//! `__keyevent@0__:expired` receives the key's name when it expires, without anyone reading
//! the key, and no later than 100 ms after its deadline.
//!
//! The 100 ms is a correctness bound set by issue #4 (a session store that only expires
//! lazily, on access, never tells the application a session ended), not a performance
//! figure: everything slow (starting the server, subscribing, configuring) happens before
//! the clock starts, and only the delay between a key's deadline and its event is bounded.
//! The deadline is measured conservatively: from the moment just before the SET was sent,
//! so the server's own deadline is never earlier than the one the test uses, and the
//! measured delay can only overstate the real one.
//!
//! Two subscribers listen at once, one in RESP2 (events are `*3 message <channel> <key>`
//! arrays) and one after `HELLO 3` (events are `>3` pushes).

use std::time::{Duration, Instant};

use sessiond_test_harness::{Resp, RespClient, RespServer, unique};

const CHANNEL: &str = "__keyevent@0__:expired";
/// The bound: an expired event arrives within this long after the deadline.
const BOUND: Duration = Duration::from_millis(100);

/// Subscribes `client` to [`CHANNEL`] and checks the confirmation.
fn subscribe(client: &mut RespClient, resp3: bool) {
    if resp3 {
        let hello = client.call(&["HELLO", "3"]);
        assert!(
            matches!(hello.value, Resp::Map(_)),
            "HELLO 3 must answer a RESP3 map, got {hello}"
        );
    }
    let reply = client.call(&["SUBSCRIBE", CHANNEL]);
    let want = [
        Resp::Bulk(b"subscribe".to_vec()),
        Resp::Bulk(CHANNEL.as_bytes().to_vec()),
        Resp::Int(1),
    ];
    let ok = match (&reply.value, resp3) {
        (Resp::Array(items), false) | (Resp::Push(items), true) => items[..] == want[..],
        _ => false,
    };
    assert!(
        ok,
        "SUBSCRIBE {CHANNEL} over RESP{}: expected the confirmation {} [subscribe, {CHANNEL}, 1], got {reply}",
        if resp3 { 3 } else { 2 },
        if resp3 { "push" } else { "array" },
    );
}

/// Reads the next event; returns the key and when it arrived.
fn next_event(client: &mut RespClient, resp3: bool, timeout: Duration) -> (String, Instant) {
    client.set_read_timeout(timeout);
    let reply = client.try_read().unwrap_or_else(|e| {
        panic!(
            "RESP{} subscriber: no expired event within {timeout:?} ({e})",
            if resp3 { 3 } else { 2 }
        )
    });
    let at = Instant::now();
    let items = match (&reply.value, resp3) {
        (Resp::Array(items), false) | (Resp::Push(items), true) => items,
        _ => panic!(
            "RESP{} subscriber: expected a {} message, got {reply}",
            if resp3 { 3 } else { 2 },
            if resp3 { "push" } else { "array" }
        ),
    };
    match &items[..] {
        [Resp::Bulk(kind), Resp::Bulk(channel), Resp::Bulk(key)]
            if kind == b"message" && channel == CHANNEL.as_bytes() =>
        {
            (String::from_utf8_lossy(key).into_owned(), at)
        }
        _ => panic!("expected [message, {CHANNEL}, <key>], got {reply}"),
    }
}

#[test]
fn expired_events_arrive_within_100ms_of_the_deadline() {
    const EVENTS: usize = 3;
    let server = RespServer::start();
    server.header("keyspace events: expired");
    let mut admin = server.client(None);
    admin.ok(&["CONFIG", "SET", "notify-keyspace-events", "Ex"]);

    // Each subscriber reads on its own thread, so an arrival time is taken when the event
    // arrives, not when the test gets round to reading that socket.
    let subscribers: Vec<_> = [false, true]
        .into_iter()
        .map(|resp3| {
            let mut client = server.client(None);
            subscribe(&mut client, resp3);
            std::thread::spawn(move || {
                let mut events = Vec::new();
                for _ in 0..EVENTS {
                    events.push(next_event(&mut client, resp3, Duration::from_secs(5)));
                }
                // Nothing else arrives: the deleted and the persistent key produce no
                // expired event.
                client.set_read_timeout(Duration::from_millis(300));
                let extra = client.try_read().ok().map(|r| r.to_string());
                (resp3, events, extra)
            })
        })
        .collect();

    // Three keys with different deadlines, set back to back; nobody reads them. A
    // persistent key and one deleted before its deadline must produce no expired event.
    let tag = unique("ev");
    admin.ok(&["SET", &format!("{tag}:persistent"), "v"]);
    admin.ok(&["SET", &format!("{tag}:deleted"), "v", "PX", "200"]);
    let mut deadlines = Vec::new();
    for ms in [300u64, 450, 600] {
        let key = format!("{tag}:{ms}");
        let sent = Instant::now();
        admin.ok(&["SET", &key, "v", "PX", &ms.to_string()]);
        deadlines.push((key, sent + Duration::from_millis(ms)));
    }
    let del = admin.call(&["DEL", &format!("{tag}:deleted")]);
    assert_eq!(del.value, Resp::Int(1), "DEL answered {del}");

    let mut report = Vec::new();
    for subscriber in subscribers {
        let (resp3, events, extra) = subscriber.join().expect("subscriber thread panicked");
        let proto = if resp3 { "RESP3" } else { "RESP2" };
        for ((key, deadline), (got, at)) in deadlines.iter().zip(&events) {
            assert_eq!(
                got, key,
                "{proto} subscriber: events out of deadline order, or for a key that must \
                 not expire"
            );
            // Redis keeps deadlines in whole milliseconds, so an event may come up to 1 ms
            // before the test's (microsecond) deadline.
            assert!(
                *at + Duration::from_millis(1) >= *deadline,
                "{key}: expired event {:?} before its deadline",
                deadline.duration_since(*at)
            );
            let delay = at.saturating_duration_since(*deadline);
            assert!(
                delay <= BOUND,
                "{key}: the expired event came {delay:?} after the deadline; the bound is \
                 {BOUND:?} ({proto} subscriber)\n{}",
                server.diagnostics()
            );
            report.push(format!(
                "{proto} {key} +{:.1} ms",
                delay.as_secs_f64() * 1000.0
            ));
        }
        assert!(
            extra.is_none(),
            "{proto} subscriber: unexpected extra message {extra:?}"
        );
    }
    for (key, _) in &deadlines {
        assert!(!admin.exists(key), "{key} still exists after its event");
    }
    assert!(admin.exists(&format!("{tag}:persistent")));
    println!("  expired events after the deadline: {}", report.join(", "));
}
