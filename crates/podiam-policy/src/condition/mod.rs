//! The `Condition` element: operators, typed values and their evaluation against the request
//! context, with AWS's semantics for missing keys, negated operators, `…IfExists` and the
//! `ForAnyValue:` / `ForAllValues:` set qualifiers.

mod operator;
mod values;

use std::net::IpAddr;

use ipnet::IpNet;

use operator::{Comparison, Family};
pub use operator::{Operator, OperatorKind, SetQualifier, UnknownOperator};

use crate::context::{Context, ContextValue};
use crate::pattern::lowercase;
use crate::trace::ConditionTrace;
use crate::variables::{ArnPattern, Unresolved, ValuePattern};

/// Policy values, compiled for their operator's family. An unparsable value is `None` and
/// never matches.
#[derive(Debug, Clone, PartialEq)]
enum Compiled {
    Strings(Vec<ValuePattern>),
    Arns(Vec<ArnPattern>),
    Numbers(Vec<Option<f64>>),
    Dates(Vec<Option<i128>>),
    Bools(Vec<Option<bool>>),
    Binary(Vec<Option<Vec<u8>>>),
    Networks(Vec<Option<IpNet>>),
}

/// One `operator: { key: values }` test.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    operator: Operator,
    key: Box<str>,
    key_lower: Box<str>,
    values: Vec<String>,
    compiled: Compiled,
    has_variables: bool,
}

