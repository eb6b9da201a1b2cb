//! The admin page: server-rendered HTML under `/admin` on the HTTP listener, for an
//! operator's browser. No JavaScript at all; the chart is inline SVG, the stylesheet is
//! `/admin/style.css`.
//!
//! - `GET /admin`: sessions and users online per family, a chart of the last hour (one
//!   sample a minute, `Sessions::sample`, taken by the expirer's tick), the journal and the
//!   memory budget, and the last lifecycle events (`Sessions::recent`, keys hashed).
//! - `GET /admin/users?user=42`: search by user: that user's sessions (family, database, key
//!   hash, created, last seen, expires), each with a revoke button, and "revoke all".
//! - `POST /admin/revoke` (user, optional session key hash, token): a confirmation page,
//!   "Revoke N sessions of user 42?", whose form posts to
//! - `POST /admin/revoke/confirm`: revokes (acknowledged once the journal has it, as the API
//!   is) and shows the user's page again with what was done.
//!
//! Session keys never appear on a page: a session is named by its key's hash
//! (`super::key_hash`), and the confirmation finds the key again among the user's sessions.
//!
//! The routes are outside [`super::api::ROUTES`], which is the JSON API that
//! `docs/openapi.json` describes; HTML pages and form posts are not part of it.
//!
//! Security: the same access as the API (an admin user, HTTP Basic: the browser prompts).
//! Every page says `Content-Security-Policy: default-src 'none'; style-src 'self'; ...`
//! ([`CSP`]), `X-Frame-Options: DENY`, `Referrer-Policy: same-origin` (not `no-referrer`:
//! under `no-referrer` a browser sends `Origin: null` with a form post, which the origin
//! check below would refuse; `same-origin` still sends nothing to another site, and the
//! pages link nowhere else), `X-Content-Type-Options: nosniff`, and (with every response)
//! `Cache-Control: no-store`. A POST is refused (403) unless its `Origin` (or, without one,
//! its `Referer`) names the `Host` it was sent to and `Sec-Fetch-Site`, if sent, says
//! `same-origin`; and unless its `token` is the HMAC-SHA256, under a random key drawn once
//! per process, of the admin's name, the action (`revoke`, `confirm`), the target user and
//! the token's issue time, which the token carries in clear and which must be at most an
//! hour old ([`TOKEN_MAX_AGE_MS`]).
//! With no password configured (the page is open, on loopback only), a request must also
//! name a loopback host, against DNS rebinding.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::api::{Access, authorize, credentials};
use super::key_hash;
use crate::exec::{JOURNAL_FAILED, Shared};
use crate::sessions::{SessionInfo, Sessions};

/// The admin pages' Content-Security-Policy: nothing but this origin's stylesheet, inline
/// SVG, and forms posting back here; no scripts, no framing.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}\
header{background:#1d2733;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}\
header a{color:#fff;text-decoration:none;font-weight:600}\
header form{margin-left:auto}\
main{padding:10px 20px;max-width:1100px}\
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:10px 16px;margin:12px 0}\
h1{font-size:20px}h2{font-size:16px;margin:4px 0 8px}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e4e8ec}\
th{font-weight:600;color:#52606d}\
td.n,th.n{text-align:right}\
code{font-size:12px}\
button{cursor:pointer;padding:3px 10px}\
button.danger{background:#c62828;color:#fff;border:1px solid #8e0000;border-radius:4px}\
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}\
.notice{background:#e8f5e9;border-color:#a5d6a7}\
.muted{color:#7b8794}\
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}";

/// The admin routes, each behind the admin access check, with the page headers.
pub(crate) fn routes(shared: Arc<Shared>) -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/admin", get(overview))
        .route("/admin/users", get(user_page))
        .route("/admin/style.css", get(style))
        .route("/admin/revoke", post(confirm_page))
        .route("/admin/revoke/confirm", post(revoke))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            loopback_when_open,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (shared, Access::Admin),
            authorize,
        ))
        // Outermost, so refusals of access get the headers too.
        .layer(axum::middleware::from_fn(page_headers))
}

