//! The control plane's handlers through `Router::oneshot`: authentication, authorization, the
//! awsQuery wire format, token failures and hostile input.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{KeyKind, SeededRng, SigningKey};
use podiam_oidc::{Issuer, ObjectRef, TokenRequest};
use support::{ACCOUNT, Creds, ISSUER, NOW, ROLE, World, at, irsa_trust, role_arn, session_creds};

#[tokio::test]
async fn root_is_the_account_and_responses_follow_the_query_shape() {
    let w = World::new().await;
    let reply = w
        .sts(Some(&w.root), &[("Action", "GetCallerIdentity")])
        .await
        .ok();
    assert_eq!(
        reply.tag("Arn").unwrap(),
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert_eq!(reply.tag("Account").unwrap(), ACCOUNT);
    // The Result is the first child; the request id is in the header and the metadata.
    let result_at = reply.body.find("<GetCallerIdentityResult>").unwrap();
    let metadata_at = reply.body.find("<ResponseMetadata>").unwrap();
    assert!(result_at < metadata_at);
    assert!(reply.body.contains(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    let header = reply.headers["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(reply.tag("RequestId").unwrap(), header);
    assert_eq!(reply.headers["content-type"], "text/xml");
}

#[tokio::test]
async fn signatures_are_checked() {
    let w = World::new().await;
    let unsigned = w.iam_unsigned(&[("Action", "ListRoles")]).await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    assert_eq!(unsigned.code(), "MissingAuthenticationToken");

    let wrong_secret = Creds {
        secret: "x".repeat(40),
        ..w.root.clone()
    };
    let reply = w.iam(&wrong_secret, &[("Action", "ListRoles")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "SignatureDoesNotMatch");

    let unknown = Creds {
        id: "AKIAAAAAAAAAAAAAAAAA".into(),
        ..w.root.clone()
    };
    let reply = w.iam(&unknown, &[("Action", "ListRoles")]).await;
    assert_eq!(reply.code(), "InvalidClientTokenId");

    // A body changed after signing.
    let mut request = w.request("iam", Some(&w.root), &[("Action", "ListRoles")]);
    *request.body_mut() = Body::from("Action=ListUsers&Version=2010-05-08");
    let reply = w.send(request).await;
    assert_eq!(reply.code(), "SignatureDoesNotMatch");

    // A signature from 20 minutes ago.
    let request = w.request("iam", Some(&w.root), &[("Action", "ListRoles")]);
    w.clock.advance(time::Duration::minutes(20));
    let reply = w.send(request).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "SignatureDoesNotMatch");
    assert!(
        reply
            .tag("Message")
            .unwrap()
            .starts_with("Signature expired: "),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn inactive_and_deleted_keys_stop_working() {
    let w = World::new().await;
    let bob = w.user("bob", Some(ALLOW_ALL)).await;
    w.iam(&bob, &[("Action", "GetUser")]).await.ok();
    w.iam(
        &w.root,
        &[
            ("Action", "UpdateAccessKey"),
            ("UserName", "bob"),
            ("AccessKeyId", &bob.id),
            ("Status", "Inactive"),
        ],
    )
    .await
    .ok();
    assert_eq!(
        w.iam(&bob, &[("Action", "GetUser")]).await.code(),
        "InvalidClientTokenId"
    );
    w.iam(
        &w.root,
        &[
            ("Action", "DeleteAccessKey"),
            ("UserName", "bob"),
            ("AccessKeyId", &bob.id),
        ],
    )
    .await
    .ok();
    assert_eq!(
        w.iam(&bob, &[("Action", "GetUser")]).await.code(),
        "InvalidClientTokenId"
    );
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

#[tokio::test]
async fn irsa_credentials_work_until_they_expire() {
    let w = World::new().await;
    let token = w.token("carts", "carts", "sts.amazonaws.com", NOW);
    // botocore sends the token file verbatim, newline included.
    let reply = w.web_identity(&format!("{token}\n")).await.ok();
    assert_eq!(
        reply.tag("SubjectFromWebIdentityToken").unwrap(),
        "system:serviceaccount:carts:carts"
    );
    assert_eq!(
        reply.tag("Provider").unwrap(),
        format!(
            "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
            support::ISSUER_HOST_PATH
        )
    );
    assert_eq!(reply.tag("Audience").unwrap(), "sts.amazonaws.com");
    let session_arn =
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/botocore-session-1795000000");
    assert_eq!(reply.tag("Arn").unwrap(), session_arn);
    assert!(reply.tag("AccessKeyId").unwrap().starts_with("ASIA"));
    assert_eq!(reply.tag("Expiration").unwrap(), "2026-11-18T12:06:40Z");
    let creds = session_creds(&reply);

    let me = w
        .sts(Some(&creds), &[("Action", "GetCallerIdentity")])
        .await
        .ok();
    assert_eq!(me.tag("Arn").unwrap(), session_arn);
    assert!(
        me.tag("UserId")
            .unwrap()
            .ends_with(":botocore-session-1795000000")
    );

    // The session has no IAM permissions (the role's policies allow nothing yet).
    let denied = w.iam(&creds, &[("Action", "ListRoles")]).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "AccessDenied");
    assert!(
        denied
            .tag("Message")
            .unwrap()
            .starts_with(&format!("User: {session_arn} is not authorized"))
    );

    // A token claiming another session's key id is refused.
    let forged = Creds {
        id: "ASIAAAAAAAAAAAAAAAAA".into(),
        ..creds.clone()
    };
    assert_eq!(
        w.sts(Some(&forged), &[("Action", "GetCallerIdentity")])
            .await
            .code(),
        "InvalidClientTokenId"
    );
    // A tampered session token is refused.
    let mut token = creds.token.clone().unwrap();
    let flipped = if token.ends_with('A') { 'B' } else { 'A' };
    token.pop();
    token.push(flipped);
    let tampered = Creds {
        token: Some(token),
        ..creds.clone()
    };
    assert_eq!(
        w.sts(Some(&tampered), &[("Action", "GetCallerIdentity")])
            .await
            .code(),
        "InvalidClientTokenId"
    );

    w.clock.advance(time::Duration::seconds(3601));
    let expired = w
        .sts(Some(&creds), &[("Action", "GetCallerIdentity")])
        .await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert_eq!(expired.code(), "ExpiredToken");
}

fn unsigned_jwt(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

#[tokio::test]
async fn bad_web_identity_tokens_get_the_aws_codes() {
    let w = World::new().await;
    let good = w.token("carts", "carts", "sts.amazonaws.com", NOW);
    let claims = good.split('.').nth(1).unwrap().to_owned();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&claims).unwrap()).unwrap();

    let other_key = Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).unwrap()).unwrap();
    let request = TokenRequest {
        namespace: "carts".into(),
        service_account: ObjectRef {
            name: "carts".into(),
            uid: "u".into(),
        },
        audiences: vec!["sts.amazonaws.com".into()],
        pod: None,
        node: None,
        lifetime: std::time::Duration::from_secs(3600),
        warn_after: None,
    };
    let wrong_key = other_key
        .mint(&request, at(NOW), &SeededRng::new(b"k"))
        .unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("carts:carts", "carts:admin"));
    let tampered = parts.join(".");
    let unknown_issuer = {
        let other = Issuer::new(
            "https://oidc.example.com/id/other",
            SigningKey::generate(KeyKind::EcP256).unwrap(),
        )
        .unwrap();
        other
            .mint(&request, at(NOW), &SeededRng::new(b"k"))
            .unwrap()
    };

    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "garbage",
            "not-a-jwt".into(),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "alg none",
            unsigned_jwt(r#"{"alg":"none","typ":"JWT"}"#, &payload),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "wrong key",
            wrong_key,
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "tampered claims",
            tampered,
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "expired",
            w.token("carts", "carts", "sts.amazonaws.com", NOW - 7200),
            StatusCode::BAD_REQUEST,
            "ExpiredTokenException",
        ),
        (
            "wrong audience",
            w.token("carts", "carts", "pods.eks.amazonaws.com", NOW),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "unknown issuer",
            unknown_issuer,
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "trust policy mismatch",
            w.token("carts", "orders", "sts.amazonaws.com", NOW),
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
    ];
    for (name, token, status, code) in cases {
        let reply = w.web_identity(&token).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert_eq!(reply.code(), code, "{name}: {}", reply.body);
        assert!(
            !reply.body.contains(&token),
            "{name}: the token must not be echoed"
        );
    }
    // The role must exist, and the message says so as AWS does.
    let reply = w
        .sts(
            None,
            &[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", &role_arn("missing")),
                ("RoleSessionName", "s"),
                ("WebIdentityToken", &good),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

#[tokio::test]
async fn access_denied_names_caller_action_and_resource() {
    let w = World::new().await;
    let bob = w.user("bob", None).await;
    let reply = w
        .iam(&bob, &[("Action", "GetRole"), ("RoleName", ROLE)])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "AccessDenied");
    assert_eq!(
        reply.tag("Message").unwrap(),
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: iam:GetRole on resource: {} because no identity-based policy allows the iam:GetRole action",
            role_arn(ROLE)
        )
    );
    // The same user with a policy for that role only.
    let reader = w
        .user(
            "reader",
            Some(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iam:GetRole","Resource":"{}"}}]}}"#,
                role_arn(ROLE)
            )),
        )
        .await;
    w.iam(&reader, &[("Action", "GetRole"), ("RoleName", ROLE)])
        .await
        .ok();
    assert_eq!(
        w.iam(&reader, &[("Action", "ListRoles")]).await.code(),
        "AccessDenied"
    );
}

#[tokio::test]
async fn policy_documents_come_back_byte_for_byte() {
    let w = World::new().await;
    let reply = w
        .iam(&w.root, &[("Action", "GetRole"), ("RoleName", ROLE)])
        .await
        .ok();
    let encoded = reply.tag("AssumeRolePolicyDocument").unwrap();
    assert!(encoded.contains("%20"), "spaces are %20: {encoded}");
    assert!(!encoded.contains('+'));
    let decoded = percent_encoding::percent_decode_str(&encoded)
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, irsa_trust());
}

#[tokio::test]
async fn lists_paginate_with_markers() {
    let w = World::new().await;
    for name in ["u1", "u2", "u3"] {
        w.iam(&w.root, &[("Action", "CreateUser"), ("UserName", name)])
            .await
            .ok();
    }
    let first = w
        .iam(&w.root, &[("Action", "ListUsers"), ("MaxItems", "2")])
        .await
        .ok();
    assert_eq!(first.tag("IsTruncated").unwrap(), "true");
    let marker = first.tag("Marker").unwrap();
    assert_eq!(first.body.matches("<member>").count(), 2);
    let second = w
        .iam(
            &w.root,
            &[
                ("Action", "ListUsers"),
                ("MaxItems", "2"),
                ("Marker", &marker),
            ],
        )
        .await
        .ok();
    assert_eq!(second.tag("IsTruncated").unwrap(), "false");
    assert_eq!(second.tag("UserName").unwrap(), "u3");
    assert_eq!(second.tag("Marker"), None);
    let bad = w
        .iam(
            &w.root,
            &[("Action", "ListUsers"), ("Marker", "not-a-marker")],
        )
        .await;
    assert_eq!(bad.status.as_u16() / 100, 4, "{}", bad.body);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let w = World::new().await;
    let body = format!(
        "Action=GetCallerIdentity&Version=2011-06-15&Pad={}",
        "a".repeat(1024 * 1024)
    );
    let request = Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let reply = w.send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "RequestEntityTooLarge");
    assert!(reply.headers.contains_key("x-amzn-requestid"));
}

