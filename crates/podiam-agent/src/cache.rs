//! Pod credentials by pod: one upstream call however many requests arrive together, renewals
//! only for pods that still ask (a pod asking after the retention window is served at once and
//! renewed in the background with the token it just sent; a pod that is gone is never renewed
//! and no pod's token is kept), and cached credentials served through a server outage until
//! 15 s before they expire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
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
    /// Credentials are renewed (in the background, when the pod next asks) after this long,
    /// even if they last longer (the reference's `--max-credential-retention-before-renewal`).
    pub retention: Duration,
    /// Credentials this close to expiry are renewed before they are served.
    pub renew_before: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 2000,
            retention: Duration::from_secs(3 * 3600),
            renew_before: Duration::from_secs(15 * 60),
        }
    }
}

/// Cached credentials, when they were fetched, and the container-credentials JSON the SDKs
/// get (rendered once, served as is: a cache hit allocates nothing for the body).
pub struct Cached {
    /// When the credentials expire.
    pub expiration: OffsetDateTime,
    /// When they were fetched.
    pub fetched: OffsetDateTime,
    /// `{"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}`: secrets,
    /// wiped when the entry goes.
    body: Arc<Secret<Vec<u8>>>,
}

/// A response body sharing the cached (secret) bytes.
struct SharedBody(Arc<Secret<Vec<u8>>>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

impl Cached {
    /// The JSON body, without copying it.
    pub fn body(&self) -> Bytes {
        Bytes::from_owner(SharedBody(Arc::clone(&self.body)))
    }
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("expiration", &self.expiration)
            .field("fetched", &self.fetched)
            .finish_non_exhaustive()
    }
}

/// The JSON of the container credentials provider.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    account_id: &'a str,
    expiration: String,
}

