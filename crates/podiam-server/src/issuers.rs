//! Token issuers' keys by OIDC discovery: `{issuer}/.well-known/openid-configuration`, then
//! its `jwks_uri`, over HTTPS (plain HTTP only for loopback issuers, and only when allowed),
//! cached per issuer and refetched on an unknown key id at a bounded rate.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::JwkSet;
use podiam_eks::{Eks, IssuerRecord};
use podiam_oidc::{DISCOVERY_PATH, DiscoveryDocument, JwksCache, KeySet};
use podiam_sts::{IssuerError, IssuerKeys};
use podiam_types::{Clock, IssuerUrl};

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

/// Which networks the server may fetch issuers' documents from. Public addresses always;
/// loopback and private ones only when allowed; link-local (instance metadata, the node agent)
/// and other special addresses never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IssuerNetworks {
    /// Loopback issuers, over `http://` too (local test issuers: `--allow-http-issuers`).
    pub loopback: bool,
    /// Private networks (RFC 1918, unique local, shared address space) over HTTPS
    /// (`--allow-private-issuers`, for apiservers reachable only inside a network).
    pub private: bool,
}

impl IssuerNetworks {
    /// May the server connect to `ip`?
    pub fn allows(self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return self.loopback;
        }
        if is_private(ip) {
            return self.private;
        }
        !is_special(ip)
    }
}

/// RFC 1918, 100.64/10 (shared address space) and fc00::/7 (unique local).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Addresses no issuer lives at: unspecified, link-local (169.254/16 holds instance metadata
/// and the node agent), multicast, broadcast, documentation, reserved.
fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064
        }
    }
}

/// Resolves names to the addresses the policy allows, so a name that points at an internal
/// address (or is rebound to one between checks) is never connected to.
#[derive(Debug, Clone, Copy)]
struct FilteringResolver(IssuerNetworks);

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let networks = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| networks.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to addresses issuers may not use ({})",
                    found
                        .iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// OIDC discovery over HTTPS (plain HTTP only to loopback, and only when allowed).
#[derive(Debug)]
pub struct HttpIssuerKeys {
    client: reqwest::Client,
    networks: IssuerNetworks,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    clock: Arc<dyn Clock>,
}

/// May the server fetch `url`? `https://` to an allowed host; `http://` only to a loopback
/// host when loopback issuers are allowed. The URL must already be canonical (an
/// [`IssuerUrl`]); a literal address is checked here, a name when it resolves.
fn url_allowed(url: &IssuerUrl, networks: IssuerNetworks) -> Result<(), String> {
    let literal = url
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let loopback =
        literal.is_some_and(|ip| ip.to_canonical().is_loopback()) || url.host() == "localhost";
    if !(url.is_https() || (loopback && networks.loopback)) {
        return Err(if loopback {
            format!(
                "the issuer {url} uses plain HTTP; start the server with --allow-http-issuers to accept loopback test issuers"
            )
        } else {
            format!("the URL {url} must use https://")
        });
    }
    if url.host() == "localhost" && !networks.loopback {
        return Err(format!(
            "{url} is a loopback address; start the server with --allow-http-issuers to accept local test issuers"
        ));
    }
    if let Some(ip) = literal
        && !networks.allows(ip)
    {
        return Err(format!(
            "{url} is at an address issuers may not use (loopback with --allow-http-issuers, private networks with --allow-private-issuers; link-local never)"
        ));
    }
    Ok(())
}

/// What the caller of STS or EKS Auth is told; the detail goes only to the server's log, so a
/// caller cannot use discovery to probe the network or read other services' answers.
fn not_fetched() -> IssuerError {
    IssuerError::Unreachable("the issuer's keys could not be fetched".to_owned())
}

