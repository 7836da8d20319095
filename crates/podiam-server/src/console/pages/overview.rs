//! `/console/`: who is signed in, and the pages.

use axum::response::Response;
use maud::html;

use super::{Page, time};
use crate::console::{NAV, Viewer};

pub(crate) async fn page(viewer: Viewer) -> Response {
    let body = html! {
        p { "Signed in as " code id="principal" { (viewer.arn) } "." }
        p.muted {
            "This session ends at " (time(viewer.expires())) ". Every page shows only what this \
             principal's IAM permissions allow it to read."
        }
        ul.pages {
            @for entry in NAV {
                li { a href=(entry.path) { (entry.title) } " — " (entry.summary) }
            }
        }
    };
    Page::new("/console/", "Overview").render(&viewer, body)
}
