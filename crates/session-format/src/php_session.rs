//! A PHP session read and written without loss, so that a Rust app can share sessions with
//! a PHP app (`session.serialize_handler` `php` or `php_serialize`).
//!
//! [`PhpSession::decode`] splits a session into its top-level entries (the variables of
//! `$_SESSION`). An entry whose value JSON holds exactly (null, bool, int, float, UTF-8
//! string, arrays of those) is a JSON value: a PHP list (keys `0..n` in order, or empty)
//! becomes a JSON array, any other array a JSON object whose integer keys are decimal text.
//! An entry JSON cannot hold (an object, an enum case, a reference, a string or name that is
//! not UTF-8, `INF`, `NAN`) is *opaque*: its bytes are kept and written back unchanged by
//! [`PhpSession::encode`], so a Rust write never drops or mangles what PHP stored.
//!
//! [`PhpSession::with_data`] applies a Rust app's view (a JSON map) to the session: an entry
//! the map names takes the map's value, where it was; a JSON entry the map does not name is
//! removed; an opaque entry the map does not name stays as it was; names only the map has
//! are appended, as PHP appends new variables. The reverse mapping of JSON into PHP:
//! null, bool, integers as `i:` (an unsigned integer past `i64::MAX` as a float, as PHP
//! itself overflows), floats as `d:` in PHP's own spelling, strings, arrays as lists, objects
//! as arrays whose decimal keys become integer keys (what PHP does with `$a["5"]`).
//!
//! References: PHP numbers every value it serializes across the whole session, and `r:N`/
//! `R:N` name those numbers. So an opaque entry holding a reference stays valid only if
//! nothing before it changed. [`PhpSession::with_data`] refuses a change that would move
//! such an entry ([`EncodeError::ReferencesWouldShift`]) rather than corrupt it.
//!
//! Limits: decoding has the crate's limits ([`crate::MAX_VALUE_LEN`], [`crate::MAX_DEPTH`],
//! [`crate::MAX_ELEMENTS`]); encoding refuses what decoding would refuse (too deep, too
//! large), so whatever this module writes it can read back.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::php::{self, Framing};
use crate::{MAX_DEPTH, MAX_VALUE_LEN};

/// PHP's `session.serialize_handler`s this module reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeHandler {
    /// `php` (PHP's default): `name|value` for each variable.
    #[default]
    Php,
    /// `php_serialize`: the whole `$_SESSION` as one serialized array.
    PhpSerialize,
}

impl SerializeHandler {
    /// The name PHP's `session.serialize_handler` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            SerializeHandler::Php => "php",
            SerializeHandler::PhpSerialize => "php_serialize",
        }
    }

    fn framing(self) -> Framing {
        match self {
            SerializeHandler::Php => Framing::Delimited,
            SerializeHandler::PhpSerialize => Framing::Serialized,
        }
    }
}

/// One top-level entry of a session.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// The variable name (an integer key of `php_serialize` as decimal text).
    name: Vec<u8>,
    slot: Slot,
    /// The entry's bytes as they were read (name included), or `None` for an entry this
    /// module made; an unchanged entry is written back from them.
    original: Option<Vec<u8>>,
    /// A later entry has the same name (a value PHP would not write, but reads: the last
    /// one wins). A shadowed entry is never shown and is kept as it is, unless its name is
    /// removed, when it goes too (it would otherwise come back into view).
    shadowed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Json(Value),
    /// Kept as read; `refs` if it holds `r:`/`R:`.
    Opaque {
        refs: bool,
    },
}

/// A PHP session: its top-level entries in order, each a JSON value or opaque bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhpSession {
    entries: Vec<Entry>,
}

