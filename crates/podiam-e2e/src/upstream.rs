//! DynamoDB stand-ins that log what they executed (`scripts/dynamodb-upstream`), and a
//! `podiam gateway` in front of one, with its audit lines in a file: a test can then compare
//! what the gateway authorized with what the upstream ran.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Process, Server, podiam_bin, venv, workspace};

/// Which stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// moto's server (it also reads operations from query strings and forms).
    Moto,
    /// dynalite (JSON only; no transactions, no PartiQL).
    Dynalite,
}

impl Upstream {
    /// Its name, as the test scripts take it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Moto => "moto",
            Self::Dynalite => "dynalite",
        }
    }
}

/// A running stand-in: its process, URL and log of executed requests.
#[derive(Debug)]
pub struct LoggedUpstream {
    _process: Process,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// One JSON line per request it received (see `scripts/dynamodb-upstream/README.md`).
    pub log: PathBuf,
}

/// Starts `kind` on a free loopback port, logging into `dir` (created if need be).
pub fn start_logged_upstream(kind: Upstream, dir: &Path) -> LoggedUpstream {
    std::fs::create_dir_all(dir).expect("a directory for the upstream's log");
    let scripts = workspace().join("scripts/dynamodb-upstream");
    let log = dir.join(format!("{}.log", kind.name()));
    let mut command = match kind {
        Upstream::Moto => {
            let mut c = Command::new(venv().join("bin/python"));
            c.arg(scripts.join("moto_logged.py"));
            c
        }
        Upstream::Dynalite => {
            assert!(
                scripts.join("node_modules/dynalite").is_dir(),
                "dynalite is not installed: run `npm ci` in scripts/dynamodb-upstream (scripts/test does)"
            );
            let mut c = Command::new("node");
            c.arg(scripts.join("dynalite_logged.js"));
            c
        }
    };
    command.arg("--log").arg(&log);
    let (process, url) = Process::start(kind.name(), command, |line| {
        line.trim()
            .strip_prefix("* Running on ")
            .map(|url| url.trim().to_owned())
    });
    LoggedUpstream {
        _process: process,
        url,
        log,
    }
}

/// A `podiam gateway` process and where its audit lines go.
#[derive(Debug)]
pub struct GatewayProcess {
    _process: Process,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The gateway's log (stderr), audit lines included.
    pub log: PathBuf,
}

/// How a test gateway decides.
#[derive(Debug, Clone, Copy)]
pub enum Decide<'a> {
    /// It asks the server (`--server`), as an IAM user allowed only `podiam:AuthorizeRequest`.
    Remote,
    /// It follows the server's etcd store read-only and decides itself (`--store`).
    Locally {
        /// The store's `etcd://` URL.
        store: &'a str,
        /// The servers' key-encryption key.
        kek: &'a Path,
    },
}

/// Starts `podiam gateway` in front of `upstream`, asking `server` (as the IAM user `gateway`,
/// created with the root's key and allowed only `podiam:AuthorizeRequest`), logging into `dir`.
pub fn start_gateway(server: &Server, upstream: &str, dir: &Path) -> GatewayProcess {
    start_gateway_deciding(server, upstream, dir, Decide::Remote)
}

/// Starts `podiam gateway` in front of `upstream`, deciding as `decide` says, logging into
/// `dir`.
pub fn start_gateway_deciding(
    server: &Server,
    upstream: &str,
    dir: &Path,
    decide: Decide<'_>,
) -> GatewayProcess {
    let log = dir.join("gateway.log");
    let mut command = Command::new("sh");
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("GATEWAY_LOG", &log)
        .args(["-c", r#"exec "$0" "$@" 2>"$GATEWAY_LOG""#])
        .arg(podiam_bin())
        .args(["gateway", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--upstream", upstream]);
    match decide {
        Decide::Remote => {
            let (id, secret) = gateway_user(server);
            command
                .env("AWS_ACCESS_KEY_ID", id)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .args(["--server", &server.endpoint()]);
        }
        Decide::Locally { store, kek } => {
            command.args(["--store", store]).arg("--kek-file").arg(kek);
        }
    }
    let (process, line) = Process::start("podiam gateway", command, |line| {
        line.starts_with("podiam gateway: ")
            .then(|| line.to_owned())
    });
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the gateway's address")
        .to_owned();
    GatewayProcess {
        _process: process,
        url,
        log,
    }
}

/// The IAM user `gateway`, allowed only `podiam:AuthorizeRequest`: its access key.
fn gateway_user(server: &Server) -> (String, String) {
    crate::user_with_policy(
        server,
        "gateway",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"podiam:AuthorizeRequest","Resource":"*"}]}"#,
    )
}
