//! The systemd units in `deploy/systemd` (issue 19): `systemd-analyze verify` accepts them
//! without a single warning, they carry the hardening the issue names, `systemd-analyze
//! security` rates them no worse than the exposure recorded here, and their `ExecStart=` lines,
//! run with the environment the units give them (`Environment=`, the example
//! `EnvironmentFile=`s, `LoadCredential=` files under `$CREDENTIALS_DIRECTORY`), start a server
//! that answers `/readyz`, an agent that reaches it with the credentials file the unit hands
//! over, and the link set-up that the agent's addresses need. A unit that names a flag podiam
//! does not know, or a setting it cannot parse, fails here rather than on a machine.
//!
//! Only the paths (to a temporary directory) and the listening addresses (to loopback, port 0)
//! differ from a real installation. Running the units under a real systemd needs one as PID 1,
//! which CI does not have; the README's "Install with systemd" session is such a run.

#![expect(clippy::panic, reason = "a helper that fails stops the test")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SERVER: &str = "podiam-server.service";
const AGENT: &str = "podiam-agent.service";
const AGENT_LINK: &str = "podiam-agent-link.service";
const UNITS: [&str; 3] = [SERVER, AGENT, AGENT_LINK];

/// Where the units run podiam from (`cargo install --root /usr/local`, or `install -m 0755`).
const INSTALLED_BINARY: &str = "/usr/local/bin/podiam";

/// `systemd-analyze security --offline=yes`'s overall exposure (0.0 best, 10.0 worst), in
/// tenths, with systemd 252. A change that raises one fails; one that lowers it should lower
/// the number here (and in the README).
const RECORDED_EXPOSURE: [(&str, u32); 3] = [(SERVER, 11), (AGENT_LINK, 13), (AGENT, 15)];

/// How long a process gets to come up.
const STARTUP: Duration = Duration::from_secs(30);

fn unit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A unit file's assignments, in order, with their section.
struct Unit {
    name: &'static str,
    entries: Vec<(String, String, String)>,
}

impl Unit {
    fn load(name: &'static str) -> Self {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in read(&unit_dir().join(name)).lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                header.clone_into(&mut section);
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: {line:?} is no assignment"));
            entries.push((section.clone(), key.to_owned(), value.to_owned()));
        }
        Self { name, entries }
    }

    /// The values of `key` in `[Service]`, in order.
    fn service(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(section, k, _)| section == "Service" && k == key)
            .map(|(_, _, value)| value.as_str())
            .collect()
    }

    fn one(&self, key: &str) -> &str {
        match self.service(key).as_slice() {
            [value] => value,
            other => panic!("{}: {key}= is set {} times", self.name, other.len()),
        }
    }

    /// `ExecStart=`'s words, the binary moved to the one cargo built.
    fn exec_start(&self) -> Vec<String> {
        let line = self.one("ExecStart");
        assert!(
            !line.contains(['"', '\'', '$', '%']),
            "{}: the test splits ExecStart= on spaces only: {line:?}",
            self.name
        );
        let mut words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        match words.first_mut() {
            Some(binary) if binary == INSTALLED_BINARY => {
                env!("CARGO_BIN_EXE_podiam").clone_into(binary);
            }
            _ => panic!(
                "{}: ExecStart= runs {INSTALLED_BINARY}: {line:?}",
                self.name
            ),
        }
        words
    }
}

