//! The farm's scenarios (issue 16, docs/farm.md), each asserted: a login and a counter shared
//! by every node behind round-robin, also under concurrent requests of one user; sticky
//! routing surviving the loss of the user's node; a logout on any node reaching every other
//! node; "log out everywhere" from sessiond's admin API, with a request in flight that must
//! not bring the session back; `kill -9` of sessiond under traffic; two sessiond nodes in
//! php-memcached's ring with a replica; the PHP nodes on phpredis against sessiond's RESP
//! port (the benchmark's like-for-like column with Redis); the load balancer's door to the
//! Rust node alone (the benchmark's Rust column); and one Chromium journey.
//!
//! Every farm is real: Debian's nginx and php-fpm, the PHP app in `php/`, the Rust node
//! (`sessiond-farm-node`) when built, sessiond from the workspace, all on free loopback ports
//! in throwaway directories and stopped by pid (`sessiond_farm::Farm`). Requests are made
//! with curl. Nothing sleeps for a result: waits poll for a condition with a bound that only
//! turns a hang into a failure.

#[allow(dead_code)]
#[path = "../../../crates/server/tests/it/webdriver.rs"]
mod webdriver;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sessiond_farm::client::{Answer, Client};
use sessiond_farm::{Farm, FarmConfig, RUST_NODE, STEP_TIMEOUT, Store};
use sessiond_test_harness::{require_program, run_with_timeout};

/// The Rust node, when this package builds it.
fn rust_node() -> Option<std::path::PathBuf> {
    option_env!("CARGO_BIN_EXE_sessiond-farm-node").map(std::path::PathBuf::from)
}

fn farm(sessiond_nodes: usize, strict_mode: bool) -> Farm {
    let farm = Farm::start(FarmConfig {
        sessiond_nodes,
        strict_mode,
        rust_node: rust_node(),
        ..FarmConfig::default()
    });
    println!(
        "farm: round-robin {} sticky {} nodes {:?} in {}",
        farm.round_robin_url(),
        farm.sticky_url(),
        farm.node_names(),
        farm.dir().display()
    );
    farm
}

/// `POST /count` until it is acknowledged (200) or `STEP_TIMEOUT` passes.
fn increment(client: &mut Client, base: &str) -> Answer {
    client.post(base, "/count", "")
}

fn assert_user(answer: &Answer, user: Option<&str>, farm: &Farm, what: &str) {
    assert_eq!(
        (answer.status, answer.user()),
        (200, user),
        "{what}: {answer:?}\n{}",
        farm.logs()
    );
}

