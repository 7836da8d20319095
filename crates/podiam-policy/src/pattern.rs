//! Wildcard patterns: `*` matches any run of characters (including none), `?` exactly one.
//!
//! Matching never backtracks. A pattern is split at its `*`s into segments; the first segment
//! is anchored at the start, the last at the end, and each middle segment is taken at its
//! leftmost occurrence, which is always a correct choice for this pattern language. Segments
//! of literal text are located with `memchr::memmem` (linear time), so `*a*a*a*…b` against a
//! long run of `a`s costs O(text + pattern). A segment that contains `?` is tried at each
//! occurrence of its leading literal, O(text × segment) in the worst case.

use std::borrow::Cow;

use memchr::memmem;

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text, matched byte for byte.
    Text(Box<str>),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters.
    AnyRun,
}

/// What a pattern reduces to, so that the common shapes skip the general matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// No wildcards: plain equality.
    Exact(Box<str>),
    /// Literal text followed by a single trailing `*`.
    Prefix(Box<str>),
    /// Only `*`s: matches everything.
    Everything,
    General,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pieces: Vec<Piece>,
    shape: Shape,
}

impl Glob {
    /// Compiles `pattern`, treating `*` and `?` as wildcards.
    pub(crate) fn new(pattern: &str) -> Self {
        let mut pieces = Vec::new();
        push_wildcard_text(&mut pieces, pattern);
        Self::from_pieces(pieces)
    }

    /// A pattern that matches only `text` itself.
    #[cfg(test)]
    pub(crate) fn literal(text: &str) -> Self {
        Self::from_pieces(vec![Piece::Text(text.into())])
    }

    /// Builds a pattern from pieces, merging adjacent text and collapsing runs of `*`.
    pub(crate) fn from_pieces(raw: Vec<Piece>) -> Self {
        let mut pieces: Vec<Piece> = Vec::with_capacity(raw.len());
        for piece in raw {
            match (pieces.last_mut(), piece) {
                (_, Piece::Text(t)) if t.is_empty() => {}
                (Some(Piece::Text(prev)), Piece::Text(t)) => {
                    let mut joined = String::with_capacity(prev.len() + t.len());
                    joined.push_str(prev);
                    joined.push_str(&t);
                    *prev = joined.into();
                }
                (Some(Piece::AnyRun), Piece::AnyRun) => {}
                (_, piece) => pieces.push(piece),
            }
        }
        let shape = match pieces.as_slice() {
            [] => Shape::Exact("".into()),
            [Piece::Text(t)] => Shape::Exact(t.clone()),
            [Piece::AnyRun] => Shape::Everything,
            [Piece::Text(t), Piece::AnyRun] => Shape::Prefix(t.clone()),
            _ => Shape::General,
        };
        Self { pieces, shape }
    }

    /// True when the pattern matches every string.
    pub(crate) fn matches_everything(&self) -> bool {
        self.shape == Shape::Everything
    }

    /// Does the whole of `text` match?
    pub(crate) fn matches(&self, text: &str) -> bool {
        match &self.shape {
            Shape::Exact(t) => **t == *text,
            Shape::Prefix(p) => text.starts_with(&**p),
            Shape::Everything => true,
            Shape::General => matches_general(&self.pieces, text),
        }
    }

    /// The same pattern with its literal text lower-cased (for case-insensitive matching of
    /// lower-cased input).
    pub(crate) fn to_lowercase(&self) -> Self {
        Self::from_pieces(
            self.pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => Piece::Text(t.to_lowercase().into()),
                    other => other.clone(),
                })
                .collect(),
        )
    }
}

/// Appends `text` to `pieces`, turning `*` and `?` into wildcards.
pub(crate) fn push_wildcard_text(pieces: &mut Vec<Piece>, text: &str) {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '*' || c == '?' {
            if start < i {
                pieces.push(Piece::Text(text.get(start..i).unwrap_or_default().into()));
            }
            pieces.push(if c == '*' {
                Piece::AnyRun
            } else {
                Piece::AnyChar
            });
            start = i + 1;
        }
    }
    if start < text.len() {
        pieces.push(Piece::Text(text.get(start..).unwrap_or_default().into()));
    }
}

