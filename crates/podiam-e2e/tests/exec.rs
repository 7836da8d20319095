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
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("list the temporary directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy() == format!("podiam-exec-{}", child.id()))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
