//! What EKS stores, under `eks/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The name (`[0-9A-Za-z][A-Za-z0-9\-_]*`, 1–100).
    pub name: String,
    /// The IAM role the cluster was created with (informational).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The Kubernetes version reported.
    pub version: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Who issues the cluster's service-account tokens.
    pub issuer: IssuerRecord,
    /// The `clientRequestToken` of the `CreateCluster` that made it, with its parameters'
    /// fingerprint: a retry of that request answers this cluster instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_request: Option<ClientRequest>,
}

/// A request that carried a `clientRequestToken`, kept with what it created or changed so that
/// a retry (same token, same parameters) gets the first answer instead of failing or acting
/// twice, and a reuse of the token for another request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The caller's token, verbatim (33–126 characters).
    pub token: String,
    /// SHA-256 (hex) of the operation and every parameter podiam acts on, the token excluded.
    pub fingerprint: String,
}

/// A cluster's service-account token issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IssuerRecord {
    /// podiam signs the tokens; the keys are sealed under the key-encryption key.
    Hosted {
        /// The issuer URL (the tokens' `iss`).
        url: String,
        /// Signing keys, the current one last.
        keys: Vec<SealedKey>,
    },
    /// A real kube-apiserver signs them; podiam verifies with its JWKS.
    External {
        /// The issuer URL.
        url: String,
        /// An uploaded JWKS (for apiservers not reachable from the server), as JSON.
        #[serde(default)]
        jwks: Option<String>,
        /// A PEM bundle of CAs to trust when fetching its discovery document and JWKS.
        #[serde(default)]
        ca: Option<String>,
    },
}

impl IssuerRecord {
    /// The issuer URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Hosted { url, .. } | Self::External { url, .. } => url,
        }
    }
}

/// A signing key sealed under the key-encryption key (AAD: the cluster key and the kid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The key id.
    pub kid: String,
    /// The sealed PKCS#8 PEM, base64url.
    pub sealed: String,
    /// When it stopped signing new tokens (unix seconds); still published until retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_out_at: Option<i64>,
}

/// A pod identity association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationRecord {
    /// `a-` and 17 lower-case alphanumerics.
    pub id: String,
    /// The cluster.
    pub cluster: String,
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The role the pods get.
    pub role_arn: String,
    /// A second role assumed from the first (role chaining).
    #[serde(default)]
    pub target_role_arn: Option<String>,
    /// Leave out the `kubernetes-*` and `eks-*` session tags.
    #[serde(default)]
    pub disable_session_tags: bool,
    /// A session policy limiting the role.
    #[serde(default)]
    pub policy: Option<String>,
    /// The external id used when chaining into the target role.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Last change, seconds since the epoch.
    pub modified: i64,
    /// The `clientRequestToken` of the `CreatePodIdentityAssociation` that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_request: Option<ClientRequest>,
    /// The tokens of the latest `UpdatePodIdentityAssociation`s (oldest first, at most
    /// [`UPDATE_REQUESTS_KEPT`]): a retried update is answered without being applied again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_requests: Vec<ClientRequest>,
}

/// How many update tokens an association remembers: enough for a client's retries to land
/// after a few other updates, small enough to keep the record small.
pub const UPDATE_REQUESTS_KEPT: usize = 16;

pub(crate) mod keys {
    pub(crate) const ROOT: &str = "eks/";
    pub(crate) const CLUSTER: &str = "eks/cluster/";
    pub(crate) const ASSOCIATION: &str = "eks/association/";
    /// `clientRequestToken`s of creates → what they created, so that a token is used for one
    /// request only. Keyed by the token's SHA-256: tokens may hold any character.
    pub(crate) const CLUSTER_TOKEN: &str = "eks/index/token/cluster/";
    pub(crate) const ASSOCIATION_TOKEN: &str = "eks/index/token/association/";

    pub(crate) fn cluster(name: &str) -> String {
        format!("{CLUSTER}{name}")
    }

    pub(crate) fn association(cluster: &str, id: &str) -> String {
        format!("{ASSOCIATION}{cluster}/{id}")
    }

    pub(crate) fn associations_of(cluster: &str) -> String {
        format!("{ASSOCIATION}{cluster}/")
    }

    /// The cluster a `CreateCluster` token created (value: the cluster name).
    pub(crate) fn cluster_token(token: &str) -> String {
        format!(
            "{CLUSTER_TOKEN}{}",
            podiam_crypto::sha256_hex(token.as_bytes())
        )
    }

    /// The association a `CreatePodIdentityAssociation` token created in `cluster` (value:
    /// the association id). Tokens are scoped to the cluster, whose deletion drops them.
    pub(crate) fn association_token(cluster: &str, token: &str) -> String {
        format!(
            "{ASSOCIATION_TOKEN}{cluster}/{}",
            podiam_crypto::sha256_hex(token.as_bytes())
        )
    }
}
