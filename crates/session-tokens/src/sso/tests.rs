//! Tickets and logout fan-out against the memory store, with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use sessiond_session::{ManualClock, MemoryStore, Record, SessionId, SessionStore};

use super::*;
use crate::jwt::JwtKey;

const T0: u64 = 1_700_000_000_000;
const ISS: &str = "http://login.test";

struct Fixture {
    clock: ManualClock,
    authority: LoginAuthority,
    a: SiteClient,
    b: SiteClient,
}

fn site(name: &str) -> SiteRegistration {
    SiteRegistration {
        site: name.into(),
        callback_url: format!("http://{name}/sso/callback"),
        backchannel_logout_url: format!("http://{name}/sso/backchannel-logout"),
        secret: format!("secret-of-{name}").into_bytes(),
    }
}

fn fixture() -> Fixture {
    let clock = ManualClock::new(T0);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let key = JwtKey::ed25519("login-1", [1u8; 32]).unwrap();
    let vk = key.verify_key();
    let authority = LoginAuthority::new(Arc::new(store), key, ISS)
        .with_clock(Arc::new(clock.clone()))
        .with_site(site("a.test"))
        .with_site(site("b.test"));
    let client = |name: &str| {
        SiteClient::new(name, "http://login.test/authorize", ISS, vk.clone())
            .unwrap()
            .with_clock(Arc::new(clock.clone()))
    };
    Fixture {
        a: client("a.test"),
        b: client("b.test"),
        clock,
        authority,
    }
}

#[tokio::test]
async fn a_ticket_is_redeemed_once_by_its_site() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f
        .authority
        .issue_ticket(&sid, "b.test", "st&=")
        .await
        .unwrap();
    assert_eq!(
        t.redirect_url,
        format!(
            "http://b.test/sso/callback?ticket={}&state=st%26%3D",
            t.value
        )
    );
    let got = f.authority.redeem("b.test", &t.value).await.unwrap();
    assert_eq!(
        got,
        RedeemResponse {
            sub: "alice".into(),
            sid: sid.clone()
        }
    );
}

#[tokio::test]
async fn a_replayed_ticket_is_refused() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    f.authority.redeem("b.test", &t.value).await.unwrap();
    assert_eq!(
        f.authority.redeem("b.test", &t.value).await,
        Err(TicketError::Replayed)
    );
}

#[tokio::test]
async fn concurrent_redemptions_have_one_winner() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let a = f.authority.clone();
            let v = t.value.clone();
            tokio::spawn(async move { a.redeem("b.test", &v).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e, TicketError::Replayed),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a_ticket_for_another_site_is_refused_and_burned() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    assert_eq!(
        f.authority.redeem("a.test", &t.value).await,
        Err(TicketError::WrongSite)
    );
    // The rightful site cannot use it any more either: it has been seen by someone else.
    assert_eq!(
        f.authority.redeem("b.test", &t.value).await,
        Err(TicketError::Replayed)
    );
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    f.clock.advance(MAX_TICKET_TTL);
    assert_eq!(
        f.authority.redeem("b.test", &t.value).await,
        Err(TicketError::Expired)
    );
    // One millisecond earlier it would have worked.
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    f.clock.advance(MAX_TICKET_TTL - Duration::from_millis(1));
    assert!(f.authority.redeem("b.test", &t.value).await.is_ok());
}

#[tokio::test]
async fn ticket_lifetime_is_capped_at_30_seconds() {
    let f = fixture();
    assert!(
        f.authority
            .clone()
            .with_ticket_ttl(Duration::from_secs(31))
            .is_err()
    );
    assert!(
        f.authority
            .clone()
            .with_ticket_ttl(Duration::from_secs(10))
            .is_ok()
    );
}

#[tokio::test]
async fn forged_unknown_and_foreign_records_are_not_tickets() {
    let f = fixture();
    assert_eq!(
        f.authority.redeem("b.test", "not-a-ticket").await,
        Err(TicketError::Unknown)
    );
    assert_eq!(
        f.authority
            .redeem("b.test", SessionId::generate().as_str())
            .await,
        Err(TicketError::Unknown)
    );
    // A session id from a store shared with the session layer is not a ticket.
    let store = MemoryStore::with_clock(Arc::new(f.clock.clone()));
    let authority = LoginAuthority::new(
        Arc::new(store.clone()),
        JwtKey::ed25519("k", [1u8; 32]).unwrap(),
        ISS,
    )
    .with_clock(Arc::new(f.clock.clone()))
    .with_site(site("b.test"));
    let session = SessionId::generate();
    store
        .create(&session, &Record::new(T0), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        authority.redeem("b.test", session.as_str()).await,
        Err(TicketError::Unknown)
    );
}

#[tokio::test]
async fn unknown_sites_and_wrong_secrets_are_refused() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    assert_eq!(
        f.authority
            .issue_ticket(&sid, "evil.test", "s")
            .await
            .unwrap_err(),
        TicketError::UnknownSite
    );
    assert!(
        f.authority
            .authenticate_site("b.test", b"secret-of-b.test")
            .is_some()
    );
    assert!(
        f.authority
            .authenticate_site("b.test", b"secret-of-a.test")
            .is_none()
    );
    assert!(f.authority.authenticate_site("c.test", b"").is_none());
}

