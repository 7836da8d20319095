//! `SimulatePrincipalPolicy` and `SimulateCustomPolicy` on the policy engine.

use std::sync::Arc;

use podiam_policy::{
    AwsPrincipal, Context, ContextValue, Decision, Explanation, Policy, PolicyOutcome, PolicySet,
    Principal, Request,
};
use podiam_wire::{Api, QueryRequest, Validation, WireError, Xml, policy_error};

use super::arn;
use crate::query::{Ctx, Output};

/// A policy with the id the simulator reports for it.
#[derive(Debug)]
pub(crate) struct Named {
    /// The inline policy's name, the managed policy's ARN, or `PolicyInputList.N`.
    pub(crate) id: String,
    /// `IAM Policy`, `PermissionsBoundaryPolicy` or `Resource Policy`.
    pub(crate) kind: &'static str,
    policy: Arc<Policy>,
}

/// What a simulation evaluates: identity policies, a permissions boundary, a resource policy,
/// for a principal. `SimulatePrincipalPolicy`, `SimulateCustomPolicy` and the console's
/// simulator all decide through it.
#[derive(Debug)]
pub(crate) struct Simulation {
    identity: Vec<Named>,
    boundary: Vec<Named>,
    resource_policy: Option<Named>,
    principal: Principal,
}

impl Simulation {
    /// The policies of `source`, a user or role of this account, as `SimulatePrincipalPolicy`
    /// evaluates them; the caller must be allowed `iam:SimulatePrincipalPolicy` on it.
    pub(crate) fn of_principal(ctx: &Ctx<'_>, source: &str) -> Result<Self, WireError> {
        ctx.authorize("iam:SimulatePrincipalPolicy", source)?;
        let state = ctx.app.inner.iam.state();
        let mut identity = Vec::new();
        let mut boundary = Vec::new();
        let managed = |arns: &[String], out: &mut Vec<Named>| {
            for arn in arns {
                if let Some(p) = state.policy(arn).and_then(|p| p.default_policy()) {
                    out.push(Named {
                        id: arn.clone(),
                        kind: "IAM Policy",
                        policy: p,
                    });
                }
            }
        };
        let resource_name = source.rsplit('/').next().unwrap_or_default().to_owned();
        if source.contains(":role/") {
            let role = state
                .role(&resource_name)
                .filter(|r| state.role_arn(&r.record) == source)
                .ok_or_else(|| {
                    WireError::new(
                        "NoSuchEntity",
                        404,
                        format!("The role with name {resource_name} cannot be found."),
                    )
                })?;
            for (name, policy) in role.inline_named() {
                identity.push(Named {
                    id: name.to_owned(),
                    kind: "IAM Policy",
                    policy,
                });
            }
            managed(&role.record.attached, &mut identity);
            if let Some(b) = &role.record.boundary {
                managed(std::slice::from_ref(b), &mut boundary);
            }
        } else if source.contains(":user/") {
            let user = state
                .user(&resource_name)
                .filter(|u| state.user_arn(&u.record) == source)
                .ok_or_else(|| {
                    WireError::new(
                        "NoSuchEntity",
                        404,
                        format!("The user with name {resource_name} cannot be found."),
                    )
                })?;
            for (name, policy) in user.inline_named() {
                identity.push(Named {
                    id: name.to_owned(),
                    kind: "IAM Policy",
                    policy,
                });
            }
            managed(&user.record.attached, &mut identity);
            if let Some(b) = &user.record.boundary {
                managed(std::slice::from_ref(b), &mut boundary);
            }
        } else {
            return Err(WireError::new(
                "InvalidInput",
                400,
                format!("PolicySourceArn {source} must be a user or role of this account."),
            ));
        }
        Ok(Self {
            identity,
            boundary,
            resource_policy: None,
            principal: source
                .parse::<AwsPrincipal>()
                .map_or(Principal::Anonymous, Principal::Aws),
        })
    }

