//! sessiond's session layer sees the middleware's sessions: `RedisStore` on sessiond keeps
//! each session as a hash at `sess:{<id>}` whose field `r` is the record, which is the
//! server's `sessiond` session family, and a `user_id` in the session's data is its user.
//! Two devices log in as alice through the test app; `SESSION.LIST alice` shows both under
//! `sessiond`, and after `SESSION.REVOKE` of one, that device is logged out while the other
//! is not. (The PHP and express-session counterparts are the server's suite,
//! `crates/server/tests/it/sessions.rs`; this one lives here because it needs the
//! middleware.)

use serde_json::json;
use sessiond_session::{RedisStore, SessionConfig, SessionLayer};
use sessiond_test_harness::{Resp as Reply, RespClient};

use crate::common::{Gates, app_router, send_to, servers};

/// `SESSION.*` as an operator runs it, on a raw client; the reply's fields by name.
fn session_command(admin: &mut RespClient, args: &[&str]) -> Reply {
    let reply = admin.call(args);
    assert!(!matches!(reply.value, Reply::Error(_)), "{args:?}: {reply}");
    reply.value
}

/// The (key, id, family, user) of each session `SESSION.LIST user` gives, oldest first.
fn listed(admin: &mut RespClient, user: &str) -> Vec<[String; 4]> {
    let Reply::Array(items) = session_command(admin, &["SESSION.LIST", user]) else {
        panic!("SESSION.LIST {user} is not an array");
    };
    items
        .iter()
        .map(|item| {
            let fields = item.fields().expect("a session map");
            ["key", "id", "family", "user"].map(|name| {
                fields
                    .get(name)
                    .and_then(Reply::text)
                    .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessiond_lists_and_revokes_the_middlewares_sessions() {
    let server = servers::sessiond_resp();
    let url = servers::sessiond_resp_url(&server);
    // The default prefix, `sess:`: keys `sess:{<id>}`.
    let store = RedisStore::connect(&url)
        .await
        .expect("connect to sessiond");
    let layer = SessionLayer::new(store, SessionConfig::default().with_secure(false))
        .expect("valid config");
    let app = app_router(Gates::default()).layer(layer);
    let mut devices = Vec::new();
    for device in ["phone", "laptop"] {
        let r = send_to(&app, "POST", "/set?k=user_id&v=alice", None).await;
        assert_eq!(r.status, 200, "{device} logs in: {}", r.body);
        devices.push(r.cookie_id("id").expect("the login sets the cookie"));
    }
    let mut admin = RespClient::connect(server.listener("resp").expect("a RESP listener"));

    let want = |id: &String| {
        [
            format!("sess:{{{id}}}"),
            id.clone(),
            "sessiond".into(),
            "alice".into(),
        ]
    };
    assert_eq!(
        listed(&mut admin, "alice"),
        devices.iter().map(want).collect::<Vec<_>>(),
        "SESSION.LIST alice"
    );
    let count = session_command(&mut admin, &["SESSION.COUNT", "FAMILY", "sessiond"]);
    let count = count.fields().expect("a map");
    assert_eq!(
        (count.get("sessions"), count.get("users")),
        (Some(&Reply::Int(2)), Some(&Reply::Int(1)))
    );
    let shown = session_command(&mut admin, &["SESSION.SHOW", &want(&devices[0])[0]]);
    let data = shown
        .fields()
        .and_then(|f| f.get("data").and_then(Reply::text))
        .expect("SESSION.SHOW's data");
    let data: serde_json::Value = serde_json::from_str(&data).expect("JSON");
    assert_eq!(
        data.pointer("/data/user_id"),
        Some(&json!("alice")),
        "{data}"
    );
    println!("  two sessions of alice listed; the phone's record: {data}");

    let revoked = session_command(&mut admin, &["SESSION.REVOKE", &want(&devices[0])[0]]);
    assert_eq!(revoked, Reply::Int(1));
    let phone = send_to(&app, "GET", "/get?k=user_id", Some(&devices[0])).await;
    assert_eq!((phone.status.as_u16(), phone.body.as_str()), (200, ""));
    let laptop = send_to(&app, "GET", "/get?k=user_id", Some(&devices[1])).await;
    assert_eq!(
        (laptop.status.as_u16(), laptop.body.as_str()),
        (200, "alice")
    );
    assert_eq!(listed(&mut admin, "alice"), [want(&devices[1])]);
    println!("  the phone's session revoked: logged out; the laptop still alice");
}
