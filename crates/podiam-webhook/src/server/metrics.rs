//! Prometheus metrics: reviews by outcome, errors by kind, latency, and the caches' sizes.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

/// What went wrong, as the `kind` label of `podiam_webhook_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request whose Content-Type is not application/json (answered 415).
    ContentType,
    /// A body that is not an AdmissionReview (answered `allowed: false`).
    Undecodable,
    /// The ServiceAccount could not be looked up (the pod is still admitted).
    ServiceAccountLookup,
    /// The associations could not be refreshed (the last known ones stay in use).
    AssociationRefresh,
    /// The certificate files changed but could not be loaded.
    TlsReload,
    /// A review shed because too many were in flight or the process was behind (answered 429;
    /// the API server applies the webhook's failure policy).
    Overloaded,
}

impl ErrorKind {
    fn label(self) -> &'static str {
        match self {
            Self::ContentType => "content_type",
            Self::Undecodable => "undecodable",
            Self::ServiceAccountLookup => "service_account_lookup",
            Self::AssociationRefresh => "association_refresh",
            Self::TlsReload => "tls_reload",
            Self::Overloaded => "overloaded",
        }
    }
}

/// The webhook's metrics (prefix `podiam_webhook`).
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    reviews: Family<ModeLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Histogram,
    associations: Gauge,
    service_accounts: Gauge,
    tls_reloads: Counter,
    unchecked: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("podiam_webhook");
        let reviews = Family::<ModeLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let latency = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0,
        ]);
        let associations = Gauge::default();
        let service_accounts = Gauge::default();
        let tls_reloads = Counter::default();
        let unchecked = Counter::default();
        registry.register(
            "reviews",
            "AdmissionReviews answered, by mode (pod-identity, irsa, none, refused)",
            reviews.clone(),
        );
        registry.register("errors", "Errors by kind", errors.clone());
        registry.register(
            "review_duration_seconds",
            "Time to answer an AdmissionReview",
            latency.clone(),
        );
        registry.register(
            "associations",
            "Pod identity associations known for the cluster",
            associations.clone(),
        );
        registry.register(
            "service_accounts",
            "ServiceAccounts in the watch cache",
            service_accounts.clone(),
        );
        registry.register(
            "tls_reloads",
            "Times the serving certificate was reloaded",
            tls_reloads.clone(),
        );
        registry.register(
            "unchecked_admissions",
            "Pods admitted without knowing their ServiceAccount (the Kubernetes API did not answer)",
            unchecked.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            reviews,
            errors,
            latency,
            associations,
            service_accounts,
            tls_reloads,
            unchecked,
        }
    }

    /// A pod was admitted without its ServiceAccount being checked.
    pub fn unchecked_admission(&self) {
        self.unchecked.inc();
    }

    /// A review was answered in `seconds`; `mode` is `pod-identity`, `irsa`, `none` or `refused`.
    pub fn review(&self, mode: &'static str, seconds: f64) {
        self.reviews.get_or_create(&ModeLabels { mode }).inc();
        self.latency.observe(seconds);
    }

    /// An error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorLabels { kind: kind.label() })
            .inc();
    }

    /// The number of associations known.
    pub fn set_associations(&self, count: usize) {
        self.associations
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The number of ServiceAccounts cached.
    pub fn set_service_accounts(&self, count: usize) {
        self.service_accounts
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The certificate was reloaded.
    pub fn tls_reloaded(&self) {
        self.tls_reloads.inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        podiam_process::render_metrics(&self.registry)
    }
}