    /// The decision for `action` on `resource`, with every policy's and statement's trace.
    pub(crate) fn explain(
        &self,
        action: &str,
        resource: &str,
        context: &Context,
        owner: Option<&str>,
    ) -> Explanation {
        let set = PolicySet {
            identity: self.identity.iter().map(|n| n.policy.as_ref()).collect(),
            resource: self.resource_policy.as_ref().map(|n| n.policy.as_ref()),
            permissions_boundary: self.boundary.first().map(|n| n.policy.as_ref()),
            simulator: true,
            ..PolicySet::default()
        };
        let mut request = Request::new(action)
            .principal(self.principal.clone())
            .resource(resource)
            .context(context.clone());
        if let Some(owner) = owner {
            request = request.resource_account(owner);
        }
        set.explain(&request)
    }

    /// The policy a trace names (`identity[0]`, `permissions_boundary`, `resource`).
    pub(crate) fn source(&self, policy_label: &str) -> Option<&Named> {
        if policy_label == "resource" {
            return self.resource_policy.as_ref();
        }
        if policy_label == "permissions_boundary" {
            return self.boundary.first();
        }
        let index: usize = policy_label
            .strip_prefix("identity[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        self.identity.get(index)
    }
}

fn parse(text: &str) -> Result<Arc<Policy>, WireError> {
    Policy::parse(text)
        .map(Arc::new)
        .map_err(|e| policy_error(&e, Api::Iam))
}

fn inputs(q: &QueryRequest, param: &str, kind: &'static str) -> Result<Vec<Named>, WireError> {
    q.list(param)?
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Ok(Named {
                id: format!("{param}.{}", i + 1),
                kind,
                policy: parse(text)?,
            })
        })
        .collect()
}

/// `ContextEntries.member.N.{ContextKeyName, ContextKeyValues.member.M, ContextKeyType}`.
fn context(q: &QueryRequest) -> Result<Context, WireError> {
    let mut context = Context::new();
    for entry in q.structs("ContextEntries")? {
        let Some(name) = entry.get("ContextKeyName") else {
            return Err(WireError::validation(
                "ContextEntries: every entry needs a ContextKeyName",
            ));
        };
        let mut values: Vec<(u32, String)> = entry
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("ContextKeyValues.member.")
                    .and_then(|n| n.parse().ok())
                    .map(|n| (n, v.clone()))
            })
            .collect();
        values.sort_by_key(|(n, _)| *n);
        let values: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
        let is_list = entry
            .get("ContextKeyType")
            .is_some_and(|t| t.ends_with("List"));
        let value = match (is_list, values.len()) {
            (false, 1) => ContextValue::Single(values.into_iter().next().unwrap_or_default()),
            _ => ContextValue::Multi(values),
        };
        context.insert(name, value);
    }
    Ok(context)
}

/// The `EvalDecision` of a decision.
pub(crate) fn decision_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allowed",
        Decision::ExplicitDeny => "explicitDeny",
        Decision::ImplicitDeny => "implicitDeny",
    }
}

/// The most action × resource pairs one request may ask for (paged by `MaxItems`).
const MAX_PAIRS: usize = 10_000;

