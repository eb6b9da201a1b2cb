//! The scenarios, each written once as a function of a [`Backend`] and run against the
//! in-memory store, a real Redis, a real sessiond (this workspace's binary, over RESP) and a
//! (one-node) real Redis Cluster, all started by the harness. Set `SESSIOND_TEST_RESP_URL` to
//! run the `redis` variants against yet another RESP server.
//!
//! Time is a manual clock: timeout tests move it instead of sleeping. The only real waiting
//! is for cross-process effects (pub/sub delivery), bounded by the 100 ms the issue allows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Backend, Gates, Resp, login, send};
use axum::http::StatusCode;
use sessiond_session::{Clock as _, Record, SessionId, SessionStore};

const MIN: Duration = Duration::from_secs(60);

/// Log in on node A, read on node B.
async fn login_on_a_read_on_b(b: Backend) {
    let gates = Gates::default();
    let a = b.node(b.config(), false, &gates).await;
    let node_b = b.node(b.config(), false, &gates).await;
    let id = login(&a, "alice").await;
    let r = send(&node_b, "GET", "/whoami", Some(&id)).await;
    assert_eq!(r.body, "alice");
    // Reading an unchanged session sends no cookie: nothing to tell the client.
    assert!(r.set_cookies().is_empty());
}

/// Many parallel increments of one session's counter, spread over two nodes: none is lost.
async fn parallel_increments_lose_nothing(b: Backend) {
    let gates = Gates::default();
    let a = Arc::new(b.node(b.config(), false, &gates).await);
    let node_b = Arc::new(b.node(b.config(), false, &gates).await);
    let id = login(&a, "alice").await;
    const REQUESTS: usize = 400;
    const CONCURRENCY: usize = 32;
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        let node = if i % 2 == 0 {
            a.clone()
        } else {
            node_b.clone()
        };
        let id = id.clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let r = send(&node, "POST", "/incr", Some(&id)).await;
            drop(permit);
            r.status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    let stored: u64 = send(&a, "POST", "/incr", Some(&id))
        .await
        .body
        .parse()
        .unwrap();
    let stored = stored - 1;
    let (ma, mb) = (a.layer.metrics(), node_b.layer.metrics());
    println!(
        "parallel increments: sent {REQUESTS} (concurrency {CONCURRENCY}), answered 200: {ok}, \
         counter: {stored}, lost: {}, CAS retries: {}, gave up: {}",
        ok as u64 - stored,
        ma.cas_retries + mb.cas_retries,
        ma.contention_failures + mb.contention_failures,
    );
    assert_eq!(ok, REQUESTS, "every increment must succeed");
    assert_eq!(stored, REQUESTS as u64, "no increment may be lost");
}

/// Two requests set the same key to different values concurrently: the second one is told
/// (409), not silently overwritten.
async fn same_key_conflict_is_reported(b: Backend) {
    let gates = Gates::default();
    let a = Arc::new(b.node(b.config(), false, &gates).await);
    let node_b = b.node(b.config(), false, &gates).await;
    let id = login(&a, "alice").await;
    let slow = {
        let (a, id) = (a.clone(), id.clone());
        tokio::spawn(async move { send(&a, "POST", "/slow_set?k=color&v=red", Some(&id)).await })
    };
    gates.loaded.notified().await;
    let fast = send(&node_b, "POST", "/set?k=color&v=blue", Some(&id)).await;
    assert_eq!(fast.status, StatusCode::OK);
    gates.release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, StatusCode::CONFLICT);
    assert_eq!(
        send(&a, "GET", "/get?k=color", Some(&id)).await.body,
        "blue"
    );
    assert_eq!(a.layer.metrics().conflicts, 1);
    // Different keys changed concurrently merge without a conflict.
    let slow = {
        let (a, id) = (a.clone(), id.clone());
        tokio::spawn(async move { send(&a, "POST", "/slow_set?k=x&v=1", Some(&id)).await })
    };
    gates.loaded.notified().await;
    assert_eq!(
        send(&node_b, "POST", "/set?k=y&v=2", Some(&id))
            .await
            .status,
        StatusCode::OK
    );
    gates.release.notify_one();
    assert_eq!(slow.await.unwrap().status, StatusCode::OK);
    assert_eq!(send(&a, "GET", "/get?k=x", Some(&id)).await.body, "1");
    assert_eq!(send(&a, "GET", "/get?k=y", Some(&id)).await.body, "2");
}

