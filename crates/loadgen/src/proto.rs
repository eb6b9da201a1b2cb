//! The generator's operations and how each protocol puts them on the wire.
//!
//! A workload produces protocol-neutral [`Op`]s; [`encode`] writes one in the chosen
//! [`Protocol`], and [`ReplyDecoder`] takes the next complete reply off the read buffer and
//! classifies it as an [`Outcome`] given the [`OpKind`] it answers (replies come back in
//! request order on every protocol used here, so the connection pairs them by position).
//!
//! The memcached side uses `sessiond-proto-memcache`'s client functions, so the generator
//! sends exactly what the codec under test accepts; RESP uses the minimal codec in
//! [`crate::resp`]. Redis equivalents follow what real session clients send (clients.md):
//! a set with TTL is `SETEX`, a touch is `EXPIRE`, PHP's lock `ADD` is `SET … NX PX`.

use bytes::{Bytes, BytesMut};
use sessiond_proto_memcache::binary::{self, BinaryRequest, opcode, status};
use sessiond_proto_memcache::text::{self, TextReply, TextRequest};
use sessiond_proto_memcache::{Command, StoreMode};

use crate::resp::{self, RespReply};

/// Wire protocol of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// memcached text protocol.
    Text,
    /// memcached binary protocol.
    Binary,
    /// Redis RESP2.
    Resp,
}

impl Protocol {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Text => "mc-text",
            Protocol::Binary => "mc-binary",
            Protocol::Resp => "resp",
        }
    }
}

/// One request, independent of protocol. Keys and values are shared [`Bytes`], so building an
/// op never copies them.
#[derive(Debug, Clone)]
pub enum Op {
    /// Read a value (text `get`, binary GET, RESP `GET`).
    Get(Bytes),
    /// Read a value echoing the key, as PHP does (binary GETK; text `get` and RESP `GET`).
    GetK(Bytes),
    /// Store unconditionally with a TTL in seconds (0 = none): `set`, SET, `SETEX`/`SET`.
    Set {
        /// Key.
        key: Bytes,
        /// Value.
        value: Bytes,
        /// Seconds; 0 means no expiry.
        ttl: u32,
    },
    /// Store only if absent (PHP's session lock): `add`, ADD, `SET … NX [PX ms]`.
    Add {
        /// Key.
        key: Bytes,
        /// Value.
        value: Bytes,
        /// Seconds; 0 means no expiry.
        ttl: u32,
    },
    /// Reset a key's TTL: `touch`, TOUCH, `EXPIRE`.
    Touch {
        /// Key.
        key: Bytes,
        /// Seconds.
        ttl: u32,
    },
    /// Remove a key: `delete`, DELETE, `DEL`.
    Delete(Bytes),
}

/// What kind of op a reply answers; decides how a reply is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// [`Op::Get`] or [`Op::GetK`].
    Read,
    /// Every other op.
    Write,
}

impl Op {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Get(_) | Op::GetK(_) => OpKind::Read,
            _ => OpKind::Write,
        }
    }
}

/// How a request fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A read found the key.
    Hit,
    /// A read did not find the key.
    Miss,
    /// A write succeeded.
    Ok,
    /// A write was refused for a normal reason: add on an existing key, touch or delete of a
    /// missing key.
    Rejected,
    /// The server answered with an error.
    Error,
}

/// Appends `op` in `protocol`. `opaque` is echoed by binary responses (unused otherwise).
pub fn encode(protocol: Protocol, op: &Op, opaque: u32, out: &mut BytesMut) {
    match protocol {
        Protocol::Text => {
            let request = TextRequest {
                command: command(op),
                noreply: false,
                with_cas: false,
                more: false,
            };
            text::encode_request(&request, out);
        }
        Protocol::Binary => {
            let (opcode, return_key) = match op {
                Op::Get(_) => (opcode::GET, false),
                Op::GetK(_) => (opcode::GETK, true),
                Op::Set { .. } => (opcode::SET, false),
                Op::Add { .. } => (opcode::ADD, false),
                Op::Touch { .. } => (opcode::TOUCH, false),
                Op::Delete(_) => (opcode::DELETE, false),
            };
            let request = BinaryRequest {
                opcode,
                opaque,
                command: command(op),
                quiet: false,
                return_key,
            };
            binary::encode_request(&request, out);
        }
        Protocol::Resp => encode_resp(op, out),
    }
}

