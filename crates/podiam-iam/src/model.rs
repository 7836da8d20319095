//! What IAM stores, one JSON record per key under `iam/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `iam/user/{lower-case name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The name as created.
    pub name: String,
    /// `AIDA…`
    pub id: String,
    /// `/` or `/path/`.
    pub path: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// The permissions boundary policy ARN.
    #[serde(default)]
    pub boundary: Option<String>,
    /// Tags in order.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Inline policies by name (documents as submitted).
    #[serde(default)]
    pub inline: InlinePolicies,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
    /// The ids of its access keys: written in the same transaction as the keys, so that
    /// `DeleteUser` and `CreateAccessKey` cannot both succeed.
    #[serde(default)]
    pub access_keys: Vec<String>,
}

/// Inline policies by name, in name order; stored as a JSON object of name to document.
///
/// A sorted vector rather than a `BTreeMap`: a principal has a few inline policies at most (a
/// role usually one), and a `BTreeMap`'s smallest node costs 544 bytes, a third of a role's
/// record in memory (BENCHMARKS.md, "Store scale").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlinePolicies(Vec<(String, String)>);

impl InlinePolicies {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    /// The document of a policy.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.find(name)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, d)| d)
    }

    /// Adds or replaces a policy; returns the document it replaced.
    pub fn insert(&mut self, name: String, document: String) -> Option<String> {
        match self.find(&name) {
            Ok(i) => self
                .0
                .get_mut(i)
                .map(|(_, d)| std::mem::replace(d, document)),
            Err(i) => {
                self.0.insert(i, (name, document));
                None
            }
        }
    }

    /// Removes a policy; returns its document.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.find(name).ok()?;
        Some(self.0.remove(i).1)
    }

    /// How many policies.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }

    /// The documents, in name order.
    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, d)| d)
    }

    /// `(name, document)` pairs, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(n, d)| (n, d))
    }
}

impl<const N: usize> From<[(String, String); N]> for InlinePolicies {
    fn from(pairs: [(String, String); N]) -> Self {
        BTreeMap::from(pairs).into()
    }
}

impl From<BTreeMap<String, String>> for InlinePolicies {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map.into_iter().collect())
    }
}

impl Serialize for InlinePolicies {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for InlinePolicies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through a map: the same reading as before (sorted, a repeated name's last document).
        BTreeMap::<String, String>::deserialize(deserializer).map(Self::from)
    }
}

/// `iam/role/{lower-case name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    /// The name as created.
    pub name: String,
    /// `AROA…`
    pub id: String,
    /// `/` or `/path/`.
    pub path: String,
    /// Creation time.
    pub created: i64,
    /// The trust policy, as submitted.
    pub trust: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Longest session, seconds (3600-43200).
    pub max_session: u32,
    /// The permissions boundary policy ARN.
    #[serde(default)]
    pub boundary: Option<String>,
    /// Tags in order.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Inline policies by name.
    #[serde(default)]
    pub inline: InlinePolicies,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
}

/// `iam/role-last-used/{role id}`: when credentials were last issued for a role, and where.
/// A key of its own rather than a field of [`RoleRecord`], so that recording a use never
/// races `UpdateRole` and the other writes to the role (each compares the role's revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleLastUsed {
    /// When, seconds since the epoch (recorded at most once per
    /// [`ROLE_USE_INTERVAL`](crate::ROLE_USE_INTERVAL)).
    pub date: i64,
    /// The region the issuing request was signed for.
    pub region: String,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersionRecord {
    /// `1` for `v1`.
    pub number: u32,
    /// The document as submitted.
    pub document: String,
    /// Creation time.
    pub created: i64,
}

