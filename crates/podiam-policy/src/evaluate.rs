//! Evaluation: statements, single policies, and the full AWS decision over every policy type.
//!
//! The order follows AWS's documented policy evaluation logic:
//! 0. `sts:GetCallerIdentity` needs no permission and cannot be denied;
//! 1. an explicit `Deny` in any applicable policy decides (a `NotPrincipal` deny always
//!    applies to a principal with a permissions boundary);
//! 2. service control policies (when given, and not for anonymous requests) must allow at
//!    every level of the organization; resource control policies only deny, since AWS's
//!    undetachable `RCPFullAWSAccess` allows at every level;
//! 3. within one account, a resource-based policy that names the requester itself (a user, a
//!    role session, a federated or service principal) allows on its own; one that names the
//!    role, or `*`, allows subject to the permissions boundary and session policies; one that
//!    names only the account delegates to identity-based policies;
//! 4. otherwise an identity-based policy must allow, and so must the permissions boundary and
//!    the session policies when present;
//! 5. across accounts, the resource-based policy and the identity side must both allow.
//!
//! Anything else is an implicit deny. Every function here is total: no input panics.

use crate::context::Request;
use crate::document::{Effect, Policy, Statement};
use crate::principal::Grant;
use crate::trace::{
    Decision, ElementTrace, Explanation, PolicyOutcome, PolicyTrace, StatementTrace,
};

/// How one statement relates to a request: `None` when it does not apply, otherwise how
/// specifically it names the requester (`Direct` for statements without a principal element,
/// whose principal is the identity the policy is attached to).
fn statement_applies(
    statement: &Statement,
    request: &Request,
    has_boundary: bool,
    mut trace: Option<&mut StatementTrace>,
) -> Option<Grant> {
    let explain = trace.is_some();
    let mut applies = true;

    let action = action_matches(statement, request, explain);
    applies &= action.matched;
    if let Some(t) = trace.as_deref_mut() {
        t.action = action;
    } else if !applies {
        return None;
    }

    let resource = resource_matches(statement, request, explain);
    applies &= resource.matched;
    if let Some(t) = trace.as_deref_mut() {
        t.resource = resource;
    } else if !applies {
        return None;
    }

    let grant = match &statement.principal {
        None => Some(Grant::Direct),
        Some(element) => {
            // "NotPrincipal" page: a Deny with NotPrincipal always denies a principal that
            // has a permissions boundary, whatever the element lists.
            let grant = if element.is_negated() && has_boundary && statement.effect == Effect::Deny
            {
                Some(Grant::Wildcard)
            } else {
                element.matches(&request.principal)
            };
            if let Some(t) = trace.as_deref_mut() {
                let name = if element.is_negated() {
                    "NotPrincipal"
                } else {
                    "Principal"
                };
                t.principal = Some(ElementTrace {
                    matched: grant.is_some(),
                    reason: match grant {
                        Some(g) => {
                            format!("{name} covers {} ({})", request.principal, grant_name(g))
                        }
                        None => format!("{name} does not cover {}", request.principal),
                    },
                });
            }
            grant
        }
    };
    applies &= grant.is_some();
    if !applies && !explain {
        return None;
    }

    let mut condition_traces = trace.as_deref_mut().map(|t| &mut t.conditions);
    for condition in &statement.conditions {
        let ok = condition.evaluate(
            &request.context,
            statement.effect == Effect::Deny,
            condition_traces.as_deref_mut(),
        );
        applies &= ok;
        if !ok && !explain {
            return None;
        }
    }
    if let Some(t) = trace {
        t.applies = applies;
    }
    if !applies {
        return None;
    }
    // "Policy evaluation logic" (IAM role principals): permissions boundaries and session
    // policies do not limit what a resource policy grants to "*" with an aws:PrincipalArn
    // condition, as for a grant by name.
    if grant == Some(Grant::Wildcard)
        && statement
            .principal
            .as_ref()
            .is_some_and(|p| !p.is_negated())
        && statement.conditions.iter().any(|c| {
            c.key().eq_ignore_ascii_case("aws:PrincipalArn") && !c.operator().kind.is_negated()
        })
    {
        return Some(Grant::Direct);
    }
    grant
}

/// The STS actions a role's trust policy must allow itself ("Policy evaluation logic": trust
/// policies "must explicitly allow access for principals").
fn needs_trust_policy(action_lower: &str) -> bool {
    matches!(
        action_lower,
        "sts:assumerole"
            | "sts:assumerolewithwebidentity"
            | "sts:assumerolewithsaml"
            | "sts:tagsession"
            | "sts:setsourceidentity"
            | "sts:setcontext"
    )
}

