//! Replies as a sequence of byte chunks, so that a value the caller already holds as [`Bytes`]
//! (a store's shared value) is sent by reference instead of being copied into the reply.
//!
//! [`ReplyChunks`] is a write buffer in two parts: encoded bytes (headers, status lines,
//! trailers) are appended to one ordinary [`BytesMut`], and a value of at least
//! [`SHARE_MIN`] bytes is recorded as a clone of its `Bytes` (a reference count) together with
//! the offset in the encoded bytes where it goes. The wire bytes are exactly what
//! [`text::encode_reply`](crate::text::encode_reply) and
//! [`binary::encode_reply`](crate::binary::encode_reply) produce; only the copies are gone,
//! and with them the memory a large multi-get reply would take.
//!
//! It implements [`Buf`], whose [`Buf::chunks_vectored`] hands the chunks out as `IoSlice`s,
//! so a caller can write it with one vectored write (`writev`) and [`Buf::advance`] past
//! whatever a partial write took. Nothing here performs I/O.
//!
//! Offsets rather than splitting the encoded bytes into frozen `Bytes` per value: a split
//! turns the buffer into a reference-counted one (an atomic increment per split and a
//! decrement per chunk written), which measurably cost more than the copy it replaced for
//! 2 KiB values. The encoded bytes only ever grow until everything has been consumed, and then
//! the buffer is cleared and reused from its start.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Values shorter than this are copied rather than shared: below a few hundred bytes a copy
/// is cheaper than what sharing costs (a reference-count increment and decrement, and one more
/// `iovec` entry for the kernel to walk).
pub const SHARE_MIN: usize = 512;

/// A reply being built: encoded bytes plus shared values, in wire order. See the module docs.
#[derive(Debug, Default)]
pub struct ReplyChunks {
    /// Every encoded byte appended since the buffer was last empty; `buf[pos..]` is unsent.
    buf: BytesMut,
    /// How much of `buf` has been consumed.
    pos: usize,
    /// Shared values in wire order, each with the offset in `buf` it comes before. The front
    /// value may be partly consumed (advanced); none is empty.
    shared: VecDeque<(usize, Bytes)>,
    /// Unconsumed bytes in `shared`.
    shared_len: usize,
}

impl ReplyChunks {
    /// An empty reply buffer.
    pub fn new() -> ReplyChunks {
        ReplyChunks::default()
    }

    /// An empty reply buffer with room for `capacity` encoded bytes.
    pub fn with_capacity(capacity: usize) -> ReplyChunks {
        ReplyChunks {
            buf: BytesMut::with_capacity(capacity),
            ..ReplyChunks::default()
        }
    }

    /// The buffer that encoded bytes are appended to: whatever is appended here goes on the
    /// wire after everything queued so far, so any encoder writing to a `BytesMut` can write
    /// here (error replies, for instance). Append only: shared values are placed by offsets
    /// into it, so truncating or splitting it would garble the reply (never panic).
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends `value`: shared if it is at least [`SHARE_MIN`] bytes, copied otherwise.
    pub fn put_value(&mut self, value: &Bytes) {
        if value.len() < SHARE_MIN {
            self.buf.extend_from_slice(value);
            return;
        }
        self.shared_len += value.len();
        self.shared.push_back((self.buf.len(), value.clone()));
    }

