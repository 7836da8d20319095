//! Where the webhook finds a pod's ServiceAccount: a watch cache of the Kubernetes API that keeps
//! only names and prefixed annotations, with one short GET when a lookup misses it (a pod created
//! right after its ServiceAccount can beat the watch).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// ServiceAccounts from the Kubernetes API: a metadata-only watch into a cache, and a GET on a
/// miss.
pub struct KubeServiceAccounts {
    client: kube::Client,
    store: Store<Meta>,
    prefix: String,
    lookup_timeout: Duration,
    ready: Arc<AtomicBool>,
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
        let task = async move {
            let mut watch = std::pin::pin!(watch);
            while let Some(event) = watch.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if !became_ready.swap(true, Ordering::Relaxed) {
                            tracing::info!("ServiceAccount cache synced");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "watching ServiceAccounts (retrying)");
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
        if let Some(cached) = self.store.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(Some(info(&cached, &self.prefix)));
        }
        let api = Api::<Meta>::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(self.lookup_timeout, api.get_opt(name)).await {
            Err(_) => Err(WebhookError::KubernetesTimeout(self.lookup_timeout)),
            Ok(Err(e)) => Err(WebhookError::Kubernetes(e.to_string())),
            Ok(Ok(found)) => Ok(found.map(|account| info(&account, &self.prefix))),
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn cached(&self) -> usize {
        self.store.len()
    }
}
