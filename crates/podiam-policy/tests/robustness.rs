//! Hostile documents: random JSON shaped like policies never panics the parser, the validator
//! or the evaluator, and the two evaluators always agree. (The fuzz target
//! `policy_parse_evaluate` explores the same property without a grammar.)

#![expect(clippy::unwrap_used, reason = "fixed test principals parse")]

use podiam_policy::{
    Context, ContextValue, Policy, PolicySet, PolicyType, Principal, Request, validate,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "Version",
    "Id",
    "Statement",
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "AWS",
    "Federated",
    "Service",
    "CanonicalUser",
    "StringEquals",
    "StringNotLike",
    "ForAllValues:StringLike",
    "ForAnyValue:StringEqualsIgnoreCase",
    "NumericLessThanIfExists",
    "DateGreaterThan",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnLike",
    "Null",
    "aws:SourceIp",
    "aws:TagKeys",
    "aws:username",
    "aws:CurrentTime",
];

const STRINGS: &[&str] = &[
    "2012-10-17",
    "2008-10-17",
    "Allow",
    "Deny",
    "*",
    "?",
    "s3:*",
    "s3:Get?bject",
    "arn:aws:s3:::b/*",
    "arn:aws:iam::111122223333:role/r",
    "111122223333",
    "pods.eks.amazonaws.com",
    "${aws:username}",
    "${aws:username, 'x''y'}",
    "${*}${?}${$}",
    "${",
    "10.0.0.0/8",
    "::/0",
    "2024-05-01T12:00:00Z",
    "1714564800",
    "true",
    "QmluYXJ5",
    "",
    "é*ü?",
    "*a*a*a*b",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        Just(Value::Null),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericLessThan",
    "NumericGreaterThanEqualsIfExists",
    "DateLessThan",
    "DateNotEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnLike",
    "ArnNotEquals",
    "Null",
    "ForAnyValue:StringLike",
    "ForAllValues:StringEquals",
    "ForAllValues:NumericEquals",
    "ForAnyValue:StringNotEqualsIfExists",
];

fn one_or_many() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        prop::collection::vec(prop::sample::select(STRINGS), 0..4).prop_map(|v| json!(v)),
    ]
}

/// Mostly well-formed statements, each element drawn from plausible and hostile values.
fn arb_statement() -> impl Strategy<Value = Value> {
    let principal = prop_oneof![
        Just(None),
        Just(Some(json!("*"))),
        (
            prop::sample::select(&["AWS", "Federated", "Service", "CanonicalUser", "Aws"][..]),
            one_or_many()
        )
            .prop_map(|(k, v)| Some(json!({ k: v }))),
    ];
    let condition = prop::collection::vec(
        (
            prop::sample::select(OPERATORS),
            prop::sample::select(KEYS),
            one_or_many(),
        ),
        0..3,
    );
    (
        prop_oneof![
            9 => prop::sample::select(&["Allow", "Deny"][..]),
            1 => prop::sample::select(&["allow", "Maybe"][..]),
        ],
        principal,
        any::<bool>(),
        one_or_many(),
        prop::option::of(one_or_many()),
        any::<bool>(),
        condition,
        prop::option::weighted(0.05, (prop::sample::select(KEYS), arb_json())),
    )
        .prop_map(
            |(effect, principal, not_action, action, resource, not_resource, condition, extra)| {
                let mut statement = Map::new();
                statement.insert("Effect".into(), json!(effect));
                if let Some(p) = principal {
                    statement.insert("Principal".into(), p);
                }
                statement.insert(
                    if not_action { "NotAction" } else { "Action" }.into(),
                    action,
                );
                if let Some(r) = resource {
                    statement.insert(
                        if not_resource {
                            "NotResource"
                        } else {
                            "Resource"
                        }
                        .into(),
                        r,
                    );
                }
                let mut operators = Map::new();
                for (op, key, values) in condition {
                    operators.insert(op.into(), json!({ key: values }));
                }
                if !operators.is_empty() {
                    statement.insert("Condition".into(), Value::Object(operators));
                }
                if let Some((k, v)) = extra {
                    statement.insert(k.into(), v);
                }
                Value::Object(statement)
            },
        )
}

fn requests() -> Vec<Request> {
    let context = Context::new()
        .with("aws:username", "alice")
        .with("aws:SourceIp", "10.1.2.3")
        .with("aws:CurrentTime", "2024-05-01T12:00:00Z")
        .with(
            "aws:TagKeys",
            ContextValue::Multi(vec!["a".into(), "b".into()]),
        );
    vec![
        Request::new("s3:GetObject")
            .principal(
                "arn:aws:sts::111122223333:assumed-role/r/s"
                    .parse()
                    .unwrap(),
            )
            .resource("arn:aws:s3:::b/alice")
            .context(context.clone()),
        Request::new("sts:AssumeRole")
            .principal(Principal::Service("pods.eks.amazonaws.com".into())),
        Request::new("s3:GetObject").context(context),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_documents_never_panic(statements in prop_oneof![
        1 => arb_json(),
        4 => prop::collection::vec(arb_statement(), 1..4).prop_map(Value::Array),
    ], version in prop::sample::select(&["2012-10-17", "2008-10-17"][..])) {
        let doc = json!({"Version": version, "Statement": statements});
        let text = doc.to_string();
        if let Ok(policy) = Policy::parse(&text) {
            prop_assert_eq!(policy.text(), text.as_str());
            for kind in PolicyType::ALL {
                let _ = validate(&policy, kind);
            }
            for request in requests() {
                for set in [
                    PolicySet { identity: vec![&policy], ..PolicySet::default() },
                    PolicySet { resource: Some(&policy), permissions_boundary: Some(&policy), ..PolicySet::default() },
                ] {
                    prop_assert_eq!(set.evaluate(&request), set.explain(&request).decision);
                }
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Policy::parse(&text);
    }
}
