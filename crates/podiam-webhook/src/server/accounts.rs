//! Where the webhook finds a pod's ServiceAccount: a watch cache of the Kubernetes API that keeps
//! only names and prefixed annotations, with one short GET when a lookup misses it (a pod created
//! right after its ServiceAccount can beat the watch).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};

use crate::{ServiceAccountInfo, WebhookError};

/// A source of ServiceAccounts.
#[async_trait::async_trait]
pub trait ServiceAccounts: Send + Sync + fmt::Debug {
    /// The ServiceAccount `namespace/name`, or `None` if there is no such account.
    async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccountInfo>, WebhookError>;

    /// Whether the source has its first complete view (for `/readyz`).
    fn is_ready(&self) -> bool;

    /// How many accounts are cached.
    fn cached(&self) -> usize;

    /// How long lookups have been failing, and the last reason (`None`: they work).
    fn outage(&self) -> Option<(Duration, String)> {
        None
    }
}

/// ServiceAccounts held in memory: for tests of the layers above, and `render`.
#[derive(Debug, Default)]
pub struct StaticServiceAccounts {
    accounts: BTreeMap<(String, String), ServiceAccountInfo>,
}

impl StaticServiceAccounts {
    /// These accounts.
    pub fn new(accounts: impl IntoIterator<Item = ServiceAccountInfo>) -> Self {
        Self {
            accounts: accounts
                .into_iter()
                .map(|a| ((a.namespace.clone(), a.name.clone()), a))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl ServiceAccounts for StaticServiceAccounts {
    async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccountInfo>, WebhookError> {
        Ok(self
            .accounts
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned())
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn cached(&self) -> usize {
        self.accounts.len()
    }
}

type Meta = PartialObjectMeta<ServiceAccount>;

/// How long a "no such ServiceAccount" answer is remembered: a flood of reviews naming made-up
/// accounts costs one GET per name per this long.
const NOT_FOUND_TTL: Duration = Duration::from_secs(5);
/// At most this many remembered misses.
const MAX_NOT_FOUND: usize = 10_000;

/// When the watch broke, or a GET failed, and why.
#[derive(Debug, Default)]
struct Health {
    watch_broken_since: Option<Instant>,
    lookups_failing: Option<(Instant, String)>,
}

/// ServiceAccounts from the Kubernetes API: a metadata-only watch into a cache, and a GET on a
/// miss. While the watch is broken the cache may be stale (an annotation removed during an
/// outage would still be injected), so lookups go to the API, and fail when it does not answer.
pub struct KubeServiceAccounts {
    client: kube::Client,
    store: Store<Meta>,
    prefix: String,
    lookup_timeout: Duration,
    ready: Arc<AtomicBool>,
    health: Arc<Mutex<Health>>,
    not_found: Mutex<HashMap<(String, String), Instant>>,
}

impl fmt::Debug for KubeServiceAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeServiceAccounts")
            .field("prefix", &self.prefix)
            .field("cached", &self.store.len())
            .finish_non_exhaustive()
    }
}

impl KubeServiceAccounts {
    /// A source keeping annotations under `annotation_prefix/`, and the watch that fills it (to
    /// be spawned; it retries with backoff and runs until dropped).
    pub fn new(
        client: kube::Client,
        annotation_prefix: &str,
        lookup_timeout: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store::<Meta>();
        let prefix = format!("{annotation_prefix}/");
        let ready = Arc::new(AtomicBool::new(false));
        let keep = prefix.clone();
        let watch = watcher(
            Api::<Meta>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .modify(move |account: &mut Meta| strip(account, &keep))
        .reflect(writer);
        let became_ready = Arc::clone(&ready);
        let health = Arc::new(Mutex::new(Health::default()));
        let watch_health = Arc::clone(&health);
        let task = async move {
            let mut watch = std::pin::pin!(watch);
            while let Some(event) = watch.next().await {
                let broken = event.is_err();
                {
                    let mut health = lock(&watch_health);
                    match (broken, health.watch_broken_since) {
                        (true, None) => health.watch_broken_since = Some(Instant::now()),
                        (false, Some(_)) => {
                            tracing::info!("the ServiceAccount watch works again");
                            health.watch_broken_since = None;
                        }
                        _ => {}
                    }
                }
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if !became_ready.swap(true, Ordering::Relaxed) {
                            tracing::info!("ServiceAccount cache synced");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "watching ServiceAccounts (retrying); lookups go to the API meanwhile");
                    }
                }
            }
        };
        (
            Self {
                client,
                store,
                prefix,
                lookup_timeout,
                ready,
                health,
                not_found: Mutex::new(HashMap::new()),
            },
            task,
        )
    }
}

/// Drops what the mutation does not need: labels, managed fields, unprefixed annotations.
fn strip(account: &mut Meta, prefix: &str) {
    let metadata = &mut account.metadata;
    metadata.labels = None;
    metadata.managed_fields = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with(prefix));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KubeServiceAccounts {
    fn remembered_missing(&self, key: &(String, String)) -> bool {
        lock(&self.not_found)
            .get(key)
            .is_some_and(|at| at.elapsed() < NOT_FOUND_TTL)
    }

    fn remember_missing(&self, key: (String, String)) {
        let mut misses = lock(&self.not_found);
        if misses.len() >= MAX_NOT_FOUND {
            misses.retain(|_, at| at.elapsed() < NOT_FOUND_TTL);
            if misses.len() >= MAX_NOT_FOUND {
                misses.clear();
            }
        }
        misses.insert(key, Instant::now());
    }

    fn lookup_failed(&self, why: String) {
        let mut health = lock(&self.health);
        let since = health
            .lookups_failing
            .as_ref()
            .map_or_else(Instant::now, |(since, _)| *since);
        health.lookups_failing = Some((since, why));
    }

    fn lookup_worked(&self) {
        lock(&self.health).lookups_failing = None;
    }
}

fn info(account: &Meta, prefix: &str) -> ServiceAccountInfo {
    let metadata = &account.metadata;
    ServiceAccountInfo {
        name: metadata.name.clone().unwrap_or_default(),
        namespace: metadata.namespace.clone().unwrap_or_default(),
        annotations: metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    }
}

#[async_trait::async_trait]
impl ServiceAccounts for KubeServiceAccounts {
    async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccountInfo>, WebhookError> {
        let watching = lock(&self.health).watch_broken_since.is_none();
        if watching && let Some(cached) = self.store.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(Some(info(&cached, &self.prefix)));
        }
        let key = (namespace.to_owned(), name.to_owned());
        if self.remembered_missing(&key) {
            return Ok(None);
        }
        let api = Api::<Meta>::namespaced(self.client.clone(), namespace);
        let result = match tokio::time::timeout(self.lookup_timeout, api.get_opt(name)).await {
            Err(_) => Err(WebhookError::KubernetesTimeout(self.lookup_timeout)),
            Ok(Err(e)) => Err(WebhookError::Kubernetes(e.to_string())),
            Ok(Ok(found)) => Ok(found.map(|account| info(&account, &self.prefix))),
        };
        match &result {
            Ok(None) => {
                self.lookup_worked();
                self.remember_missing(key);
            }
            Ok(Some(_)) => self.lookup_worked(),
            Err(e) => self.lookup_failed(e.to_string()),
        }
        result
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn cached(&self) -> usize {
        self.store.len()
    }

    fn outage(&self) -> Option<(Duration, String)> {
        lock(&self.health)
            .lookups_failing
            .as_ref()
            .map(|(since, why)| (since.elapsed(), why.clone()))
    }
}
