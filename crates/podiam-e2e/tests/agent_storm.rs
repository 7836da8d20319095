//! The node agent under a renewal storm (issue 18), small and for correctness, not speed (the
//! measured version is `bench/agent/storm`): 160 pods whose credentials come due together
//! through the agent's retention window, all asking at once, with the upstream rate at 40 a
//! second and background renewals allowed far more. Every pod request is answered 200 with
//! credentials that last hours, the upstream calls in every second stay within the rate and its
//! burst (the agent's own metric, read every second), and every pod is renewed exactly once.
//!
//! The server's Pod Identity credentials last 6 h and cannot be shortened, so the retention
//! window (`--max-credential-retention-before-renewal`) is what makes them come due.

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside the tests: a failed step stops the test"
)]

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use podiam_e2e::{AgentProcess, ClientEnv, Server, pod_identity_token};

const PODS: u16 = 160;
/// `--upstream-rate`.
const RATE: u16 = 40;
/// `--upstream-burst`.
const BURST: u16 = 4;
/// `--max-credential-retention-before-renewal`: longer than the warm-up (`PODS / RATE`, 4 s).
const RETENTION: Duration = Duration::from_secs(7);
/// How long the storm may take at most: renewing every pod at the rate takes 4 s.
const STORM_BOUND: Duration = Duration::from_secs(20);

/// Seconds since the epoch of an RFC 3339 UTC time as the agent writes `Expiration`
/// (`2026-12-03T21:05:00Z`).
fn unix_seconds(rfc3339: &str) -> i64 {
    let field =
        |range: std::ops::Range<usize>| -> i64 { rfc3339.get(range).unwrap().parse().unwrap() };
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + field(11..13) * 3600 + field(14..16) * 60 + field(17..19)
}

fn now_unix() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A pod's answer: its AccessKeyId, after checking that the credentials last more than 15
/// minutes (the agent renews before that, and never serves credentials about to expire).
fn access_key(body: &str) -> String {
    let answer: serde_json::Value = serde_json::from_str(body).unwrap();
    let expiration = answer.get("Expiration").unwrap().as_str().unwrap();
    let left = unix_seconds(expiration) - now_unix();
    assert!(left > 15 * 60, "credentials expiring in {left} s: {body}");
    answer
        .get("AccessKeyId")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn metric(agent: &AgentProcess, name: &str) -> f64 {
    agent.metric(name).unwrap()
}

#[test]
fn a_renewal_storm_answers_every_pod_within_the_upstream_rate() {
    let started = Instant::now();
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let keys = podiam_e2e::pod_identity_node(
        &root,
        r#"["eks-auth:AssumeRoleForPodIdentity","eks:DescribeCluster"]"#,
    );
    // One `podiam cluster token` process per pod, eight at a time.
    let pods = usize::from(PODS);
    let tokens: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let root = &root;
                s.spawn(move || {
                    (w..pods)
                        .step_by(8)
                        .map(|i| (i, pod_identity_token(root, "app", &format!("storm-{i:03}"))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, String)> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort();
        all.into_iter().map(|(_, token)| token).collect()
    });
    assert!(tokens.iter().all(|t| t.starts_with("ey")), "{tokens:?}");
    eprintln!(
        "server, node and {PODS} tokens ready in {:?}",
        started.elapsed()
    );
    let agent = AgentProcess::start(
        &server.endpoint(),
        &keys,
        &[
            "--upstream-rate",
            &RATE.to_string(),
            "--upstream-burst",
            &BURST.to_string(),
            "--max-service-qps",
            "1000",
            "--max-cache-size",
            &PODS.to_string(),
            "--max-credential-retention-before-renewal",
            &format!("{}s", RETENTION.as_secs()),
        ],
    );

    // Warm-up: each pod's first credentials, within the rate (a 429 is retried, as SDKs do).
    let warm_start = Instant::now();
    let mut first = Vec::new();
    for token in &tokens {
        let body = loop {
            let (status, body, _) = agent.credentials(token);
            if status != 429 {
                assert_eq!(status, 200, "{body}");
                break body;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        first.push(access_key(&body));
    }
    let warmed = warm_start.elapsed();
    eprintln!("warmed {PODS} pods in {warmed:?}");
    assert!(
        warmed < RETENTION,
        "the warm-up took {warmed:?}, longer than the retention window: pods came due during it"
    );
    assert_eq!(
        metric(&agent, "podiam_agent_upstream_calls_total"),
        f64::from(PODS)
    );
    assert_eq!(metric(&agent, "podiam_agent_renewals_total"), 0.0);

    // Every pod is due once the last one's window is over; then all ask at once.
    std::thread::sleep(RETENTION + Duration::from_secs(1));
    let throttled_before = metric(&agent, "podiam_agent_throttled_total");
    let calls_before = metric(&agent, "podiam_agent_upstream_calls_total");
    let renewed: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
    let done = AtomicBool::new(false);
    let deadline = Instant::now() + STORM_BOUND;
    let mut samples = vec![(Instant::now(), calls_before)];
    let mut answers = 0_usize;
    std::thread::scope(|s| {
        let askers: Vec<_> = (0..4)
            .map(|w| {
                let (agent, tokens, first) = (&agent, &tokens, &first);
                let (renewed, done) = (&renewed, &done);
                s.spawn(move || {
                    let mut answers = 0_usize;
                    let mut i = w;
                    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let (status, body, _) = agent.credentials(&tokens[i]);
                        assert_eq!(status, 200, "a pod got an error in the storm: {body}");
                        answers += 1;
                        if access_key(&body) != first[i] {
                            renewed.lock().unwrap().insert(i);
                        }
                        i = (i + 4) % pods;
                    }
                    answers
                })
            })
            .collect();
        // The upstream calls, every second, until every pod is renewed.
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
            samples.push((
                Instant::now(),
                metric(&agent, "podiam_agent_upstream_calls_total"),
            ));
            if renewed.lock().unwrap().len() == pods {
                break;
            }
        }
        done.store(true, Ordering::SeqCst);
        answers = askers.into_iter().map(|p| p.join().unwrap()).sum();
    });
    let took = samples.last().unwrap().0 - samples[0].0;
    let per_second: Vec<f64> = samples.windows(2).map(|w| w[1].1 - w[0].1).collect();
    eprintln!(
        "storm: {answers} answers 200 in {took:?}; upstream calls per second: {per_second:?}"
    );

    assert_eq!(renewed.lock().unwrap().len(), pods, "every pod renewed");
    for pair in samples.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        let bound = f64::from(RATE) * (t1 - t0).as_secs_f64() + f64::from(BURST);
        assert!(
            c1 - c0 <= bound,
            "{} upstream calls in {:?}, over the rate ({bound:.0}): {per_second:?}",
            c1 - c0,
            t1 - t0
        );
    }
    // Exactly one renewal a pod, and nothing else went upstream: no pod was refused.
    assert_eq!(
        metric(&agent, "podiam_agent_upstream_calls_total") - calls_before,
        f64::from(PODS)
    );
    assert_eq!(
        metric(&agent, "podiam_agent_renewals_total"),
        f64::from(PODS)
    );
    assert_eq!(
        metric(&agent, "podiam_agent_throttled_total"),
        throttled_before
    );
    assert_eq!(metric(&agent, "podiam_agent_upstream_errors_total"), 0.0);
}
