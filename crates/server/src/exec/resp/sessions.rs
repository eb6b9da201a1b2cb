//! The `SESSION.*` commands: the session layer (`crate::sessions`) from `redis-cli`.
//!
//! `SESSION.COUNT [FAMILY name]`, `SESSION.LIST user [FAMILY name] [CURSOR c] [COUNT n]`,
//! `SESSION.SHOW key`,
//! `SESSION.FAMILIES` read; `SESSION.REVOKE key [key …]` and
//! `SESSION.REVOKEUSER user [FAMILY name] [EXCEPT key]` need the admin role (the table says
//! so). A key is the whole key as clients write it (`memc.sess.key.<id>`), in the selected
//! database. Replies are maps (flat arrays on RESP2), times Unix milliseconds, a missing
//! deadline or user null. The HTTP API calls the same `Sessions` methods.
//!
//! Limits: `SESSION.LIST` gives at most `LIST_MAX` (1000) sessions a reply (unpaged, a user
//! with more is refused and told to page), and a reply that would not fit in the client's
//! output limit is refused before it is built (`OutputBudget`); `SESSION.SHOW` decodes at most the
//! family format's own caps; `SESSION.REVOKE` takes at most as many keys as the request
//! decoder allows arguments.

use bytes::Bytes;
use sessiond_proto_resp::Reply;

use super::args::{Args, Handled};
use super::{Ctx, OutputBudget, error, syntax_error};
use crate::sessions::{Cursor, LIST_DEFAULT, LIST_MAX, SessionInfo, Sessions, UnknownFamily};

fn text(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn layer<'a>(ctx: &'a Ctx<'_>) -> Result<&'a Sessions, Reply> {
    ctx.shared
        .sessions
        .as_deref()
        .ok_or_else(|| error("ERR the session layer is off (start sessiond with --sessions on)"))
}

/// Reads an optional `FAMILY name`.
fn family(sessions: &Sessions, args: &mut Args<'_>) -> Result<Option<u16>, Reply> {
    if !args.keyword("family") {
        return Ok(None);
    }
    let name = args.bytes()?;
    sessions.family_index(Some(name)).map_err(|UnknownFamily| {
        error(format!(
            "ERR no session family {:?} (SESSION.FAMILIES lists them)",
            String::from_utf8_lossy(name)
        ))
    })
}

fn user_arg<'a>(args: &mut Args<'a>) -> Result<&'a str, Reply> {
    std::str::from_utf8(args.bytes()?).map_err(|_| error("ERR a user id is UTF-8 text"))
}

fn time(at: Option<u64>) -> Reply {
    at.map_or(Reply::Null, |at| Reply::Integer(at as i64))
}

fn session_reply(info: &SessionInfo) -> Vec<(Reply, Reply)> {
    vec![
        (text("key"), Reply::Bulk(Bytes::copy_from_slice(&info.key))),
        (text("id"), Reply::Bulk(Bytes::copy_from_slice(&info.id))),
        (text("db"), Reply::Integer(info.db.into())),
        (text("family"), text(&info.family)),
        (text("user"), info.user.as_deref().map_or(Reply::Null, text)),
        (text("created_at"), time(Some(info.created_at))),
        (text("written_at"), time(Some(info.written_at))),
        (text("seen_at"), time(Some(info.seen_at))),
        (text("expires_at"), time(info.expires_at)),
    ]
}

/// `SESSION.COUNT [FAMILY name]`: `sessions` and distinct `users`.
pub fn count(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sessions = layer(ctx)?;
    let family = family(sessions, args)?;
    if !args.is_empty() {
        return Err(syntax_error());
    }
    let counts = sessions.counts(family);
    Ok(Reply::Map(vec![
        (text("sessions"), Reply::Integer(counts.sessions as i64)),
        (text("users"), Reply::Integer(counts.users as i64)),
    ])
    .into())
}

