//! The mutating admission webhook: on every pod CREATE, the IRSA or Pod Identity environment
//! and projected token volume, exactly as EKS injects them.
//!
//! [`mutate`] is pure (pod, ServiceAccount, association, configuration → JSON Patch);
//! [`decode`], [`respond`] and [`refuse`] read and answer an AdmissionReview around it, never
//! failing on hostile input.

pub mod cli;
mod config;
mod mutate;
mod review;

pub use config::{
    DEFAULT_EXPIRATION, FULL_URI_IPV6, IRSA_TOKEN_PATH, IRSA_VOLUME, MIN_EXPIRATION, MutationConfig,
};
pub use mutate::{Context, Mode, Mutation, ServiceAccountInfo, mutate};
pub use review::{MAX_REVIEW_BYTES, Request, Undecodable, decode, refuse, respond};
