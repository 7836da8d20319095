//! Parsing and per-type validation, with IAM's MalformedPolicyDocument messages.

use podiam_policy::{Policy, PolicyError, PolicyType, ProblemKind, parse_as};
use serde_json::{Value, json};

fn messages(doc: &str, kind: PolicyType) -> Vec<String> {
    match parse_as(doc, kind) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(|p| p.message.clone()).collect(),
    }
}

fn check(doc: Value, kind: PolicyType) -> Vec<String> {
    messages(&doc.to_string(), kind)
}

fn identity(statement: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

const SYNTAX: &str = "Syntax errors in policy.";

#[test]
fn keeps_the_text_byte_for_byte() {
    let text = "{ \"Version\":\"2012-10-17\",\n\t\"Statement\": {\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"} }  ";
    let policy = Policy::parse(text).unwrap();
    assert_eq!(policy.text(), text);
    assert_eq!(
        policy.statements().len(),
        1,
        "Statement may be a single object"
    );
}

#[test]
fn structural_problems_are_syntax_errors() {
    for doc in [
        "not json",
        "[]",
        r#"{"Version": "2012-10-17"}"#,
        r#"{"Version": "2012-10-17", "Statement": []}"#,
        r#"{"Version": "2012-10-17", "Statement": "x"}"#,
        r#"{"Version": "2012-10-18", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statment": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Extra": 1}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Action": "s3:*", "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Permit", "Action": "s3:*", "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:Get*", "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": 5, "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["s3:*", 5], "Resource": "*"}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualz": {"a:b": "c"}}}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": "c"}}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"a:b": {"x": 1}}}}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"NullIfExists": {"a:b": "true"}}}}"#,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#,
    ] {
        let err = Policy::parse(doc).expect_err(doc);
        assert_eq!(err.iam_message(), SYNTAX, "{doc}");
        assert!(
            err.problems()[0].detail.is_some(),
            "a person also gets the detail: {doc}"
        );
    }
}

#[test]
fn every_problem_is_reported() {
    let doc = r#"{"Version": "2012-10-17", "Bogus": 1, "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Extra": 1},
        {"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}"#;
    let err = Policy::parse(doc).unwrap_err();
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["Bogus", "Statement[0].Extra", "Statement[1].Effect"]
    );
}

#[test]
fn lower_case_effect_fails_legacy_parsing() {
    let doc = identity(json!({"Effect": "allow", "Action": "s3:*", "Resource": "*"}));
    assert_eq!(
        check(doc, PolicyType::Identity),
        ["The policy failed legacy parsing"]
    );
}

#[test]
fn size_and_depth_limits() {
    let huge = format!(
        "{{\"Version\": \"2012-10-17\", \"Id\": \"{}\", \"Statement\": []}}",
        "x".repeat(200_000)
    );
    assert!(matches!(
        Policy::parse(&huge),
        Err(PolicyError::TooLarge { .. })
    ));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(Policy::parse(&deep).unwrap_err().iam_message(), SYNTAX);

    // IAM's quotas count characters other than whitespace.
    let actions: Vec<String> = (0..600).map(|i| format!("s3:Action{i:04}")).collect();
    let big = identity(json!({"Effect": "Allow", "Action": actions, "Resource": "*"}));
    let err = parse_as(&big.to_string(), PolicyType::Identity).unwrap_err();
    assert_eq!(err.problems()[0].kind, ProblemKind::TooLarge);
    assert_eq!(
        err.iam_message(),
        "Cannot exceed quota for PolicySize: 6144"
    );
    let padded = format!(
        "{}{}",
        " ".repeat(10_000),
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}})
    );
    assert!(
        parse_as(&padded, PolicyType::Trust).is_ok(),
        "whitespace does not count"
    );
    let long_trust = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": (0..200).map(|i| format!("arn:aws:iam::111122223333:role/r{i}")).collect::<Vec<_>>()}, "Action": "sts:AssumeRole"}});
    assert_eq!(
        check(long_trust, PolicyType::Trust),
        ["Cannot exceed quota for ACLSizePerRole: 2048"]
    );
}

