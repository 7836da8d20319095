//! `/console/findings`: the findings of `podiam access findings`, for the roles and
//! associations the viewer may read.

use axum::extract::Query;
use axum::response::Response;
use maud::html;
use podiam_access::{FindingsOptions, Severity};
use serde::Deserialize;

use super::Page;
use crate::access_api::analyse;
use crate::console::Viewer;

/// The filter.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    cluster: String,
}

pub(crate) async fn page(viewer: Viewer, Query(filter): Query<Filter>) -> Response {
    let cluster =
        Some(filter.cluster.trim().to_owned()).filter(|c| !c.is_empty() && c.len() <= 100);
    let (app, caller, facts) = (
        viewer.app.clone(),
        viewer.caller.clone(),
        viewer.facts.clone(),
    );
    let c = cluster.clone();
    let found = tokio::task::spawn_blocking(move || {
        let upstream = app.inner.eks.upstream().map(|u| u.accounts.clone());
        let is_upstream = |arn: &str| upstream.as_ref().is_some_and(|u| u.holds(arn));
        analyse(&app, &caller, &facts, |snapshot| {
            podiam_access::findings(
                snapshot,
                &FindingsOptions {
                    cluster: c.as_deref(),
                    unused_days: 90,
                    upstream: &is_upstream,
                },
            )
        })
    })
    .await;
    let page = Page::new("/console/findings", "Findings");
    let Ok(Some(found)) = found else {
        return page.render(&viewer, html! { p.denied { (super::NOT_ANALYSED) } });
    };
    let count = |s: Severity| found.iter().filter(|f| f.severity == s).count();
    let body = html! {
        form.filter method="get" action="/console/findings" {
            label { "Cluster " input type="text" name="cluster" value=(filter.cluster) placeholder="all"; }
            button type="submit" { "Show" }
        }
        p id="summary" {
            (found.len()) " findings: " (count(Severity::Error)) " error, "
            (count(Severity::Warning)) " warning, " (count(Severity::Info)) " info"
        }
        @if !found.is_empty() {
            table id="findings" {
                thead { tr { th { "Severity" } th { "Code" } th { "Object" } th { "What" } th { "Fix" } } }
                tbody {
                    @for f in &found {
                        tr {
                            td { span class={ "severity " (f.severity.as_str()) } { (f.severity.as_str()) } }
                            td { code { (f.code) } }
                            td { code { (f.object) } }
                            td { (f.message) }
                            td { (f.fix) }
                        }
                    }
                }
            }
        }
        p.muted { "role-unused counts 90 days; podiam access findings --unused-days changes it." }
    };
    page.render(&viewer, body)
}
