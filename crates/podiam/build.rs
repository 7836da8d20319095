//! `podiam --version` names the build: the version, the git commit it was built from (when
//! built from a git checkout), and what is compiled in. Everything is: there are no optional
//! features, so one artefact serves every documented use.

use std::path::Path;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let built_in = "stores: embedded (redb), etcd; TLS: rustls with aws-lc-rs";
    println!("cargo:rustc-env=PODIAM_LONG_VERSION={version} (commit {commit}; {built_in})");
    // A new commit or checkout changes what HEAD names.
    let git = Path::new("../../.git");
    for file in ["HEAD", "packed-refs"] {
        println!("cargo:rerun-if-changed={}", git.join(file).display());
    }
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed={}", git.join(reference).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
