//! A state built the way replicas build theirs (records applied as the store's watch
//! delivers them), for the tests and the benchmark.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::sync::Arc;

use podiam_access::Snapshot;
use podiam_crypto::{AeadKey, KeyId, Keyring};
use podiam_eks::{AssociationRecord, ClusterRecord, EksState, IssuerRecord};
use podiam_iam::{IamState, InlinePolicies, ProviderRecord, RoleLastUsed, RoleRecord, UserRecord};
use podiam_store::View as _;
use time::OffsetDateTime;

pub const ACCOUNT: &str = "111122223333";
pub const NOW: i64 = 1_796_000_000;

pub struct World {
    pub iam: IamState,
    pub eks: EksState,
    revision: u64,
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

pub fn issuer(cluster: &str) -> String {
    format!("oidc.example.com/id/{cluster}")
}

pub fn provider_arn(cluster: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", issuer(cluster))
}

/// The trust EKS Pod Identity needs.
pub const PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

/// An IRSA trust for `subject` (with `StringLike` when it has a wildcard).
pub fn irsa_trust(cluster: &str, subject: &str) -> String {
    let url = issuer(cluster);
    let sub = format!("{url}:sub");
    let aud = format!("{url}:aud");
    let condition = if subject.contains('*') {
        serde_json::json!({"StringLike": {sub: subject}, "StringEquals": {aud: "sts.amazonaws.com"}})
    } else {
        serde_json::json!({"StringEquals": {sub: subject, aud: "sts.amazonaws.com"}})
    };
    serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn(cluster)},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition
    }]})
    .to_string()
}

pub fn allow(action: &str, resource: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}).to_string()
}

impl World {
    #[expect(clippy::expect_used, reason = "a fixed, valid test key")]
    pub fn new() -> Self {
        let kek = Arc::new(Keyring::new(
            AeadKey::from_bytes(KeyId(0), &[9; 32]).expect("a 32-byte key"),
        ));
        Self {
            iam: IamState::new(ACCOUNT, "aws", Arc::clone(&kek)),
            eks: EksState::new(kek),
            revision: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    pub fn role(&mut self, name: &str, trust: &str, policies: &[(&str, &str)]) {
        let record = RoleRecord {
            name: name.to_owned(),
            id: format!("AROA{}", name.to_uppercase()),
            path: "/".to_owned(),
            created: NOW - 86_400 * 400,
            trust: trust.to_owned(),
            description: None,
            max_session: 3600,
            boundary: None,
            tags: Vec::new(),
            inline: InlinePolicies::from(
                policies
                    .iter()
                    .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ),
            attached: Vec::new(),
        };
        let revision = self.next();
        self.iam.apply(
            &format!("iam/role/{}", name.to_lowercase()),
            Some(&json(&record)),
            revision,
        );
    }

    pub fn used(&mut self, role: &str, days_ago: i64) {
        let used = RoleLastUsed {
            date: NOW - 86_400 * days_ago,
            region: "us-west-2".to_owned(),
        };
        let revision = self.next();
        self.iam.apply(
            &format!("iam/role-last-used/AROA{}", role.to_uppercase()),
            Some(&json(&used)),
            revision,
        );
    }

    pub fn node_user(&mut self, name: &str, node: &str, policy: &str) {
        let record = UserRecord {
            name: name.to_owned(),
            id: format!("AIDA{}", name.to_uppercase()),
            path: "/".to_owned(),
            created: NOW,
            boundary: None,
            tags: vec![("podiam:node-name".to_owned(), node.to_owned())],
            inline: InlinePolicies::from([("node".to_owned(), policy.to_owned())]),
            attached: Vec::new(),
            access_keys: Vec::new(),
        };
        let revision = self.next();
        self.iam.apply(
            &format!("iam/user/{}", name.to_lowercase()),
            Some(&json(&record)),
            revision,
        );
    }

    pub fn provider(&mut self, cluster: &str) {
        let record = ProviderRecord {
            url: issuer(cluster),
            client_ids: vec!["sts.amazonaws.com".to_owned()],
            thumbprints: Vec::new(),
            created: NOW,
            tags: Vec::new(),
        };
        let revision = self.next();
        self.iam.apply(
            &format!("iam/oidc/{}", issuer(cluster)),
            Some(&json(&record)),
            revision,
        );
    }

    pub fn cluster(&mut self, name: &str) {
        let record = ClusterRecord {
            name: name.to_owned(),
            role_arn: None,
            version: "1.31".to_owned(),
            created: NOW,
            tags: Default::default(),
            issuer: IssuerRecord::External {
                url: format!("https://{}", issuer(name)),
                jwks: None,
                ca: None,
            },
            create_request: None,
        };
        let revision = self.next();
        self.eks.apply(
            &format!("eks/cluster/{name}"),
            Some(&json(&record)),
            revision,
        );
    }

    pub fn association(
        &mut self,
        id: &str,
        cluster: &str,
        namespace: &str,
        service_account: &str,
        role: &str,
        target: Option<&str>,
    ) {
        let record = AssociationRecord {
            id: id.to_owned(),
            cluster: cluster.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            role_arn: if role.starts_with("arn:") {
                role.to_owned()
            } else {
                role_arn(role)
            },
            target_role_arn: target.map(role_arn),
            disable_session_tags: false,
            policy: None,
            external_id: None,
            tags: Default::default(),
            created: NOW,
            modified: NOW,
            create_request: None,
            update_requests: Vec::new(),
        };
        let revision = self.next();
        self.eks.apply(
            &format!("eks/association/{cluster}/{id}"),
            Some(&json(&record)),
            revision,
        );
    }

    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            iam: &self.iam,
            eks: &self.eks,
            region: "us-west-2",
            now: OffsetDateTime::from_unix_timestamp(NOW).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            role_visible: &|_, _| true,
            association_visible: &|_| true,
            may_read: &|_, _| true,
        }
    }
}
