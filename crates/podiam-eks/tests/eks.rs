//! EKS on the in-memory store: clusters and their issuers, associations, and the pod identity
//! exchange end to end through STS.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use podiam_crypto::{AeadKey, KeyId, Keyring, SeededRng};
use podiam_eks::{
    AssociationUpdate, Eks, EksConfig, EksError, IssuerChoice, NewAssociation, NewCluster,
    PodIdentityRequest,
};
use podiam_iam::{Caller, Iam, IamConfig, NewRole, NewUser, RequestFacts};
use podiam_oidc::{KeySet, ObjectRef, TokenError, TokenRequest};
use podiam_store::{MemoryStore, Store};
use podiam_sts::{IssuerError, IssuerKeys, Sts};
use podiam_types::FixedClock;
use time::OffsetDateTime;

const NOW: i64 = 1_795_000_000;
const ACCOUNT: &str = "637423329338";
const POD_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:SourceAccount":"637423329338"}}}]}"#;

#[derive(Debug)]
struct NoNetwork;

#[async_trait]
impl IssuerKeys for NoNetwork {
    async fn keys(&self, issuer: &str, _: bool) -> Result<KeySet, IssuerError> {
        Err(IssuerError::Unreachable(format!("no network for {issuer}")))
    }
}

struct World {
    eks: Eks,
    iam: Iam,
    sts: Sts,
    clock: Arc<FixedClock>,
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
}

impl World {
    /// Another EKS over the same store: a restarted server, or a second replica.
    async fn replica(&self) -> Eks {
        Eks::open(
            Arc::clone(&self.store),
            Arc::clone(&self.kek),
            Arc::new(SeededRng::new(b"another replica")),
            self.clock.clone(),
            self.eks.config().clone(),
        )
        .await
        .expect("replica")
    }
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn facts() -> RequestFacts {
    RequestFacts {
        now: at(NOW),
        source_ip: Some("10.0.0.1".into()),
        secure_transport: true,
        region: "eu-central-1".into(),
        user_agent: None,
    }
}

/// A node agent's identity: an IAM user tagged with its node.
async fn node_agent(w: &World, node: &str) -> Caller {
    let user = w
        .iam
        .create_user(NewUser {
            name: format!("agent-{node}"),
            path: None,
            boundary: None,
            tags: vec![(podiam_eks::NODE_NAME_TAG.to_owned(), node.to_owned())],
        })
        .await
        .expect("agent user");
    Caller::User(user)
}

async fn world() -> World {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::new(at(NOW)));
    let rng = Arc::new(SeededRng::new(b"eks"));
    let kek = Arc::new(Keyring::new(
        AeadKey::from_bytes(KeyId(0), &[5; 32]).expect("key"),
    ));
    let iam = Iam::open(
        Arc::clone(&store),
        Arc::clone(&kek),
        rng.clone(),
        clock.clone(),
        &IamConfig {
            account: ACCOUNT.into(),
            partition: "aws".into(),
        },
    )
    .await
    .expect("iam");
    let sts = Sts::new(
        iam.clone(),
        Arc::new(std::sync::RwLock::new(Arc::new(Keyring::new(
            AeadKey::from_bytes(KeyId(1), &[6; 32]).expect("key"),
        )))),
        Arc::new(NoNetwork),
        rng.clone(),
        clock.clone(),
    );
    let eks = Eks::open(
        Arc::clone(&store),
        Arc::clone(&kek),
        rng,
        clock.clone(),
        EksConfig {
            account: ACCOUNT.into(),
            partition: "aws".into(),
            region: "eu-central-1".into(),
            issuer_base: "http://127.0.0.1:4599/oidc".into(),
        },
    )
    .await
    .expect("eks");
    World {
        eks,
        iam,
        sts,
        clock,
        store,
        kek,
    }
}

fn hosted(name: &str, url: Option<&str>) -> NewCluster {
    NewCluster {
        name: name.into(),
        role_arn: None,
        version: None,
        tags: BTreeMap::new(),
        issuer: IssuerChoice::Hosted {
            url: url.map(str::to_owned),
        },
        client_request_token: None,
    }
}

