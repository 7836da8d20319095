//! The agent's `/v1/credentials` through `Router::oneshot`, against a fake upstream that counts
//! its calls: the reference's checks and bodies, the cache, de-duplication, outages, renewal.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use podiam_agent::{
    Agent, AgentConfig, PodCredentials, Upstream, UpstreamError, credentials_router, probe_router,
};
use podiam_crypto::{KeyKind, Secret, SeededRng, SigningKey, VerifyingKey};
use podiam_oidc::{Issuer, KeySet, ObjectRef, TokenRequest, Verifier};
use podiam_types::{Clock, FixedClock};
use time::OffsetDateTime;
use tower::ServiceExt as _;

const ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
const NOW: i64 = 1_795_000_000;

/// 0: answer; 1: unreachable; 2: AccessDeniedException.
#[derive(Debug)]
struct FakeUpstream {
    issuer: Issuer,
    calls: AtomicUsize,
    mode: AtomicU8,
    /// The cluster's keys: 0 given; 1 refused (no eks:DescribeCluster); 2 unreachable.
    keys_mode: AtomicU8,
    key_calls: AtomicUsize,
    clock: Arc<FixedClock>,
    /// How long issued credentials last, in seconds (EKS's six hours; AWS's chained hour).
    lifetime: AtomicI64,
}

impl FakeUpstream {
    fn keys(&self) -> KeySet {
        let mut keys = KeySet::new();
        keys.insert(
            VerifyingKey::from_jwk(&self.issuer.key().verifying_key().to_jwk()).expect("jwk"),
        );
        keys
    }
}

#[async_trait]
impl Upstream for FakeUpstream {
    async fn assume_role_for_pod_identity(
        &self,
        token: &str,
    ) -> Result<PodCredentials, UpstreamError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Long enough for concurrent requests to pile up behind this one.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mode = self.mode.load(Ordering::SeqCst);
        // EKS Auth verifies the token, as the real one does.
        if mode != 1
            && let Err(e) =
                Verifier::new(ISSUER, &[PIA]).verify(token, &self.keys(), self.clock.now())
        {
            return Err(UpstreamError {
                status: Some(400),
                code: "InvalidTokenException".to_owned(),
                message: e.to_string(),
                request_id: Some("req-2".to_owned()),
            });
        }
        match mode {
            0 => Ok(PodCredentials {
                access_key_id: format!("ASIA{:016}", self.calls.load(Ordering::SeqCst)),
                secret_access_key: Secret::new("s".repeat(40)),
                token: Secret::new(format!("session-for-{}", token.len())),
                account_id: "637423329338".to_owned(),
                expiration: self.clock.now()
                    + time::Duration::seconds(self.lifetime.load(Ordering::SeqCst)),
            }),
            1 => Err(UpstreamError {
                status: None,
                code: "ServiceUnavailableException".to_owned(),
                message: "connection refused".to_owned(),
                request_id: None,
            }),
            _ => Err(UpstreamError {
                status: Some(400),
                code: "AccessDeniedException".to_owned(),
                message: "Not authorized".to_owned(),
                request_id: Some("req-1".to_owned()),
            }),
        }
    }

    async fn cluster_keys(&self) -> Result<(String, KeySet), UpstreamError> {
        self.key_calls.fetch_add(1, Ordering::SeqCst);
        match self.keys_mode.load(Ordering::SeqCst) {
            0 => Ok((ISSUER.to_owned(), self.keys())),
            1 => Err(UpstreamError {
                status: Some(403),
                code: "AccessDeniedException".to_owned(),
                message: "User: arn:aws:iam::000000000000:user/node is not authorized to perform: eks:DescribeCluster".to_owned(),
                request_id: Some("req-3".to_owned()),
            }),
            _ => Err(UpstreamError {
                status: None,
                code: "ServiceUnavailableException".to_owned(),
                message: "connection refused".to_owned(),
                request_id: None,
            }),
        }
    }
}

