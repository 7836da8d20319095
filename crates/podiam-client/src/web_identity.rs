//! Credentials from a web identity token file (`AWS_ROLE_ARN` and
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, as IRSA sets them): an unsigned `AssumeRoleWithWebIdentity`
//! with the file's current token, cached until five minutes before the session expires.
//!
//! For podiam's node agent this is how a node proves which node it is: the kubelet binds the
//! agent pod's projected token to its node, and the session STS issues for it carries that node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::Secret;
use podiam_types::Clock;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::REFRESH_BEFORE;
use crate::{ClientError, Credentials, ProvideCredentials};

/// The role, the token file and the STS endpoint of a web identity.
#[derive(Debug)]
pub struct WebIdentityCredentials {
    role_arn: String,
    token_file: std::path::PathBuf,
    session_name: String,
    endpoint: String,
    http: reqwest::Client,
    cache: Mutex<Option<Credentials>>,
    clock: Arc<dyn Clock>,
}

impl WebIdentityCredentials {
    /// A provider for `role_arn` with the token in `token_file`, asking STS at `endpoint`.
    pub fn new(
        role_arn: &str,
        token_file: &std::path::Path,
        session_name: &str,
        endpoint: &str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            role_arn: role_arn.to_owned(),
            token_file: token_file.to_owned(),
            session_name: session_name.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http,
            cache: Mutex::new(None),
            clock,
        }
    }

    /// From `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_SESSION_NAME` (default
    /// `podiam-<unix seconds>`), asking STS at `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL` or
    /// `fallback_endpoint`; `None` when the role or the token file is not set.
    pub fn from_env(fallback_endpoint: Option<&str>, clock: Arc<dyn Clock>) -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let role_arn = var("AWS_ROLE_ARN")?;
        let token_file = var("AWS_WEB_IDENTITY_TOKEN_FILE")?;
        let endpoint =
            crate::endpoint(None, "STS").or_else(|| fallback_endpoint.map(str::to_owned))?;
        let session_name = var("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| format!("podiam-{}", clock.now().unix_timestamp()));
        Some(Self::new(
            &role_arn,
            std::path::Path::new(&token_file),
            &session_name,
            &endpoint,
            clock,
        ))
    }

    async fn fetch(&self) -> Result<Credentials, ClientError> {
        let token = Secret::new(std::fs::read_to_string(&self.token_file).map_err(|e| {
            ClientError::Credentials(format!(
                "cannot read the web identity token {}: {e}",
                self.token_file.display()
            ))
        })?);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", &self.role_arn)
            .append_pair("RoleSessionName", &self.session_name)
            .append_pair("WebIdentityToken", token.expose().trim())
            .finish();
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| ClientError::Transport {
                endpoint: self.endpoint.clone(),
                message: e.to_string(),
            })?;
        let status = response.status();
        let body = Secret::new(response.text().await.map_err(|e| ClientError::Transport {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        })?);
        let text = |name: &str| crate::xml::first_text(body.expose(), name);
        if !status.is_success() {
            return Err(ClientError::Credentials(format!(
                "AssumeRoleWithWebIdentity for {} answered {}: {}",
                self.role_arn,
                text("Code").unwrap_or_else(|| status.to_string()),
                text("Message").unwrap_or_default()
            )));
        }
        let field = |name: &str| {
            text(name).ok_or_else(|| {
                ClientError::InvalidResponse(format!("AssumeRoleWithWebIdentity lacks {name}"))
            })
        };
        let expiration = OffsetDateTime::parse(&field("Expiration")?, &Rfc3339).map_err(|e| {
            ClientError::InvalidResponse(format!("AssumeRoleWithWebIdentity Expiration: {e}"))
        })?;
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: Secret::new(field("SecretAccessKey")?),
            session_token: Some(field("SessionToken")?),
            expiration: Some(expiration),
        })
    }
}

#[async_trait]
impl ProvideCredentials for WebIdentityCredentials {
    async fn credentials(&self) -> Result<Credentials, ClientError> {
        let now = self.clock.now();
        let fresh = |c: &Credentials| c.expiration.is_some_and(|e| e - now > REFRESH_BEFORE);
        if let Some(cached) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|c| fresh(c))
        {
            return Ok(cached.clone());
        }
        let fetched = self.fetch().await?;
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fetched.clone());
        Ok(fetched)
    }
}
