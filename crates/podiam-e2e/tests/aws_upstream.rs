//! Pod Identity into real AWS (`--aws-upstream-account`): `podiam dev` verifies the pod as
//! always, then calls STS `AssumeRole` as itself (its identity from the AWS SDK's standard
//! configuration) with EKS's session name and session tags, and the pod gets AWS's
//! credentials. AWS is played by a second podiam server, which checks SigV4, the trust policy,
//! `sts:TagSession` and the `aws:RequestTag` conditions as AWS does, and by moto_server (a
//! third-party implementation of STS and S3), with the AWS CLI and boto3 inside the pod.

use podiam_e2e::{
    AgentProcess, ClientEnv, DevExtras, DevStack, Server, http_get, podiam_bin, user_with_policy,
};

/// The pod's view: `podiam exec` as `namespace`/`app` runs `command`.
fn in_pod(stack: &DevStack, namespace: &str, command: &[&str]) -> podiam_e2e::Run {
    stack.exec(
        &["--namespace", namespace, "--service-account", "app"],
        command,
    )
}

#[expect(clippy::expect_used, reason = "a test helper: a failure is the test's")]
/// podiam's own AWS identity for `podiam dev`: keys and the STS and IAM endpoints, nothing from this
/// machine's AWS configuration.
fn broker_env(dir: &std::path::Path, aws: &str, id: &str, secret: &str) -> Vec<(String, String)> {
    let empty = dir.join("empty-aws-config");
    std::fs::write(&empty, "").expect("write an empty AWS config");
    let none = empty.display().to_string();
    [
        ("AWS_ACCESS_KEY_ID", id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_ENDPOINT_URL_STS", aws),
        ("AWS_ENDPOINT_URL_IAM", aws),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", &none),
        ("AWS_SHARED_CREDENTIALS_FILE", &none),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn associate(stack: &DevStack, namespace: &str, role_arn: &str) {
    stack
        .shell()
        .aws(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--namespace",
            namespace,
            "--service-account",
            "app",
            "--role-arn",
            role_arn,
        ])
        .ok();
}

#[expect(clippy::expect_used, reason = "a test helper: a failure is the test's")]
fn server_port(stack: &DevStack) -> u16 {
    stack
        .var("PODIAM_SERVER")
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("PODIAM_SERVER has a port")
}

#[test]
fn a_pod_gets_credentials_of_a_role_in_aws_only_for_the_workload_its_trust_names() {
    let aws = Server::start();
    let root = ClientEnv::root(&aws);
    let (broker_id, broker_secret) = user_with_policy(
        &aws,
        "broker",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"},
            {"Effect":"Allow","Action":["iam:GetRole","iam:ListRolePolicies","iam:GetRolePolicy","iam:ListAttachedRolePolicies","iam:GetPolicy","iam:GetPolicyVersion"],"Resource":"*"}]}"#,
    );
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let env = broker_env(scratch.path(), &aws.endpoint(), &broker_id, &broker_secret);
    let stack = DevStack::start_with(|_| DevExtras {
        args: vec![
            "--aws-upstream-account".to_owned(),
            "000000000000".to_owned(),
        ],
        env: env.clone(),
        ..DevExtras::default()
    });

    // The role in "AWS", with the trust policy podiam prints for carts' `app`.
    let broker = ClientEnv::keys(&aws, &broker_id, &broker_secret, None);
    let trust = broker
        .command_of(
            &podiam_bin(),
            &[
                "aws",
                "trust-policy",
                "--cluster",
                "eks-workshop",
                "--namespace",
                "shop",
                "--service-account",
                "app",
            ],
        )
        .ok();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "shop-app",
        "--assume-role-policy-document",
        &trust,
    ])
    .ok();
    let role = "arn:aws:iam::000000000000:role/shop-app";
    associate(&stack, "shop", role);
    // Another workload associated with the same role: its tags do not match the trust.
    associate(&stack, "other", role);

    // The AWS CLI in the pod: AWS's credentials, of the role, in EKS's session name.
    let who = in_pod(
        &stack,
        "shop",
        &[
            "aws",
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            &aws.endpoint(),
        ],
    )
    .json();
    let arn = who["Arn"].as_str().expect("an ARN");
    assert!(
        arn.starts_with("arn:aws:sts::000000000000:assumed-role/shop-app/eks-eks-workshop-"),
        "{arn}"
    );
    // boto3 in the pod, through its default chain.
    let boto3 = in_pod(
        &stack,
        "shop",
        &[
            "python3",
            "-c",
            &format!(
                "import boto3; print(boto3.client('sts', endpoint_url='{}').get_caller_identity()['Arn'])",
                aws.endpoint()
            ),
        ],
    )
    .ok();
    assert!(
        boto3
            .trim()
            .starts_with("arn:aws:sts::000000000000:assumed-role/shop-app/eks-"),
        "{boto3}"
    );

    // The other workload is refused by AWS, and told which role and which trust.
    let refused = in_pod(
        &stack,
        "other",
        &[
            "aws",
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            &aws.endpoint(),
        ],
    );
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("AccessDenied"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(role), "{}", refused.stderr);

    // The session carries EKS's six tags: the role's permissions read them as principal tags.
    let in_shop = |command: &[&str]| in_pod(&stack, "shop", command);
    let list_roles = [
        "aws",
        "iam",
        "list-roles",
        "--endpoint-url",
        &aws.endpoint(),
        "--query",
        "length(Roles)",
    ];
    let denied = in_shop(&list_roles);
    assert!(denied.stderr.contains("AccessDenied"), "{}", denied.stderr);
    root.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "shop-app",
        "--policy-name",
        "by-tags",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*","Condition":{
            "StringEquals":{"aws:PrincipalTag/eks-cluster-name":"eks-workshop","aws:PrincipalTag/kubernetes-namespace":"shop","aws:PrincipalTag/kubernetes-service-account":"app","aws:PrincipalTag/eks-cluster-arn":"arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop"},
            "StringLike":{"aws:PrincipalTag/kubernetes-pod-name":"?*","aws:PrincipalTag/kubernetes-pod-uid":"?*"}}}]}"#,
    ])
    .ok();
    assert_eq!(in_shop(&list_roles).ok().trim(), "1");

    // /readyz names podiam's AWS identity; /metrics counts the calls by outcome.
    let port = server_port(&stack);
    let (status, ready) = http_get(port, "/readyz", None);
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready.contains("[+]aws-upstream ok (arn:aws:iam::000000000000:user/broker)"),
        "{ready}"
    );
    let (_, metrics) = http_get(port, "/metrics", None);
    assert!(
        metrics.contains(r#"podiam_aws_upstream_calls_total{operation="AssumeRole",code="ok"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"podiam_aws_upstream_calls_total{operation="AssumeRole",code="AccessDenied"}"#
        ),
        "{metrics}"
    );
    // `podiam explain` reads the role from AWS with podiam's identity, says that AWS decides,
    // and evaluates AWS's trust and permissions with podiam's engine.
    let explain = |namespace: &str| {
        stack.shell().command_of(
            &podiam_bin(),
            &[
                "explain",
                "--namespace",
                namespace,
                "--service-account",
                "app",
                "--action",
                "iam:ListRoles",
                "--resource",
                "*",
                "--output",
                "json",
            ],
        )
    };
    let allowed = explain("shop");
    assert!(allowed.success, "{}{}", allowed.stdout, allowed.stderr);
    let report: serde_json::Value = serde_json::from_str(&allowed.stdout).expect("JSON");
    let notes = report["mechanism"]["notes"].to_string();
    assert!(notes.contains("is a role in AWS: AWS decides"), "{notes}");
    assert!(
        notes.contains("arn:aws:iam::000000000000:user/broker"),
        "{notes}"
    );
    assert_eq!(
        report["trust"]["principal"],
        "arn:aws:iam::000000000000:user/broker"
    );
    assert_eq!(report["decision"], "Allow", "{}", allowed.stdout);
    let denied = explain("other");
    assert!(!denied.success);
    let report: serde_json::Value = serde_json::from_str(&denied.stdout).expect("JSON");
    assert_eq!(report["decision"], "ImplicitDeny", "{}", denied.stdout);
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("gets no credentials"),
        "{}",
        denied.stdout
    );

    // podiam's AWS secret is in no log.
    assert!(!stack.output().contains(&broker_secret));
}

