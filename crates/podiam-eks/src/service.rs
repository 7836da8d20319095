//! Clusters and pod identity associations over the store.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLockReadGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{JwkSet, KeyKind, Keyring, Rng, SigningKey};
use podiam_oidc::TokenRequest;
use podiam_store::{Compare, Op, Replica, Store};
use podiam_types::Clock;
use time::OffsetDateTime;

use crate::model::{
    AssociationRecord, ClusterRecord, IssuerRecord, SealedKey, UPDATE_REQUESTS_KEPT, keys,
};
use crate::retries::{client_request, is_retry};
use crate::state::{AssociationEntry, ClusterEntry, EksState, issuer_key, key_aad};
use crate::upstream::Upstream;
use crate::validate;
use crate::{EksError, MAX_ASSOCIATIONS_PER_CLUSTER};

/// Where EKS runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksConfig {
    /// The 12-digit account id.
    pub account: String,
    /// `aws`.
    pub partition: String,
    /// The region in ARNs.
    pub region: String,
    /// Hosted issuers get `<base>/id/<32 hex>` unless a URL is given, e.g.
    /// `http://127.0.0.1:4599/oidc`.
    pub issuer_base: String,
}

/// Who issues a new cluster's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerChoice {
    /// podiam generates an RS256 key and signs; the URL defaults to one under `issuer_base`.
    Hosted {
        /// An explicit issuer URL, e.g. EKS's form so that trust policies work verbatim.
        url: Option<String>,
    },
    /// A real kube-apiserver signs.
    External {
        /// Its `--service-account-issuer`.
        url: String,
        /// Its JWKS, for apiservers the server cannot reach.
        jwks: Option<String>,
        /// A PEM bundle of CAs for fetching its discovery document.
        ca: Option<String>,
    },
}

/// What `CreateCluster` creates.
#[derive(Debug, Clone)]
pub struct NewCluster {
    /// The name.
    pub name: String,
    /// The cluster role (informational).
    pub role_arn: Option<String>,
    /// The Kubernetes version reported.
    pub version: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The token issuer.
    pub issuer: IssuerChoice,
    /// `clientRequestToken`: a retry with the same token and parameters answers the cluster
    /// the first call created.
    pub client_request_token: Option<String>,
}

/// What `CreatePodIdentityAssociation` creates.
#[derive(Debug, Clone, Default)]
pub struct NewAssociation {
    /// The cluster.
    pub cluster: String,
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The role.
    pub role_arn: String,
    /// A role to chain into.
    pub target_role_arn: Option<String>,
    /// No session tags.
    pub disable_session_tags: bool,
    /// A session policy.
    pub policy: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// `clientRequestToken`: a retry with the same token and parameters answers the
    /// association the first call created.
    pub client_request_token: Option<String>,
}

/// What `UpdatePodIdentityAssociation` changes (`None`: unchanged; an empty string clears).
#[derive(Debug, Clone, Default)]
pub struct AssociationUpdate {
    /// The role.
    pub role_arn: Option<String>,
    /// The role to chain into.
    pub target_role_arn: Option<String>,
    /// No session tags.
    pub disable_session_tags: Option<bool>,
    /// The session policy.
    pub policy: Option<String>,
    /// `clientRequestToken`: a retry with the same token and parameters answers the
    /// association without changing it again.
    pub client_request_token: Option<String>,
}

/// EKS over a store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Eks {
    pub(crate) replica: Replica<EksState>,
    kek: Arc<Keyring>,
    rng: Arc<dyn Rng>,
    clock: Arc<dyn Clock>,
    config: Arc<EksConfig>,
    upstream: Option<Upstream>,
}

const INDEX_SA: &str = "eks/index/service-account/";
const INDEX_ISSUER: &str = "eks/index/issuer/";

fn sa_index(cluster: &str, namespace: &str, service_account: &str) -> String {
    format!("{INDEX_SA}{cluster}/{namespace}/{service_account}")
}

fn issuer_index(url: &str) -> String {
    format!("{INDEX_ISSUER}{}", issuer_key(url))
}

/// How long a rotated-out issuer key stays published: the longest token podiam mints (48
/// hours) plus clock skew.
pub const ISSUER_KEY_RETIRE_AFTER: std::time::Duration =
    std::time::Duration::from_secs(48 * 3600 + 10 * 60);

