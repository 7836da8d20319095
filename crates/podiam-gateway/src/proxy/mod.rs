//! `podiam gateway`: a SigV4-verifying, policy-enforcing reverse proxy in front of a
//! DynamoDB-compatible endpoint — the authorization layer of the service.
//!
//! For each request: check its envelope (`POST /`, one `X-Amz-Target`, no query string, no
//! `Action`: [`crate::envelope`]), read the body (at most DynamoDB's 16 MiB), check it
//! against the operation's strict shape ([`crate::shape`]), map it to the IAM actions,
//! resources and condition keys it needs ([`crate::dynamodb`]; item keys need the
//! table's key schema, read with `DescribeTable` and cached), ask the podiam server whether the
//! caller's signature verifies and their policies allow all of them (`/podiam/authorize`), then
//! either answer DynamoDB's own error JSON or send upstream a request the gateway builds: `POST
//! /`, the authorized target, the exact body bytes that were authorized, signed with the
//! upstream's credentials. Nothing else of the client's request is passed on.
//!
//! The only module of this crate that does I/O, behind the `proxy` feature: the mapping modules
//! stay pure and are fuzzed without it.

mod authorizer;
mod metrics;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::items::{self, KeySchema};
use crate::{GatewayError, dynamodb, envelope, shape};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use podiam_client::{ClientError, Credentials};
use podiam_crypto::{Rng, sha256_hex};
use podiam_sigv4::{SigningParams, sign};
use podiam_types::Clock;
use podiam_wire::{Api, WireError, body_error, json10_error};
use serde_json::{Value, json};

pub use authorizer::{Ask, Authorizer, RemoteAuthorizer, Verdict, VerdictFuture};
pub use metrics::GatewayMetrics;

/// DynamoDB's largest request.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// How long a table's key schema is trusted before it is read again.
const KEY_SCHEMA_TTL: Duration = Duration::from_secs(60);
/// At most this many key schemas are cached.
const MAX_KEY_SCHEMAS: usize = 10_000;
/// Response headers not passed back.
const NOT_RETURNED: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "content-length",
];

/// What the gateway needs to run.
#[derive(Debug)]
pub struct GatewayConfig {
    /// The DynamoDB-compatible endpoint requests go to, e.g. `http://127.0.0.1:8000`.
    pub upstream: String,
    /// Credentials to re-sign forwarded requests with (any, for endpoints that check none).
    pub upstream_credentials: Credentials,
    /// The region resources live in (their ARNs) and forwarded requests are signed for.
    pub region: String,
    /// The account that owns the tables.
    pub account_id: String,
    /// Who decides: the podiam server ([`RemoteAuthorizer`]) or an authority in this process.
    pub authorizer: Arc<dyn Authorizer>,
    /// The whole upstream exchange, headers and body.
    pub upstream_timeout: Duration,
    /// Request ids and times.
    pub clock: Arc<dyn Clock>,
    /// Request ids.
    pub rng: Arc<dyn Rng>,
}

/// The gateway's shared state, and the upstream client of one runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
    /// Connections to the upstream (each runtime gets its own: [`Gateway::for_runtime`]).
    upstream: reqwest::Client,
}

#[derive(Debug)]
struct Inner {
    config: GatewayConfig,
    account: podiam_types::AccountId,
    /// The upstream's URL (`…/`), parsed once.
    upstream_url: reqwest::Url,
    /// Its `Host`.
    upstream_host: HeaderValue,
    metrics: GatewayMetrics,
    /// Request bodies buffered at once, across all requests (bodies are read before the
    /// server can say whether their signatures verify).
    body_budget: podiam_http::BodyBudget,
    /// Tables' key schemas, by the name (or ARN) requests use, with when they were read.
    key_schemas: std::sync::Mutex<HashMap<String, (Arc<KeySchema>, Instant)>>,
}

