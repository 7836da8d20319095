//! Condition operator names: `[ForAnyValue:|ForAllValues:]Name[IfExists]`.

use std::fmt;
use std::str::FromStr;

/// How a numeric or date operator compares the request value with the policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    pub(crate) fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Self::Equal => request == policy,
            Self::Less => request < policy,
            Self::LessOrEqual => request <= policy,
            Self::Greater => request > policy,
            Self::GreaterOrEqual => request >= policy,
        }
    }
}

/// The operator family, which decides how values are typed and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    String { fold_case: bool, wildcards: bool },
    Numeric(Comparison),
    Date(Comparison),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

macro_rules! operators {
    ($($name:ident => $family:expr, negated: $neg:expr;)*) => {
        /// A condition operator, without its set qualifier or `IfExists` suffix.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum OperatorKind {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl OperatorKind {
            /// The operator's name as written in policies.
            pub fn name(self) -> &'static str {
                match self { $(Self::$name => stringify!($name),)* }
            }

            fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(Self::$name),)* _ => None }
            }

            /// True for the operators that succeed when the request value does *not* match.
            pub fn is_negated(self) -> bool {
                match self { $(Self::$name => $neg,)* }
            }

            pub(crate) fn family(self) -> Family {
                match self { $(Self::$name => $family,)* }
            }
        }
    };
}

const fn string(fold_case: bool, wildcards: bool) -> Family {
    Family::String {
        fold_case,
        wildcards,
    }
}

operators! {
    StringEquals => string(false, false), negated: false;
    StringNotEquals => string(false, false), negated: true;
    StringEqualsIgnoreCase => string(true, false), negated: false;
    StringNotEqualsIgnoreCase => string(true, false), negated: true;
    StringLike => string(false, true), negated: false;
    StringNotLike => string(false, true), negated: true;
    NumericEquals => Family::Numeric(Comparison::Equal), negated: false;
    NumericNotEquals => Family::Numeric(Comparison::Equal), negated: true;
    NumericLessThan => Family::Numeric(Comparison::Less), negated: false;
    NumericLessThanEquals => Family::Numeric(Comparison::LessOrEqual), negated: false;
    NumericGreaterThan => Family::Numeric(Comparison::Greater), negated: false;
    NumericGreaterThanEquals => Family::Numeric(Comparison::GreaterOrEqual), negated: false;
    DateEquals => Family::Date(Comparison::Equal), negated: false;
    DateNotEquals => Family::Date(Comparison::Equal), negated: true;
    DateLessThan => Family::Date(Comparison::Less), negated: false;
    DateLessThanEquals => Family::Date(Comparison::LessOrEqual), negated: false;
    DateGreaterThan => Family::Date(Comparison::Greater), negated: false;
    DateGreaterThanEquals => Family::Date(Comparison::GreaterOrEqual), negated: false;
    Bool => Family::Bool, negated: false;
    BinaryEquals => Family::Binary, negated: false;
    IpAddress => Family::Ip, negated: false;
    NotIpAddress => Family::Ip, negated: true;
    ArnEquals => Family::Arn, negated: false;
    ArnLike => Family::Arn, negated: false;
    ArnNotEquals => Family::Arn, negated: true;
    ArnNotLike => Family::Arn, negated: true;
    Null => Family::Null, negated: false;
}

/// `ForAnyValue:` or `ForAllValues:`, for multivalued context keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// At least one request value must match.
    ForAnyValue,
    /// Every request value must match (vacuously true for a missing or empty key).
    ForAllValues,
}

/// A full condition operator such as `ForAllValues:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    /// The base operator.
    pub kind: OperatorKind,
    /// The set qualifier, if any.
    pub qualifier: Option<SetQualifier>,
    /// The `IfExists` suffix: a missing key satisfies the condition.
    pub if_exists: bool,
}

/// The operator name is not one IAM knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOperator;

impl FromStr for Operator {
    type Err = UnknownOperator;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) => (true, base),
            None => (false, rest),
        };
        let kind = OperatorKind::from_name(base).ok_or(UnknownOperator)?;
        if kind == OperatorKind::Null && (if_exists || qualifier.is_some()) {
            return Err(UnknownOperator);
        }
        Ok(Self {
            kind,
            qualifier,
            if_exists,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.kind.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let op: Operator = "ForAllValues:StringLikeIfExists".parse().unwrap();
        assert_eq!(op.kind, OperatorKind::StringLike);
        assert_eq!(op.qualifier, Some(SetQualifier::ForAllValues));
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAllValues:StringLikeIfExists");
        assert!("Null".parse::<Operator>().is_ok());
        for bad in [
            "NullIfExists",
            "ForAnyValue:Null",
            "StringEqualz",
            "stringequals",
            "ForSomeValues:StringEquals",
            "",
            "IfExists",
        ] {
            assert!(bad.parse::<Operator>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "StringEquals",
            "StringNotEquals",
            "StringEqualsIgnoreCase",
            "StringNotEqualsIgnoreCase",
            "StringLike",
            "StringNotLike",
            "NumericEquals",
            "NumericNotEquals",
            "NumericLessThan",
            "NumericLessThanEquals",
            "NumericGreaterThan",
            "NumericGreaterThanEquals",
            "DateEquals",
            "DateNotEquals",
            "DateLessThan",
            "DateLessThanEquals",
            "DateGreaterThan",
            "DateGreaterThanEquals",
            "Bool",
            "BinaryEquals",
            "IpAddress",
            "NotIpAddress",
            "ArnEquals",
            "ArnLike",
            "ArnNotEquals",
            "ArnNotLike",
            "Null",
        ] {
            let op: Operator = name.parse().unwrap();
            assert_eq!(op.to_string(), name);
        }
    }
}