/// With no password configured (protected mode: loopback only, nobody logs in), only a
/// request for a loopback host (`localhost`, `127.0.0.1`, `[::1]`, with any port) is
/// served, so a web page cannot reach the open page through DNS rebinding (its own name
/// resolving to 127.0.0.1, which would make it same-origin with the page).
async fn loopback_when_open(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !shared.users.required() && !super::loopback_host(request.headers()) {
        return forbidden(
            "With no password configured the admin page answers only for localhost,              127.0.0.1 or [::1].",
        );
    }
    next.run(request).await
}

/// The headers of every admin response (and refusal).
async fn page_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

// HTML.

/// `s` safe in HTML text and in a quoted attribute.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a URL query value.
fn query_value(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A whole page: the header with the search form, then `body` (already escaped HTML).
fn page(status: StatusCode, title: &str, user: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · sessiond admin</title>\
         <link rel=\"stylesheet\" href=\"/admin/style.css\"></head><body>\
         <header><a href=\"/admin\">sessiond admin</a><a href=\"/admin\">Overview</a>\
         <form method=\"get\" action=\"/admin/users\">\
         <input id=\"user\" name=\"user\" placeholder=\"user id\" value=\"{user}\" required> \
         <button id=\"search\" type=\"submit\">Find sessions</button></form></header>\
         <main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title),
        user = escape(user),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        "",
        &format!("<section><p>{}</p></section>", escape(message)),
    )
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn style() -> impl std::future::Future<Output = Response> {
    std::future::ready(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response())
}

// The overview.

async fn overview(State(shared): State<Arc<Shared>>) -> Response {
    let now = crate::clock::now_ms();
    let mut body = String::new();
    match shared.sessions.as_deref() {
        Some(sessions) => {
            sessions.sample(now, true);
            body.push_str("<div class=\"grid\">");
            families_section(&mut body, sessions);
            state_section(&mut body, &shared, sessions);
            body.push_str("</div>");
            chart_section(&mut body, sessions, now);
            events_section(&mut body, sessions);
        }
        None => {
            body.push_str(
                "<section><p>The session layer is off (start sessiond with \
                 <code>--sessions on</code>).</p></section>",
            );
            body.push_str("<div class=\"grid\">");
            state_only(&mut body, &shared);
            body.push_str("</div>");
        }
    }
    page(StatusCode::OK, "Overview", "", &body)
}

fn families_section(out: &mut String, sessions: &Sessions) {
    out.push_str(
        "<section id=\"online\"><h2>Online</h2><table><tr><th>Family</th>\
         <th class=\"n\">Sessions</th><th class=\"n\">Users</th></tr>",
    );
    for (i, family) in sessions.families().iter().enumerate() {
        let counts = sessions.counts(Some(i as u16));
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&family.name),
            counts.sessions,
            counts.users
        );
    }
    let all = sessions.counts(None);
    let _ = write!(
        out,
        "<tr><th>All</th><th class=\"n\" id=\"sessions-online\">{}</th>\
         <th class=\"n\" id=\"users-online\">{}</th></tr></table></section>",
        all.sessions, all.users
    );
}