fn grant_name(grant: Grant) -> &'static str {
    match grant {
        Grant::Account => "by its account",
        Grant::Wildcard => "by wildcard",
        Grant::RoleArn => "by its role",
        Grant::Direct => "by name",
    }
}

fn action_matches(statement: &Statement, request: &Request, explain: bool) -> ElementTrace {
    let Some(element) = &statement.action else {
        return ElementTrace {
            matched: false,
            reason: if explain {
                "the statement has no Action".into()
            } else {
                String::new()
            },
        };
    };
    let hit = element.first_match(&request.action_lower);
    let matched = hit.is_some() != element.is_negated();
    let reason = if !explain {
        String::new()
    } else {
        match (hit, element.is_negated()) {
            (Some(p), false) => format!("Action {p:?} matches {:?}", request.action),
            (None, false) => format!("no Action pattern matches {:?}", request.action),
            (Some(p), true) => format!("NotAction {p:?} excludes {:?}", request.action),
            (None, true) => format!("{:?} is not excluded by NotAction", request.action),
        }
    };
    ElementTrace { matched, reason }
}

fn resource_matches(statement: &Statement, request: &Request, explain: bool) -> ElementTrace {
    let resource = request.resource_or_star();
    let Some(element) = &statement.resource else {
        return ElementTrace {
            matched: true,
            reason: if explain {
                "no Resource element: applies to any resource".into()
            } else {
                String::new()
            },
        };
    };
    let mut hit = None;
    let mut unresolved = None;
    for (pattern, text) in element.compiled() {
        match pattern.matches(resource, &request.context) {
            Ok(true) => {
                hit = Some(text);
                break;
            }
            Ok(false) => {}
            Err(e) => {
                unresolved.get_or_insert(e.key);
            }
        }
    }
    if let (true, None, Some(key)) = (element.is_negated(), hit, &unresolved) {
        // A NotResource whose variable cannot be resolved: an Allow does not apply, and a
        // Deny excludes nothing (the reading that refuses, where AWS says only that the
        // statement "might be invalid").
        let deny = statement.effect == Effect::Deny;
        return ElementTrace {
            matched: deny,
            reason: if explain {
                format!(
                    "policy variable ${{{key}}} in NotResource cannot be resolved from the request; {}",
                    if deny {
                        "the Deny excludes nothing"
                    } else {
                        "the Allow does not apply"
                    }
                )
            } else {
                String::new()
            },
        };
    }
    let matched = hit.is_some() != element.is_negated();
    let reason = if !explain {
        String::new()
    } else {
        let mut reason = match (hit, element.is_negated()) {
            (Some(p), false) => format!("Resource {p:?} matches {resource:?}"),
            (None, false) => format!("no Resource pattern matches {resource:?}"),
            (Some(p), true) => format!("NotResource {p:?} excludes {resource:?}"),
            (None, true) => format!("{resource:?} is not excluded by NotResource"),
        };
        if let (None, Some(key)) = (hit, unresolved) {
            reason.push_str(&format!(
                " (policy variable ${{{key}}} could not be resolved)"
            ));
        }
        reason
    };
    ElementTrace { matched, reason }
}

/// The result of one policy: its outcome and, for an `Allow`, the strongest grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PolicyResult {
    outcome: PolicyOutcome,
    grant: Option<Grant>,
}

fn evaluate_policy(
    policy: &Policy,
    request: &Request,
    has_boundary: bool,
    trace: Option<&mut PolicyTrace>,
) -> PolicyResult {
    let mut allow: Option<Grant> = None;
    let mut denied = false;
    match trace {
        None => {
            for statement in policy.statements() {
                if let Some(grant) = statement_applies(statement, request, has_boundary, None) {
                    match statement.effect {
                        Effect::Deny => {
                            return PolicyResult {
                                outcome: PolicyOutcome::Deny,
                                grant: None,
                            };
                        }
                        Effect::Allow => allow = allow.max(Some(grant)),
                    }
                }
            }
        }
        Some(trace) => {
            for (index, statement) in policy.statements().iter().enumerate() {
                let mut st = StatementTrace {
                    index,
                    sid: statement.sid.clone(),
                    effect: statement.effect.as_str(),
                    applies: false,
                    action: ElementTrace {
                        matched: false,
                        reason: String::new(),
                    },
                    resource: ElementTrace {
                        matched: false,
                        reason: String::new(),
                    },
                    principal: None,
                    conditions: Vec::new(),
                };
                if let Some(grant) =
                    statement_applies(statement, request, has_boundary, Some(&mut st))
                {
                    match statement.effect {
                        Effect::Deny => denied = true,
                        Effect::Allow => allow = allow.max(Some(grant)),
                    }
                }
                trace.statements.push(st);
            }
        }
    }
    let outcome = if denied {
        PolicyOutcome::Deny
    } else if allow.is_some() {
        PolicyOutcome::Allow
    } else {
        PolicyOutcome::NotApplicable
    };
    PolicyResult {
        outcome,
        grant: if denied { None } else { allow },
    }
}