fn matches_general(pieces: &[Piece], text: &str) -> bool {
    let mut segments = pieces.split(|p| *p == Piece::AnyRun);
    let Some(first) = segments.next() else {
        return text.is_empty();
    };
    let rest: Vec<&[Piece]> = segments.collect();
    let Some((last, middle)) = rest.split_last() else {
        // No `*` at all.
        return match_at(first, text, 0) == Some(text.len());
    };
    let Some(mut pos) = match_at(first, text, 0) else {
        return false;
    };
    let Some(tail) = tail_start(last, text) else {
        return false;
    };
    if tail < pos {
        return false;
    }
    let Some(head) = text.get(..tail) else {
        return false;
    };
    for segment in middle {
        match find(segment, head, pos) {
            Some(end) => pos = end,
            None => return false,
        }
    }
    match_at(last, text, tail) == Some(text.len())
}

/// Matches `segment` (no `*`) at byte offset `start`; returns where the match ends.
fn match_at(segment: &[Piece], text: &str, start: usize) -> Option<usize> {
    let mut pos = start;
    for piece in segment {
        let rest = text.get(pos..)?;
        match piece {
            Piece::Text(t) if rest.starts_with(&**t) => pos += t.len(),
            Piece::Text(_) | Piece::AnyRun => return None,
            Piece::AnyChar => pos += rest.chars().next()?.len_utf8(),
        }
    }
    Some(pos)
}

/// Where a match of `segment` must start so that it ends exactly at the end of `text`.
fn tail_start(segment: &[Piece], text: &str) -> Option<usize> {
    let chars: usize = segment
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.chars().count(),
            Piece::AnyChar => 1,
            Piece::AnyRun => 0,
        })
        .sum();
    if chars == 0 {
        return Some(text.len());
    }
    text.char_indices().rev().nth(chars - 1).map(|(i, _)| i)
}

/// The end of the leftmost match of `segment` in `text` starting at or after `from`.
fn find(segment: &[Piece], text: &str, from: usize) -> Option<usize> {
    match segment.first() {
        None => Some(from),
        Some(Piece::Text(lead)) => {
            let finder = memmem::Finder::new(lead.as_bytes());
            let mut at = from;
            loop {
                let found = at + finder.find(text.as_bytes().get(at..)?)?;
                if let Some(end) = match_at(segment, text, found) {
                    return Some(end);
                }
                // Step one character and look again (occurrences may overlap).
                at = found + text.get(found..)?.chars().next()?.len_utf8();
            }
        }
        Some(_) => text
            .get(from..)?
            .char_indices()
            .map(|(i, _)| from + i)
            .find_map(|start| match_at(segment, text, start)),
    }
}

/// Matches `text` against a wildcard `pattern` without compiling it first.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    Glob::new(pattern).matches(text)
}

/// An ARN pattern matched the way IAM does: each of the six colon-separated parts
/// (`arn:partition:service:region:account:resource`) is matched on its own, so a wildcard
/// never spans a `:` before the resource part. The resource part keeps its own colons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArnGlob {
    /// `None` for the bare `*`, which matches anything.
    parts: Option<Vec<Glob>>,
}

impl ArnGlob {
    #[cfg(test)]
    pub(crate) fn new(pattern: &str) -> Self {
        let mut pieces = Vec::new();
        push_wildcard_text(&mut pieces, pattern);
        Self::from_pieces(pieces)
    }

