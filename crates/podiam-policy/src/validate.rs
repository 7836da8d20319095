//! What each policy type allows and requires, with the messages IAM gives.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use crate::PolicyError;
use crate::condition::OperatorKind;
use crate::document::{Policy, Statement, Version};
use crate::error::{Problem, messages};
use crate::principal::PrincipalType;

/// Where a policy is used; each use has its own rules and size quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyType {
    /// An identity-based (managed or inline) policy of a user or role.
    Identity,
    /// A resource-based policy (bucket policy, …): needs a principal.
    Resource,
    /// A role's trust policy (`AssumeRolePolicyDocument`).
    Trust,
    /// A permissions boundary (a managed policy).
    Boundary,
    /// A session policy passed to `AssumeRole*`.
    Session,
    /// An AWS Organizations service control policy.
    Scp,
    /// An AWS Organizations resource control policy.
    Rcp,
}

impl PolicyType {
    /// Every type, for listings.
    pub const ALL: [Self; 7] = [
        Self::Identity,
        Self::Resource,
        Self::Trust,
        Self::Boundary,
        Self::Session,
        Self::Scp,
        Self::Rcp,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Resource => "resource",
            Self::Trust => "trust",
            Self::Boundary => "boundary",
            Self::Session => "session",
            Self::Scp => "scp",
            Self::Rcp => "rcp",
        }
    }

    /// IAM's size quota for this type, in characters not counting whitespace.
    pub fn max_chars(self) -> usize {
        match self {
            Self::Identity | Self::Boundary => 6_144,
            Self::Trust | Self::Session => 2_048,
            Self::Scp | Self::Rcp => 5_120,
            Self::Resource => 20_480,
        }
    }

    fn size_message(self) -> String {
        let limit = self.max_chars();
        match self {
            Self::Identity | Self::Boundary => {
                format!("Cannot exceed quota for PolicySize: {limit}")
            }
            Self::Trust => format!("Cannot exceed quota for ACLSizePerRole: {limit}"),
            Self::Session => format!(
                "Session policy exceeds the maximum size of {limit} characters (whitespace excluded)"
            ),
            Self::Scp | Self::Rcp | Self::Resource => {
                format!(
                    "Policy exceeds the maximum size of {limit} characters (whitespace excluded)"
                )
            }
        }
    }

    /// Identity-like policies describe the permissions of the principal they are attached to.
    fn is_identity_like(self) -> bool {
        matches!(self, Self::Identity | Self::Boundary | Self::Session)
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyType {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                PolicyError::InvalidRequest(format!(
                    "unknown policy type {s:?}: expected identity, resource, trust, boundary, session, scp or rcp"
                ))
            })
    }
}

/// Characters that count toward IAM's size quotas (whitespace does not).
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Parses `text` and checks it as a `kind` policy: the size quota, then structure, then the
/// type's rules. The error lists every problem found.
pub fn parse_as(text: &str, kind: PolicyType) -> Result<Policy, PolicyError> {
    if policy_size(text) > kind.max_chars() {
        return Err(PolicyError::Malformed(vec![
            Problem::too_large(kind.size_message()).detail(format!(
                "the document has {} characters not counting whitespace",
                policy_size(text)
            )),
        ]));
    }
    let policy = Policy::parse(text)?;
    let problems = validate(&policy, kind);
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(PolicyError::Malformed(problems))
    }
}

