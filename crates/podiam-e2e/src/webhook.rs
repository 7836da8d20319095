//! `podiam webhook` as deployed: the real binary over TLS, with its ServiceAccounts from a
//! [`FakeApiServer`].

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use crate::admission::{apply_answer, create_review, pod};
use crate::{ClientEnv, FakeApiServer, TestCa, podiam_bin};

/// A running `podiam webhook` for cluster `eks-workshop`, over TLS with a certificate of the
/// test CA, its ServiceAccounts from a [`FakeApiServer`].
#[derive(Debug)]
pub struct WebhookProcess {
    /// The process.
    pub child: Child,
    /// The HTTPS address (`/mutate`).
    pub https: SocketAddr,
    /// The metrics address.
    pub metrics: SocketAddr,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Drop for WebhookProcess {
    fn drop(&mut self) {
        crate::stop_gracefully(&mut self.child, false);
    }
}

fn address_after(line: &str, marker: &str) -> SocketAddr {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address after {marker:?} in {line:?}"))
}

impl WebhookProcess {
    /// Starts it with `env`'s credentials, its files in `dir`, and `extra` flags.
    pub fn start(
        env: &ClientEnv,
        dir: &std::path::Path,
        api: &FakeApiServer,
        ca: &TestCa,
        extra: &[&str],
    ) -> Self {
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        ca.issue(&["localhost"], &cert, &key);
        let kubeconfig = api.kubeconfig(dir);
        let mut child = env.spawn_of(
            &podiam_bin(),
            &[
                "webhook",
                "--cluster-name",
                "eks-workshop",
                "--tls-cert",
                &cert.display().to_string(),
                "--tls-key",
                &key.display().to_string(),
                "--listen",
                "127.0.0.1:0",
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                "0",
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "--association-refresh",
                "500ms",
                "--aws-default-region",
                "us-west-2",
            ]
            .into_iter()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
            &dir.join("webhook.log"),
        );
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the webhook's first line");
        assert!(
            line.starts_with("podiam webhook: cluster eks-workshop"),
            "{line:?}; log:\n{}",
            std::fs::read_to_string(dir.join("webhook.log")).unwrap_or_default()
        );
        let client = reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("the test CA")
            ])
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTPS client");
        Self {
            child,
            https: address_after(&line, "listening on https://"),
            metrics: address_after(&line, "metrics on http://"),
            client,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        }
    }

    /// A GET on the metrics port: the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.metrics);
        self.runtime.block_on(async {
            let response = self
                .client
                .get(url)
                .send()
                .await
                .expect("GET on the metrics port");
            (
                response.status().as_u16(),
                response.text().await.expect("the body"),
            )
        })
    }

    /// A pod of `service_account` in `namespace` sent for review: the answer and the pod
    /// with its patch applied.
    pub fn review(&self, namespace: &str, service_account: &str) -> (Value, Value) {
        let pod = pod(namespace, service_account);
        let review = create_review("admission.k8s.io/v1", "e2e", &pod);
        let url = format!("https://localhost:{}/mutate", self.https.port());
        let answer: Value = self.runtime.block_on(async {
            let response = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(review.to_string())
                .send()
                .await
                .expect("POST /mutate");
            assert_eq!(response.status(), 200);
            serde_json::from_slice(&response.bytes().await.expect("the answer's body"))
                .expect("an AdmissionReview")
        });
        assert_eq!(
            answer.pointer("/response/uid").and_then(Value::as_str),
            Some("e2e")
        );
        assert_eq!(
            answer.pointer("/response/allowed").and_then(Value::as_bool),
            Some(true)
        );
        let mutated = apply_answer(&pod, &answer);
        (answer, mutated)
    }
}
