//! A real etcd cluster on loopback (Debian's `etcd-server`, 3.4, or any `etcd` on `PATH`):
//! members each on a loopback address of its own, in a scratch directory, each one stoppable and restartable for the
//! fault tests; everything killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member's addresses.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    ip: String,
    client: u16,
    peer: u16,
}

/// A running etcd cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    children: Vec<Option<Child>>,
    dir: tempfile::TempDir,
}

impl Member {
    /// `IP:PORT` of its client listener.
    fn client_addr(&self) -> String {
        format!("{}:{}", self.ip, self.client)
    }
}

/// The client and peer ports every member uses, each on a loopback address of its own.
pub const CLIENT_PORT: u16 = 32379;
/// See [`CLIENT_PORT`].
pub const PEER_PORT: u16 = 32380;

/// A loopback address no other member of this test run has: `127.A.B.C` from the process id
/// and a counter, so concurrent tests (each in a process of its own) never race for a port
/// between choosing it and etcd binding it. (Linux routes all of 127/8 to `lo`.)
pub fn unique_loopback_ip() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        1 + (pid / 250) % 250,
        1 + pid % 250,
        1 + n % 250
    )
}

/// The etcd binary: `ETCD_BIN`, else `etcd` on `PATH`.
fn etcd_bin() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster has a leader.
    pub fn start(size: usize) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podiam-etcd-")
            .tempdir()
            .expect("create a temporary directory");
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                ip: unique_loopback_ip(),
                client: CLIENT_PORT,
                peer: PEER_PORT,
            })
            .collect();
        let mut cluster = Self {
            children: (0..size).map(|_| None).collect(),
            members,
            dir,
        };
        for i in 0..size {
            cluster.launch(i, "new");
        }
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    fn launch(&mut self, index: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}:{}", m.name, m.ip, m.peer))
            .collect();
        let member = self.members.get(index).expect("a member").clone();
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", member.name)))
            .expect("create a log file");
        let child = Command::new(etcd_bin())
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&member.name))
            .args(["--listen-client-urls", &format!("http://{}:{}", member.ip, member.client)])
            .args(["--advertise-client-urls", &format!("http://{}:{}", member.ip, member.client)])
            .args(["--listen-peer-urls", &format!("http://{}:{}", member.ip, member.peer)])
            .args(["--initial-advertise-peer-urls", &format!("http://{}:{}", member.ip, member.peer)])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "podiam-test"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install etcd (Debian: apt-get install etcd-server) or set ETCD_BIN",
                    etcd_bin().display()
                )
            });
        let slot = self.children.get_mut(index).expect("a member's slot");
        *slot = Some(child);
    }

    /// The client endpoints of the members, `127.A.B.C:PORT`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}:{}", m.ip, m.client))
            .collect()
    }

    /// `etcd://IP:PORT,IP:PORT,…` for `--store`.
    pub fn store_url(&self) -> String {
        format!("etcd://{}", self.endpoints().join(","))
    }

    /// Kills member `index` (SIGKILL), as a crash.
    pub fn kill(&mut self, index: usize) {
        if let Some(Some(mut child)) = self.children.get_mut(index).map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops member `index` with SIGSTOP (it keeps its sockets but answers nothing: a hung
    /// member) or lets it go on with SIGCONT.
    pub fn pause(&self, index: usize, paused: bool) {
        if let Some(Some(child)) = self.children.get(index) {
            let signal = if paused { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Starts member `index` again over its data directory.
    pub fn restart(&mut self, index: usize) {
        self.kill(index);
        self.launch(index, "existing");
    }

    /// Waits until a quorum answers a linearizable read through every live member.
    pub fn wait_healthy(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let ok = self
                .members
                .iter()
                .zip(&self.children)
                .filter(|(_, child)| child.is_some())
                .all(|(m, _)| healthy(&m.client_addr()));
            if ok {
                return;
            }
            assert!(
                started.elapsed() < within,
                "etcd did not become healthy within {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A key-encryption key for tests (base64 of 32 bytes): replicas must share one.
const TEST_KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

impl EtcdCluster {
    /// Writes the test key-encryption key to `dir/kek`; returns its path.
    pub fn write_kek(dir: &std::path::Path) -> PathBuf {
        let path = dir.join("kek");
        std::fs::write(&path, TEST_KEK).expect("write the key-encryption key");
        path
    }

    /// Starts a `podiam server` replica over this cluster with the key-encryption key `kek`.
    pub fn replica(&self, kek: &std::path::Path) -> crate::Server {
        crate::Server::start_with(&crate::ServerOptions {
            args: vec![
                "--store".to_owned(),
                self.store_url(),
                "--kek-file".to_owned(),
                kek.display().to_string(),
            ],
            ..crate::ServerOptions::default()
        })
    }

    /// The index of the member that leads, asked of the live members (v3 JSON gateway).
    pub fn leader(&self) -> Option<usize> {
        let statuses: Vec<(usize, serde_json::Value)> = self
            .members
            .iter()
            .enumerate()
            .zip(&self.children)
            .filter(|(_, child)| child.is_some())
            .filter_map(|((i, m), _)| Some((i, status(&m.client_addr())?)))
            .collect();
        let leader = statuses
            .iter()
            .find_map(|(_, s)| s.get("leader").and_then(serde_json::Value::as_str))?
            .to_owned();
        statuses.iter().find_map(|(i, s)| {
            (s.pointer("/header/member_id")
                .and_then(serde_json::Value::as_str)
                == Some(leader.as_str()))
            .then_some(*i)
        })
    }

    /// The revision member `index` has applied.
    pub fn revision_of(&self, index: usize) -> Option<u64> {
        let member = self.members.get(index)?;
        status(&member.client_addr())?
            .pointer("/header/revision")?
            .as_str()?
            .parse()
            .ok()
    }

    /// The raw value at `key` (the namespace included), read past podiam through etcd's JSON
    /// gateway: what anyone with read access to etcd sees.
    pub fn raw_get(&self, key: &str) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({"key": engine.encode(key)}).to_string();
        let member = self
            .members
            .iter()
            .zip(&self.children)
            .find(|(_, c)| c.is_some())?
            .0;
        let answer = gateway(&member.client_addr(), "/v3/kv/range", &body)?;
        let value = answer.pointer("/kvs/0/value")?.as_str()?;
        engine.decode(value).ok()
    }

    /// Writes `value` at `key` (the namespace included) past podiam, as anyone with write
    /// access to etcd but without the key-encryption key could.
    pub fn raw_put(&self, key: &str, value: &[u8]) {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({"key": engine.encode(key), "value": engine.encode(value)})
            .to_string();
        let member = self
            .members
            .iter()
            .zip(&self.children)
            .find(|(_, c)| c.is_some())
            .map(|(m, _)| m.client_addr())
            .expect("a live member");
        gateway(&member, "/v3/kv/put", &body).expect("etcd accepts the raw put");
    }

    /// The end of every member's log, for a failure message.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}", m.name, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `POST /v3/maintenance/status` of one member.
fn status(addr: &str) -> Option<serde_json::Value> {
    gateway(addr, "/v3/maintenance/status", "{}")
}

/// One POST to a member's v3 JSON gateway.
fn gateway(addr: &str, path: &str, body: &str) -> Option<serde_json::Value> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let body = answer.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// `GET /health` of one member answers `"health":"true"`.
fn healthy(addr: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.pause(index, false);
        }
        for child in self.children.iter_mut().filter_map(Option::as_mut) {
            crate::stop_gracefully(child, false);
        }
    }
}