/// A unit's copy in `dir` that runs the podiam cargo built (`systemd-analyze verify` checks
/// that ExecStart='s binary exists).
fn install_for_analysis(dir: &Path, name: &str) -> PathBuf {
    let text = read(&unit_dir().join(name));
    assert!(
        text.contains(INSTALLED_BINARY),
        "{name} runs {INSTALLED_BINARY}"
    );
    let path = dir.join(name);
    std::fs::write(
        &path,
        text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_podiam")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    path
}

fn systemd_analyze(args: &[&str], units: &[PathBuf]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .args(units)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze does not run ({e}): install the Debian package `systemd` \
                 (scripts/test does)"
            )
        })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn systemd_analyze_verify_accepts_the_units_without_a_warning() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let units: Vec<PathBuf> = UNITS
        .iter()
        .map(|name| install_for_analysis(dir.path(), name))
        .collect();
    let out = systemd_analyze(&["verify"], &units);
    // verify exits 0 on unknown keys and unparsable values: it only warns.
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );

    // And it does warn: the check above can fail.
    let broken = dir.path().join("broken.service");
    std::fs::write(
        &broken,
        read(&install_for_analysis(dir.path(), SERVER))
            .replace("ProtectSystem=strict", "ProtectSystem=strikt"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = systemd_analyze(&["verify"], &[broken]);
    assert!(
        text(&out.stderr).contains("strikt"),
        "systemd-analyze verify warns about a bad value: {}",
        text(&out.stderr)
    );
}

#[test]
fn the_units_carry_the_hardening() {
    // Every unit: a transient user, no way to gain privileges, a read-only system, and a
    // system call filter.
    let common = [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
    ];
    // Each unit's capabilities: none for the server, CAP_NET_ADMIN for the agent's link
    // set-up alone, CAP_NET_BIND_SERVICE (port 80) for the agent.
    let specific = [
        (
            SERVER,
            vec![
                ("CapabilityBoundingSet", ""),
                ("AmbientCapabilities", ""),
                ("Type", "exec"),
                ("Restart", "on-failure"),
                ("StateDirectory", "podiam"),
                ("Environment", "PODIAM_DATA_DIR=%S/podiam"),
                ("LoadCredential", "kek:/etc/podiam/kek"),
                ("Environment", "PODIAM_KEK_FILE=%d/kek"),
                ("EnvironmentFile", "-/etc/podiam/server.env"),
                ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                ("PrivateUsers", "yes"),
            ],
        ),
        (
            AGENT_LINK,
            vec![
                ("CapabilityBoundingSet", "CAP_NET_ADMIN"),
                ("AmbientCapabilities", "CAP_NET_ADMIN"),
                ("Type", "oneshot"),
                ("RestrictAddressFamilies", "AF_NETLINK AF_UNIX"),
            ],
        ),
        (
            AGENT,
            vec![
                ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
                ("Type", "exec"),
                ("Restart", "on-failure"),
                (
                    "RestrictAddressFamilies",
                    "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
                ),
                ("EnvironmentFile", "/etc/podiam/agent.env"),
            ],
        ),
    ];
    for (name, wanted) in specific {
        let unit = Unit::load(name);
        for (key, value) in common.iter().chain(&wanted) {
            assert!(
                unit.service(key).contains(value),
                "{name} sets {key}={value}; it has {key}={:?}",
                unit.service(key)
            );
        }
        for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
            let all = unit.service(key).join(" ");
            assert_eq!(
                all.contains("CAP_NET_ADMIN"),
                name == AGENT_LINK,
                "{name}: {key}={all:?}: only the link set-up has CAP_NET_ADMIN"
            );
        }
    }
    let agent = Unit::load(AGENT);
    for key in ["Requires", "After"] {
        assert!(
            agent.entries.iter().any(|(section, k, v)| section == "Unit"
                && k == key
                && v.split_whitespace().any(|u| u == AGENT_LINK)),
            "{AGENT}: {key}={AGENT_LINK}"
        );
    }
}

/// "→ Overall exposure level for podiam-server.service: 1.1 OK 🙂" as tenths.
fn overall_exposure(report: &str, name: &str) -> u32 {
    let prefix = format!("Overall exposure level for {name}: ");
    let score = report
        .lines()
        .find_map(|line| line.split_once(&prefix).map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no overall exposure in: {report}"));
    let (whole, tenth) = score
        .split_once('.')
        .unwrap_or_else(|| panic!("exposure {score:?}"));
    let number = |s: &str| {
        s.parse::<u32>()
            .unwrap_or_else(|e| panic!("exposure {score:?}: {e}"))
    };
    number(whole) * 10 + number(tenth)
}

#[test]
fn systemd_analyze_security_rates_the_units_no_worse_than_recorded() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (name, recorded) in RECORDED_EXPOSURE {
        let unit = install_for_analysis(dir.path(), name);
        let out = systemd_analyze(&["security", "--offline=yes", "--no-pager"], &[unit]);
        let report = text(&out.stdout);
        let exposure = overall_exposure(&report, name);
        assert!(
            exposure <= recorded,
            "{name}: exposure {}.{} is worse than the recorded {}.{}:\n{report}{}",
            exposure / 10,
            exposure % 10,
            recorded / 10,
            recorded % 10,
            text(&out.stderr)
        );
    }
}

