//! The server refuses, through the AWS CLI, the policies AWS refuses (issue 16): a trust
//! policy with `NotPrincipal` (which used to let in the one principal it names), `NotPrincipal`
//! with `Allow` anywhere, and a principal in an identity policy. Each is `MalformedPolicyDocument`
//! with HTTP 400 and AWS's message, and the role never gets the policy.

use podiam_e2e::{ClientEnv, Server};
use serde_json::json;

/// The account the root credentials belong to.
fn account_of(root: &ClientEnv) -> String {
    root.aws(&["sts", "get-caller-identity"])
        .json()
        .get("Account")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Creates role `app`, trusting its account; returns the trust policy.
fn create_app_role(root: &ClientEnv, account: &str) -> String {
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
    trust
}

#[test]
fn invalid_policies_are_refused_on_the_wire() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let account = account_of(&root);
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

    let trust = create_app_role(&root, &account);
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

/// One invalid document, the call that carries it, and what AWS answers.
struct Refusal {
    name: &'static str,
    /// The CLI's service, operation and arguments before the document's flag.
    call: &'static [&'static str],
    /// The flag that takes the document.
    flag: &'static str,
    document: String,
    code: &'static str,
    message: String,
}

fn statement(fields: serde_json::Value) -> String {
    json!({"Version": "2012-10-17", "Statement": [fields]}).to_string()
}

/// A document of `kind`'s shape, padded with `Sid`-free actions until it has `chars`
/// characters not counting whitespace.
fn padded(chars: usize, trust: bool) -> String {
    let mut actions = Vec::new();
    let mut doc = String::new();
    while doc.len() <= chars {
        actions.push(format!("s3:GetObjectVersion{}", actions.len()));
        doc = if trust {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": actions}}}]})
            .to_string()
        } else {
            statement(json!({"Effect": "Allow", "Action": actions, "Resource": "*"}))
        };
    }
    doc
}

