//! PHP sessions: the three `session.serialize_handler` framings around PHP's `serialize()`
//! format, walked token by token.
//!
//! The values themselves are read by `phpserz`'s token parser, which borrows from the input
//! and builds nothing. What is written here is only what phpserz does not know:
//!
//! - the `php` framing, `name|value name|value …`: a name runs to the first `|` (PHP refuses
//!   to store a name containing one), and the value's end is wherever the value parser says
//!   it is, never a split on `|` or `;`, which strings may contain. As in PHP, bytes after
//!   the last value that hold no `|` are ignored;
//! - the `php_binary` framing: a length byte (PHP masks off the high bit, once an "undefined"
//!   flag), that many name bytes, then the value; a name must be followed by at least one
//!   byte, as in PHP;
//! - `php_serialize`: one serialized array; as in PHP, bytes after it are ignored;
//! - the structure phpserz leaves to its caller: pairing keys with values, counting them,
//!   the closing `}`, the nesting depth;
//! - PHP 8.1 enum cases, `E:<len>:"Class:Case";`, which phpserz does not parse.
//!
//! Objects become maps whose first entry is the pseudo-key `__class` (the class name),
//! followed by the properties with PHP's visibility mangling (`\0*\0name`,
//! `\0Class\0name`) removed; `C:` objects (the old `Serializable`) are `__class` and
//! `__serialized` (the payload, unparsed); enum cases are `__class` and `__case`.
//! References (`r:N;`, `R:N;`) are not followed: a reference is the map `{"__ref": N}`.
//! Following them would mean keeping every earlier value and would let a small input
//! expand into a large tree; the user id is never a reference in practice.

use phpserz::{ErrorKind, PhpParser, PhpToken};

use crate::error::DecodeError;
use crate::path::Key;
use crate::walk::{Budget, Collect, Got, Scalar, Shape, Want, enter};

/// How the values of a session are put together: the three PHP handlers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Framing {
    /// `php`: `name|value`.
    Delimited,
    /// `php_binary`: a length byte, the name, the value.
    LengthPrefixed,
    /// `php_serialize`: one array.
    Serialized,
}

/// Walks a non-empty PHP session value with `want`.
pub(crate) fn walk(framing: Framing, input: &[u8], want: Want<'_>) -> Result<Got, DecodeError> {
    let mut source = Source {
        input,
        pos: 0,
        budget: Budget::new(),
    };
    match framing {
        Framing::Delimited => source.framed(want, Source::delimited_name),
        Framing::LengthPrefixed => source.framed(want, Source::length_prefixed_name),
        Framing::Serialized => match source.token()? {
            Token::Php(PhpToken::Array { elements }) => source.entries(0, want, elements, None),
            _ => Err(DecodeError::UnexpectedRoot),
        },
    }
}

/// A cursor over the input.
struct Source<'a> {
    input: &'a [u8],
    pos: usize,
    budget: Budget,
}

/// A token: phpserz's, or an enum case (phpserz has no `E:`).
enum Token<'a> {
    Php(PhpToken<'a>),
    EnumCase { class: &'a [u8], case: &'a [u8] },
}

impl<'a> Source<'a> {
    /// The `php` and `php_binary` framings: the session is a sequence of named values,
    /// treated as one map at depth 1.
    fn framed(
        &mut self,
        want: Want<'_>,
        next_name: fn(&mut Self) -> Result<Option<&'a [u8]>, DecodeError>,
    ) -> Result<Got, DecodeError> {
        let depth = enter(0)?;
        let mut collect = Collect::begin(want, Shape::Map)?;
        while let Some(name) = next_name(self)? {
            let key = Key::Bytes(name);
            let child = collect.want_for(key);
            let got = self.value(depth, child)?;
            collect.put(key, got);
        }
        Ok(collect.finish())
    }

    /// The next `name|` of the `php` framing, or `None` at the end: PHP stops, without an
    /// error, when no `|` is left.
    fn delimited_name(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let rest = &self.input[self.pos..];
        let Some(bar) = rest.iter().position(|&b| b == b'|') else {
            self.pos = self.input.len();
            return Ok(None);
        };
        self.pos += bar + 1;
        Ok(Some(&rest[..bar]))
    }

