//! `/v1/credentials` with the reference agent's checks, statuses and bodies, and the probe and
//! metrics endpoints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use podiam_crypto::Secret;
use podiam_types::Clock;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cache::{CacheConfig, Hit, Miss, PodCache};
use crate::tokens::{Checked, PodKey, TokenChecker};
use crate::{Upstream, UpstreamError};

/// Whether a request whose `Host` names `host` was addressed to the agent: one of `hosts`, or,
/// when the agent listens on every address (`0.0.0.0` or `::`, in a container with a published
/// port, say), any IP address. A name is never accepted then: a page that rebinds its own name
/// to the agent's address cannot reach it through a browser.
fn addressed_to_us(hosts: &[String], host: &str) -> bool {
    if hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return true;
    }
    let unspecified = hosts.iter().any(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
    });
    unspecified && host.parse::<std::net::IpAddr>().is_ok()
}

/// How the agent is set up.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The addresses SDKs must call the agent through (the `Host` header is checked), e.g.
    /// `169.254.170.23` and `fd00:ec2::23`.
    pub hosts: Vec<String>,
    /// The cache.
    pub cache: CacheConfig,
    /// Upstream calls per second, background renewals included (0: unlimited). Cache hits are
    /// never limited: they cost nothing upstream.
    pub upstream_rate: u32,
    /// Burst of upstream calls. Background renewals only start while more than half of it is
    /// left, so that during a renewal storm pods with nothing cached still get their first
    /// credentials at once.
    pub upstream_burst: u32,
    /// Background renewals per second at most (the reference's `--max-service-qps`), within
    /// `upstream_rate`.
    pub renewals_per_second: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            hosts: vec!["169.254.170.23".to_owned(), "fd00:ec2::23".to_owned()],
            cache: CacheConfig::default(),
            upstream_rate: 1000,
            upstream_burst: 500,
            renewals_per_second: 3,
        }
    }
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, OffsetDateTime)>,
}

impl Bucket {
    fn take(&self, now: OffsetDateTime) -> bool {
        self.take_leaving(now, 0.0)
    }

