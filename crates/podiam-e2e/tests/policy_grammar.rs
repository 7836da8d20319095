//! The server refuses, through the AWS CLI, the policies AWS refuses (issue 16): a trust
//! policy with `NotPrincipal` (which used to let in the one principal it names), `NotPrincipal`
//! with `Allow` anywhere, and a principal in an identity policy. Each is `MalformedPolicyDocument`
//! with HTTP 400 and AWS's message, and the role never gets the policy.

use podiam_e2e::{ClientEnv, Server};
use serde_json::json;

#[test]
fn invalid_policies_are_refused_on_the_wire() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let account = root
        .aws(&["sts", "get-caller-identity"])
        .json()
        .get("Account")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default();
    let bob = format!("arn:aws:iam::{account}:user/bob");
    let everyone_but_bob = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "NotPrincipal": {"AWS": bob}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let refused = root
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "open",
            "--assume-role-policy-document",
            &everyone_but_bob,
        ])
        .fails_with("MalformedPolicyDocument");
    assert!(
        refused.contains("Has prohibited field NotPrincipal"),
        "{refused}"
    );
    root.aws(&["iam", "get-role", "--role-name", "open"])
        .fails_with("NoSuchEntity");

    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}]})
    .to_string();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "app",
        "--assume-role-policy-document",
        &trust,
    ])
    .ok();
    root.aws(&[
        "iam",
        "update-assume-role-policy",
        "--role-name",
        "app",
        "--policy-document",
        &everyone_but_bob,
    ])
    .fails_with("MalformedPolicyDocument");
    let role = root.aws(&["iam", "get-role", "--role-name", "app"]).json();
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"],
        serde_json::from_str::<serde_json::Value>(&trust).unwrap_or_default()
    );

    // A principal in an identity-based policy, inline and managed.
    let with_principal = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "NotPrincipal": {"AWS": bob}, "Action": "s3:*", "Resource": "*"}]})
    .to_string();
    let refused = root
        .aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "p",
            "--policy-document",
            &with_principal,
        ])
        .fails_with("MalformedPolicyDocument");
    assert!(
        refused.contains("Policy document should not specify a principal."),
        "{refused}"
    );
    root.aws(&[
        "iam",
        "create-policy",
        "--policy-name",
        "p",
        "--policy-document",
        &with_principal,
    ])
    .fails_with("MalformedPolicyDocument");
    let valid = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:GetObject", "Resource": "*"}]})
    .to_string();
    let created = root
        .aws(&[
            "iam",
            "create-policy",
            "--policy-name",
            "p",
            "--policy-document",
            &valid,
        ])
        .json();
    let arn = created["Policy"]["Arn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    root.aws(&[
        "iam",
        "create-policy-version",
        "--policy-arn",
        &arn,
        "--policy-document",
        &with_principal,
    ])
    .fails_with("MalformedPolicyDocument");

    // A session policy with NotPrincipal, passed to AssumeRole.
    let role = format!("arn:aws:iam::{account}:role/app");
    root.aws(&[
        "sts",
        "assume-role",
        "--role-arn",
        &role,
        "--role-session-name",
        "grammar",
        "--policy",
        &with_principal,
    ])
    .fails_with("MalformedPolicyDocument");
}
