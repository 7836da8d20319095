//! The console's pages, one module each, and the frame they share. Everything from state is
//! interpolated through maud, which escapes it.

pub(crate) mod access;
pub(crate) mod audit;
pub(crate) mod clusters;
pub(crate) mod findings;
pub(crate) mod overview;
pub(crate) mod roles;
pub(crate) mod simulate;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use podiam_wire::WireError;
use time::OffsetDateTime;

use super::{NAV, Viewer};

/// Shown where an access analysis could not run (too many at once, or it failed).
pub(crate) const NOT_ANALYSED: &str = "The access analysis could not run now (too many are running on this server); reload in a moment.";

/// How a page is framed.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    /// The navigation entry to highlight (its path).
    current: &'a str,
    title: &'a str,
    status: StatusCode,
    /// Reload every few seconds (the live audit feed).
    refresh: bool,
}

impl<'a> Page<'a> {
    pub(crate) fn new(current: &'a str, title: &'a str) -> Self {
        Self {
            current,
            title,
            status: StatusCode::OK,
            refresh: false,
        }
    }

    pub(crate) fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn refresh(mut self) -> Self {
        self.refresh = true;
        self
    }

    /// The page: navigation, who is signed in, sign-out, then `body`.
    pub(crate) fn render(self, viewer: &Viewer, body: Markup) -> Response {
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    @if self.refresh {
                        meta http-equiv="refresh" content="5";
                    }
                    title { (self.title) " · podiam console" }
                    link rel="stylesheet" href="/console/console.css";
                }
                body {
                    header {
                        a.brand href="/console/" { "podiam console" }
                        nav {
                            @for entry in NAV {
                                a class=[(entry.path == self.current).then_some("current")] href=(entry.path) { (entry.title) }
                            }
                        }
                        span.who {
                            "Signed in as " code { (viewer.arn) }
                        }
                        form method="post" action="/console/signout" {
                            input type="hidden" name="csrf" value=(viewer.session.csrf);
                            button type="submit" id="signout" { "Sign out" }
                        }
                    }
                    main {
                        h1 { (self.title) }
                        (body)
                    }
                }
            }
        };
        html_response(self.status, markup)
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A page with a message and no navigation (sign-in, sign-out, refusals, errors).
pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · podiam console" }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                header { a.brand href="/console/" { "podiam console" } }
                main {
                    h1 { (title) }
                    p.notice id="message" { (text) }
                }
            }
        }
    };
    html_response(status, markup)
}

/// An API error as the page shows it: AWS's code and message (`AccessDenied: User: … is not
/// authorized to perform: …`).
pub(crate) fn error_box(error: &WireError) -> Markup {
    html! {
        p.denied { strong { (error.code) } ": " (error.message) }
    }
}

/// A time as the APIs write it.
pub(crate) fn time(at: OffsetDateTime) -> String {
    podiam_wire::iso8601(at)
}

/// A time in seconds since the epoch, as records keep it.
pub(crate) fn unix_time(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds).map_or_else(|_| seconds.to_string(), time)
}

/// A JSON document indented two spaces, its members in the order written (a policy reads as
/// its author wrote it); text that is not JSON as it is.
pub(crate) fn pretty_json(text: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().saturating_mul(2));
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                out.push(c);
                if let Some(close) = chars.next_if(|n| matches!((c, n), ('{', '}') | ('[', ']'))) {
                    out.push(close);
                } else {
                    depth = depth.saturating_add(1);
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pretty_json;

    #[test]
    fn json_is_indented_in_the_order_written() {
        assert_eq!(
            pretty_json(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[],"Condition":{},"Resource":"a\\\",:{b"}]}"#
            ),
            "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": [],\n      \"Condition\": {},\n      \"Resource\": \"a\\\\\\\",:{b\"\n    }\n  ]\n}"
        );
        assert_eq!(pretty_json("not { json"), "not { json");
        assert_eq!(pretty_json(" [ 1 , 2 ] "), "[\n  1,\n  2\n]");
    }
}
