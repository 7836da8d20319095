//! The AWS wire protocols (awsQuery for STS and IAM, rest-json for EKS and EKS Auth). This crate
//! is the one place where the typed errors of podiam's own APIs become AWS error codes and HTTP
//! statuses, per protocol family. The DynamoDB gateway answers in DynamoDB's protocol, and maps
//! its own errors in `podiam_gateway::proxy` (a dependency of this crate on the gateway would
//! make a cycle, since the proxy uses this crate's error type).

mod errors;
mod query;
mod xml;

pub use errors::{
    Api, WireError, access_error, body_error, eks_error, iam_error, json10_error, policy_error,
    relayed_error, rest_json_error, sigv4_error, sts_error, throttled, token_error,
    upstream_read_error, upstream_sts_error,
};
pub use query::{MAX_BODY_BYTES, MAX_UNSIGNED_BODY_BYTES, QueryRequest, Validation};
pub use xml::{
    IAM_NAMESPACE, STS_NAMESPACE, Xml, iso8601, policy_document, query_error, query_response,
};