/// A logout on A while a slow request is in flight on B does not bring the session back.
async fn logout_during_slow_request_stays_logged_out(b: Backend) {
    slow_request_racing_a_logout(&b, "/slow_incr").await;
}

/// Alice logs in on node A; `route` runs on node B with her id and waits between its load and
/// its write while she logs out on A. Checks that the logout wins (no cookie from B, B's
/// write dropped and counted, the record gone, both nodes see nobody) and returns B's
/// response.
async fn slow_request_racing_a_logout(b: &Backend, route: &str) -> Resp {
    let gates = Gates::default();
    let a = b.node(b.config(), false, &gates).await;
    let node_b = Arc::new(b.node(b.config(), false, &gates).await);
    let id = login(&a, "alice").await;
    let slow = {
        let (nb, id, route) = (node_b.clone(), id.clone(), route.to_owned());
        tokio::spawn(async move { send(&nb, "POST", &route, Some(&id)).await })
    };
    gates.loaded.notified().await;
    let out = send(&a, "POST", "/logout", Some(&id)).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.cookie_id("id").as_deref(), Some(""), "removal cookie");
    gates.release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, StatusCode::OK);
    // The slow request must not hand out a cookie either.
    assert!(slow.set_cookies().is_empty(), "{:?}", slow.set_cookies());
    assert_eq!(node_b.layer.metrics().writes_after_delete, 1);
    let store = b.store(false).await;
    let sid = SessionId::parse(&id).unwrap();
    assert!(
        store.load(&sid).await.unwrap().is_none(),
        "session resurrected"
    );
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&id)).await.body,
        "anonymous"
    );
    assert_eq!(
        send(&node_b, "GET", "/whoami", Some(&id)).await.body,
        "anonymous"
    );
    slow
}

/// `Session::save` says whether the changes were stored or the session ended meanwhile: a
/// slow request's increment saved without a race is `Stored`, one saved after a logout on
/// another node `Ended` (and dropped).
async fn save_reports_a_session_ended_meanwhile(b: Backend) {
    let gates = Gates::default();
    let node = b.node(b.config(), false, &gates).await;
    let id = login(&node, "alice").await;
    gates.release.notify_one();
    let quiet = send(&node, "POST", "/slow_incr_saved", Some(&id)).await;
    assert_eq!(
        (quiet.status, quiet.body.as_str()),
        (StatusCode::OK, "Stored")
    );
    // The saved increment is there: the next one counts 2.
    assert_eq!(send(&node, "POST", "/incr", Some(&id)).await.body, "2");

    let raced = slow_request_racing_a_logout(&b, "/slow_incr_saved").await;
    assert_eq!(raced.body, "Ended");
}

