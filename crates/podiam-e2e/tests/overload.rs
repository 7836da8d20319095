//! Overload (issue 17): thousands of clients at once against the server, the node agent and the
//! webhook, each with a small in-flight limit and a queue-delay limit of 40 ms. Requests over a
//! limit, or that waited longer than 40 ms before they were read, are answered at once with the
//! protocol's throttling answer (STS's `Throttling`, HTTP 429 from the agent and the webhook);
//! clients back off and retry as the SDKs do; every other request succeeds; nothing fails at
//! the connection level; memory stays bounded. The admitted requests' latency is reported
//! (speed targets live in `BENCHMARKS.md`, not in tests).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use podiam_e2e::admission::{create_review, pod};
use podiam_e2e::{
    AgentProcess, ClientEnv, FakeApiServer, Server, ServerOptions, TestCa, TestIssuer,
    WebhookProcess, create_irsa_role, pod_identity_token,
};
use podiam_http::ArrivalStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// The queue-delay limit every flood runs with.
const QUEUE_DELAY: &str = "40ms";

/// Most tries of one call; a throttled try is retried after a jittered backoff, as the SDKs do
/// (their standard mode: a random wait up to base × 2^try, capped; here base 50 ms, cap 1 s, so
/// that the test stays short).
const TRIES: u32 = 10;

/// What a flood sends, and how it tells the throttling answer.
struct Flood {
    clients: usize,
    calls_per_client: usize,
    /// Requests (whole HTTP/1.1 messages); client `i` sends request `i % len`.
    requests: Vec<Vec<u8>>,
    throttled: fn(u16, &str) -> bool,
}

#[derive(Default)]
struct Tally {
    ok: usize,
    throttled: usize,
    other: Vec<String>,
    /// From the request's write to its answer's arrival at the client's socket (the kernel's
    /// receive time): the latency the network sees, without the load generator's own
    /// scheduling delays on the two cores it shares with the server.
    admitted_ms: Vec<f64>,
    /// The same, until this process read the answer.
    admitted_read_ms: Vec<f64>,
    /// Calls still throttled at their last try.
    gave_up: usize,
}

impl Tally {
    fn percentile(sorted: &[f64], q: f64) -> f64 {
        let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
        sorted.get(i).copied().unwrap_or_default()
    }

    /// One line for the log, and the checks every flood shares.
    fn report_and_check(mut self, what: &str, flood: &Flood, took: Duration, rss: (f64, f64)) {
        self.admitted_ms.sort_by(f64::total_cmp);
        self.admitted_read_ms.sort_by(f64::total_cmp);
        let at_socket = if self.admitted_ms.is_empty() {
            "not measured".to_owned()
        } else {
            format!(
                "p50 {:.1} ms, p99 {:.1} ms",
                Self::percentile(&self.admitted_ms, 0.5),
                Self::percentile(&self.admitted_ms, 0.99)
            )
        };
        eprintln!(
            "{what}: {} clients × {} calls in {took:.2?}: {} answered, {} throttling answers (retried after a backoff; {} calls gave up after {TRIES} tries), {} other; admitted latency at the client's socket {at_socket} (read by the load generator: p50 {:.1} ms, p99 {:.1} ms); RSS peak {:.1} → {:.1} MiB",
            flood.clients,
            flood.calls_per_client,
            self.ok,
            self.throttled,
            self.gave_up,
            self.other.len(),
            Self::percentile(&self.admitted_read_ms, 0.5),
            Self::percentile(&self.admitted_read_ms, 0.99),
            rss.0,
            rss.1,
        );
        assert!(
            self.other.is_empty(),
            "{} answers were neither success nor throttling, the first: {:?}",
            self.other.len(),
            self.other.first()
        );
        assert_eq!(
            self.ok + self.gave_up,
            flood.clients * flood.calls_per_client
        );
        assert!(self.throttled > 0, "the limits never shed a request");
        assert!(self.ok > 0, "nothing was admitted");
        assert!(rss.1 < 256.0, "RSS peaked at {:.1} MiB", rss.1);
    }
}

/// One HTTP/1.1 response's status and body, from a keep-alive connection.
async fn read_response(stream: &mut ArrivalStream) -> Option<(u16, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(chunk.get(..n)?);
        let text = String::from_utf8_lossy(&buffer);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = &text[..end];
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let body = String::from_utf8_lossy(buffer.get(end + 4..end + 4 + length)?).into_owned();
            return Some((status, body));
        }
    }
}

