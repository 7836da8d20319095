//! The mutating admission webhook: on every pod CREATE, the IRSA or Pod Identity environment
//! and projected token volume, exactly as EKS injects them.
//!
//! [`mutate`] is pure (pod, ServiceAccount, association, configuration → JSON Patch);
//! [`decode`], [`respond`] and [`refuse`] read and answer an AdmissionReview around it, never
//! failing on hostile input. With the `server` feature (the default), [`server`] serves it over
//! HTTPS from a ServiceAccount watch and the podiam server's associations, and [`cli`] is
//! `podiam webhook`.

#[cfg(feature = "server")]
pub mod cli;
mod config;
mod error;
mod mutate;
mod nesting;
mod review;
#[cfg(feature = "server")]
pub mod server;

pub use config::{
    DEFAULT_EXPIRATION, FULL_URI_IPV6, IRSA_TOKEN_PATH, IRSA_VOLUME, MIN_EXPIRATION, MutationConfig,
};
pub use error::WebhookError;
pub use mutate::{Context, Mode, Mutation, ServiceAccountInfo, mutate};
pub use nesting::{MAX_NESTING, check_nesting};
pub use review::{MAX_REVIEW_BYTES, Request, Undecodable, decode, is_valid_name, refuse, respond};
