//! Where the user id sits inside a session: [`UserPath`], JSON-pointer syntax with one
//! extension, a trailing `*` that matches a key prefix.
//!
//! The prefix form exists for Laravel, whose login key carries a hash of the guard's class
//! name (`login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d`): `/login_web_*` finds it
//! without the configuration knowing the hash.
//!
//! Paths are matched against keys as bytes, so the walkers compare without allocating.
//! An integer key (a PHP list index, a JSON array position) matches its decimal spelling, and
//! a PHP key that is not UTF-8 its lossy conversion: what a path matches is always the key
//! as the decoded JSON spells it.

use std::fmt;
use std::str::FromStr;

use crate::MAX_FIELD_LEN;
use crate::error::{ConfigError, DecodeError};

/// A path to the user id inside a decoded session, in JSON-pointer syntax (RFC 6901):
/// `/passport/user`, `/user_id`, `/auth/~1id` for the key `/id` (`~1` is `/`, `~0` is `~`).
/// A segment that ends in `*` matches the first key, in the session's own order, that starts
/// with the rest of the segment: `/login_web_*`.
///
/// What a path finds becomes a user id if it is an integer (its decimal string) or a
/// non-empty string (lossy UTF-8, at most [`MAX_FIELD_LEN`] bytes, else
/// [`DecodeError::UserTooLong`]); anything else (a float, a boolean, null, an array, an
/// object, an empty string) means the session has no user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPath {
    text: String,
    segments: Box<[Segment]>,
}

/// One step of a [`UserPath`], unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// The key with exactly these bytes. When the key appears more than once in a container,
    /// the last one counts, as it does when PHP or a JSON parser builds the container.
    Exact(Box<[u8]>),
    /// The first key, in the session's own order, that starts with these bytes (and, like
    /// an exact key, its last occurrence if it appears again).
    Prefix(Box<[u8]>),
}

impl UserPath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl FromStr for UserPath {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let bad = |reason| ConfigError::BadUserPath {
            path: text.to_owned(),
            reason,
        };
        // The empty pointer (the whole document) names no user: a session is a map.
        let Some(rest) = text.strip_prefix('/') else {
            return Err(bad("must start with `/`"));
        };
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            let (raw, prefix) = match raw.strip_suffix('*') {
                Some(head) => (head, true),
                None => (raw, false),
            };
            let mut name = Vec::with_capacity(raw.len());
            let mut chars = raw.bytes();
            while let Some(byte) = chars.next() {
                if byte != b'~' {
                    name.push(byte);
                    continue;
                }
                match chars.next() {
                    Some(b'0') => name.push(b'~'),
                    Some(b'1') => name.push(b'/'),
                    _ => return Err(bad("`~` must be followed by 0 or 1")),
                }
            }
            let name = name.into_boxed_slice();
            segments.push(if prefix {
                Segment::Prefix(name)
            } else {
                Segment::Exact(name)
            });
        }
        Ok(Self {
            text: text.to_owned(),
            segments: segments.into_boxed_slice(),
        })
    }
}

impl TryFrom<String> for UserPath {
    type Error = ConfigError;

    fn try_from(text: String) -> Result<Self, ConfigError> {
        text.parse()
    }
}

impl fmt::Debug for UserPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserPath({:?})", self.text)
    }
}

impl fmt::Display for UserPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A key of a container as the walkers meet it: bytes (a PHP string key or property name,
/// a JSON member name) or an integer (a PHP integer key, a JSON array index).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Key<'_> {
    /// The key as its decode output spells it: integers in decimal, bytes as lossy UTF-8.
    pub(crate) fn to_json_key(self) -> String {
        match self {
            Key::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Key::Int(n) => n.to_string(),
        }
    }

    /// Calls `f` with the key as [`Key::to_json_key`] spells it, so a path matches the same
    /// keys in a walk as in the decoded JSON. An integer is spelled into a stack buffer and
    /// UTF-8 is passed as is, so no comparison allocates except against a PHP key that is
    /// not UTF-8 (converted lossily, as decoding does).
    pub(crate) fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Key::Bytes(bytes) if std::str::from_utf8(bytes).is_ok() => f(bytes),
            Key::Bytes(bytes) => f(String::from_utf8_lossy(bytes).as_bytes()),
            Key::Int(n) => {
                let mut buffer = [0u8; 20];
                f(decimal(n, &mut buffer))
            }
        }
    }
}

/// `n` in decimal, written from the end of `buffer` (20 bytes hold `-9223372036854775808`).
fn decimal(n: i64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut magnitude = n.unsigned_abs();
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    &buffer[start..]
}

/// The user id a found string names: `None` for an empty string, lossy UTF-8 otherwise,
/// refused past [`MAX_FIELD_LEN`] bytes. The raw length is checked first so a huge string
/// is refused before it is copied; lossy conversion never shortens, so the second check
/// only catches strings that invalid bytes (one byte each, three as U+FFFD) pushed over.
pub(crate) fn user_from_bytes(bytes: &[u8]) -> Result<Option<String>, DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() > MAX_FIELD_LEN {
        return Err(DecodeError::UserTooLong);
    }
    let user = String::from_utf8_lossy(bytes).into_owned();
    if user.len() > MAX_FIELD_LEN {
        return Err(DecodeError::UserTooLong);
    }
    Ok(Some(user))
}
