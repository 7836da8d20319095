//! The policy document: its elements, and the parser that builds them from JSON.
//!
//! Parsing checks structure only (JSON, element names and types, operator names) and reports
//! every problem it finds, each with IAM's message. What a given policy type allows or requires
//! (a principal, resources, …) is checked by [`crate::validate`].

use std::fmt;

use crate::PolicyError;
use crate::condition::{Condition, Operator};
use crate::error::{Problem, messages};
use crate::pattern::Glob;
use crate::principal::{PrincipalElement, PrincipalEntry, PrincipalType};
use crate::raw::Node;
use crate::variables::ArnPattern;

/// The largest document podiam parses at all, whatever the policy type (IAM's largest quota,
/// for S3 bucket policies, is 20 KB; this leaves room for whitespace).
pub const MAX_DOCUMENT_BYTES: usize = 128 * 1024;

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `2008-10-17`: no policy variables (`${…}` is literal text).
    V2008_10_17,
    /// `2012-10-17`: the current version.
    V2012_10_17,
}

impl Version {
    /// As written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2008_10_17 => "2008-10-17",
            Self::V2012_10_17 => "2012-10-17",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Denies, overriding any allow.
    Deny,
}

impl Effect {
    /// As written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "Allow",
            Self::Deny => "Deny",
        }
    }
}

/// `Action` or `NotAction`: action patterns, matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionElement {
    negated: bool,
    patterns: Vec<String>,
    compiled: Vec<Glob>,
}

impl ActionElement {
    fn new(negated: bool, patterns: Vec<String>) -> Self {
        let compiled = patterns
            .iter()
            .map(|p| Glob::new(&p.to_ascii_lowercase()))
            .collect();
        Self {
            negated,
            patterns,
            compiled,
        }
    }

    /// True for `NotAction`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The first pattern that matches a lower-cased action.
    pub(crate) fn first_match(&self, action_lower: &str) -> Option<&str> {
        self.compiled
            .iter()
            .zip(&self.patterns)
            .find(|(glob, _)| glob.matches(action_lower))
            .map(|(_, p)| p.as_str())
    }
}

/// Whether `${` comes before the fifth colon of `pattern`.
fn variable_before_fifth_colon(pattern: &str) -> bool {
    pattern.find("${").is_some_and(|at| {
        pattern
            .get(..at)
            .is_some_and(|head| head.matches(':').count() < 5)
    })
}

/// `Resource` or `NotResource`: ARN patterns, matched part by part, case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceElement {
    negated: bool,
    patterns: Vec<String>,
    compiled: Vec<ArnPattern>,
}

impl ResourceElement {
    fn new(negated: bool, patterns: Vec<String>, variables: bool) -> Self {
        // "IAM policy elements: Variables": a variable cannot replace the parts of an ARN
        // before the fifth colon (partition, service, region, account); there it is text.
        let compiled = patterns
            .iter()
            .map(|p| ArnPattern::compile(p, variables && !variable_before_fifth_colon(p)))
            .collect();
        Self {
            negated,
            patterns,
            compiled,
        }
    }

    /// True for `NotResource`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub(crate) fn compiled(&self) -> impl Iterator<Item = (&ArnPattern, &str)> {
        self.compiled
            .iter()
            .zip(self.patterns.iter().map(String::as_str))
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalElement>,
    pub(crate) action: Option<ActionElement>,
    pub(crate) resource: Option<ResourceElement>,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    /// The `Sid`.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The `Effect`.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// `Principal` or `NotPrincipal`.
    pub fn principal(&self) -> Option<&PrincipalElement> {
        self.principal.as_ref()
    }

    /// `Action` or `NotAction`.
    pub fn action(&self) -> Option<&ActionElement> {
        self.action.as_ref()
    }

    /// `Resource` or `NotResource`.
    pub fn resource(&self) -> Option<&ResourceElement> {
        self.resource.as_ref()
    }

    /// The conditions, one per operator and key.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// A parsed policy document. It keeps the text it was parsed from, byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    text: Box<str>,
    version: Option<Version>,
    id: Option<String>,
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses a policy document; every structural problem is reported.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(PolicyError::TooLarge {
                size: text.len(),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let node: Node = serde_json::from_str(text).map_err(|e| {
            PolicyError::Malformed(vec![
                Problem::new("", messages::SYNTAX).detail(e.to_string()),
            ])
        })?;
        let mut parser = Parser::default();
        let parsed = parser.policy(node);
        match parsed {
            Some((version, id, statements)) if parser.problems.is_empty() => Ok(Self {
                text: text.into(),
                version,
                id,
                statements,
            }),
            _ => Err(PolicyError::Malformed(parser.problems)),
        }
    }

    /// A policy with no statements: it allows and denies nothing. Stands in for a policy that
    /// should restrict but cannot be read (a deleted boundary, a corrupt session policy), so
    /// that nothing is allowed through it.
    pub fn allow_nothing() -> Self {
        Self {
            text: "".into(),
            version: Some(Version::V2012_10_17),
            id: None,
            statements: Vec::new(),
        }
    }

    /// The document exactly as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `Version` element, if present.
    pub fn declared_version(&self) -> Option<Version> {
        self.version
    }

    /// The version that governs evaluation (`2008-10-17` when absent).
    pub fn version(&self) -> Version {
        self.version.unwrap_or(Version::V2008_10_17)
    }

    /// The `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

impl std::str::FromStr for Policy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

type Parsed = (Option<Version>, Option<String>, Vec<Statement>);

/// Where the parser is in the document; rendered only when a problem is reported.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key(&'a self, key: &'a str) -> Self {
        Self::Key(self, key)
    }