    /// Takes a token if `reserve` tokens are left after it.
    fn take_leaving(&self, now: OffsetDateTime, reserve: f64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = (now - state.1).as_seconds_f64().max(0.0);
        state.0 = (state.0 + elapsed * self.rate).min(self.burst);
        state.1 = state.1.max(now);
        if state.0 >= 1.0 + reserve {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// Returns a token taken for a call that was not made.
    fn give_back(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0 = (state.0 + 1.0).min(self.burst);
    }
}

#[derive(Debug, Default)]
struct Metrics {
    ok: Counter,
    refused: Counter,
    upstream_errors: Counter,
    throttled: Counter,
    cached_pods: Gauge,
    token_keys: Gauge,
}

/// The upstream client's failover between server replicas, read at each scrape.
#[derive(Debug)]
struct FailoverMetrics(Arc<dyn Upstream>);

impl Collector for FailoverMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.0.failover_stats() else {
            return Ok(());
        };
        let hedged = ConstCounter::new(stats.hedged);
        hedged.encode(encoder.encode_descriptor(
            "upstream_hedged",
            "Upstream calls also sent to the next server replica because the one asked had not answered within --hedge-after",
            None,
            hedged.metric_type(),
        )?)?;
        let opened = ConstCounter::new(stats.circuits_opened);
        opened.encode(encoder.encode_descriptor(
            "upstream_circuits_opened",
            "Times a server replica failed to answer and was skipped for a while (5 s, doubling to 30 s)",
            None,
            opened.metric_type(),
        )?)?;
        let open = ConstGauge::new(i64::try_from(stats.open_circuits).unwrap_or(i64::MAX));
        open.encode(encoder.encode_descriptor(
            "upstream_open_circuits",
            "Server replicas skipped now because they failed to answer",
            None,
            open.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The node agent.
#[derive(Debug)]
pub struct Agent {
    checker: TokenChecker,
    cache: PodCache,
    upstream: Arc<dyn Upstream>,
    clock: Arc<dyn Clock>,
    config: AgentConfig,
    bucket: Bucket,
    /// Tokens of `bucket` that background renewals leave to pods with nothing cached.
    renewal_reserve: f64,
    renewals: Bucket,
    metrics: Metrics,
    registry: Mutex<Registry>,
}

/// What a request gets back.
fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn upstream_error(e: &UpstreamError) -> Response {
    let status = e
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let fault = if status.is_server_error() {
        "server"
    } else {
        "client"
    };
    text(
        status,
        format!(
            "[{}]: ({}): {}, fault: {fault}",
            e.request_id.as_deref().unwrap_or_default(),
            e.code,
            e.message
        ),
    )
}

impl Agent {
    /// An agent asking `upstream`, with time from `clock`.
    pub fn new(upstream: Arc<dyn Upstream>, clock: Arc<dyn Clock>, config: AgentConfig) -> Self {
        let now = clock.now();
        let cache = PodCache::new(config.cache);
        let metrics = Metrics::default();
        let mut registry = Registry::with_prefix("podiam_agent");
        registry.register(
            "credentials_served",
            "Credentials served to pods",
            metrics.ok.clone(),
        );
        registry.register(
            "requests_refused",
            "Requests refused for their token or address",
            metrics.refused.clone(),
        );
        registry.register(
            "upstream_errors",
            "Requests failed because EKS Auth refused or was unreachable",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "throttled",
            "Requests refused by the upstream rate limit",
            metrics.throttled.clone(),
        );
        registry.register(
            "cached_pods",
            "Pods with cached credentials",
            metrics.cached_pods.clone(),
        );
        let stats = cache.stats().clone();
        registry.register("cache_hits", "Requests answered from the cache", stats.hits);
        registry.register(
            "upstream_calls",
            "AssumeRoleForPodIdentity calls made",
            stats.upstream_calls,
        );
        registry.register(
            "served_stale",
            "Cached credentials served while the server was unreachable",
            stats.served_stale,
        );
        registry.register(
            "renewals",
            "Credentials renewed in the background",
            stats.renewals,
        );
        registry.register(
            "token_keys_loaded",
            "1 when the cluster's token keys are loaded and tokens are verified locally, 0 when EKS Auth alone verifies them (no eks:DescribeCluster, or the server unreachable)",
            metrics.token_keys.clone(),
        );
        registry.register_collector(Box::new(FailoverMetrics(Arc::clone(&upstream))));
        Self {
            checker: TokenChecker::new(),
            cache,
            upstream,
            clock,
            bucket: Bucket {
                rate: f64::from(config.upstream_rate),
                burst: f64::from(config.upstream_burst.max(1)),
                state: Mutex::new((f64::from(config.upstream_burst.max(1)), now)),
            },
            renewal_reserve: f64::from(config.upstream_burst.max(1) / 2),
            renewals: Bucket {
                rate: f64::from(config.renewals_per_second.max(1)),
                burst: f64::from(config.renewals_per_second.max(1)),
                state: Mutex::new((f64::from(config.renewals_per_second.max(1)), now)),
            },
            config,
            metrics,
            registry: Mutex::new(registry),
        }
    }

    /// The cache (for tests and the background renewal).
    pub fn cache(&self) -> &PodCache {
        &self.cache
    }

    /// The token checker (for tests).
    pub fn tokens(&self) -> &TokenChecker {
        &self.checker
    }

    /// Loads the cluster's keys; false when they cannot be had (the server refuses them to the
    /// agent's credentials, or cannot be reached): the reason is logged, pods' tokens are then
    /// verified by EKS Auth alone, and the keys are asked for again later. The agent serves
    /// (and is ready) either way.
    pub async fn prime(&self) -> bool {
        self.checker
            .prime(self.upstream.as_ref(), self.clock.now())
            .await
    }

    /// Forgets pods whose credentials are over, every minute, until the agent goes.
    pub async fn sweep_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            self.cache.sweep(self.clock.now());
        }
    }

    /// Answers one `/v1/credentials` request.
    pub async fn credentials(self: &Arc<Self>, uri: &http::Uri, headers: &HeaderMap) -> Response {
        let host = match podiam_http::addressed_host(uri, headers) {
            Ok(host) => host,
            Err(why) => {
                self.metrics.refused.inc();
                return text(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Access Denied. Called agent through an invalid request ({why}); please use either [{}] address",
                        self.config.hosts.join(" ")
                    ),
                );
            }
        };
        if !addressed_to_us(&self.config.hosts, &host) {
            self.metrics.refused.inc();
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "Access Denied. Called agent through invalid address, please use either [{}] address not {host}",
                    self.config.hosts.join(" ")
                ),
            );
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim();
        let now = self.clock.now();
        let checked = match self.checker.check(token, self.upstream.as_ref(), now).await {
            Ok(checked) => checked,
            Err(refusal) => {
                self.metrics.refused.inc();
                return text(
                    StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST),
                    refusal.message,
                );
            }
        };
        if checked.verified {
            self.serve(checked.key, checked.exp, token, now).await
        } else {
            self.serve_unverified(&checked, token, now).await
        }
    }

    /// A token the agent could not verify (the cluster's keys are not available): EKS Auth
    /// verifies it in `AssumeRoleForPodIdentity`, and only then is it trusted. Nothing cached
    /// is served for it before (its claims may name another pod), and a refusal or an outage
    /// leaves the pod's cached credentials alone.
    async fn serve_unverified(
        self: &Arc<Self>,
        checked: &Checked,
        token: &str,
        now: OffsetDateTime,
    ) -> Response {
        // Requests with the same token wait for the first one's answer.
        let _turn = self.checker.server_turn(token).await;
        if self.checker.is_vouched(token, now) {
            return self
                .serve(Arc::clone(&checked.key), checked.exp, token, now)
                .await;
        }
        if !self.bucket.take(now) {
            self.metrics.throttled.inc();
            return text(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests".to_owned(),
            );
        }
        match self
            .cache
            .fill_from_server(&checked.key, token, self.upstream.as_ref(), now)
            .await
        {
            Ok(cached) => {
                self.checker.vouch(token, checked, now);
                self.metrics.ok.inc();
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    cached.body(),
                )
                    .into_response()
            }
            Err(e) => self.failed(&checked.key, &e),
        }
    }

    /// A pod's credentials: what is cached, else from EKS Auth with the pod's verified token.
    async fn serve(
        self: &Arc<Self>,
        key: Arc<PodKey>,
        exp: i64,
        token: &str,
        now: OffsetDateTime,
    ) -> Response {
        let result = self
            .cache
            .get_with_limit(&key, token, self.upstream.as_ref(), now, || {
                self.bucket.take(now)
            })
            .await;
        match result {
            Ok(Hit { cached, renew }) => {
                self.metrics.ok.inc();
                // Past the retention window: renew in the background, with the token that
                // just asked (within --max-service-qps and the upstream rate), while serving
                // what is cached. Refused by either limit, the pod is due again at its next
                // request, and its credentials stay valid for hours meanwhile.
                if let Some(renewal) = renew
                    && exp > now.unix_timestamp()
                    && self.renewals.take(now)
                {
                    if self.bucket.take_leaving(now, self.renewal_reserve) {
                        let agent = Arc::clone(self);
                        let token = Secret::new(token.to_owned());
                        tokio::spawn(async move {
                            agent
                                .cache
                                .renew_claimed(
                                    renewal,
                                    token.expose(),
                                    agent.upstream.as_ref(),
                                    agent.clock.now(),
                                )
                                .await;
                        });
                    } else {
                        self.renewals.give_back();
                    }
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    cached.body(),
                )
                    .into_response()
            }
            Err(Miss::Throttled) => {
                self.metrics.throttled.inc();
                text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests".to_owned(),
                )
            }
            Err(Miss::Upstream(e)) => self.failed(&key, &e),
        }
    }

    /// No credentials for the pod `key`: EKS Auth refused or could not be reached.
    fn failed(&self, key: &PodKey, e: &UpstreamError) -> Response {
        self.metrics.upstream_errors.inc();
        tracing::info!(
            namespace = key.namespace,
            service_account = key.service_account,
            pod = key.pod_name,
            code = e.code,
            message = e.message,
            "no credentials for the pod"
        );
        upstream_error(e)
    }

    /// `/readyz`: ready, or degraded while the server is unreachable (cached credentials are
    /// still served).
    pub fn readiness(&self) -> Response {
        match self.cache.outage() {
            None => text(StatusCode::OK, "ready\n".to_owned()),
            Some((since, why)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "degraded: the podiam server is unreachable since {} ({why}); serving cached credentials\n",
                    since.format(&Rfc3339).unwrap_or_default()
                ),
            ),
        }
    }

    /// The Prometheus text.
    pub fn render_metrics(&self) -> String {
        self.metrics
            .cached_pods
            .set(i64::try_from(self.cache.len()).unwrap_or(i64::MAX));
        self.metrics
            .token_keys
            .set(i64::from(self.checker.has_keys()));
        podiam_process::render_metrics(&self.registry)
    }
}

