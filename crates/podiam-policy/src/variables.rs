//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team}`, any context key, the escapes
//! `${*}`, `${?}` and `${$}`, and defaults `${key, 'default'}` (a `''` inside the quotes is one
//! `'`). Variables are substituted once, and a substituted value is always literal text: a tag
//! value of `*` matches only `*`, it never widens a pattern.

use crate::context::Context;
use crate::pattern::{ArnGlob, Glob, Piece, lowercase, push_wildcard_text};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text from the policy; `*` and `?` in it are wildcards where the element allows them.
    Raw(Box<str>),
    /// `${*}`, `${?}`, `${$}`: a literal character.
    Escaped(char),
    Variable {
        /// The key, lower-cased (context keys are case-insensitive).
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// Text that may contain policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// Why a template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unresolved {
    /// The variable's key as written.
    pub(crate) key: Box<str>,
}

impl Template {
    /// Parses `text`; `${…}` is only special when `variables` is on (policy version
    /// 2012-10-17). A malformed `${` is kept as literal text.
    pub(crate) fn parse(text: &str, variables: bool) -> Self {
        if !variables || !text.contains("${") {
            return Self {
                parts: vec![Part::Raw(text.into())],
            };
        }
        let mut parts = Vec::new();
        let mut raw = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            raw.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 2..).unwrap_or_default();
            match parse_variable(after) {
                Some((part, consumed)) => {
                    if !raw.is_empty() {
                        parts.push(Part::Raw(std::mem::take(&mut raw).into()));
                    }
                    parts.push(part);
                    rest = after.get(consumed..).unwrap_or_default();
                }
                None => {
                    raw.push_str("${");
                    rest = after;
                }
            }
        }
        raw.push_str(rest);
        if !raw.is_empty() {
            parts.push(Part::Raw(raw.into()));
        }
        Self { parts }
    }

    /// True when the template contains at least one variable.
    pub(crate) fn has_variables(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Variable { .. }))
    }

    /// The text when the template is plain text (no variables, no escapes).
    fn as_raw(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Raw(text)] => Some(text),
            [] => Some(""),
            _ => None,
        }
    }

    /// True when filling in cannot depend on the request (no variables at all).
    fn is_static(&self) -> bool {
        !self.has_variables()
    }

    fn pieces(&self, context: &Context, wildcards: bool) -> Result<Vec<Piece>, Unresolved> {
        let mut pieces = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            match part {
                Part::Raw(text) if wildcards => push_wildcard_text(&mut pieces, text),
                Part::Raw(text) => pieces.push(Piece::Text(text.clone())),
                Part::Escaped(c) => pieces.push(Piece::Text(c.to_string().into())),
                Part::Variable { key, default } => {
                    let value = context
                        .single(key)
                        .map(Into::into)
                        .or_else(|| default.clone())
                        .ok_or_else(|| Unresolved { key: key.clone() })?;
                    pieces.push(Piece::Text(value));
                }
            }
        }
        Ok(pieces)
    }
}

