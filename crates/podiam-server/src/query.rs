//! The awsQuery endpoint (`POST /` and presigned `GET /`) shared by STS and IAM.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use podiam_iam::{Caller, IamError, RequestFacts};
use podiam_policy::ContextValue;
use podiam_sigv4::{SignedRequest, Verifier};
use podiam_wire::{
    Api, IAM_NAMESPACE, MAX_BODY_BYTES, MAX_UNSIGNED_BODY_BYTES, QueryRequest, STS_NAMESPACE,
    WireError, Xml, access_error, body_error, iam_error, query_error, query_response, sigv4_error,
};
use time::OffsetDateTime;

use crate::app::App;
use crate::{iam_api, sts_api};

/// Which API a query request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Sts,
    Iam,
}

impl Service {
    fn of(query: &QueryRequest) -> Option<Self> {
        match query.version() {
            "2011-06-15" => Some(Self::Sts),
            "2010-05-08" => Some(Self::Iam),
            _ if sts_api::is_action(query.action()) => Some(Self::Sts),
            _ if iam_api::is_action(query.action()) => Some(Self::Iam),
            _ => None,
        }
    }

    /// Checked before authentication, as AWS does, so a typo is not reported as a bad signature.
    fn implements(self, action: &str) -> bool {
        match self {
            Self::Sts => sts_api::is_action(action),
            Self::Iam => iam_api::is_action(action),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Iam => "iam",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Self::Sts => STS_NAMESPACE,
            Self::Iam => IAM_NAMESPACE,
        }
    }
}

/// What a handler gets: the app, who called (when signed), and the request's facts.
pub(crate) struct Ctx<'a> {
    pub(crate) app: &'a App,
    /// Which API answers (the code of an authorization failure depends on it).
    pub(crate) api: Api,
    pub(crate) caller: Option<Caller>,
    pub(crate) facts: RequestFacts,
    pub(crate) request_id: String,
}

impl Ctx<'_> {
    /// The signed caller (every operation but `AssumeRoleWithWebIdentity` has one).
    pub(crate) fn caller(&self) -> Result<&Caller, WireError> {
        self.caller.as_ref().ok_or_else(|| {
            WireError::new(
                "MissingAuthenticationToken",
                403,
                "Request is missing Authentication Token",
            )
        })
    }

    /// The caller's policies must allow `action` on `resource`.
    pub(crate) fn authorize(&self, action: &str, resource: &str) -> Result<(), WireError> {
        self.authorize_with(action, resource, Vec::new())
    }

    /// The caller's policies must allow `action` on `resource`, with the request's own
    /// condition keys (`iam:PolicyARN`, `aws:RequestTag/…`, `aws:TagKeys`, …) in `extra`. The
    /// resource's tags (`aws:ResourceTag/…`) are added for an existing role or user.
    pub(crate) fn authorize_with(
        &self,
        action: &str,
        resource: &str,
        mut extra: Vec<(String, ContextValue)>,
    ) -> Result<(), WireError> {
        let caller = self.caller()?;
        let state = self.app.inner.iam.state();
        let tags = if resource.contains(":role/") {
            let name = resource.rsplit('/').next().unwrap_or_default();
            state
                .role(name)
                .filter(|r| state.role_arn(&r.record) == resource)
                .map(|r| r.record.tags.clone())
        } else if resource.contains(":user/") {
            let name = resource.rsplit('/').next().unwrap_or_default();
            state
                .user(name)
                .filter(|u| state.user_arn(&u.record) == resource)
                .map(|u| u.record.tags.clone())
        } else {
            None
        };
        for (key, value) in tags.unwrap_or_default() {
            extra.push((format!("aws:ResourceTag/{key}"), value.into()));
        }
        let refused = state.authorize(caller, action, resource, &self.facts, &extra);
        if let Err(e) = &refused {
            // Every refused call goes to the audit trail, as CloudTrail records AccessDenied.
            let principal = caller.arn(&state);
            drop(state);
            let told = access_error(e, self.api);
            crate::audit::record(
                self.app,
                &crate::audit::AuditEvent {
                    event: "call_denied",
                    operation: action,
                    request_id: &self.request_id,
                    role_arn: resource,
                    principal: &principal,
                    source_ip: self.facts.source_ip.as_deref().unwrap_or_default(),
                    session_name: "",
                    access_key_id: None,
                    expiration: None,
                    code: Some(told.code),
                    message: Some(&told.message),
                    reason: None,
                },
            );
        }
        refused.map_err(|e| access_error(&e, self.api))
    }
}

/// `aws:RequestTag/<key>` for every tag and `aws:TagKeys`, as AWS sets them for tagging calls.
pub(crate) fn request_tags(tags: &[(String, String)]) -> Vec<(String, ContextValue)> {
    let mut keys: Vec<(String, ContextValue)> = tags
        .iter()
        .map(|(k, v)| (format!("aws:RequestTag/{k}"), v.clone().into()))
        .collect();
    if !tags.is_empty() {
        keys.push((
            "aws:TagKeys".to_owned(),
            ContextValue::Multi(tags.iter().map(|(k, _)| k.clone()).collect()),
        ));
    }
    keys
}

