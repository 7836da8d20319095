use thiserror::Error;

/// Everything that can go wrong at the cryptographic boundary.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Key material was rejected (bad encoding, wrong type, too small, inconsistent).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The PEM text could not be read.
    #[error("invalid PEM: {0}")]
    InvalidPem(String),
    /// A JWK is missing members or has values that do not form a usable key.
    #[error("invalid JWK: {0}")]
    InvalidJwk(String),
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Sealed data names a key that the keyring does not hold (never had, or retired).
    #[error("sealed with unknown key {0}")]
    UnknownKey(u32),
    /// Sealed data is malformed or was modified.
    #[error("sealed data is malformed or was modified")]
    Unsealable,
    /// The random number generator failed.
    #[error("random number generator failure")]
    Random,
    /// An operation that cannot fail on valid input failed.
    #[error("internal cryptographic failure")]
    Internal,
}
