//! Wildcard patterns: `*` matches any run of characters (including none), `?` exactly one.
//!
//! Matching never backtracks and never allocates. A pattern is split at its `*`s into
//! segments; the first segment is anchored at the start, the last at the end, and each middle
//! segment is taken at its leftmost occurrence, which is always a correct choice for this
//! pattern language. Segments of literal text are located with `memchr::memmem` (linear time),
//! so `*a*a*a*…b` against a long run of `a`s costs O(text + pattern). A segment that contains
//! `?` is tried at each occurrence of its leading literal, O(text × segment) in the worst case.

use std::borrow::Cow;

use memchr::memmem;

/// One element of a pattern built from a template, where literal `*` and `?` can occur.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text, matched byte for byte (`*` and `?` in it are literal).
    Text(Box<str>),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters.
    AnyRun,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// No wildcards: plain equality.
    Exact(Box<str>),
    /// Literal text followed by a single trailing `*`.
    Prefix(Box<str>),
    /// Only `*`s: matches everything.
    Everything,
    /// Pattern text in which every `*` and `?` is a wildcard.
    Wild(Box<str>),
    /// Wildcards mixed with literal `*` or `?` (from `${*}`, `${?}` or substituted values).
    Pieces(Vec<Piece>),
}

fn has_wildcards(text: &str) -> bool {
    memchr::memchr2(b'*', b'?', text.as_bytes()).is_some()
}

impl Glob {
    /// Compiles `pattern`, treating `*` and `?` as wildcards.
    pub(crate) fn new(pattern: &str) -> Self {
        if !has_wildcards(pattern) {
            return Self::Exact(pattern.into());
        }
        if pattern.bytes().all(|b| b == b'*') {
            return Self::Everything;
        }
        if let Some(prefix) = pattern.strip_suffix('*')
            && !has_wildcards(prefix)
        {
            return Self::Prefix(prefix.into());
        }
        Self::Wild(pattern.into())
    }

    /// A pattern that matches only `text` itself.
    pub(crate) fn literal(text: &str) -> Self {
        Self::Exact(text.into())
    }

