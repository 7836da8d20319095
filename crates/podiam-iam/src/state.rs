//! The in-memory copy of IAM that every read and every authorization uses.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{Keyring, Secret};
use podiam_policy::Policy;
use serde::de::DeserializeOwned;

use crate::model::{
    AccessKeyRecord, InlinePolicies, PolicyRecord, ProviderRecord, RoleLastUsed, RoleRecord,
    UserRecord, keys,
};

/// A user. Its inline policies are parsed on use ([`UserEntry::inline`]).
#[derive(Debug)]
pub struct UserEntry {
    /// The stored record.
    pub record: UserRecord,
    /// The record's store revision.
    pub revision: u64,
    documents: Arc<Documents>,
}

impl UserEntry {
    /// The inline policies that parse, in name order.
    pub fn inline(&self) -> Vec<Arc<Policy>> {
        self.documents
            .parse_all(self.record.inline.values(), "user inline")
    }

    /// The inline policies that parse, with their names.
    pub fn inline_named(&self) -> Vec<(&str, Arc<Policy>)> {
        self.documents
            .parse_named(&self.record.inline, "user inline")
    }
}

/// A role. Its trust and inline policies are parsed on use ([`RoleEntry::trust`],
/// [`RoleEntry::inline`]).
#[derive(Debug)]
pub struct RoleEntry {
    /// The stored record.
    pub record: RoleRecord,
    /// The record's store revision.
    pub revision: u64,
    documents: Arc<Documents>,
}

impl RoleEntry {
    /// The trust policy (`None` if the stored text no longer parses: trusts nobody).
    pub fn trust(&self) -> Option<Arc<Policy>> {
        self.documents.parse(&self.record.trust, "trust")
    }

    /// The inline policies that parse, in name order.
    pub fn inline(&self) -> Vec<Arc<Policy>> {
        self.documents
            .parse_all(self.record.inline.values(), "role inline")
    }

    /// The inline policies that parse, with their names.
    pub fn inline_named(&self) -> Vec<(&str, Arc<Policy>)> {
        self.documents
            .parse_named(&self.record.inline, "role inline")
    }
}

/// A managed policy. Its default version is parsed on use ([`PolicyEntry::default_policy`]).
#[derive(Debug)]
pub struct PolicyEntry {
    /// The stored record.
    pub record: PolicyRecord,
    /// The record's store revision.
    pub revision: u64,
    documents: Arc<Documents>,
}

impl PolicyEntry {
    /// The default version, parsed (`None` if it is missing or no longer parses).
    pub fn default_policy(&self) -> Option<Arc<Policy>> {
        self.record
            .default_document()
            .and_then(|d| self.documents.parse(d, "managed"))
    }
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
    /// When each role was last used, by role id, with the record's revision.
    pub(crate) last_used: HashMap<String, (RoleLastUsed, u64)>,
    /// Opens the stored secrets of access keys.
    kek: Arc<Keyring>,
    /// The revision of each key whose latest change left no entry (a delete, a record that
    /// does not decode). With the entries' own revisions it gives the newest revision applied
    /// per key, so that a late event never undoes a newer one; a map of every key's revision
    /// cost 144 bytes a role (BENCHMARKS.md, "Store scale").
    unheld: HashMap<String, u64>,
    /// The documents parsed lately, shared by every entry.
    documents: Arc<Documents>,
}

/// How much document text the cache of parsed documents holds before it evicts the least
/// recently used half. A parsed document costs about seven times its text (BENCHMARKS.md,
/// "Store scale"), so this is about 8 MB of parsed policies, some 2,000 typical documents.
const PARSED_TEXT_BUDGET: usize = 1024 * 1024;

/// One cached parse: the policy, or the text that failed to parse (kept to tell a hash
/// collision from a hit, and so that a broken document is logged once, not on every use).
#[derive(Debug)]
struct Slot {
    outcome: Result<Arc<Policy>, Box<str>>,
    /// The cache's clock when the slot was last used.
    used: u64,
}

