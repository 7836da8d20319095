//! The web console under `/console/`: server-rendered pages of what the signed-in principal's
//! own IAM permissions let it read. The only way in is a one-time sign-in URL that `podiam
//! console` asks for with the caller's credentials ([`signin`]); every read a page makes is
//! authorized like the API call it stands for, as that principal.
//!
//! A page is a module in [`pages`] and an entry in [`NAV`] plus its route in [`router`].

pub(crate) mod pages;
mod session;
pub(crate) mod signin;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use podiam_iam::{Caller, RequestFacts};
use podiam_wire::Api;
use time::OffsetDateTime;

use crate::app::App;
use crate::query::Ctx;
pub(crate) use session::Stores;

/// The session cookie.
const COOKIE: &str = "podiam-console";
/// The largest form body a console page accepts.
const MAX_FORM_BYTES: usize = 64 << 10;
/// Every console response's policy: nothing from elsewhere, no inline script or style, no
/// framing, forms only to the console itself.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The one style sheet, compiled in.
const CSS: &str = include_str!("assets/console.css");

/// One entry of the navigation.
#[derive(Debug)]
pub(crate) struct NavEntry {
    pub(crate) path: &'static str,
    pub(crate) title: &'static str,
    /// One line for the overview.
    pub(crate) summary: &'static str,
}

/// The pages, in the navigation's order. A new page adds its entry here, its module in
/// `pages/` and its route in [`router`].
pub(crate) const NAV: &[NavEntry] = &[
    NavEntry {
        path: "/console/clusters",
        title: "Clusters",
        summary: "Clusters, their token issuers and their pod identity associations.",
    },
    NavEntry {
        path: "/console/roles",
        title: "Roles",
        summary: "IAM roles with their trust, inline, attached and boundary policies.",
    },
    NavEntry {
        path: "/console/access",
        title: "Access",
        summary: "The access graph: service accounts, the roles they get, what those roles allow; and who can do what.",
    },
    NavEntry {
        path: "/console/findings",
        title: "Findings",
        summary: "Problems in trust policies, associations and permissions, each with a fix.",
    },
    NavEntry {
        path: "/console/audit",
        title: "Audit",
        summary: "Credentials issued and denied, live.",
    },
    NavEntry {
        path: "/console/simulate",
        title: "Policy simulator",
        summary: "Would a user or role be allowed an action on a resource, and why.",
    },
];

/// The console's configuration and in-memory state (one per replica).
#[derive(Debug)]
pub(crate) struct Console {
    /// The configured origin (`scheme://host[:port]` of `--public-url`): the console is at
    /// its `/console/`. Without one, the `Host` of the signed request that asks for a sign-in
    /// URL, over http.
    origin: Option<String>,
    stores: Stores,
}

