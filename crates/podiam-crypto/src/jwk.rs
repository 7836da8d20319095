//! JSON Web Keys (RFC 7517), public keys only.

use serde::{Deserialize, Serialize};

use crate::CryptoError;

/// One public key as a JWK. Members are in the order kube-apiserver writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `"sig"`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// `"RSA"` or `"EC"`.
    pub kty: String,
    /// The key id tokens refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `"RS256"` or `"ES256"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC curve: `"P-256"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// A private exponent: present only in private JWKs, which are refused.
    #[serde(default, skip_serializing)]
    d: Option<PrivatePart>,
}

/// Marks that a JWK had private members; their values are never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrivatePart;

impl<'de> Deserialize<'de> for PrivatePart {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

impl Jwk {
    pub(crate) fn public(kty: &str, kid: &str, alg: &str) -> Self {
        Self {
            key_use: Some("sig".to_owned()),
            kty: kty.to_owned(),
            kid: Some(kid.to_owned()),
            alg: Some(alg.to_owned()),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
            d: None,
        }
    }

    /// True when the JWK carries private key material.
    pub fn is_private(&self) -> bool {
        self.d.is_some()
    }
}

/// A JWK Set: `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The media type kube-apiserver serves a JWKS with.
    pub const MEDIA_TYPE: &'static str = "application/jwk-set+json";

    /// The largest JWKS document accepted.
    pub const MAX_BYTES: usize = 256 * 1024;

    /// Parses a JWKS document, refusing oversized input and private keys.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        if text.len() > Self::MAX_BYTES {
            return Err(CryptoError::InvalidJwk(format!(
                "the JWKS is {} bytes; the limit is {}",
                text.len(),
                Self::MAX_BYTES
            )));
        }
        let set: Self = serde_json::from_str(text)
            .map_err(|e| CryptoError::InvalidJwk(format!("not a JWK Set: {e}")))?;
        if set.keys.iter().any(Jwk::is_private) {
            return Err(CryptoError::InvalidJwk(
                "the JWKS contains a private key; publish public keys only".to_owned(),
            ));
        }
        Ok(set)
    }
}
