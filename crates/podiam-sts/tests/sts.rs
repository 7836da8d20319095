//! STS against IAM on the in-memory store, with a fixed token issuer.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::{AeadKey, KeyId, KeyKind, Keyring, SeededRng, SigningKey, VerifyingKey};
use podiam_iam::{Caller, Iam, IamConfig, NewRole, NewUser, RequestFacts};
use podiam_oidc::{Issuer, KeySet, ObjectRef, TokenError, TokenRequest};
use podiam_session::{Origin, Session};
use podiam_store::MemoryStore;
use podiam_sts::{AssumeRoleRequest, IssuerError, IssuerKeys, Sts, StsError, WebIdentityRequest};
use podiam_types::FixedClock;
use time::OffsetDateTime;

const ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
const URL: &str = "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
const NOW: i64 = 1_714_564_800;

#[derive(Debug)]
struct FixedIssuer {
    keys: KeySet,
    calls: AtomicUsize,
    refreshes: AtomicUsize,
}

#[async_trait]
impl IssuerKeys for FixedIssuer {
    async fn keys(&self, issuer: &str, refresh: bool) -> Result<KeySet, IssuerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
        }
        if issuer != ISSUER {
            return Err(IssuerError::Unreachable(format!("no such issuer {issuer}")));
        }
        Ok(self.keys.clone())
    }
}

struct World {
    iam: Iam,
    sts: Sts,
    issuer: Issuer,
    keys: Arc<FixedIssuer>,
    keyring: Arc<Keyring>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn facts() -> RequestFacts {
    RequestFacts {
        now: now(),
        source_ip: Some("127.0.0.1".into()),
        secure_transport: false,
        region: "eu-central-1".into(),
        user_agent: None,
    }
}

async fn world() -> World {
    let clock = Arc::new(FixedClock::new(now()));
    let rng = Arc::new(SeededRng::new(b"sts"));
    let kek = Arc::new(Keyring::new(
        AeadKey::from_bytes(KeyId(0), &[1; 32]).unwrap(),
    ));
    let iam = Iam::open(
        Arc::new(MemoryStore::new()),
        kek,
        rng.clone(),
        clock.clone(),
        &IamConfig {
            account: "637423329338".into(),
            partition: "aws".into(),
        },
    )
    .await
    .unwrap();
    let issuer = Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).unwrap()).unwrap();
    let mut keys = KeySet::new();
    keys.insert(VerifyingKey::from_jwk(&issuer.key().verifying_key().to_jwk()).unwrap());
    let keys = Arc::new(FixedIssuer {
        keys,
        calls: AtomicUsize::new(0),
        refreshes: AtomicUsize::new(0),
    });
    let keyring = Arc::new(Keyring::new(
        AeadKey::from_bytes(KeyId(1), &[2; 32]).unwrap(),
    ));
    let sts = Sts::new(
        iam.clone(),
        Arc::new(RwLock::new(Arc::clone(&keyring))),
        keys.clone(),
        rng,
        clock,
    );
    iam.create_oidc_provider(
        ISSUER,
        vec!["sts.amazonaws.com".into()],
        vec![],
        vec![],
        false,
    )
    .await
    .unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::637423329338:oidc-provider/{URL}"}},"Action":["sts:TagSession","sts:AssumeRoleWithWebIdentity"],"Condition":{{"StringEquals":{{"{URL}:sub":"system:serviceaccount:carts:carts"}}}}}}]}}"#
    );
    iam.create_role(NewRole {
        name: "eks-workshop-carts-dynamo-irsa".into(),
        trust,
        ..NewRole::default()
    })
    .await
    .unwrap();
    World {
        iam,
        sts,
        issuer,
        keys,
        keyring,
    }
}

fn token(world: &World, namespace: &str, sa: &str, audience: &str, at: i64) -> String {
    let request = TokenRequest {
        namespace: namespace.into(),
        service_account: ObjectRef {
            name: sa.into(),
            uid: "u".into(),
        },
        audiences: vec![audience.into()],
        pod: None,
        node: None,
        lifetime: Duration::from_secs(3600),
        warn_after: None,
    };
    world
        .issuer
        .mint(
            &request,
            OffsetDateTime::from_unix_timestamp(at).unwrap(),
            &SeededRng::new(b"t"),
        )
        .unwrap()
}

fn web(token: String) -> WebIdentityRequest {
    WebIdentityRequest {
        role_arn: "arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-irsa".into(),
        session_name: "botocore-session-1714564800".into(),
        token,
        ..WebIdentityRequest::default()
    }
}

