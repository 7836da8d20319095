//! The session keyring: every key sealed under the key-encryption key in the store
//! (`keys/session/<id>`, and `keys/session/current` naming the one that seals), followed by
//! every replica through the store's watch, so a rotation reaches all of them without a
//! restart. A key rotated out keeps opening sessions until the longest session it can have
//! sealed has expired; then it is deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{AeadKey, KeyId, Keyring, Rng, Secret};
use podiam_store::{Compare, Op, Replica, Store, StoreError, View};
use podiam_sts::SharedKeyring;
use podiam_types::Clock;
use serde::{Deserialize, Serialize};

/// Where the keys live.
const PREFIX: &str = "keys/session/";
/// The id of the key that seals new sessions.
const CURRENT: &str = "keys/session/current";
/// How long a rotated-out key still opens sessions: the longest session (12 hours, a role's
/// largest MaxSessionDuration) plus clock skew.
pub(crate) const RETIRE_AFTER: Duration = Duration::from_secs(12 * 3600 + 10 * 60);

/// A key as stored.
#[derive(Debug, Serialize, Deserialize)]
struct SealedKey {
    /// The key material sealed under the key-encryption key (AAD: the key's store key), base64url.
    sealed: String,
    /// When it stopped sealing new sessions (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated_out_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CurrentKey {
    id: u32,
}

/// Why the keyring cannot be used or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyringError {
    /// The store failed.
    Store(StoreError),
    /// A key does not open, or a record is damaged.
    Keys(String),
    /// Another rotation won the race; try again.
    Conflict,
}

impl std::fmt::Display for KeyringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::Keys(e) => write!(f, "{e}"),
            Self::Conflict => write!(f, "another rotation happened at the same time; try again"),
        }
    }
}

impl From<StoreError> for KeyringError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn key_name(id: u32) -> String {
    format!("{PREFIX}{id}")
}

/// The keyring the records describe.
fn build(kek: &Keyring, records: &BTreeMap<String, Vec<u8>>) -> Result<Keyring, KeyringError> {
    let current: CurrentKey = records
        .get(CURRENT)
        .map(|v| serde_json::from_slice(v))
        .transpose()
        .map_err(|e| KeyringError::Keys(format!("{CURRENT}: {e}")))?
        .ok_or_else(|| KeyringError::Keys("no current session key".to_owned()))?;
    let mut keyring: Option<Keyring> = None;
    for (name, value) in records.iter().filter(|(k, _)| k.as_str() != CURRENT) {
        let Some(id) = name
            .strip_prefix(PREFIX)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let record: SealedKey = serde_json::from_slice(value)
            .map_err(|e| KeyringError::Keys(format!("{name}: {e}")))?;
        let sealed = URL_SAFE_NO_PAD
            .decode(record.sealed)
            .map_err(|e| KeyringError::Keys(format!("{name}: {e}")))?;
        let material = Secret::new(kek.open(&sealed, name.as_bytes()).map_err(|_| {
            KeyringError::Keys(format!(
                "the session key {name} does not open with this key-encryption key; start with the --kek-file this data was created with"
            ))
        })?);
        let key = AeadKey::from_bytes(KeyId(id), material.expose())
            .map_err(|e| KeyringError::Keys(e.to_string()))?;
        match &mut keyring {
            Some(ring) => ring.insert(key),
            None => keyring = Some(Keyring::new(key)),
        }
    }
    let mut keyring =
        keyring.ok_or_else(|| KeyringError::Keys("no session keys in the store".to_owned()))?;
    keyring
        .set_current(KeyId(current.id))
        .map_err(|e| KeyringError::Keys(e.to_string()))?;
    Ok(keyring)
}

/// The records of `keys/session/`, rebuilding the shared keyring on every change.
pub(crate) struct KeyringView {
    kek: Arc<Keyring>,
    records: BTreeMap<String, Vec<u8>>,
    shared: SharedKeyring,
}

impl View for KeyringView {
    fn clear(&mut self) {
        self.records.clear();
    }

    fn apply(&mut self, key: &str, value: Option<&[u8]>, _revision: u64) {
        match value {
            Some(value) => {
                self.records.insert(key.to_owned(), value.to_vec());
            }
            None => {
                self.records.remove(key);
            }
        }
        // Mid-load or mid-change the records may be incomplete: keep the last good keyring.
        match build(&self.kek, &self.records) {
            Ok(keyring) => {
                *self
                    .shared
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keyring);
            }
            Err(e) => tracing::debug!(error = %e, "the session keyring is incomplete for now"),
        }
    }
}

/// The outcome of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rotation {
    /// The key that now seals new sessions.
    pub(crate) current: u32,
    /// The key that did, until now; it opens sessions until `retire_at`.
    pub(crate) previous: u32,
    /// When the previous key is deleted (unix seconds).
    pub(crate) retire_at: i64,
}

