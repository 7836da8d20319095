//! `podiam access who|what|findings` against `podiam dev --scenario eks-workshop`, in JSON:
//! the workshop's paths, a reader who may not read roles, and one deliberately bad role (or
//! association) per finding code, with `--fail-on` as a CI gate.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use podiam_e2e::{ClientEnv, DevExtras, DevStack, Run, podiam_bin};
use serde_json::{Value, json};

const ACCOUNT: &str = "637423329338";
const TABLE: &str = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts";
const ISSUER: &str = "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";

fn access(env: &ClientEnv, args: &[&str]) -> Run {
    let mut all = vec!["access"];
    all.extend_from_slice(args);
    env.command_of(&podiam_bin(), &all)
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap()
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

/// `(namespace, service account, path, role name, decision)` of each `who` entry.
fn rows(who: &Value) -> Vec<(String, String, String, String, String)> {
    who.get("entries")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|e| {
            (
                text(e, "/namespace").to_owned(),
                text(e, "/service_account").to_owned(),
                text(e, "/path").to_owned(),
                short(text(e, "/role_arn")).to_owned(),
                text(e, "/decision").to_owned(),
            )
        })
        .collect()
}

fn row(
    ns: &str,
    sa: &str,
    path: &str,
    role: &str,
    decision: &str,
) -> (String, String, String, String, String) {
    (
        ns.into(),
        sa.into(),
        path.into(),
        role.into(),
        decision.into(),
    )
}

fn create_role(env: &ClientEnv, name: &str, trust: &Value, policy: Option<&Value>) {
    env.aws(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        &trust.to_string(),
    ])
    .ok();
    if let Some(policy) = policy {
        env.aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            name,
            "--policy-name",
            "p",
            "--policy-document",
            &policy.to_string(),
        ])
        .ok();
    }
}

fn associate(env: &ClientEnv, namespace: &str, role: &str) -> String {
    let answer = env
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
            &role_arn(role),
        ])
        .json();
    text(&answer, "/association/associationArn").to_owned()
}