#[tokio::test]
async fn irsa_issues_a_session_the_keyring_opens() {
    let w = world().await;
    let t = token(&w, "carts", "carts", "sts.amazonaws.com", NOW);
    let issued = w
        .sts
        .assume_role_with_web_identity(&web(format!("{t}\n")), &facts())
        .await
        .unwrap();
    assert_eq!(
        issued.subject.as_deref(),
        Some("system:serviceaccount:carts:carts")
    );
    assert_eq!(
        issued.provider.as_deref(),
        Some(format!("arn:aws:iam::637423329338:oidc-provider/{URL}").as_str())
    );
    assert_eq!(issued.audience.as_deref(), Some("sts.amazonaws.com"));
    assert_eq!(
        issued.session.assumed_role_arn(),
        "arn:aws:sts::637423329338:assumed-role/eks-workshop-carts-dynamo-irsa/botocore-session-1714564800"
    );
    assert_eq!(
        issued.session.details.expires_at - issued.session.details.issued_at,
        3600
    );
    let opened = Session::unseal(&issued.session_token, &w.keyring).unwrap();
    assert_eq!(opened.access_key_id, issued.session.access_key_id);
    assert!(matches!(opened.details.origin, Origin::WebIdentity { .. }));
}

#[tokio::test]
async fn a_token_bound_to_a_node_gives_a_session_on_that_node() {
    let w = world().await;
    let request = TokenRequest {
        namespace: "carts".into(),
        service_account: ObjectRef {
            name: "carts".into(),
            uid: "u".into(),
        },
        audiences: vec!["sts.amazonaws.com".into()],
        pod: Some(ObjectRef {
            name: "carts-1".into(),
            uid: "p".into(),
        }),
        node: Some(ObjectRef {
            name: "node-7".into(),
            uid: "n".into(),
        }),
        lifetime: Duration::from_secs(3600),
        warn_after: None,
    };
    let t = w
        .issuer
        .mint(
            &request,
            OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
            &SeededRng::new(b"t"),
        )
        .unwrap();
    let issued = w
        .sts
        .assume_role_with_web_identity(&web(t), &facts())
        .await
        .unwrap();
    let opened = Session::unseal(&issued.session_token, &w.keyring).unwrap();
    assert!(
        matches!(&opened.details.origin, Origin::WebIdentityOnNode { node, .. } if node == "node-7"),
        "{:?}",
        opened.details.origin
    );
    assert_eq!(opened.details.origin.node(), Some("node-7"));
}

