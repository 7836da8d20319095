//! The TLS crypto provider: rustls on aws-lc-rs, for every HTTPS server podiam runs.

use std::sync::Arc;

/// rustls's aws-lc-rs provider (TLS 1.3 and 1.2, its default cipher suites).
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
