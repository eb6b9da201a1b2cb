//! What a walk over a session value wants, shared by the PHP and the JSON walkers.
//!
//! Both walkers are *sources*: they read their format value by value, check the limits
//! ([`Budget`], depth) and report scalars and containers. What happens to each value is
//! decided by a [`Want`]: skip it, look for the user below it, build it as JSON, or read it
//! as a sessiond record's `kind`. A container in progress keeps its state in a [`Collect`],
//! which picks the `Want` of each child from its key and folds the child's [`Got`] in.
//!
//! Because `find_user` and `decode` run the very same source code over the same bytes, they
//! accept and refuse exactly the same values; only what is kept differs. That is what lets
//! `find_user` skip everything off the path without ever building a tree, and what the
//! property tests check (`find_user` equals `decode` followed by the path lookup).

use serde_json::{Map, Value};

use crate::Identity;
use crate::error::DecodeError;
use crate::path::{Key, Segment, user_from_bytes};
use crate::{MAX_DEPTH, MAX_ELEMENTS, MAX_FIELD_LEN, bytes};

/// One scalar as a source reports it. Strings are raw bytes: PHP strings are binary, and a
/// JSON string is valid UTF-8 already.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A JSON integer above `i64::MAX`.
    Uint(u64),
    Float(f64),
    Str(&'a [u8]),
}

/// Whether a container has keys (PHP arrays and objects, JSON objects) or positions (JSON
/// arrays). Only the JSON output cares: a list stays a JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Map,
    List,
}

/// What the walk wants from one value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want<'p> {
    /// Nothing; the value is only checked and counted.
    Skip,
    /// The user id at this path below the value (the empty path: the value itself).
    User(&'p [Segment]),
    /// The value as JSON.
    Tree,
    /// A sessiond record's `kind` member: a string or null.
    Kind,
    /// A whole sessiond record: its `kind` and the user at the path (if any) below it.
    Record(Option<&'p [Segment]>),
}

/// What a walk got from one value, by the [`Want`] it was walked with.
#[derive(Debug)]
pub(crate) enum Got {
    Nothing,
    /// A user lookup's answer. A too-long id is kept as an answer rather than aborting the
    /// walk: a later duplicate of the key may replace it, as it would in the decoded map,
    /// and the rest of the value must still be checked.
    User(Result<Option<String>, DecodeError>),
    Tree(Value),
    /// A `kind` member's answer, kept like a user's for the same reason.
    Kind(Result<Option<String>, DecodeError>),
    /// A record's `kind` (the last one, if repeated) and user.
    Record {
        kind: Result<Option<String>, DecodeError>,
        user: Result<Option<String>, DecodeError>,
    },
}

impl Got {
    /// The answer of a [`Want::User`] walk; any other answer has no user.
    pub(crate) fn into_user(self) -> Result<Option<String>, DecodeError> {
        match self {
            Got::User(user) => user,
            _ => Ok(None),
        }
    }

    /// The answer of a [`Want::Tree`] walk.
    pub(crate) fn into_tree(self) -> Value {
        match self {
            Got::Tree(tree) => tree,
            _ => Value::Null,
        }
    }

    /// The answer of a [`Want::Record`] walk: what the record is. An unusable `kind` makes
    /// the record not decode; a record of another kind has no user, so the user's own
    /// error (a too-long id) does not matter then.
    pub(crate) fn into_identity(self) -> Result<Identity, DecodeError> {
        match self {
            Got::Record { kind, user } => match kind? {
                Some(kind) if !kind.is_empty() => Ok(Identity::NotSession { kind }),
                _ => Ok(Identity::Session { user: user? }),
            },
            _ => Ok(Identity::Session { user: None }),
        }
    }
}

/// The element count shared by one walk.
#[derive(Debug)]
pub(crate) struct Budget {
    elements_left: usize,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Self {
            elements_left: MAX_ELEMENTS,
        }
    }

    /// Counts `n` values, or refuses when that would pass [`MAX_ELEMENTS`].
    pub(crate) fn take(&mut self, n: usize) -> Result<(), DecodeError> {
        self.elements_left = self
            .elements_left
            .checked_sub(n)
            .ok_or(DecodeError::TooManyElements)?;
        Ok(())
    }

    /// Refuses a container that declares more values than are left, before reading any.
    pub(crate) fn check_declared(&self, n: usize) -> Result<(), DecodeError> {
        if n > self.elements_left {
            return Err(DecodeError::TooManyElements);
        }
        Ok(())
    }
}

