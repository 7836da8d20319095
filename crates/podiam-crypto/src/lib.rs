//! podiam's cryptographic boundary, and the only crate that touches aws-lc-rs.
//!
//! * [`SigningKey`] / [`VerifyingKey`]: RSA-2048/3072 and ECDSA P-256 keys for RS256 and ES256
//!   signatures, PKCS#8 PEM in and out, JWK export and import, and Kubernetes' key id
//!   (base64url of the SHA-256 of the DER `SubjectPublicKeyInfo`).
//! * [`Keyring`]: AES-256-GCM sealing under numbered keys, for tokens any replica can open.
//! * [`sha256`], [`hmac_sha256`], [`constant_time_eq`].
//! * [`Rng`]: randomness is injected; [`SystemRng`] in production, [`SeededRng`] in tests.
//! * [`Secret`]: key material with a redacting `Debug`, wiped on drop.
//!
//! Every error is a [`CryptoError`] that callers can match.

mod aead;
mod digest;
mod error;
mod jwk;
mod keys;
mod rng;
mod secret;
mod tls;

pub use aead::{AeadKey, KeyId, Keyring, SEALED_OVERHEAD};
pub use digest::{HmacKey, constant_time_eq, hmac_sha256, sha256, sha256_hex};
pub use error::CryptoError;
pub use jwk::{Jwk, JwkSet};
pub use keys::{JwsAlgorithm, KeyKind, SigningKey, VerifyingKey};
pub use rng::{Rng, SeededRng, SystemRng};
pub use secret::Secret;
pub use tls::tls_provider;
