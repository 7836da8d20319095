//! AES-256-GCM sealing under numbered keys.
//!
//! Sealed layout: `[format 0x01][key id, u32 big-endian][nonce, 12 bytes][ciphertext][tag, 16
//! bytes]`. The format byte and key id are authenticated with the caller's associated data,
//! so a sealed value opens only under the key that sealed it and only for its purpose.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::{CryptoError, Rng, Secret};

const FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 4;
const TAG_LEN: usize = 16;

/// Bytes that sealing adds to the plaintext.
pub const SEALED_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The number of a sealing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One AES-256-GCM key with its number.
pub struct AeadKey {
    id: KeyId,
    key: LessSafeKey,
    material: Secret<Vec<u8>>,
}

impl AeadKey {
    /// Length of the key material.
    pub const LEN: usize = 32;

    /// A new random key.
    pub fn generate(id: KeyId, rng: &dyn Rng) -> Result<Self, CryptoError> {
        let mut material = Secret::new(vec![0u8; Self::LEN]);
        rng.fill(material.expose_mut())?;
        Self::from_bytes(id, material.expose())
    }

    /// A key from its 32 bytes of material (as stored, encrypted, by the caller).
    pub fn from_bytes(id: KeyId, material: &[u8]) -> Result<Self, CryptoError> {
        if material.len() != Self::LEN {
            return Err(CryptoError::InvalidKey(format!(
                "an AES-256 key is {} bytes, not {}",
                Self::LEN,
                material.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, material).map_err(|_| CryptoError::Internal)?;
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
            material: Secret::new(material.to_vec()),
        })
    }

    /// The key's number.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The raw key material, to persist under a key-encryption key.
    pub fn material(&self) -> &Secret<Vec<u8>> {
        &self.material
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Sealing keys by number: one current key seals; every held key opens.
#[derive(Debug)]
pub struct Keyring {
    current: KeyId,
    keys: BTreeMap<KeyId, AeadKey>,
}

impl Keyring {
    /// A keyring whose only (and current) key is `key`.
    pub fn new(key: AeadKey) -> Self {
        let current = key.id;
        Self {
            current,
            keys: BTreeMap::from([(current, key)]),
        }
    }

    /// Adds a key that can open (and can be made current later). Replaces a key of the same id.
    pub fn insert(&mut self, key: AeadKey) {
        self.keys.insert(key.id, key);
    }

    /// Makes `id` the key that seals.
    pub fn set_current(&mut self, id: KeyId) -> Result<(), CryptoError> {
        if !self.keys.contains_key(&id) {
            return Err(CryptoError::UnknownKey(id.0));
        }
        self.current = id;
        Ok(())
    }

    /// Removes a key: what it sealed no longer opens. The current key cannot be retired.
    pub fn retire(&mut self, id: KeyId) -> Result<(), CryptoError> {
        if id == self.current {
            return Err(CryptoError::InvalidKey(
                "the current key cannot be retired".to_owned(),
            ));
        }
        self.keys
            .remove(&id)
            .map(|_| ())
            .ok_or(CryptoError::UnknownKey(id.0))
    }

    /// The key that seals.
    pub fn current(&self) -> KeyId {
        self.current
    }

    /// A MAC key derived from the current key for one purpose (`label`): HMAC-SHA256 of the
    /// label under the key's material, so the sealing key itself is used for nothing else.
    pub fn derive_mac_key(&self, label: &[u8]) -> crate::HmacKey {
        let material = self
            .keys
            .get(&self.current)
            .map(|key| key.material().expose().as_slice())
            .unwrap_or_default();
        crate::HmacKey::new(&crate::hmac_sha256(material, label))
    }

    /// Every key held, oldest number first.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.keys().copied()
    }

    /// Seals `plaintext` under the current key with a random nonce; `aad` is authenticated
    /// but not stored.
    pub fn seal(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        rng: &dyn Rng,
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or(CryptoError::UnknownKey(self.current.0))?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let mut out = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.current.0.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        let full_aad = [out.get(..HEADER_LEN).unwrap_or_default(), aad].concat();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&full_aad),
                &mut body,
            )
            .map_err(|_| CryptoError::Internal)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`Keyring::seal`] produced, with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < SEALED_OVERHEAD {
            return Err(CryptoError::Unsealable);
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let [format, id @ ..] = header else {
            return Err(CryptoError::Unsealable);
        };
        if *format != FORMAT {
            return Err(CryptoError::Unsealable);
        }
        let id = u32::from_be_bytes(id.try_into().map_err(|_| CryptoError::Unsealable)?);
        let key = self
            .keys
            .get(&KeyId(id))
            .ok_or(CryptoError::UnknownKey(id))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unsealable)?;
        let full_aad = [header, aad].concat();
        let mut body = body.to_vec();
        let plaintext = key
            .key
            .open_in_place(nonce, Aad::from(&full_aad), &mut body)
            .map_err(|_| CryptoError::Unsealable)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRng;
    use proptest::prelude::*;

