//! The carts service of the EKS workshop, in Rust: a small JSON API that keeps each customer's
//! cart in a DynamoDB table.
//!
//! It is an ordinary AWS SDK application on purpose: it gets its credentials, region and
//! endpoints from the SDK's default chain (environment, web identity token file, container
//! credentials, IMDS), so whatever serves those — real AWS or podiam — is exercised exactly as a
//! workload in a pod would exercise it.

pub mod api;
pub mod cli;
pub mod error;
pub mod model;
pub mod store;
pub mod table;
