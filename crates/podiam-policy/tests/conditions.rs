//! Every condition operator family, through the public API: parse a policy, evaluate it.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly on broken fixtures"
)]

use podiam_policy::{Context, ContextValue, Policy, PolicyOutcome, Request};
use serde_json::{Value, json};

/// A policy that allows `s3:GetObject` on everything when `condition` holds.
fn with_condition(condition: Value) -> Policy {
    let doc = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": condition}]
    });
    Policy::parse(&doc.to_string()).expect("test policy parses")
}

fn holds(condition: Value, context: Context) -> bool {
    let outcome =
        with_condition(condition).evaluate(&Request::new("s3:GetObject").context(context));
    outcome == PolicyOutcome::Allow
}

fn one(op: &str, key: &str, values: Value, context: &[(&str, &str)]) -> bool {
    let mut c = Context::new();
    for (k, v) in context {
        c.insert(k, *v);
    }
    holds(json!({ op: { key: values } }), c)
}

fn multi(op: &str, key: &str, values: Value, request: &[&str]) -> bool {
    let c = Context::new().with(
        key,
        ContextValue::Multi(request.iter().map(|s| (*s).to_owned()).collect()),
    );
    holds(json!({ op: { key: values } }), c)
}

fn none(op: &str, key: &str, values: Value) -> bool {
    holds(json!({ op: { key: values } }), Context::new())
}

#[test]
fn string_equals_family() {
    let k = "aws:PrincipalTag/team";
    assert!(one("StringEquals", k, json!("blue"), &[(k, "blue")]));
    assert!(!one("StringEquals", k, json!("blue"), &[(k, "Blue")]));
    assert!(one(
        "StringEquals",
        k,
        json!(["red", "blue"]),
        &[(k, "blue")]
    ));
    assert!(
        !one("StringEquals", k, json!("*"), &[(k, "blue")]),
        "no wildcards in StringEquals"
    );
    assert!(!none("StringEquals", k, json!("blue")));

    assert!(one("StringNotEquals", k, json!("blue"), &[(k, "red")]));
    assert!(!one(
        "StringNotEquals",
        k,
        json!(["red", "blue"]),
        &[(k, "red")]
    ));
    assert!(
        none("StringNotEquals", k, json!("blue")),
        "negated operators match a missing key"
    );

    assert!(one(
        "StringEqualsIgnoreCase",
        k,
        json!("BLUE"),
        &[(k, "blue")]
    ));
    assert!(one(
        "StringEqualsIgnoreCase",
        k,
        json!("blue"),
        &[(k, "BlUe")]
    ));
    assert!(!one(
        "StringEqualsIgnoreCase",
        k,
        json!("blue"),
        &[(k, "red")]
    ));
    assert!(!one(
        "StringNotEqualsIgnoreCase",
        k,
        json!("BLUE"),
        &[(k, "blue")]
    ));
    assert!(one(
        "StringNotEqualsIgnoreCase",
        k,
        json!("BLUE"),
        &[(k, "red")]
    ));
    assert!(none("StringNotEqualsIgnoreCase", k, json!("BLUE")));
}

#[test]
fn string_like_family() {
    let k = "s3:prefix";
    assert!(one(
        "StringLike",
        k,
        json!("home/*"),
        &[(k, "home/alice/x")]
    ));
    assert!(one("StringLike", k, json!("home/?"), &[(k, "home/a")]));
    assert!(!one("StringLike", k, json!("home/?"), &[(k, "home/ab")]));
    assert!(
        !one("StringLike", k, json!("Home/*"), &[(k, "home/a")]),
        "StringLike is case-sensitive"
    );
    assert!(!none("StringLike", k, json!("*")));
    assert!(!one(
        "StringNotLike",
        k,
        json!("home/*"),
        &[(k, "home/alice")]
    ));
    assert!(one(
        "StringNotLike",
        k,
        json!(["home/*", "tmp/*"]),
        &[(k, "etc/passwd")]
    ));
    assert!(none("StringNotLike", k, json!("home/*")));
}

