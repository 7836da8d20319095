//! IMDSv2 as SDKs use it: the agent's IMDS on loopback, read by podiam-client's IMDS
//! credentials provider (the same protocol botocore speaks), plus the token rules.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use podiam_agent::{
    Imds, ImdsConfig, RoleCredentials, RoleSource, UpstreamError, imds_router, node_only,
};
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
            hosts: vec!["127.0.0.1".into(), "localhost".into()],
        },
        role.clone(),
        Arc::new(SystemClock),
        Arc::new(SystemRng),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(podiam_http::serve(
        listener,
        imds_router(imds),
        podiam_http::Limits::default(),
        Some(node_only(Vec::new())),
        std::future::pending(),
    ));
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

/// Sends raw request bytes and returns the status line.
async fn raw_status(url: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.expect("read");
    String::from_utf8_lossy(buf.get(..n).unwrap_or_default())
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_requests_addressed_to_imds_are_answered() {
    let (url, _) = serve(false).await;
    let put = "PUT /latest/api/token HTTP/1.1\r\nx-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n";
    assert!(
        raw_status(&url, &format!("{put}Host: 127.0.0.1\r\n\r\n"))
            .await
            .contains(" 200 ")
    );
    assert!(
        raw_status(&url, &format!("{put}Host: localhost:80\r\n\r\n"))
            .await
            .contains(" 200 ")
    );
    // DNS rebinding (another name), two Host headers, a bad port, absolute form: refused.
    for refused in [
        format!("{put}Host: evil.example\r\n\r\n"),
        format!("{put}Host: 127.0.0.1\r\nHost: evil.example\r\n\r\n"),
        format!("{put}Host: 127.0.0.1:99999\r\n\r\n"),
        put.replace("PUT /latest", "PUT http://127.0.0.1/latest") + "Host: 127.0.0.1\r\n\r\n",
    ] {
        let status = raw_status(&url, &refused).await;
        assert!(!status.contains(" 200 "), "{refused:?} got {status}");
    }
}

#[test]
fn only_the_nodes_own_addresses_may_connect() {
    let filter = node_only(Vec::new());
    let peer = |ip: &str| std::net::SocketAddr::new(ip.parse().expect("ip"), 40000);
    assert!(filter(peer("127.0.0.1")), "loopback is the node's");
    assert!(
        filter(peer("::ffff:127.0.0.1")),
        "a v4-mapped loopback is the node's"
    );
    // TEST-NET-3 is never assigned here: a pod's address stands in for it.
    assert!(!filter(peer("203.0.113.77")));
    assert!(!filter(peer("fd00:ec2::99")));
    let also = node_only(vec!["203.0.113.0/24".parse().expect("cidr")]);
    assert!(
        also(peer("203.0.113.77")),
        "--imds-allow-from adds a network"
    );
    assert!(!also(peer("198.51.100.1")));
}
