//! One decision of the engine, read for analysis: a key the analysis cannot know (a pod's
//! name, the client's address, a resource's tags) is left out of the request, and the trace
//! says which conditions hung on such keys. Those are "open": the answer is a
//! `ConditionalAllow` naming them, never a guess.

use podiam_policy::{
    ConditionTrace, Decision, Explanation, PolicySet, PolicyTrace, Request, StatementTrace,
};
use serde::Serialize;

/// The analysis' decision for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Allowed whatever the keys the analysis cannot know.
    Allow,
    /// Allowed when the open conditions hold (or a conditional deny does not apply).
    ConditionalAllow,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// Nothing allows.
    ImplicitDeny,
}

/// A condition whose key the analysis could not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCondition {
    /// Which policy (`identity[0]`, `resource`, …), renamed by the caller where it can.
    pub policy: String,
    /// The statement's `Sid`, or its position.
    pub statement: String,
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// The operator as written.
    pub operator: String,
    /// The condition key.
    pub key: String,
    /// The policy's values.
    pub values: Vec<String>,
}

/// The statement that denies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// Which policy.
    pub policy: String,
    /// The statement's `Sid`, or its position.
    pub statement: String,
}

/// What the engine said, with the open conditions or the denying statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The decision.
    pub outcome: Outcome,
    /// Conditions left open (for `ConditionalAllow`, and for denies that hang on them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_conditions: Vec<OpenCondition>,
    /// The denying statement (for `ExplicitDeny`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<Denial>,
}

impl Verdict {
    fn plain(outcome: Outcome) -> Self {
        Self {
            outcome,
            open_conditions: Vec::new(),
            denied_by: None,
        }
    }

    /// An allow: plain, or conditional on what is `open`.
    pub(crate) fn allowed(open: Vec<OpenCondition>) -> Self {
        let outcome = if open.is_empty() {
            Outcome::Allow
        } else {
            Outcome::ConditionalAllow
        };
        Self {
            outcome,
            open_conditions: open,
            denied_by: None,
        }
    }

    /// Allowed, with or without open conditions.
    pub fn allows(&self) -> bool {
        matches!(self.outcome, Outcome::Allow | Outcome::ConditionalAllow)
    }
}

/// Whether every condition key of the set has a value in the request: then nothing is open.
fn every_key_known(set: &PolicySet<'_>, request: &Request) -> bool {
    let context = request.context_entries();
    set.identity
        .iter()
        .chain(set.resource.iter())
        .chain(set.permissions_boundary.iter())
        .chain(set.session.iter())
        .flat_map(|p| p.statements())
        .flat_map(|s| s.conditions())
        .all(|c| context.get(c.key()).is_some())
}

/// The engine's decision on `request`, with what the analysis left open.
pub fn judge(set: &PolicySet<'_>, request: &Request) -> Verdict {
    if every_key_known(set, request) {
        // Nothing can hang on an unknown key: the plain decision is exact.
        match set.evaluate(request) {
            Decision::Allow => return Verdict::plain(Outcome::Allow),
            Decision::ImplicitDeny => return Verdict::plain(Outcome::ImplicitDeny),
            Decision::ExplicitDeny => {}
        }
    }
    read(&set.explain(request))
}

/// Action, resource and principal all match: only conditions stand between it and applying.
fn matches_but_conditions(s: &StatementTrace) -> bool {
    s.action.matched && s.resource.matched && s.principal.as_ref().is_none_or(|p| p.matched)
}

fn is_open(c: &ConditionTrace) -> bool {
    c.request_values.is_none()
}

/// Only open conditions fail: the statement applies for some value of the unknown keys.
fn could_apply(s: &StatementTrace) -> bool {
    matches_but_conditions(s) && s.conditions.iter().all(|c| c.result || is_open(c))
}

fn statement_name(s: &StatementTrace) -> String {
    s.sid.clone().unwrap_or_else(|| format!("#{}", s.index))
}

fn open_of(p: &PolicyTrace, s: &StatementTrace, out: &mut Vec<OpenCondition>) {
    for c in s.conditions.iter().filter(|c| is_open(c)) {
        let open = OpenCondition {
            policy: p.policy.clone(),
            statement: statement_name(s),
            effect: s.effect,
            operator: c.operator.clone(),
            key: c.key.clone(),
            values: c.policy_values.clone(),
        };
        if !out.contains(&open) {
            out.push(open);
        }
    }
}