struct World {
    agent: Arc<Agent>,
    upstream: Arc<FakeUpstream>,
    clock: Arc<FixedClock>,
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).expect("time")
}

fn world_with(config: AgentConfig) -> World {
    let clock = Arc::new(FixedClock::new(at(NOW)));
    let upstream = Arc::new(FakeUpstream {
        issuer: Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).expect("key"))
            .expect("issuer"),
        calls: AtomicUsize::new(0),
        mode: AtomicU8::new(0),
        keys_mode: AtomicU8::new(0),
        key_calls: AtomicUsize::new(0),
        clock: Arc::clone(&clock),
        lifetime: AtomicI64::new(6 * 3600),
    });
    let agent = Arc::new(Agent::new(upstream.clone(), clock.clone(), config));
    World {
        agent,
        upstream,
        clock,
    }
}

fn world() -> World {
    world_with(AgentConfig::default())
}

impl World {
    fn token(&self, pod: &str, audience: &str, issued_at: i64) -> String {
        Self::token_of(&self.upstream.issuer, pod, audience, issued_at)
    }

    fn token_of(issuer: &Issuer, pod: &str, audience: &str, issued_at: i64) -> String {
        Self::token_bound(issuer, pod, audience, issued_at, None)
    }

    /// A token bound to `node` (as the kubelet's are).
    fn token_bound(
        issuer: &Issuer,
        pod: &str,
        audience: &str,
        issued_at: i64,
        node: Option<&str>,
    ) -> String {
        issuer
            .mint(
                &TokenRequest {
                    namespace: "carts".into(),
                    service_account: ObjectRef {
                        name: "carts".into(),
                        uid: "sa-uid".into(),
                    },
                    audiences: vec![audience.into()],
                    pod: Some(ObjectRef {
                        name: pod.into(),
                        uid: format!("uid-{pod}"),
                    }),
                    node: node.map(|name| ObjectRef {
                        name: name.into(),
                        uid: format!("uid-{name}"),
                    }),
                    lifetime: Duration::from_secs(3600),
                    warn_after: None,
                },
                at(issued_at),
                &SeededRng::new(b"t"),
            )
            .expect("mint")
    }

    async fn ask(&self, host: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get("/v1/credentials").header("host", host);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let response = credentials_router(Arc::clone(&self.agent))
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Asks for carts-1 at NOW + `t` seconds, with a token issued then.
    async fn ask_at(&self, t: i64) -> (StatusCode, String) {
        self.clock.set(at(NOW + t));
        let token = self.token("carts-1", PIA, NOW + t);
        self.ask("169.254.170.23", Some(&token)).await
    }

    async fn probe(&self, path: &str) -> (StatusCode, String) {
        let response = probe_router(Arc::clone(&self.agent))
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

const PIA: &str = "pods.eks.amazonaws.com";

#[tokio::test]
async fn the_reference_checks_in_order() {
    let w = world();
    let token = w.token("carts-1", PIA, NOW);
    let (status, body) = w.ask("evil.example", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        "Access Denied. Called agent through invalid address, please use either [169.254.170.23 fd00:ec2::23] address not evil.example"
    );
    let (status, body) = w.ask("169.254.170.23", None).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Service account token cannot be empty"
        )
    );
    let (status, body) = w.ask("169.254.170.23:80", Some("garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("Service account token cannot be parsed: "),
        "{body}"
    );
    let expired = w.token("carts-1", PIA, NOW - 7200);
    let (status, body) = w.ask("169.254.170.23", Some(&expired)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("Service account token failed basic claim validations: "),
        "{body}"
    );
    let wrong_audience = w.token("carts-1", "sts.amazonaws.com", NOW);
    let (status, body) = w.ask("169.254.170.23", Some(&wrong_audience)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("Service account token failed verification: "),
        "{body}"
    );
    // Signed by someone else.
    let forger =
        Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).expect("key")).expect("issuer");
    let forged = forger
        .mint(
            &TokenRequest {
                namespace: "carts".into(),
                service_account: ObjectRef {
                    name: "carts".into(),
                    uid: "u".into(),
                },
                audiences: vec![PIA.into()],
                pod: Some(ObjectRef {
                    name: "p".into(),
                    uid: "u".into(),
                }),
                node: None,
                lifetime: Duration::from_secs(3600),
                warn_after: None,
            },
            at(NOW),
            &SeededRng::new(b"f"),
        )
        .expect("mint");
    let (status, body) = w.ask("169.254.170.23", Some(&forged)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        w.upstream.calls.load(Ordering::SeqCst),
        0,
        "nothing went upstream"
    );