fn retire_after_secs() -> i64 {
    i64::try_from(ISSUER_KEY_RETIRE_AFTER.as_secs()).unwrap_or(i64::MAX)
}

/// Drops rotated-out keys older than the retirement delay (never the current, last one).
fn retire(keys: &mut Vec<SealedKey>, now: i64) {
    let Some(current) = keys.last().map(|k| k.kid.clone()) else {
        return;
    };
    keys.retain(|k| {
        k.kid == current
            || k.rotated_out_at
                .is_none_or(|out| now.saturating_sub(out) <= retire_after_secs())
    });
}

/// The outcome of [`Eks::rotate_issuer_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRotation {
    /// The key id that signs new tokens.
    pub current: String,
    /// The key id that did; published until `retire_at`.
    pub previous: String,
    /// When the previous key is dropped (unix seconds).
    pub retire_at: i64,
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, EksError> {
    serde_json::to_vec(value).map_err(|e| EksError::Crypto(e.to_string()))
}

/// A page of names and the token for the next one.
fn page<T: Clone>(
    items: Vec<(String, T)>,
    next: Option<&str>,
    max: usize,
) -> (Vec<T>, Option<String>) {
    let after = next
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let mut out = Vec::new();
    let mut last = None;
    let mut more = false;
    for (key, item) in items
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
    {
        if out.len() == max {
            more = true;
            break;
        }
        last = Some(key);
        out.push(item);
    }
    let token = if more {
        last.map(|k| URL_SAFE_NO_PAD.encode(k))
    } else {
        None
    };
    (out, token)
}

impl Eks {
    /// Loads EKS from `store` and follows it. `kek` seals the hosted issuers' keys.
    pub async fn open(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        rng: Arc<dyn Rng>,
        clock: Arc<dyn Clock>,
        config: EksConfig,
    ) -> Result<Self, EksError> {
        let replica = Replica::open(store, keys::ROOT, EksState::new(Arc::clone(&kek))).await?;
        Ok(Self {
            replica,
            kek,
            rng,
            clock,
            config: Arc::new(config),
            upstream: None,
        })
    }