async fn credentials(State(agent): State<Arc<Agent>>, request: Request) -> Response {
    agent.credentials(request.uri(), request.headers()).await
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n".to_owned())
}

/// `/v1/credentials` (any method), and 404 elsewhere.
pub fn credentials_router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/v1/credentials", any(credentials))
        .fallback(not_found)
        .with_state(agent)
}

/// [`credentials_router`] behind the load shedding of `limits`: a request over the in-flight
/// limit, or that waited too long before it was read, gets the answer the agent gives when its
/// upstream rate is exceeded (429, which the SDKs' container provider retries).
pub fn admitted_credentials_router(agent: Arc<Agent>, limits: podiam_http::Limits) -> Router {
    let counted = Arc::clone(&agent);
    let shed: podiam_http::Shed = Arc::new(move |_parts: &http::request::Parts| {
        counted.metrics.throttled.inc();
        text(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests".to_owned(),
        )
    });
    podiam_http::Admission::new(limits.max_in_flight)
        .with_max_queue_delay(limits.max_queue_delay)
        .wrap(credentials_router(agent), shed)
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".to_owned())
}

async fn readyz(State(agent): State<Arc<Agent>>) -> Response {
    agent.readiness()
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            podiam_process::OPENMETRICS_CONTENT_TYPE,
        )],
        agent.render_metrics(),
    )
        .into_response()
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn probe_router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(agent)
}

#[cfg(test)]
mod tests {
    use super::addressed_to_us;

    #[test]
    fn requests_must_be_addressed_to_the_agent() {
        let link_local = ["169.254.170.23".to_owned(), "fd00:ec2::23".to_owned()];
        assert!(addressed_to_us(&link_local, "169.254.170.23"));
        assert!(addressed_to_us(&link_local, "fd00:ec2::23"));
        assert!(!addressed_to_us(&link_local, "127.0.0.1"));
        assert!(!addressed_to_us(&link_local, "evil.example"));
        // Listening everywhere: any IP address, never a name.
        let everywhere = ["0.0.0.0".to_owned()];
        assert!(addressed_to_us(&everywhere, "127.0.0.1"));
        assert!(addressed_to_us(&everywhere, "172.17.0.2"));
        assert!(!addressed_to_us(&everywhere, "evil.example"));
        assert!(!addressed_to_us(&everywhere, "localhost"));
        assert!(addressed_to_us(&["[::]".to_owned()], "::1"));
    }
}
