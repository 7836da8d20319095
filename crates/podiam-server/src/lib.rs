//! The podiam control plane: IAM, STS, EKS and EKS Auth on one HTTP port, over the real AWS
//! wire (awsQuery at `/`, rest-json under `/clusters`), plus the hosted issuers' discovery.
//!
//! Handlers are thin: they decode the awsQuery request, authenticate it (SigV4, except the
//! unsigned `AssumeRoleWithWebIdentity`), authorize it against the caller's policies, call
//! [`podiam_iam`] or [`podiam_sts`], and encode the result. Every response carries an
//! `x-amzn-RequestId`; every error is AWS's code from [`podiam_wire`].

mod access_api;
mod app;
mod audit;
mod auth;
mod authority;
mod authorize_api;
mod bootstrap;
mod console;
mod eks_api;
mod eks_auth_api;
mod iam_api;
mod issuers;
mod keys_api;
mod metrics;
mod query;
mod rest;
mod session_keys;
mod shed;
mod store_config;
mod sts_api;
mod upstream;
mod upstream_api;

pub use app::{App, api_router, metrics_router, router};
pub use authority::{Authority, AuthorizationAsk, AuthorizeAsk, Decision};

use std::future::Future;

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then finishes
/// in-flight requests.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    limits: podiam_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = admitted(&app, router(app.clone()), limits);
    podiam_http::serve(listener, router, limits, None, shutdown).await;
}

/// `router` behind the load shedding of `limits`: the requests over the in-flight limit, or
/// arriving while the runtime is behind, are answered with their protocol's throttling error.
fn admitted(app: &App, router: axum::Router, limits: podiam_http::Limits) -> axum::Router {
    podiam_http::Admission::new(limits.max_in_flight)
        .with_max_queue_delay(limits.max_queue_delay)
        .wrap(router, shed::shed_answer(app.clone()))
}

/// Serves the APIs on `api` and `/metrics` (with the probes) only on `metrics`, until
/// `shutdown` completes.
pub async fn serve_split(
    app: App,
    api: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    limits: podiam_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let metrics_task = tokio::spawn(podiam_http::serve(
        metrics,
        metrics_router(app.clone()),
        limits,
        None,
        until(),
    ));
    let api_task = tokio::spawn(podiam_http::serve(
        api,
        admitted(&app, api_router(app.clone()), limits),
        limits,
        None,
        until(),
    ));
    shutdown.await;
    let _ = stop.send(true);
    let _ = api_task.await;
    let _ = metrics_task.await;
}
pub use bootstrap::{
    BootError, Opened, ServerConfig, StartOptions, Started, open, read_kek, start,
};
pub use issuers::{ClusterIssuerKeys, HttpIssuerKeys, IssuerNetworks};
pub use store_config::{EtcdConfig, StoreConfig};
