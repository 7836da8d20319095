//! The STS operations.

use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{Keyring, Rng};
use podiam_iam::{Caller, Iam, IamError, RequestFacts, RoleEntry};
use podiam_oidc::{TokenError, Verifier};
use podiam_policy::{ContextValue, Decision, PolicyType, parse_as, policy_size};
use podiam_session::{Origin, Session, SessionDetails};
use podiam_types::{Clock, SessionName};
use serde_json::Value;

use crate::trust::{ServiceTrust, WebIdentityTrust, trust_allows};
use crate::{IssuerError, IssuerKeys, StsError};

/// The session keyring, swappable for rotation.
pub type SharedKeyring = Arc<RwLock<Arc<Keyring>>>;

/// The session length when `DurationSeconds` is not given.
pub const DEFAULT_DURATION: u32 = 3600;

/// Role chaining sessions last at most an hour.
const CHAINED_MAX: u32 = 3600;

/// The most session tags.
const MAX_TAGS: usize = 50;

/// The most managed session policy ARNs.
const MAX_POLICY_ARNS: usize = 10;

/// `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone, Default)]
pub struct WebIdentityRequest {
    /// The role to assume.
    pub role_arn: String,
    /// The session name.
    pub session_name: String,
    /// The JWT (surrounding whitespace is ignored).
    pub token: String,
    /// Seconds, 900 to the role's maximum.
    pub duration: Option<u32>,
    /// An inline session policy.
    pub policy: Option<String>,
    /// Managed session policy ARNs.
    pub policy_arns: Vec<String>,
}

/// `AssumeRole`.
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleRequest {
    /// The role to assume.
    pub role_arn: String,
    /// The session name.
    pub session_name: String,
    /// Seconds, 900 to the role's maximum (an hour when chaining).
    pub duration: Option<u32>,
    /// An inline session policy.
    pub policy: Option<String>,
    /// Managed session policy ARNs.
    pub policy_arns: Vec<String>,
    /// Session tags.
    pub tags: Vec<(String, String)>,
    /// Tags that pass on to chained sessions.
    pub transitive_tag_keys: Vec<String>,
    /// The external id the trust policy may require.
    pub external_id: Option<String>,
    /// The source identity.
    pub source_identity: Option<String>,
    /// An MFA device (not supported).
    pub serial_number: Option<String>,
}

/// A service principal (e.g. `pods.eks.amazonaws.com`) assuming a role for a workload: the
/// role's trust policy must allow the service with `sts:AssumeRole` (and `sts:TagSession` when
/// there are tags), given `aws:SourceAccount` and `aws:SourceArn`.
#[derive(Debug, Clone)]
pub struct ServiceAssumeRequest {
    /// The role to assume.
    pub role_arn: String,
    /// The service principal, e.g. `pods.eks.amazonaws.com`.
    pub service: String,
    /// The session name (cut to 64 characters by the caller).
    pub session_name: String,
    /// Session tags; all of them transitive.
    pub tags: Vec<(String, String)>,
    /// `aws:SourceArn`, e.g. the cluster ARN.
    pub source_arn: String,
    /// `aws:SourceAccount`.
    pub source_account: String,
    /// How long the session lasts (not bounded by the role's `MaxSessionDuration`, as for
    /// AWS's service-issued sessions).
    pub duration: u32,
    /// An inline session policy.
    pub policy: Option<String>,
    /// How the session was obtained.
    pub origin: Origin,
}

/// Credentials issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The session (keys included).
    pub session: Session,
    /// The session token.
    pub session_token: String,
    /// How full the packed session policy and tags are, in percent (when either was given).
    pub packed_policy_size: Option<u32>,
    /// The token's `sub` (web identity).
    pub subject: Option<String>,
    /// The OIDC provider ARN (web identity).
    pub provider: Option<String>,
    /// The accepted audience (web identity).
    pub audience: Option<String>,
}

/// STS over IAM.
#[derive(Debug, Clone)]
pub struct Sts {
    iam: Iam,
    keyring: SharedKeyring,
    issuers: Arc<dyn IssuerKeys>,
    rng: Arc<dyn Rng>,
    clock: Arc<dyn Clock>,
}

