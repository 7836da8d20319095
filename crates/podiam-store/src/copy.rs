//! Copying every key of one store into another (an embedded store into etcd when a single
//! server grows into replicas).

use crate::{Compare, Op, Store, StoreError, TxnOutcome};

/// Keys read per page and written per transaction (etcd allows 128 operations per txn).
const BATCH: usize = 100;

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Keys written.
    pub keys: usize,
    /// Bytes of values written.
    pub bytes: usize,
}

/// Copies every key of `from` into `to`, which must be empty (nothing is overwritten: each
/// batch only commits if none of its keys exists). `progress` is called after each batch.
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    mut progress: impl FnMut(Copied),
) -> Result<Copied, StoreError> {
    if !to.list("", None, 1).await?.entries.is_empty() {
        return Err(StoreError::InvalidArgument(
            "the destination is not empty; copy into an empty store (or another namespace)"
                .to_owned(),
        ));
    }
    let mut copied = Copied { keys: 0, bytes: 0 };
    let mut after: Option<String> = None;
    loop {
        let page = from.list("", after.as_deref(), BATCH).await?;
        if page.entries.is_empty() {
            break;
        }
        let compares: Vec<Compare> = page
            .entries
            .iter()
            .map(|e| Compare::Absent(e.key.clone()))
            .collect();
        let ops: Vec<Op> = page
            .entries
            .iter()
            .map(|e| Op::Put(e.key.clone(), e.value.clone()))
            .collect();
        if to.txn(&compares, &ops).await? == TxnOutcome::Failed {
            return Err(StoreError::InvalidArgument(
                "the destination changed during the copy (is a server already using it?)"
                    .to_owned(),
            ));
        }
        copied.keys += page.entries.len();
        copied.bytes += page.entries.iter().map(|e| e.value.len()).sum::<usize>();
        progress(copied);
        after = page.entries.last().map(|e| e.key.clone());
        if !page.more {
            break;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn everything_is_copied_once_into_an_empty_store() {
        let from = MemoryStore::new();
        for i in 0..250 {
            from.put(&format!("k/{i:03}"), vec![1; i]).await.unwrap();
        }
        let to = MemoryStore::new();
        let mut batches = 0;
        let copied = copy_store(&from, &to, |_| batches += 1).await.unwrap();
        assert_eq!(copied.keys, 250);
        assert_eq!(copied.bytes, (0..250).sum::<usize>());
        assert_eq!(batches, 3);
        let all = to.list("", None, 1000).await.unwrap();
        assert_eq!(all.entries.len(), 250);
        assert_eq!(to.get("k/249").await.unwrap().unwrap().value, vec![1; 249]);
        // A second copy finds the destination not empty and writes nothing.
        assert!(matches!(
            copy_store(&from, &to, |_| {}).await,
            Err(StoreError::InvalidArgument(_))
        ));
    }
}
