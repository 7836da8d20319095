//! Speed targets of the policy engine (numbers go to BENCHMARKS.md):
//! * a one-statement trust policy with two `StringEquals` conditions: ≤ 500 ns per decision;
//! * a 10-statement identity policy with wildcards and conditions: ≤ 2 µs per decision;
//! * parsing a 2 KB policy: ≤ 20 µs.

#![expect(clippy::expect_used, reason = "benchmark fixtures are constants")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use podiam_policy::{Context, Decision, Policy, PolicySet, Principal, Request};

const ISSUER: &str = "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";

/// One statement, two `StringEquals` conditions: the IRSA trust policy of the workshop.
const TRUST: &str = include_str!("data/trust-2-conditions.json");
/// Ten statements: wildcards in actions and resources, conditions of several families, and
/// the matching statement last so that every statement is examined.
const IDENTITY: &str = include_str!("data/identity-10-statements.json");
/// 2,128 bytes of policy.
const TWO_KB: &str = include_str!("data/2kb.json");

fn benches(c: &mut Criterion) {
    let trust = Policy::parse(TRUST).expect("trust policy parses");
    let trust_set = PolicySet {
        resource: Some(&trust),
        ..PolicySet::default()
    };
    let assume = Request::new("sts:AssumeRoleWithWebIdentity")
        .principal(Principal::Federated(format!(
            "arn:aws:iam::637423329338:oidc-provider/{ISSUER}"
        )))
        .context(
            Context::new()
                .with(
                    &format!("{ISSUER}:sub"),
                    "system:serviceaccount:carts:carts",
                )
                .with(&format!("{ISSUER}:aud"), "sts.amazonaws.com")
                .with("aws:SourceIp", "10.42.0.17"),
        );
    assert_eq!(trust_set.evaluate(&assume), Decision::Allow);

    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    group.bench_function("trust_policy_2_conditions", |b| {
        b.iter(|| black_box(&trust_set).evaluate(black_box(&assume)));
    });

    let identity = Policy::parse(IDENTITY).expect("identity policy parses");
    let identity_set = PolicySet {
        identity: vec![&identity],
        ..PolicySet::default()
    };
    let put = Request::new("dynamodb:PutItem")
        .principal(
            "arn:aws:sts::637423329338:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-works-carts-abc"
                .parse()
                .expect("principal parses"),
        )
        .resource("arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts")
        .context(
            Context::new()
                .with("aws:RequestedRegion", "eu-central-1")
                .with("aws:SecureTransport", "true")
                .with("aws:SourceIp", "10.42.0.17")
                .with("aws:PrincipalTag/kubernetes-namespace", "carts")
                .with("aws:PrincipalTag/team", "shop"),
        );
    assert_eq!(identity_set.evaluate(&put), Decision::Allow);
    group.bench_function("identity_policy_10_statements", |b| {
        b.iter(|| black_box(&identity_set).evaluate(black_box(&put)));
    });
    group.bench_function("identity_policy_10_statements_explain", |b| {
        b.iter(|| black_box(&identity_set).explain(black_box(&put)));
    });

    group.throughput(Throughput::Bytes(TWO_KB.len() as u64));
    group.bench_function("parse_2kb_policy", |b| {
        b.iter(|| Policy::parse(black_box(TWO_KB)));
    });

    let pathological = format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":{{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\",\"Condition\":{{\"StringLike\":{{\"s3:prefix\":\"{}b\"}}}}}}}}",
        "*a".repeat(200)
    );
    let wild = Policy::parse(&pathological).expect("parses");
    let long =
        Request::new("s3:GetObject").context(Context::new().with("s3:prefix", "a".repeat(4096)));
    group.throughput(Throughput::Elements(1));
    group.bench_function("wildcard_200_stars_vs_4kb", |b| {
        b.iter(|| black_box(&wild).evaluate(black_box(&long)));
    });
    group.finish();
}

criterion_group!(policy, benches);
criterion_main!(policy);
