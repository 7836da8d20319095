//! Faults under load: two replicas over a three-member etcd cluster while a client writes and
//! reads through both with the SDK's own retries. A follower is killed and brought back, then
//! the leader is killed (an election) and brought back: no call fails after its retries, every
//! acknowledged write is there afterwards on both replicas, and the restarted members catch up.

use std::time::Duration;

use podiam_e2e::{ClientEnv, EtcdCluster, Server, ServerOptions};

fn replica(cluster: &EtcdCluster, kek: &std::path::Path) -> Server {
    Server::start_with(&ServerOptions {
        args: vec![
            "--store".to_owned(),
            cluster.store_url(),
            "--kek-file".to_owned(),
            kek.display().to_string(),
        ],
        ..ServerOptions::default()
    })
}

#[test]
fn etcd_member_and_leader_failures_lose_no_acknowledged_write() {
    let mut cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let kek = dir.path().join("kek");
    std::fs::write(&kek, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
    let a = replica(&cluster, &kek);
    let b = replica(&cluster, &kek);
    let (id, secret) = a.root_keys();
    let root = ClientEnv::keys(&a, &id, &secret, None).set("AWS_MAX_ATTEMPTS", "5");
    let endpoints = format!("{},{}", a.endpoint(), b.endpoint());

    let load = std::thread::spawn({
        let root = root.clone();
        move || root.python("replica_load.py", &[&endpoints, "14"])
    });
    let leader = cluster.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill(follower);
    std::thread::sleep(Duration::from_secs(3));
    cluster.restart(follower);
    std::thread::sleep(Duration::from_secs(2));
    let leader = cluster.leader().expect("a leader");
    cluster.kill(leader);
    std::thread::sleep(Duration::from_secs(3));
    let new_leader = cluster.leader().expect("a new leader after the election");
    assert_ne!(new_leader, leader);
    cluster.restart(leader);

    let report = load.join().unwrap().json();
    let failed = report["failed"].as_array().unwrap();
    assert!(
        failed.is_empty(),
        "calls failed after their retries: {failed:#?}"
    );
    let acked: Vec<String> = report["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    eprintln!(
        "{} writes acknowledged and {} reads answered through two member failures",
        acked.len(),
        report["reads"]
    );
    assert!(acked.len() >= 10, "too little load: {report}");
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