#[test]
fn numeric_family() {
    let k = "s3:max-keys";
    let at = |op: &str, policy: Value, request: &str| one(op, k, policy, &[(k, request)]);
    assert!(at("NumericEquals", json!("10"), "10"));
    assert!(at("NumericEquals", json!(10), "10.0"));
    assert!(!at("NumericEquals", json!("10"), "11"));
    assert!(at("NumericNotEquals", json!("10"), "11"));
    assert!(!at("NumericNotEquals", json!("10"), "10"));
    assert!(at("NumericLessThan", json!("10"), "9"));
    assert!(!at("NumericLessThan", json!("10"), "10"));
    assert!(at("NumericLessThanEquals", json!("10"), "10"));
    assert!(!at("NumericLessThanEquals", json!("10"), "10.5"));
    assert!(at("NumericGreaterThan", json!("10"), "10.5"));
    assert!(!at("NumericGreaterThan", json!("10"), "10"));
    assert!(at("NumericGreaterThanEquals", json!("-1"), "-1"));
    assert!(!at("NumericGreaterThanEquals", json!("0"), "-1"));
    assert!(
        !at("NumericLessThan", json!("10"), "nine"),
        "a non-number never compares"
    );
    assert!(
        !at("NumericEquals", json!("ten"), "10"),
        "a bad policy value never matches"
    );
    assert!(!none("NumericLessThan", k, json!("10")));
    assert!(none("NumericNotEquals", k, json!("10")));
}

#[test]
fn date_family() {
    let k = "aws:CurrentTime";
    let at = |op: &str, policy: &str, request: &str| one(op, k, json!(policy), &[(k, request)]);
    let noon = "2024-05-01T12:00:00Z";
    assert!(at("DateEquals", noon, "2024-05-01T12:00:00Z"));
    assert!(at("DateEquals", noon, "1714564800"), "epoch seconds");
    assert!(
        at("DateEquals", noon, "2024-05-01T14:00:00+02:00"),
        "offsets"
    );
    assert!(!at("DateEquals", noon, "2024-05-01T12:00:01Z"));
    assert!(at("DateNotEquals", noon, "2024-05-01T12:00:01Z"));
    assert!(!at("DateNotEquals", noon, noon));
    assert!(at("DateLessThan", noon, "2024-05-01T11:59:59Z"));
    assert!(!at("DateLessThan", noon, noon));
    assert!(at("DateLessThanEquals", noon, noon));
    assert!(!at("DateLessThanEquals", noon, "2024-05-02"));
    assert!(
        at("DateGreaterThan", "2024-05-01", noon),
        "a date is midnight UTC"
    );
    assert!(!at("DateGreaterThan", noon, noon));
    assert!(at("DateGreaterThanEquals", "1714564800", noon));
    assert!(!at("DateGreaterThanEquals", noon, "2020-01-01T00:00:00Z"));
    assert!(!at("DateLessThan", noon, "not a date"));
    assert!(!none("DateLessThan", k, json!(noon)));
    assert!(none("DateNotEquals", k, json!(noon)));
}

#[test]
fn bool_and_binary() {
    let k = "aws:SecureTransport";
    assert!(one("Bool", k, json!("true"), &[(k, "true")]));
    assert!(
        one("Bool", k, json!(true), &[(k, "TRUE")]),
        "JSON booleans and any case"
    );
    assert!(!one("Bool", k, json!("true"), &[(k, "false")]));
    assert!(one("Bool", k, json!(false), &[(k, "false")]));
    assert!(!one("Bool", k, json!("true"), &[(k, "yes")]));
    assert!(
        !none("Bool", k, json!("false")),
        "a missing key is not false"
    );
    assert!(none("BoolIfExists", k, json!("true")));

    let b = "dynamodb:Attributes";
    assert!(one(
        "BinaryEquals",
        b,
        json!("QmluYXJ5VmFsdWU="),
        &[(b, "QmluYXJ5VmFsdWU=")]
    ));
    assert!(!one(
        "BinaryEquals",
        b,
        json!("QmluYXJ5VmFsdWU="),
        &[(b, "T3RoZXI=")]
    ));
    assert!(!one(
        "BinaryEquals",
        b,
        json!("QmluYXJ5VmFsdWU="),
        &[(b, "not base64")]
    ));
}

