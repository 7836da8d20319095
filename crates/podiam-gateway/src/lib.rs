//! The authorizing gateway in front of AWS service APIs.
//!
//! A workload sends its request to the gateway instead of the service; the gateway works out
//! which IAM authorizations the request needs, evaluates them against the caller's policies, and
//! only then forwards it. This crate holds the whole gateway. The mapping is pure (no I/O, no
//! async, fuzzed): [`envelope`] and [`shape`] check the request's form, [`dynamodb`] maps a
//! DynamoDB (and DynamoDB Streams) request to its `(action, resource)` pairs and [`items`] adds
//! the condition keys of the items it touches, read with [`expression`]. Every refusal is a
//! [`GatewayError`] named after the DynamoDB error it is answered with. The reverse proxy that
//! does the I/O (`podiam gateway`) is `proxy`, behind the default `proxy` feature; the fuzz
//! targets build without it.

pub mod dynamodb;
pub mod envelope;
mod error;
pub mod expression;
pub mod items;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod shape;

pub use error::GatewayError;
