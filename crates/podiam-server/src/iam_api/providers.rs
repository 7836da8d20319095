//! OIDC identity providers.

use podiam_wire::{QueryRequest, Validation, Xml};

use super::{arn, render, tags};
use crate::query::{Ctx, Output, iam, request_tags};

pub(super) async fn create(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let url = v.required(q, "Url");
    v.length("Url", url, 1, 255);
    let client_ids = q.list("ClientIDList")?;
    for id in &client_ids {
        v.length("ClientIDList.member", id, 1, 255);
    }
    let thumbprints = q.list("ThumbprintList")?;
    for t in &thumbprints {
        v.length("ThumbprintList.member", t, 40, 40);
    }
    let tags = tags(&mut v, q)?;
    v.finish()?;
    let resource = {
        let state = ctx.app.inner.iam.state();
        let key = url.parse::<podiam_types::IssuerUrl>().map_or_else(
            |_| url.trim_end_matches('/').to_owned(),
            |u| u.key().to_owned(),
        );
        state.provider_arn(&key)
    };
    ctx.authorize_with(
        "iam:CreateOpenIDConnectProvider",
        &resource,
        request_tags(&tags),
    )?;
    // Plain HTTP: issuers podiam hosts (their keys never leave the store), or loopback test
    // issuers when the server was started with --allow-http-issuers.
    let hosted = ctx
        .app
        .inner
        .eks
        .state()
        .issuer_cluster(url)
        .is_some_and(|c| matches!(c.record.issuer, podiam_eks::IssuerRecord::Hosted { .. }));
    let allow_http =
        hosted || (ctx.app.inner.allow_http_issuers && crate::issuers::is_loopback_http(url));
    let created = ctx
        .app
        .inner
        .iam
        .create_oidc_provider(url, client_ids, thumbprints, tags.clone(), allow_http)
        .await
        .map_err(iam)?;
    let mut x = Xml::new();
    x.text("OpenIDConnectProviderArn", &created);
    if !tags.is_empty() {
        x.tags("Tags", &tags);
    }
    Ok(Some(x))
}

pub(super) fn get(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let provider = arn(&mut v, q, "OpenIDConnectProviderArn");
    v.finish()?;
    ctx.authorize("iam:GetOpenIDConnectProvider", provider)?;
    let entry = ctx.app.inner.iam.get_oidc_provider(provider).map_err(iam)?;
    let r = &entry.record;
    let mut x = Xml::new();
    x.text("Url", &r.url)
        .string_members("ClientIDList", r.client_ids.iter().map(String::as_str))
        .string_members("ThumbprintList", r.thumbprints.iter().map(String::as_str))
        .time("CreateDate", render::time_of(r.created));
    if !r.tags.is_empty() {
        x.tags("Tags", &r.tags);
    }
    Ok(Some(x))
}

pub(super) fn list(ctx: &Ctx<'_>, _q: &QueryRequest) -> Output {
    ctx.authorize("iam:ListOpenIDConnectProviders", "*")?;
    let page = ctx.app.inner.iam.list_oidc_providers();
    let mut x = Xml::new();
    x.members("OpenIDConnectProviderList", &page.items, |x, arn| {
        x.text("Arn", arn);
    });
    Ok(Some(x))
}

pub(super) async fn delete(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let provider = arn(&mut v, q, "OpenIDConnectProviderArn");
    v.finish()?;
    ctx.authorize("iam:DeleteOpenIDConnectProvider", provider)?;
    ctx.app
        .inner
        .iam
        .delete_oidc_provider(provider)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn add_client_id(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let provider = arn(&mut v, q, "OpenIDConnectProviderArn");
    let client = v.required(q, "ClientID");
    v.length("ClientID", client, 1, 255);
    v.finish()?;
    ctx.authorize("iam:AddClientIDToOpenIDConnectProvider", provider)?;
    ctx.app
        .inner
        .iam
        .add_client_id(provider, client)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn remove_client_id(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let provider = arn(&mut v, q, "OpenIDConnectProviderArn");
    let client = v.required(q, "ClientID");
    v.length("ClientID", client, 1, 255);
    v.finish()?;
    ctx.authorize("iam:RemoveClientIDFromOpenIDConnectProvider", provider)?;
    ctx.app
        .inner
        .iam
        .remove_client_id(provider, client)
        .await
        .map_err(iam)?;
    Ok(None)
}

pub(super) async fn update_thumbprint(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    let mut v = Validation::new();
    let provider = arn(&mut v, q, "OpenIDConnectProviderArn");
    let thumbprints = q.list("ThumbprintList")?;
    v.finish()?;
    ctx.authorize("iam:UpdateOpenIDConnectProviderThumbprint", provider)?;
    ctx.app
        .inner
        .iam
        .update_thumbprints(provider, thumbprints)
        .await
        .map_err(iam)?;
    Ok(None)
}