/// Runs one page (`MaxItems`, `Marker`) of every action × resource and writes
/// `EvaluationResults`.
fn simulate(simulation: &Simulation, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let actions = q.list("ActionNames")?;
    if actions.is_empty() {
        v.fail(
            "Value null at 'actionNames' failed to satisfy constraint: Member must not be null"
                .to_owned(),
        );
    }
    let mut resources = q.list("ResourceArns")?;
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let owner = q.get("ResourceOwner").map(str::to_owned);
    let total = actions.len().saturating_mul(resources.len());
    if total > MAX_PAIRS {
        v.fail(format!(
            "{} actions × {} resources is {total} simulations; at most {MAX_PAIRS} per request.",
            actions.len(),
            resources.len()
        ));
    }
    let max = v
        .integer(q, "MaxItems", 1, 1000)
        .map_or(100, |m| usize::try_from(m).unwrap_or(100));
    let start = match q.get("Marker") {
        None => 0,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if n > 0 && n < total => n,
            _ => {
                v.fail(format!(
                    "Invalid Marker: {m:?} is not a marker this service returned"
                ));
                0
            }
        },
    };
    v.finish()?;
    let context = context(q)?;
    let mut x = Xml::new();
    let mut pairs = Vec::new();
    for action in &actions {
        for resource in &resources {
            pairs.push((action, resource));
        }
    }
    let end = start.saturating_add(max).min(pairs.len());
    let page: Vec<_> = pairs.get(start..end).unwrap_or_default().to_vec();
    x.members("EvaluationResults", page, |x, (action, resource)| {
        let explanation = simulation.explain(action, resource, &context, owner.as_deref());
        x.text("EvalActionName", action)
            .text("EvalResourceName", resource)
            .text("EvalDecision", decision_name(explanation.decision));
        let wanted = match explanation.decision {
            Decision::ExplicitDeny => PolicyOutcome::Deny,
            _ => PolicyOutcome::Allow,
        };
        let matched: Vec<(&Named, usize)> = explanation
            .trace
            .iter()
            .filter(|p| p.outcome == wanted && explanation.decision != Decision::ImplicitDeny)
            .filter_map(|p| simulation.source(&p.policy).map(|n| (n, p)))
            .flat_map(|(n, p)| {
                p.statements
                    .iter()
                    .filter(|s| {
                        s.applies && (s.effect == "Deny") == (wanted == PolicyOutcome::Deny)
                    })
                    .map(move |s| (n, s.index))
            })
            .collect();
        x.members("MatchedStatements", matched, |x, (named, _)| {
            x.text("SourcePolicyId", &named.id)
                .text("SourcePolicyType", named.kind);
        });
        x.open("MissingContextValues").close("MissingContextValues");
    });
    if end < pairs.len() {
        x.text("IsTruncated", "true")
            .text("Marker", &end.to_string());
    } else {
        x.text("IsTruncated", "false");
    }
    Ok(Some(x))
}

pub(super) fn principal(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let source = arn(&mut v, q, "PolicySourceArn").to_owned();
    v.finish()?;
    let mut simulation = Simulation::of_principal(ctx, &source)?;
    simulation
        .identity
        .extend(inputs(q, "PolicyInputList", "IAM Policy")?);
    let overrides = inputs(
        q,
        "PermissionsBoundaryPolicyInputList",
        "PermissionsBoundaryPolicy",
    )?;
    if !overrides.is_empty() {
        simulation.boundary = overrides;
    }
    simulation.resource_policy = resource_policy(q)?;
    simulate(&simulation, q)
}

/// `ResourcePolicy`, when given.
fn resource_policy(q: &QueryRequest) -> Result<Option<Named>, WireError> {
    q.get("ResourcePolicy")
        .map(|t| {
            Ok(Named {
                id: "ResourcePolicy".into(),
                kind: "Resource Policy",
                policy: parse(t)?,
            })
        })
        .transpose()
}

pub(super) fn custom(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    ctx.authorize("iam:SimulateCustomPolicy", "*")?;
    let identity = inputs(q, "PolicyInputList", "IAM Policy")?;
    if identity.is_empty() {
        return Err(WireError::validation(
            "1 validation error detected: Value null at 'policyInputList' failed to satisfy constraint: Member must not be null",
        ));
    }
    let boundary = inputs(
        q,
        "PermissionsBoundaryPolicyInputList",
        "PermissionsBoundaryPolicy",
    )?;
    let principal = q
        .get("CallerArn")
        .and_then(|arn| arn.parse::<AwsPrincipal>().ok())
        .map_or(Principal::Anonymous, Principal::Aws);
    let simulation = Simulation {
        identity,
        boundary,
        resource_policy: resource_policy(q)?,
        principal,
    };
    simulate(&simulation, q)
}