#[tokio::test]
async fn central_logout_reaches_every_site_with_a_verifiable_token() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    for site in ["a.test", "b.test", "a.test"] {
        let t = f.authority.issue_ticket(&sid, site, "s").await.unwrap();
        f.authority.redeem(site, &t.value).await.unwrap();
    }
    let calls = f.authority.logout(&sid).await.unwrap();
    let sites: Vec<&str> = calls.iter().map(|c| c.site.as_str()).collect();
    assert_eq!(sites, ["a.test", "b.test"]);
    assert_eq!(calls[0].url, "http://a.test/sso/backchannel-logout");
    assert_eq!(f.a.verify_logout_token(&calls[0].token).unwrap(), sid);
    assert_eq!(f.b.verify_logout_token(&calls[1].token).unwrap(), sid);
    // A token for a.test is no good at b.test.
    assert_eq!(
        f.b.verify_logout_token(&calls[0].token),
        Err(crate::jwt::JwtError::WrongAudience)
    );
    // The login is over: no tickets, no second fan-out.
    assert_eq!(
        f.authority
            .issue_ticket(&sid, "a.test", "s")
            .await
            .unwrap_err(),
        TicketError::LoginEnded
    );
    assert!(f.authority.logout(&sid).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_site_can_only_log_out_logins_it_takes_part_in() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    f.authority.redeem("b.test", &t.value).await.unwrap();
    assert_eq!(
        f.authority
            .logout_from_site("a.test", &sid)
            .await
            .unwrap_err(),
        TicketError::UnknownSite
    );
    assert_eq!(
        f.authority
            .logout_from_site("b.test", &sid)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_ticket_issued_before_logout_cannot_be_redeemed_after_it() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
    f.authority.logout(&sid).await.unwrap();
    assert_eq!(
        f.authority.redeem("b.test", &t.value).await,
        Err(TicketError::LoginEnded)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_racing_a_logout_is_refused_or_logged_out() {
    for _ in 0..200 {
        let f = fixture();
        let sid = f.authority.begin_login("alice").await.unwrap();
        let t = f.authority.issue_ticket(&sid, "b.test", "s").await.unwrap();
        let (a, b) = (f.authority.clone(), f.authority.clone());
        let sid2 = sid.clone();
        let redeem = tokio::spawn(async move { a.redeem("b.test", &t.value).await });
        let logout = tokio::spawn(async move { b.logout(&sid2).await });
        let (redeemed, calls) = (redeem.await.unwrap(), logout.await.unwrap().unwrap());
        match redeemed {
            // The site got a session: it must also get the logout call.
            Ok(_) => assert!(calls.iter().any(|c| c.site == "b.test")),
            Err(e) => assert_eq!(e, TicketError::LoginEnded),
        }
    }
}

#[tokio::test]
async fn logins_expire() {
    let f = fixture();
    let sid = f.authority.begin_login("alice").await.unwrap();
    assert_eq!(
        f.authority.login_user(&sid).await.unwrap().as_deref(),
        Some("alice")
    );
    f.clock.advance(Duration::from_secs(8 * 3600));
    assert_eq!(f.authority.login_user(&sid).await.unwrap(), None);
}

#[tokio::test]
async fn session_tokens_are_not_logout_tokens() {
    let f = fixture();
    // A session token signed with the same key must not be taken for a logout token.
    let issuer = crate::jwt::JwtIssuer::new(JwtKey::ed25519("login-1", [1u8; 32]).unwrap(), ISS)
        .with_clock(Arc::new(f.clock.clone()));
    let t = issuer
        .issue("alice", "b.test", Some("sid"), Default::default())
        .unwrap();
    assert_eq!(
        f.b.verify_logout_token(&t.token),
        Err(crate::jwt::JwtError::WrongType)
    );
}

#[tokio::test]
async fn app_sessions_end_together_and_late_links_are_refused() {
    let clock = ManualClock::new(T0);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let apps = AppSessions::new(Arc::new(store.clone()), Duration::from_secs(3600));
    let (s1, s2) = (SessionId::generate(), SessionId::generate());
    for s in [&s1, &s2] {
        store
            .create(s, &Record::new(T0), Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(apps.link("sid-1", s, T0).await.unwrap());
    }
    assert!(!apps.is_ended("sid-1").await.unwrap());
    assert_eq!(apps.end("sid-1", T0).await.unwrap(), 2);
    assert!(store.load(&s1).await.unwrap().is_none());
    assert!(store.load(&s2).await.unwrap().is_none());
    assert!(apps.is_ended("sid-1").await.unwrap());
    assert!(
        !apps
            .link("sid-1", &SessionId::generate(), T0)
            .await
            .unwrap()
    );
    assert_eq!(apps.end("sid-1", T0).await.unwrap(), 0);
    // A logout that arrives before any link still blocks the late link.
    assert_eq!(apps.end("sid-2", T0).await.unwrap(), 0);
    assert!(
        !apps
            .link("sid-2", &SessionId::generate(), T0)
            .await
            .unwrap()
    );
}

#[test]
fn authorize_url_and_state() {
    let f = fixture();
    assert_eq!(
        f.b.authorize_url("abc"),
        "http://login.test/authorize?site=b.test&state=abc"
    );
    let s = SiteClient::new_state();
    assert!(SiteClient::state_matches(&s, &s));
    assert!(!SiteClient::state_matches(&s, "x"));
    assert!(!SiteClient::state_matches("", ""));
}
