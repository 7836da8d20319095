//! Unique ids in AWS's formats.

use podiam_crypto::{CryptoError, Rng};

/// A unique id: `prefix` (`AIDA` users, `AROA` roles, `ANPA` policies) and 17 upper-case
/// letters and digits.
pub fn new_unique_id(prefix: &str, rng: &dyn Rng) -> Result<String, CryptoError> {
    podiam_session::random_id(prefix, prefix.len() + 17, rng)
}

/// A long-term access key id: `AKIA` and 16 upper-case letters and digits.
pub fn new_access_key_id(rng: &dyn Rng) -> Result<String, CryptoError> {
    podiam_session::new_access_key_id("AKIA", rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let rng = podiam_crypto::SeededRng::new(b"ids");
        let id = new_unique_id("AROA", &rng).unwrap();
        assert_eq!(id.len(), 21);
        assert!(
            id.starts_with("AROA")
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        let key = new_access_key_id(&rng).unwrap();
        assert_eq!(key.len(), 20);
        assert!(key.starts_with("AKIA"));
    }
}
