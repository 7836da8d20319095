//! `/console/simulate`: the policy simulator. The form's POST decides through the same
//! [`Simulation`] as IAM `SimulatePrincipalPolicy` (authorized as
//! `iam:SimulatePrincipalPolicy` on the principal), and shows every policy, statement and
//! condition of the trace.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};
use podiam_iam::Caller;
use podiam_policy::{
    ConditionTrace, Context, ContextValue, ElementTrace, Explanation, PolicyOutcome,
};
use podiam_wire::WireError;

use super::{Page, error_box};
use crate::console::{Viewer, form};
use crate::iam_api::simulate::{Simulation, decision_name};

/// The most action × resource pairs one form may ask for.
const MAX_PAIRS: usize = 100;

/// What the form holds.
#[derive(Debug, Default)]
struct Input {
    principal: String,
    actions: String,
    resources: String,
    context: String,
}

impl Input {
    fn from_fields(fields: &[(String, String)]) -> Self {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Self {
            principal: field("principal").trim().to_owned(),
            actions: field("actions"),
            resources: field("resources"),
            context: field("context"),
        }
    }

    /// The actions, one per line or separated by spaces or commas.
    fn actions(&self) -> Vec<&str> {
        self.actions
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|a| !a.is_empty())
            .collect()
    }

    /// The resources, one per line or separated by spaces (`*` when none).
    fn resources(&self) -> Vec<&str> {
        let resources: Vec<&str> = self.resources.split_whitespace().collect();
        if resources.is_empty() {
            vec!["*"]
        } else {
            resources
        }
    }

    /// `key=value` lines; a key on several lines has several values.
    fn context(&self) -> Result<Context, String> {
        let mut entries: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for line in self
            .context
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!(
                    "The context line {line:?} is not key=value (aws:SourceIp=10.0.0.1, say)."
                ));
            };
            entries
                .entry(key.trim())
                .or_default()
                .push(value.trim().to_owned());
        }
        let mut context = Context::new();
        for (key, mut values) in entries {
            let value = if values.len() == 1 {
                ContextValue::Single(values.pop().unwrap_or_default())
            } else {
                ContextValue::Multi(values)
            };
            context.insert(key, value);
        }
        Ok(context)
    }
}

/// `GET /console/simulate`: the form, the principal set to the viewer's user or role.
pub(crate) async fn form_page(viewer: Viewer) -> Response {
    let principal = match &viewer.caller {
        Caller::Root => String::new(),
        Caller::User(_) => viewer.arn.clone(),
        Caller::Session { session, .. } => session.details.role_arn.clone(),
    };
    let input = Input {
        principal,
        ..Input::default()
    };
    let body = form_markup(&viewer, &input);
    Page::new("/console/simulate", "Policy simulator").render(&viewer, body)
}

/// `POST /console/simulate`: runs the simulation and shows the form again with the results.
pub(crate) async fn run(viewer: Viewer, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let fields = match form(&viewer, &uri, &headers, body).await {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let input = Input::from_fields(&fields);
    let (status, results) = match simulate(&viewer, &input) {
        Ok(results) => (StatusCode::OK, results),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            error_box(&e),
        ),
    };
    let body = html! {
        (form_markup(&viewer, &input))
        section #results { (results) }
    };
    Page::new("/console/simulate", "Policy simulator")
        .status(status)
        .render(&viewer, body)
}

fn invalid(message: String) -> WireError {
    WireError::new("InvalidInput", 400, message)
}

fn simulate(viewer: &Viewer, input: &Input) -> Result<Markup, WireError> {
    if input.principal.is_empty() || input.principal.len() > 2048 {
        return Err(invalid(
            "Give the ARN of a user or role of this account as the principal.".to_owned(),
        ));
    }
    let actions = input.actions();
    if actions.is_empty() {
        return Err(invalid(
            "Give at least one action (s3:GetObject, say).".to_owned(),
        ));
    }
    let resources = input.resources();
    if actions.len().saturating_mul(resources.len()) > MAX_PAIRS {
        return Err(invalid(format!(
            "{} actions × {} resources is more than the {MAX_PAIRS} simulations one form runs.",
            actions.len(),
            resources.len()
        )));
    }
    let context = input.context().map_err(invalid)?;
    let ctx = viewer.ctx();
    let simulation = Simulation::of_principal(&ctx, &input.principal)?;
    Ok(html! {
        @for action in &actions {
            @for resource in &resources {
                (result(&simulation, action, resource, &simulation.explain(action, resource, &context, None)))
            }
        }
    })
}

