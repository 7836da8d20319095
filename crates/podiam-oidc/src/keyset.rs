//! The public keys of one issuer, by key id.

use std::collections::HashMap;
use std::sync::Arc;

use podiam_crypto::{JwkSet, JwsAlgorithm, VerifyingKey};

/// An issuer's verification keys.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    by_kid: HashMap<String, Arc<VerifyingKey>>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the usable keys of a JWKS; returns the set and why other keys were skipped
    /// (encryption keys, other key types and curves, keys too small).
    pub fn from_jwks(jwks: &JwkSet) -> (Self, Vec<String>) {
        let mut set = Self::new();
        let mut skipped = Vec::new();
        for jwk in &jwks.keys {
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => set.insert(key),
                Err(e) => skipped.push(format!("key {:?}: {e}", jwk.kid.as_deref().unwrap_or("?"))),
            }
        }
        (set, skipped)
    }

    /// Adds a key (replacing one with the same key id).
    pub fn insert(&mut self, key: VerifyingKey) {
        let key = Arc::new(key);
        self.keys.retain(|k| k.kid() != key.kid());
        self.by_kid.insert(key.kid().to_owned(), Arc::clone(&key));
        self.keys.push(key);
    }

    /// The key for a token: by `kid` when the token names one; otherwise the only key of the
    /// token's algorithm, if there is exactly one.
    pub fn find(&self, kid: Option<&str>, alg: JwsAlgorithm) -> Option<Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .filter(|k| k.algorithm() == alg)
                .cloned(),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.algorithm() == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(Arc::clone(only)),
                    _ => None,
                }
            }
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The algorithms of the keys, sorted and without repeats.
    pub fn algorithms(&self) -> Vec<JwsAlgorithm> {
        let mut algs: Vec<JwsAlgorithm> = self.keys.iter().map(|k| k.algorithm()).collect();
        algs.sort();
        algs.dedup();
        algs
    }

    /// The keys as a JWKS document, in insertion order.
    pub fn to_jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.to_jwk()).collect(),
        }
    }
}