#[tokio::test]
async fn malformed_requests_are_4xx_with_aws_codes() {
    let w = World::new().await;
    let raw = |body: &'static str| {
        Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let cases = [
        ("", "MissingAction"),
        ("Version=2011-06-15", "MissingAction"),
        ("Action=Frobnicate&Version=2011-06-15", "InvalidAction"),
        ("Action=Frobnicate", "InvalidAction"),
        (
            "Action=GetCallerIdentity&Action=GetCallerIdentity",
            "InvalidParameterCombination",
        ),
        ("%ff%fe=%zz&&&==", "MissingAction"),
    ];
    for (body, code) in cases {
        let reply = w.send(raw(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body:?}: {}",
            reply.body
        );
        assert_eq!(reply.code(), code, "{body:?}");
    }

    let missing = w.iam(&w.root, &[("Action", "GetRole")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.code(), "ValidationError");
    assert_eq!(
        missing.tag("Message").unwrap(),
        "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"
    );

    let reply = w
        .sts(
            None,
            &[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", &role_arn(ROLE)),
                ("RoleSessionName", "has space"),
                ("WebIdentityToken", "tok.en.x"),
                ("DurationSeconds", "60"),
            ],
        )
        .await;
    assert_eq!(reply.code(), "ValidationError");
    let message = reply.tag("Message").unwrap();
    assert!(
        message.starts_with("2 validation errors detected:"),
        "{message}"
    );
    assert!(message.contains("Value 'has space' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"), "{message}");
    assert!(message.contains("Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"), "{message}");

    let long_name = "r".repeat(65);
    let reply = w
        .iam(&w.root, &[("Action", "GetRole"), ("RoleName", &long_name)])
        .await;
    assert_eq!(reply.code(), "ValidationError");

    let not_a_policy = w
        .iam(
            &w.root,
            &[
                ("Action", "CreateRole"),
                ("RoleName", "bad-trust"),
                ("AssumeRolePolicyDocument", "{\"Statement\": 5}"),
            ],
        )
        .await;
    assert_eq!(not_a_policy.code(), "MalformedPolicyDocument");

    // Other paths and methods are plain 404/405, still with a request id.
    let reply = w
        .send(Request::get("/nope").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.headers.contains_key("x-amzn-requestid"));
    let reply = w.send(Request::put("/").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.headers.contains_key("x-amzn-requestid"));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let w = World::new().await;
    let health = w
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(health.headers.contains_key("x-amzn-requestid"));
    w.app.set_ready(false);
    let ready = w
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    w.app.set_ready(true);

    w.web_identity("garbage").await;
    w.sts(Some(&w.root), &[("Action", "GetCallerIdentity")])
        .await
        .ok();
    let metrics = w
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body;
    assert!(
        text.contains(
            r#"podiam_requests_total{service="sts",operation="GetCallerIdentity",code="OK"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"operation="AssumeRoleWithWebIdentity",code="InvalidIdentityToken"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("podiam_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_keep_request_input_out_and_can_leave_the_api_port() {
    use tower::ServiceExt as _;
    let w = World::new().await;
    // Made-up actions and paths never become label values.
    w.sts(None, &[("Action", "Evil\"Label{x=\"1\"}")]).await;
    w.send(
        Request::get("/clusters/evil-name-123/podiam/jwks")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let text = w
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .body;
    assert!(
        !text.contains("Evil") && !text.contains("evil-name-123"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"podiam_requests_total{service="unknown",operation="unknown",code="InvalidAction"} 1"#
        ),
        "{text}"
    );
    // With --metrics-listen the API port has no /metrics, the metrics port nothing else.
    let api = podiam_server::api_router(w.app.clone());
    let metrics = podiam_server::metrics_router(w.app.clone());
    let status = |router: axum::Router, path: &'static str| async move {
        router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status(api.clone(), "/metrics").await, StatusCode::NOT_FOUND);
    assert_eq!(status(api, "/healthz").await, StatusCode::OK);
    assert_eq!(status(metrics.clone(), "/metrics").await, StatusCode::OK);
    assert_eq!(status(metrics, "/clusters").await, StatusCode::NOT_FOUND);
}

impl World {
    async fn iam_unsigned(&self, params: &[(&str, &str)]) -> support::Reply {
        self.send(self.request("iam", None, params)).await
    }
}

mod hostile {
    //! Arbitrary signed requests never fail with a 5xx.

    use proptest::prelude::*;

    use super::support::World;

    const ACTIONS: &[&str] = &[
        "GetCallerIdentity",
        "AssumeRole",
        "AssumeRoleWithWebIdentity",
        "CreateUser",
        "CreateRole",
        "GetRole",
        "ListRoles",
        "PutRolePolicy",
        "CreatePolicy",
        "CreatePolicyVersion",
        "TagRole",
        "UpdateRole",
        "CreateOpenIDConnectProvider",
        "SimulateCustomPolicy",
        "SimulatePrincipalPolicy",
        "ListUsers",
        "UpdateAccessKey",
    ];
    const NAMES: &[&str] = &[
        "RoleName",
        "UserName",
        "PolicyName",
        "PolicyDocument",
        "AssumeRolePolicyDocument",
        "RoleArn",
        "RoleSessionName",
        "DurationSeconds",
        "MaxItems",
        "Marker",
        "Url",
        "ClientIDList.member.1",
        "Tags.member.1.Key",
        "Tags.member.1.Value",
        "PolicyArn",
        "PolicySourceArn",
        "ActionNames.member.1",
        "PolicyInputList.member.1",
        "WebIdentityToken",
        "MaxSessionDuration",
        "Status",
        "AccessKeyId",
    ];

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}",
            "[a-z0-9-]{1,70}",
            "-?[0-9]{1,12}",
            Just(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.to_owned()),
            Just("arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-irsa".to_owned()),
            Just("https://oidc.example.com".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_signed_requests_are_answered_without_5xx(
            action in proptest::sample::select(ACTIONS),
            params in proptest::collection::btree_map(proptest::sample::select(NAMES), value(), 0..6),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let w = World::new().await;
                let mut pairs: Vec<(&str, &str)> = vec![("Action", action)];
                pairs.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
                let service = if ["GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity"].contains(&action) { "sts" } else { "iam" };
                let reply = w.send(w.request(service, Some(&w.root), &pairs)).await;
                prop_assert!(reply.status.as_u16() < 500, "{:?} -> {}", pairs, reply.body);
                if reply.status.as_u16() >= 400 {
                    prop_assert!(!reply.code().is_empty(), "{}", reply.body);
                }
                Ok(())
            })?;
        }
    }
}