/// A small xorshift generator for the backoff's jitter.
fn jitter(state: &mut u64, below: Duration) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let millis = u64::try_from(below.as_millis()).unwrap_or(1).max(1);
    Duration::from_millis(*state % millis)
}

/// One client: a keep-alive connection making its calls, each retried while throttled.
async fn client(id: usize, addr: SocketAddr, flood: Arc<Flood>, tally: Arc<Mutex<Tally>>) {
    let Ok(stream) = TcpStream::connect(addr).await else {
        tally.lock().await.other.push("connect failed".to_owned());
        return;
    };
    let mut stream = ArrivalStream::stamped(stream);
    let request = &flood.requests[id % flood.requests.len()];
    let mut random = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..flood.calls_per_client {
        for attempt in 0..TRIES {
            let started = Instant::now();
            let sent = SystemTime::now();
            if stream.write_all(request).await.is_err() {
                tally.lock().await.other.push("write failed".to_owned());
                return;
            }
            let answer = read_response(&mut stream).await;
            let read = started.elapsed().as_secs_f64() * 1000.0;
            let arrived = stream
                .arrived()
                .and_then(|at| at.duration_since(sent).ok())
                .map_or(read, |d| d.as_secs_f64() * 1000.0);
            let mut counts = tally.lock().await;
            match answer {
                Some((200, _)) => {
                    counts.ok += 1;
                    counts.admitted_ms.push(arrived);
                    counts.admitted_read_ms.push(read);
                    break;
                }
                Some((status, body)) if (flood.throttled)(status, &body) => {
                    counts.throttled += 1;
                    if attempt + 1 == TRIES {
                        counts.gave_up += 1;
                    }
                }
                Some((status, body)) => {
                    counts.other.push(format!("{status}: {body}"));
                    break;
                }
                None => {
                    counts.other.push("the connection closed".to_owned());
                    return;
                }
            }
            drop(counts);
            let ceiling = Duration::from_millis(50 << attempt).min(Duration::from_secs(1));
            tokio::time::sleep(jitter(&mut random, ceiling)).await;
        }
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Sends one request first (so that caches are warm: the run measures overload, not a cold
/// start whose first calls fetch keys while the load generator has both cores), then the
/// flood; reports and checks it.
fn run(what: &str, addr: SocketAddr, pid: u32, flood: Flood) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let warm = runtime.block_on(async {
        let mut stream = ArrivalStream::stamped(TcpStream::connect(addr).await.ok()?);
        stream.write_all(&flood.requests[0]).await.ok()?;
        read_response(&mut stream).await
    });
    assert_eq!(
        warm.as_ref().map(|(status, _)| *status),
        Some(200),
        "the warm-up call: {warm:?}"
    );
    let before = peak_rss_mib(pid);
    let flood = Arc::new(flood);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..flood.clients)
            .map(|id| tokio::spawn(client(id, addr, Arc::clone(&flood), Arc::clone(&tally))))
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(120), task).await;
        }
    });
    let took = started.elapsed();
    let peak = peak_rss_mib(pid);
    let tally = runtime.block_on(async { std::mem::take(&mut *tally.lock().await) });
    tally.report_and_check(what, &flood, took, (before, peak));
}

#[test]
fn the_server_sheds_overload_with_throttling_and_memory_stays_bounded() {
    let issuer = TestIssuer::start();
    let server = Server::start_with(&ServerOptions {
        args: ["--max-in-flight", "64", "--max-queue-delay", QUEUE_DELAY]
            .map(str::to_owned)
            .to_vec(),
        ..ServerOptions::default()
    });
    let root = ClientEnv::root(&server);
    create_irsa_role(&root, &issuer, "carts", "carts", "carts");
    let token = issuer.mint("carts", "carts", "sts.amazonaws.com", &[]);
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Fcarts&RoleSessionName=load&WebIdentityToken={token}"
    );
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    let flood = Flood {
        clients: 4_000,
        calls_per_client: 3,
        requests: vec![request.into_bytes()],
        throttled: |status, body| status == 400 && body.contains("<Code>Throttling</Code>"),
    };
    run("server", server.addr(), server.pid(), flood);
    // The server still serves normally afterwards, and counted what it shed.
    root.aws(&["sts", "get-caller-identity"]).ok();
    let metrics = server.get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains("podiam_requests_shed_total{service=\"sts\"}"),
        "shed requests are counted"
    );
}

