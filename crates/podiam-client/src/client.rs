//! SigV4-signed calls to an endpoint, or to several replicas of one: rest-json (EKS, EKS Auth)
//! and awsQuery (STS).
//!
//! With several replicas, a replica that fails to answer is skipped for a while (its circuit
//! opens: 5 s, doubling with each further failure up to 30 s, then it is tried again), and a
//! call that is safe to repeat ([`Repeat::Safe`]) is hedged when the client is set up for it
//! ([`Failover::hedge_after`]): if the replica asked first has not answered within the delay,
//! the same call, signed again for the next replica's `Host`, goes there too and the first good
//! answer wins. A replica that accepts connections but never answers (a stopped process, whose
//! kernel still completes the handshake) then costs a call the hedge delay, not the timeout.
//! Calls that must not run twice ([`Repeat::Once`]) fail over only when the connection was
//! refused, as before: the request never reached a server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, header};
use podiam_sigv4::{SigningParams, sign};
use podiam_types::Clock;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{ClientError, ProvideCredentials};

/// Timeouts of a client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// The whole request.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(10),
        }
    }
}

/// How a client spreads calls over several endpoints (replicas of one service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// A call that is safe to repeat goes to the next endpoint too when the one asked has not
    /// answered within this long; `None` never hedges (calls then wait for an answer or a
    /// failure before trying the next endpoint).
    pub hedge_after: Option<Duration>,
    /// How long an endpoint is skipped after it failed to answer (connection refused or timed
    /// out, no answer within the request timeout, connection reset).
    pub circuit_open: Duration,
    /// Each further failure in a row doubles the time an endpoint is skipped, up to this.
    pub circuit_max: Duration,
}

impl Default for Failover {
    fn default() -> Self {
        Self {
            hedge_after: None,
            circuit_open: Duration::from_secs(5),
            circuit_max: Duration::from_secs(30),
        }
    }
}

/// Whether a call may reach a server more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Must not run twice (a write): it goes to another endpoint only when the connection was
    /// refused, so it never reached a server. Never hedged.
    Once,
    /// Safe to repeat (a read, or a call that only issues something, like EKS Auth's
    /// `AssumeRoleForPodIdentity`): hedged when the client hedges, and tried on the next
    /// endpoint after a timeout, a reset connection or a 5xx answer too.
    Safe,
}

impl Repeat {
    /// `Safe` for the safe HTTP methods (GET, HEAD, OPTIONS, TRACE), else `Once`.
    pub fn for_method(method: &Method) -> Self {
        if method.is_safe() {
            Self::Safe
        } else {
            Self::Once
        }
    }
}

/// What a client's failover did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailoverStats {
    /// Calls sent to a further endpoint because the one asked had not answered in time.
    pub hedged: u64,
    /// Times an endpoint's circuit opened (it failed to answer and is skipped for a while).
    pub circuits_opened: u64,
    /// Endpoints skipped now.
    pub open_circuits: usize,
}

/// The failure record of one endpoint.
#[derive(Debug, Default, Clone)]
struct Circuit {
    /// Failures in a row; 0 is a closed circuit.
    failures: u32,
    /// Skipped until then.
    open_until: Option<OffsetDateTime>,
    /// When a call began trying the endpoint again after its window: other calls keep skipping
    /// it until that call ends (or has surely timed out).
    probing_since: Option<OffsetDateTime>,
}

/// What every clone of a client shares: its endpoints and what it learnt about them.
#[derive(Debug)]
struct Shared {
    endpoints: Vec<String>,
    /// The endpoint that answered last; calls start there.
    preferred: AtomicUsize,
    circuits: Mutex<Vec<Circuit>>,
    hedged: AtomicU64,
    circuits_opened: AtomicU64,
}

/// A client for one endpoint (or several replicas of it) and region.
#[derive(Debug, Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    shared: Arc<Shared>,
    region: String,
    credentials: Arc<dyn ProvideCredentials>,
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    failover: Failover,
}

/// A response body and its request id.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The decoded body.
    pub body: T,
    /// `x-amzn-RequestId`.
    pub request_id: Option<String>,
}

