//! Who decides whether a request's caller may do what it needs: the podiam server over HTTP
//! ([`RemoteAuthorizer`], `POST /podiam/authorize`), or an authority in this process that
//! follows the server's store (`podiam gateway --store`, `podiam dev`), which saves the round
//! trip. Either way the answer is the same decision, made by the same code.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use axum::http::Method;
use axum::http::request::Parts;
use podiam_client::AwsClient;
use podiam_wire::{Api, WireError};
use serde_json::{Value, json};

use crate::GatewayError;
use crate::dynamodb;

/// One request to decide: as received (its signature covers the method, path, query and
/// headers, and the body's SHA-256), and the actions it needs.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The request's head.
    pub parts: &'a Parts,
    /// The hex SHA-256 of its body.
    pub body_sha256: &'a str,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// The actions it needs; `None` to verify the signature only.
    pub wanted: Option<&'a [dynamodb::Authorization]>,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Signed by `principal`, and every action is allowed.
    Allow {
        /// The caller's ARN.
        principal: String,
    },
    /// Refused, with DynamoDB's error.
    Deny {
        /// The caller's ARN, when the signature verified.
        principal: Option<String>,
        /// The error the client gets.
        error: WireError,
    },
}

/// A future the authorizer answers with.
pub type VerdictFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Verdict, GatewayError>> + Send + 'a>>;

/// Decides requests. [`GatewayError::AuthorizerUnavailable`] when it cannot (the client gets
/// `InternalServerError`).
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Verifies `ask`'s signature and evaluates the actions it needs.
    fn authorize<'a>(&'a self, ask: Ask<'a>) -> VerdictFuture<'a>;
}

/// Asks the podiam server (`POST /podiam/authorize`), signed as the gateway's own identity,
/// which needs `podiam:AuthorizeRequest` and nothing else: a gateway that holds no secrets.
#[derive(Debug)]
pub struct RemoteAuthorizer {
    server: AwsClient,
}

impl RemoteAuthorizer {
    /// Asks `server`.
    pub fn new(server: AwsClient) -> Self {
        Self { server }
    }
}

impl Authorizer for RemoteAuthorizer {
    fn authorize<'a>(&'a self, ask: Ask<'a>) -> VerdictFuture<'a> {
        Box::pin(async move {
            let answer = self
                .server
                .rest_json(
                    "podiam",
                    Method::POST,
                    "/podiam/authorize",
                    Some(&remote_ask(&ask)),
                )
                .await
                .map_err(|e| GatewayError::AuthorizerUnavailable(e.to_string()))?
                .body;
            let principal = answer
                .get("principal")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (answer.get("decision").and_then(Value::as_str), principal) {
                (Some("Allow"), Some(principal)) => Ok(Verdict::Allow { principal }),
                (Some("Deny"), principal) => {
                    let error = answer.get("error").cloned().unwrap_or(Value::Null);
                    Ok(Verdict::Deny {
                        principal,
                        error: podiam_wire::relayed_error(&error, Api::DynamoDb),
                    })
                }
                _ => Err(GatewayError::AuthorizerUnavailable(
                    "the server's answer has no decision".to_owned(),
                )),
            }
        })
    }
}

/// The body of `POST /podiam/authorize`.
fn remote_ask(ask: &Ask<'_>) -> Value {
    let parts = ask.parts;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    json!({
        "service": "dynamodb",
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "bodySha256": ask.body_sha256,
        "sourceIp": ask.source_ip.map(|ip| ip.to_string()),
        "verifyOnly": ask.wanted.is_none(),
        "authorizations": ask
            .wanted
            .unwrap_or_default()
            .iter()
            .map(|a| {
                json!({
                    "action": a.action,
                    "resource": a.resource,
                    "context": a.context.iter().cloned().collect::<BTreeMap<_, _>>(),
                    "unknown": a.unknown,
                })
            })
            .collect::<Vec<_>>(),
    })
}
