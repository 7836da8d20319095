//! The AWS CLI v1, unmodified, against the real server: the workshop's IRSA flow, every IAM
//! and STS operation, and refused credentials.

use podiam_e2e::{ClientEnv, Server, ServerOptions, TestIssuer, create_irsa_role};
use serde_json::{Value, json};

const ROLE: &str = "eks-workshop-carts-dynamo-irsa";

fn irsa_trust(issuer: &TestIssuer) -> Value {
    let host = issuer.host_path();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::000000000000:oidc-provider/{host}")},
            "Action": ["sts:TagSession", "sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {
                format!("{host}:sub"): "system:serviceaccount:carts:carts",
                format!("{host}:aud"): "sts.amazonaws.com"
            }}
        }]
    })
}

/// The workshop's page, step by step: the provider, the role and its trust policy, then a pod's
/// view: the CLI's own web-identity provider turns the token file into a session.
#[test]
fn workshop_irsa_flow() {
    let server = Server::start();
    let issuer = TestIssuer::start();
    let root = ClientEnv::root(&server);
    let provider = root
        .aws(&[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            issuer.url(),
            "--client-id-list",
            "sts.amazonaws.com",
        ])
        .json();
    assert_eq!(
        provider["OpenIDConnectProviderArn"],
        format!(
            "arn:aws:iam::000000000000:oidc-provider/{}",
            issuer.host_path()
        )
    );
    let trust = serde_json::to_string_pretty(&irsa_trust(&issuer)).unwrap_or_default();
    let trust_file = server.dir().join("trust.json");
    std::fs::write(&trust_file, &trust).unwrap_or_default();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        ROLE,
        "--assume-role-policy-document",
        &format!("file://{}", trust_file.display()),
    ])
    .json();
    root.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        ROLE,
        "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
    ])
    .ok();

    // The exact command of the workshop page.
    let shown = root
        .aws(&[
            "iam",
            "get-role",
            "--query",
            "Role.AssumeRolePolicyDocument",
            "--role-name",
            ROLE,
        ])
        .json();
    assert_eq!(shown, irsa_trust(&issuer));

    // Inside the pod: only the IRSA variables, no keys.
    let token_file = server.dir().join("token");
    std::fs::write(
        &token_file,
        issuer.mint("carts", "carts", "sts.amazonaws.com", &[]),
    )
    .unwrap_or_default();
    let pod = ClientEnv::new(&server)
        .set(
            "AWS_ROLE_ARN",
            &format!("arn:aws:iam::000000000000:role/{ROLE}"),
        )
        .set(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            &token_file.display().to_string(),
        )
        .set("AWS_ENDPOINT_URL_STS", &server.endpoint())
        .set("AWS_STS_REGIONAL_ENDPOINTS", "regional");
    let me = pod.aws(&["sts", "get-caller-identity"]).json();
    let arn = me["Arn"].as_str().unwrap_or_default();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::000000000000:assumed-role/{ROLE}/botocore-session-"
        )),
        "{me}"
    );
    assert_eq!(me["Account"], "000000000000");

    // Another service account's token is refused by the trust policy.
    std::fs::write(
        &token_file,
        issuer.mint("orders", "orders", "sts.amazonaws.com", &[]),
    )
    .unwrap_or_default();
    pod.aws(&["sts", "get-caller-identity"])
        .fails_with("AccessDenied");

    // The audit trail names the decision and never the token.
    let log = server.log();
    assert!(log.contains("credential_issued"), "{log}");
    assert!(log.contains("credential_denied"), "{log}");
    assert!(
        log.contains("system:serviceaccount:orders:orders (aud sts.amazonaws.com) via arn:aws:iam::000000000000:oidc-provider/"),
        "the denial names who was refused: {log}"
    );
    let token = std::fs::read_to_string(&token_file).unwrap_or_default();
    assert!(!log.contains(&token));
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(!log.contains(signature));
}