    fn index(&'a self, index: usize) -> Self {
        Self::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => Ok(()),
            Self::Key(Self::Root, key) => f.write_str(key),
            Self::Key(parent, key) => write!(f, "{parent}.{key}"),
            Self::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

#[derive(Default)]
struct Parser {
    problems: Vec<Problem>,
    variables: bool,
}

impl Parser {
    fn syntax(&mut self, path: &Path<'_>, detail: impl Into<String>) {
        self.problems
            .push(Problem::new(path.to_string(), messages::SYNTAX).detail(detail));
    }

    fn policy(&mut self, node: Node<'_>) -> Option<Parsed> {
        let root = Path::Root;
        let Node::Object(members) = node else {
            self.syntax(
                &root,
                format!("a policy must be a JSON object, not {}", node.kind()),
            );
            return None;
        };
        let mut version = None;
        if let Some((_, v)) = members.iter().find(|(k, _)| k == "Version") {
            version = match v {
                Node::String(s) if s == "2012-10-17" => Some(Version::V2012_10_17),
                Node::String(s) if s == "2008-10-17" => Some(Version::V2008_10_17),
                other => {
                    let shown = match other {
                        Node::String(s) => format!("{s:?}"),
                        other => other.kind().to_owned(),
                    };
                    self.syntax(
                        &root.key("Version"),
                        format!("Version must be \"2012-10-17\" or \"2008-10-17\", not {shown}"),
                    );
                    None
                }
            };
        }
        self.variables = version == Some(Version::V2012_10_17);
        let mut id = None;
        let mut statements = None;
        for (key, value) in members {
            let here = root.key(&key);
            match key.as_ref() {
                "Version" => {}
                "Id" => id = self.string(&here, value),
                "Statement" => statements = self.statements(&here, value),
                other => self.syntax(&here, format!("unknown top-level element {other:?}")),
            }
        }
        let Some(statements) = statements else {
            if !self
                .problems
                .iter()
                .any(|p| p.path.starts_with("Statement"))
            {
                self.syntax(&root, "missing Statement");
            }
            return None;
        };
        Some((version, id, statements))
    }

    fn string(&mut self, path: &Path<'_>, node: Node<'_>) -> Option<String> {
        match node {
            Node::String(s) => Some(s.into_owned()),
            other => {
                self.syntax(path, format!("expected a string, found {}", other.kind()));
                None
            }
        }
    }

    fn strings(&mut self, path: &Path<'_>, node: Node<'_>) -> Option<Vec<String>> {
        match node {
            Node::String(s) => Some(vec![s.into_owned()]),
            Node::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    out.push(self.string(&path.index(i), item)?);
                }
                Some(out)
            }
            other => {
                self.syntax(
                    path,
                    format!(
                        "expected a string or an array of strings, found {}",
                        other.kind()
                    ),
                );
                None
            }
        }
    }