impl Slot {
    fn text(&self) -> &str {
        match &self.outcome {
            Ok(policy) => policy.text(),
            Err(text) => text,
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    /// By the text's hash; a slot whose text differs is a collision and misses.
    slots: HashMap<u64, Slot>,
    /// Text bytes held.
    bytes: usize,
    clock: u64,
}

impl Cache {
    fn get(&mut self, hash: u64, text: &str) -> Option<Option<Arc<Policy>>> {
        self.clock += 1;
        let slot = self.slots.get_mut(&hash).filter(|s| s.text() == text)?;
        slot.used = self.clock;
        Some(slot.outcome.as_ref().ok().cloned())
    }

    fn insert(&mut self, hash: u64, outcome: Result<Arc<Policy>, Box<str>>) {
        self.clock += 1;
        let slot = Slot {
            outcome,
            used: self.clock,
        };
        self.bytes += slot.text().len();
        if let Some(old) = self.slots.insert(hash, slot) {
            self.bytes -= old.text().len();
        }
        if self.bytes > PARSED_TEXT_BUDGET {
            self.evict_older_half();
        }
    }

    /// Drops the least recently used half of the slots.
    fn evict_older_half(&mut self) {
        let mut ages: Vec<u64> = self.slots.values().map(|s| s.used).collect();
        let middle = ages.len() / 2;
        let (_, cut, _) = ages.select_nth_unstable(middle);
        let cut = *cut;
        self.slots.retain(|_, s| s.used > cut);
        self.bytes = self.slots.values().map(|s| s.text().len()).sum();
    }
}

thread_local! {
    /// Set while this thread runs [`scan`].
    static SCANNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` without filling the parsed-document cache: a pass over every role (access
/// analysis) would otherwise push out the documents that the credential paths keep using, and
/// gain nothing, its documents passing through a cache smaller than them all. Hits are still
/// served from the cache.
pub fn scan<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCANNING.set(self.0);
        }
    }
    let _restore = Restore(SCANNING.replace(true));
    f()
}

/// Policy documents parsed on use, through a bounded cache found by text. Parsed policies are
/// not kept with every entry: a parsed document costs several times its text (6.5 KB for a
/// role's trust and inline policies together, against 1.4 KB for its whole record), which at
/// 100,000 roles is most of the server's memory, while a parse takes about 3 µs. Identical
/// documents (every Pod Identity role has the same trust policy) share one parse while it is
/// cached.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    hasher: RandomState,
    cache: Mutex<Cache>,
}

impl Documents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The parsed `text` (`None`, logged, if it does not parse).
    pub(crate) fn parse(&self, text: &str, what: &str) -> Option<Arc<Policy>> {
        let hash = self.hasher.hash_one(text);
        if let Some(known) = self.lock().get(hash, text) {
            return known;
        }
        let scanning = SCANNING.get();
        // Parsed outside the lock: a parse never waits for another.
        let outcome = match Policy::parse(text) {
            Ok(policy) => Ok(Arc::new(policy)),
            Err(e) if scanning => {
                tracing::debug!(error = %e, "a stored {what} policy no longer parses; it is ignored");
                Err(text.into())
            }
            Err(e) => {
                tracing::error!(error = %e, "a stored {what} policy no longer parses; it is ignored");
                Err(text.into())
            }
        };
        let parsed = outcome.as_ref().ok().cloned();
        if !scanning {
            self.lock().insert(hash, outcome);
        }
        parsed
    }

    fn parse_all<'a>(
        &self,
        texts: impl Iterator<Item = &'a String>,
        what: &str,
    ) -> Vec<Arc<Policy>> {
        texts.filter_map(|text| self.parse(text, what)).collect()
    }

    fn parse_named<'a>(
        &self,
        named: &'a InlinePolicies,
        what: &str,
    ) -> Vec<(&'a str, Arc<Policy>)> {
        named
            .iter()
            .filter_map(|(name, text)| Some((name.as_str(), self.parse(text, what)?)))
            .collect()
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.lock().slots.len()
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

/// Whether `key` is one of the kinds of record the view holds.
fn is_held_kind(key: &str) -> bool {
    [
        keys::USER,
        keys::ROLE,
        keys::POLICY,
        keys::ACCESS_KEY,
        keys::PROVIDER,
        keys::ROLE_LAST_USED,
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
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
            last_used: HashMap::new(),
            unheld: HashMap::new(),
            documents: Arc::new(Documents::default()),
        }
    }

    /// Applies one stored change (a put with its value, or a delete) at `revision`.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>, revision: u64) {
        let newest = self.held_revision(key).max(self.unheld.get(key).copied());
        if newest.is_some_and(|newest| newest >= revision) {
            return;
        }
        let held = match value {
            Some(value) => self.put(key, value, revision),
            None => {
                self.remove(key);
                false
            }
        };
        if held {
            self.unheld.remove(key);
        } else if is_held_kind(key) {
            // A record that does not decode keeps the entry it replaces (as before the
            // change), but its revision is remembered.
            self.unheld.insert(key.to_owned(), revision);
        }
    }

    /// The revision of the entry `key` holds, if any.
    fn held_revision(&self, key: &str) -> Option<u64> {
        if let Some(name) = key.strip_prefix(keys::USER) {
            self.users.get(name).map(|e| e.revision)
        } else if let Some(name) = key.strip_prefix(keys::ROLE) {
            self.roles.get(name).map(|e| e.revision)
        } else if let Some(arn) = key.strip_prefix(keys::POLICY) {
            self.policies.get(arn).map(|e| e.revision)
        } else if let Some(id) = key.strip_prefix(keys::ACCESS_KEY) {
            self.keys.get(id).map(|e| e.revision)
        } else if let Some(url) = key.strip_prefix(keys::PROVIDER) {
            self.providers.get(url).map(|e| e.revision)
        } else if let Some(id) = key.strip_prefix(keys::ROLE_LAST_USED) {
            self.last_used.get(id).map(|(_, revision)| *revision)
        } else {
            None
        }
    }

    /// Decodes a record into its entry; false when it does not decode (or is not held here).
    fn put(&mut self, key: &str, value: &[u8], revision: u64) -> bool {
        let documents = &self.documents;
        if let Some(name) = key.strip_prefix(keys::USER) {
            let Some(record) = decode::<UserRecord>(key, value) else {
                return false;
            };
            let entry = UserEntry {
                record,
                revision,
                documents: Arc::clone(documents),
            };
            self.users.insert(name.to_owned(), Arc::new(entry));
        } else if let Some(name) = key.strip_prefix(keys::ROLE) {
            let Some(record) = decode::<RoleRecord>(key, value) else {
                return false;
            };
            let entry = RoleEntry {
                record,
                revision,
                documents: Arc::clone(documents),
            };
            self.roles.insert(name.to_owned(), Arc::new(entry));
        } else if let Some(arn) = key.strip_prefix(keys::POLICY) {
            let Some(record) = decode::<PolicyRecord>(key, value) else {
                return false;
            };
            let entry = PolicyEntry {
                record,
                revision,
                documents: Arc::clone(documents),
            };
            self.policies.insert(arn.to_owned(), Arc::new(entry));
        } else if let Some(id) = key.strip_prefix(keys::ACCESS_KEY) {
            let Some(record) = decode::<AccessKeyRecord>(key, value) else {
                return false;
            };
            let secret = URL_SAFE_NO_PAD
                .decode(&record.sealed_secret)
                .ok()
                .and_then(|sealed| self.kek.open(&sealed, key.as_bytes()).ok())
                .and_then(|plain| String::from_utf8(plain).ok())
                .map(Secret::new);
            if secret.is_none() {
                tracing::error!(
                    access_key_id = id,
                    "the secret of an access key cannot be opened with this key-encryption key"
                );
            }
            let entry = KeyEntry {
                record,
                revision,
                secret,
            };
            self.keys.insert(id.to_owned(), Arc::new(entry));
        } else if let Some(url) = key.strip_prefix(keys::PROVIDER) {
            let Some(record) = decode::<ProviderRecord>(key, value) else {
                return false;
            };
            self.providers
                .insert(url.to_owned(), Arc::new(ProviderEntry { record, revision }));
        } else if let Some(id) = key.strip_prefix(keys::ROLE_LAST_USED) {
            let Some(record) = decode::<RoleLastUsed>(key, value) else {
                return false;
            };
            self.last_used.insert(id.to_owned(), (record, revision));
        } else {
            return false;
        }
        true
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
        } else if let Some(id) = key.strip_prefix(keys::ROLE_LAST_USED) {
            self.last_used.remove(id);
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

    /// When credentials were last issued for the role with id `role_id` (`AROA…`), and in
    /// which region; `None` if never. Issuance (AssumeRole, AssumeRoleWithWebIdentity, EKS Pod
    /// Identity) records it at most once per [`ROLE_USE_INTERVAL`](crate::ROLE_USE_INTERVAL),
    /// so the date may be up to that much older than the latest use: a role unused for `N`
    /// days has no date within the last `N` days.
    pub fn role_last_used(&self, role_id: &str) -> Option<RoleLastUsed> {
        self.last_used.get(role_id).map(|(used, _)| used.clone())
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
            inline: InlinePolicies::from([("app".to_owned(), TRUST.to_owned())]),
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
        let (ta, tb, tc) = (a.trust().unwrap(), b.trust().unwrap(), c.trust().unwrap());
        assert!(Arc::ptr_eq(&ta, &tb));
        assert!(!Arc::ptr_eq(&ta, &tc));
        assert_eq!(tc.text(), other);
        // The inline policy has the same text as a's trust policy: one parse for both.
        assert!(Arc::ptr_eq(&ta, &a.inline()[0]));
        assert!(Arc::ptr_eq(&a.inline()[0], &c.inline()[0]));
        assert_eq!(a.inline_named()[0].0, "app");
    }

    #[test]
    fn the_cache_of_parsed_documents_is_bounded() {
        let mut state = state();
        let padding = "x".repeat(1000);
        for i in 0..5_000 {
            let trust = TRUST.replace("pods.eks", &format!("s{i}{padding}"));
            let name = format!("r{i}");
            state.apply(
                &format!("iam/role/{name}"),
                Some(&role(&name, &trust)),
                i + 1,
            );
            assert!(state.role(&name).unwrap().trust().is_some());
        }
        let cached = state.documents.cached();
        assert!(cached <= PARSED_TEXT_BUDGET / 1000, "{cached}");
        // An evicted document is parsed again on use.
        let first = state.role("r0").unwrap().trust().unwrap();
        assert!(first.text().contains("s0x"));
    }

    #[test]
    fn a_scan_does_not_push_documents_out_of_the_cache() {
        let mut state = state();
        state.apply("iam/role/hot", Some(&role("hot", TRUST)), 1);
        let hot = state.role("hot").unwrap().trust().unwrap();
        let padding = "x".repeat(1000);
        for i in 0..3_000 {
            let trust = TRUST.replace("pods.eks", &format!("s{i}{padding}"));
            let name = format!("r{i}");
            state.apply(
                &format!("iam/role/{name}"),
                Some(&role(&name, &trust)),
                i + 2,
            );
        }
        let before = state.documents.cached();
        scan(|| {
            for i in 0..3_000 {
                assert!(state.role(&format!("r{i}")).unwrap().trust().is_some());
            }
        });
        assert_eq!(state.documents.cached(), before);
        // The hot document is the same parse as before the scan.
        assert!(Arc::ptr_eq(
            &hot,
            &state.role("hot").unwrap().trust().unwrap()
        ));
        // Outside a scan, parses are cached again.
        state.role("r0").unwrap().trust();
        assert_eq!(state.documents.cached(), before + 1);
    }

    #[test]
    fn a_document_that_does_not_parse_trusts_nobody() {
        let mut state = state();
        state.apply("iam/role/a", Some(&role("a", "{not json")), 1);
        let a = state.role("a").unwrap();
        assert!(a.trust().is_none());
        assert!(a.trust().is_none());
        assert_eq!(a.inline().len(), 1);
    }

    #[test]
    fn late_events_never_undo_newer_ones() {
        let mut state = state();
        state.apply("iam/role/a", Some(&role("a", TRUST)), 5);
        // The same change again, and an older one: ignored.
        state.apply("iam/role/a", None, 5);
        state.apply("iam/role/a", None, 4);
        assert_eq!(state.role("a").unwrap().revision, 5);
        // A delete, then an older put arriving late.
        state.apply("iam/role/a", None, 7);
        state.apply("iam/role/a", Some(&role("a", TRUST)), 6);
        assert!(state.role("a").is_none());
        // A newer put brings it back and forgets the delete.
        state.apply("iam/role/a", Some(&role("a", TRUST)), 9);
        assert_eq!(state.role("a").unwrap().revision, 9);
        assert!(state.unheld.is_empty());
        // A record that does not decode keeps the entry but its revision counts.
        state.apply("iam/role/a", Some(b"not json"), 11);
        state.apply("iam/role/a", None, 10);
        assert_eq!(state.role("a").unwrap().revision, 9);
        // Keys of kinds the view does not hold are not remembered.
        state.apply("iam/other/x", None, 12);
        assert_eq!(state.unheld.len(), 1);
    }

    #[test]
    fn last_use_follows_its_own_key() {
        let mut state = state();
        state.apply("iam/role/a", Some(&role("a", TRUST)), 1);
        let used = |date: i64| format!(r#"{{"date":{date},"region":"us-east-1"}}"#).into_bytes();
        state.apply("iam/role-last-used/AROAa", Some(&used(100)), 3);
        state.apply("iam/role-last-used/AROAa", Some(&used(50)), 2);
        let last = state.role_last_used("AROAa").unwrap();
        assert_eq!((last.date, last.region.as_str()), (100, "us-east-1"));
        // The role's record is untouched, and the key is not taken for a role's.
        assert_eq!(state.role("a").unwrap().revision, 1);
        assert!(state.role("-last-used/AROAa").is_none());
        state.apply("iam/role-last-used/AROAa", None, 4);
        assert!(state.role_last_used("AROAa").is_none());
        state.apply("iam/role-last-used/AROAa", Some(&used(100)), 3);
        assert!(state.role_last_used("AROAa").is_none());
    }
}
