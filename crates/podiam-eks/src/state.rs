//! Everything EKS holds, in memory, indexed for the hot paths: an association by service
//! account, a hosted issuer by URL.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{Keyring, Secret, SigningKey, VerifyingKey};
use podiam_oidc::{Issuer, KeySet};
use serde::de::DeserializeOwned;

use crate::model::{AssociationRecord, ClusterRecord, IssuerRecord, keys};

/// A cluster with its issuer's keys opened.
#[derive(Debug)]
pub struct ClusterEntry {
    /// The stored record.
    pub record: ClusterRecord,
    /// For a hosted issuer: the current signing key, ready to mint.
    pub signer: Option<Arc<Issuer>>,
    /// The keys tokens are verified with: every hosted key, or an uploaded JWKS.
    pub keys: Option<KeySet>,
    /// The record's store revision (0 for an entry not taken from the view).
    revision: u64,
}

/// An association.
#[derive(Debug)]
pub struct AssociationEntry {
    /// The stored record.
    pub record: AssociationRecord,
    /// The record's store revision (0 for an entry not taken from the view).
    revision: u64,
}

impl AssociationEntry {
    /// An entry for a record read from the store rather than from the view.
    pub(crate) fn read(record: AssociationRecord) -> Self {
        Self {
            record,
            revision: 0,
        }
    }
}

/// `(cluster, id)`: how associations are kept, in order, and found.
trait ClusterIdKey {
    fn parts(&self) -> (&str, &str);
}

impl ClusterIdKey for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        *self
    }
}

impl PartialEq for dyn ClusterIdKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn ClusterIdKey + '_ {}

impl PartialOrd for dyn ClusterIdKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn ClusterIdKey + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// An association ordered by its record's `(cluster, id)`, without copies of those strings as
/// a map key (two more allocations an association).
#[derive(Debug)]
struct ByClusterId(Arc<AssociationEntry>);

impl ClusterIdKey for ByClusterId {
    fn parts(&self) -> (&str, &str) {
        (&self.0.record.cluster, &self.0.record.id)
    }
}

impl PartialEq for ByClusterId {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for ByClusterId {}

impl PartialOrd for ByClusterId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByClusterId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The same order as the borrowed form's.
        self.parts().cmp(&other.parts())
    }
}

impl<'a> Borrow<dyn ClusterIdKey + 'a> for ByClusterId {
    fn borrow(&self) -> &(dyn ClusterIdKey + 'a) {
        self
    }
}

/// `(cluster, namespace, service account)`: how a pod's association is found.
trait ServiceAccountKey {
    fn parts(&self) -> (&str, &str, &str);
}

impl ServiceAccountKey for (&str, &str, &str) {
    fn parts(&self) -> (&str, &str, &str) {
        *self
    }
}

impl PartialEq for dyn ServiceAccountKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn ServiceAccountKey + '_ {}

impl Hash for dyn ServiceAccountKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

/// An association in the service-account index, found by its record's
/// `(cluster, namespace, service account)` without copies of those strings: the index as a map
/// of copied tuples cost 342 bytes an association (BENCHMARKS.md, "Store scale").
#[derive(Debug)]
struct ByServiceAccount(Arc<AssociationEntry>);

impl ServiceAccountKey for ByServiceAccount {
    fn parts(&self) -> (&str, &str, &str) {
        let r = &self.0.record;
        (&r.cluster, &r.namespace, &r.service_account)
    }
}

impl PartialEq for ByServiceAccount {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for ByServiceAccount {}

impl Hash for ByServiceAccount {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The same hash as the borrowed form's.
        self.parts().hash(state);
    }
}

impl<'a> Borrow<dyn ServiceAccountKey + 'a> for ByServiceAccount {
    fn borrow(&self) -> &(dyn ServiceAccountKey + 'a) {
        self
    }
}

