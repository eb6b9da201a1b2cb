//! String commands that read a value and write a changed one: `GETSET`, `GETRANGE`/`SUBSTR`,
//! `SETRANGE`, `SETBIT`/`GETBIT`, `INCRBYFLOAT`, `MSETNX`, `LCS`, and the float formatting
//! `HINCRBYFLOAT` shares.
//!
//! The read-modify-write ones (`SETRANGE`, `SETBIT`, `INCRBYFLOAT`, `MSETNX`) run holding
//! the script gate exclusively (their rows say `EXCLUSIVE`), so no client of either protocol
//! and no expiry sweep runs between the read and the write: that makes them atomic without
//! a store operation per command. They are rare in session traffic, so serialising them
//! costs nothing that matters. The write keeps the key's deadline, as Redis does.
//!
//! Limits: a result is never longer than `--max-item-size` (checked before anything is
//! allocated, so a hostile `SETRANGE` or `SETBIT` offset is refused at once), and `LCS`
//! refuses inputs whose comparison table would pass [`LCS_MAX_CELLS`].

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{Condition, DeadlineChange, Previous, StoreError, Value, Write};

use super::args::{Args, Handled};
use super::pubsub::STRING;
use super::strings::read_string;
use super::{Ctx, error, parse_float, parse_int, store_error, syntax_error};

/// A write of a whole new string that keeps the key's deadline.
fn keep_ttl() -> Write {
    Write {
        condition: Condition::Always,
        flags: 0,
        deadline: DeadlineChange::Keep,
        previous: Previous::Ignore,
    }
}

fn too_large() -> Reply {
    store_error(StoreError::TooLarge)
}

/// `GETSET key value`: sets and returns the old string (the deadline is cleared, as `SET`
/// does).
pub fn getset(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let value = args.bytes()?;
    let write = Write {
        condition: Condition::Always,
        flags: 0,
        deadline: DeadlineChange::Set(None),
        previous: Previous::Return,
    };
    let written = ctx
        .store()
        .write(key, value, write, ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, "set", key);
    Ok(match written.previous {
        Some(Value::Str(old)) => Reply::Bulk(old),
        _ => Reply::Null,
    }
    .into())
}

/// The byte range `start..=end` of a string of `len` bytes, with Redis's rules for
/// negative and out-of-range indexes; `None` when empty.
fn byte_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    (start <= end && len > 0).then_some((start as usize, end as usize))
}

/// `GETRANGE key start end` (and its old name `SUBSTR`).
pub fn getrange(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let (start, end) = (args.int()?, args.int()?);
    let value = read_string(ctx, key)?.unwrap_or_default();
    Ok(Reply::Bulk(
        byte_range(start, end, value.len()).map_or_else(Bytes::new, |(s, e)| value.slice(s..=e)),
    )
    .into())
}

/// `SETRANGE key offset value`: overwrites from `offset`, padding with zero bytes; the new
/// length. The result is bounded by `--max-item-size`.
pub fn setrange(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let offset = args.int()?;
    let data = args.bytes()?;
    if offset < 0 {
        return Err(error("ERR offset is out of range"));
    }
    let current = read_string(ctx, key)?;
    let old_len = current.as_ref().map_or(0, |c| c.len());
    if data.is_empty() {
        // Nothing to write: Redis answers the length and creates nothing.
        return Ok(Reply::Integer(old_len as i64).into());
    }
    let end = usize::try_from(offset)
        .ok()
        .and_then(|o| o.checked_add(data.len()))
        .filter(|&end| end <= ctx.shared.config.max_item_size)
        .ok_or_else(too_large)?;
    let mut value = current.map(|c| c.to_vec()).unwrap_or_default();
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset as usize..end].copy_from_slice(data);
    ctx.store()
        .write(key, &value, keep_ttl(), ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, "setrange", key);
    Ok(Reply::Integer(value.len() as i64).into())
}

/// A bit offset: 0 ≤ offset < 2^32, as Redis's 512 MB strings allow.
fn bit_offset(arg: &[u8]) -> Result<u64, Reply> {
    parse_int(arg)
        .filter(|o| (0..(1i64 << 32)).contains(o))
        .map(|o| o as u64)
        .ok_or_else(|| error("ERR bit offset is not an integer or out of range"))
}

/// `GETBIT key offset`.
pub fn getbit(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let offset = bit_offset(args.bytes()?)?;
    let value = read_string(ctx, key)?.unwrap_or_default();
    let byte = value.get((offset / 8) as usize).copied().unwrap_or(0);
    Ok(Reply::Integer(i64::from(byte >> (7 - offset % 8) & 1)).into())
}