impl Gateway {
    /// A gateway for `config`.
    pub fn new(config: GatewayConfig) -> Result<Self, ClientError> {
        let invalid = |e: &dyn std::fmt::Display| {
            ClientError::InvalidRequest(format!("upstream {:?}: {e}", config.upstream))
        };
        let upstream_url =
            reqwest::Url::parse(&format!("{}/", config.upstream.trim_end_matches('/')))
                .map_err(|e| invalid(&e))?;
        let upstream_host = match (upstream_url.host_str(), upstream_url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(invalid(&"no host")),
        };
        let upstream_host = HeaderValue::from_str(&upstream_host).map_err(|e| invalid(&e))?;
        let account = config.account_id.parse().map_err(|_| {
            ClientError::InvalidRequest(format!(
                "account id {:?} is not 12 digits",
                config.account_id
            ))
        })?;
        let upstream = upstream_client(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                account,
                upstream_url,
                upstream_host,
                metrics: GatewayMetrics::new(),
                body_budget: podiam_http::BodyBudget::new(4 * MAX_REQUEST_BYTES),
                key_schemas: std::sync::Mutex::new(HashMap::new()),
            }),
            upstream,
        })
    }

    /// The same gateway (decisions, metrics, caches, limits) with upstream connections of its
    /// own, for another runtime: a connection's task runs on the runtime that opened it, so
    /// one shared pool would wake threads across runtimes on every request.
    pub fn for_runtime(&self) -> Result<Self, ClientError> {
        Ok(Self {
            inner: Arc::clone(&self.inner),
            upstream: upstream_client(&self.inner.config)?,
        })
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.inner.metrics
    }

    fn request_id(&self) -> String {
        podiam_session::random_uuid(self.inner.config.rng.as_ref()).unwrap_or_else(|_| {
            format!(
                "{:032x}",
                self.inner.config.clock.now().unix_timestamp_nanos()
            )
        })
    }
}

/// The upstream's HTTP client.
fn upstream_client(config: &GatewayConfig) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(config.upstream_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        // A redirect from the upstream is relayed, never followed: the gateway sends only
        // the request it built and authorized, and only to the upstream.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ClientError::InvalidRequest(e.to_string()))
}

/// The gateway's routes: DynamoDB at `POST /`, and `/healthz`, `/readyz`, `/metrics`.
pub fn gateway_router(gateway: Gateway) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/metrics", get(render_metrics))
        .fallback(proxy)
        .with_state(gateway)
}

async fn render_metrics(State(gateway): State<Gateway>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            podiam_process::OPENMETRICS_CONTENT_TYPE,
        )],
        gateway.inner.metrics.render(),
    )
        .into_response()
}

