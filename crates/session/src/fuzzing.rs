//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`), and nothing else: not
//! part of the supported API, and off in every normal build.
//!
//! The layer turns a request's `Cookie` headers (or its id header) into a raw id with a
//! crate-private parser, then into a [`SessionId`](crate::SessionId) with the public
//! [`SessionId::parse`](crate::SessionId::parse). This module makes the first step callable
//! from outside the crate, unchanged, so the fuzzer exercises exactly what the layer runs.

use http::HeaderMap;

use crate::config::SessionConfig;

/// What the layer reads from `headers` as the client's raw session id under `config`: the
/// first cookie of the configured name whose value parses as an id, else the first cookie of
/// that name, or the trimmed, non-empty value of the id header.
pub fn read_id(headers: &HeaderMap, config: &SessionConfig) -> Option<String> {
    crate::cookie::read_id(headers, config)
}