/// sessiond's admin API, with curl: the method, path and the status and body.
fn admin(farm: &Farm, method: &str, path: &str) -> (u16, serde_json::Value) {
    let curl = require_program("curl", "curl");
    let url = format!("http://{}{path}", farm.sessiond_http(0));
    let done = run_with_timeout(
        "curl (admin API)",
        Command::new(curl).args([
            "--silent",
            "--show-error",
            "--request",
            method,
            "--write-out",
            "\n%{http_code}",
            &url,
        ]),
        STEP_TIMEOUT,
    );
    let (body, status) = done.stdout.rsplit_once('\n').expect("curl's status line");
    (
        status.trim().parse().expect("an HTTP status"),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// Round-robin: the login and one counter are seen by every node, in sequence and under
/// concurrent requests of the same user; the user's increments are never lost.
fn round_robin_counter(farm: &Farm) {
    let rr = farm.round_robin_url();
    let mut alice = Client::new();
    alice.login(&rr, "alice");
    let mut served = BTreeSet::new();
    let nodes = farm.node_names();
    let sequential = 10 + 2 * nodes.len();
    for i in 1..=sequential {
        let answer = if i % 2 == 0 {
            increment(&mut alice, &rr)
        } else {
            alice.get(&rr, "/whoami")
        };
        assert_user(&answer, Some("alice"), farm, "a request behind round-robin");
        assert_eq!(answer.count(), Some((i / 2) as i64), "{answer:?}");
        served.insert(answer.node.clone());
    }
    let expected: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
    assert_eq!(served, expected, "round-robin reached every node");

    // Concurrent increments of one session from four threads: the session lock makes them
    // take turns, so every acknowledged value is distinct and none is lost.
    let before = (sequential / 2) as i64;
    let per_thread = 5;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut client = alice.clone();
            let rr = rr.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|_| increment(&mut client, &rr))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut nodes_seen = BTreeSet::new();
    for thread in threads {
        for answer in thread.join().expect("a request thread") {
            assert_user(&answer, Some("alice"), farm, "a concurrent increment");
            acknowledged.push(answer.count().expect("a count"));
            nodes_seen.insert(answer.node);
        }
    }
    acknowledged.sort();
    let wanted: Vec<i64> = (before + 1..=before + 4 * per_thread).collect();
    assert_eq!(
        acknowledged, wanted,
        "each increment acknowledged once, none lost"
    );
    let last = alice.get(&rr, "/whoami");
    assert_eq!(last.count(), Some(before + 4 * per_thread), "{last:?}");
    println!(
        "round-robin: {sequential} sequential requests on {served:?}, then {} concurrent \
         increments on {nodes_seen:?}: counter {before} → {}",
        4 * per_thread,
        before + 4 * per_thread
    );
}

/// A logout on any node logs the user out on every other node.
fn logout_reaches_every_node(farm: &Farm) {
    let rr = farm.round_robin_url();
    for node in farm.node_names() {
        let mut bob = Client::new();
        bob.login(&rr, "bob");
        for other in farm.node_names() {
            let answer = bob.get(&farm.node_url(other), "/whoami");
            assert_user(&answer, Some("bob"), farm, "logged in on every node");
            assert_eq!(answer.node, other);
        }
        let mut stale = bob.clone();
        let out = bob.post(&farm.node_url(node), "/logout", "");
        assert_eq!((out.status, out.node.as_str()), (200, node), "{out:?}");
        assert!(bob.cookie.is_none(), "logout clears the cookie");
        // The old cookie, replayed: every node now sees nobody.
        for other in farm.node_names() {
            let answer = stale.get(&farm.node_url(other), "/whoami");
            assert_user(&answer, None, farm, &format!("after a logout on {node}"));
        }
        println!("logout on {node}: logged out on every node");
    }
}

/// Three devices of one user; an admin revokes them all through sessiond's HTTP API while a
/// request of one device is in flight; every device is logged out on every node, and the
/// request in flight does not bring its session back.
fn revoke_all_devices(farm: &Farm) {
    let rr = farm.round_robin_url();
    let mut devices: Vec<Client> = (0..3)
        .map(|_| {
            let mut device = Client::new();
            device.login(&rr, "carol");
            device
        })
        .collect();
    let (status, listed) = admin(farm, "GET", "/api/v1/users/carol/sessions");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // The phone's request (on a PHP node) and the tablet's (on the Rust node) read their
    // sessions and then wait for the test (the apps' `?hold=` hook) before writing their
    // increments.
    let held: Vec<(String, std::thread::JoinHandle<Answer>)> = [("php1", 0), ("rust", 1)]
        .into_iter()
        .filter(|(node, _)| farm.node_names().contains(node))
        .map(|(node, device)| {
            let hold = format!("h{}x{node}", std::process::id());
            let mut client = devices[device].clone();
            let url = farm.node_url(node);
            let path = format!("/count?hold={hold}");
            let thread = std::thread::spawn(move || client.post(&url, &path, ""));
            let started = farm.hold_dir().join(format!("{hold}.started"));
            let deadline = Instant::now() + STEP_TIMEOUT;
            while !started.exists() {
                assert!(
                    Instant::now() < deadline,
                    "the held request on {node} never started\n{}",
                    farm.logs()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            (hold, thread)
        })
        .collect();
    let (status, revoked) = admin(farm, "DELETE", "/api/v1/users/carol/sessions");
    assert_eq!(
        (status, revoked["count"].as_i64()),
        (200, Some(3)),
        "{revoked}"
    );
    let mut refused_on = Vec::new();
    for (hold, thread) in held {
        std::fs::write(farm.hold_dir().join(&hold), b"").expect("releasing a held request");
        let late = thread.join().expect("a held request");
        // PHP: the store refused the write (503). Rust: the layer found the session gone and
        // dropped the write (401). Neither acknowledges the increment.
        let refused = if late.node == "rust" { 401 } else { 503 };
        assert_eq!(
            late.status, refused,
            "the request in flight on {} was not acknowledged: {late:?}",
            late.node
        );
        refused_on.push(late.node);
    }

    for (i, device) in devices.iter_mut().enumerate() {
        for node in farm.node_names() {
            let answer = device.clone().get(&farm.node_url(node), "/whoami");
            assert_user(
                &answer,
                None,
                farm,
                &format!("device {i} on {node} after revoke"),
            );
        }
        let answer = increment(device, &rr);
        assert_eq!(answer.status, 401, "device {i} cannot count: {answer:?}");
    }
    let (_, listed) = admin(farm, "GET", "/api/v1/users/carol/sessions");
    assert_eq!(
        listed,
        serde_json::json!([]),
        "no session of carol came back"
    );
    println!(
        "revoke: 3 devices logged out on every node; the writes in flight on {refused_on:?} \
         were refused"
    );
}

/// Sticky: a user's requests stay on one node; with that node gone they move, still logged
/// in; with no cookie the door spreads requests (round-robin).
fn sticky_survives_a_node(farm: &mut Farm) {
    let sticky = farm.sticky_url();
    let mut anonymous_nodes = BTreeSet::new();
    for _ in 0..8 {
        anonymous_nodes.insert(Client::new().get(&sticky, "/whoami").node);
    }
    assert!(
        anonymous_nodes.len() > 1,
        "no cookie: round-robin, saw {anonymous_nodes:?}"
    );

    let mut dave = Client::new();
    dave.login(&sticky, "dave");
    let home = dave.get(&sticky, "/whoami").node;
    for _ in 0..6 {
        let answer = increment(&mut dave, &sticky);
        assert_user(&answer, Some("dave"), farm, "sticky");
        assert_eq!(answer.node, home, "sticky keeps dave on {home}");
    }
    let home: &'static str = farm
        .node_names()
        .into_iter()
        .find(|n| *n == home)
        .expect("a known node");
    farm.stop_node(home);
    let moved = dave.get(&sticky, "/whoami");
    assert_user(&moved, Some("dave"), farm, "after dave's node stopped");
    assert_ne!(moved.node, home);
    assert_eq!(moved.count(), Some(6));
    let counted = increment(&mut dave, &sticky);
    assert_eq!(
        (counted.status, counted.count()),
        (200, Some(7)),
        "{counted:?}"
    );
    println!(
        "sticky: dave stayed on {home}; {home} stopped; served by {} still logged in",
        moved.node
    );
    farm.start_node(home);
}

/// Malformed and oversized input to every node: a clear refusal, and the node keeps serving.
fn bad_input_is_refused(farm: &Farm) {
    let big = format!("user={}", "a".repeat(2 * 1024 * 1024));
    for node in farm.node_names() {
        let url = farm.node_url(node);
        let mut client = Client::new();
        for form in ["user=%3Cscript%3E", "user=", "nothing", "user=%FF%FE"] {
            let answer = client.post(&url, "/login", form);
            assert_eq!(answer.status, 400, "{node} {form}: {answer:?}");
            assert_eq!(answer.user(), None);
        }
        assert!(
            client.cookie.is_none(),
            "{node}: no session for a refused login"
        );
        // 2 MiB of form: over nginx's 1 MiB client_max_body_size in front of PHP, over
        // axum's 2 MiB default body limit on the Rust node.
        let answer = client.post(&url, "/login", &big);
        assert_eq!(answer.status, 413, "{node}: 2 MiB of form: {answer:?}");
        let answer = client.get(&url, "/no/such/page");
        assert_eq!(answer.status, 404, "{node}: {answer:?}");
        client.login(&url, "still-serving");
    }
}

/// The benchmark's Rust column: the load balancer's `rust-only` door reaches the Rust node
/// and nothing else, and a login made there is the one every node shares.
fn rust_only_door(farm: &Farm) {
    let Some(door) = farm.rust_only_url() else {
        assert!(
            !farm.node_names().contains(&RUST_NODE),
            "a farm with a Rust node has a door to it"
        );
        println!("rust-only door: no Rust node built, nothing to check");
        return;
    };
    let mut erin = Client::new();
    let login = erin.login(&door, "erin");
    assert_eq!(
        login.node, RUST_NODE,
        "a login on the rust-only door: {login:?}"
    );
    for i in 1..=6 {
        let answer = if i % 2 == 0 {
            increment(&mut erin, &door)
        } else {
            erin.get(&door, "/whoami")
        };
        assert_user(
            &answer,
            Some("erin"),
            farm,
            "a request on the rust-only door",
        );
        assert_eq!(answer.node, RUST_NODE, "the rust-only door: {answer:?}");
        assert_eq!(answer.count(), Some(i / 2), "{answer:?}");
    }
    for node in farm.node_names() {
        let answer = erin.get(&farm.node_url(node), "/whoami");
        assert_user(
            &answer,
            Some("erin"),
            farm,
            "the Rust door's login on every node",
        );
        assert_eq!(answer.count(), Some(3), "{answer:?}");
    }
    println!("rust-only door: 7 requests, all on the Rust node; its login seen on every node");
}

#[test]
fn one_login_on_every_node() {
    let mut farm = farm(1, true);
    bad_input_is_refused(&farm);
    rust_only_door(&farm);
    round_robin_counter(&farm);
    logout_reaches_every_node(&farm);
    revoke_all_devices(&farm);
    sticky_survives_a_node(&mut farm);
}

/// The benchmark's like-for-like column with Redis: the PHP nodes on phpredis
/// (`session.save_handler = redis`, locking on, the Redis farm's settings) against sessiond's
/// RESP port. The same scenarios as on php-memcached: one login and counter on every node
/// (the lock makes concurrent increments of one user take turns, none lost), a logout
/// anywhere reaching everywhere, and an admin's revocation of every device (sessiond's
/// session layer finds phpredis's `PHPREDIS_SESSION:<id>` sessions' users) refusing the write
/// of a request in flight.
#[test]
fn phpredis_on_sessiond() {
    let farm = Farm::start(FarmConfig {
        store: Store::SessiondResp,
        ..FarmConfig::default()
    });
    println!(
        "farm (phpredis on sessiond's RESP port {}): round-robin {} nodes {:?} in {}",
        farm.sessiond_resp(0),
        farm.round_robin_url(),
        farm.node_names(),
        farm.dir().display()
    );
    assert!(farm.rust_only_url().is_none(), "no Rust node on phpredis");
    round_robin_counter(&farm);
    logout_reaches_every_node(&farm);
    revoke_all_devices(&farm);
}

/// `kill -9` sessiond while four users count through round-robin, then restart it: every
/// user is still logged in and no acknowledged increment is lost.
#[test]
fn sessiond_killed_under_traffic() {
    let mut farm = farm(1, true);
    let rr = farm.round_robin_url();
    let users = users_names();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicI64>> = Arc::new(users.iter().map(|_| AtomicI64::new(0)).collect());
    let threads: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let mut client = Client::new();
            client.login(&rr, user);
            let (rr, stop, acked) = (rr.clone(), Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut failures = 0;
                while !stop.load(Ordering::SeqCst) {
                    let answer = increment(&mut client, &rr);
                    if answer.status == 200 {
                        let count = answer.count().expect("a count");
                        let before = acked[i].swap(count, Ordering::SeqCst);
                        assert!(count > before, "acknowledged {before}, then {count}");
                    } else {
                        // Unavailable while sessiond is down, never "not logged in".
                        assert_eq!(answer.status, 503, "{}: {answer:?}", users_names()[i]);
                        failures += 1;
                    }
                }
                (client, failures)
            })
        })
        .collect();
    wait_for_progress(&farm, &acked, &[3; 4], "before the kill");
    farm.kill_sessiond(0);
    let at_kill: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    farm.restart_sessiond(0);
    let after: Vec<i64> = at_kill.iter().map(|n| n + 3).collect();
    wait_for_progress(&farm, &acked, &after, "after the restart");
    stop.store(true, Ordering::SeqCst);
    let mut report = BTreeMap::new();
    for (i, thread) in threads.into_iter().enumerate() {
        let (mut client, failures) = thread.join().expect("a traffic thread");
        let last_acked = acked[i].load(Ordering::SeqCst);
        let now = client.get(&rr, "/whoami");
        assert_user(&now, Some(users[i]), &farm, "after sessiond's restart");
        let count = now.count().expect("a count");
        // The one request in flight at the kill may have been applied without its answer.
        assert!(
            (last_acked..=last_acked + 1).contains(&count),
            "{}: acknowledged {last_acked}, the session says {count}",
            users[i]
        );
        report.insert(users[i], (at_kill[i], last_acked, count, failures));
    }
    println!("kill -9: per user (acked at kill, last acked, stored, failed requests): {report:?}");
}

