//! The webhook as a service: `POST /mutate` over HTTPS, its probes and metrics, and the
//! ServiceAccount and association sources it consults.

mod accounts;
mod associations;
mod metrics;
mod tls;

pub use accounts::{KubeServiceAccounts, ServiceAccounts, StaticServiceAccounts};
pub use associations::{Associations, EksAssociations, StaticAssociations};
pub use metrics::{ErrorKind, Metrics};
pub use tls::{ReloadingCert, serve_https};

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{self, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use podiam_crypto::Rng;
use serde_json::Value;

use crate::{
    Context, MAX_REVIEW_BYTES, MutationConfig, ServiceAccountInfo, Undecodable, decode,
    is_valid_name, mutate, refuse, respond,
};

/// The lowest and highest token lifetime drawn for Pod Identity pods with the default.
const JITTER_RANGE: (i64, i64) = (79_200, 86_400);

/// What `/mutate` needs: the configuration, the two sources, randomness and the metrics.
#[derive(Debug)]
pub struct Webhook {
    /// The mutation's configuration.
    pub config: MutationConfig,
    /// The ServiceAccounts.
    pub accounts: Arc<dyn ServiceAccounts>,
    /// The pod identity associations.
    pub associations: Arc<dyn Associations>,
    /// Randomness for the jittered token lifetime.
    pub rng: Arc<dyn Rng>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

impl Webhook {
    /// A token lifetime in [79200, 86400], uniformly enough to spread refreshes.
    fn jittered_expiration(&self) -> i64 {
        let mut bytes = [0_u8; 4];
        if self.rng.fill(&mut bytes).is_err() {
            return JITTER_RANGE.1;
        }
        let span = u32::try_from(JITTER_RANGE.1 - JITTER_RANGE.0 + 1).unwrap_or(1);
        JITTER_RANGE.0 + i64::from(u32::from_le_bytes(bytes) % span)
    }

    /// Answers one AdmissionReview body: the review to send back, and the mode for metrics.
    pub async fn review(&self, body: &[u8]) -> (Value, &'static str) {
        let request = match decode(body) {
            Ok(request) => request,
            Err(undecodable) => {
                self.metrics.error(ErrorKind::Undecodable);
                tracing::info!(reason = %undecodable.message, "refused an undecodable AdmissionReview");
                return (refuse(&undecodable), "refused");
            }
        };
        let Some(pod) = request
            .pod
            .as_ref()
            .filter(|_| request.operation == "CREATE")
        else {
            return (respond(&request, None), "none");
        };
        let account = self
            .service_account(&request.namespace, &request.service_account)
            .await;
        let has_association = is_valid_name(&request.namespace)
            && is_valid_name(&request.service_account)
            && self
                .associations
                .contains(&request.namespace, &request.service_account);
        let mutation = mutate(
            pod,
            &Context {
                service_account: account.as_ref(),
                has_association,
                config: &self.config,
                jittered_expiration: self.jittered_expiration(),
            },
        );
        let mode = mutation.as_ref().map_or("none", |m| m.mode.as_str());
        if let Some(m) = &mutation {
            tracing::debug!(
                namespace = %request.namespace,
                service_account = %request.service_account,
                mode = m.mode.as_str(),
                "mutated a pod"
            );
        }
        (respond(&request, mutation.as_ref()), mode)
    }

    async fn service_account(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        // Names reach the Kubernetes API's URL paths; never look up what cannot exist.
        if !is_valid_name(namespace) || !is_valid_name(name) {
            return None;
        }
        match self.accounts.get(namespace, name).await {
            Ok(found) => found,
            Err(e) => {
                self.metrics.error(ErrorKind::ServiceAccountLookup);
                self.metrics.unchecked_admission();
                tracing::warn!(%namespace, service_account = %name, error = %e, "admitted a pod without checking its ServiceAccount (the Kubernetes API did not answer); the pod gets no IRSA");
                None
            }
        }
    }
}

/// `POST /mutate`, `/healthz` and `/readyz`.
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/mutate", post(mutate_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(webhook)
}

/// [`router`] behind the load shedding of `limits`: a review over the in-flight limit, or one
/// that waited too long before it was read, is answered 429 at once (the API server then applies
/// the webhook's `failurePolicy`, and its client retries).
pub fn admitted_router(webhook: Arc<Webhook>, limits: podiam_http::Limits) -> Router {
    let metrics = Arc::clone(&webhook.metrics);
    let shed: podiam_http::Shed = Arc::new(move |_parts: &http::request::Parts| {
        metrics.error(ErrorKind::Overloaded);
        (
            StatusCode::TOO_MANY_REQUESTS,
            "the webhook is overloaded; try again\n",
        )
            .into_response()
    });
    podiam_http::Admission::new(limits.max_in_flight)
        .with_max_queue_delay(limits.max_queue_delay)
        .wrap(router(webhook), shed)
}

/// `/metrics`, `/healthz` and `/readyz`, for the metrics port.
pub fn metrics_router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(webhook)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

async fn mutate_handler(
    State(webhook): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    if !is_json(&headers) {
        webhook.metrics.error(ErrorKind::ContentType);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json\n",
        )
            .into_response();
    }
    let (answer, mode) = match body {
        Ok(body) => webhook.review(&body).await,
        // Over the limit, or cut short: refused like any other undecodable review.
        Err(rejection) => {
            webhook.metrics.error(ErrorKind::Undecodable);
            let undecodable = Undecodable {
                api_version: "admission.k8s.io/v1".to_owned(),
                uid: String::new(),
                message: format!(
                    "cannot read the AdmissionReview (at most {MAX_REVIEW_BYTES} bytes): {}",
                    rejection.body_text()
                ),
            };
            (refuse(&undecodable), "refused")
        }
    };
    webhook
        .metrics
        .review(mode, started.elapsed().as_secs_f64());
    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(bytes),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(webhook): State<Arc<Webhook>>) -> Response {
    let accounts = webhook.accounts.is_ready();
    let associations = webhook.associations.is_ready();
    if accounts && associations {
        if let Some((age, why)) = webhook.accounts.outage() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "degraded: ServiceAccount lookups have failed for {} s ({why}); pods are admitted unchecked\n",
                    age.as_secs()
                ),
            )
                .into_response();
        }
        return "ok".into_response();
    }
    let mut waiting = Vec::new();
    if !accounts {
        waiting.push("the ServiceAccount cache has not synced");
    }
    if !associations {
        waiting.push("the pod identity associations have not been loaded");
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}\n", waiting.join("; ")),
    )
        .into_response()
}

