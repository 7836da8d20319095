//! `clientRequestToken`: a retried EKS write whose first answer was lost gets the first result.
//! The token and a fingerprint of the request are stored with what the call made, and a claim
//! key is written in the same transaction (see docs/design.md, "Retried writes").

use std::sync::Arc;

use podiam_store::{Compare, Op};

use crate::EksError;
use crate::model::{AssociationRecord, ClientRequest, ClusterRecord, keys};
use crate::service::Eks;
use crate::state::{AssociationEntry, ClusterEntry};
use crate::validate;

/// A request's `clientRequestToken` with the fingerprint of `operation` and its `parameters`
/// (canonical JSON: the same parameters always give the same text), or `None` without a token.
pub(crate) fn client_request(
    token: Option<&str>,
    operation: &str,
    parameters: impl FnOnce() -> serde_json::Value,
) -> Result<Option<ClientRequest>, EksError> {
    let Some(token) = token else {
        return Ok(None);
    };
    validate::client_request_token(token)?;
    let text =
        serde_json::json!({ "operation": operation, "parameters": parameters() }).to_string();
    Ok(Some(ClientRequest {
        token: token.to_owned(),
        fingerprint: podiam_crypto::sha256_hex(text.as_bytes()),
    }))
}

/// A token reused for a request with other parameters. The EKS model has no dedicated error
/// (no `IdempotentParameterMismatchException`), so this is `InvalidRequestException`.
pub(crate) fn token_reused(token: &str) -> EksError {
    EksError::InvalidRequest(format!(
        "The client request token {token} was already used for a request with different parameters. A retry must repeat the request exactly; a new request needs a new token."
    ))
}

/// Whether a stored request answers `request`: `Ok(true)` for a retry (same token, same
/// parameters), `Ok(false)` when the stored one has another token, and the reuse error for the
/// same token with other parameters.
pub(crate) fn is_retry(
    stored: Option<&ClientRequest>,
    request: &ClientRequest,
) -> Result<bool, EksError> {
    match stored {
        Some(s) if s.token == request.token && s.fingerprint == request.fingerprint => Ok(true),
        Some(s) if s.token == request.token => Err(token_reused(&request.token)),
        _ => Ok(false),
    }
}

impl Eks {
    /// The cluster an earlier `CreateCluster` with `request`'s token created: `Some` for a
    /// retry, `InvalidRequest` for the token reused with other parameters, `None` when the
    /// token is new (a claim left by a cluster that is gone is dropped).
    pub(crate) async fn replayed_cluster(
        &self,
        request: &ClientRequest,
    ) -> Result<Option<Arc<ClusterEntry>>, EksError> {
        let claim_key = keys::cluster_token(&request.token);
        let Some(claim) = self.replica.get(&claim_key).await? else {
            return Ok(None);
        };
        let name = String::from_utf8_lossy(&claim.value).into_owned();
        let key = keys::cluster(&name);
        let record = match self.replica.get(&key).await? {
            Some(entry) => Some(
                serde_json::from_slice::<ClusterRecord>(&entry.value)
                    .map_err(|e| EksError::Crypto(format!("{key}: {e}")))?,
            ),
            None => None,
        };
        match record {
            Some(record) if is_retry(record.create_request.as_ref(), request)? => {
                let state = self.state();
                Ok(Some(
                    state
                        .cluster(&name)
                        .filter(|c| c.record == record)
                        .unwrap_or_else(|| Arc::new(state.open_cluster(record))),
                ))
            }
            _ => {
                self.drop_claim(&claim_key, claim.mod_revision).await?;
                Ok(None)
            }
        }
    }

    /// Deletes a token claim whose object is gone, unless it changed meanwhile.
    pub(crate) async fn drop_claim(&self, key: &str, revision: u64) -> Result<(), EksError> {
        self.replica
            .commit(
                &[Compare::ModRevision(key.to_owned(), revision)],
                &[Op::Delete(key.to_owned())],
            )
            .await?;
        Ok(())
    }

    /// The association an earlier `CreatePodIdentityAssociation` with `request`'s token
    /// created in `cluster`: `Some` for a retry, `InvalidRequest` for the token reused with
    /// other parameters, `None` when the token is new (a claim left by an association that is
    /// gone is dropped).
    pub(crate) async fn replayed_association(
        &self,
        cluster: &str,
        request: &ClientRequest,
    ) -> Result<Option<Arc<AssociationEntry>>, EksError> {
        let claim_key = keys::association_token(cluster, &request.token);
        let Some(claim) = self.replica.get(&claim_key).await? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&claim.value).into_owned();
        let key = keys::association(cluster, &id);
        let record = match self.replica.get(&key).await? {
            Some(entry) => Some(
                serde_json::from_slice::<AssociationRecord>(&entry.value)
                    .map_err(|e| EksError::Crypto(format!("{key}: {e}")))?,
            ),
            None => None,
        };
        match record {
            Some(record) if is_retry(record.create_request.as_ref(), request)? => {
                Ok(Some(self.association_entry(record)))
            }
            _ => {
                self.drop_claim(&claim_key, claim.mod_revision).await?;
                Ok(None)
            }
        }
    }
}