    /// The next length-prefixed name of the `php_binary` framing, or `None` at the end.
    fn length_prefixed_name(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let rest = &self.input[self.pos..];
        let Some((&length, rest)) = rest.split_first() else {
            return Ok(None);
        };
        // PHP masks the high bit (PS_BIN_UNDEF), so names are at most 127 bytes, and it
        // wants at least one byte after the name.
        let length = usize::from(length & 0x7f);
        if rest.len() <= length {
            return Err(DecodeError::Truncated);
        }
        self.pos += 1 + length;
        Ok(Some(&rest[..length]))
    }

    /// Reads one token.
    fn token(&mut self) -> Result<Token<'a>, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        if rest.first() == Some(&b'E') {
            return self.enum_case();
        }
        let mut parser = PhpParser::new(rest);
        match parser.read_token() {
            Ok(token) => {
                self.pos = start + parser.position();
                Ok(Token::Php(token))
            }
            Err(error) => Err(match error.kind() {
                ErrorKind::Eof => DecodeError::Truncated,
                _ => DecodeError::Malformed {
                    offset: start + error.position().unwrap_or(0),
                },
            }),
        }
    }

    /// `E:<len>:"Class:Case";`, PHP 8.1's enum case (the length counts `Class:Case`).
    fn enum_case(&mut self) -> Result<Token<'a>, DecodeError> {
        let start = self.pos;
        let malformed = DecodeError::Malformed { offset: start };
        let rest = &self.input[start..];
        let body = rest.strip_prefix(b"E:").ok_or(malformed.clone())?;
        let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
        // Ten digits cover every length PHP writes (phpserz has the same limit for strings)
        // and cannot overflow a u64.
        if digits == 0 || digits > 10 {
            return Err(malformed);
        }
        let length = body[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        let length = usize::try_from(length).map_err(|_| DecodeError::Truncated)?;
        let body = body[digits..]
            .strip_prefix(b":\"")
            .ok_or(malformed.clone())?;
        let (text, tail) = body
            .split_at_checked(length)
            .ok_or(DecodeError::Truncated)?;
        if tail.len() < 2 {
            return Err(DecodeError::Truncated);
        }
        if &tail[..2] != b"\";" {
            return Err(malformed);
        }
        let colon = text
            .iter()
            .position(|&b| b == b':')
            .ok_or(malformed.clone())?;
        self.pos = self.input.len() - (tail.len() - 2);
        Ok(Token::EnumCase {
            class: &text[..colon],
            case: &text[colon + 1..],
        })
    }

    /// Walks one value whose container is at `parent_depth`.
    fn value(&mut self, parent_depth: usize, want: Want<'_>) -> Result<Got, DecodeError> {
        self.budget.take(1)?;
        let start = self.pos;
        let token = self.token()?;
        let scalar = match token {
            Token::Php(PhpToken::Null) => Scalar::Null,
            Token::Php(PhpToken::Boolean(b)) => Scalar::Bool(b),
            Token::Php(PhpToken::Integer(n)) => Scalar::Int(n),
            Token::Php(PhpToken::Float(x)) => Scalar::Float(x),
            Token::Php(PhpToken::String(s)) => Scalar::Str(s.as_bytes()),
            Token::Php(PhpToken::Array { elements }) => {
                return self.entries(parent_depth, want, elements, None);
            }
            Token::Php(PhpToken::Object { class, properties }) => {
                return self.entries(parent_depth, want, properties, Some(class.as_bytes()));
            }
            Token::Php(PhpToken::CustomObject { class, payload }) => {
                return self.synthetic(
                    parent_depth,
                    want,
                    &[
                        (b"__class", Scalar::Str(class.as_bytes())),
                        (b"__serialized", Scalar::Str(payload.as_bytes())),
                    ],
                );
            }
            Token::EnumCase { class, case } => {
                return self.synthetic(
                    parent_depth,
                    want,
                    &[
                        (b"__class", Scalar::Str(class)),
                        (b"__case", Scalar::Str(case)),
                    ],
                );
            }
            Token::Php(PhpToken::Reference { id, .. }) => {
                return self.synthetic(parent_depth, want, &[(b"__ref", Scalar::Int(id))]);
            }
            Token::Php(PhpToken::End) => return Err(DecodeError::Malformed { offset: start }),
        };
        want.scalar(scalar)
    }

    /// The body of an array (`class` is `None`) or an object, after its `{`: `count` key and
    /// value pairs, then `}`.
    fn entries(
        &mut self,
        parent_depth: usize,
        want: Want<'_>,
        count: u32,
        class: Option<&'a [u8]>,
    ) -> Result<Got, DecodeError> {
        let depth = enter(parent_depth)?;
        let count = count as usize;
        // A hostile `a:4294967295:{` is refused here, before the loop trusts the count.
        self.budget.check_declared(count)?;
        let mut collect = Collect::begin(want, Shape::Map)?;
        if let Some(class) = class {
            self.pseudo_entry(&mut collect, b"__class", Scalar::Str(class))?;
        }
        for _ in 0..count {
            let key = self.key(class.is_some())?;
            let child = collect.want_for(key);
            let got = self.value(depth, child)?;
            collect.put(key, got);
        }
        let end = self.pos;
        match self.token()? {
            Token::Php(PhpToken::End) => Ok(collect.finish()),
            _ => Err(DecodeError::Malformed { offset: end }),
        }
    }

    /// A key: an integer or a string; in an object, a property name without its
    /// visibility mangling.
    fn key(&mut self, property: bool) -> Result<Key<'a>, DecodeError> {
        let start = self.pos;
        match self.token()? {
            Token::Php(PhpToken::Integer(n)) => Ok(Key::Int(n)),
            Token::Php(PhpToken::String(s)) if property => {
                Ok(Key::Bytes(s.to_property().as_bytes()))
            }
            Token::Php(PhpToken::String(s)) => Ok(Key::Bytes(s.as_bytes())),
            _ => Err(DecodeError::Malformed { offset: start }),
        }
    }

    /// A map made of pseudo-entries only (a `C:` object, an enum case, a reference).
    fn synthetic(
        &mut self,
        parent_depth: usize,
        want: Want<'_>,
        entries: &[(&'static [u8], Scalar<'a>)],
    ) -> Result<Got, DecodeError> {
        enter(parent_depth)?;
        let mut collect = Collect::begin(want, Shape::Map)?;
        for &(name, scalar) in entries {
            self.pseudo_entry(&mut collect, name, scalar)?;
        }
        Ok(collect.finish())
    }

    /// One pseudo-entry, counted like any value so both walks count the same.
    fn pseudo_entry(
        &mut self,
        collect: &mut Collect<'_>,
        name: &'static [u8],
        scalar: Scalar<'_>,
    ) -> Result<(), DecodeError> {
        self.budget.take(1)?;
        let key = Key::Bytes(name);
        let got = collect.want_for(key).scalar(scalar)?;
        collect.put(key, got);
        Ok(())
    }
}

