//! `/console/access`: the access graph (service accounts → roles → services and resources),
//! drawn as SVG on the server, filterable by cluster and namespace; and a "who can" form. The
//! analysis is the API's (`/podiam/access/…`): only the roles the viewer may read with their
//! policies (`iam:GetRole`, `iam:GetRolePolicy`, `iam:ListAttachedRolePolicies`)
//! and the associations it may `eks:DescribePodIdentityAssociation` are in it.

use std::fmt::Write as _;

use axum::extract::Query;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use podiam_access::{AccessGraph, Outcome, WhoReport};
use serde::Deserialize;

use super::Page;
use crate::access_api::analyse;
use crate::console::Viewer;

/// Beyond this many nodes the graph asks for a filter instead of drawing.
const MAX_NODES: usize = 5_000;
const ROW: usize = 22;
const COLUMN: [usize; 3] = [10, 400, 790];
const WIDTH: usize = 1130;
/// Characters of 12px monospace that fit a node's box.
const LABEL: usize = 44;

/// The filter and the "who can" question, from the query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    resource: String,
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.len() <= 2048).then(|| text.to_owned())
}

pub(crate) async fn page(viewer: Viewer, Query(filter): Query<Filter>) -> Response {
    let cluster = some(&filter.cluster);
    let namespace = some(&filter.namespace);
    let question = some(&filter.action).zip(some(&filter.resource));
    let (app, caller, facts) = (
        viewer.app.clone(),
        viewer.caller.clone(),
        viewer.facts.clone(),
    );
    let (c, n, q) = (cluster.clone(), namespace.clone(), question.clone());
    let analysed = tokio::task::spawn_blocking(move || {
        analyse(&app, &caller, &facts, |snapshot| {
            let graph = podiam_access::graph(snapshot, c.as_deref(), n.as_deref());
            let who = q.map(|(action, resource)| {
                podiam_access::who(snapshot, &action, &resource, c.as_deref())
            });
            let clusters: Vec<String> = snapshot
                .eks
                .clusters()
                .map(|c| c.record.name.clone())
                .collect();
            (graph, who, clusters)
        })
    })
    .await;
    let page = Page::new("/console/access", "Access");
    let Ok(Some((graph, who, clusters))) = analysed else {
        return page.render(&viewer, html! { p.denied { (super::NOT_ANALYSED) } });
    };
    // The cluster list is ListClusters' to give.
    let clusters = if viewer.ctx().authorize("eks:ListClusters", "*").is_ok() {
        clusters
    } else {
        Vec::new()
    };
    let body = html! {
        form.filter method="get" action="/console/access" {
            label { "Cluster "
                select name="cluster" id="cluster" {
                    option value="" { "all" }
                    @for name in &clusters {
                        option value=(name) selected[cluster.as_deref() == Some(name.as_str())] { (name) }
                    }
                }
            }
            label { "Namespace " input type="text" name="namespace" id="namespace" value=(filter.namespace) placeholder="all"; }
            label { "Action " input type="text" name="action" id="action" value=(filter.action) placeholder="dynamodb:PutItem"; }
            label { "Resource " input type="text" name="resource" id="resource" value=(filter.resource) placeholder="arn:aws:dynamodb:…:table/…"; }
            button type="submit" id="apply" { "Show" }
        }
        @if let Some(report) = &who {
            (who_table(report))
        }
        h2 { "Service accounts → roles → services and resources" }
        (draw(&graph))
        p.muted {
            "Pod Identity, IRSA and node paths, as the policy engine evaluates them over the stored state. "
            "A dashed edge is a ConditionalAllow: a condition on a key known only at run time (a pod's name, a resource's tags, …). "
            "You see the roles you may read with their policies (iam:GetRole, iam:GetRolePolicy, iam:ListAttachedRolePolicies) and the associations you may eks:DescribePodIdentityAssociation; IRSA paths also need eks:DescribeCluster and iam:GetOpenIDConnectProvider, node paths iam:GetUser."
        }
    };
    page.render(&viewer, body)
}

