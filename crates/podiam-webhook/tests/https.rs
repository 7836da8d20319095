//! AdmissionReviews through `/mutate` over real TLS: the patch applied to the pod, both
//! versions, the refusals, and the certificate reloaded when its files change.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use podiam_crypto::SeededRng;
use podiam_e2e::TestCa;
use podiam_e2e::admission::{apply_answer, container_env, create_review, pod};
use podiam_webhook::MutationConfig;
use podiam_webhook::ServiceAccountInfo;
use podiam_webhook::server::{
    Metrics, ReloadingCert, StaticAssociations, StaticServiceAccounts, Webhook, router, serve_https,
};
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::111122223333:role/carts";

struct Running {
    address: SocketAddr,
    cert: Arc<ReloadingCert>,
    ca: TestCa,
    files: (PathBuf, PathBuf),
    _dir: tempfile::TempDir,
}

fn account(namespace: &str, name: &str, role: Option<&str>) -> ServiceAccountInfo {
    ServiceAccountInfo {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        annotations: role
            .map(|r| ("eks.amazonaws.com/role-arn".to_owned(), r.to_owned()))
            .into_iter()
            .collect(),
    }
}

async fn start() -> Running {
    start_with(None).await
}

async fn start_with(client_ca: Option<&str>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = TestCa::new("podiam test CA one");
    ca.issue(&["localhost", "127.0.0.1"], &cert_path, &key_path);
    let cert = Arc::new(
        ReloadingCert::load(
            cert_path.clone(),
            key_path.clone(),
            podiam_crypto::tls_provider(),
        )
        .unwrap(),
    );
    let webhook = Arc::new(Webhook {
        config: MutationConfig::default(),
        accounts: Arc::new(StaticServiceAccounts::new([
            account("carts", "carts", Some(ROLE)),
            account("orders", "orders", None),
        ])),
        associations: Arc::new(StaticAssociations::new([("orders", "orders")])),
        rng: Arc::new(SeededRng::new(b"https test")),
        metrics: Arc::new(Metrics::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tls = cert.server_config(client_ca.map(str::as_bytes)).unwrap();
    tokio::spawn(serve_https(
        listener,
        tls,
        router(webhook),
        podiam_http::Limits::default(),
        std::future::pending(),
    ));
    Running {
        address,
        cert,
        ca,
        files: (cert_path, key_path),
        _dir: dir,
    }
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, address: SocketAddr, body: &Value) -> Value {
    let response = client
        .post(format!("https://localhost:{}/mutate", address.port()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn irsa_and_pod_identity_reviews_round_trip_over_tls() {
    let running = start().await;
    let client = client(&running.ca.pem());

    let carts = pod("carts", "carts");
    let answer = post(
        &client,
        running.address,
        &create_review("admission.k8s.io/v1", "u-1", &carts),
    )
    .await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "u-1");
    assert_eq!(answer["response"]["allowed"], true);
    let mutated = apply_answer(&carts, &answer);
    assert_eq!(
        container_env(&mutated, "AWS_ROLE_ARN").as_deref(),
        Some(ROLE)
    );
    assert_eq!(
        container_env(&mutated, "AWS_WEB_IDENTITY_TOKEN_FILE").as_deref(),
        Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
    );
    assert_eq!(mutated["spec"]["volumes"][0]["name"], "aws-iam-token");
    assert_eq!(
        mutated["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "sts.amazonaws.com"
    );

    let orders = pod("orders", "orders");
    let answer = post(
        &client,
        running.address,
        &create_review("admission.k8s.io/v1beta1", "u-2", &orders),
    )
    .await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(answer["response"]["uid"], "u-2");
    let mutated = apply_answer(&orders, &answer);
    assert_eq!(
        mutated["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );
    assert_eq!(
        container_env(&mutated, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
        Some("http://169.254.170.23/v1/credentials")
    );
    let lifetime = mutated["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
        ["expirationSeconds"]
        .as_i64()
        .unwrap();
    assert!((79_200..=86_400).contains(&lifetime), "{lifetime}");

    // A pod whose account has neither: admitted untouched.
    let plain = pod("carts", "default");
    let answer = post(
        &client,
        running.address,
        &create_review("admission.k8s.io/v1", "u-3", &plain),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());
}

#[tokio::test]
async fn refusals_never_crash_the_server() {
    let running = start().await;
    let client = client(&running.ca.pem());
    let url = format!("https://localhost:{}/mutate", running.address.port());

    let wrong_type = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    let no_type = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(no_type.status(), 415);

    for body in [
        b"{not json".to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        vec![b' '; podiam_webhook::MAX_REVIEW_BYTES + 10],
    ] {
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert!(
            answer["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    // Still serving.
    let carts = pod("carts", "carts");
    let answer = post(
        &client,
        running.address,
        &create_review("admission.k8s.io/v1", "u-9", &carts),
    )
    .await;
    assert_eq!(
        container_env(&apply_answer(&carts, &answer), "AWS_ROLE_ARN").as_deref(),
        Some(ROLE)
    );
}

async fn healthz(client: &reqwest::Client, address: SocketAddr) -> Result<String, reqwest::Error> {
    client
        .get(format!("https://localhost:{}/healthz", address.port()))
        .send()
        .await?
        .text()
        .await
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let running = start().await;
    let first = client(&running.ca.pem());
    assert_eq!(healthz(&first, running.address).await.unwrap(), "ok");

    // A key that does not match the certificate is refused; the old pair stays.
    let other = tempfile::tempdir().unwrap();
    let renewed = TestCa::new("podiam test CA two");
    renewed.issue(
        &["localhost"],
        &other.path().join("c"),
        &other.path().join("k"),
    );
    std::fs::copy(other.path().join("k"), &running.files.1).unwrap();
    assert!(running.cert.reload().is_err());
    assert_eq!(
        healthz(&client(&running.ca.pem()), running.address)
            .await
            .unwrap(),
        "ok"
    );

    // cert-manager renews both files: the watcher swaps them in.
    tokio::spawn(
        Arc::clone(&running.cert)
            .reload_forever(Duration::from_millis(50), Arc::new(Metrics::new())),
    );
    renewed.issue(&["localhost"], &running.files.0, &running.files.1);
    let second = client(&renewed.pem());
    let mut served = false;
    for _ in 0..100 {
        if healthz(&second, running.address).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the renewed certificate was not served within 5 s");
    // New connections no longer get the old certificate.
    assert!(
        healthz(&client(&running.ca.pem()), running.address)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn with_a_client_ca_only_its_clients_are_served() {
    let api_server_ca = TestCa::new("the API server's client CA");
    let running = start_with(Some(&api_server_ca.pem())).await;
    let dir = tempfile::tempdir().unwrap();
    let identity = |ca: &TestCa, name: &str| {
        let (cert, key) = (
            dir.path().join(format!("{name}.crt")),
            dir.path().join(format!("{name}.key")),
        );
        ca.issue(&["kube-apiserver"], &cert, &key);
        let mut pem = std::fs::read(&cert).unwrap();
        pem.extend(std::fs::read(&key).unwrap());
        reqwest::Identity::from_pem(&pem).unwrap()
    };
    let client_with = |identity: Option<reqwest::Identity>| {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(running.ca.pem().as_bytes()).unwrap()])
            .timeout(Duration::from_secs(5));
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder.build().unwrap()
    };
    let review = create_review("admission.k8s.io/v1", "u-9", &pod("carts", "carts"));
    let send = |client: reqwest::Client| {
        let body = review.to_string();
        async move {
            client
                .post(format!(
                    "https://localhost:{}/mutate",
                    running.address.port()
                ))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        }
    };
    // The API server's certificate: served.
    let answer = send(client_with(Some(identity(&api_server_ca, "apiserver"))))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // No certificate, or one from another CA: the handshake fails, nothing is answered.
    assert!(send(client_with(None)).await.is_err());
    let stranger = TestCa::new("someone else");
    assert!(
        send(client_with(Some(identity(&stranger, "stranger"))))
            .await
            .is_err()
    );
}