    /// Builds a pattern from pieces, merging adjacent text and collapsing runs of `*`.
    pub(crate) fn from_pieces(raw: Vec<Piece>) -> Self {
        let pieces = normalize(raw);
        let literal_wildcards = pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if has_wildcards(t)));
        if literal_wildcards {
            return Self::Pieces(pieces);
        }
        Self::new(&render(&pieces))
    }

    /// True when the pattern matches every string.
    pub(crate) fn matches_everything(&self) -> bool {
        *self == Self::Everything
    }

    /// Does the whole of `text` match?
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Self::Exact(t) => **t == *text,
            Self::Prefix(p) => text.starts_with(&**p),
            Self::Everything => true,
            Self::Wild(p) => wild_match(p, text),
            Self::Pieces(p) => pieces_match(p, text),
        }
    }

    /// The same pattern with its literal text lower-cased (for case-insensitive matching of
    /// lower-cased input).
    pub(crate) fn to_lowercase(&self) -> Self {
        let lower = |t: &str| -> Box<str> { lowercase(t).into() };
        match self {
            Self::Exact(t) => Self::Exact(lower(t)),
            Self::Prefix(t) => Self::Prefix(lower(t)),
            Self::Everything => Self::Everything,
            Self::Wild(t) => Self::Wild(lower(t)),
            Self::Pieces(pieces) => Self::Pieces(
                pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => Piece::Text(lower(t)),
                        other => other.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

fn normalize(raw: Vec<Piece>) -> Vec<Piece> {
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
    pieces
}

/// Pieces without literal wildcard characters, written back as pattern text.
fn render(pieces: &[Piece]) -> String {
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => text.push_str(t),
            Piece::AnyChar => text.push('?'),
            Piece::AnyRun => text.push('*'),
        }
    }
    text
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

/// A run of pattern between two `*`s: something that can be matched at a position, measured
/// in characters, and searched for.
trait Segment: Copy {
    /// Matches at byte offset `start`; returns where the match ends.
    fn match_at(self, text: &str, start: usize) -> Option<usize>;
    /// How many characters of text any match spans.
    fn char_len(self) -> usize;
    /// The end of the leftmost match starting at or after `from`.
    fn find(self, text: &str, from: usize) -> Option<usize>;
}

/// A segment of pattern text: `?` is any one character, everything else literal.
impl Segment for &str {
    fn match_at(self, text: &str, start: usize) -> Option<usize> {
        let rest = text.get(start..)?;
        if !self.contains('?') {
            return rest.starts_with(self).then_some(start + self.len());
        }
        let mut chars = rest.char_indices();
        for p in self.chars() {
            let (_, c) = chars.next()?;
            if p != '?' && p != c {
                return None;
            }
        }
        Some(chars.next().map_or(text.len(), |(i, _)| start + i))
    }

    fn char_len(self) -> usize {
        self.chars().count()
    }

    fn find(self, text: &str, from: usize) -> Option<usize> {
        let lead = self.split('?').next().unwrap_or_default();
        find_with_lead(self, lead, text, from)
    }
}

impl Segment for &[Piece] {
    fn match_at(self, text: &str, start: usize) -> Option<usize> {
        let mut pos = start;
        for piece in self {
            let rest = text.get(pos..)?;
            match piece {
                Piece::Text(t) if rest.starts_with(&**t) => pos += t.len(),
                Piece::Text(_) | Piece::AnyRun => return None,
                Piece::AnyChar => pos += rest.chars().next()?.len_utf8(),
            }
        }
        Some(pos)
    }

    fn char_len(self) -> usize {
        self.iter()
            .map(|p| match p {
                Piece::Text(t) => t.chars().count(),
                Piece::AnyChar => 1,
                Piece::AnyRun => 0,
            })
            .sum()
    }

    fn find(self, text: &str, from: usize) -> Option<usize> {
        let lead = match self.first() {
            Some(Piece::Text(t)) => &**t,
            _ => "",
        };
        find_with_lead(self, lead, text, from)
    }
}

/// Finds `segment`, whose matches all start with the literal `lead`, at or after `from`.
fn find_with_lead<S: Segment>(segment: S, lead: &str, text: &str, from: usize) -> Option<usize> {
    if lead.is_empty() {
        return text
            .get(from..)?
            .char_indices()
            .map(|(i, _)| from + i)
            .chain(std::iter::once(text.len()))
            .find_map(|start| segment.match_at(text, start));
    }
    let finder = memmem::Finder::new(lead.as_bytes());
    let mut at = from;
    loop {
        let found = at + finder.find(text.as_bytes().get(at..)?)?;
        if let Some(end) = segment.match_at(text, found) {
            return Some(end);
        }
        // Step one character and look again (occurrences may overlap).
        at = found + text.get(found..)?.chars().next()?.len_utf8();
    }
}

/// Where a match of `segment` must start so that it ends exactly at the end of `text`.
fn tail_start<S: Segment>(segment: S, text: &str) -> Option<usize> {
    match segment.char_len() {
        0 => Some(text.len()),
        n => text.char_indices().rev().nth(n - 1).map(|(i, _)| i),
    }
}

/// The leftmost-greedy matcher over `first * middle… * last`.
fn match_segments<S: Segment>(
    first: S,
    middle: impl Iterator<Item = S>,
    last: S,
    text: &str,
) -> bool {
    let Some(mut pos) = first.match_at(text, 0) else {
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
        match segment.find(head, pos) {
            Some(end) => pos = end,
            None => return false,
        }
    }
    last.match_at(text, tail) == Some(text.len())
}

/// Matches `text` against pattern text in which `*` and `?` are wildcards.
fn wild_match(pattern: &str, text: &str) -> bool {
    let (Some(first_star), Some(last_star)) = (pattern.find('*'), pattern.rfind('*')) else {
        return pattern.match_at(text, 0) == Some(text.len());
    };
    let first = pattern.get(..first_star).unwrap_or_default();
    let last = pattern.get(last_star + 1..).unwrap_or_default();
    let middle = pattern.get(first_star + 1..last_star).unwrap_or_default();
    let middle = middle.split('*').filter(|s| !s.is_empty());
    match_segments(first, middle, last, text)
}

fn pieces_match(pieces: &[Piece], text: &str) -> bool {
    let is_run = |p: &Piece| *p == Piece::AnyRun;
    let (Some(first_run), Some(last_run)) = (
        pieces.iter().position(is_run),
        pieces.iter().rposition(is_run),
    ) else {
        return pieces.match_at(text, 0) == Some(text.len());
    };
    let first = pieces.get(..first_run).unwrap_or_default();
    let last = pieces.get(last_run + 1..).unwrap_or_default();
    let middle = pieces.get(first_run + 1..last_run).unwrap_or_default();
    let middle = middle.split(is_run).filter(|s| !s.is_empty());
    match_segments(first, middle, last, text)
}

/// Matches `text` against a wildcard `pattern` without compiling it first.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    wild_match(pattern, text)
}

/// An ARN pattern matched the way IAM does: each of the six colon-separated parts
/// (`arn:partition:service:region:account:resource`) is matched on its own, so a wildcard
/// never spans a `:` before the resource part. The resource part keeps its own colons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnGlob {
    /// The bare `*`.
    Everything,
    /// Pattern text in which every `*` and `?` is a wildcard.
    Wild(Box<str>),
    /// One compiled pattern per part (when literal `*` or `?` are involved).
    Parts(Vec<Glob>),
}

