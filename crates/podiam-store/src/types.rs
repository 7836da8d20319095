//! The store contract.

use std::fmt;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::StoreError;

/// A store revision: increases with every committed transaction.
pub type Revision = u64;

/// The longest key.
pub const MAX_KEY_LEN: usize = 1024;

/// The largest value (etcd's default request limit).
pub const MAX_VALUE_LEN: usize = 1536 * 1024;

/// One key and its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// The revision that created the key.
    pub create_revision: Revision,
    /// The revision that last changed it.
    pub mod_revision: Revision,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists and was last changed at this revision.
    ModRevision(String, Revision),
}

/// A change in a transaction.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a key.
    Put(String, Vec<u8>),
    /// Remove a key (nothing happens if it does not exist).
    Delete(String),
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put(k, v) => write!(f, "Put({k:?}, {} bytes)", v.len()),
            Self::Delete(k) => write!(f, "Delete({k:?})"),
        }
    }
}

/// What a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every comparison held; the changes are committed at this revision.
    Committed(Revision),
    /// A comparison failed; nothing changed.
    Failed,
}

/// One page of a prefix listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Entries in key order.
    pub entries: Vec<Entry>,
    /// True when more entries follow the last one.
    pub more: bool,
    /// The store revision the page was read at (watch from here to follow changes).
    pub revision: Revision,
}

/// Whether a key was written or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or replaced.
    Put,
    /// Removed.
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key.
    pub key: String,
    /// The new value (puts only).
    pub value: Option<Vec<u8>>,
    /// The revision of the transaction.
    pub revision: Revision,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({:?}@{})", self.kind, self.key, self.revision)
    }
}

/// A stream of changes under a prefix, in revision order.
#[derive(Debug)]
pub struct Watch {
    pub(crate) rx: mpsc::Receiver<Result<Event, StoreError>>,
}

impl Watch {
    /// The next change; `None` when the store closes. An error ends the stream (after
    /// [`StoreError::Compacted`], list again).
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        self.rx.recv().await
    }
}

/// Checks a key against the store's rules.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "a key is 1 to {MAX_KEY_LEN} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}

pub(crate) fn validate_ops(ops: &[Op]) -> Result<(), StoreError> {
    for op in ops {
        match op {
            Op::Put(k, v) => {
                validate_key(k)?;
                if v.len() > MAX_VALUE_LEN {
                    return Err(StoreError::InvalidArgument(format!(
                        "a value is at most {MAX_VALUE_LEN} bytes, not {}",
                        v.len()
                    )));
                }
            }
            Op::Delete(k) => validate_key(k)?,
        }
    }
    Ok(())
}

/// The contract every backend implements (and the conformance suite checks).
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The entry at `key`.
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Applies `ops` atomically when every comparison holds.
    async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError>;

    /// Up to `limit` entries whose keys start with `prefix`, after the key `after` if given.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Every change under `prefix` with a revision greater than `after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError>;

    /// The current revision.
    async fn revision(&self) -> Result<Revision, StoreError>;

    /// Creates or replaces `key`.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        match self.txn(&[], &[Op::Put(key.to_owned(), value)]).await? {
            TxnOutcome::Committed(revision) => Ok(revision),
            TxnOutcome::Failed => Err(StoreError::Backend(
                "an unconditional put failed".to_owned(),
            )),
        }
    }

    /// Writes `key` only if it is at `expected` (`None`: only if it does not exist).
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<Revision>,
        value: Vec<u8>,
    ) -> Result<TxnOutcome, StoreError> {
        let compare = match expected {
            None => Compare::Absent(key.to_owned()),
            Some(revision) => Compare::ModRevision(key.to_owned(), revision),
        };
        self.txn(&[compare], &[Op::Put(key.to_owned(), value)])
            .await
    }

    /// Removes `key`; true if it existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let Some(entry) = self.get(key).await? else {
            return Ok(false);
        };
        let outcome = self
            .txn(
                &[Compare::ModRevision(key.to_owned(), entry.mod_revision)],
                &[Op::Delete(key.to_owned())],
            )
            .await?;
        Ok(outcome != TxnOutcome::Failed)
    }
}
