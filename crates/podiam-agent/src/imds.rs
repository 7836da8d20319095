//! IMDSv2 for the node's own role: session tokens first (IMDSv1 only when allowed), then the
//! role's credentials in the SDK's JSON, the region and the instance identity document. The
//! role is assumed with `sts:AssumeRole` using the agent's credentials and renewed before it
//! expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use podiam_client::{AwsClient, xml};
use podiam_crypto::{Rng, Secret};
use podiam_types::Clock;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::UpstreamError;

/// Session tokens live at most this long (AWS's limit).
const MAX_TTL: i64 = 21_600;

/// Open session tokens kept at most (the oldest are dropped).
const MAX_TOKENS: usize = 10_000;

/// Role credentials are renewed this long before they expire.
const RENEW_BEFORE: time::Duration = time::Duration::minutes(15);

/// The node role's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    /// `ASIA…`
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: Secret<String>,
    /// The session token.
    pub token: Secret<String>,
    /// When they expire.
    pub expiration: OffsetDateTime,
    /// When they were obtained.
    pub last_updated: OffsetDateTime,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Where the node role's credentials come from.
#[async_trait]
pub trait RoleSource: Send + Sync + std::fmt::Debug {
    /// Fresh credentials of the role.
    async fn assume(&self) -> Result<RoleCredentials, UpstreamError>;
}

/// `sts:AssumeRole` on the podiam server with the agent's own credentials.
#[derive(Debug, Clone)]
pub struct AssumeRoleSource {
    /// The STS client.
    pub client: AwsClient,
    /// The node role.
    pub role_arn: String,
    /// The session name (the node name).
    pub session_name: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl RoleSource for AssumeRoleSource {
    async fn assume(&self) -> Result<RoleCredentials, UpstreamError> {
        let answer = self
            .client
            .query(
                "sts",
                &[
                    ("Action", "AssumeRole"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", &self.role_arn),
                    ("RoleSessionName", &self.session_name),
                    ("DurationSeconds", "3600"),
                ],
            )
            .await?;
        let body = Secret::new(answer.body);
        let field = |name: &str| {
            xml::first_text(body.expose(), name).ok_or_else(|| UpstreamError {
                status: None,
                code: "InvalidResponse".to_owned(),
                message: format!("AssumeRole's answer has no {name}"),
                request_id: answer.request_id.clone(),
            })
        };
        let expiration =
            OffsetDateTime::parse(&field("Expiration")?, &Rfc3339).map_err(|e| UpstreamError {
                status: None,
                code: "InvalidResponse".to_owned(),
                message: format!("AssumeRole's Expiration: {e}"),
                request_id: None,
            })?;
        Ok(RoleCredentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: Secret::new(field("SecretAccessKey")?),
            token: Secret::new(field("SessionToken")?),
            expiration,
            last_updated: self.clock.now(),
        })
    }
}

/// How IMDS answers.
#[derive(Debug, Clone)]
pub struct ImdsConfig {
    /// The role's name, as listed under `security-credentials/`.
    pub role_name: String,
    /// The region reported.
    pub region: String,
    /// The account reported in the identity document.
    pub account_id: String,
    /// The node, for the instance id of the identity document.
    pub node_name: String,
    /// Answer GETs without a session token (IMDSv1). Off by default.
    pub allow_v1: bool,
    /// The addresses IMDS must be called through (the `Host` header is checked as the agent
    /// checks it), e.g. `169.254.169.254`.
    pub hosts: Vec<String>,
}

/// The IMDS service.
#[derive(Debug)]
pub struct Imds {
    config: ImdsConfig,
    source: Arc<dyn RoleSource>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    tokens: Mutex<HashMap<String, OffsetDateTime>>,
    role: Mutex<Option<RoleCredentials>>,
    renewing: tokio::sync::Mutex<()>,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body.into()).into_response()
}

