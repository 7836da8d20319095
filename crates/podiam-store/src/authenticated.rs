//! Records bound to their keys with a MAC under a key derived from the key-encryption key, so
//! that a writer to a shared store (etcd) who does not hold that key cannot change or move a
//! record: one that fails the check is treated as absent, and logged.
//!
//! A record is `MAGIC || HMAC-SHA256(len(key) || key || value) || value`. Secrets inside
//! records are sealed as well; this covers everything else (which user an access key belongs
//! to, a role's trust policy, …). Whoever holds both the key-encryption key and write access
//! to the store is root.

use std::sync::Arc;

use async_trait::async_trait;
use podiam_crypto::{HmacKey, constant_time_eq};

use crate::{
    Compare, Entry, Event, EventKind, Op, Page, Revision, Store, StoreError, TxnOutcome, Watch,
};

/// Marks an authenticated record (version 1).
const MAGIC: &[u8; 4] = b"pmA1";
const TAG_LEN: usize = 32;

/// The MAC that binds a record to its key.
#[derive(Debug, Clone)]
struct RecordMac(HmacKey);

impl RecordMac {
    fn tag(&self, key: &str, value: &[u8]) -> [u8; TAG_LEN] {
        let mut data = Vec::with_capacity(8 + key.len() + value.len());
        data.extend_from_slice(&(key.len() as u64).to_be_bytes());
        data.extend_from_slice(key.as_bytes());
        data.extend_from_slice(value);
        self.0.sign(&data)
    }

    /// The record written for `value` at `key`.
    fn seal(&self, key: &str, value: &[u8]) -> Vec<u8> {
        let mut record = Vec::with_capacity(MAGIC.len() + TAG_LEN + value.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&self.tag(key, value));
        record.extend_from_slice(value);
        record
    }

    /// The value of a record read at `key`, or `None` (logged) if it fails the check.
    fn open(&self, key: &str, record: &[u8]) -> Option<Vec<u8>> {
        let opened = record
            .strip_prefix(MAGIC.as_slice())
            .filter(|rest| rest.len() >= TAG_LEN)
            .and_then(|rest| {
                let (tag, value) = rest.split_at(TAG_LEN);
                constant_time_eq(tag, &self.tag(key, value)).then(|| value.to_vec())
            });
        if opened.is_none() {
            tracing::error!(
                key,
                "a record in the store fails its integrity check (changed or moved by someone without the key-encryption key); it is treated as absent"
            );
        }
        opened
    }

    fn open_entry(&self, entry: Entry) -> Option<Entry> {
        let value = self.open(&entry.key, &entry.value)?;
        Some(Entry { value, ..entry })
    }

    /// A put whose record fails the check becomes a delete: the key is absent from then on.
    fn open_event(&self, event: Event) -> Event {
        let Some(record) = &event.value else {
            return event;
        };
        match self.open(&event.key, record) {
            Some(value) => Event {
                value: Some(value),
                ..event
            },
            None => Event {
                kind: EventKind::Delete,
                value: None,
                ..event
            },
        }
    }
}

/// A [`Store`] whose records are authenticated (see the module documentation).
#[derive(Debug)]
pub struct AuthenticatedStore {
    inner: Arc<dyn Store>,
    mac: RecordMac,
}

impl AuthenticatedStore {
    /// Authenticates the records of `inner` with `mac` (derive it from the key-encryption
    /// key; every replica must use the same).
    pub fn new(inner: Arc<dyn Store>, mac: HmacKey) -> Self {
        Self {
            inner,
            mac: RecordMac(mac),
        }
    }
}

