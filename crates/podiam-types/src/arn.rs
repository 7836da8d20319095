//! Amazon Resource Names.

use std::fmt;
use std::str::FromStr;

use crate::{AccountId, TypesError};

/// Partitions that podiam accepts in ARNs and policies.
pub const KNOWN_PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// The longest ARN IAM accepts anywhere.
const MAX_ARN_LEN: usize = 2048;

/// A concrete ARN: `arn:partition:service:region:account:resource`.
///
/// The resource part may itself contain `:` and `/`. Region and account may be empty (as in
/// `arn:aws:s3:::bucket` or `arn:aws:iam::aws:policy/…`). Patterns with wildcards are not ARNs;
/// they belong to the policy language.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arn {
    text: Box<str>,
    /// Byte offsets of the first five `:` separators.
    colons: [usize; 5],
}

fn is_label(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Arn {
    /// The whole ARN.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn part(&self, index: usize) -> &str {
        let start = match index {
            0 => 0,
            i => self.colons.get(i - 1).map_or(0, |c| c + 1),
        };
        let end = self.colons.get(index).copied().unwrap_or(self.text.len());
        self.text.get(start..end).unwrap_or_default()
    }

    /// `aws`, `aws-cn`, …
    pub fn partition(&self) -> &str {
        self.part(1)
    }

    /// The service namespace: `iam`, `sts`, `s3`, `eks`, …
    pub fn service(&self) -> &str {
        self.part(2)
    }

    /// The region, empty for global resources.
    pub fn region(&self) -> &str {
        self.part(3)
    }

    /// The account field as written (may be empty or `aws`).
    pub fn account(&self) -> &str {
        self.part(4)
    }

    /// The account field when it is a 12-digit account id.
    pub fn account_id(&self) -> Option<AccountId> {
        self.account().parse().ok()
    }

    /// Everything after the fifth colon: `role/path/name`, `bucket/key`, …
    pub fn resource(&self) -> &str {
        self.part(5)
    }
}

impl FromStr for Arn {
    type Err = TypesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| TypesError::InvalidArn {
            value: s.chars().take(MAX_ARN_LEN).collect(),
            reason,
        };
        if s.len() > MAX_ARN_LEN {
            return Err(fail("longer than 2048 bytes"));
        }
        if s.chars().any(char::is_control) {
            return Err(fail("contains control characters"));
        }
        let mut colons = [0usize; 5];
        let mut found = s.match_indices(':').map(|(i, _)| i);
        for slot in &mut colons {
            *slot = found
                .next()
                .ok_or_else(|| fail("expected arn:partition:service:region:account:resource"))?;
        }
        let arn = Self {
            text: s.into(),
            colons,
        };
        if arn.part(0) != "arn" {
            return Err(fail("must start with \"arn:\""));
        }
        if arn.partition().is_empty() || !is_label(arn.partition()) {
            return Err(fail("partition must be lower-case letters, digits and '-'"));
        }
        if arn.service().is_empty() || !is_label(arn.service()) {
            return Err(fail("service must be lower-case letters, digits and '-'"));
        }
        if !is_label(arn.region()) {
            return Err(fail("region must be lower-case letters, digits and '-'"));
        }
        if !arn.account().bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(fail("account must be letters and digits"));
        }
        if arn.resource().is_empty() {
            return Err(fail("resource part is empty"));
        }
        Ok(arn)
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl serde::Serialize for Arn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Arn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_of_a_role_arn() {
        let arn: Arn = "arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-irsa"
            .parse()
            .unwrap();
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.service(), "iam");
        assert_eq!(arn.region(), "");
        assert_eq!(arn.account(), "637423329338");
        assert_eq!(arn.account_id().unwrap().as_str(), "637423329338");
        assert_eq!(arn.resource(), "role/eks-workshop-carts-dynamo-irsa");
    }

    #[test]
    fn resource_keeps_its_colons() {
        let arn: Arn = "arn:aws:logs:eu-central-1:111122223333:log-group:/aws/eks:*"
            .parse()
            .unwrap();
        assert_eq!(arn.region(), "eu-central-1");
        assert_eq!(arn.resource(), "log-group:/aws/eks:*");
    }

    #[test]
    fn s3_and_managed_policy_forms() {
        let s3: Arn = "arn:aws:s3:::bucket/key".parse().unwrap();
        assert_eq!(s3.account(), "");
        assert!(s3.account_id().is_none());
        let managed: Arn = "arn:aws:iam::aws:policy/ReadOnlyAccess".parse().unwrap();
        assert_eq!(managed.account(), "aws");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "arn",
            "arn:aws:s3",
            "arn:aws:s3:::",
            "urn:aws:s3:::b",
            "arn::s3:::b",
            "arn:aws::::b",
            "arn:AWS:s3:::b",
            "arn:aws:s3:::b\n",
            "arn:aws:iam::1234-5678:role/r",
        ] {
            assert!(bad.parse::<Arn>().is_err(), "{bad:?} should be rejected");
        }
        assert!(
            format!("arn:aws:s3:::{}", "k".repeat(2048))
                .parse::<Arn>()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,80}") {
            if let Ok(arn) = s.parse::<Arn>() {
                prop_assert_eq!(arn.to_string(), s.clone());
                let rebuilt = format!(
                    "arn:{}:{}:{}:{}:{}",
                    arn.partition(), arn.service(), arn.region(), arn.account(), arn.resource()
                );
                prop_assert_eq!(rebuilt, s);
            }
        }

        #[test]
        fn well_formed_parts_parse(
            partition in "[a-z][a-z-]{0,8}",
            service in "[a-z0-9]{1,10}",
            region in "[a-z0-9-]{0,12}",
            account in "[0-9]{12}",
            resource in "[ -~]{1,40}",
        ) {
            let text = format!("arn:{partition}:{service}:{region}:{account}:{resource}");
            let arn: Arn = text.parse().unwrap();
            prop_assert_eq!(arn.service(), service.as_str());
            prop_assert_eq!(arn.resource(), resource.as_str());
        }
    }
}
