//! The OIDC discovery document, as kube-apiserver serves it.

use podiam_crypto::JwsAlgorithm;
use serde::{Deserialize, Serialize};

/// Where the discovery document lives under the issuer URL.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Where kube-apiserver serves its JWKS under the issuer URL.
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// `GET {issuer}/.well-known/openid-configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryDocument {
    /// The issuer URL, exactly as in tokens' `iss`.
    pub issuer: String,
    /// Where the keys are.
    pub jwks_uri: String,
    /// Always `["id_token"]`.
    pub response_types_supported: Vec<String>,
    /// Always `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// The signing algorithms in use, sorted.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

impl DiscoveryDocument {
    /// The document for `issuer` with keys at `jwks_uri`, signing with `algorithms`.
    pub fn new(issuer: &str, jwks_uri: &str, algorithms: &[JwsAlgorithm]) -> Self {
        let mut algs: Vec<String> = algorithms.iter().map(|a| a.as_str().to_owned()).collect();
        algs.sort();
        algs.dedup();
        Self {
            issuer: issuer.to_owned(),
            jwks_uri: jwks_uri.to_owned(),
            response_types_supported: vec!["id_token".to_owned()],
            subject_types_supported: vec!["public".to_owned()],
            id_token_signing_alg_values_supported: algs,
        }
    }
}

/// kube-apiserver's default JWKS URL for an issuer.
pub fn default_jwks_uri(issuer: &str) -> String {
    format!("{}{JWKS_PATH}", issuer.trim_end_matches('/'))
}
