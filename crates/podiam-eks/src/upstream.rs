//! Roles in real AWS accounts (`--aws-upstream-account`): podiam verifies the pod as always,
//! then asks AWS STS `AssumeRole` as itself, and AWS decides on its own role. The calls go
//! through [`UpstreamRoles`], implemented over the AWS SDK in `podiam-aws`; this crate stays
//! free of I/O.

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use podiam_crypto::Secret;
use podiam_types::Arn;
use time::OffsetDateTime;

/// One `sts:AssumeRole` call to AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAssume {
    /// The role in the upstream account.
    pub role_arn: String,
    /// `RoleSessionName` (EKS's form).
    pub session_name: String,
    /// Session tags (EKS Pod Identity's six, unless the association disables them).
    pub tags: Vec<(String, String)>,
    /// `ExternalId`, when the association sets one.
    pub external_id: Option<String>,
    /// A session policy, when the association sets one.
    pub policy: Option<String>,
    /// Chain from these credentials (an earlier upstream session) instead of podiam's own
    /// identity.
    pub via: Option<UpstreamCredentials>,
    /// The pod asking (cluster, namespace and uid): concurrent calls for the same pod and the
    /// same role share one call to AWS.
    pub pod: String,
}

/// Credentials AWS issued.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCredentials {
    /// The role assumed.
    pub role_arn: String,
    /// `ASIA…`
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret<String>,
    /// The session token.
    pub session_token: Secret<String>,
    /// When AWS says they expire (an hour at most when podiam's own identity is a role).
    pub expiration: OffsetDateTime,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub assumed_role_arn: String,
    /// `AROA…:SESSION`.
    pub assumed_role_id: String,
}

impl fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .finish_non_exhaustive()
    }
}

/// Why AWS gave no credentials. Messages carry AWS's words and never podiam's credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// AWS refused (`AccessDenied`, `ValidationError`, `InvalidClientTokenId`, …).
    #[error("AWS answered {code}: {message}")]
    Refused {
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// AWS kept throttling after podiam backed off.
    #[error("AWS throttled the call: {0}")]
    Throttled(String),
    /// AWS could not be reached, or podiam has no AWS credentials.
    #[error("AWS could not be asked: {0}")]
    Unreachable(String),
}

impl UpstreamError {
    /// A short label for metrics: AWS's code, `Throttling` or `Unreachable`.
    pub fn code(&self) -> &str {
        match self {
            Self::Refused { code, .. } => code,
            Self::Throttled(_) => "Throttling",
            Self::Unreachable(_) => "Unreachable",
        }
    }
}

/// The calls to AWS STS that podiam makes for roles in upstream accounts.
#[async_trait]
pub trait UpstreamRoles: Send + Sync + fmt::Debug {
    /// `sts:AssumeRole` as podiam (or as `request.via`).
    async fn assume(&self, request: &UpstreamAssume) -> Result<UpstreamCredentials, UpstreamError>;

    /// Whether AWS answers podiam's identity (`sts:GetCallerIdentity`): its ARN.
    async fn check(&self) -> Result<String, UpstreamError>;

    /// The role's trust and permission policies, read with podiam's identity
    /// (`iam:GetRole`, `iam:ListRolePolicies`, `iam:GetRolePolicy`,
    /// `iam:ListAttachedRolePolicies`, `iam:GetPolicy`, `iam:GetPolicyVersion`).
    async fn role(&self, role_arn: &str) -> Result<UpstreamRole, UpstreamError>;
}

/// A role as AWS IAM holds it: the documents are JSON text, as IAM stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamRole {
    /// Its ARN.
    pub arn: String,
    /// Its id (`AROA…`).
    pub id: String,
    /// The trust policy.
    pub trust: String,
    /// Inline policies (`inline policy "NAME"`) and attached ones (their ARNs), with their
    /// documents.
    pub policies: Vec<(String, String)>,
    /// The permissions boundary's ARN and document.
    pub boundary: Option<(String, String)>,
    /// The role's tags.
    pub tags: Vec<(String, String)>,
}

/// The accounts whose roles are real AWS roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamAccounts(BTreeSet<String>);

impl UpstreamAccounts {
    /// The accounts given (twelve digits each; checked by the caller).
    pub fn new(accounts: impl IntoIterator<Item = String>) -> Self {
        Self(accounts.into_iter().collect())
    }

    /// Whether any account is upstream.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `role_arn` (`arn:PARTITION:iam::ACCOUNT:role/…`) is in an upstream account.
    pub fn holds(&self, role_arn: &str) -> bool {
        role_arn.parse::<Arn>().is_ok_and(|arn| {
            arn.service() == "iam"
                && arn.region().is_empty()
                && arn.resource().starts_with("role/")
                && self.0.contains(arn.account())
        })
    }

    /// The accounts, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Upstream roles together with the accounts they are for.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The upstream accounts.
    pub accounts: UpstreamAccounts,
    /// How AWS is asked.
    pub roles: std::sync::Arc<dyn UpstreamRoles>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roles_of_the_listed_accounts_are_upstream() {
        let accounts = UpstreamAccounts::new(["111122223333".to_owned()]);
        assert!(accounts.holds("arn:aws:iam::111122223333:role/carts"));
        assert!(accounts.holds("arn:aws:iam::111122223333:role/path/carts"));
        assert!(!accounts.holds("arn:aws:iam::000000000000:role/carts"));
        assert!(!accounts.holds("arn:aws:iam::111122223333:user/carts"));
        assert!(!accounts.holds("arn:aws:sts::111122223333:role/carts"));
        assert!(!accounts.holds("arn:aws:iam:us-east-1:111122223333:role/carts"));
        assert!(!accounts.holds("111122223333"));
        assert!(!UpstreamAccounts::default().holds("arn:aws:iam::111122223333:role/x"));
    }
}
