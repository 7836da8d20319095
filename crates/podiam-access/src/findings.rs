//! `findings`: problems in the stored state, each with a stable code, a severity, the object
//! and a fix. Trust checks ask the engine (the same requests STS asks); the rest read the
//! policy documents' statements.

use std::collections::BTreeSet;
use std::sync::Arc;

use podiam_eks::AssociationRecord;
use podiam_iam::RoleEntry;
use podiam_policy::{Effect, Policy, PrincipalType, Statement, wildcard_match};
use podiam_sts::WebIdentityTrust;
use serde::Serialize;

use crate::paths::{
    all_paths, association_trust, condition_values, federated_providers, judge_trust,
};
use crate::snapshot::Snapshot;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Likely a mistake or too broad.
    Warning,
    /// Broken, or open to workloads it should not be.
    Error,
}

impl Severity {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable code (`trust-public`, …).
    pub code: &'static str,
    /// How bad.
    pub severity: Severity,
    /// The object: a role or association ARN.
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// What to look at.
#[derive(Clone, Copy)]
pub struct FindingsOptions<'a> {
    /// Only this cluster's associations and the roles its workloads reach.
    pub cluster: Option<&'a str>,
    /// `role-unused` after this many days without credentials issued.
    pub unused_days: u32,
    /// Whether a role ARN is in an upstream AWS account (AWS holds it, not podiam).
    pub upstream: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for FindingsOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindingsOptions")
            .field("cluster", &self.cluster)
            .field("unused_days", &self.unused_days)
            .finish_non_exhaustive()
    }
}

/// A service account no trust should name by accident: if a trust lets it in, it lets in
/// every service account of the issuer.
const PROBE_SUBJECT: &str = "system:serviceaccount:podiam-probe-5c1d:podiam-probe-5c1d";

fn allows_web_identity(statement: &Statement) -> bool {
    statement.effect() == Effect::Allow
        && statement.action().is_some_and(|a| {
            let hit = a
                .patterns()
                .iter()
                .any(|p| wildcard_match(&p.to_ascii_lowercase(), "sts:assumerolewithwebidentity"));
            hit != a.is_negated()
        })
}

fn allows_everyone(statement: &Statement) -> bool {
    statement.effect() == Effect::Allow
        && statement.principal().is_some_and(|p| {
            !p.is_negated()
                && (p.is_everyone()
                    || p.entries().iter().any(|e| {
                        e.kind() == PrincipalType::Aws && e.values().iter().any(|v| v == "*")
                    }))
        })
        && statement.conditions().is_empty()
}

fn statement_name(statement: &Statement, index: usize) -> String {
    statement.sid().map_or_else(
        || format!("statement #{index}"),
        |s| format!("statement {s:?}"),
    )
}

