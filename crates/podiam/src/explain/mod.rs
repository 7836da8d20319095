//! `podiam explain`: may a pod of this ServiceAccount call this action on this resource, and
//! why — the credential chain, the token checks, the trust policy and the permissions, each
//! decided by the same code and the same policy engine that podiam uses for real.

mod chain;
mod evaluate;
mod gather;
mod issue;
mod reason;
mod render;
mod token;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use podiam_policy::Decision;
use podiam_types::{Clock as _, SystemClock};
use podiam_webhook::{Mode, ServiceAccountInfo};
use serde::Serialize;

use crate::cli_io::exit_on;
use crate::dev::DEV_NODE_NAME;
use crate::pod::{
    Connection, association_ids, connect, container_env, mutate_pod, mutation_config, pod_of,
};
use chain::{Chain, Provider, lookup};
use evaluate::{Evaluation, Facts};
use gather::Association;
use issue::{Inputs, Issued, node_role, pod_identity, web_identity};
use token::TokenReport;

/// Explain whether a pod of a ServiceAccount may call an action on a resource: which
/// credentials the AWS SDK in the pod uses and why, the checks on its token, the trust policy
/// and the permissions of the role session, with every statement and condition.
///
/// Exits 0 when allowed, 1 when denied, 2 on errors. The server and credentials are found as
/// `podiam exec` finds them (PODIAM_SERVER or AWS_ENDPOINT_URL, the standard chain).
#[derive(Debug, Args)]
#[command(arg_required_else_help = true, after_long_help = EXPLAIN_HELP)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    subject: crate::pod::SubjectArgs,
    /// The action the pod calls, e.g. dynamodb:PutItem.
    #[arg(long, value_name = "ACTION")]
    action: String,
    /// The resource's ARN.
    #[arg(long, value_name = "ARN")]
    resource: String,
    /// How to print the explanation.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The region [default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// The role IMDS hands out on the node [default: arn:aws:iam::ACCOUNT:role/CLUSTER-node,
    /// as `podiam dev` creates it].
    #[arg(long, value_name = "ARN")]
    node_role_arn: Option<String>,
    /// The pod's name (in its token and session) [default: SERVICEACCOUNT-explain].
    #[arg(long)]
    pod_name: Option<String>,
    /// The node the pod runs on [default: $PODIAM_NODE_NAME or podiam-dev-node].
    #[arg(long, env = "PODIAM_NODE_NAME", default_value = DEV_NODE_NAME)]
    node_name: String,
}

const EXPLAIN_HELP: &str = r#"What it says, for a pod of the ServiceAccount on the cluster:
  1. which provider of the AWS SDK's default chain answers (environment keys, web identity,
     container credentials, IMDS) and why: the webhook's own mutation decides, from the
     eks.amazonaws.com/role-arn annotation and the pod identity associations;
  2. the checks STS or EKS Auth make on the pod's projected token (minted from the cluster's
     issuer): signature, issuer, audience, lifetime, subject, kubernetes.io claims;
  3. the role's trust policy, statement by statement;
  4. the permissions of the role session for the action on the resource, statement by
     statement, conditions with the policy's and the request's values;
  5. the answer, with the statement that denied or why none allowed.

--output json prints {"mechanism", "token", "trust", "permissions", "decision", "reason"};
"token" and "trust" are null for the node's role (IMDS).

Exit status: 0 allowed, 1 denied, 2 on errors.

Example (in the shell of `podiam dev --scenario eks-workshop --env-file dev.env`):
  podiam explain --namespace carts --service-account carts --action dynamodb:PutItem \
    --resource arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts"#;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Sections for people.
    Text,
    /// One JSON object.
    Json,
}

/// The mechanism: the chain, why the pod is set up this way, the role and session.
#[derive(Debug, Clone, Serialize)]
struct Mechanism {
    provider: Provider,
    title: &'static str,
    /// The webhook's mode (`irsa`, `pod-identity`), `null` when it leaves the pod alone.
    webhook_mode: Option<&'static str>,
    why: String,
    chain: Vec<chain::Step>,
    /// The mutated container's environment.
    environment: std::collections::BTreeMap<String, String>,
    service_account: String,
    pod: String,
    node: String,
    association: Option<Association>,
    role_arn: String,
    /// The association's target role (role chaining), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_role_arn: Option<String>,
    session_arn: String,
    /// Notes on what explain had to assume (session names chosen by the SDK, …).
    notes: Vec<String>,
}

