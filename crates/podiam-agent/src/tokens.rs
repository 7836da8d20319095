//! The checks on a pod's token before anything else happens: the reference agent's basic ones
//! (present, parseable, in its time window), then the signature against the cluster's keys, the
//! audience and the `kubernetes.io` claims. A token verified once is remembered (by its hash)
//! until it expires, so a cache hit costs a hash, not an RSA verification.
//!
//! The keys come from the server (`GET /clusters/{name}/podiam/jwks`, authorized as
//! `eks:DescribeCluster`). EKS Auth is the authority on tokens: when the keys cannot be had
//! (the agent's credentials lack that permission, or the server cannot be reached), a token
//! that passes the basic checks is [`Checked::verified`] `false`, and the agent sends it to
//! `AssumeRoleForPodIdentity`, which verifies it, before serving anything cached for it. The
//! missing permission is logged once; the keys are asked for again every five minutes (every
//! ten seconds after other failures).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// After the server refused the keys (a missing `eks:DescribeCluster`), they are asked for again
/// this long later: a permission is not granted every second, and each ask is a request.
const KEYS_RETRY_DENIED: Duration = Duration::from_secs(300);

/// After another failure to fetch the keys (the server unreachable), they are asked for again
/// this long later; requests meanwhile go to EKS Auth without waiting for a fetch.
const KEYS_RETRY: Duration = Duration::from_secs(10);

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
    /// The node the token is bound to, if any: credentials fetched for a token bound to one
    /// node are never served for a token that names another (EKS Auth refuses that one).
    pub node_name: Option<String>,
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

/// A token that passed the checks: the pod it speaks for, and how far it was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The pod (what its credentials are cached under).
    pub key: Arc<PodKey>,
    /// The token's `exp`.
    pub exp: i64,
    /// True when the signature was verified with the cluster's keys, or EKS Auth accepted this
    /// very token before. False when the keys are not available and only the basic claims
    /// were checked: the claims may be forged, so nothing may be served for the token before
    /// EKS Auth has verified it (see [`TokenChecker::vouch`]).
    pub verified: bool,
}

#[derive(Debug)]
struct Keys {
    issuer: String,
    keys: KeySet,
    fetched: OffsetDateTime,
}

/// One token's queue for EKS Auth: the lock whose holder asks, and how many requests hold it or
/// wait for it.
type Queue = (Arc<tokio::sync::Mutex<()>>, usize);

/// The last failure to fetch the keys.
#[derive(Debug, Clone, Copy)]
struct KeysFailure {
    at: OffsetDateTime,
    /// The server refused (a missing permission), rather than failed.
    denied: bool,
}

/// Checks tokens against the cluster's keys, fetched from the server.
#[derive(Debug)]
pub struct TokenChecker {
    keys: RwLock<Option<Arc<Keys>>>,
    fetching: tokio::sync::Mutex<()>,
    memo: Mutex<HashMap<[u8; 32], Verified>>,
    /// Set while the keys cannot be fetched.
    failure: Mutex<Option<KeysFailure>>,
    /// The missing permission was logged (once, until the keys are fetched again).
    warned_denied: AtomicBool,
    /// Tokens on their way to EKS Auth for verification, by hash, with the number of requests
    /// holding or waiting for the turn: requests with the same token wait for the first one's
    /// answer instead of asking too.
    pending: Mutex<HashMap<[u8; 32], Queue>>,
}

/// A request's turn to have EKS Auth verify its token (see [`TokenChecker::server_turn`]).
#[derive(Debug)]
pub struct ServerTurn<'a> {
    checker: &'a TokenChecker,
    digest: [u8; 32],
    /// None while waiting (a request that goes away while waiting still leaves the queue).
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for ServerTurn<'_> {
    fn drop(&mut self) {
        self.turn.take();
        let mut pending = self
            .checker
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, users)) = pending.get_mut(&self.digest) {
            *users = users.saturating_sub(1);
            if *users == 0 {
                pending.remove(&self.digest);
            }
        }
    }
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
        node_name: k8s.node.as_ref().map(|node| node.name.clone()),
    }))
}

impl TokenChecker {
    /// A checker with no keys yet.
    pub fn new() -> Self {
        Self {
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            memo: Mutex::new(HashMap::new()),
            failure: Mutex::new(None),
            warned_denied: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// True when the cluster's keys are loaded (tokens are verified locally).
    pub fn has_keys(&self) -> bool {
        self.current().is_some()
    }

    fn lock_failure(&self) -> std::sync::MutexGuard<'_, Option<KeysFailure>> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when the last fetch of the keys failed.
    fn keys_failing(&self) -> bool {
        self.lock_failure().is_some()
    }

    fn remember(&self, digest: [u8; 32], key: Arc<PodKey>, exp: i64, now: OffsetDateTime) {
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
        memo.insert(digest, (key, exp));
    }

    fn remembered(&self, digest: &[u8; 32], now: OffsetDateTime) -> Option<Verified> {
        self.memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(digest)
            .cloned()
            .filter(|(_, exp)| now.unix_timestamp() < exp.saturating_add(LEEWAY))
    }

    /// EKS Auth accepted `token` (which was `checked` without the keys): its claims are
    /// genuine, and it counts as verified until it expires.
    pub fn vouch(&self, token: &str, checked: &Checked, now: OffsetDateTime) {
        let digest = podiam_crypto::sha256(token.as_bytes());
        self.remember(digest, Arc::clone(&checked.key), checked.exp, now);
    }

    /// Waits for this token's turn to go to EKS Auth: one request at a time per token, so a
    /// burst of requests with one unverified token makes one upstream call (the others find it
    /// verified when their turn comes, see [`Self::is_vouched`]).
    pub async fn server_turn(&self, token: &str) -> ServerTurn<'_> {
        let digest = podiam_crypto::sha256(token.as_bytes());
        let lock = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (lock, users) = pending.entry(digest).or_default();
            *users += 1;
            Arc::clone(lock)
        };
        let mut turn = ServerTurn {
            checker: self,
            digest,
            turn: None,
        };
        turn.turn = Some(lock.lock_owned().await);
        turn
    }

