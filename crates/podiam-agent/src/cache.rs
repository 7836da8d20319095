//! Pod credentials by pod: one upstream call however many requests arrive together, refreshes
//! ahead of expiry only for pods that asked recently, and cached credentials served through a
//! server outage until 15 s before they expire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use podiam_crypto::Secret;
use prometheus_client::metrics::counter::Counter;
use time::OffsetDateTime;

use crate::tokens::PodKey;
use crate::{PodCredentials, Upstream, UpstreamError};

/// Credentials with less time left are never served.
pub const MIN_REMAINING: Duration = Duration::from_secs(15);

/// How the cache behaves.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Pods kept at most (least recently asked-for evicted first); 0 disables caching.
    pub max_entries: usize,
    /// Credentials are renewed after this long even if they last longer (the reference's
    /// `--max-credential-retention-before-renewal`, 3 h).
    pub retention: Duration,
    /// ... and this long before they expire.
    pub renew_before: Duration,
    /// Only pods that asked within this window are renewed in the background.
    pub recent: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 2000,
            retention: Duration::from_secs(3 * 3600),
            renew_before: Duration::from_secs(15 * 60),
            recent: Duration::from_secs(3600),
        }
    }
}

/// Cached credentials and when they were fetched.
#[derive(Debug)]
pub struct Cached {
    /// The credentials.
    pub credentials: PodCredentials,
    /// When they were fetched.
    pub fetched: OffsetDateTime,
}

#[derive(Debug)]
struct Slot {
    current: RwLock<Option<Arc<Cached>>>,
    fill: tokio::sync::Mutex<()>,
    last_used: AtomicI64,
    /// The newest token seen for the pod and its `exp`: what a background renewal sends.
    token: Mutex<Option<(Secret<String>, i64)>>,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default, Clone)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: Counter,
    /// Upstream calls made.
    pub upstream_calls: Counter,
    /// Answers served from the cache because the server was unreachable.
    pub served_stale: Counter,
    /// Background renewals.
    pub renewals: Counter,
}

/// Why no credentials could be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The server refused or could not be reached, and nothing usable is cached.
    Upstream(UpstreamError),
    /// An upstream call was needed and the rate limit said no.
    Throttled,
}

/// The cache.
#[derive(Debug)]
pub struct PodCache {
    slots: Mutex<HashMap<PodKey, Arc<Slot>>>,
    config: CacheConfig,
    stats: CacheStats,
    /// Since when the server has been unreachable (and why), if it is.
    outage: Mutex<Option<(OffsetDateTime, String)>>,
}

