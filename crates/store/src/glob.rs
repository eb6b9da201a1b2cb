//! Glob-style pattern matching for `KEYS`, `SCAN MATCH` and `PSUBSCRIBE`, with Redis's
//! syntax: `*` (any run), `?` (any byte), `[abc]`, `[^abc]`, `[a-z]` and `\x` (a literal).
//!
//! The matcher is iterative and remembers only the last `*`: on a mismatch it retries from
//! one byte further past that star. That is enough for globs (a later star can absorb
//! whatever an earlier one would have), and it bounds the work by pattern length × subject
//! length, so a hostile pattern such as `*a*a*a*a*b` cannot make it exponential.

/// Whether `subject` matches `pattern`.
pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, subject index it absorbs up to).
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    // Collapse runs of stars.
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, s));
                    continue;
                }
                b'?' => {
                    p += 1;
                    s += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, subject[s])
                        && matched
                    {
                        p = next;
                        s += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == subject[s] {
                        p += 2;
                        s += 1;
                        continue;
                    }
                }
                c => {
                    if c == subject[s] {
                        p += 1;
                        s += 1;
                        continue;
                    }
                }
            }
        }
        // Mismatch: let the last star absorb one more byte, or fail.
        match star {
            Some((sp, ss)) => {
                p = sp;
                s = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches byte `c` against the class starting at `pattern[start] == b'['`; returns whether
/// it matched and the index after the class. An unterminated class runs to the end of the
/// pattern, as in Redis.
fn class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == c;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (mut lo, mut hi) = (pattern[i], pattern[i + 2]);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    let next = (i + 1).min(pattern.len());
    Some((matched != negate, next))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_syntax() {
        let yes = |p: &str, s: &str| assert!(glob_match(p.as_bytes(), s.as_bytes()), "{p} ~ {s}");
        let no = |p: &str, s: &str| assert!(!glob_match(p.as_bytes(), s.as_bytes()), "{p} !~ {s}");
        yes("*", "");
        yes("*", "anything");
        yes("myapp:*", "myapp:abc");
        no("myapp:*", "other:abc");
        yes("h?llo", "hello");
        no("h?llo", "hllo");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        yes("a\\*b", "a*b");
        no("a\\*b", "axb");
        yes("*a*b", "xxaxxb");
        no("*a*b", "xxaxxc");
        yes("__keyevent@*__:expired", "__keyevent@0__:expired");
        yes("", "");
        no("", "a");
        // Pathological patterns stay polynomial.
        let subject = "a".repeat(5000);
        no(&format!("{}b", "*a".repeat(50)), &subject);
    }
}
