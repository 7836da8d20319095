//! EKS Auth `AssumeRoleForPodIdentity`: a pod's token in, the association's role session out.

use std::sync::Arc;

use podiam_iam::{Caller, RequestFacts};
use podiam_oidc::{Claims, KeySet, TokenError, Verifier};
use podiam_session::Origin;
use podiam_sts::{AssumeRoleRequest, Issued, IssuerKeys, ServiceAssumeRequest, Sts};

use time::OffsetDateTime;

use crate::{Eks, EksError, Upstream, UpstreamAssume, UpstreamCredentials};

/// The audience of pod identity tokens.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

/// The service principal that assumes the association's role.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";

/// How long pod identity sessions last (a chained target role: an hour).
pub const POD_IDENTITY_DURATION: u32 = 6 * 3600;

/// `AssumeRoleForPodIdentity`'s input.
#[derive(Debug, Clone, Default)]
pub struct PodIdentityRequest {
    /// The cluster (URI label).
    pub cluster: String,
    /// The pod's projected service-account token.
    pub token: String,
    /// The node the calling agent runs on (`eksNodeName`), if it says.
    pub node_name: Option<String>,
}

/// What `AssumeRoleForPodIdentity` hands back.
#[derive(Debug, Clone)]
pub struct PodIdentityGrant {
    /// The credentials (of the target role when the association chains into one).
    pub credentials: PodCredentials,
    /// The token's namespace.
    pub namespace: String,
    /// The token's service account.
    pub service_account: String,
    /// The association used.
    pub association_id: String,
    /// Its ARN.
    pub association_arn: String,
}

/// A pod's credentials: a podiam session, or AWS's for a role in an upstream account.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per request, moved once into the response"
)]
pub enum PodCredentials {
    /// Issued by podiam's STS.
    Local(Issued),
    /// Issued by AWS STS to podiam, for the pod.
    Upstream(UpstreamCredentials),
}

impl PodCredentials {
    /// podiam's session, when podiam issued it.
    pub fn local(&self) -> Option<&Issued> {
        match self {
            Self::Local(issued) => Some(issued),
            Self::Upstream(_) => None,
        }
    }

    /// The role the credentials are of.
    pub fn role_arn(&self) -> &str {
        match self {
            Self::Local(issued) => &issued.session.details.role_arn,
            Self::Upstream(aws) => &aws.role_arn,
        }
    }

    /// The role session name.
    pub fn session_name(&self) -> &str {
        match self {
            Self::Local(issued) => &issued.session.details.session_name,
            Self::Upstream(aws) => aws
                .assumed_role_id
                .split_once(':')
                .map_or("", |(_, name)| name),
        }
    }

    /// `ASIA…`
    pub fn access_key_id(&self) -> &str {
        match self {
            Self::Local(issued) => &issued.session.access_key_id,
            Self::Upstream(aws) => &aws.access_key_id,
        }
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        match self {
            Self::Local(issued) => issued.session.secret_access_key.expose(),
            Self::Upstream(aws) => aws.secret_access_key.expose(),
        }
    }

    /// The session token.
    pub fn session_token(&self) -> &str {
        match self {
            Self::Local(issued) => &issued.session_token,
            Self::Upstream(aws) => aws.session_token.expose(),
        }
    }

    /// When they expire.
    pub fn expiration(&self) -> OffsetDateTime {
        match self {
            Self::Local(issued) => issued.session.expiration(),
            Self::Upstream(aws) => aws.expiration,
        }
    }

    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub fn assumed_role_arn(&self) -> String {
        match self {
            Self::Local(issued) => issued.session.assumed_role_arn(),
            Self::Upstream(aws) => aws.assumed_role_arn.clone(),
        }
    }

    /// `AROA…:SESSION`.
    pub fn assumed_role_id(&self) -> String {
        match self {
            Self::Local(issued) => issued.session.assumed_role_id(),
            Self::Upstream(aws) => aws.assumed_role_id.clone(),
        }
    }
}

/// One call to AWS, its failure named with the role.
async fn upstream_assume(
    upstream: &Upstream,
    call: &UpstreamAssume,
) -> Result<UpstreamCredentials, EksError> {
    upstream
        .roles
        .assume(call)
        .await
        .map_err(|error| EksError::Upstream {
            role_arn: call.role_arn.clone(),
            error,
        })
}