/// A trust policy's evaluation: the deciding action in full, the others in a line.
#[derive(Debug, Clone, Serialize)]
struct Trust {
    role_arn: String,
    #[serde(flatten)]
    evaluation: Evaluation,
    other_actions: Vec<ActionOutcome>,
}

#[derive(Debug, Clone, Serialize)]
struct ActionOutcome {
    action: String,
    decision: Decision,
    reason: String,
}

/// Everything `podiam explain` found.
#[derive(Debug, Clone, Serialize)]
struct Report {
    action: String,
    resource: String,
    cluster: String,
    mechanism: Mechanism,
    token: Option<TokenReport>,
    trust: Option<Trust>,
    /// Role chaining: the target role's trust, asked by the first session.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_trust: Option<Trust>,
    permissions: Evaluation,
    decision: Decision,
    reason: String,
}

pub(crate) fn run(args: ExplainArgs) -> ExitCode {
    exit_on(explain(&args))
}

fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let (_, account) = args.subject.resolve()?;
    let connection = connect(args.region.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(build(args, &account, &connection))?;
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Output::Text => out.write_all(render::text(&report).as_bytes())?,
    }
    out.flush()?;
    Ok(if report.decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Why the webhook set the pod up the way it did.
fn why(
    mode: Option<Mode>,
    account: &ServiceAccountInfo,
    association: Option<&Association>,
    provider: Provider,
) -> String {
    let sa = format!("ServiceAccount {}/{}", account.namespace, account.name);
    let annotation = account
        .annotations
        .get("eks.amazonaws.com/role-arn")
        .filter(|v| !v.is_empty());
    let mut text = match (mode, association) {
        (Some(Mode::PodIdentity), Some(a)) => {
            let mut t = format!(
                "{sa} has pod identity association {} (role {}), so the webhook injects AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and projects a token for pods.eks.amazonaws.com",
                a.id, a.role_arn
            );
            if let Some(arn) = annotation {
                t.push_str(&format!(
                    " (an association wins over its eks.amazonaws.com/role-arn annotation {arn})"
                ));
            }
            t
        }
        (Some(Mode::Irsa), _) => format!(
            "{sa} is annotated eks.amazonaws.com/role-arn={} and has no pod identity association, so the webhook injects AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE and projects a token for its audience",
            annotation.map_or("?", String::as_str)
        ),
        _ => format!(
            "{sa} has neither a pod identity association nor an eks.amazonaws.com/role-arn annotation, so the webhook leaves the pod alone"
        ),
    };
    text.push_str(&format!(
        "; the SDK's default chain then uses {}",
        provider.title()
    ));
    text
}

/// The trust report of a list of per-action evaluations: the first refused action decides.
fn trust_of(role_arn: &str, mut evaluations: Vec<Evaluation>) -> Option<Trust> {
    let deciding = evaluations
        .iter()
        .position(|e| !e.decision().is_allowed())
        .unwrap_or(0);
    if deciding >= evaluations.len() {
        return None;
    }
    let evaluation = evaluations.remove(deciding);
    Some(Trust {
        role_arn: role_arn.to_owned(),
        evaluation,
        other_actions: evaluations
            .into_iter()
            .map(|e| ActionOutcome {
                action: e.action,
                decision: e.explanation.decision,
                reason: e.explanation.reason,
            })
            .collect(),
    })
}

async fn build(
    args: &ExplainArgs,
    account: &ServiceAccountInfo,
    connection: &Connection,
) -> anyhow::Result<Report> {
    let client = &connection.client;
    let pod_name = args
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("{}-explain", account.name));
    let ids = association_ids(client, args.subject.cluster(), account).await?;
    let association = match ids.first() {
        Some(id) => Some(gather::association(client, args.subject.cluster(), id).await?),
        None => None,
    };
    let config = mutation_config(&connection.region, &connection.server);
    let pod = pod_of(account, &pod_name, &args.node_name);
    let mutation = mutate_pod(&pod, account, association.is_some(), &config);
    let mutated = mutation.as_ref().map_or(&pod, |m| &m.pod);
    let env = container_env(mutated);
    let Chain { provider, steps } = chain::resolve(&env)
        .context("the pod's SDK would find no credentials at all (IMDS is disabled)")?;
    let cluster = gather::cluster(client, args.subject.cluster()).await?;
    let now = SystemClock.now();
    let region = lookup(&env, "AWS_REGION").unwrap_or(&connection.region);
    // podiam's server sets aws:SecureTransport false for every call (it serves plain HTTP;
    // the gateway's /podiam/authorize does not know the client's transport).
    let facts = Facts {
        now,
        region: region.to_owned(),
        secure_transport: false,
    };
    let inputs = Inputs {
        args,
        account,
        pod_name: &pod_name,
        cluster: &cluster,
        env: &env,
        mutated,
        facts: facts.clone(),
        now,
    };
    let issued = match (provider, &association) {
        (Provider::WebIdentity, _) => web_identity(client, &inputs).await?,
        (Provider::ContainerCredentials, Some(a)) => pod_identity(client, &inputs, a).await?,
        (Provider::Imds, _) => node_role(client, &inputs).await?,
        (Provider::ContainerCredentials, None) | (Provider::Environment, _) => {
            bail!(
                "the pod's credentials come from {}, which podiam does not issue",
                provider.title()
            )
        }
    };
    let final_role = match &issued.target {
        Some((_, target, _)) => target.as_ref(),
        None => issued.role.as_ref(),
    };
    let permissions = evaluate::permissions(
        final_role,
        &issued.session,
        &args.action,
        &args.resource,
        &facts,
    );
    let (decision, reason) = decide(&issued, &permissions);
    let (target_role_arn, target_trust) = match issued.target {
        Some((arn, _, trust)) => (Some(arn), trust),
        None => (None, None),
    };
    let mut notes = issued.notes;
    notes.push(
        "aws:SourceIp and aws:UserAgent depend on the real client and are not set".to_owned(),
    );
    let mechanism = Mechanism {
        provider,
        title: provider.title(),
        webhook_mode: mutation.as_ref().map(|m| m.mode.as_str()),
        why: why(
            mutation.as_ref().map(|m| m.mode),
            account,
            association.as_ref(),
            provider,
        ),
        chain: steps,
        environment: env.iter().cloned().collect(),
        service_account: format!("{}/{}", account.namespace, account.name),
        pod: pod_name.clone(),
        node: args.node_name.clone(),
        association,
        role_arn: issued.role_arn,
        target_role_arn,
        session_arn: issued.session.arn(),
        notes,
    };
    Ok(Report {
        action: args.action.clone(),
        resource: args.resource.clone(),
        cluster: cluster.name,
        mechanism,
        token: issued.token,
        trust: issued.trust,
        target_trust,
        permissions,
        decision,
        reason,
    })
}