fn refusals(account: &str) -> Vec<Refusal> {
    const CREATE_ROLE: &[&str] = &["iam", "create-role", "--role-name", "refused"];
    const UPDATE_TRUST: &[&str] = &["iam", "update-assume-role-policy", "--role-name", "app"];
    const PUT_ROLE: &[&str] = &[
        "iam",
        "put-role-policy",
        "--role-name",
        "app",
        "--policy-name",
        "p",
    ];
    const PUT_USER: &[&str] = &[
        "iam",
        "put-user-policy",
        "--user-name",
        "bob",
        "--policy-name",
        "p",
    ];
    const CREATE_POLICY: &[&str] = &["iam", "create-policy", "--policy-name", "refused"];
    const BOUNDARY: &[&str] = &["iam", "create-policy", "--policy-name", "boundary"];
    let trust = |fields: serde_json::Value| statement(fields);
    let ec2 = json!({"Service": "ec2.amazonaws.com"});
    let syntax = "Syntax errors in policy.".to_owned();
    let vendor =
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.".to_owned();
    let refusal = |name, call, flag, document, code, message: &str| Refusal {
        name,
        call,
        flag,
        document,
        code,
        message: message.to_owned(),
    };
    let malformed = |name, call, flag, document, message: &str| {
        refusal(
            name,
            call,
            flag,
            document,
            "MalformedPolicyDocument",
            message,
        )
    };
    vec![
        // Trust policies: CreateRole and UpdateAssumeRolePolicy.
        malformed("trust NotPrincipal with Deny", CREATE_ROLE, "--assume-role-policy-document",
            trust(json!({"Effect": "Deny", "NotPrincipal": {"AWS": account}, "Action": "sts:AssumeRole"})),
            "Has prohibited field NotPrincipal"),
        malformed("trust without Principal", UPDATE_TRUST, "--policy-document",
            trust(json!({"Effect": "Allow", "Action": "sts:AssumeRole"})),
            "Missing required field Principal"),
        malformed("trust with Resource", CREATE_ROLE, "--assume-role-policy-document",
            trust(json!({"Effect": "Allow", "Principal": ec2, "Action": "sts:AssumeRole", "Resource": "*"})),
            "Has prohibited field Resource"),
        malformed("trust granting a non-STS action", UPDATE_TRUST, "--policy-document",
            trust(json!({"Effect": "Allow", "Principal": ec2, "Action": "s3:GetObject"})),
            "AssumeRole policy may only specify STS AssumeRole actions."),
        malformed("trust naming a group", CREATE_ROLE, "--assume-role-policy-document",
            trust(json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:group/admins")}, "Action": "sts:AssumeRole"})),
            &format!("Invalid principal in policy: \"AWS\":\"arn:aws:iam::{account}:group/admins\"")),
        malformed("trust with a wildcard service", CREATE_ROLE, "--assume-role-policy-document",
            trust(json!({"Effect": "Allow", "Principal": {"Service": "*.amazonaws.com"}, "Action": "sts:AssumeRole"})),
            "Invalid principal in policy: \"Service\":\"*.amazonaws.com\""),
        malformed("trust with an unknown principal type", CREATE_ROLE, "--assume-role-policy-document",
            trust(json!({"Effect": "Allow", "Principal": {"Kubernetes": "carts"}, "Action": "sts:AssumeRole"})),
            "Invalid principal in policy: \"Kubernetes\""),
        refusal("trust over its quota", CREATE_ROLE, "--assume-role-policy-document",
            padded(2_048, true), "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048"),
        // Identity policies: inline (role and user) and managed (CreatePolicy, versions).
        malformed("identity with Principal", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})),
            "Policy document should not specify a principal."),
        malformed("identity with NotPrincipal and Deny", PUT_USER, "--policy-document",
            statement(json!({"Effect": "Deny", "NotPrincipal": {"AWS": account}, "Action": "s3:*", "Resource": "*"})),
            "Policy document should not specify a principal."),
        malformed("managed policy without Version", CREATE_POLICY, "--policy-document",
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).to_string(),
            "Policy document must be version 2012-10-17 or greater."),
        malformed("unknown Version", PUT_ROLE, "--policy-document",
            json!({"Version": "2012-10-18", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).to_string(),
            &syntax),
        malformed("no Action", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Resource": "*"})),
            "Policy statement must contain actions."),
        malformed("no Resource", CREATE_POLICY, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:*"})),
            "Policy statement must contain resources."),
        malformed("Action and NotAction together", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"})),
            &syntax),
        malformed("action without vendor", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "GetObject", "Resource": "*"})),
            &vendor),
        malformed("action with two colons", PUT_USER, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:Get:Object", "Resource": "*"})),
            "Actions/Condition can contain only one colon."),
        malformed("condition key without vendor", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"username": "bob"}}})),
            &vendor),
        malformed("unknown condition operator", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualz": {"aws:username": "bob"}}})),
            &syntax),
        malformed("a date that is not one", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}})),
            "The policy failed legacy parsing"),
        malformed("lower-case Effect", CREATE_POLICY, "--policy-document",
            statement(json!({"Effect": "allow", "Action": "s3:*", "Resource": "*"})),
            "The policy failed legacy parsing"),
        malformed("resource that is not an ARN", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "carts"})),
            "Resource carts must be in ARN format or \"*\"."),
        malformed("IAM resource with a region", PUT_ROLE, "--policy-document",
            statement(json!({"Effect": "Allow", "Action": "iam:*", "Resource": format!("arn:aws:iam:us-east-1:{account}:role/x")})),
            &format!("IAM resource arn:aws:iam:us-east-1:{account}:role/x cannot contain region information.")),
        malformed("duplicate Sid", CREATE_POLICY, "--policy-document",
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Sid": "A", "Effect": "Deny", "Action": "iam:*", "Resource": "*"}]}).to_string(),
            "Statement IDs (SID) in a single policy must be unique."),
        malformed("Sid with punctuation", PUT_ROLE, "--policy-document",
            statement(json!({"Sid": "read-only", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})),
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"),
        malformed("duplicate member", PUT_ROLE, "--policy-document",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Effect":"Allow","Action":"s3:*","Resource":"*"}}"#.to_owned(),
            &syntax),
        malformed("not JSON", BOUNDARY, "--policy-document", "Allow everything".to_owned(), &syntax),
        refusal("managed policy over its quota", CREATE_POLICY, "--policy-document",
            padded(6_144, false), "LimitExceeded", "Cannot exceed quota for PolicySize: 6144"),
        // Session policies: AssumeRole.
        malformed("session policy with Principal", &["sts", "assume-role", "--role-arn", "ROLE", "--role-session-name", "grammar"], "--policy",
            statement(json!({"Effect": "Allow", "Principal": {"AWS": account}, "Action": "s3:*", "Resource": "*"})),
            "Policy document should not specify a principal."),
        // An oversized session policy never leaves the CLI (botocore checks its 2,048-character
        // maximum); the server's own PackedPolicyTooLarge is covered by podiam-wire's tests.
        malformed("session policy with NotPrincipal", &["sts", "assume-role", "--role-arn", "ROLE", "--role-session-name", "grammar"], "--policy",
            statement(json!({"Effect": "Deny", "NotPrincipal": {"AWS": account}, "Action": "s3:*", "Resource": "*"})),
            "Policy document should not specify a principal."),
    ]
}

