//! Injected randomness.

use std::fmt;
use std::sync::Mutex;

use aws_lc_rs::rand::SecureRandom;

use crate::CryptoError;
use crate::digest::hmac_sha256;

/// A source of random bytes. Production code uses [`SystemRng`]; tests use [`SeededRng`] to be
/// repeatable. (Key generation and ECDSA nonces stay inside aws-lc's own DRBG.)
pub trait Rng: Send + Sync + fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// The operating system's CSPRNG, through aws-lc.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        aws_lc_rs::rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| CryptoError::Random)
    }
}

/// A deterministic generator (HMAC-SHA256 in counter mode over a seed), for tests and
/// reproducible simulations. Never use it for real secrets.
pub struct SeededRng {
    seed: [u8; 32],
    counter: Mutex<u64>,
}

impl SeededRng {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: &[u8]) -> Self {
        Self {
            seed: crate::digest::sha256(seed),
            counter: Mutex::new(0),
        }
    }
}

impl fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededRng")
    }
}

impl Rng for SeededRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut counter = self
            .counter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for chunk in dest.chunks_mut(32) {
            let block = hmac_sha256(&self.seed, &counter.to_be_bytes());
            *counter = counter.wrapping_add(1);
            for (out, byte) in chunk.iter_mut().zip(block) {
                *out = byte;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_repeatable_and_seed_dependent() {
        let (mut a, mut b, mut c) = ([0u8; 70], [0u8; 70], [0u8; 70]);
        SeededRng::new(b"x").fill(&mut a).unwrap();
        SeededRng::new(b"x").fill(&mut b).unwrap();
        SeededRng::new(b"y").fill(&mut c).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let rng = SeededRng::new(b"x");
        let (mut first, mut second) = ([0u8; 16], [0u8; 16]);
        rng.fill(&mut first).unwrap();
        rng.fill(&mut second).unwrap();
        assert_ne!(first, second, "successive draws differ");
    }

    #[test]
    fn system_rng_fills() {
        let mut a = [0u8; 32];
        SystemRng.fill(&mut a).unwrap();
        assert_ne!(a, [0u8; 32]);
    }
}
