//! The authorizing gateway in front of AWS service APIs.
//!
//! A workload sends its request to the gateway instead of the service; the gateway works out
//! which IAM authorizations the request needs, evaluates them against the caller's policies, and
//! only then forwards it. This crate holds the pure part of that: [`dynamodb`] maps a DynamoDB
//! (and DynamoDB Streams) request to its `(action, resource)` pairs. Every refusal is a
//! [`GatewayError`] named after the DynamoDB error it is answered with.

pub mod dynamodb;
pub mod envelope;
mod error;
pub mod expression;
pub mod items;
pub mod shape;

pub use error::GatewayError;
