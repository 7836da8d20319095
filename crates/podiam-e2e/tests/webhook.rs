//! `podiam webhook` as deployed: the real binary over TLS, ServiceAccounts from a Kubernetes API
//! watch, associations from a real podiam server (created with the AWS CLI), metrics, and a
//! clean stop on SIGTERM.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::time::{Duration, Instant};

use podiam_e2e::admission::container_env as env_of;
use podiam_e2e::{ClientEnv, FakeApiServer, Server, TestCa, WebhookProcess};

const PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:TagSession","sts:AssumeRole"]}]}"#;
const CARTS_ROLE: &str = "arn:aws:iam::000000000000:role/eks-workshop-carts-dynamo-irsa";

fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// The webhook's own identity, as docs/kubernetes.md creates it: an IAM user allowed
/// `eks:ListPodIdentityAssociations` on the cluster and nothing else.
fn least_privilege(server: &Server, root: &ClientEnv) -> ClientEnv {
    root.aws(&["iam", "create-user", "--user-name", "podiam-webhook"])
        .ok();
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "podiam-webhook",
        "--policy-name",
        "list-associations",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:ListPodIdentityAssociations","Resource":"arn:aws:eks:us-east-1:000000000000:cluster/eks-workshop"}]}"#,
    ])
    .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "podiam-webhook"])
        .json();
    let env = ClientEnv::keys(
        server,
        key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        None,
    );
    // Nothing more than that.
    env.aws(&["eks", "list-clusters"])
        .fails_with("AccessDeniedException");
    env
}

#[test]
fn the_webhook_follows_service_accounts_and_associations() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    root.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "eks-workshop",
        "--role-arn",
        "arn:aws:iam::000000000000:role/cluster",
        "--resources-vpc-config",
        "subnetIds=subnet-1",
    ])
    .ok();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "eks-workshop-orders-pia",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .ok();
    let api = FakeApiServer::start();
    api.apply(
        "carts",
        "carts",
        &[("eks.amazonaws.com/role-arn", CARTS_ROLE)],
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("podiam e2e CA");
    let webhook =
        WebhookProcess::start(&least_privilege(&server, &root), dir.path(), &api, &ca, &[]);

    until("readiness", Duration::from_secs(10), || {
        webhook.get("/readyz").0 == 200
    });
    assert_eq!(webhook.get("/healthz"), (200, "ok".to_owned()));

    // IRSA from the watched ServiceAccount, with the configured region.
    let (_, carts) = webhook.review("carts", "carts");
    assert_eq!(env_of(&carts, "AWS_ROLE_ARN").as_deref(), Some(CARTS_ROLE));
    assert_eq!(env_of(&carts, "AWS_REGION").as_deref(), Some("us-west-2"));

    // No association and no annotation yet: untouched.
    let (answer, _) = webhook.review("orders", "orders");
    assert!(answer["response"].get("patch").is_none());

    // An association made with the AWS CLI reaches the next pod within a refresh.
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "eks-workshop",
        "--namespace",
        "orders",
        "--service-account",
        "orders",
        "--role-arn",
        "arn:aws:iam::000000000000:role/eks-workshop-orders-pia",
    ])
    .ok();
    let took = until("the new association", Duration::from_secs(5), || {
        let (_, pod) = webhook.review("orders", "orders");
        env_of(&pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    });
    eprintln!("the association reached the webhook in {took:?}");
    let (_, orders) = webhook.review("orders", "orders");
    assert_eq!(
        orders["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );

    // A ServiceAccount annotated after the webhook started arrives through the watch.
    api.apply(
        "checkout",
        "checkout",
        &[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::000000000000:role/checkout",
        )],
    );
    until("the watched ServiceAccount", Duration::from_secs(5), || {
        let (_, pod) = webhook.review("checkout", "checkout");
        env_of(&pod, "AWS_ROLE_ARN").is_some()
    });

    let (status, metrics) = webhook.get("/metrics");
    assert_eq!(status, 200);
    for expected in [
        "podiam_webhook_reviews_total{mode=\"irsa\"}",
        "podiam_webhook_reviews_total{mode=\"pod-identity\"}",
        "podiam_webhook_reviews_total{mode=\"none\"}",
        "podiam_webhook_associations 1",
        "podiam_webhook_service_accounts 2",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
}

#[test]
fn sigterm_stops_the_webhook_cleanly() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let api = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("podiam e2e CA");
    let mut webhook = WebhookProcess::start(&root, dir.path(), &api, &ca, &[]);
    // The cluster does not exist: not ready, and the refresh error is counted, not fatal.
    until(
        "a failed association refresh",
        Duration::from_secs(10),
        || {
            webhook
                .get("/metrics")
                .1
                .contains("podiam_webhook_errors_total{kind=\"association_refresh\"}")
        },
    );
    let (status, body) = webhook.get("/readyz");
    assert_eq!(status, 503);
    assert!(body.contains("associations"), "{body}");

    let pid = webhook.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = webhook.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(dir.path().join("webhook.log")).unwrap();
    assert!(log.contains("stopped"), "{log}");
}
