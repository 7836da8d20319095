//! EKS (rest-json, signing name `eks`): clusters and pod identity associations, plus the
//! hosted issuers' discovery documents and podiam's token-minting extension.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use podiam_crypto::JwkSet;
use podiam_eks::{
    AssociationEntry, AssociationUpdate, ClusterEntry, IssuerChoice, IssuerRecord, NewAssociation,
    NewCluster,
};
use podiam_oidc::{DiscoveryDocument, ObjectRef, TokenRequest, default_jwks_uri};
use podiam_wire::{WireError, eks_error};
use serde_json::{Value, json};

use crate::app::App;
use crate::rest::{Call, Input, RestApi, invalid};

fn eks(e: &podiam_eks::EksError) -> WireError {
    eks_error(e, podiam_wire::Api::Eks)
}

fn cluster_json(app: &App, c: &ClusterEntry) -> Value {
    let r = &c.record;
    let mut cluster = json!({
        "name": r.name,
        "arn": app.inner.eks.cluster_arn(&r.name),
        "createdAt": r.created,
        "version": r.version,
        "status": "ACTIVE",
        "platformVersion": "podiam.1",
        "identity": {"oidc": {"issuer": r.issuer.url()}},
        "tags": r.tags,
        "accessConfig": {"authenticationMode": "API"},
        "podiamIssuer": {
            "kind": match r.issuer { IssuerRecord::Hosted { .. } => "hosted", IssuerRecord::External { .. } => "external" },
        },
    });
    if let (Some(role), Some(map)) = (&r.role_arn, cluster.as_object_mut()) {
        map.insert("roleArn".to_owned(), json!(role));
    }
    json!({ "cluster": cluster })
}

fn association_json(app: &App, a: &AssociationEntry) -> Value {
    let r = &a.record;
    let mut value = json!({
        "clusterName": r.cluster,
        "namespace": r.namespace,
        "serviceAccount": r.service_account,
        "roleArn": r.role_arn,
        "associationArn": app.inner.eks.association_arn(&r.cluster, &r.id),
        "associationId": r.id,
        "tags": r.tags,
        "createdAt": r.created,
        "modifiedAt": r.modified,
        "disableSessionTags": r.disable_session_tags,
    });
    if let Some(map) = value.as_object_mut() {
        for (name, member) in [
            ("targetRoleArn", &r.target_role_arn),
            ("policy", &r.policy),
            ("externalId", &r.external_id),
        ] {
            if let Some(v) = member {
                map.insert(name.to_owned(), json!(v));
            }
        }
    }
    json!({ "association": value })
}

/// `clientRequestToken` (`CreateCluster`, `CreatePodIdentityAssociation`,
/// `UpdatePodIdentityAssociation`): EKS answers a retry with the first call's result. The AWS
/// CLI and SDKs send a fresh UUID when the caller gives none and keep it across their own
/// retries, so a retry whose first answer was lost succeeds instead of hitting
/// `ResourceInUseException`.
fn client_request_token(input: &Input<'_>) -> Result<Option<String>, WireError> {
    Ok(input.string("clientRequestToken")?.map(str::to_owned))
}

/// `POST /clusters`.
pub(crate) async fn create_cluster(State(app): State<App>, request: Request) -> Response {
    let call = Call::new(app, RestApi::Eks, "CreateCluster");
    let result = async {
        let input = call.begin(request).await?;
        let name = input.required("name")?.to_owned();
        let arn = call.app.inner.eks.cluster_arn(&name);
        let tags = input.string_map("tags")?;
        let mut keys = crate::query::request_tags(
            &tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>(),
        );
        keys.shrink_to_fit();
        input.ctx.authorize_with("eks:CreateCluster", &arn, keys)?;
        let issuer = issuer_choice(&input)?;
        authorize_issuer_keys(&input, &issuer)?;
        let created = call
            .app
            .inner
            .eks
            .create_cluster(NewCluster {
                name,
                role_arn: input.string("roleArn")?.map(str::to_owned),
                version: input.string("version")?.map(str::to_owned),
                tags,
                issuer,
                client_request_token: client_request_token(&input)?,
            })
            .await
            .map_err(|e| eks(&e))?;
        Ok(cluster_json(&call.app, &created))
    }
    .await;
    call.finish(result)
}

