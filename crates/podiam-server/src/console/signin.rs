//! Federation-style sign-in. `POST /podiam/console/signin-token` (signing name `podiam`) is
//! an API call like any other: its caller gets a sign-in URL with a one-time token that works
//! for [`TOKEN_LIFETIME`](super::session::TOKEN_LIFETIME). `GET /console/signin?token=…`
//! redeems it for a session cookie and redirects to the overview; `POST /console/signout`
//! ends the session.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use podiam_wire::WireError;
use serde_json::json;

use super::session::{Identity, Refused};
use super::{Viewer, cookie, form, pages, source_ip};
use crate::app::App;
use crate::rest::{Call, RestApi};

/// `POST /podiam/console/signin-token`: a one-time sign-in URL for the caller.
pub(crate) async fn signin_token(State(app): State<App>, request: Request) -> Response {
    let call = Call::new(app, RestApi::Podiam, "CreateConsoleSigninToken");
    let uri = request.uri().clone();
    // The Host is covered by the signature: it names the server the caller addressed.
    let headers = request.headers().clone();
    let result = async {
        let input = call.begin(request).await?;
        let inner = &call.app.inner;
        let now = input.ctx.facts.now;
        let caller = input.ctx.caller()?;
        let identity = Identity::of(caller);
        let base = inner.console.url(&uri, &headers, "/console/").ok_or_else(|| {
            WireError::new(
                "InvalidRequestException",
                400,
                "The request's Host header is not host[:port]; start the server with --public-url to name the console's address.",
            )
        })?;
        let (token, expires) = inner
            .console
            .stores
            .issue_token(identity, caller.limit_key(), inner.rng.as_ref(), now)
            .map_err(|e| match e {
                Refused::Full => WireError::new(
                    "ThrottlingException",
                    429,
                    "Too many console sign-in URLs are waiting to be used; try again in a few minutes.",
                ),
                _ => WireError::new("ServerException", 500, "Cannot make a sign-in token."),
            })?;
        Ok(json!({
            "signinUrl": format!("{base}signin?token={token}"),
            "consoleUrl": base,
            "expiresAt": expires.unix_timestamp(),
        }))
    }
    .await;
    call.finish(result)
}

/// `GET /console/signin?token=…`: redeems the token for a session cookie, then 303 to the
/// overview.
pub(crate) async fn redeem(State(app): State<App>, parts: Parts) -> Response {
    let (uri, headers) = (&parts.uri, &parts.headers);
    // A sign-in link opened from another site's page would sign this browser in as someone
    // else (login CSRF): it must be opened directly (address bar, `podiam console`).
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site")
    {
        return pages::message(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "This sign-in link was opened from another site. Open it directly: paste it into the address bar, or run `podiam console`.",
        );
    }
    let token = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let inner = &app.inner;
    let now = app.now();
    let redeemed = {
        let state = inner.iam.state();
        inner
            .console
            .stores
            .redeem(&token, &state, inner.rng.as_ref(), now)
    };
    match redeemed {
        Ok(session) => {
            crate::audit::record(
                &app,
                &crate::audit::AuditEvent {
                    event: "console_signin",
                    operation: "ConsoleSignin",
                    request_id: &app.request_id(),
                    role_arn: "",
                    principal: &session.principal_arn,
                    source_ip: &source_ip(&parts).unwrap_or_default(),
                    session_name: "",
                    access_key_id: None,
                    expiration: Some(&podiam_wire::iso8601(session.expires)),
                    code: None,
                    message: None,
                    reason: None,
                },
            );
            let max_age = (session.expires - now).whole_seconds().max(0);
            let mut response = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, HeaderValue::from_static("/console/"))],
            )
                .into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&inner.console, &session.id, max_age),
            );
            response
        }
        Err(why) => {
            let (status, text) = match why {
                Refused::Unknown => (
                    StatusCode::FORBIDDEN,
                    "This sign-in link has already been used or is not valid: each link works once. Run `podiam console` for a new one.",
                ),
                Refused::Expired => (
                    StatusCode::FORBIDDEN,
                    "This sign-in link has expired: a link works for 5 minutes. Run `podiam console` for a new one.",
                ),
                Refused::IdentityExpired => (
                    StatusCode::FORBIDDEN,
                    "The credentials this sign-in link was made with have expired or their user no longer exists.",
                ),
                Refused::Full => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many console sessions are open on this server; try again later.",
                ),
                Refused::Rng => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server cannot make a session now.",
                ),
            };
            pages::message(status, "Sign-in refused", text)
        }
    }
}

/// `POST /console/signout`: ends the session and clears the cookie.
pub(crate) async fn signout(viewer: Viewer, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    if let Err(refused) = form(&viewer, &uri, &headers, body).await {
        return refused;
    }
    let console = &viewer.app.inner.console;
    console.stores.end(&viewer.session_id);
    let mut response = pages::message(
        StatusCode::OK,
        "Signed out",
        "You are signed out. Run `podiam console` to sign in again.",
    );
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(console, "", 0));
    response
}
