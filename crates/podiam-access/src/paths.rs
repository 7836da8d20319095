//! The ways a workload gets a role's credentials: an EKS Pod Identity association, an IRSA
//! trust, or the node's role through IMDS. Each path carries the session the workload would
//! hold, so that its permissions are asked of the engine as the server would ask them.

use std::sync::Arc;

use podiam_eks::{AssociationRecord, NODE_NAME_TAG, POD_IDENTITY_SERVICE};
use podiam_iam::{Caller, RoleEntry};
use podiam_policy::{Policy, PolicySet, PrincipalType, Statement};
use podiam_session::Origin;
use podiam_sts::{ServiceTrust, WebIdentityTrust};
use serde::Serialize;

use crate::snapshot::{SessionShape, Snapshot};
use crate::verdict::{OpenCondition, Verdict, judge};

/// How the credentials reach the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// A projected token exchanged with STS `AssumeRoleWithWebIdentity`.
    Irsa,
    /// An EKS Pod Identity association, through the node agent.
    PodIdentity,
    /// The node's own role, through IMDS.
    Node,
}

impl PathKind {
    /// As the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Irsa => "irsa",
            Self::PodIdentity => "pod-identity",
            Self::Node => "node",
        }
    }
}

/// A workload identity: a cluster's service account, or a pattern of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Workload {
    /// The cluster (`*`: any cluster whose nodes run as the node identity).
    pub cluster: String,
    /// The namespace, or a pattern (`*`, `team-*`).
    pub namespace: String,
    /// The service account, or a pattern.
    pub service_account: String,
    /// True when namespace or service account is a pattern: the entry stands for every match.
    pub pattern: bool,
}

/// One path from a workload to a role.
#[derive(Debug, Clone)]
pub struct Path {
    /// Who.
    pub workload: Workload,
    /// How.
    pub kind: PathKind,
    /// The role whose credentials the workload ends up with.
    pub role_arn: String,
    /// The first role of a chain (`targetRoleArn`).
    pub via: Option<String>,
    /// The association, for Pod Identity.
    pub association_id: Option<String>,
    /// Whether the trust lets the workload in (`ConditionalAllow` when it hangs on a key the
    /// analysis cannot know, such as the pod's name).
    pub trust: Verdict,
    /// The session the workload would hold.
    pub(crate) caller: Caller,
}

/// The four session tags EKS sets that do not depend on the pod (its name and uid do, and
/// are left open).
fn pod_identity_tags(snap: &Snapshot<'_>, a: &AssociationRecord) -> Vec<(String, String)> {
    if a.disable_session_tags {
        return Vec::new();
    }
    vec![
        ("eks-cluster-arn".to_owned(), snap.cluster_arn(&a.cluster)),
        ("eks-cluster-name".to_owned(), a.cluster.clone()),
        ("kubernetes-namespace".to_owned(), a.namespace.clone()),
        (
            "kubernetes-service-account".to_owned(),
            a.service_account.clone(),
        ),
    ]
}

/// Every request judged against `trust`, combined: the first refusal, or an allow with the
/// union of what stayed open.
pub(crate) fn judge_trust(trust: &Policy, requests: &[podiam_policy::Request]) -> Verdict {
    let set = PolicySet {
        resource: Some(trust),
        ..PolicySet::default()
    };
    let mut open: Vec<OpenCondition> = Vec::new();
    for request in requests {
        let verdict = judge(&set, request);
        if !verdict.allows() {
            return verdict;
        }
        for c in verdict.open_conditions {
            if !open.contains(&c) {
                open.push(c);
            }
        }
    }
    Verdict::allowed(open)
}

/// Both verdicts must allow; what is open in either stays open.
pub(crate) fn and(first: &Verdict, then: Verdict) -> Verdict {
    if !first.allows() {
        return first.clone();
    }
    if !then.allows() {
        return then;
    }
    let mut open = first.open_conditions.clone();
    open.extend(then.open_conditions);
    Verdict::allowed(open)
}

/// The trust check of an association's role: EKS asks it for `pods.eks.amazonaws.com`.
pub(crate) fn association_trust(
    snap: &Snapshot<'_>,
    a: &AssociationRecord,
    role_arn: &str,
    trust: &Policy,
) -> Verdict {
    let tags = pod_identity_tags(snap, a);
    let cluster_arn = snap.cluster_arn(&a.cluster);
    let requests = ServiceTrust {
        service: POD_IDENTITY_SERVICE,
        role_arn,
        source_account: snap.iam.account(),
        source_arn: &cluster_arn,
        session_name: None,
        tags: &tags,
    }
    .requests(&snap.facts());
    judge_trust(trust, &requests)
}