    fn ring(rng: &SeededRng) -> Keyring {
        Keyring::new(AeadKey::generate(KeyId(1), rng).unwrap())
    }

    #[test]
    fn seal_open_round_trip() {
        let rng = SeededRng::new(b"t");
        let keyring = ring(&rng);
        let sealed = keyring.seal(b"session", b"purpose", &rng).unwrap();
        assert_eq!(sealed.len(), SEALED_OVERHEAD + 7);
        assert_eq!(keyring.open(&sealed, b"purpose").unwrap(), b"session");
        assert_eq!(
            keyring.open(&sealed, b"other"),
            Err(CryptoError::Unsealable)
        );
        let again = keyring.seal(b"session", b"purpose", &rng).unwrap();
        assert_ne!(sealed, again, "fresh nonce every time");
    }

    #[test]
    fn rotation_and_retirement() {
        let rng = SeededRng::new(b"t");
        let mut keyring = ring(&rng);
        let old = keyring.seal(b"old", b"", &rng).unwrap();
        keyring.insert(AeadKey::generate(KeyId(2), &rng).unwrap());
        keyring.set_current(KeyId(2)).unwrap();
        let new = keyring.seal(b"new", b"", &rng).unwrap();
        assert_eq!(keyring.open(&old, b"").unwrap(), b"old");
        assert_eq!(keyring.open(&new, b"").unwrap(), b"new");
        assert!(keyring.retire(KeyId(2)).is_err(), "the current key stays");
        keyring.retire(KeyId(1)).unwrap();
        assert_eq!(keyring.open(&old, b""), Err(CryptoError::UnknownKey(1)));
        assert_eq!(keyring.ids().collect::<Vec<_>>(), [KeyId(2)]);
    }

    #[test]
    fn another_keyring_cannot_open() {
        let sealed = ring(&SeededRng::new(b"a"))
            .seal(b"x", b"", &SeededRng::new(b"n"))
            .unwrap();
        let other = ring(&SeededRng::new(b"b"));
        assert_eq!(other.open(&sealed, b""), Err(CryptoError::Unsealable));
    }

    #[test]
    fn key_material_is_32_bytes() {
        assert!(AeadKey::from_bytes(KeyId(1), &[0; 16]).is_err());
        let key = AeadKey::from_bytes(KeyId(1), &[7; 32]).unwrap();
        assert_eq!(key.material().expose(), &vec![7u8; 32]);
        assert_eq!(format!("{key:?}"), "AeadKey { id: KeyId(1), .. }");
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_rejected(payload in prop::collection::vec(any::<u8>(), 0..64), bit in 0usize..1024) {
            let rng = SeededRng::new(b"p");
            let keyring = ring(&rng);
            let mut sealed = keyring.seal(&payload, b"aad", &rng).unwrap();
            let bit = bit % (sealed.len() * 8);
            sealed[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(keyring.open(&sealed, b"aad").is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let keyring = ring(&SeededRng::new(b"g"));
            prop_assert!(keyring.open(&bytes, b"").is_err());
        }
    }
}