/// The unverified payload of a JWT, to route it to its issuer.
fn peek_claims(token: &str) -> Result<Value, StsError> {
    let malformed = |why: &str| StsError::Token(TokenError::Malformed(why.to_owned()));
    if token.len() > podiam_oidc::MAX_TOKEN_BYTES {
        return Err(StsError::Token(TokenError::TooLarge {
            size: token.len(),
            limit: podiam_oidc::MAX_TOKEN_BYTES,
        }));
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| malformed("a token has three dot-separated parts"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("the payload is not JSON"))?;
    if !value.is_object() {
        return Err(malformed("the payload is not a JSON object"));
    }
    Ok(value)
}

/// The session tags a token carries in `https://aws.amazon.com/tags`.
fn token_tags(claims: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let Some(tags) = claims.get("https://aws.amazon.com/tags") else {
        return (Vec::new(), Vec::new());
    };
    let principal = tags
        .get("principal_tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
                        _ => None,
                    };
                    value.map(|v| (k.clone(), v))
                })
                .collect()
        })
        .unwrap_or_default();
    let transitive = tags
        .get("transitive_tag_keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    (principal, transitive)
}

fn check_tags(tags: &[(String, String)], transitive: &[String]) -> Result<(), StsError> {
    if tags.len() > MAX_TAGS {
        return Err(StsError::Validation(format!(
            "A session has at most {MAX_TAGS} tags."
        )));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(StsError::Validation(format!(
                "Tag {k:?}: keys are 1-128 characters and values at most 256."
            )));
        }
        if tags
            .iter()
            .take(i)
            .any(|(other, _)| other.eq_ignore_ascii_case(k))
        {
            return Err(StsError::Validation(format!(
                "Duplicate tag key {k:?} (tag keys are case-insensitive)."
            )));
        }
    }
    for key in transitive {
        if !tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(StsError::Validation(format!(
                "Transitive tag key {key:?} is not one of the session tags."
            )));
        }
    }
    Ok(())
}

