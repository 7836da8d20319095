//! Explanations: for every policy and statement, whether it applied and why.

use serde::Serialize;

/// The outcome of an authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// Some policy allows and nothing denies.
    Allow,
    /// A statement with `"Effect": "Deny"` applies.
    ExplicitDeny,
    /// Nothing denies, but the policies that must allow do not.
    ImplicitDeny,
}

impl Decision {
    /// True only for [`Decision::Allow`].
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }
}

/// What one policy contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyOutcome {
    /// A `Deny` statement applies.
    Deny,
    /// An `Allow` statement applies and no `Deny` does.
    Allow,
    /// No statement applies.
    NotApplicable,
}

/// One condition test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionTrace {
    /// The operator as written.
    pub operator: String,
    /// The condition key as written.
    pub key: String,
    /// The policy values as written.
    pub policy_values: Vec<String>,
    /// The request's values for the key; `null` when the key is absent.
    pub request_values: Option<Vec<String>>,
    /// Whether the test passed.
    pub result: bool,
    /// Why.
    pub reason: String,
}

/// Whether one element (`Action`, `Resource`, `Principal`) matched, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElementTrace {
    /// Whether the element matched the request.
    pub matched: bool,
    /// Why, naming the pattern that decided.
    pub reason: String,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementTrace {
    /// Position in the policy, from 0.
    pub index: usize,
    /// The `Sid`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// True when every element and condition matched, so the statement applied.
    pub applies: bool,
    /// `Action` / `NotAction`.
    pub action: ElementTrace,
    /// `Resource` / `NotResource`.
    pub resource: ElementTrace,
    /// `Principal` / `NotPrincipal`; absent for policies without a principal element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<ElementTrace>,
    /// Every condition test.
    pub conditions: Vec<ConditionTrace>,
}

/// One policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyTrace {
    /// Where the policy came from: `identity[0]`, `resource`, `permissions_boundary`,
    /// `session[0]`, `scp[level][i]`, `rcp[level][i]`.
    pub policy: String,
    /// The `Id` of the policy, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What the policy contributes.
    pub outcome: PolicyOutcome,
    /// Every statement.
    pub statements: Vec<StatementTrace>,
}

/// A decision with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// One sentence on which rule of the evaluation logic decided.
    pub reason: String,
    /// Every policy evaluated, in evaluation order.
    pub trace: Vec<PolicyTrace>,
}
