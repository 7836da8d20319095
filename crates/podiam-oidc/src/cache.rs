//! When to fetch an external issuer's keys again.

use std::time::Duration;

use podiam_crypto::JwkSet;
use time::OffsetDateTime;

use crate::KeySet;

/// The keys of an issuer podiam does not host, with the bookkeeping that bounds refetching:
/// an unknown `kid` triggers a refetch at most once per `min_interval`, and keys older than
/// `max_age` are refetched on the next use. The fetching itself is the caller's.
#[derive(Debug, Clone)]
pub struct JwksCache {
    keys: KeySet,
    fetched_at: Option<i64>,
    attempted_at: Option<i64>,
    min_interval: i64,
    max_age: i64,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl JwksCache {
    /// An empty cache.
    pub fn new(min_interval: Duration, max_age: Duration) -> Self {
        Self {
            keys: KeySet::new(),
            fetched_at: None,
            attempted_at: None,
            min_interval: secs(min_interval),
            max_age: secs(max_age),
        }
    }

    /// The keys held now.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Should the caller fetch now? `unknown_kid`: a token named a key the cache lacks.
    pub fn should_fetch(&self, now: OffsetDateTime, unknown_kid: bool) -> bool {
        let now = now.unix_timestamp();
        let rested = self
            .attempted_at
            .is_none_or(|at| now.saturating_sub(at) >= self.min_interval);
        let stale = self
            .fetched_at
            .is_none_or(|at| now.saturating_sub(at) >= self.max_age);
        rested && (unknown_kid || stale)
    }

    /// Records that a fetch was attempted (successful or not), to bound the rate.
    pub fn attempted(&mut self, now: OffsetDateTime) {
        self.attempted_at = Some(now.unix_timestamp());
    }

    /// Replaces the keys with a fetched JWKS; returns why keys were skipped.
    pub fn update(&mut self, jwks: &JwkSet, now: OffsetDateTime) -> Vec<String> {
        let (keys, skipped) = KeySet::from_jwks(jwks);
        self.keys = keys;
        self.fetched_at = Some(now.unix_timestamp());
        self.attempted_at = Some(now.unix_timestamp());
        skipped
    }
}
