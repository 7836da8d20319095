//! The AWS wire protocols (awsQuery for STS and IAM, rest-json for EKS and EKS Auth). This crate is the one place where podiam's typed errors become
//! AWS error codes and HTTP statuses, per protocol family.

mod errors;
mod query;
mod xml;

pub use errors::{
    Api, WireError, access_error, body_error, eks_error, gateway_error, iam_error, json10_error,
    policy_error, relayed_error, rest_json_error, sigv4_error, sts_error, throttled, token_error,
};
pub use query::{MAX_BODY_BYTES, MAX_UNSIGNED_BODY_BYTES, QueryRequest, Validation};
pub use xml::{
    IAM_NAMESPACE, STS_NAMESPACE, Xml, iso8601, policy_document, query_error, query_response,
};
