use podiam_iam::IamError;
use podiam_oidc::TokenError;
use podiam_policy::PolicyError;
use podiam_session::SessionError;
use thiserror::Error;

/// STS's errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StsError {
    /// The web identity token was refused (`InvalidIdentityToken`, `ExpiredTokenException`,
    /// `IDPRejectedClaim`).
    #[error("{0}")]
    Token(TokenError),
    /// No OIDC provider for the token's issuer (`InvalidIdentityToken`).
    #[error("{0}")]
    UnknownProvider(String),
    /// The issuer's keys could not be fetched (`IDPCommunicationError`, retried by SDKs). The
    /// caller gets AWS's message; the detail (URLs, transport errors) is for the audit trail.
    #[error(
        "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    IdpCommunication(String),
    /// The trust policy or the caller's policies do not allow it (`AccessDenied`). The
    /// message is AWS's; `reason` says why, for the audit trail (never sent to the caller).
    #[error("{message}")]
    AccessDenied {
        /// What the caller is told.
        message: String,
        /// Why, for operators.
        reason: String,
    },
    /// A parameter breaks a rule (`ValidationError`).
    #[error("{0}")]
    Validation(String),
    /// A session policy is malformed or too large.
    #[error("{0}")]
    Policy(PolicyError),
    /// The session (policy, policy ARNs and tags) does not fit in a session token
    /// (`PackedPolicyTooLarge`).
    #[error("{0}")]
    PackedPolicyTooLarge(String),
    /// Issuing the session failed.
    #[error("{0}")]
    Session(SessionError),
    /// IAM failed.
    #[error("{0}")]
    Iam(IamError),
}

impl From<TokenError> for StsError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

impl From<SessionError> for StsError {
    fn from(e: SessionError) -> Self {
        Self::Session(e)
    }
}

impl StsError {
    /// Why the request failed, in more detail than the caller is told: for the audit trail.
    pub fn reason(&self) -> String {
        match self {
            Self::AccessDenied { reason, .. } => reason.clone(),
            Self::IdpCommunication(detail) => detail.clone(),
            other => other.to_string(),
        }
    }
}
