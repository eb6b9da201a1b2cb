//! `SORT` and `SORT_RO`: the elements of a list, set or sorted set, sorted numerically or
//! (`ALPHA`) by bytes, optionally by weights read from other keys (`BY`), with `LIMIT`,
//! values read from other keys (`GET`), and `STORE` into a list.
//!
//! As in Redis, a `BY` pattern without `*` skips sorting, a pattern `key*->field` reads a hash
//! field, `GET #` is the element itself, and a set sorted without sorting into `STORE` is
//! sorted alphabetically anyway so the stored order is deterministic. `ALPHA` compares bytes
//! (Redis's order under the C locale). The reply is measured against the output limit
//! before it is built; every key it reads is in the selected database.

use std::cmp::Ordering;

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{StoreError, Value};

use super::args::{Args, Handled};
use super::pubsub::{GENERIC, LIST};
use super::{
    Ctx, OutputBudget, error, is, not_integer, parse_float, parse_int, store_error, syntax_error,
};

/// The value `pattern` names for `element`: `*` replaced by the element, then the string at
/// that key, or the hash field after `->`. `None` when the pattern has no `*`, or the key is
/// missing or of another type.
fn lookup(ctx: &Ctx<'_>, pattern: &[u8], element: &[u8]) -> Option<Bytes> {
    let star = pattern.iter().position(|&b| b == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&i| i + 2 < pattern.len());
    let key_pattern = arrow.map_or(pattern, |i| &pattern[..i]);
    let mut key = Vec::with_capacity(key_pattern.len() + element.len());
    key.extend_from_slice(&key_pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&key_pattern[star + 1..]);
    let value = ctx.store().get(&key, ctx.now)?.value;
    match (value, arrow) {
        (Value::Str(s), None) => Some(s),
        (Value::Hash(h), Some(i)) => h.get(&pattern[i + 2..]).cloned(),
        _ => None,
    }
}

struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<&'a Bytes>,
    by: Option<&'a Bytes>,
    dont_sort: bool,
    get: Vec<&'a Bytes>,
}

