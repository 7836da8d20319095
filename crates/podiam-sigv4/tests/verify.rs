//! The verifier against real signers (the aws-sigv4 crate, and botocore's captured requests),
//! and every mutation an attacker might try.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign as aws_sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderValue};
use podiam_crypto::Secret;
use podiam_sigv4::{
    LookupError, Regions, SecretLookup, SigV4Error, SignedRequest, SigningParams, Verifier,
    parse_amz_date, sign,
};
use proptest::prelude::*;
use time::OffsetDateTime;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_AKID: &str = "ASIAIOSFODNN7EXAMPLE";
const TOKEN: &str = "FQoGZXIvYXdzEXAMPLETOKEN";

/// Two keys: a long-term one, and a session key that needs its token.
struct Keys;

impl SecretLookup for Keys {
    type Identity = &'static str;
    fn lookup(
        &self,
        akid: &str,
        token: Option<&str>,
    ) -> Result<(Secret<String>, &'static str), LookupError> {
        match (akid, token) {
            (AKID, _) => Ok((Secret::new(SECRET.to_owned()), "user")),
            (SESSION_AKID, Some(TOKEN)) => Ok((Secret::new(SECRET.to_owned()), "session")),
            (SESSION_AKID, Some("expired")) => Err(LookupError::ExpiredToken),
            (SESSION_AKID, Some(_)) => Err(LookupError::InvalidToken),
            (SESSION_AKID, None) => Err(LookupError::MissingToken),
            _ => Err(LookupError::UnknownAccessKey),
        }
    }
}

struct Owned {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Owned {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

fn system_time(t: OffsetDateTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).unwrap())
}

/// Signs with the aws-sigv4 crate (what the AWS SDK for Rust uses).
#[expect(
    clippy::too_many_arguments,
    reason = "a test helper mirroring the request parts"
)]
fn aws_signed(
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    service: &str,
    region: &str,
    at: OffsetDateTime,
    token: Option<&str>,
    presign: Option<Duration>,
) -> Owned {
    let akid = if token.is_some() { SESSION_AKID } else { AKID };
    let identity = Credentials::new(akid, SECRET, token.map(str::to_owned), None, "test").into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(system_time(at))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = if query.is_empty() {
        format!("https://example.amazonaws.com{path}")
    } else {
        format!("https://example.amazonaws.com{path}?{query}")
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(&uri)
        .header("host", "example.amazonaws.com");
    for (k, v) in extra {
        builder = builder.header(*k, *v);
    }
    let mut request = builder.body(body.to_vec()).unwrap();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        method,
        uri.clone(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = aws_sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    let (parts, body) = request.into_parts();
    Owned {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
    }
}

fn now() -> OffsetDateTime {
    parse_amz_date("20261126T174722Z").unwrap()
}

fn sts_post(token: Option<&str>) -> Owned {
    aws_signed(
        "POST",
        "/",
        "",
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"Action=GetCallerIdentity&Version=2011-06-15",
        "sts",
        "us-east-1",
        now(),
        token,
        None,
    )
}

fn verify(owned: &Owned, service: &str, at: OffsetDateTime) -> Result<&'static str, SigV4Error> {
    Verifier::new(service)
        .verify(&owned.request(), &Keys, at)
        .map(|v| v.identity)
}

#[test]
fn botocore_capture_verifies() {
    // aws-wire.md §9.2: `aws sts get-caller-identity`, CLI 1.46.3.
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:9"));
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert(
        "user-agent",
        HeaderValue::from_static("aws-cli/1.46.3 botocore/1.43.62"),
    );
    headers.insert("x-amz-date", HeaderValue::from_static("20261126T174722Z"));
    headers.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff937e278958864d663f63e8419d1f2a769d63c13fe8816dba7af54211b189ae"));
    headers.insert(
        "amz-sdk-invocation-id",
        HeaderValue::from_static("4c4fb5b1-0000-0000-0000-000000000000"),
    );
    headers.insert("amz-sdk-request", HeaderValue::from_static("attempt=1"));
    headers.insert("content-length", HeaderValue::from_static("43"));
    let owned = Owned {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers,
        body: b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    };
    let verified = Verifier::new("sts")
        .verify(&owned.request(), &Keys, now())
        .unwrap();
    assert_eq!(verified.identity, "user");
    assert_eq!(verified.access_key_id, AKID);
    assert!(!verified.presigned);
}

#[test]
fn the_rust_sdk_signer_verifies() {
    assert_eq!(verify(&sts_post(None), "sts", now()), Ok("user"));
    assert_eq!(verify(&sts_post(Some(TOKEN)), "sts", now()), Ok("session"));
    // rest-json with a percent-encoded path label (double encoding).
    let eks = aws_signed(
        "GET",
        "/clusters/my%20cluster%2Fx/pod-identity-associations",
        "namespace=default&maxResults=10",
        &[],
        b"",
        "eks",
        "eu-west-1",
        now(),
        None,
        None,
    );
    assert_eq!(verify(&eks, "eks", now()), Ok("user"));
    let auth = aws_signed(
        "POST",
        "/clusters/c/assume-role-for-pod-identity",
        "",
        &[("content-type", "application/json")],
        br#"{"token":"a.b.c"}"#,
        "eks-auth",
        "us-east-1",
        now(),
        None,
        None,
    );
    assert_eq!(verify(&auth, "eks-auth", now()), Ok("user"));
}

#[test]
fn our_signer_verifies() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let params = SigningParams {
        access_key_id: SESSION_AKID,
        secret: SECRET,
        session_token: Some(TOKEN),
        region: "eu-central-1",
        service: "eks",
        time: now(),
    };
    sign(
        "POST",
        "/clusters/eks-workshop/pod-identity-associations",
        "",
        &mut headers,
        b"{}",
        &params,
    )
    .unwrap();
    let owned = Owned {
        method: "POST".into(),
        path: "/clusters/eks-workshop/pod-identity-associations".into(),
        query: String::new(),
        headers,
        body: b"{}".to_vec(),
    };
    assert_eq!(verify(&owned, "eks", now()), Ok("session"));
}

