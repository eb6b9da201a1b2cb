//! One item in one allocation: a header, the key and the value.
//!
//! Memory per item is what a session store is judged on, so an item is laid out the way
//! memcached lays out its own: a single heap block
//!
//! ```text
//! string:      [ header (48 B) | key | value bytes ]
//! collection:  [ header (48 B) | Value (32 B) | key ]
//! ```
//!
//! and the shard's hash table holds only the thin pointer to it (8 bytes a slot). The key is
//! not stored a second time anywhere: the table compares keys inside the items, and the
//! timing wheel names items by their hash.
//!
//! The block is reference-counted. A read of a string hands out a [`Bytes`] built with
//! [`Bytes::from_owner`] around a second handle to the block: zero-copy, at the price of one
//! small, short-lived allocation per read (the `Bytes` owner box). That is the only way a
//! second handle comes to exist, so a collection's block always has exactly one handle (the
//! table's) and `&mut Item` gives exclusive access to its `Value`.
//!
//! The header's changing fields (CAS, deadline, `wheel_at`) change only under the shard
//! lock, but a reader on another thread may hold the block at the same time (it reads only
//! the immutable lengths and the value bytes). They are therefore atomics, stored and loaded
//! `Relaxed`: plain moves on x86-64 and no `&mut` to shared memory anywhere. Everything else
//! in the block is written once, before the block is shared.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use bytes::Bytes;

use crate::Entry;
use crate::budget::ITEM_OVERHEAD;
use crate::value::Value;

/// Set in `Header::key_len` for a collection.
const COLL_BIT: u32 = 1 << 31;

#[repr(C)]
struct Header {
    /// Handles to this block: the table's, plus one per string value handed out.
    refs: AtomicU32,
    /// The client flags; fixed for the life of the block (a write with other flags makes a
    /// new block).
    flags: u32,
    cas: AtomicU64,
    /// Unix ms; 0 means the item never expires.
    deadline: AtomicU64,
    /// When this item's live wheel entry fires; 0 means it has none.
    wheel_at: AtomicU64,
    /// The key's length, with [`COLL_BIT`] set for a collection.
    key_len: u32,
    /// A string's length (0 for a collection).
    val_len: u32,
    /// When the item was last read or written, in Unix seconds (memcached's `l`, "last
    /// access"); 32 bits last until 2106.
    access: AtomicU32,
    /// The [`Marks`] memcached's meta commands keep per item (hit before, stale, recache
    /// right handed out). A new block starts with none: a write clears them, as memcached's
    /// new item does.
    marks: AtomicU32,
}

/// Per-item marks for memcached's meta protocol (`Item::marks`), as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks(pub u32);

impl Marks {
    /// The item has been read since it was written (`h`).
    pub const FETCHED: u32 = 1;
    /// The item was invalidated (`md … I`): served with `X` until rewritten.
    pub const STALE: u32 = 2;
    /// One client has been told it won the right to recache (`W`); others see `Z`.
    pub const TOKEN_SENT: u32 = 4;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

const HEADER: usize = size_of::<Header>();
// The collection's `Value` sits right after the header and must be aligned.
const _: () = assert!(HEADER == 48 && HEADER.is_multiple_of(align_of::<Value>()));
const _: () = assert!(align_of::<Header>() >= align_of::<Value>());
const VALUE: usize = size_of::<Value>();

fn layout(tail: usize) -> Layout {
    Layout::from_size_align(HEADER + tail, align_of::<Header>()).expect("item size overflows")
}

/// A handle to one item's block. See the module documentation.
pub(crate) struct Item {
    ptr: NonNull<Header>,
}

// SAFETY: the block holds atomics, bytes written once before sharing, and (for a
// collection) a `Value`, which is `Send + Sync`. Shared handles only read immutable parts or
// use atomics; the `Value` is reached mutably only through `&mut Item` on the sole handle.
unsafe impl Send for Item {}
// SAFETY: see above.
unsafe impl Sync for Item {}

impl Item {
    /// Allocates a block, writes the header and returns the start of its data area.
    fn alloc(tail: usize, key_len: u32, val_len: u32, flags: u32, cas: u64) -> (Item, *mut u8) {
        let layout = layout(tail);
        // SAFETY: the layout is never zero-sized (the header alone is 48 bytes).
        let raw = unsafe { alloc::alloc(layout) }.cast::<Header>();
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: `raw` is a fresh allocation large and aligned enough for a header.
        unsafe {
            raw.write(Header {
                refs: AtomicU32::new(1),
                flags,
                cas: AtomicU64::new(cas),
                deadline: AtomicU64::new(0),
                wheel_at: AtomicU64::new(0),
                key_len,
                val_len,
                access: AtomicU32::new(0),
                marks: AtomicU32::new(0),
            });
        }
        // SAFETY: the data area starts right after the header, inside the allocation.
        let data = unsafe { raw.cast::<u8>().add(HEADER) };
        (Item { ptr }, data)
    }