/// The memcached [`Command`] for `op` (text and binary share it).
fn command(op: &Op) -> Command {
    match op {
        Op::Get(key) | Op::GetK(key) => Command::Get {
            keys: vec![key.clone()],
            touch: None,
        },
        Op::Set { key, value, ttl } => store(StoreMode::Set, key, value, *ttl),
        Op::Add { key, value, ttl } => store(StoreMode::Add, key, value, *ttl),
        Op::Touch { key, ttl } => Command::Touch {
            key: key.clone(),
            exptime: i64::from(*ttl),
        },
        Op::Delete(key) => Command::Delete {
            key: key.clone(),
            cas: 0,
        },
    }
}

fn store(mode: StoreMode, key: &Bytes, value: &Bytes, ttl: u32) -> Command {
    Command::Store {
        mode,
        key: key.clone(),
        flags: 0,
        exptime: i64::from(ttl),
        value: value.clone(),
        cas: 0,
    }
}

fn encode_resp(op: &Op, out: &mut BytesMut) {
    let mut num = BytesMut::new();
    match op {
        Op::Get(key) | Op::GetK(key) => resp::encode_command(&[b"GET", key], out),
        Op::Set { key, value, ttl: 0 } => resp::encode_command(&[b"SET", key, value], out),
        Op::Set { key, value, ttl } => {
            resp::put_decimal(&mut num, u64::from(*ttl));
            resp::encode_command(&[b"SETEX", key, &num, value], out);
        }
        Op::Add { key, value, ttl: 0 } => resp::encode_command(&[b"SET", key, value, b"NX"], out),
        Op::Add { key, value, ttl } => {
            resp::put_decimal(&mut num, u64::from(*ttl) * 1000);
            resp::encode_command(&[b"SET", key, value, b"NX", b"PX", &num], out);
        }
        Op::Touch { key, ttl } => {
            resp::put_decimal(&mut num, u64::from(*ttl));
            resp::encode_command(&[b"EXPIRE", key, &num], out);
        }
        Op::Delete(key) => resp::encode_command(&[b"DEL", key], out),
    }
}

/// Takes replies off a connection's read buffer.
#[derive(Debug, Clone, Copy)]
pub struct ReplyDecoder {
    protocol: Protocol,
}

impl ReplyDecoder {
    /// A decoder for `protocol`.
    pub fn new(protocol: Protocol) -> ReplyDecoder {
        ReplyDecoder { protocol }
    }

