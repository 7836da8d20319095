//! `POST /podiam/authorize`: a service proxy (`podiam gateway`) asks whether a request it
//! received is signed by a known caller whose policies allow every action it needs.
//!
//! The proxy sends the request's method, path, query, headers and the SHA-256 of its body (not
//! the body); the server verifies the signature with the caller's secret, which only it holds,
//! and evaluates the caller's policies (identity, boundary, session) with the caller's
//! principal tags. The proxy itself must be signed and allowed `podiam:AuthorizeRequest`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use podiam_iam::{Caller, RequestFacts};
use podiam_sigv4::{SignedRequest, Verifier};
use podiam_wire::{Api, WireError, access_error, sigv4_error};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::Lookup;
use crate::rest::{Call, RestApi, invalid};

/// The services whose requests a proxy may ask about (their signing names).
const SERVICES: &[&str] = &["dynamodb"];
/// At most this many actions per request (a 100-item transaction).
const MAX_AUTHORIZATIONS: usize = 100;
/// At most this many headers, each at most 16 KiB.
const MAX_HEADERS: usize = 128;
const MAX_HEADER_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthorizeInput {
    service: String,
    method: String,
    path: String,
    #[serde(default)]
    query: String,
    headers: Vec<(String, String)>,
    body_sha256: String,
    #[serde(default)]
    source_ip: Option<String>,
    authorizations: Vec<Authorization>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Authorization {
    action: String,
    resource: String,
}

/// `POST /podiam/authorize`.
pub(crate) async fn authorize(State(app): State<App>, request: Request) -> Response {
    let call = Call::new(app, RestApi::Podiam, "Authorize");
    let result = async {
        let mut input = call.begin(request).await?;
        input.ctx.authorize("podiam:AuthorizeRequest", "*")?;
        let body = std::mem::take(&mut input.body);
        let ask: AuthorizeInput = serde_json::from_value(Value::Object(body))
            .map_err(|e| invalid(format!("the authorization request is malformed: {e}")))?;
        if !SERVICES.contains(&ask.service.as_str()) {
            return Err(invalid(format!(
                "service {:?} is not one podiam authorizes",
                ask.service
            )));
        }
        if ask.authorizations.is_empty() || ask.authorizations.len() > MAX_AUTHORIZATIONS {
            return Err(invalid(format!(
                "authorizations must have 1 to {MAX_AUTHORIZATIONS} entries"
            )));
        }
        let headers = header_map(&ask.headers)?;
        Ok(decide(&call.app, &ask, &headers, &input.ctx.facts))
    }
    .await;
    call.finish(result)
}

fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, WireError> {
    if pairs.len() > MAX_HEADERS {
        return Err(invalid(format!("at most {MAX_HEADERS} headers")));
    }
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if name.len() + value.len() > MAX_HEADER_BYTES {
            return Err(invalid(format!("header {name:?} is too long")));
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("{name:?} is not a header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of {name} is not a header value")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// The decision as JSON: `{"decision": "Allow", "principal": …}` or `{"decision": "Deny",
/// "error": {"code", "message", "status"}}`, the error as the service would send it.
fn decide(app: &App, ask: &AuthorizeInput, headers: &HeaderMap, proxy: &RequestFacts) -> Value {
    let now = app.now();
    let signed = SignedRequest {
        method: &ask.method,
        path: &ask.path,
        query: &ask.query,
        headers,
        body: b"",
    };
    let verified = match Verifier::new(&ask.service).verify_digest(
        &signed,
        &ask.body_sha256,
        &Lookup { app, now },
        now,
    ) {
        Ok(v) => v,
        Err(e) => return deny(&sigv4_error(&e, Api::DynamoDb), None),
    };
    let caller: Caller = verified.identity;
    let state = app.inner.iam.state();
    let principal = caller.arn(&state);
    let facts = RequestFacts {
        now,
        source_ip: ask.source_ip.clone(),
        secure_transport: false,
        region: verified.region,
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| proxy.user_agent.clone()),
    };
    for wanted in &ask.authorizations {
        if let Err(e) = state.authorize(&caller, &wanted.action, &wanted.resource, &facts, &[]) {
            return deny(&access_error(&e, Api::DynamoDb), Some(&principal));
        }
    }
    json!({
        "decision": "Allow",
        "principal": principal,
        "accessKeyId": verified.access_key_id,
    })
}

fn deny(error: &WireError, principal: Option<&str>) -> Value {
    json!({
        "decision": "Deny",
        "principal": principal,
        "error": {"code": error.code, "message": error.message, "status": error.status},
    })
}