#[test]
fn users_access_keys_and_user_policies() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let user = root
        .aws(&[
            "iam",
            "create-user",
            "--user-name",
            "alice",
            "--path",
            "/dev/",
        ])
        .json();
    assert_eq!(
        user["User"]["Arn"],
        "arn:aws:iam::000000000000:user/dev/alice"
    );
    assert!(
        user["User"]["UserId"]
            .as_str()
            .is_some_and(|id| id.starts_with("AIDA") && id.len() == 21)
    );
    root.aws(&["iam", "create-user", "--user-name", "alice"])
        .fails_with("EntityAlreadyExists");
    assert_eq!(
        root.aws(&["iam", "get-user", "--user-name", "alice"])
            .json()["User"]["Path"],
        "/dev/"
    );
    for name in ["bob", "carol"] {
        root.aws(&["iam", "create-user", "--user-name", name]).ok();
    }
    // --page-size makes the CLI follow Marker/IsTruncated.
    let users = root.aws(&["iam", "list-users", "--page-size", "1"]).json();
    let names: Vec<&str> = users["Users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["UserName"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);

    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "alice"])
        .json();
    let id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40);
    let keys = root
        .aws(&["iam", "list-access-keys", "--user-name", "alice"])
        .json();
    assert_eq!(keys["AccessKeyMetadata"][0]["AccessKeyId"], id.as_str());
    assert_eq!(keys["AccessKeyMetadata"][0]["Status"], "Active");
    assert!(
        keys["AccessKeyMetadata"][0]
            .get("SecretAccessKey")
            .is_none()
    );

    let alice = ClientEnv::keys(&server, &id, &secret, None);
    assert_eq!(
        alice.aws(&["sts", "get-caller-identity"]).json()["Arn"],
        "arn:aws:iam::000000000000:user/dev/alice"
    );
    // No policy yet: denied with AWS's message.
    let denied = alice.aws(&["iam", "list-roles"]).fails_with("AccessDenied");
    assert!(
        denied.contains("User: arn:aws:iam::000000000000:user/dev/alice is not authorized to perform: iam:ListRoles on resource: arn:aws:iam::000000000000:role/ because no identity-based policy allows the iam:ListRoles action"),
        "{denied}"
    );

    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListRoles"], "Resource": "*"}
    ]});
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "alice",
        "--policy-name",
        "read",
        "--policy-document",
        &policy.to_string(),
    ])
    .ok();
    let got = root
        .aws(&[
            "iam",
            "get-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "read",
        ])
        .json();
    assert_eq!(got["PolicyDocument"], policy);
    assert_eq!(
        root.aws(&["iam", "list-user-policies", "--user-name", "alice"])
            .json()["PolicyNames"],
        json!(["read"])
    );
    alice.aws(&["iam", "list-roles"]).ok();
    // With no name, GetUser is the caller.
    assert_eq!(
        alice.aws(&["iam", "get-user"]).json()["User"]["UserName"],
        "alice"
    );

    root.aws(&[
        "iam",
        "attach-user-policy",
        "--user-name",
        "bob",
        "--policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ])
    .ok();
    let attached = root
        .aws(&["iam", "list-attached-user-policies", "--user-name", "bob"])
        .json();
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyName"],
        "ReadOnlyAccess"
    );
    root.aws(&[
        "iam",
        "detach-user-policy",
        "--user-name",
        "bob",
        "--policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ])
    .ok();
    assert_eq!(
        root.aws(&["iam", "list-attached-user-policies", "--user-name", "bob"])
            .json()["AttachedPolicies"],
        json!([])
    );

    // Deactivate, reactivate, delete.
    root.aws(&[
        "iam",
        "update-access-key",
        "--user-name",
        "alice",
        "--access-key-id",
        &id,
        "--status",
        "Inactive",
    ])
    .ok();
    alice
        .aws(&["sts", "get-caller-identity"])
        .fails_with("InvalidClientTokenId");
    root.aws(&[
        "iam",
        "update-access-key",
        "--user-name",
        "alice",
        "--access-key-id",
        &id,
        "--status",
        "Active",
    ])
    .ok();
    alice.aws(&["sts", "get-caller-identity"]).ok();
    root.aws(&["iam", "delete-user", "--user-name", "alice"])
        .fails_with("DeleteConflict");
    root.aws(&[
        "iam",
        "delete-access-key",
        "--user-name",
        "alice",
        "--access-key-id",
        &id,
    ])
    .ok();
    root.aws(&[
        "iam",
        "delete-user-policy",
        "--user-name",
        "alice",
        "--policy-name",
        "read",
    ])
    .ok();
    root.aws(&["iam", "delete-user", "--user-name", "alice"])
        .ok();
    root.aws(&["iam", "get-user", "--user-name", "alice"])
        .fails_with("NoSuchEntity");
    alice
        .aws(&["sts", "get-caller-identity"])
        .fails_with("InvalidClientTokenId");
}

#[test]
fn roles_tags_and_role_policies() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}
    ]});
    let created = root
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "app",
            "--path",
            "/svc/",
            "--description",
            "the app",
            "--max-session-duration",
            "7200",
            "--assume-role-policy-document",
            &trust.to_string(),
            "--tags",
            "Key=team,Value=carts",
        ])
        .json();
    assert_eq!(
        created["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/svc/app"
    );
    assert!(
        created["Role"]["RoleId"]
            .as_str()
            .is_some_and(|id| id.starts_with("AROA") && id.len() == 21)
    );
    let role = root.aws(&["iam", "get-role", "--role-name", "app"]).json();
    assert_eq!(role["Role"]["AssumeRolePolicyDocument"], trust);
    assert_eq!(role["Role"]["MaxSessionDuration"], 7200);
    assert_eq!(role["Role"]["Description"], "the app");
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "other",
        "--assume-role-policy-document",
        &trust.to_string(),
    ])
    .ok();
    let roles = root.aws(&["iam", "list-roles", "--page-size", "1"]).json();
    assert_eq!(roles["Roles"].as_array().map(Vec::len), Some(2));
    let only = root
        .aws(&["iam", "list-roles", "--path-prefix", "/svc/"])
        .json();
    assert_eq!(only["Roles"][0]["RoleName"], "app");

    root.aws(&[
        "iam",
        "update-role",
        "--role-name",
        "app",
        "--description",
        "renamed",
        "--max-session-duration",
        "3600",
    ])
    .ok();
    let new_trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    ]});
    root.aws(&[
        "iam",
        "update-assume-role-policy",
        "--role-name",
        "app",
        "--policy-document",
        &new_trust.to_string(),
    ])
    .ok();
    let role = root.aws(&["iam", "get-role", "--role-name", "app"]).json();
    assert_eq!(role["Role"]["Description"], "renamed");
    assert_eq!(role["Role"]["AssumeRolePolicyDocument"], new_trust);
    root.aws(&[
        "iam",
        "update-assume-role-policy",
        "--role-name",
        "app",
        "--policy-document",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\"}]}",
    ])
    .fails_with("MalformedPolicyDocument");

    root.aws(&[
        "iam",
        "tag-role",
        "--role-name",
        "app",
        "--tags",
        "Key=env,Value=dev",
        "Key=tier,Value=web",
    ])
    .ok();
    let tags = root
        .aws(&["iam", "list-role-tags", "--role-name", "app"])
        .json();
    assert_eq!(
        tags["Tags"],
        json!([{"Key": "team", "Value": "carts"}, {"Key": "env", "Value": "dev"}, {"Key": "tier", "Value": "web"}])
    );
    root.aws(&[
        "iam",
        "untag-role",
        "--role-name",
        "app",
        "--tag-keys",
        "env",
        "tier",
    ])
    .ok();
    assert_eq!(
        root.aws(&["iam", "list-role-tags", "--role-name", "app"])
            .json()["Tags"],
        json!([{"Key": "team", "Value": "carts"}])
    );

    let inline = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:*:table/Items"}
    ]});
    root.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "app",
        "--policy-name",
        "items",
        "--policy-document",
        &inline.to_string(),
    ])
    .ok();
    assert_eq!(
        root.aws(&[
            "iam",
            "get-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "items"
        ])
        .json()["PolicyDocument"],
        inline
    );
    assert_eq!(
        root.aws(&["iam", "list-role-policies", "--role-name", "app"])
            .json()["PolicyNames"],
        json!(["items"])
    );
    root.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "app",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
    ])
    .ok();
    assert_eq!(
        root.aws(&["iam", "list-attached-role-policies", "--role-name", "app"])
            .json()["AttachedPolicies"][0]["PolicyArn"],
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"
    );
    root.aws(&["iam", "delete-role", "--role-name", "app"])
        .fails_with("DeleteConflict");
    root.aws(&[
        "iam",
        "detach-role-policy",
        "--role-name",
        "app",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
    ])
    .ok();
    root.aws(&[
        "iam",
        "delete-role-policy",
        "--role-name",
        "app",
        "--policy-name",
        "items",
    ])
    .ok();
    root.aws(&["iam", "delete-role", "--role-name", "app"]).ok();
    root.aws(&["iam", "get-role", "--role-name", "app"])
        .fails_with("NoSuchEntity");
}