fn render(c: &PodCredentials) -> Arc<Secret<Vec<u8>>> {
    let body = Body {
        access_key_id: &c.access_key_id,
        secret_access_key: c.secret_access_key.expose(),
        token: c.token.expose(),
        account_id: &c.account_id,
        expiration: c
            .expiration
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let mut json = serde_json::to_vec(&body).unwrap_or_default();
    // Kept for hours, 2,000 of them: no spare capacity.
    json.shrink_to_fit();
    Arc::new(Secret::new(json))
}

#[derive(Debug)]
struct Slot {
    current: RwLock<Option<Arc<Cached>>>,
    /// Held by the one upstream call for the pod (a fill or a renewal) while it runs.
    fill: Arc<tokio::sync::Mutex<()>>,
    last_used: AtomicI64,
}

/// A pod's background renewal, claimed by the request that found its credentials past the
/// retention window: no other upstream call for the pod starts while it is held, so a storm of
/// requests for a due pod claims one renewal, not one per request. Dropped unused (the rate
/// limit said no), the pod is due again at its next request.
#[derive(Debug)]
pub struct Renewal {
    slot: Arc<Slot>,
    _fill: tokio::sync::OwnedMutexGuard<()>,
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

/// Credentials to serve, and whether they should be renewed in the background now.
#[derive(Debug)]
pub struct Hit {
    /// The credentials.
    pub cached: Arc<Cached>,
    /// Past the retention window and no upstream call for the pod under way: this request's
    /// claim to renew them with the token that just asked.
    pub renew: Option<Renewal>,
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
    slots: Mutex<HashMap<Arc<PodKey>, Arc<Slot>>>,
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

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<PodKey>, Arc<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, key: &Arc<PodKey>, now: OffsetDateTime) -> Arc<Slot> {
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
            fill: Arc::new(tokio::sync::Mutex::new(())),
            last_used: AtomicI64::new(now.unix_timestamp()),
        });
        slots.insert(Arc::clone(key), Arc::clone(&slot));
        slot
    }

    /// Too close to expiry to serve without renewing first: within `renew_before`, or within
    /// half their lifetime when that is shorter (AWS's one-hour chained sessions, or fifteen
    /// minutes), so short credentials are still served from the cache.
    fn expiring(&self, cached: &Cached, now: OffsetDateTime) -> bool {
        let lifetime = cached.expiration - cached.fetched;
        let margin = secs(self.config.renew_before).min(lifetime / 2);
        cached.expiration - now <= margin
    }

    /// Past the retention window: served, and renewed in the background.
    fn retained_too_long(&self, cached: &Cached, now: OffsetDateTime) -> bool {
        now >= cached.fetched + secs(self.config.retention)
    }

    fn usable(cached: &Cached, now: OffsetDateTime) -> bool {
        cached.expiration - now > secs(MIN_REMAINING)
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

    /// Credentials for the pod `key`, whose verified `token` asks.
    pub async fn get(
        &self,
        key: &Arc<PodKey>,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Hit, Miss> {
        self.get_with_limit(key, token, upstream, now, || true)
            .await
    }

    /// [`Self::get`], asking `allow` before an upstream call (a rate limit): refused, it serves
    /// still-usable cached credentials or [`Miss::Throttled`].
    pub async fn get_with_limit(
        &self,
        key: &Arc<PodKey>,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
        allow: impl FnOnce() -> bool,
    ) -> Result<Hit, Miss> {
        let slot = self.slot(key, now);
        slot.last_used
            .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
        if let Some(hit) = self.hit(&slot, now) {
            return Ok(hit);
        }
        // One upstream call per pod: the others wait here and take its result.
        let _fill = slot.fill.lock().await;
        if let Some(hit) = self.hit(&slot, now) {
            return Ok(hit);
        }
        if !allow() {
            return match Self::read(&slot).filter(|c| Self::usable(c, now)) {
                Some(cached) => Ok(Hit {
                    cached,
                    renew: None,
                }),
                None => Err(Miss::Throttled),
            };
        }
        self.fill(&slot, token, upstream, now)
            .await
            .map(|cached| Hit {
                cached,
                renew: None,
            })
    }

    /// Cached credentials that may be served now.
    fn hit(&self, slot: &Arc<Slot>, now: OffsetDateTime) -> Option<Hit> {
        if self.config.max_entries == 0 {
            return None;
        }
        let cached = Self::read(slot)?;
        if !Self::usable(&cached, now) || self.expiring(&cached, now) {
            return None;
        }
        self.stats.hits.inc();
        let renew = if self.retained_too_long(&cached, now) {
            Self::claim(slot)
        } else {
            None
        };
        Some(Hit { cached, renew })
    }

    /// The pod's renewal, unless an upstream call for it is under way.
    fn claim(slot: &Arc<Slot>) -> Option<Renewal> {
        let fill = Arc::clone(&slot.fill).try_lock_owned().ok()?;
        Some(Renewal {
            slot: Arc::clone(slot),
            _fill: fill,
        })
    }

    /// Renews the pod's credentials with `token` unless another call is already doing it or
    /// they were renewed meanwhile.
    pub async fn renew(
        &self,
        key: &Arc<PodKey>,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) {
        let Some(slot) = self.lock_slots().get(key).cloned() else {
            return;
        };
        let Some(renewal) = Self::claim(&slot) else {
            return;
        };
        if Self::read(&slot).is_some_and(|c| !self.retained_too_long(&c, now)) {
            return;
        }
        self.renew_claimed(renewal, token, upstream, now).await;
    }

    /// Renews the pod of a claimed `renewal` with `token` (what [`Hit::renew`] is for).
    pub async fn renew_claimed(
        &self,
        renewal: Renewal,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) {
        self.stats.renewals.inc();
        let _ = self.fill(&renewal.slot, token, upstream, now).await;
    }

    /// Credentials for the pod `key` straight from EKS Auth, for a `token` the agent could not
    /// verify (EKS Auth does). Nothing cached is served for such a token, and a failure leaves
    /// the pod's cached credentials as they are: the token's claims are only trusted once EKS
    /// Auth accepted it, and then its answer is cached for the pod.
    pub async fn fill_from_server(
        &self,
        key: &Arc<PodKey>,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Arc<Cached>, UpstreamError> {
        match self.ask(token, upstream, now).await {
            Ok(cached) => {
                if self.config.max_entries > 0 {
                    let slot = self.slot(key, now);
                    slot.last_used
                        .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
                    Self::write(&slot, Some(Arc::clone(&cached)));
                }
                Ok(cached)
            }
            Err(e) => {
                self.set_outage(now, e.is_outage().then_some(&e));
                Err(e)
            }
        }
    }

    /// One `AssumeRoleForPodIdentity` call: counted, and an answer ends any outage.
    async fn ask(
        &self,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Arc<Cached>, UpstreamError> {
        self.stats.upstream_calls.inc();
        let credentials = upstream.assume_role_for_pod_identity(token).await?;
        self.set_outage(now, None);
        Ok(Arc::new(Cached {
            body: render(&credentials),
            expiration: credentials.expiration,
            fetched: now,
        }))
    }

    /// Forgets pods whose credentials are over (a pod that still runs asks again).
    pub fn sweep(&self, now: OffsetDateTime) {
        self.lock_slots().retain(|_, slot| {
            Self::read(slot).is_some_and(|c| Self::usable(&c, now)) || slot.fill.try_lock().is_err()
        });
    }

    async fn fill(
        &self,
        slot: &Slot,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Arc<Cached>, Miss> {
        match self.ask(token, upstream, now).await {
            Ok(cached) => {
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
}
