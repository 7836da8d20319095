//! IMDSv2 as SDKs use it: the agent's IMDS on loopback, read by podiam-client's IMDS
//! credentials provider (the same protocol botocore speaks), plus the token rules.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use podiam_agent::{Imds, ImdsConfig, RoleCredentials, RoleSource, UpstreamError, imds_router};
use podiam_client::{ImdsCredentials, ProvideCredentials as _};
use podiam_crypto::{Secret, SystemRng};
use podiam_types::{Clock as _, SystemClock};

#[derive(Debug)]
struct FakeRole {
    calls: AtomicUsize,
}

#[async_trait]
impl RoleSource for FakeRole {
    async fn assume(&self) -> Result<RoleCredentials, UpstreamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let now = SystemClock.now();
        Ok(RoleCredentials {
            access_key_id: format!("ASIANODEROLE{n:08}"),
            secret_access_key: Secret::new("secret".to_owned()),
            token: Secret::new("token".to_owned()),
            expiration: now + time::Duration::hours(1),
            last_updated: now,
        })
    }
}

async fn serve(allow_v1: bool) -> (String, Arc<FakeRole>) {
    let role = Arc::new(FakeRole {
        calls: AtomicUsize::new(0),
    });
    let imds = Arc::new(Imds::new(
        ImdsConfig {
            role_name: "node-role".into(),
            region: "eu-central-1".into(),
            account_id: "637423329338".into(),
            node_name: "node-1".into(),
            allow_v1,
        },
        role.clone(),
        Arc::new(SystemClock),
        Arc::new(SystemRng),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, imds_router(imds)).await });
    (url, role)
}

#[tokio::test]
async fn sdk_style_clients_get_the_role_credentials() {
    let (url, role) = serve(false).await;
    let provider = ImdsCredentials::new(&url, Arc::new(SystemClock));
    let creds = provider.credentials().await.expect("credentials");
    assert_eq!(creds.access_key_id, "ASIANODEROLE00000000");
    assert_eq!(creds.session_token.as_deref(), Some("token"));
    // Cached on both sides: no second AssumeRole.
    provider.credentials().await.expect("again");
    assert_eq!(role.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tokens_are_required_and_bounded() {
    let (url, _) = serve(false).await;
    let http = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    let put = |ttl: Option<&str>| {
        let mut r = http.put(format!("{url}/latest/api/token"));
        if let Some(ttl) = ttl {
            r = r.header("x-aws-ec2-metadata-token-ttl-seconds", ttl);
        }
        r.send()
    };
    for bad in [None, Some("0"), Some("21601"), Some("abc")] {
        assert_eq!(status(put(bad).await.expect("put")), 400, "{bad:?}");
    }
    let proxied = http
        .put(format!("{url}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "60")
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .expect("put");
    assert_eq!(status(proxied), 403);
    let token = put(Some("60"))
        .await
        .expect("put")
        .text()
        .await
        .expect("token");
    let get = |path: &str, token: Option<&str>| {
        let mut r = http.get(format!("{url}{path}"));
        if let Some(t) = token {
            r = r.header("x-aws-ec2-metadata-token", t);
        }
        r.send()
    };
    assert_eq!(
        status(
            get("/latest/meta-data/iam/security-credentials/", None)
                .await
                .expect("get")
        ),
        401,
        "IMDSv1 is off"
    );
    assert_eq!(
        status(
            get(
                "/latest/meta-data/iam/security-credentials/",
                Some("forged")
            )
            .await
            .expect("get")
        ),
        401
    );
    let listing = get("/latest/meta-data/iam/security-credentials/", Some(&token))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert_eq!(listing, "node-role");
    let creds: serde_json::Value = get(
        "/latest/meta-data/iam/security-credentials/node-role",
        Some(&token),
    )
    .await
    .expect("get")
    .json()
    .await
    .expect("json");
    for field in [
        "Code",
        "LastUpdated",
        "Type",
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
    ] {
        assert!(creds.get(field).is_some(), "{field} in {creds}");
    }
    assert_eq!(creds["Code"], "Success");
    assert_eq!(creds["Type"], "AWS-HMAC");
    let region = get("/latest/meta-data/placement/region", Some(&token))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert_eq!(region, "eu-central-1");
    let doc: serde_json::Value = get("/latest/dynamic/instance-identity/document", Some(&token))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["accountId"], "637423329338");
    assert_eq!(doc["region"], "eu-central-1");
    assert_eq!(
        status(
            get(
                "/latest/meta-data/iam/security-credentials/other",
                Some(&token)
            )
            .await
            .expect("get")
        ),
        404
    );
}

#[tokio::test]
async fn imds_v1_when_allowed() {
    let (url, _) = serve(true).await;
    let listing = reqwest::get(format!("{url}/latest/meta-data/iam/security-credentials/"))
        .await
        .expect("get");
    assert_eq!(listing.status().as_u16(), 200);
}