/// One DynamoDB request: decide, then refuse or forward.
async fn proxy(State(gateway): State<Gateway>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = gateway.request_id();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = request.into_parts();
    let operation = target_operation(&parts.headers);
    let outcome = async {
        let target = envelope::target(
            envelope::Envelope {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query(),
            },
            parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes())),
        )
        .map_err(|e| Refusal::from(gateway_error(&e)))?
        .to_owned();
        let (body, _budget) =
            podiam_http::read_body(body, MAX_REQUEST_BYTES, &gateway.inner.body_budget)
                .await
                .map_err(|e| Refusal::from(body_error(&e, Api::DynamoDb)))?;
        let (api, op) = match target.split_once('.') {
            Some((prefix, op)) if format!("{prefix}.") == dynamodb::STREAMS_TARGET_PREFIX => {
                (shape::Api::Streams, op)
            }
            Some((_, op)) => (shape::Api::DynamoDb, op),
            None => (shape::Api::DynamoDb, target.as_str()),
        };
        shape::check(api, op, &body).map_err(|e| Refusal::from(gateway_error(&e)))?;
        let needed = match api {
            shape::Api::DynamoDb => items::tables_needing_key_schemas(op, &body)
                .map_err(|e| Refusal::from(gateway_error(&e)))?,
            shape::Api::Streams => Vec::new(),
        };
        let (schemas, missing) = key_schemas(&gateway, &needed, &parts, &body, peer).await?;
        let config = &gateway.inner.config;
        if let Some(table) = missing.first() {
            // As DynamoDB does, a caller learns that a table does not exist only once IAM
            // has allowed the request; its item keys are unknown without the table.
            let mut wanted =
                dynamodb::authorizations(&target, &body, &gateway.inner.account, &config.region)
                    .map_err(|e| Refusal::from(gateway_error(&e)))?;
            for authorization in &mut wanted {
                authorization.unknown = vec!["dynamodb:LeadingKeys", "dynamodb:Attributes"];
            }
            let principal = authorize(&gateway, &parts, &body, peer, Some(&wanted)).await?;
            return Err(Refusal {
                error: gateway_error(&GatewayError::ResourceNotFound(table.clone())),
                principal: Some(principal),
            });
        }
        let wanted = dynamodb::request_authorizations(
            &target,
            &body,
            &gateway.inner.account,
            &config.region,
            &schemas,
        )
        .map_err(|e| Refusal::from(gateway_error(&e)))?;
        let principal = authorize(&gateway, &parts, &body, peer, Some(&wanted)).await?;
        Ok((target, body, principal, wanted))
    }
    .await;
    let response = match outcome {
        Ok((target, body, principal, wanted)) => {
            audit(&request_id, &operation, Some(&principal), &wanted, None);
            gateway.inner.metrics.decision(&operation, "allow");
            if matches!(
                operation.as_str(),
                "CreateTable" | "DeleteTable" | "UpdateTable"
            ) {
                forget_key_schemas(&gateway);
            }
            let body = match envelope::form_safe(&body) {
                std::borrow::Cow::Borrowed(_) => body,
                std::borrow::Cow::Owned(safe) => Bytes::from(safe),
            };
            let relayed = match upstream(&gateway, &target, body).await {
                Ok(answer) => relay(answer).await,
                Err(e) => Err(e),
            };
            relayed.unwrap_or_else(|e| {
                gateway.inner.metrics.upstream_error();
                error_response(&e, &request_id)
            })
        }
        Err(Refusal { error, principal }) => {
            audit(
                &request_id,
                &operation,
                principal.as_deref(),
                &[],
                Some(&error),
            );
            gateway.inner.metrics.decision(&operation, error.code);
            error_response(&error, &request_id)
        }
    };
    gateway
        .inner
        .metrics
        .latency(&operation, started.elapsed().as_secs_f64());
    response
}

/// The key schemas of `tables`, from the cache or read with `DescribeTable`, and the tables
/// that do not exist. On a miss the caller's signature is verified first, so only
/// authenticated callers make the gateway call the upstream.
async fn key_schemas(
    gateway: &Gateway,
    tables: &[String],
    parts: &Parts,
    body: &[u8],
    peer: Option<SocketAddr>,
) -> Result<(BTreeMap<String, KeySchema>, Vec<String>), Refusal> {
    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    {
        let cache = gateway
            .inner
            .key_schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for table in tables {
            match cache.get(table) {
                Some((schema, read)) if read.elapsed() < KEY_SCHEMA_TTL => {
                    found.insert(table.clone(), KeySchema::clone(schema));
                }
                _ => missing.push(table.clone()),
            }
        }
    }
    if missing.is_empty() {
        return Ok((found, Vec::new()));
    }
    authorize(gateway, parts, body, peer, None).await?;
    let mut absent = Vec::new();
    for table in missing {
        let Some(schema) = describe_table(gateway, &table).await? else {
            absent.push(table);
            continue;
        };
        let mut cache = gateway
            .inner
            .key_schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_KEY_SCHEMAS {
            cache.clear();
        }
        cache.insert(table.clone(), (Arc::new(schema.clone()), Instant::now()));
        found.insert(table, schema);
    }
    Ok((found, absent))
}

