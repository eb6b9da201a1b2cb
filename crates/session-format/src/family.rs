//! Key families: which keys hold sessions, how their values are encoded, and where the
//! user id is; and [`Families`], the ordered set the server classifies every written key
//! against.
//!
//! Classification runs on every write, so [`Families::new`] precomputes, for each possible
//! first byte of a key, the families whose prefix starts with it, longest prefix first.
//! A key whose first byte starts no prefix (most keys of a store that is not all sessions)
//! costs one table load; otherwise a handful of `starts_with` comparisons. Nothing
//! allocates.
//!
//! A key belongs to the family with the longest prefix it starts with, and only to that
//! one: if that family refuses the key (an excluded lock key, a missing suffix, an empty
//! id), the key is not a session, even if a shorter prefix would take it. So `sess:{x}`
//! is sessiond's and `sess:{x` is nobody's, never express's.

use std::cmp::Reverse;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ConfigError, DecodeError};
use crate::path::UserPath;
use crate::php::{self, Framing};
use crate::walk::{Got, Want};
use crate::{MAX_FIELD_LEN, MAX_VALUE_LEN, bytes, json};

/// How a family's values are encoded. The PHP names are PHP's `session.serialize_handler`
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// PHP's default handler `php`: `user_id|i:42;name|s:5:"alice";`. A value that is one
    /// serialized array (`a:<n>:{`…) is read as `php_serialize` instead, so one family
    /// serves an application whichever of the two handlers it sets: no `php` session starts
    /// that way, since its first name would have to be `a:<digits>:{…` up to a `|`.
    Php,
    /// `php_binary`: a length byte (at most 127), the name, the serialized value, repeated:
    /// `\x07user_idi:42;\x04names:5:"alice";`.
    PhpBinary,
    /// `php_serialize`, also what Laravel stores: `a:2:{s:7:"user_id";i:42;…}`.
    PhpSerialize,
    /// A JSON object, as express-session stores through connect-redis:
    /// `{"cookie":{…},"passport":{"user":"42"}}`.
    Json,
    /// The JSON record of sessiond's own middleware (`sessiond_session::store::Record`):
    /// `{"data":{…},"created_at":…,"id_issued_at":…,"last_active_at":…}`, and a `kind`
    /// when the record is not a session.
    Record,
}

impl Format {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Format::Php => "php",
            Format::PhpBinary => "php_binary",
            Format::PhpSerialize => "php_serialize",
            Format::Json => "json",
            Format::Record => "record",
        }
    }
}

