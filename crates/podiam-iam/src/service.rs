//! The IAM service: its state in memory, following the store.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLockReadGuard};

use podiam_crypto::{Keyring, Rng};
use podiam_store::{Compare, Op, Replica, Store, StoreError};
use podiam_types::Clock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::model::keys;
use crate::{IamError, IamState};

/// Which account and partition this IAM serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamConfig {
    /// The 12-digit account id.
    pub account: String,
    /// `aws`.
    pub partition: String,
}

#[derive(Debug)]
struct Inner {
    replica: Replica<IamState>,
    kek: Arc<Keyring>,
    rng: Arc<dyn Rng>,
    clock: Arc<dyn Clock>,
    /// The ids of the roles whose use is being recorded now: a burst of issuance for one role
    /// writes once.
    recording: Mutex<HashSet<String>>,
}

/// IAM over a store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Iam {
    inner: Arc<Inner>,
}

/// How many times a write is retried when its record changes under it.
pub(crate) const WRITE_ATTEMPTS: usize = 5;

impl Iam {
    /// Loads IAM from `store` and follows its changes. `kek` opens stored secrets.
    pub async fn open(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        rng: Arc<dyn Rng>,
        clock: Arc<dyn Clock>,
        config: &IamConfig,
    ) -> Result<Self, IamError> {
        let state = IamState::new(&config.account, &config.partition, Arc::clone(&kek));
        let replica = Replica::open(store, keys::ROOT, state).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                replica,
                kek,
                rng,
                clock,
                recording: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The state, for reads. Do not hold it across an `await`.
    pub fn state(&self) -> RwLockReadGuard<'_, IamState> {
        self.inner.replica.view()
    }

    pub(crate) fn rng(&self) -> &dyn Rng {
        self.inner.rng.as_ref()
    }

    pub(crate) fn kek(&self) -> &Keyring {
        &self.inner.kek
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The roles whose use is being recorded now.
    pub(crate) fn recording(&self) -> MutexGuard<'_, HashSet<String>> {
        self.inner
            .recording
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads and decodes a stored record with its revision.
    pub(crate) async fn load<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, u64)>, IamError> {
        let Some(entry) = self.inner.replica.get(key).await? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&entry.value)
            .map_err(|e| IamError::Store(StoreError::Corrupt(format!("{key}: {e}"))))?;
        Ok(Some((record, entry.mod_revision)))
    }

    /// Commits a transaction and applies it to the state at once; `None` when a comparison
    /// failed.
    pub(crate) async fn commit(
        &self,
        compares: &[Compare],
        ops: Vec<Op>,
    ) -> Result<Option<u64>, IamError> {
        Ok(self.inner.replica.commit(compares, &ops).await?)
    }

    /// Is `key` in the store now?
    pub(crate) async fn inner_store_has(&self, key: &str) -> Result<bool, IamError> {
        Ok(self.inner.replica.get(key).await?.is_some())
    }

    /// Creates `key` only if it does not exist; `exists` is the error otherwise.
    pub(crate) async fn create<T: Serialize>(
        &self,
        key: &str,
        record: &T,
        extra: Vec<Op>,
        exists: IamError,
    ) -> Result<(), IamError> {
        let mut ops = vec![Op::Put(key.to_owned(), encode(record)?)];
        ops.extend(extra);
        match self.commit(&[Compare::Absent(key.to_owned())], ops).await? {
            Some(_) => Ok(()),
            None => Err(exists),
        }
    }

    /// Read-modify-write of one record with compare-and-swap, retried when it changes
    /// underneath. `checks` adds comparisons on other keys (re-read on every attempt).
    pub(crate) async fn modify<T, F>(
        &self,
        key: &str,
        missing: impl Fn() -> IamError,
        checks: &[String],
        mut change: F,
    ) -> Result<T, IamError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> Result<(), IamError>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let (mut record, revision) = self.load::<T>(key).await?.ok_or_else(&missing)?;
            change(&mut record)?;
            let mut compares = vec![Compare::ModRevision(key.to_owned(), revision)];
            for other in checks {
                let entry = self.inner.replica.get(other).await?;
                compares.push(match entry {
                    Some(e) => Compare::ModRevision(other.clone(), e.mod_revision),
                    None => Compare::Absent(other.clone()),
                });
            }
            if self
                .commit(&compares, vec![Op::Put(key.to_owned(), encode(&record)?)])
                .await?
                .is_some()
            {
                return Ok(record);
            }
        }
        Err(IamError::ConcurrentModification(
            "Another request changed the entity at the same time; try again.".to_owned(),
        ))
    }

    /// Deletes `key` if it is at the revision `check` approves; retried on concurrent change.
    pub(crate) async fn remove<T, F>(
        &self,
        key: &str,
        missing: impl Fn() -> IamError,
        mut check: F,
    ) -> Result<T, IamError>
    where
        T: DeserializeOwned,
        F: FnMut(&T) -> Result<(), IamError>,
    {
        self.remove_with(key, missing, |record| check(record).map(|()| Vec::new()))
            .await
    }

    /// As [`Iam::remove`], with the further changes `check` returns committed in the same
    /// transaction (the keys that belong to the record).
    pub(crate) async fn remove_with<T, F>(
        &self,
        key: &str,
        missing: impl Fn() -> IamError,
        mut check: F,
    ) -> Result<T, IamError>
    where
        T: DeserializeOwned,
        F: FnMut(&T) -> Result<Vec<Op>, IamError>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let (record, revision) = self.load::<T>(key).await?.ok_or_else(&missing)?;
            let mut ops = vec![Op::Delete(key.to_owned())];
            ops.extend(check(&record)?);
            let compares = [Compare::ModRevision(key.to_owned(), revision)];
            if self.commit(&compares, ops).await?.is_some() {
                return Ok(record);
            }
        }
        Err(IamError::ConcurrentModification(
            "Another request changed the entity at the same time; try again.".to_owned(),
        ))
    }
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, IamError> {
    serde_json::to_vec(record).map_err(|e| IamError::Store(StoreError::Corrupt(e.to_string())))
}
