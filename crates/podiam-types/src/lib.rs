//! Core identifiers shared by every podiam crate, parsed once at the edge.
//!
//! "Parse, don't validate": an [`Arn`], [`AccountId`], [`RoleName`] or [`SessionName`] can only be
//! obtained through `FromStr`, so holding one proves the text followed AWS's rules. The crate also
//! defines the [`Clock`] that every time-dependent decision takes by injection.

mod arn;
mod clock;
mod error;
mod issuer_url;
mod names;

pub use arn::{Arn, KNOWN_PARTITIONS};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::TypesError;
pub use issuer_url::{IssuerUrl, MAX_ISSUER_URL};
pub use names::{AccountId, RoleName, SessionName};