/// The answer: the first step that refuses decides; otherwise the permissions do.
fn decide(issued: &Issued, permissions: &Evaluation) -> (Decision, String) {
    if let Some(token) = issued.token.as_ref().filter(|t| !t.valid) {
        return (
            Decision::ImplicitDeny,
            format!(
                "the pod gets no credentials: {} refuses its token: {}",
                token.verified_by,
                token.error.as_deref().unwrap_or("invalid")
            ),
        );
    }
    if let Some(why) = &issued.blocked {
        return (
            Decision::ImplicitDeny,
            format!("the pod gets no credentials: {why}"),
        );
    }
    let trusts = [
        issued.trust.as_ref(),
        issued.target.as_ref().and_then(|(_, _, t)| t.as_ref()),
    ];
    for trust in trusts.into_iter().flatten() {
        if !trust.evaluation.decision().is_allowed() {
            return (
                trust.evaluation.decision(),
                format!(
                    "the pod gets no credentials: {}",
                    reason::trust_denied(&trust.evaluation)
                ),
            );
        }
    }
    if permissions.decision().is_allowed() {
        let by = reason::deciding_statement(permissions)
            .unwrap_or_else(|| permissions.explanation.reason.clone());
        return (
            Decision::Allow,
            format!(
                "{} may perform {} on {}: {by}",
                permissions.principal, permissions.action, permissions.resource
            ),
        );
    }
    (
        permissions.decision(),
        reason::permission_denied(permissions),
    )
}

#[cfg(test)]
mod tests {
    use podiam_policy::Policy;
    use time::OffsetDateTime;

    use super::evaluate::{NamedPolicy, PodIdentity, Role};
    use super::issue::{missing_or_unreadable, session_for};
    use super::*;

    const TABLE: &str = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts";
    const ROLE: &str = "arn:aws:iam::637423329338:role/r";

