//! Binary responses: an [`Outcome`] becomes zero or more response packets.
//!
//! Which packets memcached sends depends on the opcode as much as the outcome: quiet opcodes
//! drop successes (and get-family misses) but still report errors; GETK/GATK echo the key on a
//! miss where GET answers "Not found"; a failed ADD is "exists" while a failed REPLACE is "not
//! found"; STAT answers with one packet per statistic plus an empty terminator. This module
//! encodes exactly those rules and nothing else.

use bytes::BytesMut;

use super::{BinaryRequest, Packet, opcode as op, status, status_message};
use crate::chunks::{ReplyChunks, ReplyOut};
use crate::{Command, Hit, Outcome};

/// Appends the response packets for `req` given `outcome` (possibly none, for quiet opcodes).
pub fn encode_reply(req: &BinaryRequest, outcome: &Outcome, out: &mut BytesMut) {
    encode(req, outcome, out);
}

/// [`encode_reply`] into a [`ReplyChunks`]: the same bytes, with a hit's value queued by
/// reference rather than copied.
pub fn encode_reply_chunks(req: &BinaryRequest, outcome: &Outcome, out: &mut ReplyChunks) {
    encode(req, outcome, out);
}

/// Only a hit carries a value worth sharing; every other packet is encoded in place.
fn encode(req: &BinaryRequest, outcome: &Outcome, out: &mut impl ReplyOut) {
    match outcome {
        Outcome::Values(values) => match values.first() {
            Some(Some(hit)) => get_hit(req, hit, out),
            _ => get_miss(req, out.bytes()),
        },
        _ => encode_in_place(req, outcome, out.bytes()),
    }
}

fn encode_in_place(req: &BinaryRequest, outcome: &Outcome, out: &mut BytesMut) {
    let ok = Packet::response(req.opcode, req.opaque);
    // A success is dropped for a quiet opcode; errors never are.
    let success = |out: &mut BytesMut, cas: u64, extras: &[u8], key: &[u8], value: &[u8]| {
        if !req.quiet {
            Packet { cas, ..ok }.write(out, extras, key, value);
        }
    };
    match outcome {
        Outcome::Values(values) => match values.first() {
            Some(Some(hit)) => get_hit(req, hit, out),
            _ => get_miss(req, out),
        },
        Outcome::NotFound if matches!(req.command, Command::Get { .. }) => get_miss(req, out),
        Outcome::Stored { cas } => success(out, *cas, &[], &[], &[]),
        Outcome::Deleted => success(out, 0, &[], &[], &[]),
        Outcome::Touched { flags, cas } => success(out, *cas, &flags.to_be_bytes(), &[], &[]),
        Outcome::Counter { value, cas } => success(out, *cas, &[], &[], &value.to_be_bytes()),
        Outcome::Ok if matches!(req.command, Command::Stats(_)) => {
            // `stats reset` and friends: just the terminator.
            ok.write(out, &[], &[], &[]);
        }
        Outcome::Ok => success(out, 0, &[], &[], &[]),
        Outcome::Version(version) => success(out, 0, &[], &[], version.as_bytes()),
        Outcome::Stats(stats) => {
            for (name, value) in stats {
                ok.write(out, &[], name.as_bytes(), value.as_bytes());
            }
            ok.write(out, &[], &[], &[]);
        }
        Outcome::NotStored => {
            // memcached reports the reason the condition failed, not a generic "not stored".
            let code = match req.opcode {
                op::ADD | op::ADDQ => status::EXISTS,
                op::REPLACE | op::REPLACEQ => status::NOT_FOUND,
                _ => status::NOT_STORED,
            };
            error(req, code, out);
        }
        Outcome::NotFound => error(req, status::NOT_FOUND, out),
        Outcome::Exists => error(req, status::EXISTS, out),
        Outcome::NonNumeric => error(req, status::NON_NUMERIC, out),
        Outcome::OutOfMemory => error(req, status::OUT_OF_MEMORY, out),
        Outcome::TooLarge => error(req, status::TOO_LARGE, out),
        // Meta commands are text only; a binary request never gets here.
        Outcome::UnknownCommand | Outcome::Meta(_) => error(req, status::UNKNOWN_COMMAND, out),
        Outcome::Revoked => {
            let packet = Packet {
                status: status::INTERNAL_ERROR,
                ..ok
            };
            packet.write(out, &[], &[], crate::REVOKED.as_bytes());
        }
        Outcome::ServerError(reason) => {
            let packet = Packet {
                status: status::INTERNAL_ERROR,
                ..ok
            };
            packet.write(out, &[], &[], reason.as_bytes());
        }
        Outcome::SaslMechanisms(names) => success(out, 0, &[], &[], names.as_bytes()),
        // memcached's words on a successful SASL_AUTH.
        Outcome::Authenticated => success(out, 0, &[], &[], b"Authenticated"),
        Outcome::AuthFailed | Outcome::Unauthenticated | Outcome::NotPermitted => {
            error(req, status::AUTH_ERROR, out)
        }
        Outcome::ClientError(reason) => {
            let packet = Packet {
                status: status::INVALID_ARGUMENTS,
                ..ok
            };
            packet.write(out, &[], &[], reason.as_bytes());
        }
    }
}

/// A hit: flags as extras, the key for the K opcodes, the value, and the CAS in the header.
/// Quiet gets answer hits; they are silent only on a miss.
fn get_hit(req: &BinaryRequest, hit: &Hit, out: &mut impl ReplyOut) {
    let packet = Packet {
        cas: hit.cas,
        ..Packet::response(req.opcode, req.opaque)
    };
    let key: &[u8] = if req.return_key { &hit.key } else { &[] };
    let value_len = packet.write_head(out.bytes(), &hit.flags.to_be_bytes(), key, hit.value.len());
    if value_len == hit.value.len() {
        out.value(&hit.value);
    } else {
        out.value(&hit.value.slice(..value_len));
    }
}

/// A miss: nothing for quiet opcodes; GETK/GATK put the requested key in the key field (and
/// no message), which php-memcached's session handler relies on; the rest say "Not found".
fn get_miss(req: &BinaryRequest, out: &mut BytesMut) {
    if req.quiet {
        return;
    }
    if req.return_key {
        let key = match &req.command {
            Command::Get { keys, .. } => keys.first().map(|k| &k[..]).unwrap_or_default(),
            _ => &[],
        };
        let packet = Packet {
            status: status::NOT_FOUND,
            ..Packet::response(req.opcode, req.opaque)
        };
        packet.write(out, &[], key, &[]);
    } else {
        error(req, status::NOT_FOUND, out);
    }
}

/// An error status with memcached's standard message as the body.
fn error(req: &BinaryRequest, code: u16, out: &mut BytesMut) {
    let packet = Packet {
        status: code,
        ..Packet::response(req.opcode, req.opaque)
    };
    packet.write(out, &[], &[], status_message(code).as_bytes());
}
