use podiam_oidc::TokenError;
use podiam_store::StoreError;
use podiam_sts::StsError;
use thiserror::Error;

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
