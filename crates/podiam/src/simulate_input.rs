//! The input document of `podiam policy simulate`.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use podiam_policy::{
    AwsPrincipal, Context, ContextValue, Policy, PolicySet, PolicyType, Principal, Request,
    validate,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::policy_cmd::parse_policy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput<'a> {
    #[serde(borrow, default)]
    identity_policies: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    resource_policy: Option<&'a RawValue>,
    #[serde(borrow, default)]
    permissions_boundary: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session_policy: Option<&'a RawValue>,
    #[serde(borrow, default)]
    service_control_policies: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resource_control_policies: Option<&'a RawValue>,
    request: RawRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default)]
    principal: Option<RawPrincipal>,
    action: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    resource_account: Option<String>,
    #[serde(default)]
    context: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrincipal {
    Text(String),
    Typed(BTreeMap<String, String>),
}

/// A parsed simulation: the policies and the request.
pub(crate) struct SimulateInput {
    identity: Vec<Policy>,
    resource: Option<Policy>,
    boundary: Option<Policy>,
    session: Option<Policy>,
    scp_levels: Vec<Vec<Policy>>,
    rcp_levels: Vec<Vec<Policy>>,
    request: Request,
    warnings: Vec<String>,
}

/// The text of a POLICY: an object as written, or the content of a string.
fn policy_text(what: &str, raw: &RawValue) -> anyhow::Result<String> {
    let text = raw.get().trim_start();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).with_context(|| format!("{what}: bad string"))
    } else if text.starts_with('{') {
        Ok(text.to_owned())
    } else {
        bail!("{what} must be a policy object or a string holding one")
    }
}

fn levels<'a>(what: &str, raw: &'a RawValue) -> anyhow::Result<Vec<Vec<&'a RawValue>>> {
    let items: Vec<&RawValue> = serde_json::from_str(raw.get())
        .with_context(|| format!("{what} must be a list of policies or a list of lists"))?;
    let nested = items
        .iter()
        .filter(|i| i.get().trim_start().starts_with('['))
        .count();
    if nested == 0 {
        return Ok(if items.is_empty() {
            Vec::new()
        } else {
            vec![items]
        });
    }
    if nested != items.len() {
        bail!("{what} mixes policies and lists of policies; give a flat list or a list of levels");
    }
    items
        .iter()
        .map(|level| {
            serde_json::from_str::<Vec<&RawValue>>(level.get())
                .with_context(|| format!("{what}: every level must be a list of policies"))
        })
        .collect()
}

fn principal(raw: RawPrincipal) -> anyhow::Result<Principal> {
    match raw {
        RawPrincipal::Text(text) => Ok(text.parse()?),
        RawPrincipal::Typed(map) => {
            let mut entries = map.into_iter();
            let (Some((kind, value)), None) = (entries.next(), entries.next()) else {
                bail!(
                    "request.principal must have exactly one member, such as {{\"Federated\": \"arn:…\"}}"
                );
            };
            Ok(match kind.as_str() {
                "AWS" => Principal::Aws(value.parse::<AwsPrincipal>()?),
                "Federated" => Principal::Federated(value),
                "Service" => Principal::Service(value),
                "CanonicalUser" => Principal::CanonicalUser(value),
                other => bail!(
                    "request.principal: unknown type {other:?}; expected AWS, Federated, Service or CanonicalUser"
                ),
            })
        }
    }
}

fn context_value(key: &str, value: serde_json::Value) -> anyhow::Result<ContextValue> {
    fn scalar(key: &str, value: serde_json::Value) -> anyhow::Result<String> {
        Ok(match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => bail!(
                "request.context.{key}: values are strings (or numbers and booleans), not {other}"
            ),
        })
    }
    match value {
        serde_json::Value::Array(items) => Ok(ContextValue::Multi(
            items
                .into_iter()
                .map(|v| scalar(key, v))
                .collect::<anyhow::Result<_>>()?,
        )),
        other => scalar(key, other).map(ContextValue::Single),
    }
}

