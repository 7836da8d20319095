//! What the agent asks the server: EKS Auth `AssumeRoleForPodIdentity`, and the cluster's
//! token-verification keys.

use std::fmt;

use async_trait::async_trait;
use podiam_client::{AwsClient, ClientError, FailoverStats, Repeat};
use podiam_crypto::{JwkSet, Secret};
use podiam_oidc::KeySet;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Credentials for one pod.
#[derive(Clone, PartialEq, Eq)]
pub struct PodCredentials {
    /// `ASIA…`
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: Secret<String>,
    /// The session token.
    pub token: Secret<String>,
    /// The account of the role.
    pub account_id: String,
    /// When they expire.
    pub expiration: OffsetDateTime,
}

impl fmt::Debug for PodCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A failed upstream call, as the agent reports it to the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// The upstream HTTP status (none when the server was not reached).
    pub status: Option<u16>,
    /// The AWS error code.
    pub code: String,
    /// The message.
    pub message: String,
    /// The upstream request id.
    pub request_id: Option<String>,
}

impl UpstreamError {
    /// The server was not reached (or answered with a 5xx): cached credentials stay usable.
    pub fn is_outage(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }

    /// The caller may not make the call (`AccessDeniedException`, 401 or 403): retrying soon
    /// will not help, granting the permission will.
    pub fn is_denied(&self) -> bool {
        matches!(self.status, Some(401 | 403))
            || self.code.starts_with("AccessDenied")
            || self.code.contains("Unauthorized")
    }

    /// Refused for good: the pod's request cannot succeed by retrying (the reference's
    /// irrecoverable errors).
    pub fn is_irrecoverable(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ResourceNotFoundException"
                | "ExpiredTokenException"
                | "InvalidTokenException"
                | "AccessDeniedException"
        )
    }
}

impl From<ClientError> for UpstreamError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api {
                status,
                code,
                message,
                request_id,
            } => Self {
                status: Some(status),
                code,
                message,
                request_id,
            },
            other => Self {
                status: None,
                code: "ServiceUnavailableException".to_owned(),
                message: other.to_string(),
                request_id: None,
            },
        }
    }
}

/// The server, as the agent needs it.
#[async_trait]
pub trait Upstream: Send + Sync + fmt::Debug {
    /// `AssumeRoleForPodIdentity` with the pod's token.
    async fn assume_role_for_pod_identity(
        &self,
        token: &str,
    ) -> Result<PodCredentials, UpstreamError>;

    /// The issuer URL and keys that verify the cluster's tokens (`eks:DescribeCluster`).
    async fn cluster_keys(&self) -> Result<(String, KeySet), UpstreamError>;

    /// What the client's failover between server replicas did, for metrics; `None` when the
    /// upstream has no such client.
    fn failover_stats(&self) -> Option<FailoverStats> {
        None
    }
}

/// The podiam server (or EKS Auth) over SigV4.
#[derive(Debug, Clone)]
pub struct EksAuthUpstream {
    /// Signed with the node's credentials.
    pub client: AwsClient,
    /// The cluster.
    pub cluster: String,
    /// This node, sent as `eksNodeName` so the server can bind tokens to it.
    pub node_name: Option<String>,
}

fn field<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, UpstreamError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| UpstreamError {
            status: None,
            code: "InvalidResponse".to_owned(),
            message: format!("the answer has no {pointer}"),
            request_id: None,
        })
}

#[async_trait]
impl Upstream for EksAuthUpstream {
    async fn assume_role_for_pod_identity(
        &self,
        token: &str,
    ) -> Result<PodCredentials, UpstreamError> {
        let mut body = json!({ "token": token });
        if let (Some(node), Some(map)) = (&self.node_name, body.as_object_mut()) {
            map.insert("eksNodeName".to_owned(), json!(node));
        }
        let path = format!(
            "/clusters/{}/assume-role-for-pod-identity",
            podiam_client_path(&self.cluster)
        );
        // Safe to repeat: it only issues a session (a replica that does not answer in time is
        // hedged past; the session it may still issue is never used).
        let answer = self
            .client
            .rest_json_with(
                "eks-auth",
                http::Method::POST,
                &path,
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        let v = &answer.body;
        let expiration = v
            .pointer("/credentials/expiration")
            .and_then(Value::as_i64)
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
            .ok_or_else(|| UpstreamError {
                status: None,
                code: "InvalidResponse".to_owned(),
                message: "the answer has no credentials.expiration".to_owned(),
                request_id: answer.request_id.clone(),
            })?;
        let arn = field(v, "/assumedRoleUser/arn")?;
        Ok(PodCredentials {
            access_key_id: field(v, "/credentials/accessKeyId")?.to_owned(),
            secret_access_key: Secret::new(field(v, "/credentials/secretAccessKey")?.to_owned()),
            token: Secret::new(field(v, "/credentials/sessionToken")?.to_owned()),
            account_id: arn.split(':').nth(4).unwrap_or_default().to_owned(),
            expiration,
        })
    }

    async fn cluster_keys(&self) -> Result<(String, KeySet), UpstreamError> {
        let path = format!(
            "/clusters/{}/podiam/jwks",
            podiam_client_path(&self.cluster)
        );
        let answer = self
            .client
            .rest_json("eks", http::Method::GET, &path, None)
            .await?;
        let issuer = field(&answer.body, "/issuer")?.to_owned();
        let jwks: JwkSet = answer
            .body
            .get("jwks")
            .cloned()
            .and_then(|j| serde_json::from_value(j).ok())
            .ok_or_else(|| UpstreamError {
                status: None,
                code: "InvalidResponse".to_owned(),
                message: "the answer has no jwks".to_owned(),
                request_id: answer.request_id.clone(),
            })?;
        let (keys, skipped) = KeySet::from_jwks(&jwks);
        for reason in skipped {
            tracing::warn!("skipped a key of the cluster's JWKS: {reason}");
        }
        Ok((issuer, keys))
    }

    fn failover_stats(&self) -> Option<FailoverStats> {
        Some(self.client.failover_stats())
    }
}

/// A cluster name as a path segment (names are `[0-9A-Za-z][A-Za-z0-9-_]*`, but be safe).
fn podiam_client_path(cluster: &str) -> String {
    cluster
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
