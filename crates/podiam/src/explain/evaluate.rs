//! The policy engine's requests, built as podiam's STS, EKS Auth and the gateway's
//! `/podiam/authorize` build them (`podiam_sts::Sts`, `podiam_eks` pod identity and
//! `podiam_iam::Caller::context`), so that the explanation is podiam's real decision.

use std::collections::BTreeMap;

use podiam_policy::{
    ContextValue, Decision, Explanation, Policy, PolicyOutcome, PolicySet, Principal, Request, Rule,
};
use serde::Serialize;
use time::OffsetDateTime;

/// The service principal of EKS Pod Identity.
pub(crate) const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";

/// What the transport would tell the service.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) now: OffsetDateTime,
    /// The region the request is signed for.
    pub(crate) region: String,
    pub(crate) secure_transport: bool,
}

/// A named policy of a role.
#[derive(Debug, Clone)]
pub(crate) struct NamedPolicy {
    /// e.g. `inline policy "carts"` or `arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess`.
    pub(crate) name: String,
    pub(crate) policy: Policy,
}

/// A role as it is now: what its sessions may do.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) arn: String,
    pub(crate) id: String,
    /// `None` if it no longer parses.
    pub(crate) trust: Option<Policy>,
    /// Inline policies, then attached managed policies.
    pub(crate) identity: Vec<NamedPolicy>,
    pub(crate) boundary: Option<NamedPolicy>,
    pub(crate) tags: Vec<(String, String)>,
}

/// A role session the pod would hold.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) role_arn: String,
    pub(crate) role_id: String,
    pub(crate) session_name: String,
    /// Session tags (Pod Identity's six).
    pub(crate) tags: Vec<(String, String)>,
    /// An inline session policy (a Pod Identity association's `policy`).
    pub(crate) policy: Option<NamedPolicy>,
    pub(crate) issued_at: OffsetDateTime,
}

impl Session {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub(crate) fn arn(&self) -> String {
        session_arn(&self.role_arn, &self.session_name)
    }
}

/// The session ARN of a role ARN (`arn:P:iam::A:role/path/NAME`) and a session name.
pub(crate) fn session_arn(role_arn: &str, session_name: &str) -> String {
    let mut parts = role_arn.splitn(6, ':');
    let partition = parts.nth(1).unwrap_or("aws");
    let account = parts.nth(2).unwrap_or_default();
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}")
}

/// The account of an ARN.
pub(crate) fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// One request to the policy engine and its explanation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Evaluation {
    pub(crate) principal: String,
    pub(crate) action: String,
    pub(crate) resource: String,
    /// The context keys, as the service sets them.
    pub(crate) context: BTreeMap<String, ContextValue>,
    /// What each policy label of the trace names.
    pub(crate) policies: BTreeMap<String, String>,
    #[serde(flatten)]
    pub(crate) explanation: Explanation,
    #[serde(skip)]
    pub(crate) rule: Rule,
}

impl Evaluation {
    pub(crate) fn decision(&self) -> Decision {
        self.explanation.decision
    }
}

type ContextList = Vec<(String, ContextValue)>;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `insert_time_keys` of STS: time, transport and region.
fn time_keys(context: &mut ContextList, facts: &Facts) {
    context.push(("aws:CurrentTime".into(), rfc3339(facts.now).into()));
    context.push((
        "aws:EpochTime".into(),
        facts.now.unix_timestamp().to_string().into(),
    ));
    context.push((
        "aws:SecureTransport".into(),
        facts.secure_transport.to_string().into(),
    ));
    context.push(("aws:RequestedRegion".into(), facts.region.clone().into()));
}

/// `aws:RequestTag/<k>` and `aws:TagKeys`.
fn tag_keys(context: &mut ContextList, tags: &[(String, String)]) {
    for (k, v) in tags {
        context.push((format!("aws:RequestTag/{k}"), v.clone().into()));
    }
    if !tags.is_empty() {
        context.push((
            "aws:TagKeys".into(),
            ContextValue::Multi(tags.iter().map(|(k, _)| k.clone()).collect()),
        ));
    }
}

