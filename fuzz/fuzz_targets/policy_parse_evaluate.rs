//! Parse, validate and evaluate arbitrary policy documents: nothing may panic, and the fast
//! and explaining evaluators must always agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_policy::{Context, ContextValue, Policy, PolicySet, PolicyType, Principal, Request, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = Policy::parse(text) else { return };
    assert_eq!(policy.text(), text);
    for kind in PolicyType::ALL {
        let _ = validate(&policy, kind);
    }
    let context = Context::new()
        .with("aws:username", "alice")
        .with("aws:SourceIp", "10.1.2.3")
        .with("aws:CurrentTime", "2024-05-01T12:00:00Z")
        .with("aws:SecureTransport", "true")
        .with("aws:TagKeys", ContextValue::Multi(vec!["a".into(), "b".into()]))
        .with("aws:PrincipalTag/team", "*");
    let requests = [
        Request::new("s3:GetObject")
            .principal("arn:aws:sts::111122223333:assumed-role/r/s".parse().unwrap_or_default())
            .resource("arn:aws:s3:::bucket/alice/key")
            .context(context.clone()),
        Request::new("sts:AssumeRoleWithWebIdentity")
            .principal(Principal::Federated("arn:aws:iam::111122223333:oidc-provider/o".into()))
            .context(context.clone()),
        Request::new("sts:AssumeRole").principal(Principal::Service("pods.eks.amazonaws.com".into())),
        Request::new("dynamodb:PutItem").resource("arn:aws:dynamodb:eu-central-1:444455556666:table/t"),
    ];
    for request in &requests {
        for set in [
            PolicySet { identity: vec![&policy], ..PolicySet::default() },
            PolicySet { resource: Some(&policy), ..PolicySet::default() },
            PolicySet { identity: vec![&policy], permissions_boundary: Some(&policy), session: vec![&policy], service_control: vec![vec![&policy]], resource_control: vec![vec![&policy]], ..PolicySet::default() },
        ] {
            assert_eq!(set.evaluate(request), set.explain(request).decision);
        }
    }
});
