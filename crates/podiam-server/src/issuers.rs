//! Token issuers' keys by OIDC discovery: `{issuer}/.well-known/openid-configuration`, then
//! its `jwks_uri`, over HTTPS (plain HTTP only for loopback issuers, and only when allowed),
//! cached per issuer and refetched on an unknown key id at a bounded rate.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::JwkSet;
use podiam_eks::{Eks, IssuerRecord};
use podiam_oidc::{DISCOVERY_PATH, DiscoveryDocument, JwksCache, KeySet};
use podiam_sts::{IssuerError, IssuerKeys};
use podiam_types::Clock;

/// The largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// An unknown key id refetches at most this often per issuer.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// Keys are refetched after this long even without an unknown key id.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// One issuer's keys, and the lock that makes concurrent misses wait for one fetch.
#[derive(Debug)]
struct Entry {
    cache: Mutex<JwksCache>,
    fetching: tokio::sync::Mutex<()>,
}

/// OIDC discovery over HTTP(S).
#[derive(Debug)]
pub struct HttpIssuerKeys {
    client: reqwest::Client,
    allow_http: bool,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    clock: Arc<dyn Clock>,
}

/// May the server fetch `url`? `https://` always; `http://` only to a loopback host and only
/// when allowed. No user info (`http://127.0.0.1:1@evil.example/`), no other schemes.
fn url_allowed(url: &reqwest::Url, allow_http: bool) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("the URL {url} carries user information"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) && allow_http => Ok(()),
        "http" if is_loopback(url) => Err(format!(
            "the issuer {url} uses plain HTTP; start the server with --allow-http-issuers to accept loopback test issuers"
        )),
        _ => Err(format!("the URL {url} must use https://")),
    }
}

/// `127.0.0.0/8`, `::1` or `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Follows at most 3 redirects, each to a URL that [`url_allowed`] accepts: a redirect cannot
/// downgrade to plain HTTP or lead to a host the issuer rules would refuse.
fn redirects(allow_http: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if let Err(e) = url_allowed(attempt.url(), allow_http) {
            attempt.error(e)
        } else {
            attempt.follow()
        }
    })
}

impl HttpIssuerKeys {
    /// A fetcher; `ca_file` adds a PEM bundle of CAs for private issuers.
    pub fn new(
        allow_http: bool,
        ca_file: Option<&Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let pem = match ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("--oidc-ca-file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Self::with_ca_pem(allow_http, pem.as_deref(), clock).map_err(|e| match ca_file {
            Some(path) => format!("--oidc-ca-file {}: {e}", path.display()),
            None => e,
        })
    }

    /// A fetcher that also trusts the CAs of a PEM bundle.
    pub fn with_ca_pem(
        allow_http: bool,
        ca_pem: Option<&[u8]>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(redirects(allow_http))
            .user_agent(concat!("podiam/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        Ok(Self {
            client,
            allow_http,
            entries: Mutex::new(HashMap::new()),
            clock,
        })
    }

    fn allowed(&self, url: &str) -> Result<(), IssuerError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| IssuerError::NotAllowed(format!("the URL {url:?} is not valid: {e}")))?;
        url_allowed(&parsed, self.allow_http).map_err(IssuerError::NotAllowed)
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

impl HttpIssuerKeys {
    fn entry(&self, issuer: &str) -> Arc<Entry> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(entries.entry(issuer.to_owned()).or_insert_with(|| {
            Arc::new(Entry {
                cache: Mutex::new(JwksCache::new(MIN_REFETCH, MAX_AGE)),
                fetching: tokio::sync::Mutex::new(()),
            })
        }))
    }
}

fn lock(cache: &Mutex<JwksCache>) -> std::sync::MutexGuard<'_, JwksCache> {
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The cached keys when no fetch is due; `None` when the caller should fetch.
fn cached(cache: &Mutex<JwksCache>, now: time::OffsetDateTime, refresh: bool) -> Option<KeySet> {
    let cache = lock(cache);
    (!cache.should_fetch(now, refresh)).then(|| cache.keys().clone())
}

