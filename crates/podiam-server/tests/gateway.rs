//! The DynamoDB gateway through `Router::oneshot`, deciding with a real control plane served on
//! loopback, forwarding to a recording DynamoDB stand-in that checks the gateway's own
//! signature (moto stands behind it in the end-to-end tests).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt as _;
use podiam_client::{AwsClient, Credentials, StaticCredentials, Timeouts};
use podiam_crypto::{Secret, SeededRng};
use podiam_gateway::proxy::{Authorizer, Gateway, GatewayConfig, RemoteAuthorizer, gateway_router};
use podiam_sigv4::{LookupError, SecretLookup, Verifier};
use serde_json::{Value, json};
use support::{ACCOUNT, Creds, World};
use tower::ServiceExt as _;

const UPSTREAM_KEY: &str = "AKIAUPSTREAMEXAMPLE1";
const UPSTREAM_SECRET: &str = "upstream-secret";

/// What the DynamoDB stand-in received.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

struct UpstreamKey;

impl SecretLookup for UpstreamKey {
    type Identity = ();
    fn lookup(&self, id: &str, _: Option<&str>) -> Result<(Secret<String>, ()), LookupError> {
        if id == UPSTREAM_KEY {
            Ok((Secret::new(UPSTREAM_SECRET.to_owned()), ()))
        } else {
            Err(LookupError::UnknownAccessKey)
        }
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    address
}

/// A DynamoDB stand-in: records each request and answers `{"Item": …}` with a CRC header.
async fn upstream(log: Arc<Mutex<Vec<Received>>>) -> SocketAddr {
    let router = Router::new().fallback(move |request: Request| {
        let log = Arc::clone(&log);
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes().to_vec();
            // The gateway reads tables' key schemas; every table here is keyed by `id`.
            if parts
                .headers
                .get("x-amz-target")
                .is_some_and(|t| t == "DynamoDB_20120810.DescribeTable")
            {
                return (
                    [
                        ("x-amz-crc32", "0"),
                        ("content-type", "application/x-amz-json-1.0"),
                    ],
                    r#"{"Table":{"KeySchema":[{"AttributeName":"id","KeyType":"HASH"}]}}"#,
                );
            }
            log.lock().unwrap().push(Received {
                headers: parts.headers,
                body,
            });
            (
                [
                    ("x-amz-crc32", "12345"),
                    ("content-type", "application/x-amz-json-1.0"),
                ],
                r#"{"Item":{"id":{"S":"1"}}}"#,
            )
        }
    });
    serve(router).await
}

struct Fixture {
    world: World,
    gateway: Router,
    log: Arc<Mutex<Vec<Received>>>,
    reader: Creds,
}

/// How the gateway under test decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decide {
    /// It asks the server over HTTP (`/podiam/authorize`).
    Remote,
    /// It asks a server that does not answer.
    RemoteDown,
    /// With the server's own authority, in this process.
    Locally,
}

async fn fixture(decide: Decide) -> Fixture {
    let world = World::new().await;
    let gateway_user = world
        .user(
            "gateway",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"podiam:AuthorizeRequest","Resource":"*"}]}"#),
        )
        .await;
    let reader = world
        .user(
            "reader",
            Some(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/carts"}}]}}"#
            )),
        )
        .await;
    let server = if decide == Decide::RemoteDown {
        "http://127.0.0.1:9".to_owned()
    } else {
        format!("http://{}", serve(world.router.clone()).await)
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let upstream = upstream(Arc::clone(&log)).await;
    let client = AwsClient::new(
        &server,
        "eu-central-1",
        Arc::new(StaticCredentials(Credentials {
            access_key_id: gateway_user.id.clone(),
            secret_access_key: Secret::new(gateway_user.secret.clone()),
            session_token: None,
            expiration: None,
        })),
        world.clock.clone(),
        Timeouts {
            connect: Duration::from_millis(500),
            request: Duration::from_secs(2),
        },
    )
    .unwrap();
    let authorizer: Arc<dyn Authorizer> = match decide {
        Decide::Locally => Arc::new(world.app.authority()),
        Decide::Remote | Decide::RemoteDown => Arc::new(RemoteAuthorizer::new(client)),
    };
    let gateway = Gateway::new(GatewayConfig {
        upstream: format!("http://{upstream}"),
        upstream_credentials: Credentials {
            access_key_id: UPSTREAM_KEY.to_owned(),
            secret_access_key: Secret::new(UPSTREAM_SECRET.to_owned()),
            session_token: None,
            expiration: None,
        },
        region: "eu-central-1".to_owned(),
        account_id: ACCOUNT.to_owned(),
        authorizer,
        upstream_timeout: Duration::from_secs(5),
        clock: world.clock.clone(),
        rng: Arc::new(SeededRng::new(b"gateway tests")),
    })
    .unwrap();
    Fixture {
        world,
        gateway: gateway_router(gateway),
        log,
        reader,
    }
}

/// A DynamoDB call signed by `creds`.
fn dynamodb(w: &World, creds: &Creds, operation: &str, body: &str) -> Request {
    let headers = w.dynamodb_headers(creds, operation, body);
    let mut request = Request::post("/")
        .body(Body::from(body.to_owned()))
        .unwrap();
    *request.headers_mut() = headers;
    request
}

async fn send(router: &Router, request: Request) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn an_allowed_request_is_forwarded_re_signed_and_answered() {
    an_allowed_request_is_forwarded_re_signed_and_answered_deciding(Decide::Remote).await;
}

