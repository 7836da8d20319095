//! The store-scale bench's small version, as a test of correctness, not speed: two replicas
//! over a three-member etcd cluster; `bench/scale/load.py` loads 5,000 roles and 5,000 pod
//! identity associations over 100 clusters through replica A; replica B pages through all of
//! them with markers (`bench/scale/measure.py paging`) and serves roles assumed with tokens of
//! the loaded issuers (`measure.py requests`); then B catches up after 2,000 more writes to A
//! (`measure.py catch-up`).

#![expect(
    clippy::expect_used,
    reason = "a helper outside the test: a failed step stops the test"
)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use podiam_e2e::{EtcdCluster, podiam_bin, venv, workspace};

const ROLES: &str = "5000";

/// Runs one of the bench's Python scripts; fails the test with its output unless it succeeds.
fn bench_script(script: &str, args: &[&str]) -> String {
    let started = Instant::now();
    let output = Command::new(venv().join("bin/python"))
        .arg(workspace().join("bench/scale").join(script))
        .args(args)
        .output()
        .expect("run the bench script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    eprintln!("{script} {args:?} in {:?}:\n{stdout}", started.elapsed());
    stdout
}

fn text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

#[test]
fn five_thousand_roles_page_and_replicate_over_etcd() {
    let cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let kek = EtcdCluster::write_kek(dir.path());
    let a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let (a_url, b_url) = (a.endpoint(), b.endpoint());
    let data = text(&a.data_dir());
    let keys = text(&dir.path().join("keys"));
    let podiam = text(&podiam_bin());

    let loaded = bench_script(
        "load.py",
        &[
            &a_url,
            &data,
            &keys,
            ROLES,
            "--threads",
            "8",
            "--podiam",
            &podiam,
        ],
    );
    assert!(loaded.contains("(0 failed)"), "{loaded}");

    // B took none of the writes: everything it lists came through its watch.
    let paged = bench_script("measure.py", &["paging", &b_url, &data, &keys, ROLES]);
    assert!(
        paged.contains("ListRoles page of 100 (5000 roles)"),
        "{paged}"
    );
    assert!(paged.contains("(5000 in all)"), "{paged}");

    // Roles drawn from the whole set are assumed on B with tokens of the loaded issuers, by
    // AssumeRoleWithWebIdentity and by AssumeRoleForPodIdentity.
    let requests = text(&dir.path().join("requests"));
    bench_script(
        "measure.py",
        &[
            "requests", &b_url, &data, &keys, ROLES, &requests, "--sample", "20",
        ],
    );

    let caught_up = bench_script(
        "measure.py",
        &[
            "catch-up",
            &a_url,
            &data,
            &keys,
            ROLES,
            &b_url,
            "--catch-up-writes",
            "2000",
            "--threads",
            "8",
        ],
    );
    assert!(
        caught_up.contains("the replica served the marker"),
        "{caught_up}"
    );
}
