//! Sentences about a trace: why a statement applied or not, which statement decided, and
//! AWS's own denial message.

use podiam_policy::{Decision, PolicyKind, Rule, StatementTrace};

use super::evaluate::Evaluation;

/// Why a statement did not apply: every element and condition that failed.
pub(crate) fn failures(st: &StatementTrace) -> Vec<String> {
    let mut out = Vec::new();
    if !st.action.matched {
        out.push(st.action.reason.clone());
    }
    if !st.resource.matched {
        out.push(st.resource.reason.clone());
    }
    if let Some(p) = st.principal.as_ref().filter(|p| !p.matched) {
        out.push(p.reason.clone());
    }
    for c in st.conditions.iter().filter(|c| !c.result) {
        out.push(format!("condition {} {}: {}", c.operator, c.key, c.reason));
    }
    out
}

/// One line: whether the statement applied, and why.
pub(crate) fn statement_line(st: &StatementTrace) -> String {
    let sid = st
        .sid
        .as_ref()
        .map(|s| format!(" {s:?}"))
        .unwrap_or_default();
    let head = format!("[{}]{sid} {}", st.index, st.effect);
    if st.applies {
        let mut why = vec![st.action.reason.clone(), st.resource.reason.clone()];
        if let Some(p) = &st.principal {
            why.push(p.reason.clone());
        }
        if !st.conditions.is_empty() {
            why.push(format!("{} condition(s) hold", st.conditions.len()));
        }
        format!("{head}: applies — {}", why.join("; "))
    } else {
        format!("{head}: does not apply — {}", failures(st).join("; "))
    }
}

/// `statement 0 "Sid" of <policy name>`.
fn statement_name(ev: &Evaluation, label: &str, st: &StatementTrace) -> String {
    let sid = st
        .sid
        .as_ref()
        .map(|s| format!(" {s:?}"))
        .unwrap_or_default();
    let policy = ev.policies.get(label).map_or(label, String::as_str);
    format!("statement {}{sid} of {policy}", st.index)
}

/// The statement that decided an `Allow` or an explicit deny.
pub(crate) fn deciding_statement(ev: &Evaluation) -> Option<String> {
    let effect = match ev.decision() {
        Decision::Allow => "Allow",
        Decision::ExplicitDeny => "Deny",
        Decision::ImplicitDeny => return None,
    };
    let verb = if effect == "Allow" {
        "allows"
    } else {
        "denies"
    };
    ev.explanation.trace.iter().find_map(|p| {
        p.statements
            .iter()
            .find(|s| s.applies && s.effect == effect)
            .map(|s| format!("{} {verb} it", statement_name(ev, &p.policy, s)))
    })
}

/// Which policies could have allowed, for the rule that denied.
fn relevant(rule: &Rule, label: &str) -> bool {
    match rule {
        Rule::Boundary => label == "permissions_boundary",
        Rule::Session => label.starts_with("session["),
        Rule::CrossAccountNoResource => label == "resource",
        Rule::CrossAccountNoIdentity => label.starts_with("identity["),
        _ => label.starts_with("identity[") || label == "resource",
    }
}

/// Why nothing allowed: the Allow statements that could have, and why each did not apply.
pub(crate) fn no_statement_allows(ev: &Evaluation) -> String {
    let policies: Vec<_> = ev
        .explanation
        .trace
        .iter()
        .filter(|p| relevant(&ev.rule, &p.policy))
        .collect();
    if policies.is_empty() {
        return match ev.rule {
            Rule::NothingAllows | Rule::CrossAccountNoIdentity
                if !ev.policies.contains_key("resource") =>
            {
                "no statement allows it: the role has no identity-based policies".to_owned()
            }
            _ => "no statement allows it: there are no policies to allow it".to_owned(),
        };
    }
    let allows: Vec<String> = policies
        .iter()
        .flat_map(|p| {
            p.statements
                .iter()
                .filter(|s| s.effect == "Allow")
                .map(|s| {
                    format!(
                        "{} does not apply ({})",
                        statement_name(ev, &p.policy, s),
                        failures(s).join("; ")
                    )
                })
        })
        .collect();
    if allows.is_empty() {
        return "no statement allows it: the policies have no Allow statement".to_owned();
    }
    format!("no statement allows it: {}", allows.join("; "))
}

fn article(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Resource | PolicyKind::Boundary => "a",
        _ => "an",
    }
}

/// The denial as AWS words it (`podiam_iam`'s `AccessDenied` message), then which statement
/// denied or why none allowed.
pub(crate) fn permission_denied(ev: &Evaluation) -> String {
    let action = &ev.action;
    let because = match &ev.rule {
        Rule::Denied(kind) => format!(
            "with an explicit deny in {} {}",
            article(*kind),
            kind.aws_name()
        ),
        Rule::Boundary => format!("because no permissions boundary allows the {action} action"),
        Rule::Session => format!("because no session policy allows the {action} action"),
        _ => format!("because no identity-based policy allows the {action} action"),
    };
    let detail = deciding_statement(ev).unwrap_or_else(|| no_statement_allows(ev));
    format!(
        "User: {} is not authorized to perform: {action} on resource: {} {because}; {detail}",
        ev.principal, ev.resource
    )
}

