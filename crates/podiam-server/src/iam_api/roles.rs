//! Roles and role policies.

use podiam_iam::{NewRole, RoleUpdate};
use podiam_policy::ContextValue;
use podiam_wire::{QueryRequest, Validation, Xml};

use super::{document, name, page_end, paging, path, render, tags};
use crate::query::{Ctx, Output, iam, request_tags};

pub(super) async fn create_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    let role_path = path(&mut v, q, "Path");
    let trust = document(&mut v, q, "AssumeRolePolicyDocument");
    let description = q.get("Description").map(str::to_owned);
    if let Some(d) = &description {
        v.length("Description", d, 0, 1000);
    }
    let max_session = v
        .integer(q, "MaxSessionDuration", 3600, 43_200)
        .and_then(|m| u32::try_from(m).ok());
    let boundary = q.get("PermissionsBoundary").map(str::to_owned);
    let tags = tags(&mut v, q)?;
    v.finish()?;
    let resource = {
        let state = ctx.app.inner.iam.state();
        format!(
            "arn:{}:iam::{}:role{}{role}",
            state.partition(),
            state.account(),
            role_path.as_deref().unwrap_or("/")
        )
    };
    let mut keys = request_tags(&tags);
    if let Some(b) = &boundary {
        keys.push(("iam:PermissionsBoundary".to_owned(), b.clone().into()));
    }
    ctx.authorize_with("iam:CreateRole", &resource, keys)?;
    let created = ctx
        .app
        .inner
        .iam
        .create_role(NewRole {
            name: role.to_owned(),
            path: role_path,
            trust: trust.to_owned(),
            description,
            max_session,
            boundary,
            tags,
        })
        .await
        .map_err(iam)?;
    let mut x = Xml::new();
    x.open("Role");
    render::role(&mut x, &ctx.app.inner.iam.state(), &created, true);
    x.close("Role");
    Ok(Some(x))
}

pub(super) fn get_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    v.finish()?;
    ctx.authorize("iam:GetRole", &ctx.role_arn(role))?;
    let entry = ctx.app.inner.iam.get_role(role).map_err(iam)?;
    let state = ctx.app.inner.iam.state();
    let mut x = Xml::new();
    x.open("Role");
    render::role(&mut x, &state, &entry, true);
    render::role_last_used(&mut x, &state, &entry);
    x.close("Role");
    Ok(Some(x))
}

pub(super) fn list_roles(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let prefix = path(&mut v, q, "PathPrefix");
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    ctx.authorize(
        "iam:ListRoles",
        &ctx.list_resource("role", prefix.as_deref()),
    )?;
    let page = ctx
        .app
        .inner
        .iam
        .list_roles(prefix.as_deref(), marker.as_deref(), max);
    let state = ctx.app.inner.iam.state();
    let mut x = Xml::new();
    x.members("Roles", &page.items, |x, r| {
        render::role(x, &state, r, false)
    });
    page_end(&mut x, &page);
    Ok(Some(x))
}

pub(super) async fn delete_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    v.finish()?;
    ctx.authorize("iam:DeleteRole", &ctx.role_arn(role))?;
    ctx.app.inner.iam.delete_role(role).await.map_err(iam)?;
    Ok(None)
}

pub(super) async fn update_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    let description = q.get("Description").map(str::to_owned);
    if let Some(d) = &description {
        v.length("Description", d, 0, 1000);
    }
    let max_session = v
        .integer(q, "MaxSessionDuration", 3600, 43_200)
        .and_then(|m| u32::try_from(m).ok());
    v.finish()?;
    ctx.authorize("iam:UpdateRole", &ctx.role_arn(role))?;
    ctx.app
        .inner
        .iam
        .update_role(
            role,
            RoleUpdate {
                description,
                max_session,
            },
        )
        .await
        .map_err(iam)?;
    Ok(Some(Xml::new()))
}

pub(super) async fn update_assume_role_policy(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    let doc = document(&mut v, q, "PolicyDocument");
    v.finish()?;
    ctx.authorize("iam:UpdateAssumeRolePolicy", &ctx.role_arn(role))?;
    ctx.app
        .inner
        .iam
        .update_assume_role_policy(role, doc)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn tag_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    let tags = tags(&mut v, q)?;
    v.finish()?;
    ctx.authorize_with("iam:TagRole", &ctx.role_arn(role), request_tags(&tags))?;
    ctx.app.inner.iam.tag_role(role, &tags).await.map_err(iam)?;
    Ok(None)
}

pub(super) async fn untag_role(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    let keys = q.list("TagKeys")?;
    if keys.len() > 50 {
        v.fail("Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50".to_owned());
    }
    for key in &keys {
        v.tag_key("TagKeys.member", key);
    }
    v.finish()?;
    ctx.authorize_with(
        "iam:UntagRole",
        &ctx.role_arn(role),
        vec![("aws:TagKeys".to_owned(), ContextValue::Multi(keys.clone()))],
    )?;
    ctx.app
        .inner
        .iam
        .untag_role(role, &keys)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) fn list_role_tags(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let role = name(&mut v, q, "RoleName", 64);
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    ctx.authorize("iam:ListRoleTags", &ctx.role_arn(role))?;
    let page = ctx
        .app
        .inner
        .iam
        .list_role_tags(role, marker.as_deref(), max)
        .map_err(iam)?;
    let mut x = Xml::new();
    x.tags("Tags", &page.items);
    page_end(&mut x, &page);
    Ok(Some(x))
}
