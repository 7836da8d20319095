//! Users, access keys, user policies.

use podiam_iam::{KeyStatus, NewUser};
use podiam_wire::{QueryRequest, Validation, Xml};

use super::{name, optional_name, page_end, paging, path, render, tags};
use crate::query::{Ctx, Output, iam, request_tags};

pub(super) async fn create_user(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let user = name(&mut v, q, "UserName", 64);
    let user_path = path(&mut v, q, "Path");
    let boundary = q.get("PermissionsBoundary").map(str::to_owned);
    let tags = tags(&mut v, q)?;
    v.finish()?;
    let resource = {
        let state = ctx.app.inner.iam.state();
        format!(
            "arn:{}:iam::{}:user{}{user}",
            state.partition(),
            state.account(),
            user_path.as_deref().unwrap_or("/")
        )
    };
    let mut keys = request_tags(&tags);
    if let Some(b) = &boundary {
        keys.push(("iam:PermissionsBoundary".to_owned(), b.clone().into()));
    }
    ctx.authorize_with("iam:CreateUser", &resource, keys)?;
    let created = ctx
        .app
        .inner
        .iam
        .create_user(NewUser {
            name: user.to_owned(),
            path: user_path,
            boundary,
            tags,
        })
        .await
        .map_err(iam)?;
    let mut x = Xml::new();
    x.open("User");
    render::user(&mut x, &ctx.app.inner.iam.state(), &created, true);
    x.close("User");
    Ok(Some(x))
}

pub(super) fn get_user(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let named = optional_name(&mut v, q, "UserName", 64);
    v.finish()?;
    let Some(user_name) = ctx.subject_user(named)? else {
        // The root asking about itself.
        let state = ctx.app.inner.iam.state();
        let mut x = Xml::new();
        x.open("User")
            .text("UserId", state.account())
            .text("Arn", &state.root_arn())
            .time("CreateDate", render::time_of(0))
            .close("User");
        return Ok(Some(x));
    };
    ctx.authorize("iam:GetUser", &ctx.user_arn(&user_name))?;
    let user = ctx.app.inner.iam.get_user(&user_name).map_err(iam)?;
    let mut x = Xml::new();
    x.open("User");
    render::user(&mut x, &ctx.app.inner.iam.state(), &user, true);
    x.close("User");
    Ok(Some(x))
}

pub(super) fn list_users(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let prefix = path(&mut v, q, "PathPrefix");
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    ctx.authorize(
        "iam:ListUsers",
        &ctx.list_resource("user", prefix.as_deref()),
    )?;
    let page = ctx
        .app
        .inner
        .iam
        .list_users(prefix.as_deref(), marker.as_deref(), max);
    let state = ctx.app.inner.iam.state();
    let mut x = Xml::new();
    x.members("Users", &page.items, |x, u| {
        render::user(x, &state, u, false)
    });
    page_end(&mut x, &page);
    Ok(Some(x))
}

pub(super) async fn delete_user(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let user = name(&mut v, q, "UserName", 64);
    v.finish()?;
    ctx.authorize("iam:DeleteUser", &ctx.user_arn(user))?;
    ctx.app.inner.iam.delete_user(user).await.map_err(iam)?;
    Ok(None)
}

pub(super) async fn create_access_key(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let named = optional_name(&mut v, q, "UserName", 128);
    v.finish()?;
    let subject = ctx.subject_user(named)?;
    let resource = subject
        .as_deref()
        .map_or_else(|| ctx.app.inner.iam.state().root_arn(), |u| ctx.user_arn(u));
    ctx.authorize("iam:CreateAccessKey", &resource)?;
    let (record, secret) = ctx
        .app
        .inner
        .iam
        .create_access_key(subject.as_deref())
        .await
        .map_err(iam)?;
    let user_name = subject
        .as_deref()
        .map(|u| ctx.app.inner.iam.get_user(u).map(|e| e.record.name.clone()))
        .transpose()
        .map_err(iam)?;
    let mut x = Xml::new();
    x.open("AccessKey")
        .optional("UserName", user_name.as_deref())
        .text("AccessKeyId", &record.id)
        .text("Status", record.status.as_str())
        .text("SecretAccessKey", secret.expose())
        .time("CreateDate", render::time_of(record.created))
        .close("AccessKey");
    Ok(Some(x))
}

