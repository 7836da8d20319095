//! Managed policies and versions.

use podiam_iam::PolicyScope;
use podiam_wire::{QueryRequest, Validation, Xml};

use super::{arn, document, name, page_end, paging, path, render, tags};
use crate::query::{Ctx, Output, iam, request_tags};

pub(super) async fn create_policy(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = name(&mut v, q, "PolicyName", 128);
    let policy_path = path(&mut v, q, "Path");
    let doc = document(&mut v, q, "PolicyDocument");
    let description = q.get("Description").map(str::to_owned);
    if let Some(d) = &description {
        v.length("Description", d, 0, 1000);
    }
    let tags = tags(&mut v, q)?;
    v.finish()?;
    let resource = ctx
        .app
        .inner
        .iam
        .state()
        .policy_arn(policy_path.as_deref().unwrap_or("/"), policy);
    ctx.authorize_with("iam:CreatePolicy", &resource, request_tags(&tags))?;
    let created = ctx
        .app
        .inner
        .iam
        .create_policy(policy, policy_path.as_deref(), doc, description, tags)
        .await
        .map_err(iam)?;
    let mut x = Xml::new();
    x.open("Policy");
    render::policy(&mut x, &ctx.app.inner.iam.state(), &created);
    x.close("Policy");
    Ok(Some(x))
}

pub(super) fn get_policy(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    v.finish()?;
    ctx.authorize("iam:GetPolicy", policy)?;
    let entry = ctx.app.inner.iam.get_policy(policy).map_err(iam)?;
    let mut x = Xml::new();
    x.open("Policy");
    render::policy(&mut x, &ctx.app.inner.iam.state(), &entry);
    x.close("Policy");
    Ok(Some(x))
}

pub(super) fn get_policy_version(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    let version = v.required(q, "VersionId");
    v.finish()?;
    ctx.authorize("iam:GetPolicyVersion", policy)?;
    let (record, is_default) = ctx
        .app
        .inner
        .iam
        .get_policy_version(policy, version)
        .map_err(iam)?;
    let mut x = Xml::new();
    x.open("PolicyVersion");
    render::version(&mut x, &record, is_default, true);
    x.close("PolicyVersion");
    Ok(Some(x))
}

pub(super) fn list_policies(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let scope = match q.get("Scope") {
        None | Some("All") => PolicyScope::All,
        Some("AWS") => PolicyScope::Aws,
        Some("Local") => PolicyScope::Local,
        Some(other) => {
            v.one_of("Scope", other, &["All", "AWS", "Local"]);
            PolicyScope::All
        }
    };
    let only_attached = v.boolean(q, "OnlyAttached").unwrap_or(false);
    let prefix = path(&mut v, q, "PathPrefix");
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    ctx.authorize(
        "iam:ListPolicies",
        &ctx.list_resource("policy", prefix.as_deref()),
    )?;
    let page = ctx.app.inner.iam.list_policies(
        scope,
        only_attached,
        prefix.as_deref(),
        marker.as_deref(),
        max,
    );
    let state = ctx.app.inner.iam.state();
    let mut x = Xml::new();
    x.members("Policies", &page.items, |x, p| render::policy(x, &state, p));
    page_end(&mut x, &page);
    Ok(Some(x))
}

pub(super) async fn delete_policy(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    v.finish()?;
    ctx.authorize("iam:DeletePolicy", policy)?;
    ctx.app.inner.iam.delete_policy(policy).await.map_err(iam)?;
    Ok(None)
}

pub(super) async fn create_policy_version(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    let doc = document(&mut v, q, "PolicyDocument");
    let set_default = v.boolean(q, "SetAsDefault").unwrap_or(false);
    v.finish()?;
    ctx.authorize("iam:CreatePolicyVersion", policy)?;
    let (record, is_default) = ctx
        .app
        .inner
        .iam
        .create_policy_version(policy, doc, set_default)
        .await
        .map_err(iam)?;
    let mut x = Xml::new();
    x.open("PolicyVersion");
    render::version(&mut x, &record, is_default, false);
    x.close("PolicyVersion");
    Ok(Some(x))
}

pub(super) fn list_policy_versions(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    let _ = paging(&mut v, q);
    v.finish()?;
    ctx.authorize("iam:ListPolicyVersions", policy)?;
    let (versions, default) = ctx
        .app
        .inner
        .iam
        .list_policy_versions(policy)
        .map_err(iam)?;
    let mut x = Xml::new();
    x.members("Versions", &versions, |x, version| {
        render::version(x, version, version.number == default, false)
    });
    x.text("IsTruncated", "false");
    Ok(Some(x))
}

pub(super) async fn delete_policy_version(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    let version = v.required(q, "VersionId");
    v.finish()?;
    ctx.authorize("iam:DeletePolicyVersion", policy)?;
    ctx.app
        .inner
        .iam
        .delete_policy_version(policy, version)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn set_default_policy_version(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let policy = arn(&mut v, q, "PolicyArn");
    let version = v.required(q, "VersionId");
    v.finish()?;
    ctx.authorize("iam:SetDefaultPolicyVersion", policy)?;
    ctx.app
        .inner
        .iam
        .set_default_policy_version(policy, version)
        .await
        .map_err(iam)?;
    Ok(None)
}
