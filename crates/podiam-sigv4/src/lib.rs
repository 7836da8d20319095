//! AWS Signature Version 4.
//!
//! [`Verifier::verify`] checks a request signed in the `Authorization` header or presigned in
//! the query string: it rebuilds the canonical request from the `SignedHeaders` the request
//! names (never a fixed set), double-encodes the path for services other than S3, checks the
//! payload hash, the credential scope (date, region, service), the date against an injected
//! clock (±15 minutes), the presign expiry (at most 7 days), requires `host` to be signed, and
//! passes `x-amz-security-token` to a [`SecretLookup`] that finds the secret (long-term keys
//! from a store, session keys by unsealing the token). Every rejection is a [`SigV4Error`]
//! named after the AWS error code it becomes.
//!
//! [`sign`] produces the same signatures, for podiam's own clients.

mod canonical;
mod error;
mod parse;
mod signing;
mod verify;

pub use canonical::{CanonicalRequest, canonical_query, canonical_uri, encode_component};
pub use error::{LookupError, SigV4Error};
pub use parse::{AMZ_DATE_FORMAT, format_amz_date, parse_amz_date};
pub use signing::{SigningParams, sign, signing_key, string_to_sign};
pub use verify::{
    MAX_PRESIGN_EXPIRY, MAX_SKEW, Regions, SecretLookup, SignedRequest, Verified, Verifier,
    canonical_request_for,
};

/// The only algorithm: `AWS4-HMAC-SHA256`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The payload hash value that marks an unsigned payload.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
