//! The in-memory backend.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::hub::Hub;
use crate::types::validate_ops;
use crate::{
    Compare, Entry, Event, EventKind, Op, Page, Revision, Store, StoreError, TxnOutcome, Watch,
    validate_key,
};

#[derive(Debug)]
struct Inner {
    data: BTreeMap<String, Entry>,
    revision: Revision,
    hub: Hub,
}

/// A store in memory: for tests, and as the fake behind unit tests of the layers above.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                data: BTreeMap::new(),
                revision: 0,
                hub: Hub::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Does every comparison hold against `data`?
pub(crate) fn compares_hold(
    compares: &[Compare],
    current: impl Fn(&str) -> Option<Revision>,
) -> bool {
    compares.iter().all(|c| match c {
        Compare::Absent(key) => current(key).is_none(),
        Compare::ModRevision(key, revision) => current(key) == Some(*revision),
    })
}

/// The entries of `prefix` after `after`, at most `limit`, and whether more follow.
pub(crate) fn page_of<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Entry)>,
    prefix: &str,
    limit: usize,
) -> (Vec<Entry>, bool) {
    let mut out = Vec::new();
    let mut more = false;
    for (key, entry) in entries {
        if !key.starts_with(prefix) {
            break;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        out.push(entry.clone());
    }
    (out, more)
}

pub(crate) fn start_bound<'a>(prefix: &'a str, after: Option<&'a str>) -> Bound<&'a str> {
    match after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        Ok(self.lock().data.get(key).cloned())
    }

    async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        validate_ops(ops)?;
        let mut inner = self.lock();
        if !compares_hold(compares, |k| inner.data.get(k).map(|e| e.mod_revision)) {
            return Ok(TxnOutcome::Failed);
        }
        let revision = inner.revision + 1;
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Put(key, value) => {
                    let create_revision =
                        inner.data.get(key).map_or(revision, |e| e.create_revision);
                    inner.data.insert(
                        key.clone(),
                        Entry {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision,
                            mod_revision: revision,
                        },
                    );
                    events.push(Event {
                        kind: EventKind::Put,
                        key: key.clone(),
                        value: Some(value.clone()),
                        revision,
                    });
                }
                Op::Delete(key) => {
                    if inner.data.remove(key).is_some() {
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
        inner.revision = revision;
        inner.hub.publish(revision, events);
        Ok(TxnOutcome::Committed(revision))
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let inner = self.lock();
        let range = inner
            .data
            .range::<str, _>((start_bound(prefix, after), Bound::Unbounded));
        let (entries, more) = page_of(range, prefix, limit);
        Ok(Page {
            entries,
            more,
            revision: inner.revision,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        self.lock().hub.watch(prefix, after)
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        Ok(self.lock().revision)
    }
}