const TRUST_ROOT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::637423329338:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

#[tokio::test]
async fn deny_guardrails_see_the_request_and_resource_condition_keys() {
    let w = World::new().await;
    let guard = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iam:*","Resource":"*"},
        {"Effect":"Deny","Action":["iam:AttachUserPolicy","iam:AttachRolePolicy"],"Resource":"*",
         "Condition":{"ArnEquals":{"iam:PolicyARN":"arn:aws:iam::aws:policy/AdministratorAccess"}}},
        {"Effect":"Deny","Action":["iam:DeleteRole","iam:UntagRole","iam:TagRole"],"Resource":"*",
         "Condition":{"StringEquals":{"aws:ResourceTag/protected":"true"}}},
        {"Effect":"Deny","Action":["iam:CreateRole","iam:TagRole"],"Resource":"*",
         "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["protected"]}}}
    ]}"#;
    let admin = w.user("admin", Some(guard)).await;
    let attach = |policy: &'static str| {
        [
            ("Action", "AttachUserPolicy"),
            ("UserName", "admin"),
            ("PolicyArn", policy),
        ]
    };
    let denied = w
        .iam(
            &admin,
            &attach("arn:aws:iam::aws:policy/AdministratorAccess"),
        )
        .await;
    assert_eq!(denied.code(), "AccessDenied", "{}", denied.body);
    assert!(
        denied
            .tag("Message")
            .unwrap()
            .contains("with an explicit deny in an identity-based policy"),
        "{}",
        denied.body
    );
    w.iam(&admin, &attach("arn:aws:iam::aws:policy/ReadOnlyAccess"))
        .await
        .ok();

    // Tags set by root protect the role from the tag-guarded admin.
    w.iam(
        &w.root,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "vault"),
            ("AssumeRolePolicyDocument", TRUST_ROOT),
            ("Tags.member.1.Key", "protected"),
            ("Tags.member.1.Value", "true"),
        ],
    )
    .await
    .ok();
    for action in [
        vec![("Action", "DeleteRole"), ("RoleName", "vault")],
        vec![
            ("Action", "UntagRole"),
            ("RoleName", "vault"),
            ("TagKeys.member.1", "protected"),
        ],
    ] {
        assert_eq!(w.iam(&admin, &action).await.code(), "AccessDenied");
    }
    // Nor can the admin create a role with the protecting tag.
    let tagged = w
        .iam(
            &admin,
            &[
                ("Action", "CreateRole"),
                ("RoleName", "sneaky"),
                ("AssumeRolePolicyDocument", TRUST_ROOT),
                ("Tags.member.1.Key", "protected"),
                ("Tags.member.1.Value", "true"),
            ],
        )
        .await;
    assert_eq!(tagged.code(), "AccessDenied");
    w.iam(
        &admin,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "plain"),
            ("AssumeRolePolicyDocument", TRUST_ROOT),
        ],
    )
    .await
    .ok();
}

