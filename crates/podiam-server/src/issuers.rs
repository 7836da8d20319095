//! Token issuers' keys by OIDC discovery: `{issuer}/.well-known/openid-configuration`, then
//! its `jwks_uri`, over HTTPS (plain HTTP only for loopback issuers, and only when allowed),
//! cached per issuer and refetched on an unknown key id at a bounded rate.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::JwkSet;
use podiam_oidc::{DISCOVERY_PATH, DiscoveryDocument, JwksCache, KeySet};
use podiam_sts::{IssuerError, IssuerKeys};
use podiam_types::Clock;

/// The largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// An unknown key id refetches at most this often per issuer.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// Keys are refetched after this long even without an unknown key id.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// OIDC discovery over HTTP(S).
#[derive(Debug)]
pub struct HttpIssuerKeys {
    client: reqwest::Client,
    allow_http: bool,
    caches: Mutex<HashMap<String, JwksCache>>,
    clock: Arc<dyn Clock>,
}

/// `http://127.0.0.1:8080/x`, `http://localhost/x`, `http://[::1]/x`.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl HttpIssuerKeys {
    /// A fetcher; `ca_file` adds a PEM bundle of CAs for private issuers.
    pub fn new(
        allow_http: bool,
        ca_file: Option<&Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("podiam/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("--oidc-ca-file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--oidc-ca-file {}: {e}", path.display()))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        Ok(Self {
            client,
            allow_http,
            caches: Mutex::new(HashMap::new()),
            clock,
        })
    }

    fn allowed(&self, url: &str) -> Result<(), IssuerError> {
        if url.starts_with("https://") || (self.allow_http && is_loopback_http(url)) {
            return Ok(());
        }
        if is_loopback_http(url) {
            return Err(IssuerError::NotAllowed(format!(
                "the issuer {url} uses plain HTTP; start the server with --allow-http-issuers to accept loopback test issuers"
            )));
        }
        Err(IssuerError::NotAllowed(format!(
            "the issuer URL {url} must use https://"
        )))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, IssuerError> {
        let unreachable = |e: &dyn std::fmt::Display| {
            IssuerError::Unreachable(format!("cannot fetch {url}: {e}"))
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        if !response.status().is_success() {
            return Err(unreachable(&format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(unreachable(&format!(
                    "the document is larger than {MAX_DOCUMENT} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, IssuerError> {
        let discovery_url = format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/'));
        let document: DiscoveryDocument = serde_json::from_slice(&self.get(&discovery_url).await?)
            .map_err(|e| {
                IssuerError::Unreachable(format!(
                    "{discovery_url} is not an OIDC discovery document: {e}"
                ))
            })?;
        if document.issuer != issuer {
            return Err(IssuerError::Unreachable(format!(
                "{discovery_url} names issuer {:?}, not {issuer:?}",
                document.issuer
            )));
        }
        self.allowed(&document.jwks_uri)?;
        let jwks = self.get(&document.jwks_uri).await?;
        let text = String::from_utf8(jwks)
            .map_err(|_| IssuerError::Unreachable(format!("{} is not UTF-8", document.jwks_uri)))?;
        JwkSet::parse(&text)
            .map_err(|e| IssuerError::Unreachable(format!("{}: {e}", document.jwks_uri)))
    }
}

#[async_trait]
impl IssuerKeys for HttpIssuerKeys {
    async fn keys(&self, issuer: &str, refresh: bool) -> Result<KeySet, IssuerError> {
        self.allowed(issuer)?;
        let now = self.clock.now();
        let stale_keys = {
            let mut caches = self
                .caches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let cache = caches
                .entry(issuer.to_owned())
                .or_insert_with(|| JwksCache::new(MIN_REFETCH, MAX_AGE));
            if !cache.should_fetch(now, refresh) {
                return Ok(cache.keys().clone());
            }
            cache.attempted(now);
            cache.keys().clone()
        };
        match self.fetch(issuer).await {
            Ok(jwks) => {
                let mut caches = self
                    .caches
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let cache = caches
                    .entry(issuer.to_owned())
                    .or_insert_with(|| JwksCache::new(MIN_REFETCH, MAX_AGE));
                for reason in cache.update(&jwks, now) {
                    tracing::info!(issuer, "skipped a key of the issuer's JWKS: {reason}");
                }
                Ok(cache.keys().clone())
            }
            // Keys fetched before keep working while the issuer is unreachable.
            Err(e) if !stale_keys.is_empty() => {
                tracing::warn!(issuer, error = %e, "refreshing the issuer's keys failed; using the keys fetched before");
                Ok(stale_keys)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_http("http://127.0.0.1:8080/id/x"));
        assert!(is_loopback_http("http://localhost:1"));
        assert!(is_loopback_http("http://[::1]:9/"));
        assert!(!is_loopback_http("http://10.0.0.1"));
        assert!(!is_loopback_http("http://127.0.0.1.nip.io"));
        assert!(!is_loopback_http("https://127.0.0.1"));
    }
}
