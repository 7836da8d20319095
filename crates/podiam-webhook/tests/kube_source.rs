//! The ServiceAccount watch cache, through the real `kube` client, against an API server that
//! speaks the wire format (LIST, a streaming WATCH, GET, 404 Status).

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::time::{Duration, Instant};

use podiam_e2e::FakeApiServer;
use podiam_webhook::WebhookError;
use podiam_webhook::server::{KubeServiceAccounts, ServiceAccounts};

const ROLE_KEY: &str = "eks.amazonaws.com/role-arn";

async fn source(api: &FakeApiServer, lookup_timeout: Duration) -> KubeServiceAccounts {
    let config = kube::Config::new(api.url().parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let (accounts, watch) = KubeServiceAccounts::new(client, "eks.amazonaws.com", lookup_timeout);
    tokio::spawn(watch);
    accounts
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_cache_follows_the_watch_and_keeps_only_prefixed_annotations() {
    let api = FakeApiServer::start();
    api.apply(
        "carts",
        "carts",
        &[
            (ROLE_KEY, "arn:aws:iam::111122223333:role/carts"),
            (
                "kubectl.kubernetes.io/last-applied-configuration",
                "{\"big\":true}",
            ),
        ],
    );
    let accounts = source(&api, Duration::from_secs(1)).await;
    until("the initial list", async || accounts.is_ready()).await;
    assert_eq!(accounts.cached(), 1);

    let found = accounts.get("carts", "carts").await.unwrap().unwrap();
    assert_eq!(found.name, "carts");
    assert_eq!(found.namespace, "carts");
    assert_eq!(
        found.annotations.keys().collect::<Vec<_>>(),
        vec![ROLE_KEY],
        "only prefixed annotations are kept"
    );

    // Added, changed and deleted through the watch, with no GET.
    api.apply(
        "orders",
        "orders",
        &[(ROLE_KEY, "arn:aws:iam::111122223333:role/orders")],
    );
    until("the watched addition", async || accounts.cached() == 2).await;
    api.apply(
        "carts",
        "carts",
        &[(ROLE_KEY, "arn:aws:iam::111122223333:role/carts-v2")],
    );
    until("the watched change", async || {
        accounts
            .get("carts", "carts")
            .await
            .unwrap()
            .is_some_and(|a| a.annotations[ROLE_KEY].ends_with("carts-v2"))
    })
    .await;
    assert_eq!(api.gets(), 0, "cache hits never call the API");

    api.delete("orders", "orders");
    until("the watched deletion", async || accounts.cached() == 1).await;
    // Gone from the cache, and the GET fallback finds nothing either.
    assert!(accounts.get("orders", "orders").await.unwrap().is_none());
    assert_eq!(api.gets(), 1);
}

#[tokio::test]
async fn a_miss_falls_back_to_one_get_with_a_short_timeout() {
    let api = FakeApiServer::start();
    let accounts = source(&api, Duration::from_millis(300)).await;
    until("the initial list", async || accounts.is_ready()).await;

    // Created a moment ago: the watch has not shown it, a GET does.
    api.hide(
        "checkout",
        "checkout",
        &[(ROLE_KEY, "arn:aws:iam::111122223333:role/checkout")],
    );
    let found = accounts.get("checkout", "checkout").await.unwrap().unwrap();
    assert_eq!(
        found.annotations[ROLE_KEY],
        "arn:aws:iam::111122223333:role/checkout"
    );
    assert_eq!(api.gets(), 1);

    // A slow API server: the lookup gives up after the timeout instead of holding the pod.
    api.set_get_delay(Duration::from_secs(5));
    let started = Instant::now();
    let slow = accounts.get("ui", "ui").await;
    assert!(
        matches!(slow, Err(WebhookError::KubernetesTimeout(_))),
        "{slow:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_api_server_is_an_error_not_a_hang() {
    let api = FakeApiServer::start();
    let url = api.url().to_owned();
    drop(api);
    let config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let (accounts, watch) =
        KubeServiceAccounts::new(client, "eks.amazonaws.com", Duration::from_millis(500));
    tokio::spawn(watch);
    assert!(!accounts.is_ready());
    let started = Instant::now();
    let result = accounts.get("carts", "carts").await;
    assert!(
        matches!(
            result,
            Err(WebhookError::Kubernetes(_) | WebhookError::KubernetesTimeout(_))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn misses_are_remembered_briefly() {
    let api = FakeApiServer::start();
    let accounts = source(&api, Duration::from_secs(1)).await;
    until("the initial list", async || accounts.is_ready()).await;
    for _ in 0..20 {
        assert!(accounts.get("made-up", "nobody").await.unwrap().is_none());
    }
    assert_eq!(api.gets(), 1, "one GET for a name asked about twenty times");
    assert!(accounts.get("made-up", "other").await.unwrap().is_none());
    assert_eq!(api.gets(), 2);
}

#[tokio::test]
async fn during_an_api_outage_the_stale_cache_is_not_trusted_and_readyz_says_so() {
    let api = FakeApiServer::start();
    api.apply(
        "carts",
        "carts",
        &[(ROLE_KEY, "arn:aws:iam::111122223333:role/carts")],
    );
    let accounts = source(&api, Duration::from_millis(500)).await;
    until("the initial list", async || accounts.is_ready()).await;
    assert!(accounts.get("carts", "carts").await.unwrap().is_some());
    assert!(accounts.outage().is_none());

    api.set_down(true);
    // Once the watch has noticed, a cached account is looked up again, and the lookup fails:
    // an annotation removed during the outage is never injected from the stale cache.
    until("the broken watch to be noticed", async || {
        accounts.get("carts", "carts").await.is_err()
    })
    .await;
    let (age, why) = accounts.outage().expect("an outage is reported");
    assert!(age < Duration::from_secs(10), "{age:?}");
    assert!(!why.is_empty());

    api.set_down(false);
    until("the API to be back", async || {
        accounts
            .get("carts", "carts")
            .await
            .is_ok_and(|a| a.is_some())
    })
    .await;
    assert!(accounts.outage().is_none());
}
