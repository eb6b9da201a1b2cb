//! Redis's encoding parameters and `OBJECT`: what clients and Redis's own test suite set and
//! ask about how a value is stored.
//!
//! sessiond keeps one representation per type (a string block, hash tables, a B-tree for
//! sorted sets), so Redis's compact encodings do not exist here. The parameters
//! (`hash-max-listpack-entries`, `zset-max-ziplist-value`, `set-max-intset-entries`, …) are
//! accepted by `CONFIG SET` and shown by `CONFIG GET`, with no effect on storage, because
//! clients and test harnesses set them at start-up and fail if refused. `OBJECT ENCODING`
//! answers the name Redis would use for a value of that size under the current parameters,
//! computed from the value, so tools that look at encodings see plausible answers; unlike
//! Redis the answer goes back to the compact name when a value shrinks.

use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use sessiond_proto_resp::Reply;
use sessiond_store::Value;

use super::args::{Args, Handled};
use super::{Ctx, bulk, error, parse_int, unknown_subcommand};

/// One no-effect parameter: its names (7.0's name first, then its pre-7.0 alias) and value.
struct Parameter {
    names: &'static [&'static str],
    value: AtomicI64,
}

impl Parameter {
    const fn new(names: &'static [&'static str], default: i64) -> Parameter {
        Parameter {
            names,
            value: AtomicI64::new(default),
        }
    }
}

/// The encoding parameters, with Redis 7.0's defaults. Server-wide, like Redis's.
pub struct EncodingSettings {
    parameters: [Parameter; 9],
}

const HASH_ENTRIES: usize = 0;
const HASH_VALUE: usize = 1;
const ZSET_ENTRIES: usize = 2;
const ZSET_VALUE: usize = 3;
const SET_INTSET: usize = 4;
const STREAM_NODE_ENTRIES: usize = 5;

impl Default for EncodingSettings {
    fn default() -> Self {
        EncodingSettings {
            parameters: [
                Parameter::new(
                    &["hash-max-listpack-entries", "hash-max-ziplist-entries"],
                    128,
                ),
                Parameter::new(&["hash-max-listpack-value", "hash-max-ziplist-value"], 64),
                Parameter::new(
                    &["zset-max-listpack-entries", "zset-max-ziplist-entries"],
                    128,
                ),
                Parameter::new(&["zset-max-listpack-value", "zset-max-ziplist-value"], 64),
                Parameter::new(&["set-max-intset-entries"], 512),
                Parameter::new(&["stream-node-max-entries"], 100),
                Parameter::new(&["stream-node-max-bytes"], 4096),
                Parameter::new(&["active-defrag-threshold-lower"], 10),
                Parameter::new(&["hll-sparse-max-bytes"], 3000),
            ],
        }
    }
}

impl EncodingSettings {
    fn get(&self, index: usize) -> i64 {
        self.parameters[index].value.load(Ordering::Relaxed)
    }

    /// `stream-node-max-entries`: how many entries a stream node holds, which decides what
    /// an approximate trim removes (`sessiond_store::Stream::node_for_new`). 0 (Redis:
    /// no entry limit) is taken as Redis's default.
    pub fn stream_node_entries(&self) -> u64 {
        match self.get(STREAM_NODE_ENTRIES) {
            n if n > 0 => n as u64,
            _ => 100,
        }
    }

    /// Every parameter under every name, with its value, for `CONFIG GET`.
    pub fn values(&self) -> Vec<(&'static str, String)> {
        self.parameters
            .iter()
            .flat_map(|p| {
                let value = p.value.load(Ordering::Relaxed).to_string();
                p.names.iter().map(move |name| (*name, value.clone()))
            })
            .collect()
    }

