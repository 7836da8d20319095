//! Who calls, and whether their policies allow the call.

use std::sync::Arc;

use podiam_policy::{
    AwsPrincipal, Context, ContextValue, Decision, Policy, PolicyKind, PolicySet, Principal,
    Request, Rule,
};
use podiam_session::Session;
use time::OffsetDateTime;

use crate::IamError;
use crate::state::{IamState, RoleEntry, UserEntry};

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The account root: every action is allowed.
    Root,
    /// An IAM user (long-term access key).
    User(Arc<UserEntry>),
    /// A role session (session credentials); `role` is `None` if the role was deleted since.
    Session {
        /// The unsealed session.
        session: Arc<Session>,
        /// The role, as it is now.
        role: Option<Arc<RoleEntry>>,
    },
}

/// What the transport knows about a request, for the global condition keys.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// When the request arrived.
    pub now: OffsetDateTime,
    /// The client's address.
    pub source_ip: Option<String>,
    /// Whether the request came over TLS.
    pub secure_transport: bool,
    /// The region the request was signed for.
    pub region: String,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
}

impl Caller {
    /// The caller's ARN.
    pub fn arn(&self, state: &IamState) -> String {
        match self {
            Self::Root => state.root_arn(),
            Self::User(user) => state.user_arn(&user.record),
            Self::Session { session, .. } => session.assumed_role_arn(),
        }
    }

    /// The caller's unique id (`UserId` of `GetCallerIdentity`).
    pub fn user_id(&self, state: &IamState) -> String {
        match self {
            Self::Root => state.account().to_owned(),
            Self::User(user) => user.record.id.clone(),
            Self::Session { session, .. } => session.assumed_role_id(),
        }
    }

    /// Whose share of a per-principal limit the caller's calls count against: the root, a user
    /// by id, or a role by id for all its sessions together (anyone who may assume a role can
    /// make many sessions of it).
    pub fn limit_key(&self) -> String {
        match self {
            Self::Root => "root".to_owned(),
            Self::User(user) => user.record.id.clone(),
            Self::Session { session, .. } => session.details.role_id.clone(),
        }
    }

    /// The caller as the policy engine's principal.
    pub fn principal(&self, state: &IamState) -> Principal {
        self.arn(state)
            .parse::<AwsPrincipal>()
            .map_or(Principal::Anonymous, Principal::Aws)
    }

    /// The principal tags: a user's or role's tags, then session tags (which win).
    pub fn principal_tags(&self) -> Vec<(String, String)> {
        match self {
            Self::Root => Vec::new(),
            Self::User(user) => user.record.tags.clone(),
            Self::Session { session, role } => {
                let mut tags: Vec<(String, String)> = role
                    .as_ref()
                    .map(|r| r.record.tags.clone())
                    .unwrap_or_default();
                for (k, v) in &session.details.tags {
                    tags.retain(|(existing, _)| !existing.eq_ignore_ascii_case(k));
                    tags.push((k.clone(), v.clone()));
                }
                tags
            }
        }
    }

    /// The global condition keys AWS sets for this caller and request.
    pub fn context(&self, state: &IamState, facts: &RequestFacts) -> Context {
        let mut c = Context::new();
        let now = facts.now;
        c.insert("aws:CurrentTime", podiam_policy_time(now));
        c.insert("aws:EpochTime", now.unix_timestamp().to_string());
        c.insert("aws:SecureTransport", facts.secure_transport.to_string());
        c.insert("aws:RequestedRegion", facts.region.as_str());
        c.insert("aws:PrincipalAccount", state.account());
        c.insert("aws:userid", self.user_id(state));
        if let Some(ip) = &facts.source_ip {
            c.insert("aws:SourceIp", ip.as_str());
        }
        if let Some(agent) = &facts.user_agent {
            c.insert("aws:UserAgent", agent.as_str());
        }
        match self {
            Self::Root => {
                c.insert("aws:PrincipalArn", state.root_arn());
                c.insert("aws:PrincipalType", "Account");
            }
            Self::User(user) => {
                c.insert("aws:PrincipalArn", state.user_arn(&user.record));
                c.insert("aws:PrincipalType", "User");
                c.insert("aws:username", user.record.name.as_str());
            }
            Self::Session { session, .. } => {
                c.insert("aws:PrincipalArn", session.details.role_arn.as_str());
                c.insert("aws:PrincipalType", "AssumedRole");
                let issued =
                    OffsetDateTime::from_unix_timestamp(session.details.issued_at).unwrap_or(now);
                c.insert("aws:TokenIssueTime", podiam_policy_time(issued));
                if let Some(source) = &session.details.source_identity {
                    c.insert("aws:SourceIdentity", source.as_str());
                }
            }
        }
        let tags = self.principal_tags();
        for (k, v) in &tags {
            c.insert(&format!("aws:PrincipalTag/{k}"), v.as_str());
        }
        if !tags.is_empty() {
            c.insert(
                "aws:PrincipalTagKeys",
                ContextValue::Multi(tags.into_iter().map(|(k, _)| k).collect()),
            );
        }
        c
    }
}

