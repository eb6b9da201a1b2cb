//! The do-nothing ceiling server: answers every request with a canned reply and stores
//! nothing.
//!
//! It marks the most any server could achieve on this machine with this generator: the
//! kernel's loopback path, tokio, and the generator's own CPU, with no lookups, no storage and
//! no journal. It runs on two tokio worker threads, like sessiond on the 2-core box.
//!
//! To keep the bytes on the wire the same as a real server at a 100% hit rate, a read gets a
//! hit carrying a value of `value_size` bytes, and every other request gets the shortest
//! success reply (`STORED`, status 0, `+OK`). The only work done per request is framing:
//! finding where the request ends (and, for a read, that it is one). The protocol is picked
//! per connection from its first byte: 0x80 is memcached binary, `*` is RESP, anything else
//! is memcached text.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The canned replies, built once.
struct Replies {
    text_hit: Vec<u8>,
    resp_hit: Vec<u8>,
    value: Vec<u8>,
}

/// Binds `listen` and returns the listener and its address (port 0 picks a free port).
pub async fn bind(listen: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves forever.
pub async fn serve(listener: TcpListener, value_size: usize) -> anyhow::Result<()> {
    let value = crate::workload::value_of_size(value_size).to_vec();
    let mut text_hit = format!("VALUE k 0 {value_size}\r\n").into_bytes();
    text_hit.extend_from_slice(&value);
    text_hit.extend_from_slice(b"\r\nEND\r\n");
    let mut resp_hit = format!("${value_size}\r\n").into_bytes();
    resp_hit.extend_from_slice(&value);
    resp_hit.extend_from_slice(b"\r\n");
    let replies = Arc::new(Replies {
        text_hit,
        resp_hit,
        value,
    });
    loop {
        let (stream, _) = listener.accept().await.context("accept")?;
        let replies = replies.clone();
        tokio::spawn(async move {
            let _ = connection(stream, &replies).await;
        });
    }
}

#[derive(Clone, Copy)]
enum Wire {
    Text,
    Binary,
    Resp,
}

async fn connection(mut stream: TcpStream, replies: &Replies) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    let mut wire = None;
    loop {
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        if stream.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
        let wire = *wire.get_or_insert(match rbuf[0] {
            0x80 => Wire::Binary,
            b'*' => Wire::Resp,
            _ => Wire::Text,
        });
        loop {
            let used = match wire {
                Wire::Text => text(&rbuf, replies, &mut wbuf),
                Wire::Binary => binary(&rbuf, replies, &mut wbuf),
                Wire::Resp => resp(&rbuf, replies, &mut wbuf),
            };
            match used {
                Some(n) => rbuf.advance(n),
                None => break,
            }
        }
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await?;
            wbuf.clear();
        }
    }
}

/// Frames one text request at the front of `buf` and appends its reply; returns its length,
/// or `None` if it is incomplete.
fn text(buf: &[u8], replies: &Replies, out: &mut BytesMut) -> Option<usize> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let command = words.next().unwrap_or_default();
    match command {
        b"get" | b"gets" | b"gat" | b"gats" => {
            out.put_slice(&replies.text_hit);
            Some(nl + 1)
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            // <key> <flags> <exptime> <bytes>: the data block and its \r\n follow the line.
            let bytes: usize = std::str::from_utf8(words.nth(3)?).ok()?.parse().ok()?;
            let total = nl + 1 + bytes + 2;
            if buf.len() < total {
                return None;
            }
            out.put_slice(b"STORED\r\n");
            Some(total)
        }
        _ => {
            out.put_slice(b"STORED\r\n");
            Some(nl + 1)
        }
    }
}

/// Frames one binary request and appends its response (GET/GETK/GAT: a hit with flags, the
/// key for the K variants, and the value; anything else: an empty success).
fn binary(buf: &[u8], replies: &Replies, out: &mut BytesMut) -> Option<usize> {
    let header = buf.first_chunk::<24>()?;
    let opcode = header[1];
    let key_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let extras_len = usize::from(header[4]);
    let body_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let total = 24 + body_len;
    if buf.len() < total {
        return None;
    }
    let opaque = &header[12..16];
    let (key, value): (&[u8], &[u8]) = match opcode {
        // GET, GETK, GAT, GATK.
        0x00 | 0x1d => (&[], &replies.value),
        0x0c | 0x23 => (
            &buf[24 + extras_len..24 + extras_len + key_len],
            &replies.value,
        ),
        _ => (&[], &[]),
    };
    let extras: &[u8] = if value.is_empty() { &[] } else { &[0, 0, 0, 0] };
    out.put_u8(0x81);
    out.put_u8(opcode);
    out.put_u16(key.len() as u16);
    out.put_u8(extras.len() as u8);
    out.put_u8(0);
    out.put_u16(0);
    out.put_u32((extras.len() + key.len() + value.len()) as u32);
    out.put_slice(opaque);
    out.put_u64(0);
    out.put_slice(extras);
    out.put_slice(key);
    out.put_slice(value);
    Some(total)
}

/// Frames one RESP command (an array of bulk strings) and appends its reply (`GET`: a bulk
/// value; anything else: `+OK`).
fn resp(buf: &[u8], replies: &Replies, out: &mut BytesMut) -> Option<usize> {
    let (count, mut at) = resp_line(buf, 0, b'*')?;
    let mut is_get = false;
    for i in 0..count {
        let (len, start) = resp_line(buf, at, b'$')?;
        let end = start + len + 2;
        if buf.len() < end {
            return None;
        }
        if i == 0 {
            is_get = buf[start..start + len].eq_ignore_ascii_case(b"GET");
        }
        at = end;
    }
    out.put_slice(if is_get {
        &replies.resp_hit
    } else {
        b"+OK\r\n"
    });
    Some(at)
}