/// One top-level entry of a PHP session as the lossless reader sees it: a variable of the
/// `php` framing, or a key and value of the `php_serialize` array.
pub(crate) struct RawEntry<'a> {
    /// The name (an integer key of `php_serialize` as its decimal text).
    pub(crate) name: std::borrow::Cow<'a, [u8]>,
    /// The value as JSON, or `None` when JSON cannot hold it without loss (an object, an
    /// enum case, a reference, a string or key that is not UTF-8, `INF`/`NAN`).
    pub(crate) value: Option<serde_json::Value>,
    /// Where the entry lies in the input, name included (`name|value`, or the key and value).
    pub(crate) span: std::ops::Range<usize>,
    /// Whether the value holds a reference (`r:`/`R:`), whose number counts every value
    /// serialized before it in the whole session.
    pub(crate) refs: bool,
}

/// Reads a PHP session whole and without loss: every top-level entry with its span, as JSON
/// where JSON holds it exactly. The same limits as the walks apply.
pub(crate) fn read_entries(
    framing: Framing,
    input: &[u8],
) -> Result<Vec<RawEntry<'_>>, DecodeError> {
    let mut source = Source {
        input,
        pos: 0,
        budget: Budget::new(),
    };
    let mut entries = Vec::new();
    match framing {
        Framing::Delimited | Framing::LengthPrefixed => {
            let next_name = match framing {
                Framing::Delimited => Source::delimited_name,
                _ => Source::length_prefixed_name,
            };
            let depth = enter(0)?;
            loop {
                let start = source.pos;
                let Some(name) = next_name(&mut source)? else {
                    break;
                };
                let mut refs = false;
                source.budget.take(1)?;
                let value = source.lossless(depth, &mut refs)?;
                entries.push(RawEntry {
                    name: std::borrow::Cow::Borrowed(name),
                    value,
                    span: start..source.pos,
                    refs,
                });
            }
        }
        Framing::Serialized => {
            let elements = match source.token()? {
                Token::Php(PhpToken::Array { elements }) => elements as usize,
                _ => return Err(DecodeError::UnexpectedRoot),
            };
            source.budget.take(1)?;
            let depth = enter(0)?;
            source.budget.check_declared(elements)?;
            for _ in 0..elements {
                let start = source.pos;
                let name = match source.key(false)? {
                    Key::Int(n) => std::borrow::Cow::Owned(n.to_string().into_bytes()),
                    Key::Bytes(b) => std::borrow::Cow::Borrowed(b),
                };
                let mut refs = false;
                source.budget.take(1)?;
                let value = source.lossless(depth, &mut refs)?;
                entries.push(RawEntry {
                    name,
                    value,
                    span: start..source.pos,
                    refs,
                });
            }
            let end = source.pos;
            match source.token()? {
                Token::Php(PhpToken::End) => {}
                _ => return Err(DecodeError::Malformed { offset: end }),
            }
        }
    }
    Ok(entries)
}

