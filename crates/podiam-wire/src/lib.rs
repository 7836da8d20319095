//! The AWS wire protocols. This crate is the one place where podiam's typed errors become
//! AWS error codes and HTTP statuses, per protocol family.

mod errors;

pub use errors::{Api, WireError, policy_error, sigv4_error, token_error};
