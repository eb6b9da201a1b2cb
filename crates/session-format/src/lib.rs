//! Which keys are web sessions, and whose: key families and session formats.
//!
//! sessiond stores sessions for applications it does not control: PHP through
//! php-memcached or phpredis, Node through express-session and connect-redis, Rust through
//! sessiond's own middleware. To count, list and revoke a user's sessions, the server must
//! recognise a session key when one is written and find the user id in its value. This
//! crate is that knowledge, as pure functions; the server calls it from its store observer
//! on every write of a session key.
//!
//! - A [`Family`] describes one kind of session key: a prefix (and suffix) around the id,
//!   keys to exclude (lock keys), the value's [`Format`], and a [`UserPath`] to the user id.
//!   [`Families`] is an ordered set of them; [`Families::classify`] tells which family a key
//!   belongs to (longest prefix wins) without allocating, and [`Families::id`] cuts out the
//!   session id. [`Families::presets`] are php-memcached, phpredis, express and sessiond.
//! - [`Family::find_user`] (and [`Family::identify`], which also recognises sessiond
//!   records that are not sessions) walks a value once, skipping everything off the path,
//!   and allocates only the user id it returns. [`Family::decode`] builds the whole session
//!   as JSON for an administrator.
//! - [`PhpSession`] reads a PHP session without loss and writes it back, for the middleware's
//!   store that shares sessions with PHP: each top-level variable as exact JSON, or kept as
//!   its bytes when JSON cannot hold it (objects, enum cases, references); see its module.
//!
//! # Formats
//!
//! PHP's three handlers (`php`, `php_binary`, `php_serialize`) wrap PHP's `serialize()`
//! format, which the `phpserz` crate tokenizes; this crate adds the framing and the
//! structure (module `php`). JSON (express-session, sessiond's records) goes through
//! serde_json's parser with a visitor that keeps only what the walk wants (module `json`).
//! The igbinary and msgpack handlers are not supported: their values do not decode (or,
//! under the `php` framing, a value holding no `|` at all reads as an empty session, as PHP
//! itself would read it).
//!
//! # What a decoded session looks like
//!
//! A session is a map. PHP arrays become JSON objects with string keys (an integer key is
//! its decimal string); a PHP object becomes an object whose first key is `__class` (the
//! class name), followed by its properties without PHP's visibility mangling; an old-style
//! `C:` object is `{"__class", "__serialized"}`, an enum case `{"__class", "__case"}`, and a
//! reference (`r:`/`R:`) `{"__ref": n}`, unresolved. When a key appears twice in one
//! container, the last occurrence wins, as in PHP and `JSON.parse`. PHP's `INF` and `NAN`
//! become null. Strings that are not UTF-8 are converted lossily. A [`UserPath`] addresses
//! exactly this view, so `find_user(v)` is always the path looked up in `decode(v)`, error for
//! error; the one thing the JSON does not show is which of several keys a prefix step (`*`)
//! takes: the first in the session's own order, while JSON maps here are sorted by key.
//!
//! # Limits
//!
//! Hostile values are refused with a [`DecodeError`], never a panic, unbounded recursion
//! or an allocation out of proportion: at most [`MAX_VALUE_LEN`] bytes (1 MiB, checked
//! before reading; the server keeps longer values but finds no user in them), at most
//! [`MAX_DEPTH`] nested containers, at most [`MAX_ELEMENTS`] values (a PHP array declaring
//! more is refused before it is read), user ids and record kinds of at most
//! [`MAX_FIELD_LEN`] bytes. A value that is refused is still stored by the server, which
//! counts it and treats the session as having no user.
//!
//! # sessiond's MemcachedStore and the `express` preset
//!
//! sessiond's middleware has two stores that reach sessiond. Its `RedisStore` keeps a hash
//! at `sess:{<id>}` whose field `r` is the record: the `sessiond` preset. Its
//! `MemcachedStore` keeps a string at `sess:<id>`, the JSON envelope
//! `{"v":<version>,"r":<record>}`. Those keys fall to the `express` preset, which reads
//! them as JSON sessions without `/passport/user`: they count as sessions with no user, and
//! the records that are not sessions (sessiond-tokens' revocations and tickets) count too.
//! A deployment that uses `MemcachedStore` should replace `express` with
//! `name=sessiond-memcached,prefix=sess:,format=json,user=/r/data/user_id`, which finds the
//! user (records of another kind still count as sessions without a user).
//!
//! What this crate does not do: I/O, logging, reading a clock, or knowing the store.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bytes;
mod error;
mod family;
mod json;
mod path;
mod php;
mod php_session;
#[cfg(test)]
mod tests;
mod walk;

pub use error::{ConfigError, DecodeError};
pub use family::{Families, Family, Format, Identity};
pub use path::UserPath;
pub use php_session::{EncodeError, PhpSession, SerializeHandler};

/// The longest value [`Family::find_user`] and [`Family::decode`] read: 1 MiB. A PHP session
/// past that is far beyond what PHP's own session handlers are tuned for; refusing it
/// first bounds the work of one write.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// The deepest nesting of arrays, objects and maps, counting the session itself as 1.
/// Laravel and Symfony sessions nest a handful of levels; 32 bounds the walkers' recursion.
pub const MAX_DEPTH: usize = 32;

/// The most values one session may hold, counting every scalar and container at every
/// level (and the pseudo-keys of PHP objects). This bounds what [`Family::decode`] builds:
/// a 1 MiB value could otherwise hold half a million of them.
pub const MAX_ELEMENTS: usize = 65_536;

/// The longest user id (and sessiond record `kind`) accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 256;
