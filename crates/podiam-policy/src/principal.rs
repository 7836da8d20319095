//! The `Principal` and `NotPrincipal` elements and how they match a requester.
//!
//! A requester has several identities at once: a role session is the session, its role and
//! its account. `Principal` matches when any identity is listed, and the most specific one
//! decides what kind of grant it is (this matters for same-account evaluation, where a grant
//! to the account only delegates to identity policies). `NotPrincipal` excludes a requester
//! only when every one of its identities is listed, which is why AWS asks for the session, the
//! role and the account together.

use std::fmt;

use crate::context::{AwsPrincipalKind, Principal};
use crate::pattern::Glob;

/// The principal types a policy may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// `"AWS"`: accounts, users, roles, sessions.
    Aws,
    /// `"Federated"`: OIDC/SAML providers and web identity issuers.
    Federated,
    /// `"Service"`: AWS service principals.
    Service,
    /// `"CanonicalUser"`: S3 canonical ids.
    CanonicalUser,
}

impl PrincipalType {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "AWS" => Some(Self::Aws),
            "Federated" => Some(Self::Federated),
            "Service" => Some(Self::Service),
            "CanonicalUser" => Some(Self::CanonicalUser),
            _ => None,
        }
    }

    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aws => "AWS",
            Self::Federated => "Federated",
            Self::Service => "Service",
            Self::CanonicalUser => "CanonicalUser",
        }
    }
}

impl fmt::Display for PrincipalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How specifically a statement names the requester, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Grant {
    /// The requester's account is named: a delegation to the account's own policies.
    Account,
    /// `*`, or the requester is not among a `NotPrincipal`'s names.
    Wildcard,
    /// The role is named and the requester is that role or one of its sessions.
    RoleArn,
    /// The exact requester is named: a user, a role session, a federated or service principal.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AwsPattern {
    Any,
    Account(Box<str>),
    Role { account: Box<str>, name: Box<str> },
    Arn(Glob),
}

impl AwsPattern {
    fn compile(value: &str) -> Self {
        if value == "*" {
            return Self::Any;
        }
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            return Self::Account(value.into());
        }
        if !value.contains(['*', '?']) {
            let parts: Vec<&str> = value.splitn(6, ':').collect();
            if let ["arn", _, "iam", "", account, resource] = parts.as_slice() {
                if *resource == "root" {
                    return Self::Account((*account).into());
                }
                if let Some(path_and_name) = resource.strip_prefix("role/") {
                    let name = path_and_name.rsplit('/').next().unwrap_or_default();
                    return Self::Role {
                        account: (*account).into(),
                        name: name.into(),
                    };
                }
            }
        }
        Self::Arn(Glob::new(value))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Patterns {
    Aws(Vec<AwsPattern>),
    Other(Vec<Glob>),
}

/// One `"Type": values` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalEntry {
    kind: PrincipalType,
    values: Vec<String>,
    patterns: Patterns,
}

impl PrincipalEntry {
    pub(crate) fn new(kind: PrincipalType, values: Vec<String>) -> Self {
        let patterns = match kind {
            PrincipalType::Aws => {
                Patterns::Aws(values.iter().map(|v| AwsPattern::compile(v)).collect())
            }
            _ => Patterns::Other(values.iter().map(|v| Glob::new(v)).collect()),
        };
        Self {
            kind,
            values,
            patterns,
        }
    }

    /// The principal type.
    pub fn kind(&self) -> PrincipalType {
        self.kind
    }

    /// The values as written.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// A `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalElement {
    negated: bool,
    /// `"Principal": "*"`.
    everyone: bool,
    entries: Vec<PrincipalEntry>,
}