/// Only IAM decides which keys STS trusts for an issuer. A cluster that brings its own keys
/// for an issuer URL (an explicit hosted URL, whose tokens podiam then mints for whoever may
/// call `podiam:CreateServiceAccountToken`; an uploaded JWKS; a CA bundle to fetch the keys
/// with) decides what the IAM OIDC provider of that URL trusts, so the caller needs
/// `iam:UpdateOpenIDConnectProviderThumbprint` on that provider (the IAM action that governs
/// where a provider's keys may come from), whether the provider exists yet or not. A hosted
/// issuer at a fresh random URL, or an external one whose keys come from its own discovery
/// document, needs nothing more.
fn authorize_issuer_keys(input: &Input<'_>, issuer: &IssuerChoice) -> Result<(), WireError> {
    let url = match issuer {
        IssuerChoice::Hosted { url: Some(url) } => url,
        IssuerChoice::External { url, jwks, ca } if jwks.is_some() || ca.is_some() => url,
        _ => return Ok(()),
    };
    let canonical: podiam_types::IssuerUrl = url.parse().map_err(|e| {
        invalid(format!(
            "podiamIssuer.url must be http(s)://host[:port]/path without user, query, fragment or escapes: {e}"
        ))
    })?;
    let provider = input
        .ctx
        .app
        .inner
        .iam
        .state()
        .provider_arn(canonical.key());
    input
        .ctx
        .authorize("iam:UpdateOpenIDConnectProviderThumbprint", &provider)
}

/// podiam's `podiamIssuer` member of `CreateCluster` (`podiam cluster create`): which issuer.
fn issuer_choice(input: &Input<'_>) -> Result<IssuerChoice, WireError> {
    let Some(spec) = input.body.get("podiamIssuer") else {
        return Ok(IssuerChoice::Hosted { url: None });
    };
    let field = |name: &str| -> Result<Option<String>, WireError> {
        match spec.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("podiamIssuer.{name} must be a string"))),
        }
    };
    match field("kind")?.as_deref() {
        None | Some("hosted") => Ok(IssuerChoice::Hosted { url: field("url")? }),
        Some("external") => Ok(IssuerChoice::External {
            url: field("url")?.ok_or_else(|| {
                invalid("podiamIssuer.url is required for an external issuer".to_owned())
            })?,
            jwks: field("jwks")?,
            ca: field("ca")?,
        }),
        Some(other) => Err(invalid(format!(
            "podiamIssuer.kind {other:?} must be hosted or external"
        ))),
    }
}

/// `GET /clusters/{name}`.
pub(crate) async fn describe_cluster(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "DescribeCluster");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input
            .ctx
            .authorize("eks:DescribeCluster", &eks_service.cluster_arn(&name))?;
        let cluster = eks_service.describe_cluster(&name).map_err(|e| eks(&e))?;
        Ok(cluster_json(&call.app, &cluster))
    }
    .await;
    call.finish(result)
}

/// `GET /clusters`.
pub(crate) async fn list_clusters(State(app): State<App>, request: Request) -> Response {
    let call = Call::new(app, RestApi::Eks, "ListClusters");
    let result = async {
        let input = call.begin(request).await?;
        input.ctx.authorize("eks:ListClusters", "*")?;
        let max = input.max_results()?;
        let (names, next) = call
            .app
            .inner
            .eks
            .list_clusters(input.query("nextToken"), max);
        Ok(json!({ "clusters": names, "nextToken": next }))
    }
    .await;
    call.finish(result)
}

/// `DELETE /clusters/{name}`.
pub(crate) async fn delete_cluster(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "DeleteCluster");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input
            .ctx
            .authorize("eks:DeleteCluster", &eks_service.cluster_arn(&name))?;
        let deleted = eks_service
            .delete_cluster(&name)
            .await
            .map_err(|e| eks(&e))?;
        let mut value = cluster_json(&call.app, &deleted);
        if let Some(status) = value.pointer_mut("/cluster/status") {
            *status = json!("DELETING");
        }
        Ok(value)
    }
    .await;
    call.finish(result)
}

/// `POST /clusters/{name}/pod-identity-associations`.
pub(crate) async fn create_association(
    State(app): State<App>,
    Path(cluster): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "CreatePodIdentityAssociation");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        let tags = input.string_map("tags")?;
        let role_arn = input.required("roleArn")?.to_owned();
        let target = input.string("targetRoleArn")?.map(str::to_owned);
        let tag_list: Vec<(String, String)> =
            tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        input.ctx.authorize_with(
            "eks:CreatePodIdentityAssociation",
            &eks_service.cluster_arn(&cluster),
            crate::query::request_tags(&tag_list),
        )?;
        // As in AWS: handing a role to pods needs iam:PassRole on it.
        for role in std::iter::once(&role_arn).chain(target.as_ref()) {
            input.ctx.authorize("iam:PassRole", role)?;
        }
        let created = eks_service
            .create_association(NewAssociation {
                cluster: cluster.clone(),
                namespace: input.required("namespace")?.to_owned(),
                service_account: input.required("serviceAccount")?.to_owned(),
                role_arn,
                target_role_arn: target,
                disable_session_tags: input.boolean("disableSessionTags")?.unwrap_or(false),
                policy: input.string("policy")?.map(str::to_owned),
                tags,
                client_request_token: client_request_token(&input)?,
            })
            .await
            .map_err(|e| eks(&e))?;
        Ok(association_json(&call.app, &created))
    }
    .await;
    call.finish(result)
}