fn token_claims(claims: &Claims) -> Result<(&str, &str, &str, &str, Option<&str>), EksError> {
    let k8s = claims
        .kubernetes
        .as_ref()
        .ok_or(TokenError::MissingClaim("kubernetes.io"))?;
    let pod = k8s
        .pod
        .as_ref()
        .ok_or(TokenError::MissingClaim("kubernetes.io.pod"))?;
    if k8s.namespace.is_empty() || k8s.serviceaccount.name.is_empty() || pod.name.is_empty() {
        return Err(TokenError::MissingClaim("kubernetes.io").into());
    }
    let expected = format!(
        "system:serviceaccount:{}:{}",
        k8s.namespace, k8s.serviceaccount.name
    );
    if claims.sub != expected {
        return Err(EksError::Token(TokenError::Malformed(format!(
            "sub {:?} does not name the token's service account {expected:?}",
            claims.sub
        ))));
    }
    Ok((
        &k8s.namespace,
        &k8s.serviceaccount.name,
        &pod.name,
        &pod.uid,
        k8s.node.as_ref().map(|n| n.name.as_str()),
    ))
}

/// The principal tag that names the node a caller's identity belongs to: set on a node
/// agent's IAM user (one user per node), or as a session tag of a node's role session (which
/// the role's trust policy must allow with `sts:TagSession`).
pub const NODE_NAME_TAG: &str = "podiam:node-name";

/// The node the caller's identity establishes: a session whose origin proves a node (a node's
/// instance profile, or a web identity token the kubelet bound to the node: IRSA for the agent
/// pod), or the `podiam:node-name` principal tag. Never what the request says.
pub fn caller_node(caller: &Caller) -> Option<String> {
    if let Caller::Session { session, .. } = caller
        && let Some(node) = session.details.origin.node()
    {
        return Some(node.to_owned());
    }
    caller
        .principal_tags()
        .into_iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(NODE_NAME_TAG))
        .map(|(_, node)| node)
}

/// `eks-<cluster>-<pod>-<uuid>`, cut to 64 characters as AWS does.
fn session_name(cluster: &str, pod: &str, uuid: &str) -> String {
    let mut name = format!("eks-{cluster}-{pod}-{uuid}");
    if name.len() > 64 {
        name.truncate(64);
    }
    name
}

impl Eks {
    /// The keys of the cluster's issuer: hosted or uploaded ones from the store, else by
    /// discovery (refetched once on an unknown key id).
    async fn cluster_keys(
        &self,
        issuer: &str,
        stored: Option<KeySet>,
        issuers: &dyn IssuerKeys,
        refresh: bool,
    ) -> Result<KeySet, EksError> {
        if let Some(keys) = stored {
            return Ok(keys);
        }
        issuers.keys(issuer, refresh).await.map_err(|e| {
            EksError::Token(TokenError::Malformed(format!(
                "the keys of issuer {issuer} are not available: {e}"
            )))
        })
    }