/// One identity of a requester.
enum Identity<'a> {
    Anonymous,
    /// A user, session or federated-user ARN.
    Arn(&'a str),
    Role {
        account: &'a str,
        name: &'a str,
        arn: String,
    },
    Account(&'a str),
    Other(PrincipalType, &'a str),
}

fn identities(principal: &Principal) -> Vec<Identity<'_>> {
    match principal {
        Principal::Anonymous => vec![Identity::Anonymous],
        Principal::Federated(p) => vec![Identity::Other(PrincipalType::Federated, p)],
        Principal::Service(p) => vec![Identity::Other(PrincipalType::Service, p)],
        Principal::CanonicalUser(p) => vec![Identity::Other(PrincipalType::CanonicalUser, p)],
        Principal::Aws(p) => {
            let account = p.account();
            let arn = p.arn();
            match p.kind() {
                AwsPrincipalKind::Root => vec![Identity::Account(account)],
                AwsPrincipalKind::Role { name } => vec![
                    Identity::Role {
                        account,
                        name,
                        arn: arn.to_string(),
                    },
                    Identity::Account(account),
                ],
                AwsPrincipalKind::AssumedRole { role_name, .. } => vec![
                    Identity::Arn(arn.as_str()),
                    Identity::Role {
                        account,
                        name: role_name,
                        arn: format!("arn:{}:iam::{account}:role/{role_name}", arn.partition()),
                    },
                    Identity::Account(account),
                ],
                AwsPrincipalKind::User | AwsPrincipalKind::FederatedUser => {
                    vec![Identity::Arn(arn.as_str()), Identity::Account(account)]
                }
            }
        }
    }
}

impl PrincipalElement {
    pub(crate) fn everyone(negated: bool) -> Self {
        Self {
            negated,
            everyone: true,
            entries: Vec::new(),
        }
    }

    pub(crate) fn listed(negated: bool, entries: Vec<PrincipalEntry>) -> Self {
        Self {
            negated,
            everyone: false,
            entries,
        }
    }

    /// True for `NotPrincipal`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// True for `"*"`.
    pub fn is_everyone(&self) -> bool {
        self.everyone
    }

    /// The typed members.
    pub fn entries(&self) -> &[PrincipalEntry] {
        &self.entries
    }

    /// How the element names one identity, if it does.
    fn names(&self, identity: &Identity<'_>) -> Option<Grant> {
        if self.everyone {
            return Some(Grant::Wildcard);
        }
        let mut best = None;
        for entry in &self.entries {
            let grant = match (&entry.patterns, identity) {
                (Patterns::Aws(patterns), _) => {
                    patterns.iter().filter_map(|p| aws_names(p, identity)).max()
                }
                (Patterns::Other(globs), Identity::Other(kind, value)) if *kind == entry.kind => {
                    globs.iter().find(|g| g.matches(value)).map(|g| {
                        if g.matches_everything() {
                            Grant::Wildcard
                        } else {
                            Grant::Direct
                        }
                    })
                }
                _ => None,
            };
            best = best.max(grant);
        }
        best
    }

    /// Whether the element covers `principal`, and how specifically.
    pub(crate) fn matches(&self, principal: &Principal) -> Option<Grant> {
        let ids = identities(principal);
        if self.negated {
            let all_listed = ids.iter().all(|id| self.names(id).is_some());
            (!all_listed).then_some(Grant::Wildcard)
        } else {
            ids.iter().filter_map(|id| self.names(id)).max()
        }
    }
}

fn aws_names(pattern: &AwsPattern, identity: &Identity<'_>) -> Option<Grant> {
    match (pattern, identity) {
        // `"AWS": "*"` is documented as equivalent to `"Principal": "*"`.
        (AwsPattern::Any, _) => Some(Grant::Wildcard),
        (AwsPattern::Account(a), Identity::Account(b)) if **a == **b => Some(Grant::Account),
        (
            AwsPattern::Role { account, name },
            Identity::Role {
                account: a,
                name: n,
                ..
            },
        ) if **account == **a && **name == **n => Some(Grant::RoleArn),
        (AwsPattern::Arn(glob), Identity::Arn(arn)) if glob.matches(arn) => Some(Grant::Direct),
        (AwsPattern::Arn(glob), Identity::Role { arn, .. }) if glob.matches(arn) => {
            Some(Grant::RoleArn)
        }
        (AwsPattern::Arn(glob), Identity::Account(account)) => {
            glob.matches(account).then_some(Grant::Account)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(values: &[&str]) -> PrincipalElement {
        PrincipalElement::listed(
            false,
            vec![PrincipalEntry::new(
                PrincipalType::Aws,
                values.iter().map(|v| (*v).to_owned()).collect(),
            )],
        )
    }

    fn not_aws(values: &[&str]) -> PrincipalElement {
        let mut e = aws(values);
        e.negated = true;
        e
    }

    fn p(text: &str) -> Principal {
        text.parse().unwrap()
    }

    const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/s1";

    #[test]
    fn grants_by_specificity() {
        assert_eq!(
            aws(&["111122223333"]).matches(&p(SESSION)),
            Some(Grant::Account)
        );
        assert_eq!(
            aws(&["arn:aws:iam::111122223333:root"]).matches(&p(SESSION)),
            Some(Grant::Account)
        );
        assert_eq!(
            aws(&["arn:aws:iam::111122223333:role/team/app"]).matches(&p(SESSION)),
            Some(Grant::RoleArn)
        );
        assert_eq!(aws(&[SESSION]).matches(&p(SESSION)), Some(Grant::Direct));
        assert_eq!(
            aws(&["111122223333", SESSION]).matches(&p(SESSION)),
            Some(Grant::Direct)
        );
        assert_eq!(
            aws(&["*"]).matches(&Principal::Anonymous),
            Some(Grant::Wildcard)
        );
        assert_eq!(aws(&["444455556666"]).matches(&p(SESSION)), None);
        assert_eq!(
            aws(&["arn:aws:iam::111122223333:role/other"]).matches(&p(SESSION)),
            None
        );
    }

    #[test]
    fn not_principal_needs_every_identity() {
        let role = "arn:aws:iam::111122223333:role/app";
        assert_eq!(not_aws(&[role]).matches(&p(SESSION)), Some(Grant::Wildcard));
        assert_eq!(
            not_aws(&[role, SESSION]).matches(&p(SESSION)),
            Some(Grant::Wildcard)
        );
        assert_eq!(
            not_aws(&[role, SESSION, "111122223333"]).matches(&p(SESSION)),
            None
        );
        assert_eq!(not_aws(&["*"]).matches(&Principal::Anonymous), None);
    }

    #[test]
    fn federated_and_service() {
        let provider =
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/ABC";
        let element = PrincipalElement::listed(
            false,
            vec![PrincipalEntry::new(
                PrincipalType::Federated,
                vec![provider.to_owned()],
            )],
        );
        assert_eq!(
            element.matches(&Principal::Federated(provider.to_owned())),
            Some(Grant::Direct)
        );
        assert_eq!(
            element.matches(&Principal::Service(provider.to_owned())),
            None
        );
        assert_eq!(element.matches(&p(SESSION)), None);
        assert_eq!(
            PrincipalElement::everyone(false)
                .matches(&Principal::Service("pods.eks.amazonaws.com".into())),
            Some(Grant::Wildcard)
        );
    }
}
