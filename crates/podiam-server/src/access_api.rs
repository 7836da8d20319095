//! `GET /podiam/access/{who,what,findings}` (signing name `podiam`): who can do what, over
//! this replica's state, seeing only what the caller may read. A role is in the analysis when
//! the caller may `iam:GetRole` it, an association when the caller may
//! `eks:DescribePodIdentityAssociation` it: the same authorization as reading them one by one.

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::response::Response;
use podiam_access::{FindingsOptions, Snapshot};
use podiam_iam::{Caller, RequestFacts};
use podiam_policy::ContextValue;
use podiam_wire::WireError;
use serde_json::{Value, json};

use crate::app::App;
use crate::rest::{Call, Input, RestApi, invalid};

/// The default of `unusedDays`: AWS's IAM Access Analyzer's default for unused access.
const DEFAULT_UNUSED_DAYS: u32 = 90;

/// The analyses running on this replica, by whose they are ([`Caller::limit_key`]): each holds
/// the state's read locks.
static RUNNING: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// At most this many at once, and one per principal; more are refused
/// (`ThrottlingException`), so that analyses cannot pile up in front of the state's writers
/// (and the readers queued behind them), and no one caller can take every place.
const MAX_RUNNING: usize = 2;

/// One of the [`MAX_RUNNING`] places, given back on drop.
struct Running(String);

fn running() -> std::sync::MutexGuard<'static, Vec<String>> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Running {
    fn take(whose: String) -> Option<Self> {
        let mut running = running();
        if running.len() >= MAX_RUNNING || running.contains(&whose) {
            return None;
        }
        running.push(whose.clone());
        Some(Self(whose))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = running();
        if let Some(at) = running.iter().position(|w| *w == self.0) {
            running.swap_remove(at);
        }
    }
}

/// The refusal when [`MAX_RUNNING`] analyses, or one of the caller's, are running.
pub(crate) fn busy() -> WireError {
    WireError::new(
        "ThrottlingException",
        429,
        "Too many access analyses are running on this server, or one of yours is; try again in a moment.",
    )
}

/// The actions that read a role and its policies: a role is in an analysis only when the
/// caller may do all of them on it, as reading it through the API would need.
const READ_ROLE: [&str; 3] = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
];

/// Runs `f` over a snapshot of this replica's state as `caller` may see it; `None` when
/// [`MAX_RUNNING`] analyses, or one of the caller's, are already running. The state stays
/// read-locked while it runs (a few hundred milliseconds at 10,000 roles: BENCHMARKS.md), so
/// callers run it on a blocking thread.
pub(crate) fn analyse<R>(
    app: &App,
    caller: &Caller,
    facts: &RequestFacts,
    f: impl FnOnce(&Snapshot<'_>) -> R,
) -> Option<R> {
    let _running = Running::take(caller.limit_key())?;
    let inner = &app.inner;
    let iam = inner.iam.state();
    let eks = inner.eks.state();
    let root = matches!(caller, Caller::Root);
    let role_visible = |arn: &str, tags: &[(String, String)]| {
        root || {
            let tags: Vec<(String, ContextValue)> = tags
                .iter()
                .map(|(k, v)| {
                    (
                        format!("aws:ResourceTag/{k}"),
                        ContextValue::from(v.as_str()),
                    )
                })
                .collect();
            READ_ROLE
                .iter()
                .all(|action| iam.authorize(caller, action, arn, facts, &tags).is_ok())
        }
    };
    let association_visible = |a: &podiam_eks::AssociationRecord| {
        root || {
            let arn = inner.eks.association_arn(&a.cluster, &a.id);
            iam.authorize(
                caller,
                "eks:DescribePodIdentityAssociation",
                &arn,
                facts,
                &[],
            )
            .is_ok()
        }
    };
    let may_read =
        |action: &str, arn: &str| root || iam.authorize(caller, action, arn, facts, &[]).is_ok();
    let snapshot = Snapshot {
        iam: &iam,
        eks: &eks,
        region: &inner.region,
        now: facts.now,
        role_visible: &role_visible,
        association_visible: &association_visible,
        may_read: &may_read,
    };
    Some(podiam_iam::scan(|| f(&snapshot)))
}

/// What one request asks.
enum Question {
    Who {
        action: String,
        resource: String,
        cluster: Option<String>,
    },
    What {
        cluster: String,
        namespace: String,
        service_account: String,
    },
    Findings {
        cluster: Option<String>,
        unused_days: u32,
    },
}

fn required(input: &Input<'_>, name: &str) -> Result<String, WireError> {
    match input.query(name) {
        Some(v) if !v.is_empty() && v.len() <= 2048 => Ok(v.to_owned()),
        Some(_) => Err(invalid(format!("{name} must be 1 to 2048 characters"))),
        None => Err(invalid(format!("{name} is required"))),
    }
}

fn question(operation: &str, input: &Input<'_>) -> Result<Question, WireError> {
    let cluster = input.query("cluster").map(str::to_owned);
    Ok(match operation {
        "AccessWho" => Question::Who {
            action: required(input, "action")?,
            resource: required(input, "resource")?,
            cluster,
        },
        "AccessWhat" => Question::What {
            cluster: required(input, "cluster")?,
            namespace: required(input, "namespace")?,
            service_account: required(input, "serviceAccount")?,
        },
        _ => Question::Findings {
            cluster,
            unused_days: match input.query("unusedDays") {
                None => DEFAULT_UNUSED_DAYS,
                Some(text) => text
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=36_500).contains(d))
                    .ok_or_else(|| {
                        invalid(format!(
                            "unusedDays {text:?} must be a number of days from 1 to 36500"
                        ))
                    })?,
            },
        },
    })
}