impl Condition {
    /// Compiles a condition. `variables` enables `${…}` (policy version 2012-10-17).
    pub(crate) fn new(operator: Operator, key: &str, values: Vec<String>, variables: bool) -> Self {
        let family = operator.kind.family();
        let compiled = match family {
            Family::String {
                fold_case,
                wildcards,
            } => Compiled::Strings(
                values
                    .iter()
                    .map(|v| ValuePattern::compile(v, variables, wildcards, fold_case))
                    .collect(),
            ),
            Family::Arn => Compiled::Arns(
                values
                    .iter()
                    .map(|v| ArnPattern::compile(v, variables))
                    .collect(),
            ),
            Family::Numeric(_) => {
                Compiled::Numbers(values.iter().map(|v| values::parse_number(v)).collect())
            }
            Family::Date(_) => {
                Compiled::Dates(values.iter().map(|v| values::parse_date(v)).collect())
            }
            Family::Bool | Family::Null => {
                Compiled::Bools(values.iter().map(|v| values::parse_bool(v)).collect())
            }
            Family::Binary => {
                Compiled::Binary(values.iter().map(|v| values::parse_binary(v)).collect())
            }
            Family::Ip => {
                Compiled::Networks(values.iter().map(|v| values::parse_network(v)).collect())
            }
        };
        let has_variables = match &compiled {
            Compiled::Strings(ps) => ps.iter().any(|p| matches!(p, ValuePattern::Dynamic { .. })),
            Compiled::Arns(ps) => ps.iter().any(|p| matches!(p, ArnPattern::Dynamic(_))),
            _ => false,
        };
        Self {
            operator,
            key: key.into(),
            key_lower: lowercase(key).into(),
            values,
            compiled,
            has_variables,
        }
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The condition key as written.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The policy values as written.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Policy values that cannot be read for this operator (e.g. a date that is not a date).
    pub(crate) fn unparsable_values(&self) -> Vec<&str> {
        let bad: Vec<bool> = match &self.compiled {
            Compiled::Strings(_) | Compiled::Arns(_) => return Vec::new(),
            Compiled::Numbers(v) => v.iter().map(Option::is_none).collect(),
            Compiled::Dates(v) => v.iter().map(Option::is_none).collect(),
            Compiled::Bools(v) => v.iter().map(Option::is_none).collect(),
            Compiled::Binary(v) => v.iter().map(Option::is_none).collect(),
            Compiled::Networks(v) => v.iter().map(Option::is_none).collect(),
        };
        self.values
            .iter()
            .zip(bad)
            .filter(|(_, bad)| *bad)
            .map(|(v, _)| v.as_str())
            .collect()
    }

    /// Evaluates the condition; fills `trace` when given.
    /// `deny` says the statement is a `Deny`: where AWS's documentation leaves a result open
    /// (an unresolvable variable, a single-valued operator over several values), the reading
    /// that refuses is taken, which for a `Deny` is the one that applies it.
    pub(crate) fn evaluate(
        &self,
        context: &Context,
        deny: bool,
        trace: Option<&mut Vec<ConditionTrace>>,
    ) -> bool {
        let present = context.get_lower(&self.key_lower);
        let (result, reason) = self.decide(present, context, deny, trace.is_some());
        if let Some(trace) = trace {
            trace.push(ConditionTrace {
                operator: self.operator.to_string(),
                key: self.key.to_string(),
                policy_values: self.values.clone(),
                request_values: present.map(|v| v.values().to_vec()),
                result,
                reason: reason.unwrap_or_default(),
            });
        }
        result
    }

    /// The result and, when `explain`, why.
    fn decide(
        &self,
        present: Option<&ContextValue>,
        context: &Context,
        deny: bool,
        explain: bool,
    ) -> (bool, Option<String>) {
        let why = |text: &dyn Fn() -> String| explain.then(text);
        if self.operator.kind == OperatorKind::Null {
            // "Condition operator to check existence of condition keys" and "Creating a
            // condition with multiple keys or values": a key whose values are empty strings
            // resolves to an empty (null) data set.
            let absent = present.is_none_or(|v| v.values().iter().all(String::is_empty));
            let Compiled::Bools(wanted) = &self.compiled else {
                return (false, None);
            };
            let result = wanted.contains(&Some(absent));
            return (
                result,
                why(&|| {
                    format!(
                        "key is {}",
                        if absent { "absent (null)" } else { "present" }
                    )
                }),
            );
        }
        if let Some(unresolved) = self
            .has_variables
            .then(|| self.first_unresolvable(context))
            .flatten()
        {
            return (
                deny,
                why(&|| {
                    format!(
                        "policy variable ${{{}}} cannot be resolved from the request; the statement is a{}, so the condition is taken as {}",
                        unresolved.key,
                        if deny { " Deny" } else { "n Allow" },
                        if deny { "met" } else { "not met" }
                    )
                }),
            );
        }
        let negated = self.operator.kind.is_negated();
        let values: &[String] = present.map_or(&[], ContextValue::values);
        // Set operators: empty strings are no values ("Creating a condition with multiple
        // keys or values": an empty string resolves to an empty data set).
        let non_empty = || values.iter().filter(|v| !v.is_empty());
        match self.operator.qualifier {
            None => {
                if present.is_none() {
                    let result = self.operator.if_exists || negated;
                    return (
                        result,
                        why(&|| {
                            let rule = if self.operator.if_exists {
                                "…IfExists treats a missing key as a match"
                            } else if negated {
                                "a negated operator matches a missing key"
                            } else {
                                "a missing key matches nothing"
                            };
                            format!("key is not in the request context; {rule}")
                        }),
                    );
                }
                if values.len() > 1 {
                    // A single-valued operator over a multivalued key: AWS documents no result.
                    // An Allow needs every value to satisfy the operator, a Deny any one.
                    let satisfies = |v: &&String| self.matches_any(v, context) != negated;
                    let result = if deny {
                        values.iter().any(|v| satisfies(&v))
                    } else {
                        values.iter().all(|v| satisfies(&v))
                    };
                    return (
                        result,
                        why(&|| {
                            format!(
                                "a single-valued operator over {} values: {} satisfy it ({})",
                                values.len(),
                                if deny { "any may" } else { "all must" },
                                if result { "they do" } else { "they do not" }
                            )
                        }),
                    );
                }
                let hit = values.iter().find(|v| self.matches_any(v, context));
                let result = hit.is_some() != negated;
                (
                    result,
                    why(&|| match hit {
                        Some(v) => format!("request value {v:?} matches a policy value"),
                        None => "no request value matches a policy value".to_owned(),
                    }),
                )
            }
            Some(SetQualifier::ForAnyValue) => {
                if non_empty().next().is_none() {
                    return (
                        self.operator.if_exists,
                        why(&|| {
                            "ForAnyValue: the key is missing or empty, so no value can match"
                                .to_owned()
                        }),
                    );
                }
                let hit = non_empty().find(|v| self.matches_any(v, context) != negated);
                (
                    hit.is_some(),
                    why(&|| match hit {
                        Some(v) => {
                            format!("ForAnyValue: request value {v:?} satisfies the operator")
                        }
                        None => "ForAnyValue: no request value satisfies the operator".to_owned(),
                    }),
                )
            }
            Some(SetQualifier::ForAllValues) => {
                if non_empty().next().is_none() {
                    return (
                        true,
                        why(&|| {
                            "ForAllValues: the key is missing or empty, which matches vacuously"
                                .to_owned()
                        }),
                    );
                }
                let miss = non_empty().find(|v| self.matches_any(v, context) == negated);
                (
                    miss.is_none(),
                    why(&|| match miss {
                        Some(v) => format!(
                            "ForAllValues: request value {v:?} does not satisfy the operator"
                        ),
                        None => {
                            "ForAllValues: every request value satisfies the operator".to_owned()
                        }
                    }),
                )
            }
        }
    }

    /// The first unresolvable variable, when no policy value can be filled in at all.
    fn first_unresolvable(&self, context: &Context) -> Option<Unresolved> {
        let attempts: Vec<Result<bool, Unresolved>> = match &self.compiled {
            Compiled::Strings(ps) => ps.iter().map(|p| p.matches("", context)).collect(),
            Compiled::Arns(ps) => ps.iter().map(|p| p.matches("", context)).collect(),
            _ => return None,
        };
        if attempts.iter().any(Result::is_ok) {
            return None;
        }
        attempts.into_iter().find_map(Result::err)
    }

    /// Does one request value match at least one policy value (the positive operator)?
    fn matches_any(&self, request: &str, context: &Context) -> bool {
        match (&self.compiled, self.operator.kind.family()) {
            (Compiled::Strings(patterns), Family::String { fold_case, .. }) => {
                let text = if fold_case {
                    lowercase(request)
                } else {
                    request.into()
                };
                patterns
                    .iter()
                    .any(|p| p.matches(&text, context).unwrap_or(false))
            }
            (Compiled::Arns(patterns), _) => patterns
                .iter()
                .any(|p| p.matches(request, context).unwrap_or(false)),
            (Compiled::Numbers(policy), Family::Numeric(cmp)) => {
                compare(values::parse_number(request), policy, cmp)
            }
            (Compiled::Dates(policy), Family::Date(cmp)) => {
                compare(values::parse_date(request), policy, cmp)
            }
            (Compiled::Bools(policy), _) => {
                let request = values::parse_bool(request);
                request.is_some() && policy.contains(&request)
            }
            (Compiled::Binary(policy), _) => {
                let request = values::parse_binary(request);
                request.is_some() && policy.contains(&request)
            }
            (Compiled::Networks(policy), _) => {
                let Some(address): Option<IpAddr> = values::parse_address(request) else {
                    return false;
                };
                policy.iter().flatten().any(|net| net.contains(&address))
            }
            _ => false,
        }
    }
}

fn compare<T: PartialOrd + Copy>(
    request: Option<T>,
    policy: &[Option<T>],
    cmp: Comparison,
) -> bool {
    let Some(request) = request else {
        return false;
    };
    policy.iter().flatten().any(|p| cmp.holds(request, *p))
}