/// The Pod Identity path of one association, if its roles exist and their trust lets it in.
pub(crate) fn pod_identity_path(snap: &Snapshot<'_>, a: &AssociationRecord) -> Option<Path> {
    let role = snap.role(&a.role_arn)?;
    let trust = association_trust(snap, a, &a.role_arn, role.trust().as_deref()?);
    if !trust.allows() {
        return None;
    }
    let tags = pod_identity_tags(snap, a);
    let first = snap.session(
        &role,
        SessionShape {
            session_name: format!("eks-{}-pod", a.cluster),
            tags: tags.clone(),
            policy: a.policy.clone(),
            origin: Origin::PodIdentity {
                cluster: snap.cluster_arn(&a.cluster),
                association_id: a.id.clone(),
            },
        },
    );
    let workload = Workload {
        cluster: a.cluster.clone(),
        namespace: a.namespace.clone(),
        service_account: a.service_account.clone(),
        pattern: false,
    };
    let (role_arn, via, trust, caller) = match &a.target_role_arn {
        None => (a.role_arn.clone(), None, trust, first),
        Some(target_arn) => {
            let target = snap.role(target_arn)?;
            let target_trust = target.trust()?;
            let chained = snap.permits(&first, "sts:AssumeRole", target_arn, Some(&target_trust));
            let trust = and(&trust, chained);
            if !trust.allows() {
                return None;
            }
            let session = snap.session(
                &target,
                SessionShape {
                    session_name: format!("eks-{}-pod", a.cluster),
                    tags,
                    policy: None,
                    origin: Origin::AssumeRole {
                        source: first.arn(snap.iam),
                    },
                },
            );
            (target_arn.clone(), Some(a.role_arn.clone()), trust, session)
        }
    };
    Some(Path {
        workload,
        kind: PathKind::PodIdentity,
        role_arn,
        via,
        association_id: Some(a.id.clone()),
        trust,
        caller,
    })
}

/// The OIDC providers a statement trusts for web identities: `(provider URL, provider ARN)`.
pub(crate) fn federated_providers(statement: &Statement) -> Vec<(String, String)> {
    let Some(principal) = statement.principal() else {
        return Vec::new();
    };
    if principal.is_negated() {
        return Vec::new();
    }
    principal
        .entries()
        .iter()
        .filter(|e| e.kind() == PrincipalType::Federated)
        .flat_map(|e| e.values())
        .filter_map(|arn| {
            let (_, url) = arn.split_once(":oidc-provider/")?;
            Some((url.to_owned(), arn.clone()))
        })
        .collect()
}

/// The values a statement's conditions give `key` (any operator).
pub(crate) fn condition_values<'s>(statement: &'s Statement, key: &str) -> Vec<&'s str> {
    statement
        .conditions()
        .iter()
        .filter(|c| c.key().eq_ignore_ascii_case(key))
        .flat_map(|c| c.values())
        .map(String::as_str)
        .collect()
}

/// The subjects a statement's conditions on `key` admit by name: the values of its
/// non-negated operators. A `StringNotEquals`/`StringNotLike` value is one it excludes, so a
/// trust with only those admits every other service account.
fn subject_values<'s>(statement: &'s Statement, key: &str) -> Vec<&'s str> {
    statement
        .conditions()
        .iter()
        .filter(|c| c.key().eq_ignore_ascii_case(key) && !c.operator().kind.is_negated())
        .flat_map(|c| c.values())
        .map(String::as_str)
        .collect()
}

/// `system:serviceaccount:NS:SA` (either part may be a pattern), or `*:*` for anything else.
fn parse_subject(subject: &str) -> (String, String) {
    match subject
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((ns, sa)) => (ns.to_owned(), sa.to_owned()),
        None => ("*".to_owned(), "*".to_owned()),
    }
}

fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// A concrete subject a pattern matches, to ask the engine with.
fn representative(subject: &str) -> String {
    let concrete = subject.replace(['*', '?'], "x");
    if concrete.starts_with("system:serviceaccount:") {
        concrete
    } else {
        "system:serviceaccount:x:x".to_owned()
    }
}