fn podiam_policy_time(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The policies that bear on a caller's requests.
struct CallerPolicies {
    identity: Vec<Arc<Policy>>,
    boundary: Option<Arc<Policy>>,
    session: Vec<Arc<Policy>>,
}

impl IamState {
    fn managed(&self, arns: &[String]) -> Vec<Arc<Policy>> {
        arns.iter()
            .filter_map(|arn| self.policy(arn).and_then(|p| p.default_policy()))
            .collect()
    }

    fn boundary(&self, arn: Option<&str>) -> Option<Arc<Policy>> {
        // A boundary that no longer exists allows nothing.
        arn.map(|arn| {
            self.policy(arn)
                .and_then(|p| p.default_policy())
                .unwrap_or_else(|| Arc::new(Policy::allow_nothing()))
        })
    }

    fn caller_policies(&self, caller: &Caller) -> CallerPolicies {
        match caller {
            Caller::Root => CallerPolicies {
                identity: Vec::new(),
                boundary: None,
                session: Vec::new(),
            },
            Caller::User(user) => {
                let mut identity = user.inline();
                identity.extend(self.managed(&user.record.attached));
                CallerPolicies {
                    identity,
                    boundary: self.boundary(user.record.boundary.as_deref()),
                    session: Vec::new(),
                }
            }
            Caller::Session { session, role } => {
                let (identity, boundary) = match role {
                    Some(role) => {
                        let mut identity = role.inline();
                        identity.extend(self.managed(&role.record.attached));
                        (identity, self.boundary(role.record.boundary.as_deref()))
                    }
                    None => (Vec::new(), None),
                };
                let mut session_policies: Vec<Arc<Policy>> = session
                    .details
                    .policy
                    .as_deref()
                    .map(|text| {
                        Policy::parse(text)
                            .map(Arc::new)
                            .unwrap_or_else(|_| Arc::new(Policy::allow_nothing()))
                    })
                    .into_iter()
                    .collect();
                session_policies.extend(self.managed(&session.details.policy_arns));
                let has_session_policy =
                    session.details.policy.is_some() || !session.details.policy_arns.is_empty();
                if has_session_policy && session_policies.is_empty() {
                    session_policies.push(Arc::new(Policy::allow_nothing()));
                }
                CallerPolicies {
                    identity,
                    boundary,
                    session: session_policies,
                }
            }
        }
    }

    /// Decides whether `caller` may perform `action` on `resource`; on refusal the error
    /// carries AWS's message.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        facts: &RequestFacts,
        extra: &[(String, ContextValue)],
    ) -> Result<(), IamError> {
        if matches!(caller, Caller::Root) {
            return Ok(());
        }
        let (decision, rule) = self.decide(caller, action, resource, None, facts, extra);
        if decision == Decision::Allow {
            return Ok(());
        }
        Err(IamError::AccessDenied(access_denied(
            &caller.arn(self),
            action,
            resource,
            &rule,
        )))
    }

    /// The caller's own side of a call on a resource in an account podiam does not hold (a
    /// role in real AWS, assumed through podiam): its identity policies, boundary and session
    /// policy must allow, as for a resource in another account. The other side, the
    /// resource's own policy (the role's trust policy), is its owner's to decide, so it is
    /// taken as granting the caller here.
    pub fn authorize_own_side(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        facts: &RequestFacts,
    ) -> Result<(), IamError> {
        let principal = caller.arn(self);
        let owners_side = Policy::parse(
            &serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action}],
            })
            .to_string(),
        )
        .map_err(IamError::Policy)?;
        let (decision, rule) =
            self.decide(caller, action, resource, Some(&owners_side), facts, &[]);
        if decision == Decision::Allow {
            return Ok(());
        }
        Err(IamError::AccessDenied(access_denied(
            &principal, action, resource, &rule,
        )))
    }

    /// The full decision for `caller`, with a resource-based policy when the resource has one
    /// (a role's trust policy for `sts:AssumeRole`). The root's identity allows everything,
    /// but a resource-based policy still has to let it in.
    pub fn decide(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        resource_policy: Option<&Policy>,
        facts: &RequestFacts,
        extra: &[(String, ContextValue)],
    ) -> (Decision, Rule) {
        let request = self.request_for(caller, action, resource, facts, extra);
        self.with_policy_set(caller, resource_policy, |set| set.decide(&request))
    }

    /// Runs `f` over every policy that bears on `caller`'s requests, with `resource_policy`:
    /// the set [`IamState::decide`] evaluates, for callers that need a trace too.
    pub fn with_policy_set<R>(
        &self,
        caller: &Caller,
        resource_policy: Option<&Policy>,
        f: impl FnOnce(&PolicySet<'_>) -> R,
    ) -> R {
        let mut policies = self.caller_policies(caller);
        if matches!(caller, Caller::Root) {
            policies.identity.extend(ALLOW_ALL.clone());
        }
        let set = PolicySet {
            identity: policies.identity.iter().map(AsRef::as_ref).collect(),
            resource: resource_policy,
            permissions_boundary: policies.boundary.as_deref(),
            session: policies.session.iter().map(AsRef::as_ref).collect(),
            ..PolicySet::default()
        };
        f(&set)
    }
}