fn state_section(out: &mut String, shared: &Shared, sessions: &Sessions) {
    out.push_str("<section id=\"state\"><h2>Journal and memory</h2><table>");
    state_rows(out, shared);
    let _ = write!(
        out,
        "<tr><th>Session index</th><td>{}</td></tr>\
         <tr><th>Sessions revoked</th><td>{}</td></tr>",
        bytes(sessions.bytes()),
        sessions
            .stats
            .revoked
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    out.push_str("</table></section>");
}

fn state_only(out: &mut String, shared: &Shared) {
    out.push_str("<section id=\"state\"><h2>Journal and memory</h2><table>");
    state_rows(out, shared);
    out.push_str("</table></section>");
}

fn state_rows(out: &mut String, shared: &Shared) {
    match &shared.journal {
        Some(journal) if journal.is_poisoned() => {
            let _ = write!(
                out,
                "<tr><th>Journal</th><td class=\"bad\">failed: {}</td></tr>\
                 <tr><th></th><td>{}</td></tr>",
                escape(&journal.poison_reason().unwrap_or_default()),
                escape(JOURNAL_FAILED)
            );
        }
        Some(journal) => {
            let _ = write!(
                out,
                "<tr><th>Journal</th><td class=\"ok\">writing</td></tr>\
                 <tr><th>Fsync</th><td>{}</td></tr>",
                escape(&format!("{:?}", journal.policy()).to_lowercase())
            );
        }
        None => out.push_str("<tr><th>Journal</th><td class=\"muted\">none</td></tr>"),
    }
    if let Some(journal) = &shared.journal {
        let segment = journal
            .stats
            .segment_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let _ = write!(
            out,
            "<tr><th>Journal segments</th><td>{}</td></tr>",
            bytes(segment)
        );
    }
    let budget = shared.store.budget();
    let limit = budget.limit();
    let limit = if limit == 0 {
        "unlimited".to_string()
    } else {
        bytes(limit)
    };
    let _ = write!(
        out,
        "<tr><th>Memory used</th><td>{} of {}</td></tr>",
        bytes(budget.used()),
        limit
    );
}

/// The chart: sessions (and users) online, one point a minute over the last hour.
fn chart_section(out: &mut String, sessions: &Sessions, now: u64) {
    const W: u64 = 720;
    const H: u64 = 160;
    const LEFT: u64 = 40;
    const BOTTOM: u64 = 20;
    let history = sessions.history();
    let minute = now / 60_000;
    let first = minute.saturating_sub(59);
    let top = history
        .iter()
        .map(|s| s.sessions.max(s.users))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = W - LEFT - 10;
    let plot_h = H - BOTTOM - 10;
    let point = |m: u64, v: u64| {
        let x = LEFT + (m.saturating_sub(first)) * plot_w / 59;
        let y = 10 + plot_h - v * plot_h / top;
        (x, y)
    };
    let line = |pick: fn(&crate::sessions::Sample) -> u64| {
        history
            .iter()
            .filter(|s| s.minute >= first)
            .map(|s| {
                let (x, y) = point(s.minute, pick(s));
                format!("{x},{y}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = write!(
        out,
        "<section id=\"chart\"><h2>Online over the last hour</h2>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"sessions and users online per minute\">\
         <line x1=\"{LEFT}\" y1=\"10\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"#9aa5b1\"/>\
         <line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{right}\" y2=\"{base}\" stroke=\"#9aa5b1\"/>\
         <text x=\"{tx}\" y=\"16\" font-size=\"11\" text-anchor=\"end\">{top}</text>\
         <text x=\"{tx}\" y=\"{base}\" font-size=\"11\" text-anchor=\"end\">0</text>\
         <text x=\"{LEFT}\" y=\"{label}\" font-size=\"11\">−60 min</text>\
         <text x=\"{right}\" y=\"{label}\" font-size=\"11\" text-anchor=\"end\">now</text>\
         <polyline fill=\"none\" stroke=\"#1e88e5\" stroke-width=\"2\" points=\"{sessions}\"/>\
         <polyline fill=\"none\" stroke=\"#fb8c00\" stroke-width=\"2\" stroke-dasharray=\"4 3\" \
         points=\"{users}\"/>",
        base = 10 + plot_h,
        right = LEFT + plot_w,
        tx = LEFT - 4,
        label = H - 4,
        sessions = line(|s| s.sessions),
        users = line(|s| s.users),
    );
    // A lone sample (a server up for less than two minutes) is a dot, not a line.
    for s in history.iter().filter(|s| s.minute >= first) {
        let (x, y) = point(s.minute, s.sessions);
        let _ = write!(
            out,
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"#1e88e5\"/>"
        );
    }
    out.push_str(
        "</svg><p class=\"muted\">Blue: sessions; orange, dashed: users. \
         One sample a minute.</p></section>",
    );
}

fn events_section(out: &mut String, sessions: &Sessions) {
    let events = sessions.recent();
    out.push_str("<section id=\"events\"><h2>Last events</h2>");
    if events.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Time (UTC)</th><th>Event</th><th>Family</th><th>User</th>\
         <th>Database</th><th>Key hash</th></tr>",
    );
    for e in events {
        let user = match &e.user {
            Some(user) => format!(
                "<a href=\"/admin/users?user={}\">{}</a>",
                escape(&query_value(user)),
                escape(user)
            ),
            None => "<span class=\"muted\">none</span>".to_string(),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{user}</td><td>{}</td>\
             <td><code>#{}</code></td></tr>",
            time(e.at),
            escape(e.event),
            escape(&e.family),
            e.db,
            escape(&e.key_hash)
        );
    }
    out.push_str("</table></section>");
}

// A user's sessions.

#[derive(Debug, Default, Deserialize)]
struct UserQuery {
    #[serde(default)]
    user: String,
}

fn layer_off() -> Response {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Session layer off",
        "The session layer is off (start sessiond with --sessions on).",
    )
}

async fn user_page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<UserQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Unknown parameters.",
        );
    };
    let Some(sessions) = shared.sessions.as_deref() else {
        return layer_off();
    };
    let admin = admin_name(&shared, &headers);
    user_sessions(sessions, &admin, q.user.trim(), None)
}

