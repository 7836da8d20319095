//! OIDC discovery against a real HTTP issuer on loopback: one fetch for a burst of cold
//! requests, refusal of plain HTTP unless allowed, and of redirects that leave the rules.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use podiam_crypto::{JwkSet, JwsAlgorithm, KeyKind, SigningKey};
use podiam_oidc::DiscoveryDocument;
use podiam_server::HttpIssuerKeys;
use podiam_sts::{IssuerError, IssuerKeys};
use podiam_types::SystemClock;

#[derive(Clone)]
struct Issuer {
    url: String,
    jwks: String,
    discovery_hits: Arc<AtomicUsize>,
    redirect_to: Option<String>,
}

async fn discovery(State(issuer): State<Issuer>) -> Response {
    issuer.discovery_hits.fetch_add(1, Ordering::SeqCst);
    // Slow enough that concurrent misses overlap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(to) = &issuer.redirect_to {
        return (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response();
    }
    let doc = DiscoveryDocument::new(
        &issuer.url,
        &format!("{}/openid/v1/jwks", issuer.url),
        &[JwsAlgorithm::ES256],
    );
    axum::Json(doc).into_response()
}

async fn jwks(State(issuer): State<Issuer>) -> Response {
    (
        [(header::CONTENT_TYPE, JwkSet::MEDIA_TYPE)],
        issuer.jwks.clone(),
    )
        .into_response()
}

async fn serve(redirect_to: Option<String>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/id/test", listener.local_addr().unwrap());
    let key = SigningKey::generate(KeyKind::EcP256).unwrap();
    let key_set = serde_json::to_string(&JwkSet {
        keys: vec![key.verifying_key().to_jwk()],
    })
    .unwrap();
    let issuer = Issuer {
        url,
        jwks: key_set,
        discovery_hits: Arc::new(AtomicUsize::new(0)),
        redirect_to,
    };
    let app = Router::new()
        .route("/id/test/.well-known/openid-configuration", get(discovery))
        .route("/id/test/openid/v1/jwks", get(jwks))
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    issuer
}

fn keys(allow_http: bool) -> Arc<HttpIssuerKeys> {
    Arc::new(HttpIssuerKeys::new(allow_http, None, Arc::new(SystemClock)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_cold_requests_fetches_once_and_all_get_the_keys() {
    let issuer = serve(None).await;
    let fetcher = keys(true);
    let mut calls = Vec::new();
    for _ in 0..32 {
        let fetcher = Arc::clone(&fetcher);
        let url = issuer.url.clone();
        calls.push(tokio::spawn(async move { fetcher.keys(&url, false).await }));
    }
    for call in calls {
        let keys = call.await.unwrap().unwrap();
        assert!(!keys.is_empty(), "every caller gets the keys");
    }
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
    // An unknown key id right after a fetch does not refetch (rate limit).
    fetcher.keys(&issuer.url, true).await.unwrap();
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn plain_http_needs_the_flag_and_loopback() {
    let issuer = serve(None).await;
    let refused = keys(false).keys(&issuer.url, false).await.unwrap_err();
    assert!(
        matches!(&refused, IssuerError::NotAllowed(m) if m.contains("--allow-http-issuers")),
        "{refused:?}"
    );
    assert!(matches!(
        keys(true).keys("http://10.1.2.3/id/x", false).await,
        Err(IssuerError::NotAllowed(_))
    ));
    assert!(matches!(
        keys(true)
            .keys("http://127.0.0.1:1@evil.example/id/x", false)
            .await,
        Err(IssuerError::NotAllowed(_))
    ));
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_that_leave_the_rules_are_not_followed() {
    let issuer = serve(Some("http://10.255.255.1/elsewhere".to_owned())).await;
    let failed = keys(true).keys(&issuer.url, false).await.unwrap_err();
    assert!(matches!(failed, IssuerError::Unreachable(_)), "{failed:?}");
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
    // A failed first fetch is not retried by every request: the next one is told to retry.
    let again = keys(true);
    let _ = again.keys(&issuer.url, false).await;
    let second = again.keys(&issuer.url, false).await.unwrap_err();
    assert!(
        matches!(&second, IssuerError::Unreachable(m) if m.contains("retrying")),
        "{second:?}"
    );
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 2);
}
