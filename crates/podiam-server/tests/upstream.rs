//! Roles in upstream accounts through the control plane, with a fake AWS behind the
//! `UpstreamRoles` trait: podiam's own side is checked before AWS is asked, AWS's answers come
//! back on the wire, and explain's read of a role needs the caller's `iam:GetRole`.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use podiam_crypto::Secret;
use podiam_eks::{
    Upstream, UpstreamAccounts, UpstreamAssume, UpstreamCredentials, UpstreamError, UpstreamRole,
    UpstreamRoles,
};
use support::{World, at};

const AWS_ROLE: &str = "arn:aws:iam::444455556666:role/node";

#[derive(Debug, Default)]
struct FakeAws {
    assumed: AtomicUsize,
}

#[async_trait]
impl UpstreamRoles for FakeAws {
    async fn assume(&self, request: &UpstreamAssume) -> Result<UpstreamCredentials, UpstreamError> {
        self.assumed.fetch_add(1, Ordering::SeqCst);
        if request.session_name == "refused" {
            return Err(UpstreamError::Refused {
                code: "AccessDenied".to_owned(),
                message: "not trusted".to_owned(),
            });
        }
        Ok(UpstreamCredentials {
            role_arn: request.role_arn.clone(),
            access_key_id: "ASIAFAKEUPSTREAM".to_owned(),
            secret_access_key: Secret::new("fake-secret".to_owned()),
            session_token: Secret::new("fake-token".to_owned()),
            expiration: at(support::NOW + 3600),
            assumed_role_arn: format!(
                "arn:aws:sts::444455556666:assumed-role/node/{}",
                request.session_name
            ),
            assumed_role_id: format!("AROAFAKE:{}", request.session_name),
        })
    }

    async fn check(&self) -> Result<String, UpstreamError> {
        Ok("arn:aws:iam::444455556666:user/broker".to_owned())
    }

    async fn role(&self, role_arn: &str) -> Result<UpstreamRole, UpstreamError> {
        Ok(UpstreamRole {
            arn: role_arn.to_owned(),
            id: "AROAFAKE".to_owned(),
            trust: r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned(),
            ..UpstreamRole::default()
        })
    }
}

async fn world() -> (World, Arc<FakeAws>) {
    let aws = Arc::new(FakeAws::default());
    let world = World::with_upstream(Some(Upstream {
        accounts: UpstreamAccounts::new(["444455556666".to_owned()]),
        roles: Arc::clone(&aws) as Arc<dyn UpstreamRoles>,
    }))
    .await;
    (world, aws)
}

fn allow(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

#[tokio::test]
async fn assume_role_of_an_aws_role_checks_the_callers_side_then_asks_aws() {
    let (w, aws) = world().await;
    let assume = |session: &'static str| {
        [
            ("Action", "AssumeRole"),
            ("RoleArn", AWS_ROLE),
            ("RoleSessionName", session),
        ]
    };
    let nobody = w.user("nobody", None).await;
    let refused = w.sts(Some(&nobody), &assume("node-1")).await;
    assert_eq!(refused.code(), "AccessDenied");
    assert_eq!(aws.assumed.load(Ordering::SeqCst), 0, "AWS is not asked");

    let node = w
        .user("node", Some(&allow("sts:AssumeRole", AWS_ROLE)))
        .await;
    let granted = w.sts(Some(&node), &assume("node-1")).await.ok();
    assert_eq!(
        granted.tag("AccessKeyId").as_deref(),
        Some("ASIAFAKEUPSTREAM")
    );
    assert_eq!(
        granted.tag("SecretAccessKey").as_deref(),
        Some("fake-secret")
    );
    assert_eq!(
        granted.tag("Arn").as_deref(),
        Some("arn:aws:sts::444455556666:assumed-role/node/node-1")
    );
    // Tags need sts:TagSession on podiam's side too.
    let mut tagged = assume("node-1").to_vec();
    tagged.extend([("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "a")]);
    assert_eq!(w.sts(Some(&node), &tagged).await.code(), "AccessDenied");
    // AWS's refusal, as STS's error, naming the role.
    let denied = w.sts(Some(&node), &assume("refused")).await;
    assert_eq!(denied.code(), "AccessDenied");
    assert!(denied.body.contains(AWS_ROLE), "{}", denied.body);
    assert!(!denied.body.contains("fake-secret"));
}

#[tokio::test]
async fn reading_an_aws_role_needs_the_callers_get_role() {
    let (w, _) = world().await;
    let path = format!(
        "/podiam/upstream/role?roleArn={}",
        podiam_sigv4::encode_component(AWS_ROLE.as_bytes(), true)
    );
    let nobody = w.user("nobody", None).await;
    let refused = w.rest("podiam", &nobody, "GET", &path, None).await;
    assert_eq!(refused.error_type(), "AccessDeniedException");
    let reader = w.user("reader", Some(&allow("iam:GetRole", "*"))).await;
    let read = w.rest("podiam", &reader, "GET", &path, None).await.ok();
    let body = read.json();
    assert_eq!(body["role"]["arn"], AWS_ROLE);
    assert_eq!(body["role"]["id"], "AROAFAKE");
    // A role in podiam's own account is not AWS's.
    let local = format!(
        "/podiam/upstream/role?roleArn={}",
        podiam_sigv4::encode_component(b"arn:aws:iam::637423329338:role/x", true)
    );
    let not_upstream = w.rest("podiam", &reader, "GET", &local, None).await;
    assert_eq!(not_upstream.error_type(), "ResourceNotFoundException");
}
