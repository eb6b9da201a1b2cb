//! `SORT` and `SORT_RO`: the elements of a list, set or sorted set, ordered numerically or
//! (`ALPHA`) as bytes, optionally by other keys' values (`BY pattern`, with `->field` for a
//! hash field; a pattern without `*` skips sorting), limited, mapped through `GET patterns`
//! (`#` is the element), and returned or stored as a list (`STORE`).
//!
//! `SORT` runs holding the script gate exclusively (its row says `EXCLUSIVE`): it reads
//! other keys for `BY` and `GET` and may replace the destination, and no client sees a
//! halfway state. The reply is measured against the output limit before it is built; a
//! stored result is charged to the memory budget like any list.

use std::cmp::Ordering;

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{End, StoreError, Value};

use super::args::{Args, Handled};
use super::pubsub::{GENERIC, LIST};
use super::{Ctx, OutputBudget, error, parse_float, store_error, syntax_error};

/// The value a `BY`/`GET` pattern names for `element`: the string under the key the pattern
/// makes (its first `*` replaced by the element), or the hash field after `->`.
fn lookup(ctx: &Ctx<'_>, pattern: &[u8], element: &[u8]) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(Bytes::copy_from_slice(element));
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let arrow = pattern
        .windows(2)
        .rposition(|w| w == b"->")
        .filter(|&at| at > star && at + 2 < pattern.len());
    let key_pattern = arrow.map_or(pattern, |at| &pattern[..at]);
    let key = [&key_pattern[..star], element, &key_pattern[star + 1..]].concat();
    let value = ctx.store().get(&key, ctx.now)?.value;
    match (arrow, value) {
        (None, Value::Str(s)) => Some(s),
        (Some(at), Value::Hash(h)) => h.get(&pattern[at + 2..]).cloned(),
        _ => None,
    }
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &mut Args<'_>, read_only: bool) -> Handled {
    let key = args.bytes()?;
    let (mut by, mut gets, mut desc, mut alpha) = (None, Vec::new(), false, false);
    let mut limit: Option<(i64, i64)> = None;
    let mut store: Option<&Bytes> = None;
    while !args.is_empty() {
        if args.keyword("asc") {
            desc = false;
        } else if args.keyword("desc") {
            desc = true;
        } else if args.keyword("alpha") {
            alpha = true;
        } else if args.remaining() >= 3 && args.keyword("limit") {
            limit = Some((args.int()?, args.int()?));
        } else if !read_only && args.remaining() >= 2 && args.keyword("store") {
            store = Some(args.bytes()?);
        } else if args.remaining() >= 2 && args.keyword("by") {
            by = Some(args.bytes()?);
        } else if args.remaining() >= 2 && args.keyword("get") {
            gets.push(args.bytes()?);
        } else {
            return Err(syntax_error());
        }
    }
    let (elements, ordered) = match ctx.store().get(key, ctx.now).map(|e| e.value) {
        None => (Vec::new(), false),
        Some(Value::List(l)) => (l.iter().cloned().collect::<Vec<_>>(), false),
        Some(Value::Set(s)) => (s.iter().cloned().collect(), false),
        // A sorted set's own order is what `BY nosort` keeps.
        Some(Value::ZSet(z)) => (z.iter().map(|(_, m)| m.clone()).collect(), true),
        Some(_) => return Err(store_error(StoreError::WrongType)),
    };
    let dont_sort = by.is_some_and(|p| !p.contains(&b'*'));
    let mut items: Vec<(Bytes, Option<Bytes>, f64)> = Vec::with_capacity(elements.len());
    for element in elements {
        let weight = match by {
            Some(pattern) if !dont_sort => lookup(ctx, pattern, &element),
            _ => Some(element.clone()),
        };
        let score = if alpha || dont_sort {
            0.0
        } else {
            match &weight {
                None => 0.0,
                Some(w) => parse_float(w).ok_or_else(|| {
                    error("ERR One or more scores can't be converted into double")
                })?,
            }
        };
        items.push((element, weight, score));
    }
    if !dont_sort {
        items.sort_by(|a, b| {
            let order = if alpha {
                match (&a.1, &b.1) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.2.total_cmp(&b.2).then_with(|| a.0.cmp(&b.0))
            };
            if desc { order.reverse() } else { order }
        });
    } else if desc && ordered {
        items.reverse();
    }
    let (offset, count) = limit.unwrap_or((0, -1));
    let start = usize::try_from(offset.max(0)).unwrap_or(usize::MAX);
    let take = usize::try_from(count).unwrap_or(usize::MAX);
    let selected = items.into_iter().skip(start).take(take);
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for (element, _, _) in selected {
        if gets.is_empty() {
            out.push(Some(element));
        } else {
            for pattern in &gets {
                out.push(lookup(ctx, pattern, &element));
            }
        }
    }
    if let Some(dst) = store {
        let existed = ctx.store().remove(dst, ctx.now).is_some();
        let items: Vec<&[u8]> = out
            .iter()
            .map(|v| v.as_deref().unwrap_or_default())
            .collect();
        if !items.is_empty() {
            ctx.store()
                .list_push(dst, &items, End::Right, true, ctx.now)
                .map_err(store_error)?;
            ctx.notify(LIST, "sortstore", dst);
        } else if existed {
            ctx.notify(GENERIC, "del", dst);
        }
        return Ok(Reply::Integer(items.len() as i64).into());
    }
    OutputBudget::check(
        ctx.shared,
        out.iter().map(|v| v.as_ref().map_or(0, Bytes::len)),
    )?;
    Ok(Reply::Array(
        out.into_iter()
            .map(|v| v.map_or(Reply::Null, Reply::Bulk))
            .collect(),
    )
    .into())
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA]
/// [STORE destination]`.
pub fn sort(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    sort_generic(ctx, args, false)
}

/// `SORT_RO`: `SORT` without `STORE`.
pub fn sort_ro(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    sort_generic(ctx, args, true)
}
