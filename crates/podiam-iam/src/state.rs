//! The in-memory copy of IAM that every read and every authorization uses.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{Keyring, Secret};
use podiam_policy::Policy;
use serde::de::DeserializeOwned;

use crate::model::{AccessKeyRecord, PolicyRecord, ProviderRecord, RoleRecord, UserRecord, keys};

/// A user with its inline policies parsed.
#[derive(Debug)]
pub struct UserEntry {
    /// The stored record.
    pub record: UserRecord,
    /// The record's store revision.
    pub revision: u64,
    /// Inline policies, parsed.
    pub inline: Vec<Arc<Policy>>,
}

/// A role with its trust and inline policies parsed.
#[derive(Debug)]
pub struct RoleEntry {
    /// The stored record.
    pub record: RoleRecord,
    /// The record's store revision.
    pub revision: u64,
    /// The trust policy (`None` if the stored text no longer parses: trusts nobody).
    pub trust: Option<Arc<Policy>>,
    /// Inline policies, parsed.
    pub inline: Vec<Arc<Policy>>,
}

/// A managed policy with its default version parsed.
#[derive(Debug)]
pub struct PolicyEntry {
    /// The stored record.
    pub record: PolicyRecord,
    /// The record's store revision.
    pub revision: u64,
    /// The default version, parsed.
    pub default: Option<Arc<Policy>>,
}

/// An access key with its secret opened.
#[derive(Debug)]
pub struct KeyEntry {
    /// The stored record.
    pub record: AccessKeyRecord,
    /// The record's store revision.
    pub revision: u64,
    /// The secret (`None` if it cannot be opened with this key-encryption key).
    pub secret: Option<Secret<String>>,
}

/// An OIDC provider.
#[derive(Debug)]
pub struct ProviderEntry {
    /// The stored record.
    pub record: ProviderRecord,
    /// The record's store revision.
    pub revision: u64,
}

/// Everything IAM holds, indexed for reads.
#[derive(Debug)]
pub struct IamState {
    pub(crate) account: String,
    pub(crate) partition: String,
    pub(crate) users: BTreeMap<String, Arc<UserEntry>>,
    pub(crate) roles: BTreeMap<String, Arc<RoleEntry>>,
    pub(crate) policies: BTreeMap<String, Arc<PolicyEntry>>,
    pub(crate) keys: HashMap<String, Arc<KeyEntry>>,
    pub(crate) providers: BTreeMap<String, Arc<ProviderEntry>>,
    /// Opens the stored secrets of access keys.
    kek: Arc<Keyring>,
    /// The newest revision applied per key (deletes included), so a late event never undoes a
    /// newer one.
    seen: HashMap<String, u64>,
    /// Every parsed document, once per distinct text.
    documents: Documents,
}

/// A parsed document, found by its text.
#[derive(Debug)]
struct Interned(Arc<Policy>);

impl PartialEq for Interned {
    fn eq(&self, other: &Self) -> bool {
        self.0.text() == other.0.text()
    }
}

impl Eq for Interned {}

impl Hash for Interned {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.text().hash(state);
    }
}

impl Borrow<str> for Interned {
    fn borrow(&self) -> &str {
        self.0.text()
    }
}

/// Parsed documents shared by text: a fleet's roles mostly carry the same few documents (every
/// Pod Identity role has the same trust policy), and a parsed document costs several times its
/// text (BENCHMARKS.md, "Store scale").
#[derive(Debug, Default)]
struct Documents {
    parsed: HashSet<Interned>,
    /// Documents nobody else holds are dropped when the table reaches this size.
    prune_at: usize,
}