#[test]
fn identity_policies() {
    let ok = identity(
        json!({"Sid": "Read1", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
        "Resource": "arn:aws:dynamodb:eu-central-1:111122223333:table/carts"}),
    );
    assert!(check(ok, PolicyType::Identity).is_empty());

    let with_principal =
        identity(json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}));
    assert_eq!(
        check(with_principal, PolicyType::Identity),
        ["Policy document should not specify a principal."]
    );
    let not_principal = identity(
        json!({"Effect": "Deny", "NotPrincipal": {"AWS": "111122223333"}, "Action": "s3:*", "Resource": "*"}),
    );
    assert_eq!(
        check(not_principal, PolicyType::Boundary),
        ["Policy document should not specify a principal."]
    );

    let no_action = identity(json!({"Effect": "Allow", "Resource": "*"}));
    assert_eq!(
        check(no_action, PolicyType::Identity),
        ["Policy statement must contain actions."]
    );
    let empty_action = identity(json!({"Effect": "Allow", "Action": [], "Resource": "*"}));
    assert_eq!(
        check(empty_action, PolicyType::Identity),
        ["Policy statement must contain actions."]
    );
    let no_resource = identity(json!({"Effect": "Allow", "Action": "s3:*"}));
    assert_eq!(
        check(no_resource, PolicyType::Identity),
        ["Policy statement must contain resources."]
    );

    let old = json!({"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}});
    assert_eq!(
        check(old.clone(), PolicyType::Identity),
        ["Policy document must be version 2012-10-17 or greater."]
    );
    assert!(
        check(old, PolicyType::Session).is_empty(),
        "session policies accept 2008-10-17"
    );
    let unversioned = json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}});
    assert_eq!(
        check(unversioned, PolicyType::Boundary),
        ["Policy document must be version 2012-10-17 or greater."]
    );

    let bad_sid = identity(
        json!({"Sid": "read carts", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
    );
    assert_eq!(
        check(bad_sid, PolicyType::Identity),
        [
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
        ]
    );
    let dup = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Sid": "A", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}]});
    assert_eq!(
        check(dup, PolicyType::Identity),
        ["Statement IDs (SID) in a single policy must be unique."]
    );
}

#[test]
fn action_format() {
    let with = |action: &str| {
        check(
            identity(json!({"Effect": "Allow", "Action": action, "Resource": "*"})),
            PolicyType::Identity,
        )
    };
    assert!(with("*").is_empty());
    assert!(with("s3:*").is_empty());
    assert!(with("eks-auth:AssumeRoleForPodIdentity").is_empty());
    assert_eq!(
        with("GetItem"),
        ["Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."]
    );
    assert_eq!(
        with("s3:Get:Object"),
        ["Actions/Condition can contain only one colon."]
    );
    assert_eq!(with("s3 bucket:Get"), ["Vendor s3 bucket is not valid"]);
    assert_eq!(with(":Get"), ["Vendor  is not valid"]);
}

#[test]
fn resource_format() {
    let with = |resource: &str| {
        check(
            identity(json!({"Effect": "Allow", "Action": "s3:*", "Resource": resource})),
            PolicyType::Identity,
        )
    };
    assert!(with("arn:aws:s3:::bucket/*").is_empty());
    assert!(with("arn:aws:dynamodb:*:*:table/*").is_empty());
    assert!(with("arn:aws-cn:s3:::bucket").is_empty());
    assert!(with("arn:aws:iam::111122223333:role/*").is_empty());
    assert_eq!(
        with("bucket"),
        ["Resource bucket must be in ARN format or \"*\"."]
    );
    assert_eq!(
        with("arn:aws:s3"),
        ["Resource arn:aws:s3 must be in ARN format or \"*\"."]
    );
    assert_eq!(
        with("arn:aws:s3::bucket"),
        ["Resource arn:aws:s3::bucket must be in ARN format or \"*\"."]
    );
    assert_eq!(
        with("arn:awz:s3:::bucket"),
        ["Partition \"awz\" is not valid for resource \"arn:awz:s3:::bucket\"."]
    );
    assert_eq!(
        with("arn:aws:*:::bucket"),
        ["Resource vendor must be fully qualified and cannot contain regexes."]
    );
    assert_eq!(
        with("arn:aws:iam:us-east-1:111122223333:role/x"),
        [
            "IAM resource arn:aws:iam:us-east-1:111122223333:role/x cannot contain region information."
        ]
    );
    assert_eq!(
        with("arn:aws:s3:us-east-1::bucket"),
        ["Resource arn:aws:s3:us-east-1::bucket can not contain region information."]
    );
    assert_eq!(with("arn:aws:iam::111122223333:roles/x").len(), 1);
    assert!(
        with("arn:aws:iam::111122223333:roles/x")[0]
            .starts_with("IAM resource path must either be \"*\" or start with user/")
    );
}

#[test]
fn trust_policies() {
    let irsa = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::637423329338:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C"},
        "Action": ["sts:TagSession", "sts:AssumeRoleWithWebIdentity"],
        "Condition": {"StringEquals": {"oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C:sub": "system:serviceaccount:carts:carts"}}}]});
    assert!(check(irsa, PolicyType::Trust).is_empty());
    let pia = include_str!("../../../examples/policies/pod-identity-trust.json");
    assert!(messages(pia, PolicyType::Trust).is_empty());
    let cross = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": ["111122223333", "arn:aws:iam::444455556666:role/ci"]}, "Action": "sts:AssumeRole"}});
    assert!(check(cross, PolicyType::Trust).is_empty());

    let no_principal = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}});
    assert_eq!(
        check(no_principal, PolicyType::Trust),
        ["Missing required field Principal"]
    );
    let with_resource = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole", "Resource": "*"}});
    assert_eq!(
        check(with_resource, PolicyType::Trust),
        ["Has prohibited field Resource"]
    );
    let with_not_resource = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole", "NotResource": "*"}});
    assert_eq!(
        check(with_not_resource, PolicyType::Trust),
        ["Has prohibited field NotResource"]
    );
    let wrong_action = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "s3:GetObject"}});
    assert_eq!(
        check(wrong_action, PolicyType::Trust),
        ["AssumeRole policy may only specify STS AssumeRole actions."]
    );

    let principal = |p: Value| {
        check(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"}}),
            PolicyType::Trust,
        )
    };
    assert_eq!(
        principal(json!({"AWS": "arn:aws:iam::111122223333:role/*"})),
        ["Invalid principal in policy: \"AWS\":\"arn:aws:iam::111122223333:role/*\""]
    );
    assert_eq!(
        principal(json!({"AWS": "bob"})),
        ["Invalid principal in policy: \"AWS\":\"bob\""]
    );
    assert_eq!(
        principal(json!({"Service": "*"})),
        ["Invalid principal in policy: \"Service\":\"*\""]
    );
    assert_eq!(
        principal(json!({"Federated": "arn:aws:iam::111122223333:role/x"})).len(),
        1
    );
    assert_eq!(
        principal(json!({"Aws": "111122223333"})),
        ["Invalid principal in policy: \"Aws\""]
    );
    assert_eq!(
        principal(json!("bob")),
        ["Invalid principal in policy: \"bob\""]
    );
    assert_eq!(principal(json!({})), ["Invalid principal in policy: {}"]);
    assert!(principal(json!({"Federated": "accounts.google.com"})).is_empty());
    assert!(principal(json!({"AWS": "*"})).is_empty());
}