fn answer(app: &App, caller: &Caller, facts: &RequestFacts, question: &Question) -> Option<Value> {
    let upstream = app.inner.eks.upstream().map(|u| u.accounts.clone());
    let is_upstream = |arn: &str| upstream.as_ref().is_some_and(|u| u.holds(arn));
    analyse(app, caller, facts, |snapshot| match question {
        Question::Who {
            action,
            resource,
            cluster,
        } => json!(podiam_access::who(
            snapshot,
            action,
            resource,
            cluster.as_deref()
        )),
        Question::What {
            cluster,
            namespace,
            service_account,
        } => json!(podiam_access::what(
            snapshot,
            cluster,
            namespace,
            service_account
        )),
        Question::Findings {
            cluster,
            unused_days,
        } => json!({"findings": podiam_access::findings(
            snapshot,
            &FindingsOptions {
                cluster: cluster.as_deref(),
                unused_days: *unused_days,
                upstream: &is_upstream,
            },
        )}),
    })
}

async fn handle(app: App, request: Request, operation: &'static str) -> Response {
    let call = Call::new(app, RestApi::Podiam, operation);
    let result = async {
        let input = call.begin(request).await?;
        let question = question(operation, &input)?;
        let caller = input.ctx.caller()?.clone();
        let facts = input.ctx.facts.clone();
        let app = call.app.clone();
        tokio::task::spawn_blocking(move || answer(&app, &caller, &facts, &question))
            .await
            .map_err(|_| WireError::new("ServerException", 500, "The analysis did not finish."))?
            .ok_or_else(busy)
    }
    .await;
    call.finish(result)
}

pub(crate) async fn who(State(app): State<App>, request: Request) -> Response {
    handle(app, request, "AccessWho").await
}

pub(crate) async fn what(State(app): State<App>, request: Request) -> Response {
    handle(app, request, "AccessWhat").await
}

pub(crate) async fn findings(State(app): State<App>, request: Request) -> Response {
    handle(app, request, "AccessFindings").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_two_analyses_run_at_once_and_one_per_principal() {
        let first = Running::take("alice".to_owned());
        assert!(first.is_some());
        assert!(Running::take("alice".to_owned()).is_none(), "one each");
        let second = Running::take("bob".to_owned());
        assert!(second.is_some());
        assert!(Running::take("carol".to_owned()).is_none(), "two in all");
        drop(first);
        let third = Running::take("carol".to_owned());
        assert!(third.is_some());
        drop((second, third));
        assert!(running().is_empty());
        assert!(Running::take("alice".to_owned()).is_some());
    }
}