    fn statements(&mut self, path: &Path<'_>, node: Node<'_>) -> Option<Vec<Statement>> {
        match node {
            Node::Object(_) => self.statement(path, node).map(|s| vec![s]),
            Node::Array(items) if items.is_empty() => {
                self.syntax(path, "Statement must not be empty");
                None
            }
            Node::Array(items) => {
                let count = items.len();
                let parsed: Vec<Statement> = items
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.statement(&path.index(i), item))
                    .collect();
                (parsed.len() == count).then_some(parsed)
            }
            other => {
                self.syntax(
                    path,
                    format!(
                        "expected an object or an array of objects, found {}",
                        other.kind()
                    ),
                );
                None
            }
        }
    }

    fn statement(&mut self, path: &Path<'_>, node: Node<'_>) -> Option<Statement> {
        let Node::Object(members) = node else {
            self.syntax(
                path,
                format!("a statement must be an object, not {}", node.kind()),
            );
            return None;
        };
        let before = self.problems.len();
        let mut sid = None;
        let mut effect = None;
        let mut principal = None;
        let mut action = None;
        let mut resource = None;
        let mut conditions = Vec::new();
        let both = |parser: &mut Self, name: &str, present: bool| {
            if present {
                parser.syntax(
                    path,
                    format!("a statement cannot have both {name} and Not{name}"),
                );
            }
        };
        for (key, value) in members {
            let here = path.key(&key);
            let negated = key.starts_with("Not");
            match key.as_ref() {
                "Sid" => sid = self.string(&here, value),
                "Effect" => effect = self.effect(&here, value),
                "Principal" | "NotPrincipal" => {
                    both(self, "Principal", principal.is_some());
                    principal = self.principal(&here, negated, value);
                }
                "Action" | "NotAction" => {
                    both(self, "Action", action.is_some());
                    action = self
                        .strings(&here, value)
                        .map(|p| ActionElement::new(negated, p));
                }
                "Resource" | "NotResource" => {
                    both(self, "Resource", resource.is_some());
                    let variables = self.variables;
                    resource = self
                        .strings(&here, value)
                        .map(|p| ResourceElement::new(negated, p, variables));
                }
                "Condition" => conditions = self.conditions(&here, value),
                other => self.syntax(&here, format!("unknown statement element {other:?}")),
            }
        }
        if effect.is_none() && self.problems.len() == before {
            self.syntax(path, "missing Effect");
        }
        if self.problems.len() != before {
            return None;
        }
        Some(Statement {
            sid,
            effect: effect?,
            principal,
            action,
            resource,
            conditions,
        })
    }

    fn effect(&mut self, path: &Path<'_>, node: Node<'_>) -> Option<Effect> {
        let text = self.string(path, node)?;
        match text.as_str() {
            "Allow" => Some(Effect::Allow),
            "Deny" => Some(Effect::Deny),
            other if other.eq_ignore_ascii_case("allow") || other.eq_ignore_ascii_case("deny") => {
                self.problems
                    .push(
                        Problem::new(path.to_string(), messages::LEGACY).detail(format!(
                            "Effect must be written \"Allow\" or \"Deny\", not {other:?}"
                        )),
                    );
                None
            }
            other => {
                self.syntax(
                    path,
                    format!("Effect must be \"Allow\" or \"Deny\", not {other:?}"),
                );
                None
            }
        }
    }

    fn principal(
        &mut self,
        path: &Path<'_>,
        negated: bool,
        node: Node<'_>,
    ) -> Option<PrincipalElement> {
        let invalid = |shown: &str| {
            Problem::new(
                path.to_string(),
                format!("Invalid principal in policy: {shown}"),
            )
        };
        match node {
            Node::String(s) if s == "*" => Some(PrincipalElement::everyone(negated)),
            Node::String(s) => {
                self.problems.push(
                    invalid(&format!("{s:?}"))
                        .detail("a principal is \"*\" or an object such as {\"AWS\": \"arn:…\"}"),
                );
                None
            }
            Node::Object(members) if members.is_empty() => {
                self.problems
                    .push(invalid("{}").detail("the principal object is empty"));
                None
            }
            Node::Object(members) => {
                let mut entries = Vec::with_capacity(members.len());
                for (key, value) in members {
                    let here = path.key(&key);
                    let Some(kind) = PrincipalType::from_name(&key) else {
                        self.problems.push(invalid(&format!("{key:?}")).detail(
                            "principal types are \"AWS\", \"Federated\", \"Service\" and \"CanonicalUser\"",
                        ));
                        continue;
                    };
                    let values = self.strings(&here, value)?;
                    if values.is_empty() {
                        self.problems.push(
                            Problem::new(
                                here.to_string(),
                                format!("Invalid principal in policy: \"{key}\":[]"),
                            )
                            .detail("the list of principals is empty"),
                        );
                        continue;
                    }
                    entries.push(PrincipalEntry::new(kind, values));
                }
                Some(PrincipalElement::listed(negated, entries))
            }
            other => {
                self.syntax(
                    path,
                    format!("expected \"*\" or an object, found {}", other.kind()),
                );
                None
            }
        }
    }

    fn conditions(&mut self, path: &Path<'_>, node: Node<'_>) -> Vec<Condition> {
        let Node::Object(operators) = node else {
            self.syntax(
                path,
                format!("Condition must be an object, found {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, keys) in operators {
            let here = path.key(&name);
            let Ok(operator) = name.parse::<Operator>() else {
                self.syntax(&here, format!("unknown condition operator {name:?}"));
                continue;
            };
            let Node::Object(keys) = keys else {
                self.syntax(
                    &here,
                    format!(
                        "expected an object of condition keys, found {}",
                        keys.kind()
                    ),
                );
                continue;
            };
            for (key, values) in keys {
                if let Some(values) = self.condition_values(&here.key(&key), values) {
                    out.push(Condition::new(operator, &key, values, self.variables));
                }
            }
        }
        out
    }

    fn condition_values(&mut self, path: &Path<'_>, node: Node<'_>) -> Option<Vec<String>> {
        fn scalar(node: Node<'_>) -> Result<String, &'static str> {
            match node {
                Node::String(s) => Ok(s.into_owned()),
                Node::Number(s) => Ok(s),
                Node::Bool(b) => Ok(b.to_string()),
                other => Err(other.kind()),
            }
        }
        let wrong =
            |kind: &str| format!("condition values are strings, numbers or booleans, not {kind}");
        match node {
            Node::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match scalar(item) {
                        Ok(v) => out.push(v),
                        Err(kind) => {
                            self.syntax(&path.index(i), wrong(kind));
                            return None;
                        }
                    }
                }
                Some(out)
            }
            other => match scalar(other) {
                Ok(v) => Some(vec![v]),
                Err(kind) => {
                    self.syntax(path, wrong(kind));
                    None
                }
            },
        }
    }
}
