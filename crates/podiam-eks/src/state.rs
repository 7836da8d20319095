//! Everything EKS holds, in memory, indexed for the hot paths: an association by service
//! account, a hosted issuer by URL.

use std::collections::{BTreeMap, HashMap};
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
}

/// An association.
#[derive(Debug)]
pub struct AssociationEntry {
    /// The stored record.
    pub record: AssociationRecord,
}

/// The EKS state of one account and region.
#[derive(Debug)]
pub struct EksState {
    pub(crate) clusters: BTreeMap<String, Arc<ClusterEntry>>,
    /// `(cluster, id)`.
    pub(crate) associations: BTreeMap<(String, String), Arc<AssociationEntry>>,
    /// `(cluster, namespace, service account)` → id.
    by_service_account: HashMap<(String, String, String), String>,
    /// Issuer URL without its scheme → cluster.
    issuers: HashMap<String, String>,
    kek: Arc<Keyring>,
    seen: HashMap<String, u64>,
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
            associations: BTreeMap::new(),
            by_service_account: HashMap::new(),
            issuers: HashMap::new(),
            kek,
            seen: HashMap::new(),
        }
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterEntry>> {
        self.clusters.get(name).cloned()
    }

    /// An association by cluster and id.
    pub fn association(&self, cluster: &str, id: &str) -> Option<Arc<AssociationEntry>> {
        self.associations
            .get(&(cluster.to_owned(), id.to_owned()))
            .cloned()
    }

    /// The association of a service account.
    pub fn association_for(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Option<Arc<AssociationEntry>> {
        let id = self.by_service_account.get(&(
            cluster.to_owned(),
            namespace.to_owned(),
            service_account.to_owned(),
        ))?;
        self.association(cluster, id)
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
        self.associations
            .range((cluster.to_owned(), String::new())..)
            .take_while(|((c, _), _)| c == cluster)
            .count()
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
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(name) = key.strip_prefix(keys::CLUSTER) {
            if let Some(old) = self.clusters.remove(name) {
                self.issuers.remove(&issuer_key(old.record.issuer.url()));
            }
        } else if let Some(rest) = key.strip_prefix(keys::ASSOCIATION)
            && let Some((cluster, id)) = rest.split_once('/')
            && let Some(old) = self
                .associations
                .remove(&(cluster.to_owned(), id.to_owned()))
        {
            let r = &old.record;
            let index = (
                r.cluster.clone(),
                r.namespace.clone(),
                r.service_account.clone(),
            );
            if self.by_service_account.get(&index) == Some(&r.id) {
                self.by_service_account.remove(&index);
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
        if self.seen.get(key).is_some_and(|seen| *seen >= revision) {
            return;
        }
        self.seen.insert(key.to_owned(), revision);
        self.remove(key);
        let Some(value) = value else {
            return;
        };
        if key.starts_with(keys::CLUSTER) {
            if let Some(record) = decode::<ClusterRecord>(key, value) {
                self.issuers
                    .insert(issuer_key(record.issuer.url()), record.name.clone());
                let entry = self.open_cluster(record);
                self.clusters
                    .insert(entry.record.name.clone(), Arc::new(entry));
            }
        } else if key.starts_with(keys::ASSOCIATION)
            && let Some(record) = decode::<AssociationRecord>(key, value)
        {
            self.by_service_account.insert(
                (
                    record.cluster.clone(),
                    record.namespace.clone(),
                    record.service_account.clone(),
                ),
                record.id.clone(),
            );
            self.associations.insert(
                (record.cluster.clone(), record.id.clone()),
                Arc::new(AssociationEntry { record }),
            );
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
        assert!(state.seen.is_empty());
        state.apply("eks/association/c/a-1", None, 3);
        assert_eq!(state.seen.get("eks/association/c/a-1"), Some(&3));
    }
}
