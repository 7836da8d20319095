//! Arbitrary tokens against a fixed issuer: never a panic, never an acceptance.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use podiam_crypto::{KeyKind, SigningKey, VerifyingKey};
use podiam_oidc::{KeySet, Verifier};
use time::OffsetDateTime;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = KeySet::new();
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            if let Ok(key) = SigningKey::generate(kind) {
                if let Ok(public) = VerifyingKey::from_jwk(&key.verifying_key().to_jwk()) {
                    keys.insert(public);
                }
            }
        }
        keys
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let verifier = Verifier::new("https://issuer.example", &["sts.amazonaws.com"]);
    let now = OffsetDateTime::from_unix_timestamp(1_714_564_800).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Keys are fresh on every run, so no input can carry a valid signature.
    assert!(verifier.verify(token, keys(), now).is_err());
    // The agent's early checks on the same input: decoding without a key, then the times.
    if let Ok(claims) = podiam_oidc::decode_unverified(token) {
        let _ = podiam_oidc::check_times(&claims, now, 60);
    }
});