impl<'a> Source<'a> {
    /// Reads one value (already counted) whose container is at `parent_depth`: JSON, or
    /// `None` when JSON cannot hold it exactly, in which case the value is still read to
    /// its end and checked, so its bytes can be kept as they are.
    fn lossless(
        &mut self,
        parent_depth: usize,
        refs: &mut bool,
    ) -> Result<Option<serde_json::Value>, DecodeError> {
        use serde_json::Value;
        let start = self.pos;
        Ok(match self.token()? {
            Token::Php(PhpToken::Null) => Some(Value::Null),
            Token::Php(PhpToken::Boolean(b)) => Some(Value::Bool(b)),
            Token::Php(PhpToken::Integer(n)) => Some(Value::from(n)),
            Token::Php(PhpToken::Float(x)) => serde_json::Number::from_f64(x).map(Value::Number),
            Token::Php(PhpToken::String(s)) => std::str::from_utf8(s.as_bytes())
                .ok()
                .map(|s| Value::String(s.to_owned())),
            Token::Php(PhpToken::Array { elements }) => {
                self.lossless_entries(parent_depth, elements, false, refs)?
            }
            Token::Php(PhpToken::Object { properties, .. }) => {
                self.lossless_entries(parent_depth, properties, true, refs)?;
                None
            }
            Token::Php(PhpToken::CustomObject { .. }) | Token::EnumCase { .. } => {
                enter(parent_depth)?;
                None
            }
            Token::Php(PhpToken::Reference { .. }) => {
                *refs = true;
                None
            }
            Token::Php(PhpToken::End) => return Err(DecodeError::Malformed { offset: start }),
        })
    }

    /// The body of an array or object for [`Source::lossless`]: a PHP list (keys `0..n` in
    /// order) becomes a JSON array, any other array a JSON object with integer keys as
    /// decimal text (PHP itself makes a decimal key an integer, so nothing is conflated).
    fn lossless_entries(
        &mut self,
        parent_depth: usize,
        count: u32,
        property: bool,
        refs: &mut bool,
    ) -> Result<Option<serde_json::Value>, DecodeError> {
        use serde_json::{Map, Value};
        let depth = enter(parent_depth)?;
        let count = count as usize;
        self.budget.check_declared(count)?;
        let mut exact = true;
        let mut list = true;
        let mut items: Vec<(String, Value)> = Vec::with_capacity(count.min(1024));
        for index in 0..count {
            let key = self.key(property)?;
            self.budget.take(1)?;
            let value = self.lossless(depth, refs)?;
            if !exact {
                continue;
            }
            let key = match key {
                Key::Int(n) => {
                    list &= n == index as i64;
                    Some(n.to_string())
                }
                Key::Bytes(b) => {
                    list = false;
                    std::str::from_utf8(b).ok().map(str::to_owned)
                }
            };
            match (key, value) {
                (Some(key), Some(value)) => items.push((key, value)),
                _ => {
                    exact = false;
                    items = Vec::new();
                }
            }
        }
        let end = self.pos;
        match self.token()? {
            Token::Php(PhpToken::End) => {}
            _ => return Err(DecodeError::Malformed { offset: end }),
        }
        if !exact {
            return Ok(None);
        }
        Ok(Some(if list && count > 0 {
            Value::Array(items.into_iter().map(|(_, v)| v).collect())
        } else if count == 0 {
            Value::Array(Vec::new())
        } else {
            let mut map = Map::new();
            for (key, value) in items {
                map.insert(key, value);
            }
            Value::Object(map)
        }))
    }
}
