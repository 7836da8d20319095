//! STS over awsQuery: parameter rules of the model, the call, the XML.

use podiam_eks::{Upstream, UpstreamAssume};
use podiam_iam::Caller;
use podiam_sts::{AssumeRoleRequest, Issued, WebIdentityRequest};
use podiam_wire::{
    Api, QueryRequest, Validation, WireError, Xml, access_error, iso8601, sts_error,
    upstream_sts_error,
};

use crate::audit::{self, AuditEvent};
use crate::query::{Ctx, Output};

const ACTIONS: &[&str] = &[
    "AssumeRoleWithWebIdentity",
    "AssumeRole",
    "GetCallerIdentity",
];

/// Is `action` an STS operation podiam implements?
pub(crate) fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// `[\w+=,.@-]`
fn iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `[\t\n\r\x20-\xFF]`
fn policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || ('\u{20}'..='\u{ff}').contains(&c)
}

pub(crate) async fn handle(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    match q.action() {
        "AssumeRoleWithWebIdentity" => web_identity(ctx, q).await,
        "AssumeRole" => assume_role(ctx, q).await,
        "GetCallerIdentity" => caller_identity(ctx),
        other => Err(WireError::new(
            "InvalidAction",
            400,
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

/// The session parameters shared by both operations.
struct SessionParams<'q> {
    role_arn: &'q str,
    session_name: &'q str,
    duration: Option<u32>,
    policy: Option<String>,
    policy_arns: Vec<String>,
}

fn session_params<'q>(
    v: &mut Validation,
    q: &'q QueryRequest,
    policy_max: usize,
) -> Result<SessionParams<'q>, WireError> {
    let role_arn = v.required(q, "RoleArn");
    v.length("RoleArn", role_arn, 20, 2048);
    let session_name = v.required(q, "RoleSessionName");
    v.length("RoleSessionName", session_name, 2, 64);
    v.pattern(
        "RoleSessionName",
        session_name,
        "[\\w+=,.@-]*",
        iam_name_char,
    );
    let duration = v
        .integer(q, "DurationSeconds", 900, 43_200)
        .and_then(|d| u32::try_from(d).ok());
    let policy = q.get("Policy").map(str::to_owned);
    if let Some(policy) = &policy {
        v.length("Policy", policy, 1, policy_max);
        v.pattern(
            "Policy",
            policy,
            "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
            policy_char,
        );
    }
    let mut policy_arns = Vec::new();
    for (i, member) in q.structs("PolicyArns")?.into_iter().enumerate() {
        match member.get("arn") {
            Some(arn) => {
                v.length(&format!("PolicyArns.{}.member.arn", i + 1), arn, 20, 2048);
                policy_arns.push(arn.clone());
            }
            None => v.fail(format!("PolicyArns.member.{} needs an arn", i + 1)),
        }
    }
    Ok(SessionParams {
        role_arn,
        session_name,
        duration,
        policy,
        policy_arns,
    })
}

fn credentials_xml(x: &mut Xml, issued: &Issued) {
    x.open("Credentials")
        .text("AccessKeyId", &issued.session.access_key_id)
        .text("SecretAccessKey", issued.session.secret_access_key.expose())
        .text("SessionToken", &issued.session_token)
        .text("Expiration", &iso8601(issued.session.expiration()))
        .close("Credentials");
    x.open("AssumedRoleUser")
        .text("AssumedRoleId", &issued.session.assumed_role_id())
        .text("Arn", &issued.session.assumed_role_arn())
        .close("AssumedRoleUser");
    if let Some(size) = issued.packed_policy_size {
        x.text("PackedPolicySize", &size.to_string());
    }
    x.optional(
        "SourceIdentity",
        issued.session.details.source_identity.as_deref(),
    );
}

fn audit_issued(ctx: &Ctx<'_>, operation: &str, principal: &str, issued: &Issued) {
    record_issued(
        ctx,
        operation,
        principal,
        &issued.session.details.role_arn,
        &issued.session.details.session_name,
        &issued.session.access_key_id,
        issued.session.expiration(),
    );
}

/// The audit line and metric of credentials handed out (podiam's or AWS's).
fn record_issued(
    ctx: &Ctx<'_>,
    operation: &str,
    principal: &str,
    role_arn: &str,
    session_name: &str,
    access_key_id: &str,
    expiration: time::OffsetDateTime,
) {
    ctx.app.inner.metrics.credential(operation, "issued");
    audit::record(
        ctx.app,
        &AuditEvent {
            event: "credential_issued",
            operation,
            request_id: &ctx.request_id,
            role_arn,
            principal,
            source_ip: ctx.facts.source_ip.as_deref().unwrap_or_default(),
            session_name,
            access_key_id: Some(access_key_id),
            expiration: Some(&iso8601(expiration)),
            code: None,
            message: None,
            reason: None,
        },
    );
}

/// The audit line and metric of a refusal; `reason` is for operators only.
fn audit_denied(
    ctx: &Ctx<'_>,
    operation: &str,
    principal: &str,
    role_arn: &str,
    session_name: &str,
    reason: &str,
    wire: &WireError,
) {
    ctx.app.inner.metrics.credential(operation, "denied");
    audit::record(
        ctx.app,
        &AuditEvent {
            event: "credential_denied",
            operation,
            request_id: &ctx.request_id,
            role_arn,
            principal,
            source_ip: ctx.facts.source_ip.as_deref().unwrap_or_default(),
            session_name,
            access_key_id: None,
            expiration: None,
            code: Some(wire.code),
            message: Some(&wire.message),
            reason: Some(reason),
        },
    );
}

async fn web_identity(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let SessionParams {
        role_arn,
        session_name,
        duration,
        policy,
        policy_arns,
    } = session_params(&mut v, q, 2048)?;
    let token = v.required(q, "WebIdentityToken");
    v.length("WebIdentityToken", token, 4, 20_000);
    if let Some(provider) = q.get("ProviderId") {
        v.length("ProviderId", provider, 4, 2048);
    }
    v.finish()?;
    let request = WebIdentityRequest {
        role_arn: role_arn.to_owned(),
        session_name: session_name.to_owned(),
        token: token.to_owned(),
        duration,
        policy,
        policy_arns,
    };
    match ctx
        .app
        .inner
        .sts
        .assume_role_with_web_identity(&request, &ctx.facts)
        .await
    {
        Ok(issued) => {
            let subject = issued.subject.clone().unwrap_or_default();
            audit_issued(
                ctx,
                "AssumeRoleWithWebIdentity",
                &format!(
                    "{subject} via {}",
                    issued.provider.as_deref().unwrap_or_default()
                ),
                &issued,
            );
            let mut x = Xml::new();
            credentials_xml(&mut x, &issued);
            x.optional("SubjectFromWebIdentityToken", issued.subject.as_deref());
            x.optional("Provider", issued.provider.as_deref());
            x.optional("Audience", issued.audience.as_deref());
            Ok(Some(x))
        }
        Err(e) => {
            let wire = sts_error(&e);
            audit_denied(
                ctx,
                "AssumeRoleWithWebIdentity",
                "web identity token",
                role_arn,
                session_name,
                &e.reason(),
                &wire,
            );
            Err(wire)
        }
    }
}

async fn assume_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let caller = ctx.caller()?;
    let mut v = Validation::new();
    let SessionParams {
        role_arn,
        session_name,
        duration,
        policy,
        policy_arns,
    } = session_params(&mut v, q, 2048)?;
    let tags = q.tags("Tags")?;
    v.tags("Tags", &tags);
    let transitive = q.list("TransitiveTagKeys")?;
    if transitive.len() > 50 {
        v.fail("Value at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50".to_owned());
    }
    for key in &transitive {
        v.tag_key("TransitiveTagKeys.member", key);
    }
    let external_id = q.get("ExternalId").map(str::to_owned);
    if let Some(external) = &external_id {
        v.length("ExternalId", external, 2, 1224);
        v.pattern("ExternalId", external, "[\\w+=,.@:\\/-]*", |c| {
            iam_name_char(c) || c == ':' || c == '/'
        });
    }
    let source_identity = q.get("SourceIdentity").map(str::to_owned);
    if let Some(source) = &source_identity {
        v.length("SourceIdentity", source, 2, 64);
        v.pattern("SourceIdentity", source, "[\\w+=,.@-]*", iam_name_char);
    }
    let serial_number = q.get("SerialNumber").map(str::to_owned);
    v.finish()?;
    let request = AssumeRoleRequest {
        role_arn: role_arn.to_owned(),
        session_name: session_name.to_owned(),
        duration,
        policy,
        policy_arns,
        tags,
        transitive_tag_keys: transitive,
        external_id,
        source_identity,
        serial_number,
    };
    let principal = caller.arn(&ctx.app.inner.iam.state());
    if let Some(upstream) = ctx
        .app
        .inner
        .eks
        .upstream()
        .filter(|u| u.accounts.holds(role_arn))
    {
        return assume_upstream_role(ctx, upstream, &principal, &request).await;
    }
    match ctx
        .app
        .inner
        .sts
        .assume_role(caller, &request, &ctx.facts)
        .await
    {
        Ok(issued) => {
            audit_issued(ctx, "AssumeRole", &principal, &issued);
            let mut x = Xml::new();
            credentials_xml(&mut x, &issued);
            Ok(Some(x))
        }
        Err(e) => {
            let wire = sts_error(&e);
            audit_denied(
                ctx,
                "AssumeRole",
                &principal,
                role_arn,
                session_name,
                &e.reason(),
                &wire,
            );
            Err(wire)
        }
    }
}