/// cycle_id (login) keeps the data under a new id and ends the pre-login id's authority at
/// once. Inside the grace window a request that raced the login with the old id sees only the
/// pre-login state, read-only and without a cookie: never the login, and its writes reach
/// neither session. A logout through the old id does not end the new session, a second login
/// through it (a double submit) gets a session of its own, and after the window the old id is
/// unknown.
async fn cycle_id_retires_the_old_id(b: Backend) {
    let gates = Gates::default();
    let config = b.config().with_grace_period(Duration::from_secs(5));
    let a = b.node(config.clone(), false, &gates).await;
    let node_b = b.node(config, false, &gates).await;
    // An anonymous visit creates the pre-login session.
    let r = send(&a, "POST", "/set?k=cart&v=3-items", None).await;
    let old = r.cookie_id("id").unwrap();
    let r = send(&a, "POST", "/login?user=alice", Some(&old)).await;
    let new = r.cookie_id("id").unwrap();
    assert_ne!(old, new, "login must change the id");
    assert_eq!(
        send(&a, "GET", "/get?k=cart", Some(&new)).await.body,
        "3-items"
    );
    assert_eq!(send(&a, "GET", "/whoami", Some(&new)).await.body, "alice");

    // In flight with the old id, inside the window: the pre-login state only, no cookie.
    b.clock.advance(Duration::from_secs(2));
    let r = send(&node_b, "GET", "/whoami", Some(&old)).await;
    assert_eq!(r.body, "anonymous", "the old id must not see the login");
    assert!(r.set_cookies().is_empty());
    let r = send(&node_b, "GET", "/get?k=cart", Some(&old)).await;
    assert_eq!(r.body, "3-items", "the pre-login state is still served");
    let r = send(&node_b, "POST", "/set?k=theme&v=dark", Some(&old)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.set_cookies().is_empty());
    assert_eq!(send(&a, "GET", "/get?k=theme", Some(&new)).await.body, "");
    assert_eq!(send(&a, "GET", "/get?k=theme", Some(&old)).await.body, "");
    let m = node_b.layer.metrics();
    assert_eq!((m.grace_hits, m.writes_after_delete), (3, 1));

    // A second login through the old id (a double-submitted form): a session of its own.
    let r = send(&node_b, "POST", "/login?user=alice", Some(&old)).await;
    let forked = r.cookie_id("id").expect("the second login gets an id");
    assert!(forked != old && forked != new);
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&forked)).await.body,
        "alice"
    );
    assert_eq!(
        send(&a, "GET", "/get?k=cart", Some(&forked)).await.body,
        "3-items"
    );
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&old)).await.body,
        "anonymous"
    );

    // A logout through the old id ends only the retired record.
    let r = send(&node_b, "POST", "/logout", Some(&old)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(send(&a, "GET", "/whoami", Some(&new)).await.body, "alice");

    // After the window the old id is unknown; the new one works.
    b.clock.advance(Duration::from_secs(4));
    let before = node_b.layer.metrics().unknown_ids;
    assert_eq!(
        send(&node_b, "GET", "/whoami", Some(&old)).await.body,
        "anonymous"
    );
    assert_eq!(node_b.layer.metrics().unknown_ids, before + 1);
    assert_eq!(
        send(&node_b, "GET", "/whoami", Some(&new)).await.body,
        "alice"
    );
}