fn pod_token(w: &World, cluster: &str, ns: &str, sa: &str, node: &str, audience: &str) -> String {
    w.eks
        .mint_token(
            cluster,
            &TokenRequest {
                namespace: ns.into(),
                service_account: ObjectRef {
                    name: sa.into(),
                    uid: "sa-uid".into(),
                },
                audiences: vec![audience.into()],
                pod: Some(ObjectRef {
                    name: "carts-7d8f9c6b5-abcde".into(),
                    uid: "pod-uid-1".into(),
                }),
                node: Some(ObjectRef {
                    name: node.into(),
                    uid: "node-uid".into(),
                }),
                lifetime: Duration::from_secs(3600),
                warn_after: None,
            },
        )
        .expect("mint")
}

async fn associate(w: &World, cluster: &str, role: &str) -> String {
    w.iam
        .create_role(NewRole {
            name: role.into(),
            trust: POD_TRUST.into(),
            ..NewRole::default()
        })
        .await
        .expect("role");
    w.eks
        .create_association(NewAssociation {
            cluster: cluster.into(),
            namespace: "carts".into(),
            service_account: "carts".into(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
            ..NewAssociation::default()
        })
        .await
        .expect("association")
        .record
        .id
        .clone()
}

#[tokio::test]
async fn clusters_have_issuers_and_unique_names() {
    let w = world().await;
    let made = w
        .eks
        .create_cluster(hosted("eks-workshop", None))
        .await
        .expect("cluster");
    let url = made.record.issuer.url().to_owned();
    assert!(url.starts_with("http://127.0.0.1:4599/oidc/id/"), "{url}");
    assert_eq!(url.len(), "http://127.0.0.1:4599/oidc/id/".len() + 32);
    assert!(made.signer.is_some());
    assert_eq!(
        w.eks.cluster_arn("eks-workshop"),
        "arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop"
    );
    // The issuer's keys are found by URL (any scheme), with no network.
    assert!(
        w.eks
            .state()
            .stored_keys(&url)
            .is_some_and(|k| !k.is_empty())
    );
    assert!(matches!(
        w.eks.create_cluster(hosted("eks-workshop", None)).await,
        Err(EksError::InUse(_))
    ));
    let eks_url = "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
    w.eks
        .create_cluster(hosted("second", Some(eks_url)))
        .await
        .expect("explicit url");
    assert!(matches!(
        w.eks.create_cluster(hosted("third", Some(eks_url))).await,
        Err(EksError::InUse(m)) if m.contains("issuer")
    ));
    assert!(matches!(
        w.eks.create_cluster(hosted("-bad", None)).await,
        Err(EksError::InvalidParameter(_))
    ));
    let (names, next) = w.eks.list_clusters(None, 1);
    assert_eq!(names, ["eks-workshop"]);
    let (rest, end) = w.eks.list_clusters(next.as_deref(), 1);
    assert_eq!(rest, ["second"]);
    assert!(end.is_none());
    w.eks.delete_cluster("second").await.expect("delete");
    assert!(matches!(
        w.eks.describe_cluster("second"),
        Err(EksError::NotFound(_))
    ));
    // Its issuer URL is free again.
    w.eks
        .create_cluster(hosted("third", Some(eks_url)))
        .await
        .expect("reuse");
}

#[tokio::test]
async fn associations_are_one_per_service_account() {
    let w = world().await;
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster");
    let id = associate(&w, "c1", "carts-role").await;
    assert!(id.starts_with("a-") && id.len() == 19);
    let again = w
        .eks
        .create_association(NewAssociation {
            cluster: "c1".into(),
            namespace: "carts".into(),
            service_account: "carts".into(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/other"),
            ..NewAssociation::default()
        })
        .await;
    assert!(matches!(again, Err(EksError::InUse(m)) if m.contains(&id)));
    let missing_cluster = w
        .eks
        .create_association(NewAssociation {
            cluster: "nope".into(),
            namespace: "carts".into(),
            service_account: "carts".into(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/x"),
            ..NewAssociation::default()
        })
        .await;
    assert!(matches!(missing_cluster, Err(EksError::NotFound(_))));
    let updated = w
        .eks
        .update_association(
            "c1",
            &id,
            AssociationUpdate {
                disable_session_tags: Some(true),
                ..AssociationUpdate::default()
            },
        )
        .await
        .expect("update");
    assert!(updated.record.disable_session_tags);
    let (listed, _) = w
        .eks
        .list_associations("c1", Some("carts"), None, None, 10)
        .expect("list");
    assert_eq!(listed.len(), 1);
    let (none, _) = w
        .eks
        .list_associations("c1", Some("orders"), None, None, 10)
        .expect("list");
    assert!(none.is_empty());
    w.eks.delete_association("c1", &id).await.expect("delete");
    // The service account is free again.
    associate(&w, "c1", "carts-role-2").await;
    // Deleting the cluster deletes its associations.
    w.eks.delete_cluster("c1").await.expect("delete cluster");
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster again");
    let (listed, _) = w
        .eks
        .list_associations("c1", None, None, None, 10)
        .expect("list");
    assert!(listed.is_empty());
}

#[tokio::test]
async fn a_pod_token_becomes_the_association_role_with_session_tags() {
    let w = world().await;
    w.eks
        .create_cluster(hosted("eks-workshop", None))
        .await
        .expect("cluster");
    let id = associate(&w, "eks-workshop", "eks-workshop-carts-dynamo-pia").await;
    let token = pod_token(
        &w,
        "eks-workshop",
        "carts",
        "carts",
        "node-1",
        "pods.eks.amazonaws.com",
    );
    let node_1 = node_agent(&w, "node-1").await;
    let grant = w
        .eks
        .assume_role_for_pod_identity(
            &w.sts,
            &NoNetwork,
            &node_1,
            &PodIdentityRequest {
                cluster: "eks-workshop".into(),
                token: token.clone(),
                node_name: Some("node-1".into()),
            },
            &facts(),
        )
        .await
        .expect("grant");
    assert_eq!(grant.association_id, id);
    assert_eq!(
        grant.association_arn,
        format!("arn:aws:eks:eu-central-1:{ACCOUNT}:podidentityassociation/eks-workshop/{id}")
    );
    let session = &grant.credentials.local().expect("a podiam session").session;
    assert!(session.access_key_id.starts_with("ASIA"));
    assert!(
        session
            .details
            .session_name
            .starts_with("eks-eks-workshop-carts-7d8f9c6b5-abcde-")
    );
    assert_eq!(session.details.session_name.len(), 64);
    assert_eq!(session.details.expires_at, NOW + 6 * 3600);
    let tags: BTreeMap<&str, &str> = session
        .details
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(tags["kubernetes-namespace"], "carts");
    assert_eq!(tags["kubernetes-service-account"], "carts");
    assert_eq!(tags["kubernetes-pod-name"], "carts-7d8f9c6b5-abcde");
    assert_eq!(tags["kubernetes-pod-uid"], "pod-uid-1");
    assert_eq!(tags["eks-cluster-name"], "eks-workshop");
    assert_eq!(
        tags["eks-cluster-arn"],
        "arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop"
    );

    // Refusals.
    let ask = |token: String, node: Option<&str>| PodIdentityRequest {
        cluster: "eks-workshop".into(),
        token,
        node_name: node.map(str::to_owned),
    };
    let wrong_aud = pod_token(
        &w,
        "eks-workshop",
        "carts",
        "carts",
        "node-1",
        "sts.amazonaws.com",
    );
    let err = w
        .eks
        .assume_role_for_pod_identity(&w.sts, &NoNetwork, &node_1, &ask(wrong_aud, None), &facts())
        .await
        .expect_err("audience");
    assert!(
        matches!(err, EksError::Token(TokenError::WrongAudience { .. })),
        "{err:?}"
    );
    let other_node = w
        .eks
        .assume_role_for_pod_identity(
            &w.sts,
            &NoNetwork,
            &node_1,
            &ask(token.clone(), Some("node-2")),
            &facts(),
        )
        .await
        .expect_err("node");
    assert!(
        matches!(other_node, EksError::AccessDenied { .. }),
        "{other_node:?}"
    );
    // The node is the caller's identity's: leaving eksNodeName out does not help another
    // node's agent, nor a caller that is no node at all (the root included).
    let node_2 = node_agent(&w, "node-2").await;
    for (caller, what) in [(&node_2, "node-2's agent"), (&Caller::Root, "the root")] {
        let refused = w
            .eks
            .assume_role_for_pod_identity(
                &w.sts,
                &NoNetwork,
                caller,
                &ask(token.clone(), None),
                &facts(),
            )
            .await
            .expect_err(what);
        assert!(
            matches!(refused, EksError::AccessDenied { .. }),
            "{what}: {refused:?}"
        );
    }
    // node-1's own agent without eksNodeName: its identity is enough.
    w.eks
        .assume_role_for_pod_identity(
            &w.sts,
            &NoNetwork,
            &node_1,
            &ask(token.clone(), None),
            &facts(),
        )
        .await
        .expect("node-1's agent, eksNodeName left out");
    let no_association = pod_token(
        &w,
        "eks-workshop",
        "orders",
        "orders",
        "node-1",
        "pods.eks.amazonaws.com",
    );
    let err = w
        .eks
        .assume_role_for_pod_identity(
            &w.sts,
            &NoNetwork,
            &node_1,
            &ask(no_association, None),
            &facts(),
        )
        .await
        .expect_err("association");
    assert!(matches!(err, EksError::NotFound(_)), "{err:?}");
    w.clock.set(at(NOW + 7200));
    let expired = w
        .eks
        .assume_role_for_pod_identity(&w.sts, &NoNetwork, &node_1, &ask(token, None), &facts())
        .await
        .expect_err("expired");
    assert!(
        matches!(expired, EksError::Token(TokenError::Expired { .. })),
        "{expired:?}"
    );
}

#[tokio::test]
async fn trust_policies_and_options_of_the_association_apply() {
    let w = world().await;
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster");
    // A role that does not trust the service principal.
    w.iam
        .create_role(NewRole {
            name: "untrusting".into(),
            trust: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
            ..NewRole::default()
        })
        .await
        .expect("role");
    let id = w
        .eks
        .create_association(NewAssociation {
            cluster: "c1".into(),
            namespace: "carts".into(),
            service_account: "carts".into(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/untrusting"),
            ..NewAssociation::default()
        })
        .await
        .expect("association")
        .record
        .id
        .clone();
    let token = pod_token(&w, "c1", "carts", "carts", "n", "pods.eks.amazonaws.com");
    let node = node_agent(&w, "n").await;
    let ask = PodIdentityRequest {
        cluster: "c1".into(),
        token,
        node_name: None,
    };
    let err = w
        .eks
        .assume_role_for_pod_identity(&w.sts, &NoNetwork, &node, &ask, &facts())
        .await
        .expect_err("trust");
    assert!(matches!(err, EksError::Sts(_)), "{err:?}");

    // Chaining into a target role that trusts the first one; no session tags.
    w.iam
        .create_role(NewRole {
            name: "first".into(),
            trust: POD_TRUST.into(),
            ..NewRole::default()
        })
        .await
        .expect("role");
    w.iam
        .create_role(NewRole {
            name: "target".into(),
            trust: format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:role/first"}},"Action":"sts:AssumeRole"}}]}}"#),
            ..NewRole::default()
        })
        .await
        .expect("role");
    w.iam
        .put_role_policy(
            "first",
            "chain",
            &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::{ACCOUNT}:role/target"}}]}}"#),
        )
        .await
        .expect("policy");
    w.eks
        .update_association(
            "c1",
            &id,
            AssociationUpdate {
                role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/first")),
                target_role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/target")),
                disable_session_tags: Some(true),
                ..AssociationUpdate::default()
            },
        )
        .await
        .expect("update");
    let grant = w
        .eks
        .assume_role_for_pod_identity(&w.sts, &NoNetwork, &node, &ask, &facts())
        .await
        .expect("chained grant");
    let details = &grant
        .credentials
        .local()
        .expect("a podiam session")
        .session
        .details;
    assert_eq!(
        details.role_arn,
        format!("arn:aws:iam::{ACCOUNT}:role/target")
    );
    assert!(details.tags.is_empty());
    assert_eq!(
        details.expires_at,
        NOW + 3600,
        "chained sessions last an hour"
    );
}

/// CreatePodIdentityAssociation's `policy` is a session policy: IAM's grammar applies when the
/// association is made (not when a pod first asks), and EKS requires `disableSessionTags`.
#[tokio::test]
async fn association_policies_are_session_policies() {
    let w = world().await;
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster");
    let new = |policy: &str, disable_session_tags: bool| NewAssociation {
        cluster: "c1".into(),
        namespace: "carts".into(),
        service_account: "carts".into(),
        role_arn: format!("arn:aws:iam::{ACCOUNT}:role/carts"),
        policy: Some(policy.to_owned()),
        disable_session_tags,
        ..NewAssociation::default()
    };
    let with_principal = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#;
    let refused = w.eks.create_association(new(with_principal, true)).await;
    assert!(
        matches!(&refused, Err(EksError::InvalidParameter(m)) if m.contains("Policy document should not specify a principal.")),
        "{refused:?}"
    );
    let valid = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}}"#;
    let tagged = w.eks.create_association(new(valid, false)).await;
    assert!(
        matches!(&tagged, Err(EksError::InvalidParameter(m)) if m.contains("disableSessionTags")),
        "{tagged:?}"
    );
    let created = w
        .eks
        .create_association(new(valid, true))
        .await
        .expect("a valid policy without session tags");
    let id = created.record.id.clone();
    // An update may not bring session tags back while the policy stays, nor add a bad policy.
    let update = |policy: Option<&str>, disable: Option<bool>| AssociationUpdate {
        policy: policy.map(str::to_owned),
        disable_session_tags: disable,
        ..AssociationUpdate::default()
    };
    assert!(matches!(
        w.eks
            .update_association("c1", &id, update(None, Some(false)))
            .await,
        Err(EksError::InvalidParameter(_))
    ));
    assert!(matches!(
        w.eks
            .update_association("c1", &id, update(Some(with_principal), None))
            .await,
        Err(EksError::InvalidParameter(_))
    ));
    // Removing the policy (an empty string) and enabling tags together is fine.
    let updated = w
        .eks
        .update_association("c1", &id, update(Some(""), Some(false)))
        .await
        .expect("no policy, tags again");
    assert!(updated.record.policy.is_none() && !updated.record.disable_session_tags);
}

/// A `clientRequestToken` as the AWS CLI makes one (a UUID).
const TOKEN: &str = "9a91a181-e23b-42ab-8680-915f4ab42a32";
const OTHER_TOKEN: &str = "0b5ee0a4-64a4-4bd4-9bb5-43d1a0e6b6e0";

fn carts_association(role: &str, token: Option<&str>) -> NewAssociation {
    NewAssociation {
        cluster: "c1".into(),
        namespace: "carts".into(),
        service_account: "carts".into(),
        role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
        tags: BTreeMap::from([("team".to_owned(), "carts".to_owned())]),
        client_request_token: token.map(str::to_owned),
        ..NewAssociation::default()
    }
}

fn reused(result: &Result<impl std::fmt::Debug, EksError>) -> bool {
    matches!(result, Err(EksError::InvalidRequest(m)) if m.contains(TOKEN) && m.contains("different parameters"))
}

#[tokio::test]
async fn a_retried_create_association_answers_the_first_association() {
    let w = world().await;
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster");
    let first = w
        .eks
        .create_association(carts_association("carts", Some(TOKEN)))
        .await
        .expect("create");
    w.clock.advance(time::Duration::seconds(30));
    // The answer was lost; the retry gets the same association, not ResourceInUse.
    let retry = w
        .eks
        .create_association(carts_association("carts", Some(TOKEN)))
        .await
        .expect("retry");
    assert_eq!(retry.record, first.record);
    // On a restarted server or another replica over the same store too.
    let replica = w.replica().await;
    let elsewhere = replica
        .create_association(carts_association("carts", Some(TOKEN)))
        .await
        .expect("retry on another replica");
    assert_eq!(elsewhere.record.id, first.record.id);
    let (listed, _) = w
        .eks
        .list_associations("c1", None, None, None, 10)
        .expect("list");
    assert_eq!(listed.len(), 1, "nothing was created twice");

    // The same token with other parameters is refused, whatever differs, and never answers
    // the association of another request.
    let other_role = w
        .eks
        .create_association(carts_association("other", Some(TOKEN)))
        .await;
    assert!(reused(&other_role), "{other_role:?}");
    let other_account = w
        .eks
        .create_association(NewAssociation {
            namespace: "orders".into(),
            service_account: "orders".into(),
            ..carts_association("carts", Some(TOKEN))
        })
        .await;
    assert!(reused(&other_account), "{other_account:?}");
    let other_tags = w
        .eks
        .create_association(NewAssociation {
            tags: BTreeMap::new(),
            ..carts_association("carts", Some(TOKEN))
        })
        .await;
    assert!(reused(&other_tags), "{other_tags:?}");
    // Another token (or none) for the same service account is a new request: it exists.
    for token in [Some(OTHER_TOKEN), None] {
        let again = w
            .eks
            .create_association(carts_association("carts", token))
            .await;
        assert!(
            matches!(&again, Err(EksError::InUse(m)) if m.contains(&first.record.id)),
            "{again:?}"
        );
    }
    // The token is kept with the association, not shown on the wire.
    let stored = w
        .eks
        .describe_association("c1", &first.record.id)
        .expect("describe");
    assert_eq!(
        stored
            .record
            .create_request
            .as_ref()
            .map(|r| r.token.as_str()),
        Some(TOKEN)
    );

    // Tokens are 33-126 characters, as EKS requires.
    for bad in ["short", &"t".repeat(127)] {
        let refused = w
            .eks
            .create_association(NewAssociation {
                service_account: "other".into(),
                ..carts_association("carts", Some(bad))
            })
            .await;
        assert!(
            matches!(&refused, Err(EksError::InvalidParameter(m)) if m.contains("between 33 and 126")),
            "{refused:?}"
        );
    }

    // Deleting the association frees its token with it; deleting the cluster frees all.
    w.eks
        .delete_association("c1", &first.record.id)
        .await
        .expect("delete");
    let recreated = w
        .eks
        .create_association(carts_association("carts", Some(TOKEN)))
        .await
        .expect("the token is free again");
    assert_ne!(recreated.record.id, first.record.id);
    w.eks.delete_cluster("c1").await.expect("delete cluster");
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster again");
    let fresh = w
        .eks
        .create_association(carts_association("carts", Some(TOKEN)))
        .await
        .expect("fresh");
    assert_ne!(fresh.record.id, recreated.record.id);
    // A token is scoped to its cluster.
    w.eks.create_cluster(hosted("c2", None)).await.expect("c2");
    w.eks
        .create_association(NewAssociation {
            cluster: "c2".into(),
            ..carts_association("carts", Some(TOKEN))
        })
        .await
        .expect("same token, another cluster");
}

/// A store that lets other tasks run before every read and write, so that concurrent
/// requests interleave between their checks and their commits.
#[derive(Debug)]
struct Yielding(MemoryStore);

#[async_trait]
impl Store for Yielding {
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<podiam_store::Entry>, podiam_store::StoreError> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }

    async fn txn(
        &self,
        compares: &[podiam_store::Compare],
        ops: &[podiam_store::Op],
    ) -> Result<podiam_store::TxnOutcome, podiam_store::StoreError> {
        tokio::task::yield_now().await;
        self.0.txn(compares, ops).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<podiam_store::Page, podiam_store::StoreError> {
        self.0.list(prefix, after, limit).await
    }

    async fn watch(
        &self,
        prefix: &str,
        after: podiam_store::Revision,
    ) -> Result<podiam_store::Watch, podiam_store::StoreError> {
        self.0.watch(prefix, after).await
    }

    async fn revision(&self) -> Result<podiam_store::Revision, podiam_store::StoreError> {
        self.0.revision().await
    }
}

#[tokio::test]
async fn concurrent_copies_of_a_create_make_one_object() {
    let w = world().await;
    let store: Arc<dyn Store> = Arc::new(Yielding(MemoryStore::new()));
    let open = |seed: &'static [u8]| {
        Eks::open(
            Arc::clone(&store),
            Arc::clone(&w.kek),
            Arc::new(SeededRng::new(seed)),
            w.clock.clone(),
            w.eks.config().clone(),
        )
    };
    let (one, two) = (
        open(b"one").await.expect("one"),
        open(b"two").await.expect("two"),
    );
    let cluster = || NewCluster {
        client_request_token: Some(TOKEN.to_owned()),
        ..hosted("c1", None)
    };
    let (a, b, c) = tokio::join!(
        one.create_cluster(cluster()),
        two.create_cluster(cluster()),
        one.create_cluster(cluster()),
    );
    let urls: Vec<String> = [a, b, c]
        .into_iter()
        .map(|r| {
            r.expect("every copy succeeds")
                .record
                .issuer
                .url()
                .to_owned()
        })
        .collect();
    assert!(urls.iter().all(|u| *u == urls[0]), "{urls:?}");
    let (a, b, c) = tokio::join!(
        one.create_association(carts_association("carts", Some(TOKEN))),
        two.create_association(carts_association("carts", Some(TOKEN))),
        one.create_association(carts_association("carts", Some(TOKEN))),
    );
    let ids: Vec<String> = [a, b, c]
        .into_iter()
        .map(|r| r.expect("every copy succeeds").record.id.clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let (listed, _) = one
        .list_associations("c1", None, None, None, 10)
        .expect("list");
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn a_retried_create_cluster_answers_the_first_cluster() {
    let w = world().await;
    let with_token = |name: &str, token: &str| NewCluster {
        client_request_token: Some(token.to_owned()),
        ..hosted(name, None)
    };
    let first = w
        .eks
        .create_cluster(with_token("c1", TOKEN))
        .await
        .expect("create");
    w.clock.advance(time::Duration::seconds(30));
    let retry = w
        .eks
        .create_cluster(with_token("c1", TOKEN))
        .await
        .expect("retry");
    // The same cluster: its random issuer URL and its key, not new ones.
    assert_eq!(retry.record, first.record);
    let elsewhere = w
        .replica()
        .await
        .create_cluster(with_token("c1", TOKEN))
        .await
        .expect("retry on another replica");
    assert_eq!(elsewhere.record, first.record);
    assert!(elsewhere.signer.is_some());

    let other_name = w.eks.create_cluster(with_token("c2", TOKEN)).await;
    assert!(reused(&other_name), "{other_name:?}");
    let other_version = w
        .eks
        .create_cluster(NewCluster {
            version: Some("1.31".into()),
            ..with_token("c1", TOKEN)
        })
        .await;
    assert!(reused(&other_version), "{other_version:?}");
    assert!(matches!(
        w.eks.create_cluster(with_token("c1", OTHER_TOKEN)).await,
        Err(EksError::InUse(_))
    ));
    assert!(matches!(
        w.eks.create_cluster(hosted("c1", None)).await,
        Err(EksError::InUse(_))
    ));
    assert!(matches!(
        w.eks.create_cluster(with_token("c3", "short")).await,
        Err(EksError::InvalidParameter(_))
    ));
    assert_eq!(w.eks.list_clusters(None, 10).0, ["c1"]);

    // Deleting the cluster frees its token.
    w.eks.delete_cluster("c1").await.expect("delete");
    let again = w
        .eks
        .create_cluster(with_token("c1", TOKEN))
        .await
        .expect("the token is free again");
    assert_ne!(again.record.issuer.url(), first.record.issuer.url());
}

#[tokio::test]
async fn a_retried_update_is_applied_once() {
    let w = world().await;
    w.eks
        .create_cluster(hosted("c1", None))
        .await
        .expect("cluster");
    let id = w
        .eks
        .create_association(carts_association("carts", None))
        .await
        .expect("create")
        .record
        .id
        .clone();
    let to = |role: &str, token: &str| AssociationUpdate {
        role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/{role}")),
        client_request_token: Some(token.to_owned()),
        ..AssociationUpdate::default()
    };
    w.clock.advance(time::Duration::seconds(10));
    let updated = w
        .eks
        .update_association("c1", &id, to("second", TOKEN))
        .await
        .expect("update");
    let modified = updated.record.modified;
    assert_eq!(modified, NOW + 10);
    w.clock.advance(time::Duration::seconds(10));
    let retry = w
        .eks
        .update_association("c1", &id, to("second", TOKEN))
        .await
        .expect("retry");
    assert_eq!(retry.record, updated.record, "not applied twice");
    // A later update, then a late retry of the earlier one: it does not undo the later one.
    let later = w
        .eks
        .update_association("c1", &id, to("third", OTHER_TOKEN))
        .await
        .expect("later update");
    let late = w
        .replica()
        .await
        .update_association("c1", &id, to("second", TOKEN))
        .await
        .expect("late retry");
    assert_eq!(late.record, later.record);
    assert!(late.record.role_arn.ends_with("role/third"));
    let other = w
        .eks
        .update_association("c1", &id, to("fourth", TOKEN))
        .await;
    assert!(reused(&other), "{other:?}");
    // The association remembers its latest updates only.
    for n in 0..(podiam_eks::UPDATE_REQUESTS_KEPT + 4) {
        let token = format!("{n:036}");
        w.eks
            .update_association("c1", &id, to("fifth", &token))
            .await
            .expect("update");
    }
    let kept = w.eks.describe_association("c1", &id).expect("describe");
    assert_eq!(
        kept.record.update_requests.len(),
        podiam_eks::UPDATE_REQUESTS_KEPT
    );
}