/// The depth of a container inside one at `parent_depth` (the session itself is at depth
/// 1), or [`DecodeError::TooDeep`].
pub(crate) fn enter(parent_depth: usize) -> Result<usize, DecodeError> {
    let depth = parent_depth + 1;
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    Ok(depth)
}

impl Want<'_> {
    /// What this want makes of a scalar.
    #[inline]
    pub(crate) fn scalar(self, scalar: Scalar<'_>) -> Result<Got, DecodeError> {
        Ok(match self {
            Want::Skip => Got::Nothing,
            Want::User([]) => Got::User(user_from_scalar(scalar)),
            // The path goes on below a scalar: there is nothing there.
            Want::User(_) => Got::User(Ok(None)),
            Want::Tree => Got::Tree(json_of_scalar(scalar)),
            Want::Kind => Got::Kind(match scalar {
                Scalar::Null => Ok(None),
                Scalar::Str(bytes) if bytes.len() > MAX_FIELD_LEN => Err(DecodeError::KindTooLong),
                Scalar::Str(bytes) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
                _ => Err(DecodeError::BadRecord),
            }),
            Want::Record(_) => return Err(DecodeError::UnexpectedRoot),
        })
    }
}

/// The user id a scalar names (see [`crate::UserPath`]).
fn user_from_scalar(scalar: Scalar<'_>) -> Result<Option<String>, DecodeError> {
    match scalar {
        Scalar::Int(n) => Ok(Some(n.to_string())),
        Scalar::Uint(n) => Ok(Some(n.to_string())),
        Scalar::Str(bytes) => user_from_bytes(bytes),
        Scalar::Null | Scalar::Bool(_) | Scalar::Float(_) => Ok(None),
    }
}

