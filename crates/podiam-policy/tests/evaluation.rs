//! The evaluation flow: how each policy type affects the decision.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers fail loudly on broken fixtures"
)]

use podiam_policy::{Decision, Policy, PolicySet, Principal, Request};
use proptest::prelude::*;
use serde_json::{Value, json};

fn policy(statements: Value) -> Policy {
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    Policy::parse(&doc.to_string()).expect("test policy parses")
}

fn allow(action: &str, resource: &str) -> Policy {
    policy(json!([{"Effect": "Allow", "Action": action, "Resource": resource}]))
}

fn deny(action: &str, resource: &str) -> Policy {
    policy(json!([{"Effect": "Deny", "Action": action, "Resource": resource}]))
}

fn grant_to(principal: Value, action: &str, resource: &str) -> Policy {
    policy(
        json!([{"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource}]),
    )
}

const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const TABLE: &str = "arn:aws:dynamodb:eu-central-1:111122223333:table/carts";
const ROLE: &str = "arn:aws:iam::111122223333:role/carts";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/carts/pod-1";
const USER: &str = "arn:aws:iam::111122223333:user/alice";
const OTHER_SESSION: &str = "arn:aws:sts::444455556666:assumed-role/reader/s";

fn get_item(principal: &str) -> Request {
    Request::new("dynamodb:GetItem")
        .principal(principal.parse().unwrap())
        .resource(TABLE)
}

fn decide(set: &PolicySet<'_>, request: &Request) -> Decision {
    let fast = set.evaluate(request);
    let explained = set.explain(request);
    assert_eq!(
        fast, explained.decision,
        "explain and evaluate disagree: {}",
        explained.reason
    );
    fast
}

#[test]
fn identity_policies() {
    let a = allow("dynamodb:*", TABLE);
    let d = deny("dynamodb:GetItem", "*");
    let other = allow("s3:*", "*");
    let r = get_item(SESSION);
    assert_eq!(
        decide(
            &PolicySet {
                identity: vec![&a],
                ..Default::default()
            },
            &r
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &PolicySet {
                identity: vec![&other],
                ..Default::default()
            },
            &r
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(decide(&PolicySet::default(), &r), Decision::ImplicitDeny);
    assert_eq!(
        decide(
            &PolicySet {
                identity: vec![&a, &d],
                ..Default::default()
            },
            &r
        ),
        Decision::ExplicitDeny
    );
    let explained = PolicySet {
        identity: vec![&a, &d],
        ..Default::default()
    }
    .explain(&r);
    assert!(
        explained.reason.contains("explicit Deny"),
        "{}",
        explained.reason
    );
}

#[test]
fn actions_are_case_insensitive_resources_are_not() {
    let a = allow("DynamoDB:getitem", TABLE);
    let set = PolicySet {
        identity: vec![&a],
        ..Default::default()
    };
    assert_eq!(decide(&set, &get_item(SESSION)), Decision::Allow);
    let upper = allow("dynamodb:GetItem", &TABLE.to_uppercase());
    let set = PolicySet {
        identity: vec![&upper],
        ..Default::default()
    };
    assert_eq!(decide(&set, &get_item(SESSION)), Decision::ImplicitDeny);
}

#[test]
fn not_action_and_not_resource() {
    let everything_but_delete =
        policy(json!([{"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": "*"}]));
    let set = PolicySet {
        identity: vec![&everything_but_delete],
        ..Default::default()
    };
    assert_eq!(decide(&set, &get_item(SESSION)), Decision::Allow);
    let delete = Request::new("dynamodb:DeleteTable")
        .principal(SESSION.parse().unwrap())
        .resource(TABLE);
    assert_eq!(decide(&set, &delete), Decision::ImplicitDeny);

    let not_carts =
        policy(json!([{"Effect": "Allow", "Action": "dynamodb:*", "NotResource": TABLE}]));
    let set = PolicySet {
        identity: vec![&not_carts],
        ..Default::default()
    };
    assert_eq!(decide(&set, &get_item(SESSION)), Decision::ImplicitDeny);
    let orders = Request::new("dynamodb:GetItem")
        .resource("arn:aws:dynamodb:eu-central-1:111122223333:table/orders");
    assert_eq!(decide(&set, &orders), Decision::Allow);
}

#[test]
fn resource_variables() {
    let home = policy(
        json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username}/*"}]),
    );
    let set = PolicySet {
        identity: vec![&home],
        ..Default::default()
    };
    let mut own = Request::new("s3:GetObject")
        .principal(USER.parse().unwrap())
        .resource("arn:aws:s3:::home/alice/notes");
    own.context_mut().insert("aws:username", "alice");
    assert_eq!(decide(&set, &own), Decision::Allow);
    let mut other = Request::new("s3:GetObject")
        .principal(USER.parse().unwrap())
        .resource("arn:aws:s3:::home/bob/notes");
    other.context_mut().insert("aws:username", "alice");
    assert_eq!(decide(&set, &other), Decision::ImplicitDeny);
    // Without aws:username the statement cannot apply.
    let anonymous = Request::new("s3:GetObject").resource("arn:aws:s3:::home/alice/notes");
    assert_eq!(decide(&set, &anonymous), Decision::ImplicitDeny);
}

#[test]
fn permissions_boundary_limits_identity_policies() {
    let a = allow("dynamodb:*", "*");
    let reads = allow("dynamodb:Get*", "*");
    let writes = allow("dynamodb:Put*", "*");
    let boundary_deny = deny("dynamodb:GetItem", "*");
    let r = get_item(SESSION);
    let with = |b: &Policy| {
        decide(
            &PolicySet {
                identity: vec![&a],
                permissions_boundary: Some(b),
                ..Default::default()
            },
            &r,
        )
    };
    assert_eq!(with(&reads), Decision::Allow);
    assert_eq!(with(&writes), Decision::ImplicitDeny);
    assert_eq!(with(&boundary_deny), Decision::ExplicitDeny);
    // A boundary alone grants nothing.
    let only = PolicySet {
        permissions_boundary: Some(&reads),
        ..Default::default()
    };
    assert_eq!(decide(&only, &r), Decision::ImplicitDeny);
}

#[test]
fn session_policies_limit_the_role() {
    let a = allow("dynamodb:*", "*");
    let reads = allow("dynamodb:Get*", "*");
    let writes = allow("dynamodb:Put*", "*");
    let r = get_item(SESSION);
    let with = |s: &[&Policy]| {
        decide(
            &PolicySet {
                identity: vec![&a],
                session: s.to_vec(),
                ..Default::default()
            },
            &r,
        )
    };
    assert_eq!(with(&[&reads]), Decision::Allow);
    assert_eq!(with(&[&writes]), Decision::ImplicitDeny);
    assert_eq!(
        with(&[&writes, &reads]),
        Decision::Allow,
        "any session policy may allow"
    );
    let only = PolicySet {
        session: vec![&reads],
        ..Default::default()
    };
    assert_eq!(
        decide(&only, &r),
        Decision::ImplicitDeny,
        "a session policy alone grants nothing"
    );
}

#[test]
fn same_account_resource_policy_naming_the_requester_allows_alone() {
    let boundary = allow("s3:*", "*");
    let session = allow("s3:*", "*");
    for (principal, requester) in [(USER, USER), (SESSION, SESSION)] {
        let rp = grant_to(json!({"AWS": principal}), "dynamodb:GetItem", TABLE);
        let r = get_item(requester);
        assert_eq!(
            decide(
                &PolicySet {
                    resource: Some(&rp),
                    ..Default::default()
                },
                &r
            ),
            Decision::Allow
        );
        // Not limited by an implicit deny in the boundary or the session policy.
        let set = PolicySet {
            resource: Some(&rp),
            permissions_boundary: Some(&boundary),
            session: vec![&session],
            ..Default::default()
        };
        assert_eq!(decide(&set, &r), Decision::Allow, "{principal}");
    }
}

#[test]
fn same_account_resource_policy_naming_the_role_is_limited() {
    let rp = grant_to(json!({"AWS": ROLE}), "dynamodb:GetItem", TABLE);
    let r = get_item(SESSION);
    assert_eq!(
        decide(
            &PolicySet {
                resource: Some(&rp),
                ..Default::default()
            },
            &r
        ),
        Decision::Allow
    );
    let boundary = allow("s3:*", "*");
    let set = PolicySet {
        resource: Some(&rp),
        permissions_boundary: Some(&boundary),
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::ImplicitDeny);
    let session = allow("s3:*", "*");
    let set = PolicySet {
        resource: Some(&rp),
        session: vec![&session],
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::ImplicitDeny);
}

#[test]
fn same_account_grant_to_the_account_delegates_to_identity_policies() {
    for account_principal in [
        json!(ACCOUNT),
        json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}),
    ] {
        let principal = if account_principal.is_string() {
            json!({"AWS": account_principal})
        } else {
            account_principal
        };
        let rp = grant_to(principal, "dynamodb:GetItem", TABLE);
        let r = get_item(SESSION);
        assert_eq!(
            decide(
                &PolicySet {
                    resource: Some(&rp),
                    ..Default::default()
                },
                &r
            ),
            Decision::ImplicitDeny
        );
        let a = allow("dynamodb:GetItem", TABLE);
        let set = PolicySet {
            identity: vec![&a],
            resource: Some(&rp),
            ..Default::default()
        };
        assert_eq!(decide(&set, &r), Decision::Allow);
    }
}

#[test]
fn resource_policy_deny_wins() {
    let a = allow("dynamodb:*", "*");
    let rp = policy(
        json!([{"Effect": "Deny", "Principal": "*", "Action": "dynamodb:*", "Resource": TABLE,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]),
    );
    let mut r = get_item(SESSION);
    r.context_mut().insert("aws:SecureTransport", "false");
    let set = PolicySet {
        identity: vec![&a],
        resource: Some(&rp),
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::ExplicitDeny);
    r.context_mut().insert("aws:SecureTransport", "true");
    assert_eq!(decide(&set, &r), Decision::Allow);
}

#[test]
fn cross_account_needs_both_sides() {
    let rp_session = grant_to(json!({"AWS": OTHER_SESSION}), "dynamodb:GetItem", TABLE);
    let rp_account = grant_to(json!({"AWS": OTHER}), "dynamodb:GetItem", TABLE);
    let a = allow("dynamodb:GetItem", TABLE);
    let r = get_item(OTHER_SESSION);
    let both = PolicySet {
        identity: vec![&a],
        resource: Some(&rp_session),
        ..Default::default()
    };
    assert_eq!(decide(&both, &r), Decision::Allow);
    let via_account = PolicySet {
        identity: vec![&a],
        resource: Some(&rp_account),
        ..Default::default()
    };
    assert_eq!(decide(&via_account, &r), Decision::Allow);
    let resource_only = PolicySet {
        resource: Some(&rp_session),
        ..Default::default()
    };
    assert_eq!(decide(&resource_only, &r), Decision::ImplicitDeny);
    let identity_only = PolicySet {
        identity: vec![&a],
        ..Default::default()
    };
    assert_eq!(decide(&identity_only, &r), Decision::ImplicitDeny);
    assert!(identity_only.explain(&r).reason.contains("cross-account"));
    // An explicit resource_account overrides the ARN's.
    let same = get_item(OTHER_SESSION).resource_account(OTHER);
    assert_eq!(decide(&identity_only, &same), Decision::Allow);
}

#[test]
fn service_control_policies_by_level() {
    let a = allow("dynamodb:*", "*");
    let full = allow("*", "*");
    let ddb = allow("dynamodb:*", "*");
    let s3 = allow("s3:*", "*");
    let no_get = deny("dynamodb:GetItem", "*");
    let r = get_item(SESSION);
    let with = |levels: Vec<Vec<&Policy>>| {
        decide(
            &PolicySet {
                identity: vec![&a],
                service_control: levels,
                ..Default::default()
            },
            &r,
        )
    };
    assert_eq!(with(vec![vec![&full]]), Decision::Allow);
    assert_eq!(with(vec![vec![&s3]]), Decision::ImplicitDeny);
    assert_eq!(
        with(vec![vec![&s3, &ddb]]),
        Decision::Allow,
        "one policy per level suffices"
    );
    assert_eq!(
        with(vec![vec![&full], vec![&ddb], vec![&full]]),
        Decision::Allow
    );
    assert_eq!(
        with(vec![vec![&full], vec![&s3], vec![&full]]),
        Decision::ImplicitDeny,
        "every level must allow"
    );
    assert_eq!(
        with(vec![vec![&full], vec![&full, &no_get]]),
        Decision::ExplicitDeny
    );
    // SCPs never grant on their own.
    let only = PolicySet {
        service_control: vec![vec![&full]],
        ..Default::default()
    };
    assert_eq!(decide(&only, &r), Decision::ImplicitDeny);
    let explained = PolicySet {
        identity: vec![&a],
        service_control: vec![vec![&full], vec![&s3]],
        ..Default::default()
    }
    .explain(&r);
    assert!(explained.reason.contains("level 1"), "{}", explained.reason);
}

#[test]
fn resource_control_policies_by_level() {
    let a = allow("dynamodb:*", "*");
    let full =
        policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]));
    let outside = policy(
        json!([{"Effect": "Deny", "Principal": "*", "Action": "dynamodb:*", "Resource": "*",
        "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-abc"}}}]),
    );
    let mut r = get_item(SESSION);
    let set = PolicySet {
        identity: vec![&a],
        resource_control: vec![vec![&full], vec![&full, &outside]],
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::ExplicitDeny);
    r.context_mut().insert("aws:PrincipalOrgID", "o-abc");
    assert_eq!(decide(&set, &r), Decision::Allow);
    // A level whose own RCPs allow nothing of the request still has AWS's undetachable
    // RCPFullAWSAccess: RCPs only ever deny.
    let none =
        policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]));
    let set = PolicySet {
        identity: vec![&a],
        resource_control: vec![vec![&none], vec![]],
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::Allow);
}

#[test]
fn not_principal_with_deny() {
    // Deny everyone except the carts role, in all its forms.
    let rp = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "dynamodb:*", "Resource": TABLE},
        {"Effect": "Deny", "NotPrincipal": {"AWS": [ROLE, SESSION, format!("arn:aws:iam::{ACCOUNT}:root")]},
         "Action": "dynamodb:*", "Resource": TABLE}
    ]));
    let a = allow("dynamodb:*", "*");
    let set = PolicySet {
        identity: vec![&a],
        resource: Some(&rp),
        ..Default::default()
    };
    assert_eq!(decide(&set, &get_item(SESSION)), Decision::Allow);
    assert_eq!(
        decide(
            &set,
            &get_item("arn:aws:sts::111122223333:assumed-role/carts/pod-2")
        ),
        Decision::ExplicitDeny
    );
    assert_eq!(decide(&set, &get_item(USER)), Decision::ExplicitDeny);
}

#[test]
fn trust_policies_for_both_mechanisms() {
    let provider = "arn:aws:iam::637423329338:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
    let irsa = Policy::parse(&json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Federated": provider},
            "Action": ["sts:TagSession", "sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {"oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C:sub": "system:serviceaccount:carts:carts"}}}]
    }).to_string()).unwrap();
    let set = PolicySet {
        resource: Some(&irsa),
        ..Default::default()
    };
    let mut request = Request::new("sts:AssumeRoleWithWebIdentity")
        .principal(Principal::Federated(provider.into()));
    request.context_mut().insert(
        "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C:sub",
        "system:serviceaccount:carts:carts",
    );
    assert_eq!(decide(&set, &request), Decision::Allow);
    let wrong_provider = request
        .clone()
        .principal(Principal::Federated(provider.replace("5B1F", "AAAA")));
    assert_eq!(decide(&set, &wrong_provider), Decision::ImplicitDeny);
    let assume_role =
        Request::new("sts:AssumeRole").principal(Principal::Federated(provider.into()));
    assert_eq!(decide(&set, &assume_role), Decision::ImplicitDeny);

    let pia = Policy::parse(include_str!(
        "../../../examples/policies/pod-identity-trust.json"
    ))
    .unwrap();
    let set = PolicySet {
        resource: Some(&pia),
        ..Default::default()
    };
    for action in ["sts:AssumeRole", "sts:TagSession"] {
        let r = Request::new(action).principal(Principal::Service("pods.eks.amazonaws.com".into()));
        assert_eq!(decide(&set, &r), Decision::Allow);
    }
    let other_service =
        Request::new("sts:AssumeRole").principal(Principal::Service("ec2.amazonaws.com".into()));
    assert_eq!(decide(&set, &other_service), Decision::ImplicitDeny);
    let anonymous = Request::new("sts:AssumeRole");
    assert_eq!(decide(&set, &anonymous), Decision::ImplicitDeny);
}

#[test]
fn public_resource_policy_allows_anonymous() {
    let rp = grant_to(json!("*"), "s3:GetObject", "arn:aws:s3:::public/*");
    let set = PolicySet {
        resource: Some(&rp),
        ..Default::default()
    };
    let r = Request::new("s3:GetObject").resource("arn:aws:s3:::public/index.html");
    assert_eq!(decide(&set, &r), Decision::Allow);
    let aws_star = grant_to(json!({"AWS": "*"}), "s3:GetObject", "arn:aws:s3:::public/*");
    let set = PolicySet {
        resource: Some(&aws_star),
        ..Default::default()
    };
    assert_eq!(decide(&set, &r), Decision::Allow);
}

// Random policy sets: the fast path and the explaining path must always agree.
fn arb_statement() -> impl Strategy<Value = Value> {
    let effect = prop_oneof![Just("Allow"), Just("Deny")];
    let action = prop_oneof![
        Just("dynamodb:*"),
        Just("dynamodb:GetItem"),
        Just("s3:*"),
        Just("*"),
        Just("dynamodb:Put?tem")
    ];
    let resource = prop_oneof![
        Just("*"),
        Just(TABLE),
        Just("arn:aws:dynamodb:*:*:table/*"),
        Just("arn:aws:s3:::b/*")
    ];
    let negate = any::<(bool, bool)>();
    let condition = prop_oneof![
        Just(None),
        Just(Some(
            json!({"StringEquals": {"aws:PrincipalTag/team": "blue"}})
        )),
        Just(Some(json!({"Bool": {"aws:SecureTransport": "true"}}))),
        Just(Some(
            json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})
        )),
    ];
    (effect, action, resource, negate, condition).prop_map(|(e, a, r, (na, nr), c)| {
        let mut s = json!({"Effect": e});
        s[if na { "NotAction" } else { "Action" }] = json!(a);
        s[if nr { "NotResource" } else { "Resource" }] = json!(r);
        if let Some(c) = c {
            s["Condition"] = c;
        }
        s
    })
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    prop::collection::vec(arb_statement(), 1..4).prop_map(|s| policy(Value::Array(s)))
}

fn arb_resource_policy() -> impl Strategy<Value = Policy> {
    let principal = prop_oneof![
        Just(json!("*")),
        Just(json!({"AWS": ACCOUNT})),
        Just(json!({"AWS": ROLE})),
        Just(json!({"AWS": SESSION})),
        Just(json!({"AWS": OTHER}))
    ];
    (arb_statement(), principal).prop_map(|(mut s, p)| {
        s["Principal"] = p;
        policy(json!([s]))
    })
}

proptest! {
    #[test]
    fn explain_agrees_with_evaluate(
        identity in prop::collection::vec(arb_policy(), 0..3),
        resource in prop::option::of(arb_resource_policy()),
        boundary in prop::option::of(arb_policy()),
        session in prop::option::of(arb_policy()),
        scps in prop::collection::vec(prop::collection::vec(arb_policy(), 1..3), 0..3),
        principal in prop_oneof![Just(SESSION), Just(USER), Just(OTHER_SESSION)],
        action in prop_oneof![Just("dynamodb:GetItem"), Just("dynamodb:PutItem"), Just("s3:GetObject")],
        team in prop_oneof![Just("blue"), Just("red")],
        secure in any::<bool>(),
    ) {
        let mut request = Request::new(action).principal(principal.parse().unwrap()).resource(TABLE);
        request.context_mut().insert("aws:PrincipalTag/team", team);
        request.context_mut().insert("aws:SecureTransport", if secure { "true" } else { "false" });
        let set = PolicySet {
            identity: identity.iter().collect(),
            resource: resource.as_ref(),
            permissions_boundary: boundary.as_ref(),
            session: session.iter().collect(),
            service_control: scps.iter().map(|l| l.iter().collect()).collect(),
            ..Default::default()
        };
        let explained = set.explain(&request);
        prop_assert_eq!(set.evaluate(&request), explained.decision);
        // A deny anywhere in the trace means an explicit deny, and only then.
        let any_deny = explained.trace.iter().any(|p| p.outcome == podiam_policy::PolicyOutcome::Deny);
        prop_assert_eq!(any_deny, explained.decision == Decision::ExplicitDeny);
    }
}
