//! A materialized view of one key prefix, kept in memory and following the store.
//!
//! Reads never touch the store. Writes go through [`Replica::commit`]: a transaction whose
//! changes are applied to the view before it returns (read-your-writes); everyone else's
//! changes arrive through `watch`. When the store's history no longer reaches back far enough,
//! the view is rebuilt from a fresh listing. Several servers over one store converge this way.

use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use crate::{Compare, Entry, Op, Store, StoreError, TxnOutcome};

/// What a [`Replica`] keeps up to date.
pub trait View: Send + Sync + 'static {
    /// Forgets everything (before a full reload).
    fn clear(&mut self);
    /// A key under the prefix was written (`Some`) or deleted (`None`) at `revision`.
    fn apply(&mut self, key: &str, value: Option<&[u8]>, revision: u64);
}

/// Page size when listing the prefix. etcd counts every key left in the range for each page,
/// so small pages make a listing quadratic: at 400,000 keys, pages of 500 took a replica 22 to
/// 27 s to start, pages of 5,000 3.6 s (BENCHMARKS.md, "Store scale"). A page that would be
/// too large an answer is split by the store.
const LOAD_PAGE: usize = 20_000;

struct Inner<V> {
    store: Arc<dyn Store>,
    prefix: String,
    view: RwLock<V>,
}

/// A view of `prefix`, following the store. Cheap to clone.
pub struct Replica<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for Replica<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V> std::fmt::Debug for Replica<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl<V: View> Replica<V> {
    /// Loads `prefix` into `view` and follows the store's changes from then on (a task on the
    /// current Tokio runtime, ending when the last clone of the replica is dropped).
    pub async fn open(store: Arc<dyn Store>, prefix: &str, view: V) -> Result<Self, StoreError> {
        let replica = Self {
            inner: Arc::new(Inner {
                store,
                prefix: prefix.to_owned(),
                view: RwLock::new(view),
            }),
        };
        let revision = load(&replica.inner).await?;
        tokio::spawn(follow(Arc::downgrade(&replica.inner), revision));
        Ok(replica)
    }

    /// The view, for reads. Do not hold it across an `await`.
    pub fn view(&self) -> RwLockReadGuard<'_, V> {
        self.inner
            .view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Reads one key from the store itself (for a read-modify-write).
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.store.get(key).await
    }

    /// Commits a transaction and applies its writes to the view at once; `None` when a
    /// comparison failed.
    pub async fn commit(
        &self,
        compares: &[Compare],
        ops: &[Op],
    ) -> Result<Option<u64>, StoreError> {
        match self.inner.store.txn(compares, ops).await? {
            TxnOutcome::Failed => Ok(None),
            TxnOutcome::Committed(revision) => {
                let mut view = self.write();
                for op in ops {
                    match op {
                        Op::Put(key, value) if key.starts_with(&self.inner.prefix) => {
                            view.apply(key, Some(value), revision);
                        }
                        Op::Delete(key) if key.starts_with(&self.inner.prefix) => {
                            view.apply(key, None, revision);
                        }
                        _ => {}
                    }
                }
                Ok(Some(revision))
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, V> {
        self.inner
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The first listing, applied page by page: nobody reads the view yet, and holding the whole
/// listing before applying it cost more memory than the views it fills (1.5 KB an association
/// and 1.4 KB a role at 30,000 of each; BENCHMARKS.md, "Store scale"). Pages are read at
/// different revisions, so the watch starts after the first page's: what changed while the
/// later pages were read is replayed, and views ignore what is older than what they hold.
async fn load<V: View>(inner: &Inner<V>) -> Result<u64, StoreError> {
    inner
        .view
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    let mut page = inner.store.list(&inner.prefix, None, LOAD_PAGE).await?;
    let since = page.revision;
    loop {
        // The next page is read while this one is applied.
        let next = match (page.more, page.entries.last()) {
            (true, Some(last)) => {
                let (store, prefix) = (Arc::clone(&inner.store), inner.prefix.clone());
                let after = last.key.clone();
                Some(tokio::spawn(async move {
                    store.list(&prefix, Some(&after), LOAD_PAGE).await
                }))
            }
            (true, None) => {
                return Err(StoreError::Backend(
                    "the store said a listing goes on but sent no entries".to_owned(),
                ));
            }
            (false, _) => None,
        };
        {
            let mut view = inner
                .view
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for entry in page.entries {
                view.apply(&entry.key, Some(&entry.value), entry.mod_revision);
            }
        }
        let Some(next) = next else {
            return Ok(since);
        };
        page = next
            .await
            .map_err(|e| StoreError::Backend(format!("listing task failed: {e}")))??;
    }
}

/// A listing after the history was lost: the view is replaced at once, so readers never see
/// it half loaded.
async fn reload<V: View>(inner: &Inner<V>) -> Result<u64, StoreError> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    let mut first_revision = None;
    let revision = loop {
        let page = inner
            .store
            .list(&inner.prefix, after.as_deref(), LOAD_PAGE)
            .await?;
        let since = *first_revision.get_or_insert(page.revision);
        after = page.entries.last().map(|e| e.key.clone());
        entries.extend(page.entries);
        if !page.more {
            break since;
        }
    };
    let mut view = inner
        .view
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    view.clear();
    for entry in entries {
        view.apply(&entry.key, Some(&entry.value), entry.mod_revision);
    }
    Ok(revision)
}

/// Applies every change under the prefix; lists again when the history is gone.
async fn follow<V: View>(inner: Weak<Inner<V>>, mut revision: u64) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let store = Arc::clone(&strong.store);
        let prefix = strong.prefix.clone();
        drop(strong);
        let mut watch = match store.watch(&prefix, revision).await {
            Ok(watch) => watch,
            Err(StoreError::Compacted { .. }) => {
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                match reload(&strong).await {
                    Ok(r) => revision = r,
                    Err(e) => tracing::warn!(prefix, error = %e, "reloading failed; retrying"),
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(prefix, error = %e, "watching failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(event) = watch.next().await {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            match event {
                Ok(event) => {
                    revision = revision.max(event.revision);
                    strong
                        .view
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .apply(&event.key, event.value.as_deref(), event.revision);
                }
                Err(e) => {
                    tracing::warn!(prefix, error = %e, "the watch ended; following again");
                    if matches!(e, StoreError::Compacted { .. }) {
                        match reload(&strong).await {
                            Ok(r) => revision = r,
                            Err(e) => tracing::warn!(prefix, error = %e, "reloading failed"),
                        }
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