#[tokio::test]
async fn get_role_shows_when_credentials_were_last_issued() {
    let w = World::new().await;
    let get = [("Action", "GetRole"), ("RoleName", "used")];
    w.iam(
        &w.root,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "used"),
            ("AssumeRolePolicyDocument", TRUST_ROOT),
        ],
    )
    .await
    .ok();
    // Never used: an empty element, last in the Role as AWS has it.
    let before = w.iam(&w.root, &get).await.ok();
    assert!(
        before.body.contains("<RoleLastUsed></RoleLastUsed></Role>"),
        "{}",
        before.body
    );
    let assume = [
        ("Action", "AssumeRole"),
        ("RoleArn", &role_arn("used")),
        ("RoleSessionName", "session"),
    ];
    w.sts(Some(&w.root), &assume).await.ok();
    let issued_at = podiam_wire::iso8601(w.now());
    assert_eq!(
        w.role_last_used("used").await,
        Some((issued_at.clone(), "eu-central-1".to_owned()))
    );
    // Within the hour, another use is not written; after it, it is.
    w.clock.advance(time::Duration::minutes(30));
    w.sts(Some(&w.root), &assume).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        w.role_last_used("used").await,
        Some((issued_at, "eu-central-1".to_owned()))
    );
    w.clock.advance(time::Duration::minutes(30));
    w.sts(Some(&w.root), &assume).await.ok();
    let mut later = None;
    for _ in 0..100 {
        later = w.role_last_used("used").await;
        if later.as_ref().map(|(date, _)| date) == Some(&podiam_wire::iso8601(w.now())) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        later,
        Some((podiam_wire::iso8601(w.now()), "eu-central-1".to_owned()))
    );
    // ListRoles does not return it (nor does AWS's).
    let listed = w.iam(&w.root, &[("Action", "ListRoles")]).await.ok();
    assert!(!listed.body.contains("RoleLastUsed"), "{}", listed.body);

    // A web identity counts too (unsigned: the server's region).
    assert_eq!(
        w.iam(&w.root, &[("Action", "GetRole"), ("RoleName", ROLE)])
            .await
            .ok()
            .tag("LastUsedDate"),
        None
    );
    let token = w.token(
        "carts",
        "carts",
        "sts.amazonaws.com",
        w.now().unix_timestamp(),
    );
    w.web_identity(&token).await.ok();
    assert_eq!(
        w.role_last_used(ROLE).await,
        Some((podiam_wire::iso8601(w.now()), "eu-central-1".to_owned()))
    );
}