impl Documents {
    /// The parsed `text`, shared with every other holder of the same text.
    fn parse(&mut self, text: &str, what: &str) -> Option<Arc<Policy>> {
        if let Some(known) = self.parsed.get(text) {
            return Some(Arc::clone(&known.0));
        }
        match Policy::parse(text) {
            Ok(policy) => {
                let policy = Arc::new(policy);
                if self.parsed.len() >= self.prune_at {
                    self.parsed.retain(|p| Arc::strong_count(&p.0) > 1);
                    self.prune_at = (self.parsed.len() * 2).max(64);
                }
                self.parsed.insert(Interned(Arc::clone(&policy)));
                Some(policy)
            }
            Err(e) => {
                tracing::error!(error = %e, "a stored {what} policy no longer parses; it is ignored");
                None
            }
        }
    }

    fn parse_all<'a>(
        &mut self,
        texts: impl Iterator<Item = &'a String>,
        what: &str,
    ) -> Vec<Arc<Policy>> {
        texts.filter_map(|text| self.parse(text, what)).collect()
    }
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(key, error = %e, "a stored record does not decode; it is ignored");
            None
        }
    }
}

impl IamState {
    /// An empty state for an account; `kek` opens the stored secrets of access keys.
    pub fn new(account: &str, partition: &str, kek: Arc<Keyring>) -> Self {
        Self {
            kek,
            account: account.to_owned(),
            partition: partition.to_owned(),
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            policies: BTreeMap::new(),
            keys: HashMap::new(),
            providers: BTreeMap::new(),
            seen: HashMap::new(),
            documents: Documents::default(),
        }
    }

    /// Applies one stored change (a put with its value, or a delete) at `revision`.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>, revision: u64) {
        let kek = Arc::clone(&self.kek);
        if self.seen.get(key).is_some_and(|seen| *seen >= revision) {
            return;
        }
        self.seen.insert(key.to_owned(), revision);
        let Some(value) = value else {
            self.remove(key);
            return;
        };
        if let Some(name) = key.strip_prefix(keys::USER) {
            if let Some(record) = decode::<UserRecord>(key, value) {
                let inline = self
                    .documents
                    .parse_all(record.inline.values(), "user inline");
                self.users.insert(
                    name.to_owned(),
                    Arc::new(UserEntry {
                        record,
                        revision,
                        inline,
                    }),
                );
            }
        } else if let Some(name) = key.strip_prefix(keys::ROLE) {
            if let Some(record) = decode::<RoleRecord>(key, value) {
                let trust = self.documents.parse(&record.trust, "trust");
                let inline = self
                    .documents
                    .parse_all(record.inline.values(), "role inline");
                self.roles.insert(
                    name.to_owned(),
                    Arc::new(RoleEntry {
                        record,
                        revision,
                        trust,
                        inline,
                    }),
                );
            }
        } else if let Some(arn) = key.strip_prefix(keys::POLICY) {
            if let Some(record) = decode::<PolicyRecord>(key, value) {
                let default = record
                    .default_document()
                    .and_then(|d| self.documents.parse(d, "managed"));
                self.policies.insert(
                    arn.to_owned(),
                    Arc::new(PolicyEntry {
                        record,
                        revision,
                        default,
                    }),
                );
            }
        } else if let Some(id) = key.strip_prefix(keys::ACCESS_KEY) {
            if let Some(record) = decode::<AccessKeyRecord>(key, value) {
                let secret = URL_SAFE_NO_PAD
                    .decode(&record.sealed_secret)
                    .ok()
                    .and_then(|sealed| kek.open(&sealed, key.as_bytes()).ok())
                    .and_then(|plain| String::from_utf8(plain).ok())
                    .map(Secret::new);
                if secret.is_none() {
                    tracing::error!(
                        access_key_id = id,
                        "the secret of an access key cannot be opened with this key-encryption key"
                    );
                }
                self.keys.insert(
                    id.to_owned(),
                    Arc::new(KeyEntry {
                        record,
                        revision,
                        secret,
                    }),
                );
            }
        } else if let Some(url) = key.strip_prefix(keys::PROVIDER)
            && let Some(record) = decode::<ProviderRecord>(key, value)
        {
            self.providers
                .insert(url.to_owned(), Arc::new(ProviderEntry { record, revision }));
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(name) = key.strip_prefix(keys::USER) {
            self.users.remove(name);
        } else if let Some(name) = key.strip_prefix(keys::ROLE) {
            self.roles.remove(name);
        } else if let Some(arn) = key.strip_prefix(keys::POLICY) {
            self.policies.remove(arn);
        } else if let Some(id) = key.strip_prefix(keys::ACCESS_KEY) {
            self.keys.remove(id);
        } else if let Some(url) = key.strip_prefix(keys::PROVIDER) {
            self.providers.remove(url);
        }
    }