impl HttpIssuerKeys {
    /// A fetcher; `ca_file` adds a PEM bundle of CAs for private issuers.
    pub fn new(
        networks: IssuerNetworks,
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
        Self::with_ca_pem(networks, pem.as_deref(), clock).map_err(|e| match ca_file {
            Some(path) => format!("--oidc-ca-file {}: {e}", path.display()),
            None => e,
        })
    }

    /// A fetcher that also trusts the CAs of a PEM bundle. No redirects, no proxies, names
    /// resolved to allowed addresses only, 3 s to connect and 5 s in all.
    pub fn with_ca_pem(
        networks: IssuerNetworks,
        ca_pem: Option<&[u8]>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(FilteringResolver(networks))
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
            networks,
            entries: Mutex::new(HashMap::new()),
            clock,
        })
    }

    async fn get(&self, url: &IssuerUrl, path_and_query: &str) -> Result<Vec<u8>, String> {
        url_allowed(url, self.networks)?;
        let target = format!("{}{path_and_query}", url.origin());
        let mut response = self
            .client
            .get(&target)
            .send()
            .await
            .map_err(|e| format!("cannot fetch {target}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{target} answered HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("cannot read {target}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!("{target} is larger than {MAX_DOCUMENT} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The issuer's JWKS: its discovery document, then its `jwks_uri`, which must be on the
    /// issuer's own origin (scheme, host and port).
    async fn fetch(&self, issuer: &str) -> Result<JwkSet, String> {
        let url: IssuerUrl = issuer
            .parse()
            .map_err(|e| format!("the issuer {issuer:?} is not a valid URL: {e}"))?;
        let path = url.key().split_once('/').map_or("", |(_, p)| p);
        let discovery_path = if path.is_empty() {
            DISCOVERY_PATH.to_owned()
        } else {
            format!("/{path}{DISCOVERY_PATH}")
        };
        let document: DiscoveryDocument =
            serde_json::from_slice(&self.get(&url, &discovery_path).await?).map_err(|e| {
                format!("{url}{DISCOVERY_PATH} is not an OIDC discovery document: {e}")
            })?;
        let named: Option<IssuerUrl> = document.issuer.parse().ok();
        if named.as_ref() != Some(&url) {
            return Err(format!(
                "{url}{DISCOVERY_PATH} names issuer {:?}, not {issuer:?}",
                document.issuer
            ));
        }
        let jwks = reqwest::Url::parse(&document.jwks_uri)
            .map_err(|e| format!("jwks_uri {:?} is not a URL: {e}", document.jwks_uri))?;
        let jwks_origin = jwks.origin().ascii_serialization();
        if jwks_origin != url.origin()
            || !jwks.username().is_empty()
            || jwks.password().is_some()
            || jwks.fragment().is_some()
        {
            return Err(format!(
                "jwks_uri {:?} is not on the issuer's origin {}",
                document.jwks_uri,
                url.origin()
            ));
        }
        let path_and_query = match jwks.query() {
            Some(query) => format!("{}?{query}", jwks.path()),
            None => jwks.path().to_owned(),
        };
        let body = self.get(&url, &path_and_query).await?;
        let text =
            String::from_utf8(body).map_err(|_| format!("{} is not UTF-8", document.jwks_uri))?;
        JwkSet::parse(&text).map_err(|e| format!("{}: {e}", document.jwks_uri))
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
        // One entry (and one fetch at a time) per issuer, however its URL is spelled.
        let Ok(canonical) = issuer.parse::<IssuerUrl>() else {
            tracing::info!(issuer, "refused an issuer URL that is not canonical-izable");
            return Err(not_fetched());
        };
        let issuer = canonical.to_string();
        let issuer = issuer.as_str();
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
            Some(_) => return Err(not_fetched()),
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
                tracing::warn!(issuer, error = %e, "cannot fetch the issuer's keys (the caller is told only that they could not be fetched)");
                Err(not_fetched())
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
    networks: IssuerNetworks,
    clock: Arc<dyn Clock>,
    with_ca: Mutex<HashMap<String, Arc<HttpIssuerKeys>>>,
}

impl ClusterIssuerKeys {
    /// Over `eks`'s clusters, falling back to `fallback` (discovery).
    pub fn new(
        eks: Eks,
        fallback: Arc<dyn IssuerKeys>,
        networks: IssuerNetworks,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            eks,
            fallback,
            networks,
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
                self.networks,
                Some(pem.as_bytes()),
                Arc::clone(&self.clock),
            )
            .map_err(|e| {
                tracing::warn!(issuer, error = %e, "the cluster's CA bundle cannot be used");
                not_fetched()
            })?,
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
    url.parse::<IssuerUrl>().is_ok_and(|u| {
        !u.is_https()
            && url_allowed(
                &u,
                IssuerNetworks {
                    loopback: true,
                    private: false,
                },
            )
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: IssuerNetworks = IssuerNetworks {
        loopback: false,
        private: false,
    };
    const LOOPBACK: IssuerNetworks = IssuerNetworks {
        loopback: true,
        private: false,
    };
    const PRIVATE: IssuerNetworks = IssuerNetworks {
        loopback: false,
        private: true,
    };

    fn allowed(url: &str, networks: IssuerNetworks) -> bool {
        url.parse::<IssuerUrl>()
            .is_ok_and(|u| url_allowed(&u, networks).is_ok())
    }

    #[test]
    fn only_https_or_loopback_http_when_allowed() {
        assert!(allowed("https://oidc.example.com/id/x", NONE));
        assert!(allowed("http://127.0.0.1:8080/id/x", LOOPBACK));
        assert!(allowed("http://127.1.2.3/", LOOPBACK));
        assert!(allowed("http://localhost:1", LOOPBACK));
        assert!(allowed("http://[::1]:9/", LOOPBACK));
        assert!(!allowed("http://127.0.0.1:8080/id/x", NONE));
        assert!(!allowed("https://127.0.0.1:8080/id/x", NONE));
        assert!(!allowed("https://localhost/id/x", NONE));
        assert!(!allowed("http://10.0.0.1", LOOPBACK));
        assert!(!allowed("http://127.0.0.1.nip.io", LOOPBACK));
        assert!(!allowed("http://127.0.0.1:1@evil.example/", LOOPBACK));
        assert!(!allowed("https://user:pw@oidc.example.com/", LOOPBACK));
        assert!(!allowed("ftp://127.0.0.1/", LOOPBACK));
        assert!(!allowed("file:///etc/passwd", LOOPBACK));
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for url in [
            "https://169.254.169.254/latest",
            "https://169.254.170.23/v1",
            "https://[fe80::1]/x",
            "https://0.0.0.0/x",
            "https://224.0.0.1/x",
            "https://255.255.255.255/x",
        ] {
            assert!(!allowed(url, LOOPBACK), "{url}");
            assert!(!allowed(url, PRIVATE), "{url}");
        }
        for url in [
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.1.1/x",
            "https://100.64.0.1/x",
            "https://[fd00:ec2::254]/x",
        ] {
            assert!(!allowed(url, NONE), "{url}");
            assert!(allowed(url, PRIVATE), "{url}");
        }
        assert!(!allowed("https://[::ffff:169.254.169.254]/x", PRIVATE));
        assert!(!allowed("https://[::ffff:127.0.0.1]/x", NONE));
        assert!(allowed("https://93.184.215.14/x", NONE));
    }

    #[tokio::test]
    async fn names_resolve_to_allowed_addresses_only() {
        use reqwest::dns::Resolve as _;
        let resolve = |networks: IssuerNetworks, name: &str| {
            FilteringResolver(networks).resolve(name.parse().unwrap_or_else(|_| unreachable!()))
        };
        assert!(
            resolve(NONE, "localhost").await.is_err(),
            "localhost is loopback"
        );
        let addresses: Vec<SocketAddr> = resolve(LOOPBACK, "localhost")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"))
            .collect();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()));
    }
}