#[tokio::test]
async fn irsa_refusals() {
    let w = world().await;
    let err = |r: Result<_, StsError>| r.unwrap_err();
    // The trust policy's sub condition.
    let other = token(&w, "orders", "orders", "sts.amazonaws.com", NOW);
    assert!(
        matches!(err(w.sts.assume_role_with_web_identity(&web(other), &facts()).await), StsError::AccessDenied { message, .. } if message == "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    );
    // The provider's client ids.
    let pods = token(&w, "carts", "carts", "pods.eks.amazonaws.com", NOW);
    assert!(matches!(
        err(w
            .sts
            .assume_role_with_web_identity(&web(pods), &facts())
            .await),
        StsError::Token(TokenError::WrongAudience { .. })
    ));
    // Expired.
    let old = token(&w, "carts", "carts", "sts.amazonaws.com", NOW - 7200);
    assert!(matches!(
        err(w
            .sts
            .assume_role_with_web_identity(&web(old), &facts())
            .await),
        StsError::Token(TokenError::Expired { .. })
    ));
    // Garbage and alg none.
    assert!(matches!(
        err(w
            .sts
            .assume_role_with_web_identity(&web("garbage".into()), &facts())
            .await),
        StsError::Token(TokenError::Malformed(_))
    ));
    let none = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL29pZGMuZWtzLmV1LWNlbnRyYWwtMS5hbWF6b25hd3MuY29tL2lkLzVCMUY4Nzk0QzRDNTJFNDEwMUU5ODY2NEZDOTY0QzNDIn0.c2ln";
    assert!(matches!(
        err(w
            .sts
            .assume_role_with_web_identity(&web(none.into()), &facts())
            .await),
        StsError::Token(TokenError::UnsupportedAlgorithm(_))
    ));
    // A token from an issuer the account has no provider for.
    let stranger = Issuer::new(
        "https://evil.example.com",
        SigningKey::generate(KeyKind::EcP256).unwrap(),
    )
    .unwrap();
    let t = stranger
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
                lifetime: Duration::from_secs(3600),
                warn_after: None,
            },
            now(),
            &SeededRng::new(b"s"),
        )
        .unwrap();
    assert!(
        matches!(err(w.sts.assume_role_with_web_identity(&web(t), &facts()).await), StsError::UnknownProvider(m) if m.contains("No OpenIDConnect provider found"))
    );
    // A role that does not exist, a duration beyond the role's maximum.
    let good = token(&w, "carts", "carts", "sts.amazonaws.com", NOW);
    let mut missing = web(good.clone());
    missing.role_arn = "arn:aws:iam::637423329338:role/nope".into();
    assert!(matches!(
        err(w
            .sts
            .assume_role_with_web_identity(&missing, &facts())
            .await),
        StsError::AccessDenied { .. }
    ));
    let mut long = web(good.clone());
    long.duration = Some(7200);
    assert!(
        matches!(err(w.sts.assume_role_with_web_identity(&long, &facts()).await), StsError::Validation(m) if m.contains("MaxSessionDuration"))
    );
    let mut bad_policy = web(good);
    bad_policy.policy = Some("{".into());
    assert!(matches!(
        err(w
            .sts
            .assume_role_with_web_identity(&bad_policy, &facts())
            .await),
        StsError::Policy(_)
    ));
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_issuer_keys_once() {
    let w = world().await;
    let rotated = Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).unwrap()).unwrap();
    let t = rotated
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
                lifetime: Duration::from_secs(3600),
                warn_after: None,
            },
            now(),
            &SeededRng::new(b"r"),
        )
        .unwrap();
    let result = w.sts.assume_role_with_web_identity(&web(t), &facts()).await;
    assert!(matches!(
        result,
        Err(StsError::Token(TokenError::UnknownKey(_)))
    ));
    assert_eq!(w.keys.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn assume_role_by_users_and_sessions() {
    let w = world().await;
    let account_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::637423329338:root"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"sts:ExternalId":"ext-1"}}}]}"#;
    w.iam
        .create_role(NewRole {
            name: "deployer".into(),
            trust: account_trust.into(),
            ..NewRole::default()
        })
        .await
        .unwrap();
    w.iam
        .create_user(NewUser {
            name: "bob".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let bob = || Caller::User(w.iam.get_user("bob").unwrap());
    let request = AssumeRoleRequest {
        role_arn: "arn:aws:iam::637423329338:role/deployer".into(),
        session_name: "bob-session".into(),
        external_id: Some("ext-1".into()),
        ..AssumeRoleRequest::default()
    };
    // The trust policy names the account: bob's own policies must allow too.
    let denied = w
        .sts
        .assume_role(&bob(), &request, &facts())
        .await
        .unwrap_err();
    assert!(
        matches!(denied, StsError::AccessDenied { message, .. } if message == "User: arn:aws:iam::637423329338:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::637423329338:role/deployer")
    );
    w.iam.put_user_policy("bob", "assume", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}"#).await.unwrap();
    let issued = w.sts.assume_role(&bob(), &request, &facts()).await.unwrap();
    assert_eq!(
        issued.session.assumed_role_arn(),
        "arn:aws:sts::637423329338:assumed-role/deployer/bob-session"
    );
    // The external id condition.
    let wrong = AssumeRoleRequest {
        external_id: Some("other".into()),
        ..request.clone()
    };
    assert!(matches!(
        w.sts.assume_role(&bob(), &wrong, &facts()).await,
        Err(StsError::AccessDenied { .. })
    ));
    // Root passes its own policies, but the trust policy still decides.
    assert!(
        w.sts
            .assume_role(&Caller::Root, &request, &facts())
            .await
            .is_ok()
    );

    // Chaining: from a tagged session, transitive tags carry on, an hour at most.
    let tagged = AssumeRoleRequest {
        tags: vec![("team".into(), "shop".into()), ("cost".into(), "1".into())],
        transitive_tag_keys: vec!["team".into()],
        ..request.clone()
    };
    let first = w.sts.assume_role(&bob(), &tagged, &facts()).await.unwrap();
    let session_caller = Caller::Session {
        session: Arc::new(first.session.clone()),
        role: w.iam.state().role("deployer"),
    };
    let self_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::637423329338:role/deployer"},"Action":"sts:AssumeRole"}]}"#;
    w.iam
        .create_role(NewRole {
            name: "next".into(),
            trust: self_trust.into(),
            max_session: Some(7200),
            ..NewRole::default()
        })
        .await
        .unwrap();
    let chained = AssumeRoleRequest {
        role_arn: "arn:aws:iam::637423329338:role/next".into(),
        session_name: "hop".into(),
        ..AssumeRoleRequest::default()
    };
    let second = w
        .sts
        .assume_role(&session_caller, &chained, &facts())
        .await
        .unwrap();
    assert_eq!(
        second.session.details.tags,
        [("team".to_owned(), "shop".to_owned())],
        "only transitive tags carry on"
    );
    assert_eq!(second.session.details.transitive_tag_keys, ["team"]);
    let too_long = AssumeRoleRequest {
        duration: Some(7200),
        ..chained.clone()
    };
    assert!(
        matches!(w.sts.assume_role(&session_caller, &too_long, &facts()).await, Err(StsError::Validation(m)) if m.contains("role chaining"))
    );
    let (user_id, account, arn) = w.sts.get_caller_identity(&session_caller);
    assert!(user_id.ends_with(":bob-session") && user_id.starts_with("AROA"));
    assert_eq!(account, "637423329338");
    assert_eq!(
        arn,
        "arn:aws:sts::637423329338:assumed-role/deployer/bob-session"
    );
    assert_eq!(
        w.sts.get_caller_identity(&Caller::Root).2,
        "arn:aws:iam::637423329338:root"
    );
}