impl FromStr for Format {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, ConfigError> {
        [
            Format::Php,
            Format::PhpBinary,
            Format::PhpSerialize,
            Format::Json,
            Format::Record,
        ]
        .into_iter()
        .find(|format| format.name() == name)
        .ok_or_else(|| ConfigError::UnknownFormat(name.to_owned()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stored value is to a per-user index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A session, and the user it belongs to if it names one.
    Session {
        /// The user id found at the family's [`UserPath`].
        user: Option<String>,
    },
    /// A sessiond record that is not a session: a token, a revocation, a login ticket, an
    /// index of sessiond-tokens. It must not be counted or listed as anyone's session.
    NotSession {
        /// The record's `kind`, such as `sessiond-tokens/revocation`.
        kind: String,
    },
}

/// One family of session keys.
///
/// Build one with a struct literal, [`Family::parse_spec`], or serde (TOML, with the
/// fields below; byte strings are written as strings, `format` by name, `user` as a
/// path):
///
/// ```toml
/// [[session_family]]
/// name = "app"
/// prefix = "myapp_"
/// format = "php_serialize"
/// user = "/auth/id"
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "FamilySpec")]
pub struct Family {
    /// A name for logs, metrics and the admin API: `php-memcached`, `express`, ….
    pub name: String,
    /// What every key of the family starts with.
    pub prefix: Vec<u8>,
    /// What every key of the family ends with; the id is the key without prefix and
    /// suffix. sessiond's RESP store keeps `sess:{<id>}`, so its suffix is `}`.
    pub suffix: Vec<u8>,
    /// Whole-key prefixes that start with [`Family::prefix`] but are not sessions:
    /// php-memcached's lock keys `memc.sess.key.lock.<id>`.
    pub exclude: Vec<Vec<u8>>,
    /// Key endings that are not sessions: phpredis's lock keys
    /// `PHPREDIS_SESSION:<id>_LOCK` (PHP's session ids never contain `_`).
    pub exclude_suffix: Vec<Vec<u8>>,
    /// How values are encoded.
    pub format: Format,
    /// Where the user id is; `None` when sessions are kept but not indexed by user.
    pub user: Option<UserPath>,
    /// When sessions are Redis hashes, the field holding the encoded session: `r` for
    /// sessiond's middleware `RedisStore` (whose hash also has `v`, the version, and `a`,
    /// the last activity). `None` for string values.
    pub hash_field: Option<Vec<u8>>,
}

impl Family {
    /// Parses a family from one configuration string of comma-separated `field=value`
    /// items: `name=app,prefix=myapp_,format=php_serialize,user=/auth/id`. `name`, `prefix`
    /// (which may be empty: `prefix=`) and `format` are required; `suffix`, `user` and
    /// `hash_field` are optional; `exclude` and `exclude_suffix` may be repeated. Values
    /// are taken literally, so none can contain a comma; use the TOML form for those.
    pub fn parse_spec(spec: &str) -> Result<Family, ConfigError> {
        fn once(
            slot: &mut Option<String>,
            field: &'static str,
            value: &str,
        ) -> Result<(), ConfigError> {
            if slot.replace(value.to_owned()).is_some() {
                return Err(ConfigError::SpecField {
                    field,
                    missing: false,
                });
            }
            Ok(())
        }
        fn required(slot: Option<String>, field: &'static str) -> Result<String, ConfigError> {
            slot.ok_or(ConfigError::SpecField {
                field,
                missing: true,
            })
        }

        let (mut name, mut prefix, mut suffix, mut format, mut user, mut hash_field) =
            (None, None, None, None, None, None);
        let (mut exclude, mut exclude_suffix) = (Vec::new(), Vec::new());
        for item in spec.split(',') {
            let bad = || ConfigError::BadSpecItem(item.to_owned());
            let (field, value) = item.split_once('=').ok_or_else(bad)?;
            match field.trim() {
                "name" => once(&mut name, "name", value)?,
                "prefix" => once(&mut prefix, "prefix", value)?,
                "suffix" => once(&mut suffix, "suffix", value)?,
                "format" => once(&mut format, "format", value)?,
                "user" => once(&mut user, "user", value)?,
                "hash_field" => once(&mut hash_field, "hash_field", value)?,
                "exclude" => exclude.push(value.to_owned()),
                "exclude_suffix" => exclude_suffix.push(value.to_owned()),
                _ => return Err(bad()),
            }
        }
        Family::try_from(FamilySpec {
            name: required(name, "name")?,
            prefix: required(prefix, "prefix")?,
            suffix: suffix.unwrap_or_default(),
            exclude,
            exclude_suffix,
            format: required(format, "format")?.parse()?,
            user,
            hash_field,
        })
    }

    /// What `value`, stored under one of this family's keys, is: a session and its user, or
    /// (only for [`Format::Record`]) a record of another kind.
    ///
    /// An empty value is a session without a user (php-memcached writes one as a
    /// placeholder for a new id). With no [`Family::user`] path, a PHP or JSON value is not
    /// read at all; a record is still read for its `kind`.
    pub fn identify(&self, value: &[u8]) -> Result<Identity, DecodeError> {
        let no_user = Identity::Session { user: None };
        if value.is_empty() {
            return Ok(no_user);
        }
        check_len(value)?;
        let path = self.user.as_ref().map(UserPath::segments);
        match (self.format, path) {
            (Format::Record, path) => self.walk(value, Want::Record(path))?.into_identity(),
            (_, None) => Ok(no_user),
            (_, Some(path)) => {
                let user = self.walk(value, Want::User(path))?.into_user()?;
                Ok(Identity::Session { user })
            }
        }
    }

    /// The user id of a session value: `Ok(Some(user))`; `Ok(None)` when the value decodes
    /// but names no user (or is empty, or is a record that is not a session); or why it
    /// does not decode. Walks the value once without building it (see the crate docs for
    /// what a user id is and the limits).
    pub fn find_user(&self, value: &[u8]) -> Result<Option<String>, DecodeError> {
        match self.identify(value)? {
            Identity::Session { user } => Ok(user),
            Identity::NotSession { .. } => Ok(None),
        }
    }

    /// Whether `value` is a sessiond record that is not a session (one with a non-empty
    /// `kind`). `false` for every other format and for values that do not decode.
    pub fn is_not_session(&self, value: &[u8]) -> bool {
        self.format == Format::Record
            && matches!(self.identify(value), Ok(Identity::NotSession { .. }))
    }

