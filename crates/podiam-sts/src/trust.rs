//! The requests a role's trust policy must allow, for a service principal (EKS Pod Identity)
//! and for a web identity (IRSA). STS asks them before it issues credentials; access analysis
//! asks the very same ones without issuing anything.

use podiam_iam::RequestFacts;
use podiam_policy::{Context, ContextValue, Decision, Policy, PolicySet, Principal, Request, Rule};

/// A service principal assuming a role for a workload.
#[derive(Debug, Clone, Copy)]
pub struct ServiceTrust<'a> {
    /// The service principal, e.g. `pods.eks.amazonaws.com`.
    pub service: &'a str,
    /// The role.
    pub role_arn: &'a str,
    /// `aws:SourceAccount`.
    pub source_account: &'a str,
    /// `aws:SourceArn`, e.g. the cluster ARN.
    pub source_arn: &'a str,
    /// `sts:RoleSessionName`; `None` when it is not known yet (analysis).
    pub session_name: Option<&'a str>,
    /// The session tags.
    pub tags: &'a [(String, String)],
}

/// A web identity (an OIDC token) assuming a role.
#[derive(Debug, Clone, Copy)]
pub struct WebIdentityTrust<'a> {
    /// The OIDC provider's ARN (the `Federated` principal).
    pub provider_arn: &'a str,
    /// The provider's URL without its scheme: the prefix of `…:sub` and `…:aud`.
    pub provider_url: &'a str,
    /// The token's `sub`.
    pub subject: &'a str,
    /// The audience the token was accepted for.
    pub audience: &'a str,
    /// The token's `amr`, if any.
    pub amr: Option<&'a [String]>,
    /// The role.
    pub role_arn: &'a str,
    /// `sts:RoleSessionName`; `None` when it is not known yet (analysis).
    pub session_name: Option<&'a str>,
    /// Session tags from the token.
    pub tags: &'a [(String, String)],
}

/// The time, transport and region keys of a request.
fn insert_time_keys(context: &mut Context, facts: &RequestFacts) {
    let now = facts.now;
    context.insert(
        "aws:CurrentTime",
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    context.insert("aws:EpochTime", now.unix_timestamp().to_string());
    context.insert("aws:SecureTransport", facts.secure_transport.to_string());
    context.insert("aws:RequestedRegion", facts.region.as_str());
    if let Some(ip) = &facts.source_ip {
        context.insert("aws:SourceIp", ip.as_str());
    }
    if let Some(agent) = &facts.user_agent {
        context.insert("aws:UserAgent", agent.as_str());
    }
}

/// `aws:RequestTag/…` and `aws:TagKeys`.
fn tag_keys(context: &mut Context, tags: &[(String, String)]) {
    for (k, v) in tags {
        context.insert(&format!("aws:RequestTag/{k}"), v.as_str());
    }
    if !tags.is_empty() {
        context.insert(
            "aws:TagKeys",
            ContextValue::Multi(tags.iter().map(|(k, _)| k.clone()).collect()),
        );
    }
}

/// `sts:AssumeRole…`, then `sts:TagSession` when there are tags.
fn requests(
    assume: &str,
    principal: &Principal,
    role_arn: &str,
    tags: bool,
    context: &Context,
) -> Vec<Request> {
    let mut actions = vec![assume];
    if tags {
        actions.push("sts:TagSession");
    }
    actions
        .into_iter()
        .map(|action| {
            Request::new(action)
                .principal(principal.clone())
                .resource(role_arn)
                .context(context.clone())
        })
        .collect()
}

impl ServiceTrust<'_> {
    /// What the role's trust policy is asked: `sts:AssumeRole`, and `sts:TagSession` with tags.
    pub fn requests(&self, facts: &RequestFacts) -> Vec<Request> {
        let mut context = Context::new();
        insert_time_keys(&mut context, facts);
        context.insert("aws:SourceAccount", self.source_account);
        context.insert("aws:SourceArn", self.source_arn);
        if let Some(name) = self.session_name {
            context.insert("sts:RoleSessionName", name);
        }
        tag_keys(&mut context, self.tags);
        requests(
            "sts:AssumeRole",
            &Principal::Service(self.service.to_owned()),
            self.role_arn,
            !self.tags.is_empty(),
            &context,
        )
    }
}

impl WebIdentityTrust<'_> {
    /// What the role's trust policy is asked: `sts:AssumeRoleWithWebIdentity`, and
    /// `sts:TagSession` with tags.
    pub fn requests(&self, facts: &RequestFacts) -> Vec<Request> {
        let mut context = Context::new();
        insert_time_keys(&mut context, facts);
        let url = self.provider_url;
        context.insert(&format!("{url}:sub"), self.subject);
        context.insert(&format!("{url}:aud"), self.audience);
        if let Some(amr) = self.amr {
            context.insert(&format!("{url}:amr"), ContextValue::Multi(amr.to_vec()));
        }
        context.insert("aws:FederatedProvider", self.provider_arn);
        if let Some(name) = self.session_name {
            context.insert("sts:RoleSessionName", name);
        }
        tag_keys(&mut context, self.tags);
        requests(
            "sts:AssumeRoleWithWebIdentity",
            &Principal::Federated(self.provider_arn.to_owned()),
            self.role_arn,
            !self.tags.is_empty(),
            &context,
        )
    }
}

/// Whether `trust` allows every request; else the first refused action and the rule.
pub fn trust_allows(trust: &Policy, requests: &[Request]) -> Result<(), (String, Rule)> {
    let set = PolicySet {
        resource: Some(trust),
        ..PolicySet::default()
    };
    for request in requests {
        let (decision, rule) = set.decide(request);
        if decision != Decision::Allow {
            return Err((request.action().to_owned(), rule));
        }
    }
    Ok(())
}
