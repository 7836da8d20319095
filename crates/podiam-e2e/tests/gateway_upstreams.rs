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
//! The scripts are in `py/`; each prints what it checked.

use podiam_e2e::{ClientEnv, Server, Upstream, start_gateway, start_logged_upstream};

/// Runs `script` against a fresh server, `upstream` and gateway; returns what it printed.
fn run(upstream: Upstream, script: &str, extra: &[&str]) -> String {
    let server = Server::start();
    let dir = server.dir().join("gateway-test");
    let dynamodb = start_logged_upstream(upstream, &dir);
    let gateway = start_gateway(&server, &dynamodb.url, &dir);
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
    let output = ClientEnv::root(&server).python(script, &args).ok();
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
