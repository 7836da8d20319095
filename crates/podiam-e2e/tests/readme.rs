//! The README's quick start, pasted as written: `podiam dev` in one shell, then the workshop
//! session in another, each `$ ` line run in one bash session (variables and background jobs
//! carry over), and every line the README shows found in what the commands print, once the
//! values that differ from run to run (ids, times, temporary paths) are masked.
//!
//! Only what cannot run here as written is replaced, and said so: `cargo run --release -p
//! podiam --` and `cargo build --release -q -p carts` use the binaries this test run built
//! (`PODIAM_BIN` and the `carts` beside it), and `target/release` on `PATH` is that directory.
//! The session runs in a scratch directory that links `examples`, `scripts` and `.venv` from
//! the repository, so it writes no `podiam-data` or `podiam.env` into the checkout.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podiam_e2e::{podiam_bin, stop_gracefully, venv, workspace};

/// One `$ command` of a console block and the lines the README shows after it.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

/// The ```console blocks of `text`, as steps.
fn console_blocks(text: &str) -> Vec<Vec<Step>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<Step>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```console") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(steps), line) => match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step {
                    command: command.to_owned(),
                    shown: Vec::new(),
                }),
                None => {
                    if let Some(step) = steps.last_mut() {
                        // A command continued on the next line (`\` at its end).
                        if step.shown.is_empty() && step.command.ends_with('\\') {
                            step.command.pop();
                            step.command.push_str(line.trim_start());
                        } else {
                            step.shown.push(line.to_owned());
                        }
                    }
                }
            },
            (None, _) => {}
        }
    }
    blocks
}

/// Masks what differs from run to run, so that the rest can be compared as written.
fn mask(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    for line in text.lines() {
        let mut line = line.trim().to_owned();
        for (prefix, keep) in [
            ("a-", 17usize),
            ("podiam-exec-", 0),
            ("botocore-session-", 0),
            ("AROA", 0),
        ] {
            line = mask_after(&line, prefix, keep);
        }
        line = mask_time(&line);
        line = mask_words(&line);
        if let Some(i) = line.find("ready in ") {
            let rest: String = line[i + 9..]
                .chars()
                .skip_while(char::is_ascii_digit)
                .collect();
            line = format!("{}ready in N{rest}", &line[..i]);
        }
        masked.push_str(&line);
        masked.push('\n');
    }
    masked
}

/// Replaces the identifier that follows `prefix` (letters and digits, and `-` inside
/// `podiam-exec-PID-RANDOM`) with `X`; with `keep` > 0, only when it is exactly that long.
fn mask_after(line: &str, prefix: &str, keep: usize) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        let before_ok = i == 0
            || !rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        let after = &rest[i + prefix.len()..];
        let id_len = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || (prefix == "podiam-exec-" && *c == '-'))
            .count();
        out.push_str(&rest[..i + prefix.len()]);
        if before_ok && id_len > 0 && (keep == 0 || id_len == keep) {
            out.push('X');
            rest = &after[id_len..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Run-dependent words: UUIDs (`UUID`), Unix times (`N`), key ids after `kid ` (`X`).
fn mask_words(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let mut previous_word = String::new();
    let flush = |word: &mut String, previous: &mut String, out: &mut String| {
        let is_uuid = word.len() == 36
            && word.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        let is_time = word.len() == 10 && word.chars().all(|c| c.is_ascii_digit());
        let is_kid = previous == "kid" && word.len() == 43;
        if is_uuid {
            out.push_str("UUID");
        } else if is_time {
            out.push('N');
        } else if is_kid {
            out.push('X');
        } else {
            out.push_str(word);
        }
        if !word.is_empty() {
            *previous = std::mem::take(word);
        }
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut previous_word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut previous_word, &mut out);
    out
}

/// `2026-11-26T22:16:28.095827Z` → `TIME`.
fn mask_time(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let looks_like_time = bytes.len() >= i + 20
            && bytes[i..i + 4].iter().all(u8::is_ascii_digit)
            && bytes[i + 4] == b'-'
            && bytes[i + 10] == b'T';
        if looks_like_time {
            let end = line[i..].find('Z').map_or(line.len(), |z| i + z + 1);
            out.push_str("TIME");
            i = end;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    out
}

/// Every line the README shows for `step` is among the masked `printed` lines.
fn check(step: &Step, printed: &str) {
    let printed = mask(printed);
    let lines: Vec<&str> = printed.lines().collect();
    for shown in &step.shown {
        let shown = mask(shown);
        let shown = shown.trim_end_matches('\n');
        if shown.is_empty() {
            continue;
        }
        assert!(
            lines.contains(&shown),
            "`$ {}`: the README shows\n  {shown}\nbut the command printed:\n{printed}",
            step.command
        );
    }
}

/// A scratch directory that behaves like the checkout for the session.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("podiam-readme-")
        .tempdir()
        .expect("a scratch directory");
    for name in ["examples", "scripts"] {
        std::os::unix::fs::symlink(workspace().join(name), dir.path().join(name))
            .expect("link the checkout");
    }
    std::os::unix::fs::symlink(venv(), dir.path().join(".venv")).expect("link the venv");
    dir
}

/// The README's command with what cannot run here as written replaced (see the module doc).
fn runnable(command: &str, bin_dir: &Path) -> String {
    command
        .replace("cargo run --release -p podiam --", "podiam")
        .replace("cargo build --release -q -p carts", "true")
        .replace("$PWD/target/release", &bin_dir.display().to_string())
}

#[test]
fn the_quick_start_pastes_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("the README");
    let blocks = console_blocks(&readme);
    let dev_block = blocks
        .iter()
        .find(|b| {
            b.first()
                .is_some_and(|s| s.command.contains("dev --scenario eks-workshop"))
        })
        .expect("the quick start's podiam dev block");
    let session = blocks
        .iter()
        .find(|b| b.iter().any(|s| s.command.starts_with("aws iam get-role")))
        .expect("the quick start's workshop session");
    let dir = scratch();
    let bin_dir: PathBuf = podiam_bin()
        .parent()
        .expect("the binaries' directory")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |script: &str| {
        let mut command = Command::new("bash");
        command
            .args(["-c", script])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1");
        command
    };

    // Shell 1: podiam dev, until it is ready.
    let dev_step = &dev_block[0];
    let mut dev = shell(&format!("exec {}", runnable(&dev_step.command, &bin_dir)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podiam dev starts");
    let stdout = dev.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            if line.starts_with("Stop with Ctrl-C") {
                let _ = tx.send(all.clone());
            }
        }
    });
    let printed = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("podiam dev never said it was ready"));
    check(dev_step, &printed);

    // Shell 2: the session, each step between markers; background jobs stopped at the end.
    let mut script = String::from("set +e\n");
    for (i, step) in session.iter().enumerate() {
        let command = runnable(&step.command, &bin_dir);
        // A line break first: output without one (curl's) must not run into the marker.
        // `$?` of the previous step survives the marker, for a step that prints it.
        script.push_str(&format!(
            "__s=$?; printf '\\n@@step {i}\\n'; (exit $__s)\n{command}\n"
        ));
        if command.trim_end().ends_with('&') || command.contains("& CARTS=$!") {
            // A server started in the background: give it a moment, as a reader would.
            script.push_str("sleep 3\n");
        }
    }
    script.push_str("printf '\\n@@end\\n'\n");
    let started = Instant::now();
    // The session in a process group of its own: what it left running in the background
    // (moto_server, whose shell keeps the output open) is stopped with it once the last step
    // has printed, as closing the terminal would.
    let mut session_shell = shell(&script);
    std::os::unix::process::CommandExt::process_group(&mut session_shell, 0);
    let mut session_process = session_shell
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the session runs");
    let group = session_process.id();
    let read_all = |stream: Box<dyn std::io::Read + Send>, until_end: bool| {
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
                if until_end && line == "@@end" {
                    break;
                }
            }
            text
        })
    };
    let stdout_reader = read_all(
        Box::new(session_process.stdout.take().expect("stdout")),
        true,
    );
    let stderr_reader = read_all(
        Box::new(session_process.stderr.take().expect("stderr")),
        false,
    );
    let stdout_text = stdout_reader.join().unwrap_or_default();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{group}")])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .status();
    let _ = session_process.wait();
    let stderr_text = stderr_reader.join().unwrap_or_default();
    let output = (stdout_text, stderr_text);
    let all = format!("{}{}", output.0, output.1);
    stop_gracefully(&mut dev, false);

    let stdout = output.0.clone();
    for (i, step) in session.iter().enumerate() {
        // What a step printed runs to the next marker; a background job's lines may come
        // later, so they are looked for up to the end (and in standard error, where the AWS
        // CLI writes its errors).
        let from = stdout
            .find(&format!("@@step {i}\n"))
            .unwrap_or_else(|| panic!("step {i} never ran; the session printed:\n{all}"));
        let mut printed = stdout[from..].to_owned();
        printed.push_str(&output.1);
        check(step, &printed);
    }
    assert!(stdout.contains("@@end"), "{all}");
    eprintln!(
        "{} steps of the README's workshop session ran as written in {:?}",
        session.len(),
        started.elapsed()
    );
}

/// The sessions that need no server (policies, keys and tokens, the webhook's preview), run as
/// written in a scratch directory with the repository's `examples`.
#[test]
fn the_offline_sessions_paste_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("the README");
    let offline = [
        "podiam policy",
        "podiam keys generate",
        "cat examples/webhook",
    ];
    let blocks: Vec<Vec<Step>> = console_blocks(&readme)
        .into_iter()
        .filter(|b| {
            b.first()
                .is_some_and(|s| offline.iter().any(|o| s.command.starts_with(o)))
                // Sessions that talk to a server or start one are the quick start's kind.
                && b.iter().all(|s| {
                    !s.command.starts_with("aws ") && !s.command.contains('&')
                })
        })
        .collect();
    assert!(
        blocks.len() >= 4,
        "found only {} offline sessions",
        blocks.len()
    );
    let bin_dir: PathBuf = podiam_bin()
        .parent()
        .expect("the binaries' directory")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut steps = 0;
    for block in &blocks {
        let dir = scratch();
        let mut script = String::from("set +e\n");
        for (i, step) in block.iter().enumerate() {
            script.push_str(&format!(
                "__s=$?; printf '\\n@@step {i}\\n'; (exit $__s)\n{{ {}\n}} 2>&1\n",
                step.command
            ));
        }
        let output = Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("LANG", "C.UTF-8")
            .output()
            .expect("the session runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        for (i, step) in block.iter().enumerate() {
            let from = stdout
                .find(&format!("@@step {i}\n"))
                .unwrap_or_else(|| panic!("step {i} never ran:\n{stdout}"));
            let to = stdout
                .find(&format!("@@step {}\n", i + 1))
                .unwrap_or(stdout.len());
            check(step, &stdout[from..to]);
            steps += 1;
        }
    }
    eprintln!(
        "{steps} steps of {} offline README sessions ran as written",
        blocks.len()
    );
}
