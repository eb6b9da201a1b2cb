//! A login carried across domains, in a real browser: headless Chromium, driven through
//! chromedriver, with `--host-resolver-rules` mapping `a.test`, `b.test` and `login.test`
//! to three axum apps on free loopback ports.
//!
//! The user logs in once on login.test (coming from a.test), then opens b.test and is
//! already logged in without typing anything; logging out on b.test logs a.test out too.
//! The same scenario runs twice: with Chromium's defaults, and with third-party cookies
//! blocked (the preference and the test flag), where the old iframe trick would fail. It
//! passes both times because nothing in the flow is third-party: every cookie is set and
//! read by the site in the address bar, and the rest happens server to server.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`CHROMIUM` and
//! `CHROMEDRIVER` override the paths); without them the test fails and names them.

mod apps;
mod client;
// The workspace's one WebDriver client (synchronous), shared with the server's suite and
// the farm; this test uses a part of it.
#[allow(dead_code)]
#[path = "../../../server/tests/it/webdriver.rs"]
mod webdriver;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sessiond_session::MemoryStore;
use sessiond_tokens::sso::SiteRegistration;
use sessiond_tokens::{JwtKey, LoginAuthority, SiteClient};
use tokio::net::TcpListener;

use apps::Counters;
use webdriver::Driver;

/// One browser at a time: the CI machine has two cores.
static BROWSER: Mutex<()> = Mutex::new(());

const LOGIN_ISS: &str = "http://login.test";

#[test]
fn login_carries_across_domains_third_party_cookies_allowed() {
    run(false);
}

#[test]
fn login_carries_across_domains_third_party_cookies_blocked() {
    run(true);
}

