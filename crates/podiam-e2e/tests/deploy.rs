//! deploy/kubernetes passes `scripts/validate-manifests` (the Kubernetes API schemas, strict;
//! cert-manager's; the deployment's promises), and the validator catches what it claims to.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a failed setup step should stop the test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use podiam_e2e::{venv, workspace};

fn validate(dir: &Path) -> (bool, String) {
    let output = Command::new(venv().join("bin/python"))
        .arg(workspace().join("scripts/validate-manifests"))
        .arg(dir)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A copy of deploy/kubernetes with `from` replaced by `to` in `file`.
fn mutated(file: &str, from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = workspace().join("deploy/kubernetes");
    for entry in std::fs::read_dir(&source).expect("deploy/kubernetes exists") {
        let path = entry.expect("an entry").path();
        let mut text = std::fs::read_to_string(&path).expect("a manifest");
        if path.file_name().is_some_and(|n| n == file) {
            assert!(text.contains(from), "{file} has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        let name = path.file_name().expect("a file name");
        std::fs::write(dir.path().join(name), text).expect("write the copy");
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[test]
fn the_manifests_validate() {
    let (ok, text) = validate(&workspace().join("deploy/kubernetes"));
    assert!(ok, "{text}");
    assert!(text.contains("validated"), "{text}");
}

#[test]
fn the_validator_catches_broken_manifests() {
    for (file, from, to, expected) in [
        (
            "webhook.yaml",
            "failurePolicy: Ignore",
            "failurePolicy: Fail",
            "failurePolicy must be Ignore",
        ),
        (
            "webhook.yaml",
            "sideEffects: None",
            "sideEfects: None",
            "'sideEffects' is a required property",
        ),
        (
            "webhook.yaml",
            "timeoutSeconds: 10",
            "timeoutSecond: 10",
            "'timeoutSecond' was unexpected",
        ),
        (
            "webhook.yaml",
            "operator: DoesNotExist",
            "operator: Exists",
            "objectSelector must skip",
        ),
        ("webhook.yaml", "algorithm: ECDSA", "algorithm: DSA", "DSA"),
        (
            "agent.yaml",
            "add: [\"NET_ADMIN\"]",
            "add: [\"NET_ADMIN\", \"SYS_ADMIN\"]",
            "NET_ADMIN only",
        ),
        (
            "agent.yaml",
            "hostNetwork: true",
            "hostNetwork: \"yes\"",
            "hostNetwork",
        ),
        (
            "server.yaml",
            "containerPort: 4599",
            "containerPort: \"4599\"",
            "not of type 'integer'",
        ),
        (
            "webhook.yaml",
            "verbs: [\"get\", \"list\", \"watch\"]",
            "verbs: [\"get\", \"list\", \"watch\", \"delete\"]",
            "read-only",
        ),
    ] {
        let (_dir, path) = mutated(file, from, to);
        let (ok, text) = validate(&path);
        assert!(!ok, "{file}: {from:?} → {to:?} passed:\n{text}");
        assert!(
            text.contains(expected),
            "{file}: expected {expected:?} in:\n{text}"
        );
    }
}
