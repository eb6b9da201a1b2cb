//! Fuzzes what the server runs on every write of a session key: `Families::classify` on the
//! key and `Family::identify` / `find_user` on the value, plus the administrator's
//! `Family::decode`, for every format of `sessiond_session_format`.
//!
//! Input: the first byte picks the format (low 3 bits, modulo 5) and the user path (the
//! rest, modulo the list below); the remaining bytes are the value, and also a key for the
//! stock families.
//!
//! Invariants: nothing panics; `find_user` is exactly the path looked up in `decode`'s
//! JSON (same error, or same user), computed here from the public API only; a decoded
//! session is a JSON object; a user id is non-empty and at most 256 bytes; a value that
//! `identify` calls "not a session" is a record whose decoded `kind` is that string; a
//! classified key's id is the key without the family's prefix and suffix.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessiond_session_format::{Families, Family, Format, Identity, MAX_FIELD_LEN};

const FORMATS: [Format; 5] = [
    Format::Php,
    Format::PhpBinary,
    Format::PhpSerialize,
    Format::Json,
    Format::Record,
];

static PRESETS: LazyLock<Families> = LazyLock::new(Families::presets);

/// Paths without `~` escapes, so the lookup below can split them on `/`.
const PATHS: [&str; 8] = [
    "/user_id",
    "/passport/user",
    "/data/user_id",
    "/login_web_*",
    "/a/0",
    "/*",
    "/u*/*",
    "/kind",
];

/// The path looked up in a decoded session; `None` when a prefix step matches more than one
/// key (the walk takes the first in the session's order, the JSON map is sorted).
fn lookup<'t>(tree: &'t Value, path: &str) -> Option<Option<&'t Value>> {
    let mut here = tree;
    for segment in path[1..].split('/') {
        let entries: Vec<(String, &Value)> = match here {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => return Some(None),
        };
        let matching: Vec<&Value> = entries
            .into_iter()
            .filter(|(key, _)| match segment.strip_suffix('*') {
                Some(head) => key.starts_with(head),
                None => key == segment,
            })
            .map(|(_, v)| v)
            .collect();
        match matching[..] {
            [] => return Some(None),
            [one] => here = one,
            _ => return None,
        }
    }
    Some(Some(here))
}

fn user_of(found: Option<&Value>) -> Result<Option<String>, sessiond_session_format::DecodeError> {
    Ok(match found {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(Value::String(s)) if s.len() > MAX_FIELD_LEN => {
            return Err(sessiond_session_format::DecodeError::UserTooLong);
        }
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector & 7) % FORMATS.len()];
    let path = PATHS[usize::from(selector >> 3) % PATHS.len()];
    let family = Family {
        name: "fuzz".to_owned(),
        prefix: Vec::new(),
        suffix: Vec::new(),
        exclude: Vec::new(),
        exclude_suffix: Vec::new(),
        format,
        user: Some(path.parse().expect("the paths parse")),
        hash_field: None,
    };

    let identity = family.identify(value);
    let found = family.find_user(value);
    let decoded = family.decode(value);
    match &decoded {
        Err(error) => assert_eq!(found.as_ref(), Err(error)),
        Ok(tree) => {
            assert!(tree.is_object(), "a session decodes to an object");
            let kind = match tree.get("kind") {
                Some(Value::String(kind)) if format == Format::Record && !kind.is_empty() => {
                    Some(kind.clone())
                }
                _ => None,
            };
            match kind {
                Some(kind) => {
                    assert_eq!(identity, Ok(Identity::NotSession { kind }));
                    assert_eq!(found, Ok(None));
                }
                None => {
                    if let Some(expected) = lookup(tree, path) {
                        assert_eq!(found, user_of(expected), "{format} {path}");
                    }
                    assert!(matches!(identity, Ok(Identity::Session { .. }) | Err(_)));
                }
            }
        }
    }
    if let Ok(Some(user)) = &found {
        assert!(!user.is_empty() && user.len() <= MAX_FIELD_LEN);
    }

    if let Some((index, family)) = PRESETS.classify(value) {
        let id = PRESETS.id(index, value);
        assert!(!id.is_empty());
        assert_eq!(
            [&family.prefix[..], id, &family.suffix[..]].concat(),
            value,
            "the id is the key without prefix and suffix"
        );
    }
});