    /// Roles in `upstream`'s accounts are real AWS roles, assumed through it.
    #[must_use]
    pub fn with_upstream(mut self, upstream: Upstream) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// The upstream accounts and how AWS is asked, when any are configured.
    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_ref()
    }

    /// The state, for reads. Do not hold it across an `await`.
    pub fn state(&self) -> RwLockReadGuard<'_, EksState> {
        self.replica.view()
    }

    /// The configuration.
    pub fn config(&self) -> &EksConfig {
        &self.config
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn rng(&self) -> &dyn Rng {
        self.rng.as_ref()
    }

    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub fn cluster_arn(&self, name: &str) -> String {
        let c = &self.config;
        format!(
            "arn:{}:eks:{}:{}:cluster/{name}",
            c.partition, c.region, c.account
        )
    }

    /// `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`.
    pub fn association_arn(&self, cluster: &str, id: &str) -> String {
        let c = &self.config;
        format!(
            "arn:{}:eks:{}:{}:podidentityassociation/{cluster}/{id}",
            c.partition, c.region, c.account
        )
    }

    fn not_found(name: &str) -> EksError {
        EksError::NotFound(format!("No cluster found for name: {name}."))
    }

    /// `CreateCluster`. With a `clientRequestToken` already used for the same parameters it
    /// answers the cluster that call created (a retry whose answer was lost), and with other
    /// parameters it fails with `InvalidRequest`.
    pub async fn create_cluster(&self, new: NewCluster) -> Result<Arc<ClusterEntry>, EksError> {
        validate::cluster_name(&new.name)?;
        validate::tags(&new.tags)?;
        let request = client_request(new.client_request_token.as_deref(), "CreateCluster", || {
            let issuer = match &new.issuer {
                IssuerChoice::Hosted { url } => serde_json::json!({ "kind": "hosted", "url": url }),
                IssuerChoice::External { url, jwks, ca } => {
                    serde_json::json!({ "kind": "external", "url": url, "jwks": jwks, "ca": ca })
                }
            };
            serde_json::json!({
                "name": new.name,
                "roleArn": new.role_arn,
                "version": new.version,
                "tags": new.tags,
                "issuer": issuer,
            })
        })?;
        // Before making a key: a retry creates nothing.
        if let Some(request) = &request
            && let Some(done) = self.replayed_cluster(request).await?
        {
            return Ok(done);
        }
        let issuer = match new.issuer {
            IssuerChoice::Hosted { url } => {
                let url = match url {
                    Some(url) => url,
                    None => format!(
                        "{}/id/{}",
                        self.config.issuer_base.trim_end_matches('/'),
                        validate::random_hex(32, self.rng())?
                    ),
                };
                // podiam mints these tokens, so their `iss` is the canonical form.
                let url = validate::issuer_url(&url)?.to_string();
                let key = SigningKey::generate(KeyKind::Rsa2048)
                    .map_err(|e| EksError::Crypto(e.to_string()))?;
                IssuerRecord::Hosted {
                    keys: vec![self.seal(&new.name, &key)?],
                    url,
                }
            }
            IssuerChoice::External { url, jwks, ca } => {
                if let Some(pem) = &ca
                    && !pem.contains("-----BEGIN CERTIFICATE-----")
                {
                    return Err(EksError::InvalidParameter(
                        "The CA bundle has no PEM certificate.".to_owned(),
                    ));
                }
                validate::issuer_url(&url)?;
                if let Some(text) = &jwks {
                    let parsed = JwkSet::parse(text).map_err(|e| {
                        EksError::InvalidParameter(format!("The JWKS is not valid: {e}"))
                    })?;
                    if parsed.keys.is_empty() {
                        return Err(EksError::InvalidParameter(
                            "The JWKS has no keys.".to_owned(),
                        ));
                    }
                }
                IssuerRecord::External { url, jwks, ca }
            }
        };
        let record = ClusterRecord {
            name: new.name.clone(),
            role_arn: new.role_arn,
            version: new.version.unwrap_or_else(|| "1.33".to_owned()),
            created: self.now().unix_timestamp(),
            tags: new.tags,
            issuer,
            create_request: request.clone(),
        };
        let key = keys::cluster(&new.name);
        let index = issuer_index(record.issuer.url());
        let mut compares = vec![Compare::Absent(key.clone()), Compare::Absent(index.clone())];
        let mut ops = vec![
            Op::Put(key, encode(&record)?),
            Op::Put(index.clone(), new.name.clone().into_bytes()),
        ];
        if let Some(request) = &request {
            // The token is claimed with the cluster: one request per token, even in a race.
            let claim = keys::cluster_token(&request.token);
            compares.push(Compare::Absent(claim.clone()));
            ops.push(Op::Put(claim, new.name.clone().into_bytes()));
        }
        for _ in 0..3 {
            if self.replica.commit(&compares, &ops).await?.is_some() {
                return self
                    .state()
                    .cluster(&new.name)
                    .ok_or_else(|| Self::not_found(&new.name));
            }
            // A concurrent copy of this request may have won: answer what it created.
            if let Some(request) = &request
                && let Some(done) = self.replayed_cluster(request).await?
            {
                return Ok(done);
            }
            if self.replica.get(&keys::cluster(&new.name)).await?.is_some() {
                return Err(EksError::InUse(format!(
                    "Cluster already exists with name: {}",
                    new.name
                )));
            }
            if self.replica.get(&index).await?.is_some() {
                return Err(EksError::InUse(format!(
                    "Another cluster already uses the issuer {}",
                    record.issuer.url()
                )));
            }
            // Only a stale token claim was in the way, and it is gone now: try again.
        }
        Err(EksError::InUse(format!(
            "Cluster {} is being created by another request; try again.",
            new.name
        )))
    }

    fn seal(&self, cluster: &str, key: &SigningKey) -> Result<SealedKey, EksError> {
        let pem = key.to_pkcs8_pem();
        let sealed = self
            .kek
            .seal(
                pem.expose().as_bytes(),
                &key_aad(cluster, key.kid()),
                self.rng(),
            )
            .map_err(|e| EksError::Crypto(e.to_string()))?;
        Ok(SealedKey {
            kid: key.kid().to_owned(),
            sealed: URL_SAFE_NO_PAD.encode(sealed),
            rotated_out_at: None,
        })
    }

    /// A new signing key for a hosted issuer: it signs new tokens from now on, on every
    /// replica; the previous one stays in the JWKS until the longest token it can have signed
    /// has expired ([`ISSUER_KEY_RETIRE_AFTER`]); keys past that are dropped now.
    pub async fn rotate_issuer_key(&self, cluster: &str) -> Result<IssuerRotation, EksError> {
        let key =
            SigningKey::generate(KeyKind::Rsa2048).map_err(|e| EksError::Crypto(e.to_string()))?;
        let sealed = self.seal(cluster, &key)?;
        let now = self.now().unix_timestamp();
        let mut rotation = None;
        self.update_hosted_keys(cluster, |keys| {
            let previous = keys.last().map(|k| k.kid.clone()).unwrap_or_default();
            if let Some(last) = keys.last_mut() {
                last.rotated_out_at = Some(now);
            }
            retire(keys, now);
            keys.push(sealed.clone());
            rotation = Some(IssuerRotation {
                current: sealed.kid.clone(),
                previous,
                retire_at: now.saturating_add(retire_after_secs()),
            });
            true
        })
        .await?;
        rotation.ok_or_else(|| EksError::InvalidRequest("the rotation did not happen".to_owned()))
    }

    /// Drops the keys of a hosted issuer rotated out longer than
    /// [`ISSUER_KEY_RETIRE_AFTER`] ago; returns how many.
    pub async fn retire_issuer_keys(&self, cluster: &str) -> Result<usize, EksError> {
        let now = self.now().unix_timestamp();
        let mut dropped = 0;
        self.update_hosted_keys(cluster, |keys| {
            let before = keys.len();
            retire(keys, now);
            dropped = before - keys.len();
            dropped > 0
        })
        .await?;
        Ok(dropped)
    }

    /// The clusters with a hosted issuer.
    pub fn hosted_clusters(&self) -> Vec<String> {
        self.state()
            .clusters
            .values()
            .filter(|c| matches!(c.record.issuer, IssuerRecord::Hosted { .. }))
            .map(|c| c.record.name.clone())
            .collect()
    }

    /// Read-modify-write of a hosted issuer's keys with compare-and-swap; `change` returns
    /// whether it changed anything.
    async fn update_hosted_keys(
        &self,
        cluster: &str,
        mut change: impl FnMut(&mut Vec<SealedKey>) -> bool,
    ) -> Result<(), EksError> {
        let key = keys::cluster(cluster);
        for _ in 0..5 {
            let entry = self
                .replica
                .get(&key)
                .await?
                .ok_or_else(|| Self::not_found(cluster))?;
            let mut record: ClusterRecord = serde_json::from_slice(&entry.value)
                .map_err(|e| EksError::Crypto(format!("{key}: {e}")))?;
            let IssuerRecord::Hosted { keys, .. } = &mut record.issuer else {
                return Err(EksError::InvalidRequest(format!(
                    "The issuer of cluster {cluster} is external: rotate its keys where they are kept, then upload the new JWKS."
                )));
            };
            if !change(keys) {
                return Ok(());
            }
            if self
                .replica
                .commit(
                    &[Compare::ModRevision(key.clone(), entry.mod_revision)],
                    &[Op::Put(key.clone(), encode(&record)?)],
                )
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(EksError::InUse(format!(
            "The keys of cluster {cluster} are being changed by another request; try again."
        )))
    }

    /// `DescribeCluster`.
    pub fn describe_cluster(&self, name: &str) -> Result<Arc<ClusterEntry>, EksError> {
        self.state()
            .cluster(name)
            .ok_or_else(|| Self::not_found(name))
    }

    /// `ListClusters`: names in order, a page at a time.
    pub fn list_clusters(&self, next: Option<&str>, max: usize) -> (Vec<String>, Option<String>) {
        let names: Vec<(String, String)> = self
            .state()
            .clusters
            .keys()
            .map(|k| (k.clone(), k.clone()))
            .collect();
        page(names, next, max)
    }

    /// `DeleteCluster`, with its associations.
    pub async fn delete_cluster(&self, name: &str) -> Result<Arc<ClusterEntry>, EksError> {
        let cluster = self.describe_cluster(name)?;
        let prefix = keys::associations_of(name);
        let mut ops = vec![
            Op::Delete(keys::cluster(name)),
            Op::Delete(issuer_index(cluster.record.issuer.url())),
        ];
        if let Some(request) = &cluster.record.create_request {
            ops.push(Op::Delete(keys::cluster_token(&request.token)));
        }
        let mut after: Option<String> = None;
        loop {
            let listed = self
                .replica
                .store()
                .list(&prefix, after.as_deref(), 500)
                .await?;
            for entry in &listed.entries {
                if let Ok(record) = serde_json::from_slice::<AssociationRecord>(&entry.value) {
                    ops.push(Op::Delete(sa_index(
                        &record.cluster,
                        &record.namespace,
                        &record.service_account,
                    )));
                    if let Some(request) = &record.create_request {
                        ops.push(Op::Delete(keys::association_token(name, &request.token)));
                    }
                }
                ops.push(Op::Delete(entry.key.clone()));
            }
            after = listed.entries.last().map(|e| e.key.clone());
            if !listed.more {
                break;
            }
        }
        self.replica.commit(&[], &ops).await?;
        Ok(cluster)
    }

    /// Mints a service-account token from a hosted issuer (`podiam cluster token`).
    pub fn mint_token(&self, cluster: &str, request: &TokenRequest) -> Result<String, EksError> {
        let entry = self.describe_cluster(cluster)?;
        let signer = entry.signer.as_ref().ok_or_else(|| {
            EksError::InvalidRequest(format!(
                "Cluster {cluster} has an external issuer; its tokens come from its kube-apiserver."
            ))
        })?;
        signer
            .mint(request, self.now(), self.rng())
            .map_err(|e| EksError::InvalidParameter(e.to_string()))
    }

    /// `CreatePodIdentityAssociation`. With a `clientRequestToken` already used in this
    /// cluster for the same parameters it answers the association that call created; with
    /// other parameters (another service account, another role…) it fails with
    /// `InvalidRequest`, never answering another request's association.
    pub async fn create_association(
        &self,
        new: NewAssociation,
    ) -> Result<Arc<AssociationEntry>, EksError> {
        self.describe_cluster(&new.cluster)?;
        validate::namespace(&new.namespace)?;
        validate::service_account(&new.service_account)?;
        validate::role_arn(&new.role_arn, "roleArn")?;
        if let Some(target) = &new.target_role_arn {
            validate::role_arn(target, "targetRoleArn")?;
        }
        validate::tags(&new.tags)?;
        if let Some(policy) = &new.policy {
            validate::session_policy(policy)?;
        }
        validate::policy_needs_untagged_sessions(new.policy.as_deref(), new.disable_session_tags)?;
        let request = client_request(
            new.client_request_token.as_deref(),
            "CreatePodIdentityAssociation",
            || {
                serde_json::json!({
                    "clusterName": new.cluster,
                    "namespace": new.namespace,
                    "serviceAccount": new.service_account,
                    "roleArn": new.role_arn,
                    "targetRoleArn": new.target_role_arn,
                    "disableSessionTags": new.disable_session_tags,
                    "policy": new.policy,
                    "tags": new.tags,
                })
            },
        )?;
        // Before the quota: the association a retry answers is already counted.
        if let Some(request) = &request
            && let Some(done) = self.replayed_association(&new.cluster, request).await?
        {
            return Ok(done);
        }
        if self.state().association_count(&new.cluster) >= MAX_ASSOCIATIONS_PER_CLUSTER {
            return Err(EksError::LimitExceeded(format!(
                "A cluster has at most {MAX_ASSOCIATIONS_PER_CLUSTER} pod identity associations."
            )));
        }
        let id = validate::association_id(self.rng())?;
        let now = self.now().unix_timestamp();
        let record = AssociationRecord {
            id: id.clone(),
            cluster: new.cluster.clone(),
            namespace: new.namespace.clone(),
            service_account: new.service_account.clone(),
            role_arn: new.role_arn,
            target_role_arn: new.target_role_arn,
            disable_session_tags: new.disable_session_tags,
            policy: new.policy,
            external_id: None,
            tags: new.tags,
            created: now,
            modified: now,
            create_request: request.clone(),
            update_requests: Vec::new(),
        };
        let index = sa_index(&new.cluster, &new.namespace, &new.service_account);
        let key = keys::association(&new.cluster, &id);
        let mut ops = vec![
            Op::Put(index.clone(), id.clone().into_bytes()),
            Op::Put(key.clone(), encode(&record)?),
        ];
        let mut compares = vec![Compare::Absent(index.clone()), Compare::Absent(key)];
        if let Some(request) = &request {
            // The token is claimed with the association: one request per token, even in a race.
            let claim = keys::association_token(&new.cluster, &request.token);
            compares.push(Compare::Absent(claim.clone()));
            ops.push(Op::Put(claim, id.clone().into_bytes()));
        }
        let cluster_key = keys::cluster(&new.cluster);
        for _ in 0..3 {
            // The cluster must still be there, unchanged, when the association lands.
            let cluster_revision = self
                .replica
                .get(&cluster_key)
                .await?
                .ok_or_else(|| Self::not_found(&new.cluster))?
                .mod_revision;
            let mut guarded = compares.clone();
            guarded.push(Compare::ModRevision(cluster_key.clone(), cluster_revision));
            if self.replica.commit(&guarded, &ops).await?.is_some() {
                return self.describe_association(&new.cluster, &id);
            }
            // A concurrent copy of this request may have won: answer what it created.
            if let Some(request) = &request
                && let Some(done) = self.replayed_association(&new.cluster, request).await?
            {
                return Ok(done);
            }
            if let Some(existing) = self.replica.get(&index).await? {
                return Err(EksError::InUse(format!(
                    "Association already exists: {}",
                    String::from_utf8_lossy(&existing.value)
                )));
            }
            // The cluster changed (a key rotation) or a stale token claim was dropped.
        }
        Err(EksError::InvalidRequest(
            "The cluster changed while the association was being created; try again.".to_owned(),
        ))
    }

    /// The entry of a record read from the store: the replica's, unless it lags behind.
    pub(crate) fn association_entry(&self, record: AssociationRecord) -> Arc<AssociationEntry> {
        self.state()
            .association(&record.cluster, &record.id)
            .filter(|a| a.record == record)
            .unwrap_or_else(|| Arc::new(AssociationEntry::read(record)))
    }

    /// `DescribePodIdentityAssociation`.
    pub fn describe_association(
        &self,
        cluster: &str,
        id: &str,
    ) -> Result<Arc<AssociationEntry>, EksError> {
        self.describe_cluster(cluster)?;
        self.state()
            .association(cluster, id)
            .ok_or_else(|| EksError::NotFound("No Pod Identity Association found".to_owned()))
    }

    /// `ListPodIdentityAssociations`, filtered by namespace and service account.
    pub fn list_associations(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        service_account: Option<&str>,
        next: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Arc<AssociationEntry>>, Option<String>), EksError> {
        self.describe_cluster(cluster)?;
        let after = next
            .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok());
        let state = self.state();
        let mut kept = state
            .associations_of_after(cluster, after.as_deref())
            .filter(|a| namespace.is_none_or(|n| a.record.namespace == n))
            .filter(|a| service_account.is_none_or(|s| a.record.service_account == s));
        let mut items = Vec::new();
        for association in kept.by_ref().take(max) {
            items.push(Arc::clone(association));
        }
        let more = kept.next().is_some();
        let token = items
            .last()
            .filter(|_| more)
            .map(|a| URL_SAFE_NO_PAD.encode(&a.record.id));
        Ok((items, token))
    }

    /// `UpdatePodIdentityAssociation`. A `clientRequestToken` among the association's recent
    /// updates is a retry: the association is answered as it is, not changed again (nor its
    /// `modified` time); the same token with other parameters fails with `InvalidRequest`.
    pub async fn update_association(
        &self,
        cluster: &str,
        id: &str,
        update: AssociationUpdate,
    ) -> Result<Arc<AssociationEntry>, EksError> {
        self.describe_association(cluster, id)?;
        if let Some(role) = &update.role_arn {
            validate::role_arn(role, "roleArn")?;
        }
        if let Some(target) = update.target_role_arn.as_deref().filter(|t| !t.is_empty()) {
            validate::role_arn(target, "targetRoleArn")?;
        }
        if let Some(policy) = update.policy.as_deref().filter(|p| !p.is_empty()) {
            validate::session_policy(policy)?;
        }
        let request = client_request(
            update.client_request_token.as_deref(),
            "UpdatePodIdentityAssociation",
            || {
                serde_json::json!({
                    "clusterName": cluster,
                    "associationId": id,
                    "roleArn": update.role_arn,
                    "targetRoleArn": update.target_role_arn,
                    "disableSessionTags": update.disable_session_tags,
                    "policy": update.policy,
                })
            },
        )?;
        let key = keys::association(cluster, id);
        for _ in 0..5 {
            let Some(entry) = self.replica.get(&key).await? else {
                return Err(EksError::NotFound(
                    "No Pod Identity Association found".to_owned(),
                ));
            };
            let mut record: AssociationRecord = serde_json::from_slice(&entry.value)
                .map_err(|e| EksError::Crypto(e.to_string()))?;
            if let Some(request) = &request {
                let mut retry = false;
                for seen in &record.update_requests {
                    retry |= is_retry(Some(seen), request)?;
                }
                if retry {
                    return Ok(self.association_entry(record));
                }
            }
            if let Some(role) = &update.role_arn {
                record.role_arn.clone_from(role);
            }
            if let Some(target) = &update.target_role_arn {
                record.target_role_arn = (!target.is_empty()).then(|| target.clone());
            }
            if let Some(disable) = update.disable_session_tags {
                record.disable_session_tags = disable;
            }
            if let Some(policy) = &update.policy {
                record.policy = (!policy.is_empty()).then(|| policy.clone());
            }
            validate::policy_needs_untagged_sessions(
                record.policy.as_deref(),
                record.disable_session_tags,
            )?;
            record.modified = self.now().unix_timestamp();
            if let Some(request) = &request {
                record.update_requests.push(request.clone());
                let excess = record
                    .update_requests
                    .len()
                    .saturating_sub(UPDATE_REQUESTS_KEPT);
                record.update_requests.drain(..excess);
            }
            let compares = [Compare::ModRevision(key.clone(), entry.mod_revision)];
            let ops = [Op::Put(key.clone(), encode(&record)?)];
            if self.replica.commit(&compares, &ops).await?.is_some() {
                return self.describe_association(cluster, id);
            }
        }
        Err(EksError::InvalidRequest(
            "Another request changed the association at the same time; try again.".to_owned(),
        ))
    }

    /// `DeletePodIdentityAssociation`: returns what was deleted.
    pub async fn delete_association(
        &self,
        cluster: &str,
        id: &str,
    ) -> Result<Arc<AssociationEntry>, EksError> {
        let existing = self.describe_association(cluster, id)?;
        let r = &existing.record;
        let mut ops = vec![
            Op::Delete(keys::association(cluster, id)),
            Op::Delete(sa_index(&r.cluster, &r.namespace, &r.service_account)),
        ];
        if let Some(request) = &r.create_request {
            ops.push(Op::Delete(keys::association_token(cluster, &request.token)));
        }
        let revision = self
            .replica
            .get(&keys::association(cluster, id))
            .await?
            .map(|e| e.mod_revision);
        let Some(revision) = revision else {
            return Err(EksError::NotFound(
                "No Pod Identity Association found".to_owned(),
            ));
        };
        let compares = [Compare::ModRevision(
            keys::association(cluster, id),
            revision,
        )];
        if self.replica.commit(&compares, &ops).await?.is_none() {
            return Err(EksError::NotFound(
                "No Pod Identity Association found".to_owned(),
            ));
        }
        Ok(existing)
    }
}

#[cfg(test)]
mod tests {
    use super::{SealedKey, retire, retire_after_secs};

    fn key(kid: &str, rotated_out_at: Option<i64>) -> SealedKey {
        SealedKey {
            kid: kid.to_owned(),
            sealed: String::new(),
            rotated_out_at,
        }
    }

    #[test]
    fn rotated_out_keys_stay_published_until_the_longest_token_expired() {
        let now = 1_000_000;
        let window = retire_after_secs();
        let mut keys = vec![
            key("old", Some(now - window - 1)),
            key("recent", Some(now - window)),
            key("current", None),
        ];
        retire(&mut keys, now);
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["recent", "current"]);
        // The current key is never dropped, whatever its record says.
        let mut only = vec![key("current", Some(0))];
        retire(&mut only, now);
        assert_eq!(only.len(), 1);
    }
}