fn users_names() -> [&'static str; 4] {
    ["u1", "u2", "u3", "u4"]
}

/// Waits until every user's acknowledged count reaches its minimum.
fn wait_for_progress(farm: &Farm, acked: &[AtomicI64], at_least: &[i64], what: &str) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while acked
        .iter()
        .zip(at_least)
        .any(|(a, min)| a.load(Ordering::SeqCst) < *min)
    {
        assert!(
            Instant::now() < deadline,
            "no progress {what}: acknowledged {acked:?}, wanted {at_least:?}\n{}",
            farm.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two sessiond nodes in php-memcached's ring with one replica: either one can die and every
/// user stays logged in, on every node. Then what a returning node does (docs/farm.md, "Two
/// sessiond"). PHP's strict mode is off in this farm: php-memcached validates an id with an
/// `exist` on the primary alone, so with strict mode a dead primary logs its users out.
#[test]
fn two_sessiond_nodes_with_a_replica() {
    let mut farm = farm(2, false);
    let rr = farm.round_robin_url();
    let mut users: Vec<(String, Client)> = (0..8)
        .map(|i| {
            let name = format!("r{i}");
            let mut client = Client::new();
            client.login(&rr, &name);
            (name, client)
        })
        .collect();
    let mut expected = vec![0i64; users.len()];
    count_all(&farm, &mut users, &mut expected, "both sessiond up");
    for down in 0..2 {
        // Four more users who log out while the node is down: does its return bring them back?
        let mut leavers: Vec<Client> = (0..4)
            .map(|i| {
                let mut client = Client::new();
                client.login(&rr, &format!("leaver{down}x{i}"));
                client
            })
            .collect();
        let old_cookies: Vec<Client> = leavers.clone();
        farm.kill_sessiond(down);
        for (name, client) in users.iter_mut() {
            for node in farm.node_names() {
                let answer = client.get(&farm.node_url(node), "/whoami");
                assert_user(
                    &answer,
                    Some(name),
                    &farm,
                    &format!("{node} with sessiond{} down", down + 1),
                );
            }
        }
        count_all(&farm, &mut users, &mut expected, "one sessiond down");
        for leaver in &mut leavers {
            let out = leaver.post(&rr, "/logout", "");
            assert_eq!(out.status, 200, "logout with one sessiond down: {out:?}");
        }
        farm.restart_sessiond(down);
        let mut back = 0;
        for old in &old_cookies {
            if old.clone().get(&rr, "/whoami").user().is_some() {
                back += 1;
            }
        }
        // The returning node: which sessions does it answer with older data than the
        // survivor's?
        let mut stale = 0;
        for (i, (name, client)) in users.iter_mut().enumerate() {
            let answer = client.get(&rr, "/whoami");
            if answer.user() != Some(name.as_str()) || answer.count() != Some(expected[i]) {
                stale += 1;
            }
        }
        println!(
            "ring: sessiond{} killed and restarted: {stale} of {} users read an older session \
             from it; {back} of {} users who logged out meanwhile are logged in again",
            down + 1,
            users.len(),
            old_cookies.len()
        );
        count_all(&farm, &mut users, &mut expected, "after the restart");
    }
}

/// One increment per user, each acknowledged; `expected` takes the acknowledged counts.
fn count_all(farm: &Farm, users: &mut [(String, Client)], expected: &mut [i64], what: &str) {
    let rr = farm.round_robin_url();
    for (i, (name, client)) in users.iter_mut().enumerate() {
        let answer = increment(client, &rr);
        assert_user(&answer, Some(name), farm, what);
        expected[i] = answer.count().expect("a count");
    }
}

/// Waits (polling, at most 15 s) until the page's source contains `needle`; returns it. The
/// source, unlike an element's text, can be read while a form's redirect is under way, so a
/// page being replaced is never a stale-element error.
fn wait_source(browser: &webdriver::Browser, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let source = browser.source();
        if source.contains(needle) {
            return source;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {needle:?}; the page is {source}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node a page names (`<b id="node">php2</b>`).
fn node_of(source: &str) -> String {
    source
        .split("id=\"node\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no node on the page: {source}"))
        .to_string()
}

/// Chromium: log in on a PHP node, browse pages served by every node (the Rust one too) with
/// the same login and counter, count, log out, and every node sees nobody.
#[test]
fn chromium_journey() {
    let farm = farm(1, true);
    let driver = webdriver::Driver::start();
    let browser = driver.browser(1000, 800);
    let php1 = farm.node_url("php1");
    browser.goto(&format!("{php1}/"));
    wait_source(&browser, "Not logged in.");
    browser.type_into("#name", "erin");
    browser.click("#login");
    // The login's 303 comes back to php1's own address, so php1 serves the page.
    let page = wait_source(&browser, "<b id=\"user\">erin</b>");
    assert_eq!(node_of(&page), "php1", "{page}");

    // The cookie is the host's (ports do not scope cookies), so the load balancer's door
    // carries the same login. Reload until every node has served a page, counting once on
    // each newly seen node (the count's 303 lands on the next node).
    let rr = farm.round_robin_url();
    let mut seen = BTreeSet::new();
    let mut clicks = 0;
    for _ in 0..40 {
        browser.goto(&format!("{rr}/"));
        let page = wait_source(&browser, "<b id=\"user\">erin</b>");
        let node = node_of(&page);
        assert!(
            page.contains(&format!("<b id=\"count\">{clicks}</b>")),
            "{node} shows count {clicks}: {page}"
        );
        if seen.insert(node) {
            browser.click("#count-button");
            clicks += 1;
            wait_source(&browser, &format!("<b id=\"count\">{clicks}</b>"));
        }
        if seen.len() == farm.node_names().len() {
            break;
        }
    }
    let all: BTreeSet<String> = farm.node_names().iter().map(|n| n.to_string()).collect();
    assert_eq!(seen, all, "the browser was served by every node");

    browser.click("#logout");
    wait_source(&browser, "Not logged in.");
    for node in farm.node_names() {
        browser.goto(&format!("{}/", farm.node_url(node)));
        let page = wait_source(&browser, "Not logged in.");
        assert_eq!(node_of(&page), node, "{page}");
    }
    println!("chromium: logged in on php1, served by {seen:?} with {clicks} counts, logged out");
}

/// The same ring with PHP's strict mode on, as the other farms run: with one sessiond down,
/// the PHP nodes log out exactly the users whose session's primary (on libmemcached's ketama
/// ring, as the middleware computes it) is the dead node, because php-memcached checks an id
/// with an `exist` on the primary alone; the Rust node, which reads the first live copy,
/// logs out nobody. This records php-memcached's behaviour that docs/farm.md describes.
#[test]
fn two_sessiond_nodes_with_strict_mode() {
    let mut farm = farm(2, true);
    let rr = farm.round_robin_url();
    let servers = format!(
        "{},{}",
        farm.sessiond_memcache(0),
        farm.sessiond_memcache(1)
    );
    let mut ring = sessiond_session::PhpSessionConfig::from_save_path(&servers).expect("a ring");
    ring.memcached.replicas = 1;
    let ring = sessiond_session::PhpSessionStore::new(ring).expect("a ring");
    let users: Vec<(String, Client)> = (0..12)
        .map(|i| {
            let name = format!("s{i}");
            let mut client = Client::new();
            client.login(&rr, &name);
            (name, client)
        })
        .collect();
    farm.kill_sessiond(0);
    let mut expected_out = BTreeSet::new();
    let mut php_out = BTreeSet::new();
    for (name, client) in &users {
        let id = client.cookie.clone().expect("a session cookie");
        if ring.server_index(&id) == 0 {
            expected_out.insert(name.clone());
        }
        let php = client.clone().get(&farm.node_url("php1"), "/whoami");
        assert_eq!(php.status, 200, "{php:?}");
        match php.user() {
            Some(user) => assert_eq!(user, name),
            None => {
                php_out.insert(name.clone());
            }
        }
        if farm.node_names().contains(&"rust") {
            let rust = client.clone().get(&farm.node_url("rust"), "/whoami");
            assert_user(&rust, Some(name), &farm, "the Rust node, sessiond1 down");
        }
    }
    assert_eq!(
        php_out, expected_out,
        "PHP with strict mode logs out the users whose primary is the dead node"
    );
    println!(
        "ring with strict mode: sessiond1 down: PHP logged out {} of {} users (those whose \
         primary it is), the Rust node none",
        php_out.len(),
        users.len()
    );
}