    /// Verifies the pod's token, finds the association and issues its role's session.
    pub async fn assume_role_for_pod_identity(
        &self,
        sts: &Sts,
        issuers: &dyn IssuerKeys,
        caller: &Caller,
        request: &PodIdentityRequest,
        facts: &RequestFacts,
    ) -> Result<PodIdentityGrant, EksError> {
        let cluster = self.describe_cluster(&request.cluster)?;
        let issuer = cluster.record.issuer.url().to_owned();
        let verifier = Verifier::new(&issuer, &[POD_IDENTITY_AUDIENCE]);
        let token = request.token.trim();
        let now = self.now();
        let keys = self
            .cluster_keys(&issuer, cluster.keys.clone(), issuers, false)
            .await?;
        let verified = match verifier.verify(token, &keys, now) {
            Err(TokenError::UnknownKey(_)) if cluster.keys.is_none() => {
                let keys = self.cluster_keys(&issuer, None, issuers, true).await?;
                verifier.verify(token, &keys, now)?
            }
            other => other?,
        };
        let (namespace, service_account, pod, pod_uid, token_node) =
            token_claims(&verified.claims)?;
        let denied = |message: &str, why: String| EksError::AccessDenied {
            message: message.to_owned(),
            reason: format!(
                "system:serviceaccount:{namespace}:{service_account} (pod {pod}): {why}"
            ),
        };
        // The node is the caller's identity's, never the request's say-so: a token bound to
        // a node is accepted only from that node's identity, and `eksNodeName` must agree.
        let node = caller_node(caller);
        if let (Some(said), Some(node)) = (request.node_name.as_deref(), node.as_deref())
            && said != node
        {
            return Err(denied(
                "The eksNodeName does not match the caller's node.",
                format!("eksNodeName is {said:?}, the caller's identity is node {node:?}"),
            ));
        }
        if let Some(bound) = token_node {
            match node.as_deref() {
                Some(node) if node == bound => {}
                Some(node) => {
                    return Err(denied(
                        "The token is bound to another node.",
                        format!("the token names node {bound:?}, the caller is node {node:?}"),
                    ));
                }
                None => {
                    return Err(denied(
                        "The token is bound to a node, and the caller's identity names none.",
                        format!(
                            "the token names node {bound:?}; the caller has no {NODE_NAME_TAG} tag and is no node session"
                        ),
                    ));
                }
            }
        }
        let association = self
            .state()
            .association_for(&request.cluster, namespace, service_account)
            .ok_or_else(|| {
                EksError::NotFound(format!(
                    "No pod identity association found for service account {service_account} in namespace {namespace} of cluster {}.",
                    request.cluster
                ))
            })?;
        let a = &association.record;
        let cluster_arn = self.cluster_arn(&request.cluster);
        let tags = if a.disable_session_tags {
            Vec::new()
        } else {
            vec![
                ("eks-cluster-arn".to_owned(), cluster_arn.clone()),
                ("eks-cluster-name".to_owned(), request.cluster.clone()),
                ("kubernetes-namespace".to_owned(), namespace.to_owned()),
                (
                    "kubernetes-service-account".to_owned(),
                    service_account.to_owned(),
                ),
                ("kubernetes-pod-name".to_owned(), pod.to_owned()),
                ("kubernetes-pod-uid".to_owned(), pod_uid.to_owned()),
            ]
        };
        let uuid =
            podiam_session::random_uuid(self.rng()).map_err(|e| EksError::Crypto(e.to_string()))?;
        let name = session_name(&request.cluster, pod, &uuid);
        let upstream_of = |role: &str| self.upstream().filter(|u| u.accounts.holds(role));
        let upstream_call = |role: &str, via: Option<UpstreamCredentials>| UpstreamAssume {
            role_arn: role.to_owned(),
            session_name: name.clone(),
            tags: tags.clone(),
            external_id: None,
            policy: None,
            via,
            pod: format!("{}/{namespace}/{pod}/{pod_uid}", request.cluster),
        };
        let credentials = if let Some(upstream) = upstream_of(&a.role_arn) {
            // A podiam role cannot trust an AWS session: refused before AWS is asked.
            if let Some(target) = a
                .target_role_arn
                .as_deref()
                .filter(|t| upstream_of(t).is_none())
            {
                return Err(denied(
                    "The association chains from an AWS role into a podiam role, which cannot trust an AWS session.",
                    format!(
                        "role {} is in an upstream account and target role {target} is not",
                        a.role_arn
                    ),
                ));
            }
            // AWS decides on its own role, with the policy as the first session's.
            let first = upstream_assume(
                upstream,
                &UpstreamAssume {
                    policy: a.policy.clone(),
                    ..upstream_call(&a.role_arn, None)
                },
            )
            .await?;
            match &a.target_role_arn {
                None => PodCredentials::Upstream(first),
                Some(target) => PodCredentials::Upstream(
                    upstream_assume(
                        upstream,
                        &UpstreamAssume {
                            external_id: a.external_id.clone(),
                            ..upstream_call(target, Some(first))
                        },
                    )
                    .await?,
                ),
            }
        } else {
            let first = sts.assume_role_for_service(
                &ServiceAssumeRequest {
                    role_arn: a.role_arn.clone(),
                    service: POD_IDENTITY_SERVICE.to_owned(),
                    session_name: name.clone(),
                    tags: tags.clone(),
                    source_arn: cluster_arn.clone(),
                    source_account: self.config().account.clone(),
                    duration: POD_IDENTITY_DURATION,
                    policy: a.policy.clone(),
                    origin: Origin::PodIdentity {
                        cluster: cluster_arn,
                        association_id: a.id.clone(),
                    },
                },
                facts,
            )?;
            match &a.target_role_arn {
                None => PodCredentials::Local(first),
                // The pod's own role passed podiam's trust; podiam asks AWS for the target as
                // itself, with the workload's tags and the association's external id.
                Some(target) if let Some(upstream) = upstream_of(target) => {
                    let chained = upstream_assume(
                        upstream,
                        &UpstreamAssume {
                            external_id: a.external_id.clone(),
                            ..upstream_call(target, None)
                        },
                    )
                    .await?;
                    PodCredentials::Upstream(chained)
                }
                Some(target) => {
                    let role = sts.iam().state().role_by_arn(&a.role_arn);
                    let chained = Caller::Session {
                        session: Arc::new(first.session),
                        role,
                    };
                    let request = AssumeRoleRequest {
                        role_arn: target.clone(),
                        session_name: name.clone(),
                        external_id: a.external_id.clone(),
                        ..AssumeRoleRequest::default()
                    };
                    PodCredentials::Local(sts.assume_role(&chained, &request, facts).await?)
                }
            }
        };
        Ok(PodIdentityGrant {
            credentials,
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            association_id: a.id.clone(),
            association_arn: self.association_arn(&request.cluster, &a.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_cut_to_64() {
        let name = session_name(
            "eks-workshop",
            "carts-7d8f9c6b5-abcde",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        );
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("eks-eks-workshop-carts-7d8f9c6b5-abcde-0f8fad5b"));
    }
}