#[test]
fn presigned_requests() {
    // `aws eks get-token`: a presigned GET of GetCallerIdentity that signs x-k8s-aws-id.
    let get_token = aws_signed(
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        &[("x-k8s-aws-id", "eks-workshop")],
        b"",
        "sts",
        "us-east-1",
        now(),
        None,
        Some(Duration::from_secs(60)),
    );
    assert!(get_token.query.contains("X-Amz-Signature="));
    assert!(get_token.headers.get("authorization").is_none());
    let verified = Verifier::new("sts")
        .verify(
            &get_token.request(),
            &Keys,
            now() + time::Duration::seconds(30),
        )
        .unwrap();
    assert!(verified.presigned);
    let late = verify(&get_token, "sts", now() + time::Duration::seconds(61));
    assert!(
        matches!(late, Err(SigV4Error::SignatureExpired(_))),
        "{late:?}"
    );
    // With a session token in the query.
    let session = aws_signed(
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        &[],
        b"",
        "sts",
        "us-east-1",
        now(),
        Some(TOKEN),
        Some(Duration::from_secs(900)),
    );
    assert_eq!(verify(&session, "sts", now()), Ok("session"));
    // Too long a life.
    let week = aws_signed(
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        &[],
        b"",
        "sts",
        "us-east-1",
        now(),
        None,
        Some(Duration::from_secs(604_801)),
    );
    assert!(
        matches!(verify(&week, "sts", now()), Err(SigV4Error::IncompleteSignature(m)) if m.contains("X-Amz-Expires"))
    );
    // A tampered query parameter.
    let mut tampered = aws_signed(
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        &[],
        b"",
        "sts",
        "us-east-1",
        now(),
        None,
        Some(Duration::from_secs(60)),
    );
    tampered.query = tampered
        .query
        .replace("GetCallerIdentity", "GetSessionToken");
    assert!(matches!(
        verify(&tampered, "sts", now()),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));
}

