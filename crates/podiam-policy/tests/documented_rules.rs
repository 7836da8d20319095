//! AWS's documented evaluation rules, one named test per rule, each citing the IAM User Guide
//! page and section it comes from. (Issue 16 works through the pages; these are the rules the
//! engine got wrong or left untested before.)

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on broken fixtures"
)]

use podiam_policy::{Decision, Policy, PolicySet, Principal, Request};
use proptest::prelude::*;
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const TABLE: &str = "arn:aws:dynamodb:eu-central-1:111122223333:table/carts";
const ROLE: &str = "arn:aws:iam::111122223333:role/carts";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/carts/pod-1";
const USER: &str = "arn:aws:iam::111122223333:user/alice";

fn policy(statements: Value) -> Policy {
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    Policy::parse(&doc.to_string()).expect("test policy parses")
}

fn allow(action: &str, resource: &str) -> Policy {
    policy(json!([{"Effect": "Allow", "Action": action, "Resource": resource}]))
}

fn request(principal: &str, action: &str) -> Request {
    Request::new(action)
        .principal(principal.parse().unwrap())
        .resource(TABLE)
}

fn decide(set: &PolicySet<'_>, request: &Request) -> Decision {
    let fast = set.evaluate(request);
    assert_eq!(fast, set.explain(request).decision);
    fast
}

/// "Resource control policies (RCPs)", *RCP evaluation*: `RCPFullAWSAccess` is attached to the
/// root, every OU and every account and cannot be detached, so a level without an RCP of the
/// user's own allows; only an explicit deny in an RCP refuses.
#[test]
fn rcp_levels_without_policies_of_their_own_allow() {
    let identity = allow("dynamodb:*", "*");
    let set = PolicySet {
        identity: vec![&identity],
        resource_control: vec![vec![], vec![], vec![]],
        ..Default::default()
    };
    assert_eq!(
        decide(&set, &request(USER, "dynamodb:GetItem")),
        Decision::Allow
    );
    let deny = policy(
        json!([{"Effect": "Deny", "Principal": "*", "Action": "dynamodb:*",
                               "Resource": "*"}]),
    );
    let set = PolicySet {
        identity: vec![&identity],
        resource_control: vec![vec![], vec![&deny]],
        ..Default::default()
    };
    assert_eq!(
        decide(&set, &request(USER, "dynamodb:GetItem")),
        Decision::ExplicitDeny
    );
}

/// "Service control policies (SCPs)", *SCP effects on permissions*: SCPs have no implicit
/// full-access policy; every level must allow.
#[test]
fn scp_levels_without_an_allow_deny() {
    let identity = allow("dynamodb:*", "*");
    let full = policy(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]));
    let set = PolicySet {
        identity: vec![&identity],
        service_control: vec![vec![&full], vec![]],
        ..Default::default()
    };
    assert_eq!(
        decide(&set, &request(USER, "dynamodb:GetItem")),
        Decision::ImplicitDeny
    );
}

/// "Service control policies (SCPs)", *Tasks and entities not restricted by SCPs*: SCPs apply
/// to the principals of member accounts; a request without a principal is not subject to them.
/// RCPs still apply to it ("Resource control policies", *RCP effects on permissions*).
#[test]
fn anonymous_requests_skip_scps_but_not_rcps() {
    let public = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": "*"}]),
    );
    let deny_scp = policy(json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}]));
    let anonymous = Request::new("s3:GetObject")
        .principal(Principal::Anonymous)
        .resource("arn:aws:s3:::bucket/key");
    let set = PolicySet {
        resource: Some(&public),
        service_control: vec![vec![&deny_scp]],
        ..Default::default()
    };
    assert_eq!(decide(&set, &anonymous), Decision::Allow);
    let deny_rcp = policy(
        json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                  "Resource": "*"}]),
    );
    let set = PolicySet {
        resource: Some(&public),
        service_control: vec![vec![&deny_scp]],
        resource_control: vec![vec![&deny_rcp]],
        ..Default::default()
    };
    assert_eq!(decide(&set, &anonymous), Decision::ExplicitDeny);
}

