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
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
    /// The ids of its access keys: written in the same transaction as the keys, so that
    /// `DeleteUser` and `CreateAccessKey` cannot both succeed.
    #[serde(default)]
    pub access_keys: Vec<String>,
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
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
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
}
