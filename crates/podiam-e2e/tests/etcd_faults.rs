//! Faults under load: two replicas over a three-member etcd cluster while a client writes and
//! reads through both with the SDK's retries off (one attempt per call), so what shows is the
//! server's own behaviour (issue 17). A follower is killed and brought back, then the leader is
//! killed (an election) and brought back: no call fails, even during the election (the store
//! fails over and waits within its deadline), every acknowledged write is there afterwards on
//! both replicas, and the restarted members catch up. A replica also starts, and is ready,
//! while a member is down.

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside the tests: a failed step stops the test"
)]

use std::time::Duration;

use podiam_e2e::{ClientEnv, EtcdCluster, Server};

#[test]
fn etcd_member_and_leader_failures_lose_no_acknowledged_write() {
    let mut cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let kek = EtcdCluster::write_kek(dir.path());
    let a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let (id, secret) = a.root_keys();
    let root = ClientEnv::keys(&a, &id, &secret, None).set("AWS_MAX_ATTEMPTS", "1");
    let endpoints = format!("{},{}", a.endpoint(), b.endpoint());

    let load = std::thread::spawn({
        let root = root.clone();
        move || root.python("replica_load.py", &[&endpoints, "18", "1"])
    });
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let mut faults: Vec<(&str, f64)> = Vec::new();
    let leader = cluster.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    std::thread::sleep(Duration::from_secs(2));
    faults.push(("a follower killed", now()));
    cluster.kill(follower);
    std::thread::sleep(Duration::from_secs(3));
    cluster.restart(follower);
    std::thread::sleep(Duration::from_secs(2));
    let leader = cluster.leader().expect("a leader");
    let hung = (leader + 2) % 3;
    faults.push(("a follower hung (SIGSTOP)", now()));
    cluster.pause(hung, true);
    std::thread::sleep(Duration::from_secs(3));
    cluster.pause(hung, false);
    std::thread::sleep(Duration::from_secs(2));
    let leader = cluster.leader().expect("a leader");
    faults.push(("the leader killed (an election)", now()));
    cluster.kill(leader);
    std::thread::sleep(Duration::from_secs(3));
    let new_leader = cluster.leader().expect("a new leader after the election");
    assert_ne!(new_leader, leader);
    cluster.restart(leader);
    let report = load.join().unwrap().json();
    let failed = report["failed"].as_array().unwrap();
    assert!(failed.is_empty(), "calls failed: {failed:#?}");
    let acked: Vec<String> = report["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    eprintln!(
        "{} writes acknowledged and {} reads answered through two member failures, one attempt each: {} calls, p50 {} ms, p99 {} ms, max {} ms",
        acked.len(),
        report["reads"],
        report["calls"],
        report["p50_ms"],
        report["p99_ms"],
        report["max_ms"]
    );
    assert!(acked.len() >= 10, "too little load: {report}");
    print_fault_table(&faults, &report["samples"]);
    assert!(report["reads"].as_u64().unwrap() >= 20, "{report}");

    // Every acknowledged write is on both replicas.
    for server in [&a, &b] {
        let users = ClientEnv::keys(server, &id, &secret, None)
            .aws(&["iam", "list-users", "--query", "Users[].UserName"])
            .json();
        let listed: Vec<&str> = users
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for name in &acked {
            assert!(
                listed.contains(&name.as_str()),
                "{name} is missing from {}",
                server.endpoint()
            );
        }
    }

    // The members that were down catch up with the others.
    cluster.wait_healthy(Duration::from_secs(20));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let revisions: Vec<Option<u64>> = (0..3).map(|i| cluster.revision_of(i)).collect();
        if revisions.iter().all(|r| r.is_some() && *r == revisions[0]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the members did not converge: {revisions:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// For each fault, the calls that started in the 3 s after it: how many, how many failed, their
/// p99 and slowest, and when the calls were fast again (the end of the last call slower than
/// 50 ms, after the fault). A row of BENCHMARKS.md's faults table.
fn print_fault_table(faults: &[(&str, f64)], samples: &serde_json::Value) {
    let samples: Vec<(f64, f64, bool)> = samples
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|s| {
                    Some((
                        s.get(0)?.as_f64()?,
                        s.get(1)?.as_f64()?,
                        s.get(2)?.as_bool()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    eprintln!("| fault | calls | failed | p99 | slowest | fast again after |");
    eprintln!("|---|---|---|---|---|---|");
    for (name, at) in faults {
        let mut window: Vec<&(f64, f64, bool)> = samples
            .iter()
            .filter(|(start, _, _)| *start >= *at && *start < at + 3.0)
            .collect();
        let failed = window.iter().filter(|(_, _, ok)| !ok).count();
        let recovered = window
            .iter()
            .filter(|(_, ms, _)| *ms > 50.0)
            .map(|(start, ms, _)| start + ms / 1000.0 - at)
            .fold(0.0_f64, f64::max);
        window.sort_by(|x, y| x.1.total_cmp(&y.1));
        let p99 = window
            .get((window.len() * 99 / 100).min(window.len().saturating_sub(1)))
            .map_or(0.0, |s| s.1);
        let slowest = window.last().map_or(0.0, |s| s.1);
        eprintln!(
            "| {name} | {} | {failed} | {p99:.1} ms | {slowest:.1} ms | {:.2} s |",
            window.len(),
            recovered
        );
    }
}

/// A replica started while a member is down is ready at once: the store skips the member.
#[test]
fn a_replica_starts_while_a_member_is_down() {
    let mut cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let kek = EtcdCluster::write_kek(dir.path());
    // The first member in the store URL is the one that is down.
    cluster.kill(0);
    let started = std::time::Instant::now();
    let replica = cluster.replica(&kek);
    let ready = started.elapsed();
    let (id, secret) = replica.root_keys();
    ClientEnv::keys(&replica, &id, &secret, None)
        .set("AWS_MAX_ATTEMPTS", "1")
        .aws(&["iam", "create-user", "--user-name", "while-down"])
        .ok();
    eprintln!("ready in {ready:?} with member 0 of 3 down");
    assert!(ready < Duration::from_secs(5), "ready after {ready:?}");
}

/// `kill -9` of a replica in the middle of a write loop: every write it acknowledged is in
/// etcd, served by the other replica and by the killed one once restarted.
#[test]
fn kill_9_of_a_replica_loses_no_acknowledged_write() {
    let cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let kek = EtcdCluster::write_kek(dir.path());
    let mut a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let (id, secret) = a.root_keys();
    let root = ClientEnv::keys(&a, &id, &secret, None).set("AWS_MAX_ATTEMPTS", "1");
    let load = std::thread::spawn({
        let root = root.clone();
        let endpoint = a.endpoint();
        move || root.python("replica_load.py", &[&endpoint, "4", "1"])
    });
    std::thread::sleep(Duration::from_secs(2));
    a.kill9();
    let report = load.join().unwrap().json();
    let acked: Vec<String> = report["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(
        acked.len() >= 10,
        "too little load before the kill: {report}"
    );
    a.restart(&podiam_e2e::ServerOptions {
        args: vec![
            "--store".to_owned(),
            cluster.store_url(),
            "--kek-file".to_owned(),
            kek.display().to_string(),
        ],
        ..podiam_e2e::ServerOptions::default()
    });
    for server in [&b, &a] {
        let listed = ClientEnv::keys(server, &id, &secret, None)
            .aws(&["iam", "list-users", "--query", "Users[].UserName"])
            .json();
        let listed: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for name in &acked {
            assert!(
                listed.contains(&name.as_str()),
                "{name} was acknowledged but is missing from {}",
                server.endpoint()
            );
        }
    }
    eprintln!(
        "{} writes acknowledged before kill -9, each found on both replicas",
        acked.len()
    );
}

fn id_of(server: &Server) -> String {
    server.root_keys().0
}

fn secret_of(server: &Server) -> String {
    server.root_keys().1
}

/// `GET /v1/credentials` of the agent on `port` with a pod's token: status and body.
fn credentials(port: u16, token: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: {token}"))
        .arg(format!("http://127.0.0.1:{port}/v1/credentials"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_owned(), body.to_owned())
}

#[test]
fn the_agent_fails_over_when_a_server_replica_dies() {
    let cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let kek = EtcdCluster::write_kek(dir.path());
    let mut a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let root = ClientEnv::root(&a);
    let podiam = podiam_e2e::podiam_bin();
    let (key_id, secret) = podiam_e2e::pod_identity_node(
        &root,
        r#"["eks-auth:AssumeRoleForPodIdentity","eks:DescribeCluster"]"#,
    );
    let token = |pod: &str| podiam_e2e::pod_identity_token(&root, "app", pod);
    let (first, second) = (token("first"), token("second"));

    let mut command = std::process::Command::new(&podiam);
    command
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_REGION", "us-east-1")
        .args(["agent", "--cluster-name", "fleet", "--node-name", "node-1"])
        .args(["--endpoint", &format!("{},{}", a.endpoint(), b.endpoint())])
        // Port 0 everywhere: the agent binds and reports what it got (no port is chosen and
        // then raced for).
        .args(["--bind-hosts", "127.0.0.1", "--port", "0"])
        .args(["--probe-port", "0"])
        .args(["--metrics-address", "127.0.0.1", "--metrics-port", "0"]);
    let (_agent, ready) = podiam_e2e::Process::start("podiam agent", command, |line| {
        line.starts_with("podiam agent: ").then(|| line.to_owned())
    });
    let port: u16 = ready
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {ready:?}"));

    let (status, body) = credentials(port, &first);
    assert_eq!(status, "200", "{body}");
    // The issuer's key rotates through replica B: a token signed by the new key (minted through
    // A, which follows B's write) is accepted by the agent, which fetches the new JWKS.
    let rotated = ClientEnv::keys(&b, &id_of(&a), &secret_of(&a), None)
        .command_of(
            &podiam,
            &["keys", "rotate", "--kind", "issuer", "--cluster", "fleet"],
        )
        .ok();
    assert!(
        rotated.contains("Rotated the issuer key of cluster fleet"),
        "{rotated}"
    );
    let third = token("third");
    let (status, body) = credentials(port, &third);
    assert_eq!(status, "200", "a token of the new key: {body}");
    // The first replica goes away; a pod that needs new credentials gets them from the other.
    a.stop();
    let (status, body) = credentials(port, &second);
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("\"AccessKeyId\":\"ASIA"), "{body}");
    // And the cached pod is still served.
    assert_eq!(credentials(port, &first).0, "200");
}
