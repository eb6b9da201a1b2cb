//! JSON sessions (express-session, sessiond's record), walked through serde_json's parser
//! without building a `serde_json::Value` unless the walk wants one.
//!
//! The walker is a serde `DeserializeSeed`: serde_json tokenizes and checks the syntax, and
//! calls the seed back per value, which counts it, checks the depth and hands it to the
//! walk's [`Want`]. Member names that need no unescaping are borrowed from the input, so a
//! user lookup allocates only for escaped names and for the user id it returns.
//!
//! serde errors can only carry a message, so a limit the walk trips (depth, element count)
//! is parked in the walk's state and the message is ignored; it is read back when the
//! parser gives up.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use crate::error::DecodeError;
use crate::path::Key;
use crate::walk::{Budget, Collect, Got, Scalar, Shape, Want, enter};

/// Walks a non-empty JSON session value with `want`. The value must be an object.
pub(crate) fn walk(input: &[u8], want: Want<'_>) -> Result<Got, DecodeError> {
    let mut state = State {
        budget: Budget::new(),
        limit: None,
    };
    let mut parser = serde_json::Deserializer::from_slice(input);
    let seed = Walk {
        want,
        parent_depth: 0,
        state: &mut state,
    };
    let got = seed
        .deserialize(&mut parser)
        .and_then(|got| parser.end().map(|()| got));
    got.map_err(|error| {
        state
            .limit
            .take()
            .unwrap_or_else(|| match error.classify() {
                Category::Eof => DecodeError::Truncated,
                _ => DecodeError::InvalidJson {
                    line: error.line(),
                    column: error.column(),
                },
            })
    })
}

/// What one walk shares across its values.
struct State {
    budget: Budget,
    /// The limit that stopped the walk, if one did (see the module docs).
    limit: Option<DecodeError>,
}

impl State {
    fn fail<E: de::Error>(&mut self, error: DecodeError) -> E {
        self.limit = Some(error);
        E::custom("session-format limit")
    }
}

/// The seed and visitor for one value.
struct Walk<'s, 'p> {
    want: Want<'p>,
    /// The depth of the container holding this value; 0 for the root.
    parent_depth: usize,
    state: &'s mut State,
}

impl<'p> Walk<'_, 'p> {
    fn scalar<E: de::Error>(self, scalar: Scalar<'_>) -> Result<Got, E> {
        let counted = if self.parent_depth == 0 {
            // A session is an object; anything else at the root is refused.
            Err(DecodeError::UnexpectedRoot)
        } else {
            self.state.budget.take(1)
        };
        counted
            .and_then(|()| self.want.scalar(scalar))
            .map_err(|error| self.state.fail(error))
    }

    /// Counts a container and starts collecting it.
    fn begin<E: de::Error>(&mut self, shape: Shape) -> Result<(usize, Collect<'p>), E> {
        let started = (|| {
            if self.parent_depth == 0 && shape != Shape::Map {
                return Err(DecodeError::UnexpectedRoot);
            }
            self.state.budget.take(1)?;
            let depth = enter(self.parent_depth)?;
            Ok((depth, Collect::begin(self.want, shape)?))
        })();
        started.map_err(|error| self.state.fail(error))
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = Got;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Got, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'p> Visitor<'de> for Walk<'_, 'p> {
    type Value = Got;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON session value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Got, E> {
        self.scalar(Scalar::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Got, E> {
        self.scalar(Scalar::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Got, E> {
        self.scalar(Scalar::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Got, E> {
        match i64::try_from(n) {
            Ok(n) => self.scalar(Scalar::Int(n)),
            Err(_) => self.scalar(Scalar::Uint(n)),
        }
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Got, E> {
        self.scalar(Scalar::Float(x))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Got, E> {
        self.scalar(Scalar::Str(s.as_bytes()))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Got, A::Error> {
        let (depth, mut collect) = self.begin(Shape::Map)?;
        while let Some(name) = map.next_key_seed(MemberName)? {
            let key = Key::Bytes(name.as_bytes());
            let want = collect.want_for(key);
            let got = map.next_value_seed(Walk {
                want,
                parent_depth: depth,
                state: &mut *self.state,
            })?;
            collect.put(key, got);
        }
        Ok(collect.finish())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Got, A::Error> {
        let (depth, mut collect) = self.begin(Shape::List)?;
        let mut index = 0i64;
        loop {
            let key = Key::Int(index);
            let want = collect.want_for(key);
            let Some(got) = seq.next_element_seed(Walk {
                want,
                parent_depth: depth,
                state: &mut *self.state,
            })?
            else {
                break;
            };
            collect.put(key, got);
            index += 1;
        }
        Ok(collect.finish())
    }
}

/// A member name, borrowed from the input unless it had escapes.
struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}
