//! EKS Pod Identity and IMDS for real: a network namespace, `podiam agent setup-link`, the
//! agent on 169.254.170.23:80 and 169.254.169.254:80 inside it, and the unmodified AWS CLI
//! there with only the environment a pod (or a node) has. Then the agent's faults: the server
//! gone, a token of another node, a thousand first requests at once. Needs root (CI is root);
//! elsewhere each test says loudly that it was skipped.

#![expect(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use podiam_e2e::{ClientEnv, NetNs, Run, Server, ServerOptions, podiam_bin, venv};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:TagSession","sts:AssumeRole"]}]}"#;
const AGENT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["eks-auth:AssumeRoleForPodIdentity","eks:DescribeCluster"],"Resource":"*"},{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::000000000000:role/node-role"}]}"#;
const NODE_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;

struct Setup {
    server: Server,
    ns: NetNs,
    root: ClientEnv,
}

fn setup() -> Option<Setup> {
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("\n*** SKIPPED: the link-local test needs a network namespace: {why} ***\n");
            return None;
        }
    };
    let server = Server::start_with(&ServerOptions {
        listen: Some(format!("{}:0", ns.host_ip)),
        ..ServerOptions::default()
    });
    let root = ClientEnv::root(&server);
    let run = |args: &[&str]| root.command_of(&podiam_bin(), args).ok();
    run(&["cluster", "create", "--name", "eks-workshop"]);
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "eks-workshop-carts-dynamo-pia",
        "--assume-role-policy-document",
        PIA_TRUST,
    ])
    .ok();
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "eks-workshop",
        "--namespace",
        "carts",
        "--service-account",
        "carts",
        "--role-arn",
        "arn:aws:iam::000000000000:role/eks-workshop-carts-dynamo-pia",
    ])
    .ok();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "node-role",
        "--assume-role-policy-document",
        NODE_TRUST,
    ])
    .ok();
    // The node's agent: a user tagged with its node, allowed what an agent does.
    root.aws(&[
        "iam",
        "create-user",
        "--user-name",
        "agent-node-1",
        "--tags",
        "Key=podiam:node-name,Value=node-1",
    ])
    .ok();
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "agent-node-1",
        "--policy-name",
        "node-agent",
        "--policy-document",
        AGENT_POLICY,
    ])
    .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "agent-node-1"])
        .json();
    let credentials = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key["AccessKey"]["AccessKeyId"].as_str().unwrap_or_default(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap_or_default()
    );
    std::fs::write(server.dir().join("agent-credentials"), credentials)
        .unwrap_or_else(|e| panic!("write the agent's credentials: {e}"));
    Some(Setup { server, ns, root })
}

impl Setup {
    fn token(&self, pod: &str, node: &str) -> String {
        self.root
            .command_of(
                &podiam_bin(),
                &[
                    "cluster",
                    "token",
                    "--cluster",
                    "eks-workshop",
                    "--namespace",
                    "carts",
                    "--service-account",
                    "carts",
                    "--audience",
                    "pods.eks.amazonaws.com",
                    "--pod-name",
                    pod,
                    "--node-name",
                    node,
                ],
            )
            .ok()
    }

    fn token_file(&self, name: &str, token: &str) -> PathBuf {
        let path = self.server.dir().join(name);
        std::fs::write(&path, token).unwrap_or_default();
        path
    }

    /// `setup-link --imds`, then the agent inside the namespace (signing as its node's tagged
    /// user), also reachable from outside on the veth address.
    fn start_agent(&mut self) -> String {
        self.setup_link();
        let env = vec![
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.server
                    .dir()
                    .join("agent-credentials")
                    .display()
                    .to_string(),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("HOME", self.server.dir().display().to_string()),
        ];
        self.run_agent(&env)
    }

    /// `setup-link --imds` in the namespace, twice (it is idempotent).
    fn setup_link(&self) {
        let setup = self
            .ns
            .command(&podiam_bin(), &["agent", "setup-link", "--imds"], &[])
            .output()
            .unwrap_or_else(|e| panic!("setup-link: {e}"));
        assert!(
            setup.status.success(),
            "setup-link failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        // Idempotent.
        let again = self
            .ns
            .command(&podiam_bin(), &["agent", "setup-link", "--imds"], &[])
            .output()
            .unwrap_or_else(|e| panic!("setup-link: {e}"));
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("was already set up"),
            "{}",
            String::from_utf8_lossy(&again.stdout)
        );
    }

