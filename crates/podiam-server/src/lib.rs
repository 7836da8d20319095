//! The podiam control plane: IAM, STS, EKS and EKS Auth on one HTTP port, over the real AWS
//! wire (awsQuery at `/`, rest-json under `/clusters`), plus the hosted issuers' discovery.
//!
//! Handlers are thin: they decode the awsQuery request, authenticate it (SigV4, except the
//! unsigned `AssumeRoleWithWebIdentity`), authorize it against the caller's policies, call
//! [`podiam_iam`] or [`podiam_sts`], and encode the result. Every response carries an
//! `x-amzn-RequestId`; every error is AWS's code from [`podiam_wire`].

mod app;
mod audit;
mod auth;
mod authorize_api;
mod bootstrap;
mod eks_api;
mod eks_auth_api;
pub mod gateway;
mod iam_api;
mod issuers;
mod keys_api;
mod metrics;
mod query;
mod rest;
mod session_keys;
mod store_config;
mod sts_api;

pub use app::{App, router};

use std::future::Future;
use std::net::SocketAddr;

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
pub use bootstrap::{BootError, Opened, ServerConfig, StartOptions, Started, open, start};
pub use issuers::{ClusterIssuerKeys, HttpIssuerKeys};
pub use store_config::{EtcdConfig, StoreConfig};
