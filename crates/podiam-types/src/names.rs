//! Names with AWS's length and character rules, as newtypes.

use std::fmt;
use std::str::FromStr;

use crate::TypesError;

/// IAM's name alphabet: `[\w+=,.@-]` where `\w` is ASCII letters, digits and `_`.
fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

fn is_iam_name(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.chars().all(is_iam_name_char)
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr, $err:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Box<str>);

        impl $name {
            /// The text as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = TypesError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.into()))
                } else {
                    Err($err(s.to_owned()))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(
    /// A 12-digit AWS account id such as `111122223333`.
    AccountId,
    |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
    TypesError::InvalidAccountId
);

string_newtype!(
    /// An IAM role name: 1-64 characters of letters, digits and `+=,.@_-`.
    RoleName,
    |s| is_iam_name(s, 1, 64),
    TypesError::InvalidRoleName
);

string_newtype!(
    /// An STS role session name: 2-64 characters of letters, digits and `+=,.@_-`.
    SessionName,
    |s| is_iam_name(s, 2, 64),
    TypesError::InvalidSessionName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!("111122223333".parse::<AccountId>().is_ok());
        assert!("11112222333".parse::<AccountId>().is_err());
        assert!("1111222233334".parse::<AccountId>().is_err());
        assert!("11112222333a".parse::<AccountId>().is_err());
        assert!("".parse::<AccountId>().is_err());
    }

    #[test]
    fn role_names() {
        assert!("eks-workshop-carts-dynamo-irsa".parse::<RoleName>().is_ok());
        assert!("a".parse::<RoleName>().is_ok());
        assert!("a+b=c,d.e@f_g-h".parse::<RoleName>().is_ok());
        assert!("".parse::<RoleName>().is_err());
        assert!("has space".parse::<RoleName>().is_err());
        assert!("path/name".parse::<RoleName>().is_err());
        assert!("x".repeat(64).parse::<RoleName>().is_ok());
        assert!("x".repeat(65).parse::<RoleName>().is_err());
        assert!("é".parse::<RoleName>().is_err());
    }

    #[test]
    fn session_names() {
        assert!("ab".parse::<SessionName>().is_ok());
        assert!("a".parse::<SessionName>().is_err());
        assert!("my session".parse::<SessionName>().is_err());
        assert!("botocore-session-1714564800".parse::<SessionName>().is_ok());
        assert!("x".repeat(65).parse::<SessionName>().is_err());
    }

    #[test]
    fn serde_round_trip_rejects_bad_text() {
        let ok: RoleName = serde_json::from_str("\"r\"").unwrap();
        assert_eq!(ok.as_str(), "r");
        assert!(serde_json::from_str::<RoleName>("\"a b\"").is_err());
    }
}