#[test]
fn with_moto_as_sts_and_s3_a_pod_writes_to_a_bucket_with_awss_credentials() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    // podiam's identity from a profile's credential_process (as IAM Roles Anywhere's signing
    // helper provides it), not from environment keys.
    let process_output = scratch.path().join("credentials.json");
    std::fs::write(
        &process_output,
        r#"{"Version":1,"AccessKeyId":"AKIAMOTOBROKER","SecretAccessKey":"moto-broker-secret"}"#,
    )
    .expect("write the credential process's output");
    let config = scratch.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[default]\ncredential_process = cat {}\n",
            process_output.display()
        ),
    )
    .expect("write the AWS config");
    let stack = DevStack::start_with(|moto| {
        let mut env: Vec<(String, String)> = broker_env(scratch.path(), moto, "", "")
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_CONFIG_FILE"
                )
            })
            .collect();
        env.push(("AWS_CONFIG_FILE".to_owned(), config.display().to_string()));
        DevExtras {
            args: vec![
                "--aws-upstream-account".to_owned(),
                "123456789012".to_owned(),
            ],
            env,
            ..DevExtras::default()
        }
    });
    let moto = stack.moto().to_owned();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let moto_admin = stack
        .shell()
        .set("AWS_ACCESS_KEY_ID", "AKIAMOTOADMIN")
        .set("AWS_SECRET_ACCESS_KEY", "moto")
        .set("AWS_ENDPOINT_URL", &moto);
    moto_admin
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "shop-app",
            "--assume-role-policy-document",
            trust,
        ])
        .ok();
    moto_admin
        .aws(&[
            "s3api",
            "create-bucket",
            "--bucket",
            "shop-orders",
            "--create-bucket-configuration",
            "LocationConstraint=eu-central-1",
        ])
        .ok();
    associate(&stack, "shop", "arn:aws:iam::123456789012:role/shop-app");

    // boto3 writes an object with the pod's credentials; the AWS CLI reads it back and says
    // who it is.
    let script = format!(
        r#"set -e
python3 -c "import boto3; boto3.client('s3', endpoint_url='{moto}').put_object(Bucket='shop-orders', Key='order-1', Body=b'two carts')"
aws --endpoint-url {moto} s3 cp s3://shop-orders/order-1 -
echo
aws --endpoint-url {moto} sts get-caller-identity --query Arn --output text"#
    );
    let out = in_pod(&stack, "shop", &["sh", "-c", &script]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"two carts"), "{out}");
    let arn = lines.get(1).copied().unwrap_or_default();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/shop-app/eks-eks-workshop-"),
        "{out}"
    );
    assert!(!stack.output().contains("moto-broker-secret"));
    // AWS answered podiam's identity from the credential process.
    let (_, ready) = http_get(server_port(&stack), "/readyz", None);
    assert!(ready.contains("[+]aws-upstream ok"), "{ready}");
}

