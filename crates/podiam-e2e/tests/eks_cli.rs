//! EKS and EKS Auth with the AWS CLI v1 and boto3, unmodified: every operation and its
//! errors, `podiam cluster`, and IRSA through a hosted issuer with no network fetch.

use podiam_e2e::{ClientEnv, Server, ServerOptions, podiam_bin};
use serde_json::{Value, json};

fn podiam(env: &ClientEnv, args: &[&str]) -> podiam_e2e::Run {
    env.command_of(&podiam_bin(), args)
}

const PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:TagSession","sts:AssumeRole"]}]}"#;

#[test]
fn every_eks_operation_through_the_cli() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let created = root
        .aws(&[
            "eks",
            "create-cluster",
            "--name",
            "eks-workshop",
            "--role-arn",
            "arn:aws:iam::000000000000:role/cluster",
            "--resources-vpc-config",
            "subnetIds=subnet-1",
        ])
        .json();
    assert_eq!(created["cluster"]["status"], "ACTIVE");
    assert_eq!(
        created["cluster"]["arn"],
        "arn:aws:eks:us-east-1:000000000000:cluster/eks-workshop"
    );
    root.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "eks-workshop",
        "--role-arn",
        "arn:aws:iam::000000000000:role/cluster",
        "--resources-vpc-config",
        "subnetIds=subnet-1",
    ])
    .fails_with("ResourceInUseException");
    let issuer = root
        .aws(&[
            "eks",
            "describe-cluster",
            "--name",
            "eks-workshop",
            "--query",
            "cluster.identity.oidc.issuer",
        ])
        .json();
    assert!(
        issuer
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("{}/oidc/id/", server.endpoint()))),
        "{issuer}"
    );
    // The waiter the workshop's tooling uses.
    root.aws(&["eks", "wait", "cluster-active", "--name", "eks-workshop"])
        .ok();
    root.aws(&["eks", "describe-cluster", "--name", "nope"])
        .fails_with("ResourceNotFoundException");
    podiam(
        &root,
        &[
            "cluster",
            "create",
            "--name",
            "other",
            "--issuer-url",
            "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C",
        ],
    )
    .ok();
    let listed = root
        .aws(&["eks", "list-clusters", "--page-size", "1"])
        .json();
    assert_eq!(listed["clusters"], json!(["eks-workshop", "other"]));

    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "eks-workshop-carts-dynamo-pia",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .ok();
    let role = "arn:aws:iam::000000000000:role/eks-workshop-carts-dynamo-pia";
    let association = root
        .aws(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--role-arn",
            role,
            "--tags",
            "team=carts",
        ])
        .json();
    let id = association["association"]["associationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "eks-workshop",
        "--namespace",
        "carts",
        "--service-account",
        "carts",
        "--role-arn",
        role,
    ])
    .fails_with("ResourceInUseException");
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "eks-workshop",
        "--namespace",
        "Not_A_Label",
        "--service-account",
        "carts",
        "--role-arn",
        role,
    ])
    .fails_with("InvalidParameterException");

    // The workshop's command and the shape it prints.
    let list = root
        .aws(&[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            "eks-workshop",
            "--namespace",
            "carts",
        ])
        .json();
    assert_eq!(
        list,
        json!({"associations": [{
            "clusterName": "eks-workshop",
            "namespace": "carts",
            "serviceAccount": "carts",
            "associationArn": format!("arn:aws:eks:us-east-1:000000000000:podidentityassociation/eks-workshop/{id}"),
            "associationId": id,
        }]})
    );
    let described = root
        .aws(&[
            "eks",
            "describe-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--association-id",
            &id,
        ])
        .json();
    assert_eq!(described["association"]["tags"], json!({"team": "carts"}));
    let updated = root
        .aws(&[
            "eks",
            "update-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--association-id",
            &id,
            "--disable-session-tags",
        ])
        .json();
    assert_eq!(updated["association"]["disableSessionTags"], true);
    root.aws(&[
        "eks",
        "update-pod-identity-association",
        "--cluster-name",
        "eks-workshop",
        "--association-id",
        &id,
        "--no-disable-session-tags",
    ])
    .ok();

    // EKS Auth, as the node agent calls it.
    let token = podiam(
        &root,
        &[
            "cluster",
            "token",
            "--cluster",
            "eks-workshop",
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--audience",
            "pods.eks.amazonaws.com",
            "--pod-name",
            "carts-7d8f9c6b5-abcde",
            "--node-name",
            "ip-10-42-0-1",
        ],
    )
    .ok();
    // The node is the caller's identity's: the root, which names no node, is refused a token
    // bound to one; the node's agent (a user tagged with its node) is served.
    root.aws(&[
        "eks-auth",
        "assume-role-for-pod-identity",
        "--cluster-name",
        "eks-workshop",
        "--token",
        &token,
    ])
    .fails_with("AccessDeniedException");
    root.aws(&[
        "iam",
        "create-user",
        "--user-name",
        "agent-ip-10-42-0-1",
        "--tags",
        "Key=podiam:node-name,Value=ip-10-42-0-1",
    ])
    .ok();
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "agent-ip-10-42-0-1",
        "--policy-name",
        "node-agent",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks-auth:AssumeRoleForPodIdentity","Resource":"*"}]}"#,
    ])
    .ok();
    let agent_key = root
        .aws(&[
            "iam",
            "create-access-key",
            "--user-name",
            "agent-ip-10-42-0-1",
        ])
        .json();
    let agent = ClientEnv::keys(
        &server,
        agent_key["AccessKey"]["AccessKeyId"]
            .as_str()
            .unwrap_or_default(),
        agent_key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap_or_default(),
        None,
    );
    let granted = agent
        .aws(&[
            "eks-auth",
            "assume-role-for-pod-identity",
            "--cluster-name",
            "eks-workshop",
            "--token",
            &token,
        ])
        .json();
    assert_eq!(
        granted["subject"],
        json!({"namespace": "carts", "serviceAccount": "carts"})
    );
    assert!(granted["credentials"]["expiration"].is_i64());
    let arn = granted["assumedRoleUser"]["arn"]
        .as_str()
        .unwrap_or_default();
    assert!(
        arn.starts_with(
            "arn:aws:sts::000000000000:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-workshop-carts-7d8f9c6b5-"
        ),
        "{arn}"
    );
    let creds = &granted["credentials"];
    let pod = ClientEnv::keys(
        &server,
        creds["accessKeyId"].as_str().unwrap_or_default(),
        creds["secretAccessKey"].as_str().unwrap_or_default(),
        creds["sessionToken"].as_str(),
    );
    assert_eq!(pod.aws(&["sts", "get-caller-identity"]).json()["Arn"], arn);
    agent
        .aws(&[
            "eks-auth",
            "assume-role-for-pod-identity",
            "--cluster-name",
            "eks-workshop",
            "--token",
            "abc.def.ghi",
        ])
        .fails_with("InvalidTokenException");
    agent
        .aws(&[
            "eks-auth",
            "assume-role-for-pod-identity",
            "--cluster-name",
            "nope",
            "--token",
            &token,
        ])
        .fails_with("ResourceNotFoundException");
    let stranger = root
        .aws(&["iam", "create-user", "--user-name", "stranger"])
        .json();
    assert_eq!(stranger["User"]["UserName"], "stranger");
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "stranger"])
        .json();
    ClientEnv::keys(
        &server,
        key["AccessKey"]["AccessKeyId"].as_str().unwrap_or_default(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap_or_default(),
        None,
    )
    .aws(&[
        "eks-auth",
        "assume-role-for-pod-identity",
        "--cluster-name",
        "eks-workshop",
        "--token",
        &token,
    ])
    .fails_with("AccessDeniedException");

    let deleted = root
        .aws(&[
            "eks",
            "delete-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--association-id",
            &id,
        ])
        .json();
    assert_eq!(deleted["association"]["associationId"], id.as_str());
    root.aws(&[
        "eks",
        "describe-pod-identity-association",
        "--cluster-name",
        "eks-workshop",
        "--association-id",
        &id,
    ])
    .fails_with("ResourceNotFoundException");
    agent
        .aws(&[
            "eks-auth",
            "assume-role-for-pod-identity",
            "--cluster-name",
            "eks-workshop",
            "--token",
            &token,
        ])
        .fails_with("ResourceNotFoundException");
    root.aws(&["eks", "delete-cluster", "--name", "other"]).ok();
    root.aws(&["eks", "describe-cluster", "--name", "other"])
        .fails_with("ResourceNotFoundException");
}