/// Why the trust policy refused, with the statement that denied or why none allowed.
pub(crate) fn trust_denied(ev: &Evaluation) -> String {
    let detail = deciding_statement(ev).unwrap_or_else(|| no_statement_allows(ev));
    format!(
        "the trust policy of {} does not allow {} for {}: {}; {detail}",
        ev.resource, ev.action, ev.principal, ev.explanation.reason
    )
}

#[cfg(test)]
mod tests {
    use podiam_policy::{Policy, PolicySet, Principal, Request};

    use super::super::evaluate::{Facts, NamedPolicy, Role, Session, permissions};
    use super::*;

    fn facts() -> Facts {
        Facts {
            now: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            region: "eu-central-1".into(),
            secure_transport: false,
        }
    }

    fn session() -> Session {
        Session {
            role_arn: "arn:aws:iam::637423329338:role/r".into(),
            role_id: "AROA1".into(),
            session_name: "s".into(),
            tags: Vec::new(),
            policy: None,
            issued_at: facts().now,
        }
    }

    fn role(policies: &[(&str, &str)]) -> Role {
        Role {
            arn: "arn:aws:iam::637423329338:role/r".into(),
            id: "AROA1".into(),
            trust: None,
            identity: policies
                .iter()
                .map(|(name, text)| NamedPolicy {
                    name: (*name).to_owned(),
                    policy: Policy::parse(text).unwrap(),
                })
                .collect(),
            boundary: None,
            tags: Vec::new(),
        }
    }

    const TABLE: &str = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts";

    #[test]
    fn no_policies_names_the_missing_identity_policy() {
        let ev = permissions(
            Some(&role(&[])),
            &session(),
            "dynamodb:PutItem",
            TABLE,
            &facts(),
        );
        let text = permission_denied(&ev);
        assert_eq!(
            text,
            "User: arn:aws:sts::637423329338:assumed-role/r/s is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts because no identity-based policy allows the dynamodb:PutItem action; no statement allows it: the role has no identity-based policies"
        );
    }

    #[test]
    fn a_deny_statement_is_named() {
        let r = role(&[
            (
                "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#,
            ),
            (
                "inline policy \"no-writes\"",
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoWrites","Effect":"Deny","Action":"dynamodb:PutItem","Resource":"*"}]}"#,
            ),
        ]);
        let ev = permissions(Some(&r), &session(), "dynamodb:PutItem", TABLE, &facts());
        assert_eq!(ev.decision(), Decision::ExplicitDeny);
        let text = permission_denied(&ev);
        assert!(
            text.ends_with(
                "with an explicit deny in an identity-based policy; statement 0 \"NoWrites\" of inline policy \"no-writes\" denies it"
            ),
            "{text}"
        );
        let allowed = permissions(Some(&r), &session(), "dynamodb:GetItem", TABLE, &facts());
        assert_eq!(
            deciding_statement(&allowed).unwrap(),
            "statement 0 of arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess allows it"
        );
    }

    #[test]
    fn statements_that_do_not_apply_say_why() {
        let r = role(&[(
            "inline policy \"reads\"",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#,
        )]);
        let ev = permissions(Some(&r), &session(), "dynamodb:PutItem", TABLE, &facts());
        let line = statement_line(&ev.explanation.trace[0].statements[0]);
        assert!(line.starts_with("[0] Allow: does not apply — no Action pattern matches \"dynamodb:PutItem\"; condition StringEquals aws:RequestedRegion: "), "{line}");
        let detail = no_statement_allows(&ev);
        assert!(detail.starts_with("no statement allows it: statement 0 of inline policy \"reads\" does not apply (no Action pattern"), "{detail}");
    }

    #[test]
    fn trust_denials_name_the_failing_condition() {
        let trust = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}]}"#).unwrap();
        let mut request = Request::new("sts:AssumeRole")
            .principal(Principal::Service("pods.eks.amazonaws.com".into()))
            .resource("arn:aws:iam::637423329338:role/r");
        request
            .context_mut()
            .insert("aws:SourceAccount", "637423329338");
        let set = PolicySet {
            resource: Some(&trust),
            ..PolicySet::default()
        };
        let ev = Evaluation {
            principal: "Service pods.eks.amazonaws.com".into(),
            action: "sts:AssumeRole".into(),
            resource: "arn:aws:iam::637423329338:role/r".into(),
            context: Default::default(),
            policies: [("resource".to_owned(), "trust policy".to_owned())].into(),
            explanation: set.explain(&request),
            rule: set.decide(&request).1,
        };
        let text = trust_denied(&ev);
        assert!(text.contains("statement 0 of trust policy does not apply (condition StringEquals aws:SourceAccount"), "{text}");
    }
}
