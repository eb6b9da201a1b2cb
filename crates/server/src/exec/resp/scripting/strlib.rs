//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` for scripts, on the
//! budgeted matcher of [`super::pattern`] instead of Lua's C one.
//!
//! Arguments, results and errors follow Lua 5.1's `lstrlib.c`: positions are 1-based and
//! negative ones count from the end, numbers are accepted where strings are expected, `find`
//! returns the captures only when the pattern has some, `gmatch` does not treat `^` as an
//! anchor, and `gsub` takes a string (with `%0`–`%9` and `%%`), a table or a function.

use std::sync::Arc;

use mlua::{Lua, MultiValue, Value as LuaValue};

use super::ScriptRun;
use super::pattern::{self, Capture, Found, PatternError};

/// What a pattern error becomes in the script: a Lua error, or the script's abort (its time
/// is up, or `SCRIPT KILL`: whichever stopped the matcher still holds, as neither is undone
/// while the script runs).
fn lua_error(lua: &Lua, error: PatternError, run: &ScriptRun) -> mlua::Error {
    match error {
        PatternError::Malformed(message) => mlua::Error::RuntimeError(message.to_string()),
        PatternError::Stopped(_) => {
            super::stopped(lua, run.check().err().unwrap_or(super::Abort::TimeLimit))
        }
    }
}

/// The matcher's budget: the script's checks, as text.
fn budget(run: &ScriptRun) -> impl FnMut() -> Result<(), String> + '_ {
    move || run.check().map_err(|abort| abort.to_string())
}

/// Argument `n` (1-based) of `function` as bytes, coercing numbers as Lua does.
fn string_arg(lua: &Lua, args: &[LuaValue], n: usize, function: &str) -> mlua::Result<Vec<u8>> {
    let value = args.get(n - 1).cloned().unwrap_or(LuaValue::Nil);
    let type_name = value.type_name();
    match lua.coerce_string(value)? {
        Some(s) => Ok(s.as_bytes().to_vec()),
        None => Err(mlua::Error::RuntimeError(format!(
            "bad argument #{n} to '{function}' (string expected, got {type_name})"
        ))),
    }
}

/// Optional integer argument `n` of `function`.
fn int_arg(
    lua: &Lua,
    args: &[LuaValue],
    n: usize,
    function: &str,
    default: i64,
) -> mlua::Result<i64> {
    match args.get(n - 1).cloned().unwrap_or(LuaValue::Nil) {
        LuaValue::Nil => Ok(default),
        value => {
            let type_name = value.type_name();
            lua.coerce_integer(value)?.ok_or_else(|| {
                mlua::Error::RuntimeError(format!(
                    "bad argument #{n} to '{function}' (number expected, got {type_name})"
                ))
            })
        }
    }
}

/// Lua 5.1's `posrelat` and clamping: a 1-based, possibly negative start as a 0-based
/// offset within `len`.
fn start_offset(init: i64, len: usize) -> usize {
    let pos = if init < 0 {
        init + len as i64 + 1
    } else {
        init
    };
    (pos.max(1) as usize - 1).min(len)
}

/// One capture as a Lua value.
fn capture_value(lua: &Lua, subject: &[u8], capture: Capture) -> mlua::Result<LuaValue> {
    Ok(match capture {
        Capture::Position(at) => LuaValue::Integer((at + 1) as _),
        Capture::Span(start, end) => LuaValue::String(lua.create_string(&subject[start..end])?),
    })
}

fn captures(lua: &Lua, subject: &[u8], found: &Found) -> mlua::Result<MultiValue> {
    found
        .captures
        .iter()
        .map(|&c| capture_value(lua, subject, c))
        .collect()
}