/// IRSA where podiam hosts the cluster's issuer: no issuer to serve, no --allow-http-issuers.
#[test]
fn irsa_with_a_hosted_issuer() {
    let server = Server::start_with(&ServerOptions::default());
    let root = ClientEnv::root(&server);
    podiam(&root, &["cluster", "create", "--name", "dev"]).ok();
    let issuer = root
        .aws(&[
            "eks",
            "describe-cluster",
            "--name",
            "dev",
            "--query",
            "cluster.identity.oidc.issuer",
        ])
        .json()
        .as_str()
        .unwrap_or_default()
        .to_owned();
    root.aws(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        &issuer,
        "--client-id-list",
        "sts.amazonaws.com",
    ])
    .ok();
    let host = issuer.trim_start_matches("http://");
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::000000000000:oidc-provider/{host}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{host}:sub"): "system:serviceaccount:carts:carts"}}
    }]});
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "carts",
        "--assume-role-policy-document",
        &trust.to_string(),
    ])
    .ok();
    let token_file = server.dir().join("token");
    podiam(
        &root,
        &[
            "cluster",
            "token",
            "--cluster",
            "dev",
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--audience",
            "sts.amazonaws.com",
            "--out",
            &token_file.display().to_string(),
        ],
    )
    .ok();
    let pod = ClientEnv::new(&server)
        .set("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/carts")
        .set(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            &token_file.display().to_string(),
        );
    let me = pod.aws(&["sts", "get-caller-identity"]).json();
    assert!(
        me["Arn"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:sts::000000000000:assumed-role/carts/")),
        "{me}"
    );
    // The discovery documents are there for anyone else who wants them.
    let discovery = server
        .get(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_start_matches(&server.endpoint())
        ))
        .unwrap_or_default();
    assert!(
        discovery.contains(&format!("\"issuer\":\"{issuer}\"")),
        "{discovery}"
    );
}

