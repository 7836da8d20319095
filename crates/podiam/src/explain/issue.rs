//! What each credential mechanism hands the pod: the token STS or EKS Auth would check, the
//! role and its trust policy's evaluation, and the session the pod ends up with.

use std::path::Path;

use anyhow::Context as _;
use podiam_client::AwsClient;
use podiam_webhook::ServiceAccountInfo;
use time::OffsetDateTime;

use super::chain::lookup;
use super::evaluate::{self, Facts, NamedPolicy, PodIdentity, Role, Session, WebIdentity};
use super::gather::{self, Association, Cluster};
use super::token::{Expectation, TokenReport, check_token};
use super::{ExplainArgs, Trust, trust_of};
use crate::pod::{TokenSubject, mint_token, projected_tokens};

/// The pod's projected token at `in_pod`, minted from the cluster's issuer.
async fn pod_token(
    client: &AwsClient,
    subject: TokenSubject<'_>,
    mutated: &serde_json::Value,
    in_pod: &str,
) -> anyhow::Result<String> {
    let tokens = projected_tokens(mutated, Path::new("/"));
    let (_, token) = tokens
        .iter()
        .find(|(path, _)| path == in_pod)
        .with_context(|| format!("the mutated pod projects no token at {in_pod}"))?;
    mint_token(client, subject, token).await
}

/// What the credential mechanism produced: the token report, trusts, the final session.
pub(super) struct Issued {
    pub(super) token: Option<TokenReport>,
    pub(super) role: Option<Role>,
    pub(super) role_arn: String,
    pub(super) trust: Option<Trust>,
    /// Why the role cannot be assumed at all (missing, trust policy unreadable).
    pub(super) blocked: Option<String>,
    pub(super) target: Option<(String, Option<Role>, Option<Trust>)>,
    pub(super) session: Session,
    pub(super) notes: Vec<String>,
}

pub(super) struct Inputs<'a> {
    pub(super) args: &'a ExplainArgs,
    pub(super) account: &'a ServiceAccountInfo,
    pub(super) pod_name: &'a str,
    pub(super) cluster: &'a Cluster,
    pub(super) env: &'a [(String, String)],
    pub(super) mutated: &'a serde_json::Value,
    pub(super) facts: Facts,
    pub(super) now: OffsetDateTime,
}

impl Inputs<'_> {
    fn subject(&self) -> TokenSubject<'_> {
        TokenSubject {
            cluster: self.args.subject.cluster(),
            account: self.account,
            pod_name: self.pod_name,
            node_name: &self.args.node_name,
        }
    }

    fn var(&self, name: &str) -> anyhow::Result<&str> {
        lookup(self.env, name).with_context(|| format!("the pod has no {name}"))
    }
}

/// A session issued now (sessions record their issue time in whole seconds).
pub(super) fn session_for(
    role_arn: &str,
    role: Option<&Role>,
    name: &str,
    now: OffsetDateTime,
) -> Session {
    Session {
        role_arn: role_arn.to_owned(),
        role_id: role.map(|r| r.id.clone()).unwrap_or_default(),
        session_name: name.to_owned(),
        tags: Vec::new(),
        policy: None,
        issued_at: now.replace_nanosecond(0).unwrap_or(now),
    }
}

/// The note on a role in AWS, read through podiam's identity `principal`.
fn aws_decides(role_arn: &str, principal: &str) -> String {
    format!(
        "{role_arn} is a role in AWS: AWS decides whether podiam's identity {principal} may assume it for the pod and what its sessions may do; podiam read its trust and permissions with that identity and evaluated them with its own engine"
    )
}

pub(super) fn missing_or_unreadable(arn: &str, role: Option<&Role>) -> Option<String> {
    match role {
        None => Some(format!("role {arn} does not exist")),
        Some(r) if r.trust.is_none() => Some(format!("the trust policy of {arn} no longer parses")),
        Some(_) => None,
    }
}

