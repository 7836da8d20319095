//! Key rotation through `Router::oneshot`: the session keyring and a hosted issuer's key,
//! without a restart and without breaking what the old keys signed.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use serde_json::{Value, json};
use support::{ACCOUNT, World, session_creds};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::637423329338:root"},"Action":"sts:AssumeRole"}]}"#;

async fn jwks(w: &World) -> Value {
    w.rest("eks", &w.root, "GET", "/clusters/fleet/podiam/jwks", None)
        .await
        .ok()
        .json()
}

async fn assume(w: &World) -> support::Creds {
    let reply = w
        .sts(
            Some(&w.root),
            &[
                ("Action", "AssumeRole"),
                ("RoleArn", &format!("arn:aws:iam::{ACCOUNT}:role/rotated")),
                ("RoleSessionName", "rotation"),
            ],
        )
        .await
        .ok();
    session_creds(&reply)
}

#[tokio::test]
async fn a_session_key_rotation_keeps_old_sessions_working() {
    let w = World::new().await;
    w.iam(
        &w.root,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "rotated"),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    )
    .await
    .ok();
    let before = assume(&w).await;

    let rotated = w
        .rest(
            "podiam",
            &w.root,
            "POST",
            "/podiam/keys/session/rotate",
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(rotated["kind"], "session");
    assert_eq!(rotated["currentKeyId"], "2");
    assert_eq!(rotated["previousKeyId"], "1");

    let after = assume(&w).await;
    assert_ne!(before.token, after.token);
    for creds in [&before, &after] {
        let who = w
            .sts(Some(creds), &[("Action", "GetCallerIdentity")])
            .await
            .ok();
        assert_eq!(
            who.tag("Arn").unwrap(),
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/rotated/rotation")
        );
    }

    // Only callers allowed podiam:RotateKeys may rotate.
    let user = w.user("operator", None).await;
    let refused = w
        .rest("podiam", &user, "POST", "/podiam/keys/session/rotate", None)
        .await;
    assert_eq!(
        refused.error_type(),
        "AccessDeniedException",
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn an_issuer_key_rotation_publishes_both_keys() {
    let w = World::new().await;
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters",
        Some(json!({"name": "fleet", "podiamIssuer": {"kind": "hosted"}})),
    )
    .await
    .ok();
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["jwks"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(&jwks(&w).await);
    assert_eq!(before.len(), 1);

    let rotated = w
        .rest(
            "podiam",
            &w.root,
            "POST",
            "/clusters/fleet/podiam/keys/rotate",
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(rotated["previousKeyId"], before[0].as_str());
    let current = rotated["currentKeyId"].as_str().unwrap().to_owned();
    assert_ne!(current, before[0]);
    let after = kids(&jwks(&w).await);
    assert_eq!(
        after.len(),
        2,
        "old and new keys are published during the overlap"
    );
    assert!(after.contains(&before[0]) && after.contains(&current));

    // New tokens are signed with the new key.
    let token = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters/fleet/podiam/service-account-token",
            Some(json!({"namespace": "default", "serviceAccount": "app", "audiences": ["sts.amazonaws.com"]})),
        )
        .await
        .ok()
        .json();
    let jwt = token["token"].as_str().unwrap();
    let header = jwt.split('.').next().unwrap();
    use base64::Engine as _;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], current.as_str());

    // An external issuer's keys are not podiam's to rotate.
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters",
        Some(json!({"name": "outside", "podiamIssuer": {"kind": "external", "url": "https://oidc.example.com/id/1"}})),
    )
    .await
    .ok();
    let refused = w
        .rest(
            "podiam",
            &w.root,
            "POST",
            "/clusters/outside/podiam/keys/rotate",
            None,
        )
        .await;
    assert_eq!(
        refused.error_type(),
        "InvalidRequestException",
        "{}",
        refused.body
    );
    let missing = w
        .rest(
            "podiam",
            &w.root,
            "POST",
            "/clusters/nothing/podiam/keys/rotate",
            None,
        )
        .await;
    assert_eq!(missing.error_type(), "ResourceNotFoundException");
}
