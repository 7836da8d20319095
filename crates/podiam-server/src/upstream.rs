//! The broker in front of AWS for roles in upstream accounts: one call to AWS for concurrent
//! requests of the same pod and role, metrics of every call, and what `/readyz` says about AWS.
//! Retries with backoff are the AWS SDK's (in `podiam-aws`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use podiam_eks::{UpstreamAssume, UpstreamCredentials, UpstreamError, UpstreamRole, UpstreamRoles};
use tokio::sync::OnceCell;

use crate::metrics::UpstreamMetrics;

/// How often podiam checks that AWS still answers its identity.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(30);

/// What makes two calls the same call: the pod, the role and everything sent with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    pod: String,
    role_arn: String,
    via: Option<String>,
    external_id: Option<String>,
    policy: Option<String>,
    tags: Vec<(String, String)>,
}

impl FlightKey {
    fn of(request: &UpstreamAssume) -> Self {
        Self {
            pod: request.pod.clone(),
            role_arn: request.role_arn.clone(),
            via: request.via.as_ref().map(|v| v.access_key_id.clone()),
            external_id: request.external_id.clone(),
            policy: request.policy.clone(),
            tags: request.tags.clone(),
        }
    }
}

type Flight = Arc<OnceCell<Result<UpstreamCredentials, UpstreamError>>>;

/// What podiam last learned about AWS.
#[derive(Debug, Clone, Default)]
struct Health {
    /// podiam's AWS principal, from the last successful check.
    principal: Option<String>,
    /// The last call's or check's failure to reach AWS, if nothing has succeeded since.
    unreachable: Option<String>,
}

/// [`UpstreamRoles`] with single flights, metrics and health, over the AWS SDK's.
pub(crate) struct Broker {
    aws: Arc<dyn UpstreamRoles>,
    flights: Mutex<HashMap<FlightKey, Flight>>,
    metrics: UpstreamMetrics,
    health: Mutex<Health>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("aws", &self.aws)
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub(crate) fn new(aws: Arc<dyn UpstreamRoles>, metrics: UpstreamMetrics) -> Self {
        Self {
            aws,
            flights: Mutex::new(HashMap::new()),
            metrics,
            health: Mutex::new(Health::default()),
        }
    }

    fn note<T>(&self, operation: &str, started: Instant, outcome: &Result<T, UpstreamError>) {
        let code = match outcome {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.metrics
            .call(operation, code, started.elapsed().as_secs_f64());
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(_) => health.unreachable = None,
            Err(UpstreamError::Unreachable(message)) => {
                health.unreachable = Some(message.clone());
            }
            Err(_) => {}
        }
    }

    /// Asks AWS who podiam is, and records the answer for `/readyz`.
    pub(crate) async fn check_now(&self) {
        let started = Instant::now();
        let outcome = self.aws.check().await;
        self.note("GetCallerIdentity", started, &outcome);
        match outcome {
            Ok(principal) => {
                let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
                if health.principal.as_deref() != Some(principal.as_str()) {
                    tracing::info!(%principal, "podiam's AWS identity");
                }
                health.principal = Some(principal);
            }
            Err(e) => tracing::warn!(error = %e, "podiam's AWS identity could not be checked"),
        }
    }

    /// podiam's AWS principal, from the last successful check.
    pub(crate) fn principal(&self) -> Option<String> {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .principal
            .clone()
    }

    /// The `/readyz` line about AWS: `[+]aws-upstream ok (PRINCIPAL)` or
    /// `[-]aws-upstream unreachable: WHY`.
    pub(crate) fn readiness(&self) -> String {
        let health = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match (health.unreachable, health.principal) {
            (Some(why), _) => format!("[-]aws-upstream unreachable: {why}"),
            (None, Some(principal)) => format!("[+]aws-upstream ok ({principal})"),
            (None, None) => "[?]aws-upstream not checked yet".to_owned(),
        }
    }

