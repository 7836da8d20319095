//! `what`: the roles a service account can get, which one its SDK uses, and what that role
//! may do, summarised by service.

use std::collections::BTreeMap;

use podiam_iam::Caller;
use podiam_policy::{Effect, Policy};
use serde::Serialize;

use crate::paths::{
    PathKind, association_trust, irsa_paths, node_identities, node_path, pod_identity_path,
};
use crate::snapshot::Snapshot;
use crate::verdict::{OpenCondition, Outcome};
use crate::who::{policy_names, rename};

/// One path of the service account.
#[derive(Debug, Clone, Serialize)]
pub struct WhatPath {
    /// How.
    pub path: PathKind,
    /// The role the workload acts as.
    pub role_arn: String,
    /// The first role of a chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The association, for Pod Identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub association_id: Option<String>,
    /// Whether the trust lets the workload in.
    pub trust: Outcome,
    /// What the trust leaves open.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_conditions: Vec<OpenCondition>,
    /// True for the path the SDKs' default credential chain takes.
    pub wins: bool,
    /// Anything the reader must know about this path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The role's permissions, by service.
    pub permissions: Vec<ServiceSummary>,
}

/// What a role's policies say about one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSummary {
    /// The service prefix (`dynamodb`, `s3`, `*` for statements on every service).
    pub service: String,
    /// The statements that name it.
    pub statements: Vec<StatementSummary>,
}

/// One statement, as far as one service is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementSummary {
    /// Which policy.
    pub policy: String,
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// The actions (or `NotAction: …`).
    pub actions: Vec<String>,
    /// The resource scopes (or `NotResource: …`).
    pub resources: Vec<String>,
    /// The conditions, readably.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

/// The answer to `what`.
#[derive(Debug, Clone, Serialize)]
pub struct WhatReport {
    /// The cluster.
    pub cluster: String,
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// Every path, the winning one first.
    pub paths: Vec<WhatPath>,
    /// How the winner was chosen.
    pub precedence: String,
}

/// The SDKs' default chain: web identity (IRSA) before container credentials (Pod Identity)
/// before IMDS (node).
const PRECEDENCE: &str = "The SDKs' default credential chain takes the web identity token (IRSA) before container credentials (Pod Identity), and those before IMDS (the node's role).";

fn service_of(action: &str) -> String {
    action
        .split_once(':')
        .map_or_else(|| action.to_owned(), |(s, _)| s.to_ascii_lowercase())
}