/// Denies that do not apply only because a key is unknown.
fn conditional_denies(trace: &[PolicyTrace], out: &mut Vec<OpenCondition>) {
    for p in trace {
        for s in &p.statements {
            if s.effect == "Deny" && !s.applies && could_apply(s) {
                open_of(p, s, out);
            }
        }
    }
}

fn group_could_allow(trace: &[PolicyTrace], prefix: &str) -> Option<bool> {
    let mut group = trace
        .iter()
        .filter(|p| p.policy.starts_with(prefix))
        .peekable();
    group.peek()?;
    Some(group.any(|p| {
        p.statements
            .iter()
            .any(|s| s.effect == "Allow" && could_apply(s))
    }))
}

/// Whether some value of the open keys could make the policies allow, and the open conditions
/// that would have to hold. Fail closed: every group in play must be able to allow (identity
/// and resource policies both, where AWS would accept either within one account), so a
/// `ConditionalAllow` is never reported where the engine's combination rules could refuse.
fn possible_allow(trace: &[PolicyTrace], open: &mut Vec<OpenCondition>) -> bool {
    let in_play = |prefix: &str| trace.iter().any(|p| p.policy.starts_with(prefix));
    let could = |prefix: &str| group_could_allow(trace, prefix).unwrap_or(true);
    let possible = (in_play("identity[") || in_play("resource"))
        && ["identity[", "resource", "permissions_boundary", "session["]
            .into_iter()
            .all(could);
    if possible {
        for p in trace {
            for s in p
                .statements
                .iter()
                .filter(|s| s.effect == "Allow" && could_apply(s))
            {
                open_of(p, s, open);
            }
        }
    }
    possible
}

