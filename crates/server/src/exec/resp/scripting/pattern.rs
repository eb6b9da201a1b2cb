//! Lua 5.1's string patterns, matched in Rust under a budget.
//!
//! Scripts get `string.find`, `string.match`, `string.gmatch` and `string.gsub` from here
//! instead of from Lua's C library, because the C matcher can hurt the server: it recurses
//! without a depth limit (a long `a?a?a?…` pattern overflows the worker's stack and aborts
//! the process), and a backtracking pattern can run for minutes inside one C call, where
//! the interpreter's instruction hook never fires. This matcher follows Lua 5.1's semantics
//! (the same pattern items, anchors, captures, `%b`, `%f` and back-references, byte for
//! byte), and adds two limits: a recursion depth of [`MAX_DEPTH`] ("pattern too complex",
//! as Lua 5.2 and later say), and a [`Budget`] consulted every [`CHECK_EVERY`] steps, which
//! stops a match when the script's time is up.
//!
//! Character classes are those of the C locale (ASCII), as in the server's Lua.

/// Deepest recursion of the matcher (one level per pattern item that may backtrack).
pub const MAX_DEPTH: usize = 200;
/// Most captures in one pattern (Lua's `LUA_MAXCAPTURES`).
pub const MAX_CAPTURES: usize = 32;
/// Matching steps between two checks of the budget.
pub const CHECK_EVERY: u32 = 1 << 12;

/// Why a match stopped without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern is malformed; Lua's message.
    Malformed(&'static str),
    /// The budget said stop (the script ran out of time).
    Stopped(String),
}

/// Asked every [`CHECK_EVERY`] steps whether matching may go on; `Err` stops it with that
/// message.
pub trait Budget {
    /// `Ok` to continue.
    fn check(&mut self) -> Result<(), String>;
}

impl<F: FnMut() -> Result<(), String>> Budget for F {
    fn check(&mut self) -> Result<(), String> {
        self()
    }
}

/// A capture's extent once the match is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// `()`: the position (0-based) where it stood.
    Position(usize),
    /// A substring: start and end offsets in the subject.
    Span(usize, usize),
}

#[derive(Debug, Clone, Copy)]
enum Len {
    Unfinished,
    Position,
    Bytes(usize),
}

/// One match attempt's state.
struct Matcher<'a, B: Budget> {
    src: &'a [u8],
    pat: &'a [u8],
    depth: usize,
    steps: u32,
    budget: &'a mut B,
    captures: Vec<(usize, Len)>,
}

const ESC: u8 = b'%';
/// The characters that make a pattern more than a plain string (`string.find`'s shortcut).
const SPECIALS: &[u8] = b"^$*+?.([%-";

