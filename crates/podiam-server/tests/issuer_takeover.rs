//! Only IAM decides which keys STS trusts: a cluster that brings its own keys for an issuer
//! URL needs IAM's permission on that URL's OIDC provider, and one issuer cannot be registered
//! twice under other spellings of its URL.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use axum::http::StatusCode;
use podiam_crypto::{JwkSet, KeyKind, SeededRng, SigningKey};
use podiam_oidc::{Issuer, ObjectRef, TokenRequest};
use serde_json::json;
use support::{ACCOUNT, ISSUER, ISSUER_HOST_PATH, NOW, ROLE, World, at, role_arn};

/// A user allowed only `eks:CreateCluster` on `cluster/evil*`, as in the attack.
async fn cluster_creator(w: &World, extra: Option<serde_json::Value>) -> support::Creds {
    let mut statements = vec![json!({
        "Effect": "Allow",
        "Action": "eks:CreateCluster",
        "Resource": format!("arn:aws:eks:eu-central-1:{ACCOUNT}:cluster/evil*"),
    })];
    statements.extend(extra);
    let policy = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    w.user("mallory", Some(&policy)).await
}

fn own_key() -> (SigningKey, String) {
    let key = SigningKey::generate(KeyKind::EcP256).unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.verifying_key().to_jwk()],
    })
    .unwrap();
    (key, jwks)
}

fn irsa_token(issuer: &str, key: SigningKey) -> String {
    Issuer::new(issuer, key)
        .unwrap()
        .mint(
            &TokenRequest {
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
            },
            at(NOW),
            &SeededRng::new(b"mallory"),
        )
        .unwrap()
}

#[tokio::test]
async fn create_cluster_alone_cannot_supply_keys_for_a_provider_url() {
    let w = World::new().await;
    // The workshop role trusts the provider of ISSUER; make it an administrator.
    w.iam(
        &w.root,
        &[
            ("Action", "AttachRolePolicy"),
            ("RoleName", ROLE),
            ("PolicyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ],
    )
    .await
    .ok();
    let mallory = cluster_creator(&w, None).await;
    let (key, jwks) = own_key();
    let attempts = [
        json!({"kind": "external", "url": ISSUER, "jwks": jwks}),
        json!({"kind": "external", "url": ISSUER.replace("https://oidc", "https://OIDC"), "jwks": jwks}),
        json!({"kind": "hosted", "url": ISSUER}),
        json!({"kind": "external", "url": ISSUER, "ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}),
        // Even for a URL no provider names yet: a provider created later must not inherit keys.
        json!({"kind": "external", "url": "https://oidc.example.com/id/NEW", "jwks": jwks}),
    ];
    for (i, issuer) in attempts.iter().enumerate() {
        let reply = w
            .rest(
                "eks",
                &mallory,
                "POST",
                "/clusters",
                Some(json!({"name": format!("evil{i}"), "podiamIssuer": issuer})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{issuer}: {}",
            reply.body
        );
        assert_eq!(
            reply.error_type(),
            "AccessDeniedException",
            "{}",
            reply.body
        );
        assert!(
            reply
                .body
                .contains("iam:UpdateOpenIDConnectProviderThumbprint"),
            "{}",
            reply.body
        );
    }
    // So the JWT mallory signs does not become the administrator role.
    let reply = w
        .sts(
            None,
            &[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", &role_arn(ROLE)),
                ("RoleSessionName", "mallory"),
                ("WebIdentityToken", &irsa_token(ISSUER, key)),
            ],
        )
        .await;
    assert_eq!(reply.code(), "InvalidIdentityToken", "{}", reply.body);

    // What needs no keys of the caller's still works with eks:CreateCluster alone.
    for (name, issuer) in [
        ("evil-hosted", json!({"kind": "hosted"})),
        (
            "evil-discovered",
            json!({"kind": "external", "url": "https://oidc.example.org/id/D"}),
        ),
    ] {
        w.rest(
            "eks",
            &mallory,
            "POST",
            "/clusters",
            Some(json!({"name": name, "podiamIssuer": issuer})),
        )
        .await
        .ok();
    }
}

#[tokio::test]
async fn with_iam_permission_on_the_provider_keys_may_be_supplied() {
    let w = World::new().await;
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_HOST_PATH}");
    let operator = cluster_creator(
        &w,
        Some(json!({
            "Effect": "Allow",
            "Action": "iam:UpdateOpenIDConnectProviderThumbprint",
            "Resource": provider,
        })),
    )
    .await;
    let (key, jwks) = own_key();
    w.rest(
        "eks",
        &operator,
        "POST",
        "/clusters",
        Some(json!({"name": "evil-but-trusted", "podiamIssuer": {"kind": "external", "url": ISSUER, "jwks": jwks}})),
    )
    .await
    .ok();
    // The provider's keys are now the uploaded ones: the operator's token is accepted.
    let reply = w
        .sts(
            None,
            &[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", &role_arn(ROLE)),
                ("RoleSessionName", "operator"),
                ("WebIdentityToken", &irsa_token(ISSUER, key)),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn one_issuer_cannot_be_registered_twice_under_other_spellings() {
    let w = World::new().await;
    let url = "https://oidc.example.com/id/HELD";
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters",
        Some(json!({"name": "first", "podiamIssuer": {"kind": "external", "url": url}})),
    )
    .await
    .ok();
    for spelling in [
        "https://OIDC.example.com/id/HELD",
        "https://oidc.example.com//id/HELD",
        "https://oidc.example.com:443/id/HELD",
        "https://oidc.example.com/id/HELD/",
        "http://oidc.example.com/id/HELD",
    ] {
        let reply = w
            .rest(
                "eks",
                &w.root,
                "POST",
                "/clusters",
                Some(json!({"name": "second", "podiamIssuer": {"kind": "external", "url": spelling}})),
            )
            .await;
        assert_eq!(
            reply.error_type(),
            "ResourceInUseException",
            "{spelling}: {}",
            reply.body
        );
    }
    // Ambiguous URLs are refused outright.
    for bad in [
        "https://oidc.example.com/id/%48ELD",
        "https://oidc.example.com/id/../HELD",
        "https://user@oidc.example.com/id/HELD",
    ] {
        let reply = w
            .rest(
                "eks",
                &w.root,
                "POST",
                "/clusters",
                Some(json!({"name": "third", "podiamIssuer": {"kind": "external", "url": bad}})),
            )
            .await;
        assert_eq!(
            reply.error_type(),
            "InvalidParameterException",
            "{bad}: {}",
            reply.body
        );
    }
    // IAM providers follow the same canonical form.
    w.iam(
        &w.root,
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", url),
            ("ClientIDList.member.1", "sts.amazonaws.com"),
        ],
    )
    .await
    .ok();
    let again = w
        .iam(
            &w.root,
            &[
                ("Action", "CreateOpenIDConnectProvider"),
                ("Url", "https://OIDC.example.com:443//id/HELD/"),
                ("ClientIDList.member.1", "sts.amazonaws.com"),
            ],
        )
        .await;
    assert_eq!(again.code(), "EntityAlreadyExists", "{}", again.body);
}