/// `GET /clusters/{name}/pod-identity-associations`.
pub(crate) async fn list_associations(
    State(app): State<App>,
    Path(cluster): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "ListPodIdentityAssociations");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input.ctx.authorize(
            "eks:ListPodIdentityAssociations",
            &eks_service.cluster_arn(&cluster),
        )?;
        let max = input.max_results()?;
        let (items, next) = eks_service
            .list_associations(
                &cluster,
                input.query("namespace"),
                input.query("serviceAccount"),
                input.query("nextToken"),
                max,
            )
            .map_err(|e| eks(&e))?;
        let summaries: Vec<Value> = items
            .iter()
            .map(|a| {
                let r = &a.record;
                json!({
                    "clusterName": r.cluster,
                    "namespace": r.namespace,
                    "serviceAccount": r.service_account,
                    "associationArn": eks_service.association_arn(&r.cluster, &r.id),
                    "associationId": r.id,
                })
            })
            .collect();
        Ok(json!({ "associations": summaries, "nextToken": next }))
    }
    .await;
    call.finish(result)
}

/// `GET /clusters/{name}/pod-identity-associations/{id}`.
pub(crate) async fn describe_association(
    State(app): State<App>,
    Path((cluster, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "DescribePodIdentityAssociation");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input.ctx.authorize(
            "eks:DescribePodIdentityAssociation",
            &eks_service.association_arn(&cluster, &id),
        )?;
        let found = eks_service
            .describe_association(&cluster, &id)
            .map_err(|e| eks(&e))?;
        Ok(association_json(&call.app, &found))
    }
    .await;
    call.finish(result)
}

/// `POST /clusters/{name}/pod-identity-associations/{id}`.
pub(crate) async fn update_association(
    State(app): State<App>,
    Path((cluster, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "UpdatePodIdentityAssociation");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input.ctx.authorize(
            "eks:UpdatePodIdentityAssociation",
            &eks_service.association_arn(&cluster, &id),
        )?;
        let update = AssociationUpdate {
            role_arn: input.string("roleArn")?.map(str::to_owned),
            target_role_arn: input.string("targetRoleArn")?.map(str::to_owned),
            disable_session_tags: input.boolean("disableSessionTags")?,
            policy: input.string("policy")?.map(str::to_owned),
            client_request_token: client_request_token(&input)?,
        };
        for role in [&update.role_arn, &update.target_role_arn]
            .into_iter()
            .flatten()
            .filter(|r| !r.is_empty())
        {
            input.ctx.authorize("iam:PassRole", role)?;
        }
        let updated = eks_service
            .update_association(&cluster, &id, update)
            .await
            .map_err(|e| eks(&e))?;
        Ok(association_json(&call.app, &updated))
    }
    .await;
    call.finish(result)
}

/// `DELETE /clusters/{name}/pod-identity-associations/{id}`.
pub(crate) async fn delete_association(
    State(app): State<App>,
    Path((cluster, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "DeletePodIdentityAssociation");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input.ctx.authorize(
            "eks:DeletePodIdentityAssociation",
            &eks_service.association_arn(&cluster, &id),
        )?;
        let deleted = eks_service
            .delete_association(&cluster, &id)
            .await
            .map_err(|e| eks(&e))?;
        Ok(association_json(&call.app, &deleted))
    }
    .await;
    call.finish(result)
}