/// The page of `user`'s sessions, after `notice` if any.
fn user_sessions(sessions: &Sessions, admin: &str, user: &str, notice: Option<&str>) -> Response {
    let mut body = String::new();
    if let Some(notice) = notice {
        let _ = write!(
            body,
            "<section class=\"notice\" id=\"notice\"><p>{}</p></section>",
            escape(notice)
        );
    }
    if user.is_empty() {
        body.push_str("<section><p>Enter a user id above.</p></section>");
        return page(StatusCode::OK, "Find a user's sessions", "", &body);
    }
    // One page of the listing at most; "Revoke all" still revokes every one.
    let page_of = sessions.list(user, None, None, crate::sessions::LIST_MAX);
    let (listed, more) = (page_of.sessions, page_of.next.is_some());
    let title = format!("Sessions of user {user}");
    let _ = write!(
        body,
        "<section id=\"sessions\"><h2><span id=\"count\">{}</span> session{}</h2>",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" }
    );
    if listed.is_empty() {
        body.push_str("<p class=\"muted\">This user has no live session.</p></section>");
        return page(StatusCode::OK, &title, user, &body);
    }
    body.push_str(
        "<table><tr><th>Family</th><th>Database</th><th>Device (key hash)</th>\
         <th>Created</th><th>Last seen</th><th>Expires</th><th></th></tr>",
    );
    let token = token(admin, "revoke", user, crate::clock::now_ms());
    for info in &listed {
        let hash = key_hash(&info.key);
        let _ = write!(
            body,
            "<tr class=\"session\"><td>{}</td><td>{}</td><td><code>#{}</code></td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&info.family),
            info.db,
            escape(&hash),
            time(info.created_at),
            time(info.seen_at),
            info.expires_at.map(time).unwrap_or_else(|| "never".into()),
            revoke_form(user, &hash, &token, "Revoke", "revoke-one")
        );
    }
    body.push_str("</table>");
    if more {
        let _ = write!(
            body,
            "<p class=\"muted\" id=\"truncated\">Only the oldest {} are shown.</p>",
            listed.len()
        );
    }
    body.push_str("<p>");
    body.push_str(&revoke_form(
        user,
        "",
        &token,
        &if more {
            "Revoke all sessions".to_string()
        } else {
            format!("Revoke all {} sessions", listed.len())
        },
        "revoke-all",
    ));
    body.push_str("</p></section>");
    page(StatusCode::OK, &title, user, &body)
}