pub(super) fn list_access_keys(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let named = optional_name(&mut v, q, "UserName", 128);
    let _ = paging(&mut v, q);
    v.finish()?;
    let subject = ctx.subject_user(named)?;
    let resource = subject
        .as_deref()
        .map_or_else(|| ctx.app.inner.iam.state().root_arn(), |u| ctx.user_arn(u));
    ctx.authorize("iam:ListAccessKeys", &resource)?;
    let keys = ctx
        .app
        .inner
        .iam
        .list_access_keys(subject.as_deref())
        .map_err(iam)?;
    let state = ctx.app.inner.iam.state();
    let mut x = Xml::new();
    x.members("AccessKeyMetadata", &keys, |x, k| {
        let user = k
            .record
            .user
            .as_deref()
            .and_then(|u| state.user(u))
            .map(|u| u.record.name.clone());
        x.optional("UserName", user.as_deref())
            .text("AccessKeyId", &k.record.id)
            .text("Status", k.record.status.as_str())
            .time("CreateDate", render::time_of(k.record.created));
    });
    x.text("IsTruncated", "false");
    Ok(Some(x))
}

pub(super) async fn update_access_key(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let named = optional_name(&mut v, q, "UserName", 128);
    let id = v.required(q, "AccessKeyId");
    v.length("AccessKeyId", id, 16, 128);
    let status = v.required(q, "Status");
    v.one_of("Status", status, &["Active", "Inactive"]);
    v.finish()?;
    let subject = ctx.subject_user(named)?;
    let resource = subject
        .as_deref()
        .map_or_else(|| ctx.app.inner.iam.state().root_arn(), |u| ctx.user_arn(u));
    ctx.authorize("iam:UpdateAccessKey", &resource)?;
    let status = if status == "Active" {
        KeyStatus::Active
    } else {
        KeyStatus::Inactive
    };
    ctx.app
        .inner
        .iam
        .update_access_key(subject.as_deref(), id, status)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn delete_access_key(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let named = optional_name(&mut v, q, "UserName", 128);
    let id = v.required(q, "AccessKeyId");
    v.length("AccessKeyId", id, 16, 128);
    v.finish()?;
    let subject = ctx.subject_user(named)?;
    let resource = subject
        .as_deref()
        .map_or_else(|| ctx.app.inner.iam.state().root_arn(), |u| ctx.user_arn(u));
    ctx.authorize("iam:DeleteAccessKey", &resource)?;
    ctx.app
        .inner
        .iam
        .delete_access_key(subject.as_deref(), id)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn tag_user(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let user = name(&mut v, q, "UserName", 64);
    let tags = tags(&mut v, q)?;
    v.finish()?;
    ctx.authorize_with("iam:TagUser", &ctx.user_arn(user), request_tags(&tags))?;
    ctx.app.inner.iam.tag_user(user, &tags).await.map_err(iam)?;
    Ok(None)
}

pub(super) async fn untag_user(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let user = name(&mut v, q, "UserName", 64);
    let keys = q.list("TagKeys")?;
    if keys.len() > 50 {
        v.fail("Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50".to_owned());
    }
    for key in &keys {
        v.tag_key("TagKeys.member", key);
    }
    v.finish()?;
    ctx.authorize_with(
        "iam:UntagUser",
        &ctx.user_arn(user),
        vec![(
            "aws:TagKeys".to_owned(),
            podiam_policy::ContextValue::Multi(keys.clone()),
        )],
    )?;
    ctx.app
        .inner
        .iam
        .untag_user(user, &keys)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) fn list_user_tags(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let user = name(&mut v, q, "UserName", 64);
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    ctx.authorize("iam:ListUserTags", &ctx.user_arn(user))?;
    let page = ctx
        .app
        .inner
        .iam
        .list_user_tags(user, marker.as_deref(), max)
        .map_err(iam)?;
    let mut x = Xml::new();
    x.tags("Tags", &page.items);
    page_end(&mut x, &page);
    Ok(Some(x))
}
