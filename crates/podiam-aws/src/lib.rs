//! podiam's calls to real AWS (issue 20), and what AWS must be told about podiam.
//!
//! podiam's own AWS identity comes from the AWS SDK's standard configuration: the default
//! credential chain (environment, profile, `credential_process`, web identity, instance
//! profile), the region, and the endpoint overrides (`AWS_ENDPOINT_URL_STS`). The calls go
//! through [`AwsIdentity`], so the layers above can be tested without AWS; [`SdkAws`] is the
//! implementation over `aws-config` and `aws-sdk-sts`. [`trust`] is pure.

pub mod trust;

use async_trait::async_trait;

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
}

impl SdkAws {
    /// The SDK's standard configuration: credentials, region and endpoints as the AWS CLI
    /// finds them.
    pub async fn from_environment() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            sts: aws_sdk_sts::Client::new(&config),
        }
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
