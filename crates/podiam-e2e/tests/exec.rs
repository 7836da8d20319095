//! `podiam exec` as a process supervisor: projected tokens private, without a trailing newline,
//! rewritten at 80% of their lifetime (under libfaketime's clock at 100× speed); the command's
//! exit code returned and signals passed on to it.

use std::time::{Duration, Instant};

use podiam_e2e::{DevStack, podiam_bin};

const SHORT_LIVED_SA: &str = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: default\n  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-irsa\n    eks.amazonaws.com/token-expiration: \"600\"\n";

#[test]
fn tokens_are_private_and_renewed_at_80_percent_of_their_lifetime() {
    let stack = DevStack::start();
    let sa = stack.write("short-lived.yaml", SHORT_LIVED_SA);
    let sa = sa.to_str().expect("a UTF-8 path");
    // At 100×, 300 s of the token's 600 s pass in 3 s: before 80% the file is unchanged,
    // after it (700 s) it holds a new token.
    let script = r#"f=$AWS_WEB_IDENTITY_TOKEN_FILE
a=$(md5sum < "$f"); sleep 300; b=$(md5sum < "$f"); sleep 400; c=$(md5sum < "$f")
[ "$a" = "$b" ] && echo same-before; [ "$b" != "$c" ] && echo renewed-after
stat -c %a "$f"; tail -c 1 "$f" | od -An -c"#;
    let out = stack
        .shell()
        .faketime("+0 x100")
        // tokio's timers run on the monotonic clock: speed it up too.
        .set("FAKETIME_DONT_FAKE_MONOTONIC", "0")
        .command_of(&podiam_bin(), &["exec", "-f", sa, "--", "sh", "-c", script])
        .ok();
    assert!(out.contains("same-before"), "{out}");
    assert!(out.contains("renewed-after"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"600"), "mode: {out}");
    assert!(!out.contains("\\n"), "a trailing newline: {out}");

    // The Pod Identity token too: 0600, no newline, in a directory only the user can read.
    let pia = stack
        .exec(
            &["--namespace", "carts", "--service-account", "carts"],
            &["sh", "-c", r#"f=$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; stat -c %a "$f"; stat -c %a "$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$f")")")")")")"; tail -c 1 "$f" | od -An -c"#],
        )
        .ok();
    let lines: Vec<&str> = pia.lines().map(str::trim).collect();
    assert_eq!(lines.first(), Some(&"600"), "{pia}");
    assert_eq!(lines.get(1), Some(&"700"), "{pia}");
    assert!(!pia.contains("\\n"), "{pia}");
}

#[test]
fn the_exit_code_comes_back_and_signals_go_through() {
    let stack = DevStack::start();
    let pod = ["--namespace", "default", "--service-account", "app"];
    let status = stack
        .shell()
        .command(
            &podiam_bin(),
            &[
                "exec", pod[0], pod[1], pod[2], pod[3], "--", "sh", "-c", "exit 7",
            ],
        )
        .status()
        .expect("podiam exec runs");
    assert_eq!(status.code(), Some(7));

    let ready = stack.dir().join("ready");
    let script = format!(
        r#"trap 'exit 42' TERM; touch {}; while true; do sleep 0.05; done"#,
        ready.display()
    );
    let mut child = stack
        .shell()
        .command(
            &podiam_bin(),
            &[
                "exec", pod[0], pod[1], pod[2], pod[3], "--", "sh", "-c", &script,
            ],
        )
        .spawn()
        .expect("podiam exec starts");
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("podiam exec ends");
    assert_eq!(status.code(), Some(42), "the command did not get SIGTERM");
    // The temporary token directory is gone afterwards.
    let prefix = format!("podiam-exec-{}-", child.id());
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("list the temporary directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Whether process `pid` still exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

#[test]
fn exit_codes_follow_env_and_the_child_dies_with_podiam_exec() {
    let stack = DevStack::start();
    let runtime = stack.dir().join("runtime");
    std::fs::create_dir_all(&runtime).expect("a runtime directory");
    let shell = stack
        .shell()
        .set("XDG_RUNTIME_DIR", &runtime.display().to_string());
    let pod = ["--namespace", "default", "--service-account", "app"];
    let exec = |command: &[&str]| {
        let mut args = vec!["exec", pod[0], pod[1], pod[2], pod[3], "--"];
        args.extend_from_slice(command);
        shell
            .command(&podiam_bin(), &args)
            .output()
            .expect("podiam exec runs")
    };
    // Not found: 127; not executable: 126 (as env, docker run and kubectl exec answer).
    let missing = exec(&["no-such-command-podiam"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("command not found"));
    let script = stack.write("not-executable.sh", "echo hi\n");
    let denied = exec(&[script.to_str().expect("a path")]);
    assert_eq!(denied.status.code(), Some(126));

    // A token directory left by a podiam exec that was killed is cleared by the next one.
    let stale = runtime.join("podiam-exec-999999999-stale");
    std::fs::create_dir_all(stale.join("eks.amazonaws.com")).expect("a stale directory");
    assert_eq!(exec(&["true"]).status.code(), Some(0));
    assert!(!stale.exists(), "the stale token directory is still there");

    // SIGKILL to podiam exec: it cannot pass a signal on, and the command dies anyway.
    let pid_file = stack.dir().join("child.pid");
    let script = format!(
        "echo $$ > {}; while true; do sleep 0.05; done",
        pid_file.display()
    );
    let mut exec_process = shell
        .command(
            &podiam_bin(),
            &[
                "exec", pod[0], pod[1], pod[2], pod[3], "--", "sh", "-c", &script,
            ],
        )
        .spawn()
        .expect("podiam exec starts");
    let started = Instant::now();
    let child_pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(alive(child_pid));
    exec_process.kill().expect("SIGKILL");
    let _ = exec_process.wait();
    let killed = Instant::now();
    while alive(child_pid) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the command outlived podiam exec"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its token directory stayed (nothing could remove it) and the next run clears it.
    let left = std::fs::read_dir(&runtime)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("podiam-exec-{}-", exec_process.id()))
        })
        .count();
    assert_eq!(left, 1);
    assert_eq!(exec(&["true"]).status.code(), Some(0));
    let left = std::fs::read_dir(&runtime).expect("list").count();
    assert_eq!(left, 0, "stale token directories remain");
}

#[test]
fn a_token_dir_must_be_the_callers_and_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let stack = DevStack::start();
    let exec = |token_dir: &std::path::Path| {
        stack
            .shell()
            .command(
                &podiam_bin(),
                &[
                    "exec",
                    "--namespace",
                    "default",
                    "--service-account",
                    "app",
                    "--token-dir",
                    token_dir.to_str().expect("a path"),
                    "--",
                    "true",
                ],
            )
            .output()
            .expect("podiam exec runs")
    };
    let open = stack.dir().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let refused = exec(&open);
    assert_eq!(refused.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("writable by others"));
    let link = stack.dir().join("link");
    std::os::unix::fs::symlink(&open, &link).expect("symlink");
    let refused = exec(&link);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a directory"));
    // Another user's directory (only root can make one here; CI is root).
    if nix_is_root() {
        let theirs = stack.dir().join("theirs");
        std::fs::create_dir(&theirs).expect("mkdir");
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let chown = std::process::Command::new("chown")
            .args(["65534:65534", theirs.to_str().expect("a path")])
            .status();
        assert!(chown.is_ok_and(|s| s.success()));
        let refused = exec(&theirs);
        assert!(String::from_utf8_lossy(&refused.stderr).contains("belongs to another user"));
    }
    // A fresh one is made 0700 and used.
    let fresh = stack.dir().join("fresh");
    assert_eq!(exec(&fresh).status.code(), Some(0));
    let mode = std::fs::metadata(&fresh)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
