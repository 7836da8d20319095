//! `podiam completions bash`, sourced in a real bash, completes `podiam ser` to `server`; and
//! `podiam man --out-dir` writes a page per command.

#![expect(clippy::panic, reason = "a helper that fails stops the test")]

use std::process::Command;

fn podiam(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_podiam"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("podiam runs: {e}"))
}

#[test]
fn bash_completes_a_subcommand() {
    let script = podiam(&["completions", "bash"]);
    assert!(script.status.success());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("podiam.bash");
    std::fs::write(&file, &script.stdout).unwrap_or_else(|e| panic!("{e}"));
    // What bash does on `podiam ser<TAB>`: call the registered function with the words so far.
    let probe = format!(
        "source {}; COMP_WORDS=(podiam ser); COMP_CWORD=1; COMP_LINE='podiam ser'; COMP_POINT=10; \
         _podiam podiam ser podiam; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .unwrap_or_else(|e| panic!("bash runs: {e}"));
    let replies = String::from_utf8_lossy(&out.stdout);
    assert!(
        replies.lines().any(|l| l.trim() == "server"),
        "completions: {replies:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !replies.lines().any(|l| l.trim() == "policy"),
        "{replies:?}"
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = podiam(&["completions", shell]);
        assert!(
            script.status.success() && !script.stdout.is_empty(),
            "{shell}"
        );
    }
}

#[test]
fn man_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = podiam(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "podiam.1",
        "podiam-server.1",
        "podiam-agent.1",
        "podiam-policy-simulate.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is a man page");
    }
    let pages = std::fs::read_dir(dir.path()).map_or(0, Iterator::count);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{pages} manual pages in {}", dir.path().display()),
        "it says what it wrote"
    );
    let server = std::fs::read_to_string(dir.path().join("podiam-server.1")).unwrap_or_default();
    assert!(
        server.contains("PODIAM_LISTEN"),
        "the page names the variables"
    );
}
