//! IAM over the in-memory store: entities, rules, replicas following each other, authorization.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use podiam_crypto::{AeadKey, KeyId, Keyring, SeededRng};
use podiam_iam::{
    Caller, Iam, IamConfig, IamError, KeyStatus, NewRole, NewUser, PolicyScope, ROLE_USE_INTERVAL,
    RequestFacts, RoleLastUsed, RoleUpdate,
};
use podiam_store::{MemoryStore, Store};
use podiam_types::FixedClock;
use time::OffsetDateTime;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
const READ_ROLES: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GetRole","iam:ListRoles"],"Resource":"*"}]}"#;

fn kek() -> Arc<Keyring> {
    Arc::new(Keyring::new(
        AeadKey::from_bytes(KeyId(0), &[9; 32]).unwrap(),
    ))
}

const NOW: i64 = 1_714_564_800;

async fn iam_on(store: Arc<dyn Store>) -> Iam {
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
    ));
    iam_with(store, clock).await
}

async fn iam_with(store: Arc<dyn Store>, clock: Arc<FixedClock>) -> Iam {
    let config = IamConfig {
        account: "111122223333".into(),
        partition: "aws".into(),
    };
    Iam::open(
        store,
        kek(),
        Arc::new(SeededRng::new(b"iam")),
        clock,
        &config,
    )
    .await
    .unwrap()
}

async fn iam() -> Iam {
    iam_on(Arc::new(MemoryStore::new())).await
}

fn role(name: &str) -> NewRole {
    NewRole {
        name: name.into(),
        trust: TRUST.into(),
        ..NewRole::default()
    }
}

fn facts() -> RequestFacts {
    RequestFacts {
        now: OffsetDateTime::from_unix_timestamp(1_714_564_800).unwrap(),
        source_ip: Some("127.0.0.1".into()),
        secure_transport: false,
        region: "us-east-1".into(),
        user_agent: None,
    }
}

#[tokio::test]
async fn roles_lifecycle() {
    let iam = iam().await;
    let created = iam
        .create_role(NewRole {
            path: Some("/team/".into()),
            description: Some("carts".into()),
            ..role("Carts")
        })
        .await
        .unwrap();
    assert!(created.record.id.starts_with("AROA"));
    assert_eq!(
        iam.state().role_arn(&created.record),
        "arn:aws:iam::111122223333:role/team/Carts"
    );
    assert_eq!(created.record.trust, TRUST, "kept byte for byte");
    let dup = iam.create_role(role("carts")).await.unwrap_err();
    assert!(
        matches!(dup, IamError::EntityAlreadyExists(m) if m == "Role with name carts already exists."),
        "names are case-insensitive"
    );
    assert_eq!(iam.get_role("CARTS").unwrap().record.name, "Carts");
    assert!(
        matches!(iam.get_role("nope"), Err(IamError::NoSuchEntity(m)) if m == "The role with name nope cannot be found.")
    );

    iam.update_role(
        "carts",
        RoleUpdate {
            description: Some("new".into()),
            max_session: Some(7200),
        },
    )
    .await
    .unwrap();
    assert_eq!(iam.get_role("carts").unwrap().record.max_session, 7200);
    assert!(matches!(
        iam.update_role(
            "carts",
            RoleUpdate {
                max_session: Some(60),
                ..Default::default()
            }
        )
        .await,
        Err(IamError::InvalidInput(_))
    ));

    iam.tag_role(
        "carts",
        &[("team".into(), "shop".into()), ("env".into(), "dev".into())],
    )
    .await
    .unwrap();
    iam.tag_role("carts", &[("TEAM".into(), "orders".into())])
        .await
        .unwrap();
    let tags = iam.list_role_tags("carts", None, 100).unwrap().items;
    assert_eq!(
        tags,
        [
            ("env".to_owned(), "dev".to_owned()),
            ("TEAM".to_owned(), "orders".to_owned())
        ]
    );
    iam.untag_role("carts", &["env".into()]).await.unwrap();
    assert_eq!(
        iam.list_role_tags("carts", None, 100).unwrap().items.len(),
        1
    );

    iam.put_role_policy("carts", "read", READ_ROLES)
        .await
        .unwrap();
    assert_eq!(iam.get_role_policy("carts", "read").unwrap(), READ_ROLES);
    assert!(matches!(
        iam.delete_role("carts").await,
        Err(IamError::DeleteConflict(_))
    ));
    iam.delete_role_policy("carts", "read").await.unwrap();
    iam.delete_role("carts").await.unwrap();
    assert!(iam.get_role("carts").is_err());
}

