//! Arbitrary Authorization headers, queries, paths and dates: never a panic, never an
//! acceptance without the secret.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use podiam_crypto::{Secret, SystemRng, Rng};
use podiam_sigv4::{LookupError, SecretLookup, SignedRequest, Verifier, parse_amz_date};

struct RandomSecret(String);

impl SecretLookup for RandomSecret {
    type Identity = ();
    fn lookup(&self, _: &str, _: Option<&str>) -> Result<(Secret<String>, ()), LookupError> {
        Ok((Secret::new(self.0.clone()), ()))
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let (auth, query, path, date, body) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    if let Ok(v) = HeaderValue::from_str(auth) {
        headers.insert("authorization", v);
    }
    if let Ok(v) = HeaderValue::from_str(date) {
        headers.insert("x-amz-date", v);
    }
    let mut secret = [0u8; 16];
    let _ = SystemRng.fill(&mut secret);
    let lookup = RandomSecret(secret.iter().map(|b| format!("{b:02x}")).collect());
    let request = SignedRequest { method: "POST", path, query, headers: &headers, body: body.as_bytes() };
    let Some(now) = parse_amz_date("20261126T174722Z") else { return };
    assert!(Verifier::new("sts").verify(&request, &lookup, now).is_err());
});
