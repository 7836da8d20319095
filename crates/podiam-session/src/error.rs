use thiserror::Error;

/// Why a session token was refused or could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not a session token at all (wrong size or alphabet).
    #[error("the session token is malformed")]
    Malformed,
    /// Sealed under a key this keyring does not hold (retired, or another installation's).
    #[error("the session token was sealed with unknown key {0}")]
    UnknownKey(u32),
    /// The seal does not open: the token was modified.
    #[error("the session token is invalid")]
    Tampered,
    /// The seal opened but the content is not a session this version understands.
    #[error("the session token content is not understood")]
    Corrupt,
    /// Randomness or sealing failed.
    #[error("cryptographic failure: {0}")]
    Crypto(podiam_crypto::CryptoError),
}

impl From<podiam_crypto::CryptoError> for SessionError {
    fn from(e: podiam_crypto::CryptoError) -> Self {
        match e {
            podiam_crypto::CryptoError::UnknownKey(id) => Self::UnknownKey(id),
            podiam_crypto::CryptoError::Unsealable => Self::Tampered,
            other => Self::Crypto(other),
        }
    }
}
