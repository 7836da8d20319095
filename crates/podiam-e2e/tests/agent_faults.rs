//! The node agent when a server replica or its own permissions misbehave (issue 17): a replica
//! that is SIGSTOPped (its kernel still accepts connections, nothing answers) costs a new pod's
//! first credentials the hedge delay, not the SDK's timeout, and the replica is skipped after;
//! an agent whose credentials lack `eks:DescribeCluster` (so it cannot fetch the cluster's
//! token keys) still serves pods, EKS Auth verifying their tokens, and says so once.
//!
//! The first test runs two replicas over etcd, which must be installed (as for
//! `etcd_faults.rs`).

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside the tests: a failed step stops the test"
)]

use std::process::Command;
use std::time::{Duration, Instant};

use podiam_e2e::{AgentProcess, ClientEnv, EtcdCluster, Server, http_get, pod_identity_token};

/// What a new pod may wait for its first credentials with a replica stopped.
const FIRST_CREDENTIALS_BOUND: Duration = Duration::from_millis(1500);

/// SIGSTOPs a process and SIGCONTs it when dropped (a panicking test included), so that it can
/// then be stopped and reaped like any other.
struct Stopped(u32);

impl Stopped {
    fn stop(pid: u32) -> Self {
        let ok = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -STOP {pid}");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn a_stopped_replica_costs_a_new_pod_the_hedge_delay_and_is_then_skipped() {
    let cluster = EtcdCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let kek = EtcdCluster::write_kek(dir.path());
    let a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let root = ClientEnv::root(&a);
    let keys = podiam_e2e::pod_identity_node(
        &root,
        r#"["eks-auth:AssumeRoleForPodIdentity","eks:DescribeCluster"]"#,
    );
    let pods: Vec<String> = ["cached", "new-1", "new-2", "new-3"]
        .iter()
        .map(|pod| pod_identity_token(&root, "app", pod))
        .collect();
    let agent = AgentProcess::start(&format!("{},{}", a.endpoint(), b.endpoint()), &keys, &[]);

    // Replica A answers first while it runs.
    let (status, body, _) = agent.credentials(&pods[0]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        agent.metric("podiam_agent_upstream_hedged_total"),
        Some(0.0)
    );

    // A stops: its kernel still accepts connections and takes requests, nothing answers.
    let stopped = Stopped::stop(a.pid());
    let (status, body, took) = agent.credentials(&pods[1]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"AccessKeyId\":\"ASIA"), "{body}");
    eprintln!("a new pod's first credentials with replica A stopped: {took:?}");
    assert!(
        took <= FIRST_CREDENTIALS_BOUND,
        "a new pod waited {took:?} for its first credentials with a replica stopped"
    );
    assert_eq!(
        agent.metric("podiam_agent_upstream_hedged_total"),
        Some(1.0)
    );

    // The next new pod goes to B at once: it answered last, and A's circuit opens once its
    // attempt times out (2 s), so A is skipped rather than hedged past.
    let (status, body, took) = agent.credentials(&pods[2]);
    assert_eq!(status, 200, "{body}");
    eprintln!("the second new pod's credentials: {took:?}");
    assert!(took <= FIRST_CREDENTIALS_BOUND, "{took:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.metric("podiam_agent_upstream_open_circuits") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "A's circuit did not open:\n{}",
            agent.process.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body, took) = agent.credentials(&pods[3]);
    assert_eq!(status, 200, "{body}");
    eprintln!("a third new pod's credentials, A's circuit open: {took:?}");
    assert!(took <= FIRST_CREDENTIALS_BOUND, "{took:?}");
    assert_eq!(
        agent.metric("podiam_agent_upstream_hedged_total"),
        Some(1.0),
        "nothing hedged to a replica whose circuit is open"
    );
    // The cached pod is unaffected.
    let (status, _, took) = agent.credentials(&pods[0]);
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert!(
        agent
            .process
            .output()
            .contains("the endpoint did not answer; asking the others first for a while"),
        "{}",
        agent.process.output()
    );
    drop(stopped);
}

#[test]
fn an_agent_without_describe_cluster_serves_pods_and_warns_once() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let keys = podiam_e2e::pod_identity_node(&root, r#"["eks-auth:AssumeRoleForPodIdentity"]"#);
    let agent = AgentProcess::start(&server.endpoint(), &keys, &[]);
    let (status, ready) = http_get(agent.probes, "/readyz", None);
    assert_eq!((status, ready.as_str()), (200, "ready\n"));

    let tokens = [
        pod_identity_token(&root, "app", "web-1"),
        pod_identity_token(&root, "app", "web-2"),
    ];
    for token in &tokens {
        let (status, body, _) = agent.credentials(token);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"AccessKeyId\":\"ASIA"), "{body}");
        // Accepted by EKS Auth once, the token is served from the cache after.
        let (status, again, _) = agent.credentials(token);
        assert_eq!((status, &again), (200, &body));
    }
    assert_eq!(agent.metric("podiam_agent_upstream_calls_total"), Some(2.0));
    assert_eq!(agent.metric("podiam_agent_token_keys_loaded"), Some(0.0));
    // web-1's claims under web-2's signature: the agent cannot tell without the keys, EKS Auth
    // refuses it, and web-1's cached credentials are not served for it.
    let [web1, web2] = &tokens;
    let (claims, _) = web1.rsplit_once('.').unwrap();
    let (_, signature) = web2.rsplit_once('.').unwrap();
    let forged = format!("{claims}.{signature}");
    let (status, body, _) = agent.credentials(&forged);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("(InvalidTokenException)"), "{body}");

    let output = agent.process.output();
    let warnings: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("lack eks:DescribeCluster"))
        .collect();
    assert_eq!(warnings.len(), 1, "{output}");
    let warning = warnings.first().copied().unwrap_or_default();
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("AccessDeniedException"), "{warning}");
}