/// A call, before it is signed for an endpoint.
#[derive(Debug)]
struct Call {
    service: String,
    method: Method,
    path_and_query: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// What an endpoint answered.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Why one endpoint did not answer.
#[derive(Debug)]
enum Failure {
    /// No connection (refused, or not made within the connect timeout): the request never
    /// reached a server, so any call may go to another endpoint.
    Connect(ClientError),
    /// Connected, but no complete answer (the request timed out, the connection was reset):
    /// the request may have reached the server.
    NoAnswer(ClientError),
    /// The request could not be made (no credentials, a bad URL): the same on every endpoint.
    Local(ClientError),
}

impl Failure {
    fn into_error(self) -> ClientError {
        match self {
            Self::Connect(e) | Self::NoAnswer(e) | Self::Local(e) => e,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::Local(e)
    }
}

/// Attempts report here: the endpoint's index and its outcome.
type Outcomes = tokio::sync::mpsc::Sender<(usize, Result<Reply, Failure>)>;

impl AwsClient {
    /// A client of `endpoint` (e.g. `http://127.0.0.1:4599`, or several comma-separated)
    /// signing for `region`, with the default [`Failover`] (circuits, no hedging).
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: Arc<dyn ProvideCredentials>,
        clock: Arc<dyn Clock>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            // A burst of calls must not leave a connection (and its buffers) per caller.
            .pool_max_idle_per_host(8)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("podiam/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let mut endpoints = Vec::new();
        for endpoint in endpoint.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            reqwest::Url::parse(&endpoint)
                .map_err(|e| ClientError::InvalidRequest(format!("endpoint {endpoint:?}: {e}")))?;
            endpoints.push(endpoint);
        }
        if endpoints.is_empty() {
            return Err(ClientError::InvalidRequest("no endpoint given".to_owned()));
        }
        Ok(Self {
            http,
            shared: Arc::new(Shared {
                circuits: Mutex::new(vec![Circuit::default(); endpoints.len()]),
                endpoints,
                preferred: AtomicUsize::new(0),
                hedged: AtomicU64::new(0),
                circuits_opened: AtomicU64::new(0),
            }),
            region: region.to_owned(),
            credentials,
            clock,
            timeouts,
            failover: Failover::default(),
        })
    }

    /// The same client with `failover` (e.g. hedging for the node agent's calls).
    #[must_use]
    pub fn with_failover(mut self, failover: Failover) -> Self {
        self.failover = failover;
        self
    }

    /// The endpoint calls go to first (the one that answered last).
    pub fn endpoint(&self) -> &str {
        let i = self.shared.preferred.load(Ordering::Relaxed);
        self.shared
            .endpoints
            .get(i)
            .or_else(|| self.shared.endpoints.first())
            .map_or("", String::as_str)
    }

    /// What failover did so far, and how many endpoints are skipped now.
    pub fn failover_stats(&self) -> FailoverStats {
        let now = self.clock.now();
        FailoverStats {
            hedged: self.shared.hedged.load(Ordering::Relaxed),
            circuits_opened: self.shared.circuits_opened.load(Ordering::Relaxed),
            open_circuits: self
                .lock_circuits()
                .iter()
                .filter(|c| c.open_until.is_some_and(|until| now < until))
                .count(),
        }
    }

    fn transport(endpoint: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        }
    }

    fn lock_circuits(&self) -> std::sync::MutexGuard<'_, Vec<Circuit>> {
        self.shared
            .circuits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn endpoint_at(&self, i: usize) -> &str {
        self.shared.endpoints.get(i).map_or("", String::as_str)
    }

    /// The order to try the endpoints in, from the preferred one: those that may be asked now,
    /// and those skipped (their circuit is open, or another call is probing one whose window is
    /// over), which are asked only when all the others failed.
    fn plan(&self, now: OffsetDateTime) -> (VecDeque<usize>, VecDeque<usize>) {
        let count = self.shared.endpoints.len();
        let first = self.shared.preferred.load(Ordering::Relaxed) % count.max(1);
        // A probe that started longer ago than a request can last has ended, one way or another.
        let probe_limit = self.timeouts.connect + self.timeouts.request;
        let circuits = self.lock_circuits();
        let mut ready = VecDeque::with_capacity(count);
        let mut skipped = VecDeque::new();
        for step in 0..count {
            let i = (first + step) % count;
            let closed = circuits.get(i).is_none_or(|c| match c.open_until {
                None => true,
                Some(until) if now < until => false,
                Some(_) => c
                    .probing_since
                    .is_none_or(|since| (now - since).unsigned_abs() >= probe_limit),
            });
            if closed {
                ready.push_back(i);
            } else {
                skipped.push_back(i);
            }
        }
        (ready, skipped)
    }

