//! OIDC discovery against a real HTTP issuer on loopback: one fetch for a burst of cold
//! requests, refusal of plain HTTP unless allowed, no redirects, the JWKS on the issuer's own
//! origin, no internal addresses, and nothing of the upstream's answer told to the caller.

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
use podiam_server::{HttpIssuerKeys, IssuerNetworks};
use podiam_sts::{IssuerError, IssuerKeys};
use podiam_types::SystemClock;

#[derive(Clone, Default)]
struct Behaviour {
    redirect_to: Option<String>,
    jwks_uri: Option<String>,
    fail_with: Option<(StatusCode, &'static str)>,
}

#[derive(Clone)]
struct Issuer {
    url: String,
    jwks: String,
    discovery_hits: Arc<AtomicUsize>,
    behaviour: Behaviour,
}

async fn discovery(State(issuer): State<Issuer>) -> Response {
    issuer.discovery_hits.fetch_add(1, Ordering::SeqCst);
    // Slow enough that concurrent misses overlap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(to) = &issuer.behaviour.redirect_to {
        return (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response();
    }
    if let Some((status, body)) = issuer.behaviour.fail_with {
        return (status, body).into_response();
    }
    let jwks_uri = issuer
        .behaviour
        .jwks_uri
        .clone()
        .unwrap_or_else(|| format!("{}/openid/v1/jwks", issuer.url));
    let doc = DiscoveryDocument::new(&issuer.url, &jwks_uri, &[JwsAlgorithm::ES256]);
    axum::Json(doc).into_response()
}

async fn jwks(State(issuer): State<Issuer>) -> Response {
    (
        [(header::CONTENT_TYPE, JwkSet::MEDIA_TYPE)],
        issuer.jwks.clone(),
    )
        .into_response()
}

async fn serve(behaviour: Behaviour) -> Issuer {
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
        behaviour,
    };
    let app = Router::new()
        .route("/id/test/.well-known/openid-configuration", get(discovery))
        .route("/id/test/openid/v1/jwks", get(jwks))
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    issuer
}

fn keys(allow_http: bool) -> Arc<HttpIssuerKeys> {
    let networks = IssuerNetworks {
        loopback: allow_http,
        private: false,
    };
    Arc::new(HttpIssuerKeys::new(networks, None, Arc::new(SystemClock)).unwrap())
}

/// What every refusal says to the caller: nothing about the network or the upstream.
fn is_generic(error: &IssuerError) -> bool {
    matches!(error, IssuerError::Unreachable(m) if m == "the issuer's keys could not be fetched")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_cold_requests_fetches_once_and_all_get_the_keys() {
    let issuer = serve(Behaviour::default()).await;
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
    let issuer = serve(Behaviour::default()).await;
    let refused = keys(false).keys(&issuer.url, false).await.unwrap_err();
    assert!(is_generic(&refused), "{refused:?}");
    for url in [
        "http://10.1.2.3/id/x",
        "http://127.0.0.1:1@evil.example/id/x",
        "https://169.254.169.254/latest/meta-data",
        "https://169.254.170.23/v1/credentials",
        "https://[fd00:ec2::254]/x",
        "https://localhost/x",
    ] {
        let refused = keys(true).keys(url, false).await.unwrap_err();
        assert!(is_generic(&refused), "{url}: {refused:?}");
    }
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn no_redirect_is_followed() {
    // Even one to the same loopback issuer.
    let target = serve(Behaviour::default()).await;
    let issuer = serve(Behaviour {
        redirect_to: Some(format!("{}/.well-known/openid-configuration", target.url)),
        ..Behaviour::default()
    })
    .await;
    let failed = keys(true).keys(&issuer.url, false).await.unwrap_err();
    assert!(is_generic(&failed), "{failed:?}");
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(target.discovery_hits.load(Ordering::SeqCst), 0);
    // A failed first fetch is not retried by every request.
    let again = keys(true);
    let _ = again.keys(&issuer.url, false).await;
    let second = again.keys(&issuer.url, false).await.unwrap_err();
    assert!(is_generic(&second), "{second:?}");
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_jwks_must_be_on_the_issuers_own_origin() {
    let elsewhere = serve(Behaviour::default()).await;
    for jwks_uri in [
        format!("{}/openid/v1/jwks", elsewhere.url),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        let issuer = serve(Behaviour {
            jwks_uri: Some(jwks_uri.clone()),
            ..Behaviour::default()
        })
        .await;
        let refused = keys(true).keys(&issuer.url, false).await.unwrap_err();
        assert!(is_generic(&refused), "{jwks_uri}: {refused:?}");
    }
}

#[tokio::test]
async fn the_upstreams_answer_is_not_echoed_to_the_caller() {
    let issuer = serve(Behaviour {
        fail_with: Some((StatusCode::IM_A_TEAPOT, "INTERNAL-SECRET-BANNER")),
        ..Behaviour::default()
    })
    .await;
    let refused = keys(true).keys(&issuer.url, false).await.unwrap_err();
    let text = refused.to_string();
    assert!(is_generic(&refused), "{text}");
    assert!(!text.contains("418") && !text.contains("SECRET"), "{text}");
}