#[test]
fn mutations_are_rejected() {
    let good = sts_post(None);
    assert!(verify(&good, "sts", now()).is_ok());

    // Flip one digit of the signature.
    let mut flipped = sts_post(None);
    let auth = flipped.headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    let last = auth.chars().last().unwrap();
    let replacement = if last == '0' { '1' } else { '0' };
    flipped.headers.insert(
        "authorization",
        format!("{}{replacement}", &auth[..auth.len() - 1])
            .parse()
            .unwrap(),
    );
    assert!(matches!(
        verify(&flipped, "sts", now()),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));

    // Change a signed header, the body, the method, the path.
    let mut changed = sts_post(None);
    changed
        .headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    assert!(matches!(
        verify(&changed, "sts", now()),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));
    let mut body = sts_post(None);
    body.body = b"Action=GetCallerIdentity&Version=2011-06-16".to_vec();
    assert!(matches!(
        verify(&body, "sts", now()),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));
    let mut method = sts_post(None);
    method.method = "PUT".into();
    assert!(verify(&method, "sts", now()).is_err());
    let mut path = sts_post(None);
    path.path = "/x".into();
    assert!(verify(&path, "sts", now()).is_err());

    // Drop a signed header.
    let mut dropped = sts_post(None);
    dropped.headers.remove("content-type");
    assert!(
        matches!(verify(&dropped, "sts", now()), Err(SigV4Error::SignatureDoesNotMatch(m)) if m.contains("content-type"))
    );

    // Shift the date beyond the allowed skew, both ways.
    assert!(matches!(
        verify(&good, "sts", now() + time::Duration::minutes(16)),
        Err(SigV4Error::RequestExpired(_))
    ));
    assert!(matches!(
        verify(&good, "sts", now() - time::Duration::minutes(16)),
        Err(SigV4Error::RequestExpired(_))
    ));
    assert!(verify(&good, "sts", now() + time::Duration::minutes(14)).is_ok());
    let mut shifted = sts_post(None);
    shifted
        .headers
        .insert("x-amz-date", HeaderValue::from_static("20261126T174723Z"));
    assert!(matches!(
        verify(&shifted, "sts", now()),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));

    // Wrong service, wrong region.
    assert!(
        matches!(verify(&good, "iam", now()), Err(SigV4Error::SignatureDoesNotMatch(m)) if m.contains("correct service"))
    );
    let only_eu = Verifier::new("sts").regions(Regions::Only(vec!["eu-central-1".into()]));
    assert!(
        matches!(only_eu.verify(&good.request(), &Keys, now()), Err(SigV4Error::SignatureDoesNotMatch(m)) if m.contains("valid region"))
    );

    // Unknown key; session key without, with a wrong and with an expired token.
    let unknown = aws_signed(
        "POST",
        "/",
        "",
        &[],
        b"x",
        "sts",
        "us-east-1",
        now(),
        None,
        None,
    );
    let mut unknown = unknown;
    let auth = unknown.headers["authorization"]
        .to_str()
        .unwrap()
        .replace(AKID, "AKIAUNKNOWNKEY000000");
    unknown
        .headers
        .insert("authorization", auth.parse().unwrap());
    assert!(matches!(
        verify(&unknown, "sts", now()),
        Err(SigV4Error::InvalidClientTokenId(_))
    ));
    let mut no_token = sts_post(Some(TOKEN));
    no_token.headers.remove("x-amz-security-token");
    assert!(matches!(
        verify(&no_token, "sts", now()),
        Err(SigV4Error::InvalidClientTokenId(_))
    ));
    let mut wrong_token = sts_post(Some(TOKEN));
    wrong_token
        .headers
        .insert("x-amz-security-token", HeaderValue::from_static("forged"));
    assert!(matches!(
        verify(&wrong_token, "sts", now()),
        Err(SigV4Error::InvalidClientTokenId(_))
    ));
    let mut expired = sts_post(Some(TOKEN));
    expired
        .headers
        .insert("x-amz-security-token", HeaderValue::from_static("expired"));
    assert!(matches!(
        verify(&expired, "sts", now()),
        Err(SigV4Error::ExpiredToken(_))
    ));
}

