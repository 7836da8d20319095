//! The console's server-side state: one-time sign-in tokens and browser sessions, in this
//! replica's memory, bounded, and timed by the injected clock. Only the SHA-256 of a token or
//! a session id is kept, so neither can be read back out of memory, and looking one up
//! compares hashes, not the secret.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{Rng, constant_time_eq, sha256};
use podiam_iam::{Caller, IamState};
use podiam_session::Session;
use time::{Duration, OffsetDateTime};

/// How long a sign-in URL works (once).
pub(crate) const TOKEN_LIFETIME: Duration = Duration::minutes(5);
/// The longest browser session.
pub(crate) const SESSION_LIFETIME: Duration = Duration::hours(1);
/// Sign-in tokens waiting to be redeemed, at most.
const MAX_TOKENS: usize = 1_000;
/// Browser sessions, at most.
const MAX_SESSIONS: usize = 10_000;
/// Sign-in tokens of one principal, at most: its next one pushes out its oldest, so that no
/// principal can fill the server's tokens for the others.
const MAX_TOKENS_PER_PRINCIPAL: usize = 10;
/// Browser sessions of one principal, at most (its oldest goes first), for the same reason.
const MAX_SESSIONS_PER_PRINCIPAL: usize = 20;

/// Who signed in.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// The account root.
    Root,
    /// A user, found again by name and id on every request: a deleted user (or one deleted and
    /// created again) has no console any more.
    User { name: String, id: String },
    /// A role session, kept as it was issued and ending with it.
    Session(Arc<Session>),
}

impl Identity {
    pub(crate) fn of(caller: &Caller) -> Self {
        match caller {
            Caller::Root => Self::Root,
            Caller::User(user) => Self::User {
                name: user.record.name.clone(),
                id: user.record.id.clone(),
            },
            Caller::Session { session, .. } => Self::Session(Arc::clone(session)),
        }
    }

    /// The caller as IAM holds it now; `None` when it is gone.
    pub(crate) fn caller(&self, state: &IamState, now: OffsetDateTime) -> Option<Caller> {
        match self {
            Self::Root => Some(Caller::Root),
            Self::User { name, id } => state
                .user(name)
                .filter(|u| u.record.id == *id)
                .map(Caller::User),
            Self::Session(session) if session.is_expired(now) => None,
            // As the SigV4 lookup does: the role as it is now, if it is still the same role.
            Self::Session(session) => Some(Caller::Session {
                session: Arc::clone(session),
                role: state
                    .role_by_arn(&session.details.role_arn)
                    .filter(|r| r.record.id == session.details.role_id),
            }),
        }
    }

    /// When a console session starting at `now` ends: after [`SESSION_LIFETIME`], or with the
    /// role session if that ends first.
    fn session_end(&self, now: OffsetDateTime) -> OffsetDateTime {
        let end = now + SESSION_LIFETIME;
        match self {
            Self::Session(session) => end.min(session.expiration()),
            _ => end,
        }
    }
}

/// A sign-in token waiting to be redeemed.
#[derive(Debug)]
struct Pending {
    identity: Identity,
    principal: String,
    issued: OffsetDateTime,
    expires: OffsetDateTime,
}

impl Pending {
    /// Whether it may be redeemed at `now`: issued, and not expired (a clock set back before
    /// its issue does not count as time run).
    fn live(&self, now: OffsetDateTime) -> bool {
        self.issued <= now && now < self.expires
    }
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSession {
    pub(crate) identity: Identity,
    principal: String,
    /// When it began: a clock set back before it does not stretch the session.
    started: OffsetDateTime,
    pub(crate) expires: OffsetDateTime,
    /// The token every form of this session carries back (CSRF).
    pub(crate) csrf: String,
}

impl ConsoleSession {
    /// Whether it is live at `now`: begun, and not ended.
    fn live(&self, now: OffsetDateTime) -> bool {
        self.started <= now && now < self.expires
    }

    /// Whether `offered` is this session's CSRF token (in constant time).
    pub(crate) fn csrf_matches(&self, offered: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), offered.as_bytes())
    }
}

/// Why a sign-in token was not redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Never issued, or already used.
    Unknown,
    /// Issued, but older than [`TOKEN_LIFETIME`].
    Expired,
    /// The identity's own credentials have expired since.
    IdentityExpired,
    /// Too many sessions or tokens are live.
    Full,
    /// No randomness.
    Rng,
}

/// A new browser session: the cookie's value and when it ends.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) id: String,
    pub(crate) expires: OffsetDateTime,
    /// Who signed in (its ARN), for the audit trail.
    pub(crate) principal_arn: String,
}