#[test]
fn managed_policies_and_versions() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let v1 = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    ]});
    let created = root
        .aws(&[
            "iam",
            "create-policy",
            "--policy-name",
            "reader",
            "--description",
            "reads",
            "--policy-document",
            &v1.to_string(),
        ])
        .json();
    let arn = created["Policy"]["Arn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/reader");
    assert_eq!(created["Policy"]["DefaultVersionId"], "v1");
    assert!(
        created["Policy"]["PolicyId"]
            .as_str()
            .is_some_and(|id| id.starts_with("ANPA"))
    );
    assert_eq!(
        root.aws(&["iam", "get-policy", "--policy-arn", &arn])
            .json()["Policy"]["PolicyName"],
        "reader"
    );
    assert_eq!(
        root.aws(&[
            "iam",
            "get-policy-version",
            "--policy-arn",
            &arn,
            "--version-id",
            "v1"
        ])
        .json()["PolicyVersion"]["Document"],
        v1
    );
    let local = root
        .aws(&["iam", "list-policies", "--scope", "Local"])
        .json();
    assert_eq!(local["Policies"].as_array().map(Vec::len), Some(1));
    let aws = root
        .aws(&["iam", "list-policies", "--scope", "AWS", "--page-size", "1"])
        .json();
    assert!(aws["Policies"].as_array().is_some_and(|p| p.len() >= 3));

    let v2 = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
    ]});
    let version = root
        .aws(&[
            "iam",
            "create-policy-version",
            "--policy-arn",
            &arn,
            "--policy-document",
            &v2.to_string(),
            "--set-as-default",
        ])
        .json();
    assert_eq!(version["PolicyVersion"]["VersionId"], "v2");
    assert_eq!(version["PolicyVersion"]["IsDefaultVersion"], true);
    let versions = root
        .aws(&["iam", "list-policy-versions", "--policy-arn", &arn])
        .json();
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(2));
    root.aws(&[
        "iam",
        "set-default-policy-version",
        "--policy-arn",
        &arn,
        "--version-id",
        "v1",
    ])
    .ok();
    assert_eq!(
        root.aws(&["iam", "get-policy", "--policy-arn", &arn])
            .json()["Policy"]["DefaultVersionId"],
        "v1"
    );
    root.aws(&[
        "iam",
        "delete-policy-version",
        "--policy-arn",
        &arn,
        "--version-id",
        "v1",
    ])
    .fails_with("DeleteConflict");
    root.aws(&[
        "iam",
        "delete-policy-version",
        "--policy-arn",
        &arn,
        "--version-id",
        "v2",
    ])
    .ok();
    root.aws(&[
        "iam",
        "create-policy",
        "--policy-name",
        "broken",
        "--policy-document",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Maybe\",\"Action\":\"*\",\"Resource\":\"*\"}]}",
    ])
    .fails_with("MalformedPolicyDocument");
    root.aws(&["iam", "delete-policy", "--policy-arn", &arn])
        .ok();
    root.aws(&["iam", "get-policy", "--policy-arn", &arn])
        .fails_with("NoSuchEntity");
}