#[test]
fn resource_and_scp_policies() {
    let bucket = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
    assert!(check(bucket, PolicyType::Resource).is_empty());
    let no_principal = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
    assert_eq!(
        check(no_principal.clone(), PolicyType::Resource),
        ["Missing required field Principal"]
    );
    assert!(check(no_principal, PolicyType::Scp).is_empty());
    let scp_principal = json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}});
    assert_eq!(
        check(scp_principal, PolicyType::Scp),
        [
            "The provided policy document does not meet the requirements of the specified policy type."
        ]
    );
    let scp_no_resource =
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:*"}});
    assert!(check(scp_no_resource, PolicyType::Scp).is_empty());
}

#[test]
fn condition_values_must_fit_their_operator() {
    let with = |op: &str, value: &str| {
        check(
            identity(
                json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {op: {"aws:k": value}}}),
            ),
            PolicyType::Identity,
        )
    };
    assert!(with("DateLessThan", "2024-05-01T00:00:00Z").is_empty());
    assert_eq!(
        with("DateLessThan", "tomorrow"),
        ["The policy failed legacy parsing"]
    );
    assert_eq!(with("NumericLessThan", "ten"), [SYNTAX]);
    assert_eq!(with("IpAddress", "10.0.0.0/33"), [SYNTAX]);
    assert_eq!(with("Bool", "yes"), [SYNTAX]);
    assert!(with("StringLike", "anything*").is_empty());
}