/// The tokens and sessions.
#[derive(Default)]
pub(crate) struct Stores {
    tokens: Mutex<HashMap<[u8; 32], Pending>>,
    sessions: Mutex<HashMap<[u8; 32], ConsoleSession>>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores")
            .field("tokens", &lock(&self.tokens).len())
            .field("sessions", &lock(&self.sessions).len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 32 random bytes, base64url.
fn random_secret(rng: &dyn Rng) -> Result<String, Refused> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| Refused::Rng)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The key a secret is kept under.
fn key(secret: &str) -> [u8; 32] {
    sha256(secret.as_bytes())
}

/// Makes room for one more entry of `principal`: when it has `limit` already, its entry that
/// ends first goes.
fn make_room<V>(
    entries: &mut HashMap<[u8; 32], V>,
    principal: &str,
    limit: usize,
    of: impl Fn(&V) -> (&str, OffsetDateTime),
) {
    let mut own: Vec<([u8; 32], OffsetDateTime)> = entries
        .iter()
        .filter(|(_, v)| of(v).0 == principal)
        .map(|(k, v)| (*k, of(v).1))
        .collect();
    if own.len() >= limit {
        own.sort_by_key(|(_, ends)| *ends);
        for (k, _) in own.iter().take(own.len() + 1 - limit) {
            entries.remove(k);
        }
    }
}

impl Stores {
    /// A new sign-in token for `identity`, valid until `now + TOKEN_LIFETIME`; `principal` is
    /// whose share of the tokens it takes ([`podiam_iam::Caller::limit_key`]).
    pub(crate) fn issue_token(
        &self,
        identity: Identity,
        principal: String,
        rng: &dyn Rng,
        now: OffsetDateTime,
    ) -> Result<(String, OffsetDateTime), Refused> {
        let token = random_secret(rng)?;
        let expires = now + TOKEN_LIFETIME;
        let mut tokens = lock(&self.tokens);
        make_room(&mut tokens, &principal, MAX_TOKENS_PER_PRINCIPAL, |p| {
            (&p.principal, p.expires)
        });
        if tokens.len() >= MAX_TOKENS {
            tokens.retain(|_, p| p.live(now));
        }
        if tokens.len() >= MAX_TOKENS {
            return Err(Refused::Full);
        }
        tokens.insert(
            key(&token),
            Pending {
                identity,
                principal,
                issued: now,
                expires,
            },
        );
        Ok((token, expires))
    }

