use thiserror::Error;

/// The three ways a caller reports a bad token (STS: `InvalidIdentityToken`,
/// `ExpiredTokenException`, `IDPRejectedClaim`; EKS Auth: `InvalidTokenException`,
/// `ExpiredTokenException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// Not a valid token for this issuer and audience.
    Invalid,
    /// A valid token whose time has passed.
    Expired,
    /// A well-signed token whose claims cannot be accepted.
    RejectedClaim,
}

/// Why a token was refused (or could not be minted).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Larger than any token podiam reads.
    #[error("the token is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Size of the token.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a compact JWS: parts, base64url or JSON are wrong.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is not on the allow-list (`none` and HMAC never are).
    #[error("algorithm {0:?} is not accepted")]
    UnsupportedAlgorithm(String),
    /// A header member podiam refuses: `crit`, or one that would take keys from the token.
    #[error("the token header has {0:?}, which is refused")]
    ForbiddenHeader(&'static str),
    /// No key with this `kid` (refresh the issuer's keys, at a bounded rate).
    #[error("no key with id {0:?}")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// `iss` is not the expected issuer.
    #[error("issuer {found:?} is not {expected:?}")]
    WrongIssuer {
        /// The issuer wanted.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// No `aud` value is an accepted audience.
    #[error("audience {found:?} is not accepted")]
    WrongAudience {
        /// The token's audiences.
        found: Vec<String>,
    },
    /// `exp` has passed.
    #[error("the token expired at {exp}")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// `nbf` is still in the future.
    #[error("the token is not valid before {nbf}")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
    },
    /// `iat` is in the future.
    #[error("the token was issued in the future ({iat})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
    },
    /// A claim that must be present is missing or empty.
    #[error("the token has no {0:?} claim")]
    MissingClaim(&'static str),
    /// A mint request that cannot be honoured.
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// Signing or randomness failed.
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] podiam_crypto::CryptoError),
}

impl TokenError {
    /// How a caller classifies this error.
    pub fn kind(&self) -> TokenErrorKind {
        match self {
            Self::Expired { .. } => TokenErrorKind::Expired,
            Self::MissingClaim(_) | Self::NotYetValid { .. } | Self::IssuedInFuture { .. } => {
                TokenErrorKind::RejectedClaim
            }
            _ => TokenErrorKind::Invalid,
        }
    }
}
