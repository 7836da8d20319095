use podiam_oidc::TokenError;
use podiam_store::StoreError;
use podiam_sts::StsError;
use thiserror::Error;

use crate::UpstreamError;

/// What the agent (and the operator reading its log) is told when AWS refuses: the role, AWS's
/// words, and, for a denial, the trust the role needs.
fn upstream_message(role_arn: &str, error: &UpstreamError) -> String {
    match error {
        UpstreamError::Refused { code, message } if code == "AccessDenied" => format!(
            "AWS refused podiam's sts:AssumeRole on {role_arn}: {message} The role's trust policy must allow podiam's own AWS principal sts:AssumeRole and sts:TagSession for this workload's session tags; `podiam aws trust-policy --cluster C --namespace NS --service-account SA` prints it."
        ),
        UpstreamError::Refused { code, message } => {
            format!("AWS refused podiam's sts:AssumeRole on {role_arn} ({code}): {message}")
        }
        UpstreamError::Throttled(message) => format!(
            "AWS throttled podiam's sts:AssumeRole on {role_arn} after podiam backed off; retry later ({message})"
        ),
        UpstreamError::Unreachable(message) => format!(
            "AWS could not be asked for {role_arn}; check podiam's AWS credentials and network ({message})"
        ),
    }
}

/// EKS's errors; `podiam-wire` maps them to the EKS and EKS Auth codes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EksError {
    /// `ResourceNotFoundException` (404).
    #[error("{0}")]
    NotFound(String),
    /// `ResourceInUseException` (409): it exists already.
    #[error("{0}")]
    InUse(String),
    /// `InvalidParameterException` (400).
    #[error("{0}")]
    InvalidParameter(String),
    /// `InvalidRequestException` (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// `ResourceLimitExceededException` (400).
    #[error("{0}")]
    LimitExceeded(String),
    /// The pod's token was refused (`InvalidTokenException`, `ExpiredTokenException`).
    #[error("{0}")]
    Token(TokenError),
    /// `AccessDeniedException` (400 for EKS Auth). `reason` is for the audit trail only.
    #[error("{message}")]
    AccessDenied {
        /// What the caller is told.
        message: String,
        /// Why, for operators.
        reason: String,
    },
    /// Issuing the session failed in STS.
    #[error("{0}")]
    Sts(StsError),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// AWS gave no credentials for a role in an upstream account.
    #[error("{}", upstream_message(role_arn, error))]
    Upstream {
        /// The role podiam asked AWS for.
        role_arn: String,
        /// What AWS answered.
        error: UpstreamError,
    },
    /// Key material could not be made or opened.
    #[error("{0}")]
    Crypto(String),
}

impl EksError {
    /// Why it failed, in more detail than the caller is told: for the audit trail.
    pub fn reason(&self) -> String {
        match self {
            Self::AccessDenied { reason, .. } => reason.clone(),
            Self::Sts(e) => e.reason(),
            other => other.to_string(),
        }
    }
}

impl From<TokenError> for EksError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

impl From<StsError> for EksError {
    fn from(e: StsError) -> Self {
        Self::Sts(e)
    }
}
