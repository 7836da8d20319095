//! Key rotation, on podiam's own API (signing name `podiam`): the session keyring
//! (`POST /podiam/keys/session/rotate`) and a hosted issuer's signing key
//! (`POST /clusters/{name}/podiam/keys/rotate`). Both need `podiam:RotateKeys`; every replica
//! follows the change through the store, with no restart and no refused request.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use podiam_wire::{Api, WireError, eks_error};
use serde_json::json;

use crate::app::App;
use crate::rest::{Call, RestApi};
use crate::session_keys::KeyringError;

/// `POST /podiam/keys/session/rotate`.
pub(crate) async fn rotate_session(State(app): State<App>, request: Request) -> Response {
    let call = Call::new(app, RestApi::Podiam, "RotateSessionKey");
    let result = async {
        let input = call.begin(request).await?;
        input.ctx.authorize("podiam:RotateKeys", "*")?;
        let rotation = call
            .app
            .inner
            .session_keys
            .rotate()
            .await
            .map_err(|e| match e {
                KeyringError::Conflict => WireError::new(
                    "ResourceInUseException",
                    409,
                    "Another rotation happened at the same time; try again.",
                ),
                other => {
                    tracing::error!(error = %other, "the session key rotation failed");
                    WireError::new(
                        "ServerException",
                        500,
                        "The session key could not be rotated.",
                    )
                }
            })?;
        tracing::info!(
            current = rotation.current,
            previous = rotation.previous,
            "rotated the session key"
        );
        Ok(json!({
            "kind": "session",
            "currentKeyId": rotation.current.to_string(),
            "previousKeyId": rotation.previous.to_string(),
            "previousRetiresAt": rotation.retire_at,
        }))
    }
    .await;
    call.finish(result)
}

/// `POST /clusters/{name}/podiam/keys/rotate`.
pub(crate) async fn rotate_issuer(
    State(app): State<App>,
    Path(cluster): Path<String>,
    request: Request,
) -> Response {
    let call = Call::new(app, RestApi::Podiam, "RotateIssuerKey");
    let result = async {
        let input = call.begin(request).await?;
        let eks = &call.app.inner.eks;
        input
            .ctx
            .authorize("podiam:RotateKeys", &eks.cluster_arn(&cluster))?;
        let rotation = eks
            .rotate_issuer_key(&cluster)
            .await
            .map_err(|e| eks_error(&e, Api::Eks))?;
        tracing::info!(%cluster, current = %rotation.current, previous = %rotation.previous, "rotated the issuer key");
        Ok(json!({
            "kind": "issuer",
            "cluster": cluster,
            "currentKeyId": rotation.current,
            "previousKeyId": rotation.previous,
            "previousRetiresAt": rotation.retire_at,
        }))
    }
    .await;
    call.finish(result)
}

/// Drops retired session and issuer keys every minute, for as long as the server runs.
pub(crate) async fn retire_forever(app: App) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        match app.inner.session_keys.retire_expired().await {
            Ok(ids) if !ids.is_empty() => tracing::info!(?ids, "retired session keys"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot retire old session keys; retrying"),
        }
        for cluster in app.inner.eks.hosted_clusters() {
            match app.inner.eks.retire_issuer_keys(&cluster).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(%cluster, n, "retired issuer keys"),
                Err(e) => tracing::warn!(%cluster, error = %e, "cannot retire old issuer keys"),
            }
        }
    }
}
