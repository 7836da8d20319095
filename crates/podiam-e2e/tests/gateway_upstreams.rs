//! The DynamoDB gateway as an enforcement point that cannot be walked around, against two
//! upstreams that log what they executed: moto (which also reads operations from query strings
//! and form bodies) and dynalite (JSON only).
//!
//! - every request of issue 14's attack table, and the ones that held up, is refused with
//!   DynamoDB's error, and the upstream's log shows that nothing reached it;
//! - AWS's documented fine-grained access examples (per-user items with
//!   `dynamodb:LeadingKeys`, attribute-level access with `dynamodb:Attributes` and
//!   `dynamodb:Select`) allow and deny as documented, on both upstreams;
//! - a differential run of generated requests, valid and hostile: for each forwarded one, the
//!   operation, tables and partition keys the gateway authorized (its audit line) equal what
//!   the upstream executed (its log).
//!
//! Each runs with the gateway asking the server, and on moto also with the gateway deciding
//! itself over the server's etcd store (`--store`, issue 18): the same suite, unchanged.
//!
//! The scripts are in `py/`; each prints what it checked.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use podiam_e2e::{
    ClientEnv, Decide, EtcdCluster, Server, Upstream, start_gateway_deciding, start_logged_upstream,
};

/// Runs `script` against a fresh server, `upstream` and gateway (asking the server); returns
/// what it printed.
fn run(upstream: Upstream, script: &str, extra: &[&str]) -> String {
    let server = Server::start();
    run_with(&server, upstream, script, extra, Decide::Remote)
}

/// The same, with a server over a one-member etcd cluster and the gateway following its store.
fn run_locally(upstream: Upstream, script: &str, extra: &[&str]) -> String {
    let cluster = EtcdCluster::start(1);
    let keys = tempfile::tempdir().expect("a directory");
    let kek = EtcdCluster::write_kek(keys.path());
    let server = cluster.replica(&kek);
    let store = cluster.store_url();
    let decide = Decide::Locally {
        store: &store,
        kek: &kek,
    };
    run_with(&server, upstream, script, extra, decide)
}

fn run_with(
    server: &Server,
    upstream: Upstream,
    script: &str,
    extra: &[&str],
    decide: Decide<'_>,
) -> String {
    let dir = server.dir().join("gateway-test");
    let dynamodb = start_logged_upstream(upstream, &dir);
    let gateway = start_gateway_deciding(server, &dynamodb.url, &dir, decide);
    let log = dynamodb.log.display().to_string();
    let audit = gateway.log.display().to_string();
    let mut args = vec![
        "--gateway",
        &gateway.url,
        "--upstream",
        &dynamodb.url,
        "--upstream-log",
        &log,
        "--audit-log",
        &audit,
        "--upstream-kind",
        upstream.name(),
    ];
    args.extend_from_slice(extra);
    let output = ClientEnv::root(server).python(script, &args).ok();
    println!("{output}");
    output
}

#[test]
fn every_walkaround_is_refused_before_it_reaches_moto() {
    run(Upstream::Moto, "gateway_walkarounds.py", &[]);
}

#[test]
fn every_walkaround_is_refused_before_it_reaches_dynalite() {
    run(Upstream::Dynalite, "gateway_walkarounds.py", &[]);
}

#[test]
fn fine_grained_access_examples_on_moto() {
    run(Upstream::Moto, "gateway_fine_grained.py", &[]);
}

#[test]
fn fine_grained_access_examples_on_dynalite() {
    run(Upstream::Dynalite, "gateway_fine_grained.py", &[]);
}

#[test]
fn what_the_gateway_authorized_is_what_moto_ran() {
    run(
        Upstream::Moto,
        "gateway_differential.py",
        &["--requests", "2000", "--seed", "14"],
    );
}

#[test]
fn what_the_gateway_authorized_is_what_dynalite_ran() {
    run(
        Upstream::Dynalite,
        "gateway_differential.py",
        &["--requests", "1000", "--seed", "15"],
    );
}

#[test]
fn every_walkaround_is_refused_before_it_reaches_moto_deciding_locally() {
    run_locally(Upstream::Moto, "gateway_walkarounds.py", &[]);
}

#[test]
fn fine_grained_access_examples_on_moto_deciding_locally() {
    run_locally(Upstream::Moto, "gateway_fine_grained.py", &[]);
}

#[test]
fn what_the_gateway_authorized_is_what_moto_ran_deciding_locally() {
    run_locally(
        Upstream::Moto,
        "gateway_differential.py",
        &["--requests", "2000", "--seed", "18"],
    );
}

/// A permission revoked under load is enforced within a second by a gateway that decides
/// itself (it follows the store's watch), and at once by one that asks the server.
#[test]
fn a_revoked_permission_is_enforced_within_a_second_deciding_locally() {
    run_locally(Upstream::Moto, "gateway_revocation.py", &[]);
}

#[test]
fn a_revoked_permission_is_enforced_within_a_second_asking_the_server() {
    run(Upstream::Moto, "gateway_revocation.py", &[]);
}