    /// Decodes the next complete reply, which answers an op of `kind`; `Ok(None)` until it
    /// has fully arrived. An error means the stream is out of sync.
    pub fn decode(&self, buf: &mut BytesMut, kind: OpKind) -> anyhow::Result<Option<Outcome>> {
        let read = kind == OpKind::Read;
        Ok(match self.protocol {
            Protocol::Text => text::decode_reply(buf)?.map(|reply| match reply {
                TextReply::Values(items) if read => {
                    if items.is_empty() {
                        Outcome::Miss
                    } else {
                        Outcome::Hit
                    }
                }
                TextReply::Status(line) => match &line[..] {
                    b"STORED" | b"TOUCHED" | b"DELETED" | b"OK" => Outcome::Ok,
                    b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => Outcome::Rejected,
                    _ => Outcome::Error,
                },
                TextReply::Number(_) => Outcome::Ok,
                _ => Outcome::Error,
            }),
            Protocol::Binary => {
                binary::decode_response(buf)?.map(|response| match response.status {
                    status::OK if read => Outcome::Hit,
                    status::OK => Outcome::Ok,
                    status::NOT_FOUND if read => Outcome::Miss,
                    status::NOT_FOUND | status::EXISTS | status::NOT_STORED => Outcome::Rejected,
                    _ => Outcome::Error,
                })
            }
            Protocol::Resp => resp::decode_reply(buf)?.map(|reply| match reply {
                RespReply::Bulk(_) if read => Outcome::Hit,
                RespReply::Nil if read => Outcome::Miss,
                RespReply::Nil | RespReply::Integer(0) => Outcome::Rejected,
                RespReply::Error => Outcome::Error,
                _ => Outcome::Ok,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(protocol: Protocol, op: &Op) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(protocol, op, 7, &mut out);
        out.to_vec()
    }

    #[test]
    fn text_and_resp_forms() {
        let key = Bytes::from_static(b"k");
        let value = Bytes::from_static(b"vv");
        let set = Op::Set {
            key: key.clone(),
            value: value.clone(),
            ttl: 1800,
        };
        assert_eq!(wire(Protocol::Text, &set), b"set k 0 1800 2\r\nvv\r\n");
        assert_eq!(
            wire(Protocol::Resp, &set),
            b"*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$4\r\n1800\r\n$2\r\nvv\r\n"
        );
        let touch = Op::Touch {
            key: key.clone(),
            ttl: 60,
        };
        assert_eq!(wire(Protocol::Text, &touch), b"touch k 60\r\n");
        assert_eq!(
            wire(Protocol::Resp, &touch),
            b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n60\r\n"
        );
        let add = Op::Add {
            key: key.clone(),
            value: Bytes::from_static(b"1"),
            ttl: 30,
        };
        assert_eq!(wire(Protocol::Text, &add), b"add k 0 30 1\r\n1\r\n");
        assert_eq!(
            wire(Protocol::Resp, &add),
            b"*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n30000\r\n"
        );
        assert_eq!(wire(Protocol::Text, &Op::GetK(key.clone())), b"get k\r\n");
        assert_eq!(
            wire(Protocol::Resp, &Op::Delete(key)),
            b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
        );
    }

    #[test]
    fn binary_getk_header() {
        let bytes = wire(Protocol::Binary, &Op::GetK(Bytes::from_static(b"abc")));
        assert_eq!(&bytes[..2], &[0x80, opcode::GETK]);
        assert_eq!(&bytes[12..16], &7u32.to_be_bytes());
        assert_eq!(&bytes[24..], b"abc");
    }

    #[test]
    fn classifies_replies() {
        let text = ReplyDecoder::new(Protocol::Text);
        let mut buf = BytesMut::from(
            &b"END\r\nVALUE k 0 1\r\nv\r\nEND\r\nSTORED\r\nNOT_STORED\r\nSERVER_ERROR x\r\n"[..],
        );
        assert_eq!(
            text.decode(&mut buf, OpKind::Read).unwrap(),
            Some(Outcome::Miss)
        );
        assert_eq!(
            text.decode(&mut buf, OpKind::Read).unwrap(),
            Some(Outcome::Hit)
        );
        assert_eq!(
            text.decode(&mut buf, OpKind::Write).unwrap(),
            Some(Outcome::Ok)
        );
        assert_eq!(
            text.decode(&mut buf, OpKind::Write).unwrap(),
            Some(Outcome::Rejected)
        );
        assert_eq!(
            text.decode(&mut buf, OpKind::Write).unwrap(),
            Some(Outcome::Error)
        );
        assert_eq!(text.decode(&mut buf, OpKind::Write).unwrap(), None);

        let resp = ReplyDecoder::new(Protocol::Resp);
        let mut buf = BytesMut::from(&b"$-1\r\n$1\r\nv\r\n+OK\r\n:0\r\n"[..]);
        assert_eq!(
            resp.decode(&mut buf, OpKind::Read).unwrap(),
            Some(Outcome::Miss)
        );
        assert_eq!(
            resp.decode(&mut buf, OpKind::Read).unwrap(),
            Some(Outcome::Hit)
        );
        assert_eq!(
            resp.decode(&mut buf, OpKind::Write).unwrap(),
            Some(Outcome::Ok)
        );
        assert_eq!(
            resp.decode(&mut buf, OpKind::Write).unwrap(),
            Some(Outcome::Rejected)
        );
    }
}
