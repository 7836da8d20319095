//! SigV4-signed calls to an endpoint (or the first of several that accepts a connection):
//! rest-json (EKS, EKS Auth) and awsQuery (STS).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, header};
use podiam_sigv4::{SigningParams, sign};
use podiam_types::Clock;
use serde_json::Value;

use crate::{ClientError, ProvideCredentials};

/// Timeouts of a client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// The whole request.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(10),
        }
    }
}

/// A client for one endpoint (or several replicas of it) and region.
#[derive(Debug, Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    endpoints: Arc<Vec<String>>,
    /// The endpoint that answered last; calls start there.
    preferred: Arc<AtomicUsize>,
    region: String,
    credentials: Arc<dyn ProvideCredentials>,
    clock: Arc<dyn Clock>,
}

/// A response body and its request id.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The decoded body.
    pub body: T,
    /// `x-amzn-RequestId`.
    pub request_id: Option<String>,
}

impl AwsClient {
    /// A client of `endpoint` (e.g. `http://127.0.0.1:4599`) signing for `region`.
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: Arc<dyn ProvideCredentials>,
        clock: Arc<dyn Clock>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            // A burst of calls must not leave a connection (and its buffers) per caller.
            .pool_max_idle_per_host(8)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("podiam/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let mut endpoints = Vec::new();
        for endpoint in endpoint.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            reqwest::Url::parse(&endpoint)
                .map_err(|e| ClientError::InvalidRequest(format!("endpoint {endpoint:?}: {e}")))?;
            endpoints.push(endpoint);
        }
        if endpoints.is_empty() {
            return Err(ClientError::InvalidRequest("no endpoint given".to_owned()));
        }
        Ok(Self {
            http,
            endpoints: Arc::new(endpoints),
            preferred: Arc::new(AtomicUsize::new(0)),
            region: region.to_owned(),
            credentials,
            clock,
        })
    }

    /// The endpoint calls go to first (the one that answered last).
    pub fn endpoint(&self) -> &str {
        let i = self.preferred.load(Ordering::Relaxed);
        self.endpoints
            .get(i)
            .or_else(|| self.endpoints.first())
            .map_or("", String::as_str)
    }

    fn transport(endpoint: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        }
    }

    /// Signs and sends to the preferred endpoint; when it refuses the connection (a replica
    /// that is down), to the next one, which becomes preferred if it answers.
    async fn send(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), ClientError> {
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut last_error = None;
        for step in 0..count {
            let i = (first + step) % count;
            let Some(endpoint) = self.endpoints.get(i) else {
                continue;
            };
            match self
                .send_to(
                    endpoint,
                    service,
                    method.clone(),
                    path_and_query,
                    content_type,
                    body.clone(),
                )
                .await
            {
                Err(SendError::Connect(e)) => {
                    tracing::warn!(endpoint, error = %e, "cannot connect; trying the next endpoint");
                    last_error = Some(e);
                }
                Err(SendError::Other(e)) => return Err(e),
                Ok(answer) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(answer);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::InvalidRequest("no endpoint".to_owned())))
    }

    /// Signs and sends to one endpoint.
    async fn send_to(
        &self,
        endpoint: &str,
        service: &str,
        method: Method,
        path_and_query: &str,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), SendError> {
        let url = reqwest::Url::parse(&format!("{endpoint}{path_and_query}"))
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(ClientError::InvalidRequest(format!("no host in {url}")).into());
            }
        };
        let mut headers = HeaderMap::new();
        let invalid = |e: header::InvalidHeaderValue| ClientError::InvalidRequest(e.to_string());
        headers.insert(header::HOST, HeaderValue::from_str(&host).map_err(invalid)?);
        if let Some(ct) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let creds = self.credentials.credentials().await?;
        sign(
            method.as_str(),
            url.path(),
            url.query().unwrap_or_default(),
            &mut headers,
            &body,
            &SigningParams {
                access_key_id: &creds.access_key_id,
                secret: creds.secret_access_key.expose(),
                session_token: creds.session_token.as_deref(),
                region: &self.region,
                service,
                time: self.clock.now(),
            },
        )
        .map_err(invalid)?;
        let response = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    SendError::Connect(Self::transport(endpoint, e))
                } else {
                    SendError::Other(Self::transport(endpoint, e))
                }
            })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Self::transport(endpoint, e))?;
        Ok((status, headers, bytes.to_vec()))
    }

    /// A rest-json call: `body` as JSON (none for GET/DELETE), the JSON answer back.
    pub async fn rest_json(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Answer<Value>, ClientError> {
        let (content_type, bytes) = match body {
            Some(v) => (Some("application/json"), v.to_string().into_bytes()),
            None => (None, Vec::new()),
        };
        let (status, headers, bytes) = self
            .send(service, method, path_and_query, content_type, bytes)
            .await?;
        let request_id = request_id(&headers);
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::InvalidResponse(format!(
                    "HTTP {status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(Answer {
                body: json,
                request_id,
            });
        }
        let code = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|c| c.split(':').next().unwrap_or(c).to_owned())
            .or_else(|| {
                json.get("__type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("HTTP{status}"));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Err(ClientError::Api {
            status,
            code,
            message,
            request_id,
        })
    }

    /// An awsQuery call (STS, IAM): the XML answer back.
    pub async fn query(
        &self,
        service: &str,
        params: &[(&str, &str)],
    ) -> Result<Answer<String>, ClientError> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(params.iter().copied());
            form.finish().into_bytes()
        };
        let (status, headers, bytes) = self
            .send(
                service,
                Method::POST,
                "/",
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                body,
            )
            .await?;
        let request_id = request_id(&headers);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(Answer {
                body: text,
                request_id,
            });
        }
        Err(ClientError::Api {
            status,
            code: crate::xml::first_text(&text, "Code").unwrap_or_else(|| format!("HTTP{status}")),
            message: crate::xml::first_text(&text, "Message").unwrap_or_default(),
            request_id,
        })
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Why one endpoint did not answer.
enum SendError {
    /// No connection: another endpoint may answer.
    Connect(ClientError),
    /// Anything else: the request may have reached the server.
    Other(ClientError),
}

impl From<ClientError> for SendError {
    fn from(e: ClientError) -> Self {
        Self::Other(e)
    }
}

/// The account of the client's own identity (STS `GetCallerIdentity`).
pub async fn caller_account(client: &AwsClient) -> Result<String, ClientError> {
    let answer = client
        .query(
            "sts",
            &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        )
        .await?;
    crate::xml::first_text(&answer.body, "Account").ok_or_else(|| {
        ClientError::InvalidResponse("GetCallerIdentity answered no Account".to_owned())
    })
}
