//! `SSCAN`, `HSCAN`, `ZSCAN`: cursors over one collection's elements.
//!
//! The cursor is a position in the order of the elements' hashes under one per-process hash
//! key, so it does not depend on how the collection is laid out: elements present for the
//! whole scan are returned at least once, however the collection grows or shrinks between
//! calls (Redis's guarantee). A step collects the next `COUNT` positions (and any element
//! tied at the last one), so each costs O(n log COUNT) over the collection, which is already
//! in memory; `MATCH` filters after the step, as in Redis. The reply is measured against the
//! output limit first, and a step that would not fit is refused.

use std::collections::BinaryHeap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use bytes::Bytes;
use sessiond_proto_resp::{Reply, double_text};
use sessiond_store::{StoreError, Value, glob_match};

use super::args::{Args, Handled};
use super::{Ctx, OutputBudget, error, store_error, syntax_error};

static POSITIONS: LazyLock<RandomState> = LazyLock::new(RandomState::new);

fn position(element: &[u8]) -> u64 {
    POSITIONS.hash_one(element)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Set,
    Hash,
    ZSet,
}

fn scan(ctx: &mut Ctx<'_>, args: &mut Args<'_>, wanted: Wanted) -> Handled {
    let key = args.bytes()?;
    let cursor = std::str::from_utf8(args.bytes()?)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| error("ERR invalid cursor"))?;
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    while !args.is_empty() {
        let option = args.word()?;
        if args.is_empty() {
            return Err(syntax_error());
        }
        match option.as_str() {
            "match" => pattern = Some(args.bytes()?),
            "count" => match args.int()? {
                n if n >= 1 => count = n as usize,
                _ => return Err(syntax_error()),
            },
            _ => return Err(syntax_error()),
        }
    }
    let value = ctx.store().get(key, ctx.now).map(|e| e.value);
    // Each element: the bytes a pattern is matched against, then what the reply shows.
    let elements: Vec<(Bytes, Option<Bytes>)> = match (wanted, value) {
        (_, None) => Vec::new(),
        (Wanted::Set, Some(Value::Set(s))) => s.iter().map(|m| (m.clone(), None)).collect(),
        (Wanted::Hash, Some(Value::Hash(h))) => h
            .iter()
            .map(|(f, v)| (f.clone(), Some(v.clone())))
            .collect(),
        (Wanted::ZSet, Some(Value::ZSet(z))) => z
            .iter()
            .map(|(score, m)| (m.clone(), Some(double_text(score))))
            .collect(),
        _ => return Err(store_error(StoreError::WrongType)),
    };
    // The `count` smallest positions at or after the cursor (a max-heap keeps them).
    let mut heap: BinaryHeap<(u64, usize)> =
        BinaryHeap::with_capacity(count.min(elements.len()) + 1);
    for (index, (element, _)) in elements.iter().enumerate() {
        let pos = position(element);
        if pos < cursor {
            continue;
        }
        heap.push((pos, index));
        if heap.len() > count {
            heap.pop();
        }
    }
    let mut step = heap.into_vec();
    step.sort_unstable();
    let last = step.last().map(|&(pos, _)| pos);
    // Elements tied at the last position come in the same step, so the next cursor skips
    // none of them.
    if let Some(last) = last {
        for (index, (element, _)) in elements.iter().enumerate() {
            if position(element) == last && !step.iter().any(|&(_, i)| i == index) {
                step.push((last, index));
            }
        }
    }
    let exhausted = elements
        .iter()
        .all(|(e, _)| last.is_none_or(|last| position(e) <= last) || position(e) < cursor);
    let next = match last {
        Some(last) if !exhausted && last < u64::MAX => last + 1,
        _ => 0,
    };
    let shown: Vec<&(Bytes, Option<Bytes>)> = step
        .iter()
        .map(|&(_, i)| &elements[i])
        .filter(|(e, _)| pattern.is_none_or(|p| glob_match(p, e)))
        .collect();
    OutputBudget::check(
        ctx.shared,
        shown
            .iter()
            .flat_map(|(e, v)| [e.len(), v.as_ref().map_or(0, |v| v.len())]),
    )?;
    let mut out = Vec::with_capacity(shown.len() * 2);
    for (element, extra) in shown {
        out.push(Reply::Bulk(element.clone()));
        if let Some(extra) = extra {
            out.push(Reply::Bulk(extra.clone()));
        }
    }
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(out),
    ])
    .into())
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`.
pub fn sscan(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    scan(ctx, args, Wanted::Set)
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: fields and values.
pub fn hscan(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    scan(ctx, args, Wanted::Hash)
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: members and scores.
pub fn zscan(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    scan(ctx, args, Wanted::ZSet)
}