/// A process of the test's, killed when the test ends however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a unit gives its `ExecStart=`: systemd's own variables, then `Environment=`, then the
/// `EnvironmentFile=`s (which override), with `%S` the state directory's parent and `%d` the
/// credentials directory, and `/etc/podiam/…` files the examples in `deploy/systemd`.
fn unit_environment(unit: &Unit, root: &Path) -> Vec<(String, String)> {
    let state = root.join("state");
    let credentials = root.join("credentials").join(unit.name);
    let expand = |value: &str| {
        value
            .replace("%S", &state.display().to_string())
            .replace("%d", &credentials.display().to_string())
    };
    let mut env = vec![
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        (
            "CREDENTIALS_DIRECTORY".to_owned(),
            credentials.display().to_string(),
        ),
    ];
    for directory in unit.service("StateDirectory") {
        let path = state.join(directory);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
        env.push(("STATE_DIRECTORY".to_owned(), path.display().to_string()));
    }
    let mut set = |assignment: &str, origin: &str| {
        let (key, value) = assignment
            .split_once('=')
            .unwrap_or_else(|| panic!("{origin}: {assignment:?}"));
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), expand(value)));
    };
    for line in unit.service("Environment") {
        assert!(
            !line.contains(['"', '\'', ' ']),
            "{}: the test reads one unquoted assignment per Environment=: {line:?}",
            unit.name
        );
        set(line, unit.name);
    }
    for file in unit.service("EnvironmentFile") {
        let file = file.trim_start_matches('-');
        let name = file
            .strip_prefix("/etc/podiam/")
            .unwrap_or_else(|| panic!("{}: EnvironmentFile={file}", unit.name));
        let example = unit_dir().join(name);
        for line in read(&example).lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                set(line, &example.display().to_string());
            }
        }
    }
    env
}

/// Writes the unit's `LoadCredential=` files where systemd would put them.
fn load_credentials(unit: &Unit, root: &Path, content: impl Fn(&str) -> Vec<u8>) {
    let dir = root.join("credentials").join(unit.name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    for credential in unit.service("LoadCredential") {
        let (id, _source) = credential
            .split_once(':')
            .unwrap_or_else(|| panic!("{}: LoadCredential={credential}", unit.name));
        std::fs::write(dir.join(id), content(id)).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Runs a unit's `ExecStart=` with its environment and `overrides` (the addresses).
fn start(
    unit: &Unit,
    root: &Path,
    overrides: &[(&str, String)],
) -> (Running, mpsc::Receiver<String>) {
    let mut env = unit_environment(unit, root);
    for (key, value) in overrides {
        env.retain(|(k, _)| k != key);
        env.push(((*key).to_owned(), value.clone()));
    }
    let words = unit.exec_start();
    let (program, args) = words
        .split_first()
        .unwrap_or_else(|| panic!("{}: empty ExecStart=", unit.name));
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", unit.name));
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("{}: no stdout", unit.name));
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), receiver)
}

/// The first line that starts with `prefix`, within [`STARTUP`].
fn line_starting(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + STARTUP;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line starting {prefix:?} within {STARTUP:?}: {e}"),
        }
    }
}

