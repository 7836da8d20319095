//! The gateway's Prometheus metrics: decisions by operation, latency, failures upstream.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    operation: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

/// Counters and histograms of `podiam gateway`.
#[derive(Debug)]
pub struct GatewayMetrics {
    registry: Mutex<Registry>,
    decisions: Family<DecisionLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    upstream_errors: Counter,
    authorizer_errors: Counter,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

impl GatewayMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("podiam_gateway");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let upstream_errors = Counter::default();
        let authorizer_errors = Counter::default();
        registry.register(
            "decisions",
            "Requests by operation and decision (allow, or the error code)",
            decisions.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer, upstream included",
            latency.clone(),
        );
        registry.register(
            "upstream_errors",
            "Allowed requests the upstream did not answer",
            upstream_errors.clone(),
        );
        registry.register(
            "authorizer_errors",
            "Requests the podiam server could not decide",
            authorizer_errors.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            decisions,
            latency,
            upstream_errors,
            authorizer_errors,
        }
    }

    pub(crate) fn decision(&self, operation: &str, decision: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                operation: operation.to_owned(),
                decision: decision.to_owned(),
            })
            .inc();
    }

    pub(crate) fn latency(&self, operation: &str, seconds: f64) {
        self.latency
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .observe(seconds);
    }

    pub(crate) fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    pub(crate) fn authorizer_error(&self) {
        self.authorizer_errors.inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        podiam_process::render_metrics(&self.registry)
    }
}
