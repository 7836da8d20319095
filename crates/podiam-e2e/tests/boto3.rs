//! boto3, unmodified, against the real server: every operation (py/boto3_every_operation.py),
//! and the default credential chain with IRSA's environment variables.

use podiam_e2e::{ClientEnv, Server, TestIssuer, create_irsa_role};

#[test]
fn every_operation_through_boto3() {
    let server = Server::start();
    let issuer = TestIssuer::start();
    let token = issuer.mint("carts", "carts", "sts.amazonaws.com", &[]);
    let out = ClientEnv::root(&server)
        .set("PODIAM_ISSUER_URL", issuer.url())
        .set("PODIAM_TOKEN", &token)
        .python("boto3_every_operation.py", &["all"])
        .json();
    let checked = out["checked"].as_u64().unwrap_or_default();
    assert!(checked >= 50, "only {checked} checks ran: {out}");
    let sent: Vec<&str> = out["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let missing: Vec<&&str> = OPERATIONS.iter().filter(|op| !sent.contains(op)).collect();
    assert!(missing.is_empty(), "boto3 never called {missing:?}");
}

/// Every operation the server implements.
const OPERATIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "PutUserPolicy",
    "GetUserPolicy",
    "ListUserPolicies",
    "DeleteUserPolicy",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateRole",
    "UpdateAssumeRolePolicy",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "CreatePolicy",
    "GetPolicy",
    "GetPolicyVersion",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "ListOpenIDConnectProviders",
    "DeleteOpenIDConnectProvider",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "GetCallerIdentity",
];

#[test]
fn boto3_default_chain_uses_the_web_identity_token_file() {
    let server = Server::start();
    let issuer = TestIssuer::start();
    let root = ClientEnv::root(&server);
    create_irsa_role(&root, &issuer, "carts", "carts", "carts");
    let get_role = ["iam", "get-role", "--role-name", "carts"];
    let unused = root.aws(&get_role).json();
    assert_eq!(
        unused["Role"]["RoleLastUsed"],
        serde_json::json!({}),
        "{unused}"
    );
    let token_file = server.dir().join("token");
    std::fs::write(
        &token_file,
        issuer.mint("carts", "carts", "sts.amazonaws.com", &[]),
    )
    .unwrap_or_default();
    let out = ClientEnv::new(&server)
        .set("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/carts")
        .set(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            &token_file.display().to_string(),
        )
        .set("AWS_ENDPOINT_URL_STS", &server.endpoint())
        .python("boto3_every_operation.py", &["irsa"])
        .json();
    let arn = out["Arn"].as_str().unwrap_or_default();
    assert!(
        arn.starts_with("arn:aws:sts::000000000000:assumed-role/carts/botocore-session-"),
        "{out}"
    );
    // The role's use is recorded in the background, and `aws iam get-role` shows it.
    let mut role = serde_json::Value::Null;
    for _ in 0..50 {
        role = root.aws(&get_role).json();
        if role["Role"]["RoleLastUsed"]["LastUsedDate"].is_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let last_used = &role["Role"]["RoleLastUsed"];
    assert!(last_used["LastUsedDate"].is_string(), "{role}");
    assert!(
        last_used["Region"].as_str().is_some_and(|r| !r.is_empty()),
        "{role}"
    );
}
