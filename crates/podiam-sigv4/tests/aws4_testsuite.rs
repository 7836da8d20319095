//! Every case of the SigV4 test suite shipped with botocore (`tests/data/aws4_testsuite`, kept in
//! the repository with its Apache-2.0 LICENSE and NOTICE): from each signed request, the
//! canonical request, the string to
//! sign and the signature must match the suite byte for byte, and the request must verify.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::fs;
use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue};
use podiam_crypto::Secret;
use podiam_sigv4::{
    LookupError, SecretLookup, SignedRequest, Verifier, canonical_request_for, parse_amz_date,
    signing_key, string_to_sign,
};

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws4_testsuite")
}

/// A raw HTTP request from a `.req`/`.sreq` file.
struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn parse_request(text: &str) -> RawRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let method = request_line.split(' ').next().unwrap().to_owned();
    let target = request_line[method.len() + 1..request_line.rfind(" HTTP/").unwrap()].to_owned();
    let (path, query) = target
        .split_once('?')
        .map_or((target.clone(), String::new()), |(p, q)| {
            (p.to_owned(), q.to_owned())
        });
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // An obsolete line folding: the continuation joins the previous value.
            let last = fields.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').unwrap();
            fields.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    RawRequest {
        method,
        path,
        query,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

struct Fixed;

impl SecretLookup for Fixed {
    type Identity = Option<String>;
    fn lookup(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<(Secret<String>, Option<String>), LookupError> {
        if access_key_id != "AKIDEXAMPLE" {
            return Err(LookupError::UnknownAccessKey);
        }
        Ok((
            Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()),
            token.map(str::to_owned),
        ))
    }
}

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "cannot read the SigV4 test suite at {} (tests/data/aws4_testsuite in this crate): {e}",
            dir.display()
        )
    });
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.join(format!("{name}.req")).exists() {
                out.push(path.clone());
            }
            cases(&path, out);
        }
    }
}

#[test]
fn every_case_matches_and_verifies() {
    let mut all = Vec::new();
    cases(&suite(), &mut all);
    all.sort();
    assert!(
        all.len() >= 30,
        "found {} cases in {}",
        all.len(),
        suite().display()
    );
    let now = parse_amz_date("20150830T123600Z").unwrap();
    for case in &all {
        let name = case.file_name().unwrap().to_str().unwrap();
        let read = |ext: &str| fs::read_to_string(case.join(format!("{name}.{ext}"))).unwrap();
        // What the server receives: the signed request (the unsigned `.req` lacks headers the
        // signer adds, such as the session token).
        let raw = parse_request(&read("sreq"));
        let expected_creq = read("creq");
        let signed_headers = expected_creq.lines().rev().nth(1).unwrap();
        let request = SignedRequest {
            method: &raw.method,
            path: &raw.path,
            query: &raw.query,
            headers: &raw.headers,
            body: &raw.body,
        };
        let canonical = canonical_request_for(
            &request,
            signed_headers,
            &podiam_crypto::sha256_hex(&raw.body),
            true,
            false,
        )
        .unwrap();
        assert_eq!(canonical.text, expected_creq, "canonical request of {name}");
        let scope = "20150830/us-east-1/service/aws4_request";
        let sts = string_to_sign("20150830T123600Z", scope, &canonical.text);
        assert_eq!(sts, read("sts"), "string to sign of {name}");
        let signature = hex::encode(
            signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830",
                "us-east-1",
                "service",
            )
            .sign(sts.as_bytes()),
        );
        let authz = read("authz");
        assert!(
            authz.ends_with(&format!("Signature={signature}")),
            "signature of {name}: {authz}"
        );

        // The request as received, with the expected `.authz` as its Authorization (the
        // suite's `get-vanilla-with-session-token.sreq` carries a stale signature that
        // contradicts its own `.authz`).
        let mut signed = parse_request(&read("sreq"));
        signed.headers.insert(
            "authorization",
            HeaderValue::from_str(authz.trim()).unwrap(),
        );
        let request = SignedRequest {
            method: &signed.method,
            path: &signed.path,
            query: &signed.query,
            headers: &signed.headers,
            body: &signed.body,
        };
        let verified = Verifier::new("service")
            .verify(&request, &Fixed, now)
            .unwrap_or_else(|e| panic!("{name} does not verify: {e}"));
        assert_eq!(verified.region, "us-east-1");
        if name.starts_with("post-sts-header") {
            assert!(
                verified.identity.unwrap().starts_with("AQoDYXdzEPT"),
                "the session token reaches the lookup"
            );
        }
    }
}
