//! The two ways this crate says no: a session value that does not decode ([`DecodeError`]),
//! and a family configuration that makes no sense ([`ConfigError`]).
//!
//! A `DecodeError` is an expected outcome, not a failure of the server: the store keeps the
//! bytes whatever they are, the server counts the error and treats the session as having no
//! user. So the variants are plain data (no message strings, no boxed sources) and building
//! one allocates nothing, even when hostile input makes every write fail to decode.

use std::fmt;

use crate::{MAX_DEPTH, MAX_ELEMENTS, MAX_FIELD_LEN, MAX_VALUE_LEN};

/// Why a session value did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The value is longer than [`MAX_VALUE_LEN`]; nothing was read.
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Arrays, objects or maps nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The value holds more than [`MAX_ELEMENTS`] values (or an array declares more).
    TooManyElements,
    /// The value ends in the middle of something (a string shorter than its declared length,
    /// an array without its `}`, a `php_binary` name without a value).
    Truncated,
    /// PHP-serialized bytes that PHP would not unserialize either.
    Malformed {
        /// Where the offending token starts, in bytes from the start of the value.
        offset: usize,
    },
    /// Bytes that are not JSON (or are JSON followed by something else).
    InvalidJson {
        /// 1-based line of the error, as serde_json reports it.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The value is well-formed but its outermost value is not what the format stores: a
    /// `php_serialize` value that is not an array, JSON that is not an object.
    UnexpectedRoot,
    /// A sessiond record whose `kind` is neither a string nor null.
    BadRecord,
    /// The user id found is longer than [`MAX_FIELD_LEN`] bytes.
    UserTooLong,
    /// A sessiond record's `kind` is longer than [`MAX_FIELD_LEN`] bytes.
    KindTooLong,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => {
                write!(
                    f,
                    "session value of {len} bytes exceeds {MAX_VALUE_LEN} bytes"
                )
            }
            Self::TooDeep => write!(f, "session value nests deeper than {MAX_DEPTH} levels"),
            Self::TooManyElements => {
                write!(f, "session value holds more than {MAX_ELEMENTS} values")
            }
            Self::Truncated => write!(f, "session value is truncated"),
            Self::Malformed { offset } => {
                write!(f, "session value is not PHP-serialized at byte {offset}")
            }
            Self::InvalidJson { line, column } => {
                write!(
                    f,
                    "session value is not JSON at line {line}, column {column}"
                )
            }
            Self::UnexpectedRoot => {
                write!(f, "session value is not an array (PHP) or an object (JSON)")
            }
            Self::BadRecord => write!(f, "sessiond record has a `kind` that is not a string"),
            Self::UserTooLong => write!(f, "user id is longer than {MAX_FIELD_LEN} bytes"),
            Self::KindTooLong => write!(f, "record kind is longer than {MAX_FIELD_LEN} bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a family or a set of families was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A family without a name.
    EmptyName,
    /// Two families with one name.
    DuplicateName(String),
    /// Two families with one prefix: no key could tell them apart.
    DuplicatePrefix {
        /// The family listed first.
        first: String,
        /// The family listed second.
        second: String,
    },
    /// An `exclude` entry that does not start with its family's prefix, so it could never
    /// exclude anything (excludes are whole-key prefixes, `memc.sess.key.lock.`, not the
    /// part after the family prefix).
    ExcludeOutsidePrefix {
        /// The family.
        family: String,
    },
    /// A `format` that is not one of `php`, `php_binary`, `php_serialize`, `json`, `record`.
    UnknownFormat(String),
    /// A user path that does not parse (see [`crate::UserPath`]).
    BadUserPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `name=value` item of [`crate::Family::parse_spec`] that is not `name=value`, or whose
    /// name is not a family field.
    BadSpecItem(String),
    /// A field that [`crate::Family::parse_spec`] needs (`name`, `prefix`, `format`) or that
    /// it got twice.
    SpecField {
        /// The field.
        field: &'static str,
        /// `true` when it was missing, `false` when it was repeated.
        missing: bool,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyName => write!(f, "session family without a name"),
            Self::DuplicateName(name) => write!(f, "two session families are named `{name}`"),
            Self::DuplicatePrefix { first, second } => write!(
                f,
                "session families `{first}` and `{second}` have the same prefix"
            ),
            Self::ExcludeOutsidePrefix { family } => write!(
                f,
                "session family `{family}`: every exclude must start with the family's prefix"
            ),
            Self::UnknownFormat(format) => write!(
                f,
                "unknown session format `{format}` (expected php, php_binary, php_serialize, json or record)"
            ),
            Self::BadUserPath { path, reason } => write!(f, "user path `{path}`: {reason}"),
            Self::BadSpecItem(item) => write!(f, "session family spec: bad item `{item}`"),
            Self::SpecField {
                field,
                missing: true,
            } => write!(f, "session family spec: `{field}` is missing"),
            Self::SpecField {
                field,
                missing: false,
            } => write!(f, "session family spec: `{field}` is given twice"),
        }
    }
}

impl std::error::Error for ConfigError {}