/// The IRSA paths into `role`: one per service account (or pattern) its trust names, for the
/// providers of the clusters' issuers. With `only`, just that service account.
pub(crate) fn irsa_paths(
    snap: &Snapshot<'_>,
    role: &Arc<RoleEntry>,
    cluster: Option<&str>,
    only: Option<(&str, &str)>,
) -> Vec<Path> {
    let Some(trust) = role.trust() else {
        return Vec::new();
    };
    let role_arn = snap.iam.role_arn(&role.record);
    let mut paths: Vec<Path> = Vec::new();
    for statement in trust.statements() {
        for (url, provider_arn) in federated_providers(statement) {
            let Some(cluster_name) = snap.issuer_owner(&url) else {
                continue;
            };
            if cluster.is_some_and(|c| c != cluster_name)
                || snap.provider_exists(&url, &provider_arn) != Some(true)
            {
                continue;
            }
            let audiences = condition_values(statement, &format!("{url}:aud"));
            let audience = audiences.first().copied().unwrap_or("sts.amazonaws.com");
            let candidates: Vec<String> = match only {
                Some((ns, sa)) => vec![format!("system:serviceaccount:{ns}:{sa}")],
                None => {
                    let subjects = subject_values(statement, &format!("{url}:sub"));
                    if subjects.is_empty() {
                        // No subject named, or only ones excluded: any other service account.
                        vec!["*".to_owned()]
                    } else {
                        subjects.into_iter().map(str::to_owned).collect()
                    }
                }
            };
            for subject in candidates {
                let ask = |subject: &str| {
                    let requests = WebIdentityTrust {
                        provider_arn: &provider_arn,
                        provider_url: &url,
                        subject,
                        audience,
                        amr: None,
                        role_arn: &role_arn,
                        session_name: None,
                        tags: &[],
                    }
                    .requests(&snap.facts());
                    judge_trust(&trust, &requests)
                };
                let mut asked = subject.clone();
                let mut verdict = ask(&asked);
                if !verdict.allows() && is_pattern(&subject) {
                    asked = representative(&subject);
                    verdict = ask(&asked);
                }
                if !verdict.allows() {
                    continue;
                }
                let (namespace, service_account) = parse_subject(&subject);
                let pattern = is_pattern(&namespace) || is_pattern(&service_account);
                let workload = Workload {
                    cluster: cluster_name.clone(),
                    namespace,
                    service_account,
                    pattern,
                };
                if paths.iter().any(|p| p.workload == workload) {
                    continue;
                }
                let caller = snap.session(
                    role,
                    SessionShape {
                        session_name: "irsa".to_owned(),
                        tags: Vec::new(),
                        policy: None,
                        origin: Origin::WebIdentity {
                            provider: provider_arn.clone(),
                            subject: asked,
                            audience: audience.to_owned(),
                        },
                    },
                );
                paths.push(Path {
                    workload,
                    kind: PathKind::Irsa,
                    role_arn: role_arn.clone(),
                    via: None,
                    association_id: None,
                    trust: verdict,
                    caller,
                });
            }
        }
    }
    paths
}

/// The node identities: IAM users tagged `podiam:node-name`, as the node agent and IMDS sign,
/// that the caller may read (`iam:GetUser`).
pub(crate) fn node_identities(snap: &Snapshot<'_>) -> Vec<(Caller, String)> {
    snap.iam
        .users()
        .filter(|user| (snap.may_read)("iam:GetUser", &snap.iam.user_arn(&user.record)))
        .filter_map(|user| {
            let (_, node) = user
                .record
                .tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(NODE_NAME_TAG))?;
            Some((Caller::User(Arc::clone(user)), node.clone()))
        })
        .collect()
}

/// The node path into `role`: a node identity that the role's trust and the identity's own
/// policies let assume it. Every pod on such a node can reach IMDS, so the workload is `*:*`;
/// which cluster a node serves is not in the state, so the cluster is `*`.
pub(crate) fn node_path(
    snap: &Snapshot<'_>,
    role: &Arc<RoleEntry>,
    nodes: &[(Caller, String)],
) -> Option<Path> {
    if nodes.is_empty() {
        return None;
    }
    let trust = role.trust()?;
    let role_arn = snap.iam.role_arn(&role.record);
    for (node_identity, node) in nodes {
        let request = snap.request(node_identity, "sts:AssumeRole", &role_arn);
        let mut verdict = snap
            .iam
            .with_policy_set(node_identity, Some(&trust), |set| judge(set, &request));
        if !verdict.allows() {
            continue;
        }
        // The node identity's own policies are not the caller's to read: only the trust's
        // open conditions are shown.
        verdict.open_conditions.retain(|c| c.policy == "resource");
        let caller = snap.session(
            role,
            SessionShape {
                session_name: node.clone(),
                tags: Vec::new(),
                policy: None,
                origin: Origin::InstanceProfile { node: node.clone() },
            },
        );
        return Some(Path {
            workload: Workload {
                cluster: "*".to_owned(),
                namespace: "*".to_owned(),
                service_account: "*".to_owned(),
                pattern: true,
            },
            kind: PathKind::Node,
            role_arn,
            via: None,
            association_id: None,
            trust: verdict,
            caller,
        });
    }
    None
}

/// Every path, for `cluster` or all.
pub(crate) fn all_paths(snap: &Snapshot<'_>, cluster: Option<&str>) -> Vec<Path> {
    let mut paths = Vec::new();
    for entry in snap.eks.associations() {
        let a = &entry.record;
        if cluster.is_some_and(|c| c != a.cluster) || !(snap.association_visible)(a) {
            continue;
        }
        paths.extend(pod_identity_path(snap, a));
    }
    let nodes = node_identities(snap);
    for role in snap.roles() {
        paths.extend(irsa_paths(snap, role, cluster, None));
        paths.extend(node_path(snap, role, &nodes));
    }
    paths
}
