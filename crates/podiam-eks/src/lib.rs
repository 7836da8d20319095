//! EKS for podiam: clusters (each with a service-account token issuer, hosted by podiam or
//! external), pod identity associations, and EKS Auth's `AssumeRoleForPodIdentity`, which turns
//! a pod's token into a session of the association's role through [`podiam_sts`].
//!
//! State lives in the store under `eks/` and is read from a [`podiam_store::Replica`]; the
//! keys of hosted issuers are sealed under the key-encryption key.

mod error;
mod model;
mod pod_identity;
mod retries;
mod service;
mod state;
mod upstream;
mod validate;

pub use error::EksError;
pub use model::{
    AssociationRecord, ClientRequest, ClusterRecord, IssuerRecord, UPDATE_REQUESTS_KEPT,
};
pub use pod_identity::{
    NODE_NAME_TAG, POD_IDENTITY_AUDIENCE, POD_IDENTITY_DURATION, POD_IDENTITY_SERVICE,
    PodCredentials, PodIdentityGrant, PodIdentityRequest, caller_node,
};
pub use service::{
    AssociationUpdate, Eks, EksConfig, ISSUER_KEY_RETIRE_AFTER, IssuerChoice, IssuerRotation,
    NewAssociation, NewCluster,
};
pub use state::{AssociationEntry, ClusterEntry, EksState};
pub use upstream::{
    Upstream, UpstreamAccounts, UpstreamAssume, UpstreamCredentials, UpstreamError, UpstreamRole,
    UpstreamRoles,
};

/// The most pod identity associations per cluster (AWS's quota).
pub const MAX_ASSOCIATIONS_PER_CLUSTER: usize = 5000;