/// "GetCallerIdentity" (STS API reference): no permissions are required, and when an
/// administrator adds a policy that explicitly denies it, the caller can still call it.
#[test]
fn get_caller_identity_needs_no_permission_and_cannot_be_denied() {
    let deny_all = policy(json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}]));
    let set = PolicySet {
        identity: vec![&deny_all],
        permissions_boundary: Some(&deny_all),
        service_control: vec![vec![&deny_all]],
        ..Default::default()
    };
    let mut who = request(SESSION, "sts:GetCallerIdentity");
    assert_eq!(decide(&set, &who), Decision::Allow);
    who = request(SESSION, "STS:getcalleridentity");
    assert_eq!(decide(&set, &who), Decision::Allow);
    assert_eq!(
        decide(
            &PolicySet::default(),
            &request(USER, "sts:GetCallerIdentity")
        ),
        Decision::Allow
    );
}

/// "Policy evaluation logic", *Identity-based policies with resource-based policies* and
/// *Permissions boundaries*: in one account, a resource-based policy that names an IAM user
/// ARN or a role session ARN grants even when the boundary or a session policy implicitly
/// denies; one that names the role ARN or the account does not. An explicit deny still wins.
#[test]
fn same_account_resource_policy_by_name_overrides_implicit_boundary_and_session_denies() {
    let boundary = allow("s3:*", "*");
    let session = allow("s3:*", "*");
    for (named, principal, allowed) in [
        (USER, USER, true),
        (SESSION, SESSION, true),
        (ROLE, SESSION, false),
        (ACCOUNT, SESSION, false),
    ] {
        let resource = policy(json!([{"Effect": "Allow", "Principal": {"AWS": named},
                                      "Action": "dynamodb:GetItem", "Resource": TABLE}]));
        let with_boundary = PolicySet {
            resource: Some(&resource),
            permissions_boundary: Some(&boundary),
            ..Default::default()
        };
        let with_session = PolicySet {
            resource: Some(&resource),
            session: vec![&session],
            ..Default::default()
        };
        let expected = if allowed {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        };
        let r = request(principal, "dynamodb:GetItem");
        assert_eq!(
            decide(&with_boundary, &r),
            expected,
            "{named} with a boundary"
        );
        if principal == SESSION {
            assert_eq!(
                decide(&with_session, &r),
                expected,
                "{named} with a session policy"
            );
        }
        let deny = policy(json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}]));
        let denied = PolicySet {
            resource: Some(&resource),
            permissions_boundary: Some(&deny),
            ..Default::default()
        };
        assert_eq!(decide(&denied, &r), Decision::ExplicitDeny);
    }
}

/// "AWS JSON policy elements: NotPrincipal", *NotPrincipal with Deny*: the principals the
/// statement lists are exempt only when every form of them is listed (the session, its role,
/// the account); and a principal that has a permissions boundary is always denied by a
/// `NotPrincipal` deny, whatever it lists.
#[test]
fn not_principal_deny_and_permissions_boundaries() {
    let resource = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": SESSION}, "Action": "dynamodb:*", "Resource": TABLE},
        {"Effect": "Deny", "NotPrincipal": {"AWS": [SESSION, ROLE, format!("arn:aws:iam::{ACCOUNT}:root")]},
         "Action": "dynamodb:*", "Resource": TABLE}
    ]));
    let r = request(SESSION, "dynamodb:GetItem");
    let plain = PolicySet {
        resource: Some(&resource),
        ..Default::default()
    };
    assert_eq!(decide(&plain, &r), Decision::Allow);
    let boundary = allow("dynamodb:*", "*");
    let bounded = PolicySet {
        resource: Some(&resource),
        permissions_boundary: Some(&boundary),
        ..Default::default()
    };
    assert_eq!(decide(&bounded, &r), Decision::ExplicitDeny);
    // Only the session listed, not its role and account: the session is not exempt.
    let partial = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": SESSION}, "Action": "dynamodb:*", "Resource": TABLE},
        {"Effect": "Deny", "NotPrincipal": {"AWS": SESSION}, "Action": "dynamodb:*", "Resource": TABLE}
    ]));
    let set = PolicySet {
        resource: Some(&partial),
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::ExplicitDeny);
}