#[async_trait]
impl Store for AuthenticatedStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .inner
            .get(key)
            .await?
            .and_then(|entry| self.mac.open_entry(entry)))
    }

    async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        let sealed: Vec<Op> = ops
            .iter()
            .map(|op| match op {
                Op::Put(key, value) => Op::Put(key.clone(), self.mac.seal(key, value)),
                Op::Delete(key) => Op::Delete(key.clone()),
            })
            .collect();
        self.inner.txn(compares, &sealed).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut after = after.map(str::to_owned);
        loop {
            let page = self.inner.list(prefix, after.as_deref(), limit).await?;
            let last_key = page.entries.last().map(|e| e.key.clone());
            let entries: Vec<Entry> = page
                .entries
                .into_iter()
                .filter_map(|entry| self.mac.open_entry(entry))
                .collect();
            // A page whose every record failed is read past, so that a caller paging on
            // `more` does not stop early.
            match last_key {
                Some(last) if entries.is_empty() && page.more => after = Some(last),
                _ => {
                    return Ok(Page {
                        entries,
                        more: page.more,
                        revision: page.revision,
                    });
                }
            }
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        let mut inner = self.inner.watch(prefix, after).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let mac = self.mac.clone();
        tokio::spawn(async move {
            while let Some(item) = inner.next().await {
                if tx
                    .send(item.map(|event| mac.open_event(event)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Watch { rx })
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.inner.revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn pair() -> (Arc<dyn Store>, AuthenticatedStore) {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = AuthenticatedStore::new(Arc::clone(&raw), HmacKey::new(b"test key"));
        (raw, store)
    }

    #[tokio::test]
    async fn records_round_trip_and_tampering_makes_them_absent() {
        let (raw, store) = pair();
        store
            .put("iam/key/AKIA1", br#"{"user":"alice"}"#.to_vec())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let got = store
            .get("iam/key/AKIA1")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(got.map(|e| e.value), Some(br#"{"user":"alice"}"#.to_vec()));
        // A writer without the key changes the record: absent.
        let mut record = raw
            .get("iam/key/AKIA1")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"))
            .map(|e| e.value)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&record).replace("alice", "null!");
        record = text.into_bytes();
        raw.put("iam/key/AKIA1", record.clone())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            store
                .get("iam/key/AKIA1")
                .await
                .unwrap_or_else(|e| unreachable!("{e}"))
                .is_none()
        );
        // Or writes a plain one, or moves a valid record to another key: absent.
        raw.put("iam/key/AKIA2", br#"{"user":null}"#.to_vec())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            store
                .get("iam/key/AKIA2")
                .await
                .unwrap_or_else(|e| unreachable!("{e}"))
                .is_none()
        );
        store
            .put("iam/key/AKIA3", br#"{"user":"bob"}"#.to_vec())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let moved = raw
            .get("iam/key/AKIA3")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"))
            .map(|e| e.value)
            .unwrap_or_default();
        raw.put("iam/key/AKIA4", moved)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            store
                .get("iam/key/AKIA4")
                .await
                .unwrap_or_else(|e| unreachable!("{e}"))
                .is_none()
        );
        // Lists skip what fails.
        let page = store
            .list("iam/key/", None, 10)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["iam/key/AKIA3"]);
    }

    #[tokio::test]
    async fn a_watch_sees_a_tampered_record_as_deleted() {
        let (raw, store) = pair();
        let start = store
            .revision()
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut watch = store
            .watch("k/", start)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        store
            .put("k/a", b"one".to_vec())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        raw.put("k/a", b"forged".to_vec())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let first = watch.next().await.and_then(Result::ok);
        assert_eq!(first.as_ref().map(|e| e.kind), Some(EventKind::Put));
        assert_eq!(first.and_then(|e| e.value), Some(b"one".to_vec()));
        let second = watch.next().await.and_then(Result::ok);
        assert_eq!(second.as_ref().map(|e| e.kind), Some(EventKind::Delete));
        assert_eq!(second.and_then(|e| e.value), None);
    }

    #[tokio::test]
    async fn another_key_encryption_key_opens_nothing() {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ours = AuthenticatedStore::new(Arc::clone(&raw), HmacKey::new(b"ours"));
        let theirs = AuthenticatedStore::new(Arc::clone(&raw), HmacKey::new(b"theirs"));
        ours.put("x", b"v".to_vec())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            theirs
                .get("x")
                .await
                .unwrap_or_else(|e| unreachable!("{e}"))
                .is_none()
        );
    }
}
