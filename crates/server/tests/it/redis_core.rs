//! The connection-level half of `CLIENT REPLY` and `CLIENT KILL` on the real binary, through
//! the harness's raw RESP client: replies dropped and resumed exactly as asked, and a killed
//! connection closed at once although it sent nothing. With `SESSIOND_IT_TARGET=redis` the
//! same test runs against redis-server.

use std::time::Duration;

use sessiond_test_harness::{Resp, RespServer};

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
    b.set_read_timeout(Duration::from_secs(10));
    match b.try_read() {
        Err(e) => assert_ne!(
            e.kind(),
            std::io::ErrorKind::WouldBlock,
            "the killed connection was not closed"
        ),
        Ok(reply) => panic!("the killed connection got {reply}"),
    }
    assert_eq!(a.call(&["CLIENT", "KILL", "ID", &id]).value, Resp::Int(0));
    assert_eq!(a.call(&["PING"]).value, Resp::Simple("PONG".into()));
}