    /// Bytes waiting to be written, shared values included.
    pub fn len(&self) -> usize {
        self.buf.len().saturating_sub(self.pos) + self.shared_len
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything waiting (keeping the encoded bytes' allocation).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.shared.clear();
        self.shared_len = 0;
    }

    /// Encoded bytes from `from` up to `to` (clamped, so a misused `buf_mut` cannot panic).
    fn encoded(&self, from: usize, to: usize) -> &[u8] {
        let to = to.min(self.buf.len());
        &self.buf[from.min(to)..to]
    }
}

impl Buf for ReplyChunks {
    fn remaining(&self) -> usize {
        self.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.shared.front() {
            Some((at, value)) if *at <= self.pos => value,
            Some((at, _)) => self.encoded(self.pos, *at),
            None => self.encoded(self.pos, self.buf.len()),
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut from = self.pos;
        for (at, value) in &self.shared {
            if *at > from {
                if n == dst.len() {
                    return n;
                }
                dst[n] = IoSlice::new(self.encoded(from, *at));
                n += 1;
                from = *at;
            }
            if n == dst.len() {
                return n;
            }
            dst[n] = IoSlice::new(value);
            n += 1;
        }
        if from < self.buf.len() && n < dst.len() {
            dst[n] = IoSlice::new(self.encoded(from, self.buf.len()));
            n += 1;
        }
        n
    }

    /// Consumes `cnt` bytes from the front (what a write took).
    ///
    /// # Panics
    ///
    /// If `cnt` is more than [`Buf::remaining`], as `Buf` allows.
    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len(), "advanced past the end of a reply buffer");
        while cnt > 0 {
            match self.shared.front_mut() {
                Some((at, value)) if *at <= self.pos => {
                    if cnt < value.len() {
                        value.advance(cnt);
                        self.shared_len -= cnt;
                        return;
                    }
                    cnt -= value.len();
                    self.shared_len -= value.len();
                    self.shared.pop_front();
                }
                front => {
                    let end = front.map_or(self.buf.len(), |(at, _)| *at);
                    let step = cnt.min(end - self.pos);
                    self.pos += step;
                    cnt -= step;
                }
            }
        }
        if self.pos >= self.buf.len() && self.shared.is_empty() {
            // Everything is out: start again at the front of the same allocation.
            self.buf.clear();
            self.pos = 0;
        }
    }
}

/// Where an encoder puts a reply: a plain `BytesMut` (values copied) or [`ReplyChunks`]
/// (large values shared). Lets each codec keep one encoder for both.
pub(crate) trait ReplyOut {
    /// The buffer for encoded bytes.
    fn bytes(&mut self) -> &mut BytesMut;
    /// Appends a value.
    fn value(&mut self, value: &Bytes);
}

impl ReplyOut for BytesMut {
    fn bytes(&mut self) -> &mut BytesMut {
        self
    }

    fn value(&mut self, value: &Bytes) {
        self.extend_from_slice(value);
    }
}