#[test]
fn oidc_providers_and_simulation() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let url = "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
    let arn = root
        .aws(&[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            url,
            "--client-id-list",
            "sts.amazonaws.com",
            "--thumbprint-list",
            "9e99a48a9960b14926bb7f3b02e22da2b0ab7280",
        ])
        .json()["OpenIDConnectProviderArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        arn,
        "arn:aws:iam::000000000000:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C"
    );
    root.aws(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        url,
        "--client-id-list",
        "x",
    ])
    .fails_with("EntityAlreadyExists");
    root.aws(&[
        "iam",
        "add-client-id-to-open-id-connect-provider",
        "--open-id-connect-provider-arn",
        &arn,
        "--client-id",
        "pods.eks.amazonaws.com",
    ])
    .ok();
    root.aws(&[
        "iam",
        "update-open-id-connect-provider-thumbprint",
        "--open-id-connect-provider-arn",
        &arn,
        "--thumbprint-list",
        "0000000000000000000000000000000000000000",
    ])
    .ok();
    let got = root
        .aws(&[
            "iam",
            "get-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            &arn,
        ])
        .json();
    assert_eq!(
        got["Url"],
        "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C"
    );
    assert_eq!(
        got["ClientIDList"],
        json!(["sts.amazonaws.com", "pods.eks.amazonaws.com"])
    );
    assert_eq!(
        got["ThumbprintList"],
        json!(["0000000000000000000000000000000000000000"])
    );
    root.aws(&[
        "iam",
        "remove-client-id-from-open-id-connect-provider",
        "--open-id-connect-provider-arn",
        &arn,
        "--client-id",
        "pods.eks.amazonaws.com",
    ])
    .ok();
    let list = root.aws(&["iam", "list-open-id-connect-providers"]).json();
    assert_eq!(list["OpenIDConnectProviderList"][0]["Arn"], arn.as_str());
    root.aws(&[
        "iam",
        "delete-open-id-connect-provider",
        "--open-id-connect-provider-arn",
        &arn,
    ])
    .ok();
    root.aws(&[
        "iam",
        "get-open-id-connect-provider",
        "--open-id-connect-provider-arn",
        &arn,
    ])
    .fails_with("NoSuchEntity");

    // The policy simulator on a user's real policies and on a document.
    root.aws(&["iam", "create-user", "--user-name", "dev"]).ok();
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "dev",
        "--policy-name",
        "p",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},{"Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}]}"#,
    ])
    .ok();
    let sim = root
        .aws(&[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::000000000000:user/dev",
            "--action-names",
            "dynamodb:GetItem",
            "dynamodb:DeleteTable",
            "s3:GetObject",
        ])
        .json();
    let decisions: Vec<(&str, &str)> = sim["EvaluationResults"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["EvalActionName"].as_str().unwrap_or_default(),
                r["EvalDecision"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("dynamodb:GetItem", "allowed"),
            ("dynamodb:DeleteTable", "explicitDeny"),
            ("s3:GetObject", "implicitDeny")
        ]
    );
    let custom = root
        .aws(&[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"carts"}}}]}"#,
            "--action-names",
            "s3:GetObject",
            "--resource-arns",
            "arn:aws:s3:::bucket/key",
            "--context-entries",
            "ContextKeyName=aws:PrincipalTag/team,ContextKeyValues=carts,ContextKeyType=string",
        ])
        .json();
    assert_eq!(custom["EvaluationResults"][0]["EvalDecision"], "allowed");
}

