//! `/console/audit`: the credentials this replica issued and denied and the API calls it
//! refused, newest first, reloading
//! every 5 seconds; read as `cloudtrail:LookupEvents`.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::{Page, error_box, time};
use crate::audit::AuditRing;
use crate::console::Viewer;

pub(crate) async fn page(viewer: Viewer) -> Response {
    let ctx = viewer.ctx();
    let page = Page::new("/console/audit", "Audit");
    // Reloaded only once allowed: a refused page that reloaded would add a refused call to the
    // feed every 5 seconds for as long as it stays open.
    if let Err(e) = ctx.authorize("cloudtrail:LookupEvents", "*") {
        return page
            .status(StatusCode::FORBIDDEN)
            .render(&viewer, error_box(&e));
    }
    let page = page.refresh();
    let events = viewer.app.inner.audit.newest_first();
    let body = html! {
        p.muted {
            "The last " (AuditRing::CAPACITY) " events of this server: credentials issued or \
             denied, and API calls refused; newest first; the page reloads every 5 seconds."
        }
        @if events.is_empty() {
            p.muted { "No credentials have been asked for since the server started." }
        } @else {
            table.audit {
                thead {
                    tr {
                        th { "Time" } th { "Event" } th { "Operation" } th { "Principal" }
                        th { "Role or resource" } th { "Session" } th { "Source" } th { "Details" }
                    }
                }
                tbody {
                    @for e in &events {
                        @let issued = matches!(e.event.as_str(), "credential_issued" | "console_signin");
                        @let what = match e.event.as_str() {
                            "credential_issued" => "issued",
                            "console_signin" => "console sign-in",
                            "call_denied" => "call denied",
                            _ => "denied",
                        };
                        tr {
                            td { (time(e.at)) }
                            td class=(if issued { "issued" } else { "refused" }) { (what) }
                            td { (e.operation) }
                            td { code { (e.principal) } }
                            td { code { (e.role_arn) } }
                            td { (e.session_name) }
                            td { (e.source_ip) }
                            td {
                                @if let Some(key) = &e.access_key_id { "key " code { (key) } }
                                @if let Some(expiration) = &e.expiration { " until " (expiration) }
                                @if let Some(code) = &e.code { strong { (code) } }
                                @if let Some(message) = &e.message { " " (message) }
                                " " span.muted { "request " (e.request_id) }
                            }
                        }
                    }
                }
            }
        }
    };
    page.render(&viewer, body)
}