fn trust_findings(
    snap: &Snapshot<'_>,
    role: &RoleEntry,
    cluster: Option<&str>,
    out: &mut Vec<Finding>,
) {
    let Some(trust) = role.trust() else {
        return;
    };
    let arn = snap.iam.role_arn(&role.record);
    for (i, statement) in trust.statements().iter().enumerate() {
        let which = statement_name(statement, i);
        if allows_everyone(statement) && cluster.is_none() {
            out.push(Finding {
                code: "trust-public",
                severity: Severity::Error,
                object: arn.clone(),
                message: format!("the trust policy's {which} allows any principal (\"*\") with no condition"),
                fix: "name the principals that may assume the role, or narrow the statement with a condition such as aws:PrincipalAccount".to_owned(),
            });
        }
        if !allows_web_identity(statement) {
            continue;
        }
        for (url, provider_arn) in federated_providers(statement) {
            let owner = snap.issuer_owner(&url);
            if cluster.is_some_and(|c| owner.as_deref() != Some(c)) {
                continue;
            }
            if snap.provider_exists(&url, &provider_arn) == Some(false) {
                out.push(Finding {
                    code: "irsa-provider-missing",
                    severity: Severity::Error,
                    object: arn.clone(),
                    message: format!("the trust policy's {which} names OIDC provider {provider_arn}, which does not exist; no token can assume the role"),
                    fix: format!("create the provider (aws iam create-open-id-connect-provider --url https://{url} --client-id-list sts.amazonaws.com), or fix the ARN"),
                });
                continue;
            }
            let audiences = condition_values(statement, &format!("{url}:aud"));
            if audiences.is_empty() {
                out.push(Finding {
                    code: "trust-no-audience",
                    severity: Severity::Warning,
                    object: arn.clone(),
                    message: format!("the trust policy's {which} trusts {provider_arn} without a condition on {url}:aud"),
                    fix: format!("add \"StringEquals\": {{\"{url}:aud\": \"sts.amazonaws.com\"}}"),
                });
            }
            let subjects = condition_values(statement, &format!("{url}:sub"));
            let open_to_all = subjects.is_empty() || {
                let requests = WebIdentityTrust {
                    provider_arn: &provider_arn,
                    provider_url: &url,
                    subject: PROBE_SUBJECT,
                    audience: audiences.first().copied().unwrap_or("sts.amazonaws.com"),
                    amr: None,
                    role_arn: &arn,
                    session_name: None,
                    tags: &[],
                }
                .requests(&snap.facts());
                judge_trust(&trust, &requests).allows()
            };
            if open_to_all {
                let how = if subjects.is_empty() {
                    "has no condition on the token's sub".to_owned()
                } else {
                    format!(
                        "lets any service account's sub match ({})",
                        subjects.join(", ")
                    )
                };
                out.push(Finding {
                    code: "trust-any-service-account",
                    severity: Severity::Error,
                    object: arn.clone(),
                    message: format!("the trust policy's {which} trusts {provider_arn} and {how}: every service account of the issuer can assume the role"),
                    fix: format!("add \"StringEquals\": {{\"{url}:sub\": \"system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT\"}}"),
                });
            }
        }
    }
}

fn permission_findings(snap: &Snapshot<'_>, role: &RoleEntry, out: &mut Vec<Finding>) {
    let arn = snap.iam.role_arn(&role.record);
    let probe_role = format!(
        "arn:{}:iam::{}:role/podiam-probe-5c1d",
        snap.iam.partition(),
        snap.iam.account()
    );
    let mut policies: Vec<(String, Arc<Policy>)> = role
        .inline_named()
        .into_iter()
        .map(|(n, p)| (format!("inline policy {n}"), p))
        .collect();
    for managed in &role.record.attached {
        if let Some(p) = snap.iam.policy(managed).and_then(|p| p.default_policy()) {
            policies.push((managed.clone(), p));
        }
    }
    for (name, policy) in &policies {
        for (i, statement) in policy.statements().iter().enumerate() {
            if statement.effect() != Effect::Allow {
                continue;
            }
            let (Some(action), Some(resource)) = (statement.action(), statement.resource()) else {
                continue;
            };
            if action.is_negated() || resource.is_negated() {
                continue;
            }
            let every_resource = resource.patterns().iter().any(|r| r == "*");
            let which = statement_name(statement, i);
            let admin = every_resource && action.patterns().iter().any(|a| a == "*" || a == "*:*");
            if admin {
                out.push(Finding {
                    code: "permission-admin",
                    severity: Severity::Warning,
                    object: arn.clone(),
                    message: format!("{name}, {which}, allows every action (\"*\") on every resource (\"*\")"),
                    fix: "grant the actions and resources the workload uses; podiam access what shows what it has".to_owned(),
                });
                continue;
            }
            let passes_role = action
                .patterns()
                .iter()
                .any(|a| wildcard_match(&a.to_ascii_lowercase(), "iam:passrole"));
            let any_role = resource
                .patterns()
                .iter()
                .any(|r| wildcard_match(r, &probe_role));
            if passes_role && any_role {
                out.push(Finding {
                    code: "passrole-wildcard",
                    severity: Severity::Warning,
                    object: arn.clone(),
                    message: format!("{name}, {which}, allows iam:PassRole on any role ({})", resource.patterns().join(", ")),
                    fix: "name the roles that may be passed, and add a condition on iam:PassedToService".to_owned(),
                });
            }
        }
    }
}

