//! `/console/roles` and `/console/roles/{name}`: the roles (`iam:ListRoles`), and one role
//! (`iam:GetRole`) with its inline policies (`iam:ListRolePolicies`, `iam:GetRolePolicy`),
//! attached policies (`iam:ListAttachedRolePolicies`, `iam:GetPolicyVersion` on each) and
//! permissions boundary (`iam:GetPolicyVersion`).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use podiam_iam::RoleEntry;

use super::{Page, error_box, pretty_json, unix_time};
use crate::console::Viewer;
use crate::query::{Ctx, iam};

/// The most roles the list shows.
const SHOWN: usize = 1_000;

pub(crate) async fn list(viewer: Viewer) -> Response {
    let ctx = viewer.ctx();
    let page = Page::new("/console/roles", "Roles");
    if let Err(e) = ctx.authorize("iam:ListRoles", &ctx.list_resource("role", None)) {
        return page
            .status(StatusCode::FORBIDDEN)
            .render(&viewer, error_box(&e));
    }
    let listed = viewer.app.inner.iam.list_roles(None, None, SHOWN);
    let state = viewer.app.inner.iam.state();
    let body = html! {
        @if listed.items.is_empty() {
            p.muted { "There are no roles." }
        } @else {
            table.roles {
                thead { tr { th { "Name" } th { "ARN" } th { "Created" } th { "Description" } } }
                tbody {
                    @for role in &listed.items {
                        @let r = &role.record;
                        tr {
                            td { a href={ "/console/roles/" (r.name) } { (r.name) } }
                            td { code { (state.role_arn(r)) } }
                            td { (unix_time(r.created)) }
                            td { (r.description.as_deref().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if listed.marker.is_some() {
            p.muted { "Only the first " (SHOWN) " roles are shown." }
        }
    };
    drop(state);
    page.render(&viewer, body)
}

/// One role, as a section of the role page sees it.
pub(crate) struct RoleView<'a> {
    pub(crate) ctx: &'a Ctx<'a>,
    pub(crate) role: &'a RoleEntry,
    pub(crate) arn: &'a str,
    /// The workloads that reach the role (the access analysis, as the viewer may see it).
    pub(crate) assumers: Option<&'a [podiam_access::Assumer]>,
}

/// The role page's sections, in order. Each authorizes its own reads; a new one (who can
/// assume this role, say) is one more function here.
const SECTIONS: &[fn(&RoleView<'_>) -> Markup] = &[
    summary,
    trust,
    assumed_by,
    tags,
    inline_policies,
    attached_policies,
    boundary,
];

pub(crate) async fn role(viewer: Viewer, Path(name): Path<String>) -> Response {
    let ctx = viewer.ctx();
    let arn = ctx.role_arn(&name);
    let page = Page::new("/console/roles", &name);
    // As GetRole: authorized first, so a caller without it learns nothing, not even whether
    // the role exists.
    if let Err(e) = ctx.authorize("iam:GetRole", &arn) {
        return page
            .status(StatusCode::FORBIDDEN)
            .render(&viewer, error_box(&e));
    }
    let role = match viewer.app.inner.iam.get_role(&name).map_err(iam) {
        Ok(role) => role,
        Err(e) => {
            return page
                .status(StatusCode::NOT_FOUND)
                .render(&viewer, error_box(&e));
        }
    };
    let (app, caller, facts, role_arn) = (
        viewer.app.clone(),
        viewer.caller.clone(),
        viewer.facts.clone(),
        arn.clone(),
    );
    let assumers = tokio::task::spawn_blocking(move || {
        crate::access_api::analyse(&app, &caller, &facts, |snapshot| {
            podiam_access::assumers(snapshot, &role_arn)
        })
    })
    .await
    .ok()
    .flatten();
    let view = RoleView {
        ctx: &ctx,
        role: &role,
        arn: &arn,
        assumers: assumers.as_deref(),
    };
    let body = html! {
        @for section in SECTIONS {
            (section(&view))
        }
    };
    page.render(&viewer, body)
}

fn summary(view: &RoleView<'_>) -> Markup {
    let r = &view.role.record;
    html! {
        dl {
            dt { "ARN" } dd { code { (view.arn) } }
            dt { "Role id" } dd { code { (r.id) } }
            dt { "Path" } dd { code { (r.path) } }
            dt { "Created" } dd { (unix_time(r.created)) }
            dt { "Longest session" } dd { (r.max_session) " s" }
            @if let Some(d) = &r.description {
                dt { "Description" } dd { (d) }
            }
        }
    }
}

fn assumed_by(view: &RoleView<'_>) -> Markup {
    html! {
        h2 { "Who can assume this role" }
        @if view.assumers.is_none() {
            p.denied { (super::NOT_ANALYSED) }
        } @else if view.assumers.unwrap_or_default().is_empty() {
            p.muted id="assumers-none" { "No service account reaches this role (among the associations and trusts you may read)." }
        } @else {
            table id="assumers" {
                thead { tr { th { "Cluster" } th { "Namespace" } th { "Service account" } th { "Path" } th { "Trust" } } }
                tbody {
                    @for a in view.assumers.unwrap_or_default() {
                        tr {
                            td { (a.workload.cluster) }
                            td { (a.workload.namespace) }
                            td { (a.workload.service_account) }
                            td {
                                (a.path.as_str())
                                @if let Some(into) = &a.chain_into {
                                    br; span.muted { "first role of a chain into " (into) }
                                }
                            }
                            td { span class=(super::access::outcome_class(a.trust)) { (super::access::outcome_name(a.trust)) } }
                        }
                    }
                }
            }
        }
    }
}

fn trust(view: &RoleView<'_>) -> Markup {
    html! {
        h2 { "Trust policy" }
        pre.trust { (pretty_json(&view.role.record.trust)) }
    }
}

fn tags(view: &RoleView<'_>) -> Markup {
    let tags = &view.role.record.tags;
    html! {
        h2 { "Tags" }
        @if tags.is_empty() {
            p.muted { "None." }
        } @else {
            table.tags {
                thead { tr { th { "Key" } th { "Value" } } }
                tbody { @for (k, v) in tags { tr { td { (k) } td { (v) } } } }
            }
        }
    }
}

fn inline_policies(view: &RoleView<'_>) -> Markup {
    let inline = &view.role.record.inline;
    html! {
        h2 { "Inline policies" }
        @match view.ctx.authorize("iam:ListRolePolicies", view.arn) {
            Err(e) => (error_box(&e)),
            Ok(()) => {
                @if inline.is_empty() {
                    p.muted { "None." }
                }
                @for (name, document) in inline.iter() {
                    h3 { (name) }
                    @match view.ctx.authorize("iam:GetRolePolicy", view.arn) {
                        Ok(()) => { pre.policy { (pretty_json(document)) } }
                        Err(e) => (error_box(&e)),
                    }
                }
            }
        }
    }
}

/// A managed policy's default version, if the caller may read it.
fn managed_document(view: &RoleView<'_>, policy_arn: &str) -> Markup {
    // The state's guard is dropped at once: authorizing takes it again, and a writer waiting
    // between the two would leave both waiting for ever.
    let policy = view.ctx.app.inner.iam.state().policy(policy_arn);
    html! {
        @match view.ctx.authorize("iam:GetPolicyVersion", policy_arn) {
            Err(e) => (error_box(&e)),
            Ok(()) => {
                @match policy.as_ref().and_then(|p| p.record.default_document()) {
                    Some(document) => { pre.policy { (pretty_json(document)) } }
                    None => { p.muted { "The policy " code { (policy_arn) } " does not exist." } }
                }
            }
        }
    }
}

fn attached_policies(view: &RoleView<'_>) -> Markup {
    let attached = &view.role.record.attached;
    html! {
        h2 { "Attached policies" }
        @match view.ctx.authorize("iam:ListAttachedRolePolicies", view.arn) {
            Err(e) => (error_box(&e)),
            Ok(()) => {
                @if attached.is_empty() {
                    p.muted { "None." }
                }
                @for policy_arn in attached {
                    h3 { code { (policy_arn) } }
                    (managed_document(view, policy_arn))
                }
            }
        }
    }
}

fn boundary(view: &RoleView<'_>) -> Markup {
    html! {
        h2 { "Permissions boundary" }
        @match &view.role.record.boundary {
            None => { p.muted { "None." } }
            Some(policy_arn) => {
                h3 { code { (policy_arn) } }
                (managed_document(view, policy_arn))
            }
        }
    }
}
