//! A network namespace for link-local tests: `ip netns` with loopback up and a veth pair to the
//! test's own namespace (so the server and the test can reach processes inside). Needs root;
//! [`NetNs::create`] says so when it is not.

use std::io::{BufRead as _, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A namespace, deleted (with everything started in it) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    /// The address of the veth end in the test's namespace.
    pub host_ip: Ipv4Addr,
    /// The address of the veth end inside the namespace.
    pub ns_ip: Ipv4Addr,
    children: Vec<Child>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl NetNs {
    /// A fresh namespace, or why there cannot be one here (not root, no `ip`).
    pub fn create() -> Result<Self, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if uid != "0" {
            return Err(format!(
                "network namespaces need root (running as uid {uid})"
            ));
        }
        let pid = std::process::id();
        let name = format!("podiam-e2e-{pid}");
        // A /30 of its own per test process: 10.248.0.0/13, from the pid.
        let base = (u32::from(Ipv4Addr::new(10, 248, 0, 0)) | ((pid << 2) & 0x7_fffc)) & !3;
        let host_ip = Ipv4Addr::from(base + 1);
        let ns_ip = Ipv4Addr::from(base + 2);
        let host_if = format!("pdh{}", pid % 1_000_000);
        let ns_if = format!("pdn{}", pid % 1_000_000);
        let _ = ip(&["netns", "del", &name]);
        let _ = ip(&["link", "del", &host_if]);
        ip(&["netns", "add", &name])?;
        let ns = Self {
            name: name.clone(),
            host_ip,
            ns_ip,
            children: Vec::new(),
        };
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_if,
        ])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program args` inside the namespace, with exactly `env` (plus `PATH`).
    pub fn command(&self, program: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// Starts a long-running process inside, waits for a line of standard output that starts
    /// with `ready_prefix`, and stops it when the namespace goes.
    pub fn spawn(
        &mut self,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        ready_prefix: &str,
        log: &Path,
    ) -> Result<String, String> {
        let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut child = self
            .command(program, args, env)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let prefix = ready_prefix.to_owned();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.starts_with(&prefix) {
                    let _ = tx.send(line.clone());
                }
                line.clear();
            }
        });
        self.children.push(child);
        rx.recv_timeout(Duration::from_secs(20)).map_err(|_| {
            format!(
                "{} never said {ready_prefix:?}; its log: {}",
                program.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
    }

    /// Stops everything started inside (SIGTERM, then SIGKILL after a grace period).
    pub fn stop_all(&mut self) {
        for child in &mut self.children {
            crate::stop_gracefully(child, false);
        }
        self.children.clear();
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.stop_all();
        // Deleting the namespace deletes the veth pair with it.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
