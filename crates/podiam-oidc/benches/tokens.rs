//! RS256 verification of a service-account token, against the bare signature check it wraps
//! (target: within 1.3×), and ES256 for comparison.

#![expect(clippy::unwrap_used, reason = "benchmark fixtures")]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use podiam_crypto::{KeyKind, SeededRng, SigningKey, VerifyingKey};
use podiam_oidc::{Issuer, KeySet, ObjectRef, TokenRequest, Verifier};
use time::OffsetDateTime;

const ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";

fn benches(c: &mut Criterion) {
    let now = OffsetDateTime::from_unix_timestamp(1_714_564_800).unwrap();
    let request = TokenRequest {
        namespace: "carts".into(),
        service_account: ObjectRef {
            name: "carts".into(),
            uid: "2a3b4c5d-0000-4000-8000-000000000001".into(),
        },
        audiences: vec!["sts.amazonaws.com".into()],
        pod: Some(ObjectRef {
            name: "carts-7d8f9c6b5-abcde".into(),
            uid: "1f2e3d4c-0000-4000-8000-000000000002".into(),
        }),
        node: Some(ObjectRef {
            name: "ip-10-42-0-1.eu-central-1.compute.internal".into(),
            uid: "0d1e2f3a-0000-4000-8000-000000000003".into(),
        }),
        lifetime: Duration::from_secs(86_400),
        warn_after: None,
    };
    let mut group = c.benchmark_group("token");
    for (name, kind) in [("rs256", KeyKind::Rsa2048), ("es256", KeyKind::EcP256)] {
        let issuer = Issuer::new(ISSUER, SigningKey::generate(kind).unwrap()).unwrap();
        let token = issuer
            .mint(&request, now, &SeededRng::new(b"bench"))
            .unwrap();
        let mut keys = KeySet::new();
        let key = VerifyingKey::from_jwk(&issuer.key().verifying_key().to_jwk()).unwrap();
        keys.insert(VerifyingKey::from_jwk(&key.to_jwk()).unwrap());
        let verifier = Verifier::new(ISSUER, &["sts.amazonaws.com"]);
        verifier.verify(&token, &keys, now).unwrap();

        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        group.bench_function(format!("{name}_bare_signature_verify"), |b| {
            b.iter(|| {
                key.verify(black_box(input.as_bytes()), black_box(&signature))
                    .unwrap()
            });
        });
        group.bench_function(format!("{name}_token_verify"), |b| {
            b.iter(|| verifier.verify(black_box(&token), &keys, now).unwrap());
        });
        group.bench_function(format!("{name}_token_mint"), |b| {
            let rng = SeededRng::new(b"mint");
            b.iter(|| issuer.mint(black_box(&request), now, &rng).unwrap());
        });
    }
    group.finish();
}

criterion_group!(tokens, benches);
criterion_main!(tokens);
