//! `who`: every workload identity that can perform an action on a resource.

use podiam_iam::Caller;
use serde::Serialize;

use crate::paths::{Path, PathKind, Workload, all_paths, and};
use crate::snapshot::Snapshot;
use crate::verdict::{Denial, OpenCondition, Outcome, Verdict};

/// One workload identity and what the engine says of its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhoEntry {
    /// Cluster, namespace, service account (or patterns).
    #[serde(flatten)]
    pub workload: Workload,
    /// How the workload gets the role.
    pub path: PathKind,
    /// The role it acts as.
    pub role_arn: String,
    /// The first role of a chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The association, for Pod Identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub association_id: Option<String>,
    /// `Allow`, `ConditionalAllow` or `ExplicitDeny`.
    pub decision: Outcome,
    /// What is still open for a `ConditionalAllow` (the trust's and the permissions').
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_conditions: Vec<OpenCondition>,
    /// The denying statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<Denial>,
}

/// The answer to `who`.
#[derive(Debug, Clone, Serialize)]
pub struct WhoReport {
    /// The action asked about.
    pub action: String,
    /// The resource asked about.
    pub resource: String,
    /// Every workload that may (or is explicitly denied), by cluster, namespace, account.
    pub entries: Vec<WhoEntry>,
    /// Where the answer over-approximates, and why.
    pub notes: Vec<String>,
}

/// Readable names for the policy labels of the engine's trace (`identity[0]` → the inline
/// policy's name or the managed policy's ARN).
pub(crate) fn policy_names(snap: &Snapshot<'_>, caller: &Caller) -> Vec<(String, String)> {
    let mut names = Vec::new();
    if let Caller::Session {
        role: Some(role), ..
    } = caller
    {
        let role_name = &role.record.name;
        let mut i = 0;
        for (name, _) in role.inline_named() {
            names.push((
                format!("identity[{i}]"),
                format!("{role_name} inline policy {name}"),
            ));
            i += 1;
        }
        for arn in &role.record.attached {
            if snap
                .iam
                .policy(arn)
                .and_then(|p| p.default_policy())
                .is_some()
            {
                names.push((format!("identity[{i}]"), arn.clone()));
                i += 1;
            }
        }
        if let Some(boundary) = &role.record.boundary {
            names.push((
                "permissions_boundary".to_owned(),
                format!("permissions boundary {boundary}"),
            ));
        }
        names.push((
            "session[0]".to_owned(),
            "the association's session policy".to_owned(),
        ));
    }
    names
}

pub(crate) fn rename(verdict: &mut Verdict, names: &[(String, String)], resource: &str) {
    let name = |label: &mut String| {
        if let Some((_, n)) = names.iter().find(|(l, _)| l == label) {
            label.clone_from(n);
        } else if label == "resource" {
            *label = resource.to_owned();
        }
    };
    for c in &mut verdict.open_conditions {
        name(&mut c.policy);
    }
    if let Some(d) = &mut verdict.denied_by {
        name(&mut d.policy);
    }
}

/// What a path's session may do: the engine's answer, the path's own trust conditions added.
pub(crate) fn path_permits(
    snap: &Snapshot<'_>,
    path: &Path,
    action: &str,
    resource: &str,
) -> Verdict {
    // A role is a resource with a policy of its own: its trust policy.
    // Only a role the caller may read: a hidden one is as good as missing.
    let held = snap.role(resource);
    let resource_policy = held.as_ref().and_then(|r| r.trust());
    let mut verdict = snap.permits(&path.caller, action, resource, resource_policy.as_deref());
    rename(
        &mut verdict,
        &policy_names(snap, &path.caller),
        &format!("resource policy of {resource}"),
    );
    let mut trust = path.trust.clone();
    rename(
        &mut trust,
        &[],
        &format!("trust policy of {}", path.role_arn),
    );
    if verdict.outcome == Outcome::ExplicitDeny {
        return verdict;
    }
    and(&trust, verdict)
}

/// Every workload identity that can perform `action` on `resource`, in `cluster` or all.
pub fn who(snap: &Snapshot<'_>, action: &str, resource: &str, cluster: Option<&str>) -> WhoReport {
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    for path in all_paths(snap, cluster) {
        let verdict = path_permits(snap, &path, action, resource);
        if verdict.outcome == Outcome::ImplicitDeny {
            continue;
        }
        entries.push(WhoEntry {
            workload: path.workload,
            path: path.kind,
            role_arn: path.role_arn,
            via: path.via,
            association_id: path.association_id,
            decision: verdict.outcome,
            open_conditions: verdict.open_conditions,
            denied_by: verdict.denied_by,
        });
    }
    entries.sort_by(|a, b| {
        (&a.workload, a.path, &a.role_arn).cmp(&(&b.workload, b.path, &b.role_arn))
    });
    if entries.iter().any(|e| e.workload.pattern) {
        notes.push("An entry with a pattern stands for every service account it matches (over-approximation: the cluster may have none).".to_owned());
    }
    if entries
        .iter()
        .any(|e| e.decision == Outcome::ConditionalAllow)
    {
        notes.push("ConditionalAllow: allowed when the open conditions hold; their keys (a pod's name, the client's address, a resource's tags, …) are not known before the call.".to_owned());
    }
    if entries.iter().any(|e| e.path == PathKind::Irsa) {
        notes.push("IRSA: a pod gets the role when its service account is annotated with it (eks.amazonaws.com/role-arn); the trust alone is shown here.".to_owned());
    }
    if entries.iter().any(|e| e.path == PathKind::Node) {
        notes.push("node: any pod on a node whose IMDS serves the role, in any cluster that node belongs to.".to_owned());
    }
    WhoReport {
        action: action.to_owned(),
        resource: resource.to_owned(),
        entries,
        notes,
    }
}
