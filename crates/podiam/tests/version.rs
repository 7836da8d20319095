//! `podiam --version` names the version, the commit and what is compiled in (the etcd store
//! included, in the default build).

use std::process::Command;

#[test]
fn the_version_names_the_commit_and_the_features() {
    let out = Command::new(env!("CARGO_BIN_EXE_podiam"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("podiam runs: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let expected_start = format!("podiam {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&expected_start), "{text}");
    assert!(
        text.trim_end()
            .ends_with("; stores: embedded (redb), etcd; TLS: rustls with aws-lc-rs)"),
        "{text}"
    );
    let commit = text
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit:?}"
    );
}