fn run(block_third_party_cookies: bool) {
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    // Fail early, naming the packages, before anything else starts.
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The apps run on the runtime's threads; the browser steps (blocking WebDriver calls)
    // run on this one.
    let sites = runtime.block_on(serve_sites());
    scenario(&driver, &sites, block_third_party_cookies);
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// The three apps' ports and their shared counters.
struct Sites {
    login_port: u16,
    a_port: u16,
    b_port: u16,
    counters: Arc<Counters>,
}

/// Starts login.test, a.test and b.test on free loopback ports.
async fn serve_sites() -> Sites {
    let (login_l, login_port) = listener().await;
    let (a_l, a_port) = listener().await;
    let (b_l, b_port) = listener().await;
    let counters = Arc::new(Counters::default());

    let logout_key = JwtKey::generate_ed25519("login-logout-1").unwrap();
    let logout_public = logout_key.verify_key();
    let mut authority = LoginAuthority::new(Arc::new(MemoryStore::new()), logout_key, LOGIN_ISS);
    for (site, port) in [("a.test", a_port), ("b.test", b_port)] {
        authority = authority.with_site(SiteRegistration {
            site: site.into(),
            // What the browser is sent to: the public name.
            callback_url: format!("http://{site}/sso/callback"),
            // What login.test calls: the server's real address.
            backchannel_logout_url: format!("http://127.0.0.1:{port}/sso/backchannel-logout"),
            secret: format!("{site}-secret").into_bytes(),
        });
    }
    apps::serve_login(login_l, authority, counters.clone()).await;
    for (site, l) in [("a.test", a_l), ("b.test", b_l)] {
        let client = SiteClient::new(
            site,
            "http://login.test/authorize",
            LOGIN_ISS,
            logout_public.clone(),
        )
        .unwrap();
        apps::serve_site(
            l,
            client,
            format!("http://127.0.0.1:{login_port}"),
            format!("{site}-secret"),
            counters.clone(),
        )
        .await;
    }
    Sites {
        login_port,
        a_port,
        b_port,
        counters,
    }
}

fn scenario(driver: &Driver, sites: &Sites, block_third_party_cookies: bool) {
    let Sites {
        login_port,
        a_port,
        b_port,
        ref counters,
    } = *sites;
    let mut args = vec![format!(
        "--host-resolver-rules=MAP a.test 127.0.0.1:{a_port}, MAP b.test 127.0.0.1:{b_port}, \
         MAP login.test 127.0.0.1:{login_port}, EXCLUDE localhost"
    )];
    // Set explicitly both ways: this Chromium build's default is not guaranteed (Debian's
    // chromium 156 already blocks by default), and each run must know where it stands.
    let prefs = if block_third_party_cookies {
        // The user setting "Block third-party cookies", plus the switch Chrome documents for
        // testing third-party-cookie phase-out.
        args.push("--test-third-party-cookie-phaseout".into());
        json!({ "profile": { "cookie_controls_mode": 1, "block_third_party_cookies": true } })
    } else {
        json!({ "profile": { "cookie_controls_mode": 0, "block_third_party_cookies": false } })
    };
    let browser = driver.browser_with(&args, prefs);
    let mode = cookie_controls_mode(&browser);
    if block_third_party_cookies {
        assert_eq!(mode, Some(1), "third-party cookies are not blocked");
    } else {
        assert_eq!(mode, Some(0), "third-party cookies are not allowed");
    }

    // 1. a.test has no session: a top-level redirect to login.test, which shows its form.
    browser.goto("http://a.test/");
    browser.wait_at(
        "http://login.test/authorize?site=a.test",
        "Log in to continue to a.test",
    );
    assert_eq!(counters.forms_shown.load(Ordering::SeqCst), 1);

    // 2. The user logs in once; the ticket brings them back to a.test, logged in.
    browser.type_into("#user", "alice");
    browser.type_into("#password", "wonderland");
    browser.click("#submit");
    browser.wait_at("http://a.test/", "a.test: logged in as alice");
    assert_eq!(counters.redeemed.load(Ordering::SeqCst), 1);

    // 3. b.test: logged in without typing anything (login.test's own cookie, first-party in
    //    the top-level redirect, skips the form; a second ticket is redeemed by b.test).
    browser.goto("http://b.test/");
    browser.wait_at("http://b.test/", "b.test: logged in as alice");
    assert_eq!(
        counters.forms_shown.load(Ordering::SeqCst),
        1,
        "no second login form"
    );
    assert_eq!(counters.redeemed.load(Ordering::SeqCst), 2);
    // And a.test is still logged in.
    browser.goto("http://a.test/");
    browser.wait_at("http://a.test/", "a.test: logged in as alice");

    // 4. Log out on b.test: login.test ends the login and calls both sites back.
    browser.goto("http://b.test/");
    browser.wait_at("http://b.test/", "b.test: logged in as alice");
    browser.click("#logout");
    browser.wait_at("http://b.test/logout", "b.test: logged out");
    assert_eq!(counters.backchannel_logouts.load(Ordering::SeqCst), 2);

    // 5. a.test is logged out too: its session is gone, and login.test asks for the
    //    password again instead of silently issuing a ticket.
    browser.goto("http://a.test/");
    browser.wait_at(
        "http://login.test/authorize?site=a.test",
        "Log in to continue to a.test",
    );
    assert_eq!(counters.forms_shown.load(Ordering::SeqCst), 2);
    browser.goto("http://b.test/");
    browser.wait_at(
        "http://login.test/authorize?site=b.test",
        "Log in to continue to b.test",
    );
    assert_eq!(counters.redeemed.load(Ordering::SeqCst), 2);

    // The browser closes when dropped, before the driver.
    drop(browser);
}

/// The effective "block third-party cookies" setting (`profile.cookie_controls_mode`: 0
/// allow, 1 block, 2 block in incognito only), read from Chromium's own preferences page so
/// the test knows which of the two situations it really ran in.
fn cookie_controls_mode(browser: &webdriver::Browser) -> Option<i64> {
    browser.goto("chrome://prefs-internals/");
    let text = browser.text();
    let prefs: serde_json::Value = serde_json::from_str(&text).ok()?;
    prefs["profile"]["cookie_controls_mode"]["value"].as_i64()
}