impl ReplyOut for ReplyChunks {
    fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn value(&mut self, value: &Bytes) {
        self.put_value(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything waiting, as one contiguous byte string (without consuming it).
    fn contents(chunks: &ReplyChunks) -> Vec<u8> {
        let mut slices = vec![IoSlice::new(&[]); 64];
        let n = chunks.chunks_vectored(&mut slices);
        slices[..n].iter().flat_map(|s| s.to_vec()).collect()
    }

    fn sample() -> (ReplyChunks, Vec<u8>, Bytes) {
        let big = Bytes::from(vec![b'x'; SHARE_MIN]);
        let mut chunks = ReplyChunks::with_capacity(64);
        chunks.buf_mut().extend_from_slice(b"VALUE a 0 512\r\n");
        chunks.put_value(&big);
        chunks.buf_mut().extend_from_slice(b"\r\nVALUE b 0 3\r\n");
        chunks.put_value(&Bytes::from_static(b"abc"));
        chunks.buf_mut().extend_from_slice(b"\r\nVALUE c 0 512\r\n");
        chunks.put_value(&big);
        chunks.buf_mut().extend_from_slice(b"\r\nEND\r\n");
        let expected = [
            &b"VALUE a 0 512\r\n"[..],
            &big,
            b"\r\nVALUE b 0 3\r\nabc\r\nVALUE c 0 512\r\n",
            &big,
            b"\r\nEND\r\n",
        ]
        .concat();
        (chunks, expected, big)
    }

    #[test]
    fn large_values_are_shared_and_small_ones_copied() {
        let (chunks, expected, big) = sample();
        assert_eq!(chunks.len(), expected.len());
        assert_eq!(contents(&chunks), expected);
        // Header, value, the middle (with the small value copied in), value, trailer.
        let mut slices = vec![IoSlice::new(&[]); 8];
        assert_eq!(chunks.chunks_vectored(&mut slices), 5);
        assert_eq!(slices[1].as_ptr(), big.as_ptr(), "the value is not copied");
        assert_eq!(slices[3].as_ptr(), big.as_ptr(), "the value is not copied");
    }

    #[test]
    fn vectored_output_fits_any_number_of_slots() {
        let (chunks, expected, _) = sample();
        for slots in 1..=6 {
            let mut slices = vec![IoSlice::new(&[]); slots];
            let n = chunks.chunks_vectored(&mut slices);
            assert_eq!(n, slots.min(5));
            let got: Vec<u8> = slices[..n].iter().flat_map(|s| s.to_vec()).collect();
            assert!(expected.starts_with(&got));
            assert_eq!(chunks.chunk(), &slices[0][..]);
        }
    }

    #[test]
    fn partial_writes_resume_at_every_offset() {
        let (_, expected, _) = sample();
        for first in 0..=expected.len() {
            for second in [1, 7, SHARE_MIN, expected.len()] {
                let (mut chunks, _, _) = sample();
                let mut written = Vec::new();
                let mut take = first;
                while chunks.has_remaining() {
                    let n = take.min(chunks.chunk().len()).max(1);
                    written.extend_from_slice(&chunks.chunk()[..n]);
                    chunks.advance(n);
                    assert_eq!(chunks.remaining(), expected.len() - written.len());
                    if take == first {
                        // What is left after the first partial write is the rest of the reply.
                        assert_eq!(contents(&chunks), expected[written.len()..]);
                    }
                    take = second;
                }
                assert_eq!(written, expected, "first write of {first}");
                assert!(chunks.is_empty());
            }
        }
    }

    #[test]
    fn advancing_across_several_chunks_at_once() {
        let (_, expected, _) = sample();
        for n in 0..=expected.len() {
            let (mut chunks, _, _) = sample();
            chunks.advance(n);
            assert_eq!(chunks.len(), expected.len() - n);
            assert_eq!(contents(&chunks), expected[n..]);
        }
    }

    #[test]
    #[should_panic(expected = "advanced past the end")]
    fn advancing_past_the_end_panics() {
        let (mut chunks, expected, _) = sample();
        chunks.advance(expected.len() + 1);
    }

    #[test]
    fn encoded_bytes_reuse_their_allocation_once_written() {
        let big = Bytes::from(vec![b'x'; SHARE_MIN]);
        let mut chunks = ReplyChunks::with_capacity(1024);
        let start = chunks.buf_mut().as_ptr() as usize;
        for _ in 0..100 {
            chunks.buf_mut().extend_from_slice(b"head");
            chunks.put_value(&big);
            chunks.buf_mut().extend_from_slice(b"tail");
            chunks.advance(chunks.remaining());
            chunks.buf_mut().reserve(16);
            // Still inside the first allocation: written chunks gave it back.
            let at = chunks.buf_mut().as_ptr() as usize;
            assert!((start..start + 1024).contains(&at));
        }
    }

    #[test]
    fn truncating_the_encoded_bytes_garbles_but_never_panics() {
        let (mut chunks, _, _) = sample();
        chunks.buf_mut().truncate(3);
        let _ = contents(&chunks);
        while chunks.has_remaining() {
            let n = chunks.chunk().len().max(1);
            chunks.advance(n);
        }
        assert!(chunks.is_empty());
    }

    #[test]
    fn a_huge_multi_get_costs_references_not_copies() {
        // 1024 values of 1 MiB: one shared buffer, so the reply holds references only.
        let value = Bytes::from(vec![0u8; 1024 * 1024]);
        let mut chunks = ReplyChunks::new();
        for _ in 0..1024 {
            chunks.buf_mut().extend_from_slice(b"VALUE k 0 1048576\r\n");
            chunks.put_value(&value);
            chunks.buf_mut().extend_from_slice(b"\r\n");
        }
        assert_eq!(chunks.len(), 1024 * (19 + 1024 * 1024 + 2));
        let mut slices = vec![IoSlice::new(&[]); 4096];
        let n = chunks.chunks_vectored(&mut slices);
        let shared = slices[..n]
            .iter()
            .filter(|s| s.as_ptr() == value.as_ptr())
            .count();
        assert_eq!(shared, 1024);
        chunks.clear();
        assert!(chunks.is_empty());
    }
}