/// Every grammar rule podiam enforces, through the AWS CLI: the error code, the HTTP status, the
/// `Sender` fault and AWS's exact message, for each call that takes that kind of policy.
#[test]
fn each_invalid_policy_is_refused_with_aws_error() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    let account = account_of(&root);
    let trust = create_app_role(&root, &account);
    root.aws(&["iam", "create-user", "--user-name", "bob"]).ok();
    let role = format!("arn:aws:iam::{account}:role/app");
    let cases = refusals(&account);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in cases {
        let mut args: Vec<&str> = case
            .call
            .iter()
            .map(|a| if *a == "ROLE" { role.as_str() } else { a })
            .collect();
        args.extend([case.flag, case.document.as_str(), "--debug"]);
        let stderr = root.aws(&args).fails_with(case.code);
        let operation = stderr
            .lines()
            .rev()
            .find(|l| l.contains("An error occurred ("))
            .unwrap_or_default();
        assert!(
            operation.ends_with(&format!("operation: {}", case.message)),
            "{}: expected {:?}, got {operation:?}",
            case.name,
            case.message
        );
        // IAM's LimitExceeded is a conflict (409); everything else here is a bad request.
        let status = if case.code == "LimitExceeded" {
            409
        } else {
            400
        };
        assert!(
            stderr.contains(&format!("\"POST / HTTP/1.1\" {status} ")),
            "{}: not HTTP {status}",
            case.name
        );
        assert!(
            stderr.contains("<Type>Sender</Type>"),
            "{}: not a Sender fault",
            case.name
        );
    }
    // Nothing refused was stored.
    root.aws(&["iam", "get-role", "--role-name", "refused"])
        .fails_with("NoSuchEntity");
    let policies = root
        .aws(&["iam", "list-policies", "--scope", "Local"])
        .json();
    assert_eq!(policies["Policies"], json!([]));
    let inline = root
        .aws(&["iam", "list-role-policies", "--role-name", "app"])
        .json();
    assert_eq!(inline["PolicyNames"], json!([]));
    assert_eq!(
        root.aws(&["iam", "get-role", "--role-name", "app"]).json()["Role"]["AssumeRolePolicyDocument"],
        serde_json::from_str::<serde_json::Value>(&trust).unwrap_or_default()
    );
}

/// An EKS pod identity association's `policy` is a session policy; EKS refuses a bad one with
/// `InvalidParameterException` when the association is made.
#[test]
fn association_session_policies_are_checked() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    root.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "c1",
        "--role-arn",
        "arn:aws:iam::111122223333:role/cluster",
        "--resources-vpc-config",
        "subnetIds=subnet-1",
    ])
    .ok();
    let associate = |policy: &str, disable_session_tags: bool| {
        let mut args = vec![
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "c1",
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--role-arn",
            "arn:aws:iam::111122223333:role/carts",
            "--policy",
            policy,
        ];
        if disable_session_tags {
            args.push("--disable-session-tags");
        }
        root.aws(&args)
    };
    let bad =
        statement(json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}));
    let refused = associate(&bad, true).fails_with("InvalidParameterException");
    assert!(
        refused.contains("Policy document should not specify a principal."),
        "{refused}"
    );
    let good = statement(json!({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}));
    let tagged = associate(&good, false).fails_with("InvalidParameterException");
    assert!(tagged.contains("disableSessionTags"), "{tagged}");
    associate(&good, true).ok();
}
