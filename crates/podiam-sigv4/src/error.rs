use thiserror::Error;

/// Why a request's signature was refused. Each variant is the AWS error code it is answered
/// with; the message is AWS's where AWS has a fixed one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned query.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The authorization is present but incomplete or malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id, or the security token, is not known.
    #[error("{0}")]
    InvalidClientTokenId(String),
    /// The signature or the credential scope is wrong.
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    /// The request's date is outside the allowed clock skew.
    #[error("{0}")]
    RequestExpired(String),
    /// A presigned request is past its `X-Amz-Expires`.
    #[error("{0}")]
    SignatureExpired(String),
    /// The session credentials have expired.
    #[error("{0}")]
    ExpiredToken(String),
}

impl SigV4Error {
    pub(crate) fn mismatch() -> Self {
        Self::SignatureDoesNotMatch(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .to_owned(),
        )
    }
}

/// Why a [`crate::SecretLookup`] found no secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No such access key (or it is inactive).
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// A session key without its session token.
    #[error("Session credentials require the X-Amz-Security-Token the session was issued with.")]
    MissingToken,
    /// The session token does not open, or belongs to another access key.
    #[error("The security token included in the request is invalid.")]
    InvalidToken,
    /// The session has expired.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
}

impl From<LookupError> for SigV4Error {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::ExpiredToken => Self::ExpiredToken(e.to_string()),
            other => Self::InvalidClientTokenId(other.to_string()),
        }
    }
}