impl Policy {
    /// What this one policy says about `request`: `Deny` if a `Deny` statement applies,
    /// `Allow` if only `Allow` statements apply, otherwise `NotApplicable`.
    ///
    /// This is the whole decision for a role's trust policy, whose principal (a federated
    /// identity or a service) has no policies of its own.
    pub fn evaluate(&self, request: &Request) -> PolicyOutcome {
        evaluate_policy(self, request, false, None).outcome
    }

    /// [`Policy::evaluate`] with a trace of every statement; `label` names the policy.
    pub fn explain(&self, request: &Request, label: &str) -> PolicyTrace {
        let mut trace = PolicyTrace {
            policy: label.to_owned(),
            id: self.id().map(str::to_owned),
            outcome: PolicyOutcome::NotApplicable,
            statements: Vec::new(),
        };
        trace.outcome = evaluate_policy(self, request, false, Some(&mut trace)).outcome;
        trace
    }
}

/// Every policy that bears on one request. Empty lists and `None` mean "not in play" (no
/// SCPs, no boundary, …), which is different from a policy that allows nothing.
#[derive(Debug, Clone, Default)]
pub struct PolicySet<'a> {
    /// Identity-based policies of the principal (inline and attached).
    pub identity: Vec<&'a Policy>,
    /// The resource's resource-based policy (a bucket policy, a role's trust policy, …).
    pub resource: Option<&'a Policy>,
    /// The principal's permissions boundary.
    pub permissions_boundary: Option<&'a Policy>,
    /// Session policies passed when the session was created.
    pub session: Vec<&'a Policy>,
    /// Service control policies, one list per level (root, OUs, account).
    pub service_control: Vec<Vec<&'a Policy>>,
    /// Resource control policies, one list per level.
    pub resource_control: Vec<Vec<&'a Policy>>,
    /// Evaluate only the policies given, as IAM's policy simulator does
    /// (`SimulatePrincipalPolicy`, `SimulateCustomPolicy`): without a resource policy, an STS
    /// assume action is not refused for want of a trust policy.
    pub simulator: bool,
}

/// Which kind of policy a [`Rule`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// An identity-based policy.
    Identity,
    /// The resource-based policy.
    Resource,
    /// The permissions boundary.
    Boundary,
    /// A session policy.
    Session,
    /// A service control policy.
    ServiceControl,
    /// A resource control policy.
    ResourceControl,
}

impl PolicyKind {
    /// As AWS names it in messages: `identity-based policy`, `permissions boundary`, …
    pub fn aws_name(self) -> &'static str {
        match self {
            Self::Identity => "identity-based policy",
            Self::Resource => "resource-based policy",
            Self::Boundary => "permissions boundary",
            Self::Session => "session policy",
            Self::ServiceControl => "service control policy",
            Self::ResourceControl => "resource control policy",
        }
    }
}

