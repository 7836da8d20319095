//! Child processes that report their address on a line of output (moto_server, carts,
//! `podiam dev`), stopped (SIGTERM, then SIGKILL after a grace period) and reaped on drop,
//! their output shown when a test fails.

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process may take to report its address.
pub const STARTUP: Duration = Duration::from_secs(60);

/// A child process stopped (and reaped) on drop; what it printed is shown if the test failed.
#[derive(Debug)]
pub struct Process {
    name: &'static str,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `command` with piped output and waits for the first output line that `ready`
    /// accepts, returning what `ready` made of it (an address).
    pub fn start(
        name: &'static str,
        mut command: Command,
        ready: fn(&str) -> Option<String>,
    ) -> (Self, String) {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({command:?}): {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        drain(stdout, ready, tx.clone(), Arc::clone(&output));
        drain(stderr, ready, tx, Arc::clone(&output));
        let process = Self {
            name,
            child,
            output,
        };
        let addr = rx.recv_timeout(STARTUP).unwrap_or_else(|_| {
            panic!(
                "{name} did not report its address within {STARTUP:?}; output:\n{}",
                process.output()
            )
        });
        (process, addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// How long a process gets to stop after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// Stops `child` as an operator would: SIGTERM (to its process group when `group`), then
/// SIGKILL if it is still running after [`GRACE`]; reaps it.
pub fn stop_gracefully(child: &mut Child, group: bool) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let target = if group {
        format!("-{}", child.id())
    } else {
        child.id().to_string()
    };
    let _ = Command::new("kill").args(["-TERM", "--", &target]).status();
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &target]).status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Process {
    fn drop(&mut self) {
        stop_gracefully(&mut self.child, false);
        if std::thread::panicking() {
            eprintln!("--- {} output ---\n{}", self.name, self.output());
        }
    }
}

/// Copies `stream` into `output` line by line, sending what `ready` makes of a line to `tx`.
fn drain(
    stream: impl Read + Send + 'static,
    ready: fn(&str) -> Option<String>,
    tx: Sender<String>,
    output: Arc<Mutex<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = ready(&line) {
                let _ = tx.send(addr);
            }
            if let Ok(mut all) = output.lock() {
                all.push_str(&line);
                all.push('\n');
            }
        }
    });
}

/// moto's server on a free loopback port (it prints ` * Running on http://127.0.0.1:PORT`).
pub fn start_moto() -> (Process, String) {
    let mut command = Command::new(crate::venv().join("bin/moto_server"));
    command.args(["-H", "127.0.0.1", "-p", "0"]);
    Process::start("moto_server", command, |line| {
        line.trim()
            .strip_prefix("* Running on ")
            .map(|url| url.trim().to_owned())
    })
}

impl Process {
    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for the process")
    }
}