/// Checks a parsed policy against the rules of `kind`. Empty when it is valid.
pub fn validate(policy: &Policy, kind: PolicyType) -> Vec<Problem> {
    let mut problems = Vec::new();
    if matches!(kind, PolicyType::Identity | PolicyType::Boundary)
        && policy.declared_version() != Some(Version::V2012_10_17)
    {
        problems.push(Problem::new("Version", messages::VERSION).detail(
            match policy.declared_version() {
                Some(v) => format!("the document says {v}"),
                None => "the document has no Version; add \"Version\": \"2012-10-17\"".to_owned(),
            },
        ));
    }
    let single = policy.statements().len() == 1;
    let mut sids = HashSet::new();
    for (i, statement) in policy.statements().iter().enumerate() {
        let path = if single {
            "Statement".to_owned()
        } else {
            format!("Statement[{i}]")
        };
        if let Some(sid) = statement.sid().filter(|s| !s.is_empty()) {
            if !sids.insert(sid) {
                problems.push(
                    Problem::new(format!("{path}.Sid"), messages::DUPLICATE_SID)
                        .detail(format!("{sid:?} is used twice")),
                );
            }
            if kind.is_identity_like() && !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
                problems.push(Problem::new(format!("{path}.Sid"), messages::SID_CHARS));
            }
        }
        check_statement(statement, kind, &path, &mut problems);
    }
    problems
}

fn check_statement(
    statement: &Statement,
    kind: PolicyType,
    path: &str,
    problems: &mut Vec<Problem>,
) {
    let element = |negated: bool, name: &str| {
        if negated {
            format!("{path}.Not{name}")
        } else {
            format!("{path}.{name}")
        }
    };
    // Principal. "AWS JSON policy elements: NotPrincipal": only resource-based policies may
    // use NotPrincipal, and only to deny; trust policies, identity policies, boundaries, session
    // policies, SCPs and RCPs may not.
    match (statement.principal(), kind) {
        (Some(p), PolicyType::Trust) if p.is_negated() => {
            problems.push(Problem::new(
                element(true, "Principal"),
                messages::NOT_PRINCIPAL_TRUST,
            ));
        }
        (Some(p), PolicyType::Resource)
            if p.is_negated() && statement.effect() == crate::document::Effect::Allow =>
        {
            problems.push(Problem::new(
                element(true, "Principal"),
                messages::NOT_PRINCIPAL_ALLOW,
            ));
        }
        (Some(p), PolicyType::Rcp) if p.is_negated() || !names_everyone(p) => {
            problems.push(Problem::new(
                element(p.is_negated(), "Principal"),
                messages::RCP_PRINCIPAL,
            ));
        }
        (None, PolicyType::Rcp) => {
            problems.push(Problem::new(path, messages::MISSING_PRINCIPAL));
        }
        (Some(p), k) if k.is_identity_like() => {
            problems.push(Problem::new(
                element(p.is_negated(), "Principal"),
                messages::HAS_PRINCIPAL,
            ));
        }
        (Some(p), PolicyType::Scp) => problems.push(
            Problem::new(element(p.is_negated(), "Principal"), messages::SCP_TYPE)
                .detail("a service control policy cannot have a Principal"),
        ),
        (None, PolicyType::Trust | PolicyType::Resource) => {
            problems.push(Problem::new(path, messages::MISSING_PRINCIPAL));
        }
        (Some(p), _) => {
            for entry in p.entries() {
                for value in entry.values() {
                    if let Some(why) = invalid_principal(entry.kind(), value) {
                        problems.push(
                            Problem::new(
                                element(p.is_negated(), "Principal"),
                                format!(
                                    "Invalid principal in policy: \"{}\":\"{value}\"",
                                    entry.kind()
                                ),
                            )
                            .detail(why),
                        );
                    }
                }
            }
        }
        (None, _) => {}
    }

    // "RCP syntax": Allow only in AWS's RCPFullAWSAccess (everything, for everyone, with no
    // condition), and no NotAction.
    if kind == PolicyType::Rcp {
        if statement.action().is_some_and(|a| a.is_negated()) {
            problems.push(Problem::new(
                element(true, "Action"),
                messages::RCP_NOT_ACTION,
            ));
        }
        let full_access = statement
            .action()
            .is_some_and(|a| !a.is_negated() && a.patterns().iter().all(|p| p == "*"))
            && statement
                .resource()
                .is_some_and(|r| !r.is_negated() && r.patterns().iter().all(|p| p == "*"))
            && statement.conditions().is_empty();
        if statement.effect() == crate::document::Effect::Allow && !full_access {
            problems.push(Problem::new(path, messages::RCP_ALLOW));
        }
    }

    // Action.
    match statement.action() {
        None => problems.push(Problem::new(path, messages::NO_ACTIONS)),
        Some(a) if a.patterns().is_empty() => {
            problems.push(Problem::new(
                element(a.is_negated(), "Action"),
                messages::NO_ACTIONS,
            ));
        }
        Some(a) => {
            let at = element(a.is_negated(), "Action");
            for action in a.patterns() {
                if let Some(problem) = check_action(action, &at) {
                    problems.push(problem);
                } else if kind == PolicyType::Trust && !is_trust_action(action) {
                    problems.push(Problem::new(&at, messages::TRUST_ACTIONS).detail(format!(
                        "{action:?} is not an STS action that a trust policy can grant"
                    )));
                }
            }
        }
    }

    // Resource.
    match (statement.resource(), kind) {
        (Some(r), PolicyType::Trust) => problems.push(Problem::new(
            element(r.is_negated(), "Resource"),
            format!(
                "Has prohibited field {}",
                if r.is_negated() {
                    "NotResource"
                } else {
                    "Resource"
                }
            ),
        )),
        (Some(r), _) if r.patterns().is_empty() => {
            problems.push(Problem::new(
                element(r.is_negated(), "Resource"),
                messages::NO_RESOURCES,
            ));
        }
        (Some(r), _) => {
            let at = element(r.is_negated(), "Resource");
            for resource in r.patterns() {
                if let Some(message) = check_resource(resource) {
                    problems.push(Problem::new(&at, message));
                }
            }
        }
        (None, PolicyType::Trust | PolicyType::Scp | PolicyType::Rcp) => {}
        (None, _) => problems.push(Problem::new(path, messages::NO_RESOURCES)),
    }

    // Conditions.
    for condition in statement.conditions() {
        let at = format!(
            "{path}.Condition.{}.{}",
            condition.operator(),
            condition.key()
        );
        // "IAM JSON policy elements: Condition": a key is `vendor:name` (an OIDC provider's
        // keys use its URL as the vendor, and a tag key may hold more colons). IAM refuses a
        // key without its vendor with the message it uses for actions.
        let key = condition.key();
        if !key
            .split_once(':')
            .is_some_and(|(vendor, name)| !vendor.is_empty() && !name.is_empty())
        {
            problems.push(
                Problem::new(&at, messages::VENDOR_PREFIX)
                    .detail(format!("the condition key {key:?} has no service prefix")),
            );
        }
        let bad = condition.unparsable_values();
        if bad.is_empty() {
            continue;
        }
        let family = condition.operator().kind;
        let is_date = matches!(
            family,
            OperatorKind::DateEquals
                | OperatorKind::DateNotEquals
                | OperatorKind::DateLessThan
                | OperatorKind::DateLessThanEquals
                | OperatorKind::DateGreaterThan
                | OperatorKind::DateGreaterThanEquals
        );
        let message = if is_date {
            messages::LEGACY
        } else {
            messages::SYNTAX
        };
        for value in bad {
            problems.push(Problem::new(&at, message).detail(format!(
                "{value:?} is not a valid value for {}",
                condition.operator().kind.name()
            )));
        }
    }
}

