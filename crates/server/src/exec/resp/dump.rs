//! `DUMP` and `RESTORE`: a key's value as an opaque payload, and back.
//!
//! The payload is sessiond's own, not Redis's RDB encoding: the value's type tag, its
//! journal encoding (the bytes of a string; a collection as the journal writes it whole),
//! a format version and a 64-bit FNV-1a checksum of everything before it. So `DUMP` and
//! `RESTORE` move keys between sessiond servers (and across versions that keep the format),
//! but a payload from Redis is refused with Redis's own error, as a corrupt one is.
//! `RESTORE` accepts Redis's options; `IDLETIME` and `FREQ` are checked and have no effect
//! (there is no eviction, hence no LRU or LFU data).

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::{
    Condition, DeadlineChange, Kind, Previous, StoreError, Value, Write, WriteOutcome,
};

use super::args::{Args, Handled};
use super::pubsub::GENERIC;
use super::{Ctx, OutputBudget, error, is, not_integer, parse_int, store_error, syntax_error};

/// The payload format this build writes and reads.
const FORMAT: u16 = 1;

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `DUMP key`.
pub fn dump(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let Some(entry) = ctx.store().get(args.bytes()?, ctx.now) else {
        return Ok(Reply::Null.into());
    };
    // Measured before anything is built: concurrent DUMPs of one large key would each
    // allocate a whole copy of it, outside the memory budget, only to have it refused later.
    let len = 1 + entry.value.encoded_members_len() + 2 + 8;
    OutputBudget::check(ctx.shared, [len])?;
    let mut out = Vec::with_capacity(len);
    out.push(entry.value.kind().tag());
    entry.value.encode_members(&mut out);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    debug_assert_eq!(
        out.len(),
        len,
        "encoded_members_len disagrees with encode_members"
    );
    Ok(Reply::Bulk(Bytes::from(out)).into())
}

/// The value in a `DUMP` payload, if the payload is whole and of this format.
fn decode(payload: &[u8]) -> Option<Value> {
    let body_len = payload.len().checked_sub(10)?;
    let (body, sum) = payload.split_at(body_len + 2);
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let (content, format) = body.split_at(body_len);
    if u16::from_le_bytes(format.try_into().ok()?) != FORMAT {
        return None;
    }
    let (&tag, members) = content.split_first()?;
    let mut value = Value::decode(Kind::from_tag(tag)?, members)?;
    if let Value::List(list) = &mut value {
        // The payload's version is whatever the client sent; the journal's count of this
        // key's changes starts over here (the RESTORE record carries it whole).
        std::sync::Arc::make_mut(list).reset_version();
    }
    if let Value::Stream(stream) = &mut value {
        std::sync::Arc::make_mut(stream).reset_version();
    }
    (!value.is_empty_collection()).then_some(value)
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`.
pub fn restore(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let key = args.bytes()?;
    let ttl = args.int()?;
    let payload = args.bytes()?;
    let (mut replace, mut absolute) = (false, false);
    while let Some(option) = args.next() {
        if is(option, "replace") {
            replace = true;
        } else if is(option, "absttl") {
            absolute = true;
        } else if is(option, "idletime") && !args.is_empty() {
            let idle = parse_int(args.bytes()?).ok_or_else(not_integer)?;
            if idle < 0 {
                return Err(error("ERR Invalid IDLETIME value, must be >= 0"));
            }
        } else if is(option, "freq") && !args.is_empty() {
            let freq = parse_int(args.bytes()?).ok_or_else(not_integer)?;
            if !(0..=255).contains(&freq) {
                return Err(error("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
        } else {
            return Err(syntax_error());
        }
    }
    if ttl < 0 {
        return Err(error("ERR Invalid TTL value, must be >= 0"));
    }
    let busy = || error("BUSYKEY Target key name already exists.");
    if !replace && ctx.store().peek(key, ctx.now).is_some() {
        return Err(busy());
    }
    let value =
        decode(payload).ok_or_else(|| error("ERR DUMP payload version or checksum are wrong"))?;
    let ttl = ttl as u64;
    let deadline = match (ttl, absolute) {
        (0, _) => None,
        (at, true) => Some(at),
        (ms, false) => Some(ctx.now.saturating_add(ms)),
    };
    if deadline.is_some_and(|d| d <= ctx.now) {
        // Already expired: nothing is created, and a replaced key is gone.
        if replace && ctx.store().remove(key, ctx.now).is_some() {
            ctx.notify(GENERIC, "del", key);
        }
        return Ok(Reply::ok().into());
    }
    let written = match value {
        Value::Str(bytes) => {
            let how = Write {
                condition: if replace {
                    Condition::Always
                } else {
                    Condition::IfAbsent
                },
                flags: 0,
                deadline: DeadlineChange::Set(deadline),
                previous: Previous::Ignore,
            };
            let written = ctx
                .store()
                .write(key, &bytes, how, ctx.now)
                .map_err(store_error)?;
            !matches!(written.outcome, WriteOutcome::NotStored)
        }
        coll => ctx
            .store()
            .put_collection(key, coll, deadline, replace, ctx.now)
            .map_err(|e| match e {
                StoreError::WrongType => error("ERR DUMP payload version or checksum are wrong"),
                other => store_error(other),
            })?,
    };
    if !written {
        return Err(busy());
    }
    ctx.notify(GENERIC, "restore", key);
    Ok(Reply::ok().into())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sessiond_proto_resp::Reply;
    use sessiond_store::Value;

    use super::checksum;
    use crate::config::Config;
    use crate::exec::Shared;
    use crate::exec::resp::{Answer, Session, execute};

    const NOW: u64 = 1_800_000_000_000;

    fn command(shared: &Shared, session: &mut Session, args: &[&[u8]]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        match execute(shared, session, &args, NOW).answer {
            Answer::One(reply) => reply,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn restore_starts_a_lists_version_over_whatever_the_payload_says() {
        let shared = Shared::unjournaled(Config::default(), NOW);
        let mut session = Session::new(&shared, "a".into(), "b".into(), NOW);
        command(&shared, &mut session, &[b"RPUSH", b"src", b"x"]);
        let Reply::Bulk(payload) = command(&shared, &mut session, &[b"DUMP", b"src"]) else {
            panic!("DUMP of a list is a bulk");
        };
        // Layout: tag, the version (a u32 length 8, then u64 LE), the elements, the
        // format (u16), the checksum (u64). A hostile client sets the version to the top.
        let mut forged = payload[..payload.len() - 8].to_vec();
        assert_eq!(&forged[1..5], &8u32.to_le_bytes());
        forged[5..13].copy_from_slice(&u64::MAX.to_le_bytes());
        let sum = checksum(&forged);
        forged.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(
            command(&shared, &mut session, &[b"RESTORE", b"dst", b"0", &forged]),
            Reply::Simple(Bytes::from_static(b"OK"))
        );
        // Without the reset, this push overflowed the version (a panic in debug builds).
        assert_eq!(
            command(&shared, &mut session, &[b"RPUSH", b"dst", b"y"]),
            Reply::Integer(2)
        );
        let Some(Value::List(list)) = shared.databases[0].peek(b"dst", NOW).map(|e| e.value) else {
            panic!("dst holds a list");
        };
        assert_eq!(list.version(), 1);
    }
}