    /// Drops everything (before a full reload).
    pub(crate) fn clear(&mut self) {
        let (account, partition) = (
            std::mem::take(&mut self.account),
            std::mem::take(&mut self.partition),
        );
        *self = Self::new(&account, &partition, Arc::clone(&self.kek));
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The partition (`aws`).
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// A user by name (case-insensitive).
    pub fn user(&self, name: &str) -> Option<Arc<UserEntry>> {
        self.users.get(&name.to_lowercase()).cloned()
    }

    /// A role by name (case-insensitive).
    pub fn role(&self, name: &str) -> Option<Arc<RoleEntry>> {
        self.roles.get(&name.to_lowercase()).cloned()
    }

    /// A role by ARN, in this account.
    pub fn role_by_arn(&self, arn: &str) -> Option<Arc<RoleEntry>> {
        let prefix = format!("arn:{}:iam::{}:role/", self.partition, self.account);
        let rest = arn.strip_prefix(&prefix)?;
        let name = rest.rsplit('/').next()?;
        self.role(name).filter(|r| self.role_arn(&r.record) == arn)
    }

    /// A managed policy by ARN.
    pub fn policy(&self, arn: &str) -> Option<Arc<PolicyEntry>> {
        self.policies.get(arn).cloned()
    }

    /// An access key by id.
    pub fn access_key(&self, id: &str) -> Option<Arc<KeyEntry>> {
        self.keys.get(id).cloned()
    }

    /// An OIDC provider by URL (without scheme).
    pub fn provider(&self, url: &str) -> Option<Arc<ProviderEntry>> {
        self.providers.get(url).cloned()
    }

    /// The access keys of a user (`None`: the root's).
    pub fn keys_of(&self, user: Option<&str>) -> Vec<Arc<KeyEntry>> {
        let user = user.map(str::to_lowercase);
        let mut keys: Vec<Arc<KeyEntry>> = self
            .keys
            .values()
            .filter(|k| k.record.user == user)
            .cloned()
            .collect();
        keys.sort_by(|a, b| {
            a.record
                .created
                .cmp(&b.record.created)
                .then(a.record.id.cmp(&b.record.id))
        });
        keys
    }

    /// How many users and roles attach `arn` (directly, or as a permissions boundary).
    pub fn attachments(&self, arn: &str) -> (usize, usize) {
        let attached = self
            .users
            .values()
            .filter(|u| u.record.attached.iter().any(|a| a == arn))
            .count()
            + self
                .roles
                .values()
                .filter(|r| r.record.attached.iter().any(|a| a == arn))
                .count();
        let boundary = self
            .users
            .values()
            .filter(|u| u.record.boundary.as_deref() == Some(arn))
            .count()
            + self
                .roles
                .values()
                .filter(|r| r.record.boundary.as_deref() == Some(arn))
                .count();
        (attached, boundary)
    }

    /// `arn:aws:iam::ACCOUNT:role{path}{name}`.
    pub fn role_arn(&self, role: &RoleRecord) -> String {
        format!(
            "arn:{}:iam::{}:role{}{}",
            self.partition, self.account, role.path, role.name
        )
    }

    /// `arn:aws:iam::ACCOUNT:user{path}{name}`.
    pub fn user_arn(&self, user: &UserRecord) -> String {
        format!(
            "arn:{}:iam::{}:user{}{}",
            self.partition, self.account, user.path, user.name
        )
    }

    /// `arn:aws:iam::ACCOUNT:oidc-provider/{url}`.
    pub fn provider_arn(&self, url: &str) -> String {
        format!(
            "arn:{}:iam::{}:oidc-provider/{url}",
            self.partition, self.account
        )
    }

    /// `arn:aws:iam::ACCOUNT:root`.
    pub fn root_arn(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition, self.account)
    }

