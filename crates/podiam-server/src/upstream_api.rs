//! `GET /podiam/upstream/role?roleArn=ARN` (signing name `podiam`): a role in an upstream
//! account as AWS holds it, read with podiam's own AWS identity, for `podiam explain`. The
//! caller's own permissions must allow `iam:GetRole` on the role (as for a role in another
//! account; the role's side is AWS's).

use axum::extract::{Request, State};
use axum::response::Response;
use podiam_wire::{Api, WireError, access_error, upstream_read_error};
use serde_json::json;

use crate::app::App;
use crate::rest::{Call, RestApi, invalid};

pub(crate) async fn upstream_role(State(app): State<App>, request: Request) -> Response {
    let call = Call::new(app, RestApi::Podiam, "GetUpstreamRole");
    let result = async {
        let input = call.begin(request).await?;
        let role_arn = input
            .query
            .iter()
            .find(|(k, _)| k == "roleArn")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| invalid("roleArn is required".to_owned()))?;
        let inner = &call.app.inner;
        // The role is AWS's: the caller's own permissions decide, as across accounts.
        inner
            .iam
            .state()
            .authorize_own_side(input.ctx.caller()?, "iam:GetRole", &role_arn, &input.ctx.facts)
            .map_err(|e| access_error(&e, Api::Eks))?;
        let (Some(broker), Some(upstream)) = (&inner.upstream, inner.eks.upstream()) else {
            return Err(not_upstream(&role_arn));
        };
        if !upstream.accounts.holds(&role_arn) {
            return Err(not_upstream(&role_arn));
        }
        let role = podiam_eks::UpstreamRoles::role(broker.as_ref(), &role_arn)
            .await
            .map_err(|e| upstream_read_error(&role_arn, &e))?;
        Ok(json!({
            "principal": broker.principal(),
            "role": {
                "arn": role.arn,
                "id": role.id,
                "trust": role.trust,
                "policies": role.policies.iter().map(|(name, document)| json!({"name": name, "document": document})).collect::<Vec<_>>(),
                "boundary": role.boundary.as_ref().map(|(name, document)| json!({"name": name, "document": document})),
                "tags": role.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            },
        }))
    }
    .await;
    call.finish(result)
}

fn not_upstream(role_arn: &str) -> WireError {
    WireError::new(
        "ResourceNotFoundException",
        404,
        format!("{role_arn} is not in an upstream account of this server (--aws-upstream-account)"),
    )
}
