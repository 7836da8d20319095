//! Prometheus metrics: requests by operation and code, latency, credentials issued and denied.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) service: String,
    pub(crate) operation: String,
    pub(crate) code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OperationLabels {
    pub(crate) service: String,
    pub(crate) operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CredentialLabels {
    pub(crate) kind: String,
    pub(crate) outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UpstreamCallLabels {
    pub(crate) operation: String,
    pub(crate) code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UpstreamOperationLabels {
    pub(crate) operation: String,
}

/// Calls to AWS for roles in upstream accounts: by operation and outcome (`ok` or AWS's
/// error code), and their latency (retries included).
#[derive(Debug, Clone)]
pub(crate) struct UpstreamMetrics {
    calls: Family<UpstreamCallLabels, Counter>,
    latency: Family<UpstreamOperationLabels, Histogram>,
}

impl Default for UpstreamMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            latency: Family::new_with_constructor(upstream_histogram as fn() -> Histogram),
        }
    }
}

fn upstream_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

impl UpstreamMetrics {
    pub(crate) fn call(&self, operation: &str, code: &str, seconds: f64) {
        self.calls
            .get_or_create(&UpstreamCallLabels {
                operation: operation.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&UpstreamOperationLabels {
                operation: operation.to_owned(),
            })
            .observe(seconds);
    }
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    credentials: Family<CredentialLabels, Counter>,
    shed: Family<ServiceLabels, Counter>,
    upstream: UpstreamMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServiceLabels {
    pub(crate) service: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ])
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("podiam");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let credentials = Family::<CredentialLabels, Counter>::default();
        registry.register(
            "requests",
            "API requests by service, operation and result code",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "API request latency",
            latency.clone(),
        );
        registry.register(
            "credentials",
            "Credentials issued or denied, by mechanism",
            credentials.clone(),
        );
        let shed = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "requests_shed",
            "Requests answered with a throttling error because too many were in flight",
            shed.clone(),
        );
        let upstream = UpstreamMetrics::default();
        registry.register(
            "aws_upstream_calls",
            "Calls to AWS for roles in upstream accounts, by operation and outcome (ok or AWS's error code)",
            upstream.calls.clone(),
        );
        registry.register(
            "aws_upstream_call_duration_seconds",
            "Latency of calls to AWS, retries included",
            upstream.latency.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            credentials,
            shed,
            upstream,
        }
    }

    /// The families the AWS broker records into.
    pub(crate) fn upstream(&self) -> UpstreamMetrics {
        self.upstream.clone()
    }

    /// A request of `service` was shed by the in-flight limit.
    pub(crate) fn shed(&self, service: &str) {
        self.shed
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .inc();
    }

    pub(crate) fn request(&self, service: &str, operation: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
            })
            .observe(seconds);
    }

    pub(crate) fn credential(&self, kind: &str, outcome: &str) {
        self.credentials
            .get_or_create(&CredentialLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub(crate) fn render(&self) -> String {
        podiam_process::render_metrics(&self.registry)
    }
}