    /// `arn:aws:iam::ACCOUNT:policy{path}{name}`.
    pub fn policy_arn(&self, path: &str, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:policy{path}{name}",
            self.partition, self.account
        )
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = &Arc<UserEntry>> {
        self.users.values()
    }

    /// Every role, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Arc<RoleEntry>> {
        self.roles.values()
    }

    /// Every managed policy, by ARN.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<PolicyEntry>> {
        self.policies.values()
    }

    /// Every OIDC provider, by URL.
    pub fn providers(&self) -> impl Iterator<Item = &Arc<ProviderEntry>> {
        self.providers.values()
    }
}

impl podiam_store::View for IamState {
    fn clear(&mut self) {
        IamState::clear(self);
    }

    fn apply(&mut self, key: &str, value: Option<&[u8]>, revision: u64) {
        IamState::apply(self, key, value, revision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podiam_crypto::{AeadKey, KeyId};

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

    fn role(name: &str, trust: &str) -> Vec<u8> {
        let record = RoleRecord {
            name: name.to_owned(),
            id: format!("AROA{name}"),
            path: "/".to_owned(),
            created: 0,
            trust: trust.to_owned(),
            description: None,
            max_session: 3600,
            boundary: None,
            tags: Vec::new(),
            inline: BTreeMap::from([("app".to_owned(), TRUST.to_owned())]),
            attached: Vec::new(),
        };
        serde_json::to_vec(&record).unwrap()
    }

    fn state() -> IamState {
        let kek = Keyring::new(AeadKey::from_bytes(KeyId(0), &[9; 32]).unwrap());
        IamState::new("000000000000", "aws", Arc::new(kek))
    }

    #[test]
    fn identical_documents_are_parsed_once_and_shared() {
        let mut state = state();
        let other = TRUST.replace("pods.eks", "ec2");
        state.apply("iam/role/a", Some(&role("a", TRUST)), 1);
        state.apply("iam/role/b", Some(&role("b", TRUST)), 2);
        state.apply("iam/role/c", Some(&role("c", &other)), 3);
        let (a, b, c) = (
            state.role("a").unwrap(),
            state.role("b").unwrap(),
            state.role("c").unwrap(),
        );
        let (ta, tb, tc) = (
            a.trust.as_ref().unwrap(),
            b.trust.as_ref().unwrap(),
            c.trust.as_ref().unwrap(),
        );
        assert!(Arc::ptr_eq(ta, tb));
        assert!(!Arc::ptr_eq(ta, tc));
        assert_eq!(tc.text(), other);
        // The inline policy has the same text as a's trust policy: one parse for both.
        assert!(Arc::ptr_eq(ta, &a.inline[0]));
        assert!(Arc::ptr_eq(&a.inline[0], &c.inline[0]));
    }

    #[test]
    fn documents_nobody_holds_are_dropped() {
        let mut state = state();
        for i in 0..500 {
            let trust = TRUST.replace("pods.eks", &format!("s{i}"));
            state.apply("iam/role/r", Some(&role("r", &trust)), i + 1);
        }
        // Only the current role's trust policy and the shared inline policy are held.
        assert!(
            state.documents.parsed.len() <= 128,
            "{}",
            state.documents.parsed.len()
        );
        let current = state.role("r").unwrap();
        assert!(current.trust.as_ref().unwrap().text().contains("s499"));
    }
}