/// `SETBIT key offset 0|1`: the previous bit. The string grows to the offset, within
/// `--max-item-size`.
pub fn setbit(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let offset = bit_offset(args.bytes()?)?;
    let bit = match &args.bytes()?[..] {
        b"0" => 0u8,
        b"1" => 1u8,
        _ => return Err(error("ERR bit is not an integer or out of range")),
    };
    let index = (offset / 8) as usize;
    if index >= ctx.shared.config.max_item_size {
        return Err(too_large());
    }
    let mut value = read_string(ctx, key)?
        .map(|c| c.to_vec())
        .unwrap_or_default();
    if value.len() <= index {
        value.resize(index + 1, 0);
    }
    let mask = 1u8 << (7 - offset % 8);
    let old = u8::from(value[index] & mask != 0);
    if bit == 1 {
        value[index] |= mask;
    } else {
        value[index] &= !mask;
    }
    ctx.store()
        .write(key, &value, keep_ttl(), ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, "setbit", key);
    Ok(Reply::Integer(i64::from(old)).into())
}

/// Formats the result of adding two floats as Redis's `INCRBYFLOAT` shows it: fixed
/// notation, at most 17 decimals, no exponent, no trailing zeros, never `-0`. Redis adds in
/// `long double` and prints 17 decimals, which hides the last binary digits of a decimal
/// sum (`1 - 1.1` is `-0.1` there). Added as doubles, the sum is exact only to about 15
/// significant digits of the larger of `scale` (the operands' largest magnitude) and the
/// result, so the digits below that are dropped: the same texts for the sums people write,
/// and a cancellation that Redis shows as 0 is 0 here too.
pub fn format_float(value: f64, scale: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().max(scale.abs()).log10().floor() as i64;
    let decimals = (14 - magnitude).clamp(0, 17) as usize;
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// Parses a stored string as a float the way `INCRBYFLOAT` accepts it.
pub fn stored_float(bytes: &[u8]) -> Option<f64> {
    if bytes.len() > 5 * 1024 || bytes.last().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    parse_float(bytes)
}

/// `INCRBYFLOAT key increment`: the new value, as text.
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let delta = args.float()?;
    let current = match read_string(ctx, key)? {
        None => 0.0,
        Some(bytes) => {
            stored_float(&bytes).ok_or_else(|| error("ERR value is not a valid float"))?
        }
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(error("ERR increment would produce NaN or Infinity"));
    }
    let text = format_float(next, current.abs().max(delta.abs()));
    ctx.store()
        .write(key, text.as_bytes(), keep_ttl(), ctx.now)
        .map_err(store_error)?;
    ctx.notify(STRING, "incrbyfloat", key);
    Ok(Reply::Bulk(Bytes::from(text)).into())
}

/// `MSETNX key value [key value …]`: all or nothing; 1 if written.
pub fn msetnx(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let rest = args.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(super::wrong_args("msetnx"));
    }
    let store = ctx.store();
    if rest
        .chunks(2)
        .any(|pair| store.get(&pair[0], ctx.now).is_some())
    {
        return Ok(Reply::Integer(0).into());
    }
    let write = Write {
        deadline: DeadlineChange::Set(None),
        ..keep_ttl()
    };
    // Every key was absent and, under the exclusive gate, nothing else writes meanwhile: a
    // write refused part-way (out of memory, revoked) is undone by removing the keys already
    // written, so the command stays all or nothing.
    for (done, pair) in rest.chunks(2).enumerate() {
        if let Err(e) = store.write(&pair[0], &pair[1], write, ctx.now) {
            for written in rest.chunks(2).take(done) {
                store.remove(&written[0], ctx.now);
            }
            return Err(store_error(e));
        }
    }
    for pair in rest.chunks(2) {
        ctx.notify(STRING, "set", &pair[0]);
    }
    Ok(Reply::Integer(1).into())
}

