//! Cookie and header transport: attributes, `Cache-Control: no-store`, removal cookies,
//! Max-Age refresh, the id header for APIs. Backend-independent, so in-memory only.

use std::time::Duration;

use crate::common::{Backend, Gates, login, send, send_to};
use axum::http::HeaderName;
use sessiond_session::SameSite;

#[tokio::test]
async fn default_cookie_is_secure_httponly_lax_session_cookie() {
    let b = Backend::memory();
    let config =
        sessiond_session::SessionConfig::default().with_clock(std::sync::Arc::new(b.clock.clone()));
    let node = b.node(config, false, &Gates::default()).await;
    let r = send(&node, "POST", "/set?k=a&v=b", None).await;
    let cookie = &r.set_cookies()[0];
    let id = r.cookie_id("id").unwrap();
    assert_eq!(
        cookie,
        &format!("id={id}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "no Max-Age: a browser-session cookie"
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(id.len(), 32, "192 bits, base64url");
}

#[tokio::test]
async fn configured_attributes_and_removal() {
    let b = Backend::memory();
    let config = b
        .config()
        .with_secure(true)
        .with_domain(".example.com")
        .with_path("/app")
        .with_same_site(SameSite::Strict)
        .with_max_age(Some(Duration::from_secs(3600)));
    let node = b.node(config, false, &Gates::default()).await;
    let id = login(&node, "alice").await;
    let r = send(&node, "GET", "/whoami", Some(&id)).await;
    assert!(r.set_cookies().is_empty(), "nothing due yet");
    // A persistent cookie's Max-Age restarts whenever the idle deadline does.
    b.clock.advance(Duration::from_secs(120));
    let r = send(&node, "GET", "/whoami", Some(&id)).await;
    assert_eq!(
        r.set_cookies(),
        vec![format!(
            "id={id}; Max-Age=3600; Domain=.example.com; Path=/app; Secure; HttpOnly; SameSite=Strict"
        )]
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    // Logout: a removal cookie with the same Domain and Path, or the browser keeps the old one.
    let r = send(&node, "POST", "/logout", Some(&id)).await;
    assert_eq!(
        r.set_cookies(),
        vec![
            "id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=.example.com; \
             Path=/app; Secure; HttpOnly; SameSite=Strict"
                .to_owned()
        ]
    );
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn host_prefix_and_custom_name() {
    let b = Backend::memory();
    let config = b
        .config()
        .with_secure(true)
        .with_cookie_name("sid")
        .with_host_prefix(true);
    let node = b.node(config, false, &Gates::default()).await;
    let r = send(&node, "POST", "/set?k=a&v=b", None).await;
    let id = r.cookie_id("__Host-sid").expect("prefixed name");
    assert_eq!(
        r.set_cookies()[0],
        format!("__Host-sid={id}; Path=/; Secure; HttpOnly; SameSite=Lax")
    );
    // The unprefixed cookie is not the session cookie.
    let get_a = |cookie: String| {
        let req = axum::http::Request::builder()
            .uri("/get?k=a")
            .header("cookie", cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let router = node.router.clone();
        async move {
            let res = tower::ServiceExt::oneshot(router, req).await.unwrap();
            axum::body::to_bytes(res.into_body(), 1024).await.unwrap()
        }
    };
    assert_eq!(&get_a(format!("sid={id}")).await[..], b"");
    assert_eq!(&get_a(format!("__Host-sid={id}")).await[..], b"b");
}

#[tokio::test]
async fn id_in_a_header_for_apis() {
    let b = Backend::memory();
    let header = HeaderName::from_static("x-session");
    let config = b.config().with_header(header.clone());
    let node = b.node(config, false, &Gates::default()).await;
    let r = send_to(&node.router, "POST", "/login?user=app", None).await;
    assert!(r.set_cookies().is_empty(), "no cookies in header mode");
    let id = r.headers[&header].to_str().unwrap().to_owned();
    assert_eq!(r.headers["cache-control"], "no-store");
    let req = axum::http::Request::builder()
        .uri("/whoami")
        .header(&header, &id)
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(node.router.clone(), req)
        .await
        .unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"app");
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/logout")
        .header(&header, &id)
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(node.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(
        res.headers()[&header],
        "",
        "an empty header ends the session client-side"
    );
}

#[tokio::test]
async fn invalid_configurations_are_refused() {
    let b = Backend::memory();
    let store = b.store(false).await;
    let bad = b
        .config()
        .with_host_prefix(true)
        .with_domain(".example.com");
    assert!(sessiond_session::SessionLayer::from_arc(store, bad).is_err());
}