#[tokio::test]
async fn policy_documents_are_validated_per_type() {
    let iam = iam().await;
    let bad_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    let err = iam
        .create_role(NewRole {
            trust: bad_trust.into(),
            ..role("r")
        })
        .await
        .unwrap_err();
    let IamError::Policy(p) = err else {
        panic!("{err:?}")
    };
    assert_eq!(p.iam_message(), "Missing required field Principal");
    iam.create_role(role("r")).await.unwrap();
    let err = iam.put_role_policy("r", "p", TRUST).await.unwrap_err();
    assert!(
        matches!(&err, IamError::Policy(p) if p.iam_message() == "Policy document should not specify a principal."),
        "{err:?}"
    );
    let err = iam.update_assume_role_policy("r", "{").await.unwrap_err();
    assert!(matches!(&err, IamError::Policy(p) if p.iam_message() == "Syntax errors in policy."));
}

#[tokio::test]
async fn managed_policies_and_attachments() {
    let iam = iam().await;
    iam.create_role(role("r")).await.unwrap();
    let p = iam
        .create_policy(
            "ReadRoles",
            Some("/acme/"),
            READ_ROLES,
            Some("d".into()),
            vec![],
        )
        .await
        .unwrap();
    let arn = p.record.arn.clone();
    assert_eq!(arn, "arn:aws:iam::111122223333:policy/acme/ReadRoles");
    assert!(matches!(
        iam.create_policy("ReadRoles", Some("/acme/"), READ_ROLES, None, vec![])
            .await,
        Err(IamError::EntityAlreadyExists(_))
    ));
    let missing = "arn:aws:iam::111122223333:policy/Nope";
    assert!(
        matches!(iam.attach_role_policy("r", missing).await, Err(IamError::NoSuchEntity(m)) if m.contains("does not exist or is not attachable"))
    );
    iam.attach_role_policy("r", &arn).await.unwrap();
    iam.attach_role_policy("r", &arn).await.unwrap();
    let attached = iam
        .list_attached_role_policies("r", None, None, 100)
        .unwrap()
        .items;
    assert_eq!(
        attached,
        [("ReadRoles".to_owned(), arn.clone())],
        "attaching twice is one attachment"
    );
    assert!(matches!(
        iam.delete_policy(&arn).await,
        Err(IamError::DeleteConflict(_))
    ));
    assert_eq!(
        iam.list_policies(PolicyScope::Local, true, None, None, 100)
            .items
            .len(),
        1
    );

    let (v2, default) = iam
        .create_policy_version(&arn, READ_ROLES, true)
        .await
        .unwrap();
    assert_eq!((v2.number, default), (2, true));
    for _ in 0..3 {
        iam.create_policy_version(&arn, READ_ROLES, false)
            .await
            .unwrap();
    }
    assert!(matches!(
        iam.create_policy_version(&arn, READ_ROLES, false).await,
        Err(IamError::LimitExceeded(_))
    ));
    let (v1, is_default) = iam.get_policy_version(&arn, "v1").unwrap();
    assert_eq!((v1.number, is_default), (1, false));
    assert!(matches!(
        iam.delete_policy_version(&arn, "v2").await,
        Err(IamError::DeleteConflict(_))
    ));

    iam.detach_role_policy("r", &arn).await.unwrap();
    assert!(matches!(
        iam.detach_role_policy("r", &arn).await,
        Err(IamError::NoSuchEntity(_))
    ));
    assert!(
        matches!(iam.delete_policy(&arn).await, Err(IamError::DeleteConflict(m)) if m.contains("more than one version"))
    );
    for v in ["v1", "v3", "v4", "v5"] {
        iam.delete_policy_version(&arn, v).await.unwrap();
    }
    iam.delete_policy(&arn).await.unwrap();
}

