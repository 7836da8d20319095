//! The `carts` binary against moto's DynamoDB on loopback, over real HTTP: the same process a
//! pod would run, configured only through the AWS SDK's standard environment variables.
//!
//! Needs the project's venv with moto (`scripts/python-env`, or `PODIAM_VENV`); without it the
//! tests fail with that hint.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test fixtures: a failed setup step stops the test with its message"
)]

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// How long a process may take to report its address.
const STARTUP: Duration = Duration::from_secs(60);

/// A child process killed (and reaped) on drop; what it printed is shown if the test failed.
struct Process {
    name: &'static str,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `command` with piped output and waits for the first output line that `ready`
    /// accepts, returning what `ready` made of it (an address).
    fn start(
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

    fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
fn start_moto() -> (Process, String) {
    let mut command = Command::new(podiam_e2e::venv().join("bin/moto_server"));
    command.args(["-H", "127.0.0.1", "-p", "0"]);
    Process::start("moto_server", command, |line| {
        line.trim()
            .strip_prefix("* Running on ")
            .map(|url| url.trim().to_owned())
    })
}

/// The `carts` binary on a free loopback port with DynamoDB at `dynamodb` and static test
/// keys, nothing else from this environment (no profile, no IMDS).
fn start_carts(dynamodb: &str, args: &[&str]) -> (Process, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_carts"));
    command
        .env_clear()
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-central-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("RUST_LOG", "info")
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    Process::start("carts", command, |line| {
        line.strip_prefix("carts: listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    })
}

/// A request's status and body (JSON, or the text as a JSON string).
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[tokio::test]
async fn cart_lifecycle() {
    let (_moto, dynamodb) = start_moto();
    let (_carts, base) = start_carts(&dynamodb, &["--create-table", "--table", "carts"]);
    let http = reqwest::Client::new();
    let add = |customer: &str, item: Value| {
        http.post(format!("{base}/carts/{customer}/items"))
            .header("content-type", "application/json")
            .body(item.to_string())
    };

    assert_eq!(
        send(http.get(format!("{base}/health"))).await,
        (200, json!("ok"))
    );
    assert_eq!(
        send(http.get(format!("{base}/carts/alice"))).await,
        (200, json!({"customerId": "alice", "items": []}))
    );

    let sock = json!({"itemId": "sock", "quantity": 2, "unitPrice": 795});
    let hat = json!({"itemId": "hat", "quantity": 1, "unitPrice": 2500});
    assert_eq!(send(add("alice", sock.clone())).await, (201, sock.clone()));
    assert_eq!(send(add("alice", hat.clone())).await, (201, hat.clone()));
    let scarf = json!({"itemId": "scarf", "quantity": 3, "unitPrice": 1200});
    assert_eq!(send(add("bob", scarf.clone())).await, (201, scarf.clone()));

    // Lines come back in range-key order, and only the customer's own.
    assert_eq!(
        send(http.get(format!("{base}/carts/alice"))).await,
        (
            200,
            json!({"customerId": "alice", "items": [hat.clone(), sock.clone()]})
        )
    );

    // Adding the same item again replaces the line.
    let more_socks = json!({"itemId": "sock", "quantity": 5, "unitPrice": 795});
    assert_eq!(
        send(add("alice", more_socks.clone())).await,
        (201, more_socks.clone())
    );

    let (status, body) = send(http.delete(format!("{base}/carts/alice/items/hat"))).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        send(http.get(format!("{base}/carts/alice"))).await,
        (
            200,
            json!({"customerId": "alice", "items": [more_socks.clone()]})
        )
    );
    // Deleting an absent line is not an error.
    let (status, body) = send(http.delete(format!("{base}/carts/alice/items/hat"))).await;
    assert_eq!(status, 204, "{body}");

    let (status, body) = send(add(
        "alice",
        json!({"itemId": "sock", "quantity": 0, "unitPrice": 1}),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "BadRequest", "{body}");

    // A second instance with --create-table on the existing table sees the same carts.
    let (_again, base2) = start_carts(&dynamodb, &["--create-table", "--table", "carts"]);
    assert_eq!(
        send(http.get(format!("{base2}/carts/bob"))).await,
        (200, json!({"customerId": "bob", "items": [scarf]}))
    );
}

#[tokio::test]
async fn dynamodb_errors_pass_through() {
    let (_moto, dynamodb) = start_moto();
    let (_carts, base) = start_carts(&dynamodb, &["--table", "no-such-table"]);
    let http = reqwest::Client::new();

    let (status, body) = send(http.get(format!("{base}/carts/alice"))).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "ResourceNotFoundException", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    let (status, body) = send(
        http.post(format!("{base}/carts/alice/items"))
            .header("content-type", "application/json")
            .body(r#"{"itemId":"sock","quantity":1,"unitPrice":1}"#),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "ResourceNotFoundException", "{body}");
}
