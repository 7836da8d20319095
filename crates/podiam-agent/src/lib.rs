//! The node agent: what SDKs call at 169.254.170.23 for EKS Pod Identity credentials, IMDSv2 for
//! the node's own role, and the link-local setup they need.
//!
//! A pod's token is checked locally (basic claims, then the signature against the cluster's
//! keys fetched from the server) before any upstream call; when the keys cannot be had (no
//! `eks:DescribeCluster`), EKS Auth verifies the token before anything is served for it.
//! Upstream calls are hedged across server replicas and skip a replica that does not answer
//! (`podiam_client::Failover`). Credentials are cached per pod with
//! one upstream call however many requests arrive together, renewed only for pods that still
//! ask (no pod's token is kept), and served through a server outage until 15 s before they
//! expire.

mod agent;
mod cache;
pub mod cli;
mod imds;
mod link;
mod tokens;
mod upstream;

pub use agent::{
    Agent, AgentConfig, admitted_credentials_router, credentials_router, probe_router,
};
pub use cache::{CacheConfig, Cached, MIN_REMAINING, Miss, PodCache};
pub use imds::{
    AssumeRoleSource, Imds, ImdsConfig, RoleCredentials, RoleSource, imds_router, node_only,
};
pub use link::{
    AGENT_V4, AGENT_V6, IMDS_V4, IMDS_V6, LINK_NAME, LinkError, LinkReport, setup_link,
};
pub use tokens::{Checked, PodKey, Refusal, ServerTurn, TokenChecker};
pub use upstream::{EksAuthUpstream, PodCredentials, Upstream, UpstreamError};