fn forget_key_schemas(gateway: &Gateway) {
    gateway
        .inner
        .key_schemas
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

/// `DescribeTable` on the upstream, as the gateway; `None` when the table does not exist.
async fn describe_table(gateway: &Gateway, table: &str) -> Result<Option<KeySchema>, Refusal> {
    // A table named by its ARN is one of the upstream's only in the gateway's account and
    // region; the upstream is asked by name (not every stand-in takes ARNs).
    let name = match table.strip_prefix("arn:") {
        None => table,
        Some(_) => {
            let own = format!(
                "arn:aws:dynamodb:{}:{}:table/",
                gateway.inner.config.region,
                gateway.inner.account.as_str()
            );
            match table.strip_prefix(own.as_str()) {
                Some(name) if !name.contains('/') => name,
                _ => return Ok(None),
            }
        }
    };
    let body = Bytes::from(json!({ "TableName": name }).to_string());
    let answer = upstream(gateway, "DynamoDB_20120810.DescribeTable", body)
        .await
        .map_err(Refusal::from)?;
    let status = answer.status();
    let bytes = answer.bytes().await.map_err(|e| {
        tracing::warn!(error = %e, "the upstream's DescribeTable answer could not be read");
        Refusal::from(upstream_error())
    })?;
    if status.is_success() {
        return KeySchema::from_describe_table(&bytes)
            .map(Some)
            .map_err(|e| {
                tracing::warn!(error = %e, "the upstream's DescribeTable answer could not be read");
                Refusal::from(upstream_error())
            });
    }
    let code = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("__type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if status.is_client_error() {
        // ResourceNotFoundException, or a name the upstream does not take: no such table.
        tracing::debug!(%status, %code, "DescribeTable found no table");
        return Ok(None);
    }
    tracing::warn!(%status, %code, "the upstream failed the gateway's DescribeTable");
    Err(Refusal::from(upstream_error()))
}

/// A refused request: the error for the caller, and who they were if the signature verified.
struct Refusal {
    error: WireError,
    principal: Option<String>,
}

impl From<WireError> for Refusal {
    fn from(error: WireError) -> Self {
        Self {
            error,
            principal: None,
        }
    }
}

/// The operation named by `X-Amz-Target`, for metrics and audit: a known operation, or
/// `unknown` (labels must not grow with what clients send).
fn target_operation(headers: &HeaderMap) -> String {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| dynamodb::operation_of(t).ok())
        .unwrap_or("unknown")
        .to_owned()
}

/// Asks the authorizer; returns the caller's ARN when every action is allowed.
async fn authorize(
    gateway: &Gateway,
    parts: &Parts,
    body: &[u8],
    peer: Option<SocketAddr>,
    wanted: Option<&[dynamodb::Authorization]>,
) -> Result<String, Refusal> {
    let body_sha256 = sha256_hex(body);
    let ask = Ask {
        parts,
        body_sha256: &body_sha256,
        source_ip: peer.map(|p| p.ip()),
        wanted,
    };
    match gateway.inner.config.authorizer.authorize(ask).await {
        Ok(Verdict::Allow { principal }) => Ok(principal),
        Ok(Verdict::Deny { principal, error }) => Err(Refusal { error, principal }),
        Err(e) => {
            tracing::error!(error = %e, "the request could not be authorized");
            gateway.inner.metrics.authorizer_error();
            Err(Refusal::from(internal_error()))
        }
    }
}

/// A DynamoDB request the gateway cannot map to authorizations, as DynamoDB answers it.
fn gateway_error(error: &GatewayError) -> WireError {
    let message = error.to_string();
    match error {
        GatewayError::UnknownOperation(_) => {
            WireError::new("UnknownOperationException", 400, message)
        }
        GatewayError::Serialization(_) => WireError::new("SerializationException", 400, message),
        GatewayError::TooLarge => WireError::new("RequestEntityTooLarge", 413, message),
        GatewayError::Validation(_) => WireError::new("ValidationException", 400, message),
        GatewayError::ResourceNotFound(_) => {
            WireError::new("ResourceNotFoundException", 400, message)
        }
        _ => WireError::new("InternalServerError", 500, "Internal server error"),
    }
}

fn internal_error() -> WireError {
    WireError::new(
        "InternalServerError",
        500,
        "Internal server error (the authorization service is unavailable).",
    )
}