fn form_markup(viewer: &Viewer, input: &Input) -> Markup {
    html! {
        form.simulate method="post" action="/console/simulate" {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            label for="principal" { "Principal ARN (a user or role)" }
            input #principal type="text" name="principal" value=(input.principal)
                placeholder="arn:aws:iam::111122223333:role/name";
            label for="actions" { "Actions, one per line" }
            textarea #actions name="actions" rows="3" placeholder="dynamodb:GetItem" { (input.actions) }
            label for="resources" { "Resource ARNs, one per line (* when empty)" }
            textarea #resources name="resources" rows="3" placeholder="arn:aws:dynamodb:eu-central-1:111122223333:table/name" { (input.resources) }
            label for="context" { "Context entries, key=value per line (optional)" }
            textarea #context name="context" rows="3" placeholder="aws:SourceIp=10.0.0.1" { (input.context) }
            button #simulate type="submit" { "Simulate" }
        }
    }
}

fn outcome_name(outcome: PolicyOutcome) -> &'static str {
    match outcome {
        PolicyOutcome::Allow => "allows",
        PolicyOutcome::Deny => "denies",
        PolicyOutcome::NotApplicable => "does not apply",
    }
}

/// ✓ or ✗.
fn mark(passed: bool) -> Markup {
    html! {
        @if passed { span.pass { "✓ " } } @else { span.fail { "✗ " } }
    }
}

fn element(trace: &ElementTrace) -> Markup {
    html! {
        (mark(trace.matched))
        (trace.reason)
    }
}

fn values(values: &[String]) -> String {
    format!("[{}]", values.join(", "))
}

fn condition(c: &ConditionTrace) -> Markup {
    html! {
        li {
            (mark(c.result))
            code { (c.operator) } " " code { (c.key) } " policy " code { (values(&c.policy_values)) }
            " request "
            @match &c.request_values {
                Some(v) => { code { (values(v)) } }
                None => { span.muted { "absent" } }
            }
            " — " (c.reason)
        }
    }
}

fn result(
    simulation: &Simulation,
    action: &str,
    resource: &str,
    explanation: &Explanation,
) -> Markup {
    let decision = decision_name(explanation.decision);
    html! {
        section.result {
            h2 { code { (action) } " on " code { (resource) } }
            p {
                "Decision: "
                span class=(format!("decision {}", decision.to_ascii_lowercase())) { (decision) }
            }
            p.muted { (explanation.reason) }
            @for policy in &explanation.trace {
                h3 {
                    @match simulation.source(&policy.policy) {
                        Some(named) => { (named.kind) " " code { (named.id) } }
                        None => { code { (policy.policy) } }
                    }
                    " " span.muted { (outcome_name(policy.outcome)) }
                }
                table.trace {
                    thead {
                        tr {
                            th { "#" } th { "Sid" } th { "Effect" } th { "Applies" }
                            th { "Action" } th { "Resource" } th { "Principal" } th { "Conditions" }
                        }
                    }
                    tbody {
                        @for s in &policy.statements {
                            tr.matched[s.applies] {
                                td { (s.index) }
                                td { (s.sid.as_deref().unwrap_or_default()) }
                                td { (s.effect) }
                                td { (if s.applies { "yes" } else { "no" }) }
                                td { (element(&s.action)) }
                                td { (element(&s.resource)) }
                                td {
                                    @if let Some(p) = &s.principal { (element(p)) } @else { span.muted { "—" } }
                                }
                                td {
                                    @if s.conditions.is_empty() {
                                        span.muted { "none" }
                                    } @else {
                                        ul { @for c in &s.conditions { (condition(c)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
