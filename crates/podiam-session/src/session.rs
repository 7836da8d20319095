//! The session record and its sealed token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{Keyring, Rng, Secret};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{SessionError, new_access_key_id, new_secret};

/// The longest session token accepted.
pub const MAX_TOKEN_LEN: usize = 8192;

/// What the seal authenticates besides the session: the token's purpose and format.
const AAD: &[u8] = b"podiam/session/v1";

/// How a session was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Origin {
    /// STS `AssumeRoleWithWebIdentity` (IRSA).
    WebIdentity {
        /// The IAM OIDC provider ARN.
        provider: String,
        /// The token's `sub`.
        subject: String,
        /// The token's accepted `aud`.
        audience: String,
    },
    /// EKS Auth `AssumeRoleForPodIdentity`.
    PodIdentity {
        /// The cluster ARN.
        cluster: String,
        /// The pod identity association id.
        association_id: String,
    },
    /// STS `AssumeRole` by another principal.
    AssumeRole {
        /// The caller's ARN.
        source: String,
    },
    /// A node's instance-profile role (IMDS).
    InstanceProfile {
        /// The node name.
        node: String,
    },
    /// STS `AssumeRoleWithWebIdentity` with a token the kubelet bound to a node (a pod's
    /// projected token carries `kubernetes.io.node`): the session runs on that node. (A variant
    /// of its own, appended, so sessions sealed before it still open.)
    WebIdentityOnNode {
        /// The IAM OIDC provider ARN.
        provider: String,
        /// The token's `sub`.
        subject: String,
        /// The token's accepted `aud`.
        audience: String,
        /// The node the token is bound to.
        node: String,
    },
}

impl Origin {
    /// The node the session's credentials were issued on, when its origin proves one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::InstanceProfile { node } | Self::WebIdentityOnNode { node, .. } => Some(node),
            _ => None,
        }
    }
}

/// Everything about a session except its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetails {
    /// The 12-digit account.
    pub account: String,
    /// The role ARN (`arn:aws:iam::ACCOUNT:role/path/name`).
    pub role_arn: String,
    /// The role's unique id (`AROA…`).
    pub role_id: String,
    /// The role session name.
    pub session_name: String,
    /// The source identity, if set.
    pub source_identity: Option<String>,
    /// Session tags, in order.
    pub tags: Vec<(String, String)>,
    /// Tag keys that pass on to chained sessions.
    pub transitive_tag_keys: Vec<String>,
    /// The inline session policy (JSON), if any.
    pub policy: Option<String>,
    /// Managed session policy ARNs.
    pub policy_arns: Vec<String>,
    /// Issue time, seconds since the epoch.
    pub issued_at: i64,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// How the session was obtained.
    pub origin: Origin,
}

/// A session with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `ASIA…`
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret<String>,
    /// Who, what and until when.
    pub details: SessionDetails,
}

/// The sealed form; the only place the secret is serialized.
#[derive(Serialize, Deserialize)]
struct Sealed<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    details: SessionDetails,
}

impl Session {
    /// Creates keys for a session and seals it; returns the session and its token.
    pub fn issue(
        details: SessionDetails,
        keyring: &Keyring,
        rng: &dyn Rng,
    ) -> Result<(Self, String), SessionError> {
        let session = Self {
            access_key_id: new_access_key_id("ASIA", rng)?,
            secret_access_key: new_secret(rng)?,
            details,
        };
        let token = session.seal(keyring, rng)?;
        Ok((session, token))
    }

    /// The session token for this session, sealed under the keyring's current key.
    pub fn seal(&self, keyring: &Keyring, rng: &dyn Rng) -> Result<String, SessionError> {
        let record = Sealed {
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            details: self.details.clone(),
        };
        let plain = Secret::new(postcard::to_allocvec(&record).map_err(|_| SessionError::Corrupt)?);
        let sealed = keyring.seal(plain.expose(), AAD, rng)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens a session token.
    pub fn unseal(token: &str, keyring: &Keyring) -> Result<Self, SessionError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(SessionError::Malformed);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| SessionError::Malformed)?;
        let plain = Secret::new(keyring.open(&sealed, AAD)?);
        let record: Sealed<'_> =
            postcard::from_bytes(plain.expose()).map_err(|_| SessionError::Corrupt)?;
        Ok(Self {
            access_key_id: record.access_key_id.to_owned(),
            secret_access_key: Secret::new(record.secret_access_key.to_owned()),
            details: record.details,
        })
    }

    /// True at or after the expiry.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() >= self.details.expires_at
    }

    /// The role name (last component of the role ARN's path).
    pub fn role_name(&self) -> &str {
        self.details.role_arn.rsplit('/').next().unwrap_or_default()
    }

    /// `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub fn assumed_role_arn(&self) -> String {
        let partition = self.details.role_arn.split(':').nth(1).unwrap_or("aws");
        format!(
            "arn:{partition}:sts::{}:assumed-role/{}/{}",
            self.details.account,
            self.role_name(),
            self.details.session_name
        )
    }

    /// `ROLEID:SESSION`, as `GetCallerIdentity` reports it.
    pub fn assumed_role_id(&self) -> String {
        format!("{}:{}", self.details.role_id, self.details.session_name)
    }

    /// The expiry as a date-time.
    pub fn expiration(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.details.expires_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