#[test]
fn missing_and_conflicting_authentication() {
    let mut none = sts_post(None);
    none.headers.remove("authorization");
    assert_eq!(
        verify(&none, "sts", now()),
        Err(SigV4Error::MissingAuthenticationToken)
    );
    let mut both = sts_post(None);
    both.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    assert!(
        matches!(verify(&both, "sts", now()), Err(SigV4Error::IncompleteSignature(m)) if m.contains("Only one auth mechanism"))
    );
    let mut twice = sts_post(None);
    let auth = twice.headers["authorization"].clone();
    twice.headers.append("authorization", auth);
    assert!(matches!(
        verify(&twice, "sts", now()),
        Err(SigV4Error::IncompleteSignature(_))
    ));
    let mut no_date = sts_post(None);
    no_date.headers.remove("x-amz-date");
    assert!(
        matches!(verify(&no_date, "sts", now()), Err(SigV4Error::IncompleteSignature(m)) if m.contains("X-Amz-Date"))
    );
    // Host must be signed.
    let mut unsigned_host = sts_post(None);
    let auth = unsigned_host.headers["authorization"]
        .to_str()
        .unwrap()
        .replace(
            "SignedHeaders=content-type;host;x-amz-date",
            "SignedHeaders=content-type;x-amz-date",
        );
    unsigned_host
        .headers
        .insert("authorization", auth.parse().unwrap());
    assert!(
        matches!(verify(&unsigned_host, "sts", now()), Err(SigV4Error::SignatureDoesNotMatch(m)) if m.contains("'Host'"))
    );
}

#[test]
fn payload_hash_header() {
    let mut mismatched = sts_post(None);
    mismatched.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
    );
    assert!(
        matches!(verify(&mismatched, "sts", now()), Err(SigV4Error::SignatureDoesNotMatch(m)) if m.contains("x-amz-content-sha256"))
    );
    let mut unsigned = sts_post(None);
    unsigned.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    assert!(
        verify(&unsigned, "sts", now()).is_err(),
        "unsigned payloads only where allowed"
    );
}

fn arb_segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~ -]{1,8}".prop_map(|s| percent_encode(&s))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random requests signed by the Rust SDK's signer always verify; changing the secret
    /// never does.
    #[test]
    fn random_sdk_signed_requests_verify(
        method in prop::sample::select(&["GET", "POST", "PUT", "DELETE"][..]),
        segments in prop::collection::vec(arb_segment(), 0..4),
        params in prop::collection::vec(("[a-zA-Z0-9_.-]{1,6}", "[a-zA-Z0-9 _.:/=+-]{0,8}"), 0..4),
        headers in prop::collection::hash_map("x-custom-[a-z]{1,5}", "[a-zA-Z0-9 ,;=:/.-]{1,12}", 0..3),
        body in prop::collection::vec(any::<u8>(), 0..64),
        service in prop::sample::select(&["sts", "iam", "eks", "eks-auth", "dynamodb"][..]),
        region in prop::sample::select(&["us-east-1", "eu-central-1", "ap-southeast-2"][..]),
        with_token in any::<bool>(),
        presign in any::<bool>(),
    ) {
        let path = format!("/{}", segments.join("/"));
        let query = params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&");
        let extra: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.trim())).filter(|(_, v)| !v.is_empty()).collect();
        let token = with_token.then_some(TOKEN);
        let owned = aws_signed(method, &path, &query, &extra, &body, service, region, now(), token, presign.then_some(Duration::from_secs(300)));
        let expected = if with_token { "session" } else { "user" };
        prop_assert_eq!(verify(&owned, service, now()), Ok(expected));

        struct Wrong;
        impl SecretLookup for Wrong {
            type Identity = ();
            fn lookup(&self, _: &str, _: Option<&str>) -> Result<(Secret<String>, ()), LookupError> {
                Ok((Secret::new("not-the-secret".to_owned()), ()))
            }
        }
        prop_assert!(matches!(Verifier::new(service).verify(&owned.request(), &Wrong, now()), Err(SigV4Error::SignatureDoesNotMatch(_))));
    }

    #[test]
    fn arbitrary_authorization_headers_never_panic(value in "\\PC{0,300}", query in "[ -~]{0,200}") {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert("authorization", v);
        }
        headers.insert("x-amz-date", HeaderValue::from_static("20261126T174722Z"));
        let request = SignedRequest { method: "GET", path: "/", query: &query, headers: &headers, body: b"" };
        let _ = Verifier::new("sts").verify(&request, &Keys, now());
    }
}