pub(super) async fn web_identity(client: &AwsClient, i: &Inputs<'_>) -> anyhow::Result<Issued> {
    let role_arn = i.var("AWS_ROLE_ARN")?.to_owned();
    let file = i.var("AWS_WEB_IDENTITY_TOKEN_FILE")?;
    let jwt = pod_token(client, i.subject(), i.mutated, file).await?;
    let keys = gather::cluster_keys(client, &i.cluster.name).await?;
    let issuer = &i.cluster.issuer;
    let canonical: podiam_types::IssuerUrl = issuer
        .parse()
        .with_context(|| format!("the cluster's issuer {issuer:?}"))?;
    let provider_url = canonical.key();
    let provider_arn = format!(
        "arn:aws:iam::{}:oidc-provider/{provider_url}",
        evaluate::arn_account(&i.cluster.arn)
    );
    let client_ids = gather::oidc_provider(client, &provider_arn).await?;
    let audiences = client_ids.clone().unwrap_or_default();
    let token = check_token(
        file,
        &jwt,
        &keys,
        &Expectation {
            verifier: "sts:AssumeRoleWithWebIdentity",
            issuer,
            audiences: &audiences,
            provider: Some(match client_ids {
                Some(_) => Ok(provider_arn.as_str()),
                None => Err(provider_arn.as_str()),
            }),
            namespace: &i.account.namespace,
            service_account: &i.account.name,
            node: None,
            require_pod: false,
        },
        i.now,
    );
    let role = gather::role(client, &role_arn).await?;
    let mut notes = Vec::new();
    let session_name = match lookup(i.env, "AWS_ROLE_SESSION_NAME") {
        Some(name) => name.to_owned(),
        None => {
            notes.push("the session name is the SDK's choice; shown as the AWS CLI and boto3 name it (botocore-session-<time>)".to_owned());
            format!("botocore-session-{}", i.now.unix_timestamp())
        }
    };
    let trust = match (role.as_ref().and_then(|r| r.trust.as_ref()), &token.claims) {
        (Some(trust), Some(claims)) => {
            let audience = claims
                .aud
                .iter()
                .find(|a| audiences.contains(a))
                .or(claims.aud.first())
                .cloned()
                .unwrap_or_default();
            trust_of(
                &role_arn,
                evaluate::web_identity_trust(
                    trust,
                    &role_arn,
                    &WebIdentity {
                        provider_url,
                        provider_arn: &provider_arn,
                        subject: &claims.sub,
                        audience: &audience,
                        session_name: &session_name,
                    },
                    &i.facts,
                ),
            )
        }
        _ => None,
    };
    Ok(Issued {
        token: Some(token),
        blocked: missing_or_unreadable(&role_arn, role.as_ref()),
        session: session_for(&role_arn, role.as_ref(), &session_name, i.now),
        role,
        role_arn,
        trust,
        target: None,
        notes,
    })
}

