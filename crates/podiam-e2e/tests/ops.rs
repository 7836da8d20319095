//! Running the server: health, readiness, metrics, JSON logs, file modes, help.

use std::os::unix::fs::PermissionsExt as _;

use podiam_e2e::{ClientEnv, Server, podiam_bin};

#[test]
fn health_metrics_logs_and_private_files() {
    let server = Server::start();
    let health = server.get("/healthz").unwrap_or_default();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.to_ascii_lowercase().contains("x-amzn-requestid:"));
    assert!(
        server
            .get("/readyz")
            .unwrap_or_default()
            .starts_with("HTTP/1.1 200")
    );

    ClientEnv::root(&server)
        .aws(&["sts", "get-caller-identity"])
        .ok();
    ClientEnv::root(&server)
        .aws(&["iam", "get-role", "--role-name", "missing"])
        .fails_with("NoSuchEntity");
    let metrics = server.get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains(
            r#"podiam_requests_total{service="sts",operation="GetCallerIdentity",code="OK"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"podiam_requests_total{service="iam",operation="GetRole",code="NoSuchEntity"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("podiam_request_duration_seconds_bucket"));

    // --log-format json: every line is a JSON object.
    let log = server.log();
    assert!(!log.is_empty());
    for line in log.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
            "not a JSON log line: {line}"
        );
    }
    let (_, secret) = server.root_keys();
    assert!(!log.contains(&secret), "the root secret is never logged");

    for (file, mode) in [("root-credentials", 0o600), ("kek", 0o600)] {
        let meta = std::fs::metadata(server.data_dir().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    let dir = std::fs::metadata(server.data_dir()).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(dir.ok(), Some(0o700));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["server", "--help"],
        vec!["token", "mint", "--help"],
        vec!["keys", "generate", "--help"],
        vec!["policy", "simulate", "--help"],
    ] {
        let out = std::process::Command::new(podiam_bin())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: podiam"), "{args:?}: {text}");
    }
    let help = std::process::Command::new(podiam_bin())
        .args(["server", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for flag in [
        "--listen",
        "--data-dir",
        "--account-id",
        "--region",
        "--allow-http-issuers",
        "--oidc-ca-file",
        "--kek-file",
        "--log-format",
    ] {
        assert!(help.contains(flag), "server --help lacks {flag}");
    }
}