    /// The whole session as JSON, for an administrator: a JSON object (empty for an empty
    /// value). PHP arrays become objects with string keys, PHP objects
    /// `{"__class": "Name", …properties}` (see the crate docs for the other pseudo-keys),
    /// binary strings lossy UTF-8, `INF` and `NAN` null. A record is returned whole.
    pub fn decode(&self, value: &[u8]) -> Result<Value, DecodeError> {
        if value.is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        check_len(value)?;
        let tree = self.walk(value, Want::Tree)?.into_tree();
        if self.format == Format::Record {
            // The checks a record walk makes of `kind`, made on the tree.
            match tree.get("kind") {
                None | Some(Value::Null) => {}
                Some(Value::String(kind)) if kind.len() > MAX_FIELD_LEN => {
                    return Err(DecodeError::KindTooLong);
                }
                Some(Value::String(_)) => {}
                Some(_) => return Err(DecodeError::BadRecord),
            }
        }
        Ok(tree)
    }

    fn walk(&self, value: &[u8], want: Want<'_>) -> Result<Got, DecodeError> {
        match self.format {
            Format::Php if is_serialized_array(value) => {
                php::walk(Framing::Serialized, value, want)
            }
            Format::Php => php::walk(Framing::Delimited, value, want),
            Format::PhpBinary => php::walk(Framing::LengthPrefixed, value, want),
            Format::PhpSerialize => php::walk(Framing::Serialized, value, want),
            Format::Json | Format::Record => json::walk(value, want),
        }
    }

    /// Whether `key`, which starts with the prefix, is one of this family's sessions.
    #[inline]
    fn owns(&self, key: &[u8]) -> bool {
        key.len() > self.prefix.len() + self.suffix.len()
            && bytes::ends_with(key, &self.suffix)
            && !self.exclude.iter().any(|e| bytes::starts_with(key, e))
            && !self.exclude_suffix.iter().any(|e| bytes::ends_with(key, e))
    }

    /// The checks that need only this family.
    fn check(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if !self.exclude.iter().all(|e| e.starts_with(&self.prefix)) {
            return Err(ConfigError::ExcludeOutsidePrefix {
                family: self.name.clone(),
            });
        }
        Ok(())
    }
}

fn check_len(value: &[u8]) -> Result<(), DecodeError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(DecodeError::TooLarge { len: value.len() });
    }
    Ok(())
}

impl fmt::Debug for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Byte strings as escaped text: they are key fragments, nearly always ASCII.
        let text = |bytes: &[u8]| bytes.escape_ascii().to_string();
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("prefix", &text(&self.prefix))
            .field("suffix", &text(&self.suffix))
            .field(
                "exclude",
                &self.exclude.iter().map(|e| text(e)).collect::<Vec<_>>(),
            )
            .field(
                "exclude_suffix",
                &self
                    .exclude_suffix
                    .iter()
                    .map(|e| text(e))
                    .collect::<Vec<_>>(),
            )
            .field("format", &self.format)
            .field("user", &self.user)
            .field("hash_field", &self.hash_field.as_deref().map(text))
            .finish()
    }
}

/// A family as configuration writes it (TOML, or [`Family::parse_spec`]'s items).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilySpec {
    name: String,
    prefix: String,
    #[serde(default)]
    suffix: String,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    exclude_suffix: Vec<String>,
    format: Format,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    hash_field: Option<String>,
}

impl TryFrom<FamilySpec> for Family {
    type Error = ConfigError;

    fn try_from(spec: FamilySpec) -> Result<Self, ConfigError> {
        let family = Family {
            name: spec.name,
            prefix: spec.prefix.into_bytes(),
            suffix: spec.suffix.into_bytes(),
            exclude: spec.exclude.into_iter().map(String::into_bytes).collect(),
            exclude_suffix: spec
                .exclude_suffix
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            format: spec.format,
            user: spec.user.map(|path| path.parse()).transpose()?,
            hash_field: spec.hash_field.map(String::into_bytes),
        };
        family.check()?;
        Ok(family)
    }
}

/// An ordered set of families. A family's index is its position in the list it was built
/// from; a key belongs to the family with the longest matching prefix.
#[derive(Debug, Clone)]
pub struct Families {
    families: Vec<Family>,
    /// For each first byte of a key, the families whose prefix starts with that byte or is
    /// empty, longest prefix first.
    by_first_byte: Box<[Box<[usize]>]>,
    /// The families with an empty prefix, for the empty key.
    for_empty_key: Box<[usize]>,
}