fn secs(d: Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl PodCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            config,
            stats: CacheStats::default(),
            outage: Mutex::new(None),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// How many pods are cached.
    pub fn len(&self) -> usize {
        self.lock_slots().len()
    }

    /// True when no pod is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Since when, and why, the server has been unreachable.
    pub fn outage(&self) -> Option<(OffsetDateTime, String)> {
        self.outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_outage(&self, now: OffsetDateTime, error: Option<&UpstreamError>) {
        let mut outage = self
            .outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match error {
            None => *outage = None,
            Some(e) => {
                if outage.is_none() {
                    tracing::warn!(
                        code = e.code,
                        message = e.message,
                        "the podiam server is unreachable; serving cached credentials"
                    );
                }
                let since = outage.as_ref().map_or(now, |(since, _)| *since);
                *outage = Some((since, format!("{}: {}", e.code, e.message)));
            }
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<PodKey, Arc<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, key: &PodKey, now: OffsetDateTime) -> Arc<Slot> {
        let mut slots = self.lock_slots();
        if let Some(slot) = slots.get(key) {
            return Arc::clone(slot);
        }
        if slots.len() >= self.config.max_entries.max(1) {
            // Evict the pod asked for least recently.
            if let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            {
                slots.remove(&oldest);
            }
        }
        let slot = Arc::new(Slot {
            current: RwLock::new(None),
            fill: tokio::sync::Mutex::new(()),
            last_used: AtomicI64::new(now.unix_timestamp()),
            token: Mutex::new(None),
        });
        slots.insert(key.clone(), Arc::clone(&slot));
        slot
    }

    fn due(&self, cached: &Cached, now: OffsetDateTime) -> bool {
        now >= cached.fetched + secs(self.config.retention)
            || cached.credentials.expiration - now <= secs(self.config.renew_before)
    }

    fn usable(cached: &Cached, now: OffsetDateTime) -> bool {
        cached.credentials.expiration - now > secs(MIN_REMAINING)
    }

    fn read(slot: &Slot) -> Option<Arc<Cached>> {
        slot.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn write(slot: &Slot, value: Option<Arc<Cached>>) {
        *slot
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }

    /// Credentials for the pod `key`, whose verified `token` (expiring at `token_exp`) asks.
    pub async fn get(
        &self,
        key: &PodKey,
        token: &str,
        token_exp: i64,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Arc<Cached>, Miss> {
        self.get_with_limit(key, token, token_exp, upstream, now, || true)
            .await
    }

    /// [`Self::get`], asking `allow` before an upstream call (a rate limit): refused, it serves
    /// still-usable cached credentials or [`Miss::Throttled`].
    pub async fn get_with_limit(
        &self,
        key: &PodKey,
        token: &str,
        token_exp: i64,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
        allow: impl FnOnce() -> bool,
    ) -> Result<Arc<Cached>, Miss> {
        let slot = self.slot(key, now);
        slot.last_used
            .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
        {
            let mut stored = slot
                .token
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stored.as_ref().is_none_or(|(_, exp)| *exp < token_exp) {
                *stored = Some((Secret::new(token.to_owned()), token_exp));
            }
        }
        if self.config.max_entries > 0
            && let Some(cached) = Self::read(&slot)
            && Self::usable(&cached, now)
            && !self.due(&cached, now)
        {
            self.stats.hits.inc();
            return Ok(cached);
        }
        // One upstream call per pod: the others wait here and take its result.
        let _fill = slot.fill.lock().await;
        if self.config.max_entries > 0
            && let Some(cached) = Self::read(&slot)
            && Self::usable(&cached, now)
            && !self.due(&cached, now)
        {
            self.stats.hits.inc();
            return Ok(cached);
        }
        if !allow() {
            return match Self::read(&slot).filter(|c| Self::usable(c, now)) {
                Some(cached) => Ok(cached),
                None => Err(Miss::Throttled),
            };
        }
        self.fill(&slot, token, upstream, now).await
    }

    async fn fill(
        &self,
        slot: &Slot,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Arc<Cached>, Miss> {
        self.stats.upstream_calls.inc();
        match upstream.assume_role_for_pod_identity(token).await {
            Ok(credentials) => {
                self.set_outage(now, None);
                let cached = Arc::new(Cached {
                    credentials,
                    fetched: now,
                });
                Self::write(slot, Some(Arc::clone(&cached)));
                Ok(cached)
            }
            Err(e) => {
                let previous = Self::read(slot);
                if e.is_outage() {
                    self.set_outage(now, Some(&e));
                    if let Some(cached) = previous.filter(|c| Self::usable(c, now)) {
                        self.stats.served_stale.inc();
                        return Ok(cached);
                    }
                } else {
                    self.set_outage(now, None);
                    if e.is_irrecoverable() {
                        Self::write(slot, None);
                    } else if let Some(cached) = previous.filter(|c| Self::usable(c, now)) {
                        return Ok(cached);
                    }
                }
                Err(Miss::Upstream(e))
            }
        }
    }

    /// Renews, in the background, credentials that are due for pods that asked recently, at
    /// most `budget` of them; forgets pods whose credentials and token are both over.
    pub async fn renew_due(&self, upstream: &dyn Upstream, now: OffsetDateTime, budget: usize) {
        let recent =
            now.unix_timestamp() - i64::try_from(self.config.recent.as_secs()).unwrap_or(i64::MAX);
        let candidates: Vec<Arc<Slot>> = {
            let mut slots = self.lock_slots();
            slots.retain(|_, slot| {
                let creds_alive = Self::read(slot).is_some_and(|c| Self::usable(&c, now));
                let token_alive = slot
                    .token
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .is_some_and(|(_, exp)| *exp > now.unix_timestamp());
                creds_alive || token_alive
            });
            slots
                .values()
                .filter(|slot| slot.last_used.load(Ordering::Relaxed) >= recent)
                .filter(|slot| Self::read(slot).is_some_and(|c| self.due(&c, now)))
                .take(budget)
                .cloned()
                .collect()
        };
        for slot in candidates {
            let token = slot
                .token
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .filter(|(_, exp)| *exp > now.unix_timestamp())
                .map(|(t, _)| t.clone());
            let Some(token) = token else {
                continue;
            };
            let Ok(_fill) = slot.fill.try_lock() else {
                continue;
            };
            self.stats.renewals.inc();
            let _ = self.fill(&slot, token.expose(), upstream, now).await;
        }
    }
}
