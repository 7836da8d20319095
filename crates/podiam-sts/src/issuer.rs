//! Where the keys of a token issuer come from.

use std::fmt;

use async_trait::async_trait;
use podiam_oidc::KeySet;
use thiserror::Error;

/// Why an issuer's keys are unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The issuer may not be used (plain HTTP to a non-loopback host, say).
    #[error("{0}")]
    NotAllowed(String),
    /// Fetching the discovery document or the JWKS failed.
    #[error("{0}")]
    Unreachable(String),
}

/// The keys of token issuers: a hosted issuer's from the store, others' by OIDC discovery.
#[async_trait]
pub trait IssuerKeys: Send + Sync + fmt::Debug {
    /// The keys of `issuer` (exactly the tokens' `iss`). `refresh` asks for a refetch because a
    /// token named an unknown key; implementations bound how often that happens.
    async fn keys(&self, issuer: &str, refresh: bool) -> Result<KeySet, IssuerError>;
}
