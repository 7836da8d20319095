//! podiam's calls to real AWS (issue 20), and what AWS must be told about podiam.
//!
//! podiam's own AWS identity comes from the AWS SDK's standard configuration: the default
//! credential chain (environment, profile, `credential_process`, web identity, instance
//! profile), the region, and the endpoint overrides (`AWS_ENDPOINT_URL_STS`). The calls go
//! through [`AwsIdentity`], so the layers above can be tested without AWS; [`SdkAws`] is the
//! implementation over `aws-config` and `aws-sdk-sts`, and also what podiam's EKS Auth asks AWS
//! for roles in upstream accounts ([`UpstreamRoles`]). [`trust`] is pure.

pub mod issuer;
pub mod trust;

use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::Secret;
use podiam_eks::{UpstreamAssume, UpstreamCredentials, UpstreamError, UpstreamRole, UpstreamRoles};

/// Who podiam is in AWS (`sts:GetCallerIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account.
    pub account: String,
    /// The caller's ARN: a user, the root, or an assumed role's session.
    pub arn: String,
}

/// What went wrong in a call to AWS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// AWS answered with an error code (`AccessDenied`, `ExpiredToken`, …).
    #[error("AWS answered {code}: {message}")]
    Refused {
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// No answer: no credentials found, no network, a timeout.
    #[error("AWS could not be asked: {0}")]
    Unreachable(String),
    /// An answer without what it must hold.
    #[error("AWS's answer had no {0}")]
    Incomplete(&'static str),
    /// A caller ARN that is not an ARN.
    #[error("{0:?} is not an ARN")]
    NotAnArn(String),
    /// A caller that a role's trust policy cannot name (a federated user's session, say).
    #[error(
        "{0:?} cannot be trusted by a role: run podiam as an IAM user or a role (an assumed role's session), or pass the principal"
    )]
    UnsupportedPrincipal(String),
}

/// The calls podiam makes to AWS as itself.
#[async_trait]
pub trait AwsIdentity: Send + Sync {
    /// `sts:GetCallerIdentity`.
    async fn caller(&self) -> Result<Caller, AwsError>;
}

/// [`AwsIdentity`] over the AWS SDK for Rust.
#[derive(Debug, Clone)]
pub struct SdkAws {
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
}

/// How long one attempt may take to connect, and one call (with its retries) in all: a pod's
/// request waits no longer than this on AWS.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per call when the environment does not say (`AWS_MAX_ATTEMPTS`): throttling and
/// transient errors are retried with the SDK's exponential backoff and jitter.
const ATTEMPTS: u32 = 3;

impl SdkAws {
    /// The SDK's standard configuration: credentials, region and endpoints as the AWS CLI
    /// finds them (`AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` included).
    pub async fn from_environment() -> Self {
        Self::from_loader(aws_config::defaults(aws_config::BehaviorVersion::latest())).await
    }

    /// `loader`'s configuration (tests set endpoint, region and credentials on it), with
    /// podiam's timeouts and retries.
    pub async fn from_loader(loader: aws_config::ConfigLoader) -> Self {
        let mut loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_timeout(CALL_TIMEOUT)
                .build(),
        );
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
            loader = loader.retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(ATTEMPTS),
            );
        }
        let config = loader.load().await;
        Self {
            sts: aws_sdk_sts::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
        }
    }

    /// A client that signs with `via` (an upstream session) instead of podiam's identity.
    fn client_for(&self, via: Option<&UpstreamCredentials>) -> aws_sdk_sts::Client {
        match via {
            None => self.sts.clone(),
            Some(via) => {
                let credentials = aws_sdk_sts::config::Credentials::new(
                    via.access_key_id.clone(),
                    via.secret_access_key.expose().clone(),
                    Some(via.session_token.expose().clone()),
                    Some(via.expiration.into()),
                    "podiam-upstream-session",
                );
                aws_sdk_sts::Client::from_conf(
                    self.sts
                        .config()
                        .to_builder()
                        .credentials_provider(credentials)
                        .build(),
                )
            }
        }
    }
}

/// AWS's error codes that mean "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
];

impl From<AwsError> for UpstreamError {
    fn from(error: AwsError) -> Self {
        match error {
            AwsError::Refused { code, message } if THROTTLING_CODES.contains(&code.as_str()) => {
                Self::Throttled(message)
            }
            AwsError::Refused { code, message } => Self::Refused { code, message },
            AwsError::Unreachable(why) => Self::Unreachable(why),
            other => Self::Unreachable(other.to_string()),
        }
    }
}

#[async_trait]
impl UpstreamRoles for SdkAws {
    async fn assume(&self, request: &UpstreamAssume) -> Result<UpstreamCredentials, UpstreamError> {
        let mut call = self
            .client_for(request.via.as_ref())
            .assume_role()
            .role_arn(&request.role_arn)
            .role_session_name(&request.session_name)
            .set_external_id(request.external_id.clone())
            .set_policy(request.policy.clone());
        for (key, value) in &request.tags {
            let tag = aws_sdk_sts::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| UpstreamError::Refused {
                    code: "ValidationError".to_owned(),
                    message: e.to_string(),
                })?;
            call = call.tags(tag);
        }
        let answer = call
            .send()
            .await
            .map_err(|e| UpstreamError::from(sdk_error(e)))?;
        let credentials = answer
            .credentials
            .ok_or(AwsError::Incomplete("Credentials"))?;
        let user = answer
            .assumed_role_user
            .ok_or(AwsError::Incomplete("AssumedRoleUser"))?;
        let expiration = time::OffsetDateTime::from_unix_timestamp(credentials.expiration.secs())
            .map_err(|_| AwsError::Incomplete("a valid Expiration"))?;
        Ok(UpstreamCredentials {
            role_arn: request.role_arn.clone(),
            access_key_id: credentials.access_key_id,
            secret_access_key: Secret::new(credentials.secret_access_key),
            session_token: Secret::new(credentials.session_token),
            expiration,
            assumed_role_arn: user.arn,
            assumed_role_id: user.assumed_role_id,
        })
    }

    async fn check(&self) -> Result<String, UpstreamError> {
        Ok(self.caller().await?.arn)
    }

    async fn role(&self, role_arn: &str) -> Result<UpstreamRole, UpstreamError> {
        Ok(self.read_role(role_arn).await?)
    }
}