impl ArnGlob {
    pub(crate) fn new(pattern: &str) -> Self {
        if pattern == "*" {
            Self::Everything
        } else {
            Self::Wild(pattern.into())
        }
    }

    pub(crate) fn from_pieces(raw: Vec<Piece>) -> Self {
        let pieces = normalize(raw);
        if !pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if has_wildcards(t)))
        {
            return Self::new(&render(&pieces));
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
        Self::Parts(parts.into_iter().map(Glob::from_pieces).collect())
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        let mut values = value.splitn(6, ':');
        match self {
            Self::Everything => return true,
            Self::Wild(pattern) => {
                for part in pattern.splitn(6, ':') {
                    let Some(v) = values.next() else { return false };
                    let ok = if has_wildcards(part) {
                        wild_match(part, v)
                    } else {
                        part == v
                    };
                    if !ok {
                        return false;
                    }
                }
            }
            Self::Parts(parts) => {
                for part in parts {
                    match values.next() {
                        Some(v) if part.matches(v) => {}
                        _ => return false,
                    }
                }
            }
        }
        values.next().is_none()
    }
}

/// Lower-cases text, borrowing when nothing changes.
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

    /// The reference over pieces, where literal text may contain `*` and `?`.
    fn reference_pieces(pieces: &[Piece], text: &str) -> bool {
        #[derive(Clone, Copy, PartialEq)]
        enum T {
            Lit(char),
            One,
            Run,
        }
        let p: Vec<T> = pieces
            .iter()
            .flat_map(|piece| match piece {
                Piece::Text(t) => t.chars().map(T::Lit).collect::<Vec<_>>(),
                Piece::AnyChar => vec![T::One],
                Piece::AnyRun => vec![T::Run],
            })
            .collect();
        let t: Vec<char> = text.chars().collect();
        let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
        dp[0][0] = true;
        for i in 1..=p.len() {
            if p[i - 1] == T::Run {
                dp[i][0] = dp[i - 1][0];
            }
            for j in 1..=t.len() {
                dp[i][j] = match p[i - 1] {
                    T::Run => dp[i - 1][j] || dp[i][j - 1],
                    T::One => dp[i - 1][j - 1],
                    T::Lit(c) => dp[i - 1][j - 1] && c == t[j - 1],
                };
            }
        }
        dp[p.len()][t.len()]
    }

    fn arb_piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            "[ab*?]{1,3}".prop_map(|t| Piece::Text(t.into())),
            Just(Piece::AnyChar),
            Just(Piece::AnyRun),
        ]
    }

    proptest! {
        #[test]
        fn pieces_agree_with_reference(pieces in prop::collection::vec(arb_piece(), 0..8), text in "[ab*?é]{0,12}") {
            let glob = Glob::from_pieces(pieces.clone());
            prop_assert_eq!(glob.matches(&text), reference_pieces(&pieces, &text));
            let arn = ArnGlob::from_pieces(pieces.clone());
            // Without colons an ARN pattern is one part: the same answer.
            prop_assert_eq!(arn.matches(&text), reference_pieces(&pieces, &text) || matches!(arn, ArnGlob::Everything));
        }

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
