//! `POST /podiam/authorize`: a service proxy (`podiam gateway`) asks whether a request it
//! received is signed by a known caller whose policies allow every action it needs.
//!
//! The proxy sends the request's method, path, query, headers and the SHA-256 of its body (not
//! the body); the server decides with its [`crate::Authority`]: it verifies the signature with
//! the caller's secret and evaluates the caller's policies (identity, boundary, session) with
//! the caller's principal tags. The proxy itself must be signed and allowed
//! `podiam:AuthorizeRequest`. (`podiam gateway --store` decides locally with the same
//! authority instead.)
//!
//! Each authorization may carry the service's own condition keys (`context`, only keys of the
//! service's prefix, e.g. `dynamodb:LeadingKeys`: a proxy cannot set `aws:` keys), and name keys
//! whose values the proxy could not determine (`unknown`): the request is then refused if a
//! policy of the caller reads one of them. `verifyOnly` checks the signature alone, for a proxy
//! that must know who is asking before it does work on their behalf (a `DescribeTable`).

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use podiam_iam::RequestFacts;
use podiam_policy::ContextValue;
use podiam_wire::WireError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::authority::{AuthorizationAsk, AuthorizeAsk, Decision};
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
    #[serde(default)]
    authorizations: Vec<Authorization>,
    #[serde(default)]
    verify_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Authorization {
    action: String,
    resource: String,
    #[serde(default)]
    context: BTreeMap<String, ContextInput>,
    #[serde(default)]
    unknown: Vec<String>,
}

/// A condition key's value as a proxy sends it: a string, or a list for a multivalued key.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ContextInput {
    Single(String),
    Set(Vec<String>),
}

/// At most this many condition keys per authorization, and values per key.
const MAX_CONTEXT_KEYS: usize = 16;
const MAX_CONTEXT_VALUES: usize = 10_000;

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
        let wanted = if ask.verify_only {
            0..=0
        } else {
            1..=MAX_AUTHORIZATIONS
        };
        if !wanted.contains(&ask.authorizations.len()) {
            return Err(invalid(format!(
                "authorizations must have 1 to {MAX_AUTHORIZATIONS} entries (none with verifyOnly)"
            )));
        }
        let prefix = format!("{}:", ask.service);
        for authorization in &ask.authorizations {
            let keys = authorization.context.keys().chain(&authorization.unknown);
            if authorization.context.len() + authorization.unknown.len() > MAX_CONTEXT_KEYS {
                return Err(invalid(format!(
                    "at most {MAX_CONTEXT_KEYS} condition keys per authorization"
                )));
            }
            for key in keys {
                if !key.starts_with(&prefix) || key.len() > 128 {
                    return Err(invalid(format!(
                        "condition key {key:?} is not a key of the {} service",
                        ask.service
                    )));
                }
            }
            let values: usize = authorization
                .context
                .values()
                .map(|v| match v {
                    ContextInput::Single(_) => 1,
                    ContextInput::Set(vs) => vs.len(),
                })
                .sum();
            if values > MAX_CONTEXT_VALUES {
                return Err(invalid(format!(
                    "at most {MAX_CONTEXT_VALUES} condition key values per authorization"
                )));
            }
        }
        let headers = header_map(&ask.headers)?;
        Ok(decide(&call.app, ask, &headers, &input.ctx.facts))
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
fn decide(app: &App, ask: AuthorizeInput, headers: &HeaderMap, proxy: &RequestFacts) -> Value {
    let ask = AuthorizeAsk {
        service: &ask.service,
        method: &ask.method,
        path: &ask.path,
        query: &ask.query,
        headers,
        body_sha256: &ask.body_sha256,
        source_ip: ask.source_ip.clone(),
        proxy_user_agent: proxy.user_agent.as_deref(),
        authorizations: ask
            .authorizations
            .into_iter()
            .map(|wanted| AuthorizationAsk {
                action: wanted.action,
                resource: wanted.resource,
                context: wanted
                    .context
                    .into_iter()
                    .map(|(key, value)| {
                        let value = match value {
                            ContextInput::Single(v) => ContextValue::Single(v),
                            ContextInput::Set(vs) => ContextValue::Multi(vs),
                        };
                        (key, value)
                    })
                    .collect(),
                unknown: wanted.unknown,
            })
            .collect(),
    };
    match app.authority().decide(&ask) {
        Decision::Allow {
            principal,
            access_key_id,
        } => json!({
            "decision": "Allow",
            "principal": principal,
            "accessKeyId": access_key_id,
        }),
        Decision::Deny { principal, error } => json!({
            "decision": "Deny",
            "principal": principal,
            "error": {"code": error.code, "message": error.message, "status": error.status},
        }),
    }
}
