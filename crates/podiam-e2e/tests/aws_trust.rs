//! `podiam aws trust-policy` against a podiam server standing in for AWS (it checks SigV4,
//! trust policies, `sts:TagSession` and `aws:RequestTag` conditions as AWS does): the printed
//! policy names the broker's own identity, found through the AWS SDK's standard
//! configuration; a role with that policy can be assumed by the broker only with the session
//! tags of the one workload it names.

use podiam_e2e::{ClientEnv, Server, podiam_bin, user_with_policy};

fn trust_policy(env: &ClientEnv, extra: &[&str]) -> podiam_e2e::Run {
    let mut args = vec![
        "aws",
        "trust-policy",
        "--cluster",
        "prod",
        "--namespace",
        "carts",
        "--service-account",
        "carts",
    ];
    args.extend_from_slice(extra);
    env.command_of(&podiam_bin(), &args)
}

fn tags(namespace: &str) -> Vec<String> {
    vec![
        "Key=eks-cluster-name,Value=prod".to_owned(),
        format!("Key=kubernetes-namespace,Value={namespace}"),
        "Key=kubernetes-service-account,Value=carts".to_owned(),
    ]
}

#[test]
fn the_printed_trust_policy_lets_the_broker_assume_the_role_for_one_workload_only() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    // The broker: an IAM user allowed to assume roles and tag sessions, as podiam's own
    // identity would be in AWS.
    let (broker_id, broker_secret) = user_with_policy(
        &server,
        "broker",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}"#,
    );
    let broker = ClientEnv::keys(&server, &broker_id, &broker_secret, None);

    // podiam asks who it is through the SDK's default chain (here: environment keys and
    // AWS_ENDPOINT_URL), and names that principal.
    let printed = trust_policy(&broker, &[]).ok();
    let policy: serde_json::Value = serde_json::from_str(&printed).expect("a JSON policy");
    assert_eq!(
        policy["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:user/broker"
    );

    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "carts-s3",
        "--assume-role-policy-document",
        &printed,
    ])
    .ok();
    let assume = |env: &ClientEnv, tags: &[String]| {
        let mut args = vec![
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::000000000000:role/carts-s3",
            "--role-session-name",
            "eks-prod-carts-7d8f9c6b5-x",
        ];
        if !tags.is_empty() {
            args.push("--tags");
            args.extend(tags.iter().map(String::as_str));
        }
        env.aws(&args)
    };

    // The workload's own tags: allowed.
    let session = assume(&broker, &tags("carts")).json();
    let creds = &session["Credentials"];
    let field = |name: &str| creds[name].as_str().expect("a credential").to_owned();
    assert!(
        session["AssumedRoleUser"]["Arn"]
            .as_str()
            .expect("an ARN")
            .ends_with(":assumed-role/carts-s3/eks-prod-carts-7d8f9c6b5-x")
    );
    // Another workload's tags, or none: refused.
    assume(&broker, &tags("orders")).fails_with("AccessDenied");
    assume(&broker, &[]).fails_with("AccessDenied");
    // Another principal with the right tags: refused (the root is not the broker).
    assume(&root, &tags("carts")).fails_with("AccessDenied");

    // Run as an assumed role's session, podiam names the role, and says a session's ARN does
    // not show the role's path.
    let as_session = ClientEnv::keys(
        &server,
        &field("AccessKeyId"),
        &field("SecretAccessKey"),
        Some(&field("SessionToken")),
    );
    let run = trust_policy(&as_session, &[]);
    assert!(run.stderr.contains("path"), "{}", run.stderr);
    let policy: serde_json::Value = serde_json::from_str(&run.ok()).expect("a JSON policy");
    assert_eq!(
        policy["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:role/carts-s3"
    );

    // Without credentials it says what to do, and prints no policy.
    let none = trust_policy(&ClientEnv::new(&server), &[]);
    assert!(!none.success);
    assert!(none.stdout.is_empty(), "{}", none.stdout);
    assert!(none.stderr.contains("--principal"), "{}", none.stderr);
}
