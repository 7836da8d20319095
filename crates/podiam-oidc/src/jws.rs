//! JWS compact serialization (RFC 7515), strictly: three base64url parts without padding, a
//! JSON-object header without `crit` and without key-carrying members, a JSON payload.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{JwsAlgorithm, SigningKey};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::TokenError;

/// The longest token accepted (STS's limit for `WebIdentityToken`).
pub const MAX_TOKEN_BYTES: usize = 20_000;

/// The header members podiam reads; unknown members are ignored, duplicates refused.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    jku: Option<IgnoredAny>,
    #[serde(default)]
    x5u: Option<IgnoredAny>,
    #[serde(default)]
    jwk: Option<IgnoredAny>,
    #[serde(default)]
    x5c: Option<IgnoredAny>,
}

/// A token split and decoded, signature not yet checked.
pub(crate) struct Parsed<'a> {
    pub(crate) alg: JwsAlgorithm,
    pub(crate) kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

fn decode(part: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| TokenError::Malformed(format!("the {what} is not base64url: {e}")))
}

/// Splits and decodes a compact JWS, applying every check that needs no key.
pub(crate) fn parse<'a>(
    token: &'a str,
    allowed: &[JwsAlgorithm],
) -> Result<Parsed<'a>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            size: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "a token has three dot-separated parts".to_owned(),
        ));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed(
            "a part of the token is empty".to_owned(),
        ));
    }
    let header_json = decode(header, "header")?;
    let raw: RawHeader = serde_json::from_slice(&header_json).map_err(|e| {
        TokenError::Malformed(format!("the header is not a JSON object with \"alg\": {e}"))
    })?;
    for (present, name) in [
        (raw.crit.is_some(), "crit"),
        (raw.jku.is_some(), "jku"),
        (raw.x5u.is_some(), "x5u"),
        (raw.jwk.is_some(), "jwk"),
        (raw.x5c.is_some(), "x5c"),
    ] {
        if present {
            return Err(TokenError::ForbiddenHeader(name));
        }
    }
    let alg = match raw.alg.as_str() {
        "RS256" => JwsAlgorithm::RS256,
        "ES256" => JwsAlgorithm::ES256,
        _ => return Err(TokenError::UnsupportedAlgorithm(raw.alg)),
    };
    if !allowed.contains(&alg) {
        return Err(TokenError::UnsupportedAlgorithm(raw.alg));
    }
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or_else(|| TokenError::Malformed("bad part boundaries".to_owned()))?;
    Ok(Parsed {
        alg,
        kid: raw.kid,
        signing_input,
        payload: decode(payload, "payload")?,
        signature: decode(signature, "signature")?,
    })
}

/// Writes a compact JWS of `payload` signed with `key`, with `kid` in the header.
pub(crate) fn sign(payload: &[u8], key: &SigningKey) -> Result<String, TokenError> {
    let header = serde_json::json!({"alg": key.algorithm().as_str(), "kid": key.kid()});
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}