fn unused_finding(snap: &Snapshot<'_>, role: &RoleEntry, days: u32, out: &mut Vec<Finding>) {
    let horizon = snap.now.unix_timestamp() - i64::from(days) * 86_400;
    let last = snap.iam.role_last_used(&role.record.id);
    let (stale, since) = match &last {
        Some(used) => (
            used.date < horizon,
            format!("last used {}", date(used.date)),
        ),
        None => (
            role.record.created < horizon,
            format!(
                "never used since it was created {}",
                date(role.record.created)
            ),
        ),
    };
    if stale {
        out.push(Finding {
            code: "role-unused",
            severity: Severity::Info,
            object: snap.iam.role_arn(&role.record),
            message: format!(
                "no credentials issued for the role for more than {days} days ({since})"
            ),
            fix: "delete the role if nothing needs it, or remove the paths to it".to_owned(),
        });
    }
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn association_findings(
    snap: &Snapshot<'_>,
    a: &AssociationRecord,
    arn: &str,
    upstream: &dyn Fn(&str) -> bool,
    out: &mut Vec<Finding>,
) {
    let roles = std::iter::once(&a.role_arn).chain(a.target_role_arn.iter());
    for role_arn in roles {
        // Whether a role exists is GetRole's to tell: only for a caller who may GetRole it.
        if upstream(role_arn) {
            return;
        }
        let held = snap.iam.role_by_arn(role_arn);
        let tags = held.as_ref().map_or(&[][..], |r| &r.record.tags[..]);
        if !(snap.role_visible)(role_arn, tags) {
            return;
        }
        if held.is_some() {
            continue;
        }
        out.push(Finding {
            code: "association-role-missing",
            severity: Severity::Error,
            object: arn.to_owned(),
            message: format!("the association of {}/{} names role {role_arn}, which does not exist; its pods get no credentials", a.namespace, a.service_account),
            fix: "create the role, or point the association at an existing one (aws eks update-pod-identity-association)".to_owned(),
        });
        return;
    }
    if upstream(&a.role_arn) {
        return;
    }
    let Some(role) = snap.role(&a.role_arn) else {
        return;
    };
    let trusted = role
        .trust()
        .is_some_and(|trust| association_trust(snap, a, &a.role_arn, &trust).allows());
    if !trusted {
        let actions = if a.disable_session_tags {
            "sts:AssumeRole"
        } else {
            "sts:AssumeRole and sts:TagSession"
        };
        out.push(Finding {
            code: "association-trust-mismatch",
            severity: Severity::Error,
            object: arn.to_owned(),
            message: format!("role {} does not trust pods.eks.amazonaws.com with {actions} for this association; pods of {}/{} would fail at run time", a.role_arn, a.namespace, a.service_account),
            fix: "allow {\"Service\": \"pods.eks.amazonaws.com\"} with [\"sts:AssumeRole\", \"sts:TagSession\"] in the role's trust policy".to_owned(),
        });
    }
}

/// Every finding, most severe first.
pub fn findings(snap: &Snapshot<'_>, options: &FindingsOptions<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for entry in snap.eks.associations() {
        let a = &entry.record;
        if options.cluster.is_some_and(|c| c != a.cluster) || !(snap.association_visible)(a) {
            continue;
        }
        let arn = format!(
            "arn:{}:eks:{}:{}:podidentityassociation/{}/{}",
            snap.iam.partition(),
            snap.region,
            snap.iam.account(),
            a.cluster,
            a.id
        );
        association_findings(snap, a, &arn, options.upstream, &mut out);
    }
    // With a cluster: the roles its workloads reach, and the trusts of its issuer.
    let reached: Option<BTreeSet<String>> = options.cluster.map(|c| {
        all_paths(snap, Some(c))
            .into_iter()
            .map(|p| p.role_arn)
            .collect()
    });
    for role in snap.roles() {
        trust_findings(snap, role, options.cluster, &mut out);
        let arn = snap.iam.role_arn(&role.record);
        if reached.as_ref().is_some_and(|r| !r.contains(&arn)) {
            continue;
        }
        permission_findings(snap, role, &mut out);
        unused_finding(snap, role, options.unused_days, &mut out);
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(b.code))
            .then(a.object.cmp(&b.object))
    });
    out
}