#[test]
fn a_digest_stands_in_for_the_body() {
    let body = br#"{"TableName":"carts"}"#;
    let signed = aws_signed(
        "POST",
        "/",
        "",
        &[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
        ],
        body,
        "dynamodb",
        "eu-central-1",
        now(),
        None,
        None,
    );
    let digest = podiam_crypto::sha256_hex(body);
    let mut bodiless = signed.request();
    bodiless.body = b"";
    let by_digest = |d: &str| Verifier::new("dynamodb").verify_digest(&bodiless, d, &Keys, now());
    assert_eq!(by_digest(&digest).map(|v| v.identity), Ok("user"));
    // The digest of another body does not verify, and a malformed one is refused.
    let other = podiam_crypto::sha256_hex(br#"{"TableName":"other"}"#);
    assert!(matches!(
        by_digest(&other),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));
    assert!(matches!(
        by_digest(&digest.to_uppercase()),
        Err(SigV4Error::IncompleteSignature(_))
    ));
    assert!(matches!(
        by_digest("abc"),
        Err(SigV4Error::IncompleteSignature(_))
    ));
}

#[test]
fn precheck_needs_no_body_but_a_known_key_and_a_fresh_date() {
    let signed = sts_post(None);
    let mut bodiless = signed.request();
    bodiless.body = b"";
    let precheck =
        |request: &SignedRequest<'_>, at| Verifier::new("sts").precheck(request, &Keys, at);
    assert_eq!(precheck(&bodiless, now()), Ok("user"));
    // The body is not involved, so a precheck passes where the full check then fails.
    assert!(
        Verifier::new("sts")
            .verify(&bodiless, &Keys, now())
            .is_err()
    );
    // An unknown key, a stale date, another service, no signature at all: refused unread.
    let mut unknown = sts_post(None);
    let auth = unknown.headers["authorization"]
        .to_str()
        .unwrap()
        .replace(AKID, "AKIAUNKNOWNKEY000000");
    unknown
        .headers
        .insert("authorization", HeaderValue::from_str(&auth).unwrap());
    assert!(matches!(
        precheck(&unknown.request(), now()),
        Err(SigV4Error::InvalidClientTokenId(_))
    ));
    assert!(matches!(
        precheck(&bodiless, now() + time::Duration::minutes(20)),
        Err(SigV4Error::RequestExpired(_))
    ));
    assert!(matches!(
        Verifier::new("iam").precheck(&bodiless, &Keys, now()),
        Err(SigV4Error::SignatureDoesNotMatch(_))
    ));
    let mut unsigned = sts_post(None);
    unsigned.headers.remove("authorization");
    assert_eq!(
        precheck(&unsigned.request(), now()),
        Err(SigV4Error::MissingAuthenticationToken)
    );
}