impl Console {
    /// The console reached at `url` (`--public-url`), or at whatever `Host` the signed
    /// request for a sign-in URL names.
    pub(crate) fn new(url: Option<&str>) -> Result<Self, String> {
        let origin = url
            .map(|text| {
                let parsed = url::Url::parse(text)
                    .map_err(|e| format!("--public-url {text:?} is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https")
                    || parsed.host_str().is_none()
                    || !parsed.username().is_empty()
                    || parsed.password().is_some()
                    || parsed.query().is_some()
                    || parsed.fragment().is_some()
                {
                    return Err(format!(
                        "--public-url {text:?} must be http(s)://host[:port][/path], without user, query or fragment"
                    ));
                }
                Ok(parsed.origin().ascii_serialization())
            })
            .transpose()?;
        Ok(Self {
            origin,
            stores: Stores::default(),
        })
    }

    /// Whether browsers reach the console over TLS (a proxy in front of this server that
    /// `--public-url https://…` names): the session cookie is then `Secure`. This server
    /// itself serves plain http only.
    fn secure(&self) -> bool {
        self.origin
            .as_ref()
            .is_some_and(|o| o.starts_with("https://"))
    }

    /// The origin the console's pages are served from, for a request with `headers`: the
    /// configured one, else `http://` and the request's `Host` (when it is a valid one).
    fn origin(&self, uri: &http::Uri, headers: &HeaderMap) -> Option<String> {
        if let Some(origin) = &self.origin {
            return Some(origin.clone());
        }
        podiam_http::addressed_host(uri, headers).ok()?;
        let host = headers.get(header::HOST)?.to_str().ok()?;
        Some(format!("http://{}", host.to_ascii_lowercase()))
    }

    /// The URL of a console path (`/console/…`) for a request with `headers`.
    fn url(&self, uri: &http::Uri, headers: &HeaderMap, path: &str) -> Option<String> {
        Some(format!("{}{path}", self.origin(uri, headers)?))
    }
}

/// The console's routes (the sign-in token endpoint is an API call, in app.rs).
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::overview::page))
        .route("/console/console.css", get(css))
        .route("/console/signin", get(signin::redeem))
        .route("/console/signout", post(signin::signout))
        .route("/console/clusters", get(pages::clusters::page))
        .route("/console/roles", get(pages::roles::list))
        .route("/console/roles/{name}", get(pages::roles::role))
        .route("/console/audit", get(pages::audit::page))
        .route("/console/access", get(pages::access::page))
        .route("/console/findings", get(pages::findings::page))
        .route(
            "/console/simulate",
            get(pages::simulate::form_page).post(pages::simulate::run),
        )
        .route("/console/{*rest}", any(not_found))
        .layer(axum::middleware::map_response(secure_headers))
}

/// Every console response: the content security policy and no sniffing, referrers, caching
/// or framing.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn not_found() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such console page.",
    )
}

/// The signed-in principal of a console request, as IAM holds it now.
pub(crate) struct Viewer {
    pub(crate) app: App,
    pub(crate) caller: Caller,
    /// The caller's ARN.
    pub(crate) arn: String,
    pub(crate) session: session::ConsoleSession,
    /// The cookie's value (to end the session).
    session_id: String,
    pub(crate) facts: RequestFacts,
}

/// The client's address, as the connection gives it.
pub(crate) fn source_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

impl Viewer {
    /// The context that authorizes reads as the API does.
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            app: &self.app,
            api: Api::Iam,
            caller: Some(self.caller.clone()),
            facts: self.facts.clone(),
            request_id: self.app.request_id(),
        }
    }

    /// When the session ends.
    pub(crate) fn expires(&self) -> OffsetDateTime {
        self.session.expires
    }
}

/// The session cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `Set-Cookie` for a session `id` that lives `max_age` seconds (0 clears it).
fn cookie(console: &Console, id: &str, max_age: i64) -> HeaderValue {
    let secure = if console.secure() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/console/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("podiam-console=; Path=/console/; Max-Age=0"))
}

/// A page that says the browser is not signed in (and clears a stale cookie).
fn signed_out(console: &Console, why: &str) -> Response {
    let mut response = pages::message(
        StatusCode::FORBIDDEN,
        "Not signed in",
        &format!("{why} Run `podiam console` with your credentials to sign in."),
    );
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(console, "", 0));
    response
}

impl FromRequestParts<App> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let console = &app.inner.console;
        let now = app.now();
        let Some(id) = session_cookie(&parts.headers) else {
            return Err(signed_out(console, "This browser is not signed in."));
        };
        let Some(session) = console.stores.session(&id, now) else {
            return Err(signed_out(
                console,
                "This console session has ended or is not valid.",
            ));
        };
        let state = app.inner.iam.state();
        let Some(caller) = session.identity.caller(&state, now) else {
            drop(state);
            console.stores.end(&id);
            return Err(signed_out(
                console,
                "The identity this session signed in as no longer exists or has expired.",
            ));
        };
        let arn = caller.arn(&state);
        drop(state);
        let source_ip = source_ip(parts);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            app: app.clone(),
            caller,
            arn,
            session,
            session_id: id,
            facts: RequestFacts {
                now,
                source_ip,
                secure_transport: console.secure(),
                region: app.inner.region.clone(),
                user_agent,
            },
        })
    }
}

