//! `/console/clusters`: each cluster with its token issuer and its pod identity associations,
//! read as `eks:ListClusters`, `eks:DescribeCluster`, `eks:ListPodIdentityAssociations` and
//! `eks:DescribePodIdentityAssociation`.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use podiam_eks::IssuerRecord;
use podiam_wire::{Api, eks_error};

use super::{Page, error_box, unix_time};
use crate::console::Viewer;
use crate::query::Ctx;

/// The most clusters, and associations of one cluster, a page lists.
const SHOWN: usize = 500;

pub(crate) async fn page(viewer: Viewer) -> Response {
    let ctx = viewer.ctx();
    let page = Page::new("/console/clusters", "Clusters");
    if let Err(e) = ctx.authorize("eks:ListClusters", "*") {
        return page
            .status(StatusCode::FORBIDDEN)
            .render(&viewer, error_box(&e));
    }
    let (names, more) = viewer.app.inner.eks.list_clusters(None, SHOWN);
    let body = html! {
        @if names.is_empty() {
            p.muted { "There are no clusters." }
        }
        @for name in &names {
            (cluster(&ctx, name))
        }
        @if more.is_some() {
            p.muted { "Only the first " (SHOWN) " clusters are shown." }
        }
    };
    page.render(&viewer, body)
}

fn cluster(ctx: &Ctx<'_>, name: &str) -> Markup {
    let eks = &ctx.app.inner.eks;
    let arn = eks.cluster_arn(name);
    let described = ctx.authorize("eks:DescribeCluster", &arn).and_then(|()| {
        eks.describe_cluster(name)
            .map_err(|e| eks_error(&e, Api::Eks))
    });
    let associations = ctx
        .authorize("eks:ListPodIdentityAssociations", &arn)
        .and_then(|()| {
            eks.list_associations(name, None, None, None, SHOWN)
                .map_err(|e| eks_error(&e, Api::Eks))
        });
    html! {
        section.cluster {
            h2 { (name) }
            @match &described {
                Ok(entry) => {
                    @let r = &entry.record;
                    dl {
                        dt { "ARN" } dd { code { (arn) } }
                        dt { "Issuer" } dd {
                            (match r.issuer { IssuerRecord::Hosted { .. } => "hosted", IssuerRecord::External { .. } => "external" })
                            " " code.issuer { (r.issuer.url()) }
                        }
                        dt { "Kubernetes version" } dd { (r.version) }
                        dt { "Created" } dd { (unix_time(r.created)) }
                        @if let Some(role) = &r.role_arn {
                            dt { "Cluster role" } dd { code { (role) } }
                        }
                    }
                }
                Err(e) => (error_box(e)),
            }
            h3 { "Pod identity associations" }
            @match &associations {
                Ok((items, more)) => {
                    @if items.is_empty() {
                        p.muted { "None." }
                    } @else {
                        table.associations {
                            thead { tr { th { "Namespace" } th { "Service account" } th { "Role ARN" } th { "Target role ARN" } th { "Association" } } }
                            tbody {
                                @for a in items {
                                    @let r = &a.record;
                                    tr {
                                        td { (r.namespace) }
                                        td { (r.service_account) }
                                        @match ctx.authorize("eks:DescribePodIdentityAssociation", &eks.association_arn(name, &r.id)) {
                                            Ok(()) => {
                                                td { code { (r.role_arn) } }
                                                td { @if let Some(t) = &r.target_role_arn { code { (t) } } @else { span.muted { "—" } } }
                                            }
                                            Err(e) => { td colspan="2" { (error_box(&e)) } }
                                        }
                                        td { code { (r.id) } }
                                    }
                                }
                            }
                        }
                        @if more.is_some() {
                            p.muted { "Only the first " (SHOWN) " associations are shown." }
                        }
                    }
                }
                Err(e) => (error_box(e)),
            }
        }
    }
}