fn revoke_form(user: &str, session: &str, token: &str, label: &str, id: &str) -> String {
    let id = if session.is_empty() {
        format!("class=\"danger\" id=\"{id}\"")
    } else {
        format!("class=\"danger {id}\"")
    };
    format!(
        "<form method=\"post\" action=\"/admin/revoke\">\
         <input type=\"hidden\" name=\"user\" value=\"{}\">\
         <input type=\"hidden\" name=\"session\" value=\"{}\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <button type=\"submit\" {id}>{}</button></form>",
        escape(user),
        escape(session),
        escape(token),
        escape(label)
    )
}

// Revocation.

#[derive(Debug, Deserialize)]
struct RevokeForm {
    user: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    token: String,
}

fn forbidden(why: &str) -> Response {
    message_page(StatusCode::FORBIDDEN, "Forbidden", why)
}

/// Checks a form post: same origin, and the token for `action`; the form if both hold.
fn checked(
    shared: &Shared,
    headers: &HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
    action: &str,
) -> Result<(String, RevokeForm), Box<Response>> {
    if !same_origin(headers) {
        return Err(Box::new(forbidden(
            "Cross-origin request refused: the form must be posted from this server's own page.",
        )));
    }
    let Ok(Form(form)) = form else {
        return Err(Box::new(message_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form is incomplete.",
        )));
    };
    let admin = admin_name(shared, headers);
    if !token_valid(
        &admin,
        action,
        &form.user,
        &form.token,
        crate::clock::now_ms(),
    ) {
        return Err(Box::new(forbidden(
            "The form's token is missing, wrong or over an hour old (reload the page and try \
             again).",
        )));
    }
    Ok((admin, form))
}

/// What the form names: one session of the user (by its key hash), or all of them.
fn targets(sessions: &Sessions, form: &RevokeForm) -> Vec<SessionInfo> {
    // Every one: this is what a revocation acts on, not output.
    let listed = sessions.list(&form.user, None, None, usize::MAX).sessions;
    if form.session.is_empty() {
        listed
    } else {
        listed
            .into_iter()
            .filter(|info| key_hash(&info.key) == form.session)
            .collect()
    }
}

/// `POST /admin/revoke`: asks for confirmation.
async fn confirm_page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let (admin, form) = match checked(&shared, &headers, form, "revoke") {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let Some(sessions) = shared.sessions.as_deref() else {
        return layer_off();
    };
    let found = targets(sessions, &form);
    let user = form.user.as_str();
    if found.is_empty() {
        return user_sessions(
            sessions,
            &admin,
            user,
            Some("Nothing to revoke: the session is gone already."),
        );
    }
    let question = if form.session.is_empty() {
        format!(
            "Revoke {} session{} of user {user}?",
            found.len(),
            if found.len() == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "Revoke session #{} ({}) of user {user}?",
            form.session, found[0].family
        )
    };
    let body = format!(
        "<section><p id=\"question\">{}</p><p>Each device is logged out on its next request, \
         and the sessions cannot be written again until they would have expired.</p>\
         <form method=\"post\" action=\"/admin/revoke/confirm\">\
         <input type=\"hidden\" name=\"user\" value=\"{}\">\
         <input type=\"hidden\" name=\"session\" value=\"{}\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <button type=\"submit\" class=\"danger\" id=\"confirm\">Revoke</button> \
         <a href=\"/admin/users?user={}\" id=\"cancel\">Cancel</a></form></section>",
        escape(&question),
        escape(user),
        escape(&form.session),
        escape(&token(&admin, "confirm", user, crate::clock::now_ms())),
        escape(&query_value(user)),
    );
    page(StatusCode::OK, "Confirm revocation", user, &body)
}

