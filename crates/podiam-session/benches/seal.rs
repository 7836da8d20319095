//! Seal + unseal of a Pod Identity session (target: ≤ 5 µs together).

#![expect(clippy::unwrap_used, reason = "benchmark fixtures")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use podiam_crypto::{AeadKey, KeyId, Keyring, SeededRng, SystemRng};
use podiam_session::{Origin, Session, SessionDetails};

fn benches(c: &mut Criterion) {
    let cluster = "arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop";
    let details = SessionDetails {
        account: "637423329338".into(),
        role_arn: "arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-pia".into(),
        role_id: "AROAZI3SQ6VPDKN6R7U4Q".into(),
        session_name: "eks-eks-worksh-carts-7d8f-5c1e7b2a-8f3d-4c6b-9a1e-2f4d6b8c0e1a".into(),
        source_identity: None,
        tags: vec![
            ("eks-cluster-arn".into(), cluster.into()),
            ("eks-cluster-name".into(), "eks-workshop".into()),
            ("kubernetes-namespace".into(), "carts".into()),
            ("kubernetes-service-account".into(), "carts".into()),
            ("kubernetes-pod-name".into(), "carts-7d8f9c6b5-abcde".into()),
            (
                "kubernetes-pod-uid".into(),
                "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b".into(),
            ),
        ],
        transitive_tag_keys: vec![],
        policy: None,
        policy_arns: vec![],
        issued_at: 1_714_564_800,
        expires_at: 1_714_586_400,
        origin: Origin::PodIdentity {
            cluster: cluster.into(),
            association_id: "a-aihyvi9tbbw4qzkws".into(),
        },
    };
    let keyring = Keyring::new(AeadKey::generate(KeyId(1), &SeededRng::new(b"k")).unwrap());
    let (session, token) = Session::issue(details, &keyring, &SystemRng).unwrap();
    println!("pod identity session token: {} bytes", token.len());
    let mut group = c.benchmark_group("session");
    group.bench_function("seal_plus_unseal", |b| {
        b.iter(|| {
            let token = black_box(&session).seal(&keyring, &SystemRng).unwrap();
            Session::unseal(black_box(&token), &keyring).unwrap()
        });
    });
    group.bench_function("unseal", |b| {
        b.iter(|| Session::unseal(black_box(&token), &keyring).unwrap())
    });
    group.finish();
}

criterion_group!(seal, benches);
criterion_main!(seal);
