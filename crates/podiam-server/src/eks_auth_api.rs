//! EKS Auth `AssumeRoleForPodIdentity` (rest-json, signing name `eks-auth`): what the node
//! agent calls with a pod's token.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use podiam_eks::{POD_IDENTITY_AUDIENCE, PodIdentityRequest};
use podiam_wire::{Api, eks_error};
use serde_json::json;

use crate::app::App;
use crate::audit::{self, AuditEvent};
use crate::rest::{Call, RestApi, invalid};

/// `POST /clusters/{name}/assume-role-for-pod-identity`.
pub(crate) async fn assume_role_for_pod_identity(
    State(app): State<App>,
    Path(cluster): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::EksAuth, "AssumeRoleForPodIdentity");
    let result = async {
        let input = call.begin(request).await?;
        let inner = &call.app.inner;
        let cluster_arn = inner.eks.cluster_arn(&cluster);
        input
            .ctx
            .authorize("eks-auth:AssumeRoleForPodIdentity", &cluster_arn)?;
        let token = input.required("token")?;
        if token.len() > 16_384 {
            return Err(invalid("token is longer than 16384 characters".to_owned()));
        }
        let caller = input.ctx.caller()?;
        let principal = caller.arn(&inner.iam.state());
        let ask = PodIdentityRequest {
            cluster: cluster.clone(),
            token: token.to_owned(),
            node_name: input.string("eksNodeName")?.map(str::to_owned),
        };
        let outcome = inner
            .eks
            .assume_role_for_pod_identity(
                &inner.sts,
                inner.issuers.as_ref(),
                caller,
                &ask,
                &input.ctx.facts,
            )
            .await;
        let source_ip = input.ctx.facts.source_ip.as_deref().unwrap_or_default();
        match outcome {
            Ok(grant) => {
                let credentials = &grant.credentials;
                inner.metrics.credential("AssumeRoleForPodIdentity", "issued");
                audit::record(&call.app, &AuditEvent {
                    event: "credential_issued",
                    operation: "AssumeRoleForPodIdentity",
                    request_id: &call.request_id,
                    role_arn: credentials.role_arn(),
                    principal: &format!(
                        "system:serviceaccount:{}:{} via {principal}",
                        grant.namespace, grant.service_account
                    ),
                    source_ip,
                    session_name: credentials.session_name(),
                    access_key_id: Some(credentials.access_key_id()),
                    expiration: Some(&podiam_wire::iso8601(credentials.expiration())),
                    code: None,
                    message: None,
                    reason: None,
                });
                Ok(json!({
                    "subject": {"namespace": grant.namespace, "serviceAccount": grant.service_account},
                    "audience": POD_IDENTITY_AUDIENCE,
                    "podIdentityAssociation": {
                        "associationArn": grant.association_arn,
                        "associationId": grant.association_id,
                    },
                    "assumedRoleUser": {
                        "arn": credentials.assumed_role_arn(),
                        "assumeRoleId": credentials.assumed_role_id(),
                    },
                    "credentials": {
                        "sessionToken": credentials.session_token(),
                        "secretAccessKey": credentials.secret_access_key(),
                        "accessKeyId": credentials.access_key_id(),
                        "expiration": credentials.expiration().unix_timestamp(),
                    },
                }))
            }
            Err(e) => {
                let wire = eks_error(&e, Api::EksAuth);
                inner.metrics.credential("AssumeRoleForPodIdentity", "denied");
                audit::record(&call.app, &AuditEvent {
                    event: "credential_denied",
                    operation: "AssumeRoleForPodIdentity",
                    request_id: &call.request_id,
                    role_arn: "",
                    principal: &format!("pod token for cluster {cluster} via {principal}"),
                    source_ip,
                    session_name: "",
                    access_key_id: None,
                    expiration: None,
                    code: Some(wire.code),
                    message: Some(&wire.message),
                    reason: Some(&e.reason()),
                });
                Err(wire)
            }
        }
    }
    .await;
    call.finish(result)
}