/// Parses `<marker><n>\r\n` at `at`; returns `n` and the offset after the line.
fn resp_line(buf: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
    let rest = buf.get(at..)?;
    if rest.first() != Some(&marker) {
        // Not RESP framing we understand: treat the buffer as never complete; the client
        // times out, which is the right outcome for a ceiling that cannot answer.
        return None;
    }
    let nl = rest.iter().position(|&b| b == b'\n')?;
    // `get`, not indexing: a bare `*\n` would otherwise slice 1..0 and panic the task.
    let n = std::str::from_utf8(rest.get(1..nl.saturating_sub(1))?)
        .ok()?
        .parse()
        .ok()?;
    Some((n, at + nl + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies() -> Replies {
        Replies {
            text_hit: b"HIT\r\n".to_vec(),
            resp_hit: b"$1\r\nv\r\n".to_vec(),
            value: b"v".to_vec(),
        }
    }

    #[test]
    fn frames_text_requests() {
        let r = replies();
        let mut out = BytesMut::new();
        let buf = b"set k 0 0 3\r\nabc\r\nget k\r\nset k 0 0 3\r\nab";
        assert_eq!(text(buf, &r, &mut out), Some(18));
        assert_eq!(text(&buf[18..], &r, &mut out), Some(7));
        assert_eq!(text(&buf[25..], &r, &mut out), None);
        assert_eq!(&out[..], b"STORED\r\nHIT\r\n");
    }

    /// Frames everything complete at the front of `buf`; returns the bytes used and the
    /// replies, as the connection loop does with one read's worth of bytes.
    fn frame_all(wire: Wire, buf: &[u8], r: &Replies) -> (usize, Vec<u8>) {
        let mut out = BytesMut::new();
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            let n = match wire {
                Wire::Text => text(rest, r, &mut out),
                Wire::Binary => binary(rest, r, &mut out),
                Wire::Resp => resp(rest, r, &mut out),
            };
            match n {
                Some(n) => used += n,
                None => return (used, out.to_vec()),
            }
        }
    }

    /// Every request the generator sends, split at every byte: the two reads together frame
    /// exactly what the whole stream frames (no request lost, merged or answered twice).
    #[test]
    fn framing_is_independent_of_how_reads_split_the_stream() {
        use crate::proto::{Op, Protocol, encode};
        let r = replies();
        let key = bytes::Bytes::from_static(b"memc.sess.key.0123");
        let value = bytes::Bytes::from_static(b"ab\r\ncd");
        let ops = [
            Op::Add {
                key: key.clone(),
                value: bytes::Bytes::from_static(b"1"),
                ttl: 30,
            },
            Op::GetK(key.clone()),
            Op::Set {
                key: key.clone(),
                value: value.clone(),
                ttl: 1800,
            },
            Op::Delete(key.clone()),
            Op::Get(key.clone()),
            Op::Touch {
                key: key.clone(),
                ttl: 60,
            },
            Op::Set {
                key: key.clone(),
                value,
                ttl: 0,
            },
        ];
        for (protocol, wire) in [
            (Protocol::Text, Wire::Text),
            (Protocol::Binary, Wire::Binary),
            (Protocol::Resp, Wire::Resp),
        ] {
            let mut buf = BytesMut::new();
            for (i, op) in ops.iter().enumerate() {
                encode(protocol, op, i as u32, &mut buf);
            }
            let (all, whole) = frame_all(wire, &buf, &r);
            assert_eq!(all, buf.len(), "{protocol:?}: the whole stream frames");
            for split in 0..buf.len() {
                let (first, mut out) = frame_all(wire, &buf[..split], &r);
                let (second, rest) = frame_all(wire, &buf[first..], &r);
                out.extend_from_slice(&rest);
                assert_eq!(first + second, buf.len(), "{protocol:?} split at {split}");
                assert_eq!(out, whole, "{protocol:?} split at {split}");
            }
        }
        // Malformed RESP is never complete, and never a panic.
        assert_eq!(resp(b"*\n", &r, &mut BytesMut::new()), None);
    }

    #[test]
    fn frames_resp_and_binary() {
        let r = replies();
        let mut out = BytesMut::new();
        let mut buf = BytesMut::new();
        crate::resp::encode_command(&[b"GET", b"k"], &mut buf);
        let len = buf.len();
        assert_eq!(resp(&buf, &r, &mut out), Some(len));
        assert_eq!(resp(&buf[..len - 1], &r, &mut out), None);
        assert_eq!(&out[..], b"$1\r\nv\r\n");

        let mut req = BytesMut::new();
        crate::proto::encode(
            crate::proto::Protocol::Binary,
            &crate::proto::Op::GetK("key".into()),
            9,
            &mut req,
        );
        let mut out = BytesMut::new();
        assert_eq!(binary(&req, &r, &mut out), Some(req.len()));
        let mut reply = out.clone();
        let decoded = sessiond_proto_memcache::binary::decode_response(&mut reply)
            .unwrap()
            .unwrap();
        assert_eq!(
            (decoded.opaque, &decoded.key[..], &decoded.value[..]),
            (9, &b"key"[..], &b"v"[..])
        );
    }
}