    /// Redeems `token` (it works once, used or not) for a new browser session.
    pub(crate) fn redeem(
        &self,
        token: &str,
        state: &IamState,
        rng: &dyn Rng,
        now: OffsetDateTime,
    ) -> Result<NewSession, Refused> {
        let pending = lock(&self.tokens)
            .remove(&key(token))
            .ok_or(Refused::Unknown)?;
        if !pending.live(now) {
            return Err(Refused::Expired);
        }
        let Some(caller) = pending.identity.caller(state, now) else {
            return Err(Refused::IdentityExpired);
        };
        let id = random_secret(rng)?;
        let csrf = random_secret(rng)?;
        let expires = pending.identity.session_end(now);
        let mut sessions = lock(&self.sessions);
        make_room(
            &mut sessions,
            &pending.principal,
            MAX_SESSIONS_PER_PRINCIPAL,
            |s| (&s.principal, s.expires),
        );
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.live(now));
        }
        if sessions.len() >= MAX_SESSIONS {
            return Err(Refused::Full);
        }
        sessions.insert(
            key(&id),
            ConsoleSession {
                identity: pending.identity,
                principal: pending.principal,
                started: now,
                expires,
                csrf,
            },
        );
        Ok(NewSession {
            id,
            expires,
            principal_arn: caller.arn(state),
        })
    }

    /// The live session of cookie value `id`; an expired one is removed.
    pub(crate) fn session(&self, id: &str, now: OffsetDateTime) -> Option<ConsoleSession> {
        let mut sessions = lock(&self.sessions);
        let k = key(id);
        match sessions.get(&k) {
            Some(s) if s.live(now) => Some(s.clone()),
            Some(_) => {
                sessions.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session of cookie value `id`.
    pub(crate) fn end(&self, id: &str) {
        lock(&self.sessions).remove(&key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podiam_crypto::{AeadKey, KeyId, Keyring, SeededRng};

    fn state() -> IamState {
        IamState::new(
            "111122223333",
            "aws",
            Arc::new(Keyring::new(
                AeadKey::from_bytes(KeyId(0), &[1; 32]).unwrap(),
            )),
        )
    }

    #[test]
    fn a_token_works_once_and_only_in_time() {
        let stores = Stores::default();
        let rng = SeededRng::new(b"console");
        let state = state();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let (token, expires) = stores
            .issue_token(Identity::Root, "root".to_owned(), &rng, now)
            .unwrap();
        assert_eq!(expires, now + TOKEN_LIFETIME);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        let session = stores.redeem(&token, &state, &rng, now).unwrap();
        assert_eq!(session.expires, now + SESSION_LIFETIME);
        assert_eq!(
            stores.redeem(&token, &state, &rng, now).unwrap_err(),
            Refused::Unknown
        );
        assert!(stores.session(&session.id, now).is_some());
        assert!(stores.session(&session.id, session.expires).is_none());

        let (late, _) = stores
            .issue_token(Identity::Root, "root".to_owned(), &rng, now)
            .unwrap();
        assert_eq!(
            stores
                .redeem(&late, &state, &rng, now + TOKEN_LIFETIME)
                .unwrap_err(),
            Refused::Expired
        );

        // A clock set back does not stretch a token or a session.
        let (early, _) = stores
            .issue_token(Identity::Root, "root".to_owned(), &rng, now)
            .unwrap();
        let before = now - Duration::seconds(1);
        assert_eq!(
            stores.redeem(&early, &state, &rng, before).unwrap_err(),
            Refused::Expired
        );
        let (token, _) = stores
            .issue_token(Identity::Root, "root".to_owned(), &rng, now)
            .unwrap();
        let session = stores.redeem(&token, &state, &rng, now).unwrap();
        assert!(stores.session(&session.id, before).is_none());
        assert!(stores.session(&session.id, now).is_none(), "removed");
    }

    fn user(n: usize) -> Identity {
        Identity::User {
            name: format!("u{n}"),
            id: format!("AIDA{n}"),
        }
    }

    #[test]
    fn tokens_are_bounded_in_all_and_per_principal() {
        let stores = Stores::default();
        let rng = SeededRng::new(b"console bound");
        let state = state();
        let now = OffsetDateTime::UNIX_EPOCH;
        // One principal never holds more than its share: its newest push out its oldest.
        let first = stores
            .issue_token(Identity::Root, "root".to_owned(), &rng, now)
            .unwrap()
            .0;
        let later = now + Duration::seconds(1);
        for _ in 1..MAX_TOKENS_PER_PRINCIPAL {
            stores
                .issue_token(Identity::Root, "root".to_owned(), &rng, later)
                .unwrap();
        }
        let newest = stores
            .issue_token(Identity::Root, "root".to_owned(), &rng, later)
            .unwrap()
            .0;
        assert_eq!(lock(&stores.tokens).len(), MAX_TOKENS_PER_PRINCIPAL);
        assert_eq!(
            stores.redeem(&first, &state, &rng, later).unwrap_err(),
            Refused::Unknown
        );
        assert!(stores.redeem(&newest, &state, &rng, later).is_ok());
        // Many principals together fill the server.
        let mut n = 0;
        while lock(&stores.tokens).len() < MAX_TOKENS {
            stores
                .issue_token(user(n), format!("AIDA{n}"), &rng, later)
                .unwrap();
            n += 1;
        }
        assert_eq!(
            stores
                .issue_token(user(n), format!("AIDA{n}"), &rng, later)
                .unwrap_err(),
            Refused::Full
        );
        // Expired ones make room.
        assert!(
            stores
                .issue_token(user(n), format!("AIDA{n}"), &rng, later + TOKEN_LIFETIME)
                .is_ok()
        );
    }

    #[test]
    fn one_principal_cannot_fill_the_sessions() {
        let stores = Stores::default();
        let rng = SeededRng::new(b"console sessions");
        let state = state();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut ids = Vec::new();
        for i in 0..=MAX_SESSIONS_PER_PRINCIPAL {
            let at = now + Duration::seconds(i64::try_from(i).unwrap());
            let (token, _) = stores
                .issue_token(Identity::Root, "root".to_owned(), &rng, at)
                .unwrap();
            ids.push(stores.redeem(&token, &state, &rng, at).unwrap().id);
        }
        let at = now + Duration::minutes(1);
        assert_eq!(lock(&stores.sessions).len(), MAX_SESSIONS_PER_PRINCIPAL);
        assert!(stores.session(&ids[0], at).is_none(), "the oldest went");
        assert!(ids[1..].iter().all(|id| stores.session(id, at).is_some()));
    }

    #[test]
    fn a_deleted_user_has_no_caller() {
        let identity = Identity::User {
            name: "gone".to_owned(),
            id: "AIDAEXAMPLE".to_owned(),
        };
        assert!(
            identity
                .caller(&state(), OffsetDateTime::UNIX_EPOCH)
                .is_none()
        );
    }
}