fn who_table(report: &WhoReport) -> Markup {
    html! {
        h2 { "Who can " code { (report.action) } " on " code { (report.resource) } }
        @if report.entries.is_empty() {
            p.muted id="who-none" { "No workload can, among the roles and associations you may read." }
        } @else {
            table id="who" {
                thead { tr { th { "Cluster" } th { "Namespace" } th { "Service account" } th { "Path" } th { "Role" } th { "Decision" } } }
                tbody {
                    @for e in &report.entries {
                        tr {
                            td { (e.workload.cluster) }
                            td { (e.workload.namespace) }
                            td { (e.workload.service_account) }
                            td { (e.path.as_str()) }
                            td { code { (e.role_arn) } @if let Some(via) = &e.via { br; span.muted { "via " (via) } } }
                            td {
                                span class=(outcome_class(e.decision)) { (outcome_name(e.decision)) }
                                @for c in &e.open_conditions {
                                    br; span.muted { "if " (c.operator) " " (c.key) " " (c.values.join(", ")) }
                                }
                                @if let Some(d) = &e.denied_by {
                                    br; span.muted { "denied by " (d.statement) " in " (d.policy) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for note in &report.notes {
            p.muted { (note) }
        }
    }
}

pub(crate) fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Allow => "Allow",
        Outcome::ConditionalAllow => "ConditionalAllow",
        Outcome::ExplicitDeny => "ExplicitDeny",
        Outcome::ImplicitDeny => "ImplicitDeny",
    }
}

pub(crate) fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Allow => "allowed",
        Outcome::ConditionalAllow => "conditional",
        Outcome::ExplicitDeny => "explicitdeny",
        Outcome::ImplicitDeny => "implicitdeny",
    }
}

/// Escapes text for SVG (XML) content and attributes.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters: the end kept (a table's or role's name), an ellipsis before it.
fn clip(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let mut cut = String::from("…");
    cut.extend(text.chars().skip(count - max + 1));
    cut
}

fn y(row: usize) -> usize {
    row * ROW + 40
}

/// Three columns of labelled nodes and curved edges between them; every label escaped.
fn draw(graph: &AccessGraph) -> Markup {
    let nodes = graph.workloads.len() + graph.roles.len() + graph.resources.len();
    if nodes == 0 {
        return html! { p.muted id="graph-empty" { "No path: no service account reaches a role you may read." } };
    }
    if nodes > MAX_NODES {
        return html! { p.notice { (nodes) " nodes: more than " (MAX_NODES) " to draw. Filter by cluster and namespace." } };
    }
    let rows = graph
        .workloads
        .len()
        .max(graph.roles.len())
        .max(graph.resources.len());
    let height = y(rows) + 10;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" id="graph" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="access graph">"#
    );
    for (x, title) in COLUMN
        .iter()
        .zip(["Service accounts", "Roles", "Services and resources"])
    {
        let _ = write!(
            svg,
            r#"<text class="heading" x="{x}" y="20">{title}</text>"#
        );
    }
    let edge = |svg: &mut String,
                from: (usize, usize),
                to: (usize, usize),
                class: &str,
                title: &str| {
        let column = |i: usize| COLUMN.get(i).copied().unwrap_or_default();
        let (x1, y1) = (column(from.0) + 330, y(from.1) - 7);
        let (x2, y2) = (column(to.0), y(to.1) - 7);
        let mid = (x1 + x2) / 2;
        let _ = write!(
            svg,
            r#"<path class="edge {class}" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"><title>{}</title></path>"#,
            xml(title)
        );
    };
    for e in &graph.role_edges {
        let class = match (e.path, e.trust) {
            (_, Outcome::ConditionalAllow) => format!("{} open", e.path.as_str()),
            (kind, _) => kind.as_str().to_owned(),
        };
        let title = graph.workloads.get(e.workload).map(|w| {
            format!(
                "{}/{}/{} → {} by {}",
                w.cluster,
                w.namespace,
                w.service_account,
                graph.roles.get(e.role).map_or("", String::as_str),
                e.path.as_str()
            )
        });
        edge(
            &mut svg,
            (0, e.workload),
            (1, e.role),
            &class,
            &title.unwrap_or_default(),
        );
    }
    for e in &graph.grant_edges {
        let class = if e.conditional { "grant open" } else { "grant" };
        edge(
            &mut svg,
            (1, e.role),
            (2, e.resource),
            class,
            &e.actions.join(", "),
        );
    }
    for (row, w) in graph.workloads.iter().enumerate() {
        let label = format!("{}/{}/{}", w.cluster, w.namespace, w.service_account);
        node(
            &mut svg,
            0,
            row,
            &label,
            &label,
            if w.pattern {
                "workload pattern"
            } else {
                "workload"
            },
        );
    }
    for (row, arn) in graph.roles.iter().enumerate() {
        let name = arn.rsplit('/').next().unwrap_or(arn);
        node(&mut svg, 1, row, name, arn, "role");
    }
    for (row, r) in graph.resources.iter().enumerate() {
        let service = clip(&r.service, 12);
        let room = LABEL.saturating_sub(service.chars().count() + 3);
        let label = format!("{service} · {}", clip(&r.resource, room));
        node(
            &mut svg,
            2,
            row,
            &label,
            &format!("{} · {}", r.service, r.resource),
            "resource",
        );
    }
    svg.push_str("</svg>");
    html! {
        div.legend {
            span.key.pod-identity { "pod-identity" } " "
            span.key.irsa { "irsa" } " "
            span.key.node { "node" } " "
            span.key.grant { "allows" } " "
            span.muted { (graph.workloads.len()) " service accounts, " (graph.roles.len()) " roles, " (graph.resources.len()) " resource scopes" }
        }
        div.graph-frame { (PreEscaped(svg)) }
    }
}

fn node(svg: &mut String, column: usize, row: usize, label: &str, title: &str, class: &str) {
    let x = COLUMN.get(column).copied().unwrap_or_default();
    let _ = write!(
        svg,
        r#"<g class="node {class}"><title>{}</title><rect x="{}" y="{}" width="330" height="18" rx="4"/><text x="{}" y="{}">{}</text></g>"#,
        xml(title),
        x,
        y(row) - 16,
        x + 6,
        y(row) - 3,
        xml(&clip(label, LABEL))
    );
}

#[cfg(test)]
mod tests {
    use podiam_access::{AccessGraph, GrantEdge, PathKind, ResourceNode, RoleEdge, Workload};

    use super::*;

    #[test]
    fn labels_keep_their_end_and_everything_is_escaped() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("arn:aws:dynamodb:table/carts", 12), "…table/carts");
        assert_eq!(
            xml(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn a_few_thousand_nodes_are_drawn_and_more_ask_for_a_filter() {
        let workload = |i: usize| Workload {
            cluster: "c".into(),
            namespace: format!("ns-{i}"),
            service_account: "<sa>".into(),
            pattern: false,
        };
        let mut graph = AccessGraph {
            workloads: (0..2_000).map(workload).collect(),
            roles: (0..1_000)
                .map(|i| format!("arn:aws:iam::1:role/r{i}"))
                .collect(),
            resources: vec![ResourceNode {
                service: "s3".into(),
                resource: "*".into(),
            }],
            ..AccessGraph::default()
        };
        graph.role_edges = (0..2_000)
            .map(|i| RoleEdge {
                workload: i,
                role: i / 2,
                path: PathKind::PodIdentity,
                trust: Outcome::Allow,
            })
            .collect();
        graph.grant_edges = (0..1_000)
            .map(|i| GrantEdge {
                role: i,
                resource: 0,
                actions: vec!["s3:GetObject".into()],
                conditional: i % 2 == 0,
            })
            .collect();
        let drawn = draw(&graph).into_string();
        assert_eq!(drawn.matches("<g class=\"node").count(), 3_001);
        assert_eq!(drawn.matches("<path class=\"edge").count(), 3_000);
        assert_eq!(drawn.matches("class=\"edge grant open\"").count(), 500);
        assert!(drawn.contains("c/ns-1999/&lt;sa&gt;") && !drawn.contains("<sa>"));
        graph.workloads.extend((2_000..4_500).map(workload));
        assert!(
            draw(&graph)
                .into_string()
                .contains("Filter by cluster and namespace")
        );
    }
}
