//! The access graph: service accounts → roles → services and resources, for drawing.

use std::collections::{BTreeMap, HashMap};

use podiam_policy::Effect;
use serde::Serialize;

use crate::paths::{PathKind, Workload, all_paths};
use crate::snapshot::Snapshot;
use crate::verdict::Outcome;

/// A role reached by a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleEdge {
    /// Index into [`AccessGraph::workloads`].
    pub workload: usize,
    /// Index into [`AccessGraph::roles`].
    pub role: usize,
    /// How.
    pub path: PathKind,
    /// `Allow`, or `ConditionalAllow` when the trust leaves conditions open.
    pub trust: Outcome,
}

/// What a role's policies allow on a resource scope of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantEdge {
    /// Index into [`AccessGraph::roles`].
    pub role: usize,
    /// Index into [`AccessGraph::resources`].
    pub resource: usize,
    /// The actions allowed there.
    pub actions: Vec<String>,
    /// True when a condition narrows the statement.
    pub conditional: bool,
}

/// A service's resource scope (`dynamodb` · `arn:…:table/carts`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ResourceNode {
    /// The service prefix.
    pub service: String,
    /// The resource pattern as the policy writes it.
    pub resource: String,
}

/// Nodes in three columns and the edges between them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessGraph {
    /// Service accounts (or patterns).
    pub workloads: Vec<Workload>,
    /// Role ARNs.
    pub roles: Vec<String>,
    /// Services and resource scopes.
    pub resources: Vec<ResourceNode>,
    /// Workload → role.
    pub role_edges: Vec<RoleEdge>,
    /// Role → resource (allow statements only).
    pub grant_edges: Vec<GrantEdge>,
}

fn index<T: Ord + Clone>(map: &mut BTreeMap<T, usize>, key: &T) -> usize {
    let next = map.len();
    *map.entry(key.clone()).or_insert(next)
}

/// The graph of `cluster` (or all), for workloads in `namespace` (or all; patterns that match
/// it stay).
pub fn graph(snap: &Snapshot<'_>, cluster: Option<&str>, namespace: Option<&str>) -> AccessGraph {
    let mut workloads: BTreeMap<Workload, usize> = BTreeMap::new();
    let mut roles: BTreeMap<String, usize> = BTreeMap::new();
    let mut role_edges = Vec::new();
    for path in all_paths(snap, cluster) {
        if namespace.is_some_and(|ns| !podiam_policy::wildcard_match(&path.workload.namespace, ns))
        {
            continue;
        }
        let workload = index(&mut workloads, &path.workload);
        let role = index(&mut roles, &path.role_arn);
        role_edges.push(RoleEdge {
            workload,
            role,
            path: path.kind,
            trust: path.trust.outcome,
        });
    }
    let mut resources: BTreeMap<ResourceNode, usize> = BTreeMap::new();
    let mut grant_edges: Vec<GrantEdge> = Vec::new();
    // Where each (role, resource) edge is, so that building the graph stays linear.
    let mut grant_at: HashMap<(usize, usize), usize> = HashMap::new();
    for (arn, &role_index) in &roles {
        let Some(role) = snap.role(arn) else {
            continue;
        };
        let mut policies = role.inline();
        for managed in &role.record.attached {
            policies.extend(snap.iam.policy(managed).and_then(|p| p.default_policy()));
        }
        for statement in policies.iter().flat_map(|p| p.statements()) {
            let (Some(actions), Some(scope)) = (statement.action(), statement.resource()) else {
                continue;
            };
            if statement.effect() != Effect::Allow || actions.is_negated() || scope.is_negated() {
                continue;
            }
            for action in actions.patterns() {
                let service = action
                    .split_once(':')
                    .map_or_else(|| "*".to_owned(), |(s, _)| s.to_ascii_lowercase());
                for pattern in scope.patterns() {
                    let node = ResourceNode {
                        service: service.clone(),
                        resource: pattern.clone(),
                    };
                    let resource = index(&mut resources, &node);
                    let conditional = !statement.conditions().is_empty();
                    let next = grant_edges.len();
                    let at = *grant_at.entry((role_index, resource)).or_insert(next);
                    match grant_edges.get_mut(at) {
                        Some(edge) => {
                            if !edge.actions.contains(action) {
                                edge.actions.push(action.clone());
                            }
                            edge.conditional &= conditional;
                        }
                        None => grant_edges.push(GrantEdge {
                            role: role_index,
                            resource,
                            actions: vec![action.clone()],
                            conditional,
                        }),
                    }
                }
            }
        }
    }
    AccessGraph {
        workloads: sorted(workloads),
        roles: sorted(roles),
        resources: sorted(resources),
        role_edges,
        grant_edges,
    }
}

/// The keys in their insertion index order (the edges' indexes).
fn sorted<T>(map: BTreeMap<T, usize>) -> Vec<T> {
    let mut items: Vec<(usize, T)> = map.into_iter().map(|(k, i)| (i, k)).collect();
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, k)| k).collect()
}

/// A workload that reaches a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assumer {
    /// Who.
    pub workload: Workload,
    /// How.
    pub path: PathKind,
    /// Whether the trust lets it in (`ConditionalAllow` with conditions left open).
    pub trust: Outcome,
    /// For the first role of a chain: the role the chain ends in.
    pub chain_into: Option<String>,
}

/// The workloads that reach `role_arn` ("who can assume this role"), itself or as the first
/// role of a chain.
pub fn assumers(snap: &Snapshot<'_>, role_arn: &str) -> Vec<Assumer> {
    let mut out: Vec<Assumer> = all_paths(snap, None)
        .into_iter()
        .filter(|p| p.role_arn == role_arn || p.via.as_deref() == Some(role_arn))
        .map(|p| Assumer {
            chain_into: (p.role_arn != role_arn).then(|| p.role_arn.clone()),
            workload: p.workload,
            path: p.kind,
            trust: p.trust.outcome,
        })
        .collect();
    out.sort_by(|a, b| (&a.workload, a.path).cmp(&(&b.workload, b.path)));
    out
}
