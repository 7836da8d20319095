//! The embedded, durable backend (redb): one file, committed with fsync.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

use crate::hub::Hub;
use crate::memory::{compares_hold, start_bound};
use crate::types::validate_ops;
use crate::{
    Compare, Entry, Event, EventKind, Op, Page, Revision, Store, StoreError, TxnOutcome, Watch,
    validate_key,
};

/// Keys to `[create revision u64 LE][mod revision u64 LE][value]`.
const DATA: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("data");
/// `revision` to the store revision.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// redb's page cache (read cache and write buffer together). Every read the services make goes
/// to their in-memory views, so the store is read only for a transaction's comparisons, a
/// read-modify-write and a full listing at start; redb's default (1 GiB) let the cache grow to
/// the whole file, which a start's listing reads: 114 MB of RSS at 30,000 roles and
/// associations (BENCHMARKS.md, "Store scale"). The branch pages a lookup walks stay cached;
/// the rest comes from the OS page cache.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode(create: Revision, modified: Revision, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modified.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn decode(key: &str, raw: &[u8]) -> Result<Entry, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("entry {key:?} is shorter than its header"));
    let create = raw.get(..8).ok_or_else(corrupt)?;
    let modified = raw.get(8..16).ok_or_else(corrupt)?;
    let to_u64 = |b: &[u8]| -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| corrupt())?))
    };
    Ok(Entry {
        key: key.to_owned(),
        value: raw.get(16..).unwrap_or_default().to_vec(),
        create_revision: to_u64(create)?,
        mod_revision: to_u64(modified)?,
    })
}

#[derive(Debug)]
struct Shared {
    db: Database,
    /// Serializes writers and owns the watch history.
    writer: Mutex<Hub>,
}

/// The default backend: an embedded redb database in the data directory.
#[derive(Debug, Clone)]
pub struct RedbStore {
    shared: Arc<Shared>,
}

impl RedbStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(backend)?;
        let write = db.begin_write().map_err(backend)?;
        let revision = {
            write.open_table(DATA).map_err(backend)?;
            let meta = write.open_table(META).map_err(backend)?;
            meta.get("revision")
                .map_err(backend)?
                .map_or(0, |v| v.value())
        };
        write.commit().map_err(backend)?;
        Ok(Self {
            shared: Arc::new(Shared {
                db,
                writer: Mutex::new(Hub::new(revision)),
            }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || work(&shared))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

/// The entry at `key` inside a write transaction.
fn current(table: &redb::Table<'_, &str, &[u8]>, key: &str) -> Result<Option<Entry>, StoreError> {
    table
        .get(key)
        .map_err(backend)?
        .map(|v| decode(key, v.value()))
        .transpose()
}

fn read_revision(db: &Database) -> Result<Revision, StoreError> {
    let read = db.begin_read().map_err(backend)?;
    let meta = read.open_table(META).map_err(backend)?;
    Ok(meta
        .get("revision")
        .map_err(backend)?
        .map_or(0, |v| v.value()))
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.blocking(move |shared| {
            let read = shared.db.begin_read().map_err(backend)?;
            let table = read.open_table(DATA).map_err(backend)?;
            let value = table.get(key.as_str()).map_err(backend)?;
            value.map(|v| decode(&key, v.value())).transpose()
        })
        .await
    }

    async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        validate_ops(ops)?;
        let compares = compares.to_vec();
        let ops = ops.to_vec();
        self.blocking(move |shared| {
            let mut hub = shared
                .writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let write = shared.db.begin_write().map_err(backend)?;
            let (revision, events) = {
                let mut table = write.open_table(DATA).map_err(backend)?;
                let mut meta = write.open_table(META).map_err(backend)?;
                let mut held = true;
                for compare in &compares {
                    let (Compare::Absent(key) | Compare::ModRevision(key, _)) = compare;
                    let at = current(&table, key)?.map(|e| e.mod_revision);
                    held &= compares_hold(std::slice::from_ref(compare), |_| at);
                }
                if !held {
                    return Ok(TxnOutcome::Failed);
                }
                let revision = meta
                    .get("revision")
                    .map_err(backend)?
                    .map_or(0, |v| v.value())
                    + 1;
                let mut events = Vec::with_capacity(ops.len());
                for op in &ops {
                    match op {
                        Op::Put(key, value) => {
                            let create =
                                current(&table, key)?.map_or(revision, |e| e.create_revision);
                            table
                                .insert(key.as_str(), encode(create, revision, value).as_slice())
                                .map_err(backend)?;
                            events.push(Event {
                                kind: EventKind::Put,
                                key: key.clone(),
                                value: Some(value.clone()),
                                revision,
                            });
                        }
                        Op::Delete(key) => {
                            if table.remove(key.as_str()).map_err(backend)?.is_some() {
                                events.push(Event {
                                    kind: EventKind::Delete,
                                    key: key.clone(),
                                    value: None,
                                    revision,
                                });
                            }
                        }
                    }
                }
                meta.insert("revision", revision).map_err(backend)?;
                (revision, events)
            };
            write.commit().map_err(backend)?;
            hub.publish(revision, events);
            Ok(TxnOutcome::Committed(revision))
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        self.blocking(move |shared| {
            let read = shared.db.begin_read().map_err(backend)?;
            let table = read.open_table(DATA).map_err(backend)?;
            let meta = read.open_table(META).map_err(backend)?;
            let revision = meta
                .get("revision")
                .map_err(backend)?
                .map_or(0, |v| v.value());
            let start = start_bound(&prefix, after.as_deref());
            let range = table
                .range::<&str>((start, Bound::Unbounded))
                .map_err(backend)?;
            let mut entries = Vec::new();
            let mut more = false;
            for item in range {
                let (key, value) = item.map_err(backend)?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if entries.len() == limit {
                    more = true;
                    break;
                }
                entries.push(decode(key, value.value())?);
            }
            Ok(Page {
                entries,
                more,
                revision,
            })
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        let hub = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hub.watch(prefix, after)
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.blocking(|shared| read_revision(&shared.db)).await
    }
}