/// The rule of the evaluation logic that made a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// An explicit deny in a policy of this kind.
    Denied(PolicyKind),
    /// No resource control policy at this level allows.
    NoRcpAllow(usize),
    /// No service control policy at this level allows.
    NoScpAllow(usize),
    /// The resource-based policy names the requester, in the same account.
    ResourceDirect,
    /// Across accounts, the resource-based policy does not allow.
    CrossAccountNoResource,
    /// Across accounts, no identity-based policy allows.
    CrossAccountNoIdentity,
    /// Nothing allows.
    NothingAllows,
    /// The action needs no permission (`sts:GetCallerIdentity`).
    NoPermissionNeeded,
    /// A role's trust policy must allow an STS assume action itself, and does not.
    TrustPolicy,
    /// The permissions boundary does not allow.
    Boundary,
    /// No session policy allows.
    Session,
    /// Allowed.
    Allowed {
        /// An identity-based policy allowed.
        identity: bool,
        /// The resource-based policy allowed.
        resource: bool,
        /// The request crossed accounts.
        cross_account: bool,
    },
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Rule {
    fn describe(&self) -> String {
        match self {
            Self::Denied(kind) => {
                let article = match kind {
                    PolicyKind::Resource | PolicyKind::Boundary => "the",
                    PolicyKind::Identity => "an",
                    _ => "a",
                };
                format!("an explicit Deny in {article} {} applies", kind.aws_name())
            }
            Self::NoRcpAllow(level) => {
                format!("no resource control policy at level {level} allows the request")
            }
            Self::NoScpAllow(level) => {
                format!("no service control policy at level {level} allows the request")
            }
            Self::ResourceDirect => {
                "the resource-based policy allows the requester by name, in the same account".into()
            }
            Self::CrossAccountNoResource => {
                "cross-account request: the resource-based policy must allow the requester, and it does not".into()
            }
            Self::CrossAccountNoIdentity => {
                "cross-account request: an identity-based policy must also allow, and none does".into()
            }
            Self::NothingAllows => {
                "no identity-based or resource-based policy allows the request".into()
            }
            Self::TrustPolicy => {
                "the role's trust policy must allow the request itself, and it does not".into()
            }
            Self::NoPermissionNeeded => {
                "sts:GetCallerIdentity needs no permission, and no policy can deny it".into()
            }
            Self::Boundary => "the permissions boundary does not allow the request".into(),
            Self::Session => "no session policy allows the request".into(),
            Self::Allowed {
                identity,
                resource,
                cross_account,
            } => {
                let by = match (identity, resource) {
                    (true, true) => "identity-based and resource-based policies",
                    (true, false) => "an identity-based policy",
                    _ => "the resource-based policy",
                };
                if *cross_account {
                    format!("allowed across accounts by {by}")
                } else {
                    format!("allowed by {by}")
                }
            }
        }
    }
}

/// Runs one group of policies (all identity policies, one SCP level, …); combines outcomes.
fn group<'p>(
    policies: impl IntoIterator<Item = &'p Policy>,
    request: &Request,
    has_boundary: bool,
    traces: &mut Option<&mut Vec<PolicyTrace>>,
    label: &dyn Fn(usize) -> String,
) -> PolicyResult {
    let mut combined = PolicyResult {
        outcome: PolicyOutcome::NotApplicable,
        grant: None,
    };
    for (i, policy) in policies.into_iter().enumerate() {
        let result = match traces.as_deref_mut() {
            Some(traces) => {
                let mut trace = PolicyTrace {
                    policy: label(i),
                    id: policy.id().map(str::to_owned),
                    outcome: PolicyOutcome::NotApplicable,
                    statements: Vec::new(),
                };
                let result = evaluate_policy(policy, request, has_boundary, Some(&mut trace));
                trace.outcome = result.outcome;
                traces.push(trace);
                result
            }
            None => evaluate_policy(policy, request, has_boundary, None),
        };
        match result.outcome {
            PolicyOutcome::Deny => combined.outcome = PolicyOutcome::Deny,
            PolicyOutcome::Allow if combined.outcome != PolicyOutcome::Deny => {
                combined.outcome = PolicyOutcome::Allow;
                combined.grant = combined.grant.max(result.grant);
            }
            _ => {}
        }
    }
    combined
}