#[test]
fn every_eks_operation_through_boto3() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let out = root
        .set("PODIAM_BIN", &podiam_bin().display().to_string())
        .python("boto3_eks.py", &[])
        .json();
    let sent: Vec<&str> = out["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for op in [
        "CreateCluster",
        "DescribeCluster",
        "ListClusters",
        "DeleteCluster",
        "CreatePodIdentityAssociation",
        "DescribePodIdentityAssociation",
        "ListPodIdentityAssociations",
        "UpdatePodIdentityAssociation",
        "DeletePodIdentityAssociation",
        "AssumeRoleForPodIdentity",
    ] {
        assert!(sent.contains(&op), "boto3 never called {op}: {out}");
    }
}

/// Clusters whose tokens a real kube-apiserver signs: keys by discovery (a loopback issuer),
/// or from an uploaded JWKS when the apiserver cannot be reached (no network at all).
#[test]
fn external_issuers_by_discovery_and_by_uploaded_jwks() {
    let server = Server::start();
    let issuer = podiam_e2e::TestIssuer::start();
    let root = ClientEnv::root(&server);
    let unreachable = "https://kube-apiserver.internal.example/cluster-2";
    podiam(
        &root,
        &[
            "cluster",
            "create",
            "--name",
            "by-discovery",
            "--external-issuer",
            issuer.url(),
        ],
    )
    .ok();
    podiam(
        &root,
        &[
            "cluster",
            "create",
            "--name",
            "by-jwks",
            "--external-issuer",
            unreachable,
            "--jwks-file",
            &issuer.jwks_file().display().to_string(),
        ],
    )
    .ok();
    // No hosted key: minting is refused with a reason.
    podiam(
        &root,
        &[
            "cluster",
            "token",
            "--cluster",
            "by-jwks",
            "--namespace",
            "a",
            "--service-account",
            "b",
            "--audience",
            "x",
        ],
    )
    .fails_with_text("external issuer");
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "pia",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .ok();
    for cluster in ["by-discovery", "by-jwks"] {
        root.aws(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            cluster,
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--role-arn",
            "arn:aws:iam::000000000000:role/pia",
        ])
        .ok();
    }
    let mint = |iss: &str, audience: &str| {
        podiam(
            &root,
            &[
                "token",
                "mint",
                "--key",
                &issuer.key_file().display().to_string(),
                "--issuer",
                iss,
                "--namespace",
                "carts",
                "--service-account",
                "carts",
                "--audience",
                audience,
                "--pod-name",
                "carts-abc",
            ],
        )
        .ok()
    };
    for (cluster, iss) in [("by-discovery", issuer.url()), ("by-jwks", unreachable)] {
        let granted = root
            .aws(&[
                "eks-auth",
                "assume-role-for-pod-identity",
                "--cluster-name",
                cluster,
                "--token",
                &mint(iss, "pods.eks.amazonaws.com"),
            ])
            .json();
        assert_eq!(
            granted["subject"],
            json!({"namespace": "carts", "serviceAccount": "carts"}),
            "{cluster}"
        );
    }
    // A token of the discovery issuer does not pass for the other cluster.
    root.aws(&[
        "eks-auth",
        "assume-role-for-pod-identity",
        "--cluster-name",
        "by-jwks",
        "--token",
        &mint(issuer.url(), "pods.eks.amazonaws.com"),
    ])
    .fails_with("InvalidTokenException");

    // IRSA with the unreachable issuer: its provider's keys come from the uploaded JWKS.
    root.aws(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        unreachable,
        "--client-id-list",
        "sts.amazonaws.com",
    ])
    .ok();
    let host = unreachable.trim_start_matches("https://");
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::000000000000:oidc-provider/{host}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{host}:sub"): "system:serviceaccount:carts:carts"}}
    }]});
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "irsa",
        "--assume-role-policy-document",
        &trust.to_string(),
    ])
    .ok();
    let web = ClientEnv::new(&server)
        .aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            "arn:aws:iam::000000000000:role/irsa",
            "--role-session-name",
            "pod",
            "--web-identity-token",
            &mint(unreachable, "sts.amazonaws.com"),
        ])
        .json();
    assert_eq!(
        web["SubjectFromWebIdentityToken"],
        "system:serviceaccount:carts:carts"
    );
}

