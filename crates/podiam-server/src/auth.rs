//! Who signed a request: long-term keys from IAM, session keys by unsealing the token.

use std::sync::Arc;

use podiam_crypto::Secret;
use podiam_iam::{Caller, IamState, KeyStatus};
use podiam_session::Session;
use podiam_sigv4::{LookupError, SecretLookup};
use time::OffsetDateTime;

use podiam_iam::Iam;
use podiam_sts::SharedKeyring;

use crate::app::App;

/// A [`SecretLookup`] over IAM's state and the session keyring.
pub(crate) struct Lookup<'a> {
    pub(crate) iam: &'a Iam,
    pub(crate) keyring: &'a SharedKeyring,
    pub(crate) now: OffsetDateTime,
}

impl App {
    /// The lookup of signing secrets at `now`.
    pub(crate) fn lookup(&self, now: OffsetDateTime) -> Lookup<'_> {
        Lookup {
            iam: &self.inner.iam,
            keyring: &self.inner.keyring,
            now,
        }
    }
}

impl SecretLookup for Lookup<'_> {
    type Identity = Caller;

    fn lookup(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<(Secret<String>, Caller), LookupError> {
        if access_key_id.starts_with("ASIA") {
            let token = token.ok_or(LookupError::MissingToken)?;
            let keyring = Arc::clone(
                &self
                    .keyring
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let session =
                Session::unseal(token, &keyring).map_err(|_| LookupError::InvalidToken)?;
            if session.access_key_id != access_key_id {
                return Err(LookupError::InvalidToken);
            }
            if session.is_expired(self.now) {
                return Err(LookupError::ExpiredToken);
            }
            let secret = session.secret_access_key.clone();
            // The role as it was when the session was issued: a role deleted and created
            // again under the same name is another role, and grants its old sessions nothing.
            let role = self
                .iam
                .state()
                .role_by_arn(&session.details.role_arn)
                .filter(|r| r.record.id == session.details.role_id);
            return Ok((
                secret,
                Caller::Session {
                    session: Arc::new(session),
                    role,
                },
            ));
        }
        // A long-term key with a session token is not a session: AWS refuses it
        // (InvalidClientTokenId) rather than ignoring the token.
        if token.is_some() {
            return Err(LookupError::InvalidToken);
        }
        let state = self.iam.state();
        caller_of_key(&state, access_key_id)
    }
}

fn caller_of_key(
    state: &IamState,
    access_key_id: &str,
) -> Result<(Secret<String>, Caller), LookupError> {
    let key = state
        .access_key(access_key_id)
        .ok_or(LookupError::UnknownAccessKey)?;
    if key.record.status != KeyStatus::Active {
        return Err(LookupError::UnknownAccessKey);
    }
    let secret = key.secret.clone().ok_or(LookupError::UnknownAccessKey)?;
    let caller = match &key.record.user {
        None => Caller::Root,
        Some(name) => Caller::User(state.user(name).ok_or(LookupError::UnknownAccessKey)?),
    };
    Ok((secret, caller))
}