async fn metrics_handler(State(webhook): State<Arc<Webhook>>) -> Response {
    webhook
        .metrics
        .set_service_accounts(webhook.accounts.cached());
    (
        [(
            header::CONTENT_TYPE,
            podiam_process::OPENMETRICS_CONTENT_TYPE,
        )],
        webhook.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::to_bytes;
    use axum::http::Request;
    use podiam_crypto::SeededRng;
    use serde_json::json;
    use tower::ServiceExt as _;

    use super::*;

    /// Records every lookup; answers from a fixed account, or fails.
    #[derive(Debug, Default)]
    struct Recording {
        calls: Mutex<Vec<(String, String)>>,
        fail: bool,
        ready: bool,
    }

    #[async_trait::async_trait]
    impl ServiceAccounts for Recording {
        async fn get(
            &self,
            namespace: &str,
            name: &str,
        ) -> Result<Option<ServiceAccountInfo>, crate::WebhookError> {
            self.calls
                .lock()
                .unwrap()
                .push((namespace.to_owned(), name.to_owned()));
            if self.fail {
                return Err(crate::WebhookError::KubernetesTimeout(
                    std::time::Duration::from_secs(1),
                ));
            }
            Ok(Some(ServiceAccountInfo {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                annotations: [(
                    "eks.amazonaws.com/role-arn".to_owned(),
                    "arn:aws:iam::111122223333:role/r".to_owned(),
                )]
                .into(),
            }))
        }

        fn is_ready(&self) -> bool {
            self.ready
        }

        fn cached(&self) -> usize {
            7
        }

        fn outage(&self) -> Option<(std::time::Duration, String)> {
            self.fail
                .then(|| (std::time::Duration::from_secs(42), "timed out".to_owned()))
        }
    }

    fn webhook(accounts: Arc<Recording>, associations: StaticAssociations) -> Arc<Webhook> {
        Arc::new(Webhook {
            config: MutationConfig::default(),
            accounts,
            associations: Arc::new(associations),
            rng: Arc::new(SeededRng::new(b"handler tests")),
            metrics: Arc::new(Metrics::new()),
        })
    }

    fn review(operation: &str, namespace: &str, service_account: &str) -> String {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "namespace": namespace,
                "operation": operation,
                "object": {
                    "metadata": {"name": "p"},
                    "spec": {
                        "serviceAccountName": service_account,
                        "containers": [{"name": "c", "image": "i"}],
                    },
                },
            },
        })
        .to_string()
    }

    async fn call(app: &Router, method: &str, path: &str, body: String) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn answer(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn only_creates_are_mutated_and_hostile_names_are_never_looked_up() {
        let accounts = Arc::new(Recording::default());
        let app = router(webhook(
            Arc::clone(&accounts),
            StaticAssociations::default(),
        ));

        let (status, body) = call(&app, "POST", "/mutate", review("CREATE", "ns", "sa")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(answer(&body)["response"]["patch"].is_string());

        let (_, body) = call(&app, "POST", "/mutate", review("UPDATE", "ns", "sa")).await;
        assert_eq!(answer(&body)["response"]["allowed"], true);
        assert!(answer(&body)["response"].get("patch").is_none());

        for (namespace, name) in [("ns", "../../secrets/x"), ("a/b", "sa"), ("ns", "SA")] {
            let (_, body) = call(&app, "POST", "/mutate", review("CREATE", namespace, name)).await;
            assert_eq!(answer(&body)["response"]["allowed"], true);
            assert!(answer(&body)["response"].get("patch").is_none());
        }
        assert_eq!(
            *accounts.calls.lock().unwrap(),
            vec![("ns".to_owned(), "sa".to_owned())],
            "only the valid CREATE was looked up"
        );
    }

    #[tokio::test]
    async fn a_failed_lookup_still_admits_and_pod_identity_needs_no_account() {
        let accounts = Arc::new(Recording {
            fail: true,
            ..Recording::default()
        });
        let app = router(webhook(
            Arc::clone(&accounts),
            StaticAssociations::new([("orders", "orders")]),
        ));
        let (_, body) = call(&app, "POST", "/mutate", review("CREATE", "carts", "carts")).await;
        assert_eq!(answer(&body)["response"]["allowed"], true);
        assert!(answer(&body)["response"].get("patch").is_none());
        let (_, body) = call(
            &app,
            "POST",
            "/mutate",
            review("CREATE", "orders", "orders"),
        )
        .await;
        assert!(answer(&body)["response"]["patch"].is_string());
        // Both pods were admitted without their ServiceAccount being checked: counted.
        let hook = webhook(
            Arc::new(Recording {
                fail: true,
                ready: true,
                ..Recording::default()
            }),
            StaticAssociations::default(),
        );
        let app = router(Arc::clone(&hook));
        call(&app, "POST", "/mutate", review("CREATE", "a", "b")).await;
        call(&app, "POST", "/mutate", review("CREATE", "c", "d")).await;
        let (_, text) = call(
            &metrics_router(Arc::clone(&hook)),
            "GET",
            "/metrics",
            String::new(),
        )
        .await;
        assert!(
            text.contains("podiam_webhook_unchecked_admissions_total 2"),
            "{text}"
        );
        // And /readyz reports the outage with its age.
        let (status, body) = call(&app, "GET", "/readyz", String::new()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("failed for 42 s"), "{body}");
    }

    #[tokio::test]
    async fn readiness_waits_for_both_sources_and_metrics_count_reviews() {
        let not_ready = Arc::new(Recording::default());
        let hook = webhook(not_ready, StaticAssociations::default());
        let app = router(Arc::clone(&hook));
        let (status, body) = call(&app, "GET", "/readyz", String::new()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("ServiceAccount cache"), "{body}");
        let (status, body) = call(&app, "GET", "/healthz", String::new()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

        let ready = Arc::new(Recording {
            ready: true,
            ..Recording::default()
        });
        let hook = webhook(ready, StaticAssociations::default());
        let app = router(Arc::clone(&hook));
        assert_eq!(
            call(&app, "GET", "/readyz", String::new()).await.0,
            StatusCode::OK
        );
        call(&app, "POST", "/mutate", review("CREATE", "ns", "sa")).await;
        call(&app, "POST", "/mutate", "garbage".to_owned()).await;
        let (status, text) = call(&metrics_router(hook), "GET", "/metrics", String::new()).await;
        assert_eq!(status, StatusCode::OK);
        for line in [
            "podiam_webhook_reviews_total{mode=\"irsa\"} 1",
            "podiam_webhook_reviews_total{mode=\"refused\"} 1",
            "podiam_webhook_errors_total{kind=\"undecodable\"} 1",
            "podiam_webhook_review_duration_seconds_count 2",
            "podiam_webhook_service_accounts 7",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
