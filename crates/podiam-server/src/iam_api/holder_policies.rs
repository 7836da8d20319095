//! Inline and attached policies of roles and users: the same seven operations for both
//! (`Put/Get/List/Delete{Role,User}Policy`, `Attach/Detach/ListAttached{Role,User}Policies`).

use podiam_iam::Paged;
use podiam_wire::{QueryRequest, Validation, WireError, Xml, policy_document};

use super::{arn, document, name, page_end, paging, path};
use crate::query::{Ctx, Output, iam};

/// Who holds the policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    Role,
    User,
}

impl Holder {
    /// `Role` or `User`, as in the action names.
    fn kind(self) -> &'static str {
        match self {
            Self::Role => "Role",
            Self::User => "User",
        }
    }

    /// The holder's name parameter, validated (`RoleName` ≤ 64, `UserName` ≤ 128).
    fn name<'q>(self, v: &mut Validation, q: &'q QueryRequest) -> &'q str {
        match self {
            Self::Role => name(v, q, "RoleName", 64),
            Self::User => name(v, q, "UserName", 128),
        }
    }

    fn arn(self, ctx: &Ctx<'_>, holder: &str) -> String {
        match self {
            Self::Role => ctx.role_arn(holder),
            Self::User => ctx.user_arn(holder),
        }
    }

    /// The name as created (names are case-insensitive).
    fn real_name(self, ctx: &Ctx<'_>, holder: &str) -> Result<String, WireError> {
        let service = &ctx.app.inner.iam;
        Ok(match self {
            Self::Role => service.get_role(holder).map_err(iam)?.record.name.clone(),
            Self::User => service.get_user(holder).map_err(iam)?.record.name.clone(),
        })
    }

    fn authorize(
        self,
        ctx: &Ctx<'_>,
        operation: &str,
        holder: &str,
        policy_arn: Option<&str>,
    ) -> Result<(), WireError> {
        let action = format!("iam:{}", operation.replace("{}", self.kind()));
        let extra = policy_arn
            .map(|a| vec![("iam:PolicyARN".to_owned(), a.to_owned().into())])
            .unwrap_or_default();
        ctx.authorize_with(&action, &self.arn(ctx, holder), extra)
    }
}

/// `Put{Role,User}Policy`.
pub(super) async fn put(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let policy = name(&mut v, q, "PolicyName", 128);
    let doc = document(&mut v, q, "PolicyDocument");
    v.finish()?;
    holder.authorize(ctx, "Put{}Policy", who, None)?;
    let service = &ctx.app.inner.iam;
    match holder {
        Holder::Role => service.put_role_policy(who, policy, doc).await,
        Holder::User => service.put_user_policy(who, policy, doc).await,
    }
    .map_err(iam)?;
    Ok(None)
}

/// `Get{Role,User}Policy`: the document byte for byte, URL-encoded.
pub(super) fn get(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let policy = name(&mut v, q, "PolicyName", 128);
    v.finish()?;
    holder.authorize(ctx, "Get{}Policy", who, None)?;
    let service = &ctx.app.inner.iam;
    let doc = match holder {
        Holder::Role => service.get_role_policy(who, policy),
        Holder::User => service.get_user_policy(who, policy),
    }
    .map_err(iam)?;
    let mut x = Xml::new();
    x.text(
        &format!("{}Name", holder.kind()),
        &holder.real_name(ctx, who)?,
    )
    .text("PolicyName", policy)
    .text("PolicyDocument", &policy_document(&doc));
    Ok(Some(x))
}

/// `List{Role,User}Policies`.
pub(super) fn list(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    holder.authorize(ctx, "List{}Policies", who, None)?;
    let service = &ctx.app.inner.iam;
    let page: Paged<String> = match holder {
        Holder::Role => service.list_role_policies(who, marker.as_deref(), max),
        Holder::User => service.list_user_policies(who, marker.as_deref(), max),
    }
    .map_err(iam)?;
    let mut x = Xml::new();
    x.string_members("PolicyNames", page.items.iter().map(String::as_str));
    page_end(&mut x, &page);
    Ok(Some(x))
}

/// `Delete{Role,User}Policy`.
pub(super) async fn delete(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let policy = name(&mut v, q, "PolicyName", 128);
    v.finish()?;
    holder.authorize(ctx, "Delete{}Policy", who, None)?;
    let service = &ctx.app.inner.iam;
    match holder {
        Holder::Role => service.delete_role_policy(who, policy).await,
        Holder::User => service.delete_user_policy(who, policy).await,
    }
    .map_err(iam)?;
    Ok(None)
}

/// `Attach{Role,User}Policy`, authorized with `iam:PolicyARN`.
pub(super) async fn attach(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let policy = arn(&mut v, q, "PolicyArn");
    v.finish()?;
    holder.authorize(ctx, "Attach{}Policy", who, Some(policy))?;
    let service = &ctx.app.inner.iam;
    match holder {
        Holder::Role => service.attach_role_policy(who, policy).await,
        Holder::User => service.attach_user_policy(who, policy).await,
    }
    .map_err(iam)?;
    Ok(None)
}

/// `Detach{Role,User}Policy`, authorized with `iam:PolicyARN`.
pub(super) async fn detach(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let policy = arn(&mut v, q, "PolicyArn");
    v.finish()?;
    holder.authorize(ctx, "Detach{}Policy", who, Some(policy))?;
    let service = &ctx.app.inner.iam;
    match holder {
        Holder::Role => service.detach_role_policy(who, policy).await,
        Holder::User => service.detach_user_policy(who, policy).await,
    }
    .map_err(iam)?;
    Ok(None)
}

/// `ListAttached{Role,User}Policies`.
pub(super) fn list_attached(ctx: &Ctx<'_>, q: &QueryRequest, holder: Holder) -> Output {
    let mut v = Validation::new();
    let who = holder.name(&mut v, q);
    let prefix = path(&mut v, q, "PathPrefix");
    let (marker, max) = paging(&mut v, q);
    v.finish()?;
    holder.authorize(ctx, "ListAttached{}Policies", who, None)?;
    let service = &ctx.app.inner.iam;
    let page = match holder {
        Holder::Role => {
            service.list_attached_role_policies(who, prefix.as_deref(), marker.as_deref(), max)
        }
        Holder::User => {
            service.list_attached_user_policies(who, prefix.as_deref(), marker.as_deref(), max)
        }
    }
    .map_err(iam)?;
    let mut x = Xml::new();
    x.members("AttachedPolicies", &page.items, |x, (name, arn)| {
        x.text("PolicyName", name).text("PolicyArn", arn);
    });
    page_end(&mut x, &page);
    Ok(Some(x))
}