    /// Checks a `CONFIG SET` of `name` to `value`: `None` if `name` is not an encoding
    /// parameter, `Some(Err(why))` if the value is refused, otherwise the setting to
    /// [`EncodingSettings::apply`] once every pair of the command has been checked. Like
    /// Redis 7.0, they are memory values (`128`, `1kb`). (The list parameters are the lists'
    /// module's: `lists::config_without_effect`.)
    pub fn parse(&self, name: &str, value: &[u8]) -> Option<Result<(usize, i64), &'static str>> {
        let index = self
            .parameters
            .iter()
            .position(|p| p.names.contains(&name))?;
        let parsed = super::server::parse_memory(value)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or("argument must be a memory value");
        Some(parsed.map(|n| (index, n)))
    }

    /// Applies a value [`EncodingSettings::parse`] accepted.
    pub fn apply(&self, (index, value): (usize, i64)) {
        self.parameters[index].value.store(value, Ordering::Relaxed);
    }

    /// The name Redis 7.0 gives the encoding of `value` under these parameters.
    pub fn encoding_of(&self, value: &Value) -> &'static str {
        let small = |len: usize, entries: usize, longest: usize, max_value: usize| {
            len as i64 <= self.get(entries) && longest as i64 <= self.get(max_value)
        };
        match value {
            Value::Str(bytes) => {
                if bytes.len() <= 20 && parse_int(bytes).is_some() {
                    "int"
                } else if bytes.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::Hash(hash) => {
                let longest = hash
                    .iter()
                    .map(|(f, v)| f.len().max(v.len()))
                    .max()
                    .unwrap_or(0);
                if small(hash.len(), HASH_ENTRIES, longest, HASH_VALUE) {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            Value::Set(set) => {
                let integers = set.iter().all(|m| parse_int(m).is_some());
                if integers && set.len() as i64 <= self.get(SET_INTSET) {
                    "intset"
                } else {
                    "hashtable"
                }
            }
            Value::ZSet(zset) => {
                let longest = zset.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
                if small(zset.len(), ZSET_ENTRIES, longest, ZSET_VALUE) {
                    "listpack"
                } else {
                    "skiplist"
                }
            }
            // Redis 7.0 keeps every list as a quicklist (7.2 brought listpacks for small
            // ones).
            Value::List(_) => "quicklist",
            Value::Stream(_) => "stream",
        }
    }
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`. A missing key is a null
/// reply, as in Redis. sessiond keeps no access clock per key (nothing is ever evicted, so
/// nothing needs one): `IDLETIME` is 0 and `FREQ` is refused as Redis refuses it under a
/// policy that is not LFU; `REFCOUNT` is Redis's answer (its shared small integers show as
/// `2147483647`, anything else as 1).
pub fn object(ctx: &mut Ctx<'_>, args: &mut Args<'_>) -> Handled {
    let sub = args.bytes()?;
    let name = String::from_utf8_lossy(sub).to_ascii_lowercase();
    if name == "help" && args.is_empty() {
        return Ok(Reply::Array(
            OBJECT_HELP
                .iter()
                .map(|l| bulk(Bytes::from_static(l.as_bytes())))
                .collect(),
        )
        .into());
    }
    if !matches!(name.as_str(), "encoding" | "freq" | "idletime" | "refcount") {
        return Err(unknown_subcommand("object", sub));
    }
    let (Some(key), true) = (args.next(), args.is_empty()) else {
        return Err(super::wrong_args(&format!("object|{name}")));
    };
    let Some(entry) = ctx.store().peek(key, ctx.now) else {
        return Ok(Reply::Null.into());
    };
    Ok(match name.as_str() {
        "encoding" => bulk(Bytes::from_static(
            ctx.shared
                .resp
                .encoding
                .encoding_of(&entry.value)
                .as_bytes(),
        )),
        "idletime" => Reply::Integer(0),
        // Redis shares the integers 0 … 9999 between keys and shows them as referenced
        // "forever"; sessiond stores every value once.
        "refcount" => Reply::Integer(match &entry.value {
            Value::Str(s) if parse_int(s).is_some_and(|n| (0..10_000).contains(&n)) => {
                i64::from(i32::MAX)
            }
            _ => 1,
        }),
        _ => {
            return Err(error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
    }
    .into())
}