    /// A string item whose value is the concatenation of `parts`, with no deadline.
    pub fn new_str(key: &[u8], parts: &[&[u8]], flags: u32, cas: u64) -> Item {
        let val_len: usize = parts.iter().map(|p| p.len()).sum();
        // Keys are at most a few KiB and strings at most `--max-item-size` (≤ 1 GiB), so
        // 31/32-bit lengths keep the header at 48 bytes.
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|l| l & COLL_BIT == 0)
            .expect("key longer than 2 GiB");
        let val_len32 = u32::try_from(val_len).expect("string longer than 4 GiB");
        let (item, data) = Item::alloc(key.len() + val_len, key_len, val_len32, flags, cas);
        // SAFETY: the data area holds `key.len() + val_len` bytes, written here in order;
        // the sources are caller slices that cannot overlap a fresh allocation.
        unsafe {
            ptr::copy_nonoverlapping(key.as_ptr(), data, key.len());
            let mut at = data.add(key.len());
            for part in parts {
                ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
                at = at.add(part.len());
            }
        }
        item
    }

    /// A collection item (`value` must not be a string), with no flags and no deadline.
    pub fn new_coll(key: &[u8], value: Value, cas: u64) -> Item {
        debug_assert!(!matches!(value, Value::Str(_)));
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|l| l & COLL_BIT == 0)
            .expect("key longer than 2 GiB");
        let (item, data) = Item::alloc(VALUE + key.len(), key_len | COLL_BIT, 0, 0, cas);
        // SAFETY: the data area is aligned for `Value` (asserted above) and holds a `Value`
        // followed by the key.
        unsafe {
            data.cast::<Value>().write(value);
            ptr::copy_nonoverlapping(key.as_ptr(), data.add(VALUE), key.len());
        }
        item
    }

    fn header(&self) -> &Header {
        // SAFETY: the block lives as long as any handle to it.
        unsafe { self.ptr.as_ref() }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data area starts right after the header, inside the allocation.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(HEADER) }
    }

    /// Whether this is a string (everything else is a collection).
    pub fn is_str(&self) -> bool {
        self.header().key_len & COLL_BIT == 0
    }

    fn key_len(&self) -> usize {
        (self.header().key_len & !COLL_BIT) as usize
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        let offset = if self.is_str() { 0 } else { VALUE };
        // SAFETY: the key was written at this offset when the block was made and never
        // changes.
        unsafe { std::slice::from_raw_parts(self.data().add(offset), self.key_len()) }
    }

    /// A string's bytes; `None` for a collection.
    pub fn str_value(&self) -> Option<&[u8]> {
        if !self.is_str() {
            return None;
        }
        let len = self.header().val_len as usize;
        // SAFETY: a string's value follows its key and never changes.
        Some(unsafe { std::slice::from_raw_parts(self.data().add(self.key_len()), len) })
    }

    /// A collection's value; `None` for a string.
    pub fn coll(&self) -> Option<&Value> {
        // SAFETY: a collection block holds an initialised `Value` at the data area's start;
        // it is changed only through `coll_mut`, which needs `&mut self`.
        (!self.is_str()).then(|| unsafe { &*self.data().cast::<Value>() })
    }

    /// A collection's value, to change in place; `None` for a string.
    pub fn coll_mut(&mut self) -> Option<&mut Value> {
        if self.is_str() {
            return None;
        }
        // Only strings are ever shared (`value_bytes`), so this is the sole handle.
        debug_assert_eq!(self.header().refs.load(Ordering::Relaxed), 1);
        // SAFETY: as in `coll`, and `&mut self` on the only handle excludes every other
        // access to the block.
        Some(unsafe { &mut *self.data().cast::<Value>() })
    }

    /// A string's value as a zero-copy `Bytes` that keeps the block alive; `None` for a
    /// collection.
    pub fn value_bytes(&self) -> Option<Bytes> {
        match self.header().val_len {
            _ if !self.is_str() => None,
            0 => Some(Bytes::new()),
            _ => Some(Bytes::from_owner(StrValue(self.share()))),
        }
    }

    /// The value, whatever the type (a string shares the block; a collection clones its
    /// `Arc`).
    pub fn value(&self) -> Value {
        match self.value_bytes() {
            Some(bytes) => Value::Str(bytes),
            None => self
                .coll()
                .cloned()
                .unwrap_or_else(|| Value::Str(Bytes::new())),
        }
    }

    /// A second handle. Private: only string values are shared (see `coll_mut`).
    fn share(&self) -> Item {
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if old > u32::MAX / 2 {
            // As `Arc` does: a count this high means handles are being leaked.
            std::process::abort();
        }
        Item { ptr: self.ptr }
    }

    pub fn flags(&self) -> u32 {
        self.header().flags
    }

    /// When the item was last accessed, in Unix seconds.
    pub fn last_access(&self) -> u32 {
        self.header().access.load(Ordering::Relaxed)
    }

    /// Records an access at `now` (Unix ms).
    pub fn set_last_access(&mut self, now: u64) {
        let secs = u32::try_from(now / 1000).unwrap_or(u32::MAX);
        self.header().access.store(secs, Ordering::Relaxed);
    }

    pub fn marks(&self) -> Marks {
        Marks(self.header().marks.load(Ordering::Relaxed))
    }

    pub fn set_marks(&mut self, marks: Marks) {
        self.header().marks.store(marks.0, Ordering::Relaxed);
    }

    pub fn cas(&self) -> u64 {
        self.header().cas.load(Ordering::Relaxed)
    }

    pub fn set_cas(&mut self, cas: u64) {
        self.header().cas.store(cas, Ordering::Relaxed);
    }

    /// The raw deadline: Unix ms, 0 for none.
    pub fn deadline_raw(&self) -> u64 {
        self.header().deadline.load(Ordering::Relaxed)
    }

    pub fn set_deadline_raw(&mut self, deadline: u64) {
        self.header().deadline.store(deadline, Ordering::Relaxed);
    }

    pub fn deadline(&self) -> Option<u64> {
        Some(self.deadline_raw()).filter(|&d| d != 0)
    }

    pub fn wheel_at(&self) -> u64 {
        self.header().wheel_at.load(Ordering::Relaxed)
    }

    pub fn set_wheel_at(&mut self, at: u64) {
        self.header().wheel_at.store(at, Ordering::Relaxed);
    }

    pub fn is_live(&self, now: u64) -> bool {
        let deadline = self.deadline_raw();
        deadline == 0 || deadline > now
    }

    pub fn is_empty_collection(&self) -> bool {
        self.coll().is_some_and(Value::is_empty_collection)
    }

    /// What the item is charged to the budget: derived, not stored (a collection keeps a
    /// running byte count, so this is O(1) for every type).
    pub fn charge(&self) -> u64 {
        let value = match self.coll() {
            Some(coll) => coll.cost(),
            None => u64::from(self.header().val_len),
        };
        self.key_len() as u64 + value + ITEM_OVERHEAD
    }

    /// A string item as memcached sees it; `None` for a collection.
    pub fn string_entry(&self) -> Option<Entry<Bytes>> {
        Some(Entry {
            value: self.value_bytes()?,
            flags: self.flags(),
            cas: self.cas(),
            deadline: self.deadline(),
        })
    }

    pub fn entry(&self) -> Entry {
        Entry {
            value: self.value(),
            flags: self.flags(),
            cas: self.cas(),
            deadline: self.deadline(),
        }
    }

    /// The item's value, consuming the handle (a string keeps the block, uncopied).
    pub fn into_value(self) -> Value {
        if self.is_str() {
            if self.header().val_len == 0 {
                return Value::Str(Bytes::new());
            }
            return Value::Str(Bytes::from_owner(StrValue(self)));
        }
        self.value()
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        // The same protocol as `Arc`: release on decrement, acquire before freeing.
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let coll = !self.is_str();
        let tail = if coll {
            VALUE + self.key_len()
        } else {
            self.key_len() + self.header().val_len as usize
        };
        // SAFETY: this was the last handle; the block was allocated with this layout, and a
        // collection block holds an initialised `Value` that nothing else will drop.
        unsafe {
            if coll {
                ptr::drop_in_place(self.data().cast::<Value>());
            }
            alloc::dealloc(self.ptr.as_ptr().cast(), layout(tail));
        }
    }
}

