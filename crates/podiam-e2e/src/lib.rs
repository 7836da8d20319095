//! The end-to-end harness: starts the real `podiam` binary on loopback with its own data
//! directory, serves a test OIDC issuer, and runs the AWS CLI and boto3 from the project's
//! venv against it. Everything here fails loudly: a harness problem is a failed test.
//!
//! Needs `cargo build -p podiam` (or `PODIAM_BIN`) and `scripts/python-env` (or
//! `PODIAM_VENV`); `scripts/test` does both.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a setup failure aborts the test with its message"
)]

pub mod admission;
mod agent;
mod apiserver;
mod certs;
mod dev;
pub mod etcd;
mod issuer;
mod netns;
mod process;
mod server;
mod upstream;
mod webhook;

pub use agent::{AgentProcess, http_get};
pub use apiserver::FakeApiServer;
pub use certs::TestCa;
pub use dev::{DevExtras, DevStack, libfaketime};
pub use etcd::EtcdCluster;
pub use issuer::TestIssuer;
pub use netns::NetNs;
pub use process::{GRACE, Process, STARTUP, start_moto, stop_gracefully};
pub use server::{Server, ServerOptions, credentials_file_keys};
pub use upstream::{
    Decide, GatewayProcess, LoggedUpstream, Upstream, start_gateway, start_gateway_deciding,
    start_logged_upstream,
};
pub use webhook::WebhookProcess;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The `podiam` binary: `PODIAM_BIN`, else the one beside the running test in `target/`.
pub fn podiam_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PODIAM_BIN") {
        return PathBuf::from(bin);
    }
    // target/<profile>/deps/<test> → target/<profile>/podiam
    let exe = std::env::current_exe().expect("the test knows its path");
    let candidates = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("podiam"))
        .collect::<Vec<_>>();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the podiam binary is not built (looked at {candidates:?}); run `cargo build -p podiam` or set PODIAM_BIN"
            )
        })
}

