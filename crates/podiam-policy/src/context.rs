//! The request being authorized: who asks, for what action on which resource, and the
//! context keys that conditions and policy variables read.

use std::fmt;
use std::str::FromStr;

use podiam_types::Arn;

use crate::PolicyError;
use crate::pattern::lowercase;

/// A context key's value: one string, or a set (for multivalued keys such as `aws:TagKeys`).
/// Typed operators (numeric, date, IP, …) parse the text as they need it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum ContextValue {
    /// A single-valued key.
    Single(String),
    /// A multivalued key; may be empty.
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice (one element for [`ContextValue::Single`]).
    pub fn values(&self) -> &[String] {
        match self {
            Self::Single(v) => std::slice::from_ref(v),
            Self::Multi(vs) => vs,
        }
    }
}

impl From<&str> for ContextValue {
    fn from(v: &str) -> Self {
        Self::Single(v.to_owned())
    }
}

impl From<String> for ContextValue {
    fn from(v: String) -> Self {
        Self::Single(v)
    }
}

impl From<Vec<String>> for ContextValue {
    fn from(vs: Vec<String>) -> Self {
        Self::Multi(vs)
    }
}

/// Context keys and their values. Keys are case-insensitive, as in IAM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Sorted by lower-cased key, for binary search.
    entries: Vec<(Box<str>, ContextValue)>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (any case) to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: &str, value: impl Into<ContextValue>) {
        let key: Box<str> = lowercase(key).into();
        let value = value.into();
        match self.entries.binary_search_by(|(k, _)| (**k).cmp(&*key)) {
            Ok(i) => {
                if let Some(slot) = self.entries.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    /// Builder form of [`Context::insert`].
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<ContextValue>) -> Self {
        self.insert(key, value);
        self
    }

    /// Removes `key` (any case): an analysis that cannot know a key's value leaves it out.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        let key = lowercase(key);
        let i = self
            .entries
            .binary_search_by(|(k, _)| (**k).cmp(&*key))
            .ok()?;
        Some(self.entries.remove(i).1)
    }

    /// The value of `key` (any case).
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.get_lower(&lowercase(key))
    }

    /// The value of an already lower-cased key.
    pub(crate) fn get_lower(&self, key: &str) -> Option<&ContextValue> {
        self.entries
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// A single-valued key's value, for policy variables (multivalued keys cannot be used).
    pub(crate) fn single(&self, key: &str) -> Option<&str> {
        match self.get_lower(key)? {
            ContextValue::Single(v) => Some(v),
            ContextValue::Multi(_) => None,
        }
    }

    /// All entries, keys lower-cased, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }
}

/// What kind of IAM identity an AWS principal ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsPrincipalKind {
    /// `arn:aws:iam::ACCOUNT:root`
    Root,
    /// `arn:aws:iam::ACCOUNT:user/path/name`
    User,
    /// `arn:aws:iam::ACCOUNT:role/path/name`
    Role {
        /// The role name (last path component).
        name: String,
    },
    /// `arn:aws:sts::ACCOUNT:assumed-role/role-name/session-name`
    AssumedRole {
        /// The role the session belongs to.
        role_name: String,
        /// The session name.
        session_name: String,
    },
    /// `arn:aws:sts::ACCOUNT:federated-user/name`
    FederatedUser,
}

/// An IAM principal: a user, a role, a role session, a federated user or an account root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsPrincipal {
    arn: Arn,
    kind: AwsPrincipalKind,
}

impl AwsPrincipal {
    /// The principal's ARN.
    pub fn arn(&self) -> &Arn {
        &self.arn
    }

    /// What kind of identity it is.
    pub fn kind(&self) -> &AwsPrincipalKind {
        &self.kind
    }

    /// The account the principal belongs to.
    pub fn account(&self) -> &str {
        self.arn.account()
    }

    /// The principal for an account's root.
    pub fn account_root(partition: &str, account: &str) -> Result<Self, PolicyError> {
        format!("arn:{partition}:iam::{account}:root").parse()
    }
}

impl FromStr for AwsPrincipal {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| PolicyError::InvalidRequest(format!("principal {s:?}: {why}"));
        let arn: Arn = s.parse().map_err(|e| invalid(&format!("{e}")))?;
        if arn.account_id().is_none() {
            return Err(invalid("the account part must be a 12-digit account id"));
        }
        let resource = arn.resource();
        let last = |r: &str| r.rsplit('/').next().unwrap_or_default().to_owned();
        let kind = match (arn.service(), resource.split_once('/')) {
            ("iam", None) if resource == "root" => AwsPrincipalKind::Root,
            ("iam", Some(("user", rest))) if !rest.is_empty() => AwsPrincipalKind::User,
            ("iam", Some(("role", rest))) if !rest.is_empty() => {
                AwsPrincipalKind::Role { name: last(rest) }
            }
            ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
                Some((role, session)) if !role.is_empty() && !session.is_empty() => {
                    AwsPrincipalKind::AssumedRole {
                        role_name: role.to_owned(),
                        session_name: session.to_owned(),
                    }
                }
                _ => return Err(invalid("expected assumed-role/ROLE/SESSION")),
            },
            ("sts", Some(("federated-user", rest))) if !rest.is_empty() => {
                AwsPrincipalKind::FederatedUser
            }
            _ => {
                return Err(invalid(
                    "expected an IAM user, role or root ARN, or an STS assumed-role or federated-user ARN",
                ));
            }
        };
        Ok(Self { arn, kind })
    }
}