/// A scalar as JSON. PHP's `INF`, `-INF` and `NAN` have no JSON spelling and become null.
fn json_of_scalar(scalar: Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(n) => Value::from(n),
        Scalar::Uint(n) => Value::from(n),
        Scalar::Float(x) => Value::from(x),
        Scalar::Str(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// A user lookup inside one container: which child the next path segment selects.
#[derive(Debug)]
pub(crate) struct PathCollect<'p> {
    /// The path from this container down; never empty.
    path: &'p [Segment],
    found: Option<Result<Option<String>, DecodeError>>,
    /// For a prefix segment, the key it selected: the first key with the prefix. Kept so
    /// that a later occurrence of that same key is selected too and replaces it, as it
    /// does in the decoded map. Allocated once per lookup that meets a prefix match.
    prefix_key: Option<Box<[u8]>>,
}

impl<'p> PathCollect<'p> {
    fn new(path: &'p [Segment]) -> Self {
        Self {
            path,
            found: None,
            prefix_key: None,
        }
    }

    fn want_for(&mut self, key: Key<'_>) -> Want<'p> {
        let Some((segment, below)) = self.path.split_first() else {
            return Want::Skip;
        };
        let selected = key.with_bytes(|key| match segment {
            Segment::Exact(name) => bytes::eq(key, name),
            Segment::Prefix(head) => match &self.prefix_key {
                Some(selected) => bytes::eq(key, selected),
                None if bytes::starts_with(key, head) => {
                    self.prefix_key = Some(key.into());
                    true
                }
                None => false,
            },
        });
        if selected {
            Want::User(below)
        } else {
            Want::Skip
        }
    }

    /// Folds in a selected child's answer. Every occurrence of the selected key answers, so
    /// the last answer wins, as the last occurrence of a key does in the decoded map.
    fn put(&mut self, got: Got) {
        if let Got::User(answer) = got {
            self.found = Some(answer);
        }
    }

    fn finish(self) -> Result<Option<String>, DecodeError> {
        self.found.unwrap_or(Ok(None))
    }
}

/// A container in progress.
#[derive(Debug)]
pub(crate) enum Collect<'p> {
    /// Children are skipped; the container answers `answer`.
    Skip(fn() -> Got),
    Path(PathCollect<'p>),
    Map(Map<String, Value>),
    List(Vec<Value>),
    Record {
        path: Option<PathCollect<'p>>,
        kind: Option<Result<Option<String>, DecodeError>>,
        /// What the path wanted of the `kind` member being walked, if that is what is being
        /// walked: the path may select `kind` too.
        kind_for_path: Option<Want<'p>>,
    },
}

impl<'p> Collect<'p> {
    /// Starts a container for `want`.
    #[inline]
    pub(crate) fn begin(want: Want<'p>, shape: Shape) -> Result<Self, DecodeError> {
        Ok(match (want, shape) {
            (Want::Skip, _) => Collect::Skip(|| Got::Nothing),
            // The path ends at a container: no user here, and nothing below is needed.
            (Want::User([]), _) => Collect::Skip(|| Got::User(Ok(None))),
            (Want::User(path), _) => Collect::Path(PathCollect::new(path)),
            (Want::Tree, Shape::Map) => Collect::Map(Map::new()),
            (Want::Tree, Shape::List) => Collect::List(Vec::new()),
            (Want::Kind, _) => Collect::Skip(|| Got::Kind(Err(DecodeError::BadRecord))),
            (Want::Record(path), Shape::Map) => Collect::Record {
                path: path.map(PathCollect::new),
                kind: None,
                kind_for_path: None,
            },
            (Want::Record(_), Shape::List) => return Err(DecodeError::UnexpectedRoot),
        })
    }

    /// What to do with the child at `key`.
    #[inline]
    pub(crate) fn want_for(&mut self, key: Key<'_>) -> Want<'p> {
        match self {
            Collect::Skip(_) => Want::Skip,
            Collect::Path(path) => path.want_for(key),
            Collect::Map(_) | Collect::List(_) => Want::Tree,
            Collect::Record {
                path,
                kind_for_path,
                ..
            } => {
                let for_path = path.as_mut().map_or(Want::Skip, |p| p.want_for(key));
                if key.with_bytes(|k| bytes::eq(k, b"kind")) {
                    *kind_for_path = Some(for_path);
                    Want::Kind
                } else {
                    for_path
                }
            }
        }
    }

    /// Folds in the child at `key`, walked with what [`Collect::want_for`] said.
    #[inline]
    pub(crate) fn put(&mut self, key: Key<'_>, got: Got) {
        // Most children of most containers are skipped: leave before moving `got` around.
        if let (Collect::Skip(_), Got::Nothing) = (&*self, &got) {
            return;
        }
        match (self, got) {
            (Collect::Path(path), got) => path.put(got),
            // Last wins, as in PHP's unserialize and JSON.parse.
            (Collect::Map(map), Got::Tree(value)) => {
                map.insert(key.to_json_key(), value);
            }
            (Collect::List(list), Got::Tree(value)) => list.push(value),
            (
                Collect::Record {
                    path,
                    kind,
                    kind_for_path,
                },
                got,
            ) => match (kind_for_path.take(), got) {
                (Some(for_path), Got::Kind(answer)) => {
                    // The path selected `kind` as well: answer it from the kind's value.
                    if let (Some(path), Want::User(below)) = (path.as_mut(), for_path) {
                        let user = match &answer {
                            Ok(Some(text)) if below.is_empty() => user_from_bytes(text.as_bytes()),
                            _ => Ok(None),
                        };
                        path.put(Got::User(user));
                    }
                    *kind = Some(answer);
                }
                (_, got) => {
                    if let Some(path) = path.as_mut() {
                        path.put(got);
                    }
                }
            },
            _ => {}
        }
    }

    /// The container's answer.
    #[inline]
    pub(crate) fn finish(self) -> Got {
        match self {
            Collect::Skip(answer) => answer(),
            Collect::Path(path) => Got::User(path.finish()),
            Collect::Map(map) => Got::Tree(Value::Object(map)),
            Collect::List(list) => Got::Tree(Value::Array(list)),
            Collect::Record { path, kind, .. } => Got::Record {
                kind: kind.unwrap_or(Ok(None)),
                user: path.map_or(Ok(None), PathCollect::finish),
            },
        }
    }
}