/// The EKS state of one account and region.
#[derive(Debug)]
pub struct EksState {
    pub(crate) clusters: BTreeMap<String, Arc<ClusterEntry>>,
    /// `(cluster, id)`.
    associations: BTreeSet<ByClusterId>,
    /// By `(cluster, namespace, service account)`.
    by_service_account: HashSet<ByServiceAccount>,
    /// Issuer URL without its scheme → cluster.
    issuers: HashMap<String, String>,
    kek: Arc<Keyring>,
    /// The revision of each key whose latest change left no entry (a delete, a record that
    /// does not decode). With the entries' own revisions it gives the newest revision applied
    /// per key, so that a late event never undoes a newer one; a map of every key's revision
    /// cost 120 bytes an association (BENCHMARKS.md, "Store scale").
    unheld: HashMap<String, u64>,
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(key, error = %e, "a stored EKS record does not decode; it is ignored");
            None
        }
    }
}

/// The URL as IAM names providers: canonical, without the scheme. Any spelling of one issuer
/// gives the same key; a URL that does not parse (never stored since validation) keys as itself.
pub(crate) fn issuer_key(url: &str) -> String {
    url.parse::<podiam_types::IssuerUrl>()
        .map_or_else(|_| url.to_owned(), |u| u.key().to_owned())
}

/// The AAD a hosted key is sealed with.
pub(crate) fn key_aad(cluster: &str, kid: &str) -> Vec<u8> {
    format!("{}#{kid}", keys::cluster(cluster)).into_bytes()
}

impl EksState {
    /// An empty state; `kek` opens the hosted issuers' keys.
    pub fn new(kek: Arc<Keyring>) -> Self {
        Self {
            clusters: BTreeMap::new(),
            associations: BTreeSet::new(),
            by_service_account: HashSet::new(),
            issuers: HashMap::new(),
            kek,
            unheld: HashMap::new(),
        }
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterEntry>> {
        self.clusters.get(name).cloned()
    }

    /// Every cluster, by name.
    pub fn clusters(&self) -> impl Iterator<Item = &Arc<ClusterEntry>> {
        self.clusters.values()
    }

    /// Every association, by cluster and id.
    pub fn associations(&self) -> impl Iterator<Item = &Arc<AssociationEntry>> {
        self.associations.iter().map(|a| &a.0)
    }

    /// An association by cluster and id.
    pub fn association(&self, cluster: &str, id: &str) -> Option<Arc<AssociationEntry>> {
        let key: &dyn ClusterIdKey = &(cluster, id);
        self.associations.get(key).map(|found| Arc::clone(&found.0))
    }

    /// The associations of a cluster, by id.
    pub fn associations_of<'a>(
        &'a self,
        cluster: &'a str,
    ) -> impl Iterator<Item = &'a Arc<AssociationEntry>> + 'a {
        self.associations_of_after(cluster, None)
    }