fn arbitrary_statement() -> impl Strategy<Value = Value> {
    let effect = prop_oneof![Just("Allow"), Just("Deny")];
    let action = prop_oneof![
        Just("dynamodb:GetItem"),
        Just("dynamodb:*"),
        Just("s3:*"),
        Just("*")
    ];
    let resource = prop_oneof![Just(TABLE), Just("*"), Just("arn:aws:s3:::b/*")];
    let condition = prop_oneof![
        Just(json!({})),
        Just(json!({"StringEquals": {"aws:PrincipalTag/team": "a"}})),
        Just(json!({"Bool": {"aws:SecureTransport": "true"}})),
    ];
    (effect, action, resource, condition)
        .prop_map(|(e, a, r, c)| json!({"Effect": e, "Action": a, "Resource": r, "Condition": c}))
}

fn arbitrary_request() -> impl Strategy<Value = Request> {
    let principal = prop_oneof![Just(USER), Just(SESSION)];
    let action = prop_oneof![Just("dynamodb:GetItem"), Just("s3:GetObject")];
    let tag = prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))];
    (principal, action, tag).prop_map(|(p, a, tag)| {
        let mut r = request(p, a);
        if let Some(tag) = tag {
            r.context_mut().insert("aws:PrincipalTag/team", tag);
        }
        r
    })
}

proptest! {
    /// "Policy evaluation logic": an explicit deny anywhere overrides any allow, so adding a
    /// deny statement never turns a deny into an allow.
    #[test]
    fn adding_an_explicit_deny_never_allows_more(
        statements in proptest::collection::vec(arbitrary_statement(), 1..5),
        extra in arbitrary_statement(),
        r in arbitrary_request(),
    ) {
        let before = policy(Value::Array(statements.clone()));
        let mut denied = extra;
        denied["Effect"] = json!("Deny");
        let mut more = statements;
        more.push(denied);
        let after = policy(Value::Array(more));
        let was = decide(&PolicySet { identity: vec![&before], ..Default::default() }, &r);
        let now = decide(&PolicySet { identity: vec![&after], ..Default::default() }, &r);
        prop_assert!(was == Decision::Allow || now != Decision::Allow);
    }

    /// Removing an allow statement never turns a deny into an allow.
    #[test]
    fn removing_an_allow_never_allows_more(
        statements in proptest::collection::vec(arbitrary_statement(), 1..6),
        index in 0..6_usize,
        r in arbitrary_request(),
    ) {
        let full = policy(Value::Array(statements.clone()));
        let mut fewer = statements.clone();
        let i = index % fewer.len();
        if fewer[i]["Effect"] == "Allow" {
            fewer.remove(i);
        }
        let fewer = if fewer.is_empty() { json!([]) } else { Value::Array(fewer) };
        let less = Policy::parse(&json!({"Version": "2012-10-17", "Statement": fewer}).to_string());
        prop_assume!(less.is_ok());
        let less = less.unwrap();
        let was = decide(&PolicySet { identity: vec![&full], ..Default::default() }, &r);
        let now = decide(&PolicySet { identity: vec![&less], ..Default::default() }, &r);
        prop_assert!(was == Decision::Allow || now != Decision::Allow);
    }

    /// A statement that does not apply (its action never matches) never changes the decision.
    #[test]
    fn a_statement_that_does_not_apply_changes_nothing(
        statements in proptest::collection::vec(arbitrary_statement(), 1..5),
        extra in arbitrary_statement(),
        r in arbitrary_request(),
    ) {
        let before = policy(Value::Array(statements.clone()));
        let mut inert = extra;
        inert["Action"] = json!("nothing:Matches");
        let mut more = statements;
        more.push(inert);
        let after = policy(Value::Array(more));
        prop_assert_eq!(
            decide(&PolicySet { identity: vec![&before], ..Default::default() }, &r),
            decide(&PolicySet { identity: vec![&after], ..Default::default() }, &r)
        );
    }
}