    /// Checks AWS every [`CHECK_EVERY`], for as long as the broker is in use.
    pub(crate) async fn check_forever(broker: std::sync::Weak<Self>) {
        loop {
            let Some(live) = broker.upgrade() else { return };
            live.check_now().await;
            drop(live);
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}

#[async_trait]
impl UpstreamRoles for Broker {
    async fn assume(&self, request: &UpstreamAssume) -> Result<UpstreamCredentials, UpstreamError> {
        let key = FlightKey::of(request);
        let flight = Arc::clone(
            self.flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key.clone())
                .or_default(),
        );
        // The first caller asks AWS; the others wait for its answer. If the first is dropped
        // (its client went away), the next one asks instead.
        let outcome = flight
            .get_or_init(|| async {
                let started = Instant::now();
                let outcome = self.aws.assume(request).await;
                self.note("AssumeRole", started, &outcome);
                outcome
            })
            .await
            .clone();
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
        outcome
    }

    async fn role(&self, role_arn: &str) -> Result<UpstreamRole, UpstreamError> {
        let started = Instant::now();
        let outcome = self.aws.role(role_arn).await;
        self.note("GetRole", started, &outcome);
        outcome
    }

    async fn check(&self) -> Result<String, UpstreamError> {
        self.check_now().await;
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match (&health.unreachable, &health.principal) {
            (Some(why), _) => Err(UpstreamError::Unreachable(why.clone())),
            (None, Some(principal)) => Ok(principal.clone()),
            (None, None) => Err(UpstreamError::Unreachable("no answer".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use podiam_crypto::Secret;
    use time::OffsetDateTime;

    use super::*;

    /// Counts calls; answers after a pause, so that concurrent calls overlap.
    #[derive(Debug, Default)]
    struct SlowAws {
        calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl UpstreamRoles for SlowAws {
        async fn assume(
            &self,
            request: &UpstreamAssume,
        ) -> Result<UpstreamCredentials, UpstreamError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.fail {
                return Err(UpstreamError::Unreachable("connection refused".to_owned()));
            }
            Ok(UpstreamCredentials {
                role_arn: request.role_arn.clone(),
                access_key_id: format!("ASIA{n}"),
                secret_access_key: Secret::new("s".to_owned()),
                session_token: Secret::new("t".to_owned()),
                expiration: OffsetDateTime::UNIX_EPOCH,
                assumed_role_arn: String::new(),
                assumed_role_id: String::new(),
            })
        }

        async fn role(&self, _: &str) -> Result<UpstreamRole, UpstreamError> {
            Err(UpstreamError::Unreachable("not in this test".to_owned()))
        }

        async fn check(&self) -> Result<String, UpstreamError> {
            if self.fail {
                return Err(UpstreamError::Unreachable("connection refused".to_owned()));
            }
            Ok("arn:aws:iam::111122223333:user/broker".to_owned())
        }
    }

    fn ask(pod: &str) -> UpstreamAssume {
        UpstreamAssume {
            role_arn: "arn:aws:iam::111122223333:role/carts".to_owned(),
            session_name: format!("eks-c-{pod}"),
            tags: vec![("kubernetes-pod-name".to_owned(), pod.to_owned())],
            external_id: None,
            policy: None,
            via: None,
            pod: pod.to_owned(),
        }
    }

    fn broker(aws: &Arc<SlowAws>) -> Broker {
        Broker::new(
            Arc::clone(aws) as Arc<dyn UpstreamRoles>,
            UpstreamMetrics::default(),
        )
    }

    #[tokio::test]
    async fn concurrent_requests_of_one_pod_make_one_call_and_other_pods_their_own() {
        let aws = Arc::new(SlowAws::default());
        let broker = broker(&aws);
        let (pod_a, pod_b) = (ask("a"), ask("b"));
        let (a1, a2, a3, b) = tokio::join!(
            broker.assume(&pod_a),
            broker.assume(&pod_a),
            broker.assume(&pod_a),
            broker.assume(&pod_b),
        );
        assert_eq!(aws.calls.load(Ordering::SeqCst), 2);
        let key = |r: Result<UpstreamCredentials, UpstreamError>| {
            r.map(|c| c.access_key_id).unwrap_or_default()
        };
        let (a1, a2, a3, b) = (key(a1), key(a2), key(a3), key(b));
        assert_eq!(a1, a2);
        assert_eq!(a2, a3);
        assert_ne!(a1, b);
        // Once answered, the next request asks again (the agent caches, not the broker).
        let _ = broker.assume(&ask("a")).await;
        assert_eq!(aws.calls.load(Ordering::SeqCst), 3);
        assert!(
            broker
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_unreachable_aws_shows_in_readiness_until_a_call_succeeds() {
        let down = Arc::new(SlowAws {
            fail: true,
            ..SlowAws::default()
        });
        let broker = broker(&down);
        assert!(broker.readiness().starts_with("[?]"));
        assert!(broker.assume(&ask("a")).await.is_err());
        assert_eq!(
            broker.readiness(),
            "[-]aws-upstream unreachable: connection refused"
        );
        let up = Arc::new(SlowAws::default());
        let broker = self::broker(&up);
        broker.check_now().await;
        assert_eq!(
            broker.readiness(),
            "[+]aws-upstream ok (arn:aws:iam::111122223333:user/broker)"
        );
    }
}
