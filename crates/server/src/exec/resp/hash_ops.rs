//! Hash commands beyond Spring Session's: `HSETNX`, `HSTRLEN`, `HINCRBYFLOAT`,
//! `HRANDFIELD`.
//!
//! `HSETNX` and `HINCRBYFLOAT` read the field and write it back holding the script gate
//! exclusively (their rows say `EXCLUSIVE`), which makes the pair atomic for every client;
//! the write is the store's per-field `hash_set`, journaled as one element.

use bytes::Bytes;
use sessiond_proto_resp::{Protocol, Reply};
use sessiond_store::{StoreError, Value};

use super::args::{Args, Handled};
use super::pubsub::HASH;
use super::string_ops::{format_float, stored_float};
use super::{Ctx, OutputBudget, error, parse_int, sampling, store_error};

/// The hash under `key`, `None` if missing, WRONGTYPE for another type.
fn read_hash(
    ctx: &Ctx<'_>,
    key: &[u8],
) -> Result<Option<std::sync::Arc<sessiond_store::Hash>>, Reply> {
    match ctx.store().get(key, ctx.now).map(|e| e.value) {
        None => Ok(None),
        Some(Value::Hash(hash)) => Ok(Some(hash)),
        Some(_) => Err(store_error(StoreError::WrongType)),
    }
}

/// `HSETNX key field value`: 1 if the field was set, 0 if it existed.
pub fn hsetnx(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (key, field, value) = (args.bytes()?, args.bytes()?, args.bytes()?);
    if read_hash(ctx, key)?.is_some_and(|h| h.get(field).is_some()) {
        return Ok(Reply::Integer(0).into());
    }
    ctx.store()
        .hash_set(key, &[(&field[..], &value[..])], ctx.now)
        .map_err(store_error)?;
    ctx.notify(HASH, "hset", key);
    Ok(Reply::Integer(1).into())
}

/// `HSTRLEN key field`.
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let hash = read_hash(ctx, args.bytes()?)?;
    let field = args.bytes()?;
    Ok(Reply::Integer(
        hash.and_then(|h| h.get(field).map(|v| v.len() as i64))
            .unwrap_or(0),
    )
    .into())
}

/// `HINCRBYFLOAT key field increment`: the new value, as text.
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (key, field) = (args.bytes()?, args.bytes()?);
    let delta = args.float()?;
    if !delta.is_finite() {
        return Err(error("ERR value is NaN or Infinity"));
    }
    let current = match read_hash(ctx, key)?.and_then(|h| h.get(field).cloned()) {
        None => 0.0,
        Some(text) => stored_float(&text).ok_or_else(|| error("ERR hash value is not a float"))?,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(error("ERR increment would produce NaN or Infinity"));
    }
    let text = format_float(next, current.abs().max(delta.abs()));
    ctx.store()
        .hash_set(key, &[(&field[..], text.as_bytes())], ctx.now)
        .map_err(store_error)?;
    ctx.notify(HASH, "hincrbyfloat", key);
    Ok(Reply::Bulk(Bytes::from(text)).into())
}

/// `HRANDFIELD key [count [WITHVALUES]]`: one random field, or `count` distinct ones (a
/// negative count: that many, repeats allowed). The reply is measured against the output
/// limit before it is built, so a huge negative count is refused, not built.
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let count = match args.next() {
        None => None,
        Some(arg) => Some(parse_int(arg).ok_or_else(super::not_integer)?),
    };
    let with_values = match args.next() {
        None => false,
        Some(arg) if super::is(arg, "withvalues") && args.is_empty() && count.is_some() => true,
        Some(_) => return Err(super::syntax_error()),
    };
    let hash = read_hash(ctx, key)?;
    let Some(count) = count else {
        return Ok(hash
            .filter(|h| !h.is_empty())
            .map_or(Reply::Null, |h| {
                let index = sampling::below(h.len());
                Reply::Bulk(
                    h.iter()
                        .nth(index)
                        .map(|(f, _)| f.clone())
                        .unwrap_or_default(),
                )
            })
            .into());
    };
    if count == i64::MIN {
        return Err(error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    // Redis refuses a count whose pairs would overflow its reply length.
    if with_values && count < -(i64::MAX / 2) {
        return Err(error("ERR value is out of range"));
    }
    let Some(hash) = hash.filter(|h| !h.is_empty()) else {
        return Ok(Reply::Array(Vec::new()).into());
    };
    let entries: Vec<(&Bytes, &Bytes)> = hash.iter().collect();
    let picks = if count >= 0 {
        sampling::distinct(entries.len(), count as usize)
    } else {
        let wanted = count.unsigned_abs() as usize;
        // Measured before the picks are made: each pick costs at least its field.
        let mut budget = OutputBudget::new(ctx.shared);
        let shortest = entries
            .iter()
            .map(|(f, v)| f.len() + if with_values { v.len() } else { 0 })
            .min()
            .unwrap_or(0);
        for _ in 0..wanted {
            if !budget.charge(shortest) {
                return Err(budget.refusal());
            }
        }
        sampling::with_repeats(entries.len(), wanted)
    };
    let lens = picks.iter().flat_map(|&i| {
        let (f, v) = entries[i];
        [f.len(), if with_values { v.len() } else { 0 }]
    });
    OutputBudget::check(ctx.shared, lens)?;
    let resp3 = ctx.session.protocol == Protocol::Resp3;
    let mut out = Vec::with_capacity(picks.len());
    for i in picks {
        let (f, v) = entries[i];
        match (with_values, resp3) {
            (false, _) => out.push(Reply::Bulk(f.clone())),
            (true, true) => out.push(Reply::Array(vec![
                Reply::Bulk(f.clone()),
                Reply::Bulk(v.clone()),
            ])),
            (true, false) => {
                out.push(Reply::Bulk(f.clone()));
                out.push(Reply::Bulk(v.clone()));
            }
        }
    }
    Ok(Reply::Array(out).into())
}