fn findings(env: &ClientEnv, extra: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["findings", "--output", "json"];
    args.extend_from_slice(extra);
    let out = access(env, &args).json();
    out.get("findings")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|f| {
            for field in ["/message", "/fix"] {
                assert!(!text(f, field).is_empty(), "{f}");
            }
            (
                text(f, "/code").to_owned(),
                text(f, "/severity").to_owned(),
                short(text(f, "/object")).to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_workshop_paths_in_json_and_a_reader_sees_only_what_it_may_read() {
    let stack = DevStack::start();
    let admin = stack.shell();

    let who = access(
        &admin,
        &[
            "who",
            "--action",
            "dynamodb:PutItem",
            "--resource",
            TABLE,
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(who["action"], "dynamodb:PutItem");
    assert_eq!(
        rows(&who),
        [
            row(
                "carts",
                "carts",
                "irsa",
                "eks-workshop-carts-dynamo-irsa",
                "Allow"
            ),
            row(
                "carts",
                "carts",
                "pod-identity",
                "eks-workshop-carts-dynamo-pia",
                "Allow"
            ),
        ],
        "{who:#}"
    );
    assert!(
        who["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["cluster"] == "eks-workshop")
    );
    // The node role may call EKS Auth only: every pod of the node, by the node path.
    let node = access(
        &admin,
        &[
            "who",
            "--action",
            "eks-auth:AssumeRoleForPodIdentity",
            "--resource",
            "*",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(
        rows(&node),
        [row("*", "*", "node", "eks-workshop-node", "Allow")]
    );
    // Another table: nobody.
    let other = access(
        &admin,
        &[
            "who",
            "--action",
            "dynamodb:PutItem",
            "--resource",
            &TABLE.replace("carts", "orders"),
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(other["entries"], json!([]));
    // The table form says the same, in columns.
    let table = access(
        &admin,
        &["who", "--action", "dynamodb:PutItem", "--resource", TABLE],
    )
    .ok();
    assert!(
        table.contains("CLUSTER")
            && table.contains("pod-identity")
            && table.contains("eks-workshop-carts-dynamo-pia"),
        "{table}"
    );

    let what = access(
        &admin,
        &[
            "what",
            "--cluster",
            "eks-workshop",
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--output",
            "json",
        ],
    )
    .json();
    let paths: Vec<(&str, &str, bool)> = what["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap(),
                short(p["role_arn"].as_str().unwrap()),
                p["wins"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("irsa", "eks-workshop-carts-dynamo-irsa", true),
            ("pod-identity", "eks-workshop-carts-dynamo-pia", false),
            ("node", "eks-workshop-node", false),
        ]
    );
    let dynamo = &what["paths"][1]["permissions"][0];
    assert_eq!(dynamo["service"], "dynamodb");
    assert_eq!(dynamo["statements"][0]["actions"], json!(["dynamodb:*"]));
    assert_eq!(dynamo["statements"][0]["resources"][0], TABLE);

    // The workshop page's IRSA trust has no aud condition: a warning, and only that.
    let found = findings(&admin, &[]);
    assert_eq!(
        found,
        [(
            "trust-no-audience".to_owned(),
            "warning".to_owned(),
            "eks-workshop-carts-dynamo-irsa".to_owned()
        )]
    );
    let gate = access(&admin, &["findings", "--fail-on", "error"]);
    assert_eq!(gate.code, Some(0), "{gate:?}");
    let gate = access(&admin, &["findings", "--fail-on", "warning"]);
    assert_eq!(gate.code, Some(1), "{gate:?}");
    assert!(gate.stdout.contains("trust-no-audience"), "{}", gate.stdout);

    // A reader who may describe associations but not read roles sees no role, so no path.
    admin
        .aws(&["iam", "create-user", "--user-name", "reader"])
        .ok();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["eks:DescribePodIdentityAssociation"], "Resource": "*"}]});
    admin
        .aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            "reader",
            "--policy-name",
            "r",
            "--policy-document",
            &policy.to_string(),
        ])
        .ok();
    let keys = admin
        .aws(&["iam", "create-access-key", "--user-name", "reader"])
        .json();
    let reader = admin
        .clone()
        .set(
            "AWS_ACCESS_KEY_ID",
            keys["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        )
        .set(
            "AWS_SECRET_ACCESS_KEY",
            keys["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        );
    let hidden = access(
        &reader,
        &[
            "who",
            "--action",
            "dynamodb:PutItem",
            "--resource",
            TABLE,
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(hidden["entries"], json!([]));
    // Allowed iam:GetRole on the Pod Identity role only: that path, and no other.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["eks:DescribePodIdentityAssociation"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"], "Resource": role_arn("eks-workshop-carts-dynamo-pia")}]});
    admin
        .aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            "reader",
            "--policy-name",
            "r",
            "--policy-document",
            &policy.to_string(),
        ])
        .ok();
    let partial = access(
        &reader,
        &[
            "who",
            "--action",
            "dynamodb:PutItem",
            "--resource",
            TABLE,
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(
        rows(&partial),
        [row(
            "carts",
            "carts",
            "pod-identity",
            "eks-workshop-carts-dynamo-pia",
            "Allow"
        )]
    );
    // Unsigned: refused.
    let anonymous = access(
        &admin
            .clone()
            .set("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .set("AWS_SECRET_ACCESS_KEY", "x"),
        &["findings"],
    );
    assert_eq!(anonymous.code, Some(2), "{anonymous:?}");
}

#[test]
fn one_deliberately_bad_role_or_association_per_finding_code() {
    // The scenario and the bad roles are made 100 days ago (podiam dev and the clients under
    // libfaketime), then podiam dev runs at today's date over the same data.
    let long_ago = "-100d";
    let mut stack = DevStack::start_with(|_| DevExtras {
        faketime: Some(long_ago.to_owned()),
        ..DevExtras::default()
    });
    let then = stack.shell().faketime(long_ago);
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}");
    let web = |condition: Value| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition}]});
    let pods = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
    // trust-any-service-account: a sub pattern every service account matches.
    create_role(
        &then,
        "bad-any-sa",
        &web(
            json!({"StringLike": {format!("{ISSUER}:sub"): "system:serviceaccount:*"}, "StringEquals": {format!("{ISSUER}:aud"): "sts.amazonaws.com"}}),
        ),
        None,
    );
    // trust-no-audience: sub, no aud.
    create_role(
        &then,
        "bad-no-aud",
        &web(json!({"StringEquals": {format!("{ISSUER}:sub"): "system:serviceaccount:shop:web"}})),
        None,
    );
    // trust-public.
    create_role(
        &then,
        "bad-public",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
        None,
    );
    // association-trust-mismatch: pods may not tag the session.
    create_role(
        &then,
        "bad-no-tags",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        None,
    );
    let mismatch = associate(&then, "mismatch", "bad-no-tags");
    // association-role-missing: the role deleted after the association was made.
    create_role(&then, "bad-gone", &pods, None);
    let missing = associate(&then, "missing", "bad-gone");
    then.aws(&["iam", "delete-role", "--role-name", "bad-gone"])
        .ok();
    // irsa-provider-missing.
    let nowhere = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example.com/id/NOPE")}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"oidc.example.com/id/NOPE:sub": "system:serviceaccount:a:b", "oidc.example.com/id/NOPE:aud": "sts.amazonaws.com"}}}]});
    create_role(&then, "bad-no-provider", &nowhere, None);
    // permission-admin and passrole-wildcard.
    create_role(
        &then,
        "bad-admin",
        &pods,
        Some(
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        ),
    );
    create_role(
        &then,
        "bad-passer",
        &pods,
        Some(
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}),
        ),
    );
    associate(&then, "ops", "bad-admin");

    // Today: the Pod Identity role gets used; every other role has not been for 100 days.
    stack.restart_with(DevExtras::default());
    let pod = stack
        .exec(
            &["--namespace", "carts", "--service-account", "carts"],
            &["aws", "sts", "get-caller-identity", "--output", "json"],
        )
        .ok();
    assert!(
        pod.contains("assumed-role/eks-workshop-carts-dynamo-pia/"),
        "{pod}"
    );
    let now = stack.shell();
    let found = findings(&now, &[]);
    let has = |code: &str, object: &str| found.iter().any(|(c, _, o)| c == code && o == object);
    for (code, object) in [
        ("trust-any-service-account", "bad-any-sa"),
        ("trust-no-audience", "bad-no-aud"),
        ("trust-no-audience", "eks-workshop-carts-dynamo-irsa"),
        ("trust-public", "bad-public"),
        ("association-trust-mismatch", short(&mismatch)),
        ("association-role-missing", short(&missing)),
        ("irsa-provider-missing", "bad-no-provider"),
        ("permission-admin", "bad-admin"),
        ("passrole-wildcard", "bad-passer"),
        ("role-unused", "bad-admin"),
        ("role-unused", "eks-workshop-carts-dynamo-irsa"),
    ] {
        assert!(has(code, object), "no {code} for {object} in {found:#?}");
    }
    // Used today: not unused. Errors come first.
    assert!(
        !has("role-unused", "eks-workshop-carts-dynamo-pia"),
        "{found:#?}"
    );
    assert_eq!(found[0].1, "error");
    let severities: Vec<&str> = found.iter().map(|(_, s, _)| s.as_str()).collect();
    let mut sorted = severities.clone();
    sorted.sort_by_key(|s| match *s {
        "error" => 0,
        "warning" => 1,
        _ => 2,
    });
    assert_eq!(severities, sorted);
    // No more than that: every finding is one of the bad objects or the workshop's IRSA trust.
    for (code, _, object) in &found {
        assert!(
            object.starts_with("bad-")
                || object.starts_with("a-")
                || object.starts_with("eks-workshop-"),
            "unexpected {code} on {object}"
        );
    }
    // A longer window: nothing is unused for 1000 days.
    let patient = findings(&now, &["--unused-days", "1000"]);
    assert!(
        patient.iter().all(|(c, ..)| c != "role-unused"),
        "{patient:#?}"
    );
    let gate = access(
        &now,
        &["findings", "--fail-on", "error", "--output", "json"],
    );
    assert_eq!(gate.code, Some(1));
}
