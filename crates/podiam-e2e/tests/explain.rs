//! `podiam explain` against `podiam dev --scenario eks-workshop`: Pod Identity, IRSA and the
//! node role, each explained as JSON and checked against what the credentials really are
//! (`podiam exec -- aws sts get-caller-identity`); the text form of an IRSA denial.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use podiam_e2e::{podiam_bin, venv};
use serde_json::Value;

const ACCOUNT: &str = "637423329338";
const TABLE: &str = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts";
const ISSUER_HOST: &str = "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";

/// `podiam dev` on free loopback ports in a temporary directory; killed on drop.
struct Dev {
    child: Child,
    log: PathBuf,
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podiam-explain-e2e-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("dev.log");
        let env_file = dir.path().join("dev.env");
        let child = Command::new(podiam_bin())
            .arg("dev")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--scenario", "eks-workshop"])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--agent-listen", "127.0.0.1:0"])
            .args(["--imds-listen", "127.0.0.1:0"])
            .args(["--gateway-listen", "127.0.0.1:0"])
            .arg("--env-file")
            .arg(&env_file)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("dev.err")).unwrap())
            .spawn()
            .expect("podiam dev starts");
        let mut dev = Self {
            child,
            log,
            vars: Vec::new(),
            dir,
        };
        let started = Instant::now();
        while !std::fs::read_to_string(&dev.log)
            .unwrap_or_default()
            .contains("podiam dev: ready")
        {
            if let Some(status) = dev.child.try_wait().unwrap() {
                panic!("podiam dev exited ({status}):\n{}", dev.output());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "podiam dev is not ready after 60 s:\n{}",
                dev.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&env_file).expect("podiam dev wrote its env file");
        dev.vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        dev
    }

    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        format!(
            "{}{}",
            read("dev.log").unwrap_or_default(),
            read("dev.err").unwrap_or_default()
        )
    }

    /// A program in the shell `podiam dev --env-file` describes: its variables (the root's
    /// keys included), the venv's `aws` on PATH, a private HOME, nothing else inherited.
    fn command(&self, program: &Path, args: &[&str]) -> Output {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let path = format!(
            "{}:{}",
            venv().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .env("AWS_CONFIG_FILE", home.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
            .env("AWS_MAX_ATTEMPTS", "1")
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", program.display()))
    }

    fn aws(&self, args: &[&str]) -> String {
        let out = self.command(&venv().join("bin/aws"), args);
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podiam explain <who> --action dynamodb:PutItem --resource TABLE <extra>`.
    fn explain(&self, who: &[&str], extra: &[&str]) -> (Option<i32>, String, String) {
        let mut args = vec![
            "explain",
            "--action",
            "dynamodb:PutItem",
            "--resource",
            TABLE,
        ];
        args.extend_from_slice(who);
        args.extend_from_slice(extra);
        let out = self.command(&podiam_bin(), &args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn explain_json(&self, who: &[&str], expected_code: i32) -> Value {
        let (code, stdout, stderr) = self.explain(who, &["--output", "json"]);
        assert_eq!(
            code,
            Some(expected_code),
            "podiam explain {who:?}: exit {code:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// The ARN `aws sts get-caller-identity` reports inside `podiam exec <who>`: the
    /// credentials the pod really gets.
    fn real_identity(&self, who: &[&str]) -> String {
        let mut args = vec!["exec"];
        args.extend_from_slice(who);
        args.extend_from_slice(&[
            "--",
            "aws",
            "sts",
            "get-caller-identity",
            "--query",
            "Arn",
            "--output",
            "text",
        ]);
        let out = self.command(&podiam_bin(), &args);
        assert!(
            out.status.success(),
            "podiam exec {who:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        podiam_e2e::stop_gracefully(&mut self.child, false);
        if std::thread::panicking() {
            eprintln!("--- podiam dev output ---\n{}", self.output());
        }
    }
}

#[test]
fn explain_says_what_podiam_decides_for_pod_identity_irsa_and_the_node_role() {
    let dev = Dev::start();

    // The IRSA role of the catalog service: trusted by its ServiceAccount, no permissions.
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_HOST}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{ISSUER_HOST}:sub"): "system:serviceaccount:catalog:catalog",
                format!("{ISSUER_HOST}:aud"): "sts.amazonaws.com"
            }}
        }]
    });
    let role_arn = dev.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "eks-workshop-catalog-irsa",
        "--assume-role-policy-document",
        &trust.to_string(),
        "--query",
        "Role.Arn",
        "--output",
        "text",
    ]);
    assert_eq!(
        role_arn.trim(),
        format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-catalog-irsa")
    );
    let catalog_sa = dev.dir.path().join("catalog-sa.yaml");
    std::fs::write(
        &catalog_sa,
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: catalog\n  namespace: catalog\n  annotations:\n    eks.amazonaws.com/role-arn: {}\n",
            role_arn.trim()
        ),
    )
    .unwrap();
    let catalog = ["-f", catalog_sa.to_str().unwrap()];

    // (a) carts/carts has the workshop's association: Pod Identity, allowed.
    let carts = ["--namespace", "carts", "--service-account", "carts"];
    let a = dev.explain_json(&carts, 0);
    assert_eq!(a["mechanism"]["provider"], "container-credentials", "{a:#}");
    assert_eq!(a["mechanism"]["webhook_mode"], "pod-identity");
    assert_eq!(
        a["mechanism"]["role_arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-pia")
    );
    let chain: Vec<&str> = a["mechanism"]["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["skipped", "skipped", "used", "not-reached"]);
    assert_eq!(a["token"]["valid"], true, "{:#}", a["token"]);
    assert_eq!(
        a["token"]["verified_by"],
        "eks-auth:AssumeRoleForPodIdentity"
    );
    assert_eq!(a["trust"]["decision"], "Allow", "{:#}", a["trust"]);
    assert_eq!(a["trust"]["action"], "sts:AssumeRole");
    assert_eq!(a["trust"]["other_actions"][0]["action"], "sts:TagSession");
    assert_eq!(
        a["trust"]["context"]["aws:RequestTag/kubernetes-namespace"],
        "carts"
    );
    assert_eq!(a["permissions"]["decision"], "Allow");
    assert_eq!(
        a["permissions"]["context"]["aws:PrincipalTag/eks-cluster-name"],
        "eks-workshop"
    );
    assert_eq!(a["decision"], "Allow");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("\"AllAPIActionsOnCart\""),
        "{}",
        a["reason"]
    );
    let real = dev.real_identity(&carts);
    assert!(
        real.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-workshop-carts-exec-"
        )),
        "{real}"
    );

    // (b) the catalog ServiceAccount is annotated and has no association: IRSA, trusted, but
    // its role may not write the table.
    let b = dev.explain_json(&catalog, 1);
    assert_eq!(b["mechanism"]["provider"], "web-identity", "{b:#}");
    assert_eq!(b["mechanism"]["webhook_mode"], "irsa");
    assert_eq!(b["mechanism"]["role_arn"], role_arn.trim());
    assert_eq!(b["token"]["valid"], true, "{:#}", b["token"]);
    assert_eq!(b["token"]["verified_by"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(b["trust"]["decision"], "Allow", "{:#}", b["trust"]);
    assert_eq!(b["trust"]["action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        b["trust"]["context"][format!("{ISSUER_HOST}:sub")],
        "system:serviceaccount:catalog:catalog"
    );
    assert_eq!(b["permissions"]["decision"], "ImplicitDeny");
    assert_eq!(b["permissions"]["trace"], serde_json::json!([]));
    assert_eq!(b["decision"], "ImplicitDeny");
    let reason = b["reason"].as_str().unwrap();
    assert!(
        reason.contains("because no identity-based policy allows the dynamodb:PutItem action"),
        "{reason}"
    );
    assert!(
        reason.contains("the role has no identity-based policies"),
        "{reason}"
    );
    // STS agrees: the pod does get the role's session.
    let real = dev.real_identity(&catalog);
    assert!(
        real.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-catalog-irsa/"
        )),
        "{real}"
    );

    // (c) no annotation, no association: the node role from IMDS, which may not write.
    let orders = ["--namespace", "default", "--service-account", "orders"];
    let c = dev.explain_json(&orders, 1);
    assert_eq!(c["mechanism"]["provider"], "imds", "{c:#}");
    assert_eq!(c["mechanism"]["webhook_mode"], Value::Null);
    assert_eq!(
        c["mechanism"]["role_arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-node")
    );
    assert_eq!(c["token"], Value::Null);
    assert_eq!(c["trust"], Value::Null);
    assert_eq!(c["permissions"]["decision"], "ImplicitDeny");
    assert_ne!(c["decision"], "Allow");
    assert_eq!(
        c["mechanism"]["session_arn"].as_str().unwrap(),
        dev.real_identity(&orders),
        "explain names the very session IMDS hands out"
    );

    // The text form of (b): the mechanism, the token, the trust and the denial.
    let (code, text, stderr) = dev.explain(&catalog, &[]);
    assert_eq!(code, Some(1), "{text}\n{stderr}");
    for expected in [
        "1. Credentials: web identity (IRSA)\n",
        "     USED         web identity (IRSA): AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set",
        "AWS_ROLE_ARN=arn:aws:iam::637423329338:role/eks-workshop-catalog-irsa\n",
        "2. Token: valid (checked as sts:AssumeRoleWithWebIdentity does)\n",
        "3. Trust policy of arn:aws:iam::637423329338:role/eks-workshop-catalog-irsa: Allow\n",
        ":sub: policy [\"system:serviceaccount:catalog:catalog\"] vs request [\"system:serviceaccount:catalog:catalog\"] → true",
        "4. Permissions of the session: ImplicitDeny\n",
        "Answer: DENIED (ImplicitDeny)\n",
        "because no identity-based policy allows the dynamodb:PutItem action",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }

    // An unknown cluster is an error, not a denial.
    let (code, _, stderr) = dev.explain(&carts, &["--cluster", "no-such-cluster"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no-such-cluster"), "{stderr}");
}