impl Imds {
    /// IMDS for the role of `source`.
    pub fn new(
        config: ImdsConfig,
        source: Arc<dyn RoleSource>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Self {
        Self {
            config,
            source,
            clock,
            rng,
            tokens: Mutex::new(HashMap::new()),
            role: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    fn issue_token(&self, headers: &HeaderMap) -> Response {
        // Like EC2: a request that went through a proxy does not get a token.
        if headers.contains_key("x-forwarded-for") {
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
        let ttl = headers
            .get("x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        let Some(ttl) = ttl.filter(|t| (1..=MAX_TTL).contains(t)) else {
            return text(StatusCode::BAD_REQUEST, "Bad Request");
        };
        let mut bytes = [0u8; 32];
        if self.rng.fill(&mut bytes).is_err() {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = self.clock.now();
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tokens.len() >= MAX_TOKENS {
            tokens.retain(|_, until| *until > now);
            if tokens.len() >= MAX_TOKENS
                && let Some(oldest) = tokens
                    .iter()
                    .min_by_key(|(_, u)| **u)
                    .map(|(k, _)| k.clone())
            {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(token.clone(), now + time::Duration::seconds(ttl));
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain".to_owned()),
                (
                    header::HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds"),
                    ttl.to_string(),
                ),
            ],
            token,
        )
            .into_response()
    }

    /// IMDSv2: a valid session token, unless IMDSv1 is allowed.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        match headers
            .get("x-aws-ec2-metadata-token")
            .and_then(|v| v.to_str().ok())
        {
            Some(token) => {
                let now = self.clock.now();
                self.tokens
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(token)
                    .is_some_and(|until| *until > now)
            }
            None => self.config.allow_v1,
        }
    }

    /// The role's credentials, renewed when they are within 15 minutes of expiry.
    pub async fn role_credentials(&self) -> Result<RoleCredentials, UpstreamError> {
        let fresh = |c: &RoleCredentials, now: OffsetDateTime| c.expiration - now > RENEW_BEFORE;
        let current = self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(c) = current.as_ref().filter(|c| fresh(c, self.clock.now())) {
            return Ok(c.clone());
        }
        let _one = self.renewing.lock().await;
        let now = self.clock.now();
        if let Some(c) = self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .filter(|c| fresh(c, now))
        {
            return Ok(c);
        }
        match self.source.assume().await {
            Ok(c) => {
                *self
                    .role
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.clone());
                Ok(c)
            }
            // Still-valid credentials are better than none while the server is away.
            Err(e) => match current.filter(|c| c.expiration - now > time::Duration::seconds(60)) {
                Some(c) => {
                    tracing::warn!(
                        code = e.code,
                        message = e.message,
                        "renewing the node role failed; serving its current credentials"
                    );
                    Ok(c)
                }
                None => Err(e),
            },
        }
    }

    /// Renews the role before it expires, until the agent goes.
    pub async fn renew_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            if let Err(e) = self.role_credentials().await {
                tracing::warn!(
                    code = e.code,
                    message = e.message,
                    "cannot obtain the node role's credentials"
                );
            }
        }
    }

    fn identity_document(&self) -> String {
        json!({
            "accountId": self.config.account_id,
            "architecture": std::env::consts::ARCH,
            "availabilityZone": format!("{}a", self.config.region),
            "imageId": "ami-podiam",
            "instanceId": format!("i-{}", self.config.node_name),
            "instanceType": "podiam.node",
            "pendingTime": self.clock.now().format(&Rfc3339).unwrap_or_default(),
            "privateIp": "",
            "region": self.config.region,
            "version": "2017-09-30",
        })
        .to_string()
    }
}

async fn token(State(imds): State<Arc<Imds>>, headers: HeaderMap) -> Response {
    imds.issue_token(&headers)
}

async fn metadata(
    State(imds): State<Arc<Imds>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !imds.authorized(&headers) {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let base = "meta-data/iam/security-credentials/";
    match rest.as_str() {
        "meta-data" | "meta-data/" => text(StatusCode::OK, "iam/\nplacement/\n"),
        "meta-data/iam" | "meta-data/iam/" => text(StatusCode::OK, "security-credentials/\n"),
        "meta-data/iam/security-credentials" | "meta-data/iam/security-credentials/" => {
            text(StatusCode::OK, imds.config.role_name.clone())
        }
        "meta-data/placement/region" => text(StatusCode::OK, imds.config.region.clone()),
        "meta-data/placement/availability-zone" => {
            text(StatusCode::OK, format!("{}a", imds.config.region))
        }
        "dynamic/instance-identity/document" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            imds.identity_document(),
        )
            .into_response(),
        other => match other.strip_prefix(base) {
            Some(role) if role.trim_end_matches('/') == imds.config.role_name => {
                match imds.role_credentials().await {
                    Ok(c) => {
                        let body = json!({
                            "Code": "Success",
                            "LastUpdated": c.last_updated.format(&Rfc3339).unwrap_or_default(),
                            "Type": "AWS-HMAC",
                            "AccessKeyId": c.access_key_id,
                            "SecretAccessKey": c.secret_access_key.expose(),
                            "Token": c.token.expose(),
                            "Expiration": c.expiration.format(&Rfc3339).unwrap_or_default(),
                        });
                        (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "text/plain")],
                            body.to_string(),
                        )
                            .into_response()
                    }
                    Err(e) => {
                        tracing::warn!(
                            code = e.code,
                            message = e.message,
                            "no node role credentials"
                        );
                        text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    }
                }
            }
            _ => text(StatusCode::NOT_FOUND, "Not Found"),
        },
    }
}