/// `"Principal": "*"` or `{"AWS": "*"}`, which AWS documents as the same.
fn names_everyone(principal: &crate::principal::PrincipalElement) -> bool {
    principal.is_everyone()
        || (!principal.entries().is_empty()
            && principal.entries().iter().all(|entry| {
                entry.kind() == PrincipalType::Aws && entry.values().iter().all(|v| v == "*")
            }))
}

fn check_action(action: &str, at: &str) -> Option<Problem> {
    if action == "*" {
        return None;
    }
    let mut parts = action.split(':');
    let vendor = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (None, _) => Some(
            Problem::new(at, messages::VENDOR_PREFIX)
                .detail(format!("{action:?} has no service prefix")),
        ),
        (Some(_), Some(_)) => {
            Some(Problem::new(at, messages::ONE_COLON).detail(format!("{action:?}")))
        }
        (Some(_), None) => {
            let valid = !vendor.is_empty()
                && vendor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            (!valid).then(|| Problem::new(at, format!("Vendor {vendor} is not valid")))
        }
    }
}

/// The STS actions a trust policy may grant.
const TRUST_ACTIONS: &[&str] = &[
    "sts:assumerole",
    "sts:assumerolewithsaml",
    "sts:assumerolewithwebidentity",
    "sts:tagsession",
    "sts:setsourceidentity",
    "sts:setcontext",
];