/// The owner behind a string value handed out as `Bytes`.
struct StrValue(Item);

impl AsRef<[u8]> for StrValue {
    fn as_ref(&self) -> &[u8] {
        self.0.str_value().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_string_block_holds_key_and_value_and_outlives_the_table_handle() {
        let mut item = Item::new_str(b"key", &[b"val", b"ue"], 7, 42);
        item.set_deadline_raw(99);
        item.set_wheel_at(50);
        assert_eq!(
            (item.key(), item.str_value(), item.flags(), item.cas()),
            (&b"key"[..], Some(&b"value"[..]), 7, 42)
        );
        assert_eq!((item.deadline(), item.wheel_at()), (Some(99), 50));
        assert_eq!(item.charge(), 3 + 5 + ITEM_OVERHEAD);
        let read = item.value_bytes().unwrap();
        let moved = item.value_bytes().unwrap();
        drop(item);
        let elsewhere = std::thread::spawn(move || moved.to_vec()).join().unwrap();
        assert_eq!((&read[..], &elsewhere[..]), (&b"value"[..], &b"value"[..]));
        let empty = Item::new_str(b"", &[], 0, 0);
        assert_eq!(
            (empty.key(), empty.value_bytes()),
            (&b""[..], Some(Bytes::new()))
        );
        assert_eq!(empty.into_value(), Value::Str(Bytes::new()));
    }

    #[test]
    fn a_collection_block_owns_its_value_and_drops_it() {
        let mut set = crate::value::Set::default();
        set.insert(Bytes::from_static(b"m"));
        let shared = Arc::new(set);
        let mut item = Item::new_coll(b"k", Value::Set(shared.clone()), 3);
        assert_eq!(Arc::strong_count(&shared), 2);
        assert_eq!(
            (item.key(), item.str_value(), item.value_bytes()),
            (&b"k"[..], None, None)
        );
        assert!(!item.is_str() && !item.is_empty_collection());
        let Some(Value::Set(inner)) = item.coll_mut() else {
            panic!()
        };
        Arc::make_mut(inner).remove(b"m");
        assert!(item.is_empty_collection());
        assert_eq!(
            Arc::strong_count(&shared),
            1,
            "make_mut copied the shared set"
        );
        let value = item.value();
        drop(item);
        assert!(matches!(value, Value::Set(s) if s.is_empty()));
    }
}
