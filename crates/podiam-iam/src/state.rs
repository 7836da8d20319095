//! The in-memory copy of IAM that every read and every authorization uses.

use std::collections::{BTreeMap, HashMap};
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
}

fn parse_all<'a>(documents: impl Iterator<Item = &'a String>, what: &str) -> Vec<Arc<Policy>> {
    documents
        .filter_map(|text| match Policy::parse(text) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::error!(error = %e, "a stored {what} policy no longer parses; it is ignored");
                None
            }
        })
        .collect()
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
                let inline = parse_all(record.inline.values(), "user inline");
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
                let trust = parse_all(std::iter::once(&record.trust), "trust").pop();
                let inline = parse_all(record.inline.values(), "role inline");
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
                    .and_then(|d| parse_all(std::iter::once(&d.to_owned()), "managed").pop());
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