/// `AssumeRole` of a role in an upstream account (a node's role for IMDS, say): podiam's side
/// is the caller's own permission, which must allow `sts:AssumeRole` (and `sts:TagSession`
/// with tags) on the role, as for a role in another account; then podiam asks AWS as itself,
/// with the caller's session name, tags, external id and session policy, and AWS's trust
/// policy decides.
async fn assume_upstream_role(
    ctx: &Ctx<'_>,
    upstream: &Upstream,
    principal: &str,
    request: &AssumeRoleRequest,
) -> Output {
    let role_arn = request.role_arn.as_str();
    let session_name = request.session_name.as_str();
    let caller = ctx.caller()?;
    {
        let state = ctx.app.inner.iam.state();
        let mut actions = vec!["sts:AssumeRole"];
        if !request.tags.is_empty() {
            actions.push("sts:TagSession");
        }
        for action in actions {
            state
                .authorize_own_side(caller, action, role_arn, &ctx.facts)
                .map_err(|e| access_error(&e, Api::Sts))?;
        }
    }
    let call = UpstreamAssume {
        role_arn: role_arn.to_owned(),
        session_name: session_name.to_owned(),
        tags: request.tags.clone(),
        external_id: request.external_id.clone(),
        policy: request.policy.clone(),
        via: None,
        pod: format!("{principal}/{session_name}"),
    };
    match upstream.roles.assume(&call).await {
        Ok(aws) => {
            record_issued(
                ctx,
                "AssumeRole",
                principal,
                role_arn,
                session_name,
                &aws.access_key_id,
                aws.expiration,
            );
            let mut x = Xml::new();
            x.open("Credentials")
                .text("AccessKeyId", &aws.access_key_id)
                .text("SecretAccessKey", aws.secret_access_key.expose())
                .text("SessionToken", aws.session_token.expose())
                .text("Expiration", &iso8601(aws.expiration))
                .close("Credentials");
            x.open("AssumedRoleUser")
                .text("AssumedRoleId", &aws.assumed_role_id)
                .text("Arn", &aws.assumed_role_arn)
                .close("AssumedRoleUser");
            Ok(Some(x))
        }
        Err(error) => {
            let wire = upstream_sts_error(role_arn, &error);
            audit_denied(
                ctx,
                "AssumeRole",
                principal,
                role_arn,
                session_name,
                &error.to_string(),
                &wire,
            );
            Err(wire)
        }
    }
}

fn caller_identity(ctx: &Ctx<'_>) -> Output {
    let caller: &Caller = ctx.caller()?;
    let (user_id, account, arn) = ctx.app.inner.sts.get_caller_identity(caller);
    let mut x = Xml::new();
    x.text("UserId", &user_id)
        .text("Account", &account)
        .text("Arn", &arn);
    Ok(Some(x))
}