/// The policies of one evaluation, with the trace labels the engine gives them.
#[derive(Debug, Default)]
struct Policies<'a> {
    identity: Vec<&'a NamedPolicy>,
    resource: Option<(&'a str, &'a Policy)>,
    boundary: Option<&'a NamedPolicy>,
    session: Vec<&'a NamedPolicy>,
}

fn evaluate(
    principal: Principal,
    action: &str,
    resource: &str,
    context: ContextList,
    policies: &Policies<'_>,
) -> Evaluation {
    let mut request = Request::new(action)
        .principal(principal.clone())
        .resource(resource);
    for (k, v) in &context {
        request.context_mut().insert(k, v.clone());
    }
    let set = PolicySet {
        identity: policies.identity.iter().map(|p| &p.policy).collect(),
        resource: policies.resource.map(|(_, p)| p),
        permissions_boundary: policies.boundary.map(|p| &p.policy),
        session: policies.session.iter().map(|p| &p.policy).collect(),
        ..PolicySet::default()
    };
    let explanation = set.explain(&request);
    let (_, rule) = set.decide(&request);
    let mut names = BTreeMap::new();
    for (i, p) in policies.identity.iter().enumerate() {
        names.insert(format!("identity[{i}]"), p.name.clone());
    }
    if let Some((name, _)) = policies.resource {
        names.insert("resource".to_owned(), name.to_owned());
    }
    if let Some(p) = policies.boundary {
        names.insert("permissions_boundary".to_owned(), p.name.clone());
    }
    for (i, p) in policies.session.iter().enumerate() {
        names.insert(format!("session[{i}]"), p.name.clone());
    }
    Evaluation {
        principal: principal.to_string(),
        action: action.to_owned(),
        resource: resource.to_owned(),
        context: context.into_iter().collect(),
        policies: names,
        explanation,
        rule,
    }
}

/// What a web identity token says, for the trust policy.
#[derive(Debug, Clone)]
pub(crate) struct WebIdentity<'a> {
    /// The issuer without scheme and trailing slash (`oidc.eks.…/id/X`).
    pub(crate) provider_url: &'a str,
    /// `arn:aws:iam::ACCOUNT:oidc-provider/<provider_url>`.
    pub(crate) provider_arn: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) session_name: &'a str,
}

/// `AssumeRoleWithWebIdentity`'s trust check: the trust policy alone, the federated provider
/// as principal, `<provider>:sub`, `:aud`, `aws:FederatedProvider`, `sts:RoleSessionName`.
/// (Kubernetes tokens carry no `amr` and no session tags, so only this one action.)
pub(crate) fn web_identity_trust(
    trust: &Policy,
    role_arn: &str,
    token: &WebIdentity<'_>,
    facts: &Facts,
) -> Vec<Evaluation> {
    let mut context = ContextList::new();
    time_keys(&mut context, facts);
    let url = token.provider_url;
    context.push((format!("{url}:sub"), token.subject.to_owned().into()));
    context.push((format!("{url}:aud"), token.audience.to_owned().into()));
    context.push((
        "aws:FederatedProvider".into(),
        token.provider_arn.to_owned().into(),
    ));
    context.push((
        "sts:RoleSessionName".into(),
        token.session_name.to_owned().into(),
    ));
    let policies = Policies {
        resource: Some(("trust policy", trust)),
        ..Policies::default()
    };
    vec![evaluate(
        Principal::Federated(token.provider_arn.to_owned()),
        "sts:AssumeRoleWithWebIdentity",
        role_arn,
        context,
        &policies,
    )]
}

/// What EKS Auth asks STS for a pod.
#[derive(Debug, Clone)]
pub(crate) struct PodIdentity<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) cluster_arn: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) service_account: &'a str,
    pub(crate) pod_name: &'a str,
    pub(crate) pod_uid: &'a str,
    pub(crate) disable_session_tags: bool,
}

