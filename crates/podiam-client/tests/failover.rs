//! `AwsClient` against real local HTTP servers that answer, answer slowly, answer 503, hang
//! after reading the request, or never accept the connection at all (a stopped process whose
//! kernel still completes the handshake): hedging of calls that are safe to repeat, the circuit
//! that skips an endpoint that did not answer (driven by a fixed clock), and calls that must not
//! run twice failing over only when the connection is refused.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use podiam_client::{
    AwsClient, ClientError, Credentials, Failover, ProvideCredentials as _, Repeat,
    StaticCredentials, Timeouts, WebIdentityCredentials,
};
use podiam_crypto::Secret;
use podiam_types::{Clock, FixedClock, SystemClock};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What a test server does with a request.
#[derive(Debug, Clone)]
enum Mode {
    /// Answers `{"port": PORT}` with this status after this delay.
    Answer(u16, Duration),
    /// Answers this body with status 200.
    Text(String),
    /// Reads the request and never answers (the connection stays open).
    Hang,
}

/// An HTTP/1.1 server on loopback that answers `{"port": PORT}` as its mode says.
#[derive(Debug, Clone)]
struct TestServer {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<AtomicUsize>,
}

impl TestServer {
    async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Self {
            addr: listener.local_addr().expect("address"),
            mode: Arc::new(Mutex::new(mode)),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        let this = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(this.clone().serve(stream));
            }
        });
        server
    }

    async fn serve(self, mut stream: TcpStream) {
        let mut request = Vec::new();
        let mut buf = [0_u8; 4096];
        // The head, then as much body as Content-Length says.
        let body_start = loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
            if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(request.get(..body_start).unwrap_or_default())
            .to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while request.len() < body_start + length {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mode = self.mode.lock().expect("mode").clone();
        let (status, body) = match mode {
            Mode::Hang => {
                // Hold the connection open without a word until the client gives up.
                let _ = stream.read(&mut buf).await;
                return;
            }
            Mode::Text(body) => (200, body),
            Mode::Answer(status, delay) => {
                tokio::time::sleep(delay).await;
                (status, format!("{{\"port\":{}}}", self.addr.port()))
            }
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-amzn-requestid: r\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A listener that never accepts: the kernel completes handshakes into its backlog and the
/// requests sit there unread, as with a SIGSTOPped server.
async fn stopped() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    (listener, endpoint)
}

/// An address where nothing listens: connections are refused.
async fn refused() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    endpoint
}

const ANSWER: Mode = Mode::Answer(200, Duration::ZERO);

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(300),
    request: Duration::from_millis(600),
};

const HEDGE: Duration = Duration::from_millis(100);

fn client(endpoints: &[&str], clock: Arc<dyn Clock>, hedge: Option<Duration>) -> AwsClient {
    let credentials = Arc::new(StaticCredentials(Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()),
        session_token: None,
        expiration: None,
    }));
    AwsClient::new(
        &endpoints.join(","),
        "us-east-1",
        credentials,
        clock,
        TIMEOUTS,
    )
    .expect("client")
    .with_failover(Failover {
        hedge_after: hedge,
        ..Failover::default()
    })
}

fn fixed_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        OffsetDateTime::from_unix_timestamp(1_795_000_000).expect("time"),
    ))
}

/// The port of the server that answered.
fn port_of(answer: &Value) -> u16 {
    answer
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .expect("an answer with its port")
}

async fn get(client: &AwsClient) -> Result<Value, ClientError> {
    client
        .rest_json("eks", Method::GET, "/clusters", None)
        .await
        .map(|a| a.body)
}

