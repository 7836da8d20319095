//! The decision a service proxy asks for: is this request signed by a known caller, and do the
//! caller's policies allow every action it needs? Over IAM's replica and the session keyring
//! only, so it runs wherever those replicas are: in the server (`POST /podiam/authorize`) and
//! in `podiam gateway` itself, which follows the same store read-only and decides locally.
//!
//! The signature is verified from the SHA-256 of the body (the body is not needed), with the
//! caller's secret (a long-term key's, or the one sealed in a session token); the policies are
//! evaluated as for the server's own APIs (identity, boundary, session; principal tags from
//! session tags).

use std::sync::Arc;

use axum::http::HeaderMap;
use podiam_crypto::{Keyring, Rng};
use podiam_iam::{Caller, Iam, IamConfig, RequestFacts};
use podiam_policy::ContextValue;
use podiam_sigv4::{SignedRequest, Verifier};
use podiam_store::Store;
use podiam_sts::SharedKeyring;
use podiam_types::Clock;
use podiam_wire::{Api, WireError, access_error, sigv4_error};

use crate::auth::Lookup;
use crate::bootstrap::BootError;
use crate::session_keys::SessionKeys;

/// What a proxy asks about one request it received.
#[derive(Debug, Clone)]
pub struct AuthorizeAsk<'a> {
    /// The signing name of the service the request is for (`dynamodb`).
    pub service: &'a str,
    /// The request's method, as received.
    pub method: &'a str,
    /// The request's path, as received.
    pub path: &'a str,
    /// The request's query string, as received.
    pub query: &'a str,
    /// The request's headers, as received.
    pub headers: &'a HeaderMap,
    /// The hex SHA-256 of the request's body.
    pub body_sha256: &'a str,
    /// The client's address, for `aws:SourceIp`.
    pub source_ip: Option<String>,
    /// The proxy's own `User-Agent`, used when the request has none.
    pub proxy_user_agent: Option<&'a str>,
    /// The actions the request needs; none to verify the signature only.
    pub authorizations: Vec<AuthorizationAsk>,
}

/// One action a request needs.
#[derive(Debug, Clone)]
pub struct AuthorizationAsk {
    /// E.g. `dynamodb:GetItem`.
    pub action: String,
    /// The ARN acted on, or `*`.
    pub resource: String,
    /// The service's own condition keys and their values.
    pub context: Vec<(String, ContextValue)>,
    /// Condition keys whose values the proxy could not determine: the request is refused if a
    /// policy of the caller reads one of them.
    pub unknown: Vec<String>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Signed by `principal` with `access_key_id`, and every action is allowed.
    Allow {
        /// The caller's ARN.
        principal: String,
        /// The key the request was signed with.
        access_key_id: String,
    },
    /// Refused, with the error the service would send.
    Deny {
        /// The caller's ARN, when the signature verified.
        principal: Option<String>,
        /// The service's error.
        error: WireError,
    },
}

/// Decides proxies' requests over IAM's replica and the session keyring. Cheap to clone.
#[derive(Clone)]
pub struct Authority {
    iam: Iam,
    keyring: SharedKeyring,
    clock: Arc<dyn Clock>,
    /// The keyring's replica, kept following the store (a follower's own).
    _session_keys: Option<SessionKeys>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// The authority of a running server (its own replicas).
    pub(crate) fn of(iam: Iam, keyring: SharedKeyring, clock: Arc<dyn Clock>) -> Self {
        Self {
            iam,
            keyring,
            clock,
            _session_keys: None,
        }
    }