#[async_trait]
impl IssuerKeys for HttpIssuerKeys {
    /// Called only for issuers with a registered OIDC provider (STS looks the provider up
    /// first), so the entries are bounded by the providers. Concurrent misses wait for one
    /// fetch; an issuer that has never answered is `IDPCommunicationError` (SDKs retry it).
    async fn keys(&self, issuer: &str, refresh: bool) -> Result<KeySet, IssuerError> {
        self.allowed(issuer)?;
        let entry = self.entry(issuer);
        if let Some(keys) = cached(&entry.cache, self.clock.now(), refresh)
            && !keys.is_empty()
        {
            return Ok(keys);
        }
        let _fetching = entry.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let now = self.clock.now();
        let stale_keys = match cached(&entry.cache, now, refresh) {
            Some(keys) if !keys.is_empty() => return Ok(keys),
            Some(_) => {
                return Err(IssuerError::Unreachable(format!(
                    "no keys of {issuer} yet: the last fetch failed; retrying within {} s",
                    MIN_REFETCH.as_secs()
                )));
            }
            None => {
                let mut cache = lock(&entry.cache);
                cache.attempted(now);
                cache.keys().clone()
            }
        };
        match self.fetch(issuer).await {
            Ok(jwks) => {
                let mut cache = lock(&entry.cache);
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
            Err(e) => {
                tracing::warn!(issuer, error = %e, "cannot fetch the issuer's keys");
                Err(e)
            }
        }
    }
}

/// Issuer keys for STS and EKS Auth: the keys EKS stores (hosted issuers, uploaded JWKS) with
/// no network at all, else OIDC discovery, with a cluster's own CA bundle when it has one.
#[derive(Debug)]
pub struct ClusterIssuerKeys {
    eks: Eks,
    fallback: Arc<dyn IssuerKeys>,
    allow_http: bool,
    clock: Arc<dyn Clock>,
    with_ca: Mutex<HashMap<String, Arc<HttpIssuerKeys>>>,
}

impl ClusterIssuerKeys {
    /// Over `eks`'s clusters, falling back to `fallback` (discovery).
    pub fn new(
        eks: Eks,
        fallback: Arc<dyn IssuerKeys>,
        allow_http: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            eks,
            fallback,
            allow_http,
            clock,
            with_ca: Mutex::new(HashMap::new()),
        }
    }

    fn fetcher_with_ca(&self, issuer: &str, pem: &str) -> Result<Arc<HttpIssuerKeys>, IssuerError> {
        let mut fetchers = self
            .with_ca
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(fetcher) = fetchers.get(issuer) {
            return Ok(Arc::clone(fetcher));
        }
        let fetcher = Arc::new(
            HttpIssuerKeys::with_ca_pem(
                self.allow_http,
                Some(pem.as_bytes()),
                Arc::clone(&self.clock),
            )
            .map_err(|e| IssuerError::Unreachable(format!("the CA bundle of {issuer}: {e}")))?,
        );
        fetchers.insert(issuer.to_owned(), Arc::clone(&fetcher));
        Ok(fetcher)
    }
}

#[async_trait]
impl IssuerKeys for ClusterIssuerKeys {
    async fn keys(&self, issuer: &str, refresh: bool) -> Result<KeySet, IssuerError> {
        let cluster = self.eks.state().issuer_cluster(issuer);
        if let Some(cluster) = cluster {
            if let Some(keys) = &cluster.keys {
                return Ok(keys.clone());
            }
            if let IssuerRecord::External { ca: Some(pem), .. } = &cluster.record.issuer {
                return self
                    .fetcher_with_ca(issuer, pem)?
                    .keys(issuer, refresh)
                    .await;
            }
        }
        self.fallback.keys(issuer, refresh).await
    }
}

/// Is `url` an `http://` URL of a loopback host (and nothing else)?
pub(crate) fn is_loopback_http(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "http" && url_allowed(&u, true).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str, allow_http: bool) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| url_allowed(&u, allow_http).is_ok())
    }

    #[test]
    fn only_https_or_loopback_http_when_allowed() {
        assert!(allowed("https://oidc.example.com/id/x", false));
        assert!(allowed("http://127.0.0.1:8080/id/x", true));
        assert!(allowed("http://127.1.2.3/", true));
        assert!(allowed("http://localhost:1", true));
        assert!(allowed("http://[::1]:9/", true));
        assert!(!allowed("http://127.0.0.1:8080/id/x", false));
        assert!(!allowed("http://10.0.0.1", true));
        assert!(!allowed("http://127.0.0.1.nip.io", true));
        assert!(!allowed("http://127.0.0.1:1@evil.example/", true));
        assert!(!allowed("https://user:pw@oidc.example.com/", true));
        assert!(!allowed("ftp://127.0.0.1/", true));
        assert!(!allowed("file:///etc/passwd", true));
    }
}
