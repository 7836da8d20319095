//! HTTPS: the serving certificate, reloaded when its files change (cert-manager renews it in
//! place), and the accept loop that serves a router over TLS with HTTP/1.1 keep-alive.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{ErrorKind, Metrics};
use crate::WebhookError;

/// The serving certificate and key, from PEM files, swapped in when the files change.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Loaded>,
}

struct Loaded {
    /// The file contents this key was built from, to notice a change.
    source: (Vec<u8>, Vec<u8>),
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, WebhookError> {
    std::fs::read(path)
        .map_err(|e| WebhookError::Tls(format!("cannot read {}: {e}", path.display())))
}

impl ReloadingCert {
    /// Loads the certificate chain and the key; fails if they cannot be used together.
    pub fn load(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, WebhookError> {
        let source = (read(&cert_path)?, read(&key_path)?);
        let key = certified_key(&source, &cert_path, &key_path, &provider)?;
        Ok(Self {
            cert_path,
            key_path,
            provider,
            current: RwLock::new(Loaded { source, key }),
        })
    }

    /// Re-reads the files; swaps in the new pair if they changed and are valid. Returns whether
    /// the certificate changed. An invalid pair (e.g. read between the writes of the two files)
    /// keeps the old one and is reported.
    pub fn reload(&self) -> Result<bool, WebhookError> {
        let source = (read(&self.cert_path)?, read(&self.key_path)?);
        let unchanged = self
            .current
            .read()
            .map(|loaded| loaded.source == source)
            .unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let key = certified_key(&source, &self.cert_path, &self.key_path, &self.provider)?;
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Loaded { source, key };
        Ok(true)
    }

    /// Reloads every `interval` forever, logging and counting what happens.
    pub async fn reload_forever(self: Arc<Self>, interval: Duration, metrics: Arc<Metrics>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match self.reload() {
                Ok(true) => {
                    tracing::info!(cert = %self.cert_path.display(), "reloaded the TLS certificate");
                    metrics.tls_reloaded();
                }
                Ok(false) => {}
                Err(e) => {
                    metrics.error(ErrorKind::TlsReload);
                    tracing::warn!(error = %e, "keeping the current TLS certificate");
                }
            }
        }
    }

    /// A rustls server configuration that serves the current certificate (HTTP/1.1). With
    /// `client_ca` (PEM), only clients with a certificate from those CAs are served: the
    /// Kubernetes API server, configured to present one to admission webhooks.
    pub fn server_config(
        self: &Arc<Self>,
        client_ca: Option<&[u8]>,
    ) -> Result<Arc<rustls::ServerConfig>, WebhookError> {
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| WebhookError::Tls(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert =
                        cert.map_err(|e| WebhookError::Tls(format!("the client CA bundle: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| WebhookError::Tls(format!("the client CA bundle: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(WebhookError::Tls(
                        "the client CA bundle holds no PEM certificate".to_owned(),
                    ));
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|e| WebhookError::Tls(format!("the client CA bundle: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .ok()
            .map(|loaded| Arc::clone(&loaded.key))
    }
}

fn certified_key(
    (cert_pem, key_pem): &(Vec<u8>, Vec<u8>),
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>, WebhookError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebhookError::Tls(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(WebhookError::Tls(format!(
            "{} holds no PEM certificate",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| WebhookError::Tls(format!("{}: {e}", key_path.display())))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        WebhookError::Tls(format!(
            "{} and {} do not make a usable pair: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

/// Serves `router` over TLS on `listener` within `limits` until `shutdown` completes, then lets
/// in-flight requests finish.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    limits: podiam_http::Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let handshake: podiam_http::Handshake<
        tokio_rustls::server::TlsStream<podiam_http::ArrivalStream>,
    > = Arc::new(move |stream| {
        let acceptor = acceptor.clone();
        Box::pin(async move { acceptor.accept(stream).await })
    });
    podiam_http::serve_with(listener, router, limits, None, handshake, shutdown).await;
}
