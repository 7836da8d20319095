use thiserror::Error;

/// Why a piece of text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TypesError {
    /// The text is not an ARN of the form `arn:partition:service:region:account:resource`.
    #[error("invalid ARN {value:?}: {reason}")]
    InvalidArn {
        /// The rejected text.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// An account id must be exactly 12 decimal digits.
    #[error("invalid account id {0:?}: must be 12 digits")]
    InvalidAccountId(String),
    /// A role name must be 1-64 characters of `[A-Za-z0-9+=,.@_-]`.
    #[error("invalid role name {0:?}: must be 1-64 characters of letters, digits and +=,.@_-")]
    InvalidRoleName(String),
    /// A role session name must be 2-64 characters of `[A-Za-z0-9+=,.@_-]`.
    #[error(
        "invalid role session name {0:?}: must be 2-64 characters of letters, digits and +=,.@_-"
    )]
    InvalidSessionName(String),
    /// A token issuer URL must be `http(s)://host[:port][/path]` with nothing ambiguous.
    #[error("invalid issuer URL {value:?}: {reason}")]
    InvalidIssuerUrl {
        /// The rejected text (cut to 300 characters).
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
}