pub(super) async fn pod_identity(
    client: &AwsClient,
    i: &Inputs<'_>,
    association: &Association,
) -> anyhow::Result<Issued> {
    let file = i.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")?;
    let jwt = pod_token(client, i.subject(), i.mutated, file).await?;
    let keys = gather::cluster_keys(client, &i.cluster.name).await?;
    let audiences = vec![evaluate::POD_IDENTITY_SERVICE.to_owned()];
    let token = check_token(
        file,
        &jwt,
        &keys,
        &Expectation {
            verifier: "eks-auth:AssumeRoleForPodIdentity",
            issuer: &i.cluster.issuer,
            audiences: &audiences,
            provider: None,
            namespace: &i.account.namespace,
            service_account: &i.account.name,
            node: Some(&i.args.node_name),
            require_pod: true,
        },
        i.now,
    );
    let pod = token
        .claims
        .as_ref()
        .and_then(|c| c.kubernetes.as_ref())
        .and_then(|k| k.pod.clone());
    let pod_identity = PodIdentity {
        cluster: &i.cluster.name,
        cluster_arn: &i.cluster.arn,
        namespace: &i.account.namespace,
        service_account: &i.account.name,
        pod_name: pod.as_ref().map_or(i.pod_name, |p| p.name.as_str()),
        pod_uid: pod.as_ref().map_or("", |p| p.uid.as_str()),
        disable_session_tags: association.disable_session_tags,
    };
    let role_arn = association.role_arn.clone();
    let mut notes = Vec::new();
    let mut role = gather::role(client, &role_arn).await?;
    let mut broker = None;
    if role.is_none()
        && let Some(aws) = gather::aws_role(client, &role_arn).await?
    {
        let principal = aws.principal.clone().unwrap_or_default();
        notes.push(aws_decides(&role_arn, &principal));
        role = Some(aws.role);
        broker = Some(principal);
    }
    let trust = role
        .as_ref()
        .and_then(|r| r.trust.as_ref())
        .and_then(|trust| {
            let evaluations = match &broker {
                Some(principal) => {
                    evaluate::broker_trust(trust, &role_arn, principal, &pod_identity, &i.facts)
                }
                None => evaluate::pod_identity_trust(trust, &role_arn, &pod_identity, &i.facts),
            };
            trust_of(&role_arn, evaluations)
        });
    let session_policy = association
        .policy
        .as_deref()
        .map(|text| {
            crate::policy_cmd::parse_policy("the association's session policy", text).map(
                |policy| NamedPolicy {
                    name: "the association's session policy".to_owned(),
                    policy,
                },
            )
        })
        .transpose()?;
    let session_name = pod_identity.session_name();
    let mut session = session_for(&role_arn, role.as_ref(), &session_name, i.now);
    session.tags = pod_identity.tags();
    session.policy = session_policy;
    notes.push("the session name ends in a random UUID per session, shown as zeros".to_owned());
    let blocked = missing_or_unreadable(&role_arn, role.as_ref());
    let Some(target_arn) = association.target_role_arn.clone() else {
        return Ok(Issued {
            token: Some(token),
            role,
            role_arn,
            trust,
            blocked,
            target: None,
            session,
            notes,
        });
    };
    // Role chaining: the first session assumes the target role (all its tags are transitive).
    let target = gather::role(client, &target_arn).await?;
    if target.is_none()
        && let Some(aws) = gather::aws_role(client, &target_arn).await?
    {
        // podiam asks AWS for the target as itself, not as the first session.
        let principal = aws.principal.clone().unwrap_or_default();
        notes.push(aws_decides(&target_arn, &principal));
        let target_trust = aws.role.trust.as_ref().and_then(|trust| {
            trust_of(
                &target_arn,
                evaluate::broker_trust(trust, &target_arn, &principal, &pod_identity, &i.facts),
            )
        });
        let mut chained = session_for(&target_arn, Some(&aws.role), &session_name, i.now);
        chained.tags = session.tags.clone();
        return Ok(Issued {
            token: Some(token),
            role,
            role_arn,
            trust,
            blocked,
            target: Some((target_arn, Some(aws.role), target_trust)),
            session: chained,
            notes,
        });
    }
    let target_trust = target.as_ref().and_then(|t| {
        t.trust.as_ref().map(|trust| Trust {
            role_arn: target_arn.clone(),
            evaluation: evaluate::chained_trust(
                t,
                trust,
                role.as_ref(),
                &session,
                &session_name,
                association.external_id.as_deref(),
                &i.facts,
            ),
            other_actions: Vec::new(),
        })
    });
    let mut chained = session_for(&target_arn, target.as_ref(), &session_name, i.now);
    chained.tags = session.tags.clone();
    let blocked = blocked.or_else(|| missing_or_unreadable(&target_arn, target.as_ref()));
    Ok(Issued {
        token: Some(token),
        role,
        role_arn,
        trust,
        blocked,
        target: Some((target_arn, target, target_trust)),
        session: chained,
        notes,
    })
}

pub(super) async fn node_role(client: &AwsClient, i: &Inputs<'_>) -> anyhow::Result<Issued> {
    let role_arn = match &i.args.node_role_arn {
        Some(arn) => arn.clone(),
        None => {
            let account = podiam_client::caller_account(client)
                .await
                .map_err(crate::pod::api_error)
                .context("cannot find the account (GetCallerIdentity) for the node role")?;
            format!(
                "arn:aws:iam::{account}:role/{}-node",
                i.args.subject.cluster()
            )
        }
    };
    let mut notes = vec![
        "IMDS hands out the node's role to anything on the node: no token, no trust policy of the pod's own; the session is named after the node".to_owned(),
    ];
    let mut role = gather::role(client, &role_arn).await?;
    if role.is_none()
        && let Some(aws) = gather::aws_role(client, &role_arn).await?
    {
        notes.push(format!(
            "{role_arn} is a role in AWS: AWS decides, on its trust policy, whether podiam's identity {} may assume it for the node, and what its sessions may do; podiam read its permissions with that identity and evaluated them with its own engine",
            aws.principal.as_deref().unwrap_or_default()
        ));
        role = Some(aws.role);
    }
    let blocked = role
        .is_none()
        .then(|| format!("role {role_arn} does not exist"));
    Ok(Issued {
        token: None,
        session: session_for(&role_arn, role.as_ref(), &i.args.node_name, i.now),
        role,
        role_arn,
        trust: None,
        blocked,
        target: None,
        notes,
    })
}