impl PodIdentity<'_> {
    /// The six session tags, unless the association disables them.
    pub(crate) fn tags(&self) -> Vec<(String, String)> {
        if self.disable_session_tags {
            return Vec::new();
        }
        [
            ("eks-cluster-arn", self.cluster_arn),
            ("eks-cluster-name", self.cluster),
            ("kubernetes-namespace", self.namespace),
            ("kubernetes-service-account", self.service_account),
            ("kubernetes-pod-name", self.pod_name),
            ("kubernetes-pod-uid", self.pod_uid),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// `eks-<cluster>-<pod>-<uuid>`, cut to 64 characters; the UUID is random per session,
    /// shown as zeros.
    pub(crate) fn session_name(&self) -> String {
        let mut name = format!(
            "eks-{}-{}-00000000-0000-0000-0000-000000000000",
            self.cluster, self.pod_name
        );
        if name.len() > 64 {
            name.truncate(64);
        }
        name
    }
}

/// `assume_role_for_service`'s trust check: the trust policy alone, the service principal,
/// `sts:AssumeRole` and (with tags) `sts:TagSession`, `aws:SourceAccount`, `aws:SourceArn`,
/// `sts:RoleSessionName`, the request tags.
pub(crate) fn pod_identity_trust(
    trust: &Policy,
    role_arn: &str,
    pod: &PodIdentity<'_>,
    facts: &Facts,
) -> Vec<Evaluation> {
    let tags = pod.tags();
    let mut context = ContextList::new();
    time_keys(&mut context, facts);
    context.push((
        "aws:SourceAccount".into(),
        arn_account(pod.cluster_arn).to_owned().into(),
    ));
    context.push(("aws:SourceArn".into(), pod.cluster_arn.to_owned().into()));
    context.push(("sts:RoleSessionName".into(), pod.session_name().into()));
    tag_keys(&mut context, &tags);
    trust_actions(
        trust,
        Principal::Service(POD_IDENTITY_SERVICE.to_owned()),
        role_arn,
        &context,
        !tags.is_empty(),
    )
}

/// The trust policy alone for `sts:AssumeRole` and, with session tags, `sts:TagSession`.
fn trust_actions(
    trust: &Policy,
    principal: Principal,
    role_arn: &str,
    context: &ContextList,
    tagged: bool,
) -> Vec<Evaluation> {
    let policies = Policies {
        resource: Some(("trust policy", trust)),
        ..Policies::default()
    };
    let mut actions = vec!["sts:AssumeRole"];
    if tagged {
        actions.push("sts:TagSession");
    }
    actions
        .into_iter()
        .map(|action| {
            evaluate(
                principal.clone(),
                action,
                role_arn,
                context.clone(),
                &policies,
            )
        })
        .collect()
}

/// The trust check AWS makes when podiam's own identity (`broker`) assumes a role in an
/// upstream account for the pod: the trust policy alone (podiam's own permissions are AWS's
/// to check), `sts:AssumeRole` and (with tags) `sts:TagSession`, the session name and the
/// request tags.
pub(crate) fn broker_trust(
    trust: &Policy,
    role_arn: &str,
    broker: &str,
    pod: &PodIdentity<'_>,
    facts: &Facts,
) -> Vec<Evaluation> {
    let tags = pod.tags();
    let mut context = ContextList::new();
    time_keys(&mut context, facts);
    context.push(("aws:PrincipalArn".into(), broker.to_owned().into()));
    context.push((
        "aws:PrincipalAccount".into(),
        arn_account(broker).to_owned().into(),
    ));
    context.push(("sts:RoleSessionName".into(), pod.session_name().into()));
    tag_keys(&mut context, &tags);
    let principal = broker.parse().map_or(Principal::Anonymous, Principal::Aws);
    trust_actions(trust, principal, role_arn, &context, !tags.is_empty())
}

/// `Caller::context` for a role session: the global keys and the principal tags (the role's,
/// then the session's, which win).
pub(crate) fn session_context(
    role: Option<&Role>,
    session: &Session,
    facts: &Facts,
) -> ContextList {
    let mut c = ContextList::new();
    c.push(("aws:CurrentTime".into(), rfc3339(facts.now).into()));
    c.push((
        "aws:EpochTime".into(),
        facts.now.unix_timestamp().to_string().into(),
    ));
    c.push((
        "aws:SecureTransport".into(),
        facts.secure_transport.to_string().into(),
    ));
    c.push(("aws:RequestedRegion".into(), facts.region.clone().into()));
    c.push((
        "aws:PrincipalAccount".into(),
        arn_account(&session.role_arn).to_owned().into(),
    ));
    c.push((
        "aws:userid".into(),
        format!("{}:{}", session.role_id, session.session_name).into(),
    ));
    c.push(("aws:PrincipalArn".into(), session.role_arn.clone().into()));
    c.push(("aws:PrincipalType".into(), "AssumedRole".into()));
    c.push((
        "aws:TokenIssueTime".into(),
        rfc3339(session.issued_at).into(),
    ));
    let mut tags: Vec<(String, String)> = role.map(|r| r.tags.clone()).unwrap_or_default();
    for (k, v) in &session.tags {
        tags.retain(|(existing, _)| !existing.eq_ignore_ascii_case(k));
        tags.push((k.clone(), v.clone()));
    }
    for (k, v) in &tags {
        c.push((format!("aws:PrincipalTag/{k}"), v.clone().into()));
    }
    if !tags.is_empty() {
        c.push((
            "aws:PrincipalTagKeys".into(),
            ContextValue::Multi(tags.into_iter().map(|(k, _)| k).collect()),
        ));
    }
    c
}

fn session_principal(session: &Session) -> Principal {
    session
        .arn()
        .parse()
        .map_or(Principal::Anonymous, Principal::Aws)
}

fn role_policies<'a>(role: Option<&'a Role>, session: &'a Session) -> Policies<'a> {
    Policies {
        identity: role
            .map(|r| r.identity.iter().collect())
            .unwrap_or_default(),
        resource: None,
        boundary: role.and_then(|r| r.boundary.as_ref()),
        session: session.policy.iter().collect(),
    }
}

/// The session's call of `action` on `resource`, as `/podiam/authorize` decides it: the
/// role's inline and attached policies, its boundary, the session policy, the session's
/// context. `role` is `None` when the role does not exist (nothing allows).
pub(crate) fn permissions(
    role: Option<&Role>,
    session: &Session,
    action: &str,
    resource: &str,
    facts: &Facts,
) -> Evaluation {
    evaluate(
        session_principal(session),
        action,
        resource,
        session_context(role, session, facts),
        &role_policies(role, session),
    )
}

/// Role chaining (an association's `targetRoleArn`): `AssumeRole` by the first session. The
/// target's trust policy must allow on its own, and the full evaluation (the first session's
/// policies with the trust policy as the resource policy) must allow too.
pub(crate) fn chained_trust(
    target: &Role,
    trust: &Policy,
    first_role: Option<&Role>,
    first: &Session,
    session_name: &str,
    external_id: Option<&str>,
    facts: &Facts,
) -> Evaluation {
    let mut context = session_context(first_role, first, facts);
    context.push(("sts:RoleSessionName".into(), session_name.to_owned().into()));
    if let Some(external) = external_id {
        context.push(("sts:ExternalId".into(), external.to_owned().into()));
    }
    let mut policies = role_policies(first_role, first);
    policies.resource = Some(("trust policy", trust));
    let mut evaluation = evaluate(
        session_principal(first),
        "sts:AssumeRole",
        &target.arn,
        context,
        &policies,
    );
    let mut alone = Request::new("sts:AssumeRole")
        .principal(session_principal(first))
        .resource(&target.arn);
    for (k, v) in &evaluation.context {
        alone.context_mut().insert(k, v.clone());
    }
    let outcome = trust.evaluate(&alone);
    if outcome != PolicyOutcome::Allow && evaluation.explanation.decision == Decision::Allow {
        evaluation.explanation.decision = Decision::ImplicitDeny;
        evaluation.explanation.reason = format!(
            "the trust policy of {} does not allow sts:AssumeRole for this principal",
            target.arn
        );
        evaluation.rule = Rule::NothingAllows;
    }
    evaluation
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "637423329338";

    fn facts() -> Facts {
        Facts {
            now: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            region: "eu-central-1".into(),
            secure_transport: false,
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text).unwrap()
    }

    fn role(name: &str, identity: &[&str]) -> Role {
        Role {
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            id: "AROAEXAMPLE".into(),
            trust: None,
            identity: identity
                .iter()
                .enumerate()
                .map(|(i, t)| NamedPolicy {
                    name: format!("inline policy \"p{i}\""),
                    policy: policy(t),
                })
                .collect(),
            boundary: None,
            tags: vec![("team".into(), "carts".into())],
        }
    }

    fn pod<'a>() -> PodIdentity<'a> {
        PodIdentity {
            cluster: "eks-workshop",
            cluster_arn: "arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop",
            namespace: "carts",
            service_account: "carts",
            pod_name: "carts-explain",
            pod_uid: "uid-1",
            disable_session_tags: false,
        }
    }

    #[test]
    fn session_arns() {
        assert_eq!(
            session_arn("arn:aws:iam::111122223333:role/path/to/r", "s"),
            "arn:aws:sts::111122223333:assumed-role/r/s"
        );
        assert_eq!(
            arn_account("arn:aws:eks:eu-central-1:1234:cluster/c"),
            "1234"
        );
    }

    #[test]
    fn web_identity_trust_sets_the_provider_keys() {
        let url = "oidc.eks.eu-central-1.amazonaws.com/id/X";
        let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{url}");
        let trust = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{provider}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{url}:sub":"system:serviceaccount:carts:carts","{url}:aud":"sts.amazonaws.com"}}}}}}]}}"#
        ));
        let token = |subject| WebIdentity {
            provider_url: url,
            provider_arn: &provider,
            subject,
            audience: "sts.amazonaws.com",
            session_name: "botocore-session-1",
        };
        let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/r");
        let allowed = web_identity_trust(
            &trust,
            &role_arn,
            &token("system:serviceaccount:carts:carts"),
            &facts(),
        );
        assert_eq!(allowed.len(), 1);
        assert_eq!(allowed[0].decision(), Decision::Allow);
        assert_eq!(allowed[0].action, "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            allowed[0].context[&format!("{url}:aud")],
            ContextValue::from("sts.amazonaws.com")
        );
        assert_eq!(
            allowed[0].context["aws:FederatedProvider"],
            ContextValue::from(provider.as_str())
        );
        let denied = web_identity_trust(
            &trust,
            &role_arn,
            &token("system:serviceaccount:orders:orders"),
            &facts(),
        );
        assert_eq!(denied[0].decision(), Decision::ImplicitDeny);
        let condition = &denied[0].explanation.trace[0].statements[0].conditions;
        assert!(condition.iter().any(|c| !c.result));
    }

    #[test]
    fn an_aws_roles_trust_is_checked_for_podiams_principal_and_the_workloads_tags() {
        let broker = "arn:aws:iam::111122223333:user/broker";
        let role_arn = "arn:aws:iam::111122223333:role/carts";
        let trust = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{broker}"}},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{{"StringEquals":{{"aws:RequestTag/kubernetes-namespace":"carts"}}}}}}]}}"#
        ));
        let allowed = broker_trust(&trust, role_arn, broker, &pod(), &facts());
        assert_eq!(
            allowed
                .iter()
                .map(|e| e.action.as_str())
                .collect::<Vec<_>>(),
            ["sts:AssumeRole", "sts:TagSession"]
        );
        assert!(allowed.iter().all(|e| e.decision() == Decision::Allow));
        // Another principal, or the pods.eks.amazonaws.com service: refused.
        let other = broker_trust(
            &trust,
            role_arn,
            "arn:aws:iam::111122223333:user/someone",
            &pod(),
            &facts(),
        );
        assert!(other.iter().all(|e| e.decision() == Decision::ImplicitDeny));
        let service = pod_identity_trust(&trust, role_arn, &pod(), &facts());
        assert!(
            service
                .iter()
                .all(|e| e.decision() == Decision::ImplicitDeny)
        );
        // Another namespace's tags: refused.
        let mut orders = pod();
        orders.namespace = "orders";
        let refused = broker_trust(&trust, role_arn, broker, &orders, &facts());
        assert!(
            refused
                .iter()
                .all(|e| e.decision() == Decision::ImplicitDeny)
        );
    }

    #[test]
    fn pod_identity_trust_asks_for_both_actions_with_the_six_tags() {
        let trust = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"carts","aws:SourceAccount":"637423329338"}}}]}"#,
        );
        let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/pia");
        let result = pod_identity_trust(&trust, &role_arn, &pod(), &facts());
        assert_eq!(
            result.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["sts:AssumeRole", "sts:TagSession"]
        );
        assert_eq!(result[0].decision(), Decision::Allow);
        // The trust policy lacks sts:TagSession: the service's TagSession is refused.
        assert_eq!(result[1].decision(), Decision::ImplicitDeny);
        let keys = &result[0].context;
        assert_eq!(
            keys["aws:TagKeys"],
            ContextValue::Multi(
                [
                    "eks-cluster-arn",
                    "eks-cluster-name",
                    "kubernetes-namespace",
                    "kubernetes-service-account",
                    "kubernetes-pod-name",
                    "kubernetes-pod-uid"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(
            keys["aws:SourceArn"],
            ContextValue::from("arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop")
        );
        let mut quiet = pod();
        quiet.disable_session_tags = true;
        let result = pod_identity_trust(&trust, &role_arn, &quiet, &facts());
        assert_eq!(result.len(), 1);
        assert!(!result[0].context.contains_key("aws:TagKeys"));
    }

    #[test]
    fn pod_identity_session_names_are_cut_to_64() {
        let mut p = pod();
        p.pod_name = "a-very-long-pod-name-that-goes-on-and-on";
        assert_eq!(p.session_name().len(), 64);
        assert!(
            pod()
                .session_name()
                .starts_with("eks-eks-workshop-carts-explain-")
        );
    }

    #[test]
    fn permissions_use_role_policies_and_principal_tags() {
        let table = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts";
        let r = role(
            "pia",
            &[
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/kubernetes-namespace":"carts"}}}]}"#,
            ],
        );
        let session = Session {
            role_arn: r.arn.clone(),
            role_id: r.id.clone(),
            session_name: pod().session_name(),
            tags: pod().tags(),
            policy: None,
            issued_at: facts().now,
        };
        let allowed = permissions(Some(&r), &session, "dynamodb:PutItem", table, &facts());
        assert_eq!(
            allowed.decision(),
            Decision::Allow,
            "{:?}",
            allowed.explanation
        );
        assert!(allowed.principal.starts_with(
            "arn:aws:sts::637423329338:assumed-role/pia/eks-eks-workshop-carts-explain-"
        ));
        assert_eq!(
            allowed.context["aws:PrincipalTag/team"],
            ContextValue::from("carts")
        );
        assert_eq!(
            allowed.context["aws:PrincipalType"],
            ContextValue::from("AssumedRole")
        );
        assert_eq!(allowed.policies["identity[0]"], "inline policy \"p0\"");

        let untagged = Session {
            tags: Vec::new(),
            ..session.clone()
        };
        let denied = permissions(Some(&r), &untagged, "dynamodb:PutItem", table, &facts());
        assert_eq!(denied.decision(), Decision::ImplicitDeny);
        assert_eq!(denied.rule, Rule::NothingAllows);

        let gone = permissions(None, &session, "dynamodb:PutItem", table, &facts());
        assert_eq!(gone.decision(), Decision::ImplicitDeny);
        assert!(gone.explanation.trace.is_empty());

        let restricted = Session {
            policy: Some(NamedPolicy {
                name: "the association's session policy".into(),
                policy: policy(
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#,
                ),
            }),
            ..session
        };
        let limited = permissions(Some(&r), &restricted, "dynamodb:PutItem", table, &facts());
        assert_eq!(limited.rule, Rule::Session);
    }

    #[test]
    fn chaining_needs_the_target_trust_policy() {
        let first = role(
            "pia",
            &[
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
            ],
        );
        let session = Session {
            role_arn: first.arn.clone(),
            role_id: first.id.clone(),
            session_name: "s".into(),
            tags: Vec::new(),
            policy: None,
            issued_at: facts().now,
        };
        let target = role("target", &[]);
        let trusting = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
            first.arn
        ));
        let ok = chained_trust(
            &target,
            &trusting,
            Some(&first),
            &session,
            "s",
            None,
            &facts(),
        );
        assert_eq!(ok.decision(), Decision::Allow, "{:?}", ok.explanation);
        let other = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::637423329338:role/someone-else"},"Action":"sts:AssumeRole"}]}"#,
        );
        let refused = chained_trust(&target, &other, Some(&first), &session, "s", None, &facts());
        assert_eq!(refused.decision(), Decision::ImplicitDeny);
        assert!(refused.explanation.reason.contains("trust policy"));
    }
}