    /// Follows `store` read-only: IAM and the session keyring, each a replica that follows the
    /// store's watch, so a policy change or a key rotation reaches this process as it reaches
    /// every server. Writes nothing: the store must already hold a podiam account (a server
    /// has started on it) sealed under `kek`.
    pub async fn follow(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Self, BootError> {
        let account_id = crate::bootstrap::stored_account(store.as_ref()).await?;
        let session_keys = SessionKeys::follow(
            Arc::clone(&store),
            Arc::clone(&kek),
            Arc::clone(&rng),
            Arc::clone(&clock),
        )
        .await?;
        let iam = Iam::open(
            store,
            kek,
            rng,
            Arc::clone(&clock),
            &IamConfig {
                account: account_id,
                partition: "aws".to_owned(),
            },
        )
        .await?;
        Ok(Self {
            iam,
            keyring: session_keys.shared(),
            clock,
            _session_keys: Some(session_keys),
        })
    }

    /// The account whose IAM this authority follows.
    pub fn account_id(&self) -> String {
        self.iam.state().account().to_owned()
    }

    /// Verifies `ask`'s signature and evaluates each of its actions.
    pub fn decide(&self, ask: &AuthorizeAsk<'_>) -> Decision {
        let now = self.clock.now();
        let signed = SignedRequest {
            method: ask.method,
            path: ask.path,
            query: ask.query,
            headers: ask.headers,
            body: b"",
        };
        let lookup = Lookup {
            iam: &self.iam,
            keyring: &self.keyring,
            now,
        };
        let verified = match Verifier::new(ask.service).verify_digest(
            &signed,
            ask.body_sha256,
            &lookup,
            now,
        ) {
            Ok(v) => v,
            Err(e) => {
                return Decision::Deny {
                    principal: None,
                    error: sigv4_error(&e, Api::DynamoDb),
                };
            }
        };
        let caller: Caller = verified.identity;
        let state = self.iam.state();
        let principal = caller.arn(&state);
        let facts = RequestFacts {
            now,
            source_ip: ask.source_ip.clone(),
            secure_transport: false,
            region: verified.region,
            user_agent: ask
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| ask.proxy_user_agent.map(str::to_owned)),
        };
        for wanted in &ask.authorizations {
            if let Some(key) = wanted
                .unknown
                .iter()
                .find(|key| state.policies_read_condition_key(&caller, key))
            {
                let error = podiam_iam::IamError::AccessDenied(format!(
                    "User: {principal} is not authorized to perform: {} on resource: {} \
                     because a policy reads the condition key {key}, whose value the gateway \
                     cannot determine for this request",
                    wanted.action, wanted.resource
                ));
                return Decision::Deny {
                    principal: Some(principal),
                    error: access_error(&error, Api::DynamoDb),
                };
            }
            if let Err(e) = state.authorize(
                &caller,
                &wanted.action,
                &wanted.resource,
                &facts,
                &wanted.context,
            ) {
                return Decision::Deny {
                    principal: Some(principal),
                    error: access_error(&e, Api::DynamoDb),
                };
            }
        }
        Decision::Allow {
            principal,
            access_key_id: verified.access_key_id,
        }
    }
}

/// The gateway's authorizer in this process: the same decision as `/podiam/authorize`, without
/// the round trip.
impl podiam_gateway::proxy::Authorizer for Authority {
    fn authorize<'a>(
        &'a self,
        ask: podiam_gateway::proxy::Ask<'a>,
    ) -> podiam_gateway::proxy::VerdictFuture<'a> {
        let authorizations = ask
            .wanted
            .unwrap_or_default()
            .iter()
            .map(|wanted| AuthorizationAsk {
                action: wanted.action.clone(),
                resource: wanted.resource.clone(),
                context: wanted
                    .context
                    .iter()
                    .map(|(key, value)| {
                        let value = match value {
                            podiam_gateway::dynamodb::ConditionValue::Single(v) => {
                                ContextValue::Single(v.clone())
                            }
                            podiam_gateway::dynamodb::ConditionValue::Set(vs) => {
                                ContextValue::Multi(vs.clone())
                            }
                        };
                        ((*key).to_owned(), value)
                    })
                    .collect(),
                unknown: wanted.unknown.iter().map(|k| (*k).to_owned()).collect(),
            })
            .collect();
        let decision = self.decide(&AuthorizeAsk {
            service: "dynamodb",
            method: ask.parts.method.as_str(),
            path: ask.parts.uri.path(),
            query: ask.parts.uri.query().unwrap_or_default(),
            headers: &ask.parts.headers,
            body_sha256: ask.body_sha256,
            source_ip: ask.source_ip.map(|ip| ip.to_string()),
            proxy_user_agent: None,
            authorizations,
        });
        let verdict = match decision {
            Decision::Allow { principal, .. } => {
                podiam_gateway::proxy::Verdict::Allow { principal }
            }
            Decision::Deny { principal, error } => {
                podiam_gateway::proxy::Verdict::Deny { principal, error }
            }
        };
        Box::pin(std::future::ready(Ok(verdict)))
    }
}