/// Who makes the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Principal {
    /// Nobody authenticated.
    #[default]
    Anonymous,
    /// An IAM identity.
    Aws(AwsPrincipal),
    /// A web identity or SAML federation, named by its provider (an IAM OIDC/SAML provider ARN
    /// or a well-known issuer such as `accounts.google.com`).
    Federated(String),
    /// An AWS service, such as `pods.eks.amazonaws.com`.
    Service(String),
    /// An S3 canonical user id.
    CanonicalUser(String),
}

impl Principal {
    /// The account of an IAM principal.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Aws(p) => Some(p.account()),
            _ => None,
        }
    }
}

impl FromStr for Principal {
    type Err = PolicyError;

    /// An ARN is an IAM principal, a 12-digit id the account root, a dotted name a service.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("arn:") {
            return s.parse().map(Self::Aws);
        }
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            return AwsPrincipal::account_root("aws", s).map(Self::Aws);
        }
        if s.contains('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Ok(Self::Service(s.to_owned()));
        }
        Err(PolicyError::InvalidRequest(format!(
            "principal {s:?}: expected an ARN, an account id or a service principal such as \"pods.eks.amazonaws.com\""
        )))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anonymous"),
            Self::Aws(p) => write!(f, "{}", p.arn),
            Self::Federated(p) => write!(f, "Federated {p}"),
            Self::Service(p) => write!(f, "Service {p}"),
            Self::CanonicalUser(p) => write!(f, "CanonicalUser {p}"),
        }
    }
}

/// One request to authorize.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) principal: Principal,
    pub(crate) action: String,
    pub(crate) action_lower: String,
    pub(crate) resource: Option<String>,
    pub(crate) resource_account: Option<String>,
    /// The 12-digit account in the resource ARN, if any.
    pub(crate) arn_account: Option<String>,
    pub(crate) context: Context,
}

impl Request {
    /// A request for `action` (`service:Operation`) by an anonymous principal on no
    /// particular resource.
    pub fn new(action: &str) -> Self {
        Self {
            principal: Principal::Anonymous,
            action: action.to_owned(),
            action_lower: action.to_ascii_lowercase(),
            resource: None,
            resource_account: None,
            arn_account: None,
            context: Context::default(),
        }
    }

    /// Sets who makes the request.
    #[must_use]
    pub fn principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// Sets the resource ARN.
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.arn_account = resource
            .parse::<Arn>()
            .ok()
            .and_then(|arn| arn.account_id())
            .map(|id| id.to_string());
        self.resource = Some(resource.to_owned());
        self
    }

    /// Sets the account that owns the resource (otherwise taken from the resource ARN).
    #[must_use]
    pub fn resource_account(mut self, account: &str) -> Self {
        self.resource_account = Some(account.to_owned());
        self
    }

    /// Replaces the context.
    #[must_use]
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// The context, to add keys.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// The context as it stands.
    pub fn context_entries(&self) -> &Context {
        &self.context
    }

    /// The requesting principal.
    pub fn requester(&self) -> &Principal {
        &self.principal
    }

    /// The action as given.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The resource as matched: the given ARN, or `*` when none was given.
    pub(crate) fn resource_or_star(&self) -> &str {
        self.resource.as_deref().unwrap_or("*")
    }

    /// The account that owns the resource, when known.
    pub(crate) fn owning_account(&self) -> Option<&str> {
        self.resource_account
            .as_deref()
            .or(self.arn_account.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_are_case_insensitive() {
        let mut c = Context::new();
        c.insert("aws:SourceIp", "10.0.0.1");
        c.insert("AWS:SOURCEIP", "10.0.0.2");
        assert_eq!(c.get("aws:sourceip"), Some(&ContextValue::from("10.0.0.2")));
        assert_eq!(c.iter().count(), 1);
        assert_eq!(
            c.remove("Aws:SourceIP"),
            Some(ContextValue::from("10.0.0.2"))
        );
        assert_eq!(c.remove("aws:SourceIp"), None);
        assert_eq!(c.iter().count(), 0);
    }

    #[test]
    fn principal_kinds() {
        let p: AwsPrincipal = "arn:aws:sts::111122223333:assumed-role/my-role/s1"
            .parse()
            .unwrap();
        assert_eq!(
            p.kind(),
            &AwsPrincipalKind::AssumedRole {
                role_name: "my-role".into(),
                session_name: "s1".into()
            }
        );
        let r: AwsPrincipal = "arn:aws:iam::111122223333:role/path/to/my-role"
            .parse()
            .unwrap();
        assert_eq!(
            r.kind(),
            &AwsPrincipalKind::Role {
                name: "my-role".into()
            }
        );
        assert!("arn:aws:s3:::bucket".parse::<AwsPrincipal>().is_err());
        assert!("arn:aws:iam::aws:policy/x".parse::<AwsPrincipal>().is_err());
        assert!(
            "arn:aws:sts::111122223333:assumed-role/only"
                .parse::<AwsPrincipal>()
                .is_err()
        );
    }

    #[test]
    fn principal_from_text() {
        assert!(matches!(
            "pods.eks.amazonaws.com".parse(),
            Ok(Principal::Service(_))
        ));
        assert!(matches!("111122223333".parse(), Ok(Principal::Aws(_))));
        assert!("who?".parse::<Principal>().is_err());
    }

    #[test]
    fn owning_account_comes_from_the_arn() {
        let r = Request::new("s3:GetObject")
            .resource("arn:aws:dynamodb:eu-central-1:111122223333:table/carts");
        assert_eq!(r.owning_account(), Some("111122223333"));
        let s3 = Request::new("s3:GetObject").resource("arn:aws:s3:::bucket/key");
        assert_eq!(s3.owning_account(), None);
        let given = s3.resource_account("444455556666");
        assert_eq!(given.owning_account(), Some("444455556666"));
    }
}