#[test]
fn imds_hands_the_node_a_role_in_aws_through_podiam() {
    let aws = Server::start();
    let root = ClientEnv::root(&aws);
    let (broker_id, broker_secret) = user_with_policy(
        &aws,
        "broker",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    );
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "shop-node",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/broker"},"Action":"sts:AssumeRole"}]}"#,
    ])
    .ok();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let env = broker_env(scratch.path(), &aws.endpoint(), &broker_id, &broker_secret);
    let stack = DevStack::start_with(|_| DevExtras {
        args: vec![
            "--aws-upstream-account".to_owned(),
            "000000000000".to_owned(),
        ],
        env: env.clone(),
        ..DevExtras::default()
    });
    let node_role = "arn:aws:iam::000000000000:role/shop-node";

    // In podiam, the node's identity must be allowed sts:AssumeRole on the AWS role, as for a
    // role in another account: a user without that permission is refused by podiam itself.
    let podiam = stack.shell();
    podiam
        .aws(&["iam", "create-user", "--user-name", "node-1"])
        .ok();
    let keys = podiam
        .aws(&["iam", "create-access-key", "--user-name", "node-1"])
        .json();
    let node_keys = (
        keys["AccessKey"]["AccessKeyId"]
            .as_str()
            .expect("an id")
            .to_owned(),
        keys["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("a secret")
            .to_owned(),
    );
    let as_node = podiam
        .clone()
        .set("AWS_ACCESS_KEY_ID", &node_keys.0)
        .set("AWS_SECRET_ACCESS_KEY", &node_keys.1);
    let assume = [
        "sts",
        "assume-role",
        "--role-arn",
        node_role,
        "--role-session-name",
        "node-1",
    ];
    as_node.aws(&assume).fails_with("AccessDenied");
    podiam
        .aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            "node-1",
            "--policy-name",
            "node-role",
            "--policy-document",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{node_role}"}}]}}"#
            ),
        ])
        .ok();
    // Now AWS decides, on its own role's trust: the credentials are AWS's.
    let session = as_node.aws(&assume).json();
    assert_eq!(
        session["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::000000000000:assumed-role/shop-node/node-1"
    );

    // The agent's IMDS, with the node's keys, serves AWS's credentials of the node role.
    let agent = AgentProcess::start(
        stack.var("PODIAM_SERVER"),
        &node_keys,
        &["--imds-listen", "127.0.0.1:0", "--imds-role-arn", node_role],
    );
    // The ready line lists the credentials listener, then IMDS's (it reaches the captured
    // output just after the agent is reported ready).
    let imds_address = || {
        agent
            .process
            .output()
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(", probes").next())
            .and_then(|list| list.split(", ").nth(1))
            .map(str::to_owned)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut imds = imds_address();
    while imds.is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        imds = imds_address();
    }
    let imds = imds.expect("the IMDS address");
    let home = scratch.path().join("home");
    let who = ClientEnv::bare(&home)
        .set(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            &format!("http://{imds}"),
        )
        .set("AWS_DEFAULT_REGION", "us-east-1")
        .set("AWS_CONFIG_FILE", &home.join("none").display().to_string())
        .set(
            "AWS_SHARED_CREDENTIALS_FILE",
            &home.join("none").display().to_string(),
        )
        .aws(&[
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            &aws.endpoint(),
        ])
        .json();
    assert_eq!(
        who["Arn"], "arn:aws:sts::000000000000:assumed-role/shop-node/node-1",
        "{who}"
    );
    assert!(!stack.output().contains(&broker_secret));
}