/// The session keys of this server, following the store.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    replica: Replica<KeyringView>,
    kek: Arc<Keyring>,
    rng: Arc<dyn Rng>,
    clock: Arc<dyn Clock>,
    shared: SharedKeyring,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys").finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Loads the keyring (creating the first key in a new store) and follows the store.
    pub(crate) async fn open(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        rng: Arc<dyn Rng>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyringError> {
        if store.get(CURRENT).await?.is_none() {
            let (name, record) = seal_new_key(&kek, rng.as_ref(), 1)?;
            let current = serde_json::to_vec(&CurrentKey { id: 1 })
                .map_err(|e| KeyringError::Keys(e.to_string()))?;
            // Another replica may win the race; its key is then the one loaded below.
            store
                .txn(
                    &[Compare::Absent(CURRENT.to_owned())],
                    &[Op::Put(name, record), Op::Put(CURRENT.to_owned(), current)],
                )
                .await?;
        }
        Self::follow(store, kek, rng, clock).await
    }

    /// Loads the keyring a server created and follows the store, writing nothing (for a
    /// process that only verifies sessions, such as the gateway).
    pub(crate) async fn follow(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        rng: Arc<dyn Rng>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyringError> {
        // The first keyring, read directly so that a wrong key-encryption key fails the start.
        let page = store.list(PREFIX, None, 1000).await?;
        let records: BTreeMap<String, Vec<u8>> =
            page.entries.into_iter().map(|e| (e.key, e.value)).collect();
        let shared: SharedKeyring =
            Arc::new(std::sync::RwLock::new(Arc::new(build(&kek, &records)?)));
        let view = KeyringView {
            kek: Arc::clone(&kek),
            records: BTreeMap::new(),
            shared: Arc::clone(&shared),
        };
        let replica = Replica::open(store, PREFIX, view).await?;
        Ok(Self {
            replica,
            kek,
            rng,
            clock,
            shared,
        })
    }

    /// The keyring STS seals with and the SigV4 lookup opens with.
    pub(crate) fn shared(&self) -> SharedKeyring {
        Arc::clone(&self.shared)
    }

    /// A new key seals new sessions from now on, on every replica; the previous one keeps
    /// opening the sessions it sealed until [`RETIRE_AFTER`] has passed.
    pub(crate) async fn rotate(&self) -> Result<Rotation, KeyringError> {
        let current_entry = self
            .replica
            .get(CURRENT)
            .await?
            .ok_or_else(|| KeyringError::Keys("no current session key".to_owned()))?;
        let current: CurrentKey = serde_json::from_slice(&current_entry.value)
            .map_err(|e| KeyringError::Keys(format!("{CURRENT}: {e}")))?;
        let old_name = key_name(current.id);
        let old_entry = self
            .replica
            .get(&old_name)
            .await?
            .ok_or_else(|| KeyringError::Keys(format!("{old_name} is missing")))?;
        let mut old: SealedKey = serde_json::from_slice(&old_entry.value)
            .map_err(|e| KeyringError::Keys(format!("{old_name}: {e}")))?;
        let now = self.clock.now().unix_timestamp();
        old.rotated_out_at = Some(now);
        let highest = self
            .replica
            .view()
            .records
            .keys()
            .filter_map(|k| k.strip_prefix(PREFIX)?.parse::<u32>().ok())
            .max()
            .unwrap_or(current.id);
        let next = highest
            .checked_add(1)
            .ok_or_else(|| KeyringError::Keys("no more key ids".to_owned()))?;
        let (new_name, new_record) = seal_new_key(&self.kek, self.rng.as_ref(), next)?;
        let committed = self
            .replica
            .commit(
                &[
                    Compare::ModRevision(CURRENT.to_owned(), current_entry.mod_revision),
                    Compare::ModRevision(old_name.clone(), old_entry.mod_revision),
                ],
                &[
                    Op::Put(new_name, new_record),
                    Op::Put(old_name, json(&old)?),
                    Op::Put(CURRENT.to_owned(), json(&CurrentKey { id: next })?),
                ],
            )
            .await?;
        if committed.is_none() {
            return Err(KeyringError::Conflict);
        }
        Ok(Rotation {
            current: next,
            previous: current.id,
            retire_at: now
                .saturating_add(i64::try_from(RETIRE_AFTER.as_secs()).unwrap_or(i64::MAX)),
        })
    }

    /// Deletes the keys rotated out longer than [`RETIRE_AFTER`] ago; returns their ids.
    pub(crate) async fn retire_expired(&self) -> Result<Vec<u32>, KeyringError> {
        let now = self.clock.now().unix_timestamp();
        let limit = i64::try_from(RETIRE_AFTER.as_secs()).unwrap_or(i64::MAX);
        let expired: Vec<(String, u32)> = {
            let view = self.replica.view();
            let current = view
                .records
                .get(CURRENT)
                .and_then(|v| serde_json::from_slice::<CurrentKey>(v).ok())
                .map(|c| c.id);
            view.records
                .iter()
                .filter_map(|(name, value)| {
                    let id = name.strip_prefix(PREFIX)?.parse::<u32>().ok()?;
                    let record: SealedKey = serde_json::from_slice(value).ok()?;
                    let out = record.rotated_out_at?;
                    (Some(id) != current && now.saturating_sub(out) > limit)
                        .then(|| (name.clone(), id))
                })
                .collect()
        };
        let mut retired = Vec::new();
        for (name, id) in expired {
            let Some(entry) = self.replica.get(&name).await? else {
                continue;
            };
            // Another replica may retire it first; then this delete does nothing.
            if self
                .replica
                .commit(
                    &[Compare::ModRevision(name.clone(), entry.mod_revision)],
                    &[Op::Delete(name)],
                )
                .await?
                .is_some()
            {
                retired.push(id);
            }
        }
        Ok(retired)
    }
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, KeyringError> {
    serde_json::to_vec(value).map_err(|e| KeyringError::Keys(e.to_string()))
}

/// A new key `id`, sealed under the key-encryption key: its store key and record.
fn seal_new_key(kek: &Keyring, rng: &dyn Rng, id: u32) -> Result<(String, Vec<u8>), KeyringError> {
    let key = AeadKey::generate(KeyId(id), rng).map_err(|e| KeyringError::Keys(e.to_string()))?;
    let name = key_name(id);
    let sealed = kek
        .seal(key.material().expose(), name.as_bytes(), rng)
        .map_err(|e| KeyringError::Keys(e.to_string()))?;
    let record = serde_json::to_vec(&SealedKey {
        sealed: URL_SAFE_NO_PAD.encode(sealed),
        rotated_out_at: None,
    })
    .map_err(|e| KeyringError::Keys(e.to_string()))?;
    Ok((name, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podiam_crypto::SeededRng;
    use podiam_store::MemoryStore;
    use podiam_types::FixedClock;

    async fn keys(store: Arc<dyn Store>, clock: Arc<FixedClock>) -> SessionKeys {
        let kek = Arc::new(Keyring::new(
            AeadKey::from_bytes(KeyId(0), &[9; 32]).unwrap(),
        ));
        SessionKeys::open(store, kek, Arc::new(SeededRng::new(b"keys")), clock)
            .await
            .unwrap()
    }

    fn ids(keys: &SessionKeys) -> (Vec<u32>, u32) {
        let ring = Arc::clone(&keys.shared().read().unwrap());
        let mut ids: Vec<u32> = ring.ids().map(|k| k.0).collect();
        ids.sort_unstable();
        (ids, ring.current().0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rotation_reaches_every_replica_and_old_keys_retire_after_the_longest_session() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(FixedClock::new(
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        ));
        let a = keys(Arc::clone(&store), Arc::clone(&clock)).await;
        let b = keys(Arc::clone(&store), Arc::clone(&clock)).await;
        assert_eq!(ids(&a), (vec![1], 1));
        assert_eq!(
            ids(&b),
            (vec![1], 1),
            "the second replica loads the first's key"
        );

        let sealed_before = a
            .shared()
            .read()
            .unwrap()
            .seal(b"session", b"aad", &SeededRng::new(b"s"))
            .unwrap();
        let rotation = a.rotate().await.unwrap();
        assert_eq!((rotation.current, rotation.previous), (2, 1));
        assert_eq!(
            ids(&a),
            (vec![1, 2], 2),
            "read-your-writes on the rotating replica"
        );
        // The other replica follows through the watch.
        for _ in 0..100 {
            if ids(&b) == (vec![1, 2], 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(ids(&b), (vec![1, 2], 2));
        assert_eq!(
            b.shared()
                .read()
                .unwrap()
                .open(&sealed_before, b"aad")
                .unwrap(),
            b"session",
            "what the old key sealed still opens everywhere"
        );

        // Not before the longest session can have ended.
        clock.advance(time::Duration::hours(12));
        assert!(a.retire_expired().await.unwrap().is_empty());
        clock.advance(time::Duration::minutes(11));
        assert_eq!(a.retire_expired().await.unwrap(), vec![1]);
        assert_eq!(ids(&a), (vec![2], 2));
        assert!(b.retire_expired().await.unwrap().is_empty(), "retired once");
        for _ in 0..100 {
            if ids(&b) == (vec![2], 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(ids(&b), (vec![2], 2));
        assert!(
            b.shared()
                .read()
                .unwrap()
                .open(&sealed_before, b"aad")
                .is_err()
        );

        // Two rotations racing: one wins, the other is told to try again.
        let (x, y) = tokio::join!(a.rotate(), b.rotate());
        assert!(
            matches!(
                (&x, &y),
                (Ok(_), Err(KeyringError::Conflict))
                    | (Err(KeyringError::Conflict), Ok(_))
                    | (Ok(_), Ok(_))
            ),
            "{x:?} {y:?}"
        );
    }

    #[tokio::test]
    async fn another_key_encryption_key_cannot_open_the_keyring() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(FixedClock::new(time::OffsetDateTime::UNIX_EPOCH));
        keys(Arc::clone(&store), Arc::clone(&clock)).await;
        let other = Arc::new(Keyring::new(
            AeadKey::from_bytes(KeyId(0), &[1; 32]).unwrap(),
        ));
        let refused = SessionKeys::open(store, other, Arc::new(SeededRng::new(b"x")), clock).await;
        assert!(
            matches!(&refused, Err(KeyringError::Keys(m)) if m.contains("does not open with this key-encryption key")),
            "{refused:?}"
        );
    }
}