#[tokio::test]
async fn sessions_of_a_deleted_role_do_not_carry_over_to_its_namesake() {
    let w = World::new().await;
    let create = [
        ("Action", "CreateRole"),
        ("RoleName", "app"),
        ("AssumeRolePolicyDocument", TRUST_ROOT),
    ];
    let allow_get_role = [
        ("Action", "PutRolePolicy"),
        ("RoleName", "app"),
        ("PolicyName", "p"),
        ("PolicyDocument", ALLOW_ALL),
    ];
    w.iam(&w.root, &create).await.ok();
    let assumed = w
        .sts(
            Some(&w.root),
            &[
                ("Action", "AssumeRole"),
                ("RoleArn", &role_arn("app")),
                ("RoleSessionName", "old"),
            ],
        )
        .await
        .ok();
    let old = session_creds(&assumed);
    w.iam(&w.root, &allow_get_role).await.ok();
    w.iam(&old, &[("Action", "GetRole"), ("RoleName", "app")])
        .await
        .ok();
    w.iam(
        &w.root,
        &[
            ("Action", "DeleteRolePolicy"),
            ("RoleName", "app"),
            ("PolicyName", "p"),
        ],
    )
    .await
    .ok();
    w.iam(&w.root, &[("Action", "DeleteRole"), ("RoleName", "app")])
        .await
        .ok();
    w.iam(&w.root, &create).await.ok();
    w.iam(&w.root, &allow_get_role).await.ok();
    let reply = w
        .iam(&old, &[("Action", "GetRole"), ("RoleName", "app")])
        .await;
    assert_eq!(reply.code(), "AccessDenied", "{}", reply.body);
}