/// Parses what follows `${`; returns the part and the bytes consumed (through `}`).
fn parse_variable(text: &str) -> Option<(Part, usize)> {
    for escape in ['*', '?', '$'] {
        let mut buf = [0u8; 4];
        let token = escape.encode_utf8(&mut buf);
        if text.starts_with(&*token) && text.get(1..)?.starts_with('}') {
            return Some((Part::Escaped(escape), 2));
        }
    }
    let end_of_key = text.find([',', '}'])?;
    let key = text.get(..end_of_key)?.trim();
    if key.is_empty() || key.contains("${") {
        return None;
    }
    let key: Box<str> = lowercase(key).into();
    if text.get(end_of_key..)?.starts_with('}') {
        return Some((Part::Variable { key, default: None }, end_of_key + 1));
    }
    // `, 'default'}`
    let after_comma = text.get(end_of_key + 1..)?;
    let quoted = after_comma.trim_start();
    let mut pos = end_of_key + 1 + (after_comma.len() - quoted.len());
    let mut chars = quoted.char_indices();
    if chars.next() != Some((0, '\'')) {
        return None;
    }
    pos += 1;
    let body = quoted.get(1..)?;
    let mut default = String::new();
    let mut iter = body.char_indices().peekable();
    loop {
        let (i, c) = iter.next()?;
        if c == '\'' {
            if iter.peek().map(|&(_, n)| n) == Some('\'') {
                iter.next();
                default.push('\'');
                continue;
            }
            pos += i + 1;
            break;
        }
        default.push(c);
    }
    let tail = text.get(pos..)?;
    let closing = tail.trim_start();
    if !closing.starts_with('}') {
        return None;
    }
    pos += tail.len() - closing.len() + 1;
    Some((
        Part::Variable {
            key,
            default: Some(default.into()),
        },
        pos,
    ))
}

/// A policy value compiled once and, when it has variables, filled in per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValuePattern {
    Static(Glob),
    Dynamic {
        template: Template,
        wildcards: bool,
        fold_case: bool,
    },
}

impl ValuePattern {
    /// `wildcards`: `*`/`?` in policy text are wildcards. `fold_case`: compare lower-cased.
    pub(crate) fn compile(text: &str, variables: bool, wildcards: bool, fold_case: bool) -> Self {
        let template = Template::parse(text, variables);
        if template.is_static() {
            let glob = match (template.as_raw(), wildcards) {
                (Some(raw), true) => Glob::new(raw),
                (Some(raw), false) => Glob::literal(raw),
                (None, _) => Glob::from_pieces(
                    template
                        .pieces(&Context::default(), wildcards)
                        .unwrap_or_default(),
                ),
            };
            return Self::Static(if fold_case { glob.to_lowercase() } else { glob });
        }
        Self::Dynamic {
            template,
            wildcards,
            fold_case,
        }
    }

    /// Matches `text` (already lower-cased when the pattern folds case).
    pub(crate) fn matches(&self, text: &str, context: &Context) -> Result<bool, Unresolved> {
        match self {
            Self::Static(glob) => Ok(glob.matches(text)),
            Self::Dynamic {
                template,
                wildcards,
                fold_case,
            } => {
                let glob = Glob::from_pieces(template.pieces(context, *wildcards)?);
                let glob = if *fold_case {
                    glob.to_lowercase()
                } else {
                    glob
                };
                Ok(glob.matches(text))
            }
        }
    }
}

/// An ARN pattern (Resource elements and `Arn*` operators), with variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    Static(ArnGlob),
    Dynamic(Template),
}

impl ArnPattern {
    pub(crate) fn compile(text: &str, variables: bool) -> Self {
        let template = Template::parse(text, variables);
        if template.is_static() {
            return Self::Static(match template.as_raw() {
                Some(raw) => ArnGlob::new(raw),
                None => ArnGlob::from_pieces(
                    template
                        .pieces(&Context::default(), true)
                        .unwrap_or_default(),
                ),
            });
        }
        Self::Dynamic(template)
    }