    /// The agent in the namespace with `env` as its whole environment.
    fn run_agent(&mut self, env: &[(&str, String)]) -> String {
        self.run_agent_with(env, "169.254.169.254:80", &[])
    }

    /// The agent with IMDS at `imds_listen` and `extra` flags.
    fn run_agent_with(
        &mut self,
        env: &[(&str, String)],
        imds_listen: &str,
        extra: &[&str],
    ) -> String {
        let bind = format!("169.254.170.23,[fd00:ec2::23],{}", self.ns.ns_ip);
        let endpoint = self.server.endpoint();
        let log = self.server.dir().join("agent.log");
        let mut args = vec![
            "agent",
            "--cluster-name",
            "eks-workshop",
            "--endpoint",
            &endpoint,
            "--node-name",
            "node-1",
            "--bind-hosts",
            &bind,
            "--imds-listen",
            imds_listen,
            "--imds-role-arn",
            "arn:aws:iam::000000000000:role/node-role",
        ];
        args.extend_from_slice(extra);
        self.ns
            .spawn(&podiam_bin(), &args, env, "podiam agent:", &log)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn agent_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.server
                    .dir()
                    .join("agent-credentials")
                    .display()
                    .to_string(),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("HOME", self.server.dir().display().to_string()),
        ]
    }

    /// The AWS CLI inside the namespace with exactly `env` (and the server as STS endpoint).
    fn aws_in_ns(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let mut all: Vec<(&str, String)> = vec![
            ("HOME", self.server.dir().display().to_string()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.server.endpoint()),
            (
                "AWS_CONFIG_FILE",
                self.server.dir().join("no-config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.server
                    .dir()
                    .join("no-credentials")
                    .display()
                    .to_string(),
            ),
        ];
        all.extend(env.iter().cloned());
        let mut cli_args: Vec<&str> = args.to_vec();
        cli_args.extend(["--output", "json"]);
        let output = self
            .ns
            .command(&venv().join("bin/aws"), &cli_args, &all)
            .output()
            .unwrap_or_else(|e| panic!("aws in the namespace: {e}"));
        Run {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr),
                output.status.code().map_or_else(
                    || " (killed by a signal)".to_owned(),
                    |c| format!(" (exit {c})")
                )
            ),
        }
    }
}