/// `GET path` over HTTP/1.1: the status and the body.
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
    stream
        .set_read_timeout(Some(STARTUP))
        .unwrap_or_else(|e| panic!("{e}"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("{address}{path}: {e}"));
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{address}{path}: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// The base64 of 32 bytes, as the README makes one.
const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[test]
fn the_units_commands_start_a_server_and_an_agent_that_reaches_it() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root.path();

    let server = Unit::load(SERVER);
    load_credentials(&server, root, |id| match id {
        "kek" => KEK.as_bytes().to_vec(),
        other => panic!("{SERVER}: the test has no credential {other:?}"),
    });
    // server.env listens on 0.0.0.0:4599; the test takes any free port on loopback.
    let (_server, lines) = start(
        &server,
        root,
        &[("PODIAM_LISTEN", "127.0.0.1:0".to_owned())],
    );
    let ready = line_starting(&lines, "podiam server: ");
    let url = ready
        .trim_start_matches("podiam server: ")
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("{ready:?}"))
        .to_owned();
    let data = root.join("state/podiam");
    assert!(
        ready.contains(&format!("data {}", data.display())),
        "the data directory is the unit's StateDirectory: {ready:?}"
    );
    assert!(
        !data.join("kek").exists(),
        "the key-encryption key is the credential, not a new file in the data directory"
    );
    let address = url.trim_start_matches("http://").to_owned();
    assert_eq!(get(&address, "/readyz"), (200, "ready\n".to_owned()));

    // The agent signs with the server's root key, handed over as the unit's credentials file,
    // for the cluster agent.env names.
    let agent = Unit::load(AGENT);
    let root_credentials = data.join("root-credentials");
    load_credentials(&agent, root, |id| match id {
        "aws-credentials" => std::fs::read(&root_credentials).unwrap_or_else(|e| panic!("{e}")),
        other => panic!("{AGENT}: the test has no credential {other:?}"),
    });
    let agent_env = unit_environment(&agent, root);
    let setting = |key: &str| {
        agent_env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{AGENT} sets {key}"))
    };
    let cluster = setting("PODIAM_CLUSTER_NAME");
    let created = Command::new(env!("CARGO_BIN_EXE_podiam"))
        .args(["cluster", "create", "--name", &cluster, "--endpoint", &url])
        .env("AWS_SHARED_CREDENTIALS_FILE", &root_credentials)
        .env("AWS_REGION", setting("PODIAM_REGION"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(created.status.success(), "{}", text(&created.stderr));

    // The unit's addresses (169.254.170.23:80, the probes on 127.0.0.1:2703, metrics on
    // 0.0.0.0:2705) need the link and a free machine: loopback, any port, instead.
    let (_agent, lines) = start(
        &agent,
        root,
        &[
            ("PODIAM_ENDPOINT", url.clone()),
            ("PODIAM_BIND_HOSTS", "127.0.0.1".to_owned()),
            ("PODIAM_PORT", "0".to_owned()),
            ("PODIAM_PROBE_PORT", "0".to_owned()),
            ("PODIAM_METRICS_ADDRESS", "127.0.0.1".to_owned()),
            ("PODIAM_METRICS_PORT", "0".to_owned()),
        ],
    );
    let ready = line_starting(&lines, "podiam agent: ");
    assert!(
        ready.starts_with(&format!("podiam agent: cluster {cluster}, server {url},")),
        "{ready:?}"
    );
    let probes = ready
        .split_once("probes on ")
        .and_then(|(_, rest)| rest.split(',').next())
        .unwrap_or_else(|| panic!("{ready:?}"))
        .to_owned();
    assert_eq!(get(&probes, "/readyz"), (200, "ready\n".to_owned()));
    // The cluster's token keys came with the credentials file (eks:DescribeCluster): the
    // agent's own identity works.
    let (status, metrics) = get(&probes, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("token_keys_loaded") && !l.starts_with('#') && l.ends_with(" 1")),
        "the agent loaded the cluster's keys:\n{metrics}"
    );
}

#[test]
fn the_link_units_command_creates_the_link_local_addresses() {
    let unit = Unit::load(AGENT_LINK);
    let words = unit.exec_start();
    // CAP_NET_ADMIN over a network namespace of the test's own, as root of a user namespace:
    // the machine's network is left alone, and no more than the unit's capability is used.
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--"])
        .args(&words)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("unshare (util-linux) runs: {e}"));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{words:?} in a new network namespace: {}\n{stdout}{}",
        out.status,
        text(&out.stderr)
    );
    for step in [
        "link pod-id-link0",
        "added 169.254.170.23/32",
        "routed 169.254.170.23 to pod-id-link0",
    ] {
        assert!(stdout.contains(step), "{step:?} in {stdout:?}");
    }
}
