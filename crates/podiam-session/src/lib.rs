//! Session credentials that verify without a lookup.
//!
//! [`Session::issue`] mints an access key id (`ASIA` + 16 upper-case alphanumerics), a
//! 40-character secret, and a session token that AEAD-seals the whole session under the
//! keyring's current key: who it is (account, role, session name, source identity), its tags
//! and session policy, when it was issued and expires, and how it was obtained. Any holder of
//! the keyring opens it with [`Session::unseal`]; a token sealed under a retired key, or
//! changed by a single bit, is refused. Expiry is the caller's check, against its clock.

mod credentials;
mod error;
mod session;

pub use credentials::{
    ACCESS_KEY_ID_LEN, SECRET_LEN, new_access_key_id, new_secret, random_id, random_uuid,
};
pub use error::SessionError;
pub use session::{MAX_TOKEN_LEN, Origin, Session, SessionDetails};
