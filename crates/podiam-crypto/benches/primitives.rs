//! The primitives under the token and session numbers, for reference.

#![expect(clippy::unwrap_used, reason = "benchmark fixtures")]

use std::hint::black_box;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use podiam_crypto::{AeadKey, KeyId, KeyKind, Keyring, SigningKey, SystemRng};

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("crypto");
    let key = SigningKey::generate(KeyKind::Rsa2048).unwrap();
    let message = vec![b'x'; 900];
    let sig = key.sign(&message).unwrap();
    let spki = key.verifying_key().spki_der().to_vec();
    group.bench_function("rs256_verify_unparsed_key", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, black_box(&spki))
                .verify(black_box(&message), black_box(&sig))
                .unwrap();
        });
    });
    group.bench_function("rs256_verify_parsed_key", |b| {
        b.iter(|| {
            key.verifying_key()
                .verify(black_box(&message), black_box(&sig))
                .unwrap()
        });
    });
    let keyring = Keyring::new(AeadKey::generate(KeyId(1), &SystemRng).unwrap());
    let plain = vec![7u8; 600];
    group.bench_function("aes256gcm_seal_600b", |b| {
        b.iter(|| keyring.seal(black_box(&plain), b"aad", &SystemRng).unwrap());
    });
    group.finish();
}

criterion_group!(primitives, benches);
criterion_main!(primitives);