/// `string.find` (`find`) and `string.match` (`!find`).
fn find_or_match(
    lua: &Lua,
    args: MultiValue,
    deadline: &ScriptRun,
    find: bool,
) -> mlua::Result<MultiValue> {
    let name = if find { "find" } else { "match" };
    let args: Vec<LuaValue> = args.into_iter().collect();
    let subject = string_arg(lua, &args, 1, name)?;
    let pat = string_arg(lua, &args, 2, name)?;
    let init = start_offset(int_arg(lua, &args, 3, name, 1)?, subject.len());
    let plain = args
        .get(3)
        .is_some_and(|v| !matches!(v, LuaValue::Nil | LuaValue::Boolean(false)));
    if find && (plain || pattern::is_plain(&pat)) {
        return Ok(match pattern::find_plain(&subject, &pat, init) {
            Some(at) => MultiValue::from_iter([
                LuaValue::Integer((at + 1) as _),
                LuaValue::Integer((at + pat.len()) as _),
            ]),
            None => MultiValue::from_iter([LuaValue::Nil]),
        });
    }
    let mut budget = budget(deadline);
    let Some(found) = pattern::find(&subject, &pat, init, &mut budget)
        .map_err(|e| lua_error(lua, e, deadline))?
    else {
        return Ok(MultiValue::from_iter([LuaValue::Nil]));
    };
    if !find {
        return captures(lua, &subject, &found);
    }
    let mut out = MultiValue::from_iter([
        LuaValue::Integer((found.start + 1) as _),
        LuaValue::Integer(found.end as _),
    ]);
    if found.has_captures {
        out.extend(captures(lua, &subject, &found)?);
    }
    Ok(out)
}

/// `string.gmatch`: an iterator over successive matches.
fn gmatch(lua: &Lua, args: MultiValue, deadline: Arc<ScriptRun>) -> mlua::Result<mlua::Function> {
    let args: Vec<LuaValue> = args.into_iter().collect();
    let subject = string_arg(lua, &args, 1, "gmatch")?;
    let pat = string_arg(lua, &args, 2, "gmatch")?;
    let mut next = 0;
    lua.create_function_mut(move |lua, ()| {
        let mut budget = budget(&deadline);
        let mut from = next;
        while from <= subject.len() {
            if let Some(found) = pattern::match_at(&subject, &pat, from, &mut budget)
                .map_err(|e| lua_error(lua, e, &deadline))?
            {
                // An empty match moves on by one, so the iteration ends.
                next = if found.end == from {
                    found.end + 1
                } else {
                    found.end
                };
                return captures(lua, &subject, &found);
            }
            from += 1;
        }
        next = from;
        Ok(MultiValue::from_iter([LuaValue::Nil]))
    })
}

