use thiserror::Error;

/// What can go wrong calling AWS-style APIs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No credentials could be found, or a source of them failed.
    #[error("no credentials: {0}")]
    Credentials(String),
    /// The endpoint could not be reached or the exchange failed.
    #[error("cannot reach {endpoint}: {message}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// The service answered with an error.
    #[error("{code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The AWS error code.
        code: String,
        /// The message.
        message: String,
        /// The request id, when the service sent one.
        request_id: Option<String>,
    },
    /// The answer could not be understood.
    #[error("unexpected response: {0}")]
    InvalidResponse(String),
    /// A request could not be built (bad endpoint or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// Is retrying pointless (the service refused this request for good)?
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Api { status, code, .. } => {
                *status < 500 && *status != 429 && !code.contains("Throttl")
            }
            Self::Credentials(_) | Self::InvalidRequest(_) => true,
            Self::Transport { .. } | Self::InvalidResponse(_) => false,
        }
    }
}