    /// Marks a call to endpoint `i` as its probe when its window is over.
    fn begin(&self, i: usize, now: OffsetDateTime) {
        if let Some(c) = self.lock_circuits().get_mut(i)
            && c.open_until.is_some_and(|until| until <= now)
        {
            c.probing_since = Some(now);
        }
    }

    /// Endpoint `i` answered: its circuit closes.
    fn answered(&self, i: usize) {
        let reopened = self.lock_circuits().get_mut(i).is_some_and(|c| {
            let was_open = c.failures > 0;
            *c = Circuit::default();
            was_open
        });
        if reopened && self.shared.endpoints.len() > 1 {
            tracing::info!(
                endpoint = self.endpoint_at(i),
                "the endpoint answers again; it is no longer skipped"
            );
        }
    }

    /// Endpoint `i` failed to answer: its circuit opens for `circuit_open`, doubled for each
    /// failure in a row before, at most `circuit_max`.
    fn failed(&self, i: usize, now: OffsetDateTime, error: &ClientError) {
        let window = {
            let mut circuits = self.lock_circuits();
            let Some(c) = circuits.get_mut(i) else {
                return;
            };
            c.failures = c.failures.saturating_add(1);
            let doublings = c.failures.saturating_sub(1).min(16);
            let window = self
                .failover
                .circuit_open
                .saturating_mul(1 << doublings)
                .min(self.failover.circuit_max);
            c.open_until = Some(now + window);
            c.probing_since = None;
            window
        };
        self.shared.circuits_opened.fetch_add(1, Ordering::Relaxed);
        if self.shared.endpoints.len() > 1 {
            tracing::warn!(
                endpoint = self.endpoint_at(i),
                error = %error,
                skipped_for_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                "the endpoint did not answer; asking the others first for a while"
            );
        }
    }

    /// One attempt at endpoint `i`, recorded in its circuit.
    async fn attempt(&self, i: usize, call: &Call) -> Result<Reply, Failure> {
        let endpoint = self.endpoint_at(i);
        self.begin(i, self.clock.now());
        let result = self.send_to(endpoint, call).await;
        match &result {
            Ok(_) => self.answered(i),
            Err(Failure::Connect(e) | Failure::NoAnswer(e)) => self.failed(i, self.clock.now(), e),
            Err(Failure::Local(_)) => {}
        }
        result
    }

    /// Sends `call` as `repeat` allows: see the module's documentation.
    async fn send(&self, call: Call, repeat: Repeat) -> Result<Reply, ClientError> {
        match repeat {
            Repeat::Once => self.send_once(&call).await,
            Repeat::Safe => self.send_safe(Arc::new(call)).await,
        }
    }

