use std::fmt;

use thiserror::Error;

/// Which IAM error a problem maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum ProblemKind {
    /// `MalformedPolicyDocument`.
    Malformed,
    /// `LimitExceeded` (or `PackedPolicyTooLarge` for session policies): the document is too big.
    TooLarge,
}

/// One thing wrong with a policy document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Which IAM error this is.
    pub kind: ProblemKind,
    /// Where in the document: `Statement[1].Condition.StringEquals`, or empty for the whole.
    pub path: String,
    /// The message IAM gives in `MalformedPolicyDocument` for this problem.
    pub message: String,
    /// More precise information for a person (not part of IAM's message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ProblemKind::Malformed,
            path: path.into(),
            message: message.into(),
            detail: None,
        }
    }

    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self {
            kind: ProblemKind::TooLarge,
            ..Self::new("", message)
        }
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// The messages IAM uses, in one place.
pub(crate) mod messages {
    pub(crate) const SYNTAX: &str = "Syntax errors in policy.";
    pub(crate) const LEGACY: &str = "The policy failed legacy parsing";
    pub(crate) const VERSION: &str = "Policy document must be version 2012-10-17 or greater.";
    pub(crate) const NO_ACTIONS: &str = "Policy statement must contain actions.";
    pub(crate) const NO_RESOURCES: &str = "Policy statement must contain resources.";
    pub(crate) const HAS_PRINCIPAL: &str = "Policy document should not specify a principal.";
    pub(crate) const MISSING_PRINCIPAL: &str = "Missing required field Principal";
    pub(crate) const DUPLICATE_SID: &str = "Statement IDs (SID) in a single policy must be unique.";
    pub(crate) const SID_CHARS: &str = "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*";
    pub(crate) const VENDOR_PREFIX: &str =
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";
    pub(crate) const ONE_COLON: &str = "Actions/Condition can contain only one colon.";
    pub(crate) const RESOURCE_VENDOR: &str =
        "Resource vendor must be fully qualified and cannot contain regexes.";
    pub(crate) const TRUST_ACTIONS: &str =
        "AssumeRole policy may only specify STS AssumeRole actions.";
    pub(crate) const SCP_TYPE: &str =
        "The provided policy document does not meet the requirements of the specified policy type.";
    pub(crate) const NOT_PRINCIPAL_TRUST: &str = "Has prohibited field NotPrincipal";
    pub(crate) const NOT_PRINCIPAL_ALLOW: &str =
        "NotPrincipal is supported only with Effect Deny; use Principal with a Condition instead.";
    pub(crate) const RCP_PRINCIPAL: &str = "Resource control policies must use \"Principal\": \"*\"; restrict principals with conditions.";
    pub(crate) const RCP_ALLOW: &str = "Resource control policies support Allow only as in RCPFullAWSAccess (Action \"*\" on Resource \"*\", without conditions); use Deny.";
    pub(crate) const RCP_NOT_ACTION: &str = "Resource control policies do not support NotAction.";
    pub(crate) const IAM_PATHS: &str = "IAM resource path must either be \"*\" or start with user/, federated-user/, role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/.";
}

/// Errors of the policy engine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The document is larger than any policy podiam will read.
    #[error("policy document is {size} bytes; podiam reads at most {limit}")]
    TooLarge {
        /// The document's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document is not a well-formed policy. IAM answers `MalformedPolicyDocument` with
    /// the first problem's message.
    #[error("{}", .0.first().map_or_else(|| messages::SYNTAX.to_owned(), ToString::to_string))]
    Malformed(Vec<Problem>),
    /// A request to evaluate is not well-formed (bad principal, bad context).
    #[error("{0}")]
    InvalidRequest(String),
}

impl PolicyError {
    /// Every problem found, for the malformed case.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Malformed(problems) => problems,
            _ => &[],
        }
    }

    /// The text IAM puts in a `MalformedPolicyDocument` error.
    pub fn iam_message(&self) -> String {
        match self {
            Self::Malformed(problems) => problems
                .first()
                .map_or(messages::SYNTAX, |p| p.message.as_str())
                .to_owned(),
            other => other.to_string(),
        }
    }
}
