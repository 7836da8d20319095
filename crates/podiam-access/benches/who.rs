//! `who` over 10,000 roles and 10,000 associations (issue 21's target: ≤ 1 s).

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use podiam_access::{FindingsOptions, findings, graph, what, who};
use support::*;

/// 10,000 roles: 5,000 with Pod Identity associations (one per service account), 5,000 with
/// IRSA trusts; every tenth may write the carts table, the rest other tables. Plus 5,000 more
/// associations onto the IRSA roles' neighbours, for 10,000 associations in all.
fn world() -> World {
    let mut w = World::new();
    w.cluster("big");
    w.provider("big");
    for i in 0..5_000 {
        let table = if i % 10 == 0 {
            "carts".to_owned()
        } else {
            format!("t{i}")
        };
        let resource = format!("arn:aws:dynamodb:us-west-2:111122223333:table/{table}");
        w.role(
            &format!("pia-{i}"),
            PIA_TRUST,
            &[("p", &allow("dynamodb:PutItem", &resource))],
        );
        w.association(
            &format!("a-{i:05}"),
            "big",
            &format!("ns-{i}"),
            "app",
            &format!("pia-{i}"),
            None,
        );
        w.role(
            &format!("irsa-{i}"),
            &irsa_trust("big", &format!("system:serviceaccount:irsa-{i}:app")),
            &[("p", &allow("dynamodb:*", &resource))],
        );
        w.association(
            &format!("b-{i:05}"),
            "big",
            &format!("ns-{i}"),
            "worker",
            &format!("pia-{i}"),
            None,
        );
    }
    w
}

fn bench(c: &mut Criterion) {
    let w = world();
    let snapshot = w.snapshot();
    let carts = "arn:aws:dynamodb:us-west-2:111122223333:table/carts";
    assert_eq!(
        who(&snapshot, "dynamodb:PutItem", carts, None)
            .entries
            .len(),
        1_500
    );
    let mut group = c.benchmark_group("access");
    group.sample_size(10);
    group.bench_function("who, 10k roles, 10k associations", |b| {
        b.iter(|| who(&snapshot, "dynamodb:PutItem", carts, None));
    });
    group.bench_function("what, 10k roles", |b| {
        b.iter(|| what(&snapshot, "big", "ns-7", "app"));
    });
    group.bench_function("findings, 10k roles, 10k associations", |b| {
        b.iter(|| {
            findings(
                &snapshot,
                &FindingsOptions {
                    cluster: None,
                    unused_days: 90,
                    upstream: &|_| false,
                },
            )
        });
    });
    // The console draws a namespace's graph; the whole cluster's is the worst case it builds.
    group.bench_function("graph of the cluster, 10k roles, 10k associations", |b| {
        b.iter(|| graph(&snapshot, Some("big"), None));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