/// The Python venv with the pinned AWS CLI and boto3: `PODIAM_VENV`, else `<workspace>/.venv`.
pub fn venv() -> PathBuf {
    let venv =
        std::env::var_os("PODIAM_VENV").map_or_else(|| workspace().join(".venv"), PathBuf::from);
    for tool in ["aws", "python"] {
        assert!(
            venv.join("bin").join(tool).is_file(),
            "{} has no bin/{tool}; run scripts/python-env (or set PODIAM_VENV)",
            venv.display()
        );
    }
    venv
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// Did it exit 0?
    pub success: bool,
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns standard output.
    pub fn ok(self) -> String {
        assert!(
            self.success,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts success and parses standard output as JSON.
    pub fn json(self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Asserts failure with `text` somewhere in standard error.
    pub fn fails_with_text(self, text: &str) -> String {
        assert!(
            !self.success,
            "expected a failure, but it succeeded: {}",
            self.stdout
        );
        assert!(
            self.stderr.contains(text),
            "expected {text:?} in: {}",
            self.stderr
        );
        self.stderr
    }

    /// Asserts failure with the AWS error `code` (as the CLI and boto3 print it).
    pub fn fails_with(self, code: &str) -> String {
        assert!(
            !self.success,
            "expected {code}, but it succeeded: {}",
            self.stdout
        );
        assert!(
            self.stderr.contains(&format!("({code})")),
            "expected ({code}) in: {}",
            self.stderr
        );
        self.stderr
    }
}

/// An environment for the AWS CLI and boto3: nothing inherited but `PATH`, a private `HOME`,
/// the server's endpoint and region; credentials as the caller adds them.
#[derive(Debug, Clone)]
pub struct ClientEnv {
    vars: Vec<(String, String)>,
    faketime: Option<String>,
}

impl ClientEnv {
    /// The base environment for `server`, with no credentials.
    pub fn new(server: &Server) -> Self {
        Self::for_endpoint(&server.endpoint(), &server.dir().join("client-home"))
    }

    /// The base environment for a server at `endpoint` (one in a container, say), with `home`
    /// as `HOME`; no credentials.
    pub fn for_endpoint(endpoint: &str, home: &Path) -> Self {
        std::fs::create_dir_all(home).expect("create the client home");
        let vars = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", home.display().to_string()),
            ("LANG", "C.UTF-8".to_owned()),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
            (
                "AWS_CONFIG_FILE",
                home.join("no-config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                home.join("no-credentials").display().to_string(),
            ),
            ("AWS_ENDPOINT_URL", endpoint.to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_MAX_ATTEMPTS", "1".to_owned()),
        ];
        Self {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            faketime: None,
        }
    }

    /// `PATH`, `HOME` (= `home`) and `LANG` only; no endpoint, no credentials.
    pub fn bare(home: &Path) -> Self {
        let vars = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", home.display().to_string()),
            ("LANG", "C.UTF-8".to_owned()),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
        ];
        Self {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            faketime: None,
        }
    }

    /// The base environment signed as the account's root.
    pub fn root(server: &Server) -> Self {
        Self::new(server).set(
            "AWS_SHARED_CREDENTIALS_FILE",
            &server.root_credentials_file().display().to_string(),
        )
    }

    /// The base environment with these credentials.
    pub fn keys(server: &Server, id: &str, secret: &str, token: Option<&str>) -> Self {
        let env = Self::new(server)
            .set("AWS_ACCESS_KEY_ID", id)
            .set("AWS_SECRET_ACCESS_KEY", secret);
        match token {
            Some(token) => env.set("AWS_SESSION_TOKEN", token),
            None => env,
        }
    }

    /// Sets (or replaces) a variable.
    #[must_use]
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs the clients with libfaketime's clock shifted, e.g. `+2h`.
    #[must_use]
    pub fn faketime(mut self, offset: &str) -> Self {
        self.faketime = Some(offset.to_owned());
        self
    }

    /// The command with this environment (nothing else inherited).
    pub fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = match &self.faketime {
            Some(offset) => {
                let mut c = Command::new("faketime");
                c.arg("-f").arg(offset).arg(program);
                c.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
                c
            }
            None => Command::new(program),
        };
        command.args(args);
        command.env_clear();
        if self.faketime.is_some() {
            command.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Any program with this environment (e.g. `podiam cluster token`).
    pub fn command_of(&self, program: &Path, args: &[&str]) -> Run {
        Run::from(
            self.command(program, args)
                .output()
                .unwrap_or_else(|e| panic!("{} does not run: {e}", program.display())),
        )
    }

    /// Starts a long-running program with this environment: stdout piped, stderr to `log`.
    pub fn spawn_of(&self, program: &Path, args: &[&str], log: &Path) -> std::process::Child {
        let log = std::fs::File::create(log).expect("create the log file");
        self.command(program, args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()))
    }

    /// `aws <args> --output json`.
    pub fn aws(&self, args: &[&str]) -> Run {
        let aws = venv().join("bin/aws");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--output", "json"]);
        Run::from(self.command(&aws, &all).output().expect("the AWS CLI runs"))
    }

    /// The venv's Python running `script` (relative to this crate's `py/`) with `args`.
    pub fn python(&self, script: &str, args: &[&str]) -> Run {
        let python = venv().join("bin/python");
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("py")
            .join(script);
        let path = path.display().to_string();
        let mut all = vec![path.as_str()];
        all.extend_from_slice(args);
        Run::from(self.command(&python, &all).output().expect("python runs"))
    }
}

/// An IAM user `name` with one inline policy `policy` (as the account's root): its access key
/// id and secret.
pub fn user_with_policy(server: &Server, name: &str, policy: &str) -> (String, String) {
    let root = ClientEnv::root(server);
    root.aws(&["iam", "create-user", "--user-name", name]).ok();
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        name,
        "--policy-name",
        "p",
        "--policy-document",
        policy,
    ])
    .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", name])
        .json();
    let text = |field: &str| {
        key.get("AccessKey")
            .and_then(|k| k.get(field))
            .and_then(serde_json::Value::as_str)
            .expect("an access key")
            .to_owned()
    };
    (text("AccessKeyId"), text("SecretAccessKey"))
}

/// The IRSA set-up of the workshop, with the AWS CLI as `root`: an OIDC provider for `issuer`
/// (client id `sts.amazonaws.com`) and role `role` whose trust policy lets
/// `system:serviceaccount:<namespace>:<service_account>` assume it with an `sts.amazonaws.com`
/// token. Returns the trust policy.
pub fn create_irsa_role(
    root: &ClientEnv,
    issuer: &TestIssuer,
    role: &str,
    namespace: &str,
    service_account: &str,
) -> serde_json::Value {
    root.aws(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        issuer.url(),
        "--client-id-list",
        "sts.amazonaws.com",
    ])
    .ok();
    let host = issuer.host_path();
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::000000000000:oidc-provider/{host}")},
            "Action": ["sts:TagSession", "sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {
                format!("{host}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                format!("{host}:aud"): "sts.amazonaws.com"
            }}
        }]
    });
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        role,
        "--assume-role-policy-document",
        &trust.to_string(),
    ])
    .ok();
    trust
}

/// The trust policy EKS Pod Identity needs.
const NODE_PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

/// A cluster `fleet` with the `default/app` association, and a node user `node` (tagged
/// `node-1`) allowed `actions`; returns its access key id and secret.
pub fn pod_identity_node(root: &ClientEnv, actions: &str) -> (String, String) {
    let podiam = podiam_bin();
    root.command_of(&podiam, &["cluster", "create", "--name", "fleet"])
        .ok();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "app",
        "--assume-role-policy-document",
        NODE_PIA_TRUST,
    ])
    .ok();
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "fleet",
        "--namespace",
        "default",
        "--service-account",
        "app",
        "--role-arn",
        "arn:aws:iam::000000000000:role/app",
    ])
    .ok();
    root.aws(&[
        "iam",
        "create-user",
        "--user-name",
        "node",
        "--tags",
        "Key=podiam:node-name,Value=node-1",
    ])
    .ok();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"*"}}]}}"#
    );
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "node",
        "--policy-name",
        "agent",
        "--policy-document",
        &policy,
    ])
    .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "node"])
        .json();
    let field = |name: &str| {
        key.pointer(&format!("/AccessKey/{name}"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("AccessKeyId"), field("SecretAccessKey"))
}

/// A token of pod `pod` on node-1 for EKS Pod Identity, from `podiam cluster token` for the
/// `fleet` cluster that [`pod_identity_node`] makes, in namespace `default`.
pub fn pod_identity_token(root: &ClientEnv, service_account: &str, pod: &str) -> String {
    root.command_of(
        &podiam_bin(),
        &[
            "cluster",
            "token",
            "--cluster",
            "fleet",
            "--namespace",
            "default",
            "--service-account",
            service_account,
            "--audience",
            "pods.eks.amazonaws.com",
            "--pod-name",
            pod,
            "--node-name",
            "node-1",
        ],
    )
    .ok()
    .trim()
    .to_owned()
}
