//! The checks on a pod's token before anything else happens: the reference agent's basic ones
//! (present, parseable, in its time window), then the signature against the cluster's keys, the
//! audience and the `kubernetes.io` claims. A token verified once is remembered (by its hash)
//! until it expires, so a cache hit costs a hash, not an RSA verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use podiam_oidc::{KeySet, TokenError, Verifier, check_times, decode_unverified};
use time::OffsetDateTime;

use crate::Upstream;

/// The pod identity audience.
const AUDIENCE: &str = "pods.eks.amazonaws.com";

/// Clock skew allowed on `exp`, `nbf`, `iat`.
const LEEWAY: i64 = 60;

/// Verified tokens remembered at most.
const MEMO_LIMIT: usize = 8192;

/// The cluster's keys are fetched again on an unknown key id at most this often; a request that
/// meets an unknown key id sooner waits for the next fetch (a key just rotated in must not be
/// refused, and a flood of made-up key ids must not become a flood of fetches).
const KEYS_REFETCH: Duration = Duration::from_secs(1);

/// The pod a token speaks for: what its credentials are cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The pod's uid.
    pub pod_uid: String,
    /// The pod's name.
    pub pod_name: String,
}

/// A refused token: the status and the plain-text body the SDK gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub message: String,
}

impl Refusal {
    fn bad(message: String) -> Self {
        Self {
            status: 400,
            message,
        }
    }
}

/// A verified token, by its hash: the pod (shared with the cache) and the token's `exp`.
type Verified = (Arc<PodKey>, i64);

#[derive(Debug)]
struct Keys {
    issuer: String,
    keys: KeySet,
    fetched: OffsetDateTime,
}

/// Checks tokens against the cluster's keys, fetched from the server.
#[derive(Debug)]
pub struct TokenChecker {
    keys: RwLock<Option<Arc<Keys>>>,
    fetching: tokio::sync::Mutex<()>,
    memo: Mutex<HashMap<[u8; 32], Verified>>,
}

impl Default for TokenChecker {
    fn default() -> Self {
        Self::new()
    }
}

fn pod_key(claims: &podiam_oidc::Claims) -> Result<Arc<PodKey>, Refusal> {
    let missing = |what: &str| {
        Refusal::bad(format!(
            "Service account token failed verification: it has no {what} claim"
        ))
    };
    let k8s = claims
        .kubernetes
        .as_ref()
        .ok_or_else(|| missing("kubernetes.io"))?;
    let pod = k8s
        .pod
        .as_ref()
        .ok_or_else(|| missing("kubernetes.io.pod"))?;
    if k8s.namespace.is_empty() || k8s.serviceaccount.name.is_empty() || pod.uid.is_empty() {
        return Err(missing("namespace, service account or pod uid"));
    }
    Ok(Arc::new(PodKey {
        namespace: k8s.namespace.clone(),
        service_account: k8s.serviceaccount.name.clone(),
        pod_uid: pod.uid.clone(),
        pod_name: pod.name.clone(),
    }))
}

impl TokenChecker {
    /// A checker with no keys yet.
    pub fn new() -> Self {
        Self {
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            memo: Mutex::new(HashMap::new()),
        }
    }

    fn current(&self) -> Option<Arc<Keys>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the keys (unless another request just did, or fetched within the rate limit).
    async fn refresh(
        &self,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
        seen: Option<&Arc<Keys>>,
    ) -> Option<Arc<Keys>> {
        let _one = self.fetching.lock().await;
        let current = self.current();
        let changed = match (&current, seen) {
            (Some(c), Some(s)) => !Arc::ptr_eq(c, s),
            (Some(_), None) => true,
            _ => false,
        };
        if changed {
            return current;
        }
        if let Some(c) = &current {
            let since = now - c.fetched;
            if since < KEYS_REFETCH {
                // Wait out the rest of the interval (at most a second), holding the lock, so
                // that requests queued behind see the fresh keys instead of fetching again.
                let rest = (KEYS_REFETCH - since).unsigned_abs();
                tokio::time::sleep(rest.min(Duration::from_secs(1))).await;
            }
        }
        match upstream.cluster_keys().await {
            Ok((issuer, keys)) => {
                let fresh = Arc::new(Keys {
                    issuer,
                    keys,
                    fetched: now,
                });
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&fresh));
                Some(fresh)
            }
            Err(e) => {
                tracing::warn!(
                    code = e.code,
                    message = e.message,
                    "cannot fetch the cluster's keys"
                );
                current
            }
        }
    }

    /// Loads the keys if there are none yet (at start).
    pub async fn prime(&self, upstream: &dyn Upstream, now: OffsetDateTime) -> bool {
        if self.current().is_some() {
            return true;
        }
        self.refresh(upstream, now, None).await.is_some()
    }

    /// Checks `token` at `now`: the pod it speaks for and the token's `exp`, or why it is
    /// refused.
    pub async fn check(
        &self,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<(Arc<PodKey>, i64), Refusal> {
        if token.is_empty() {
            return Err(Refusal::bad(
                "Service account token cannot be empty".to_owned(),
            ));
        }
        let digest = podiam_crypto::sha256(token.as_bytes());
        if let Some((key, exp)) = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .cloned()
            && now.unix_timestamp() < exp.saturating_add(LEEWAY)
        {
            return Ok((key, exp));
        }
        let claims = decode_unverified(token)
            .map_err(|e| Refusal::bad(format!("Service account token cannot be parsed: {e}")))?;
        check_times(&claims, now, LEEWAY).map_err(|e| {
            Refusal::bad(format!(
                "Service account token failed basic claim validations: {e}"
            ))
        })?;
        let mut keys = match self.current() {
            Some(keys) => keys,
            None => self.refresh(upstream, now, None).await.ok_or(Refusal {
                status: 500,
                message: "The cluster's token keys are not available yet: the podiam server cannot be reached".to_owned(),
            })?,
        };
        // An unknown key id gets one fresh look at the cluster's keys (a key just rotated in).
        let mut looked_again = false;
        let verified = loop {
            let verifier = Verifier::new(&keys.issuer, &[AUDIENCE]);
            match verifier.verify(token, &keys.keys, now) {
                Err(TokenError::UnknownKey(kid)) => {
                    let fresh = if looked_again {
                        None
                    } else {
                        looked_again = true;
                        self.refresh(upstream, now, Some(&keys)).await
                    };
                    match fresh {
                        Some(fresh) if !Arc::ptr_eq(&fresh, &keys) => keys = fresh,
                        _ => {
                            return Err(Refusal::bad(format!(
                                "Service account token failed verification: {}",
                                TokenError::UnknownKey(kid)
                            )));
                        }
                    }
                }
                Err(e) => {
                    return Err(Refusal::bad(format!(
                        "Service account token failed verification: {e}"
                    )));
                }
                Ok(verified) => break verified,
            }
        };
        let key = pod_key(&verified.claims)?;
        let mut memo = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if memo.len() >= MEMO_LIMIT {
            let now = now.unix_timestamp();
            memo.retain(|_, (_, exp)| now < *exp);
            if memo.len() >= MEMO_LIMIT {
                memo.clear();
            }
        }
        memo.insert(digest, (Arc::clone(&key), verified.claims.exp));
        Ok((key, verified.claims.exp))
    }
}