/// A session-fixation attacker who holds the pre-login id gets nothing of the logged-in
/// session at any time: before the login, between every two store operations of the login
/// request (a store wrapper runs the attacker's requests there), inside the grace window and
/// after it. The attacker's writes through the old id never reach the new session either.
async fn pre_login_id_never_reaches_the_login(b: Backend) {
    let gates = Gates::default();
    let spy = Arc::new(probing::Probing::new(b.store(false).await));
    let config = b.config().with_grace_period(Duration::from_secs(5));
    let node = |layer: sessiond_session::SessionLayer| crate::common::Node {
        router: crate::common::app_router(gates.clone()).layer(layer.clone()),
        layer,
    };
    let victim =
        node(sessiond_session::SessionLayer::from_arc(spy.clone(), config.clone()).unwrap());
    let attacker = node(sessiond_session::SessionLayer::from_arc(spy.clone(), config).unwrap());
    // The attacker fixes an id: a session of its own, then handed to the victim.
    let r = send(&attacker, "POST", "/set?k=cart&v=bait", None).await;
    let fixed = r.cookie_id("id").unwrap();
    assert_eq!(
        send(&attacker, "GET", "/whoami", Some(&fixed)).await.body,
        "anonymous"
    );

    spy.arm(attacker.router.clone(), fixed.clone());
    let r = send(&victim, "POST", "/login?user=alice", Some(&fixed)).await;
    spy.disarm();
    assert_eq!(r.status, StatusCode::OK);
    let new = r.cookie_id("id").unwrap();
    assert_ne!(new, fixed);
    let seen = spy.seen();
    // After each store operation of the login: its load, the new record's creation, the old
    // record's retirement.
    assert!(
        seen.len() >= 3,
        "the attacker probed only {} times",
        seen.len()
    );
    for (step, user) in seen.iter().enumerate() {
        assert_eq!(
            user, "anonymous",
            "the attacker saw the login at step {step}"
        );
    }

    // After the login: inside the window, at its edge, and after it, reads and writes.
    for advance in [0, 1_000, 3_999, 1, 2_000] {
        b.clock.advance(Duration::from_millis(advance));
        let r = send(&attacker, "GET", "/whoami", Some(&fixed)).await;
        assert_eq!(r.body, "anonymous");
        assert!(r.set_cookies().is_empty());
        let r = send(&attacker, "POST", "/set?k=user&v=mallory", Some(&fixed)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_ne!(r.cookie_id("id").as_deref(), Some(new.as_str()));
        assert_eq!(
            send(&victim, "GET", "/whoami", Some(&new)).await.body,
            "alice"
        );
        assert_eq!(
            send(&victim, "GET", "/get?k=cart", Some(&new)).await.body,
            "bait"
        );
    }
}

mod probing {
    //! A store wrapper that, once armed, runs the attacker's request after each store
    //! operation of another request, so the test sees every intermediate state.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use sessiond_session::{
        CreateOutcome, Record, SessionId, SessionStore, StoreFuture, UpdateOutcome, Version,
        Versioned,
    };

    pub struct Probing {
        inner: Arc<dyn SessionStore>,
        probe: Mutex<Option<(Router, String)>>,
        /// Set while a probe runs, so the probe's own store calls do not probe again.
        probing: AtomicBool,
        seen: Mutex<Vec<String>>,
    }

    impl Probing {
        pub fn new(inner: Arc<dyn SessionStore>) -> Self {
            Self {
                inner,
                probe: Mutex::new(None),
                probing: AtomicBool::new(false),
                seen: Mutex::new(Vec::new()),
            }
        }

        pub fn arm(&self, router: Router, id: String) {
            *self.probe.lock().unwrap() = Some((router, id));
        }

        pub fn disarm(&self) {
            *self.probe.lock().unwrap() = None;
        }

        /// What the attacker's `/whoami` answered, probe by probe.
        pub fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }

        async fn after<T>(&self, out: T) -> T {
            let probe = self.probe.lock().unwrap().clone();
            if let Some((router, id)) = probe
                && !self.probing.swap(true, Ordering::SeqCst)
            {
                let r = crate::common::send_to(&router, "GET", "/whoami", Some(&id)).await;
                self.seen.lock().unwrap().push(r.body);
                self.probing.store(false, Ordering::SeqCst);
            }
            out
        }
    }

    impl SessionStore for Probing {
        fn create<'a>(
            &'a self,
            id: &'a SessionId,
            r: &'a Record,
            ttl: Duration,
        ) -> StoreFuture<'a, CreateOutcome> {
            Box::pin(async move { self.after(self.inner.create(id, r, ttl).await).await })
        }
        fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
            Box::pin(async move { self.after(self.inner.load(id).await).await })
        }
        fn load_fresh<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
            Box::pin(async move { self.after(self.inner.load_fresh(id).await).await })
        }
        fn update<'a>(
            &'a self,
            id: &'a SessionId,
            r: &'a Record,
            v: Version,
            ttl: Duration,
        ) -> StoreFuture<'a, UpdateOutcome> {
            Box::pin(async move { self.after(self.inner.update(id, r, v, ttl).await).await })
        }
        fn touch<'a>(&'a self, id: &'a SessionId, at: u64, ttl: Duration) -> StoreFuture<'a, bool> {
            Box::pin(async move { self.after(self.inner.touch(id, at, ttl).await).await })
        }
        fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
            Box::pin(async move { self.after(self.inner.delete(id).await).await })
        }
    }
}

