//! `SdkAws` against a local HTTP server answering as AWS STS: what podiam sends (EKS's session
//! name and tags, signed), how AWS's answers and errors come back, and that throttling is
//! retried with backoff while a denial is not.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use podiam_aws::SdkAws;
use podiam_eks::{UpstreamAssume, UpstreamError, UpstreamRoles};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// What the stand-in saw, and what it answers next.
#[derive(Default)]
struct Script {
    /// Answers to give, first to last; the last is repeated.
    answers: Vec<(StatusCode, String)>,
    /// Request bodies and Authorization headers received.
    seen: Vec<(String, String)>,
}

fn error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    )
}

const GRANTED: &str = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:eks-prod-carts-x</AssumedRoleId><Arn>arn:aws:sts::111122223333:assumed-role/carts/eks-prod-carts-x</Arn></AssumedRoleUser><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>upstream-secret</SecretAccessKey><SessionToken>upstream-token</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>";

#[expect(clippy::expect_used, reason = "a test helper: a failure is the test's")]
async fn stand_in(answers: Vec<(StatusCode, String)>) -> (SdkAws, Arc<Mutex<Script>>) {
    let script = Arc::new(Mutex::new(Script {
        answers,
        seen: Vec::new(),
    }));
    let shared = Arc::clone(&script);
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: String| {
            let shared = Arc::clone(&shared);
            async move {
                let mut script = shared.lock().unwrap_or_else(PoisonError::into_inner);
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                script.seen.push((body, authorization));
                let next = if script.answers.len() > 1 {
                    script.answers.remove(0)
                } else {
                    script.answers.first().cloned().unwrap_or_default()
                };
                (next.0, next.1)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sdk_at(&url).await, script)
}

/// podiam's SDK client signing as the broker, with AWS at `url`.
async fn sdk_at(url: &str) -> SdkAws {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "AKIABROKER",
            SECRET,
            None,
            None,
            "test",
        ));
    SdkAws::from_loader(loader).await
}

fn ask() -> UpstreamAssume {
    UpstreamAssume {
        role_arn: "arn:aws:iam::111122223333:role/carts".to_owned(),
        session_name: "eks-prod-carts-x".to_owned(),
        tags: vec![
            ("eks-cluster-name".to_owned(), "prod".to_owned()),
            ("kubernetes-namespace".to_owned(), "carts".to_owned()),
        ],
        external_id: Some("ext-1".to_owned()),
        policy: None,
        via: None,
        pod: "prod/carts/x/uid".to_owned(),
    }
}

fn seen(script: &Arc<Mutex<Script>>) -> Vec<(String, String)> {
    script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .seen
        .clone()
}

#[tokio::test]
async fn assume_role_sends_the_session_name_tags_and_external_id_signed_as_podiam() {
    let (aws, script) = stand_in(vec![(StatusCode::OK, GRANTED.to_owned())]).await;
    let granted = aws.assume(&ask()).await.expect("credentials");
    assert_eq!(granted.access_key_id, "ASIAEXAMPLE");
    assert_eq!(granted.secret_access_key.expose(), "upstream-secret");
    assert_eq!(granted.session_token.expose(), "upstream-token");
    assert_eq!(granted.expiration.unix_timestamp(), 1_893_456_000);
    assert_eq!(
        granted.assumed_role_arn,
        "arn:aws:sts::111122223333:assumed-role/carts/eks-prod-carts-x"
    );
    assert_eq!(granted.role_arn, "arn:aws:iam::111122223333:role/carts");
    // The secret is not in the Debug form.
    assert!(!format!("{granted:?}").contains("upstream-secret"));

    let seen = seen(&script);
    let (body, authorization) = seen.first().expect("one request");
    assert_eq!(seen.len(), 1);
    for part in [
        "Action=AssumeRole",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fcarts",
        "RoleSessionName=eks-prod-carts-x",
        "Tags.member.1.Key=eks-cluster-name",
        "Tags.member.1.Value=prod",
        "Tags.member.2.Key=kubernetes-namespace",
        "Tags.member.2.Value=carts",
        "ExternalId=ext-1",
    ] {
        assert!(body.contains(part), "{part} is not in {body}");
    }
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIABROKER/"),
        "{authorization}"
    );
    assert!(authorization.contains("/us-east-1/sts/aws4_request"));
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_and_then_answered() {
    let throttled = (
        StatusCode::BAD_REQUEST,
        error("Throttling", "Rate exceeded"),
    );
    let (aws, script) = stand_in(vec![
        throttled.clone(),
        throttled,
        (StatusCode::OK, GRANTED.to_owned()),
    ])
    .await;
    aws.assume(&ask())
        .await
        .expect("credentials on the third try");
    assert_eq!(seen(&script).len(), 3);

    // Throttled on every attempt: a throttling error, after three.
    let (aws, script) = stand_in(vec![(
        StatusCode::BAD_REQUEST,
        error("Throttling", "Rate exceeded"),
    )])
    .await;
    let refused = aws.assume(&ask()).await.expect_err("throttled");
    assert_eq!(
        refused,
        UpstreamError::Throttled("Rate exceeded".to_owned())
    );
    assert_eq!(seen(&script).len(), 3);
}

#[tokio::test]
async fn a_denial_comes_back_once_with_awss_words() {
    let message = "User: arn:aws:iam::111122223333:user/broker is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/carts";
    let (aws, script) = stand_in(vec![(
        StatusCode::FORBIDDEN,
        error("AccessDenied", message),
    )])
    .await;
    let refused = aws.assume(&ask()).await.expect_err("denied");
    assert_eq!(
        refused,
        UpstreamError::Refused {
            code: "AccessDenied".to_owned(),
            message: message.to_owned()
        }
    );
    assert_eq!(seen(&script).len(), 1);
    assert!(!refused.to_string().contains(SECRET));
}

#[tokio::test]
async fn no_answer_is_unreachable_and_never_shows_the_secret() {
    let aws = sdk_at("http://127.0.0.1:9").await;
    let refused = aws.assume(&ask()).await.expect_err("nothing listens");
    assert!(
        matches!(refused, UpstreamError::Unreachable(_)),
        "{refused:?}"
    );
    assert!(!format!("{refused:?}").contains(SECRET));
}