/// The largest comparison table `LCS` builds (cells of 4 bytes): 4 Mi cells, 16 MiB. `LCS`
/// runs under the exclusive script gate, so at most one such table exists at a time.
pub const LCS_MAX_CELLS: usize = 4 << 20;

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`.
pub fn lcs(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let (key_a, key_b) = (args.bytes()?, args.bytes()?);
    let (mut want_len, mut want_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    while !args.is_empty() {
        if args.keyword("len") {
            want_len = true;
        } else if args.keyword("idx") {
            want_idx = true;
        } else if args.keyword("withmatchlen") {
            with_len = true;
        } else if args.remaining() >= 2 && args.keyword("minmatchlen") {
            min_len = args.int()?.max(0);
        } else {
            return Err(syntax_error());
        }
    }
    if want_len && want_idx {
        return Err(error(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let wrong_type = |e: Reply| {
        if matches!(&e, Reply::Error(t) if t.starts_with(b"WRONGTYPE")) {
            error("ERR The specified keys must contain string values")
        } else {
            e
        }
    };
    let a = read_string(ctx, key_a)
        .map_err(wrong_type)?
        .unwrap_or_default();
    let b = read_string(ctx, key_b)
        .map_err(wrong_type)?
        .unwrap_or_default();
    let cells = (a.len() + 1).saturating_mul(b.len() + 1);
    if cells > LCS_MAX_CELLS {
        return Err(error(format!(
            "ERR LCS of strings this long needs a table of {cells} cells, more than the {LCS_MAX_CELLS} allowed"
        )));
    }
    if want_len {
        // The length alone needs two rows of the table, not all of it.
        let mut above = vec![0u32; b.len() + 1];
        let mut row = vec![0u32; b.len() + 1];
        for &x in a.iter() {
            for j in 1..=b.len() {
                row[j] = if x == b[j - 1] {
                    above[j - 1] + 1
                } else {
                    above[j].max(row[j - 1])
                };
            }
            std::mem::swap(&mut above, &mut row);
        }
        return Ok(Reply::Integer(i64::from(above[b.len()])).into());
    }
    // table[i][j]: the LCS length of a[..i] and b[..j].
    let width = b.len() + 1;
    let mut table = vec![0u32; cells];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[a.len() * width + b.len()] as usize;
    // Walk back from the end, collecting the common string and the matching ranges.
    let mut common = vec![0u8; total];
    let mut at = total;
    let mut matches = Vec::new();
    let (mut i, mut j) = (a.len(), b.len());
    let mut current: Option<[usize; 4]> = None; // a start, a end, b start, b end
    let flush = |range: Option<[usize; 4]>, matches: &mut Vec<Reply>| {
        let Some([a0, a1, b0, b1]) = range else {
            return;
        };
        let len = a1 - a0 + 1;
        if (len as i64) < min_len {
            return;
        }
        let pair = |x: usize, y: usize| {
            Reply::Array(vec![Reply::Integer(x as i64), Reply::Integer(y as i64)])
        };
        let mut item = vec![pair(a0, a1), pair(b0, b1)];
        if with_len {
            item.push(Reply::Integer(len as i64));
        }
        matches.push(Reply::Array(item));
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            at -= 1;
            common[at] = a[i - 1];
            let (x, y) = (i - 1, j - 1);
            current = match current {
                Some([a0, a1, b0, b1]) if a0 == x + 1 && b0 == y + 1 => Some([x, a1, y, b1]),
                other => {
                    flush(other, &mut matches);
                    Some([x, x, y, y])
                }
            };
            i -= 1;
            j -= 1;
        } else if table[(i - 1) * width + j] > table[i * width + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    flush(current, &mut matches);
    if !want_idx {
        return Ok(Reply::Bulk(Bytes::from(common)).into());
    }
    Ok(Reply::Map(vec![
        (
            Reply::Bulk(Bytes::from_static(b"matches")),
            Reply::Array(matches),
        ),
        (
            Reply::Bulk(Bytes::from_static(b"len")),
            Reply::Integer(total as i64),
        ),
    ])
    .into())
}

#[cfg(test)]
mod tests {
    use super::{byte_range, format_float};

    #[test]
    fn floats_print_as_redis_prints_them() {
        let sum = |a: f64, b: f64| format_float(a + b, a.abs().max(b.abs()));
        assert_eq!(sum(1.0, -1.1), "-0.1");
        assert_eq!(sum(10.5, 0.1), "10.6");
        assert_eq!(sum(17179869184.0, 1.5), "17179869185.5");
        // Redis's "No negative zero" case: 1/41 stored, then -1/41 added.
        let stored: f64 = sum(0.0, 1.0 / 41.0).parse().unwrap();
        assert_eq!(sum(stored, -1.0 / 41.0), "0");
        assert_eq!(sum(-0.0, 0.0), "0");
        assert_eq!(sum(5.0e3, 0.0), "5000");
        assert_eq!(sum(1.0, 0.25), "1.25");
        assert_eq!(sum(0.0, 1e-20), "0");
    }

    #[test]
    fn ranges_follow_redis_rules() {
        assert_eq!(byte_range(0, -1, 5), Some((0, 4)));
        assert_eq!(byte_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(byte_range(0, 4294967297, 3), Some((0, 2)));
        assert_eq!(byte_range(-1, -5, 5), None);
        assert_eq!(byte_range(3, 1, 5), None);
        assert_eq!(byte_range(0, 0, 0), None);
    }
}