/// `string.gsub`.
fn gsub(lua: &Lua, args: MultiValue, deadline: &ScriptRun) -> mlua::Result<(mlua::LuaString, i64)> {
    let args: Vec<LuaValue> = args.into_iter().collect();
    let subject = string_arg(lua, &args, 1, "gsub")?;
    let pat = string_arg(lua, &args, 2, "gsub")?;
    let replacement = args.get(2).cloned().unwrap_or(LuaValue::Nil);
    if !matches!(
        replacement,
        LuaValue::String(_)
            | LuaValue::Integer(_)
            | LuaValue::Number(_)
            | LuaValue::Table(_)
            | LuaValue::Function(_)
    ) {
        return Err(mlua::Error::RuntimeError(
            "bad argument #3 to 'gsub' (string/function/table expected)".into(),
        ));
    }
    let template = match &replacement {
        LuaValue::Table(_) | LuaValue::Function(_) => None,
        _ => Some(string_arg(lua, &args, 3, "gsub")?),
    };
    let max = int_arg(lua, &args, 4, "gsub", subject.len() as i64 + 1)?;
    let (anchored, pat) = match pat.strip_prefix(b"^") {
        Some(rest) => (true, rest.to_vec()),
        None => (false, pat),
    };
    let mut budget = budget(deadline);
    let mut out = Vec::with_capacity(subject.len());
    let mut at = 0;
    let mut count = 0i64;
    while count < max {
        let found = pattern::match_at(&subject, &pat, at, &mut budget)
            .map_err(|e| lua_error(lua, e, deadline))?;
        if let Some(found) = &found {
            count += 1;
            let whole = &subject[found.start..found.end];
            match &template {
                Some(template) => expand(lua, template, &subject, found, &mut out)?,
                None => {
                    let value = match &replacement {
                        LuaValue::Function(f) => {
                            f.call::<LuaValue>(captures(lua, &subject, found)?)?
                        }
                        LuaValue::Table(t) => {
                            let key = capture_value(lua, &subject, found.captures[0])?;
                            t.get::<LuaValue>(key)?
                        }
                        _ => LuaValue::Nil,
                    };
                    match value {
                        LuaValue::Nil | LuaValue::Boolean(false) => out.extend_from_slice(whole),
                        LuaValue::String(s) => out.extend_from_slice(&s.as_bytes()),
                        LuaValue::Integer(_) | LuaValue::Number(_) => {
                            let text = lua.coerce_string(value)?.map(|s| s.as_bytes().to_vec());
                            out.extend_from_slice(&text.unwrap_or_default());
                        }
                        other => {
                            return Err(mlua::Error::RuntimeError(format!(
                                "invalid replacement value (a {})",
                                other.type_name()
                            )));
                        }
                    }
                }
            }
        }
        match found {
            Some(found) if found.end > at => at = found.end,
            _ if at < subject.len() => {
                out.push(subject[at]);
                at += 1;
            }
            _ => break,
        }
        if anchored {
            break;
        }
        // Output larger than the script's memory is refused by the Lua allocator when the
        // string is created; check the time (and a kill) here, since the loop runs outside
        // the VM.
        deadline.check().map_err(|a| super::stopped(lua, a))?;
    }
    out.extend_from_slice(&subject[at.min(subject.len())..]);
    Ok((lua.create_string(&out)?, count))
}

/// Appends a `gsub` template with `%0`–`%9` and `%%` expanded.
fn expand(
    lua: &Lua,
    template: &[u8],
    subject: &[u8],
    found: &Found,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    let mut bytes = template.iter();
    while let Some(&c) = bytes.next() {
        if c != b'%' {
            out.push(c);
            continue;
        }
        match bytes.next() {
            None => {}
            Some(&d) if !d.is_ascii_digit() => out.push(d),
            Some(b'0') => out.extend_from_slice(&subject[found.start..found.end]),
            Some(&d) => {
                let index = usize::from(d - b'1');
                let capture = if found.has_captures {
                    found.captures.get(index).copied()
                } else if index == 0 {
                    Some(Capture::Span(found.start, found.end))
                } else {
                    None
                };
                let capture = capture
                    .ok_or_else(|| mlua::Error::RuntimeError("invalid capture index".into()))?;
                match capture_value(lua, subject, capture)? {
                    LuaValue::String(s) => out.extend_from_slice(&s.as_bytes()),
                    LuaValue::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Replaces the pattern functions of the `string` table with these.
pub fn install(lua: &Lua, string: &mlua::Table, deadline: &Arc<ScriptRun>) -> mlua::Result<()> {
    let d = deadline.clone();
    string.raw_set(
        "find",
        lua.create_function(move |lua, args| find_or_match(lua, args, &d, true))?,
    )?;
    let d = deadline.clone();
    string.raw_set(
        "match",
        lua.create_function(move |lua, args| find_or_match(lua, args, &d, false))?,
    )?;
    let d = deadline.clone();
    string.raw_set(
        "gmatch",
        lua.create_function(move |lua, args| gmatch(lua, args, d.clone()))?,
    )?;
    let d = deadline.clone();
    string.raw_set(
        "gsub",
        lua.create_function(move |lua, args| gsub(lua, args, &d))?,
    )?;
    Ok(())
}