#[test]
fn policy_types_parse_from_their_names() {
    for kind in PolicyType::ALL {
        assert_eq!(kind.name().parse::<PolicyType>().unwrap(), kind);
    }
    assert!("managed".parse::<PolicyType>().is_err());
}

/// "AWS JSON policy elements: NotPrincipal": NotPrincipal only in resource-based policies, and
/// only with `"Effect": "Deny"`. The fail-open case of issue 16: a trust policy that allows
/// everyone but bob is refused, so bob can never be the one principal it names and lets in.
#[test]
fn not_principal_only_in_resource_policies_and_only_to_deny() {
    let bob = "arn:aws:iam::111122223333:user/bob";
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "NotPrincipal": {"AWS": bob}, "Action": "sts:AssumeRole"}]});
    assert_eq!(
        check(trust, PolicyType::Trust),
        ["Has prohibited field NotPrincipal"]
    );
    let deny_trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": bob}, "Action": "sts:AssumeRole"}]});
    assert_eq!(
        check(deny_trust, PolicyType::Trust),
        ["Has prohibited field NotPrincipal"]
    );
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "NotPrincipal": {"AWS": bob}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
    assert_eq!(
        check(allow, PolicyType::Resource),
        [
            "NotPrincipal is supported only with Effect Deny; use Principal with a Condition instead."
        ]
    );
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "NotPrincipal": {"AWS": bob}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
    assert!(check(deny.clone(), PolicyType::Resource).is_empty());
    for kind in [
        PolicyType::Identity,
        PolicyType::Boundary,
        PolicyType::Session,
        PolicyType::Scp,
        PolicyType::Rcp,
    ] {
        assert!(
            !check(deny.clone(), kind).is_empty(),
            "NotPrincipal accepted in a {kind} policy"
        );
    }
}

/// "Resource control policies": an RCP names every principal (`"Principal": "*"`) and
/// narrows with conditions.
#[test]
fn rcps_name_every_principal() {
    let rcp = |principal: Value| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": principal,
            "Action": "s3:*", "Resource": "*",
            "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-abc"}}}]})
    };
    assert!(check(rcp(json!("*")), PolicyType::Rcp).is_empty());
    assert!(check(rcp(json!({"AWS": "*"})), PolicyType::Rcp).is_empty());
    assert!(!check(rcp(json!({"AWS": "111122223333"})), PolicyType::Rcp).is_empty());
    let none = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Action": "s3:*", "Resource": "*"}]});
    assert_eq!(
        check(none, PolicyType::Rcp),
        ["Missing required field Principal"]
    );
}

/// "IAM JSON policy elements: Condition": keys are `vendor:name`; IAM refuses one without its
/// vendor. An OIDC provider's keys (`host/path:sub`) and tag keys with colons are valid.
#[test]
fn condition_keys_need_a_vendor() {
    let with = |key: &str| {
        check(
            identity(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                "Condition": {"StringEquals": {key: "x"}}})),
            PolicyType::Identity,
        )
    };
    for bad in ["username", ":username", "aws:", "PrincipalTag/team"] {
        assert_eq!(
            with(bad),
            ["Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."],
            "{bad}"
        );
    }
    for good in [
        "aws:username",
        "aws:ResourceTag/aws:cloudformation:stack-name",
        "oidc.example.com/id/ABC:sub",
    ] {
        assert!(with(good).is_empty(), "{good}");
    }
}