/// A record that is not a session (`Record::kind`: a JWT revocation, an SSO ticket, kept by
/// sessiond-tokens in the same store) sent as the session id is never a session: the request
/// sees an empty session, a logout does not delete the record, writes go to a fresh id, and
/// the record is left exactly as it was, in strict mode and out of it.
async fn foreign_records_are_not_sessions(b: Backend) {
    let gates = Gates::default();
    let a = b.node(b.config(), false, &gates).await;
    let store = b.store(false).await;
    let foreign = SessionId::generate();
    let mut record = Record::new(b.clock.now_ms()).with_kind("sessiond-tokens/jwt-jti");
    record
        .data
        .insert("user".into(), serde_json::json!("mallory"));
    store.create(&foreign, &record, 10 * MIN).await.unwrap();
    let unchanged = || async {
        let v = store
            .load(&foreign)
            .await
            .unwrap()
            .expect("the record is still there");
        assert_eq!((v.version, &v.record), (1, &record));
    };

    let r = send(&a, "GET", "/whoami", Some(foreign.as_str())).await;
    assert_eq!(r.body, "anonymous");
    assert!(r.set_cookies().is_empty());
    let r = send(&a, "POST", "/logout", Some(foreign.as_str())).await;
    assert_eq!(r.status, StatusCode::OK);
    unchanged().await;
    let r = send(&a, "POST", "/incr", Some(foreign.as_str())).await;
    assert_eq!(r.body, "1");
    let issued = r.cookie_id("id").expect("a fresh id");
    assert_ne!(issued, foreign.as_str());
    let r = send(&a, "POST", "/login?user=eve", Some(foreign.as_str())).await;
    assert_ne!(r.cookie_id("id").as_deref(), Some(foreign.as_str()));
    unchanged().await;
    let m = a.layer.metrics();
    assert_eq!((m.foreign_ids, m.unknown_ids), (4, 0));

    // Out of strict mode an unknown id is adopted, but a foreign one never.
    let permissive = b.node(b.config().with_strict(false), false, &gates).await;
    let r = send(&permissive, "POST", "/set?k=a&v=b", Some(foreign.as_str())).await;
    assert_ne!(r.cookie_id("id").as_deref(), Some(foreign.as_str()));
    unchanged().await;
}

/// Idle timeout, with touches keeping an active session alive; time moved by the test.
async fn idle_timeout(b: Backend) {
    let gates = Gates::default();
    let config = b
        .config()
        .with_idle_timeout(30 * MIN)
        .with_touch_interval(MIN)
        .with_renewal_timeout(None);
    let a = b.node(config, false, &gates).await;
    let id = login(&a, "alice").await;
    // Active every 20 minutes for two hours: reads only, kept alive by touches.
    for _ in 0..6 {
        b.clock.advance(20 * MIN);
        assert_eq!(send(&a, "GET", "/whoami", Some(&id)).await.body, "alice");
    }
    assert_eq!(a.layer.metrics().touches, 6);
    // A read within the touch interval does not write.
    b.clock.advance(Duration::from_secs(10));
    send(&a, "GET", "/whoami", Some(&id)).await;
    assert_eq!(a.layer.metrics().touches, 6);
    // Then 31 minutes of silence.
    b.clock.advance(31 * MIN);
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&id)).await.body,
        "anonymous"
    );
    assert_eq!(a.layer.metrics().expired, 1);
    let store = b.store(false).await;
    assert!(
        store
            .load(&SessionId::parse(&id).unwrap())
            .await
            .unwrap()
            .is_none(),
        "an expired session is removed from the store"
    );
}

/// Absolute timeout ends a session however active it is.
async fn absolute_timeout(b: Backend) {
    let gates = Gates::default();
    let config = b
        .config()
        .with_idle_timeout(30 * MIN)
        .with_absolute_timeout(Some(120 * MIN))
        .with_renewal_timeout(None);
    let a = b.node(config, false, &gates).await;
    let id = login(&a, "alice").await;
    for _ in 0..5 {
        b.clock.advance(20 * MIN);
        assert_eq!(
            send(&a, "POST", "/incr", Some(&id)).await.status,
            StatusCode::OK
        );
    }
    b.clock.advance(19 * MIN); // 119 minutes in
    assert_eq!(send(&a, "GET", "/whoami", Some(&id)).await.body, "alice");
    b.clock.advance(2 * MIN); // 121 minutes in
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&id)).await.body,
        "anonymous"
    );
    assert_eq!(a.layer.metrics().expired, 1);
}

