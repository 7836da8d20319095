//! The report for people: numbered sections, one line per chain step, check and statement,
//! conditions with the policy's and the request's values.

use std::fmt::Write as _;

use podiam_policy::{ConditionTrace, ContextValue, Decision, PolicyOutcome};

use super::chain::Outcome;
use super::evaluate::Evaluation;
use super::reason::statement_line;
use super::{Report, Trust};

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "Allow",
        Decision::ExplicitDeny => "ExplicitDeny",
        Decision::ImplicitDeny => "ImplicitDeny",
    }
}

fn outcome_word(o: PolicyOutcome) -> &'static str {
    match o {
        PolicyOutcome::Allow => "Allow",
        PolicyOutcome::Deny => "Deny",
        PolicyOutcome::NotApplicable => "no statement applies",
    }
}

fn values(v: &[String]) -> String {
    let quoted: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn condition_line(c: &ConditionTrace) -> String {
    let request = c
        .request_values
        .as_deref()
        .map_or_else(|| "(absent)".to_owned(), values);
    format!(
        "if {} {}: policy {} vs request {} → {} ({})",
        c.operator,
        c.key,
        values(&c.policy_values),
        request,
        c.result,
        c.reason
    )
}

fn context_value(v: &ContextValue) -> String {
    match v {
        ContextValue::Single(s) => s.clone(),
        ContextValue::Multi(vs) => values(vs),
    }
}

/// The request, its context, and every policy and statement of an evaluation.
fn evaluation(out: &mut String, ev: &Evaluation) {
    let _ = writeln!(out, "   request: {} by {}", ev.action, ev.principal);
    let _ = writeln!(out, "            on {}", ev.resource);
    let _ = writeln!(out, "   context:");
    for (k, v) in &ev.context {
        let _ = writeln!(out, "     {k} = {}", context_value(v));
    }
    if ev.explanation.trace.is_empty() {
        let _ = writeln!(out, "   policies: none");
    }
    for policy in &ev.explanation.trace {
        let name = ev
            .policies
            .get(&policy.policy)
            .map_or_else(String::new, |n| format!(" ({n})"));
        let _ = writeln!(
            out,
            "   {}{name}: {}",
            policy.policy,
            outcome_word(policy.outcome)
        );
        if policy.statements.is_empty() {
            let _ = writeln!(out, "     (no statements)");
        }
        for st in &policy.statements {
            let _ = writeln!(out, "     {}", statement_line(st));
            for c in &st.conditions {
                let _ = writeln!(out, "         {}", condition_line(c));
            }
        }
    }
    let _ = writeln!(
        out,
        "   => {}: {}",
        decision_word(ev.explanation.decision),
        ev.explanation.reason
    );
}

fn trust(out: &mut String, number: usize, title: &str, t: &Trust) {
    let _ = writeln!(
        out,
        "{number}. {title} of {}: {}",
        t.role_arn,
        decision_word(t.evaluation.decision())
    );
    evaluation(out, &t.evaluation);
    for other in &t.other_actions {
        let _ = writeln!(
            out,
            "   also {}: {} ({})",
            other.action,
            decision_word(other.decision),
            other.reason
        );
    }
    out.push('\n');
}

/// The whole report as text.
pub(super) fn text(r: &Report) -> String {
    let mut out = String::new();
    let m = &r.mechanism;
    let _ = writeln!(
        out,
        "podiam explain: {} on {}\n  by a pod of ServiceAccount {} (pod {}, node {}) on cluster {}\n",
        r.action, r.resource, m.service_account, m.pod, m.node, r.cluster
    );

    let _ = writeln!(out, "1. Credentials: {}", m.title);
    let _ = writeln!(out, "   why: {}", m.why);
    let _ = writeln!(out, "   the AWS SDK's default credential chain in the pod:");
    for step in &m.chain {
        let word = match step.outcome {
            Outcome::Used => "USED",
            Outcome::Skipped => "skipped",
            Outcome::NotReached => "not reached",
        };
        let _ = writeln!(
            out,
            "     {word:<11}  {}: {}",
            step.provider.title(),
            step.reason
        );
        if step.outcome == Outcome::Used {
            for (k, v) in &step.variables {
                if let Some(v) = v {
                    let _ = writeln!(out, "                    {k}={v}");
                }
            }
        }
    }
    let _ = writeln!(out, "   role:    {}", m.role_arn);
    if let Some(target) = &m.target_role_arn {
        let _ = writeln!(out, "   target:  {target} (role chaining)");
    }
    let _ = writeln!(out, "   session: {}", m.session_arn);
    for note in &m.notes {
        let _ = writeln!(out, "   note: {note}");
    }
    out.push('\n');

    match &r.token {
        None => {
            let _ = writeln!(
                out,
                "2. Token: not applicable (IMDS uses no service-account token)\n"
            );
        }
        Some(t) => {
            let _ = writeln!(
                out,
                "2. Token: {} (checked as {} does)",
                if t.valid { "valid" } else { "REFUSED" },
                t.verified_by
            );
            let _ = writeln!(out, "   file {}", t.file);
            for c in &t.checks {
                let _ = writeln!(
                    out,
                    "   {:<4}  {:<13}  {}",
                    if c.ok { "ok" } else { "FAIL" },
                    c.check,
                    c.detail
                );
            }
            if let Some(e) = &t.error {
                let _ = writeln!(out, "   => {e}");
            }
            out.push('\n');
        }
    }

    let mut number = 3;
    match &r.trust {
        None if r.token.is_none() => {
            let _ = writeln!(
                out,
                "{number}. Trust policy: not applicable (the node's own credentials)\n"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "{number}. Trust policy: not evaluated (no role, or no token to evaluate it with)\n"
            );
        }
        Some(t) => trust(&mut out, number, "Trust policy", t),
    }
    if let Some(t) = &r.target_trust {
        number += 1;
        trust(&mut out, number, "Target role's trust policy", t);
    }
    number += 1;
    let p = &r.permissions;
    let _ = writeln!(
        out,
        "{number}. Permissions of the session: {}",
        decision_word(p.decision())
    );
    evaluation(&mut out, p);
    out.push('\n');

    let _ = writeln!(
        out,
        "Answer: {} ({})",
        if r.decision.is_allowed() {
            "ALLOWED"
        } else {
            "DENIED"
        },
        decision_word(r.decision)
    );
    let _ = writeln!(out, "  {}", r.reason);
    out
}