impl PolicySet<'_> {
    /// The decision for `request`.
    pub fn evaluate(&self, request: &Request) -> Decision {
        self.run(request, None).0
    }

    /// The decision and the rule that made it, without a trace.
    pub fn decide(&self, request: &Request) -> (Decision, Rule) {
        self.run(request, None)
    }

    /// The decision, the rule that made it, and a trace of every policy and statement.
    pub fn explain(&self, request: &Request) -> Explanation {
        let mut trace = Vec::new();
        let (decision, reason) = self.run(request, Some(&mut trace));
        Explanation {
            decision,
            reason: reason.describe(),
            trace,
        }
    }

    fn run(
        &self,
        request: &Request,
        mut traces: Option<&mut Vec<PolicyTrace>>,
    ) -> (Decision, Rule) {
        // "Policy evaluation logic": GetCallerIdentity needs no permission, and no policy
        // (not even an explicit deny) can refuse it.
        if request.action_lower == "sts:getcalleridentity" {
            return (Decision::Allow, Rule::NoPermissionNeeded);
        }
        let t = &mut traces;
        let b = self.permissions_boundary.is_some();
        let identity = group(self.identity.iter().copied(), request, b, t, &|i| {
            format!("identity[{i}]")
        });
        let resource = group(self.resource, request, b, t, &|_| "resource".into());
        let boundary = self
            .permissions_boundary
            .map(|p| group([p], request, b, t, &|_| "permissions_boundary".into()));
        let session = (!self.session.is_empty()).then(|| {
            group(self.session.iter().copied(), request, b, t, &|i| {
                format!("session[{i}]")
            })
        });
        // "Service control policies": SCPs restrict principals of the organization's
        // accounts; a request made without a principal (anonymous) is not subject to them.
        let anonymous = matches!(request.principal, crate::context::Principal::Anonymous);
        let scps: Vec<PolicyResult> = if anonymous {
            Vec::new()
        } else {
            self.service_control
                .iter()
                .enumerate()
                .map(|(level, ps)| {
                    group(ps.iter().copied(), request, b, t, &|i| {
                        format!("scp[{level}][{i}]")
                    })
                })
                .collect()
        };
        let rcps: Vec<PolicyResult> = self
            .resource_control
            .iter()
            .enumerate()
            .map(|(level, ps)| {
                group(ps.iter().copied(), request, b, t, &|i| {
                    format!("rcp[{level}][{i}]")
                })
            })
            .collect();

        let denied = |r: &PolicyResult| r.outcome == PolicyOutcome::Deny;
        let allows = |r: &PolicyResult| r.outcome == PolicyOutcome::Allow;
        let deny_source = [
            (denied(&identity), PolicyKind::Identity),
            (denied(&resource), PolicyKind::Resource),
            (boundary.as_ref().is_some_and(denied), PolicyKind::Boundary),
            (session.as_ref().is_some_and(denied), PolicyKind::Session),
            (scps.iter().any(denied), PolicyKind::ServiceControl),
            (rcps.iter().any(denied), PolicyKind::ResourceControl),
        ]
        .into_iter()
        .find(|(d, _)| *d);
        if let Some((_, kind)) = deny_source {
            return (Decision::ExplicitDeny, Rule::Denied(kind));
        }
        // "Resource control policies": AWS attaches RCPFullAWSAccess to every root, OU and
        // account, and it cannot be detached, so every RCP level allows; only a deny counts.
        if let Some(level) = scps.iter().position(|r| !allows(r)) {
            return (Decision::ImplicitDeny, Rule::NoScpAllow(level));
        }

        let trust_in_play = !(self.simulator && self.resource.is_none());
        if needs_trust_policy(&request.action_lower) && trust_in_play && !allows(&resource) {
            return (Decision::ImplicitDeny, Rule::TrustPolicy);
        }
        let grant = resource.grant.filter(|_| allows(&resource));
        // "Policy evaluation logic": the account root user has full access in its account,
        // limited only by explicit denies, SCPs and RCPs (checked above).
        let root = matches!(
            &request.principal,
            crate::context::Principal::Aws(p) if matches!(p.kind(), crate::context::AwsPrincipalKind::Root)
        );
        let identity_allows = allows(&identity) || root;
        let cross_account = match (request.principal.account(), request.owning_account()) {
            (Some(p), Some(r)) => p != r,
            _ => false,
        };
        if cross_account {
            if grant.is_none() {
                return (Decision::ImplicitDeny, Rule::CrossAccountNoResource);
            }
            if !identity_allows {
                return (Decision::ImplicitDeny, Rule::CrossAccountNoIdentity);
            }
        } else {
            if grant == Some(Grant::Direct) {
                return (Decision::Allow, Rule::ResourceDirect);
            }
            let via_resource = matches!(grant, Some(Grant::RoleArn | Grant::Wildcard));
            if !identity_allows && !via_resource {
                return (Decision::ImplicitDeny, Rule::NothingAllows);
            }
        }
        if boundary.as_ref().is_some_and(|b| !allows(b)) {
            return (Decision::ImplicitDeny, Rule::Boundary);
        }
        if session.as_ref().is_some_and(|s| !allows(s)) {
            return (Decision::ImplicitDeny, Rule::Session);
        }
        // GetFederationToken: "If you do not pass a policy to this operation, the resulting
        // federated user session has no permissions" (outside what a resource policy grants
        // it by name, handled above).
        let federated_user = matches!(
            &request.principal,
            crate::context::Principal::Aws(p) if matches!(p.kind(), crate::context::AwsPrincipalKind::FederatedUser)
        );
        if federated_user && session.is_none() {
            return (Decision::ImplicitDeny, Rule::Session);
        }
        (
            Decision::Allow,
            Rule::Allowed {
                identity: identity_allows,
                resource: grant.is_some(),
                cross_account,
            },
        )
    }
}
