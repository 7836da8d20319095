//! STS: the three ways to get session credentials.
//!
//! * [`Sts::assume_role_with_web_identity`] (IRSA): the caller is nobody; the token proves who
//!   it is. The token's issuer must be an IAM OIDC provider of the account; its keys come from
//!   an [`IssuerKeys`] source (hosted issuers from the store, others by OIDC discovery); the
//!   role's trust policy must allow the provider with the token's `sub`/`aud`.
//! * [`Sts::assume_role`]: a signed caller; its identity policies and the role's trust policy
//!   decide, with external id, session tags, transitive tags and source identity, and role
//!   chaining limited to one hour.
//! * [`Sts::get_caller_identity`].

mod error;
mod issuer;
mod service;
mod trust;

pub use error::StsError;
pub use issuer::{IssuerError, IssuerKeys};
pub use service::{
    AssumeRoleRequest, DEFAULT_DURATION, Issued, ServiceAssumeRequest, SharedKeyring, Sts,
    WebIdentityRequest,
};
pub use trust::{ServiceTrust, WebIdentityTrust, trust_allows};