/// Why a session could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A variable name holds `|`, which the `php` handler cannot write (PHP refuses too).
    NameWithBar,
    /// A variable name that is an integer, which the `php` handler skips when PHP writes
    /// (PHP warns "Skipping numeric key"), so the value would be lost on PHP's next write.
    NumericName,
    /// A change before an opaque entry that holds a PHP reference, whose number would then
    /// point at another value.
    ReferencesWouldShift,
    /// Arrays nest deeper than [`crate::MAX_DEPTH`].
    TooDeep,
    /// The session would be longer than [`crate::MAX_VALUE_LEN`] bytes.
    TooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameWithBar => write!(f, "a session variable name contains `|`"),
            Self::NumericName => write!(
                f,
                "a session variable name is an integer, which PHP's `php` handler skips"
            ),
            Self::ReferencesWouldShift => write!(
                f,
                "the change would renumber a PHP reference stored later in the session"
            ),
            Self::TooDeep => write!(f, "session value nests deeper than {MAX_DEPTH} levels"),
            Self::TooLarge => write!(f, "session value exceeds {MAX_VALUE_LEN} bytes"),
        }
    }
}

impl std::error::Error for EncodeError {}

impl PhpSession {
    /// Reads a session as PHP stored it. An empty value (what php-memcached stores for a
    /// freshly issued id) is an empty session.
    pub fn decode(handler: SerializeHandler, input: &[u8]) -> Result<Self, DecodeError> {
        if input.len() > MAX_VALUE_LEN {
            return Err(DecodeError::TooLarge { len: input.len() });
        }
        if input.is_empty() {
            return Ok(Self::default());
        }
        let raw = php::read_entries(handler.framing(), input)?;
        let mut seen = std::collections::HashSet::new();
        let mut shadowed = vec![false; raw.len()];
        for (i, e) in raw.iter().enumerate().rev() {
            shadowed[i] = !seen.insert(e.name.clone());
        }
        let entries = raw
            .into_iter()
            .zip(shadowed)
            .map(|(e, shadowed)| {
                let utf8 = std::str::from_utf8(&e.name).is_ok();
                Entry {
                    slot: match e.value {
                        Some(value) if utf8 => Slot::Json(value),
                        _ => Slot::Opaque { refs: e.refs },
                    },
                    name: e.name.into_owned(),
                    original: Some(input[e.span].to_vec()),
                    shadowed,
                }
            })
            .collect();
        Ok(Self { entries })
    }

    /// The entries JSON holds, by name: what a Rust app sees.
    pub fn data(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for entry in self.entries.iter().filter(|e| !e.shadowed) {
            if let (Slot::Json(value), Ok(name)) = (&entry.slot, std::str::from_utf8(&entry.name)) {
                map.insert(name.to_owned(), value.clone());
            }
        }
        map
    }

    /// The names of the opaque entries (lossily decoded if not UTF-8), in session order.
    pub fn opaque_names(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| !e.shadowed && matches!(e.slot, Slot::Opaque { .. }))
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect()
    }

    /// This session with the Rust app's view `data` applied (see the module docs).
    pub fn with_data(&self, data: &Map<String, Value>) -> Result<Self, EncodeError> {
        let mut entries = Vec::with_capacity(self.entries.len() + data.len());
        let mut placed = std::collections::HashSet::new();
        // The names that stay: those `data` has, and those whose visible entry is opaque.
        let kept = |name: &[u8]| {
            std::str::from_utf8(name).is_ok_and(|n| data.contains_key(n))
                || self
                    .entries
                    .iter()
                    .any(|e| !e.shadowed && e.name == name && matches!(e.slot, Slot::Opaque { .. }))
        };
        for entry in &self.entries {
            if entry.shadowed {
                if kept(&entry.name) {
                    entries.push(entry.clone());
                }
                continue;
            }
            let name = std::str::from_utf8(&entry.name).ok();
            match (name.and_then(|n| data.get_key_value(n)), &entry.slot) {
                (Some((name, value)), _) => {
                    placed.insert(name.as_str());
                    if entry.slot == Slot::Json(value.clone()) {
                        entries.push(entry.clone());
                    } else {
                        entries.push(Entry {
                            name: entry.name.clone(),
                            slot: Slot::Json(value.clone()),
                            original: None,
                            shadowed: false,
                        });
                    }
                }
                (None, Slot::Json(_)) => {}
                (None, Slot::Opaque { .. }) => entries.push(entry.clone()),
            }
        }
        for (name, value) in data {
            if !placed.contains(name.as_str()) {
                entries.push(Entry {
                    name: name.as_bytes().to_vec(),
                    slot: Slot::Json(value.clone()),
                    original: None,
                    shadowed: false,
                });
            }
        }
        // A reference stays valid only if every entry before it is the one that was read,
        // at the same place.
        let mut intact = true;
        for (i, entry) in entries.iter().enumerate() {
            let same = entry.original.is_some() && self.entries.get(i) == Some(entry);
            intact &= same;
            if !intact && matches!(entry.slot, Slot::Opaque { refs: true }) {
                return Err(EncodeError::ReferencesWouldShift);
            }
        }
        Ok(Self { entries })
    }

    /// The session as PHP stores it under `handler`. Unchanged entries are written back byte
    /// for byte.
    pub fn encode(&self, handler: SerializeHandler) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match handler {
            SerializeHandler::Php => {
                for entry in &self.entries {
                    match &entry.original {
                        Some(bytes) => out.extend_from_slice(bytes),
                        None => {
                            if entry.name.contains(&b'|') {
                                return Err(EncodeError::NameWithBar);
                            }
                            if integer_key(&entry.name).is_some() {
                                return Err(EncodeError::NumericName);
                            }
                            out.extend_from_slice(&entry.name);
                            out.push(b'|');
                            if let Slot::Json(value) = &entry.slot {
                                encode_value(value, 1, &mut out)?;
                            }
                        }
                    }
                    check_len(&out)?;
                }
            }
            SerializeHandler::PhpSerialize => {
                out.extend_from_slice(format!("a:{}:{{", self.entries.len()).as_bytes());
                for entry in &self.entries {
                    match &entry.original {
                        Some(bytes) => out.extend_from_slice(bytes),
                        None => {
                            encode_key(&entry.name, &mut out);
                            if let Slot::Json(value) = &entry.slot {
                                encode_value(value, 1, &mut out)?;
                            }
                        }
                    }
                    check_len(&out)?;
                }
                out.push(b'}');
            }
        }
        check_len(&out)?;
        Ok(out)
    }
}