#[test]
fn the_agent_sheds_overload_with_429_and_memory_stays_bounded() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let keys = podiam_e2e::pod_identity_node(
        &root,
        r#"["eks-auth:AssumeRoleForPodIdentity","eks:DescribeCluster"]"#,
    );
    let agent = AgentProcess::start(
        &server.endpoint(),
        &keys,
        &["--max-in-flight", "16", "--max-queue-delay", QUEUE_DELAY],
    );
    let requests = (0..8)
        .map(|i| {
            let token = pod_identity_token(&root, "app", &format!("web-{i}"));
            format!(
                "GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n\r\n"
            )
            .into_bytes()
        })
        .collect();
    let flood = Flood {
        clients: 2_000,
        calls_per_client: 3,
        requests,
        throttled: |status, _| status == 429,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], agent.port));
    run("agent", addr, agent.process.pid(), flood);
    assert!(
        agent
            .metric("podiam_agent_throttled_total")
            .is_some_and(|n| n > 0.0),
        "the agent counts what it shed"
    );
    let (status, body, _) = agent.credentials(&pod_identity_token(&root, "app", "after"));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_webhook_sheds_overload_with_429_and_memory_stays_bounded() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let api = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("podiam e2e CA");
    let webhook = WebhookProcess::start(
        &root,
        dir.path(),
        &api,
        &ca,
        &["--max-in-flight", "8", "--max-queue-delay", QUEUE_DELAY],
    );
    let review = create_review("admission.k8s.io/v1", "flood", &pod("default", "app")).to_string();
    // Reviews over TLS, many connections at once, retried when shed as the API server's
    // client does.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/mutate", webhook.https.port());
    let before = peak_rss_mib(webhook.child.id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const REVIEWERS: usize = 1_000;
    const REVIEWS_EACH: usize = 5;
    let tally = Arc::new(Mutex::new(Tally::default()));
    // A debug build's reviews saturate the webhook's CPU; a release build keeps up with this
    // load generator. So the webhook is also stopped for 300 ms mid-flood, as when its node's
    // CPU is taken: the reviews that wait meanwhile are older than the limit when it goes on.
    let pid = webhook.child.id().to_string();
    let pause = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let signal = |name: &str| {
            std::process::Command::new("kill")
                .args([name, &pid])
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(signal("-STOP"), "kill -STOP");
        std::thread::sleep(Duration::from_millis(300));
        assert!(signal("-CONT"), "kill -CONT");
    });
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..REVIEWERS)
            .map(|id| {
                let (client, url, review, tally) = (
                    client.clone(),
                    url.clone(),
                    review.clone(),
                    Arc::clone(&tally),
                );
                tokio::spawn(async move {
                    let mut random = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for _ in 0..REVIEWS_EACH {
                        for attempt in 0..TRIES {
                            let sent = Instant::now();
                            let answer = client
                                .post(&url)
                                .header("content-type", "application/json")
                                .body(review.clone())
                                .send()
                                .await;
                            let status = answer.as_ref().ok().map(|a| a.status().as_u16());
                            let body = match answer {
                                Ok(a) => a.text().await.unwrap_or_default(),
                                Err(e) => e.to_string(),
                            };
                            let mut counts = tally.lock().await;
                            match status {
                                Some(200) if body.contains("\"uid\":\"flood\"") => {
                                    counts.ok += 1;
                                    counts
                                        .admitted_read_ms
                                        .push(sent.elapsed().as_secs_f64() * 1000.0);
                                    break;
                                }
                                Some(429) => {
                                    counts.throttled += 1;
                                    if attempt + 1 == TRIES {
                                        counts.gave_up += 1;
                                    }
                                }
                                _ => {
                                    counts.other.push(format!("{status:?}: {body}"));
                                    return;
                                }
                            }
                            drop(counts);
                            let ceiling =
                                Duration::from_millis(50 << attempt).min(Duration::from_secs(1));
                            tokio::time::sleep(jitter(&mut random, ceiling)).await;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(120), task).await;
        }
    });
    let took = started.elapsed();
    assert!(pause.join().is_ok(), "the pause");
    let peak = peak_rss_mib(webhook.child.id());
    // reqwest reads the answer itself: the latency is as the load generator saw it, the TLS
    // handshakes of 1,000 new connections included.
    let tally = runtime.block_on(async { std::mem::take(&mut *tally.lock().await) });
    let flood = Flood {
        clients: REVIEWERS,
        calls_per_client: REVIEWS_EACH,
        requests: Vec::new(),
        throttled: |status, _| status == 429,
    };
    tally.report_and_check("webhook", &flood, took, (before, peak));
    let (_, metrics) = webhook.get("/metrics");
    assert!(
        metrics.contains("kind=\"overloaded\""),
        "the webhook counts what it shed"
    );
}