#[test]
fn ip_address_family() {
    let k = "aws:SourceIp";
    assert!(one(
        "IpAddress",
        k,
        json!("10.0.0.0/8"),
        &[(k, "10.42.0.17")]
    ));
    assert!(!one(
        "IpAddress",
        k,
        json!("10.0.0.0/8"),
        &[(k, "192.168.1.1")]
    ));
    assert!(one(
        "IpAddress",
        k,
        json!(["192.0.2.0/24", "203.0.113.7"]),
        &[(k, "203.0.113.7")]
    ));
    assert!(one(
        "IpAddress",
        k,
        json!("2001:db8::/32"),
        &[(k, "2001:db8:1::5")]
    ));
    assert!(!one(
        "IpAddress",
        k,
        json!("2001:db8::/32"),
        &[(k, "10.0.0.1")]
    ));
    assert!(!one(
        "IpAddress",
        k,
        json!("10.0.0.0/8"),
        &[(k, "not-an-ip")]
    ));
    assert!(one(
        "NotIpAddress",
        k,
        json!("10.0.0.0/8"),
        &[(k, "192.168.1.1")]
    ));
    assert!(!one(
        "NotIpAddress",
        k,
        json!("10.0.0.0/8"),
        &[(k, "10.1.1.1")]
    ));
    assert!(!none("IpAddress", k, json!("0.0.0.0/0")));
    assert!(none("NotIpAddress", k, json!("10.0.0.0/8")));
}

#[test]
fn arn_family() {
    let k = "aws:SourceArn";
    let role = "arn:aws:iam::111122223333:role/app";
    assert!(one("ArnEquals", k, json!(role), &[(k, role)]));
    assert!(one(
        "ArnLike",
        k,
        json!("arn:aws:iam::*:role/*"),
        &[(k, role)]
    ));
    assert!(one(
        "ArnEquals",
        k,
        json!("arn:aws:iam::111122223333:role/*"),
        &[(k, role)]
    ));
    assert!(!one(
        "ArnLike",
        k,
        json!("arn:aws:iam::*:user/*"),
        &[(k, role)]
    ));
    assert!(
        !one("ArnLike", k, json!("arn:aws:*"), &[(k, role)]),
        "a wildcard does not span ARN parts"
    );
    assert!(!one(
        "ArnLike",
        k,
        json!("arn:aws:iam::111122223333:role/APP"),
        &[(k, role)]
    ));
    assert!(one(
        "ArnNotEquals",
        k,
        json!("arn:aws:iam::111122223333:role/other"),
        &[(k, role)]
    ));
    assert!(!one(
        "ArnNotLike",
        k,
        json!("arn:aws:iam::111122223333:*"),
        &[(k, role)]
    ));
    assert!(one(
        "ArnNotLike",
        k,
        json!("arn:aws:iam::444455556666:*"),
        &[(k, role)]
    ));
    assert!(!none("ArnLike", k, json!("*")));
    assert!(none("ArnNotLike", k, json!("arn:aws:iam::*:role/*")));
}

#[test]
fn null_operator() {
    let k = "aws:TokenIssueTime";
    assert!(none("Null", k, json!("true")));
    assert!(!none("Null", k, json!("false")));
    assert!(one(
        "Null",
        k,
        json!("false"),
        &[(k, "2024-05-01T12:00:00Z")]
    ));
    assert!(!one("Null", k, json!(true), &[(k, "2024-05-01T12:00:00Z")]));
    assert!(
        multi("Null", "aws:TagKeys", json!("true"), &[]),
        "an empty set is null"
    );
    assert!(multi("Null", "aws:TagKeys", json!("false"), &["a"]));
}