fn options<'a>(args: &mut Args<'a>, read_only: bool) -> Result<Options<'a>, Reply> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        store: None,
        by: None,
        dont_sort: false,
        get: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let left = args.remaining();
        if is(arg, "asc") {
            o.desc = false;
        } else if is(arg, "desc") {
            o.desc = true;
        } else if is(arg, "alpha") {
            o.alpha = true;
        } else if is(arg, "limit") && left >= 2 {
            let start = parse_int(args.bytes()?).ok_or_else(not_integer)?;
            let count = parse_int(args.bytes()?).ok_or_else(not_integer)?;
            o.limit = Some((start, count));
        } else if is(arg, "store") && left >= 1 && !read_only {
            o.store = Some(args.bytes()?);
        } else if is(arg, "by") && left >= 1 {
            let pattern = args.bytes()?;
            o.dont_sort = !pattern.contains(&b'*');
            o.by = Some(pattern);
        } else if is(arg, "get") && left >= 1 {
            o.get.push(args.bytes()?);
        } else {
            return Err(syntax_error());
        }
    }
    Ok(o)
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &mut Args<'_>, read_only: bool) -> Handled {
    let key = args.bytes()?;
    let mut o = options(args, read_only)?;
    let (mut elements, is_set): (Vec<Bytes>, bool) = match ctx.store().get(key, ctx.now) {
        None => (Vec::new(), false),
        Some(entry) => match entry.value {
            Value::List(l) => (l.iter().cloned().collect(), false),
            Value::Set(s) => (s.iter().cloned().collect(), true),
            Value::ZSet(z) => (z.iter().map(|(_, m)| m.clone()).collect(), false),
            _ => return Err(store_error(StoreError::WrongType)),
        },
    };
    if o.dont_sort && is_set && o.store.is_some() {
        // A set has no order of its own: what is stored must not depend on the hash seed.
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    if !o.dont_sort {
        // The weight of each element: its own bytes, or what `BY` reads (missing: none).
        let weights: Vec<Option<Bytes>> = elements
            .iter()
            .map(|e| match o.by {
                Some(pattern) => lookup(ctx, pattern, e),
                None => Some(e.clone()),
            })
            .collect();
        let mut keyed: Vec<(Bytes, Option<Bytes>, f64)> = Vec::with_capacity(elements.len());
        for (element, weight) in elements.into_iter().zip(weights) {
            let score = if o.alpha {
                0.0
            } else {
                match &weight {
                    None => 0.0,
                    Some(w) => parse_float(w).ok_or_else(|| {
                        error("ERR One or more scores can't be converted into double")
                    })?,
                }
            };
            keyed.push((element, weight, score));
        }
        let alpha = o.alpha;
        let by = o.by.is_some();
        keyed.sort_by(|a, b| {
            let cmp = if !alpha {
                a.2.partial_cmp(&b.2)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            } else if by {
                a.1.cmp(&b.1)
            } else {
                a.0.cmp(&b.0)
            };
            if o.desc { cmp.reverse() } else { cmp }
        });
        elements = keyed.into_iter().map(|(e, _, _)| e).collect();
    }
    let len = elements.len() as i64;
    let (start, end) = match o.limit {
        None => (0, len - 1),
        Some((start, count)) => {
            let mut start = start.max(0);
            let mut end = if count < 0 {
                len - 1
            } else {
                start.saturating_add(count - 1)
            };
            if start >= len {
                start = len - 1;
                end = len - 2;
            }
            (start, end.min(len - 1))
        }
    };
    let selected: &[Bytes] = if end >= start && start >= 0 {
        &elements[start as usize..=end as usize]
    } else {
        &[]
    };
    // What the result may cost is bounded as it is built (elements times `GET`s could be
    // far more than the source): a reply by the output limit, a stored list by the memory
    // the budget has left.
    let mut reply_budget = OutputBudget::new(ctx.shared);
    let budget = ctx.shared.store.budget();
    let mut store_left = budget.limit().saturating_sub(budget.used());
    let mut out: Vec<Option<Bytes>> = Vec::new();
    let mut add = |value: Option<Bytes>| -> Result<(), Reply> {
        let len = value.as_ref().map_or(0, Bytes::len);
        if o.store.is_some() {
            let cost = len as u64 + sessiond_store::ELEMENT_OVERHEAD;
            store_left = store_left
                .checked_sub(cost)
                .ok_or_else(|| store_error(StoreError::OutOfMemory))?;
        } else if !reply_budget.charge(len) {
            return Err(reply_budget.refusal());
        }
        out.push(value);
        Ok(())
    };
    for element in selected {
        if o.get.is_empty() {
            add(Some(element.clone()))?;
        }
        for pattern in &o.get {
            if pattern[..] == b"#"[..] {
                add(Some(element.clone()))?;
            } else {
                add(lookup(ctx, pattern, element))?;
            }
        }
    }
    match o.store {
        Some(dst) => {
            let items: Vec<Bytes> = out.into_iter().map(Option::unwrap_or_default).collect();
            let existed = ctx.store().peek(dst, ctx.now).is_some();
            let n = ctx
                .store()
                .list_replace(dst, &items, ctx.now)
                .map_err(store_error)?;
            if n > 0 {
                ctx.notify(LIST, "sortstore", dst);
            } else if existed {
                ctx.notify(GENERIC, "del", dst);
            }
            Ok(Reply::Integer(n as i64).into())
        }
        None => Ok(Reply::Array(
            out.into_iter()
                .map(|v| v.map_or(Reply::Null, Reply::Bulk))
                .collect(),
        )
        .into()),
    }
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE
/// destination]`.
pub fn sort(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    sort_generic(ctx, args, false)
}

/// `SORT_RO`: `SORT` without `STORE`.
pub fn sort_ro(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    sort_generic(ctx, args, true)
}