/// IAM's policy documents are URL-encoded JSON.
fn decoded(document: &str) -> String {
    percent_encoding::percent_decode_str(document)
        .decode_utf8_lossy()
        .into_owned()
}

impl SdkAws {
    async fn read_role(&self, role_arn: &str) -> Result<UpstreamRole, AwsError> {
        let name = role_arn
            .rsplit_once(":role/")
            .map(|(_, path)| path.rsplit('/').next().unwrap_or(path))
            .ok_or_else(|| AwsError::NotAnArn(role_arn.to_owned()))?;
        let role = self
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(sdk_error)?
            .role
            .ok_or(AwsError::Incomplete("Role"))?;
        let mut policies = Vec::new();
        let mut inline = self
            .iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        while let Some(page) = inline.next().await {
            for policy_name in page.map_err(sdk_error)?.policy_names {
                let document = self
                    .iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(&policy_name)
                    .send()
                    .await
                    .map_err(sdk_error)?
                    .policy_document;
                policies.push((format!("inline policy {policy_name:?}"), decoded(&document)));
            }
        }
        let mut attached = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        while let Some(page) = attached.next().await {
            for policy in page
                .map_err(sdk_error)?
                .attached_policies
                .unwrap_or_default()
            {
                if let Some(arn) = policy.policy_arn {
                    let document = self.managed_policy(&arn).await?;
                    policies.push((arn, document));
                }
            }
        }
        let boundary = match role
            .permissions_boundary
            .and_then(|b| b.permissions_boundary_arn)
        {
            Some(arn) => {
                let document = self.managed_policy(&arn).await?;
                Some((arn, document))
            }
            None => None,
        };
        Ok(UpstreamRole {
            trust: decoded(&role.assume_role_policy_document.unwrap_or_default()),
            arn: role.arn,
            id: role.role_id,
            policies,
            boundary,
            tags: role
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
        })
    }

    /// A managed policy's default version's document.
    async fn managed_policy(&self, arn: &str) -> Result<String, AwsError> {
        let version = self
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(sdk_error)?
            .policy
            .and_then(|p| p.default_version_id)
            .ok_or(AwsError::Incomplete("DefaultVersionId"))?;
        let document = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(sdk_error)?
            .policy_version
            .and_then(|v| v.document)
            .ok_or(AwsError::Incomplete("Document"))?;
        Ok(decoded(&document))
    }
}

#[async_trait]
impl AwsIdentity for SdkAws {
    async fn caller(&self) -> Result<Caller, AwsError> {
        let answer = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Caller {
            account: answer.account.ok_or(AwsError::Incomplete("Account"))?,
            arn: answer.arn.ok_or(AwsError::Incomplete("Arn"))?,
        })
    }
}

/// An SDK error as an [`AwsError`]: AWS's code when it answered one, else unreachable. The
/// SDK's errors carry no credentials.
fn sdk_error<E, R>(error: aws_sdk_sts::error::SdkError<E, R>) -> AwsError
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sts::error::DisplayErrorContext;
    match &error {
        aws_sdk_sts::error::SdkError::ServiceError(service) => {
            let inner = service.err();
            AwsError::Refused {
                code: inner.code().unwrap_or("Unknown").to_owned(),
                message: inner.message().unwrap_or_default().to_owned(),
            }
        }
        _ => AwsError::Unreachable(DisplayErrorContext(&error).to_string()),
    }
}

/// Writes objects to S3 with the AWS SDK's standard configuration (or a named profile's
/// credentials): where `podiam cluster publish-issuer` puts a cluster's discovery document and
/// keys.
#[derive(Debug, Clone)]
pub struct S3Objects {
    s3: aws_sdk_s3::Client,
}

impl S3Objects {
    /// The standard configuration. `profile` names the credentials to use instead of the
    /// default chain (whose environment keys may be podiam's own, for the podiam server). A
    /// global `AWS_ENDPOINT_URL` is not used for S3 (it names the podiam server);
    /// `AWS_ENDPOINT_URL_S3` is, with path-style addressing.
    pub async fn from_environment(profile: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile).credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .profile_name(profile)
                    .build(),
            );
        }
        let s3_endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .ok()
            .filter(|url| !url.is_empty());
        let config = loader.load().await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&config);
        s3.set_endpoint_url(s3_endpoint.clone());
        let s3 = s3.force_path_style(s3_endpoint.is_some()).build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3),
        }
    }

    /// `s3:PutObject` of a JSON document.
    pub async fn put_json(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .cache_control("max-age=300")
            .body(body.into())
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// `s3:GetObject`, when the object exists.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(object) => {
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| AwsError::Unreachable(e.to_string()))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(e) => match sdk_error(e) {
                AwsError::Refused { code, .. } if code == "NoSuchKey" => Ok(None),
                other => Err(other),
            },
        }
    }
}
