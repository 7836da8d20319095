//! IAM: users and access keys, roles, managed policies, OIDC providers, and the authorization
//! of every API call against the caller's policies.
//!
//! State lives in a [`podiam_store::Store`] under `iam/`. Every replica keeps all of it in
//! memory ([`IamState`]): it lists the prefix at start and then follows the store's watch, and
//! its own writes are applied as soon as they commit, so reads (and the authorization on every
//! request) never wait for the store. Writes read the stored record and commit with
//! compare-and-swap on its revision, so concurrent writers never lose an update.

mod authz;
mod error;
mod ids;
mod model;
mod ops;
mod service;
mod state;

pub use authz::{Caller, RequestFacts};
pub use error::IamError;
pub use ids::{new_access_key_id, new_unique_id};
pub use model::{
    AccessKeyRecord, InlinePolicies, KeyStatus, PolicyRecord, PolicyVersionRecord, ProviderRecord,
    RoleLastUsed, RoleRecord, UserRecord,
};
pub use ops::{NewRole, NewUser, Paged, PolicyScope, ROLE_USE_INTERVAL, RoleUpdate};
pub use service::{Iam, IamConfig};
pub use state::{IamState, KeyEntry, PolicyEntry, ProviderEntry, RoleEntry, UserEntry, scan};
