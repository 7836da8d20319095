//! rest-json plumbing shared by the EKS and EKS Auth handlers: read and authenticate the
//! request, then answer with JSON or with the error as AWS sends it (`x-amzn-ErrorType`).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use podiam_iam::RequestFacts;
use podiam_sigv4::{SignedRequest, Verifier};
use podiam_wire::{Api, MAX_BODY_BYTES, WireError, body_error, rest_json_error, sigv4_error};
use serde_json::{Map, Value};

use crate::app::App;
use crate::query::Ctx;

/// A rest-json API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestApi {
    Eks,
    EksAuth,
    /// podiam's own API for service proxies (signing name `podiam`, EKS's error codes).
    Podiam,
}

impl RestApi {
    fn signing_name(self) -> &'static str {
        match self {
            Self::Eks => "eks",
            Self::EksAuth => "eks-auth",
            Self::Podiam => "podiam",
        }
    }

    pub(crate) fn wire(self) -> Api {
        match self {
            Self::Eks | Self::Podiam => Api::Eks,
            Self::EksAuth => Api::EksAuth,
        }
    }
}

/// A request being answered.
pub(crate) struct Call {
    pub(crate) app: App,
    pub(crate) api: RestApi,
    pub(crate) operation: &'static str,
    pub(crate) request_id: String,
    started: Instant,
}

/// The authenticated request: who, the query string and the JSON body (`{}` when empty).
pub(crate) struct Input<'a> {
    pub(crate) ctx: Ctx<'a>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Map<String, Value>,
}

impl Input<'_> {
    /// A query parameter.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A string member of the body.
    pub(crate) fn string(&self, name: &str) -> Result<Option<&str>, WireError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    }

    /// A required string member of the body.
    pub(crate) fn required(&self, name: &str) -> Result<&str, WireError> {
        self.string(name)?
            .ok_or_else(|| invalid(format!("{name} is required")))
    }

    /// A boolean member of the body.
    pub(crate) fn boolean(&self, name: &str) -> Result<Option<bool>, WireError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!("{name} must be true or false"))),
        }
    }

    /// A string-to-string map member (`tags`).
    pub(crate) fn string_map(
        &self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, WireError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(std::collections::BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(invalid(format!("{name}.{k} must be a string"))),
                })
                .collect(),
            Some(_) => Err(invalid(format!("{name} must be a map"))),
        }
    }

    /// `maxResults` (1–100, default 100).
    pub(crate) fn max_results(&self) -> Result<usize, WireError> {
        match self.query("maxResults") {
            None => Ok(100),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(invalid(format!(
                    "maxResults {text:?} must be a number from 1 to 100"
                ))),
            },
        }
    }
}

/// `InvalidParameterException`.
pub(crate) fn invalid(message: String) -> WireError {
    WireError::new("InvalidParameterException", 400, message)
}

impl Call {
    pub(crate) fn new(app: App, api: RestApi, operation: &'static str) -> Self {
        Self {
            request_id: app.request_id(),
            app,
            api,
            operation,
            started: Instant::now(),
        }
    }

    /// Reads the body, verifies the SigV4 signature for this API and decodes the JSON.
    pub(crate) async fn begin(&self, request: Request) -> Result<Input<'_>, WireError> {
        let now = self.app.now();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (parts, body) = request.into_parts();
        // Nothing unsigned is read: the signature's body-free checks come first.
        self.precheck(&parts, now)?;
        let (body, _budget) =
            podiam_http::read_body(body, MAX_BODY_BYTES, &self.app.inner.body_budget)
                .await
                .map_err(|e| body_error(&e, self.api.wire()))?;
        let (caller, region) = self.authenticate(&parts, &body, now)?;
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(WireError::new(
                        "SerializationException",
                        400,
                        "The request body is not a JSON object.",
                    ));
                }
            }
        };
        let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Input {
            ctx: Ctx {
                app: &self.app,
                api: self.api.wire(),
                caller: Some(caller),
                facts: RequestFacts {
                    now,
                    source_ip: peer.map(|p| p.ip().to_string()),
                    secure_transport: false,
                    region,
                    user_agent,
                },
                request_id: self.request_id.clone(),
            },
            query,
            body,
        })
    }

    fn precheck(&self, parts: &Parts, now: time::OffsetDateTime) -> Result<(), WireError> {
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
            headers: &parts.headers,
            body: &[],
        };
        Verifier::new(self.api.signing_name())
            .precheck(&signed, &self.app.lookup(now), now)
            .map(drop)
            .map_err(|e| sigv4_error(&e, self.api.wire()))
    }

    fn authenticate(
        &self,
        parts: &Parts,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> Result<(podiam_iam::Caller, String), WireError> {
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
            headers: &parts.headers,
            body,
        };
        let verified = Verifier::new(self.api.signing_name())
            .verify(&signed, &self.app.lookup(now), now)
            .map_err(|e| sigv4_error(&e, self.api.wire()))?;
        Ok((verified.identity, verified.region))
    }

    /// The JSON answer, or the error as AWS sends it; counted in the metrics.
    pub(crate) fn finish(self, result: Result<Value, WireError>) -> Response {
        let (mut response, code) = match result {
            Ok(value) => (
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    value.to_string(),
                )
                    .into_response(),
                "OK",
            ),
            Err(e) => {
                if e.status >= 500 {
                    tracing::error!(request_id = self.request_id, operation = self.operation, code = e.code, message = %e.message, "request failed");
                }
                let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                let mut response = (
                    status,
                    [(header::CONTENT_TYPE, "application/json")],
                    rest_json_error(&e),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("x-amzn-errortype", HeaderValue::from_static(e.code));
                (response, e.code)
            }
        };
        if let Ok(id) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert("x-amzn-requestid", id);
        }
        self.app.inner.metrics.request(
            self.api.signing_name(),
            self.operation,
            code,
            self.started.elapsed().as_secs_f64(),
        );
        response
    }
}