#[tokio::test]
async fn aws_managed_policies_cannot_be_changed() {
    let w = World::new().await;
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    for params in [
        vec![
            ("Action", "CreatePolicyVersion"),
            ("PolicyArn", admin),
            ("PolicyDocument", ALLOW_ALL),
            ("SetAsDefault", "true"),
        ],
        vec![("Action", "DeletePolicy"), ("PolicyArn", admin)],
    ] {
        let reply = w.iam(&w.root, &params).await;
        assert_eq!(reply.code(), "AccessDenied", "{}", reply.body);
    }
    w.iam(&w.root, &[("Action", "GetPolicy"), ("PolicyArn", admin)])
        .await
        .ok();
}

#[tokio::test]
async fn sessions_that_would_not_fit_a_token_are_refused_up_front() {
    let w = World::new().await;
    w.iam(
        &w.root,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "tagged"),
            ("AssumeRolePolicyDocument", TRUST_ROOT),
        ],
    )
    .await
    .ok();
    let arn = role_arn("tagged");
    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), "AssumeRole".into()),
        ("RoleArn".into(), arn.clone()),
        ("RoleSessionName".into(), "big".into()),
    ];
    for i in 1..=50 {
        params.push((
            format!("Tags.member.{i}.Key"),
            format!("{i:03}{}", "k".repeat(125)),
        ));
        params.push((format!("Tags.member.{i}.Value"), "v".repeat(256)));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = w.sts(Some(&w.root), &pairs).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.code(), "PackedPolicyTooLarge");

    let long_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}]{}}}"#,
        " ".repeat(2100)
    );
    let reply = w
        .sts(
            Some(&w.root),
            &[
                ("Action", "AssumeRole"),
                ("RoleArn", &arn),
                ("RoleSessionName", "big"),
                ("Policy", &long_policy),
            ],
        )
        .await;
    assert_eq!(reply.code(), "ValidationError", "{}", reply.body);
}

