//! The real `podiam server` process on loopback.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::podiam_bin;

/// How to start the server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra flags.
    pub args: Vec<String>,
    /// Run under libfaketime with this offset (e.g. `+2h`).
    pub faketime: Option<String>,
    /// Listen here instead of `127.0.0.1:0` (e.g. a veth address a namespace can reach).
    pub listen: Option<String>,
    /// Extra environment variables (`PODIAM_<FLAG>` settings, say).
    pub env: Vec<(String, String)>,
}

/// A running server with its own data directory (removed on drop).
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    addr: Option<SocketAddr>,
    dir: tempfile::TempDir,
    stdout: Arc<Mutex<String>>,
    starts: u32,
}

impl Server {
    /// Starts a server for a new account that trusts `http://` issuers on loopback.
    pub fn start() -> Self {
        Self::start_with(&ServerOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: &ServerOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podiam-e2e-")
            .tempdir()
            .expect("create a temporary directory");
        let mut server = Self {
            child: None,
            addr: None,
            dir,
            stdout: Arc::new(Mutex::new(String::new())),
            starts: 0,
        };
        server.launch(options);
        server
    }

    /// The directory holding the data directory, logs and client files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the server has been started")
    }

    /// `<data-dir>/root-credentials`.
    pub fn root_credentials_file(&self) -> PathBuf {
        self.data_dir().join("root-credentials")
    }

    /// The root access key id and secret.
    pub fn root_keys(&self) -> (String, String) {
        let text =
            std::fs::read_to_string(self.root_credentials_file()).expect("root-credentials exists");
        credentials_file_keys(&text)
    }

    /// Everything the server printed on standard output.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The server's log (standard error) across all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("server.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn launch(&mut self, options: &ServerOptions) {
        let listen = self.addr.map_or_else(
            || {
                options
                    .listen
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:0".to_owned())
            },
            |a| a.to_string(),
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("server.log"))
            .expect("open the server log");
        let mut command = match &options.faketime {
            Some(offset) => {
                let mut c = Command::new("faketime");
                c.arg("-f").arg(offset).arg(podiam_bin());
                c.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
                c
            }
            None => Command::new(podiam_bin()),
        };
        command
            .arg("server")
            .arg("--listen")
            .arg(&listen)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--allow-http-issuers")
            .arg("--log-format")
            .arg("json")
            .args(&options.args)
            .env_remove("PODIAM_DATA_DIR")
            .env("RUST_LOG", "info")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // Its own process group: under libfaketime the child is `faketime`, which runs podiam
        // as its own child; signals go to the whole group so that nothing is left behind.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("spawn podiam server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&self.stdout);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if !sent && line.starts_with("podiam server: http://") {
                    let _ = tx.send(line.clone());
                    sent = true;
                }
                if let Ok(mut all) = sink.lock() {
                    all.push_str(&line);
                }
                line.clear();
            }
        });
        self.child = Some(child);
        self.starts += 1;
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "podiam server did not report its address; log:\n{}",
                    self.log()
                )
            });
        let addr = first
            .trim_start_matches("podiam server: http://")
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse the address from {first:?}"));
        self.addr = Some(addr);
        self.wait_ready();
    }

    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .get("/readyz")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("podiam server never became ready; log:\n{}", self.log());
    }

    /// A plain `GET path`, returning the raw response.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr()
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    }

    /// Stops the server with SIGTERM (a graceful shutdown) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                if Instant::now() > deadline {
                    kill_group(&mut child);
                    panic!("podiam server ignored SIGTERM for 10 s");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Kills the server with SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts the server again on the same address and data directory.
    pub fn restart(&mut self, options: &ServerOptions) {
        self.stop();
        self.launch(options);
    }

    /// How many times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }
}

/// SIGKILL to the child's process group, then reaps the child.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::stop_gracefully(&mut child, true);
        }
    }
}

/// The access key id and secret of a shared-credentials file such as `root-credentials`.
pub fn credentials_file_keys(text: &str) -> (String, String) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in the credentials file:\n{text}"))
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}