#[test]
fn if_exists() {
    let k = "ec2:InstanceType";
    assert!(none("StringEqualsIfExists", k, json!("t3.micro")));
    assert!(one(
        "StringEqualsIfExists",
        k,
        json!("t3.micro"),
        &[(k, "t3.micro")]
    ));
    assert!(!one(
        "StringEqualsIfExists",
        k,
        json!("t3.micro"),
        &[(k, "m5.large")]
    ));
    assert!(none("NumericLessThanIfExists", "s3:max-keys", json!("10")));
    assert!(none(
        "ArnLikeIfExists",
        "aws:SourceArn",
        json!("arn:aws:s3:::b")
    ));
    assert!(none(
        "IpAddressIfExists",
        "aws:SourceIp",
        json!("10.0.0.0/8")
    ));
    assert!(none(
        "DateLessThanIfExists",
        "aws:CurrentTime",
        json!("2024-01-01")
    ));
}

#[test]
fn for_any_value() {
    let k = "aws:TagKeys";
    assert!(multi(
        "ForAnyValue:StringEquals",
        k,
        json!(["env", "team"]),
        &["team", "cost"]
    ));
    assert!(!multi(
        "ForAnyValue:StringEquals",
        k,
        json!(["env", "team"]),
        &["cost"]
    ));
    assert!(
        !multi("ForAnyValue:StringEquals", k, json!("env"), &[]),
        "an empty set matches nothing"
    );
    assert!(
        !none("ForAnyValue:StringEquals", k, json!("env")),
        "a missing key matches nothing"
    );
    assert!(none("ForAnyValue:StringEqualsIfExists", k, json!("env")));
    assert!(multi(
        "ForAnyValue:StringLike",
        k,
        json!("te*"),
        &["cost", "team"]
    ));
    // At least one request value is outside the list.
    assert!(multi(
        "ForAnyValue:StringNotEquals",
        k,
        json!(["env", "team"]),
        &["env", "cost"]
    ));
    assert!(!multi(
        "ForAnyValue:StringNotEquals",
        k,
        json!(["env", "team"]),
        &["env", "team"]
    ));
}

#[test]
fn for_all_values() {
    let k = "aws:TagKeys";
    assert!(multi(
        "ForAllValues:StringEquals",
        k,
        json!(["env", "team"]),
        &["team"]
    ));
    assert!(multi(
        "ForAllValues:StringEquals",
        k,
        json!(["env", "team"]),
        &["team", "env"]
    ));
    assert!(!multi(
        "ForAllValues:StringEquals",
        k,
        json!(["env", "team"]),
        &["team", "cost"]
    ));
    assert!(
        multi("ForAllValues:StringEquals", k, json!("env"), &[]),
        "vacuously true when empty"
    );
    assert!(
        none("ForAllValues:StringEquals", k, json!("env")),
        "vacuously true when missing"
    );
    assert!(multi(
        "ForAllValues:StringLike",
        k,
        json!(["e*", "t*"]),
        &["env", "team"]
    ));
    // Every request value is outside the list.
    assert!(multi(
        "ForAllValues:StringNotEquals",
        k,
        json!(["env"]),
        &["team", "cost"]
    ));
    assert!(!multi(
        "ForAllValues:StringNotEquals",
        k,
        json!(["env"]),
        &["team", "env"]
    ));
    assert!(multi(
        "ForAllValues:NumericLessThan",
        "x:sizes",
        json!("10"),
        &["1", "9"]
    ));
    assert!(!multi(
        "ForAllValues:NumericLessThan",
        "x:sizes",
        json!("10"),
        &["1", "19"]
    ));
}

#[test]
fn single_value_operators_on_sets() {
    // AWS documents no result for a single-valued operator over several values ("Single-valued
    // vs. multivalued context keys" says only that they need a set operator). In an Allow
    // (what `multi` evaluates) every value must satisfy the operator; a Deny takes any one
    // (tests/documented_rules.rs).
    let k = "aws:TagKeys";
    assert!(!multi("StringEquals", k, json!("env"), &["team", "env"]));
    assert!(multi(
        "StringEquals",
        k,
        json!(["env", "team"]),
        &["team", "env"]
    ));
    assert!(!multi("StringNotEquals", k, json!("env"), &["team", "env"]));
    assert!(multi("StringNotEquals", k, json!("x"), &["team", "env"]));
}