fn upstream_error() -> WireError {
    WireError::new(
        "InternalServerError",
        500,
        "Internal server error (the upstream did not answer).",
    )
}

/// Sends the upstream a request the gateway builds: `POST /` with `target`, `body` (the exact
/// bytes that were authorized), the protocol's content type, and the gateway's own signature.
async fn upstream(
    gateway: &Gateway,
    target: &str,
    body: Bytes,
) -> Result<reqwest::Response, WireError> {
    let config = &gateway.inner.config;
    let url = gateway.inner.upstream_url.clone();
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, gateway.inner.upstream_host.clone());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(envelope::CONTENT_TYPE),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_str(target).map_err(|_| internal_error())?,
    );
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static("podiam-gateway"),
    );
    let creds = &config.upstream_credentials;
    sign(
        "POST",
        url.path(),
        "",
        &mut headers,
        &body,
        &SigningParams {
            access_key_id: &creds.access_key_id,
            secret: creds.secret_access_key.expose(),
            session_token: creds.session_token.as_deref(),
            region: &config.region,
            service: "dynamodb",
            time: config.clock.now(),
        },
    )
    .map_err(|_| internal_error())?;
    gateway
        .upstream
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the upstream did not answer");
            upstream_error()
        })
}

/// Answers up to this size are read whole and relayed with their length, in one write;
/// larger ones (a `BatchGetItem` can answer 16 MB) are streamed back.
const WHOLE_ANSWER_BYTES: u64 = 256 * 1024;

/// The upstream's answer, relayed.
async fn relay(upstream: reqwest::Response) -> Result<Response, WireError> {
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !NOT_RETURNED.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    let body = match upstream.content_length() {
        Some(length) if length <= WHOLE_ANSWER_BYTES => {
            Body::from(upstream.bytes().await.map_err(|e| {
                tracing::warn!(error = %e, "the upstream's answer was cut short");
                upstream_error()
            })?)
        }
        _ => Body::from_stream(upstream.bytes_stream()),
    };
    response.body(body).map_err(|_| internal_error())
}

/// DynamoDB's error answer: awsJson1.0 body, `x-amzn-RequestId`.
fn error_response(error: &WireError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
        json10_error(error),
    )
        .into_response();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// One audit line per decision (target `audit`): who, what, on which resources, and why not.
fn audit(
    request_id: &str,
    operation: &str,
    principal: Option<&str>,
    wanted: &[dynamodb::Authorization],
    refusal: Option<&WireError>,
) {
    /// One authorization of the audit line.
    #[derive(serde::Serialize)]
    struct Authorized<'a> {
        action: &'a str,
        resource: &'a str,
        #[serde(rename = "leadingKeys")]
        leading_keys: Option<&'a dynamodb::ConditionValue>,
    }
    /// The audit line, serialized straight from borrowed data.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        event: &'static str,
        service: &'static str,
        operation: &'a str,
        request_id: &'a str,
        principal: Option<&'a str>,
        resources: Vec<&'a str>,
        authorizations: Vec<Authorized<'a>>,
        code: Option<&'static str>,
        reason: Option<&'a str>,
    }
    let line = Line {
        event: if refusal.is_some() {
            "request_denied"
        } else {
            "request_allowed"
        },
        service: "dynamodb",
        operation,
        request_id,
        principal,
        resources: wanted.iter().map(|a| a.resource.as_str()).collect(),
        authorizations: wanted
            .iter()
            .map(|a| Authorized {
                action: &a.action,
                resource: &a.resource,
                leading_keys: a
                    .context
                    .iter()
                    .find(|(key, _)| *key == "dynamodb:LeadingKeys")
                    .map(|(_, value)| value),
            })
            .collect(),
        code: refusal.map(|e| e.code),
        reason: refusal.map(|e| e.message.as_str()),
    };
    let line = serde_json::to_string(&line).unwrap_or_default();
    tracing::info!(target: "audit", "{line}");
}
