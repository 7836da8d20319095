//! The state an analysis reads, what the caller may see of it, and the sessions a workload's
//! credentials would be: the analysis asks the engine about those sessions exactly as the
//! server authorizes their calls.

use std::sync::Arc;

use podiam_crypto::Secret;
use podiam_eks::{AssociationRecord, EksState};
use podiam_iam::{Caller, IamState, RequestFacts, RoleEntry};
use podiam_policy::{Policy, Request};
use podiam_session::{Origin, Session, SessionDetails};
use time::OffsetDateTime;

use crate::verdict::{Verdict, judge};

/// Whether the caller may see a role, by its ARN and tags.
pub type RoleVisible<'a> = dyn Fn(&str, &[(String, String)]) -> bool + 'a;

/// Everything one analysis reads, at one instant.
pub struct Snapshot<'a> {
    /// IAM: roles, policies, users, providers.
    pub iam: &'a IamState,
    /// EKS: clusters, issuers, associations.
    pub eks: &'a EksState,
    /// The region the clusters are in.
    pub region: &'a str,
    /// When the analysis runs (time conditions are evaluated at this instant).
    pub now: OffsetDateTime,
    /// Whether the caller may see a role and its policies, by ARN and tags (none for a
    /// role that does not exist: whether it exists is itself what `GetRole` guards).
    pub role_visible: &'a RoleVisible<'a>,
    /// Whether the caller may see an association (`eks:DescribePodIdentityAssociation`).
    pub association_visible: &'a dyn Fn(&AssociationRecord) -> bool,
    /// Whether the caller may read the object `arn` with `action`, for what else an analysis
    /// would tell: which cluster owns an issuer (`eks:DescribeCluster`), whether an OIDC
    /// provider exists (`iam:GetOpenIDConnectProvider`), which users are nodes (`iam:GetUser`).
    pub may_read: &'a dyn Fn(&str, &str) -> bool,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("region", &self.region)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Context keys a workload's calls carry but the analysis cannot know: left out, so that a
/// condition on them is reported open.
const UNKNOWABLE: [&str; 1] = ["aws:SecureTransport"];

impl Snapshot<'_> {
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub fn cluster_arn(&self, cluster: &str) -> String {
        format!(
            "arn:{}:eks:{}:{}:cluster/{cluster}",
            self.iam.partition(),
            self.region,
            self.iam.account()
        )
    }

    /// The facts of a call whose client the analysis does not know.
    pub(crate) fn facts(&self) -> RequestFacts {
        RequestFacts {
            now: self.now,
            source_ip: None,
            secure_transport: true,
            region: self.region.to_owned(),
            user_agent: None,
        }
    }

    /// The name of the cluster whose issuer is `url`, when the caller may describe it.
    pub(crate) fn issuer_owner(&self, url: &str) -> Option<String> {
        self.eks
            .issuer_cluster(url)
            .map(|c| c.record.name.clone())
            .filter(|name| (self.may_read)("eks:DescribeCluster", &self.cluster_arn(name)))
    }

    /// Whether the OIDC provider `arn` (of issuer `url`) exists; `None` when the caller may
    /// not read it, since whether it exists is what `GetOpenIDConnectProvider` guards.
    pub(crate) fn provider_exists(&self, url: &str, arn: &str) -> Option<bool> {
        (self.may_read)("iam:GetOpenIDConnectProvider", arn)
            .then(|| self.iam.provider(url).is_some())
    }

    /// A role the caller may see.
    pub(crate) fn role(&self, arn: &str) -> Option<Arc<RoleEntry>> {
        self.iam
            .role_by_arn(arn)
            .filter(|r| (self.role_visible)(arn, &r.record.tags))
    }

    /// The roles the caller may see.
    pub(crate) fn roles(&self) -> impl Iterator<Item = &Arc<RoleEntry>> {
        self.iam
            .roles()
            .filter(|r| (self.role_visible)(&self.iam.role_arn(&r.record), &r.record.tags))
    }

    /// A session of `role` with these details, as the server would hold it.
    pub(crate) fn session(&self, role: &Arc<RoleEntry>, workload: SessionShape) -> Caller {
        let role_arn = self.iam.role_arn(&role.record);
        let issued_at = self.now.unix_timestamp();
        let details = SessionDetails {
            account: self.iam.account().to_owned(),
            role_arn,
            role_id: role.record.id.clone(),
            session_name: workload.session_name,
            source_identity: None,
            transitive_tag_keys: workload.tags.iter().map(|(k, _)| k.clone()).collect(),
            tags: workload.tags,
            policy: workload.policy,
            policy_arns: Vec::new(),
            issued_at,
            expires_at: issued_at + 3600,
            origin: workload.origin,
        };
        Caller::Session {
            session: Arc::new(Session {
                access_key_id: "ASIAANALYSIS".to_owned(),
                secret_access_key: Secret::new(String::new()),
                details,
            }),
            role: Some(Arc::clone(role)),
        }
    }

    /// The request `caller` makes, without the keys the analysis cannot know.
    pub(crate) fn request(&self, caller: &Caller, action: &str, resource: &str) -> Request {
        let mut request = self
            .iam
            .request_for(caller, action, resource, &self.facts(), &[]);
        for key in UNKNOWABLE {
            request.context_mut().remove(key);
        }
        request
    }

    /// What the engine decides for `caller` doing `action` on `resource`.
    pub(crate) fn permits(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        resource_policy: Option<&Policy>,
    ) -> Verdict {
        let request = self.request(caller, action, resource);
        self.iam
            .with_policy_set(caller, resource_policy, |set| judge(set, &request))
    }
}

/// What a workload's session carries.
#[derive(Debug, Clone)]
pub(crate) struct SessionShape {
    pub(crate) session_name: String,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) policy: Option<String>,
    pub(crate) origin: Origin,
}