/// One raw HTTP/1.1 exchange with the agent through its veth address.
async fn agent_get(address: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return (0, String::new());
    };
    let auth = token.map_or_else(String::new, |t| format!("Authorization: {t}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 169.254.170.23\r\n{auth}Connection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn pods_and_nodes_get_credentials_at_the_link_local_addresses() {
    let Some(mut s) = setup() else {
        return;
    };
    let ready = s.start_agent();
    assert!(ready.contains("169.254.170.23:80"), "{ready}");
    let token = s.token("carts-7d8f9c6b5-abcde", "node-1");
    let token_file = s.token_file("eks-pod-identity-token", &token);
    // Only what the workshop page shows in the pod, plus the server as the STS endpoint.
    let me = s
        .aws_in_ns(
            &["sts", "get-caller-identity"],
            &[
                ("AWS_STS_REGIONAL_ENDPOINTS", "regional".to_owned()),
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://169.254.170.23/v1/credentials".to_owned(),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
            ],
        )
        .json();
    let arn = me["Arn"].as_str().unwrap_or_default();
    assert!(
        arn.starts_with(
            "arn:aws:sts::000000000000:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-workshop-carts-7d8f9c6b5-"
        ),
        "{me}"
    );
    // The IPv6 address too.
    let me6 = s
        .aws_in_ns(
            &["sts", "get-caller-identity"],
            &[
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://[fd00:ec2::23]/v1/credentials".to_owned(),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
            ],
        )
        .json();
    assert_eq!(me6["Arn"], me["Arn"], "the same pod, served from the cache");

    // The node itself: nothing but the region; the CLI finds IMDS at 169.254.169.254.
    let node = s.aws_in_ns(&["sts", "get-caller-identity"], &[]).json();
    assert_eq!(
        node["Arn"],
        "arn:aws:sts::000000000000:assumed-role/node-role/node-1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_faults_outage_other_node_and_a_thousand_first_requests() {
    let Some(mut s) = setup() else {
        return;
    };
    s.start_agent();
    let agent = format!("{}:80", s.ns.ns_ip);
    let metrics_at = format!("{}:2705", s.ns.ns_ip);

    // A token bound to another node is refused by the server.
    let (status, body) = agent_get(&agent, "/v1/credentials", Some(&s.token("p0", "node-2"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("(AccessDeniedException)") && body.ends_with("fault: client"),
        "{body}"
    );

    // A thousand first requests for one pod: one upstream call.
    let token = Arc::new(s.token("burst-pod", "node-1"));
    let server_metrics = |s: &Setup| s.server.get("/metrics").unwrap_or_default();
    let ok_metric = r#"podiam_requests_total{service="eks-auth",operation="AssumeRoleForPodIdentity",code="OK"}"#;
    let before = metric(&server_metrics(&s), ok_metric);
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let mut asks = Vec::new();
    for _ in 0..1000 {
        let (agent, token, barrier) = (agent.clone(), Arc::clone(&token), Arc::clone(&barrier));
        asks.push(tokio::spawn(async move {
            barrier.wait().await;
            agent_get(&agent, "/v1/credentials", Some(&token)).await.0
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for ask in asks {
        *statuses.entry(ask.await.unwrap_or(0)).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&1000), "{statuses:?}");
    let after = metric(&server_metrics(&s), ok_metric);
    assert!(
        (after - before - 1.0).abs() < f64::EPSILON,
        "{} upstream calls for one pod",
        after - before
    );

    // The server goes away: the cached pod is still served, a new pod is not, readiness says
    // degraded.
    let fresh = s.token("new-pod", "node-1");
    s.server.kill9();
    let (status, body) = agent_get(&agent, "/v1/credentials", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    assert!(
        json["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
    );
    let (status, body) = agent_get(&agent, "/v1/credentials", Some(&fresh)).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("fault: server"), "{body}");
    let (status, ready) = agent_get(&metrics_at, "/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready.starts_with("degraded: "), "{ready}");
    let (_, agent_metrics) = agent_get(&metrics_at, "/metrics", None).await;
    assert!(
        metric(&agent_metrics, "podiam_agent_cache_hits_total") >= 999.0,
        "{agent_metrics}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Where IPv6 is off, `setup-link` and the agent log it and go on with IPv4.
#[test]
fn ipv6_off_is_logged_not_fatal() {
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("\n*** SKIPPED: the link-local test needs a network namespace: {why} ***\n");
            return;
        }
    };
    let sysctl = ns
        .command(
            std::path::Path::new("sysctl"),
            &[
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
            &[],
        )
        .status()
        .map(|s| s.success());
    assert_eq!(
        sysctl.ok(),
        Some(true),
        "cannot turn IPv6 off in the namespace"
    );
    let setup = ns
        .command(&podiam_bin(), &["agent", "setup-link"], &[])
        .output()
        .unwrap_or_else(|e| panic!("setup-link: {e}"));
    let stderr = String::from_utf8_lossy(&setup.stderr);
    assert!(setup.status.success(), "{stderr}");
    assert!(stderr.contains("IPv6 is not set up"), "{stderr}");
    assert!(String::from_utf8_lossy(&setup.stdout).contains("added 169.254.170.23/32"));
}

/// The agent proves its node with its own pod's token: IRSA for the agent, a projected token
/// the kubelet bound to node-1. No credentials are shared between nodes; EKS Auth takes the
/// node from the session the token gave, so a pod on node-1 is served and a token bound to
/// node-2 is refused, whatever the agent says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_proves_its_node_with_its_own_pod_token() {
    let Some(mut s) = setup() else {
        return;
    };
    let issuer = s
        .root
        .aws(&["eks", "describe-cluster", "--name", "eks-workshop"])
        .json()["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.root
        .aws(&[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
        ])
        .ok();
    let host_path = issuer.split_once("://").map_or(issuer.as_str(), |(_, r)| r);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::000000000000:oidc-provider/{host_path}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host_path}:sub":"system:serviceaccount:podiam-system:podiam-agent"}}}}}}]}}"#
    );
    s.root
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "podiam-agent",
            "--assume-role-policy-document",
            &trust,
        ])
        .ok();
    s.root
        .aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            "podiam-agent",
            "--policy-name",
            "node-agent",
            "--policy-document",
            AGENT_POLICY,
        ])
        .ok();
    let agent_token = s
        .root
        .command_of(
            &podiam_bin(),
            &[
                "cluster",
                "token",
                "--cluster",
                "eks-workshop",
                "--namespace",
                "podiam-system",
                "--service-account",
                "podiam-agent",
                "--audience",
                "sts.amazonaws.com",
                "--pod-name",
                "podiam-agent-x7k2p",
                "--node-name",
                "node-1",
            ],
        )
        .ok();
    let token_file = s.token_file("agent-token", &agent_token);
    s.setup_link();
    s.run_agent(&[
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::000000000000:role/podiam-agent".to_owned(),
        ),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("HOME", s.server.dir().display().to_string()),
    ]);
    let agent = format!("{}:80", s.ns.ns_ip);
    let (status, body) = agent_get(
        &agent,
        "/v1/credentials",
        Some(&s.token("carts-on-1", "node-1")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = agent_get(
        &agent,
        "/v1/credentials",
        Some(&s.token("carts-on-2", "node-2")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("AccessDeniedException"), "{body}");
}

/// One raw HTTP/1.1 exchange: `request` as written, the status (0 when the server closed the
/// connection without answering).
async fn raw(address: &str, request: &str) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return (0, String::new());
    };
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// IMDS serves the node, not its pods: a connection from an address that is not the node's
/// (here the test's own namespace, playing a pod) is closed unanswered, whatever its `Host`;
/// the node itself is served; `--imds-allow-from` admits a network. The agent and IMDS refuse
/// a request with two `Host` headers, an absolute-form target or a port that does not parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_serves_the_node_not_its_pods_and_hosts_are_unambiguous() {
    let Some(mut s) = setup() else {
        return;
    };
    s.setup_link();
    let imds = format!("{}:8080", s.ns.ns_ip);
    let env = s.agent_env();
    s.run_agent_with(&env, &imds, &[]);
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}:8080\r\nx-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        s.ns.ns_ip
    );
    let (status, answer) = raw(&imds, &put).await;
    assert_eq!(status, 0, "a pod's address was answered: {answer}");
    // The node itself (the CLI in the node's namespace) gets the node role.
    let node = s
        .aws_in_ns(
            &["sts", "get-caller-identity"],
            &[(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://{imds}"),
            )],
        )
        .json();
    assert_eq!(
        node["Arn"],
        "arn:aws:sts::000000000000:assumed-role/node-role/node-1"
    );

    // The credentials endpoint: one Host, in origin form, with a port that parses.
    let agent = format!("{}:80", s.ns.ns_ip);
    let token = s.token("carts-x", "node-1");
    for (what, head) in [
        (
            "two Host headers",
            format!(
                "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nHost: {}\r\n",
                s.ns.ns_ip
            ),
        ),
        (
            "absolute form",
            "GET http://169.254.170.23/v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\n"
                .to_owned(),
        ),
        (
            "port 99999",
            "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23:99999\r\n".to_owned(),
        ),
        (
            "another host",
            "GET /v1/credentials HTTP/1.1\r\nHost: evil.example\r\n".to_owned(),
        ),
    ] {
        let (status, answer) = raw(
            &agent,
            &format!("{head}Authorization: {token}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status == 403 || status == 400, "{what}: {answer}");
        assert!(!answer.contains("AccessKeyId"), "{what}: {answer}");
    }
    let (status, answer) = raw(
        &agent,
        &format!("GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    // --imds-allow-from admits the test's namespace.
    s.ns.stop_all();
    let host_net = format!("{}/32", s.ns.host_ip);
    s.run_agent_with(&env, &imds, &["--imds-allow-from", &host_net]);
    let (status, answer) = raw(&imds, &put).await;
    assert_eq!(status, 200, "{answer}");
}
