//! Access key ids and secrets in AWS's formats.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use podiam_crypto::{CryptoError, Rng, Secret};

/// Length of an access key id.
pub const ACCESS_KEY_ID_LEN: usize = 20;

/// Length of a secret access key.
pub const SECRET_LEN: usize = 40;

const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `prefix` (`ASIA` for session keys, `AKIA` for long-term keys) followed by upper-case
/// letters and digits up to 20 characters, drawn uniformly.
pub fn new_access_key_id(prefix: &str, rng: &dyn Rng) -> Result<String, CryptoError> {
    random_id(prefix, ACCESS_KEY_ID_LEN, rng)
}

/// `prefix` followed by uniformly drawn upper-case letters and digits up to `len` characters
/// (AWS's id alphabet: `AROA…`, `AIDA…`, `ANPA…`, `AKIA…`, `ASIA…`).
pub fn random_id(prefix: &str, len: usize, rng: &dyn Rng) -> Result<String, CryptoError> {
    let mut id = String::with_capacity(len);
    id.push_str(prefix);
    let mut buf = [0u8; 32];
    while id.len() < len {
        rng.fill(&mut buf)?;
        // 252 = 7 × 36: rejecting larger bytes keeps every symbol equally likely.
        for &b in buf.iter().filter(|b| **b < 252) {
            if id.len() == len {
                break;
            }
            if let Some(&c) = ALPHABET.get(usize::from(b % 36)) {
                id.push(char::from(c));
            }
        }
    }
    Ok(id)
}

/// A 40-character secret from 240 random bits (base64 alphabet, like AWS's).
pub fn new_secret(rng: &dyn Rng) -> Result<Secret<String>, CryptoError> {
    let mut bytes = Secret::new(vec![0u8; 30]);
    rng.fill(bytes.expose_mut())?;
    Ok(Secret::new(STANDARD.encode(bytes.expose())))
}

/// A random (version 4) UUID, lower-case: request ids, session-name suffixes.
pub fn random_uuid(rng: &dyn Rng) -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex.get(..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podiam_crypto::SeededRng;

    #[test]
    fn formats() {
        let rng = SeededRng::new(b"k");
        for _ in 0..100 {
            let id = new_access_key_id("ASIA", &rng).unwrap();
            assert_eq!(id.len(), 20);
            assert!(id.starts_with("ASIA"));
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                "{id}"
            );
            let secret = new_secret(&rng).unwrap();
            assert_eq!(secret.expose().len(), 40);
        }
        assert_ne!(
            new_access_key_id("ASIA", &rng).unwrap(),
            new_access_key_id("ASIA", &rng).unwrap()
        );
    }

    #[test]
    fn uuids_are_version_4() {
        let rng = SeededRng::new(b"uuid");
        let id = random_uuid(&rng).unwrap_or_default();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes().get(14), Some(&b'4'));
        assert!(matches!(
            id.as_bytes().get(19),
            Some(b'8' | b'9' | b'a' | b'b')
        ));
    }
}