    /// To the first endpoint that accepts the connection, which becomes preferred.
    async fn send_once(&self, call: &Call) -> Result<Reply, ClientError> {
        let (ready, skipped) = self.plan(self.clock.now());
        let mut last_error = None;
        for i in ready.into_iter().chain(skipped) {
            match self.attempt(i, call).await {
                Ok(reply) => {
                    self.shared.preferred.store(i, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(Failure::Connect(e)) => {
                    tracing::debug!(endpoint = self.endpoint_at(i), error = %e, "cannot connect; trying the next endpoint");
                    last_error = Some(e);
                }
                Err(other) => return Err(other.into_error()),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::InvalidRequest("no endpoint".to_owned())))
    }

    /// To the endpoints in turn until one gives a good answer (not a 5xx): the next is asked
    /// when one fails, and also, when hedging, when it has not answered within the delay.
    /// Attempts run as tasks of their own, so one that loses the race still ends (within the
    /// request timeout) and tells its endpoint's circuit how it went.
    async fn send_safe(&self, call: Arc<Call>) -> Result<Reply, ClientError> {
        let (mut ready, mut skipped) = self.plan(self.clock.now());
        let (outcomes, mut rx) = tokio::sync::mpsc::channel(self.shared.endpoints.len().max(1));
        let mut in_flight = 0_usize;
        // The best result so far if no good answer comes: a 5xx answer, else the last failure.
        let mut fallback: Option<Result<Reply, ClientError>> = None;
        loop {
            if in_flight == 0 {
                // Nothing pending: the next endpoint, else a skipped one as the last resort.
                match ready.pop_front().or_else(|| skipped.pop_front()) {
                    Some(i) => {
                        self.spawn_attempt(i, &call, &outcomes);
                        in_flight += 1;
                    }
                    None => {
                        return fallback.unwrap_or_else(|| {
                            Err(ClientError::InvalidRequest("no endpoint".to_owned()))
                        });
                    }
                }
            }
            let hedge = self.failover.hedge_after.filter(|_| !ready.is_empty());
            tokio::select! {
                Some((i, result)) = rx.recv() => {
                    in_flight = in_flight.saturating_sub(1);
                    match result {
                        Ok(reply) if reply.status < 500 => {
                            self.shared.preferred.store(i, Ordering::Relaxed);
                            return Ok(reply);
                        }
                        Ok(reply) => {
                            tracing::debug!(endpoint = self.endpoint_at(i), status = reply.status, "a server error; asking the next endpoint");
                            fallback = Some(Ok(reply));
                        }
                        Err(Failure::Local(e)) => return Err(e),
                        Err(failure) => {
                            let e = failure.into_error();
                            tracing::debug!(endpoint = self.endpoint_at(i), error = %e, "no answer; asking the next endpoint");
                            if !matches!(fallback, Some(Ok(_))) {
                                fallback = Some(Err(e));
                            }
                        }
                    }
                    // No good answer from this one: the next at once.
                    if let Some(next) = ready.pop_front() {
                        self.spawn_attempt(next, &call, &outcomes);
                        in_flight += 1;
                    }
                }
                () = tokio::time::sleep(hedge.unwrap_or_default()), if hedge.is_some() => {
                    if let Some(next) = ready.pop_front() {
                        self.shared.hedged.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(endpoint = self.endpoint_at(next), "no answer yet; hedging to the next endpoint");
                        self.spawn_attempt(next, &call, &outcomes);
                        in_flight += 1;
                    }
                }
                else => {
                    return fallback.unwrap_or_else(|| {
                        Err(ClientError::InvalidRequest("no endpoint".to_owned()))
                    });
                }
            }
        }
    }

    /// Starts an attempt at endpoint `i` as a task that reports to `outcomes`.
    fn spawn_attempt(&self, i: usize, call: &Arc<Call>, outcomes: &Outcomes) {
        let client = self.clone();
        let call = Arc::clone(call);
        let outcomes = outcomes.clone();
        tokio::spawn(async move {
            let result = client.attempt(i, &call).await;
            // The caller may have taken another answer and gone: nothing to do then.
            let _ = outcomes.try_send((i, result));
        });
    }

    /// Signs `call` for one endpoint and sends it.
    async fn send_to(&self, endpoint: &str, call: &Call) -> Result<Reply, Failure> {
        let url = reqwest::Url::parse(&format!("{endpoint}{}", call.path_and_query))
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(ClientError::InvalidRequest(format!("no host in {url}")).into());
            }
        };
        let mut headers = HeaderMap::new();
        let invalid = |e: header::InvalidHeaderValue| ClientError::InvalidRequest(e.to_string());
        headers.insert(header::HOST, HeaderValue::from_str(&host).map_err(invalid)?);
        if let Some(ct) = call.content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let creds = self.credentials.credentials().await?;
        sign(
            call.method.as_str(),
            url.path(),
            url.query().unwrap_or_default(),
            &mut headers,
            &call.body,
            &SigningParams {
                access_key_id: &creds.access_key_id,
                secret: creds.secret_access_key.expose(),
                session_token: creds.session_token.as_deref(),
                region: &self.region,
                service: &call.service,
                time: self.clock.now(),
            },
        )
        .map_err(invalid)?;
        let response = self
            .http
            .request(call.method.clone(), url)
            .headers(headers)
            .body(call.body.clone())
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    Failure::Connect(Self::transport(endpoint, e))
                } else if e.is_builder() {
                    Failure::Local(ClientError::InvalidRequest(e.to_string()))
                } else {
                    Failure::NoAnswer(Self::transport(endpoint, e))
                }
            })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::NoAnswer(Self::transport(endpoint, e)))?;
        Ok(Reply {
            status,
            headers,
            body: bytes.to_vec(),
        })
    }

    /// A rest-json call: `body` as JSON (none for GET/DELETE), the JSON answer back. GETs
    /// are [`Repeat::Safe`], other methods [`Repeat::Once`]; see [`Self::rest_json_with`].
    pub async fn rest_json(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Answer<Value>, ClientError> {
        let repeat = Repeat::for_method(&method);
        self.rest_json_with(service, method, path_and_query, body, repeat)
            .await
    }

    /// [`Self::rest_json`], saying whether the call is safe to repeat (a POST that only issues
    /// something, like `AssumeRoleForPodIdentity`, is).
    pub async fn rest_json_with(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Answer<Value>, ClientError> {
        let (content_type, bytes) = match body {
            Some(v) => (Some("application/json"), v.to_string().into_bytes()),
            None => (None, Vec::new()),
        };
        let call = Call {
            service: service.to_owned(),
            method,
            path_and_query: path_and_query.to_owned(),
            content_type,
            body: bytes,
        };
        let Reply {
            status,
            headers,
            body: bytes,
        } = self.send(call, repeat).await?;
        let request_id = request_id(&headers);
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::InvalidResponse(format!(
                    "HTTP {status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(Answer {
                body: json,
                request_id,
            });
        }
        let code = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|c| c.split(':').next().unwrap_or(c).to_owned())
            .or_else(|| {
                json.get("__type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("HTTP{status}"));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Err(ClientError::Api {
            status,
            code,
            message,
            request_id,
        })
    }

    /// An awsQuery call (STS, IAM): the XML answer back. Sent [`Repeat::Once`].
    pub async fn query(
        &self,
        service: &str,
        params: &[(&str, &str)],
    ) -> Result<Answer<String>, ClientError> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(params.iter().copied());
            form.finish().into_bytes()
        };
        let call = Call {
            service: service.to_owned(),
            method: Method::POST,
            path_and_query: "/".to_owned(),
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            body,
        };
        let Reply {
            status,
            headers,
            body: bytes,
        } = self.send(call, Repeat::Once).await?;
        let request_id = request_id(&headers);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(Answer {
                body: text,
                request_id,
            });
        }
        Err(ClientError::Api {
            status,
            code: crate::xml::first_text(&text, "Code").unwrap_or_else(|| format!("HTTP{status}")),
            message: crate::xml::first_text(&text, "Message").unwrap_or_default(),
            request_id,
        })
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The account of the client's own identity (STS `GetCallerIdentity`).
pub async fn caller_account(client: &AwsClient) -> Result<String, ClientError> {
    let answer = client
        .query(
            "sts",
            &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        )
        .await?;
    crate::xml::first_text(&answer.body, "Account").ok_or_else(|| {
        ClientError::InvalidResponse("GetCallerIdentity answered no Account".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credentials, StaticCredentials};
    use podiam_types::FixedClock;

    #[test]
    fn a_circuit_opens_for_5_s_doubling_to_30_s_and_an_answer_closes_it() {
        let clock = Arc::new(FixedClock::new(
            OffsetDateTime::from_unix_timestamp(1_795_000_000).expect("time"),
        ));
        let credentials = Arc::new(StaticCredentials(Credentials {
            access_key_id: "AKIA1".to_owned(),
            secret_access_key: podiam_crypto::Secret::new("s".to_owned()),
            session_token: None,
            expiration: None,
        }));
        let client = AwsClient::new(
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "us-east-1",
            credentials,
            clock.clone(),
            Timeouts::default(),
        )
        .expect("client");
        let now = clock.now();
        let error = ClientError::InvalidRequest("test".to_owned());
        let windows: Vec<i64> = (0..6)
            .map(|_| {
                client.failed(0, now, &error);
                let until = client.lock_circuits()[0].open_until.expect("open");
                (until - now).whole_seconds()
            })
            .collect();
        assert_eq!(windows, [5, 10, 20, 30, 30, 30]);
        let (ready, skipped) = client.plan(now);
        assert_eq!((Vec::from(ready), Vec::from(skipped)), (vec![1], vec![0]));
        // After its window, one call probes it; the others keep skipping it meanwhile.
        let later = now + Duration::from_secs(31);
        assert_eq!(Vec::from(client.plan(later).0), vec![0, 1]);
        client.begin(0, later);
        assert_eq!(Vec::from(client.plan(later).0), vec![1]);
        client.answered(0);
        assert_eq!(Vec::from(client.plan(now).0), vec![0, 1]);
        assert_eq!(client.failover_stats().circuits_opened, 6);
    }
}