/// Issue 17: a write whose answer was lost is retried with the same `--client-request-token`
/// (the AWS CLI and SDKs keep their generated one across their own retries) and gets the first
/// result, also from a restarted server; the same token with other parameters is an error.
/// IAM has no tokens: a retried create answers `EntityAlreadyExists`.
#[test]
fn client_request_tokens_make_retries_safe() {
    const TOKEN: &str = "9a91a181-e23b-42ab-8680-915f4ab42a32";
    let mut server = Server::start();
    let root = ClientEnv::root(&server);
    let create_cluster = |role: &str| {
        root.aws(&[
            "eks",
            "create-cluster",
            "--name",
            "c1",
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{role}"),
            "--resources-vpc-config",
            "subnetIds=subnet-1",
            "--client-request-token",
            TOKEN,
        ])
    };
    let cluster = create_cluster("cluster").json();
    assert_eq!(create_cluster("cluster").json(), cluster);
    create_cluster("other").fails_with("InvalidRequestException");

    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "pia",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .ok();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "pia",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .fails_with("EntityAlreadyExists");
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "other",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .ok();
    let create_association = |env: &ClientEnv, role: &str| {
        env.aws(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "c1",
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{role}"),
            "--client-request-token",
            TOKEN,
        ])
    };
    let association = create_association(&root, "pia").json();
    let id = association["association"]["associationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(id.starts_with("a-"), "{association}");
    let again = create_association(&root, "pia").json();
    assert_eq!(again["association"]["associationId"], id.as_str());
    create_association(&root, "other").fails_with("InvalidRequestException");
    // Without a token the CLI sends a fresh one: a new request, which finds the association.
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "c1",
        "--namespace",
        "carts",
        "--service-account",
        "carts",
        "--role-arn",
        "arn:aws:iam::000000000000:role/pia",
    ])
    .fails_with("ResourceInUseException");

    // The tokens are stored with what they made: a restart keeps them.
    server.restart(&ServerOptions::default());
    assert_eq!(create_association(&root, "pia").json(), association);
    assert_eq!(create_cluster("cluster").json(), cluster);
    let update = |role: &str| {
        root.aws(&[
            "eks",
            "update-pod-identity-association",
            "--cluster-name",
            "c1",
            "--association-id",
            &id,
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{role}"),
            "--client-request-token",
            "5f0c1c1e-7a43-4a0e-9a57-3d2b8f9e6c11",
        ])
    };
    let updated = update("other").json();
    assert_eq!(update("other").json(), updated);
    update("pia").fails_with("InvalidRequestException");
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "c1",
        "--namespace",
        "carts",
        "--service-account",
        "orders",
        "--role-arn",
        "arn:aws:iam::000000000000:role/pia",
        "--client-request-token",
        "short",
    ])
    .fails_with("InvalidParameterException");
}
