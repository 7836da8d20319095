use podiam_policy::PolicyError;
use podiam_store::StoreError;
use thiserror::Error;

/// IAM's errors, named after the AWS codes they become.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IamError {
    /// `NoSuchEntity` (404).
    #[error("{0}")]
    NoSuchEntity(String),
    /// `EntityAlreadyExists` (409).
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// `LimitExceeded` (409).
    #[error("{0}")]
    LimitExceeded(String),
    /// `InvalidInput` (400).
    #[error("{0}")]
    InvalidInput(String),
    /// `MalformedPolicyDocument` (400) or a size quota.
    #[error("{0}")]
    Policy(PolicyError),
    /// `DeleteConflict` (409).
    #[error("{0}")]
    DeleteConflict(String),
    /// `ConcurrentModification` (409): the record kept changing under the write.
    #[error("{0}")]
    ConcurrentModification(String),
    /// `AccessDenied` (403).
    #[error("{0}")]
    AccessDenied(String),
    /// `ServiceFailure` (500): the store failed.
    #[error("{0}")]
    Store(StoreError),
    /// `ServiceFailure` (500): sealing a secret failed.
    #[error("cryptographic failure: {0}")]
    Crypto(podiam_crypto::CryptoError),
}

impl From<StoreError> for IamError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<PolicyError> for IamError {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}

impl From<podiam_crypto::CryptoError> for IamError {
    fn from(e: podiam_crypto::CryptoError) -> Self {
        Self::Crypto(e)
    }
}