#[test]
fn assume_role_chaining_and_web_identity() {
    let server = Server::start();
    let issuer = TestIssuer::start();
    let root = ClientEnv::root(&server);
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
         "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
         "Condition": {"StringEquals": {"sts:ExternalId": "ext-123"}}}
    ]});
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "deployer",
        "--assume-role-policy-document",
        &trust.to_string(),
    ])
    .ok();
    root.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "deployer",
        "--policy-name",
        "who",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GetRole","sts:AssumeRole"],"Resource":"*"}]}"#,
    ])
    .ok();
    let role_arn = "arn:aws:iam::000000000000:role/deployer";
    root.aws(&[
        "sts",
        "assume-role",
        "--role-arn",
        role_arn,
        "--role-session-name",
        "ci",
    ])
    .fails_with("AccessDenied");
    let assumed = root
        .aws(&[
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            "ci",
            "--external-id",
            "ext-123",
            "--source-identity",
            "alice",
            "--tags",
            "Key=team,Value=carts",
            "--transitive-tag-keys",
            "team",
            "--duration-seconds",
            "1800",
        ])
        .json();
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::000000000000:assumed-role/deployer/ci"
    );
    assert_eq!(assumed["SourceIdentity"], "alice");
    assert!(assumed["PackedPolicySize"].as_i64().is_some());
    let creds = &assumed["Credentials"];
    let session = ClientEnv::keys(
        &server,
        creds["AccessKeyId"].as_str().unwrap_or_default(),
        creds["SecretAccessKey"].as_str().unwrap_or_default(),
        creds["SessionToken"].as_str(),
    );
    assert_eq!(
        session.aws(&["sts", "get-caller-identity"]).json()["Arn"],
        "arn:aws:sts::000000000000:assumed-role/deployer/ci"
    );
    session
        .aws(&["iam", "get-role", "--role-name", "deployer"])
        .ok();
    session
        .aws(&["iam", "list-roles"])
        .fails_with("AccessDenied");
    // Role chaining is limited to one hour.
    session
        .aws(&[
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            "chained",
            "--external-id",
            "ext-123",
            "--duration-seconds",
            "7200",
        ])
        .fails_with("ValidationError");

    // AssumeRoleWithWebIdentity called explicitly, with every response field.
    create_irsa_role(&root, &issuer, ROLE, "carts", "carts");
    let token = issuer.mint("carts", "carts", "sts.amazonaws.com", &[]);
    let web = ClientEnv::new(&server)
        .aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{ROLE}"),
            "--role-session-name",
            "carts",
            "--web-identity-token",
            &token,
            "--duration-seconds",
            "900",
        ])
        .json();
    assert_eq!(
        web["SubjectFromWebIdentityToken"],
        "system:serviceaccount:carts:carts"
    );
    assert_eq!(web["Audience"], "sts.amazonaws.com");
    assert_eq!(
        web["Provider"],
        format!(
            "arn:aws:iam::000000000000:oidc-provider/{}",
            issuer.host_path()
        )
    );
    // The CLI does not check patterns client-side; the server does.
    ClientEnv::new(&server)
        .aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{ROLE}"),
            "--role-session-name",
            "has space",
            "--web-identity-token",
            &token,
        ])
        .fails_with("ValidationError");
    // An expired token.
    let old = issuer.mint(
        "carts",
        "carts",
        "sts.amazonaws.com",
        &["--now", "2020-01-01T00:00:00Z", "--ttl", "600"],
    );
    ClientEnv::new(&server)
        .aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{ROLE}"),
            "--role-session-name",
            "carts",
            "--web-identity-token",
            &old,
        ])
        .fails_with("ExpiredTokenException");
}

