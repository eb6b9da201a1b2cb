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