    /// A cluster's associations in id order, from the first id after `after` (a page of a
    /// listing starts there without passing the ones before it).
    pub fn associations_of_after<'a>(
        &'a self,
        cluster: &'a str,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<AssociationEntry>> + 'a {
        let start: &dyn ClusterIdKey = &(cluster, after.unwrap_or(""));
        let lower = if after.is_some() {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        self.associations
            .range::<dyn ClusterIdKey, _>((lower, Bound::Unbounded))
            .take_while(move |a| a.0.record.cluster == cluster)
            .map(|a| &a.0)
    }

    /// The association of a service account.
    pub fn association_for(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Option<Arc<AssociationEntry>> {
        let key: &dyn ServiceAccountKey = &(cluster, namespace, service_account);
        self.by_service_account
            .get(key)
            .map(|found| Arc::clone(&found.0))
    }

    /// The cluster whose token issuer has this URL (any scheme).
    pub fn issuer_cluster(&self, issuer: &str) -> Option<Arc<ClusterEntry>> {
        let cluster = self.issuers.get(&issuer_key(issuer))?;
        self.clusters.get(cluster).cloned()
    }

    /// The keys stored for an issuer (a hosted issuer's, or an uploaded JWKS), by its URL:
    /// verification without any network fetch.
    pub fn stored_keys(&self, issuer: &str) -> Option<KeySet> {
        self.issuer_cluster(issuer)?.keys.clone()
    }

    /// How many associations a cluster has.
    pub fn association_count(&self, cluster: &str) -> usize {
        self.associations_of(cluster).count()
    }

    /// A cluster record with its issuer's keys opened.
    pub(crate) fn open_cluster(&self, record: ClusterRecord) -> ClusterEntry {
        let (signer, keys) = match &record.issuer {
            IssuerRecord::Hosted { url, keys } => {
                let mut set = KeySet::new();
                let mut current = None;
                for sealed in keys {
                    let opened = URL_SAFE_NO_PAD
                        .decode(&sealed.sealed)
                        .ok()
                        .and_then(|b| self.kek.open(&b, &key_aad(&record.name, &sealed.kid)).ok())
                        .and_then(|pem| String::from_utf8(pem).ok())
                        .map(Secret::new)
                        .and_then(|pem| SigningKey::from_pem(pem.expose()).ok());
                    match opened {
                        Some(key) => {
                            if let Ok(public) =
                                VerifyingKey::from_jwk(&key.verifying_key().to_jwk())
                            {
                                set.insert(public);
                            }
                            current = Some(key);
                        }
                        None => tracing::error!(
                            cluster = record.name,
                            kid = sealed.kid,
                            "a hosted issuer key does not open with this key-encryption key"
                        ),
                    }
                }
                let signer = current.and_then(|key| Issuer::new(url, key).ok().map(Arc::new));
                (signer, Some(set))
            }
            IssuerRecord::External { jwks, .. } => {
                let keys = jwks.as_deref().and_then(|text| {
                    let parsed = podiam_crypto::JwkSet::parse(text).ok()?;
                    let mut set = KeySet::new();
                    for jwk in &parsed.keys {
                        if let Ok(key) = VerifyingKey::from_jwk(jwk) {
                            set.insert(key);
                        }
                    }
                    Some(set)
                });
                (None, keys)
            }
        };
        ClusterEntry {
            record,
            signer,
            keys,
            revision: 0,
        }
    }

    /// The revision of the entry `key` holds, if any.
    fn held_revision(&self, key: &str) -> Option<u64> {
        if let Some(name) = key.strip_prefix(keys::CLUSTER) {
            self.clusters.get(name).map(|c| c.revision)
        } else {
            let (cluster, id) = key.strip_prefix(keys::ASSOCIATION)?.split_once('/')?;
            let key: &dyn ClusterIdKey = &(cluster, id);
            self.associations.get(key).map(|a| a.0.revision)
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(name) = key.strip_prefix(keys::CLUSTER) {
            if let Some(old) = self.clusters.remove(name) {
                self.issuers.remove(&issuer_key(old.record.issuer.url()));
            }
        } else if let Some(rest) = key.strip_prefix(keys::ASSOCIATION)
            && let Some((cluster, id)) = rest.split_once('/')
            && let Some(old) = self.associations.take(&(cluster, id) as &dyn ClusterIdKey)
        {
            let r = &old.0.record;
            let index: &dyn ServiceAccountKey = &(
                r.cluster.as_str(),
                r.namespace.as_str(),
                r.service_account.as_str(),
            );
            if self
                .by_service_account
                .get(index)
                .is_some_and(|current| current.0.record.id == r.id)
            {
                self.by_service_account.remove(index);
            }
        }
    }
}

impl podiam_store::View for EksState {
    fn clear(&mut self) {
        *self = Self::new(Arc::clone(&self.kek));
    }

    fn apply(&mut self, key: &str, value: Option<&[u8]>, revision: u64) {
        // The idempotency indexes (`eks/index/…`, two per association) change nothing here:
        // remembering their revisions cost 90 bytes a key (BENCHMARKS.md, "Store scale").
        if !key.starts_with(keys::CLUSTER) && !key.starts_with(keys::ASSOCIATION) {
            return;
        }
        let newest = self.held_revision(key).max(self.unheld.get(key).copied());
        if newest.is_some_and(|newest| newest >= revision) {
            return;
        }
        let Some(value) = value else {
            self.remove(key);
            self.unheld.insert(key.to_owned(), revision);
            return;
        };
        let held = if key.starts_with(keys::CLUSTER) {
            decode::<ClusterRecord>(key, value).map(|record| {
                self.remove(key);
                self.issuers
                    .insert(issuer_key(record.issuer.url()), record.name.clone());
                let entry = ClusterEntry {
                    revision,
                    ..self.open_cluster(record)
                };
                self.clusters
                    .insert(entry.record.name.clone(), Arc::new(entry));
            })
        } else {
            decode::<AssociationRecord>(key, value).map(|record| {
                self.remove(key);
                let entry = Arc::new(AssociationEntry { record, revision });
                self.by_service_account
                    .replace(ByServiceAccount(Arc::clone(&entry)));
                self.associations.replace(ByClusterId(entry));
            })
        };
        match held {
            Some(()) => {
                self.unheld.remove(key);
            }
            // A record that does not decode leaves no entry.
            None => {
                self.remove(key);
                self.unheld.insert(key.to_owned(), revision);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use podiam_crypto::{AeadKey, KeyId};
    use podiam_store::View as _;

    use super::*;

    #[test]
    fn keys_the_view_does_not_hold_are_not_remembered() {
        let kek = Keyring::new(AeadKey::from_bytes(KeyId(0), &[9; 32]).unwrap());
        let mut state = EksState::new(Arc::new(kek));
        state.apply("eks/index/token/association/x", Some(b"c/a-1"), 1);
        state.apply("eks/index/token/cluster/y", None, 2);
        assert!(state.unheld.is_empty());
        state.apply("eks/association/c/a-1", None, 3);
        assert_eq!(state.unheld.get("eks/association/c/a-1"), Some(&3));
    }

    fn association(id: &str, namespace: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "cluster": "c", "namespace": namespace, "service_account": "sa",
            "role_arn": "arn:aws:iam::000000000000:role/r", "created": 0, "modified": 0,
        }))
        .unwrap()
    }

    #[test]
    fn associations_are_found_by_service_account_and_late_events_are_ignored() {
        let kek = Keyring::new(AeadKey::from_bytes(KeyId(0), &[9; 32]).unwrap());
        let mut state = EksState::new(Arc::new(kek));
        state.apply("eks/association/c/a-1", Some(&association("a-1", "ns")), 5);
        let found = state.association_for("c", "ns", "sa").unwrap();
        assert_eq!(found.record.id, "a-1");
        assert!(state.association_for("c", "other", "sa").is_none());
        // An older change arriving late is ignored; the same revision too.
        state.apply("eks/association/c/a-1", None, 4);
        state.apply("eks/association/c/a-1", None, 5);
        assert!(state.association("c", "a-1").is_some());
        // Moved to another namespace: the index follows.
        state.apply("eks/association/c/a-1", Some(&association("a-1", "ns2")), 6);
        assert!(state.association_for("c", "ns", "sa").is_none());
        assert!(state.association_for("c", "ns2", "sa").is_some());
        // Deleted, then an older put arrives late.
        state.apply("eks/association/c/a-1", None, 8);
        state.apply("eks/association/c/a-1", Some(&association("a-1", "ns")), 7);
        assert!(state.association("c", "a-1").is_none());
        assert!(state.association_for("c", "ns", "sa").is_none());
        assert!(state.association_for("c", "ns2", "sa").is_none());
        // Another association of the same service account in its place.
        state.apply("eks/association/c/a-2", Some(&association("a-2", "ns")), 9);
        assert_eq!(
            state.association_for("c", "ns", "sa").unwrap().record.id,
            "a-2"
        );
        state.apply("eks/association/c/a-1", None, 10);
        assert_eq!(
            state.association_for("c", "ns", "sa").unwrap().record.id,
            "a-2"
        );
    }
}
