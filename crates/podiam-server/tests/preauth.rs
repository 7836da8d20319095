//! Work done before authentication is bounded: unsigned bodies are small, a body is not read
//! before the signature's body-free checks pass, bodies together stay within a budget, and a
//! long-term key does not take a session token.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use bytes::Bytes;
use support::{Creds, World};
use tokio::sync::mpsc;
use tower::ServiceExt as _;

/// A body that sends `first` and then never ends (a client that stalls).
fn stalled_body(first: Vec<u8>) -> (Body, mpsc::Sender<Result<Bytes, std::io::Error>>) {
    let (sender, receiver) = mpsc::channel(1);
    let _ = sender.try_send(Ok(Bytes::from(first)));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    (Body::from_stream(stream), sender)
}

#[tokio::test]
async fn a_long_term_key_with_a_session_token_is_refused() {
    let world = World::new().await;
    let forged = Creds {
        token: Some("anything-at-all".to_owned()),
        ..world.root.clone()
    };
    let reply = world.iam(&forged, &[("Action", "ListRoles")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "InvalidClientTokenId");
    let reply = world.rest("eks", &forged, "GET", "/clusters", None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_type(), "UnrecognizedClientException");
    // Without the token, the same key works.
    world
        .iam(&world.root, &[("Action", "ListRoles")])
        .await
        .ok();
}

#[tokio::test]
async fn an_unsigned_query_body_is_capped_at_64_kib() {
    let world = World::new().await;
    let big = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken={}",
        "a".repeat(70 * 1024)
    );
    let request = Request::post("/")
        .header(header::HOST, "127.0.0.1:4599")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(big))
        .unwrap();
    let reply = world.send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "RequestEntityTooLarge");
    // A request signed by a known key may send more (here a 200 KiB parameter, which the
    // action then refuses on its own terms, not for its size).
    let large = "x".repeat(200 * 1024);
    let reply = world
        .iam(&world.root, &[("Action", "TagRole"), ("RoleName", &large)])
        .await;
    assert_ne!(reply.code(), "RequestEntityTooLarge", "{}", reply.body);
}

#[tokio::test]
async fn a_rest_json_body_is_not_read_unless_the_key_is_known() {
    let world = World::new().await;
    let stranger = Creds {
        id: "AKIAUNKNOWNKEY000000".to_owned(),
        secret: "x".repeat(40),
        token: None,
    };
    let signed = world.rest_request("eks", Some(&stranger), "POST", "/clusters", None);
    let (parts, _) = signed.into_parts();
    let (body, _keep_open) = stalled_body(vec![b'{'; 1024]);
    let request = Request::from_parts(parts, body);
    // The body never ends: a server that tried to read it would not answer.
    let response = tokio::time::timeout(
        Duration::from_secs(2),
        world.router.clone().oneshot(request),
    )
    .await
    .expect("answered without reading the body")
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        HeaderValue::from_static("UnrecognizedClientException")
    );
}

#[tokio::test]
async fn bodies_beyond_the_budget_are_throttled_not_buffered() {
    let world = World::new().await;
    // The test world's budget is 64 MiB (65,536 KiB). 109 signed requests each send 600 KiB
    // and stall (the signature is checked only once a body is complete): 136 KiB are left.
    let mut stalled = Vec::new();
    for _ in 0..109 {
        let (parts, _) = world
            .rest_request("eks", Some(&world.root), "POST", "/clusters", None)
            .into_parts();
        let (body, sender) = stalled_body(vec![b' '; 600 << 10]);
        let router = world.router.clone();
        stalled.push((
            tokio::spawn(router.oneshot(Request::from_parts(parts, body))),
            sender,
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The next one's first 300 KiB do not fit: it is answered at once, throttled.
    let (parts, _) = world
        .rest_request("eks", Some(&world.root), "POST", "/clusters", None)
        .into_parts();
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..2)
        .map(|_| Ok(Bytes::from(vec![b' '; 300 << 10])))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let response = tokio::time::timeout(
        Duration::from_secs(2),
        world
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body)),
    )
    .await
    .expect("answered at once")
    .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        HeaderValue::from_static("ThrottlingException")
    );
    // Once the stalled clients go, the budget is back: a normal call works.
    for (task, sender) in stalled {
        drop(sender);
        let _ = task.await;
    }
    world
        .rest("eks", &world.root, "GET", "/clusters", None)
        .await
        .ok();
}