impl SimulateInput {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let raw: RawInput<'_> = serde_json::from_str(text).context("the input is not valid")?;
        let warnings = Vec::new();
        // A policy AWS would refuse where it is used is invalid input, as it is on the wire
        // (MalformedPolicyDocument): evaluating it anyway could allow what AWS never would.
        let load =
            |what: String, raw: &RawValue, kind: Option<PolicyType>| -> anyhow::Result<Policy> {
                let policy = parse_policy(&what, &policy_text(&what, raw)?)?;
                if let Some(kind) = kind {
                    let problems: Vec<String> = validate(&policy, kind)
                        .into_iter()
                        .map(|p| p.to_string())
                        .collect();
                    if !problems.is_empty() {
                        bail!(
                            "{what} is not a valid {kind} policy (MalformedPolicyDocument): {}",
                            problems.join("; ")
                        );
                    }
                }
                Ok(policy)
            };
        // The resource-based policy of an STS assume action is the role's trust policy.
        let resource_kind = {
            let action = raw.request.action.to_ascii_lowercase();
            if action.starts_with("sts:assumerole")
                || matches!(
                    action.as_str(),
                    "sts:tagsession" | "sts:setsourceidentity" | "sts:setcontext"
                )
            {
                PolicyType::Trust
            } else {
                PolicyType::Resource
            }
        };
        let identity = raw
            .identity_policies
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                load(
                    format!("identity_policies[{i}]"),
                    p,
                    Some(PolicyType::Identity),
                )
            })
            .collect::<anyhow::Result<_>>()?;
        let resource = raw
            .resource_policy
            .map(|p| load("resource_policy".into(), p, Some(resource_kind)))
            .transpose()?;
        let boundary = raw
            .permissions_boundary
            .map(|p| load("permissions_boundary".into(), p, Some(PolicyType::Boundary)))
            .transpose()?;
        let session = raw
            .session_policy
            .map(|p| load("session_policy".into(), p, Some(PolicyType::Session)))
            .transpose()?;
        let load_levels = |what: &str,
                           raw: Option<&RawValue>,
                           kind: Option<PolicyType>|
         -> anyhow::Result<Vec<Vec<Policy>>> {
            let Some(raw) = raw else {
                return Ok(Vec::new());
            };
            levels(what, raw)?
                .into_iter()
                .enumerate()
                .map(|(l, level)| {
                    level
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| load(format!("{what}[{l}][{i}]"), p, kind))
                        .collect()
                })
                .collect()
        };
        let scp_levels = load_levels(
            "service_control_policies",
            raw.service_control_policies,
            Some(PolicyType::Scp),
        )?;
        let rcp_levels = load_levels(
            "resource_control_policies",
            raw.resource_control_policies,
            Some(PolicyType::Rcp),
        )?;

        let request = raw.request;
        if !request.action.contains(':') {
            bail!(
                "request.action {:?} must have the form service:Action, such as s3:GetObject",
                request.action
            );
        }
        let mut built = Request::new(&request.action);
        if let Some(p) = request.principal {
            built = built.principal(principal(p)?);
        }
        if let Some(resource) = &request.resource {
            built = built.resource(resource);
        }
        if let Some(account) = &request.resource_account {
            built = built.resource_account(account);
        }
        let mut context = Context::new();
        for (key, value) in request.context {
            let value = context_value(&key, value)?;
            context.insert(&key, value);
        }
        built = built.context(context);

        Ok(Self {
            identity,
            resource,
            boundary,
            session,
            scp_levels,
            rcp_levels,
            request: built,
            warnings,
        })
    }

    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn policy_set(&self) -> PolicySet<'_> {
        PolicySet {
            identity: self.identity.iter().collect(),
            resource: self.resource.as_ref(),
            permissions_boundary: self.boundary.as_ref(),
            session: self.session.iter().collect(),
            service_control: self.scp_levels.iter().map(|l| l.iter().collect()).collect(),
            resource_control: self.rcp_levels.iter().map(|l| l.iter().collect()).collect(),
            // The decision AWS makes, not its policy simulator's: a missing trust policy denies.
            simulator: false,
        }
    }
}
