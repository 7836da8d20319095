//! `podiam keys generate` and `podiam token mint | verify | discovery`, as users run them.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";

fn podiam(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podiam"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading (a missing file, say): a closed pipe is fine.
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default().as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory, removed when the returned guard drops.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("podiam-cli-{name}-"))
        .tempdir()
        .unwrap()
}

fn mint(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "mint",
        "--key",
        "sa.key",
        "--issuer",
        ISSUER,
        "--namespace",
        "carts",
        "--service-account",
        "carts",
        "--audience",
        "sts.amazonaws.com",
    ];
    args.extend_from_slice(extra);
    let out = podiam(dir, &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn keys_are_private_and_not_overwritten() {
    let scratch_dir = scratch("keys");
    let dir = scratch_dir.path();
    for (alg, file) in [("RS256", "rsa.key"), ("ES256", "ec.key")] {
        let out = podiam(
            dir,
            &["keys", "generate", "--alg", alg, "--out", file],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("{alg} key, kid ")));
        let path = dir.join(file);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
    }
    let before = std::fs::read(dir.join("rsa.key")).unwrap();
    let again = podiam(
        dir,
        &["keys", "generate", "--alg", "RS256", "--out", "rsa.key"],
        None,
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("pass --force"));
    assert_eq!(std::fs::read(dir.join("rsa.key")).unwrap(), before);
    let forced = podiam(
        dir,
        &[
            "keys",
            "generate",
            "--alg",
            "RS256",
            "--rsa-bits",
            "3072",
            "--out",
            "rsa.key",
            "--force",
        ],
        None,
    );
    assert_eq!(forced.status.code(), Some(0));
    assert_ne!(std::fs::read(dir.join("rsa.key")).unwrap(), before);
    let bad = podiam(
        dir,
        &["keys", "generate", "--alg", "HS256", "--out", "x.key"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn mint_verify_discovery_round_trip() {
    let scratch_dir = scratch("roundtrip");
    let dir = scratch_dir.path();
    assert!(
        podiam(
            dir,
            &["keys", "generate", "--alg", "RS256", "--out", "sa.key"],
            None
        )
        .status
        .success()
    );
    let token = mint(
        dir,
        &[
            "--pod-name",
            "carts-7d8f",
            "--node-name",
            "ip-10-42-0-1",
            "--ttl",
            "600",
        ],
    );
    assert!(!token.ends_with('\n'), "no newline after the JWT");
    assert_eq!(token.split('.').count(), 3);

    let disc = podiam(
        dir,
        &[
            "token",
            "discovery",
            "--key",
            "sa.key",
            "--issuer",
            ISSUER,
            "--out-dir",
            "site",
        ],
        None,
    );
    assert_eq!(disc.status.code(), Some(0), "{}", text(&disc.stderr));
    let doc: Value = serde_json::from_slice(&disc.stdout).unwrap();
    assert_eq!(doc["discovery"]["issuer"], ISSUER);
    assert_eq!(
        doc["discovery"]["jwks_uri"],
        format!("{ISSUER}/openid/v1/jwks")
    );
    assert_eq!(
        doc["discovery"]["response_types_supported"],
        serde_json::json!(["id_token"])
    );
    assert_eq!(
        doc["discovery"]["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(doc["jwks"]["keys"][0]["kty"], "RSA");
    std::fs::write(dir.join("disc.json"), &disc.stdout).unwrap();
    let served: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("site/.well-known/openid-configuration")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, doc["discovery"]);

    // Verify from a file argument and from stdin (with the trailing newline a file would have).
    for (jwks, token_arg, stdin) in [
        ("site/openid/v1/jwks", token.as_str(), None),
        ("disc.json", "-", Some(format!("{token}\n"))),
    ] {
        let out = podiam(
            dir,
            &[
                "token",
                "verify",
                "--jwks",
                jwks,
                "--issuer",
                ISSUER,
                "--audience",
                "sts.amazonaws.com",
                token_arg,
            ],
            stdin.as_deref(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(claims["sub"], "system:serviceaccount:carts:carts");
        assert_eq!(claims["kubernetes.io"]["pod"]["name"], "carts-7d8f");
        assert_eq!(claims["kubernetes.io"]["node"]["name"], "ip-10-42-0-1");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            600
        );
    }
}

#[test]
fn verify_reports_the_sts_error_code() {
    let scratch_dir = scratch("errors");
    let dir = scratch_dir.path();
    assert!(
        podiam(
            dir,
            &["keys", "generate", "--alg", "ES256", "--out", "sa.key"],
            None
        )
        .status
        .success()
    );
    assert!(
        podiam(
            dir,
            &["keys", "generate", "--alg", "ES256", "--out", "other.key"],
            None
        )
        .status
        .success()
    );
    let jwks = podiam(
        dir,
        &["token", "discovery", "--key", "sa.key", "--issuer", ISSUER],
        None,
    );
    std::fs::write(dir.join("jwks.json"), &jwks.stdout).unwrap();
    let token = mint(dir, &["--now", "1714564800"]);
    let verify = |extra: &[&str], token: &str| {
        let mut args = vec![
            "token",
            "verify",
            "--jwks",
            "jwks.json",
            "--issuer",
            ISSUER,
            "--audience",
            "sts.amazonaws.com",
        ];
        args.extend_from_slice(extra);
        args.push(token);
        podiam(dir, &args, None)
    };
    let fresh = verify(&["--now", "1714565000"], &token);
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh.stderr));
    let cases = [
        (
            verify(&["--now", "1714568500"], &token),
            "error: ExpiredTokenException: ",
        ),
        (
            verify(&["--now", "1714564000"], &token),
            "error: IDPRejectedClaim: ",
        ),
        (
            verify(&["--now", "1714565000"], &format!("{token}x")),
            "error: InvalidIdentityToken: ",
        ),
        (
            verify(
                &["--now", "1714565000"],
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln",
            ),
            "error: InvalidIdentityToken: algorithm \"none\"",
        ),
        (
            verify(&["--now", "1714565000"], "not-a-token"),
            "error: InvalidIdentityToken: malformed token",
        ),
    ];
    for (out, expected) in cases {
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with(expected), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    // Another issuer's key.
    let other = podiam(
        dir,
        &[
            "token",
            "mint",
            "--key",
            "other.key",
            "--issuer",
            ISSUER,
            "--namespace",
            "carts",
            "--service-account",
            "carts",
            "--audience",
            "sts.amazonaws.com",
        ],
        None,
    );
    let out = verify(&[], &text(&other.stdout));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no key with id"));
    // Mint refuses bad requests with exit 2.
    let bad = podiam(
        dir,
        &[
            "token",
            "mint",
            "--key",
            "sa.key",
            "--issuer",
            ISSUER,
            "--namespace",
            "Carts",
            "--service-account",
            "carts",
            "--audience",
            "sts.amazonaws.com",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("not a DNS-1123 label"));
}