#[tokio::test]
async fn spellings_of_a_provider_url_are_one_provider_and_ambiguous_ones_none() {
    let w = World::new().await;
    let request = TokenRequest {
        namespace: "carts".into(),
        service_account: ObjectRef {
            name: "carts".into(),
            uid: "u".into(),
        },
        audiences: vec!["sts.amazonaws.com".into()],
        pod: None,
        node: None,
        lifetime: std::time::Duration::from_secs(3600),
        warn_after: None,
    };
    let mint = |iss: &str| {
        Issuer::new(iss, SigningKey::generate(KeyKind::EcP256).unwrap())
            .unwrap()
            .mint(&request, at(NOW), &SeededRng::new(b"k"))
            .unwrap()
    };
    // Another spelling names the same provider, whose keys then refuse a stranger's signature.
    for spelling in [
        format!("{ISSUER}//"),
        ISSUER.replace("https://oidc.eks", "https://OIDC.EKS"),
        ISSUER.replace(".com/", ".com:443/"),
    ] {
        let reply = w.web_identity(&mint(&spelling)).await;
        assert_eq!(
            reply.code(),
            "InvalidIdentityToken",
            "{spelling}: {}",
            reply.body
        );
        assert!(
            !reply
                .tag("Message")
                .unwrap()
                .starts_with("No OpenIDConnect provider"),
            "{spelling}: {}",
            reply.body
        );
    }
    // What cannot be read one way only names no provider.
    for spelling in [format!("{ISSUER}///x/.."), format!("{ISSUER}/%2e%2e")] {
        let reply = w.web_identity(&mint(&spelling)).await;
        assert_eq!(
            reply.code(),
            "InvalidIdentityToken",
            "{spelling}: {}",
            reply.body
        );
        assert!(
            reply
                .tag("Message")
                .unwrap()
                .starts_with("No OpenIDConnect provider found"),
            "{}",
            reply.body
        );
    }
}

#[tokio::test]
async fn simulation_pages_and_has_a_limit() {
    let w = World::new().await;
    let base = [
        ("Action", "SimulateCustomPolicy"),
        ("PolicyInputList.member.1", ALLOW_ALL),
        ("ActionNames.member.1", "s3:GetObject"),
        ("ActionNames.member.2", "s3:PutObject"),
        ("ActionNames.member.3", "s3:ListBucket"),
    ];
    let mut first: Vec<(&str, &str)> = base.to_vec();
    first.push(("MaxItems", "2"));
    let page = w.iam(&w.root, &first).await.ok();
    assert_eq!(page.tag("IsTruncated").unwrap(), "true");
    assert_eq!(page.body.matches("<EvalActionName>").count(), 2);
    let marker = page.tag("Marker").unwrap();
    let mut second = first.clone();
    second.push(("Marker", &marker));
    let rest = w.iam(&w.root, &second).await.ok();
    assert_eq!(rest.tag("IsTruncated").unwrap(), "false");
    assert_eq!(rest.tag("EvalActionName").unwrap(), "s3:ListBucket");

    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), "SimulateCustomPolicy".into()),
        ("PolicyInputList.member.1".into(), ALLOW_ALL.into()),
    ];
    for i in 1..=200 {
        params.push((format!("ActionNames.member.{i}"), format!("s3:Action{i}")));
        params.push((
            format!("ResourceArns.member.{i}"),
            format!("arn:aws:s3:::b{i}"),
        ));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = w.iam(&w.root, &pairs).await;
    assert_eq!(reply.code(), "ValidationError", "{}", reply.body);
}