/// Renewal timeout: after it, the next request moves the session to a new id (data kept) and
/// the old id works for the grace window.
async fn renewal_timeout(b: Backend) {
    let gates = Gates::default();
    let config = b
        .config()
        .with_idle_timeout(30 * MIN)
        .with_renewal_timeout(Some(15 * MIN))
        .with_grace_period(Duration::from_secs(5));
    let a = b.node(config, false, &gates).await;
    let id = login(&a, "alice").await;
    b.clock.advance(10 * MIN);
    let r = send(&a, "GET", "/whoami", Some(&id)).await;
    assert!(r.set_cookies().is_empty(), "not due yet");
    b.clock.advance(6 * MIN);
    let r = send(&a, "GET", "/whoami", Some(&id)).await;
    assert_eq!(r.body, "alice");
    let renewed = r.cookie_id("id").expect("renewal sends a new id");
    assert_ne!(renewed, id);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&renewed)).await.body,
        "alice"
    );
    b.clock.advance(Duration::from_secs(1));
    assert_eq!(send(&a, "GET", "/whoami", Some(&id)).await.body, "alice");
    b.clock.advance(Duration::from_secs(5));
    assert_eq!(
        send(&a, "GET", "/whoami", Some(&id)).await.body,
        "anonymous"
    );
    // Login created the session under a new id; only the renewal replaced one.
    assert_eq!(a.layer.metrics().cycled, 1);
}