    pub(crate) fn from_pieces(pieces: Vec<Piece>) -> Self {
        if matches!(pieces.as_slice(), [Piece::AnyRun]) {
            return Self { parts: None };
        }
        let mut parts: Vec<Vec<Piece>> = vec![Vec::new()];
        for piece in pieces {
            match piece {
                Piece::Text(text) => {
                    let mut rest: &str = &text;
                    while parts.len() < 6 {
                        let Some(colon) = rest.find(':') else { break };
                        let (before, after) = rest.split_at(colon);
                        if let Some(current) = parts.last_mut() {
                            current.push(Piece::Text(before.into()));
                        }
                        parts.push(Vec::new());
                        rest = after.get(1..).unwrap_or_default();
                    }
                    if let Some(current) = parts.last_mut() {
                        current.push(Piece::Text(rest.into()));
                    }
                }
                other => {
                    if let Some(current) = parts.last_mut() {
                        current.push(other);
                    }
                }
            }
        }
        Self {
            parts: Some(parts.into_iter().map(Glob::from_pieces).collect()),
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        let Some(parts) = &self.parts else {
            return true;
        };
        let mut values = value.splitn(6, ':');
        for part in parts {
            match values.next() {
                Some(v) if part.matches(v) => {}
                _ => return false,
            }
        }
        values.next().is_none()
    }
}

/// Lower-cases ASCII and non-ASCII text, borrowing when nothing changes.
pub(crate) fn lowercase(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_uppercase) {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook dynamic-programming matcher, used as the reference.
    fn reference(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
        dp[0][0] = true;
        for i in 1..=p.len() {
            if p[i - 1] == '*' {
                dp[i][0] = dp[i - 1][0];
            }
            for j in 1..=t.len() {
                dp[i][j] = match p[i - 1] {
                    '*' => dp[i - 1][j] || dp[i][j - 1],
                    '?' => dp[i - 1][j - 1],
                    c => dp[i - 1][j - 1] && c == t[j - 1],
                };
            }
        }
        dp[p.len()][t.len()]
    }

    #[test]
    fn basics() {
        assert!(wildcard_match("s3:Get*", "s3:GetObject"));
        assert!(!wildcard_match("s3:Get*", "s3:PutObject"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(wildcard_match("a?c", "aéc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*Object", "s3:GetObject"));
        assert!(wildcard_match("s3:*Obj*t", "s3:GetObject"));
        assert!(wildcard_match("a*b*c", "abc"));
        assert!(!wildcard_match("a*b*c", "acb"));
        assert!(wildcard_match("*ab", "aab"));
        assert!(wildcard_match("*aa?b*", "xaaaab"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }

    #[test]
    fn pathological_pattern_is_fast_and_correct() {
        let pattern = format!("{}b", "*a".repeat(500));
        let text = "a".repeat(20_000);
        assert!(!wildcard_match(&pattern, &text));
        assert!(wildcard_match(&pattern, &format!("{text}b")));
    }

    #[test]
    fn arn_parts_are_matched_separately() {
        let g = ArnGlob::new("arn:aws:iam::*:role/*");
        assert!(g.matches("arn:aws:iam::111122223333:role/r"));
        assert!(g.matches("arn:aws:iam::111122223333:role/path/r"));
        assert!(!g.matches("arn:aws:iam::111122223333:user/r"));
        // A wildcard in the account part cannot swallow the colon before the resource.
        let g = ArnGlob::new("arn:aws:s3:::*");
        assert!(g.matches("arn:aws:s3:::bucket/key"));
        assert!(!ArnGlob::new("arn:aws:*").matches("arn:aws:s3:::bucket"));
        assert!(ArnGlob::new("*").matches("anything"));
        assert!(
            ArnGlob::new("arn:aws:logs:*:*:log-group:/aws/*")
                .matches("arn:aws:logs:eu-west-1:111122223333:log-group:/aws/eks:stream")
        );
        assert!(
            !ArnGlob::new("arn:aws:iam::111122223333:role/r")
                .matches("arn:aws:iam::111122223333:role/R")
        );
        assert!(!ArnGlob::new("arn:aws:iam::111122223333:role/r").matches("not-an-arn"));
    }

    proptest! {
        #[test]
        fn agrees_with_reference(pattern in "[ab*?]{0,12}", text in "[abé]{0,14}") {
            prop_assert_eq!(wildcard_match(&pattern, &text), reference(&pattern, &text));
        }

        #[test]
        fn agrees_with_reference_on_wider_alphabet(pattern in "[a-c*?:/]{0,20}", text in "[a-c:/]{0,30}") {
            prop_assert_eq!(wildcard_match(&pattern, &text), reference(&pattern, &text));
        }

        #[test]
        fn literal_never_treats_text_as_wildcards(text in "[a*?]{0,10}", other in "[a*?]{0,10}") {
            prop_assert_eq!(Glob::literal(&text).matches(&other), text == other);
        }
    }
}
