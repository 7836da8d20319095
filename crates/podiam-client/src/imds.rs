//! Credentials from an instance metadata service (IMDSv2): a session token first, then the
//! role's credentials, cached until five minutes before they expire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::Secret;
use podiam_types::Clock;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::REFRESH_BEFORE;
use crate::{ClientError, Credentials, ProvideCredentials};

/// IMDSv2 at an endpoint such as `http://169.254.169.254`.
#[derive(Debug)]
pub struct ImdsCredentials {
    endpoint: String,
    http: reqwest::Client,
    cache: Mutex<Option<Credentials>>,
    clock: Arc<dyn Clock>,
}

impl ImdsCredentials {
    /// IMDS at `endpoint`; `clock` decides when cached credentials are due for renewal.
    pub fn new(endpoint: &str, clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http,
            cache: Mutex::new(None),
            clock,
        }
    }

    fn transport(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        }
    }

    async fn text(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(ClientError::Credentials(format!(
                "IMDS at {} answered {status}: {}",
                self.endpoint,
                body.trim()
            )));
        }
        Ok(body)
    }

    async fn fetch(&self) -> Result<Credentials, ClientError> {
        let token = self
            .text(
                self.http
                    .put(format!("{}/latest/api/token", self.endpoint))
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
            )
            .await?;
        let base = format!(
            "{}/latest/meta-data/iam/security-credentials/",
            self.endpoint
        );
        let roles = self
            .text(
                self.http
                    .get(&base)
                    .header("x-aws-ec2-metadata-token", token.trim()),
            )
            .await?;
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| ClientError::Credentials("IMDS has no role".to_owned()))?;
        let body = Secret::new(
            self.text(
                self.http
                    .get(format!("{base}{role}"))
                    .header("x-aws-ec2-metadata-token", token.trim()),
            )
            .await?,
        );
        let json: Value = serde_json::from_str(body.expose())
            .map_err(|e| ClientError::InvalidResponse(format!("IMDS credentials: {e}")))?;
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ClientError::InvalidResponse(format!("IMDS credentials lack {name}"))
                })
        };
        let expiration = OffsetDateTime::parse(&field("Expiration")?, &Rfc3339)
            .map_err(|e| ClientError::InvalidResponse(format!("IMDS Expiration: {e}")))?;
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: Secret::new(field("SecretAccessKey")?),
            session_token: Some(field("Token")?),
            expiration: Some(expiration),
        })
    }
}

#[async_trait]
impl ProvideCredentials for ImdsCredentials {
    async fn credentials(&self) -> Result<Credentials, ClientError> {
        let fresh = |c: &Credentials| {
            c.expiration
                .is_some_and(|e| e - self.clock.now() > REFRESH_BEFORE)
        };
        if let Ok(cache) = self.cache.lock()
            && let Some(creds) = cache.as_ref().filter(|c| fresh(c))
        {
            return Ok(creds.clone());
        }
        let creds = self.fetch().await?;
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some(creds.clone());
        }
        Ok(creds)
    }
}