#[tokio::test]
async fn users_and_access_keys() {
    let iam = iam().await;
    let user = iam
        .create_user(NewUser {
            name: "alice".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    assert!(user.record.id.starts_with("AIDA"));
    let (k1, secret) = iam.create_access_key(Some("alice")).await.unwrap();
    assert!(k1.id.starts_with("AKIA"));
    assert_eq!(secret.expose().len(), 40);
    assert!(
        !k1.sealed_secret.contains(secret.expose().as_str()),
        "stored sealed, not in the clear"
    );
    let entry = iam.state().access_key(&k1.id).unwrap();
    assert_eq!(
        entry.secret.as_ref().unwrap().expose(),
        secret.expose(),
        "opened with the key-encryption key"
    );
    iam.create_access_key(Some("alice")).await.unwrap();
    assert!(
        matches!(iam.create_access_key(Some("alice")).await, Err(IamError::LimitExceeded(m)) if m == "Cannot exceed quota for AccessKeysPerUser: 2")
    );
    iam.update_access_key(Some("alice"), &k1.id, KeyStatus::Inactive)
        .await
        .unwrap();
    assert_eq!(
        iam.state().access_key(&k1.id).unwrap().record.status,
        KeyStatus::Inactive
    );
    assert!(
        matches!(iam.delete_user("alice").await, Err(IamError::DeleteConflict(m)) if m.contains("access keys"))
    );
    for key in iam.list_access_keys(Some("alice")).unwrap() {
        iam.delete_access_key(Some("alice"), &key.record.id)
            .await
            .unwrap();
    }
    iam.put_user_policy("alice", "p", READ_ROLES).await.unwrap();
    assert!(matches!(
        iam.delete_user("alice").await,
        Err(IamError::DeleteConflict(_))
    ));
    iam.delete_user_policy("alice", "p").await.unwrap();
    iam.delete_user("alice").await.unwrap();
    let (root_key, _) = iam.create_access_key(None).await.unwrap();
    assert_eq!(root_key.user, None);
}

#[tokio::test]
async fn pagination_with_markers() {
    let iam = iam().await;
    for i in 0..7 {
        iam.create_role(role(&format!("role-{i}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam.list_roles(None, marker.as_deref(), 3);
        seen.extend(page.items.iter().map(|r| r.record.name.clone()));
        match page.marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[0], "role-0");
}

#[tokio::test]
async fn oidc_providers() {
    let iam = iam().await;
    let arn = iam
        .create_oidc_provider(
            "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C",
            vec!["sts.amazonaws.com".into()],
            vec!["9e99a48a9960b14926bb7f3b02e22da2b0ab7280".into()],
            vec![],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        arn,
        "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C"
    );
    assert!(matches!(
        iam.create_oidc_provider(
            "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C",
            vec![],
            vec![],
            vec![],
            false
        )
        .await,
        Err(IamError::EntityAlreadyExists(_))
    ));
    iam.add_client_id(&arn, "pods.eks.amazonaws.com")
        .await
        .unwrap();
    assert_eq!(
        iam.get_oidc_provider(&arn).unwrap().record.client_ids,
        ["sts.amazonaws.com", "pods.eks.amazonaws.com"]
    );
    assert!(matches!(
        iam.update_thumbprints(&arn, vec!["xyz".into()]).await,
        Err(IamError::InvalidInput(_))
    ));
    assert!(matches!(
        iam.create_oidc_provider("http://127.0.0.1:9000", vec![], vec![], vec![], false)
            .await,
        Err(IamError::InvalidInput(_))
    ));
    assert!(
        iam.create_oidc_provider("http://127.0.0.1:9000", vec![], vec![], vec![], true)
            .await
            .is_ok()
    );
    // Which plain-HTTP issuers are acceptable is the caller's decision; the URL rules hold.
    assert!(matches!(
        iam.create_oidc_provider("http://a@10.0.0.1:9000", vec![], vec![], vec![], true)
            .await,
        Err(IamError::InvalidInput(_))
    ));
    assert_eq!(iam.list_oidc_providers().items.len(), 2);
    iam.delete_oidc_provider(&arn).await.unwrap();
    assert!(iam.get_oidc_provider(&arn).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_follows_the_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = iam_on(Arc::clone(&store)).await;
    let b = iam_on(Arc::clone(&store)).await;
    a.create_role(role("shared")).await.unwrap();
    let mut seen = false;
    for _ in 0..100 {
        if b.state().role("shared").is_some() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "replica b sees replica a's write within a second");
    b.delete_role("shared").await.unwrap();
    for _ in 0..100 {
        if a.state().role("shared").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("replica a never saw the delete");
}

#[tokio::test]
async fn authorization_of_users() {
    let iam = iam().await;
    iam.create_user(NewUser {
        name: "bob".into(),
        ..NewUser::default()
    })
    .await
    .unwrap();
    let caller = Caller::User(iam.get_user("bob").unwrap());
    let role_arn = "arn:aws:iam::111122223333:role/x";
    let err = iam
        .state()
        .authorize(&caller, "iam:GetRole", role_arn, &facts(), &[])
        .unwrap_err();
    assert_eq!(
        err,
        IamError::AccessDenied("User: arn:aws:iam::111122223333:user/bob is not authorized to perform: iam:GetRole on resource: arn:aws:iam::111122223333:role/x because no identity-based policy allows the iam:GetRole action".into())
    );
    iam.put_user_policy("bob", "read", READ_ROLES)
        .await
        .unwrap();
    let caller = Caller::User(iam.get_user("bob").unwrap());
    iam.state()
        .authorize(&caller, "iam:GetRole", role_arn, &facts(), &[])
        .unwrap();
    assert!(
        iam.state()
            .authorize(&caller, "iam:DeleteRole", role_arn, &facts(), &[])
            .is_err()
    );
    // A boundary that does not allow wins over the identity policy.
    let boundary = iam.create_policy("OnlyList", None, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#, None, vec![]).await.unwrap();
    iam.create_user(NewUser {
        name: "carol".into(),
        boundary: Some(boundary.record.arn.clone()),
        ..NewUser::default()
    })
    .await
    .unwrap();
    iam.put_user_policy("carol", "read", READ_ROLES)
        .await
        .unwrap();
    let carol = Caller::User(iam.get_user("carol").unwrap());
    let err = iam
        .state()
        .authorize(&carol, "iam:GetRole", role_arn, &facts(), &[])
        .unwrap_err();
    assert!(
        matches!(err, IamError::AccessDenied(m) if m.ends_with("because no permissions boundary allows the iam:GetRole action"))
    );
    iam.state()
        .authorize(&carol, "iam:ListRoles", "*", &facts(), &[])
        .unwrap();
    // The root may do anything.
    iam.state()
        .authorize(&Caller::Root, "iam:DeleteRole", role_arn, &facts(), &[])
        .unwrap();
}

/// `DeleteUser` on a replica that has not yet seen another replica's new access key: the
/// user record in the store lists the key, so the delete is refused and no key is left behind
/// for a user that is gone (it would sign as a later user of the same name).
#[tokio::test]
async fn delete_user_on_a_lagging_replica_sees_new_access_keys() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = iam_on(Arc::clone(&store)).await;
    let b = iam_on(Arc::clone(&store)).await;
    a.create_user(NewUser {
        name: "racer".into(),
        ..NewUser::default()
    })
    .await
    .unwrap();
    for _ in 0..100 {
        if b.get_user("racer").is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // No yield between the two calls: replica a's follower has not applied b's write.
    b.create_access_key(Some("racer")).await.unwrap();
    let deleted = a.delete_user("racer").await;
    assert!(
        matches!(deleted, Err(IamError::DeleteConflict(_))),
        "{deleted:?}"
    );
}

#[tokio::test]
async fn a_role_in_another_account_needs_only_the_callers_own_side_allowing() {
    let iam = iam().await;
    iam.create_user(NewUser {
        name: "node".into(),
        ..NewUser::default()
    })
    .await
    .unwrap();
    let aws_role = "arn:aws:iam::444455556666:role/node";
    let caller = || Caller::User(iam.get_user("node").unwrap());
    // Nothing allows yet: refused, naming the identity side.
    let err = iam
        .state()
        .authorize_own_side(&caller(), "sts:AssumeRole", aws_role, &facts())
        .unwrap_err();
    assert!(
        matches!(&err, IamError::AccessDenied(m) if m.contains("no identity-based policy allows")),
        "{err:?}"
    );
    // The plain check refuses even with a policy: podiam holds no trust policy for the role.
    iam.put_user_policy(
        "node",
        "assume",
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{aws_role}"}}]}}"#),
    )
    .await
    .unwrap();
    assert!(
        iam.state()
            .authorize(&caller(), "sts:AssumeRole", aws_role, &facts(), &[])
            .is_err()
    );
    iam.state()
        .authorize_own_side(&caller(), "sts:AssumeRole", aws_role, &facts())
        .unwrap();
    // Another role, or another action: still refused.
    assert!(
        iam.state()
            .authorize_own_side(
                &caller(),
                "sts:AssumeRole",
                "arn:aws:iam::444455556666:role/other",
                &facts()
            )
            .is_err()
    );
    assert!(
        iam.state()
            .authorize_own_side(&caller(), "sts:TagSession", aws_role, &facts())
            .is_err()
    );
    // An explicit deny wins.
    iam.put_user_policy(
        "node",
        "deny",
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"{aws_role}"}}]}}"#),
    )
    .await
    .unwrap();
    assert!(
        iam.state()
            .authorize_own_side(&caller(), "sts:AssumeRole", aws_role, &facts())
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_use_is_written_at_most_once_an_interval() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
    ));
    let iam = iam_with(Arc::clone(&store), Arc::clone(&clock)).await;
    let carts = iam.create_role(role("carts")).await.unwrap();
    let arn = iam.state().role_arn(&carts.record);
    let id = carts.record.id.clone();
    let key = format!("iam/role-last-used/{id}");
    let stored = || async { store.get(&key).await.unwrap().map(|e| e.mod_revision) };
    assert_eq!(iam.state().role_last_used(&id), None);

    // The first use is written; another within the interval is not, whatever its region.
    assert!(iam.write_role_use(&arn, "us-east-1").await.unwrap());
    let first = stored().await.unwrap();
    let used = |date, region: &str| {
        Some(RoleLastUsed {
            date,
            region: region.into(),
        })
    };
    assert_eq!(iam.state().role_last_used(&id), used(NOW, "us-east-1"));
    clock.advance(time::Duration::seconds(ROLE_USE_INTERVAL - 1));
    assert!(!iam.write_role_use(&arn, "eu-west-1").await.unwrap());
    iam.record_role_use(&arn, "eu-west-1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(stored().await, Some(first));
    assert_eq!(iam.state().role_last_used(&id), used(NOW, "us-east-1"));

    // Once the interval has passed, the next use is written.
    clock.advance(time::Duration::seconds(1));
    assert!(iam.write_role_use(&arn, "eu-west-1").await.unwrap());
    assert!(stored().await.unwrap() > first);
    let later = NOW + ROLE_USE_INTERVAL;
    assert_eq!(iam.state().role_last_used(&id), used(later, "eu-west-1"));

    // In the background, and followed by another replica.
    let other = iam_on(Arc::clone(&store)).await;
    clock.advance(time::Duration::seconds(ROLE_USE_INTERVAL));
    iam.record_role_use(&arn, "ap-south-1");
    let latest = used(later + ROLE_USE_INTERVAL, "ap-south-1");
    let mut seen = false;
    for _ in 0..100 {
        if other.state().role_last_used(&id) == latest {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "the other replica sees the recorded use");
    assert_eq!(iam.state().role_last_used(&id), latest);

    // A clock set back: a recorded use up to a day ahead is left alone (another replica's skew,
    // never undone), one further ahead is the clock's mistake and is overwritten.
    let recorded = stored().await;
    clock.advance(time::Duration::hours(-2));
    assert!(!iam.write_role_use(&arn, "us-east-1").await.unwrap());
    assert_eq!(stored().await, recorded);
    clock.advance(time::Duration::days(-2));
    assert!(iam.write_role_use(&arn, "us-east-1").await.unwrap());
    let corrected = later + ROLE_USE_INTERVAL - 2 * 3600 - 2 * 86_400;
    assert_eq!(
        iam.state().role_last_used(&id),
        used(corrected, "us-east-1")
    );

    // Unknown roles are not recorded; a deleted role takes its last use with it, and its
    // namesake starts unused.
    assert!(
        !iam.write_role_use(&role_arn_of(&iam, "missing"), "us-east-1")
            .await
            .unwrap()
    );
    iam.delete_role("carts").await.unwrap();
    assert_eq!(stored().await, None);
    assert_eq!(iam.state().role_last_used(&id), None);
    let again = iam.create_role(role("carts")).await.unwrap();
    assert_eq!(iam.state().role_last_used(&again.record.id), None);

    // A burst of uses writes once.
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let (iam, arn) = (iam.clone(), arn.clone());
            tokio::spawn(async move { iam.write_role_use(&arn, "us-east-1").await.unwrap() })
        })
        .collect();
    let mut written = 0;
    for task in burst {
        written += usize::from(task.await.unwrap());
    }
    assert_eq!(written, 1);
}

fn role_arn_of(iam: &Iam, name: &str) -> String {
    format!("arn:aws:iam::{}:role/{name}", iam.state().account())
}
