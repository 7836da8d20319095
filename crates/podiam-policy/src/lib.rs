//! The IAM policy language, as a pure engine: no I/O, no async, no panics on any input.
//!
//! * [`Policy::parse`] reads a JSON policy document (keeping its text byte for byte) and
//!   reports every structural problem with IAM's `MalformedPolicyDocument` messages.
//! * [`validate`] / [`parse_as`] check the rules of one [`PolicyType`] (identity, resource,
//!   trust, permissions boundary, session, SCP) and its size quota.
//! * [`PolicySet::evaluate`] decides a [`Request`] with AWS's evaluation logic;
//!   [`PolicySet::explain`] also returns a trace of every statement and condition.
//!
//! ```
//! use podiam_policy::{Context, Decision, Policy, PolicySet, Principal, Request};
//!
//! let trust = Policy::parse(r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Effect": "Allow",
//!     "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/X"},
//!     "Action": "sts:AssumeRoleWithWebIdentity",
//!     "Condition": {"StringEquals": {
//!       "oidc.example.com/id/X:sub": "system:serviceaccount:carts:carts",
//!       "oidc.example.com/id/X:aud": "sts.amazonaws.com"
//!     }}
//!   }]
//! }"#)?;
//! let request = Request::new("sts:AssumeRoleWithWebIdentity")
//!     .principal(Principal::Federated(
//!         "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/X".into(),
//!     ))
//!     .context(
//!         Context::new()
//!             .with("oidc.example.com/id/X:sub", "system:serviceaccount:carts:carts")
//!             .with("oidc.example.com/id/X:aud", "sts.amazonaws.com"),
//!     );
//! let set = PolicySet { resource: Some(&trust), ..PolicySet::default() };
//! assert_eq!(set.evaluate(&request), Decision::Allow);
//! # Ok::<(), podiam_policy::PolicyError>(())
//! ```

mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod pattern;
mod principal;
mod raw;
mod trace;
mod validate;
mod variables;

pub use condition::{Condition, Operator, OperatorKind, SetQualifier, UnknownOperator};
pub use context::{AwsPrincipal, AwsPrincipalKind, Context, ContextValue, Principal, Request};
pub use document::{
    ActionElement, Effect, MAX_DOCUMENT_BYTES, Policy, ResourceElement, Statement, Version,
};
pub use error::{PolicyError, Problem, ProblemKind};
pub use evaluate::{PolicyKind, PolicySet, Rule};
pub use pattern::wildcard_match;
pub use principal::{PrincipalElement, PrincipalEntry, PrincipalType};
pub use trace::{
    ConditionTrace, Decision, ElementTrace, Explanation, PolicyOutcome, PolicyTrace, StatementTrace,
};
pub use validate::{PolicyType, parse_as, policy_size, validate};