#[test]
fn tampered_unknown_and_expired_credentials_are_refused() {
    let mut server = Server::start();
    let issuer = TestIssuer::start();
    let root = ClientEnv::root(&server);
    let (id, secret) = server.root_keys();
    let mut tampered = secret.clone().into_bytes();
    if let Some(last) = tampered.last_mut() {
        *last = if *last == b'A' { b'B' } else { b'A' };
    }
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    ClientEnv::keys(&server, &id, &tampered, None)
        .aws(&["sts", "get-caller-identity"])
        .fails_with("SignatureDoesNotMatch");
    ClientEnv::keys(&server, "AKIAIOSFODNN7EXAMPLE", &secret, None)
        .aws(&["iam", "list-users"])
        .fails_with("InvalidClientTokenId");

    create_irsa_role(&root, &issuer, ROLE, "carts", "carts");
    let token = issuer.mint("carts", "carts", "sts.amazonaws.com", &[]);
    let web = ClientEnv::new(&server)
        .aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            &format!("arn:aws:iam::000000000000:role/{ROLE}"),
            "--role-session-name",
            "carts",
            "--web-identity-token",
            &token,
        ])
        .json();
    let creds = &web["Credentials"];
    let (key, secret, session_token) = (
        creds["AccessKeyId"].as_str().unwrap_or_default().to_owned(),
        creds["SecretAccessKey"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        creds["SessionToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let session = ClientEnv::keys(&server, &key, &secret, Some(&session_token));
    session.aws(&["sts", "get-caller-identity"]).ok();
    // A session token with one character changed.
    let mut bad = session_token.clone().into_bytes();
    if let Some(c) = bad.get_mut(40) {
        *c = if *c == b'x' { b'y' } else { b'x' };
    }
    ClientEnv::keys(
        &server,
        &key,
        &secret,
        Some(&String::from_utf8(bad).unwrap_or_default()),
    )
    .aws(&["sts", "get-caller-identity"])
    .fails_with("InvalidClientTokenId");
    // Two hours later (server and client clocks moved with libfaketime) the session is over.
    server.restart(&ServerOptions {
        faketime: Some("+2h".into()),
        ..ServerOptions::default()
    });
    ClientEnv::keys(&server, &key, &secret, Some(&session_token))
        .faketime("+2h")
        .aws(&["sts", "get-caller-identity"])
        .fails_with("ExpiredToken");
    // The long-term root key still works at that time.
    ClientEnv::root(&server)
        .faketime("+2h")
        .aws(&["sts", "get-caller-identity"])
        .ok();
}