fn xml(status: StatusCode, body: String, request_id: &str, now: OffsetDateTime) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    let date = now
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap_or_default();
    if let Ok(date) = HeaderValue::from_str(&date) {
        headers.insert(header::DATE, date);
    }
    response
}

fn error_response(
    error: &WireError,
    namespace: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    xml(
        status,
        query_error(namespace, error, request_id),
        request_id,
        now,
    )
}

/// Reads the form body. A request whose signature passes the checks that need no body (a
/// known key, a fresh date) may send [`MAX_BODY_BYTES`]; any other, [`MAX_UNSIGNED_BODY_BYTES`]
/// (enough for an unsigned `AssumeRoleWithWebIdentity`). Both count against the body budget.
async fn read_body(
    app: &App,
    parts: &Parts,
    body: Body,
    now: OffsetDateTime,
) -> Result<(bytes::Bytes, podiam_http::BudgetPermit), WireError> {
    let limit = if prechecked(app, parts, now) {
        MAX_BODY_BYTES
    } else {
        MAX_UNSIGNED_BODY_BYTES
    };
    podiam_http::read_body(body, limit, &app.inner.body_budget)
        .await
        .map_err(|e| body_error(&e, Api::Sts))
}

/// Whether the request is signed by a key the server knows, within the allowed skew, for STS
/// or IAM (the action, in the body, is not known yet).
fn prechecked(app: &App, parts: &Parts, now: OffsetDateTime) -> bool {
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &[],
    };
    let lookup = app.lookup(now);
    ["sts", "iam"].iter().any(|service| {
        Verifier::new(service)
            .precheck(&signed, &lookup, now)
            .is_ok()
    })
}

/// Verifies the signature; returns the caller and the signed region.
fn authenticate(
    app: &App,
    service: Service,
    parts: &Parts,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(Caller, String), WireError> {
    let api = match service {
        Service::Sts => Api::Sts,
        Service::Iam => Api::Iam,
    };
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body,
    };
    let verified = Verifier::new(service.name())
        .verify(&signed, &app.lookup(now), now)
        .map_err(|e| sigv4_error(&e, api))?;
    Ok((verified.identity, verified.region))
}

/// `POST /` and `GET /`.
pub(crate) async fn handle(State(app): State<App>, request: Request) -> Response {
    let started = Instant::now();
    let now = app.now();
    let request_id = app.request_id();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = request.into_parts();
    let (body, _budget) = match read_body(&app, &parts, body, now).await {
        Ok(read) => read,
        Err(e) => return error_response(&e, STS_NAMESPACE, &request_id, now),
    };
    let form: &[u8] = if parts.method == Method::POST {
        &body
    } else {
        parts.uri.query().unwrap_or_default().as_bytes()
    };
    let query = match QueryRequest::parse(form) {
        Ok(q) => q.without_auth_params(),
        Err(e) => return error_response(&e, STS_NAMESPACE, &request_id, now),
    };
    let service = Service::of(&query).filter(|s| s.implements(query.action()));
    let Some(service) = service else {
        let e = WireError::new(
            "InvalidAction",
            400,
            format!(
                "Could not find operation {} for version {}",
                query.action(),
                query.version()
            ),
        );
        app.inner.metrics.request(
            "unknown",
            "unknown",
            e.code,
            started.elapsed().as_secs_f64(),
        );
        return error_response(&e, STS_NAMESPACE, &request_id, now);
    };
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut ctx = Ctx {
        app: &app,
        api: match service {
            Service::Sts => Api::Sts,
            Service::Iam => Api::Iam,
        },
        caller: None,
        facts: RequestFacts {
            now,
            source_ip: peer.map(|p| p.ip().to_string()),
            secure_transport: false,
            region: app.inner.region.clone(),
            user_agent,
        },
        request_id: request_id.clone(),
    };
    let unsigned = service == Service::Sts && query.action() == "AssumeRoleWithWebIdentity";
    let result = if unsigned {
        sts_api::handle(&ctx, &query).await
    } else {
        match authenticate(&app, service, &parts, form_body(&parts, &body), now) {
            Ok((caller, region)) => {
                ctx.caller = Some(caller);
                ctx.facts.region = region;
                match service {
                    Service::Sts => sts_api::handle(&ctx, &query).await,
                    Service::Iam => iam_api::handle(&ctx, &query).await,
                }
            }
            Err(e) => Err(e),
        }
    };
    let operation = query.action();
    let (response, code) = match result {
        Ok(result) => (
            xml(
                StatusCode::OK,
                query_response(query.action(), service.namespace(), &request_id, result),
                &request_id,
                now,
            ),
            "OK",
        ),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(request_id, operation, code = e.code, message = %e.message, "request failed");
            }
            (
                error_response(&e, service.namespace(), &request_id, now),
                e.code,
            )
        }
    };
    app.inner.metrics.request(
        service.name(),
        operation,
        code,
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The body the signature covers (a presigned GET has none).
fn form_body<'a>(parts: &Parts, body: &'a [u8]) -> &'a [u8] {
    if parts.method == Method::POST {
        body
    } else {
        &[]
    }
}

/// `None` for operations without output.
pub(crate) type Output = Result<Option<Xml>, WireError>;

/// An IAM error as the wire error.
pub(crate) fn iam(e: IamError) -> WireError {
    iam_error(&e)
}