/// Why a state-changing request is refused.
fn refused(why: &str) -> Response {
    pages::message(StatusCode::FORBIDDEN, "Request refused", why)
}

/// The form of a state-changing request (POST) from the console's own pages: same origin by
/// `Sec-Fetch-Site` and `Origin` (at least one of them present: a browser sends `Origin:
/// null` under `Referrer-Policy: no-referrer`, and `Sec-Fetch-Site` then decides), and the
/// session's CSRF token in the `csrf` field.
pub(crate) async fn form(
    viewer: &Viewer,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, Response> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or_default());
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default())
        .filter(|o| *o != "null");
    if fetch_site.is_some_and(|site| site != "same-origin") {
        return Err(refused(
            "This request came from another site (Sec-Fetch-Site); the console only accepts forms from its own pages.",
        ));
    }
    if let Some(origin) = origin {
        let expected = viewer.app.inner.console.origin(uri, headers);
        if expected.as_deref() != Some(origin) {
            return Err(refused(
                "This request came from another origin; the console only accepts forms from its own pages.",
            ));
        }
    }
    if fetch_site.is_none() && origin.is_none() {
        return Err(refused(
            "This request says neither where it came from (Origin) nor what sent it (Sec-Fetch-Site).",
        ));
    }
    let (bytes, _permit) =
        podiam_http::read_body(body, MAX_FORM_BYTES, &viewer.app.inner.body_budget)
            .await
            .map_err(|e| {
                pages::message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request refused",
                    &e.to_string(),
                )
            })?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !viewer.session.csrf_matches(csrf) {
        return Err(refused(
            "This form's token does not belong to this session (CSRF); reload the page and try again.",
        ));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    #[test]
    fn the_configured_url_wins_over_the_host() {
        let uri = http::Uri::from_static("/podiam/console/signin-token");
        let console = Console::new(Some("https://podiam.example.com/")).unwrap();
        assert!(console.secure());
        assert_eq!(
            console
                .url(&uri, &headers("evil.example"), "/console/")
                .as_deref(),
            Some("https://podiam.example.com/console/")
        );
        let behind = Console::new(Some("http://proxy.example:8080/podiam")).unwrap();
        assert!(!behind.secure());
        assert_eq!(
            behind.url(&uri, &headers("x"), "/console/").as_deref(),
            Some("http://proxy.example:8080/console/")
        );
        assert_eq!(
            behind.origin(&uri, &headers("x")).as_deref(),
            Some("http://proxy.example:8080")
        );
    }

    #[test]
    fn without_a_url_the_host_decides_when_it_is_one() {
        let uri = http::Uri::from_static("/podiam/console/signin-token");
        let console = Console::new(None).unwrap();
        assert!(!console.secure());
        assert_eq!(
            console
                .url(&uri, &headers("127.0.0.1:4599"), "/console/")
                .as_deref(),
            Some("http://127.0.0.1:4599/console/")
        );
        for bad in ["a@b", "host:99999", "[:]", "a/b"] {
            assert_eq!(console.url(&uri, &headers(bad), "/console/"), None, "{bad}");
        }
        assert_eq!(console.url(&uri, &HeaderMap::new(), "/console/"), None);
    }

    #[test]
    fn a_url_that_is_not_one_is_refused() {
        for bad in [
            "podiam.example.com",
            "ftp://x",
            "https://u:p@x",
            "https://x/?q",
            "https://x/#f",
        ] {
            assert!(Console::new(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cookie_is_secure_only_over_tls() {
        let plain = Console::new(None).unwrap();
        assert_eq!(
            cookie(&plain, "id", 3600),
            "podiam-console=id; Path=/console/; Max-Age=3600; HttpOnly; SameSite=Strict"
        );
        let tls = Console::new(Some("https://podiam.example.com")).unwrap();
        assert!(
            cookie(&tls, "id", 10)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
