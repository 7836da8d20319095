//! Credentials from a web identity token file (`AWS_ROLE_ARN` and
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, as IRSA sets them): an unsigned `AssumeRoleWithWebIdentity`
//! with the file's current token, cached until five minutes before the session expires.
//!
//! For podiam's node agent this is how a node proves which node it is: the kubelet binds the
//! agent pod's projected token to its node, and the session STS issues for it carries that node.
//!
//! The endpoint may list several replicas (comma-separated): the call (safe to repeat) goes to
//! the one that answered last, and to the next when one cannot be reached, does not answer in
//! time or answers with a 5xx. When no replica answers, credentials that are still valid for
//! another minute are served (the refresh starts five minutes before expiry), so a replica
//! outage at refresh time costs nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
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
    endpoints: Vec<String>,
    /// The endpoint that answered last; the next fetch starts there.
    preferred: AtomicUsize,
    http: reqwest::Client,
    cache: Mutex<Option<Credentials>>,
    clock: Arc<dyn Clock>,
}

impl WebIdentityCredentials {
    /// A provider for `role_arn` with the token in `token_file`, asking STS at `endpoint` (or
    /// at several replicas, comma-separated).
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
            endpoints: endpoint
                .split(',')
                .map(|e| e.trim().trim_end_matches('/'))
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            preferred: AtomicUsize::new(0),
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

    /// `AssumeRoleWithWebIdentity` with the file's current token, at the endpoints in turn from
    /// the one that answered last.
    async fn fetch(&self) -> Result<Credentials, ClientError> {
        let token = Secret::new(std::fs::read_to_string(&self.token_file).map_err(|e| {
            ClientError::Credentials(format!(
                "cannot read the web identity token {}: {e}",
                self.token_file.display()
            ))
        })?);
        let form = Secret::new(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("Action", "AssumeRoleWithWebIdentity")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", &self.role_arn)
                .append_pair("RoleSessionName", &self.session_name)
                .append_pair("WebIdentityToken", token.expose().trim())
                .finish(),
        );
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut last_error = ClientError::Credentials("no STS endpoint".to_owned());
        for step in 0..count {
            let i = (first + step) % count;
            let Some(endpoint) = self.endpoints.get(i) else {
                continue;
            };
            match self.fetch_from(endpoint, form.expose()).await {
                Ok(credentials) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(credentials);
                }
                Err(Failed::TryNext(e)) => {
                    tracing::warn!(endpoint, error = %e, "AssumeRoleWithWebIdentity failed here; trying the next endpoint");
                    last_error = e;
                }
                Err(Failed::Refused(e)) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// One `AssumeRoleWithWebIdentity` at `endpoint`.
    async fn fetch_from(&self, endpoint: &str, form: &str) -> Result<Credentials, Failed> {
        let transport = |e: reqwest::Error| {
            Failed::TryNext(ClientError::Transport {
                endpoint: endpoint.to_owned(),
                message: e.to_string(),
            })
        };
        let response = self
            .http
            .post(format!("{endpoint}/"))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form.to_owned())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let body = Secret::new(response.text().await.map_err(transport)?);
        let text = |name: &str| crate::xml::first_text(body.expose(), name);
        if !status.is_success() {
            let error = ClientError::Credentials(format!(
                "AssumeRoleWithWebIdentity for {} answered {}: {}",
                self.role_arn,
                text("Code").unwrap_or_else(|| status.to_string()),
                text("Message").unwrap_or_default()
            ));
            return Err(if status.is_server_error() {
                Failed::TryNext(error)
            } else {
                Failed::Refused(error)
            });
        }
        parse_credentials(body.expose()).map_err(Failed::Refused)
    }
}

/// The credentials of an `AssumeRoleWithWebIdentity` answer.
fn parse_credentials(xml: &str) -> Result<Credentials, ClientError> {
    let field = |name: &str| {
        crate::xml::first_text(xml, name).ok_or_else(|| {
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

/// Why one endpoint gave no credentials.
enum Failed {
    /// Not reached, no answer, or a 5xx: another replica may answer.
    TryNext(ClientError),
    /// STS refused (the token, the role's trust), or answered nonsense: final.
    Refused(ClientError),
}

/// Credentials still valid for this long are served when no endpoint answers a refresh.
const STILL_VALID: Duration = Duration::from_secs(60);

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
        let fetched = match self.fetch().await {
            Ok(fetched) => fetched,
            Err(e) => {
                // The refresh starts early: what is cached may still be good for a while.
                let cached = self
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
                    .filter(|c| c.expiration.is_some_and(|x| x - now > STILL_VALID));
                return match cached {
                    Some(cached) => {
                        tracing::warn!(error = %e, "cannot refresh the web identity credentials; using the current ones until they are close to expiry");
                        Ok(cached)
                    }
                    None => Err(e),
                };
            }
        };
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fetched.clone());
        Ok(fetched)
    }
}
