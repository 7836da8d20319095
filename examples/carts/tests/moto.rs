//! The `carts` binary against moto's DynamoDB on loopback, over real HTTP: the same process a
//! pod would run, configured only through the AWS SDK's standard environment variables.
//!
//! Needs the project's venv with moto (`scripts/python-env`, or `PODIAM_VENV`); without it the
//! tests fail with that hint.

#![expect(
    clippy::expect_used,
    reason = "test fixtures: a failed setup step stops the test with its message"
)]

use std::process::Command;

use podiam_e2e::{Process, start_moto};

use serde_json::{Value, json};

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
