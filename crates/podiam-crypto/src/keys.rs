//! Signing keys (RSA and ECDSA P-256), their public halves, and their JWK forms.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, ParsedPublicKey, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{CryptoError, Jwk, Secret, sha256};

/// A JWS signature algorithm podiam signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA with P-256 and SHA-256 (fixed-size `r || s`).
    ES256,
}

impl JwsAlgorithm {
    /// The `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwsAlgorithm {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            other => Err(CryptoError::InvalidKey(format!(
                "unsupported algorithm {other:?}: expected RS256 or ES256"
            ))),
        }
    }
}

/// What kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048-bit modulus (RS256).
    Rsa2048,
    /// RSA, 3072-bit modulus (RS256).
    Rsa3072,
    /// ECDSA on P-256 (ES256).
    EcP256,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key that signs JWTs. `Debug` never shows key material.
pub struct SigningKey {
    pair: Pair,
    pkcs8: Secret<Vec<u8>>,
    verifying: VerifyingKey,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rejected(e: impl fmt::Display) -> CryptoError {
    CryptoError::InvalidKey(e.to_string())
}

impl SigningKey {
    /// Generates a new key (with aws-lc's internal DRBG).
    pub fn generate(kind: KeyKind) -> Result<Self, CryptoError> {
        let pair = match kind {
            KeyKind::Rsa2048 => Pair::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| CryptoError::Internal)?,
            ),
            KeyKind::Rsa3072 => Pair::Rsa(
                RsaKeyPair::generate(KeySize::Rsa3072).map_err(|_| CryptoError::Internal)?,
            ),
            KeyKind::EcP256 => Pair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| CryptoError::Internal)?,
            ),
        };
        Self::from_pair(pair)
    }

    /// Reads a PKCS#8 DER private key (RSA or EC P-256).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let pair = match RsaKeyPair::from_pkcs8(der) {
            Ok(rsa) => Pair::Rsa(rsa),
            Err(rsa_error) => {
                match EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                    Ok(ec) => Pair::Ec(ec),
                    Err(_) => {
                        return Err(rejected(format!(
                            "not an RSA or P-256 PKCS#8 key ({rsa_error})"
                        )));
                    }
                }
            }
        };
        Self::from_pair(pair)
    }

    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`, as in a
    /// kubeadm `sa.key`) or SEC1 (`EC PRIVATE KEY`).
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let block = pem::parse(text).map_err(|e| CryptoError::InvalidPem(e.to_string()))?;
        let der = Secret::new(block.contents().to_vec());
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(der.expose()),
            "RSA PRIVATE KEY" => Self::from_pair(Pair::Rsa(
                RsaKeyPair::from_der(der.expose()).map_err(rejected)?,
            )),
            "EC PRIVATE KEY" => Self::from_pair(Pair::Ec(
                EcdsaKeyPair::from_private_key_der(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der.expose(),
                )
                .map_err(rejected)?,
            )),
            other => Err(CryptoError::InvalidPem(format!(
                "expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block, found {other:?}"
            ))),
        }
    }

    fn from_pair(pair: Pair) -> Result<Self, CryptoError> {
        let (pkcs8, verifying) = match &pair {
            Pair::Rsa(rsa) => {
                let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(rsa)
                    .map_err(|_| CryptoError::Internal)?;
                let public = rsa.public_key();
                let spki: PublicKeyX509Der<'_> =
                    public.as_der().map_err(|_| CryptoError::Internal)?;
                let mut jwk = Jwk::public("RSA", "", "RS256");
                jwk.n = Some(b64(public.modulus().big_endian_without_leading_zero()));
                jwk.e = Some(b64(public.exponent().big_endian_without_leading_zero()));
                (
                    pkcs8.as_ref().to_vec(),
                    VerifyingKey::new(JwsAlgorithm::RS256, spki.as_ref(), jwk, None)?,
                )
            }
            Pair::Ec(ec) => {
                let pkcs8 = ec.to_pkcs8v1().map_err(|_| CryptoError::Internal)?;
                let public = ec.public_key();
                let spki: PublicKeyX509Der<'_> =
                    public.as_der().map_err(|_| CryptoError::Internal)?;
                let octets = public.as_ref();
                let (Some(x), Some(y)) = (octets.get(1..33), octets.get(33..65)) else {
                    return Err(CryptoError::Internal);
                };
                let mut jwk = Jwk::public("EC", "", "ES256");
                jwk.crv = Some("P-256".to_owned());
                jwk.x = Some(b64(x));
                jwk.y = Some(b64(y));
                (
                    pkcs8.as_ref().to_vec(),
                    VerifyingKey::new(JwsAlgorithm::ES256, spki.as_ref(), jwk, None)?,
                )
            }
        };
        Ok(Self {
            pair,
            pkcs8: Secret::new(pkcs8),
            verifying,
        })
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Secret<String> {
        let block = pem::Pem::new("PRIVATE KEY", self.pkcs8.expose().clone());
        Secret::new(pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ))
    }

    /// The signature algorithm of this key.
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.verifying.alg
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The key id: base64url(SHA-256(DER SubjectPublicKeyInfo)), as Kubernetes computes it.
    pub fn kid(&self) -> &str {
        self.verifying.kid()
    }

    /// Signs `message` (RS256: PKCS#1 v1.5; ES256: fixed-size `r || s`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(rsa) => {
                let mut signature = vec![0u8; rsa.public_modulus_len()];
                rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| CryptoError::Internal)?;
                Ok(signature)
            }
            Pair::Ec(ec) => Ok(ec
                .sign(&rng, message)
                .map_err(|_| CryptoError::Internal)?
                .as_ref()
                .to_vec()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.verifying.alg)
            .field("kid", &self.verifying.kid)
            .finish_non_exhaustive()
    }
}

/// A public key that verifies JWT signatures, parsed once.
pub struct VerifyingKey {
    alg: JwsAlgorithm,
    parsed: ParsedPublicKey,
    spki: Vec<u8>,
    kid: String,
    jwk: Jwk,
}

fn decode_member(jwk: &Jwk, name: &str, value: &Option<String>) -> Result<Vec<u8>, CryptoError> {
    let text = value
        .as_deref()
        .ok_or_else(|| CryptoError::InvalidJwk(format!("{} key without \"{name}\"", jwk.kty)))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| CryptoError::InvalidJwk(format!("\"{name}\" is not base64url: {e}")))
}

/// The bit length of a big-endian unsigned integer.
fn modulus_bits(n: &[u8]) -> usize {
    let zeros = n.iter().take_while(|b| **b == 0).count();
    let significant = n.get(zeros..).unwrap_or_default();
    match significant.first() {
        None => 0,
        Some(first) => (significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

impl VerifyingKey {
    fn new(
        alg: JwsAlgorithm,
        spki: &[u8],
        mut jwk: Jwk,
        kid: Option<String>,
    ) -> Result<Self, CryptoError> {
        let parsed = match alg {
            JwsAlgorithm::RS256 => {
                ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki)
            }
            JwsAlgorithm::ES256 => ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, spki),
        }
        .map_err(rejected)?;
        let kid = kid.unwrap_or_else(|| b64(&sha256(spki)));
        jwk.kid = Some(kid.clone());
        jwk.alg = Some(alg.as_str().to_owned());
        jwk.key_use = Some("sig".to_owned());
        Ok(Self {
            alg,
            parsed,
            spki: spki.to_vec(),
            kid,
            jwk,
        })
    }

    /// Reads a public JWK (RSA of at least 2048 bits, or EC P-256). The JWK's own `kid` is kept
    /// (tokens refer to it); without one, the Kubernetes-style key id is computed.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, CryptoError> {
        if jwk.is_private() {
            return Err(CryptoError::InvalidJwk(
                "private JWKs are refused".to_owned(),
            ));
        }
        if let Some(key_use) = jwk.key_use.as_deref().filter(|u| *u != "sig") {
            return Err(CryptoError::InvalidJwk(format!(
                "key use {key_use:?} is not \"sig\""
            )));
        }
        let declared = jwk
            .alg
            .as_deref()
            .map(str::parse::<JwsAlgorithm>)
            .transpose()?;
        let (alg, spki) = match jwk.kty.as_str() {
            "RSA" => {
                let n = decode_member(jwk, "n", &jwk.n)?;
                let e = decode_member(jwk, "e", &jwk.e)?;
                let bits = modulus_bits(&n);
                if !(2048..=8192).contains(&bits) {
                    return Err(CryptoError::InvalidJwk(format!(
                        "an RSA modulus of {bits} bits; 2048 to 8192 are accepted"
                    )));
                }
                let spki = AsDer::<PublicKeyX509Der<'_>>::as_der(&PublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                })
                .map_err(|_| {
                    CryptoError::InvalidJwk("n and e do not form an RSA public key".to_owned())
                })?;
                (JwsAlgorithm::RS256, spki.as_ref().to_vec())
            }
            "EC" => {
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err(CryptoError::InvalidJwk(format!(
                        "unsupported curve {:?}; only P-256",
                        jwk.crv
                    )));
                }
                let x = decode_member(jwk, "x", &jwk.x)?;
                let y = decode_member(jwk, "y", &jwk.y)?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(CryptoError::InvalidJwk(
                        "P-256 coordinates are 32 bytes".to_owned(),
                    ));
                }
                let mut octets = Vec::with_capacity(65);
                octets.push(4);
                octets.extend_from_slice(&x);
                octets.extend_from_slice(&y);
                let parsed = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &octets)
                    .map_err(|e| CryptoError::InvalidJwk(format!("not a point on P-256: {e}")))?;
                let spki: PublicKeyX509Der<'_> =
                    parsed.as_der().map_err(|_| CryptoError::Internal)?;
                (JwsAlgorithm::ES256, spki.as_ref().to_vec())
            }
            other => {
                return Err(CryptoError::InvalidJwk(format!(
                    "unsupported key type {other:?}"
                )));
            }
        };
        if let Some(declared) = declared.filter(|d| *d != alg) {
            return Err(CryptoError::InvalidJwk(format!(
                "alg {declared} does not fit a {} key",
                jwk.kty
            )));
        }
        Self::new(alg, &spki, jwk.clone(), jwk.kid.clone())
    }

    /// The algorithm the key verifies.
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public JWK (`use`, `kty`, `kid`, `alg` and the key members).
    pub fn to_jwk(&self) -> Jwk {
        self.jwk.clone()
    }

    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_signs_and_verifies() {
        for kind in [KeyKind::Rsa2048, KeyKind::Rsa3072, KeyKind::EcP256] {
            let key = SigningKey::generate(kind).unwrap();
            let signature = key.sign(b"payload").unwrap();
            key.verifying_key().verify(b"payload", &signature).unwrap();
            assert_eq!(
                key.verifying_key().verify(b"payload!", &signature),
                Err(CryptoError::BadSignature)
            );
            let mut flipped = signature.clone();
            flipped[0] ^= 1;
            assert!(key.verifying_key().verify(b"payload", &flipped).is_err());
        }
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            let key = SigningKey::generate(kind).unwrap();
            let pem = key.to_pkcs8_pem();
            assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let again = SigningKey::from_pem(pem.expose()).unwrap();
            assert_eq!(again.kid(), key.kid());
            assert_eq!(again.algorithm(), key.algorithm());
        }
    }

    #[test]
    fn kid_is_the_hash_of_the_spki() {
        let key = SigningKey::generate(KeyKind::EcP256).unwrap();
        let spki = key.verifying_key().spki_der();
        assert_eq!(spki.len(), 91, "P-256 SPKI");
        assert_eq!(key.kid(), b64(&sha256(spki)));
        assert_eq!(key.kid().len(), 43);
    }

    #[test]
    fn jwk_round_trip() {
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            let key = SigningKey::generate(kind).unwrap();
            let jwk = key.verifying_key().to_jwk();
            let text = serde_json::to_string(&jwk).unwrap();
            if kind == KeyKind::Rsa2048 {
                assert!(
                    text.starts_with(r#"{"use":"sig","kty":"RSA","kid":""#),
                    "{text}"
                );
                assert!(text.ends_with(r#""e":"AQAB"}"#), "{text}");
            }
            let back = VerifyingKey::from_jwk(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(back.kid(), key.kid());
            assert_eq!(back.spki_der(), key.verifying_key().spki_der());
            let signature = key.sign(b"m").unwrap();
            back.verify(b"m", &signature).unwrap();
        }
    }

    #[test]
    fn bad_jwks_are_refused() {
        let key = SigningKey::generate(KeyKind::EcP256).unwrap();
        let good = key.verifying_key().to_jwk();
        let mut wrong_alg = good.clone();
        wrong_alg.alg = Some("RS256".into());
        assert!(VerifyingKey::from_jwk(&wrong_alg).is_err());
        let mut hmac = good.clone();
        hmac.alg = Some("HS256".into());
        assert!(VerifyingKey::from_jwk(&hmac).is_err());
        let mut off_curve = good.clone();
        off_curve.x = Some(b64(&[7u8; 32]));
        assert!(VerifyingKey::from_jwk(&off_curve).is_err());
        let mut other_curve = good.clone();
        other_curve.crv = Some("P-384".into());
        assert!(VerifyingKey::from_jwk(&other_curve).is_err());
        let mut enc = good.clone();
        enc.key_use = Some("enc".into());
        assert!(VerifyingKey::from_jwk(&enc).is_err());
        let oct: Jwk = serde_json::from_str(r#"{"kty":"oct","k":"c2VjcmV0"}"#).unwrap();
        assert!(VerifyingKey::from_jwk(&oct).is_err());
        let private: Jwk =
            serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}"#).unwrap();
        assert!(private.is_private());
        assert!(VerifyingKey::from_jwk(&private).is_err());
        // RSA below 2048 bits is refused.
        let small: Jwk = serde_json::from_str(&format!(
            r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#,
            b64(&[0xC3; 128])
        ))
        .unwrap();
        assert!(VerifyingKey::from_jwk(&small).is_err());
    }

    #[test]
    fn pkcs1_and_sec1_keys_are_read() {
        let rsa = SigningKey::from_pem(include_str!("../testdata/rsa2048-pkcs1.pem")).unwrap();
        assert_eq!(rsa.algorithm(), JwsAlgorithm::RS256);
        let ec = SigningKey::from_pem(include_str!("../testdata/p256-sec1.pem")).unwrap();
        assert_eq!(ec.algorithm(), JwsAlgorithm::ES256);
        // Key ids computed independently: openssl pkey -pubout -outform DER | sha256 | base64url.
        assert_eq!(rsa.kid(), "Flq6LR4j1HXnm7zVGrcD4kF8xg6bcPB2H1NBbTrQ-30");
        assert_eq!(ec.kid(), "rmishyqgSf8P_D1qwNeTOUgDCQZ0cIyReuwZnePBysk");
        for key in [rsa, ec] {
            // Re-exported as PKCS#8, the key keeps its identity.
            let again = SigningKey::from_pem(key.to_pkcs8_pem().expose()).unwrap();
            assert_eq!(again.kid(), key.kid());
            let signature = key.sign(b"m").unwrap();
            again.verifying_key().verify(b"m", &signature).unwrap();
        }
    }

    #[test]
    fn small_rsa_private_keys_are_refused() {
        // A 1024-bit PKCS#8 RSA key (generated for this test with openssl; never used elsewhere).
        let pem = include_str!("../testdata/rsa1024.pem");
        assert!(matches!(
            SigningKey::from_pem(pem),
            Err(CryptoError::InvalidKey(_))
        ));
        assert_eq!(modulus_bits(&[0, 0, 0x80]), 8);
        assert_eq!(modulus_bits(&[0x01, 0]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }

    #[test]
    fn debug_hides_key_material() {
        let key = SigningKey::generate(KeyKind::EcP256).unwrap();
        let shown = format!("{key:?}");
        assert!(
            shown.starts_with("SigningKey { alg: ES256, kid: "),
            "{shown}"
        );
        assert!(!shown.contains("PRIVATE"));
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(matches!(
            SigningKey::from_pem("nope"),
            Err(CryptoError::InvalidPem(_))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            SigningKey::from_pem(cert),
            Err(CryptoError::InvalidPem(_))
        ));
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(junk),
            Err(CryptoError::InvalidKey(_))
        ));
    }
}
