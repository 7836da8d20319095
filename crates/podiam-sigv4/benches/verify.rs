//! SigV4 verification of a typical STS form POST, body hashing included (target: ≤ 10 µs).

#![expect(clippy::unwrap_used, reason = "benchmark fixtures")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use podiam_crypto::Secret;
use podiam_sigv4::{
    LookupError, SecretLookup, SignedRequest, SigningParams, Verifier, parse_amz_date, sign,
};

struct OneKey;

impl SecretLookup for OneKey {
    type Identity = ();
    fn lookup(&self, _: &str, _: Option<&str>) -> Result<(Secret<String>, ()), LookupError> {
        Ok((
            Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()),
            (),
        ))
    }
}

fn benches(c: &mut Criterion) {
    let now = parse_amz_date("20261126T174722Z").unwrap();
    let body = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A637423329338%3Arole%2Feks-workshop-carts-dynamo-irsa&RoleSessionName=carts-session&DurationSeconds=3600";
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    let params = SigningParams {
        access_key_id: "AKIAIOSFODNN7EXAMPLE",
        secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token: None,
        region: "eu-central-1",
        service: "sts",
        time: now,
    };
    sign("POST", "/", "", &mut headers, body, &params).unwrap();
    headers.insert("user-agent", HeaderValue::from_static("aws-cli/1.46.3 md/Botocore#1.43.62 ua/2.1 os/linux lang/python#3.11.7 botocore/1.43.62"));
    headers.insert(
        "amz-sdk-invocation-id",
        HeaderValue::from_static("454ab6a8-5d39-4021-bf4f-bb14eafe379a"),
    );
    headers.insert("amz-sdk-request", HeaderValue::from_static("attempt=1"));
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let verifier = Verifier::new("sts");
    verifier.verify(&request, &OneKey, now).unwrap();
    c.bench_function("sigv4/verify_sts_form_post", |b| {
        b.iter(|| verifier.verify(black_box(&request), &OneKey, now).unwrap());
    });
}

criterion_group!(verify, benches);
criterion_main!(verify);
