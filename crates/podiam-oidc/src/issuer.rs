//! Minting projected service-account tokens.

use std::fmt::Write as _;
use std::time::Duration;

use podiam_crypto::{Rng, SigningKey};
use time::OffsetDateTime;

use crate::claims::{Claims, KubernetesClaims, ObjectRef};
use crate::{TokenError, jws};

/// The shortest lifetime kube-apiserver grants a projected token.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// The longest lifetime podiam grants.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account (name and uid).
    pub service_account: ObjectRef,
    /// Audiences, at least one.
    pub audiences: Vec<String>,
    /// The pod the token is bound to.
    pub pod: Option<ObjectRef>,
    /// The node the pod runs on.
    pub node: Option<ObjectRef>,
    /// How long the token lives.
    pub lifetime: Duration,
    /// For extended tokens: when clients should start warning.
    pub warn_after: Option<Duration>,
}

/// An issuer whose tokens podiam signs: its URL and current signing key.
#[derive(Debug)]
pub struct Issuer {
    url: String,
    key: SigningKey,
}

/// A DNS-1123 label: what Kubernetes requires of a namespace.
fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: what Kubernetes requires of service account, pod and node names.
fn is_dns_subdomain(s: &str) -> bool {
    (1..=253).contains(&s.len()) && s.split('.').all(is_dns_label)
}

/// A random (version 4) UUID.
fn uuid4(rng: &dyn Rng) -> Result<String, TokenError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
    Ok(out)
}

impl Issuer {
    /// An issuer at `url` (an `https://` URL, or `http://` for local development) that signs
    /// with `key`.
    pub fn new(url: &str, key: SigningKey) -> Result<Self, TokenError> {
        let valid = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.contains(['?', '#', ' '])
            && url.len() <= 1024;
        if !valid {
            return Err(TokenError::InvalidRequest(format!(
                "issuer {url:?} must be an https:// URL without query or fragment"
            )));
        }
        Ok(Self {
            url: url.to_owned(),
            key,
        })
    }

    /// The issuer URL (`iss`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Mints a token at `now`.
    pub fn mint(
        &self,
        request: &TokenRequest,
        now: OffsetDateTime,
        rng: &dyn Rng,
    ) -> Result<String, TokenError> {
        let invalid = |why: String| Err(TokenError::InvalidRequest(why));
        if !is_dns_label(&request.namespace) {
            return invalid(format!(
                "namespace {:?} is not a DNS-1123 label",
                request.namespace
            ));
        }
        for (what, name) in [
            Some(("service account", &request.service_account.name)),
            request.pod.as_ref().map(|p| ("pod", &p.name)),
            request.node.as_ref().map(|n| ("node", &n.name)),
        ]
        .into_iter()
        .flatten()
        {
            if !is_dns_subdomain(name) {
                return invalid(format!("{what} name {name:?} is not a DNS-1123 subdomain"));
            }
        }
        if request.audiences.is_empty()
            || request
                .audiences
                .iter()
                .any(|a| a.is_empty() || a.len() > 1024)
        {
            return invalid("at least one audience, each 1-1024 characters".to_owned());
        }
        if !(MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&request.lifetime) {
            return invalid(format!(
                "a lifetime of {}s; tokens live {}s to {}s",
                request.lifetime.as_secs(),
                MIN_TOKEN_LIFETIME.as_secs(),
                MAX_TOKEN_LIFETIME.as_secs()
            ));
        }
        let iat = now.unix_timestamp();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            aud: request.audiences.clone(),
            exp: iat.saturating_add(secs(request.lifetime)),
            iat: Some(iat),
            iss: self.url.clone(),
            jti: Some(uuid4(rng)?),
            kubernetes: Some(KubernetesClaims {
                namespace: request.namespace.clone(),
                node: request.node.clone(),
                pod: request.pod.clone(),
                serviceaccount: request.service_account.clone(),
                warnafter: request.warn_after.map(|w| iat.saturating_add(secs(w))),
            }),
            nbf: Some(iat),
            sub: format!(
                "system:serviceaccount:{}:{}",
                request.namespace, request.service_account.name
            ),
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| TokenError::InvalidRequest(format!("claims: {e}")))?;
        jws::sign(&payload, &self.key)
    }
}