/// `POST /clusters/{name}/podiam/service-account-token`: podiam's `kubectl create token` for a
/// hosted issuer (`podiam cluster token`), authorized as `podiam:CreateServiceAccountToken`.
pub(crate) async fn mint_token(
    State(app): State<App>,
    Path(cluster): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "CreateServiceAccountToken");
    let result = async {
        let input = call.begin(request).await?;
        let eks_service = &call.app.inner.eks;
        input.ctx.authorize(
            "podiam:CreateServiceAccountToken",
            &eks_service.cluster_arn(&cluster),
        )?;
        let audiences: Vec<String> = match input.body.get("audiences") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid("audiences must be strings".to_owned()))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(invalid("audiences is required".to_owned())),
        };
        let object = |name: &str, uid: &str| -> Result<Option<ObjectRef>, WireError> {
            Ok(input.string(name)?.map(|n| ObjectRef {
                name: n.to_owned(),
                uid: input
                    .string(uid)
                    .ok()
                    .flatten()
                    .map_or_else(|| derived_uid(&cluster, n), str::to_owned),
            }))
        };
        let namespace = input.required("namespace")?.to_owned();
        let service_account = input.required("serviceAccount")?.to_owned();
        let ttl = match input.body.get("ttl") {
            None | Some(Value::Null) => 3600,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| invalid("ttl must be a number of seconds".to_owned()))?,
        };
        let request = TokenRequest {
            namespace: namespace.clone(),
            service_account: ObjectRef {
                uid: input.string("serviceAccountUid")?.map_or_else(
                    || derived_uid(&cluster, &format!("{namespace}/{service_account}")),
                    str::to_owned,
                ),
                name: service_account,
            },
            audiences,
            pod: object("podName", "podUid")?,
            node: object("nodeName", "nodeUid")?,
            lifetime: Duration::from_secs(ttl),
            warn_after: None,
        };
        let token = eks_service
            .mint_token(&cluster, &request)
            .map_err(|e| eks(&e))?;
        let expiration = call.app.now().unix_timestamp() + i64::try_from(ttl).unwrap_or(0);
        Ok(json!({ "token": token, "expiration": expiration }))
    }
    .await;
    call.finish(result)
}

/// `GET /clusters/{name}/podiam/jwks`: the keys that verify the cluster's service-account
/// tokens, for node agents that check tokens locally (authorized as `eks:DescribeCluster`).
pub(crate) async fn cluster_keys(
    State(app): State<App>,
    Path(cluster): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Eks, "GetClusterKeys");
    let result = async {
        let input = call.begin(request).await?;
        let inner = &call.app.inner;
        input
            .ctx
            .authorize("eks:DescribeCluster", &inner.eks.cluster_arn(&cluster))?;
        let entry = inner.eks.describe_cluster(&cluster).map_err(|e| eks(&e))?;
        let issuer = entry.record.issuer.url().to_owned();
        let keys = inner.issuers.keys(&issuer, false).await.map_err(|e| {
            WireError::new(
                "ServiceUnavailableException",
                503,
                format!("The keys of issuer {issuer} are not available: {e}"),
            )
        })?;
        Ok(json!({ "issuer": issuer, "jwks": keys.to_jwks() }))
    }
    .await;
    call.finish(result)
}

/// A stable uid for an object the caller did not give one for (a UUID-shaped hash).
fn derived_uid(cluster: &str, name: &str) -> String {
    let digest = podiam_crypto::sha256(format!("{cluster}/{name}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

/// The hosted issuer served at this request's path, if any.
fn hosted_issuer(app: &App, id: &str) -> Option<Arc<ClusterEntry>> {
    let url = format!("{}/id/{id}", app.inner.eks.config().issuer_base);
    app.inner
        .eks
        .state()
        .issuer_cluster(&url)
        .filter(|c| matches!(c.record.issuer, IssuerRecord::Hosted { .. }))
}

/// `GET /oidc/id/{id}/.well-known/openid-configuration` (unsigned, as kube-apiserver serves).
pub(crate) async fn discovery(State(app): State<App>, Path(id): Path<String>) -> Response {
    match hosted_issuer(&app, &id) {
        Some(cluster) => {
            let issuer = cluster.record.issuer.url();
            let algorithms = cluster
                .keys
                .as_ref()
                .map(podiam_oidc::KeySet::algorithms)
                .unwrap_or_default();
            let document = DiscoveryDocument::new(issuer, &default_jwks_uri(issuer), &algorithms);
            (
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_string(&document).unwrap_or_default(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such issuer\n").into_response(),
    }
}

/// `GET /oidc/id/{id}/openid/v1/jwks`.
pub(crate) async fn jwks(State(app): State<App>, Path(id): Path<String>) -> Response {
    match hosted_issuer(&app, &id) {
        Some(cluster) => {
            let set = cluster
                .keys
                .as_ref()
                .map(podiam_oidc::KeySet::to_jwks)
                .unwrap_or_default();
            (
                [(header::CONTENT_TYPE, JwkSet::MEDIA_TYPE)],
                serde_json::to_string(&set).unwrap_or_default(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such issuer\n").into_response(),
    }
}