/// Waits (in real time, at most 3 s) until the client counts `open` open circuits.
async fn wait_for_open_circuits(client: &AwsClient, open: usize) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while client.failover_stats().open_circuits != open {
        assert!(
            Instant::now() < deadline,
            "open circuits: {:?}, expected {open}",
            client.failover_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_replica_that_never_answers_costs_a_safe_call_the_hedge_delay_not_the_timeout() {
    let (_held, stopped) = stopped().await;
    let b = TestServer::start(ANSWER).await;
    let client = client(&[&stopped, &b.endpoint()], fixed_clock(), Some(HEDGE));

    let started = Instant::now();
    let answer = get(&client)
        .await
        .expect("an answer from the second replica");
    let took = started.elapsed();
    assert_eq!(port_of(&answer), b.addr.port());
    assert!(
        took >= HEDGE && took < Duration::from_millis(400),
        "took {took:?}"
    );
    assert_eq!(client.failover_stats().hedged, 1);
    assert_eq!(client.endpoint(), b.endpoint(), "the one that answered");
    // The stopped replica's attempt goes on alone until the request timeout, then opens its
    // circuit.
    wait_for_open_circuits(&client, 1).await;
    assert_eq!(client.failover_stats().circuits_opened, 1);

    // The next call goes straight to the replica that answers.
    let started = Instant::now();
    let answer = get(&client).await.expect("an answer");
    assert_eq!(port_of(&answer), b.addr.port());
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(client.failover_stats().hedged, 1);
    assert_eq!(b.requests(), 2);

    // An explicitly safe POST is hedged too.
    let c = TestServer::start(ANSWER).await;
    let client = crate::client(&[&stopped, &c.endpoint()], fixed_clock(), Some(HEDGE));
    let started = Instant::now();
    let answer = client
        .rest_json_with(
            "eks-auth",
            Method::POST,
            "/clusters/c/assume-role-for-pod-identity",
            Some(&serde_json::json!({"token": "t"})),
            Repeat::Safe,
        )
        .await
        .expect("an answer");
    assert_eq!(port_of(&answer.body), c.addr.port());
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn a_call_that_must_not_repeat_is_never_hedged_and_fails_over_only_when_refused() {
    let (_held, stopped) = stopped().await;
    let b = TestServer::start(ANSWER).await;
    let body = serde_json::json!({"name": "c"});

    // A POST to a stopped replica waits for its answer, and fails: it may have been applied.
    let client = client(&[&stopped, &b.endpoint()], fixed_clock(), Some(HEDGE));
    let started = Instant::now();
    let error = client
        .rest_json("eks", Method::POST, "/clusters", Some(&body))
        .await
        .expect_err("no answer");
    assert!(matches!(error, ClientError::Transport { .. }), "{error:?}");
    assert!(started.elapsed() >= TIMEOUTS.request);
    assert_eq!(b.requests(), 0, "never sent twice");
    assert_eq!(client.failover_stats().hedged, 0);
    // Its circuit is open now: the next write goes to the other replica first.
    let answer = client
        .rest_json("eks", Method::POST, "/clusters", Some(&body))
        .await
        .expect("an answer");
    assert_eq!(port_of(&answer.body), b.addr.port());

    // A refused connection never reached a server: the write goes to the next replica.
    let refused = refused().await;
    let client = crate::client(&[&refused, &b.endpoint()], fixed_clock(), Some(HEDGE));
    let answer = client
        .rest_json("eks", Method::POST, "/clusters", Some(&body))
        .await
        .expect("an answer");
    assert_eq!(port_of(&answer.body), b.addr.port());
    assert_eq!(client.failover_stats().circuits_opened, 1);
    assert_eq!(client.failover_stats().open_circuits, 1);
    // awsQuery calls are sent once too.
    let answer = client
        .query("sts", &[("Action", "GetCallerIdentity")])
        .await
        .expect("an answer");
    assert!(answer.body.contains(&b.addr.port().to_string()));
}

#[tokio::test]
async fn an_open_circuit_skips_its_endpoint_for_5_s_then_10_s_and_a_success_closes_it() {
    let clock = fixed_clock();
    let a = TestServer::start(Mode::Hang).await;
    // Slower than the hedge delay: every call would hedge if it could.
    let b = TestServer::start(Mode::Answer(200, Duration::from_millis(200))).await;
    let client = client(&[&a.endpoint(), &b.endpoint()], clock.clone(), Some(HEDGE));

    // A hangs: B (hedged to after 100 ms) answers; A's attempt times out and opens its circuit.
    assert_eq!(port_of(&get(&client).await.expect("answer")), b.addr.port());
    wait_for_open_circuits(&client, 1).await;
    assert_eq!((a.requests(), client.failover_stats().hedged), (1, 1));

    // B is slow, but A is skipped: no hedge.
    assert_eq!(port_of(&get(&client).await.expect("answer")), b.addr.port());
    assert_eq!((a.requests(), client.failover_stats().hedged), (1, 1));
    clock.advance(time::Duration::milliseconds(4900));
    get(&client).await.expect("answer");
    assert_eq!(a.requests(), 1, "still skipped 4.9 s later");

    // After 5 s A is tried again (a hedge from slow B), hangs again: skipped for 10 s now.
    clock.advance(time::Duration::milliseconds(200));
    assert_eq!(port_of(&get(&client).await.expect("answer")), b.addr.port());
    assert_eq!((a.requests(), client.failover_stats().hedged), (2, 2));
    wait_for_open_circuits(&client, 1).await;
    clock.advance(time::Duration::seconds(9));
    get(&client).await.expect("answer");
    assert_eq!(a.requests(), 2, "skipped for 10 s after a second failure");

    // A answers at last: it wins the race against slow B, and its circuit closes.
    a.set(ANSWER);
    clock.advance(time::Duration::milliseconds(1100));
    assert_eq!(port_of(&get(&client).await.expect("answer")), a.addr.port());
    assert_eq!(a.requests(), 3);
    assert_eq!(client.failover_stats().open_circuits, 0);
    assert_eq!(client.endpoint(), a.endpoint());
    assert_eq!(client.failover_stats().circuits_opened, 2);
}

#[tokio::test]
async fn a_safe_call_moves_on_from_server_errors_and_timeouts_without_hedging() {
    let a = TestServer::start(Mode::Answer(503, Duration::ZERO)).await;
    let b = TestServer::start(ANSWER).await;
    let client = client(&[&a.endpoint(), &b.endpoint()], fixed_clock(), None);
    assert_eq!(port_of(&get(&client).await.expect("answer")), b.addr.port());
    assert_eq!(
        client.failover_stats().circuits_opened,
        0,
        "503 is an answer"
    );

    // Every replica failing: the server error is what the caller gets.
    b.set(Mode::Answer(503, Duration::ZERO));
    match get(&client).await {
        Err(ClientError::Api { status: 503, .. }) => {}
        other => panic!("expected the 503: {other:?}"),
    }

    // Without hedging, a replica that hangs costs the request timeout, then the next answers.
    let hangs = TestServer::start(Mode::Hang).await;
    b.set(ANSWER);
    let client = crate::client(&[&hangs.endpoint(), &b.endpoint()], fixed_clock(), None);
    let started = Instant::now();
    assert_eq!(port_of(&get(&client).await.expect("answer")), b.addr.port());
    assert!(started.elapsed() >= TIMEOUTS.request);
    assert_eq!(client.failover_stats().hedged, 0);
}

#[tokio::test]
async fn a_single_endpoint_is_always_asked_even_with_its_circuit_open() {
    let a = TestServer::start(Mode::Hang).await;
    let client = client(&[&a.endpoint()], Arc::new(SystemClock), Some(HEDGE));
    let error = get(&client).await.expect_err("no answer");
    assert!(matches!(error, ClientError::Transport { .. }), "{error:?}");
    assert_eq!(client.failover_stats().open_circuits, 1);
    a.set(ANSWER);
    assert_eq!(port_of(&get(&client).await.expect("answer")), a.addr.port());
    assert_eq!(client.failover_stats().open_circuits, 0);
}

#[tokio::test]
async fn web_identity_credentials_come_from_any_replica_and_outlive_a_failed_refresh() {
    let clock = fixed_clock();
    let expires = (clock.now() + time::Duration::minutes(4))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let refused = refused().await;
    let failing = TestServer::start(Mode::Answer(503, Duration::ZERO)).await;
    let good = TestServer::start(Mode::Text(format!(
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAGOOD</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>{expires}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
    )))
    .await;
    let token_file =
        std::env::temp_dir().join(format!("podiam-web-identity-{}", std::process::id()));
    std::fs::write(&token_file, "token").expect("write the token");
    let provider = WebIdentityCredentials::new(
        "arn:aws:iam::000000000000:role/agent",
        &token_file,
        "node-1",
        &[refused.as_str(), &failing.endpoint(), &good.endpoint()].join(","),
        clock.clone(),
    );
    let credentials = provider
        .credentials()
        .await
        .expect("from the third replica");
    assert_eq!(credentials.access_key_id, "ASIAGOOD");
    assert_eq!((failing.requests(), good.requests()), (1, 1));
    // Four minutes left: every call refreshes, starting at the replica that answered.
    provider.credentials().await.expect("refreshed");
    assert_eq!((failing.requests(), good.requests()), (1, 2));
    // No replica answers the refresh: the current credentials serve while they have more than
    // a minute left.
    good.set(Mode::Answer(503, Duration::ZERO));
    let kept = provider
        .credentials()
        .await
        .expect("the current credentials");
    assert_eq!(kept.access_key_id, "ASIAGOOD");
    clock.advance(time::Duration::seconds(190));
    let error = provider
        .credentials()
        .await
        .expect_err("too close to expiry");
    assert!(error.to_string().contains("503"), "{error}");
    let _ = std::fs::remove_file(&token_file);
}