impl<B: Budget> Matcher<'_, B> {
    fn step(&mut self) -> Result<(), PatternError> {
        self.steps += 1;
        if self.steps >= CHECK_EVERY {
            self.steps = 0;
            self.budget.check().map_err(PatternError::Stopped)?;
        }
        Ok(())
    }

    /// Where the single-character class at `p` ends.
    fn class_end(&self, mut p: usize) -> Result<usize, PatternError> {
        let pat = self.pat;
        let c = pat[p];
        p += 1;
        if c == ESC {
            if p >= pat.len() {
                return Err(PatternError::Malformed("malformed pattern (ends with '%')"));
            }
            return Ok(p + 1);
        }
        if c == b'[' {
            if pat.get(p) == Some(&b'^') {
                p += 1;
            }
            // The first character of a set is taken as is (so `[]]` is a set of `]`).
            loop {
                if p >= pat.len() {
                    return Err(PatternError::Malformed("malformed pattern (missing ']')"));
                }
                let c = pat[p];
                p += 1;
                if c == ESC && p < pat.len() {
                    p += 1;
                }
                if pat.get(p) == Some(&b']') {
                    break;
                }
                if p >= pat.len() {
                    return Err(PatternError::Malformed("malformed pattern (missing ']')"));
                }
            }
            return Ok(p + 1);
        }
        Ok(p)
    }

    fn single_match(&self, c: u8, p: usize, ep: usize) -> bool {
        match self.pat[p] {
            b'.' => true,
            ESC => match_class(c, self.pat[p + 1]),
            b'[' => self.match_bracket_class(c, p, ep - 1),
            other => other == c,
        }
    }

    /// Whether `c` is in the set `[ … ]` from `p` (the `[`) to `ec` (the `]`).
    fn match_bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let pat = self.pat;
        let mut found = true;
        if pat[p + 1] == b'^' {
            found = false;
            p += 1;
        }
        p += 1;
        while p < ec {
            if pat[p] == ESC {
                p += 1;
                if match_class(c, pat[p]) {
                    return found;
                }
            } else if pat.get(p + 1) == Some(&b'-') && p + 2 < ec {
                if pat[p] <= c && c <= pat[p + 2] {
                    return found;
                }
                p += 2;
            } else if pat[p] == c {
                return found;
            }
            p += 1;
        }
        !found
    }

    /// Matches the pattern from `p` against the subject from `s`; the end of the match.
    fn do_match(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PatternError::Malformed("pattern too complex"));
        }
        let result = self.match_here(s, p);
        self.depth -= 1;
        result
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, PatternError> {
        let (src, pat) = (self.src, self.pat);
        loop {
            self.step()?;
            let Some(&pc) = pat.get(p) else {
                return Ok(Some(s));
            };
            match pc {
                b'(' => {
                    return if pat.get(p + 1) == Some(&b')') {
                        self.start_capture(s, p + 2, Len::Position)
                    } else {
                        self.start_capture(s, p + 1, Len::Unfinished)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                ESC if pat.get(p + 1) == Some(&b'b') => match self.match_balance(s, p + 2)? {
                    Some(end) => {
                        s = end;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                ESC if pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if pat.get(p) != Some(&b'[') {
                        return Err(PatternError::Malformed("missing '[' after '%f' in pattern"));
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { src[s - 1] };
                    let current = src.get(s).copied().unwrap_or(0);
                    if !self.match_bracket_class(previous, p, ep - 1)
                        && self.match_bracket_class(current, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                ESC if pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                    match self.match_capture(s, pat[p + 1])? {
                        Some(end) => {
                            s = end;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                b'$' if p + 1 == pat.len() => {
                    return Ok((s == src.len()).then_some(s));
                }
                _ => {}
            }
            let ep = self.class_end(p)?;
            let matched = s < src.len() && self.single_match(src[s], p, ep);
            match pat.get(ep) {
                Some(b'?') => {
                    if matched && let Some(end) = self.do_match(s + 1, ep + 1)? {
                        return Ok(Some(end));
                    }
                    p = ep + 1;
                }
                Some(b'*') => return self.max_expand(s, p, ep),
                Some(b'+') => {
                    return if matched {
                        self.max_expand(s + 1, p, ep)
                    } else {
                        Ok(None)
                    };
                }
                Some(b'-') => return self.min_expand(s, p, ep),
                _ => {
                    if !matched {
                        return Ok(None);
                    }
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, PatternError> {
        let src = self.src;
        let mut count = 0;
        while s + count < src.len() && self.single_match(src[s + count], p, ep) {
            count += 1;
            self.step()?;
        }
        loop {
            if let Some(end) = self.do_match(s + count, ep + 1)? {
                return Ok(Some(end));
            }
            if count == 0 {
                return Ok(None);
            }
            count -= 1;
        }
    }

    fn min_expand(
        &mut self,
        mut s: usize,
        p: usize,
        ep: usize,
    ) -> Result<Option<usize>, PatternError> {
        loop {
            if let Some(end) = self.do_match(s, ep + 1)? {
                return Ok(Some(end));
            }
            if s < self.src.len() && self.single_match(self.src[s], p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(
        &mut self,
        s: usize,
        p: usize,
        len: Len,
    ) -> Result<Option<usize>, PatternError> {
        if self.captures.len() >= MAX_CAPTURES {
            return Err(PatternError::Malformed("too many captures"));
        }
        self.captures.push((s, len));
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.captures.pop();
        }
        Ok(result)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        let open = self
            .captures
            .iter()
            .rposition(|(_, len)| matches!(len, Len::Unfinished))
            .ok_or(PatternError::Malformed("invalid pattern capture"))?;
        let start = self.captures[open].0;
        self.captures[open].1 = Len::Bytes(s - start);
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.captures[open].1 = Len::Unfinished;
        }
        Ok(result)
    }

    fn match_balance(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        let (Some(&open), Some(&close)) = (self.pat.get(p), self.pat.get(p + 1)) else {
            return Err(PatternError::Malformed("unbalanced pattern"));
        };
        let src = self.src;
        if src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1;
        let mut at = s + 1;
        while at < src.len() {
            self.step()?;
            let c = src[at];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(at + 1));
                }
            } else if c == open {
                depth += 1;
            }
            at += 1;
        }
        Ok(None)
    }

    fn match_capture(&mut self, s: usize, digit: u8) -> Result<Option<usize>, PatternError> {
        let index = usize::from(digit.wrapping_sub(b'1'));
        let (start, len) = match self.captures.get(index) {
            Some(&(start, Len::Bytes(len))) => (start, len),
            // A position capture has no text, so nothing can repeat it (Lua compares a
            // length it can never reach).
            Some((_, Len::Position)) => return Ok(None),
            _ => return Err(PatternError::Malformed("invalid capture index")),
        };
        let src = self.src;
        Ok((src.len() - s >= len && src[start..start + len] == src[s..s + len]).then_some(s + len))
    }

    /// The captures of a successful match from `s` to `e` (the whole match if none).
    fn finish(&self, s: usize, e: usize) -> Result<Vec<Capture>, PatternError> {
        if self.captures.is_empty() {
            return Ok(vec![Capture::Span(s, e)]);
        }
        self.captures
            .iter()
            .map(|&(start, len)| match len {
                Len::Unfinished => Err(PatternError::Malformed("unfinished capture")),
                Len::Position => Ok(Capture::Position(start)),
                Len::Bytes(len) => Ok(Capture::Span(start, start + len)),
            })
            .collect()
    }
}

/// Whether `c` belongs to the class `%cl`.
fn match_class(c: u8, class: u8) -> bool {
    let result = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !result
    } else {
        result
    }
}

/// A successful match: where it starts and ends, and its captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Start offset of the whole match.
    pub start: usize,
    /// End offset (exclusive) of the whole match.
    pub end: usize,
    /// The captures, or the whole match when the pattern has none.
    pub captures: Vec<Capture>,
    /// Whether the pattern had captures of its own (`find` returns only these).
    pub has_captures: bool,
}

/// Whether `pattern` has no magic characters, so `find` may search for it as plain text.
pub fn is_plain(pattern: &[u8]) -> bool {
    !pattern.iter().any(|c| SPECIALS.contains(c))
}

/// Finds the first match of `pattern` in `subject` at or after `init` (0-based). A
/// pattern starting with `^` matches only at `init`.
pub fn find(
    subject: &[u8],
    pattern: &[u8],
    init: usize,
    budget: &mut impl Budget,
) -> Result<Option<Found>, PatternError> {
    let (anchored, pattern) = match pattern.strip_prefix(b"^") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut from = init;
    loop {
        if let Some(found) = match_at(subject, pattern, from, budget)? {
            return Ok(Some(found));
        }
        from += 1;
        if anchored || from > subject.len() {
            return Ok(None);
        }
    }
}

/// Matches `pattern` (no anchor handling) at exactly `at`.
pub fn match_at(
    subject: &[u8],
    pattern: &[u8],
    at: usize,
    budget: &mut impl Budget,
) -> Result<Option<Found>, PatternError> {
    let mut matcher = Matcher {
        src: subject,
        pat: pattern,
        depth: 0,
        steps: 0,
        budget,
        captures: Vec::new(),
    };
    let Some(end) = matcher.do_match(at, 0)? else {
        return Ok(None);
    };
    Ok(Some(Found {
        start: at,
        end,
        has_captures: !matcher.captures.is_empty(),
        captures: matcher.finish(at, end)?,
    }))
}

/// The plain-text search of `string.find` with `plain` or a pattern without magic.
pub fn find_plain(subject: &[u8], needle: &[u8], init: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(init);
    }
    subject
        .get(init..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + init)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unlimited() -> impl Budget {
        || Ok(())
    }

    fn first(subject: &str, pattern: &str) -> Option<(usize, usize, Vec<String>)> {
        let found = find(subject.as_bytes(), pattern.as_bytes(), 0, &mut unlimited()).unwrap()?;
        let captures = found
            .captures
            .iter()
            .map(|c| match *c {
                Capture::Position(p) => format!("@{}", p + 1),
                Capture::Span(s, e) => subject[s..e].to_string(),
            })
            .collect();
        Some((found.start + 1, found.end, captures))
    }

    #[test]
    fn lua_5_1_semantics() {
        assert_eq!(
            first("hello world", "o w"),
            Some((5, 7, vec!["o w".into()]))
        );
        assert_eq!(first("hello", "l+"), Some((3, 4, vec!["ll".into()])));
        assert_eq!(first("hello", "^h(.-)o$"), Some((1, 5, vec!["ell".into()])));
        assert_eq!(
            first("key=value", "(%w+)=(%w+)"),
            Some((1, 9, vec!["key".into(), "value".into()]))
        );
        assert_eq!(
            first("abc", "()b()"),
            Some((2, 2, vec!["@2".into(), "@3".into()]))
        );
        assert_eq!(
            first("f(a(b)c)d", "%b()"),
            Some((2, 8, vec!["(a(b)c)".into()]))
        );
        assert_eq!(
            first("THE (quick) fox", "%f[%a]%a+"),
            Some((1, 3, vec!["THE".into()]))
        );
        assert_eq!(
            first("say \"hi\" now", "([\"'])(.-)%1"),
            Some((5, 8, vec!["\"".into(), "hi".into()]))
        );
        assert_eq!(first("a]b", "[]]"), Some((2, 2, vec!["]".into()])));
        assert_eq!(first("x-y", "[a%-z]"), Some((2, 2, vec!["-".into()])));
        assert_eq!(first("abc", "[^a-b]"), Some((3, 3, vec!["c".into()])));
        assert_eq!(first("aaa", "a-b"), None);
        assert_eq!(first("", "x*"), Some((1, 0, vec!["".into()])));
        assert_eq!(first("a.b", "%."), Some((2, 2, vec![".".into()])));
        assert_eq!(first("tab\there", "%s"), Some((4, 4, vec!["\t".into()])));
        assert_eq!(first("a\0b", "%z"), Some((2, 2, vec!["\0".into()])));
        assert_eq!(first("abc", "b?c"), Some((2, 3, vec!["bc".into()])));
        assert_eq!(first("end$", "d%$$"), Some((3, 4, vec!["d$".into()])));
    }

    #[test]
    fn malformed_patterns_are_errors_not_panics() {
        for bad in [
            "%", "[a", "[^", "(()", "%b", "%bx", "%f", "%1", "(a)%2", "a)",
        ] {
            let result = find(b"some subject (text)", bad.as_bytes(), 0, &mut unlimited());
            assert!(
                matches!(result, Err(PatternError::Malformed(_)) | Ok(_)),
                "{bad:?}: {result:?}"
            );
        }
        assert_eq!(
            find(b"x", b"%", 0, &mut unlimited()),
            Err(PatternError::Malformed("malformed pattern (ends with '%')"))
        );
        assert_eq!(
            find(b"x", b"(x", 0, &mut unlimited()),
            Err(PatternError::Malformed("unfinished capture"))
        );
    }

    #[test]
    fn deep_patterns_are_too_complex_instead_of_overflowing_the_stack() {
        let subject = "a".repeat(100_000);
        let pattern = "a?".repeat(100_000);
        assert_eq!(
            find(subject.as_bytes(), pattern.as_bytes(), 0, &mut unlimited()),
            Err(PatternError::Malformed("pattern too complex"))
        );
    }

    #[test]
    fn a_backtracking_pattern_stops_when_the_budget_says_so() {
        let subject = "a".repeat(2_000);
        let pattern = "(.-)".repeat(12) + "b";
        let mut checks = 0;
        let mut budget = || {
            checks += 1;
            if checks > 100 {
                Err("time is up".to_string())
            } else {
                Ok(())
            }
        };
        assert_eq!(
            find(subject.as_bytes(), pattern.as_bytes(), 0, &mut budget),
            Err(PatternError::Stopped("time is up".into()))
        );
    }

    #[test]
    fn plain_search() {
        assert_eq!(find_plain(b"a.b.c", b".c", 0), Some(3));
        assert_eq!(find_plain(b"abc", b"", 2), Some(2));
        assert_eq!(find_plain(b"abc", b"x", 0), None);
        assert_eq!(find_plain(b"abc", b"a", 5), None);
        assert!(is_plain(b"hello world"));
        assert!(!is_plain(b"a.b"));
    }
}