fn is_trust_action(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    if lower.contains(['*', '?']) {
        return lower.starts_with("sts:");
    }
    TRUST_ACTIONS.contains(&lower.as_str())
}

const IAM_RESOURCE_PREFIXES: &[&str] = &[
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

fn check_resource(resource: &str) -> Option<String> {
    if resource == "*" {
        return None;
    }
    let must_be_arn = || format!("Resource {resource} must be in ARN format or \"*\".");
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let [arn, partition, service, region, _account, rest] = parts.as_slice() else {
        return Some(must_be_arn());
    };
    if *arn != "arn" {
        return Some(must_be_arn());
    }
    if !partition.contains(['*', '?']) && !podiam_types::KNOWN_PARTITIONS.contains(partition) {
        return Some(format!(
            "Partition \"{partition}\" is not valid for resource \"{resource}\"."
        ));
    }
    if service.is_empty() || service.contains(['*', '?']) {
        return Some(messages::RESOURCE_VENDOR.to_owned());
    }
    match *service {
        "iam" if !region.is_empty() => Some(format!(
            "IAM resource {resource} cannot contain region information."
        )),
        "s3" if !region.is_empty() => Some(format!(
            "Resource {resource} can not contain region information."
        )),
        "iam"
            if *rest != "*"
                && *rest != "root"
                && !IAM_RESOURCE_PREFIXES.iter().any(|p| rest.starts_with(p)) =>
        {
            Some(messages::IAM_PATHS.to_owned())
        }
        _ => None,
    }
}

/// Why a principal value is not one IAM accepts, if it is not.
fn invalid_principal(kind: PrincipalType, value: &str) -> Option<&'static str> {
    let has_wildcard = value.contains(['*', '?']);
    let hostname = |v: &str| {
        v.contains('.')
            && !v.starts_with('.')
            && !v.ends_with('.')
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    };
    let arn_parts: Vec<&str> = value.splitn(6, ':').collect();
    let arn = match arn_parts.as_slice() {
        ["arn", partition, service, "", account, resource]
            if podiam_types::KNOWN_PARTITIONS.contains(partition)
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some((*service, *resource))
        }
        _ => None,
    };
    match kind {
        PrincipalType::Aws => {
            if value == "*" || (value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())) {
                return None;
            }
            if has_wildcard {
                return Some(
                    "only the whole value \"*\" may be a wildcard; use a condition on aws:PrincipalArn for patterns",
                );
            }
            let unique_id = value.len() >= 16
                && value.starts_with('A')
                && value
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            let valid = unique_id
                || matches!(arn, Some(("iam", r)) if r == "root" || r.starts_with("user/") || r.starts_with("role/"))
                || matches!(arn, Some(("sts", r)) if r.starts_with("assumed-role/") || r.starts_with("federated-user/"));
            (!valid).then_some("expected an account id, or the ARN of an account root, user, role, role session or federated user")
        }
        PrincipalType::Federated => {
            let valid = !has_wildcard
                && (hostname(value)
                    || matches!(arn, Some(("iam", r)) if r.starts_with("oidc-provider/") || r.starts_with("saml-provider/")));
            (!valid).then_some("expected the ARN of an IAM OIDC or SAML provider, or an identity provider's domain name")
        }
        PrincipalType::Service => (has_wildcard || !hostname(value))
            .then_some("expected a service principal such as \"pods.eks.amazonaws.com\""),
        PrincipalType::CanonicalUser => (value.len() != 64
            || !value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some("a canonical user id is 64 hexadecimal characters"),
    }
}
