//! The webhook's errors.

/// What can go wrong around the mutation: the TLS files, the Kubernetes API, the podiam server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The certificate or key file cannot be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The Kubernetes API failed or could not be configured.
    #[error("Kubernetes API: {0}")]
    Kubernetes(String),
    /// The Kubernetes API did not answer in time.
    #[error("Kubernetes API: no answer within {0:?}")]
    KubernetesTimeout(std::time::Duration),
    /// The podiam server's EKS API failed.
    #[error("listing pod identity associations: {0}")]
    Associations(String),
}