/// `SESSION.LIST user [FAMILY name] [CURSOR c] [COUNT n]`: the user's sessions, oldest
/// first. Without `CURSOR` or `COUNT`, an array of them all, refused past [`LIST_MAX`];
/// with either, as `SCAN` pages: `[next cursor, [sessions …]]`, at most `COUNT`
/// ([`LIST_DEFAULT`], at most [`LIST_MAX`]) from `CURSOR` (`0`, the default, is the start),
/// the next cursor `0` on the last page.
pub fn list(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sessions = layer(ctx)?;
    let user = user_arg(args)?;
    let mut family_filter = None;
    let mut cursor: Option<Option<Cursor>> = None;
    let mut count = None;
    while !args.is_empty() {
        if args.peek().is_some_and(|a| super::is(a, "family")) {
            family_filter = family(sessions, args)?;
        } else if args.keyword("cursor") {
            let text = args.bytes()?;
            cursor = Some(match &text[..] {
                b"0" => None,
                _ => Some(
                    std::str::from_utf8(text)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| error("ERR invalid cursor"))?,
                ),
            });
        } else if args.keyword("count") {
            let n = args.int()?;
            if !(1..=LIST_MAX as i64).contains(&n) {
                return Err(error(format!("ERR COUNT must be 1 to {LIST_MAX}")));
            }
            count = Some(n as usize);
        } else {
            return Err(syntax_error());
        }
    }
    let paged = cursor.is_some() || count.is_some();
    let limit = if paged {
        count.unwrap_or(LIST_DEFAULT)
    } else {
        LIST_MAX
    };
    let page = sessions.list(user, family_filter, cursor.flatten().as_ref(), limit);
    if !paged && page.next.is_some() {
        return Err(error(format!(
            "ERR user has more than {LIST_MAX} sessions; page with SESSION.LIST user CURSOR 0 COUNT n"
        )));
    }
    let mut budget = OutputBudget::new(ctx.shared);
    let mut out = Vec::new();
    for info in &page.sessions {
        let reply = Reply::Map(session_reply(info));
        if !budget.charge(reply.encoded_len(ctx.session.protocol)) {
            return Err(budget.refusal());
        }
        out.push(reply);
    }
    if !paged {
        return Ok(Reply::Array(out).into());
    }
    let next = page.next.map_or_else(|| "0".to_string(), |c| c.to_string());
    Ok(Reply::Array(vec![text(&next), Reply::Array(out)]).into())
}

/// `SESSION.SHOW key`: the session's metadata and its data decoded as JSON (`data`), or
/// why it does not decode (`error`); null if the key is no live session.
pub fn show(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sessions = layer(ctx)?;
    let key = args.bytes()?;
    if !args.is_empty() {
        return Err(syntax_error());
    }
    let db = ctx.session.db as u8;
    let Some((info, decoded)) = sessions.show(&ctx.shared.databases, db, key, ctx.now) else {
        return Ok(Reply::Null.into());
    };
    let mut fields = session_reply(&info);
    match decoded {
        Ok(json) => fields.push((text("data"), text(&json.to_string()))),
        Err(why) => fields.push((text("error"), text(&why))),
    }
    let reply = Reply::Map(fields);
    let mut budget = OutputBudget::new(ctx.shared);
    if !budget.charge(reply.encoded_len(ctx.session.protocol)) {
        return Err(budget.refusal());
    }
    Ok(reply.into())
}

/// `SESSION.FAMILIES`: each family's name, prefix, format and user path.
pub fn families(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sessions = layer(ctx)?;
    if !args.is_empty() {
        return Err(syntax_error());
    }
    let out = sessions
        .families()
        .iter()
        .enumerate()
        .map(|(i, family)| {
            let counts = sessions.counts(Some(i as u16));
            Reply::Map(vec![
                (text("name"), text(&family.name)),
                (
                    text("prefix"),
                    Reply::Bulk(Bytes::copy_from_slice(&family.prefix)),
                ),
                (text("format"), text(&family.format.to_string())),
                (
                    text("user"),
                    family
                        .user
                        .as_ref()
                        .map_or(Reply::Null, |path| text(&path.to_string())),
                ),
                (text("sessions"), Reply::Integer(counts.sessions as i64)),
                (text("users"), Reply::Integer(counts.users as i64)),
            ])
        })
        .collect();
    Ok(Reply::Array(out).into())
}

/// `SESSION.REVOKE key [key …]`: revokes each session; the number revoked.
pub fn revoke(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sessions = layer(ctx)?;
    let db = ctx.session.db as u8;
    let mut revoked = 0;
    for key in args.rest() {
        if sessions.revoke(&ctx.shared.databases, db, key, ctx.now) {
            revoked += 1;
        }
    }
    Ok(Reply::Integer(revoked).into())
}

/// `SESSION.REVOKEUSER user [FAMILY name] [EXCEPT key]`: revokes the user's sessions (all
/// but `key`: "log out my other devices"); the number revoked.
pub fn revoke_user(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sessions = layer(ctx)?;
    let user = user_arg(args)?;
    let mut family_filter = None;
    let mut except = None;
    while !args.is_empty() {
        if args.peek().is_some_and(|a| super::is(a, "family")) {
            family_filter = family(sessions, args)?;
        } else if args.keyword("except") {
            except = Some(args.bytes()?.as_ref());
        } else {
            return Err(syntax_error());
        }
    }
    let db = ctx.session.db as u8;
    let revoked = sessions.revoke_user(
        &ctx.shared.databases,
        user,
        family_filter,
        except.map(|key| (db, key)),
        ctx.now,
    );
    Ok(Reply::Integer(revoked as i64).into())
}
