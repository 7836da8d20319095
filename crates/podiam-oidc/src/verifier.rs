//! Verifying tokens.

use std::time::Duration;

use podiam_crypto::JwsAlgorithm;
use time::OffsetDateTime;

use crate::claims::Claims;
use crate::{KeySet, TokenError, jws};

/// The most clock skew tolerated on `exp`, `nbf` and `iat`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// What a verifier accepts: one issuer, a set of audiences, an algorithm allow-list.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<JwsAlgorithm>,
    leeway: i64,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The claims.
    pub claims: Claims,
    /// The accepted audience the token carries.
    pub audience: String,
    /// The key that signed it.
    pub kid: String,
}

impl Verifier {
    /// Accepts tokens from `issuer` carrying one of `audiences`, signed RS256 or ES256, with
    /// 60 s of leeway.
    pub fn new(issuer: &str, audiences: &[&str]) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            algorithms: vec![JwsAlgorithm::RS256, JwsAlgorithm::ES256],
            leeway: 60,
        }
    }

    /// Restricts the algorithms.
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[JwsAlgorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Sets the leeway, capped at [`MAX_LEEWAY`].
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        let capped = leeway.min(MAX_LEEWAY).as_secs();
        self.leeway = i64::try_from(capped).unwrap_or(60);
        self
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` against `keys` at `now`.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: OffsetDateTime,
    ) -> Result<Verified, TokenError> {
        let parsed = jws::parse(token, &self.algorithms)?;
        let key = keys
            .find(parsed.kid.as_deref(), parsed.alg)
            .ok_or_else(|| TokenError::UnknownKey(parsed.kid.clone()))?;
        key.verify(parsed.signing_input.as_bytes(), &parsed.signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims = decode_claims(&parsed.payload)?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer {
                expected: self.issuer.clone(),
                found: claims.iss,
            });
        }
        let Some(audience) = claims
            .aud
            .iter()
            .find(|a| self.audiences.contains(a))
            .cloned()
        else {
            return Err(TokenError::WrongAudience { found: claims.aud });
        };
        if claims.sub.is_empty() {
            return Err(TokenError::MissingClaim("sub"));
        }
        check_times(&claims, now, self.leeway)?;
        Ok(Verified {
            claims,
            audience,
            kid: key.kid().to_owned(),
        })
    }
}

/// The claims of a well-formed token **without checking its signature**: for early, cheap
/// refusals (garbage, expired) before a key is at hand. Never trust what it returns.
pub fn decode_unverified(token: &str) -> Result<Claims, TokenError> {
    let parsed = jws::parse(token, &[JwsAlgorithm::RS256, JwsAlgorithm::ES256])?;
    decode_claims(&parsed.payload)
}

fn decode_claims(payload: &[u8]) -> Result<Claims, TokenError> {
    serde_json::from_slice(payload).map_err(|e| {
        if e.to_string().starts_with("missing field") {
            TokenError::MissingClaim(missing_field(&e.to_string()))
        } else {
            TokenError::Malformed(format!("the claims are not valid: {e}"))
        }
    })
}

/// `exp`, `nbf` and `iat` against `now`, with `leeway` seconds of clock skew.
pub fn check_times(claims: &Claims, now: OffsetDateTime, leeway: i64) -> Result<(), TokenError> {
    let now = now.unix_timestamp();
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired { exp: claims.exp });
    }
    if let Some(nbf) = claims.nbf.filter(|nbf| now.saturating_add(leeway) < *nbf) {
        return Err(TokenError::NotYetValid { nbf });
    }
    if let Some(iat) = claims.iat.filter(|iat| now.saturating_add(leeway) < *iat) {
        return Err(TokenError::IssuedInFuture { iat });
    }
    Ok(())
}

/// The claim name in serde's "missing field `x`" message.
fn missing_field(message: &str) -> &'static str {
    ["aud", "exp", "iss", "sub"]
        .into_iter()
        .find(|f| message.contains(&format!("`{f}`")))
        .unwrap_or("unknown")
}
