//! Feeding fuzz input to a streaming decoder in chunks: the part every codec target shares.

use bytes::BytesMut;

/// Splits a fuzz input into the chunking plan (its first bytes, up to 4) and the input.
pub fn plan_and_input(data: &[u8]) -> (&[u8], &[u8]) {
    data.split_at(data.len().min(4))
}

/// Feeds `input` to `decode` in chunks whose sizes cycle through `plan` (all at once if
/// empty), calling it after each chunk until it wants more (`Ok(None)`), and collects what it
/// returns. Stops at the first error that `fatal` says ends the stream.
pub fn decode_chunked<T, E>(
    input: &[u8],
    plan: &[u8],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, E>,
    fatal: impl Fn(&E) -> bool,
) -> Vec<Result<T, E>> {
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    let mut at = 0;
    let mut step = 0;
    while at < input.len() {
        let size = match plan.get(step % plan.len().max(1)) {
            Some(n) => usize::from(*n % 64) + 1,
            None => input.len(),
        };
        step += 1;
        let end = (at + size).min(input.len());
        buf.extend_from_slice(&input[at..end]);
        at = end;
        loop {
            match decode(&mut buf) {
                Ok(Some(item)) => results.push(Ok(item)),
                Ok(None) => break,
                Err(err) => {
                    let stop = fatal(&err);
                    results.push(Err(err));
                    if stop {
                        return results;
                    }
                }
            }
        }
    }
    results
}
