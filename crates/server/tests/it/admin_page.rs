//! The admin page (`/admin`) in headless Chromium, through chromedriver ([`webdriver`]):
//! a user logs in on three devices through PHP's memcached session handler; an operator
//! opens the admin page as an admin user (HTTP Basic, the credentials in the URL), finds
//! the user with the search form, sees the three sessions, revokes them all through the
//! confirmation step, and each device's next PHP request is logged out while another
//! user's session stays. The overview is then saved as a screenshot,
//! `target/tmp/admin-page.png`; with `SESSIOND_UPDATE_SCREENSHOTS=1` it also replaces
//! `docs/admin-page.png` (the one the README shows).
//!
//! [`webdriver`]: crate::webdriver

use std::path::Path;
use std::sync::Mutex;

use sessiond_test_harness::Sessiond;

use crate::php::Php;
use crate::php_memcached::{Proto, memcached_php};
use crate::sessions::{Handler, assert_logged_in, assert_logged_out, login, not_sessiond};
use crate::webdriver::Driver;

/// One browser at a time: the CI machine has two cores.
static BROWSER: Mutex<()> = Mutex::new(());

#[test]
fn an_admin_logs_a_php_user_out_everywhere_in_chromium() {
    if not_sessiond() {
        return;
    }
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let driver = Driver::start();
    let server = Sessiond::start(&["--user", "web:app:webpw", "--user", "ops:admin:opspw"]);
    let addr = server
        .listener("http")
        .unwrap_or_else(|| panic!("no HTTP listener\n{}", server.log_tail()));
    let handler = Handler::Memcached(Proto::Binary);
    let php: Php = memcached_php(&[server.memcache_addr()], Proto::Binary)
        .with("memcached.sess_sasl_username", "web")
        .with("memcached.sess_sasl_password", "webpw");
    let devices = ["phone", "laptop", "tablet"];
    let sids: Vec<String> = devices.iter().map(|d| login(&php, d, 42)).collect();
    let other = login(&php, "desk", 7);

    let browser = driver.browser(1200, 1100);
    // Log in as the admin: the credentials in the URL answer the Basic challenge, and
    // Chromium reuses them for the rest of the origin.
    browser.goto(&format!("http://ops:opspw@{addr}/admin"));
    let overview = browser.wait_for("/admin", "Online over the last hour");
    assert!(overview.contains("php-memcached"), "{overview}");
    assert!(
        browser.source().contains("id=\"sessions-online\">4<"),
        "{overview}"
    );

    // Find the user with the search form.
    browser.type_into("#user", "42");
    browser.click("#search");
    let page = browser.wait_for("/admin/users?user=42", "Sessions of user 42");
    assert!(page.contains("3 sessions"), "{page}");
    let source = browser.source();
    assert_eq!(source.matches("class=\"session\"").count(), 3, "{source}");
    for sid in sids.iter().chain([&other]) {
        assert!(!source.contains(sid.as_str()), "{sid} shown in clear");
    }
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-user-page.png"),
        browser.screenshot(),
    )
    .unwrap();

    // Revoke all, through the confirmation.
    browser.click("#revoke-all");
    browser.wait_for("/admin/revoke", "Revoke 3 sessions of user 42?");
    browser.click("#confirm");
    let done = browser.wait_for("/admin/revoke/confirm", "Revoked 3 sessions of user 42.");
    assert!(done.contains("This user has no live session."), "{done}");

    // The PHP app logs the user out on every device; the other user stays logged in.
    for (device, sid) in devices.iter().zip(&sids) {
        let reported = assert_logged_out(&php, handler, device, sid);
        println!("{device} is logged out; PHP reported: {reported}");
    }
    assert_logged_in(&php, "desk", &other, 7);

    // The overview shows the revocations among the last events.
    browser.goto(&format!("http://{addr}/admin"));
    let overview = browser.wait_for("/admin", "Last events");
    let source = browser.source();
    assert_eq!(source.matches("<td>revoked</td>").count(), 3, "{overview}");
    assert!(source.contains("id=\"sessions-online\">1<"), "{overview}");
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
    std::fs::write(&saved, &png).unwrap();
    println!("screenshot: {}", saved.display());
    if std::env::var_os("SESSIOND_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/admin-page.png");
        std::fs::write(&docs, &png).unwrap();
        println!("screenshot: {}", docs.display());
    }
    drop(browser);
    drop(driver);
}
