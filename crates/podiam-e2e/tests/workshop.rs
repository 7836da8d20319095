//! The EKS workshop's "Access to AWS services" page, end to end on one machine: `podiam dev
//! --scenario eks-workshop` with moto_server's DynamoDB behind the gateway, the `carts` service
//! run by `podiam exec` through IRSA, then Pod Identity; a pod without DynamoDB rights, a pod
//! without an identity (the node role through IMDS), and one ABAC policy shared by two
//! namespaces. The AWS CLI commands of the page print what the page prints.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failed step stops the test with its message"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use podiam_e2e::{DevStack, Process, podiam_bin, workspace};
use serde_json::{Value, json};

const ACCOUNT: &str = "637423329338";
const ISSUER: &str = "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
const TABLE: &str = "eks-workshop-carts";

/// The `carts` binary beside the running test (`cargo build -p carts`), or `CARTS_BIN`.
fn carts_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CARTS_BIN") {
        return PathBuf::from(bin);
    }
    let bin = podiam_bin().with_file_name("carts");
    assert!(
        bin.is_file(),
        "{} is not built: run `cargo build -p carts` (or set CARTS_BIN)",
        bin.display()
    );
    bin
}

/// `env | grep AWS` in such a pod, as a map.
fn aws_env(stack: &DevStack, exec_args: &[&str]) -> BTreeMap<String, String> {
    stack
        .exec(exec_args, &["env"])
        .ok()
        .lines()
        .filter(|l| l.starts_with("AWS_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The carts service run as a pod by `podiam exec`; its base URL.
fn start_carts(stack: &DevStack, exec_args: &[&str], name: &'static str) -> (Process, String) {
    let carts = carts_bin().display().to_string();
    let mut args = vec!["exec"];
    args.extend_from_slice(exec_args);
    args.extend([
        "--",
        &carts,
        "--listen",
        "127.0.0.1:0",
        "--table",
        TABLE,
        "--create-table",
    ]);
    let command = stack.shell().command(&podiam_bin(), &args);
    Process::start(name, command, |line| {
        line.strip_prefix("carts: listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    })
}

/// A carts API call: status and JSON body.
fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut args = vec!["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method];
    let text;
    if let Some(body) = body {
        text = body.to_string();
        args.extend(["-H", "content-type: application/json", "-d", &text]);
    }
    args.push(url);
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .expect("curl runs");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = out.rsplit_once('\n').expect("curl printed a status");
    let status = status.trim().parse().expect("a status code");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The page's `aws iam get-role --query 'Role.AssumeRolePolicyDocument' … | jq .` output.
fn page_trust(role: &str) -> Value {
    let text = match role {
        "eks-workshop-carts-dynamo-irsa" => format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"}},"Action":["sts:TagSession","sts:AssumeRoleWithWebIdentity"],"Condition":{{"StringEquals":{{"{ISSUER}:sub":"system:serviceaccount:carts:carts"}}}}}}]}}"#
        ),
        _ => r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:TagSession","sts:AssumeRole"]}]}"#.to_owned(),
    };
    serde_json::from_str(&text).expect("the page's JSON")
}

fn association_id(stack: &DevStack, namespace: &str) -> Option<String> {
    let list = stack
        .shell()
        .aws(&[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            "eks-workshop",
            "--namespace",
            namespace,
        ])
        .json();
    list["associations"][0]["associationId"]
        .as_str()
        .map(str::to_owned)
}

fn create_association(stack: &DevStack, namespace: &str, service_account: &str, role: &str) {
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
            service_account,
            "--role-arn",
            &format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
        ])
        .ok();
}

/// Test 6: the page's commands print what the page prints (ids aside).
fn the_pages_commands(stack: &DevStack) {
    let shell = stack.shell();
    for role in [
        "eks-workshop-carts-dynamo-irsa",
        "eks-workshop-carts-dynamo-pia",
    ] {
        let printed = shell
            .aws(&[
                "iam",
                "get-role",
                "--query",
                "Role.AssumeRolePolicyDocument",
                "--role-name",
                role,
            ])
            .json();
        assert_eq!(printed, page_trust(role), "{role}");
    }
    let list = stack.carts_associations();
    let id = list["associations"][0]["associationId"]
        .as_str()
        .expect("an association id")
        .to_owned();
    assert!(
        id.len() == 19
            && id.starts_with("a-")
            && id[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(
        list,
        json!({"associations": [{
            "clusterName": "eks-workshop",
            "namespace": "carts",
            "serviceAccount": "carts",
            "associationArn": format!("arn:aws:eks:eu-central-1:{ACCOUNT}:podidentityassociation/eks-workshop/{id}"),
            "associationId": id,
        }]})
    );
}

/// Adds an item for `customer` and reads the cart back.
fn add_and_read(base: &str, customer: &str, item: &str) -> Value {
    let line = json!({"itemId": item, "quantity": 2, "unitPrice": 795});
    assert_eq!(
        call(
            "POST",
            &format!("{base}/carts/{customer}/items"),
            Some(&line)
        ),
        (201, line.clone())
    );
    let (status, cart) = call("GET", &format!("{base}/carts/{customer}"), None);
    assert_eq!(status, 200, "{cart}");
    cart
}

#[test]
fn the_workshop_end_to_end() {
    let mut stack = DevStack::start();
    the_pages_commands(&stack);
    let workshop_sa = workspace()
        .join("examples/eks-workshop/carts-serviceaccount.yaml")
        .display()
        .to_string();

    // 1. IRSA: the page's annotated ServiceAccount, no association yet (the IRSA lab).
    let id = association_id(&stack, "carts").expect("the scenario's association");
    stack
        .shell()
        .aws(&[
            "eks",
            "delete-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--association-id",
            &id,
        ])
        .ok();
    let irsa = ["-f", workshop_sa.as_str()];
    let env = aws_env(&stack, &irsa);
    let page_irsa = [
        ("AWS_REGION", "eu-central-1".to_owned()),
        (
            "AWS_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-irsa"),
        ),
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional".to_owned()),
        ("AWS_DEFAULT_REGION", "eu-central-1".to_owned()),
    ];
    for (name, value) in &page_irsa {
        assert_eq!(env.get(*name), Some(value), "{name} in {env:?}");
    }
    let token_file = &env["AWS_WEB_IDENTITY_TOKEN_FILE"];
    assert!(
        token_file.ends_with("/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
        "{token_file}"
    );
    assert!(!env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    let who = stack
        .exec(
            &irsa,
            &["aws", "sts", "get-caller-identity", "--output", "json"],
        )
        .ok();
    assert!(
        who.contains(":assumed-role/eks-workshop-carts-dynamo-irsa/"),
        "{who}"
    );
    {
        let (_carts, base) = start_carts(&stack, &irsa, "carts (IRSA)");
        let cart = add_and_read(&base, "alice", "sock");
        assert_eq!(
            cart["items"],
            json!([{"itemId": "sock", "quantity": 2, "unitPrice": 795}])
        );
    }

    // 2. Pod Identity: the annotation removed, the association present (the Pod Identity lab).
    create_association(&stack, "carts", "carts", "eks-workshop-carts-dynamo-pia");
    let pia = ["--namespace", "carts", "--service-account", "carts"];
    let env = aws_env(&stack, &pia);
    for (name, value) in [
        ("AWS_DEFAULT_REGION", "eu-central-1"),
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ("AWS_REGION", "eu-central-1"),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert!(env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].ends_with(
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
    ));
    assert_eq!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        stack.var("PODIAM_AGENT")
    );
    assert!(!env.contains_key("AWS_ROLE_ARN"));
    let who = stack
        .exec(
            &pia,
            &["aws", "sts", "get-caller-identity", "--output", "json"],
        )
        .ok();
    assert!(
        who.contains(":assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-workshop-carts-"),
        "{who}"
    );
    {
        let (_carts, base) = start_carts(&stack, &pia, "carts (Pod Identity)");
        // The item written through IRSA is there, and a new one joins it.
        let cart = add_and_read(&base, "alice", "hat");
        let items: Vec<&str> = cart["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["itemId"].as_str())
            .collect();
        assert_eq!(items, ["hat", "sock"]);
    }

    // 3. A catalog ServiceAccount whose role has no DynamoDB rights.
    let catalog_trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{ISSUER}:sub"): "system:serviceaccount:catalog:catalog"}}}]});
    stack
        .shell()
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "eks-workshop-catalog-irsa",
            "--assume-role-policy-document",
            &catalog_trust.to_string(),
        ])
        .ok();
    let catalog_sa = stack.write(
        "catalog-sa.yaml",
        &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: catalog\n  namespace: catalog\n  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::{ACCOUNT}:role/eks-workshop-catalog-irsa\n"),
    );
    let catalog = ["-f", catalog_sa.to_str().expect("a UTF-8 path")];
    let denied = stack
        .exec(
            &catalog,
            &["aws", "dynamodb", "scan", "--table-name", TABLE],
        )
        .fails_with("AccessDeniedException");
    assert!(
        denied.contains(&format!("User: arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-catalog-irsa/"))
            && denied.contains(&format!("is not authorized to perform: dynamodb:Scan on resource: arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/{TABLE} because no identity-based policy allows the dynamodb:Scan action")),
        "{denied}"
    );
    {
        let (_carts, base) = start_carts_without_create(&stack, &catalog);
        let (status, body) = call("GET", &format!("{base}/carts/alice"), None);
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], "AccessDeniedException", "{body}");
    }

    // 4. No identity at all: the SDK falls back to IMDS, the node role, which is denied.
    let nobody = ["--namespace", "default", "--service-account", "orders"];
    let env = aws_env(&stack, &nobody);
    assert!(
        !env.contains_key("AWS_ROLE_ARN")
            && !env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    );
    let who = stack
        .exec(
            &nobody,
            &["aws", "sts", "get-caller-identity", "--output", "json"],
        )
        .ok();
    assert!(
        who.contains(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-node/"
        )),
        "{who}"
    );
    stack
        .exec(
            &nobody,
            &[
                "aws",
                "dynamodb",
                "get-item",
                "--table-name",
                TABLE,
                "--key",
                r#"{"customerId":{"S":"alice"},"itemId":{"S":"sock"}}"#,
            ],
        )
        .fails_with("AccessDeniedException");

    // 5. ABAC: one role, one policy naming the table after the session's namespace tag.
    abac(&stack);

    // Ctrl-C stops cleanly; a restart keeps the state (the catalog role made above, the
    // association recreated above) and does not create the scenario again.
    assert!(stack.restart().success(), "podiam dev did not stop cleanly");
    assert!(
        !stack.output().contains("Created the eks-workshop scenario"),
        "{}",
        stack.output()
    );
    stack
        .shell()
        .aws(&[
            "iam",
            "get-role",
            "--role-name",
            "eks-workshop-catalog-irsa",
        ])
        .ok();
    let who = stack
        .exec(
            &pia,
            &["aws", "sts", "get-caller-identity", "--output", "json"],
        )
        .ok();
    assert!(
        who.contains(":assumed-role/eks-workshop-carts-dynamo-pia/"),
        "{who}"
    );
    assert!(stack.stop().success(), "{}", stack.output());
}

/// carts without --create-table (a role that may not describe the table).
fn start_carts_without_create(stack: &DevStack, exec_args: &[&str]) -> (Process, String) {
    let carts = carts_bin().display().to_string();
    let mut args = vec!["exec"];
    args.extend_from_slice(exec_args);
    args.extend(["--", &carts, "--listen", "127.0.0.1:0", "--table", TABLE]);
    let command = stack.shell().command(&podiam_bin(), &args);
    Process::start("carts (catalog)", command, |line| {
        line.strip_prefix("carts: listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    })
}

fn abac(stack: &DevStack) {
    let shell = stack.shell();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    shell
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "team-data",
            "--assume-role-policy-document",
            trust,
        ])
        .ok();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:GetItem"],"Resource":"arn:aws:dynamodb:*:*:table/${aws:PrincipalTag/kubernetes-namespace}"}]}"#;
    shell
        .aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            "team-data",
            "--policy-name",
            "own-table",
            "--policy-document",
            policy,
        ])
        .ok();
    for team in ["team-a", "team-b"] {
        create_association(stack, team, "app", "team-data");
        // The root creates the tables, through the gateway too.
        shell
            .aws(&[
                "dynamodb",
                "create-table",
                "--table-name",
                team,
                "--attribute-definitions",
                "AttributeName=id,AttributeType=S",
                "--key-schema",
                "AttributeName=id,KeyType=HASH",
                "--billing-mode",
                "PAY_PER_REQUEST",
                "--endpoint-url",
                stack.var("PODIAM_GATEWAY"),
            ])
            .ok();
    }
    let put = |team: &str, table: &str| {
        stack.exec(
            &["--namespace", team, "--service-account", "app"],
            &[
                "aws",
                "dynamodb",
                "put-item",
                "--table-name",
                table,
                "--item",
                r#"{"id":{"S":"1"}}"#,
            ],
        )
    };
    put("team-a", "team-a").ok();
    put("team-b", "team-b").ok();
    let denied = put("team-a", "team-b").fails_with("AccessDeniedException");
    assert!(denied.contains(":assumed-role/team-data/"), "{denied}");
    put("team-b", "team-a").fails_with("AccessDeniedException");
}