/// Refuses a request not addressed to one of IMDS's own addresses, or addressed ambiguously.
async fn addressed_to_imds(
    State(imds): State<Arc<Imds>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match podiam_http::addressed_host(request.uri(), request.headers()) {
        Ok(host)
            if imds
                .config
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host)) =>
        {
            next.run(request).await
        }
        Ok(host) => {
            tracing::info!(host, "IMDS refused a request addressed to another host");
            text(StatusCode::FORBIDDEN, "Forbidden")
        }
        Err(why) => {
            tracing::info!(why, "IMDS refused an ambiguous request");
            text(StatusCode::FORBIDDEN, "Forbidden")
        }
    }
}

/// `PUT /latest/api/token` and `GET /latest/{…}`, for requests addressed to IMDS.
pub fn imds_router(imds: Arc<Imds>) -> Router {
    Router::new()
        .route("/latest/api/token", put(token))
        .route("/latest/{*rest}", get(metadata))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&imds),
            addressed_to_imds,
        ))
        .with_state(imds)
}

/// IMDS serves the node, not its pods: a connection is accepted only from an address of this
/// network namespace (the node's own, which hostNetwork pods share, as on EC2 where the hop
/// limit keeps pods out) or from one of `also`. The addresses are read at each connection, so
/// a new node address works at once.
pub fn node_only(also: Vec<ipnet::IpNet>) -> podiam_http::PeerFilter {
    Arc::new(move |peer: std::net::SocketAddr| {
        let ip = peer.ip().to_canonical();
        if also.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        let local = is_local_address(ip);
        if !local {
            tracing::info!(%peer, "IMDS refused a connection from an address that is not the node's (see --imds-allow-from)");
        }
        local
    })
}

/// Is `ip` assigned to an interface of this network namespace?
fn is_local_address(ip: std::net::IpAddr) -> bool {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addresses.filter_map(|a| a.address).any(|address| match ip {
        std::net::IpAddr::V4(v4) => address.as_sockaddr_in().is_some_and(|a| a.ip() == v4),
        std::net::IpAddr::V6(v6) => address.as_sockaddr_in6().is_some_and(|a| a.ip() == v6),
    })
}
