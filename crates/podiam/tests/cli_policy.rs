//! `podiam policy …` as users run it: the real binary, real files, stdin, exit codes.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on broken fixtures"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn podiam(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podiam"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podiam starts");
    let mut pipe = child.stdin.take().unwrap();
    // The command may exit before reading (a missing file, say): a closed pipe is fine.
    let _ = pipe.write_all(stdin.unwrap_or_default().as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn simulate(input: &Value) -> (i32, Value, String) {
    let out = podiam(&["policy", "simulate", "-"], Some(&input.to_string()));
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_exit_codes_and_lines() {
    let ok = podiam(
        &[
            "policy",
            "validate",
            "--type",
            "trust",
            "examples/policies/pod-identity-trust.json",
        ],
        None,
    );
    assert_eq!(ok.status.code(), Some(0));
    assert!(stdout(&ok).contains("valid trust policy"));

    let bad = podiam(
        &[
            "policy",
            "validate",
            "--type",
            "identity",
            "examples/policies/bad-identity.json",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    let lines: Vec<String> = stdout(&bad).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "one line per problem: {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Policy document should not specify a principal."))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Actions/Conditions must be prefaced by a vendor"))
    );

    let stdin = podiam(
        &["policy", "validate", "--type", "identity", "-"],
        Some("{not json"),
    );
    assert_eq!(stdin.status.code(), Some(1));
    assert!(stdout(&stdin).starts_with("Syntax errors in policy."));

    let missing = podiam(
        &[
            "policy",
            "validate",
            "--type",
            "identity",
            "no/such/file.json",
        ],
        None,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open no/such/file.json"));

    let bad_type = podiam(
        &["policy", "validate", "--type", "managed", "-"],
        Some("{}"),
    );
    assert_eq!(bad_type.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_type.stderr).contains("expected identity, resource, trust")
    );
}

#[test]
fn simulate_the_examples() {
    let run = |file: &str| {
        let out = podiam(&["policy", "simulate", file], None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        run("examples/policies/irsa-carts.json")["decision"],
        "Allow"
    );
    let denied = run("examples/policies/irsa-wrong-namespace.json");
    assert_eq!(denied["decision"], "ImplicitDeny");
    let condition = &denied["trace"][0]["statements"][0]["conditions"][0];
    assert_eq!(condition["result"], false);
    assert_eq!(
        condition["request_values"],
        json!(["system:serviceaccount:orders:orders"])
    );
    let session = run("examples/policies/carts-dynamodb.json");
    assert_eq!(session["decision"], "ImplicitDeny");
    assert_eq!(session["reason"], "no session policy allows the request");
}

#[test]
fn simulate_every_input_field() {
    let allow_all = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}});
    let input = json!({
        "identity_policies": [allow_all.to_string()],
        "resource_policy": null,
        "permissions_boundary": allow_all,
        "session_policy": allow_all,
        "service_control_policies": [[allow_all], [allow_all, {"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}}]],
        "resource_control_policies": [],
        "request": {
            "principal": {"AWS": "arn:aws:sts::111122223333:assumed-role/r/s"},
            "action": "s3:GetObject",
            "resource": "arn:aws:s3:::bucket/key",
            "resource_account": "111122223333",
            "context": {"aws:SourceIp": "10.1.2.3", "aws:TagKeys": ["a", "b"], "s3:max-keys": 10, "aws:SecureTransport": true}
        }
    });
    let (code, out, _) = simulate(&input);
    assert_eq!(code, 0);
    assert_eq!(out["decision"], "Allow");
    let labels: Vec<&str> = out["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "identity[0]",
            "permissions_boundary",
            "session[0]",
            "scp[0][0]",
            "scp[1][0]",
            "scp[1][1]"
        ]
    );

    let mut delete = input.clone();
    delete["request"]["action"] = json!("s3:DeleteBucket");
    assert_eq!(simulate(&delete).1["decision"], "ExplicitDeny");
}

#[test]
fn simulate_principal_forms() {
    let trust = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}});
    for (principal, decision) in [
        (json!("pods.eks.amazonaws.com"), "Allow"),
        (json!({"Service": "pods.eks.amazonaws.com"}), "Allow"),
        (json!({"Service": "ec2.amazonaws.com"}), "ImplicitDeny"),
        (Value::Null, "ImplicitDeny"),
    ] {
        let mut request = json!({"action": "sts:AssumeRole"});
        if !principal.is_null() {
            request["principal"] = principal.clone();
        }
        let (code, out, _) = simulate(&json!({"resource_policy": trust, "request": request}));
        assert_eq!(code, 0);
        assert_eq!(out["decision"], decision, "{principal}");
    }
}

#[test]
fn simulate_rejects_bad_input_with_exit_2() {
    for (input, expected) in [
        (json!({}), "missing field `request`"),
        (json!({"request": {}}), "missing field `action`"),
        (
            json!({"request": {"action": "GetObject"}}),
            "must have the form service:Action",
        ),
        (
            json!({"request": {"action": "s3:GetObject", "principal": "who?"}}),
            "principal \"who?\"",
        ),
        (
            json!({"request": {"action": "s3:GetObject", "principal": {"Users": "x"}}}),
            "unknown type \"Users\"",
        ),
        (
            json!({"request": {"action": "s3:GetObject", "context": {"k": {"a": 1}}}}),
            "request.context.k",
        ),
        (
            json!({"identity_policies": ["{"], "request": {"action": "s3:GetObject"}}),
            "identity_policies[0] is not a valid policy document",
        ),
        (
            json!({"identity_policies": [5], "request": {"action": "s3:GetObject"}}),
            "must be a policy object or a string",
        ),
        (
            json!({"service_control_policies": [[], {}], "request": {"action": "s3:GetObject"}}),
            "mixes policies and lists",
        ),
        (
            json!({"request": {"action": "s3:GetObject"}, "extra": 1}),
            "unknown field `extra`",
        ),
    ] {
        let (code, _, stderr) = simulate(&input);
        assert_eq!(code, 2, "{input}");
        assert!(stderr.contains(expected), "{input}: {stderr}");
    }
}

#[test]
fn simulate_refuses_policies_aws_refuses_with_exit_2() {
    let input = json!({
        "identity_policies": [{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}],
        "request": {"action": "s3:GetObject"}
    });
    let (code, _, stderr) = simulate(&input);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("identity_policies[0] is not a valid identity policy"),
        "{stderr}"
    );
    // The fail-open trust policy of issue 16: refused, never evaluated.
    let bob = "arn:aws:iam::111122223333:user/bob";
    let input = json!({
        "resource_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "NotPrincipal": {"AWS": bob}, "Action": "sts:AssumeRole"}]},
        "request": {"action": "sts:AssumeRole", "principal": {"AWS": bob},
                    "resource": "arn:aws:iam::111122223333:role/open"}
    });
    let (code, _, stderr) = simulate(&input);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("Has prohibited field NotPrincipal"),
        "{stderr}"
    );
}

#[test]
fn help_is_there() {
    for args in [
        &["--help"][..],
        &["policy", "--help"],
        &["policy", "validate", "--help"],
        &["policy", "simulate", "--help"],
    ] {
        let out = podiam(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage:"));
    }
    let help = stdout(&podiam(&["policy", "simulate", "--help"], None));
    assert!(help.contains("resource_control_policies"));
}
