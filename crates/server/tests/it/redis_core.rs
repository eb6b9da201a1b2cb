//! The connection-level half of `CLIENT REPLY` and `CLIENT KILL` on the real binary, through
//! the harness's raw RESP client: replies dropped and resumed exactly as asked, a killed
//! connection closed at once although it sent nothing, and `TYPE pubsub` naming exactly the
//! connections with subscriptions (RESP2 or RESP3). With `SESSIOND_IT_TARGET=redis` the
//! same tests run against redis-server.

use std::time::Duration;

use sessiond_test_harness::{Resp, RespClient, RespServer};

/// Asserts that the server closes `killed` (which sent nothing since) within 10 s.
fn assert_closed(mut killed: RespClient) {
    killed.set_read_timeout(Duration::from_secs(10));
    match killed.try_read() {
        Err(e) => assert_ne!(
            e.kind(),
            std::io::ErrorKind::WouldBlock,
            "the killed connection was not closed"
        ),
        Ok(reply) => panic!("the killed connection got {reply}"),
    }
}

#[test]
fn client_reply_drops_replies_and_client_kill_closes_the_connection() {
    let server = RespServer::start();
    server.header("CLIENT REPLY and CLIENT KILL");
    let mut a = server.client(None);
    let mut b = server.client(None);

    // SKIP drops its own reply and the next command's: the first reply read is GET's.
    a.send(&[b"CLIENT", b"REPLY", b"SKIP"]);
    a.send(&[b"SET", b"k", b"v"]);
    a.send(&[b"GET", b"k"]);
    assert_eq!(a.read().value, Resp::Bulk(b"v".to_vec()));
    // OFF drops everything until ON, whose +OK is the next reply.
    a.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    a.send(&[b"SET", b"k", b"w"]);
    a.send(&[b"GET", b"k"]);
    a.send(&[b"CLIENT", b"REPLY", b"ON"]);
    assert_eq!(a.read().value, Resp::Simple("OK".into()));
    assert_eq!(a.get("k").as_deref(), Some(&b"w"[..]));

    let id = match b.call(&["CLIENT", "ID"]).value {
        Resp::Int(id) => id.to_string(),
        other => panic!("CLIENT ID answered {other:?}"),
    };
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", &id]).value,
        Resp::Int(1),
        "{}",
        server.diagnostics()
    );
    // b sent nothing: it learns of the kill only from the connection closing.
    assert_closed(b);
    assert_eq!(a.call(&["CLIENT", "KILL", "ID", &id]).value, Resp::Int(0));
    assert_eq!(a.call(&["PING"]).value, Resp::Simple("PONG".into()));
}

/// The ids in a `CLIENT LIST` reply.
fn listed_ids(reply: Resp) -> Vec<i64> {
    let text = match reply {
        Resp::Bulk(text) | Resp::Verbatim(_, text) => String::from_utf8(text).unwrap(),
        other => panic!("CLIENT LIST answered {other:?}"),
    };
    let mut ids: Vec<i64> = text
        .lines()
        .filter_map(|line| line.strip_prefix("id="))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    ids
}

/// `CLIENT LIST TYPE` and `CLIENT KILL TYPE`: `pubsub` is every connection with a
/// subscription, a RESP2 one in subscribed mode and a RESP3 one alike; `normal` the others,
/// including one that subscribed and unsubscribed again.
#[test]
fn client_type_pubsub_names_the_subscribed_connections() {
    let server = RespServer::start();
    server.header("CLIENT LIST TYPE and CLIENT KILL TYPE pubsub");
    let mut admin = server.client(None);
    let id = |c: &mut RespClient| match c.call(&["CLIENT", "ID"]).value {
        Resp::Int(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    };
    let admin_id = id(&mut admin);
    let mut resp2 = server.client(None);
    let resp2_id = id(&mut resp2);
    resp2.send(&[b"SUBSCRIBE", b"news"]);
    assert!(matches!(resp2.read().value, Resp::Array(_)));
    let mut resp3 = server.client(None);
    let resp3_id = id(&mut resp3);
    assert!(matches!(resp3.call(&["HELLO", "3"]).value, Resp::Map(_)));
    resp3.send(&[b"PSUBSCRIBE", b"news.*"]);
    assert!(matches!(resp3.read().value, Resp::Push(_)));
    let mut left = server.client(None);
    let left_id = id(&mut left);
    left.send(&[b"SUBSCRIBE", b"news"]);
    left.read();
    left.send(&[b"UNSUBSCRIBE"]);
    left.read();
    assert_eq!(left.call(&["PING"]).value, Resp::Simple("PONG".into()));

    let mut subscribed = vec![resp2_id, resp3_id];
    subscribed.sort();
    assert_eq!(
        listed_ids(admin.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).value),
        subscribed,
        "{}",
        server.diagnostics()
    );
    let mut normal = vec![admin_id, left_id];
    normal.sort();
    assert_eq!(
        listed_ids(admin.call(&["CLIENT", "LIST", "TYPE", "normal"]).value),
        normal
    );
    assert_eq!(
        admin.call(&["CLIENT", "KILL", "TYPE", "pubsub"]).value,
        Resp::Int(2)
    );
    for killed in [resp2, resp3] {
        assert_closed(killed);
    }
    assert_eq!(left.call(&["PING"]).value, Resp::Simple("PONG".into()));
    assert_eq!(
        listed_ids(admin.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).value),
        Vec::<i64>::new()
    );
}