#[test]
fn several_keys_and_operators_are_anded() {
    let condition = json!({
        "StringEquals": {"aws:PrincipalTag/team": "blue", "aws:RequestedRegion": "eu-central-1"},
        "Bool": {"aws:SecureTransport": "true"}
    });
    let full = Context::new()
        .with("aws:PrincipalTag/team", "blue")
        .with("aws:RequestedRegion", "eu-central-1")
        .with("aws:SecureTransport", "true");
    assert!(holds(condition.clone(), full.clone()));
    assert!(!holds(
        condition.clone(),
        full.clone().with("aws:RequestedRegion", "us-east-1")
    ));
    assert!(!holds(condition, full.with("aws:SecureTransport", "false")));
}

#[test]
fn keys_are_case_insensitive_values_are_not() {
    let condition = json!({"StringEquals": {"AWS:PRINCIPALTAG/Team": "blue"}});
    assert!(holds(
        condition.clone(),
        Context::new().with("aws:principaltag/team", "blue")
    ));
    assert!(!holds(
        condition,
        Context::new().with("aws:principaltag/team", "BLUE")
    ));
}

#[test]
fn policy_variables_in_conditions() {
    let condition = json!({"StringLike": {"s3:prefix": ["home/${aws:username}/*", "shared/${aws:PrincipalTag/team, 'none'}/*"]}});
    let alice = Context::new().with("aws:username", "alice");
    assert!(holds(
        condition.clone(),
        alice.clone().with("s3:prefix", "home/alice/notes")
    ));
    assert!(!holds(
        condition.clone(),
        alice.clone().with("s3:prefix", "home/bob/notes")
    ));
    assert!(
        holds(
            condition.clone(),
            alice.clone().with("s3:prefix", "shared/none/x")
        ),
        "the default is used"
    );
    assert!(holds(
        condition,
        alice
            .with("aws:PrincipalTag/team", "blue")
            .with("s3:prefix", "shared/blue/x")
    ));
}

#[test]
fn an_unresolvable_variable_fails_the_condition_even_when_negated() {
    let k = "s3:prefix";
    let ctx = Context::new().with(k, "home/bob");
    assert!(!holds(
        json!({"StringNotEquals": {k: "home/${aws:username}"}}),
        ctx.clone()
    ));
    assert!(!holds(
        json!({"StringEquals": {k: "home/${aws:username}"}}),
        ctx.clone()
    ));
    // With a resolvable value left, the condition is evaluated with that value.
    assert!(holds(
        json!({"StringEquals": {k: ["home/${aws:username}", "home/bob"]}}),
        ctx
    ));
}

#[test]
fn version_2008_treats_variables_as_text() {
    let doc = json!({
        "Version": "2008-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"StringEquals": {"s3:prefix": "${aws:username}"}}}]
    });
    let policy = Policy::parse(&doc.to_string()).unwrap();
    let literal = Request::new("s3:GetObject").context(
        Context::new()
            .with("s3:prefix", "${aws:username}")
            .with("aws:username", "alice"),
    );
    assert_eq!(policy.evaluate(&literal), PolicyOutcome::Allow);
}

#[test]
fn explain_names_the_failing_key() {
    let policy = with_condition(
        json!({"StringEquals": {"aws:PrincipalTag/team": "blue"}, "Bool": {"aws:SecureTransport": "true"}}),
    );
    let request = Request::new("s3:GetObject").context(
        Context::new()
            .with("aws:PrincipalTag/team", "red")
            .with("aws:SecureTransport", "true"),
    );
    let trace = policy.explain(&request, "identity[0]");
    assert_eq!(trace.outcome, PolicyOutcome::NotApplicable);
    let conditions = &trace.statements[0].conditions;
    assert_eq!(
        conditions.len(),
        2,
        "every condition is traced, not just the first failure"
    );
    let failed: Vec<_> = conditions.iter().filter(|c| !c.result).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key, "aws:PrincipalTag/team");
    assert_eq!(failed[0].request_values, Some(vec!["red".to_owned()]));
    assert_eq!(failed[0].policy_values, vec!["blue".to_owned()]);
}