impl Families {
    /// The four stock families:
    ///
    /// | name | keys | format | user |
    /// | --- | --- | --- | --- |
    /// | `php-memcached` | `memc.sess.key.<id>`, not `memc.sess.key.lock.<id>` | `php` | `/user_id` |
    /// | `phpredis` | `PHPREDIS_SESSION:<id>`, not `…_LOCK` | `php` | `/user_id` |
    /// | `express` | `sess:<id>` (connect-redis) | `json` | `/passport/user` |
    /// | `sessiond` | `sess:{<id>}`, hash field `r` | `record` | `/data/user_id` |
    ///
    /// `sess:{` is longer than `sess:`, so sessiond's `RedisStore` keys are never read as
    /// express sessions. sessiond's `MemcachedStore` keeps `sess:<id>` strings, which *do*
    /// fall to `express`: see the crate docs.
    pub fn presets() -> Families {
        let family = |name: &str, prefix: &[u8], format, user: &str| Family {
            name: name.to_owned(),
            prefix: prefix.to_vec(),
            suffix: Vec::new(),
            exclude: Vec::new(),
            exclude_suffix: Vec::new(),
            format,
            user: Some(user.parse().expect("preset user paths parse")),
            hash_field: None,
        };
        let presets = vec![
            Family {
                exclude: vec![b"memc.sess.key.lock.".to_vec()],
                ..family("php-memcached", b"memc.sess.key.", Format::Php, "/user_id")
            },
            Family {
                exclude_suffix: vec![b"_LOCK".to_vec()],
                ..family("phpredis", b"PHPREDIS_SESSION:", Format::Php, "/user_id")
            },
            family("express", b"sess:", Format::Json, "/passport/user"),
            Family {
                suffix: b"}".to_vec(),
                hash_field: Some(b"r".to_vec()),
                ..family("sessiond", b"sess:{", Format::Record, "/data/user_id")
            },
        ];
        Families::new(presets).expect("the presets are consistent")
    }

    /// Checks `families` (non-empty unique names, unique prefixes, excludes inside their
    /// prefix) and indexes them for [`Families::classify`].
    pub fn new(families: Vec<Family>) -> Result<Families, ConfigError> {
        for (i, family) in families.iter().enumerate() {
            family.check()?;
            for earlier in &families[..i] {
                if earlier.name == family.name {
                    return Err(ConfigError::DuplicateName(family.name.clone()));
                }
                if earlier.prefix == family.prefix {
                    return Err(ConfigError::DuplicatePrefix {
                        first: earlier.name.clone(),
                        second: family.name.clone(),
                    });
                }
            }
        }
        let mut longest_first: Vec<usize> = (0..families.len()).collect();
        longest_first.sort_by_key(|&i| Reverse(families[i].prefix.len()));
        let starting_with = |first: Option<u8>| -> Box<[usize]> {
            longest_first
                .iter()
                .copied()
                .filter(|&i| match families[i].prefix.first() {
                    None => true,
                    Some(&byte) => Some(byte) == first,
                })
                .collect()
        };
        let by_first_byte = (0..=u8::MAX).map(|b| starting_with(Some(b))).collect();
        let for_empty_key = starting_with(None);
        Ok(Families {
            families,
            by_first_byte,
            for_empty_key,
        })
    }

    /// The family `key` belongs to and its index, or `None` for a key that is not a session
    /// (no prefix matches, or the longest match excludes it). Allocation-free; for a key
    /// whose first byte starts no prefix, one table lookup.
    #[inline]
    pub fn classify(&self, key: &[u8]) -> Option<(usize, &Family)> {
        let candidates = match key.first() {
            Some(&byte) => &self.by_first_byte[usize::from(byte)],
            None => &self.for_empty_key,
        };
        let &index = candidates
            .iter()
            .find(|&&i| bytes::starts_with(key, &self.families[i].prefix))?;
        let family = &self.families[index];
        family.owns(key).then_some((index, family))
    }

    /// The session id in `key`: the key without the family's prefix and suffix. For a key
    /// that [`Families::classify`] gave to `family`; any other key gives a meaningless
    /// (possibly empty) slice, never a panic. Panics if `family` is out of range.
    pub fn id<'k>(&self, family: usize, key: &'k [u8]) -> &'k [u8] {
        let family = &self.families[family];
        let end = key.len().saturating_sub(family.suffix.len());
        key.get(family.prefix.len()..end).unwrap_or_default()
    }

    /// The family at `index`. Panics if `index` is out of range, like slice indexing.
    pub fn get(&self, index: usize) -> &Family {
        &self.families[index]
    }

    /// How many families there are.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether there are none (then no key is a session).
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The families, in index order.
    pub fn iter(&self) -> std::slice::Iter<'_, Family> {
        self.families.iter()
    }
}

impl<'a> IntoIterator for &'a Families {
    type Item = &'a Family;
    type IntoIter = std::slice::Iter<'a, Family>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Whether `value` opens like a serialized array (`a:` and a digit), the mark of PHP's
/// `php_serialize` handler that [`Format::Php`] also accepts.
fn is_serialized_array(value: &[u8]) -> bool {
    matches!(value, [b'a', b':', digit, ..] if digit.is_ascii_digit())
}