/// The statements of `policies`, grouped by the services their actions name.
pub fn summarise(policies: &[(String, &Policy)]) -> Vec<ServiceSummary> {
    let mut by_service: BTreeMap<String, Vec<StatementSummary>> = BTreeMap::new();
    for (name, policy) in policies {
        for statement in policy.statements() {
            let Some(action) = statement.action() else {
                continue;
            };
            let mut services: Vec<String> =
                action.patterns().iter().map(|a| service_of(a)).collect();
            services.sort();
            services.dedup();
            if action.is_negated() {
                services = vec!["*".to_owned()];
            }
            let resources = statement.resource().map_or_else(Vec::new, |r| {
                let prefix = if r.is_negated() { "NotResource: " } else { "" };
                r.patterns()
                    .iter()
                    .map(|p| format!("{prefix}{p}"))
                    .collect()
            });
            let conditions: Vec<String> = statement
                .conditions()
                .iter()
                .map(|c| format!("{} {} {:?}", c.operator(), c.key(), c.values()))
                .collect();
            let effect = match statement.effect() {
                Effect::Allow => "Allow",
                Effect::Deny => "Deny",
            };
            for service in services {
                let actions = action
                    .patterns()
                    .iter()
                    .filter(|a| action.is_negated() || service_of(a) == service)
                    .map(|a| {
                        if action.is_negated() {
                            format!("NotAction: {a}")
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                by_service
                    .entry(service)
                    .or_default()
                    .push(StatementSummary {
                        policy: name.clone(),
                        effect,
                        actions,
                        resources: resources.clone(),
                        conditions: conditions.clone(),
                    });
            }
        }
    }
    by_service
        .into_iter()
        .map(|(service, statements)| ServiceSummary {
            service,
            statements,
        })
        .collect()
}

/// The permission summary of a session's role: its identity policies, boundary and the
/// session policy, each named.
fn permissions(snap: &Snapshot<'_>, caller: &Caller) -> Vec<ServiceSummary> {
    let names = policy_names(snap, caller);
    snap.iam.with_policy_set(caller, None, |set| {
        let mut named: Vec<(String, &Policy)> = Vec::new();
        let label = |l: String| {
            names
                .iter()
                .find(|(k, _)| *k == l)
                .map_or(l, |(_, n)| n.clone())
        };
        for (i, p) in set.identity.iter().enumerate() {
            named.push((label(format!("identity[{i}]")), p));
        }
        if let Some(b) = set.permissions_boundary {
            named.push((label("permissions_boundary".to_owned()), b));
        }
        for (i, p) in set.session.iter().enumerate() {
            named.push((label(format!("session[{i}]")), p));
        }
        summarise(&named)
    })
}

/// The roles `cluster/namespace/service_account` can get and what they allow.
pub fn what(
    snap: &Snapshot<'_>,
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> WhatReport {
    let mut paths: Vec<WhatPath> = Vec::new();
    let mut push = |path: crate::paths::Path, note: Option<String>| {
        let mut trust = path.trust.clone();
        rename(
            &mut trust,
            &[],
            &format!("trust policy of {}", path.role_arn),
        );
        paths.push(WhatPath {
            permissions: permissions(snap, &path.caller),
            path: path.kind,
            role_arn: path.role_arn,
            via: path.via,
            association_id: path.association_id,
            trust: trust.outcome,
            open_conditions: trust.open_conditions,
            wins: false,
            note,
        });
    };
    for role in snap.roles() {
        for path in irsa_paths(
            snap,
            role,
            Some(cluster),
            Some((namespace, service_account)),
        ) {
            push(path, Some("used when the service account is annotated eks.amazonaws.com/role-arn with this role".to_owned()));
        }
    }
    let association = snap
        .eks
        .association_for(cluster, namespace, service_account)
        .filter(|a| (snap.association_visible)(&a.record));
    let mut broken = None;
    if let Some(a) = &association {
        let a = &a.record;
        match pod_identity_path(snap, a) {
            Some(path) => push(path, None),
            None => {
                let why = match snap.role(&a.role_arn).and_then(|r| r.trust()) {
                    None => format!(
                        "association {}: role {} is not in podiam (missing, not visible to you, or in an upstream AWS account, where AWS decides)",
                        a.id, a.role_arn
                    ),
                    Some(trust) => {
                        let v = association_trust(snap, a, &a.role_arn, &trust);
                        if v.allows() {
                            format!(
                                "association {}: the chain into {} is refused",
                                a.id,
                                a.target_role_arn.as_deref().unwrap_or("?")
                            )
                        } else {
                            format!(
                                "association {}: the trust policy of {} does not let pods.eks.amazonaws.com in; the pod would fail at run time",
                                a.id, a.role_arn
                            )
                        }
                    }
                };
                broken = Some(why);
            }
        }
    }
    let nodes = node_identities(snap);
    for role in snap.roles() {
        if let Some(path) = node_path(snap, role, &nodes) {
            push(
                path,
                Some("any pod on a node whose IMDS serves this role".to_owned()),
            );
        }
    }
    paths.sort_by_key(|p| p.path);
    if let Some(first) = paths.iter_mut().find(|p| p.trust != Outcome::ImplicitDeny) {
        first.wins = true;
    }
    let mut precedence = PRECEDENCE.to_owned();
    if paths.iter().filter(|p| p.path == PathKind::Irsa).count() > 1 {
        precedence.push_str(" Several roles trust this service account for IRSA: the service account's annotation picks one.");
    }
    if let Some(why) = broken {
        precedence.push(' ');
        precedence.push_str(&why);
        precedence.push('.');
    }
    WhatReport {
        cluster: cluster.to_owned(),
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        paths,
        precedence,
    }
}