/// `iam/policy/{arn}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The ARN (`arn:aws:iam::ACCOUNT:policy{path}{name}`, or `…::aws:policy/…` for
    /// AWS-managed policies).
    pub arn: String,
    /// The name.
    pub name: String,
    /// `ANPA…`
    pub id: String,
    /// `/` or `/path/`.
    pub path: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Creation time.
    pub created: i64,
    /// Last change.
    pub updated: i64,
    /// The default version's number.
    pub default_version: u32,
    /// The versions (at most five).
    pub versions: Vec<PolicyVersionRecord>,
    /// The next version number.
    pub next_version: u32,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl PolicyRecord {
    /// The default version's document.
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.number == self.default_version)
            .map(|v| v.document.as_str())
    }
}

/// Whether an access key may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// Signs.
    Active,
    /// Refused.
    Inactive,
}

impl KeyStatus {
    /// As IAM writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }
}

/// `iam/access-key/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    /// `AKIA…`
    pub id: String,
    /// The owning user's lower-case name; `None` for the account root.
    pub user: Option<String>,
    /// Active or inactive.
    pub status: KeyStatus,
    /// Creation time.
    pub created: i64,
    /// The secret, sealed under the key-encryption key (base64url).
    pub sealed_secret: String,
}

/// `iam/oidc/{url without scheme}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// The issuer URL without `https://`, as in the provider ARN.
    pub url: String,
    /// Accepted audiences.
    pub client_ids: Vec<String>,
    /// Certificate thumbprints (kept, not used: podiam verifies TLS with its CA roots).
    pub thumbprints: Vec<String>,
    /// Creation time.
    pub created: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// Store key prefixes.
pub(crate) mod keys {
    pub(crate) const ROOT: &str = "iam/";
    pub(crate) const USER: &str = "iam/user/";
    pub(crate) const ROLE: &str = "iam/role/";
    pub(crate) const POLICY: &str = "iam/policy/";
    pub(crate) const ACCESS_KEY: &str = "iam/access-key/";
    pub(crate) const PROVIDER: &str = "iam/oidc/";
    pub(crate) const ROLE_LAST_USED: &str = "iam/role-last-used/";

    pub(crate) fn user(name: &str) -> String {
        format!("{USER}{}", name.to_lowercase())
    }

    pub(crate) fn role(name: &str) -> String {
        format!("{ROLE}{}", name.to_lowercase())
    }

    pub(crate) fn policy(arn: &str) -> String {
        format!("{POLICY}{arn}")
    }

    pub(crate) fn access_key(id: &str) -> String {
        format!("{ACCESS_KEY}{id}")
    }

    pub(crate) fn provider(url: &str) -> String {
        format!("{PROVIDER}{url}")
    }

    /// By role id (`AROA…`): a role deleted and created again under its name starts unused.
    pub(crate) fn role_last_used(role_id: &str) -> String {
        format!("{ROLE_LAST_USED}{role_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_policies_keep_the_stored_form_and_order() {
        let text = r#"{"b":"{}","a":"{\"x\":1}","b":"last"}"#;
        let mut inline: InlinePolicies = serde_json::from_str(text).unwrap();
        assert_eq!(inline.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(inline.get("b").map(String::as_str), Some("last"));
        assert_eq!(
            serde_json::to_string(&inline).unwrap(),
            r#"{"a":"{\"x\":1}","b":"last"}"#
        );
        assert_eq!(inline.insert("c".into(), "3".into()), None);
        assert_eq!(inline.insert("0".into(), "0".into()), None);
        assert_eq!(inline.insert("b".into(), "2".into()), Some("last".into()));
        assert_eq!(inline.keys().collect::<Vec<_>>(), ["0", "a", "b", "c"]);
        assert_eq!(inline.remove("a"), Some(r#"{"x":1}"#.into()));
        assert_eq!(inline.remove("a"), None);
        assert_eq!(inline.len(), 3);
        assert_eq!(
            inline.iter().collect::<Vec<_>>(),
            [
                (&"0".to_owned(), &"0".to_owned()),
                (&"b".to_owned(), &"2".to_owned()),
                (&"c".to_owned(), &"3".to_owned())
            ]
        );
        let empty: UserRecord =
            serde_json::from_str(r#"{"name":"u","id":"AIDA","path":"/","created":0}"#).unwrap();
        assert!(empty.inline.is_empty());
    }
}