#[tokio::test]
async fn deleted_root_keys_stay_deleted_across_restarts() {
    use std::sync::Arc;

    use podiam_crypto::{AeadKey, KeyId, Keyring};
    use podiam_server::{StartOptions, start};
    use podiam_store::{MemoryStore, Store};

    #[derive(Debug)]
    struct NoIssuers;
    #[async_trait::async_trait]
    impl podiam_sts::IssuerKeys for NoIssuers {
        async fn keys(
            &self,
            issuer: &str,
            _refresh: bool,
        ) -> Result<podiam_oidc::KeySet, podiam_sts::IssuerError> {
            Err(podiam_sts::IssuerError::Unreachable(issuer.to_owned()))
        }
    }
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let options = StartOptions {
        account_id: None,
        region: "us-east-1".into(),
        allow_http_issuers: false,
        allow_private_issuers: false,
        public_url: "http://127.0.0.1:4599".into(),
        body_budget_bytes: 64 << 20,
        upstream: None,
        console_url: None,
    };
    let boot = || {
        start(
            Arc::clone(&store),
            Arc::new(Keyring::new(
                AeadKey::from_bytes(KeyId(0), &[3; 32]).unwrap(),
            )),
            &options,
            Arc::new(NoIssuers),
            Arc::new(podiam_types::FixedClock::new(at(NOW))),
            Arc::new(SeededRng::new(b"boot")),
        )
    };
    let first = boot().await.unwrap();
    let (id, _) = first.new_root_key.unwrap();
    first.app.iam().delete_access_key(None, &id).await.unwrap();
    let second = boot().await.unwrap();
    assert!(
        second.new_root_key.is_none(),
        "no new root key after a restart"
    );
    assert!(second.app.iam().state().keys_of(None).is_empty());
}

/// IAM has no client tokens: a create retried after its answer was lost finds what the first
/// call made (`EntityAlreadyExists`), and `CreateAccessKey` makes a second key. The client
/// reads the entity (`GetRole`…) or lists the keys. Documented in docs/design.md.
#[tokio::test]
async fn retried_iam_creates_find_what_the_first_call_made() {
    let w = World::new().await;
    let policy = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
    let trust = irsa_trust();
    let creates: [&[(&str, &str)]; 4] = [
        &[
            ("Action", "CreateRole"),
            ("RoleName", "retried"),
            ("AssumeRolePolicyDocument", &trust),
        ],
        &[("Action", "CreateUser"), ("UserName", "retried")],
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "retried"),
            ("PolicyDocument", policy),
        ],
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", ISSUER),
            ("ClientIDList.member.1", "sts.amazonaws.com"),
        ],
    ];
    for params in creates {
        if params[0].1 != "CreateOpenIDConnectProvider" {
            w.iam(&w.root, params).await.ok();
        }
        let retry = w.iam(&w.root, params).await;
        assert_eq!(retry.status, StatusCode::CONFLICT, "{params:?}");
        assert_eq!(retry.code(), "EntityAlreadyExists", "{params:?}");
    }
    // What the client does then: read it.
    w.iam(&w.root, &[("Action", "GetRole"), ("RoleName", "retried")])
        .await
        .ok();
    // A retried CreateAccessKey makes another key, up to the quota of two.
    let key = [("Action", "CreateAccessKey"), ("UserName", "retried")];
    let first = w.iam(&w.root, &key).await.ok();
    let second = w.iam(&w.root, &key).await.ok();
    assert_ne!(first.tag("AccessKeyId"), second.tag("AccessKeyId"));
    let third = w.iam(&w.root, &key).await;
    assert_eq!(third.code(), "LimitExceeded");
}