impl Sts {
    /// STS over `iam`, sealing sessions with `keyring`, finding issuer keys through `issuers`.
    pub fn new(
        iam: Iam,
        keyring: SharedKeyring,
        issuers: Arc<dyn IssuerKeys>,
        rng: Arc<dyn Rng>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            iam,
            keyring,
            issuers,
            rng,
            clock,
        }
    }

    fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(
            &self
                .keyring
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Checks the session policies; returns the packed size in percent when there are any.
    fn session_policies(
        &self,
        policy: Option<&str>,
        arns: &[String],
        tags: usize,
    ) -> Result<Option<u32>, StsError> {
        if arns.len() > MAX_POLICY_ARNS {
            return Err(StsError::Validation(format!(
                "At most {MAX_POLICY_ARNS} policy ARNs can be passed."
            )));
        }
        for arn in arns {
            if self.iam.state().policy(arn).is_none() {
                return Err(StsError::Validation(format!(
                    "The policy {arn} does not exist."
                )));
            }
        }
        let mut chars = 0;
        if let Some(text) = policy {
            parse_as(text, PolicyType::Session).map_err(StsError::Policy)?;
            chars = policy_size(text);
        }
        if policy.is_none() && arns.is_empty() && tags == 0 {
            return Ok(None);
        }
        let percent = (chars * 100 / PolicyType::Session.max_chars()) + tags;
        Ok(Some(u32::try_from(percent.min(100)).unwrap_or(100)))
    }

    fn duration(
        &self,
        requested: Option<u32>,
        role: &RoleEntry,
        chained: bool,
    ) -> Result<u32, StsError> {
        let duration = requested.unwrap_or(DEFAULT_DURATION);
        if chained && duration > CHAINED_MAX {
            return Err(StsError::Validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".to_owned(),
            ));
        }
        if duration < 900 {
            return Err(StsError::Validation(
                "The requested DurationSeconds is less than 900 seconds.".to_owned(),
            ));
        }
        if duration > role.record.max_session {
            return Err(StsError::Validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                    .to_owned(),
            ));
        }
        Ok(duration)
    }

    /// Seals the session, and notes the role's use (`RoleLastUsed`) in the background.
    fn issue(
        &self,
        details: SessionDetails,
        facts: &RequestFacts,
    ) -> Result<(Session, String), StsError> {
        let (session, token) = Session::issue(details, &self.keyring(), self.rng.as_ref())?;
        // A token the verifier would refuse must never be handed out.
        if token.len() > podiam_session::MAX_TOKEN_LEN {
            return Err(StsError::PackedPolicyTooLarge(format!(
                "The session policy, policy ARNs and session tags are too large: the session token would be {} characters, more than {}.",
                token.len(),
                podiam_session::MAX_TOKEN_LEN
            )));
        }
        self.iam
            .record_role_use(&session.details.role_arn, &facts.region);
        Ok((session, token))
    }

    /// `AssumeRoleWithWebIdentity`.
    pub async fn assume_role_with_web_identity(
        &self,
        request: &WebIdentityRequest,
        facts: &RequestFacts,
    ) -> Result<Issued, StsError> {
        request
            .session_name
            .parse::<SessionName>()
            .map_err(|e| StsError::Validation(e.to_string()))?;
        let token = request.token.trim();
        let claims = peek_claims(token)?;
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(StsError::Token(TokenError::MissingClaim("iss")))?
            .to_owned();
        // The provider is named by the issuer's canonical form without its scheme; `iss` must
        // be a URL without anything ambiguous in it.
        let unknown = || {
            StsError::UnknownProvider(format!(
                "No OpenIDConnect provider found in your account for {issuer}"
            ))
        };
        let url = issuer
            .parse::<podiam_types::IssuerUrl>()
            .map_err(|_| unknown())?
            .key()
            .to_owned();
        let (provider_arn, client_ids) = {
            let state = self.iam.state();
            let provider = state.provider(&url).ok_or_else(unknown)?;
            (state.provider_arn(&url), provider.record.client_ids.clone())
        };
        let audiences: Vec<&str> = client_ids.iter().map(String::as_str).collect();
        let verifier = Verifier::new(&issuer, &audiences);
        let now = self.clock.now();
        let keys = self
            .issuers
            .keys(&issuer, false)
            .await
            .map_err(issuer_error)?;
        let verified = match verifier.verify(token, &keys, now) {
            Err(TokenError::UnknownKey(_)) => {
                let keys = self
                    .issuers
                    .keys(&issuer, true)
                    .await
                    .map_err(issuer_error)?;
                verifier.verify(token, &keys, now)?
            }
            other => other?,
        };
        let who = format!(
            "{} (aud {}) via {provider_arn}",
            verified.claims.sub, verified.audience
        );
        let denied = |why: String| StsError::AccessDenied {
            message: "Not authorized to perform sts:AssumeRoleWithWebIdentity".to_owned(),
            reason: format!("{who}: {why}"),
        };
        let role = self
            .iam
            .state()
            .role_by_arn(&request.role_arn)
            .ok_or_else(|| denied(format!("role {} does not exist", request.role_arn)))?;
        let trust = role.trust().ok_or_else(|| {
            denied(format!(
                "the trust policy of {} no longer parses",
                request.role_arn
            ))
        })?;
        let (tags, transitive) = token_tags(&claims);
        check_tags(&tags, &transitive)?;

        let amr: Option<Vec<String>> = claims.get("amr").and_then(Value::as_array).map(|amr| {
            amr.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
        let asked = WebIdentityTrust {
            provider_arn: &provider_arn,
            provider_url: &url,
            subject: &verified.claims.sub,
            audience: &verified.audience,
            amr: amr.as_deref(),
            role_arn: &request.role_arn,
            session_name: Some(&request.session_name),
            tags: &tags,
        }
        .requests(facts);
        trust_allows(&trust, &asked).map_err(|(action, rule)| {
            denied(format!(
                "the trust policy of {} does not allow {action}: {rule}",
                request.role_arn
            ))
        })?;

        let duration = self.duration(request.duration, &role, false)?;
        let packed =
            self.session_policies(request.policy.as_deref(), &request.policy_arns, tags.len())?;
        let issued_at = now.unix_timestamp();
        let details = SessionDetails {
            account: self.iam.state().account().to_owned(),
            role_arn: request.role_arn.clone(),
            role_id: role.record.id.clone(),
            session_name: request.session_name.clone(),
            source_identity: None,
            tags,
            transitive_tag_keys: transitive,
            policy: request.policy.clone(),
            policy_arns: request.policy_arns.clone(),
            issued_at,
            expires_at: issued_at + i64::from(duration),
            origin: match verified
                .claims
                .kubernetes
                .as_ref()
                .and_then(|k| k.node.as_ref())
            {
                Some(node) => Origin::WebIdentityOnNode {
                    provider: provider_arn.clone(),
                    subject: verified.claims.sub.clone(),
                    audience: verified.audience.clone(),
                    node: node.name.clone(),
                },
                None => Origin::WebIdentity {
                    provider: provider_arn.clone(),
                    subject: verified.claims.sub.clone(),
                    audience: verified.audience.clone(),
                },
            },
        };
        let (session, session_token) = self.issue(details, facts)?;
        Ok(Issued {
            session,
            session_token,
            packed_policy_size: packed,
            subject: Some(verified.claims.sub),
            provider: Some(provider_arn),
            audience: Some(verified.audience),
        })
    }

    /// `AssumeRole` by a signed caller.
    pub async fn assume_role(
        &self,
        caller: &Caller,
        request: &AssumeRoleRequest,
        facts: &RequestFacts,
    ) -> Result<Issued, StsError> {
        request
            .session_name
            .parse::<SessionName>()
            .map_err(|e| StsError::Validation(e.to_string()))?;
        if request.serial_number.is_some() {
            return Err(StsError::Validation(
                "podiam does not support MFA (SerialNumber/TokenCode).".to_owned(),
            ));
        }
        let state = self.iam.state();
        let caller_arn = caller.arn(&state);
        let denied = |why: String| StsError::AccessDenied {
            message: format!(
                "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
                request.role_arn
            ),
            reason: format!("{caller_arn}: {why}"),
        };
        let role = state
            .role_by_arn(&request.role_arn)
            .ok_or_else(|| denied(format!("role {} does not exist", request.role_arn)))?;
        let trust = role.trust().ok_or_else(|| {
            denied(format!(
                "the trust policy of {} no longer parses",
                request.role_arn
            ))
        })?;
        let chained = matches!(caller, Caller::Session { .. });

        // Tags: incoming transitive tags from a chained session, then the request's own.
        let (mut tags, mut transitive, inherited_source) = match caller {
            Caller::Session { session, .. } => {
                let carried: Vec<(String, String)> = session
                    .details
                    .tags
                    .iter()
                    .filter(|(k, _)| {
                        session
                            .details
                            .transitive_tag_keys
                            .iter()
                            .any(|t| t.eq_ignore_ascii_case(k))
                    })
                    .cloned()
                    .collect();
                (
                    carried,
                    session.details.transitive_tag_keys.clone(),
                    session.details.source_identity.clone(),
                )
            }
            _ => (Vec::new(), Vec::new(), None),
        };
        for (k, v) in &request.tags {
            if tags
                .iter()
                .any(|(existing, _)| existing.eq_ignore_ascii_case(k))
            {
                return Err(StsError::Validation(format!(
                    "Tag {k:?} conflicts with an incoming transitive session tag."
                )));
            }
            tags.push((k.clone(), v.clone()));
        }
        for key in &request.transitive_tag_keys {
            if !request
                .tags
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(key))
            {
                return Err(StsError::Validation(format!(
                    "Transitive tag key {key:?} is not one of the session tags."
                )));
            }
            if !transitive.iter().any(|t| t.eq_ignore_ascii_case(key)) {
                transitive.push(key.clone());
            }
        }
        check_tags(&tags, &transitive)?;
        let source_identity = match (inherited_source, &request.source_identity) {
            (Some(inherited), Some(asked)) if inherited != *asked => {
                return Err(StsError::AccessDenied {
                    message: "The source identity of a chained session cannot be changed."
                        .to_owned(),
                    reason: format!(
                        "{caller_arn}: source identity {inherited:?} cannot become {asked:?}"
                    ),
                });
            }
            (Some(inherited), _) => Some(inherited),
            (None, asked) => asked.clone(),
        };

        let mut extra: Vec<(String, ContextValue)> = vec![(
            "sts:RoleSessionName".into(),
            request.session_name.clone().into(),
        )];
        if let Some(external) = &request.external_id {
            extra.push(("sts:ExternalId".into(), external.clone().into()));
        }
        if let Some(source) = &request.source_identity {
            extra.push(("sts:SourceIdentity".into(), source.clone().into()));
        }
        for (k, v) in &request.tags {
            extra.push((format!("aws:RequestTag/{k}"), v.clone().into()));
        }
        if !request.tags.is_empty() {
            extra.push((
                "aws:TagKeys".into(),
                ContextValue::Multi(request.tags.iter().map(|(k, _)| k.clone()).collect()),
            ));
        }
        if !request.transitive_tag_keys.is_empty() {
            extra.push((
                "sts:TransitiveTagKeys".into(),
                ContextValue::Multi(request.transitive_tag_keys.clone()),
            ));
        }
        let mut actions = vec!["sts:AssumeRole"];
        if !request.tags.is_empty() {
            actions.push("sts:TagSession");
        }
        if request.source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        for action in actions {
            // The trust policy has to let the caller in; then the full evaluation (the caller's
            // own policies, its boundary and session policies) has to allow.
            let trusted =
                state.policy_allows(&trust, caller, action, &request.role_arn, facts, &extra);
            let (decision, _) = state.decide(
                caller,
                action,
                &request.role_arn,
                Some(&trust),
                facts,
                &extra,
            );
            if !trusted {
                return Err(denied(format!(
                    "the trust policy of {} does not allow {action} for this principal",
                    request.role_arn
                )));
            }
            if decision != Decision::Allow {
                return Err(denied(format!(
                    "the caller's own policies do not allow {action} on {}",
                    request.role_arn
                )));
            }
        }
        let account = state.account().to_owned();
        drop(state);

        let duration = self.duration(request.duration, &role, chained)?;
        let packed = self.session_policies(
            request.policy.as_deref(),
            &request.policy_arns,
            request.tags.len(),
        )?;
        let issued_at = self.clock.now().unix_timestamp();
        let details = SessionDetails {
            account,
            role_arn: request.role_arn.clone(),
            role_id: role.record.id.clone(),
            session_name: request.session_name.clone(),
            source_identity,
            tags,
            transitive_tag_keys: transitive,
            policy: request.policy.clone(),
            policy_arns: request.policy_arns.clone(),
            issued_at,
            expires_at: issued_at + i64::from(duration),
            origin: Origin::AssumeRole { source: caller_arn },
        };
        let (session, session_token) = self.issue(details, facts)?;
        Ok(Issued {
            session,
            session_token,
            packed_policy_size: packed,
            subject: None,
            provider: None,
            audience: None,
        })
    }

    /// A service principal assumes a role for a workload (EKS Pod Identity).
    pub fn assume_role_for_service(
        &self,
        request: &ServiceAssumeRequest,
        facts: &RequestFacts,
    ) -> Result<Issued, StsError> {
        request
            .session_name
            .parse::<SessionName>()
            .map_err(|e| StsError::Validation(e.to_string()))?;
        let transitive: Vec<String> = request.tags.iter().map(|(k, _)| k.clone()).collect();
        check_tags(&request.tags, &transitive)?;
        let who = format!("{} for {}", request.service, request.source_arn);
        let denied = |why: String| StsError::AccessDenied {
            message: format!(
                "{} is not authorized to perform: sts:AssumeRole on resource: {}",
                request.service, request.role_arn
            ),
            reason: format!("{who}: {why}"),
        };
        let state = self.iam.state();
        let role = state
            .role_by_arn(&request.role_arn)
            .ok_or_else(|| denied(format!("role {} does not exist", request.role_arn)))?;
        let trust = role.trust().ok_or_else(|| {
            denied(format!(
                "the trust policy of {} no longer parses",
                request.role_arn
            ))
        })?;
        let account = state.account().to_owned();
        drop(state);

        let asked = ServiceTrust {
            service: &request.service,
            role_arn: &request.role_arn,
            source_account: &request.source_account,
            source_arn: &request.source_arn,
            session_name: Some(&request.session_name),
            tags: &request.tags,
        }
        .requests(facts);
        trust_allows(&trust, &asked).map_err(|(action, rule)| {
            denied(format!(
                "the trust policy of {} does not allow {action}: {rule}",
                request.role_arn
            ))
        })?;
        let packed = self.session_policies(request.policy.as_deref(), &[], request.tags.len())?;
        let issued_at = self.clock.now().unix_timestamp();
        let details = SessionDetails {
            account,
            role_arn: request.role_arn.clone(),
            role_id: role.record.id.clone(),
            session_name: request.session_name.clone(),
            source_identity: None,
            tags: request.tags.clone(),
            transitive_tag_keys: transitive,
            policy: request.policy.clone(),
            policy_arns: Vec::new(),
            issued_at,
            expires_at: issued_at + i64::from(request.duration),
            origin: request.origin.clone(),
        };
        let (session, session_token) = self.issue(details, facts)?;
        Ok(Issued {
            session,
            session_token,
            packed_policy_size: packed,
            subject: None,
            provider: None,
            audience: None,
        })
    }

    /// The IAM service this STS works over.
    pub fn iam(&self) -> &Iam {
        &self.iam
    }

    /// `GetCallerIdentity`: `(UserId, Account, Arn)`. Always allowed.
    pub fn get_caller_identity(&self, caller: &Caller) -> (String, String, String) {
        let state = self.iam.state();
        (
            caller.user_id(&state),
            state.account().to_owned(),
            caller.arn(&state),
        )
    }
}

fn issuer_error(e: IssuerError) -> StsError {
    match e {
        IssuerError::NotAllowed(m) => StsError::UnknownProvider(m),
        IssuerError::Unreachable(m) => StsError::IdpCommunication(m),
    }
}

impl From<IamError> for StsError {
    fn from(e: IamError) -> Self {
        Self::Iam(e)
    }
}