    fn facts() -> Facts {
        Facts {
            now: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            region: "eu-central-1".into(),
            secure_transport: false,
        }
    }

    fn role(identity: &[&str], trust: &str) -> Role {
        Role {
            arn: ROLE.into(),
            id: "AROA1".into(),
            trust: Some(Policy::parse(trust).unwrap()),
            identity: identity
                .iter()
                .enumerate()
                .map(|(i, t)| NamedPolicy {
                    name: format!("inline policy \"p{i}\""),
                    policy: Policy::parse(t).unwrap(),
                })
                .collect(),
            boundary: None,
            tags: Vec::new(),
        }
    }

    const PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"carts"}}}]}"#;
    const DYNAMO: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Carts","Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#;

    fn pod(namespace: &str) -> PodIdentity<'_> {
        PodIdentity {
            cluster: "eks-workshop",
            cluster_arn: "arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop",
            namespace,
            service_account: "carts",
            pod_name: "carts-explain",
            pod_uid: "uid",
            disable_session_tags: false,
        }
    }

    fn issued(r: Option<Role>, namespace: &str) -> Issued {
        let trust = r.as_ref().and_then(|r| r.trust.as_ref()).and_then(|t| {
            trust_of(
                ROLE,
                evaluate::pod_identity_trust(t, ROLE, &pod(namespace), &facts()),
            )
        });
        let mut session = session_for(
            ROLE,
            r.as_ref(),
            &pod(namespace).session_name(),
            facts().now,
        );
        session.tags = pod(namespace).tags();
        Issued {
            token: None,
            blocked: missing_or_unreadable(ROLE, r.as_ref()),
            role: r,
            role_arn: ROLE.into(),
            trust,
            target: None,
            session,
            notes: Vec::new(),
        }
    }

    fn permissions_of(i: &Issued) -> Evaluation {
        evaluate::permissions(
            i.role.as_ref(),
            &i.session,
            "dynamodb:PutItem",
            TABLE,
            &facts(),
        )
    }

    #[test]
    fn the_first_refusal_decides() {
        let allowed = issued(Some(role(&[DYNAMO], PIA_TRUST)), "carts");
        let (decision, reason) = decide(&allowed, &permissions_of(&allowed));
        assert_eq!(decision, Decision::Allow);
        assert!(
            reason.ends_with("statement 0 \"Carts\" of inline policy \"p0\" allows it"),
            "{reason}"
        );

        // The trust policy refuses another namespace's pods, whatever the role may do.
        let untrusted = issued(Some(role(&[DYNAMO], PIA_TRUST)), "orders");
        let trust = untrusted.trust.as_ref().unwrap();
        assert_eq!(trust.evaluation.action, "sts:AssumeRole");
        assert_eq!(trust.other_actions.len(), 1);
        let (decision, reason) = decide(&untrusted, &permissions_of(&untrusted));
        assert_eq!(decision, Decision::ImplicitDeny);
        assert!(reason.starts_with("the pod gets no credentials: the trust policy of arn:aws:iam::637423329338:role/r does not allow sts:AssumeRole"), "{reason}");
        assert!(
            reason.contains("aws:RequestTag/kubernetes-namespace"),
            "{reason}"
        );

        let missing = issued(None, "carts");
        let (decision, reason) = decide(&missing, &permissions_of(&missing));
        assert_eq!(decision, Decision::ImplicitDeny);
        assert_eq!(
            reason,
            "the pod gets no credentials: role arn:aws:iam::637423329338:role/r does not exist"
        );

        let mut refused = issued(Some(role(&[DYNAMO], PIA_TRUST)), "carts");
        refused.token = Some(TokenReport {
            file: "/t".into(),
            verified_by: "eks-auth:AssumeRoleForPodIdentity".into(),
            issuer: "https://i".into(),
            accepted_audiences: vec!["pods.eks.amazonaws.com".into()],
            valid: false,
            error: Some("the token expired at 1".into()),
            checks: Vec::new(),
            claims: None,
        });
        let (decision, reason) = decide(&refused, &permissions_of(&refused));
        assert_eq!(decision, Decision::ImplicitDeny);
        assert!(
            reason
                .contains("eks-auth:AssumeRoleForPodIdentity refuses its token: the token expired")
        );
    }

    #[test]
    fn why_names_the_association_or_the_annotation() {
        let mut sa = ServiceAccountInfo {
            name: "carts".into(),
            namespace: "carts".into(),
            annotations: [(
                "eks.amazonaws.com/role-arn".to_owned(),
                "arn:aws:iam::1:role/irsa".to_owned(),
            )]
            .into(),
        };
        let a = Association {
            id: "a-1".into(),
            role_arn: "arn:aws:iam::1:role/pia".into(),
            target_role_arn: None,
            policy: None,
            external_id: None,
            disable_session_tags: false,
        };
        let text = why(
            Some(Mode::PodIdentity),
            &sa,
            Some(&a),
            Provider::ContainerCredentials,
        );
        assert!(text.contains("association a-1"));
        assert!(text.contains("wins over its eks.amazonaws.com/role-arn annotation"));
        let text = why(Some(Mode::Irsa), &sa, None, Provider::WebIdentity);
        assert!(text.contains("annotated eks.amazonaws.com/role-arn=arn:aws:iam::1:role/irsa"));
        sa.annotations.clear();
        let text = why(None, &sa, None, Provider::Imds);
        assert!(text.ends_with(
            "leaves the pod alone; the SDK's default chain then uses IMDS (the node's role)"
        ));
    }

    fn report(i: Issued, provider: Provider) -> Report {
        let permissions = permissions_of(&i);
        let (decision, reason) = decide(&i, &permissions);
        let env: Vec<(String, String)> = Vec::new();
        let chain = chain::resolve(&env).unwrap();
        Report {
            action: "dynamodb:PutItem".into(),
            resource: TABLE.into(),
            cluster: "eks-workshop".into(),
            mechanism: Mechanism {
                provider,
                title: provider.title(),
                webhook_mode: None,
                why: "because".into(),
                chain: chain.steps,
                environment: Default::default(),
                service_account: "carts/carts".into(),
                pod: "carts-explain".into(),
                node: "n".into(),
                association: None,
                role_arn: ROLE.into(),
                target_role_arn: None,
                session_arn: i.session.arn(),
                notes: vec!["a note".into()],
            },
            token: i.token,
            trust: i.trust,
            target_trust: None,
            permissions,
            decision,
            reason,
        }
    }

    #[test]
    fn text_has_every_section_and_one_line_per_statement() {
        let r = report(
            issued(Some(role(&[DYNAMO], PIA_TRUST)), "orders"),
            Provider::ContainerCredentials,
        );
        let text = render::text(&r);
        for expected in [
            "1. Credentials: container credentials (EKS Pod Identity)\n",
            "     USED         IMDS (the node's role): last in the chain",
            "   note: a note\n",
            "2. Token: not applicable",
            "3. Trust policy of arn:aws:iam::637423329338:role/r: ImplicitDeny\n",
            "   resource (trust policy): no statement applies\n",
            "     [0] Allow: does not apply — condition StringEquals aws:RequestTag/kubernetes-namespace:",
            "         if StringEquals aws:RequestTag/kubernetes-namespace: policy [\"carts\"] vs request [\"orders\"] → false",
            "   also sts:TagSession: ImplicitDeny",
            "4. Permissions of the session: Allow\n",
            "     [0] \"Carts\" Allow: applies — Action \"dynamodb:*\" matches \"dynamodb:PutItem\"",
            "     aws:PrincipalTag/kubernetes-namespace = orders\n",
            "Answer: DENIED (ImplicitDeny)\n  the pod gets no credentials: the trust policy",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["decision"], "ImplicitDeny");
        assert_eq!(json["trust"]["decision"], "ImplicitDeny");
        assert_eq!(json["trust"]["action"], "sts:AssumeRole");
        assert_eq!(json["permissions"]["decision"], "Allow");
        assert_eq!(
            json["permissions"]["trace"][0]["statements"][0]["sid"],
            "Carts"
        );
        assert_eq!(json["mechanism"]["provider"], "container-credentials");
        assert!(json["token"].is_null());
    }

    #[test]
    fn text_for_the_node_role() {
        let mut i = issued(Some(role(&[], PIA_TRUST)), "carts");
        i.trust = None;
        let text = render::text(&report(i, Provider::Imds));
        assert!(text.contains("3. Trust policy: not applicable"), "{text}");
        assert!(text.contains("   policies: none\n"), "{text}");
        assert!(text.contains("because no identity-based policy allows the dynamodb:PutItem action; no statement allows it: the role has no identity-based policies"), "{text}");
    }
}
