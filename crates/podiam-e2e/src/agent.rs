//! `podiam agent` on loopback ports of its own choosing, for cluster `fleet` on node-1 (the
//! node that [`crate::pod_identity_node`] sets up), and plain HTTP/1.1 calls to it.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Process, podiam_bin};

/// A running agent and the ports it reported.
#[derive(Debug)]
pub struct AgentProcess {
    /// The process (stopped on drop).
    pub process: Process,
    /// The credentials port.
    pub port: u16,
    /// The probe port (`/healthz`, `/readyz`).
    pub probes: u16,
    /// The metrics port.
    pub metrics: u16,
}

impl AgentProcess {
    /// `podiam agent` with the node's keys, asking `endpoints`, with `extra` flags.
    pub fn start(endpoints: &str, (id, secret): &(String, String), extra: &[&str]) -> Self {
        let mut command = Command::new(podiam_bin());
        command
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .args(["agent", "--cluster-name", "fleet", "--node-name", "node-1"])
            .args(["--endpoint", endpoints])
            .args(["--bind-hosts", "127.0.0.1", "--port", "0"])
            .args(["--probe-port", "0"])
            .args(["--metrics-address", "127.0.0.1", "--metrics-port", "0"])
            .args(extra);
        let (process, ready) = Process::start("podiam agent", command, |line| {
            line.starts_with("podiam agent: ").then(|| line.to_owned())
        });
        let port_after = |label: &str| -> u16 {
            ready
                .split(label)
                .nth(1)
                .and_then(|rest| rest.split([',', ' ']).next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no port after {label:?} in {ready:?}"))
        };
        Self {
            port: port_after("listening on 127.0.0.1:"),
            probes: port_after("probes on 127.0.0.1:"),
            metrics: port_after("metrics on 127.0.0.1:"),
            process,
        }
    }

    /// `GET /v1/credentials` for the pod of `token`: the status, the body and how long it took.
    pub fn credentials(&self, token: &str) -> (u16, String, Duration) {
        let started = Instant::now();
        let (status, body) = http_get(self.port, "/v1/credentials", Some(token));
        (status, body, started.elapsed())
    }

    /// The value of the metric `name` (without labels), if the agent exports it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = http_get(self.metrics, "/metrics", None);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

/// A plain `GET path` on loopback `port` (with `Authorization: token` if given): the status
/// and the body.
pub fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let authorization = token.map_or_else(String::new, |t| format!("Authorization: {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