    pub(crate) fn matches(&self, value: &str, context: &Context) -> Result<bool, Unresolved> {
        match self {
            Self::Static(glob) => Ok(glob.matches(value)),
            Self::Dynamic(template) => {
                Ok(ArnGlob::from_pieces(template.pieces(context, true)?).matches(value))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextValue;
    use proptest::prelude::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::default();
        for (k, v) in pairs {
            c.insert(k, ContextValue::from(*v));
        }
        c
    }

    fn fill(text: &str, context: &Context) -> Result<bool, Unresolved> {
        ValuePattern::compile(text, true, true, false).matches("x", context)
    }

    #[test]
    fn substitutes_context_keys_case_insensitively() {
        let c = ctx(&[("aws:username", "alice")]);
        let p = ValuePattern::compile("home/${AWS:UserName}/*", true, true, false);
        assert_eq!(p.matches("home/alice/doc", &c), Ok(true));
        assert_eq!(p.matches("home/bob/doc", &c), Ok(false));
    }

    #[test]
    fn substituted_values_are_literal() {
        let c = ctx(&[("aws:PrincipalTag/team", "*")]);
        let p = ValuePattern::compile("${aws:PrincipalTag/team}", true, true, false);
        assert_eq!(p.matches("*", &c), Ok(true));
        assert_eq!(p.matches("anything", &c), Ok(false));
    }

    #[test]
    fn escapes() {
        let p = ValuePattern::compile("a${*}b${?}c${$}", true, true, false);
        assert!(matches!(p, ValuePattern::Static(_)));
        let c = Context::default();
        assert_eq!(p.matches("a*b?c$", &c), Ok(true));
        assert_eq!(p.matches("aXbYc$", &c), Ok(false));
    }

    #[test]
    fn defaults() {
        let empty = Context::default();
        let p = ValuePattern::compile(
            "${aws:PrincipalTag/team, 'company-wide'}",
            true,
            false,
            false,
        );
        assert_eq!(p.matches("company-wide", &empty), Ok(true));
        let c = ctx(&[("aws:principaltag/team", "blue")]);
        assert_eq!(p.matches("blue", &c), Ok(true));
        let quoted = ValuePattern::compile("${k, 'it''s'}", true, false, false);
        assert_eq!(quoted.matches("it's", &empty), Ok(true));
        let spaced = ValuePattern::compile("${ k ,   'd'  }x", true, false, false);
        assert_eq!(spaced.matches("dx", &empty), Ok(true));
    }

    #[test]
    fn unresolved_variables_are_reported() {
        assert_eq!(
            fill("${aws:username}", &Context::default()),
            Err(Unresolved {
                key: "aws:username".into()
            })
        );
    }

    #[test]
    fn multi_valued_keys_cannot_be_variables() {
        let mut c = Context::default();
        c.insert("aws:TagKeys", ContextValue::Multi(vec!["a".into()]));
        assert!(fill("${aws:TagKeys}", &c).is_err());
    }

    #[test]
    fn malformed_variables_stay_literal() {
        let c = Context::default();
        for text in ["${", "${}", "${k", "${k, 'x}", "${k, x}", "${k, 'x' y}"] {
            let p = ValuePattern::compile(text, true, false, false);
            assert_eq!(p.matches(text, &c), Ok(true), "{text}");
        }
    }

    #[test]
    fn version_2008_has_no_variables() {
        let p = ValuePattern::compile("${aws:username}", false, false, false);
        assert_eq!(p.matches("${aws:username}", &Context::default()), Ok(true));
    }

    #[test]
    fn arn_patterns_with_variables() {
        let c = ctx(&[("aws:username", "alice")]);
        let p = ArnPattern::compile("arn:aws:s3:::bucket/${aws:username}/*", true);
        assert_eq!(p.matches("arn:aws:s3:::bucket/alice/x", &c), Ok(true));
        assert_eq!(p.matches("arn:aws:s3:::bucket/bob/x", &c), Ok(false));
    }

    proptest! {
        /// `${$}`, `${*}` and `${?}` always stand for exactly their character.
        #[test]
        fn escapes_round_trip(text in "[a-z$*?{}]{0,16}") {
            let escaped: String = text
                .chars()
                .map(|c| match c {
                    '$' => "${$}".to_owned(),
                    '*' => "${*}".to_owned(),
                    '?' => "${?}".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            let p = ValuePattern::compile(&escaped, true, true, false);
            prop_assert_eq!(p.matches(&text, &Context::default()), Ok(true));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = Template::parse(&text, true);
            let _ = ValuePattern::compile(&text, true, true, true)
                .matches(&text, &Context::default());
        }
    }
}
