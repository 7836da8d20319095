//! The application state and its routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use podiam_crypto::Rng;
use podiam_eks::Eks;
use podiam_iam::Iam;
use podiam_sts::{IssuerKeys, SharedKeyring, Sts};
use podiam_types::Clock;
use time::OffsetDateTime;

use crate::metrics::Metrics;
use crate::session_keys::SessionKeys;
use crate::{
    access_api, authorize_api, console, eks_api, eks_auth_api, keys_api, query, upstream_api,
};

/// The services behind the APIs.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) iam: Iam,
    pub(crate) sts: Sts,
    pub(crate) eks: Eks,
    /// Token issuers' keys (EKS's stored keys first, then discovery).
    pub(crate) issuers: Arc<dyn IssuerKeys>,
    /// The session keyring in the store, followed and rotated.
    pub(crate) session_keys: SessionKeys,
    /// The metrics (the AWS broker records into them too).
    pub(crate) metrics: Metrics,
    /// The broker in front of AWS, when upstream accounts are configured.
    pub(crate) upstream: Option<Arc<crate::upstream::Broker>>,
    /// The web console's sign-in tokens and sessions.
    pub(crate) console: console::Console,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) iam: Iam,
    pub(crate) sts: Sts,
    pub(crate) eks: Eks,
    pub(crate) issuers: Arc<dyn IssuerKeys>,
    pub(crate) session_keys: SessionKeys,
    pub(crate) keyring: SharedKeyring,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) metrics: Metrics,
    pub(crate) region: String,
    pub(crate) allow_http_issuers: bool,
    pub(crate) ready: AtomicBool,
    /// The broker in front of AWS, when upstream accounts are configured.
    pub(crate) upstream: Option<Arc<crate::upstream::Broker>>,
    /// Request body bytes buffered at once, across all requests.
    pub(crate) body_budget: podiam_http::BodyBudget,
    /// The latest audit events, for the console's live feed.
    pub(crate) audit: crate::audit::AuditRing,
    /// The web console's sign-in tokens and sessions.
    pub(crate) console: console::Console,
}

/// The control plane's shared state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
}

impl App {
    pub(crate) fn new(
        services: Services,
        keyring: SharedKeyring,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        region: String,
        allow_http_issuers: bool,
        body_budget: podiam_http::BodyBudget,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                iam: services.iam,
                sts: services.sts,
                eks: services.eks,
                issuers: services.issuers,
                session_keys: services.session_keys,
                keyring,
                clock,
                rng,
                metrics: services.metrics,
                region,
                allow_http_issuers,
                ready: AtomicBool::new(true),
                upstream: services.upstream,
                body_budget,
                audit: crate::audit::AuditRing::default(),
                console: services.console,
            }),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// A fresh request id (a version-4 UUID).
    pub(crate) fn request_id(&self) -> String {
        podiam_session::random_uuid(self.inner.rng.as_ref())
            .unwrap_or_else(|_| format!("{:032x}", self.now().unix_timestamp_nanos()))
    }

    /// The IAM service.
    pub fn iam(&self) -> &Iam {
        &self.inner.iam
    }

    /// Decides service proxies' requests over this server's replicas (what `/podiam/authorize`
    /// answers with; `podiam dev` gives it to its in-process gateway).
    pub fn authority(&self) -> crate::Authority {
        crate::Authority::of(
            self.inner.iam.clone(),
            Arc::clone(&self.inner.keyring),
            Arc::clone(&self.inner.clock),
        )
    }

    /// Marks the server as (not) ready for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready or not; with upstream accounts, a second line says whether AWS answers (detail only:
/// an AWS outage must not take every replica out of service for local roles).
async fn readyz(State(app): State<App>) -> Response {
    let aws = app
        .inner
        .upstream
        .as_ref()
        .map(|broker| format!("{}\n", broker.readiness()))
        .unwrap_or_default();
    if app.inner.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, format!("ready\n{aws}")).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{aws}")).into_response()
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            podiam_process::OPENMETRICS_CONTENT_TYPE,
        )],
        app.inner.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Gives every response an `x-amzn-RequestId` (the query handler sets its own first).
async fn request_id(State(app): State<App>, mut response: Response) -> Response {
    if !response.headers().contains_key("x-amzn-requestid")
        && let Ok(id) = HeaderValue::from_str(&app.request_id())
    {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// Every route: the AWS APIs, health and metrics.
pub fn router(app: App) -> Router {
    api_router(app.clone()).merge(
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(app),
    )
}

/// Health and metrics only (for `--metrics-listen`).
pub fn metrics_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app)
}

/// The AWS APIs (awsQuery at `/`, rest-json under `/clusters`), the web console under
/// `/console/` and health, without metrics.
pub fn api_router(app: App) -> Router {
    Router::new()
        .route("/", get(query::handle).post(query::handle))
        .route(
            "/clusters",
            get(eks_api::list_clusters).post(eks_api::create_cluster),
        )
        .route(
            "/clusters/{name}",
            get(eks_api::describe_cluster).delete(eks_api::delete_cluster),
        )
        .route(
            "/clusters/{name}/pod-identity-associations",
            get(eks_api::list_associations).post(eks_api::create_association),
        )
        .route(
            "/clusters/{name}/pod-identity-associations/{id}",
            get(eks_api::describe_association)
                .post(eks_api::update_association)
                .delete(eks_api::delete_association),
        )
        .route(
            "/clusters/{name}/assume-role-for-pod-identity",
            post(eks_auth_api::assume_role_for_pod_identity),
        )
        .route(
            "/clusters/{name}/podiam/service-account-token",
            post(eks_api::mint_token),
        )
        .route("/clusters/{name}/podiam/jwks", get(eks_api::cluster_keys))
        .route(
            "/oidc/id/{id}/.well-known/openid-configuration",
            get(eks_api::discovery),
        )
        .route("/oidc/id/{id}/openid/v1/jwks", get(eks_api::jwks))
        .route("/podiam/authorize", post(authorize_api::authorize))
        .route("/podiam/upstream/role", get(upstream_api::upstream_role))
        .route("/podiam/access/who", get(access_api::who))
        .route("/podiam/access/what", get(access_api::what))
        .route("/podiam/access/findings", get(access_api::findings))
        .route(
            "/podiam/console/signin-token",
            post(console::signin::signin_token),
        )
        .route(
            "/podiam/keys/session/rotate",
            post(keys_api::rotate_session),
        )
        .route(
            "/clusters/{name}/podiam/keys/rotate",
            post(keys_api::rotate_issuer),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(console::router())
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(
            app.clone(),
            request_id,
        ))
        .with_state(app)
}