impl IamState {
    /// The policy engine's request for a call by `caller`.
    pub fn request_for(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        facts: &RequestFacts,
        extra: &[(String, ContextValue)],
    ) -> Request {
        let mut context = caller.context(self, facts);
        for (k, v) in extra {
            context.insert(k, v.clone());
        }
        Request::new(action)
            .principal(caller.principal(self))
            .resource(resource)
            .context(context)
    }

    /// Whether any policy that applies to `caller` (identity, boundary or session) has a
    /// condition on `key` (case-insensitive, as condition keys are). A proxy that cannot
    /// determine a key's value asks this before evaluating without it: a policy that reads the
    /// key must not see it as absent.
    pub fn policies_read_condition_key(&self, caller: &Caller, key: &str) -> bool {
        let policies = self.caller_policies(caller);
        policies
            .identity
            .iter()
            .chain(policies.boundary.as_ref())
            .chain(policies.session.iter())
            .flat_map(|policy| policy.statements())
            .flat_map(|statement| statement.conditions())
            .any(|condition| condition.key().eq_ignore_ascii_case(key))
    }

    /// Whether `policy` by itself allows the call (a role's trust policy must, for
    /// `sts:AssumeRole`, even when the caller's own policies would).
    pub fn policy_allows(
        &self,
        policy: &Policy,
        caller: &Caller,
        action: &str,
        resource: &str,
        facts: &RequestFacts,
        extra: &[(String, ContextValue)],
    ) -> bool {
        let request = self.request_for(caller, action, resource, facts, extra);
        policy.evaluate(&request) == podiam_policy::PolicyOutcome::Allow
    }
}

/// The root's implicit identity policy.
static ALLOW_ALL: std::sync::LazyLock<Option<Arc<Policy>>> = std::sync::LazyLock::new(|| {
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    )
    .ok()
    .map(Arc::new)
});

/// AWS's message for a refused call.
pub(crate) fn access_denied(caller: &str, action: &str, resource: &str, rule: &Rule) -> String {
    let because = match rule {
        Rule::Denied(kind) => format!(
            "with an explicit deny in {} {}",
            article(*kind),
            kind.aws_name()
        ),
        Rule::Boundary => format!("because no permissions boundary allows the {action} action"),
        Rule::Session => format!("because no session policy allows the {action} action"),
        _ => format!("because no identity-based policy allows the {action} action"),
    };
    format!(
        "User: {caller} is not authorized to perform: {action} on resource: {resource} {because}"
    )
}

fn article(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Identity
        | PolicyKind::Session
        | PolicyKind::ServiceControl
        | PolicyKind::ResourceControl => "an",
        PolicyKind::Resource | PolicyKind::Boundary => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let m = access_denied(
            "arn:aws:iam::111122223333:user/bob",
            "iam:CreateRole",
            "arn:aws:iam::111122223333:role/x",
            &Rule::NothingAllows,
        );
        assert_eq!(
            m,
            "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::111122223333:role/x because no identity-based policy allows the iam:CreateRole action"
        );
        let m = access_denied(
            "arn:aws:sts::1:assumed-role/r/s",
            "iam:GetRole",
            "*",
            &Rule::Denied(PolicyKind::Identity),
        );
        assert!(m.ends_with("with an explicit deny in an identity-based policy"));
    }
}