    // A good token: the SDK's JSON, through either address.
    let (status, body) = w.ask("[fd00:ec2::23]:80", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["AccountId"], "637423329338");
    assert_eq!(json["Expiration"], "2026-11-18T17:06:40Z");
    assert!(
        json["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
    );
    assert!(json["SecretAccessKey"].is_string() && json["Token"].is_string());
    // Again: from the cache.
    w.ask("169.254.170.23", Some(&token)).await;
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 1);
    let (status, _) = w.probe("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (_, metrics) = w.probe("/metrics").await;
    assert!(
        metrics.contains("podiam_agent_cache_hits_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("podiam_agent_upstream_calls_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_first_requests_for_one_pod_make_one_upstream_call() {
    let w = world();
    let token = w.token("carts-1", PIA, NOW);
    let mut asks = Vec::new();
    for _ in 0..1000 {
        let agent = Arc::clone(&w.agent);
        let token = token.clone();
        asks.push(tokio::spawn(async move {
            let response = credentials_router(agent)
                .oneshot(
                    Request::get("/v1/credentials")
                        .header("host", "169.254.170.23")
                        .header("authorization", token)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("response");
            response.status()
        }));
    }
    for ask in asks {
        assert_eq!(ask.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 1);
    // Other pods get their own credentials.
    w.ask("169.254.170.23", Some(&w.token("carts-2", PIA, NOW)))
        .await;
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 2);
}

/// Credentials fetched for a token bound to one node are never served, from the cache, for a
/// token of the same pod that names another node: that token goes to EKS Auth, which decides
/// (and refuses it when the agent's identity is not that node's).
#[tokio::test]
async fn the_cache_does_not_serve_a_token_bound_to_another_node() {
    let w = world();
    let issuer = &w.upstream.issuer;
    let on_1 = World::token_bound(issuer, "carts-1", PIA, NOW, Some("node-1"));
    let (status, _) = w.ask("169.254.170.23", Some(&on_1)).await;
    assert_eq!(status, StatusCode::OK);
    w.ask("169.254.170.23", Some(&on_1)).await;
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 1, "a cache hit");
    let on_2 = World::token_bound(issuer, "carts-1", PIA, NOW, Some("node-2"));
    w.ask("169.254.170.23", Some(&on_2)).await;
    assert_eq!(
        w.upstream.calls.load(Ordering::SeqCst),
        2,
        "the token for another node went upstream"
    );
}

#[tokio::test]
async fn an_outage_serves_the_cache_until_15_seconds_before_expiry() {
    let w = world();
    let token = w.token("carts-1", PIA, NOW);
    assert_eq!(
        w.ask("169.254.170.23", Some(&token)).await.0,
        StatusCode::OK
    );
    w.upstream.mode.store(1, Ordering::SeqCst);
    // Past the 3 h retention: a renewal is due, the server is down, the cache answers.
    w.clock.set(at(NOW + 3 * 3600 + 60));
    let fresh_token = w.token("carts-1", PIA, NOW + 3 * 3600);
    let (status, body) = w.ask("169.254.170.23", Some(&fresh_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The renewal behind that answer fails: readiness says degraded.
    let mut probe = w.probe("/readyz").await;
    for _ in 0..100 {
        if probe.0 == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        probe = w.probe("/readyz").await;
    }
    let (status, ready) = probe;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.starts_with("degraded: "), "{ready}");
    // 10 s before expiry: nothing usable is left.
    w.clock.set(at(NOW + 6 * 3600 - 10));
    let late_token = w.token("carts-1", PIA, NOW + 6 * 3600 - 600);
    let (status, body) = w.ask("169.254.170.23", Some(&late_token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        "[]: (ServiceUnavailableException): connection refused, fault: server"
    );
    // The server is back: ready again.
    w.upstream.mode.store(0, Ordering::SeqCst);
    assert_eq!(
        w.ask("169.254.170.23", Some(&late_token)).await.0,
        StatusCode::OK
    );
    assert_eq!(w.probe("/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn short_credentials_are_cached_and_renewed_ahead_of_their_own_expiry() {
    for (lifetime, cached_at, renewed_at) in [
        // AWS's chained sessions: an hour, renewed 15 minutes ahead.
        (3600, 44 * 60, 46 * 60),
        // The shortest AssumeRole session: 15 minutes, renewed at half.
        (900, 7 * 60, 8 * 60),
    ] {
        let w = world();
        w.upstream.lifetime.store(lifetime, Ordering::SeqCst);
        assert_eq!(w.ask_at(0).await.0, StatusCode::OK);
        assert_eq!(w.ask_at(cached_at).await.0, StatusCode::OK);
        assert_eq!(
            w.upstream.calls.load(Ordering::SeqCst),
            1,
            "{lifetime} s credentials are served from the cache at {cached_at} s"
        );
        let (status, body) = w.ask_at(renewed_at).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            w.upstream.calls.load(Ordering::SeqCst),
            2,
            "{lifetime} s credentials are renewed before they are served at {renewed_at} s"
        );
        let served: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            served["AccessKeyId"], "ASIA0000000000000002",
            "the renewed credentials are served"
        );
    }
}

#[tokio::test]
async fn refusals_from_upstream_keep_their_status_and_code() {
    let w = world();
    w.upstream.mode.store(2, Ordering::SeqCst);
    let (status, body) = w
        .ask("169.254.170.23", Some(&w.token("carts-1", PIA, NOW)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "[req-1]: (AccessDeniedException): Not authorized, fault: client"
    );
}

#[tokio::test]
async fn only_pods_that_still_ask_are_renewed_in_the_background() {
    let w = world();
    let busy = w.token("busy", PIA, NOW);
    let gone = w.token("gone", PIA, NOW);
    let (_, first) = w.ask("169.254.170.23", Some(&busy)).await;
    w.ask("169.254.170.23", Some(&gone)).await;
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 2);
    // Past the 3 h retention window the busy pod asks again: it is answered at once from the
    // cache, and renewed in the background with the token it sent.
    w.clock.set(at(NOW + 3 * 3600 + 30));
    let busy_again = w.token("busy", PIA, NOW + 3 * 3600);
    let (status, served) = w.ask("169.254.170.23", Some(&busy_again)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, first, "served from the cache without waiting");
    for _ in 0..100 {
        if w.upstream.calls.load(Ordering::SeqCst) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        w.upstream.calls.load(Ordering::SeqCst),
        3,
        "one renewal, for the busy pod"
    );
    let (_, renewed) = w.ask("169.254.170.23", Some(&busy_again)).await;
    assert_ne!(renewed, first, "the renewed credentials are served");
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 3);
    // The pod that is gone is forgotten once its credentials are over.
    w.clock.set(at(NOW + 6 * 3600));
    w.agent.cache().sweep(w.clock.now());
    assert_eq!(w.agent.cache().len(), 1);
}

#[tokio::test]
async fn upstream_calls_are_rate_limited_cache_hits_are_not() {
    let w = world_with(AgentConfig {
        upstream_rate: 1,
        upstream_burst: 1,
        ..AgentConfig::default()
    });
    let first = w.token("p1", PIA, NOW);
    assert_eq!(
        w.ask("169.254.170.23", Some(&first)).await.0,
        StatusCode::OK
    );
    let (status, body) = w
        .ask("169.254.170.23", Some(&w.token("p2", PIA, NOW)))
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
    );
    for _ in 0..50 {
        assert_eq!(
            w.ask("169.254.170.23", Some(&first)).await.0,
            StatusCode::OK
        );
    }
}

/// Waits until the fake upstream has been called `calls` times, and a little longer to see that
/// no more calls come.
async fn settle(w: &World, calls: usize) {
    for _ in 0..100 {
        if w.upstream.calls.load(Ordering::SeqCst) >= calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn a_renewal_storm_stays_within_the_upstream_rate_and_leaves_room_for_new_pods() {
    // Renewals alone may go 1,000 a second; the upstream rate, 10 a second, bounds them.
    let w = world_with(AgentConfig {
        upstream_rate: 10,
        upstream_burst: 10,
        renewals_per_second: 1000,
        ..AgentConfig::default()
    });
    let pods: Vec<String> = (0..10).map(|i| format!("pod-{i}")).collect();
    let mut first = Vec::new();
    for pod in &pods {
        let (status, body) = w.ask("169.254.170.23", Some(&w.token(pod, PIA, NOW))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        first.push(body);
    }
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 10);
    // All ten come due together; a second's worth of the rate (the full burst) is there.
    w.clock.set(at(NOW + 3 * 3600 + 1));
    let tokens: Vec<String> = pods
        .iter()
        .map(|pod| w.token(pod, PIA, NOW + 3 * 3600))
        .collect();
    for _ in 0..3 {
        for (token, body) in tokens.iter().zip(&first) {
            let (status, served) = w.ask("169.254.170.23", Some(token)).await;
            assert_eq!(
                (status, &served),
                (StatusCode::OK, body),
                "served from the cache"
            );
        }
    }
    // Renewals take the burst down to half of it, however many due requests come.
    settle(&w, 15).await;
    // A new pod still gets its first credentials at once, from the half left to it.
    let (status, body) = w
        .ask("169.254.170.23", Some(&w.token("new", PIA, NOW + 3 * 3600)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 16);
    // One second later the rate allows ten more calls, five for the renewals left.
    w.clock.set(at(NOW + 3 * 3600 + 2));
    for token in &tokens {
        assert_eq!(w.ask("169.254.170.23", Some(token)).await.0, StatusCode::OK);
    }
    settle(&w, 21).await;
    let mut renewed = 0;
    for (token, body) in tokens.iter().zip(&first) {
        let (status, served) = w.ask("169.254.170.23", Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        renewed += usize::from(&served != body);
    }
    assert_eq!(renewed, 10, "every due pod renewed once");
    settle(&w, 21).await;
}

#[tokio::test]
async fn without_the_cluster_keys_eks_auth_verifies_tokens_and_the_agent_still_serves() {
    let w = world();
    w.upstream.keys_mode.store(1, Ordering::SeqCst);
    assert!(!w.agent.prime().await, "the keys are refused");
    assert_eq!(
        w.probe("/readyz").await.0,
        StatusCode::OK,
        "ready without them"
    );
    let token = w.token("carts-1", PIA, NOW);
    let (status, first) = w.ask("169.254.170.23", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 1);
    // EKS Auth accepted the token: the same token is now served from the cache.
    let (status, again) = w.ask("169.254.170.23", Some(&token)).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 1);
    // A forged token naming the same pod is not served the pod's credentials: EKS Auth refuses
    // it, and the pod's cache is left alone.
    let forger =
        Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).expect("key")).expect("issuer");
    let forged = World::token_of(&forger, "carts-1", PIA, NOW);
    let (status, body) = w.ask("169.254.170.23", Some(&forged)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("(InvalidTokenException)"), "{body}");
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 2);
    assert_eq!(w.ask("169.254.170.23", Some(&token)).await.1, first);
    // The pod's next token goes to EKS Auth too.
    let next = w.token("carts-1", PIA, NOW + 60);
    w.clock.set(at(NOW + 120));
    assert_eq!(w.ask("169.254.170.23", Some(&next)).await.0, StatusCode::OK);
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 3);
    // None of this asked for the keys again: a refusal is retried after five minutes.
    assert_eq!(w.upstream.key_calls.load(Ordering::SeqCst), 1);
    let (_, metrics) = w.probe("/metrics").await;
    assert!(
        metrics.contains("podiam_agent_token_keys_loaded 0"),
        "{metrics}"
    );
    // The permission is granted: five minutes later the keys are fetched and used.
    w.upstream.keys_mode.store(0, Ordering::SeqCst);
    w.clock.set(at(NOW + 120 + 301));
    let later = w.token("carts-2", PIA, NOW + 400);
    assert_eq!(
        w.ask("169.254.170.23", Some(&later)).await.0,
        StatusCode::OK
    );
    assert_eq!(w.upstream.key_calls.load(Ordering::SeqCst), 2);
    let (status, body) = w.ask("169.254.170.23", Some(&forged)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("Service account token failed verification: "),
        "refused locally again: {body}"
    );
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 4);
    let (_, metrics) = w.probe("/metrics").await;
    assert!(
        metrics.contains("podiam_agent_token_keys_loaded 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_keys_a_burst_of_one_token_makes_one_upstream_call() {
    let w = world();
    w.upstream.keys_mode.store(1, Ordering::SeqCst);
    let token = w.token("carts-1", PIA, NOW);
    let mut asks = Vec::new();
    for _ in 0..200 {
        let agent = Arc::clone(&w.agent);
        let token = token.clone();
        asks.push(tokio::spawn(async move {
            credentials_router(agent)
                .oneshot(
                    Request::get("/v1/credentials")
                        .header("host", "169.254.170.23")
                        .header("authorization", token)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("response")
                .status()
        }));
    }
    for ask in asks {
        assert_eq!(ask.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(w.upstream.calls.load(Ordering::SeqCst), 1);
    assert_eq!(w.upstream.key_calls.load(Ordering::SeqCst), 1);
    assert_eq!(w.agent.tokens().pending_turns(), 0, "no turn left behind");
}

#[tokio::test]
async fn without_the_keys_an_outage_serves_the_cache_only_to_tokens_eks_auth_accepted() {
    let w = world();
    // The server cannot be reached for the keys at start, then for everything.
    w.upstream.keys_mode.store(2, Ordering::SeqCst);
    let token = w.token("carts-1", PIA, NOW);
    assert_eq!(
        w.ask("169.254.170.23", Some(&token)).await.0,
        StatusCode::OK
    );
    w.upstream.mode.store(1, Ordering::SeqCst);
    w.clock.set(at(NOW + 5));
    assert_eq!(
        w.ask("169.254.170.23", Some(&token)).await.0,
        StatusCode::OK,
        "an accepted token is served from the cache"
    );
    let unverified = w.token("carts-1", PIA, NOW + 1);
    let (status, body) = w.ask("169.254.170.23", Some(&unverified)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("(ServiceUnavailableException)"), "{body}");
    // The keys were asked for once at the first request, and again only after 10 s.
    assert_eq!(w.upstream.key_calls.load(Ordering::SeqCst), 1);
    w.upstream.mode.store(0, Ordering::SeqCst);
    w.upstream.keys_mode.store(0, Ordering::SeqCst);
    w.clock.set(at(NOW + 11));
    assert_eq!(
        w.ask("169.254.170.23", Some(&unverified)).await.0,
        StatusCode::OK
    );
    assert_eq!(w.upstream.key_calls.load(Ordering::SeqCst), 2);
}
