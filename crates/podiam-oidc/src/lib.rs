//! Kubernetes service-account tokens and the OIDC issuer around them.
//!
//! * [`Issuer::mint`] writes projected service-account tokens exactly as kube-apiserver does
//!   (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti` and the `kubernetes.io` claim).
//! * [`Verifier::verify`] checks a token strictly: size, base64url, algorithm allow-list (never
//!   `none`, never HMAC), no `crit`, no keys taken from the token (`jku`, `x5u`, `jwk`, `x5c`
//!   are refused), `kid` lookup, signature, `iss`, `aud`, and `exp`/`nbf`/`iat` with at most
//!   60 s of leeway. Every rejection is a [`TokenError`] with a [`TokenErrorKind`].
//! * [`DiscoveryDocument`] and [`KeySet::to_jwks`] serve discovery as kube-apiserver does;
//!   [`JwksCache`] refetches an issuer's keys on an unknown `kid` at a bounded rate.
//!
//! Pure: no I/O. Time comes from the caller (an injected clock); randomness from an injected
//! [`podiam_crypto::Rng`].

mod cache;
mod claims;
mod discovery;
mod error;
mod issuer;
mod jws;
mod keyset;
mod verifier;

pub use cache::JwksCache;
pub use claims::{Claims, KubernetesClaims, ObjectRef};
pub use discovery::{DISCOVERY_PATH, DiscoveryDocument, JWKS_PATH, default_jwks_uri};
pub use error::{TokenError, TokenErrorKind};
pub use issuer::{Issuer, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME, TokenRequest};
pub use jws::MAX_TOKEN_BYTES;
pub use keyset::KeySet;
pub use verifier::{MAX_LEEWAY, Verified, Verifier, check_times, decode_unverified};