/// Near-cache on both nodes: B caches the session, A logs out, B sees it within 100 ms.
async fn near_cache_invalidation(b: Backend) {
    let gates = Gates::default();
    let a = b.node(b.config(), true, &gates).await;
    let node_b = b.node(b.config(), true, &gates).await;
    let id = login(&a, "alice").await;
    // Warm B's cache.
    assert_eq!(
        send(&node_b, "GET", "/whoami", Some(&id)).await.body,
        "alice"
    );
    assert_eq!(
        send(&node_b, "GET", "/whoami", Some(&id)).await.body,
        "alice"
    );
    // A change on A is seen by B too, not just a delete.
    send(&a, "POST", "/set?k=theme&v=dark", Some(&id)).await;
    let start = Instant::now();
    while send(&node_b, "GET", "/get?k=theme", Some(&id)).await.body != "dark" {
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "update not seen"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let out = send(&a, "POST", "/logout", Some(&id)).await;
    assert_eq!(out.status, StatusCode::OK);
    let start = Instant::now();
    loop {
        let r = send(&node_b, "GET", "/whoami", Some(&id)).await;
        if r.body == "anonymous" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "logout on A not seen by B within 100 ms"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "near-cache: logout on A seen by B after {:?}",
        start.elapsed()
    );

    // Proof that B really serves from its cache (so the above is the invalidation at work):
    // a delete that bypasses every node's announcement is not seen by B.
    let id = login(&a, "bob").await;
    assert_eq!(send(&node_b, "GET", "/whoami", Some(&id)).await.body, "bob");
    let raw = b.store(false).await;
    assert!(raw.delete(&SessionId::parse(&id).unwrap()).await.unwrap());
    assert_eq!(send(&node_b, "GET", "/whoami", Some(&id)).await.body, "bob");
}

/// Strict mode: an unknown id gets a fresh one; the event is counted and logged with a salted
/// hash, never the raw id; a malformed id is counted apart.
async fn strict_mode(b: Backend) {
    let gates = Gates::default();
    let a = b.node(b.config(), false, &gates).await;
    let forged = SessionId::generate();
    let r = send(&a, "GET", "/whoami", Some(forged.as_str())).await;
    assert_eq!(r.body, "anonymous");
    let r = send(&a, "POST", "/set?k=a&v=b", Some(forged.as_str())).await;
    let issued = r.cookie_id("id").expect("a fresh id is issued");
    assert_ne!(issued, forged.as_str(), "an unknown id is never adopted");
    assert_eq!(a.layer.metrics().unknown_ids, 2);
    let store = b.store(false).await;
    assert!(store.load(&forged).await.unwrap().is_none());
    send(&a, "GET", "/whoami", Some("not-an-id")).await;
    assert_eq!(a.layer.metrics().malformed_ids, 1);

    // With strict mode off (migrations only), a well-formed unknown id is adopted.
    let permissive = b.node(b.config().with_strict(false), false, &gates).await;
    let chosen = SessionId::generate();
    let r = send(&permissive, "POST", "/set?k=a&v=b", Some(chosen.as_str())).await;
    assert_eq!(r.cookie_id("id").as_deref(), Some(chosen.as_str()));
    assert!(store.load(&chosen).await.unwrap().is_some());
}

/// Lazy load and write avoidance, observed at the store.
async fn lazy_and_write_avoidance(b: Backend) {
    let gates = Gates::default();
    let counting = Arc::new(common_counting::Counting::new(b.store(false).await));
    let layer = sessiond_session::SessionLayer::from_arc(counting.clone(), b.config()).unwrap();
    let node = crate::common::Node {
        router: common_counting::router(layer.clone(), gates),
        layer,
    };
    let id = login(&node, "alice").await;
    let before = counting.total();
    send(&node, "GET", "/nothing", Some(&id)).await;
    assert_eq!(
        counting.total(),
        before,
        "an untouched session costs no store call"
    );
    send(&node, "GET", "/whoami", Some(&id)).await;
    assert_eq!(counting.total(), before + 1, "a read is one load, no write");
    send(&node, "POST", "/set?k=user&v=alice", Some(&id)).await;
    assert_eq!(
        counting.total(),
        before + 2,
        "setting the same value is not a change"
    );
}

mod common_counting {
    //! A store wrapper that counts calls, for the lazy-load test.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use sessiond_session::{
        CreateOutcome, Record, SessionId, SessionLayer, SessionStore, StoreFuture, UpdateOutcome,
        Version, Versioned,
    };

    pub struct Counting {
        inner: Arc<dyn SessionStore>,
        calls: AtomicU64,
    }

    impl Counting {
        pub fn new(inner: Arc<dyn SessionStore>) -> Self {
            Self {
                inner,
                calls: AtomicU64::new(0),
            }
        }
        pub fn total(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }
        fn count(&self) {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl SessionStore for Counting {
        fn create<'a>(
            &'a self,
            id: &'a SessionId,
            r: &'a Record,
            ttl: Duration,
        ) -> StoreFuture<'a, CreateOutcome> {
            self.count();
            self.inner.create(id, r, ttl)
        }
        fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
            self.count();
            self.inner.load(id)
        }
        fn update<'a>(
            &'a self,
            id: &'a SessionId,
            r: &'a Record,
            v: Version,
            ttl: Duration,
        ) -> StoreFuture<'a, UpdateOutcome> {
            self.count();
            self.inner.update(id, r, v, ttl)
        }
        fn touch<'a>(&'a self, id: &'a SessionId, at: u64, ttl: Duration) -> StoreFuture<'a, bool> {
            self.count();
            self.inner.touch(id, at, ttl)
        }
        fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
            self.count();
            self.inner.delete(id)
        }
    }

    pub fn router(layer: SessionLayer, gates: super::Gates) -> axum::Router {
        crate::common::app_router(gates).layer(layer)
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::resp()).await;
                }
            )*
        }
        mod sessiond {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::sessiond()).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::resp_cluster()).await;
                }
            )*
        }
    };
}

scenarios!(
    login_on_a_read_on_b,
    parallel_increments_lose_nothing,
    same_key_conflict_is_reported,
    logout_during_slow_request_stays_logged_out,
    save_reports_a_session_ended_meanwhile,
    cycle_id_retires_the_old_id,
    pre_login_id_never_reaches_the_login,
    foreign_records_are_not_sessions,
    idle_timeout,
    absolute_timeout,
    renewal_timeout,
    near_cache_invalidation,
    strict_mode,
    lazy_and_write_avoidance,
);