fn read(explanation: &Explanation) -> Verdict {
    let trace = &explanation.trace;
    let mut open = Vec::new();
    match explanation.decision {
        Decision::Allow => {
            for p in trace {
                for s in p
                    .statements
                    .iter()
                    .filter(|s| s.applies && s.effect == "Allow")
                {
                    open_of(p, s, &mut open);
                }
            }
            conditional_denies(trace, &mut open);
            Verdict::allowed(open)
        }
        Decision::ExplicitDeny => {
            let denying: Vec<(&PolicyTrace, &StatementTrace)> = trace
                .iter()
                .flat_map(|p| p.statements.iter().map(move |s| (p, s)))
                .filter(|(_, s)| s.applies && s.effect == "Deny")
                .collect();
            // A deny that applies whatever the unknown keys: definite.
            let definite = denying
                .iter()
                .find(|(_, s)| !s.conditions.iter().any(is_open));
            if let Some((p, s)) = definite.or(denying.first()) {
                let denied_by = Some(Denial {
                    policy: p.policy.clone(),
                    statement: statement_name(s),
                });
                if definite.is_none() {
                    // Every deny hangs on a key the analysis does not know (a negated
                    // operator or `…IfExists` on an absent key): allowed when they do not apply.
                    for (p, s) in &denying {
                        open_of(p, s, &mut open);
                    }
                    if possible_allow(trace, &mut open) {
                        conditional_denies(trace, &mut open);
                        return Verdict::allowed(open);
                    }
                    open.clear();
                }
                let (p, s) = definite.copied().unwrap_or((p, s));
                open_of(p, s, &mut open);
                return Verdict {
                    outcome: Outcome::ExplicitDeny,
                    open_conditions: open,
                    denied_by,
                };
            }
            Verdict::plain(Outcome::ExplicitDeny)
        }
        Decision::ImplicitDeny => {
            if !possible_allow(trace, &mut open) || open.is_empty() {
                // Nothing open could change it (something else refuses).
                return Verdict::plain(Outcome::ImplicitDeny);
            }
            conditional_denies(trace, &mut open);
            Verdict::allowed(open)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podiam_policy::{Context, Policy};

    fn policy(text: &str) -> Policy {
        Policy::parse(text).unwrap()
    }

    fn judge_one(identity: &str, context: Context) -> Verdict {
        let p = policy(identity);
        let set = PolicySet {
            identity: vec![&p],
            ..PolicySet::default()
        };
        let request = Request::new("dynamodb:PutItem")
            .resource("arn:aws:dynamodb:us-west-2:111122223333:table/carts")
            .context(context);
        judge(&set, &request)
    }

    #[test]
    fn unconditional_policies_give_exact_answers() {
        let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#;
        assert_eq!(judge_one(allow, Context::new()).outcome, Outcome::Allow);
        let other = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        assert_eq!(
            judge_one(other, Context::new()).outcome,
            Outcome::ImplicitDeny
        );
    }

    #[test]
    fn a_condition_on_an_unknown_key_is_open_and_a_known_failing_one_is_not() {
        let ip = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Office","Effect":"Allow","Action":"dynamodb:PutItem","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let v = judge_one(ip, Context::new());
        assert_eq!(v.outcome, Outcome::ConditionalAllow);
        assert_eq!(v.open_conditions.len(), 1);
        assert_eq!(v.open_conditions[0].key, "aws:SourceIp");
        assert_eq!(v.open_conditions[0].statement, "Office");
        // The key known, and not matching: a plain no.
        let v = judge_one(ip, Context::new().with("aws:SourceIp", "192.0.2.1"));
        assert_eq!(v.outcome, Outcome::ImplicitDeny);
        // Known and matching: a plain yes.
        let v = judge_one(ip, Context::new().with("aws:SourceIp", "10.1.2.3"));
        assert_eq!(v.outcome, Outcome::Allow);
    }

    #[test]
    fn an_explicit_deny_names_its_statement_and_a_conditional_one_is_open() {
        let deny = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"NoWrites","Effect":"Deny","Action":"dynamodb:PutItem","Resource":"*"}]}"#;
        let v = judge_one(deny, Context::new());
        assert_eq!(v.outcome, Outcome::ExplicitDeny);
        assert_eq!(
            v.denied_by,
            Some(Denial {
                policy: "identity[0]".into(),
                statement: "NoWrites".into()
            })
        );
        let maybe = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/frozen":"true"}}}]}"#;
        let v = judge_one(maybe, Context::new());
        assert_eq!(v.outcome, Outcome::ConditionalAllow);
        assert_eq!(v.open_conditions[0].effect, "Deny");
        assert_eq!(v.open_conditions[0].statement, "#1");
    }

    #[test]
    fn a_deny_that_applies_only_for_want_of_a_key_is_open() {
        let v = judge_one(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"*","Resource":"*"},
                {"Sid":"Office","Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
            Context::new(),
        );
        assert_eq!(v.outcome, Outcome::ConditionalAllow, "{v:?}");
        assert_eq!(v.open_conditions[0].key, "aws:SourceIp");
        // With nothing else allowing, it stays a deny.
        let v = judge_one(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
            Context::new(),
        );
        assert_eq!(v.outcome, Outcome::ExplicitDeny);
    }

    #[test]
    fn an_open_condition_elsewhere_does_not_turn_a_missing_grant_into_an_allow() {
        // The trust names only the account: the caller's own policies must allow, and they do
        // not (they allow s3 with a condition on an unknown key). Not even conditionally.
        let trust = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#,
        );
        let identity = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"a"}}}]}"#,
        );
        let set = PolicySet {
            identity: vec![&identity],
            resource: Some(&trust),
            ..PolicySet::default()
        };
        let principal: podiam_policy::AwsPrincipal =
            "arn:aws:sts::111122223333:assumed-role/first/s"
                .parse()
                .unwrap();
        let request = Request::new("sts:AssumeRole")
            .principal(podiam_policy::Principal::Aws(principal))
            .resource("arn:aws:iam::111122223333:role/target");
        assert_eq!(judge(&set, &request).outcome, Outcome::ImplicitDeny);
    }

    #[test]
    fn a_boundary_without_a_possible_allow_is_a_plain_no() {
        let identity = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#,
        );
        let boundary = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        );
        let set = PolicySet {
            identity: vec![&identity],
            permissions_boundary: Some(&boundary),
            ..PolicySet::default()
        };
        let request = Request::new("dynamodb:PutItem").resource("*");
        assert_eq!(judge(&set, &request).outcome, Outcome::ImplicitDeny);
        let request = Request::new("s3:GetObject").resource("*");
        assert_eq!(judge(&set, &request).outcome, Outcome::ConditionalAllow);
    }
}