fn check_len(out: &[u8]) -> Result<(), EncodeError> {
    if out.len() > MAX_VALUE_LEN {
        return Err(EncodeError::TooLarge);
    }
    Ok(())
}

/// The integer PHP makes of an array key written as `key`: canonical decimal text in the
/// range of a PHP integer (`"5"`, `"-3"`, not `"05"`, `"+5"`, `"-0"`).
fn integer_key(key: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(key).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || text == "-0"
    {
        return None;
    }
    text.parse().ok()
}

fn encode_key(key: &[u8], out: &mut Vec<u8>) {
    match integer_key(key) {
        Some(n) => out.extend_from_slice(format!("i:{n};").as_bytes()),
        None => encode_string(key, out),
    }
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("s:{}:\"", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\";");
}

/// Writes `value` at nesting `depth` (the session itself is depth 1, as in decoding).
fn encode_value(value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_len(out)?;
    match value {
        Value::Null => out.extend_from_slice(b"N;"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"b:1;" } else { b"b:0;" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(format!("i:{i};").as_bytes());
            } else {
                // A float, or an unsigned integer PHP cannot hold (it overflows to float).
                let x = n.as_f64().unwrap_or(f64::NAN);
                out.extend_from_slice(b"d:");
                out.extend_from_slice(php_float(x).as_bytes());
                out.push(b';');
            }
        }
        Value::String(s) => encode_string(s.as_bytes(), out),
        Value::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                return Err(EncodeError::TooDeep);
            }
            out.extend_from_slice(format!("a:{}:{{", items.len()).as_bytes());
            for (i, item) in items.iter().enumerate() {
                out.extend_from_slice(format!("i:{i};").as_bytes());
                encode_value(item, depth + 1, out)?;
            }
            out.push(b'}');
        }
        Value::Object(map) => {
            if depth + 1 > MAX_DEPTH {
                return Err(EncodeError::TooDeep);
            }
            out.extend_from_slice(format!("a:{}:{{", map.len()).as_bytes());
            for (key, item) in map {
                encode_key(key.as_bytes(), out);
                encode_value(item, depth + 1, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A float as PHP's `serialize()` spells it (`serialize_precision = -1`: the shortest
/// digits that read back exactly; exponent form `1.0E+25` when the decimal point would be
/// more than 17 places right or 4 places left of the first digit), so that a float PHP
/// wrote and Rust rewrote keeps its bytes.
pub(crate) fn php_float(x: f64) -> String {
    if !x.is_finite() {
        // JSON cannot hold these; PHP's own spellings, for completeness.
        return if x.is_nan() {
            "NAN".into()
        } else if x > 0.0 {
            "INF".into()
        } else {
            "-INF".into()
        };
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x == 0.0 {
        return format!("{sign}0");
    }
    // `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let decpt = exp + 1;
    let mut out = String::from(sign);
    if !(-3..=17).contains(&decpt) {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        out.push('E');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&exp.abs().to_string());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in decpt..0 {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let decpt = decpt as usize;
        if digits.len() <= decpt {
            out.push_str(&digits);
            for _ in digits.len()..decpt {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..decpt]);
            out.push('.');
            out.push_str(&digits[decpt..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    const PHP: SerializeHandler = SerializeHandler::Php;
    const SER: SerializeHandler = SerializeHandler::PhpSerialize;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn scalars_lists_and_maps() {
        let v = r#"n|N;t|b:1;i|i:-7;f|d:0.1;s|s:8:"a|b;c"é";l|a:2:{i:0;s:1:"x";i:1;i:2;}m|a:2:{s:1:"k";i:1;i:5;b:0;}e|a:0:{}"#.as_bytes();
        let s = PhpSession::decode(PHP, v).unwrap();
        assert_eq!(
            Value::Object(s.data()),
            json!({"n": null, "t": true, "i": -7, "f": 0.1, "s": "a|b;c\"é",
                   "l": ["x", 2], "m": {"k": 1, "5": false}, "e": []})
        );
        assert!(s.opaque_names().is_empty());
        // Unchanged, it is written back byte for byte; rebuilt from JSON, too.
        assert_eq!(s.encode(PHP).unwrap(), v);
        let rebuilt = PhpSession::default().with_data(&s.data()).unwrap();
        assert_eq!(
            PhpSession::decode(PHP, &rebuilt.encode(PHP).unwrap())
                .unwrap()
                .data(),
            s.data()
        );
    }

    #[test]
    fn php_serialize_round_trip() {
        let v = br#"a:3:{s:4:"user";s:5:"alice";i:7;d:1.5;s:4:"list";a:1:{i:0;N;}}"#;
        let s = PhpSession::decode(SER, v).unwrap();
        assert_eq!(
            Value::Object(s.data()),
            json!({"user": "alice", "7": 1.5, "list": [null]})
        );
        assert_eq!(s.encode(SER).unwrap(), v);
        let mut data = s.data();
        data.insert("n".into(), json!(2));
        data.remove("user");
        let out = s.with_data(&data).unwrap().encode(SER).unwrap();
        assert_eq!(
            out,
            br#"a:3:{i:7;d:1.5;s:4:"list";a:1:{i:0;N;}s:1:"n";i:2;}"#
        );
    }

    #[test]
    fn objects_survive_a_rust_write_byte_for_byte() {
        let obj = b"cart|O:4:\"Cart\":2:{s:5:\"items\";a:1:{i:0;s:3:\"pen\";}s:11:\"\0Cart\0total\";d:2.5;}";
        let mut v = b"n|i:1;".to_vec();
        v.extend_from_slice(obj);
        v.extend_from_slice(b"e|E:9:\"Suit:Club\";bin|s:2:\"\xff\xfe\";");
        let s = PhpSession::decode(PHP, &v).unwrap();
        assert_eq!(Value::Object(s.data()), json!({"n": 1}));
        assert_eq!(s.opaque_names(), ["cart", "e", "bin"]);
        let mut data = s.data();
        data.insert("n".into(), json!(2));
        data.insert("new".into(), json!("x"));
        let out = s.with_data(&data).unwrap().encode(PHP).unwrap();
        let mut want = b"n|i:2;".to_vec();
        want.extend_from_slice(&v[6..]);
        want.extend_from_slice(br#"new|s:1:"x";"#);
        assert_eq!(out, want);
        // Rust overwriting an opaque variable replaces it, in place.
        data.insert("cart".into(), json!([]));
        let out = s.with_data(&data).unwrap().encode(PHP).unwrap();
        assert!(
            out.starts_with(br#"n|i:2;cart|a:0:{}e|"#),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn references_are_never_renumbered() {
        // `b` refers to value 2 (the array in `a`); changing `a` would move it.
        let v = br#"a|a:1:{i:0;i:1;}b|R:2;c|i:3;"#;
        let s = PhpSession::decode(PHP, v).unwrap();
        assert_eq!(s.opaque_names(), ["b"]);
        let mut data = s.data();
        data.insert("c".into(), json!(4));
        data.insert("d".into(), json!(5));
        assert_eq!(
            s.with_data(&data).unwrap().encode(PHP).unwrap(),
            br#"a|a:1:{i:0;i:1;}b|R:2;c|i:4;d|i:5;"#
        );
        data.insert("a".into(), json!([1, 2]));
        assert_eq!(s.with_data(&data), Err(EncodeError::ReferencesWouldShift));
        data.remove("a");
        assert_eq!(s.with_data(&data), Err(EncodeError::ReferencesWouldShift));
    }

    #[test]
    fn duplicate_names_last_wins() {
        let v = br#"a|i:1;b|i:2;a|i:3;"#;
        let s = PhpSession::decode(PHP, v).unwrap();
        assert_eq!(Value::Object(s.data()), json!({"a": 3, "b": 2}));
        assert_eq!(s.with_data(&s.data()).unwrap().encode(PHP).unwrap(), v);
        let mut data = s.data();
        data.insert("a".into(), json!(4));
        assert_eq!(
            s.with_data(&data).unwrap().encode(PHP).unwrap(),
            br#"a|i:1;b|i:2;a|i:4;"#
        );
        data.remove("a");
        assert_eq!(
            s.with_data(&data).unwrap().encode(PHP).unwrap(),
            br#"b|i:2;"#
        );
        // A shadowed JSON value behind an opaque one stays hidden, and stays.
        let v = br#"a|i:1;a|d:INF;"#;
        let s = PhpSession::decode(PHP, v).unwrap();
        assert!(s.data().is_empty(), "{s:?}");
        assert_eq!(s.opaque_names(), ["a"]);
        assert_eq!(s.with_data(&s.data()).unwrap().encode(PHP).unwrap(), v);
    }

    #[test]
    fn names_php_cannot_write_are_refused() {
        let mut data = Map::new();
        data.insert("a|b".into(), json!(1));
        let s = PhpSession::default().with_data(&data).unwrap();
        assert_eq!(s.encode(PHP), Err(EncodeError::NameWithBar));
        assert!(s.encode(SER).is_ok());
        let mut data = Map::new();
        data.insert("12".into(), json!(1));
        let s = PhpSession::default().with_data(&data).unwrap();
        assert_eq!(s.encode(PHP), Err(EncodeError::NumericName));
        assert_eq!(s.encode(SER).unwrap(), b"a:1:{i:12;i:1;}");
    }

    #[test]
    fn floats_in_php_spelling() {
        for (x, php) in [
            (0.1, "0.1"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e25, "1.0E+25"),
            (1.5e-7, "1.5E-7"),
            (0.0001, "0.0001"),
            (1e-5, "1.0E-5"),
            (1e16, "10000000000000000"),
            (1e17, "1.0E+17"),
            (123456.789, "123456.789"),
            (-2.5e-300, "-2.5E-300"),
            (f64::MAX, "1.7976931348623157E+308"),
        ] {
            assert_eq!(php_float(x), php, "{x}");
        }
    }

    #[test]
    fn hostile_values_are_errors() {
        let deep = format!("x|{}i:1;{}", "a:1:{i:0;".repeat(40), "}".repeat(40));
        assert_eq!(
            PhpSession::decode(PHP, deep.as_bytes()),
            Err(DecodeError::TooDeep)
        );
        assert_eq!(
            PhpSession::decode(PHP, br#"x|s:10:"abc";"#),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            PhpSession::decode(PHP, b"x|a:4294967295:{"),
            Err(DecodeError::TooManyElements)
        );
        let huge = vec![b'a'; MAX_VALUE_LEN + 1];
        assert!(matches!(
            PhpSession::decode(PHP, &huge),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            PhpSession::decode(SER, b"i:1;"),
            Err(DecodeError::UnexpectedRoot)
        );
        // Encoding refuses what decoding would.
        let mut v = json!(1);
        for _ in 0..40 {
            v = json!([v]);
        }
        let mut data = Map::new();
        data.insert("x".into(), v);
        assert_eq!(
            PhpSession::default().with_data(&data).unwrap().encode(PHP),
            Err(EncodeError::TooDeep)
        );
        let mut data = Map::new();
        data.insert("x".into(), json!("y".repeat(MAX_VALUE_LEN)));
        assert_eq!(
            PhpSession::default().with_data(&data).unwrap().encode(PHP),
            Err(EncodeError::TooLarge)
        );
    }

    #[test]
    fn fixtures_from_real_php() {
        for (name, handler) in [
            ("alice.php", PHP),
            ("typical.php", PHP),
            ("laravel.php", PHP),
            ("symfony.php", PHP),
            ("alice.php_serialize", SER),
            ("typical.php_serialize", SER),
            ("laravel.php_serialize", SER),
            ("symfony.php_serialize", SER),
        ] {
            let v = fixture(name);
            let s = PhpSession::decode(handler, &v).unwrap();
            assert_eq!(s.encode(handler).unwrap(), v, "{name}");
            let same = s.with_data(&s.data()).unwrap();
            assert_eq!(same.encode(handler).unwrap(), v, "{name}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z|;\"0-9]{1,4}", inner, 1..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Pieces of PHP's syntax, for inputs that are mostly well-formed.
    const PIECES: [&[u8]; 14] = [
        b"a|",
        b"a:1:{",
        b"a:2:{",
        b"}",
        b"i:0;",
        b"i:1;",
        b"s:1:\"a\";",
        b"d:0.5;",
        b"N;",
        b"R:1;",
        b"O:1:\"C\":1:{",
        b"b:1;",
        b"E:3:\"A:B\";",
        b"d:INF;",
    ];

    proptest! {
        /// JSON written by this module reads back as the same JSON, except where PHP's model
        /// differs: an object whose keys are `0..n` in order is a list to PHP.
        #[test]
        fn json_round_trips(entries in prop::collection::btree_map("[a-z;\"]{1,6}", json_value(), 0..6)) {
            let data: Map<String, Value> = entries.into_iter().collect();
            for handler in [PHP, SER] {
                let bytes = PhpSession::default().with_data(&data).unwrap().encode(handler).unwrap();
                let back = PhpSession::decode(handler, &bytes).unwrap();
                prop_assert_eq!(normalize(&Value::Object(back.data())), normalize(&Value::Object(data.clone())));
                // And what is read back is written back byte for byte.
                prop_assert_eq!(back.with_data(&back.data()).unwrap().encode(handler).unwrap(), bytes);
            }
        }

        /// Arbitrary bytes never panic, and whatever decodes re-encodes to itself.
        #[test]
        fn any_bytes(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                // Mostly well-formed: pieces of PHP's syntax in any order.
                prop::collection::vec(
                    prop::sample::select(&PIECES[..]),
                    0..24,
                )
                .prop_map(|parts| parts.concat()),
            ],
            php in any::<bool>(),
        ) {
            let handler = if php { PHP } else { SER };
            if let Ok(s) = PhpSession::decode(handler, &bytes)
                && let Ok(out) = s.encode(handler)
            {
                let again = PhpSession::decode(handler, &out).unwrap();
                prop_assert_eq!(again.data(), s.data());
                prop_assert_eq!(s.with_data(&s.data()).unwrap().encode(handler).unwrap(), out);
            }
        }
    }

    /// JSON as PHP's arrays see it: a map with keys `0..n` in order is a list, and integer
    /// keys are sorted as the map sorts them (only for comparing).
    fn normalize(v: &Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
            Value::Object(map) => {
                let list =
                    !map.is_empty() && map.keys().enumerate().all(|(i, k)| k == &i.to_string());
                if list && map.len() <= 10 {
                    Value::Array(map.values().map(normalize).collect())
                } else {
                    Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
                }
            }
            other => other.clone(),
        }
    }
}
