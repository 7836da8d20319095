//! `podiam webhook render`, as users run it on their own YAML.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::process::Command;

use serde_json::Value;

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: carts
  namespace: carts
spec:
  serviceAccountName: carts
  containers:
    - name: carts
      image: carts:1
";

const SA: &str = "apiVersion: v1
kind: ServiceAccount
metadata:
  name: carts
  namespace: carts
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-irsa
";

fn render(args: &[&str]) -> (bool, String, String) {
    let scratch_dir = tempfile::tempdir().unwrap();
    let dir = scratch_dir.path();
    std::fs::write(dir.join("pod.yaml"), POD).unwrap();
    std::fs::write(dir.join("sa.yaml"), SA).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_podiam"))
        .args([
            "webhook",
            "render",
            "--pod",
            "pod.yaml",
            "--service-account",
            "sa.yaml",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn render_prints_a_patch_that_gives_the_pod() {
    let (ok, patch, err) = render(&["--aws-default-region", "eu-central-1"]);
    assert!(ok, "{err}");
    let patch: json_patch::Patch = serde_json::from_str(&patch).unwrap();
    let mut pod: Value = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "carts", "namespace": "carts"},
        "spec": {"serviceAccountName": "carts", "containers": [{"name": "carts", "image": "carts:1"}]}
    }))
    .unwrap();
    json_patch::patch(&mut pod, &patch).unwrap();
    let env = &pod["spec"]["containers"][0]["env"];
    assert_eq!(env[2]["name"], "AWS_ROLE_ARN");
    assert_eq!(pod["spec"]["volumes"][0]["name"], "aws-iam-token");
}

#[test]
fn render_prints_the_pod_and_takes_booleans_three_ways() {
    for flag in ["--pod-identity", "--pod-identity=true"] {
        let (ok, pod, err) = render(&[flag, "--output", "pod"]);
        assert!(ok, "{err}");
        assert!(
            pod.contains("eks.amazonaws.com/pod-identity: enabled"),
            "{pod}"
        );
        assert!(pod.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"), "{pod}");
    }
    let (ok, pod, err) = render(&["--pod-identity=false", "--output", "pod", "--ipv6"]);
    assert!(ok, "{err}");
    assert!(
        pod.contains("AWS_ROLE_ARN"),
        "IRSA without an association: {pod}"
    );
    let (ok, pod, _) = render(&["--pod-identity", "--ipv6", "--output", "pod"]);
    assert!(ok);
    assert!(
        pod.contains("http://[fd00:ec2::23]/v1/credentials"),
        "{pod}"
    );
    let (ok, _, err) = render(&["--pod-identity=maybe"]);
    assert!(!ok);
    assert!(err.contains("maybe"), "{err}");
}

/// `--pod -` reads the pod from standard input (as in `kubectl get pod -o yaml | podiam webhook
/// render --pod -`, or `docker run -i … webhook render --pod -`); only one input can be stdin.
#[test]
fn the_pod_can_come_from_standard_input() {
    use std::io::Write as _;
    use std::process::Stdio;
    let run = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_podiam"))
            .args(["webhook", "render"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(POD.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, patch, err) = run(&["--pod", "-", "--pod-identity"]);
    assert!(ok, "{err}");
    assert!(
        patch.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{patch}"
    );
    let (ok, _, err) = run(&["--pod", "-", "--service-account", "-"]);
    assert!(!ok);
    assert!(
        err.contains("only one of --pod and --service-account"),
        "{err}"
    );
}