/// `POST /admin/revoke/confirm`: revokes, then shows the user's page.
async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let (admin, form) = match checked(&shared, &headers, form, "confirm") {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let Some(sessions) = shared.sessions.as_deref() else {
        return layer_off();
    };
    if shared.writes_refused() {
        return message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Journal failed",
            JOURNAL_FAILED,
        );
    }
    let revoked = {
        let _gate = shared.gate.read().await;
        let now = crate::clock::now_ms();
        targets(sessions, &form)
            .iter()
            .filter(|info| sessions.revoke(&shared.databases, info.db, &info.key, now))
            .count()
    };
    if revoked > 0 {
        if !shared.acknowledge_writes().await {
            return message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Journal failed",
                JOURNAL_FAILED,
            );
        }
        tracing::info!(
            revoked,
            admin,
            session = (!form.session.is_empty()).then_some(form.session.as_str()),
            "user's sessions revoked on the admin page"
        );
    }
    let notice = format!(
        "Revoked {revoked} session{} of user {}.",
        if revoked == 1 { "" } else { "s" },
        form.user
    );
    user_sessions(sessions, &admin, &form.user, Some(&notice))
}

// CSRF.

/// The logged-in admin's name ("" when no password is configured).
fn admin_name(shared: &Shared, headers: &HeaderMap) -> String {
    if !shared.users.required() {
        return String::new();
    }
    credentials(shared, headers)
        .map(|identity| identity.name.to_string())
        .unwrap_or_default()
}

/// The per-process key of the form tokens, drawn on first use.
fn secret() -> &'static ring::hmac::Key {
    static SECRET: OnceLock<ring::hmac::Key> = OnceLock::new();
    SECRET.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .expect("the system's random number generator")
    })
}

/// How long a form token stays good after its page was built: an hour, long enough for an
/// operator to read a page and confirm, short enough that a token that leaked (a proxy's
/// log, a screenshot) soon stops working.
pub(crate) const TOKEN_MAX_AGE_MS: u64 = 60 * 60 * 1000;
/// How far ahead of this process's clock an issue time may be (a clock stepped back
/// between a page and its post).
const TOKEN_CLOCK_SLACK_MS: u64 = 60 * 1000;

fn token_input(admin: &str, action: &str, user: &str, issued_at: u64) -> Vec<u8> {
    let mut input = Vec::with_capacity(admin.len() + action.len() + user.len() + 11);
    for (i, part) in [admin, action, user].iter().enumerate() {
        if i > 0 {
            input.push(0);
        }
        input.extend_from_slice(part.as_bytes());
    }
    input.push(0);
    input.extend_from_slice(&issued_at.to_be_bytes());
    input
}

/// The form token of `admin` doing `action` to `user`, issued at `now` (Unix ms):
/// `<issued_at>.<HMAC-SHA256 of the four, hex>`. The time is inside the HMAC, so it cannot
/// be changed to make an old token young.
pub(crate) fn token(admin: &str, action: &str, user: &str, now: u64) -> String {
    let tag = ring::hmac::sign(secret(), &token_input(admin, action, user, now));
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{now}.{hex}")
}

/// Whether `given` is a token of `admin` doing `action` to `user` (the HMAC checked in
/// constant time), issued at most [`TOKEN_MAX_AGE_MS`] before `now`.
fn token_valid(admin: &str, action: &str, user: &str, given: &str, now: u64) -> bool {
    let Some((issued, hex)) = given.split_once('.') else {
        return false;
    };
    if issued.is_empty() || issued.len() > 20 || !issued.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (Ok(issued_at), Some(tag)) = (issued.parse::<u64>(), unhex(hex)) else {
        return false;
    };
    let fresh = issued_at <= now.saturating_add(TOKEN_CLOCK_SLACK_MS)
        && now.saturating_sub(issued_at) <= TOKEN_MAX_AGE_MS;
    fresh
        && ring::hmac::verify(secret(), &token_input(admin, action, user, issued_at), &tag).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether a POST comes from a page of this server: `Sec-Fetch-Site`, if sent, says
/// `same-origin`, and `Origin` (or without one, `Referer`) names the `Host` it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(source) = source else {
        return false;
    };
    let Some(rest) = source
        .strip_prefix("http://")
        .or_else(|| source.strip_prefix("https://"))
    else {
        // `null` and anything else that names no origin.
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    authority.eq_ignore_ascii_case(host)
}
