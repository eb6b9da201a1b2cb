//! What the memcached text and binary fuzz targets share: chunked decoding, the round trip of
//! every decoded request, and encoding replies for it. Each target supplies its wire format as
//! a [`Format`].

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use sessiond_proto_memcache::{Command, Hit, Limits, Outcome};

use crate::chunked::{decode_chunked, plan_and_input};

/// Small limits, so that the fuzzer reaches them.
pub const LIMITS: Limits = Limits {
    max_key_len: 250,
    max_value_len: 1024,
    max_line_len: 2048,
    max_keys: 16,
};

/// One memcached wire format, seen from the server.
pub trait Format {
    type Decoder;
    type Request: Clone + Debug + PartialEq;
    type Error: Debug + PartialEq;

    fn decoder() -> Self::Decoder;
    fn decode(
        decoder: &mut Self::Decoder,
        buf: &mut BytesMut,
    ) -> Result<Option<Self::Request>, Self::Error>;
    /// Whether the stream cannot go on after `error`.
    fn is_fatal(error: &Self::Error) -> bool;
    fn command(request: &Self::Request) -> &Command;
    fn encode_request(request: &Self::Request, out: &mut BytesMut);
    fn encode_reply(request: &Self::Request, outcome: &Outcome, out: &mut BytesMut);
    fn encode_error(error: &Self::Error, out: &mut BytesMut);
    /// The outcomes to encode for each request.
    fn outcomes(hits: Vec<Option<Hit>>) -> Vec<Outcome>;
    /// Checks that `out`, everything encoded, parses as replies.
    fn check_replies(out: &mut BytesMut);
}

/// Decodes `input` fed in chunks whose sizes cycle through `plan` (all at once if empty).
fn decode<F: Format>(input: &[u8], plan: &[u8]) -> Vec<Result<F::Request, F::Error>> {
    let mut decoder = F::decoder();
    decode_chunked(input, plan, |buf| F::decode(&mut decoder, buf), F::is_fatal)
}

/// The body of a target: the first (up to) 4 bytes plan the chunking, the rest is the input.
///
/// Invariants: decoding never panics; how the input is split into reads does not change what
/// is decoded; every decoded request survives `encode_request` → decode unchanged; the
/// replies encoded for it parse back as replies.
pub fn check<F: Format>(data: &[u8]) {
    let (plan, input) = plan_and_input(data);
    let whole = decode::<F>(input, &[]);
    let chunked = decode::<F>(input, plan);
    assert_eq!(whole, chunked, "chunking changed the decoded requests");

    let mut out = BytesMut::new();
    for result in whole {
        let req = match result {
            Ok(req) => req,
            Err(err) => {
                F::encode_error(&err, &mut out);
                continue;
            }
        };
        let mut wire = BytesMut::new();
        F::encode_request(&req, &mut wire);
        let mut decoder = F::decoder();
        assert_eq!(
            F::decode(&mut decoder, &mut wire),
            Ok(Some(req.clone())),
            "round trip"
        );
        assert!(wire.is_empty(), "round trip left bytes behind");

        let hits = match F::command(&req) {
            Command::Get { keys, .. } => keys
                .iter()
                .map(|key| {
                    Some(Hit {
                        key: key.clone(),
                        flags: 1,
                        cas: 2,
                        value: Bytes::new(),
                    })
                })
                .collect(),
            _ => vec![],
        };
        for outcome in F::outcomes(hits) {
            F::encode_reply(&req, &outcome, &mut out);
        }
    }
    F::check_replies(&mut out);
}
