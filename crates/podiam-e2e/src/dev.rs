//! `podiam dev --scenario eks-workshop` on free loopback ports, with moto_server's DynamoDB
//! behind its gateway: the whole workshop on one machine, as the README's quick start runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ClientEnv, Process, Run, podiam_bin, start_moto};

/// A running `podiam dev` and its DynamoDB upstream; stopped and removed on drop.
#[derive(Debug)]
pub struct DevStack {
    // Dropped first: the processes stop before their directory goes.
    dev: Process,
    _moto: Process,
    dynamodb: String,
    vars: Vec<(String, String)>,
    extras: DevExtras,
    dir: tempfile::TempDir,
}

/// More for `podiam dev`: flags, and its own environment (podiam's AWS identity, say).
#[derive(Debug, Clone, Default)]
pub struct DevExtras {
    /// Extra flags.
    pub args: Vec<String>,
    /// Extra environment variables of the `podiam dev` process.
    pub env: Vec<(String, String)>,
    /// Run `podiam dev` under libfaketime with this offset (`-100d`): state made "long ago".
    pub faketime: Option<String>,
}

impl DevStack {
    /// Starts moto_server and `podiam dev --scenario eks-workshop` in a new data directory.
    pub fn start() -> Self {
        Self::start_with(|_| DevExtras::default())
    }

    /// As [`DevStack::start`], with flags and environment for `podiam dev` made from
    /// moto_server's URL (moto can stand in for more than DynamoDB).
    pub fn start_with(extras: impl FnOnce(&str) -> DevExtras) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podiam-dev-e2e-")
            .tempdir()
            .expect("create a temporary directory");
        let (moto, dynamodb) = start_moto();
        let extras = extras(&dynamodb);
        let (dev, vars) = launch(dir.path(), &dynamodb, &extras);
        Self {
            dev,
            _moto: moto,
            dynamodb,
            vars,
            extras,
            dir,
        }
    }

    /// moto_server's URL (DynamoDB, STS, S3, … on one port).
    pub fn moto(&self) -> &str {
        &self.dynamodb
    }

    /// Stops `podiam dev` (SIGTERM) and starts it again over the same data directory.
    pub fn restart(&mut self) -> std::process::ExitStatus {
        let extras = self.extras.clone();
        self.restart_with(extras)
    }

    /// As [`DevStack::restart`], with other extras (another clock, say).
    pub fn restart_with(&mut self, extras: DevExtras) -> std::process::ExitStatus {
        self.extras = extras;
        let status = self.stop();
        let (dev, vars) = launch(self.dir.path(), &self.dynamodb, &self.extras);
        self.dev = dev;
        self.vars = vars;
        status
    }

    /// A variable of the env file (`PODIAM_GATEWAY`, `AWS_ENDPOINT_URL`, …).
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the env file has no {name}"))
    }

    /// The scratch directory (for manifests and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What `podiam dev` printed so far.
    pub fn output(&self) -> String {
        self.dev.output()
    }

    /// `aws eks list-pod-identity-associations` for the scenario's `carts` namespace.
    pub fn carts_associations(&self) -> serde_json::Value {
        self.shell()
            .aws(&[
                "eks",
                "list-pod-identity-associations",
                "--cluster-name",
                "eks-workshop",
                "--namespace",
                "carts",
            ])
            .json()
    }

    /// The shell of the README: the env file's variables (the root's keys included), a private
    /// `HOME`, the venv's `aws` on `PATH`.
    pub fn shell(&self) -> ClientEnv {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create the shell's home");
        let path = format!(
            "{}:{}",
            crate::venv().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = ClientEnv::bare(&home).set("PATH", &path);
        for (k, v) in &self.vars {
            env = env.set(k, v);
        }
        env
    }

    /// `podiam exec <exec_args> -- <command>` from the shell.
    pub fn exec(&self, exec_args: &[&str], command: &[&str]) -> Run {
        let mut args = vec!["exec"];
        args.extend_from_slice(exec_args);
        args.push("--");
        args.extend_from_slice(command);
        self.shell().command_of(&podiam_bin(), &args)
    }

    /// Writes a manifest into the scratch directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a manifest");
        path
    }

    /// Stops `podiam dev` with SIGTERM (as Ctrl-C) and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.dev.terminate()
    }
}

/// `podiam dev` over `dir/data` with DynamoDB at `dynamodb`; its env file's variables.
fn launch(dir: &Path, dynamodb: &str, extras: &DevExtras) -> (Process, Vec<(String, String)>) {
    let env_file = dir.join("dev.env");
    let _ = std::fs::remove_file(&env_file);
    let mut command = Command::new(podiam_bin());
    if let Some(offset) = &extras.faketime {
        // libfaketime preloaded into podiam itself (not the `faketime` wrapper, which would
        // outlive a SIGTERM to it and keep the data directory locked).
        command
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    command
        .arg("dev")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--scenario", "eks-workshop"])
        .args(["--listen", "127.0.0.1:0"])
        .args(["--agent-listen", "127.0.0.1:0"])
        .args(["--imds-listen", "127.0.0.1:0"])
        .args(["--gateway-listen", "127.0.0.1:0"])
        .args(["--gateway-upstream", dynamodb])
        .arg("--env-file")
        .arg(&env_file)
        .args(&extras.args)
        // podiam's own AWS identity is only what the test gives it.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .envs(extras.env.iter().map(|(k, v)| (k, v)));
    let (dev, _) = Process::start("podiam dev", command, |line| {
        line.starts_with("podiam dev: ready")
            .then(|| line.to_owned())
    });
    let text = std::fs::read_to_string(&env_file).expect("podiam dev wrote its env file");
    let vars = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (dev, vars)
}

/// Debian's libfaketime (package faketime), for the machine's architecture.
pub fn libfaketime() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketimeMT.so.1"))
        .find(|lib| lib.exists())
        .expect("libfaketime is installed (Debian: apt-get install faketime)")
}