#[tokio::test]
async fn an_allowed_request_is_forwarded_re_signed_and_answered_deciding_locally() {
    an_allowed_request_is_forwarded_re_signed_and_answered_deciding(Decide::Locally).await;
}

async fn an_allowed_request_is_forwarded_re_signed_and_answered_deciding(decide: Decide) {
    let f = fixture(decide).await;
    let body = r#"{"TableName":"carts","Key":{"id":{"S":"1"}}}"#;
    let (status, headers, answer) =
        send(&f.gateway, dynamodb(&f.world, &f.reader, "GetItem", body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"Item": {"id": {"S": "1"}}}));
    assert_eq!(headers["x-amz-crc32"], "12345");

    let received = f.log.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let forwarded = &received[0];
    assert_eq!(forwarded.body, body.as_bytes());
    assert_eq!(
        forwarded.headers["x-amz-target"],
        "DynamoDB_20120810.GetItem"
    );
    // Signed by the gateway with the upstream's key, not the caller's.
    let auth = forwarded.headers["authorization"].to_str().unwrap();
    assert!(
        auth.contains(UPSTREAM_KEY) && !auth.contains(&f.reader.id),
        "{auth}"
    );
    let signed = podiam_sigv4::SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &forwarded.headers,
        body: &forwarded.body,
    };
    Verifier::new("dynamodb")
        .verify(&signed, &UpstreamKey, f.world.now())
        .unwrap();
}

#[tokio::test]
async fn a_denied_request_gets_dynamodbs_error_and_never_reaches_the_table() {
    a_denied_request_gets_dynamodbs_error_and_never_reaches_the_table_deciding(Decide::Remote)
        .await;
}

#[tokio::test]
async fn a_denied_request_gets_dynamodbs_error_and_never_reaches_the_table_deciding_locally() {
    a_denied_request_gets_dynamodbs_error_and_never_reaches_the_table_deciding(Decide::Locally)
        .await;
}

async fn a_denied_request_gets_dynamodbs_error_and_never_reaches_the_table_deciding(
    decide: Decide,
) {
    let f = fixture(decide).await;
    let body = r#"{"TableName":"carts","Item":{"id":{"S":"1"}}}"#;
    let (status, headers, answer) =
        send(&f.gateway, dynamodb(&f.world, &f.reader, "PutItem", body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-amz-json-1.0");
    assert!(headers.contains_key("x-amzn-requestid"));
    assert_eq!(
        answer,
        json!({
            "__type": "com.amazon.coral.service#AccessDeniedException",
            "message": format!("User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/carts because no identity-based policy allows the dynamodb:PutItem action"),
        })
    );
    // Another table than the policy names, and a stranger's key.
    let (_, _, answer) = send(
        &f.gateway,
        dynamodb(
            &f.world,
            &f.reader,
            "GetItem",
            r#"{"TableName":"orders","Key":{}}"#,
        ),
    )
    .await;
    assert_eq!(
        answer["__type"],
        "com.amazon.coral.service#AccessDeniedException"
    );
    let stranger = Creds {
        id: "AKIAAAAAAAAAAAAAAAAA".to_owned(),
        secret: "x".to_owned(),
        token: None,
    };
    let (status, _, answer) = send(
        &f.gateway,
        dynamodb(
            &f.world,
            &stranger,
            "GetItem",
            r#"{"TableName":"carts","Key":{}}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer["__type"],
        "com.amazon.coral.service#UnrecognizedClientException"
    );
    assert!(f.log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_requests_get_dynamodbs_codes() {
    malformed_requests_get_dynamodbs_codes_deciding(Decide::Remote).await;
}

#[tokio::test]
async fn malformed_requests_get_dynamodbs_codes_deciding_locally() {
    malformed_requests_get_dynamodbs_codes_deciding(Decide::Locally).await;
}

async fn malformed_requests_get_dynamodbs_codes_deciding(decide: Decide) {
    let f = fixture(decide).await;
    let cases = [
        ("Frobnicate", "{}", "UnknownOperationException"),
        ("GetItem", "{", "SerializationException"),
        ("GetItem", r#"{"Key":{}}"#, "ValidationException"),
        (
            "GetItem",
            r#"{"TableName":"a/*","Key":{}}"#,
            "ValidationException",
        ),
    ];
    for (operation, body, code) in cases {
        let (status, _, answer) =
            send(&f.gateway, dynamodb(&f.world, &f.reader, operation, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{operation} {body}");
        assert_eq!(
            answer["__type"],
            format!("com.amazon.coral.service#{code}"),
            "{operation} {body}: {answer}"
        );
    }
    let get = Request::get("/").body(Body::empty()).unwrap();
    let (_, _, answer) = send(&f.gateway, get).await;
    assert_eq!(
        answer["__type"],
        "com.amazon.coral.service#UnknownOperationException"
    );
    assert!(f.log.lock().unwrap().is_empty());

    let metrics = f
        .gateway
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = metrics.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(r#"podiam_gateway_decisions_total{operation="unknown",decision="UnknownOperationException"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn without_the_server_nothing_is_forwarded() {
    let f = fixture(Decide::RemoteDown).await;
    let (status, _, answer) = send(
        &f.gateway,
        dynamodb(
            &f.world,
            &f.reader,
            "GetItem",
            r#"{"TableName":"carts","Key":{}}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer["__type"],
        "com.amazon.coral.service#InternalServerError"
    );
    assert!(f.log.lock().unwrap().is_empty());
}