    /// Tokens waiting for or holding a turn (for tests: none are left behind).
    pub fn pending_turns(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True when `token` was verified (by signature, or by EKS Auth) and has not expired.
    pub fn is_vouched(&self, token: &str, now: OffsetDateTime) -> bool {
        self.remembered(&podiam_crypto::sha256(token.as_bytes()), now)
            .is_some()
    }

    fn current(&self) -> Option<Arc<Keys>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the keys (unless another request just did, fetched within the rate limit, or a
    /// failed fetch is not due for a retry yet).
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
        if let Some(failure) = *self.lock_failure() {
            let wait = if failure.denied {
                KEYS_RETRY_DENIED
            } else {
                KEYS_RETRY
            };
            if now < failure.at + wait {
                return current;
            }
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
                if self.lock_failure().take().is_some() {
                    tracing::info!(
                        "fetched the cluster's keys: pods' tokens are checked locally again"
                    );
                }
                self.warned_denied.store(false, Ordering::Relaxed);
                Some(fresh)
            }
            Err(e) => {
                let denied = e.is_denied();
                *self.lock_failure() = Some(KeysFailure { at: now, denied });
                if !denied {
                    tracing::warn!(
                        code = e.code,
                        error = e.message,
                        "cannot fetch the cluster's keys; EKS Auth alone checks pods' tokens until they are fetched (retried in {} s)",
                        KEYS_RETRY.as_secs()
                    );
                } else if !self.warned_denied.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        code = e.code,
                        error = e.message,
                        "the agent's credentials lack eks:DescribeCluster on the cluster, so it cannot fetch the cluster's token keys: it still serves credentials, but EKS Auth alone verifies pods' tokens, so every new token costs an AssumeRoleForPodIdentity call and forged tokens reach the server instead of being refused here. Allow eks:DescribeCluster to the agent's role to verify tokens locally (the keys are asked for again every {} s; this is logged once)",
                        KEYS_RETRY_DENIED.as_secs()
                    );
                }
                current
            }
        }
    }

    /// Loads the keys if there are none yet (at start); false when they cannot be had (the
    /// reason is logged; tokens then go to EKS Auth unverified, see the module's documentation).
    pub async fn prime(&self, upstream: &dyn Upstream, now: OffsetDateTime) -> bool {
        if self.current().is_some() {
            return true;
        }
        self.refresh(upstream, now, None).await.is_some()
    }

    /// Checks `token` at `now`: the pod it speaks for, the token's `exp` and whether its
    /// signature could be verified, or why it is refused.
    pub async fn check(
        &self,
        token: &str,
        upstream: &dyn Upstream,
        now: OffsetDateTime,
    ) -> Result<Checked, Refusal> {
        if token.is_empty() {
            return Err(Refusal::bad(
                "Service account token cannot be empty".to_owned(),
            ));
        }
        let digest = podiam_crypto::sha256(token.as_bytes());
        if let Some((key, exp)) = self.remembered(&digest, now) {
            return Ok(Checked {
                key,
                exp,
                verified: true,
            });
        }
        let claims = decode_unverified(token)
            .map_err(|e| Refusal::bad(format!("Service account token cannot be parsed: {e}")))?;
        check_times(&claims, now, LEEWAY).map_err(|e| {
            Refusal::bad(format!(
                "Service account token failed basic claim validations: {e}"
            ))
        })?;
        // Without the keys, the basic checks are all the agent can do: EKS Auth verifies.
        let unverified = |claims: &podiam_oidc::Claims| -> Result<Checked, Refusal> {
            Ok(Checked {
                key: pod_key(claims)?,
                exp: claims.exp,
                verified: false,
            })
        };
        let current = match self.current() {
            Some(keys) => Some(keys),
            None => self.refresh(upstream, now, None).await,
        };
        let Some(mut keys) = current else {
            return unverified(&claims);
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
                        // The keys cannot be fetched now: the key may be new, let EKS Auth say.
                        _ if self.keys_failing() => return unverified(&claims),
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
        self.remember(digest, Arc::clone(&key), verified.claims.exp, now);
        Ok(Checked {
            key,
            exp: verified.claims.exp,
            verified: true,
        })
    }
}
